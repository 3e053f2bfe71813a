/* backend_host.c - host memory as a device (the cpu target): pageable or pinned arenas,
 * or, in mmap mode, tensors as views of the mapped files. The readers land bytes here
 * themselves: host memory has no copy engine.
 *
 * Pinned memory comes from a GPU driver's page-locked memory (the configuration's
 * pinner, e.g. cuMemHostAlloc) when a driver and a GPU are present, so a GPU can later copy
 * from it at full speed; otherwise it is page-aligned memory locked with mlock. The
 * report says which. */
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

enum host_alloc_kind { HOST_PAGEABLE, HOST_MLOCK, HOST_PINNER };

struct host_alloc {
	void *p;
	size_t size;
	enum host_alloc_kind kind;
};

struct host_dev {
	struct hoist__dev base; /* first */
	bool pinned;
	const struct hoist__backend *pinner; /* pinned memory from a driver; NULL: mlock */
	struct host_alloc *allocs;
	size_t nallocs, cap;
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

static enum hoist_status host_list(const void *config, struct hoist_device_info *out, size_t cap,
                                   size_t *count)
{
	(void)config;
	uint64_t avail, total;
	*count = 0;
	enum hoist_status st = meminfo(&avail, &total);
	if (st != HOIST_OK || cap == 0)
		return st;
	memset(&out[0], 0, sizeof out[0]);
	out[0].device = (struct hoist_device){HOIST_DEVICE_CPU, 0};
	out[0].free_bytes = avail;
	out[0].total_bytes = total;
	snprintf(out[0].name, sizeof out[0].name, "host");
	*count = 1;
	return HOIST_OK;
}

static enum hoist_status host_open(const void *config, int index, struct hoist__dev **out)
{
	const struct hoist__host_config *cfg = config;
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
	d->pinned = cfg && cfg->memory == HOIST_HOST_PINNED;
	d->base.maps_sources = cfg && cfg->memory == HOIST_HOST_MMAP;
	d->pinner = cfg ? cfg->pinner : NULL;
	snprintf(d->base.name, sizeof d->base.name, "host");
	snprintf(d->base.memory, sizeof d->base.memory, "%s",
	         d->base.maps_sources ? "mapped files (zero-copy)"
	         : d->pinned          ? "pinned"
	                              : "pageable");
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

static void host_release(const struct host_dev *d, struct host_alloc *a)
{
	switch (a->kind) {
	case HOST_PINNER: d->pinner->pin_free(a->p); break;
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
	if (!hoist__grow(&d->allocs, &d->cap, d->nallocs, sizeof *d->allocs, 8))
		return hoist__error(HOIST_ERR_NOMEM, "cpu: out of memory");
	struct host_alloc a = {NULL, size, HOST_PAGEABLE};
	if (pinned && d->pinner && d->pinner->pin_alloc(size, &a.p, how) == HOIST_OK) {
		a.kind = HOST_PINNER;
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
			return hoist__error(HOIST_ERR_NOMEM,
			                    "cpu: cannot allocate %s of host memory",
			                    hoist_bytes_format(size, buf, sizeof buf));
		*how = "pageable";
		if (pinned) {
			if (mlock(a.p, size) != 0) {
				int err = errno;
				hoist__free(a.p);
				return hoist__error(
				        HOIST_ERR_NOMEM,
				        "cpu: cannot pin %s of host memory with mlock: %s "
				        "(no GPU driver to pin it; raise "
				        "`ulimit -l` or use pageable memory)",
				        hoist_bytes_format(size, buf, sizeof buf), strerror(err));
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
			host_release(d, &d->allocs[i]);
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
		return hoist__error(HOIST_ERR_NOMEM,
		                    "cpu: arena of %llu bytes exceeds the address space",
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

/* mmap mode: the tensors are the file's bytes, mapped read-only. */
static enum hoist_status host_map(struct hoist__dev *dev, struct hoist__source *src,
                                  uint64_t offset, uint64_t length, uint64_t *addr)
{
	(void)dev;
	const void *p;
	enum hoist_status st = src->methods->map(src, offset, length, &p);
	if (st == HOIST_OK)
		*addr = (uint64_t)(uintptr_t)p;
	return st;
}

static void host_unmap(struct hoist__dev *dev, struct hoist__source *src, uint64_t addr,
                       uint64_t length)
{
	(void)dev;
	src->methods->unmap(src, (const void *)(uintptr_t)addr, length);
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

const struct hoist__backend hoist__backend_host = {
        .version = 1,
        .name = "host",
        .kind = HOIST_DEVICE_CPU,
        .list = host_list,
        .open = host_open,
        .close = host_close,
        .alloc = host_alloc,
        .free = host_free,
        .host_alloc = host_host_alloc,
        .host_free = host_host_free,
        .map = host_map,
        .unmap = host_unmap,
        .copy_out = host_copy_out,
        .copy_in = host_copy_in,
};
