/*
 * safetensors.c - parse and validate one safetensors file's header from its bytes.
 *
 * The format: 8 bytes little-endian N, then N bytes of UTF-8 JSON (an object of
 * tensor name -> {dtype, shape, data_offsets} plus an optional "__metadata__" map
 * of strings), then the data region, which the tensors' [begin, end) ranges must
 * tile exactly: from 0, no gaps, no overlaps, to the end of the file.
 *
 * We accept what the reference (huggingface/safetensors 0.8) accepts, except where
 * it is lax in ways a C reader cannot or should not follow (see the notes at
 * parse_tensor and in tests/differential.py): duplicate keys (the reference keeps
 * the last), integers above INT64_MAX, "\u0000" in strings, a dtype written as a
 * map ({"U8": null}) and the F8_*FNUZ dtypes hoist has no name for are rejected.
 * Unknown keys in a tensor entry are ignored, as the reference does, with a warning.
 *
 * Two readers, one behaviour. The project reads JSON with jansson, and every header
 * can be read that way (parse_json). But a 100,000-tensor checkpoint has about 10 MB
 * of headers, and jansson took ~100 ms per 2.6 MB, 25,000-tensor shard here (parse
 * ~40 ms, freeing the tree ~45 ms, the rest walking it): opening such a checkpoint
 * took ~560 ms on 2 cores, ~390 ms with the shards on parallel threads, against a
 * goal of well under a second under load. So the headers writers actually write are
 * read by a small purpose-built reader (parse_fast, ~10x faster), which handles a
 * strict subset of JSON and declines everything else (escapes, unknown keys, other
 * types, invalid JSON, duplicates ...) to the jansson reader, from the start. The
 * subset is chosen so that on it both readers see the same values, and the format's
 * rules after reading (rule_*, finish) are one code for both: what is accepted and
 * every message are the jansson path's. tests/test_safetensors.c holds the three
 * entry points (hoist__st_parse_with) against each other on the rule cases, the
 * reference files, the fuzz corpus and seeded mutants; tests/fuzz_header_paths.c
 * does the same under libFuzzer.
 */
#include "safetensors.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* serde_json, which the reference parses with, refuses nesting of 128 levels. */
#define MAX_DEPTH 127

bool hoist__utf8_valid(const unsigned char *s, size_t n, size_t *bad)
{
	size_t i = 0;
	while (i < n) {
		unsigned char c = s[i];
		if (c < 0x80) {
			i++;
			continue;
		}
		size_t len;
		unsigned char lo = 0x80, hi = 0xbf; /* allowed range of the second byte */
		if (c >= 0xc2 && c <= 0xdf) {
			len = 2;
		} else if (c >= 0xe0 && c <= 0xef) {
			len = 3;
			if (c == 0xe0)
				lo = 0xa0; /* overlong */
			else if (c == 0xed)
				hi = 0x9f; /* UTF-16 surrogates */
		} else if (c >= 0xf0 && c <= 0xf4) {
			len = 4;
			if (c == 0xf0)
				lo = 0x90; /* overlong */
			else if (c == 0xf4)
				hi = 0x8f; /* above U+10FFFF */
		} else {
			goto fail;
		}
		if (n - i < len)
			goto fail;
		if (s[i + 1] < lo || s[i + 1] > hi)
			goto fail;
		for (size_t k = 2; k < len; k++)
			if ((s[i + k] & 0xc0) != 0x80)
				goto fail;
		i += len;
	}
	return true;
fail:
	if (bad)
		*bad = i;
	return false;
}

/* What jansson cannot tell us about the text: the deepest nesting, and the first
 * integer written "-0" (jansson reads it as 0; the reference as the float -0.0,
 * which is no valid size, though harmless under an ignored key). Exact for valid
 * JSON; for invalid JSON the parser's verdict is what counts. */
static bool continues_number(unsigned char c)
{
	return (c >= '0' && c <= '9') || c == '.' || c == 'e' || c == 'E';
}

static void scan_text(const unsigned char *s, size_t n, size_t *max_depth, size_t *depth_at,
                      size_t *neg_zero_at, char *patch)
{
	size_t depth = 0;
	bool in_string = false;
	*max_depth = 0;
	*depth_at = 0;
	*neg_zero_at = SIZE_MAX;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = s[i];
		if (in_string) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_string = false;
			continue;
		}
		switch (c) {
		case '"': in_string = true; break;
		case '[':
		case '{':
			if (++depth > *max_depth) {
				*max_depth = depth;
				*depth_at = i;
			}
			break;
		case ']':
		case '}':
			if (depth)
				depth--;
			break;
		case '-':
			if (i + 1 < n && s[i + 1] == '0' &&
			    (i + 2 >= n || !continues_number(s[i + 2]))) {
				if (*neg_zero_at == SIZE_MAX)
					*neg_zero_at = i;
				if (patch)
					patch[i + 1] = '1';
			}
			break;
		default: break;
		}
	}
}

static uint64_t le64(const unsigned char b[8])
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | b[i];
	return v;
}

/* What a file is when its first bytes cannot start a safetensors header: the formats
 * people hand a safetensors reader by mistake, by their magic bytes. NULL: unknown. */
static const char *not_safetensors(const unsigned char p[8])
{
	if (memcmp(p, "PK\x03\x04", 4) == 0)
		return "a PyTorch checkpoint (zip and pickle, as torch.save writes it), not "
		       "safetensors";
	if (p[0] == 0x80 && p[1] >= 2 && p[1] <= 5)
		return "a pickle (a legacy torch.save checkpoint), not safetensors";
	if (memcmp(p, "version ", 8) == 0)
		return "a Git LFS pointer, not the weights: they were never downloaded (git lfs "
		       "pull, or download the model with its weights)";
	if (memcmp(p, "GGUF", 4) == 0)
		return "a GGUF file (llama.cpp's format), not safetensors";
	if (memcmp(p, "\x93NUMPY", 6) == 0)
		return "a NumPy .npy file, not safetensors";
	if (memcmp(p, "\x89HDF", 4) == 0)
		return "an HDF5 file (Keras), not safetensors";
	if (p[0] == '{' || p[0] == '[')
		return "a JSON file, not safetensors (pass the model directory or its "
		       "model.safetensors.index.json)";
	return NULL;
}

