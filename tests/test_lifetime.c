/* test_lifetime.c - what a binding builds on: the model's reference count (DLPack
 * exports outlive hoist_model_free, and the last one frees host and sim memory), the
 * landed callback, DLPack exports of every dtype, ranges read back, and Hub model ids
 * resolved in a local cache. */
#include "test.h"
#include "fixtures.h"
#include "hoist_dlpack.h"

#include <dirent.h>
#include <jansson.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

/* Simulated device memory still held by this process: the sim backend's memfds. */
static size_t sim_memfds(void)
{
	DIR *d = opendir("/proc/self/fd");
	CHECK(d != NULL);
	size_t n = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		char path[300], target[256];
		snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
		ssize_t len = readlink(path, target, sizeof target - 1);
		if (len > 0) {
			target[len] = '\0';
			n += strstr(target, "memfd:hoist-sim") != NULL;
		}
	}
	closedir(d);
	return n;
}

static struct hoist_checkpoint *tiny(void)
{
	struct hoist_checkpoint *c = NULL;
	CHECK_OK(hoist_checkpoint_open(test_join(test_data_dir(), "reference/tiny-qwen2-vl"), NULL,
	                               &c));
	return c;
}

TEST(model_exports_outlive_free_and_the_last_frees)
{
	struct hoist_checkpoint *c = tiny();
	struct hoist_sim_options sim = {.devices = 1};
	struct hoist_options opt = {.device = "sim:0", .sim = &sim};
	size_t before = sim_memfds();
	for (int round = 0; round < 20; round++) {
		struct hoist_model *m = NULL;
		CHECK_OK(test_load(c, &opt, &m));
		CHECK(sim_memfds() > before);
		DLManagedTensor *a;
		DLManagedTensorVersioned *b;
		CHECK_OK(hoist_model_dlpack(m, 0, 0, &a));
		CHECK_OK(hoist_model_dlpack_versioned(m, 5, 0, &b));
		CHECK_EQ_INT(a->dl_tensor.device.device_type, kDLExtDev);
		CHECK_EQ_INT(b->version.major, 1);
		hoist_model_free(m);
		CHECK(sim_memfds() > before); /* the exports hold it */
		if (round % 2)
			a->deleter(a);
		else
			b->deleter(b);
		CHECK(sim_memfds() > before);
		if (round % 2)
			b->deleter(b);
		else
			a->deleter(a);
		CHECK_EQ_INT(sim_memfds(), before);
	}
	/* cpu: an export's bytes stay readable after the model is freed */
	struct hoist_options cpu = {.device = "cpu", .host_memory = HOIST_HOST_PAGEABLE};
	struct hoist_model *m = NULL;
	CHECK_OK(test_load(c, &cpu, &m));
	const struct hoist_tensor *t = hoist_model_tensor(m, 3);
	unsigned char *want = malloc(t->nbytes);
	CHECK_OK(hoist_model_read(m, 3, want, t->nbytes));
	DLManagedTensor *x;
	CHECK_OK(hoist_model_dlpack(m, 3, 0, &x));
	uint64_t nbytes = t->nbytes;
	hoist_model_free(m);
	hoist_checkpoint_close(c);
	CHECK(memcmp(x->dl_tensor.data, want, nbytes) == 0);
	x->deleter(x);
	free(want);
}

struct told {
	size_t count, order[128];
	pthread_t thread;
	bool wrong_thread;
	size_t stop_after;
	DLManagedTensor *kept;
};

static int on_landed(struct hoist_model *m, size_t tensor, void *arg)
{
	struct told *t = arg;
	if (!pthread_equal(pthread_self(), t->thread))
		t->wrong_thread = true;
	CHECK(hoist_model_tensor(m, tensor) != NULL);
	if (t->count < 128)
		t->order[t->count] = tensor;
	t->count++;
	if (t->stop_after && t->count == t->stop_after) {
		CHECK_OK(hoist_model_dlpack(m, tensor, 0, &t->kept));
		return 1;
	}
	return 0;
}

