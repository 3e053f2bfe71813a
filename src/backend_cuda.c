/* backend_cuda.c - NVIDIA GPUs through the CUDA driver API, loaded at run time (dlopen
 * of HOIST_CUDA_LIBRARY, else "libcuda.so.1"), so hoist builds and runs where CUDA is
 * absent.
 *
 * Declarations are our own (cuda_abi.h, checked against cuda.h at build time). Each
 * entry point is looked up by the versioned symbol cuda.h's macros name
 * (cuMemAlloc -> cuMemAlloc_v2 ...). The rules hoist keeps, each checked by the strict
 * fake driver the tests run against (tests/fakecuda):
 *  - Listing devices creates no context: total memory from cuDeviceTotalMem_v2, free
 *    memory from NVML (HOIST_NVML_LIBRARY, else "libnvidia-ml.so.1"), devices paired
 *    by PCI domain, bus and device number, never by index. Only where NVML is absent
 *    does a GPU the options target get its context retained, for cuMemGetInfo.
 *  - An opened GPU holds one reference on its primary context (shared with the
 *    runtime API, so PyTorch and hoist use one context), released when it closes; a
 *    pinned host arena holds one on the context it was allocated in.
 *  - Every call runs with hoist's context pushed on the calling thread's stack and
 *    popped after, so the caller's current context is never changed.
 *  - hoist waits for its own streams (cuStreamSynchronize), never for the whole
 *    context (cuCtxSynchronize would wait for the caller's work too); frees wait for
 *    hoist's copies first; synchronous copies go through a pinned bounce buffer on
 *    hoist's own stream, not through pageable memory or the legacy stream.
 *  - Out of memory (device or pinned) is HOIST_ERR_NO_SPACE; a driver that loads but
 *    cannot use its GPUs (cuInit: CUDA_ERROR_SYSTEM_NOT_READY, ...) is HOIST_ERR_DEVICE
 *    naming the driver's error; no driver or no GPU, HOIST_ERR_NO_DEVICE. */
#include "backend.h"
#include "cuda_abi.h"
#include "nvml_abi.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Copy streams per GPU: the readers spread their copies over them (reader r on stream
 * r % CUDA_STREAMS), so a copy queued behind another reader's is rare; host-to-device
 * copies share one link, so more streams buy nothing. */
#define CUDA_STREAMS 4
/* Synchronous copies (hoist_model_read, hoist_model_fetch) go through two pinned
 * halves of this size, one copying while the other is memcpy'd. */
#define BOUNCE_HALF (8u << 20)

struct cuda_api {
	hcu_init_fn init;
	hcu_device_get_count_fn device_get_count;
	hcu_device_get_fn device_get;
	hcu_device_get_name_fn device_get_name;
	hcu_device_total_mem_fn device_total_mem;
	hcu_device_get_attribute_fn device_get_attribute;
	hcu_primary_ctx_retain_fn primary_ctx_retain;
	hcu_primary_ctx_release_fn primary_ctx_release;
	hcu_ctx_push_current_fn ctx_push_current;
	hcu_ctx_pop_current_fn ctx_pop_current;
	hcu_mem_get_info_fn mem_get_info;
	hcu_mem_alloc_fn mem_alloc;
	hcu_mem_free_fn mem_free;
	hcu_mem_host_alloc_fn mem_host_alloc;
	hcu_mem_free_host_fn mem_free_host;
	hcu_mem_host_register_fn mem_host_register;
	hcu_mem_host_unregister_fn mem_host_unregister;
	hcu_memcpy_htod_async_fn memcpy_htod_async;
	hcu_memcpy_dtoh_async_fn memcpy_dtoh_async;
	hcu_stream_create_fn stream_create;
	hcu_stream_destroy_fn stream_destroy;
	hcu_stream_synchronize_fn stream_synchronize;
	hcu_event_create_fn event_create;
	hcu_event_destroy_fn event_destroy;
	hcu_event_record_fn event_record;
	hcu_event_query_fn event_query;
	hcu_event_synchronize_fn event_synchronize;
	hcu_get_error_name_fn get_error_name;
	hcu_get_error_string_fn get_error_string;
};

struct nvml_api {
	hnvml_init_fn init;
	hnvml_shutdown_fn shutdown;
	hnvml_device_get_count_fn device_get_count;
	hnvml_device_get_handle_by_index_fn device_get_handle_by_index;
	hnvml_device_get_memory_info_fn device_get_memory_info;
	hnvml_device_get_pci_info_fn device_get_pci_info;
};

/* A pinned host arena (pin_alloc) and the GPU whose context it was allocated in. */
struct pin {
	void *p;
	int ordinal;
};

/* Process-wide driver state, set up once. */
static struct {
	pthread_once_t once, nvml_once;
	pthread_mutex_t lock; /* guards refs, ctx and pins */
	enum hoist_status status;
	char errmsg[640];
	void *lib, *nvml_lib;
	struct cuda_api api;
	struct nvml_api nvml;
	int count;
	int refs[HOIST_MAX_DEVICES]; /* hoist's references on each primary context */
	hcu_context ctx[HOIST_MAX_DEVICES];
	struct pin *pins;
	size_t npins, pcap;
} drv = {.once = PTHREAD_ONCE_INIT,
         .nvml_once = PTHREAD_ONCE_INIT,
         .lock = PTHREAD_MUTEX_INITIALIZER};

