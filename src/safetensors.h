/*
 * safetensors.h - the safetensors header parser and validator (safetensors.c): one
 * shard's header, from bytes to tensors. Used by checkpoint.c and the header fuzzers.
 */
#ifndef HOIST_SAFETENSORS_H
#define HOIST_SAFETENSORS_H

#include "base.h"

/* The format's limit on the header length (the reference rejects longer headers). */
#define HOIST__ST_MAX_HEADER 100000000u

/* One file's parsed header. Tensors are sorted in file order (data offset, then
 * end, then name for zero-size ties); their name and shape point into the pools
 * below, which this struct owns. tensors[i].shard is 0 and .offset is absolute
 * (8 + header length + begin). */
struct hoist__st_header {
	uint64_t header_len; /* N, the JSON's length as the file's first 8 bytes say */
	uint64_t data_size;  /* file size - 8 - N */
	size_t tensor_count;
	struct hoist_tensor_info *tensors;
	size_t *by_name;       /* tensor indices in name order (strcmp) */
	char *names;           /* every name, NUL-terminated, one after another */
	int64_t *shapes;       /* every shape, one after another */
	size_t metadata_count; /* __metadata__, in the header's order */
	char **metadata_keys;
	char **metadata_values;
	struct hoist__strings warnings; /* things worth saying that break nothing ("unknown key") */
};

/* Checks the 8-byte length prefix against the file size: fills *header_len.
 * `file` names the file in messages. Errors: HOIST_ERR_FORMAT. */
enum hoist_status hoist__st_check_prefix(const char *file, const unsigned char prefix[8],
                                         uint64_t file_size, uint64_t *header_len);

/* Parses and validates one header: `header` holds the header_len bytes that follow
 * the 8-byte prefix in a file of file_size bytes. On success *out owns everything
 * (free with hoist__st_header_free); on failure *out is left empty.
 * Errors: HOIST_ERR_FORMAT (message: file, tensor, rule), HOIST_ERR_NOMEM. */
enum hoist_status hoist__st_parse(const char *file, const void *header, uint64_t header_len,
                                  uint64_t file_size, struct hoist__st_header *out);

/* Which reader hoist__st_parse_with uses. AUTO (what hoist__st_parse does) reads the
 * headers writers write with a purpose-built reader and everything else, errors in
 * the JSON included, with jansson; the result and every message are the same either
 * way. JSON and FAST force one (tests and fuzzers hold them against each other);
 * FAST returns HOIST_ERR_INVALID ("declined") for a header outside its subset. */
enum hoist__st_parser {
	HOIST__ST_PARSER_AUTO,
	HOIST__ST_PARSER_JSON,
	HOIST__ST_PARSER_FAST,
};
enum hoist_status hoist__st_parse_with(enum hoist__st_parser parser, const char *file,
                                       const void *header, uint64_t header_len, uint64_t file_size,
                                       struct hoist__st_header *out);

/* True when a and b hold the same: every tensor field, shape, name order, metadata
 * and warning; else false with what differs first in why (tests and fuzzers). */
bool hoist__st_header_same(const struct hoist__st_header *a, const struct hoist__st_header *b,
                           char *why, size_t size);

/* Parses a whole file held in memory (prefix, header, data): what the fuzzer calls. */
enum hoist_status hoist__st_parse_bytes(const char *file, const void *bytes, size_t size,
                                        struct hoist__st_header *out);

void hoist__st_header_free(struct hoist__st_header *h);

/* A name and where it came from, for sorting by name. */
struct hoist__name_ref {
	const char *name;
	size_t index;
};
/* Sorts refs by name (strcmp), then index; tmp is scratch of n entries. A merge sort
 * of the runs already in order: sorted input costs one pass, k sorted lists log2(k)
 * passes, anything O(n log n). */
void hoist__sort_names(struct hoist__name_ref *refs, struct hoist__name_ref *tmp, size_t n);

/* True when bytes [0, n) are valid UTF-8 (no overlongs, surrogates or code points
 * above U+10FFFF); otherwise *bad is the offset of the first bad byte. */
bool hoist__utf8_valid(const unsigned char *s, size_t n, size_t *bad);

#endif /* HOIST_SAFETENSORS_H */
