/* fuzzdrv.c - the fuzz targets' drivers and the promises they check (fuzzdrv.h). */
#include "fuzzdrv.h"
#include "hoist_testing.h"
#include "synth.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- the scratch directory -------------------------------------------------------- */

static char base[4096];
static bool base_owned;

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path);
}

static void remove_base(void)
{
	if (base_owned)
		nftw(base, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

void fuzz_set_dir(const char *dir)
{
	snprintf(base, sizeof base, "%s", dir);
}

static const char *work_dir(void)
{
	if (!base[0]) {
		const char *tmp = getenv("TMPDIR");
		snprintf(base, sizeof base, "%s/hoist-fuzz-XXXXXX", tmp && *tmp ? tmp : "/tmp");
		if (!mkdtemp(base)) {
			fprintf(stderr, "fuzzdrv: mkdtemp %s: %s\n", base, strerror(errno));
			abort();
		}
		base_owned = true;
		atexit(remove_base);
	}
	return base;
}

/* base/name/file, or base/name when file is NULL, into a rotating buffer of 4: copy
 * what must outlive the next calls. */
static const char *path_of(const char *name, const char *file)
{
	static char bufs[4][4400];
	static unsigned next;
	char *b = bufs[next++ % 4];
	if (file)
		snprintf(b, sizeof bufs[0], "%s/%s/%s", work_dir(), name, file);
	else
		snprintf(b, sizeof bufs[0], "%s/%s", work_dir(), name);
	return b;
}

static void need(bool ok, const char *what, const char *path)
{
	if (!ok) {
		fprintf(stderr, "fuzzdrv: %s %s: %s\n", what, path, strerror(errno));
		abort();
	}
}

static void write_file(const char *path, const void *data, size_t size)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	need(fd >= 0, "open", path);
	const char *p = data;
	while (size > 0) {
		ssize_t n = write(fd, p, size);
		if (n < 0 && errno == EINTR)
			continue;
		need(n > 0, "write", path);
		p += n;
		size -= (size_t)n;
	}
	need(close(fd) == 0, "close", path);
}

static void make_dir(const char *path)
{
	need(mkdir(path, 0755) == 0 || errno == EEXIST, "mkdir", path);
}

/* Empties a target's directory (the open target writes a fresh set each run). */
static void clear_dir(const char *path)
{
	nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
	make_dir(path);
}

/* A safetensors file: the 8-byte length, header, then data_size bytes (i * 7 + 1). */
static void write_st(const char *path, const char *header, size_t data_size)
{
	size_t n = strlen(header);
	unsigned char *buf = malloc(8 + n + data_size);
	need(buf != NULL, "malloc for", path);
	for (int i = 0; i < 8; i++)
		buf[i] = (unsigned char)((uint64_t)n >> (8 * i));
	memcpy(buf + 8, header, n);
	for (size_t i = 0; i < data_size; i++)
		buf[8 + n + i] = (unsigned char)(i * 7 + 1);
	write_file(path, buf, 8 + n + data_size);
	free(buf);
}

/* ---- results and promises ------------------------------------------------------ */

/* The input being run, for promises about what a message may contain. */
static const uint8_t *input;
static size_t input_size;

static void begin(struct fuzz_result *r, const uint8_t *data, size_t size)
{
	memset(r, 0, sizeof *r);
	input = data;
	input_size = size;
}

static bool input_contains(const char *text)
{
	return input && memmem(input, input_size, text, strlen(text)) != NULL;
}

static void broke(struct fuzz_result *r, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));
static void broke(struct fuzz_result *r, const char *fmt, ...)
{
	if (r->broken)
		return; /* the first broken promise is the one to report */
	r->broken = true;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->why, sizeof r->why, fmt, ap);
	va_end(ap);
}

/* Records the call's status and message; an error needs a message, and must be one
 * of `allowed` (a 0-terminated list after HOIST_OK's place: the errors the call
 * documents). */
