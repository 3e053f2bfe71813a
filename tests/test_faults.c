/* test_faults.c - faults in every phase of a load, through the library's wrappers
 * (base.h), the sim's injected faults and the process's limits: EINTR (injected and
 * from real signals), short reads, EIO at one byte of one file, ENOMEM, refused
 * pinned memory, device allocation and copy failures, output write errors,
 * cancellation, and a file truncated, rewritten, replaced or removed while it loads.
 * Each must end in the right status and message, nothing reported loaded (the
 * out-pointer NULL), and nothing left held: the descriptors, threads and sim device
 * memory are counted before and after (resources.h), and LeakSanitizer checks memory
 * under `make asan`.
 *
 * The checkpoint: 2 shards of 10 tensors "layers.<N>.w<M>" (gen_checkpoint), tensors
 * 4, 9, 14 and 19 of about 800 KB, and a config.json. */
#include "base.h"
#include "fakecuda_check.h"
#include "fixtures.h"
#include "resources.h"
#include "test.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <linux/capability.h>

#define BIG 14 /* a big tensor of shard 2: "layers.3.w14", I64 */

static const char *gen_dir(void)
{
	static char dir[4096];
	if (!dir[0]) {
		snprintf(dir, sizeof dir, "%s", test_path("gen"));
		gen_checkpoint(dir, 2, 10, 100000);
		const char *config = "{\"architectures\":[\"Qwen2ForCausalLM\"],"
		                     "\"torch_dtype\":\"bfloat16\"}";
		test_write_file(test_join(dir, "config.json"), config, strlen(config));
	}
	return dir;
}

static struct hoist_checkpoint *open_gen(void)
{
	struct hoist_checkpoint *ck;
	CHECK_OK(hoist_checkpoint_open(gen_dir(), NULL, &ck));
	CHECK_EQ_INT(hoist_checkpoint_tensor_count(ck), 20);
	CHECK_STR(hoist_checkpoint_tensor(ck, BIG)->name, "layers.3.w14");
	return ck;
}

static const char *shard_path(const struct hoist_checkpoint *ck, size_t i)
{
	return hoist_checkpoint_shard(ck, i)->path;
}

/* A device-map file in the test's directory. */
static const char *map_file(const char *name, const char *json)
{
	const char *path = test_path(name);
	test_write_file(path, json, strlen(json));
	return path;
}

/* Loads ck to opt's target, checks every byte and frees it. */
static void load_check_free(const struct hoist_checkpoint *ck, const struct hoist_options *opt)
{
	struct hoist_model *m;
	CHECK_OK(test_load(ck, opt, &m));
	check_gen(m, ck);
	hoist_model_free(m);
}

/* A load that must fail: status, a message holding `needle`, nothing loaded, nothing
 * held that was not held before. Faults stay armed (the caller clears them). */
static void load_fails(const struct hoist_checkpoint *ck, const struct hoist_options *opt,
                       enum hoist_status status, const char *needle, const char *when)
{
	struct test_held before;
	test_held_now(&before);
	struct hoist_model *m = (struct hoist_model *)1;
	enum hoist_status st = test_load(ck, opt, &m);
	if (st != status || !strstr(hoist_errmsg(), needle))
		FAIL("%s: %s (%s), expected %s with \"%s\"", when, hoist_status_name(st),
		     hoist_errmsg(), hoist_status_name(status), needle);
	CHECK(m == NULL);
	test_held_check(&before, when);
	test_check_no_leaks();
}

/* The targets every stream fault is tried on: a sim device (copy engines, staging),
 * cpu (readers land the bytes), cpu with O_DIRECT (aligned reads through staging). */
static struct hoist_sim_options sim_opt;

static struct hoist_options target(int i)
{
	struct hoist_options opt = {.chunk_bytes = 65536, .staging_bytes = 262144, .threads = 3};
	opt.sim = &sim_opt;
	opt.device = i == 0 ? "sim:0" : "cpu";
	opt.direct = i == 2;
	return opt;
}

#define NTARGETS 3

/* ---- EINTR and short reads: retried, every byte lands ------------------------------ */

TEST(faults_eintr_every_call_retried)
{
	struct test_held before;
	test_held_now(&before);
	hoist_fault_set(HOIST_FAULT_EINTR, 1, 0, true);
	struct hoist_checkpoint *ck = open_gen();
	CHECK_STR(hoist_checkpoint_architecture(ck), "Qwen2ForCausalLM");
	long at_open = hoist_fault_struck(HOIST_FAULT_EINTR);
	CHECK(at_open >= 2 * 4); /* index, 2 shards, config: an open and a read or two each */
	for (int i = 0; i < NTARGETS; i++) {
		struct hoist_options opt = target(i);
		load_check_free(ck, &opt);
	}
	/* the map file, and disk tensors read from their files on demand */
	struct hoist_options opt = {
	        .device = "cpu",
	        .device_map = map_file("map.json", "{\"layers.3.\": \"disk\", \"\": \"cpu\"}")};
	load_check_free(ck, &opt);
	CHECK(hoist_fault_struck(HOIST_FAULT_EINTR) > at_open + 20);
	hoist_fault_clear_all();
	hoist_checkpoint_close(ck);
	test_held_check(&before, "after the loads");
}

