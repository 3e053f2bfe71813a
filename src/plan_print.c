/* plan_print.c - a plan as people read it (the compressed map: module prefixes and
 * runs of numbered layers, each with its device) and as one JSON object. */
#include "json.h"
#include "names.h"
#include "plan_state.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *dev_name(const struct hoist__plan_dev *d, char *buf, size_t size)
{
	return hoist_device_format(d->device, buf, size);
}

/* One line of the compressed map: a module prefix (or a run of numbered siblings
 * "stem.lo-hi") and the device all its tensors go to. */
struct line {
	const char *key;
	size_t keylen; /* for a run: the stem's length */
	bool run;
	unsigned long lo, hi;
	int dev; /* -1: the units under key go to several devices (map plans only) */
	uint64_t bytes;
	size_t tensors;
};

/* The device of a unit: with a map, units may be split; -1 then. */
static int unit_dev(const struct hoist_plan *p, const struct hoist__unit *u)
{
	if (u->count == 0)
		return u->dev;
	int d = p->tdev[p->order[u->first]];
	for (size_t k = 1; k < u->count; k++)
		if (p->tdev[p->order[u->first + k]] != d)
			return -1;
	return d;
}

static uint64_t unit_bytes_on(const struct hoist_plan *p, const struct hoist__unit *u, int d)
{
	if (d >= 0 && p->dev[d].device.kind == HOIST_DEVICE_DISK)
		return u->file_bytes;
	return u->bytes;
}

/* The lines: for each unit in order, the shortest module prefix that starts at it and
 * whose units all go to one device; then numbered siblings with one device merge. */
static enum hoist_status make_lines(const struct hoist_plan *p, struct line **out, size_t *count)
{
	int *udev = hoist__calloc(p->nunits ? p->nunits : 1, sizeof *udev);
	struct line *lines = hoist__calloc(p->nunits ? p->nunits : 1, sizeof *lines);
	size_t n = 0;
	if (!udev || !lines) {
		hoist__free(udev);
		hoist__free(lines);
		return hoist__error(HOIST_ERR_NOMEM, "plan: out of memory");
	}
	for (size_t i = 0; i < p->nunits; i++)
		udev[i] = unit_dev(p, &p->units[i]);
	/* The caller's units are named, not prefixes of one another: a line each, in
	 * their order. */
	for (size_t i = 0; p->by_request && i < p->nunits; i++) {
		const struct hoist__unit *u = &p->units[p->seq[i]];
		lines[n++] = (struct line){.key = u->key,
		                           .keylen = u->keylen,
		                           .dev = udev[p->seq[i]],
		                           .bytes = unit_bytes_on(p, u, udev[p->seq[i]]),
		                           .tensors = u->count};
	}
	for (size_t i = 0; !p->by_request && i < p->nunits;) {
		const struct hoist__unit *u = &p->units[i];
		size_t end = i + 1, len = u->keylen;
		/* Candidate prefixes from the shortest: "" (everything), then each
		 * component boundary, then the whole key. */
		for (size_t cut = 0; cut <= u->keylen; cut++) {
			if (cut > 0 && cut < u->keylen && u->key[cut] != '.')
				continue;
			if (i > 0 && hoist__name_has_prefix(p->units[i - 1].key,
			                                    p->units[i - 1].keylen, u->key, cut))
				continue;
			size_t j = i;
			bool same = udev[i] >= 0;
			while (j < p->nunits &&
			       hoist__name_has_prefix(p->units[j].key, p->units[j].keylen, u->key,
			                              cut)) {
				if (udev[j] != udev[i]) {
					same = false;
					break;
				}
				j++;
			}
			if (!same)
				continue;
			end = j;
			len = cut;
			break;
		}
		struct line *l = &lines[n++];
		l->key = u->key;
		l->keylen = len;
		l->dev = udev[i];
		for (size_t k = i; k < end; k++) {
			l->bytes += unit_bytes_on(p, &p->units[k], udev[k]);
			l->tensors += p->units[k].count;
		}
		i = end;
	}
	/* Merge "stem.N" lines with the next numbers and one device into "stem.N-M". */
	size_t w = 0;
	for (size_t r = 0; r < n; r++) {
		struct line *l = &lines[r];
		const char *dot = NULL;
		for (size_t k = l->keylen; k > 0; k--)
			if (l->key[k - 1] == '.') {
				dot = l->key + k - 1;
				break;
			}
		size_t stem = dot ? (size_t)(dot - l->key) : 0;
		bool numbered = dot && hoist__name_digits(dot + 1, l->keylen - stem - 1) &&
		                l->keylen - stem - 1 < 10;
		unsigned long num = numbered ? strtoul(dot + 1, NULL, 10) : 0;
		if (numbered && w > 0) {
			struct line *prev = &lines[w - 1];
			if (prev->run && prev->dev == l->dev && prev->dev >= 0 &&
			    prev->keylen == stem && memcmp(prev->key, l->key, stem) == 0 &&
			    prev->hi + 1 == num) {
				prev->hi = num;
				prev->bytes += l->bytes;
				prev->tensors += l->tensors;
				continue;
			}
		}
		lines[w] = *l;
		if (numbered) {
			lines[w].run = true;
			lines[w].keylen = stem;
			lines[w].lo = lines[w].hi = num;
		}
		w++;
	}
	hoist__free(udev);
	*out = lines;
	*count = w;
	return HOIST_OK;
}

