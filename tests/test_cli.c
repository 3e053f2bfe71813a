/* test_cli.c - what a user meets first with the hoist command: usage, GNU-style
 * options and their errors, help and exit statuses, output errors, the CPU fallback
 * notice without --verbose, the report of a load given only a path, the progress bar,
 * and Ctrl-C during synth. */
#include "test.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define CHECK_HAS(out, needle)                                                                     \
	do {                                                                                       \
		if (!strstr((out), (needle)))                                                      \
			FAIL("output lacks \"%s\": %s", (needle), (out));                          \
	} while (0)

/* A small synthetic checkpoint in the test's directory. */
static const char *small_ckpt(void)
{
	struct hoist_synth_options so = {.scale = 0.02, .seed = 3};
	const char *dir = test_path("small");
	CHECK_OK(hoist_synth_write(dir, &so));
	return dir;
}

TEST(cli_usage_and_unknown_command)
{
	char *out;
	CHECK_EQ_INT(test_run(&out, "%s", test_hoist_bin()), 2);
	CHECK(strstr(out, "usage: hoist COMMAND"));
	free(out);
	CHECK_EQ_INT(test_run(&out, "%s frobnicate", test_hoist_bin()), 2);
	CHECK_HAS(out, "hoist: unknown command 'frobnicate'");
	free(out);
	CHECK_EQ_INT(test_run(&out, "%s load x --threads many", test_hoist_bin()), 2);
	CHECK_HAS(out, "hoist load: --threads 'many': expected a whole number from 0 to 1024\n"
	               "Try 'hoist load --help' for more information.");
	free(out);
	CHECK_EQ_INT(test_run(&out, "%s load x --chunk 3parsecs", test_hoist_bin()), 2);
	CHECK_HAS(out, "hoist load: --chunk: byte count \"3parsecs\": unknown unit \"parsecs\"");
	free(out);
	CHECK_EQ_INT(test_run(&out, "%s version", test_hoist_bin()), 0);
	CHECK(strstr(out, "hoist " HOIST_VERSION_STRING));
	free(out);
}

TEST(cli_load_without_device_says_where_it_went)
{
	struct hoist_synth_options so = {.scale = 0.05, .seed = 7};
	const char *dir = test_path("ckpt");
	CHECK_OK(hoist_synth_write(dir, &so));
	struct hoist_checkpoint *ck;
	CHECK_OK(hoist_checkpoint_open(dir, NULL, &ck));
	struct hoist_plan *plan;
	CHECK_OK(hoist_plan_create(ck, NULL, &plan));
	const char *notice = hoist_plan_notice(plan);
	char *out;
	int rc = test_run(&out, "%s load %s --verify 2>&1", test_hoist_bin(), dir);
	CHECK_EQ_INT(rc, 0);
	if (notice) {
		/* No GPU here: the one-line notice reaches a quiet run too. */
		char line[600];
		snprintf(line, sizeof line, "hoist: %s\n", notice);
		CHECK(strstr(out, line));
		CHECK(strstr(notice, "every tensor planned for cpu"));
	}
	CHECK(strstr(out, "[1/5] open"));
	CHECK(strstr(out, "[2/5] plan"));
	CHECK(strstr(out, "[4/5] stream"));
	char want[128];
	snprintf(want, sizeof want, "verified %zu tensors", hoist_checkpoint_tensor_count(ck));
	CHECK(strstr(out, want));
	free(out);
	hoist_plan_free(plan);
	hoist_checkpoint_close(ck);
}

/* getopt_long's conventions: --opt=value, --, options after operands, GNU messages for
 * unknown options, missing values and values given to flags; --version and --help on
 * every command; usage errors exit 2. */
