/* plan.c - the device map: which device every tensor goes to, and where in that
 * device's arena, from checkpoint metadata alone.
 *
 * Tensors are placed in units that are never split across devices: a layer group
 * (every tensor under "model.layers.12.", see hoist_layer_group_prefix), or else a
 * module (the name without its last component, so a weight and its bias stay
 * together). Units are ordered by name, component by component, numbers numerically
 * ("layers.2" before "layers.10"), so a strategy that fills devices in that order gives
 * each device whole runs of consecutive layers.
 *
 * Arena offsets are assigned afterwards, per device, in checkpoint tensor order, each
 * a multiple of HOIST__ARENA_ALIGN: a device's arena is the sum of its tensors' sizes
 * rounded up to the alignment, which is also what the budgets are checked against. */
#include "plan.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GIB (1ull << 30)

/* Headroom left free on devices whose budget comes from what is free now (see
 * hoist.h): GPUs keep max(1 GiB, 5% of their memory) for the CUDA context, kernels
 * and the caller's first activations; the host keeps max(1 GiB, 10% of MemAvailable)
 * for the process itself, the staging ring and the page cache the reads go through. */
#define GPU_HEADROOM_MIN GIB
#define GPU_HEADROOM_PERCENT 5
#define CPU_HEADROOM_MIN GIB
#define CPU_HEADROOM_PERCENT 10

/* Bandwidths for the predicted load time: assumptions, taken from the measurements
 * on one H200 machine in tests/data/README.md, not measured on this machine. */
#define BW_COLD 2.0e9  /* storage, O_DIRECT, 16 readers */
#define BW_WARM 40.0e9 /* page cache -> pinned host memory, 16 readers */
#define BW_COPY 55.0e9 /* pinned host -> GPU */

/* At most this many groups are named in a NO_SPACE message. */
#define NO_SPACE_LIST 6

enum strategy {
	STRATEGY_SINGLE,     /* one target device, no map: everything there */
	STRATEGY_BALANCED,   /* "auto" / "balanced" */
	STRATEGY_SEQUENTIAL, /* "sequential" */
	STRATEGY_MAP,        /* an explicit map file */
};

struct plan_dev {
	struct hoist_device device;
	uint64_t budget; /* UINT64_MAX: unlimited */
	uint64_t bytes;  /* arena bytes planned; disk: file bytes left in place */
	size_t tensors;
	size_t full_unit; /* the first unit that did not fit here and moved on; SIZE_MAX none */
	char source[80];  /* where the budget came from */
};

struct unit {
	const char *key; /* into a tensor name; keylen bytes, no trailing '.' */
	size_t keylen;
	size_t first, count; /* range in plan->order */
	uint64_t bytes;      /* arena bytes (aligned, as loaded) */
	uint64_t file_bytes; /* bytes in the files (what a disk placement references) */
	int dev;             /* index into plan->dev; -1 while unplaced */
};

struct hoist_plan {
	const struct hoist_checkpoint *ckpt;
	size_t ntensors;
	enum hoist_dtype dtype;
	double seconds; /* hoist_plan_create's own time, for a load's report */
	enum strategy strategy;
	char strategy_name[32];
	char *map_path;
	char *map_unused; /* map entries that matched no tensor, comma-separated; or NULL */
	size_t ndev;
	struct plan_dev dev[HOIST__MAX_DEVICES + 2];
	uint8_t *tdev;    /* per tensor: index into dev */
	uint64_t *toff;   /* per tensor: arena offset (disk: file offset) */
	uint64_t *tbytes; /* per tensor: arena bytes (loaded size rounded up to the alignment) */
	size_t nunits;
	struct unit *units;    /* in name order */
	size_t *order;         /* tensor indices, grouped by unit */
	double copy_bw;        /* host -> device copy bandwidth assumed for GPUs */
	double warm_s, cold_s; /* predicted load seconds */
	char notice[512];
};

/* ---- small helpers ------------------------------------------------------------------ */

static char *fmt_bytes(uint64_t bytes, char *buf, size_t size)
{
	if (bytes == UINT64_MAX)
		snprintf(buf, size, "unlimited");
	else
		hoist__format_bytes(bytes, buf, size);
	return buf;
}

static const char *dev_name(const struct plan_dev *d, char *buf, size_t size)
{
	return hoist_device_format(d->device, buf, size);
}

static bool is_gpu(enum hoist_device_kind kind)
{
	return kind == HOIST_DEVICE_CUDA || kind == HOIST_DEVICE_SIM;
}

static bool digits(const char *s, size_t n)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

/* Numeric components sort before others, by value; the rest bytewise. A total order
 * (numbers against words never compare bytewise, which would break transitivity). */
static int component_cmp(const char *a, size_t an, const char *b, size_t bn)
{
	bool ad = digits(a, an), bd = digits(b, bn);
	if (ad != bd)
		return ad ? -1 : 1;
	if (ad) {
		const char *x = a, *y = b;
		size_t xn = an, yn = bn;
		while (xn > 1 && *x == '0')
			x++, xn--;
		while (yn > 1 && *y == '0')
			y++, yn--;
		if (xn != yn)
			return xn < yn ? -1 : 1;
		int c = memcmp(x, y, xn);
		if (c)
			return c;
	}
	int c = memcmp(a, b, HOIST__MIN(an, bn));
	if (c)
		return c;
	return an < bn ? -1 : an > bn;
}

/* Component by component; a key sorts before the keys it is a prefix of, so every
 * module's units are contiguous. */
static int key_cmp(const char *a, size_t an, const char *b, size_t bn)
{
	size_t i = 0, j = 0;
	for (;;) {
		bool aend = i > an, bend = j > bn;
		if (aend || bend)
			return aend && bend ? 0 : aend ? -1 : 1;
		size_t ie = i, je = j;
		while (ie < an && a[ie] != '.')
			ie++;
		while (je < bn && b[je] != '.')
			je++;
		int c = component_cmp(a + i, ie - i, b + j, je - j);
		if (c)
			return c;
		i = ie + 1;
		j = je + 1;
	}
}

/* Whether key has prefix p[0..pn) on a component boundary. */
static bool has_prefix(const char *key, size_t kn, const char *p, size_t pn)
{
	if (pn == 0)
		return true;
	return kn >= pn && memcmp(key, p, pn) == 0 && (kn == pn || key[pn] == '.');
}

struct sort_item {
	const char *key;
	size_t keylen;
	size_t index;
};

static int item_cmp(const void *a, const void *b)
{
	const struct sort_item *x = a, *y = b;
	int c = key_cmp(x->key, x->keylen, y->key, y->keylen);
	if (c)
		return c;
	return x->index < y->index ? -1 : x->index > y->index;
}

/* ---- budgets --------------------------------------------------------------------- */

struct budgets {
	bool gpu_set[HOIST__MAX_DEVICES];
	uint64_t gpu[HOIST__MAX_DEVICES];
	bool cpu_set, disk_set;
	uint64_t cpu, disk;
	bool any_gpu;
	int named_kind; /* kind named as "cuda:N" / "sim:N"; -1 none */
};

