/* backend_host.c - host memory as a device (the cpu target): pageable or pinned arenas;
 * copies are memcpy on the calling thread. Also the device-listing dispatcher.
 *
 * Pinned memory comes from the CUDA driver (cuMemHostAlloc) when a driver and a GPU
 * are present, so a GPU can later copy from it at full speed; otherwise it is
 * page-aligned memory locked with mlock. The report says which. */
#include "backend.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define HOST_ALIGN 4096
#define HUGE_SIZE (2u << 20)

enum host_alloc_kind { HOST_PAGEABLE, HOST_MLOCK, HOST_CUDA };

struct host_alloc {
	void *p;
	size_t size;
	enum host_alloc_kind kind;
};

struct host_dev {
	struct hoist__dev base; /* first */
	bool pinned;
	struct host_alloc *allocs;
	size_t nallocs, cap;
};

struct host_event {
	int unused;
};

/* MemAvailable and MemTotal from /proc/meminfo, in bytes. */
static enum hoist_status meminfo(uint64_t *avail, uint64_t *total)
{
	char buf[4096];
	int fd = hoist__open("/proc/meminfo", O_RDONLY);
	if (fd < 0)
		return hoist__error(HOIST_ERR_IO, "/proc/meminfo: %s", strerror(errno));
	ssize_t n = hoist__pread(fd, buf, sizeof buf - 1, 0);
	int err = errno;
	hoist__close(fd);
	if (n <= 0)
		return hoist__error(HOIST_ERR_IO, "/proc/meminfo: %s",
				    n < 0 ? strerror(err) : "empty");
	buf[n] = '\0';
	unsigned long long kb_avail = 0, kb_total = 0;
	const char *a = strstr(buf, "MemAvailable:"), *t = strstr(buf, "MemTotal:");
	if (!a || !t || sscanf(a, "MemAvailable: %llu", &kb_avail) != 1 ||
	    sscanf(t, "MemTotal: %llu", &kb_total) != 1)
		return hoist__error(HOIST_ERR_IO, "/proc/meminfo: no MemAvailable/MemTotal");
	*avail = (uint64_t)kb_avail * 1024;
	*total = (uint64_t)kb_total * 1024;
	return HOIST_OK;
}

enum hoist_status hoist__devices_list(enum hoist_device_kind kind, const struct hoist_options *opt,
				      struct hoist__device_info *out, size_t cap, size_t *count)
{
	*count = 0;
	switch (kind) {
	case HOIST_DEVICE_CUDA: return hoist__cuda_devices_list(out, cap, count);
	case HOIST_DEVICE_SIM: return hoist__sim_devices_list(opt, out, cap, count);
	case HOIST_DEVICE_CPU: {
		uint64_t avail, total;
		enum hoist_status st = meminfo(&avail, &total);
		if (st != HOIST_OK)
			return st;
		if (cap > 0) {
			memset(&out[0], 0, sizeof out[0]);
			out[0].device = (struct hoist_device){HOIST_DEVICE_CPU, 0};
			out[0].free_bytes = avail;
			out[0].total_bytes = total;
			snprintf(out[0].name, sizeof out[0].name, "host");
			*count = 1;
		}
		return HOIST_OK;
	}
	case HOIST_DEVICE_DISK: break;
	}
	return hoist__error(HOIST_ERR_INVALID, "no device list for device kind %d", (int)kind);
}

const struct hoist__backend *hoist__backend_for(enum hoist_device_kind kind)
{
	switch (kind) {
	case HOIST_DEVICE_CPU: return &hoist__backend_host;
	case HOIST_DEVICE_CUDA: return &hoist__backend_cuda;
	case HOIST_DEVICE_SIM: return &hoist__backend_sim;
	case HOIST_DEVICE_DISK: break;
	}
	return NULL;
}

static enum hoist_status host_open(const struct hoist_options *opt, int index,
				   struct hoist__dev **out)
{
	*out = NULL;
	if (index > 0)
		return hoist__error(HOIST_ERR_NO_DEVICE, "cpu:%d: there is one host device, cpu",
				    index);
	struct host_dev *d = hoist__calloc(1, sizeof *d);
	if (!d)
		return hoist__error(HOIST_ERR_NOMEM, "cpu: out of memory opening the host device");
	d->base.ops = &hoist__backend_host;
	d->base.device = (struct hoist_device){HOIST_DEVICE_CPU, 0};
	d->base.streams = 1;
	d->base.host_addressable = true;
	d->pinned = opt && opt->host_memory == HOIST_HOST_PINNED;
	snprintf(d->base.name, sizeof d->base.name, "host");
	snprintf(d->base.memory, sizeof d->base.memory, "%s", d->pinned ? "pinned" : "pageable");
	*out = &d->base;
	return HOIST_OK;
}

