/* verify.c - hoist_model_verify: every tensor checked where it landed against its
 * file's bytes.
 *
 * Per tensor, chunk by chunk: the file's bytes are read (and converted as the load
 * converted them), the landed bytes are taken where they lie in host memory or read
 * back from the device, and each side feeds a running XXH3 state. After each chunk
 * the two states' digests are compared (a digest does not end a state), so the chunk
 * where they first part is known without keeping either side, and only that chunk is
 * searched byte by byte for the first difference. Hashing both sides, rather than
 * comparing them, is what lets a device hash its own memory where it lies; here every
 * side is hashed on the host.
 *
 * The file's side is hashed where it lies too: each shard is mapped (its pages are
 * the page cache's, which a load has just filled), which saves a copy of every byte
 * that pread would make. A shard that cannot be mapped is read with pread instead. A
 * shard changed since the checkpoint was opened (size, mtime: hoist__source_verify)
 * is an error before it is touched, and one changed while it was hashed is an error
 * after; one truncated while it is being hashed would fault (SIGBUS), as a mapped
 * load's would.
 *
 * XXH3 is libxxhash's runtime-dispatching entry point where it has one (x86-64:
 * AVX2 or AVX-512 when the CPU has them, SSE2 otherwise), the same hash either way.
 *
 * Tensors go to a few threads of the verifier's own, largest first (so the last
 * tensors to finish are small ones); a device's read-backs are serialized, as its
 * synchronous copies must be (backend.h). The calling thread reports progress. */
#include "checkpoint.h"
#include "convert.h"
#include "model.h"
#include "sha256.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>
/* HOIST_NO_XXH_DISPATCH: Debian's static libxxhash.a lacks the 64-bit dispatch entry
 * points its shared library has (the static GPU-machine build, bench/gpu/prepare.sh). */
#if defined(__x86_64__) && defined(__has_include) && !defined(HOIST_NO_XXH_DISPATCH)
#if __has_include(<xxh_x86dispatch.h>)
#include <xxh_x86dispatch.h>
#define XXH_UPDATE XXH3_64bits_update_dispatch
#endif
#endif
#ifndef XXH_UPDATE
#define XXH_UPDATE XXH3_64bits_update
#endif

#define DEFAULT_CHUNK (2ull << 20)
#define MAX_THREADS 16

struct hoist_verify {
	size_t ntensors;
	struct hoist_verify_tensor *tensors;
	struct hoist_verify_summary summary;
};

/* A device the model's tensors landed on, with the lock its read-backs take. */
struct vdev {
	struct hoist__dev *dev;
	pthread_mutex_t lock;
};

struct vrun {
	const struct hoist_model *model;
	const struct hoist_checkpoint *ckpt;
	struct hoist_verify *v;
	unsigned flags;
	uint64_t chunk;
	struct hoist__source **sources; /* per shard, opened on demand under source_lock */
	const uint8_t **maps;           /* per shard: its mapping, or NULL (read instead) */
	pthread_mutex_t source_lock;
	struct vdev devs[HOIST_MAX_DEVICES + 2];
	size_t ndevs;
	struct hoist__dev *ring_dev; /* where read-back buffers come from (pinned for cuda) */
	size_t *order;               /* tensor indices, largest first */
	atomic_size_t next;
	_Atomic uint64_t done;
	atomic_bool stop;
	pthread_mutex_t lock; /* guards everything below */
	pthread_cond_t cond;
	unsigned running;
	enum hoist_status status; /* the first worker error */
	char errmsg[1024];
	uint64_t in_place, read_back, file_bytes;
};

/* A worker's buffers. */
struct vbuf {
	uint8_t *file;   /* the file's bytes as stored */
	uint8_t *conv;   /* converted, for tensors the load converted */
	uint8_t *landed; /* read back from a device (ring_dev memory) */
	XXH3_state_t *hf, *hl;
};

static void fail(struct vrun *r, enum hoist_status st)
{
	pthread_mutex_lock(&r->lock);
	if (r->status == HOIST_OK) {
		r->status = st;
		snprintf(r->errmsg, sizeof r->errmsg, "%s", hoist_errmsg());
	}
	pthread_mutex_unlock(&r->lock);
	atomic_store(&r->stop, true);
}

static struct vdev *vdev_of(struct vrun *r, struct hoist__dev *dev)
{
	for (size_t i = 0; i < r->ndevs; i++)
		if (r->devs[i].dev == dev)
			return &r->devs[i];
	return NULL;
}

