/* test_bench.c - `hoist bench` and predictions from its figures: what it measures and
 * where it keeps it, plans predicting from the kept figures, storage figures kept per
 * file system, a damaged file, a load held against its prediction, and the GPU links
 * against the fake driver (with a GPU, and with none). Asserts contents, never
 * timings: figures are checked for presence and for the arithmetic made of them. */
#include "fakecuda_check.h"
#include "test.h"
#include "fixtures.h"

#include "figures.h"

#include <dirent.h>
#include <jansson.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *synth(double scale, uint64_t seed)
{
	struct hoist_synth_options so = {.scale = scale, .seed = seed};
	const char *dir = test_path("ckpt");
	CHECK_OK(hoist_synth_write(dir, &so));
	return dir;
}

static const json_t *figure_of(const json_t *figs, const char *link, const char *device)
{
	size_t i;
	json_t *f;
	json_array_foreach(figs, i, f)
	{
		if (strcmp(json_string_value(json_object_get(f, "link")), link) == 0 &&
		    strcmp(json_string_value(json_object_get(f, "device")), device) == 0)
			return f;
	}
	return NULL;
}

static double rel(double a, double b)
{
	return fabs(a - b) / fmax(fabs(b), 1e-300);
}

TEST_TIMEOUT(bench_measures_keeps_and_plans_predict_from_it, 120)
{
	test_cuda_absent(); /* the GPU links' reasons below are a machine's without a driver */
	const char *cache = test_own_cache();
	const char *dir = synth(0.02, 3);
	char *out;
	int rc = test_run(&out, "%s bench %s --device cpu --json 2>/dev/null", test_hoist_bin(),
	                  dir);
	if (rc != 0)
		FAIL("hoist bench exited %d: %s", rc, out);
	json_error_t jerr;
	json_t *j = json_loads(out, 0, &jerr);
	if (!j)
		FAIL("not JSON: %s: %s", jerr.text, out);
	char file[4096];
	CHECK_OK(hoist_bench_path(file, sizeof file));
	CHECK(strncmp(file, cache, strlen(cache)) == 0);
	CHECK(strstr(file, "/hoist/bench-") && strstr(file, ".json"));
	CHECK_STR(json_string_value(json_object_get(j, "figures_file")), file);
	CHECK(access(file, R_OK) == 0);

	const json_t *figs = json_object_get(j, "figures");
	const char *links[] = {"storage", "page cache", "host memory", "memcpy"};
	for (size_t i = 0; i < TEST_ARRAY_SIZE(links); i++) {
		const json_t *f = figure_of(figs, links[i], "cpu");
		if (!f)
			FAIL("no %s figure in %s", links[i], out);
		CHECK(json_number_value(json_object_get(f, "bytes_per_second")) > 0);
		CHECK(json_integer_value(json_object_get(f, "bytes")) > 0);
	}
	/* storage was measured on the checkpoint's file system, and says which */
	const char *where =
	        json_string_value(json_object_get(figure_of(figs, "storage", "cpu"), "where"));
	CHECK(strstr(where, "mounted at "));
	if (!test_cuda_driver_loads()) {
		/* no driver: the GPU links are listed as not measured, with the reason */
		const json_t *skipped = json_object_get(j, "not_measured");
		CHECK_EQ_INT(json_array_size(skipped), 3);
		CHECK(strstr(json_string_value(json_array_get(skipped, 0)),
		             "pinned -> device: no CUDA driver"));
		CHECK(strstr(json_string_value(json_array_get(skipped, 2)), "registration: "));
	}

	/* The kept figures are what the command printed, and the plan predicts from them. */
	struct hoist_bench *b;
	CHECK_OK(hoist_bench_stored(&b));
	CHECK(hoist_bench_figure_count(b) >= 4);
	double bps[HOIST_LINK_COUNT] = {0};
	for (size_t i = 0; i < hoist_bench_figure_count(b); i++) {
		const struct hoist_figure *f = hoist_bench_figure(b, i);
		if (f->device.kind == HOIST_DEVICE_CPU)
			bps[f->link] = f->bytes_per_second;
	}
	hoist_bench_free(b);
	CHECK(rel(bps[HOIST_LINK_HOST_MEMORY],
	          json_number_value(json_object_get(figure_of(figs, "host memory", "cpu"),
	                                            "bytes_per_second"))) < 1e-5);
	struct hoist_checkpoint *ck;
	CHECK_OK(hoist_checkpoint_open(dir, NULL, &ck));
	struct hoist_options opt = {.device = "cpu"};
	struct hoist_plan *plan;
	CHECK_OK(hoist_plan_create(ck, &opt, &plan));
	uint64_t bytes = hoist_checkpoint_total_bytes(ck);
	struct hoist_prediction warm, cold;
	CHECK_OK(hoist_plan_predict(plan, 0, &warm));
	CHECK_OK(hoist_plan_predict(plan, 1, &cold));
	CHECK_EQ_INT(warm.bound, HOIST_LINK_HOST_MEMORY);
	CHECK_EQ_INT(warm.assumed, 0);
	CHECK_EQ_U64(warm.bound_bytes, bytes);
	CHECK(rel(warm.seconds, (double)bytes / bps[HOIST_LINK_HOST_MEMORY]) < 1e-9);
	CHECK(warm.measured_at > 0);
	CHECK_EQ_INT(cold.bound, HOIST_LINK_STORAGE);
	CHECK_EQ_INT(cold.assumed, 0);
	CHECK(rel(cold.seconds, (double)bytes / bps[HOIST_LINK_STORAGE]) < 1e-9);
	CHECK(rel(hoist_plan_predicted_seconds(plan, 0), warm.seconds) < 1e-12);
	CHECK(rel(hoist_plan_predicted_seconds(plan, 1), cold.seconds) < 1e-12);
	/* the command's own prediction for PATH is the same */
	const json_t *pred = json_object_get(j, "predicted");
	CHECK_STR(json_string_value(json_object_get(json_object_get(pred, "page_cache"), "bound")),
	          "host memory");
	CHECK(rel(json_number_value(
	                  json_object_get(json_object_get(pred, "cold_storage"), "seconds")),
	          cold.seconds) < 1e-4);
	hoist_plan_free(plan);
	hoist_checkpoint_close(ck);
	json_decref(j);
	free(out);

	/* The text names the bounding links. */
	CHECK_EQ_INT(test_run(&out, "%s bench %s --device cpu 2>/dev/null", test_hoist_bin(), dir),
	             0);
	CHECK(strstr(out, "hoist bench: this machine's links, kept in "));
	CHECK(strstr(out, "from the page cache"));
	CHECK(strstr(out, "bound by host memory ("));
	CHECK(strstr(out, "from cold storage"));
	CHECK(strstr(out, "bound by storage ("));
	free(out);

	/* hoist plan says the prediction is this machine's, in both forms */
	CHECK_EQ_INT(test_run(&out, "%s plan %s --device cpu", test_hoist_bin(), dir), 0);
	CHECK(strstr(out, "  warm: bound by host memory at "));
	CHECK(strstr(out, "GB/s, measured here by hoist bench\n"));
	CHECK(strstr(out, "assumed (one H200") == NULL);
	free(out);
	CHECK_EQ_INT(test_run(&out, "%s plan %s --device cpu --json", test_hoist_bin(), dir), 0);
	j = json_loads(out, 0, &jerr);
	CHECK(j != NULL);
	const json_t *w = json_object_get(json_object_get(j, "prediction"), "warm");
	CHECK_STR(json_string_value(json_object_get(w, "bound")), "host memory");
	CHECK_EQ_INT(json_integer_value(json_object_get(w, "assumed_figures")), 0);
	/* the figure now kept (the text run above measured again) */
	CHECK_OK(hoist_checkpoint_open(dir, NULL, &ck));
	CHECK_OK(hoist_plan_create(ck, &opt, &plan));
	CHECK_OK(hoist_plan_predict(plan, 0, &warm));
	CHECK(rel(json_number_value(json_object_get(w, "bytes_per_second")),
	          warm.bound_bytes_per_second) < 1e-6);
	hoist_plan_free(plan);
	hoist_checkpoint_close(ck);
	json_decref(j);
	free(out);
}

