/*
 * names.h - tensor names as dotted paths ("model.layers.12.mlp.up_proj.weight"), as the
 * planner orders and groups them (names.c).
 */
#ifndef HOIST_NAMES_H
#define HOIST_NAMES_H

#include "base.h"

/* True when s[0 .. n) is one or more decimal digits. */
bool hoist__name_digits(const char *s, size_t n);

/* Orders a[0 .. an) and b[0 .. bn) component by component (split at '.'), numeric
 * components before others and by value ("layers.2" before "layers.10"), the rest
 * bytewise; a name sorts before the names it is a prefix of, so every module's
 * names are contiguous. A total order. */
int hoist__name_cmp(const char *a, size_t an, const char *b, size_t bn);

/* Whether key[0 .. kn) starts with p[0 .. pn) on a component boundary ("a.b" covers
 * "a.b" and "a.b.c", never "a.bc"); an empty p covers everything. */
bool hoist__name_has_prefix(const char *key, size_t kn, const char *p, size_t pn);

#endif /* HOIST_NAMES_H */
