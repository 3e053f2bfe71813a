/* model.c - hoist_model_load and the loaded model: devices, arenas, the tensor table,
 * reading tensors back and fetching them elsewhere.
 *
 * A load is five short steps, each a phase of the report:
 *   validate  the options against the plan;
 *   build     open the plan's devices, make the tensor table (plan phase);
 *   allocate  one arena per device, or views of the mapped files for a device that
 *             holds tensors in place; the sources; the stream's ring (allocate);
 *   stream    every tensor's bytes, as segments of a job for stream.c (stream);
 *   finalize  wait for the devices, say what landed where (finalize).
 * Either every tensor lands, or everything made so far is freed.
 *
 * Lifetime: a model is reference-counted. The caller holds the first reference
 * (hoist_model_free drops it); DLPack exports (dlpack.c) and hoist_model_retain hold
 * others, possibly on other threads, so the count is atomic and whoever drops the
 * last one frees the arenas, the mappings and the devices. Nothing that frees reads
 * the checkpoint, which the exports do not keep open. */
#include "registry.h"
#include "checkpoint.h"
#include "convert.h"
#include "model.h"
#include "report.h"
#include "stream.h"
#include "warmup.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

/* One device of the model. */
struct mdev {
	struct hoist_device device;
	struct hoist__dev *dev; /* NULL for disk */
	uint64_t arena, size;   /* device address and size of the arena (0: none) */
	uint64_t bytes;         /* tensor bytes placed here (disk: as stored) */
};

/* A tensor fetched onto a device by hoist_model_fetch: freed with the model. */
struct fetched {
	size_t devi;
	uint64_t addr, size;
};

/* A shard's source, and its mapping where a device holds tensors as views of it. */
struct shard_source {
	struct hoist__source *src;
	uint64_t map_addr; /* 0: not mapped */
	size_t map_dev;    /* the device that mapped it */
};

struct hoist_model {
	atomic_size_t refs;
	const struct hoist_checkpoint *ckpt;
	/* What fetching onto a device the load did not use needs: the load's host memory
	 * and sim settings (copied, so the caller's options need not outlive the load). */
	struct hoist_options opt;
	struct hoist_sim_options sim;
	enum hoist_dtype dtype;
	size_t ntensors;
	struct hoist_tensor *tensors;
	uint64_t *addr; /* device address per tensor */
	int *devi;      /* index into devs per tensor; -1: disk */
	struct mdev devs[HOIST_MAX_DEVICES + 2];
	size_t ndevs;
	struct shard_source *shards; /* per shard; src NULL where the load needed none */
	size_t nshards;
	struct fetched *fetched;
	size_t nfetched, fcap;
	uint8_t *landed;           /* per tensor, during a load with a landed callback: reported */
	struct hoist_warmup *warm; /* options.warmup, during the load only */
	struct hoist__report report;
};

/* ---- steps of the load --------------------------------------------------------- */

/* Calls the progress callback; true if it asked to stop. */
static bool progress(const struct hoist_options *opt, enum hoist_phase phase, uint64_t done,
                     uint64_t total, double since)
{
	if (!opt->progress)
		return false;
	struct hoist_progress pr = {phase, done, total, hoist__now() - since};
	return opt->progress(&pr, opt->progress_arg) != 0;
}

static enum hoist_status cancelled(uint64_t done, uint64_t total)
{
	char a[32], b[32];
	return hoist__error(
	        HOIST_ERR_CANCELLED, "load cancelled by the progress callback after %s of %s",
	        hoist_bytes_format(done, a, sizeof a), hoist_bytes_format(total, b, sizeof b));
}

static enum hoist_status landed_cancelled(const struct hoist_model *m)
{
	size_t told = 0;
	for (size_t t = 0; t < m->ntensors; t++)
		told += m->landed[t];
	return hoist__error(HOIST_ERR_CANCELLED,
	                    "load cancelled by the landed callback after %zu of %zu tensors", told,
	                    m->ntensors);
}

