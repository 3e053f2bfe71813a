/* pipeline.c - hoist_model_load: bytes from the files to their devices.
 *
 * The tensors bound for one device are read by file range, not by tensor: tensors of
 * a shard that lie back to back and go to the same device form one range, cut into
 * chunks (default 32 MiB). A pool of reader threads takes chunks in file order and
 * preads each into a free buffer of a bounded ring of staging buffers (pinned, from
 * the device's backend); a copy engine thread per device queues asynchronous copies
 * from staged chunks into the device's single arena, spread over its streams, and
 * frees each buffer when the event after its copies completes. Readers block when no
 * buffer is free, so host memory is the ring plus metadata, whatever the model.
 *
 * The cpu target (pageable or pinned arena) has no copy engine: a chunk holding one
 * tensor's bytes is read straight into the arena, which is the fastest path on a CPU
 * (one copy, by the kernel); merged small tensors, conversions and O_DIRECT chunks
 * go through a staging buffer and are copied into place by the reader.
 *
 * Conversion (opt->dtype) happens in the reader after the read: a converting
 * tensor's chunks are cut on element boundaries and hold no other tensor.
 *
 * The calling thread waits with a timeout, calls the progress callback at least
 * every 100 ms, and on cancellation or any worker's error stops the workers, waits
 * for copies in flight, and frees everything. */
#include "backend.h"
#include "plan.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_CHUNK (32ull << 20)
#define DEFAULT_STAGING (256ull << 20)
#define DIO_ALIGN 4096ull
/* Slack per staging buffer: an O_DIRECT read of a chunk reads the aligned superset
 * (up to one block each side), and a converting chunk's raw bytes start aligned. */
#define SLOT_SLACK (3 * DIO_ALIGN)
/* cpu targets: a tensor at least this large is its own range, read straight into
 * the arena; smaller ones are merged and staged (one read for many tensors). */
#define HOST_DIRECT_MIN (256ull << 10)
#define PROGRESS_INTERVAL 0.05

const char *const hoist__phase_names[HOIST__PHASE_COUNT] = {"open", "plan", "allocate", "stream",
							    "finalize"};

struct mdev {
	struct hoist_device device;
	struct hoist__dev *dev; /* NULL for disk and for mapped cpu */
	uint64_t arena, size;   /* device address and size of the arena (0: none) */
	uint64_t bytes;         /* tensor bytes placed here */
	bool mmap;
};

struct fetched {
	size_t devi;
	uint64_t addr, size;
};

struct hoist_model {
	const struct hoist_checkpoint *ckpt;
	struct hoist_options opt; /* the load's options; strings not kept */
	enum hoist_dtype dtype;
	size_t ntensors;
	struct hoist_tensor *tensors;
	uint64_t *addr; /* device address per tensor */
	int *devi;      /* index into devs per tensor; -1: disk */
	struct mdev devs[HOIST__MAX_DEVICES + 2];
	size_t ndevs;
	void **maps; /* HOIST_HOST_MMAP: each shard's mapping (NULL if unmapped) */
	size_t *map_len;
	size_t nshards;
	struct fetched *fetched;
	size_t nfetched, fcap;
	struct hoist__report report;
};

const struct hoist__report *hoist__model_report(const struct hoist_model *model)
{
	return &model->report;
}

struct hoist__report *hoist__model_report_mut(struct hoist_model *model)
{
	return &model->report;
}

/* ---- the work: chunks of file ranges ---------------------------------------------- */

struct seg {
	uint64_t src; /* offset of its bytes in the chunk's data (after conversion) */
	uint64_t dst; /* device address */
	uint64_t len; /* bytes landed */
	size_t tensor;
};

struct chunk {
	uint32_t shard;
	uint32_t devi;
	uint64_t off, len; /* file range */
	size_t seg0, nseg;
	uint64_t out_len;               /* bytes landed (len unless converting) */
	enum hoist_dtype from, to;      /* NONE: no conversion */
	bool direct;                    /* read straight into a host arena */
};

struct qitem {
	size_t chunk, slot;
	uint64_t data; /* offset of the chunk's data in its slot */
};

struct pipe;

struct engine {
	struct pipe *p;
	size_t devi;
	struct hoist__dev *dev;
	struct hoist__event **ev; /* one per staging slot */
	struct qitem *queue;      /* ring of nslots: at most every slot waits here */
	size_t qhead, qcount;
	pthread_cond_t cond;
	size_t expected, landed;
	double busy;
	pthread_t thread;
	bool started;
};

struct pipe {
	struct hoist_model *m;
	const struct hoist_checkpoint *ckpt;
	struct chunk *chunks;
	size_t nchunks, ccap;
	struct seg *segs;
	size_t nsegs, scap;
	int *fds;
	bool direct_io;
	uint64_t chunk_bytes;
	unsigned char *ring;
	size_t slot_bytes, nslots;
	struct hoist__dev *ring_dev;
	size_t *free_slots;
	size_t nfree;
	struct engine *engines[HOIST__MAX_DEVICES + 2]; /* by devi; NULL: no engine */
	atomic_size_t next_chunk;
	atomic_uint_fast64_t bytes_done;
	atomic_bool stop;

	pthread_mutex_t lock;
	pthread_cond_t slot_cond, main_cond;
	unsigned active; /* workers still running */
	enum hoist_status status;
	char errmsg[1024];
	double read_s, wait_s; /* summed over readers */
	unsigned nreaders;
	pthread_t *readers;
	unsigned readers_started;
};

/* Records a worker's failure (first one wins) and stops everyone. */
static void pipe_fail(struct pipe *p, enum hoist_status st)
{
	pthread_mutex_lock(&p->lock);
	if (p->status == HOIST_OK) {
		p->status = st;
		snprintf(p->errmsg, sizeof p->errmsg, "%s", hoist_errmsg());
	}
	atomic_store(&p->stop, true);
	pthread_cond_broadcast(&p->slot_cond);
	pthread_cond_broadcast(&p->main_cond);
	for (size_t i = 0; i < HOIST__ARRAY_SIZE(p->engines); i++)
		if (p->engines[i])
			pthread_cond_broadcast(&p->engines[i]->cond);
	pthread_mutex_unlock(&p->lock);
}

static enum hoist_status push_seg(struct pipe *p, struct seg s)
{
	if (p->nsegs == p->scap) {
		size_t cap = p->scap ? 2 * p->scap : 256;
		struct seg *n = hoist__reallocarray(p->segs, cap, sizeof *n);
		if (!n)
			return hoist__error(HOIST_ERR_NOMEM, "out of memory planning the reads");
		p->segs = n;
		p->scap = cap;
	}
	p->segs[p->nsegs++] = s;
	return HOIST_OK;
}

static enum hoist_status push_chunk(struct pipe *p, struct chunk c)
{
	if (p->nchunks == p->ccap) {
		size_t cap = p->ccap ? 2 * p->ccap : 64;
		struct chunk *n = hoist__reallocarray(p->chunks, cap, sizeof *n);
		if (!n)
			return hoist__error(HOIST_ERR_NOMEM, "out of memory planning the reads");
		p->chunks = n;
		p->ccap = cap;
	}
	p->chunks[p->nchunks++] = c;
	return HOIST_OK;
}

/* Cuts a range of back-to-back non-converting tensors [t0, t1) of one shard and
 * device into chunks of at most chunk_bytes. */
