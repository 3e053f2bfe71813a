/* ceiling.c - the machine's ceilings for a load, measured without hoist:
 *
 *   ceiling pread THREADS CHUNK FILE...   N threads pread every file, chunk by chunk,
 *                                         into pinned buffers (cuMemHostAlloc when a
 *                                         CUDA driver loads, else mlock'd memory)
 *   ceiling htod BYTES STREAMS            pinned host -> cuda:0 copies of BYTES in
 *                                         32 MiB pieces over STREAMS streams
 *   ceiling readcopy THREADS CHUNK FILE...  the two at once, as a loader would: each
 *                                         thread preads a chunk into one of its two
 *                                         pinned buffers and copies it to cuda:0 on its
 *                                         own stream while it reads the next (the
 *                                         combined read + copy ceiling)
 *
 * The driver is HOIST_CUDA_LIBRARY where set (the fake, for a dry run), else
 * libcuda.so.1.
 * Prints one JSON line: {"what": ..., "bytes": ..., "seconds": ..., "GBps": ...}.
 * Built by bench/gpu/run.sh (and usable on CPU-only machines for `pread`). Uses the
 * same driver declarations as hoist (src/cuda_abi.h). */
#include "cuda_abi.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static struct {
	void *lib;
	hcu_init_fn init;
	hcu_device_get_fn device_get;
	hcu_primary_ctx_retain_fn retain;
	hcu_ctx_set_current_fn set_current;
	hcu_mem_host_alloc_fn host_alloc;
	hcu_mem_alloc_fn alloc;
	hcu_memcpy_htod_async_fn htod;
	hcu_stream_create_fn stream_create;
	hcu_ctx_synchronize_fn sync;
	hcu_event_create_fn event_create;
	hcu_event_record_fn event_record;
	hcu_event_synchronize_fn event_sync;
	hcu_context ctx;
} cu;

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Loads the driver and makes cuda:0's primary context current; 0 on success. */
static int cuda_up(void)
{
	if (cu.ctx)
		return cu.set_current(cu.ctx) == HCU_SUCCESS ? 0 : -1;
	const char *path = getenv("HOIST_CUDA_LIBRARY");
	cu.lib = dlopen(path && *path ? path : "libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
	if (!cu.lib)
		return -1;
	*(void **)&cu.init = dlsym(cu.lib, HCU_SYM_INIT);
	*(void **)&cu.device_get = dlsym(cu.lib, HCU_SYM_DEVICE_GET);
	*(void **)&cu.retain = dlsym(cu.lib, HCU_SYM_PRIMARY_CTX_RETAIN);
	*(void **)&cu.set_current = dlsym(cu.lib, HCU_SYM_CTX_SET_CURRENT);
	*(void **)&cu.host_alloc = dlsym(cu.lib, HCU_SYM_MEM_HOST_ALLOC);
	*(void **)&cu.alloc = dlsym(cu.lib, HCU_SYM_MEM_ALLOC);
	*(void **)&cu.htod = dlsym(cu.lib, HCU_SYM_MEMCPY_HTOD_ASYNC);
	*(void **)&cu.stream_create = dlsym(cu.lib, HCU_SYM_STREAM_CREATE);
	*(void **)&cu.sync = dlsym(cu.lib, HCU_SYM_CTX_SYNCHRONIZE);
	*(void **)&cu.event_create = dlsym(cu.lib, HCU_SYM_EVENT_CREATE);
	*(void **)&cu.event_record = dlsym(cu.lib, HCU_SYM_EVENT_RECORD);
	*(void **)&cu.event_sync = dlsym(cu.lib, HCU_SYM_EVENT_SYNCHRONIZE);
	hcu_device dev;
	if (!cu.init || !cu.device_get || !cu.retain || !cu.set_current || !cu.host_alloc ||
	    !cu.alloc || !cu.htod || !cu.stream_create || !cu.sync || !cu.event_create ||
	    !cu.event_record || !cu.event_sync || cu.init(0) != HCU_SUCCESS ||
	    cu.device_get(&dev, 0) != HCU_SUCCESS || cu.retain(&cu.ctx, dev) != HCU_SUCCESS ||
	    cu.set_current(cu.ctx) != HCU_SUCCESS)
		return -1;
	return 0;
}

static const char *pinned_how = "mlock";

static void *pinned(size_t n)
{
	void *p = NULL;
	if (cuda_up() == 0 && cu.host_alloc(&p, n, HCU_MEMHOSTALLOC_PORTABLE) == HCU_SUCCESS) {
		pinned_how = "cuMemHostAlloc";
		return p;
	}
	if (posix_memalign(&p, 4096, n) != 0)
		return NULL;
	if (mlock(p, n) != 0)
		pinned_how = "pageable (mlock refused)";
	return p;
}

struct job {
	const char *path;
	int fd;
	long long size;
};

static struct job *jobs;
static int njobs;
static size_t chunk;
static atomic_llong next_piece; /* global piece counter over all files */
static long long *piece_start;  /* first piece of each file */
static atomic_llong total_read;

static void *reader(void *arg)
{
	char *buf = arg;
	for (;;) {
		long long k = atomic_fetch_add(&next_piece, 1);
		int f = 0;
		while (f < njobs && k >= piece_start[f + 1])
			f++;
		if (f >= njobs)
			return NULL;
		long long off = (k - piece_start[f]) * (long long)chunk;
		size_t n = (size_t)(jobs[f].size - off < (long long)chunk ? jobs[f].size - off : (long long)chunk);
		size_t done = 0;
		while (done < n) {
			ssize_t r = pread(jobs[f].fd, buf + done, n - done, off + (long long)done);
			if (r <= 0) {
				fprintf(stderr, "ceiling: %s: read at %lld: %s\n", jobs[f].path,
					off + (long long)done, r < 0 ? strerror(errno) : "EOF");
				exit(1);
			}
			done += (size_t)r;
		}
		atomic_fetch_add(&total_read, (long long)n);
	}
}

/* Opens the files and numbers their chunk_bytes pieces, one count over all files. */
static int open_files(size_t chunk_bytes, int nfiles, char **files)
{
	chunk = chunk_bytes;
	njobs = nfiles;
	jobs = calloc((size_t)nfiles, sizeof *jobs);
	piece_start = calloc((size_t)nfiles + 1, sizeof *piece_start);
	for (int i = 0; i < nfiles; i++) {
		struct stat st;
		jobs[i].path = files[i];
		jobs[i].fd = open(files[i], O_RDONLY);
		if (jobs[i].fd < 0 || fstat(jobs[i].fd, &st) != 0) {
			fprintf(stderr, "ceiling: %s: %s\n", files[i], strerror(errno));
			return 1;
		}
		jobs[i].size = st.st_size;
		piece_start[i + 1] =
		        piece_start[i] + (st.st_size + (long long)chunk - 1) / (long long)chunk;
	}
	return 0;
}

static int do_pread(int threads, size_t chunk_bytes, int nfiles, char **files)
{
	if (open_files(chunk_bytes, nfiles, files) != 0)
		return 1;
	pthread_t *t = calloc((size_t)threads, sizeof *t);
	char **bufs = calloc((size_t)threads, sizeof *bufs);
	for (int i = 0; i < threads; i++)
		if (!(bufs[i] = pinned(chunk)))
			return 1;
	double t0 = now();
	for (int i = 0; i < threads; i++)
		pthread_create(&t[i], NULL, reader, bufs[i]);
	for (int i = 0; i < threads; i++)
		pthread_join(t[i], NULL);
	double s = now() - t0;
	long long b = atomic_load(&total_read);
	printf("{\"what\": \"pread %d threads, %zu B chunks, into %s memory\", \"bytes\": %lld, "
	       "\"seconds\": %.4f, \"GBps\": %.2f}\n",
	       threads, chunk, pinned_how, b, s, (double)b / s / 1e9);
	return 0;
}

static int do_htod(long long bytes, int streams)
{
	const size_t piece = 32u << 20;
	if (cuda_up() != 0) {
		fprintf(stderr, "ceiling: htod needs a CUDA driver and GPU\n");
		return 1;
	}
	char *host = NULL;
	if (cu.host_alloc((void **)&host, piece * 4, HCU_MEMHOSTALLOC_PORTABLE) != HCU_SUCCESS)
		return 1;
	memset(host, 1, piece * 4);
	hcu_deviceptr dev;
	if (cu.alloc(&dev, (size_t)bytes) != HCU_SUCCESS) {
		fprintf(stderr, "ceiling: cuMemAlloc of %lld bytes failed\n", bytes);
		return 1;
	}
	hcu_stream *s = calloc((size_t)streams, sizeof *s);
	for (int i = 0; i < streams; i++)
		cu.stream_create(&s[i], HCU_STREAM_NON_BLOCKING);
	/* one warm-up copy */
	cu.htod(dev, host, piece, s[0]);
	cu.sync();
	double t0 = now();
	long long k = 0;
	for (long long off = 0; off < bytes; off += (long long)piece, k++) {
		size_t n = (size_t)(bytes - off < (long long)piece ? bytes - off : (long long)piece);
		if (cu.htod(dev + (hcu_deviceptr)off, host + (k % 4) * piece, n, s[k % streams]) !=
		    HCU_SUCCESS)
			return 1;
	}
	cu.sync();
	double sec = now() - t0;
	printf("{\"what\": \"pinned -> cuda:0, %d streams, 32 MiB copies\", \"bytes\": %lld, "
	       "\"seconds\": %.4f, \"GBps\": %.2f}\n",
	       streams, bytes, sec, (double)bytes / sec / 1e9);
	return 0;
}

/* readcopy: a thread's two pinned buffers, stream and events, and where its copies go. */
struct rc_thread {
	char *buf[2];
	hcu_stream stream;
	hcu_event ev[2];
	bool used[2];
	hcu_deviceptr dev;
	int fail;
};

static void *readcopy_thread(void *arg)
{
	struct rc_thread *t = arg;
	if (cu.set_current(cu.ctx) != HCU_SUCCESS) {
		t->fail = 1;
		return NULL;
	}
	for (int k = 0;; k ^= 1) {
		long long piece = atomic_fetch_add(&next_piece, 1);
		int f = 0;
		while (f < njobs && piece >= piece_start[f + 1])
			f++;
		if (f >= njobs)
			break;
		long long off = (piece - piece_start[f]) * (long long)chunk;
		size_t n = (size_t)(jobs[f].size - off < (long long)chunk ? jobs[f].size - off
		                                                             : (long long)chunk);
		if (t->used[k] && cu.event_sync(t->ev[k]) != HCU_SUCCESS) {
			t->fail = 1;
			break;
		}
		for (size_t done = 0; done < n;) {
			ssize_t r = pread(jobs[f].fd, t->buf[k] + done, n - done, off + (long long)done);
			if (r <= 0) {
				t->fail = 1;
				return NULL;
			}
			done += (size_t)r;
		}
		/* every thread's copies land in one device buffer of one chunk per thread:
		 * the bytes are not kept, only the time counts */
		if (cu.htod(t->dev, t->buf[k], n, t->stream) != HCU_SUCCESS ||
		    cu.event_record(t->ev[k], t->stream) != HCU_SUCCESS) {
			t->fail = 1;
			break;
		}
		t->used[k] = true;
		atomic_fetch_add(&total_read, (long long)n);
	}
	for (int k = 0; k < 2; k++)
		if (t->used[k])
			cu.event_sync(t->ev[k]);
	return NULL;
}

static int do_readcopy(int threads, size_t chunk_bytes, int nfiles, char **files)
{
	if (cuda_up() != 0) {
		fprintf(stderr, "ceiling: readcopy needs a CUDA driver and GPU\n");
		return 1;
	}
	if (open_files(chunk_bytes, nfiles, files) != 0)
		return 1;
	struct rc_thread *t = calloc((size_t)threads, sizeof *t);
	pthread_t *th = calloc((size_t)threads, sizeof *th);
	hcu_deviceptr dev;
	if (cu.alloc(&dev, chunk * (size_t)threads) != HCU_SUCCESS)
		return 1;
	for (int i = 0; i < threads; i++) {
		for (int k = 0; k < 2; k++)
			if (cu.host_alloc((void **)&t[i].buf[k], chunk, HCU_MEMHOSTALLOC_PORTABLE) !=
			            HCU_SUCCESS ||
			    cu.event_create(&t[i].ev[k], 0x2 /* disable timing */) != HCU_SUCCESS)
				return 1;
		if (cu.stream_create(&t[i].stream, HCU_STREAM_NON_BLOCKING) != HCU_SUCCESS)
			return 1;
		t[i].dev = dev + (hcu_deviceptr)(chunk * (size_t)i);
	}
	double t0 = now();
	for (int i = 0; i < threads; i++)
		pthread_create(&th[i], NULL, readcopy_thread, &t[i]);
	int fail = 0;
	for (int i = 0; i < threads; i++) {
		pthread_join(th[i], NULL);
		fail |= t[i].fail;
	}
	double s = now() - t0;
	if (fail) {
		fprintf(stderr, "ceiling: readcopy: a read or a copy failed\n");
		return 1;
	}
	long long b = atomic_load(&total_read);
	printf("{\"what\": \"pread %d threads, %zu B chunks, two pinned buffers each, copied "
	       "to cuda:0 on each thread's stream\", \"bytes\": %lld, \"seconds\": %.4f, "
	       "\"GBps\": %.2f}\n",
	       threads, chunk, b, s, (double)b / s / 1e9);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 5 && strcmp(argv[1], "readcopy") == 0)
		return do_readcopy(atoi(argv[2]), (size_t)strtoull(argv[3], NULL, 10), argc - 4,
		                   argv + 4);
	if (argc >= 5 && strcmp(argv[1], "pread") == 0)
		return do_pread(atoi(argv[2]), (size_t)strtoull(argv[3], NULL, 10), argc - 4, argv + 4);
	if (argc == 4 && strcmp(argv[1], "htod") == 0)
		return do_htod(strtoll(argv[2], NULL, 10), atoi(argv[3]));
	fprintf(stderr, "usage: ceiling pread|readcopy THREADS CHUNK FILE... | ceiling htod BYTES "
	                "STREAMS\n");
	return 2;
}
