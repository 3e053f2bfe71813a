/*
 * convert.h - dtype conversion on the load path (convert.c): F16, BF16 and F32 into
 * each other. Which tensors convert is dtype.c's rule (hoist_dtype_loaded).
 */
#ifndef HOIST_CONVERT_H
#define HOIST_CONVERT_H

#include "base.h"

/* Converts n elements from `from` to `to` (both among F16, BF16, F32): round to
 * nearest even, NaN stays NaN (quiet), Inf stays Inf, subnormals kept or rounded
 * as IEEE says. dst and src must not overlap; neither needs to be aligned. */
void hoist__convert(enum hoist_dtype from, enum hoist_dtype to, void *dst, const void *src,
                    size_t n);
/* The same without CPU-specific instructions (F16C), so tests can hold both paths
 * against the reference. */
void hoist__convert_portable(enum hoist_dtype from, enum hoist_dtype to, void *dst, const void *src,
                             size_t n);

#endif /* HOIST_CONVERT_H */
