/* cmd_inspect.c - `hoist inspect` (not written yet: its issue's helper replaces this file). */
#include "cli.h"

#include <stdio.h>

int cmd_inspect(int argc, char **argv)
{
	(void)argc, (void)argv;
	fprintf(stderr, "hoist: inspect is not implemented yet\n");
	return 1;
}
