/* backend_sim.c - the simulated accelerator: how the pipeline and its failure paths are
 * tested where there is no GPU. Never a fallback: only an explicit sim target opens it.
 *
 * Like a GPU, its memory is apart from the caller's: every allocation lives in memfds,
 * reached only through this file's copies (pwrite in, pread out), and named by a fake
 * device address in the device's window (backend.h) that faults if the host
 * dereferences it. Because the memfds are never mapped, device memory is not in the
 * process's resident set, so a test can measure the host memory a load costs with
 * VmHWM alone (tests/test_rss.c).
 *
 * Like a GPU's copy engines, SIM_ENGINES threads per device run the queued copies,
 * stream s on engine s % SIM_ENGINES, in order within a stream, completing
 * asynchronously, optionally capped to a bandwidth (the device's, shared by its
 * engines), with injectable failures (struct hoist_sim_options, hoist_testing.h).
 *
 * Speed. The device copy is a pwrite into new shmem pages; on the 2-core development
 * VM (4 KiB shmem pages: shmem THP is off there) one thread does it at about 2.7 GB/s,
 * the load's slowest link. Measured on 2.98 GB (bench/ceiling.c memfd, hoist load
 * --device sim:0, medians of 5 interleaved runs, memory freed just before):
 * - two writers into one memfd are no faster than one (1.09 s either way): writes to a
 *   shmem file hold its inode lock;
 * - two writers into two memfds, 2 MiB stripes alternating between them: 0.56 s. So an
 *   allocation of SIM_STRIPE_MIN or more is striped over SIM_ENGINES memfds (smaller
 *   ones stay in one memfd), and two engines copy in parallel: the load went from
 *   1.25 s to 0.88 s (four engines over four memfds: 0.85 s, the same on two cores);
 * - allocating the pages at alloc (fallocate) moves 0.73-1.05 s into the allocate
 *   phase and saves only 0.6 s of stream: not kept;
 * - writing through a mapping of the memfd (mmap, memcpy, munmap per chunk): 2.3 s on
 *   one thread, 1.06 s on two: not kept. */
#include "backend.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define SIM_DEFAULT_CAPACITY (4ull << 30)
#define SIM_ENGINES 2
/* Allocations this large are striped: SIM_STRIPE bytes at a time, over SIM_ENGINES
 * memfds, so the engines' writes land in different files (see the top). */
#define SIM_STRIPE (2ull << 20)
#define SIM_STRIPE_MIN (64ull << 20)

/* An allocation's bytes, in nfd memfds: byte o is in memfd (o / SIM_STRIPE) % nfd, at
 * (o / (SIM_STRIPE * nfd)) * SIM_STRIPE + o % SIM_STRIPE (with one memfd: at o). */
struct sim_alloc {
	uint64_t addr, size;
	int nfd;
	int fd[SIM_ENGINES];
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

struct sim_dev;

/* A copy engine: its own queue and thread. Stream s runs on engine s % nengines, in
 * order, so an event completes once the copies queued on its stream before it have. */
struct sim_engine {
	struct sim_dev *d;
	struct sim_op *ops; /* ring */
	size_t ohead, ocount, ocap;
	pthread_t thread;
	bool started;
};

struct sim_dev {
	struct hoist__dev base; /* first */
	uint64_t capacity, used, next_addr;
	double bytes_per_sec;
	enum hoist_sim_fault fault;
	uint64_t fault_after;

