/* fakecuda_stream.c - streams, events, host functions and the copy engines.
 *
 * Work queued on a stream runs in order; streams run concurrently. Each device has
 * FAKECUDA_COPY_ENGINES engine threads that take the oldest ready operation of any of
 * its streams (round robin over streams), and one thread for host functions. A copy
 * takes its time (FAKECUDA_COPY_LATENCY_US, or its bytes over FAKECUDA_BANDWIDTH,
 * which its direction's link serves one copy at a time) and moves its bytes at the END
 * of it: a host source is read when the copy completes, not when it is queued, so a
 * caller that reuses a staging buffer too early lands the new bytes, as on a GPU.
 *
 * Markers (event records, stream waits) take no engine: they complete as soon as what
 * they wait for has. The legacy NULL stream orders itself against every blocking
 * stream of its context (the driver's default-stream rule); non-blocking streams do
 * not. Nothing here spins: waiting is pthread_cond_wait on fc.done, engines wait on
 * fc.work, and a copy's duration is a clock_nanosleep. */
#include "fakecuda_internal.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SAME_TYPE(fn, type)                                                                        \
	_Static_assert(__builtin_types_compatible_p(__typeof__(&fn), type), #fn " type")

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void sleep_until(uint64_t ns)
{
	struct timespec ts = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

/* ---- streams and the busy list ---- */

struct fc_stream *fc_stream_new(struct fc_context *ctx, unsigned flags, bool is_null)
{
	struct fc_stream *s = calloc(1, sizeof *s);
	if (!s)
		return NULL;
	if (!is_null && fc_object_add(&s->obj, FC_STREAM)) {
		free(s);
		return NULL;
	}
	s->ctx = ctx;
	s->flags = flags;
	s->is_null = is_null;
	s->ctx_next = ctx->streams;
	ctx->streams = s;
	if (!is_null)
		fc.c.streams_now++;
	return s;
}

static void busy_remove(struct fc_stream *s)
{
	if (s->busy_prev)
		s->busy_prev->busy_next = s->busy_next;
	else
		fc.busy = s->busy_next;
	if (s->busy_next)
		s->busy_next->busy_prev = s->busy_prev;
	s->busy_next = s->busy_prev = NULL;
}

static void busy_append(struct fc_stream *s)
{
	struct fc_stream **p = &fc.busy, *prev = NULL;
	while (*p) {
		prev = *p;
		p = &(*p)->busy_next;
	}
	*p = s;
	s->busy_prev = prev;
	s->busy_next = NULL;
}

/* Unlinks a drained stream from its context and frees it. */
static void stream_free(struct fc_stream *s)
{
	for (struct fc_stream **p = &s->ctx->streams; *p; p = &(*p)->ctx_next)
		if (*p == s) {
			*p = s->ctx_next;
			break;
		}
	free(s);
}

/* ---- operations ---- */

static struct fc_op *op_new(enum fc_op_kind kind, const char *call)
{
	struct fc_op *op = calloc(1, sizeof *op);
	if (op) {
		op->kind = kind;
		op->call = call;
		op->refs = 1; /* the queue's */
	}
	return op;
}

void fc_op_unref(struct fc_op *op)
{
	if (--op->refs > 0)
		return;
	for (int i = 0; i < op->ndeps; i++)
		fc_op_unref(op->deps[i]);
	free(op->deps);
	free(op);
}

static int op_add_dep(struct fc_op *op, struct fc_op *dep)
{
	struct fc_op **p = realloc(op->deps, ((size_t)op->ndeps + 1) * sizeof *p);
	if (!p)
		return -1;
	op->deps = p;
	op->deps[op->ndeps++] = dep;
	dep->refs++;
	return 0;
}

static bool op_ready(const struct fc_op *op)
{
	if (op->taken || op->stream->head != op)
		return false;
	for (int i = 0; i < op->ndeps; i++)
		if (!op->deps[i]->done)
			return false;
	return true;
}

static void op_finish(struct fc_op *op)
{
	struct fc_stream *s = op->stream;
	op->done = true;
	s->head = op->next;
	if (!s->head) {
		s->tail = NULL;
		busy_remove(s);
	}
	op->next = NULL;
	op->stream = NULL;
	op->ctx = NULL;
	for (int i = 0; i < op->ndeps; i++)
		fc_op_unref(op->deps[i]);
	free(op->deps);
	op->deps = NULL;
	op->ndeps = 0;
	fc_op_unref(op);
	if (s->destroyed && !s->head)
		stream_free(s);
}

/* Completes what needs no engine (ready markers; any ready work of a faulted context,
 * which the device no longer runs), then wakes engines and waiters. */
static void progress(void)
{
	for (;;) {
		struct fc_op *found = NULL;
		for (struct fc_stream *s = fc.busy; s && !found; s = s->busy_next)
			if (op_ready(s->head) &&
			    (s->head->kind == FC_OP_MARKER || s->head->ctx->sticky != HCU_SUCCESS))
				found = s->head;
		if (!found)
			break;
		op_finish(found);
	}
	pthread_cond_broadcast(&fc.work);
	pthread_cond_broadcast(&fc.done);
}

/* Queues op on s behind its work, and behind the default-stream rule's work: an
 * operation on the NULL stream waits for every blocking stream of its context, one on
 * a blocking stream for the NULL stream. On failure op is freed. */
static hcu_result submit(struct fc_stream *s, struct fc_op *op)
{
	struct fc_context *ctx = s->ctx;
	int rc = 0;
	if (s->is_null) {
		for (struct fc_stream *t = ctx->streams; t && rc == 0; t = t->ctx_next)
			if (t != s && !(t->flags & HCU_STREAM_NON_BLOCKING) && t->tail)
				rc = op_add_dep(op, t->tail);
	} else if (!(s->flags & HCU_STREAM_NON_BLOCKING) && ctx->null_stream->tail) {
		rc = op_add_dep(op, ctx->null_stream->tail);
	}
	if (rc) {
		fc_op_unref(op);
		return HCU_ERROR_OUT_OF_MEMORY;
	}
	op->stream = s;
	op->ctx = ctx;
	if (s->tail) {
		s->tail->next = op;
	} else {
		s->head = op;
		busy_append(s);
	}
	s->tail = op;
	progress();
	return HCU_SUCCESS;
}

void fc_wait_op(struct fc_op *op)
{
	while (!op->done)
		pthread_cond_wait(&fc.done, &fc.lock);
}

/* Waits for every operation in ops[0..n) (the caller holds a reference on each, which
 * this drops). */
static void wait_all(struct fc_op **ops, int n)
{
	for (int i = 0; i < n; i++) {
		fc_wait_op(ops[i]);
		fc_op_unref(ops[i]);
	}
}

/* The last operation of each stream of ctx that `which` selects, referenced, into a
 * new array (*n of them); NULL with *n = 0 if none (or no memory: then it waited until
 * those streams were idle instead). */
static struct fc_op **tails(struct fc_context *ctx, bool (*which)(const struct fc_stream *), int *n)
{
	int count = 0;
	for (struct fc_stream *t = ctx->streams; t; t = t->ctx_next)
		count += which(t) && t->tail;
	*n = 0;
	if (count == 0)
		return NULL;
	struct fc_op **ops = malloc((size_t)count * sizeof *ops);
	if (!ops) {
		/* Streams may go while this waits: look them up afresh each time. */
		for (;;) {
			bool busy = false;
			for (struct fc_stream *t = ctx->streams; t && !busy; t = t->ctx_next)
				busy = which(t) && t->tail;
			if (!busy)
				return NULL;
			pthread_cond_wait(&fc.done, &fc.lock);
		}
	}
	for (struct fc_stream *t = ctx->streams; t; t = t->ctx_next)
		if (which(t) && t->tail) {
			ops[(*n)++] = t->tail;
			t->tail->refs++;
		}
	return ops;
}

static bool any_stream(const struct fc_stream *s)
{
	(void)s;
	return true;
}

/* What synchronizing the legacy NULL stream waits for: itself and the blocking
 * streams. */
static bool legacy_stream_scope(const struct fc_stream *s)
{
	return s->is_null || !(s->flags & HCU_STREAM_NON_BLOCKING);
}

static void wait_streams(struct fc_context *ctx, bool (*which)(const struct fc_stream *))
{
	int n;
	struct fc_op **ops = tails(ctx, which, &n);
	wait_all(ops, n);
	free(ops);
}

void fc_streams_drain(struct fc_context *ctx)
{
	for (;;) {
		bool busy = false;
		for (struct fc_stream *t = ctx->streams; t && !busy; t = t->ctx_next)
			busy = t->head != NULL;
		if (!busy)
			return;
		pthread_cond_wait(&fc.done, &fc.lock);
	}
}

/* After fc_streams_drain(): frees every stream and event of ctx. */
void fc_streams_release_context(struct fc_context *ctx)
{
	for (size_t i = fc.nobjects; i-- > 0;) {
		struct fc_object *obj = fc.objects[i];
		if (obj->kind == FC_EVENT && ((struct fc_event *)obj)->ctx == ctx) {
			struct fc_event *ev = (struct fc_event *)obj;
			fc_object_remove(obj);
			if (ev->recorded)
				fc_op_unref(ev->recorded);
			free(ev);
			fc.c.events_now--;
		}
	}
	while (ctx->streams) {
		struct fc_stream *s = ctx->streams;
		if (!s->is_null && !s->destroyed) {
			fc_object_remove(&s->obj);
			fc.c.streams_now--;
		}
		stream_free(s);
	}
}

static bool ranges_overlap(uint64_t a, uint64_t an, uint64_t b, uint64_t bn)
{
	return a < b + bn && b < a + an;
}

static bool touches_device(const struct fc_op *op)
{
	return op->kind == FC_OP_H2D || op->kind == FC_OP_D2H || op->kind == FC_OP_MEMSET;
}

/* Whether an unfinished operation uses device bytes [base, base + size) or host bytes
 * [base, base + size); *first is one that does. */
bool fc_ops_touch_device(uint64_t base, uint64_t size, struct fc_op **first)
{
	for (struct fc_stream *s = fc.busy; s; s = s->busy_next)
		for (struct fc_op *op = s->head; op; op = op->next)
			if (touches_device(op) && ranges_overlap(op->dptr, op->n, base, size)) {
				*first = op;
				return true;
			}
	return false;
}

bool fc_ops_touch_host(uintptr_t base, size_t size, struct fc_op **first)
{
	for (struct fc_stream *s = fc.busy; s; s = s->busy_next)
		for (struct fc_op *op = s->head; op; op = op->next)
			if ((op->kind == FC_OP_H2D || op->kind == FC_OP_D2H) &&
			    ranges_overlap((uintptr_t)op->host, op->n, base, size)) {
				*first = op;
				return true;
			}
	return false;
}

/* ---- engines ---- */

static bool engine_takes(const struct fc_op *op, bool host_thread)
{
	return host_thread ? op->kind == FC_OP_HOST_FN : touches_device(op);
}

/* The next ready operation of device d for this kind of thread; its stream goes to
 * the back of the busy list, so streams take turns. */
static struct fc_op *pick(const struct fc_device *d, bool host_thread)
{
	for (struct fc_stream *s = fc.busy; s; s = s->busy_next) {
		struct fc_op *op = s->head;
		if (op->ctx->device == d->index && engine_takes(op, host_thread) &&
		    op->ctx->sticky == HCU_SUCCESS && op_ready(op)) {
			busy_remove(s);
			busy_append(s);
			return op;
		}
	}
	return NULL;
}

static bool writes_device(const struct fc_op *op)
{
	return op->kind != FC_OP_D2H;
}

/* Two copies that nothing orders, running at once on overlapping device bytes with one
 * of them writing: the outcome depends on timing on a GPU too. */
static void check_race(const struct fc_device *d, const struct fc_op *op)
{
	for (int i = 0; i < FC_MAX_ENGINES; i++) {
		const struct fc_op *e = d->executing[i];
		if (e && e != op && (writes_device(op) || writes_device(e)) &&
		    ranges_overlap(op->dptr, op->n, e->dptr, e->n))
			fc_violation(op->call, HCU_SUCCESS,
			             "device bytes [0x%llx, +%zu) are used at the same time by a "
			             "%s on stream %p and a %s on stream %p with nothing ordering "
			             "them (an event and cuStreamWaitEvent, or one stream)",
			             (unsigned long long)op->dptr, op->n, op->call,
			             op->stream->is_null ? NULL : fc_handle(&op->stream->obj),
			             e->call,
			             e->stream->is_null ? NULL : fc_handle(&e->stream->obj));
	}
}

/* Runs a device operation; called and returns with fc.lock held, which it lets go
 * while the operation takes its time and moves its bytes. */
static void run_device_op(struct fc_device *d, struct fc_op *op)
{
	int slot = 0, running = 1;
	while (d->executing[slot])
		slot++;
	d->executing[slot] = op;
	for (int i = 0; i < FC_MAX_ENGINES; i++)
		running += d->executing[i] && i != slot;
	if ((unsigned long long)running > d->c.copies_in_flight_max)
		d->c.copies_in_flight_max = (unsigned long long)running;
	check_race(d, op);

	uint64_t start = now_ns(), end = start + fc.cfg.copy_latency_ns;
	if (op->kind != FC_OP_MEMSET && d->bandwidth) {
		int dir = op->kind == FC_OP_D2H;
		uint64_t from = d->link_free_ns[dir] > start ? d->link_free_ns[dir] : start;
		uint64_t wire = (uint64_t)((double)op->n * 1e9 / (double)d->bandwidth);
		d->link_free_ns[dir] = from + wire;
		if (from + wire > end)
			end = from + wire;
	}
	bool fail = op->fail;
	bool move = fc.cfg.move_bytes;
	pthread_mutex_unlock(&fc.lock);

	sleep_until(end);
	int io = 0;
	if (!fail && move && op->kind == FC_OP_H2D)
		io = fc_dev_write(d, op->dptr, op->host, op->n);
	else if (!fail && move && op->kind == FC_OP_D2H)
		io = fc_dev_read(d, op->dptr, op->host, op->n);
	else if (!fail && move)
		io = fc_dev_fill(d, op->dptr, op->value, op->n);
	int err = io ? errno : 0;

	pthread_mutex_lock(&fc.lock);
	d->executing[slot] = NULL;
	if (fail) {
		if (op->ctx->sticky == HCU_SUCCESS)
			op->ctx->sticky = fc.cfg.fail_copy_exec_error;
	} else if (io) {
		fc_note("device %d: %s: moving the fake's device bytes failed: %s", d->index,
		        op->call, strerror(err));
		if (op->ctx->sticky == HCU_SUCCESS)
			op->ctx->sticky = HCU_ERROR_UNKNOWN;
	} else if (op->kind == FC_OP_H2D) {
		d->c.bytes_to_device += op->n;
	} else if (op->kind == FC_OP_D2H) {
		d->c.bytes_from_device += op->n;
	}
}

static void *engine_main(void *arg)
{
	struct fc_device *d = arg;
	pthread_mutex_lock(&fc.lock);
	for (;;) {
		struct fc_op *op = pick(d, false);
		if (!op) {
			pthread_cond_wait(&fc.work, &fc.lock);
			continue;
		}
		op->taken = true;
		run_device_op(d, op);
		op_finish(op);
		progress();
	}
	return NULL;
}

/* Host functions run here, after the work before them, with no lock held; any CUDA
 * call they make is a violation (fc_in_host_fn). */
static void *host_main(void *arg)
{
	struct fc_device *d = arg;
	pthread_mutex_lock(&fc.lock);
	for (;;) {
		struct fc_op *op = pick(d, true);
		if (!op) {
			pthread_cond_wait(&fc.work, &fc.lock);
			continue;
		}
		op->taken = true;
		pthread_mutex_unlock(&fc.lock);
		fc_in_host_fn = true;
		op->fn(op->user);
		fc_in_host_fn = false;
		pthread_mutex_lock(&fc.lock);
		op_finish(op);
		progress();
	}
	return NULL;
}

/* The device's threads live as long as the process (the library is linked with
 * -z nodelete, so dlclose never unmaps their code); they block every signal, which
 * belong to the program's threads. */
int fc_engines_start(struct fc_device *d)
{
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int rc = 0;
	for (int i = 0; i <= fc.cfg.engines && rc == 0; i++) {
		rc = pthread_create(&d->threads[i], NULL,
		                    i < fc.cfg.engines ? engine_main : host_main, d);
		if (rc == 0) {
			pthread_detach(d->threads[i]);
			d->nthreads++;
		}
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return rc ? -1 : 0;
}

/* ---- the stream argument ---- */

/* The stream a call names: NULL and CU_STREAM_LEGACY are the current context's NULL
 * stream; any other must be a live stream of the current context. */
static hcu_result stream_arg(const char *call, struct fc_context *ctx, hcu_stream h,
                             struct fc_stream **out)
{
	if (!h || h == HCU_STREAM_LEGACY) {
		*out = ctx->null_stream;
		return HCU_SUCCESS;
	}
	if (h == HCU_STREAM_PER_THREAD) {
		fc_note("%s: the per-thread default stream is not modelled", call);
		return HCU_ERROR_NOT_SUPPORTED;
	}
	struct fc_object *obj = fc_lookup(h, FC_STREAM, call, "stream");
	if (!obj)
		return HCU_ERROR_INVALID_HANDLE;
	struct fc_stream *s = (struct fc_stream *)obj;
	if (s->ctx != ctx) {
		fc_violation(call, HCU_ERROR_INVALID_HANDLE,
		             "stream %p belongs to context %p (device %d), but context %p (device "
		             "%d) is current",
		             (void *)h, fc_handle(&s->ctx->obj), s->ctx->device,
		             fc_handle(&ctx->obj), ctx->device);
		return HCU_ERROR_INVALID_HANDLE;
	}
	*out = s;
	return HCU_SUCCESS;
}

/* ---- copies ---- */

/* Every copy: checks, then queues it on the stream (the NULL stream for a synchronous
 * one). A synchronous copy, and an asynchronous one whose host side is not page-locked
 * for the stream's context (which the driver stages synchronously), return when it is
 * done. */
hcu_result fc_copy(const char *call, enum fc_op_kind kind, uint64_t dptr, void *host, size_t n,
                   hcu_stream stream, bool async)
{
	struct fc_context *ctx;
	hcu_result r = fc_enter_ctx(call, &ctx);
	if (r != HCU_SUCCESS)
		return r;
	struct fc_stream *s = ctx->null_stream;
	if (async) {
		r = stream_arg(call, ctx, stream, &s);
		if (r != HCU_SUCCESS)
			return fc_leave(r);
	}
	if (n == 0)
		return fc_leave(HCU_SUCCESS);
	if (!host) {
		fc_violation(call, HCU_ERROR_INVALID_VALUE, "the host pointer is NULL");
		return fc_leave(HCU_ERROR_INVALID_VALUE);
	}
	r = fc_check_device_range(call, ctx, dptr, n);
	if (r != HCU_SUCCESS)
		return fc_leave(r);
	bool pinned = fc_host_pinned(ctx, host, n);
	if (async) {
		if (++fc.copy_submits == fc.cfg.fail_copy_submit)
			return fc_leave((hcu_result)fc.cfg.fail_copy_submit_error);
		fc.c.async_copies++;
		fc.c.pageable_async_copies += !pinned;
	} else {
		fc.c.sync_copies++;
	}
	struct fc_op *op = op_new(kind, call);
	if (!op)
		return fc_leave(HCU_ERROR_OUT_OF_MEMORY);
	op->dptr = dptr;
	op->host = host;
	op->n = n;
	if (async && ++fc.copy_execs == fc.cfg.fail_copy_exec)
		op->fail = true;
	bool wait = !async || !pinned;
	if (wait)
		op->refs++; /* ours, for the wait (submit drops the queue's if it fails) */
	r = submit(s, op);
	if (wait) {
		if (r == HCU_SUCCESS) {
			fc_wait_op(op);
			r = ctx->sticky;
		}
		fc_op_unref(op);
	}
	return fc_leave(r);
}

hcu_result cuMemcpyHtoD_v2(hcu_deviceptr dst, const void *src, size_t bytes)
{
	return fc_copy("cuMemcpyHtoD_v2", FC_OP_H2D, dst, (void *)(uintptr_t)src, bytes, NULL,
	               false);
}

hcu_result cuMemcpyDtoH_v2(void *dst, hcu_deviceptr src, size_t bytes)
{
	return fc_copy("cuMemcpyDtoH_v2", FC_OP_D2H, src, dst, bytes, NULL, false);
}

hcu_result cuMemcpyHtoDAsync_v2(hcu_deviceptr dst, const void *src, size_t bytes, hcu_stream stream)
{
	return fc_copy("cuMemcpyHtoDAsync_v2", FC_OP_H2D, dst, (void *)(uintptr_t)src, bytes,
	               stream, true);
}

hcu_result cuMemcpyDtoHAsync_v2(void *dst, hcu_deviceptr src, size_t bytes, hcu_stream stream)
{
	return fc_copy("cuMemcpyDtoHAsync_v2", FC_OP_D2H, src, dst, bytes, stream, true);
}

/* On the NULL stream and, like the driver's memset of device memory, asynchronous to
 * the host: it returns before the bytes are set. */
hcu_result cuMemsetD8_v2(hcu_deviceptr dst, unsigned char value, size_t count)
{
	static const char call[] = "cuMemsetD8_v2";
	struct fc_context *ctx;
	hcu_result r = fc_enter_ctx(call, &ctx);
	if (r != HCU_SUCCESS)
		return r;
	if (count == 0)
		return fc_leave(HCU_SUCCESS);
	r = fc_check_device_range(call, ctx, dst, count);
	if (r != HCU_SUCCESS)
		return fc_leave(r);
	struct fc_op *op = op_new(FC_OP_MEMSET, call);
	if (!op)
		return fc_leave(HCU_ERROR_OUT_OF_MEMORY);
	op->dptr = dst;
	op->n = count;
	op->value = value;
	return fc_leave(submit(ctx->null_stream, op));
}

/* ---- streams ---- */

hcu_result cuStreamCreate(hcu_stream *pstream, unsigned int flags)
{
	static const char call[] = "cuStreamCreate";
	struct fc_context *ctx;
	hcu_result r = fc_enter_ctx(call, &ctx);
	if (r != HCU_SUCCESS)
		return r;
	if (!pstream || (flags & ~(unsigned)HCU_STREAM_NON_BLOCKING)) {
		fc_violation(call, HCU_ERROR_INVALID_VALUE, "pstream %p, flags 0x%x",
		             (void *)pstream, flags);
		return fc_leave(HCU_ERROR_INVALID_VALUE);
	}
	struct fc_stream *s = fc_stream_new(ctx, flags, false);
	if (!s)
		return fc_leave(HCU_ERROR_OUT_OF_MEMORY);
	*pstream = fc_handle(&s->obj);
	return fc_leave(HCU_SUCCESS);
}

/* Returns at once; a stream with work still queued goes when that work is done. */
hcu_result cuStreamDestroy_v2(hcu_stream h)
{
	static const char call[] = "cuStreamDestroy_v2";
	struct fc_context *ctx;
	hcu_result r = fc_enter_ctx_faulted(call, &ctx);
	if (r != HCU_SUCCESS)
		return r;
	if (!h || h == HCU_STREAM_LEGACY || h == HCU_STREAM_PER_THREAD) {
		fc_violation(call, HCU_ERROR_INVALID_HANDLE,
		             "the default stream %p cannot be destroyed", (void *)h);
		return fc_leave(HCU_ERROR_INVALID_HANDLE);
	}
	struct fc_stream *s;
	r = stream_arg(call, ctx, h, &s);
	if (r != HCU_SUCCESS)
		return fc_leave(r);
	fc_object_remove(&s->obj);
	fc.c.streams_now--;
	if (s->head)
		s->destroyed = true;
	else
		stream_free(s);
	return fc_leave(ctx->sticky);
}

hcu_result cuStreamSynchronize(hcu_stream h)
{
	static const char call[] = "cuStreamSynchronize";
	struct fc_context *ctx;
	hcu_result r = fc_enter_ctx_faulted(call, &ctx);
	if (r != HCU_SUCCESS)
		return r;
	struct fc_stream *s;
	r = stream_arg(call, ctx, h, &s);
	if (r != HCU_SUCCESS)
		return fc_leave(r);
	if (s->is_null) {
		wait_streams(ctx, legacy_stream_scope);
	} else if (s->tail) {
		struct fc_op *last = s->tail;
		last->refs++;
		wait_all(&last, 1);
	}
	return fc_leave(ctx->sticky);
}

hcu_result cuStreamQuery(hcu_stream h)
{
	static const char call[] = "cuStreamQuery";
	struct fc_context *ctx;
	hcu_result r = fc_enter_ctx(call, &ctx);
	if (r != HCU_SUCCESS)
		return r;
	struct fc_stream *s;
	r = stream_arg(call, ctx, h, &s);
	if (r != HCU_SUCCESS)
		return fc_leave(r);
	return fc_leave(s->head ? HCU_ERROR_NOT_READY : HCU_SUCCESS);
}

hcu_result cuStreamWaitEvent(hcu_stream h, hcu_event hev, unsigned int flags)
{
	static const char call[] = "cuStreamWaitEvent";
	struct fc_context *ctx;
	hcu_result r = fc_enter_ctx(call, &ctx);
	if (r != HCU_SUCCESS)
		return r;
	struct fc_stream *s;
	r = stream_arg(call, ctx, h, &s);
	if (r != HCU_SUCCESS)
		return fc_leave(r);
	if (flags != HCU_EVENT_WAIT_DEFAULT) {
		fc_violation(call, HCU_ERROR_INVALID_VALUE,
		             "flags 0x%x (CU_EVENT_WAIT_EXTERNAL is for stream capture only)",
		             flags);
		return fc_leave(HCU_ERROR_INVALID_VALUE);
	}
	/* The event may belong to another context, even another device's. */
	struct fc_object *obj = fc_lookup(hev, FC_EVENT, call, "event");
	if (!obj)
		return fc_leave(HCU_ERROR_INVALID_HANDLE);
	struct fc_event *ev = (struct fc_event *)obj;
	if (!ev->recorded || ev->recorded->done)
		return fc_leave(HCU_SUCCESS);
	struct fc_op *op = op_new(FC_OP_MARKER, call);
	if (!op || op_add_dep(op, ev->recorded)) {
		if (op)
			fc_op_unref(op);
		return fc_leave(HCU_ERROR_OUT_OF_MEMORY);
	}
	return fc_leave(submit(s, op));
}

hcu_result cuLaunchHostFunc(hcu_stream h, hcu_host_fn fn, void *user)
{
	static const char call[] = "cuLaunchHostFunc";
	struct fc_context *ctx;
	hcu_result r = fc_enter_ctx(call, &ctx);
	if (r != HCU_SUCCESS)
		return r;
	struct fc_stream *s;
	r = stream_arg(call, ctx, h, &s);
	if (r != HCU_SUCCESS)
		return fc_leave(r);
	if (!fn) {
		fc_violation(call, HCU_ERROR_INVALID_VALUE, "fn is NULL");
		return fc_leave(HCU_ERROR_INVALID_VALUE);
	}
	struct fc_op *op = op_new(FC_OP_HOST_FN, call);
	if (!op)
		return fc_leave(HCU_ERROR_OUT_OF_MEMORY);
	op->fn = fn;
	op->user = user;
	fc.c.host_functions++;
	return fc_leave(submit(s, op));
}

hcu_result cuCtxSynchronize(void)
{
	static const char call[] = "cuCtxSynchronize";
	struct fc_context *ctx;
	hcu_result r = fc_enter_ctx_faulted(call, &ctx);
	if (r != HCU_SUCCESS)
		return r;
	fc.c.ctx_synchronize_calls++;
	if (ctx->sticky == HCU_SUCCESS)
		wait_streams(ctx, any_stream);
	return fc_leave(ctx->sticky);
}

/* ---- events ---- */

/* The live event behind h, which must belong to the current context. */
static hcu_result event_arg(const char *call, struct fc_context *ctx, hcu_event h,
                            struct fc_event **out)
{
	struct fc_object *obj = fc_lookup(h, FC_EVENT, call, "event");
	if (!obj)
		return HCU_ERROR_INVALID_HANDLE;
	struct fc_event *ev = (struct fc_event *)obj;
	if (ev->ctx != ctx) {
		fc_violation(call, HCU_ERROR_INVALID_HANDLE,
		             "event %p belongs to context %p (device %d), but context %p (device "
		             "%d) is current",
		             (void *)h, fc_handle(&ev->ctx->obj), ev->ctx->device,
		             fc_handle(&ctx->obj), ctx->device);
		return HCU_ERROR_INVALID_HANDLE;
	}
	*out = ev;
	return HCU_SUCCESS;
}

hcu_result cuEventCreate(hcu_event *pevent, unsigned int flags)
{
	static const char call[] = "cuEventCreate";
	const unsigned known =
	        HCU_EVENT_BLOCKING_SYNC | HCU_EVENT_DISABLE_TIMING | HCU_EVENT_INTERPROCESS;
	struct fc_context *ctx;
	hcu_result r = fc_enter_ctx(call, &ctx);
	if (r != HCU_SUCCESS)
		return r;
	if (!pevent || (flags & ~known) ||
	    ((flags & HCU_EVENT_INTERPROCESS) && !(flags & HCU_EVENT_DISABLE_TIMING))) {
		fc_violation(call, HCU_ERROR_INVALID_VALUE,
		             "pevent %p, flags 0x%x (CU_EVENT_INTERPROCESS needs "
		             "CU_EVENT_DISABLE_TIMING)",
		             (void *)pevent, flags);
		return fc_leave(HCU_ERROR_INVALID_VALUE);
	}
	struct fc_event *ev = calloc(1, sizeof *ev);
	if (!ev || fc_object_add(&ev->obj, FC_EVENT)) {
		free(ev);
		return fc_leave(HCU_ERROR_OUT_OF_MEMORY);
	}
	ev->ctx = ctx;
	ev->flags = flags;
	fc.c.events_now++;
	*pevent = fc_handle(&ev->obj);
	return fc_leave(HCU_SUCCESS);
}

/* Returns at once, even while the last record is unfinished. */
hcu_result cuEventDestroy_v2(hcu_event h)
{
	static const char call[] = "cuEventDestroy_v2";
	struct fc_context *ctx;
	hcu_result r = fc_enter_ctx_faulted(call, &ctx);
	if (r != HCU_SUCCESS)
		return r;
	struct fc_event *ev;
	r = event_arg(call, ctx, h, &ev);
	if (r != HCU_SUCCESS)
		return fc_leave(r);
	fc_object_remove(&ev->obj);
	if (ev->recorded)
		fc_op_unref(ev->recorded);
	free(ev);
	fc.c.events_now--;
	return fc_leave(ctx->sticky);
}

hcu_result cuEventRecord(hcu_event hev, hcu_stream h)
{
	static const char call[] = "cuEventRecord";
	struct fc_context *ctx;
	hcu_result r = fc_enter_ctx(call, &ctx);
	if (r != HCU_SUCCESS)
		return r;
	struct fc_event *ev;
	struct fc_stream *s;
	r = event_arg(call, ctx, hev, &ev);
	if (r == HCU_SUCCESS)
		r = stream_arg(call, ctx, h, &s);
	if (r != HCU_SUCCESS)
		return fc_leave(r);
	struct fc_op *op = op_new(FC_OP_MARKER, call);
	if (!op)
		return fc_leave(HCU_ERROR_OUT_OF_MEMORY);
	op->refs++; /* the event's, taken first: the marker may complete in submit() */
	r = submit(s, op);
	if (r != HCU_SUCCESS) {
		fc_op_unref(op);
		return fc_leave(r);
	}
	if (ev->recorded)
		fc_op_unref(ev->recorded);
	ev->recorded = op;
	return fc_leave(HCU_SUCCESS);
}

hcu_result cuEventQuery(hcu_event h)
{
	static const char call[] = "cuEventQuery";
	struct fc_context *ctx;
	hcu_result r = fc_enter_ctx(call, &ctx);
	if (r != HCU_SUCCESS)
		return r;
	struct fc_event *ev;
	r = event_arg(call, ctx, h, &ev);
	if (r != HCU_SUCCESS)
		return fc_leave(r);
	/* Never recorded: no work captured, so complete. */
	return fc_leave(ev->recorded && !ev->recorded->done ? HCU_ERROR_NOT_READY : HCU_SUCCESS);
}

hcu_result cuEventSynchronize(hcu_event h)
{
	static const char call[] = "cuEventSynchronize";
	struct fc_context *ctx;
	hcu_result r = fc_enter_ctx_faulted(call, &ctx);
	if (r != HCU_SUCCESS)
		return r;
	struct fc_event *ev;
	r = event_arg(call, ctx, h, &ev);
	if (r != HCU_SUCCESS)
		return fc_leave(r);
	if (ev->recorded) {
		struct fc_op *op = ev->recorded;
		op->refs++;
		wait_all(&op, 1);
	}
	return fc_leave(ctx->sticky);
}

int fc_stream_leaks(void)
{
	static const char call[] = "fakecuda_check_leaks";
	int n = 0;
	for (size_t i = 0; i < fc.nobjects; i++) {
		const struct fc_object *obj = fc.objects[i];
		if (obj->kind == FC_STREAM) {
			const struct fc_stream *s = (const struct fc_stream *)obj;
			fc_violation(call, HCU_SUCCESS,
			             "leak: stream %p of context %p (device %d) was never "
			             "destroyed (cuStreamDestroy_v2)",
			             fc_handle(obj), fc_handle(&s->ctx->obj), s->ctx->device);
			n++;
		} else if (obj->kind == FC_EVENT) {
			const struct fc_event *ev = (const struct fc_event *)obj;
			fc_violation(call, HCU_SUCCESS,
			             "leak: event %p of context %p (device %d) was never "
			             "destroyed (cuEventDestroy_v2)",
			             fc_handle(obj), fc_handle(&ev->ctx->obj), ev->ctx->device);
			n++;
		}
	}
	return n;
}

SAME_TYPE(cuMemcpyHtoD_v2, hcu_memcpy_htod_fn);
SAME_TYPE(cuMemcpyDtoH_v2, hcu_memcpy_dtoh_fn);
SAME_TYPE(cuMemcpyHtoDAsync_v2, hcu_memcpy_htod_async_fn);
SAME_TYPE(cuMemcpyDtoHAsync_v2, hcu_memcpy_dtoh_async_fn);
SAME_TYPE(cuMemsetD8_v2, hcu_memset_d8_fn);
SAME_TYPE(cuStreamCreate, hcu_stream_create_fn);
SAME_TYPE(cuStreamDestroy_v2, hcu_stream_destroy_fn);
SAME_TYPE(cuStreamSynchronize, hcu_stream_synchronize_fn);
SAME_TYPE(cuStreamQuery, hcu_stream_query_fn);
SAME_TYPE(cuStreamWaitEvent, hcu_stream_wait_event_fn);
SAME_TYPE(cuLaunchHostFunc, hcu_launch_host_func_fn);
SAME_TYPE(cuCtxSynchronize, hcu_ctx_synchronize_fn);
SAME_TYPE(cuEventCreate, hcu_event_create_fn);
SAME_TYPE(cuEventDestroy_v2, hcu_event_destroy_fn);
SAME_TYPE(cuEventRecord, hcu_event_record_fn);
SAME_TYPE(cuEventQuery, hcu_event_query_fn);
SAME_TYPE(cuEventSynchronize, hcu_event_synchronize_fn);