enum hoist_status hoist__st_check_prefix(const char *file, const unsigned char prefix[8],
                                         uint64_t file_size, uint64_t *header_len)
{
	uint64_t n = le64(prefix);
	const char *what = not_safetensors(prefix);
	if ((n > HOIST__ST_MAX_HEADER || file_size < 8 || n > file_size - 8) && what)
		return hoist__error(HOIST_ERR_FORMAT, "%s: %s", file, what);
	if (n > HOIST__ST_MAX_HEADER)
		return hoist__error(HOIST_ERR_FORMAT,
		                    "%s: header length %llu exceeds the format's limit of %u bytes",
		                    file, (unsigned long long)n, HOIST__ST_MAX_HEADER);
	if (file_size < 8 || n > file_size - 8)
		return hoist__error(
		        HOIST_ERR_FORMAT,
		        "%s: header length %llu runs past the end of the file (%llu bytes)", file,
		        (unsigned long long)n, (unsigned long long)file_size);
	*header_len = n;
	return HOIST_OK;
}

void hoist__st_header_free(struct hoist__st_header *h)
{
	if (!h)
		return;
	for (size_t i = 0; i < h->metadata_count; i++) {
		hoist__free(h->metadata_keys[i]);
		hoist__free(h->metadata_values[i]);
	}
	hoist__free(h->metadata_keys);
	hoist__free(h->metadata_values);
	hoist__strings_free(&h->warnings);
	hoist__free(h->tensors);
	hoist__free(h->by_name);
	hoist__free(h->names);
	hoist__free(h->shapes);
	memset(h, 0, sizeof *h);
}

/* Writes "[4, 4]" into buf (cut with "..." when long). */
static const char *format_shape(const int64_t *shape, unsigned ndim, char *buf, size_t size)
{
	size_t len = 0;
	buf[0] = '\0';
	len += (size_t)snprintf(buf, size, "[");
	for (unsigned i = 0; i < ndim && len < size; i++) {
		if (len + 24 >= size) {
			snprintf(buf + len, size - len, "...");
			len = size;
			break;
		}
		len += (size_t)snprintf(buf + len, size - len, "%s%lld", i ? ", " : "",
		                        (long long)shape[i]);
	}
	if (len < size)
		snprintf(buf + len, size - len, "]");
	return buf;
}

/* ---- the format's rules on one tensor's values, whichever parser read them ---------- */

static enum hoist_status rule_dtype(const char *file, const char *name, const char *s, size_t len,
                                    enum hoist_dtype *out)
{
	char buf[16]; /* longer than any dtype's name */
	if (len < sizeof buf) {
		memcpy(buf, s, len);
		buf[len] = '\0';
		if (hoist_dtype_parse(buf, out) == HOIST_OK)
			return HOIST_OK;
	}
	return hoist__error(HOIST_ERR_FORMAT, "%s: tensor \"%s\": unknown dtype \"%.*s\"", file,
	                    name, (int)len, s);
}

/* numel and the byte count from t's shape and dtype. numel as the reference computes
 * it: a left fold of checked products, so [2^32, 2^32, 0] overflows there and here
 * alike. */
static enum hoist_status rule_size(const char *file, const char *name, struct hoist_tensor_info *t,
                                   uint64_t *nbytes)
{
	char sbuf[160];
	uint64_t numel = 1;
	bool overflow = false;
	for (unsigned d = 0; d < t->ndim; d++)
		if (!overflow && !hoist__mul_u64(numel, (uint64_t)t->shape[d], &numel))
			overflow = true;
	unsigned bits = hoist_dtype_bits(t->dtype);
	uint64_t nbits;
	if (overflow || !hoist__mul_u64(numel, bits, &nbits))
		return hoist__error(
		        HOIST_ERR_FORMAT,
		        "%s: tensor \"%s\": shape %s x %s overflows a 64-bit byte count", file,
		        name, format_shape(t->shape, t->ndim, sbuf, sizeof sbuf),
		        hoist_dtype_name(t->dtype));
	if (nbits % 8 != 0)
		return hoist__error(HOIST_ERR_FORMAT,
		                    "%s: tensor \"%s\": shape %s x %s is %llu bits, not a whole "
		                    "number of bytes",
		                    file, name, format_shape(t->shape, t->ndim, sbuf, sizeof sbuf),
		                    hoist_dtype_name(t->dtype), (unsigned long long)nbits);
	t->numel = numel;
	*nbytes = nbits / 8;
	return HOIST_OK;
}

static enum hoist_status rule_range(const char *file, const char *name, struct hoist_tensor_info *t,
                                    uint64_t nbytes, uint64_t begin, uint64_t end)
{
	char sbuf[160];
	if (end < begin)
		return hoist__error(
		        HOIST_ERR_FORMAT,
		        "%s: tensor \"%s\": data_offsets [%llu, %llu) end before they begin", file,
		        name, (unsigned long long)begin, (unsigned long long)end);
	if (end - begin != nbytes)
		return hoist__error(HOIST_ERR_FORMAT,
		                    "%s: tensor \"%s\": data_offsets [%llu, %llu) do not match "
		                    "shape %s x %s (%llu bytes)",
		                    file, name, (unsigned long long)begin, (unsigned long long)end,
		                    format_shape(t->shape, t->ndim, sbuf, sizeof sbuf),
		                    hoist_dtype_name(t->dtype), (unsigned long long)nbytes);
	t->nbytes = nbytes;
	t->shard = 0;
	return HOIST_OK;
}

