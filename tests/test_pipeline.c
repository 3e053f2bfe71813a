/* test_pipeline.c - hoist_model_load end to end on sim and host targets: every byte of
 * the reference checkpoints and of generated multi-shard checkpoints arrives, with
 * many threads and tiny chunks too; conversion; cancellation; every injected fault
 * gives an error naming what failed and leaves nothing loaded; the report. */
#include "fixtures.h"
#include "test.h"

#include <math.h>

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <unistd.h>

static void load_reference(const char *rel, const char *key, struct hoist_options opt,
                           const char *dev)
{
	struct hoist_checkpoint *ck;
	struct hoist_model *m;
	CHECK_OK(hoist_checkpoint_open(test_join(test_data_dir(), rel), NULL, &ck));
	CHECK_OK(test_load(ck, &opt, &m));
	check_manifest(m, key, dev);
	hoist_model_free(m);
	hoist_checkpoint_close(ck);
}

static const struct {
	const char *name;
	struct hoist_options opt;
	const char *dev;
} targets[] = {
        {"sim", {.device = "sim:0"}, "sim:0"},
        {"sim tiny chunks",
         {.device = "sim:0", .threads = 16, .chunk_bytes = 4096, .staging_bytes = 16384},
         "sim:0"},
        {"cpu pageable", {.device = "cpu", .host_memory = HOIST_HOST_PAGEABLE}, "cpu"},
        {"cpu pinned", {.device = "cpu", .host_memory = HOIST_HOST_PINNED}, "cpu"},
        {"cpu mmap", {.device = "cpu", .host_memory = HOIST_HOST_MMAP}, "cpu"},
        {"cpu tiny chunks",
         {.device = "cpu", .threads = 16, .chunk_bytes = 4096, .staging_bytes = 8192},
         "cpu"},
        {"sim direct",
         {.device = "sim:0", .direct = 1, .chunk_bytes = 8192, .staging_bytes = 65536},
         "sim:0"},
        {"cpu direct", {.device = "cpu", .direct = 1, .threads = 3}, "cpu"},
};

TEST(load_reference_all_dtypes)
{
	for (size_t i = 0; i < TEST_ARRAY_SIZE(targets); i++)
		load_reference("reference/all_dtypes.safetensors", "all_dtypes.safetensors",
		               targets[i].opt, targets[i].dev);
}

TEST(load_reference_tiny_qwen2_vl)
{
	for (size_t i = 0; i < TEST_ARRAY_SIZE(targets); i++)
		load_reference("reference/tiny-qwen2-vl", "tiny-qwen2-vl/", targets[i].opt,
		               targets[i].dev);
}

TEST_TIMEOUT(load_generated_multishard, 120)
{
	const char *dir = test_path("gen");
	gen_checkpoint(dir, 4, 40, 300000);
	struct hoist_checkpoint *ck;
	CHECK_OK(hoist_checkpoint_open(dir, NULL, &ck));
	CHECK_EQ_INT(hoist_checkpoint_shard_count(ck), 4);
	for (size_t i = 0; i < TEST_ARRAY_SIZE(targets); i++) {
		struct hoist_model *m;
		CHECK_OK(test_load(ck, &targets[i].opt, &m));
		check_gen(m, ck);
		const struct hoist_report *r = hoist_model_report(m);
		CHECK_EQ_U64(r->moved_bytes, targets[i].opt.host_memory == HOIST_HOST_MMAP
		                                     ? 0
		                                     : hoist_checkpoint_total_bytes(ck));
		hoist_model_free(m);
	}
	/* Chunk bigger than the ring: the ring still holds two. */
	struct hoist_options opt = {
	        .device = "sim:0", .chunk_bytes = 1 << 20, .staging_bytes = 100000};
	struct hoist_model *m;
	CHECK_OK(test_load(ck, &opt, &m));
	/* the chunk gives way so that the ring holds two per reader, within the budget */
	CHECK(hoist_model_report(m)->staging_slots >= 2);
	CHECK(hoist_model_report(m)->chunk_bytes * hoist_model_report(m)->staging_slots <= 100000);
	check_gen(m, ck);
	hoist_model_free(m);
	hoist_checkpoint_close(ck);
}

/* BF16 -> F32 is exact: the 16 bits become the high half. F32 -> BF16 compared
 * against hoist__convert's own unit-tested rounding. */
