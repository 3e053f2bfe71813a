/* plan.h - what the planner's files and the pipeline share about a plan. */
#ifndef HOIST_PLAN_H
#define HOIST_PLAN_H

#include "internal.h"

/* The checkpoint the plan was made for (a plan is only valid with it), the dtype
 * its arena sizes assume (opt->dtype at planning), and its tensor count. */
const struct hoist_checkpoint *hoist__plan_checkpoint(const struct hoist_plan *plan);
enum hoist_dtype hoist__plan_dtype(const struct hoist_plan *plan);
size_t hoist__plan_tensor_count(const struct hoist_plan *plan);
/* How long hoist_plan_create took for this plan: a load given a ready plan reports it
 * as its plan phase, so the report covers planning whoever did it. */
double hoist__plan_seconds(const struct hoist_plan *plan);

/* ---- the explicit device map (plan_map.c) -------------------------------------- */

/* One entry of an accelerate-style map file: a module / tensor-name prefix and the
 * device it names. */
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
 * the file and the entry), HOIST_ERR_NOMEM. */
enum hoist_status hoist__map_load(const char *path, enum hoist_device_kind gpu_kind,
                                  struct hoist__map **out);
void hoist__map_free(struct hoist__map *map);

/* Gives every tensor its entry: entries that cover no checkpoint name are tried under
 * the known transformers renames first. entry_of[i] receives the index of tensor i's
 * entry (the longest prefix covering it). Errors: HOIST_ERR_INVALID naming a tensor no
 * entry covers, HOIST_ERR_NOMEM. */
enum hoist_status hoist__map_resolve(struct hoist__map *map, const struct hoist_checkpoint *ckpt,
                                     size_t *entry_of);

#endif
