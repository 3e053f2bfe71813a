/* stream.c - a job's bytes from its sources to its devices.
 *
 * Segments are read by file range, not one by one: segments of a source that lie back
 * to back and go to the same target form one range, cut into chunks (default 32 MiB).
 * A pool of reader threads takes chunks in file order and reads each into a free
 * buffer of a bounded ring of staging buffers (pinned, from a device's backend); a
 * copy engine thread per device queues asynchronous copies from staged chunks into the
 * device, spread over its streams, and frees each buffer when the event after its
 * copies completes. Readers block when no buffer is free, so host memory is the ring
 * plus metadata, whatever the job.
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

struct qitem {
	size_t chunk, slot;
	uint64_t data; /* offset of the chunk's data in its slot */
};

struct hoist__stream;

struct engine {
	struct hoist__stream *s;
	struct hoist__dev *dev;
	struct hoist__event **ev; /* one per staging slot */
	struct qitem *queue;      /* ring of nslots: at most every slot waits here */
	size_t qhead, qcount;
	pthread_cond_t cond;
	size_t expected;
	double busy;
	pthread_t thread;
	bool started;
};

struct hoist__stream {
	const struct hoist__job *job;
	struct chunk *chunks;
	size_t nchunks, ccap;
	struct piece *pieces;
	size_t npieces, pcap;
	uint64_t chunk_bytes;
	unsigned char *ring;
	size_t slot_bytes, nslots;
	struct hoist__dev *ring_dev;
	size_t *free_slots;
	size_t nfree;
	struct engine **engines; /* by target; NULL: the readers land its bytes */
	struct hoist__stream_stats stats;

	atomic_size_t next_chunk;
	atomic_uint_fast64_t bytes_done;
	atomic_bool stop;
	pthread_mutex_t lock;
	pthread_cond_t slot_cond, main_cond;
	unsigned active; /* workers still running */
	enum hoist_status status;
	char errmsg[1024];
	pthread_t *readers;
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
	for (size_t i = 0; i < s->job->ntargets; i++)
		if (s->engines[i])
			pthread_cond_broadcast(&s->engines[i]->cond);
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
				                          x->tag});
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
		        push_piece(s, (struct piece){0, g->dst + e * out, n * out, g->tag});
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

struct reader_stats {
	double read_s, wait_s;
};

