/* fakecuda_selftest.c - the fake CUDA driver's own tests: each rule fires (a violation
 * with the right message and the driver's error code) and each legal pattern counts
 * none. It uses the fake directly, not hoist: the entry points are looked up by their
 * versioned names in the library opened by path (as hoist does), the controls through
 * the library it is linked with, which must be the same copy.
 *
 * Usage: fakecuda_selftest PATH/libcuda.so.1 PATH/libnvidia-ml.so.1 [TEST...]
 * Each test runs in a child process of its own (the driver's state is per process and
 * cuInit's result is final), with a time limit; the last line reads
 * "fakecuda-selftest: N passed, N failed". */
#include "cuda_abi.h"
#include "cuda_results.h"
#include "fakecuda.h"
#include "nvml_abi.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *cuda_path, *nvml_path;
static const char *test_name;

static struct {
	hcu_init_fn init;
	hcu_driver_get_version_fn driver_get_version;
	hcu_get_error_name_fn get_error_name;
	hcu_get_error_string_fn get_error_string;
	hcu_device_get_count_fn device_get_count;
	hcu_device_get_fn device_get;
	hcu_device_get_name_fn device_get_name;
	hcu_device_total_mem_fn device_total_mem;
	hcu_device_get_attribute_fn device_get_attribute;
	hcu_device_get_pci_bus_id_fn device_get_pci_bus_id;
	hcu_primary_ctx_retain_fn primary_ctx_retain;
	hcu_primary_ctx_release_fn primary_ctx_release;
	hcu_ctx_create_fn ctx_create;
	hcu_ctx_create_v4_fn ctx_create_v4;
	hcu_ctx_destroy_fn ctx_destroy;
	hcu_ctx_get_current_fn ctx_get_current;
	hcu_ctx_set_current_fn ctx_set_current;
	hcu_ctx_push_current_fn ctx_push_current;
	hcu_ctx_pop_current_fn ctx_pop_current;
	hcu_ctx_get_device_fn ctx_get_device;
	hcu_ctx_synchronize_fn ctx_synchronize;
	hcu_mem_get_info_fn mem_get_info;
	hcu_mem_alloc_fn mem_alloc;
	hcu_mem_free_fn mem_free;
	hcu_mem_host_alloc_fn mem_host_alloc;
	hcu_mem_free_host_fn mem_free_host;
	hcu_mem_host_register_fn mem_host_register;
	hcu_mem_host_unregister_fn mem_host_unregister;
	hcu_memcpy_htod_fn memcpy_htod;
	hcu_memcpy_htod_async_fn memcpy_htod_async;
	hcu_memcpy_dtoh_fn memcpy_dtoh;
	hcu_memcpy_dtoh_async_fn memcpy_dtoh_async;
	hcu_memset_d8_fn memset_d8;
	hcu_stream_create_fn stream_create;
	hcu_stream_destroy_fn stream_destroy;
	hcu_stream_synchronize_fn stream_synchronize;
	hcu_stream_query_fn stream_query;
	hcu_stream_wait_event_fn stream_wait_event;
	hcu_launch_host_func_fn launch_host_func;
	hcu_event_create_fn event_create;
	hcu_event_destroy_fn event_destroy;
	hcu_event_record_fn event_record;
	hcu_event_query_fn event_query;
	hcu_event_synchronize_fn event_synchronize;
} cu;

static struct {
	hnvml_init_fn init;
	hnvml_shutdown_fn shutdown;
	hnvml_error_string_fn error_string;
	hnvml_device_get_count_fn device_get_count;
	hnvml_device_get_handle_by_index_fn handle_by_index;
	hnvml_device_get_handle_by_pci_bus_id_fn handle_by_pci_bus_id;
	hnvml_device_get_memory_info_fn memory_info;
	hnvml_device_get_name_fn name;
	hnvml_device_get_pci_info_fn pci_info;
} nvml;

/* ---- checks ---- */

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond))                                                                       \
			fail(__LINE__, "%s", #cond);                                               \
	} while (0)

/* A CUresult, by name in the failure message. */
#define CHECK_RC(expr, want)                                                                       \
	do {                                                                                       \
		hcu_result got_ = (expr);                                                          \
		if (got_ != (hcu_result)(want))                                                    \
			fail(__LINE__, "%s returned %d (%s), expected %d (%s)", #expr, (int)got_,  \
			     rc_name(got_), (int)(want), rc_name((hcu_result)(want)));             \
	} while (0)

#define OK(expr) CHECK_RC(expr, HCU_SUCCESS)

static const char *rc_name(hcu_result r)
{
	const char *name = NULL;
	if (cu.get_error_name && cu.get_error_name(r, &name) == HCU_SUCCESS && name)
		return name;
	return "?";
}

static void fail(int line, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));

static void fail(int line, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "fakecuda_selftest.c:%d: %s: ", line, test_name);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

static struct fakecuda_counters counters(void)
{
	struct fakecuda_counters c;
	if (fakecuda_counters_get(&c, sizeof c) != 0)
		fail(__LINE__, "fakecuda_counters_get refused the struct size");
	return c;
}

/* Violations the test has accounted for; any other fails it. */
static unsigned long long seen;

/* Exactly one new violation, whose message contains `what`. */
#define EXPECT_VIOLATION(what) expect_violation(__LINE__, what)

static void expect_violation(int line, const char *what)
{
	struct fakecuda_counters c = counters();
	if (c.violations != seen + 1)
		fail(line, "expected one new violation (\"%s\"), got %llu", what,
		     c.violations - seen);
	if (seen < FAKECUDA_MESSAGES && !strstr(c.messages[seen], what))
		fail(line, "violation \"%s\" does not say \"%s\"", c.messages[seen], what);
	seen++;
}

#define EXPECT_CLEAN() expect_clean(__LINE__)

static void expect_clean(int line)
{
	struct fakecuda_counters c = counters();
	if (c.violations != seen)
		fail(line, "%llu unexpected violation(s), the first: %s", c.violations - seen,
		     seen < FAKECUDA_MESSAGES ? c.messages[seen] : "(not kept)");
}

static void set(const char *name, const char *value)
{
	if (fakecuda_set(name, value) != 0)
		fail(__LINE__, "fakecuda_set(%s, %s) failed", name, value ? value : "NULL");
}

/* ---- set-up ---- */

static void load(void)
{
	void *lib = dlopen(cuda_path, RTLD_NOW | RTLD_LOCAL);
	if (!lib)
		fail(__LINE__, "dlopen %s: %s", cuda_path, dlerror());
	struct {
		const char *name;
		void **slot;
	} syms[] = {
	        {HCU_SYM_INIT, (void **)&cu.init},
	        {HCU_SYM_DRIVER_GET_VERSION, (void **)&cu.driver_get_version},
	        {HCU_SYM_GET_ERROR_NAME, (void **)&cu.get_error_name},
	        {HCU_SYM_GET_ERROR_STRING, (void **)&cu.get_error_string},
	        {HCU_SYM_DEVICE_GET_COUNT, (void **)&cu.device_get_count},
	        {HCU_SYM_DEVICE_GET, (void **)&cu.device_get},
	        {HCU_SYM_DEVICE_GET_NAME, (void **)&cu.device_get_name},
	        {HCU_SYM_DEVICE_TOTAL_MEM, (void **)&cu.device_total_mem},
	        {HCU_SYM_DEVICE_GET_ATTRIBUTE, (void **)&cu.device_get_attribute},
	        {HCU_SYM_DEVICE_GET_PCI_BUS_ID, (void **)&cu.device_get_pci_bus_id},
	        {HCU_SYM_PRIMARY_CTX_RETAIN, (void **)&cu.primary_ctx_retain},
	        {HCU_SYM_PRIMARY_CTX_RELEASE, (void **)&cu.primary_ctx_release},
	        {HCU_SYM_CTX_CREATE, (void **)&cu.ctx_create},
	        {HCU_SYM_CTX_CREATE_V4, (void **)&cu.ctx_create_v4},
	        {HCU_SYM_CTX_DESTROY, (void **)&cu.ctx_destroy},
	        {HCU_SYM_CTX_GET_CURRENT, (void **)&cu.ctx_get_current},
	        {HCU_SYM_CTX_SET_CURRENT, (void **)&cu.ctx_set_current},
	        {HCU_SYM_CTX_PUSH_CURRENT, (void **)&cu.ctx_push_current},
	        {HCU_SYM_CTX_POP_CURRENT, (void **)&cu.ctx_pop_current},
	        {HCU_SYM_CTX_GET_DEVICE, (void **)&cu.ctx_get_device},
	        {HCU_SYM_CTX_SYNCHRONIZE, (void **)&cu.ctx_synchronize},
	        {HCU_SYM_MEM_GET_INFO, (void **)&cu.mem_get_info},
	        {HCU_SYM_MEM_ALLOC, (void **)&cu.mem_alloc},
	        {HCU_SYM_MEM_FREE, (void **)&cu.mem_free},
	        {HCU_SYM_MEM_HOST_ALLOC, (void **)&cu.mem_host_alloc},
	        {HCU_SYM_MEM_FREE_HOST, (void **)&cu.mem_free_host},
	        {HCU_SYM_MEM_HOST_REGISTER, (void **)&cu.mem_host_register},
	        {HCU_SYM_MEM_HOST_UNREGISTER, (void **)&cu.mem_host_unregister},
	        {HCU_SYM_MEMCPY_HTOD, (void **)&cu.memcpy_htod},
	        {HCU_SYM_MEMCPY_HTOD_ASYNC, (void **)&cu.memcpy_htod_async},
	        {HCU_SYM_MEMCPY_DTOH, (void **)&cu.memcpy_dtoh},
	        {HCU_SYM_MEMCPY_DTOH_ASYNC, (void **)&cu.memcpy_dtoh_async},
	        {HCU_SYM_MEMSET_D8, (void **)&cu.memset_d8},
	        {HCU_SYM_STREAM_CREATE, (void **)&cu.stream_create},
	        {HCU_SYM_STREAM_DESTROY, (void **)&cu.stream_destroy},
	        {HCU_SYM_STREAM_SYNCHRONIZE, (void **)&cu.stream_synchronize},
	        {HCU_SYM_STREAM_QUERY, (void **)&cu.stream_query},
	        {HCU_SYM_STREAM_WAIT_EVENT, (void **)&cu.stream_wait_event},
	        {HCU_SYM_LAUNCH_HOST_FUNC, (void **)&cu.launch_host_func},
	        {HCU_SYM_EVENT_CREATE, (void **)&cu.event_create},
	        {HCU_SYM_EVENT_DESTROY, (void **)&cu.event_destroy},
	        {HCU_SYM_EVENT_RECORD, (void **)&cu.event_record},
	        {HCU_SYM_EVENT_QUERY, (void **)&cu.event_query},
	        {HCU_SYM_EVENT_SYNCHRONIZE, (void **)&cu.event_synchronize},
	};
	for (size_t i = 0; i < sizeof syms / sizeof syms[0]; i++) {
		*syms[i].slot = dlsym(lib, syms[i].name);
		if (!*syms[i].slot)
			fail(__LINE__, "%s does not export %s", cuda_path, syms[i].name);
	}
	void *nlib = dlopen(nvml_path, RTLD_NOW | RTLD_LOCAL);
	if (!nlib)
		fail(__LINE__, "dlopen %s: %s", nvml_path, dlerror());
	struct {
		const char *name;
		void **slot;
	} nsyms[] = {
	        {HNVML_SYM_INIT, (void **)&nvml.init},
	        {HNVML_SYM_SHUTDOWN, (void **)&nvml.shutdown},
	        {HNVML_SYM_ERROR_STRING, (void **)&nvml.error_string},
	        {HNVML_SYM_DEVICE_GET_COUNT, (void **)&nvml.device_get_count},
	        {HNVML_SYM_DEVICE_GET_HANDLE_BY_INDEX, (void **)&nvml.handle_by_index},
	        {HNVML_SYM_DEVICE_GET_HANDLE_BY_PCI_BUS_ID, (void **)&nvml.handle_by_pci_bus_id},
	        {HNVML_SYM_DEVICE_GET_MEMORY_INFO, (void **)&nvml.memory_info},
	        {HNVML_SYM_DEVICE_GET_NAME, (void **)&nvml.name},
	        {HNVML_SYM_DEVICE_GET_PCI_INFO, (void **)&nvml.pci_info},
	};
	for (size_t i = 0; i < sizeof nsyms / sizeof nsyms[0]; i++) {
		*nsyms[i].slot = dlsym(nlib, nsyms[i].name);
		if (!*nsyms[i].slot)
			fail(__LINE__, "%s does not export %s", nvml_path, nsyms[i].name);
	}
	set("FAKECUDA_QUIET", "1");
}