static const char *err_name(hcu_result r)
{
	const char *name = NULL;
	if (drv.api.get_error_name && drv.api.get_error_name(r, &name) == HCU_SUCCESS && name)
		return name;
	return "CUDA_ERROR_UNKNOWN";
}

static const char *err_text(hcu_result r)
{
	const char *text = NULL;
	if (drv.api.get_error_string && drv.api.get_error_string(r, &text) == HCU_SUCCESS && text)
		return text;
	return "no description";
}

/* HOIST_ERR_DEVICE (or HOIST_ERR_NO_SPACE for out of memory) naming the device, the
 * call and the driver's error. */
static enum hoist_status cu_fail(int ordinal, const char *call, hcu_result r)
{
	return hoist__error(r == HCU_ERROR_OUT_OF_MEMORY ? HOIST_ERR_NO_SPACE : HOIST_ERR_DEVICE,
	                    "cuda:%d: %s: %s (error %d)", ordinal, call, err_name(r), (int)r);
}

static const char *library_path(const char *env, const char *dflt)
{
	const char *p = getenv(env);
	return p && *p ? p : dflt;
}

/* Looks up every symbol of syms in lib; the name of the first one missing, or NULL. */
struct sym {
	const char *name;
	void **slot;
};

static const char *resolve(void *lib, const struct sym *syms, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		/* POSIX guarantees a data pointer from dlsym converts to a function pointer;
		 * storing through void ** avoids the ISO C cast warning. */
		*syms[i].slot = dlsym(lib, syms[i].name);
		if (!*syms[i].slot)
			return syms[i].name;
	}
	return NULL;
}

static void load_driver(void)
{
	const char *path = library_path("HOIST_CUDA_LIBRARY", "libcuda.so.1");
	drv.lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!drv.lib) {
		const char *e = dlerror();
		drv.status = HOIST_ERR_NO_DEVICE;
		/* dlerror() names the library */
		snprintf(drv.errmsg, sizeof drv.errmsg, "no CUDA driver: %s",
		         e ? e : "libcuda.so.1 cannot be loaded");
		return;
	}
	const struct sym syms[] = {
	        {HCU_SYM_INIT, (void **)&drv.api.init},
	        {HCU_SYM_DEVICE_GET_COUNT, (void **)&drv.api.device_get_count},
	        {HCU_SYM_DEVICE_GET, (void **)&drv.api.device_get},
	        {HCU_SYM_DEVICE_GET_NAME, (void **)&drv.api.device_get_name},
	        {HCU_SYM_DEVICE_TOTAL_MEM, (void **)&drv.api.device_total_mem},
	        {HCU_SYM_DEVICE_GET_ATTRIBUTE, (void **)&drv.api.device_get_attribute},
	        {HCU_SYM_PRIMARY_CTX_RETAIN, (void **)&drv.api.primary_ctx_retain},
	        {HCU_SYM_PRIMARY_CTX_RELEASE, (void **)&drv.api.primary_ctx_release},
	        {HCU_SYM_CTX_PUSH_CURRENT, (void **)&drv.api.ctx_push_current},
	        {HCU_SYM_CTX_POP_CURRENT, (void **)&drv.api.ctx_pop_current},
	        {HCU_SYM_MEM_GET_INFO, (void **)&drv.api.mem_get_info},
	        {HCU_SYM_MEM_ALLOC, (void **)&drv.api.mem_alloc},
	        {HCU_SYM_MEM_FREE, (void **)&drv.api.mem_free},
	        {HCU_SYM_MEM_HOST_ALLOC, (void **)&drv.api.mem_host_alloc},
	        {HCU_SYM_MEM_FREE_HOST, (void **)&drv.api.mem_free_host},
	        {HCU_SYM_MEM_HOST_REGISTER, (void **)&drv.api.mem_host_register},
	        {HCU_SYM_MEM_HOST_UNREGISTER, (void **)&drv.api.mem_host_unregister},
	        {HCU_SYM_MEMCPY_HTOD_ASYNC, (void **)&drv.api.memcpy_htod_async},
	        {HCU_SYM_MEMCPY_DTOH_ASYNC, (void **)&drv.api.memcpy_dtoh_async},
	        {HCU_SYM_STREAM_CREATE, (void **)&drv.api.stream_create},
	        {HCU_SYM_STREAM_DESTROY, (void **)&drv.api.stream_destroy},
	        {HCU_SYM_STREAM_SYNCHRONIZE, (void **)&drv.api.stream_synchronize},
	        {HCU_SYM_EVENT_CREATE, (void **)&drv.api.event_create},
	        {HCU_SYM_EVENT_DESTROY, (void **)&drv.api.event_destroy},
	        {HCU_SYM_EVENT_RECORD, (void **)&drv.api.event_record},
	        {HCU_SYM_EVENT_QUERY, (void **)&drv.api.event_query},
	        {HCU_SYM_EVENT_SYNCHRONIZE, (void **)&drv.api.event_synchronize},
	        {HCU_SYM_GET_ERROR_NAME, (void **)&drv.api.get_error_name},
	        {HCU_SYM_GET_ERROR_STRING, (void **)&drv.api.get_error_string},
	};
	const char *missing = resolve(drv.lib, syms, HOIST__ARRAY_SIZE(syms));
	if (missing) {
		drv.status = HOIST_ERR_NO_DEVICE;
		snprintf(drv.errmsg, sizeof drv.errmsg,
		         "%s: the CUDA driver lacks %s (older than CUDA 11?)", path, missing);
		return;
	}
	hcu_result r = drv.api.init(0);
	if (r == HCU_ERROR_NO_DEVICE) {
		drv.status = HOIST_ERR_NO_DEVICE;
		snprintf(drv.errmsg, sizeof drv.errmsg, "no CUDA GPU: cuInit: %s", err_name(r));
		return;
	}
	if (r != HCU_SUCCESS) {
		/* A driver that loads but cannot use its GPUs: a broken machine, not one
		 * without GPUs (802: the fabric manager of an NVSwitch system is not
		 * running; 999: the kernel module and the library disagree, ...). */
		drv.status = HOIST_ERR_DEVICE;
		snprintf(drv.errmsg, sizeof drv.errmsg,
		         "the CUDA driver cannot use its GPUs: cuInit: %s (error %d: %s)",
		         err_name(r), (int)r, err_text(r));
		return;
	}
	int count = 0;
	r = drv.api.device_get_count(&count);
	if (r != HCU_SUCCESS) {
		drv.status = HOIST_ERR_DEVICE;
		snprintf(drv.errmsg, sizeof drv.errmsg, "the CUDA driver: cuDeviceGetCount: %s",
		         err_name(r));
		return;
	}
	if (count <= 0) {
		drv.status = HOIST_ERR_NO_DEVICE;
		snprintf(drv.errmsg, sizeof drv.errmsg, "no CUDA GPU: cuDeviceGetCount: 0");
		return;
	}
	drv.count = HOIST__MIN(count, HOIST_MAX_DEVICES);
}