static enum hoist_status parse_max_memory(const char *text, struct budgets *b)
{
	memset(b, 0, sizeof *b);
	b->named_kind = -1;
	if (!text)
		return HOIST_OK;
	const char *p = text;
	for (;;) {
		const char *end = strchr(p, ',');
		size_t n = end ? (size_t)(end - p) : strlen(p);
		char item[128];
		while (n > 0 && (*p == ' ' || *p == '\t'))
			p++, n--;
		while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
			n--;
		if (n == 0 || n >= sizeof item)
			return hoist__error(HOIST_ERR_INVALID,
			                    "max_memory \"%s\": %s; expected DEVICE=BYTES[,...] "
			                    "(e.g. 0=20GiB,cpu=64GiB,disk=1TB)",
			                    text, n == 0 ? "empty item" : "item too long");
		memcpy(item, p, n);
		item[n] = '\0';
		char *eq = strchr(item, '=');
		if (!eq)
			return hoist__error(
			        HOIST_ERR_INVALID,
			        "max_memory \"%s\": \"%s\" lacks '='; expected DEVICE=BYTES", text,
			        item);
		*eq = '\0';
		char *key = item, *val = eq + 1;
		size_t kn = strlen(key);
		while (kn > 0 && key[kn - 1] == ' ')
			key[--kn] = '\0';
		while (*val == ' ')
			val++;
		uint64_t bytes;
		if (hoist_bytes_parse(val, &bytes) != HOIST_OK) {
			hoist__error_prefix("max_memory \"%s\": %s", text, key);
			return HOIST_ERR_INVALID;
		}
		struct hoist_device d;
		if (digits(key, kn)) {
			d.kind = HOIST_DEVICE_CUDA; /* placeholder: bare ordinals take the target's
			                               kind */
			d.index = kn > 4 ? HOIST__MAX_DEVICES : atoi(key);
		} else if (hoist_device_parse(key, &d) != HOIST_OK ||
		           (is_gpu(d.kind) && d.index < 0)) {
			return hoist__error(
			        HOIST_ERR_INVALID,
			        "max_memory \"%s\": unknown device \"%s\" (expected a GPU "
			        "ordinal, cuda:N, sim:N, cpu or disk)",
			        text, key);
		} else if (is_gpu(d.kind)) {
			if (b->named_kind >= 0 && b->named_kind != (int)d.kind)
				return hoist__error(HOIST_ERR_INVALID,
				                    "max_memory \"%s\": mixes cuda and sim devices",
				                    text);
			b->named_kind = (int)d.kind;
		}
		bool dup = false;
		if (is_gpu(d.kind)) {
			if (d.index >= HOIST__MAX_DEVICES)
				return hoist__error(
				        HOIST_ERR_INVALID,
				        "max_memory \"%s\": GPU ordinal \"%s\" out of range "
				        "0..%d",
				        text, key, HOIST__MAX_DEVICES - 1);
			dup = b->gpu_set[d.index];
			b->gpu_set[d.index] = true;
			b->gpu[d.index] = bytes;
			b->any_gpu = true;
		} else if (d.kind == HOIST_DEVICE_CPU) {
			dup = b->cpu_set;
			b->cpu_set = true;
			b->cpu = bytes;
		} else {
			dup = b->disk_set;
			b->disk_set = true;
			b->disk = bytes;
		}
		if (dup)
			return hoist__error(HOIST_ERR_INVALID,
			                    "max_memory \"%s\": device \"%s\" given twice", text,
			                    key);
		if (!end)
			break;
		p = end + 1;
	}
	return HOIST_OK;
}

/* What a planning run learns about the machine, asked once each. */
struct machine {
	const struct hoist_options *opt;
	enum hoist_device_kind gpu_kind;
	bool gpus_asked;
	enum hoist_status gpu_status;
	char gpu_error[256];
	struct hoist__device_info gpus[HOIST__MAX_DEVICES];
	size_t ngpus;
};

static enum hoist_status list_gpus(struct machine *m)
{
	if (!m->gpus_asked) {
		m->gpus_asked = true;
		m->gpu_status = hoist__devices_list(m->gpu_kind, m->opt, m->gpus,
		                                    HOIST__ARRAY_SIZE(m->gpus), &m->ngpus);
		if (m->gpu_status == HOIST_OK && m->ngpus == 0)
			m->gpu_status = hoist__error(HOIST_ERR_NO_DEVICE, "no GPU");
		if (m->gpu_status != HOIST_OK) {
			snprintf(m->gpu_error, sizeof m->gpu_error, "%s", hoist_errmsg());
			m->ngpus = 0;
		}
	}
	if (m->gpu_status != HOIST_OK)
		return hoist__error(m->gpu_status, "%s", m->gpu_error);
	return HOIST_OK;
}

static uint64_t gpu_headroom(const struct hoist__device_info *g)
{
	return HOIST__MAX(GPU_HEADROOM_MIN, g->total_bytes / 100 * GPU_HEADROOM_PERCENT);
}

/* Fills d (a GPU of the machine's kind) with its budget: --max-memory, else what is
 * free now less headroom (sim: its capacity). */
static enum hoist_status gpu_budget(struct machine *m, const struct budgets *b, int ordinal,
                                    struct plan_dev *d)
{
	char name[32];
	d->device.kind = m->gpu_kind;
	d->device.index = ordinal;
	if (b->gpu_set[ordinal]) {
		d->budget = b->gpu[ordinal];
		snprintf(d->source, sizeof d->source, "max_memory");
		return HOIST_OK;
	}
	enum hoist_status st = list_gpus(m);
	if (st != HOIST_OK) {
		hoist__error_prefix("%s", hoist_device_format(d->device, name, sizeof name));
		return st;
	}
	for (size_t i = 0; i < m->ngpus; i++) {
		const struct hoist__device_info *g = &m->gpus[i];
		if (g->device.index != ordinal)
			continue;
		if (m->gpu_kind == HOIST_DEVICE_SIM) {
			d->budget = g->free_bytes;
			snprintf(d->source, sizeof d->source, "sim capacity");
		} else {
			uint64_t h = gpu_headroom(g);
			d->budget = g->free_bytes > h ? g->free_bytes - h : 0;
			snprintf(d->source, sizeof d->source,
			         "free now less %" PRIu64 " MiB headroom", h >> 20);
		}
		return HOIST_OK;
	}
	return hoist__error(HOIST_ERR_NO_DEVICE, "%s: no such device (%zu present)",
	                    hoist_device_format(d->device, name, sizeof name), m->ngpus);
}

static enum hoist_status cpu_budget(struct machine *m, const struct budgets *b, struct plan_dev *d)
{
	d->device.kind = HOIST_DEVICE_CPU;
	d->device.index = 0;
	if (b->cpu_set) {
		d->budget = b->cpu;
		snprintf(d->source, sizeof d->source, "max_memory");
		return HOIST_OK;
	}
	if (m->opt->host_memory == HOIST_HOST_MMAP) {
		/* Views of the mapped files: the page cache holds them, not an arena. */
		d->budget = UINT64_MAX;
		snprintf(d->source, sizeof d->source, "mmap: no arena");
		return HOIST_OK;
	}
	struct hoist__device_info info;
	size_t n = 0;
	enum hoist_status st = hoist__devices_list(HOIST_DEVICE_CPU, m->opt, &info, 1, &n);
	if (st != HOIST_OK)
		return st;
	if (n == 0)
		return hoist__error(HOIST_ERR_NO_DEVICE, "cpu: host memory size unknown");
	uint64_t h = HOIST__MAX(CPU_HEADROOM_MIN, info.free_bytes / 100 * CPU_HEADROOM_PERCENT);
	d->budget = info.free_bytes > h ? info.free_bytes - h : 0;
	snprintf(d->source, sizeof d->source, "MemAvailable less %" PRIu64 " MiB headroom",
	         h >> 20);
	return HOIST_OK;
}

