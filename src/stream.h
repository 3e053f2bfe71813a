/*
 * stream.h - moving bytes from sources to devices (stream.c): a job is a list of
 * segments, each a byte range of a source that lands at a device address, optionally
 * converted on the way. The stream reads them by file range with a pool of reader
 * threads into a bounded ring of staging buffers; for devices with copy engines the
 * readers queue asynchronous copies from there, and the calling thread completes them.
 * It knows nothing of
 * checkpoints, plans or models: a tensor-parallel slice or another kind of source is
 * only other segments or another source.
 *
 * The calling thread waits, completes copies, reports progress and landed segments,
 * and may cancel; on cancellation or any worker's error the stream stops its workers,
 * waits for every copy in flight on every device, and returns the first error.
 */
#ifndef HOIST_STREAM_H
#define HOIST_STREAM_H

#include "backend.h"
#include "source.h"

struct hoist__segment {
	uint32_t source;           /* index into job->sources */
	uint32_t target;           /* index into job->targets */
	uint64_t offset, length;   /* the bytes in the source */
	uint64_t dst;              /* device address where the first landed byte goes */
	enum hoist_dtype from, to; /* converted on the way (from != to; both F16, BF16 or F32;
	                            * length is whole elements); else both HOIST_DTYPE_NONE */
	size_t tag;                /* the caller's number for the tensor, for messages */
};

struct hoist__job {
	struct hoist__source *const *sources;
	size_t nsources;
	struct hoist__dev *const *targets;
	size_t ntargets;
	/* In the order to read them: by source, then offset, none overlapping. Segments of
	 * one source and target that lie back to back are read as one range. */
	const struct hoist__segment *segments;
	size_t nsegments;
	/* The name of a segment's tensor, for messages. */
	const char *(*name)(void *arg, size_t tag);
	void *name_arg;
	unsigned threads;       /* readers; 0: min(16, 2 x cores) */
	uint64_t chunk_bytes;   /* read unit; 0: 32 MiB */
	uint64_t staging_bytes; /* staging ring in total; 0: 256 MiB */
	/* Called on the calling thread at least every 50 ms while the stream runs, with
	 * the bytes landed so far; non-zero cancels. */
	int (*progress)(void *arg, uint64_t done, uint64_t total);
	void *progress_arg;
	/* Called on the calling thread (never a worker's), from hoist__stream_run, once
	 * every byte of segment `segment` (an index into segments) is on its device: for
	 * a device with copy engines, once the event after its last chunk's copies has
	 * completed. Each segment exactly once, in the order they land, all before
	 * hoist__stream_run returns HOIST_OK (segments of no bytes first). NULL: none. */
	void (*landed)(void *arg, size_t segment);
	void *landed_arg;
	/* A staging ring made beforehand (page-locked memory every device with copy
	 * engines copies from), borrowed where it holds the ring the job needs
	 * (hoist__stream_ring_bytes); else the stream allocates its own. NULL: none. */
	void *staging;
	size_t staging_size;
	const char *staging_how; /* what it is, for the report */
	/* Where copies into devices with copy engines take bytes from (hoist.h's enum
	 * hoist_source): auto registers resident windows of the mapped sources on a few
	 * readers where the device supports it; register, every chunk it can. */
	enum hoist_source source;
};

/* The most bytes a job's staging ring takes with these settings (0 for a size beyond
 * the address space), for a ring made before the job is known. */
size_t hoist__stream_ring_bytes(unsigned threads, uint64_t chunk_bytes, uint64_t staging_bytes);

/* Where the stream's time went, for the report. */
struct hoist__stream_stats {
	uint64_t moved_bytes; /* landed (after conversion) */
	uint64_t read_bytes;  /* read from the sources */
	uint64_t landed;      /* landed so far, also when the stream stopped early */
	size_t chunks, direct_chunks;
	unsigned readers;
	uint64_t chunk_bytes;
	size_t slots;
	uint64_t slot_bytes;
	char staging[64];          /* what the staging ring is, or "none" */
	bool direct_io;            /* every source read bypasses the page cache */
	bool engines;              /* some target has a copy engine */
	double wall;               /* seconds hoist__stream_run ran */
	double read_s;             /* seconds the readers spent reading, summed over readers */
	double wait_s;             /* seconds they waited for a free staging buffer, summed */
	double copy_s;             /* seconds the busiest device had copies in flight */
	uint64_t registered_bytes; /* copied straight from registered page-cache windows */
	size_t registered_chunks;
};

struct hoist__stream;

/* Cuts the job into chunks and allocates the staging ring and the copy engines (so a
 * caller can time allocation apart from streaming). The job must outlive the stream.
 * Errors: HOIST_ERR_NOMEM, HOIST_ERR_INVALID, or the ring's allocation failing. */
enum hoist_status hoist__stream_prepare(const struct hoist__job *job, struct hoist__stream **out);

/* Bytes the job lands, and what prepare decided (chunks, ring), before it runs. */
const struct hoist__stream_stats *hoist__stream_stats(const struct hoist__stream *s);

/* Runs the job: HOIST_OK once every segment has landed (every copy has completed),
 * or the first error. Cancelled by the
 * progress callback: HOIST_ERR_CANCELLED, without a message (the caller says what
 * was cancelled). Either way, no worker runs and no copy reads the ring when it
 * returns. */
enum hoist_status hoist__stream_run(struct hoist__stream *s);

/* Frees the ring and the engines. NULL ok. */
void hoist__stream_free(struct hoist__stream *s);

#endif /* HOIST_STREAM_H */
