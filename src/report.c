/* report.c - the load's timing report: what each phase did, its seconds and GB/s,
 * the link that bounded the stream, bytes per device; as text and as JSON. */
#include "report.h"
#include "json.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

static const char *const phase_names[HOIST_PHASE_COUNT] = {"open", "plan", "allocate", "stream",
                                                           "finalize"};

const char *hoist_phase_name(enum hoist_phase phase)
{
	return (unsigned)phase < HOIST_PHASE_COUNT ? phase_names[phase] : NULL;
}

const char *hoist_bound_name(enum hoist_bound bound)
{
	static const char *const names[] = {
	        [HOIST_BOUND_NONE] = "none",
	        [HOIST_BOUND_STORAGE] = "storage",
	        [HOIST_BOUND_HOST_MEMORY] = "host memory",
	        [HOIST_BOUND_STAGING] = "staging",
	        [HOIST_BOUND_DEVICE_COPY] = "device copy",
	};
	return (unsigned)bound < HOIST__ARRAY_SIZE(names) ? names[bound] : NULL;
}

void hoist__report_init(struct hoist__report *r)
{
	memset(r, 0, sizeof *r);
	snprintf(r->staging, sizeof r->staging, "none");
	r->pub.staging = r->staging;
	r->pub.note = r->note;
	r->pub.storage_read_bytes = UINT64_MAX;
}

void hoist__report_add_device(struct hoist__report *r, struct hoist_device device, uint64_t bytes,
                              const char *memory)
{
	if (r->ndevices == HOIST__ARRAY_SIZE(r->devices))
		return;
	size_t i = r->ndevices++;
	hoist_device_format(device, r->device_names[i], sizeof r->device_names[i]);
	snprintf(r->device_memory[i], sizeof r->device_memory[i], "%s", memory);
	r->devices[i] = (struct hoist_model_device){device, bytes, r->device_memory[i]};
}

void hoist__report_note(struct hoist__report *r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->note, sizeof r->note, fmt, ap);
	va_end(ap);
}

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

/* The stream's bounding link, from where the workers' time went. */
static enum hoist_bound judge(struct hoist_report *p, const struct hoist__stream_stats *s)
{
	if (s->wall <= 0 || s->chunks == 0)
		return HOIST_BOUND_NONE;
	unsigned nr = s->readers ? s->readers : 1;
	p->read_busy = HOIST__MIN(1.0, s->read_s / nr / s->wall);
	p->staging_wait = HOIST__MIN(1.0, s->wait_s / nr / s->wall);
	p->copy_busy = HOIST__MIN(1.0, s->copy_s / s->wall);
	/* A device with copies in flight nearly all the time, at least as busy as the
	 * readers: the device copy is the slow link (readers then wait for buffers or
	 * run out of work early). Readers waiting for buffers while no device was that
	 * busy: the ring is too small to cover the hand-off. Otherwise the readers, i.e.
	 * storage (or the page cache), set the pace. */
	if (s->engines && p->copy_busy >= 0.8 && p->copy_busy >= p->read_busy)
		return HOIST_BOUND_DEVICE_COPY;
	if (p->staging_wait > 0.25)
		return HOIST_BOUND_STAGING;
	return HOIST_BOUND_STORAGE;
}

void hoist__report_stream_end(struct hoist__report *r, const struct hoist__stream_stats *s)
{
	struct hoist_report *p = &r->pub;
	p->moved_bytes = s->moved_bytes;
	p->read_bytes = s->read_bytes;
	p->readers = s->readers;
	p->chunks = s->chunks;
	p->direct_chunks = s->direct_chunks;
	p->registered_bytes = s->registered_bytes;
	p->registered_chunks = s->registered_chunks;
	p->pread_bytes = s->read_bytes - s->registered_bytes;
	p->chunk_bytes = s->chunk_bytes;
	p->staging_slots = s->slots;
	p->staging_slot_bytes = s->slot_bytes;
	p->direct_io = s->direct_io;
	snprintf(r->staging, sizeof r->staging, "%s", s->staging);
	p->bound = judge(p, s);
	uint64_t now;
	if (!r->storage_known || !storage_bytes(&now) || now < r->storage_mark) {
		r->storage_known = false;
		p->storage_read_bytes = UINT64_MAX;
		return;
	}
	p->storage_read_bytes = now - r->storage_mark;
	/* Half: a load that read most of its bytes from the disk was paced by the disk,
	 * even where some were cached. */
	if (p->bound == HOIST_BOUND_STORAGE && p->storage_read_bytes < p->read_bytes / 2)
		p->bound = HOIST_BOUND_HOST_MEMORY;
}

