/*
 * checkpoint.c - open a checkpoint (one .safetensors file, a model directory, or a
 * model.safetensors.index.json), validate every shard's header and the index
 * against each other, read config.json, and answer questions about the tensors.
 * Reads headers only: no tensor bytes.
 *
 * Shard headers are read and validated on min(shards, cores, 8) threads (the calling
 * thread among them) when the index lists 8,192 tensors or more: a 100,000-tensor
 * checkpoint's headers are about 10 MB of JSON.
 * Results are merged in shard order on the calling thread, so the error reported is
 * always the first failing shard's, whatever order the threads ran in.
 */
#include "checkpoint.h"
#include "groups.h"
#include "hub.h"
#include "json.h"
#include "safetensors.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#define INDEX_NAME "model.safetensors.index.json"
#define SINGLE_NAME "model.safetensors"
/* How many index/shard disagreements one message lists. */
#define MAX_LISTED 6
/* Most threads reading shard headers: beyond this, the index and the merge (on one
 * thread) dominate. */
#define MAX_HEADER_THREADS 8
/* Fewer tensors than this (as the index counts them) are read on the calling thread:
 * the fast reader takes ~0.4 us a tensor, so 8,192 are ~3 ms, and starting threads on
 * a busy machine cost more than that (the 7B layout's 730 tensors: 0.9 ms median on
 * one thread, 1.0-2.1 ms on two, p90 4 ms, at load 2 on 2 cores). */
#define MIN_TENSORS_FOR_THREADS 8192
/* Header threads' stacks: jansson parses nesting by recursion, up to 2048 levels on
 * a hostile header (a few hundred KiB); not left to a platform's default. */
#define HEADER_THREAD_STACK (4u << 20)
/* hoist_errmsg()'s capacity (error.c): a worker's message is carried back whole. */
#define MESSAGE_SIZE 1024

struct shard {
	char *path;
	struct hoist_shard info;  /* path and size, as the accessor returns them */
	struct hoist__file_id id; /* the file its header was read from */
	struct hoist__st_header header;
};

struct hoist_checkpoint {
	size_t shard_count;
	struct shard *shards;
	size_t tensor_count;
	struct hoist_tensor_info *tensors; /* names and shapes borrowed from the shards */
	size_t *by_name;                   /* tensor indices sorted by name */
	uint64_t total_bytes;
	size_t metadata_count;
	struct hoist_metadata *metadata; /* strings borrowed from the shards' headers */
	char *architecture;
	char *config_dtype;
	struct hoist__strings warnings;
	double open_seconds;
	struct hoist__families *families; /* computed on first use */
};

/* ---- small helpers ---------------------------------------------------------------- */

static enum hoist_status nomem(void)
{
	return hoist__error(HOIST_ERR_NOMEM, "out of memory");
}

/* dir + name, where dir is "" or ends with '/'. */
static char *join(const char *dir, const char *name)
{
	size_t a = strlen(dir), b = strlen(name);
	char *p = hoist__malloc(a + b + 1);
	if (p) {
		memcpy(p, dir, a);
		memcpy(p + a, name, b + 1);
	}
	return p;
}

/* Reads and validates one shard's header. */
static enum hoist_status load_shard(struct shard *s)
{
	struct hoist__source *src = NULL;
	unsigned char prefix[8];
	char *header = NULL;
	enum hoist_status status = hoist__source_open(s->path, 0, &src);
	if (status != HOIST_OK)
		return status;
	uint64_t n, size = s->info.size = src->size;
	s->id = src->id;
	if (size < 8) {
		status = hoist__error(
		        HOIST_ERR_FORMAT,
		        "%s: file is %llu bytes, shorter than the 8-byte header length", s->path,
		        (unsigned long long)size);
		goto out;
	}
	if (hoist__source_read_full(src, prefix, 8, 0) != 0) {
		status = hoist__error(HOIST_ERR_IO, "%s: cannot read the header length: %s",
		                      s->path, strerror(errno));
		goto out;
	}
	if ((status = hoist__st_check_prefix(s->path, prefix, size, &n)) != HOIST_OK)
		goto out;
	if (!(header = hoist__malloc((size_t)n))) {
		status = hoist__error(HOIST_ERR_NOMEM, "%s: out of memory for a %llu-byte header",
		                      s->path, (unsigned long long)n);
		goto out;
	}
	if (hoist__source_read_full(src, header, (size_t)n, 8) != 0) {
		status = hoist__error(HOIST_ERR_IO, "%s: cannot read the %llu-byte header: %s",
		                      s->path, (unsigned long long)n, strerror(errno));
		goto out;
	}
	status = hoist__st_parse(s->path, header, n, size, &s->header);
out:
	hoist__free(header);
	hoist__source_close(src);
	return status;
}

