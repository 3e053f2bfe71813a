/*
 * backend.h - the device backends behind a load: a small table of functions per kind
 * of device (host memory, CUDA GPUs, the simulated accelerator), as each backend
 * fills it. The layers above reach the backends through the registry (registry.h).
 *
 * A device is opened per load (struct hoist__dev, first member of each backend's own
 * struct). Device memory is named by a 64-bit device address: a host pointer for the
 * host backend, a CUdeviceptr for cuda, and an offset-encoded address for sim that the
 * host cannot dereference.
 *
 * Devices whose memory the host cannot address have copy engines: copies into them
 * are asynchronous, queued on one of the device's streams; an event recorded on a
 * stream completes once every copy queued on that stream before it has landed (or
 * failed). The host memory a copy reads from must stay untouched until then. Host
 * memory itself (host_addressable) has no copy engine: the readers land bytes there.
 *
 * Each backend gets its own configuration, never the whole hoist_options: the
 * registry makes it from the options.
 *
 * Threads: open/close/alloc/free and the synchronous copies run on any one thread at a
 * time; copy_async/event_record/event_wait run on the device's copy-engine thread.
 */
#ifndef HOIST_BACKEND_H
#define HOIST_BACKEND_H

#include "base.h"
#include "source.h"

struct hoist__dev;
struct hoist__event;

struct hoist__backend {
	int version;      /* 1 */
	const char *name; /* "host", "cuda", "sim" */
	enum hoist_device_kind kind;
	/* Lists the devices present now. Errors: HOIST_ERR_NO_DEVICE when the driver does
	 * not load or finds none (the message says which). */
	enum hoist_status (*list)(const void *config, struct hoist_device_info *out, size_t cap,
	                          size_t *count);
	/* Opens device `index`. Errors: HOIST_ERR_NO_DEVICE, HOIST_ERR_DEVICE,
	 * HOIST_ERR_NOMEM. */
	enum hoist_status (*open)(const void *config, int index, struct hoist__dev **out);
	/* Closes the device; everything allocated on it must have been freed. NULL ok. */
	void (*close)(struct hoist__dev *dev);
	/* Device memory: one call per arena, never per tensor. Errors: HOIST_ERR_NO_SPACE
	 * (the device is out of memory), HOIST_ERR_DEVICE (the driver failed otherwise;
	 * the message names the driver error), HOIST_ERR_NOMEM (host). */
	enum hoist_status (*alloc)(struct hoist__dev *dev, uint64_t size, uint64_t *addr);
	void (*free)(struct hoist__dev *dev, uint64_t addr, uint64_t size);
	/* Host memory the device copies from at full speed (pinned for cuda), for the
	 * staging ring. *how says what it is ("pinned by cuMemHostAlloc", ...). */
	enum hoist_status (*host_alloc)(struct hoist__dev *dev, size_t size, void **p,
	                                const char **how);
	void (*host_free)(struct hoist__dev *dev, void *p, size_t size);
	/* Devices that hold tensors as views of their sources (maps_sources: host memory
	 * in mmap mode): maps [offset, offset + length) of src, *addr the device address of byte
	 * `offset`; NULL where a device has an arena instead. Errors: HOIST_ERR_IO. */
	enum hoist_status (*map)(struct hoist__dev *dev, struct hoist__source *src, uint64_t offset,
	                         uint64_t length, uint64_t *addr);
	void (*unmap)(struct hoist__dev *dev, struct hoist__source *src, uint64_t addr,
	              uint64_t length);
	/* The copy engine (NULL for host-addressable devices). */
	enum hoist_status (*event_create)(struct hoist__dev *dev, struct hoist__event **out);
	void (*event_destroy)(struct hoist__dev *dev, struct hoist__event *ev);
	/* Queues a copy of n bytes from host src to device address dst on `stream`
	 * (0 .. dev->streams - 1). */
	enum hoist_status (*copy_async)(struct hoist__dev *dev, unsigned stream, uint64_t dst,
	                                const void *src, size_t n);
	/* Marks ev pending until every copy queued on `stream` so far has completed. */
	enum hoist_status (*event_record)(struct hoist__dev *dev, struct hoist__event *ev,
	                                  unsigned stream);
	/* Waits for ev: at most timeout_s where the backend can bound a wait (sim); cuda
	 * sleeps in cuEventSynchronize until the copies before it are done, which the
	 * caller only asks for copies in flight. timeout_s <= 0 only asks. *done says
	 * whether it completed; an error means a copy before it failed (the message names
	 * the device and the driver error). */
	enum hoist_status (*event_wait)(struct hoist__dev *dev, struct hoist__event *ev,
	                                double timeout_s, bool *done);
	/* Waits for everything this device (hoist's streams) has queued. */
	enum hoist_status (*synchronize)(struct hoist__dev *dev);
	/* Synchronous copies (hoist_model_read, hoist_model_fetch), after everything
	 * queued on the device; host memory may be pageable. */
	enum hoist_status (*copy_out)(struct hoist__dev *dev, void *dst, uint64_t src, size_t n);
	enum hoist_status (*copy_in)(struct hoist__dev *dev, uint64_t dst, const void *src,
	                             size_t n);
	/* Page-locked host memory that every device of this kind copies from at full
	 * speed, without a device opened (NULL where the backend has none): the host
	 * backend's pinned arenas come from here. *how says what it is ("pinned by
	 * cuMemHostAlloc"). */
	enum hoist_status (*pin_alloc)(size_t size, void **p, const char **how);
	void (*pin_free)(void *p);
	/* Copies straight from the page cache (dev->registers): registers [p, p + n),
	 * page-aligned and mapped read-only, so the device's copies read it in place;
	 * unregistered once no copy reads it, before it is unmapped. NULL where the
	 * backend cannot. Errors: HOIST_ERR_DEVICE, HOIST_ERR_NO_SPACE. */
	enum hoist_status (*host_register)(struct hoist__dev *dev, void *p, size_t n);
	void (*host_unregister)(struct hoist__dev *dev, void *p);
};

/* What every backend's device struct starts with. */
struct hoist__dev {
	const struct hoist__backend *ops;
	struct hoist_device device;
	unsigned streams;      /* copy streams (>= 1) */
	bool host_addressable; /* device addresses are host pointers (host backend) */
	bool maps_sources;     /* holds tensors as views of their sources (ops->map), no arena */
	bool registers;        /* host_register takes read-only memory here */
	char name[96];         /* "NVIDIA H200", "sim", "host" */
	char memory[64];       /* what the device memory is: "pageable", "pinned (mlock)" ... */
};

extern const struct hoist__backend hoist__backend_host;
extern const struct hoist__backend hoist__backend_sim;
extern const struct hoist__backend hoist__backend_cuda;

/* The host backend's configuration. */
struct hoist__host_config {
	enum hoist_host_memory memory;
	/* Where pinned arenas come from first (a GPU driver's page-locked memory, which
	 * the GPUs then copy from at full speed); NULL: mlock. */
	const struct hoist__backend *pinner;
};

/* The cuda backend's configuration: which GPUs the options target (-1: every GPU,
 * -2: none, else that ordinal). Where NVML is absent, listing reads a targeted GPU's
 * free memory through its context; the others get none made for them. */
struct hoist__cuda_config {
	int target;
};

#endif /* HOIST_BACKEND_H */
