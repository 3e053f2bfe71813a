/* backend_cuda.c - NVIDIA GPUs through the CUDA driver API, loaded at run time with
 * dlopen("libcuda.so.1") so hoist builds and runs where CUDA is absent.
 *
 * Declarations are our own (cuda_abi.h, checked against cuda.h at build time). Each
 * entry point is looked up by the versioned symbol cuda.h's macros name
 * (cuMemAlloc -> cuMemAlloc_v2 ...). Per GPU: the primary context (retained once per
 * process and kept, as the runtime API does, so listing devices and loading do not
 * each pay for context creation), one arena allocation per load, several
 * non-blocking streams, events for completion. Every driver error becomes
 * HOIST_ERR_DEVICE with the driver's error name. */
#include "backend.h"
#include "cuda_abi.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* Copy streams per GPU: enough to keep the copy engines fed from several staged
 * chunks at once; more buys nothing measurable for host-to-device copies. */
#define CUDA_STREAMS 4

struct cuda_api {
	hcu_init_fn init;
	hcu_driver_get_version_fn driver_get_version;
	hcu_device_get_count_fn device_get_count;
	hcu_device_get_fn device_get;
	hcu_device_get_name_fn device_get_name;
	hcu_device_total_mem_fn device_total_mem;
	hcu_primary_ctx_retain_fn primary_ctx_retain;
	hcu_primary_ctx_release_fn primary_ctx_release;
	hcu_ctx_set_current_fn ctx_set_current;
	hcu_ctx_synchronize_fn ctx_synchronize;
	hcu_mem_get_info_fn mem_get_info;
	hcu_mem_alloc_fn mem_alloc;
	hcu_mem_free_fn mem_free;
	hcu_mem_host_alloc_fn mem_host_alloc;
	hcu_mem_free_host_fn mem_free_host;
	hcu_memcpy_htod_async_fn memcpy_htod_async;
	hcu_memcpy_dtoh_fn memcpy_dtoh;
	hcu_stream_create_fn stream_create;
	hcu_stream_destroy_fn stream_destroy;
	hcu_event_create_fn event_create;
	hcu_event_destroy_fn event_destroy;
	hcu_event_record_fn event_record;
	hcu_event_query_fn event_query;
	hcu_event_synchronize_fn event_synchronize;
	hcu_get_error_name_fn get_error_name;
};

/* Process-wide driver state, set up once. */
static struct {
	pthread_once_t once;
	pthread_mutex_t lock; /* guards ctx[] */
	enum hoist_status status;
	char errmsg[512];
	void *lib;
	struct cuda_api api;
	int count;
	hcu_context ctx[HOIST_MAX_DEVICES];
} drv = {PTHREAD_ONCE_INIT, PTHREAD_MUTEX_INITIALIZER, HOIST_OK, "", NULL, {0}, 0, {0}};

static const char *err_name(hcu_result r)
{
	const char *name = NULL;
	if (drv.api.get_error_name && drv.api.get_error_name(r, &name) == HCU_SUCCESS && name)
		return name;
	return "CUDA_ERROR_UNKNOWN";
}

/* HOIST_ERR_DEVICE naming the device, the call and the driver's error name. */
static enum hoist_status cu_fail(int ordinal, const char *call, hcu_result r)
{
	return hoist__error(HOIST_ERR_DEVICE, "cuda:%d: %s: %s (error %d)", ordinal, call,
	                    err_name(r), (int)r);
}

