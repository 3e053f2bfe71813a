/* predict.c - predictions of a plan's load from this machine's figures
 * (hoist_plan_predict), and a finished load held against its prediction
 * (hoist_model_shortfall): which link fell short, and by how much. */
#include "budget.h"
#include "figures.h"
#include "plan.h"

#include <string.h>

/* A load must also run this many seconds over its prediction to be called slow. */
#define SLACK 0.1

/* figures.c's assumptions are the planner's. */
_Static_assert((long long)HOIST__BW_COLD == (long long)HOIST__ASSUMED_STORAGE &&
                       (long long)HOIST__BW_WARM == (long long)HOIST__ASSUMED_WARM &&
                       (long long)HOIST__BW_COPY == (long long)HOIST__ASSUMED_COPY,
               "figures.h and plan.h assume different bandwidths");

/* The load by plan as hoist__predict sees it (the planner's own predict() does the
 * same from inside plan.c). */
static void shape_of(const struct hoist_plan *p, struct hoist__load_shape *s)
{
	memset(s, 0, sizeof *s);
	if (hoist_checkpoint_shard_count(p->ckpt) > 0)
		s->path = hoist_checkpoint_shard(p->ckpt, 0)->path;
	for (size_t t = 0; t < p->ntensors; t++) {
		enum hoist_device_kind kind = p->dev[p->tdev[t]].device.kind;
		uint64_t nbytes = hoist_checkpoint_tensor(p->ckpt, t)->nbytes;
		if (kind == HOIST_DEVICE_DISK)
			continue;
		s->read_bytes += nbytes;
		if (kind == HOIST_DEVICE_CPU)
			s->host_bytes += nbytes;
	}
	for (size_t d = 0; d < p->ndev && s->ngpu < HOIST_MAX_DEVICES; d++)
		if (hoist__is_gpu(p->dev[d].device.kind)) {
			s->gpu[s->ngpu] = p->dev[d].device;
			s->gpu_bytes[s->ngpu++] = p->dev[d].bytes;
		}
	s->copy_bw = p->copy_bw;
	s->copy_known = p->copy_bw != HOIST__BW_COPY;
}

enum hoist_status hoist_plan_predict(const struct hoist_plan *plan, int cold,
                                     struct hoist_prediction *out)
{
	if (!plan || !out)
		return hoist__error(HOIST_ERR_INVALID, "hoist_plan_predict: NULL argument");
	struct hoist__load_shape s;
	shape_of(plan, &s);
	hoist__predict(&s, cold, out);
	return HOIST_OK;
}

/* The figure of a link as predictions use it: stored, or the assumption (*known
 * false). */
static double link_figure(const struct hoist_plan *plan, enum hoist_link link,
                          struct hoist_device dev, bool *known)
{
	struct hoist__figure f;
	const char *path = hoist_checkpoint_shard_count(plan->ckpt)
	                           ? hoist_checkpoint_shard(plan->ckpt, 0)->path
	                           : NULL;
	*known = false;
	if (dev.kind == HOIST_DEVICE_SIM) {
		*known = plan->copy_bw != HOIST__BW_COPY;
		return plan->copy_bw;
	}
	if (hoist__figure_stored(link, dev, link == HOIST_LINK_STORAGE ? hoist__fs_dev(path) : 0,
	                         &f)) {
		*known = true;
		return f.pub.bytes_per_second;
	}
	switch (link) {
	case HOIST_LINK_STORAGE: return HOIST__ASSUMED_STORAGE;
	case HOIST_LINK_PINNED_TO_DEVICE: return plan->copy_bw;
	default: return HOIST__ASSUMED_WARM;
	}
}

enum hoist_status hoist_model_shortfall(const struct hoist_model *model,
                                        const struct hoist_plan *plan, struct hoist_shortfall *out)
{
	if (!model || !plan || !out)
		return hoist__error(HOIST_ERR_INVALID, "hoist_model_shortfall: NULL argument");
	memset(out, 0, sizeof *out);
	const struct hoist_report *r = hoist_model_report(model);
	out->seconds = r->seconds[HOIST_PHASE_STREAM];
	out->cold = r->direct_io || (r->storage_read_bytes != UINT64_MAX &&
	                             r->storage_read_bytes * 2 >= r->read_bytes);
	struct hoist_prediction pred;
	hoist_plan_predict(plan, out->cold, &pred);
	out->predicted_seconds = pred.seconds;
	out->assumed = pred.assumed;
	out->bound = r->bound;
	if (r->read_bytes == 0 || out->seconds <= 0 || pred.seconds <= 0)
		return HOIST_OK;
	out->slow = out->seconds > 2 * pred.seconds && out->seconds - pred.seconds >= SLACK;

	/* The link the report found setting the pace, and the bytes that crossed it. */
	struct hoist__load_shape s;
	shape_of(plan, &s);
	uint64_t bytes = r->read_bytes;
	out->device = (struct hoist_device){HOIST_DEVICE_CPU, 0};
	switch (r->bound) {
	case HOIST_BOUND_STORAGE: out->link = HOIST_LINK_STORAGE; break;
	case HOIST_BOUND_HOST_MEMORY:
		/* readers copying out of the page cache: into arenas, or into staging */
		out->link = s.host_bytes * 2 >= s.read_bytes ? HOIST_LINK_HOST_MEMORY
		                                             : HOIST_LINK_PAGE_CACHE;
		bytes = out->link == HOIST_LINK_HOST_MEMORY ? s.host_bytes
		                                            : s.read_bytes - s.host_bytes;
		break;
	case HOIST_BOUND_DEVICE_COPY:
	case HOIST_BOUND_STAGING:
		/* the busiest GPU's copies; a ring too small to cover the hand-off shows
		 * as those copies running short of the figure too */
		out->link = HOIST_LINK_PINNED_TO_DEVICE;
		bytes = 0;
		for (size_t g = 0; g < s.ngpu; g++)
			if (s.gpu_bytes[g] > bytes) {
				bytes = s.gpu_bytes[g];
				out->device = s.gpu[g];
			}
		if (bytes == 0) {
			out->link = HOIST_LINK_PAGE_CACHE;
			bytes = r->read_bytes;
			out->device = (struct hoist_device){HOIST_DEVICE_CPU, 0};
		}
		break;
	case HOIST_BOUND_NONE: out->link = HOIST_LINK_NONE; return HOIST_OK;
	}
	bool known;
	out->bytes_per_second = (double)bytes / out->seconds;
	out->predicted_bytes_per_second = link_figure(plan, out->link, out->device, &known);
	out->figure_known = known;
	return HOIST_OK;
}
