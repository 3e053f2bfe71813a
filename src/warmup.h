/*
 * warmup.h - the slow first steps of a load, started early (warmup.c;
 * hoist_warmup_start in hoist.h): the target GPUs opened and a staging ring pinned,
 * on a thread of its own while the caller opens and plans. A load takes them over.
 */
#ifndef HOIST_WARMUP_H
#define HOIST_WARMUP_H

#include "registry.h"
#include "stream.h"

/* Waits for the warm-up (NULL: none), then hands over the device it opened for
 * `device`, which the caller then owns; NULL if it opened none. */
struct hoist__dev *hoist__warmup_take(struct hoist_warmup *w, struct hoist_device device);

/* Waits for the warm-up, then lends its staging ring (NULL, 0 if none); it stays the
 * warm-up's. */
void hoist__warmup_ring(struct hoist_warmup *w, void **ring, size_t *size, const char **how);

#endif /* HOIST_WARMUP_H */
