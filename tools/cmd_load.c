/* cmd_load.c - `hoist load`: stream every tensor to its device, report where the time
 * went, and optionally verify every byte of a synthetic checkpoint. */
#include "cli.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct ui {
	bool bar;     /* stderr is a terminal: a live progress line */
	bool verbose; /* phase lines as they start */
	bool started;
	enum hoist_phase phase;
	double last; /* when the bar was last drawn */
	bool drawn;
};

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int on_progress(const struct hoist_progress *pr, void *arg)
{
	struct ui *ui = arg;
	bool new_phase = !ui->started || ui->phase != pr->phase;
	const char *phase = hoist_phase_name(pr->phase);
	if (new_phase) {
		ui->started = true;
		ui->phase = pr->phase;
		if (ui->verbose) {
			if (ui->drawn)
				fputc('\n', stderr);
			ui->drawn = false;
			fprintf(stderr, "hoist: %s...\n", phase);
		}
	}
	double t = now();
	if (ui->bar && pr->phase == HOIST_PHASE_STREAM &&
	    (new_phase || t - ui->last >= 0.1 || pr->bytes_done == pr->bytes_total)) {
		char done[32], total[32], eta[32];
		double rate = pr->seconds > 0 ? (double)pr->bytes_done / pr->seconds : 0;
		/* A rate needs some bytes and some time behind it: until then no ETA. */
		if (pr->bytes_done > 0 && pr->seconds >= 0.1)
			snprintf(eta, sizeof eta, "%5.1f s",
			         (double)(pr->bytes_total - pr->bytes_done) / rate);
		else
			snprintf(eta, sizeof eta, "  --   ");
		hoist_bytes_format(pr->bytes_done, done, sizeof done);
		hoist_bytes_format(pr->bytes_total, total, sizeof total);
		int pct = pr->bytes_total
		                  ? (int)(100.0 * (double)pr->bytes_done / (double)pr->bytes_total)
		                  : 100;
		fprintf(stderr, "\r%-8s %3d%%  %s / %s  %6.2f GB/s  ETA %s ", phase, pct, done,
		        total, rate / 1e9, eta);
		ui->last = t;
		ui->drawn = true;
	}
	return cli_interrupted() ? 1 : 0;
}

/* The synthetic seed from the checkpoint's metadata; false if it has none. */
static bool synth_seed(const struct hoist_checkpoint *ck, uint64_t *seed)
{
	for (size_t i = 0; i < hoist_checkpoint_metadata_count(ck); i++) {
		const struct hoist_metadata *md = hoist_checkpoint_metadata(ck, i);
		if (strcmp(md->key, "hoist_synth_seed") == 0) {
			char *end;
			*seed = strtoull(md->value, &end, 10);
			return end != md->value && *end == '\0';
		}
	}
	return false;
}