TEST_TIMEOUT(bench_without_path_removes_its_sample, 120)
{
	const char *cache = test_own_cache();
	char *out;
	int rc = test_run(&out, "%s bench 2>&1", test_hoist_bin());
	if (rc != 0)
		FAIL("hoist bench exited %d: %s", rc, out);
	CHECK(strstr(out, "  storage "));
	CHECK(strstr(out, "  page cache "));
	free(out);
	/* only the figures are left behind */
	DIR *d = opendir(test_join(cache, "hoist"));
	CHECK(d != NULL);
	struct dirent *e;
	size_t files = 0;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		files++;
		CHECK(strncmp(e->d_name, "bench-", 6) == 0);
		CHECK(strstr(e->d_name, ".tmp") == NULL);
	}
	closedir(d);
	CHECK_EQ_INT(files, 1);
	/* bad use: a plan option with no PATH to plan for (exit 2, the wording the
	 * argument parser's) */
	CHECK_EQ_INT(test_run(&out, "%s bench --device cpu", test_hoist_bin()), 2);
	CHECK(strstr(out, "PATH"));
	free(out);
	/* an output error is an error */
	CHECK_EQ_INT(test_run(&out, "%s bench > /dev/full", test_hoist_bin()), 1);
	CHECK(strstr(out, "hoist: writing the output: No space left on device"));
	free(out);
}