TEST(model_landed_callback_once_each_on_the_calling_thread)
{
	struct hoist_checkpoint *c = tiny();
	size_t n = hoist_checkpoint_tensor_count(c);
	CHECK(n <= 128);
	const char *devices[] = {"cpu", "sim:0"};
	enum hoist_host_memory hm[] = {HOIST_HOST_MMAP, HOIST_HOST_DEFAULT};
	for (size_t k = 0; k < 2; k++) {
		struct told told = {.thread = pthread_self()};
		struct hoist_options opt = {.device = devices[k],
		                            .host_memory = hm[k],
		                            .landed = on_landed,
		                            .landed_arg = &told};
		struct hoist_model *m = NULL;
		CHECK_OK(test_load(c, &opt, &m));
		CHECK(!told.wrong_thread);
		CHECK_EQ_INT(told.count, n);
		bool seen[128] = {false};
		for (size_t i = 0; i < n; i++) {
			CHECK(!seen[told.order[i]]);
			seen[told.order[i]] = true;
		}
		hoist_model_free(m);
	}
	/* Cancelling from the callback: HOIST_ERR_CANCELLED, nothing left but what the
	 * callback kept, which stays valid until its deleter. */
	size_t before = sim_memfds();
	struct told told = {.thread = pthread_self(), .stop_after = 3};
	struct hoist_options opt = {.device = "sim:0", .landed = on_landed, .landed_arg = &told};
	struct hoist_model *m = NULL;
	CHECK_ERR(test_load(c, &opt, &m), HOIST_ERR_CANCELLED, "cancelled by the landed callback");
	CHECK(m == NULL);
	CHECK(told.kept != NULL);
	CHECK(sim_memfds() > before);
	told.kept->deleter(told.kept);
	CHECK_EQ_INT(sim_memfds(), before);
	hoist_checkpoint_close(c);
}

TEST(dlpack_every_dtype_with_its_code)
{
	struct hoist_checkpoint *c = NULL;
	CHECK_OK(hoist_checkpoint_open(
	        test_join(test_data_dir(), "reference/all_dtypes.safetensors"), NULL, &c));
	struct hoist_options opt = {.device = "cpu", .host_memory = HOIST_HOST_PAGEABLE};
	struct hoist_model *m = NULL;
	CHECK_OK(test_load(c, &opt, &m));
	static const struct {
		const char *dtype;
		int code, bits;
	} want[] = {
	        {"BOOL", kDLBool, 8},
	        {"U8", kDLUInt, 8},
	        {"I8", kDLInt, 8},
	        {"I16", kDLInt, 16},
	        {"U16", kDLUInt, 16},
	        {"I32", kDLInt, 32},
	        {"U32", kDLUInt, 32},
	        {"I64", kDLInt, 64},
	        {"U64", kDLUInt, 64},
	        {"F16", kDLFloat, 16},
	        {"BF16", kDLBfloat, 16},
	        {"F32", kDLFloat, 32},
	        {"F64", kDLFloat, 64},
	        {"C64", kDLComplex, 64},
	        {"F8_E4M3", kDLFloat8_e4m3fn, 8},
	        {"F8_E5M2", kDLFloat8_e5m2, 8},
	        {"F8_E8M0", kDLFloat8_e8m0fnu, 8},
	        {"F4", kDLFloat4_e2m1fn, 4},
	        {"F6_E2M3", kDLFloat6_e2m3fn, 6},
	        {"F6_E3M2", kDLFloat6_e3m2fn, 6},
	};
	size_t checked = 0;
	for (size_t i = 0; i < hoist_model_tensor_count(m); i++) {
		const struct hoist_tensor *t = hoist_model_tensor(m, i);
		DLManagedTensorVersioned *v;
		DLManagedTensor *b;
		CHECK_OK(hoist_model_dlpack_versioned(m, i, 0, &v));
		CHECK_OK(hoist_model_dlpack(m, i, HOIST_DLPACK_BYTES, &b));
		const DLTensor *d = &v->dl_tensor;
		for (size_t k = 0; k < TEST_ARRAY_SIZE(want); k++) {
			if (strcmp(hoist_dtype_name(t->dtype), want[k].dtype) != 0)
				continue;
			if (d->dtype.code != want[k].code || d->dtype.bits != want[k].bits)
				FAIL("%s (%s): code %d bits %d", t->name, want[k].dtype,
				     d->dtype.code, d->dtype.bits);
			checked++;
		}
		CHECK_EQ_INT(d->dtype.lanes, 1);
		CHECK_EQ_INT(d->ndim, (int)t->ndim);
		CHECK_EQ_INT(d->device.device_type, kDLCPU);
		CHECK(d->byte_offset == 0 && v->flags == 0);
		int64_t step = 1;
		for (int k = d->ndim; k-- > 0;) {
			CHECK_EQ_INT(d->shape[k], t->shape[k]);
			CHECK_EQ_INT(d->strides[k], step);
			step *= d->shape[k];
		}
		/* never NULL, an empty tensor's included: torch before 2.3 would never
		 * call its deleter */
		CHECK(d->data != NULL && (t->nbytes == 0 || d->data == t->data));
		CHECK(b->dl_tensor.data == d->data);
		/* the byte view: uint8, as many bytes as the tensor, last dimension in bytes */
		const DLTensor *y = &b->dl_tensor;
		CHECK(y->dtype.code == kDLUInt && y->dtype.bits == 8);
		uint64_t count = 1;
		for (int k = 0; k < y->ndim; k++)
			count *= (uint64_t)y->shape[k];
		CHECK_EQ_U64(count, t->nbytes);
		if (t->ndim == 0)
			CHECK_EQ_INT(y->ndim, 1);
		v->deleter(v);
		b->deleter(b);
	}
	CHECK(checked >= 18);
	DLDataType dt;
	CHECK_ERR(hoist_dtype_dlpack(HOIST_DTYPE_NONE, &dt), HOIST_ERR_INVALID, "not a dtype");
	CHECK_ERR(hoist_model_dlpack(m, 999, 0, &(DLManagedTensor *){NULL}), HOIST_ERR_INVALID,
	          "no tensor 999");
	hoist_model_free(m);
	hoist_checkpoint_close(c);
}