static enum hoist_status cut_range(struct pipe *p, size_t t0, size_t t1)
{
	const struct hoist_model *m = p->m;
	const struct hoist_tensor_info *first = hoist_checkpoint_tensor(p->ckpt, t0);
	const struct hoist_tensor_info *last = hoist_checkpoint_tensor(p->ckpt, t1 - 1);
	uint64_t start = first->offset, end = last->offset + last->nbytes;
	size_t t = t0;
	bool host = m->devs[m->devi[t0]].dev->host_addressable;
	for (uint64_t c = start; c < end; c += p->chunk_bytes) {
		uint64_t ce = HOIST__MIN(end, c + p->chunk_bytes);
		struct chunk ch = {.shard = first->shard, .devi = (uint32_t)m->devi[t0], .off = c,
				   .len = ce - c, .seg0 = p->nsegs, .out_len = ce - c};
		while (t < t1) {
			const struct hoist_tensor_info *ti = hoist_checkpoint_tensor(p->ckpt, t);
			uint64_t a = HOIST__MAX(ti->offset, c), b = HOIST__MIN(ti->offset + ti->nbytes, ce);
			if (a < b) {
				enum hoist_status st = push_seg(
					p, (struct seg){a - c, m->addr[t] + (a - ti->offset), b - a, t});
				if (st != HOIST_OK)
					return st;
				ch.nseg++;
			}
			if (ti->offset + ti->nbytes > ce)
				break; /* continues in the next chunk */
			t++;
		}
		ch.direct = host && ch.nseg == 1 && !p->direct_io;
		enum hoist_status st = push_chunk(p, ch);
		if (st != HOIST_OK)
			return st;
	}
	return HOIST_OK;
}

/* Chunks of one converting tensor, on element boundaries, sized so the raw and the
 * converted bytes fit one staging buffer together. */
static enum hoist_status cut_converting(struct pipe *p, size_t t, enum hoist_dtype to)
{
	const struct hoist_tensor_info *ti = hoist_checkpoint_tensor(p->ckpt, t);
	uint64_t in = hoist_dtype_bits(ti->dtype) / 8, out = hoist_dtype_bits(to) / 8;
	uint64_t per = HOIST__MAX(1, p->chunk_bytes / (in + out));
	for (uint64_t e = 0; e < ti->numel; e += per) {
		uint64_t n = HOIST__MIN(per, ti->numel - e);
		struct chunk ch = {.shard = ti->shard, .devi = (uint32_t)p->m->devi[t],
				   .off = ti->offset + e * in, .len = n * in, .seg0 = p->nsegs,
				   .nseg = 1, .out_len = n * out, .from = ti->dtype, .to = to};
		enum hoist_status st = push_seg(p, (struct seg){0, p->m->addr[t] + e * out, n * out, t});
		if (st == HOIST_OK)
			st = push_chunk(p, ch);
		if (st != HOIST_OK)
			return st;
	}
	return HOIST_OK;
}

static bool converts(const struct hoist_model *m, size_t t)
{
	const struct hoist_tensor_info *ti = hoist_checkpoint_tensor(m->ckpt, t);
	return hoist__loaded_dtype(ti, m->dtype) != ti->dtype;
}

/* Every streamed tensor's bytes, as chunks in file order. */
static enum hoist_status make_chunks(struct pipe *p)
{
	const struct hoist_model *m = p->m;
	size_t n = m->ntensors;
	for (size_t t = 0; t < n;) {
		const struct hoist_tensor_info *ti = hoist_checkpoint_tensor(p->ckpt, t);
		int d = m->devi[t];
		if (d < 0 || m->devs[d].mmap || ti->nbytes == 0) {
			t++;
			continue;
		}
		if (converts(m, t)) {
			enum hoist_status st = cut_converting(p, t, m->tensors[t].dtype);
			if (st != HOIST_OK)
				return st;
			t++;
			continue;
		}
		bool host = m->devs[d].dev->host_addressable;
		size_t u = t + 1;
		uint64_t end = ti->offset + ti->nbytes;
		if (!(host && ti->nbytes >= HOST_DIRECT_MIN)) {
			while (u < n) {
				const struct hoist_tensor_info *ui = hoist_checkpoint_tensor(p->ckpt, u);
				if (m->devi[u] != d || ui->shard != ti->shard || ui->offset != end ||
				    ui->nbytes == 0 || converts(m, u) ||
				    (host && ui->nbytes >= HOST_DIRECT_MIN))
					break;
				end += ui->nbytes;
				u++;
			}
		}
		enum hoist_status st = cut_range(p, t, u);
		if (st != HOIST_OK)
			return st;
		t = u;
	}
	return HOIST_OK;
}

/* ---- reading -------------------------------------------------------------------- */

static const char *shard_name(const struct pipe *p, uint32_t shard)
{
	return hoist_checkpoint_shard_path(p->ckpt, shard);
}

static enum hoist_status read_fail(struct pipe *p, const struct chunk *c, uint64_t at, int err)
{
	const struct seg *s = &p->segs[c->seg0];
	const char *name = hoist_checkpoint_tensor(p->ckpt, s->tensor)->name;
	return hoist__error(HOIST_ERR_IO, "%s: tensor \"%s\": reading %llu bytes at offset %llu: %s",
			    shard_name(p, c->shard), name, (unsigned long long)c->len,
			    (unsigned long long)at, err ? strerror(err) : "the file ends early");
}

/* Reads chunk c into buf. With O_DIRECT, reads the block-aligned superset (buf must
 * have SLOT_SLACK to spare) and sets *data to where the chunk's bytes start. */
static enum hoist_status read_chunk(struct pipe *p, const struct chunk *c, unsigned char *buf,
				    uint64_t *data)
{
	int fd = p->fds[c->shard];
	if (!p->direct_io) {
		*data = 0;
		if (hoist__pread_full(fd, buf, c->len, c->off) != 0)
			return read_fail(p, c, c->off, errno);
		return HOIST_OK;
	}
	uint64_t astart = c->off & ~(DIO_ALIGN - 1);
	uint64_t aend = (c->off + c->len + DIO_ALIGN - 1) & ~(DIO_ALIGN - 1);
	uint64_t got = 0;
	*data = c->off - astart;
	while (astart + got < c->off + c->len) {
		ssize_t n = hoist__pread(fd, buf + got, aend - astart - got, astart + got);
		if (n < 0)
			return read_fail(p, c, astart + got, errno);
		if (n == 0)
			return read_fail(p, c, astart + got, 0);
		got += (uint64_t)n;
		/* A read that ends inside a block is the end of the file (O_DIRECT reads
		 * return whole blocks otherwise); before the range's end, it is an error. */
		if (astart + got < c->off + c->len && got % DIO_ALIGN != 0)
			return read_fail(p, c, astart + got, 0);
	}
	return HOIST_OK;
}

static void release_slot(struct pipe *p, size_t slot)
{
	pthread_mutex_lock(&p->lock);
	p->free_slots[p->nfree++] = slot;
	pthread_cond_signal(&p->slot_cond);
	pthread_mutex_unlock(&p->lock);
}

/* Lands a staged chunk in a host arena (the reader does the copy). */
static void land_on_host(struct pipe *p, const struct chunk *c, const unsigned char *data)
{
	for (size_t i = 0; i < c->nseg; i++) {
		const struct seg *s = &p->segs[c->seg0 + i];
		void *dst = (void *)(uintptr_t)s->dst;
		if (c->from != HOIST_DTYPE_NONE)
			hoist__convert(c->from, c->to, dst, data, c->len / (hoist_dtype_bits(c->from) / 8));
		else
			memcpy(dst, data + s->src, s->len);
	}
}

