/*
 * plan_map.h - explicit device maps in accelerate's JSON form (plan_map.c):
 * {"model.visual": 0, "model.language_model.layers.12": "cpu", "lm_head": "disk"}.
 */
#ifndef HOIST_PLAN_MAP_H
#define HOIST_PLAN_MAP_H

#include "base.h"

/* One entry of a map file: a module / tensor-name prefix and the device it names. */
struct hoist__map_entry {
	char *prefix;               /* as it matches checkpoint names (after any rename) */
	char *written;              /* as written in the file (for messages) */
	struct hoist_device device; /* GPUs: kind as the target's, index the ordinal */
	bool used;                  /* covers at least one tensor */
};

struct hoist__map {
	char *path;
	struct hoist__map_entry *entries; /* sorted by prefix, bytewise */
	size_t count;
};

/* Reads and validates the map file at path. gpu_kind is the kind bare ordinals
 * mean (cuda or sim). Errors: HOIST_ERR_IO, HOIST_ERR_INVALID (the message names
 * the file and the entry; a file that is not a JSON object is a bad option too),
 * HOIST_ERR_NOMEM. */
enum hoist_status hoist__map_load(const char *path, enum hoist_device_kind gpu_kind,
                                  struct hoist__map **out);
void hoist__map_free(struct hoist__map *map);

/* Gives every tensor its entry: entries that cover no checkpoint name are tried under
 * the known transformers renames first. entry_of[i] receives the index of tensor i's
 * entry (the longest prefix covering it). Errors: HOIST_ERR_INVALID naming a tensor no
 * entry covers, HOIST_ERR_NOMEM. */
enum hoist_status hoist__map_resolve(struct hoist__map *map, const struct hoist_checkpoint *ckpt,
                                     size_t *entry_of);

#endif /* HOIST_PLAN_MAP_H */
