/* hub.c - Hugging Face Hub model ids resolved in the local Hub cache, offline.
 *
 * The cache as the huggingface_hub library lays it out (and every tool that
 * downloads through it): under the cache directory, a repository is
 * models--{org}--{name}/, whose refs/{branch or tag} file holds a commit hash, and
 * snapshots/{commit}/ holds the repository's files at that commit (links into
 * blobs/). The cache directory is the library's, from the same environment
 * variables in the same order. hoist reads this and nothing else: it never
 * downloads, and says where it looked when the model is not there. */
#include "hub.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define ID_MAX 96   /* the Hub's limit on a repository id */
#define REV_MAX 256 /* branch names are short; a commit hash is 40 */
#define PATH_MAX_ 4096

static bool id_char(char c)
{
	return isalnum((unsigned char)c) || c == '-' || c == '_' || c == '.';
}

/* One part of an id ("org" or "name"): id characters, not starting or ending with
 * '-' or '.'. */
static bool id_part(const char *s, size_t n)
{
	if (n == 0 || s[0] == '-' || s[0] == '.' || s[n - 1] == '-' || s[n - 1] == '.')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!id_char(s[i]))
			return false;
	return true;
}

/* Splits text into id [0, *idlen) and revision (after '@', or NULL). */
static bool split(const char *text, size_t *idlen, const char **rev)
{
	const char *at = strchr(text, '@');
	size_t n = at ? (size_t)(at - text) : strlen(text);
	*idlen = n;
	*rev = at ? at + 1 : NULL;
	if (n == 0 || n > ID_MAX || (at && (!at[1] || strlen(at + 1) >= REV_MAX)))
		return false;
	for (size_t i = 0; i + 1 < n; i++)
		if ((text[i] == '-' && text[i + 1] == '-') ||
		    (text[i] == '.' && text[i + 1] == '.'))
			return false;
	const char *slash = memchr(text, '/', n);
	if (!slash)
		return id_part(text, n);
	size_t org = (size_t)(slash - text);
	return id_part(text, org) && id_part(slash + 1, n - org - 1) &&
	       !memchr(slash + 1, '/', n - org - 1);
}

bool hoist__hub_is_id(const char *text)
{
	size_t n;
	const char *rev;
	return text && split(text, &n, &rev);
}

static bool is_dir(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The cache directory, and which setting gave it, as huggingface_hub's constants
 * derive it: HF_HUB_CACHE, else HUGGINGFACE_HUB_CACHE, else HF_HOME/hub, else
 * XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub ("~" expanded). */
static bool cache_dir(char *out, size_t size, const char **from)
{
	static const char *const direct[] = {"HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"};
	const char *base = NULL, *suffix = "";
	for (size_t i = 0; i < 2 && !base; i++) {
		const char *v = getenv(direct[i]);
		if (v && *v) {
			base = v;
			*from = direct[i];
		}
	}
	if (!base && (base = getenv("HF_HOME")) && *base) {
		suffix = "/hub";
		*from = "HF_HOME";
	} else if (!base && (base = getenv("XDG_CACHE_HOME")) && *base) {
		suffix = "/huggingface/hub";
		*from = "XDG_CACHE_HOME";
	} else if (!base) {
		base = "~/.cache";
		suffix = "/huggingface/hub";
		*from = NULL;
	}
	const char *home = "";
	if (base[0] == '~' && (base[1] == '/' || base[1] == '\0')) {
		home = getenv("HOME");
		if (!home)
			home = "";
		base++;
	}
	int n = snprintf(out, size, "%s%s%s", home, base, suffix);
	return n > 0 && (size_t)n < size;
}

/* Reads a refs/ file: the commit hash, whitespace trimmed. */
static bool read_ref(const char *path, char *out, size_t size)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return false;
	size_t n = fread(out, 1, size - 1, f);
	fclose(f);
	out[n] = '\0';
	while (n > 0 && isspace((unsigned char)out[n - 1]))
		out[--n] = '\0';
	for (size_t i = 0; i < n; i++)
		if (!isxdigit((unsigned char)out[i]))
			return false;
	return n > 0;
}

static bool is_commit(const char *rev)
{
	size_t n = strlen(rev);
	for (size_t i = 0; i < n; i++)
		if (!isxdigit((unsigned char)rev[i]))
			return false;
	return n == 40;
}

