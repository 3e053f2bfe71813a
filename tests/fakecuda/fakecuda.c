/* fakecuda.c - a strict fake of the CUDA driver (libcuda.so.1) for tests on machines
 * without a GPU: set-up and knobs, violations, handles, devices, contexts and the
 * fakecuda_* controls. Memory is in fakecuda_mem.c, streams, events and the copy
 * engines in fakecuda_stream.c; README.md beside this file lists the rules.
 *
 * Each entry point has cuda.h's versioned name and the type of its src/cuda_abi.h
 * pointer typedef (checked below), which tests/cuda_abi_check.c holds against cuda.h.
 * A call that breaks one of the driver's rules returns the driver's error code and
 * counts a violation; faults the driver reports from the machine (out of memory, no
 * device, an injected asynchronous error) return their code and count none. */
#include "fakecuda_internal.h"
#include "cuda_results.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SAME_TYPE(fn, type)                                                                        \
	_Static_assert(__builtin_types_compatible_p(__typeof__(&fn), type), #fn " type")

struct fc_state fc = {
        .lock = PTHREAD_MUTEX_INITIALIZER,
        .work = PTHREAD_COND_INITIALIZER,
        .done = PTHREAD_COND_INITIALIZER,
        .next_id = 1,
};
_Thread_local bool fc_in_host_fn;

/* The calling thread's context stack (handles; the top is the current context). The
 * driver documents no depth limit; 32 is far past any caller's need. */
#define FC_STACK_MAX 32
static _Thread_local struct {
	int depth;
	void *ctx[FC_STACK_MAX];
} tls;

/* ---- results ---- */

static const struct {
	int code;
	const char *name;
	const char *text;
} results[] = {
#define RESULT_ENTRY(name, value, text) {value, "CUDA_" #name, text},
        FAKECUDA_RESULTS(RESULT_ENTRY)
#undef RESULT_ENTRY
};

static int result_index(hcu_result r)
{
	for (size_t i = 0; i < sizeof results / sizeof results[0]; i++)
		if (results[i].code == (int)r)
			return (int)i;
	return -1;
}

const char *fc_result_name(hcu_result r)
{
	int i = result_index(r);
	return i < 0 ? "(not a CUresult)" : results[i].name;
}

/* ---- violations ---- */

static bool quiet(void);

void fc_violation(const char *call, hcu_result code, const char *fmt, ...)
{
	char msg[FAKECUDA_MESSAGE_SIZE];
	int n = snprintf(msg, sizeof msg, "%s: ", call);
	va_list ap;
	va_start(ap, fmt);
	if (n >= 0 && (size_t)n < sizeof msg)
		n += vsnprintf(msg + n, sizeof msg - (size_t)n, fmt, ap);
	va_end(ap);
	if (code != HCU_SUCCESS && n >= 0 && (size_t)n < sizeof msg)
		snprintf(msg + n, sizeof msg - (size_t)n, " -> %s", fc_result_name(code));
	if (fc.c.violations < FAKECUDA_MESSAGES)
		snprintf(fc.c.messages[fc.c.violations], FAKECUDA_MESSAGE_SIZE, "%s", msg);
	fc.c.violations++;
	if (!quiet())
		fprintf(stderr, "fakecuda: VIOLATION: %s\n", msg);
}

/* Something a test's author should see that breaks no rule (an attribute the fake does
 * not model, an I/O error on its own memory). */
void fc_note(const char *fmt, ...)
{
	if (quiet())
		return;
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "fakecuda: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

/* ---- knobs ---- */

enum knob_id {
	K_DEVICES,
	K_MEMORY,
	K_BANDWIDTH,
	K_COPY_LATENCY,
	K_COPY_ENGINES,
	K_INIT_RESULT,
	K_DRIVER_VERSION,
	K_CONTEXT_MEMORY,
	K_NAME,
	K_PCI_BUS_IDS,
	K_NVML_ORDER,
	K_HOST_POINTER,
	K_LEAK_CHECK_AT_EXIT,
	K_MOVE_BYTES,
	/* From here on, knobs that may change after initialisation. */
	K_READ_ONLY_REGISTER,
	K_QUIET,
	K_FAIL_ALLOC,
	K_FAIL_HOST_ALLOC,
	K_FAIL_HOST_REGISTER,
	K_FAIL_COPY_SUBMIT,
	K_FAIL_COPY_SUBMIT_ERROR,
	K_FAIL_COPY_EXEC,
	K_FAIL_COPY_EXEC_ERROR,
	K_COUNT
};

/* Values set by fakecuda_set(), which win over the environment. */
static struct {
	const char *name;
	bool set;
	char value[512];
} knobs[K_COUNT] = {
        [K_DEVICES] = {.name = "FAKECUDA_DEVICES"},
        [K_MEMORY] = {.name = "FAKECUDA_MEMORY"},
        [K_BANDWIDTH] = {.name = "FAKECUDA_BANDWIDTH"},
        [K_COPY_LATENCY] = {.name = "FAKECUDA_COPY_LATENCY_US"},
        [K_COPY_ENGINES] = {.name = "FAKECUDA_COPY_ENGINES"},
        [K_INIT_RESULT] = {.name = "FAKECUDA_INIT_RESULT"},
        [K_DRIVER_VERSION] = {.name = "FAKECUDA_DRIVER_VERSION"},
        [K_CONTEXT_MEMORY] = {.name = "FAKECUDA_CONTEXT_MEMORY"},
        [K_NAME] = {.name = "FAKECUDA_NAME"},
        [K_PCI_BUS_IDS] = {.name = "FAKECUDA_PCI_BUS_IDS"},
        [K_NVML_ORDER] = {.name = "FAKECUDA_NVML_ORDER"},
        [K_HOST_POINTER] = {.name = "FAKECUDA_HOST_POINTER_FOR_REGISTERED"},
        [K_LEAK_CHECK_AT_EXIT] = {.name = "FAKECUDA_LEAK_CHECK_AT_EXIT"},
        [K_MOVE_BYTES] = {.name = "FAKECUDA_MOVE_BYTES"},
        [K_READ_ONLY_REGISTER] = {.name = "FAKECUDA_READ_ONLY_REGISTER"},
        [K_QUIET] = {.name = "FAKECUDA_QUIET"},
        [K_FAIL_ALLOC] = {.name = "FAKECUDA_FAIL_ALLOC"},
        [K_FAIL_HOST_ALLOC] = {.name = "FAKECUDA_FAIL_HOST_ALLOC"},
        [K_FAIL_HOST_REGISTER] = {.name = "FAKECUDA_FAIL_HOST_REGISTER"},
        [K_FAIL_COPY_SUBMIT] = {.name = "FAKECUDA_FAIL_COPY_SUBMIT"},
        [K_FAIL_COPY_SUBMIT_ERROR] = {.name = "FAKECUDA_FAIL_COPY_SUBMIT_ERROR"},
        [K_FAIL_COPY_EXEC] = {.name = "FAKECUDA_FAIL_COPY_EXEC"},
        [K_FAIL_COPY_EXEC_ERROR] = {.name = "FAKECUDA_FAIL_COPY_EXEC_ERROR"},
};

/* A byte count: decimal, with an optional binary suffix k, M, G or T (KiB ... also
 * read). */
static int parse_size(const char *s, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (end == s || errno || *s == '-')
		return -1;
	unsigned shift = 0;
	switch (*end) {
	case 'k':
	case 'K': shift = 10; break;
	case 'm':
	case 'M': shift = 20; break;
	case 'g':
	case 'G': shift = 30; break;
	case 't':
	case 'T': shift = 40; break;
	case '\0': break;
	default: return -1;
	}
	if (shift) {
		end++;
		if (strcmp(end, "iB") == 0 || strcmp(end, "B") == 0)
			end += strlen(end);
	}
	if (*end || (shift && v > (~0ull >> shift)))
		return -1;
	*out = (uint64_t)v << shift;
	return 0;
}

static int parse_int(const char *s, long min, long max, long *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (end == s || *end || errno || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

/* "[domain:]bus:device[.function]", hexadecimal, as both cuDeviceGetPCIBusId and NVML
 * write it and as nvmlDeviceGetHandleByPciBusId_v2 reads it. */
static int parse_pci(const char *s, unsigned out[3])
{
	unsigned long part[3];
	int n = 0;
	const char *p = s;
	for (;;) {
		char *end;
		if (n == 3 || !((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f') ||
		                (*p >= 'A' && *p <= 'F')))
			return -1;
		part[n++] = strtoul(p, &end, 16);
		p = end;
		if (*p != ':')
			break;
		p++;
	}
	if (*p == '.') {
		char *end;
		unsigned long fn = strtoul(p + 1, &end, 16);
		if (end == p + 1 || fn > 7)
			return -1;
		p = end;
	}
	if (*p || n < 2)
		return -1;
	unsigned long domain = n == 3 ? part[0] : 0, bus = part[n - 2], dev = part[n - 1];
	if (domain > 0xffffffffu || bus > 0xff || dev > 0x1f)
		return -1;
	out[0] = (unsigned)domain;
	out[1] = (unsigned)bus;
	out[2] = (unsigned)dev;
	return 0;
}

/* Splits a comma list into at most FAKECUDA_MAX_DEVICES items (copied into buf);
 * returns their number. */
static int split_list(const char *s, char *buf, size_t size, char **items)
{
	snprintf(buf, size, "%s", s);
	int n = 0;
	char *save = NULL;
	for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		if (n == FAKECUDA_MAX_DEVICES)
			return -1;
		items[n++] = t;
	}
	return n;
}

/* A per-device list: its last item applies to the devices past its end. */
static int parse_size_list(const char *s, uint64_t *out)
{
	char buf[512], *items[FAKECUDA_MAX_DEVICES];
	int n = split_list(s, buf, sizeof buf, items);
	if (n <= 0)
		return -1;
	for (int i = 0; i < FAKECUDA_MAX_DEVICES; i++)
		if (parse_size(items[i < n ? i : n - 1], &out[i]))
			return -1;
	return 0;
}

static int parse_pci_list(const char *s, unsigned (*out)[3])
{
	char buf[512], *items[FAKECUDA_MAX_DEVICES];
	int n = split_list(s, buf, sizeof buf, items);
	if (n <= 0)
		return -1;
	for (int i = 0; i < n; i++)
		if (parse_pci(items[i], out[i]))
			return -1;
	return 0;
}

static int parse_bool(const char *s, bool *out)
{
	if (strcmp(s, "1") == 0 || strcmp(s, "yes") == 0 || strcmp(s, "true") == 0)
		*out = true;
	else if (strcmp(s, "0") == 0 || strcmp(s, "no") == 0 || strcmp(s, "false") == 0)
		*out = false;
	else
		return -1;
	return 0;
}

/* A CUresult by number or by name ("802", "CUDA_ERROR_SYSTEM_NOT_READY"). */
static int parse_result(const char *s, int *out)
{
	for (size_t i = 0; i < sizeof results / sizeof results[0]; i++)
		if (strcmp(s, results[i].name) == 0) {
			*out = results[i].code;
			return 0;
		}
	long v;
	if (parse_int(s, 0, 100000, &v))
		return -1;
	*out = (int)v;
	return 0;
}

static int apply_knob(enum knob_id k, const char *v, struct fc_config *cfg)
{
	long n;
	uint64_t u;
	switch (k) {
	case K_DEVICES:
		if (parse_int(v, 0, FAKECUDA_MAX_DEVICES, &n))
			return -1;
		cfg->devices = (int)n;
		return 0;
	case K_MEMORY:
		if (parse_size_list(v, cfg->memory))
			return -1;
		for (int i = 0; i < FAKECUDA_MAX_DEVICES; i++)
			if (cfg->memory[i] < FC_PAGE || cfg->memory[i] > FC_DEVICE_SPAN / 4)
				return -1;
		return 0;
	case K_BANDWIDTH: return parse_size_list(v, cfg->bandwidth);
	case K_COPY_LATENCY:
		if (parse_int(v, 0, 10000000, &n))
			return -1;
		cfg->copy_latency_ns = (uint64_t)n * 1000;
		return 0;
	case K_COPY_ENGINES:
		if (parse_int(v, 1, FC_MAX_ENGINES, &n))
			return -1;
		cfg->engines = (int)n;
		return 0;
	case K_INIT_RESULT: return parse_result(v, &cfg->init_result);
	case K_DRIVER_VERSION:
		if (parse_int(v, 1000, 1000000, &n))
			return -1;
		cfg->driver_version = (int)n;
		return 0;
	case K_CONTEXT_MEMORY: return parse_size(v, &cfg->context_memory);
	case K_NAME:
		if (!*v || strlen(v) >= sizeof cfg->name)
			return -1;
		snprintf(cfg->name, sizeof cfg->name, "%s", v);
		return 0;
	case K_PCI_BUS_IDS: return parse_pci_list(v, cfg->pci);
	case K_NVML_ORDER:
		if (strcmp(v, "reversed") == 0)
			cfg->nvml_reversed = true;
		else if (strcmp(v, "same") == 0)
			cfg->nvml_reversed = false;
		else
			return -1;
		return 0;
	case K_HOST_POINTER: return parse_bool(v, &cfg->host_pointer_registered);
	case K_LEAK_CHECK_AT_EXIT:
		/* "violations": at exit, fail on violations only, without counting what is
		 * still alive (a command that leaves its memory to process exit) */
		if (strcmp(v, "violations") == 0) {
			cfg->leak_check_at_exit = true;
			cfg->exit_check_violations_only = true;
			return 0;
		}
		cfg->exit_check_violations_only = false;
		return parse_bool(v, &cfg->leak_check_at_exit);
	case K_MOVE_BYTES: return parse_bool(v, &cfg->move_bytes);
	case K_READ_ONLY_REGISTER: return parse_bool(v, &cfg->read_only_register);
	case K_QUIET: return parse_bool(v, &cfg->quiet);
	case K_FAIL_ALLOC:
	case K_FAIL_HOST_ALLOC:
	case K_FAIL_HOST_REGISTER:
	case K_FAIL_COPY_SUBMIT:
	case K_FAIL_COPY_EXEC:
		if (parse_size(v, &u))
			return -1;
		if (k == K_FAIL_ALLOC)
			cfg->fail_alloc = u;
		else if (k == K_FAIL_HOST_ALLOC)
			cfg->fail_host_alloc = u;
		else if (k == K_FAIL_HOST_REGISTER)
			cfg->fail_register = u;
		else if (k == K_FAIL_COPY_SUBMIT)
			cfg->fail_copy_submit = u;
		else
			cfg->fail_copy_exec = u;
		return 0;
	case K_FAIL_COPY_SUBMIT_ERROR: return parse_result(v, &cfg->fail_copy_submit_error);
	case K_FAIL_COPY_EXEC_ERROR: return parse_result(v, &cfg->fail_copy_exec_error);
	case K_COUNT: break;
	}
	return -1;
}

/* An injection counts its calls from when it is set. */
static void restart_count(enum knob_id k)
{
	if (k == K_FAIL_ALLOC)
		fc.alloc_calls = 0;
	else if (k == K_FAIL_HOST_ALLOC)
		fc.host_alloc_calls = 0;
	else if (k == K_FAIL_HOST_REGISTER)
		fc.register_calls = 0;
	else if (k == K_FAIL_COPY_SUBMIT)
		fc.copy_submits = 0;
	else if (k == K_FAIL_COPY_EXEC)
		fc.copy_execs = 0;
}

/* FAKECUDA_QUIET applies at once, before the knobs are read too. */
static bool quiet(void)
{
	if (fc.configured)
		return fc.cfg.quiet;
	const char *v = knobs[K_QUIET].set ? knobs[K_QUIET].value : getenv(knobs[K_QUIET].name);
	bool q = false;
	return v && parse_bool(v, &q) == 0 && q;
}

/* PCI bus numbers of the eight GPUs of an HGX H200 board, for the defaults. */
static const unsigned default_buses[8] = {0x18, 0x2a, 0x3a, 0x5d, 0x9a, 0xab, 0xba, 0xdb};

static void config_defaults(struct fc_config *cfg)
{
	memset(cfg, 0, sizeof *cfg);
	cfg->devices = 1;
	for (int i = 0; i < FAKECUDA_MAX_DEVICES; i++) {
		cfg->memory[i] = 4ull << 30;
		cfg->pci[i][0] = (unsigned)(i / 8);
		cfg->pci[i][1] = default_buses[i % 8];
		cfg->pci[i][2] = 0;
	}
	cfg->engines = 2;
	/* Long enough that an engine has not yet read a source the caller reuses right
	 * after queuing its copy, short enough for tests of thousands of copies. */
	cfg->copy_latency_ns = 250 * 1000;
	cfg->driver_version = 13000;
	/* What a context costs on an H200 (cuMemGetInfo before and after the first retain). */
	cfg->context_memory = 300ull << 20;
	snprintf(cfg->name, sizeof cfg->name, "Fake H200");
	cfg->nvml_reversed = true;
	cfg->host_pointer_registered = true;
	cfg->move_bytes = true;
	cfg->read_only_register = true;
	cfg->fail_copy_submit_error = HCU_ERROR_UNKNOWN;
	cfg->fail_copy_exec_error = HCU_ERROR_ILLEGAL_ADDRESS;
}

/* Reads the knobs once (the caller holds the lock): fakecuda_set() values, else the
 * environment, else the defaults. A value that does not parse is reported and left at
 * its default. */
void fc_configure(void)
{
	if (fc.configured)
		return;
	fc.configured = true;
	config_defaults(&fc.cfg);
	for (int k = 0; k < K_COUNT; k++) {
		const char *v = knobs[k].set ? knobs[k].value : getenv(knobs[k].name);
		if (v && apply_knob((enum knob_id)k, v, &fc.cfg))
			fprintf(stderr, "fakecuda: %s=\"%s\" is not a valid value; default kept\n",
			        knobs[k].name, v);
	}
	fc.ndev = fc.cfg.devices;
	for (int i = 0; i < fc.ndev; i++) {
		struct fc_device *d = &fc.dev[i];
		d->index = i;
		d->fd = -1;
		snprintf(d->name, sizeof d->name, "%s", fc.cfg.name);
		d->capacity = fc.cfg.memory[i];
		d->bandwidth = fc.cfg.bandwidth[i];
		d->domain = fc.cfg.pci[i][0];
		d->bus = fc.cfg.pci[i][1];
		d->slot = fc.cfg.pci[i][2];
		d->c.memory_total = d->capacity;
	}
}

/* ---- entering and leaving an entry point ---- */

/* Takes the lock for `call`, or returns why not: a call from a host function, or one
 * before cuInit succeeded (both violations). */
hcu_result fc_enter(const char *call)
{
	pthread_mutex_lock(&fc.lock);
	if (fc_in_host_fn) {
		fc_violation(call, HCU_ERROR_NOT_PERMITTED,
		             "called from a host function (cuLaunchHostFunc: a host function must "
		             "not make any CUDA API call)");
		pthread_mutex_unlock(&fc.lock);
		return HCU_ERROR_NOT_PERMITTED;
	}
	if (!fc.initialized || fc.init_result != HCU_SUCCESS) {
		fc_violation(call, HCU_ERROR_NOT_INITIALIZED,
		             fc.initialized ? "called after cuInit failed (%s)"
		                            : "called before cuInit%s",
		             fc.initialized ? fc_result_name(fc.init_result) : "");
		pthread_mutex_unlock(&fc.lock);
		return HCU_ERROR_NOT_INITIALIZED;
	}
	return HCU_SUCCESS;
}

hcu_result fc_leave(hcu_result r)
{
	pthread_mutex_unlock(&fc.lock);
	return r;
}

static struct fc_context *context_by_handle(void *h);

/* The calling thread's current context, or the violation of having none. */
static hcu_result current(const char *call, struct fc_context **out)
{
	*out = NULL;
	if (tls.depth == 0) {
		fc_violation(call, HCU_ERROR_INVALID_CONTEXT,
		             "no context is current on this thread (the context is per thread: "
		             "cuCtxSetCurrent or cuCtxPushCurrent_v2 on each thread first)");
		return HCU_ERROR_INVALID_CONTEXT;
	}
	void *h = tls.ctx[tls.depth - 1];
	struct fc_context *ctx = context_by_handle(h);
	if (!ctx || !ctx->active) {
		fc_violation(call, HCU_ERROR_CONTEXT_IS_DESTROYED,
		             "the current context %p was destroyed%s", h,
		             ctx ? " (its primary context was released to no reference)" : "");
		return HCU_ERROR_CONTEXT_IS_DESTROYED;
	}
	*out = ctx;
	return HCU_SUCCESS;
}

/* fc_enter() and the current context, which must not have faulted (else its sticky
 * error, no violation). */
hcu_result fc_enter_ctx(const char *call, struct fc_context **ctx)
{
	hcu_result r = fc_enter_ctx_faulted(call, ctx);
	if (r == HCU_SUCCESS && (*ctx)->sticky != HCU_SUCCESS)
		return fc_leave((*ctx)->sticky);
	return r;
}

/* The same, letting a faulted context through: frees and destroys still release what
 * they name there and then return the sticky error. */
hcu_result fc_enter_ctx_faulted(const char *call, struct fc_context **ctx)
{
	hcu_result r = fc_enter(call);
	if (r != HCU_SUCCESS)
		return r;
	r = current(call, ctx);
	if (r != HCU_SUCCESS)
		return fc_leave(r);
	return HCU_SUCCESS;
}

/* ---- handles ---- */

void *fc_handle(const struct fc_object *obj)
{
	return (void *)(uintptr_t)(FC_HANDLE_BASE | (uint64_t)obj->kind << 44 | obj->id);
}

static const char *a_kind(enum fc_kind k)
{
	return k == FC_CONTEXT ? "a context" : k == FC_STREAM ? "a stream" : "an event";
}

static struct fc_object *object_find(uint64_t id)
{
	size_t lo = 0, hi = fc.nobjects;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (fc.objects[mid]->id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < fc.nobjects && fc.objects[lo]->id == id ? fc.objects[lo] : NULL;
}

/* Gives obj a new id and handle. Ids only grow, so appending keeps the table sorted. */
int fc_object_add(struct fc_object *obj, enum fc_kind kind)
{
	if (fc.nobjects == fc.objects_cap) {
		size_t cap = fc.objects_cap ? fc.objects_cap * 2 : 64;
		struct fc_object **p = realloc(fc.objects, cap * sizeof *p);
		if (!p)
			return -1;
		fc.objects = p;
		fc.objects_cap = cap;
	}
	obj->id = fc.next_id++;
	obj->kind = kind;
	fc.objects[fc.nobjects++] = obj;
	return 0;
}

void fc_object_remove(struct fc_object *obj)
{
	for (size_t i = 0; i < fc.nobjects; i++)
		if (fc.objects[i] == obj) {
			memmove(&fc.objects[i], &fc.objects[i + 1],
			        (fc.nobjects - i - 1) * sizeof fc.objects[0]);
			fc.nobjects--;
			return;
		}
}

/* The live object of `kind` behind `handle`, or NULL after counting the violation
 * (`what` names the argument in the message). The caller returns
 * CUDA_ERROR_INVALID_CONTEXT for a context, CUDA_ERROR_INVALID_HANDLE otherwise. */
struct fc_object *fc_lookup(const void *handle, enum fc_kind kind, const char *call,
                            const char *what)
{
	uint64_t v = (uint64_t)(uintptr_t)handle;
	hcu_result code = kind == FC_CONTEXT ? HCU_ERROR_INVALID_CONTEXT : HCU_ERROR_INVALID_HANDLE;
	if ((v & 0xff00000000000000ull) != FC_HANDLE_BASE) {
		fc_violation(call, code, "%s %p is not %s handle this driver returned", what,
		             handle, a_kind(kind));
		return NULL;
	}
	enum fc_kind k = (enum fc_kind)((v >> 44) & 0xf);
	uint64_t id = v & ((1ull << 44) - 1);
	if (k != kind) {
		fc_violation(call, code, "%s %p is %s handle, not %s", what, handle,
		             k >= FC_CONTEXT && k <= FC_EVENT ? a_kind(k) : "a damaged",
		             a_kind(kind));
		return NULL;
	}
	struct fc_object *obj = object_find(id);
	if (!obj) {
		fc_violation(call, code, "%s %p is %s that was destroyed%s", what, handle,
		             a_kind(kind),
		             kind == FC_CONTEXT ? "" : " (or whose context was destroyed)");
		return NULL;
	}
	return obj;
}

static struct fc_context *context_by_handle(void *h)
{
	uint64_t v = (uint64_t)(uintptr_t)h;
	if ((v & 0xff00000000000000ull) != FC_HANDLE_BASE || ((v >> 44) & 0xf) != FC_CONTEXT)
		return NULL;
	return (struct fc_context *)object_find(v & ((1ull << 44) - 1));
}

/* ---- devices ---- */

struct fc_device *fc_device_of_ptr(uint64_t dptr)
{
	if (dptr < FC_DEVICE_BASE)
		return NULL;
	uint64_t i = (dptr - FC_DEVICE_BASE) / FC_DEVICE_SPAN;
	return i < (uint64_t)fc.ndev ? &fc.dev[i] : NULL;
}

static hcu_result check_device(const char *call, hcu_device dev)
{
	if (dev < 0 || dev >= fc.ndev) {
		fc_violation(call, HCU_ERROR_INVALID_DEVICE,
		             "device %d does not exist (%d present)", dev, fc.ndev);
		return HCU_ERROR_INVALID_DEVICE;
	}
	return HCU_SUCCESS;
}

static hcu_result null_argument(const char *call, const char *what)
{
	fc_violation(call, HCU_ERROR_INVALID_VALUE, "%s is NULL", what);
	return HCU_ERROR_INVALID_VALUE;
}

static hcu_result setup_devices(void)
{
	for (int i = 0; i < fc.ndev; i++) {
		struct fc_device *d = &fc.dev[i];
		struct fc_context *ctx = calloc(1, sizeof *ctx);
		if (!ctx || fc_object_add(&ctx->obj, FC_CONTEXT)) {
			free(ctx);
			return HCU_ERROR_OUT_OF_MEMORY;
		}
		ctx->device = i;
		ctx->primary = true;
		d->primary = ctx;
		if (fc_memory_setup(d))
			return HCU_ERROR_UNKNOWN;
		if (fc_engines_start(d))
			return HCU_ERROR_OUT_OF_MEMORY;
	}
	return HCU_SUCCESS;
}

/* ---- initialisation and queries that need no context ---- */

static void config_now(struct fc_config *cfg);

hcu_result cuInit(unsigned int flags)
{
	static const char call[] = "cuInit";
	pthread_mutex_lock(&fc.lock);
	hcu_result r;
	if (fc_in_host_fn) {
		fc_violation(call, HCU_ERROR_NOT_PERMITTED, "called from a host function");
		r = HCU_ERROR_NOT_PERMITTED;
	} else if (flags != 0) {
		fc_violation(call, HCU_ERROR_INVALID_VALUE, "flags 0x%x (must be 0)", flags);
		r = HCU_ERROR_INVALID_VALUE;
	} else {
		if (!fc.initialized) {
			fc_configure();
			fc.initialized = true;
			/* Like the driver, the first call's result is the process's for good. */
			if (fc.cfg.init_result != HCU_SUCCESS)
				fc.init_result = fc.cfg.init_result;
			else if (fc.ndev == 0)
				fc.init_result = HCU_ERROR_NO_DEVICE;
			else
				fc.init_result = setup_devices();
		}
		r = fc.init_result;
	}
	pthread_mutex_unlock(&fc.lock);
	return r;
}

/* Callable before cuInit, like the driver's. */
hcu_result cuDriverGetVersion(int *version)
{
	static const char call[] = "cuDriverGetVersion";
	pthread_mutex_lock(&fc.lock);
	hcu_result r = HCU_SUCCESS;
	if (fc_in_host_fn) {
		fc_violation(call, HCU_ERROR_NOT_PERMITTED, "called from a host function");
		r = HCU_ERROR_NOT_PERMITTED;
	} else if (!version) {
		r = null_argument(call, "version");
	} else if (fc.configured) {
		*version = fc.cfg.driver_version;
	} else {
		/* Without fixing the knobs: a test may still set them. */
		struct fc_config now;
		config_now(&now);
		*version = now.driver_version;
	}
	return fc_leave(r);
}

static hcu_result describe_result(const char *call, hcu_result error, const char **out, bool name)
{
	pthread_mutex_lock(&fc.lock);
	hcu_result r = HCU_SUCCESS;
	if (fc_in_host_fn) {
		fc_violation(call, HCU_ERROR_NOT_PERMITTED, "called from a host function");
		r = HCU_ERROR_NOT_PERMITTED;
	} else if (!out) {
		r = null_argument(call, "the result pointer");
	} else {
		/* An unknown code is CUDA_ERROR_INVALID_VALUE and NULL, as the driver does. */
		int i = result_index(error);
		*out = i < 0 ? NULL : name ? results[i].name : results[i].text;
		if (i < 0)
			r = HCU_ERROR_INVALID_VALUE;
	}
	return fc_leave(r);
}

hcu_result cuGetErrorName(hcu_result error, const char **name)
{
	return describe_result("cuGetErrorName", error, name, true);
}

hcu_result cuGetErrorString(hcu_result error, const char **text)
{
	return describe_result("cuGetErrorString", error, text, false);
}

hcu_result cuDeviceGetCount(int *count)
{
	hcu_result r = fc_enter("cuDeviceGetCount");
	if (r != HCU_SUCCESS)
		return r;
	if (!count)
		return fc_leave(null_argument("cuDeviceGetCount", "count"));
	*count = fc.ndev;
	return fc_leave(HCU_SUCCESS);
}

hcu_result cuDeviceGet(hcu_device *device, int ordinal)
{
	static const char call[] = "cuDeviceGet";
	hcu_result r = fc_enter(call);
	if (r != HCU_SUCCESS)
		return r;
	if (!device)
		return fc_leave(null_argument(call, "device"));
	r = check_device(call, ordinal);
	if (r == HCU_SUCCESS)
		*device = ordinal;
	return fc_leave(r);
}

hcu_result cuDeviceGetName(char *name, int len, hcu_device device)
{
	static const char call[] = "cuDeviceGetName";
	hcu_result r = fc_enter(call);
	if (r != HCU_SUCCESS)
		return r;
	if (!name || len <= 0) {
		fc_violation(call, HCU_ERROR_INVALID_VALUE, "name %p, len %d", (void *)name, len);
		return fc_leave(HCU_ERROR_INVALID_VALUE);
	}
	r = check_device(call, device);
	if (r == HCU_SUCCESS)
		snprintf(name, (size_t)len, "%s", fc.dev[device].name);
	return fc_leave(r);
}

hcu_result cuDeviceTotalMem_v2(size_t *bytes, hcu_device device)
{
	static const char call[] = "cuDeviceTotalMem_v2";
	hcu_result r = fc_enter(call);
	if (r != HCU_SUCCESS)
		return r;
	if (!bytes)
		return fc_leave(null_argument(call, "bytes"));
	r = check_device(call, device);
	if (r == HCU_SUCCESS)
		*bytes = (size_t)fc.dev[device].capacity;
	return fc_leave(r);
}

/* An H200 SXM's values, except where a knob decides. */
static bool attribute_value(const struct fc_device *d, hcu_device_attribute a, int *v)
{
	switch ((int)a) {
	case HCU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK: *v = 1024; break;
	case HCU_DEVICE_ATTRIBUTE_WARP_SIZE: *v = 32; break;
	case HCU_DEVICE_ATTRIBUTE_CLOCK_RATE: *v = 1980000; break; /* kHz */
	case HCU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT: *v = 132; break;
	case HCU_DEVICE_ATTRIBUTE_INTEGRATED: *v = 0; break;
	case HCU_DEVICE_ATTRIBUTE_CAN_MAP_HOST_MEMORY: *v = 1; break;
	case HCU_DEVICE_ATTRIBUTE_COMPUTE_MODE: *v = 0; break; /* default */
	case HCU_DEVICE_ATTRIBUTE_CONCURRENT_KERNELS: *v = 1; break;
	case HCU_DEVICE_ATTRIBUTE_ECC_ENABLED: *v = 1; break;
	case HCU_DEVICE_ATTRIBUTE_PCI_BUS_ID: *v = (int)d->bus; break;
	case HCU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID: *v = (int)d->slot; break;
	case HCU_DEVICE_ATTRIBUTE_TCC_DRIVER: *v = 0; break;
	case HCU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH: *v = 6144; break;
	case HCU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE: *v = 50 << 20; break;
	case HCU_DEVICE_ATTRIBUTE_ASYNC_ENGINE_COUNT: *v = fc.cfg.engines; break;
	case HCU_DEVICE_ATTRIBUTE_UNIFIED_ADDRESSING: *v = 1; break;
	case HCU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID: *v = (int)d->domain; break;
	case HCU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR: *v = 9; break;
	case HCU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR: *v = 0; break;
	case HCU_DEVICE_ATTRIBUTE_MANAGED_MEMORY: *v = 1; break;
	case HCU_DEVICE_ATTRIBUTE_PAGEABLE_MEMORY_ACCESS: *v = 0; break;
	case HCU_DEVICE_ATTRIBUTE_CONCURRENT_MANAGED_ACCESS: *v = 1; break;
	case HCU_DEVICE_ATTRIBUTE_CAN_USE_HOST_POINTER_FOR_REGISTERED_MEM:
		*v = fc.cfg.host_pointer_registered;
		break;
	case HCU_DEVICE_ATTRIBUTE_HOST_REGISTER_SUPPORTED: *v = 1; break;
	case HCU_DEVICE_ATTRIBUTE_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED: *v = 1; break;
	case HCU_DEVICE_ATTRIBUTE_READ_ONLY_HOST_REGISTER_SUPPORTED:
		*v = fc.cfg.read_only_register;
		break;
	case HCU_DEVICE_ATTRIBUTE_MEMORY_POOLS_SUPPORTED: *v = 1; break;
	case HCU_DEVICE_ATTRIBUTE_GPU_DIRECT_RDMA_SUPPORTED: *v = 1; break;
	default: return false;
	}
	return true;
}

hcu_result cuDeviceGetAttribute(int *value, hcu_device_attribute attribute, hcu_device device)
{
	static const char call[] = "cuDeviceGetAttribute";
	hcu_result r = fc_enter(call);
	if (r != HCU_SUCCESS)
		return r;
	if (!value)
		return fc_leave(null_argument(call, "value"));
	r = check_device(call, device);
	if (r == HCU_SUCCESS && !attribute_value(&fc.dev[device], attribute, value)) {
		/* Maybe a real attribute the fake does not model: say so, count nothing. */
		fc_note("cuDeviceGetAttribute: attribute %d is not modelled; returning "
		        "CUDA_ERROR_INVALID_VALUE (add it to attribute_value())",
		        (int)attribute);
		r = HCU_ERROR_INVALID_VALUE;
	}
	return fc_leave(r);
}

hcu_result cuDeviceGetPCIBusId(char *bus_id, int len, hcu_device device)
{
	static const char call[] = "cuDeviceGetPCIBusId";
	hcu_result r = fc_enter(call);
	if (r != HCU_SUCCESS)
		return r;
	if (!bus_id || len <= 0) {
		fc_violation(call, HCU_ERROR_INVALID_VALUE, "bus_id %p, len %d", (void *)bus_id,
		             len);
		return fc_leave(HCU_ERROR_INVALID_VALUE);
	}
	r = check_device(call, device);
	if (r == HCU_SUCCESS) {
		/* The driver's form: a 4-digit domain, upper-case hex (NVML's busId has 8). */
		const struct fc_device *d = &fc.dev[device];
		snprintf(bus_id, (size_t)len, "%04X:%02X:%02X.0", d->domain, d->bus, d->slot);
	}
	return fc_leave(r);
}

/* ---- contexts ---- */

static hcu_result context_activate(struct fc_context *ctx)
{
	struct fc_device *d = &fc.dev[ctx->device];
	if (d->used + fc.cfg.context_memory > d->capacity)
		return HCU_ERROR_OUT_OF_MEMORY;
	ctx->null_stream = fc_stream_new(ctx, HCU_STREAM_DEFAULT, true);
	if (!ctx->null_stream)
		return HCU_ERROR_OUT_OF_MEMORY;
	ctx->active = true;
	ctx->sticky = HCU_SUCCESS;
	d->used += fc.cfg.context_memory;
	d->c.contexts_now++;
	d->c.contexts_created++;
	return HCU_SUCCESS;
}

/* Ends a context as the driver does: its work finishes (this waits, letting the lock
 * go), then everything it owns goes with it: streams, events, device memory, its host
 * allocations and registrations. */
static void context_teardown(struct fc_context *ctx)
{
	struct fc_device *d = &fc.dev[ctx->device];
	ctx->active = false;
	ctx->dying = true;
	fc_streams_drain(ctx);
	fc_streams_release_context(ctx);
	fc_memory_release_context(ctx);
	ctx->null_stream = NULL;
	ctx->sticky = HCU_SUCCESS;
	d->used -= fc.cfg.context_memory;
	d->c.contexts_now--;
	ctx->dying = false;
	pthread_cond_broadcast(&fc.done);
}

static hcu_result context_arg(const char *call, hcu_context h, struct fc_context **out)
{
	struct fc_object *obj = fc_lookup(h, FC_CONTEXT, call, "context");
	if (!obj)
		return HCU_ERROR_INVALID_CONTEXT;
	struct fc_context *ctx = (struct fc_context *)obj;
	if (!ctx->active) {
		fc_violation(call, HCU_ERROR_INVALID_CONTEXT,
		             "context %p is device %d's primary context, released to no reference "
		             "(retain it first)",
		             (void *)h, ctx->device);
		return HCU_ERROR_INVALID_CONTEXT;
	}
	*out = ctx;
	return HCU_SUCCESS;
}

hcu_result cuDevicePrimaryCtxRetain(hcu_context *pctx, hcu_device device)
{
	static const char call[] = "cuDevicePrimaryCtxRetain";
	hcu_result r = fc_enter(call);
	if (r != HCU_SUCCESS)
		return r;
	if (!pctx)
		return fc_leave(null_argument(call, "pctx"));
	r = check_device(call, device);
	if (r != HCU_SUCCESS)
		return fc_leave(r);
	struct fc_device *d = &fc.dev[device];
	struct fc_context *ctx = d->primary;
	/* A last release may be tearing it down (waiting for its work): retain after. */
	while (ctx->dying)
		pthread_cond_wait(&fc.done, &fc.lock);
	if (ctx->primary_refs == 0) {
		r = context_activate(ctx);
		if (r != HCU_SUCCESS)
			return fc_leave(r);
	}
	ctx->primary_refs++;
	d->c.primary_retains++;
	*pctx = fc_handle(&ctx->obj);
	return fc_leave(HCU_SUCCESS);
}

hcu_result cuDevicePrimaryCtxRelease_v2(hcu_device device)
{
	static const char call[] = "cuDevicePrimaryCtxRelease_v2";
	hcu_result r = fc_enter(call);
	if (r != HCU_SUCCESS)
		return r;
	r = check_device(call, device);
	if (r != HCU_SUCCESS)
		return fc_leave(r);
	struct fc_context *ctx = fc.dev[device].primary;
	if (ctx->primary_refs == 0) {
		fc_violation(call, HCU_ERROR_INVALID_CONTEXT,
		             "device %d's primary context is not retained (more releases than "
		             "retains)",
		             device);
		return fc_leave(HCU_ERROR_INVALID_CONTEXT);
	}
	if (--ctx->primary_refs == 0)
		context_teardown(ctx);
	return fc_leave(HCU_SUCCESS);
}

static hcu_result ctx_create(const char *call, hcu_context *pctx, unsigned int flags,
                             hcu_device device)
{
	hcu_result r = fc_enter(call);
	if (r != HCU_SUCCESS)
		return r;
	if (!pctx)
		return fc_leave(null_argument(call, "pctx"));
	if (flags & ~(unsigned)HCU_CTX_FLAGS_MASK) {
		fc_violation(call, HCU_ERROR_INVALID_VALUE, "flags 0x%x", flags);
		return fc_leave(HCU_ERROR_INVALID_VALUE);
	}
	r = check_device(call, device);
	if (r != HCU_SUCCESS)
		return fc_leave(r);
	if (tls.depth == FC_STACK_MAX) {
		fc_note("%s: this thread's context stack is %d deep; refusing", call, FC_STACK_MAX);
		return fc_leave(HCU_ERROR_OUT_OF_MEMORY);
	}
	struct fc_context *ctx = calloc(1, sizeof *ctx);
	if (!ctx || fc_object_add(&ctx->obj, FC_CONTEXT)) {
		free(ctx);
		return fc_leave(HCU_ERROR_OUT_OF_MEMORY);
	}
	ctx->device = device;
	ctx->flags = flags;
	r = context_activate(ctx);
	if (r != HCU_SUCCESS) {
		fc_object_remove(&ctx->obj);
		free(ctx);
		return fc_leave(r);
	}
	/* The new context is pushed: it becomes current to the calling thread. */
	*pctx = fc_handle(&ctx->obj);
	tls.ctx[tls.depth++] = *pctx;
	return fc_leave(HCU_SUCCESS);
}

hcu_result cuCtxCreate_v2(hcu_context *pctx, unsigned int flags, hcu_device device)
{
	return ctx_create("cuCtxCreate_v2", pctx, flags, device);
}

hcu_result cuCtxCreate_v4(hcu_context *pctx, struct CUctxCreateParams_st *params,
                          unsigned int flags, hcu_device device)
{
	if (params) {
		/* Execution affinity and CIG are outside what the fake models. */
		pthread_mutex_lock(&fc.lock);
		fc_note("cuCtxCreate_v4: context parameters are not modelled; pass NULL");
		return fc_leave(HCU_ERROR_NOT_SUPPORTED);
	}
	return ctx_create("cuCtxCreate_v4", pctx, flags, device);
}

hcu_result cuCtxDestroy_v2(hcu_context h)
{
	static const char call[] = "cuCtxDestroy_v2";
	hcu_result r = fc_enter(call);
	if (r != HCU_SUCCESS)
		return r;
	struct fc_context *ctx;
	r = context_arg(call, h, &ctx);
	if (r != HCU_SUCCESS)
		return fc_leave(r);
	if (ctx->primary) {
		fc_violation(call, HCU_ERROR_INVALID_CONTEXT,
		             "context %p is device %d's primary context: release it with "
		             "cuDevicePrimaryCtxRelease_v2",
		             (void *)h, ctx->device);
		return fc_leave(HCU_ERROR_INVALID_CONTEXT);
	}
	/* Gone for every later lookup at once; other threads where it is current get
	 * CUDA_ERROR_CONTEXT_IS_DESTROYED. */
	fc_object_remove(&ctx->obj);
	if (tls.depth > 0 && tls.ctx[tls.depth - 1] == (void *)h)
		tls.depth--;
	context_teardown(ctx);
	free(ctx);
	return fc_leave(HCU_SUCCESS);
}

hcu_result cuCtxGetCurrent(hcu_context *pctx)
{
	static const char call[] = "cuCtxGetCurrent";
	hcu_result r = fc_enter(call);
	if (r != HCU_SUCCESS)
		return r;
	if (!pctx)
		return fc_leave(null_argument(call, "pctx"));
	*pctx = tls.depth ? tls.ctx[tls.depth - 1] : NULL;
	return fc_leave(HCU_SUCCESS);
}

hcu_result cuCtxSetCurrent(hcu_context h)
{
	static const char call[] = "cuCtxSetCurrent";
	hcu_result r = fc_enter(call);
	if (r != HCU_SUCCESS)
		return r;
	if (!h) {
		if (tls.depth > 0)
			tls.depth--;
		return fc_leave(HCU_SUCCESS);
	}
	struct fc_context *ctx;
	r = context_arg(call, h, &ctx);
	if (r != HCU_SUCCESS)
		return fc_leave(r);
	if (tls.depth == 0)
		tls.depth = 1;
	tls.ctx[tls.depth - 1] = h;
	return fc_leave(HCU_SUCCESS);
}

hcu_result cuCtxPushCurrent_v2(hcu_context h)
{
	static const char call[] = "cuCtxPushCurrent_v2";
	hcu_result r = fc_enter(call);
	if (r != HCU_SUCCESS)
		return r;
	struct fc_context *ctx;
	r = context_arg(call, h, &ctx);
	if (r != HCU_SUCCESS)
		return fc_leave(r);
	if (tls.depth == FC_STACK_MAX) {
		fc_note("%s: this thread's context stack is %d deep; refusing", call, FC_STACK_MAX);
		return fc_leave(HCU_ERROR_OUT_OF_MEMORY);
	}
	tls.ctx[tls.depth++] = h;
	return fc_leave(HCU_SUCCESS);
}

hcu_result cuCtxPopCurrent_v2(hcu_context *pctx)
{
	static const char call[] = "cuCtxPopCurrent_v2";
	hcu_result r = fc_enter(call);
	if (r != HCU_SUCCESS)
		return r;
	if (tls.depth == 0) {
		fc_violation(call, HCU_ERROR_INVALID_CONTEXT,
		             "this thread's context stack is empty (more pops than pushes)");
		return fc_leave(HCU_ERROR_INVALID_CONTEXT);
	}
	void *h = tls.ctx[--tls.depth];
	if (pctx)
		*pctx = h;
	return fc_leave(HCU_SUCCESS);
}

hcu_result cuCtxGetDevice(hcu_device *device)
{
	static const char call[] = "cuCtxGetDevice";
	struct fc_context *ctx;
	hcu_result r = fc_enter_ctx(call, &ctx);
	if (r != HCU_SUCCESS)
		return r;
	if (!device)
		return fc_leave(null_argument(call, "device"));
	*device = ctx->device;
	return fc_leave(HCU_SUCCESS);
}

/* ---- controls ---- */

static int knob_index(const char *name)
{
	for (int k = 0; k < K_COUNT; k++)
		if (name && strcmp(name, knobs[k].name) == 0)
			return k;
	return -1;
}

/* The configuration the knobs give now: defaults, then the environment, then
 * fakecuda_set() values, each value checked. */
static void config_now(struct fc_config *cfg)
{
	config_defaults(cfg);
	for (int k = 0; k < K_COUNT; k++) {
		const char *v = knobs[k].set ? knobs[k].value : getenv(knobs[k].name);
		if (v)
			(void)apply_knob((enum knob_id)k, v, cfg);
	}
}

int fakecuda_set(const char *name, const char *value)
{
	int k = knob_index(name);
	if (k < 0) {
		fprintf(stderr, "fakecuda_set: no knob named %s\n", name ? name : "(null)");
		return -1;
	}
	struct fc_config scratch;
	config_defaults(&scratch);
	if (value && (strlen(value) >= sizeof knobs[k].value ||
	              apply_knob((enum knob_id)k, value, &scratch))) {
		fprintf(stderr, "fakecuda_set: %s=\"%s\" is not a valid value\n", name, value);
		return -1;
	}
	pthread_mutex_lock(&fc.lock);
	int rc = 0;
	if (fc.configured && k < K_READ_ONLY_REGISTER) {
		fprintf(stderr,
		        "fakecuda_set: %s is read at the first cuInit or nvmlInit_v2, "
		        "which has happened\n",
		        name);
		rc = -2;
	} else {
		knobs[k].set = value != NULL;
		if (value)
			snprintf(knobs[k].value, sizeof knobs[k].value, "%s", value);
		if (fc.configured) {
			struct fc_config now;
			config_now(&now);
			fc.cfg.read_only_register = now.read_only_register;
			fc.cfg.quiet = now.quiet;
			fc.cfg.fail_alloc = now.fail_alloc;
			fc.cfg.fail_host_alloc = now.fail_host_alloc;
			fc.cfg.fail_register = now.fail_register;
			fc.cfg.fail_copy_submit = now.fail_copy_submit;
			fc.cfg.fail_copy_submit_error = now.fail_copy_submit_error;
			fc.cfg.fail_copy_exec = now.fail_copy_exec;
			fc.cfg.fail_copy_exec_error = now.fail_copy_exec_error;
		}
		restart_count((enum knob_id)k);
	}
	pthread_mutex_unlock(&fc.lock);
	return rc;
}

int fakecuda_counters_get(struct fakecuda_counters *out, size_t size)
{
	if (!out || size != sizeof *out)
		return -1;
	pthread_mutex_lock(&fc.lock);
	*out = fc.c;
	out->devices = fc.initialized && fc.init_result == HCU_SUCCESS ? fc.ndev : 0;
	out->nvml_inits_now = (unsigned long long)fc.nvml_inits;
	for (int i = 0; i < fc.ndev; i++) {
		const struct fc_device *d = &fc.dev[i];
		out->device[i] = d->c;
		out->device[i].memory_used_now = d->used;
		out->device[i].memory_total = d->capacity;
		out->device[i].primary_retains_now =
		        d->primary ? (unsigned long long)d->primary->primary_refs : 0;
	}
	pthread_mutex_unlock(&fc.lock);
	return 0;
}

void fakecuda_counters_reset(void)
{
	pthread_mutex_lock(&fc.lock);
	fc.c.violations = 0;
	memset(fc.c.messages, 0, sizeof fc.c.messages);
	fc.c.async_copies = 0;
	fc.c.pageable_async_copies = 0;
	fc.c.sync_copies = 0;
	fc.c.ctx_synchronize_calls = 0;
	fc.c.host_functions = 0;
	fc.c.registrations = 0;
	fc.c.host_allocations = 0;
	for (int i = 0; i < FAKECUDA_MAX_DEVICES; i++) {
		struct fakecuda_device_counters *c = &fc.dev[i].c;
		c->contexts_created = 0;
		c->primary_retains = 0;
		c->allocations = 0;
		c->bytes_to_device = 0;
		c->bytes_from_device = 0;
		c->copies_in_flight_max = 0;
	}
	pthread_mutex_unlock(&fc.lock);
}

unsigned long long fakecuda_violations(void)
{
	pthread_mutex_lock(&fc.lock);
	unsigned long long v = fc.c.violations;
	pthread_mutex_unlock(&fc.lock);
	return v;
}

int fakecuda_check_leaks(void)
{
	static const char call[] = "fakecuda_check_leaks";
	pthread_mutex_lock(&fc.lock);
	int n = fc_memory_leaks() + fc_stream_leaks();
	for (int i = 0; i < fc.ndev; i++) {
		const struct fc_context *p = fc.dev[i].primary;
		if (p && p->primary_refs > 0) {
			fc_violation(call, HCU_SUCCESS,
			             "leak: device %d's primary context %p is still retained (%d "
			             "reference(s); cuDevicePrimaryCtxRelease_v2)",
			             i, fc_handle(&p->obj), p->primary_refs);
			n++;
		}
	}
	for (size_t i = 0; i < fc.nobjects; i++) {
		const struct fc_context *ctx = (const struct fc_context *)fc.objects[i];
		if (fc.objects[i]->kind == FC_CONTEXT && !ctx->primary) {
			fc_violation(call, HCU_SUCCESS,
			             "leak: context %p on device %d was never destroyed "
			             "(cuCtxDestroy_v2)",
			             fc_handle(&ctx->obj), ctx->device);
			n++;
		}
	}
	if (fc.nvml_inits > 0) {
		fc_violation(call, HCU_SUCCESS,
		             "leak: nvmlInit_v2 called %d more time(s) than nvmlShutdown",
		             fc.nvml_inits);
		n++;
	}
	pthread_mutex_unlock(&fc.lock);
	return n;
}

static hcu_result device_bytes(uint64_t dptr, size_t n, struct fc_device **d)
{
	const struct fc_alloc *a = fc_alloc_containing(dptr);
	if (!a || n > a->size || dptr - a->base > a->size - n)
		return HCU_ERROR_INVALID_VALUE;
	*d = fc_device_of_ptr(dptr);
	return HCU_SUCCESS;
}

int fakecuda_device_read(unsigned long long dptr, void *dst, size_t n)
{
	struct fc_device *d;
	pthread_mutex_lock(&fc.lock);
	hcu_result r = dst ? device_bytes(dptr, n, &d) : HCU_ERROR_INVALID_VALUE;
	if (r == HCU_SUCCESS && fc_dev_read(d, dptr, dst, n))
		r = HCU_ERROR_UNKNOWN;
	pthread_mutex_unlock(&fc.lock);
	return (int)r;
}

int fakecuda_device_flip_byte(unsigned long long dptr)
{
	struct fc_device *d;
	unsigned char b;
	pthread_mutex_lock(&fc.lock);
	hcu_result r = device_bytes(dptr, 1, &d);
	if (r == HCU_SUCCESS) {
		if (fc_dev_read(d, dptr, &b, 1)) {
			r = HCU_ERROR_UNKNOWN;
		} else {
			b ^= 0xff;
			if (fc_dev_write(d, dptr, &b, 1))
				r = HCU_ERROR_UNKNOWN;
		}
	}
	pthread_mutex_unlock(&fc.lock);
	return (int)r;
}

int fakecuda_version(void)
{
	return FAKECUDA_API_VERSION;
}

/* FAKECUDA_LEAK_CHECK_AT_EXIT=1: the leak check as the process exits (normally or by
 * exit()), and exit status 1 if any violation was ever counted. A CLI may leave its
 * memory to process exit, so this is a choice per test, not the default. */
__attribute__((destructor)) static void check_at_exit(void)
{
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 5;
	/* Another thread may be stuck in the driver as the process ends. */
	if (pthread_mutex_timedlock(&fc.lock, &until) != 0)
		return;
	bool want = fc.configured && fc.cfg.leak_check_at_exit;
	bool leaks = !fc.cfg.exit_check_violations_only;
	pthread_mutex_unlock(&fc.lock);
	if (!want)
		return;
	if (leaks)
		fakecuda_check_leaks();
	pthread_mutex_lock(&fc.lock);
	unsigned long long v = fc.c.violations;
	if (v) {
		fprintf(stderr, "fakecuda: %llu violation(s) in this process; the first:\n", v);
		for (unsigned long long i = 0; i < v && i < FAKECUDA_MESSAGES; i++)
			fprintf(stderr, "fakecuda:   %s\n", fc.c.messages[i]);
	}
	pthread_mutex_unlock(&fc.lock);
	if (v) {
		fflush(stderr);
		_exit(1);
	}
}

/* ---- what fakenvml.c asks (one state for both libraries) ---- */

int fakecuda__nvml_init(void);
int fakecuda__nvml_shutdown(void);
int fakecuda__nvml_count(void);
int fakecuda__nvml_device(int index, struct fakecuda__nvml_device *out);
int fakecuda__nvml_find(const char *bus_id);
void fakecuda__nvml_violation(const char *call, const char *message);

int fakecuda__nvml_init(void)
{
	pthread_mutex_lock(&fc.lock);
	fc_configure();
	fc.nvml_inits++;
	pthread_mutex_unlock(&fc.lock);
	return 0;
}

int fakecuda__nvml_shutdown(void)
{
	pthread_mutex_lock(&fc.lock);
	int rc = fc.nvml_inits > 0 ? 0 : -1;
	if (rc == 0)
		fc.nvml_inits--;
	pthread_mutex_unlock(&fc.lock);
	return rc;
}

/* -1 while NVML is not initialised. */
int fakecuda__nvml_count(void)
{
	pthread_mutex_lock(&fc.lock);
	int n = fc.nvml_inits > 0 ? fc.ndev : -1;
	pthread_mutex_unlock(&fc.lock);
	return n;
}

static int nvml_ordinal(int index)
{
	return fc.cfg.nvml_reversed ? fc.ndev - 1 - index : index;
}

int fakecuda__nvml_device(int index, struct fakecuda__nvml_device *out)
{
	pthread_mutex_lock(&fc.lock);
	int rc = -1;
	if (fc.nvml_inits > 0 && index >= 0 && index < fc.ndev) {
		const struct fc_device *d = &fc.dev[nvml_ordinal(index)];
		snprintf(out->name, sizeof out->name, "%s", d->name);
		out->domain = d->domain;
		out->bus = d->bus;
		out->slot = d->slot;
		out->total = d->capacity;
		out->used = d->used;
		rc = 0;
	}
	pthread_mutex_unlock(&fc.lock);
	return rc;
}

/* The NVML index of the device at `bus_id`; -1 if none is there, -2 if it does not
 * parse. */
int fakecuda__nvml_find(const char *bus_id)
{
	unsigned pci[3];
	if (!bus_id || parse_pci(bus_id, pci))
		return -2;
	pthread_mutex_lock(&fc.lock);
	int rc = -1;
	for (int i = 0; i < fc.ndev && rc < 0; i++) {
		const struct fc_device *d = &fc.dev[nvml_ordinal(i)];
		if (d->domain == pci[0] && d->bus == pci[1] && d->slot == pci[2])
			rc = i;
	}
	pthread_mutex_unlock(&fc.lock);
	return rc;
}

void fakecuda__nvml_violation(const char *call, const char *message)
{
	pthread_mutex_lock(&fc.lock);
	fc_violation(call, HCU_SUCCESS, "%s", message);
	pthread_mutex_unlock(&fc.lock);
}

/* Each entry point here has its src/cuda_abi.h type (and so cuda.h's). */
SAME_TYPE(cuInit, hcu_init_fn);
SAME_TYPE(cuDriverGetVersion, hcu_driver_get_version_fn);
SAME_TYPE(cuGetErrorName, hcu_get_error_name_fn);
SAME_TYPE(cuGetErrorString, hcu_get_error_string_fn);
SAME_TYPE(cuDeviceGetCount, hcu_device_get_count_fn);
SAME_TYPE(cuDeviceGet, hcu_device_get_fn);
SAME_TYPE(cuDeviceGetName, hcu_device_get_name_fn);
SAME_TYPE(cuDeviceTotalMem_v2, hcu_device_total_mem_fn);
SAME_TYPE(cuDeviceGetAttribute, hcu_device_get_attribute_fn);
SAME_TYPE(cuDeviceGetPCIBusId, hcu_device_get_pci_bus_id_fn);
SAME_TYPE(cuDevicePrimaryCtxRetain, hcu_primary_ctx_retain_fn);
SAME_TYPE(cuDevicePrimaryCtxRelease_v2, hcu_primary_ctx_release_fn);
SAME_TYPE(cuCtxCreate_v2, hcu_ctx_create_fn);
SAME_TYPE(cuCtxCreate_v4, hcu_ctx_create_v4_fn);
SAME_TYPE(cuCtxDestroy_v2, hcu_ctx_destroy_fn);
SAME_TYPE(cuCtxGetCurrent, hcu_ctx_get_current_fn);
SAME_TYPE(cuCtxSetCurrent, hcu_ctx_set_current_fn);
SAME_TYPE(cuCtxPushCurrent_v2, hcu_ctx_push_current_fn);
SAME_TYPE(cuCtxPopCurrent_v2, hcu_ctx_pop_current_fn);
SAME_TYPE(cuCtxGetDevice, hcu_ctx_get_device_fn);
SAME_TYPE(fakecuda__nvml_init, fakecuda__nvml_init_fn);
SAME_TYPE(fakecuda__nvml_shutdown, fakecuda__nvml_shutdown_fn);
SAME_TYPE(fakecuda__nvml_count, fakecuda__nvml_count_fn);
SAME_TYPE(fakecuda__nvml_device, fakecuda__nvml_device_fn);
SAME_TYPE(fakecuda__nvml_find, fakecuda__nvml_find_fn);
SAME_TYPE(fakecuda__nvml_violation, fakecuda__nvml_violation_fn);
