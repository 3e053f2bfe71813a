/* cmd_plan.c - `hoist plan`: where each tensor would go, from headers alone. */
#include "cli.h"

#include <stdio.h>

int cmd_plan(const struct cli_command *cmd, int argc, char **argv)
{
	struct cli_common c;
	struct hoist_checkpoint *ckpt = NULL;
	struct hoist_plan *plan = NULL;
	int rc = cli_parse(cmd, argc, argv, NULL, &c);
	if (rc >= 0)
		return rc;
	/* The text shows the notice; with --json it goes to stderr too, so a script
	 * reading the JSON still sees it. */
	c.quiet_notices = !c.json;
	enum hoist_status st = hoist_checkpoint_open(c.path, &c.opt, &ckpt);
	if (st == HOIST_OK)
		st = hoist_plan_create(ckpt, &c.opt, &plan);
	if (st == HOIST_OK)
		st = c.json ? hoist_plan_print_json(plan, stdout) : hoist_plan_print(plan, stdout);
	rc = st == HOIST_OK ? CLI_OK : cli_fail(st);
	hoist_plan_free(plan);
	hoist_checkpoint_close(ckpt);
	return rc;
}
