/*
 * report.h - the timing report of a load (report.c): what each phase did and took, the
 * link that set the stream's pace and why, bytes per device; judged from the stream's
 * figures, printed as text and JSON. The model fills one; hoist_model_report returns
 * its public part.
 */
#ifndef HOIST_REPORT_H
#define HOIST_REPORT_H

#include "stream.h"

struct hoist__report {
	struct hoist_report pub; /* what hoist_model_report returns; its strings point below */
	size_t ndevices;
	struct hoist_model_device devices[HOIST_MAX_DEVICES + 2];
	char device_names[HOIST_MAX_DEVICES + 2][24];
	char device_memory[HOIST_MAX_DEVICES + 2][64];
	char staging[64];
	char note[160];
	bool storage_known;    /* the kernel counts this process's storage reads */
	uint64_t storage_mark; /* its count when the stream began */
};

/* An empty report: no phase timed, no device, no bound. */
void hoist__report_init(struct hoist__report *r);

/* Adds a device the load put tensors on (at most HOIST_MAX_DEVICES + 2). */
void hoist__report_add_device(struct hoist__report *r, struct hoist_device device, uint64_t bytes,
                              const char *memory);

/* Records a note for the stream line (e.g. why O_DIRECT was not used). */
void hoist__report_note(struct hoist__report *r, const char *fmt, ...) HOIST__PRINTF(2, 3);

/* Around the stream: _begin just before it runs; _end after, with its figures.
 * _end takes the stream's figures and judges the bound: a device with copies in
 * flight nearly all the time, at least as busy as the readers, is "device copy";
 * readers waiting for buffers while no device was that busy, "staging"; else the
 * readers set the pace: "storage", or "host memory" where less than half of the bytes
 * they read came from storage (the files were in the page cache, and the readers'
 * copies out of it, with a fresh arena's first-touch faults, were the work). */
void hoist__report_stream_begin(struct hoist__report *r);
void hoist__report_stream_end(struct hoist__report *r, const struct hoist__stream_stats *s);

/* The text and the JSON of hoist_model_report_print / _print_json. Errors:
 * HOIST_ERR_IO when writing fails. */
enum hoist_status hoist__report_print(const struct hoist__report *r, FILE *out);
enum hoist_status hoist__report_print_json(const struct hoist__report *r, FILE *out);

#endif /* HOIST_REPORT_H */
