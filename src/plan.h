/*
 * plan.h - the plan as the planner's files share it (plan.c places, plan_print.c
 * prints). The rest of the library sees a plan through hoist.h only.
 */
#ifndef HOIST_PLAN_H
#define HOIST_PLAN_H

#include "base.h"

/* Bandwidths for the predicted load time: assumptions, taken from the measurements
 * on one H200 machine in tests/data/README.md, not measured on this machine. */
#define HOIST__BW_COLD 2.0e9  /* storage, O_DIRECT, 16 readers */
#define HOIST__BW_WARM 40.0e9 /* page cache -> pinned host memory, 16 readers */
#define HOIST__BW_COPY 55.0e9 /* pinned host -> GPU */

enum hoist__strategy {
	HOIST__STRATEGY_SINGLE,     /* one target device, no map: everything there */
	HOIST__STRATEGY_BALANCED,   /* "auto" / "balanced" */
	HOIST__STRATEGY_SEQUENTIAL, /* "sequential" */
	HOIST__STRATEGY_MAP,        /* an explicit map file */
};

struct hoist__plan_dev {
	struct hoist_device device;
	uint64_t budget; /* UINT64_MAX: unlimited */
	uint64_t bytes;  /* arena bytes planned; disk: file bytes left in place */
	size_t tensors;
	size_t full_unit; /* the first unit that did not fit here and moved on; SIZE_MAX none */
	char source[80];  /* where the budget came from */
};

struct hoist__unit {
	/* hoist's units: a tensor-name prefix (into a tensor name; keylen bytes, no
	 * trailing '.'). The caller's: its name (NUL-terminated, in plan->strings). */
	const char *key;
	size_t keylen;
	size_t first, count;    /* range in plan->order */
	uint64_t bytes;         /* arena bytes (aligned, as loaded) */
	uint64_t file_bytes;    /* bytes in the files (what a disk placement references) */
	int dev;                /* index into plan->dev; -1 while unplaced */
	int fixed;              /* the caller's device for it: index into plan->dev; -1 none */
	const char *fixed_text; /* that device as the caller wrote it; NULL none */
	int tie;                /* its tie group; -1 none */
};

/* Where the execution order came from. */
enum hoist__order {
	HOIST__ORDER_NAMES,   /* hoist's reading of the tensor names */
	HOIST__ORDER_REQUEST, /* the caller's request (options.request) */
	HOIST__ORDER_FILE,    /* a module-order file (options.module_order) */
};

struct hoist_plan {
	const struct hoist_checkpoint *ckpt;
	size_t ntensors;
	enum hoist_dtype dtype;
	double seconds; /* hoist_plan_create's own time, for a load's report */
	enum hoist__strategy strategy;
	char strategy_name[32];
	char *map_path;
	char *map_unused; /* map entries that matched no tensor, comma-separated; or NULL */
	size_t ndev;
	struct hoist__plan_dev dev[HOIST_MAX_DEVICES + 2];
	uint8_t *tdev;    /* per tensor: index into dev */
	uint64_t *toff;   /* per tensor: arena offset (disk: file offset) */
	uint64_t *tbytes; /* per tensor: arena bytes (loaded size rounded up to the alignment) */
	size_t nunits;
	/* hoist's units in name order, or the caller's in its order */
	struct hoist__unit *units;
	size_t *order;   /* tensor indices, grouped by unit */
	size_t *seq;     /* unit indices in execution order: the fill order */
	bool by_request; /* units from a request or a module-order file */
	enum hoist__order order_source;
	char *order_path;      /* the module-order file */
	size_t nties;          /* tie groups (units' tie fields number them) */
	size_t nskipped;       /* tensors the request asked not to load (on disk, unread) */
	uint8_t *skipped;      /* per tensor: 1 if skipped */
	uint64_t room;         /* bytes kept free on the first GPU and cpu (offload_room) */
	size_t changes;        /* device changes along seq */
	char *strings;         /* what units' keys and fixed_text point into */
	double copy_bw;        /* host -> device copy bandwidth assumed for GPUs */
	double warm_s, cold_s; /* predicted load seconds */
	char notice[512];
	enum hoist_log_level notice_level; /* NOTICE; WARNING for GPUs present but unusable */
	/* What the accessors return, filled once the plan is made. */
	struct hoist_plan_device pub_dev[HOIST_MAX_DEVICES + 2];
	struct hoist_placement *placements;     /* per tensor */
	struct hoist_plan_unit_info *unit_info; /* per unit, in seq order */
};

/* ---- units and their order (plan_order.c) ---- */

/* Replaces the plan's units by the caller's: req's units in its order, each tensor in
 * the unit whose prefix covering it is longest, skipped tensors in none; the tie
 * groups. Needs p->tbytes. Errors: HOIST_ERR_INVALID (a tensor no unit covers, a bad
 * tie group), HOIST_ERR_NOMEM. */
enum hoist_status hoist__plan_request_units(struct hoist_plan *p,
                                            const struct hoist_plan_request *req);
/* The same from a module-order file. Errors: those, and HOIST_ERR_IO. */
enum hoist_status hoist__plan_file_units(struct hoist_plan *p, const char *path);
/* hoist's execution order of its own units (p->seq), and the tie group of
 * config.json's tie_word_embeddings. Errors: HOIST_ERR_NOMEM. */
enum hoist_status hoist__plan_default_order(struct hoist_plan *p);
/* The device changes along p->seq, and p->unit_info. Errors: HOIST_ERR_NOMEM. */
enum hoist_status hoist__plan_publish_units(struct hoist_plan *p);

/* "unlimited" for UINT64_MAX, else hoist_bytes_format. */
char *hoist__plan_bytes(uint64_t bytes, char *buf, size_t size);

#endif /* HOIST_PLAN_H */
