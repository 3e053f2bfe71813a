/* cmd_synth.c - `hoist synth` (not written yet: its issue's helper replaces this file). */
#include "cli.h"

#include <stdio.h>

int cmd_synth(int argc, char **argv)
{
	(void)argc, (void)argv;
	fprintf(stderr, "hoist: synth is not implemented yet\n");
	return 1;
}