/* What a parser hands to finish(): the tensors in the header's order, with their
 * names, shapes, numel and nbytes set, and their ranges. */
struct ranged {
	uint64_t begin, end;
	size_t index; /* into the header's tensor array */
};

struct parsed {
	const char *file;
	struct hoist__st_header h;
	struct ranged *ranges; /* h.tensor_count of them */
	char warning[512];     /* "" or the unknown-key warning, added on success */
};

/* ---- sorting names ---------------------------------------------------------------- */

static int cmp_ref(const struct hoist__name_ref *a, const struct hoist__name_ref *b)
{
	int c = strcmp(a->name, b->name);
	if (c)
		return c;
	return a->index < b->index ? -1 : a->index > b->index;
}

void hoist__sort_names(struct hoist__name_ref *refs, struct hoist__name_ref *tmp, size_t n)
{
	struct hoist__name_ref *a = refs, *b = tmp;
	for (;;) {
		size_t lo = 0, runs = 0;
		while (lo < n) {
			size_t mid = lo + 1;
			while (mid < n && cmp_ref(&a[mid - 1], &a[mid]) <= 0)
				mid++;
			size_t hi = mid;
			if (mid < n)
				for (hi = mid + 1; hi < n && cmp_ref(&a[hi - 1], &a[hi]) <= 0; hi++)
					;
			size_t i = lo, j = mid, k = lo;
			while (i < mid && j < hi)
				b[k++] = cmp_ref(&a[j], &a[i]) < 0 ? a[j++] : a[i++];
			memcpy(&b[k], &a[i], (mid - i) * sizeof *a);
			k += mid - i;
			memcpy(&b[k], &a[j], (hi - j) * sizeof *a);
			runs += hi > mid ? 2 : 1; /* the runs of a this merged */
			lo = hi;
		}
		if (runs <= 1) {
			/* a was already in order (one run): the copy in b is the same */
			if (a != refs)
				memcpy(refs, a, n * sizeof *a);
			return;
		}
		struct hoist__name_ref *swap = a;
		a = b;
		b = swap;
	}
}

/* ---- after either parser: file order, tiling, the name index ------------------------- */

static int cmp_range(const void *a, const void *b, void *arg)
{
	const struct ranged *x = a, *y = b;
	const struct hoist_tensor_info *sort_base = arg;
	if (x->begin != y->begin)
		return x->begin < y->begin ? -1 : 1;
	if (x->end != y->end)
		return x->end < y->end ? -1 : 1;
	return strcmp(sort_base[x->index].name, sort_base[y->index].name);
}

/* Puts P's tensors in file order, checks that they tile the data region, and builds
 * the name index. On success P's header is complete. */
static enum hoist_status finish(struct parsed *P)
{
	struct hoist__st_header *h = &P->h;
	const char *file = P->file;
	struct ranged *ranges = P->ranges;
	size_t count = h->tensor_count;
	uint64_t header_len = h->header_len;
	struct hoist_tensor_info *sorted = NULL;
	struct hoist__name_ref *refs = NULL;
	enum hoist_status status = HOIST_OK;

	/* File order (writers usually write it so: then no sort), then one pass: each
	 * range must start where the previous ended. */
	bool in_order = true;
	for (size_t i = 1; i < count && in_order; i++)
		in_order = cmp_range(&ranges[i - 1], &ranges[i], h->tensors) < 0;
	if (!in_order)
		qsort_r(ranges, count, sizeof *ranges, cmp_range, h->tensors);
	uint64_t pos = 0;
	for (size_t i = 0; i < count; i++) {
		const struct ranged *r = &ranges[i];
		const char *name = h->tensors[r->index].name;
		if (r->begin > pos) {
			if (i == 0)
				return hoist__error(HOIST_ERR_FORMAT,
				                    "%s: tensor \"%s\": data_offsets [%llu, %llu): "
				                    "the data region does not start at 0 (a hole "
				                    "of %llu bytes at byte offset %llu)",
				                    file, name, (unsigned long long)r->begin,
				                    (unsigned long long)r->end,
				                    (unsigned long long)r->begin,
				                    (unsigned long long)(8 + header_len));
			return hoist__error(
			        HOIST_ERR_FORMAT,
			        "%s: tensor \"%s\": data_offsets [%llu, %llu) leave a hole of %llu "
			        "bytes after tensor \"%s\" (at byte offset %llu)",
			        file, name, (unsigned long long)r->begin,
			        (unsigned long long)r->end, (unsigned long long)(r->begin - pos),
			        h->tensors[ranges[i - 1].index].name,
			        (unsigned long long)(8 + header_len + pos));
		}
		if (r->begin < pos) {
			const struct ranged *p = &ranges[i - 1];
			return hoist__error(HOIST_ERR_FORMAT,
			                    "%s: tensor \"%s\": data_offsets [%llu, %llu) overlap "
			                    "tensor \"%s\" [%llu, %llu)",
			                    file, name, (unsigned long long)r->begin,
			                    (unsigned long long)r->end, h->tensors[p->index].name,
			                    (unsigned long long)p->begin,
			                    (unsigned long long)p->end);
		}
		pos = r->end;
	}
	if (pos != h->data_size) {
		if (pos > h->data_size)
			return hoist__error(
			        HOIST_ERR_FORMAT,
			        "%s: tensor \"%s\": data_offsets end at %llu, past the end of the "
			        "data region (%llu bytes: file size %llu - 8 - header %llu)",
			        file, h->tensors[ranges[count - 1].index].name,
			        (unsigned long long)pos, (unsigned long long)h->data_size,
			        (unsigned long long)(8 + header_len + h->data_size),
			        (unsigned long long)header_len);
		return hoist__error(HOIST_ERR_FORMAT,
		                    "%s: the tensors end at data offset %llu but the data region "
		                    "is %llu bytes (file size %llu - 8 - header %llu): %llu bytes "
		                    "at byte offset %llu belong to no tensor",
		                    file, (unsigned long long)pos, (unsigned long long)h->data_size,
		                    (unsigned long long)(8 + header_len + h->data_size),
		                    (unsigned long long)header_len,
		                    (unsigned long long)(h->data_size - pos),
		                    (unsigned long long)(8 + header_len + pos));
	}