static void record(struct fuzz_result *r, const char *call, enum hoist_status st, ...)
{
	r->status = st;
	snprintf(r->message, sizeof r->message, "%s", st == HOIST_OK ? "" : hoist_errmsg());
	if (st == HOIST_OK)
		return;
	if (!r->message[0])
		broke(r, "%s: %s without a message", call, hoist_status_name(st));
	if (strstr(r->message, "(null)") && !input_contains("(null)"))
		broke(r, "%s: message prints a NULL string: %s", call, r->message);
	va_list ap;
	va_start(ap, st);
	bool ok = false;
	for (int s; (s = va_arg(ap, int)) != 0;)
		ok |= s == (int)st;
	va_end(ap);
	if (!ok)
		broke(r, "%s: %s is not an error it documents (%s)", call, hoist_status_name(st),
		      r->message);
}

/* Everything an open checkpoint reports must hold together. */
static void check_checkpoint(const struct hoist_checkpoint *ck, struct fuzz_result *r)
{
	size_t ns = hoist_checkpoint_shard_count(ck), nt = hoist_checkpoint_tensor_count(ck);
	uint64_t total = 0;
	for (size_t i = 0; i < nt; i++) {
		const struct hoist_tensor_info *t = hoist_checkpoint_tensor(ck, i);
		if (!t || !t->name || t->shard >= ns || !hoist_dtype_name(t->dtype)) {
			broke(r, "tensor %zu: no name, shard or dtype", i);
			return;
		}
		const struct hoist_shard *s = hoist_checkpoint_shard(ck, t->shard);
		if (t->offset > s->size || t->nbytes > s->size - t->offset)
			broke(r, "tensor \"%s\": bytes [%llu, +%llu) outside its file of %llu",
			      t->name, (unsigned long long)t->offset, (unsigned long long)t->nbytes,
			      (unsigned long long)s->size);
		unsigned bits = hoist_dtype_bits(t->dtype);
		if (bits >= 8 && t->numel * (bits / 8) != t->nbytes)
			broke(r, "tensor \"%s\": %llu elements of %u bits in %llu bytes", t->name,
			      (unsigned long long)t->numel, bits, (unsigned long long)t->nbytes);
		size_t at;
		if (hoist_checkpoint_find(ck, t->name, &at) != HOIST_OK || at != i)
			broke(r, "tensor \"%s\" (%zu) is not found by its name", t->name, i);
		if (i > 0) {
			const struct hoist_tensor_info *p = hoist_checkpoint_tensor(ck, i - 1);
			if (p->shard > t->shard || (p->shard == t->shard && p->offset > t->offset))
				broke(r, "tensors %zu and %zu out of file order", i - 1, i);
		}
		total += t->nbytes;
	}
	if (total != hoist_checkpoint_total_bytes(ck))
		broke(r, "total bytes %llu, the tensors hold %llu",
		      (unsigned long long)hoist_checkpoint_total_bytes(ck),
		      (unsigned long long)total);
	for (size_t i = 0; i < hoist_checkpoint_metadata_count(ck); i++) {
		const struct hoist_metadata *m = hoist_checkpoint_metadata(ck, i);
		if (!m->key || !m->value)
			broke(r, "metadata %zu: NULL key or value", i);
		else if (i > 0 && strcmp(hoist_checkpoint_metadata(ck, i - 1)->key, m->key) >= 0)
			broke(r, "metadata not sorted and unique at \"%s\"", m->key);
	}
	for (size_t i = 0; i < hoist_checkpoint_warning_count(ck); i++)
		if (!hoist_checkpoint_warning(ck, i))
			broke(r, "warning %zu is NULL", i);
	size_t grouped = 0;
	for (size_t i = 0; i < hoist_checkpoint_layer_group_count(ck); i++)
		grouped += hoist_checkpoint_layer_group(ck, i)->tensors;
	size_t ungrouped;
	hoist_checkpoint_ungrouped(ck, &ungrouped, NULL);
	if (hoist_checkpoint_layer_group_count(ck) && grouped + ungrouped != nt)
		broke(r, "%zu tensors in groups and %zu in none, of %zu", grouped, ungrouped, nt);
}

