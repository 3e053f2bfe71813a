/* plan_map.c - explicit device maps in accelerate's JSON form:
 * {"model.visual": 0, "model.language_model.layers.12": "cpu", "lm_head": "disk"}.
 *
 * A key is a module or tensor-name prefix matched on component boundaries ("a.b"
 * covers "a.b" and "a.b.c", never "a.bc"); "" covers everything; the longest key
 * covering a tensor decides its device. accelerate writes in-memory module names,
 * which transformers renames on the way to and from files, so a key that covers no
 * checkpoint name is tried under the known renames (see renames[] below). */
#include "json.h"
#include "names.h"
#include "plan_map.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* transformers' renames between in-memory module names and checkpoint names
 * (Qwen2-VL and LLaVA-style models since transformers 4.52: the language model
 * and the vision tower moved under "model."). Tried in order on "key.", first
 * rename whose result covers a tensor wins. */
static const struct {
	const char *from, *to;
} renames[] = {
        {"model.language_model.", "model."},
        {"model.visual.", "visual."},
        {"model.", "model.language_model."},
        {"visual.", "model.visual."},
        {"model.language_model.", "language_model.model."},
        {"language_model.model.", "model.language_model."},
        {"model.vision_tower.", "vision_tower."},
        {"vision_tower.", "model.vision_tower."},
        {"model.multi_modal_projector.", "multi_modal_projector."},
        {"multi_modal_projector.", "model.multi_modal_projector."},
        {"lm_head.", "language_model.lm_head."},
        {"language_model.lm_head.", "lm_head."},
};

void hoist__map_free(struct hoist__map *map)
{
	if (!map)
		return;
	for (size_t i = 0; i < map->count; i++) {
		hoist__free(map->entries[i].prefix);
		hoist__free(map->entries[i].written);
	}
	hoist__free(map->entries);
	hoist__free(map->path);
	hoist__free(map);
}

static int entry_cmp(const void *a, const void *b)
{
	const struct hoist__map_entry *x = a, *y = b;
	return strcmp(x->prefix, y->prefix);
}

/* Parses one value: an integer or digit string (a GPU ordinal of gpu_kind), "cpu",
 * "disk", "cuda:N", "sim:N". */
static enum hoist_status parse_value(const char *path, const char *key, json_t *v,
                                     enum hoist_device_kind gpu_kind, struct hoist_device *out)
{
	long long ordinal = -1;
	if (json_is_integer(v)) {
		ordinal = json_integer_value(v);
	} else if (json_is_string(v) &&
	           hoist__name_digits(json_string_value(v), strlen(json_string_value(v)))) {
		const char *s = json_string_value(v);
		ordinal = strlen(s) > 6 ? HOIST_MAX_DEVICES : atoll(s);
	} else if (json_is_string(v)) {
		const char *s = json_string_value(v);
		if (hoist_device_parse(s, out) != HOIST_OK || out->index < 0)
			return hoist__error(
			        HOIST_ERR_INVALID,
			        "device map %s: \"%s\": unknown device \"%s\" (expected a GPU "
			        "ordinal, \"cpu\", \"disk\", \"cuda:N\" or \"sim:N\")",
			        path, key, s);
		if ((out->kind == HOIST_DEVICE_CUDA || out->kind == HOIST_DEVICE_SIM) &&
		    out->kind != gpu_kind)
			return hoist__error(
			        HOIST_ERR_INVALID,
			        "device map %s: \"%s\": \"%s\" is not of the target's kind "
			        "(%s devices)",
			        path, key, s, gpu_kind == HOIST_DEVICE_SIM ? "sim" : "cuda");
		if (out->index >= HOIST_MAX_DEVICES)
			return hoist__error(
			        HOIST_ERR_INVALID,
			        "device map %s: \"%s\": \"%s\": GPU ordinals go up to %d", path,
			        key, s, HOIST_MAX_DEVICES - 1);
		return HOIST_OK;
	} else {
		return hoist__error(
		        HOIST_ERR_INVALID,
		        "device map %s: \"%s\": expected a GPU ordinal or a device name", path,
		        key);
	}
	if (ordinal < 0 || ordinal >= HOIST_MAX_DEVICES)
		return hoist__error(HOIST_ERR_INVALID,
		                    "device map %s: \"%s\": GPU ordinal %lld out of range 0..%d",
		                    path, key, ordinal, HOIST_MAX_DEVICES - 1);
	out->kind = gpu_kind;
	out->index = (int)ordinal;
	return HOIST_OK;
}