/* Lock-free, so the handler may count on any thread. */
static atomic_int signals;

static void on_signal(int sig)
{
	(void)sig;
	atomic_fetch_add_explicit(&signals, 1, memory_order_relaxed);
}

/* Real signals, SIGUSR1 from a timer every 200 us (to whichever thread runs, hoist's
 * workers too), with a handler installed without SA_RESTART, so interrupted calls
 * return EINTR as in a program that handles its own signals: open, plan and load
 * still land every byte. */
TEST(faults_signal_storm_without_sa_restart)
{
	const char *dir = gen_dir();
	struct sigaction sa = {.sa_handler = on_signal};
	sigemptyset(&sa.sa_mask);
	CHECK_EQ_INT(sigaction(SIGUSR1, &sa, NULL), 0);
	timer_t timer;
	struct sigevent ev = {.sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGUSR1};
	CHECK_EQ_INT(timer_create(CLOCK_MONOTONIC, &ev, &timer), 0);
	struct itimerspec every = {{0, 200000}, {0, 200000}};
	CHECK_EQ_INT(timer_settime(timer, 0, &every, NULL), 0);
	for (int round = 0; round < 3; round++) {
		struct hoist_checkpoint *ck;
		CHECK_OK(hoist_checkpoint_open(dir, NULL, &ck));
		for (int i = 0; i < NTARGETS; i++) {
			struct hoist_options opt = target(i);
			opt.sim = &(struct hoist_sim_options){.bytes_per_sec = 20e6};
			load_check_free(ck, &opt);
		}
		hoist_checkpoint_close(ck);
	}
	CHECK_EQ_INT(timer_delete(timer), 0);
	CHECK(atomic_load(&signals) > 10);
}

TEST(faults_short_reads_every_phase)
{
	hoist_fault_set(HOIST_FAULT_SHORT_READ, 1, 0, true);
	struct hoist_checkpoint *ck = open_gen();
	CHECK_STR(hoist_checkpoint_config_dtype(ck), "bfloat16");
	for (int i = 0; i < NTARGETS; i++) {
		struct hoist_options opt = target(i);
		load_check_free(ck, &opt);
	}
	struct hoist_options opt = {.device = "cpu",
	                            .device_map = map_file("map.json", "{\"\": \"disk\"}")};
	load_check_free(ck, &opt);
	CHECK(hoist_fault_struck(HOIST_FAULT_SHORT_READ) > 40);
	hoist_fault_clear_all();
	hoist_checkpoint_close(ck);
}

/* A direct read of one block cannot be shortened: it is left alone and the fault
 * stays armed for the next read that can be. */
TEST(faults_short_read_spares_one_direct_block)
{
	const char *path = test_path("blocks");
	static char data[8192];
	test_write_file(path, data, sizeof data);
	int fd = hoist__open(path, O_RDONLY | O_DIRECT);
	if (fd < 0 && errno == EINVAL)
		SKIP("no O_DIRECT on %s's file system", path);
	CHECK(fd >= 0);
	void *buf = hoist__aligned_alloc(4096, sizeof data);
	CHECK(buf != NULL);
	hoist_fault_set(HOIST_FAULT_SHORT_READ, 1, 0, false);
	CHECK_EQ_INT(hoist__pread(fd, buf, 4096, 0), 4096);
	CHECK_EQ_INT(hoist_fault_struck(HOIST_FAULT_SHORT_READ), 0);
	CHECK_EQ_INT(hoist__pread(fd, buf, sizeof data, 0), 4096);
	CHECK_EQ_INT(hoist_fault_struck(HOIST_FAULT_SHORT_READ), 1);
	CHECK_EQ_INT(hoist__pread(fd, buf, sizeof data, 0), (long long)sizeof data);
	hoist_fault_clear_all();
	hoist__free(buf);
	hoist__close(fd);
}

/* ---- EIO at one byte of one file, in each phase ------------------------------------ */

