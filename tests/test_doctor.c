/* test_doctor.c - `hoist doctor` and hoist_doctor_run: each condition the tests can
 * build, reported with its evidence: a cold and a warm page cache (posix_fadvise
 * DONTNEED), a sim device too small, a low RLIMIT_MEMLOCK, a file on tmpfs, a model
 * larger than host memory, no driver, a driver with no GPU and a GPU too small (the
 * fake driver), storage slower than the machine's best; the command's JSON, exit
 * statuses and output errors. */
#include "fakecuda_check.h"
#include "test.h"
#include "fixtures.h"

#include "figures.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <linux/capability.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *synth_in(const char *dir, double scale, uint64_t seed)
{
	struct hoist_synth_options so = {.scale = scale, .seed = seed};
	CHECK_OK(hoist_synth_write(dir, &so));
	return dir;
}

static const struct hoist_finding *finding(const struct hoist_doctor *d, enum hoist_check c)
{
	CHECK_EQ_INT(hoist_doctor_finding_count(d), HOIST_CHECK_COUNT);
	const struct hoist_finding *f = hoist_doctor_finding(d, c);
	CHECK(f && f->check == c);
	CHECK(f->summary[0] && f->evidence[0]);
	return f;
}

/* The finding's verdict, and that its texts contain each needle. */
#define EXPECT(f, want, ...)                                                                       \
	do {                                                                                       \
		const struct hoist_finding *f_ = (f);                                              \
		if (f_->verdict != (want))                                                         \
			FAIL("%s: %s, expected %s: %s | %s | %s", hoist_check_name(f_->check),     \
			     hoist_verdict_name(f_->verdict), hoist_verdict_name(want),            \
			     f_->summary, f_->evidence, f_->remedy);                               \
		const char *needles_[] = {__VA_ARGS__};                                            \
		for (size_t k_ = 0; k_ < TEST_ARRAY_SIZE(needles_); k_++)                          \
			if (!strstr(f_->summary, needles_[k_]) &&                                  \
			    !strstr(f_->evidence, needles_[k_]) &&                                 \
			    !strstr(f_->remedy, needles_[k_]))                                     \
				FAIL("%s: \"%s\" not in: %s | %s | %s",                            \
				     hoist_check_name(f_->check), needles_[k_], f_->summary,       \
				     f_->evidence, f_->remedy);                                    \
	} while (0)

/* Share of a checkpoint's shards in the page cache, by our own mincore. */
static double cached_share(const struct hoist_checkpoint *ck)
{
	uint64_t res = 0, all = 0;
	long page = sysconf(_SC_PAGESIZE);
	for (size_t i = 0; i < hoist_checkpoint_shard_count(ck); i++) {
		const struct hoist_shard *s = hoist_checkpoint_shard(ck, i);
		int fd = open(s->path, O_RDONLY);
		CHECK(fd >= 0);
		void *p = mmap(NULL, s->size, PROT_READ, MAP_SHARED, fd, 0);
		CHECK(p != MAP_FAILED);
		size_t pages = (s->size + (size_t)page - 1) / (size_t)page;
		unsigned char *vec = malloc(pages);
		CHECK(mincore(p, s->size, vec) == 0);
		for (size_t k = 0; k < pages; k++)
			res += (vec[k] & 1) ? (uint64_t)page : 0;
		all += s->size;
		free(vec);
		munmap(p, s->size);
		close(fd);
	}
	return all ? (double)res / (double)all : 1.0;
}

static void drop_from_cache(const struct hoist_checkpoint *ck)
{
	for (size_t i = 0; i < hoist_checkpoint_shard_count(ck); i++) {
		int fd = open(hoist_checkpoint_shard(ck, i)->path, O_RDONLY);
		CHECK(fd >= 0);
		fdatasync(fd);
		CHECK(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) == 0);
		close(fd);
	}
}

static void read_into_cache(const struct hoist_checkpoint *ck)
{
	char buf[1 << 16];
	for (size_t i = 0; i < hoist_checkpoint_shard_count(ck); i++) {
		int fd = open(hoist_checkpoint_shard(ck, i)->path, O_RDONLY);
		CHECK(fd >= 0);
		while (read(fd, buf, sizeof buf) > 0)
			;
		close(fd);
	}
}