/* The shard's source, opened (and mapped where it can be) on first need; *map is its
 * mapping or NULL. */
static enum hoist_status source(struct vrun *r, uint32_t shard, struct hoist__source **out,
                                const uint8_t **map)
{
	enum hoist_status st = HOIST_OK;
	const struct hoist_shard *sh = hoist_checkpoint_shard(r->ckpt, shard);
	pthread_mutex_lock(&r->source_lock);
	if (!r->sources[shard]) {
		st = hoist__source_open(sh->path, 0, &r->sources[shard]);
		if (st == HOIST_OK)
			st = hoist__source_verify(r->sources[shard],
			                          hoist__checkpoint_shard_id(r->ckpt, shard),
			                          "since the checkpoint was opened");
		if (st != HOIST_OK) {
			/* not kept: every worker that needs the shard meets the same error,
			 * rather than a read past its end */
			hoist__source_close(r->sources[shard]);
			r->sources[shard] = NULL;
		}
		const void *addr;
		if (st == HOIST_OK && sh->size > 0) {
			if (r->sources[shard]->methods->map(r->sources[shard], 0, sh->size,
			                                    &addr) == HOIST_OK)
				r->maps[shard] = addr;
			hoist__error_clear(); /* not mapped: read instead */
		}
	}
	*out = r->sources[shard];
	*map = r->maps[shard];
	pthread_mutex_unlock(&r->source_lock);
	return st;
}

/* The first index where a and b differ (they do, somewhere in n). */
static size_t first_difference(const uint8_t *a, const uint8_t *b, size_t n)
{
	size_t lo = 0;
	/* memcmp narrows by 4 KiB steps; then byte by byte */
	while (n - lo > 4096 && memcmp(a + lo, b + lo, 4096) == 0)
		lo += 4096;
	while (lo < n && a[lo] == b[lo])
		lo++;
	return lo;
}

/* Checks one tensor into its result slot. */
static enum hoist_status check_tensor(struct vrun *r, struct vbuf *b, size_t index)
{
	const struct hoist_tensor_info *ti = hoist_checkpoint_tensor(r->ckpt, index);
	const struct hoist_tensor *t = hoist_model_tensor(r->model, index);
	struct hoist_verify_tensor *res = &r->v->tensors[index];
	struct hoist__dev *dev;
	uint64_t addr;
	enum hoist_status st = hoist__model_locate(r->model, index, &dev, &addr);
	if (st != HOIST_OK)
		return st;
	*res = (struct hoist_verify_tensor){
	        .name = t->name,
	        .device = t->device,
	        .result = dev ? HOIST_VERIFY_MATCH : HOIST_VERIFY_IN_FILE,
	        .nbytes = t->nbytes,
	        .first_diff = UINT64_MAX,
	        .in_place = dev && dev->host_addressable,
	};
	struct hoist__source *src;
	const uint8_t *map;
	if ((st = source(r, ti->shard, &src, &map)) != HOIST_OK)
		return st;
	bool conv = t->dtype != ti->dtype;
	/* Elements per chunk, so a converted chunk is whole elements on both sides. */
	uint64_t in_size = conv ? hoist_dtype_bits(ti->dtype) / 8 : 1;
	uint64_t out_size = conv ? hoist_dtype_bits(t->dtype) / 8 : 1;
	uint64_t per = r->chunk / HOIST__MAX(in_size, out_size);
	struct hoist__sha256 sha;
	bool want_sha = r->flags & HOIST_VERIFY_SHA256;
	if (want_sha)
		hoist__sha256_init(&sha);
	XXH3_64bits_reset(b->hf);
	XXH3_64bits_reset(b->hl);
	uint64_t elems = conv ? ti->nbytes / in_size : ti->nbytes;
	uint64_t landed_local = 0, back_local = 0, file_local = 0;
	for (uint64_t e = 0; e < elems && !atomic_load(&r->stop); e += per) {
		uint64_t k = HOIST__MIN(per, elems - e);
		size_t in_len = (size_t)(k * in_size), out_len = (size_t)(k * out_size);
		uint64_t in_off = e * in_size, out_off = e * out_size;
		const uint8_t *want = map ? map + ti->offset + in_off : b->file;
		if (!map && hoist__source_read_full(src, b->file, in_len, ti->offset + in_off) != 0)
			return hoist__error(
			        HOIST_ERR_IO,
			        "%s: tensor \"%s\": reading %zu bytes at offset %llu: %s",
			        src->path, ti->name, in_len,
			        (unsigned long long)(ti->offset + in_off), strerror(errno));
		file_local += in_len;
		if (conv) {
			hoist__convert(ti->dtype, t->dtype, b->conv, want, (size_t)k);
			want = b->conv;
		}
		const uint8_t *got = want;
		if (dev && dev->host_addressable) {
			got = (const uint8_t *)(uintptr_t)addr + out_off;
		} else if (dev) {
			struct vdev *vd = vdev_of(r, dev);
			pthread_mutex_lock(&vd->lock);
			st = dev->ops->copy_out(dev, b->landed, addr + out_off, out_len);
			pthread_mutex_unlock(&vd->lock);
			if (st != HOIST_OK) {
				hoist__error_prefix("tensor \"%s\": reading back %zu bytes at "
				                    "offset %llu",
				                    ti->name, out_len, (unsigned long long)out_off);
				return st;
			}
			got = b->landed;
			back_local += out_len;
		}
		if (dev)
			landed_local += out_len;
		XXH_UPDATE(b->hf, want, out_len);
		if (dev)
			XXH_UPDATE(b->hl, got, out_len);
		if (want_sha)
			hoist__sha256_update(&sha, got, out_len);
		if (dev && res->result == HOIST_VERIFY_MATCH &&
		    XXH3_64bits_digest(b->hf) != XXH3_64bits_digest(b->hl)) {
			size_t at = first_difference(got, want, out_len);
			res->result = HOIST_VERIFY_DIFFER;
			res->first_diff = out_off + at;
			res->landed_byte = got[at];
			res->file_byte = want[at];
		}
		atomic_fetch_add(&r->done, out_len);
	}
	res->xxh3_file = XXH3_64bits_digest(b->hf);
	res->xxh3_landed = dev ? XXH3_64bits_digest(b->hl) : res->xxh3_file;
	if (want_sha)
		hoist__sha256_final(&sha, res->sha256);
	pthread_mutex_lock(&r->lock);
	if (res->in_place)
		r->in_place += landed_local;
	r->read_back += back_local;
	r->file_bytes += file_local;
	pthread_mutex_unlock(&r->lock);
	return HOIST_OK;
}