TEST(faults_eio_at_offset_every_phase)
{
	const char *dir = gen_dir();
	struct hoist_checkpoint *ck = open_gen();
	const struct hoist_tensor_info *big = hoist_checkpoint_tensor(ck, BIG);
	char shard2[4096], needle[4200];
	snprintf(shard2, sizeof shard2, "%s", shard_path(ck, 1));
	struct test_held before;
	test_held_now(&before);

	/* open: the index, a shard's header, config.json (a warning: the config is
	 * optional) */
	struct hoist_checkpoint *c = (struct hoist_checkpoint *)1;
	CHECK_ERR(hoist_fault_set_read_at(test_path("nothing-here"), 0, EIO, false), HOIST_ERR_IO,
	          "nothing-here: No such file or directory");
	CHECK_ERR(hoist_fault_set_read_at(NULL, 0, EIO, false), HOIST_ERR_INVALID, "NULL");
	CHECK_OK(hoist_fault_set_read_at(test_join(dir, "model.safetensors.index.json"), 10, EIO,
	                                 false));
	CHECK_ERR(hoist_checkpoint_open(dir, NULL, &c), HOIST_ERR_IO,
	          "model.safetensors.index.json: cannot read: Input/output error");
	CHECK(c == NULL);
	CHECK_EQ_INT(hoist_fault_struck(HOIST_FAULT_READ_AT), 1);
	CHECK_OK(hoist_fault_set_read_at(shard2, 20, EIO, false));
	CHECK_ERR(hoist_checkpoint_open(dir, NULL, &c), HOIST_ERR_IO,
	          "model-00002-of-00002.safetensors: cannot read the ");
	CHECK(strstr(hoist_errmsg(), "-byte header: Input/output error"));
	CHECK(c == NULL);
	CHECK_OK(hoist_fault_set_read_at(test_join(dir, "config.json"), 0, EIO, false));
	CHECK_OK(hoist_checkpoint_open(dir, NULL, &c));
	CHECK_EQ_INT(hoist_checkpoint_warning_count(c), 1);
	CHECK(strstr(hoist_checkpoint_warning(c, 0),
	             "config.json: cannot read: Input/output error; config ignored"));
	CHECK(hoist_checkpoint_architecture(c) == NULL);
	hoist_checkpoint_close(c);
	hoist_fault_clear_all();
	test_held_check(&before, "after the open faults");

	/* plan: the device-map file */
	const char *map = map_file("map.json", "{\"\": \"disk\"}");
	struct hoist_options opt = {.device = "cpu", .device_map = map};
	struct hoist_plan *plan = (struct hoist_plan *)1;
	CHECK_OK(hoist_fault_set_read_at(map, 1, EIO, false));
	CHECK_ERR(hoist_plan_create(ck, &opt, &plan), HOIST_ERR_IO, "device map ");
	CHECK(strstr(hoist_errmsg(), "map.json: cannot read: Input/output error"));
	CHECK(plan == NULL);
	hoist_fault_clear_all();

	/* stream: the read covering one byte in the middle of the big tensor, on each
	 * target; the message names the shard, the tensor and the error */
	snprintf(needle, sizeof needle, "%s: tensor \"layers.3.w14\": reading ", shard2);
	for (int i = 0; i < NTARGETS; i++) {
		struct hoist_options o = target(i);
		CHECK_OK(
		        hoist_fault_set_read_at(shard2, big->offset + big->nbytes / 2, EIO, false));
		load_fails(ck, &o, HOIST_ERR_IO, needle, o.device);
		CHECK(strstr(hoist_errmsg(), "Input/output error"));
		CHECK_EQ_INT(hoist_fault_struck(HOIST_FAULT_READ_AT), 1);
		hoist_fault_clear_all();
	}
	/* an offset past the data no read covers: nothing strikes */
	CHECK_OK(hoist_fault_set_read_at(shard2, hoist_checkpoint_shard(ck, 1)->size + 10, EIO,
	                                 true));
	struct hoist_options o = target(1);
	load_check_free(ck, &o);
	CHECK_EQ_INT(hoist_fault_struck(HOIST_FAULT_READ_AT), 0);
	hoist_fault_clear_all();

	/* disk tensors: read and fetched from their file on demand */
	struct hoist_model *m;
	CHECK_OK(test_load(ck, &opt, &m));
	CHECK_EQ_INT(hoist_model_tensor(m, BIG)->device.kind, HOIST_DEVICE_DISK);
	test_held_now(&before);
	unsigned char *buf = malloc(big->nbytes);
	snprintf(needle, sizeof needle,
	         "%s: tensor \"layers.3.w14\": reading %llu bytes at offset %llu: Input/output "
	         "error",
	         shard2, (unsigned long long)big->nbytes, (unsigned long long)big->offset);
	CHECK_OK(hoist_fault_set_read_at(shard2, big->offset + 7, EIO, false));
	CHECK_ERR(hoist_model_read(m, BIG, buf, big->nbytes), HOIST_ERR_IO, needle);
	struct hoist_tensor t = {0};
	CHECK_OK(hoist_fault_set_read_at(shard2, big->offset + big->nbytes - 1, EIO, false));
	CHECK_ERR(hoist_model_fetch(m, BIG, (struct hoist_device){HOIST_DEVICE_CPU, 0}, &t),
	          HOIST_ERR_IO, needle);
	CHECK(t.data == NULL);
	hoist_fault_clear_all();
	test_held_check(&before, "after the disk faults");
	/* and once the fault is gone, the same calls work */
	CHECK_OK(hoist_model_read(m, BIG, buf, big->nbytes));
	for (uint64_t b = 0; b < big->nbytes; b++)
		if (buf[b] != gen_byte(BIG, b))
			FAIL("byte %llu of %s", (unsigned long long)b, big->name);
	free(buf);
	hoist_model_free(m);
	hoist_checkpoint_close(ck);
}

/* ---- ENOMEM: plan by a map file, disk tensors read and fetched ------------------- */

/* ENOMEM at each allocation in turn of planning by a map file, a load with tensors on
 * disk, reading a converted disk tensor and fetching it onto sim: each fails with
 * HOIST_ERR_NOMEM and a message, holding nothing, until the count passes the last. */