struct reader_stats {
	double read_s, wait_s;
};

static enum hoist_status reader_chunk(struct pipe *p, const struct chunk *c, struct reader_stats *rs)
{
	double t0 = hoist__now();
	if (c->direct) {
		const struct seg *s = &p->segs[c->seg0];
		if (hoist__pread_full(p->fds[c->shard], (void *)(uintptr_t)s->dst, c->len, c->off) != 0)
			return read_fail(p, c, c->off, errno);
		rs->read_s += hoist__now() - t0;
		atomic_fetch_add(&p->bytes_done, c->out_len);
		return HOIST_OK;
	}
	pthread_mutex_lock(&p->lock);
	while (p->nfree == 0 && !atomic_load(&p->stop))
		pthread_cond_wait(&p->slot_cond, &p->lock);
	if (atomic_load(&p->stop)) {
		pthread_mutex_unlock(&p->lock);
		return HOIST_OK;
	}
	size_t slot = p->free_slots[--p->nfree];
	pthread_mutex_unlock(&p->lock);
	double t1 = hoist__now();
	rs->wait_s += t1 - t0;
	unsigned char *buf = p->ring + slot * p->slot_bytes;
	unsigned char *raw = buf;
	uint64_t out_off = 0;
	if (c->from != HOIST_DTYPE_NONE)
		raw = buf + ((c->out_len + DIO_ALIGN - 1) & ~(DIO_ALIGN - 1));
	uint64_t data;
	enum hoist_status st = read_chunk(p, c, raw, &data);
	rs->read_s += hoist__now() - t1;
	if (st != HOIST_OK) {
		release_slot(p, slot);
		return st;
	}
	struct engine *e = p->engines[c->devi];
	if (!e) {
		land_on_host(p, c, raw + data);
		release_slot(p, slot);
		atomic_fetch_add(&p->bytes_done, c->out_len);
		return HOIST_OK;
	}
	if (c->from != HOIST_DTYPE_NONE)
		hoist__convert(c->from, c->to, buf, raw + data, c->len / (hoist_dtype_bits(c->from) / 8));
	else
		out_off = data;
	pthread_mutex_lock(&p->lock);
	e->queue[(e->qhead + e->qcount) % p->nslots] = (struct qitem){(size_t)(c - p->chunks), slot, out_off};
	e->qcount++;
	pthread_cond_signal(&e->cond);
	pthread_mutex_unlock(&p->lock);
	return HOIST_OK;
}

static void worker_exit(struct pipe *p)
{
	pthread_mutex_lock(&p->lock);
	p->active--;
	pthread_cond_broadcast(&p->main_cond);
	pthread_mutex_unlock(&p->lock);
}

static void *reader_main(void *arg)
{
	struct pipe *p = arg;
	struct reader_stats rs = {0, 0};
	while (!atomic_load(&p->stop)) {
		size_t i = atomic_fetch_add(&p->next_chunk, 1);
		if (i >= p->nchunks)
			break;
		enum hoist_status st = reader_chunk(p, &p->chunks[i], &rs);
		if (st != HOIST_OK) {
			pipe_fail(p, st);
			break;
		}
	}
	pthread_mutex_lock(&p->lock);
	p->read_s += rs.read_s;
	p->wait_s += rs.wait_s;
	pthread_mutex_unlock(&p->lock);
	worker_exit(p);
	return NULL;
}

/* ---- copy engines ------------------------------------------------------------- */

static enum hoist_status engine_submit(struct engine *e, const struct qitem *q, unsigned stream)
{
	struct pipe *p = e->p;
	const struct chunk *c = &p->chunks[q->chunk];
	const unsigned char *data = p->ring + q->slot * p->slot_bytes + q->data;
	for (size_t i = 0; i < c->nseg; i++) {
		const struct seg *s = &p->segs[c->seg0 + i];
		enum hoist_status st = e->dev->ops->copy_async(e->dev, stream, s->dst, data + s->src,
							       s->len);
		if (st != HOIST_OK)
			return st;
	}
	return e->dev->ops->event_record(e->dev, e->ev[q->slot], stream);
}

static void engine_error(struct engine *e, const struct qitem *q, enum hoist_status st)
{
	const struct chunk *c = &e->p->chunks[q->chunk];
	const struct hoist_tensor_info *ti =
		hoist_checkpoint_tensor(e->p->ckpt, e->p->segs[c->seg0].tensor);
	hoist__error_prefix("%s: tensor \"%s\" (bytes at offset %llu)", shard_name(e->p, c->shard),
			    ti->name, (unsigned long long)c->off);
	pipe_fail(e->p, st);
}

static void *engine_main(void *arg)
{
	struct engine *e = arg;
	struct pipe *p = e->p;
	/* In flight, oldest first: at most one entry per slot. */
	struct qitem *fly = hoist__calloc(p->nslots, sizeof *fly);
	size_t fhead = 0, fcount = 0, submitted = 0;
	unsigned stream = 0;
	double busy_since = 0;
	if (!fly) {
		hoist__error(HOIST_ERR_NOMEM, "%s: out of memory starting the copy engine",
			     e->dev->name);
		pipe_fail(p, HOIST_ERR_NOMEM);
	}
	pthread_mutex_lock(&p->lock);
	while (fly && !atomic_load(&p->stop)) {
		if (e->qcount > 0) {
			struct qitem q = e->queue[e->qhead];
			e->qhead = (e->qhead + 1) % p->nslots;
			e->qcount--;
			pthread_mutex_unlock(&p->lock);
			enum hoist_status st = engine_submit(e, &q, stream);
			stream = (stream + 1) % e->dev->streams;
			pthread_mutex_lock(&p->lock);
			if (st != HOIST_OK) {
				pthread_mutex_unlock(&p->lock);
				engine_error(e, &q, st);
				pthread_mutex_lock(&p->lock);
				/* its slot may still be read by earlier copies: freed at the end */
				break;
			}
			if (fcount == 0)
				busy_since = hoist__now();
			fly[(fhead + fcount++) % p->nslots] = q;
			submitted++;
			continue;
		}
		if (fcount > 0) {
			struct qitem q = fly[fhead];
			bool done = false;
			pthread_mutex_unlock(&p->lock);
			enum hoist_status st = e->dev->ops->event_wait(e->dev, e->ev[q.slot], 0.02, &done);
			if (st != HOIST_OK) {
				engine_error(e, &q, st);
				pthread_mutex_lock(&p->lock);
				break;
			}
			if (done) {
				fhead = (fhead + 1) % p->nslots;
				fcount--;
				if (fcount == 0)
					e->busy += hoist__now() - busy_since;
				atomic_fetch_add(&p->bytes_done, p->chunks[q.chunk].out_len);
				release_slot(p, q.slot);
				e->landed++;
			}
			pthread_mutex_lock(&p->lock);
			continue;
		}
		if (submitted == e->expected)
			break;
		pthread_cond_wait(&e->cond, &p->lock);
	}
	pthread_mutex_unlock(&p->lock);
	if (fcount > 0) {
		/* Stopping early: copies may still read staging; wait for all of them. */
		e->busy += hoist__now() - busy_since;
		enum hoist_status st = e->dev->ops->synchronize(e->dev);
		if (st != HOIST_OK)
			pipe_fail(p, st);
	}
	hoist__free(fly);
	worker_exit(p);
	return NULL;
}

