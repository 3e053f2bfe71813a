/* ceiling.c - what this machine allows, measured the way a loader would use it:
 *
 *   ceiling pread [--threads N] [--chunk BYTES] [--fresh|--huge|--prefault|--prefault-bg]
 *                 [--direct] FILE...
 *       reads every byte of the files with N threads (chunks handed out from a
 *       shared counter). Default destination: one reused chunk buffer per thread
 *       (page cache -> user memory, as into a staging ring). --fresh: one buffer the
 *       size of all files, untouched before (first-touch page faults included, as
 *       a load into a new host arena pays). --huge: --fresh with MADV_HUGEPAGE.
 *       --direct: O_DIRECT.
 *       --prefault: --fresh, with the buffer's pages made writable first
 *       (MADV_POPULATE_WRITE, timed apart as "prefault_seconds"), so "seconds" is the
 *       read alone. --prefault-bg: --fresh, populated by one more thread while the
 *       readers run (arena faults overlapped with the reads).
 *   ceiling memcpy [--threads N] [--bytes BYTES]
 *       copies BYTES between two pre-touched buffers, split over N threads; best of 5.
 *   ceiling memfd [--threads N] [--bytes BYTES] [--chunk BYTES] [--fallocate]
 *                 [--split K [--stripe BYTES]] [--mmap|--mmap-populate]
 *       the sim device's copy: pwrite of BYTES from one reused, pre-touched chunk
 *       buffer per thread (a staging buffer) into a new memfd (new sim memory), chunks
 *       handed out from a shared counter. --fallocate: the memfd's pages allocated
 *       first (timed apart as "prefault_seconds"). --split K: the memory striped over
 *       K memfds, stripe i (--stripe BYTES, default the chunk) in memfd i % K, as the
 *       sim stripes its allocations (writers to one memfd share its inode lock).
 *       --mmap: one memfd written through a mapping of each chunk's window (memcpy,
 *       then munmap), --mmap-populate: the window populated first.
 *   ceiling readcopy [--threads N] [--chunk BYTES] [--fallocate]
 *                    [--split K [--stripe BYTES]] FILE...
 *       read then copy on the same cores: each thread preads a chunk into its reused
 *       buffer and pwrites it into new sim memory the size of all files (one memfd, or
 *       K striped as by memfd --split, stripes of 2 MiB by default); the most a load
 *       to sim can do where reading and the device copy share the CPUs.
 *   ceiling touch --bytes BYTES [--threads N]
 *       makes BYTES of memory present (MADV_POPULATE_WRITE, N threads, default 2) and
 *       frees it: run just
 *       before a measurement, so the memory that run gets was in use a moment ago.
 *       On a VM whose balloon reports free pages to the host (bench/README.md), memory
 *       left free for about 2 s goes back to the host and costs host page faults on its
 *       next first touch (3 GB: 0.12-0.16 s just after a free, 1.7-3.9 s after 2-5 s).
 *
 * Prints one JSON object: {"what", "threads", "bytes", "seconds", "GBps", ...}.
 * Only libc and pthreads, so it measures the machine, not hoist. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void die(const char *fmt, const char *arg)
{
	fprintf(stderr, "ceiling: ");
	fprintf(stderr, fmt, arg, strerror(errno));
	fputc('\n', stderr);
	exit(1);
}

struct file {
	int fd;
	uint64_t size;
	uint64_t base; /* offset of this file in the --fresh buffer or the memfd */
	const char *path;
};

struct job {
	struct file *files;
	size_t nfiles;
	uint64_t chunk;
	uint64_t nchunks_total;
	uint64_t *first_chunk; /* per file: index of its first chunk */
	atomic_uint_fast64_t next;
	unsigned char *fresh; /* --fresh: destination for everything */
	int direct;
	struct simmem *sim; /* readcopy: each chunk is then written here at base + offset */
};

