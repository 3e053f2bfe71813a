/* test_verify.c - hoist_model_verify and `hoist verify`: one byte corrupted where a
 * tensor landed (a sim device's memory, a cpu arena) is named with its tensor and
 * offset; the hashes are libxxhash's XXH3 of the bytes; --sha256 lines equal the
 * reference manifests; --manifest lists what differs; load --verify fails before
 * loading on a checkpoint without hoist's seed; output errors exit non-zero. */
#include "test.h"
#include "fixtures.h"

#include "backend.h"
#include "model.h"
#include "sha256.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <xxhash.h>

/* A synthetic checkpoint in the test's directory. */
static const char *synth(double scale, uint64_t seed)
{
	struct hoist_synth_options so = {.scale = scale, .seed = seed};
	const char *dir = test_path("ckpt");
	CHECK_OK(hoist_synth_write(dir, &so));
	return dir;
}

/* The index of the largest tensor (so a corruption lands well inside one). */
static size_t largest(const struct hoist_checkpoint *ck)
{
	size_t best = 0;
	for (size_t i = 0; i < hoist_checkpoint_tensor_count(ck); i++)
		if (hoist_checkpoint_tensor(ck, i)->nbytes >
		    hoist_checkpoint_tensor(ck, best)->nbytes)
			best = i;
	return best;
}

/* Verifies m and checks that exactly tensor `bad` differs, at `offset`, with the
 * landed byte `got` where the file holds `want`; every other tensor matches. */
static void check_one_difference(const struct hoist_model *m, size_t bad, uint64_t offset,
                                 uint8_t got, uint8_t want, unsigned threads)
{
	struct hoist_verify_options vo = {.threads = threads, .chunk_bytes = 64 << 10};
	struct hoist_verify *v;
	CHECK_OK(hoist_model_verify(m, &vo, &v));
	const struct hoist_verify_summary *s = hoist_verify_summary(v);
	CHECK_EQ_U64(s->tensors, hoist_model_tensor_count(m));
	CHECK_EQ_U64(s->differ, 1);
	CHECK_EQ_U64(s->matched, s->tensors - 1);
	for (size_t i = 0; i < hoist_verify_tensor_count(v); i++) {
		const struct hoist_verify_tensor *t = hoist_verify_tensor(v, i);
		CHECK_STR(t->name, hoist_model_tensor(m, i)->name);
		if (i != bad) {
			CHECK_EQ_INT(t->result, HOIST_VERIFY_MATCH);
			CHECK_EQ_U64(t->first_diff, UINT64_MAX);
			CHECK_EQ_U64(t->xxh3_landed, t->xxh3_file);
			continue;
		}
		CHECK_EQ_INT(t->result, HOIST_VERIFY_DIFFER);
		CHECK_EQ_U64(t->first_diff, offset);
		CHECK_EQ_INT(t->landed_byte, got);
		CHECK_EQ_INT(t->file_byte, want);
		CHECK(t->xxh3_landed != t->xxh3_file);
	}
	hoist_verify_free(v);
}

TEST(verify_catches_one_byte_in_sim_device_memory)
{
	const char *dir = synth(0.02, 11);
	struct hoist_checkpoint *ck;
	CHECK_OK(hoist_checkpoint_open(dir, NULL, &ck));
	struct hoist_options opt = {.device = "sim:0"};
	struct hoist_model *m;
	CHECK_OK(test_load(ck, &opt, &m));
	size_t bad = largest(ck);
	const struct hoist_tensor *t = hoist_model_tensor(m, bad);
	CHECK(t->nbytes > 300000);
	uint64_t offset = t->nbytes - 70001; /* in a chunk well past the first */
	struct hoist__dev *dev;
	uint64_t addr;
	CHECK_OK(hoist__model_locate(m, bad, &dev, &addr));
	CHECK(dev && !dev->host_addressable);
	uint8_t want, got;
	CHECK_OK(dev->ops->copy_out(dev, &want, addr + offset, 1));
	got = (uint8_t)(want ^ 0x5a);
	CHECK_OK(dev->ops->copy_in(dev, addr + offset, &got, 1));

	check_one_difference(m, bad, offset, got, want, 2);
	check_one_difference(m, bad, offset, got, want, 1);
	struct hoist_verify *v;
	CHECK_OK(hoist_model_verify(m, NULL, &v));
	const struct hoist_verify_summary *s = hoist_verify_summary(v);
	CHECK_EQ_U64(s->in_place_bytes, 0);
	CHECK_EQ_U64(s->read_back_bytes, s->landed_bytes);
	CHECK_EQ_U64(s->landed_bytes, hoist_checkpoint_total_bytes(ck));
	CHECK_EQ_INT(hoist_verify_tensor(v, 0)->in_place, 0);
	hoist_verify_free(v);
	hoist_model_free(m);
	hoist_checkpoint_close(ck);
}

