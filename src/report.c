/* report.c - the load's timing report: what each phase did, its seconds and GB/s,
 * the link that bounded the stream, bytes per device; as text and as JSON. */
#include "backend.h"

#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* Bytes this process (all its threads, exited ones included) has read from storage:
 * getrusage's ru_inblock, in 512-byte units, is the kernel's task I/O accounting
 * (read_bytes in /proc/self/io), which counts block-layer reads and readahead but not
 * page cache hits. Without that accounting (no /proc/self/io) ru_inblock stays 0, so
 * the count is unknown: false. Not file I/O of the checkpoint, so no hoist__ wrapper
 * (an injected fault here would only shift the fault tests' countdowns). */
static bool storage_bytes(uint64_t *out)
{
	struct rusage ru;
	if (access("/proc/self/io", F_OK) != 0 || getrusage(RUSAGE_SELF, &ru) != 0 ||
	    ru.ru_inblock < 0)
		return false;
	*out = (uint64_t)ru.ru_inblock * 512;
	return true;
}

void hoist__report_stream_begin(struct hoist__report *r)
{
	r->storage_known = storage_bytes(&r->storage_mark);
}

void hoist__report_stream_end(struct hoist__report *r)
{
	uint64_t now;
	if (!r->storage_known || !storage_bytes(&now) || now < r->storage_mark) {
		r->storage_known = false;
		return;
	}
	r->storage_read_bytes = now - r->storage_mark;
	/* Half: a load that read most of its bytes from the disk was paced by the disk,
	 * even where some were cached. */
	if (strcmp(r->bound, "storage") == 0 && r->storage_read_bytes < r->read_bytes / 2)
		snprintf(r->bound, sizeof r->bound, "host memory");
}

static double gbps(uint64_t bytes, double s)
{
	return s > 0 ? (double)bytes / s / 1e9 : 0;
}

static double total_seconds(const struct hoist__report *r)
{
	double t = 0;
	for (int i = 0; i < HOIST__PHASE_COUNT; i++)
		t += r->seconds[i];
	return t;
}

enum hoist_status hoist_model_report_print(const struct hoist_model *model, FILE *out)
{
	char b1[32], b2[32], b3[32];
	if (!model || !out)
		return hoist__error(HOIST_ERR_INVALID, "hoist_model_report_print: NULL argument");
	const struct hoist__report *r = hoist__model_report(model);
	const double *s = r->seconds;
	fprintf(out, "[1/5] open      %zu shard%s  %zu tensors  %s  %8.3f s\n", r->shards,
		r->shards == 1 ? "" : "s", r->tensors,
		hoist__format_bytes(r->checkpoint_bytes, b1, sizeof b1), s[HOIST__PHASE_OPEN]);
	fprintf(out, "[2/5] plan      %zu device%s:", r->ndevices, r->ndevices == 1 ? "" : "s");
	for (size_t i = 0; i < r->ndevices; i++)
		fprintf(out, " %s %s%s", r->devices[i].name,
			hoist__format_bytes(r->devices[i].bytes, b1, sizeof b1),
			i + 1 < r->ndevices ? "," : "");
	fprintf(out, "  %8.3f s\n", s[HOIST__PHASE_PLAN]);
	fprintf(out, "[3/5] allocate ");
	for (size_t i = 0; i < r->ndevices; i++)
		fprintf(out, " %s: %s%s", r->devices[i].name, r->devices[i].memory,
			i + 1 < r->ndevices ? ";" : "");
	if (r->slots)
		fprintf(out, "; staging %zu x %s, %s", r->slots,
			hoist__format_bytes(r->staging_bytes / r->slots, b1, sizeof b1), r->staging);
	else
		fprintf(out, "; no staging");
	fprintf(out, "  %8.3f s\n", s[HOIST__PHASE_ALLOCATE]);
	fprintf(out, "[4/5] stream    %s in %zu chunks, %u reader%s%s  %8.3f s  %6.2f GB/s",
		hoist__format_bytes(r->moved_bytes, b1, sizeof b1), r->chunks, r->threads,
		r->threads == 1 ? "" : "s", r->direct_io ? ", O_DIRECT" : "",
		s[HOIST__PHASE_STREAM], gbps(r->moved_bytes, s[HOIST__PHASE_STREAM]));
	if (r->chunks > 0)
		fprintf(out, "  bound by %s (readers in pread %.0f%%, waiting for staging %.0f%%, "
			     "device copying %.0f%%)",
			r->bound, 100 * r->read_busy, 100 * r->staging_wait, 100 * r->copy_busy);
	fputc('\n', out);
	if (r->chunks > 0 && r->storage_known) {
		/* Where the readers' copies went, when they set the pace from the page cache:
		 * a pageable arena is faulted in by those copies; a pinned one was made
		 * present when allocated. */
		bool pageable = false;
		for (size_t i = 0; i < r->ndevices; i++)
			pageable |= strcmp(r->devices[i].memory, "pageable") == 0;
		const char *into = !r->direct_chunks ? "the staging ring"
				   : pageable       ? "fresh host memory, paying its first-touch page "
							"faults"
							: "host memory";
		fprintf(out, "                %s of %s from storage",
			hoist__format_bytes(r->storage_read_bytes, b2, sizeof b2),
			hoist__format_bytes(r->read_bytes, b3, sizeof b3));
		if (strcmp(r->bound, "host memory") == 0)
			fprintf(out, ", the rest from the page cache: the readers copied it into %s",
				into);
		fputc('\n', out);
	}
	if (r->direct_chunks)
		fprintf(out, "                %zu of %zu chunks read straight into host memory "
			     "(no staging)\n",
			r->direct_chunks, r->chunks);
	if (r->mmap)
		fprintf(out, "                host tensors are zero-copy views of the mapped files\n");
	if (r->dtype != HOIST_DTYPE_NONE)
		fprintf(out, "                converted floating tensors to %s: read %s, landed %s\n",
			hoist_dtype_name(r->dtype), hoist__format_bytes(r->read_bytes, b2, sizeof b2),
			hoist__format_bytes(r->moved_bytes, b3, sizeof b3));
	if (r->note[0])
		fprintf(out, "                note: %s\n", r->note);
	fprintf(out, "[5/5] finalize  synchronized %zu device%s  %8.3f s\n", r->ndevices,
		r->ndevices == 1 ? "" : "s", s[HOIST__PHASE_FINALIZE]);
	double t = total_seconds(r);
	fprintf(out, "total %s in %.3f s (%.2f GB/s)\n",
		hoist__format_bytes(r->moved_bytes, b1, sizeof b1), t, gbps(r->moved_bytes, t));
	return ferror(out) ? hoist__error(HOIST_ERR_IO, "writing the report failed") : HOIST_OK;
}

/* Device names and memory descriptions are ours (no quotes or backslashes), so they
 * need no escaping; the note may hold a path, so it is escaped. */
static void json_string(FILE *out, const char *s)
{
	fputc('"', out);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fprintf(out, "\\%c", c);
		else if (c < 0x20)
			fprintf(out, "\\u%04x", c);
		else
			fputc(c, out);
	}
	fputc('"', out);
}

