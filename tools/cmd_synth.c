/* cmd_synth.c - `hoist synth`: write a deterministic synthetic checkpoint. */
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void synth_log(enum hoist_log_level level, const char *message, void *arg)
{
	(void)level, (void)arg;
	fprintf(stderr, "hoist synth: %s\n", message);
}

enum { O_FROM = CLI_EXTRA, O_SCALE, O_LAYERS, O_SHARD_SIZE, O_SEED };

struct synth_args {
	const struct cli_command *cmd;
	struct hoist_synth_options opt;
};

static bool take(int val, const char *v, void *ctx)
{
	struct synth_args *a = ctx;
	unsigned long long n;
	switch (val) {
	case O_FROM: a->opt.source = v; return true;
	case O_SCALE: {
		char *end;
		errno = 0;
		double s = strtod(v, &end);
		if (end == v || *end || errno || !(s > 0 && s <= 1)) {
			cli_usage_error(a->cmd, "--scale '%s': expected a number with 0 < F <= 1",
			                v);
			return false;
		}
		a->opt.scale = s;
		return true;
	}
	case O_LAYERS:
		if (!cli_uint(a->cmd, "--layers", v, 1000000, &n))
			return false;
		if (n == 0) {
			cli_usage_error(a->cmd, "--layers '%s': expected 1 to 1000000", v);
			return false;
		}
		a->opt.layers = (unsigned)n;
		return true;
	case O_SHARD_SIZE:
		if (hoist_bytes_parse(v, &a->opt.shard_bytes) != HOIST_OK) {
			cli_usage_error(a->cmd, "--shard-size: %s", hoist_errmsg());
			return false;
		}
		if (a->opt.shard_bytes == 0) {
			cli_usage_error(a->cmd, "--shard-size '%s': must be more than 0", v);
			return false;
		}
		return true;
	case O_SEED:
		if (!cli_uint(a->cmd, "--seed", v, UINT64_MAX, &n))
			return false;
		a->opt.seed = n;
		return true;
	}
	return false;
}

static int on_progress(const struct hoist_progress *pr, void *arg)
{
	(void)pr, (void)arg;
	return cli_interrupted() ? 1 : 0;
}

int cmd_synth(const struct cli_command *cmd, int argc, char **argv)
{
	static const struct option options[] = {
	        {"from", required_argument, NULL, O_FROM},
	        {"scale", required_argument, NULL, O_SCALE},
	        {"layers", required_argument, NULL, O_LAYERS},
	        {"shard-size", required_argument, NULL, O_SHARD_SIZE},
	        {"seed", required_argument, NULL, O_SEED},
	        {0},
	};
	struct synth_args a = {.cmd = cmd};
	struct cli_common c;
	const struct cli_extra extra = {options, take, &a};
	int rc = cli_parse(cmd, argc, argv, &extra, &c);
	if (rc >= 0)
		return rc;
	const char *dir = c.path;
	if (c.verbose)
		a.opt.log = synth_log;
	a.opt.progress = on_progress;
	cli_catch_interrupt();
	struct hoist_synth_options opt = a.opt;
	double t0 = now();
	enum hoist_status st = hoist_synth_write(dir, &opt);
	if (st == HOIST_ERR_CANCELLED)
		fprintf(stderr, "hoist: interrupted: what was written of %s is removed\n", dir);
	if (st != HOIST_OK)
		return cli_fail(st);
	double seconds = now() - t0;

	/* Read back what was written: the summary counts what a reader sees. */
	struct hoist_checkpoint *ckpt = NULL;
	st = hoist_checkpoint_open(dir, NULL, &ckpt);
	if (st != HOIST_OK)
		return cli_fail(st);
	uint64_t bytes = hoist_checkpoint_total_bytes(ckpt);
	printf("synth: %s: %zu shards, %zu tensors, %.2f GB of tensor data, seed %llu, %.2f s "
	       "(%.2f GB/s)\n",
	       dir, hoist_checkpoint_shard_count(ckpt), hoist_checkpoint_tensor_count(ckpt),
	       (double)bytes / 1e9, (unsigned long long)opt.seed, seconds,
	       seconds > 0 ? (double)bytes / seconds / 1e9 : 0.0);
	hoist_checkpoint_close(ckpt);
	return 0;
}