TEST(verify_catches_one_byte_in_a_cpu_arena)
{
	const char *dir = synth(0.02, 12);
	struct hoist_checkpoint *ck;
	CHECK_OK(hoist_checkpoint_open(dir, NULL, &ck));
	struct hoist_options opt = {.device = "cpu"};
	struct hoist_model *m;
	CHECK_OK(test_load(ck, &opt, &m));
	/* A small tensor, its first byte; and the largest, its last byte. */
	size_t bad = largest(ck);
	const struct hoist_tensor *t = hoist_model_tensor(m, bad);
	CHECK_EQ_INT(t->device.kind, HOIST_DEVICE_CPU);
	uint8_t *p = t->data;
	uint64_t offset = t->nbytes - 1;
	uint8_t want = p[offset];
	p[offset] = (uint8_t)(want + 1);
	check_one_difference(m, bad, offset, (uint8_t)(want + 1), want, 2);
	p[offset] = want;
	p[0] ^= 0x80;
	check_one_difference(m, bad, 0, p[0], (uint8_t)(p[0] ^ 0x80), 2);
	p[0] ^= 0x80;

	struct hoist_verify *v;
	CHECK_OK(hoist_model_verify(m, NULL, &v));
	const struct hoist_verify_summary *s = hoist_verify_summary(v);
	CHECK_EQ_U64(s->differ, 0);
	CHECK_EQ_U64(s->in_place_bytes, s->landed_bytes);
	CHECK_EQ_U64(s->read_back_bytes, 0);
	/* The hash is XXH3_64bits of the tensor's bytes, as libxxhash computes it. */
	CHECK_EQ_U64(hoist_verify_tensor(v, bad)->xxh3_landed, XXH3_64bits(t->data, t->nbytes));
	CHECK_EQ_INT(hoist_verify_tensor(v, bad)->in_place, 1);
	hoist_verify_free(v);
	hoist_model_free(m);
	hoist_checkpoint_close(ck);
}

TEST(verify_converted_and_disk_tensors)
{
	const char *dir = synth(0.02, 13);
	struct hoist_checkpoint *ck;
	CHECK_OK(hoist_checkpoint_open(dir, NULL, &ck));
	/* F32 loads of BF16 tensors: about half on sim:0, a quarter on cpu, the rest left
	 * on disk. */
	uint64_t room = hoist_checkpoint_total_bytes(ck); /* F32: twice that is needed */
	char mm[96];
	snprintf(mm, sizeof mm, "0=%llu,cpu=%llu", (unsigned long long)room,
	         (unsigned long long)room / 2);
	struct hoist_options opt = {
	        .device = "sim", .device_map = "sequential", .max_memory = mm, .dtype = HOIST_F32};
	struct hoist_model *m;
	CHECK_OK(test_load(ck, &opt, &m));
	struct hoist_verify_options vo = {.flags = HOIST_VERIFY_SHA256, .chunk_bytes = 4096};
	struct hoist_verify *v;
	CHECK_OK(hoist_model_verify(m, &vo, &v));
	const struct hoist_verify_summary *s = hoist_verify_summary(v);
	CHECK_EQ_U64(s->differ, 0);
	CHECK(s->in_file > 0);
	CHECK(s->matched > 0);
	CHECK(s->in_place_bytes > 0 && s->read_back_bytes > 0); /* cpu and sim:0 both hold some */
	size_t disk = 0;
	for (size_t i = 0; i < hoist_verify_tensor_count(v); i++) {
		const struct hoist_verify_tensor *t = hoist_verify_tensor(v, i);
		const struct hoist_tensor *mt = hoist_model_tensor(m, i);
		CHECK_EQ_INT(t->result, mt->device.kind == HOIST_DEVICE_DISK ? HOIST_VERIFY_IN_FILE
		                                                             : HOIST_VERIFY_MATCH);
		disk += t->result == HOIST_VERIFY_IN_FILE;
		/* Its SHA-256 and XXH3 are of the bytes as loaded (converted). */
		uint8_t *buf = malloc(mt->nbytes ? mt->nbytes : 1);
		CHECK_OK(hoist_model_read(m, i, buf, mt->nbytes));
		char want[65], got[65];
		test_sha256_hex(buf, mt->nbytes, want);
		for (int k = 0; k < 32; k++)
			sprintf(got + 2 * k, "%02x", t->sha256[k]);
		CHECK_STR(got, want);
		CHECK_EQ_U64(t->xxh3_file, XXH3_64bits(buf, mt->nbytes));
		free(buf);
	}
	CHECK_EQ_U64(disk, s->in_file);
	hoist_verify_free(v);
	hoist_model_free(m);
	hoist_checkpoint_close(ck);
}