/* cuInit, then device `dev`'s primary context made current; returns it. */
static hcu_context start(int dev)
{
	hcu_context ctx;
	OK(cu.init(0));
	OK(cu.primary_ctx_retain(&ctx, dev));
	OK(cu.ctx_set_current(ctx));
	return ctx;
}

static void fill(void *p, size_t n, unsigned seed)
{
	unsigned char *b = p;
	for (size_t i = 0; i < n; i++)
		b[i] = (unsigned char)(seed * 131 + i * 7 + (i >> 8));
}

static bool filled(const void *p, size_t n, unsigned seed)
{
	const unsigned char *b = p;
	for (size_t i = 0; i < n; i++)
		if (b[i] != (unsigned char)(seed * 131 + i * 7 + (i >> 8)))
			return false;
	return true;
}

static bool device_holds(hcu_deviceptr d, size_t n, unsigned seed)
{
	unsigned char *b = malloc(n);
	CHECK(b);
	CHECK(fakecuda_device_read(d, b, n) == 0);
	bool ok = filled(b, n, seed);
	free(b);
	return ok;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
	nanosleep(&ts, NULL);
}

/* A host function that holds its stream until the test opens it: work queued behind
 * it has certainly not run before gate_open(). */
struct gate {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool open;
	int passed;
};

static void gate_init(struct gate *g)
{
	pthread_mutex_init(&g->lock, NULL);
	pthread_cond_init(&g->cond, NULL);
	g->open = false;
	g->passed = 0;
}

static void gate_fn(void *arg)
{
	struct gate *g = arg;
	pthread_mutex_lock(&g->lock);
	while (!g->open)
		pthread_cond_wait(&g->cond, &g->lock);
	g->passed++;
	pthread_mutex_unlock(&g->lock);
}

static void gate_open(struct gate *g)
{
	pthread_mutex_lock(&g->lock);
	g->open = true;
	pthread_cond_broadcast(&g->cond);
	pthread_mutex_unlock(&g->lock);
}

static int gate_passed(struct gate *g)
{
	pthread_mutex_lock(&g->lock);
	int n = g->passed;
	pthread_mutex_unlock(&g->lock);
	return n;
}

/* Opens the gate once the violation count passes `after` (a call that blocks in the
 * driver after counting one, until the gated work is done). */
struct opener {
	struct gate *gate;
	unsigned long long after;
	pthread_t thread;
};

static void *opener_main(void *arg)
{
	struct opener *o = arg;
	for (int i = 0; i < 20000 && fakecuda_violations() <= o->after; i++)
		sleep_ms(1);
	gate_open(o->gate);
	return NULL;
}

static void opener_start(struct opener *o, struct gate *g)
{
	o->gate = g;
	o->after = fakecuda_violations();
	CHECK(pthread_create(&o->thread, NULL, opener_main, o) == 0);
}

static void opener_join(struct opener *o)
{
	pthread_join(o->thread, NULL);
}

/* ---- the tests ---- */

static void test_exports_and_loader(void)
{
	struct fakecuda_api api;
	CHECK(fakecuda_load(cuda_path, &api) == 0);
	/* The same copy as the one linked: one state. */
	CHECK(api.counters_get == fakecuda_counters_get);
	CHECK(api.set == fakecuda_set);
	CHECK(api.version() == FAKECUDA_API_VERSION);
	struct fakecuda_counters c;
	CHECK(fakecuda_counters_get(&c, sizeof c - 1) == -1);
	CHECK(fakecuda_set("FAKECUDA_NO_SUCH_KNOB", "1") == -1);
	CHECK(fakecuda_set("FAKECUDA_DEVICES", "many") == -1);
	int v = 0;
	OK(cu.driver_get_version(&v)); /* allowed before cuInit, and fixes no knob */
	CHECK(v == 13000);
	CHECK(fakecuda_set("FAKECUDA_DEVICES", "2") == 0);
	EXPECT_CLEAN();
}

static void test_init_first(void)
{
	int n;
	CHECK_RC(cu.device_get_count(&n), HCU_ERROR_NOT_INITIALIZED);
	EXPECT_VIOLATION("cuDeviceGetCount: called before cuInit");
	CHECK_RC(cu.init(1), HCU_ERROR_INVALID_VALUE);
	EXPECT_VIOLATION("flags 0x1");
	OK(cu.init(0));
	OK(cu.device_get_count(&n));
	CHECK(n == 1);
	EXPECT_CLEAN();
}

static void test_init_result_802(void)
{
	set("FAKECUDA_INIT_RESULT", "802");
	CHECK_RC(cu.init(0), HCU_ERROR_SYSTEM_NOT_READY);
	CHECK_RC(cu.init(0), HCU_ERROR_SYSTEM_NOT_READY); /* final for the process */
	const char *name = NULL;
	OK(cu.get_error_name(HCU_ERROR_SYSTEM_NOT_READY, &name));
	CHECK(name && strcmp(name, "CUDA_ERROR_SYSTEM_NOT_READY") == 0);
	int n;
	CHECK_RC(cu.device_get_count(&n), HCU_ERROR_NOT_INITIALIZED);
	EXPECT_VIOLATION("after cuInit failed (CUDA_ERROR_SYSTEM_NOT_READY)");
	EXPECT_CLEAN();
}

static void test_init_result_by_name(void)
{
	set("FAKECUDA_INIT_RESULT", "CUDA_ERROR_UNKNOWN");
	CHECK_RC(cu.init(0), HCU_ERROR_UNKNOWN);
	EXPECT_CLEAN();
}

static void test_no_device(void)
{
	set("FAKECUDA_DEVICES", "0");
	CHECK_RC(cu.init(0), HCU_ERROR_NO_DEVICE);
	const char *name = NULL;
	OK(cu.get_error_name(HCU_ERROR_NO_DEVICE, &name));
	CHECK(strcmp(name, "CUDA_ERROR_NO_DEVICE") == 0);
	EXPECT_CLEAN();
}

static void test_error_names(void)
{
	static const struct {
		int code;
		const char *name;
	} all[] = {
#define NAME_ENTRY(name, value, text) {value, "CUDA_" #name},
	        FAKECUDA_RESULTS(NAME_ENTRY)
#undef NAME_ENTRY
	};
	for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
		const char *name = NULL, *text = NULL;
		OK(cu.get_error_name(all[i].code, &name));
		OK(cu.get_error_string(all[i].code, &text));
		CHECK(name && strcmp(name, all[i].name) == 0);
		CHECK(text && *text);
	}
	const char *name = "x";
	CHECK_RC(cu.get_error_name(12345, &name), HCU_ERROR_INVALID_VALUE);
	CHECK(name == NULL);
	EXPECT_CLEAN();
}