TEST_TIMEOUT(doctor_cold_and_warm_page_cache, 60)
{
	test_own_cache();
	const char *dir = synth_in(test_path("ckpt"), 0.02, 1);
	struct hoist_checkpoint *ck;
	CHECK_OK(hoist_checkpoint_open(dir, NULL, &ck));
	drop_from_cache(ck);
	if (cached_share(ck) > 0.5)
		SKIP("posix_fadvise(DONTNEED) left %.0f%% of the shards cached on this file system",
		     100 * cached_share(ck));
	struct hoist_options opt = {.device = "cpu"};
	struct hoist_doctor *d;
	CHECK_OK(hoist_doctor_run(dir, &opt, &d));
	const struct hoist_finding *f = finding(d, HOIST_CHECK_PAGE_CACHE);
	EXPECT(f, HOIST_VERDICT_SLOW, "is not in the page cache",
	       "mincore over 1 shard: ", "resident", "storage: ", "cat FILES > /dev/null",
	       "--direct");
	/* the cold-read cost rests on a measurement made now (nothing is kept here) or
	 * says why it could not be made */
	CHECK(strstr(f->evidence, "measured now: ") ||
	      strstr(f->evidence, "could not be measured"));
	if (strstr(f->evidence, "measured now: "))
		CHECK(strstr(f->summary, " s at ") && strstr(f->summary, " GB/s"));
	hoist_doctor_free(d);
	/* the doctor reads with O_DIRECT: the cache is as cold as it was */
	CHECK(cached_share(ck) < 0.5);

	char *out;
	CHECK_EQ_INT(test_run(&out, "%s doctor %s --device cpu", test_hoist_bin(), dir), 1);
	CHECK(strstr(out, "\nslow       page cache: "));
	CHECK(strstr(out, "           evidence: mincore over 1 shard"));
	free(out);

	read_into_cache(ck);
	CHECK_OK(hoist_doctor_run(dir, &opt, &d));
	EXPECT(finding(d, HOIST_CHECK_PAGE_CACHE), HOIST_VERDICT_OK, "in the page cache (100%)",
	       "1 shard wholly");
	hoist_doctor_free(d);
	hoist_checkpoint_close(ck);
}

TEST(doctor_sim_device_too_small)
{
	test_own_cache();
	const char *dir = synth_in(test_path("ckpt"), 0.02, 2);
	struct hoist_sim_options sim = {.capacity = 1 << 20};
	/* everything on sim:0, which cannot hold it: the plan itself fails */
	struct hoist_options opt = {.device = "sim:0", .sim = &sim};
	struct hoist_doctor *d;
	CHECK_OK(hoist_doctor_run(dir, &opt, &d));
	EXPECT(finding(d, HOIST_CHECK_GPU_MEMORY), HOIST_VERDICT_FAIL,
	       "the plan does not fit the devices' memory", "the planner: sim:0: the tensors need",
	       "--device-map auto");
	/* no plan: the checks that need one say so rather than guess */
	EXPECT(finding(d, HOIST_CHECK_HOST_MEMORY), HOIST_VERDICT_UNMEASURED, "no plan");
	hoist_doctor_free(d);
	/* a budget larger than the device: the plan is made, the load would fail */
	opt.max_memory = "0=1GiB";
	CHECK_OK(hoist_doctor_run(dir, &opt, &d));
	EXPECT(finding(d, HOIST_CHECK_GPU_MEMORY), HOIST_VERDICT_FAIL,
	       "does not fit 1 device' free memory", "sim:0: the plan puts ",
	       "1.05 MB free now (the sim's capacity)");
	hoist_doctor_free(d);
	/* and the load does fail so */
	struct hoist_checkpoint *ck;
	struct hoist_model *m;
	CHECK_OK(hoist_checkpoint_open(dir, NULL, &ck));
	CHECK_ERR(test_load(ck, &opt, &m), HOIST_ERR_NO_SPACE, "sim:0: out of device memory");
	hoist_checkpoint_close(ck);
	/* room enough: fits */
	sim.capacity = 1ull << 30;
	opt.max_memory = NULL;
	CHECK_OK(hoist_doctor_run(dir, &opt, &d));
	EXPECT(finding(d, HOIST_CHECK_GPU_MEMORY), HOIST_VERDICT_OK, "fits", "the sim's capacity");
	hoist_doctor_free(d);
}

/* Drops CAP_IPC_LOCK from this process's effective and permitted sets; false where the
 * kernel refuses. */