static enum hoist_status reader_chunk(struct hoist__stream *s, const struct chunk *c,
                                      struct reader_stats *rs)
{
	double t0 = hoist__now();
	if (c->direct) {
		const struct piece *p = &s->pieces[c->piece0];
		if (hoist__source_read_full(source_of(s, c), (void *)(uintptr_t)p->dst, c->len,
		                            c->off) != 0)
			return read_fail(s, c, c->off, errno);
		rs->read_s += hoist__now() - t0;
		atomic_fetch_add(&s->bytes_done, c->out_len);
		return HOIST_OK;
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
	rs->wait_s += t1 - t0;
	unsigned char *buf = s->ring + slot * s->slot_bytes;
	unsigned char *raw = buf;
	uint64_t out_off = 0;
	if (c->from != HOIST_DTYPE_NONE)
		raw = buf + (c->out_len + CHUNK_ALIGN - 1) / CHUNK_ALIGN * CHUNK_ALIGN;
	uint64_t data;
	enum hoist_status st = read_chunk(s, c, raw, &data);
	rs->read_s += hoist__now() - t1;
	if (st != HOIST_OK) {
		release_slot(s, slot);
		return st;
	}
	struct engine *e = s->engines[c->target];
	if (!e) {
		land_on_host(s, c, raw + data);
		release_slot(s, slot);
		atomic_fetch_add(&s->bytes_done, c->out_len);
		return HOIST_OK;
	}
	if (c->from != HOIST_DTYPE_NONE)
		hoist__convert(c->from, c->to, buf, raw + data,
		               c->len / (hoist_dtype_bits(c->from) / 8));
	else
		out_off = data;
	pthread_mutex_lock(&s->lock);
	e->queue[(e->qhead + e->qcount) % s->nslots] =
	        (struct qitem){(size_t)(c - s->chunks), slot, out_off};
	e->qcount++;
	pthread_cond_signal(&e->cond);
	pthread_mutex_unlock(&s->lock);
	return HOIST_OK;
}

static void worker_exit(struct hoist__stream *s)
{
	pthread_mutex_lock(&s->lock);
	s->active--;
	pthread_cond_broadcast(&s->main_cond);
	pthread_mutex_unlock(&s->lock);
}

static void *reader_main(void *arg)
{
	struct hoist__stream *s = arg;
	struct reader_stats rs = {0, 0};
	while (!atomic_load(&s->stop)) {
		size_t i = atomic_fetch_add(&s->next_chunk, 1);
		if (i >= s->nchunks)
			break;
		enum hoist_status st = reader_chunk(s, &s->chunks[i], &rs);
		if (st != HOIST_OK) {
			stream_fail(s, st);
			break;
		}
	}
	pthread_mutex_lock(&s->lock);
	s->stats.read_s += rs.read_s;
	s->stats.wait_s += rs.wait_s;
	pthread_mutex_unlock(&s->lock);
	worker_exit(s);
	return NULL;
}

/* ---- copy engines ------------------------------------------------------------- */

static enum hoist_status engine_submit(struct engine *e, const struct qitem *q, unsigned stream)
{
	struct hoist__stream *s = e->s;
	const struct chunk *c = &s->chunks[q->chunk];
	const unsigned char *data = s->ring + q->slot * s->slot_bytes + q->data;
	for (size_t i = 0; i < c->npieces; i++) {
		const struct piece *p = &s->pieces[c->piece0 + i];
		enum hoist_status st =
		        e->dev->ops->copy_async(e->dev, stream, p->dst, data + p->src, p->len);
		if (st != HOIST_OK)
			return st;
	}
	return e->dev->ops->event_record(e->dev, e->ev[q->slot], stream);
}

static void engine_error(struct engine *e, const struct qitem *q, enum hoist_status st)
{
	const struct chunk *c = &e->s->chunks[q->chunk];
	hoist__error_prefix("%s: tensor \"%s\" (bytes at offset %llu)", source_of(e->s, c)->path,
	                    seg_name(e->s, e->s->pieces[c->piece0].tag),
	                    (unsigned long long)c->off);
	stream_fail(e->s, st);
}

static void *engine_main(void *arg)
{
	struct engine *e = arg;
	struct hoist__stream *s = e->s;
	/* In flight, oldest first: at most one entry per slot. */
	struct qitem *fly = hoist__calloc(s->nslots, sizeof *fly);
	size_t fhead = 0, fcount = 0, submitted = 0;
	unsigned stream = 0;
	double busy_since = 0;
	if (!fly) {
		hoist__error(HOIST_ERR_NOMEM, "%s: out of memory starting the copy engine",
		             e->dev->name);
		stream_fail(s, HOIST_ERR_NOMEM);
	}
	pthread_mutex_lock(&s->lock);
	while (fly && !atomic_load(&s->stop)) {
		if (e->qcount > 0) {
			struct qitem q = e->queue[e->qhead];
			e->qhead = (e->qhead + 1) % s->nslots;
			e->qcount--;
			pthread_mutex_unlock(&s->lock);
			enum hoist_status st = engine_submit(e, &q, stream);
			stream = (stream + 1) % e->dev->streams;
			pthread_mutex_lock(&s->lock);
			if (st != HOIST_OK) {
				pthread_mutex_unlock(&s->lock);
				engine_error(e, &q, st);
				pthread_mutex_lock(&s->lock);
				/* its slot may still be read by earlier copies: freed at the end */
				break;
			}
			if (fcount == 0)
				busy_since = hoist__now();
			fly[(fhead + fcount++) % s->nslots] = q;
			submitted++;
			continue;
		}
		if (fcount > 0) {
			struct qitem q = fly[fhead];
			bool done = false;
			pthread_mutex_unlock(&s->lock);
			enum hoist_status st =
			        e->dev->ops->event_wait(e->dev, e->ev[q.slot], 0.02, &done);
			if (st != HOIST_OK) {
				engine_error(e, &q, st);
				pthread_mutex_lock(&s->lock);
				break;
			}
			if (done) {
				fhead = (fhead + 1) % s->nslots;
				fcount--;
				if (fcount == 0)
					e->busy += hoist__now() - busy_since;
				atomic_fetch_add(&s->bytes_done, s->chunks[q.chunk].out_len);
				release_slot(s, q.slot);
			}
			pthread_mutex_lock(&s->lock);
			continue;
		}
		if (submitted == e->expected)
			break;
		pthread_cond_wait(&e->cond, &s->lock);
	}
	pthread_mutex_unlock(&s->lock);
	if (fcount > 0) {
		/* Stopping early: copies may still read staging; wait for all of them. */
		e->busy += hoist__now() - busy_since;
		enum hoist_status st = e->dev->ops->synchronize(e->dev);
		if (st != HOIST_OK)
			stream_fail(s, st);
	}
	hoist__free(fly);
	worker_exit(s);
	return NULL;
}

/* ---- prepare, run, free ----------------------------------------------------------- */

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
	s->slot_bytes = (size_t)HOIST__MIN(s->chunk_bytes, longest) + SLOT_SLACK;
	s->slot_bytes = (s->slot_bytes + CHUNK_ALIGN - 1) / CHUNK_ALIGN * CHUNK_ALIGN;
	s->nslots = (size_t)HOIST__MAX(2, staging / s->chunk_bytes);
	s->nslots = HOIST__MIN(s->nslots, HOIST__MAX(2, nstaged));
	size_t total;
	if (__builtin_mul_overflow(s->slot_bytes, s->nslots, &total)) {
		st = hoist__error(HOIST_ERR_INVALID, "staging ring too large");
		goto out;
	}
	const char *how = "";
	st = s->ring_dev->ops->host_alloc(s->ring_dev, total, (void **)&s->ring, &how);
	if (st != HOIST_OK) {
		s->ring = NULL;
		hoist__error_prefix("staging ring of %zu x %zu bytes", s->nslots, s->slot_bytes);
		goto out;
	}
	snprintf(s->stats.staging, sizeof s->stats.staging, "%s", how);
	s->free_slots = hoist__calloc(s->nslots, sizeof *s->free_slots);
	if (!s->free_slots) {
		st = hoist__error(HOIST_ERR_NOMEM, "out of memory for the staging ring");
		goto out;
	}
	for (size_t k = 0; k < s->nslots; k++)
		s->free_slots[s->nfree++] = s->nslots - 1 - k;
	for (size_t i = 0; i < job->ntargets && st == HOIST_OK; i++) {
		struct hoist__dev *dev = job->targets[i];
		if (!used[i] || dev->host_addressable)
			continue;
		struct engine *e = hoist__calloc(1, sizeof *e);
		if (!e) {
			st = hoist__error(HOIST_ERR_NOMEM, "out of memory for a copy engine");
			break;
		}
		pthread_cond_init(&e->cond, NULL);
		s->engines[i] = e;
		s->stats.engines = true;
		e->s = s;
		e->dev = dev;
		e->ev = hoist__calloc(s->nslots, sizeof *e->ev);
		e->queue = hoist__calloc(s->nslots, sizeof *e->queue);
		if (!e->ev || !e->queue) {
			st = hoist__error(HOIST_ERR_NOMEM, "out of memory for a copy engine");
			break;
		}
		for (size_t k = 0; k < s->nslots && st == HOIST_OK; k++)
			st = dev->ops->event_create(dev, &e->ev[k]);
	}
	for (size_t c = 0; c < s->nchunks; c++)
		if (s->engines[s->chunks[c].target])
			s->engines[s->chunks[c].target]->expected++;
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
	if (!s->engines) {
		st = hoist__error(HOIST_ERR_NOMEM, "out of memory for the stream");
		goto out;
	}
	uint64_t staging = job->staging_bytes ? job->staging_bytes : DEFAULT_STAGING;
	s->chunk_bytes = job->chunk_bytes ? job->chunk_bytes : DEFAULT_CHUNK;
	/* At least two buffers, so reading and copying overlap. */
	if (s->chunk_bytes > staging / 2)
		s->chunk_bytes = staging / 2;
	s->chunk_bytes = HOIST__MAX(CHUNK_ALIGN, s->chunk_bytes / CHUNK_ALIGN * CHUNK_ALIGN);
	st = make_chunks(s);
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
	t->readers = (unsigned)HOIST__MIN((size_t)(job->threads ? job->threads : default_threads()),
	                                  s->nchunks);
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

/* Starts a worker thread, counted in s->active. */
static bool start(struct hoist__stream *s, pthread_t *thread, void *(*fn)(void *), void *arg,
                  const char *what)
{
	pthread_mutex_lock(&s->lock);
	s->active++;
	pthread_mutex_unlock(&s->lock);
	int rc = pthread_create(thread, NULL, fn, arg);
	if (rc != 0) {
		worker_exit(s);
		hoist__error(HOIST_ERR_NOMEM, "cannot start a %s thread: %s", what, strerror(rc));
		stream_fail(s, HOIST_ERR_NOMEM);
		return false;
	}
	return true;
}

enum hoist_status hoist__stream_run(struct hoist__stream *s)
{
	double t0 = hoist__now();
	unsigned nreaders = s->stats.readers;
	s->readers = hoist__calloc(nreaders ? nreaders : 1, sizeof *s->readers);
	if (!s->readers)
		return hoist__error(HOIST_ERR_NOMEM, "out of memory starting the readers");
	for (size_t i = 0; i < s->job->ntargets && !atomic_load(&s->stop); i++) {
		struct engine *e = s->engines[i];
		if (e && e->expected > 0)
			e->started = start(s, &e->thread, engine_main, e, "copy engine");
	}
	for (unsigned i = 0; i < nreaders && !atomic_load(&s->stop); i++) {
		if (!start(s, &s->readers[i], reader_main, s, "reader"))
			break;
		s->readers_started++;
	}
	bool cancel = false;
	double last = 0;
	pthread_mutex_lock(&s->lock);
	while (s->active > 0) {
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += (long)(PROGRESS_INTERVAL * 1e9);
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&s->main_cond, &s->lock, &until);
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
	if (!cancel && s->status == HOIST_OK)
		cancel = progress(s);
	for (unsigned i = 0; i < s->readers_started; i++)
		pthread_join(s->readers[i], NULL);
	for (size_t i = 0; i < s->job->ntargets; i++)
		if (s->engines[i] && s->engines[i]->started)
			pthread_join(s->engines[i]->thread, NULL);
	s->stats.wall = hoist__now() - t0;
	s->stats.landed = atomic_load(&s->bytes_done);
	for (size_t i = 0; i < s->job->ntargets; i++)
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
			for (size_t k = 0; k < s->nslots; k++)
				if (e->ev[k])
					e->dev->ops->event_destroy(e->dev, e->ev[k]);
		hoist__free(e->ev);
		hoist__free(e->queue);
		pthread_cond_destroy(&e->cond);
		hoist__free(e);
	}
	hoist__free(s->engines);
	if (s->ring)
		s->ring_dev->ops->host_free(s->ring_dev, s->ring, s->slot_bytes * s->nslots);
	hoist__free(s->free_slots);
	hoist__free(s->chunks);
	hoist__free(s->pieces);
	hoist__free(s->readers);
	pthread_cond_destroy(&s->slot_cond);
	pthread_cond_destroy(&s->main_cond);
	pthread_mutex_destroy(&s->lock);
	hoist__free(s);
}