static void host_close(struct hoist__dev *dev)
{
	struct host_dev *d = (struct host_dev *)dev;
	if (!d)
		return;
	hoist__free(d->allocs);
	hoist__free(d);
}

static void host_release(struct host_alloc *a)
{
	switch (a->kind) {
	case HOST_CUDA: hoist__cuda_host_free(a->p); break;
	case HOST_MLOCK: munlock(a->p, a->size); /* fall through */
	case HOST_PAGEABLE: hoist__free(a->p); break;
	}
}

/* Allocates size bytes, page-aligned (O_DIRECT reads land in it), pinned if asked. */
static enum hoist_status host_get(struct host_dev *d, size_t size, bool pinned, void **p,
				  const char **how)
{
	char buf[32];
	*p = NULL;
	if (d->nallocs == d->cap) {
		size_t cap = d->cap ? 2 * d->cap : 8;
		struct host_alloc *a = hoist__reallocarray(d->allocs, cap, sizeof *a);
		if (!a)
			return hoist__error(HOIST_ERR_NOMEM, "cpu: out of memory");
		d->allocs = a;
		d->cap = cap;
	}
	struct host_alloc a = {NULL, size, HOST_PAGEABLE};
	if (pinned && hoist__cuda_host_alloc(size, &a.p) == HOIST_OK) {
		a.kind = HOST_CUDA;
		*how = "pinned by cuMemHostAlloc";
	} else {
		/* Arenas: 2 MiB-aligned and marked for transparent huge pages, so first
		 * touch faults once per 2 MiB instead of per 4 KiB. Measured here on a
		 * 2.07 GB load to a pageable arena: the 4 KiB faults held the readers to
		 * 1.3-1.8 GB/s against a 8-11 GB/s pread ceiling.
		 *
		 * The readers fault the arena in themselves, inside pread. Measured and
		 * not kept (2.98 GB, 2-core VM, medians of 4-8 interleaved runs):
		 * - faulting it in here (MADV_POPULATE_WRITE) before the stream: 0.17 s +
		 *   0.26 s of reading against 0.21 s in the readers from the page cache:
		 *   zeroing a page just before the copy into it keeps it in cache;
		 * - a thread faulting it beside the readers: equal warm (0.23 against
		 *   0.22 s), cold 0.98 against 1.27 s when the memory had just been freed
		 *   by another process, but 1.58 against 1.29 s warm and 1.98 against
		 *   1.54 s cold when the VM had handed the free memory back to its host
		 *   (bench/README.md): one thread takes the host's faults more slowly
		 *   than the readers do in parallel. */
		bool huge = size >= HUGE_SIZE;
		a.p = hoist__aligned_alloc(huge ? HUGE_SIZE : HOST_ALIGN, size);
		if (a.p && huge)
			madvise(a.p, size, MADV_HUGEPAGE); /* advice: failure is harmless */
		if (!a.p)
			return hoist__error(HOIST_ERR_NOMEM, "cpu: cannot allocate %s of host memory",
					    hoist__format_bytes(size, buf, sizeof buf));
		*how = "pageable";
		if (pinned) {
			if (mlock(a.p, size) != 0) {
				int err = errno;
				hoist__free(a.p);
				return hoist__error(HOIST_ERR_NOMEM,
						    "cpu: cannot pin %s of host memory with mlock: %s "
						    "(no CUDA driver for cuMemHostAlloc; raise "
						    "`ulimit -l` or use pageable memory)",
						    hoist__format_bytes(size, buf, sizeof buf),
						    strerror(err));
			}
			a.kind = HOST_MLOCK;
			*how = "pinned by mlock";
		}
	}
	d->allocs[d->nallocs++] = a;
	*p = a.p;
	return HOIST_OK;
}

