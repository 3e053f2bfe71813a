/* probe.c - hoist_bench_run: the links a load passes through, each measured the way
 * the load uses it, in a few seconds.
 *
 *   storage       O_DIRECT preads of a sample (4 MiB blocks) on the load's default
 *                 reader count, so the page cache neither helps nor changes;
 *   page cache    the same sample, cached, pread into reused buffers (a staging ring);
 *   host memory   the sample pread into fresh MADV_HUGEPAGE memory, as into a cpu
 *                 arena (its first-touch faults are the cost);
 *   memcpy        between two touched buffers, a thread per core;
 *   per GPU       pinned (cuMemHostAlloc) and pageable buffers copied into device
 *                 memory on the backend's streams; and, where the driver registers
 *                 read-only memory, page-cache pages of the sample registered
 *                 (cuMemHostRegister, READ_ONLY) and copied from.
 * The sample is the checkpoint's shards (their first bytes, spread over the largest),
 * or a file written into the scratch directory and removed again.
 *
 * Registration is not a call of the backend table, so it goes to the driver the
 * backend loaded (dlopen with RTLD_NOLOAD finds the same library, by its soname). */
#include "cuda_abi.h"
#include "probe.h"
#include "registry.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#define BLOCK (4u << 20)      /* a read: O_DIRECT-aligned, as a load's chunks */
#define ALIGN 4096u           /* O_DIRECT's alignment */
#define HUGE (2u << 20)       /* a transparent huge page */
#define SAMPLE (256ull << 20) /* storage sample; thorough: SAMPLE_THOROUGH */
#define SAMPLE_THOROUGH (1ull << 30)
#define COPY_CHUNK (16u << 20)  /* host -> device copy unit */
#define COPY_HOST (64u << 20)   /* host buffer the copies read */
#define COPY_TOTAL (1ull << 30) /* per device link; thorough: 4 GiB */
#define MEMCPY_BYTES (64u << 20)
#define MIN_SECONDS 0.3 /* least time a host measurement takes */

unsigned hoist__probe_readers(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return (unsigned)HOIST__MAX(1, HOIST__MIN(16, 2 * n));
}

static unsigned cores(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return (unsigned)HOIST__MAX(1, HOIST__MIN(64, n));
}

/* ---- mounts ----------------------------------------------------------------------- */

/* Undoes mountinfo's octal escapes (\040 for a space) in place. */
static void unescape(char *s)
{
	char *w = s;
	for (char *r = s; *r; r++) {
		if (r[0] == '\\' && r[1] >= '0' && r[1] <= '7' && r[2] && r[3]) {
			*w++ = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0'));
			r += 3;
		} else {
			*w++ = *r;
		}
	}
	*w = '\0';
}

bool hoist__mount_of(const char *path, struct hoist__mount *out)
{
	struct stat st;
	char real[4096];
	memset(out, 0, sizeof *out);
	snprintf(out->fstype, sizeof out->fstype, "?");
	snprintf(out->source, sizeof out->source, "?");
	snprintf(out->point, sizeof out->point, "?");
	if (stat(path, &st) != 0 || !realpath(path, real))
		return false;
	out->major = major(st.st_dev);
	out->minor = minor(st.st_dev);
	FILE *f = fopen("/proc/self/mountinfo", "r");
	if (!f)
		return false;
	char line[8192];
	size_t best = 0;
	bool found = false;
	while (fgets(line, sizeof line, f)) {
		/* id parent major:minor root point options [optional...] - fstype source super */
		unsigned maj, min;
		char point[4096], *sep = strstr(line, " - ");
		if (!sep || sscanf(line, "%*u %*u %u:%u %*s %4095s", &maj, &min, point) != 3)
			continue;
		if (maj != out->major || min != out->minor)
			continue;
		unescape(point);
		size_t n = strlen(point);
		bool above = strcmp(point, "/") == 0 ||
		             (strncmp(real, point, n) == 0 && (real[n] == '/' || real[n] == '\0'));
		if (!above || (found && n < best))
			continue;
		char fstype[64], source[256];
		if (sscanf(sep + 3, "%63s %255s", fstype, source) != 2)
			continue;
		unescape(source);
		snprintf(out->fstype, sizeof out->fstype, "%s", fstype);
		snprintf(out->source, sizeof out->source, "%s", source);
		snprintf(out->point, sizeof out->point, "%s", point);
		best = n;
		found = true;
	}
	fclose(f);
	return found;
}

void hoist__mount_describe(const struct hoist__mount *m, char *buf, size_t size)
{
	snprintf(buf, size, "%s on %s, mounted at %s (%u:%u)", m->fstype, m->source, m->point,
	         m->major, m->minor);
}