static void test_devices_and_attributes(void)
{
	set("FAKECUDA_DEVICES", "2");
	set("FAKECUDA_MEMORY", "4G,8G");
	set("FAKECUDA_PCI_BUS_IDS", "0000:1b:00.0,0001:c3:00.0");
	set("FAKECUDA_READ_ONLY_REGISTER", "0");
	OK(cu.init(0));
	int n;
	OK(cu.device_get_count(&n));
	CHECK(n == 2);
	hcu_device d;
	OK(cu.device_get(&d, 1));
	CHECK(d == 1);
	CHECK_RC(cu.device_get(&d, 2), HCU_ERROR_INVALID_DEVICE);
	EXPECT_VIOLATION("device 2 does not exist");
	char name[64];
	OK(cu.device_get_name(name, sizeof name, 0));
	CHECK(strcmp(name, "Fake H200") == 0);
	size_t total;
	OK(cu.device_total_mem(&total, 1));
	CHECK(total == 8ull << 30);
	char bus[16];
	OK(cu.device_get_pci_bus_id(bus, sizeof bus, 1));
	CHECK(strcmp(bus, "0001:C3:00.0") == 0);
	int v;
	OK(cu.device_get_attribute(&v, HCU_DEVICE_ATTRIBUTE_PCI_BUS_ID, 1));
	CHECK(v == 0xc3);
	OK(cu.device_get_attribute(&v, HCU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID, 1));
	CHECK(v == 1);
	OK(cu.device_get_attribute(&v, HCU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID, 0));
	CHECK(v == 0);
	OK(cu.device_get_attribute(&v, HCU_DEVICE_ATTRIBUTE_READ_ONLY_HOST_REGISTER_SUPPORTED, 0));
	CHECK(v == 0);
	OK(cu.device_get_attribute(&v, HCU_DEVICE_ATTRIBUTE_CAN_USE_HOST_POINTER_FOR_REGISTERED_MEM,
	                           0));
	CHECK(v == 1);
	OK(cu.device_get_attribute(&v, HCU_DEVICE_ATTRIBUTE_ASYNC_ENGINE_COUNT, 0));
	CHECK(v == 2);
	OK(cu.device_get_attribute(&v, HCU_DEVICE_ATTRIBUTE_UNIFIED_ADDRESSING, 0));
	CHECK(v == 1);
	/* Listing devices created no context. */
	struct fakecuda_counters c = counters();
	CHECK(c.devices == 2);
	CHECK(c.device[0].contexts_created == 0 && c.device[1].contexts_created == 0);
	CHECK(c.device[1].memory_used_now == 0);
	/* Device knobs are read once. */
	CHECK(fakecuda_set("FAKECUDA_DEVICES", "3") == -2);
	EXPECT_CLEAN();
}

static int alloc_result;
static void *alloc_without_context(void *arg)
{
	hcu_deviceptr *p = arg;
	alloc_result = cu.mem_alloc(p, 4096);
	return NULL;
}

static void test_context_per_thread(void)
{
	hcu_context ctx = start(0);
	hcu_deviceptr p;
	OK(cu.mem_alloc(&p, 4096));
	OK(cu.mem_free(p));
	/* The context is current on this thread only. */
	pthread_t t;
	CHECK(pthread_create(&t, NULL, alloc_without_context, &p) == 0);
	pthread_join(t, NULL);
	CHECK_RC(alloc_result, HCU_ERROR_INVALID_CONTEXT);
	EXPECT_VIOLATION("no context is current on this thread");
	OK(cu.ctx_set_current(NULL));
	CHECK_RC(cu.mem_alloc(&p, 4096), HCU_ERROR_INVALID_CONTEXT);
	EXPECT_VIOLATION("cuMemAlloc_v2: no context is current");
	OK(cu.ctx_set_current(ctx));
	hcu_device d = -1;
	OK(cu.ctx_get_device(&d));
	CHECK(d == 0);
	OK(cu.primary_ctx_release(0));
	EXPECT_CLEAN();
}

static void test_context_costs_memory(void)
{
	set("FAKECUDA_MEMORY", "1G");
	set("FAKECUDA_CONTEXT_MEMORY", "100M");
	OK(cu.init(0));
	struct fakecuda_counters c = counters();
	CHECK(c.device[0].memory_used_now == 0);
	hcu_context ctx;
	OK(cu.primary_ctx_retain(&ctx, 0));
	hcu_context again;
	OK(cu.primary_ctx_retain(&again, 0)); /* the same primary context */
	CHECK(again == ctx);
	OK(cu.ctx_set_current(ctx));
	size_t free_b, total_b;
	OK(cu.mem_get_info(&free_b, &total_b));
	CHECK(total_b == 1ull << 30);
	CHECK(free_b == (1ull << 30) - (100ull << 20));
	hcu_deviceptr p;
	OK(cu.mem_alloc(&p, 5ull << 20)); /* 6 MiB in 2 MiB pages */
	OK(cu.mem_get_info(&free_b, &total_b));
	CHECK(free_b == (1ull << 30) - (106ull << 20));
	hcu_deviceptr q;
	CHECK_RC(cu.mem_alloc(&q, 1ull << 30), HCU_ERROR_OUT_OF_MEMORY);
	CHECK_RC(cu.mem_alloc(&q, 0), HCU_ERROR_INVALID_VALUE);
	EXPECT_VIOLATION("0 bytes");
	OK(cu.mem_free(p));
	c = counters();
	CHECK(c.device[0].contexts_now == 1 && c.device[0].contexts_created == 1);
	CHECK(c.device[0].primary_retains_now == 2 && c.device[0].primary_retains == 2);
	OK(cu.primary_ctx_release(0));
	OK(cu.primary_ctx_release(0));
	c = counters();
	CHECK(c.device[0].contexts_now == 0 && c.device[0].memory_used_now == 0);
	CHECK_RC(cu.primary_ctx_release(0), HCU_ERROR_INVALID_CONTEXT);
	EXPECT_VIOLATION("is not retained");
	/* Released to no reference, the context is gone for this thread too. */
	CHECK_RC(cu.mem_alloc(&p, 4096), HCU_ERROR_CONTEXT_IS_DESTROYED);
	EXPECT_VIOLATION("was destroyed");
	CHECK_RC(cu.ctx_set_current(ctx), HCU_ERROR_INVALID_CONTEXT);
	EXPECT_VIOLATION("released to no reference");
	/* Retained again: a new life for the same handle. */
	OK(cu.primary_ctx_retain(&again, 0));
	CHECK(again == ctx);
	OK(cu.ctx_set_current(ctx));
	c = counters();
	CHECK(c.device[0].contexts_created == 2);
	OK(cu.primary_ctx_release(0));
	EXPECT_CLEAN();
}

static void test_created_contexts_and_stack(void)
{
	hcu_context primary = start(0);
	hcu_context mine, cur, popped;
	OK(cu.ctx_create(&mine, 0, 0));
	OK(cu.ctx_get_current(&cur));
	CHECK(cur == mine && mine != primary); /* pushed */
	OK(cu.ctx_pop_current(&popped));
	CHECK(popped == mine);
	OK(cu.ctx_get_current(&cur));
	CHECK(cur == primary);
	OK(cu.ctx_push_current(mine));
	hcu_deviceptr p;
	OK(cu.mem_alloc(&p, 4096));
	OK(cu.ctx_destroy(mine)); /* pops it, frees its memory */
	OK(cu.ctx_get_current(&cur));
	CHECK(cur == primary);
	struct fakecuda_counters c = counters();
	CHECK(c.device[0].allocations_now == 0);
	CHECK(c.device[0].contexts_now == 1 && c.device[0].contexts_created == 2);
	CHECK_RC(cu.ctx_push_current(mine), HCU_ERROR_INVALID_CONTEXT);
	EXPECT_VIOLATION("context that was destroyed");
	CHECK_RC(cu.ctx_destroy(primary), HCU_ERROR_INVALID_CONTEXT);
	EXPECT_VIOLATION("cuDevicePrimaryCtxRelease_v2");
	/* A destroyed context left current. */
	hcu_context v4;
	OK(cu.ctx_create_v4(&v4, NULL, 0, 0));
	OK(cu.ctx_set_current(NULL)); /* pops v4 */
	OK(cu.ctx_set_current(NULL)); /* pops the primary one */
	CHECK_RC(cu.ctx_pop_current(&popped), HCU_ERROR_INVALID_CONTEXT);
	EXPECT_VIOLATION("context stack is empty");
	OK(cu.ctx_push_current(v4));
	OK(cu.ctx_push_current(primary));
	OK(cu.ctx_destroy(v4)); /* not the top: stays on the stack */
	OK(cu.ctx_pop_current(&popped));
	CHECK(popped == primary);
	CHECK_RC(cu.mem_alloc(&p, 4096), HCU_ERROR_CONTEXT_IS_DESTROYED);
	EXPECT_VIOLATION("was destroyed");
	OK(cu.ctx_set_current(primary));
	OK(cu.primary_ctx_release(0));
	EXPECT_CLEAN();
}

static void test_objects_belong_to_their_context(void)
{
	set("FAKECUDA_DEVICES", "2");
	hcu_context a = start(0);
	hcu_stream s;
	hcu_event ev;
	hcu_deviceptr p;
	void *host;
	OK(cu.stream_create(&s, HCU_STREAM_NON_BLOCKING));
	OK(cu.event_create(&ev, HCU_EVENT_DISABLE_TIMING));
	OK(cu.mem_alloc(&p, 1 << 20));
	OK(cu.mem_host_alloc(&host, 1 << 20, HCU_MEMHOSTALLOC_PORTABLE));
	hcu_context b;
	OK(cu.primary_ctx_retain(&b, 1));
	OK(cu.ctx_set_current(b));
	CHECK_RC(cu.memcpy_htod_async(p, host, 4096, s), HCU_ERROR_INVALID_HANDLE);
	EXPECT_VIOLATION("stream 0x");
	EXPECT_CLEAN();
	CHECK(strstr(counters().messages[0], "belongs to context"));
	CHECK_RC(cu.memcpy_htod_async(p, host, 4096, NULL), HCU_ERROR_INVALID_VALUE);
	EXPECT_VIOLATION("allocation 0x");
	CHECK_RC(cu.event_record(ev, NULL), HCU_ERROR_INVALID_HANDLE);
	EXPECT_VIOLATION("event 0x");
	CHECK_RC(cu.event_query(ev), HCU_ERROR_INVALID_HANDLE);
	EXPECT_VIOLATION("belongs to context");
	CHECK_RC(cu.stream_synchronize(s), HCU_ERROR_INVALID_HANDLE);
	EXPECT_VIOLATION("belongs to context");
	CHECK_RC(cu.mem_free(p), HCU_ERROR_INVALID_VALUE);
	EXPECT_VIOLATION("belongs to context");
	/* A wait on another context's event is legal. */
	hcu_stream sb;
	OK(cu.stream_create(&sb, HCU_STREAM_NON_BLOCKING));
	OK(cu.ctx_set_current(a));
	OK(cu.event_record(ev, s));
	OK(cu.ctx_set_current(b));
	OK(cu.stream_wait_event(sb, ev, 0));
	OK(cu.stream_synchronize(sb));
	OK(cu.stream_destroy(sb));
	OK(cu.ctx_set_current(a));
	OK(cu.stream_destroy(s));
	OK(cu.event_destroy(ev));
	OK(cu.mem_free(p));
	OK(cu.mem_free_host(host));
	OK(cu.primary_ctx_release(1));
	OK(cu.primary_ctx_release(0));
	CHECK(fakecuda_check_leaks() == 0);
	EXPECT_CLEAN();
}

