/* groups.c - numbered layers and their families, by sorting (n log n, whatever the
 * names): a group's tensors need not be adjacent in the file, nor a family's groups. */
#include "groups.h"

#include <stdlib.h>
#include <string.h>

struct key {
	const char *text;
	size_t len;
	size_t index;
};

/* By text, then length, then index: equal prefixes end up together, first first. */
static int key_cmp(const void *a, const void *b)
{
	const struct key *x = a, *y = b;
	int c = memcmp(x->text, y->text, HOIST__MIN(x->len, y->len));
	if (c == 0 && x->len != y->len)
		c = x->len < y->len ? -1 : 1;
	if (c == 0 && x->index != y->index)
		c = x->index < y->index ? -1 : 1;
	return c;
}

static int group_by_first(const void *a, const void *b)
{
	const struct hoist_layer_group *x = a, *y = b;
	return x->first_tensor < y->first_tensor ? -1 : x->first_tensor > y->first_tensor;
}

static int family_by_first(const void *a, const void *b)
{
	const struct hoist_layer_family *x = a, *y = b;
	return x->first_tensor < y->first_tensor ? -1 : x->first_tensor > y->first_tensor;
}

/* The prefix "stem.<digits>." as "stem.N." into out (len + 2 bytes at most with its
 * NUL); returns the bytes written, NUL included. */
static size_t write_pattern(const char *prefix, size_t len, char *out)
{
	size_t digits = len - 1; /* the prefix ends in '.' */
	while (digits > 0 && prefix[digits - 1] >= '0' && prefix[digits - 1] <= '9')
		digits--;
	memcpy(out, prefix, digits);
	memcpy(out + digits, "N.", 3);
	return digits + 3;
}

void hoist__families_free(struct hoist__families *f)
{
	if (!f)
		return;
	hoist__free(f->groups);
	hoist__free(f->items);
	hoist__free(f->strings);
	hoist__free(f);
}

enum hoist_status hoist__families_build(const struct hoist_tensor_info *tensors, size_t n,
                                        struct hoist__families **out)
{
	enum hoist_status st = HOIST_OK;
	struct hoist__families *f = hoist__calloc(1, sizeof *f);
	struct key *keys = hoist__calloc(n ? n : 1, sizeof *keys);
	size_t nkeys = 0, pool = 0;
	*out = NULL;
	if (!f || !keys || !(f->groups = hoist__calloc(n ? n : 1, sizeof *f->groups)))
		goto nomem;
	for (size_t i = 0; i < n; i++) {
		size_t len = hoist_layer_group_prefix(tensors[i].name);
		if (len == 0) {
			f->ungrouped_tensors++;
			f->ungrouped_bytes += tensors[i].nbytes;
		} else {
			keys[nkeys++] = (struct key){tensors[i].name, len, i};
			pool += 2 * len + 4; /* the prefix and its pattern, each with a NUL */
		}
	}
	if (!(f->strings = hoist__malloc(pool ? pool : 1)))
		goto nomem;
	qsort(keys, nkeys, sizeof *keys, key_cmp);
	char *p = f->strings;
	for (size_t i = 0; i < nkeys; i++) {
		struct hoist_layer_group *g = f->ngroups ? &f->groups[f->ngroups - 1] : NULL;
		if (!g || strlen(g->prefix) != keys[i].len ||
		    memcmp(g->prefix, keys[i].text, keys[i].len) != 0) {
			g = &f->groups[f->ngroups++];
			memcpy(p, keys[i].text, keys[i].len);
			p[keys[i].len] = '\0';
			*g = (struct hoist_layer_group){.prefix = p, .first_tensor = keys[i].index};
			p += keys[i].len + 1;
		}
		g->tensors++;
		g->bytes += tensors[keys[i].index].nbytes;
	}
	qsort(f->groups, f->ngroups, sizeof *f->groups, group_by_first);
	/* Families: the same again, over the groups' patterns (keys reused: there are at
	 * least as many keys as groups). */
	for (size_t k = 0; k < f->ngroups; k++) {
		const char *prefix = f->groups[k].prefix;
		size_t m = write_pattern(prefix, strlen(prefix), p);
		keys[k] = (struct key){p, m - 1, k};
		p += m;
	}
	qsort(keys, f->ngroups, sizeof *keys, key_cmp);
	if (!(f->items = hoist__calloc(f->ngroups ? f->ngroups : 1, sizeof *f->items)))
		goto nomem;
	for (size_t i = 0; i < f->ngroups; i++) {
		const struct hoist_layer_group *g = &f->groups[keys[i].index];
		struct hoist_layer_family *fm = f->count ? &f->items[f->count - 1] : NULL;
		if (!fm || strcmp(fm->pattern, keys[i].text) != 0) {
			fm = &f->items[f->count++];
			*fm = (struct hoist_layer_family){.pattern = keys[i].text,
			                                  .group_min_bytes = UINT64_MAX,
			                                  .first_tensor = g->first_tensor};
		}
		fm->groups++;
		fm->tensors += g->tensors;
		fm->bytes += g->bytes;
		fm->group_min_bytes = HOIST__MIN(fm->group_min_bytes, g->bytes);
		fm->group_max_bytes = HOIST__MAX(fm->group_max_bytes, g->bytes);
		fm->first_tensor = HOIST__MIN(fm->first_tensor, g->first_tensor);
	}
	qsort(f->items, f->count, sizeof *f->items, family_by_first);
	*out = f;
	f = NULL;
	goto out;
nomem:
	st = hoist__error(HOIST_ERR_NOMEM, "out of memory grouping %zu tensors into layers", n);
out:
	hoist__free(keys);
	hoist__families_free(f);
	return st;
}
