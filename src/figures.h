/*
 * figures.h - this machine's measured links (figures.c): the set of figures hoist
 * bench measures (struct hoist_bench), kept as JSON under $XDG_CACHE_HOME/hoist/, and
 * the prediction of a load's stream from them, or from the assumptions below where
 * nothing was measured. Nothing here knows of plans: the planner describes a load by
 * its shape.
 */
#ifndef HOIST_FIGURES_H
#define HOIST_FIGURES_H

#include "base.h"

/* The assumptions where a link was not measured: the figures of one H200 machine
 * (tests/data/README.md), the same as plan.h's HOIST__BW_* (predict.c checks). */
#define HOIST__ASSUMED_STORAGE 2.0e9 /* O_DIRECT, 16 readers */
#define HOIST__ASSUMED_WARM 40.0e9   /* page cache -> host memory, 16 readers */
#define HOIST__ASSUMED_COPY 55.0e9   /* pinned host -> GPU */

struct hoist__figure {
	struct hoist_figure pub; /* pub.where points to where */
	char where[160];
	/* Storage links: the device number (st_dev) of the file system measured, which
	 * predictions match against the checkpoint's; 0 for the other links. */
	uint64_t fs_dev;
};

struct hoist_bench {
	struct hoist__figure *figs;
	size_t count, cap;
	struct hoist__strings skipped;
};

/* An empty set. Errors: HOIST_ERR_NOMEM. */
enum hoist_status hoist__bench_new(struct hoist_bench **out);
/* Adds a copy of f, replacing the figure of the same link, device and file system.
 * Errors: HOIST_ERR_NOMEM. */
enum hoist_status hoist__bench_put(struct hoist_bench *b, const struct hoist__figure *f);
/* The figure of link for device (and, for storage, file system fs_dev), or NULL. */
const struct hoist__figure *hoist__bench_find(const struct hoist_bench *b, enum hoist_link link,
                                              struct hoist_device device, uint64_t fs_dev);
/* The fastest storage figure, or NULL where none was measured. */
const struct hoist__figure *hoist__bench_best_storage(const struct hoist_bench *b);
/* Reads the figures kept in file into b (a missing file adds none).
 * Errors: HOIST_ERR_FORMAT naming the file, HOIST_ERR_IO, HOIST_ERR_NOMEM. */
enum hoist_status hoist__bench_read(const char *file, struct hoist_bench *b);
/* The directory the figures are kept in (hoist_bench_path's), created (owner only)
 * with its parents if create. Errors: HOIST_ERR_INVALID, HOIST_ERR_IO. */
enum hoist_status hoist__figures_dir(char *buf, size_t size, bool create);
/* The file system's device number of path (st_dev), 0 where it cannot be stat'ed. */
uint64_t hoist__fs_dev(const char *path);

/* A load as the prediction sees it. */
struct hoist__load_shape {
	const char *path;    /* a file of the checkpoint (its storage), or NULL */
	uint64_t read_bytes; /* bytes the stream reads from the files */
	uint64_t host_bytes; /* of them, landing in host arenas (fresh host memory) */
	size_t ngpu;
	struct hoist_device gpu[HOIST_MAX_DEVICES];
	uint64_t gpu_bytes[HOIST_MAX_DEVICES];
	/* host -> device bandwidth where no figure was measured for the device, and
	 * whether it is known (a sim device's cap) rather than assumed */
	double copy_bw;
	bool copy_known;
};

/* Predicts the stream's seconds and its bounding link, from the figures kept for
 * this machine (read once and again whenever the file changes) and, where a link
 * was not measured, the assumptions. Readers share their time between the bytes
 * bound for staging (page cache) and those bound for host arenas (host memory);
 * cold, they are held to the storage figure of path's file system; each GPU copies
 * its bytes in parallel with the others. */
void hoist__predict(const struct hoist__load_shape *shape, int cold, struct hoist_prediction *out);

/* The figure that hoist__predict would use for a link (NULL: an assumption), copied
 * into *out. fs_dev matters for storage only. */
bool hoist__figure_stored(enum hoist_link link, struct hoist_device device, uint64_t fs_dev,
                          struct hoist__figure *out);

#endif /* HOIST_FIGURES_H */
