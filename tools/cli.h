/* cli.h - what the hoist command's subcommands share. Uses only the public headers.
 *
 * Arguments follow getopt_long and GNU conventions: long options as `--name VALUE` or
 * `--name=VALUE`, `--` ends the options, options and operands in any order, `--help`
 * and `--version` everywhere, usage errors exit 2 with "Try 'hoist CMD --help'". */
#ifndef HOIST_CLI_H
#define HOIST_CLI_H

#include "hoist.h"
#include "hoist_testing.h"

#include <getopt.h>
#include <stdbool.h>

/* Exit statuses, for every command. */
enum {
	CLI_OK = 0,
	CLI_DATA = 1,   /* a bad checkpoint, an I/O error, no room */
	CLI_USAGE = 2,  /* a bad argument or option */
	CLI_DEVICE = 3, /* no device, or a device error */
	CLI_INTERRUPTED = 130,
};

/* The option groups a command takes besides --help, --version and --verbose. */
enum {
	CLI_JSON = 1u << 0,             /* --json */
	CLI_PLAN = 1u << 1,             /* --device, --device-map, --max-memory, --dtype, --no-disk,
	                                 * --host-memory, --sim-* */
	CLI_LOAD = 1u << 2,             /* --threads, --chunk, --staging, --direct */
	CLI_OPERAND_OPTIONAL = 1u << 3, /* the operand may be left out */
};

/* A command's own options: getopt_long entries whose val is CLI_EXTRA or more, and
 * what takes them. take() gets the entry's val and its argument (NULL for none);
 * false means a usage error, which it has printed. */
#define CLI_EXTRA 1000
struct cli_extra {
	const struct option *options; /* ends with a zeroed entry */
	bool (*take)(int val, const char *arg, void *ctx);
	void *ctx;
};

struct cli_command {
	const char *name;
	const char *synopsis; /* "PATH [OPTIONS]", after "hoist NAME " */
	const char *summary;  /* one line for `hoist --help` */
	const char *help;     /* what it does, and its own options */
	const char *exits;    /* its exit statuses, where they differ from the usual ones */
	unsigned groups;      /* CLI_JSON | CLI_PLAN | CLI_LOAD | CLI_OPERAND_OPTIONAL */
	const char *operand;  /* the one operand's name ("PATH", "DIR") */
	int (*run)(const struct cli_command *cmd, int argc, char **argv);
};

/* What the common options give. Strings point into argv. */
struct cli_common {
	struct hoist_options opt;     /* opt.log is cli_log, with this as its argument */
	struct hoist_sim_options sim; /* opt.sim points here */
	bool json;
	bool verbose;       /* --verbose: the library's step-by-step lines too */
	bool quiet_notices; /* the output shows notices itself: not on stderr */
	const char *path;   /* the operand (NULL only where it is optional) */
	bool planning;      /* a CLI_PLAN or CLI_LOAD option was given */
	const char *name;   /* "hoist load", for messages */
};

/* Parses argv (argv[0] is the command's name) into c. Returns -1 to go on, or the
 * exit status to end with: CLI_OK after --help or --version (printed on stdout),
 * CLI_USAGE after a usage error (printed on stderr). */
int cli_parse(const struct cli_command *cmd, int argc, char **argv, const struct cli_extra *extra,
              struct cli_common *c);

/* Prints cmd's full help (usage, what it does, its options, exit statuses) to out. */
void cli_help(const struct cli_command *cmd, FILE *out);

/* A usage error: "hoist CMD: <message>" and the --help hint on stderr; CLI_USAGE. */
int cli_usage_error(const struct cli_command *cmd, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

/* Parses a whole number of at most max, or prints why not (naming the option). */
bool cli_uint(const struct cli_command *cmd, const char *option, const char *text,
              unsigned long long max, unsigned long long *out);

/* The library's log messages on stderr as "hoist: <message>": warnings and notices
 * always (notices unless quiet_notices), the rest with --verbose. arg: the cli_common. */
void cli_log(enum hoist_log_level level, const char *message, void *arg);

/* Prints "hoist: <hoist_errmsg()>" on stderr; returns the exit status for status. */
int cli_fail(enum hoist_status status);

/* Ctrl-C during long work: from this call on, SIGINT only sets a flag, which the
 * command's progress callback reads through cli_interrupted() to cancel the library's
 * work, so everything made so far is freed or removed before it exits 130. A second
 * Ctrl-C ends the process at once. */
void cli_catch_interrupt(void);
bool cli_interrupted(void);

/* The commands, and their table (hoist.c). */
extern const struct cli_command cli_commands[];
const struct cli_command *cli_find(const char *name);

int cmd_inspect(const struct cli_command *cmd, int argc, char **argv);
int cmd_plan(const struct cli_command *cmd, int argc, char **argv);
int cmd_load(const struct cli_command *cmd, int argc, char **argv);
int cmd_synth(const struct cli_command *cmd, int argc, char **argv);
int cmd_verify(const struct cli_command *cmd, int argc, char **argv);
int cmd_bench(const struct cli_command *cmd, int argc, char **argv);
int cmd_doctor(const struct cli_command *cmd, int argc, char **argv);

#endif
