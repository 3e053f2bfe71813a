/* stream.c - a job's bytes from its sources to its devices.
 *
 * Segments are read by file range, not one by one: segments of a source that lie back
 * to back and go to the same target form one range, cut into chunks. A pool of reader
 * threads takes chunks in file order and reads each into a free buffer of a bounded
 * ring of staging buffers (pinned, from a device's backend); for a device with copy
 * engines the reader then queues the chunk's copies itself, on its own stream, and an
 * event after them. The calling thread, waiting in hoist__stream_run, completes the
 * copies: it waits for the oldest event in flight (the driver wakes it; nothing
 * polls), harvests every other event already done, frees those buffers, and reports
 * progress and landed segments. Readers block only when no buffer is free, so host
 * memory is the ring plus metadata, whatever the job.
 *
 * Sizing: the ring holds at least two buffers per reader (one whose copy is in flight,
 * one being read) within the staging budget, so the chunk is cut, not the ring grown:
 * the default 256 MiB and 16 readers make 32 slots of 8 MiB. The speed model of
 * bench/bench_stream.c (the H200's read and copy figures on the fake driver) put the
 * 7B load at 0.84 of min(read, copy) with 8 slots of 32 MiB and one copy-engine thread
 * that waited on the oldest event between submissions; bench/RESULTS.md has the
 * figures after.
 *
 * Host-addressable targets have no copy engine: a chunk holding one segment's bytes
 * is read straight into place, which is the fastest path on a CPU (one copy, by the
 * kernel); merged small segments, conversions and O_DIRECT chunks go through a
 * staging buffer and are copied into place by the reader.
 *
 * Conversion happens in the reader after the read: a converting segment's chunks are
 * cut on element boundaries and hold no other segment. */
#include "stream.h"
#include "convert.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_CHUNK (32ull << 20)
#define DEFAULT_STAGING (256ull << 20)
/* Chunks are multiples of this, whatever the sources' alignment. */
#define CHUNK_ALIGN 4096ull
/* Slack per staging buffer: an O_DIRECT read of a chunk reads the aligned superset
 * (up to one block each side), and a converting chunk's raw bytes start aligned. */
#define SLOT_SLACK (3 * CHUNK_ALIGN)
/* Host targets: a segment at least this large is its own range, read straight into
 * place; smaller ones are merged and staged (one read for many segments). */
#define HOST_DIRECT_MIN (256ull << 10)
#define PROGRESS_INTERVAL 0.05

/* ---- the work: chunks of file ranges ---------------------------------------------- */

/* A piece of one segment inside a chunk. */
struct piece {
	uint64_t src; /* offset of its bytes in the chunk's data (after conversion) */
	uint64_t dst; /* device address */
	uint64_t len; /* bytes landed */
	size_t tag;
	size_t seg; /* index into job->segments */
};

struct chunk {
	uint32_t source;
	uint32_t target;
	uint64_t off, len; /* range in the source */
	size_t piece0, npieces;
	uint64_t out_len;          /* bytes landed (len unless converting) */
	enum hoist_dtype from, to; /* NONE: no conversion */
	bool direct;               /* read straight into a host target */
};

/* A chunk whose copies are in flight, by staging slot, or by window past the slots. */
struct flight {
	size_t chunk;
	uint64_t seq; /* submission order: the smallest is the oldest */
	bool busy;
	/* Its event was recorded after its copies, so the event tells when they are done.
	 * A flight whose submission failed has none (the slot's event is an older one's):
	 * only drain_devices, after waiting for the device, ends it. */
	bool recorded;
};

/* A chunk's window of its mapped source, registered with the driver so the copies read
 * the page cache in place (job->source). */
struct window {
	struct hoist__source *src;
	struct hoist__dev *dev;
	const void *map; /* the chunk's first byte */
	uint64_t len;
	void *reg; /* the registered pages */
	size_t reg_len;
};

/* A target with copy engines: its events (one per slot) and how busy it was. */
struct engine {
	struct hoist__dev *dev;
	struct hoist__event **ev; /* by slot */
	size_t in_flight;
	double busy, busy_since;
};

struct hoist__stream {
	const struct hoist__job *job;
	struct chunk *chunks;
	size_t nchunks, ccap;
	struct piece *pieces;
	size_t npieces, pcap;
	size_t *seg_left; /* per segment: chunks of it not yet landed */
	uint64_t chunk_bytes;
	unsigned char *ring;
	bool ring_borrowed; /* job->staging: not freed here */
	size_t slot_bytes, nslots;
	struct hoist__dev *ring_dev;
	size_t *free_slots;
	size_t nfree;
	struct engine **engines; /* by target; NULL: the readers land its bytes */
	struct hoist__stream_stats stats;
	/* Registered windows (copies straight from the page cache): flights nslots + w. */
	struct window *win;
	size_t nwin, *free_win, nfree_win;
	unsigned nreg;       /* readers that register: those with ids below */
	atomic_bool reg_off; /* auto: registration failed once, pread from then on */
	long page;

	atomic_size_t next_chunk;
	atomic_uint_fast64_t bytes_done;
	atomic_bool stop;
	pthread_mutex_t lock; /* guards what follows, free_slots and the engines' counts */
	pthread_cond_t slot_cond, main_cond;
	unsigned active;    /* readers still running */
	struct flight *fly; /* by slot */
	size_t nfly;
	uint64_t seq;
	size_t *landed; /* chunks landed, for the calling thread to report (nchunks) */
	size_t nlanded, reported;
	enum hoist_status status;
	char errmsg[1024];
	unsigned readers_started;
};

static unsigned default_threads(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	if (n < 1)
		n = 1;
	return (unsigned)HOIST__MIN(16, 2 * n);
}

