/* fakecuda_mem.c - the fake driver's memory: device allocations, held in a memfd per
 * device that is never mapped (so device bytes are not in the process's resident set
 * and a host dereference of a device pointer faults), and page-locked host memory
 * (cuMemHostAlloc, cuMemHostRegister). The caller of every fc_* function here holds
 * fc.lock. */
#include "fakecuda_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define SAME_TYPE(fn, type)                                                                        \
	_Static_assert(__builtin_types_compatible_p(__typeof__(&fn), type), #fn " type")

/* Moves of device bytes go in pieces no larger than this (pread/pwrite move at most
 * 2 GiB - 4 KiB at a time). */
#define IO_PIECE (1ull << 30)

int fc_memory_setup(struct fc_device *d)
{
	char name[32];
	snprintf(name, sizeof name, "fakecuda-device%d", d->index);
	d->fd = memfd_create(name, MFD_CLOEXEC);
	if (d->fd < 0)
		return -1;
	/* Sparse: only bytes written take memory, and a free punches them out again. */
	if (ftruncate(d->fd, (off_t)FC_DEVICE_SPAN) != 0) {
		close(d->fd);
		d->fd = -1;
		return -1;
	}
	d->cursor = FC_PAGE;
	return 0;
}

static uint64_t offset_of(const struct fc_device *d, uint64_t dptr)
{
	return dptr - FC_DEVICE_BASE - (uint64_t)d->index * FC_DEVICE_SPAN;
}

/* The bytes themselves. These run without fc.lock (an engine moving a copy's bytes) as
 * well as with it; d->fd does not change after cuInit. */
int fc_dev_write(struct fc_device *d, uint64_t dptr, const void *src, size_t n)
{
	uint64_t off = offset_of(d, dptr);
	const char *p = src;
	while (n > 0) {
		ssize_t w = pwrite(d->fd, p, n < IO_PIECE ? n : IO_PIECE, (off_t)off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		off += (uint64_t)w;
		n -= (size_t)w;
	}
	return 0;
}

int fc_dev_read(struct fc_device *d, uint64_t dptr, void *dst, size_t n)
{
	uint64_t off = offset_of(d, dptr);
	char *p = dst;
	while (n > 0) {
		ssize_t r = pread(d->fd, p, n < IO_PIECE ? n : IO_PIECE, (off_t)off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		p += r;
		off += (uint64_t)r;
		n -= (size_t)r;
	}
	return 0;
}

int fc_dev_fill(struct fc_device *d, uint64_t dptr, unsigned char value, size_t n)
{
	size_t piece = n < (1u << 20) ? n : (1u << 20);
	unsigned char *buf = malloc(piece ? piece : 1);
	if (!buf)
		return -1;
	memset(buf, value, piece);
	int rc = 0;
	for (size_t done = 0; done < n && rc == 0; done += piece) {
		size_t k = n - done < piece ? n - done : piece;
		rc = fc_dev_write(d, dptr + done, buf, k);
	}
	free(buf);
	return rc;
}

/* ---- device allocations ---- */

/* Index of the last allocation whose base is <= dptr, or -1. */
static long alloc_before(const struct fc_device *d, uint64_t dptr)
{
	size_t lo = 0, hi = d->nallocs;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (d->allocs[mid].base <= dptr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return (long)lo - 1;
}

/* The live allocation holding the byte at dptr (within the size asked for), or NULL. */
struct fc_alloc *fc_alloc_containing(uint64_t dptr)
{
	struct fc_device *d = fc_device_of_ptr(dptr);
	if (!d)
		return NULL;
	long i = alloc_before(d, dptr);
	if (i < 0 || dptr - d->allocs[i].base >= d->allocs[i].size)
		return NULL;
	return &d->allocs[i];
}

/* Checks that [dptr, dptr + n) lies in one live allocation of the current context,
 * counting the violation (CUDA_ERROR_INVALID_VALUE) if not. */
hcu_result fc_check_device_range(const char *call, struct fc_context *ctx, uint64_t dptr, size_t n)
{
	struct fc_device *d = fc_device_of_ptr(dptr);
	if (!d) {
		fc_violation(call, HCU_ERROR_INVALID_VALUE,
		             "0x%llx is not a device pointer (no device's memory holds it)",
		             (unsigned long long)dptr);
		return HCU_ERROR_INVALID_VALUE;
	}
	const struct fc_alloc *a = fc_alloc_containing(dptr);
	if (!a) {
		fc_violation(call, HCU_ERROR_INVALID_VALUE,
		             "device pointer 0x%llx lies in no live allocation of device %d "
		             "(freed, or never allocated)",
		             (unsigned long long)dptr, d->index);
		return HCU_ERROR_INVALID_VALUE;
	}
	uint64_t room = a->size - (dptr - a->base);
	if (n > room) {
		fc_violation(call, HCU_ERROR_INVALID_VALUE,
		             "%zu bytes at 0x%llx run %llu bytes past the end of allocation 0x%llx "
		             "(%llu bytes)",
		             n, (unsigned long long)dptr, (unsigned long long)(n - room),
		             (unsigned long long)a->base, (unsigned long long)a->size);
		return HCU_ERROR_INVALID_VALUE;
	}
	if (a->ctx != ctx) {
		fc_violation(call, HCU_ERROR_INVALID_VALUE,
		             "allocation 0x%llx belongs to context %p (device %d), but context %p "
		             "(device %d) is current",
		             (unsigned long long)a->base, fc_handle(&a->ctx->obj), a->ctx->device,
		             fc_handle(&ctx->obj), ctx->device);
		return HCU_ERROR_INVALID_VALUE;
	}
	return HCU_SUCCESS;
}

/* Finds room for `reserved` bytes plus a free guard page after the previous
 * allocation and before the next: the first gap from the cursor on, then from the
 * start, so that a freed address is not handed out again soon (a stale pointer then
 * hits no allocation). */
static int place(struct fc_device *d, uint64_t reserved, uint64_t *off)
{
	for (int pass = 0; pass < 2; pass++) {
		uint64_t from = pass == 0 ? d->cursor : FC_PAGE;
		uint64_t start = FC_PAGE;
		for (size_t i = 0; i <= d->nallocs; i++) {
			uint64_t end = i < d->nallocs ? offset_of(d, d->allocs[i].base) - FC_PAGE
			                              : FC_DEVICE_SPAN - FC_PAGE;
			uint64_t s = start > from ? start : from;
			if (s < end && end - s >= reserved) {
				*off = s;
				d->cursor = s + reserved + FC_PAGE;
				return 0;
			}
			if (i < d->nallocs)
				start = offset_of(d, d->allocs[i].base) + d->allocs[i].reserved +
				        FC_PAGE;
		}
	}
	return -1;
}

static void alloc_remove(struct fc_device *d, size_t i)
{
	struct fc_alloc *a = &d->allocs[i];
	/* Give the pages back (tmpfs keeps written pages until punched). */
	if (fallocate(d->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
	              (off_t)offset_of(d, a->base), (off_t)a->reserved) != 0)
		fc_note("device %d: cannot release freed memory: %s", d->index, strerror(errno));
	d->used -= a->reserved;
	d->c.allocations_now--;
	d->c.allocated_bytes_now -= a->size;
	memmove(a, a + 1, (d->nallocs - i - 1) * sizeof *a);
	d->nallocs--;
}

hcu_result cuMemAlloc_v2(hcu_deviceptr *dptr, size_t bytes)
{
	static const char call[] = "cuMemAlloc_v2";
	struct fc_context *ctx;
	hcu_result r = fc_enter_ctx(call, &ctx);
	if (r != HCU_SUCCESS)
		return r;
	if (!dptr) {
		fc_violation(call, HCU_ERROR_INVALID_VALUE, "dptr is NULL");
		return fc_leave(HCU_ERROR_INVALID_VALUE);
	}
	if (bytes == 0) {
		fc_violation(call, HCU_ERROR_INVALID_VALUE,
		             "0 bytes (the driver refuses an empty allocation)");
		return fc_leave(HCU_ERROR_INVALID_VALUE);
	}
	struct fc_device *d = &fc.dev[ctx->device];
	if (++fc.alloc_calls == fc.cfg.fail_alloc)
		return fc_leave(HCU_ERROR_OUT_OF_MEMORY);
	if (bytes > d->capacity)
		return fc_leave(HCU_ERROR_OUT_OF_MEMORY);
	uint64_t reserved = ((uint64_t)bytes + FC_PAGE - 1) / FC_PAGE * FC_PAGE;
	uint64_t off;
	if (d->used + reserved > d->capacity || place(d, reserved, &off) != 0)
		return fc_leave(HCU_ERROR_OUT_OF_MEMORY);
	if (d->nallocs == d->allocs_cap) {
		size_t cap = d->allocs_cap ? d->allocs_cap * 2 : 16;
		struct fc_alloc *p = realloc(d->allocs, cap * sizeof *p);
		if (!p)
			return fc_leave(HCU_ERROR_OUT_OF_MEMORY);
		d->allocs = p;
		d->allocs_cap = cap;
	}
	uint64_t base = FC_DEVICE_BASE + (uint64_t)d->index * FC_DEVICE_SPAN + off;
	size_t i = (size_t)(alloc_before(d, base) + 1);
	memmove(&d->allocs[i + 1], &d->allocs[i], (d->nallocs - i) * sizeof d->allocs[0]);
	d->allocs[i] = (struct fc_alloc){base, bytes, reserved, ctx};
	d->nallocs++;
	d->used += reserved;
	d->c.allocations_now++;
	d->c.allocated_bytes_now += bytes;
	d->c.allocations++;
	*dptr = base;
	return fc_leave(HCU_SUCCESS);
}

static long alloc_at(const struct fc_device *d, uint64_t base)
{
	long i = alloc_before(d, base);
	return i >= 0 && d->allocs[i].base == base ? i : -1;
}

static const char *op_verb(const struct fc_op *op, bool device_side)
{
	if (op->kind == FC_OP_MEMSET)
		return "writes";
	return (op->kind == FC_OP_H2D) == device_side ? "writes" : "reads";
}

hcu_result cuMemFree_v2(hcu_deviceptr dptr)
{
	static const char call[] = "cuMemFree_v2";
	struct fc_context *ctx;
	hcu_result r = fc_enter_ctx_faulted(call, &ctx);
	if (r != HCU_SUCCESS)
		return r;
	struct fc_device *d = fc_device_of_ptr(dptr);
	long i = d ? alloc_at(d, dptr) : -1;
	if (i < 0) {
		const struct fc_alloc *in = fc_alloc_containing(dptr);
		if (in)
			fc_violation(call, HCU_ERROR_INVALID_VALUE,
			             "0x%llx is %llu bytes into allocation 0x%llx, not its start",
			             (unsigned long long)dptr,
			             (unsigned long long)(dptr - in->base),
			             (unsigned long long)in->base);
		else
			fc_violation(call, HCU_ERROR_INVALID_VALUE,
			             "0x%llx is not a live allocation (freed already, or never "
			             "allocated)",
			             (unsigned long long)dptr);
		return fc_leave(HCU_ERROR_INVALID_VALUE);
	}
	if (d->allocs[i].ctx != ctx) {
		fc_violation(call, HCU_ERROR_INVALID_VALUE,
		             "allocation 0x%llx belongs to context %p, but context %p is current",
		             (unsigned long long)dptr, fc_handle(&d->allocs[i].ctx->obj),
		             fc_handle(&ctx->obj));
		return fc_leave(HCU_ERROR_INVALID_VALUE);
	}
	struct fc_op *op;
	uint64_t size = d->allocs[i].size;
	if (fc_ops_touch_device(dptr, size, &op)) {
		/* The real driver's cuMemFree synchronizes in some cases, and then this
		 * would work there; it is counted all the same, because hoist must never
		 * rely on that: it waits for its copies before it frees what they use. */
		fc_violation(call, HCU_SUCCESS,
		             "frees device memory 0x%llx (%llu bytes) that an unfinished %s still "
		             "%s",
		             (unsigned long long)dptr, (unsigned long long)size, op->call,
		             op_verb(op, true));
		/* Then wait for that work, as the driver would, so no engine writes into
		 * memory handed out again. */
		while (fc_ops_touch_device(dptr, size, &op))
			pthread_cond_wait(&fc.done, &fc.lock);
		i = alloc_at(d, dptr);
		if (i < 0)
			return fc_leave(ctx->sticky);
	}
	alloc_remove(d, (size_t)i);
	return fc_leave(ctx->sticky);
}

hcu_result cuMemGetInfo_v2(size_t *free_bytes, size_t *total_bytes)
{
	static const char call[] = "cuMemGetInfo_v2";
	struct fc_context *ctx;
	hcu_result r = fc_enter_ctx(call, &ctx);
	if (r != HCU_SUCCESS)
		return r;
	if (!free_bytes || !total_bytes) {
		fc_violation(call, HCU_ERROR_INVALID_VALUE, "free %p, total %p", (void *)free_bytes,
		             (void *)total_bytes);
		return fc_leave(HCU_ERROR_INVALID_VALUE);
	}
	const struct fc_device *d = &fc.dev[ctx->device];
	*free_bytes = (size_t)(d->capacity - d->used);
	*total_bytes = (size_t)d->capacity;
	return fc_leave(HCU_SUCCESS);
}

/* ---- page-locked host memory ---- */

/* Index of the last host range whose base is <= p, or -1. */
static long host_before(uintptr_t p)
{
	size_t lo = 0, hi = fc.nhosts;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (fc.hosts[mid].base <= p)
			lo = mid + 1;
		else
			hi = mid;
	}
	return (long)lo - 1;
}

/* A host range that overlaps [p, p + n), or NULL. */
static struct fc_host_range *host_overlapping(uintptr_t p, size_t n)
{
	long i = host_before(p + n - 1);
	if (i < 0 || fc.hosts[i].base + fc.hosts[i].size <= p)
		return NULL;
	return &fc.hosts[i];
}

/* Whether a copy may treat [p, p + n) as page-locked: all of it in one range that is
 * portable or belongs to the copy's context. */
bool fc_host_pinned(struct fc_context *ctx, const void *p, size_t n)
{
	uintptr_t a = (uintptr_t)p;
	long i = host_before(a);
	if (i < 0)
		return false;
	const struct fc_host_range *h = &fc.hosts[i];
	if (a - h->base >= h->size || n > h->size - (a - h->base))
		return false;
	return (h->flags & HCU_MEMHOSTALLOC_PORTABLE) || h->ctx == ctx;
}

static int host_insert(struct fc_host_range h)
{
	if (fc.nhosts == fc.hosts_cap) {
		size_t cap = fc.hosts_cap ? fc.hosts_cap * 2 : 16;
		struct fc_host_range *p = realloc(fc.hosts, cap * sizeof *p);
		if (!p)
			return -1;
		fc.hosts = p;
		fc.hosts_cap = cap;
	}
	size_t i = (size_t)(host_before(h.base) + 1);
	memmove(&fc.hosts[i + 1], &fc.hosts[i], (fc.nhosts - i) * sizeof fc.hosts[0]);
	fc.hosts[i] = h;
	fc.nhosts++;
	if (h.registered)
		fc.c.registrations_now++;
	else
		fc.c.host_allocations_now++;
	return 0;
}

static void host_remove(size_t i)
{
	struct fc_host_range *h = &fc.hosts[i];
	if (h->registered) {
		fc.c.registrations_now--;
	} else {
		fc.c.host_allocations_now--;
		munmap((void *)h->base, h->mapped);
	}
	memmove(h, h + 1, (fc.nhosts - i - 1) * sizeof *h);
	fc.nhosts--;
}

static long host_at(uintptr_t base)
{
	long i = host_before(base);
	return i >= 0 && fc.hosts[i].base == base ? i : -1;
}

hcu_result cuMemHostAlloc(void **pp, size_t bytes, unsigned int flags)
{
	static const char call[] = "cuMemHostAlloc";
	const unsigned known = HCU_MEMHOSTALLOC_PORTABLE | HCU_MEMHOSTALLOC_DEVICEMAP |
	                       HCU_MEMHOSTALLOC_WRITECOMBINED;
	struct fc_context *ctx;
	hcu_result r = fc_enter_ctx(call, &ctx);
	if (r != HCU_SUCCESS)
		return r;
	if (!pp || bytes == 0 || (flags & ~known)) {
		fc_violation(call, HCU_ERROR_INVALID_VALUE, "pp %p, %zu bytes, flags 0x%x",
		             (void *)pp, bytes, flags);
		return fc_leave(HCU_ERROR_INVALID_VALUE);
	}
	if (++fc.host_alloc_calls == fc.cfg.fail_host_alloc)
		return fc_leave(HCU_ERROR_OUT_OF_MEMORY);
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	if (bytes > SIZE_MAX - page)
		return fc_leave(HCU_ERROR_OUT_OF_MEMORY);
	size_t len = (bytes + page - 1) / page * page;
	/* Populated at once: page-locked memory is resident from allocation on, and a test
	 * measuring the process's peak resident set should see it. */
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
	               MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (p == MAP_FAILED)
		return fc_leave(HCU_ERROR_OUT_OF_MEMORY);
	if (host_insert((struct fc_host_range){(uintptr_t)p, bytes, len, false, flags, ctx})) {
		munmap(p, len);
		return fc_leave(HCU_ERROR_OUT_OF_MEMORY);
	}
	fc.c.host_allocations++;
	*pp = p;
	return fc_leave(HCU_SUCCESS);
}

/* Waits until no unfinished copy uses host range i, after counting the violation of
 * freeing it under one; returns the range's index afterwards (-1 if it went). */
static long host_wait_idle(const char *call, long i, const char *what)
{
	struct fc_op *op;
	uintptr_t base = fc.hosts[i].base;
	size_t size = fc.hosts[i].size;
	if (!fc_ops_touch_host(base, size, &op))
		return i;
	fc_violation(call, HCU_SUCCESS, "%s %p (%zu bytes) that an unfinished %s still %s", what,
	             (void *)base, size, op->call, op_verb(op, false));
	while (fc_ops_touch_host(base, size, &op))
		pthread_cond_wait(&fc.done, &fc.lock);
	return host_at(base);
}

hcu_result cuMemFreeHost(void *p)
{
	static const char call[] = "cuMemFreeHost";
	struct fc_context *ctx;
	hcu_result r = fc_enter_ctx_faulted(call, &ctx);
	if (r != HCU_SUCCESS)
		return r;
	long i = host_at((uintptr_t)p);
	if (i < 0 || fc.hosts[i].registered) {
		fc_violation(call, HCU_ERROR_INVALID_VALUE,
		             "%p is not a live allocation of cuMemHostAlloc%s", p,
		             i >= 0 ? " (it is registered memory: cuMemHostUnregister)" : "");
		return fc_leave(HCU_ERROR_INVALID_VALUE);
	}
	i = host_wait_idle(call, i, "frees host memory");
	if (i >= 0)
		host_remove((size_t)i);
	return fc_leave(ctx->sticky);
}

/* Whether [p, p + n) is wholly mapped (-1 if not), and *writable whether all of it is
 * writable, from /proc/self/maps. Where that cannot be read, it says mapped and
 * writable. */
static int host_mapping(uintptr_t p, size_t n, bool *writable)
{
	*writable = true;
	FILE *f = fopen("/proc/self/maps", "re");
	if (!f)
		return 0;
	uintptr_t want = p, end = p + n;
	char *line = NULL;
	size_t cap = 0;
	while (want < end && getline(&line, &cap, f) > 0) {
		unsigned long lo, hi;
		char perms[5];
		if (sscanf(line, "%lx-%lx %4s", &lo, &hi, perms) != 3 || hi <= want)
			continue;
		if (lo > want)
			break;
		if (perms[1] != 'w')
			*writable = false;
		want = hi;
	}
	free(line);
	fclose(f);
	return want >= end ? 0 : -1;
}

hcu_result cuMemHostRegister_v2(void *p, size_t bytes, unsigned int flags)
{
	static const char call[] = "cuMemHostRegister_v2";
	const unsigned known = HCU_MEMHOSTREGISTER_PORTABLE | HCU_MEMHOSTREGISTER_DEVICEMAP |
	                       HCU_MEMHOSTREGISTER_IOMEMORY | HCU_MEMHOSTREGISTER_READ_ONLY;
	struct fc_context *ctx;
	hcu_result r = fc_enter_ctx(call, &ctx);
	if (r != HCU_SUCCESS)
		return r;
	uintptr_t a = (uintptr_t)p;
	if (!p || bytes == 0 || bytes > UINTPTR_MAX - a || (flags & ~known)) {
		fc_violation(call, HCU_ERROR_INVALID_VALUE, "p %p, %zu bytes, flags 0x%x", p, bytes,
		             flags);
		return fc_leave(HCU_ERROR_INVALID_VALUE);
	}
	if (flags & HCU_MEMHOSTREGISTER_IOMEMORY) {
		fc_note("cuMemHostRegister_v2: CU_MEMHOSTREGISTER_IOMEMORY is not modelled");
		return fc_leave(HCU_ERROR_NOT_SUPPORTED);
	}
	/* Where the device lacks CU_DEVICE_ATTRIBUTE_READ_ONLY_HOST_REGISTER_SUPPORTED: the
	 * driver's documented answer, and no violation (the caller should ask first, and
	 * fall back). */
	if ((flags & HCU_MEMHOSTREGISTER_READ_ONLY) && !fc.cfg.read_only_register)
		return fc_leave(HCU_ERROR_NOT_SUPPORTED);
	const struct fc_host_range *o = host_overlapping(a, bytes);
	if (o) {
		fc_violation(call, HCU_ERROR_HOST_MEMORY_ALREADY_REGISTERED,
		             "[%p, +%zu) overlaps the %s at %p (%zu bytes)", p, bytes,
		             o->registered ? "registration" : "cuMemHostAlloc allocation",
		             (void *)o->base, o->size);
		return fc_leave(HCU_ERROR_HOST_MEMORY_ALREADY_REGISTERED);
	}
	bool writable;
	if (host_mapping(a, bytes, &writable) != 0) {
		fc_violation(call, HCU_ERROR_INVALID_VALUE, "[%p, +%zu) is not wholly mapped", p,
		             bytes);
		return fc_leave(HCU_ERROR_INVALID_VALUE);
	}
	if (!writable && !(flags & HCU_MEMHOSTREGISTER_READ_ONLY)) {
		/* The driver documents that read-only memory needs the flag, not which
		 * code it returns without it. */
		fc_violation(call, HCU_ERROR_INVALID_VALUE,
		             "[%p, +%zu) is mapped read-only: it needs "
		             "CU_MEMHOSTREGISTER_READ_ONLY",
		             p, bytes);
		return fc_leave(HCU_ERROR_INVALID_VALUE);
	}
	if (++fc.register_calls == fc.cfg.fail_register)
		return fc_leave(HCU_ERROR_OUT_OF_MEMORY);
	if (host_insert((struct fc_host_range){a, bytes, 0, true, flags, ctx}))
		return fc_leave(HCU_ERROR_OUT_OF_MEMORY);
	fc.c.registrations++;
	return fc_leave(HCU_SUCCESS);
}

hcu_result cuMemHostUnregister(void *p)
{
	static const char call[] = "cuMemHostUnregister";
	struct fc_context *ctx;
	hcu_result r = fc_enter_ctx_faulted(call, &ctx);
	if (r != HCU_SUCCESS)
		return r;
	long i = host_at((uintptr_t)p);
	if (i < 0 || !fc.hosts[i].registered) {
		const struct fc_host_range *in = p ? host_overlapping((uintptr_t)p, 1) : NULL;
		if (i >= 0)
			fc_violation(call, HCU_ERROR_HOST_MEMORY_NOT_REGISTERED,
			             "%p is a cuMemHostAlloc allocation, not a registration "
			             "(cuMemFreeHost)",
			             p);
		else if (in)
			fc_violation(call, HCU_ERROR_HOST_MEMORY_NOT_REGISTERED,
			             "%p is inside the range registered at %p, not its start", p,
			             (void *)in->base);
		else
			fc_violation(call, HCU_ERROR_HOST_MEMORY_NOT_REGISTERED,
			             "%p was not registered (or is unregistered already)", p);
		return fc_leave(HCU_ERROR_HOST_MEMORY_NOT_REGISTERED);
	}
	i = host_wait_idle(call, i, "unregisters host memory");
	if (i >= 0)
		host_remove((size_t)i);
	return fc_leave(ctx->sticky);
}

/* A context's end takes its device memory, host allocations and registrations. */
void fc_memory_release_context(struct fc_context *ctx)
{
	struct fc_device *d = &fc.dev[ctx->device];
	for (size_t i = d->nallocs; i-- > 0;)
		if (d->allocs[i].ctx == ctx)
			alloc_remove(d, i);
	for (size_t i = fc.nhosts; i-- > 0;)
		if (fc.hosts[i].ctx == ctx)
			host_remove(i);
}

int fc_memory_leaks(void)
{
	static const char call[] = "fakecuda_check_leaks";
	int n = 0;
	for (int k = 0; k < fc.ndev; k++)
		for (size_t i = 0; i < fc.dev[k].nallocs; i++, n++) {
			const struct fc_alloc *a = &fc.dev[k].allocs[i];
			fc_violation(call, HCU_SUCCESS,
			             "leak: device %d allocation 0x%llx (%llu bytes) was never "
			             "freed (cuMemFree_v2)",
			             k, (unsigned long long)a->base, (unsigned long long)a->size);
		}
	for (size_t i = 0; i < fc.nhosts; i++, n++) {
		const struct fc_host_range *h = &fc.hosts[i];
		fc_violation(call, HCU_SUCCESS, "leak: %s %p (%zu bytes) was never %s",
		             h->registered ? "registration" : "host allocation", (void *)h->base,
		             h->size,
		             h->registered ? "unregistered (cuMemHostUnregister)"
		                           : "freed (cuMemFreeHost)");
	}
	return n;
}

SAME_TYPE(cuMemAlloc_v2, hcu_mem_alloc_fn);
SAME_TYPE(cuMemFree_v2, hcu_mem_free_fn);
SAME_TYPE(cuMemGetInfo_v2, hcu_mem_get_info_fn);
SAME_TYPE(cuMemHostAlloc, hcu_mem_host_alloc_fn);
SAME_TYPE(cuMemFreeHost, hcu_mem_free_host_fn);
SAME_TYPE(cuMemHostRegister_v2, hcu_mem_host_register_fn);
SAME_TYPE(cuMemHostUnregister, hcu_mem_host_unregister_fn);
