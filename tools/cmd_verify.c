/* cmd_verify.c - `hoist verify`: load as `hoist load` does, then check every tensor
 * where it landed against the files (hoist_model_verify); optionally print each
 * tensor's SHA-256 as sha256sum does, or compare them with such a list. */
#include "cli.h"
#include "out.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct args {
	bool sha256;
	const char *manifest;
};

enum { O_SHA256 = CLI_EXTRA, O_MANIFEST };

static bool take(int val, const char *arg, void *ctx)
{
	struct args *a = ctx;
	if (val == O_SHA256)
		a->sha256 = true;
	else if (val == O_MANIFEST)
		a->manifest = arg;
	return true;
}

/* A progress line on a terminal, for the load and for the check. */
struct ui {
	bool bar;
	bool drawn;
};

static void draw(struct ui *ui, const char *what, uint64_t done, uint64_t total)
{
	char a[32], b[32];
	if (!ui->bar)
		return;
	int pct = total ? (int)(100.0 * (double)done / (double)total) : 100;
	fprintf(stderr, "\r%-8s %3d%%  %s / %s ", what, pct, hoist_bytes_format(done, a, sizeof a),
	        hoist_bytes_format(total, b, sizeof b));
	ui->drawn = true;
}

static int on_load(const struct hoist_progress *pr, void *arg)
{
	if (pr->phase == HOIST_PHASE_STREAM)
		draw(arg, "load", pr->bytes_done, pr->bytes_total);
	return cli_interrupted() ? 1 : 0;
}

static int on_verify(uint64_t done, uint64_t total, void *arg)
{
	draw(arg, "verify", done, total);
	return cli_interrupted() ? 1 : 0;
}