struct countdown {
	int left; /* calls answered "go on" before the one that cancels; < 0: never */
	int calls;
};

static int cancel_after(void *arg)
{
	struct countdown *c = arg;
	c->calls++;
	return c->left >= 0 && c->calls > c->left;
}

/* opt.cancel is asked between the sample's blocks and between measurements: each
 * answer of "stop" ends the run with HOIST_ERR_CANCELLED saying where, the sample
 * removed; "go on" every time measures. */
TEST_TIMEOUT(bench_cancel_removes_its_sample, 240)
{
	const char *dir = test_path("scratch");
	CHECK_EQ_INT(mkdir(dir, 0700), 0);
	struct countdown never = {-1, 0};
	struct hoist_bench_options opt = {
	        .scratch_dir = dir, .cancel = cancel_after, .cancel_arg = &never};
	struct hoist_bench *b = NULL;
	CHECK_OK(hoist_bench_run(NULL, &opt, &b));
	size_t figures = hoist_bench_figure_count(b);
	hoist_bench_free(b);
	/* 64 blocks of the 256 MiB sample, then at least storage, host and memcpy */
	const int blocks = 64, calls = never.calls;
	CHECK(calls >= blocks + 4);
	CHECK(figures >= 3);
	CHECK_EQ_INT(test_count_files(dir, ".tmp"), 0);
	const int at[] = {0, 1, blocks - 1, blocks, blocks + 1, calls - 1};
	for (size_t i = 0; i < sizeof at / sizeof *at; i++) {
		struct countdown c = {at[i], 0};
		opt.cancel_arg = &c;
		b = (struct hoist_bench *)1;
		CHECK_ERR(hoist_bench_run(NULL, &opt, &b), HOIST_ERR_CANCELLED, "bench cancelled ");
		CHECK(b == NULL);
		CHECK_EQ_INT(c.calls, at[i] + 1);
		if (at[i] < blocks)
			CHECK(strstr(hoist_errmsg(),
			             "while writing its storage sample, after 0 measurements"));
		else
			CHECK(strstr(hoist_errmsg(),
			             at[i] == blocks ? "after 0 measurements" : "measurements") &&
			      !strstr(hoist_errmsg(), "while writing"));
		CHECK_EQ_INT(test_count_files(dir, ".tmp"), 0);
	}
}