static enum hoist_status validate(const struct hoist_plan *plan, const struct hoist_options *opt)
{
	enum hoist_dtype dtype = hoist_plan_dtype(plan);
	if (opt->host_memory != HOIST_HOST_MMAP || dtype == HOIST_DTYPE_NONE)
		return HOIST_OK;
	/* A plan with a dtype converts only what is stored otherwise: a BF16 checkpoint
	 * planned at BF16 maps as well as one planned without. */
	const struct hoist_checkpoint *ck = hoist_plan_checkpoint(plan);
	for (size_t t = 0; t < hoist_plan_tensor_count(plan); t++) {
		const struct hoist_placement *pl = hoist_plan_tensor(plan, t);
		const struct hoist_tensor_info *ti = hoist_checkpoint_tensor(ck, t);
		if (pl->device.kind == HOIST_DEVICE_CPU && pl->dtype != ti->dtype)
			return hoist__error(HOIST_ERR_INVALID,
			                    "host memory \"mmap\" gives zero-copy views of the "
			                    "files: it cannot convert tensor \"%s\" from %s to %s "
			                    "(plan without a dtype, or use pageable/pinned memory)",
			                    ti->name, hoist_dtype_name(ti->dtype),
			                    hoist_dtype_name(pl->dtype));
	}
	return HOIST_OK;
}

static int find_dev(const struct hoist_model *m, struct hoist_device dev)
{
	for (size_t i = 0; i < m->ndevs; i++)
		if (m->devs[i].device.kind == dev.kind && m->devs[i].device.index == dev.index)
			return (int)i;
	return -1;
}

/* Opens a device for the model (a devs[] slot), without an arena. */
static enum hoist_status add_dev(struct hoist_model *m, struct hoist_device device, int *out)
{
	if (m->ndevs == HOIST__ARRAY_SIZE(m->devs))
		return hoist__error(HOIST_ERR_INVALID, "too many devices");
	struct mdev *d = &m->devs[m->ndevs];
	memset(d, 0, sizeof *d);
	d->device = device;
	if (device.kind != HOIST_DEVICE_DISK) {
		/* a GPU the warm-up opened is taken over, context, streams and all */
		d->dev = hoist__warmup_take(m->warm, device);
		enum hoist_status st =
		        d->dev ? HOIST_OK : hoist__device_open(device, &m->opt, &d->dev);
		if (st != HOIST_OK)
			return st;
	}
	*out = (int)m->ndevs++;
	return HOIST_OK;
}

/* Tensors on the device are views of their files: no arena, no bytes to move. */
static bool in_place(const struct mdev *d)
{
	return d->device.kind == HOIST_DEVICE_DISK || d->dev->maps_sources;
}

/* The plan's devices and the tensor table. */
static enum hoist_status build(struct hoist_model *m, const struct hoist_plan *plan)
{
	char name[24], b1[32], b2[32];
	size_t n = m->ntensors;
	m->tensors = hoist__calloc(n ? n : 1, sizeof *m->tensors);
	m->addr = hoist__calloc(n ? n : 1, sizeof *m->addr);
	m->devi = hoist__calloc(n ? n : 1, sizeof *m->devi);
	if (!m->tensors || !m->addr || !m->devi)
		return hoist__error(HOIST_ERR_NOMEM, "out of memory for the table of %zu tensors",
		                    n);
	for (size_t i = 0; i < hoist_plan_device_count(plan); i++) {
		const struct hoist_plan_device *pd = hoist_plan_device(plan, i);
		int di;
		if (find_dev(m, pd->device) >= 0)
			continue;
		enum hoist_status st = add_dev(m, pd->device, &di);
		if (st != HOIST_OK)
			return st;
		m->devs[di].size = in_place(&m->devs[di]) ? 0 : pd->bytes;
	}
	for (size_t t = 0; t < n; t++) {
		const struct hoist_tensor_info *ti = hoist_checkpoint_tensor(m->ckpt, t);
		const struct hoist_placement *pl = hoist_plan_tensor(plan, t);
		int di = find_dev(m, pl->device);
		if (di < 0)
			return hoist__error(
			        HOIST_ERR_INVALID,
			        "the plan puts tensor \"%s\" on %s, which it does not list",
			        ti->name, hoist_device_format(pl->device, name, sizeof name));
		struct hoist_tensor *out = &m->tensors[t];
		out->name = ti->name;
		out->device = pl->device;
		out->dtype = pl->dtype;
		out->ndim = ti->ndim;
		out->shape = ti->shape;
		out->nbytes = pl->nbytes;
		struct mdev *d = &m->devs[di];
		bool disk = pl->device.kind == HOIST_DEVICE_DISK;
		/* disk holds the file's bytes as stored (as the plan counts them); reads and
		 * fetches convert them */
		d->bytes += disk ? ti->nbytes : out->nbytes;
		m->devi[t] = disk ? -1 : di;
		if (in_place(d))
			continue;
		uint64_t end;
		if (!hoist__add_u64(pl->offset, out->nbytes, &end) || end > d->size)
			return hoist__error(
			        HOIST_ERR_INVALID,
			        "the plan puts tensor \"%s\" (%s) at offset %llu of %s's "
			        "arena of %s",
			        ti->name, hoist_bytes_format(out->nbytes, b1, sizeof b1),
			        (unsigned long long)pl->offset,
			        hoist_device_format(pl->device, name, sizeof name),
			        hoist_bytes_format(d->size, b2, sizeof b2));
		m->addr[t] = pl->offset; /* the arena's base is added once allocated */
	}
	return HOIST_OK;
}