static void check_plan(const struct hoist_checkpoint *ck, const struct hoist_plan *plan,
                       struct fuzz_result *r)
{
	size_t nd = hoist_plan_device_count(plan);
	if (hoist_plan_tensor_count(plan) != hoist_checkpoint_tensor_count(ck))
		broke(r, "the plan places %zu tensors of %zu", hoist_plan_tensor_count(plan),
		      hoist_checkpoint_tensor_count(ck));
	for (size_t i = 0; i < hoist_plan_tensor_count(plan); i++) {
		const struct hoist_placement *p = hoist_plan_tensor(plan, i);
		const struct hoist_tensor_info *t = hoist_checkpoint_tensor(ck, i);
		const struct hoist_plan_device *d = NULL;
		for (size_t k = 0; k < nd; k++) {
			const struct hoist_plan_device *x = hoist_plan_device(plan, k);
			if (x->device.kind == p->device.kind && x->device.index == p->device.index)
				d = x;
		}
		if (!d) {
			broke(r, "tensor \"%s\" placed on a device the plan does not list",
			      t->name);
			continue;
		}
		if (p->device.kind == HOIST_DEVICE_DISK) {
			if (p->offset != t->offset)
				broke(r, "disk tensor \"%s\" at %llu, in its file at %llu", t->name,
				      (unsigned long long)p->offset, (unsigned long long)t->offset);
			continue;
		}
		if (d->bytes && (p->offset > d->bytes || p->nbytes > d->bytes - p->offset))
			broke(r, "tensor \"%s\" at [%llu, +%llu) past its arena of %llu", t->name,
			      (unsigned long long)p->offset, (unsigned long long)p->nbytes,
			      (unsigned long long)d->bytes);
		if (d->bytes && p->offset % HOIST_ARENA_ALIGN)
			broke(r, "tensor \"%s\" at %llu: not aligned", t->name,
			      (unsigned long long)p->offset);
	}
	/* the printers take any plan (to a sink: what is written is the plan tests') */
	FILE *sink = fopen("/dev/null", "w");
	if (sink) {
		if (hoist_plan_print(plan, sink) != HOIST_OK ||
		    hoist_plan_print_json(plan, sink) != HOIST_OK)
			broke(r, "printing the plan to /dev/null failed: %s", hoist_errmsg());
		fclose(sink);
	}
}

/* Every tensor of a load, read back, equals its file's bytes (loads that convert are
 * not compared). */
static void check_bytes(const struct hoist_checkpoint *ck, const struct hoist_model *m,
                        struct fuzz_result *r)
{
	for (size_t i = 0; i < hoist_model_tensor_count(m) && !r->broken; i++) {
		const struct hoist_tensor_info *t = hoist_checkpoint_tensor(ck, i);
		const struct hoist_tensor *lt = hoist_model_tensor(m, i);
		if (lt->dtype != t->dtype || lt->nbytes != t->nbytes)
			continue;
		unsigned char *got = malloc(t->nbytes + 1), *want = malloc(t->nbytes + 1);
		int fd = open(hoist_checkpoint_shard(ck, t->shard)->path, O_RDONLY | O_CLOEXEC);
		if (!got || !want || fd < 0 ||
		    pread(fd, want, t->nbytes, (off_t)t->offset) != (ssize_t)t->nbytes)
			broke(r, "cannot read \"%s\" from its file to compare", t->name);
		else if (hoist_model_read(m, i, got, t->nbytes) != HOIST_OK)
			broke(r, "tensor \"%s\": hoist_model_read: %s", t->name, hoist_errmsg());
		else if (memcmp(got, want, t->nbytes) != 0)
			broke(r, "tensor \"%s\": loaded bytes differ from the file's", t->name);
		if (fd >= 0)
			close(fd);
		free(got);
		free(want);
	}
}

/* Plans ck for opt and loads it: each step's status must be one it documents; what
 * succeeds must hold together. */