static void hex(const uint8_t d[32], char out[65])
{
	for (int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static int by_name(const void *a, const void *b, void *arg)
{
	const struct hoist_verify *v = arg;
	return strcmp(hoist_verify_tensor(v, *(const size_t *)a)->name,
	              hoist_verify_tensor(v, *(const size_t *)b)->name);
}

/* ---- manifests: `<sha256>  <name>` lines, as sha256sum writes them ------------------- */

struct entry {
	char sha[65];
	char *name;
	bool seen;
};

struct manifest {
	struct entry *e;
	size_t n, cap;
};

static void manifest_free(struct manifest *m)
{
	for (size_t i = 0; i < m->n; i++)
		free(m->e[i].name);
	free(m->e);
}

static int by_entry_name(const void *a, const void *b)
{
	return strcmp(((const struct entry *)a)->name, ((const struct entry *)b)->name);
}

/* Reads FILE; prints the error and returns false on a bad line or a read error. */
static bool manifest_read(const char *path, struct manifest *m)
{
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	unsigned long lineno = 0;
	bool ok = true;
	memset(m, 0, sizeof *m);
	if (!f) {
		fprintf(stderr, "hoist: --manifest %s: %s\n", path, strerror(errno));
		return false;
	}
	while (ok && (len = getline(&line, &cap, f)) >= 0) {
		lineno++;
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = '\0';
		if (len == 0 || line[0] == '#')
			continue;
		int k = 0;
		while (k < 64 && isxdigit((unsigned char)line[k]))
			k++;
		/* "<64 hex> <space><space or *><name>" */
		if (k != 64 || line[64] != ' ' || (line[65] != ' ' && line[65] != '*') ||
		    !line[66]) {
			fprintf(stderr,
			        "hoist: --manifest %s: line %lu: expected \"<sha256>  <name>\"\n",
			        path, lineno);
			ok = false;
			break;
		}
		if (m->n == m->cap) {
			size_t nc = m->cap ? 2 * m->cap : 256;
			struct entry *ne = realloc(m->e, nc * sizeof *ne);
			if (!ne) {
				fprintf(stderr, "hoist: --manifest %s: out of memory\n", path);
				ok = false;
				break;
			}
			m->e = ne;
			m->cap = nc;
		}
		struct entry *e = &m->e[m->n];
		for (int i = 0; i < 64; i++)
			e->sha[i] = (char)tolower((unsigned char)line[i]);
		e->sha[64] = '\0';
		e->seen = false;
		if (!(e->name = strdup(line + 66))) {
			fprintf(stderr, "hoist: --manifest %s: out of memory\n", path);
			ok = false;
			break;
		}
		m->n++;
	}
	if (ok && ferror(f)) {
		fprintf(stderr, "hoist: --manifest %s: %s\n", path, strerror(errno));
		ok = false;
	}
	free(line);
	fclose(f);
	if (ok)
		qsort(m->e, m->n, sizeof *m->e, by_entry_name);
	return ok;
}

static struct entry *manifest_find(struct manifest *m, const char *name)
{
	struct entry key = {.name = (char *)name};
	return m->n ? bsearch(&key, m->e, m->n, sizeof *m->e, by_entry_name) : NULL;
}

/* Compares; prints one line per disagreement (to out, or as JSON fields). Returns
 * the number of disagreements. */
static size_t manifest_compare(struct manifest *m, const struct hoist_verify *v,
                               const size_t *sorted, bool json, FILE *out)
{
	size_t bad = 0;
	char h[65];
	if (json)
		fputs("\"differ\":[", out);
	for (size_t k = 0; k < hoist_verify_tensor_count(v); k++) {
		const struct hoist_verify_tensor *t = hoist_verify_tensor(v, sorted[k]);
		struct entry *e = manifest_find(m, t->name);
		hex(t->sha256, h);
		if (e)
			e->seen = true;
		if (e && strcmp(e->sha, h) == 0)
			continue;
		if (json) {
			fputs(bad ? ",{\"name\":" : "{\"name\":", out);
			out_json_string(out, t->name);
			fprintf(out, ",\"sha256\":\"%s\",\"manifest\":", h);
			if (e)
				out_json_string(out, e->sha);
			else
				fputs("null", out);
			fputc('}', out);
		} else if (e) {
			fprintf(out, "manifest: tensor \"%s\": sha256 %s, the manifest says %s\n",
			        t->name, h, e->sha);
		} else {
			fprintf(out, "manifest: tensor \"%s\" (sha256 %s) is not in the manifest\n",
			        t->name, h);
		}
		bad++;
	}
	if (json)
		fputs("],\"missing\":[", out);
	size_t missing = 0;
	for (size_t i = 0; i < m->n; i++) {
		if (m->e[i].seen)
			continue;
		if (json) {
			if (missing)
				fputc(',', out);
			out_json_string(out, m->e[i].name);
		} else {
			fprintf(out, "manifest: \"%s\" is in the manifest, not in the checkpoint\n",
			        m->e[i].name);
		}
		missing++;
	}
	if (json)
		fputc(']', out);
	return bad + missing;
}

/* ---- output -------------------------------------------------------------------------- */

static void print_differences(const struct hoist_verify *v, FILE *out)
{
	char dev[24];
	for (size_t i = 0; i < hoist_verify_tensor_count(v); i++) {
		const struct hoist_verify_tensor *t = hoist_verify_tensor(v, i);
		if (t->result != HOIST_VERIFY_DIFFER)
			continue;
		fprintf(out,
		        "verify: tensor \"%s\" on %s differs from its file at byte %" PRIu64
		        ": landed 0x%02x, file 0x%02x (xxh3 landed %016" PRIx64 ", file %016" PRIx64
		        ")\n",
		        t->name, hoist_device_format(t->device, dev, sizeof dev), t->first_diff,
		        t->landed_byte, t->file_byte, t->xxh3_landed, t->xxh3_file);
	}
}

static void print_summary(const struct hoist_verify *v, double load_s, FILE *out)
{
	const struct hoist_verify_summary *s = hoist_verify_summary(v);
	char b1[32], b2[32], b3[32];
	fprintf(out,
	        "verified %zu tensors, %s where they landed (%s hashed in place, %s read back)",
	        s->tensors, hoist_bytes_format(s->landed_bytes, b1, sizeof b1),
	        hoist_bytes_format(s->in_place_bytes, b2, sizeof b2),
	        hoist_bytes_format(s->read_back_bytes, b3, sizeof b3));
	if (s->in_file)
		fprintf(out, ", %zu left in their files", s->in_file);
	if (s->differ)
		fprintf(out, ": %zu differ%s", s->differ, s->differ == 1 ? "s" : "");
	else
		fprintf(out, ": all bytes match");
	fprintf(out, " (load %.3f s, check %.3f s on %u threads)\n", load_s, s->seconds,
	        s->threads);
}

static void print_json(const struct hoist_verify *v, const size_t *sorted, double load_s, bool sha,
                       struct manifest *m, const char *mpath, size_t *mbad, FILE *out)
{
	const struct hoist_verify_summary *s = hoist_verify_summary(v);
	char dev[24], h[65];
	fprintf(out,
	        "{\"tensors\":%zu,\"matched\":%zu,\"differ\":%zu,\"in_file\":%zu,"
	        "\"landed_bytes\":%" PRIu64 ",\"in_place_bytes\":%" PRIu64
	        ",\"read_back_bytes\":%" PRIu64 ",\"file_bytes\":%" PRIu64
	        ",\"load_seconds\":%.6f,\"verify_seconds\":%.6f,\"threads\":%u,\"differences\":[",
	        s->tensors, s->matched, s->differ, s->in_file, s->landed_bytes, s->in_place_bytes,
	        s->read_back_bytes, s->file_bytes, load_s, s->seconds, s->threads);
	size_t k = 0;
	for (size_t i = 0; i < hoist_verify_tensor_count(v); i++) {
		const struct hoist_verify_tensor *t = hoist_verify_tensor(v, i);
		if (t->result != HOIST_VERIFY_DIFFER)
			continue;
		fputs(k++ ? ",{\"name\":" : "{\"name\":", out);
		out_json_string(out, t->name);
		fputs(",\"device\":", out);
		out_json_string(out, hoist_device_format(t->device, dev, sizeof dev));
		fprintf(out,
		        ",\"offset\":%" PRIu64
		        ",\"landed\":%u,\"file\":%u,\"xxh3_landed\":\"%016" PRIx64
		        "\",\"xxh3_file\":\"%016" PRIx64 "\"}",
		        t->first_diff, t->landed_byte, t->file_byte, t->xxh3_landed, t->xxh3_file);
	}
	fputc(']', out);
	if (sha) {
		fputs(",\"sha256\":{", out);
		for (size_t i = 0; i < hoist_verify_tensor_count(v); i++) {
			const struct hoist_verify_tensor *t = hoist_verify_tensor(v, sorted[i]);
			if (i)
				fputc(',', out);
			out_json_string(out, t->name);
			hex(t->sha256, h);
			fprintf(out, ":\"%s\"", h);
		}
		fputc('}', out);
	}
	if (m) {
		fputs(",\"manifest\":{\"file\":", out);
		out_json_string(out, mpath);
		fputc(',', out);
		*mbad = manifest_compare(m, v, sorted, true, out);
		fputc('}', out);
	}
	fputs("}\n", out);
}

int cmd_verify(const struct cli_command *cmd, int argc, char **argv)
{
	static const struct option options[] = {
	        {"sha256", no_argument, NULL, O_SHA256},
	        {"manifest", required_argument, NULL, O_MANIFEST},
	        {0},
	};
	struct cli_common c;
	struct args a = {false, NULL};
	const struct cli_extra extra = {options, take, &a};
	int parsed = cli_parse(cmd, argc, argv, &extra, &c);
	if (parsed >= 0)
		return parsed;
	struct manifest man;
	memset(&man, 0, sizeof man);
	if (a.manifest && !manifest_read(a.manifest, &man))
		return 1;
	struct ui ui = {isatty(2) != 0, false};
	c.opt.progress = on_load;
	c.opt.progress_arg = &ui;
	cli_catch_interrupt();

	struct hoist_checkpoint *ck = NULL;
	struct hoist_plan *plan = NULL;
	struct hoist_model *m = NULL;
	struct hoist_verify *v = NULL;
	size_t *sorted = NULL;
	int rc = 0;
	enum hoist_status st = hoist_checkpoint_open(c.path, &c.opt, &ck);
	if (st == HOIST_OK)
		st = hoist_plan_create(ck, &c.opt, &plan);
	if (st == HOIST_OK)
		st = hoist_model_load(plan, &c.opt, &m);
	if (st == HOIST_OK) {
		struct hoist_verify_options vo = {
		        .flags = a.sha256 || a.manifest ? HOIST_VERIFY_SHA256 : 0,
		        .threads = c.opt.threads,
		        .progress = on_verify,
		        .progress_arg = &ui,
		};
		st = hoist_model_verify(m, &vo, &v);
	}
	if (ui.drawn)
		fputc('\n', stderr);
	if (st != HOIST_OK) {
		if (st == HOIST_ERR_CANCELLED && cli_interrupted())
			fprintf(stderr, "hoist: interrupted: everything loaded so far was freed\n");
		rc = cli_fail(st);
		goto out;
	}
	size_t n = hoist_verify_tensor_count(v);
	if (!(sorted = malloc((n ? n : 1) * sizeof *sorted))) {
		fprintf(stderr, "hoist: out of memory\n");
		rc = 1;
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		sorted[i] = i;
	qsort_r(sorted, n, sizeof *sorted, by_name, v);
	const struct hoist_report *r = hoist_model_report(m);
	double load_s = r->total_seconds;
	size_t mbad = 0;
	if (c.json) {
		print_json(v, sorted, load_s, a.sha256, a.manifest ? &man : NULL, a.manifest, &mbad,
		           stdout);
	} else {
		/* --sha256 makes stdout the list; everything else goes to stderr then */
		FILE *info = a.sha256 ? stderr : stdout;
		char h[65];
		for (size_t i = 0; a.sha256 && i < n; i++) {
			const struct hoist_verify_tensor *t = hoist_verify_tensor(v, sorted[i]);
			hex(t->sha256, h);
			printf("%s  %s\n", h, t->name);
		}
		print_differences(v, info);
		if (a.manifest) {
			mbad = manifest_compare(&man, v, sorted, false, info);
			if (mbad)
				fprintf(info, "manifest %s: %zu disagreement%s\n", a.manifest, mbad,
				        mbad == 1 ? "" : "s");
			else
				fprintf(info, "manifest %s: every tensor's sha256 matches\n",
				        a.manifest);
		}
		print_summary(v, load_s, info);
	}
	rc = hoist_verify_summary(v)->differ || mbad ? 1 : 0;
	if (out_finish(stdout))
		rc = 1;
out:
	free(sorted);
	manifest_free(&man);
	hoist_verify_free(v);
	hoist_model_free(m);
	hoist_plan_free(plan);
	hoist_checkpoint_close(ck);
	return rc;
}