/* The shard's source, opened on first need. */
static enum hoist_status shard_source(struct hoist_model *m, uint32_t shard, unsigned flags,
                                      struct hoist__source **out)
{
	struct shard_source *s = &m->shards[shard];
	bool direct = flags & HOIST__SOURCE_DIRECT;
	if (!s->src) {
		const char *path = hoist_checkpoint_shard(m->ckpt, shard)->path;
		enum hoist_status st = hoist__source_open(path, flags, &s->src);
		if (st == HOIST_OK)
			st = hoist__source_verify(s->src,
			                          hoist__checkpoint_shard_id(m->ckpt, shard),
			                          "while it was being loaded");
		if (st != HOIST_OK) {
			hoist__source_close(s->src);
			s->src = NULL;
			return st;
		}
		if (direct && !s->src->direct)
			hoist__report_note(
			        &m->report,
			        "O_DIRECT unsupported on %s's file system: buffered reads", path);
	}
	*out = s->src;
	return HOIST_OK;
}

/* Arenas, and views of the files for devices that hold tensors in place. */
static enum hoist_status allocate(struct hoist_model *m, bool direct)
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
	for (size_t t = 0; t < m->ntensors; t++) {
		int di = m->devi[t];
		if (di < 0)
			continue;
		const struct mdev *d = &m->devs[di];
		if (!d->dev->maps_sources) {
			m->addr[t] += d->arena;
		} else {
			const struct hoist_tensor_info *ti = hoist_checkpoint_tensor(m->ckpt, t);
			struct shard_source *s = &m->shards[ti->shard];
			if (!s->map_addr) {
				/* host views are private: a consumer that writes to
				 * one (torch ignores DLPack's read-only flag) gets its
				 * own copy of the page instead of a fault */
				unsigned flags = (direct ? HOIST__SOURCE_DIRECT : 0) |
				                 (d->device.kind == HOIST_DEVICE_CPU
				                          ? HOIST__SOURCE_MAP_PRIVATE
				                          : 0);
				struct hoist__source *src;
				enum hoist_status st = shard_source(m, ti->shard, flags, &src);
				if (st == HOIST_OK)
					st = d->dev->ops->map(d->dev, src, 0, src->size,
					                      &s->map_addr);
				if (st != HOIST_OK)
					return st;
				s->map_dev = (size_t)di;
			}
			m->addr[t] = s->map_addr + ti->offset;
		}
		m->tensors[t].data = (void *)(uintptr_t)m->addr[t];
	}
	return HOIST_OK;
}

/* The stream's job: a segment per tensor that has bytes to move, in file order. */
struct job_build {
	struct hoist__job job;
	struct hoist__segment *segments;
	struct hoist__dev **targets;
	struct hoist__source **sources;
	int *target_of; /* per model device: its index in targets, or -1 */
};

static const char *tensor_name(void *arg, size_t tag)
{
	const struct hoist_model *m = arg;
	return hoist_checkpoint_tensor(m->ckpt, tag)->name;
}

/* The landed callback's side of a load: which tensors it has been told of. */
struct landing {
	struct hoist_model *m;
	const struct hoist_options *opt;
	const struct hoist__segment *segments;
	bool stop; /* the callback asked to stop */
};