TEST(load_converts_dtype)
{
	struct hoist_checkpoint *ck;
	CHECK_OK(hoist_checkpoint_open(test_join(test_data_dir(), "reference/tiny-qwen2-vl"), NULL,
	                               &ck));
	const char *devs[] = {"sim:0", "cpu"};
	for (int d = 0; d < 2; d++) {
		struct hoist_options opt = {.device = devs[d],
		                            .dtype = HOIST_F32,
		                            .chunk_bytes = 4096,
		                            .staging_bytes = 16384,
		                            .threads = 4};
		struct hoist_model *m;
		CHECK_OK(test_load(ck, &opt, &m));
		size_t converted = 0;
		for (size_t i = 0; i < hoist_model_tensor_count(m); i++) {
			fixture_check_bf16_widened(ck, m, i);
			converted++;
		}
		CHECK(converted > 10);
		hoist_model_free(m);
	}
	struct hoist_options bad = {
	        .device = "cpu", .host_memory = HOIST_HOST_MMAP, .dtype = HOIST_F16};
	struct hoist_model *m = (struct hoist_model *)1;
	CHECK_ERR(test_load(ck, &bad, &m), HOIST_ERR_INVALID, "from BF16 to F16");
	CHECK(strstr(hoist_errmsg(), "cannot convert tensor \"") != NULL);
	CHECK(m == NULL);
	/* a dtype the tensors already have converts nothing: the views are as good */
	bad.dtype = HOIST_BF16;
	CHECK_OK(test_load(ck, &bad, &m));
	CHECK(hoist_model_report(m)->mapped);
	hoist_model_free(m);
	hoist_checkpoint_close(ck);
}

/* ---- progress and cancellation --------------------------------------------------- */

struct prog {
	pthread_t caller;
	int calls, stream_calls, cancel_after;
	bool wrong_thread;
	uint64_t last_done, total;
	char phases[128];
};

static int on_progress(const struct hoist_progress *pr, void *arg)
{
	struct prog *p = arg;
	if (!pthread_equal(pthread_self(), p->caller))
		p->wrong_thread = true;
	p->calls++;
	const char *phase = hoist_phase_name(pr->phase);
	if (pr->phase == HOIST_PHASE_STREAM) {
		p->stream_calls++;
		if (pr->bytes_done < p->last_done)
			p->wrong_thread = true; /* goes backwards: flag it */
		p->last_done = pr->bytes_done;
		p->total = pr->bytes_total;
	}
	size_t n = strlen(p->phases);
	if (n < 100 && (n == 0 || strstr(p->phases, phase) == NULL))
		snprintf(p->phases + n, sizeof p->phases - n, "%s%s", n ? "," : "", phase);
	return p->cancel_after > 0 && p->stream_calls >= p->cancel_after;
}

TEST(load_progress_on_calling_thread)
{
	const char *dir = test_path("gen");
	gen_checkpoint(dir, 2, 20, 200000);
	struct hoist_checkpoint *ck;
	CHECK_OK(hoist_checkpoint_open(dir, NULL, &ck));
	struct prog pg = {.caller = pthread_self()};
	/* 20 MB/s cap over 13 MB: about 0.6 s, so several progress calls */
	struct hoist_options opt = {.device = "sim:0",
	                            .progress = on_progress,
	                            .progress_arg = &pg,
	                            .chunk_bytes = 65536,
	                            .staging_bytes = 262144,
	                            .sim = &(struct hoist_sim_options){.bytes_per_sec = 20e6}};
	struct hoist_model *m;
	CHECK_OK(test_load(ck, &opt, &m));
	CHECK(!pg.wrong_thread);
	CHECK(pg.stream_calls >= 2);
	CHECK_STR(pg.phases, "plan,allocate,stream,finalize");
	CHECK_EQ_U64(pg.last_done, hoist_checkpoint_total_bytes(ck));
	CHECK_EQ_U64(pg.total, hoist_checkpoint_total_bytes(ck));
	check_gen(m, ck);
	hoist_model_free(m);
	hoist_checkpoint_close(ck);
}