static void test_dead_handles(void)
{
	start(0);
	hcu_stream s;
	hcu_event ev;
	hcu_deviceptr p;
	char buf[64] = {0};
	OK(cu.stream_create(&s, 0));
	OK(cu.event_create(&ev, 0));
	OK(cu.mem_alloc(&p, 4096));
	OK(cu.stream_destroy(s));
	CHECK_RC(cu.memcpy_htod_async(p, buf, sizeof buf, s), HCU_ERROR_INVALID_HANDLE);
	EXPECT_VIOLATION("is a stream that was destroyed");
	CHECK_RC(cu.stream_query((hcu_stream)(void *)ev), HCU_ERROR_INVALID_HANDLE);
	EXPECT_VIOLATION("is an event handle, not a stream");
	CHECK_RC(cu.stream_query((hcu_stream)(void *)buf), HCU_ERROR_INVALID_HANDLE);
	EXPECT_VIOLATION("is not a stream handle");
	OK(cu.event_destroy(ev));
	CHECK_RC(cu.event_synchronize(ev), HCU_ERROR_INVALID_HANDLE);
	EXPECT_VIOLATION("is an event that was destroyed");
	CHECK_RC(cu.stream_destroy(NULL), HCU_ERROR_INVALID_HANDLE);
	EXPECT_VIOLATION("cannot be destroyed");
	OK(cu.mem_free(p));
	CHECK_RC(cu.mem_free(p), HCU_ERROR_INVALID_VALUE);
	EXPECT_VIOLATION("is not a live allocation");
	OK(cu.primary_ctx_release(0));
	EXPECT_CLEAN();
}

/* A reused staging buffer: reads happen when a copy completes. */
static void test_copy_reads_source_at_completion(void)
{
	start(0);
	enum { N = 1 << 16 };
	hcu_stream s;
	hcu_event ev;
	hcu_deviceptr d;
	unsigned char *stage;
	OK(cu.stream_create(&s, HCU_STREAM_NON_BLOCKING));
	OK(cu.event_create(&ev, HCU_EVENT_DISABLE_TIMING));
	OK(cu.mem_alloc(&d, 2 * N));
	OK(cu.mem_host_alloc((void **)&stage, N, HCU_MEMHOSTALLOC_PORTABLE));

	/* Legal: reuse after the event says the copy is done. */
	fill(stage, N, 1);
	OK(cu.memcpy_htod_async(d, stage, N, s));
	OK(cu.event_record(ev, s));
	OK(cu.event_synchronize(ev));
	OK(cu.event_query(ev));
	fill(stage, N, 2);
	OK(cu.memcpy_htod_async(d + N, stage, N, s));
	OK(cu.stream_synchronize(s));
	CHECK(device_holds(d, N, 1));
	CHECK(device_holds(d + N, N, 2));
	EXPECT_CLEAN();

	/* Wrong: reused while the copy is queued; the NEW bytes land. No violation (the
	 * driver cannot see it), but a byte check does. */
	struct gate g;
	gate_init(&g);
	fill(stage, N, 3);
	OK(cu.launch_host_func(s, gate_fn, &g));
	OK(cu.memcpy_htod_async(d, stage, N, s));
	OK(cu.event_record(ev, s));
	CHECK_RC(cu.event_query(ev), HCU_ERROR_NOT_READY);
	CHECK_RC(cu.stream_query(s), HCU_ERROR_NOT_READY);
	fill(stage, N, 4);
	gate_open(&g);
	OK(cu.event_synchronize(ev));
	CHECK(device_holds(d, N, 4));
	CHECK(!device_holds(d, N, 3));

	/* Read back through the driver too. */
	unsigned char *back = malloc(N);
	CHECK(back);
	OK(cu.memcpy_dtoh(back, d, N));
	CHECK(filled(back, N, 4));
	free(back);
	OK(cu.stream_destroy(s));
	OK(cu.event_destroy(ev));
	OK(cu.mem_free_host(stage));
	OK(cu.mem_free(d));
	OK(cu.primary_ctx_release(0));
	struct fakecuda_counters c = counters();
	CHECK(c.async_copies == 3 && c.pageable_async_copies == 0 && c.sync_copies == 1);
	CHECK(c.device[0].bytes_to_device == 3 * N && c.device[0].bytes_from_device == N);
	EXPECT_CLEAN();
}

static void test_free_host_under_copy(void)
{
	start(0);
	enum { N = 1 << 16 };
	hcu_stream s;
	hcu_deviceptr d;
	void *stage;
	OK(cu.stream_create(&s, HCU_STREAM_NON_BLOCKING));
	OK(cu.mem_alloc(&d, N));
	OK(cu.mem_host_alloc(&stage, N, 0));
	struct gate g;
	gate_init(&g);
	OK(cu.launch_host_func(s, gate_fn, &g));
	OK(cu.memcpy_htod_async(d, stage, N, s));
	struct opener o;
	opener_start(&o, &g);
	OK(cu.mem_free_host(stage)); /* counts, then waits for the copy */
	opener_join(&o);
	EXPECT_VIOLATION("cuMemFreeHost: frees host memory");
	CHECK(strstr(counters().messages[0], "unfinished cuMemcpyHtoDAsync_v2 still reads"));
	OK(cu.stream_synchronize(s));
	OK(cu.stream_destroy(s));
	OK(cu.mem_free(d));
	OK(cu.primary_ctx_release(0));
	EXPECT_CLEAN();
}

static void test_unregister_under_copy(void)
{
	start(0);
	enum { N = 1 << 16 };
	hcu_stream s;
	hcu_deviceptr d;
	void *buf = aligned_alloc(4096, N);
	CHECK(buf);
	OK(cu.stream_create(&s, HCU_STREAM_NON_BLOCKING));
	OK(cu.mem_alloc(&d, N));
	OK(cu.mem_host_register(buf, N, HCU_MEMHOSTREGISTER_PORTABLE));
	struct gate g;
	gate_init(&g);
	OK(cu.launch_host_func(s, gate_fn, &g));
	OK(cu.memcpy_dtoh_async(buf, d, N, s));
	struct opener o;
	opener_start(&o, &g);
	OK(cu.mem_host_unregister(buf));
	opener_join(&o);
	EXPECT_VIOLATION("unregisters host memory");
	CHECK(strstr(counters().messages[0], "unfinished cuMemcpyDtoHAsync_v2 still writes"));
	OK(cu.stream_destroy(s));
	OK(cu.mem_free(d));
	free(buf);
	OK(cu.primary_ctx_release(0));
	CHECK(counters().pageable_async_copies == 0);
	EXPECT_CLEAN();
}

static void test_free_device_under_copy(void)
{
	start(0);
	enum { N = 1 << 16 };
	hcu_stream s;
	hcu_deviceptr d;
	void *stage;
	OK(cu.stream_create(&s, HCU_STREAM_NON_BLOCKING));
	OK(cu.mem_alloc(&d, N));
	OK(cu.mem_host_alloc(&stage, N, 0));
	struct gate g;
	gate_init(&g);
	OK(cu.launch_host_func(s, gate_fn, &g));
	OK(cu.memcpy_htod_async(d + 4096, stage, 100, s));
	struct opener o;
	opener_start(&o, &g);
	OK(cu.mem_free(d));
	opener_join(&o);
	EXPECT_VIOLATION("cuMemFree_v2: frees device memory");
	CHECK(strstr(counters().messages[0], "cuMemcpyHtoDAsync_v2 still writes"));
	OK(cu.stream_destroy(s));
	OK(cu.mem_free_host(stage));
	OK(cu.primary_ctx_release(0));
	EXPECT_CLEAN();
}

static void test_copy_rules(void)
{
	hcu_context ctx = start(0);
	enum { N = 1 << 16 };
	hcu_deviceptr d;
	void *stage;
	hcu_stream s;
	OK(cu.mem_alloc(&d, N));
	OK(cu.mem_host_alloc(&stage, N, 0));
	OK(cu.stream_create(&s, 0));
	CHECK(d >= 0x5200000000000000ull); /* non-canonical: the host cannot dereference it */
	CHECK_RC(cu.memcpy_htod_async(d + N - 16, stage, 32, s), HCU_ERROR_INVALID_VALUE);
	EXPECT_VIOLATION("run 16 bytes past the end of allocation");
	CHECK_RC(cu.memcpy_htod_async(d + 4 * N, stage, 32, s), HCU_ERROR_INVALID_VALUE);
	EXPECT_VIOLATION("lies in no live allocation");
	CHECK_RC(cu.memcpy_htod_async((hcu_deviceptr)(uintptr_t)stage, stage, 32, s),
	         HCU_ERROR_INVALID_VALUE);
	EXPECT_VIOLATION("is not a device pointer");
	CHECK_RC(cu.memcpy_htod(d, NULL, 32), HCU_ERROR_INVALID_VALUE);
	EXPECT_VIOLATION("host pointer is NULL");
	/* No current context. */
	OK(cu.ctx_set_current(NULL));
	CHECK_RC(cu.memcpy_htod_async(d, stage, 32, s), HCU_ERROR_INVALID_CONTEXT);
	EXPECT_VIOLATION("cuMemcpyHtoDAsync_v2: no context is current");
	CHECK_RC(cu.memcpy_dtoh(stage, d, 32), HCU_ERROR_INVALID_CONTEXT);
	EXPECT_VIOLATION("cuMemcpyDtoH_v2: no context is current");
	OK(cu.ctx_set_current(ctx));
	/* Pageable source: legal, counted, and copied before the call returns. */
	unsigned char *pageable = malloc(N);
	CHECK(pageable);
	fill(pageable, N, 5);
	OK(cu.memcpy_htod_async(d, pageable, N, s));
	fill(pageable, N, 6);
	OK(cu.stream_synchronize(s));
	CHECK(device_holds(d, N, 5));
	free(pageable);
	/* Not portable, from another context: pageable for that context's copies. */
	hcu_context other;
	OK(cu.ctx_create(&other, 0, 0));
	hcu_deviceptr d2;
	OK(cu.mem_alloc(&d2, N));
	OK(cu.memcpy_htod_async(d2, stage, N, NULL));
	OK(cu.mem_free(d2));
	OK(cu.ctx_destroy(other));
	struct fakecuda_counters c = counters();
	CHECK(c.async_copies == 2 && c.pageable_async_copies == 2);
	OK(cu.stream_destroy(s));
	OK(cu.mem_free_host(stage));
	OK(cu.mem_free(d));
	OK(cu.primary_ctx_release(0));
	EXPECT_CLEAN();
}