	pthread_mutex_t lock; /* guards everything below */
	pthread_cond_t cond;  /* a queue changed or an op completed */
	struct sim_alloc *allocs;
	size_t nallocs, acap;
	struct sim_engine engines[SIM_ENGINES];
	unsigned nengines;
	bool stop;
	double link_free_at;     /* bandwidth cap: when the device's link is next free */
	uint64_t copied;         /* bytes the copy engines have landed */
	enum hoist_status error; /* sticky: the first copy failure */
	char errmsg[512];
};

static unsigned sim_count(const struct hoist_sim_options *o)
{
	return o && o->devices ? o->devices : 1;
}

static uint64_t sim_capacity(const struct hoist_sim_options *o)
{
	return o && o->capacity ? o->capacity : SIM_DEFAULT_CAPACITY;
}

static enum hoist_status sim_list(const void *config, struct hoist_device_info *out, size_t cap,
                                  size_t *count)
{
	unsigned n = sim_count(config);
	uint64_t capacity = sim_capacity(config);
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

/* Moves n bytes between buf and the allocation's bytes at offset off, stripe by stripe
 * (into the device if in). Returns 0, or -1 with errno set (0: the memfd ended early). */
static int stripe_io(const struct sim_alloc *a, uint64_t off, unsigned char *buf, size_t n, bool in)
{
	while (n > 0) {
		uint64_t i = off / SIM_STRIPE, within = off % SIM_STRIPE;
		size_t len = (size_t)HOIST__MIN((uint64_t)n, SIM_STRIPE - within);
		int fd = a->fd[i % (uint64_t)a->nfd];
		off_t at = (off_t)((i / (uint64_t)a->nfd) * SIM_STRIPE + within);
		ssize_t r = in ? pwrite(fd, buf, len, at) : pread(fd, buf, len, at);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			if (r == 0)
				errno = 0;
			return -1;
		}
		buf += r;
		off += (uint64_t)r;
		n -= (size_t)r;
	}
	return 0;
}

/* Runs one copy (lock not held). Returns 0, or -1 with msg set. */
static int run_copy(const struct sim_dev *d, const struct sim_op *op, const struct sim_alloc *a,
                    char *msg, size_t size)
{
	if (stripe_io(a, op->dst - a->addr, (unsigned char *)(uintptr_t)op->src, op->n, true) !=
	    0) {
		snprintf(msg, size, "sim:%d: copy to device address 0x%llx failed: %s",
		         d->base.device.index, (unsigned long long)op->dst,
		         errno ? strerror(errno) : "no progress");
		return -1;
	}
	return 0;
}

static void *sim_thread(void *arg)
{
	struct sim_engine *e = arg;
	struct sim_dev *d = e->d;
	pthread_mutex_lock(&d->lock);
	for (;;) {
		while (!d->stop && e->ocount == 0)
			pthread_cond_wait(&d->cond, &d->lock);
		if (e->ocount == 0)
			break; /* stopping with nothing queued */
		struct sim_op op = e->ops[e->ohead];
		if (op.kind == SIM_MARK) {
			e->ohead = (e->ohead + 1) % e->ocap;
			e->ocount--;
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
			         "sim:%d: injected copy fault at device address 0x%llx after %llu "
			         "bytes "
			         "copied",
			         d->base.device.index, (unsigned long long)op.dst,
			         (unsigned long long)d->copied);
			d->error = HOIST_ERR_DEVICE;
			ok = false;
		}
		struct sim_alloc at = ok ? *a : (struct sim_alloc){0};
		/* The bandwidth cap is the device's, shared by its engines: each copy books
		 * the link for n / bytes_per_sec after the previous booking ends. */
		double until = 0;
		if (ok && d->bytes_per_sec > 0) {
			double now = hoist__now();
			until = (d->link_free_at > now ? d->link_free_at : now) +
			        (double)op.n / d->bytes_per_sec;
			d->link_free_at = until;
		}
		pthread_mutex_unlock(&d->lock);
		char msg[256];
		int rc = ok ? run_copy(d, &op, &at, msg, sizeof msg) : -1;
		if (ok && until > 0)
			sleep_seconds(until - hoist__now());
		pthread_mutex_lock(&d->lock);
		if (ok && rc != 0) {
			d->error = HOIST_ERR_DEVICE;
			snprintf(d->errmsg, sizeof d->errmsg, "%s", msg);
		}
		if (ok && rc == 0)
			d->copied += op.n;
		e->ohead = (e->ohead + 1) % e->ocap;
		e->ocount--;
		pthread_cond_broadcast(&d->cond);
	}
	pthread_mutex_unlock(&d->lock);
	return NULL;
}

/* Ops queued on every engine (lock held). */
static size_t queued(const struct sim_dev *d)
{
	size_t n = 0;
	for (unsigned i = 0; i < d->nengines; i++)
		n += d->engines[i].ocount;
	return n;
}

static void sim_close(struct hoist__dev *dev);

static void close_alloc(struct sim_alloc *a)
{
	for (int i = 0; i < a->nfd; i++)
		if (a->fd[i] >= 0)
			close(a->fd[i]);
}