/* The loaded driver, or the reason there is none. */
static enum hoist_status driver(void)
{
	pthread_once(&drv.once, load_driver);
	if (drv.status != HOIST_OK)
		return hoist__error(drv.status, "%s", drv.errmsg);
	return HOIST_OK;
}

static enum hoist_status check_ordinal(int ordinal)
{
	enum hoist_status st = driver();
	if (st == HOIST_OK && (ordinal < 0 || ordinal >= drv.count))
		st = hoist__error(HOIST_ERR_NO_DEVICE, "cuda:%d: no such GPU (%d present)", ordinal,
		                  drv.count);
	return st;
}

/* ---- contexts ------------------------------------------------------------------ */

/* Takes one reference on GPU `ordinal`'s primary context for hoist. */
static enum hoist_status retain(int ordinal, hcu_context *out)
{
	enum hoist_status st = check_ordinal(ordinal);
	if (st != HOIST_OK)
		return st;
	hcu_device dev;
	hcu_context ctx = NULL;
	const char *call = "cuDeviceGet";
	hcu_result r = drv.api.device_get(&dev, ordinal);
	if (r == HCU_SUCCESS) {
		call = "cuDevicePrimaryCtxRetain";
		r = drv.api.primary_ctx_retain(&ctx, dev);
	}
	if (r != HCU_SUCCESS)
		return cu_fail(ordinal, call, r);
	pthread_mutex_lock(&drv.lock);
	drv.refs[ordinal]++;
	drv.ctx[ordinal] = ctx;
	pthread_mutex_unlock(&drv.lock);
	*out = ctx;
	return HOIST_OK;
}

static void release(int ordinal)
{
	hcu_device dev;
	pthread_mutex_lock(&drv.lock);
	drv.refs[ordinal]--;
	pthread_mutex_unlock(&drv.lock);
	if (drv.api.device_get(&dev, ordinal) == HCU_SUCCESS)
		drv.api.primary_ctx_release(dev);
}

/* Makes ctx current on the calling thread above whatever the caller had; pop() puts
 * the caller's back. */
static enum hoist_status push(int ordinal, hcu_context ctx)
{
	hcu_result r = drv.api.ctx_push_current(ctx);
	return r == HCU_SUCCESS ? HOIST_OK : cu_fail(ordinal, "cuCtxPushCurrent_v2", r);
}

static void pop(void)
{
	hcu_context ctx;
	drv.api.ctx_pop_current(&ctx);
}

/* ---- free memory from NVML ------------------------------------------------------- */