static enum hoist_status resolve(const char *id, size_t idlen, const char *rev, char *out,
                                 size_t size)
{
	char cache[PATH_MAX_], repo[PATH_MAX_ + ID_MAX + 16], commit[REV_MAX];
	char ref[sizeof repo + REV_MAX + 8], snap[sizeof repo + REV_MAX + 16];
	const char *from = NULL;
	if (!cache_dir(cache, sizeof cache, &from))
		return hoist__error(HOIST_ERR_INVALID, "%.*s: the Hub cache path is too long",
		                    (int)idlen, id);
	char where[128];
	if (from)
		snprintf(where, sizeof where, "from %s", from);
	else
		snprintf(where, sizeof where,
		         "the default: HF_HUB_CACHE, HUGGINGFACE_HUB_CACHE, HF_HOME and "
		         "XDG_CACHE_HOME are unset");
	/* models--{org}--{name}: the id with '/' spelled "--" */
	int n = snprintf(repo, sizeof repo, "%s/models--", cache);
	for (size_t i = 0; i < idlen && n > 0 && (size_t)n + 3 < sizeof repo; i++) {
		if (id[i] == '/') {
			repo[n++] = '-';
			repo[n++] = '-';
		} else {
			repo[n++] = id[i];
		}
	}
	repo[n] = '\0';
	if (!is_dir(repo))
		return hoist__error(HOIST_ERR_IO,
		                    "%.*s is not in the Hugging Face Hub cache: no directory %s "
		                    "(the cache %s is %s); hoist never downloads: fetch it first "
		                    "(huggingface-cli download %.*s)",
		                    (int)idlen, id, repo, cache, where, (int)idlen, id);
	if (!rev)
		rev = "main";
	snprintf(ref, sizeof ref, "%s/refs/%s", repo, rev);
	if (read_ref(ref, commit, sizeof commit)) {
		/* a branch or a tag */
	} else if (is_commit(rev)) {
		snprintf(commit, sizeof commit, "%s", rev);
	} else {
		return hoist__error(HOIST_ERR_IO,
		                    "%.*s@%s is not in the Hugging Face Hub cache: no %s, and "
		                    "\"%s\" is not a commit hash (the cache %s is %s); hoist "
		                    "never downloads: fetch it first (huggingface-cli download "
		                    "%.*s --revision %s)",
		                    (int)idlen, id, rev, ref, rev, cache, where, (int)idlen, id,
		                    rev);
	}
	n = snprintf(snap, sizeof snap, "%s/snapshots/%s", repo, commit);
	if (n < 0 || (size_t)n >= sizeof snap)
		return hoist__error(HOIST_ERR_INVALID, "%.*s: the snapshot path is too long",
		                    (int)idlen, id);
	if (!is_dir(snap))
		return hoist__error(HOIST_ERR_IO,
		                    "%.*s@%s is not in the Hugging Face Hub cache: %s names commit "
		                    "%s, but there is no %s; hoist never downloads: fetch it first "
		                    "(huggingface-cli download %.*s)",
		                    (int)idlen, id, rev, ref, commit, snap, (int)idlen, id);
	if ((size_t)n >= size)
		return hoist__error(HOIST_ERR_INVALID,
		                    "hoist_hub_resolve: %zu bytes of output for %s, which needs %d",
		                    size, snap, n + 1);
	memcpy(out, snap, (size_t)n + 1);
	return HOIST_OK;
}

enum hoist_status hoist__hub_resolve_text(const char *text, char *out, size_t size)
{
	size_t idlen;
	const char *rev;
	if (!text || !out || size == 0 || !split(text, &idlen, &rev))
		return hoist__error(HOIST_ERR_INVALID,
		                    "\"%s\" is not a Hugging Face Hub model id (\"org/name\", "
		                    "optionally \"@revision\")",
		                    text ? text : "(null)");
	return resolve(text, idlen, rev, out, size);
}

enum hoist_status hoist_hub_resolve(const char *id, const char *revision, char *out, size_t size)
{
	size_t idlen;
	const char *rev;
	if (!id || !out || size == 0 || !split(id, &idlen, &rev) || rev ||
	    (revision && (!*revision || strlen(revision) >= REV_MAX || strchr(revision, '/'))))
		return hoist__error(HOIST_ERR_INVALID,
		                    "\"%s\"%s%s: not a Hugging Face Hub model id and revision",
		                    id ? id : "(null)", revision ? " at " : "",
		                    revision ? revision : "");
	return resolve(id, idlen, revision, out, size);
}