static enum hoist_status sim_open(const void *config, int index, struct hoist__dev **out)
{
	const struct hoist_sim_options *o = config;
	*out = NULL;
	unsigned n = sim_count(o);
	if (index < 0 || (unsigned)index >= n)
		return hoist__error(HOIST_ERR_NO_DEVICE,
		                    "sim:%d: no such simulated device (sim_devices is %u)", index,
		                    n);
	struct sim_dev *d = hoist__calloc(1, sizeof *d);
	if (!d)
		return hoist__error(HOIST_ERR_NOMEM, "sim:%d: out of memory opening the device",
		                    index);
	d->base.ops = &hoist__backend_sim;
	d->base.device = (struct hoist_device){HOIST_DEVICE_SIM, index};
	d->nengines = SIM_ENGINES;
	d->base.streams = SIM_ENGINES;
	snprintf(d->base.name, sizeof d->base.name, "sim");
	snprintf(d->base.memory, sizeof d->base.memory, "sim device memory (memfd)");
	d->capacity = sim_capacity(o);
	d->next_addr = HOIST_SIM_BASE + (uint64_t)index * HOIST_SIM_WINDOW;
	d->bytes_per_sec = o ? o->bytes_per_sec : 0;
	d->fault = o ? o->fault : HOIST_SIM_FAULT_NONE;
	d->fault_after = o ? o->fault_after : 0;
	pthread_mutex_init(&d->lock, NULL);
	pthread_cond_init(&d->cond, NULL);
	for (unsigned i = 0; i < d->nengines; i++) {
		struct sim_engine *e = &d->engines[i];
		e->d = d;
		e->ocap = 64;
		e->ops = hoist__calloc(e->ocap, sizeof *e->ops);
		if (!e->ops) {
			sim_close(&d->base);
			return hoist__error(HOIST_ERR_NOMEM,
			                    "sim:%d: out of memory opening the device", index);
		}
	}
	for (unsigned i = 0; i < d->nengines; i++) {
		struct sim_engine *e = &d->engines[i];
		int rc = pthread_create(&e->thread, NULL, sim_thread, e);
		if (rc != 0) {
			sim_close(&d->base);
			return hoist__error(HOIST_ERR_DEVICE,
			                    "sim:%d: cannot start a copy engine thread: %s", index,
			                    strerror(rc));
		}
		e->started = true;
	}
	*out = &d->base;
	return HOIST_OK;
}

static void sim_close(struct hoist__dev *dev)
{
	struct sim_dev *d = (struct sim_dev *)dev;
	if (!d)
		return;
	pthread_mutex_lock(&d->lock);
	d->stop = true;
	pthread_cond_broadcast(&d->cond);
	pthread_mutex_unlock(&d->lock);
	for (unsigned i = 0; i < d->nengines; i++)
		if (d->engines[i].started)
			pthread_join(d->engines[i].thread, NULL);
	for (size_t i = 0; i < d->nallocs; i++)
		close_alloc(&d->allocs[i]);
	hoist__free(d->allocs);
	for (unsigned i = 0; i < d->nengines; i++)
		hoist__free(d->engines[i].ops);
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
		st = hoist__error(
		        HOIST_ERR_DEVICE,
		        "sim:%d: injected allocation fault allocating %s of device memory", index,
		        hoist_bytes_format(size, b1, sizeof b1));
		goto out;
	}
	if (size > d->capacity - d->used) {
		st = hoist__error(HOIST_ERR_NO_SPACE,
		                  "sim:%d: out of device memory: %s asked, %s free of %s", index,
		                  hoist_bytes_format(size, b1, sizeof b1),
		                  hoist_bytes_format(d->capacity - d->used, b2, sizeof b2),
		                  hoist_bytes_format(d->capacity, b3, sizeof b3));
		goto out;
	}
	uint64_t rounded = (size + 0xffff) & ~(uint64_t)0xffff; /* keep addresses aligned */
	uint64_t window_end = HOIST_SIM_BASE + (uint64_t)(index + 1) * HOIST_SIM_WINDOW;
	if (rounded > window_end - d->next_addr) {
		st = hoist__error(HOIST_ERR_NO_SPACE, "sim:%d: device address space exhausted",
		                  index);
		goto out;
	}
	if (!hoist__grow(&d->allocs, &d->acap, d->nallocs, sizeof *d->allocs, 4)) {
		st = hoist__error(HOIST_ERR_NOMEM, "sim:%d: out of host memory", index);
		goto out;
	}
	struct sim_alloc a = {d->next_addr, size, size >= SIM_STRIPE_MIN ? SIM_ENGINES : 1, {0}};
	/* striped: each memfd holds every nfd-th stripe, so its size is whole stripes */
	uint64_t fsize = a.nfd == 1 ? size
	                            : (size + SIM_STRIPE * SIM_ENGINES - 1) /
	                                      (SIM_STRIPE * SIM_ENGINES) * SIM_STRIPE;
	for (int i = 0; i < a.nfd; i++)
		a.fd[i] = -1;
	for (int i = 0; i < a.nfd; i++) {
		a.fd[i] = memfd_create("hoist-sim", MFD_CLOEXEC);
		if (a.fd[i] < 0 || ftruncate(a.fd[i], (off_t)fsize) != 0) {
			st = hoist__error(HOIST_ERR_DEVICE,
			                  "sim:%d: cannot back %s of device memory: %s", index,
			                  hoist_bytes_format(size, b1, sizeof b1), strerror(errno));
			close_alloc(&a);
			goto out;
		}
	}
	d->allocs[d->nallocs++] = a;
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
			close_alloc(&d->allocs[i]);
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
		                    dev->device.index, hoist_bytes_format(size, b, sizeof b));
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

