/*
 * groups.h - numbered layers (groups.c): the tensors under "model.layers.12." form a
 * group, and the groups whose prefixes differ only in that number a family
 * ("model.layers.N."), as `hoist inspect` shows them and hoist_checkpoint_layer_family
 * returns them.
 */
#ifndef HOIST_GROUPS_H
#define HOIST_GROUPS_H

#include "base.h"

struct hoist__families {
	struct hoist_layer_group *groups; /* in order of their first tensor */
	size_t ngroups;
	struct hoist_layer_family *items; /* in order of their first tensor */
	size_t count;
	char *strings;            /* every prefix and pattern, NUL-terminated */
	size_t ungrouped_tensors; /* in no group */
	uint64_t ungrouped_bytes;
};

/* Finds the families of tensors[0 .. n) (file order). Errors: HOIST_ERR_NOMEM. */
enum hoist_status hoist__families_build(const struct hoist_tensor_info *tensors, size_t n,
                                        struct hoist__families **out);
void hoist__families_free(struct hoist__families *families);

#endif /* HOIST_GROUPS_H */