TEST_TIMEOUT(faults_nomem_map_plan_and_disk_tensors, 180)
{
	struct hoist_checkpoint *ck = open_gen();
	const char *map = map_file("map.json", "{\"layers.0.\": \"cpu\", \"\": \"disk\"}");
	struct hoist_options opt = {.device = "cpu", .device_map = map, .dtype = HOIST_F32};
	opt.sim = &sim_opt;
	size_t bf16 = 0; /* tensor 0 is BF16 (gen_checkpoint's first dtype) */
	CHECK_EQ_INT(hoist_checkpoint_tensor(ck, bf16)->dtype, HOIST_BF16);
	size_t on_disk = 5; /* "layers.1.w5", BF16 */
	CHECK_EQ_INT(hoist_checkpoint_tensor(ck, on_disk)->dtype, HOIST_BF16);
	struct test_held before;
	test_held_now(&before);
	long nth;
	for (nth = 1; nth < 100000; nth++) {
		struct hoist_model *m = (struct hoist_model *)1;
		hoist_fault_set(HOIST_FAULT_ALLOC, nth, ENOMEM, false);
		enum hoist_status st = test_load(ck, &opt, &m);
		if (st != HOIST_OK)
			CHECK(m == NULL);
		if (st == HOIST_OK) {
			/* past the load's allocations: the disk tensor's read, then its fetch */
			uint64_t n = hoist_model_tensor(m, on_disk)->nbytes;
			float *f = malloc(n);
			st = hoist_model_read(m, on_disk, f, n);
			struct hoist_tensor t = {0};
			if (st == HOIST_OK)
				st = hoist_model_fetch(
				        m, on_disk, (struct hoist_device){HOIST_DEVICE_SIM, 0}, &t);
			hoist_fault_clear_all();
			free(f);
			if (st == HOIST_OK) {
				CHECK_EQ_INT(t.device.kind, HOIST_DEVICE_SIM);
				CHECK_EQ_U64(t.nbytes, n);
				hoist_model_free(m);
				break;
			}
			CHECK(t.data == NULL);
			hoist_model_free(m);
		}
		hoist_fault_clear_all();
		if (st != HOIST_ERR_NOMEM)
			FAIL("allocation %ld: %s: %s", nth, hoist_status_name(st), hoist_errmsg());
		if (!strstr(hoist_errmsg(), "out of memory") &&
		    !strstr(hoist_errmsg(), "out of host memory") &&
		    !strstr(hoist_errmsg(), "cannot allocate"))
			FAIL("allocation %ld: %s", nth, hoist_errmsg());
		test_held_check(&before, "after an allocation failed");
	}
	CHECK(nth > 20 && nth < 100000);
	test_check_no_leaks();
	hoist_checkpoint_close(ck);
}

/* ---- refused pinned memory --------------------------------------------------------- */

/* Drops CAP_IPC_LOCK from this process (the test's own: the runner forks each test),
 * so RLIMIT_MEMLOCK binds root too. */
static void drop_ipc_lock(void)
{
	struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct data[2];
	if (syscall(SYS_capget, &hdr, data) != 0)
		return;
	data[CAP_IPC_LOCK / 32].effective &= ~(1u << (CAP_IPC_LOCK % 32));
	data[CAP_IPC_LOCK / 32].permitted &= ~(1u << (CAP_IPC_LOCK % 32));
	if (syscall(SYS_capset, &hdr, data) != 0)
		FAIL("capset: %s", strerror(errno));
}

/* mlock refused (RLIMIT_MEMLOCK of 64 KiB, no capability to pass it), with no CUDA
 * driver to pin memory instead: a pinned cpu load says what to do, and leaves
 * nothing; pageable memory still loads. */
TEST(faults_pinned_memory_refused)
{
	if (test_sanitized())
		SKIP("the sanitizers' mlock does nothing and succeeds");
	test_cuda_absent();
	struct hoist_device_info info[4];
	size_t n;
	if (hoist_device_list(HOIST_DEVICE_CUDA, NULL, info, 4, &n) == HOIST_OK)
		SKIP("a CUDA driver pins host memory here, not mlock");
	struct hoist_checkpoint *ck = open_gen();
	drop_ipc_lock();
	struct rlimit lim = {65536, 65536};
	CHECK_EQ_INT(setrlimit(RLIMIT_MEMLOCK, &lim), 0);
	struct hoist_options opt = {.device = "cpu", .host_memory = HOIST_HOST_PINNED};
	load_fails(ck, &opt, HOIST_ERR_NOMEM, "cpu: cannot pin ", "pinned");
	CHECK(strstr(hoist_errmsg(), " of host memory with mlock: "));
	CHECK(strstr(hoist_errmsg(), "raise `ulimit -l` or use pageable memory"));
	opt.host_memory = HOIST_HOST_PAGEABLE;
	load_check_free(ck, &opt);
	hoist_checkpoint_close(ck);
}

/* ---- device allocation and copy failures (sim) ------------------------------------ */