static void write_all(int fd, const unsigned char *p, uint64_t len, uint64_t off)
{
	while (len > 0) {
		ssize_t n = pwrite(fd, p, len, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			die("%s: write failed: %s", "memfd");
		p += n;
		len -= (uint64_t)n;
		off += (uint64_t)n;
	}
}

/* New sim device memory: nfd memfds, stripe i of it in fd[i % nfd] (backend_sim.c's
 * layout: 2 MiB stripes over one memfd per copy engine; one memfd: plain offsets). */
struct simmem {
	int fd[64];
	unsigned nfd;
	uint64_t stripe;
};

static void simmem_write(const struct simmem *m, const unsigned char *p, uint64_t len, uint64_t off)
{
	for (uint64_t end = off + len; off < end;) {
		uint64_t i = off / m->stripe, in = off % m->stripe;
		uint64_t n = m->stripe - in < end - off ? m->stripe - in : end - off;
		write_all(m->fd[i % m->nfd], p, n, (i / m->nfd) * m->stripe + in);
		p += n;
		off += n;
	}
}

static void *reader(void *arg)
{
	struct job *j = arg;
	unsigned char *buf = NULL;
	if (!j->fresh && posix_memalign((void **)&buf, 4096, j->chunk) != 0)
		die("%s: out of memory: %s", "chunk buffer");
	if (buf)
		memset(buf, 0, j->chunk);
	for (;;) {
		uint64_t c = atomic_fetch_add(&j->next, 1);
		if (c >= j->nchunks_total)
			break;
		size_t f = 0;
		while (f + 1 < j->nfiles && j->first_chunk[f + 1] <= c)
			f++;
		struct file *fl = &j->files[f];
		uint64_t off = (c - j->first_chunk[f]) * j->chunk;
		uint64_t len = fl->size - off < j->chunk ? fl->size - off : j->chunk;
		unsigned char *dst = j->fresh ? j->fresh + fl->base + off : buf;
		uint64_t done = 0;
		while (done < len) {
			uint64_t want = len - done;
			if (j->direct) /* O_DIRECT lengths are whole blocks; the file's end reads
			                  short */
				want = (want + 4095) & ~(uint64_t)4095;
			ssize_t n = pread(fl->fd, dst + done, want, (off_t)(off + done));
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				die("%s: read failed: %s", fl->path);
			done += (uint64_t)n;
		}
		if (j->sim)
			simmem_write(j->sim, dst, len, fl->base + off);
	}
	free(buf);
	return NULL;
}

struct populate {
	unsigned char *p;
	uint64_t size;
	double seconds;
};

/* Makes every page of [p, p + size) present and writable without changing its bytes
 * (safe while readers fill the same pages), in 64 MiB steps from the start, the order
 * the readers fill it. */
static void *populate(void *arg)
{
	struct populate *pp = arg;
	double t0 = now();
	const uint64_t step = 64ull << 20;
	for (uint64_t off = 0; off < pp->size; off += step) {
		uint64_t n = pp->size - off < step ? pp->size - off : step;
		if (madvise(pp->p + off, n, MADV_POPULATE_WRITE) != 0)
			die("%s: madvise failed: %s", "MADV_POPULATE_WRITE");
	}
	pp->seconds = now() - t0;
	return NULL;
}

static uint64_t parse_bytes(const char *s)
{
	char *end;
	double v = strtod(s, &end);
	uint64_t m = 1;
	if (*end == 'K' || *end == 'k')
		m = 1ull << 10;
	else if (*end == 'M')
		m = 1ull << 20;
	else if (*end == 'G')
		m = 1ull << 30;
	if (v <= 0)
		die("bad size %s%s", s);
	return (uint64_t)(v * (double)m);
}

/* New sim memory of size bytes over nfd memfds in stripes of stripe bytes (0: the
 * whole size); --fallocate allocates its pages now and *alloc_s says how long that took. */
static void simmem_new(struct simmem *m, uint64_t size, unsigned nfd, uint64_t stripe,
                       int fallocate_it, double *alloc_s)
{
	if (nfd < 1 || nfd > 64)
		nfd = 1;
	m->nfd = nfd;
	m->stripe = stripe ? stripe : size + 1;
	uint64_t per = nfd == 1 ? size : (size / m->stripe / nfd + 1) * m->stripe;
	*alloc_s = 0;
	for (unsigned i = 0; i < nfd; i++) {
		m->fd[i] = memfd_create("ceiling", MFD_CLOEXEC);
		if (m->fd[i] < 0 || ftruncate(m->fd[i], (off_t)per) != 0)
			die("%s: cannot create: %s", "memfd");
		double t0 = now();
		if (fallocate_it && fallocate(m->fd[i], 0, 0, (off_t)per) != 0)
			die("%s: fallocate failed: %s", "memfd");
		*alloc_s += now() - t0;
	}
}

static void simmem_close(struct simmem *m)
{
	for (unsigned i = 0; i < m->nfd; i++)
		close(m->fd[i]);
}

/* pread and readcopy: read every byte of the files (see the top of the file). */
static int cmd_read(int argc, char **argv, int copy)
{
	unsigned threads = 2;
	uint64_t chunk = 32ull << 20;
	int fresh = 0, direct = 0, huge = 0, prefault = 0, prefault_bg = 0, falloc = 0;
	unsigned split = 1;
	uint64_t stripe = 2ull << 20;
	struct file *files = calloc((size_t)argc, sizeof *files);
	size_t nfiles = 0;
	uint64_t total = 0;
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
			threads = (unsigned)atoi(argv[++i]);
		else if (strcmp(argv[i], "--chunk") == 0 && i + 1 < argc)
			chunk = parse_bytes(argv[++i]);
		else if (strcmp(argv[i], "--fresh") == 0 && !copy)
			fresh = 1;
		else if (strcmp(argv[i], "--direct") == 0)
			direct = 1;
		else if (strcmp(argv[i], "--huge") == 0 && !copy)
			fresh = huge = 1;
		else if (strcmp(argv[i], "--prefault") == 0 && !copy)
			fresh = prefault = 1;
		else if (strcmp(argv[i], "--prefault-bg") == 0 && !copy)
			fresh = prefault_bg = 1;
		else if (strcmp(argv[i], "--fallocate") == 0 && copy)
			falloc = 1;
		else if (strcmp(argv[i], "--split") == 0 && copy && i + 1 < argc)
			split = (unsigned)atoi(argv[++i]);
		else if (strcmp(argv[i], "--stripe") == 0 && copy && i + 1 < argc)
			stripe = parse_bytes(argv[++i]);
		else
			files[nfiles++].path = argv[i];
	}
	if (!nfiles || threads < 1 || (direct && chunk % 4096)) {
		fprintf(stderr,
		        copy ? "usage: ceiling readcopy [--threads N] [--chunk BYTES] "
		               "[--direct] [--fallocate] [--split K [--stripe BYTES]] FILE...\n"
		             : "usage: ceiling pread [--threads N] [--chunk BYTES] [--fresh] "
		               "[--huge] [--prefault|--prefault-bg] [--direct] FILE...\n");
		return 2;
	}
	struct job j = {.files = files, .nfiles = nfiles, .chunk = chunk, .direct = direct};
	j.first_chunk = calloc(nfiles + 1, sizeof *j.first_chunk);
	for (size_t f = 0; f < nfiles; f++) {
		files[f].fd = open(files[f].path, O_RDONLY | (direct ? O_DIRECT : 0));
		if (files[f].fd < 0)
			die("%s: cannot open: %s", files[f].path);
		struct stat st;
		if (fstat(files[f].fd, &st) != 0)
			die("%s: cannot stat: %s", files[f].path);
		files[f].size = (uint64_t)st.st_size;
		files[f].base = total;
		/* Keep each file's part of the --fresh buffer block-aligned for O_DIRECT. */
		total += (files[f].size + 4095) & ~(uint64_t)4095;
		j.first_chunk[f] = j.nchunks_total;
		j.nchunks_total += (files[f].size + chunk - 1) / chunk;
	}
	uint64_t bytes = 0;
	for (size_t f = 0; f < nfiles; f++)
		bytes += files[f].size;
	struct populate pp = {0};
	double prefault_s = 0;
	struct simmem sim;
	if (copy) {
		simmem_new(&sim, total, split, split > 1 ? stripe : 0, falloc, &prefault_s);
		j.sim = &sim;
	}
	if (fresh) {
		/* malloc of this size is an untouched mmap: pages are faulted in by the reads. */
		if (posix_memalign((void **)&j.fresh, 2u << 20, total + 4096) != 0)
			die("%s: out of memory: %s", "fresh buffer");
		/* --huge: transparent huge pages (this kernel's THP mode is often
		 * "madvise"): one fault per 2 MiB instead of per 4 KiB. The --prefault
		 * variants measure hoist's host arena, which uses them too. */
		if ((huge || prefault || prefault_bg) &&
		    madvise(j.fresh, total + 4096, MADV_HUGEPAGE) != 0)
			die("%s: madvise failed: %s", "MADV_HUGEPAGE");
		pp = (struct populate){j.fresh, total + 4096, 0};
		if (prefault) {
			populate(&pp);
			prefault_s = pp.seconds;
		}
	}
	pthread_t *tids = calloc(threads + 1, sizeof *tids);
	double t0 = now();
	if (prefault_bg)
		pthread_create(&tids[threads], NULL, populate, &pp);
	for (unsigned t = 0; t < threads; t++)
		pthread_create(&tids[t], NULL, reader, &j);
	for (unsigned t = 0; t < threads; t++)
		pthread_join(tids[t], NULL);
	double dt = now() - t0;
	if (prefault_bg) {
		/* the readers may finish first: the load is not done until the arena is */
		pthread_join(tids[threads], NULL);
		dt = now() - t0;
		prefault_s = pp.seconds;
	}
	printf("{\"what\": \"%s%s%s%s%s%s%s\", \"threads\": %u, \"chunk\": %llu, \"bytes\": %llu, "
	       "\"seconds\": %.4f, \"GBps\": %.3f, \"prefault_seconds\": %.4f}\n",
	       copy ? "readcopy" : "pread",
	       fresh && !huge && !prefault && !prefault_bg ? "-fresh" : "", huge ? "-huge" : "",
	       prefault ? "-prefault" : "", prefault_bg ? "-prefault-bg" : "",
	       falloc ? "-fallocate" : "", direct ? "-direct" : "", threads,
	       (unsigned long long)chunk, (unsigned long long)bytes, dt, (double)bytes / dt / 1e9,
	       prefault_s);
	for (size_t f = 0; f < nfiles; f++)
		close(files[f].fd);
	if (j.sim)
		simmem_close(j.sim);
	free(j.fresh);
	free(tids);
	free(j.first_chunk);
	free(files);
	return 0;
}