static void load_driver(void)
{
	drv.lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
	if (!drv.lib) {
		const char *e = dlerror();
		drv.status = HOIST_ERR_NO_DEVICE;
		/* dlerror() already names the library. */
		snprintf(drv.errmsg, sizeof drv.errmsg, "no CUDA driver: %s",
		         e ? e : "libcuda.so.1 cannot be loaded");
		return;
	}
	struct {
		const char *name;
		void **slot;
	} syms[] = {
	        {HCU_SYM_INIT, (void **)&drv.api.init},
	        {HCU_SYM_DRIVER_GET_VERSION, (void **)&drv.api.driver_get_version},
	        {HCU_SYM_DEVICE_GET_COUNT, (void **)&drv.api.device_get_count},
	        {HCU_SYM_DEVICE_GET, (void **)&drv.api.device_get},
	        {HCU_SYM_DEVICE_GET_NAME, (void **)&drv.api.device_get_name},
	        {HCU_SYM_DEVICE_TOTAL_MEM, (void **)&drv.api.device_total_mem},
	        {HCU_SYM_PRIMARY_CTX_RETAIN, (void **)&drv.api.primary_ctx_retain},
	        {HCU_SYM_PRIMARY_CTX_RELEASE, (void **)&drv.api.primary_ctx_release},
	        {HCU_SYM_CTX_SET_CURRENT, (void **)&drv.api.ctx_set_current},
	        {HCU_SYM_CTX_SYNCHRONIZE, (void **)&drv.api.ctx_synchronize},
	        {HCU_SYM_MEM_GET_INFO, (void **)&drv.api.mem_get_info},
	        {HCU_SYM_MEM_ALLOC, (void **)&drv.api.mem_alloc},
	        {HCU_SYM_MEM_FREE, (void **)&drv.api.mem_free},
	        {HCU_SYM_MEM_HOST_ALLOC, (void **)&drv.api.mem_host_alloc},
	        {HCU_SYM_MEM_FREE_HOST, (void **)&drv.api.mem_free_host},
	        {HCU_SYM_MEMCPY_HTOD_ASYNC, (void **)&drv.api.memcpy_htod_async},
	        {HCU_SYM_MEMCPY_DTOH, (void **)&drv.api.memcpy_dtoh},
	        {HCU_SYM_STREAM_CREATE, (void **)&drv.api.stream_create},
	        {HCU_SYM_STREAM_DESTROY, (void **)&drv.api.stream_destroy},
	        {HCU_SYM_EVENT_CREATE, (void **)&drv.api.event_create},
	        {HCU_SYM_EVENT_DESTROY, (void **)&drv.api.event_destroy},
	        {HCU_SYM_EVENT_RECORD, (void **)&drv.api.event_record},
	        {HCU_SYM_EVENT_QUERY, (void **)&drv.api.event_query},
	        {HCU_SYM_EVENT_SYNCHRONIZE, (void **)&drv.api.event_synchronize},
	        {HCU_SYM_GET_ERROR_NAME, (void **)&drv.api.get_error_name},
	};
	for (size_t i = 0; i < HOIST__ARRAY_SIZE(syms); i++) {
		/* POSIX guarantees a data pointer from dlsym converts to a function pointer;
		 * storing through void ** avoids the ISO C cast warning. */
		*syms[i].slot = dlsym(drv.lib, syms[i].name);
		if (!*syms[i].slot) {
			drv.status = HOIST_ERR_NO_DEVICE;
			snprintf(drv.errmsg, sizeof drv.errmsg,
			         "libcuda.so.1: the driver lacks %s (too old?)", syms[i].name);
			return;
		}
	}
	hcu_result r = drv.api.init(0);
	if (r == HCU_ERROR_NO_DEVICE) {
		drv.status = HOIST_ERR_NO_DEVICE;
		snprintf(drv.errmsg, sizeof drv.errmsg, "no CUDA GPU (cuInit: %s)", err_name(r));
		return;
	}
	if (r != HCU_SUCCESS) {
		drv.status = HOIST_ERR_NO_DEVICE;
		snprintf(drv.errmsg, sizeof drv.errmsg, "CUDA driver: cuInit: %s (error %d)",
		         err_name(r), (int)r);
		return;
	}
	int count = 0;
	r = drv.api.device_get_count(&count);
	if (r != HCU_SUCCESS || count <= 0) {
		drv.status = HOIST_ERR_NO_DEVICE;
		snprintf(drv.errmsg, sizeof drv.errmsg, "no CUDA GPU%s%s",
		         r != HCU_SUCCESS ? ": cuDeviceGetCount: " : "",
		         r != HCU_SUCCESS ? err_name(r) : "");
		return;
	}
	drv.count = HOIST__MIN(count, HOIST_MAX_DEVICES);
}