/* ---- the sample: byte ranges of files ----------------------------------------------- */

struct part {
	const char *path;
	int fd;
	uint64_t length; /* read from offset 0, a multiple of ALIGN */
};

struct sample {
	struct part parts[8];
	size_t nparts;
	uint64_t bytes;
};

static void sample_close(struct sample *s)
{
	for (size_t i = 0; i < s->nparts; i++)
		if (s->parts[i].fd >= 0)
			hoist__close(s->parts[i].fd);
	s->nparts = 0;
}

/* Opens up to 8 of the files (direct: O_DIRECT) and spreads `bytes` over them. */
static enum hoist_status sample_open(struct sample *s, const char *const *paths, size_t n,
                                     uint64_t bytes, bool direct)
{
	memset(s, 0, sizeof *s);
	n = HOIST__MIN(n, HOIST__ARRAY_SIZE(s->parts));
	uint64_t sizes[8] = {0}, left = bytes;
	for (size_t i = 0; i < n; i++) {
		struct part *p = &s->parts[s->nparts];
		p->path = paths[i];
		p->fd = hoist__open(paths[i], O_RDONLY | (direct ? O_DIRECT : 0));
		if (p->fd < 0) {
			int err = errno;
			sample_close(s);
			if (direct && err == EINVAL) {
				struct hoist__mount m;
				hoist__mount_of(paths[i], &m);
				return hoist__error(HOIST_ERR_IO, "%s: no O_DIRECT on %s", paths[i],
				                    m.fstype);
			}
			return hoist__error(HOIST_ERR_IO, "%s: cannot open: %s", paths[i],
			                    strerror(err));
		}
		struct stat st;
		sizes[s->nparts] = fstat(p->fd, &st) == 0 ? (uint64_t)st.st_size : 0;
		s->nparts++;
	}
	/* an equal share each, what a small file cannot take going to the others */
	for (size_t round = 0; round < 8 && left >= ALIGN; round++) {
		size_t open_parts = 0;
		for (size_t i = 0; i < s->nparts; i++)
			open_parts += sizes[i] - s->parts[i].length >= ALIGN;
		if (!open_parts)
			break;
		uint64_t share = HOIST__MAX(left / open_parts, ALIGN);
		for (size_t i = 0; i < s->nparts && left >= ALIGN; i++) {
			uint64_t room = (sizes[i] - s->parts[i].length) & ~(uint64_t)(ALIGN - 1);
			uint64_t take =
			        HOIST__MIN(HOIST__MIN(share, room), left) & ~(uint64_t)(ALIGN - 1);
			s->parts[i].length += take;
			left -= take;
		}
	}
	s->bytes = bytes - left;
	if (s->bytes == 0) {
		sample_close(s);
		return hoist__error(HOIST_ERR_IO, "%s: too small to measure a read (%llu bytes)",
		                    n ? paths[0] : "(no file)", (unsigned long long)sizes[0]);
	}
	return HOIST_OK;
}

/* ---- parallel reads ------------------------------------------------------------------- */

struct reads {
	const struct sample *s;
	uint8_t *dst; /* fresh memory the blocks land in (at their sample position); NULL:
	               * each reader's own reused buffer */
	double deadline;
	atomic_uint_fast64_t next; /* block number */
	atomic_uint_fast64_t done; /* bytes read */
	atomic_int err;
};

/* Block k of the sample: its part, the offset there, its position in the sample and
 * its length (blocks do not straddle files: a file's last block may be short). */
static bool block_at(const struct sample *s, uint64_t k, size_t *part, uint64_t *off, uint64_t *pos,
                     size_t *len)
{
	uint64_t first = 0, start = 0;
	for (size_t i = 0; i < s->nparts; i++) {
		uint64_t length = s->parts[i].length, blocks = (length + BLOCK - 1) / BLOCK;
		if (k < first + blocks) {
			*part = i;
			*off = (k - first) * BLOCK;
			*pos = start + *off;
			*len = (size_t)HOIST__MIN((uint64_t)BLOCK, length - *off);
			return true;
		}
		first += blocks;
		start += length;
	}
	return false;
}

static void *reader(void *arg)
{
	struct reads *r = arg;
	uint8_t *buf = NULL;
	if (!r->dst && !(buf = hoist__aligned_alloc(ALIGN, BLOCK))) {
		atomic_store(&r->err, ENOMEM);
		return NULL;
	}
	for (;;) {
		uint64_t k = atomic_fetch_add(&r->next, 1), off, pos;
		size_t part, len;
		if (!block_at(r->s, k, &part, &off, &pos, &len) || hoist__now() > r->deadline ||
		    atomic_load(&r->err))
			break;
		uint8_t *p = r->dst ? r->dst + pos : buf;
		while (len > 0) {
			ssize_t n = hoist__pread(r->s->parts[part].fd, p, len, off);
			if (n <= 0) {
				atomic_store(&r->err, n < 0 ? errno : EIO);
				break;
			}
			atomic_fetch_add(&r->done, (uint64_t)n);
			p += n;
			off += (uint64_t)n;
			len -= (size_t)n;
		}
	}
	hoist__free(buf);
	return NULL;
}