static const char *seg_name(const struct hoist__stream *s, size_t tag)
{
	const char *n = s->job->name ? s->job->name(s->job->name_arg, tag) : NULL;
	return n ? n : "?";
}

static struct hoist__source *source_of(const struct hoist__stream *s, const struct chunk *c)
{
	return s->job->sources[c->source];
}

static void wake_all(struct hoist__stream *s)
{
	pthread_cond_broadcast(&s->slot_cond);
	pthread_cond_broadcast(&s->main_cond);
}

/* Records a worker's failure (first one wins) and stops everyone. */
static void stream_fail(struct hoist__stream *s, enum hoist_status st)
{
	pthread_mutex_lock(&s->lock);
	if (s->status == HOIST_OK) {
		s->status = st;
		snprintf(s->errmsg, sizeof s->errmsg, "%s", hoist_errmsg());
	}
	atomic_store(&s->stop, true);
	wake_all(s);
	pthread_mutex_unlock(&s->lock);
}

static enum hoist_status push_piece(struct hoist__stream *s, struct piece p)
{
	if (!hoist__grow(&s->pieces, &s->pcap, s->npieces, sizeof *s->pieces, 256))
		return hoist__error(HOIST_ERR_NOMEM, "out of memory planning the reads");
	s->pieces[s->npieces++] = p;
	s->seg_left[p.seg]++;
	return HOIST_OK;
}

static enum hoist_status push_chunk(struct hoist__stream *s, struct chunk c)
{
	if (!hoist__grow(&s->chunks, &s->ccap, s->nchunks, sizeof *s->chunks, 64))
		return hoist__error(HOIST_ERR_NOMEM, "out of memory planning the reads");
	s->chunks[s->nchunks++] = c;
	return HOIST_OK;
}

static bool converts(const struct hoist__segment *g)
{
	return g->from != g->to;
}

static bool host_target(const struct hoist__stream *s, uint32_t target)
{
	return s->job->targets[target]->host_addressable;
}

/* Cuts a range of back-to-back non-converting segments [g0, g1) of one source and
 * target into chunks of at most chunk_bytes. */
static enum hoist_status cut_range(struct hoist__stream *s, size_t g0, size_t g1)
{
	const struct hoist__segment *seg = s->job->segments;
	uint64_t start = seg[g0].offset, end = seg[g1 - 1].offset + seg[g1 - 1].length;
	bool host = host_target(s, seg[g0].target);
	bool direct_io = s->job->sources[seg[g0].source]->direct;
	size_t g = g0;
	for (uint64_t c = start; c < end; c += s->chunk_bytes) {
		uint64_t ce = HOIST__MIN(end, c + s->chunk_bytes);
		struct chunk ch = {.source = seg[g0].source,
		                   .target = seg[g0].target,
		                   .off = c,
		                   .len = ce - c,
		                   .piece0 = s->npieces,
		                   .out_len = ce - c};
		while (g < g1) {
			const struct hoist__segment *x = &seg[g];
			uint64_t a = HOIST__MAX(x->offset, c),
			         b = HOIST__MIN(x->offset + x->length, ce);
			if (a < b) {
				enum hoist_status st = push_piece(
				        s, (struct piece){a - c, x->dst + (a - x->offset), b - a,
				                          x->tag, g});
				if (st != HOIST_OK)
					return st;
				ch.npieces++;
			}
			if (x->offset + x->length > ce)
				break; /* continues in the next chunk */
			g++;
		}
		ch.direct = host && ch.npieces == 1 && !direct_io;
		enum hoist_status st = push_chunk(s, ch);
		if (st != HOIST_OK)
			return st;
	}
	return HOIST_OK;
}

/* Chunks of one converting segment, on element boundaries, sized so the raw and the
 * converted bytes fit one staging buffer together. */
static enum hoist_status cut_converting(struct hoist__stream *s, const struct hoist__segment *g)
{
	uint64_t in = hoist_dtype_bits(g->from) / 8, out = hoist_dtype_bits(g->to) / 8;
	uint64_t numel = g->length / in;
	uint64_t per = HOIST__MAX(1, s->chunk_bytes / (in + out));
	for (uint64_t e = 0; e < numel; e += per) {
		uint64_t n = HOIST__MIN(per, numel - e);
		struct chunk ch = {.source = g->source,
		                   .target = g->target,
		                   .off = g->offset + e * in,
		                   .len = n * in,
		                   .piece0 = s->npieces,
		                   .npieces = 1,
		                   .out_len = n * out,
		                   .from = g->from,
		                   .to = g->to};
		enum hoist_status st =
		        push_piece(s, (struct piece){0, g->dst + e * out, n * out, g->tag,
		                                     (size_t)(g - s->job->segments)});
		if (st == HOIST_OK)
			st = push_chunk(s, ch);
		if (st != HOIST_OK)
			return st;
	}
	return HOIST_OK;
}

/* Every segment's bytes, as chunks in the job's order. */
static enum hoist_status make_chunks(struct hoist__stream *s)
{
	const struct hoist__segment *seg = s->job->segments;
	size_t n = s->job->nsegments;
	for (size_t g = 0; g < n;) {
		const struct hoist__segment *x = &seg[g];
		if (x->source >= s->job->nsources || x->target >= s->job->ntargets)
			return hoist__error(HOIST_ERR_INVALID,
			                    "stream: segment %zu names no source "
			                    "or target",
			                    g);
		if (x->length == 0) {
			g++;
			continue;
		}
		if (converts(x)) {
			enum hoist_status st = cut_converting(s, x);
			if (st != HOIST_OK)
				return st;
			g++;
			continue;
		}
		bool host = host_target(s, x->target);
		size_t u = g + 1;
		uint64_t end = x->offset + x->length;
		if (!(host && x->length >= HOST_DIRECT_MIN)) {
			while (u < n) {
				const struct hoist__segment *y = &seg[u];
				if (y->target != x->target || y->source != x->source ||
				    y->offset != end || y->length == 0 || converts(y) ||
				    (host && y->length >= HOST_DIRECT_MIN))
					break;
				end += y->length;
				u++;
			}
		}
		enum hoist_status st = cut_range(s, g, u);
		if (st != HOIST_OK)
			return st;
		g = u;
	}
	return HOIST_OK;
}

