/* cmd_plan.c - `hoist plan`: where each tensor would go, from headers alone. */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char plan_usage_head[] =
        "usage: hoist plan PATH [OPTIONS] [--json]\n"
        "\n"
        "Reads the checkpoint's headers (no tensor bytes), plans where every tensor goes\n"
        "and prints the map, bytes per device against budgets, what spilled and why, and a\n"
        "predicted load time. Exit status: 0 planned, 1 bad checkpoint or no room\n"
        "(HOIST_ERR_NO_SPACE), 2 bad option, 3 no device.\n"
        "\n"
        "options:\n";

int cmd_plan(int argc, char **argv)
{
	struct cli_common c;
	struct hoist_checkpoint *ckpt = NULL;
	struct hoist_plan *plan = NULL;
	enum hoist_status st;
	int rc = 0;
	char usage[4096];

	snprintf(usage, sizeof usage, "%s%s", plan_usage_head, cli_options_help);
	if (!cli_parse_common(argc, argv, &c, NULL, NULL, usage))
		return 2;
	/* The text shows the notice; with --json it goes to stderr too, so a script
	 * reading the JSON still sees it. */
	c.quiet_notices = !c.json;
	st = hoist_checkpoint_open(c.path, &c.opt, &ckpt);
	if (st == HOIST_OK)
		st = hoist_plan_create(ckpt, &c.opt, &plan);
	if (st == HOIST_OK)
		st = c.json ? hoist_plan_print_json(plan, stdout) : hoist_plan_print(plan, stdout);
	if (st != HOIST_OK)
		rc = cli_fail(st);
	hoist_plan_free(plan);
	hoist_checkpoint_close(ckpt);
	if (rc == 0 && fflush(stdout) != 0) {
		perror("hoist: stdout");
		rc = 1;
	}
	return rc;
}