/* ---- the model ------------------------------------------------------------------ */

static void unmap_all(struct hoist_model *m)
{
	if (!m->maps)
		return;
	for (size_t i = 0; i < m->nshards; i++)
		if (m->maps[i])
			munmap(m->maps[i], m->map_len[i]);
	hoist__free(m->maps);
	hoist__free(m->map_len);
	m->maps = NULL;
}

void hoist_model_free(struct hoist_model *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->nfetched; i++) {
		struct mdev *d = &m->devs[m->fetched[i].devi];
		d->dev->ops->free(d->dev, m->fetched[i].addr, m->fetched[i].size);
	}
	hoist__free(m->fetched);
	for (size_t i = 0; i < m->ndevs; i++) {
		struct mdev *d = &m->devs[i];
		if (d->dev) {
			if (d->arena)
				d->dev->ops->free(d->dev, d->arena, d->size);
			d->dev->ops->close(d->dev);
		}
	}
	unmap_all(m);
	hoist__free(m->tensors);
	hoist__free(m->addr);
	hoist__free(m->devi);
	hoist__free(m);
}

static int find_dev(const struct hoist_model *m, struct hoist_device dev)
{
	for (size_t i = 0; i < m->ndevs; i++)
		if (m->devs[i].device.kind == dev.kind && m->devs[i].device.index == dev.index)
			return (int)i;
	return -1;
}

/* Opens a device for the model (devs[] slot), without an arena. */
static enum hoist_status add_dev(struct hoist_model *m, struct hoist_device device, int *out)
{
	char name[24];
	if (m->ndevs == HOIST__ARRAY_SIZE(m->devs))
		return hoist__error(HOIST_ERR_INVALID, "too many devices");
	struct mdev *d = &m->devs[m->ndevs];
	memset(d, 0, sizeof *d);
	d->device = device;
	if (device.kind != HOIST_DEVICE_DISK &&
	    !(device.kind == HOIST_DEVICE_CPU && m->opt.host_memory == HOIST_HOST_MMAP)) {
		const struct hoist__backend *b = hoist__backend_for(device.kind);
		enum hoist_status st = b->open(&m->opt, device.index, &d->dev);
		if (st != HOIST_OK) {
			/* name the device, unless the backend's message already starts with it */
			size_t n = strlen(hoist_device_format(device, name, sizeof name));
			if (strncmp(hoist_errmsg(), name, n) != 0 || hoist_errmsg()[n] != ':')
				hoist__error_prefix("%s", name);
			return st;
		}
	}
	d->mmap = device.kind == HOIST_DEVICE_CPU && m->opt.host_memory == HOIST_HOST_MMAP;
	*out = (int)m->ndevs++;
	return HOIST_OK;
}