static bool drop_ipc_lock(void)
{
	struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct c[2];
	if (syscall(SYS_capget, &h, c) != 0)
		return false;
	c[0].effective &= ~(1u << CAP_IPC_LOCK);
	c[0].permitted &= ~(1u << CAP_IPC_LOCK);
	c[0].inheritable &= ~(1u << CAP_IPC_LOCK);
	return syscall(SYS_capset, &h, c) == 0;
}

TEST(doctor_low_memlock_limit)
{
	test_cuda_absent(); /* the fake, where the tests use it, is no driver here */
	if (test_cuda_driver_loads())
		SKIP("a CUDA driver pins host memory here, not mlock");
	test_own_cache();
	const char *dir = synth_in(test_path("ckpt"), 0.02, 3);
	struct hoist_options opt = {.device = "cpu", .host_memory = HOIST_HOST_PINNED};
	/* This test runs in a child process of its own (the runner forks each test): its
	 * limits go with it. */
	struct rlimit rl = {64 << 10, 64 << 10};
	CHECK(setrlimit(RLIMIT_MEMLOCK, &rl) == 0);
	if (!drop_ipc_lock())
		SKIP("cannot drop CAP_IPC_LOCK: %s", strerror(errno));
	struct hoist_doctor *d;
	CHECK_OK(hoist_doctor_run(dir, &opt, &d));
	EXPECT(finding(d, HOIST_CHECK_MEMLOCK), HOIST_VERDICT_FAIL,
	       "RLIMIT_MEMLOCK 65536 bytes (65.54 KB)", "CAP_IPC_LOCK not held",
	       "would be locked with mlock", "ulimit -l", "--host-memory pageable");
	hoist_doctor_free(d);
	/* the load fails as found, where mlock is itself (the sanitizers make it a no-op
	 * that succeeds) */
	static char page_[1 << 20];
	bool enforced = mlock(page_, sizeof page_) != 0;
	if (!enforced)
		munlock(page_, sizeof page_);
	struct hoist_checkpoint *ck;
	struct hoist_model *m;
	CHECK_OK(hoist_checkpoint_open(dir, NULL, &ck));
	if (enforced)
		CHECK_ERR(test_load(ck, &opt, &m), HOIST_ERR_NOMEM, "with mlock");
	hoist_checkpoint_close(ck);
	/* pageable memory locks nothing */
	opt.host_memory = HOIST_HOST_PAGEABLE;
	CHECK_OK(hoist_doctor_run(dir, &opt, &d));
	EXPECT(finding(d, HOIST_CHECK_MEMLOCK), HOIST_VERDICT_OK, "locks nothing");
	hoist_doctor_free(d);
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path);
}

TEST(doctor_file_on_tmpfs)
{
	struct statfs sf;
	if (statfs("/dev/shm", &sf) != 0 || sf.f_type != 0x01021994)
		SKIP("/dev/shm is not a tmpfs here");
	test_own_cache();
	char dir[256];
	snprintf(dir, sizeof dir, "/dev/shm/hoist-test-doctor-%ld", (long)getpid());
	/* The checks run in a child, so the directory in /dev/shm goes whatever they do. */
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		synth_in(dir, 0.01, 4);
		struct hoist_options opt = {.device = "cpu"};
		struct hoist_doctor *d;
		CHECK_OK(hoist_doctor_run(dir, &opt, &d));
		EXPECT(finding(d, HOIST_CHECK_FILE_SYSTEM), HOIST_VERDICT_NOTE,
		       "the shards are on tmpfs", "statfs f_type 0x1021994", "tmpfs on ",
		       "--host-memory mmap");
		EXPECT(finding(d, HOIST_CHECK_PAGE_CACHE), HOIST_VERDICT_OK, "(100%)");
		EXPECT(finding(d, HOIST_CHECK_HOST_MEMORY), HOIST_VERDICT_OK,
		       "RAM holds the model twice");
		/* memory is no storage to be slow */
		EXPECT(finding(d, HOIST_CHECK_STORAGE_SPEED), HOIST_VERDICT_OK,
		       "the shards are in memory (tmpfs)");
		hoist_doctor_free(d);
		fflush(NULL);
		test_check_no_leaks();
		_exit(0);
	}
	int status = 0;
	waitpid(pid, &status, 0);
	nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
	CHECK(access(dir, F_OK) != 0);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		FAIL("the checks failed (above)");
}

