/* cmd_bench.c - `hoist bench`: measure the links a load passes through, keep the
 * figures for plan and load to predict from, and with a checkpoint, predict its load
 * and name the link that bounds it. */
#include "cli.h"
#include "out.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct args {
	bool thorough;
};

enum { O_THOROUGH = CLI_EXTRA };

static bool take(int val, const char *arg, void *ctx)
{
	(void)arg;
	if (val == O_THOROUGH)
		((struct args *)ctx)->thorough = true;
	return true;
}

static void print_figures(const struct hoist_bench *b, FILE *out)
{
	for (size_t i = 0; i < hoist_bench_figure_count(b); i++) {
		const struct hoist_figure *f = hoist_bench_figure(b, i);
		char dev[24], rate[32], bytes[32], name[48];
		snprintf(name, sizeof name, "%s", hoist_link_name(f->link));
		if (f->device.kind != HOIST_DEVICE_CPU) {
			/* "pinned -> device" for cuda:0 reads "pinned -> cuda:0" */
			char *d = strstr(name, "device");
			if (d)
				snprintf(d, sizeof name - (size_t)(d - name), "%s",
				         hoist_device_format(f->device, dev, sizeof dev));
		}
		fprintf(out, "  %-22s %12s   %s in %.3f s, %u thread%s%s%s\n", name,
		        out_rate(f->bytes_per_second, rate, sizeof rate),
		        hoist_bytes_format(f->bytes, bytes, sizeof bytes), f->seconds, f->threads,
		        f->threads == 1 ? "" : "s", f->where[0] ? ": " : "", f->where);
	}
	if (hoist_bench_skipped_count(b)) {
		fprintf(out, "not measured:\n");
		for (size_t i = 0; i < hoist_bench_skipped_count(b); i++)
			fprintf(out, "  %s\n", hoist_bench_skipped(b, i));
	}
}

static void print_prediction(const char *label, const struct hoist_prediction *p, FILE *out)
{
	char dev[24], bytes[32], rate[32];
	fprintf(out, "  %-22s %.3f s", label, p->seconds);
	if (p->bound != HOIST_LINK_NONE)
		fprintf(out, ", bound by %s%s%s (%s at %s)", hoist_link_name(p->bound),
		        p->bound_device.kind == HOIST_DEVICE_CPU ? "" : " on ",
		        p->bound_device.kind == HOIST_DEVICE_CPU
		                ? ""
		                : hoist_device_format(p->bound_device, dev, sizeof dev),
		        hoist_bytes_format(p->bound_bytes, bytes, sizeof bytes),
		        out_rate(p->bound_bytes_per_second, rate, sizeof rate));
	if (p->assumed)
		fprintf(out, "; %u figure%s assumed, not measured here", p->assumed,
		        p->assumed == 1 ? "" : "s");
	fputc('\n', out);
}

static void json_prediction(const struct hoist_prediction *p, FILE *out)
{
	char dev[24];
	fprintf(out, "{\"seconds\":%.6f,\"bound\":", p->seconds);
	out_json_string(out, hoist_link_name(p->bound));
	fputs(",\"device\":", out);
	out_json_string(out, hoist_device_format(p->bound_device, dev, sizeof dev));
	fprintf(out, ",\"bytes\":%llu,\"bytes_per_second\":%.6g,\"assumed_figures\":%u}",
	        (unsigned long long)p->bound_bytes, p->bound_bytes_per_second, p->assumed);
}

