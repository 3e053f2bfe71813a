/* budget.c - how many bytes each device may take: max_memory as the user gives it, or
 * what the machine has free now less headroom. */
#include "budget.h"
#include "names.h"

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

bool hoist__is_gpu(enum hoist_device_kind kind)
{
	return kind == HOIST_DEVICE_CUDA || kind == HOIST_DEVICE_SIM;
}

void hoist__machine_init(struct hoist__machine *m, const struct hoist_options *opt,
                         enum hoist_device_kind gpu_kind)
{
	memset(m, 0, sizeof *m);
	m->opt = opt;
	m->gpu_kind = gpu_kind;
}

enum hoist_status hoist__budgets_parse(const char *text, struct hoist__budgets *b)
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
		if (hoist__name_digits(key, kn)) {
			d.kind = HOIST_DEVICE_CUDA; /* placeholder: bare ordinals take the target's
			                               kind */
			d.index = kn > 4 ? HOIST_MAX_DEVICES : atoi(key);
		} else if (hoist_device_parse(key, &d) != HOIST_OK ||
		           (hoist__is_gpu(d.kind) && d.index < 0)) {
			return hoist__error(
			        HOIST_ERR_INVALID,
			        "max_memory \"%s\": unknown device \"%s\" (expected a GPU "
			        "ordinal, cuda:N, sim:N, cpu or disk)",
			        text, key);
		} else if (hoist__is_gpu(d.kind)) {
			if (b->named_kind >= 0 && b->named_kind != (int)d.kind)
				return hoist__error(HOIST_ERR_INVALID,
				                    "max_memory \"%s\": mixes cuda and sim devices",
				                    text);
			b->named_kind = (int)d.kind;
		}
		bool dup = false;
		if (hoist__is_gpu(d.kind)) {
			if (d.index >= HOIST_MAX_DEVICES)
				return hoist__error(
				        HOIST_ERR_INVALID,
				        "max_memory \"%s\": GPU ordinal \"%s\" out of range "
				        "0..%d",
				        text, key, HOIST_MAX_DEVICES - 1);
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

enum hoist_status hoist__machine_gpus(struct hoist__machine *m)
{
	if (!m->gpus_asked) {
		m->gpus_asked = true;
		m->gpu_status = hoist_device_list(m->gpu_kind, m->opt, m->gpus,
		                                  HOIST__ARRAY_SIZE(m->gpus), &m->ngpus);
		if (m->gpu_status == HOIST_OK && m->ngpus == 0)
			m->gpu_status =
			        hoist__error(HOIST_ERR_NO_DEVICE, "no CUDA GPU: none listed");
		if (m->gpu_status != HOIST_OK) {
			snprintf(m->gpu_error, sizeof m->gpu_error, "%s", hoist_errmsg());
			m->ngpus = 0;
		}
	}
	if (m->gpu_status != HOIST_OK)
		return hoist__error(m->gpu_status, "%s", m->gpu_error);
	return HOIST_OK;
}

static uint64_t gpu_headroom(const struct hoist_device_info *g)
{
	return HOIST__MAX(GPU_HEADROOM_MIN, g->total_bytes / 100 * GPU_HEADROOM_PERCENT);
}

/* Fills d (a GPU of the machine's kind) with its budget: --max-memory, else what is
 * free now less headroom (sim: its capacity). */
enum hoist_status hoist__budget_gpu(struct hoist__machine *m, const struct hoist__budgets *b,
                                    int ordinal, struct hoist__budget *d)
{
	char name[32];
	d->device.kind = m->gpu_kind;
	d->device.index = ordinal;
	if (b->gpu_set[ordinal]) {
		d->budget = b->gpu[ordinal];
		snprintf(d->source, sizeof d->source, "max_memory");
		return HOIST_OK;
	}
	enum hoist_status st = hoist__machine_gpus(m);
	if (st != HOIST_OK) {
		hoist__error_prefix("%s", hoist_device_format(d->device, name, sizeof name));
		return st;
	}
	for (size_t i = 0; i < m->ngpus; i++) {
		const struct hoist_device_info *g = &m->gpus[i];
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

enum hoist_status hoist__budget_cpu(struct hoist__machine *m, const struct hoist__budgets *b,
                                    struct hoist__budget *d)
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
	struct hoist_device_info info;
	size_t n = 0;
	enum hoist_status st = hoist_device_list(HOIST_DEVICE_CPU, m->opt, &info, 1, &n);
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

void hoist__budget_disk(const struct hoist__budgets *b, struct hoist__budget *d)
{
	d->device.kind = HOIST_DEVICE_DISK;
	d->device.index = 0;
	d->budget = b->disk_set ? b->disk : UINT64_MAX;
	snprintf(d->source, sizeof d->source, b->disk_set ? "max_memory" : "unlimited");
}