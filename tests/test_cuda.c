/* test_cuda.c - the CUDA backend and the stream into GPUs, against whatever driver the
 * process loads: in `make check` the strict fake driver (tests/fakecuda), which counts
 * every breach of the driver's rules as a violation that fails the test (the runner's
 * end check, fakecuda_check.c); on a GPU machine (`make check CUDA_DRIVER=system`) the
 * real one. Tests that need the fake's knobs or counters skip, saying so, elsewhere;
 * tests that need a GPU skip, giving the reason, where no driver loads.
 *
 * What they hold hoist to: every byte arrives (against the manifests, generated and
 * synthetic checkpoints, read back through hoist and, on the fake, straight from
 * device memory); conversion; tiny chunks and rings; several GPUs; disk tensors fetched
 * onto a GPU; listing that creates no context; the caller's context left current;
 * hoist synchronizing only its own streams, copying only from pinned memory; out of
 * memory as NO_SPACE; a fault at each step leaving nothing behind; cancellation;
 * cuInit's failures named; the stream's per-segment landed reports. */
#include "fakecuda_check.h"
#include "fixtures.h"
#include "registry.h"
#include "stream.h"
#include "test.h"

#include "cuda_abi.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/mman.h>
#include <unistd.h>

static void need_gpu(void)
{
	struct hoist_device_info info[HOIST_MAX_DEVICES];
	size_t n;
	if (hoist_device_list(HOIST_DEVICE_CUDA, NULL, info, HOIST_MAX_DEVICES, &n) != HOIST_OK)
		SKIP("%s", hoist_errmsg());
	CHECK(n >= 1);
}

static void load_checked(const char *path, const char *key, struct hoist_options opt)
{
	struct hoist_checkpoint *ck;
	struct hoist_model *m;
	CHECK_OK(hoist_checkpoint_open(path, NULL, &ck));
	CHECK_OK(test_load(ck, &opt, &m));
	check_manifest(m, key, "cuda:0");
	hoist_model_free(m);
	hoist_checkpoint_close(ck);
}

/* Every tensor of m on a cuda device, read straight from the fake's device memory (no
 * hoist code on the way back), against generated checkpoint ck's bytes. */
static void check_gen_on_device(const struct hoist_model *m, const struct hoist_checkpoint *ck)
{
	const struct fakecuda_api *f = test_need_fake();
	for (size_t i = 0; i < hoist_model_tensor_count(m); i++) {
		const struct hoist_tensor *t = hoist_model_tensor(m, i);
		const struct hoist_tensor_info *ti = hoist_checkpoint_tensor(ck, i);
		if (t->device.kind != HOIST_DEVICE_CUDA || t->nbytes == 0)
			continue;
		size_t gen = (size_t)strtoull(strrchr(ti->name, 'w') + 1, NULL, 10);
		unsigned char *buf = malloc(t->nbytes);
		CHECK_EQ_INT(f->device_read((unsigned long long)(uintptr_t)t->data, buf, t->nbytes),
		             0);
		for (uint64_t b = 0; b < t->nbytes; b++)
			if (buf[b] != gen_byte(gen, b))
				FAIL("tensor %s device byte %llu: %u != %u", t->name,
				     (unsigned long long)b, buf[b], gen_byte(gen, b));
		free(buf);
	}
}

/* What hoist holds on the fake now: nothing, between loads. */
static void check_nothing_alive(void)
{
	struct fakecuda_counters c = test_fake_counters();
	CHECK_EQ_U64(c.host_allocations_now, 0);
	CHECK_EQ_U64(c.registrations_now, 0);
	CHECK_EQ_U64(c.streams_now, 0);
	CHECK_EQ_U64(c.events_now, 0);
	for (int d = 0; d < c.devices; d++) {
		CHECK_EQ_U64(c.device[d].allocations_now, 0);
		CHECK_EQ_U64(c.device[d].primary_retains_now, 0);
	}
	test_fake_no_violations();
}

static struct hoist_checkpoint *open_gen(size_t shards, size_t per, uint64_t big)
{
	const char *dir = test_path("gen");
	gen_checkpoint(dir, shards, per, big);
	struct hoist_checkpoint *ck;
	CHECK_OK(hoist_checkpoint_open(dir, NULL, &ck));
	return ck;
}

/* ---- bytes ------------------------------------------------------------------------- */

TEST(cuda_load_reference)
{
	need_gpu();
	struct hoist_options opts[] = {
	        {.device = "cuda:0"},
	        {.device = "cuda:0", .threads = 16, .chunk_bytes = 4096, .staging_bytes = 16384},
	        {.device = "cuda:0", .direct = 1, .chunk_bytes = 8192, .staging_bytes = 65536},
	};
	for (size_t i = 0; i < TEST_ARRAY_SIZE(opts); i++) {
		load_checked(test_join(test_data_dir(), "reference/all_dtypes.safetensors"),
		             "all_dtypes.safetensors", opts[i]);
		load_checked(test_join(test_data_dir(), "reference/tiny-qwen2-vl"),
		             "tiny-qwen2-vl/", opts[i]);
	}
}

TEST_TIMEOUT(cuda_load_generated_and_synth, 300)
{
	/* the fake's copies take 250 us at least: a short floor keeps thousands quick */
	if (test_fake())
		test_fake_set("FAKECUDA_COPY_LATENCY_US", "20");
	need_gpu();
	const char *dir = test_path("gen");
	gen_checkpoint(dir, 4, 40, 300000);
	struct hoist_checkpoint *ck;
	CHECK_OK(hoist_checkpoint_open(dir, NULL, &ck));
	struct hoist_options opts[] = {
	        {.device = "cuda:0"},
	        {.device = "cuda:0", .threads = 16, .chunk_bytes = 4096, .staging_bytes = 16384},
	        {.device = "cuda", .device_map = "balanced", .threads = 8, .chunk_bytes = 65536},
	};
	for (size_t i = 0; i < TEST_ARRAY_SIZE(opts); i++) {
		struct hoist_model *m;
		CHECK_OK(test_load(ck, &opts[i], &m));
		struct hoist_tensor t;
		t = *hoist_model_tensor(m, 0);
		CHECK_EQ_INT(t.device.kind, HOIST_DEVICE_CUDA);
		check_gen(m, ck);
		if (test_fake())
			check_gen_on_device(m, ck);
		hoist_model_free(m);
	}
	hoist_checkpoint_close(ck);

	/* The synthetic checkpoint, every byte against hoist_synth_fill. */
	const char *sdir = test_path("synth");
	struct hoist_synth_options so = {.seed = 5};
	CHECK_OK(hoist_synth_write(sdir, &so));
	CHECK_OK(hoist_checkpoint_open(sdir, NULL, &ck));
	struct hoist_options opt = {.device = "cuda:0"};
	struct hoist_model *m;
	CHECK_OK(test_load(ck, &opt, &m));
	for (size_t i = 0; i < hoist_model_tensor_count(m); i++) {
		struct hoist_tensor t;
		t = *hoist_model_tensor(m, i);
		unsigned char *got = malloc(t.nbytes + 1), *want = malloc(t.nbytes + 1);
		CHECK_OK(hoist_model_read(m, i, got, t.nbytes));
		hoist_synth_fill(5, t.name, 0, want, t.nbytes);
		if (memcmp(got, want, t.nbytes) != 0)
			FAIL("tensor %s on cuda:0 differs from the synthetic content", t.name);
		free(got);
		free(want);
	}
	hoist_model_free(m);
	hoist_checkpoint_close(ck);
}