static double gbps(uint64_t bytes, double s)
{
	return s > 0 ? (double)bytes / s / 1e9 : 0;
}

static double total_seconds(const struct hoist_report *p)
{
	double t = 0;
	for (int i = 0; i < HOIST_PHASE_COUNT; i++)
		t += p->seconds[i];
	return t;
}

enum hoist_status hoist__report_print(const struct hoist__report *r, FILE *out)
{
	char b1[32], b2[32], b3[32];
	const struct hoist_report *p = &r->pub;
	const double *s = p->seconds;
	fprintf(out, "[1/5] open      %zu shard%s  %zu tensors  %s  %8.3f s\n", p->shards,
	        p->shards == 1 ? "" : "s", p->tensors,
	        hoist_bytes_format(p->checkpoint_bytes, b1, sizeof b1), s[HOIST_PHASE_OPEN]);
	fprintf(out, "[2/5] plan      %zu device%s:", r->ndevices, r->ndevices == 1 ? "" : "s");
	for (size_t i = 0; i < r->ndevices; i++)
		fprintf(out, " %s %s%s", r->device_names[i],
		        hoist_bytes_format(r->devices[i].bytes, b1, sizeof b1),
		        i + 1 < r->ndevices ? "," : "");
	fprintf(out, "  %8.3f s\n", s[HOIST_PHASE_PLAN]);
	fprintf(out, "[3/5] allocate ");
	for (size_t i = 0; i < r->ndevices; i++)
		fprintf(out, " %s: %s%s", r->device_names[i], r->device_memory[i],
		        i + 1 < r->ndevices ? ";" : "");
	if (p->staging_slots)
		fprintf(out, "; staging %zu x %s, %s", p->staging_slots,
		        hoist_bytes_format(p->staging_slot_bytes, b1, sizeof b1), p->staging);
	else
		fprintf(out, "; no staging");
	fprintf(out, "  %8.3f s\n", s[HOIST_PHASE_ALLOCATE]);
	fprintf(out, "[4/5] stream    %s in %zu chunks, %u reader%s%s  %8.3f s  %6.2f GB/s",
	        hoist_bytes_format(p->moved_bytes, b1, sizeof b1), p->chunks, p->readers,
	        p->readers == 1 ? "" : "s", p->direct_io ? ", O_DIRECT" : "", s[HOIST_PHASE_STREAM],
	        gbps(p->moved_bytes, s[HOIST_PHASE_STREAM]));
	if (p->chunks > 0)
		fprintf(out,
		        "  bound by %s (readers in pread %.0f%%, waiting for staging %.0f%%, "
		        "device copying %.0f%%)",
		        hoist_bound_name(p->bound), 100 * p->read_busy, 100 * p->staging_wait,
		        100 * p->copy_busy);
	fputc('\n', out);
	if (p->chunks > 0 && r->storage_known) {
		/* Where the readers' copies went, when they set the pace from the page cache:
		 * a pageable arena is faulted in by those copies; a pinned one was made
		 * present when allocated. */
		bool pageable = false;
		for (size_t i = 0; i < r->ndevices; i++)
			pageable |= strcmp(r->device_memory[i], "pageable") == 0;
		const char *into = !p->direct_chunks ? "the staging ring"
		                   : pageable ? "fresh host memory, paying its first-touch page "
		                                "faults"
		                              : "host memory";
		fprintf(out, "                %s of %s from storage",
		        hoist_bytes_format(p->storage_read_bytes, b2, sizeof b2),
		        hoist_bytes_format(p->read_bytes, b3, sizeof b3));
		if (p->bound == HOIST_BOUND_HOST_MEMORY)
			fprintf(out,
			        ", the rest from the page cache: the readers copied it into %s",
			        into);
		fputc('\n', out);
	}
	if (p->direct_chunks)
		fprintf(out,
		        "                %zu of %zu chunks read straight into host memory "
		        "(no staging)\n",
		        p->direct_chunks, p->chunks);
	if (p->registered_chunks)
		fprintf(out,
		        "                sources: %s by pread, %s copied straight from the page "
		        "cache (%zu windows registered)\n",
		        hoist_bytes_format(p->pread_bytes, b2, sizeof b2),
		        hoist_bytes_format(p->registered_bytes, b3, sizeof b3),
		        p->registered_chunks);
	if (p->mapped)
		fprintf(out,
		        "                host tensors are zero-copy views of the mapped files\n");
	if (p->dtype != HOIST_DTYPE_NONE)
		fprintf(out,
		        "                converted floating tensors to %s: read %s, landed %s\n",
		        hoist_dtype_name(p->dtype),
		        hoist_bytes_format(p->read_bytes, b2, sizeof b2),
		        hoist_bytes_format(p->moved_bytes, b3, sizeof b3));
	if (r->note[0])
		fprintf(out, "                note: %s\n", r->note);
	fprintf(out, "[5/5] finalize  synchronized %zu device%s  %8.3f s\n", r->ndevices,
	        r->ndevices == 1 ? "" : "s", s[HOIST_PHASE_FINALIZE]);
	double t = total_seconds(p);
	fprintf(out, "total %s in %.3f s (%.2f GB/s)\n",
	        hoist_bytes_format(p->moved_bytes, b1, sizeof b1), t, gbps(p->moved_bytes, t));
	return hoist__output_end(out, "writing the report");
}

