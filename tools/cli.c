/* cli.c - what the hoist command's subcommands share: parsing the common options with
 * getopt_long, help texts, the library's log messages on stderr, exit statuses,
 * Ctrl-C. */
#include "cli.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
	O_HELP = 'h',
	O_VERBOSE = 'v',
	O_VERSION = 256,
	O_JSON,
	O_DEVICE,
	O_DEVICE_MAP,
	O_MAX_MEMORY,
	O_MODULE_ORDER,
	O_DTYPE,
	O_NO_DISK,
	O_HOST_MEMORY,
	O_SIM_DEVICES,
	O_SIM_CAPACITY,
	O_SIM_BANDWIDTH,
	O_THREADS,
	O_CHUNK,
	O_STAGING,
	O_DIRECT,
};

static const struct option always[] = {
        {"help", no_argument, NULL, O_HELP},
        {"version", no_argument, NULL, O_VERSION},
        {"verbose", no_argument, NULL, O_VERBOSE},
        {0},
};

static const struct option json_options[] = {
        {"json", no_argument, NULL, O_JSON},
        {0},
};

static const struct option plan_options[] = {
        {"device", required_argument, NULL, O_DEVICE},
        {"device-map", required_argument, NULL, O_DEVICE_MAP},
        {"max-memory", required_argument, NULL, O_MAX_MEMORY},
        {"module-order", required_argument, NULL, O_MODULE_ORDER},
        {"dtype", required_argument, NULL, O_DTYPE},
        {"no-disk", no_argument, NULL, O_NO_DISK},
        {"host-memory", required_argument, NULL, O_HOST_MEMORY},
        {"sim-devices", required_argument, NULL, O_SIM_DEVICES},
        {"sim-capacity", required_argument, NULL, O_SIM_CAPACITY},
        {"sim-bandwidth", required_argument, NULL, O_SIM_BANDWIDTH},
        {0},
};

static const struct option load_options[] = {
        {"threads", required_argument, NULL, O_THREADS},
        {"chunk", required_argument, NULL, O_CHUNK},
        {"staging", required_argument, NULL, O_STAGING},
        {"direct", no_argument, NULL, O_DIRECT},
        {0},
};

static const char plan_help[] =
        "  --device D          cuda:N | cuda | cpu | sim:N | sim\n"
        "                      (default: every GPU, else cpu with a notice)\n"
        "  --device-map M      auto | balanced | sequential | FILE.json (accelerate's form:\n"
        "                      {\"prefix\": device}); default with one device: all there\n"
        "  --max-memory LIST   budgets, e.g. 0=20GiB,1=20GiB,cpu=64GiB,disk=1TB\n"
        "  --module-order FILE units in execution order, one per line (tensor-name\n"
        "                      prefixes; \"tie A B\" lines); default: read from the names\n"
        "  --dtype T           convert F16/BF16/F32 tensors to T on load: F16, BF16, F32\n"
        "                      (or torch's names: float16, fp16, half, bfloat16, bf16,\n"
        "                      float32, fp32, float)\n"
        "  --no-disk           never leave tensors on disk\n"
        "  --host-memory K     cpu targets: pageable | pinned | mmap (zero-copy views)\n"
        "  --sim-devices N, --sim-capacity BYTES, --sim-bandwidth BYTES_PER_S\n"
        "                      the simulated accelerator (tests and demos)\n";

static const char load_help[] =
        "  --threads N         reader threads (0 or unset: min(16, 2 x cores))\n"
        "  --chunk BYTES       read unit (0 or unset: 32MiB)\n"
        "  --staging BYTES     staging ring in all (0 or unset: 256MiB)\n"
        "  --direct            O_DIRECT reads (cold storage)\n";

static const char always_help[] =
        "  -v, --verbose       the library's step-by-step lines on stderr\n"
        "  -h, --help          this help\n"
        "      --version       the version\n";

static const char exit_help[] =
        "Exit status: 0 success; 1 a bad checkpoint, an I/O error or no room; 2 a bad\n"
        "argument or option; 3 no device or a device error; 130 interrupted (everything\n"
        "made so far is freed).\n";

