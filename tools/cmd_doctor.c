/* cmd_doctor.c - `hoist doctor`: what would make loading this checkpoint slow or fail,
 * each finding with its evidence and a remedy (hoist_doctor_run). */
#include "cli.h"
#include "out.h"

#include <stdio.h>
#include <string.h>

static void print_text(const char *path, const struct hoist_doctor *d, FILE *out)
{
	size_t counts[5] = {0};
	fprintf(out, "hoist doctor: %s\n", path);
	for (size_t i = 0; i < hoist_doctor_finding_count(d); i++) {
		const struct hoist_finding *f = hoist_doctor_finding(d, i);
		counts[f->verdict]++;
		fprintf(out, "\n%-10s %s: %s\n", hoist_verdict_name(f->verdict),
		        hoist_check_name(f->check), f->summary);
		if (f->evidence[0])
			fprintf(out, "           evidence: %s\n", f->evidence);
		if (f->remedy[0])
			fprintf(out, "           remedy:   %s\n", f->remedy);
	}
	fprintf(out,
	        "\n%zu check%s: %zu would make the load fail, %zu slow; %zu note%s, %zu ok, "
	        "%zu not measured\n",
	        hoist_doctor_finding_count(d), hoist_doctor_finding_count(d) == 1 ? "" : "s",
	        counts[HOIST_VERDICT_FAIL], counts[HOIST_VERDICT_SLOW], counts[HOIST_VERDICT_NOTE],
	        counts[HOIST_VERDICT_NOTE] == 1 ? "" : "s", counts[HOIST_VERDICT_OK],
	        counts[HOIST_VERDICT_UNMEASURED]);
}

static void print_json(const char *path, const struct hoist_doctor *d, FILE *out)
{
	fputs("{\"path\":", out);
	out_json_string(out, path);
	fputs(",\"findings\":[", out);
	for (size_t i = 0; i < hoist_doctor_finding_count(d); i++) {
		const struct hoist_finding *f = hoist_doctor_finding(d, i);
		fputs(i ? ",{\"check\":" : "{\"check\":", out);
		out_json_string(out, hoist_check_name(f->check));
		fputs(",\"verdict\":", out);
		out_json_string(out, hoist_verdict_name(f->verdict));
		fputs(",\"summary\":", out);
		out_json_string(out, f->summary);
		fputs(",\"evidence\":", out);
		out_json_string(out, f->evidence);
		fputs(",\"remedy\":", out);
		out_json_string(out, f->remedy);
		fputc('}', out);
	}
	fputs("]}\n", out);
}

int cmd_doctor(const struct cli_command *cmd, int argc, char **argv)
{
	struct cli_common c;
	int parsed = cli_parse(cmd, argc, argv, NULL, &c);
	if (parsed >= 0)
		return parsed;
	struct hoist_doctor *d = NULL;
	enum hoist_status st = hoist_doctor_run(c.path, &c.opt, &d);
	if (st != HOIST_OK)
		return cli_fail(st);
	if (c.json)
		print_json(c.path, d, stdout);
	else
		print_text(c.path, d, stdout);
	int rc = 0;
	for (size_t i = 0; i < hoist_doctor_finding_count(d); i++) {
		enum hoist_verdict v = hoist_doctor_finding(d, i)->verdict;
		if (v == HOIST_VERDICT_SLOW || v == HOIST_VERDICT_FAIL)
			rc = 1;
	}
	hoist_doctor_free(d);
	return out_finish(stdout) ? 1 : rc;
}