static void plan_and_load(const struct hoist_checkpoint *ck, const struct hoist_options *opt,
                          struct fuzz_result *r)
{
	struct hoist_plan *plan = NULL;
	struct hoist_model *m = NULL;
	struct fuzz_result step = {0};
	enum hoist_status st = hoist_plan_create(ck, opt, &plan);
	record(&step, "hoist_plan_create", st, HOIST_ERR_INVALID, HOIST_ERR_NO_SPACE,
	       HOIST_ERR_NOMEM, HOIST_ERR_IO, HOIST_ERR_NO_DEVICE, 0);
	if (st == HOIST_OK) {
		check_plan(ck, plan, &step);
		st = hoist_model_load(plan, opt, &m);
		record(&step, "hoist_model_load", st, HOIST_ERR_INVALID, HOIST_ERR_NO_SPACE,
		       HOIST_ERR_NOMEM, HOIST_ERR_IO, HOIST_ERR_DEVICE, HOIST_ERR_NO_DEVICE, 0);
		if (st == HOIST_OK)
			check_bytes(ck, m, &step);
		else if (m)
			broke(&step, "hoist_model_load failed and left a model");
	} else if (plan) {
		broke(&step, "hoist_plan_create failed and left a plan");
	}
	if (step.broken)
		broke(r, "%s", step.why);
	hoist_model_free(m);
	hoist_plan_free(plan);
}

static struct hoist_sim_options sim_two = {.devices = 2, .capacity = 1 << 20};

/* Opens `path`: the status and message go to r; on success the checkpoint is checked,
 * planned and loaded (to cpu with small chunks, and to two small sim devices). */
static void open_and_load(const char *path, struct fuzz_result *r, bool load)
{
	struct hoist_checkpoint *ck = NULL;
	enum hoist_status st = hoist_checkpoint_open(path, NULL, &ck);
	record(r, "hoist_checkpoint_open", st, HOIST_ERR_IO, HOIST_ERR_FORMAT, HOIST_ERR_NOMEM,
	       HOIST_ERR_INVALID, 0);
	if (st != HOIST_OK) {
		if (ck)
			broke(r, "hoist_checkpoint_open failed and left a checkpoint");
		return;
	}
	check_checkpoint(ck, r);
	if (load && !r->broken) {
		struct hoist_options cpu = {.device = "cpu", .chunk_bytes = 4096, .threads = 2};
		plan_and_load(ck, &cpu, r);
		struct hoist_options sim = {.device = "sim", .sim = &sim_two, .threads = 2};
		plan_and_load(ck, &sim, r);
	}
	hoist_checkpoint_close(ck);
}

/* ---- index ------------------------------------------------------------------------ */

static const char *index_dir(void)
{
	static bool ready;
	const char *dir = path_of("index", NULL);
	if (!ready) {
		make_dir(dir);
		write_st(path_of("index", "model-00001-of-00002.safetensors"),
		         "{\"__metadata__\":{\"format\":\"pt\"},"
		         "\"a.weight\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]},"
		         "\"a.bias\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[16,22]}}",
		         22);
		write_st(path_of("index", "model-00002-of-00002.safetensors"),
		         "{\"b.weight\":{\"dtype\":\"U8\",\"shape\":[5],\"data_offsets\":[0,5]},"
		         "\"model.layers.0.x\":{\"dtype\":\"I64\",\"shape\":[1],"
		         "\"data_offsets\":[5,13]}}",
		         13);
		/* a shard whose header runs past its end */
		write_file(path_of("index", "broken.safetensors"), "\xe8\x03\0\0\0\0\0\0{}", 10);
		ready = true;
	}
	return dir;
}

void fuzz_index(const uint8_t *data, size_t size, struct fuzz_result *r)
{
	begin(r, data, size);
	char dir[4400];
	snprintf(dir, sizeof dir, "%s", index_dir());
	write_file(path_of("index", "model.safetensors.index.json"), data, size);
	open_and_load(dir, r, true);
}

/* ---- config.json ------------------------------------------------------------------ */