/* ---- reading the shards' headers on a few threads --------------------------------- */

/* 0: automatic (see header_threads); tests set it to run many threads on few cores. */
static atomic_uint forced_threads;

void hoist_checkpoint_set_header_threads(unsigned n)
{
	atomic_store(&forced_threads, n);
}

static size_t header_threads(size_t shards, size_t tensors)
{
	size_t n = atomic_load(&forced_threads);
	if (n == 0 && tensors < MIN_TENSORS_FOR_THREADS)
		return 1;
	if (n == 0) {
		cpu_set_t set;
		long online = sysconf(_SC_NPROCESSORS_ONLN);
		if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
			n = (size_t)CPU_COUNT(&set);
		else
			n = online > 0 ? (size_t)online : 1;
		n = HOIST__MIN(n, MAX_HEADER_THREADS);
	}
	return HOIST__MIN(n, shards);
}

/* Shards are claimed in increasing order; a shard after one that failed is skipped
 * (its result could not be reported), one before it never is (it could fail too and
 * would then be the one to report). */
struct shard_pool {
	struct shard *shards;
	size_t count;
	atomic_size_t next;
	atomic_size_t first_failed; /* count while none has */
};

struct shard_worker {
	struct shard_pool *pool;
	pthread_t thread;
	bool started;
	size_t failed; /* the shard this worker failed on, or pool->count */
	enum hoist_status status;
	char message[MESSAGE_SIZE]; /* its hoist_errmsg() then: messages are per thread */
};

static void *shard_worker_run(void *arg)
{
	struct shard_worker *w = arg;
	struct shard_pool *p = w->pool;
	for (;;) {
		size_t s = atomic_fetch_add(&p->next, 1);
		if (s >= p->count || s > atomic_load(&p->first_failed))
			break;
		enum hoist_status status = load_shard(&p->shards[s]);
		if (status != HOIST_OK) {
			w->failed = s;
			w->status = status;
			snprintf(w->message, sizeof w->message, "%s", hoist_errmsg());
			size_t first = atomic_load(&p->first_failed);
			while (s < first &&
			       !atomic_compare_exchange_weak(&p->first_failed, &first, s))
				;
			break; /* every shard this worker could claim now comes after s */
		}
	}
	return NULL;
}

/* Loads every shard's header; on failure, reports the first failing shard's error.
 * tensors: how many the index lists (the work to share). */
static enum hoist_status load_shards(struct shard *shards, size_t count, size_t tensors)
{
	size_t nthreads = header_threads(count, tensors);
	if (nthreads <= 1) {
		for (size_t s = 0; s < count; s++) {
			enum hoist_status status = load_shard(&shards[s]);
			if (status != HOIST_OK)
				return status;
		}
		return HOIST_OK;
	}
	/* jansson seeds its hash function on first use; doing it here, before any thread,
	 * keeps the workers' parsers from racing to do it. */
	json_object_seed(0);
	struct shard_pool pool = {.shards = shards, .count = count};
	atomic_init(&pool.next, 0);
	atomic_init(&pool.first_failed, count);
	/* On the stack: at most MAX_HEADER_THREADS, and no allocation to fail here. */
	struct shard_worker workers[MAX_HEADER_THREADS];
	for (size_t i = 0; i < nthreads; i++)
		workers[i] = (struct shard_worker){.pool = &pool, .failed = count};
	/* The calling thread is worker 0. A thread that cannot start leaves its share to
	 * the others. */
	pthread_attr_t attr;
	bool attr_ok = pthread_attr_init(&attr) == 0;
	if (attr_ok && pthread_attr_setstacksize(&attr, HEADER_THREAD_STACK) != 0) {
		pthread_attr_destroy(&attr);
		attr_ok = false;
	}
	for (size_t i = 1; i < nthreads; i++)
		workers[i].started = pthread_create(&workers[i].thread, attr_ok ? &attr : NULL,
		                                    shard_worker_run, &workers[i]) == 0;
	if (attr_ok)
		pthread_attr_destroy(&attr);
	shard_worker_run(&workers[0]);
	struct shard_worker *first = NULL;
	for (size_t i = 0; i < nthreads; i++) {
		if (i > 0 && workers[i].started)
			pthread_join(workers[i].thread, NULL);
		if (workers[i].failed < count && (!first || workers[i].failed < first->failed))
			first = &workers[i];
	}
	if (first)
		return hoist__error(first->status, "%s", first->message);
	return HOIST_OK;
}

