/* hoist.c - the hoist command: its usage and the dispatch to subcommands. */
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
        "usage: hoist COMMAND [ARGS]\n"
        "\n"
        "  inspect PATH [--json]              shards, tensors, dtypes, layer groups (headers "
        "only)\n"
        "  plan PATH [OPTIONS] [--json]       where each tensor would go, and a predicted load "
        "time\n"
        "  load PATH [OPTIONS] [--json]       stream every tensor to its device; timing report\n"
        "  verify PATH [OPTIONS] [--sha256] [--manifest FILE] [--json]\n"
        "                                     load, then check every tensor where it landed\n"
        "                                     against the files\n"
        "  bench [PATH [OPTIONS]] [--thorough] [--json]\n"
        "                                     measure this machine's links; predict a load\n"
        "  doctor PATH [OPTIONS] [--json]     what would make this load slow or fail, and why\n"
        "  synth DIR [--from FILE] [--scale F] [--layers N] [--seed N]\n"
        "                                     write a deterministic synthetic checkpoint\n"
        "  version                            print the version\n"
        "\n"
        "PATH is a .safetensors file, a model directory, or a model.safetensors.index.json.\n"
        "Run `hoist COMMAND --help` for the options of each command.\n";

int main(int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		fputs(usage, argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	const char *cmd = argv[1];
	if (strcmp(cmd, "inspect") == 0)
		return cmd_inspect(argc - 2, argv + 2);
	if (strcmp(cmd, "plan") == 0)
		return cmd_plan(argc - 2, argv + 2);
	if (strcmp(cmd, "load") == 0)
		return cmd_load(argc - 2, argv + 2);
	if (strcmp(cmd, "synth") == 0)
		return cmd_synth(argc - 2, argv + 2);
	if (strcmp(cmd, "verify") == 0)
		return cmd_verify(argc - 2, argv + 2);
	if (strcmp(cmd, "bench") == 0)
		return cmd_bench(argc - 2, argv + 2);
	if (strcmp(cmd, "doctor") == 0)
		return cmd_doctor(argc - 2, argv + 2);
	if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
		printf("hoist %s\n", hoist_version());
		return 0;
	}
	fprintf(stderr, "hoist: unknown command \"%s\"\n%s", cmd, usage);
	return 2;
}
