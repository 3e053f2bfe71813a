/*
 * budget.h - the bytes each device may take (budget.c): max_memory as given, or what
 * the machine has free now less headroom, asking the backends once per plan.
 */
#ifndef HOIST_BUDGET_H
#define HOIST_BUDGET_H

#include "base.h"

/* cuda and sim: the kinds with GPU ordinals. */
bool hoist__is_gpu(enum hoist_device_kind kind);

/* max_memory, parsed. */
struct hoist__budgets {
	bool gpu_set[HOIST_MAX_DEVICES];
	uint64_t gpu[HOIST_MAX_DEVICES];
	bool cpu_set, disk_set;
	uint64_t cpu, disk;
	bool any_gpu;
	int named_kind; /* kind named as "cuda:N" / "sim:N"; -1 none */
};

/* Parses "0=20GiB,cpu=64GiB,disk=1TB" (NULL: nothing given). Bare numbers are GPU
 * ordinals of the target's kind. Errors: HOIST_ERR_INVALID naming the item. */
enum hoist_status hoist__budgets_parse(const char *text, struct hoist__budgets *b);

/* What a planning run learns about the machine, asked once each. */
struct hoist__machine {
	const struct hoist_options *opt;
	enum hoist_device_kind gpu_kind; /* what bare GPU ordinals mean */
	bool gpus_asked;
	enum hoist_status gpu_status;
	char gpu_error[256];
	struct hoist_device_info gpus[HOIST_MAX_DEVICES];
	size_t ngpus;
};

void hoist__machine_init(struct hoist__machine *m, const struct hoist_options *opt,
                         enum hoist_device_kind gpu_kind);
/* Lists the GPUs of m->gpu_kind, once: later calls return the first answer.
 * Errors: HOIST_ERR_NO_DEVICE (the message says why: no driver, no GPU). */
enum hoist_status hoist__machine_gpus(struct hoist__machine *m);

/* One device's budget and where it came from. */
struct hoist__budget {
	struct hoist_device device;
	uint64_t budget; /* UINT64_MAX: unlimited */
	char source[80]; /* "max_memory", "free now less 7168 MiB headroom", ... */
};

/* GPU `ordinal` of m's kind: max_memory, else free now less headroom (sim: its
 * capacity). Errors: HOIST_ERR_NO_DEVICE naming the GPU. */
enum hoist_status hoist__budget_gpu(struct hoist__machine *m, const struct hoist__budgets *b,
                                    int ordinal, struct hoist__budget *out);
/* cpu: max_memory, else MemAvailable less headroom (unlimited for mmap views). */
enum hoist_status hoist__budget_cpu(struct hoist__machine *m, const struct hoist__budgets *b,
                                    struct hoist__budget *out);
/* disk: max_memory, else unlimited. */
void hoist__budget_disk(const struct hoist__budgets *b, struct hoist__budget *out);

#endif /* HOIST_BUDGET_H */