enum hoist_status hoist_model_report_json(const struct hoist_model *model, FILE *out)
{
	if (!model || !out)
		return hoist__error(HOIST_ERR_INVALID, "hoist_model_report_json: NULL argument");
	const struct hoist__report *r = hoist__model_report(model);
	double t = total_seconds(r);
	fprintf(out, "{\"bytes\": %llu, \"seconds\": %.6f, \"GBps\": %.3f, ",
		(unsigned long long)r->moved_bytes, t, gbps(r->moved_bytes, t));
	fprintf(out, "\"shards\": %zu, \"tensors\": %zu, \"checkpoint_bytes\": %llu, ", r->shards,
		r->tensors, (unsigned long long)r->checkpoint_bytes);
	fprintf(out, "\"phases\": {");
	for (int i = 0; i < HOIST__PHASE_COUNT; i++)
		fprintf(out, "%s\"%s\": %.6f", i ? ", " : "", hoist__phase_names[i], r->seconds[i]);
	fprintf(out, "}, \"stream\": {\"seconds\": %.6f, \"GBps\": %.3f, \"bound\": ",
		r->seconds[HOIST__PHASE_STREAM], gbps(r->moved_bytes, r->seconds[HOIST__PHASE_STREAM]));
	json_string(out, r->bound[0] ? r->bound : "none");
	fprintf(out, ", \"read_busy\": %.3f, \"staging_wait\": %.3f, \"copy_busy\": %.3f, ",
		r->read_busy, r->staging_wait, r->copy_busy);
	fprintf(out, "\"chunks\": %zu, \"direct_chunks\": %zu, \"threads\": %u, \"chunk_bytes\": %llu, "
		     "\"staging_bytes\": %llu, \"staging_slots\": %zu, \"staging\": ",
		r->chunks, r->direct_chunks, r->threads, (unsigned long long)r->chunk_bytes,
		(unsigned long long)r->staging_bytes, r->slots);
	json_string(out, r->staging[0] ? r->staging : "none");
	fprintf(out, ", \"o_direct\": %s, \"read_bytes\": %llu, \"storage_read_bytes\": ",
		r->direct_io ? "true" : "false", (unsigned long long)r->read_bytes);
	if (r->storage_known)
		fprintf(out, "%llu}, ", (unsigned long long)r->storage_read_bytes);
	else
		fprintf(out, "null}, ");
	fprintf(out, "\"dtype\": ");
	if (r->dtype != HOIST_DTYPE_NONE)
		json_string(out, hoist_dtype_name(r->dtype));
	else
		fprintf(out, "null");
	fprintf(out, ", \"devices\": {");
	for (size_t i = 0; i < r->ndevices; i++) {
		fprintf(out, "%s", i ? ", " : "");
		json_string(out, r->devices[i].name);
		fprintf(out, ": %llu", (unsigned long long)r->devices[i].bytes);
	}
	fprintf(out, "}, \"memory\": {");
	for (size_t i = 0; i < r->ndevices; i++) {
		fprintf(out, "%s", i ? ", " : "");
		json_string(out, r->devices[i].name);
		fputs(": ", out);
		json_string(out, r->devices[i].memory);
	}
	fprintf(out, "}, \"note\": ");
	if (r->note[0])
		json_string(out, r->note);
	else
		fprintf(out, "null");
	fprintf(out, "}\n");
	return ferror(out) ? hoist__error(HOIST_ERR_IO, "writing the report failed") : HOIST_OK;
}