/* Tells the caller that tensor t has landed, once; true if it asked to stop. */
static bool land(struct landing *l, size_t t)
{
	if (!l->opt->landed || l->stop || l->m->landed[t])
		return l->stop;
	l->m->landed[t] = 1;
	if (l->opt->landed(l->m, t, l->opt->landed_arg) != 0)
		l->stop = true;
	return l->stop;
}

static void stream_landed(void *arg, size_t segment)
{
	struct landing *l = arg;
	land(l, l->segments[segment].tag);
}

/* Tensors with no bytes to move (views of the files, disk, empty) have landed once
 * the arenas and mappings exist. */
static bool land_in_place(struct landing *l)
{
	const struct hoist_model *m = l->m;
	for (size_t t = 0; t < m->ntensors && !l->stop; t++) {
		int di = m->devi[t];
		if (di < 0 || in_place(&m->devs[di]) || m->tensors[t].nbytes == 0 ||
		    hoist_checkpoint_tensor(m->ckpt, t)->nbytes == 0)
			land(l, t);
	}
	return l->stop;
}

/* What the stream did not name (a stream that does not report landings names none)
 * has landed once the devices are synchronized: in file order. */
static bool land_rest(struct landing *l)
{
	for (size_t t = 0; t < l->m->ntensors && !l->stop; t++)
		land(l, t);
	return l->stop;
}

struct stream_progress {
	const struct hoist_options *opt;
	double since;
	const struct landing *landing;
};

static int stream_progress(void *arg, uint64_t done, uint64_t total)
{
	const struct stream_progress *sp = arg;
	if (sp->landing->stop)
		return 1;
	return progress(sp->opt, HOIST_PHASE_STREAM, done, total, sp->since);
}

static void job_free(struct job_build *b)
{
	hoist__free(b->segments);
	hoist__free(b->targets);
	hoist__free(b->sources);
	hoist__free(b->target_of);
}

static enum hoist_status make_job(struct hoist_model *m, const struct hoist_options *opt,
                                  struct job_build *b)
{
	size_t n = m->ntensors, ns = m->nshards;
	memset(b, 0, sizeof *b);
	b->segments = hoist__calloc(n ? n : 1, sizeof *b->segments);
	b->targets = hoist__calloc(m->ndevs ? m->ndevs : 1, sizeof *b->targets);
	b->sources = hoist__calloc(ns ? ns : 1, sizeof *b->sources);
	b->target_of = hoist__calloc(m->ndevs ? m->ndevs : 1, sizeof *b->target_of);
	if (!b->segments || !b->targets || !b->sources || !b->target_of)
		return hoist__error(HOIST_ERR_NOMEM, "out of memory planning the reads");
	size_t ntargets = 0, nsegs = 0;
	for (size_t i = 0; i < m->ndevs; i++) {
		b->target_of[i] = -1;
		if (!in_place(&m->devs[i])) {
			b->target_of[i] = (int)ntargets;
			b->targets[ntargets++] = m->devs[i].dev;
		}
	}
	for (size_t t = 0; t < n; t++) {
		const struct hoist_tensor_info *ti = hoist_checkpoint_tensor(m->ckpt, t);
		int di = m->devi[t];
		if (di < 0 || in_place(&m->devs[di]) || ti->nbytes == 0)
			continue;
		struct hoist__source *src;
		enum hoist_status st =
		        shard_source(m, ti->shard, opt->direct ? HOIST__SOURCE_DIRECT : 0, &src);
		if (st != HOIST_OK)
			return st;
		b->sources[ti->shard] = src;
		enum hoist_dtype to = m->tensors[t].dtype;
		bool conv = to != ti->dtype;
		b->segments[nsegs++] = (struct hoist__segment){
		        .source = ti->shard,
		        .target = (uint32_t)b->target_of[di],
		        .offset = ti->offset,
		        .length = ti->nbytes,
		        .dst = m->addr[t],
		        .from = conv ? ti->dtype : HOIST_DTYPE_NONE,
		        .to = conv ? to : HOIST_DTYPE_NONE,
		        .tag = t,
		};
	}
	b->job = (struct hoist__job){
	        .sources = b->sources,
	        .nsources = ns,
	        .targets = b->targets,
	        .ntargets = ntargets,
	        .segments = b->segments,
	        .nsegments = nsegs,
	        .name = tensor_name,
	        .name_arg = m,
	        .threads = opt->threads,
	        .chunk_bytes = opt->chunk_bytes,
	        .staging_bytes = opt->staging_bytes,
	        .source = opt->source,
	};
	hoist__warmup_ring(m->warm, &b->job.staging, &b->job.staging_size, &b->job.staging_how);
	return HOIST_OK;
}

