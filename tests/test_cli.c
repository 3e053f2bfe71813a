/* test_cli.c - what a user meets first with the hoist command: usage, the CPU fallback
 * notice without --verbose, and the report of a load given only a path. */
#include "test.h"

TEST(cli_usage_and_unknown_command)
{
	char *out;
	CHECK_EQ_INT(test_run(&out, "%s", test_hoist_bin()), 2);
	CHECK(strstr(out, "usage: hoist COMMAND"));
	free(out);
	CHECK_EQ_INT(test_run(&out, "%s frobnicate", test_hoist_bin()), 2);
	CHECK(strstr(out, "hoist: unknown command \"frobnicate\""));
	free(out);
	CHECK_EQ_INT(test_run(&out, "%s load x --threads many", test_hoist_bin()), 2);
	CHECK(strstr(out, "hoist: --threads many: expected a whole number from 0 to 1024"));
	free(out);
	CHECK_EQ_INT(test_run(&out, "%s load x --chunk 3parsecs", test_hoist_bin()), 2);
	CHECK(strstr(out, "hoist: --chunk: byte count \"3parsecs\": unknown unit \"parsecs\""));
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