TEST(doctor_model_larger_than_host_memory)
{
	test_own_cache();
	uint64_t avail = 0;
	FILE *f = fopen("/proc/meminfo", "r");
	char line[256];
	while (f && fgets(line, sizeof line, f)) {
		unsigned long long kb;
		if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1)
			avail = kb * 1024;
	}
	if (f)
		fclose(f);
	if (!avail)
		SKIP("no MemAvailable in /proc/meminfo");
	/* One U8 tensor twice the available memory, as a sparse file. */
	uint64_t n = 2 * avail;
	char header[256];
	snprintf(header, sizeof header,
	         "{\"big\":{\"dtype\":\"U8\",\"shape\":[%llu],\"data_offsets\":[0,%llu]}}",
	         (unsigned long long)n, (unsigned long long)n);
	const char *path = test_path("big.safetensors");
	fixture_write_safetensors(path, header, NULL, 0);
	CHECK(truncate(path, (off_t)(8 + strlen(header) + n)) == 0);
	/* on the cpu alone, the planner refuses it */
	struct hoist_options opt = {.device = "cpu"};
	struct hoist_doctor *d;
	CHECK_OK(hoist_doctor_run(path, &opt, &d));
	EXPECT(finding(d, HOIST_CHECK_HOST_MEMORY), HOIST_VERDICT_FAIL, "does not fit host memory",
	       "MemAvailable", "the planner: cpu", "--host-memory mmap");
	hoist_doctor_free(d);
	/* with a budget that lets it through, the load itself would run out */
	opt.max_memory = "cpu=1000TB";
	CHECK_OK(hoist_doctor_run(path, &opt, &d));
	const struct hoist_finding *h = finding(d, HOIST_CHECK_HOST_MEMORY);
	CHECK(h->verdict == HOIST_VERDICT_FAIL || h->verdict == HOIST_VERDICT_SLOW);
	EXPECT(h, h->verdict, "more than is available", "the plan puts ", "in host arenas",
	       "--device-map auto");
	if (h->verdict == HOIST_VERDICT_SLOW)
		CHECK(strstr(h->summary, "would swap"));
	hoist_doctor_free(d);
	/* mapped, nothing is copied */
	opt.host_memory = HOIST_HOST_MMAP;
	CHECK_OK(hoist_doctor_run(path, &opt, &d));
	EXPECT(finding(d, HOIST_CHECK_HOST_MEMORY), HOIST_VERDICT_OK, "views of the mapped files");
	hoist_doctor_free(d);
}

TEST(doctor_no_gpu_driver)
{
	test_cuda_absent();
	if (test_cuda_driver_loads())
		SKIP("a CUDA driver is installed here");
	test_own_cache();
	const char *dir = synth_in(test_path("ckpt"), 0.01, 5);
	struct hoist_doctor *d;
	/* the default target wants a GPU and goes to cpu */
	CHECK_OK(hoist_doctor_run(dir, NULL, &d));
	EXPECT(finding(d, HOIST_CHECK_GPU_DRIVER), HOIST_VERDICT_SLOW,
	       "no CUDA driver: the load goes to cpu instead", "libcuda.so.1",
	       "install the NVIDIA driver");
	hoist_doctor_free(d);
	/* asked for, it fails */
	struct hoist_options opt = {.device = "cuda:0"};
	CHECK_OK(hoist_doctor_run(dir, &opt, &d));
	EXPECT(finding(d, HOIST_CHECK_GPU_DRIVER), HOIST_VERDICT_FAIL, "would fail");
	hoist_doctor_free(d);
	/* a cpu load needs none */
	opt.device = "cpu";
	CHECK_OK(hoist_doctor_run(dir, &opt, &d));
	EXPECT(finding(d, HOIST_CHECK_GPU_DRIVER), HOIST_VERDICT_NOTE, "the plan needs none");
	CHECK_STR(finding(d, HOIST_CHECK_GPU_DRIVER)->remedy, "");
	hoist_doctor_free(d);
}

