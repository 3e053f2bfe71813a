/* cmd_plan.c - `hoist plan` (not written yet: its issue's helper replaces this file). */
#include "cli.h"

#include <stdio.h>

int cmd_plan(int argc, char **argv)
{
	(void)argc, (void)argv;
	fprintf(stderr, "hoist: plan is not implemented yet\n");
	return 1;
}