TEST(faults_sim_device_alloc_and_copy)
{
	struct hoist_checkpoint *ck = open_gen();
	/* sim:0 and cpu in one load: the first layers on cpu, the rest on the device */
	struct hoist_options opt = target(0);
	opt.device = "sim";
	opt.device_map = map_file("map.json", "{\"layers.0.\": \"cpu\", \"\": 0}");
	sim_opt = (struct hoist_sim_options){.fault = HOIST_SIM_FAULT_ALLOC};
	load_fails(ck, &opt, HOIST_ERR_DEVICE, "sim:0: injected allocation fault allocating",
	           "sim alloc");
	uint64_t after[] = {0, 70000, 1000000};
	for (size_t i = 0; i < TEST_ARRAY_SIZE(after); i++) {
		sim_opt = (struct hoist_sim_options){.fault = HOIST_SIM_FAULT_COPY,
		                                     .fault_after = after[i]};
		load_fails(ck, &opt, HOIST_ERR_DEVICE,
		           "sim:0: injected copy fault at device address 0x", "sim copy");
		CHECK(strstr(hoist_errmsg(), ".safetensors: tensor \"layers."));
	}
	/* a device smaller than the plan assumed */
	struct hoist_plan *plan;
	CHECK_OK(hoist_plan_create(ck, &opt, &plan));
	sim_opt = (struct hoist_sim_options){.capacity = 100000};
	struct test_held before;
	test_held_now(&before);
	struct hoist_model *m = (struct hoist_model *)1;
	CHECK_ERR(hoist_model_load(plan, &opt, &m), HOIST_ERR_NO_SPACE,
	          "sim:0: out of device memory");
	CHECK(m == NULL);
	test_held_check(&before, "sim too small");
	hoist_plan_free(plan);
	sim_opt = (struct hoist_sim_options){0};
	load_check_free(ck, &opt);
	hoist_checkpoint_close(ck);
}

/* ---- device allocation, copy and pinned-memory failures (the fake CUDA driver) ---- */

static const struct fakecuda_api *fake;

/* Skips unless the CUDA driver that loads is the strict fake (tests/fakecuda, as
 * make check sets it), whose knobs inject the driver's failures. */
static void need_fake(void)
{
	fake = test_need_fake();
}

/* The fake holds nothing hoist allocated, and saw no breach of the driver's rules. */
static void fake_holds_nothing(const char *when)
{
	struct fakecuda_counters c;
	CHECK_EQ_INT(fake->counters_get(&c, sizeof c), 0);
	if (c.violations)
		FAIL("%s: %llu violations of the driver's rules, the first: %s", when, c.violations,
		     c.messages[0]);
	if (c.device[0].allocations_now || c.host_allocations_now || c.registrations_now ||
	    c.streams_now || c.events_now)
		FAIL("%s: the driver holds %llu device allocations, %llu host allocations, %llu "
		     "registrations, %llu streams, %llu events",
		     when, c.device[0].allocations_now, c.host_allocations_now, c.registrations_now,
		     c.streams_now, c.events_now);
}

TEST(faults_cuda_alloc_copy_and_pinned_refused)
{
	need_fake();
	struct hoist_checkpoint *ck = open_gen();
	struct hoist_options opt = {.device = "cuda:0", .chunk_bytes = 65536, .threads = 3};
	/* a first load brings up what the driver keeps for the process (its threads) */
	load_check_free(ck, &opt);
	fake_holds_nothing("after a load");
	struct {
		const char *knob, *value;
		const char *needle;
	} cases[] = {
	        {"FAKECUDA_FAIL_ALLOC", "1", "cuMemAlloc_v2"},
	        {"FAKECUDA_FAIL_HOST_ALLOC", "1", "cuMemHostAlloc"},
	        {"FAKECUDA_FAIL_COPY_SUBMIT", "1", "CUDA_ERROR_UNKNOWN"},
	        /* the third copy: the first chunk's earlier copies are in flight */
	        {"FAKECUDA_FAIL_COPY_SUBMIT", "3", "CUDA_ERROR_UNKNOWN"},
	        {"FAKECUDA_FAIL_COPY_EXEC", "1", "CUDA_ERROR_ILLEGAL_ADDRESS"},
	        {"FAKECUDA_FAIL_COPY_EXEC", "7", "CUDA_ERROR_ILLEGAL_ADDRESS"},
	};
	for (size_t k = 0; k < TEST_ARRAY_SIZE(cases); k++) {
		char when[96];
		snprintf(when, sizeof when, "%s=%s", cases[k].knob, cases[k].value);
		CHECK_EQ_INT(fake->set(cases[k].knob, cases[k].value), 0);
		struct test_held before;
		test_held_now(&before);
		struct hoist_model *m = (struct hoist_model *)1;
		enum hoist_status st = test_load(ck, &opt, &m);
		CHECK_EQ_INT(fake->set(cases[k].knob, NULL), 0);
		/* an out-of-memory device may say NO_SPACE (backend.h) or DEVICE */
		if ((st != HOIST_ERR_DEVICE && st != HOIST_ERR_NO_SPACE) ||
		    !strstr(hoist_errmsg(), cases[k].needle))
			FAIL("%s: %s (%s)", when, hoist_status_name(st), hoist_errmsg());
		CHECK(m == NULL);
		test_held_check(&before, when);
		fake_holds_nothing(when);
		test_check_no_leaks();
	}
	/* a pinned cpu arena the driver refuses: pinned by mlock instead, or refused */
	CHECK_EQ_INT(fake->set("FAKECUDA_FAIL_HOST_ALLOC", "1"), 0);
	struct hoist_options cpu = {.device = "cpu", .host_memory = HOIST_HOST_PINNED};
	struct hoist_model *m;
	enum hoist_status st = test_load(ck, &cpu, &m);
	CHECK_EQ_INT(fake->set("FAKECUDA_FAIL_HOST_ALLOC", NULL), 0);
	if (st == HOIST_OK) {
		CHECK_STR(hoist_model_device(m, 0)->memory, "pinned by mlock");
		check_gen(m, ck);
		hoist_model_free(m);
	} else {
		CHECK_EQ_INT(st, HOIST_ERR_NOMEM);
		CHECK(strstr(hoist_errmsg(), "mlock"));
	}
	fake_holds_nothing("after the pinned load");
	load_check_free(ck, &opt);
	hoist_checkpoint_close(ck);
}

