/*
 * backend.h - the device backends behind a load: a small table of functions per kind
 * of device (host memory, CUDA GPUs, the simulated accelerator).
 *
 * A device is opened per load (struct hoist__dev, first member of each backend's own
 * struct). Device memory is named by a 64-bit device address: a host pointer for the
 * host backend, a CUdeviceptr for cuda, and an offset-encoded address for sim that the
 * host cannot dereference. Copies into a device are asynchronous, queued on one of the
 * device's streams; an event recorded on a stream completes once every copy queued on
 * that stream before it has landed (or failed). The host memory a copy reads from must
 * stay untouched until then.
 *
 * Threads: open/close/alloc/free and the synchronous copies run on any one thread at a
 * time; copy_async/event_record/event_wait run on the device's copy-engine thread.
 */
#ifndef HOIST_BACKEND_H
#define HOIST_BACKEND_H

#include "internal.h"

struct hoist__dev;
struct hoist__event;

struct hoist__backend {
	const char *name; /* "host", "cuda", "sim" */
	enum hoist_device_kind kind;
	/* Opens device `index` (ordinal for cuda and sim, 0 for host) under opt
	 * (host_memory for host; sim_* for sim). Errors: HOIST_ERR_NO_DEVICE,
	 * HOIST_ERR_DEVICE, HOIST_ERR_NOMEM. */
	enum hoist_status (*open)(const struct hoist_options *opt, int index,
				  struct hoist__dev **out);
	/* Closes the device; everything allocated on it must have been freed. NULL ok. */
	void (*close)(struct hoist__dev *dev);
	/* Device memory: one call per arena, never per tensor. Errors: HOIST_ERR_DEVICE
	 * (driver refused; the message names the driver error), HOIST_ERR_NO_SPACE (sim
	 * capacity), HOIST_ERR_NOMEM (host). */
	enum hoist_status (*alloc)(struct hoist__dev *dev, uint64_t size, uint64_t *addr);
	void (*free)(struct hoist__dev *dev, uint64_t addr, uint64_t size);
	/* Host memory the device copies from at full speed (pinned for cuda), for the
	 * staging ring. *how says what it is ("pinned by cuMemHostAlloc", ...). */
	enum hoist_status (*host_alloc)(struct hoist__dev *dev, size_t size, void **p,
					const char **how);
	void (*host_free)(struct hoist__dev *dev, void *p, size_t size);
	enum hoist_status (*event_create)(struct hoist__dev *dev, struct hoist__event **out);
	void (*event_destroy)(struct hoist__dev *dev, struct hoist__event *ev);
	/* Queues a copy of n bytes from host src to device address dst on `stream`
	 * (0 .. dev->streams - 1). */
	enum hoist_status (*copy_async)(struct hoist__dev *dev, unsigned stream, uint64_t dst,
					const void *src, size_t n);
	/* Marks ev pending until every copy queued on `stream` so far has completed. */
	enum hoist_status (*event_record)(struct hoist__dev *dev, struct hoist__event *ev,
					  unsigned stream);
	/* Waits at most timeout_s for ev. *done says whether it completed; an error means
	 * a copy before it failed (the message names the device and the driver error). */
	enum hoist_status (*event_wait)(struct hoist__dev *dev, struct hoist__event *ev,
					double timeout_s, bool *done);
	/* Synchronous copies (hoist_model_read, hoist_model_fetch). */
	enum hoist_status (*copy_out)(struct hoist__dev *dev, void *dst, uint64_t src, size_t n);
	enum hoist_status (*copy_in)(struct hoist__dev *dev, uint64_t dst, const void *src,
				     size_t n);
	/* Waits for everything queued on the device. */
	enum hoist_status (*synchronize)(struct hoist__dev *dev);
	enum hoist_status (*mem_info)(struct hoist__dev *dev, uint64_t *free_bytes,
				      uint64_t *total_bytes);
};

/* What every backend's device struct starts with. */
struct hoist__dev {
	const struct hoist__backend *ops;
	struct hoist_device device;
	unsigned streams;      /* copy streams (>= 1) */
	bool host_addressable; /* device addresses are host pointers (host backend) */
	char name[96];         /* "NVIDIA H200", "sim", "host" */
	char memory[64];       /* what the device memory is: "pageable", "pinned (mlock)" ... */
};

