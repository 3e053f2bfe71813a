/* cli.c - what the hoist command's subcommands share: the flags of plan and load, the
 * library's log messages on stderr, exit statuses. */
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char cli_options_help[] =
        "  --device D         cuda:N | cuda | cpu | sim:N | sim (default: every GPU, else cpu)\n"
        "  --device-map M     auto | balanced | sequential | FILE.json\n"
        "  --max-memory LIST  budgets, e.g. 0=20GiB,1=20GiB,cpu=64GiB,disk=1TB\n"
        "  --module-order FILE  units in execution order, one per line (prefixes;\n"
        "                     \"tie A B\" lines), instead of hoist's reading of the names\n"
        "  --dtype T          convert F16/BF16/F32 tensors to T on load (F16, BF16, F32)\n"
        "  --threads N        reader threads (default min(16, 2 x cores))\n"
        "  --chunk BYTES      read unit (default 32MiB)\n"
        "  --staging BYTES    pinned staging ring (default 256MiB)\n"
        "  --direct           O_DIRECT reads (cold storage)\n"
        "  --host-memory K    pageable | pinned | mmap (cpu targets)\n"
        "  --no-disk          never place tensors on disk\n"
        "  --sim-devices N, --sim-capacity BYTES, --sim-bandwidth BYTES_PER_S\n"
        "                     the simulated accelerator (tests and demos)\n"
        "  --verbose          notices and live phase lines on stderr\n"
        "  --json             one JSON object on stdout\n";

void cli_log(enum hoist_log_level level, const char *message, void *arg)
{
	const struct cli_common *c = arg;
	if (level == HOIST_LOG_NOTICE && c->quiet_notices)
		return;
	if (level <= HOIST_LOG_NOTICE || c->verbose)
		fprintf(stderr, "hoist: %s\n", message);
}

int cli_fail(enum hoist_status status)
{
	fprintf(stderr, "hoist: %s\n", hoist_errmsg());
	switch (status) {
	case HOIST_OK: return 0;
	case HOIST_ERR_INVALID: return 2;
	case HOIST_ERR_NO_DEVICE:
	case HOIST_ERR_DEVICE: return 3;
	case HOIST_ERR_CANCELLED: return 130;
	default: return 1;
	}
}

static bool parse_bytes_flag(const char *flag, const char *text, uint64_t *out)
{
	if (hoist_bytes_parse(text, out) != HOIST_OK) {
		fprintf(stderr, "hoist: %s: %s\n", flag, hoist_errmsg());
		return false;
	}
	return true;
}

static bool parse_uint_flag(const char *flag, const char *text, unsigned max, unsigned *out)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(text, &end, 10);
	if (end == text || *end || errno || v > max || text[0] == '-') {
		fprintf(stderr, "hoist: %s %s: expected a whole number from 0 to %u\n", flag, text,
		        max);
		return false;
	}
	*out = (unsigned)v;
	return true;
}

bool cli_parse_common(int argc, char **argv, struct cli_common *c, cli_extra_fn extra, void *arg,
                      const char *cmd_usage)
{
	memset(c, 0, sizeof *c);
	c->opt.log = cli_log;
	c->opt.log_arg = c;
	c->opt.sim = &c->sim;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			fputs(cmd_usage, stdout);
			exit(0);
		}
		if (extra && extra(argc, argv, &i, arg))
			continue;
		if (a[0] != '-' || strcmp(a, "-") == 0) {
			if (c->path) {
				fprintf(stderr, "hoist: unexpected argument \"%s\"\n%s", a,
				        cmd_usage);
				return false;
			}
			c->path = a;
			continue;
		}
		bool takes_value = true;
		if (strcmp(a, "--json") == 0) {
			c->json = true;
			takes_value = false;
		} else if (strcmp(a, "--verbose") == 0 || strcmp(a, "-v") == 0) {
			c->verbose = true;
			takes_value = false;
		} else if (strcmp(a, "--direct") == 0) {
			c->opt.direct = 1;
			takes_value = false;
		} else if (strcmp(a, "--no-disk") == 0) {
			c->opt.disk = HOIST_DISK_FORBIDDEN;
			takes_value = false;
		}
		if (!takes_value)
			continue;
		if (!v) {
			fprintf(stderr, "hoist: %s needs a value\n%s", a, cmd_usage);
			return false;
		}
		i++;
		if (strcmp(a, "--device") == 0) {
			c->opt.device = v;
		} else if (strcmp(a, "--device-map") == 0) {
			c->opt.device_map = v;
		} else if (strcmp(a, "--max-memory") == 0) {
			c->opt.max_memory = v;
		} else if (strcmp(a, "--module-order") == 0) {
			c->opt.module_order = v;
		} else if (strcmp(a, "--dtype") == 0) {
			/* a dtype loads convert to: what an F32 tensor becomes */
			if (hoist_dtype_parse(v, &c->opt.dtype) != HOIST_OK ||
			    hoist_dtype_loaded(HOIST_F32, c->opt.dtype) != c->opt.dtype) {
				fprintf(stderr, "hoist: --dtype %s: expected F16, BF16 or F32\n",
				        v);
				return false;
			}
		} else if (strcmp(a, "--threads") == 0) {
			if (!parse_uint_flag(a, v, 1024, &c->opt.threads))
				return false;
		} else if (strcmp(a, "--chunk") == 0) {
			if (!parse_bytes_flag(a, v, &c->opt.chunk_bytes))
				return false;
		} else if (strcmp(a, "--staging") == 0) {
			if (!parse_bytes_flag(a, v, &c->opt.staging_bytes))
				return false;
		} else if (strcmp(a, "--host-memory") == 0) {
			if (strcmp(v, "pageable") == 0)
				c->opt.host_memory = HOIST_HOST_PAGEABLE;
			else if (strcmp(v, "pinned") == 0)
				c->opt.host_memory = HOIST_HOST_PINNED;
			else if (strcmp(v, "mmap") == 0)
				c->opt.host_memory = HOIST_HOST_MMAP;
			else {
				fprintf(stderr,
				        "hoist: --host-memory %s: expected pageable, pinned or "
				        "mmap\n",
				        v);
				return false;
			}
		} else if (strcmp(a, "--sim-devices") == 0) {
			if (!parse_uint_flag(a, v, 64, &c->sim.devices))
				return false;
		} else if (strcmp(a, "--sim-capacity") == 0) {
			if (!parse_bytes_flag(a, v, &c->sim.capacity))
				return false;
		} else if (strcmp(a, "--sim-bandwidth") == 0) {
			uint64_t bw;
			if (!parse_bytes_flag(a, v, &bw))
				return false;
			c->sim.bytes_per_sec = (double)bw;
		} else {
			fprintf(stderr, "hoist: unknown option %s\n%s", a, cmd_usage);
			return false;
		}
	}
	if (!c->path) {
		fprintf(stderr, "hoist: missing PATH\n%s", cmd_usage);
		return false;
	}
	return true;
}
