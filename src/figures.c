/* figures.c - this machine's figures: where they are kept, reading and writing them,
 * and the prediction of a load's stream from them.
 *
 * The file is $XDG_CACHE_HOME/hoist/bench-<host>.json (~/.cache without
 * XDG_CACHE_HOME), one per host name because home directories are often shared
 * between machines. It is read with plain libc, not through the fault-injecting
 * wrappers: it is no file of a checkpoint, and the prediction reads it inside
 * hoist_plan_create, where an extra open would shift the fault tests' countdowns. */
#include "figures.h"
#include "json.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

const char *hoist_link_name(enum hoist_link link)
{
	static const char *const names[] = {
	        [HOIST_LINK_NONE] = "none",
	        [HOIST_LINK_STORAGE] = "storage",
	        [HOIST_LINK_PAGE_CACHE] = "page cache",
	        [HOIST_LINK_HOST_MEMORY] = "host memory",
	        [HOIST_LINK_MEMCPY] = "memcpy",
	        [HOIST_LINK_PINNED_TO_DEVICE] = "pinned -> device",
	        [HOIST_LINK_PAGEABLE_TO_DEVICE] = "pageable -> device",
	        [HOIST_LINK_REGISTER] = "registration",
	        [HOIST_LINK_REGISTERED_TO_DEVICE] = "registered -> device",
	};
	return (unsigned)link < HOIST__ARRAY_SIZE(names) ? names[link] : NULL;
}

static enum hoist_link link_parse(const char *name)
{
	for (int l = HOIST_LINK_STORAGE; l < HOIST_LINK_COUNT; l++)
		if (strcmp(hoist_link_name((enum hoist_link)l), name) == 0)
			return (enum hoist_link)l;
	return HOIST_LINK_NONE;
}

/* ---- the set --------------------------------------------------------------------- */

enum hoist_status hoist__bench_new(struct hoist_bench **out)
{
	*out = hoist__calloc(1, sizeof **out);
	return *out ? HOIST_OK : hoist__error(HOIST_ERR_NOMEM, "out of memory for figures");
}

void hoist_bench_free(struct hoist_bench *b)
{
	if (!b)
		return;
	hoist__free(b->figs);
	hoist__strings_free(&b->skipped);
	hoist__free(b);
}

static bool same_key(const struct hoist__figure *a, enum hoist_link link,
                     struct hoist_device device, uint64_t fs_dev)
{
	return a->pub.link == link && a->pub.device.kind == device.kind &&
	       a->pub.device.index == device.index &&
	       (link != HOIST_LINK_STORAGE || a->fs_dev == fs_dev);
}

enum hoist_status hoist__bench_put(struct hoist_bench *b, const struct hoist__figure *f)
{
	size_t i = 0;
	while (i < b->count && !same_key(&b->figs[i], f->pub.link, f->pub.device, f->fs_dev))
		i++;
	if (i == b->count) {
		if (!hoist__grow(&b->figs, &b->cap, b->count, sizeof *b->figs, 16))
			return hoist__error(HOIST_ERR_NOMEM, "out of memory for figures");
		b->count++;
		/* the array may have moved: every figure's where points into it */
		for (size_t k = 0; k < b->count - 1; k++)
			b->figs[k].pub.where = b->figs[k].where;
	}
	b->figs[i] = *f;
	b->figs[i].pub.where = b->figs[i].where;
	return HOIST_OK;
}

const struct hoist__figure *hoist__bench_find(const struct hoist_bench *b, enum hoist_link link,
                                              struct hoist_device device, uint64_t fs_dev)
{
	for (size_t i = 0; b && i < b->count; i++)
		if (same_key(&b->figs[i], link, device, fs_dev))
			return &b->figs[i];
	return NULL;
}

const struct hoist__figure *hoist__bench_best_storage(const struct hoist_bench *b)
{
	const struct hoist__figure *best = NULL;
	for (size_t i = 0; b && i < b->count; i++)
		if (b->figs[i].pub.link == HOIST_LINK_STORAGE &&
		    (!best || b->figs[i].pub.bytes_per_second > best->pub.bytes_per_second))
			best = &b->figs[i];
	return best;
}