static void host_put(struct host_dev *d, void *p)
{
	for (size_t i = 0; i < d->nallocs; i++) {
		if (d->allocs[i].p == p) {
			host_release(&d->allocs[i]);
			d->allocs[i] = d->allocs[--d->nallocs];
			return;
		}
	}
}

static enum hoist_status host_alloc(struct hoist__dev *dev, uint64_t size, uint64_t *addr)
{
	struct host_dev *d = (struct host_dev *)dev;
	void *p;
	const char *how;
	if (size > SIZE_MAX)
		return hoist__error(HOIST_ERR_NOMEM, "cpu: arena of %llu bytes exceeds the address space",
				    (unsigned long long)size);
	enum hoist_status st = host_get(d, (size_t)size, d->pinned, &p, &how);
	if (st != HOIST_OK)
		return st;
	snprintf(d->base.memory, sizeof d->base.memory, "%s", how);
	*addr = (uint64_t)(uintptr_t)p;
	return HOIST_OK;
}

static void host_free(struct hoist__dev *dev, uint64_t addr, uint64_t size)
{
	(void)size;
	if (dev && addr)
		host_put((struct host_dev *)dev, (void *)(uintptr_t)addr);
}

/* The host device's staging (used only for chunks that need reshaping: merged small
 * tensors, conversion, O_DIRECT) is plain page-aligned memory: nothing DMAs from it. */
static enum hoist_status host_host_alloc(struct hoist__dev *dev, size_t size, void **p,
					 const char **how)
{
	return host_get((struct host_dev *)dev, size, false, p, how);
}

static void host_host_free(struct hoist__dev *dev, void *p, size_t size)
{
	(void)size;
	if (dev && p)
		host_put((struct host_dev *)dev, p);
}

static enum hoist_status host_event_create(struct hoist__dev *dev, struct hoist__event **out)
{
	(void)dev;
	struct host_event *ev = hoist__calloc(1, sizeof *ev);
	*out = (struct hoist__event *)ev;
	return ev ? HOIST_OK : hoist__error(HOIST_ERR_NOMEM, "cpu: out of memory");
}

static void host_event_destroy(struct hoist__dev *dev, struct hoist__event *ev)
{
	(void)dev;
	hoist__free(ev);
}

static enum hoist_status host_copy_async(struct hoist__dev *dev, unsigned stream, uint64_t dst,
					 const void *src, size_t n)
{
	(void)dev, (void)stream;
	memcpy((void *)(uintptr_t)dst, src, n);
	return HOIST_OK;
}

static enum hoist_status host_event_record(struct hoist__dev *dev, struct hoist__event *ev,
					   unsigned stream)
{
	(void)dev, (void)ev, (void)stream;
	return HOIST_OK;
}

static enum hoist_status host_event_wait(struct hoist__dev *dev, struct hoist__event *ev,
					 double timeout_s, bool *done)
{
	(void)dev, (void)ev, (void)timeout_s;
	*done = true;
	return HOIST_OK;
}

static enum hoist_status host_copy_out(struct hoist__dev *dev, void *dst, uint64_t src, size_t n)
{
	(void)dev;
	memcpy(dst, (const void *)(uintptr_t)src, n);
	return HOIST_OK;
}

static enum hoist_status host_copy_in(struct hoist__dev *dev, uint64_t dst, const void *src,
				      size_t n)
{
	(void)dev;
	memcpy((void *)(uintptr_t)dst, src, n);
	return HOIST_OK;
}

static enum hoist_status host_synchronize(struct hoist__dev *dev)
{
	(void)dev;
	return HOIST_OK;
}

static enum hoist_status host_mem_info(struct hoist__dev *dev, uint64_t *free_bytes,
				       uint64_t *total_bytes)
{
	(void)dev;
	return meminfo(free_bytes, total_bytes);
}

const struct hoist__backend hoist__backend_host = {
	.name = "host",
	.kind = HOIST_DEVICE_CPU,
	.open = host_open,
	.close = host_close,
	.alloc = host_alloc,
	.free = host_free,
	.host_alloc = host_host_alloc,
	.host_free = host_host_free,
	.event_create = host_event_create,
	.event_destroy = host_event_destroy,
	.copy_async = host_copy_async,
	.event_record = host_event_record,
	.event_wait = host_event_wait,
	.copy_out = host_copy_out,
	.copy_in = host_copy_in,
	.synchronize = host_synchronize,
	.mem_info = host_mem_info,
};
