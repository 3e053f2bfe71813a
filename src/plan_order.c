/* plan_order.c - the units the planner places and the order it fills devices in: the
 * caller's (a request, a module-order file) or hoist's own reading of the names, and
 * the tie groups that must share a device.
 *
 * Why an order at all: accelerate's dispatch runs each module where it lies and moves
 * activations between devices as the forward pass goes; a device holding one run of
 * the execution order is crossed once, while names sorted as text (lm_head before
 * model.*, visual.* after model.*) cross back and forth. */
#include "json.h"
#include "names.h"
#include "plan.h"
#include "source.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A module-order file larger than this is not one (a line per unit). */
#define ORDER_FILE_MAX (64ull << 20)

/* ---- the caller's units ---------------------------------------------------------- */

struct prefix {
	const char *text;
	size_t len;
	size_t unit;
};

static int prefix_cmp(const void *a, const void *b)
{
	const struct prefix *x = a, *y = b;
	int c = memcmp(x->text, y->text, HOIST__MIN(x->len, y->len));
	if (c)
		return c;
	return x->len < y->len ? -1 : x->len > y->len;
}

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The unit of name: its longest prefix on a component boundary that some unit lists
 * (bsearch per candidate: a name has few components). SIZE_MAX: none. */
static size_t unit_of(const char *name, const struct prefix *pf, size_t n)
{
	size_t len = strlen(name);
	for (;;) {
		struct prefix key = {name, len, 0};
		const struct prefix *hit = bsearch(&key, pf, n, sizeof *pf, prefix_cmp);
		if (hit)
			return hit->unit;
		if (len == 0)
			return SIZE_MAX;
		while (len > 0 && name[len - 1] != '.')
			len--;
		if (len > 0)
			len--; /* drop the '.' itself: "a.b.c" -> "a.b" -> "a" -> "" */
	}
}

/* Copies the strings a request's units need into one pool the plan owns. */
static enum hoist_status copy_strings(struct hoist_plan *p, const struct hoist_plan_request *req)
{
	size_t total = 1;
	for (size_t u = 0; u < req->unit_count; u++) {
		const struct hoist_plan_unit *ru = &req->units[u];
		total += strlen(ru->name ? ru->name : "") + 1;
		if (ru->device)
			total += strlen(ru->device) + 1;
	}
	hoist__free(p->strings);
	if (!(p->strings = hoist__malloc(total)))
		return hoist__error(HOIST_ERR_NOMEM, "plan: out of memory for %zu units",
		                    req->unit_count);
	char *w = p->strings;
	for (size_t u = 0; u < req->unit_count; u++) {
		const struct hoist_plan_unit *ru = &req->units[u];
		struct hoist__unit *pu = &p->units[u];
		size_t n = strlen(ru->name ? ru->name : "");
		memcpy(w, ru->name ? ru->name : "", n + 1);
		pu->key = w;
		pu->keylen = n;
		w += n + 1;
		if (ru->device) {
			n = strlen(ru->device);
			memcpy(w, ru->device, n + 1);
			pu->fixed_text = w;
			w += n + 1;
		}
	}
	return HOIST_OK;
}

static enum hoist_status request_ties(struct hoist_plan *p, const struct hoist_plan_request *req)
{
	if (req->tie_count == 0)
		return HOIST_OK;
	if (!req->tie_units || !req->tie_offsets)
		return hoist__error(HOIST_ERR_INVALID, "plan request: %zu tie groups but no lists",
		                    req->tie_count);
	for (size_t g = 0; g < req->tie_count; g++) {
		size_t a = req->tie_offsets[g], b = req->tie_offsets[g + 1];
		if (b < a)
			return hoist__error(HOIST_ERR_INVALID,
			                    "plan request: tie group %zu: offsets %zu > %zu", g, a,
			                    b);
		for (size_t k = a; k < b; k++) {
			size_t u = req->tie_units[k];
			if (u >= p->nunits)
				return hoist__error(
				        HOIST_ERR_INVALID,
				        "plan request: tie group %zu names unit %zu of %zu", g, u,
				        p->nunits);
			if (p->units[u].tie >= 0 && p->units[u].tie != (int)g)
				return hoist__error(
				        HOIST_ERR_INVALID,
				        "plan request: unit \"%s\" is in tie groups %d and "
				        "%zu",
				        p->units[u].key, p->units[u].tie, g);
			p->units[u].tie = (int)g;
		}
	}
	p->nties = req->tie_count;
	return HOIST_OK;
}