/* ---- the index ---------------------------------------------------------------------- */

static int cmp_str_ptr(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* A shard file name from the index must name a file in the index's directory. */
static bool shard_name_ok(const char *name)
{
	return name[0] != '\0' && strcmp(name, ".") != 0 && strcmp(name, "..") != 0 &&
	       !strchr(name, '/');
}

/* Parses the index: fills the sorted, unique shard names (borrowed from *root). */
static enum hoist_status parse_index(const char *path, json_t **root_out, json_t **weight_map_out,
                                     const char ***names_out, size_t *count_out)
{
	const char **names = NULL;
	json_t *root = NULL;
	enum hoist_status status = hoist__json_read_file(path, JSON_REJECT_DUPLICATES, &root);
	if (status != HOIST_OK)
		return status;
	json_t *wm = json_is_object(root) ? json_object_get(root, "weight_map") : NULL;
	if (!json_is_object(wm)) {
		status = hoist__error(HOIST_ERR_FORMAT,
		                      "%s: no \"weight_map\" object (tensor name -> shard file)",
		                      path);
		goto out;
	}
	size_t n = json_object_size(wm);
	if (n == 0) {
		status = hoist__error(HOIST_ERR_FORMAT, "%s: \"weight_map\" is empty", path);
		goto out;
	}
	if (!(names = hoist__calloc(n, sizeof *names))) {
		status = nomem();
		goto out;
	}
	size_t i = 0;
	const char *key;
	json_t *v;
	json_object_foreach(wm, key, v)
	{
		if (!json_is_string(v)) {
			status = hoist__error(HOIST_ERR_FORMAT,
			                      "%s: weight_map entry \"%s\" is not a file name",
			                      path, key);
			goto out;
		}
		const char *file = json_string_value(v);
		if (!shard_name_ok(file)) {
			status = hoist__error(
			        HOIST_ERR_FORMAT,
			        "%s: weight_map entry \"%s\" names shard \"%s\", which is not a "
			        "plain file name in the index's directory",
			        path, key, file);
			goto out;
		}
		/* Maps list a shard's tensors together: dropping repeats of the previous
		 * name leaves about one per shard to sort. */
		if (i == 0 || strcmp(names[i - 1], file) != 0)
			names[i++] = file;
	}
	n = i;
	qsort(names, n, sizeof *names, cmp_str_ptr);
	size_t u = 0;
	for (i = 0; i < n; i++)
		if (u == 0 || strcmp(names[u - 1], names[i]) != 0)
			names[u++] = names[i];
	*root_out = root;
	*weight_map_out = wm;
	*names_out = names;
	*count_out = u;
	root = NULL;
	names = NULL;
out:
	hoist__free(names);
	json_decref(root);
	return status;
}

/* Appends to a listing message, counting what did not fit. */
struct listing {
	char text[760];
	size_t len;
	size_t count;
};

static void list_add(struct listing *l, const char *fmt, ...) HOIST__PRINTF(2, 3);
static void list_add(struct listing *l, const char *fmt, ...)
{
	if (l->count++ >= MAX_LISTED)
		return;
	if (l->len + 1 >= sizeof l->text)
		return;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(l->text + l->len, sizeof l->text - l->len, fmt, ap);
	va_end(ap);
	if (n > 0)
		l->len = HOIST__MIN(l->len + (size_t)n, sizeof l->text - 1);
}

static const char *base_name(const char *path)
{
	const char *s = strrchr(path, '/');
	return s ? s + 1 : path;
}

/* Finds name's position in by_name. */
static bool find_position(const struct hoist_checkpoint *c, const char *name, size_t *pos)
{
	size_t lo = 0, hi = c->tensor_count;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int cmp = strcmp(c->tensors[c->by_name[mid]].name, name);
		if (cmp == 0) {
			*pos = mid;
			return true;
		}
		if (cmp < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

static bool find_index(const struct hoist_checkpoint *c, const char *name, size_t *index)
{
	size_t pos;
	if (!find_position(c, name, &pos))
		return false;
	*index = c->by_name[pos];
	return true;
}

static bool find_shard(const struct hoist_checkpoint *c, const char *file, size_t *shard)
{
	/* Shards are in sorted file-name order; every shard path ends in its name. */
	size_t lo = 0, hi = c->shard_count;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int cmp = strcmp(base_name(c->shards[mid].path), file);
		if (cmp == 0) {
			*shard = mid;
			return true;
		}
		if (cmp < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

/* Every weight_map entry must be in the shard it names, and every tensor in the map. */
static enum hoist_status check_index(struct hoist_checkpoint *c, const char *path, json_t *root,
                                     json_t *wm)
{
	struct listing l = {0};
	size_t matched = 0, shard = 0, next = 0;
	const char *key, *last_file = NULL;
	json_t *v;
	json_object_foreach(wm, key, v)
	{
		const char *file = json_string_value(v);
		if (!last_file || strcmp(file, last_file) != 0)
			find_shard(c, file,
			           &shard); /* always found: the shards came from the map */
		last_file = file;
		/* Maps are usually written in name order (transformers sorts the keys): then
		 * each name is the one after the last found, and needs no search. */
		size_t pos = next;
		if (!(next < c->tensor_count &&
		      strcmp(c->tensors[c->by_name[next]].name, key) == 0) &&
		    !find_position(c, key, &pos)) {
			list_add(&l, "%s\"%s\" is in no shard (the index says %s)",
			         l.count ? "; " : "", key, file);
			continue;
		}
		next = pos + 1;
		const struct hoist_tensor_info *t = &c->tensors[c->by_name[pos]];
		if (t->shard != shard)
			list_add(&l, "%s\"%s\" is in %s (the index says %s)", l.count ? "; " : "",
			         key, base_name(c->shards[t->shard].path), file);
		else
			matched++;
	}
	if (matched != c->tensor_count) {
		for (size_t i = 0; i < c->tensor_count; i++) {
			const struct hoist_tensor_info *t = &c->tensors[i];
			if (!json_object_get(wm, t->name))
				list_add(&l, "%s\"%s\" in %s is not in the index",
				         l.count ? "; " : "", t->name,
				         base_name(c->shards[t->shard].path));
		}
	}
	if (l.count)
		return hoist__error(HOIST_ERR_FORMAT,
		                    "%s: the index and the shards disagree on %zu tensor%s: %s%s",
		                    path, l.count, l.count == 1 ? "" : "s", l.text,
		                    l.count > MAX_LISTED ? "; ..." : "");

	json_t *meta = json_object_get(root, "metadata");
	json_t *total = json_is_object(meta) ? json_object_get(meta, "total_size") : NULL;
	if (total && (!json_is_integer(total) || json_integer_value(total) < 0))
		return hoist__strings_addf(
		        &c->warnings,
		        "%s: metadata.total_size is not a non-negative integer; ignored", path);
	if (total && (uint64_t)json_integer_value(total) != c->total_bytes)
		return hoist__strings_addf(
		        &c->warnings,
		        "%s: metadata.total_size says %lld bytes but the shards' tensors hold %llu",
		        path, (long long)json_integer_value(total),
		        (unsigned long long)c->total_bytes);
	return HOIST_OK;
}

/* ---- config.json, metadata ------------------------------------------------------ */

static enum hoist_status read_config(struct hoist_checkpoint *c, const char *dir)
{
	enum hoist_status status = HOIST_OK;
	char *path = join(dir, "config.json");
	json_t *root = NULL;
	struct stat st;
	if (!path)
		return nomem();
	if (stat(path, &st) != 0)
		goto out; /* no config.json: nothing to say */
	status = hoist__json_read_file(path, 0, &root);
	if (status == HOIST_ERR_NOMEM)
		goto out;
	if (status != HOIST_OK) {
		status = hoist__strings_addf(&c->warnings, "%s; config ignored", hoist_errmsg());
		goto out;
	}
	if (!json_is_object(root)) {
		status = hoist__strings_addf(&c->warnings, "%s: not a JSON object; config ignored",
		                             path);
		goto out;
	}
	json_t *arch = json_array_get(json_object_get(root, "architectures"), 0);
	json_t *dtype = json_object_get(root, "torch_dtype");
	if (!dtype)
		dtype = json_object_get(root, "dtype");
	if (json_is_string(arch) && !(c->architecture = hoist__strdup(json_string_value(arch)))) {
		status = nomem();
		goto out;
	}
	if (json_is_string(dtype) && !(c->config_dtype = hoist__strdup(json_string_value(dtype)))) {
		status = nomem();
		goto out;
	}
out:
	json_decref(root);
	hoist__free(path);
	return status;
}

struct meta_ref {
	const char *key, *value;
	size_t seq; /* shard order, then header order: the first wins */
};

static int cmp_meta(const void *a, const void *b)
{
	const struct meta_ref *x = a, *y = b;
	int c = strcmp(x->key, y->key);
	if (c)
		return c;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static enum hoist_status merge_metadata(struct hoist_checkpoint *c)
{
	size_t n = 0;
	for (size_t s = 0; s < c->shard_count; s++)
		n += c->shards[s].header.metadata_count;
	if (n == 0)
		return HOIST_OK;
	struct meta_ref *refs = hoist__calloc(n, sizeof *refs);
	c->metadata = hoist__calloc(n, sizeof *c->metadata);
	if (!refs || !c->metadata) {
		hoist__free(refs);
		return nomem();
	}
	size_t k = 0;
	for (size_t s = 0; s < c->shard_count; s++) {
		const struct hoist__st_header *h = &c->shards[s].header;
		for (size_t i = 0; i < h->metadata_count; i++, k++)
			refs[k] = (struct meta_ref){h->metadata_keys[i], h->metadata_values[i], k};
	}
	qsort(refs, n, sizeof *refs, cmp_meta);
	for (size_t i = 0; i < n; i++) {
		if (c->metadata_count &&
		    strcmp(c->metadata[c->metadata_count - 1].key, refs[i].key) == 0)
			continue;
		c->metadata[c->metadata_count++] =
		        (struct hoist_metadata){refs[i].key, refs[i].value};
	}
	hoist__free(refs);
	return HOIST_OK;
}

/* ---- open -------------------------------------------------------------------------- */

/* Gathers every shard's tensors into one array in file order and indexes names. */
static enum hoist_status gather(struct hoist_checkpoint *c)
{
	enum hoist_status status = HOIST_OK;
	struct hoist__name_ref *refs = NULL;
	size_t n = 0;
	for (size_t s = 0; s < c->shard_count; s++)
		n += c->shards[s].header.tensor_count;
	c->tensors = hoist__calloc(n ? n : 1, sizeof *c->tensors);
	c->by_name = hoist__calloc(n ? n : 1, sizeof *c->by_name);
	refs = hoist__calloc(n ? 2 * n : 1, sizeof *refs);
	if (!c->tensors || !c->by_name || !refs) {
		status = nomem();
		goto out;
	}
	/* Each shard's names come sorted (its header's by_name): the merge sort has one
	 * run per shard to merge. */
	for (size_t s = 0; s < c->shard_count; s++) {
		const struct hoist__st_header *h = &c->shards[s].header;
		size_t base = c->tensor_count;
		for (size_t i = 0; i < h->tensor_count; i++) {
			struct hoist_tensor_info *t = &c->tensors[c->tensor_count];
			*t = h->tensors[i];
			t->shard = (uint32_t)s;
			refs[c->tensor_count] = (struct hoist__name_ref){
			        h->tensors[h->by_name[i]].name, base + h->by_name[i]};
			c->tensor_count++;
			/* Each shard's data fits its file, so this sum cannot overflow unless
			 * the files' sizes do; check anyway. */
			if (!hoist__add_u64(c->total_bytes, t->nbytes, &c->total_bytes)) {
				status = hoist__error(HOIST_ERR_FORMAT,
				                      "%s: total tensor bytes overflow",
				                      c->shards[s].path);
				goto out;
			}
		}
	}
	hoist__sort_names(refs, refs + n, n);
	for (size_t i = 0; i < n; i++)
		c->by_name[i] = refs[i].index;
	struct listing l = {0};
	for (size_t i = 1; i < n; i++) {
		const struct hoist_tensor_info *a = &c->tensors[c->by_name[i - 1]];
		const struct hoist_tensor_info *b = &c->tensors[c->by_name[i]];
		if (strcmp(a->name, b->name) == 0)
			list_add(&l, "%s\"%s\" in %s and %s", l.count ? "; " : "", a->name,
			         base_name(c->shards[a->shard].path),
			         base_name(c->shards[b->shard].path));
	}
	if (l.count)
		status = hoist__error(
		        HOIST_ERR_FORMAT, "duplicate tensor name%s across shards: %s%s",
		        l.count == 1 ? "" : "s", l.text, l.count > MAX_LISTED ? "; ..." : "");
out:
	hoist__free(refs);
	return status;
}

static bool has_suffix(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* For a directory with no checkpoint hoist reads: what it holds instead, as "; it
 * holds ..." (or "" when nothing there explains it). */
static const char *what_is_here(const char *dir, char *buf, size_t size)
{
	DIR *d = opendir(dir);
	char other[256] = "";
	bool torch = false, gguf = false;
	size_t seen = 0;
	buf[0] = '\0';
	if (!d)
		return buf;
	for (struct dirent *e; (e = readdir(d)) && seen < 10000; seen++) {
		const char *n = e->d_name;
		if (has_suffix(n, ".bin") || has_suffix(n, ".bin.index.json") ||
		    has_suffix(n, ".pt") || has_suffix(n, ".pth"))
			torch = true;
		else if (has_suffix(n, ".gguf"))
			gguf = true;
		else if (has_suffix(n, ".safetensors") && !other[0])
			snprintf(other, sizeof other, "%s", n);
	}
	closedir(d);
	if (other[0])
		snprintf(buf, size, "; it holds %s: pass that file itself", other);
	else if (torch)
		snprintf(buf, size,
		         "; it holds PyTorch weights (pytorch_model.bin, *.pt), not safetensors: "
		         "convert them first (e.g. transformers' save_pretrained, which writes "
		         "safetensors)");
	else if (gguf)
		snprintf(buf, size, "; it holds GGUF files (llama.cpp's format), not safetensors");
	return buf;
}

static bool exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0;
}

enum hoist_status hoist_checkpoint_open(const char *path, const struct hoist_options *opt,
                                        struct hoist_checkpoint **out)
{
	enum hoist_status status = HOIST_OK;
	struct hoist_checkpoint *c = NULL;
	char *dir = NULL, *index_path = NULL, *single_path = NULL;
	json_t *index_root = NULL, *wm = NULL;
	const char **shard_names = NULL;
	size_t nshards = 0;
	double t0 = hoist__now();

	if (out)
		*out = NULL;
	if (!path || !*path || !out)
		return hoist__error(HOIST_ERR_INVALID, "hoist_checkpoint_open: %s",
		                    !out ? "out is NULL" : "no path");
	struct stat st;
	char hub_dir[4096];
	if (stat(path, &st) != 0) {
		/* nothing here by that name: a Hub model id in the local cache? */
		int err = errno;
		if (err != ENOENT || !hoist__hub_is_id(path))
			return hoist__error(HOIST_ERR_IO, "%s: %s", path, strerror(err));
		if (hoist__hub_resolve_text(path, hub_dir, sizeof hub_dir) != HOIST_OK) {
			char why[1024];
			snprintf(why, sizeof why, "%s", hoist_errmsg());
			return hoist__error(HOIST_ERR_IO, "%s: no such file or directory, and %s",
			                    path, why);
		}
		path = hub_dir;
		if (stat(path, &st) != 0)
			return hoist__error(HOIST_ERR_IO, "%s: %s", path, strerror(errno));
	}

	if (!(c = hoist__calloc(1, sizeof *c))) {
		status = nomem();
		goto out;
	}
	/* dir: "" or a prefix ending in '/', under which shards and config.json live. */
	if (S_ISDIR(st.st_mode)) {
		size_t len = strlen(path);
		dir = hoist__malloc(len + 2);
		if (!dir) {
			status = nomem();
			goto out;
		}
		memcpy(dir, path, len + 1);
		if (path[len - 1] != '/')
			memcpy(dir + len, "/", 2);
		index_path = join(dir, INDEX_NAME);
		single_path = join(dir, SINGLE_NAME);
		if (!index_path || !single_path) {
			status = nomem();
			goto out;
		}
		if (!exists(index_path)) {
			hoist__free(index_path);
			index_path = NULL;
			if (!exists(single_path)) {
				char hint[512];
				status = hoist__error(HOIST_ERR_IO,
				                      "%s: no " INDEX_NAME " or " SINGLE_NAME
				                      " in this directory%s",
				                      path, what_is_here(path, hint, sizeof hint));
				goto out;
			}
		}
	} else {
		const char *base = base_name(path);
		if (!(dir = hoist__strndup(path, (size_t)(base - path)))) {
			status = nomem();
			goto out;
		}
		if (has_suffix(path, ".json"))
			index_path = hoist__strdup(path);
		else
			single_path = hoist__strdup(path);
		if (!index_path && !single_path) {
			status = nomem();
			goto out;
		}
	}

	if (index_path) {
		status = parse_index(index_path, &index_root, &wm, &shard_names, &nshards);
		if (status != HOIST_OK)
			goto out;
	} else {
		nshards = 1;
	}
	if (nshards > UINT32_MAX) {
		status = hoist__error(HOIST_ERR_FORMAT, "%s: more than 2^32 shards", index_path);
		goto out;
	}
	if (!(c->shards = hoist__calloc(nshards, sizeof *c->shards))) {
		status = nomem();
		goto out;
	}
	for (size_t s = 0; s < nshards; s++) {
		if (index_path)
			c->shards[s].path = join(dir, shard_names[s]);
		else
			c->shards[s].path = hoist__strdup(single_path);
		if (!c->shards[s].path) {
			status = nomem();
			goto out;
		}
		c->shards[s].info.path = c->shards[s].path;
		c->shard_count++;
	}
	if ((status = load_shards(c->shards, c->shard_count, wm ? json_object_size(wm) : 0)) !=
	    HOIST_OK)
		goto out;
	if ((status = gather(c)) != HOIST_OK)
		goto out;
	for (size_t s = 0; s < c->shard_count; s++) {
		const struct hoist__st_header *h = &c->shards[s].header;
		for (size_t i = 0; i < h->warnings.count; i++)
			if ((status = hoist__strings_add(&c->warnings, h->warnings.items[i])) !=
			    HOIST_OK)
				goto out;
	}
	if (index_path && (status = check_index(c, index_path, index_root, wm)) != HOIST_OK)
		goto out;
	if ((status = merge_metadata(c)) != HOIST_OK)
		goto out;
	if ((status = read_config(c, dir)) != HOIST_OK)
		goto out;
	if (opt)
		for (size_t i = 0; i < c->warnings.count; i++)
			hoist__log(opt->log, opt->log_arg, HOIST_LOG_WARNING, "%s",
			           c->warnings.items[i]);
	c->open_seconds = hoist__now() - t0;
	*out = c;
	c = NULL;
out:
	hoist_checkpoint_close(c);
	hoist__free(shard_names);
	json_decref(index_root);
	hoist__free(dir);
	hoist__free(index_path);
	hoist__free(single_path);
	return status;
}

void hoist_checkpoint_close(struct hoist_checkpoint *c)
{
	if (!c)
		return;
	for (size_t s = 0; s < c->shard_count; s++) {
		hoist__free(c->shards[s].path);
		hoist__st_header_free(&c->shards[s].header);
	}
	hoist__free(c->shards);
	hoist__free(c->tensors);
	hoist__free(c->by_name);
	hoist__free(c->metadata);
	hoist__free(c->architecture);
	hoist__free(c->config_dtype);
	hoist__strings_free(&c->warnings);
	hoist__families_free(c->families);
	hoist__free(c);
}

/* ---- accessors ------------------------------------------------------------------- */

size_t hoist_checkpoint_shard_count(const struct hoist_checkpoint *c)
{
	return c ? c->shard_count : 0;
}

const struct hoist_shard *hoist_checkpoint_shard(const struct hoist_checkpoint *c, size_t i)
{
	return c && i < c->shard_count ? &c->shards[i].info : NULL;
}

const struct hoist__file_id *hoist__checkpoint_shard_id(const struct hoist_checkpoint *c,
                                                        size_t shard)
{
	return c && shard < c->shard_count ? &c->shards[shard].id : NULL;
}

double hoist_checkpoint_open_seconds(const struct hoist_checkpoint *c)
{
	return c ? c->open_seconds : 0;
}

size_t hoist_checkpoint_tensor_count(const struct hoist_checkpoint *c)
{
	return c ? c->tensor_count : 0;
}

const struct hoist_tensor_info *hoist_checkpoint_tensor(const struct hoist_checkpoint *c,
                                                        size_t index)
{
	return c && index < c->tensor_count ? &c->tensors[index] : NULL;
}

enum hoist_status hoist_checkpoint_find(const struct hoist_checkpoint *c, const char *name,
                                        size_t *index)
{
	if (!c || !name || !index)
		return hoist__error(HOIST_ERR_INVALID, "hoist_checkpoint_find: NULL argument");
	if (!find_index(c, name, index))
		return hoist__error(HOIST_ERR_INVALID, "tensor \"%s\" is not in the checkpoint",
		                    name);
	return HOIST_OK;
}

uint64_t hoist_checkpoint_total_bytes(const struct hoist_checkpoint *c)
{
	return c ? c->total_bytes : 0;
}

size_t hoist_checkpoint_metadata_count(const struct hoist_checkpoint *c)
{
	return c ? c->metadata_count : 0;
}

const struct hoist_metadata *hoist_checkpoint_metadata(const struct hoist_checkpoint *c, size_t i)
{
	return c && i < c->metadata_count ? &c->metadata[i] : NULL;
}

const char *hoist_checkpoint_architecture(const struct hoist_checkpoint *c)
{
	return c ? c->architecture : NULL;
}

const char *hoist_checkpoint_config_dtype(const struct hoist_checkpoint *c)
{
	return c ? c->config_dtype : NULL;
}

size_t hoist_checkpoint_warning_count(const struct hoist_checkpoint *c)
{
	return c ? c->warnings.count : 0;
}

const char *hoist_checkpoint_warning(const struct hoist_checkpoint *c, size_t i)
{
	return c && i < c->warnings.count ? c->warnings.items[i] : NULL;
}

/* The families, built on first use. */
static const struct hoist__families *families(const struct hoist_checkpoint *c)
{
	if (!c)
		return NULL;
	if (!c->families) {
		/* A handle is used by one thread at a time, so filling the cache of a const
		 * checkpoint here races with nothing. */
		struct hoist_checkpoint *m = (struct hoist_checkpoint *)c;
		if (hoist__families_build(c->tensors, c->tensor_count, &m->families) != HOIST_OK)
			return NULL;
	}
	return c->families;
}

size_t hoist_checkpoint_layer_group_count(const struct hoist_checkpoint *c)
{
	const struct hoist__families *f = families(c);
	return f ? f->ngroups : 0;
}

const struct hoist_layer_group *hoist_checkpoint_layer_group(const struct hoist_checkpoint *c,
                                                             size_t i)
{
	const struct hoist__families *f = families(c);
	return f && i < f->ngroups ? &f->groups[i] : NULL;
}

size_t hoist_checkpoint_layer_family_count(const struct hoist_checkpoint *c)
{
	const struct hoist__families *f = families(c);
	return f ? f->count : 0;
}

const struct hoist_layer_family *hoist_checkpoint_layer_family(const struct hoist_checkpoint *c,
                                                               size_t i)
{
	const struct hoist__families *f = families(c);
	return f && i < f->count ? &f->items[i] : NULL;
}

void hoist_checkpoint_ungrouped(const struct hoist_checkpoint *c, size_t *tensors, uint64_t *bytes)
{
	const struct hoist__families *f = families(c);
	if (tensors)
		*tensors = f ? f->ungrouped_tensors : 0;
	if (bytes)
		*bytes = f ? f->ungrouped_bytes : 0;
}
