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
 */
#include "checkpoint.h"

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
			if (i + 1 < n && s[i + 1] == '0' && (i + 2 >= n || !continues_number(s[i + 2]))) {
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

enum hoist_status hoist__st_check_prefix(const char *file, const unsigned char prefix[8],
					 uint64_t file_size, uint64_t *header_len)
{
	uint64_t n = le64(prefix);
	if (n > HOIST__ST_MAX_HEADER)
		return hoist__error(HOIST_ERR_FORMAT,
				    "%s: header length %llu exceeds the format's limit of %u bytes",
				    file, (unsigned long long)n, HOIST__ST_MAX_HEADER);
	if (file_size < 8 || n > file_size - 8)
		return hoist__error(HOIST_ERR_FORMAT,
				    "%s: header length %llu runs past the end of the file (%llu bytes)",
				    file, (unsigned long long)n, (unsigned long long)file_size);
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
	for (size_t i = 0; i < h->warning_count; i++)
		hoist__free(h->warnings[i]);
	hoist__free(h->warnings);
	hoist__free(h->tensors);
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

static enum hoist_status add_warning(struct hoist__st_header *h, const char *fmt, ...)
	HOIST__PRINTF(2, 3);
static enum hoist_status add_warning(struct hoist__st_header *h, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	char **w = hoist__reallocarray(h->warnings, h->warning_count + 1, sizeof *w);
	if (!w)
		return hoist__error(HOIST_ERR_NOMEM, "out of memory");
	h->warnings = w;
	if (!(w[h->warning_count] = hoist__strdup(buf)))
		return hoist__error(HOIST_ERR_NOMEM, "out of memory");
	h->warning_count++;
	return HOIST_OK;
}

/* A JSON integer that is a valid size: a non-negative integer (not a real). */
static bool json_size(const json_t *v, uint64_t *out)
{
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return false;
	*out = (uint64_t)json_integer_value(v);
	return true;
}

/* Number of extra elements of the shape array when dims are checked; also used for
 * the unknown-key count. */
struct parse_state {
	const char *file;
	struct hoist__st_header *h;
	char *name_next;
	int64_t *shape_next;
	size_t unknown_keys;
	const char *unknown_tensor;
	const char *unknown_key;
};

static enum hoist_status parse_tensor(struct parse_state *st, const char *name, json_t *entry,
				      struct hoist_tensor_info *t, uint64_t *begin_out,
				      uint64_t *end_out)
{
	const char *file = st->file;
	char sbuf[160];
	if (!json_is_object(entry))
		return hoist__error(HOIST_ERR_FORMAT,
				    "%s: tensor \"%s\": entry is not an object with dtype, shape and data_offsets",
				    file, name);
	json_t *dtype = NULL, *shape = NULL, *offsets = NULL;
	const char *key;
	json_t *v;
	json_object_foreach(entry, key, v) {
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
	if (hoist_dtype_parse(json_string_value(dtype), &t->dtype) != HOIST_OK)
		return hoist__error(HOIST_ERR_FORMAT, "%s: tensor \"%s\": unknown dtype \"%s\"", file,
				    name, json_string_value(dtype));
	if (!json_is_array(shape))
		return hoist__error(HOIST_ERR_FORMAT,
				    "%s: tensor \"%s\": shape is not a list of non-negative integers",
				    file, name);
	size_t ndim = json_array_size(shape);
	/* Elements are counted by the array the parser built, so the pool was sized
	 * from the same count: no claim in the file can make us write past it. */
	t->ndim = (unsigned)ndim;
	t->shape = st->shape_next;
	/* numel as the reference computes it: a left fold of checked products, so
	 * [2^32, 2^32, 0] overflows there and here alike. */
	uint64_t numel = 1;
	bool overflow = false;
	for (size_t d = 0; d < ndim; d++) {
		uint64_t dim;
		if (!json_size(json_array_get(shape, d), &dim))
			return hoist__error(HOIST_ERR_FORMAT,
					    "%s: tensor \"%s\": shape[%zu] is not a non-negative integer",
					    file, name, d);
		st->shape_next[d] = (int64_t)dim;
		if (!overflow && !hoist__mul_u64(numel, dim, &numel))
			overflow = true;
	}
	st->shape_next += ndim;
	unsigned bits = hoist_dtype_bits(t->dtype);
	uint64_t nbits;
	if (overflow || !hoist__mul_u64(numel, bits, &nbits))
		return hoist__error(HOIST_ERR_FORMAT,
				    "%s: tensor \"%s\": shape %s x %s overflows a 64-bit byte count",
				    file, name, format_shape(t->shape, t->ndim, sbuf, sizeof sbuf),
				    hoist_dtype_name(t->dtype));
	if (nbits % 8 != 0)
		return hoist__error(HOIST_ERR_FORMAT,
				    "%s: tensor \"%s\": shape %s x %s is %llu bits, not a whole number of bytes",
				    file, name, format_shape(t->shape, t->ndim, sbuf, sizeof sbuf),
				    hoist_dtype_name(t->dtype), (unsigned long long)nbits);
	uint64_t begin, end;
	if (!json_is_array(offsets) || json_array_size(offsets) != 2 ||
	    !json_size(json_array_get(offsets, 0), &begin) ||
	    !json_size(json_array_get(offsets, 1), &end))
		return hoist__error(HOIST_ERR_FORMAT,
				    "%s: tensor \"%s\": data_offsets is not a list of two non-negative integers",
				    file, name);
	if (end < begin)
		return hoist__error(HOIST_ERR_FORMAT,
				    "%s: tensor \"%s\": data_offsets [%llu, %llu) end before they begin",
				    file, name, (unsigned long long)begin, (unsigned long long)end);
	if (end - begin != nbits / 8)
		return hoist__error(HOIST_ERR_FORMAT,
				    "%s: tensor \"%s\": data_offsets [%llu, %llu) do not match shape %s x %s (%llu bytes)",
				    file, name, (unsigned long long)begin, (unsigned long long)end,
				    format_shape(t->shape, t->ndim, sbuf, sizeof sbuf),
				    hoist_dtype_name(t->dtype), (unsigned long long)(nbits / 8));
	size_t len = strlen(name);
	memcpy(st->name_next, name, len + 1);
	t->name = st->name_next;
	st->name_next += len + 1;
	t->numel = numel;
	t->nbytes = end - begin;
	t->shard = 0;
	*begin_out = begin;
	*end_out = end;
	return HOIST_OK;
}

static enum hoist_status parse_metadata(const char *file, json_t *meta,
					struct hoist__st_header *h)
{
	if (json_is_null(meta))
		return HOIST_OK; /* the reference reads null as "no metadata" */
	if (!json_is_object(meta))
		return hoist__error(HOIST_ERR_FORMAT,
				    "%s: __metadata__ is not a map of strings to strings", file);
	size_t n = json_object_size(meta);
	const char *key;
	json_t *v;
	json_object_foreach(meta, key, v) {
		if (!json_is_string(v))
			return hoist__error(HOIST_ERR_FORMAT,
					    "%s: __metadata__ entry \"%s\" is not a string (a map of strings to strings is required)",
					    file, key);
	}
	if (n == 0)
		return HOIST_OK;
	h->metadata_keys = hoist__calloc(n, sizeof *h->metadata_keys);
	h->metadata_values = hoist__calloc(n, sizeof *h->metadata_values);
	if (!h->metadata_keys || !h->metadata_values)
		return hoist__error(HOIST_ERR_NOMEM, "%s: out of memory", file);
	json_object_foreach(meta, key, v) {
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

/* Sorting tensors into file order; the ranges ride along in a side array. */
struct ranged {
	uint64_t begin, end;
	size_t index; /* into the header's tensor array */
};

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

enum hoist_status hoist__st_parse(const char *file, const void *header, uint64_t header_len,
				  uint64_t file_size, struct hoist__st_header *out)
{
	enum hoist_status status = HOIST_OK;
	struct hoist__st_header h = {0};
	json_t *root = NULL;
	struct ranged *ranges = NULL;
	struct hoist_tensor_info *sorted = NULL;
	char *patched = NULL;
	const unsigned char *text = header;
	char sbuf[48];

	memset(out, 0, sizeof *out);
	if (header_len > HOIST__ST_MAX_HEADER || file_size < 8 || header_len > file_size - 8)
		return hoist__error(HOIST_ERR_FORMAT,
				    "%s: header length %llu does not fit the file (%llu bytes)", file,
				    (unsigned long long)header_len, (unsigned long long)file_size);
	h.header_len = header_len;
	h.data_size = file_size - 8 - header_len;

	size_t bad;
	if (!hoist__utf8_valid(text, (size_t)header_len, &bad))
		return hoist__error(HOIST_ERR_FORMAT,
				    "%s: header is not valid UTF-8 (bad byte 0x%02x at byte offset %llu)",
				    file, text[bad], (unsigned long long)(8 + bad));

	/* "-0" as an integer: the reference rejects it as a size but ignores it under an
	 * unknown key. Parsing it as -1 (same length, so byte offsets hold) gets both. */
	size_t max_depth, depth_at, neg_zero_at;
	scan_text(text, (size_t)header_len, &max_depth, &depth_at, &neg_zero_at, NULL);
	const char *json_text = header;
	if (neg_zero_at != SIZE_MAX) {
		if (!(patched = hoist__malloc((size_t)header_len))) {
			status = hoist__error(HOIST_ERR_NOMEM, "%s: out of memory", file);
			goto out;
		}
		memcpy(patched, header, (size_t)header_len);
		scan_text(text, (size_t)header_len, &max_depth, &depth_at, &neg_zero_at, patched);
		json_text = patched;
	}
	json_error_t jerr;
	root = json_loadb(json_text, (size_t)header_len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		long long at = 8 + (long long)(jerr.position > 0 ? jerr.position : 0);
		if (json_error_code(&jerr) == json_error_duplicate_key)
			status = hoist__error(HOIST_ERR_FORMAT,
					      "%s: header has a duplicate key (%s, near byte offset %lld); names must be unique",
					      file, jerr.text, at);
		else if (json_error_code(&jerr) == json_error_out_of_memory)
			status = hoist__error(HOIST_ERR_NOMEM, "%s: out of memory parsing the header",
					      file);
		else
			status = hoist__error(HOIST_ERR_FORMAT,
					      "%s: header is not valid JSON: %s (near byte offset %lld)",
					      file, jerr.text, at);
		goto out;
	}
	if (!json_is_object(root)) {
		status = hoist__error(HOIST_ERR_FORMAT, "%s: header is not a JSON object", file);
		goto out;
	}
	if (max_depth > MAX_DEPTH) {
		status = hoist__error(HOIST_ERR_FORMAT,
				      "%s: header nests deeper than %d levels (at byte offset %llu)",
				      file, MAX_DEPTH, (unsigned long long)(8 + depth_at));
		goto out;
	}

	/* Count tensors, name bytes and dims from the parsed tree: each is bounded by
	 * the header's length, so these pools are at most a few times its size. */
	size_t count = 0, name_bytes = 0, dims = 0;
	const char *key;
	json_t *v;
	json_object_foreach(root, key, v) {
		if (strcmp(key, "__metadata__") == 0)
			continue;
		count++;
		name_bytes += strlen(key) + 1;
		json_t *shape = json_is_object(v) ? json_object_get(v, "shape") : NULL;
		if (json_is_array(shape))
			dims += json_array_size(shape);
	}
	if (count) {
		h.tensors = hoist__calloc(count, sizeof *h.tensors);
		ranges = hoist__calloc(count, sizeof *ranges);
		h.names = hoist__malloc(name_bytes);
		h.shapes = hoist__calloc(dims ? dims : 1, sizeof *h.shapes);
		if (!h.tensors || !ranges || !h.names || !h.shapes) {
			status = hoist__error(HOIST_ERR_NOMEM, "%s: out of memory for %zu tensors",
					      file, count);
			goto out;
		}
	}
	struct parse_state st = {.file = file, .h = &h, .name_next = h.names,
				 .shape_next = h.shapes};
	json_t *meta = NULL;
	json_object_foreach(root, key, v) {
		if (strcmp(key, "__metadata__") == 0) {
			meta = v;
			continue;
		}
		size_t i = h.tensor_count;
		status = parse_tensor(&st, key, v, &h.tensors[i], &ranges[i].begin, &ranges[i].end);
		if (status != HOIST_OK)
			goto out;
		ranges[i].index = i;
		h.tensor_count++;
	}
	if (meta && (status = parse_metadata(file, meta, &h)) != HOIST_OK)
		goto out;

	/* File order, then one pass: each range must start where the previous ended. */
	if (count > 1)
		qsort_r(ranges, count, sizeof *ranges, cmp_range, h.tensors);
	uint64_t pos = 0;
	for (size_t i = 0; i < count; i++) {
		const struct ranged *r = &ranges[i];
		const char *name = h.tensors[r->index].name;
		if (r->begin > pos) {
			if (i == 0)
				status = hoist__error(HOIST_ERR_FORMAT,
						      "%s: tensor \"%s\": data_offsets [%llu, %llu): the data region does not start at 0 (a hole of %llu bytes at byte offset %llu)",
						      file, name, (unsigned long long)r->begin,
						      (unsigned long long)r->end,
						      (unsigned long long)r->begin,
						      (unsigned long long)(8 + header_len));
			else
				status = hoist__error(HOIST_ERR_FORMAT,
						      "%s: tensor \"%s\": data_offsets [%llu, %llu) leave a hole of %llu bytes after tensor \"%s\" (at byte offset %llu)",
						      file, name, (unsigned long long)r->begin,
						      (unsigned long long)r->end,
						      (unsigned long long)(r->begin - pos),
						      h.tensors[ranges[i - 1].index].name,
						      (unsigned long long)(8 + header_len + pos));
			goto out;
		}
		if (r->begin < pos) {
			const struct ranged *p = &ranges[i - 1];
			status = hoist__error(HOIST_ERR_FORMAT,
					      "%s: tensor \"%s\": data_offsets [%llu, %llu) overlap tensor \"%s\" [%llu, %llu)",
					      file, name, (unsigned long long)r->begin,
					      (unsigned long long)r->end, h.tensors[p->index].name,
					      (unsigned long long)p->begin, (unsigned long long)p->end);
			goto out;
		}
		pos = r->end;
	}
	if (pos != h.data_size) {
		if (pos > h.data_size)
			status = hoist__error(HOIST_ERR_FORMAT,
					      "%s: tensor \"%s\": data_offsets end at %llu, past the end of the data region (%llu bytes: file size %llu - 8 - header %llu)",
					      file, h.tensors[ranges[count - 1].index].name,
					      (unsigned long long)pos, (unsigned long long)h.data_size,
					      (unsigned long long)file_size,
					      (unsigned long long)header_len);
		else
			status = hoist__error(HOIST_ERR_FORMAT,
					      "%s: the tensors end at data offset %llu but the data region is %llu bytes (file size %llu - 8 - header %llu): %llu bytes at byte offset %llu belong to no tensor",
					      file, (unsigned long long)pos,
					      (unsigned long long)h.data_size,
					      (unsigned long long)file_size,
					      (unsigned long long)header_len,
					      (unsigned long long)(h.data_size - pos),
					      (unsigned long long)(8 + header_len + pos));
		goto out;
	}

	if (count) {
		sorted = hoist__calloc(count, sizeof *sorted);
		if (!sorted) {
			status = hoist__error(HOIST_ERR_NOMEM, "%s: out of memory", file);
			goto out;
		}
		for (size_t i = 0; i < count; i++) {
			sorted[i] = h.tensors[ranges[i].index];
			sorted[i].offset = 8 + header_len + ranges[i].begin;
		}
		hoist__free(h.tensors);
		h.tensors = sorted;
		sorted = NULL;
	}
	if (st.unknown_keys) {
		sbuf[0] = '\0';
		if (st.unknown_keys > 1)
			snprintf(sbuf, sizeof sbuf, " (%zu unknown keys in all)", st.unknown_keys);
		status = add_warning(&h, "%s: tensor \"%s\": unknown key \"%s\" ignored%s", file,
				     st.unknown_tensor, st.unknown_key, sbuf);
		if (status != HOIST_OK)
			goto out;
	}
	*out = h;
	memset(&h, 0, sizeof h);
out:
	hoist__free(patched);
	hoist__free(sorted);
	hoist__free(ranges);
	json_decref(root);
	hoist__st_header_free(&h);
	return status;
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