static void disk_budget(const struct budgets *b, struct plan_dev *d)
{
	d->device.kind = HOIST_DEVICE_DISK;
	d->device.index = 0;
	d->budget = b->disk_set ? b->disk : UINT64_MAX;
	snprintf(d->source, sizeof d->source, b->disk_set ? "max_memory" : "unlimited");
}

/* ---- plan skeleton ----------------------------------------------------------------- */

void hoist_plan_free(struct hoist_plan *plan)
{
	if (!plan)
		return;
	hoist__free(plan->tdev);
	hoist__free(plan->toff);
	hoist__free(plan->tbytes);
	hoist__free(plan->units);
	hoist__free(plan->order);
	hoist__free(plan->map_path);
	hoist__free(plan->map_unused);
	hoist__free(plan);
}

static struct plan_dev *add_dev(struct hoist_plan *p)
{
	struct plan_dev *d = &p->dev[p->ndev++];
	memset(d, 0, sizeof *d);
	d->full_unit = SIZE_MAX;
	return d;
}

/* Per-tensor sizes and the units. Tied weights need nothing here: safetensors cannot
 * alias storage (the reader rejects overlapping ranges), and a tied lm_head is simply
 * absent from the checkpoint. */
static enum hoist_status build_units(struct hoist_plan *p)
{
	const struct hoist_checkpoint *ck = p->ckpt;
	size_t n = p->ntensors;
	struct sort_item *items = NULL;
	enum hoist_status st = HOIST_OK;

	p->tdev = hoist__calloc(n ? n : 1, sizeof *p->tdev);
	p->toff = hoist__calloc(n ? n : 1, sizeof *p->toff);
	p->tbytes = hoist__calloc(n ? n : 1, sizeof *p->tbytes);
	p->order = hoist__calloc(n ? n : 1, sizeof *p->order);
	items = hoist__calloc(n ? n : 1, sizeof *items);
	if (!p->tdev || !p->toff || !p->tbytes || !p->order || !items) {
		st = hoist__error(HOIST_ERR_NOMEM, "plan: out of memory for %zu tensors", n);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		const struct hoist_tensor_info *t = hoist_checkpoint_tensor(ck, i);
		uint64_t bytes = hoist__loaded_nbytes(t, p->dtype);
		if (bytes > UINT64_MAX - HOIST__ARENA_ALIGN) {
			st = hoist__error(
			        HOIST_ERR_FORMAT, "%s: tensor \"%s\": size %" PRIu64 " too large",
			        hoist_checkpoint_shard_path(ck, t->shard), t->name, bytes);
			goto out;
		}
		p->tbytes[i] =
		        (bytes + HOIST__ARENA_ALIGN - 1) / HOIST__ARENA_ALIGN * HOIST__ARENA_ALIGN;
		size_t lg = hoist_layer_group_prefix(t->name);
		items[i].key = t->name;
		if (lg) {
			items[i].keylen = lg - 1;
		} else {
			const char *dot = strrchr(t->name, '.');
			items[i].keylen = dot ? (size_t)(dot - t->name) : strlen(t->name);
		}
		items[i].index = i;
	}
	qsort(items, n, sizeof *items, item_cmp);

	size_t nunits = 0;
	for (size_t i = 0; i < n; i++)
		if (i == 0 || items[i].keylen != items[i - 1].keylen ||
		    memcmp(items[i].key, items[i - 1].key, items[i].keylen) != 0)
			nunits++;
	p->units = hoist__calloc(nunits ? nunits : 1, sizeof *p->units);
	if (!p->units) {
		st = hoist__error(HOIST_ERR_NOMEM, "plan: out of memory for %zu groups", nunits);
		goto out;
	}
	struct unit *u = NULL;
	for (size_t i = 0; i < n; i++) {
		if (i == 0 || items[i].keylen != items[i - 1].keylen ||
		    memcmp(items[i].key, items[i - 1].key, items[i].keylen) != 0) {
			u = &p->units[p->nunits++];
			u->key = items[i].key;
			u->keylen = items[i].keylen;
			u->first = i;
			u->dev = -1;
		}
		size_t t = items[i].index;
		p->order[i] = t;
		u->count++;
		const struct hoist_tensor_info *ti = hoist_checkpoint_tensor(ck, t);
		uint64_t fb = ti->nbytes;
		if (!hoist__add_u64(u->bytes, p->tbytes[t], &u->bytes) ||
		    !hoist__add_u64(u->file_bytes, fb, &u->file_bytes)) {
			st = hoist__error(HOIST_ERR_FORMAT,
			                  "plan: group \"%.*s\": byte count overflows",
			                  (int)u->keylen, u->key);
			goto out;
		}
	}
out:
	hoist__free(items);
	return st;
}

/* ---- strategies ----------------------------------------------------------------------- */

static uint64_t unit_cost(const struct hoist_plan *p, const struct unit *u, size_t d)
{
	return p->dev[d].device.kind == HOIST_DEVICE_DISK ? u->file_bytes : u->bytes;
}

static bool fits(const struct hoist_plan *p, const struct unit *u, size_t d)
{
	const struct plan_dev *dev = &p->dev[d];
	return dev->bytes <= dev->budget && unit_cost(p, u, d) <= dev->budget - dev->bytes;
}

static void assign(struct hoist_plan *p, struct unit *u, size_t d)
{
	u->dev = (int)d;
	p->dev[d].bytes += unit_cost(p, u, d);
}

static void reset_placement(struct hoist_plan *p)
{
	for (size_t d = 0; d < p->ndev; d++) {
		p->dev[d].bytes = 0;
		p->dev[d].full_unit = SIZE_MAX;
	}
	for (size_t i = 0; i < p->nunits; i++)
		p->units[i].dev = -1;
}

static int tier(enum hoist_device_kind kind)
{
	return is_gpu(kind) ? 0 : kind == HOIST_DEVICE_CPU ? 1 : 2;
}

/* Fills devices in order: each unit goes to the current device if it fits, else the
 * current device is full and the next one is tried. A unit that fits none from the
 * current one on goes to the first device with room (so a strict order never causes a
 * NO_SPACE that a looser one would avoid), else stays unplaced. With backfill (auto),
 * a unit that would go down a tier (GPU -> cpu -> disk) goes instead to the first
 * device of a better tier that still has room for it: more bytes on GPUs, at the
 * cost of the strict order. */
static void place_sequential(struct hoist_plan *p, bool backfill)
{
	size_t j = 0;
	for (size_t i = 0; i < p->nunits; i++) {
		struct unit *u = &p->units[i];
		size_t k = j;
		while (k < p->ndev && !fits(p, u, k))
			k++;
		size_t first = 0;
		while (first < p->ndev && !fits(p, u, first))
			first++;
		if (k < p->ndev &&
		    (!backfill || tier(p->dev[first].device.kind) >= tier(p->dev[k].device.kind))) {
			for (; j < k; j++)
				if (p->dev[j].full_unit == SIZE_MAX)
					p->dev[j].full_unit = i;
			assign(p, u, k);
		} else if (first < p->ndev) {
			assign(p, u, first);
		}
	}
}

/* Spreads the units over the GPUs (the first ngpu devices) in proportion to their
 * budgets, in contiguous runs. Returns false (placing nothing) when the whole model
 * does not fit the GPUs that way; the caller then fills devices in order. */