/* The files the load opened, against what their headers were read from: a file
 * truncated, written or replaced during the stream is named as such, whatever the
 * stream reported (a read past a truncated file's new end fails as an I/O error). */
static enum hoist_status verify_sources(struct hoist_model *m, enum hoist_status st)
{
	for (size_t s = 0; s < m->nshards; s++) {
		if (!m->shards[s].src)
			continue;
		enum hoist_status v = hoist__source_verify(m->shards[s].src,
		                                           hoist__checkpoint_shard_id(m->ckpt, s),
		                                           "while it was being loaded");
		if (v != HOIST_OK)
			return v;
	}
	return st;
}

/* Waits for every device, then says what landed where. */
static enum hoist_status finalize(struct hoist_model *m)
{
	for (size_t i = 0; i < m->ndevs; i++) {
		struct mdev *d = &m->devs[i];
		if (d->dev && !d->dev->host_addressable) {
			enum hoist_status st = d->dev->ops->synchronize(d->dev);
			if (st != HOIST_OK)
				return st;
		}
	}
	for (size_t i = 0; i < m->ndevs; i++) {
		const struct mdev *d = &m->devs[i];
		/* the plan also lists devices it budgeted for and left empty */
		if (d->bytes == 0 && !(i == 0 && m->ndevs == 1))
			continue;
		hoist__report_add_device(&m->report, d->device, d->bytes,
		                         d->dev ? d->dev->memory : "left in its files");
	}
	return HOIST_OK;
}

static void report_phase(struct hoist_model *m, enum hoist_phase phase, double since)
{
	m->report.pub.seconds[phase] = hoist__now() - since;
}