void fuzz_config(const uint8_t *data, size_t size, struct fuzz_result *r)
{
	static bool ready;
	begin(r, data, size);
	char dir[4400], config[4400];
	snprintf(dir, sizeof dir, "%s", path_of("config", NULL));
	snprintf(config, sizeof config, "%s", path_of("config", "config.json"));
	if (!ready) {
		make_dir(dir);
		write_st(path_of("config", "model.safetensors"),
		         "{\"w\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[0,8]}}", 8);
		ready = true;
	}
	write_file(config, data, size);
	/* hoist_checkpoint_open: a bad config.json is a warning, never an error */
	struct fuzz_result open = {0};
	open_and_load(dir, &open, false);
	if (open.broken)
		broke(r, "%s", open.why);
	if (open.status != HOIST_OK && open.status != HOIST_ERR_NOMEM)
		broke(r, "a config.json failed the open: %s", open.message);
	/* synth's layout from it: as given, and with a layer count and a scale (the
	 * input's size picks, so a finding replays alike) */
	struct hoist_synth_options so = {.source = config};
	if (size % 3 == 1)
		so.layers = 2;
	if (size % 3 == 2)
		so.scale = 0.25;
	struct hoist__synth_layout *l = NULL;
	enum hoist_status st = hoist__synth_layout(&so, &l);
	struct fuzz_result lr = {0};
	record(r, "hoist__synth_layout", st, HOIST_ERR_FORMAT, HOIST_ERR_INVALID, HOIST_ERR_IO,
	       HOIST_ERR_NOMEM, 0);
	if (st == HOIST_OK) {
		uint64_t total = 0, end = 0;
		uint32_t shard = 0;
		for (size_t i = 0; i < l->count; i++) {
			const struct hoist__synth_tensor *t = &l->tensors[i];
			uint64_t numel = 1;
			for (unsigned d = 0; d < t->ndim; d++)
				numel *= (uint64_t)t->shape[d];
			if (t->shard >= l->shards || t->shard < shard)
				broke(&lr, "synth tensor \"%s\": shard %u of %u, after %u", t->name,
				      t->shard, l->shards, shard);
			if (t->shard != shard)
				end = 0;
			shard = t->shard;
			if (t->offset < end)
				broke(&lr, "synth tensor \"%s\" overlaps the one before", t->name);
			if (hoist_dtype_bits(t->dtype) >= 8 &&
			    numel * (hoist_dtype_bits(t->dtype) / 8) != t->nbytes)
				broke(&lr, "synth tensor \"%s\": %llu elements in %llu bytes",
				      t->name, (unsigned long long)numel,
				      (unsigned long long)t->nbytes);
			end = t->offset + t->nbytes;
			total += t->nbytes;
		}
		if (total != l->total_bytes)
			broke(&lr, "synth layout: total %llu, its tensors %llu",
			      (unsigned long long)l->total_bytes, (unsigned long long)total);
		if (!l->config_json)
			broke(&lr, "synth layout without its config.json text");
	} else if (l) {
		broke(&lr, "hoist__synth_layout failed and left a layout");
	}
	hoist__synth_layout_free(l);
	if (lr.broken)
		broke(r, "%s", lr.why);
}

/* ---- the device-map file ----------------------------------------------------------- */

void fuzz_device_map(const uint8_t *data, size_t size, struct fuzz_result *r)
{
	static bool ready;
	static struct hoist_checkpoint *ck;
	begin(r, data, size);
	char dir[4400], map[4400];
	snprintf(dir, sizeof dir, "%s", path_of("device_map", NULL));
	snprintf(map, sizeof map, "%s", path_of("device_map", "map.json"));
	if (!ready) {
		/* names as transformers writes them, so the map's renames have work */
		make_dir(dir);
		write_st(path_of("device_map", "model.safetensors"),
		         "{\"lm_head.weight\":{\"dtype\":\"BF16\",\"shape\":[64],"
		         "\"data_offsets\":[0,128]},"
		         "\"model.embed_tokens.weight\":{\"dtype\":\"BF16\",\"shape\":[64],"
		         "\"data_offsets\":[128,256]},"
		         "\"model.layers.0.mlp.up_proj.weight\":{\"dtype\":\"F32\",\"shape\":[32],"
		         "\"data_offsets\":[256,384]},"
		         "\"model.layers.1.mlp.up_proj.weight\":{\"dtype\":\"F32\",\"shape\":[32],"
		         "\"data_offsets\":[384,512]},"
		         "\"model.norm.weight\":{\"dtype\":\"F16\",\"shape\":[8],"
		         "\"data_offsets\":[512,528]},"
		         "\"visual.blocks.0.attn.qkv.weight\":{\"dtype\":\"U8\",\"shape\":[9],"
		         "\"data_offsets\":[528,537]}}",
		         537);
		if (hoist_checkpoint_open(dir, NULL, &ck) != HOIST_OK) {
			fprintf(stderr, "fuzzdrv: %s\n", hoist_errmsg());
			abort();
		}
		ready = true;
	}
	write_file(map, data, size);
	/* sim GPUs with cpu and disk as the map says, then cpu as the target */
	struct hoist_options opt = {.device = "sim",
	                            .device_map = map,
	                            .sim = &sim_two,
	                            .max_memory = size % 2 ? "0=600B,1=600B,cpu=1KB" : NULL};
	struct hoist_plan *plan = NULL;
	enum hoist_status st = hoist_plan_create(ck, &opt, &plan);
	record(r, "hoist_plan_create", st, HOIST_ERR_INVALID, HOIST_ERR_NO_SPACE, HOIST_ERR_NOMEM,
	       HOIST_ERR_IO, HOIST_ERR_NO_DEVICE, 0);
	hoist_plan_free(plan);
	if (st == HOIST_OK)
		plan_and_load(ck, &opt, r);
	opt.device = "cpu";
	opt.max_memory = NULL;
	plan_and_load(ck, &opt, r);
}