/* Reads the sample on `threads` readers for at most max_s; *bytes and *secs. */
static enum hoist_status read_sample(const struct sample *s, uint8_t *dst, unsigned threads,
                                     double max_s, uint64_t *bytes, double *secs)
{
	pthread_t tids[64];
	struct reads r = {.s = s, .dst = dst};
	atomic_init(&r.next, 0);
	atomic_init(&r.done, 0);
	atomic_init(&r.err, 0);
	threads = HOIST__MAX(1, HOIST__MIN(threads, 64));
	double t0 = hoist__now();
	r.deadline = t0 + max_s;
	unsigned started = 0;
	while (started < threads && pthread_create(&tids[started], NULL, reader, &r) == 0)
		started++;
	if (started == 0)
		return hoist__error(HOIST_ERR_NOMEM, "cannot start a reader thread");
	for (unsigned i = 0; i < started; i++)
		pthread_join(tids[i], NULL);
	*secs = hoist__now() - t0;
	*bytes = atomic_load(&r.done);
	int err = atomic_load(&r.err);
	if (err)
		return hoist__error(err == ENOMEM ? HOIST_ERR_NOMEM : HOIST_ERR_IO,
		                    "%s: reading the sample: %s", s->parts[0].path, strerror(err));
	if (*bytes == 0 || *secs <= 0)
		return hoist__error(HOIST_ERR_IO, "%s: nothing read", s->parts[0].path);
	return HOIST_OK;
}

static void figure_set(struct hoist__figure *f, enum hoist_link link, struct hoist_device dev,
                       uint64_t bytes, double secs, unsigned threads, const char *where)
{
	memset(f, 0, sizeof *f);
	f->pub.link = link;
	f->pub.device = dev;
	f->pub.bytes = bytes;
	f->pub.seconds = secs;
	f->pub.bytes_per_second = secs > 0 ? (double)bytes / secs : 0;
	f->pub.threads = threads;
	f->pub.measured_at = (int64_t)time(NULL);
	snprintf(f->where, sizeof f->where, "%s", where ? where : "");
	f->pub.where = f->where;
}

static const struct hoist_device cpu_device = {HOIST_DEVICE_CPU, 0};

enum hoist_status hoist__probe_cold(const char *const *paths, size_t npaths, uint64_t bytes,
                                    unsigned threads, double max_s, struct hoist__figure *out)
{
	struct sample s;
	uint64_t done;
	double secs;
	enum hoist_status st = sample_open(&s, paths, npaths, bytes, true);
	if (st != HOIST_OK)
		return st;
	st = read_sample(&s, NULL, threads, max_s, &done, &secs);
	sample_close(&s);
	if (st != HOIST_OK)
		return st;
	struct hoist__mount m;
	char where[160];
	hoist__mount_of(paths[0], &m);
	hoist__mount_describe(&m, where, sizeof where);
	figure_set(out, HOIST_LINK_STORAGE, cpu_device, done, secs, threads, where);
	out->fs_dev = hoist__fs_dev(paths[0]);
	return HOIST_OK;
}

/* ---- one run -------------------------------------------------------------------------- */

struct run {
	struct hoist_bench *b;
	const struct hoist_bench_options *opt;
	bool thorough;
	const char *const *paths; /* the sample's files */
	size_t npaths;
	uint64_t sample_bytes;
	char scratch[4200]; /* a sample file written here, removed at the end; "" none */
};

static void say(const struct run *r, const struct hoist__figure *f)
{
	char dev[24];
	if (!r->opt || !r->opt->log)
		return;
	hoist__log(r->opt->log, r->opt->log_arg, HOIST_LOG_INFO,
	           "bench: %s (%s): %.2f GB/s, %llu bytes in %.3f s, %u threads",
	           hoist_link_name(f->pub.link),
	           hoist_device_format(f->pub.device, dev, sizeof dev),
	           f->pub.bytes_per_second / 1e9, (unsigned long long)f->pub.bytes, f->pub.seconds,
	           f->pub.threads);
}

/* HOIST_ERR_CANCELLED, saying how far the run came, when the caller asks to stop. */
static enum hoist_status cancelled(const struct run *r, const char *during)
{
	if (!r->opt || !r->opt->cancel || !r->opt->cancel(r->opt->cancel_arg))
		return HOIST_OK;
	return hoist__error(HOIST_ERR_CANCELLED, "bench cancelled %s, after %zu measurement%s",
	                    during, r->b->count, r->b->count == 1 ? "" : "s");
}