static void test_registration_rules(void)
{
	start(0);
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t n = 16 * page;
	char *buf = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(buf != MAP_FAILED);
	OK(cu.mem_host_register(buf, 8 * page, 0));
	CHECK_RC(cu.mem_host_register(buf + 4 * page, 8 * page, 0),
	         HCU_ERROR_HOST_MEMORY_ALREADY_REGISTERED);
	EXPECT_VIOLATION("overlaps the registration");
	OK(cu.mem_host_register(buf + 8 * page, 8 * page, HCU_MEMHOSTREGISTER_PORTABLE));
	CHECK_RC(cu.mem_host_unregister(buf + page), HCU_ERROR_HOST_MEMORY_NOT_REGISTERED);
	EXPECT_VIOLATION("inside the range registered");
	OK(cu.mem_host_unregister(buf));
	CHECK_RC(cu.mem_host_unregister(buf), HCU_ERROR_HOST_MEMORY_NOT_REGISTERED);
	EXPECT_VIOLATION("was not registered");
	CHECK_RC(cu.mem_free_host(buf + 8 * page), HCU_ERROR_INVALID_VALUE);
	EXPECT_VIOLATION("cuMemHostUnregister");
	OK(cu.mem_host_unregister(buf + 8 * page));
	/* Read-only memory needs the flag, and the flag needs the device's support. */
	CHECK(mprotect(buf, n, PROT_READ) == 0);
	CHECK_RC(cu.mem_host_register(buf, n, 0), HCU_ERROR_INVALID_VALUE);
	EXPECT_VIOLATION("needs CU_MEMHOSTREGISTER_READ_ONLY");
	OK(cu.mem_host_register(buf, n, HCU_MEMHOSTREGISTER_READ_ONLY));
	OK(cu.mem_host_unregister(buf));
	set("FAKECUDA_READ_ONLY_REGISTER", "0");
	CHECK_RC(cu.mem_host_register(buf, n, HCU_MEMHOSTREGISTER_READ_ONLY),
	         HCU_ERROR_NOT_SUPPORTED);
	int v;
	OK(cu.device_get_attribute(&v, HCU_DEVICE_ATTRIBUTE_READ_ONLY_HOST_REGISTER_SUPPORTED, 0));
	CHECK(v == 0);
	CHECK(munmap(buf, n) == 0);
	CHECK_RC(cu.mem_host_register(buf, n, 0), HCU_ERROR_INVALID_VALUE);
	EXPECT_VIOLATION("is not wholly mapped");
	struct fakecuda_counters c = counters();
	CHECK(c.registrations == 3 && c.registrations_now == 0);
	OK(cu.primary_ctx_release(0));
	EXPECT_CLEAN();
}

struct order {
	pthread_mutex_t lock;
	int seq[4];
	int n;
};

static void note_order(struct order *o, int what)
{
	pthread_mutex_lock(&o->lock);
	o->seq[o->n++] = what;
	pthread_mutex_unlock(&o->lock);
}

static struct order order = {PTHREAD_MUTEX_INITIALIZER, {0}, 0};
static void mark_b(void *arg)
{
	(void)arg;
	note_order(&order, 2);
}

static void test_events_order_streams(void)
{
	start(0);
	hcu_stream a, b;
	hcu_event ev, never;
	OK(cu.stream_create(&a, HCU_STREAM_NON_BLOCKING));
	OK(cu.stream_create(&b, HCU_STREAM_NON_BLOCKING));
	OK(cu.event_create(&ev, 0));
	OK(cu.event_create(&never, 0));
	OK(cu.event_query(never)); /* nothing captured: complete */
	OK(cu.event_synchronize(never));
	struct gate g;
	gate_init(&g);
	OK(cu.launch_host_func(a, gate_fn, &g));
	OK(cu.event_record(ev, a));
	OK(cu.stream_wait_event(b, ev, 0));
	OK(cu.launch_host_func(b, mark_b, NULL));
	CHECK_RC(cu.stream_query(b), HCU_ERROR_NOT_READY);
	sleep_ms(20);
	CHECK(order.n == 0); /* b waits for a's event */
	note_order(&order, 1);
	gate_open(&g);
	OK(cu.stream_synchronize(b));
	CHECK(order.n == 2 && order.seq[0] == 1 && order.seq[1] == 2);
	OK(cu.stream_query(a));
	CHECK_RC(cu.stream_wait_event(b, ev, 1), HCU_ERROR_INVALID_VALUE);
	EXPECT_VIOLATION("flags 0x1");
	OK(cu.stream_destroy(a));
	OK(cu.stream_destroy(b));
	OK(cu.event_destroy(ev));
	OK(cu.event_destroy(never));
	OK(cu.primary_ctx_release(0));
	CHECK(counters().host_functions == 2);
	EXPECT_CLEAN();
}

static int host_fn_result;
static void host_fn_calls_cuda(void *arg)
{
	hcu_context cur;
	(void)arg;
	host_fn_result = cu.ctx_get_current(&cur);
}

static void test_host_function_calls_cuda(void)
{
	start(0);
	hcu_stream s;
	OK(cu.stream_create(&s, 0));
	OK(cu.launch_host_func(s, host_fn_calls_cuda, NULL));
	OK(cu.stream_synchronize(s));
	CHECK_RC(host_fn_result, HCU_ERROR_NOT_PERMITTED);
	EXPECT_VIOLATION("cuCtxGetCurrent: called from a host function");
	OK(cu.stream_destroy(s));
	OK(cu.primary_ctx_release(0));
	EXPECT_CLEAN();
}

static void *open_later(void *arg)
{
	sleep_ms(50);
	gate_open(arg);
	return NULL;
}

static void test_synchronize_blocks(void)
{
	start(0);
	hcu_stream s;
	OK(cu.stream_create(&s, 0));
	struct gate g;
	gate_init(&g);
	OK(cu.launch_host_func(s, gate_fn, &g));
	pthread_t t;
	CHECK(pthread_create(&t, NULL, open_later, &g) == 0);
	OK(cu.ctx_synchronize());
	CHECK(gate_passed(&g) == 1);
	pthread_join(t, NULL);
	OK(cu.ctx_synchronize());
	CHECK(counters().ctx_synchronize_calls == 2);
	OK(cu.stream_destroy(s));
	OK(cu.primary_ctx_release(0));
	EXPECT_CLEAN();
}

/* The NULL stream waits for blocking streams, and not for non-blocking ones. */
static void test_legacy_stream(void)
{
	start(0);
	enum { N = 4096 };
	hcu_stream blocking, free_running;
	hcu_deviceptr d;
	void *stage;
	unsigned char back[N];
	OK(cu.stream_create(&blocking, 0));
	OK(cu.stream_create(&free_running, HCU_STREAM_NON_BLOCKING));
	OK(cu.mem_alloc(&d, 2 * N));
	OK(cu.mem_host_alloc(&stage, N, 0));
	OK(cu.memset_d8(d, 0, 2 * N));
	fill(stage, N, 7);
	/* (One gate at a time: a device's host functions run one after another, which the
	 * driver allows.) */
	struct gate g1, g2;
	gate_init(&g1);
	gate_init(&g2);
	OK(cu.launch_host_func(free_running, gate_fn, &g2));
	OK(cu.memcpy_htod_async(d + N, stage, N, free_running));
	/* Returns though free_running's copy waits: old bytes. */
	OK(cu.memcpy_dtoh(back, d + N, N));
	CHECK(back[0] == 0 && back[N - 1] == 0);
	gate_open(&g2);
	OK(cu.stream_synchronize(free_running));
	CHECK(device_holds(d + N, N, 7));
	OK(cu.launch_host_func(blocking, gate_fn, &g1));
	OK(cu.memcpy_htod_async(d, stage, N, blocking));
	pthread_t t;
	CHECK(pthread_create(&t, NULL, open_later, &g1) == 0);
	OK(cu.memcpy_dtoh(back, d, N)); /* waits for the blocking stream */
	CHECK(filled(back, N, 7));
	pthread_join(t, NULL);
	OK(cu.stream_destroy(blocking));
	OK(cu.stream_destroy(free_running));
	OK(cu.mem_free_host(stage));
	OK(cu.mem_free(d));
	OK(cu.primary_ctx_release(0));
	EXPECT_CLEAN();
}