void cli_help(const struct cli_command *cmd, FILE *out)
{
	fprintf(out, "usage: hoist %s %s\n\n%s", cmd->name, cmd->synopsis, cmd->help);
	fputs("\noptions:\n", out);
	if (cmd->groups & CLI_PLAN)
		fputs(plan_help, out);
	if (cmd->groups & CLI_LOAD)
		fputs(load_help, out);
	if (cmd->groups & CLI_JSON)
		fputs("  --json              one JSON object on stdout\n", out);
	fputs(always_help, out);
	fputc('\n', out);
	fputs(cmd->exits ? cmd->exits : exit_help, out);
}

int cli_usage_error(const struct cli_command *cmd, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "hoist %s: ", cmd->name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'hoist %s --help' for more information.\n", cmd->name);
	return CLI_USAGE;
}

bool cli_uint(const struct cli_command *cmd, const char *option, const char *text,
              unsigned long long max, unsigned long long *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(text, &end, 10);
	if (end == text || *end || errno || v > max || text[0] == '-' || text[0] == '+') {
		cli_usage_error(cmd, "%s '%s': expected a whole number from 0 to %llu", option,
		                text, max);
		return false;
	}
	*out = v;
	return true;
}

static bool bytes_value(const struct cli_command *cmd, const char *option, const char *text,
                        uint64_t *out)
{
	if (hoist_bytes_parse(text, out) == HOIST_OK)
		return true;
	cli_usage_error(cmd, "%s: %s", option, hoist_errmsg());
	return false;
}

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
	case HOIST_OK: return CLI_OK;
	case HOIST_ERR_INVALID: return CLI_USAGE;
	case HOIST_ERR_NO_DEVICE:
	case HOIST_ERR_DEVICE: return CLI_DEVICE;
	case HOIST_ERR_CANCELLED: return CLI_INTERRUPTED;
	default: return CLI_DATA;
	}
}

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
	(void)sig;
	interrupted = 1;
}

void cli_catch_interrupt(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_sigint;
	sa.sa_flags = SA_RESETHAND; /* a second Ctrl-C ends a command that does not stop */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
}

bool cli_interrupted(void)
{
	return interrupted != 0;
}

/* Appends a zero-terminated table to out (room for cap entries, one kept for the end). */
static size_t add_options(struct option *out, size_t n, size_t cap, const struct option *more)
{
	for (; more && more->name && n + 1 < cap; more++)
		out[n++] = *more;
	return n;
}

/* The option as the user wrote it (for messages): "--device" of "--device=x". */
static const char *written(const char *arg, char *buf, size_t size)
{
	const char *eq = strchr(arg, '=');
	snprintf(buf, size, "%.*s", eq ? (int)(eq - arg) : (int)strlen(arg), arg);
	return buf;
}

static const char *option_name(const struct option *table, int val)
{
	for (; table->name; table++)
		if (table->val == val)
			return table->name;
	return "?";
}