struct fill {
	struct simmem sim;
	uint64_t bytes, chunk;
	int map; /* --mmap: write through a mapping of each chunk's window, not pwrite */
	atomic_uint_fast64_t next;
};

static void *filler(void *arg)
{
	struct fill *f = arg;
	unsigned char *buf;
	if (posix_memalign((void **)&buf, 4096, f->chunk) != 0)
		die("%s: out of memory: %s", "chunk buffer");
	memset(buf, 3, f->chunk); /* a staging buffer: touched long before */
	for (;;) {
		uint64_t off = atomic_fetch_add(&f->next, f->chunk);
		if (off >= f->bytes)
			break;
		uint64_t len = f->bytes - off < f->chunk ? f->bytes - off : f->chunk;
		if (f->map) {
			/* window of whole pages around [off, off + len) of the one memfd */
			uint64_t a = off & ~4095ull, wlen = ((off + len + 4095) & ~4095ull) - a;
			unsigned char *w = mmap(NULL, wlen, PROT_READ | PROT_WRITE, MAP_SHARED,
			                        f->sim.fd[0], (off_t)a);
			if (w == MAP_FAILED)
				die("%s: cannot map: %s", "memfd");
			if (f->map > 1 && madvise(w, wlen, MADV_POPULATE_WRITE) != 0)
				die("%s: cannot populate: %s", "memfd");
			memcpy(w + (off - a), buf, len);
			munmap(w, wlen);
			continue;
		}
		simmem_write(&f->sim, buf, len, off);
	}
	free(buf);
	return NULL;
}

