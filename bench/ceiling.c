/* ceiling.c - what this machine allows, measured the way a loader would use it:
 *
 *   ceiling pread [--threads N] [--chunk BYTES] [--fresh] [--direct] FILE...
 *       reads every byte of the files with N threads (chunks handed out from a
 *       shared counter). Default destination: one reused chunk buffer per thread
 *       (page cache -> user memory, as into a staging ring). --fresh: one buffer the
 *       size of all files, untouched before (first-touch page faults included, as
 *       a load into a new host arena pays). --huge: --fresh with MADV_HUGEPAGE.
 *       --direct: O_DIRECT.
 *   ceiling memcpy [--threads N] [--bytes BYTES]
 *       copies BYTES between two pre-touched buffers, split over N threads; best of 5.
 *
 * Prints one JSON object: {"what", "threads", "bytes", "seconds", "GBps"}.
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
	uint64_t base; /* offset of this file in the --fresh buffer */
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
};

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
	}
	free(buf);
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

static int cmd_pread(int argc, char **argv)
{
	unsigned threads = 2;
	uint64_t chunk = 32ull << 20;
	int fresh = 0, direct = 0, huge = 0;
	struct file *files = calloc((size_t)argc, sizeof *files);
	size_t nfiles = 0;
	uint64_t total = 0;
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
			threads = (unsigned)atoi(argv[++i]);
		else if (strcmp(argv[i], "--chunk") == 0 && i + 1 < argc)
			chunk = parse_bytes(argv[++i]);
		else if (strcmp(argv[i], "--fresh") == 0)
			fresh = 1;
		else if (strcmp(argv[i], "--direct") == 0)
			direct = 1;
		else if (strcmp(argv[i], "--huge") == 0)
			fresh = huge = 1;
		else
			files[nfiles++].path = argv[i];
	}
	if (!nfiles || threads < 1 || (direct && chunk % 4096)) {
		fprintf(stderr, "usage: ceiling pread [--threads N] [--chunk BYTES] [--fresh] "
		                "[--huge] [--direct] FILE...\n");
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
	if (fresh) {
		/* malloc of this size is an untouched mmap: pages are faulted in by the reads. */
		if (posix_memalign((void **)&j.fresh, 2u << 20, total + 4096) != 0)
			die("%s: out of memory: %s", "fresh buffer");
		/* --huge: transparent huge pages (this kernel's THP mode is often
		 * "madvise"): one fault per 2 MiB instead of per 4 KiB. */
		if (huge && madvise(j.fresh, total + 4096, MADV_HUGEPAGE) != 0)
			die("%s: madvise failed: %s", "MADV_HUGEPAGE");
	}
	pthread_t *tids = calloc(threads, sizeof *tids);
	double t0 = now();
	for (unsigned t = 0; t < threads; t++)
		pthread_create(&tids[t], NULL, reader, &j);
	for (unsigned t = 0; t < threads; t++)
		pthread_join(tids[t], NULL);
	double dt = now() - t0;
	printf("{\"what\": \"pread%s%s%s\", \"threads\": %u, \"chunk\": %llu, \"bytes\": %llu, "
	       "\"seconds\": %.4f, \"GBps\": %.3f}\n",
	       fresh ? "-fresh" : "", huge ? "-huge" : "", direct ? "-direct" : "", threads,
	       (unsigned long long)chunk, (unsigned long long)bytes, dt, (double)bytes / dt / 1e9);
	for (size_t f = 0; f < nfiles; f++)
		close(files[f].fd);
	free(j.fresh);
	free(tids);
	free(j.first_chunk);
	free(files);
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

int main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "pread") == 0)
		return cmd_pread(argc - 2, argv + 2);
	if (argc >= 2 && strcmp(argv[1], "memcpy") == 0)
		return cmd_memcpy(argc - 2, argv + 2);
	fprintf(stderr, "usage: ceiling pread|memcpy [OPTIONS] (see bench/ceiling.c)\n");
	return 2;
}