/* ---- reading -------------------------------------------------------------------- */

static enum hoist_status read_fail(struct hoist__stream *s, const struct chunk *c, uint64_t at,
                                   int err)
{
	return hoist__error(HOIST_ERR_IO,
	                    "%s: tensor \"%s\": reading %llu bytes at offset %llu: %s",
	                    source_of(s, c)->path, seg_name(s, s->pieces[c->piece0].tag),
	                    (unsigned long long)c->len, (unsigned long long)at,
	                    err ? strerror(err) : "the file ends early");
}

/* Reads chunk c into buf. From a direct source, reads the aligned superset (buf must
 * have SLOT_SLACK to spare) and sets *data to where the chunk's bytes start. */
static enum hoist_status read_chunk(struct hoist__stream *s, const struct chunk *c,
                                    unsigned char *buf, uint64_t *data)
{
	struct hoist__source *src = source_of(s, c);
	if (!src->direct) {
		*data = 0;
		if (hoist__source_read_full(src, buf, c->len, c->off) != 0)
			return read_fail(s, c, c->off, errno);
		return HOIST_OK;
	}
	uint64_t align = src->align;
	uint64_t astart = c->off / align * align;
	uint64_t aend = (c->off + c->len + align - 1) / align * align;
	uint64_t got = 0;
	*data = c->off - astart;
	while (astart + got < c->off + c->len) {
		ssize_t n =
		        src->methods->read_at(src, buf + got, aend - astart - got, astart + got);
		if (n < 0)
			return read_fail(s, c, astart + got, errno);
		if (n == 0)
			return read_fail(s, c, astart + got, 0);
		got += (uint64_t)n;
		/* A read that ends inside a block is the end of the file (direct reads
		 * return whole blocks otherwise); before the range's end, it is an error. */
		if (astart + got < c->off + c->len && got % align != 0)
			return read_fail(s, c, astart + got, 0);
	}
	return HOIST_OK;
}

static void release_slot(struct hoist__stream *s, size_t slot)
{
	pthread_mutex_lock(&s->lock);
	s->free_slots[s->nfree++] = slot;
	pthread_cond_signal(&s->slot_cond);
	pthread_mutex_unlock(&s->lock);
}

/* Lands a staged chunk in a host target (the reader does the copy). */
static void land_on_host(struct hoist__stream *s, const struct chunk *c, const unsigned char *data)
{
	for (size_t i = 0; i < c->npieces; i++) {
		const struct piece *p = &s->pieces[c->piece0 + i];
		void *dst = (void *)(uintptr_t)p->dst;
		if (c->from != HOIST_DTYPE_NONE)
			hoist__convert(c->from, c->to, dst, data,
			               c->len / (hoist_dtype_bits(c->from) / 8));
		else
			memcpy(dst, data + p->src, p->len);
	}
}

struct reader {
	struct hoist__stream *s;
	unsigned id; /* its copies go on stream id % streams of each device */
	double read_s, wait_s;
	pthread_t thread;
};

/* Names what a failed copy of chunk c (piece p, or all its pieces where p is NULL)
 * moved: the file, the tensor and the byte offset in the file. */
static void copy_error(struct hoist__stream *s, const struct chunk *c, const struct piece *p)
{
	const struct piece *first = p ? p : &s->pieces[c->piece0];
	uint64_t at = c->off + (c->from != HOIST_DTYPE_NONE ? 0 : first->src);
	char more[48] = "";
	if (!p && c->npieces > 1)
		snprintf(more, sizeof more, " and %zu more", c->npieces - 1);
	hoist__error_prefix("%s: tensor \"%s\"%s (bytes at offset %llu)", source_of(s, c)->path,
	                    seg_name(s, first->tag), more, (unsigned long long)at);
}

/* A flight whose submission failed: stopped and in flight, for drain_devices. */
static enum hoist_status submit_failed(struct hoist__stream *s, const struct chunk *c, size_t slot,
                                       enum hoist_status st)
{
	stream_fail(s, st);
	pthread_mutex_lock(&s->lock);
	s->fly[slot] = (struct flight){(size_t)(c - s->chunks), s->seq++, true, false};
	s->nfly++;
	pthread_mutex_unlock(&s->lock);
	return st;
}

/* Queues chunk c's copies from flight `slot` (a staging slot, or a window past them;
 * its bytes at data) on the reader's stream and the flight's event after them; the
 * calling thread completes them. On failure the flight is marked in flight all the
 * same: copies queued before the failing one may still read it, and the stream waits
 * for every device, then lets it go. */
