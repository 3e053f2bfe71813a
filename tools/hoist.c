/* hoist.c - the hoist command: its commands, their usage, and the dispatch to them. */
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const struct cli_command cli_commands[] = {
        {"inspect", "PATH [--json]", "shards, tensors, dtypes, layer groups (headers only)",
         "Reads every shard's header (no tensor bytes) and prints the shards, tensor count,\n"
         "bytes per dtype, metadata, config, warnings, the 10 largest tensors and the\n"
         "layer groups. PATH is a .safetensors file, a model directory or an index file.\n"
         "With --json: shards, tensor_count, total_bytes, dtypes, metadata, tensors\n"
         "[{name, dtype, shape, file, offset, nbytes}], groups, warnings.\n",
         NULL, CLI_JSON, "PATH", cmd_inspect},
        {"plan", "PATH [OPTIONS] [--json]", "where each tensor would go, and a predicted load time",
         "Reads the checkpoint's headers (no tensor bytes), plans where every tensor goes\n"
         "and prints the map, bytes per device against budgets, what spilled and why, and a\n"
         "predicted load time. A plan that does not fit is exit status 1 (no room).\n",
         NULL, CLI_JSON | CLI_PLAN, "PATH", cmd_plan},
        {"load", "PATH [OPTIONS] [--verify] [--json]",
         "stream every tensor to its device; timing report",
         "Streams every tensor of the checkpoint to its device and prints the phase report:\n"
         "seconds per phase and the link that set the pace. A progress bar shows on a\n"
         "terminal; Ctrl-C stops the load and frees everything.\n"
         "  --verify            read every tensor back and compare it with the synthetic\n"
         "                      content (checkpoints written by `hoist synth`; any other\n"
         "                      checkpoint: `hoist verify`)\n"
         "  --source S          pread | register | auto: where copies to a GPU take their\n"
         "                      bytes from (pinned staging, or the page cache registered\n"
         "                      with the driver; default auto)\n",
         NULL, CLI_JSON | CLI_PLAN | CLI_LOAD, "PATH", cmd_load},
        {"verify", "PATH [OPTIONS] [--sha256] [--manifest FILE] [--json]",
         "load, then check every tensor where it landed against the files",
         "Loads the checkpoint as `hoist load` does, then checks every tensor where it landed\n"
         "(host memory hashed in place, device memory read back in chunks) against the\n"
         "files' bytes, converted as the load converts them, hashing both with XXH3, and\n"
         "names every tensor that differs with its first differing byte.\n"
         "  --sha256            print `<sha256>  <name>` for every tensor, sorted by name\n"
         "                      (as sha256sum prints files)\n"
         "  --manifest FILE     compare every tensor's SHA-256 with FILE's `<sha256>  <name>`\n"
         "                      lines and list what differs or is missing\n",
         "Exit status: 0 every byte matches; 1 a tensor differs (or the manifest disagrees,\n"
         "or a bad checkpoint or I/O error); 2 a bad argument or option; 3 no device or a\n"
         "device error; 130 interrupted.\n",
         CLI_JSON | CLI_PLAN | CLI_LOAD, "PATH", cmd_verify},
        {"bench", "[PATH [OPTIONS]] [--thorough] [--json]",
         "measure this machine's links; predict a load",
         "Measures, in a few seconds, the links a load passes through: storage read cold\n"
         "(O_DIRECT, parallel) and warm (page cache), reads into fresh host memory, memcpy,\n"
         "and per GPU pinned and pageable host->device copies and read-only registration of\n"
         "page-cache memory. The figures are kept under $XDG_CACHE_HOME/hoist/ (or\n"
         "~/.cache/hoist/), and `hoist plan` and `hoist load` predict from them.\n"
         "\n"
         "With PATH, storage is measured on a sample of the checkpoint's shards (which then\n"
         "stays in the page cache), and the load of its plan (by OPTIONS, as for `hoist\n"
         "plan`) is predicted, naming the link that bounds it. Without PATH, a sample file is\n"
         "written next to the figures and removed; the plan and load options need a PATH.\n"
         "  --thorough          larger samples, the median of three (tens of seconds)\n",
         "Exit status: 0 measured; 1 a measurement or writing the figures failed; 2 a bad\n"
         "argument or option.\n",
         CLI_JSON | CLI_PLAN | CLI_LOAD | CLI_OPERAND_OPTIONAL, "PATH", cmd_bench},
        {"doctor", "PATH [OPTIONS] [--json]", "what would make this load slow or fail, and why",
         "Examines loading the checkpoint with OPTIONS (as `hoist load` would take them) and\n"
         "reports, for each check, what it measured and, where something would make the\n"
         "load slow or fail, the remedy: shards not in the page cache and the cold read's\n"
         "cost; host memory against the plan; GPU memory against the plan; network, FUSE,\n"
         "overlay or tmpfs file systems; the locked-memory limit; the GPU driver; transparent\n"
         "huge pages; NUMA placement; the shards' storage against the machine's fastest.\n"
         "What it cannot measure it says so. It reads a few MiB of the shards with O_DIRECT,\n"
         "leaving the page cache as it was.\n",
         "Exit status: 0 nothing would make the load slow or fail; 1 something would (or the\n"
         "checkpoint cannot be opened); 2 a bad argument or option.\n",
         CLI_JSON | CLI_PLAN | CLI_LOAD, "PATH", cmd_doctor},
        {"synth", "DIR [--from FILE] [--scale F] [--layers N] [--shard-size BYTES] [--seed N]",
         "write a deterministic synthetic checkpoint",
         "Writes model-0000K-of-0000N.safetensors, model.safetensors.index.json and\n"
         "config.json into DIR. Every tensor's bytes are a function of (seed, tensor name,\n"
         "offset), so a load of the checkpoint can be verified byte for byte. Ctrl-C stops\n"
         "it and removes what it wrote.\n"
         "  --from FILE         layout source: a config.json (Qwen2 / Llama / Qwen2-VL) or a\n"
         "                      shard-headers.json (file -> {header, file_size}); default: a\n"
         "                      built-in Qwen2-style model of about 310 MB in BF16\n"
         "  --scale F           shrink every tensor's first dimension by F (0 < F <= 1)\n"
         "  --layers N          override num_hidden_layers (config sources)\n"
         "  --shard-size BYTES  target shard size (default: the source's shards, or 1GB)\n"
         "  --seed N            content seed (default 0)\n",
         NULL, 0, "DIR", cmd_synth},
        {0},
};