enum hoist_status hoist__map_load(const char *path, enum hoist_device_kind gpu_kind,
                                  struct hoist__map **out)
{
	enum hoist_status st = HOIST_OK;
	struct hoist__map *map = NULL;
	json_t *root = NULL;

	*out = NULL;
	st = hoist__json_read_file(path, JSON_REJECT_DUPLICATES, &root);
	if (st != HOIST_OK) {
		/* A map file is an option's value: one that is not JSON is a bad option. */
		char why[1024];
		snprintf(why, sizeof why, "%s", hoist_errmsg()); /* "<path>: <what>" */
		st = hoist__error(st == HOIST_ERR_FORMAT ? HOIST_ERR_INVALID : st, "device map %s",
		                  why);
		goto out;
	}
	if (!json_is_object(root)) {
		st = hoist__error(
		        HOIST_ERR_INVALID,
		        "device map %s: expected one JSON object {\"prefix\": device, ...}", path);
		goto out;
	}
	map = hoist__calloc(1, sizeof *map);
	if (!map || !(map->path = hoist__strdup(path)) ||
	    !(map->entries = hoist__calloc(json_object_size(root) ? json_object_size(root) : 1,
	                                   sizeof *map->entries))) {
		st = hoist__error(HOIST_ERR_NOMEM, "device map %s: out of memory", path);
		goto out;
	}
	const char *key;
	json_t *value;
	json_object_foreach(root, key, value)
	{
		struct hoist__map_entry *e = &map->entries[map->count];
		st = parse_value(path, key, value, gpu_kind, &e->device);
		if (st != HOIST_OK)
			goto out;
		/* "a.b." means the same as "a.b": prefixes end on component boundaries. */
		size_t n = strlen(key);
		if (n > 0 && key[n - 1] == '.')
			n--;
		e->written = hoist__strdup(key);
		e->prefix = hoist__strndup(key, n);
		map->count++;
		if (!e->written || !e->prefix) {
			st = hoist__error(HOIST_ERR_NOMEM, "device map %s: out of memory", path);
			goto out;
		}
	}
	qsort(map->entries, map->count, sizeof *map->entries, entry_cmp);
	for (size_t i = 1; i < map->count; i++) {
		if (strcmp(map->entries[i - 1].prefix, map->entries[i].prefix) == 0) {
			st = hoist__error(HOIST_ERR_INVALID,
			                  "device map %s: \"%s\" and \"%s\" name the same prefix",
			                  path, map->entries[i - 1].written,
			                  map->entries[i].written);
			goto out;
		}
	}
	*out = map;
	map = NULL;
out:
	json_decref(root);
	hoist__map_free(map);
	return st;
}

/* ---- resolution --------------------------------------------------------------------- */

struct names {
	const struct hoist_checkpoint *ckpt;
	size_t *sorted; /* tensor indices by name, bytewise */
	size_t count;
};

static const char *tname(const struct names *nm, size_t i)
{
	return hoist_checkpoint_tensor(nm->ckpt, nm->sorted[i])->name;
}