/* BF16 -> F32 on the way to the GPU is exact: the 16 bits become the high half. */
TEST(cuda_load_converts)
{
	need_gpu();
	struct hoist_checkpoint *ck;
	CHECK_OK(hoist_checkpoint_open(test_join(test_data_dir(), "reference/tiny-qwen2-vl"), NULL,
	                               &ck));
	struct hoist_options opt = {.device = "cuda:0",
	                            .dtype = HOIST_F32,
	                            .chunk_bytes = 4096,
	                            .staging_bytes = 32768,
	                            .threads = 4};
	struct hoist_model *m;
	CHECK_OK(test_load(ck, &opt, &m));
	for (size_t i = 0; i < hoist_model_tensor_count(m); i++)
		fixture_check_bf16_widened(ck, m, i);
	hoist_model_free(m);
	hoist_checkpoint_close(ck);
}

TEST(cuda_backend_errors_and_pinned)
{
	need_gpu();
	const struct hoist__backend *b = hoist__backend_for(HOIST_DEVICE_CUDA);
	struct hoist__dev *dev;
	CHECK_OK(b->open(NULL, 0, &dev));
	uint64_t a;
	/* 1 PB: the driver refuses, and the message names its error */
	CHECK_ERR(b->alloc(dev, 1ull << 50, &a), HOIST_ERR_NO_SPACE,
	          "cuda:0: out of device memory: cuMemAlloc_v2(1.13 PB): CUDA_ERROR_OUT_OF_MEMORY");
	CHECK_OK(b->alloc(dev, 40 << 20, &a));
	/* larger than the bounce buffer, pageable, unaligned */
	size_t n = (size_t)(20 << 20) + 12345;
	unsigned char *src = malloc(n), *back = malloc(n);
	for (size_t i = 0; i < n; i++)
		src[i] = (unsigned char)(i * 7 + 1);
	CHECK_OK(b->copy_in(dev, a + 512, src, n));
	CHECK_OK(b->copy_out(dev, back, a + 512, n));
	CHECK(memcmp(src, back, n) == 0);
	free(src);
	free(back);
	b->free(dev, a, 40 << 20);
	b->close(dev);
	CHECK_ERR(b->open(NULL, HOIST_MAX_DEVICES, &dev), HOIST_ERR_NO_DEVICE, "no such GPU");

	/* With a driver present, a pinned cpu arena comes from cuMemHostAlloc. */
	struct hoist_options opt = {.device = "cpu", .host_memory = HOIST_HOST_PINNED};
	struct hoist_checkpoint *ck;
	struct hoist_model *m;
	CHECK_OK(hoist_checkpoint_open(test_join(test_data_dir(), "reference/tiny-qwen2-vl"), NULL,
	                               &ck));
	CHECK_OK(test_load(ck, &opt, &m));
	CHECK_STR(hoist_model_device(m, 0)->memory, "pinned by cuMemHostAlloc");
	check_manifest(m, "tiny-qwen2-vl/", "cpu");
	/* fetch onto the GPU from host memory */
	struct hoist_tensor t, f;
	t = *hoist_model_tensor(m, 0);
	CHECK_OK(hoist_model_fetch(m, 0, (struct hoist_device){HOIST_DEVICE_CUDA, 0}, &f));
	unsigned char *got = malloc(t.nbytes);
	CHECK_OK(b->open(NULL, 0, &dev));
	CHECK_OK(b->copy_out(dev, got, (uint64_t)(uintptr_t)f.data, t.nbytes));
	CHECK(memcmp(got, t.data, t.nbytes) == 0);
	b->close(dev);
	free(got);
	hoist_model_free(m);
	hoist_checkpoint_close(ck);
}

/* ---- no driver, a driver without GPUs, a driver that cannot use them --------------- */

struct logged {
	int warnings, notices;
	char last[1024];
};

static void on_log(enum hoist_log_level level, const char *message, void *arg)
{
	struct logged *l = arg;
	if (level == HOIST_LOG_WARNING)
		l->warnings++;
	else if (level == HOIST_LOG_NOTICE)
		l->notices++;
	if (level <= HOIST_LOG_NOTICE)
		snprintf(l->last, sizeof l->last, "%s", message);
}

/* A plan without a device goes to cpu; returns the log it made. */
static struct logged plan_unset(const struct hoist_checkpoint *ck)
{
	struct logged l = {0};
	struct hoist_options opt = {.log = on_log, .log_arg = &l};
	struct hoist_plan *p;
	CHECK_OK(hoist_plan_create(ck, &opt, &p));
	CHECK_EQ_INT(hoist_plan_device_count(p), 1);
	CHECK_EQ_INT(hoist_plan_device(p, 0)->device.kind, HOIST_DEVICE_CPU);
	CHECK_STR(hoist_plan_notice(p), l.last);
	hoist_plan_free(p);
	return l;
}

static struct hoist_checkpoint *open_all_dtypes(void)
{
	struct hoist_checkpoint *ck;
	CHECK_OK(hoist_checkpoint_open(
	        test_join(test_data_dir(), "reference/all_dtypes.safetensors"), NULL, &ck));
	return ck;
}

/* Where no driver loads, the load says why, and never falls back to another device. */
TEST(cuda_absent_says_why)
{
	test_cuda_absent();
	struct hoist_device_info info[1];
	size_t n;
	if (hoist_device_list(HOIST_DEVICE_CUDA, NULL, info, 1, &n) == HOIST_OK)
		SKIP("a CUDA GPU is present: nothing to check about its absence");
	struct hoist_checkpoint *ck = open_all_dtypes();
	struct hoist_options opt = {.device = "cuda:0"};
	struct hoist_model *m = (struct hoist_model *)1;
	CHECK_STATUS(test_load(ck, &opt, &m), HOIST_ERR_NO_DEVICE);
	CHECK(m == NULL);
	/* no library: dlerror names it; a driver without GPUs: cuInit's error */
	const char *e = hoist_errmsg();
	if (!strstr(e, "libcuda.so.1") && !strstr(e, "CUDA_ERROR_NO_DEVICE"))
		FAIL("\"%s\" names neither the library nor cuInit's error", e);
	struct hoist__dev *dev = (struct hoist__dev *)1;
	CHECK_STATUS(hoist__backend_cuda.open(NULL, 0, &dev), HOIST_ERR_NO_DEVICE);
	CHECK(dev == NULL);
	struct logged l = plan_unset(ck);
	CHECK(l.notices == 1 && l.warnings == 0);
	CHECK(strncmp(l.last, "no GPU (no CUDA driver: ", 24) == 0 ||
	      strncmp(l.last, "no GPU (cuInit: CUDA_ERROR_NO_DEVICE)", 37) == 0);
	hoist_checkpoint_close(ck);
}