/* The loaded driver, or HOIST_ERR_NO_DEVICE with the reason. */
static enum hoist_status driver(void)
{
	pthread_once(&drv.once, load_driver);
	if (drv.status != HOIST_OK)
		return hoist__error(drv.status, "%s", drv.errmsg);
	return HOIST_OK;
}

/* GPU `ordinal`'s primary context, retained on first use, made current on the
 * calling thread. */
static enum hoist_status context(int ordinal, hcu_context *out)
{
	enum hoist_status st = driver();
	if (st != HOIST_OK)
		return st;
	if (ordinal < 0 || ordinal >= drv.count)
		return hoist__error(HOIST_ERR_NO_DEVICE, "cuda:%d: no such GPU (%d present)",
		                    ordinal, drv.count);
	pthread_mutex_lock(&drv.lock);
	hcu_result r = HCU_SUCCESS;
	const char *call = NULL;
	if (!drv.ctx[ordinal]) {
		hcu_device dev;
		r = drv.api.device_get(&dev, ordinal);
		call = "cuDeviceGet";
		if (r == HCU_SUCCESS) {
			r = drv.api.primary_ctx_retain(&drv.ctx[ordinal], dev);
			call = "cuDevicePrimaryCtxRetain";
		}
	}
	hcu_context ctx = drv.ctx[ordinal];
	pthread_mutex_unlock(&drv.lock);
	if (r != HCU_SUCCESS)
		return cu_fail(ordinal, call, r);
	r = drv.api.ctx_set_current(ctx);
	if (r != HCU_SUCCESS)
		return cu_fail(ordinal, "cuCtxSetCurrent", r);
	*out = ctx;
	return HOIST_OK;
}

static enum hoist_status cuda_list(const void *config, struct hoist_device_info *out, size_t cap,
                                   size_t *count)
{
	(void)config;
	*count = 0;
	enum hoist_status st = driver();
	if (st != HOIST_OK)
		return st;
	for (int i = 0; i < drv.count && (size_t)i < cap; i++) {
		struct hoist_device_info *info = &out[i];
		hcu_context ctx;
		hcu_device dev;
		size_t free_b = 0, total_b = 0;
		memset(info, 0, sizeof *info);
		info->device = (struct hoist_device){HOIST_DEVICE_CUDA, i};
		hcu_result r = drv.api.device_get(&dev, i);
		if (r != HCU_SUCCESS)
			return cu_fail(i, "cuDeviceGet", r);
		r = drv.api.device_get_name(info->name, (int)sizeof info->name - 1, dev);
		if (r != HCU_SUCCESS)
			return cu_fail(i, "cuDeviceGetName", r);
		st = context(i, &ctx);
		if (st != HOIST_OK)
			return st;
		r = drv.api.mem_get_info(&free_b, &total_b);
		if (r != HCU_SUCCESS)
			return cu_fail(i, "cuMemGetInfo_v2", r);
		info->free_bytes = free_b;
		info->total_bytes = total_b;
		(*count)++;
	}
	return HOIST_OK;
}

/* Page-locked memory every GPU copies from at full speed (portable), for the host
 * backend's pinned arenas. */
static enum hoist_status cuda_pin_alloc(size_t size, void **p, const char **how)
{
	hcu_context ctx;
	*p = NULL;
	*how = "pinned by cuMemHostAlloc";
	enum hoist_status st = context(0, &ctx);
	if (st != HOIST_OK)
		return st;
	hcu_result r = drv.api.mem_host_alloc(p, size, HCU_MEMHOSTALLOC_PORTABLE);
	if (r != HCU_SUCCESS) {
		*p = NULL;
		return cu_fail(0, "cuMemHostAlloc", r);
	}
	return HOIST_OK;
}