static bool place_balanced(struct hoist_plan *p, size_t ngpu)
{
	if (ngpu < 2)
		return false;
	uint64_t total = 0, cap = 0;
	for (size_t i = 0; i < p->nunits; i++)
		if (!hoist__add_u64(total, p->units[i].bytes, &total))
			return false;
	for (size_t d = 0; d < ngpu; d++)
		if (!hoist__add_u64(cap, p->dev[d].budget, &cap))
			cap = UINT64_MAX;
	if (total > cap || cap == 0)
		return false;
	/* Cumulative targets: GPU d should end near total * (budgets up to d) / cap. */
	double target = 0, placed = 0;
	size_t j = 0;
	target = (double)total * (double)p->dev[0].budget / (double)cap;
	for (size_t i = 0; i < p->nunits; i++) {
		struct unit *u = &p->units[i];
		while (j + 1 < ngpu &&
		       (!fits(p, u, j) ||
		        (p->dev[j].bytes > 0 && placed + (double)u->bytes / 2 > target))) {
			j++;
			target += (double)total * (double)p->dev[j].budget / (double)cap;
		}
		if (!fits(p, u, j)) {
			reset_placement(p);
			return false;
		}
		assign(p, u, j);
		placed += (double)u->bytes;
	}
	return true;
}

/* The NO_SPACE message: what did not fit, by how much, and what was left where. */
static enum hoist_status no_space(const struct hoist_plan *p, const struct hoist_options *opt)
{
	char msg[1024], b1[32], b2[32], name[32];
	size_t len = 0, listed = 0, unplaced = 0;
	uint64_t missing = 0, room = 0;
#define ADD(...)                                                                                   \
	do {                                                                                       \
		if (len < sizeof msg)                                                              \
			len += (size_t)snprintf(msg + len, sizeof msg - len, __VA_ARGS__);         \
	} while (0)
	for (size_t i = 0; i < p->nunits; i++) {
		if (p->units[i].dev >= 0)
			continue;
		unplaced++;
		missing += p->units[i].bytes;
	}
	for (size_t d = 0; d < p->ndev; d++)
		if (p->dev[d].budget != UINT64_MAX && p->dev[d].bytes < p->dev[d].budget)
			room += p->dev[d].budget - p->dev[d].bytes;
	ADD("%zu group%s (%s) did not fit: ", unplaced, unplaced == 1 ? "" : "s",
	    fmt_bytes(missing, b1, sizeof b1));
	for (size_t i = 0; i < p->nunits && listed < NO_SPACE_LIST; i++) {
		const struct unit *u = &p->units[i];
		if (u->dev >= 0)
			continue;
		ADD("%s%.*s (%s)", listed ? ", " : "", (int)u->keylen, u->key,
		    fmt_bytes(u->bytes, b1, sizeof b1));
		listed++;
	}
	if (unplaced > listed)
		ADD(", and %zu more", unplaced - listed);
	if (missing > room)
		ADD("; %s short", fmt_bytes(missing - room, b1, sizeof b1));
	else
		ADD("; groups are never split and no device has room for them whole");
	ADD(" (");
	for (size_t d = 0; d < p->ndev; d++)
		ADD("%s%s: %s planned of %s", d ? ", " : "",
		    dev_name(&p->dev[d], name, sizeof name),
		    fmt_bytes(p->dev[d].bytes, b1, sizeof b1),
		    fmt_bytes(p->dev[d].budget, b2, sizeof b2));
	if (opt->allow_disk < 0)
		ADD("%sdisk placement forbidden", p->ndev ? "; " : "");
	ADD(")");
#undef ADD
	return hoist__error(HOIST_ERR_NO_SPACE, "%s", msg);
}

/* ---- the explicit map ------------------------------------------------------------------ */

static size_t find_dev(const struct hoist_plan *p, struct hoist_device d)
{
	for (size_t i = 0; i < p->ndev; i++)
		if (p->dev[i].device.kind == d.kind && p->dev[i].device.index == d.index)
			return i;
	return SIZE_MAX;
}

/* Places every tensor as the map says (units play no part: the map may split what it
 * likes), then checks each device against its budget. */
static enum hoist_status place_by_map(struct hoist_plan *p, struct hoist__map *map,
                                      struct machine *m, const struct budgets *b,
                                      const struct hoist_options *opt)
{
	enum hoist_status st = HOIST_OK;
	size_t *entry_of = hoist__calloc(p->ntensors ? p->ntensors : 1, sizeof *entry_of);
	char *unused = NULL;
	if (!entry_of)
		return hoist__error(HOIST_ERR_NOMEM, "plan: out of memory");
	st = hoist__map_resolve(map, p->ckpt, entry_of);
	if (st != HOIST_OK)
		goto out;

	/* Devices: GPUs named by the map or by max_memory, by ordinal; cpu; disk. */
	bool gpu[HOIST__MAX_DEVICES] = {false};
	bool cpu = false, disk = false;
	for (size_t i = 0; i < map->count; i++) {
		struct hoist_device d = map->entries[i].device;
		if (!map->entries[i].used)
			continue;
		if (is_gpu(d.kind))
			gpu[d.index] = true;
		else if (d.kind == HOIST_DEVICE_CPU)
			cpu = true;
		else
			disk = true;
	}
	for (int g = 0; g < HOIST__MAX_DEVICES; g++) {
		if (!gpu[g] && !b->gpu_set[g])
			continue;
		st = gpu_budget(m, b, g, add_dev(p));
		if (st != HOIST_OK) {
			if (gpu[g]) {
				char why[512];
				snprintf(why, sizeof why, "%s", hoist_errmsg());
				hoist__error(st,
				             "device map %s puts tensors on a GPU, but %s (give "
				             "its budget in max_memory to plan for a machine not "
				             "present)",
				             map->path, why);
			}
			goto out;
		}
	}
	if (cpu || b->cpu_set) {
		st = cpu_budget(m, b, add_dev(p));
		if (st != HOIST_OK)
			goto out;
	}
	if (disk && opt->allow_disk < 0) {
		for (size_t i = 0; i < map->count; i++)
			if (map->entries[i].used &&
			    map->entries[i].device.kind == HOIST_DEVICE_DISK) {
				st = hoist__error(
				        HOIST_ERR_INVALID,
				        "device map %s: \"%s\" puts tensors on disk, but disk "
				        "placement is forbidden",
				        map->path, map->entries[i].written);
				goto out;
			}
	}
	if (disk || (b->disk_set && opt->allow_disk >= 0))
		disk_budget(b, add_dev(p));

	for (size_t t = 0; t < p->ntensors; t++) {
		size_t d = find_dev(p, map->entries[entry_of[t]].device);
		p->tdev[t] = (uint8_t)d;
	}

	/* Entries that matched nothing (e.g. non-persistent buffers like rotary_emb) are
	 * worth a line in the printout, not an error. */
	size_t len = 0;
	for (size_t i = 0; i < map->count; i++)
		if (!map->entries[i].used)
			len += strlen(map->entries[i].written) + 2;
	if (len) {
		unused = hoist__malloc(len + 1);
		if (!unused) {
			st = hoist__error(HOIST_ERR_NOMEM, "plan: out of memory");
			goto out;
		}
		unused[0] = '\0';
		for (size_t i = 0, pos = 0; i < map->count; i++) {
			if (map->entries[i].used)
				continue;
			pos += (size_t)sprintf(unused + pos, "%s%s", pos ? ", " : "",
			                       map->entries[i].written);
		}
		p->map_unused = unused;
		unused = NULL;
	}
out:
	hoist__free(unused);
	hoist__free(entry_of);
	return st;
}