enum hoist_status hoist__plan_request_units(struct hoist_plan *p,
                                            const struct hoist_plan_request *req)
{
	enum hoist_status st = HOIST_OK;
	size_t n = p->ntensors, np = 0;
	struct prefix *pf = NULL;
	const char **skip = NULL;
	size_t *unit_of_tensor = NULL, *fill = NULL;
	if (req->unit_count == 0 || !req->units)
		return hoist__error(HOIST_ERR_INVALID, "plan request: no units");
	for (size_t u = 0; u < req->unit_count; u++) {
		if (!req->units[u].prefixes && req->units[u].prefix_count)
			return hoist__error(HOIST_ERR_INVALID,
			                    "plan request: unit %zu: no prefixes", u);
		np += req->units[u].prefix_count;
	}
	hoist__free(p->units);
	hoist__free(p->seq);
	p->nunits = req->unit_count;
	p->units = hoist__calloc(p->nunits, sizeof *p->units);
	p->seq = hoist__calloc(p->nunits, sizeof *p->seq);
	pf = hoist__calloc(np ? np : 1, sizeof *pf);
	skip = hoist__calloc(req->skip_count ? req->skip_count : 1, sizeof *skip);
	unit_of_tensor = hoist__calloc(n ? n : 1, sizeof *unit_of_tensor);
	fill = hoist__calloc(p->nunits + 1, sizeof *fill);
	p->skipped = hoist__calloc(n ? n : 1, 1);
	if (!p->units || !p->seq || !pf || !skip || !unit_of_tensor || !fill || !p->skipped) {
		st = hoist__error(HOIST_ERR_NOMEM, "plan: out of memory for %zu units", p->nunits);
		goto out;
	}
	for (size_t u = 0; u < p->nunits; u++) {
		p->units[u].dev = p->units[u].fixed = p->units[u].tie = -1;
	}
	if ((st = copy_strings(p, req)) != HOIST_OK)
		goto out;
	size_t k = 0;
	for (size_t u = 0; u < req->unit_count; u++)
		for (size_t j = 0; j < req->units[u].prefix_count; j++) {
			const char *t = req->units[u].prefixes[j];
			if (!t) {
				st = hoist__error(HOIST_ERR_INVALID,
				                  "plan request: unit \"%s\": prefix %zu is NULL",
				                  p->units[u].key, j);
				goto out;
			}
			size_t len = strlen(t);
			if (len && t[len - 1] == '.')
				len--; /* "model.layers.0." covers what "model.layers.0" does */
			pf[k++] = (struct prefix){t, len, u};
		}
	qsort(pf, np, sizeof *pf, prefix_cmp);
	for (size_t i = 1; i < np; i++)
		if (prefix_cmp(&pf[i - 1], &pf[i]) == 0) {
			st = hoist__error(HOIST_ERR_INVALID,
			                  "plan request: prefix \"%.*s\" is given for units \"%s\" "
			                  "and \"%s\"",
			                  (int)pf[i].len, pf[i].text, p->units[pf[i - 1].unit].key,
			                  p->units[pf[i].unit].key);
			goto out;
		}
	for (size_t i = 0; i < req->skip_count; i++)
		skip[i] = req->skip[i] ? req->skip[i] : "";
	qsort(skip, req->skip_count, sizeof *skip, str_cmp);

	size_t missing = 0;
	const char *first_missing = NULL;
	for (size_t t = 0; t < n; t++) {
		const char *name = hoist_checkpoint_tensor(p->ckpt, t)->name;
		if (req->skip_count &&
		    bsearch(&name, skip, req->skip_count, sizeof *skip, str_cmp)) {
			p->skipped[t] = 1;
			p->nskipped++;
			unit_of_tensor[t] = SIZE_MAX;
			continue;
		}
		size_t u = unit_of(name, pf, np);
		if (u == SIZE_MAX && missing++ == 0)
			first_missing = name;
		unit_of_tensor[t] = u;
		if (u != SIZE_MAX)
			fill[u + 1]++;
	}
	if (missing) {
		st = hoist__error(HOIST_ERR_INVALID,
		                  "plan request: tensor \"%s\"%s is in no unit (no unit's prefix "
		                  "covers it, and it is not skipped)",
		                  first_missing, missing > 1 ? " and others" : "");
		if (missing > 1) {
			char more[64];
			snprintf(more, sizeof more, "%zu tensors in no unit", missing);
			hoist__error_prefix("%s", more);
		}
		goto out;
	}
	for (size_t u = 0; u < p->nunits; u++) {
		p->units[u].first = fill[u];
		fill[u + 1] += fill[u];
	}
	for (size_t t = 0; t < n; t++) {
		size_t u = unit_of_tensor[t];
		if (u == SIZE_MAX)
			continue;
		struct hoist__unit *pu = &p->units[u];
		p->order[pu->first + pu->count++] = t;
		pu->bytes += p->tbytes[t];
		pu->file_bytes += hoist_checkpoint_tensor(p->ckpt, t)->nbytes;
	}
	for (size_t u = 0; u < p->nunits; u++)
		p->seq[u] = u;
	p->by_request = true;
	st = request_ties(p, req);
out:
	hoist__free(pf);
	hoist__free(skip);
	hoist__free(unit_of_tensor);
	hoist__free(fill);
	return st;
}