TEST_TIMEOUT(doctor_driver_with_no_gpu_and_a_gpu_too_small, 60)
{
	const char *fake = test_fake_driver_dir();
	if (!fake)
		SKIP("the fake CUDA driver is not built beside %s (make fakecuda)",
		     test_hoist_bin());
	test_own_cache();
	const char *dir = synth_in(test_path("ckpt"), 0.1, 6);
	char *out;
	/* a driver, no GPU: why */
	int rc = test_run(
	        &out, "CUDA_VISIBLE_DEVICES= LD_LIBRARY_PATH=%s FAKECUDA_DEVICES=0 %s doctor %s",
	        fake, test_hoist_bin(), dir);
	CHECK_EQ_INT(rc, 1);
	CHECK(strstr(out, "slow       gpu driver: a CUDA driver loads but has no usable GPU: the "
	                  "load goes to cpu instead"));
	char want[4300];
	snprintf(want, sizeof want, "libcuda.so.1 loaded from %s/libcuda.so.1", fake);
	CHECK(strstr(out, want));
	CHECK(strstr(out, "no CUDA GPU: cuInit: CUDA_ERROR_NO_DEVICE"));
	CHECK(strstr(out, "CUDA_VISIBLE_DEVICES=\"\""));
	CHECK(strstr(out, "CUDA_VISIBLE_DEVICES hides every GPU"));
	CHECK(!strstr(out, "VIOLATION"));
	free(out);

	/* a GPU of 20 MiB, asked to hold the 31 MB plan (free memory is read without a
	 * context, so no context's cost comes off it) */
	rc = test_run(&out,
	              "LD_LIBRARY_PATH=%s FAKECUDA_DEVICES=1 FAKECUDA_MEMORY=20M %s doctor %s "
	              "--device cuda:0 --max-memory 0=1GB --json",
	              fake, test_hoist_bin(), dir);
	json_t *j = json_loads(out, 0, NULL);
	if (!j)
		FAIL("not JSON (exit %d): %s", rc, out);
	CHECK_EQ_INT(rc, 1);
	json_t *fs = json_object_get(j, "findings");
	json_t *gm = json_array_get(fs, HOIST_CHECK_GPU_MEMORY);
	json_t *gd = json_array_get(fs, HOIST_CHECK_GPU_DRIVER);
	CHECK_STR(json_string_value(json_object_get(gm, "check")), "gpu memory");
	CHECK_STR(json_string_value(json_object_get(gm, "verdict")), "fail");
	CHECK(strstr(json_string_value(json_object_get(gm, "evidence")), "cuda:0: the plan puts "));
	CHECK(strstr(json_string_value(json_object_get(gm, "evidence")),
	             "free now (cuMemGetInfo)"));
	CHECK_STR(json_string_value(json_object_get(gd, "verdict")), "ok");
	CHECK(strstr(json_string_value(json_object_get(gd, "evidence")), "cuda:0 Fake H200"));
	json_decref(j);
	free(out);
}

TEST(doctor_storage_slower_than_the_best)
{
	test_own_cache();
	const char *dir = synth_in(test_path("ckpt"), 0.01, 7);
	uint64_t here = hoist__fs_dev(dir);
	struct hoist_bench *b;
	CHECK_OK(hoist__bench_new(&b));
	struct hoist__figure f;
	memset(&f, 0, sizeof f);
	f.pub.link = HOIST_LINK_STORAGE;
	f.pub.device = (struct hoist_device){HOIST_DEVICE_CPU, 0};
	f.pub.bytes_per_second = 1e8;
	f.pub.threads = 4;
	f.pub.measured_at = 1700000000;
	f.fs_dev = here;
	snprintf(f.where, sizeof f.where, "ext4 on /dev/slow, mounted at /");
	CHECK_OK(hoist__bench_put(b, &f));
	CHECK_OK(hoist_bench_save(b));
	struct hoist_options opt = {.device = "cpu"};
	struct hoist_doctor *d;
	/* no other storage measured: nothing to compare with, and it says so */
	CHECK_OK(hoist_doctor_run(dir, &opt, &d));
	EXPECT(finding(d, HOIST_CHECK_STORAGE_SPEED), HOIST_VERDICT_UNMEASURED, "no other storage",
	       "measured by hoist bench on ", "hoist bench DIR");
	hoist_doctor_free(d);

	f.pub.bytes_per_second = 1e10;
	f.fs_dev = here + 1;
	snprintf(f.where, sizeof f.where, "xfs on /dev/nvme0n1, mounted at /fast");
	CHECK_OK(hoist__bench_put(b, &f));
	CHECK_OK(hoist_bench_save(b));
	hoist_bench_free(b);
	CHECK_OK(hoist_doctor_run(dir, &opt, &d));
	EXPECT(finding(d, HOIST_CHECK_STORAGE_SPEED), HOIST_VERDICT_SLOW,
	       "100.0x slower than this machine's best", "0.10 GB/s read cold",
	       "10.00 GB/s, xfs on /dev/nvme0n1, mounted at /fast",
	       "copy the checkpoint to the faster storage (xfs on /dev/nvme0n1");
	hoist_doctor_free(d);
}