static void print_json(const struct hoist_bench *b, const char *file, const char *path,
                       const struct hoist_prediction *warm, const struct hoist_prediction *cold,
                       FILE *out)
{
	char dev[24];
	fputs("{\"figures_file\":", out);
	out_json_string(out, file);
	fputs(",\"figures\":[", out);
	for (size_t i = 0; i < hoist_bench_figure_count(b); i++) {
		const struct hoist_figure *f = hoist_bench_figure(b, i);
		fputs(i ? ",{\"link\":" : "{\"link\":", out);
		out_json_string(out, hoist_link_name(f->link));
		fputs(",\"device\":", out);
		out_json_string(out, hoist_device_format(f->device, dev, sizeof dev));
		fprintf(out,
		        ",\"bytes_per_second\":%.6g,\"bytes\":%llu,\"seconds\":%.6f,"
		        "\"threads\":%u,\"where\":",
		        f->bytes_per_second, (unsigned long long)f->bytes, f->seconds, f->threads);
		out_json_string(out, f->where);
		fprintf(out, ",\"measured_at\":%lld}", (long long)f->measured_at);
	}
	fputs("],\"not_measured\":[", out);
	for (size_t i = 0; i < hoist_bench_skipped_count(b); i++) {
		if (i)
			fputc(',', out);
		out_json_string(out, hoist_bench_skipped(b, i));
	}
	fputc(']', out);
	if (path) {
		fputs(",\"path\":", out);
		out_json_string(out, path);
		fputs(",\"predicted\":{\"page_cache\":", out);
		json_prediction(warm, out);
		fputs(",\"cold_storage\":", out);
		json_prediction(cold, out);
		fputc('}', out);
	}
	fputs("}\n", out);
}

/* Ctrl-C stops the run between measurements (hoist_bench_options.cancel). */
static int interrupted(void *arg)
{
	(void)arg;
	return cli_interrupted();
}

int cmd_bench(const struct cli_command *cmd, int argc, char **argv)
{
	static const struct option options[] = {{"thorough", no_argument, NULL, O_THOROUGH}, {0}};
	struct cli_common c;
	struct args a = {false};
	char file[4096];
	const struct cli_extra extra = {options, take, &a};
	int parsed = cli_parse(cmd, argc, argv, &extra, &c);
	if (parsed >= 0)
		return parsed;
	if (!c.path && c.planning)
		return cli_usage_error(cmd, "the plan and load options need a PATH to plan for");
	struct hoist_bench_options bo = {.thorough = a.thorough, .cancel = interrupted};
	if (c.verbose) {
		bo.log = cli_log;
		bo.log_arg = &c;
	}
	struct hoist_bench *b = NULL;
	struct hoist_checkpoint *ck = NULL;
	struct hoist_plan *plan = NULL;
	struct hoist_prediction warm, cold;
	int rc = 0;
	cli_catch_interrupt();
	enum hoist_status st = hoist_bench_path(file, sizeof file);
	if (st == HOIST_OK)
		st = hoist_bench_run(c.path, &bo, &b);
	if (st == HOIST_ERR_CANCELLED && cli_interrupted())
		fprintf(stderr, "hoist: interrupted: no figures were kept\n");
	if (st == HOIST_OK)
		st = hoist_bench_save(b);
	/* the plan is made after the figures are kept, so it predicts from them */
	if (st == HOIST_OK && c.path) {
		c.quiet_notices = true;
		st = hoist_checkpoint_open(c.path, &c.opt, &ck);
		if (st == HOIST_OK)
			st = hoist_plan_create(ck, &c.opt, &plan);
		if (st == HOIST_OK)
			st = hoist_plan_predict(plan, 0, &warm);
		if (st == HOIST_OK)
			st = hoist_plan_predict(plan, 1, &cold);
	}
	if (st != HOIST_OK) {
		rc = cli_fail(st);
		goto out;
	}
	if (c.json) {
		print_json(b, file, c.path, &warm, &cold, stdout);
	} else {
		printf("hoist bench: this machine's links, kept in %s\n", file);
		print_figures(b, stdout);
		if (c.path) {
			printf("predicted load of %s by its plan (", c.path);
			for (size_t i = 0; i < hoist_plan_device_count(plan); i++) {
				const struct hoist_plan_device *d = hoist_plan_device(plan, i);
				char dev[24], bytes[32];
				printf("%s%s %s", i ? ", " : "",
				       hoist_device_format(d->device, dev, sizeof dev),
				       hoist_bytes_format(d->bytes, bytes, sizeof bytes));
			}
			printf("):\n");
			print_prediction("from the page cache", &warm, stdout);
			print_prediction("from cold storage", &cold, stdout);
			if (hoist_plan_notice(plan))
				printf("  (%s)\n", hoist_plan_notice(plan));
		}
	}
	rc = out_finish(stdout);
out:
	hoist_plan_free(plan);
	hoist_checkpoint_close(ck);
	hoist_bench_free(b);
	return rc;
}