static void load_nvml(void)
{
	drv.nvml_lib = dlopen(library_path("HOIST_NVML_LIBRARY", "libnvidia-ml.so.1"),
	                      RTLD_NOW | RTLD_LOCAL);
	if (!drv.nvml_lib)
		return;
	const struct sym syms[] = {
	        {HNVML_SYM_INIT, (void **)&drv.nvml.init},
	        {HNVML_SYM_SHUTDOWN, (void **)&drv.nvml.shutdown},
	        {HNVML_SYM_DEVICE_GET_COUNT, (void **)&drv.nvml.device_get_count},
	        {HNVML_SYM_DEVICE_GET_HANDLE_BY_INDEX,
	         (void **)&drv.nvml.device_get_handle_by_index},
	        {HNVML_SYM_DEVICE_GET_MEMORY_INFO, (void **)&drv.nvml.device_get_memory_info},
	        {HNVML_SYM_DEVICE_GET_PCI_INFO, (void **)&drv.nvml.device_get_pci_info},
	};
	if (resolve(drv.nvml_lib, syms, HOIST__ARRAY_SIZE(syms)))
		drv.nvml.init = NULL; /* an NVML without them: as if none */
}

/* GPU d's PCI domain, bus and device numbers. */
static bool pci_of(hcu_device d, unsigned out[3])
{
	static const int attr[3] = {HCU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID,
	                            HCU_DEVICE_ATTRIBUTE_PCI_BUS_ID,
	                            HCU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID};
	for (int i = 0; i < 3; i++) {
		int v;
		if (drv.api.device_get_attribute(&v, attr[i], d) != HCU_SUCCESS || v < 0)
			return false;
		out[i] = (unsigned)v;
	}
	return true;
}

/* Free bytes of each of the n GPUs from NVML into free_b[] (known[i] set where found).
 * False where NVML is absent or fails. */
static bool nvml_free(int n, uint64_t *free_b, bool *known)
{
	pthread_once(&drv.nvml_once, load_nvml);
	if (!drv.nvml.init || drv.nvml.init() != HNVML_SUCCESS)
		return false;
	unsigned nn = 0;
	if (drv.nvml.device_get_count(&nn) != HNVML_SUCCESS)
		nn = 0;
	for (int i = 0; i < n; i++) {
		hcu_device d;
		unsigned want[3];
		known[i] = false;
		if (drv.api.device_get(&d, i) != HCU_SUCCESS || !pci_of(d, want))
			continue;
		for (unsigned k = 0; k < nn && !known[i]; k++) {
			hnvml_device h;
			struct hnvml_pci_info pci;
			struct hnvml_memory mem;
			if (drv.nvml.device_get_handle_by_index(k, &h) != HNVML_SUCCESS ||
			    drv.nvml.device_get_pci_info(h, &pci) != HNVML_SUCCESS)
				continue;
			if (pci.domain != want[0] || pci.bus != want[1] || pci.device != want[2])
				continue;
			if (drv.nvml.device_get_memory_info(h, &mem) == HNVML_SUCCESS) {
				free_b[i] = mem.free;
				known[i] = true;
			}
		}
	}
	drv.nvml.shutdown();
	return true;
}

/* Free bytes of GPU i through its primary context (retained for the call, released
 * after: only for GPUs the options target, and only where NVML said nothing). */
static enum hoist_status context_free(int i, uint64_t *out)
{
	hcu_context ctx;
	enum hoist_status st = retain(i, &ctx);
	if (st != HOIST_OK)
		return st;
	size_t free_b = 0, total_b = 0;
	st = push(i, ctx);
	if (st == HOIST_OK) {
		hcu_result r = drv.api.mem_get_info(&free_b, &total_b);
		pop();
		if (r != HCU_SUCCESS)
			st = cu_fail(i, "cuMemGetInfo_v2", r);
	}
	release(i);
	*out = free_b;
	return st;
}

static enum hoist_status cuda_list(const void *config, struct hoist_device_info *out, size_t cap,
                                   size_t *count)
{
	const struct hoist__cuda_config *cfg = config;
	*count = 0;
	enum hoist_status st = driver();
	if (st != HOIST_OK)
		return st;
	int n = (int)HOIST__MIN((size_t)drv.count, cap);
	uint64_t free_b[HOIST_MAX_DEVICES] = {0};
	bool known[HOIST_MAX_DEVICES] = {false};
	nvml_free(n, free_b, known);
	for (int i = 0; i < n; i++) {
		struct hoist_device_info *info = &out[i];
		hcu_device dev;
		size_t total = 0;
		memset(info, 0, sizeof *info);
		info->device = (struct hoist_device){HOIST_DEVICE_CUDA, i};
		hcu_result r = drv.api.device_get(&dev, i);
		if (r == HCU_SUCCESS)
			r = drv.api.device_get_name(info->name, (int)sizeof info->name - 1, dev);
		if (r == HCU_SUCCESS)
			r = drv.api.device_total_mem(&total, dev);
		if (r != HCU_SUCCESS)
			return cu_fail(i, "cuDeviceGetName", r);
		info->total_bytes = total;
		info->free_bytes = total;
		if (known[i]) {
			info->free_bytes = HOIST__MIN(free_b[i], (uint64_t)total);
		} else if (cfg && (cfg->target < 0 || cfg->target == i)) {
			st = context_free(i, &info->free_bytes);
			if (st != HOIST_OK)
				return st;
		}
		(*count)++;
	}
	return HOIST_OK;
}