/* ---- module-order files ------------------------------------------------------------ */

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

enum hoist_status hoist__plan_file_units(struct hoist_plan *p, const char *path)
{
	char *text = NULL;
	size_t len = 0, nunits = 0, ntokens = 0, nties = 0, ntie_tokens = 0;
	struct hoist_plan_unit *units = NULL;
	const char **tokens = NULL;
	size_t *tie_units = NULL, *tie_offsets = NULL;
	enum hoist_status st =
	        hoist__source_read_file(path, "a module-order file", ORDER_FILE_MAX, &text, &len);
	if (st != HOIST_OK)
		return st;
	/* Pass 1: count lines and tokens; cut the text into NUL-terminated tokens. */
	for (int pass = 0; pass < 2; pass++) {
		size_t u = 0, k = 0, g = 0, gk = 0, line = 0;
		char *s = text;
		while (*s) {
			char *eol = strchr(s, '\n');
			char *end = eol ? eol : s + strlen(s);
			line++;
			char *hash = memchr(s, '#', (size_t)(end - s));
			char *stop = hash ? hash : end;
			bool tie = false;
			size_t first = k, count = 0;
			for (char *q = s; q < stop;) {
				while (q < stop && is_space(*q))
					q++;
				if (q >= stop)
					break;
				char *t = q;
				while (q < stop && !is_space(*q))
					q++;
				if (count == 0 && q - t == 3 && memcmp(t, "tie", 3) == 0) {
					tie = true;
					count++;
					continue;
				}
				if (pass == 1) {
					*q = '\0';
					if (tie)
						tokens[ntokens + gk] = t;
					else
						tokens[k] = t;
				}
				q++;
				if (tie)
					gk++;
				else
					k++;
				count++;
			}
			if (tie && count < 3) {
				st = hoist__error(HOIST_ERR_INVALID,
				                  "%s:%zu: a tie line names at least two units",
				                  path, line);
				goto out;
			}
			if (tie) {
				if (pass == 1)
					tie_offsets[g + 1] = gk;
				g++;
			} else if (count > 0) {
				if (pass == 1)
					units[u] = (struct hoist_plan_unit){
					        tokens[first], &tokens[first], count, NULL};
				u++;
			}
			s = eol ? eol + 1 : end;
		}
		if (pass == 0) {
			nunits = u;
			ntokens = k;
			nties = g;
			ntie_tokens = gk;
			if (nunits == 0) {
				st = hoist__error(HOIST_ERR_INVALID, "%s: no units (one per line)",
				                  path);
				goto out;
			}
			units = hoist__calloc(nunits, sizeof *units);
			tokens = hoist__calloc(ntokens + ntie_tokens + 1, sizeof *tokens);
			tie_units = hoist__calloc(ntie_tokens + 1, sizeof *tie_units);
			tie_offsets = hoist__calloc(nties + 1, sizeof *tie_offsets);
			if (!units || !tokens || !tie_units || !tie_offsets) {
				st = hoist__error(HOIST_ERR_NOMEM, "%s: out of memory", path);
				goto out;
			}
		}
	}
	/* A tie line names units by their first prefix. */
	for (size_t k = 0; k < ntie_tokens; k++) {
		const char *t = tokens[ntokens + k];
		size_t u = 0;
		while (u < nunits && strcmp(units[u].name, t) != 0)
			u++;
		if (u == nunits) {
			st = hoist__error(HOIST_ERR_INVALID,
			                  "%s: tie names \"%s\", which starts no unit's line", path,
			                  t);
			goto out;
		}
		tie_units[k] = u;
	}
	struct hoist_plan_request req = {
	        .units = units,
	        .unit_count = nunits,
	        .tie_units = tie_units,
	        .tie_offsets = tie_offsets,
	        .tie_count = nties,
	};
	st = hoist__plan_request_units(p, &req);
	if (st != HOIST_OK) {
		hoist__error_prefix("%s", path);
		goto out;
	}
	p->order_source = HOIST__ORDER_FILE;
	if (!(p->order_path = hoist__strdup(path)))
		st = hoist__error(HOIST_ERR_NOMEM, "%s: out of memory", path);
out:
	hoist__free(units);
	hoist__free(tokens);
	hoist__free(tie_units);
	hoist__free(tie_offsets);
	hoist__free(text);
	return st;
}

