/* hoist.c - the hoist command (placeholder main until the subcommands land). */
#include "hoist.h"

#include <stdio.h>

int main(void)
{
	printf("hoist %s\n", hoist_version());
	return 0;
}