TEST(model_disk_tensors_export_no_memory_and_read_by_range)
{
	struct hoist_checkpoint *c = tiny();
	struct hoist_options opt = {.device = "disk"};
	struct hoist_model *m = NULL;
	CHECK_OK(test_load(c, &opt, &m));
	DLManagedTensor *x;
	CHECK_ERR(hoist_model_dlpack(m, 0, 0, &x), HOIST_ERR_INVALID, "in no memory to export");
	struct hoist_options cpu = {.device = "cpu", .host_memory = HOIST_HOST_PAGEABLE};
	struct hoist_model *r = NULL;
	CHECK_OK(test_load(c, &cpu, &r));
	for (size_t i = 0; i < hoist_model_tensor_count(m); i++) {
		uint64_t n = hoist_model_tensor(m, i)->nbytes;
		unsigned char *all = malloc(n + 1), *part = malloc(n + 1);
		CHECK_OK(hoist_model_read(r, i, all, n));
		uint64_t a = n / 3, len = n - a - n / 5;
		CHECK_OK(hoist_model_read_at(m, i, a, part, len));
		CHECK(memcmp(all + a, part, len) == 0);
		CHECK_OK(hoist_model_read_at(r, i, a, part, len));
		CHECK(memcmp(all + a, part, len) == 0);
		CHECK_ERR(hoist_model_read_at(m, i, a, part, n), HOIST_ERR_INVALID,
		          "are not a range of it");
		free(all);
		free(part);
	}
	hoist_model_free(r);
	hoist_model_free(m);
	hoist_checkpoint_close(c);
}

/* ---- the Hub cache ---------------------------------------------------------------- */

static void make_snapshot(const char *repo, const char *commit)
{
	char cmd[4096];
	snprintf(cmd, sizeof cmd,
	         "mkdir -p '%s/refs' '%s/snapshots/%s' && cp '%s'/* '%s/snapshots/%s/'", repo, repo,
	         commit, test_join(test_data_dir(), "reference/tiny-qwen2-vl"), repo, commit);
	char *out = NULL;
	if (test_run(&out, "%s", cmd) != 0)
		FAIL("%s: %s", cmd, out);
	free(out);
}

