/* test_cuda.c - on a CUDA GPU, what the sim tests check: every byte of the reference
 * and synthetic checkpoints arrives (read back with hoist_model_read), conversion,
 * tiny chunks with many threads, pinned host memory through the driver, driver errors
 * named. Each test skips, giving the dlopen reason, where no driver loads. */
#include "registry.h"
#include "fixtures.h"
#include "test.h"

#include <errno.h>

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
	CHECK_OK(b->alloc(dev, 1 << 20, &a));
	unsigned char src[4096], back[4096];
	for (size_t i = 0; i < sizeof src; i++)
		src[i] = (unsigned char)(i * 7 + 1);
	CHECK_OK(b->copy_in(dev, a + 512, src, sizeof src));
	CHECK_OK(b->copy_out(dev, back, a + 512, sizeof back));
	CHECK(memcmp(src, back, sizeof src) == 0);
	b->free(dev, a, 1 << 20);
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

/* Where no driver loads, the load says why, and never falls back to another device. */
TEST(cuda_absent_says_why)
{
	struct hoist_device_info info[1];
	size_t n;
	if (hoist_device_list(HOIST_DEVICE_CUDA, NULL, info, 1, &n) == HOIST_OK)
		SKIP("a CUDA GPU is present: nothing to check about its absence");
	struct hoist_checkpoint *ck;
	CHECK_OK(hoist_checkpoint_open(
	        test_join(test_data_dir(), "reference/all_dtypes.safetensors"), NULL, &ck));
	struct hoist_options opt = {.device = "cuda:0"};
	struct hoist_model *m = (struct hoist_model *)1;
	CHECK_ERR(test_load(ck, &opt, &m), HOIST_ERR_NO_DEVICE, "libcuda.so.1");
	CHECK(m == NULL);
	struct hoist__dev *dev = (struct hoist__dev *)1;
	CHECK_ERR(hoist__backend_cuda.open(NULL, 0, &dev), HOIST_ERR_NO_DEVICE, "libcuda.so.1: ");
	hoist_checkpoint_close(ck);
}