	if (count) {
		sorted = hoist__calloc(count, sizeof *sorted);
		h->by_name = hoist__calloc(count, sizeof *h->by_name);
		refs = hoist__calloc(2 * count, sizeof *refs);
		if (!sorted || !h->by_name || !refs) {
			status = hoist__error(HOIST_ERR_NOMEM, "%s: out of memory", file);
			goto out;
		}
		for (size_t i = 0; i < count; i++) {
			sorted[i] = h->tensors[ranges[i].index];
			sorted[i].offset = 8 + header_len + ranges[i].begin;
			refs[i] = (struct hoist__name_ref){sorted[i].name, i};
		}
		hoist__free(h->tensors);
		h->tensors = sorted;
		sorted = NULL;
		hoist__sort_names(refs, refs + count, count);
		for (size_t i = 0; i < count; i++)
			h->by_name[i] = refs[i].index;
	}
	if (P->warning[0] && (status = hoist__strings_add(&h->warnings, P->warning)) != HOIST_OK)
		goto out;
out:
	hoist__free(refs);
	hoist__free(sorted);
	return status;
}

/* ---- the jansson path: any header, every message ------------------------------------ */

/* A JSON integer that is a valid size: a non-negative integer (not a real). */
static bool json_size(const json_t *v, uint64_t *out)
{
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return false;
	*out = (uint64_t)json_integer_value(v);
	return true;
}

struct json_state {
	const char *file;
	char *name_next;
	int64_t *shape_next;
	size_t unknown_keys;
	const char *unknown_tensor;
	const char *unknown_key;
};

/* The checks on the JSON's types are here, the format's rules in rule_*; they run
 * in the order the messages have always come in. */
static enum hoist_status parse_tensor(struct json_state *st, const char *name, json_t *entry,
                                      struct hoist_tensor_info *t, uint64_t *begin_out,
                                      uint64_t *end_out)
{
	const char *file = st->file;
	enum hoist_status status;
	if (!json_is_object(entry))
		return hoist__error(HOIST_ERR_FORMAT,
		                    "%s: tensor \"%s\": entry is not an object with dtype, shape "
		                    "and data_offsets",
		                    file, name);
	json_t *dtype = NULL, *shape = NULL, *offsets = NULL;
	const char *key;
	json_t *v;
	json_object_foreach(entry, key, v)
	{
		if (strcmp(key, "dtype") == 0) {
			dtype = v;
		} else if (strcmp(key, "shape") == 0) {
			shape = v;
		} else if (strcmp(key, "data_offsets") == 0) {
			offsets = v;
		} else if (st->unknown_keys++ == 0) {
			st->unknown_tensor = name;
			st->unknown_key = key;
		}
	}
	if (!dtype)
		return hoist__error(HOIST_ERR_FORMAT, "%s: tensor \"%s\": missing \"dtype\"", file,
		                    name);
	if (!shape)
		return hoist__error(HOIST_ERR_FORMAT, "%s: tensor \"%s\": missing \"shape\"", file,
		                    name);
	if (!offsets)
		return hoist__error(HOIST_ERR_FORMAT, "%s: tensor \"%s\": missing \"data_offsets\"",
		                    file, name);
	if (!json_is_string(dtype))
		return hoist__error(HOIST_ERR_FORMAT, "%s: tensor \"%s\": dtype is not a string",
		                    file, name);
	if ((status = rule_dtype(file, name, json_string_value(dtype), json_string_length(dtype),
	                         &t->dtype)) != HOIST_OK)
		return status;
	if (!json_is_array(shape))
		return hoist__error(
		        HOIST_ERR_FORMAT,
		        "%s: tensor \"%s\": shape is not a list of non-negative integers", file,
		        name);
	size_t ndim = json_array_size(shape);
	/* Elements are counted by the array the parser built, so the pool was sized
	 * from the same count: no claim in the file can make us write past it. */
	t->ndim = (unsigned)ndim;
	t->shape = st->shape_next;
	for (size_t d = 0; d < ndim; d++) {
		uint64_t dim;
		if (!json_size(json_array_get(shape, d), &dim))
			return hoist__error(
			        HOIST_ERR_FORMAT,
			        "%s: tensor \"%s\": shape[%zu] is not a non-negative integer", file,
			        name, d);
		st->shape_next[d] = (int64_t)dim;
	}
	st->shape_next += ndim;
	uint64_t nbytes;
	if ((status = rule_size(file, name, t, &nbytes)) != HOIST_OK)
		return status;
	uint64_t begin, end;
	if (!json_is_array(offsets) || json_array_size(offsets) != 2 ||
	    !json_size(json_array_get(offsets, 0), &begin) ||
	    !json_size(json_array_get(offsets, 1), &end))
		return hoist__error(HOIST_ERR_FORMAT,
		                    "%s: tensor \"%s\": data_offsets is not a list of two "
		                    "non-negative integers",
		                    file, name);
	if ((status = rule_range(file, name, t, nbytes, begin, end)) != HOIST_OK)
		return status;
	size_t len = strlen(name);
	memcpy(st->name_next, name, len + 1);
	t->name = st->name_next;
	st->name_next += len + 1;
	*begin_out = begin;
	*end_out = end;
	return HOIST_OK;
}