/* Reads every tensor back and compares with hoist_synth_fill. Returns the exit code. */
static int verify(const struct hoist_checkpoint *ck, const struct hoist_model *m, FILE *out)
{
	uint64_t seed;
	if (!synth_seed(ck, &seed))
		return 1; /* checked before the load (cmd_load) */
	const size_t piece = 1 << 20;
	unsigned char *want = malloc(piece);
	unsigned char *got = NULL;
	uint64_t got_cap = 0, bytes = 0;
	size_t n = 0, skipped = 0;
	int rc = 0;
	if (!want) {
		fprintf(stderr, "hoist: --verify: out of memory\n");
		return 1;
	}
	for (size_t i = 0; i < hoist_model_tensor_count(m) && rc == 0; i++) {
		const struct hoist_tensor_info *ti = hoist_checkpoint_tensor(ck, i);
		struct hoist_tensor t = *hoist_model_tensor(m, i);
		if (t.dtype != ti->dtype) {
			skipped++; /* converted on load: the synthetic bytes are the file's */
			continue;
		}
		if (t.nbytes > got_cap) {
			free(got);
			got = malloc(t.nbytes);
			got_cap = got ? t.nbytes : 0;
			if (!got) {
				fprintf(stderr,
				        "hoist: --verify: out of memory for tensor \"%s\"\n",
				        t.name);
				rc = 1;
				break;
			}
		}
		enum hoist_status st = hoist_model_read(m, i, got, t.nbytes);
		if (st != HOIST_OK) {
			rc = cli_fail(st);
			break;
		}
		for (uint64_t off = 0; off < t.nbytes && rc == 0; off += piece) {
			size_t len = (size_t)(t.nbytes - off < piece ? t.nbytes - off : piece);
			hoist_synth_fill(seed, t.name, off, want, len);
			if (memcmp(got + off, want, len) == 0)
				continue;
			size_t b = 0;
			while (got[off + b] == want[b])
				b++;
			fprintf(out,
			        "verify: tensor \"%s\" byte %" PRIu64
			        ": got 0x%02x, expected 0x%02x\n",
			        t.name, off + b, got[off + b], want[b]);
			rc = 1;
		}
		n++;
		bytes += t.nbytes;
	}
	if (rc == 0 && n == 0 && skipped > 0) {
		fprintf(stderr,
		        "hoist: --verify: every tensor was converted by --dtype, and the "
		        "synthetic content is defined before conversion: verify without --dtype\n");
		rc = 1;
	} else if (rc == 0) {
		char b[32];
		hoist_bytes_format(bytes, b, sizeof b);
		fprintf(out, "verified %zu tensors, %s: all bytes match", n, b);
		if (skipped)
			fprintf(out,
			        " (%zu converted tensors not checked: the synthetic content is "
			        "defined before conversion)",
			        skipped);
		fputc('\n', out);
	}
	free(got);
	free(want);
	return rc;
}

/* A load at under half its predicted speed: which link fell short, and where to look. */
static void point_to_doctor(const struct cli_common *c, const struct hoist_model *m,
                            const struct hoist_plan *plan)
{
	struct hoist_shortfall sf;
	if (hoist_model_shortfall(m, plan, &sf) != HOIST_OK || !sf.slow)
		return;
	char name[24], dev[32] = "";
	if (sf.device.kind != HOIST_DEVICE_CPU)
		snprintf(dev, sizeof dev, " to %s",
		         hoist_device_format(sf.device, name, sizeof name));
	fprintf(stderr,
	        "hoist: the stream took %.3f s, over twice the %.3f s predicted from %s: the "
	        "link that fell short is %s%s, at %.2f GB/s against the %.2f GB/s %s; `hoist "
	        "doctor %s` looks for why\n",
	        sf.seconds, sf.predicted_seconds, sf.cold ? "cold storage" : "the page cache",
	        hoist_link_name(sf.link), dev, sf.bytes_per_second / 1e9,
	        sf.predicted_bytes_per_second / 1e9,
	        sf.figure_known ? "expected (measured here by hoist bench)"
	                        : "assumed (one H200 machine's; `hoist bench` measures this one)",
	        c->path);
}

enum { O_VERIFY = CLI_EXTRA, O_SOURCE };

struct load_flags {
	const struct cli_command *cmd;
	bool verify;
	enum hoist_source source;
};

static bool take(int val, const char *arg, void *ctx)
{
	struct load_flags *f = ctx;
	if (val == O_VERIFY) {
		f->verify = true;
	} else if (val == O_SOURCE) {
		if (strcmp(arg, "auto") == 0) {
			f->source = HOIST_SOURCE_AUTO;
		} else if (strcmp(arg, "pread") == 0) {
			f->source = HOIST_SOURCE_PREAD;
		} else if (strcmp(arg, "register") == 0) {
			f->source = HOIST_SOURCE_REGISTER;
		} else {
			cli_usage_error(f->cmd, "--source %s: expected pread, register or auto",
			                arg);
			return false;
		}
	}
	return true;
}

/* What the command leaves to process exit (reachable, so leak checkers see no leak):
 * freeing a loaded model's arenas, the staging ring and the GPU contexts would cost
 * time after the work is done (cuMemFree, cuMemFreeHost, context teardown), and the
 * driver releases them with the process. HOIST_FREE_AT_EXIT=1 frees them. */