static enum hoist_status keep(struct run *r, const struct hoist__figure *f)
{
	say(r, f);
	return hoist__bench_put(r->b, f);
}

static enum hoist_status skip(struct run *r, enum hoist_link link, const char *fmt, ...)
        HOIST__PRINTF(3, 4);

static enum hoist_status skip(struct run *r, enum hoist_link link, const char *fmt, ...)
{
	char why[768];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	if (r->opt && r->opt->log)
		hoist__log(r->opt->log, r->opt->log_arg, HOIST_LOG_INFO, "bench: %s: %s",
		           hoist_link_name(link), why);
	return hoist__strings_addf(&r->b->skipped, "%s: %s", hoist_link_name(link), why);
}

static int by_speed(const void *a, const void *b)
{
	double x = ((const struct hoist__figure *)a)->pub.bytes_per_second;
	double y = ((const struct hoist__figure *)b)->pub.bytes_per_second;
	return x < y ? -1 : x > y;
}

/* The median of n runs' figures (n odd), where the pointer fields are fixed. */
static struct hoist__figure median(struct hoist__figure *runs, int n)
{
	qsort(runs, (size_t)n, sizeof *runs, by_speed);
	struct hoist__figure m = runs[n / 2];
	m.pub.where = m.where;
	return m;
}

/* Writes the scratch sample: a pattern that no file system compresses away, synced
 * and dropped from the page cache so the cold read reads storage. */
static enum hoist_status write_scratch(struct run *r, const char *dir)
{
	snprintf(r->scratch, sizeof r->scratch, "%s/hoist-bench-%ld.tmp", dir, (long)getpid());
	int fd = open(r->scratch, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		enum hoist_status st = hoist__error(HOIST_ERR_IO, "%s: cannot create: %s",
		                                    r->scratch, strerror(errno));
		r->scratch[0] = '\0';
		return st;
	}
	uint64_t *buf = hoist__aligned_alloc(ALIGN, BLOCK);
	enum hoist_status st = HOIST_OK;
	uint64_t x = 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid();
	if (!buf)
		st = hoist__error(HOIST_ERR_NOMEM, "out of memory for the bench sample");
	for (uint64_t off = 0; st == HOIST_OK && off < r->sample_bytes; off += BLOCK) {
		st = cancelled(r, "while writing its storage sample");
		if (st != HOIST_OK)
			break;
		for (size_t i = 0; i < BLOCK / 8; i++) {
			x ^= x << 13; /* xorshift64 */
			x ^= x >> 7;
			x ^= x << 17;
			buf[i] = x;
		}
		size_t len = (size_t)HOIST__MIN((uint64_t)BLOCK, r->sample_bytes - off);
		if (pwrite(fd, buf, len, (off_t)off) != (ssize_t)len)
			st = hoist__error(HOIST_ERR_IO, "%s: cannot write the bench sample: %s",
			                  r->scratch, errno ? strerror(errno) : "short write");
	}
	if (st == HOIST_OK && fsync(fd) != 0)
		st = hoist__error(HOIST_ERR_IO, "%s: fsync: %s", r->scratch, strerror(errno));
	if (st == HOIST_OK)
		posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	close(fd);
	hoist__free(buf);
	return st;
}

static int runs_of(const struct run *r)
{
	return r->thorough ? 3 : 1;
}

static enum hoist_status measure_storage(struct run *r)
{
	struct hoist__figure runs[3];
	unsigned readers = hoist__probe_readers();
	for (int i = 0; i < runs_of(r); i++) {
		enum hoist_status st =
		        hoist__probe_cold(r->paths, r->npaths, r->sample_bytes, readers,
		                          r->thorough ? 10.0 : 2.0, &runs[i]);
		if (st == HOIST_ERR_IO && strstr(hoist_errmsg(), "no O_DIRECT"))
			return skip(r, HOIST_LINK_STORAGE,
			            "%s (a file system that keeps files in memory or cannot bypass "
			            "the page cache: the page cache figure stands for it)",
			            hoist_errmsg());
		if (st != HOIST_OK)
			return st;
	}
	struct hoist__figure f = median(runs, runs_of(r));
	return keep(r, &f);
}