static enum hoist_status parse_metadata(const char *file, json_t *meta, struct hoist__st_header *h)
{
	if (json_is_null(meta))
		return HOIST_OK; /* the reference reads null as "no metadata" */
	if (!json_is_object(meta))
		return hoist__error(HOIST_ERR_FORMAT,
		                    "%s: __metadata__ is not a map of strings to strings", file);
	size_t n = json_object_size(meta);
	const char *key;
	json_t *v;
	json_object_foreach(meta, key, v)
	{
		if (!json_is_string(v))
			return hoist__error(HOIST_ERR_FORMAT,
			                    "%s: __metadata__ entry \"%s\" is not a string (a map "
			                    "of strings to strings is required)",
			                    file, key);
	}
	if (n == 0)
		return HOIST_OK;
	h->metadata_keys = hoist__calloc(n, sizeof *h->metadata_keys);
	h->metadata_values = hoist__calloc(n, sizeof *h->metadata_values);
	if (!h->metadata_keys || !h->metadata_values)
		return hoist__error(HOIST_ERR_NOMEM, "%s: out of memory", file);
	json_object_foreach(meta, key, v)
	{
		char *k = hoist__strdup(key);
		char *s = k ? hoist__strdup(json_string_value(v)) : NULL;
		if (!s) {
			hoist__free(k);
			return hoist__error(HOIST_ERR_NOMEM, "%s: out of memory", file);
		}
		h->metadata_keys[h->metadata_count] = k;
		h->metadata_values[h->metadata_count] = s;
		h->metadata_count++;
	}
	return HOIST_OK;
}

/* Parses P's header (UTF-8 already checked) with jansson into P, up to finish(). */
static enum hoist_status parse_json(struct parsed *P, const char *header)
{
	enum hoist_status status = HOIST_OK;
	struct hoist__st_header *h = &P->h;
	const char *file = P->file;
	size_t header_len = (size_t)h->header_len;
	const unsigned char *text = (const unsigned char *)header;
	json_t *root = NULL;
	char *patched = NULL;
	char sbuf[48];

	/* "-0" as an integer: the reference rejects it as a size but ignores it under an
	 * unknown key. Parsing it as -1 (same length, so byte offsets hold) gets both. */
	size_t max_depth, depth_at, neg_zero_at;
	scan_text(text, header_len, &max_depth, &depth_at, &neg_zero_at, NULL);
	const char *json_text = header;
	if (neg_zero_at != SIZE_MAX) {
		if (!(patched = hoist__malloc(header_len))) {
			status = hoist__error(HOIST_ERR_NOMEM, "%s: out of memory", file);
			goto out;
		}
		memcpy(patched, header, header_len);
		scan_text(text, header_len, &max_depth, &depth_at, &neg_zero_at, patched);
		json_text = patched;
	}
	json_error_t jerr;
	root = json_loadb(json_text, header_len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		long long at = 8 + (long long)(jerr.position > 0 ? jerr.position : 0);
		if (json_error_code(&jerr) == json_error_duplicate_key)
			status = hoist__error(HOIST_ERR_FORMAT,
			                      "%s: header has a duplicate key (%s, near byte "
			                      "offset %lld); names must be unique",
			                      file, jerr.text, at);
		else if (json_error_code(&jerr) == json_error_out_of_memory)
			status = hoist__error(HOIST_ERR_NOMEM,
			                      "%s: out of memory parsing the header", file);
		else
			status = hoist__error(
			        HOIST_ERR_FORMAT,
			        "%s: header is not valid JSON: %s (near byte offset %lld)", file,
			        jerr.text, at);
		goto out;
	}
	if (!json_is_object(root)) {
		status = hoist__error(HOIST_ERR_FORMAT, "%s: header is not a JSON object", file);
		goto out;
	}
	if (max_depth > MAX_DEPTH) {
		status =
		        hoist__error(HOIST_ERR_FORMAT,
		                     "%s: header nests deeper than %d levels (at byte offset %llu)",
		                     file, MAX_DEPTH, (unsigned long long)(8 + depth_at));
		goto out;
	}

	/* Count tensors, name bytes and dims from the parsed tree: each is bounded by
	 * the header's length, so these pools are at most a few times its size. */
	size_t count = 0, name_bytes = 0, dims = 0;
	const char *key;
	json_t *v;
	json_object_foreach(root, key, v)
	{
		if (strcmp(key, "__metadata__") == 0)
			continue;
		count++;
		name_bytes += strlen(key) + 1;
		json_t *shape = json_is_object(v) ? json_object_get(v, "shape") : NULL;
		if (json_is_array(shape))
			dims += json_array_size(shape);
	}
	if (count) {
		h->tensors = hoist__calloc(count, sizeof *h->tensors);
		P->ranges = hoist__calloc(count, sizeof *P->ranges);
		h->names = hoist__malloc(name_bytes);
		h->shapes = hoist__calloc(dims ? dims : 1, sizeof *h->shapes);
		if (!h->tensors || !P->ranges || !h->names || !h->shapes) {
			status = hoist__error(HOIST_ERR_NOMEM, "%s: out of memory for %zu tensors",
			                      file, count);
			goto out;
		}
	}
	struct json_state st = {.file = file, .name_next = h->names, .shape_next = h->shapes};
	json_t *meta = NULL;
	json_object_foreach(root, key, v)
	{
		if (strcmp(key, "__metadata__") == 0) {
			meta = v;
			continue;
		}
		size_t i = h->tensor_count;
		status = parse_tensor(&st, key, v, &h->tensors[i], &P->ranges[i].begin,
		                      &P->ranges[i].end);
		if (status != HOIST_OK)
			goto out;
		P->ranges[i].index = i;
		h->tensor_count++;
	}
	if (meta && (status = parse_metadata(file, meta, h)) != HOIST_OK)
		goto out;
	if (st.unknown_keys) {
		sbuf[0] = '\0';
		if (st.unknown_keys > 1)
			snprintf(sbuf, sizeof sbuf, " (%zu unknown keys in all)", st.unknown_keys);
		snprintf(P->warning, sizeof P->warning,
		         "%s: tensor \"%s\": unknown key \"%s\" ignored%s", file, st.unknown_tensor,
		         st.unknown_key, sbuf);
	}
out:
	hoist__free(patched);
	json_decref(root);
	return status;
}