static enum hoist_status submit(struct reader *r, const struct chunk *c, size_t slot,
                                const unsigned char *data)
{
	struct hoist__stream *s = r->s;
	struct engine *e = s->engines[c->target];
	struct hoist__dev *dev = e->dev;
	unsigned stream = r->id % dev->streams;
	for (size_t i = 0; i < c->npieces; i++) {
		const struct piece *p = &s->pieces[c->piece0 + i];
		enum hoist_status st =
		        dev->ops->copy_async(dev, stream, p->dst, data + p->src, p->len);
		if (st != HOIST_OK) {
			copy_error(s, c, p);
			return submit_failed(s, c, slot, st);
		}
	}
	enum hoist_status st = dev->ops->event_record(dev, e->ev[slot], stream);
	if (st != HOIST_OK) {
		copy_error(s, c, NULL);
		return submit_failed(s, c, slot, st);
	}
	pthread_mutex_lock(&s->lock);
	s->fly[slot] = (struct flight){(size_t)(c - s->chunks), s->seq++, true, true};
	s->nfly++;
	if (slot >= s->nslots) {
		s->stats.registered_bytes += c->len;
		s->stats.registered_chunks++;
	}
	if (e->in_flight++ == 0)
		e->busy_since = hoist__now();
	pthread_cond_signal(&s->main_cond);
	pthread_mutex_unlock(&s->lock);
	return HOIST_OK;
}

/* A chunk whose bytes are all on their device, for the calling thread (lock held). */
static void chunk_landed(struct hoist__stream *s, size_t chunk)
{
	s->landed[s->nlanded++] = chunk;
	pthread_cond_signal(&s->main_cond);
}

/* Whether all of [p, p + n) (page-aligned) is in the page cache now. */
static bool resident(const struct hoist__stream *s, uintptr_t p, size_t n)
{
	unsigned char vec[4096];
	size_t pages = n / (size_t)s->page;
	for (size_t at = 0; at < pages; at += sizeof vec) {
		size_t k = HOIST__MIN(sizeof vec, pages - at);
		if (mincore((void *)(p + at * (size_t)s->page), k * (size_t)s->page, vec) != 0)
			return false;
		for (size_t i = 0; i < k; i++)
			if (!(vec[i] & 1))
				return false;
	}
	return true;
}

/* Whether reader r copies chunk c straight from the page cache. */
static bool registers(const struct reader *r, const struct chunk *c)
{
	const struct hoist__stream *s = r->s;
	const struct engine *e = s->engines[c->target];
	const struct hoist__source *src = s->job->sources[c->source];
	return s->nwin > 0 && r->id < s->nreg && e && e->dev->registers &&
	       c->from == HOIST_DTYPE_NONE && !src->direct && src->methods->map &&
	       !atomic_load(&s->reg_off);
}

/* Copies chunk c straight from its mapped, registered window; *done false (and
 * HOIST_OK) where the reader should pread it instead: no window free now, the pages
 * not all resident (auto), or the driver refusing the registration (auto). */
static enum hoist_status register_chunk(struct reader *r, const struct chunk *c, bool *done)
{
	struct hoist__stream *s = r->s;
	struct hoist__source *src = source_of(s, c);
	struct hoist__dev *dev = s->engines[c->target]->dev;
	bool forced = s->job->source == HOIST_SOURCE_REGISTER;
	*done = false;
	pthread_mutex_lock(&s->lock);
	if (s->nfree_win == 0 || atomic_load(&s->stop)) {
		pthread_mutex_unlock(&s->lock);
		return HOIST_OK;
	}
	size_t w = s->free_win[--s->nfree_win];
	pthread_mutex_unlock(&s->lock);
	double t0 = hoist__now();
	const void *addr = NULL;
	enum hoist_status st = src->methods->map(src, c->off, c->len, &addr);
	uintptr_t a = (uintptr_t)addr, pg = (uintptr_t)s->page;
	uintptr_t start = a / pg * pg, end = (a + c->len + pg - 1) / pg * pg;
	if (st == HOIST_OK && !forced && !resident(s, start, end - start)) {
		src->methods->unmap(src, addr, c->len);
		st = HOIST_ERR_IO; /* not an error: pread it */
	} else if (st == HOIST_OK) {
		st = dev->ops->host_register(dev, (void *)start, end - start);
		if (st != HOIST_OK)
			src->methods->unmap(src, addr, c->len);
		if (st != HOIST_OK && !forced)
			atomic_store(&s->reg_off, true);
	}
	r->read_s += hoist__now() - t0;
	if (st != HOIST_OK) {
		pthread_mutex_lock(&s->lock);
		s->free_win[s->nfree_win++] = w;
		pthread_mutex_unlock(&s->lock);
		if (!forced) {
			hoist__error_clear();
			return HOIST_OK;
		}
		hoist__error_prefix("%s: bytes at offset %llu (--source register)", src->path,
		                    (unsigned long long)c->off);
		return st;
	}
	s->win[w] = (struct window){src, dev, addr, c->len, (void *)start, end - start};
	*done = true;
	return submit(r, c, s->nslots + w, addr);
}

/* Unregisters window w, then unmaps it (no copy reads it any more). */
static void window_release(struct hoist__stream *s, size_t w)
{
	struct window *win = &s->win[w];
	win->dev->ops->host_unregister(win->dev, win->reg);
	win->src->methods->unmap(win->src, win->map, win->len);
}

