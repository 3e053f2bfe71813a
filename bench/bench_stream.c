/* bench_stream.c - a speed MODEL of hoist's stream into one GPU, on a machine without
 * one: the real stream code (stream.c) and the real CUDA backend (backend_cuda.c)
 * drive the strict fake driver (tests/fakecuda), whose copies take the time the H200's
 * measured pinned host -> GPU bandwidth gives them, fed by readers whose reads take the
 * time a model of the H200's page-cache reads gives them. It predicts how close the
 * pipeline's design comes to min(read, copy); it measures no GPU.
 *
 * The layout is the Qwen2-VL-7B checkpoint's (tests/data/qwen2-vl-7b/shard-headers.json:
 * 730 tensors, 16.58 GB in 5 shards). No byte is read or moved: the pacing source
 * sleeps for each read instead of copying, and the fake runs with FAKECUDA_MOVE_BYTES=0
 * (its copies take their time and move nothing), so 16.6 GB cost neither memory nor
 * this machine's memcpy speed.
 *
 * Figures (testdata/README.md, one H200 machine): page cache -> pinned memory with 16
 * pread threads 38.7-42.5 GB/s (40.6 taken); one thread's memcpy 10.2 GB/s; pinned
 * host -> GPU 55.4 GB/s. The read model: k readers reading at once share
 * B(k) = Bmax (1 - exp(-k r1 / Bmax)), r1 = 10.2 GB/s, Bmax chosen so that
 * B(16) = 40.6 GB/s; the curve's shape between the two measured points is assumed.
 *
 * Time is dilated (DILATION, default 10: every rate divided by it, every latency
 * multiplied), so that sleep and wake-up jitter on a shared VM stays small against
 * each read; ratios do not depend on it.
 *
 * usage: bench_stream [RUNS]   (needs HOIST_CUDA_LIBRARY or LD_LIBRARY_PATH pointing at
 * the fake, and HOIST_TEST_DATA or the working directory at the repository root) */
#include "bench.h"
#include "registry.h"
#include "stream.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define GB 1e9
#define READ_ONE 10.2e9  /* one thread's memcpy on the H200 machine */
#define READ_16 40.6e9   /* 16 pread threads, page cache -> pinned (38.7-42.5) */
#define COPY_BW 55.4e9   /* pinned host -> GPU */
#define COPY_LAT_US 10.0 /* a copy's least time (submission and completion) */
#define READERS 16       /* the H200 machine's cores: hoist's default min(16, 2 x cores) */
#define QUANTUM (1u << 20)