TEST(cli_options_follow_gnu_conventions)
{
	const char *dir = small_ckpt();
	char *out;
	CHECK_EQ_INT(test_run(&out, "%s plan --device=cpu --json %s", test_hoist_bin(), dir), 0);
	CHECK_HAS(out, "\"devices\":{\"cpu\":");
	free(out);
	CHECK_EQ_INT(test_run(&out, "%s plan %s --max-memory=cpu=1GiB --device cpu",
	                      test_hoist_bin(), dir),
	             0);
	CHECK_HAS(out, "max_memory");
	free(out);
	/* -- ends the options: an operand may then start with '-' */
	char dashed[4096];
	snprintf(dashed, sizeof dashed, "%s/-ck", test_tmpdir());
	CHECK_EQ_INT(rename(dir, dashed), 0);
	char bin[4096];
	CHECK(realpath(test_hoist_bin(), bin) != NULL);
	CHECK_EQ_INT(test_run(&out, "cd %s && %s inspect -- -ck", test_tmpdir(), bin), 0);
	CHECK_HAS(out, "checkpoint: -ck");
	free(out);
	CHECK_EQ_INT(test_run(&out, "cd %s && %s inspect -ck", test_tmpdir(), bin), 2);
	CHECK_HAS(out, "hoist inspect: invalid option -- 'c'");
	free(out);
	/* an unknown option given last is unknown, not short of a value */
	CHECK_EQ_INT(test_run(&out, "%s load %s --bogus", test_hoist_bin(), dashed), 2);
	CHECK_HAS(out, "hoist load: unrecognized option '--bogus'\n"
	               "Try 'hoist load --help' for more information.");
	free(out);
	CHECK_EQ_INT(test_run(&out, "%s load %s --device", test_hoist_bin(), dashed), 2);
	CHECK_HAS(out, "hoist load: option '--device' requires an argument");
	free(out);
	CHECK_EQ_INT(test_run(&out, "%s load %s --json=yes", test_hoist_bin(), dashed), 2);
	CHECK_HAS(out, "hoist load: option '--json' doesn't allow an argument");
	free(out);
	CHECK_EQ_INT(test_run(&out, "%s plan a b", test_hoist_bin()), 2);
	CHECK_HAS(out, "hoist plan: one PATH only (got 'a' and 'b')");
	free(out);
	CHECK_EQ_INT(test_run(&out, "%s plan", test_hoist_bin()), 2);
	CHECK_HAS(out, "hoist plan: missing PATH");
	free(out);
	static const char *const commands[] = {"inspect", "plan", "load", "synth"};
	for (size_t i = 0; i < TEST_ARRAY_SIZE(commands); i++) {
		CHECK_EQ_INT(test_run(&out, "%s %s --version", test_hoist_bin(), commands[i]), 0);
		CHECK_STR(out, "hoist " HOIST_VERSION_STRING "\n");
		free(out);
	}
}

/* --device-map with a mistyped strategy is a usage error naming the strategies;
 * torch's dtype spellings work. */
TEST(cli_device_map_and_dtype_spellings)
{
	const char *dir = small_ckpt();
	char *out;
	CHECK_EQ_INT(
	        test_run(&out, "%s plan %s --device cpu --device-map autoo", test_hoist_bin(), dir),
	        2);
	CHECK_HAS(out, "hoist: device map \"autoo\": not a strategy (auto, balanced, sequential) "
	               "and no such file");
	free(out);
	/* a path is a path: its absence is an I/O error */
	CHECK_EQ_INT(test_run(&out, "%s plan %s --device cpu --device-map %s", test_hoist_bin(),
	                      dir, test_path("none.json")),
	             1);
	CHECK_HAS(out, "none.json: cannot open: No such file or directory");
	free(out);
	static const struct {
		const char *spelling, *dtype;
	} spellings[] = {{"bf16", "BF16"},   {"bfloat16", "BF16"}, {"torch.bfloat16", "BF16"},
	                 {"float16", "F16"}, {"fp16", "F16"},      {"half", "F16"},
	                 {"fp32", "F32"},    {"float32", "F32"},   {"float", "F32"},
	                 {"F32", "F32"}};
	for (size_t i = 0; i < TEST_ARRAY_SIZE(spellings); i++) {
		CHECK_EQ_INT(test_run(&out, "%s plan %s --device cpu --json --dtype %s",
		                      test_hoist_bin(), dir, spellings[i].spelling),
		             0);
		char want[64];
		snprintf(want, sizeof want, "\"dtype\":\"%s\"", spellings[i].dtype);
		CHECK_HAS(out, want);
		free(out);
	}
	CHECK_EQ_INT(test_run(&out, "%s plan %s --device cpu --dtype int64", test_hoist_bin(), dir),
	             2);
	CHECK_HAS(out, "hoist: dtype I64: loads convert only to F16, BF16 or F32");
	free(out);
	CHECK_EQ_INT(test_run(&out, "%s plan %s --dtype bogus", test_hoist_bin(), dir), 2);
	CHECK_HAS(out, "hoist plan: --dtype: unknown dtype \"bogus\"");
	free(out);
	enum hoist_dtype d;
	CHECK_OK(hoist_dtype_from_name("BFloat16", &d));
	CHECK_EQ_INT(d, HOIST_BF16);
	CHECK_OK(hoist_dtype_from_name("f8_e4m3", &d));
	CHECK_EQ_INT(d, HOIST_F8_E4M3);
	CHECK_OK(hoist_dtype_from_name("torch.float8_e5m2", &d));
	CHECK_EQ_INT(d, HOIST_F8_E5M2);
	CHECK_ERR(hoist_dtype_from_name(NULL, &d), HOIST_ERR_INVALID, "unknown dtype \"(null)\"");
}