TEST(load_cancel_frees_everything)
{
	const char *dir = test_path("gen");
	gen_checkpoint(dir, 2, 20, 200000);
	struct hoist_checkpoint *ck;
	CHECK_OK(hoist_checkpoint_open(dir, NULL, &ck));
	const char *devs[] = {"sim:0", "cpu"};
	for (int d = 0; d < 2; d++) {
		struct prog pg = {.caller = pthread_self(), .cancel_after = 2};
		struct hoist_options opt = {
		        .device = devs[d],
		        .progress = on_progress,
		        .progress_arg = &pg,
		        .chunk_bytes = 16384,
		        .staging_bytes = 65536,
		        .threads = 2,
		        .sim = &(struct hoist_sim_options){.bytes_per_sec = 2e6}};
		struct hoist_model *m = (struct hoist_model *)1;
		if (d == 1) {
			/* no bandwidth cap on cpu: cancel at the first stream call */
			pg.cancel_after = 1;
		}
		CHECK_ERR(test_load(ck, &opt, &m), HOIST_ERR_CANCELLED,
		          "load cancelled by the progress callback after");
		CHECK(m == NULL);
		CHECK(!pg.wrong_thread);
	}
	hoist_checkpoint_close(ck);
}

/* ---- faults: an error naming what failed, nothing loaded -------------------------- */

static struct hoist_checkpoint *open_gen(void)
{
	const char *dir = test_path("gen");
	gen_checkpoint(dir, 2, 10, 100000);
	struct hoist_checkpoint *ck;
	CHECK_OK(hoist_checkpoint_open(dir, NULL, &ck));
	return ck;
}

TEST(load_sim_fault_alloc)
{
	struct hoist_checkpoint *ck = open_gen();
	struct hoist_options opt = {
	        .device = "sim:0",
	        .sim = &(struct hoist_sim_options){.fault = HOIST_SIM_FAULT_ALLOC}};
	struct hoist_model *m = (struct hoist_model *)1;
	CHECK_ERR(test_load(ck, &opt, &m), HOIST_ERR_DEVICE,
	          "sim:0: injected allocation fault allocating");
	CHECK(m == NULL);
	hoist_checkpoint_close(ck);
}

TEST(load_sim_fault_copy)
{
	struct hoist_checkpoint *ck = open_gen();
	struct hoist_options opt = {.device = "sim:0",
	                            .chunk_bytes = 65536,
	                            .threads = 4,
	                            .sim = &(struct hoist_sim_options){
	                                    .fault = HOIST_SIM_FAULT_COPY, .fault_after = 300000}};
	struct hoist_model *m = (struct hoist_model *)1;
	CHECK_ERR(test_load(ck, &opt, &m), HOIST_ERR_DEVICE, "injected copy fault");
	CHECK(m == NULL);
	CHECK(strstr(hoist_errmsg(), ".safetensors: tensor \"layers.") != NULL);
	CHECK(strstr(hoist_errmsg(), "(bytes at offset ") != NULL);
	hoist_checkpoint_close(ck);
}

TEST(load_read_faults)
{
	struct hoist_checkpoint *ck = open_gen();
	const char *devs[] = {"sim:0", "cpu"};
	for (int d = 0; d < 2; d++) {
		struct hoist_options opt = {.device = devs[d], .chunk_bytes = 65536, .threads = 3};
		struct hoist_model *m = (struct hoist_model *)1;
		hoist_fault_set(HOIST_FAULT_READ, 3, EIO, false);
		CHECK_ERR(test_load(ck, &opt, &m), HOIST_ERR_IO, "Input/output error");
		CHECK(m == NULL);
		CHECK(strstr(hoist_errmsg(), ".safetensors: tensor \"layers.") != NULL);
		CHECK(strstr(hoist_errmsg(), " at offset ") != NULL);
		/* Short reads are retried: every read halved still loads every byte. */
		hoist_fault_set(HOIST_FAULT_SHORT_READ, 1, 0, true);
		CHECK_OK(test_load(ck, &opt, &m));
		hoist_fault_clear_all();
		check_gen(m, ck);
		hoist_model_free(m);
	}
	/* A shard gone between open and load. */
	CHECK_EQ_INT(unlink(hoist_checkpoint_shard(ck, 1)->path), 0);
	struct hoist_options opt = {.device = "sim:0"};
	struct hoist_model *m = (struct hoist_model *)1;
	CHECK_ERR(test_load(ck, &opt, &m), HOIST_ERR_IO,
	          "model-00002-of-00002.safetensors: cannot open: No such file or directory");
	CHECK(m == NULL);
	hoist_checkpoint_close(ck);
}

/* ENOMEM at every allocation in turn, until the load no longer allocates that many
 * times: each fails cleanly (ASan checks nothing leaks) with a message. */
