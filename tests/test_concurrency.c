/* test_concurrency.c - several loads at once in one process: threads, each with its
 * own checkpoint handle, plan and model, loading to cpu (pageable, O_DIRECT, mapped)
 * and to their own sim devices, every byte checked; and a stress run of tiny chunks
 * and many reader threads per load, several loads at once, which `make tsan` runs
 * under ThreadSanitizer. Afterwards the process holds what it held before. Where a
 * CUDA driver loads (a GPU, or the fake driver of tests/fakecuda), the same with
 * every thread loading onto cuda:0.
 *
 * (Loads from Python threads come with the binding.) */
#include "fixtures.h"
#include "resources.h"
#include "test.h"

#include <pthread.h>

#define MAX_WORKERS 8

struct worker {
	const char *dir;
	struct hoist_options opt;
	struct hoist_sim_options sim; /* this worker's own sim devices */
	int rounds;
	int loads; /* done */
	pthread_t thread;
};

/* Opens, plans, loads, checks every byte, frees: `rounds` times. A failure ends the
 * test's process (FAIL), which is what a wrong byte on any thread should do. */
static void *worker_run(void *arg)
{
	struct worker *w = arg;
	w->opt.sim = &w->sim;
	for (int r = 0; r < w->rounds; r++) {
		struct hoist_checkpoint *ck;
		struct hoist_model *m;
		CHECK_OK(hoist_checkpoint_open(w->dir, NULL, &ck));
		CHECK_OK(test_load(ck, &w->opt, &m));
		check_gen(m, ck);
		hoist_model_free(m);
		hoist_checkpoint_close(ck);
		w->loads++;
	}
	return NULL;
}

static void run_workers(struct worker *w, size_t n)
{
	struct test_held before;
	test_held_now(&before);
	for (size_t i = 0; i < n; i++)
		CHECK_EQ_INT(pthread_create(&w[i].thread, NULL, worker_run, &w[i]), 0);
	for (size_t i = 0; i < n; i++) {
		CHECK_EQ_INT(pthread_join(w[i].thread, NULL), 0);
		CHECK_EQ_INT(w[i].loads, w[i].rounds);
	}
	test_held_check(&before, "after the threads' loads");
}

/* Each worker's checkpoint, of its own shape: i + 1 shards. */
static const char *worker_dir(size_t i, uint64_t big)
{
	static char dirs[MAX_WORKERS][4096];
	snprintf(dirs[i], sizeof dirs[i], "%s", test_path(i == 0 ? "w0" : "w"));
	snprintf(dirs[i] + strlen(dirs[i]), sizeof dirs[i] - strlen(dirs[i]), "%zu", i);
	gen_checkpoint(dirs[i], 1 + i % 3, 6 + 2 * i, big + 1000 * i);
	return dirs[i];
}

TEST_TIMEOUT(concurrency_loads_in_threads, 180)
{
	struct worker w[6];
	memset(w, 0, sizeof w);
	char map[4096];
	snprintf(map, sizeof map, "%s", test_path("map.json"));
	const char *json = "{\"layers.1.\": \"disk\", \"\": \"cpu\"}";
	test_write_file(map, json, strlen(json));
	for (size_t i = 0; i < TEST_ARRAY_SIZE(w); i++) {
		w[i].dir = worker_dir(i, 60000);
		w[i].rounds = 4;
		w[i].opt.threads = 2 + (unsigned)i;
		w[i].opt.chunk_bytes = 65536u << (i % 3);
	}
	w[0].opt.device = "cpu";
	w[1].opt.device = "sim:0";
	w[1].sim.bytes_per_sec = 50e6;
	w[2].opt.device = "cpu";
	w[2].opt.direct = 1;
	w[3].opt.device = "sim";
	w[3].sim.devices = 2;
	w[3].opt.device_map = "balanced";
	w[4].opt.device = "cpu";
	w[4].opt.host_memory = HOIST_HOST_MMAP;
	w[5].opt.device = "cpu";
	w[5].opt.device_map = map; /* disk tensors read back from their files */
	run_workers(w, TEST_ARRAY_SIZE(w));
}

/* Tiny chunks (4 KiB) through a tiny ring, 16 readers per load, four loads at once:
 * the most hand-offs between readers, copy engines and the calling threads per byte.
 * Under `make tsan` this is the race detector's run. */
TEST_TIMEOUT(concurrency_stress_tiny_chunks_many_threads, 300)
{
	struct worker w[4];
	memset(w, 0, sizeof w);
	for (size_t i = 0; i < TEST_ARRAY_SIZE(w); i++) {
		w[i].dir = worker_dir(i, 20000);
		w[i].rounds = 4;
		w[i].opt.threads = 16;
		w[i].opt.chunk_bytes = 4096;
		w[i].opt.staging_bytes = 16384;
	}
	w[0].opt.device = "sim:0";
	w[1].opt.device = "sim";
	w[1].sim.devices = 3;
	w[1].opt.device_map = "balanced";
	w[2].opt.device = "cpu";
	w[3].opt.device = "cpu";
	w[3].opt.direct = 1;
	run_workers(w, TEST_ARRAY_SIZE(w));
}

/* Four threads loading onto the same GPU at once, each with its own handles (and so
 * its own device arena, staging ring and streams), and one onto cpu beside them. */
TEST_TIMEOUT(concurrency_loads_to_cuda_in_threads, 300)
{
	struct hoist_device_info info[HOIST_MAX_DEVICES];
	size_t n;
	if (hoist_device_list(HOIST_DEVICE_CUDA, NULL, info, HOIST_MAX_DEVICES, &n) != HOIST_OK)
		SKIP("%s", hoist_errmsg());
	struct worker w[5];
	memset(w, 0, sizeof w);
	for (size_t i = 0; i < TEST_ARRAY_SIZE(w); i++) {
		w[i].dir = worker_dir(i, 300000);
		w[i].rounds = 3;
		w[i].opt.device = i < 4 ? "cuda:0" : "cpu";
		w[i].opt.threads = 4;
		w[i].opt.chunk_bytes = i % 2 ? 65536 : 0;
		w[i].opt.staging_bytes = i % 2 ? 262144 : 0;
	}
	w[3].opt.host_memory = HOIST_HOST_PINNED;
	w[4].opt.host_memory = HOIST_HOST_PINNED; /* pinned cpu arena, from the driver */
	run_workers(w, TEST_ARRAY_SIZE(w));
}