static int cmd_memfd(int argc, char **argv)
{
	unsigned threads = 1, split = 1;
	uint64_t bytes = 1ull << 30, chunk = 32ull << 20, stripe = 0;
	int falloc = 0, map = 0;
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
			threads = (unsigned)atoi(argv[++i]);
		else if (strcmp(argv[i], "--split") == 0 && i + 1 < argc)
			split = (unsigned)atoi(argv[++i]);
		else if (strcmp(argv[i], "--stripe") == 0 && i + 1 < argc)
			stripe = parse_bytes(argv[++i]);
		else if (strcmp(argv[i], "--bytes") == 0 && i + 1 < argc)
			bytes = parse_bytes(argv[++i]);
		else if (strcmp(argv[i], "--chunk") == 0 && i + 1 < argc)
			chunk = parse_bytes(argv[++i]);
		else if (strcmp(argv[i], "--fallocate") == 0)
			falloc = 1;
		else if (strcmp(argv[i], "--mmap") == 0)
			map = 1;
		else if (strcmp(argv[i], "--mmap-populate") == 0)
			map = 2;
		else {
			fprintf(stderr,
			        "usage: ceiling memfd [--threads N] [--bytes BYTES] "
			        "[--chunk BYTES] [--fallocate] [--split K [--stripe BYTES]] "
			        "[--mmap|--mmap-populate]\n");
			return 2;
		}
	}
	if (threads < 1)
		threads = 1;
	if (map)
		split = 1;
	double alloc_s;
	struct fill f = {.bytes = bytes, .chunk = chunk, .map = map};
	simmem_new(&f.sim, bytes, split, split > 1 ? (stripe ? stripe : chunk) : 0, falloc,
	           &alloc_s);
	pthread_t *tids = calloc(threads, sizeof *tids);
	double t0 = now();
	for (unsigned t = 0; t < threads; t++)
		pthread_create(&tids[t], NULL, filler, &f);
	for (unsigned t = 0; t < threads; t++)
		pthread_join(tids[t], NULL);
	double dt = now() - t0;
	printf("{\"what\": \"memfd%s%s\", \"threads\": %u, \"memfds\": %u, \"stripe\": %llu, "
	       "\"chunk\": %llu, \"bytes\": %llu, \"seconds\": %.4f, \"GBps\": %.3f, "
	       "\"prefault_seconds\": %.4f}\n",
	       falloc ? "-fallocate" : "", map ? "-mmap" : "", threads, f.sim.nfd,
	       (unsigned long long)(f.sim.nfd > 1 ? f.sim.stripe : 0), (unsigned long long)chunk,
	       (unsigned long long)bytes, dt, (double)bytes / dt / 1e9, alloc_s);
	simmem_close(&f.sim);
	free(tids);
	return 0;
}