TEST(cuda_driver_without_gpu)
{
	test_fake_set("FAKECUDA_DEVICES", "0");
	struct hoist_checkpoint *ck = open_all_dtypes();
	struct hoist_options opt = {.device = "cuda:0"};
	struct hoist_plan *p = NULL;
	CHECK_ERR(hoist_plan_create(ck, &opt, &p), HOIST_ERR_NO_DEVICE,
	          "cuda:0: no CUDA GPU: cuInit: CUDA_ERROR_NO_DEVICE");
	struct logged l = plan_unset(ck);
	CHECK(l.notices == 1 && l.warnings == 0);
	CHECK_STR(l.last, "no GPU (cuInit: CUDA_ERROR_NO_DEVICE): every tensor planned for cpu");
	hoist_checkpoint_close(ck);
}

/* 802 (an NVSwitch machine's fabric manager not running), 999: a GPU machine that is
 * broken, not one without GPUs: DEVICE naming the error, and a warning without a
 * device. */
TEST(cuda_init_failure_named)
{
	test_fake_set("FAKECUDA_INIT_RESULT", "CUDA_ERROR_SYSTEM_NOT_READY");
	struct hoist_checkpoint *ck = open_all_dtypes();
	struct hoist_options opt = {.device = "cuda:0"};
	struct hoist_plan *p = NULL;
	CHECK_ERR(hoist_plan_create(ck, &opt, &p), HOIST_ERR_DEVICE,
	          "the CUDA driver cannot use its GPUs: cuInit: CUDA_ERROR_SYSTEM_NOT_READY "
	          "(error 802: ");
	struct hoist_device_info info[2];
	size_t n = 9;
	CHECK_ERR(hoist_device_list(HOIST_DEVICE_CUDA, NULL, info, 2, &n), HOIST_ERR_DEVICE,
	          "CUDA_ERROR_SYSTEM_NOT_READY");
	CHECK_EQ_U64(n, 0);
	struct logged l = plan_unset(ck);
	CHECK(l.warnings == 1 && l.notices == 0);
	const char *want = "GPUs present but unusable (the CUDA driver cannot use its GPUs: "
	                   "cuInit: CUDA_ERROR_SYSTEM_NOT_READY (error 802: ";
	CHECK(strncmp(l.last, want, strlen(want)) == 0);
	CHECK(strstr(l.last, "): every tensor planned for cpu") != NULL);
	/* the command shows it without --verbose */
	char *out;
	CHECK_EQ_INT(test_run(&out, "FAKECUDA_INIT_RESULT=999 %s plan %s", test_hoist_bin(),
	                      test_join(test_data_dir(), "reference/all_dtypes.safetensors")),
	             0);
	CHECK(strstr(out, "hoist: GPUs present but unusable (the CUDA driver cannot use its GPUs: "
	                  "cuInit: CUDA_ERROR_UNKNOWN (error 999"));
	free(out);
	hoist_checkpoint_close(ck);
}

/* ---- contexts ---------------------------------------------------------------------- */

TEST(cuda_list_creates_no_context)
{
	test_fake_set("FAKECUDA_DEVICES", "2");
	test_fake_set("FAKECUDA_MEMORY", "4G,8G");
	struct hoist_device_info info[4];
	size_t n;
	CHECK_OK(hoist_device_list(HOIST_DEVICE_CUDA, NULL, info, 4, &n));
	CHECK_EQ_U64(n, 2);
	struct fakecuda_counters c = test_fake_counters();
	for (int d = 0; d < 2; d++) {
		CHECK_EQ_U64(c.device[d].contexts_created, 0);
		CHECK_EQ_U64(info[d].total_bytes, (4ull << 30) * (uint64_t)(d + 1));
		CHECK_EQ_U64(info[d].free_bytes, info[d].total_bytes);
		CHECK_STR(info[d].name, "Fake H200");
	}
	/* NVML numbers the GPUs backwards: free memory follows the GPU, by PCI bus */
	struct hoist__dev *dev;
	CHECK_OK(hoist__device_open((struct hoist_device){HOIST_DEVICE_CUDA, 1}, NULL, &dev));
	CHECK_OK(hoist_device_list(HOIST_DEVICE_CUDA, NULL, info, 4, &n));
	c = test_fake_counters();
	CHECK_EQ_U64(info[0].free_bytes, 4ull << 30);
	CHECK_EQ_U64(info[1].free_bytes, (8ull << 30) - c.device[1].memory_used_now);
	CHECK(c.device[1].memory_used_now >= 300ull << 20); /* its context */
	CHECK_EQ_U64(c.device[0].contexts_created, 0);
	CHECK_EQ_U64(c.nvml_inits_now, 0);
	dev->ops->close(dev);
	/* a plan for cuda:1 and a load there make no context on cuda:0, a pinned cpu
	 * arena beside it included */
	struct hoist_checkpoint *ck;
	CHECK_OK(hoist_checkpoint_open(test_join(test_data_dir(), "reference/tiny-qwen2-vl"), NULL,
	                               &ck));
	struct hoist_options opt = {.device = "cuda:1"};
	struct hoist_model *m, *cpu;
	CHECK_OK(test_load(ck, &opt, &m));
	check_manifest(m, "tiny-qwen2-vl/", "cuda:1");
	struct hoist_options popt = {.device = "cpu", .host_memory = HOIST_HOST_PINNED};
	CHECK_OK(test_load(ck, &popt, &cpu));
	CHECK_STR(hoist_model_device(cpu, 0)->memory, "pinned by cuMemHostAlloc");
	hoist_model_free(m);
	check_manifest(cpu, "tiny-qwen2-vl/", "cpu");
	hoist_model_free(cpu);
	c = test_fake_counters();
	CHECK_EQ_U64(c.device[0].contexts_created, 0);
	hoist_checkpoint_close(ck);
	check_nothing_alive();
}

/* Without NVML, free memory comes from the context of the GPU the options target, and
 * no other GPU gets one. */