/* Ctrl-C while `hoist bench` writes its sample: exit 130, the sample removed and no
 * figures kept. */
TEST_TIMEOUT(bench_interrupted_keeps_nothing, 120)
{
	const char *cache = test_own_cache();
	const char *kept = test_join(cache, "hoist");
	const char *err = test_path("stderr");
	pid_t pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY), e = open(err, O_WRONLY | O_CREAT, 0600);
		dup2(null, 1);
		dup2(e, 2);
		execl(test_hoist_bin(), test_hoist_bin(), "bench", "--thorough", (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 3000 && test_count_files(kept, "hoist-bench-") == 0; i++)
		usleep(10000);
	CHECK_EQ_INT(test_count_files(kept, "hoist-bench-"), 1);
	CHECK_EQ_INT(kill(pid, SIGINT), 0);
	int status;
	CHECK_EQ_INT(waitpid(pid, &status, 0), pid);
	if (!WIFEXITED(status))
		FAIL("bench ended by signal %d", WTERMSIG(status));
	char *said = test_read_file(err, NULL);
	if (WEXITSTATUS(status) != 130)
		FAIL("bench exited %d: %s", WEXITSTATUS(status), said);
	CHECK(strstr(said, "hoist: interrupted: no figures were kept"));
	CHECK(strstr(said, "bench cancelled "));
	free(said);
	CHECK_EQ_INT(test_count_files(kept, ".tmp"), 0);
	CHECK_EQ_INT(test_count_files(kept, "bench-"), 0);
}

static struct hoist__figure figure(enum hoist_link link, double bps, uint64_t fs_dev,
                                   const char *where)
{
	struct hoist__figure f;
	memset(&f, 0, sizeof f);
	f.pub.link = link;
	f.pub.device = (struct hoist_device){HOIST_DEVICE_CPU, 0};
	f.pub.bytes_per_second = bps;
	f.pub.bytes = 1 << 20;
	f.pub.seconds = (double)(1 << 20) / bps;
	f.pub.threads = 4;
	f.pub.measured_at = 1700000000;
	f.fs_dev = fs_dev;
	snprintf(f.where, sizeof f.where, "%s", where);
	return f;
}

static void save(const struct hoist__figure *figs, size_t n)
{
	struct hoist_bench *b;
	CHECK_OK(hoist__bench_new(&b));
	for (size_t i = 0; i < n; i++)
		CHECK_OK(hoist__bench_put(b, &figs[i]));
	CHECK_OK(hoist_bench_save(b));
	hoist_bench_free(b);
}