/* HOIST_HOST_MMAP: maps every shard holding a cpu tensor, read-only. */
static enum hoist_status map_shards(struct hoist_model *m, int cpu)
{
	m->nshards = hoist_checkpoint_shard_count(m->ckpt);
	m->maps = hoist__calloc(m->nshards ? m->nshards : 1, sizeof *m->maps);
	m->map_len = hoist__calloc(m->nshards ? m->nshards : 1, sizeof *m->map_len);
	if (!m->maps || !m->map_len)
		return hoist__error(HOIST_ERR_NOMEM, "out of memory mapping the shards");
	for (size_t t = 0; t < m->ntensors; t++) {
		const struct hoist_tensor_info *ti = hoist_checkpoint_tensor(m->ckpt, t);
		if (m->devi[t] != cpu || m->maps[ti->shard])
			continue;
		const char *path = hoist_checkpoint_shard_path(m->ckpt, ti->shard);
		uint64_t size = hoist_checkpoint_shard_size(m->ckpt, ti->shard);
		int fd = hoist__open(path, O_RDONLY);
		if (fd < 0)
			return hoist__error(HOIST_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
		void *map = mmap(NULL, size ? size : 1, PROT_READ, MAP_SHARED, fd, 0);
		int err = errno;
		hoist__close(fd);
		if (map == MAP_FAILED)
			return hoist__error(HOIST_ERR_IO, "%s: cannot map %llu bytes: %s", path,
					    (unsigned long long)size, strerror(err));
		m->maps[ti->shard] = map;
		m->map_len[ti->shard] = size ? size : 1;
	}
	return HOIST_OK;
}

static unsigned default_threads(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	if (n < 1)
		n = 1;
	return (unsigned)HOIST__MIN(16, 2 * n);
}

/* Calls the progress callback; true if it asked to stop. */
static bool progress(const struct hoist_options *opt, const char *phase, uint64_t done,
		     uint64_t total, double since)
{
	if (!opt || !opt->progress)
		return false;
	struct hoist_progress pr = {phase, done, total, hoist__now() - since};
	return opt->progress(&pr, opt->progress_arg) != 0;
}

static enum hoist_status cancelled(uint64_t done, uint64_t total)
{
	char a[32], b[32];
	return hoist__error(HOIST_ERR_CANCELLED, "load cancelled by the progress callback after %s of %s",
			    hoist__format_bytes(done, a, sizeof a), hoist__format_bytes(total, b, sizeof b));
}

/* Builds the model's devices, arenas and tensor table from the plan. */
static enum hoist_status build(struct hoist_model *m, const struct hoist_plan *plan)
{
	char name[24], b1[32], b2[32];
	size_t n = m->ntensors;
	m->tensors = hoist__calloc(n ? n : 1, sizeof *m->tensors);
	m->addr = hoist__calloc(n ? n : 1, sizeof *m->addr);
	m->devi = hoist__calloc(n ? n : 1, sizeof *m->devi);
	if (!m->tensors || !m->addr || !m->devi)
		return hoist__error(HOIST_ERR_NOMEM, "out of memory for the table of %zu tensors", n);
	size_t pd = hoist_plan_device_count(plan);
	for (size_t i = 0; i < pd; i++) {
		struct hoist_device dev;
		uint64_t budget, bytes;
		int di;
		hoist_plan_device(plan, i, &dev, &budget, &bytes);
		if (find_dev(m, dev) >= 0)
			continue;
		enum hoist_status st = add_dev(m, dev, &di);
		if (st != HOIST_OK)
			return st;
		m->devs[di].size = dev.kind == HOIST_DEVICE_DISK || m->devs[di].mmap ? 0 : bytes;
	}
	for (size_t t = 0; t < n; t++) {
		const struct hoist_tensor_info *ti = hoist_checkpoint_tensor(m->ckpt, t);
		struct hoist_device dev = hoist_plan_tensor_device(plan, t);
		int di = find_dev(m, dev);
		if (di < 0)
			return hoist__error(HOIST_ERR_INVALID,
					    "the plan puts tensor \"%s\" on %s, which it does not list",
					    ti->name, hoist_device_format(dev, name, sizeof name));
		struct hoist_tensor *out = &m->tensors[t];
		out->name = ti->name;
		out->device = dev;
		out->dtype = hoist__loaded_dtype(ti, m->dtype);
		out->ndim = ti->ndim;
		out->shape = ti->shape;
		out->nbytes = hoist__loaded_nbytes(ti, m->dtype);
		struct mdev *d = &m->devs[di];
		/* disk holds the file's bytes as stored (as the plan counts them); reads and
		 * fetches convert them */
		d->bytes += dev.kind == HOIST_DEVICE_DISK ? ti->nbytes : out->nbytes;
		m->devi[t] = dev.kind == HOIST_DEVICE_DISK ? -1 : di;
		if (dev.kind == HOIST_DEVICE_DISK || d->mmap)
			continue;
		uint64_t off = hoist_plan_tensor_offset(plan, t), end;
		if (!hoist__add_u64(off, out->nbytes, &end) || end > d->size)
			return hoist__error(HOIST_ERR_INVALID,
					    "the plan puts tensor \"%s\" (%s) at offset %llu of %s's "
					    "arena of %s",
					    ti->name, hoist__format_bytes(out->nbytes, b1, sizeof b1),
					    (unsigned long long)off,
					    hoist_device_format(dev, name, sizeof name),
					    hoist__format_bytes(d->size, b2, sizeof b2));
		m->addr[t] = off; /* arena base added once allocated */
	}
	return HOIST_OK;
}

static enum hoist_status allocate(struct hoist_model *m)
{
	for (size_t i = 0; i < m->ndevs; i++) {
		struct mdev *d = &m->devs[i];
		if (!d->dev || d->size == 0)
			continue;
		enum hoist_status st = d->dev->ops->alloc(d->dev, d->size, &d->arena);
		if (st != HOIST_OK) {
			d->arena = 0;
			return st;
		}
	}
	int cpu = -1;
	for (size_t i = 0; i < m->ndevs; i++)
		if (m->devs[i].mmap)
			cpu = (int)i;
	if (cpu >= 0) {
		enum hoist_status st = map_shards(m, cpu);
		if (st != HOIST_OK)
			return st;
	}
	for (size_t t = 0; t < m->ntensors; t++) {
		int di = m->devi[t];
		if (di < 0)
			continue;
		const struct mdev *d = &m->devs[di];
		if (d->mmap) {
			const struct hoist_tensor_info *ti = hoist_checkpoint_tensor(m->ckpt, t);
			m->addr[t] = (uint64_t)(uintptr_t)((char *)m->maps[ti->shard] + ti->offset);
		} else {
			m->addr[t] += d->arena;
		}
		m->tensors[t].data = (void *)(uintptr_t)m->addr[t];
	}
	return HOIST_OK;
}

static void pipe_destroy(struct pipe *p)
{
	for (size_t i = 0; i < HOIST__ARRAY_SIZE(p->engines); i++) {
		struct engine *e = p->engines[i];
		if (!e)
			continue;
		if (e->ev)
			for (size_t s = 0; s < p->nslots; s++)
				if (e->ev[s])
					e->dev->ops->event_destroy(e->dev, e->ev[s]);
		hoist__free(e->ev);
		hoist__free(e->queue);
		pthread_cond_destroy(&e->cond);
		hoist__free(e);
	}
	if (p->ring)
		p->ring_dev->ops->host_free(p->ring_dev, p->ring, p->slot_bytes * p->nslots);
	if (p->fds)
		for (size_t i = 0; i < hoist_checkpoint_shard_count(p->ckpt); i++)
			if (p->fds[i] >= 0)
				hoist__close(p->fds[i]);
	hoist__free(p->fds);
	hoist__free(p->free_slots);
	hoist__free(p->chunks);
	hoist__free(p->segs);
	hoist__free(p->readers);
	pthread_cond_destroy(&p->slot_cond);
	pthread_cond_destroy(&p->main_cond);
	pthread_mutex_destroy(&p->lock);
}

/* Opens the shards that hold streamed chunks (O_DIRECT if asked and possible). */
static enum hoist_status open_shards(struct pipe *p, const struct hoist_options *opt)
{
	size_t ns = hoist_checkpoint_shard_count(p->ckpt);
	p->fds = hoist__calloc(ns ? ns : 1, sizeof *p->fds);
	if (!p->fds)
		return hoist__error(HOIST_ERR_NOMEM, "out of memory opening the shards");
	for (size_t i = 0; i < ns; i++)
		p->fds[i] = -1;
	p->direct_io = opt->direct;
	for (size_t c = 0; c < p->nchunks; c++) {
		uint32_t s = p->chunks[c].shard;
		if (p->fds[s] >= 0)
			continue;
		const char *path = shard_name(p, s);
		int fd = -1;
		if (p->direct_io) {
			fd = hoist__open(path, O_RDONLY | O_DIRECT);
			if (fd < 0 && errno == EINVAL) {
				/* the file system (tmpfs, ...) has no O_DIRECT: read buffered */
				p->direct_io = false;
				snprintf(p->m->report.note, sizeof p->m->report.note,
					 "O_DIRECT unsupported on %s's file system: buffered reads", path);
			}
		}
		if (fd < 0 && (!opt->direct || !p->direct_io))
			fd = hoist__open(path, O_RDONLY);
		if (fd < 0)
			return hoist__error(HOIST_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
		p->fds[s] = fd;
	}
	if (opt->direct && !p->direct_io) {
		/* Some shards may have been opened with O_DIRECT before one refused it:
		 * reopen them all buffered so the reads agree. */
		for (size_t i = 0; i < ns; i++) {
			if (p->fds[i] < 0)
				continue;
			hoist__close(p->fds[i]);
			p->fds[i] = hoist__open(shard_name(p, (uint32_t)i), O_RDONLY);
			if (p->fds[i] < 0)
				return hoist__error(HOIST_ERR_IO, "%s: cannot open: %s",
						    shard_name(p, (uint32_t)i), strerror(errno));
		}
		for (size_t c = 0; c < p->nchunks; c++)
			p->chunks[c].direct = p->chunks[c].nseg == 1 &&
					      p->chunks[c].from == HOIST_DTYPE_NONE &&
					      !p->engines[p->chunks[c].devi] &&
					      p->m->devs[p->chunks[c].devi].dev->host_addressable;
	}
	return HOIST_OK;
}

/* Staging ring and copy engines, sized to what the chunks need. */
static enum hoist_status prepare(struct pipe *p, uint64_t staging)
{
	struct hoist_model *m = p->m;
	bool staged = false;
	for (size_t c = 0; c < p->nchunks; c++)
		staged |= !p->chunks[c].direct;
	for (size_t i = 0; i < m->ndevs; i++) {
		struct mdev *d = &m->devs[i];
		if (d->dev && !d->dev->host_addressable && d->size > 0 && !p->ring_dev)
			p->ring_dev = d->dev;
	}
	if (!p->ring_dev)
		for (size_t i = 0; i < m->ndevs; i++)
			if (m->devs[i].dev && !p->ring_dev)
				p->ring_dev = m->devs[i].dev;
	snprintf(m->report.staging, sizeof m->report.staging, "none");
	if (!staged || !p->ring_dev)
		return HOIST_OK;
	/* No bigger or more buffers than the staged chunks can use. */
	uint64_t longest = 0;
	size_t nstaged = 0;
	for (size_t c = 0; c < p->nchunks; c++) {
		if (p->chunks[c].direct)
			continue;
		nstaged++;
		const struct chunk *ch = &p->chunks[c];
		longest = HOIST__MAX(longest, ch->from != HOIST_DTYPE_NONE ? ch->len + ch->out_len
									  : ch->len);
	}
	p->slot_bytes = (size_t)HOIST__MIN(p->chunk_bytes, longest) + SLOT_SLACK;
	p->slot_bytes = (p->slot_bytes + DIO_ALIGN - 1) & ~(size_t)(DIO_ALIGN - 1);
	p->nslots = (size_t)HOIST__MAX(2, staging / p->chunk_bytes);
	p->nslots = HOIST__MIN(p->nslots, HOIST__MAX(2, nstaged));
	size_t total;
	if (__builtin_mul_overflow(p->slot_bytes, p->nslots, &total))
		return hoist__error(HOIST_ERR_INVALID, "staging ring too large");
	const char *how = "";
	enum hoist_status st = p->ring_dev->ops->host_alloc(p->ring_dev, total, (void **)&p->ring, &how);
	if (st != HOIST_OK) {
		p->ring = NULL;
		hoist__error_prefix("staging ring of %zu x %zu bytes", p->nslots, p->slot_bytes);
		return st;
	}
	snprintf(m->report.staging, sizeof m->report.staging, "%s", how);
	p->free_slots = hoist__calloc(p->nslots, sizeof *p->free_slots);
	if (!p->free_slots)
		return hoist__error(HOIST_ERR_NOMEM, "out of memory for the staging ring");
	for (size_t s = 0; s < p->nslots; s++)
		p->free_slots[p->nfree++] = p->nslots - 1 - s;
	for (size_t i = 0; i < m->ndevs; i++) {
		struct mdev *d = &m->devs[i];
		if (!d->dev || d->dev->host_addressable || d->size == 0)
			continue;
		struct engine *e = hoist__calloc(1, sizeof *e);
		if (!e)
			return hoist__error(HOIST_ERR_NOMEM, "out of memory for a copy engine");
		pthread_cond_init(&e->cond, NULL);
		p->engines[i] = e;
		e->p = p;
		e->devi = i;
		e->dev = d->dev;
		e->ev = hoist__calloc(p->nslots, sizeof *e->ev);
		e->queue = hoist__calloc(p->nslots, sizeof *e->queue);
		if (!e->ev || !e->queue)
			return hoist__error(HOIST_ERR_NOMEM, "out of memory for a copy engine");
		for (size_t s = 0; s < p->nslots; s++) {
			st = d->dev->ops->event_create(d->dev, &e->ev[s]);
			if (st != HOIST_OK)
				return st;
		}
	}
	for (size_t c = 0; c < p->nchunks; c++)
		if (p->engines[p->chunks[c].devi])
			p->engines[p->chunks[c].devi]->expected++;
	return HOIST_OK;
}

/* Starts the workers, waits for them on the calling thread with progress, joins. */
static enum hoist_status run(struct pipe *p, const struct hoist_options *opt, unsigned threads,
			     uint64_t total, double t_stream)
{
	enum hoist_status st = HOIST_OK;
	p->nreaders = (unsigned)HOIST__MIN((size_t)threads, p->nchunks);
	p->readers = hoist__calloc(p->nreaders ? p->nreaders : 1, sizeof *p->readers);
	if (!p->readers)
		return hoist__error(HOIST_ERR_NOMEM, "out of memory starting the readers");
	for (size_t i = 0; i < HOIST__ARRAY_SIZE(p->engines); i++) {
		struct engine *e = p->engines[i];
		if (!e || e->expected == 0)
			continue;
		pthread_mutex_lock(&p->lock);
		p->active++;
		pthread_mutex_unlock(&p->lock);
		int rc = pthread_create(&e->thread, NULL, engine_main, e);
		if (rc != 0) {
			worker_exit(p);
			hoist__error(HOIST_ERR_NOMEM, "cannot start a copy engine thread: %s", strerror(rc));
			pipe_fail(p, HOIST_ERR_NOMEM);
			break;
		}
		e->started = true;
	}
	for (unsigned i = 0; i < p->nreaders && !atomic_load(&p->stop); i++) {
		pthread_mutex_lock(&p->lock);
		p->active++;
		pthread_mutex_unlock(&p->lock);
		int rc = pthread_create(&p->readers[i], NULL, reader_main, p);
		if (rc != 0) {
			worker_exit(p);
			hoist__error(HOIST_ERR_NOMEM, "cannot start a reader thread: %s", strerror(rc));
			pipe_fail(p, HOIST_ERR_NOMEM);
			break;
		}
		p->readers_started++;
	}
	bool cancel = false;
	double last = 0;
	pthread_mutex_lock(&p->lock);
	while (p->active > 0) {
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += (long)(PROGRESS_INTERVAL * 1e9);
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&p->main_cond, &p->lock, &until);
		double now = hoist__now();
		if (!cancel && now - last >= PROGRESS_INTERVAL && p->status == HOIST_OK) {
			last = now;
			pthread_mutex_unlock(&p->lock);
			cancel = progress(opt, "stream", atomic_load(&p->bytes_done), total, t_stream);
			pthread_mutex_lock(&p->lock);
			if (cancel) {
				atomic_store(&p->stop, true);
				pthread_cond_broadcast(&p->slot_cond);
				for (size_t i = 0; i < HOIST__ARRAY_SIZE(p->engines); i++)
					if (p->engines[i])
						pthread_cond_broadcast(&p->engines[i]->cond);
			}
		}
	}
	pthread_mutex_unlock(&p->lock);
	if (!cancel && p->status == HOIST_OK)
		cancel = progress(opt, "stream", atomic_load(&p->bytes_done), total, t_stream);
	for (unsigned i = 0; i < p->readers_started; i++)
		pthread_join(p->readers[i], NULL);
	for (size_t i = 0; i < HOIST__ARRAY_SIZE(p->engines); i++)
		if (p->engines[i] && p->engines[i]->started)
			pthread_join(p->engines[i]->thread, NULL);
	if (p->status != HOIST_OK)
		st = hoist__error(p->status, "%s", p->errmsg);
	else if (cancel)
		st = cancelled(atomic_load(&p->bytes_done), total);
	return st;
}

/* The stream phase's bounding link, from where the workers' time went. */
static void judge(struct hoist__report *r, const struct pipe *p, double wall)
{
	if (wall <= 0 || p->nchunks == 0) {
		snprintf(r->bound, sizeof r->bound, "none");
		return;
	}
	unsigned nr = p->nreaders ? p->nreaders : 1;
	r->read_busy = HOIST__MIN(1.0, p->read_s / nr / wall);
	r->staging_wait = HOIST__MIN(1.0, p->wait_s / nr / wall);
	r->copy_busy = 0;
	for (size_t i = 0; i < HOIST__ARRAY_SIZE(p->engines); i++)
		if (p->engines[i])
			r->copy_busy = HOIST__MAX(r->copy_busy, HOIST__MIN(1.0, p->engines[i]->busy / wall));
	bool engines = false;
	for (size_t i = 0; i < HOIST__ARRAY_SIZE(p->engines); i++)
		engines |= p->engines[i] != NULL;
	/* A device with copies in flight nearly all the time, at least as busy as the
	 * readers: the device copy is the slow link (readers then wait for buffers or
	 * run out of work early). Readers waiting for buffers while no device was that
	 * busy: the ring is too small to cover the hand-off. Otherwise the readers, i.e.
	 * storage (or the page cache), set the pace. */
	if (engines && r->copy_busy >= 0.8 && r->copy_busy >= r->read_busy)
		snprintf(r->bound, sizeof r->bound, "device copy");
	else if (r->staging_wait > 0.25)
		snprintf(r->bound, sizeof r->bound, "staging");
	else
		snprintf(r->bound, sizeof r->bound, "storage");
}

static void report_devices(struct hoist_model *m)
{
	struct hoist__report *r = &m->report;
	r->ndevices = 0;
	for (size_t i = 0; i < m->ndevs && r->ndevices < HOIST__ARRAY_SIZE(r->devices); i++) {
		/* the plan also lists devices it budgeted for and left empty */
		if (m->devs[i].bytes == 0 && !(i == 0 && m->ndevs == 1))
			continue;
		struct hoist__report_device *rd = &r->devices[r->ndevices++];
		hoist_device_format(m->devs[i].device, rd->name, sizeof rd->name);
		rd->bytes = m->devs[i].bytes;
		snprintf(rd->memory, sizeof rd->memory, "%s",
			 m->devs[i].mmap ? "mapped files (zero-copy)"
			 : m->devs[i].dev ? m->devs[i].dev->memory
					  : "left in its files");
	}
}

enum hoist_status hoist_model_load(const struct hoist_checkpoint *ckpt,
				   const struct hoist_plan *plan, const struct hoist_options *opt_in,
				   struct hoist_model **out)
{
	static const struct hoist_options defaults;
	const struct hoist_options *opt = opt_in ? opt_in : &defaults;
	struct hoist_plan *own_plan = NULL;
	struct hoist_model *m = NULL;
	struct pipe p;
	bool pipe_ready = false;
	enum hoist_status st = HOIST_OK;
	if (out)
		*out = NULL;
	if (!ckpt || !out)
		return hoist__error(HOIST_ERR_INVALID, "hoist_model_load: NULL checkpoint or out");
	if (opt->host_memory == HOIST_HOST_MMAP && opt->dtype != HOIST_DTYPE_NONE)
		return hoist__error(HOIST_ERR_INVALID,
				    "host memory \"mmap\" gives zero-copy views of the files: it cannot "
				    "convert to %s (drop --dtype or use pageable/pinned memory)",
				    hoist_dtype_name(opt->dtype) ? hoist_dtype_name(opt->dtype) : "?");
	if (opt->dtype != HOIST_DTYPE_NONE && opt->dtype != HOIST_F16 && opt->dtype != HOIST_BF16 &&
	    opt->dtype != HOIST_F32)
		return hoist__error(HOIST_ERR_INVALID, "dtype %s: loads convert only to F16, BF16 or F32",
				    hoist_dtype_name(opt->dtype) ? hoist_dtype_name(opt->dtype) : "?");