/* ---- hoist's own order -------------------------------------------------------------- */

static bool in_list(const char *s, size_t n, const char *const *list)
{
	for (; *list; list++)
		if (strlen(*list) == n && memcmp(*list, s, n) == 0)
			return true;
	return false;
}

/* Vision towers and the projectors after them, as multimodal models name them. */
static const char *const vision_names[] = {
        "visual",        "vision_tower", "vision_model", "vision_encoder",
        "image_encoder", "vision",       "vision_embed", NULL};
static const char *const projector_names[] = {"multi_modal_projector", "mm_projector",
                                              "visual_projection", "connector", NULL};
/* The language model's input embeddings (the first thing a forward pass runs). */
static const char *const embedding_names[] = {"embed_tokens",
                                              "wte",
                                              "wpe",
                                              "word_embeddings",
                                              "tok_embeddings",
                                              "embed_in",
                                              "embeddings",
                                              "embed_positions",
                                              "position_embeddings",
                                              "token_type_embeddings",
                                              NULL};
/* The weights a tie with the head binds: one of the above. */
static const char *const tied_embedding_names[] = {"embed_tokens",   "wte",      "word_embeddings",
                                                   "tok_embeddings", "embed_in", NULL};
static const char *const norm_names[] = {"norm",   "final_layernorm", "ln_f", "final_layer_norm",
                                         "norm_f", "final_norm",      NULL};
static const char *const head_names[] = {"lm_head", "embed_out", NULL};

/* Stages of a forward pass, in order. */
enum stage { EMBED, VISION, BODY, NORM, HEAD };

struct rank {
	int stage, sub;
	size_t unit; /* its place in name order breaks ties */
};

static int rank_cmp(const void *a, const void *b)
{
	const struct rank *x = a, *y = b;
	if (x->stage != y->stage)
		return x->stage < y->stage ? -1 : 1;
	if (x->sub != y->sub)
		return x->sub < y->sub ? -1 : 1;
	return x->unit < y->unit ? -1 : x->unit > y->unit;
}

/* The stage of a unit from its key, and its rank within the stage. */
static struct rank rank_of(const struct hoist__unit *u, size_t index)
{
	struct rank r = {BODY, 0, index};
	bool vision = false, projector = false, layer = false, embed = false;
	const char *last = u->key;
	size_t lastlen = u->keylen;
	for (size_t i = 0; i < u->keylen;) {
		size_t j = i;
		while (j < u->keylen && u->key[j] != '.')
			j++;
		bool v = in_list(u->key + i, j - i, vision_names);
		vision |= v;
		projector |= in_list(u->key + i, j - i, projector_names);
		layer |= hoist__name_digits(u->key + i, j - i);
		/* a tower's patch or position embeddings run first in it */
		for (size_t k = i; vision && !v && k + 5 <= j && !embed; k++)
			embed = memcmp(u->key + k, "embed", 5) == 0;
		last = u->key + i;
		lastlen = j - i;
		i = j + 1;
	}
	if (vision) {
		r.stage = VISION;
		r.sub = embed ? 0 : 1; /* then by name: blocks, merger / post-norm */
	} else if (projector) {
		r.stage = VISION;
		r.sub = 3;
	} else if (in_list(last, lastlen, head_names) ||
	           (u->keylen == 6 && memcmp(u->key, "output", 6) == 0)) {
		r.stage = HEAD;
	} else if (!layer && in_list(last, lastlen, embedding_names)) {
		r.stage = EMBED;
	} else if (!layer && in_list(last, lastlen, norm_names)) {
		r.stage = NORM;
	}
	return r;
}

static bool key_ends_in(const struct hoist__unit *u, const char *const *list)
{
	size_t i = u->keylen;
	while (i > 0 && u->key[i - 1] != '.')
		i--;
	return in_list(u->key + i, u->keylen - i, list);
}

/* config.json's tie_word_embeddings (at the top, or in text_config), read beside the
 * first shard into *tie; false where there is no readable config (the checkpoint
 * reader has warned of a bad one). Errors: HOIST_ERR_NOMEM only. */
