/* warmup.c - hoist_warmup_start: the first steps of a load to GPUs, on a thread of their
 * own. On an H200 machine creating a GPU's primary context takes 0.2-0.5 s and pinning
 * the 256 MiB ring tens of milliseconds, while opening and planning the 7B checkpoint
 * take about a millisecond: started as the command starts, they overlap the open, the
 * plan and the driver's own initialisation instead of following them. */
#include "warmup.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

struct hoist_warmup {
	struct hoist_options opt; /* device points to device below */
	char device[32];
	bool all; /* every GPU: no device, or "cuda" */
	int ordinal;
	pthread_t thread;
	bool joined;
	struct hoist__dev *devs[HOIST_MAX_DEVICES]; /* by ordinal; NULL once taken */
	void *ring;
	size_t ring_size;
	const char *how;
};

static void *warmup_main(void *arg)
{
	struct hoist_warmup *w = arg;
	struct hoist_device_info info[HOIST_MAX_DEVICES];
	size_t n = 0;
	if (w->all) {
		/* the count only: listing makes no context */
		if (hoist_device_list(HOIST_DEVICE_CUDA, &w->opt, info, HOIST_MAX_DEVICES, &n) !=
		    HOIST_OK)
			return NULL;
	}
	bool any = false;
	for (int i = 0; i < HOIST_MAX_DEVICES; i++) {
		if (w->all ? (size_t)i >= n : i != w->ordinal)
			continue;
		struct hoist_device d = {HOIST_DEVICE_CUDA, i};
		if (hoist__device_open(d, &w->opt, &w->devs[i]) == HOIST_OK)
			any = true;
	}
	const struct hoist__backend *b = hoist__backend_for(HOIST_DEVICE_CUDA);
	size_t size =
	        hoist__stream_ring_bytes(w->opt.threads, w->opt.chunk_bytes, w->opt.staging_bytes);
	if (any && size && b->pin_alloc(size, &w->ring, &w->how) == HOIST_OK)
		w->ring_size = size;
	else
		w->ring = NULL;
	return NULL;
}

enum hoist_status hoist_warmup_start(const struct hoist_options *opt, struct hoist_warmup **out)
{
	if (!out)
		return hoist__error(HOIST_ERR_INVALID, "hoist_warmup_start: out is NULL");
	*out = NULL;
	struct hoist_warmup *w = hoist__calloc(1, sizeof *w);
	if (!w)
		return hoist__error(HOIST_ERR_NOMEM, "out of memory starting the warm-up");
	if (opt)
		w->opt = *opt;
	w->opt.device = NULL;
	w->opt.device_map = w->opt.max_memory = NULL;
	w->opt.progress = NULL;
	w->opt.log = NULL;
	w->opt.warmup = NULL;
	w->opt.sim = NULL;
	w->ordinal = -1;
	struct hoist_device d = {HOIST_DEVICE_CUDA, -1};
	if (opt && opt->device && hoist_device_parse(opt->device, &d) != HOIST_OK)
		d.kind = HOIST_DEVICE_CPU; /* the plan will say what is wrong with it */
	if (d.kind == HOIST_DEVICE_CUDA) {
		w->all = d.index < 0;
		w->ordinal = d.index;
		if (opt && opt->device) {
			snprintf(w->device, sizeof w->device, "%s", opt->device);
			w->opt.device = w->device;
		}
	}
	if (d.kind != HOIST_DEVICE_CUDA) {
		/* nothing to start for cpu, sim or disk */
		w->joined = true;
		*out = w;
		return HOIST_OK;
	}
	int rc = pthread_create(&w->thread, NULL, warmup_main, w);
	if (rc != 0) {
		hoist__free(w);
		return hoist__error(HOIST_ERR_NOMEM, "cannot start the warm-up thread: %s",
		                    strerror(rc));
	}
	*out = w;
	return HOIST_OK;
}

static void wait_for(struct hoist_warmup *w)
{
	if (!w->joined) {
		pthread_join(w->thread, NULL);
		w->joined = true;
	}
}

struct hoist__dev *hoist__warmup_take(struct hoist_warmup *w, struct hoist_device device)
{
	if (!w || device.kind != HOIST_DEVICE_CUDA || device.index < 0 ||
	    device.index >= HOIST_MAX_DEVICES)
		return NULL;
	wait_for(w);
	struct hoist__dev *d = w->devs[device.index];
	w->devs[device.index] = NULL;
	return d;
}

void hoist__warmup_ring(struct hoist_warmup *w, void **ring, size_t *size, const char **how)
{
	*ring = NULL;
	*size = 0;
	*how = NULL;
	if (!w)
		return;
	wait_for(w);
	*ring = w->ring;
	*size = w->ring_size;
	*how = w->how;
}

void hoist_warmup_free(struct hoist_warmup *w)
{
	if (!w)
		return;
	wait_for(w);
	for (int i = 0; i < HOIST_MAX_DEVICES; i++)
		if (w->devs[i])
			w->devs[i]->ops->close(w->devs[i]);
	if (w->ring)
		hoist__backend_for(HOIST_DEVICE_CUDA)->pin_free(w->ring);
	hoist__free(w);
}