static void cuda_pin_free(void *p)
{
	hcu_context ctx;
	if (p && context(0, &ctx) == HOIST_OK)
		drv.api.mem_free_host(p);
}

struct cuda_dev {
	struct hoist__dev base; /* first */
	hcu_context ctx;
	hcu_stream stream[CUDA_STREAMS];
};

struct cuda_event {
	hcu_event ev;
};

static int ordinal_of(struct hoist__dev *dev)
{
	return dev->device.index;
}

/* Makes the device's context current on the calling thread (a thread-local store in
 * the driver: cheap enough for every call, and any thread may call). */
static enum hoist_status bind(struct cuda_dev *d)
{
	hcu_result r = drv.api.ctx_set_current(d->ctx);
	return r == HCU_SUCCESS ? HOIST_OK : cu_fail(ordinal_of(&d->base), "cuCtxSetCurrent", r);
}

static void cuda_close(struct hoist__dev *dev);

static enum hoist_status cuda_open(const void *config, int index, struct hoist__dev **out)
{
	(void)config;
	*out = NULL;
	hcu_context ctx;
	enum hoist_status st = context(index, &ctx);
	if (st != HOIST_OK)
		return st;
	struct cuda_dev *d = hoist__calloc(1, sizeof *d);
	if (!d)
		return hoist__error(HOIST_ERR_NOMEM, "cuda:%d: out of memory opening the GPU",
		                    index);
	d->base.ops = &hoist__backend_cuda;
	d->base.device = (struct hoist_device){HOIST_DEVICE_CUDA, index};
	d->base.streams = CUDA_STREAMS;
	d->ctx = ctx;
	snprintf(d->base.memory, sizeof d->base.memory, "device memory (cuMemAlloc_v2)");
	hcu_device dev;
	hcu_result r = drv.api.device_get(&dev, index);
	if (r == HCU_SUCCESS)
		r = drv.api.device_get_name(d->base.name, (int)sizeof d->base.name - 1, dev);
	if (r != HCU_SUCCESS) {
		cuda_close(&d->base);
		return cu_fail(index, "cuDeviceGetName", r);
	}
	for (int i = 0; i < CUDA_STREAMS; i++) {
		r = drv.api.stream_create(&d->stream[i], HCU_STREAM_NON_BLOCKING);
		if (r != HCU_SUCCESS) {
			d->stream[i] = NULL;
			cuda_close(&d->base);
			return cu_fail(index, "cuStreamCreate", r);
		}
	}
	*out = &d->base;
	return HOIST_OK;
}

static void cuda_close(struct hoist__dev *dev)
{
	struct cuda_dev *d = (struct cuda_dev *)dev;
	if (!d)
		return;
	if (bind(d) == HOIST_OK) {
		for (int i = 0; i < CUDA_STREAMS; i++)
			if (d->stream[i])
				drv.api.stream_destroy(d->stream[i]);
	}
	hoist__free(d);
}

static enum hoist_status cuda_alloc(struct hoist__dev *dev, uint64_t size, uint64_t *addr)
{
	struct cuda_dev *d = (struct cuda_dev *)dev;
	hcu_deviceptr p = 0;
	enum hoist_status st = bind(d);
	if (st != HOIST_OK)
		return st;
	if (size > SIZE_MAX)
		return hoist__error(HOIST_ERR_INVALID, "cuda:%d: arena too large", ordinal_of(dev));
	hcu_result r = drv.api.mem_alloc(&p, (size_t)(size ? size : 1));
	if (r != HCU_SUCCESS) {
		char b[32];
		return hoist__error(HOIST_ERR_DEVICE, "cuda:%d: cuMemAlloc_v2(%s): %s (error %d)",
		                    ordinal_of(dev), hoist_bytes_format(size, b, sizeof b),
		                    err_name(r), (int)r);
	}
	*addr = p;
	return HOIST_OK;
}