/* ---- a whole checkpoint directory ------------------------------------------------ */

static bool name_ok(const char *name)
{
	if (!*name || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return false;
	for (const char *p = name; *p; p++)
		if (!(*p == '.' || *p == '_' || *p == '-' || (*p >= '0' && *p <= '9') ||
		      (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')))
			return false;
	return true;
}

static const uint8_t *find_mark(const uint8_t *p, const uint8_t *end)
{
	size_t n = strlen(FUZZ_FILE_MARK);
	for (; p && (size_t)(end - p) >= n; p++) {
		p = memchr(p, FUZZ_FILE_MARK[0], (size_t)(end - p));
		if (!p || (size_t)(end - p) < n)
			return NULL;
		if (memcmp(p, FUZZ_FILE_MARK, n) == 0)
			return p;
	}
	return NULL;
}

void fuzz_open(const uint8_t *data, size_t size, struct fuzz_result *r)
{
	begin(r, data, size);
	char dir[4400];
	snprintf(dir, sizeof dir, "%s", path_of("open", NULL));
	clear_dir(dir);
	const uint8_t *end = data + size, *mark = find_mark(data, end);
	const uint8_t *part_end = mark ? mark : end;
	if (part_end > data)
		write_file(path_of("open", "model.safetensors.index.json"), data,
		           (size_t)(part_end - data));
	for (int files = 0; mark && files < 8; files++) {
		const uint8_t *name = mark + strlen(FUZZ_FILE_MARK);
		const uint8_t *nl = memchr(name, '\n', (size_t)(end - name));
		if (!nl)
			break;
		const uint8_t *body = nl + 1;
		mark = find_mark(body, end);
		part_end = mark ? mark : end;
		char fname[65];
		if ((size_t)(nl - name) >= sizeof fname)
			continue;
		memcpy(fname, name, (size_t)(nl - name));
		fname[nl - name] = '\0';
		if (!name_ok(fname))
			continue;
		write_file(path_of("open", fname), body, (size_t)(part_end - body));
	}
	/* header threads: the input's size picks, so a finding replays alike */
	hoist_checkpoint_set_header_threads((unsigned)(size % 3));
	open_and_load(dir, r, true);
	hoist_checkpoint_set_header_threads(0);
}

/* ---- by name, and for libFuzzer -------------------------------------------------- */

fuzz_driver fuzz_driver_named(const char *name)
{
	static const struct {
		const char *name;
		fuzz_driver fn;
	} drivers[] = {
	        {"index", fuzz_index},
	        {"config", fuzz_config},
	        {"device_map", fuzz_device_map},
	        {"open", fuzz_open},
	};
	for (size_t i = 0; i < sizeof drivers / sizeof drivers[0]; i++)
		if (strcmp(name, drivers[i].name) == 0)
			return drivers[i].fn;
	return NULL;
}

int fuzz_run(fuzz_driver driver, const uint8_t *data, size_t size)
{
	struct fuzz_result r;
	driver(data, size, &r);
	if (getenv("FUZZ_VERBOSE"))
		fprintf(stderr, "fuzz: %s %s\n", hoist_status_name(r.status), r.message);
	if (r.broken) {
		fprintf(stderr, "fuzz: broken promise: %s\n  (status %s: %s)\n", r.why,
		        hoist_status_name(r.status), r.message);
		abort();
	}
	return 0;
}