size_t hoist_bench_figure_count(const struct hoist_bench *b)
{
	return b ? b->count : 0;
}

const struct hoist_figure *hoist_bench_figure(const struct hoist_bench *b, size_t i)
{
	return b && i < b->count ? &b->figs[i].pub : NULL;
}

size_t hoist_bench_skipped_count(const struct hoist_bench *b)
{
	return b ? b->skipped.count : 0;
}

const char *hoist_bench_skipped(const struct hoist_bench *b, size_t i)
{
	return b && i < b->skipped.count ? b->skipped.items[i] : NULL;
}

uint64_t hoist__fs_dev(const char *path)
{
	struct stat st;
	return path && stat(path, &st) == 0 ? (uint64_t)st.st_dev : 0;
}

/* ---- where the figures are kept ---------------------------------------------------- */

static enum hoist_status make_dirs(const char *dir);

/* The directory: $XDG_CACHE_HOME/hoist (the XDG spec ignores a relative value), else
 * $HOME/.cache/hoist. */
static enum hoist_status figures_dir(char *buf, size_t size)
{
	const char *xdg = getenv("XDG_CACHE_HOME");
	const char *home = getenv("HOME");
	int n;
	if (xdg && xdg[0] == '/')
		n = snprintf(buf, size, "%s/hoist", xdg);
	else if (home && home[0] == '/')
		n = snprintf(buf, size, "%s/.cache/hoist", home);
	else
		return hoist__error(HOIST_ERR_INVALID,
		                    "no place for this machine's figures: neither XDG_CACHE_HOME "
		                    "nor HOME is an absolute path");
	if (n < 0 || (size_t)n >= size)
		return hoist__error(HOIST_ERR_INVALID, "the figures' directory is too long a path");
	return HOIST_OK;
}

enum hoist_status hoist__figures_dir(char *buf, size_t size, bool create)
{
	enum hoist_status st = figures_dir(buf, size);
	return st == HOIST_OK && create ? make_dirs(buf) : st;
}

enum hoist_status hoist_bench_path(char *buf, size_t size)
{
	char dir[4096], host[256] = "";
	if (!buf || size == 0)
		return hoist__error(HOIST_ERR_INVALID, "hoist_bench_path: no buffer");
	buf[0] = '\0';
	enum hoist_status st = figures_dir(dir, sizeof dir);
	if (st != HOIST_OK)
		return st;
	if (gethostname(host, sizeof host - 1) != 0 || !host[0])
		snprintf(host, sizeof host, "localhost");
	/* the name goes into a file name: keep letters, digits, '.', '-', '_' */
	for (char *c = host; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		      (*c >= '0' && *c <= '9') || *c == '.' || *c == '-' || *c == '_'))
			*c = '_';
	int n = snprintf(buf, size, "%s/bench-%s.json", dir, host);
	if (n < 0 || (size_t)n >= size) {
		buf[0] = '\0';
		return hoist__error(HOIST_ERR_INVALID, "the figures' path is too long");
	}
	return HOIST_OK;
}

/* ---- reading and writing ----------------------------------------------------------- */

static bool device_parse(const char *text, struct hoist_device *out)
{
	return text && hoist_device_parse(text, out) == HOIST_OK && out->index >= 0 &&
	       out->kind != HOIST_DEVICE_DISK;
}

/* One entry of the file, or false where it is not one (skipped: a later hoist may
 * write links this one does not know). */
