/* backend_sim.c - the simulated accelerator: how the pipeline and its failure paths are
 * tested where there is no GPU. Never a fallback: only an explicit sim target opens it.
 *
 * Like a GPU, its memory is apart from the caller's: every allocation is its own
 * memfd, reached only through this file's copies (pwrite in, pread out), and named by
 * a fake device address in the device's window (backend.h) that faults if the host
 * dereferences it. Because the memfd is never mapped, device memory is not in the
 * process's resident set, so a test can measure the host memory a load costs with
 * VmHWM alone (tests/test_rss.c).
 *
 * One copy thread per device runs the queued copies in order (all streams share it),
 * completing asynchronously like a DMA engine, optionally capped to a bandwidth, with
 * injectable failures (opt->sim_fault). */
#include "backend.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define SIM_DEFAULT_CAPACITY (4ull << 30)

struct sim_alloc {
	uint64_t addr, size;
	int fd; /* memfd holding the bytes */
};

enum sim_op_kind { SIM_COPY, SIM_MARK };

struct sim_event {
	bool pending;
};

struct sim_op {
	enum sim_op_kind kind;
	uint64_t dst;
	const void *src;
	size_t n;
	struct sim_event *ev;
};

struct sim_dev {
	struct hoist__dev base; /* first */
	uint64_t capacity, used, next_addr;
	double bytes_per_sec;
	enum hoist_sim_fault fault;
	uint64_t fault_after;

	pthread_mutex_t lock; /* guards everything below */
	pthread_cond_t cond;  /* queue changed or an op completed */
	struct sim_alloc *allocs;
	size_t nallocs, acap;
	struct sim_op *ops; /* ring */
	size_t ohead, ocount, ocap;
	bool stop;
	bool thread_started;
	uint64_t copied;    /* bytes the copy thread has landed */
	enum hoist_status error; /* sticky: the first copy failure */
	char errmsg[512];
	pthread_t thread;
};

enum hoist_status hoist__sim_devices_list(const struct hoist_options *opt,
					  struct hoist__device_info *out, size_t cap, size_t *count)
{
	unsigned n = opt && opt->sim_devices ? opt->sim_devices : 1;
	uint64_t capacity = opt && opt->sim_capacity ? opt->sim_capacity : SIM_DEFAULT_CAPACITY;
	*count = 0;
	for (unsigned i = 0; i < n && i < cap; i++) {
		memset(&out[i], 0, sizeof out[i]);
		out[i].device = (struct hoist_device){HOIST_DEVICE_SIM, (int)i};
		out[i].free_bytes = capacity;
		out[i].total_bytes = capacity;
		snprintf(out[i].name, sizeof out[i].name, "sim");
		(*count)++;
	}
	return HOIST_OK;
}

/* Finds the allocation holding [addr, addr + n); NULL if none holds all of it.
 * Called with the lock held. */
static struct sim_alloc *find_alloc(struct sim_dev *d, uint64_t addr, uint64_t n)
{
	for (size_t i = 0; i < d->nallocs; i++) {
		struct sim_alloc *a = &d->allocs[i];
		if (addr >= a->addr && addr - a->addr <= a->size && n <= a->size - (addr - a->addr))
			return a;
	}
	return NULL;
}