enum hoist_status hoist__report_print_json(const struct hoist__report *r, FILE *out)
{
	const struct hoist_report *p = &r->pub;
	double t = total_seconds(p);
	fprintf(out, "{\"bytes\": %llu, \"seconds\": %.6f, \"GBps\": %.3f, ",
	        (unsigned long long)p->moved_bytes, t, gbps(p->moved_bytes, t));
	fprintf(out, "\"shards\": %zu, \"tensors\": %zu, \"checkpoint_bytes\": %llu, ", p->shards,
	        p->tensors, (unsigned long long)p->checkpoint_bytes);
	fprintf(out, "\"phases\": {");
	for (int i = 0; i < HOIST_PHASE_COUNT; i++)
		fprintf(out, "%s\"%s\": %.6f", i ? ", " : "", phase_names[i], p->seconds[i]);
	fprintf(out, "}, \"stream\": {\"seconds\": %.6f, \"GBps\": %.3f, \"bound\": ",
	        p->seconds[HOIST_PHASE_STREAM],
	        gbps(p->moved_bytes, p->seconds[HOIST_PHASE_STREAM]));
	hoist__json_write_string(out, hoist_bound_name(p->bound));
	fprintf(out, ", \"read_busy\": %.3f, \"staging_wait\": %.3f, \"copy_busy\": %.3f, ",
	        p->read_busy, p->staging_wait, p->copy_busy);
	fprintf(out,
	        "\"chunks\": %zu, \"direct_chunks\": %zu, \"threads\": %u, \"chunk_bytes\": %llu, "
	        "\"staging_bytes\": %llu, \"staging_slots\": %zu, \"staging\": ",
	        p->chunks, p->direct_chunks, p->readers, (unsigned long long)p->chunk_bytes,
	        (unsigned long long)(p->staging_slots * p->staging_slot_bytes), p->staging_slots);
	hoist__json_write_string(out, p->staging);
	fprintf(out,
	        ", \"o_direct\": %s, \"read_bytes\": %llu, \"pread_bytes\": %llu, "
	        "\"registered_bytes\": %llu, \"registered_chunks\": %zu, \"storage_read_bytes\": ",
	        p->direct_io ? "true" : "false", (unsigned long long)p->read_bytes,
	        (unsigned long long)p->pread_bytes, (unsigned long long)p->registered_bytes,
	        p->registered_chunks);
	if (r->storage_known)
		fprintf(out, "%llu}, ", (unsigned long long)p->storage_read_bytes);
	else
		fprintf(out, "null}, ");
	fprintf(out, "\"dtype\": ");
	if (p->dtype != HOIST_DTYPE_NONE)
		hoist__json_write_string(out, hoist_dtype_name(p->dtype));
	else
		fprintf(out, "null");
	fprintf(out, ", \"devices\": {");
	for (size_t i = 0; i < r->ndevices; i++) {
		fprintf(out, "%s", i ? ", " : "");
		hoist__json_write_string(out, r->device_names[i]);
		fprintf(out, ": %llu", (unsigned long long)r->devices[i].bytes);
	}
	fprintf(out, "}, \"memory\": {");
	for (size_t i = 0; i < r->ndevices; i++) {
		fprintf(out, "%s", i ? ", " : "");
		hoist__json_write_string(out, r->device_names[i]);
		fputs(": ", out);
		hoist__json_write_string(out, r->device_memory[i]);
	}
	fprintf(out, "}, \"note\": ");
	if (r->note[0])
		hoist__json_write_string(out, r->note);
	else
		fprintf(out, "null");
	fprintf(out, "}\n");
	return hoist__output_end(out, "writing the report");
}