static void line_text(const struct line *l, char *buf, size_t size)
{
	if (l->run && l->lo == l->hi)
		snprintf(buf, size, "%.*s.%lu", (int)l->keylen, l->key, l->lo);
	else if (l->run)
		snprintf(buf, size, "%.*s.%lu-%lu", (int)l->keylen, l->key, l->lo, l->hi);
	else if (l->keylen == 0)
		snprintf(buf, size, "(everything)");
	else
		snprintf(buf, size, "%.*s", (int)l->keylen, l->key);
}

static const char *order_source(const struct hoist_plan *p)
{
	switch (p->order_source) {
	case HOIST__ORDER_REQUEST: return "the caller's";
	case HOIST__ORDER_FILE: return "from the module-order file";
	default: return "from the names";
	}
}

/* The runs of one device along the execution order: "first .. last -> device". */
static void print_order(const struct hoist_plan *p, FILE *out)
{
	char name[32], b1[32];
	fprintf(out, "\norder (%s%s%s): %zu unit%s, %zu device change%s\n", order_source(p),
	        p->order_path ? " " : "", p->order_path ? p->order_path : "", p->nunits,
	        p->nunits == 1 ? "" : "s", p->changes, p->changes == 1 ? "" : "s");
	for (size_t i = 0; i < p->nunits;) {
		size_t j = i;
		uint64_t bytes = 0;
		const struct hoist_plan_unit_info *a = &p->unit_info[i];
		while (j < p->nunits && p->unit_info[j].device.kind == a->device.kind &&
		       p->unit_info[j].device.index == a->device.index)
			bytes += p->unit_info[j++].bytes;
		if (j - i == 1)
			fprintf(out, "  %s", a->name);
		else
			fprintf(out, "  %s .. %s", a->name, p->unit_info[j - 1].name);
		fprintf(out, " -> %s  %s, %zu unit%s\n",
		        hoist_device_format(a->device, name, sizeof name),
		        hoist__plan_bytes(bytes, b1, sizeof b1), j - i, j - i == 1 ? "" : "s");
		i = j;
	}
	size_t tied = 0;
	for (size_t i = 0; i < p->nunits; i++)
		tied += p->unit_info[i].tied != 0;
	if (p->nties)
		fprintf(out, "  tied: %zu group%s (%zu units), each on one device\n", p->nties,
		        p->nties == 1 ? "" : "s", tied);
	if (p->nskipped)
		fprintf(out, "  skipped: %zu tensor%s left unread in the files, as asked\n",
		        p->nskipped, p->nskipped == 1 ? "" : "s");
}

static uint64_t total_file_bytes(const struct hoist_plan *p)
{
	uint64_t total = 0;
	for (size_t i = 0; i < p->nunits; i++)
		total += p->units[i].file_bytes;
	return total;
}

enum hoist_status hoist_plan_print(const struct hoist_plan *plan, FILE *out)
{
	if (!plan || !out)
		return hoist__error(HOIST_ERR_INVALID, "hoist_plan_print: plan or stream is NULL");
	const struct hoist_plan *p = plan;
	struct line *lines = NULL;
	size_t nlines = 0;
	char b1[32], b2[32], name[32], text[256];
	enum hoist_status st = make_lines(p, &lines, &nlines);
	if (st != HOIST_OK)
		return st;

	fprintf(out, "plan: %zu tensors, %s in %zu shard%s; strategy %s%s%s; dtype %s\n",
	        p->ntensors, hoist__plan_bytes(total_file_bytes(p), b1, sizeof b1),
	        hoist_checkpoint_shard_count(p->ckpt),
	        hoist_checkpoint_shard_count(p->ckpt) == 1 ? "" : "s", p->strategy_name,
	        p->map_path ? " " : "", p->map_path ? p->map_path : "",
	        p->dtype ? hoist_dtype_name(p->dtype) : "as stored");
	if (p->notice[0])
		fprintf(out, "notice: %s\n", p->notice);
	fprintf(out, "\n%-8s %12s %12s %8s  %s\n", "device", "planned", "budget", "tensors",
	        "budget from");
	for (size_t d = 0; d < p->ndev; d++)
		fprintf(out, "%-8s %12s %12s %8zu  %s\n", dev_name(&p->dev[d], name, sizeof name),
		        hoist__plan_bytes(p->dev[d].bytes, b1, sizeof b1),
		        hoist__plan_bytes(p->dev[d].budget, b2, sizeof b2), p->dev[d].tensors,
		        p->dev[d].source);