static void usage(FILE *out)
{
	fputs("usage: hoist COMMAND [ARGS]\n\n", out);
	for (const struct cli_command *c = cli_commands; c->name; c++)
		fprintf(out, "  %s %s\n      %s\n", c->name, c->synopsis, c->summary);
	fputs("  help [COMMAND]\n      the commands, or COMMAND's options and exit statuses\n"
	      "  version\n      the version\n"
	      "\n"
	      "PATH is a .safetensors file, a model directory, or a model.safetensors.index.json.\n"
	      "Run 'hoist help COMMAND' or 'hoist COMMAND --help' for the options of each.\n",
	      out);
}

const struct cli_command *cli_find(const char *name)
{
	for (const struct cli_command *c = cli_commands; c->name; c++)
		if (strcmp(c->name, name) == 0)
			return c;
	return NULL;
}

static int run(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return CLI_USAGE;
	}
	const char *name = argv[1];
	if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) {
		usage(stdout);
		return CLI_OK;
	}
	if (strcmp(name, "help") == 0) {
		if (argc < 3) {
			usage(stdout);
			return CLI_OK;
		}
		const struct cli_command *c = cli_find(argv[2]);
		if (!c) {
			fprintf(stderr, "hoist: help: no command '%s'\n", argv[2]);
			usage(stderr);
			return CLI_USAGE;
		}
		cli_help(c, stdout);
		return CLI_OK;
	}
	if (strcmp(name, "version") == 0 || strcmp(name, "--version") == 0) {
		printf("hoist %s\n", hoist_version());
		return CLI_OK;
	}
	const struct cli_command *c = cli_find(name);
	if (!c) {
		fprintf(stderr, "hoist: unknown command '%s'\n", name);
		usage(stderr);
		return CLI_USAGE;
	}
	return c->run(c, argc - 1, argv + 1);
}

int main(int argc, char **argv)
{
	int rc = run(argc, argv);
	/* What was written is only known to have reached its file once flushed: a full
	 * disk or a closed pipe shows here (the GNU close_stdout idea). */
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "hoist: writing the output: %s\n",
		        errno ? strerror(errno) : "write error");
		if (rc == CLI_OK)
			rc = CLI_DATA;
	}
	return rc;
}