	/* A plan's offsets hold for one checkpoint at one dtype: loading by it otherwise
	 * would lay tensors over each other. */
	if (plan && hoist__plan_checkpoint(plan) != ckpt)
		return hoist__error(HOIST_ERR_INVALID,
				    "hoist_model_load: the plan was made for another checkpoint");
	if (plan && hoist__plan_dtype(plan) != opt->dtype)
		return hoist__error(HOIST_ERR_INVALID,
				    "hoist_model_load: the plan was made for %s%s, but the load asks "
				    "for %s%s: make the plan with the load's options",
				    hoist__plan_dtype(plan) ? "dtype " : "the stored dtypes",
				    hoist__plan_dtype(plan) ? hoist_dtype_name(hoist__plan_dtype(plan)) : "",
				    opt->dtype ? "dtype " : "the stored dtypes",
				    opt->dtype ? hoist_dtype_name(opt->dtype) : "");

	double t_plan = hoist__now();
	if (progress(opt, "plan", 0, 0, t_plan))
		return cancelled(0, 0);
	if (!plan) {
		st = hoist_plan_create(ckpt, opt, &own_plan);
		if (st != HOIST_OK)
			return st;
		plan = own_plan;
	}
	m = hoist__calloc(1, sizeof *m);
	if (!m) {
		st = hoist__error(HOIST_ERR_NOMEM, "out of memory for the model");
		goto out;
	}
	m->ckpt = ckpt;
	m->opt = *opt;
	m->opt.device = m->opt.device_map = m->opt.max_memory = NULL;
	m->opt.progress = NULL;
	m->opt.progress_arg = NULL;
	m->dtype = opt->dtype;
	m->ntensors = hoist_checkpoint_tensor_count(ckpt);
	struct hoist__report *r = &m->report;
	r->shards = hoist_checkpoint_shard_count(ckpt);
	r->tensors = m->ntensors;
	r->checkpoint_bytes = hoist_checkpoint_total_bytes(ckpt);
	r->dtype = opt->dtype;
	r->mmap = opt->host_memory == HOIST_HOST_MMAP;
	st = build(m, plan);
	if (st != HOIST_OK)
		goto out;
	r->seconds[HOIST__PHASE_PLAN] = hoist__now() - t_plan + (own_plan ? 0 : hoist__plan_seconds(plan));