/* ---- cancellation in each phase -------------------------------------------------- */

struct cancel {
	enum hoist_phase phase;
	int at;    /* cancel on this call of that phase (1-based) */
	int calls; /* calls of that phase so far */
};

static int cancel_at(const struct hoist_progress *pr, void *arg)
{
	struct cancel *c = arg;
	return pr->phase == c->phase && ++c->calls == c->at;
}

TEST(faults_cancel_each_phase)
{
	struct hoist_checkpoint *ck = open_gen();
	uint64_t total = hoist_checkpoint_total_bytes(ck);
	char b[32], all[64];
	snprintf(all, sizeof all, " of %s", hoist_bytes_format(total, b, sizeof b));
	struct {
		enum hoist_phase phase;
		int at;
		const char *after; /* the message's "after X" */
	} cases[] = {
	        {HOIST_PHASE_PLAN, 1, "after 0 B of 0 B"},
	        {HOIST_PHASE_ALLOCATE, 1, "after 0 B of 0 B"},
	        {HOIST_PHASE_STREAM, 1, "after 0 B of "},
	        {HOIST_PHASE_STREAM, 3, "after "}, /* mid-stream: the sim is capped below */
	        {HOIST_PHASE_FINALIZE, 1, "after "},
	};
	for (size_t k = 0; k < TEST_ARRAY_SIZE(cases); k++) {
		for (int i = 0; i < NTARGETS; i++) {
			struct cancel c = {cases[k].phase, cases[k].at, 0};
			struct hoist_options opt = target(i);
			sim_opt = (struct hoist_sim_options){.bytes_per_sec = 10e6};
			opt.progress = cancel_at;
			opt.progress_arg = &c;
			char when[64];
			snprintf(when, sizeof when, "%s call %d on %s", hoist_phase_name(c.phase),
			         c.at, opt.device);
			if (c.phase == HOIST_PHASE_STREAM && c.at > 1 && i > 0)
				continue; /* cpu has no cap: the stream may end before a third call
				           */
			load_fails(ck, &opt, HOIST_ERR_CANCELLED,
			           "load cancelled by the progress callback after", when);
			CHECK_EQ_INT(c.calls, c.at);
			CHECK(strstr(hoist_errmsg(), cases[k].after));
			if (c.phase == HOIST_PHASE_STREAM || c.phase == HOIST_PHASE_FINALIZE)
				CHECK(strstr(hoist_errmsg(), all));
		}
	}
	sim_opt = (struct hoist_sim_options){0};
	hoist_checkpoint_close(ck);
}

/* ---- a write error on the output ------------------------------------------------- */

/* The printers flush and check the stream: /dev/full fails, buffered (the text held
 * until the flush) or not (the first write fails). */
TEST(faults_output_write_error)
{
	if (access("/dev/full", W_OK) != 0)
		SKIP("no writable /dev/full");
	struct hoist_checkpoint *ck = open_gen();
	struct hoist_options opt = {.device = "cpu"};
	struct hoist_plan *plan;
	struct hoist_model *m;
	CHECK_OK(hoist_plan_create(ck, &opt, &plan));
	CHECK_OK(hoist_model_load(plan, &opt, &m));
	for (int k = 0; k < 8; k++) {
		FILE *full = fopen("/dev/full", "w");
		CHECK(full != NULL);
		if (k >= 4)
			CHECK_EQ_INT(setvbuf(full, NULL, _IONBF, 0), 0);
		enum hoist_status st = k % 4 == 0   ? hoist_plan_print(plan, full)
		                       : k % 4 == 1 ? hoist_plan_print_json(plan, full)
		                       : k % 4 == 2 ? hoist_model_report_print(m, full)
		                                    : hoist_model_report_print_json(m, full);
		fclose(full);
		CHECK_EQ_INT(st, HOIST_ERR_IO);
		/* buffered, the last flush fails again and says why; unbuffered, only the
		 * stream's error flag is left */
		char want[200];
		snprintf(want, sizeof want, "%s%s",
		         k % 4 < 2 ? "writing the plan: " : "writing the report: ",
		         k < 4 ? strerror(ENOSPC) : "write error");
		if (!strstr(hoist_errmsg(), want))
			FAIL("printer %d: message \"%s\" lacks \"%s\"", k, hoist_errmsg(), want);
	}
	hoist_model_free(m);
	hoist_plan_free(plan);
	hoist_checkpoint_close(ck);
}

/* ---- a file that changes while it loads ------------------------------------------- */

