/* out.h - what the inspect, verify, bench and doctor commands share: their output, where a
 * failed write (a full disk, a closed pipe) ends the command with an error rather than
 * a silently short result, and a few formats. Uses only the public header. */
#ifndef HOIST_OUT_H
#define HOIST_OUT_H

#include "hoist.h"

#include <jansson.h>
#include <stdio.h>

/* Flushes f; returns 0, or prints "hoist: writing the output: <why>" on stderr and
 * returns 1. */
int out_finish(FILE *f);

/* A JSON string for text that may not be UTF-8 (a path): if it is not, its bytes above
 * 0x7f become '?'. NULL gives JSON null. Returns NULL when memory runs out. */
json_t *out_json_text(const char *s);

/* Writes s as a JSON string (out_json_text's, escaped by jansson). */
void out_json_string(FILE *f, const char *s);

/* "12.34 GB/s" into buf; returns buf. */
char *out_rate(double bytes_per_second, char *buf, size_t size);

/* The local date and time of a Unix time, "2026-11-30 14:05", into buf; returns buf. */
char *out_when(int64_t t, char *buf, size_t size);

#endif
