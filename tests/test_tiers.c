/* test_tiers.c - the device map end to end on sim: three small sim GPUs, host memory
 * and disk in one load. Every tensor lands where the plan put it, at the plan's
 * offset, bit-exact; layer groups stay whole; arenas are what the plan budgeted and
 * no budget is exceeded; disk tensors stay references into their files (nothing is
 * read or opened for them at load) and are fetched on demand onto any device; --dtype
 * across the tiers; `hoist load` follows the plan `hoist plan` prints; the no-GPU and
 * NO_SPACE paths of the command; faults during a multi-tier load leave nothing behind.
 *
 * Sim device memory is one memfd per allocation (backend_sim.c), so the test reads
 * fetched sim buffers and measures sim arenas through /proc/self/fd, independently
 * of the library's own copy-out path. */
#include "convert.h"
#include "fixtures.h"
#include "fakecuda_check.h"
#include "resources.h"
#include "test.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <unistd.h>

/* From test_pipeline.c: a checkpoint of mixed dtypes (BF16, F32, F16, U8, I64),
 * tensors "layers.N.wM", four per layer group. */

/* ---- the checkpoint --------------------------------------------------------------- */

/* A Qwen2-style model in BF16: lm_head and embed_tokens 512 KB each, 16 layer groups
 * of 369.92 KB (12 tensors each), model.norm 256 B; 195 tensors, 6.94 MB, written in
 * 1 MB shards, so 8 shards and layer groups that straddle shard boundaries. */
static const char config_json[] =
        "{\"architectures\": [\"Qwen2ForCausalLM\"], \"model_type\": \"qwen2\", "
        "\"hidden_size\": 128, \"intermediate_size\": 352, \"num_hidden_layers\": 16, "
        "\"num_attention_heads\": 4, \"num_key_value_heads\": 2, \"vocab_size\": 2000, "
        "\"tie_word_embeddings\": false, \"torch_dtype\": \"bfloat16\"}";
#define SEED 11

/* Written once per test process (each test runs in its own). */
static const char *synth_dir(void)
{
	static char dir[4096];
	char src[4096];
	if (dir[0])
		return dir;
	snprintf(dir, sizeof dir, "%s", test_path("model"));
	snprintf(src, sizeof src, "%s", test_path("config-source.json"));
	test_write_file(src, config_json, strlen(config_json));
	struct hoist_synth_options so = {.source = src, .shard_bytes = 1000000, .seed = SEED};
	CHECK_OK(hoist_synth_write(dir, &so));
	return dir;
}

static struct hoist_checkpoint *open_synth(void)
{
	struct hoist_checkpoint *ck;
	CHECK_OK(hoist_checkpoint_open(synth_dir(), NULL, &ck));
	CHECK_EQ_INT(hoist_checkpoint_shard_count(ck), 8);
	CHECK_EQ_INT(hoist_checkpoint_tensor_count(ck), 195);
	CHECK_EQ_U64(hoist_checkpoint_total_bytes(ck), 6938880);
	return ck;
}

/* Three sim GPUs of 1.5 MB each, 1.5 MB of host memory, disk for the rest. Small
 * chunks and ring, so many chunks and slot reuse. */
/* The sim devices of tier_opt's options: reset by each call, changed by tests. */
static struct hoist_sim_options tier_sim;

static struct hoist_options tier_opt(const char *strategy)
{
	tier_sim = (struct hoist_sim_options){.devices = 3, .capacity = 1500000};
	return (struct hoist_options){.sim = &tier_sim,
	                              .device = "sim",
	                              .max_memory = "cpu=1500KB",
	                              .device_map = strategy,
	                              .chunk_bytes = 65536,
	                              .staging_bytes = 262144,
	                              .threads = 4};
}

/* ---- helpers ---------------------------------------------------------------------- */

static bool is_disk(struct hoist_device d)
{
	return d.kind == HOIST_DEVICE_DISK;
}

static uint64_t align_up(uint64_t n)
{
	return (n + HOIST_ARENA_ALIGN - 1) / HOIST_ARENA_ALIGN * HOIST_ARENA_ALIGN;
}

/* The dtype a tensor stored as `stored` has after a load converting to `to`, as
 * hoist.h says: only F16, BF16 and F32 convert. Written apart from the library's
 * hoist_dtype_loaded on purpose. */
static enum hoist_dtype want_dtype(enum hoist_dtype stored, enum hoist_dtype to)
{
	if (to == HOIST_DTYPE_NONE)
		return stored;
	if (stored == HOIST_F16 || stored == HOIST_BF16 || stored == HOIST_F32)
		return to;
	return stored;
}

static uint64_t want_nbytes(const struct hoist_tensor_info *ti, enum hoist_dtype to)
{
	return ti->numel * hoist_dtype_bits(want_dtype(ti->dtype, to)) / 8;
}

/* The tensor's bytes as stored, read with plain pread (not through the library). */
static unsigned char *file_bytes(const struct hoist_checkpoint *ck, size_t i)
{
	const struct hoist_tensor_info *ti = hoist_checkpoint_tensor(ck, i);
	unsigned char *buf = malloc(ti->nbytes ? ti->nbytes : 1);
	int fd = open(hoist_checkpoint_shard(ck, ti->shard)->path, O_RDONLY);
	CHECK(buf && fd >= 0);
	CHECK_EQ_INT(pread(fd, buf, ti->nbytes, (off_t)ti->offset), (long long)ti->nbytes);
	close(fd);
	return buf;
}

/* The bytes tensor i must read back as after a load converting to `to`: the file's
 * bytes, converted by the portable reference converter where the dtype changes. */
static unsigned char *expected_bytes(const struct hoist_checkpoint *ck, size_t i,
                                     enum hoist_dtype to)
{
	const struct hoist_tensor_info *ti = hoist_checkpoint_tensor(ck, i);
	unsigned char *raw = file_bytes(ck, i);
	enum hoist_dtype lt = want_dtype(ti->dtype, to);
	if (lt == ti->dtype)
		return raw;
	unsigned char *out = malloc(want_nbytes(ti, to) + 1);
	hoist__convert_portable(ti->dtype, lt, out, raw, ti->numel);
	free(raw);
	return out;
}

static void check_bytes(const char *what, const char *name, const unsigned char *got,
                        const unsigned char *want, uint64_t n)
{
	for (uint64_t b = 0; b < n; b++)
		if (got[b] != want[b])
			FAIL("%s: tensor %s byte %llu: 0x%02x != 0x%02x", what, name,
			     (unsigned long long)b, got[b], want[b]);
}

/* ---- sim device memory, seen from outside the library ----------------------------- */

#define MAX_MEMFDS 128

struct memfds {
	size_t n;
	int fd[MAX_MEMFDS];
	uint64_t size[MAX_MEMFDS];
};

/* Every open sim allocation of this process (memfds named "hoist-sim"). */
static void sim_memfds(struct memfds *out)
{
	memset(out, 0, sizeof *out);
	DIR *d = opendir("/proc/self/fd");
	CHECK(d != NULL);
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.' || atoi(e->d_name) == dirfd(d) ||
		    !test_is_sim_memfd(e->d_name))
			continue;
		struct stat st;
		CHECK(out->n < MAX_MEMFDS);
		CHECK_EQ_INT(fstat(atoi(e->d_name), &st), 0);
		out->fd[out->n] = atoi(e->d_name);
		out->size[out->n++] = (uint64_t)st.st_size;
	}
	closedir(d);
}

static size_t open_fds(void)
{
	size_t n = 0;
	DIR *d = opendir("/proc/self/fd");
	CHECK(d != NULL);
	while (readdir(d) != NULL)
		n++;
	closedir(d);
	return n;
}

