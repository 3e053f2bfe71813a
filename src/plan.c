/* plan.c - the device map: which device every tensor goes to, and where in that
 * device's arena, from checkpoint metadata alone.
 *
 * Tensors are placed in units that are never split across devices: a layer group
 * (every tensor under "model.layers.12.", see hoist_layer_group_prefix), or else a
 * module (the name without its last component, so a weight and its bias stay
 * together); or the caller's units (plan_order.c). Units are kept in name order,
 * component by component, numbers numerically ("layers.2" before "layers.10"), for
 * the printed map; the strategies fill devices along the execution order (p->seq,
 * plan_order.c), moving on when a unit does not fit and never back, so each device
 * holds one run of it. A tie group goes whole to the device of its first unit.
 *
 * Arena offsets are assigned afterwards, per device, in checkpoint tensor order, each
 * a multiple of HOIST_ARENA_ALIGN: a device's arena is the sum of its tensors' sizes
 * rounded up to the alignment, which is also what the budgets are checked against. */
#include "plan.h"
#include "budget.h"
#include "figures.h"
#include "names.h"
#include "plan_map.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* At most this many groups are named in a NO_SPACE message. */
#define NO_SPACE_LIST 6

/* ---- small helpers ------------------------------------------------------------------ */

char *hoist__plan_bytes(uint64_t bytes, char *buf, size_t size)
{
	if (bytes == UINT64_MAX)
		snprintf(buf, size, "unlimited");
	else
		hoist_bytes_format(bytes, buf, size);
	return buf;
}

static const char *dev_name(const struct hoist__plan_dev *d, char *buf, size_t size)
{
	return hoist_device_format(d->device, buf, size);
}

struct sort_item {
	const char *key;
	size_t keylen;
	size_t index;
};

static int item_cmp(const void *a, const void *b)
{
	const struct sort_item *x = a, *y = b;
	int c = hoist__name_cmp(x->key, x->keylen, y->key, y->keylen);
	if (c)
		return c;
	return x->index < y->index ? -1 : x->index > y->index;
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
	hoist__free(plan->placements);
	hoist__free(plan->seq);
	hoist__free(plan->order_path);
	hoist__free(plan->skipped);
	hoist__free(plan->strings);
	hoist__free(plan->unit_info);
	hoist__free(plan);
}

/* Lists a device with its budget. There is room: at most HOIST_MAX_DEVICES GPUs,
 * cpu and disk are ever added. */
static struct hoist__plan_dev *add_dev(struct hoist_plan *p, const struct hoist__budget *b)
{
	struct hoist__plan_dev *d = &p->dev[p->ndev++];
	memset(d, 0, sizeof *d);
	d->device = b->device;
	d->budget = b->budget;
	snprintf(d->source, sizeof d->source, "%s", b->source);
	d->full_unit = SIZE_MAX;
	return d;
}

static enum hoist_status add_gpu(struct hoist_plan *p, struct hoist__machine *m,
                                 const struct hoist__budgets *b, int ordinal)
{
	struct hoist__budget bg;
	enum hoist_status st = hoist__budget_gpu(m, b, ordinal, &bg);
	if (st == HOIST_OK)
		add_dev(p, &bg);
	return st;
}

static enum hoist_status add_cpu(struct hoist_plan *p, struct hoist__machine *m,
                                 const struct hoist__budgets *b)
{
	struct hoist__budget bg;
	enum hoist_status st = hoist__budget_cpu(m, b, &bg);
	if (st == HOIST_OK)
		add_dev(p, &bg);
	return st;
}