static struct {
	struct hoist_model *model;
	struct hoist_warmup *warmup;
	struct hoist_checkpoint *ckpt; /* the model borrows it */
} left;

int cmd_load(const struct cli_command *cmd, int argc, char **argv)
{
	static const struct option options[] = {{"verify", no_argument, NULL, O_VERIFY},
	                                        {"source", required_argument, NULL, O_SOURCE},
	                                        {0}};
	struct cli_common c;
	struct load_flags flags = {cmd, false, HOIST_SOURCE_AUTO};
	const struct cli_extra extra = {options, take, &flags};
	int rc = cli_parse(cmd, argc, argv, &extra, &c);
	if (rc >= 0)
		return rc;
	c.opt.source = flags.source;
	struct ui ui = {.bar = isatty(2) != 0, .verbose = c.verbose};
	c.opt.progress = on_progress;
	c.opt.progress_arg = &ui;
	cli_catch_interrupt();

	struct hoist_checkpoint *ck = NULL;
	struct hoist_plan *plan = NULL;
	struct hoist_model *m = NULL;
	struct hoist_warmup *warm = NULL;
	rc = 0;
	/* GPUs opened and the ring pinned on a thread of their own while the checkpoint
	 * opens and the plan is made; a failure there is met again by the load. */
	if (hoist_warmup_start(&c.opt, &warm) == HOIST_OK)
		c.opt.warmup = warm;
	if (ui.verbose)
		fprintf(stderr, "hoist: open %s...\n", c.path);
	enum hoist_status st = hoist_checkpoint_open(c.path, &c.opt, &ck);
	if (st == HOIST_OK && cli_interrupted())
		st = HOIST_ERR_CANCELLED;
	uint64_t seed;
	if (st == HOIST_OK && flags.verify && !synth_seed(ck, &seed)) {
		/* before a byte moves: a usage error, not a failed check */
		fprintf(stderr,
		        "hoist: load --verify checks the synthetic content of checkpoints written "
		        "by `hoist synth`, and %s has no hoist_synth_seed in its metadata; "
		        "`hoist verify %s` checks every tensor of any checkpoint against its "
		        "files\n",
		        c.path, c.path);
		rc = 2;
		goto out;
	}
	/* Its notice (e.g. "no GPU: everything planned for cpu") reaches the log, so a
	 * quiet run shows it too. */
	if (st == HOIST_OK)
		st = hoist_plan_create(ck, &c.opt, &plan);
	if (st == HOIST_OK)
		st = hoist_model_load(plan, &c.opt, &m);
	if (ui.drawn)
		fputc('\n', stderr);
	if (st != HOIST_OK) {
		if (st == HOIST_ERR_CANCELLED && cli_interrupted())
			fprintf(stderr, "hoist: interrupted: everything loaded so far was freed\n");
		rc = cli_fail(st);
		goto out;
	}
	if (c.json)
		st = hoist_model_report_print_json(m, stdout);
	else
		st = hoist_model_report_print(m, stdout);
	if (st != HOIST_OK) {
		rc = cli_fail(st);
		goto out;
	}
	point_to_doctor(&c, m, plan);
	if (flags.verify) {
		if (ui.verbose)
			fprintf(stderr, "hoist: verify: reading every tensor back...\n");
		rc = verify(ck, m, c.json ? stderr : stdout);
	}
out:
	hoist_plan_free(plan);
	left.model = m;
	left.warmup = warm;
	left.ckpt = ck;
	if (!m) {
		/* nothing loaded: the warm-up's thread is joined and what it made freed */
		hoist_warmup_free(warm);
		left.warmup = NULL;
	}
	if (getenv("HOIST_FREE_AT_EXIT") && strcmp(getenv("HOIST_FREE_AT_EXIT"), "1") == 0) {
		hoist_model_free(m);
		hoist_warmup_free(left.warmup);
		hoist_checkpoint_close(ck);
		memset(&left, 0, sizeof left);
	}
	return rc;
}