TEST(bench_figures_kept_per_file_system)
{
	test_own_cache();
	uint64_t here = hoist__fs_dev(test_tmpdir());
	CHECK(here != 0);
	struct hoist__figure a[] = {
	        figure(HOIST_LINK_STORAGE, 1e9, here, "ext4 on /dev/here"),
	        figure(HOIST_LINK_PAGE_CACHE, 10e9, 0, ""),
	};
	save(a, 2);
	struct hoist__figure b[] = {
	        figure(HOIST_LINK_STORAGE, 6e9, here + 1, "xfs on /dev/fast"),
	        figure(HOIST_LINK_PAGE_CACHE, 12e9, 0, ""),
	};
	save(b, 2);
	struct hoist_bench *s;
	CHECK_OK(hoist_bench_stored(&s));
	CHECK_EQ_INT(hoist_bench_figure_count(s), 3); /* two storages, one page cache */
	size_t storages = 0;
	for (size_t i = 0; i < hoist_bench_figure_count(s); i++) {
		const struct hoist_figure *f = hoist_bench_figure(s, i);
		storages += f->link == HOIST_LINK_STORAGE;
		if (f->link == HOIST_LINK_PAGE_CACHE)
			CHECK(f->bytes_per_second == 12e9);
		if (f->link == HOIST_LINK_STORAGE && f->bytes_per_second == 6e9)
			CHECK_STR(f->where, "xfs on /dev/fast");
	}
	CHECK_EQ_INT(storages, 2);
	CHECK(hoist__bench_best_storage(s)->pub.bytes_per_second == 6e9);
	hoist_bench_free(s);

	/* A checkpoint here is predicted at this file system's figure, not the best. */
	const char *dir = synth(0.01, 4);
	struct hoist_checkpoint *ck;
	CHECK_OK(hoist_checkpoint_open(dir, NULL, &ck));
	struct hoist_options opt = {.device = "cpu"};
	struct hoist_plan *plan;
	CHECK_OK(hoist_plan_create(ck, &opt, &plan));
	struct hoist_prediction p;
	CHECK_OK(hoist_plan_predict(plan, 1, &p));
	CHECK_EQ_INT(p.bound, HOIST_LINK_STORAGE);
	CHECK(p.bound_bytes_per_second == 1e9);
	CHECK_EQ_INT(p.assumed, 0); /* cold, only storage counts */
	CHECK_OK(hoist_plan_predict(plan, 0, &p));
	CHECK_EQ_INT(p.bound, HOIST_LINK_HOST_MEMORY);
	CHECK(p.bound_bytes_per_second == 40e9); /* never measured here: the assumption */
	CHECK_EQ_INT(p.assumed, 1);
	hoist_plan_free(plan);

	/* A damaged file: an error naming it; predictions fall back to the assumptions. */
	char file[4096];
	CHECK_OK(hoist_bench_path(file, sizeof file));
	test_write_file(file, "{\"figures\": [", 13);
	CHECK_ERR(hoist_bench_stored(&s), HOIST_ERR_FORMAT, file);
	CHECK_OK(hoist_plan_create(ck, &opt, &plan));
	CHECK_OK(hoist_plan_predict(plan, 1, &p));
	CHECK(p.bound_bytes_per_second == 2e9);
	CHECK_EQ_INT(p.assumed, 1);
	CHECK_EQ_U64(p.measured_at, 0);
	hoist_plan_free(plan);
	/* and a save replaces it */
	save(a, 1);
	CHECK_OK(hoist_bench_stored(&s));
	CHECK_EQ_INT(hoist_bench_figure_count(s), 1);
	hoist_bench_free(s);
	hoist_checkpoint_close(ck);
}

TEST(bench_path_follows_xdg_then_home)
{
	char buf[4096];
	setenv("XDG_CACHE_HOME", "/some/cache", 1);
	CHECK_OK(hoist_bench_path(buf, sizeof buf));
	CHECK(strncmp(buf, "/some/cache/hoist/bench-", 24) == 0);
	/* a relative XDG_CACHE_HOME is ignored, as the XDG spec says */
	setenv("XDG_CACHE_HOME", "relative", 1);
	setenv("HOME", "/home/someone", 1);
	CHECK_OK(hoist_bench_path(buf, sizeof buf));
	CHECK(strncmp(buf, "/home/someone/.cache/hoist/bench-", 33) == 0);
	unsetenv("XDG_CACHE_HOME");
	unsetenv("HOME");
	CHECK_ERR(hoist_bench_path(buf, sizeof buf), HOIST_ERR_INVALID, "XDG_CACHE_HOME");
	CHECK_STR(buf, "");
}