/* ---- offsets and the prediction ------------------------------------------------------- */

/* Drops the spill devices (cpu, disk) that a strategy listed but gave nothing and
 * that max_memory did not name: the plan lists the devices it uses or was given a
 * budget for, so a load opens nothing it does not need. */
static void drop_unused_spill(struct hoist_plan *p, const struct budgets *b)
{
	int map[HOIST__MAX_DEVICES + 2];
	size_t w = 0;
	for (size_t d = 0; d < p->ndev; d++) {
		const struct plan_dev *dv = &p->dev[d];
		bool named = dv->device.kind == HOIST_DEVICE_CPU ? b->cpu_set : b->disk_set;
		if (!is_gpu(dv->device.kind) && dv->tensors == 0 && !named) {
			map[d] = -1;
			continue;
		}
		map[d] = (int)w;
		if (w != d)
			p->dev[w] = p->dev[d];
		w++;
	}
	p->ndev = w;
	for (size_t t = 0; t < p->ntensors; t++)
		p->tdev[t] = (uint8_t)map[p->tdev[t]];
	for (size_t i = 0; i < p->nunits; i++)
		if (p->units[i].dev >= 0)
			p->units[i].dev = map[p->units[i].dev];
}

static enum hoist_status assign_offsets(struct hoist_plan *p)
{
	uint64_t run[HOIST__MAX_DEVICES + 2] = {0};
	for (size_t d = 0; d < p->ndev; d++) {
		p->dev[d].bytes = 0;
		p->dev[d].tensors = 0;
	}
	for (size_t t = 0; t < p->ntensors; t++) {
		const struct hoist_tensor_info *ti = hoist_checkpoint_tensor(p->ckpt, t);
		size_t d = p->tdev[t];
		p->dev[d].tensors++;
		if (p->dev[d].device.kind == HOIST_DEVICE_DISK) {
			p->toff[t] = ti->offset;
			p->dev[d].bytes += ti->nbytes;
		} else {
			p->toff[t] = run[d];
			run[d] += p->tbytes[t];
			p->dev[d].bytes = run[d];
		}
	}
	return HOIST_OK;
}

static void predict(struct hoist_plan *p)
{
	double read = 0, copy = 0;
	for (size_t t = 0; t < p->ntensors; t++) {
		const struct plan_dev *d = &p->dev[p->tdev[t]];
		if (d->device.kind != HOIST_DEVICE_DISK)
			read += (double)hoist_checkpoint_tensor(p->ckpt, t)->nbytes;
	}
	/* GPUs copy in parallel; the reads are shared. */
	for (size_t d = 0; d < p->ndev; d++)
		if (is_gpu(p->dev[d].device.kind))
			copy = HOIST__MAX(copy, (double)p->dev[d].bytes / p->copy_bw);
	p->warm_s = HOIST__MAX(read / BW_WARM, copy);
	p->cold_s = HOIST__MAX(read / BW_COLD, copy);
}

/* ---- hoist_plan_create ------------------------------------------------------------------ */

static enum hoist_status single_target(struct hoist_plan *p, struct machine *m,
                                       const struct budgets *b, struct hoist_device target,
                                       const struct hoist_options *opt)
{
	enum hoist_status st;
	struct plan_dev *d = add_dev(p);
	if (is_gpu(target.kind)) {
		st = gpu_budget(m, b, target.index, d);
	} else if (target.kind == HOIST_DEVICE_CPU) {
		st = cpu_budget(m, b, d);
	} else {
		if (opt->allow_disk < 0)
			return hoist__error(
			        HOIST_ERR_INVALID,
			        "device \"disk\" asked for, but disk placement is forbidden");
		disk_budget(b, d);
		st = HOIST_OK;
	}
	if (st != HOIST_OK)
		return st;
	uint64_t need = 0;
	for (size_t i = 0; i < p->nunits; i++) {
		p->units[i].dev = 0;
		need += unit_cost(p, &p->units[i], 0);
	}
	if (need > d->budget) {
		char name[32], b1[32], b2[32], b3[32];
		return hoist__error(HOIST_ERR_NO_SPACE,
		                    "%s: the tensors need %s, but its budget is %s (%s): %s short; "
		                    "a device map (auto, sequential) can spill to cpu or disk",
		                    dev_name(d, name, sizeof name), fmt_bytes(need, b1, sizeof b1),
		                    fmt_bytes(d->budget, b2, sizeof b2), d->source,
		                    fmt_bytes(need - d->budget, b3, sizeof b3));
	}
	return HOIST_OK;
}

/* GPUs, cpu and disk for a strategy, in the fixed order. */
static enum hoist_status strategy_devices(struct hoist_plan *p, struct machine *m,
                                          const struct budgets *b, struct hoist_device target,
                                          bool target_set, const struct hoist_options *opt,
                                          size_t *ngpu)
{
	enum hoist_status st = HOIST_OK;
	bool want_gpus = !target_set || is_gpu(target.kind);
	*ngpu = 0;
	if (want_gpus) {
		if (target_set && target.index >= 0) {
			st = gpu_budget(m, b, target.index, add_dev(p));
		} else if (b->any_gpu) {
			/* A described machine: exactly the GPUs max_memory names. */
			for (int g = 0; g < HOIST__MAX_DEVICES && st == HOIST_OK; g++)
				if (b->gpu_set[g])
					st = gpu_budget(m, b, g, add_dev(p));
		} else if (list_gpus(m) == HOIST_OK) {
			int ords[HOIST__MAX_DEVICES];
			size_t n = 0;
			for (size_t i = 0; i < m->ngpus; i++)
				if (m->gpus[i].device.index >= 0 &&
				    m->gpus[i].device.index < HOIST__MAX_DEVICES)
					ords[n++] = m->gpus[i].device.index;
			for (size_t i = 1; i < n; i++) /* few entries: insertion sort */
				for (size_t k = i; k > 0 && ords[k - 1] > ords[k]; k--) {
					int x = ords[k];
					ords[k] = ords[k - 1];
					ords[k - 1] = x;
				}
			for (size_t i = 0; i < n && st == HOIST_OK; i++)
				if (i == 0 || ords[i] != ords[i - 1])
					st = gpu_budget(m, b, ords[i], add_dev(p));
		} else if (target_set) {
			/* A GPU was asked for by name: no quiet fallback. */
			return hoist__error(m->gpu_status, "%s: %s",
			                    m->gpu_kind == HOIST_DEVICE_SIM ? "sim" : "cuda",
			                    m->gpu_error);
		} else {
			snprintf(p->notice, sizeof p->notice,
			         "no GPU (%s): every tensor planned for cpu", m->gpu_error);
		}
		if (st != HOIST_OK)
			return st;
		*ngpu = p->ndev;
	}
	if (!(target_set && target.kind == HOIST_DEVICE_DISK)) {
		st = cpu_budget(m, b, add_dev(p));
		if (st != HOIST_OK)
			return st;
	}
	if (opt->allow_disk >= 0)
		disk_budget(b, add_dev(p));
	else if (target_set && target.kind == HOIST_DEVICE_DISK)
		return hoist__error(HOIST_ERR_INVALID,
		                    "device \"disk\" asked for, but disk placement is forbidden");
	return HOIST_OK;
}