enum hoist_status hoist_model_load(const struct hoist_plan *plan,
                                   const struct hoist_options *opt_in, struct hoist_model **out)
{
	static const struct hoist_options defaults;
	const struct hoist_options *opt = opt_in ? opt_in : &defaults;
	struct hoist_model *m = NULL;
	struct hoist__stream *stream = NULL;
	struct job_build job;
	memset(&job, 0, sizeof job);
	enum hoist_status st = HOIST_OK;
	if (out)
		*out = NULL;
	if (!plan || !out)
		return hoist__error(HOIST_ERR_INVALID, "hoist_model_load: NULL plan or out");
	const struct hoist_checkpoint *ckpt = hoist_plan_checkpoint(plan);
	if ((st = validate(plan, opt)) != HOIST_OK)
		return st;

	double t_plan = hoist__now();
	if (progress(opt, HOIST_PHASE_PLAN, 0, 0, t_plan))
		return cancelled(0, 0);
	m = hoist__calloc(1, sizeof *m);
	if (!m)
		return hoist__error(HOIST_ERR_NOMEM, "out of memory for the model");
	atomic_init(&m->refs, 1);
	m->ckpt = ckpt;
	m->opt = *opt;
	m->opt.device = m->opt.device_map = m->opt.max_memory = NULL;
	m->opt.progress = NULL;
	m->opt.progress_arg = NULL;
	m->opt.log = NULL;
	m->opt.log_arg = NULL;
	m->warm = opt->warmup; /* only while loading: it may go before the model */
	m->opt.warmup = NULL;
	if (opt->sim) {
		m->sim = *opt->sim;
		m->opt.sim = &m->sim;
	}
	m->dtype = hoist_plan_dtype(plan);
	m->ntensors = hoist_checkpoint_tensor_count(ckpt);
	m->nshards = hoist_checkpoint_shard_count(ckpt);
	struct hoist__report *r = &m->report;
	hoist__report_init(r);
	r->pub.shards = m->nshards;
	r->pub.tensors = m->ntensors;
	r->pub.checkpoint_bytes = hoist_checkpoint_total_bytes(ckpt);
	r->pub.dtype = m->dtype;
	r->pub.mapped = opt->host_memory == HOIST_HOST_MMAP;
	r->pub.seconds[HOIST_PHASE_OPEN] = hoist_checkpoint_open_seconds(ckpt);
	m->shards = hoist__calloc(m->nshards ? m->nshards : 1, sizeof *m->shards);
	m->landed = hoist__calloc(m->ntensors ? m->ntensors : 1, 1);
	if (!m->shards || !m->landed) {
		st = hoist__error(HOIST_ERR_NOMEM, "out of memory for the model");
		goto out;
	}
	if ((st = build(m, plan)) != HOIST_OK)
		goto out;
	report_phase(m, HOIST_PHASE_PLAN, t_plan);
	r->pub.seconds[HOIST_PHASE_PLAN] += hoist_plan_seconds(plan);

	double t_alloc = hoist__now();
	if (progress(opt, HOIST_PHASE_ALLOCATE, 0, 0, t_alloc)) {
		st = cancelled(0, 0);
		goto out;
	}
	if ((st = allocate(m, opt->direct != 0)) != HOIST_OK ||
	    (st = make_job(m, opt, &job)) != HOIST_OK ||
	    (st = hoist__stream_prepare(&job.job, &stream)) != HOIST_OK)
		goto out;
	report_phase(m, HOIST_PHASE_ALLOCATE, t_alloc);

	uint64_t total = hoist__stream_stats(stream)->moved_bytes;
	struct landing landing = {m, opt, job.segments, false};
	struct stream_progress sp = {opt, hoist__now(), &landing};
	job.job.progress = stream_progress;
	job.job.progress_arg = &sp;
	if (opt->landed) {
		job.job.landed = stream_landed;
		job.job.landed_arg = &landing;
	}
	if (land_in_place(&landing)) {
		st = landed_cancelled(m);
		goto out;
	}
	if (progress(opt, HOIST_PHASE_STREAM, 0, total, sp.since)) {
		st = cancelled(0, total);
		goto out;
	}
	hoist__report_stream_begin(r);
	st = hoist__stream_run(stream);
	report_phase(m, HOIST_PHASE_STREAM, sp.since);
	if (st == HOIST_ERR_CANCELLED)
		st = landing.stop ? landed_cancelled(m)
		                  : cancelled(hoist__stream_stats(stream)->landed, total);
	else
		st = verify_sources(m, st);
	if (st != HOIST_OK)
		goto out;
	hoist__report_stream_end(r, hoist__stream_stats(stream));

	double t_fin = hoist__now();
	if ((st = finalize(m)) != HOIST_OK)
		goto out;
	hoist__stream_free(stream);
	stream = NULL;
	report_phase(m, HOIST_PHASE_FINALIZE, t_fin);
	for (int i = 0; i < HOIST_PHASE_COUNT; i++)
		r->pub.total_seconds += r->pub.seconds[i];
	if (land_rest(&landing))
		st = landed_cancelled(m);
	else if (progress(opt, HOIST_PHASE_FINALIZE, total, total, t_fin))
		st = cancelled(total, total);
out:
	hoist__stream_free(stream);
	job_free(&job);
	if (m) {
		hoist__free(m->landed);
		m->landed = NULL;
		m->warm = NULL;
	}
	if (st != HOIST_OK) {
		hoist_model_free(m);
		return st;
	}
	*out = m;
	return HOIST_OK;
}

struct hoist_model *hoist_model_retain(struct hoist_model *m)
{
	if (m)
		atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
	return m;
}

static void destroy(struct hoist_model *m);

void hoist_model_free(struct hoist_model *m)
{
	/* acq_rel: the last one to drop sees every other holder's writes before freeing */
	if (m && atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) == 1)
		destroy(m);
}

