/* cmd_load.c - `hoist load` (not written yet: its issue's helper replaces this file). */
#include "cli.h"

#include <stdio.h>

int cmd_load(int argc, char **argv)
{
	(void)argc, (void)argv;
	fprintf(stderr, "hoist: load is not implemented yet\n");
	return 1;
}