struct copy {
	unsigned char *dst, *src;
	size_t size;
};

static void *copier(void *arg)
{
	struct copy *c = arg;
	memcpy(c->dst, c->src, c->size);
	return NULL;
}

static int cmd_memcpy(int argc, char **argv)
{
	unsigned threads = 1;
	uint64_t bytes = 1ull << 30;
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
			threads = (unsigned)atoi(argv[++i]);
		else if (strcmp(argv[i], "--bytes") == 0 && i + 1 < argc)
			bytes = parse_bytes(argv[++i]);
	}
	if (threads < 1)
		threads = 1;
	unsigned char *src, *dst;
	if (posix_memalign((void **)&src, 4096, bytes) ||
	    posix_memalign((void **)&dst, 4096, bytes))
		die("%s: out of memory: %s", "memcpy buffers");
	memset(src, 1, bytes);
	memset(dst, 2, bytes); /* touched: this measures copying, not page faults */
	struct copy *parts = calloc(threads, sizeof *parts);
	pthread_t *tids = calloc(threads, sizeof *tids);
	size_t per = (size_t)(bytes / threads) & ~(size_t)4095;
	double best = 1e30;
	for (int rep = 0; rep < 5; rep++) {
		double t0 = now();
		for (unsigned t = 0; t < threads; t++) {
			size_t off = per * t;
			size_t size = t + 1 == threads ? (size_t)bytes - off : per;
			parts[t] = (struct copy){dst + off, src + off, size};
			pthread_create(&tids[t], NULL, copier, &parts[t]);
		}
		for (unsigned t = 0; t < threads; t++)
			pthread_join(tids[t], NULL);
		double dt = now() - t0;
		if (dt < best)
			best = dt;
	}
	printf("{\"what\": \"memcpy\", \"threads\": %u, \"bytes\": %llu, \"seconds\": %.4f, "
	       "\"GBps\": %.3f}\n",
	       threads, (unsigned long long)bytes, best, (double)bytes / best / 1e9);
	free(src);
	free(dst);
	free(parts);
	free(tids);
	return 0;
}