/* Appends an op to stream's engine's ring, growing it (the ring holds at most the
 * copies of the chunks in flight, which the staging ring bounds). Lock held. */
static enum hoist_status push_op(struct sim_dev *d, unsigned stream, struct sim_op op)
{
	struct sim_engine *e = &d->engines[stream % d->nengines];
	if (e->ocount == e->ocap) {
		size_t cap = 2 * e->ocap;
		struct sim_op *ops = hoist__calloc(cap, sizeof *ops);
		if (!ops)
			return hoist__error(HOIST_ERR_NOMEM,
			                    "sim:%d: out of memory queueing a copy",
			                    d->base.device.index);
		for (size_t i = 0; i < e->ocount; i++)
			ops[i] = e->ops[(e->ohead + i) % e->ocap];
		hoist__free(e->ops);
		e->ops = ops;
		e->ohead = 0;
		e->ocap = cap;
	}
	e->ops[(e->ohead + e->ocount) % e->ocap] = op;
	e->ocount++;
	pthread_cond_broadcast(&d->cond);
	return HOIST_OK;
}

static enum hoist_status sim_copy_async(struct hoist__dev *dev, unsigned stream, uint64_t dst,
                                        const void *src, size_t n)
{
	struct sim_dev *d = (struct sim_dev *)dev;
	pthread_mutex_lock(&d->lock);
	enum hoist_status st = push_op(d, stream, (struct sim_op){SIM_COPY, dst, src, n, NULL});
	pthread_mutex_unlock(&d->lock);
	return st;
}

static enum hoist_status sim_event_record(struct hoist__dev *dev, struct hoist__event *ev,
                                          unsigned stream)
{
	struct sim_dev *d = (struct sim_dev *)dev;
	struct sim_event *e = (struct sim_event *)ev;
	pthread_mutex_lock(&d->lock);
	e->pending = true;
	enum hoist_status st = push_op(d, stream, (struct sim_op){SIM_MARK, 0, NULL, 0, e});
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
	while (queued(d) > 0 && d->error == HOIST_OK)
		pthread_cond_wait(&d->cond, &d->lock);
	/* After a failure the engines still drain their queues (skipping copies); wait
	 * for them so no queued op refers to a buffer the caller is about to free. */
	while (queued(d) > 0)
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
	struct sim_alloc at = a ? *a : (struct sim_alloc){0};
	pthread_mutex_unlock(&d->lock);
	if (!a)
		return hoist__error(
		        HOIST_ERR_DEVICE,
		        "sim:%d: copy of %zu bytes at 0x%llx: no allocation holds that range",
		        d->base.device.index, n, (unsigned long long)addr);
	unsigned char *buf = out ? out : (unsigned char *)(uintptr_t)in;
	if (stripe_io(&at, addr - at.addr, buf, n, !out) != 0)
		return hoist__error(HOIST_ERR_DEVICE, "sim:%d: copy at 0x%llx failed: %s",
		                    d->base.device.index, (unsigned long long)addr,
		                    errno ? strerror(errno) : "unwritten device memory");
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

const struct hoist__backend hoist__backend_sim = {
        .version = 1,
        .name = "sim",
        .kind = HOIST_DEVICE_SIM,
        .list = sim_list,
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
};