static void sleep_seconds(double s)
{
	if (s <= 0)
		return;
	struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* Runs one copy (lock not held). Returns 0, or -1 with msg set. */
static int run_copy(const struct sim_dev *d, const struct sim_op *op, int fd, uint64_t off,
		    char *msg, size_t size)
{
	const char *p = op->src;
	size_t left = op->n;
	while (left > 0) {
		ssize_t w = pwrite(fd, p, left, (off_t)off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			snprintf(msg, size, "sim:%d: copy to device address 0x%llx failed: %s",
				 d->base.device.index,
				 (unsigned long long)op->dst, w < 0 ? strerror(errno) : "no progress");
			return -1;
		}
		p += w;
		left -= (size_t)w;
		off += (uint64_t)w;
	}
	return 0;
}

static void *sim_thread(void *arg)
{
	struct sim_dev *d = arg;
	pthread_mutex_lock(&d->lock);
	for (;;) {
		while (!d->stop && d->ocount == 0)
			pthread_cond_wait(&d->cond, &d->lock);
		if (d->ocount == 0)
			break; /* stopping with nothing queued */
		struct sim_op op = d->ops[d->ohead];
		if (op.kind == SIM_MARK) {
			d->ohead = (d->ohead + 1) % d->ocap;
			d->ocount--;
			op.ev->pending = false;
			pthread_cond_broadcast(&d->cond);
			continue;
		}
		/* A copy: leave it queued (the caller's buffer is in use) while it runs. */
		bool ok = d->error == HOIST_OK;
		struct sim_alloc *a = ok ? find_alloc(d, op.dst, op.n) : NULL;
		if (ok && !a) {
			snprintf(d->errmsg, sizeof d->errmsg,
				 "sim:%d: copy of %zu bytes to 0x%llx: invalid device address (no "
				 "allocation holds that range)",
				 d->base.device.index, op.n, (unsigned long long)op.dst);
			d->error = HOIST_ERR_DEVICE;
			ok = false;
		}
		if (ok && d->fault == HOIST_SIM_FAULT_COPY && d->copied + op.n > d->fault_after) {
			snprintf(d->errmsg, sizeof d->errmsg,
				 "sim:%d: injected copy fault at device address 0x%llx after %llu bytes "
				 "copied",
				 d->base.device.index, (unsigned long long)op.dst,
				 (unsigned long long)d->copied);
			d->error = HOIST_ERR_DEVICE;
			ok = false;
		}
		int fd = ok ? a->fd : -1;
		uint64_t off = ok ? op.dst - a->addr : 0;
		pthread_mutex_unlock(&d->lock);
		double t0 = hoist__now();
		char msg[256];
		int rc = ok ? run_copy(d, &op, fd, off, msg, sizeof msg) : -1;
		if (ok && d->bytes_per_sec > 0)
			sleep_seconds((double)op.n / d->bytes_per_sec - (hoist__now() - t0));
		pthread_mutex_lock(&d->lock);
		if (ok && rc != 0) {
			d->error = HOIST_ERR_DEVICE;
			snprintf(d->errmsg, sizeof d->errmsg, "%s", msg);
		}
		if (ok && rc == 0)
			d->copied += op.n;
		d->ohead = (d->ohead + 1) % d->ocap;
		d->ocount--;
		pthread_cond_broadcast(&d->cond);
	}
	pthread_mutex_unlock(&d->lock);
	return NULL;
}

static void sim_close(struct hoist__dev *dev);

static enum hoist_status sim_open(const struct hoist_options *opt, int index,
				  struct hoist__dev **out)
{
	*out = NULL;
	unsigned n = opt && opt->sim_devices ? opt->sim_devices : 1;
	if (index < 0 || (unsigned)index >= n)
		return hoist__error(HOIST_ERR_NO_DEVICE,
				    "sim:%d: no such simulated device (sim_devices is %u)", index, n);
	struct sim_dev *d = hoist__calloc(1, sizeof *d);
	if (!d)
		return hoist__error(HOIST_ERR_NOMEM, "sim:%d: out of memory opening the device",
				    index);
	d->base.ops = &hoist__backend_sim;
	d->base.device = (struct hoist_device){HOIST_DEVICE_SIM, index};
	d->base.streams = 2;
	snprintf(d->base.name, sizeof d->base.name, "sim");
	snprintf(d->base.memory, sizeof d->base.memory, "sim device memory (memfd)");
	d->capacity = opt && opt->sim_capacity ? opt->sim_capacity : SIM_DEFAULT_CAPACITY;
	d->next_addr = HOIST__SIM_BASE + (uint64_t)index * HOIST__SIM_WINDOW;
	d->bytes_per_sec = opt ? opt->sim_bytes_per_sec : 0;
	d->fault = opt ? opt->sim_fault : HOIST_SIM_FAULT_NONE;
	d->fault_after = opt ? opt->sim_fault_after : 0;
	pthread_mutex_init(&d->lock, NULL);
	pthread_cond_init(&d->cond, NULL);
	d->ocap = 64;
	d->ops = hoist__calloc(d->ocap, sizeof *d->ops);
	if (!d->ops) {
		sim_close(&d->base);
		return hoist__error(HOIST_ERR_NOMEM, "sim:%d: out of memory opening the device",
				    index);
	}
	int rc = pthread_create(&d->thread, NULL, sim_thread, d);
	if (rc != 0) {
		sim_close(&d->base);
		return hoist__error(HOIST_ERR_DEVICE, "sim:%d: cannot start the copy thread: %s",
				    index, strerror(rc));
	}
	d->thread_started = true;
	*out = &d->base;
	return HOIST_OK;
}

static void sim_close(struct hoist__dev *dev)
{
	struct sim_dev *d = (struct sim_dev *)dev;
	if (!d)
		return;
	if (d->thread_started) {
		pthread_mutex_lock(&d->lock);
		d->stop = true;
		pthread_cond_broadcast(&d->cond);
		pthread_mutex_unlock(&d->lock);
		pthread_join(d->thread, NULL);
	}
	for (size_t i = 0; i < d->nallocs; i++)
		close(d->allocs[i].fd);
	hoist__free(d->allocs);
	hoist__free(d->ops);
	pthread_cond_destroy(&d->cond);
	pthread_mutex_destroy(&d->lock);
	hoist__free(d);
}

static enum hoist_status sim_alloc(struct hoist__dev *dev, uint64_t size, uint64_t *addr)
{
	struct sim_dev *d = (struct sim_dev *)dev;
	char b1[32], b2[32], b3[32];
	int index = d->base.device.index;
	enum hoist_status st = HOIST_OK;
	pthread_mutex_lock(&d->lock);
	if (d->fault == HOIST_SIM_FAULT_ALLOC) {
		st = hoist__error(HOIST_ERR_DEVICE,
				  "sim:%d: injected allocation fault allocating %s of device memory",
				  index, hoist__format_bytes(size, b1, sizeof b1));
		goto out;
	}
	if (size > d->capacity - d->used) {
		st = hoist__error(HOIST_ERR_NO_SPACE,
				  "sim:%d: out of device memory: %s asked, %s free of %s", index,
				  hoist__format_bytes(size, b1, sizeof b1),
				  hoist__format_bytes(d->capacity - d->used, b2, sizeof b2),
				  hoist__format_bytes(d->capacity, b3, sizeof b3));
		goto out;
	}
	uint64_t rounded = (size + 0xffff) & ~(uint64_t)0xffff; /* keep addresses aligned */
	uint64_t window_end = HOIST__SIM_BASE + (uint64_t)(index + 1) * HOIST__SIM_WINDOW;
	if (rounded > window_end - d->next_addr) {
		st = hoist__error(HOIST_ERR_NO_SPACE, "sim:%d: device address space exhausted",
				  index);
		goto out;
	}
	if (d->nallocs == d->acap) {
		size_t cap = d->acap ? 2 * d->acap : 4;
		struct sim_alloc *a = hoist__reallocarray(d->allocs, cap, sizeof *a);
		if (!a) {
			st = hoist__error(HOIST_ERR_NOMEM, "sim:%d: out of host memory", index);
			goto out;
		}
		d->allocs = a;
		d->acap = cap;
	}
	int fd = memfd_create("hoist-sim", MFD_CLOEXEC);
	if (fd < 0 || ftruncate(fd, (off_t)size) != 0) {
		st = hoist__error(HOIST_ERR_DEVICE, "sim:%d: cannot back %s of device memory: %s",
				  index, hoist__format_bytes(size, b1, sizeof b1), strerror(errno));
		if (fd >= 0)
			close(fd);
		goto out;
	}
	d->allocs[d->nallocs++] = (struct sim_alloc){d->next_addr, size, fd};
	*addr = d->next_addr;
	d->next_addr += rounded;
	d->used += size;
out:
	pthread_mutex_unlock(&d->lock);
	return st;
}

static void sim_free(struct hoist__dev *dev, uint64_t addr, uint64_t size)
{
	struct sim_dev *d = (struct sim_dev *)dev;
	(void)size;
	if (!d)
		return;
	pthread_mutex_lock(&d->lock);
	for (size_t i = 0; i < d->nallocs; i++) {
		if (d->allocs[i].addr == addr) {
			close(d->allocs[i].fd);
			d->used -= d->allocs[i].size;
			d->allocs[i] = d->allocs[--d->nallocs];
			break;
		}
	}
	pthread_mutex_unlock(&d->lock);
}

/* Staging for a sim device: plain page-aligned host memory (nothing to pin). */
static enum hoist_status sim_host_alloc(struct hoist__dev *dev, size_t size, void **p,
					const char **how)
{
	*p = hoist__aligned_alloc(4096, size);
	*how = "pageable (sim)";
	if (!*p) {
		char b[32];
		return hoist__error(HOIST_ERR_NOMEM, "sim:%d: cannot allocate %s of staging memory",
				    dev->device.index, hoist__format_bytes(size, b, sizeof b));
	}
	return HOIST_OK;
}

static void sim_host_free(struct hoist__dev *dev, void *p, size_t size)
{
	(void)dev, (void)size;
	hoist__free(p);
}

static enum hoist_status sim_event_create(struct hoist__dev *dev, struct hoist__event **out)
{
	struct sim_event *ev = hoist__calloc(1, sizeof *ev);
	*out = (struct hoist__event *)ev;
	return ev ? HOIST_OK
		  : hoist__error(HOIST_ERR_NOMEM, "sim:%d: out of memory", dev->device.index);
}

static void sim_event_destroy(struct hoist__dev *dev, struct hoist__event *ev)
{
	(void)dev;
	hoist__free(ev);
}

/* Appends an op to the ring, growing it (the ring holds at most the copies of the
 * chunks in flight, which the staging ring bounds). Called with the lock held. */
static enum hoist_status push_op(struct sim_dev *d, struct sim_op op)
{
	if (d->ocount == d->ocap) {
		size_t cap = 2 * d->ocap;
		struct sim_op *ops = hoist__calloc(cap, sizeof *ops);
		if (!ops)
			return hoist__error(HOIST_ERR_NOMEM, "sim:%d: out of memory queueing a copy",
					    d->base.device.index);
		for (size_t i = 0; i < d->ocount; i++)
			ops[i] = d->ops[(d->ohead + i) % d->ocap];
		hoist__free(d->ops);
		d->ops = ops;
		d->ohead = 0;
		d->ocap = cap;
	}
	d->ops[(d->ohead + d->ocount) % d->ocap] = op;
	d->ocount++;
	pthread_cond_broadcast(&d->cond);
	return HOIST_OK;
}

static enum hoist_status sim_copy_async(struct hoist__dev *dev, unsigned stream, uint64_t dst,
					const void *src, size_t n)
{
	struct sim_dev *d = (struct sim_dev *)dev;
	(void)stream;
	pthread_mutex_lock(&d->lock);
	enum hoist_status st = push_op(d, (struct sim_op){SIM_COPY, dst, src, n, NULL});
	pthread_mutex_unlock(&d->lock);
	return st;
}

static enum hoist_status sim_event_record(struct hoist__dev *dev, struct hoist__event *ev,
					  unsigned stream)
{
	struct sim_dev *d = (struct sim_dev *)dev;
	struct sim_event *e = (struct sim_event *)ev;
	(void)stream;
	pthread_mutex_lock(&d->lock);
	e->pending = true;
	enum hoist_status st = push_op(d, (struct sim_op){SIM_MARK, 0, NULL, 0, e});
	if (st != HOIST_OK)
		e->pending = false;
	pthread_mutex_unlock(&d->lock);
	return st;
}

static enum hoist_status sim_event_wait(struct hoist__dev *dev, struct hoist__event *ev,
					double timeout_s, bool *done)
{
	struct sim_dev *d = (struct sim_dev *)dev;
	struct sim_event *e = (struct sim_event *)ev;
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	double t = (double)until.tv_sec + (double)until.tv_nsec * 1e-9 + timeout_s;
	until.tv_sec = (time_t)t;
	until.tv_nsec = (long)((t - (double)until.tv_sec) * 1e9);
	pthread_mutex_lock(&d->lock);
	while (e->pending && d->error == HOIST_OK) {
		if (pthread_cond_timedwait(&d->cond, &d->lock, &until) == ETIMEDOUT)
			break;
	}
	enum hoist_status st = d->error;
	*done = !e->pending || st != HOIST_OK;
	if (st != HOIST_OK)
		hoist__error(st, "%s", d->errmsg);
	pthread_mutex_unlock(&d->lock);
	return st;
}

static enum hoist_status sim_synchronize(struct hoist__dev *dev)
{
	struct sim_dev *d = (struct sim_dev *)dev;
	pthread_mutex_lock(&d->lock);
	while (d->ocount > 0 && d->error == HOIST_OK)
		pthread_cond_wait(&d->cond, &d->lock);
	/* After a failure the thread still drains the queue (skipping copies); wait for
	 * it so no queued op refers to a buffer the caller is about to free. */
	while (d->ocount > 0)
		pthread_cond_wait(&d->cond, &d->lock);
	enum hoist_status st = d->error;
	if (st != HOIST_OK)
		hoist__error(st, "%s", d->errmsg);
	pthread_mutex_unlock(&d->lock);
	return st;
}

/* Synchronous copies: like cuMemcpyDtoH/HtoD on the legacy stream, they wait for the
 * queued copies first. */
static enum hoist_status sim_copy_sync(struct sim_dev *d, void *out, const void *in, uint64_t addr,
				       size_t n)
{
	enum hoist_status st = sim_synchronize(&d->base);
	if (st != HOIST_OK)
		return st;
	pthread_mutex_lock(&d->lock);
	struct sim_alloc *a = find_alloc(d, addr, n);
	int fd = a ? a->fd : -1;
	uint64_t off = a ? addr - a->addr : 0;
	pthread_mutex_unlock(&d->lock);
	if (!a)
		return hoist__error(HOIST_ERR_DEVICE,
				    "sim:%d: copy of %zu bytes at 0x%llx: no allocation holds that range",
				    d->base.device.index, n, (unsigned long long)addr);
	size_t done = 0;
	while (done < n) {
		ssize_t r = out ? pread(fd, (char *)out + done, n - done, (off_t)(off + done))
				: pwrite(fd, (const char *)in + done, n - done, (off_t)(off + done));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return hoist__error(HOIST_ERR_DEVICE, "sim:%d: copy at 0x%llx failed: %s",
					    d->base.device.index, (unsigned long long)addr,
					    r < 0 ? strerror(errno) : "unwritten device memory");
		done += (size_t)r;
	}
	return HOIST_OK;
}

static enum hoist_status sim_copy_out(struct hoist__dev *dev, void *dst, uint64_t src, size_t n)
{
	return sim_copy_sync((struct sim_dev *)dev, dst, NULL, src, n);
}

static enum hoist_status sim_copy_in(struct hoist__dev *dev, uint64_t dst, const void *src,
				     size_t n)
{
	return sim_copy_sync((struct sim_dev *)dev, NULL, src, dst, n);
}

static enum hoist_status sim_mem_info(struct hoist__dev *dev, uint64_t *free_bytes,
				      uint64_t *total_bytes)
{
	struct sim_dev *d = (struct sim_dev *)dev;
	pthread_mutex_lock(&d->lock);
	*free_bytes = d->capacity - d->used;
	*total_bytes = d->capacity;
	pthread_mutex_unlock(&d->lock);
	return HOIST_OK;
}

const struct hoist__backend hoist__backend_sim = {
	.name = "sim",
	.kind = HOIST_DEVICE_SIM,
	.open = sim_open,
	.close = sim_close,
	.alloc = sim_alloc,
	.free = sim_free,
	.host_alloc = sim_host_alloc,
	.host_free = sim_host_free,
	.event_create = sim_event_create,
	.event_destroy = sim_event_destroy,
	.copy_async = sim_copy_async,
	.event_record = sim_event_record,
	.event_wait = sim_event_wait,
	.copy_out = sim_copy_out,
	.copy_in = sim_copy_in,
	.synchronize = sim_synchronize,
	.mem_info = sim_mem_info,
};