static enum hoist_status reader_chunk(struct reader *r, const struct chunk *c)
{
	struct hoist__stream *s = r->s;
	size_t ci = (size_t)(c - s->chunks);
	double t0 = hoist__now();
	if (c->direct) {
		const struct piece *p = &s->pieces[c->piece0];
		if (hoist__source_read_full(source_of(s, c), (void *)(uintptr_t)p->dst, c->len,
		                            c->off) != 0)
			return read_fail(s, c, c->off, errno);
		r->read_s += hoist__now() - t0;
		atomic_fetch_add(&s->bytes_done, c->out_len);
		pthread_mutex_lock(&s->lock);
		chunk_landed(s, ci);
		pthread_mutex_unlock(&s->lock);
		return HOIST_OK;
	}
	if (registers(r, c)) {
		bool done;
		enum hoist_status st = register_chunk(r, c, &done);
		if (st != HOIST_OK || done)
			return st;
	}
	pthread_mutex_lock(&s->lock);
	while (s->nfree == 0 && !atomic_load(&s->stop))
		pthread_cond_wait(&s->slot_cond, &s->lock);
	if (atomic_load(&s->stop)) {
		pthread_mutex_unlock(&s->lock);
		return HOIST_OK;
	}
	size_t slot = s->free_slots[--s->nfree];
	pthread_mutex_unlock(&s->lock);
	double t1 = hoist__now();
	r->wait_s += t1 - t0;
	unsigned char *buf = s->ring + slot * s->slot_bytes;
	unsigned char *raw = buf;
	if (c->from != HOIST_DTYPE_NONE)
		raw = buf + (c->out_len + CHUNK_ALIGN - 1) / CHUNK_ALIGN * CHUNK_ALIGN;
	uint64_t data;
	enum hoist_status st = read_chunk(s, c, raw, &data);
	r->read_s += hoist__now() - t1;
	if (st != HOIST_OK) {
		release_slot(s, slot);
		return st;
	}
	if (!s->engines[c->target]) {
		land_on_host(s, c, raw + data);
		atomic_fetch_add(&s->bytes_done, c->out_len);
		pthread_mutex_lock(&s->lock);
		s->free_slots[s->nfree++] = slot;
		pthread_cond_signal(&s->slot_cond);
		chunk_landed(s, ci);
		pthread_mutex_unlock(&s->lock);
		return HOIST_OK;
	}
	if (c->from != HOIST_DTYPE_NONE) {
		hoist__convert(c->from, c->to, buf, raw + data,
		               c->len / (hoist_dtype_bits(c->from) / 8));
		data = 0;
	}
	return submit(r, c, slot, buf + data);
}