/* ---- the fast path: the headers writers write ---------------------------------------- */

/* Reads the common shape of a header directly: an object of tensor entries, each
 * exactly the keys dtype (a string), shape and data_offsets (lists of integers in
 * 0..INT64_MAX, two offsets), in any order, plus an optional __metadata__ that is
 * null or an object of strings; strings without escapes or control characters;
 * JSON's four whitespace characters anywhere between tokens. That is a subset of
 * JSON, and on it this reader sees exactly the values jansson would (no escapes to
 * decode, integers in range, no duplicate keys: checked below). Anything outside it
 * (escapes, unknown keys, other types, reals, signs, leading zeros, duplicates,
 * invalid JSON) "declines", and the jansson path reads the header from the start,
 * so what is accepted and every message are the jansson path's by construction.
 * The format's rules (rule_*, finish) are the same code for both.
 *
 * Two passes over the text: the first checks the grammar and counts, the second
 * fills pools allocated to the exact counts, as the jansson path's are. */
struct fast {
	const unsigned char *p, *end;
	bool fill;
	/* counts (first pass), or the next slot to fill (second) */
	size_t tensors, name_bytes, dims, metadata;
	bool seen_metadata;
	struct parsed *P;
	const char **dtypes; /* second pass: each tensor's dtype text ... */
	size_t *dtype_lens;  /* ... and its length */
};