/* A fresh copy of the checkpoint, its shards' mtimes set in the past, so that any
 * write moves them whatever the file system's timestamp granularity. */
static struct hoist_checkpoint *open_copy(const char *name)
{
	char cmd[8400];
	const char *dir = test_path(name);
	snprintf(cmd, sizeof cmd, "cp -r '%s' '%s'", gen_dir(), dir);
	CHECK_EQ_INT(system(cmd), 0);
	struct timespec past[2] = {{1577836800, 0}, {1577836800, 0}}; /* 2020-01-01 */
	for (int s = 1; s <= 2; s++) {
		char file[64];
		snprintf(file, sizeof file, "model-%05d-of-00002.safetensors", s);
		CHECK_EQ_INT(utimensat(AT_FDCWD, test_join(dir, file), past, 0), 0);
	}
	struct hoist_checkpoint *ck;
	CHECK_OK(hoist_checkpoint_open(dir, NULL, &ck));
	return ck;
}

enum change { TRUNCATE, REWRITE, REPLACE, REMOVE };

struct changer {
	const char *path;
	enum change what;
	uint64_t keep; /* TRUNCATE: the new size */
	enum hoist_phase phase;
	int at, calls;
};

static void change_file(const struct changer *c)
{
	switch (c->what) {
	case TRUNCATE: CHECK_EQ_INT(truncate(c->path, (off_t)c->keep), 0); break;
	case REWRITE: {
		int fd = open(c->path, O_WRONLY);
		CHECK(fd >= 0);
		CHECK_EQ_INT(pwrite(fd, "changed!", 8, (off_t)c->keep), 8);
		close(fd);
		break;
	}
	case REPLACE: {
		char tmp[4200], cmd[8500];
		snprintf(tmp, sizeof tmp, "%s.new", c->path);
		snprintf(cmd, sizeof cmd, "cp '%s' '%s' && mv '%s' '%s'", c->path, tmp, tmp,
		         c->path);
		CHECK_EQ_INT(system(cmd), 0);
		break;
	}
	case REMOVE: CHECK_EQ_INT(unlink(c->path), 0); break;
	}
}

static int change_at(const struct hoist_progress *pr, void *arg)
{
	struct changer *c = arg;
	if (pr->phase == c->phase && ++c->calls == c->at)
		change_file(c);
	return 0;
}

/* "<shard>: changed while it was being loaded (" */
static const char *changed_prefix(const char *path)
{
	static char buf[4200];
	snprintf(buf, sizeof buf, "%s: changed while it was being loaded (", path);
	return buf;
}

/* "<shard>: changed while it was being loaded (size A -> B bytes)" */
static const char *size_changed(const char *path, uint64_t from, uint64_t to)
{
	static char buf[4300];
	snprintf(buf, sizeof buf, "%s: changed while it was being loaded (size %llu -> %llu bytes)",
	         path, (unsigned long long)from, (unsigned long long)to);
	return buf;
}

/* The same, found by a read of a disk tensor after the load. */
static const char *size_changed_reading(const char *path, const char *tensor, uint64_t from,
                                        uint64_t to)
{
	static char buf[4600];
	snprintf(buf, sizeof buf,
	         "%s: changed since the checkpoint was opened, reading tensor \"%s\" (size %llu "
	         "-> %llu bytes)",
	         path, tensor, (unsigned long long)from, (unsigned long long)to);
	return buf;
}

/* Truncated after the checkpoint was opened, before the load: the load's open of the
 * shard finds it, on every target (mapped host memory too). */
TEST(faults_file_truncated_before_load)
{
	struct hoist_checkpoint *ck = open_copy("copy");
	const char *path = shard_path(ck, 0);
	uint64_t size = hoist_checkpoint_shard(ck, 0)->size;
	CHECK_EQ_INT(truncate(path, 1000), 0);
	for (int i = 0; i < NTARGETS; i++) {
		struct hoist_options opt = target(i);
		load_fails(ck, &opt, HOIST_ERR_IO, size_changed(path, size, 1000), opt.device);
		CHECK_STR(hoist_errmsg(), size_changed(path, size, 1000));
	}
	struct hoist_options opt = {.device = "cpu", .host_memory = HOIST_HOST_MMAP};
	load_fails(ck, &opt, HOIST_ERR_IO, size_changed(path, size, 1000), "mmap");
	hoist_checkpoint_close(ck);
}

/* Truncated during the stream: the readers read past the new end, and the load names
 * the file and the change, not the short read. On sim (capped at 2 MB/s, so the
 * stream takes about 1.7 s) at its third progress call; on cpu at the first, as the
 * readers start. */
TEST(faults_file_truncated_during_stream)
{
	for (int i = 0; i < NTARGETS; i++) {
		char name[32];
		snprintf(name, sizeof name, "copy%d", i);
		struct hoist_checkpoint *ck = open_copy(name);
		const char *path = shard_path(ck, 0);
		uint64_t size = hoist_checkpoint_shard(ck, 0)->size;
		uint64_t keep = hoist_checkpoint_tensor(ck, 4)->offset + 100;
		struct changer c = {path, TRUNCATE, keep, HOIST_PHASE_STREAM, i == 0 ? 3 : 1, 0};
		struct hoist_options opt = target(i);
		sim_opt = (struct hoist_sim_options){.bytes_per_sec = 2e6};
		opt.progress = change_at;
		opt.progress_arg = &c;
		load_fails(ck, &opt, HOIST_ERR_IO, size_changed(path, size, keep), opt.device);
		CHECK_STR(hoist_errmsg(), size_changed(path, size, keep));
		hoist_checkpoint_close(ck);
	}
	sim_opt = (struct hoist_sim_options){0};
}