static void test_engines_and_stream_order(void)
{
	set("FAKECUDA_COPY_LATENCY_US", "30000");
	start(0);
	enum { N = 4096, STREAMS = 4 };
	hcu_stream s[STREAMS];
	hcu_deviceptr d;
	unsigned char *stage;
	OK(cu.mem_alloc(&d, STREAMS * N));
	OK(cu.mem_host_alloc((void **)&stage, 2 * STREAMS * N, 0));
	for (int i = 0; i < STREAMS; i++) {
		OK(cu.stream_create(&s[i], HCU_STREAM_NON_BLOCKING));
		/* Two copies to the same bytes: the later one in stream order wins. */
		fill(stage + (2 * i) * N, N, 10 + 2 * i);
		fill(stage + (2 * i + 1) * N, N, 11 + 2 * i);
		OK(cu.memcpy_htod_async(d + i * N, stage + (2 * i) * N, N, s[i]));
		OK(cu.memcpy_htod_async(d + i * N, stage + (2 * i + 1) * N, N, s[i]));
	}
	OK(cu.ctx_synchronize());
	for (int i = 0; i < STREAMS; i++) {
		CHECK(device_holds(d + i * N, N, 11 + 2 * i));
		OK(cu.stream_destroy(s[i]));
	}
	struct fakecuda_counters c = counters();
	CHECK(c.device[0].copies_in_flight_max == 2); /* two engines, four streams */
	OK(cu.mem_free_host(stage));
	OK(cu.mem_free(d));
	OK(cu.primary_ctx_release(0));
	EXPECT_CLEAN();
}

/* Two copies to the same device bytes on streams nothing orders: a race, found when
 * they run at once (both wait on one event, so they become ready together, and each
 * takes 300 ms). The same two, ordered by an event, are legal. */
static void test_unordered_copies_race(void)
{
	set("FAKECUDA_COPY_LATENCY_US", "300000");
	start(0);
	enum { N = 4096 };
	hcu_stream gate_stream, a, b;
	hcu_event go, first;
	hcu_deviceptr d;
	void *stage;
	OK(cu.stream_create(&gate_stream, HCU_STREAM_NON_BLOCKING));
	OK(cu.stream_create(&a, HCU_STREAM_NON_BLOCKING));
	OK(cu.stream_create(&b, HCU_STREAM_NON_BLOCKING));
	OK(cu.event_create(&go, 0));
	OK(cu.event_create(&first, 0));
	OK(cu.mem_alloc(&d, N));
	OK(cu.mem_host_alloc(&stage, N, 0));
	struct gate g;
	gate_init(&g);
	OK(cu.launch_host_func(gate_stream, gate_fn, &g));
	OK(cu.event_record(go, gate_stream));
	OK(cu.stream_wait_event(a, go, 0));
	OK(cu.stream_wait_event(b, go, 0));
	OK(cu.memcpy_htod_async(d, stage, N, a));
	OK(cu.memcpy_htod_async(d + 100, stage, 100, b));
	gate_open(&g);
	OK(cu.ctx_synchronize());
	EXPECT_VIOLATION("are used at the same time");
	OK(cu.memcpy_htod_async(d, stage, N, a));
	OK(cu.event_record(first, a));
	OK(cu.stream_wait_event(b, first, 0));
	OK(cu.memcpy_htod_async(d + 100, stage, 100, b));
	OK(cu.ctx_synchronize());
	OK(cu.stream_destroy(gate_stream));
	OK(cu.stream_destroy(a));
	OK(cu.stream_destroy(b));
	OK(cu.event_destroy(go));
	OK(cu.event_destroy(first));
	OK(cu.mem_free_host(stage));
	OK(cu.mem_free(d));
	OK(cu.primary_ctx_release(0));
	EXPECT_CLEAN();
}

/* cuStreamDestroy returns at once; the stream's work still runs. */
static void test_destroy_with_work_queued(void)
{
	start(0);
	enum { N = 4096 };
	hcu_stream s;
	hcu_deviceptr d;
	void *stage;
	OK(cu.stream_create(&s, HCU_STREAM_NON_BLOCKING));
	OK(cu.mem_alloc(&d, N));
	OK(cu.mem_host_alloc(&stage, N, 0));
	fill(stage, N, 9);
	struct gate g;
	gate_init(&g);
	OK(cu.launch_host_func(s, gate_fn, &g));
	OK(cu.memcpy_htod_async(d, stage, N, s));
	OK(cu.stream_destroy(s));
	CHECK(counters().streams_now == 0);
	gate_open(&g);
	OK(cu.ctx_synchronize());
	CHECK(device_holds(d, N, 9));
	OK(cu.mem_free_host(stage));
	OK(cu.mem_free(d));
	OK(cu.primary_ctx_release(0));
	EXPECT_CLEAN();
}

static void test_bandwidth_cap(void)
{
	set("FAKECUDA_BANDWIDTH", "256M");
	set("FAKECUDA_COPY_LATENCY_US", "0");
	start(0);
	size_t n = 64u << 20;
	hcu_deviceptr d;
	void *stage;
	hcu_stream s;
	OK(cu.mem_alloc(&d, n));
	OK(cu.mem_host_alloc(&stage, n, 0));
	OK(cu.stream_create(&s, 0));
	double t0 = now_s();
	OK(cu.memcpy_htod_async(d, stage, n, s));
	OK(cu.stream_synchronize(s));
	double t = now_s() - t0;
	/* 0.25 s at the cap; never faster than twice the cap. */
	CHECK(t >= 0.125);
	OK(cu.stream_destroy(s));
	OK(cu.mem_free_host(stage));
	OK(cu.mem_free(d));
	OK(cu.primary_ctx_release(0));
	EXPECT_CLEAN();
}

static void test_sticky_fault(void)
{
	set("FAKECUDA_FAIL_COPY_EXEC", "2");
	start(0);
	enum { N = 4096 };
	hcu_stream s;
	hcu_event ev;
	hcu_deviceptr d;
	void *stage;
	OK(cu.stream_create(&s, 0));
	OK(cu.event_create(&ev, 0));
	OK(cu.mem_alloc(&d, N));
	OK(cu.mem_host_alloc(&stage, N, 0));
	OK(cu.memcpy_htod_async(d, stage, N, s));
	OK(cu.memcpy_htod_async(d, stage, N, s)); /* faults when it runs */
	CHECK_RC(cu.stream_synchronize(s), HCU_ERROR_ILLEGAL_ADDRESS);
	CHECK_RC(cu.event_record(ev, s), HCU_ERROR_ILLEGAL_ADDRESS);
	CHECK_RC(cu.event_query(ev), HCU_ERROR_ILLEGAL_ADDRESS);
	hcu_deviceptr p;
	CHECK_RC(cu.mem_alloc(&p, N), HCU_ERROR_ILLEGAL_ADDRESS);
	CHECK_RC(cu.ctx_synchronize(), HCU_ERROR_ILLEGAL_ADDRESS);
	/* Frees still free (and say the error). */
	CHECK_RC(cu.stream_destroy(s), HCU_ERROR_ILLEGAL_ADDRESS);
	CHECK_RC(cu.event_destroy(ev), HCU_ERROR_ILLEGAL_ADDRESS);
	CHECK_RC(cu.mem_free(d), HCU_ERROR_ILLEGAL_ADDRESS);
	CHECK_RC(cu.mem_free_host(stage), HCU_ERROR_ILLEGAL_ADDRESS);
	/* The context's end clears it. */
	OK(cu.primary_ctx_release(0));
	hcu_context ctx;
	OK(cu.primary_ctx_retain(&ctx, 0));
	OK(cu.mem_alloc(&p, N));
	OK(cu.mem_free(p));
	OK(cu.primary_ctx_release(0));
	CHECK(fakecuda_check_leaks() == 0);
	EXPECT_CLEAN();
}

static void test_fault_injection(void)
{
	set("FAKECUDA_FAIL_ALLOC", "2");
	set("FAKECUDA_FAIL_HOST_ALLOC", "1");
	start(0);
	hcu_deviceptr a, b;
	void *h;
	OK(cu.mem_alloc(&a, 4096));
	CHECK_RC(cu.mem_alloc(&b, 4096), HCU_ERROR_OUT_OF_MEMORY);
	OK(cu.mem_alloc(&b, 4096)); /* once */
	CHECK_RC(cu.mem_host_alloc(&h, 4096, 0), HCU_ERROR_OUT_OF_MEMORY);
	OK(cu.mem_host_alloc(&h, 4096, 0));
	/* Set after cuInit: counted from now. */
	set("FAKECUDA_FAIL_HOST_REGISTER", "1");
	set("FAKECUDA_FAIL_COPY_SUBMIT", "2");
	set("FAKECUDA_FAIL_COPY_SUBMIT_ERROR", "719");
	char *buf = aligned_alloc(4096, 8192);
	CHECK(buf);
	CHECK_RC(cu.mem_host_register(buf, 8192, 0), HCU_ERROR_OUT_OF_MEMORY);
	OK(cu.mem_host_register(buf, 8192, 0));
	OK(cu.memcpy_htod_async(a, h, 4096, NULL));
	CHECK_RC(cu.memcpy_htod_async(a, h, 4096, NULL), HCU_ERROR_LAUNCH_FAILED);
	OK(cu.memcpy_htod_async(a, h, 4096, NULL));
	OK(cu.ctx_synchronize());
	OK(cu.mem_host_unregister(buf));
	free(buf);
	OK(cu.mem_free_host(h));
	OK(cu.mem_free(a));
	OK(cu.mem_free(b));
	OK(cu.primary_ctx_release(0));
	EXPECT_CLEAN();
}

static void test_leak_check(void)
{
	start(0);
	hcu_deviceptr d;
	hcu_stream s;
	hcu_event ev;
	void *h;
	OK(cu.mem_alloc(&d, 12345));
	OK(cu.stream_create(&s, 0));
	OK(cu.event_create(&ev, 0));
	OK(cu.mem_host_alloc(&h, 100, 0));
	CHECK(fakecuda_check_leaks() == 5); /* allocation, host allocation, stream, event,
	                                       the retained primary context */
	struct fakecuda_counters c = counters();
	CHECK(c.violations == 5);
	bool found = false;
	for (int i = 0; i < 5; i++)
		found |= strstr(c.messages[i], "leak: device 0 allocation") &&
		         strstr(c.messages[i], "(12345 bytes)");
	CHECK(found);
	seen = 5;
	fakecuda_counters_reset();
	seen = 0;
	OK(cu.mem_free(d));
	OK(cu.stream_destroy(s));
	OK(cu.event_destroy(ev));
	OK(cu.mem_free_host(h));
	OK(cu.primary_ctx_release(0));
	CHECK(fakecuda_check_leaks() == 0);
	EXPECT_CLEAN();
}