static bool is_ws(unsigned char c)
{
	return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

static void skip_ws(struct fast *f)
{
	while (f->p < f->end && is_ws(*f->p))
		f->p++;
}

/* Skips whitespace; consumes c if it comes next. */
static bool take(struct fast *f, unsigned char c)
{
	skip_ws(f);
	if (f->p < f->end && *f->p == c) {
		f->p++;
		return true;
	}
	return false;
}

/* A string with neither escapes nor control characters: its bytes between the
 * quotes (valid UTF-8: the whole header was checked). */
static bool take_string(struct fast *f, const char **s, size_t *len)
{
	if (!take(f, '"'))
		return false;
	const unsigned char *q = f->p;
	while (q < f->end && *q != '"') {
		if (*q == '\\' || *q < 0x20)
			return false;
		q++;
	}
	if (q == f->end)
		return false;
	*s = (const char *)f->p;
	*len = (size_t)(q - f->p);
	f->p = q + 1;
	return true;
}

static bool key_is(const char *s, size_t len, const char *key)
{
	return len == strlen(key) && memcmp(s, key, len) == 0;
}

/* An integer in 0..INT64_MAX without sign or leading zero, ending where JSON says an
 * integer ends (before whitespace, ',' or ']'): jansson reads the same value. */
static bool take_size(struct fast *f, uint64_t *out)
{
	skip_ws(f);
	const unsigned char *q = f->p;
	uint64_t v = 0;
	if (q == f->end || *q < '0' || *q > '9')
		return false;
	if (*q == '0') {
		q++;
	} else {
		while (q < f->end && *q >= '0' && *q <= '9') {
			unsigned d = *q - '0';
			if (v > ((uint64_t)INT64_MAX - d) / 10)
				return false;
			v = v * 10 + d;
			q++;
		}
	}
	if (q == f->end || !(is_ws(*q) || *q == ',' || *q == ']'))
		return false;
	f->p = q;
	*out = v;
	return true;
}

/* A list of sizes: counted into *n; the first `cap` stored in out when out is set. */
static bool take_sizes(struct fast *f, int64_t *out, size_t cap, size_t *n)
{
	*n = 0;
	if (!take(f, '['))
		return false;
	if (take(f, ']'))
		return true;
	do {
		uint64_t v;
		if (!take_size(f, &v))
			return false;
		if (out && *n < cap)
			out[*n] = (int64_t)v;
		(*n)++;
	} while (take(f, ','));
	return take(f, ']');
}

static bool take_entry(struct fast *f, const char *name, size_t name_len)
{
	const char *dtype = NULL, *key;
	size_t dtype_len = 0, key_len, ndim = 0, noff = 0;
	bool have_shape = false, have_offsets = false;
	int64_t offsets[2];
	struct hoist__st_header *h = &f->P->h;
	int64_t *dims = f->fill ? h->shapes + f->dims : NULL;
	if (!take(f, '{'))
		return false;
	do {
		if (!take_string(f, &key, &key_len) || !take(f, ':'))
			return false;
		if (key_is(key, key_len, "dtype")) {
			if (dtype || !take_string(f, &dtype, &dtype_len))
				return false;
		} else if (key_is(key, key_len, "shape")) {
			/* the second pass's pool holds exactly the first pass's count */
			if (have_shape || !take_sizes(f, dims, SIZE_MAX, &ndim))
				return false;
			have_shape = true;
		} else if (key_is(key, key_len, "data_offsets")) {
			if (have_offsets || !take_sizes(f, offsets, 2, &noff) || noff != 2)
				return false;
			have_offsets = true;
		} else {
			return false;
		}
	} while (take(f, ','));
	if (!take(f, '}') || !dtype || !have_shape || !have_offsets)
		return false;
	if (f->fill) {
		size_t i = f->tensors;
		struct hoist_tensor_info *t = &h->tensors[i];
		memcpy(h->names + f->name_bytes, name, name_len);
		h->names[f->name_bytes + name_len] = '\0';
		t->name = h->names + f->name_bytes;
		t->shape = dims;
		t->ndim = (unsigned)ndim;
		f->P->ranges[i] = (struct ranged){(uint64_t)offsets[0], (uint64_t)offsets[1], i};
		f->dtypes[i] = dtype;
		f->dtype_lens[i] = dtype_len;
	}
	f->tensors++;
	f->name_bytes += name_len + 1;
	f->dims += ndim;
	return true;
}

static bool take_metadata(struct fast *f)
{
	struct hoist__st_header *h = &f->P->h;
	skip_ws(f);
	if (f->end - f->p >= 4 && memcmp(f->p, "null", 4) == 0) {
		f->p += 4; /* what follows must be ',' or '}', or the caller declines */
		return true;
	}
	if (!take(f, '{'))
		return false;
	if (take(f, '}'))
		return true;
	do {
		const char *k, *v;
		size_t klen, vlen;
		if (!take_string(f, &k, &klen) || !take(f, ':') || !take_string(f, &v, &vlen))
			return false;
		if (f->fill) {
			char **key = &h->metadata_keys[h->metadata_count];
			char **value = &h->metadata_values[h->metadata_count];
			if (!(*key = hoist__strndup(k, klen)))
				return false;
			if (!(*value = hoist__strndup(v, vlen))) {
				hoist__free(*key);
				return false;
			}
			h->metadata_count++;
		}
		f->metadata++;
	} while (take(f, ','));
	return take(f, '}');
}

/* One pass over the header; false: outside the subset (or, filling, out of memory). */
static bool fast_pass(struct fast *f)
{
	if (!take(f, '{'))
		return false;
	if (!take(f, '}')) {
		do {
			const char *name;
			size_t len;
			if (!take_string(f, &name, &len) || !take(f, ':'))
				return false;
			if (key_is(name, len, "__metadata__")) {
				if (f->seen_metadata || !take_metadata(f))
					return false;
				f->seen_metadata = true;
			} else if (!take_entry(f, name, len)) {
				return false;
			}
		} while (take(f, ','));
		if (!take(f, '}'))
			return false;
	}
	skip_ws(f);
	return f->p == f->end;
}

/* True when two of the n strings are equal (refs and tmp: n entries each). */
static bool has_duplicate(struct hoist__name_ref *refs, struct hoist__name_ref *tmp, size_t n)
{
	hoist__sort_names(refs, tmp, n);
	for (size_t i = 1; i < n; i++)
		if (strcmp(refs[i - 1].name, refs[i].name) == 0)
			return true;
	return false;
}

/* Reads P's header the fast way, up to finish(). *declined: it is outside the
 * subset, nothing in P is kept, and the jansson path must read it. */
static enum hoist_status parse_fast(struct parsed *P, const char *header, bool *declined)
{
	enum hoist_status status = HOIST_OK;
	struct hoist__st_header *h = &P->h;
	const char *file = P->file;
	const unsigned char *text = (const unsigned char *)header;
	struct hoist__name_ref *refs = NULL;
	struct fast f = {.p = text, .end = text + h->header_len, .P = P};

	*declined = false;
	if (!fast_pass(&f)) {
		*declined = true;
		return HOIST_OK;
	}
	size_t count = f.tensors, meta = f.metadata, refs_len = HOIST__MAX(count, meta);
	if (count) {
		h->tensors = hoist__calloc(count, sizeof *h->tensors);
		P->ranges = hoist__calloc(count, sizeof *P->ranges);
		h->names = hoist__malloc(f.name_bytes);
		h->shapes = hoist__calloc(f.dims ? f.dims : 1, sizeof *h->shapes);
		f.dtypes = hoist__calloc(count, sizeof *f.dtypes);
		f.dtype_lens = hoist__calloc(count, sizeof *f.dtype_lens);
		if (!h->tensors || !P->ranges || !h->names || !h->shapes || !f.dtypes ||
		    !f.dtype_lens) {
			status = hoist__error(HOIST_ERR_NOMEM, "%s: out of memory for %zu tensors",
			                      file, count);
			goto out;
		}
	}
	if (meta) {
		h->metadata_keys = hoist__calloc(meta, sizeof *h->metadata_keys);
		h->metadata_values = hoist__calloc(meta, sizeof *h->metadata_values);
		if (!h->metadata_keys || !h->metadata_values) {
			status = hoist__error(HOIST_ERR_NOMEM, "%s: out of memory", file);
			goto out;
		}
	}
	if (refs_len && !(refs = hoist__calloc(2 * refs_len, sizeof *refs))) {
		status = hoist__error(HOIST_ERR_NOMEM, "%s: out of memory", file);
		goto out;
	}
	struct fast fill = {.p = text,
	                    .end = f.end,
	                    .fill = true,
	                    .P = P,
	                    .dtypes = f.dtypes,
	                    .dtype_lens = f.dtype_lens};
	if (!fast_pass(&fill)) {
		/* it passed once: only an allocation can fail it now */
		status = hoist__error(HOIST_ERR_NOMEM, "%s: out of memory", file);
		goto out;
	}
	/* Duplicate keys (tensor names; __metadata__'s keys) are jansson's to report. */
	for (size_t i = 0; i < count; i++)
		refs[i] = (struct hoist__name_ref){h->tensors[i].name, i};
	bool dup = count > 1 && has_duplicate(refs, refs + refs_len, count);
	for (size_t i = 0; i < meta && !dup; i++)
		refs[i] = (struct hoist__name_ref){h->metadata_keys[i], i};
	if (dup || (meta > 1 && has_duplicate(refs, refs + refs_len, meta))) {
		*declined = true;
		goto out;
	}
	/* The rules, in the header's order, as the jansson path applies them. */
	for (size_t i = 0; i < count; i++) {
		struct hoist_tensor_info *t = &h->tensors[i];
		uint64_t nbytes;
		if ((status = rule_dtype(file, t->name, f.dtypes[i], f.dtype_lens[i], &t->dtype)) !=
		            HOIST_OK ||
		    (status = rule_size(file, t->name, t, &nbytes)) != HOIST_OK ||
		    (status = rule_range(file, t->name, t, nbytes, P->ranges[i].begin,
		                         P->ranges[i].end)) != HOIST_OK)
			goto out;
		h->tensor_count++;
	}
out:
	hoist__free(f.dtypes);
	hoist__free(f.dtype_lens);
	hoist__free(refs);
	return status;
}

/* ---- entry points ------------------------------------------------------------------ */

static void parsed_free(struct parsed *P)
{
	hoist__free(P->ranges);
	P->ranges = NULL;
	hoist__st_header_free(&P->h);
}

enum hoist_status hoist__st_parse_with(enum hoist__st_parser parser, const char *file,
                                       const void *header, uint64_t header_len, uint64_t file_size,
                                       struct hoist__st_header *out)
{
	enum hoist_status status = HOIST_OK;
	struct parsed P = {.file = file};
	const unsigned char *text = header;

	memset(out, 0, sizeof *out);
	if (header_len > HOIST__ST_MAX_HEADER || file_size < 8 || header_len > file_size - 8)
		return hoist__error(HOIST_ERR_FORMAT,
		                    "%s: header length %llu does not fit the file (%llu bytes)",
		                    file, (unsigned long long)header_len,
		                    (unsigned long long)file_size);
	P.h.header_len = header_len;
	P.h.data_size = file_size - 8 - header_len;

	size_t bad;
	if (!hoist__utf8_valid(text, (size_t)header_len, &bad))
		return hoist__error(
		        HOIST_ERR_FORMAT,
		        "%s: header is not valid UTF-8 (bad byte 0x%02x at byte offset %llu)", file,
		        text[bad], (unsigned long long)(8 + bad));

	bool declined = true;
	if (parser != HOIST__ST_PARSER_JSON) {
		status = parse_fast(&P, header, &declined);
		if (declined) {
			uint64_t data_size = P.h.data_size;
			parsed_free(&P);
			P.h.header_len = header_len;
			P.h.data_size = data_size;
			if (parser == HOIST__ST_PARSER_FAST) {
				status = hoist__error(HOIST_ERR_INVALID,
				                      "%s: declined by the fast header reader",
				                      file);
				goto out;
			}
		}
	}
	if (declined)
		status = parse_json(&P, header);
	if (status == HOIST_OK)
		status = finish(&P);
	if (status == HOIST_OK) {
		*out = P.h;
		memset(&P.h, 0, sizeof P.h);
	}
out:
	parsed_free(&P);
	return status;
}

enum hoist_status hoist__st_parse(const char *file, const void *header, uint64_t header_len,
                                  uint64_t file_size, struct hoist__st_header *out)
{
	return hoist__st_parse_with(HOIST__ST_PARSER_AUTO, file, header, header_len, file_size,
	                            out);
}

bool hoist__st_header_same(const struct hoist__st_header *a, const struct hoist__st_header *b,
                           char *why, size_t size)
{
#define DIFFER(...) return snprintf(why, size, __VA_ARGS__), false
	if (a->header_len != b->header_len || a->data_size != b->data_size)
		DIFFER("header length or data size");
	if (a->tensor_count != b->tensor_count)
		DIFFER("%zu tensors against %zu", a->tensor_count, b->tensor_count);
	for (size_t i = 0; i < a->tensor_count; i++) {
		const struct hoist_tensor_info *x = &a->tensors[i], *y = &b->tensors[i];
		if (strcmp(x->name, y->name) != 0)
			DIFFER("tensor %zu: name \"%s\" against \"%s\"", i, x->name, y->name);
		if (x->dtype != y->dtype || x->ndim != y->ndim || x->numel != y->numel ||
		    x->shard != y->shard || x->offset != y->offset || x->nbytes != y->nbytes)
			DIFFER("tensor %zu (\"%s\"): dtype, ndim, numel, shard, offset or nbytes",
			       i, x->name);
		if (x->ndim && memcmp(x->shape, y->shape, x->ndim * sizeof *x->shape) != 0)
			DIFFER("tensor %zu (\"%s\"): shape", i, x->name);
		if (a->by_name[i] != b->by_name[i])
			DIFFER("by_name[%zu]: %zu against %zu", i, a->by_name[i], b->by_name[i]);
	}
	if (a->metadata_count != b->metadata_count)
		DIFFER("%zu metadata entries against %zu", a->metadata_count, b->metadata_count);
	for (size_t i = 0; i < a->metadata_count; i++)
		if (strcmp(a->metadata_keys[i], b->metadata_keys[i]) != 0 ||
		    strcmp(a->metadata_values[i], b->metadata_values[i]) != 0)
			DIFFER("metadata entry %zu", i);
	if (a->warnings.count != b->warnings.count)
		DIFFER("%zu warnings against %zu", a->warnings.count, b->warnings.count);
	for (size_t i = 0; i < a->warnings.count; i++)
		if (strcmp(a->warnings.items[i], b->warnings.items[i]) != 0)
			DIFFER("warning \"%s\" against \"%s\"", a->warnings.items[i],
			       b->warnings.items[i]);
#undef DIFFER
	return true;
}

enum hoist_status hoist__st_parse_bytes(const char *file, const void *bytes, size_t size,
                                        struct hoist__st_header *out)
{
	uint64_t n;
	enum hoist_status status;
	memset(out, 0, sizeof *out);
	if (size < 8)
		return hoist__error(HOIST_ERR_FORMAT,
		                    "%s: file is %zu bytes, shorter than the 8-byte header length",
		                    file, size);
	if ((status = hoist__st_check_prefix(file, bytes, size, &n)) != HOIST_OK)
		return status;
	return hoist__st_parse(file, (const unsigned char *)bytes + 8, n, size, out);
}