static void destroy(struct hoist_model *m)
{
	for (size_t i = 0; i < m->nfetched; i++) {
		struct mdev *d = &m->devs[m->fetched[i].devi];
		d->dev->ops->free(d->dev, m->fetched[i].addr, m->fetched[i].size);
	}
	hoist__free(m->fetched);
	for (size_t s = 0; m->shards && s < m->nshards; s++) {
		struct shard_source *ss = &m->shards[s];
		if (ss->map_addr) {
			struct hoist__dev *dev = m->devs[ss->map_dev].dev;
			dev->ops->unmap(dev, ss->src, ss->map_addr, ss->src->size);
		}
		hoist__source_close(ss->src);
	}
	hoist__free(m->shards);
	for (size_t i = 0; i < m->ndevs; i++) {
		struct mdev *d = &m->devs[i];
		if (d->dev) {
			if (d->arena)
				d->dev->ops->free(d->dev, d->arena, d->size);
			d->dev->ops->close(d->dev);
		}
	}
	hoist__free(m->tensors);
	hoist__free(m->addr);
	hoist__free(m->devi);
	hoist__free(m);
}

/* ---- access ------------------------------------------------------------------- */

size_t hoist_model_tensor_count(const struct hoist_model *model)
{
	return model ? model->ntensors : 0;
}

const struct hoist_tensor *hoist_model_tensor(const struct hoist_model *model, size_t i)
{
	return model && i < model->ntensors ? &model->tensors[i] : NULL;
}

size_t hoist_model_device_count(const struct hoist_model *model)
{
	return model ? model->report.ndevices : 0;
}

const struct hoist_model_device *hoist_model_device(const struct hoist_model *model, size_t i)
{
	return model && i < model->report.ndevices ? &model->report.devices[i] : NULL;
}

const struct hoist_report *hoist_model_report(const struct hoist_model *model)
{
	return model ? &model->report.pub : NULL;
}

enum hoist_status hoist_model_report_print(const struct hoist_model *model, FILE *out)
{
	if (!model || !out)
		return hoist__error(HOIST_ERR_INVALID, "hoist_model_report_print: NULL argument");
	return hoist__report_print(&model->report, out);
}

enum hoist_status hoist_model_report_print_json(const struct hoist_model *model, FILE *out)
{
	if (!model || !out)
		return hoist__error(HOIST_ERR_INVALID,
		                    "hoist_model_report_print_json: NULL argument");
	return hoist__report_print_json(&model->report, out);
}

/* Reads bytes [offset, offset + size) of a disk-placed tensor as loaded, from its file,
 * converting as the load would have (the range is then whole loaded elements). */
static enum hoist_status read_from_file(const struct hoist_model *m, size_t index, uint64_t offset,
                                        void *dst, uint64_t size)
{
	const struct hoist_tensor_info *ti = hoist_checkpoint_tensor(m->ckpt, index);
	const char *path = hoist_checkpoint_shard(m->ckpt, ti->shard)->path;
	enum hoist_dtype to = m->tensors[index].dtype;
	bool conv = to != ti->dtype;
	uint64_t from_size = hoist_dtype_bits(ti->dtype) / 8, to_size = hoist_dtype_bits(to) / 8;
	uint64_t at = conv ? offset / to_size * from_size : offset;
	uint64_t n = conv ? size / to_size * from_size : size;
	void *raw = dst;
	struct hoist__source *src = NULL;
	if (conv && !(raw = hoist__malloc(n)))
		return hoist__error(HOIST_ERR_NOMEM, "%s: tensor \"%s\": out of memory reading it",
		                    path, ti->name);
	/* the file must still be the one the header was read from, before and after */
	const struct hoist__file_id *id = hoist__checkpoint_shard_id(m->ckpt, ti->shard);
	char when[400];
	snprintf(when, sizeof when, "since the checkpoint was opened, reading tensor \"%.300s\"",
	         ti->name);
	enum hoist_status st = hoist__source_open(path, 0, &src);
	if (st == HOIST_OK)
		st = hoist__source_verify(src, id, when);
	if (st == HOIST_OK) {
		int rc = hoist__source_read_full(src, raw, n, ti->offset + at), err = errno;
		st = hoist__source_verify(src, id, when);
		if (st == HOIST_OK && rc != 0)
			st = hoist__error(
			        HOIST_ERR_IO,
			        "%s: tensor \"%s\": reading %llu bytes at offset %llu: %s", path,
			        ti->name, (unsigned long long)n,
			        (unsigned long long)(ti->offset + at), strerror(err));
	}
	hoist__source_close(src);
	if (st == HOIST_OK && conv)
		hoist__convert(ti->dtype, to, dst, raw, n / from_size);
	if (conv)
		hoist__free(raw);
	return st;
}