/* ---- pinned host arenas (the host backend's pinner) ----------------------------- */

/* Page-locked memory every GPU copies from at full speed (portable), allocated in the
 * context of the lowest-numbered GPU hoist already holds (so a load to cuda:1 makes
 * no context on cuda:0), else GPU 0's; the arena keeps a reference on that context. */
static enum hoist_status cuda_pin_alloc(size_t size, void **p, const char **how)
{
	*p = NULL;
	*how = "pinned by cuMemHostAlloc";
	enum hoist_status st = driver();
	if (st != HOIST_OK)
		return st;
	int ordinal = 0;
	pthread_mutex_lock(&drv.lock);
	for (int i = drv.count - 1; i >= 0; i--)
		if (drv.refs[i] > 0)
			ordinal = i;
	bool room = hoist__grow(&drv.pins, &drv.pcap, drv.npins, sizeof *drv.pins, 4);
	pthread_mutex_unlock(&drv.lock);
	if (!room)
		return hoist__error(HOIST_ERR_NOMEM, "out of memory pinning host memory");
	hcu_context ctx;
	if ((st = retain(ordinal, &ctx)) != HOIST_OK)
		return st;
	if ((st = push(ordinal, ctx)) == HOIST_OK) {
		hcu_result r = drv.api.mem_host_alloc(p, size, HCU_MEMHOSTALLOC_PORTABLE);
		pop();
		if (r != HCU_SUCCESS) {
			char b[32];
			*p = NULL;
			st = cu_fail(ordinal, "cuMemHostAlloc", r);
			hoist__error_prefix("pinning %s of host memory",
			                    hoist_bytes_format(size, b, sizeof b));
		}
	}
	if (st != HOIST_OK) {
		release(ordinal);
		return st;
	}
	pthread_mutex_lock(&drv.lock);
	drv.pins[drv.npins++] = (struct pin){*p, ordinal};
	pthread_mutex_unlock(&drv.lock);
	return HOIST_OK;
}

static void cuda_pin_free(void *p)
{
	int ordinal = -1;
	hcu_context ctx = NULL;
	pthread_mutex_lock(&drv.lock);
	for (size_t i = 0; p && i < drv.npins; i++) {
		if (drv.pins[i].p == p) {
			ordinal = drv.pins[i].ordinal;
			ctx = drv.ctx[ordinal];
			drv.pins[i] = drv.pins[--drv.npins];
			break;
		}
	}
	pthread_mutex_unlock(&drv.lock);
	if (ordinal < 0)
		return;
	if (drv.api.ctx_push_current(ctx) == HCU_SUCCESS) {
		drv.api.mem_free_host(p);
		pop();
	}
	release(ordinal);
}

/* ---- an opened GPU ---------------------------------------------------------------- */

struct cuda_dev {
	struct hoist__dev base; /* first */
	hcu_context ctx;        /* its primary context, one reference held */
	hcu_stream stream[CUDA_STREAMS];
	unsigned char *bounce; /* 2 x BOUNCE_HALF pinned, made on first use */
	hcu_event bounce_ev[2];
};

struct cuda_event {
	hcu_event ev;
};

static int ordinal_of(const struct cuda_dev *d)
{
	return d->base.device.index;
}

static enum hoist_status enter(struct cuda_dev *d)
{
	return push(ordinal_of(d), d->ctx);
}

/* For frees and closes, which leave the message of a failure before them alone. */
static bool enter_quiet(struct cuda_dev *d)
{
	return drv.api.ctx_push_current(d->ctx) == HCU_SUCCESS;
}

/* Waits for every copy hoist queued on the GPU (context pushed); the first error. */
static hcu_result wait_streams(struct cuda_dev *d)
{
	hcu_result first = HCU_SUCCESS;
	for (int i = 0; i < CUDA_STREAMS; i++) {
		hcu_result r =
		        d->stream[i] ? drv.api.stream_synchronize(d->stream[i]) : HCU_SUCCESS;
		if (first == HCU_SUCCESS)
			first = r;
	}
	return first;
}

/* The same, as a status with its message; frees and closes call wait_streams, which
 * leaves the message of the failure that led to them alone. */
static enum hoist_status sync_streams(struct cuda_dev *d)
{
	hcu_result r = wait_streams(d);
	return r == HCU_SUCCESS ? HOIST_OK : cu_fail(ordinal_of(d), "cuStreamSynchronize", r);
}

static void cuda_close(struct hoist__dev *dev);