/* Reads the one sim allocation opened since `before` (a fetch's fresh buffer). */
static void read_new_memfd(const struct memfds *before, void *buf, uint64_t n)
{
	struct memfds now;
	sim_memfds(&now);
	int found = -1;
	for (size_t i = 0; i < now.n; i++) {
		bool old = false;
		for (size_t k = 0; k < before->n; k++)
			old |= before->fd[k] == now.fd[i];
		if (old)
			continue;
		CHECK(found < 0);
		found = (int)i;
	}
	CHECK(found >= 0);
	CHECK_EQ_U64(now.size[found], n ? n : 1);
	CHECK_EQ_INT(pread(now.fd[found], buf, n, 0), (long long)n);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* ---- the load against its plan ------------------------------------------------------ */

struct tally {
	struct hoist_device dev;
	uint64_t budget, plan_bytes;
	size_t tensors;
	uint64_t file;   /* bytes in the files */
	uint64_t loaded; /* tensor bytes as loaded */
	uint64_t end;    /* end of the last tensor's aligned slot in the arena */
	uint64_t base;   /* device address of arena offset 0 */
	bool based;
};

#define MAX_TIERS 8

static size_t plan_tallies(const struct hoist_plan *plan, struct tally *d, char *names, size_t size)
{
	size_t nd = hoist_plan_device_count(plan);
	CHECK(nd <= MAX_TIERS);
	names[0] = '\0';
	for (size_t k = 0; k < nd; k++) {
		memset(&d[k], 0, sizeof d[k]);
		d[k].dev = hoist_plan_device(plan, k)->device;
		d[k].budget = hoist_plan_device(plan, k)->budget;
		d[k].plan_bytes = hoist_plan_device(plan, k)->bytes;
		size_t len = strlen(names);
		snprintf(names + len, size - len, "%s%s", k ? "," : "", test_device_name(d[k].dev));
	}
	return nd;
}

static size_t tally_of(struct tally *d, size_t nd, struct hoist_device dev)
{
	for (size_t k = 0; k < nd; k++)
		if (d[k].dev.kind == dev.kind && d[k].dev.index == dev.index)
			return k;
	FAIL("the plan places a tensor on %s, which it does not list", test_device_name(dev));
}

/* Everything a multi-tier load by opt must satisfy. `tiers` is the plan's device list,
 * e.g. "sim:0,sim:1,sim:2,cpu,disk"; every one of them must receive tensors. Call
 * before any fetch (it counts the sim allocations). */
static void check_load(const struct hoist_checkpoint *ck, const struct hoist_plan *plan,
                       const struct hoist_model *m, const struct hoist_options *opt,
                       const char *tiers)
{
	enum hoist_dtype dtype = hoist_plan_dtype(plan);   /* a load converts as its plan says */
	bool mapped = opt->host_memory == HOIST_HOST_MMAP; /* cpu tensors: views of the files */
	struct tally d[MAX_TIERS];
	char names[256];
	size_t nd = plan_tallies(plan, d, names, sizeof names);
	CHECK_STR(names, tiers);
	size_t n = hoist_checkpoint_tensor_count(ck);
	CHECK_EQ_INT(hoist_model_tensor_count(m), n);
	for (size_t i = 0; i < n; i++) {
		const struct hoist_tensor_info *ti = hoist_checkpoint_tensor(ck, i);
		struct hoist_tensor t;
		t = *hoist_model_tensor(m, i);
		struct hoist_device pd = hoist_plan_tensor(plan, i)->device;
		size_t k = tally_of(d, nd, pd);
		CHECK_STR(t.name, ti->name);
		if (t.device.kind != pd.kind || t.device.index != pd.index)
			FAIL("tensor %s is on %s, the plan says %s", t.name,
			     test_device_name(t.device), test_device_name(pd));
		CHECK_EQ_INT(t.dtype, want_dtype(ti->dtype, dtype));
		CHECK_EQ_U64(t.nbytes, want_nbytes(ti, dtype));
		CHECK_EQ_INT(t.ndim, ti->ndim);
		for (unsigned a = 0; a < t.ndim; a++)
			CHECK_EQ_INT(t.shape[a], ti->shape[a]);
		d[k].tensors++;
		d[k].file += ti->nbytes;
		d[k].loaded += t.nbytes;
		uint64_t off = hoist_plan_tensor(plan, i)->offset;
		if (is_disk(pd)) {
			/* a reference to its file and offset; nothing allocated */
			CHECK(t.data == NULL);
			CHECK_EQ_U64(off, ti->offset);
		} else if (mapped && pd.kind == HOIST_DEVICE_CPU) {
			unsigned char *want = file_bytes(ck, i);
			CHECK(t.data != NULL);
			check_bytes("mapped cpu view", t.name, t.data, want, t.nbytes);
			free(want);
		} else {
			uint64_t addr = (uint64_t)(uintptr_t)t.data;
			CHECK(t.data != NULL);
			CHECK_EQ_U64(off % HOIST_ARENA_ALIGN, 0);
			/* arena offsets rise in tensor order; slots never overlap */
			CHECK(off >= d[k].end);
			d[k].end = off + align_up(t.nbytes);
			if (!d[k].based) {
				d[k].base = addr - off;
				d[k].based = true;
			}
			CHECK_EQ_U64(addr - off, d[k].base);
			if (pd.kind == HOIST_DEVICE_SIM) {
				uint64_t lo =
				        HOIST_SIM_BASE + (uint64_t)pd.index * HOIST_SIM_WINDOW;
				CHECK(addr >= lo && addr + t.nbytes <= lo + HOIST_SIM_WINDOW);
			}
		}
		unsigned char *got = malloc(t.nbytes + 1);
		unsigned char *want = expected_bytes(ck, i, dtype);
		CHECK_OK(hoist_model_read(m, i, got, t.nbytes));
		check_bytes(test_device_name(pd), t.name, got, want, t.nbytes);
		free(got);
		free(want);
	}
	const struct hoist_report *r = hoist_model_report(m);
	uint64_t moved = 0, read = 0, sim_plan[MAX_TIERS];
	size_t nsim = 0;
	CHECK_EQ_INT(hoist_model_device_count(m), nd);
	for (size_t k = 0; k < nd; k++) {
		if (d[k].tensors == 0)
			FAIL("the plan lists %s but puts no tensor there",
			     test_device_name(d[k].dev));
		if (d[k].plan_bytes > d[k].budget)
			FAIL("%s: %llu bytes planned over a budget of %llu",
			     test_device_name(d[k].dev), (unsigned long long)d[k].plan_bytes,
			     (unsigned long long)d[k].budget);
		bool view = mapped && d[k].dev.kind == HOIST_DEVICE_CPU;
		/* disk: the file bytes it references; else the arena, packed */
		if (!view)
			CHECK_EQ_U64(d[k].plan_bytes, is_disk(d[k].dev) ? d[k].file : d[k].end);
		const struct hoist_model_device *md = hoist_model_device(m, k);
		CHECK_STR(test_device_name(md->device), test_device_name(d[k].dev));
		CHECK_EQ_U64(md->bytes, is_disk(d[k].dev) ? d[k].file : d[k].loaded);
		if (!is_disk(d[k].dev) && !view) {
			moved += d[k].loaded;
			read += d[k].file;
		}
		if (d[k].dev.kind == HOIST_DEVICE_SIM)
			sim_plan[nsim++] = d[k].plan_bytes;
	}
	/* Disk tensors cost no reads and no copies. */
	CHECK_EQ_U64(r->moved_bytes, moved);
	CHECK_EQ_U64(r->read_bytes, read);
	/* The sim arenas really allocated: one per sim device, of the planned size. */
	struct memfds mf;
	sim_memfds(&mf);
	CHECK_EQ_INT(mf.n, nsim);
	qsort(mf.size, mf.n, sizeof mf.size[0], cmp_u64);
	qsort(sim_plan, nsim, sizeof sim_plan[0], cmp_u64);
	for (size_t k = 0; k < nsim; k++)
		CHECK_EQ_U64(mf.size[k], sim_plan[k]);
}

/* The unit a strategy never splits: the layer group, else the module. */
static size_t unit_len(const char *name)
{
	size_t lg = hoist_layer_group_prefix(name);
	if (lg)
		return lg;
	const char *dot = strrchr(name, '.');
	return dot ? (size_t)(dot - name) + 1 : strlen(name);
}

static void check_units_whole(const struct hoist_checkpoint *ck, const struct hoist_plan *plan)
{
	size_t n = hoist_checkpoint_tensor_count(ck);
	for (size_t i = 0; i < n; i++) {
		const char *a = hoist_checkpoint_tensor(ck, i)->name;
		size_t la = unit_len(a);
		struct hoist_device da = hoist_plan_tensor(plan, i)->device;
		for (size_t j = i + 1; j < n; j++) {
			const char *b = hoist_checkpoint_tensor(ck, j)->name;
			if (unit_len(b) != la || memcmp(a, b, la) != 0)
				continue;
			struct hoist_device db = hoist_plan_tensor(plan, j)->device;
			if (da.kind != db.kind || da.index != db.index)
				FAIL("unit %.*s split: %s on %s, %s on %s", (int)la, a, a,
				     test_device_name(da), b, test_device_name(db));
		}
	}
}

/* Shards every tensor of which the plan leaves on disk. */
static size_t disk_only_shards(const struct hoist_checkpoint *ck, const struct hoist_plan *plan,
                               bool *only)
{
	size_t ns = hoist_checkpoint_shard_count(ck), count = 0;
	for (size_t s = 0; s < ns; s++)
		only[s] = true;
	for (size_t i = 0; i < hoist_checkpoint_tensor_count(ck); i++)
		if (!is_disk(hoist_plan_tensor(plan, i)->device))
			only[hoist_checkpoint_tensor(ck, i)->shard] = false;
	for (size_t s = 0; s < ns; s++)
		count += only[s];
	return count;
}

/* Loads by plan with the shards that hold only disk tensors renamed away: the load
 * must not open them. Reading a disk tensor meanwhile fails naming the file. */
static struct hoist_model *load_without_disk_shards(const struct hoist_checkpoint *ck,
                                                    const struct hoist_plan *plan,
                                                    const struct hoist_options *opt)
{
	bool only[16];
	CHECK(hoist_checkpoint_shard_count(ck) <= 16);
	CHECK(disk_only_shards(ck, plan, only) >= 1);
	char away[16][4200];
	for (size_t s = 0; s < hoist_checkpoint_shard_count(ck); s++) {
		if (!only[s])
			continue;
		snprintf(away[s], sizeof away[s], "%s.away", hoist_checkpoint_shard(ck, s)->path);
		CHECK_EQ_INT(rename(hoist_checkpoint_shard(ck, s)->path, away[s]), 0);
	}
	struct hoist_model *m;
	CHECK_OK(hoist_model_load(plan, opt, &m));
	for (size_t i = 0; i < hoist_model_tensor_count(m); i++) {
		const struct hoist_tensor_info *ti = hoist_checkpoint_tensor(ck, i);
		if (!only[ti->shard])
			continue;
		struct hoist_tensor t;
		t = *hoist_model_tensor(m, i);
		unsigned char *buf = malloc(t.nbytes + 1);
		char want[4200];
		snprintf(want, sizeof want, "%s: cannot open: No such file or directory",
		         hoist_checkpoint_shard(ck, ti->shard)->path);
		CHECK_ERR(hoist_model_read(m, i, buf, t.nbytes), HOIST_ERR_IO, want);
		free(buf);
		break;
	}
	for (size_t s = 0; s < hoist_checkpoint_shard_count(ck); s++)
		if (only[s])
			CHECK_EQ_INT(rename(away[s], hoist_checkpoint_shard(ck, s)->path), 0);
	return m;
}

/* Fetches tensor i onto dev and reads the fresh buffer back from outside the library
 * (sim: its memfd; cpu: the host pointer); the model's own view stays as it was. */
static struct hoist_tensor fetch_check(struct hoist_model *m, const struct hoist_checkpoint *ck,
                                       size_t i, const char *dev, enum hoist_dtype dtype)
{
	struct hoist_device d;
	struct hoist_tensor t, f, again;
	struct memfds before;
	CHECK_OK(hoist_device_parse(dev, &d));
	t = *hoist_model_tensor(m, i);
	sim_memfds(&before);
	CHECK_OK(hoist_model_fetch(m, i, d, &f));
	CHECK_STR(test_device_name(f.device), dev);
	CHECK_STR(f.name, t.name);
	CHECK_EQ_INT(f.dtype, t.dtype);
	CHECK_EQ_U64(f.nbytes, t.nbytes);
	CHECK(f.ndim == t.ndim && f.shape == t.shape);
	CHECK(f.data != NULL && f.data != t.data);
	unsigned char *got = malloc(f.nbytes + 1);
	if (d.kind == HOIST_DEVICE_SIM) {
		uint64_t a = (uint64_t)(uintptr_t)f.data;
		uint64_t lo = HOIST_SIM_BASE + (uint64_t)d.index * HOIST_SIM_WINDOW;
		CHECK(a >= lo && a + f.nbytes <= lo + HOIST_SIM_WINDOW);
		read_new_memfd(&before, got, f.nbytes);
	} else {
		memcpy(got, f.data, f.nbytes);
	}
	unsigned char *want = expected_bytes(ck, i, dtype);
	check_bytes(dev, f.name, got, want, f.nbytes);
	free(got);
	free(want);
	again = *hoist_model_tensor(m, i);
	CHECK(again.data == t.data);
	CHECK_STR(test_device_name(again.device), test_device_name(t.device));
	return f;
}

/* The first tensor on `dev` whose name ends in `suffix`, scanning from `from`. */
static size_t find_on(const struct hoist_model *m, const char *dev, const char *suffix, size_t from)
{
	for (size_t i = from; i < hoist_model_tensor_count(m); i++) {
		struct hoist_tensor t;
		t = *hoist_model_tensor(m, i);
		size_t n = strlen(t.name), s = strlen(suffix);
		if (strcmp(test_device_name(t.device), dev) == 0 && n >= s &&
		    strcmp(t.name + n - s, suffix) == 0)
			return i;
	}
	FAIL("no tensor \"*%s\" on %s", suffix, dev);
}

static uint64_t plan_bytes_on(const struct hoist_plan *plan, const char *dev)
{
	for (size_t k = 0; k < hoist_plan_device_count(plan); k++) {
		struct hoist_device d;
		uint64_t bytes;
		d = hoist_plan_device(plan, k)->device;
		bytes = hoist_plan_device(plan, k)->bytes;
		if (strcmp(test_device_name(d), dev) == 0)
			return bytes;
	}
	FAIL("the plan does not list %s", dev);
}

/* ---- 1. auto and sequential over sim:0-2, cpu and disk ------------------------------- */

TEST(tiers_auto_spans_every_tier)
{
	struct hoist_checkpoint *ck = open_synth();
	struct hoist_options opt = tier_opt("auto");
	struct hoist_plan *plan;
	CHECK_OK(hoist_plan_create(ck, &opt, &plan));
	check_units_whole(ck, plan);
	struct hoist_model *m;
	/* The same plan through the pipeline's other paths: O_DIRECT reads, tiny chunks
	 * on many readers, the default chunk (one range per device), cpu tensors as
	 * views of the mapped files. */
	for (int v = 0; v < 4; v++) {
		struct hoist_options o = opt;
		if (v == 0)
			o.direct = 1;
		if (v == 1)
			o.chunk_bytes = 4096, o.staging_bytes = 16384, o.threads = 16;
		if (v == 2)
			o.chunk_bytes = o.staging_bytes = o.threads = 0;
		if (v == 3)
			o.host_memory = HOIST_HOST_MMAP;
		CHECK_OK(hoist_model_load(plan, &o, &m));
		check_load(ck, plan, m, &o, "sim:0,sim:1,sim:2,cpu,disk");
		hoist_model_free(m);
	}
	CHECK_OK(hoist_model_load(plan, &opt, &m));
	check_load(ck, plan, m, &opt, "sim:0,sim:1,sim:2,cpu,disk");

	/* A load from the options alone makes the same plan. */
	struct hoist_model *m2;
	CHECK_OK(test_load(ck, &opt, &m2));
	for (size_t i = 0; i < hoist_model_tensor_count(m); i++) {
		struct hoist_tensor a, b, a0, b0;
		char dev[24];
		a = *hoist_model_tensor(m, i);
		b = *hoist_model_tensor(m2, i);
		CHECK_STR(test_device_name(a.device), test_device_name(b.device));
		/* the same offset from each arena's first tensor */
		snprintf(dev, sizeof dev, "%s", test_device_name(a.device));
		a0 = *hoist_model_tensor(m, find_on(m, dev, "", 0));
		b0 = *hoist_model_tensor(m2, find_on(m2, dev, "", 0));
		CHECK_EQ_U64((uintptr_t)a.data - (uintptr_t)a0.data,
		             (uintptr_t)b.data - (uintptr_t)b0.data);
	}
	hoist_model_free(m2);

	/* Fetch: sim:1 keeps only what its capacity has left over its arena. */
	size_t big = find_on(m, "disk", "mlp.up_proj.weight", 0);
	size_t small = find_on(m, "disk", "input_layernorm.weight", 0);
	struct hoist_tensor t, f1, f2;
	t = *hoist_model_tensor(m, big);
	char want[256], b1[32], b2[32], b3[32];
	snprintf(want, sizeof want,
	         "fetching tensor \"%s\": sim:1: out of device memory: %s asked, %s free of %s",
	         t.name, hoist_bytes_format(t.nbytes, b1, sizeof b1),
	         hoist_bytes_format(1500000 - plan_bytes_on(plan, "sim:1"), b2, sizeof b2),
	         hoist_bytes_format(1500000, b3, sizeof b3));
	CHECK(t.nbytes > 1500000 - plan_bytes_on(plan, "sim:1"));
	CHECK_ERR(hoist_model_fetch(m, big, (struct hoist_device){HOIST_DEVICE_SIM, 1}, &f1),
	          HOIST_ERR_NO_SPACE, want);
	fetch_check(m, ck, small, "sim:1", HOIST_DTYPE_NONE);
	/* Twice onto cpu: two fresh buffers, the first still valid after the second. */
	f1 = fetch_check(m, ck, big, "cpu", HOIST_DTYPE_NONE);
	f2 = fetch_check(m, ck, big, "cpu", HOIST_DTYPE_NONE);
	CHECK(f1.data != f2.data);
	CHECK(memcmp(f1.data, f2.data, f1.nbytes) == 0);
	/* Any tensor can be fetched, not just disk ones: sim:0 -> cpu, cpu -> sim:2. */
	fetch_check(m, ck, find_on(m, "sim:0", "weight", 0), "cpu", HOIST_DTYPE_NONE);
	fetch_check(m, ck, find_on(m, "cpu", "post_attention_layernorm.weight", 0), "sim:2",
	            HOIST_DTYPE_NONE);
	fetch_check(m, ck, find_on(m, "sim:2", "o_proj.weight", 0), "sim:0", HOIST_DTYPE_NONE);
	/* Not places to fetch to. */
	CHECK_ERR(hoist_model_fetch(m, big, (struct hoist_device){HOIST_DEVICE_DISK, 0}, &f1),
	          HOIST_ERR_INVALID, "disk is not a device to fetch to");
	CHECK_ERR(hoist_model_fetch(m, big, (struct hoist_device){HOIST_DEVICE_SIM, -1}, &f1),
	          HOIST_ERR_INVALID, "is not a device to fetch to");
	CHECK_STATUS(hoist_model_fetch(m, big, (struct hoist_device){HOIST_DEVICE_SIM, 3}, &f1),
	             HOIST_ERR_NO_DEVICE);
	CHECK_STR(hoist_errmsg(), "sim:3: no such simulated device (sim_devices is 3)");
	CHECK_ERR(hoist_model_fetch(m, 195, (struct hoist_device){HOIST_DEVICE_CPU, 0}, &f1),
	          HOIST_ERR_INVALID, "no tensor 195");
	/* The fetches' buffers still hold their bytes at the end. */
	unsigned char *w = expected_bytes(ck, big, HOIST_DTYPE_NONE);
	CHECK(memcmp(f1.data, w, f1.nbytes) == 0);
	free(w);
	hoist_model_free(m);
	/* Everything freed: no sim allocation left open. */
	struct memfds mf;
	sim_memfds(&mf);
	CHECK_EQ_INT(mf.n, 0);
	hoist_plan_free(plan);
	hoist_checkpoint_close(ck);
}

TEST(tiers_sequential_leaves_disk_shards_unopened)
{
	struct hoist_checkpoint *ck = open_synth();
	/* Budgets from max_memory and sim devices of 4 MB: sequential, along the order
	 * (embed_tokens, layers 0-15, norm, lm_head), puts embed_tokens and layer 0 on
	 * sim:0, two layers on each of sim:1, sim:2 and cpu, the other nine layers,
	 * model.norm and lm_head on disk, so four shards hold only disk tensors. */
	struct hoist_options opt = tier_opt("sequential");
	tier_sim.capacity = 4000000;
	opt.max_memory = "0=1100KB,1=800KB,2=800KB,cpu=800KB";
	struct hoist_plan *plan;
	CHECK_OK(hoist_plan_create(ck, &opt, &plan));
	check_units_whole(ck, plan);
	bool only[16];
	CHECK_EQ_INT(disk_only_shards(ck, plan, only), 4);
	struct hoist_model *m = load_without_disk_shards(ck, plan, &opt);
	check_load(ck, plan, m, &opt, "sim:0,sim:1,sim:2,cpu,disk");
	/* sequential does not backfill: model.norm and lm_head, last in the order, went
	 * to disk */
	find_on(m, "disk", "model.norm.weight", 0);
	find_on(m, "disk", "lm_head.weight", 0);
	/* Every disk tensor fetched onto cpu, every fourth onto sim:1 too (its room: 4 MB
	 * less its arena). */
	size_t fetched = 0, to_sim = 0;
	for (size_t i = 0; i < hoist_model_tensor_count(m); i++) {
		struct hoist_tensor t;
		t = *hoist_model_tensor(m, i);
		if (!is_disk(t.device))
			continue;
		if (fetched++ % 4 == 0) {
			fetch_check(m, ck, i, "sim:1", HOIST_DTYPE_NONE);
			to_sim++;
		}
		fetch_check(m, ck, i, "cpu", HOIST_DTYPE_NONE);
	}
	CHECK_EQ_INT(fetched, 9 * 12 + 2);
	CHECK_EQ_INT(to_sim, 28);
	hoist_model_free(m);
	hoist_plan_free(plan);
	hoist_checkpoint_close(ck);
}

/* ---- 2. an accelerate-style map file over sim:0, cpu and disk ----------------------- */

/* Splits layer group 2 (its mlp on disk, the rest on cpu); "model.layers.1" must not
 * cover layers 10-15; "model.rotary_emb" covers nothing and is ignored. */
static const char map_json[] = "{\"model.embed_tokens\": 0, \"model.layers\": \"cpu\", "
                               "\"model.layers.0\": \"sim:0\", \"model.layers.1\": \"0\", "
                               "\"model.layers.2.mlp\": \"disk\", \"model.layers.12\": \"disk\", "
                               "\"model.layers.13\": \"disk\", \"model.norm\": \"cpu\", "
                               "\"lm_head\": \"disk\", \"model.rotary_emb\": \"cpu\"}";

static bool starts(const char *s, const char *p)
{
	return strncmp(s, p, strlen(p)) == 0;
}

/* Where map_json puts a tensor, worked out here by hand. */
static const char *map_expect(const char *name)
{
	if (starts(name, "model.embed_tokens.") || starts(name, "model.layers.0.") ||
	    starts(name, "model.layers.1."))
		return "sim:0";
	if (starts(name, "model.layers.2.mlp.") || starts(name, "model.layers.12.") ||
	    starts(name, "model.layers.13.") || starts(name, "lm_head."))
		return "disk";
	return "cpu";
}

TEST(tiers_map_file_sim_cpu_disk)
{
	struct hoist_checkpoint *ck = open_synth();
	char map_path[4096];
	snprintf(map_path, sizeof map_path, "%s", test_path("device_map.json"));
	test_write_file(map_path, map_json, strlen(map_json));
	struct hoist_options opt = tier_opt(map_path);
	opt.max_memory = NULL;
	tier_sim.capacity = 4000000;
	struct hoist_plan *plan;
	CHECK_OK(hoist_plan_create(ck, &opt, &plan));
	size_t split = 0;
	for (size_t i = 0; i < hoist_checkpoint_tensor_count(ck); i++) {
		const char *name = hoist_checkpoint_tensor(ck, i)->name;
		CHECK_STR(test_device_name(hoist_plan_tensor(plan, i)->device), map_expect(name));
		split += starts(name, "model.layers.2.") && !starts(name, "model.layers.2.mlp.");
	}
	CHECK_EQ_INT(split, 9); /* layer 2's tensors outside its mlp stayed on cpu */
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	CHECK_OK(hoist_plan_print(plan, f));
	fclose(f);
	CHECK(strstr(text, "map entries that match no tensor (ignored): model.rotary_emb") != NULL);
	free(text);
	/* lm_head's shard holds nothing else: the load must not open it. */
	struct hoist_model *m = load_without_disk_shards(ck, plan, &opt);
	check_load(ck, plan, m, &opt, "sim:0,cpu,disk");
	size_t lm = find_on(m, "disk", "lm_head.weight", 0);
	fetch_check(m, ck, lm, "sim:0", HOIST_DTYPE_NONE);
	/* sim:1 and sim:2 exist (sim_devices 3) though the load did not use them */
	fetch_check(m, ck, lm, "sim:2", HOIST_DTYPE_NONE);
	fetch_check(m, ck, find_on(m, "disk", "mlp.down_proj.weight", 0), "cpu", HOIST_DTYPE_NONE);
	hoist_model_free(m);

	/* The map over a budget: NO_SPACE says by how much. */
	uint64_t need = plan_bytes_on(plan, "sim:0");
	hoist_plan_free(plan);
	char want[4400], b1[32], b2[32];
	opt.max_memory = "0=1MB";
	snprintf(want, sizeof want,
	         "device map %s puts %s on sim:0, %s more than its budget of 1.00 MB (max_memory)",
	         map_path, hoist_bytes_format(need, b1, sizeof b1),
	         hoist_bytes_format(need - 1000000, b2, sizeof b2));
	CHECK(need > 1000000);
	CHECK_ERR(hoist_plan_create(ck, &opt, &plan), HOIST_ERR_NO_SPACE, want);
	CHECK(plan == NULL);
	struct hoist_model *none = (struct hoist_model *)1;
	CHECK_ERR(test_load(ck, &opt, &none), HOIST_ERR_NO_SPACE, want);
	CHECK(none == NULL);
	/* A map that names disk where disk is forbidden. */
	opt.max_memory = NULL;
	opt.disk = HOIST_DISK_FORBIDDEN;
	CHECK_ERR(hoist_plan_create(ck, &opt, &plan), HOIST_ERR_INVALID,
	          "\"lm_head\" puts tensors on disk, but disk placement is forbidden");
	hoist_checkpoint_close(ck);
}

/* ---- 3. --dtype across the tiers ----------------------------------------------------- */

/* BF16 -> F32 is exact: the 16 bits become the high half (a NaN stays a NaN of the
 * same sign, quieted). Checked here without any converter. */
static void check_bf16_to_f32(const struct hoist_checkpoint *ck, size_t i, const void *f32)
{
	const struct hoist_tensor_info *ti = hoist_checkpoint_tensor(ck, i);
	CHECK_EQ_INT(ti->dtype, HOIST_BF16);
	uint16_t *raw = (uint16_t *)file_bytes(ck, i);
	const uint32_t *got = f32;
	for (uint64_t e = 0; e < ti->numel; e++) {
		uint32_t want = (uint32_t)raw[e] << 16;
		bool nan = (raw[e] & 0x7f80) == 0x7f80 && (raw[e] & 0x7f);
		if (nan ? (got[e] & 0xffc00000u) != ((want & 0x80000000u) | 0x7fc00000u)
		        : got[e] != want)
			FAIL("%s element %llu: %08x from bf16 %04x", ti->name,
			     (unsigned long long)e, got[e], raw[e]);
	}
	free(raw);
}

TEST(tiers_dtype_f32_converts_on_every_tier)
{
	struct hoist_checkpoint *ck = open_synth();
	struct hoist_options opt = tier_opt("auto");
	opt.dtype = HOIST_F32;
	struct hoist_plan *plan;
	CHECK_OK(hoist_plan_create(ck, &opt, &plan));
	check_units_whole(ck, plan);
	struct hoist_model *m;
	CHECK_OK(hoist_model_load(plan, &opt, &m));
	check_load(ck, plan, m, &opt, "sim:0,sim:1,sim:2,cpu,disk");
	/* Every tensor reads back as F32, disk ones too (converted as they are read);
	 * the disk device counts the file's BF16 bytes it references. */
	uint64_t disk_file = 0;
	for (size_t i = 0; i < hoist_model_tensor_count(m); i++) {
		struct hoist_tensor t;
		t = *hoist_model_tensor(m, i);
		const struct hoist_tensor_info *ti = hoist_checkpoint_tensor(ck, i);
		CHECK_EQ_INT(t.dtype, HOIST_F32);
		CHECK_EQ_U64(t.nbytes, 2 * ti->nbytes);
		if (is_disk(t.device))
			disk_file += ti->nbytes;
		uint32_t *got = malloc(t.nbytes);
		CHECK_OK(hoist_model_read(m, i, got, t.nbytes));
		check_bf16_to_f32(ck, i, got);
		free(got);
	}
	CHECK_EQ_U64(plan_bytes_on(plan, "disk"), disk_file);
	/* Fetched disk tensors arrive converted, on a sim device and on cpu. */
	size_t big = find_on(m, "disk", "mlp.gate_proj.weight", 0);
	struct hoist_tensor f = fetch_check(m, ck, big, "cpu", HOIST_F32);
	check_bf16_to_f32(ck, big, f.data);
	/* the GPUs are full along the order (no backfill): a small tensor fits sim:1 */
	size_t small = find_on(m, "disk", "q_proj.bias", 1);
	CHECK(hoist_model_tensor(m, small)->nbytes < 1500000 - plan_bytes_on(plan, "sim:1"));
	fetch_check(m, ck, small, "sim:1", HOIST_F32);
	fetch_check(m, ck, find_on(m, "disk", "q_proj.bias", 0), "sim:0", HOIST_F32);
	hoist_model_free(m);

	/* A plan carries its checkpoint and its dtype: a load converts as its plan says,
	 * whatever the options it is given say of dtypes (the arena slots are the plan's). */
	opt.dtype = HOIST_DTYPE_NONE;
	CHECK_OK(hoist_model_load(plan, &opt, &m));
	CHECK_EQ_INT(hoist_model_report(m)->dtype, HOIST_F32);
	for (size_t i = 0; i < hoist_model_tensor_count(m); i++) {
		const struct hoist_placement *pl = hoist_plan_tensor(plan, i);
		const struct hoist_tensor *t = hoist_model_tensor(m, i);
		CHECK_EQ_INT(t->dtype, pl->dtype);
		CHECK_EQ_U64(t->nbytes, pl->nbytes);
		CHECK_EQ_INT(t->dtype,
		             hoist_dtype_loaded(hoist_checkpoint_tensor(ck, i)->dtype, HOIST_F32));
	}
	check_load(ck, plan, m, &opt, "sim:0,sim:1,sim:2,cpu,disk");
	hoist_model_free(m);
	CHECK(hoist_plan_checkpoint(plan) == ck);
	hoist_plan_free(plan);
	hoist_checkpoint_close(ck);
}

/* Mixed dtypes to F16: BF16 and F32 convert (F32 with rounding), F16 stays, U8 and I64
 * keep theirs, on every tier. */
TEST(tiers_dtype_f16_mixed_dtypes_sequential)
{
	const char *dir = test_path("gen");
	gen_checkpoint(dir, 3, 40, 30000);
	struct hoist_checkpoint *ck;
	CHECK_OK(hoist_checkpoint_open(dir, NULL, &ck));
	uint64_t total = 0;
	size_t converting = 0, kept = 0;
	for (size_t i = 0; i < hoist_checkpoint_tensor_count(ck); i++) {
		const struct hoist_tensor_info *ti = hoist_checkpoint_tensor(ck, i);
		total += align_up(want_nbytes(ti, HOIST_F16));
		converting += ti->dtype == HOIST_BF16 || ti->dtype == HOIST_F32;
		kept += ti->dtype == HOIST_U8 || ti->dtype == HOIST_I64;
	}
	CHECK(converting > 40 && kept > 40);
	/* A sixth of the loaded bytes on each GPU and on cpu: a third goes to disk. */
	char mm[200];
	uint64_t each = total / 6;
	snprintf(mm, sizeof mm, "0=%llu,1=%llu,2=%llu,cpu=%llu", (unsigned long long)each,
	         (unsigned long long)each, (unsigned long long)each, (unsigned long long)each);
	struct hoist_options opt = tier_opt("sequential");
	opt.max_memory = mm;
	opt.dtype = HOIST_F16;
	tier_sim.capacity = 0; /* 4 GiB: budgets come from max_memory */
	struct hoist_plan *plan;
	CHECK_OK(hoist_plan_create(ck, &opt, &plan));
	check_units_whole(ck, plan);
	struct hoist_model *m;
	CHECK_OK(hoist_model_load(plan, &opt, &m));
	check_load(ck, plan, m, &opt, "sim:0,sim:1,sim:2,cpu,disk");
	size_t on[3] = {0, 0, 0}; /* disk tensors that convert, that keep, F16 already */
	for (size_t i = 0; i < hoist_model_tensor_count(m); i++) {
		struct hoist_tensor t;
		t = *hoist_model_tensor(m, i);
		const struct hoist_tensor_info *ti = hoist_checkpoint_tensor(ck, i);
		if (!is_disk(t.device))
			continue;
		on[ti->dtype == HOIST_F16                          ? 2
		   : want_dtype(ti->dtype, HOIST_F16) == HOIST_F16 ? 0
		                                                   : 1]++;
		fetch_check(m, ck, i, i % 2 ? "sim:2" : "cpu", HOIST_F16);
	}
	CHECK(on[0] > 0 && on[1] > 0 && on[2] > 0);
	hoist_model_free(m);
	hoist_plan_free(plan);
	hoist_checkpoint_close(ck);
}

/* ---- 4. the command: hoist load follows hoist plan ------------------------------------ */

/* Runs `hoist ARGS` with stdout into *out and stderr into *err; returns the exit code. */
static int run_cli(char **out, char **err, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
static int run_cli(char **out, char **err, const char *fmt, ...)
{
	char args[4096], errfile[4096];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(args, sizeof args, fmt, ap);
	va_end(ap);
	snprintf(errfile, sizeof errfile, "%s", test_path("stderr.txt"));
	int rc = test_run(out, "%s %s 2>'%s'", test_hoist_bin(), args, errfile);
	*err = test_read_file(errfile, NULL);
	return rc;
}

static json_t *parse(const char *text, const char *what)
{
	json_error_t jerr;
	json_t *j = json_loads(text, 0, &jerr);
	if (!j)
		FAIL("%s: not JSON: %s: %s", what, jerr.text, text);
	return j;
}

/* The load's "devices" against the plan's placement, tensor by tensor: a load reports
 * each device's tensor bytes (disk: the file bytes it references), a plan its arena
 * bytes (each tensor rounded up to the arena alignment; disk: file bytes). */
static void check_cli_devices(const struct hoist_checkpoint *ck, json_t *plan, json_t *load,
                              enum hoist_dtype dtype)
{
	json_t *placement = json_object_get(plan, "placement");
	json_t *pdevs = json_object_get(plan, "devices"), *ldevs = json_object_get(load, "devices");
	const char *names[MAX_TIERS];
	uint64_t loaded[MAX_TIERS] = {0}, planned[MAX_TIERS] = {0}, moved = 0;
	size_t count[MAX_TIERS] = {0}, nd = 0;
	CHECK_EQ_INT(json_object_size(placement), hoist_checkpoint_tensor_count(ck));
	for (size_t i = 0; i < hoist_checkpoint_tensor_count(ck); i++) {
		const struct hoist_tensor_info *ti = hoist_checkpoint_tensor(ck, i);
		const char *dev = json_string_value(json_object_get(placement, ti->name));
		CHECK(dev != NULL);
		size_t k = 0;
		while (k < nd && strcmp(names[k], dev) != 0)
			k++;
		if (k == nd) {
			CHECK(nd < MAX_TIERS);
			names[nd++] = dev;
		}
		bool disk = strcmp(dev, "disk") == 0;
		loaded[k] += disk ? ti->nbytes : want_nbytes(ti, dtype);
		planned[k] += disk ? ti->nbytes : align_up(want_nbytes(ti, dtype));
		moved += disk ? 0 : want_nbytes(ti, dtype);
		count[k]++;
	}
	CHECK_EQ_INT(json_object_size(ldevs), nd);
	CHECK_EQ_INT(json_object_size(pdevs), nd);
	for (size_t k = 0; k < nd; k++) {
		json_t *pd = json_object_get(pdevs, names[k]);
		if (!json_object_get(ldevs, names[k]) || !pd)
			FAIL("device %s: missing from the plan's or the load's devices", names[k]);
		CHECK_EQ_U64(json_integer_value(json_object_get(ldevs, names[k])), loaded[k]);
		CHECK_EQ_U64(json_integer_value(json_object_get(pd, "bytes")), planned[k]);
		CHECK_EQ_U64(json_integer_value(json_object_get(pd, "tensors")), count[k]);
	}
	CHECK_EQ_U64(json_integer_value(json_object_get(load, "bytes")), moved);
}

#define CLI_TIERS "--device sim --sim-devices 3 --sim-capacity 1500KB --max-memory cpu=1500KB"

TEST_TIMEOUT(tiers_cli_load_follows_plan, 120)
{
	struct hoist_checkpoint *ck = open_synth();
	const char *dir = synth_dir();
	char *out, *err;
	static const struct {
		const char *strategy, *dtype_flag;
		enum hoist_dtype dtype;
	} cases[] = {
	        {"auto", "", HOIST_DTYPE_NONE},
	        {"sequential", "--dtype F32", HOIST_F32},
	        {"balanced", "--dtype BF16", HOIST_BF16},
	};
	for (size_t c = 0; c < TEST_ARRAY_SIZE(cases); c++) {
		CHECK_EQ_INT(run_cli(&out, &err, "plan %s " CLI_TIERS " --device-map %s %s --json",
		                     dir, cases[c].strategy, cases[c].dtype_flag),
		             0);
		CHECK_STR(err, "");
		json_t *plan = parse(out, "hoist plan --json");
		free(out);
		free(err);
		CHECK_EQ_INT(json_object_size(json_object_get(plan, "devices")), 5);
		CHECK_EQ_INT(run_cli(&out, &err,
		                     "load %s " CLI_TIERS
		                     " --device-map %s %s --json --chunk 64KiB "
		                     "--threads 3",
		                     dir, cases[c].strategy, cases[c].dtype_flag),
		             0);
		CHECK_STR(err, "");
		json_t *load = parse(out, "hoist load --json");
		free(out);
		free(err);
		check_cli_devices(ck, plan, load, cases[c].dtype);
		json_decref(load);
		/* The printed placement, replayed as a map file, loads the same way. */
		char map[4096];
		snprintf(map, sizeof map, "%s", test_path("placement.json"));
		CHECK_EQ_INT(json_dump_file(json_object_get(plan, "placement"), map, 0), 0);
		CHECK_EQ_INT(run_cli(&out, &err, "load %s " CLI_TIERS " --device-map %s %s --json",
		                     dir, map, cases[c].dtype_flag),
		             0);
		CHECK_STR(err, "");
		load = parse(out, "hoist load --device-map placement.json --json");
		free(out);
		free(err);
		check_cli_devices(ck, plan, load, cases[c].dtype);
		json_decref(plan);
		json_decref(load);
	}

	/* --verify reads every tensor back, disk ones from their files. */
	char want[64];
	char total[32];
	snprintf(want, sizeof want, "verified 195 tensors, %s: all bytes match",
	         hoist_bytes_format(hoist_checkpoint_total_bytes(ck), total, sizeof total));
	CHECK_EQ_INT(run_cli(&out, &err, "load %s " CLI_TIERS " --device-map auto --verify", dir),
	             0);
	CHECK(strstr(out, "[2/5] plan      5 devices: sim:0 ") != NULL);
	CHECK(strstr(out, want) != NULL);
	free(out);
	free(err);

	/* --no-disk: NO_SPACE names the groups that went to disk above, with sizes, how
	 * much is missing, and every device's planned bytes against its budget. */
	CHECK_EQ_INT(run_cli(&out, &err, "plan %s " CLI_TIERS " --device-map auto --json", dir), 0);
	json_t *plan = parse(out, "hoist plan --json");
	free(out);
	free(err);
	json_t *placement = json_object_get(plan, "placement");
	char list[1024] = "", b1[32], b2[32];
	size_t groups = 0, len = 0;
	uint64_t missing = 0, room = 0;
	/* groups in name order, as the message lists them: lm_head, then the layers */
	for (int layer = -1; layer < 16; layer++) {
		char prefix[64];
		uint64_t bytes = 0;
		bool disk = false;
		int plen = layer < 0 ? snprintf(prefix, sizeof prefix, "lm_head.")
		                     : snprintf(prefix, sizeof prefix, "model.layers.%d.", layer);
		for (size_t i = 0; i < hoist_checkpoint_tensor_count(ck); i++) {
			const struct hoist_tensor_info *ti = hoist_checkpoint_tensor(ck, i);
			if (strncmp(ti->name, prefix, (size_t)plen) != 0)
				continue;
			bytes += align_up(ti->nbytes);
			disk |= strcmp(json_string_value(json_object_get(placement, ti->name)),
			               "disk") == 0;
		}
		if (!disk)
			continue;
		len += (size_t)snprintf(list + len, sizeof list - len, "%s%.*s (%s)",
		                        groups ? ", " : "", plen - 1, prefix,
		                        hoist_bytes_format(bytes, b1, sizeof b1));
		groups++;
		missing += bytes;
	}
	CHECK(groups >= 2);
	char devs[512] = "";
	len = 0;
	const char *key;
	json_t *v;
	json_object_foreach(json_object_get(plan, "devices"), key, v)
	{
		if (strcmp(key, "disk") == 0)
			continue;
		uint64_t bytes = (uint64_t)json_integer_value(json_object_get(v, "bytes"));
		uint64_t budget = (uint64_t)json_integer_value(json_object_get(v, "budget"));
		room += budget - bytes;
		len += (size_t)snprintf(devs + len, sizeof devs - len, "%s%s: %s planned of %s",
		                        len ? ", " : "", key,
		                        hoist_bytes_format(bytes, b1, sizeof b1),
		                        hoist_bytes_format(budget, b2, sizeof b2));
	}
	/* Without disk, the small groups after the layers that went to disk there (the
	 * final norm) fit what the GPUs have left: the message's room is less by them. */
	for (size_t i = 0; i < hoist_checkpoint_tensor_count(ck); i++) {
		const struct hoist_tensor_info *ti = hoist_checkpoint_tensor(ck, i);
		if (strcmp(ti->name, "model.norm.weight") == 0 &&
		    strcmp(json_string_value(json_object_get(placement, ti->name)), "disk") == 0)
			room -= align_up(ti->nbytes);
	}
	json_decref(plan);
	char msg[2048], b3[32], b4[32];
	snprintf(
	        msg, sizeof msg,
	        "hoist: %zu groups (%s) did not fit: %s; %s short (%s; disk placement forbidden)\n",
	        groups, hoist_bytes_format(missing, b3, sizeof b3), list,
	        hoist_bytes_format(missing - room, b4, sizeof b4), devs);
	CHECK_EQ_INT(run_cli(&out, &err, "plan %s " CLI_TIERS " --device-map auto --no-disk", dir),
	             1);
	CHECK_STR(err, msg);
	CHECK_STR(out, "");
	free(out);
	free(err);
	CHECK_EQ_INT(run_cli(&out, &err, "load %s " CLI_TIERS " --device-map auto --no-disk --json",
	                     dir),
	             1);
	CHECK_STR(err, msg);
	CHECK_STR(out, "");
	free(out);
	free(err);
	hoist_checkpoint_close(ck);
}

static bool cuda_present(void)
{
	struct hoist_device_info info[4];
	size_t n = 0;
	return hoist_device_list(HOIST_DEVICE_CUDA, NULL, info, 4, &n) == HOIST_OK && n > 0;
}

TEST_TIMEOUT(tiers_cli_no_gpu, 120)
{
	test_cuda_absent(); /* the fake driver of `make check` too */
	if (cuda_present())
		SKIP("a CUDA driver and GPU are present: the no-driver paths cannot be reached");
	const char *dir = synth_dir();
	char *out, *err;
	/* A GPU asked for by name: no fallback, exit 3, naming the driver library. */
	const char *asks[] = {"plan %s --device cuda:0", "load %s --device cuda:0",
	                      "load %s --device cuda --device-map auto",
	                      "plan %s --device cuda --device-map sequential --json"};
	for (size_t i = 0; i < TEST_ARRAY_SIZE(asks); i++) {
		CHECK_EQ_INT(run_cli(&out, &err, asks[i], dir), 3);
		/* no driver: the library; a driver without GPUs: cuInit's error */
		if (strncmp(err, "hoist: cuda", 11) != 0 ||
		    (!strstr(err, "libcuda.so.1") && !strstr(err, "CUDA_ERROR_NO_DEVICE")))
			FAIL("%s: stderr \"%s\" names neither libcuda.so.1 nor cuInit's error",
			     asks[i], err);
		CHECK(strchr(err, '\n') == err + strlen(err) - 1);
		CHECK_STR(out, "");
		free(out);
		free(err);
	}
	/* No --device: a plan for cpu, with a one-line notice. */
	CHECK_EQ_INT(run_cli(&out, &err, "plan %s --json", dir), 0);
	json_t *plan = parse(out, "hoist plan --json");
	const char *notice = json_string_value(json_object_get(plan, "notice"));
	CHECK(notice != NULL);
	CHECK(strncmp(notice, "no GPU (", 8) == 0 &&
	      (strstr(notice, "libcuda.so.1") || strstr(notice, "CUDA_ERROR_NO_DEVICE")));
	const char *tail = "): every tensor planned for cpu";
	CHECK(strlen(notice) > strlen(tail) &&
	      strcmp(notice + strlen(notice) - strlen(tail), tail) == 0);
	CHECK(strchr(notice, '\n') == NULL);
	char line[1024];
	snprintf(line, sizeof line, "hoist: %s\n", notice);
	CHECK_STR(err, line);
	CHECK_EQ_INT(json_object_size(json_object_get(plan, "devices")), 1);
	struct hoist_checkpoint *ck;
	CHECK_OK(hoist_checkpoint_open(dir, NULL, &ck));
	uint64_t arena = 0;
	for (size_t i = 0; i < hoist_checkpoint_tensor_count(ck); i++)
		arena += align_up(hoist_checkpoint_tensor(ck, i)->nbytes);
	hoist_checkpoint_close(ck);
	json_t *cpu = json_object_get(json_object_get(plan, "devices"), "cpu");
	CHECK_EQ_U64(json_integer_value(json_object_get(cpu, "bytes")), arena);
	CHECK_EQ_INT(json_integer_value(json_object_get(cpu, "tensors")), 195);
	free(out);
	free(err);
	CHECK_EQ_INT(run_cli(&out, &err, "plan %s", dir), 0);
	snprintf(line, sizeof line, "\nnotice: %s\n", notice);
	CHECK(strstr(out, line) != NULL);
	CHECK_STR(err, "");
	free(out);
	free(err);
	CHECK_EQ_INT(run_cli(&out, &err, "load %s --json", dir), 0);
	json_t *load = parse(out, "hoist load --json");
	CHECK_EQ_INT(json_object_size(json_object_get(load, "devices")), 1);
	CHECK_EQ_U64(json_integer_value(json_object_get(json_object_get(load, "devices"), "cpu")),
	             6938880);
	json_decref(load);
	free(out);
	free(err);
	CHECK_EQ_INT(run_cli(&out, &err, "load %s --verbose --verify", dir), 0);
	snprintf(line, sizeof line, "hoist: %s\n", notice);
	CHECK(strstr(err, line) != NULL);
	CHECK(strstr(out, "verified 195 tensors") != NULL);
	free(out);
	free(err);
	json_decref(plan);
}

/* ---- 5. faults during a multi-tier load ------------------------------------------------ */

static struct hoist_options fault_opt(void)
{
	/* sequential: sim:0 takes about 2.9 MB, sim:1, sim:2 and cpu under 1 MB each, so a
	 * copy fault after 1.5 MB strikes sim:0 alone. */
	struct hoist_options opt = tier_opt("sequential");
	tier_sim.capacity = 4000000;
	opt.max_memory = "0=3MB,1=1MB,2=1MB,cpu=1MB";
	return opt;
}

static int cancel_second_stream_call(const struct hoist_progress *pr, void *arg)
{
	int *calls = arg;
	return pr->phase == HOIST_PHASE_STREAM && ++*calls == 2;
}

/* A load that failed left nothing: no model, no descriptor, no sim allocation. */
static void check_nothing_left(struct hoist_model *m, size_t fds)
{
	struct memfds mf;
	CHECK(m == NULL);
	sim_memfds(&mf);
	CHECK_EQ_INT(mf.n, 0);
	CHECK_EQ_INT(open_fds(), fds);
}

TEST(tiers_faults_leave_nothing)
{
	struct hoist_checkpoint *ck = open_synth();
	struct hoist_options opt = fault_opt();
	struct hoist_plan *plan;
	CHECK_OK(hoist_plan_create(ck, &opt, &plan));
	struct tally d[MAX_TIERS];
	char names[256];
	plan_tallies(plan, d, names, sizeof names);
	CHECK_STR(names, "sim:0,sim:1,sim:2,cpu,disk");
	CHECK(d[0].plan_bytes > 1500000 && d[1].plan_bytes < 1500000 && d[2].plan_bytes < 1500000);
	size_t fds = open_fds();
	struct hoist_model *m = (struct hoist_model *)1;

	tier_sim.fault = HOIST_SIM_FAULT_COPY;
	tier_sim.fault_after = 1500000;
	CHECK_ERR(hoist_model_load(plan, &opt, &m), HOIST_ERR_DEVICE,
	          "sim:0: injected copy fault at device address 0x");
	CHECK(strstr(hoist_errmsg(), ".safetensors: tensor \"") != NULL);
	CHECK(strstr(hoist_errmsg(), "(bytes at offset ") != NULL);
	CHECK(strstr(hoist_errmsg(), "sim:1") == NULL && strstr(hoist_errmsg(), "sim:2") == NULL);
	check_nothing_left(m, fds);

	tier_sim.fault_after = 0; /* every sim device's first copy */
	m = (struct hoist_model *)1;
	CHECK_ERR(hoist_model_load(plan, &opt, &m), HOIST_ERR_DEVICE, "injected copy fault");
	check_nothing_left(m, fds);

	tier_sim.fault = HOIST_SIM_FAULT_ALLOC;
	m = (struct hoist_model *)1;
	CHECK_ERR(hoist_model_load(plan, &opt, &m), HOIST_ERR_DEVICE,
	          "sim:0: injected allocation fault allocating");
	check_nothing_left(m, fds);

	tier_sim.fault = HOIST_SIM_FAULT_NONE;
	m = (struct hoist_model *)1;
	hoist_fault_set(HOIST_FAULT_READ, 4, EIO, false);
	CHECK_ERR(hoist_model_load(plan, &opt, &m), HOIST_ERR_IO, "Input/output error");
	hoist_fault_clear_all();
	CHECK(strstr(hoist_errmsg(), ".safetensors: tensor \"") != NULL);
	check_nothing_left(m, fds);

	m = (struct hoist_model *)1;
	hoist_fault_set(HOIST_FAULT_OPEN, 2, EACCES, false);
	CHECK_ERR(hoist_model_load(plan, &opt, &m), HOIST_ERR_IO,
	          ".safetensors: cannot open: Permission denied");
	hoist_fault_clear_all();
	check_nothing_left(m, fds);

	/* Cancelled mid-stream (copies capped to 5 MB/s per sim device, so about 0.3 s):
	 * CANCELLED, nothing left. */
	tier_sim.bytes_per_sec = 5e6;
	opt.progress = cancel_second_stream_call;
	int calls = 0;
	opt.progress_arg = &calls;
	m = (struct hoist_model *)1;
	CHECK_ERR(hoist_model_load(plan, &opt, &m), HOIST_ERR_CANCELLED,
	          "load cancelled by the progress callback after");
	CHECK_EQ_INT(calls, 2);
	check_nothing_left(m, fds);
	tier_sim.bytes_per_sec = 0;
	opt.progress = NULL;

	/* A plan for three sim devices, loaded where there are two. */
	tier_sim.devices = 2;
	m = (struct hoist_model *)1;
	CHECK_STATUS(hoist_model_load(plan, &opt, &m), HOIST_ERR_NO_DEVICE);
	CHECK_STR(hoist_errmsg(), "sim:2: no such simulated device (sim_devices is 2)");
	check_nothing_left(m, fds);
	tier_sim.devices = 3;

	/* Short reads everywhere still land every byte on every tier. */
	hoist_fault_set(HOIST_FAULT_SHORT_READ, 1, 0, true);
	CHECK_OK(hoist_model_load(plan, &opt, &m));
	hoist_fault_clear_all();
	check_load(ck, plan, m, &opt, "sim:0,sim:1,sim:2,cpu,disk");
	hoist_model_free(m);
	CHECK_EQ_INT(open_fds(), fds);
	hoist_plan_free(plan);
	hoist_checkpoint_close(ck);
}

/* ENOMEM at every allocation of a multi-tier load in turn (planning included), until
 * the load no longer allocates that many times: each fails cleanly (ASan checks that
 * nothing leaks) and leaves no descriptor or sim allocation behind. */
TEST_TIMEOUT(tiers_nomem_everywhere, 240)
{
	struct hoist_checkpoint *ck = open_synth();
	struct hoist_options opt = fault_opt();
	opt.dtype = HOIST_F32; /* converting chunks too */
	opt.max_memory = "0=6MB,1=2MB,2=2MB,cpu=2MB";
	tier_sim.capacity = 6000000;
	size_t fds = open_fds();
	long nth;
	for (nth = 1; nth < 10000; nth++) {
		struct hoist_model *m = (struct hoist_model *)1;
		hoist_fault_set(HOIST_FAULT_ALLOC, nth, ENOMEM, false);
		enum hoist_status st = test_load(ck, &opt, &m);
		hoist_fault_clear_all();
		if (st == HOIST_OK) {
			struct hoist_plan *plan;
			CHECK_OK(hoist_plan_create(ck, &opt, &plan));
			check_load(ck, plan, m, &opt, "sim:0,sim:1,sim:2,cpu,disk");
			hoist_plan_free(plan);
			hoist_model_free(m);
			break;
		}
		if (st != HOIST_ERR_NOMEM)
			FAIL("allocation %ld: %s: %s", nth, hoist_status_name(st), hoist_errmsg());
		CHECK(hoist_errmsg()[0] != '\0');
		check_nothing_left(m, fds);
	}
	CHECK(nth > 20 && nth < 10000);
	/* The load allocated nth - 1 times: no later allocation fails it either (no
	 * failure was swallowed before the sweep ended). */
	for (long later = nth + 1; later < nth + 200; later += 7) {
		struct hoist_model *m;
		hoist_fault_set(HOIST_FAULT_ALLOC, later, ENOMEM, false);
		enum hoist_status st = test_load(ck, &opt, &m);
		hoist_fault_clear_all();
		if (st != HOIST_OK)
			FAIL("allocation %ld failed the load after %ld did not: %s", later, nth,
			     hoist_errmsg());
		hoist_model_free(m);
	}
	hoist_checkpoint_close(ck);
}