enum hoist_status hoist_plan_create(const struct hoist_checkpoint *ckpt,
                                    const struct hoist_options *opt, struct hoist_plan **out)
{
	static const struct hoist_options defaults;
	enum hoist_status st = HOIST_OK;
	struct hoist_plan *p = NULL;
	struct hoist__map *map = NULL;
	struct machine *m = NULL;
	struct budgets b;
	struct hoist_device target = {HOIST_DEVICE_CUDA, -1};
	bool target_set = false;
	double t0 = hoist__now();

	if (!out)
		return hoist__error(HOIST_ERR_INVALID, "hoist_plan_create: out is NULL");
	*out = NULL;
	if (!ckpt)
		return hoist__error(HOIST_ERR_INVALID, "hoist_plan_create: checkpoint is NULL");
	if (!opt)
		opt = &defaults;
	if (opt->dtype != HOIST_DTYPE_NONE && opt->dtype != HOIST_F16 && opt->dtype != HOIST_BF16 &&
	    opt->dtype != HOIST_F32)
		return hoist__error(HOIST_ERR_INVALID, "dtype %d: expected F16, BF16 or F32",
		                    (int)opt->dtype);
	if (opt->device) {
		st = hoist_device_parse(opt->device, &target);
		if (st != HOIST_OK)
			return st;
		target_set = true;
	}
	st = parse_max_memory(opt->max_memory, &b);
	if (st != HOIST_OK)
		return st;

	p = hoist__calloc(1, sizeof *p);
	m = hoist__calloc(1, sizeof *m);
	if (!p || !m) {
		st = hoist__error(HOIST_ERR_NOMEM, "plan: out of memory");
		goto out;
	}
	p->ckpt = ckpt;
	p->ntensors = hoist_checkpoint_tensor_count(ckpt);
	p->dtype = opt->dtype;
	p->copy_bw = BW_COPY;
	m->opt = opt;
	m->gpu_kind = target.kind == HOIST_DEVICE_SIM ? HOIST_DEVICE_SIM : HOIST_DEVICE_CUDA;
	if (b.named_kind >= 0 && target_set && is_gpu(target.kind) &&
	    b.named_kind != (int)target.kind) {
		st = hoist__error(HOIST_ERR_INVALID,
		                  "max_memory \"%s\" names %s devices, but the "
		                  "target is \"%s\"",
		                  opt->max_memory,
		                  b.named_kind == HOIST_DEVICE_SIM ? "sim" : "cuda", opt->device);
		goto out;
	}
	if (b.named_kind >= 0 && (!target_set || !is_gpu(target.kind)))
		m->gpu_kind = (enum hoist_device_kind)b.named_kind;
	if (m->gpu_kind == HOIST_DEVICE_SIM && opt->sim_bytes_per_sec > 0)
		p->copy_bw = opt->sim_bytes_per_sec;

	if (p->ntensors > 0 && p->ntensors >= SIZE_MAX / sizeof(struct sort_item)) {
		st = hoist__error(HOIST_ERR_NOMEM, "plan: %zu tensors", p->ntensors);
		goto out;
	}
	st = build_units(p);
	if (st != HOIST_OK)
		goto out;

	const char *dm = opt->device_map;
	if (!dm || !*dm) {
		bool single = target_set && target.index >= 0;
		p->strategy = single ? STRATEGY_SINGLE : STRATEGY_BALANCED;
		snprintf(p->strategy_name, sizeof p->strategy_name, "%s",
		         single ? "single" : "auto");
	} else if (strcmp(dm, "auto") == 0 || strcmp(dm, "balanced") == 0) {
		p->strategy = STRATEGY_BALANCED;
		snprintf(p->strategy_name, sizeof p->strategy_name, "%s", dm);
	} else if (strcmp(dm, "sequential") == 0) {
		p->strategy = STRATEGY_SEQUENTIAL;
		snprintf(p->strategy_name, sizeof p->strategy_name, "sequential");
	} else {
		p->strategy = STRATEGY_MAP;
		snprintf(p->strategy_name, sizeof p->strategy_name, "map");
		if (!(p->map_path = hoist__strdup(dm))) {
			st = hoist__error(HOIST_ERR_NOMEM, "plan: out of memory");
			goto out;
		}
	}

	if (p->strategy == STRATEGY_SINGLE) {
		st = single_target(p, m, &b, target, opt);
		if (st != HOIST_OK)
			goto out;
		for (size_t t = 0; t < p->ntensors; t++)
			p->tdev[t] = 0;
	} else if (p->strategy == STRATEGY_MAP) {
		st = hoist__map_load(dm, m->gpu_kind, &map);
		if (st == HOIST_OK)
			st = place_by_map(p, map, m, &b, opt);
		if (st != HOIST_OK)
			goto out;
	} else {
		size_t ngpu = 0;
		st = strategy_devices(p, m, &b, target, target_set, opt, &ngpu);
		if (st != HOIST_OK)
			goto out;
		if (p->strategy == STRATEGY_SEQUENTIAL)
			place_sequential(p, false);
		else if (!place_balanced(p, ngpu))
			place_sequential(p, true);
		for (size_t i = 0; i < p->nunits; i++) {
			if (p->units[i].dev < 0) {
				st = no_space(p, opt);
				goto out;
			}
		}
		for (size_t i = 0; i < p->nunits; i++) {
			const struct unit *u = &p->units[i];
			for (size_t k = 0; k < u->count; k++)
				p->tdev[p->order[u->first + k]] = (uint8_t)u->dev;
		}
	}
	assign_offsets(p);
	if (p->strategy == STRATEGY_BALANCED || p->strategy == STRATEGY_SEQUENTIAL)
		drop_unused_spill(p, &b);
	if (p->strategy == STRATEGY_MAP) {
		for (size_t d = 0; d < p->ndev; d++) {
			const struct plan_dev *dv = &p->dev[d];
			if (dv->bytes <= dv->budget)
				continue;
			char name[32], b1[32], b2[32], b3[32];
			st = hoist__error(
			        HOIST_ERR_NO_SPACE,
			        "device map %s puts %s on %s, %s more than its budget of %s (%s)",
			        p->map_path, fmt_bytes(dv->bytes, b1, sizeof b1),
			        dev_name(dv, name, sizeof name),
			        fmt_bytes(dv->bytes - dv->budget, b2, sizeof b2),
			        fmt_bytes(dv->budget, b3, sizeof b3), dv->source);
			goto out;
		}
	}
	predict(p);
	if (p->notice[0] && opt->verbose)
		fprintf(stderr, "hoist: %s\n", p->notice);
	p->seconds = hoist__now() - t0;
	*out = p;
	p = NULL;
out:
	hoist__map_free(map);
	hoist__free(m);
	hoist_plan_free(p);
	return st;
}

/* ---- accessors ----------------------------------------------------------------------- */

size_t hoist_plan_device_count(const struct hoist_plan *plan)
{
	return plan ? plan->ndev : 0;
}

void hoist_plan_device(const struct hoist_plan *plan, size_t i, struct hoist_device *device,
                       uint64_t *budget, uint64_t *bytes)
{
	struct hoist_device none = {HOIST_DEVICE_CPU, -1};
	bool ok = plan && i < plan->ndev;
	if (device)
		*device = ok ? plan->dev[i].device : none;
	if (budget)
		*budget = ok ? plan->dev[i].budget : 0;
	if (bytes)
		*bytes = ok ? plan->dev[i].bytes : 0;
}

struct hoist_device hoist_plan_tensor_device(const struct hoist_plan *plan, size_t index)
{
	struct hoist_device none = {HOIST_DEVICE_CPU, -1};
	if (!plan || index >= plan->ntensors)
		return none;
	return plan->dev[plan->tdev[index]].device;
}