static enum hoist_status cuda_open(const void *config, int index, struct hoist__dev **out)
{
	(void)config;
	*out = NULL;
	hcu_context ctx;
	enum hoist_status st = retain(index, &ctx);
	if (st != HOIST_OK)
		return st;
	struct cuda_dev *d = hoist__calloc(1, sizeof *d);
	if (!d) {
		release(index);
		return hoist__error(HOIST_ERR_NOMEM, "cuda:%d: out of memory opening the GPU",
		                    index);
	}
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
	if ((st = enter(d)) != HOIST_OK) {
		cuda_close(&d->base);
		return st;
	}
	for (int i = 0; i < CUDA_STREAMS && r == HCU_SUCCESS; i++) {
		r = drv.api.stream_create(&d->stream[i], HCU_STREAM_NON_BLOCKING);
		if (r != HCU_SUCCESS)
			d->stream[i] = NULL;
	}
	pop();
	if (r != HCU_SUCCESS) {
		cuda_close(&d->base);
		return cu_fail(index, "cuStreamCreate", r);
	}
	/* Read-only registration (copies straight from the page cache) is a property of
	 * the GPU and driver; where absent, cuMemHostRegister refuses the flag. */
	int ro = 0;
	d->base.registers = drv.api.device_get_attribute(
	                            &ro, HCU_DEVICE_ATTRIBUTE_READ_ONLY_HOST_REGISTER_SUPPORTED,
	                            dev) == HCU_SUCCESS &&
	                    ro == 1;
	*out = &d->base;
	return HOIST_OK;
}

/* Waits for hoist's copies, destroys what the GPU holds for hoist and releases the
 * primary context, even where the context cannot be made current (its release then
 * takes the streams with it, as the driver does when the last reference goes). */
static void cuda_close(struct hoist__dev *dev)
{
	struct cuda_dev *d = (struct cuda_dev *)dev;
	if (!d)
		return;
	if (enter_quiet(d)) {
		wait_streams(d);
		for (int i = 0; i < CUDA_STREAMS; i++)
			if (d->stream[i])
				drv.api.stream_destroy(d->stream[i]);
		for (int i = 0; i < 2; i++)
			if (d->bounce_ev[i])
				drv.api.event_destroy(d->bounce_ev[i]);
		if (d->bounce)
			drv.api.mem_free_host(d->bounce);
		pop();
	}
	release(ordinal_of(d));
	hoist__free(d);
}

static enum hoist_status cuda_alloc(struct hoist__dev *dev, uint64_t size, uint64_t *addr)
{
	struct cuda_dev *d = (struct cuda_dev *)dev;
	hcu_deviceptr p = 0;
	char b1[32], b2[32];
	if (size > SIZE_MAX)
		return hoist__error(HOIST_ERR_NO_SPACE, "cuda:%d: an arena of %s is too large",
		                    ordinal_of(d), hoist_bytes_format(size, b1, sizeof b1));
	enum hoist_status st = enter(d);
	if (st != HOIST_OK)
		return st;
	hcu_result r = drv.api.mem_alloc(&p, (size_t)(size ? size : 1));
	size_t free_b = 0, total_b = 0;
	if (r == HCU_ERROR_OUT_OF_MEMORY)
		drv.api.mem_get_info(&free_b, &total_b);
	pop();
	if (r == HCU_ERROR_OUT_OF_MEMORY)
		return hoist__error(HOIST_ERR_NO_SPACE,
		                    "cuda:%d: out of device memory: cuMemAlloc_v2(%s): %s (error "
		                    "%d); %s free now",
		                    ordinal_of(d), hoist_bytes_format(size, b1, sizeof b1),
		                    err_name(r), (int)r, hoist_bytes_format(free_b, b2, sizeof b2));
	if (r != HCU_SUCCESS)
		return hoist__error(HOIST_ERR_DEVICE, "cuda:%d: cuMemAlloc_v2(%s): %s (error %d)",
		                    ordinal_of(d), hoist_bytes_format(size, b1, sizeof b1),
		                    err_name(r), (int)r);
	*addr = p;
	return HOIST_OK;
}

/* Frees wait for hoist's copies first: the driver need not (and a free under a copy
 * in flight is a use after free on the GPU). */
static void cuda_free(struct hoist__dev *dev, uint64_t addr, uint64_t size)
{
	struct cuda_dev *d = (struct cuda_dev *)dev;
	(void)size;
	if (d && addr && enter_quiet(d)) {
		wait_streams(d);
		drv.api.mem_free((hcu_deviceptr)addr);
		pop();
	}
}

static enum hoist_status cuda_host_alloc(struct hoist__dev *dev, size_t size, void **p,
                                         const char **how)
{
	struct cuda_dev *d = (struct cuda_dev *)dev;
	*how = "pinned by cuMemHostAlloc";
	*p = NULL;
	enum hoist_status st = enter(d);
	if (st != HOIST_OK)
		return st;
	/* Portable: every GPU's context may copy from it (one ring feeds all GPUs). */
	hcu_result r = drv.api.mem_host_alloc(p, size, HCU_MEMHOSTALLOC_PORTABLE);
	pop();
	if (r != HCU_SUCCESS) {
		char b[32];
		*p = NULL;
		st = cu_fail(ordinal_of(d), "cuMemHostAlloc", r);
		hoist__error_prefix("pinning %s of host memory",
		                    hoist_bytes_format(size, b, sizeof b));
	}
	return st;
}

static void cuda_host_free(struct hoist__dev *dev, void *p, size_t size)
{
	struct cuda_dev *d = (struct cuda_dev *)dev;
	(void)size;
	if (p && enter_quiet(d)) {
		wait_streams(d);
		drv.api.mem_free_host(p);
		pop();
	}
}

/* ---- the copy engine -------------------------------------------------------------- */