TEST_TIMEOUT(load_nomem_everywhere, 120)
{
	struct hoist_checkpoint *ck = open_gen();
	const char *devs[] = {"sim:0", "cpu"};
	for (int d = 0; d < 2; d++) {
		struct hoist_options opt = {.device = devs[d], .chunk_bytes = 65536, .threads = 2};
		long nth;
		for (nth = 1; nth < 10000; nth++) {
			struct hoist_model *m = (struct hoist_model *)1;
			hoist_fault_set(HOIST_FAULT_ALLOC, nth, ENOMEM, false);
			enum hoist_status st = test_load(ck, &opt, &m);
			hoist_fault_clear_all();
			if (st == HOIST_OK) {
				check_gen(m, ck);
				hoist_model_free(m);
				break;
			}
			CHECK(m == NULL);
			CHECK(st == HOIST_ERR_NOMEM);
			CHECK(hoist_errmsg()[0] != '\0');
		}
		CHECK(nth > 5 && nth < 10000);
	}
	hoist_checkpoint_close(ck);
}

/* ---- several sim devices, fetch, read errors, the report ---------------------- */

TEST(load_spans_three_sim_devices)
{
	struct hoist_checkpoint *ck = open_gen();
	struct hoist_options opt = {.device = "sim",
	                            .device_map = "balanced",
	                            .chunk_bytes = 8192,
	                            .staging_bytes = 65536,
	                            .threads = 5,
	                            .sim = &(struct hoist_sim_options){.devices = 3}};
	struct hoist_plan *plan;
	CHECK_OK(hoist_plan_create(ck, &opt, &plan));
	struct hoist_model *m;
	CHECK_OK(hoist_model_load(plan, &opt, &m));
	bool used[3] = {false, false, false};
	for (size_t i = 0; i < hoist_model_tensor_count(m); i++) {
		struct hoist_tensor t;
		t = *hoist_model_tensor(m, i);
		CHECK_EQ_INT(t.device.kind, HOIST_DEVICE_SIM);
		CHECK(t.device.index >= 0 && t.device.index < 3);
		used[t.device.index] = true;
		uint64_t a = (uint64_t)(uintptr_t)t.data;
		CHECK(a >= HOIST_SIM_BASE + (uint64_t)t.device.index * HOIST_SIM_WINDOW);
		CHECK(a < HOIST_SIM_BASE + (uint64_t)(t.device.index + 1) * HOIST_SIM_WINDOW);
	}
	CHECK(used[0] && used[1] && used[2]);
	check_gen(m, ck);
	CHECK_EQ_INT(hoist_model_device_count(m), 3);
	uint64_t sum = 0;
	for (size_t i = 0; i < hoist_model_device_count(m); i++)
		sum += hoist_model_device(m, i)->bytes;
	CHECK_EQ_U64(sum, hoist_checkpoint_total_bytes(ck));
	hoist_model_free(m);
	hoist_plan_free(plan);
	hoist_checkpoint_close(ck);
}

TEST(fetch_and_read_errors)
{
	struct hoist_checkpoint *ck = open_gen();
	struct hoist_options opt = {.device = "cpu",
	                            .host_memory = HOIST_HOST_MMAP,
	                            .sim = &(struct hoist_sim_options){.capacity = 100000}};
	struct hoist_model *m;
	CHECK_OK(test_load(ck, &opt, &m));
	struct hoist_tensor t, f;
	t = *hoist_model_tensor(m, 0);
	/* Zero-copy: the view points into the mapped file. */
	CHECK(t.data != NULL);
	CHECK(memcmp(t.data, (unsigned char[]){gen_byte(0, 0), gen_byte(0, 1)}, 2) == 0);
	CHECK_OK(hoist_model_fetch(m, 0, (struct hoist_device){HOIST_DEVICE_SIM, 0}, &f));
	CHECK_EQ_INT(f.device.kind, HOIST_DEVICE_SIM);
	CHECK_EQ_U64(f.nbytes, t.nbytes);
	CHECK((uint64_t)(uintptr_t)f.data >= HOIST_SIM_BASE);
	/* a tensor bigger than the sim capacity left */
	size_t big = 4;
	t = *hoist_model_tensor(m, big);
	CHECK(t.nbytes > 100000);
	CHECK_ERR(hoist_model_fetch(m, big, (struct hoist_device){HOIST_DEVICE_SIM, 0}, &f),
	          HOIST_ERR_NO_SPACE,
	          "fetching tensor \"layers.1.w4\": sim:0: out of device memory");
	CHECK_OK(hoist_model_fetch(m, big, (struct hoist_device){HOIST_DEVICE_CPU, 0}, &f));
	CHECK(f.data != t.data);
	CHECK(memcmp(f.data, t.data, t.nbytes) == 0);
	unsigned char b[8];
	CHECK_ERR(hoist_model_read(m, 0, b, 1), HOIST_ERR_INVALID,
	          "tensor \"layers.0.w0\" is 2 bytes, not 1");
	CHECK_ERR(hoist_model_read(m, 999, b, 1), HOIST_ERR_INVALID, "no tensor 999");
	CHECK_ERR(hoist_model_fetch(m, 0, (struct hoist_device){HOIST_DEVICE_SIM, 5}, &f),
	          HOIST_ERR_NO_DEVICE, "sim:5");
	hoist_model_free(m);
	hoist_checkpoint_close(ck);
}

