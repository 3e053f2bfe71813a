/* cli.h - what the hoist command's subcommands share. Uses only the public header. */
#ifndef HOIST_CLI_H
#define HOIST_CLI_H

#include "hoist.h"
#include "hoist_testing.h"

#include <stdbool.h>

/* Flags common to plan and load, parsed into struct hoist_options. Strings point
 * into argv. */
struct cli_common {
	struct hoist_options opt;     /* opt.log is cli_log, with this as its argument */
	struct hoist_sim_options sim; /* opt.sim points here */
	bool json;
	bool verbose;       /* --verbose: the library's step-by-step lines too */
	bool quiet_notices; /* the output shows notices itself: not on stderr */
	const char *path;   /* the one positional argument */
};

/* The library's log messages on stderr as "hoist: <message>": warnings and notices
 * always (notices unless quiet_notices), the rest with --verbose. arg is the
 * struct cli_common. */
void cli_log(enum hoist_log_level level, const char *message, void *arg);

/* Parses argv (after the subcommand). Known common flags fill *c; a flag for which
 * `extra` returns true was consumed by the subcommand (extra may advance *i to take
 * a value). Prints the error and returns false on a bad flag or value. */
typedef bool (*cli_extra_fn)(int argc, char **argv, int *i, void *arg);
bool cli_parse_common(int argc, char **argv, struct cli_common *c, cli_extra_fn extra, void *arg,
                      const char *usage);

/* Prints "hoist: <message>" for the last failed call to stderr; returns the exit code
 * for the status (1 for data errors, 2 for usage errors, 3 for device errors,
 * 130 for cancellation). */
int cli_fail(enum hoist_status status);

/* The subcommands: each returns the process exit status. */
/* The help text of the flags cli_parse_common knows, for subcommand usages. */
extern const char cli_options_help[];

int cmd_inspect(int argc, char **argv);
int cmd_plan(int argc, char **argv);
int cmd_load(int argc, char **argv);
int cmd_synth(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_doctor(int argc, char **argv);

#endif