static void cuda_free(struct hoist__dev *dev, uint64_t addr, uint64_t size)
{
	struct cuda_dev *d = (struct cuda_dev *)dev;
	(void)size;
	if (d && addr && bind(d) == HOIST_OK)
		drv.api.mem_free((hcu_deviceptr)addr);
}

static enum hoist_status cuda_host_alloc(struct hoist__dev *dev, size_t size, void **p,
                                         const char **how)
{
	struct cuda_dev *d = (struct cuda_dev *)dev;
	*how = "pinned by cuMemHostAlloc";
	*p = NULL;
	enum hoist_status st = bind(d);
	if (st != HOIST_OK)
		return st;
	/* Portable: every GPU's context may copy from it (one ring feeds all GPUs). */
	hcu_result r = drv.api.mem_host_alloc(p, size, HCU_MEMHOSTALLOC_PORTABLE);
	if (r != HCU_SUCCESS) {
		*p = NULL;
		return cu_fail(ordinal_of(dev), "cuMemHostAlloc", r);
	}
	return HOIST_OK;
}

static void cuda_host_free(struct hoist__dev *dev, void *p, size_t size)
{
	(void)size;
	if (p && bind((struct cuda_dev *)dev) == HOIST_OK)
		drv.api.mem_free_host(p);
}

static enum hoist_status cuda_event_create(struct hoist__dev *dev, struct hoist__event **out)
{
	struct cuda_dev *d = (struct cuda_dev *)dev;
	*out = NULL;
	struct cuda_event *e = hoist__calloc(1, sizeof *e);
	if (!e)
		return hoist__error(HOIST_ERR_NOMEM, "cuda:%d: out of memory", ordinal_of(dev));
	enum hoist_status st = bind(d);
	hcu_result r = st == HOIST_OK ? drv.api.event_create(&e->ev, HCU_EVENT_DISABLE_TIMING)
	                              : HCU_SUCCESS;
	if (st == HOIST_OK && r != HCU_SUCCESS)
		st = cu_fail(ordinal_of(dev), "cuEventCreate", r);
	if (st != HOIST_OK) {
		hoist__free(e);
		return st;
	}
	*out = (struct hoist__event *)e;
	return HOIST_OK;
}

static void cuda_event_destroy(struct hoist__dev *dev, struct hoist__event *ev)
{
	struct cuda_event *e = (struct cuda_event *)ev;
	if (!e)
		return;
	if (bind((struct cuda_dev *)dev) == HOIST_OK)
		drv.api.event_destroy(e->ev);
	hoist__free(e);
}

static enum hoist_status cuda_copy_async(struct hoist__dev *dev, unsigned stream, uint64_t dst,
                                         const void *src, size_t n)
{
	struct cuda_dev *d = (struct cuda_dev *)dev;
	enum hoist_status st = bind(d);
	if (st != HOIST_OK)
		return st;
	hcu_result r = drv.api.memcpy_htod_async((hcu_deviceptr)dst, src, n,
	                                         d->stream[stream % CUDA_STREAMS]);
	return r == HCU_SUCCESS ? HOIST_OK : cu_fail(ordinal_of(dev), "cuMemcpyHtoDAsync_v2", r);
}

static enum hoist_status cuda_event_record(struct hoist__dev *dev, struct hoist__event *ev,
                                           unsigned stream)
{
	struct cuda_dev *d = (struct cuda_dev *)dev;
	struct cuda_event *e = (struct cuda_event *)ev;
	enum hoist_status st = bind(d);
	if (st != HOIST_OK)
		return st;
	hcu_result r = drv.api.event_record(e->ev, d->stream[stream % CUDA_STREAMS]);
	return r == HCU_SUCCESS ? HOIST_OK : cu_fail(ordinal_of(dev), "cuEventRecord", r);
}