static void *reader_main(void *arg)
{
	struct reader *r = arg;
	struct hoist__stream *s = r->s;
	while (!atomic_load(&s->stop)) {
		size_t i = atomic_fetch_add(&s->next_chunk, 1);
		if (i >= s->nchunks)
			break;
		enum hoist_status st = reader_chunk(r, &s->chunks[i]);
		if (st != HOIST_OK) {
			stream_fail(s, st);
			break;
		}
	}
	pthread_mutex_lock(&s->lock);
	s->stats.read_s += r->read_s;
	s->stats.wait_s += r->wait_s;
	s->active--;
	pthread_cond_broadcast(&s->main_cond);
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

/* ---- completing copies, on the calling thread -------------------------------------- */

/* The copies from `slot` are done: its chunk landed, the slot (or window, unregistered
 * and unmapped first) is free. Called with the lock held; let go for a window. */
static void flight_done(struct hoist__stream *s, size_t slot)
{
	struct flight *f = &s->fly[slot];
	struct engine *e = s->engines[s->chunks[f->chunk].target];
	if (slot >= s->nslots) {
		pthread_mutex_unlock(&s->lock);
		window_release(s, slot - s->nslots);
		pthread_mutex_lock(&s->lock);
	}
	f->busy = false;
	s->nfly--;
	if (--e->in_flight == 0)
		e->busy += hoist__now() - e->busy_since;
	atomic_fetch_add(&s->bytes_done, s->chunks[f->chunk].out_len);
	chunk_landed(s, f->chunk);
	if (slot >= s->nslots) {
		s->free_win[s->nfree_win++] = slot - s->nslots;
	} else {
		s->free_slots[s->nfree++] = slot;
		pthread_cond_signal(&s->slot_cond);
	}
}

/* Waits (outside the lock) for event of slot `slot`; timeout 0 only asks. */
static enum hoist_status flight_wait(struct hoist__stream *s, size_t slot, double timeout,
                                     bool *done)
{
	const struct chunk *c = &s->chunks[s->fly[slot].chunk];
	struct engine *e = s->engines[c->target];
	enum hoist_status st = e->dev->ops->event_wait(e->dev, e->ev[slot], timeout, done);
	if (st != HOIST_OK)
		copy_error(s, c, NULL);
	return st;
}

/* Waits for the oldest copies in flight, then takes every other one already done.
 * Called and returns with the lock held. */
static void complete_copies(struct hoist__stream *s)
{
	size_t oldest = SIZE_MAX, nfly = s->nslots + s->nwin;
	for (size_t k = 0; k < nfly; k++)
		if (s->fly[k].busy && s->fly[k].recorded &&
		    (oldest == SIZE_MAX || s->fly[k].seq < s->fly[oldest].seq))
			oldest = k;
	if (oldest == SIZE_MAX) /* only failed submissions: the stream is stopping */
		return;
	bool done = false;
	pthread_mutex_unlock(&s->lock);
	enum hoist_status st = flight_wait(s, oldest, PROGRESS_INTERVAL, &done);
	pthread_mutex_lock(&s->lock);
	if (st == HOIST_OK && done)
		flight_done(s, oldest);
	/* Only the calling thread ends a flight: a busy slot stays busy, and its entry
	 * unchanged, while the lock is let go for the query. */
	for (size_t k = 0; k < nfly && st == HOIST_OK; k++) {
		if (!s->fly[k].busy || !s->fly[k].recorded)
			continue;
		pthread_mutex_unlock(&s->lock);
		st = flight_wait(s, k, 0, &done);
		pthread_mutex_lock(&s->lock);
		if (st == HOIST_OK && done)
			flight_done(s, k);
	}
	if (st != HOIST_OK) {
		pthread_mutex_unlock(&s->lock);
		stream_fail(s, st);
		pthread_mutex_lock(&s->lock);
	}
}

/* Reports the segments whose last chunk landed since the last call, in landing order
 * (lock held; the callback runs with it let go). */
static void report_landed(struct hoist__stream *s)
{
	const struct hoist__job *job = s->job;
	while (s->reported < s->nlanded) {
		const struct chunk *c = &s->chunks[s->landed[s->reported++]];
		for (size_t i = 0; i < c->npieces; i++) {
			size_t g = s->pieces[c->piece0 + i].seg;
			if (--s->seg_left[g] == 0 && job->landed) {
				pthread_mutex_unlock(&s->lock);
				job->landed(job->landed_arg, g);
				pthread_mutex_lock(&s->lock);
			}
		}
	}
}

/* ---- prepare, run, free ----------------------------------------------------------- */

/* The chunk size: two buffers per reader, one whose copy is in flight and one being
 * read, within the staging budget; the chunk gives way, never the budget. */
static uint64_t chunk_size(unsigned readers, uint64_t chunk, uint64_t staging)
{
	chunk = chunk ? chunk : DEFAULT_CHUNK;
	if (chunk > staging / 2 / readers)
		chunk = staging / 2 / readers;
	return HOIST__MAX(CHUNK_ALIGN, chunk / CHUNK_ALIGN * CHUNK_ALIGN);
}

static size_t slot_size(uint64_t chunk)
{
	uint64_t b = chunk + SLOT_SLACK;
	return (size_t)((b + CHUNK_ALIGN - 1) / CHUNK_ALIGN * CHUNK_ALIGN);
}

size_t hoist__stream_ring_bytes(unsigned threads, uint64_t chunk_bytes, uint64_t staging_bytes)
{
	unsigned readers = threads ? threads : default_threads();
	uint64_t staging = staging_bytes ? staging_bytes : DEFAULT_STAGING;
	uint64_t chunk = chunk_size(readers, chunk_bytes, staging);
	uint64_t nslots = HOIST__MAX(2, staging / chunk);
	uint64_t total;
	if (!hoist__mul_u64(nslots, slot_size(chunk), &total) || total > SIZE_MAX)
		return 0;
	return (size_t)total;
}

/* Registering readers: auto, a few (registration ran at ~20 GB/s on the H200 machine
 * and did not scale with threads, so a few feed the GPU beside the pread readers);
 * register, all of them. Two windows each (one copying, one being registered). */
#define AUTO_REGISTER_READERS 2

static enum hoist_status windows(struct hoist__stream *s, const bool *used)
{
	const struct hoist__job *job = s->job;
	bool any = false;
	s->page = sysconf(_SC_PAGESIZE);
	if (s->page <= 0)
		s->page = 4096;
	if (job->source == HOIST_SOURCE_PREAD)
		return HOIST_OK;
	for (size_t i = 0; i < job->ntargets; i++) {
		struct hoist__dev *dev = job->targets[i];
		if (!used[i] || dev->host_addressable)
			continue;
		if (dev->registers && dev->ops->host_register) {
			any = true;
		} else if (job->source == HOIST_SOURCE_REGISTER) {
			char name[24];
			hoist_device_format(dev->device, name, sizeof name);
			return hoist__error(
			        HOIST_ERR_INVALID,
			        "%s: source \"register\": this device and driver cannot register "
			        "read-only host memory "
			        "(CU_DEVICE_ATTRIBUTE_READ_ONLY_HOST_REGISTER_"
			        "SUPPORTED is 0, or not a GPU); use pread or auto",
			        name);
		}
	}
	unsigned readers = job->threads ? job->threads : default_threads();
	s->nreg = job->source == HOIST_SOURCE_REGISTER ? readers
	                                               : HOIST__MIN(AUTO_REGISTER_READERS, readers);
	s->nwin = any ? 2 * (size_t)s->nreg : 0;
	return HOIST_OK;
}

/* Staging ring and copy engines, sized to what the chunks need. */
static enum hoist_status make_ring(struct hoist__stream *s, uint64_t staging)
{
	const struct hoist__job *job = s->job;
	bool staged = false;
	bool *used = hoist__calloc(job->ntargets ? job->ntargets : 1, sizeof *used);
	if (!used)
		return hoist__error(HOIST_ERR_NOMEM, "out of memory for the staging ring");
	for (size_t c = 0; c < s->nchunks; c++) {
		staged |= !s->chunks[c].direct;
		used[s->chunks[c].target] = true;
	}
	/* The ring is pinned for the first device with a copy engine; else it is the host
	 * target's plain memory. */
	for (size_t i = 0; i < job->ntargets && !s->ring_dev; i++)
		if (used[i] && !job->targets[i]->host_addressable)
			s->ring_dev = job->targets[i];
	for (size_t i = 0; i < job->ntargets && !s->ring_dev; i++)
		if (used[i])
			s->ring_dev = job->targets[i];
	snprintf(s->stats.staging, sizeof s->stats.staging, "none");
	enum hoist_status st = HOIST_OK;
	if (!staged || !s->ring_dev)
		goto out;
	/* No bigger or more buffers than the staged chunks can use. */
	uint64_t longest = 0;
	size_t nstaged = 0;
	for (size_t c = 0; c < s->nchunks; c++) {
		const struct chunk *ch = &s->chunks[c];
		if (ch->direct)
			continue;
		nstaged++;
		longest = HOIST__MAX(longest, ch->from != HOIST_DTYPE_NONE ? ch->len + ch->out_len
		                                                           : ch->len);
	}
	s->slot_bytes = slot_size(HOIST__MIN(s->chunk_bytes, longest));
	s->nslots = (size_t)HOIST__MAX(2, staging / s->chunk_bytes);
	s->nslots = HOIST__MIN(s->nslots, HOIST__MAX(2, nstaged));
	size_t total;
	if (__builtin_mul_overflow(s->slot_bytes, s->nslots, &total)) {
		st = hoist__error(HOIST_ERR_INVALID, "staging ring too large");
		goto out;
	}
	const char *how = "";
	if (job->staging && job->staging_size >= total && !s->ring_dev->host_addressable) {
		/* a ring made before the load (hoist_warmup_start): borrowed */
		s->ring = job->staging;
		s->ring_borrowed = true;
		how = job->staging_how ? job->staging_how : "borrowed";
	} else {
		st = s->ring_dev->ops->host_alloc(s->ring_dev, total, (void **)&s->ring, &how);
	}
	if (st != HOIST_OK) {
		s->ring = NULL;
		hoist__error_prefix("staging ring of %zu x %zu bytes", s->nslots, s->slot_bytes);
		goto out;
	}
	snprintf(s->stats.staging, sizeof s->stats.staging, "%s", how);
	if ((st = windows(s, used)) != HOIST_OK)
		goto out;
	s->free_slots = hoist__calloc(s->nslots, sizeof *s->free_slots);
	s->fly = hoist__calloc(s->nslots + s->nwin, sizeof *s->fly);
	s->win = hoist__calloc(s->nwin ? s->nwin : 1, sizeof *s->win);
	s->free_win = hoist__calloc(s->nwin ? s->nwin : 1, sizeof *s->free_win);
	if (!s->free_slots || !s->fly || !s->win || !s->free_win) {
		st = hoist__error(HOIST_ERR_NOMEM, "out of memory for the staging ring");
		goto out;
	}
	for (size_t k = 0; k < s->nslots; k++)
		s->free_slots[s->nfree++] = s->nslots - 1 - k;
	for (size_t w = 0; w < s->nwin; w++)
		s->free_win[s->nfree_win++] = s->nwin - 1 - w;
	for (size_t i = 0; i < job->ntargets && st == HOIST_OK; i++) {
		struct hoist__dev *dev = job->targets[i];
		if (!used[i] || dev->host_addressable)
			continue;
		struct engine *e = hoist__calloc(1, sizeof *e);
		if (!e) {
			st = hoist__error(HOIST_ERR_NOMEM, "out of memory for a copy engine");
			break;
		}
		s->engines[i] = e;
		s->stats.engines = true;
		e->dev = dev;
		e->ev = hoist__calloc(s->nslots + s->nwin, sizeof *e->ev);
		if (!e->ev) {
			st = hoist__error(HOIST_ERR_NOMEM, "out of memory for a copy engine");
			break;
		}
		for (size_t k = 0; k < s->nslots + s->nwin && st == HOIST_OK; k++)
			st = dev->ops->event_create(dev, &e->ev[k]);
	}
out:
	hoist__free(used);
	return st;
}

enum hoist_status hoist__stream_prepare(const struct hoist__job *job, struct hoist__stream **out)
{
	*out = NULL;
	struct hoist__stream *s = hoist__calloc(1, sizeof *s);
	if (!s)
		return hoist__error(HOIST_ERR_NOMEM, "out of memory for the stream");
	s->job = job;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->slot_cond, NULL);
	pthread_cond_init(&s->main_cond, NULL);
	enum hoist_status st = HOIST_OK;
	s->engines = hoist__calloc(job->ntargets ? job->ntargets : 1, sizeof *s->engines);
	s->seg_left = hoist__calloc(job->nsegments ? job->nsegments : 1, sizeof *s->seg_left);
	if (!s->engines || !s->seg_left) {
		st = hoist__error(HOIST_ERR_NOMEM, "out of memory for the stream");
		goto out;
	}
	unsigned readers = job->threads ? job->threads : default_threads();
	uint64_t staging = job->staging_bytes ? job->staging_bytes : DEFAULT_STAGING;
	s->chunk_bytes = chunk_size(readers, job->chunk_bytes, staging);
	st = make_chunks(s);
	if (st == HOIST_OK) {
		s->landed = hoist__calloc(s->nchunks ? s->nchunks : 1, sizeof *s->landed);
		if (!s->landed)
			st = hoist__error(HOIST_ERR_NOMEM, "out of memory for the stream");
	}
	if (st == HOIST_OK)
		st = make_ring(s, staging);
	if (st != HOIST_OK)
		goto out;
	struct hoist__stream_stats *t = &s->stats;
	bool direct = s->nchunks > 0;
	for (size_t c = 0; c < s->nchunks; c++) {
		t->moved_bytes += s->chunks[c].out_len;
		t->read_bytes += s->chunks[c].len;
		t->direct_chunks += s->chunks[c].direct;
		direct &= source_of(s, &s->chunks[c])->direct;
	}
	t->chunks = s->nchunks;
	t->readers = (unsigned)HOIST__MIN((size_t)readers, s->nchunks);
	t->chunk_bytes = s->chunk_bytes;
	t->slots = s->nslots;
	t->slot_bytes = s->slot_bytes;
	t->direct_io = direct;
out:
	if (st != HOIST_OK) {
		hoist__stream_free(s);
		return st;
	}
	*out = s;
	return HOIST_OK;
}