static bool take_common(const struct cli_command *cmd, int val, const char *v, struct cli_common *c)
{
	unsigned long long n;
	switch (val) {
	case O_VERBOSE: c->verbose = true; return true;
	case O_JSON: c->json = true; return true;
	case O_DEVICE: c->opt.device = v; return true;
	case O_DEVICE_MAP: c->opt.device_map = v; return true;
	case O_MAX_MEMORY: c->opt.max_memory = v; return true;
	case O_MODULE_ORDER: c->opt.module_order = v; return true;
	case O_NO_DISK: c->opt.disk = HOIST_DISK_FORBIDDEN; return true;
	case O_DIRECT: c->opt.direct = 1; return true;
	case O_DTYPE:
		if (hoist_dtype_from_name(v, &c->opt.dtype) != HOIST_OK) {
			cli_usage_error(cmd, "--dtype: %s", hoist_errmsg());
			return false;
		}
		return true;
	case O_HOST_MEMORY:
		if (strcmp(v, "pageable") == 0)
			c->opt.host_memory = HOIST_HOST_PAGEABLE;
		else if (strcmp(v, "pinned") == 0)
			c->opt.host_memory = HOIST_HOST_PINNED;
		else if (strcmp(v, "mmap") == 0)
			c->opt.host_memory = HOIST_HOST_MMAP;
		else {
			cli_usage_error(cmd,
			                "--host-memory '%s': expected pageable, pinned or mmap", v);
			return false;
		}
		return true;
	case O_THREADS:
		if (!cli_uint(cmd, "--threads", v, 1024, &n))
			return false;
		c->opt.threads = (unsigned)n;
		return true;
	case O_CHUNK: return bytes_value(cmd, "--chunk", v, &c->opt.chunk_bytes);
	case O_STAGING: return bytes_value(cmd, "--staging", v, &c->opt.staging_bytes);
	case O_SIM_DEVICES:
		if (!cli_uint(cmd, "--sim-devices", v, HOIST_MAX_DEVICES, &n))
			return false;
		c->sim.devices = (unsigned)n;
		return true;
	case O_SIM_CAPACITY: return bytes_value(cmd, "--sim-capacity", v, &c->sim.capacity);
	case O_SIM_BANDWIDTH: {
		uint64_t bw;
		if (!bytes_value(cmd, "--sim-bandwidth", v, &bw))
			return false;
		c->sim.bytes_per_sec = (double)bw;
		return true;
	}
	}
	return false;
}

int cli_parse(const struct cli_command *cmd, int argc, char **argv, const struct cli_extra *extra,
              struct cli_common *c)
{
	struct option table[64];
	size_t n = 0;
	char buf[64];
	memset(c, 0, sizeof *c);
	c->opt.log = cli_log;
	c->opt.log_arg = c;
	c->opt.sim = &c->sim;
	n = add_options(table, n, 64, always);
	if (cmd->groups & CLI_JSON)
		n = add_options(table, n, 64, json_options);
	if (cmd->groups & CLI_PLAN)
		n = add_options(table, n, 64, plan_options);
	if (cmd->groups & CLI_LOAD)
		n = add_options(table, n, 64, load_options);
	n = add_options(table, n, 64, extra ? extra->options : NULL);
	memset(&table[n], 0, sizeof table[n]);

	opterr = 0; /* the messages below name the command */
	optind = 1;
	for (;;) {
		int val = getopt_long(argc, argv, ":hv", table, NULL);
		if (val == -1)
			break;
		const char *arg = argv[optind - 1];
		switch (val) {
		case O_HELP: cli_help(cmd, stdout); return CLI_OK;
		case O_VERSION: printf("hoist %s\n", hoist_version()); return CLI_OK;
		case ':':
			return cli_usage_error(
			        cmd, "option '%s' requires an argument",
			        optopt > 255 || optopt == 0
			                ? written(arg, buf, sizeof buf)
			                : (snprintf(buf, sizeof buf, "-%c", optopt), buf));
		case '?':
			if (optopt > 255)
				return cli_usage_error(cmd,
				                       "option '--%s' doesn't allow an argument",
				                       option_name(table, optopt));
			if (optopt)
				return cli_usage_error(cmd, "invalid option -- '%c'", optopt);
			/* getopt_long leaves optind just past the word it refused */
			return cli_usage_error(cmd, "unrecognized option '%s'",
			                       written(arg, buf, sizeof buf));
		default:
			if (val >= CLI_EXTRA) {
				if (!extra->take(val, optarg, extra->ctx))
					return CLI_USAGE;
				break; /* a command's own option is not a plan option */
			}
			if (!take_common(cmd, val, optarg, c))
				return CLI_USAGE;
			c->planning |= val >= O_DEVICE;
		}
	}
	for (int i = optind; i < argc; i++) {
		if (c->path)
			return cli_usage_error(cmd, "one %s only (got '%s' and '%s')", cmd->operand,
			                       c->path, argv[i]);
		c->path = argv[i];
	}
	if (!c->path && !(cmd->groups & CLI_OPERAND_OPTIONAL))
		return cli_usage_error(cmd, "missing %s", cmd->operand);
	return -1;
}