/* The page cache and fresh host memory, from the sample read into the cache first. */
static enum hoist_status measure_host(struct run *r)
{
	struct sample s;
	struct hoist__figure cache[3], fresh[3], f;
	uint64_t bytes;
	double secs;
	unsigned readers = hoist__probe_readers();
	enum hoist_status st = sample_open(&s, r->paths, r->npaths, r->sample_bytes, false);
	if (st != HOIST_OK)
		return st;
	/* into the page cache first (not timed) */
	st = read_sample(&s, NULL, readers, 60.0, &bytes, &secs);
	/* A cached sample reads in tens of milliseconds: passes until MIN_SECONDS. */
	for (int i = 0; st == HOIST_OK && i < runs_of(r); i++) {
		uint64_t sum = 0;
		double t = 0;
		while (st == HOIST_OK && t < MIN_SECONDS) {
			st = read_sample(&s, NULL, readers, 2.0, &bytes, &secs);
			sum += bytes;
			t += secs;
		}
		figure_set(&cache[i], HOIST_LINK_PAGE_CACHE, cpu_device, sum, t, readers, "");
	}
	/* Each pass lands in fresh memory, freed after it, as a new arena would. */
	for (int i = 0; st == HOIST_OK && i < runs_of(r); i++) {
		uint64_t sum = 0;
		double t = 0;
		size_t len = (size_t)((s.bytes + HUGE - 1) / HUGE * HUGE);
		while (st == HOIST_OK && t < MIN_SECONDS) {
			uint8_t *mem = hoist__aligned_alloc(HUGE, len);
			if (!mem) {
				st = hoist__error(HOIST_ERR_NOMEM, "out of memory for %zu bytes",
				                  len);
				break;
			}
			madvise(mem, len, MADV_HUGEPAGE); /* as the host backend's arenas */
			st = read_sample(&s, mem, readers, 10.0, &bytes, &secs);
			hoist__free(mem);
			sum += bytes;
			t += secs;
		}
		figure_set(&fresh[i], HOIST_LINK_HOST_MEMORY, cpu_device, sum, t, readers, "");
	}
	sample_close(&s);
	if (st == HOIST_OK) {
		f = median(cache, runs_of(r));
		st = keep(r, &f);
	}
	if (st == HOIST_OK) {
		f = median(fresh, runs_of(r));
		st = keep(r, &f);
	}
	return st;
}

struct copier {
	uint8_t *dst;
	const uint8_t *src;
	size_t len;
	double deadline;
	uint64_t copied;
};

static void *copy_loop(void *arg)
{
	struct copier *c = arg;
	do {
		memcpy(c->dst, c->src, c->len);
		c->copied += c->len;
	} while (hoist__now() < c->deadline);
	return NULL;
}

static enum hoist_status measure_memcpy(struct run *r)
{
	unsigned n = cores();
	size_t len = (size_t)MEMCPY_BYTES * (r->thorough ? 4 : 1);
	uint8_t *a = hoist__aligned_alloc(HUGE, len), *b = hoist__aligned_alloc(HUGE, len);
	struct copier cs[64];
	pthread_t tids[64];
	enum hoist_status st = HOIST_OK;
	if (!a || !b) {
		st = hoist__error(HOIST_ERR_NOMEM, "out of memory for memcpy buffers");
		goto out;
	}
	memset(a, 1, len);
	memset(b, 2, len);
	n = HOIST__MIN(n, 64);
	size_t slice = len / n & ~(size_t)63;
	double t0 = hoist__now();
	unsigned started = 0;
	for (; started < n; started++) {
		cs[started] = (struct copier){b + started * slice, a + started * slice, slice,
		                              t0 + (r->thorough ? 1.0 : 0.3), 0};
		if (pthread_create(&tids[started], NULL, copy_loop, &cs[started]) != 0)
			break;
	}
	uint64_t total = 0;
	for (unsigned i = 0; i < started; i++) {
		pthread_join(tids[i], NULL);
		total += cs[i].copied;
	}
	double secs = hoist__now() - t0;
	struct hoist__figure f;
	figure_set(&f, HOIST_LINK_MEMCPY, cpu_device, total, secs, started, "");
	if (started)
		st = keep(r, &f);
out:
	hoist__free(a);
	hoist__free(b);
	return st;
}

/* ---- GPUs ----------------------------------------------------------------------------- */

/* The driver calls the backend table has none of, from the library it loaded. */
struct cuda_extra {
	void *lib;
	hcu_device_get_fn device_get;
	hcu_device_get_attribute_fn attribute;
	hcu_device_get_pci_bus_id_fn pci_bus_id;
	hcu_mem_host_register_fn reg;
	hcu_mem_host_unregister_fn unreg;
	hcu_get_error_name_fn error_name;
};