const struct hoist__stream_stats *hoist__stream_stats(const struct hoist__stream *s)
{
	return &s->stats;
}

static bool progress(struct hoist__stream *s)
{
	const struct hoist__job *job = s->job;
	return job->progress && job->progress(job->progress_arg, atomic_load(&s->bytes_done),
	                                      s->stats.moved_bytes) != 0;
}

/* Waits for every copy queued on every device with copy engines (after a failure or
 * a cancellation, before the ring may go); the first error, if none came before. */
static void drain_devices(struct hoist__stream *s)
{
	for (size_t i = 0; i < s->job->ntargets; i++) {
		struct engine *e = s->engines[i];
		if (!e)
			continue;
		enum hoist_status st = e->dev->ops->synchronize(e->dev);
		if (st != HOIST_OK)
			stream_fail(s, st);
		pthread_mutex_lock(&s->lock);
		for (size_t k = 0; k < s->nslots + s->nwin; k++)
			if (s->fly[k].busy && s->chunks[s->fly[k].chunk].target == i) {
				if (k >= s->nslots)
					window_release(s, k - s->nslots);
				s->fly[k].busy = false;
				s->nfly--;
			}
		if (e->in_flight > 0)
			e->busy += hoist__now() - e->busy_since;
		e->in_flight = 0;
		pthread_mutex_unlock(&s->lock);
	}
}