extern const struct hoist__backend hoist__backend_host;
extern const struct hoist__backend hoist__backend_sim;
extern const struct hoist__backend hoist__backend_cuda;

/* The backend of a device kind; NULL for disk. */
const struct hoist__backend *hoist__backend_for(enum hoist_device_kind kind);

/* hoist__devices_list per kind (the dispatcher is in backend_host.c). */
enum hoist_status hoist__cuda_devices_list(struct hoist__device_info *out, size_t cap,
					   size_t *count);
enum hoist_status hoist__sim_devices_list(const struct hoist_options *opt,
					  struct hoist__device_info *out, size_t cap, size_t *count);

/* Page-locked host memory through the CUDA driver (cuMemHostAlloc, portable), for the
 * host backend's pinned arenas: HOIST_ERR_NO_DEVICE when no driver or GPU is there. */
enum hoist_status hoist__cuda_host_alloc(size_t size, void **p);
void hoist__cuda_host_free(void *p);

/* Sim device addresses: each sim device owns a 1 TiB window starting at
 * HOIST__SIM_BASE + index * 2^40, in the non-canonical part of the x86-64 / arm64
 * address space, so a host dereference faults instead of reading something. */
#define HOIST__SIM_BASE 0x5100000000000000ull
#define HOIST__SIM_WINDOW (1ull << 40)

/* ---- the load's timing report (filled by pipeline.c, printed by report.c) ---- */

enum hoist__phase {
	HOIST__PHASE_OPEN,
	HOIST__PHASE_PLAN,
	HOIST__PHASE_ALLOCATE,
	HOIST__PHASE_STREAM,
	HOIST__PHASE_FINALIZE,
	HOIST__PHASE_COUNT
};

struct hoist__report_device {
	char name[24];  /* "cuda:0", "cpu", "disk" */
	uint64_t bytes; /* tensor bytes placed there (after conversion) */
	char memory[64];
};

struct hoist__report {
	double seconds[HOIST__PHASE_COUNT];
	size_t shards, tensors;
	uint64_t checkpoint_bytes; /* tensor bytes in the files */
	uint64_t moved_bytes;      /* bytes streamed to devices (after conversion) */
	uint64_t read_bytes;       /* bytes read from the files */
	size_t chunks, direct_chunks;
	unsigned threads;
	uint64_t chunk_bytes, staging_bytes;
	size_t slots;
	char staging[64];   /* what the staging ring is: "pinned by cuMemHostAlloc", "none" */
	bool direct_io;     /* O_DIRECT reads */
	bool mmap;          /* host tensors are views of the mapped files */
	enum hoist_dtype dtype;
	/* Stream phase: fractions of its wall time the readers spent in pread, waiting
	 * for a free staging buffer, and that a device had copies in flight (max over
	 * devices), and the link they point at. */
	double read_busy, staging_wait, copy_busy;
	char bound[24];     /* "storage", "staging", "device copy", "host memory", "none" */
	char note[160];     /* e.g. why O_DIRECT was not used */
	size_t ndevices;
	struct hoist__report_device devices[HOIST__MAX_DEVICES + 2];
	/* Bytes the process read from storage during the stream (the kernel's task I/O
	 * accounting: page cache hits excluded), when known; see hoist__report_stream_end. */
	bool storage_known;
	uint64_t storage_read_bytes;
	uint64_t storage_mark; /* the count when the stream began */
};

/* Around the stream phase (report.c): _begin just before the readers start, _end once
 * the bound is judged. _end sets storage_read_bytes and, where the readers set the
 * pace ("storage") but less than half of the bytes they read came from storage (the
 * files were in the page cache), says so: the bound is then "host memory", copying out
 * of the page cache (and, into a fresh host arena, its first-touch page faults). */
void hoist__report_stream_begin(struct hoist__report *r);
void hoist__report_stream_end(struct hoist__report *r);

const struct hoist__report *hoist__model_report(const struct hoist_model *model);
struct hoist__report *hoist__model_report_mut(struct hoist_model *model);
extern const char *const hoist__phase_names[HOIST__PHASE_COUNT];

#endif /* HOIST_BACKEND_H */