static bool cuda_extra_open(struct cuda_extra *x)
{
	memset(x, 0, sizeof *x);
	x->lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD);
	if (!x->lib)
		return false;
	struct {
		const char *name;
		void **slot;
	} syms[] = {
	        {HCU_SYM_DEVICE_GET, (void **)&x->device_get},
	        {HCU_SYM_DEVICE_GET_ATTRIBUTE, (void **)&x->attribute},
	        {HCU_SYM_DEVICE_GET_PCI_BUS_ID, (void **)&x->pci_bus_id},
	        {HCU_SYM_MEM_HOST_REGISTER, (void **)&x->reg},
	        {HCU_SYM_MEM_HOST_UNREGISTER, (void **)&x->unreg},
	        {HCU_SYM_GET_ERROR_NAME, (void **)&x->error_name},
	};
	for (size_t i = 0; i < HOIST__ARRAY_SIZE(syms); i++)
		*syms[i].slot = dlsym(x->lib, syms[i].name);
	return true;
}

static void cuda_extra_close(struct cuda_extra *x)
{
	if (x->lib)
		dlclose(x->lib);
	x->lib = NULL;
}

static const char *cu_name(const struct cuda_extra *x, hcu_result r)
{
	const char *name = NULL;
	if (x->error_name && x->error_name(r, &name) == HCU_SUCCESS && name)
		return name;
	return "CUDA_ERROR_UNKNOWN";
}

bool hoist__cuda_library(char *buf, size_t size)
{
	void *lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD);
	struct link_map *lm = NULL;
	if (!lib)
		return false;
	bool ok = dlinfo(lib, RTLD_DI_LINKMAP, &lm) == 0 && lm && lm->l_name;
	snprintf(buf, size, "%s", ok && lm->l_name[0] ? lm->l_name : "libcuda.so.1");
	dlclose(lib);
	return true;
}

enum hoist_status hoist__cuda_pci_bus_id(int ordinal, char *buf, size_t size)
{
	struct cuda_extra x;
	hcu_device dev;
	if (!cuda_extra_open(&x))
		return hoist__error(HOIST_ERR_NO_DEVICE, "no CUDA driver loaded");
	enum hoist_status st = HOIST_OK;
	hcu_result r = HCU_ERROR_NOT_SUPPORTED;
	if (!x.device_get || !x.pci_bus_id || (r = x.device_get(&dev, ordinal)) != HCU_SUCCESS ||
	    (r = x.pci_bus_id(buf, (int)size, dev)) != HCU_SUCCESS)
		st = hoist__error(HOIST_ERR_DEVICE, "cuda:%d: cuDeviceGetPCIBusId: %s", ordinal,
		                  cu_name(&x, r));
	cuda_extra_close(&x);
	return st;
}

/* Queues `total` bytes of copies from host (size hsize) to device memory (dsize) on
 * every stream of dev, and waits for them: *secs. */
static enum hoist_status copies(struct hoist__dev *dev, uint64_t daddr, uint64_t dsize,
                                const uint8_t *host, size_t hsize, uint64_t total, double *secs)
{
	size_t chunk = (size_t)HOIST__MIN((uint64_t)COPY_CHUNK, HOIST__MIN(dsize, hsize));
	uint64_t n = total / chunk, dslots = dsize / chunk, hslots = hsize / chunk;
	double t0 = hoist__now();
	for (uint64_t k = 0; k < n; k++) {
		enum hoist_status st = dev->ops->copy_async(dev, (unsigned)(k % dev->streams),
		                                            daddr + (k % dslots) * chunk,
		                                            host + (k % hslots) * chunk, chunk);
		if (st != HOIST_OK)
			return st;
	}
	enum hoist_status st = dev->ops->synchronize(dev);
	*secs = hoist__now() - t0;
	return st;
}

/* Registration of page-cache memory: the sample's first file mapped and registered
 * read-only, then copied from. */