enum hoist_status hoist__stream_run(struct hoist__stream *s)
{
	const struct hoist__job *job = s->job;
	double t0 = hoist__now();
	unsigned nreaders = s->stats.readers;
	struct reader *readers = hoist__calloc(nreaders ? nreaders : 1, sizeof *readers);
	if (!readers)
		return hoist__error(HOIST_ERR_NOMEM, "out of memory starting the readers");
	/* Segments with no bytes land at once. */
	for (size_t g = 0; g < job->nsegments; g++)
		if (s->seg_left[g] == 0 && job->landed)
			job->landed(job->landed_arg, g);
	for (unsigned i = 0; i < nreaders; i++) {
		readers[i] = (struct reader){.s = s, .id = i};
		pthread_mutex_lock(&s->lock);
		s->active++;
		pthread_mutex_unlock(&s->lock);
		int rc = pthread_create(&readers[i].thread, NULL, reader_main, &readers[i]);
		if (rc != 0) {
			pthread_mutex_lock(&s->lock);
			s->active--;
			pthread_mutex_unlock(&s->lock);
			hoist__error(HOIST_ERR_NOMEM, "cannot start a reader thread: %s",
			             strerror(rc));
			stream_fail(s, HOIST_ERR_NOMEM);
			break;
		}
		s->readers_started++;
	}
	bool cancel = false;
	double last = 0;
	pthread_mutex_lock(&s->lock);
	/* Until every reader is done and every chunk landed, or, once stopped, every reader
	 * is done (the copies then in flight are drained below). */
	for (;;) {
		report_landed(s);
		bool stopped = atomic_load(&s->stop);
		if (s->active == 0 && (stopped || s->nfly == 0))
			break;
		if (s->nfly > 0 && !stopped) {
			complete_copies(s);
		} else {
			struct timespec until;
			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_nsec += (long)(PROGRESS_INTERVAL * 1e9);
			if (until.tv_nsec >= 1000000000L) {
				until.tv_sec++;
				until.tv_nsec -= 1000000000L;
			}
			if (s->nlanded == s->reported)
				pthread_cond_timedwait(&s->main_cond, &s->lock, &until);
		}
		double now = hoist__now();
		if (!cancel && now - last >= PROGRESS_INTERVAL && s->status == HOIST_OK) {
			last = now;
			pthread_mutex_unlock(&s->lock);
			cancel = progress(s);
			pthread_mutex_lock(&s->lock);
			if (cancel) {
				atomic_store(&s->stop, true);
				wake_all(s);
			}
		}
	}
	pthread_mutex_unlock(&s->lock);
	for (unsigned i = 0; i < s->readers_started; i++)
		pthread_join(readers[i].thread, NULL);
	hoist__free(readers);
	if (atomic_load(&s->stop))
		drain_devices(s);
	else if (!cancel && s->status == HOIST_OK)
		cancel = progress(s);
	s->stats.wall = hoist__now() - t0;
	s->stats.landed = atomic_load(&s->bytes_done);
	for (size_t i = 0; i < job->ntargets; i++)
		if (s->engines[i])
			s->stats.copy_s = HOIST__MAX(s->stats.copy_s, s->engines[i]->busy);
	if (s->status != HOIST_OK)
		return hoist__error(s->status, "%s", s->errmsg);
	if (cancel) {
		hoist__error_clear();
		return HOIST_ERR_CANCELLED;
	}
	return HOIST_OK;
}

void hoist__stream_free(struct hoist__stream *s)
{
	if (!s)
		return;
	for (size_t i = 0; s->engines && i < s->job->ntargets; i++) {
		struct engine *e = s->engines[i];
		if (!e)
			continue;
		if (e->ev)
			for (size_t k = 0; k < s->nslots + s->nwin; k++)
				if (e->ev[k])
					e->dev->ops->event_destroy(e->dev, e->ev[k]);
		hoist__free(e->ev);
		hoist__free(e);
	}
	hoist__free(s->engines);
	if (s->ring && !s->ring_borrowed)
		s->ring_dev->ops->host_free(s->ring_dev, s->ring, s->slot_bytes * s->nslots);
	hoist__free(s->free_slots);
	hoist__free(s->fly);
	hoist__free(s->win);
	hoist__free(s->free_win);
	hoist__free(s->landed);
	hoist__free(s->seg_left);
	hoist__free(s->chunks);
	hoist__free(s->pieces);
	pthread_cond_destroy(&s->slot_cond);
	pthread_cond_destroy(&s->main_cond);
	pthread_mutex_destroy(&s->lock);
	hoist__free(s);
}