static int cmd_touch(int argc, char **argv)
{
	uint64_t bytes = 0;
	unsigned threads = 2;
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--bytes") == 0 && i + 1 < argc)
			bytes = parse_bytes(argv[++i]);
		else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
			threads = (unsigned)atoi(argv[++i]);
	}
	if (bytes == 0 || threads < 1 || threads > 64) {
		fprintf(stderr, "usage: ceiling touch --bytes BYTES [--threads N]\n");
		return 2;
	}
	unsigned char *p =
	        mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		die("%s: cannot map: %s", "touch");
	madvise(p, bytes, MADV_HUGEPAGE); /* advice: the memory is freed right after anyway */
	/* threads populate interleaved 64 MiB pieces: host faults are served in parallel */
	struct populate pp[64];
	pthread_t tids[64];
	uint64_t per = (bytes / threads + (64ull << 20) - 1) & ~((64ull << 20) - 1);
	double t0 = now();
	unsigned started = 0;
	for (unsigned t = 0; t < threads && per * t < bytes; t++, started++) {
		uint64_t off = per * t;
		pp[t] = (struct populate){p + off, bytes - off < per ? bytes - off : per, 0};
		pthread_create(&tids[t], NULL, populate, &pp[t]);
	}
	for (unsigned t = 0; t < started; t++)
		pthread_join(tids[t], NULL);
	double dt = now() - t0;
	munmap(p, bytes);
	printf("{\"what\": \"touch\", \"threads\": %u, \"bytes\": %llu, \"seconds\": %.4f, "
	       "\"GBps\": %.3f}\n",
	       started, (unsigned long long)bytes, dt, (double)bytes / dt / 1e9);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "pread") == 0)
		return cmd_read(argc - 2, argv + 2, 0);
	if (argc >= 2 && strcmp(argv[1], "readcopy") == 0)
		return cmd_read(argc - 2, argv + 2, 1);
	if (argc >= 2 && strcmp(argv[1], "memfd") == 0)
		return cmd_memfd(argc - 2, argv + 2);
	if (argc >= 2 && strcmp(argv[1], "touch") == 0)
		return cmd_touch(argc - 2, argv + 2);
	if (argc >= 2 && strcmp(argv[1], "memcpy") == 0)
		return cmd_memcpy(argc - 2, argv + 2);
	fprintf(stderr, "usage: ceiling pread|readcopy|memcpy|memfd|touch [OPTIONS] (see "
	                "bench/ceiling.c)\n");
	return 2;
}