static double dilation = 10;
static double bmax; /* B(infinity) of the read model, bytes/s (undilated) */

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void sleep_until(double t)
{
	struct timespec ts = {(time_t)t, (long)((t - (double)(time_t)t) * 1e9)};
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

/* B(k): the page-cache read rate k readers share (bytes/s, undilated). */
static double read_curve(int k)
{
	return bmax * (1 - exp(-(double)k * READ_ONE / bmax));
}

static void solve_bmax(void)
{
	double lo = READ_16, hi = 4 * READ_16;
	for (int i = 0; i < 100; i++) {
		bmax = (lo + hi) / 2;
		if (read_curve(16) < READ_16)
			lo = bmax;
		else
			hi = bmax;
	}
}

/* ---- the pacing source: reads that take the model's time and copy nothing ------- */

static atomic_int active_reads;

static ssize_t pace_read_at(struct hoist__source *src, void *buf, size_t n, uint64_t offset)
{
	(void)src, (void)buf, (void)offset;
	atomic_fetch_add(&active_reads, 1);
	double t = now();
	for (size_t done = 0; done < n;) {
		size_t q = n - done < QUANTUM ? n - done : QUANTUM;
		int k = atomic_load(&active_reads);
		double rate = read_curve(k) / k / dilation;
		t += (double)q / rate;
		sleep_until(t);
		done += q;
	}
	atomic_fetch_sub(&active_reads, 1);
	return (ssize_t)n;
}

static void pace_close(struct hoist__source *src)
{
	free(src);
}

static const struct hoist__source_methods pace_methods = {
        .version = 1,
        .read_at = pace_read_at,
        .close = pace_close,
};

/* ---- the 7B layout --------------------------------------------------------------- */

struct layout {
	size_t nshards;
	char names[8][64];
	uint64_t sizes[8];
	struct hoist__segment *segs; /* dst is the offset in the arena until allocated */
	size_t nsegs;
	uint64_t arena, bytes;
};

static int cmp_seg(const void *a, const void *b)
{
	const struct hoist__segment *x = a, *y = b;
	if (x->source != y->source)
		return x->source < y->source ? -1 : 1;
	return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static void load_layout(struct layout *L)
{
	const char *dir = getenv("HOIST_TEST_DATA") ? getenv("HOIST_TEST_DATA") : "tests/data";
	char path[4096];
	snprintf(path, sizeof path, "%s/qwen2-vl-7b/shard-headers.json", dir);
	json_error_t err;
	json_t *root = json_load_file(path, 0, &err);
	if (!root) {
		fprintf(stderr, "bench_stream: %s: %s\n", path, err.text);
		exit(1);
	}
	memset(L, 0, sizeof *L);
	size_t cap = 1024;
	L->segs = calloc(cap, sizeof *L->segs);
	const char *fname;
	json_t *v;
	json_object_foreach(root, fname, v)
	{
		size_t s = L->nshards++;
		snprintf(L->names[s], sizeof L->names[s], "%s", fname);
		L->sizes[s] = (uint64_t)json_integer_value(json_object_get(v, "file_size"));
		const char *htext = json_string_value(json_object_get(v, "header"));
		json_t *h = json_loads(htext, 0, &err);
		uint64_t base = 8 + strlen(htext);
		const char *tname;
		json_t *t;
		json_object_foreach(h, tname, t)
		{
			json_t *offs = json_object_get(t, "data_offsets");
			if (!offs)
				continue;
			uint64_t a = (uint64_t)json_integer_value(json_array_get(offs, 0));
			uint64_t b = (uint64_t)json_integer_value(json_array_get(offs, 1));
			if (L->nsegs == cap)
				L->segs = realloc(L->segs, (cap *= 2) * sizeof *L->segs);
			L->segs[L->nsegs++] = (struct hoist__segment){
			        .source = (uint32_t)s, .offset = base + a, .length = b - a};
		}
		json_decref(h);
	}
	json_decref(root);
	qsort(L->segs, L->nsegs, sizeof *L->segs, cmp_seg);
	for (size_t i = 0; i < L->nsegs; i++) {
		L->segs[i].dst = L->arena;
		L->segs[i].tag = i;
		L->arena += (L->segs[i].length + 255) / 256 * 256;
		L->bytes += L->segs[i].length;
	}
}

/* ---- runs ------------------------------------------------------------------------ */

static void die(const char *what)
{
	fprintf(stderr, "bench_stream: %s: %s\n", what, hoist_errmsg());
	exit(1);
}

struct reader_arg {
	struct hoist__source *src;
	uint64_t bytes, chunk;
	atomic_uint_fast64_t *next;
};

static void *ceiling_reader(void *arg)
{
	struct reader_arg *a = arg;
	for (;;) {
		uint64_t at = atomic_fetch_add(a->next, a->chunk);
		if (at >= a->bytes)
			break;
		uint64_t n = a->bytes - at < a->chunk ? a->bytes - at : a->chunk;
		pace_read_at(a->src, NULL, (size_t)n, at);
	}
	return NULL;
}

/* The read ceiling: READERS pacing readers, 8 MiB reads, no copies. */
static double read_ceiling(uint64_t bytes)
{
	struct hoist__source src = {.methods = &pace_methods};
	atomic_uint_fast64_t next = 0;
	struct reader_arg a = {&src, bytes, 8u << 20, &next};
	pthread_t th[READERS];
	double t0 = now();
	for (int i = 0; i < READERS; i++)
		pthread_create(&th[i], NULL, ceiling_reader, &a);
	for (int i = 0; i < READERS; i++)
		pthread_join(th[i], NULL);
	return now() - t0;
}

/* The copy ceiling: copies of one pinned 8 MiB buffer kept queued on every stream. */
static double copy_ceiling(struct hoist__dev *dev, uint64_t arena, uint64_t bytes)
{
	const size_t piece = 8u << 20;
	void *buf;
	const char *how;
	if (dev->ops->host_alloc(dev, piece, &buf, &how) != HOIST_OK)
		die("pinned buffer");
	double t0 = now();
	unsigned stream = 0;
	for (uint64_t at = 0; at < bytes; at += piece) {
		size_t n = (size_t)(bytes - at < piece ? bytes - at : piece);
		if (dev->ops->copy_async(dev, stream, arena + at, buf, n) != HOIST_OK)
			die("copy");
		stream = (stream + 1) % dev->streams;
	}
	if (dev->ops->synchronize(dev) != HOIST_OK)
		die("synchronize");
	double t = now() - t0;
	dev->ops->host_free(dev, buf, piece);
	return t;
}

static double stream_once(struct layout *L, struct hoist__dev *dev, uint64_t arena, uint64_t chunk,
                          uint64_t staging, struct hoist__stream_stats *out)
{
	struct hoist__source *srcs[8];
	for (size_t s = 0; s < L->nshards; s++) {
		struct hoist__source *p = calloc(1, sizeof *p);
		*p = (struct hoist__source){.methods = &pace_methods,
		                            .path = L->names[s],
		                            .size = L->sizes[s],
		                            .align = 1};
		srcs[s] = p;
	}
	struct hoist__segment *segs = malloc(L->nsegs * sizeof *segs);
	for (size_t i = 0; i < L->nsegs; i++) {
		segs[i] = L->segs[i];
		segs[i].dst += arena;
	}
	struct hoist__dev *targets[1] = {dev};
	struct hoist__job job = {
	        .sources = srcs,
	        .nsources = L->nshards,
	        .targets = targets,
	        .ntargets = 1,
	        .segments = segs,
	        .nsegments = L->nsegs,
	        .threads = READERS,
	        .chunk_bytes = chunk,
	        .staging_bytes = staging,
	};
	struct hoist__stream *s;
	if (hoist__stream_prepare(&job, &s) != HOIST_OK)
		die("prepare");
	double t0 = now();
	if (hoist__stream_run(s) != HOIST_OK)
		die("run");
	if (dev->ops->synchronize(dev) != HOIST_OK)
		die("synchronize");
	double t = now() - t0;
	*out = *hoist__stream_stats(s);
	hoist__stream_free(s);
	free(segs);
	for (size_t i = 0; i < L->nshards; i++)
		pace_close(srcs[i]);
	return t;
}

static void setenv_num(const char *name, double v)
{
	char b[64];
	snprintf(b, sizeof b, "%.0f", v);
	setenv(name, b, 1);
}

int main(int argc, char **argv)
{
	int runs = argc > 1 ? atoi(argv[1]) : 3;
	if (runs < 1 || runs > 50)
		runs = 3;
	if (getenv("BENCH_DILATION"))
		dilation = atof(getenv("BENCH_DILATION"));
	if (!(dilation >= 1 && dilation <= 1000))
		dilation = 10;
	solve_bmax();
	setenv("FAKECUDA_DEVICES", "1", 1);
	setenv("FAKECUDA_MEMORY", "141G", 1);
	setenv("FAKECUDA_MOVE_BYTES", "0", 1);
	setenv_num("FAKECUDA_BANDWIDTH", COPY_BW / dilation);
	setenv_num("FAKECUDA_COPY_LATENCY_US", COPY_LAT_US * dilation);

	struct layout L;
	load_layout(&L);
	struct hoist__dev *dev;
	if (hoist__device_open((struct hoist_device){HOIST_DEVICE_CUDA, 0}, NULL, &dev) != HOIST_OK)
		die("cuda:0 on the fake driver (HOIST_CUDA_LIBRARY / LD_LIBRARY_PATH)");
	uint64_t arena;
	if (dev->ops->alloc(dev, L.arena, &arena) != HOIST_OK)
		die("arena");

	double rc[50], cc[50];
	struct {
		const char *what;
		uint64_t chunk, staging;
		double t[50];
		struct hoist__stream_stats st;
	} cfg[] = {
	        {"hoist stream, default options (ring 256 MiB, chunk 32 MiB before it is cut)", 0, 0, {0}, {0}},
	        {"hoist stream, chunk 32 MiB, ring 1 GiB", 32u << 20, 1u << 30, {0}, {0}},
	};
	const size_t ncfg = sizeof cfg / sizeof cfg[0];
	/* interleaved rounds: each round runs every case once */
	for (int r = 0; r < runs; r++) {
		rc[r] = read_ceiling(L.bytes);
		cc[r] = copy_ceiling(dev, arena, L.bytes);
		for (size_t c = 0; c < ncfg; c++)
			cfg[c].t[r] = stream_once(&L, dev, arena, cfg[c].chunk, cfg[c].staging,
			                          &cfg[c].st);
	}
	double read_s = bench_median(rc, runs), copy_s = bench_median(cc, runs);
	double b = (double)L.bytes;
	double read_bw = b / read_s * dilation, copy_bw = b / copy_s * dilation;
	double floor_bw = read_bw < copy_bw ? read_bw : copy_bw;
	printf("Stream model: Qwen2-VL-7B layout (%zu tensors, %.2f GB, %zu shards) to cuda:0 on "
	       "the fake driver;\n%d readers; time dilated %.0fx; medians of %d interleaved "
	       "rounds. Figures at the H200's scale.\n",
	       L.nsegs, b / GB, L.nshards, READERS, dilation, runs);
	printf("Read model B(k) = %.1f (1 - exp(-k %.1f / %.1f)) GB/s: B(1) %.1f, B(4) %.1f, "
	       "B(8) %.1f, B(16) %.1f GB/s; copy %.1f GB/s.\n\n",
	       bmax / GB, READ_ONE / GB, bmax / GB, read_curve(1) / GB, read_curve(4) / GB,
	       read_curve(8) / GB, read_curve(16) / GB, COPY_BW / GB);
	printf("| what | seconds | GB/s | of min(read, copy) | slots x bytes | readers |\n");
	printf("| --- | ---: | ---: | ---: | --- | ---: |\n");
	printf("| read ceiling: %d pacing readers, 8 MiB reads, no copies | %.3f | %.2f | - | - "
	       "| %d |\n",
	       READERS, read_s / dilation, read_bw / GB, READERS);
	printf("| copy ceiling: fake driver, 8 MiB copies over %u streams | %.3f | %.2f | - | - "
	       "| - |\n",
	       dev->streams, copy_s / dilation, copy_bw / GB);
	for (size_t c = 0; c < ncfg; c++) {
		double t = bench_median(cfg[c].t, runs);
		double bw = b / t * dilation;
		printf("| %s | %.3f | %.2f | %.2f | %zu x %.1f MiB | %u |\n", cfg[c].what,
		       t / dilation, bw / GB, bw / floor_bw, cfg[c].st.slots,
		       (double)cfg[c].st.slot_bytes / (1 << 20), cfg[c].st.readers);
	}
	dev->ops->free(dev, arena, L.arena);
	dev->ops->close(dev);
	free(L.segs);
	return 0;
}