/* First position whose name is >= s (bytewise). */
static size_t lower_bound(const struct names *nm, const char *s)
{
	size_t lo = 0, hi = nm->count;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (strcmp(tname(nm, mid), s) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Whether prefix (on component boundaries) covers at least one checkpoint name. */
static bool covers_any(const struct names *nm, const char *prefix)
{
	size_t n = strlen(prefix);
	if (n == 0)
		return nm->count > 0;
	size_t i = lower_bound(nm, prefix);
	/* Names equal to prefix, or beginning "prefix.", sort at or after prefix; names
	 * beginning with prefix and a byte below '.' may come between. */
	for (; i < nm->count; i++) {
		const char *name = tname(nm, i);
		if (strncmp(name, prefix, n) != 0)
			return false;
		if (name[n] == '\0' || name[n] == '.')
			return true;
		if ((unsigned char)name[n] > '.')
			return false;
	}
	return false;
}

static int name_cmp(const void *a, const void *b, void *arg)
{
	const struct hoist_checkpoint *ckpt = arg;
	size_t x = *(const size_t *)a, y = *(const size_t *)b;
	return strcmp(hoist_checkpoint_tensor(ckpt, x)->name,
	              hoist_checkpoint_tensor(ckpt, y)->name);
}

/* The entry whose prefix equals name[0..len), or -1. */
static long find_entry(const struct hoist__map *map, const char *name, size_t len)
{
	size_t lo = 0, hi = map->count;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const char *p = map->entries[mid].prefix;
		int c = strncmp(p, name, len);
		if (c == 0 && p[len] != '\0')
			c = 1;
		if (c == 0)
			return (long)mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

static bool prefix_taken(const struct hoist__map *map, const char *prefix)
{
	for (size_t i = 0; i < map->count; i++)
		if (strcmp(map->entries[i].prefix, prefix) == 0)
			return true;
	return false;
}

/* Tries the renames on an entry that covers nothing; on success replaces its prefix. */
static enum hoist_status try_renames(struct hoist__map *map, struct hoist__map_entry *e,
                                     const struct names *nm, bool *renamed)
{
	enum hoist_status st = HOIST_OK;
	size_t n = strlen(e->prefix);
	char *dotted = hoist__malloc(n + 2), *cand = NULL;
	if (!dotted)
		return hoist__error(HOIST_ERR_NOMEM, "device map %s: out of memory", map->path);
	memcpy(dotted, e->prefix, n);
	memcpy(dotted + n, ".", 2);
	for (size_t r = 0; r < HOIST__ARRAY_SIZE(renames); r++) {
		size_t fl = strlen(renames[r].from), tl = strlen(renames[r].to);
		if (strncmp(dotted, renames[r].from, fl) != 0)
			continue;
		size_t rest = n + 1 - fl; /* what follows "from", ending in '.' or empty */
		cand = hoist__malloc(tl + rest + 1);
		if (!cand) {
			st = hoist__error(HOIST_ERR_NOMEM, "device map %s: out of memory",
			                  map->path);
			goto out;
		}
		memcpy(cand, renames[r].to, tl);
		memcpy(cand + tl, dotted + fl, rest);
		cand[tl + rest - 1] = '\0'; /* drop the trailing '.' */
		if (!prefix_taken(map, cand) && covers_any(nm, cand)) {
			hoist__free(e->prefix);
			e->prefix = cand;
			cand = NULL;
			*renamed = true;
			goto out;
		}
		hoist__free(cand);
		cand = NULL;
	}
out:
	hoist__free(cand);
	hoist__free(dotted);
	return st;
}

enum hoist_status hoist__map_resolve(struct hoist__map *map, const struct hoist_checkpoint *ckpt,
                                     size_t *entry_of)
{
	enum hoist_status st = HOIST_OK;
	struct names nm = {ckpt, NULL, hoist_checkpoint_tensor_count(ckpt)};

	nm.sorted = hoist__calloc(nm.count ? nm.count : 1, sizeof *nm.sorted);
	if (!nm.sorted)
		return hoist__error(HOIST_ERR_NOMEM, "device map %s: out of memory", map->path);
	for (size_t i = 0; i < nm.count; i++)
		nm.sorted[i] = i;
	qsort_r(nm.sorted, nm.count, sizeof *nm.sorted, name_cmp, (void *)ckpt);

	bool renamed = false;
	for (size_t i = 0; i < map->count; i++) {
		struct hoist__map_entry *e = &map->entries[i];
		if (covers_any(&nm, e->prefix))
			continue;
		st = try_renames(map, e, &nm, &renamed);
		if (st != HOIST_OK)
			goto out;
	}
	if (renamed)
		qsort(map->entries, map->count, sizeof *map->entries, entry_cmp);

	for (size_t i = 0; i < map->count; i++)
		map->entries[i].used = false;
	for (size_t t = 0; t < nm.count; t++) {
		const char *name = hoist_checkpoint_tensor(ckpt, t)->name;
		size_t len = strlen(name);
		long hit = find_entry(map, name, len);
		while (hit < 0 && len > 0) {
			/* The next shorter prefix on a component boundary; "" last. */
			do
				len--;
			while (len > 0 && name[len] != '.');
			hit = find_entry(map, name, len);
		}
		if (hit < 0) {
			st = hoist__error(
			        HOIST_ERR_INVALID,
			        "device map %s: tensor \"%s\" is covered by no entry (add it, "
			        "a module prefix of it, or \"\" for everything)",
			        map->path, name);
			goto out;
		}
		entry_of[t] = (size_t)hit;
		map->entries[hit].used = true;
	}
out:
	hoist__free(nm.sorted);
	return st;
}