static enum hoist_status measure_register(struct run *r, struct hoist__dev *dev, uint64_t daddr,
                                          uint64_t dsize, const char *gpu_name)
{
	struct hoist_device gpu = dev->device;
	enum hoist_status st = HOIST_OK;
	if (!dev->ops->host_register || !dev->registers)
		return skip(r, HOIST_LINK_REGISTER,
		            "cuda:%d: the driver registers no read-only memory "
		            "(READ_ONLY_HOST_REGISTER_SUPPORTED is 0)",
		            gpu.index);
	int fd = hoist__open(r->paths[0], O_RDONLY);
	struct stat fst;
	if (fd < 0 || fstat(fd, &fst) != 0) {
		st = hoist__error(HOIST_ERR_IO, "%s: cannot open: %s", r->paths[0],
		                  strerror(errno));
		hoist__close(fd);
		return st;
	}
	size_t len =
	        (size_t)HOIST__MIN((uint64_t)fst.st_size & ~(uint64_t)(HUGE - 1), r->sample_bytes);
	if (len < COPY_CHUNK) {
		hoist__close(fd);
		st = skip(r, HOIST_LINK_REGISTER, "%s: too small a file to register (%zu bytes)",
		          r->paths[0], len);
		return st;
	}
	void *p = mmap(NULL, len, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, 0);
	hoist__close(fd);
	if (p == MAP_FAILED) {
		return hoist__error(HOIST_ERR_IO, "%s: cannot map: %s", r->paths[0],
		                    strerror(errno));
	}
	double t0 = hoist__now();
	st = dev->ops->host_register(dev, p, len);
	double t_reg = hoist__now() - t0;
	if (st != HOIST_OK) {
		st = skip(r, HOIST_LINK_REGISTER, "%s", hoist_errmsg());
	} else {
		struct hoist__figure f;
		figure_set(&f, HOIST_LINK_REGISTER, gpu, len, t_reg, 1, gpu_name);
		st = keep(r, &f);
		double secs = 0;
		if (st == HOIST_OK)
			st = copies(dev, daddr, dsize, p, len,
			            HOIST__MAX((uint64_t)len, COPY_TOTAL / 4), &secs);
		if (st == HOIST_OK) {
			figure_set(&f, HOIST_LINK_REGISTERED_TO_DEVICE, gpu,
			           HOIST__MAX((uint64_t)len, COPY_TOTAL / 4) / COPY_CHUNK *
			                   COPY_CHUNK,
			           secs, dev->streams, gpu_name);
			st = keep(r, &f);
		}
		dev->ops->synchronize(dev);
		dev->ops->host_unregister(dev, p);
	}
	munmap(p, len);
	return st;
}

static enum hoist_status measure_gpu(struct run *r, const struct hoist_device_info *info)
{
	struct hoist__dev *dev = NULL;
	uint64_t daddr = 0, dsize = HOIST__MIN(256ull << 20, info->free_bytes / 4);
	uint8_t *pinned = NULL, *pageable = NULL;
	const char *how;
	double secs;
	uint64_t total = COPY_TOTAL * (r->thorough ? 4 : 1);
	struct hoist__figure f;
	enum hoist_status st = hoist__device_open(info->device, NULL, &dev);
	if (st != HOIST_OK)
		return skip(r, HOIST_LINK_PINNED_TO_DEVICE, "%s", hoist_errmsg());
	dsize &= ~(uint64_t)(COPY_CHUNK - 1);
	if (dsize < COPY_CHUNK) {
		st = skip(r, HOIST_LINK_PINNED_TO_DEVICE,
		          "cuda:%d: too little free memory (%llu bytes)", info->device.index,
		          (unsigned long long)info->free_bytes);
		goto out;
	}
	if ((st = dev->ops->alloc(dev, dsize, &daddr)) != HOIST_OK) {
		daddr = 0;
		goto out;
	}
	if ((st = dev->ops->host_alloc(dev, COPY_HOST, (void **)&pinned, &how)) != HOIST_OK) {
		pinned = NULL;
		goto out;
	}
	memset(pinned, 3, COPY_HOST);
	if ((st = copies(dev, daddr, dsize, pinned, COPY_HOST, total, &secs)) != HOIST_OK)
		goto out;
	figure_set(&f, HOIST_LINK_PINNED_TO_DEVICE, info->device, total / COPY_CHUNK * COPY_CHUNK,
	           secs, dev->streams, info->name);
	if ((st = keep(r, &f)) != HOIST_OK)
		goto out;
	pageable = hoist__aligned_alloc(ALIGN, COPY_HOST);
	if (!pageable) {
		st = hoist__error(HOIST_ERR_NOMEM, "out of memory for a pageable buffer");
		goto out;
	}
	memset(pageable, 4, COPY_HOST);
	if ((st = copies(dev, daddr, dsize, pageable, COPY_HOST, total / 4, &secs)) != HOIST_OK)
		goto out;
	figure_set(&f, HOIST_LINK_PAGEABLE_TO_DEVICE, info->device,
	           total / 4 / COPY_CHUNK * COPY_CHUNK, secs, dev->streams, info->name);
	if ((st = keep(r, &f)) != HOIST_OK)
		goto out;
	st = measure_register(r, dev, daddr, dsize, info->name);
out:
	if (dev) {
		dev->ops->synchronize(dev);
		if (pinned)
			dev->ops->host_free(dev, pinned, COPY_HOST);
		if (daddr)
			dev->ops->free(dev, daddr, dsize);
		dev->ops->close(dev);
	}
	hoist__free(pageable);
	/* A GPU that fails is a figure not measured, not a failed bench (the others and
	 * the host's figures stand); running out of host memory is the bench's own. */
	if (st != HOIST_OK && st != HOIST_ERR_NOMEM) {
		char why[600];
		snprintf(why, sizeof why, "%s", hoist_errmsg());
		st = skip(r, HOIST_LINK_PINNED_TO_DEVICE, "%s", why);
	}
	return st;
}