static void buffers_free(struct vrun *r, struct vbuf *b)
{
	hoist__free(b->file);
	hoist__free(b->conv);
	if (b->landed && r->ring_dev)
		r->ring_dev->ops->host_free(r->ring_dev, b->landed, (size_t)r->chunk);
	else
		hoist__free(b->landed);
	XXH3_freeState(b->hf);
	XXH3_freeState(b->hl);
}

static enum hoist_status buffers_alloc(struct vrun *r, struct vbuf *b)
{
	memset(b, 0, sizeof *b);
	size_t n = (size_t)r->chunk;
	const char *how;
	b->file = hoist__aligned_alloc(4096, n);
	b->conv = hoist__aligned_alloc(4096, n);
	b->hf = XXH3_createState();
	b->hl = XXH3_createState();
	if (r->ring_dev) {
		if (r->ring_dev->ops->host_alloc(r->ring_dev, n, (void **)&b->landed, &how) !=
		    HOIST_OK)
			b->landed = NULL;
	}
	if (!b->file || !b->conv || !b->hf || !b->hl || (r->ring_dev && !b->landed)) {
		buffers_free(r, b);
		return hoist__error(HOIST_ERR_NOMEM,
		                    "verify: out of memory for buffers of %zu bytes", n);
	}
	return HOIST_OK;
}