	double t_alloc = hoist__now();
	if (progress(opt, "allocate", 0, 0, t_alloc)) {
		st = cancelled(0, 0);
		goto out;
	}
	st = allocate(m);
	if (st != HOIST_OK)
		goto out;

	memset(&p, 0, sizeof p);
	pthread_mutex_init(&p.lock, NULL);
	pthread_cond_init(&p.slot_cond, NULL);
	pthread_cond_init(&p.main_cond, NULL);
	pipe_ready = true;
	p.m = m;
	p.ckpt = ckpt;
	uint64_t staging = opt->staging_bytes ? opt->staging_bytes : DEFAULT_STAGING;
	p.chunk_bytes = opt->chunk_bytes ? opt->chunk_bytes : DEFAULT_CHUNK;
	/* At least two buffers, so reading and copying overlap. */
	if (p.chunk_bytes > staging / 2)
		p.chunk_bytes = staging / 2;
	p.chunk_bytes = HOIST__MAX(DIO_ALIGN, p.chunk_bytes & ~(DIO_ALIGN - 1));
	p.direct_io = opt->direct;
	st = make_chunks(&p);
	if (st == HOIST_OK)
		st = prepare(&p, staging);
	if (st == HOIST_OK)
		st = open_shards(&p, opt);
	if (st != HOIST_OK)
		goto out;
	r->seconds[HOIST__PHASE_ALLOCATE] = hoist__now() - t_alloc;

	uint64_t total = 0;
	for (size_t c = 0; c < p.nchunks; c++) {
		total += p.chunks[c].out_len;
		r->read_bytes += p.chunks[c].len;
		r->direct_chunks += p.chunks[c].direct;
	}
	r->moved_bytes = total;
	r->chunks = p.nchunks;
	r->threads = (unsigned)HOIST__MIN((size_t)(opt->threads ? opt->threads : default_threads()),
					  p.nchunks);
	r->chunk_bytes = p.chunk_bytes;
	r->slots = p.nslots;
	r->staging_bytes = p.nslots * p.slot_bytes;
	r->direct_io = p.direct_io;
	double t_stream = hoist__now();
	if (progress(opt, "stream", 0, total, t_stream)) {
		st = cancelled(0, total);
		goto out;
	}
	hoist__report_stream_begin(r);
	st = run(&p, opt, opt->threads ? opt->threads : default_threads(), total, t_stream);
	r->seconds[HOIST__PHASE_STREAM] = hoist__now() - t_stream;
	if (st != HOIST_OK)
		goto out;
	judge(r, &p, r->seconds[HOIST__PHASE_STREAM]);
	hoist__report_stream_end(r);