static bool figure_parse(json_t *e, struct hoist__figure *f)
{
	memset(f, 0, sizeof *f);
	const char *link = json_string_value(json_object_get(e, "link"));
	const char *dev = json_string_value(json_object_get(e, "device"));
	json_t *bps = json_object_get(e, "bytes_per_second");
	f->pub.link = link ? link_parse(link) : HOIST_LINK_NONE;
	if (f->pub.link == HOIST_LINK_NONE || !device_parse(dev, &f->pub.device) ||
	    !json_is_number(bps) || !(json_number_value(bps) > 0))
		return false;
	f->pub.bytes_per_second = json_number_value(bps);
	json_int_t bytes = json_integer_value(json_object_get(e, "bytes"));
	f->pub.bytes = bytes > 0 ? (uint64_t)bytes : 0;
	f->pub.seconds = json_number_value(json_object_get(e, "seconds"));
	json_int_t threads = json_integer_value(json_object_get(e, "threads"));
	f->pub.threads = threads > 0 && threads < 1 << 20 ? (unsigned)threads : 0;
	f->pub.measured_at = (int64_t)json_integer_value(json_object_get(e, "measured_at"));
	const char *where = json_string_value(json_object_get(e, "where"));
	snprintf(f->where, sizeof f->where, "%s", where ? where : "");
	const char *fs = json_string_value(json_object_get(e, "fs_dev"));
	unsigned maj, min;
	if (fs && sscanf(fs, "%u:%u", &maj, &min) == 2)
		f->fs_dev = (uint64_t)makedev(maj, min);
	return f->pub.link != HOIST_LINK_STORAGE || f->fs_dev != 0;
}

enum hoist_status hoist__bench_read(const char *file, struct hoist_bench *b)
{
	struct stat st;
	if (stat(file, &st) != 0 && errno == ENOENT)
		return HOIST_OK;
	json_error_t jerr;
	json_t *root = json_load_file(file, JSON_REJECT_DUPLICATES, &jerr);
	if (!root)
		return hoist__error(HOIST_ERR_FORMAT, "%s: not valid JSON: %s (line %d)", file,
		                    jerr.text, jerr.line);
	enum hoist_status rc = HOIST_OK;
	json_t *figs = json_object_get(root, "figures");
	if (!json_is_array(figs)) {
		rc = hoist__error(HOIST_ERR_FORMAT, "%s: no \"figures\" array", file);
		goto out;
	}
	size_t i;
	json_t *e;
	json_array_foreach(figs, i, e)
	{
		struct hoist__figure f;
		if (figure_parse(e, &f) && (rc = hoist__bench_put(b, &f)) != HOIST_OK)
			break;
	}
out:
	json_decref(root);
	return rc;
}

enum hoist_status hoist_bench_stored(struct hoist_bench **out)
{
	char file[4096];
	if (!out)
		return hoist__error(HOIST_ERR_INVALID, "hoist_bench_stored: NULL out");
	*out = NULL;
	enum hoist_status st = hoist_bench_path(file, sizeof file);
	if (st == HOIST_OK)
		st = hoist__bench_new(out);
	if (st == HOIST_OK)
		st = hoist__bench_read(file, *out);
	if (st != HOIST_OK) {
		hoist_bench_free(*out);
		*out = NULL;
	}
	return st;
}

/* mkdir -p, owner only (the figures say what the machine is). */
static enum hoist_status make_dirs(const char *dir)
{
	char path[4096];
	snprintf(path, sizeof path, "%s", dir);
	for (char *p = path + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char c = *p;
		*p = '\0';
		if (mkdir(path, 0700) != 0 && errno != EEXIST)
			return hoist__error(HOIST_ERR_IO, "%s: cannot create it: %s", path,
			                    strerror(errno));
		*p = c;
		if (!c)
			return HOIST_OK;
	}
}

static void write_figure(FILE *f, const struct hoist__figure *g)
{
	char dev[24];
	fputs("  {\"link\":", f);
	hoist__json_write_string(f, hoist_link_name(g->pub.link));
	fputs(",\"device\":", f);
	hoist__json_write_string(f, hoist_device_format(g->pub.device, dev, sizeof dev));
	fprintf(f, ",\"bytes_per_second\":%.6g,\"bytes\":%llu,\"seconds\":%.6f,\"threads\":%u",
	        g->pub.bytes_per_second, (unsigned long long)g->pub.bytes, g->pub.seconds,
	        g->pub.threads);
	fputs(",\"where\":", f);
	hoist__json_write_string(f, g->where);
	if (g->pub.link == HOIST_LINK_STORAGE)
		fprintf(f, ",\"fs_dev\":\"%u:%u\"", major((dev_t)g->fs_dev),
		        minor((dev_t)g->fs_dev));
	fprintf(f, ",\"measured_at\":%lld}", (long long)g->pub.measured_at);
}

