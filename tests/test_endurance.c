/* test_endurance.c - open, plan, load and free, over and over, for a bounded time
 * (HOIST_ENDURANCE_SECONDS, 20 by default; minutes by hand): every byte checked each
 * time, the process's descriptors, threads and sim allocations back where they began
 * after every round, and its memory flat once warm: VmRSS no higher at the end than
 * after the warm-up by more than a few MiB, and the peak of the rounds after the
 * warm-up (VmHWM, reset then) no higher than the warm-up's own peak, so no round
 * holds more than the first ones did. A leak of an
 * arena (a few MB) shows within a round; LeakSanitizer (`make asan`) finds smaller
 * ones. The memory figures are skipped under the sanitizers, whose shadow memory and
 * quarantine grow on their own.
 *
 * Each round ends with malloc_trim(0): this checkpoint's arenas (a few MB) are below
 * glibc's mmap threshold, which rises to the largest block freed, so they come from
 * the heap, and the rounds' mix of sizes and threads leaves free memory resident
 * there (measured: 4 to 12 MiB for one kind of load repeated, about 160 MiB and
 * still rising after 10 s of the six kinds interleaved, none of it allocated:
 * LeakSanitizer finds nothing). Trimming gives those free pages back, so VmRSS
 * counts what is held. Real arenas and the default ring are far above the threshold
 * and go back to the system when freed. */
#include "fixtures.h"
#include "resources.h"
#include "test.h"

#include <malloc.h>
#include <time.h>
#include <unistd.h>

/* Slack for the allocator's own caches and fragmentation, in KiB. */
#define FLAT_SLACK_KB (6 * 1024)

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static unsigned seconds_to_run(void)
{
	const char *e = getenv("HOIST_ENDURANCE_SECONDS");
	unsigned s = e && *e ? (unsigned)strtoul(e, NULL, 10) : 20;
	return s ? s : 1;
}

TEST(endurance_open_load_free_flat)
{
	unsigned seconds = seconds_to_run();
	alarm(seconds + 120); /* the runner's timeout, for a longer run */
	const char *dir = test_path("gen");
	gen_checkpoint(dir, 3, 12, 150000);
	char map[4096];
	snprintf(map, sizeof map, "%s", test_path("map.json"));
	const char *json = "{\"layers.2.\": \"disk\", \"layers.4.\": \"cpu\", \"\": 0}";
	test_write_file(map, json, strlen(json));
	struct hoist_sim_options sim = {.devices = 2};
	struct hoist_options opts[] = {
	        {.device = "cpu"},
	        {.device = "sim:0", .chunk_bytes = 131072, .threads = 3},
	        {.device = "cpu", .direct = 1, .chunk_bytes = 65536},
	        {.device = "sim", .device_map = map},        /* sim:0, cpu and disk */
	        {.device = "sim", .device_map = "balanced"}, /* sim:0 and sim:1 */
	        {.device = "cpu", .host_memory = HOIST_HOST_MMAP},
	};
	struct test_held before;
	test_held_now(&before);
	bool memory = !test_sanitized();
	double start = now_s(), warm_at = start + seconds / 5.0;
	uint64_t rss_warm = 0, hwm_warm = 0;
	unsigned rounds = 0, after_warm = 0;
	while (rounds < 2 * TEST_ARRAY_SIZE(opts) || now_s() - start < seconds) {
		struct hoist_options opt = opts[rounds % TEST_ARRAY_SIZE(opts)];
		opt.sim = &sim;
		struct hoist_checkpoint *ck;
		struct hoist_model *m;
		CHECK_OK(hoist_checkpoint_open(dir, NULL, &ck));
		CHECK_OK(test_load(ck, &opt, &m));
		check_gen(m, ck);
		hoist_model_free(m);
		hoist_checkpoint_close(ck);
		malloc_trim(0);
		char when[64];
		snprintf(when, sizeof when, "after round %u", rounds);
		test_held_check(&before, when);
		rounds++;
		/* the warm-up: every kind of load at least twice, a fifth of the time */
		if (!rss_warm && rounds >= 2 * TEST_ARRAY_SIZE(opts) && now_s() >= warm_at &&
		    memory) {
			/* the warm-up's peak, then a fresh peak for the rounds after it */
			rss_warm = test_status_kb("VmRSS");
			hwm_warm = test_status_kb("VmHWM");
			if (!test_reset_hwm())
				SKIP("cannot reset VmHWM (/proc/self/clear_refs)");
		} else if (rss_warm) {
			after_warm++;
		}
	}
	test_check_no_leaks();
	if (!memory) {
		printf("    %u rounds; memory figures not checked under a sanitizer\n", rounds);
		return;
	}
	CHECK(after_warm >= TEST_ARRAY_SIZE(opts));
	uint64_t rss = test_status_kb("VmRSS"), hwm = test_status_kb("VmHWM");
	printf("    %u rounds (%u after the warm-up): VmRSS %llu -> %llu KiB, VmHWM %llu -> %llu "
	       "KiB\n",
	       rounds, after_warm, (unsigned long long)rss_warm, (unsigned long long)rss,
	       (unsigned long long)hwm_warm, (unsigned long long)hwm);
	if (rss > rss_warm + FLAT_SLACK_KB)
		FAIL("VmRSS grew from %llu to %llu KiB over %u rounds",
		     (unsigned long long)rss_warm, (unsigned long long)rss, after_warm);
	if (hwm > hwm_warm + FLAT_SLACK_KB)
		FAIL("VmHWM grew from %llu to %llu KiB over %u rounds",
		     (unsigned long long)hwm_warm, (unsigned long long)hwm, after_warm);
}