	double t_fin = hoist__now();
	for (size_t i = 0; i < m->ndevs && st == HOIST_OK; i++)
		if (m->devs[i].dev)
			st = m->devs[i].dev->ops->synchronize(m->devs[i].dev);
	if (st != HOIST_OK)
		goto out;
	pipe_destroy(&p);
	pipe_ready = false;
	report_devices(m);
	r->seconds[HOIST__PHASE_FINALIZE] = hoist__now() - t_fin;
	if (progress(opt, "finalize", total, total, t_fin)) {
		st = cancelled(total, total);
		goto out;
	}
out:
	if (pipe_ready)
		pipe_destroy(&p);
	hoist_plan_free(own_plan);
	if (st != HOIST_OK) {
		hoist_model_free(m);
		return st;
	}
	*out = m;
	return HOIST_OK;
}

/* ---- access ------------------------------------------------------------------- */

size_t hoist_model_tensor_count(const struct hoist_model *model)
{
	return model ? model->ntensors : 0;
}

void hoist_model_tensor(const struct hoist_model *model, size_t index, struct hoist_tensor *out)
{
	if (!model || index >= model->ntensors) {
		memset(out, 0, sizeof *out);
		return;
	}
	*out = model->tensors[index];
}

/* Reads a disk-placed tensor from its file, converting as the load would have. */
static enum hoist_status read_from_file(const struct hoist_model *m, size_t index, void *dst)
{
	const struct hoist_tensor_info *ti = hoist_checkpoint_tensor(m->ckpt, index);
	const char *path = hoist_checkpoint_shard_path(m->ckpt, ti->shard);
	bool conv = hoist__loaded_dtype(ti, m->dtype) != ti->dtype;
	void *raw = dst;
	enum hoist_status st = HOIST_OK;
	if (conv && !(raw = hoist__malloc(ti->nbytes)))
		return hoist__error(HOIST_ERR_NOMEM, "%s: tensor \"%s\": out of memory reading it",
				    path, ti->name);
	int fd = hoist__open(path, O_RDONLY);
	if (fd < 0) {
		st = hoist__error(HOIST_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
		goto out;
	}
	if (hoist__pread_full(fd, raw, ti->nbytes, ti->offset) != 0)
		st = hoist__error(HOIST_ERR_IO, "%s: tensor \"%s\": reading %llu bytes at offset %llu: %s",
				  path, ti->name, (unsigned long long)ti->nbytes,
				  (unsigned long long)ti->offset, strerror(errno));
	hoist__close(fd);
	if (st == HOIST_OK && conv)
		hoist__convert(ti->dtype, m->tensors[index].dtype, dst, raw,
			       ti->nbytes / (hoist_dtype_bits(ti->dtype) / 8));
out:
	if (conv)
		hoist__free(raw);
	return st;
}

enum hoist_status hoist_model_read(const struct hoist_model *model, size_t index, void *dst,
				   uint64_t size)
{
	if (!model || index >= model->ntensors || (!dst && size))
		return hoist__error(HOIST_ERR_INVALID, "hoist_model_read: no tensor %zu", index);
	const struct hoist_tensor *t = &model->tensors[index];
	if (size != t->nbytes)
		return hoist__error(HOIST_ERR_INVALID,
				    "hoist_model_read: tensor \"%s\" is %llu bytes, not %llu", t->name,
				    (unsigned long long)t->nbytes, (unsigned long long)size);
	if (size == 0)
		return HOIST_OK;
	int di = model->devi[index];
	if (di < 0)
		return read_from_file(model, index, dst);
	const struct mdev *d = &model->devs[di];
	if (d->mmap) {
		memcpy(dst, (const void *)(uintptr_t)model->addr[index], size);
		return HOIST_OK;
	}
	enum hoist_status st = d->dev->ops->copy_out(d->dev, dst, model->addr[index], size);
	if (st != HOIST_OK)
		hoist__error_prefix("tensor \"%s\"", t->name);
	return st;
}

enum hoist_status hoist_model_fetch(struct hoist_model *model, size_t index,
				    struct hoist_device device, struct hoist_tensor *out)
{
	char name[24];
	if (!model || index >= model->ntensors || !out)
		return hoist__error(HOIST_ERR_INVALID, "hoist_model_fetch: no tensor %zu", index);
	if (device.kind == HOIST_DEVICE_DISK || device.index < 0)
		return hoist__error(HOIST_ERR_INVALID, "hoist_model_fetch: %s is not a device to fetch to",
				    hoist_device_format(device, name, sizeof name));
	const struct hoist_tensor *t = &model->tensors[index];
	enum hoist_status st = HOIST_OK;
	int di = -1;
	for (size_t i = 0; i < model->ndevs && di < 0; i++)
		if (model->devs[i].dev && model->devs[i].device.kind == device.kind &&
		    model->devs[i].device.index == device.index)
			di = (int)i;
	if (di < 0) {
		/* A device the load did not use, or the mapped cpu: open it now (a mapped
		 * cpu gets a pageable host device for fetched copies). */
		struct hoist_options saved = model->opt;
		if (model->opt.host_memory == HOIST_HOST_MMAP)
			model->opt.host_memory = HOIST_HOST_PAGEABLE;
		st = add_dev(model, device, &di);
		model->opt = saved;
		if (st != HOIST_OK)
			return st;
	}
	if (model->nfetched == model->fcap) {
		size_t cap = model->fcap ? 2 * model->fcap : 8;
		struct fetched *f = hoist__reallocarray(model->fetched, cap, sizeof *f);
		if (!f)
			return hoist__error(HOIST_ERR_NOMEM, "out of memory fetching \"%s\"", t->name);
		model->fetched = f;
		model->fcap = cap;
	}
	void *tmp = hoist__malloc(t->nbytes);
	if (!tmp)
		return hoist__error(HOIST_ERR_NOMEM, "tensor \"%s\": out of memory fetching %llu bytes",
				    t->name, (unsigned long long)t->nbytes);
	st = hoist_model_read(model, index, tmp, t->nbytes);
	struct mdev *d = &model->devs[di];
	uint64_t addr = 0;
	if (st == HOIST_OK) {
		st = d->dev->ops->alloc(d->dev, t->nbytes ? t->nbytes : 1, &addr);
		if (st != HOIST_OK)
			hoist__error_prefix("fetching tensor \"%s\"", t->name);
	}
	if (st == HOIST_OK) {
		st = d->dev->ops->copy_in(d->dev, addr, tmp, t->nbytes);
		if (st != HOIST_OK) {
			d->dev->ops->free(d->dev, addr, t->nbytes);
			hoist__error_prefix("fetching tensor \"%s\"", t->name);
		}
	}
	hoist__free(tmp);
	if (st != HOIST_OK)
		return st;
	model->fetched[model->nfetched++] = (struct fetched){(size_t)di, addr, t->nbytes ? t->nbytes : 1};
	*out = *t;
	out->device = device;
	out->data = (void *)(uintptr_t)addr;
	return HOIST_OK;
}

double hoist_model_phase_seconds(const struct hoist_model *model, const char *phase)
{
	if (!model || !phase)
		return -1;
	for (int i = 0; i < HOIST__PHASE_COUNT; i++)
		if (strcmp(phase, hoist__phase_names[i]) == 0)
			return model->report.seconds[i];
	return -1;
}

void hoist_model_set_open_seconds(struct hoist_model *model, double seconds)
{
	if (model)
		model->report.seconds[HOIST__PHASE_OPEN] = seconds;
}
