/*
 * checkpoint.h - what the library's own files need of an open checkpoint beyond
 * hoist.h (checkpoint.c).
 */
#ifndef HOIST_CHECKPOINT_H
#define HOIST_CHECKPOINT_H

#include "source.h"

/* Shard `shard`'s file as it was when its header was read, so a load can tell that
 * it changed since (hoist__source_verify). NULL when out of range. */
const struct hoist__file_id *hoist__checkpoint_shard_id(const struct hoist_checkpoint *ckpt,
                                                        size_t shard);

#endif /* HOIST_CHECKPOINT_H */