TEST(verify_sha256_known_answers)
{
	/* FIPS 180-4's examples (NIST's SHA256.pdf): "abc" and the 448-bit message, and the
	 * million 'a's, fed in uneven pieces. */
	static const struct {
		const char *msg;
		size_t repeat;
		const char *hex;
	} cases[] = {
	        {"", 1, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
	        {"abc", 1, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
	        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 1,
	         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
	        {"a", 1000000, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"},
	};
	for (size_t c = 0; c < TEST_ARRAY_SIZE(cases); c++) {
		struct hoist__sha256 s;
		hoist__sha256_init(&s);
		size_t len = strlen(cases[c].msg);
		for (size_t r = 0; r < cases[c].repeat; r++)
			for (size_t o = 0; o < len; o += 7)
				hoist__sha256_update(&s, cases[c].msg + o, TEST_MIN(7, len - o));
		uint8_t d[32];
		char hex[65];
		hoist__sha256_final(&s, d);
		for (int k = 0; k < 32; k++)
			sprintf(hex + 2 * k, "%02x", d[k]);
		CHECK_STR(hex, cases[c].hex);
	}
}

/* ---- the command ------------------------------------------------------------------- */

/* The manifest's `<sha256>  <name>` lines, sorted by name, for the reference files
 * whose manifest key starts with key. */
static char *manifest_lines(const char *key)
{
	json_error_t jerr;
	json_t *root =
	        json_load_file(test_join(test_data_dir(), "reference/manifest.json"), 0, &jerr);
	CHECK(root != NULL);
	const char *names[4096];
	const char *shas[4096];
	size_t n = 0;
	const char *k;
	json_t *v;
	json_object_foreach(root, k, v)
	{
		if (strncmp(k, key, strlen(key)) != 0 || !json_is_object(v))
			continue;
		const char *name;
		json_t *t;
		json_object_foreach(json_object_get(v, "tensors"), name, t)
		{
			CHECK(n < TEST_ARRAY_SIZE(names));
			names[n] = name;
			shas[n++] = json_string_value(json_object_get(t, "sha256"));
		}
	}
	CHECK(n > 0);
	/* insertion sort by name, as strcmp orders them (sha256sum's C locale) */
	for (size_t i = 1; i < n; i++)
		for (size_t j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
			const char *a = names[j], *b = shas[j];
			names[j] = names[j - 1];
			shas[j] = shas[j - 1];
			names[j - 1] = a;
			shas[j - 1] = b;
		}
	size_t cap = n * 200 + 1, len = 0;
	char *text = malloc(cap);
	for (size_t i = 0; i < n; i++)
		len += (size_t)snprintf(text + len, cap - len, "%s  %s\n", shas[i], names[i]);
	json_decref(root);
	return text;
}

TEST(verify_sha256_lines_equal_the_manifests)
{
	static const struct {
		const char *path, *key;
	} refs[] = {
	        {"reference/all_dtypes.safetensors", "all_dtypes.safetensors"},
	        {"reference/tiny-qwen2-vl", "tiny-qwen2-vl/"},
	};
	const char *devices[] = {"cpu", "sim:0", "cpu --host-memory mmap"};
	for (size_t r = 0; r < TEST_ARRAY_SIZE(refs); r++) {
		char *want = manifest_lines(refs[r].key);
		for (size_t d = 0; d < TEST_ARRAY_SIZE(devices); d++) {
			char *out;
			int rc = test_run(&out, "%s verify %s --device %s --sha256 2>/dev/null",
			                  test_hoist_bin(),
			                  test_join(test_data_dir(), refs[r].path), devices[d]);
			CHECK_EQ_INT(rc, 0);
			if (strcmp(out, want) != 0)
				FAIL("%s on %s:\n%s\nexpected:\n%s", refs[r].path, devices[d], out,
				     want);
			free(out);
		}
		free(want);
	}
	/* the summary goes to stderr with --sha256, to stdout without */
	char *out;
	CHECK_EQ_INT(test_run(&out, "%s verify %s --device sim:0 2>/dev/null", test_hoist_bin(),
	                      test_join(test_data_dir(), "reference/tiny-qwen2-vl")),
	             0);
	CHECK(strstr(out, "verified 70 tensors, 529.66 KB where they landed (0 B hashed in place, "
	                  "529.66 KB read back): all bytes match"));
	free(out);
}

TEST(verify_manifest_lists_what_differs)
{
	const char *ref = test_join(test_data_dir(), "reference/all_dtypes.safetensors");
	char *lines = manifest_lines("all_dtypes.safetensors");
	const char *list = test_path("sums");
	test_write_file(list, lines, strlen(lines));
	char *out;
	CHECK_EQ_INT(test_run(&out, "%s verify %s --manifest %s", test_hoist_bin(), ref, list), 0);
	CHECK(strstr(out, "every tensor's sha256 matches"));
	free(out);

	/* one hash wrong (t_int8's), one line gone (t_uint8's), one name the file lacks */
	char *bad = malloc(strlen(lines) + 200);
	char *w = bad;
	for (char *line = strtok(lines, "\n"); line; line = strtok(NULL, "\n")) {
		if (strstr(line, "  t_uint8"))
			continue;
		if (strstr(line, "  t_int8"))
			line[0] = line[0] == '0' ? '1' : '0';
		w += sprintf(w, "%s\n", line);
	}
	w += sprintf(w, "# a comment, and a tensor this file does not have:\n");
	w += sprintf(w, "%064d *ghost\n", 0);
	test_write_file(list, bad, (size_t)(w - bad));
	CHECK_EQ_INT(test_run(&out, "%s verify %s --manifest %s", test_hoist_bin(), ref, list), 1);
	CHECK(strstr(out, "manifest: tensor \"t_int8\": sha256 2e56577120e6587e5bee8276d27190b5e0"
	                  "24f07b49fedb6dec59bfd8a1b24fd3, the manifest says 0e5657"));
	CHECK(strstr(out, "manifest: tensor \"t_uint8\" (sha256 d35405df08964819bef99af89e85640e08"
	                  "63215613c40f5c7e352b567dc042ff) is not in the manifest"));
	CHECK(strstr(out, "manifest: \"ghost\" is in the manifest, not in the checkpoint"));
	CHECK(strstr(out, ": 3 disagreements"));
	/* the bytes themselves matched their files */
	CHECK(strstr(out, "all bytes match"));
	free(out);
	CHECK_EQ_INT(test_run(&out, "%s verify %s --manifest %s --json 2>/dev/null",
	                      test_hoist_bin(), ref, list),
	             1);
	json_t *j = json_loads(out, 0, NULL);
	CHECK(j != NULL);
	json_t *m = json_object_get(j, "manifest");
	CHECK_EQ_INT(json_array_size(json_object_get(m, "differ")), 2);
	CHECK_STR(json_string_value(json_array_get(json_object_get(m, "missing"), 0)), "ghost");
	json_decref(j);
	free(out);

	/* a line that is no `<sha256>  <name>` */
	test_write_file(list, "abc  t_int8\n", 12);
	CHECK_EQ_INT(test_run(&out, "%s verify %s --manifest %s", test_hoist_bin(), ref, list), 1);
	CHECK(strstr(out, ": line 1: expected \"<sha256>  <name>\""));
	free(out);
	CHECK_EQ_INT(test_run(&out, "%s verify %s --manifest", test_hoist_bin(), ref), 2);
	CHECK(strstr(out, "--manifest"));
	free(out);
	free(lines);
	free(bad);
}

TEST(verify_json_and_exit_statuses)
{
	const char *dir = synth(0.01, 14);
	char *out;
	CHECK_EQ_INT(test_run(&out, "%s verify %s --device sim:0 --json --sha256 2>/dev/null",
	                      test_hoist_bin(), dir),
	             0);
	json_t *j = json_loads(out, 0, NULL);
	if (!j)
		FAIL("not JSON: %s", out);
	struct hoist_checkpoint *ck;
	CHECK_OK(hoist_checkpoint_open(dir, NULL, &ck));
	CHECK_EQ_INT(json_integer_value(json_object_get(j, "tensors")),
	             hoist_checkpoint_tensor_count(ck));
	CHECK_EQ_INT(json_integer_value(json_object_get(j, "differ")), 0);
	CHECK_EQ_INT(json_array_size(json_object_get(j, "differences")), 0);
	CHECK_EQ_U64(json_integer_value(json_object_get(j, "read_back_bytes")),
	             hoist_checkpoint_total_bytes(ck));
	CHECK_EQ_INT(json_object_size(json_object_get(j, "sha256")),
	             hoist_checkpoint_tensor_count(ck));
	CHECK(json_number_value(json_object_get(j, "verify_seconds")) > 0);
	json_decref(j);
	free(out);
	hoist_checkpoint_close(ck);
	/* a bad checkpoint, a bad option, no such device */
	CHECK_EQ_INT(test_run(&out, "%s verify %s/nowhere", test_hoist_bin(), dir), 1);
	free(out);
	CHECK_EQ_INT(test_run(&out, "%s verify %s --threads many", test_hoist_bin(), dir), 2);
	free(out);
	CHECK_EQ_INT(test_run(&out, "%s verify", test_hoist_bin()), 2);
	CHECK(strstr(out, "missing PATH"));
	free(out);
	CHECK_EQ_INT(test_run(&out, "%s --help", test_hoist_bin()), 0);
	CHECK(strstr(out, "verify PATH [OPTIONS] [--sha256] [--manifest FILE] [--json]"));
	CHECK(strstr(out, "bench [PATH [OPTIONS]] [--thorough] [--json]"));
	CHECK(strstr(out, "doctor PATH [OPTIONS] [--json]"));
	free(out);
}

TEST(load_verify_without_the_seed_fails_before_loading)
{
	const char *ref = test_join(test_data_dir(), "reference/tiny-qwen2-vl");
	char *out;
	CHECK_EQ_INT(test_run(&out, "%s load %s --verify --device cpu", test_hoist_bin(), ref), 2);
	char want[4300];
	snprintf(want, sizeof want,
	         "hoist: load --verify checks the synthetic content of checkpoints written by "
	         "`hoist synth`, and %s has no hoist_synth_seed in its metadata; `hoist verify %s` "
	         "checks every tensor of any checkpoint against its files",
	         ref, ref);
	CHECK(strstr(out, want));
	CHECK(!strstr(out, "[4/5] stream")); /* nothing was loaded */
	free(out);
	/* and what it points to works there */
	CHECK_EQ_INT(test_run(&out, "%s verify %s --device cpu", test_hoist_bin(), ref), 0);
	CHECK(strstr(out, "verified 70 tensors"));
	free(out);
}

/* Runs hoist with stdout a pipe whose reader is gone and SIGPIPE ignored, so writes
 * fail with EPIPE; returns its exit status, its stderr in *err. */
static int run_into_closed_pipe(char **err, const char *args)
{
	int p[2];
	CHECK(pipe(p) == 0);
	close(p[0]);
	const char *errfile = test_path("stderr");
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		signal(SIGPIPE, SIG_IGN);
		dup2(p[1], 1);
		int fd = open(errfile, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		dup2(fd, 2);
		char cmd[8192];
		snprintf(cmd, sizeof cmd, "exec %s %s", test_hoist_bin(), args);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	int status;
	waitpid(pid, &status, 0);
	*err = test_read_file(errfile, NULL);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

TEST(verify_output_errors_exit_non_zero)
{
	const char *ref = test_join(test_data_dir(), "reference/all_dtypes.safetensors");
	char *out;
	CHECK_EQ_INT(test_run(&out, "%s verify %s --sha256 > /dev/full", test_hoist_bin(), ref), 1);
	CHECK(strstr(out, "hoist: writing the output: No space left on device"));
	free(out);
	char args[4200];
	snprintf(args, sizeof args, "verify %s --sha256", ref);
	CHECK_EQ_INT(run_into_closed_pipe(&out, args), 1);
	CHECK(strstr(out, "hoist: writing the output: Broken pipe"));
	free(out);
	snprintf(args, sizeof args, "doctor %s --device cpu --json", ref);
	CHECK_EQ_INT(run_into_closed_pipe(&out, args), 1);
	CHECK(strstr(out, "hoist: writing the output: Broken pipe"));
	free(out);
}

TEST(verify_errors_name_the_file_and_free_everything)
{
	const char *dir = synth(0.01, 15);
	struct hoist_checkpoint *ck;
	CHECK_OK(hoist_checkpoint_open(dir, NULL, &ck));
	struct hoist_options opt = {.device = "sim:0"};
	struct hoist_model *m;
	CHECK_OK(test_load(ck, &opt, &m));
	struct hoist_verify *v = NULL;
	/* every allocation of the verifier failing in turn: NOMEM or a result, no leak */
	for (long nth = 1; nth < 40; nth++) {
		hoist_fault_set(HOIST_FAULT_ALLOC, nth, ENOMEM, false);
		enum hoist_status st = hoist_model_verify(m, NULL, &v);
		hoist_fault_clear_all();
		if (st == HOIST_OK) {
			CHECK_EQ_U64(hoist_verify_summary(v)->differ, 0);
			hoist_verify_free(v);
			v = NULL;
		} else {
			CHECK_EQ_INT(st, HOIST_ERR_NOMEM);
			CHECK(v == NULL);
		}
		test_check_no_leaks();
	}
	/* a shard that cannot be opened */
	hoist_fault_set(HOIST_FAULT_OPEN, 1, EACCES, true);
	CHECK_ERR(hoist_model_verify(m, NULL, &v), HOIST_ERR_IO, "cannot open: Permission denied");
	hoist_fault_clear_all();
	CHECK(v == NULL);
	/* a shard rewritten (same size, one byte other, a later mtime) or shorter since
	 * the checkpoint was opened: an error before it is touched, not a difference */
	const char *shard = hoist_checkpoint_shard(ck, 0)->path;
	uint64_t size = hoist_checkpoint_shard(ck, 0)->size;
	FILE *f = fopen(shard, "r+b");
	CHECK(f != NULL);
	CHECK(fseek(f, (long)size - 1, SEEK_SET) == 0 && fputc(0x5a, f) != EOF && fclose(f) == 0);
	/* the mtime set apart, whatever the file system's clock tick */
	struct timespec past[2] = {{1577836800, 0}, {1577836800, 0}}; /* 2020-01-01 */
	CHECK(utimensat(AT_FDCWD, shard, past, 0) == 0);
	char want[4400];
	snprintf(want, sizeof want, "%s: changed since the checkpoint was opened (modified: mtime ",
	         shard);
	CHECK_ERR(hoist_model_verify(m, NULL, &v), HOIST_ERR_IO, want);
	CHECK(strstr(hoist_errmsg(), " -> 2020-01-01 00:00:00.000000000 UTC)"));
	CHECK(v == NULL);
	CHECK(truncate(shard, (off_t)(size - 1)) == 0);
	snprintf(want, sizeof want,
	         "%s: changed since the checkpoint was opened (size %llu -> %llu bytes)", shard,
	         (unsigned long long)size, (unsigned long long)(size - 1));
	CHECK_ERR(hoist_model_verify(m, NULL, &v), HOIST_ERR_IO, want);
	CHECK(v == NULL);
	CHECK_ERR(hoist_model_verify(NULL, NULL, &v), HOIST_ERR_INVALID, "NULL");
	CHECK(hoist_verify_tensor(NULL, 0) == NULL && hoist_verify_summary(NULL) == NULL);
	hoist_verify_free(NULL);
	hoist_model_free(m);
	hoist_checkpoint_close(ck);
}