/* Rewritten in place (same size, other bytes), replaced by a copy (rename over it) or
 * removed, during the stream: each is found after it, by mtime, inode or path. */
TEST(faults_file_rewritten_replaced_removed_during_stream)
{
	static const enum change what[] = {REWRITE, REPLACE, REMOVE};
	static const char *how[] = {"modified: mtime 2020-01-01 00:00:00.000000000 -> ",
	                            "replaced by another file: device ", "removed)"};
	for (size_t k = 0; k < TEST_ARRAY_SIZE(what); k++) {
		for (int i = 0; i < 2; i++) {
			char name[48];
			snprintf(name, sizeof name, "copy%zu%d", k, i);
			struct hoist_checkpoint *ck = open_copy(name);
			const char *path = shard_path(ck, 1);
			struct changer c = {path,
			                    what[k],
			                    hoist_checkpoint_tensor(ck, BIG)->offset,
			                    HOIST_PHASE_STREAM,
			                    2,
			                    0};
			struct hoist_options opt = target(i);
			sim_opt = (struct hoist_sim_options){.bytes_per_sec = 5e6};
			opt.progress = change_at;
			opt.progress_arg = &c;
			if (i == 1)
				c.at = 1; /* cpu: before the readers start */
			load_fails(ck, &opt, HOIST_ERR_IO, changed_prefix(path), opt.device);
			CHECK(strstr(hoist_errmsg(), how[k]));
			hoist_checkpoint_close(ck);
		}
	}
	sim_opt = (struct hoist_sim_options){0};
}

/* A file's contents are told by its size and mtime; its inode alone may move for the
 * same file (FUSE without stable inodes, CIFS noserverino, once the kernel drops the
 * inode), so a copy with the same size and mtime in its place loads, and verifies. */
TEST(faults_same_size_and_mtime_under_another_inode_loads)
{
	struct hoist_checkpoint *ck = open_copy("copy");
	const char *path = shard_path(ck, 0);
	char cmd[8600];
	snprintf(cmd, sizeof cmd, "cp -p '%s' '%s.new' && mv '%s.new' '%s'", path, path, path,
	         path);
	struct stat before, after;
	CHECK_EQ_INT(stat(path, &before), 0);
	CHECK_EQ_INT(system(cmd), 0);
	CHECK_EQ_INT(stat(path, &after), 0);
	CHECK(before.st_ino != after.st_ino);
	for (int i = 0; i < NTARGETS; i++) {
		struct hoist_options opt = target(i);
		struct hoist_model *m;
		CHECK_OK(test_load(ck, &opt, &m));
		check_gen(m, ck);
		struct hoist_verify *v;
		CHECK_OK(hoist_model_verify(m, NULL, &v));
		CHECK_EQ_U64(hoist_verify_summary(v)->differ, 0);
		hoist_verify_free(v);
		hoist_model_free(m);
	}
	hoist_checkpoint_close(ck);
}

/* A disk tensor's file changed after the load: reading or fetching it says so. */
TEST(faults_file_changed_under_disk_tensor)
{
	struct hoist_checkpoint *ck = open_copy("copy");
	const char *path = shard_path(ck, 1);
	uint64_t size = hoist_checkpoint_shard(ck, 1)->size;
	const struct hoist_tensor_info *big = hoist_checkpoint_tensor(ck, BIG);
	struct hoist_options opt = {.device = "cpu",
	                            .device_map = map_file("map.json", "{\"\": \"disk\"}")};
	struct hoist_model *m;
	CHECK_OK(test_load(ck, &opt, &m));
	struct test_held before;
	test_held_now(&before);
	unsigned char *buf = malloc(big->nbytes);
	CHECK_EQ_INT(truncate(path, (off_t)(big->offset + 10)), 0);
	CHECK_ERR(hoist_model_read(m, BIG, buf, big->nbytes), HOIST_ERR_IO,
	          size_changed_reading(path, big->name, size, big->offset + 10));
	struct hoist_tensor t = {0};
	CHECK_ERR(hoist_model_fetch(m, BIG, (struct hoist_device){HOIST_DEVICE_CPU, 0}, &t),
	          HOIST_ERR_IO, size_changed_reading(path, big->name, size, big->offset + 10));
	CHECK(t.data == NULL);
	test_held_check(&before, "after the reads");
	/* a tensor of the other, unchanged shard still reads */
	const struct hoist_tensor_info *first = hoist_checkpoint_tensor(ck, 0);
	CHECK_OK(hoist_model_read(m, 0, buf, first->nbytes));
	for (uint64_t b = 0; b < first->nbytes; b++)
		CHECK_EQ_INT(buf[b], gen_byte(0, b));
	free(buf);
	hoist_model_free(m);
	hoist_checkpoint_close(ck);
}