uint64_t hoist_plan_tensor_offset(const struct hoist_plan *plan, size_t index)
{
	if (!plan || index >= plan->ntensors)
		return UINT64_MAX;
	return plan->toff[index];
}

double hoist__plan_seconds(const struct hoist_plan *plan)
{
	return plan ? plan->seconds : 0;
}

const char *hoist_plan_notice(const struct hoist_plan *plan)
{
	return plan && plan->notice[0] ? plan->notice : NULL;
}

double hoist_plan_predicted_seconds(const struct hoist_plan *plan, int cold)
{
	if (!plan)
		return -1;
	return cold ? plan->cold_s : plan->warm_s;
}

const struct hoist_checkpoint *hoist__plan_checkpoint(const struct hoist_plan *plan)
{
	return plan ? plan->ckpt : NULL;
}

enum hoist_dtype hoist__plan_dtype(const struct hoist_plan *plan)
{
	return plan ? plan->dtype : HOIST_DTYPE_NONE;
}

size_t hoist__plan_tensor_count(const struct hoist_plan *plan)
{
	return plan ? plan->ntensors : 0;
}

/* ---- printing --------------------------------------------------------------------------- */

/* One line of the compressed map: a module prefix (or a run of numbered siblings
 * "stem.lo-hi") and the device all its tensors go to. */
struct line {
	const char *key;
	size_t keylen; /* for a run: the stem's length */
	bool run;
	unsigned long lo, hi;
	int dev; /* -1: the units under key go to several devices (map plans only) */
	uint64_t bytes;
	size_t tensors;
};

/* The device of a unit: with a map, units may be split; -1 then. */
static int unit_dev(const struct hoist_plan *p, const struct unit *u)
{
	int d = p->tdev[p->order[u->first]];
	for (size_t k = 1; k < u->count; k++)
		if (p->tdev[p->order[u->first + k]] != d)
			return -1;
	return d;
}

static uint64_t unit_bytes_on(const struct hoist_plan *p, const struct unit *u, int d)
{
	if (d >= 0 && p->dev[d].device.kind == HOIST_DEVICE_DISK)
		return u->file_bytes;
	return u->bytes;
}

/* The lines: for each unit in order, the shortest module prefix that starts at it and
 * whose units all go to one device; then numbered siblings with one device merge. */
static enum hoist_status make_lines(const struct hoist_plan *p, struct line **out, size_t *count)
{
	int *udev = hoist__calloc(p->nunits ? p->nunits : 1, sizeof *udev);
	struct line *lines = hoist__calloc(p->nunits ? p->nunits : 1, sizeof *lines);
	size_t n = 0;
	if (!udev || !lines) {
		hoist__free(udev);
		hoist__free(lines);
		return hoist__error(HOIST_ERR_NOMEM, "plan: out of memory");
	}
	for (size_t i = 0; i < p->nunits; i++)
		udev[i] = unit_dev(p, &p->units[i]);
	for (size_t i = 0; i < p->nunits;) {
		const struct unit *u = &p->units[i];
		size_t end = i + 1, len = u->keylen;
		/* Candidate prefixes from the shortest: "" (everything), then each
		 * component boundary, then the whole key. */
		for (size_t cut = 0; cut <= u->keylen; cut++) {
			if (cut > 0 && cut < u->keylen && u->key[cut] != '.')
				continue;
			if (i > 0 &&
			    has_prefix(p->units[i - 1].key, p->units[i - 1].keylen, u->key, cut))
				continue;
			size_t j = i;
			bool same = udev[i] >= 0;
			while (j < p->nunits &&
			       has_prefix(p->units[j].key, p->units[j].keylen, u->key, cut)) {
				if (udev[j] != udev[i]) {
					same = false;
					break;
				}
				j++;
			}
			if (!same)
				continue;
			end = j;
			len = cut;
			break;
		}
		struct line *l = &lines[n++];
		l->key = u->key;
		l->keylen = len;
		l->dev = udev[i];
		for (size_t k = i; k < end; k++) {
			l->bytes += unit_bytes_on(p, &p->units[k], udev[k]);
			l->tensors += p->units[k].count;
		}
		i = end;
	}
	/* Merge "stem.N" lines with the next numbers and one device into "stem.N-M". */
	size_t w = 0;
	for (size_t r = 0; r < n; r++) {
		struct line *l = &lines[r];
		const char *dot = NULL;
		for (size_t k = l->keylen; k > 0; k--)
			if (l->key[k - 1] == '.') {
				dot = l->key + k - 1;
				break;
			}
		size_t stem = dot ? (size_t)(dot - l->key) : 0;
		bool numbered =
		        dot && digits(dot + 1, l->keylen - stem - 1) && l->keylen - stem - 1 < 10;
		unsigned long num = numbered ? strtoul(dot + 1, NULL, 10) : 0;
		if (numbered && w > 0) {
			struct line *prev = &lines[w - 1];
			if (prev->run && prev->dev == l->dev && prev->dev >= 0 &&
			    prev->keylen == stem && memcmp(prev->key, l->key, stem) == 0 &&
			    prev->hi + 1 == num) {
				prev->hi = num;
				prev->bytes += l->bytes;
				prev->tensors += l->tensors;
				continue;
			}
		}
		lines[w] = *l;
		if (numbered) {
			lines[w].run = true;
			lines[w].keylen = stem;
			lines[w].lo = lines[w].hi = num;
		}
		w++;
	}
	hoist__free(udev);
	*out = lines;
	*count = w;
	return HOIST_OK;
}

static void line_text(const struct line *l, char *buf, size_t size)
{
	if (l->run && l->lo == l->hi)
		snprintf(buf, size, "%.*s.%lu", (int)l->keylen, l->key, l->lo);
	else if (l->run)
		snprintf(buf, size, "%.*s.%lu-%lu", (int)l->keylen, l->key, l->lo, l->hi);
	else if (l->keylen == 0)
		snprintf(buf, size, "(everything)");
	else
		snprintf(buf, size, "%.*s", (int)l->keylen, l->key);
}

static uint64_t total_file_bytes(const struct hoist_plan *p)
{
	uint64_t total = 0;
	for (size_t i = 0; i < p->nunits; i++)
		total += p->units[i].file_bytes;
	return total;
}

enum hoist_status hoist_plan_print(const struct hoist_plan *plan, FILE *out)
{
	if (!plan || !out)
		return hoist__error(HOIST_ERR_INVALID, "hoist_plan_print: plan or stream is NULL");
	const struct hoist_plan *p = plan;
	struct line *lines = NULL;
	size_t nlines = 0;
	char b1[32], b2[32], name[32], text[256];
	enum hoist_status st = make_lines(p, &lines, &nlines);
	if (st != HOIST_OK)
		return st;

	fprintf(out, "plan: %zu tensors, %s in %zu shard%s; strategy %s%s%s; dtype %s\n",
	        p->ntensors, fmt_bytes(total_file_bytes(p), b1, sizeof b1),
	        hoist_checkpoint_shard_count(p->ckpt),
	        hoist_checkpoint_shard_count(p->ckpt) == 1 ? "" : "s", p->strategy_name,
	        p->map_path ? " " : "", p->map_path ? p->map_path : "",
	        p->dtype ? hoist_dtype_name(p->dtype) : "as stored");
	if (p->notice[0])
		fprintf(out, "notice: %s\n", p->notice);
	fprintf(out, "\n%-8s %12s %12s %8s  %s\n", "device", "planned", "budget", "tensors",
	        "budget from");
	for (size_t d = 0; d < p->ndev; d++)
		fprintf(out, "%-8s %12s %12s %8zu  %s\n", dev_name(&p->dev[d], name, sizeof name),
		        fmt_bytes(p->dev[d].bytes, b1, sizeof b1),
		        fmt_bytes(p->dev[d].budget, b2, sizeof b2), p->dev[d].tensors,
		        p->dev[d].source);