TEST_TIMEOUT(shortfall_names_the_link_that_fell_short, 60)
{
	test_own_cache();
	const char *dir = synth(0.01, 5);
	struct hoist_checkpoint *ck;
	CHECK_OK(hoist_checkpoint_open(dir, NULL, &ck));
	uint64_t bytes = hoist_checkpoint_total_bytes(ck);
	/* Planned for a sim device at 1 TB/s, loaded at 20 MB/s: the copies take at
	 * least bytes / 20 MB/s, far over the prediction whatever the machine. */
	double slow_bw = (double)bytes / 0.3;
	struct hoist_sim_options fast = {.bytes_per_sec = 1e12}, slow = {.bytes_per_sec = slow_bw};
	struct hoist_options plan_opt = {.device = "sim:0", .sim = &fast};
	struct hoist_options load_opt = {.device = "sim:0", .sim = &slow};
	struct hoist_plan *plan;
	CHECK_OK(hoist_plan_create(ck, &plan_opt, &plan));
	struct hoist_model *m;
	CHECK_OK(hoist_model_load(plan, &load_opt, &m));
	struct hoist_shortfall sf;
	CHECK_OK(hoist_model_shortfall(m, plan, &sf));
	CHECK(sf.slow);
	CHECK_EQ_INT(sf.cold, 0);
	CHECK(sf.seconds >= 0.3 * 0.9);
	CHECK_EQ_INT(sf.bound, HOIST_BOUND_DEVICE_COPY);
	CHECK_EQ_INT(sf.link, HOIST_LINK_PINNED_TO_DEVICE);
	CHECK_EQ_INT(sf.device.kind, HOIST_DEVICE_SIM);
	CHECK_EQ_INT(sf.device.index, 0);
	CHECK(sf.predicted_bytes_per_second == 1e12);
	CHECK_EQ_INT(sf.figure_known, 1);
	CHECK(sf.bytes_per_second <= slow_bw * 1.5);
	hoist_model_free(m);

	/* Loaded faster than planned for: no shortfall. */
	struct hoist_plan *plan2;
	struct hoist_options slow_opt = {.device = "sim:0", .sim = &slow};
	struct hoist_options fast_opt = {.device = "sim:0", .sim = &fast};
	CHECK_OK(hoist_plan_create(ck, &slow_opt, &plan2));
	CHECK_OK(hoist_model_load(plan2, &fast_opt, &m));
	CHECK_OK(hoist_model_shortfall(m, plan2, &sf));
	CHECK_EQ_INT(sf.slow, 0);
	CHECK(sf.predicted_seconds >= 0.3 * 0.99);
	hoist_model_free(m);
	hoist_plan_free(plan2);
	hoist_plan_free(plan);
	hoist_checkpoint_close(ck);
}

TEST(load_says_nothing_when_it_beats_its_prediction)
{
	test_own_cache();
	const char *dir = synth(0.01, 6);
	/* Figures that predict hours: no load falls short of them. */
	struct hoist__figure slow[] = {
	        figure(HOIST_LINK_PAGE_CACHE, 1e3, 0, ""),
	        figure(HOIST_LINK_HOST_MEMORY, 1e3, 0, ""),
	        figure(HOIST_LINK_STORAGE, 1e3, hoist__fs_dev(dir), "slow"),
	};
	save(slow, 3);
	char *out;
	CHECK_EQ_INT(test_run(&out, "%s load %s --device cpu", test_hoist_bin(), dir), 0);
	CHECK(strstr(out, "[4/5] stream"));
	CHECK(!strstr(out, "hoist doctor"));
	free(out);
	/* and the plan's predicted load says as much */
	CHECK_EQ_INT(test_run(&out, "%s plan %s --device cpu --json", test_hoist_bin(), dir), 0);
	json_t *j = json_loads(out, 0, NULL);
	CHECK(j != NULL);
	CHECK(json_real_value(json_object_get(json_object_get(j, "predicted_seconds"), "warm")) >
	      1.0);
	json_decref(j);
	free(out);
}

