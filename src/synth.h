/*
 * synth.h - the layout step of hoist_synth_write, apart so tests can check the
 * tensor list a source gives (e.g. the full 7B layout) without writing its bytes.
 */
#ifndef HOIST_SYNTH_H
#define HOIST_SYNTH_H

#include "base.h"

#define HOIST__SYNTH_MAX_DIMS 8

struct hoist__synth_tensor {
	char *name;
	enum hoist_dtype dtype;
	unsigned ndim;
	int64_t shape[HOIST__SYNTH_MAX_DIMS];
	uint64_t nbytes;
	uint32_t shard;  /* 0-based */
	uint64_t offset; /* in the shard's data section (the header's data_offsets[0]) */
};

/* Tensors in file order: by shard, then by offset. */
struct hoist__synth_layout {
	struct hoist__synth_tensor *tensors;
	size_t count;
	uint32_t shards;
	uint64_t total_bytes;
	char *config_json; /* what config.json will hold */
};

/* Reads opt->source (or the built-in layout), applies scale, layers and sharding.
 * Errors as hoist_synth_write's. Free with hoist__synth_layout_free. */
enum hoist_status hoist__synth_layout(const struct hoist_synth_options *opt,
                                      struct hoist__synth_layout **out);
void hoist__synth_layout_free(struct hoist__synth_layout *layout);

#endif