TEST(report_text_and_json)
{
	struct hoist_checkpoint *ck = open_gen();
	struct hoist_options opt = {.device = "sim:0", .chunk_bytes = 65536, .threads = 2};
	struct hoist_model *m;
	CHECK_OK(test_load(ck, &opt, &m));
	const struct hoist_report *r = hoist_model_report(m);
	/* The open phase is the checkpoint's own time; the load times the rest. */
	CHECK(r->seconds[HOIST_PHASE_OPEN] == hoist_checkpoint_open_seconds(ck));
	CHECK(r->seconds[HOIST_PHASE_OPEN] > 0);
	CHECK(r->seconds[HOIST_PHASE_STREAM] > 0);
	double sum = 0;
	for (int i = 0; i < HOIST_PHASE_COUNT; i++)
		sum += r->seconds[i];
	CHECK(r->total_seconds == sum);
	CHECK_STR(hoist_phase_name(HOIST_PHASE_STREAM), "stream");
	CHECK(hoist_phase_name(HOIST_PHASE_COUNT) == NULL);
	char open_s[32];
	snprintf(open_s, sizeof open_s, "%8.3f s", r->seconds[HOIST_PHASE_OPEN]);
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	CHECK_OK(hoist_model_report_print(m, f));
	fclose(f);
	CHECK(strstr(text, "[1/5] open      2 shards  20 tensors") != NULL);
	CHECK(strstr(text, open_s) != NULL);
	CHECK(strstr(text, "[2/5] plan      1 device: sim:0 ") != NULL);
	CHECK(strstr(text, "[4/5] stream") != NULL);
	CHECK(strstr(text, "bound by ") != NULL);
	CHECK(strstr(text, "[5/5] finalize") != NULL);
	char *report_text = text;
	f = open_memstream(&text, &len);
	CHECK_OK(hoist_model_report_print_json(m, f));
	fclose(f);
	json_error_t jerr;
	json_t *j = json_loads(text, 0, &jerr);
	if (!j)
		FAIL("report JSON does not parse: %s: %s", jerr.text, text);
	CHECK_EQ_U64(json_integer_value(json_object_get(j, "bytes")),
	             hoist_checkpoint_total_bytes(ck));
	CHECK_EQ_U64(json_integer_value(json_object_get(json_object_get(j, "devices"), "sim:0")),
	             hoist_checkpoint_total_bytes(ck));
	json_t *ph = json_object_get(j, "phases");
	CHECK(fabs(json_real_value(json_object_get(ph, "open")) - r->seconds[HOIST_PHASE_OPEN]) <
	      1e-6);
	CHECK(json_object_get(ph, "plan") && json_object_get(ph, "allocate") &&
	      json_object_get(ph, "stream") && json_object_get(ph, "finalize"));
	const char *bound =
	        json_string_value(json_object_get(json_object_get(j, "stream"), "bound"));
	CHECK(bound && (strcmp(bound, "storage") == 0 || strcmp(bound, "staging") == 0 ||
	                strcmp(bound, "device copy") == 0 || strcmp(bound, "host memory") == 0));
	/* The text names the ring as it is: slots x slot size = the JSON's staging_bytes. */
	json_t *stream = json_object_get(j, "stream");
	uint64_t ring = (uint64_t)json_integer_value(json_object_get(stream, "staging_bytes"));
	size_t slots = (size_t)json_integer_value(json_object_get(stream, "staging_slots"));
	CHECK(slots >= 2 && ring > 0);
	char want[96], sz[32];
	snprintf(want, sizeof want, "; staging %zu x %s,", slots,
	         hoist_bytes_format(ring / slots, sz, sizeof sz));
	if (!strstr(report_text, want))
		FAIL("report lacks \"%s\":\n%s", want, report_text);
	free(report_text);
	json_decref(j);
	free(text);
	hoist_model_free(m);
	hoist_checkpoint_close(ck);
}