static enum hoist_status config_ties(const struct hoist_plan *p, bool *tie)
{
	*tie = false;
	if (hoist_checkpoint_shard_count(p->ckpt) == 0)
		return HOIST_OK;
	const char *shard = hoist_checkpoint_shard(p->ckpt, 0)->path;
	const char *slash = strrchr(shard, '/');
	size_t dir = slash ? (size_t)(slash - shard) + 1 : 0;
	char *path = hoist__malloc(dir + sizeof "config.json");
	if (!path)
		return hoist__error(HOIST_ERR_NOMEM, "plan: out of memory");
	memcpy(path, shard, dir);
	memcpy(path + dir, "config.json", sizeof "config.json");
	json_t *root = NULL;
	enum hoist_status st = hoist__json_read_file(path, 0, &root);
	if (st == HOIST_OK && json_is_object(root)) {
		json_t *v = json_object_get(root, "tie_word_embeddings");
		if (!v)
			v = json_object_get(json_object_get(root, "text_config"),
			                    "tie_word_embeddings");
		*tie = json_is_true(v);
	}
	json_decref(root);
	hoist__free(path);
	if (st == HOIST_ERR_NOMEM)
		return st;
	hoist__error_clear();
	return HOIST_OK;
}

enum hoist_status hoist__plan_default_order(struct hoist_plan *p)
{
	struct rank *ranks = hoist__calloc(p->nunits ? p->nunits : 1, sizeof *ranks);
	if (!ranks)
		return hoist__error(HOIST_ERR_NOMEM, "plan: out of memory ordering %zu groups",
		                    p->nunits);
	for (size_t u = 0; u < p->nunits; u++)
		ranks[u] = rank_of(&p->units[u], u);
	qsort(ranks, p->nunits, sizeof *ranks, rank_cmp);
	for (size_t i = 0; i < p->nunits; i++)
		p->seq[i] = ranks[i].unit;
	/* Tied word embeddings: the input embeddings and the head, if both are here. */
	size_t embed = SIZE_MAX, head = SIZE_MAX;
	for (size_t i = 0; i < p->nunits; i++) {
		size_t u = ranks[i].unit;
		if (ranks[i].stage == EMBED && embed == SIZE_MAX &&
		    key_ends_in(&p->units[u], tied_embedding_names))
			embed = u;
		if (ranks[i].stage == HEAD && head == SIZE_MAX)
			head = u;
	}
	hoist__free(ranks);
	bool tie = false;
	if (embed != SIZE_MAX && head != SIZE_MAX) {
		enum hoist_status st = config_ties(p, &tie);
		if (st != HOIST_OK)
			return st;
	}
	if (tie) {
		p->units[embed].tie = p->units[head].tie = 0;
		p->nties = 1;
	}
	p->order_source = HOIST__ORDER_NAMES;
	return HOIST_OK;
}

/* ---- what the accessors return ---------------------------------------------------- */

enum hoist_status hoist__plan_publish_units(struct hoist_plan *p)
{
	size_t pool = 0;
	if (!p->by_request)
		for (size_t u = 0; u < p->nunits; u++)
			pool += p->units[u].keylen + 1;
	p->unit_info = hoist__calloc(p->nunits ? p->nunits : 1, sizeof *p->unit_info);
	char *names = pool ? hoist__malloc(pool) : NULL;
	if (!p->unit_info || (pool && !names)) {
		hoist__free(names);
		return hoist__error(HOIST_ERR_NOMEM, "plan: out of memory");
	}
	if (names) {
		/* hoist's units point into tensor names: give them strings of their own */
		hoist__free(p->strings);
		p->strings = names;
	}
	p->changes = 0;
	int prev = -1;
	for (size_t i = 0; i < p->nunits; i++) {
		const struct hoist__unit *u = &p->units[p->seq[i]];
		const char *name = u->key;
		if (names) {
			memcpy(names, u->key, u->keylen);
			names[u->keylen] = '\0';
			name = names;
			names += u->keylen + 1;
		}
		int d = u->count ? p->tdev[p->order[u->first]] : u->dev;
		if (d < 0)
			d = prev >= 0 ? prev : 0;
		p->unit_info[i] = (struct hoist_plan_unit_info){
		        name, p->dev[d].device,
		        p->dev[d].device.kind == HOIST_DEVICE_DISK ? u->file_bytes : u->bytes,
		        u->count, u->tie >= 0};
		if (prev >= 0 && d != prev)
			p->changes++;
		prev = d;
	}
	return HOIST_OK;
}