static enum hoist_status cuda_event_create(struct hoist__dev *dev, struct hoist__event **out)
{
	struct cuda_dev *d = (struct cuda_dev *)dev;
	*out = NULL;
	struct cuda_event *e = hoist__calloc(1, sizeof *e);
	if (!e)
		return hoist__error(HOIST_ERR_NOMEM, "cuda:%d: out of memory", ordinal_of(d));
	enum hoist_status st = enter(d);
	if (st == HOIST_OK) {
		/* Blocking sync: a thread waiting in cuEventSynchronize sleeps instead of
		 * spinning on a core the readers need. */
		hcu_result r = drv.api.event_create(&e->ev, HCU_EVENT_DISABLE_TIMING |
		                                                    HCU_EVENT_BLOCKING_SYNC);
		pop();
		if (r != HCU_SUCCESS)
			st = cu_fail(ordinal_of(d), "cuEventCreate", r);
	}
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
	if (enter_quiet((struct cuda_dev *)dev)) {
		drv.api.event_destroy(e->ev);
		pop();
	}
	hoist__free(e);
}

static enum hoist_status cuda_copy_async(struct hoist__dev *dev, unsigned stream, uint64_t dst,
                                         const void *src, size_t n)
{
	struct cuda_dev *d = (struct cuda_dev *)dev;
	enum hoist_status st = enter(d);
	if (st != HOIST_OK)
		return st;
	hcu_result r = drv.api.memcpy_htod_async((hcu_deviceptr)dst, src, n,
	                                         d->stream[stream % CUDA_STREAMS]);
	pop();
	return r == HCU_SUCCESS ? HOIST_OK : cu_fail(ordinal_of(d), "cuMemcpyHtoDAsync_v2", r);
}

static enum hoist_status cuda_event_record(struct hoist__dev *dev, struct hoist__event *ev,
                                           unsigned stream)
{
	struct cuda_dev *d = (struct cuda_dev *)dev;
	struct cuda_event *e = (struct cuda_event *)ev;
	enum hoist_status st = enter(d);
	if (st != HOIST_OK)
		return st;
	hcu_result r = drv.api.event_record(e->ev, d->stream[stream % CUDA_STREAMS]);
	pop();
	return r == HCU_SUCCESS ? HOIST_OK : cu_fail(ordinal_of(d), "cuEventRecord", r);
}

/* timeout_s > 0: cuEventSynchronize, which sleeps (a blocking-sync event) until the
 * copies before the event are done: they are in flight, so the wait is theirs, never
 * open-ended (the timeout is not kept to the letter). timeout_s <= 0: cuEventQuery. */
static enum hoist_status cuda_event_wait(struct hoist__dev *dev, struct hoist__event *ev,
                                         double timeout_s, bool *done)
{
	struct cuda_dev *d = (struct cuda_dev *)dev;
	struct cuda_event *e = (struct cuda_event *)ev;
	*done = false;
	enum hoist_status st = enter(d);
	if (st != HOIST_OK)
		return st;
	const char *call = timeout_s > 0 ? "cuEventSynchronize" : "cuEventQuery";
	hcu_result r =
	        timeout_s > 0 ? drv.api.event_synchronize(e->ev) : drv.api.event_query(e->ev);
	pop();
	if (r == HCU_ERROR_NOT_READY)
		return HOIST_OK;
	*done = true;
	return r == HCU_SUCCESS ? HOIST_OK : cu_fail(ordinal_of(d), call, r);
}

static enum hoist_status cuda_synchronize(struct hoist__dev *dev)
{
	struct cuda_dev *d = (struct cuda_dev *)dev;
	enum hoist_status st = enter(d);
	if (st != HOIST_OK)
		return st;
	st = sync_streams(d);
	pop();
	return st;
}

/* Portable, so every GPU's copies may read the window; read-only, since the page
 * cache is mapped PROT_READ. */
static enum hoist_status cuda_host_register(struct hoist__dev *dev, void *p, size_t n)
{
	struct cuda_dev *d = (struct cuda_dev *)dev;
	enum hoist_status st = enter(d);
	if (st != HOIST_OK)
		return st;
	hcu_result r = drv.api.mem_host_register(
	        p, n, HCU_MEMHOSTREGISTER_PORTABLE | HCU_MEMHOSTREGISTER_READ_ONLY);
	pop();
	return r == HCU_SUCCESS ? HOIST_OK : cu_fail(ordinal_of(d), "cuMemHostRegister_v2", r);
}

static void cuda_host_unregister(struct hoist__dev *dev, void *p)
{
	struct cuda_dev *d = (struct cuda_dev *)dev;
	if (enter_quiet(d)) {
		drv.api.mem_host_unregister(p);
		pop();
	}
}

/* ---- synchronous copies, through the pinned bounce buffer ------------------------ */