enum hoist_status hoist_bench_save(const struct hoist_bench *b)
{
	char file[4096], dir[4096], tmp[4200];
	struct hoist_bench *all = NULL;
	FILE *f = NULL;
	if (!b)
		return hoist__error(HOIST_ERR_INVALID, "hoist_bench_save: NULL figures");
	enum hoist_status st = hoist_bench_path(file, sizeof file);
	if (st != HOIST_OK || (st = figures_dir(dir, sizeof dir)) != HOIST_OK ||
	    (st = make_dirs(dir)) != HOIST_OK || (st = hoist__bench_new(&all)) != HOIST_OK)
		goto out;
	/* A damaged file is replaced: its figures cannot be kept anyway. */
	if (hoist__bench_read(file, all) == HOIST_ERR_NOMEM) {
		st = HOIST_ERR_NOMEM;
		goto out;
	}
	for (size_t i = 0; i < b->count; i++)
		if ((st = hoist__bench_put(all, &b->figs[i])) != HOIST_OK)
			goto out;
	snprintf(tmp, sizeof tmp, "%s.%ld.tmp", file, (long)getpid());
	if (!(f = fopen(tmp, "w"))) {
		st = hoist__error(HOIST_ERR_IO, "%s: cannot write: %s", tmp, strerror(errno));
		goto out;
	}
	char host[256] = "";
	gethostname(host, sizeof host - 1);
	fputs("{\"hoist_bench\":1,\"host\":", f);
	hoist__json_write_string(f, host);
	fputs(",\"figures\":[\n", f);
	for (size_t i = 0; i < all->count; i++) {
		write_figure(f, &all->figs[i]);
		fputs(i + 1 < all->count ? ",\n" : "\n", f);
	}
	fputs("]}\n", f);
	bool bad = ferror(f) != 0;
	int err = errno;
	if (fclose(f) != 0 && !bad) {
		bad = true;
		err = errno;
	}
	f = NULL;
	if (bad || rename(tmp, file) != 0) {
		if (!bad)
			err = errno;
		unlink(tmp);
		st = hoist__error(HOIST_ERR_IO, "%s: cannot write: %s", file, strerror(err));
	}
out:
	hoist_bench_free(all);
	return st;
}

/* ---- the prediction ---------------------------------------------------------------- */

/* The figures kept for this machine, read again whenever the file changes (a stat per
 * prediction). Errors in the file leave the set empty: a prediction then rests on the
 * assumptions, as it does where nothing was measured. */
static struct {
	pthread_mutex_t lock;
	char file[4096];
	struct stat st;
	bool valid;
	struct hoist_bench *figs;
} stored = {PTHREAD_MUTEX_INITIALIZER, "", {0}, false, NULL};

/* With stored.lock held. */
static const struct hoist_bench *stored_figures(void)
{
	char file[4096];
	struct stat st;
	if (hoist_bench_path(file, sizeof file) != HOIST_OK || stat(file, &st) != 0) {
		hoist__error_clear();
		hoist_bench_free(stored.figs);
		stored.figs = NULL;
		stored.valid = false;
		return NULL;
	}
	if (stored.valid && strcmp(file, stored.file) == 0 && st.st_ino == stored.st.st_ino &&
	    st.st_size == stored.st.st_size && st.st_mtim.tv_sec == stored.st.st_mtim.tv_sec &&
	    st.st_mtim.tv_nsec == stored.st.st_mtim.tv_nsec)
		return stored.figs;
	hoist_bench_free(stored.figs);
	stored.figs = NULL;
	stored.valid = false;
	struct hoist_bench *b = NULL;
	if (hoist__bench_new(&b) != HOIST_OK || hoist__bench_read(file, b) != HOIST_OK) {
		hoist__error_clear();
		hoist_bench_free(b);
		return NULL;
	}
	snprintf(stored.file, sizeof stored.file, "%s", file);
	stored.st = st;
	stored.valid = true;
	stored.figs = b;
	return b;
}