/* A path with quotes, a backslash and a byte that is not UTF-8 still makes JSON:
 * escaped, the stray byte as '?' (inspect and doctor share the writer). */
TEST(cli_json_escapes_odd_paths)
{
	test_own_cache();
	const char *dir = synth_in(test_path("a \"b\" \\c \xff"), 0.01, 8);
	char expect[4096];
	snprintf(expect, sizeof expect, "%s", dir);
	*strchr(expect, '\xff') = '?';
	for (int k = 0; k < 2; k++) {
		char *out;
		CHECK_EQ_INT(test_run(&out, "%s %s '%s' %s--json > %s", test_hoist_bin(),
		                      k ? "doctor" : "inspect", dir, k ? "--device cpu " : "",
		                      test_path("out.json")),
		             k ? test_run(NULL, "%s doctor '%s' --device cpu >/dev/null",
		                          test_hoist_bin(), dir)
		               : 0);
		free(out);
		json_error_t jerr;
		json_t *j = json_load_file(test_path("out.json"), 0, &jerr);
		if (!j)
			FAIL("%s: not JSON: %s", k ? "doctor" : "inspect", jerr.text);
		CHECK_STR(json_string_value(json_object_get(j, "path")), expect);
		json_decref(j);
	}
}

TEST(doctor_cli_json_usage_and_output_errors)
{
	test_own_cache();
	const char *dir = synth_in(test_path("ckpt"), 0.01, 8);
	char *out;
	CHECK_EQ_INT(test_run(&out, "%s doctor %s --device cpu --json > %s", test_hoist_bin(), dir,
	                      test_path("out.json")),
	             test_run(NULL, "%s doctor %s --device cpu >/dev/null", test_hoist_bin(), dir));
	free(out);
	json_error_t jerr;
	json_t *j = json_load_file(test_path("out.json"), 0, &jerr);
	if (!j)
		FAIL("not JSON: %s", jerr.text);
	CHECK_STR(json_string_value(json_object_get(j, "path")), dir);
	json_t *fs = json_object_get(j, "findings");
	CHECK_EQ_INT(json_array_size(fs), HOIST_CHECK_COUNT);
	for (size_t i = 0; i < json_array_size(fs); i++) {
		json_t *f = json_array_get(fs, i);
		CHECK_STR(json_string_value(json_object_get(f, "check")),
		          hoist_check_name((enum hoist_check)i));
		CHECK(json_string_value(json_object_get(f, "verdict")));
		CHECK(json_string_length(json_object_get(f, "summary")) > 0);
		CHECK(json_string_length(json_object_get(f, "evidence")) > 0);
		CHECK(json_is_string(json_object_get(f, "remedy")));
	}
	json_decref(j);
	CHECK_EQ_INT(test_run(&out, "%s doctor %s --device cpu > /dev/full", test_hoist_bin(), dir),
	             1);
	CHECK(strstr(out, "hoist: writing the output: No space left on device"));
	free(out);
	/* usage errors: exit 2 (the wording is the argument parser's) */
	CHECK_EQ_INT(test_run(&out, "%s doctor", test_hoist_bin()), 2);
	CHECK(strstr(out, "missing PATH"));
	free(out);
	CHECK_EQ_INT(test_run(&out, "%s doctor %s --frobnicate", test_hoist_bin(), dir), 2);
	free(out);
	CHECK_EQ_INT(test_run(&out, "%s doctor %s/nowhere", test_hoist_bin(), dir), 1);
	CHECK(strstr(out, "nowhere"));
	free(out);
	/* a map file that is not there is the caller's error, not a finding */
	CHECK_EQ_INT(test_run(&out, "%s doctor %s --device-map nosuch.json", test_hoist_bin(), dir),
	             1);
	CHECK(strstr(out, "hoist: device map nosuch.json: cannot open"));
	CHECK(!strstr(out, "page cache"));
	free(out);
	CHECK_EQ_INT(test_run(&out, "%s doctor %s --dtype F8", test_hoist_bin(), dir), 2);
	free(out);
	struct hoist_doctor *d;
	CHECK_ERR(hoist_doctor_run(NULL, NULL, &d), HOIST_ERR_INVALID, "NULL");
	CHECK(hoist_check_name(HOIST_CHECK_COUNT) == NULL);
	CHECK(hoist_verdict_name((enum hoist_verdict)99) == NULL);
	CHECK(hoist_doctor_finding(NULL, 0) == NULL);
	hoist_doctor_free(NULL);
}