/* The bounce buffer and its two events (context pushed). */
static enum hoist_status bounce_ready(struct cuda_dev *d)
{
	if (d->bounce)
		return HOIST_OK;
	hcu_result r = HCU_SUCCESS;
	for (int i = 0; i < 2 && r == HCU_SUCCESS; i++)
		if (!d->bounce_ev[i])
			r = drv.api.event_create(&d->bounce_ev[i], HCU_EVENT_DISABLE_TIMING |
			                                                   HCU_EVENT_BLOCKING_SYNC);
	if (r != HCU_SUCCESS)
		return cu_fail(ordinal_of(d), "cuEventCreate", r);
	void *p = NULL;
	r = drv.api.mem_host_alloc(&p, 2 * (size_t)BOUNCE_HALF, 0);
	if (r != HCU_SUCCESS)
		return cu_fail(ordinal_of(d), "cuMemHostAlloc (bounce buffer)", r);
	d->bounce = p;
	return HOIST_OK;
}

/* Device to host: each half is filled by an async copy on stream 0 while the other
 * half is copied out. The streams are synchronized first, so every copy hoist queued
 * before has landed. */
static enum hoist_status cuda_copy_out(struct hoist__dev *dev, void *dst, uint64_t src, size_t n)
{
	struct cuda_dev *d = (struct cuda_dev *)dev;
	unsigned char *out = dst;
	enum hoist_status st = enter(d);
	if (st != HOIST_OK)
		return st;
	if ((st = sync_streams(d)) != HOIST_OK || (st = bounce_ready(d)) != HOIST_OK)
		goto out;
	hcu_result r = HCU_SUCCESS;
	const char *call = "cuMemcpyDtoHAsync_v2";
	size_t issued = 0, done = 0;
	int k = 0;
	while (done < n && r == HCU_SUCCESS) {
		/* keep one piece in flight beyond the one being copied out */
		while (issued < n && issued - done < 2 * (size_t)BOUNCE_HALF && r == HCU_SUCCESS) {
			size_t len = HOIST__MIN((size_t)BOUNCE_HALF, n - issued);
			int h = (int)((issued / BOUNCE_HALF) % 2);
			r = drv.api.memcpy_dtoh_async(d->bounce + (size_t)h * BOUNCE_HALF,
			                              (hcu_deviceptr)(src + issued), len,
			                              d->stream[0]);
			if (r == HCU_SUCCESS)
				r = drv.api.event_record(d->bounce_ev[h], d->stream[0]);
			issued += len;
		}
		if (r != HCU_SUCCESS)
			break;
		size_t len = HOIST__MIN((size_t)BOUNCE_HALF, n - done);
		k = (int)((done / BOUNCE_HALF) % 2);
		call = "cuEventSynchronize";
		r = drv.api.event_synchronize(d->bounce_ev[k]);
		if (r == HCU_SUCCESS)
			memcpy(out + done, d->bounce + (size_t)k * BOUNCE_HALF, len);
		call = "cuMemcpyDtoHAsync_v2";
		done += len;
	}
	if (r != HCU_SUCCESS) {
		wait_streams(d);
		st = cu_fail(ordinal_of(d), call, r);
	}
out:
	pop();
	return st;
}

/* Host to device: each half is filled by memcpy once the copy that last read it has
 * completed, then copied asynchronously on stream 0; the call returns when all landed.
 * The source may be pageable: only the bounce buffer is read by the GPU. */
static enum hoist_status cuda_copy_in(struct hoist__dev *dev, uint64_t dst, const void *src,
                                      size_t n)
{
	struct cuda_dev *d = (struct cuda_dev *)dev;
	const unsigned char *in = src;
	enum hoist_status st = enter(d);
	if (st != HOIST_OK)
		return st;
	if ((st = sync_streams(d)) != HOIST_OK || (st = bounce_ready(d)) != HOIST_OK)
		goto out;
	hcu_result r = HCU_SUCCESS;
	const char *call = "cuMemcpyHtoDAsync_v2";
	bool used[2] = {false, false};
	for (size_t at = 0; at < n && r == HCU_SUCCESS; at += BOUNCE_HALF) {
		size_t len = HOIST__MIN((size_t)BOUNCE_HALF, n - at);
		int h = (int)((at / BOUNCE_HALF) % 2);
		if (used[h]) {
			call = "cuEventSynchronize";
			if ((r = drv.api.event_synchronize(d->bounce_ev[h])) != HCU_SUCCESS)
				break;
		}
		memcpy(d->bounce + (size_t)h * BOUNCE_HALF, in + at, len);
		call = "cuMemcpyHtoDAsync_v2";
		r = drv.api.memcpy_htod_async((hcu_deviceptr)(dst + at),
		                              d->bounce + (size_t)h * BOUNCE_HALF, len,
		                              d->stream[0]);
		if (r == HCU_SUCCESS)
			r = drv.api.event_record(d->bounce_ev[h], d->stream[0]);
		used[h] = true;
	}
	hcu_result s = drv.api.stream_synchronize(d->stream[0]);
	if (r == HCU_SUCCESS && s != HCU_SUCCESS) {
		r = s;
		call = "cuStreamSynchronize";
	}
	if (r != HCU_SUCCESS)
		st = cu_fail(ordinal_of(d), call, r);
out:
	pop();
	return st;
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
        .host_register = cuda_host_register,
        .host_unregister = cuda_host_unregister,
};