	int width = 8;
	for (size_t i = 0; i < nlines; i++) {
		line_text(&lines[i], text, sizeof text);
		width = HOIST__MAX(width, HOIST__MIN((int)strlen(text), 64));
	}
	fprintf(out, "\nmap (%s):\n",
	        p->strategy == STRATEGY_MAP      ? "as the map file says"
	        : p->strategy == STRATEGY_SINGLE ? "one target device"
	                                         : "layer groups and modules are never split");
	for (size_t i = 0; i < nlines; i++) {
		line_text(&lines[i], text, sizeof text);
		fprintf(out, "  %-*s -> %-7s %12s  %zu tensor%s\n", width, text,
		        lines[i].dev >= 0 ? dev_name(&p->dev[lines[i].dev], name, sizeof name)
		                          : "(split)",
		        fmt_bytes(lines[i].bytes, b1, sizeof b1), lines[i].tensors,
		        lines[i].tensors == 1 ? "" : "s");
	}
	if (p->map_unused)
		fprintf(out, "  map entries that match no tensor (ignored): %s\n", p->map_unused);

	bool header = false;
	for (size_t d = 0; d < p->ndev; d++) {
		const struct plan_dev *dv = &p->dev[d];
		if (dv->full_unit == SIZE_MAX)
			continue;
		const struct unit *u = &p->units[dv->full_unit];
		if (!header)
			fprintf(out, "\nspilled:\n");
		header = true;
		char to[32];
		fprintf(out,
		        "  %s is full (%s planned of %s): %.*s (%s) was the first group that "
		        "did not fit; it went to %s\n",
		        dev_name(dv, name, sizeof name), fmt_bytes(dv->bytes, b1, sizeof b1),
		        fmt_bytes(dv->budget, b2, sizeof b2), (int)u->keylen, u->key,
		        fmt_bytes(u->bytes, text, sizeof text),
		        u->dev >= 0 ? dev_name(&p->dev[u->dev], to, sizeof to) : "nowhere");
	}
	for (size_t d = 0; d < p->ndev; d++) {
		const struct plan_dev *dv = &p->dev[d];
		if (dv->device.kind == HOIST_DEVICE_DISK && dv->tensors > 0)
			fprintf(out,
			        "  disk: %zu tensor%s (%s) left in the checkpoint's files, "
			        "read when asked for, at no cost at load\n",
			        dv->tensors, dv->tensors == 1 ? "" : "s",
			        fmt_bytes(dv->bytes, b1, sizeof b1));
	}

	fprintf(out, "\npredicted load: %.2f s from page cache, %.2f s from cold storage\n",
	        p->warm_s, p->cold_s);
	fprintf(out,
	        "  (assumed, not measured here: storage %.1f GB/s cold, page cache %.0f GB/s "
	        "warm, host->GPU copy %.0f GB/s; from one H200 machine, tests/data/README.md)\n",
	        BW_COLD / 1e9, BW_WARM / 1e9, p->copy_bw / 1e9);
	hoist__free(lines);
	return ferror(out) ? hoist__error(HOIST_ERR_IO, "plan: write failed") : HOIST_OK;
}

static void json_string(FILE *out, const char *s, size_t n)
{
	fputc('"', out);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\')
			fprintf(out, "\\%c", c);
		else if (c < 0x20)
			fprintf(out, "\\u%04x", c);
		else
			fputc(c, out);
	}
	fputc('"', out);
}

static void json_cstr(FILE *out, const char *s)
{
	json_string(out, s, strlen(s));
}

enum hoist_status hoist_plan_print_json(const struct hoist_plan *plan, FILE *out)
{
	if (!plan || !out)
		return hoist__error(HOIST_ERR_INVALID,
		                    "hoist_plan_print_json: plan or stream is NULL");
	const struct hoist_plan *p = plan;
	struct line *lines = NULL;
	size_t nlines = 0;
	char name[32], text[256];
	enum hoist_status st = make_lines(p, &lines, &nlines);
	if (st != HOIST_OK)
		return st;

	fprintf(out, "{\"tensors\":%zu,\"bytes\":%" PRIu64 ",\"strategy\":", p->ntensors,
	        total_file_bytes(p));
	json_cstr(out, p->strategy_name);
	fputs(",\"map_file\":", out);
	if (p->map_path)
		json_cstr(out, p->map_path);
	else
		fputs("null", out);
	fputs(",\"dtype\":", out);
	if (p->dtype)
		json_cstr(out, hoist_dtype_name(p->dtype));
	else
		fputs("null", out);
	fputs(",\"notice\":", out);
	if (p->notice[0])
		json_cstr(out, p->notice);
	else
		fputs("null", out);
	fputs(",\"devices\":{", out);
	for (size_t d = 0; d < p->ndev; d++) {
		const struct plan_dev *dv = &p->dev[d];
		fprintf(out, "%s", d ? "," : "");
		json_cstr(out, dev_name(dv, name, sizeof name));
		fputs(":{\"budget\":", out);
		if (dv->budget == UINT64_MAX)
			fputs("null", out);
		else
			fprintf(out, "%" PRIu64, dv->budget);
		fprintf(out, ",\"bytes\":%" PRIu64 ",\"tensors\":%zu,\"budget_from\":", dv->bytes,
		        dv->tensors);
		json_cstr(out, dv->source);
		fputs("}", out);
	}
	fputs("},\"groups\":[", out);
	for (size_t i = 0; i < nlines; i++) {
		/* "" covers everything, as in a map file. */
		if (!lines[i].run && lines[i].keylen == 0)
			text[0] = '\0';
		else
			line_text(&lines[i], text, sizeof text);
		fputs(i ? ",{\"prefix\":" : "{\"prefix\":", out);
		json_cstr(out, text);
		fputs(",\"device\":", out);
		if (lines[i].dev >= 0)
			json_cstr(out, dev_name(&p->dev[lines[i].dev], name, sizeof name));
		else
			fputs("null", out);
		fprintf(out, ",\"bytes\":%" PRIu64 ",\"tensors\":%zu}", lines[i].bytes,
		        lines[i].tensors);
	}
	fprintf(out, "],\"predicted_seconds\":{\"warm\":%.3f,\"cold\":%.3f},", p->warm_s,
	        p->cold_s);
	fprintf(out,
	        "\"assumed_bytes_per_second\":{\"cold_storage\":%.0f,\"page_cache\":%.0f,"
	        "\"copy\":%.0f},\"placement\":{",
	        BW_COLD, BW_WARM, p->copy_bw);
	for (size_t t = 0; t < p->ntensors; t++) {
		if (t)
			fputc(',', out);
		json_cstr(out, hoist_checkpoint_tensor(p->ckpt, t)->name);
		fputc(':', out);
		json_cstr(out, dev_name(&p->dev[p->tdev[t]], name, sizeof name));
	}
	fputs("}}\n", out);
	hoist__free(lines);
	return ferror(out) ? hoist__error(HOIST_ERR_IO, "plan: write failed") : HOIST_OK;
}