static void add_disk(struct hoist_plan *p, const struct hoist__budgets *b)
{
	struct hoist__budget bg;
	hoist__budget_disk(b, &bg);
	add_dev(p, &bg);
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
		uint64_t bytes = hoist__loaded_nbytes(t->dtype, t->numel, t->nbytes, p->dtype);
		if (bytes > UINT64_MAX - HOIST_ARENA_ALIGN) {
			st = hoist__error(
			        HOIST_ERR_FORMAT, "%s: tensor \"%s\": size %" PRIu64 " too large",
			        hoist_checkpoint_shard(ck, t->shard)->path, t->name, bytes);
			goto out;
		}
		p->tbytes[i] =
		        (bytes + HOIST_ARENA_ALIGN - 1) / HOIST_ARENA_ALIGN * HOIST_ARENA_ALIGN;
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
	p->seq = hoist__calloc(n ? n : 1, sizeof *p->seq); /* room for a request's units too */
	if (!p->units || !p->seq) {
		st = hoist__error(HOIST_ERR_NOMEM, "plan: out of memory for %zu groups", nunits);
		goto out;
	}
	struct hoist__unit *u = NULL;
	for (size_t i = 0; i < n; i++) {
		if (i == 0 || items[i].keylen != items[i - 1].keylen ||
		    memcmp(items[i].key, items[i - 1].key, items[i].keylen) != 0) {
			u = &p->units[p->nunits++];
			u->key = items[i].key;
			u->keylen = items[i].keylen;
			u->first = i;
			u->dev = u->fixed = u->tie = -1;
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

static uint64_t unit_cost(const struct hoist_plan *p, const struct hoist__unit *u, size_t d)
{
	return p->dev[d].device.kind == HOIST_DEVICE_DISK ? u->file_bytes : u->bytes;
}

/* The first GPU and cpu keep p->room free where offloaded layers run (accelerate's
 * "main devices"). */
static uint64_t usable(const struct hoist_plan *p, size_t d)
{
	const struct hoist__plan_dev *dev = &p->dev[d];
	bool main =
	        (d == 0 && hoist__is_gpu(dev->device.kind)) || dev->device.kind == HOIST_DEVICE_CPU;
	if (!main || !p->room || dev->budget == UINT64_MAX)
		return dev->budget;
	return dev->budget > p->room ? dev->budget - p->room : 0;
}

/* What placing unit u on d costs: its bytes, and those of the rest of its tie group
 * not yet placed (they follow it there). */
static uint64_t need(const struct hoist_plan *p, const struct hoist__unit *u, size_t d)
{
	uint64_t n = unit_cost(p, u, d);
	if (u->tie < 0)
		return n;
	for (size_t i = 0; i < p->nunits; i++) {
		const struct hoist__unit *o = &p->units[i];
		if (o != u && o->tie == u->tie && o->dev < 0)
			n += unit_cost(p, o, d);
	}
	return n;
}

static bool fits(const struct hoist_plan *p, const struct hoist__unit *u, size_t d)
{
	uint64_t cap = usable(p, d), used = p->dev[d].bytes;
	return used <= cap && need(p, u, d) <= cap - used;
}

static void assign_one(struct hoist_plan *p, struct hoist__unit *u, size_t d)
{
	u->dev = (int)d;
	p->dev[d].bytes += unit_cost(p, u, d);
}

/* Places u on d, with the rest of its tie group. */
static void assign(struct hoist_plan *p, struct hoist__unit *u, size_t d)
{
	if (u->tie >= 0)
		for (size_t i = 0; i < p->nunits; i++)
			if (&p->units[i] != u && p->units[i].tie == u->tie && p->units[i].dev < 0)
				assign_one(p, &p->units[i], d);
	assign_one(p, u, d);
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

/* The caller's fixed devices first: each such unit (and its tie group) goes where it
 * was told. Errors: HOIST_ERR_INVALID for a tie group told two devices. */
static enum hoist_status place_fixed(struct hoist_plan *p)
{
	for (size_t i = 0; i < p->nunits; i++) {
		struct hoist__unit *u = &p->units[i];
		if (u->fixed < 0)
			continue;
		if (u->dev >= 0 && u->dev != u->fixed) {
			char a[32], b[32];
			return hoist__error(
			        HOIST_ERR_INVALID,
			        "plan request: unit \"%s\" is told %s, but its tie "
			        "group is on %s",
			        u->key, hoist_device_format(p->dev[u->fixed].device, a, sizeof a),
			        hoist_device_format(p->dev[u->dev].device, b, sizeof b));
		}
		if (u->dev < 0)
			assign(p, u, (size_t)u->fixed);
	}
	return HOIST_OK;
}

/* Fills devices in order along the execution order: each unit goes to the current
 * device if it fits, else the current device is full and the next one is tried; the
 * plan never goes back to an earlier device, so each holds one run of the order. A
 * unit that fits none from the current one on goes to the first device with room
 * (so a strict order never causes a NO_SPACE that a looser one would avoid), else
 * stays unplaced. */
static void place_sequential(struct hoist_plan *p)
{
	size_t j = 0;
	for (size_t i = 0; i < p->nunits; i++) {
		struct hoist__unit *u = &p->units[p->seq[i]];
		if (u->dev >= 0)
			continue;
		size_t k = j;
		while (k < p->ndev && !fits(p, u, k))
			k++;
		if (k < p->ndev) {
			for (; j < k; j++)
				if (p->dev[j].full_unit == SIZE_MAX)
					p->dev[j].full_unit = p->seq[i];
			assign(p, u, k);
			continue;
		}
		for (size_t first = 0; first < p->ndev; first++)
			if (fits(p, u, first)) {
				assign(p, u, first);
				break;
			}
	}
}

/* Spreads the units over the GPUs (the first ngpu devices) in proportion to their
 * budgets, in contiguous runs of the execution order. Returns false (placing
 * nothing) when the whole model does not fit the GPUs that way; the caller then fills
 * devices in order. */
static bool place_balanced(struct hoist_plan *p, size_t ngpu)
{
	if (ngpu < 2)
		return false;
	uint64_t total = 0, cap = 0;
	for (size_t i = 0; i < p->nunits; i++) {
		if (p->units[i].fixed >= 0)
			return false; /* the caller placed some: fill around them in order */
		if (!hoist__add_u64(total, p->units[i].bytes, &total))
			return false;
	}
	for (size_t d = 0; d < ngpu; d++)
		if (!hoist__add_u64(cap, usable(p, d), &cap))
			cap = UINT64_MAX;
	if (total > cap || cap == 0)
		return false;
	/* Cumulative targets: GPU d should end near total * (budgets up to d) / cap. */
	double target = 0, placed = 0;
	size_t j = 0;
	target = (double)total * (double)usable(p, 0) / (double)cap;
	for (size_t i = 0; i < p->nunits; i++) {
		struct hoist__unit *u = &p->units[p->seq[i]];
		if (u->dev >= 0)
			continue;
		uint64_t n = need(p, u, j);
		while (j + 1 < ngpu && (!fits(p, u, j) ||
		                        (p->dev[j].bytes > 0 && placed + (double)n / 2 > target))) {
			j++;
			target += (double)total * (double)usable(p, j) / (double)cap;
		}
		if (!fits(p, u, j)) {
			reset_placement(p);
			return false;
		}
		n = need(p, u, j);
		assign(p, u, j);
		placed += (double)n;
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
	    hoist__plan_bytes(missing, b1, sizeof b1));
	for (size_t i = 0; i < p->nunits && listed < NO_SPACE_LIST; i++) {
		const struct hoist__unit *u = &p->units[i];
		if (u->dev >= 0)
			continue;
		ADD("%s%.*s (%s)", listed ? ", " : "", (int)u->keylen, u->key,
		    hoist__plan_bytes(u->bytes, b1, sizeof b1));
		listed++;
	}
	if (unplaced > listed)
		ADD(", and %zu more", unplaced - listed);
	if (missing > room)
		ADD("; %s short", hoist__plan_bytes(missing - room, b1, sizeof b1));
	else
		ADD("; groups are never split and no device has room for them whole");
	ADD(" (");
	for (size_t d = 0; d < p->ndev; d++)
		ADD("%s%s: %s planned of %s", d ? ", " : "",
		    dev_name(&p->dev[d], name, sizeof name),
		    hoist__plan_bytes(p->dev[d].bytes, b1, sizeof b1),
		    hoist__plan_bytes(p->dev[d].budget, b2, sizeof b2));
	if (opt->disk == HOIST_DISK_FORBIDDEN)
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
                                      struct hoist__machine *m, const struct hoist__budgets *b,
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
	bool gpu[HOIST_MAX_DEVICES] = {false};
	bool cpu = false, disk = false;
	for (size_t i = 0; i < map->count; i++) {
		struct hoist_device d = map->entries[i].device;
		if (!map->entries[i].used)
			continue;
		if (hoist__is_gpu(d.kind))
			gpu[d.index] = true;
		else if (d.kind == HOIST_DEVICE_CPU)
			cpu = true;
		else
			disk = true;
	}
	for (int g = 0; g < HOIST_MAX_DEVICES; g++) {
		if (!gpu[g] && !b->gpu_set[g])
			continue;
		st = add_gpu(p, m, b, g);
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
		st = add_cpu(p, m, b);
		if (st != HOIST_OK)
			goto out;
	}
	if (disk && opt->disk == HOIST_DISK_FORBIDDEN) {
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
	if (disk || (b->disk_set && opt->disk != HOIST_DISK_FORBIDDEN))
		add_disk(p, b);

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

/* ---- the caller's devices, skipped tensors ------------------------------------------ */

/* The plan's device for the caller's text ("cuda:1", "sim:0", "1", "cpu", "disk"). */
static enum hoist_status fixed_device(const struct hoist_plan *p, const struct hoist__machine *m,
                                      const struct hoist__unit *u, size_t *out)
{
	struct hoist_device d;
	const char *t = u->fixed_text;
	if (hoist__name_digits(t, strlen(t)) && strlen(t) < 4) {
		d = (struct hoist_device){m->gpu_kind, atoi(t)};
	} else if (hoist_device_parse(t, &d) != HOIST_OK || d.index < 0) {
		return hoist__error(
		        HOIST_ERR_INVALID,
		        "plan request: unit \"%s\": unknown device \"%s\" (expected a GPU "
		        "ordinal, cuda:N, sim:N, cpu or disk)",
		        u->key, t);
	}
	size_t i = find_dev(p, d);
	if (i == SIZE_MAX) {
		char list[256], name[32];
		size_t len = 0;
		list[0] = '\0';
		for (size_t k = 0; k < p->ndev && len < sizeof list; k++)
			len += (size_t)snprintf(list + len, sizeof list - len, "%s%s",
			                        k ? ", " : "",
			                        dev_name(&p->dev[k], name, sizeof name));
		return hoist__error(HOIST_ERR_INVALID,
		                    "plan request: unit \"%s\" is told \"%s\", which is not among "
		                    "the plan's devices (%s)",
		                    u->key, t, list);
	}
	*out = i;
	return HOIST_OK;
}

static enum hoist_status resolve_fixed(struct hoist_plan *p, const struct hoist__machine *m)
{
	for (size_t i = 0; i < p->nunits; i++) {
		struct hoist__unit *u = &p->units[i];
		size_t d;
		if (!u->fixed_text)
			continue;
		enum hoist_status st = fixed_device(p, m, u, &d);
		if (st != HOIST_OK)
			return st;
		if (p->strategy == HOIST__STRATEGY_SINGLE && d != 0)
			return hoist__error(
			        HOIST_ERR_INVALID,
			        "plan request: unit \"%s\" is told \"%s\", but the plan "
			        "is for one device",
			        u->key, u->fixed_text);
		u->fixed = (int)d;
	}
	return HOIST_OK;
}

/* Tensors the caller asked not to load stay in their files: on disk, unread and
 * budgeted nowhere (also where disk placement is forbidden: they are not placed). */
static enum hoist_status place_skipped(struct hoist_plan *p, const struct hoist__budgets *b)
{
	size_t d = find_dev(p, (struct hoist_device){HOIST_DEVICE_DISK, 0});
	if (d == SIZE_MAX) {
		if (p->ndev >= HOIST__ARRAY_SIZE(p->dev))
			return hoist__error(HOIST_ERR_INVALID, "plan: too many devices");
		add_disk(p, b);
		d = p->ndev - 1;
	}
	for (size_t t = 0; t < p->ntensors; t++)
		if (p->skipped[t])
			p->tdev[t] = (uint8_t)d;
	return HOIST_OK;
}

/* ---- offsets and the prediction ------------------------------------------------------- */

/* Drops the spill devices (cpu, disk) that a strategy listed but gave nothing and
 * that max_memory did not name: the plan lists the devices it uses or was given a
 * budget for, so a load opens nothing it does not need. */
static void drop_unused_spill(struct hoist_plan *p, const struct hoist__budgets *b)
{
	int map[HOIST_MAX_DEVICES + 2];
	size_t w = 0;
	for (size_t d = 0; d < p->ndev; d++) {
		const struct hoist__plan_dev *dv = &p->dev[d];
		bool named = dv->device.kind == HOIST_DEVICE_CPU ? b->cpu_set : b->disk_set;
		if (!hoist__is_gpu(dv->device.kind) && dv->tensors == 0 && !named) {
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
	uint64_t run[HOIST_MAX_DEVICES + 2] = {0};
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
			if (!p->skipped || !p->skipped[t])
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
	/* The stream as figures.c predicts it, from this machine's figures where hoist
	 * bench kept them: the bytes read (disk-placed tensors cost nothing), those of
	 * them landing in host arenas, and each GPU's bytes, copied in parallel. */
	struct hoist__load_shape s;
	memset(&s, 0, sizeof s);
	if (hoist_checkpoint_shard_count(p->ckpt) > 0)
		s.path = hoist_checkpoint_shard(p->ckpt, 0)->path;
	for (size_t t = 0; t < p->ntensors; t++) {
		const struct hoist__plan_dev *d = &p->dev[p->tdev[t]];
		uint64_t nbytes = hoist_checkpoint_tensor(p->ckpt, t)->nbytes;
		if (d->device.kind == HOIST_DEVICE_DISK)
			continue;
		s.read_bytes += nbytes;
		if (d->device.kind == HOIST_DEVICE_CPU)
			s.host_bytes += nbytes;
	}
	for (size_t d = 0; d < p->ndev && s.ngpu < HOIST_MAX_DEVICES; d++)
		if (hoist__is_gpu(p->dev[d].device.kind)) {
			s.gpu[s.ngpu] = p->dev[d].device;
			s.gpu_bytes[s.ngpu++] = p->dev[d].bytes;
		}
	s.copy_bw = p->copy_bw;
	s.copy_known = p->copy_bw != HOIST__BW_COPY; /* a sim device's cap */
	struct hoist_prediction warm, cold;
	hoist__predict(&s, 0, &warm);
	hoist__predict(&s, 1, &cold);
	p->warm_s = warm.seconds;
	p->cold_s = cold.seconds;
}

/* What the accessors return: each device's figures, each tensor's placement. */
static enum hoist_status publish(struct hoist_plan *p)
{
	p->placements = hoist__calloc(p->ntensors ? p->ntensors : 1, sizeof *p->placements);
	if (!p->placements)
		return hoist__error(HOIST_ERR_NOMEM, "plan: out of memory for %zu tensors",
		                    p->ntensors);
	for (size_t d = 0; d < p->ndev; d++) {
		const struct hoist__plan_dev *dv = &p->dev[d];
		p->pub_dev[d] = (struct hoist_plan_device){dv->device, dv->budget, dv->bytes,
		                                           dv->tensors, dv->source};
	}
	for (size_t t = 0; t < p->ntensors; t++) {
		const struct hoist_tensor_info *ti = hoist_checkpoint_tensor(p->ckpt, t);
		p->placements[t] = (struct hoist_placement){
		        p->dev[p->tdev[t]].device, p->toff[t],
		        hoist_dtype_loaded(ti->dtype, p->dtype),
		        hoist__loaded_nbytes(ti->dtype, ti->numel, ti->nbytes, p->dtype)};
	}
	return HOIST_OK;
}

/* Whether a device_map that names no strategy is a file: one that exists, or one
 * written as a path (a '/', or a name ending in ".json"). */
static bool looks_like_a_file(const char *dm)
{
	size_t n = strlen(dm);
	return access(dm, F_OK) == 0 || strchr(dm, '/') ||
	       (n > 5 && strcmp(dm + n - 5, ".json") == 0);
}

/* ---- hoist_plan_create ------------------------------------------------------------------ */

static enum hoist_status single_target(struct hoist_plan *p, struct hoist__machine *m,
                                       const struct hoist__budgets *b, struct hoist_device target,
                                       const struct hoist_options *opt)
{
	enum hoist_status st = HOIST_OK;
	struct hoist__budget bg;
	if (hoist__is_gpu(target.kind)) {
		st = hoist__budget_gpu(m, b, target.index, &bg);
	} else if (target.kind == HOIST_DEVICE_CPU) {
		st = hoist__budget_cpu(m, b, &bg);
	} else {
		if (opt->disk == HOIST_DISK_FORBIDDEN)
			return hoist__error(
			        HOIST_ERR_INVALID,
			        "device \"disk\" asked for, but disk placement is forbidden");
		hoist__budget_disk(b, &bg);
	}
	if (st != HOIST_OK)
		return st;
	struct hoist__plan_dev *d = add_dev(p, &bg);
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
		                    dev_name(d, name, sizeof name),
		                    hoist__plan_bytes(need, b1, sizeof b1),
		                    hoist__plan_bytes(d->budget, b2, sizeof b2), d->source,
		                    hoist__plan_bytes(need - d->budget, b3, sizeof b3));
	}
	return HOIST_OK;
}

/* GPUs, cpu and disk for a strategy, in the fixed order. */
static enum hoist_status strategy_devices(struct hoist_plan *p, struct hoist__machine *m,
                                          const struct hoist__budgets *b,
                                          struct hoist_device target, bool target_set,
                                          const struct hoist_options *opt, size_t *ngpu)
{
	enum hoist_status st = HOIST_OK;
	bool want_gpus = !target_set || hoist__is_gpu(target.kind);
	*ngpu = 0;
	if (want_gpus) {
		if (target_set && target.index >= 0) {
			st = add_gpu(p, m, b, target.index);
		} else if (b->any_gpu) {
			/* A described machine: exactly the GPUs max_memory names. */
			for (int g = 0; g < HOIST_MAX_DEVICES && st == HOIST_OK; g++)
				if (b->gpu_set[g])
					st = add_gpu(p, m, b, g);
		} else if (hoist__machine_gpus(m) == HOIST_OK) {
			int ords[HOIST_MAX_DEVICES];
			size_t n = 0;
			for (size_t i = 0; i < m->ngpus; i++)
				if (m->gpus[i].device.index >= 0 &&
				    m->gpus[i].device.index < HOIST_MAX_DEVICES)
					ords[n++] = m->gpus[i].device.index;
			for (size_t i = 1; i < n; i++) /* few entries: insertion sort */
				for (size_t k = i; k > 0 && ords[k - 1] > ords[k]; k--) {
					int x = ords[k];
					ords[k] = ords[k - 1];
					ords[k - 1] = x;
				}
			for (size_t i = 0; i < n && st == HOIST_OK; i++)
				if (i == 0 || ords[i] != ords[i - 1])
					st = add_gpu(p, m, b, ords[i]);
		} else if (target_set) {
			/* A GPU was asked for by name: no quiet fallback. */
			return hoist__error(m->gpu_status, "%s: %s",
			                    m->gpu_kind == HOIST_DEVICE_SIM ? "sim" : "cuda",
			                    m->gpu_error);
		} else if (m->gpu_status == HOIST_ERR_DEVICE) {
			/* A driver that cannot use its GPUs: a broken GPU machine, said loudly
			 * (a warning) before the load goes on to cpu. */
			p->notice_level = HOIST_LOG_WARNING;
			snprintf(p->notice, sizeof p->notice,
			         "GPUs present but unusable (%s): every tensor planned for cpu",
			         m->gpu_error);
		} else {
			const char *why = m->gpu_error;
			if (strncmp(why, "no CUDA GPU: ", 13) == 0)
				why += 13;
			p->notice_level = HOIST_LOG_NOTICE;
			snprintf(p->notice, sizeof p->notice,
			         "no GPU (%s): every tensor planned for cpu", why);
		}
		if (st != HOIST_OK)
			return st;
		*ngpu = p->ndev;
	}
	if (!(target_set && target.kind == HOIST_DEVICE_DISK)) {
		st = add_cpu(p, m, b);
		if (st != HOIST_OK)
			return st;
	}
	if (opt->disk != HOIST_DISK_FORBIDDEN)
		add_disk(p, b);
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
	struct hoist__machine *m = NULL;
	struct hoist__budgets b;
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
	if (opt->dtype != HOIST_DTYPE_NONE && !hoist__dtype_is_load_target(opt->dtype))
		return hoist__error(
		        HOIST_ERR_INVALID, "dtype %s: loads convert only to F16, BF16 or F32",
		        hoist_dtype_name(opt->dtype) ? hoist_dtype_name(opt->dtype) : "?");
	if (opt->disk != HOIST_DISK_ALLOWED && opt->disk != HOIST_DISK_FORBIDDEN)
		return hoist__error(HOIST_ERR_INVALID,
		                    "disk mode %d: expected HOIST_DISK_ALLOWED or "
		                    "HOIST_DISK_FORBIDDEN",
		                    (int)opt->disk);
	if (opt->device) {
		st = hoist_device_parse(opt->device, &target);
		if (st != HOIST_OK)
			return st;
		target_set = true;
	}
	st = hoist__budgets_parse(opt->max_memory, &b);
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
	p->copy_bw = HOIST__BW_COPY;
	hoist__machine_init(m, opt,
	                    target.kind == HOIST_DEVICE_SIM ? HOIST_DEVICE_SIM : HOIST_DEVICE_CUDA);
	if (b.named_kind >= 0 && target_set && hoist__is_gpu(target.kind) &&
	    b.named_kind != (int)target.kind) {
		st = hoist__error(HOIST_ERR_INVALID,
		                  "max_memory \"%s\" names %s devices, but the "
		                  "target is \"%s\"",
		                  opt->max_memory,
		                  b.named_kind == HOIST_DEVICE_SIM ? "sim" : "cuda", opt->device);
		goto out;
	}
	if (b.named_kind >= 0 && (!target_set || !hoist__is_gpu(target.kind)))
		m->gpu_kind = (enum hoist_device_kind)b.named_kind;
	if (m->gpu_kind == HOIST_DEVICE_SIM && opt->sim && opt->sim->bytes_per_sec > 0)
		p->copy_bw = opt->sim->bytes_per_sec;

	if (p->ntensors > 0 && p->ntensors >= SIZE_MAX / sizeof(struct sort_item)) {
		st = hoist__error(HOIST_ERR_NOMEM, "plan: %zu tensors", p->ntensors);
		goto out;
	}
	st = build_units(p);
	if (st == HOIST_OK && opt->request)
		st = hoist__plan_request_units(p, opt->request);
	else if (st == HOIST_OK && opt->module_order)
		st = hoist__plan_file_units(p, opt->module_order);
	else if (st == HOIST_OK)
		st = hoist__plan_default_order(p);
	if (st != HOIST_OK)
		goto out;
	if (opt->request)
		p->order_source = HOIST__ORDER_REQUEST;
	if (opt->offload_room == HOIST_ROOM_LARGEST_UNIT)
		for (size_t i = 0; i < p->nunits; i++)
			p->room = HOIST__MAX(p->room, p->units[i].bytes);
	else if (opt->offload_room != HOIST_ROOM_NONE) {
		st = hoist__error(HOIST_ERR_INVALID,
		                  "offload_room %d: expected HOIST_ROOM_NONE or "
		                  "HOIST_ROOM_LARGEST_UNIT",
		                  (int)opt->offload_room);
		goto out;
	}

	const char *dm = opt->device_map;
	if (!dm || !*dm) {
		bool single = target_set && target.index >= 0;
		p->strategy = single ? HOIST__STRATEGY_SINGLE : HOIST__STRATEGY_BALANCED;
		snprintf(p->strategy_name, sizeof p->strategy_name, "%s",
		         single ? "single" : "auto");
	} else if (strcmp(dm, "auto") == 0 || strcmp(dm, "balanced") == 0) {
		p->strategy = HOIST__STRATEGY_BALANCED;
		snprintf(p->strategy_name, sizeof p->strategy_name, "%s", dm);
	} else if (strcmp(dm, "sequential") == 0) {
		p->strategy = HOIST__STRATEGY_SEQUENTIAL;
		snprintf(p->strategy_name, sizeof p->strategy_name, "sequential");
	} else if (!looks_like_a_file(dm)) {
		/* "autoo": a strategy mistyped, not a file asked for */
		st = hoist__error(HOIST_ERR_INVALID,
		                  "device map \"%s\": not a strategy (auto, balanced, sequential) "
		                  "and no such file",
		                  dm);
		goto out;
	} else {
		p->strategy = HOIST__STRATEGY_MAP;
		snprintf(p->strategy_name, sizeof p->strategy_name, "map");
		if (!(p->map_path = hoist__strdup(dm))) {
			st = hoist__error(HOIST_ERR_NOMEM, "plan: out of memory");
			goto out;
		}
	}

	if (p->strategy == HOIST__STRATEGY_SINGLE) {
		st = single_target(p, m, &b, target, opt);
		if (st == HOIST_OK)
			st = resolve_fixed(p, m);
		if (st != HOIST_OK)
			goto out;
		for (size_t t = 0; t < p->ntensors; t++)
			p->tdev[t] = 0;
	} else if (p->strategy == HOIST__STRATEGY_MAP) {
		st = hoist__map_load(dm, m->gpu_kind, &map);
		if (st == HOIST_OK)
			st = place_by_map(p, map, m, &b, opt);
		if (st != HOIST_OK)
			goto out;
	} else {
		size_t ngpu = 0;
		st = strategy_devices(p, m, &b, target, target_set, opt, &ngpu);
		if (st == HOIST_OK)
			st = resolve_fixed(p, m);
		if (st == HOIST_OK)
			st = place_fixed(p);
		if (st != HOIST_OK)
			goto out;
		if (p->strategy == HOIST__STRATEGY_SEQUENTIAL || !place_balanced(p, ngpu))
			place_sequential(p);
		for (size_t i = 0; i < p->nunits; i++) {
			if (p->units[i].dev < 0) {
				st = no_space(p, opt);
				goto out;
			}
		}
		for (size_t i = 0; i < p->nunits; i++) {
			const struct hoist__unit *u = &p->units[i];
			for (size_t k = 0; k < u->count; k++)
				p->tdev[p->order[u->first + k]] = (uint8_t)u->dev;
		}
	}
	if (p->nskipped && (st = place_skipped(p, &b)) != HOIST_OK)
		goto out;
	assign_offsets(p);
	if (p->strategy == HOIST__STRATEGY_BALANCED || p->strategy == HOIST__STRATEGY_SEQUENTIAL)
		drop_unused_spill(p, &b);
	if (p->strategy == HOIST__STRATEGY_MAP) {
		for (size_t d = 0; d < p->ndev; d++) {
			const struct hoist__plan_dev *dv = &p->dev[d];
			if (dv->bytes <= dv->budget)
				continue;
			char name[32], b1[32], b2[32], b3[32];
			st = hoist__error(
			        HOIST_ERR_NO_SPACE,
			        "device map %s puts %s on %s, %s more than its budget of %s (%s)",
			        p->map_path, hoist__plan_bytes(dv->bytes, b1, sizeof b1),
			        dev_name(dv, name, sizeof name),
			        hoist__plan_bytes(dv->bytes - dv->budget, b2, sizeof b2),
			        hoist__plan_bytes(dv->budget, b3, sizeof b3), dv->source);
			goto out;
		}
	}
	predict(p);
	st = publish(p);
	if (st == HOIST_OK)
		st = hoist__plan_publish_units(p);
	if (st != HOIST_OK)
		goto out;
	if (p->notice[0])
		hoist__log(opt->log, opt->log_arg, p->notice_level, "%s", p->notice);
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

const struct hoist_plan_device *hoist_plan_device(const struct hoist_plan *plan, size_t i)
{
	return plan && i < plan->ndev ? &plan->pub_dev[i] : NULL;
}

size_t hoist_plan_tensor_count(const struct hoist_plan *plan)
{
	return plan ? plan->ntensors : 0;
}

const struct hoist_placement *hoist_plan_tensor(const struct hoist_plan *plan, size_t i)
{
	return plan && i < plan->ntensors ? &plan->placements[i] : NULL;
}

double hoist_plan_seconds(const struct hoist_plan *plan)
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

const struct hoist_checkpoint *hoist_plan_checkpoint(const struct hoist_plan *plan)
{
	return plan ? plan->ckpt : NULL;
}

enum hoist_dtype hoist_plan_dtype(const struct hoist_plan *plan)
{
	return plan ? plan->dtype : HOIST_DTYPE_NONE;
}

size_t hoist_plan_unit_count(const struct hoist_plan *plan)
{
	return plan ? plan->nunits : 0;
}

const struct hoist_plan_unit_info *hoist_plan_unit(const struct hoist_plan *plan, size_t i)
{
	return plan && i < plan->nunits ? &plan->unit_info[i] : NULL;
}

size_t hoist_plan_device_changes(const struct hoist_plan *plan)
{
	return plan ? plan->changes : 0;
}