TEST(cuda_list_without_nvml)
{
	test_fake_set("FAKECUDA_DEVICES", "3");
	setenv("HOIST_NVML_LIBRARY", "/nonexistent/hoist-test/libnvidia-ml.so.1", 1);
	struct hoist_checkpoint *ck = open_all_dtypes();
	struct hoist_options opt = {.device = "cuda:2"};
	struct hoist_plan *p;
	CHECK_OK(hoist_plan_create(ck, &opt, &p));
	CHECK(strstr(hoist_plan_device(p, 0)->budget_source, "free now less"));
	hoist_plan_free(p);
	struct fakecuda_counters c = test_fake_counters();
	CHECK_EQ_U64(c.device[0].contexts_created, 0);
	CHECK_EQ_U64(c.device[1].contexts_created, 0);
	CHECK_EQ_U64(c.device[2].contexts_created, 1);
	CHECK_EQ_U64(c.device[2].contexts_now, 0);
	hoist_checkpoint_close(ck);
}

struct ctx_api {
	hcu_init_fn init;
	hcu_device_get_fn device_get;
	hcu_ctx_create_fn ctx_create;
	hcu_ctx_destroy_fn ctx_destroy;
	hcu_ctx_get_current_fn ctx_get_current;
};

static struct ctx_api ctx_api(void)
{
	const struct fakecuda_api *f = test_need_fake();
	struct ctx_api a;
	*(void **)&a.init = dlsym(f->lib, "cuInit");
	*(void **)&a.device_get = dlsym(f->lib, "cuDeviceGet");
	*(void **)&a.ctx_create = dlsym(f->lib, "cuCtxCreate_v2");
	*(void **)&a.ctx_destroy = dlsym(f->lib, "cuCtxDestroy_v2");
	*(void **)&a.ctx_get_current = dlsym(f->lib, "cuCtxGetCurrent");
	CHECK(a.init && a.device_get && a.ctx_create && a.ctx_destroy && a.ctx_get_current);
	return a;
}

static void check_current(const struct ctx_api *a, hcu_context want, const char *after)
{
	hcu_context now = NULL;
	CHECK_EQ_INT(a->ctx_get_current(&now), HCU_SUCCESS);
	if (now != want)
		FAIL("after %s the current context is %p, not the caller's %p", after, (void *)now,
		     (void *)want);
}

/* The caller's own context (as a framework's) stays current through every call. */
TEST(cuda_restores_callers_context)
{
	struct ctx_api a = ctx_api();
	hcu_device d;
	hcu_context mine;
	CHECK_EQ_INT(a.init(0), HCU_SUCCESS);
	CHECK_EQ_INT(a.device_get(&d, 0), HCU_SUCCESS);
	CHECK_EQ_INT(a.ctx_create(&mine, 0, d), HCU_SUCCESS);
	check_current(&a, mine, "cuCtxCreate_v2");
	struct hoist_device_info info[2];
	size_t n;
	CHECK_OK(hoist_device_list(HOIST_DEVICE_CUDA, NULL, info, 2, &n));
	check_current(&a, mine, "hoist_device_list");
	struct hoist_checkpoint *ck = open_gen(2, 10, 50000);
	struct hoist_options opt = {.device = "cuda:0",
	                            .max_memory = "0=64KiB,cpu=64KiB",
	                            .device_map = "sequential",
	                            .threads = 3,
	                            .chunk_bytes = 16384};
	struct hoist_model *m;
	CHECK_OK(test_load(ck, &opt, &m));
	check_current(&a, mine, "hoist_model_load");
	check_gen(m, ck);
	check_current(&a, mine, "hoist_model_read");
	for (size_t i = 0; i < hoist_model_tensor_count(m); i++) {
		if (hoist_model_tensor(m, i)->device.kind != HOIST_DEVICE_DISK)
			continue;
		struct hoist_tensor t;
		CHECK_OK(hoist_model_fetch(m, i, (struct hoist_device){HOIST_DEVICE_CUDA, 0}, &t));
		break;
	}
	check_current(&a, mine, "hoist_model_fetch");
	hoist_model_free(m);
	check_current(&a, mine, "hoist_model_free");
	CHECK_EQ_INT(a.ctx_destroy(mine), HCU_SUCCESS);
	struct fakecuda_counters c = test_fake_counters();
	CHECK_EQ_U64(c.ctx_synchronize_calls, 0);
	hoist_checkpoint_close(ck);
	check_nothing_alive();
}

/* ---- memory --------------------------------------------------------------------------- */

TEST(cuda_out_of_memory_is_no_space)
{
	test_fake_set("FAKECUDA_MEMORY", "8M");
	test_fake_set("FAKECUDA_CONTEXT_MEMORY", "0");
	struct hoist_checkpoint *ck = open_gen(2, 10, 1000000);
	CHECK(hoist_checkpoint_total_bytes(ck) > 8u << 20);
	/* the plan believes max_memory; the GPU has less */
	struct hoist_options opt = {.device = "cuda:0", .max_memory = "0=1GiB"};
	struct hoist_model *m = (struct hoist_model *)1;
	CHECK_ERR(test_load(ck, &opt, &m), HOIST_ERR_NO_SPACE,
	          "cuda:0: out of device memory: cuMemAlloc_v2(");
	CHECK(m == NULL);
	/* without max_memory the plan sees the GPU's free memory and says so up front */
	struct hoist_options plain = {.device = "cuda:0"};
	CHECK_ERR(test_load(ck, &plain, &m), HOIST_ERR_NO_SPACE, "free now less");
	hoist_checkpoint_close(ck);
	check_nothing_alive();
}

TEST(cuda_pinned_out_of_memory_is_no_space)
{
	test_need_fake();
	struct hoist_checkpoint *ck = open_gen(2, 10, 100000);
	test_fake_set("FAKECUDA_FAIL_HOST_ALLOC", "1");
	struct hoist_options opt = {.device = "cuda:0"};
	struct hoist_model *m = (struct hoist_model *)1;
	CHECK_ERR(test_load(ck, &opt, &m), HOIST_ERR_NO_SPACE, "staging ring of ");
	CHECK(strstr(hoist_errmsg(), "cuMemHostAlloc: CUDA_ERROR_OUT_OF_MEMORY"));
	CHECK(m == NULL);
	hoist_checkpoint_close(ck);
	check_nothing_alive();
}

/* ---- faults, cancellation ----------------------------------------------------------- */

/* A fault at each step of a load: an error naming what failed, nothing left alive,
 * no copy still reading a freed staging buffer (that would be a violation). */