	int width = 8;
	for (size_t i = 0; i < nlines; i++) {
		line_text(&lines[i], text, sizeof text);
		width = HOIST__MAX(width, HOIST__MIN((int)strlen(text), 64));
	}
	fprintf(out, "\nmap (%s):\n",
	        p->strategy == HOIST__STRATEGY_MAP ? "as the map file says"
	        : p->strategy == HOIST__STRATEGY_SINGLE
	                ? "one target device"
	                : "layer groups and modules are never split");
	for (size_t i = 0; i < nlines; i++) {
		line_text(&lines[i], text, sizeof text);
		fprintf(out, "  %-*s -> %-7s %12s  %zu tensor%s\n", width, text,
		        lines[i].dev >= 0 ? dev_name(&p->dev[lines[i].dev], name, sizeof name)
		                          : "(split)",
		        hoist__plan_bytes(lines[i].bytes, b1, sizeof b1), lines[i].tensors,
		        lines[i].tensors == 1 ? "" : "s");
	}
	if (p->map_unused)
		fprintf(out, "  map entries that match no tensor (ignored): %s\n", p->map_unused);

	bool header = false;
	for (size_t d = 0; d < p->ndev; d++) {
		const struct hoist__plan_dev *dv = &p->dev[d];
		if (dv->full_unit == SIZE_MAX)
			continue;
		const struct hoist__unit *u = &p->units[dv->full_unit];
		if (!header)
			fprintf(out, "\nspilled:\n");
		header = true;
		char to[32];
		fprintf(out,
		        "  %s is full (%s planned of %s): %.*s (%s) was the first group that "
		        "did not fit; it went to %s\n",
		        dev_name(dv, name, sizeof name),
		        hoist__plan_bytes(dv->bytes, b1, sizeof b1),
		        hoist__plan_bytes(dv->budget, b2, sizeof b2), (int)u->keylen, u->key,
		        hoist__plan_bytes(u->bytes, text, sizeof text),
		        u->dev >= 0 ? dev_name(&p->dev[u->dev], to, sizeof to) : "nowhere");
	}
	for (size_t d = 0; d < p->ndev; d++) {
		const struct hoist__plan_dev *dv = &p->dev[d];
		if (dv->device.kind == HOIST_DEVICE_DISK && dv->tensors > 0)
			fprintf(out,
			        "  disk: %zu tensor%s (%s) left in the checkpoint's files, "
			        "read when asked for, at no cost at load\n",
			        dv->tensors, dv->tensors == 1 ? "" : "s",
			        hoist__plan_bytes(dv->bytes, b1, sizeof b1));
	}

	print_order(p, out);

	fprintf(out, "\npredicted load: %.2f s from page cache, %.2f s from cold storage\n",
	        p->warm_s, p->cold_s);
	for (int cold = 0; cold < 2; cold++) {
		struct hoist_prediction pr;
		if (hoist_plan_predict(p, cold, &pr) != HOIST_OK || pr.bound == HOIST_LINK_NONE)
			continue;
		fprintf(out, "  %s: bound by %s at %.1f GB/s, %s\n", cold ? "cold" : "warm",
		        hoist_link_name(pr.bound), pr.bound_bytes_per_second / 1e9,
		        pr.assumed ? "assumed (one H200 machine's figures, tests/data/README.md; "
		                     "`hoist bench` measures this one)"
		                   : "measured here by hoist bench");
	}
	hoist__free(lines);
	return hoist__output_end(out, "writing the plan");
}

enum hoist_status hoist_plan_print_json(const struct hoist_plan *plan, FILE *out)
{
	if (!plan || !out)
		return hoist__error(HOIST_ERR_INVALID,
		                    "hoist_plan_print_json: plan or stream is NULL");
	const struct hoist_plan *p = plan;
	struct line *lines = NULL;
	size_t nlines = 0;
	char name[32], text[256];
	enum hoist_status st = make_lines(p, &lines, &nlines);
	if (st != HOIST_OK)
		return st;