/* hoist help COMMAND, and what --help says: exit statuses, what 0 means. */
TEST(cli_help)
{
	char *out, *again;
	CHECK_EQ_INT(test_run(&out, "%s help load", test_hoist_bin()), 0);
	CHECK_EQ_INT(test_run(&again, "%s load --help", test_hoist_bin()), 0);
	CHECK_STR(out, again);
	CHECK_HAS(out, "usage: hoist load PATH [OPTIONS] [--verify] [--json]");
	CHECK_HAS(out,
	          "Exit status: 0 success; 1 a bad checkpoint, an I/O error or no room; 2 a bad");
	CHECK_HAS(out, "130 interrupted");
	CHECK_HAS(out, "--threads N         reader threads (0 or unset: min(16, 2 x cores))");
	CHECK_HAS(out, "--chunk BYTES       read unit (0 or unset: 32MiB)");
	CHECK_HAS(out, "--staging BYTES     staging ring in all (0 or unset: 256MiB)");
	free(out);
	free(again);
	CHECK_EQ_INT(test_run(&out, "%s help inspect", test_hoist_bin()), 0);
	CHECK_HAS(out, "usage: hoist inspect PATH [--json]");
	CHECK(strstr(out, "--threads") == NULL);
	free(out);
	CHECK_EQ_INT(test_run(&out, "%s help frobnicate", test_hoist_bin()), 2);
	CHECK_HAS(out, "hoist: help: no command 'frobnicate'");
	free(out);
	CHECK_EQ_INT(test_run(&out, "%s help", test_hoist_bin()), 0);
	CHECK_HAS(out, "  synth DIR [--from FILE]");
	CHECK_HAS(out, "\n      write a deterministic synthetic checkpoint\n");
	free(out);
}

/* What cannot be written is an error: a full disk behind stdout. */
TEST(cli_output_errors)
{
	if (access("/dev/full", W_OK) != 0)
		SKIP("no writable /dev/full");
	const char *dir = small_ckpt();
	static const char *const runs[] = {"load %s --device cpu", "load %s --device cpu --json",
	                                   "inspect %s",           "inspect %s --json",
	                                   "plan %s --device cpu", "plan %s --device cpu --json"};
	for (size_t i = 0; i < TEST_ARRAY_SIZE(runs); i++) {
		char cmd[256], *out;
		snprintf(cmd, sizeof cmd, runs[i], dir);
		CHECK_EQ_INT(test_run(&out, "%s %s > /dev/full", test_hoist_bin(), cmd), 1);
		if (!strstr(out, "hoist: writing the output: No space left on device"))
			FAIL("hoist %s > /dev/full: %s", cmd, out);
		free(out);
	}
}

/* The progress bar on a terminal: no ETA before there is a rate to compute it from. */
TEST(cli_progress_bar_waits_for_a_rate)
{
	if (access("/usr/bin/script", X_OK) != 0)
		SKIP("no script(1) to give hoist a terminal");
	const char *dir = small_ckpt();
	char *out;
	/* 2 MB/s over ~6 MB: several draws, the first before a byte has landed */
	CHECK_EQ_INT(test_run(&out,
	                      "script -qec '%s load %s --device sim:0 --sim-bandwidth 2MB "
	                      "--chunk 64KiB --staging 256KiB' /dev/null",
	                      test_hoist_bin(), dir),
	             0);
	CHECK_HAS(out, "ETA   --");
	CHECK_HAS(out, "100%");
	/* every ETA that shows a number comes with bytes landed */
	for (const char *p = strstr(out, "\rstream"); p; p = strstr(p + 1, "\rstream")) {
		const char *eta = strstr(p, "ETA ");
		if (eta && strncmp(eta, "ETA   --", 8) != 0 && strstr(p, "  0 B / ") &&
		    strstr(p, "  0 B / ") < eta)
			FAIL("an ETA with nothing landed: %.80s", p);
	}
	free(out);
}

/* Ctrl-C during synth: exit 130, and nothing it wrote stays. */
TEST_TIMEOUT(cli_synth_interrupted_leaves_nothing, 120)
{
	const char *dir = test_path("big");
	char cmd[4096];
	snprintf(cmd, sizeof cmd, "%s/qwen2-vl-7b/config.json", test_data_dir());
	pid_t pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);
		dup2(null, 1);
		execl(test_hoist_bin(), test_hoist_bin(), "synth", dir, "--from", cmd, "--scale",
		      "0.1", "--shard-size", "100MB", (char *)NULL);
		_exit(127);
	}
	/* interrupt once the first shard is written and the second begun */
	for (int i = 0; i < 3000 && test_count_files(dir, "") < 2; i++)
		usleep(10000);
	CHECK(test_count_files(dir, "") >= 2);
	CHECK_EQ_INT(kill(pid, SIGINT), 0);
	int status;
	CHECK_EQ_INT(waitpid(pid, &status, 0), pid);
	if (!WIFEXITED(status))
		FAIL("synth ended by signal %d", WTERMSIG(status));
	CHECK_EQ_INT(WEXITSTATUS(status), 130);
	char *out;
	CHECK_EQ_INT(test_run(&out, "ls -A %s", dir), 0);
	CHECK_STR(out, "");
	free(out);
}