TEST_TIMEOUT(cuda_fault_at_each_step, 120)
{
	test_fake_set("FAKECUDA_QUIET", "1");
	struct hoist_checkpoint *ck = open_gen(2, 20, 200000);
	static const struct {
		const char *knob, *nth;
		enum hoist_status st;
		const char *needle;
	} faults[] = {
	        {"FAKECUDA_FAIL_ALLOC", "1", HOIST_ERR_NO_SPACE, "out of device memory"},
	        {"FAKECUDA_FAIL_HOST_ALLOC", "1", HOIST_ERR_NO_SPACE, "staging ring"},
	        {"FAKECUDA_FAIL_COPY_SUBMIT", "1", HOIST_ERR_DEVICE, "CUDA_ERROR_UNKNOWN"},
	        {"FAKECUDA_FAIL_COPY_SUBMIT", "7", HOIST_ERR_DEVICE, "CUDA_ERROR_UNKNOWN"},
	        {"FAKECUDA_FAIL_COPY_SUBMIT", "40", HOIST_ERR_DEVICE, "CUDA_ERROR_UNKNOWN"},
	        {"FAKECUDA_FAIL_COPY_EXEC", "1", HOIST_ERR_DEVICE, "CUDA_ERROR_ILLEGAL_ADDRESS"},
	        {"FAKECUDA_FAIL_COPY_EXEC", "9", HOIST_ERR_DEVICE, "CUDA_ERROR_ILLEGAL_ADDRESS"},
	        {"FAKECUDA_FAIL_COPY_EXEC", "50", HOIST_ERR_DEVICE, "CUDA_ERROR_ILLEGAL_ADDRESS"},
	};
	for (size_t i = 0; i < TEST_ARRAY_SIZE(faults); i++) {
		struct hoist_options opt = {.device = "cuda:0",
		                            .threads = 4,
		                            .chunk_bytes = 65536,
		                            .staging_bytes = 1 << 20};
		test_fake_set(faults[i].knob, faults[i].nth);
		struct hoist_model *m = (struct hoist_model *)1;
		CHECK_ERR(test_load(ck, &opt, &m), faults[i].st, faults[i].needle);
		CHECK(m == NULL);
		if (strstr(faults[i].knob, "COPY") &&
		    (!strstr(hoist_errmsg(), ".safetensors: tensor \"layers.") ||
		     !strstr(hoist_errmsg(), "(bytes at offset ")))
			FAIL("%s=%s: \"%s\" names no tensor and offset", faults[i].knob,
			     faults[i].nth, hoist_errmsg());
		test_fake_set(faults[i].knob, NULL);
		check_nothing_alive();
		/* and the next load works */
		CHECK_OK(test_load(ck, &opt, &m));
		check_gen(m, ck);
		hoist_model_free(m);
	}
	hoist_checkpoint_close(ck);
	check_nothing_alive();
}

struct cancel_at {
	int stream_calls, after;
	pthread_t caller;
	bool wrong_thread;
};

static int cancel_progress(const struct hoist_progress *pr, void *arg)
{
	struct cancel_at *c = arg;
	if (!pthread_equal(pthread_self(), c->caller))
		c->wrong_thread = true;
	if (pr->phase == HOIST_PHASE_STREAM)
		c->stream_calls++;
	return c->stream_calls >= c->after;
}

TEST(cuda_cancel_frees_everything)
{
	/* 4 MB/s: about a second for the checkpoint, so the cancel lands mid-stream */
	test_fake_set("FAKECUDA_BANDWIDTH", "4000000");
	struct hoist_checkpoint *ck = open_gen(2, 20, 200000);
	struct cancel_at ca = {.after = 3, .caller = pthread_self()};
	struct hoist_options opt = {.device = "cuda:0",
	                            .progress = cancel_progress,
	                            .progress_arg = &ca,
	                            .chunk_bytes = 65536,
	                            .threads = 4};
	struct hoist_model *m = (struct hoist_model *)1;
	CHECK_ERR(test_load(ck, &opt, &m), HOIST_ERR_CANCELLED,
	          "load cancelled by the progress callback after");
	CHECK(m == NULL);
	CHECK(!ca.wrong_thread);
	hoist_checkpoint_close(ck);
	check_nothing_alive();
}

/* ---- several GPUs, disk tensors fetched, staging reuse ------------------------------ */

TEST(cuda_several_devices)
{
	test_fake_set("FAKECUDA_DEVICES", "3");
	test_fake_set("FAKECUDA_COPY_LATENCY_US", "50");
	struct hoist_checkpoint *ck = open_gen(3, 30, 100000);
	struct hoist_options opt = {
	        .device = "cuda", .device_map = "balanced", .threads = 5, .chunk_bytes = 32768};
	struct hoist_model *m;
	CHECK_OK(test_load(ck, &opt, &m));
	CHECK_EQ_INT(hoist_model_device_count(m), 3);
	bool on[3] = {false, false, false};
	for (size_t i = 0; i < hoist_model_tensor_count(m); i++) {
		const struct hoist_tensor *t = hoist_model_tensor(m, i);
		CHECK_EQ_INT(t->device.kind, HOIST_DEVICE_CUDA);
		on[t->device.index] = true;
	}
	CHECK(on[0] && on[1] && on[2]);
	check_gen(m, ck);
	check_gen_on_device(m, ck);
	struct fakecuda_counters c = test_fake_counters();
	for (int d = 0; d < 3; d++)
		CHECK_EQ_U64(c.device[d].contexts_created, 1);
	CHECK_EQ_U64(c.pageable_async_copies, 0);
	CHECK_EQ_U64(c.ctx_synchronize_calls, 0);
	hoist_model_free(m);
	hoist_checkpoint_close(ck);
	check_nothing_alive();
}

TEST(cuda_fetch_disk_tensors)
{
	test_need_fake();
	struct hoist_checkpoint *ck = open_gen(2, 10, 100000);
	struct hoist_options opt = {
	        .device = "cuda", .device_map = "sequential", .max_memory = "0=256KiB,cpu=256KiB"};
	struct hoist_model *m;
	CHECK_OK(test_load(ck, &opt, &m));
	size_t fetched = 0;
	for (size_t i = 0; i < hoist_model_tensor_count(m); i++) {
		const struct hoist_tensor *t = hoist_model_tensor(m, i);
		if (t->device.kind != HOIST_DEVICE_DISK || t->nbytes == 0)
			continue;
		struct hoist_tensor f;
		CHECK_OK(hoist_model_fetch(m, i, (struct hoist_device){HOIST_DEVICE_CUDA, 0}, &f));
		CHECK_EQ_INT(f.device.kind, HOIST_DEVICE_CUDA);
		unsigned char *buf = malloc(f.nbytes);
		CHECK_EQ_INT(test_need_fake()->device_read((unsigned long long)(uintptr_t)f.data,
		                                           buf, f.nbytes),
		             0);
		size_t gen = (size_t)strtoull(strrchr(t->name, 'w') + 1, NULL, 10);
		for (uint64_t b = 0; b < f.nbytes; b++)
			if (buf[b] != gen_byte(gen, b))
				FAIL("fetched %s byte %llu differs", t->name,
				     (unsigned long long)b);
		free(buf);
		fetched++;
	}
	CHECK(fetched >= 3);
	check_gen(m, ck);
	struct fakecuda_counters c = test_fake_counters();
	CHECK_EQ_U64(c.pageable_async_copies, 0);
	CHECK_EQ_U64(c.ctx_synchronize_calls, 0);
	CHECK_EQ_U64(c.sync_copies, 0); /* no legacy-stream copies */
	hoist_model_free(m);
	hoist_checkpoint_close(ck);
	check_nothing_alive();
}