/* ---- hoist load ------------------------------------------------------------------ */

TEST_TIMEOUT(cli_load_verify, 120)
{
	const char *dir = test_path("synth");
	char *out = NULL;
	CHECK_EQ_INT(test_run(&out, "%s synth %s --seed 7 2>&1", test_hoist_bin(), dir), 0);
	free(out);
	CHECK_EQ_INT(test_run(&out, "%s load %s --device sim:0 --verify --threads 3 --chunk 1MiB",
	                      test_hoist_bin(), dir),
	             0);
	CHECK(strstr(out, "[1/5] open      1 shard  99 tensors") != NULL);
	CHECK(strstr(out, "[4/5] stream    311.49 MB in ") != NULL);
	CHECK(strstr(out, "verified 99 tensors, 311.49 MB: all bytes match") != NULL);
	free(out);
	CHECK_EQ_INT(
	        test_run(&out, "%s load %s --device cpu --json 2>/dev/null", test_hoist_bin(), dir),
	        0);
	json_error_t jerr;
	json_t *j = json_loads(out, 0, &jerr);
	if (!j)
		FAIL("--json output does not parse: %s: %s", jerr.text, out);
	CHECK_EQ_U64(json_integer_value(json_object_get(j, "bytes")), 311486464);
	CHECK_EQ_U64(json_integer_value(json_object_get(json_object_get(j, "devices"), "cpu")),
	             311486464);
	json_decref(j);
	free(out);
	/* Flip one byte of tensor data: --verify finds it and exits 1. */
	const char *shard = test_join(dir, "model-00001-of-00001.safetensors");
	FILE *f = fopen(shard, "r+b");
	CHECK(f != NULL);
	CHECK(fseek(f, -100, SEEK_END) == 0);
	int c = fgetc(f);
	CHECK(fseek(f, -100, SEEK_END) == 0);
	fputc(c ^ 0x5a, f);
	fclose(f);
	CHECK_EQ_INT(test_run(&out, "%s load %s --device sim:0 --verify", test_hoist_bin(), dir),
	             1);
	CHECK(strstr(out, "verify: tensor \"") != NULL);
	CHECK(strstr(out, ": got 0x") != NULL);
	free(out);
	CHECK_EQ_INT(test_run(&out, "%s load %s --device cpu --host-memory mmap --dtype F32",
	                      test_hoist_bin(), dir),
	             2);
	CHECK(strstr(out, "hoist: host memory \"mmap\" gives zero-copy views") != NULL);
	free(out);
	CHECK_EQ_INT(test_run(&out, "%s load %s --device sim:0 --sim-capacity 1MB",
	                      test_hoist_bin(), dir),
	             1);
	CHECK(strstr(out, "hoist: ") != NULL);
	free(out);
	/* Not synthetic: --verify says it cannot, before loading, as a usage error. */
	CHECK_EQ_INT(test_run(&out,
	                      "%s load %s/reference/all_dtypes.safetensors --device cpu --verify",
	                      test_hoist_bin(), test_data_dir()),
	             2);
	CHECK(strstr(out, "has no hoist_synth_seed") != NULL);
	free(out);
}

/* SIGINT during a slow (bandwidth-capped) load: the command cancels, frees and exits
 * 130 with a message. */
TEST_TIMEOUT(cli_load_sigint, 60)
{
	const char *dir = test_path("synth");
	char *out = NULL;
	CHECK_EQ_INT(test_run(&out, "%s synth %s 2>&1", test_hoist_bin(), dir), 0);
	free(out);
	CHECK_EQ_INT(test_run(&out,
	                      "%s load %s --device sim:0 --sim-bandwidth 20MB --chunk 1MiB "
	                      "--staging 8MiB & "
	                      "pid=$!; sleep 1; "
	                      "kill -INT $pid; wait $pid",
	                      test_hoist_bin(), dir),
	             130);
	CHECK(strstr(out, "hoist: interrupted: everything loaded so far was freed") != NULL);
	CHECK(strstr(out, "load cancelled by the progress callback after") != NULL);
	free(out);
}