static void *worker(void *arg)
{
	struct vrun *r = arg;
	struct vbuf b;
	enum hoist_status st = buffers_alloc(r, &b);
	bool have = st == HOIST_OK;
	if (!have)
		fail(r, st);
	while (st == HOIST_OK && !atomic_load(&r->stop)) {
		size_t i = atomic_fetch_add(&r->next, 1);
		if (i >= r->v->ntensors)
			break;
		st = check_tensor(r, &b, r->order[i]);
		if (st != HOIST_OK)
			fail(r, st);
	}
	if (have)
		buffers_free(r, &b);
	pthread_mutex_lock(&r->lock);
	r->running--;
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

static int larger_first(const void *a, const void *b, void *arg)
{
	const struct hoist_checkpoint *ck = arg;
	size_t i = *(const size_t *)a, j = *(const size_t *)b;
	uint64_t x = hoist_checkpoint_tensor(ck, i)->nbytes;
	uint64_t y = hoist_checkpoint_tensor(ck, j)->nbytes;
	if (x != y)
		return x > y ? -1 : 1;
	return i < j ? -1 : i > j;
}

static unsigned default_threads(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return (unsigned)HOIST__MAX(1, HOIST__MIN(MAX_THREADS, n));
}

/* The devices tensors landed on, each with its lock; the read-back buffers come from
 * the first that is not host memory (pinned where it is a GPU). */
static enum hoist_status find_devices(struct vrun *r)
{
	for (size_t i = 0; i < r->v->ntensors; i++) {
		struct hoist__dev *dev;
		uint64_t addr;
		enum hoist_status st = hoist__model_locate(r->model, i, &dev, &addr);
		if (st != HOIST_OK)
			return st;
		if (!dev || vdev_of(r, dev))
			continue;
		if (r->ndevs == HOIST__ARRAY_SIZE(r->devs))
			return hoist__error(HOIST_ERR_INVALID, "verify: too many devices");
		r->devs[r->ndevs].dev = dev;
		pthread_mutex_init(&r->devs[r->ndevs].lock, NULL);
		r->ndevs++;
		if (!dev->host_addressable && !r->ring_dev)
			r->ring_dev = dev;
	}
	return HOIST_OK;
}

/* Starts the workers, reports progress until they are done, joins them. */
static enum hoist_status run_workers(struct vrun *r, const struct hoist_verify_options *opt,
                                     unsigned nthreads, uint64_t total)
{
	pthread_t tids[MAX_THREADS];
	unsigned started = 0;
	enum hoist_status st = HOIST_OK;
	pthread_mutex_lock(&r->lock);
	for (; started < nthreads; started++) {
		r->running++;
		if (pthread_create(&tids[started], NULL, worker, r) != 0) {
			r->running--;
			break;
		}
	}
	if (started == 0) {
		pthread_mutex_unlock(&r->lock);
		return hoist__error(HOIST_ERR_NOMEM, "verify: cannot start a thread");
	}
	while (r->running > 0) {
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += 100 * 1000 * 1000;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&r->cond, &r->lock, &until);
		if (opt && opt->progress && r->running > 0 && !atomic_load(&r->stop)) {
			pthread_mutex_unlock(&r->lock);
			if (opt->progress(atomic_load(&r->done), total, opt->progress_arg) != 0) {
				st = HOIST_ERR_CANCELLED;
				atomic_store(&r->stop, true);
			}
			pthread_mutex_lock(&r->lock);
		}
	}
	pthread_mutex_unlock(&r->lock);
	for (unsigned i = 0; i < started; i++)
		pthread_join(tids[i], NULL);
	r->v->summary.threads = started;
	if (r->status != HOIST_OK)
		return hoist__error(r->status, "%s", r->errmsg);
	if (st == HOIST_ERR_CANCELLED)
		return hoist__error(st, "verify cancelled by the progress callback");
	if (opt && opt->progress && opt->progress(total, total, opt->progress_arg) != 0)
		return hoist__error(HOIST_ERR_CANCELLED,
		                    "verify cancelled by the progress callback");
	return HOIST_OK;
}

static void summarize(struct vrun *r)
{
	struct hoist_verify_summary *s = &r->v->summary;
	s->tensors = r->v->ntensors;
	for (size_t i = 0; i < r->v->ntensors; i++) {
		const struct hoist_verify_tensor *t = &r->v->tensors[i];
		switch (t->result) {
		case HOIST_VERIFY_MATCH: s->matched++; break;
		case HOIST_VERIFY_DIFFER: s->differ++; break;
		case HOIST_VERIFY_IN_FILE: s->in_file++; break;
		}
		if (t->result != HOIST_VERIFY_IN_FILE)
			s->landed_bytes += t->nbytes;
	}
	s->in_place_bytes = r->in_place;
	s->read_back_bytes = r->read_back;
	s->file_bytes = r->file_bytes;
}