/* The fake's copies read their source when they complete: a staging buffer reused
 * before its copy's event would land the next chunk's bytes. Two buffers, slow copies,
 * many chunks. */
TEST(cuda_staging_reuse_waits_for_copies)
{
	test_fake_set("FAKECUDA_COPY_LATENCY_US", "3000");
	struct hoist_checkpoint *ck = open_gen(1, 10, 40000);
	struct hoist_options opt = {
	        .device = "cuda:0", .threads = 1, .chunk_bytes = 4096, .staging_bytes = 8192};
	struct hoist_model *m;
	CHECK_OK(test_load(ck, &opt, &m));
	CHECK_EQ_U64(hoist_model_report(m)->staging_slots, 2);
	CHECK(hoist_model_report(m)->chunks > 20);
	check_gen_on_device(m, ck);
	struct fakecuda_counters c = test_fake_counters();
	CHECK_EQ_U64(c.pageable_async_copies, 0);
	hoist_model_free(m);
	hoist_checkpoint_close(ck);
}

/* ---- the stream's landed reports --------------------------------------------------- */

struct landed_log {
	pthread_t caller;
	const struct hoist__segment *segs;
	const unsigned char *file; /* the source's bytes */
	size_t n, order[64];
	int times[64];
	bool wrong_thread, wrong_bytes;
};

static void on_landed(void *arg, size_t g)
{
	struct landed_log *l = arg;
	if (!pthread_equal(pthread_self(), l->caller))
		l->wrong_thread = true;
	l->times[g]++;
	l->order[l->n++] = g;
	const struct hoist__segment *s = &l->segs[g];
	unsigned char *buf = malloc(s->length + 1);
	/* straight from device memory: reported means there, with nothing to wait for */
	if (test_need_fake()->device_read(s->dst, buf, s->length) != 0 ||
	    memcmp(buf, l->file + s->offset, s->length) != 0)
		l->wrong_bytes = true;
	free(buf);
}

static const char *seg_name(void *arg, size_t tag)
{
	static char names[64][16];
	(void)arg;
	snprintf(names[tag % 64], sizeof names[0], "t%zu", tag);
	return names[tag % 64];
}

/* A job of `nseg` segments of one file onto cuda:0, sized `sizes`. */
struct stream_case {
	struct hoist__source *src;
	struct hoist__dev *dev;
	uint64_t arena, total;
	struct hoist__segment segs[64];
	unsigned char *file;
	struct hoist__job job;
};

static void stream_case_init(struct stream_case *c, const uint64_t *sizes, size_t nseg)
{
	test_need_fake();
	memset(c, 0, sizeof *c);
	for (size_t i = 0; i < nseg; i++)
		c->total += sizes[i];
	c->file = malloc(c->total + 64);
	for (uint64_t b = 0; b < c->total + 64; b++)
		c->file[b] = gen_byte(7, b);
	const char *path = test_path("segments.bin");
	test_write_file(path, c->file, c->total + 64);
	CHECK_OK(hoist__source_open(path, 0, &c->src));
	CHECK_OK(hoist__device_open((struct hoist_device){HOIST_DEVICE_CUDA, 0}, NULL, &c->dev));
	CHECK_OK(c->dev->ops->alloc(c->dev, c->total + 256 * nseg, &c->arena));
	uint64_t off = 64, dst = c->arena;
	for (size_t i = 0; i < nseg; i++) {
		c->segs[i] = (struct hoist__segment){
		        .offset = off, .length = sizes[i], .dst = dst, .tag = i};
		off += sizes[i];
		dst += (sizes[i] + 255) / 256 * 256;
	}
	c->job = (struct hoist__job){.sources = &c->src,
	                             .nsources = 1,
	                             .targets = &c->dev,
	                             .ntargets = 1,
	                             .segments = c->segs,
	                             .nsegments = nseg,
	                             .name = seg_name};
}

static void stream_case_free(struct stream_case *c)
{
	c->dev->ops->free(c->dev, c->arena, 0);
	c->dev->ops->close(c->dev);
	hoist__source_close(c->src);
	free(c->file);
}

TEST(stream_landed_once_each_after_its_bytes)
{
	test_fake_set("FAKECUDA_COPY_LATENCY_US", "2000");
	/* segments that share chunks, span several, and one of no bytes */
	const uint64_t sizes[] = {1000, 70000, 0, 12288, 5, 200000, 333, 4096, 90000, 1};
	size_t nseg = TEST_ARRAY_SIZE(sizes);
	struct stream_case c;
	stream_case_init(&c, sizes, nseg);
	struct landed_log l = {.caller = pthread_self(), .segs = c.segs, .file = c.file};
	c.job.landed = on_landed;
	c.job.landed_arg = &l;
	c.job.threads = 3;
	c.job.chunk_bytes = 16384;
	c.job.staging_bytes = 6 * 16384;
	struct hoist__stream *s;
	CHECK_OK(hoist__stream_prepare(&c.job, &s));
	CHECK_OK(hoist__stream_run(s));
	CHECK(!l.wrong_thread);
	CHECK(!l.wrong_bytes);
	CHECK_EQ_U64(l.n, nseg);
	for (size_t g = 0; g < nseg; g++)
		CHECK_EQ_INT(l.times[g], 1);
	CHECK_EQ_U64(l.order[0], 2); /* no bytes: first */
	hoist__stream_free(s);
	stream_case_free(&c);
	check_nothing_alive();
}

/* A submission that fails names the tensor whose copy it was, not the chunk's first. */
TEST(stream_copy_error_names_its_tensor)
{
	const uint64_t sizes[] = {1000, 2000, 3000, 4000, 5000};
	struct stream_case c;
	stream_case_init(&c, sizes, TEST_ARRAY_SIZE(sizes));
	c.job.threads = 1; /* one reader: the copies are submitted in segment order */
	struct hoist__stream *s;
	CHECK_OK(hoist__stream_prepare(&c.job, &s));
	CHECK_EQ_U64(hoist__stream_stats(s)->chunks, 1);
	test_fake_set("FAKECUDA_FAIL_COPY_SUBMIT", "3");
	CHECK_ERR(hoist__stream_run(s), HOIST_ERR_DEVICE,
	          "segments.bin: tensor \"t2\" (bytes at offset 3064): cuda:0: "
	          "cuMemcpyHtoDAsync_v2: CUDA_ERROR_UNKNOWN");
	hoist__stream_free(s);
	stream_case_free(&c);
	check_nothing_alive();
}

struct host_counts {
	int times[3];
	size_t n;
	bool wrong_thread;
	pthread_t caller;
};