/* FAKECUDA_LEAK_CHECK_AT_EXIT=1: a child that leaks exits 1 and says what leaked on
 * stderr (into `err`), a clean one exits 0. */
static int exit_status_of(bool leak, char *err, size_t size)
{
	int fds[2];
	CHECK(pipe(fds) == 0);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		close(fds[0]);
		dup2(fds[1], 2);
		set("FAKECUDA_LEAK_CHECK_AT_EXIT", "1");
		hcu_deviceptr d;
		start(0);
		OK(cu.mem_alloc(&d, 4096));
		if (!leak) {
			OK(cu.mem_free(d));
			OK(cu.primary_ctx_release(0));
		}
		exit(0);
	}
	close(fds[1]);
	size_t got = 0;
	ssize_t r;
	while (got + 1 < size && (r = read(fds[0], err + got, size - 1 - got)) > 0)
		got += (size_t)r;
	err[got] = '\0';
	close(fds[0]);
	int status;
	CHECK(waitpid(pid, &status, 0) == pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void test_leak_check_at_exit(void)
{
	char err[4096];
	CHECK(exit_status_of(true, err, sizeof err) == 1);
	CHECK(strstr(err, "leak: device 0 allocation 0x5200000000200000 (4096 bytes)"));
	CHECK(strstr(err, "primary context"));
	CHECK(exit_status_of(false, err, sizeof err) == 0);
	CHECK(err[0] == '\0');
}

/* FAKECUDA_LEAK_CHECK_AT_EXIT=violations: what is alive at exit is no failure, a
 * violation still is. */
static int exit_status_violations_only(bool violate)
{
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);
		dup2(null, 2);
		set("FAKECUDA_LEAK_CHECK_AT_EXIT", "violations");
		hcu_deviceptr d;
		start(0);
		OK(cu.mem_alloc(&d, 4096)); /* left to exit */
		if (violate)
			cu.mem_free(d + 1); /* not at its start */
		exit(0);
	}
	int status;
	CHECK(waitpid(pid, &status, 0) == pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void test_exit_check_violations_only(void)
{
	CHECK(exit_status_violations_only(false) == 0);
	CHECK(exit_status_violations_only(true) == 1);
}

/* FAKECUDA_MOVE_BYTES=0: copies take their time (the bandwidth cap) and move nothing. */
static void test_move_bytes_off(void)
{
	set("FAKECUDA_MOVE_BYTES", "0");
	set("FAKECUDA_BANDWIDTH", "100000000"); /* 100 MB/s: 8 MiB in 84 ms */
	start(0);
	enum { N = 8 << 20 };
	hcu_stream s;
	hcu_deviceptr d;
	unsigned char *stage;
	OK(cu.stream_create(&s, HCU_STREAM_NON_BLOCKING));
	OK(cu.mem_alloc(&d, N));
	OK(cu.mem_host_alloc((void **)&stage, N, HCU_MEMHOSTALLOC_PORTABLE));
	fill(stage, N, 7);
	double t0 = now_s();
	OK(cu.memcpy_htod_async(d, stage, N, s));
	OK(cu.stream_synchronize(s));
	CHECK(now_s() - t0 >= 0.08);
	unsigned char got[4096];
	CHECK(fakecuda_device_read(d, got, sizeof got) == 0);
	for (size_t i = 0; i < sizeof got; i++)
		CHECK(got[i] == 0); /* nothing moved */
	OK(cu.stream_destroy(s));
	OK(cu.mem_free(d));
	OK(cu.mem_free_host(stage));
	OK(cu.primary_ctx_release(0));
	CHECK(fakecuda_check_leaks() == 0);
	EXPECT_CLEAN();
}

/* A faulted context's stream and event synchronize wait for the copy still executing
 * there before they return the fault, so its buffers may then be freed. */
static void test_faulted_synchronize_waits(void)
{
	set("FAKECUDA_BANDWIDTH", "100000000");
	set("FAKECUDA_FAIL_COPY_EXEC", "1");
	start(0);
	enum { N = 8 << 20 };
	hcu_stream s1, s2;
	hcu_event ev;
	hcu_deviceptr d;
	unsigned char *a, *b;
	OK(cu.stream_create(&s1, HCU_STREAM_NON_BLOCKING));
	OK(cu.stream_create(&s2, HCU_STREAM_NON_BLOCKING));
	OK(cu.event_create(&ev, HCU_EVENT_DISABLE_TIMING));
	OK(cu.mem_alloc(&d, 2 * N));
	OK(cu.mem_host_alloc((void **)&a, N, HCU_MEMHOSTALLOC_PORTABLE));
	OK(cu.mem_host_alloc((void **)&b, N, HCU_MEMHOSTALLOC_PORTABLE));
	OK(cu.memcpy_htod_async(d, a, N, s1));     /* faults when it ends */
	OK(cu.memcpy_htod_async(d + N, b, N, s2)); /* executing beside it */
	OK(cu.event_record(ev, s2));
	CHECK_RC(cu.stream_synchronize(s1), HCU_ERROR_ILLEGAL_ADDRESS);
	CHECK_RC(cu.event_synchronize(ev), HCU_ERROR_ILLEGAL_ADDRESS);
	/* nothing reads b any more: freeing it is no violation */
	CHECK_RC(cu.mem_free_host(b), HCU_ERROR_ILLEGAL_ADDRESS);
	CHECK_RC(cu.mem_free_host(a), HCU_ERROR_ILLEGAL_ADDRESS);
	CHECK_RC(cu.mem_free(d), HCU_ERROR_ILLEGAL_ADDRESS);
	CHECK_RC(cu.event_destroy(ev), HCU_ERROR_ILLEGAL_ADDRESS);
	CHECK_RC(cu.stream_destroy(s1), HCU_ERROR_ILLEGAL_ADDRESS);
	CHECK_RC(cu.stream_destroy(s2), HCU_ERROR_ILLEGAL_ADDRESS);
	OK(cu.primary_ctx_release(0));
	CHECK(fakecuda_check_leaks() == 0);
	EXPECT_CLEAN();
}

static void test_nvml(void)
{
	set("FAKECUDA_DEVICES", "3");
	set("FAKECUDA_MEMORY", "2G");
	set("FAKECUDA_CONTEXT_MEMORY", "300M");
	set("FAKECUDA_PCI_BUS_IDS", "0000:18:00.0,0000:2a:00.0,0000:3a:00.0");
	unsigned n;
	CHECK(nvml.device_get_count(&n) == HNVML_ERROR_UNINITIALIZED);
	EXPECT_VIOLATION("called before nvmlInit_v2");
	CHECK(nvml.init() == HNVML_SUCCESS);
	CHECK(nvml.device_get_count(&n) == HNVML_SUCCESS && n == 3);
	OK(cu.init(0));
	hcu_context ctx;
	OK(cu.primary_ctx_retain(&ctx, 0));
	OK(cu.ctx_set_current(ctx));
	hcu_deviceptr d;
	OK(cu.mem_alloc(&d, 100u << 20));
	for (int ord = 0; ord < 3; ord++) {
		char cuda_bus[16];
		OK(cu.device_get_pci_bus_id(cuda_bus, sizeof cuda_bus, ord));
		hnvml_device h, by_index;
		CHECK(nvml.handle_by_pci_bus_id(cuda_bus, &h) == HNVML_SUCCESS);
		CHECK(nvml.handle_by_index((unsigned)ord, &by_index) == HNVML_SUCCESS);
		struct hnvml_pci_info pci;
		CHECK(nvml.pci_info(h, &pci) == HNVML_SUCCESS);
		CHECK(strcmp(pci.busIdLegacy, cuda_bus) == 0);
		CHECK(strlen(pci.busId) == 16 && strcmp(pci.busId + 4, cuda_bus) == 0);
		/* NVML's order is not CUDA's: matching by index gets another device. */
		CHECK((ord == 1) == (h == by_index));
		struct hnvml_pci_info at_index;
		CHECK(nvml.pci_info(by_index, &at_index) == HNVML_SUCCESS);
		CHECK((ord == 1) == (at_index.bus == pci.bus));
		char name[HNVML_DEVICE_NAME_V2_BUFFER_SIZE];
		CHECK(nvml.name(h, name, sizeof name) == HNVML_SUCCESS);
		CHECK(strcmp(name, "Fake H200") == 0);
		CHECK(nvml.name(h, name, 4) == HNVML_ERROR_INSUFFICIENT_SIZE);
		struct hnvml_memory m;
		CHECK(nvml.memory_info(h, &m) == HNVML_SUCCESS);
		CHECK(m.total == 2ull << 30 && m.free == m.total - m.used);
		/* CUDA's allocation and context, on CUDA's device 0 only. */
		CHECK(m.used == (ord == 0 ? (400ull << 20) : 0));
	}
	hnvml_device h;
	CHECK(nvml.handle_by_pci_bus_id("00000000:99:00.0", &h) == HNVML_ERROR_NOT_FOUND);
	CHECK(nvml.handle_by_pci_bus_id("bogus", &h) == HNVML_ERROR_INVALID_ARGUMENT);
	EXPECT_VIOLATION("does not parse");
	CHECK(nvml.handle_by_pci_bus_id("2a:00.0", &h) == HNVML_SUCCESS); /* bus:device.fn */
	CHECK(nvml.memory_info((hnvml_device)(uintptr_t)0x1234, NULL) ==
	      HNVML_ERROR_INVALID_ARGUMENT);
	EXPECT_VIOLATION("is not a device handle");
	CHECK(strcmp(nvml.error_string(HNVML_ERROR_NOT_FOUND), "Not Found") == 0);
	OK(cu.mem_free(d));
	OK(cu.primary_ctx_release(0));
	CHECK(fakecuda_check_leaks() == 1); /* NVML still initialised */
	EXPECT_VIOLATION("nvmlInit_v2 called 1 more time");
	CHECK(nvml.shutdown() == HNVML_SUCCESS);
	CHECK(nvml.shutdown() == HNVML_ERROR_UNINITIALIZED);
	EXPECT_VIOLATION("more shutdowns");
	CHECK(fakecuda_check_leaks() == 0);
	EXPECT_CLEAN();
}

static long vm_rss_kib(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kib = -1;
	while (f && fgets(line, sizeof line, f))
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	if (f)
		fclose(f);
	return kib;
}

/* Device bytes live outside the process: 256 MiB copied in leaves the resident set
 * about where it was. */
static void test_device_memory_not_resident(void)
{
	set("FAKECUDA_COPY_LATENCY_US", "0");
	start(0);
	size_t chunk = 4u << 20, total = 256u << 20;
	hcu_deviceptr d;
	void *stage;
	hcu_stream s;
	OK(cu.mem_alloc(&d, total));
	OK(cu.mem_host_alloc(&stage, chunk, 0));
	OK(cu.stream_create(&s, 0));
	memset(stage, 0x5a, chunk);
	long before = vm_rss_kib();
	for (size_t off = 0; off < total; off += chunk)
		OK(cu.memcpy_htod_async(d + off, stage, chunk, s));
	OK(cu.stream_synchronize(s));
	long after = vm_rss_kib();
	CHECK(before > 0 && after - before < 64 * 1024);
	unsigned char b = 0;
	CHECK(fakecuda_device_read(d + total - 1, &b, 1) == 0 && b == 0x5a);
	OK(cu.stream_destroy(s));
	OK(cu.mem_free_host(stage));
	OK(cu.mem_free(d));
	OK(cu.primary_ctx_release(0));
	EXPECT_CLEAN();
}

static void test_memset_and_controls(void)
{
	start(0);
	enum { N = 8192 };
	hcu_deviceptr d;
	unsigned char back[N];
	OK(cu.mem_alloc(&d, N));
	OK(cu.memset_d8(d, 0xab, N));
	OK(cu.memcpy_dtoh(back, d, N)); /* ordered after the memset on the NULL stream */
	CHECK(back[0] == 0xab && back[N - 1] == 0xab);
	CHECK(fakecuda_device_flip_byte(d + 10) == 0);
	OK(cu.memcpy_dtoh(back, d, N));
	CHECK(back[10] == 0x54 && back[9] == 0xab && back[11] == 0xab);
	CHECK(fakecuda_device_read(d + N - 1, back, 2) == HCU_ERROR_INVALID_VALUE);
	CHECK(fakecuda_device_read(d + N, back, 1) == HCU_ERROR_INVALID_VALUE);
	OK(cu.mem_free(d));
	CHECK(fakecuda_device_read(d, back, 1) == HCU_ERROR_INVALID_VALUE);
	OK(cu.primary_ctx_release(0));
	EXPECT_CLEAN();
}

static void test_release_destroys_objects(void)
{
	hcu_context ctx = start(0);
	hcu_stream s;
	hcu_event ev;
	OK(cu.stream_create(&s, 0));
	OK(cu.event_create(&ev, 0));
	hcu_deviceptr d;
	OK(cu.mem_alloc(&d, 4096));
	OK(cu.primary_ctx_release(0)); /* the driver frees what the context held */
	struct fakecuda_counters c = counters();
	CHECK(c.streams_now == 0 && c.events_now == 0 && c.device[0].allocations_now == 0);
	OK(cu.primary_ctx_retain(&ctx, 0));
	CHECK_RC(cu.stream_query(s), HCU_ERROR_INVALID_HANDLE);
	EXPECT_VIOLATION("or whose context was destroyed");
	CHECK_RC(cu.mem_free(d), HCU_ERROR_INVALID_VALUE);
	EXPECT_VIOLATION("is not a live allocation");
	OK(cu.primary_ctx_release(0));
	EXPECT_CLEAN();
}

/* Threads, each with its own stream, copying in and out and checking what came back:
 * for the sanitizers (and no violation). */
struct worker {
	hcu_context ctx;
	int id;
	int failures;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	enum { N = 1 << 15, ROUNDS = 40 };
	hcu_stream s;
	hcu_event ev;
	hcu_deviceptr d;
	unsigned char *stage, *back;
	if (cu.ctx_set_current(w->ctx) || cu.stream_create(&s, HCU_STREAM_NON_BLOCKING) ||
	    cu.event_create(&ev, HCU_EVENT_DISABLE_TIMING) || cu.mem_alloc(&d, N) ||
	    cu.mem_host_alloc((void **)&stage, N, HCU_MEMHOSTALLOC_PORTABLE) ||
	    cu.mem_host_alloc((void **)&back, N, HCU_MEMHOSTALLOC_PORTABLE)) {
		w->failures++;
		return NULL;
	}
	for (int r = 0; r < ROUNDS; r++) {
		unsigned seed = (unsigned)(w->id * 1000 + r);
		fill(stage, N, seed);
		if (cu.memcpy_htod_async(d, stage, N, s) || cu.memcpy_dtoh_async(back, d, N, s) ||
		    cu.event_record(ev, s))
			w->failures++;
		hcu_result q;
		while ((q = cu.event_query(ev)) == HCU_ERROR_NOT_READY)
			sleep_ms(1);
		if (q != HCU_SUCCESS || !filled(back, N, seed))
			w->failures++;
	}
	if (cu.stream_destroy(s) || cu.event_destroy(ev) || cu.mem_free(d) ||
	    cu.mem_free_host(stage) || cu.mem_free_host(back))
		w->failures++;
	return NULL;
}

static void test_threads(void)
{
	set("FAKECUDA_DEVICES", "2");
	set("FAKECUDA_COPY_LATENCY_US", "100");
	OK(cu.init(0));
	enum { THREADS = 6 };
	hcu_context ctx[2];
	OK(cu.primary_ctx_retain(&ctx[0], 0));
	OK(cu.primary_ctx_retain(&ctx[1], 1));
	struct worker w[THREADS];
	pthread_t t[THREADS];
	for (int i = 0; i < THREADS; i++) {
		w[i] = (struct worker){ctx[i % 2], i, 0};
		CHECK(pthread_create(&t[i], NULL, worker_main, &w[i]) == 0);
	}
	for (int i = 0; i < THREADS; i++) {
		pthread_join(t[i], NULL);
		CHECK(w[i].failures == 0);
	}
	OK(cu.primary_ctx_release(0));
	OK(cu.primary_ctx_release(1));
	struct fakecuda_counters c = counters();
	CHECK(c.async_copies == THREADS * 40 * 2 && c.pageable_async_copies == 0);
	CHECK(fakecuda_check_leaks() == 0);
	EXPECT_CLEAN();
}

/* ---- the runner ---- */

static const struct {
	const char *name;
	void (*fn)(void);
} tests[] = {
        {"exports_and_loader", test_exports_and_loader},
        {"exit_check_violations_only", test_exit_check_violations_only},
        {"move_bytes_off", test_move_bytes_off},
        {"faulted_synchronize_waits", test_faulted_synchronize_waits},
        {"init_first", test_init_first},
        {"init_result_802", test_init_result_802},
        {"init_result_by_name", test_init_result_by_name},
        {"no_device", test_no_device},
        {"error_names", test_error_names},
        {"devices_and_attributes", test_devices_and_attributes},
        {"context_per_thread", test_context_per_thread},
        {"context_costs_memory", test_context_costs_memory},
        {"created_contexts_and_stack", test_created_contexts_and_stack},
        {"objects_belong_to_their_context", test_objects_belong_to_their_context},
        {"dead_handles", test_dead_handles},
        {"copy_reads_source_at_completion", test_copy_reads_source_at_completion},
        {"free_host_under_copy", test_free_host_under_copy},
        {"unregister_under_copy", test_unregister_under_copy},
        {"free_device_under_copy", test_free_device_under_copy},
        {"copy_rules", test_copy_rules},
        {"registration_rules", test_registration_rules},
        {"events_order_streams", test_events_order_streams},
        {"host_function_calls_cuda", test_host_function_calls_cuda},
        {"synchronize_blocks", test_synchronize_blocks},
        {"legacy_stream", test_legacy_stream},
        {"engines_and_stream_order", test_engines_and_stream_order},
        {"unordered_copies_race", test_unordered_copies_race},
        {"destroy_with_work_queued", test_destroy_with_work_queued},
        {"bandwidth_cap", test_bandwidth_cap},
        {"sticky_fault", test_sticky_fault},
        {"fault_injection", test_fault_injection},
        {"leak_check", test_leak_check},
        {"leak_check_at_exit", test_leak_check_at_exit},
        {"nvml", test_nvml},
        {"device_memory_not_resident", test_device_memory_not_resident},
        {"memset_and_controls", test_memset_and_controls},
        {"release_destroys_objects", test_release_destroys_objects},
        {"threads", test_threads},
};

static bool wanted(const char *name, int argc, char **argv)
{
	if (argc <= 3)
		return true;
	for (int i = 3; i < argc; i++)
		if (strcmp(argv[i], name) == 0)
			return true;
	return false;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: %s PATH/libcuda.so.1 PATH/libnvidia-ml.so.1 [TEST...]\n",
		        argv[0]);
		return 2;
	}
	cuda_path = argv[1];
	nvml_path = argv[2];
	int passed = 0, failed = 0;
	for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
		if (!wanted(tests[i].name, argc, argv))
			continue;
		fflush(stdout);
		pid_t pid = fork();
		if (pid < 0) {
			perror("fork");
			return 2;
		}
		if (pid == 0) {
			test_name = tests[i].name;
			alarm(120);
			load();
			tests[i].fn();
			exit(0);
		}
		int status;
		waitpid(pid, &status, 0);
		bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
		if (ok)
			printf("ok      %s\n", tests[i].name);
		else if (WIFSIGNALED(status))
			printf("FAILED  %s (signal %d)\n", tests[i].name, WTERMSIG(status));
		else
			printf("FAILED  %s\n", tests[i].name);
		passed += ok;
		failed += !ok;
	}
	printf("fakecuda-selftest: %d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