static enum hoist_status measure_gpus(struct run *r)
{
	struct hoist_device_info infos[HOIST_MAX_DEVICES];
	size_t n = 0;
	enum hoist_status st =
	        hoist_device_list(HOIST_DEVICE_CUDA, NULL, infos, HOIST_MAX_DEVICES, &n);
	if (st != HOIST_OK) {
		char why[600];
		snprintf(why, sizeof why, "%s", hoist_errmsg());
		const enum hoist_link links[] = {HOIST_LINK_PINNED_TO_DEVICE,
		                                 HOIST_LINK_PAGEABLE_TO_DEVICE,
		                                 HOIST_LINK_REGISTER};
		for (size_t i = 0; i < HOIST__ARRAY_SIZE(links); i++)
			if ((st = skip(r, links[i], "%s", why)) != HOIST_OK)
				return st;
		return HOIST_OK;
	}
	for (size_t i = 0; i < n; i++) {
		if (i > 0 && (st = cancelled(r, "between GPUs")) != HOIST_OK)
			return st;
		if ((st = measure_gpu(r, &infos[i])) != HOIST_OK)
			return st;
	}
	return HOIST_OK;
}

struct sized {
	const char *path;
	uint64_t size;
};

static int larger_first(const void *a, const void *b)
{
	uint64_t x = ((const struct sized *)a)->size, y = ((const struct sized *)b)->size;
	return x > y ? -1 : x < y;
}

/* The sample's files: the checkpoint's shards, largest first. */
static enum hoist_status checkpoint_paths(const char *path, struct hoist_checkpoint **ck,
                                          const char ***paths, size_t *n)
{
	enum hoist_status st = hoist_checkpoint_open(path, NULL, ck);
	if (st != HOIST_OK)
		return st;
	size_t ns = hoist_checkpoint_shard_count(*ck);
	struct sized *by = hoist__calloc(ns ? ns : 1, sizeof *by);
	*paths = hoist__calloc(ns ? ns : 1, sizeof **paths);
	if (!by || !*paths) {
		hoist__free(by);
		return hoist__error(HOIST_ERR_NOMEM, "out of memory");
	}
	for (size_t i = 0; i < ns; i++)
		by[i] = (struct sized){hoist_checkpoint_shard(*ck, i)->path,
		                       hoist_checkpoint_shard(*ck, i)->size};
	qsort(by, ns, sizeof *by, larger_first);
	for (size_t i = 0; i < ns; i++)
		(*paths)[i] = by[i].path;
	hoist__free(by);
	*n = ns;
	return HOIST_OK;
}

enum hoist_status hoist_bench_run(const char *path, const struct hoist_bench_options *opt,
                                  struct hoist_bench **out)
{
	struct run r;
	struct hoist_checkpoint *ck = NULL;
	const char **paths = NULL;
	const char *scratch_path[1];
	memset(&r, 0, sizeof r);
	if (!out)
		return hoist__error(HOIST_ERR_INVALID, "hoist_bench_run: NULL out");
	*out = NULL;
	r.opt = opt;
	r.thorough = opt && opt->thorough;
	r.sample_bytes = r.thorough ? SAMPLE_THOROUGH : SAMPLE;
	enum hoist_status st = hoist__bench_new(&r.b);
	if (st != HOIST_OK)
		return st;
	if (path) {
		st = checkpoint_paths(path, &ck, &paths, &r.npaths);
		r.paths = paths;
	} else {
		char dir[4096];
		if (opt && opt->scratch_dir)
			snprintf(dir, sizeof dir, "%s", opt->scratch_dir);
		else
			st = hoist__figures_dir(dir, sizeof dir, true);
		if (st == HOIST_OK)
			st = write_scratch(&r, dir);
		scratch_path[0] = r.scratch;
		r.paths = scratch_path;
		r.npaths = 1;
	}
	static enum hoist_status (*const measures[])(struct run *) = {measure_storage, measure_host,
	                                                              measure_memcpy, measure_gpus};
	for (size_t i = 0; st == HOIST_OK && i < HOIST__ARRAY_SIZE(measures); i++) {
		st = cancelled(&r, "between measurements");
		if (st == HOIST_OK)
			st = measures[i](&r);
	}
	if (r.scratch[0])
		unlink(r.scratch);
	hoist__free(paths);
	hoist_checkpoint_close(ck);
	if (st != HOIST_OK) {
		hoist_bench_free(r.b);
		return st;
	}
	*out = r.b;
	return HOIST_OK;
}