enum hoist_status hoist_model_verify(const struct hoist_model *model,
                                     const struct hoist_verify_options *opt,
                                     struct hoist_verify **out)
{
	double t0 = hoist__now();
	if (out)
		*out = NULL;
	if (!model || !out)
		return hoist__error(HOIST_ERR_INVALID, "hoist_model_verify: NULL model or out");
	struct vrun *r = hoist__calloc(1, sizeof *r);
	struct hoist_verify *v = hoist__calloc(1, sizeof *v);
	enum hoist_status st = HOIST_OK;
	size_t n = hoist_model_tensor_count(model);
	if (!r || !v) {
		st = hoist__error(HOIST_ERR_NOMEM, "verify: out of memory");
		goto out;
	}
	pthread_mutex_init(&r->lock, NULL);
	pthread_mutex_init(&r->source_lock, NULL);
	pthread_cond_init(&r->cond, NULL);
	r->model = model;
	r->v = v;
	r->flags = opt ? opt->flags : 0;
	r->chunk = opt && opt->chunk_bytes ? opt->chunk_bytes : DEFAULT_CHUNK;
	/* whole elements of every dtype a load converts between, and at most 1 GiB */
	r->chunk = HOIST__MAX(16, HOIST__MIN(r->chunk, 1ull << 30)) & ~(uint64_t)15;
	v->ntensors = n;
	v->tensors = hoist__calloc(n ? n : 1, sizeof *v->tensors);
	r->order = hoist__calloc(n ? n : 1, sizeof *r->order);
	if (!v->tensors || !r->order) {
		st = hoist__error(HOIST_ERR_NOMEM, "verify: out of memory for %zu tensors", n);
		goto out;
	}
	r->ckpt = hoist__model_checkpoint(model);
	r->sources = hoist__calloc(hoist_checkpoint_shard_count(r->ckpt) + 1, sizeof *r->sources);
	r->maps = hoist__calloc(hoist_checkpoint_shard_count(r->ckpt) + 1, sizeof *r->maps);
	if (!r->sources || !r->maps) {
		st = hoist__error(HOIST_ERR_NOMEM, "verify: out of memory");
		goto out;
	}
	if ((st = find_devices(r)) != HOIST_OK)
		goto out;
	uint64_t total = 0;
	for (size_t i = 0; i < n; i++) {
		r->order[i] = i;
		total += hoist_model_tensor(model, i)->nbytes;
	}
	qsort_r(r->order, n, sizeof *r->order, larger_first, (void *)r->ckpt);
	unsigned nthreads = opt && opt->threads ? opt->threads : default_threads();
	nthreads = (unsigned)HOIST__MIN(HOIST__MIN(nthreads, MAX_THREADS), HOIST__MAX(n, 1));
	if ((st = run_workers(r, opt, nthreads, total)) != HOIST_OK)
		goto out;
	/* a file written while it was hashed: its differences are the file's, not the
	 * load's */
	for (size_t i = 0; i < hoist_checkpoint_shard_count(r->ckpt); i++)
		if (r->sources[i] && (st = hoist__source_verify(
		                              r->sources[i], hoist__checkpoint_shard_id(r->ckpt, i),
		                              "while it was being verified")) != HOIST_OK)
			goto out;
	summarize(r);
	v->summary.seconds = hoist__now() - t0;
out:
	if (r) {
		for (size_t i = 0; r->sources && i < hoist_checkpoint_shard_count(r->ckpt); i++) {
			if (r->maps && r->maps[i])
				r->sources[i]->methods->unmap(
				        r->sources[i], r->maps[i],
				        hoist_checkpoint_shard(r->ckpt, i)->size);
			hoist__source_close(r->sources[i]);
		}
		hoist__free(r->sources);
		hoist__free(r->maps);
		hoist__free(r->order);
		for (size_t i = 0; i < r->ndevs; i++)
			pthread_mutex_destroy(&r->devs[i].lock);
		pthread_mutex_destroy(&r->lock);
		pthread_mutex_destroy(&r->source_lock);
		pthread_cond_destroy(&r->cond);
		hoist__free(r);
	}
	if (st != HOIST_OK) {
		hoist_verify_free(v);
		return st;
	}
	*out = v;
	return HOIST_OK;
}

void hoist_verify_free(struct hoist_verify *v)
{
	if (!v)
		return;
	hoist__free(v->tensors);
	hoist__free(v);
}

size_t hoist_verify_tensor_count(const struct hoist_verify *v)
{
	return v ? v->ntensors : 0;
}

const struct hoist_verify_tensor *hoist_verify_tensor(const struct hoist_verify *v, size_t i)
{
	return v && i < v->ntensors ? &v->tensors[i] : NULL;
}

const struct hoist_verify_summary *hoist_verify_summary(const struct hoist_verify *v)
{
	return v ? &v->summary : NULL;
}