bool hoist__figure_stored(enum hoist_link link, struct hoist_device device, uint64_t fs_dev,
                          struct hoist__figure *out)
{
	pthread_mutex_lock(&stored.lock);
	const struct hoist__figure *f = hoist__bench_find(stored_figures(), link, device, fs_dev);
	if (f) {
		*out = *f;
		out->pub.where = out->where;
	}
	pthread_mutex_unlock(&stored.lock);
	return f != NULL;
}

/* A link's figure as the prediction uses it. */
struct rate {
	double bps;
	bool known; /* measured here (or a sim device's cap), not assumed */
	int64_t at; /* when measured; 0 for a cap or an assumption */
};

static struct rate rate_of(const struct hoist_bench *b, enum hoist_link link,
                           struct hoist_device dev, uint64_t fs_dev, double assumption)
{
	const struct hoist__figure *f = hoist__bench_find(b, link, dev, fs_dev);
	return f ? (struct rate){f->pub.bytes_per_second, true, f->pub.measured_at}
	         : (struct rate){assumption, false, 0};
}

/* Takes a term of the prediction: seconds over a link; the longest bounds it. */
static void term(struct hoist_prediction *p, double seconds, enum hoist_link link,
                 struct hoist_device dev, uint64_t bytes, struct rate r)
{
	if (!r.known)
		p->assumed++;
	if (r.at > p->measured_at)
		p->measured_at = r.at;
	if (bytes == 0 || seconds <= p->seconds)
		return;
	p->seconds = seconds;
	p->bound = link;
	p->bound_device = dev;
	p->bound_bytes = bytes;
	p->bound_bytes_per_second = r.bps;
}

void hoist__predict(const struct hoist__load_shape *s, int cold, struct hoist_prediction *out)
{
	const struct hoist_device cpu = {HOIST_DEVICE_CPU, 0};
	memset(out, 0, sizeof *out);
	pthread_mutex_lock(&stored.lock);
	const struct hoist_bench *b = stored_figures();
	uint64_t staged = s->read_bytes - HOIST__MIN(s->host_bytes, s->read_bytes);
	if (s->read_bytes > 0) {
		if (cold) {
			struct rate r = rate_of(b, HOIST_LINK_STORAGE, cpu, hoist__fs_dev(s->path),
			                        HOIST__ASSUMED_STORAGE);
			term(out, (double)s->read_bytes / r.bps, HOIST_LINK_STORAGE, cpu,
			     s->read_bytes, r);
		} else {
			/* the readers' time is shared: staging reads, then arena reads */
			struct rate pc =
			        rate_of(b, HOIST_LINK_PAGE_CACHE, cpu, 0, HOIST__ASSUMED_WARM);
			struct rate hm =
			        rate_of(b, HOIST_LINK_HOST_MEMORY, cpu, 0, HOIST__ASSUMED_WARM);
			double ts = (double)staged / pc.bps, th = (double)s->host_bytes / hm.bps;
			if (staged && (ts >= th || !s->host_bytes))
				term(out, ts + th, HOIST_LINK_PAGE_CACHE, cpu, staged, pc);
			else if (s->host_bytes)
				term(out, ts + th, HOIST_LINK_HOST_MEMORY, cpu, s->host_bytes, hm);
			/* the other of the two counts as a figure used */
			if (staged && s->host_bytes)
				term(out, 0, HOIST_LINK_NONE, cpu, 0, ts >= th ? hm : pc);
		}
	}
	for (size_t g = 0; g < s->ngpu; g++) {
		struct rate r = {s->copy_bw, s->copy_known, 0};
		if (s->gpu[g].kind == HOIST_DEVICE_CUDA)
			r = rate_of(b, HOIST_LINK_PINNED_TO_DEVICE, s->gpu[g], 0, s->copy_bw);
		if (s->gpu_bytes[g])
			term(out, (double)s->gpu_bytes[g] / r.bps, HOIST_LINK_PINNED_TO_DEVICE,
			     s->gpu[g], s->gpu_bytes[g], r);
	}
	pthread_mutex_unlock(&stored.lock);
}