TEST(hub_ids_resolve_offline_in_the_cache)
{
	const char *cache = test_path("hub");
	char repo[4096], out[4096];
	snprintf(repo, sizeof repo, "%s/models--hoist-test--tiny.qwen2_vl", cache);
	const char *commit = "0123456789abcdef0123456789abcdef01234567";
	make_snapshot(repo, commit);
	test_write_file(test_join(repo, "refs/main"), commit, strlen(commit));
	test_write_file(test_join(repo, "refs/v1"), "abc\n", 4);
	make_snapshot(repo, "abc");

	unsetenv("HUGGINGFACE_HUB_CACHE");
	unsetenv("HF_HOME");
	setenv("HF_HUB_CACHE", cache, 1);
	CHECK_OK(hoist_hub_resolve("hoist-test/tiny.qwen2_vl", NULL, out, sizeof out));
	CHECK(strstr(out, "/snapshots/0123456789abcdef0123456789abcdef01234567") != NULL);
	CHECK_OK(hoist_hub_resolve("hoist-test/tiny.qwen2_vl", "v1", out, sizeof out));
	CHECK(strstr(out, "/snapshots/abc") != NULL);
	CHECK_OK(hoist_hub_resolve("hoist-test/tiny.qwen2_vl", commit, out, sizeof out));
	/* HF_HOME/hub when HF_HUB_CACHE is unset */
	unsetenv("HF_HUB_CACHE");
	char home[4096];
	snprintf(home, sizeof home, "%s", test_path("hfhome"));
	char *o = NULL;
	CHECK(test_run(&o, "mkdir -p '%s' && ln -s '%s' '%s/hub'", home, cache, home) == 0);
	free(o);
	setenv("HF_HOME", home, 1);
	CHECK_OK(hoist_hub_resolve("hoist-test/tiny.qwen2_vl", NULL, out, sizeof out));
	CHECK(strstr(out, "/hfhome/hub/models--hoist-test--tiny.qwen2_vl/snapshots/") != NULL);

	/* hoist_checkpoint_open falls back to the cache for an id */
	struct hoist_checkpoint *c = NULL;
	CHECK_OK(hoist_checkpoint_open("hoist-test/tiny.qwen2_vl", NULL, &c));
	CHECK_EQ_INT(hoist_checkpoint_tensor_count(c), 70);
	hoist_checkpoint_close(c);
	CHECK_OK(hoist_checkpoint_open("hoist-test/tiny.qwen2_vl@v1", NULL, &c));
	hoist_checkpoint_close(c);

	/* not there: the message says where it looked and that nothing is downloaded */
	CHECK_ERR(hoist_checkpoint_open("hoist-test/absent", NULL, &c), HOIST_ERR_IO,
	          "hoist-test/absent: no such file or directory, and hoist-test/absent is not "
	          "in the Hugging Face Hub cache: no directory ");
	CHECK(strstr(hoist_errmsg(), "/hfhome/hub/models--hoist-test--absent (the cache ") &&
	      strstr(hoist_errmsg(), "is from HF_HOME); hoist never downloads"));
	CHECK_ERR(hoist_checkpoint_open("hoist-test/tiny.qwen2_vl@v2", NULL, &c), HOIST_ERR_IO,
	          "refs/v2, and \"v2\" is not a commit hash");
	CHECK_ERR(hoist_hub_resolve("a/b/c", NULL, out, sizeof out), HOIST_ERR_INVALID,
	          "not a Hugging Face Hub model id");
	CHECK_ERR(hoist_hub_resolve("a--b", NULL, out, sizeof out), HOIST_ERR_INVALID,
	          "not a Hugging Face Hub model id");
	CHECK_ERR(hoist_hub_resolve("hoist-test/tiny.qwen2_vl", NULL, out, 8), HOIST_ERR_INVALID,
	          "bytes of output");
	/* a path that is no id keeps its plain message */
	CHECK_ERR(hoist_checkpoint_open("/no/such/dir", NULL, &c), HOIST_ERR_IO,
	          "/no/such/dir: No such file or directory");
	/* the command resolves the same way */
	char *cli = NULL;
	int rc = test_run(&cli, "HF_HOME='%s' %s inspect hoist-test/tiny.qwen2_vl", home,
	                  test_hoist_bin());
	if (rc != 0)
		FAIL("rc %d: %s", rc, cli);
	CHECK(strstr(cli, "tensors: 70") != NULL);
	free(cli);
}