	fprintf(out, "{\"tensors\":%zu,\"bytes\":%" PRIu64 ",\"strategy\":", p->ntensors,
	        total_file_bytes(p));
	hoist__json_write_string(out, p->strategy_name);
	fputs(",\"map_file\":", out);
	if (p->map_path)
		hoist__json_write_string(out, p->map_path);
	else
		fputs("null", out);
	fputs(",\"dtype\":", out);
	if (p->dtype)
		hoist__json_write_string(out, hoist_dtype_name(p->dtype));
	else
		fputs("null", out);
	fputs(",\"notice\":", out);
	if (p->notice[0])
		hoist__json_write_string(out, p->notice);
	else
		fputs("null", out);
	fputs(",\"devices\":{", out);
	for (size_t d = 0; d < p->ndev; d++) {
		const struct hoist__plan_dev *dv = &p->dev[d];
		fprintf(out, "%s", d ? "," : "");
		hoist__json_write_string(out, dev_name(dv, name, sizeof name));
		fputs(":{\"budget\":", out);
		if (dv->budget == UINT64_MAX)
			fputs("null", out);
		else
			fprintf(out, "%" PRIu64, dv->budget);
		fprintf(out, ",\"bytes\":%" PRIu64 ",\"tensors\":%zu,\"budget_from\":", dv->bytes,
		        dv->tensors);
		hoist__json_write_string(out, dv->source);
		fputs("}", out);
	}
	fputs("},\"groups\":[", out);
	for (size_t i = 0; i < nlines; i++) {
		/* "" covers everything, as in a map file. */
		if (!lines[i].run && lines[i].keylen == 0)
			text[0] = '\0';
		else
			line_text(&lines[i], text, sizeof text);
		fputs(i ? ",{\"prefix\":" : "{\"prefix\":", out);
		hoist__json_write_string(out, text);
		fputs(",\"device\":", out);
		if (lines[i].dev >= 0)
			hoist__json_write_string(
			        out, dev_name(&p->dev[lines[i].dev], name, sizeof name));
		else
			fputs("null", out);
		fprintf(out, ",\"bytes\":%" PRIu64 ",\"tensors\":%zu}", lines[i].bytes,
		        lines[i].tensors);
	}
	fputs("],\"order\":{\"source\":", out);
	hoist__json_write_string(out, p->order_source == HOIST__ORDER_REQUEST ? "request"
	                              : p->order_source == HOIST__ORDER_FILE  ? "file"
	                                                                      : "names");
	fprintf(out, ",\"device_changes\":%zu,\"tie_groups\":%zu,\"skipped\":%zu,\"units\":[",
	        p->changes, p->nties, p->nskipped);
	for (size_t i = 0; i < p->nunits; i++) {
		const struct hoist_plan_unit_info *u = &p->unit_info[i];
		fputs(i ? ",{\"name\":" : "{\"name\":", out);
		hoist__json_write_string(out, u->name);
		fputs(",\"device\":", out);
		hoist__json_write_string(out, hoist_device_format(u->device, name, sizeof name));
		fprintf(out, ",\"bytes\":%" PRIu64 ",\"tensors\":%zu%s}", u->bytes, u->tensors,
		        u->tied ? ",\"tied\":true" : "");
	}
	fprintf(out, "]},\"predicted_seconds\":{\"warm\":%.3f,\"cold\":%.3f},", p->warm_s,
	        p->cold_s);
	fputs("\"prediction\":{", out);
	for (int cold = 0; cold < 2; cold++) {
		struct hoist_prediction pr;
		if (hoist_plan_predict(p, cold, &pr) != HOIST_OK)
			memset(&pr, 0, sizeof pr);
		fprintf(out, "%s\"%s\":{\"seconds\":%.3f,\"bound\":", cold ? "," : "",
		        cold ? "cold" : "warm", pr.seconds);
		hoist__json_write_string(out, hoist_link_name(pr.bound));
		fprintf(out, ",\"bytes_per_second\":%.0f,\"assumed_figures\":%u}",
		        pr.bound_bytes_per_second, pr.assumed);
	}
	fprintf(out,
	        "},\"assumed_bytes_per_second\":{\"cold_storage\":%.0f,\"page_cache\":%.0f,"
	        "\"copy\":%.0f},\"placement\":{",
	        HOIST__BW_COLD, HOIST__BW_WARM, p->copy_bw);
	for (size_t t = 0; t < p->ntensors; t++) {
		if (t)
			fputc(',', out);
		hoist__json_write_string(out, hoist_checkpoint_tensor(p->ckpt, t)->name);
		fputc(':', out);
		hoist__json_write_string(out, dev_name(&p->dev[p->tdev[t]], name, sizeof name));
	}
	fputs("}}\n", out);
	hoist__free(lines);
	return hoist__output_end(out, "writing the plan");
}