static void count_landed(void *arg, size_t g)
{
	struct host_counts *c = arg;
	if (!pthread_equal(pthread_self(), c->caller))
		c->wrong_thread = true;
	c->times[g]++;
	c->n++;
}

/* Host targets land in the readers; the reports still come on the calling thread. */
TEST(stream_landed_on_host_targets)
{
	const char *path = test_path("h.bin");
	static unsigned char data[300000];
	for (size_t i = 0; i < sizeof data; i++)
		data[i] = gen_byte(3, i);
	test_write_file(path, data, sizeof data);
	struct hoist__source *src;
	CHECK_OK(hoist__source_open(path, 0, &src));
	struct hoist__dev *dev;
	CHECK_OK(hoist__device_open((struct hoist_device){HOIST_DEVICE_CPU, 0}, NULL, &dev));
	uint64_t arena;
	CHECK_OK(dev->ops->alloc(dev, sizeof data, &arena));
	/* a large one read in place, small ones merged and staged */
	struct hoist__segment segs[] = {
	        {.offset = 0, .length = 280000, .dst = arena, .tag = 0},
	        {.offset = 280000, .length = 100, .dst = arena + 280000, .tag = 1},
	        {.offset = 280100, .length = 19900, .dst = arena + 280100, .tag = 2}};
	struct host_counts counts = {.caller = pthread_self()};
	struct hoist__job job = {.sources = &src,
	                         .nsources = 1,
	                         .targets = &dev,
	                         .ntargets = 1,
	                         .segments = segs,
	                         .nsegments = 3,
	                         .threads = 2,
	                         .chunk_bytes = 65536,
	                         .landed = count_landed,
	                         .landed_arg = &counts};
	struct hoist__stream *s;
	CHECK_OK(hoist__stream_prepare(&job, &s));
	CHECK_OK(hoist__stream_run(s));
	hoist__stream_free(s);
	CHECK(!counts.wrong_thread);
	CHECK_EQ_U64(counts.n, 3);
	for (int g = 0; g < 3; g++)
		CHECK_EQ_INT(counts.times[g], 1);
	CHECK(memcmp((void *)(uintptr_t)arena, data, sizeof data) == 0);
	dev->ops->free(dev, arena, sizeof data);
	dev->ops->close(dev);
	hoist__source_close(src);
}

/* ---- starting early ----------------------------------------------------------------- */

TEST(cuda_warmup_is_taken_over)
{
	test_fake_set("FAKECUDA_DEVICES", "2");
	struct hoist_options opt = {.device = "cuda:1", .threads = 2, .chunk_bytes = 65536};
	struct hoist_warmup *w;
	CHECK_OK(hoist_warmup_start(&opt, &w));
	struct hoist_checkpoint *ck = open_gen(2, 10, 100000);
	opt.warmup = w;
	struct hoist_model *m;
	CHECK_OK(test_load(ck, &opt, &m));
	check_gen_on_device(m, ck);
	const struct hoist_report *r = hoist_model_report(m);
	CHECK_STR(r->staging, "pinned by cuMemHostAlloc");
	struct fakecuda_counters c = test_fake_counters();
	CHECK_EQ_U64(c.device[0].contexts_created, 0);
	CHECK_EQ_U64(c.device[1].contexts_created, 1);
	/* the load took the warm GPU and borrowed the warm ring: one pinned allocation
	 * (the ring), no second one */
	CHECK_EQ_U64(c.host_allocations, 1);
	hoist_model_free(m);
	/* the ring is the warm-up's until it goes */
	c = test_fake_counters();
	CHECK_EQ_U64(c.host_allocations_now, 1);
	hoist_warmup_free(w);
	/* a warm-up nothing took, and one for cpu, free what they made */
	struct hoist_options all = {0};
	CHECK_OK(hoist_warmup_start(&all, &w));
	hoist_warmup_free(w);
	struct hoist_options cpu = {.device = "cpu"};
	CHECK_OK(hoist_warmup_start(&cpu, &w));
	hoist_warmup_free(w);
	hoist_checkpoint_close(ck);
	check_nothing_alive();
}

/* The command leaves the model and the ring to process exit: no violation there; and
 * with HOIST_FREE_AT_EXIT=1 it frees everything (the fake's exit check finds nothing
 * left). */
TEST(cuda_cli_load_verify)
{
	test_need_fake();
	const char *dir = test_path("ckpt");
	struct hoist_synth_options so = {.scale = 0.05, .seed = 11};
	CHECK_OK(hoist_synth_write(dir, &so));
	static const char *const runs[] = {
	        "FAKECUDA_LEAK_CHECK_AT_EXIT=violations %s load %s --device cuda:0 --verify",
	        "FAKECUDA_LEAK_CHECK_AT_EXIT=1 HOIST_FREE_AT_EXIT=1 %s load %s --verify "
	        "--source pread --chunk 64KiB --threads 3",
	};
	for (size_t i = 0; i < TEST_ARRAY_SIZE(runs); i++) {
		char *out;
		int rc = test_run(&out, runs[i], test_hoist_bin(), dir);
		if (rc != 0 || !strstr(out, "all bytes match") || !strstr(out, "cuda:0"))
			FAIL("%s: exit %d:\n%s", runs[i], rc, out);
		free(out);
	}
	char *out;
	CHECK_EQ_INT(test_run(&out, "%s load %s --source mmap", test_hoist_bin(), dir), 2);
	CHECK(strstr(out, "--source mmap: expected pread, register or auto"));
	free(out);
}

/* ---- copies straight from the page cache (options.source) --------------------------- */

/* Reads every shard once, so its pages are resident. */
static void warm_files(const struct hoist_checkpoint *ck)
{
	for (size_t i = 0; i < hoist_checkpoint_shard_count(ck); i++) {
		size_t n;
		free(test_read_file(hoist_checkpoint_shard(ck, i)->path, &n));
	}
}

static const struct hoist_report *load_source(const struct hoist_checkpoint *ck,
                                              enum hoist_source source, struct hoist_model **m)
{
	struct hoist_options opt = {
	        .device = "cuda:0", .threads = 4, .chunk_bytes = 65536, .source = source};
	CHECK_OK(test_load(ck, &opt, m));
	check_gen_on_device(*m, ck);
	const struct hoist_report *r = hoist_model_report(*m);
	CHECK_EQ_U64(r->pread_bytes + r->registered_bytes, r->read_bytes);
	return r;
}