TEST_TIMEOUT(bench_gpu_links_against_the_fake_driver, 120)
{
	const char *fake = test_fake_driver_dir();
	if (!fake)
		SKIP("the fake CUDA driver is not built beside %s (make fakecuda)",
		     test_hoist_bin());
	test_own_cache();
	char *out;
	int rc = test_run(&out, "LD_LIBRARY_PATH=%s FAKECUDA_DEVICES=2 %s bench --json 2>%s", fake,
	                  test_hoist_bin(), test_path("stderr"));
	char *err = test_read_file(test_path("stderr"), NULL);
	if (rc != 0)
		FAIL("hoist bench exited %d: %s %s", rc, out, err);
	CHECK(!strstr(err, "VIOLATION"));
	json_t *j = json_loads(out, 0, NULL);
	CHECK(j != NULL);
	const json_t *figs = json_object_get(j, "figures");
	const char *gpus[] = {"cuda:0", "cuda:1"};
	const char *links[] = {"pinned -> device", "pageable -> device", "registration",
	                       "registered -> device"};
	for (size_t g = 0; g < 2; g++)
		for (size_t l = 0; l < TEST_ARRAY_SIZE(links); l++) {
			const json_t *f = figure_of(figs, links[l], gpus[g]);
			if (!f)
				FAIL("no %s figure for %s in %s", links[l], gpus[g], out);
			CHECK(json_number_value(json_object_get(f, "bytes_per_second")) > 0);
			CHECK_STR(json_string_value(json_object_get(f, "where")), "Fake H200");
		}
	CHECK_EQ_INT(json_array_size(json_object_get(j, "not_measured")), 0);
	json_decref(j);
	free(out);
	free(err);

	/* A GPU plan predicts its copies from the figure of its GPU. */
	struct hoist_bench *b;
	CHECK_OK(hoist_bench_stored(&b));
	double pinned = 0;
	for (size_t i = 0; i < hoist_bench_figure_count(b); i++) {
		const struct hoist_figure *f = hoist_bench_figure(b, i);
		if (f->link == HOIST_LINK_PINNED_TO_DEVICE && f->device.index == 1)
			pinned = f->bytes_per_second;
	}
	hoist_bench_free(b);
	CHECK(pinned > 0);
	struct hoist__load_shape s = {.read_bytes = 1000, .ngpu = 1, .copy_bw = 55e9};
	s.gpu[0] = (struct hoist_device){HOIST_DEVICE_CUDA, 1};
	s.gpu_bytes[0] = (uint64_t)1e15; /* the copies bound it */
	struct hoist_prediction p;
	hoist__predict(&s, 0, &p);
	CHECK_EQ_INT(p.bound, HOIST_LINK_PINNED_TO_DEVICE);
	CHECK_EQ_INT(p.bound_device.index, 1);
	CHECK(p.bound_bytes_per_second == pinned);

	/* A GPU whose allocation fails, a registration the driver refuses: those figures
	 * are not measured, with the driver's reason, and the bench goes on. */
	rc = test_run(&out,
	              "LD_LIBRARY_PATH=%s FAKECUDA_DEVICES=2 FAKECUDA_FAIL_ALLOC=1 "
	              "FAKECUDA_FAIL_HOST_REGISTER=1 %s bench 2>&1",
	              fake, test_hoist_bin());
	CHECK_EQ_INT(rc, 0);
	CHECK(strstr(out, "pinned -> device: cuda:0: out of device memory: cuMemAlloc_v2("));
	CHECK(strstr(out, "CUDA_ERROR_OUT_OF_MEMORY"));
	CHECK(strstr(out, "registration: cuda:1: cuMemHostRegister_v2: CUDA_ERROR_OUT_OF_MEMORY"));
	CHECK(strstr(out, "  pinned -> cuda:1 "));
	CHECK(!strstr(out, "VIOLATION"));
	free(out);

	/* A driver with no GPU: the links are not measured, and the reason says why. */
	rc = test_run(&out, "LD_LIBRARY_PATH=%s FAKECUDA_DEVICES=0 %s bench 2>&1", fake,
	              test_hoist_bin());
	CHECK_EQ_INT(rc, 0);
	CHECK(strstr(out, "not measured:\n  pinned -> device: no CUDA GPU: cuInit: "
	                  "CUDA_ERROR_NO_DEVICE"));
	free(out);
}
