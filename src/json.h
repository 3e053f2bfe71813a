/*
 * json.h - the JSON the library reads and writes (json.c): one reader of small JSON
 * files (an index, config.json, a device map, a synth source), one string writer.
 * Parsing is jansson's; the purpose-built reader of safetensors headers is in
 * safetensors.c.
 */
#ifndef HOIST_JSON_H
#define HOIST_JSON_H

#include "base.h"

#include <jansson.h>
#include <stdio.h>

/* The largest JSON file read whole: a 100,000-tensor index is about 10 MB. */
#define HOIST__JSON_FILE_MAX (256ull << 20)

/* Reads and parses the JSON file at path (at most HOIST__JSON_FILE_MAX bytes) with
 * jansson's flags (JSON_REJECT_DUPLICATES, ...); *out is a new reference.
 * Errors: HOIST_ERR_IO (cannot open or read, not a regular file), HOIST_ERR_FORMAT
 * ("<path>: not valid JSON: <why> (line L, column C)", or too large), HOIST_ERR_NOMEM. */
enum hoist_status hoist__json_read_file(const char *path, size_t flags, json_t **out);

/* Writes s as a JSON string: quotes, backslashes and control characters escaped. */
void hoist__json_write_string(FILE *out, const char *s);

#endif /* HOIST_JSON_H */