enum hoist_status hoist_model_read_at(const struct hoist_model *model, size_t index,
                                      uint64_t offset, void *dst, uint64_t size)
{
	if (!model || index >= model->ntensors || (!dst && size))
		return hoist__error(HOIST_ERR_INVALID, "hoist_model_read: no tensor %zu", index);
	const struct hoist_tensor *t = &model->tensors[index];
	uint64_t end, elem = hoist_dtype_bits(t->dtype) >= 8 ? hoist_dtype_bits(t->dtype) / 8 : 1;
	bool converted = model->devi[index] < 0 &&
	                 t->dtype != hoist_checkpoint_tensor(model->ckpt, index)->dtype;
	if (!hoist__add_u64(offset, size, &end) || end > t->nbytes ||
	    (converted && (offset % elem || size % elem)))
		return hoist__error(HOIST_ERR_INVALID,
		                    "hoist_model_read: tensor \"%s\" (%llu bytes): bytes [%llu, "
		                    "+%llu) are not a range of it%s",
		                    t->name, (unsigned long long)t->nbytes,
		                    (unsigned long long)offset, (unsigned long long)size,
		                    converted ? " in whole elements" : "");
	if (size == 0)
		return HOIST_OK;
	int di = model->devi[index];
	if (di < 0)
		return read_from_file(model, index, offset, dst, size);
	const struct mdev *d = &model->devs[di];
	enum hoist_status st =
	        d->dev->ops->copy_out(d->dev, dst, model->addr[index] + offset, (size_t)size);
	if (st != HOIST_OK)
		hoist__error_prefix("tensor \"%s\"", t->name);
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
		                    "hoist_model_read: tensor \"%s\" is %llu bytes, not %llu",
		                    t->name, (unsigned long long)t->nbytes,
		                    (unsigned long long)size);
	return hoist_model_read_at(model, index, 0, dst, size);
}

enum hoist_status hoist_model_fetch(struct hoist_model *model, size_t index,
                                    struct hoist_device device, struct hoist_tensor *out)
{
	char name[24];
	if (!model || index >= model->ntensors || !out)
		return hoist__error(HOIST_ERR_INVALID, "hoist_model_fetch: no tensor %zu", index);
	if (device.kind == HOIST_DEVICE_DISK || device.index < 0)
		return hoist__error(HOIST_ERR_INVALID,
		                    "hoist_model_fetch: %s is not a device to fetch to",
		                    hoist_device_format(device, name, sizeof name));
	const struct hoist_tensor *t = &model->tensors[index];
	enum hoist_status st = HOIST_OK;
	int di = -1;
	for (size_t i = 0; i < model->ndevs && di < 0; i++)
		if (model->devs[i].dev && !model->devs[i].dev->maps_sources &&
		    model->devs[i].device.kind == device.kind &&
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
	if (!hoist__grow(&model->fetched, &model->fcap, model->nfetched, sizeof *model->fetched, 8))
		return hoist__error(HOIST_ERR_NOMEM, "out of memory fetching \"%s\"", t->name);
	void *tmp = hoist__malloc(t->nbytes);
	if (!tmp)
		return hoist__error(HOIST_ERR_NOMEM,
		                    "tensor \"%s\": out of memory fetching %llu bytes", t->name,
		                    (unsigned long long)t->nbytes);
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
	model->fetched[model->nfetched++] =
	        (struct fetched){(size_t)di, addr, t->nbytes ? t->nbytes : 1};
	*out = *t;
	out->device = device;
	out->data = (void *)(uintptr_t)addr;
	return HOIST_OK;
}

enum hoist_status hoist__model_locate(const struct hoist_model *model, size_t index,
                                      struct hoist__dev **dev, uint64_t *addr)
{
	*dev = NULL;
	*addr = 0;
	if (!model || index >= model->ntensors)
		return hoist__error(HOIST_ERR_INVALID, "no tensor %zu in the model", index);
	int di = model->devi[index];
	if (di >= 0) {
		*dev = model->devs[di].dev;
		*addr = model->addr[index];
	}
	return HOIST_OK;
}

const struct hoist_checkpoint *hoist__model_checkpoint(const struct hoist_model *model)
{
	return model ? model->ckpt : NULL;
}
