/*
 * hoist_testing.h - hoist's calls for tests, benchmarks and demos. UNSTABLE: what is
 * here may change or go in any release, without notice; programs that load models
 * need only hoist.h.
 *
 *  - The simulated accelerator ("sim:N" devices): device memory apart from the
 *    caller's, a capacity, copy engines of its own, a bandwidth cap and injectable
 *    faults. It is how the pipeline, the planner and every failure path are tested
 *    where there is no GPU; it is only ever used when asked for by name.
 *  - Synthetic checkpoints whose every byte is known, so a load can be verified.
 *  - Fault injection into the library's own allocations, file I/O and threads.
 */
#ifndef HOIST_TESTING_H
#define HOIST_TESTING_H

#include "hoist.h"

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------------ */
/* The simulated accelerator: hoist_options.sim points to one of these.            */

enum hoist_sim_fault {
	HOIST_SIM_FAULT_NONE = 0,
	HOIST_SIM_FAULT_ALLOC = 1, /* the arena allocation fails */
	HOIST_SIM_FAULT_COPY = 2,  /* a copy fails once fault_after bytes have been copied */
};

/* Sim device addresses: sim:N owns the window [HOIST_SIM_BASE + N * HOIST_SIM_WINDOW,
 * + HOIST_SIM_WINDOW), in the non-canonical part of the x86-64 / arm64 address space,
 * so a host dereference faults instead of reading something. */
#define HOIST_SIM_BASE 0x5100000000000000ull
#define HOIST_SIM_WINDOW (1ull << 40)

struct hoist_sim_options {
	unsigned devices;     /* 0: 1 */
	uint64_t capacity;    /* bytes per device; 0: 4 GiB */
	double bytes_per_sec; /* copy bandwidth cap per device; 0: none */
	enum hoist_sim_fault fault;
	uint64_t fault_after; /* bytes copied before HOIST_SIM_FAULT_COPY strikes */
};

/* ------------------------------------------------------------------------------ */
/* Synthetic checkpoints.                                                          */

struct hoist_synth_options {
	/* Layout source: a config.json (Qwen2 / Llama-style text model, Qwen2-VL with its
	 * vision tower) or a shard-headers.json (file name -> {header, file_size}); NULL:
	 * a built-in small Qwen2-style layout. */
	const char *source;
	double scale;         /* 0 or 1: as given; else shrink every tensor's first
	                       * dimension by this factor (0 < scale < 1) */
	unsigned layers;      /* config sources: override num_hidden_layers; 0 keeps */
	uint64_t shard_bytes; /* target shard size; 0: as the source, or 1 GB */
	uint64_t seed;        /* content seed; 0 is a valid seed */
	hoist_log_fn log;     /* a line per shard written, at HOIST_LOG_INFO */
	void *log_arg;
	/* Called every 50 ms or so as shards are written (phase HOIST_PHASE_STREAM, bytes
	 * of tensor data written of all); non-zero cancels: the shards written so far
	 * are removed and the call returns HOIST_ERR_CANCELLED. */
	hoist_progress_fn progress;
	void *progress_arg;
};

/* Writes model-0000K-of-0000N.safetensors, model.safetensors.index.json and
 * config.json into dir (created if missing). Every tensor's bytes are
 * hoist_synth_fill(seed, name, offset-in-tensor), so a load can be verified; the
 * seed is in each shard's metadata as "hoist_synth_seed". On failure or cancellation
 * nothing it wrote stays (and no index, so no partial checkpoint is taken for one).
 * Errors: HOIST_ERR_INVALID, HOIST_ERR_IO, HOIST_ERR_FORMAT (a bad source),
 * HOIST_ERR_CANCELLED. */
enum hoist_status hoist_synth_write(const char *dir, const struct hoist_synth_options *opt);

/* The synthetic content: fills buf with bytes [offset, offset + size) of the named
 * tensor's data for this seed. */
void hoist_synth_fill(uint64_t seed, const char *name, uint64_t offset, void *buf, size_t size);

/* ------------------------------------------------------------------------------ */
/* Fault injection: every allocation and file operation of the library goes through
 * a few wrappers that can be told to fail. Memory-mapped reads (host memory "mmap",
 * hoist_model_verify's mapped reads of the files), the stream's page-cache registration
 * source and device copies do not go through them: the sim has its own faults
 * (struct hoist_sim_options) and the fake CUDA driver its knobs.                   */

enum hoist_fault {
	HOIST_FAULT_ALLOC, /* an allocation returns NULL */
	HOIST_FAULT_OPEN,  /* opening a file fails with the given errno */
	HOIST_FAULT_READ,  /* a read fails with the given errno */
	/* A read returns half of what was asked (at least 1 byte); from a file opened
	 * with O_DIRECT, whole 4096-byte blocks of that half, as direct reads do. A read
	 * it cannot shorten (one block, or one byte) is left alone and does not count as
	 * a call. */
	HOIST_FAULT_SHORT_READ,
	/* An open or a read is interrupted by a signal before it starts (EINTR, as
	 * without SA_RESTART); the wrappers retry it, so nothing fails. err is unused. */
	HOIST_FAULT_EINTR,
	/* A read of one file that covers one byte offset fails: armed only by
	 * hoist_fault_set_read_at (hoist_fault_set with this kind disarms it). */
	HOIST_FAULT_READ_AT,
	HOIST_FAULT_COUNT /* not a fault */
};

/* Arms `fault`: it strikes on the nth call (1-based) of its kind from now, then on
 * every call after it if `sticky`, else once. Process-wide; counters are atomic, so
 * faults strike on hoist's worker threads too, but arm and clear them between
 * operations, not while one runs. nth <= 0 disarms it. A sticky HOIST_FAULT_EINTR
 * interrupts every call once (each retry then goes through). */
void hoist_fault_set(enum hoist_fault fault, long nth, int err, bool sticky);

/* Arms HOIST_FAULT_READ_AT: the first read of the file at `path` (the file, as
 * identified by its device and inode now: any path or link to it) whose byte range
 * covers `offset` fails with err; with `sticky`, every such read. Reads that do not
 * cover the offset, and other files, are untouched, so a test can fail one tensor of
 * one shard; an O_DIRECT read covers whole 4096-byte blocks, so there the fault can
 * strike a neighbouring tensor of the same block. Errors (the fault left disarmed):
 * HOIST_ERR_INVALID (path NULL), HOIST_ERR_IO (path cannot be stat'ed). */
enum hoist_status hoist_fault_set_read_at(const char *path, uint64_t offset, int err, bool sticky);

/* How many times `fault` has struck since it was last armed (for EINTR: calls
 * interrupted and retried). */
long hoist_fault_struck(enum hoist_fault fault);

void hoist_fault_clear_all(void);

/* Threads hoist_checkpoint_open reads shard headers with: 0 (the default) means
 * min(shards, cores, 8), or 1 when the index lists fewer than 8,192 tensors; n means
 * min(shards, n), whatever the cores and tensors. Process-wide. */
void hoist_checkpoint_set_header_threads(unsigned n);

#ifdef __cplusplus
}
#endif
#endif /* HOIST_TESTING_H */