static enum hoist_status cuda_event_wait(struct hoist__dev *dev, struct hoist__event *ev,
                                         double timeout_s, bool *done)
{
	struct cuda_dev *d = (struct cuda_dev *)dev;
	struct cuda_event *e = (struct cuda_event *)ev;
	*done = false;
	enum hoist_status st = bind(d);
	if (st != HOIST_OK)
		return st;
	/* Polled rather than cuEventSynchronize, so the wait has a bound and the engine
	 * can notice cancellation; a chunk's copy takes about a millisecond, so a 50 us
	 * poll costs little. */
	double until = hoist__now() + timeout_s;
	for (;;) {
		hcu_result r = drv.api.event_query(e->ev);
		if (r == HCU_SUCCESS) {
			*done = true;
			return HOIST_OK;
		}
		if (r != HCU_ERROR_NOT_READY) {
			*done = true;
			return cu_fail(ordinal_of(dev), "cuEventQuery", r);
		}
		if (hoist__now() >= until)
			return HOIST_OK;
		struct timespec ts = {0, 50000};
		nanosleep(&ts, NULL);
	}
}

static enum hoist_status cuda_copy_out(struct hoist__dev *dev, void *dst, uint64_t src, size_t n)
{
	struct cuda_dev *d = (struct cuda_dev *)dev;
	enum hoist_status st = bind(d);
	if (st != HOIST_OK)
		return st;
	hcu_result r = drv.api.memcpy_dtoh(dst, (hcu_deviceptr)src, n);
	return r == HCU_SUCCESS ? HOIST_OK : cu_fail(ordinal_of(dev), "cuMemcpyDtoH_v2", r);
}

/* Synchronous copy in: an async copy on stream 0 and a wait for it (works from
 * pageable memory too; the driver stages it). */
static enum hoist_status cuda_copy_in(struct hoist__dev *dev, uint64_t dst, const void *src,
                                      size_t n)
{
	struct cuda_dev *d = (struct cuda_dev *)dev;
	enum hoist_status st = bind(d);
	if (st != HOIST_OK)
		return st;
	hcu_result r = drv.api.memcpy_htod_async((hcu_deviceptr)dst, src, n, d->stream[0]);
	if (r != HCU_SUCCESS)
		return cu_fail(ordinal_of(dev), "cuMemcpyHtoDAsync_v2", r);
	r = drv.api.ctx_synchronize();
	return r == HCU_SUCCESS ? HOIST_OK : cu_fail(ordinal_of(dev), "cuCtxSynchronize", r);
}

static enum hoist_status cuda_synchronize(struct hoist__dev *dev)
{
	struct cuda_dev *d = (struct cuda_dev *)dev;
	enum hoist_status st = bind(d);
	if (st != HOIST_OK)
		return st;
	hcu_result r = drv.api.ctx_synchronize();
	return r == HCU_SUCCESS ? HOIST_OK : cu_fail(ordinal_of(dev), "cuCtxSynchronize", r);
}

const struct hoist__backend hoist__backend_cuda = {
        .version = 1,
        .name = "cuda",
        .kind = HOIST_DEVICE_CUDA,
        .list = cuda_list,
        .open = cuda_open,
        .close = cuda_close,
        .alloc = cuda_alloc,
        .free = cuda_free,
        .host_alloc = cuda_host_alloc,
        .host_free = cuda_host_free,
        .event_create = cuda_event_create,
        .event_destroy = cuda_event_destroy,
        .copy_async = cuda_copy_async,
        .event_record = cuda_event_record,
        .event_wait = cuda_event_wait,
        .copy_out = cuda_copy_out,
        .copy_in = cuda_copy_in,
        .synchronize = cuda_synchronize,
        .pin_alloc = cuda_pin_alloc,
        .pin_free = cuda_pin_free,
};