TEST(cuda_source_register)
{
	test_need_fake();
	struct hoist_checkpoint *ck = open_gen(2, 20, 200000);
	warm_files(ck);
	struct hoist_model *m;
	const struct hoist_report *r = load_source(ck, HOIST_SOURCE_AUTO, &m);
	CHECK(r->registered_chunks > 0 && r->registered_bytes > 0);
	CHECK(r->pread_bytes > 0); /* beside the pread readers */
	struct fakecuda_counters c = test_fake_counters();
	CHECK_EQ_U64(c.registrations, r->registered_chunks);
	CHECK_EQ_U64(c.registrations_now, 0); /* each unregistered once its copy landed */
	hoist_model_free(m);
	r = load_source(ck, HOIST_SOURCE_REGISTER, &m);
	CHECK(r->registered_chunks > 0);
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	CHECK_OK(hoist_model_report_print(m, f));
	fclose(f);
	CHECK(strstr(text, "copied straight from the page cache"));
	free(text);
	hoist_model_free(m);
	test_need_fake()->counters_reset();
	r = load_source(ck, HOIST_SOURCE_PREAD, &m);
	CHECK_EQ_U64(r->registered_bytes, 0);
	CHECK_EQ_U64(test_fake_counters().registrations, 0);
	hoist_model_free(m);
	hoist_checkpoint_close(ck);
	check_nothing_alive();
}

/* Pages not in the page cache are pread, not registered (auto). */
TEST(cuda_source_auto_skips_cold_pages)
{
	test_need_fake();
	struct hoist_checkpoint *ck = open_gen(2, 10, 2000000);
	for (size_t i = 0; i < hoist_checkpoint_shard_count(ck); i++) {
		int fd = open(hoist_checkpoint_shard(ck, i)->path, O_RDONLY);
		CHECK(fd >= 0);
		fdatasync(fd);
		posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
		close(fd);
	}
	/* where the file system keeps them anyway (tmpfs), there is nothing to check */
	int fd = open(hoist_checkpoint_shard(ck, 0)->path, O_RDONLY);
	void *p = mmap(NULL, 1 << 20, PROT_READ, MAP_SHARED, fd, 0);
	unsigned char vec[256];
	CHECK(p != MAP_FAILED && mincore(p, 1 << 20, vec) == 0);
	munmap(p, 1 << 20);
	close(fd);
	if (vec[200] & 1)
		SKIP("this file system keeps the pages resident (no way to make them cold)");
	/* one reader and a chunk per shard: a pread's readahead (8 MiB here) stays in its
	 * file, so no chunk finds its pages resident */
	struct hoist_options opt = {.device = "cuda:0", .threads = 1, .chunk_bytes = 64 << 20};
	struct hoist_model *m;
	CHECK_OK(test_load(ck, &opt, &m));
	check_gen_on_device(m, ck);
	CHECK_EQ_U64(hoist_model_report(m)->registered_chunks, 0);
	hoist_model_free(m);
	hoist_checkpoint_close(ck);
}

TEST(cuda_source_register_unsupported_or_failing)
{
	test_fake_set("FAKECUDA_QUIET", "1");
	struct hoist_checkpoint *ck = open_gen(2, 20, 200000);
	warm_files(ck);
	/* the driver refuses a registration: auto goes on by pread, register says so */
	test_fake_set("FAKECUDA_FAIL_HOST_REGISTER", "1");
	struct hoist_model *m;
	load_source(ck, HOIST_SOURCE_AUTO, &m);
	hoist_model_free(m);
	test_fake_set("FAKECUDA_FAIL_HOST_REGISTER", "1");
	struct hoist_options opt = {.device = "cuda:0",
	                            .threads = 4,
	                            .chunk_bytes = 65536,
	                            .source = HOIST_SOURCE_REGISTER};
	m = (struct hoist_model *)1;
	CHECK_ERR(test_load(ck, &opt, &m), HOIST_ERR_NO_SPACE,
	          "(--source register): cuda:0: cuMemHostRegister_v2: CUDA_ERROR_OUT_OF_MEMORY");
	CHECK(m == NULL);
	check_nothing_alive();
	/* a GPU without read-only registration: auto never tries, register is refused */
	test_fake_set("FAKECUDA_READ_ONLY_REGISTER", "0");
	const struct hoist_report *r = load_source(ck, HOIST_SOURCE_AUTO, &m);
	CHECK_EQ_U64(r->registered_chunks, 0);
	hoist_model_free(m);
	CHECK_ERR(test_load(ck, &opt, &m), HOIST_ERR_INVALID,
	          "cuda:0: source \"register\": this device and driver cannot register read-only");
	hoist_checkpoint_close(ck);
	check_nothing_alive();
}

/* A chunk whose copies were queued only in part (a later piece's submission failed)
 * has no event recorded after them: only the drain that follows the failure may end
 * it. The calling thread, waiting on an older chunk when such a failure came, took
 * the chunk's event (never recorded, or recorded for the copies of its slot's previous
 * chunk) as done, and unregistered the chunk's window under the copies queued before
 * the failure: a violation, seen in a few runs in a hundred of
 * cuda_fault_at_each_step. Slow copies keep the calling thread waiting, one reader
 * keeps the chunks in order, every chunk (of several tensors) is registered, and the
 * failure comes at each of the first submissions in turn, four times over. */
TEST_TIMEOUT(cuda_failed_submit_keeps_its_window, 120)
{
	test_fake_set("FAKECUDA_QUIET", "1");
	test_fake_set("FAKECUDA_COPY_LATENCY_US", "5000");
	struct hoist_checkpoint *ck = open_gen(1, 40, 3000);
	warm_files(ck);
	struct hoist_options opt = {.device = "cuda:0",
	                            .threads = 1,
	                            .chunk_bytes = 16384,
	                            .source = HOIST_SOURCE_REGISTER};
	/* the failures that strike a registered chunk after its first piece: on this
	 * layout the 7th and 8th submissions, each caught in most rounds */
	for (int round = 0; round < 4 * 11; round++) {
		char nth[16];
		snprintf(nth, sizeof nth, "%d", 2 + round % 11);
		test_fake_set("FAKECUDA_FAIL_COPY_SUBMIT", nth);
		struct hoist_model *m = (struct hoist_model *)1;
		CHECK_ERR(test_load(ck, &opt, &m), HOIST_ERR_DEVICE, "CUDA_ERROR_UNKNOWN");
		CHECK(m == NULL);
		test_fake_set("FAKECUDA_FAIL_COPY_SUBMIT", NULL);
		check_nothing_alive();
	}
	hoist_checkpoint_close(ck);
}

/* The GPU session's scripts (bench/gpu) pass shellcheck: they run once, on a machine
 * where a mistake costs the session (their dry run: make gpu-dry-run). */
TEST(cuda_gpu_bench_scripts_shellcheck)
{
	char *out;
	if (test_run(&out, "command -v shellcheck") != 0)
		SKIP("shellcheck is not installed (scripts/setup.sh installs it)");
	free(out);
	int rc = test_run(&out, "shellcheck bench/gpu/run.sh bench/gpu/prepare.sh");
	if (rc != 0)
		FAIL("shellcheck bench/gpu/*.sh: exit %d\n%s", rc, out);
	free(out);
}
