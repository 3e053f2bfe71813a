/*
 * fakecuda.h - the control API of the strict fake CUDA driver (tests/fakecuda/README.md).
 *
 * The fake is a libcuda.so.1 that exports the driver API entry points hoist calls and
 * counts every breach of the driver's rules as a violation. A test reaches these
 * controls either by linking the fake (they are plain extern functions) or, when the
 * code under test dlopens the driver by path, by dlopening the same path and looking
 * them up: fakecuda_load() below does that. Both reach the same process-wide state.
 *
 * Every control may be called from any thread, before or after cuInit, and never counts
 * as a CUDA call (a host function may call them).
 */
#ifndef FAKECUDA_H
#define FAKECUDA_H

#include <dlfcn.h>
#include <stddef.h>

/* Bumped whenever a struct below changes; fakecuda_load() refuses a library of another
 * version. */
#define FAKECUDA_API_VERSION 1

#define FAKECUDA_MAX_DEVICES 16
/* The first violations' messages are kept, each cut to FAKECUDA_MESSAGE_SIZE - 1. */
#define FAKECUDA_MESSAGES 16
#define FAKECUDA_MESSAGE_SIZE 320

/* Per device. "now" fields are the state at the time of the call; the others count
 * from the start or from the last fakecuda_counters_reset(). */
struct fakecuda_device_counters {
	/* Live contexts: the primary one while retained, plus those of cuCtxCreate. */
	unsigned long long contexts_now;
	/* Contexts that came to life: cuCtxCreate, and a primary context's first retain. */
	unsigned long long contexts_created;
	/* The primary context's reference count, and cuDevicePrimaryCtxRetain calls. */
	unsigned long long primary_retains_now;
	unsigned long long primary_retains;
	unsigned long long allocations_now;
	unsigned long long allocated_bytes_now; /* as asked for */
	unsigned long long allocations;
	/* What cuMemGetInfo counts as used: allocations in 2 MiB pages plus each live
	 * context's cost (FAKECUDA_CONTEXT_MEMORY). */
	unsigned long long memory_used_now;
	unsigned long long memory_total;
	unsigned long long bytes_to_device;   /* copied host to device, sync and async */
	unsigned long long bytes_from_device; /* copied device to host */
	/* Most copies executing at once on the device's copy engines. */
	unsigned long long copies_in_flight_max;
};

struct fakecuda_counters {
	unsigned long long violations;
	/* The first min(violations, FAKECUDA_MESSAGES) messages. */
	char messages[FAKECUDA_MESSAGES][FAKECUDA_MESSAGE_SIZE];
	unsigned long long async_copies; /* cuMemcpy*Async calls queued */
	/* Async copies whose host side was not page-locked for the stream's context: legal,
	 * but the real driver then copies synchronously. */
	unsigned long long pageable_async_copies;
	unsigned long long sync_copies; /* cuMemcpyHtoD_v2 / cuMemcpyDtoH_v2 */
	unsigned long long ctx_synchronize_calls;
	unsigned long long host_functions; /* cuLaunchHostFunc calls */
	unsigned long long registrations_now;
	unsigned long long registrations; /* successful cuMemHostRegister calls */
	unsigned long long host_allocations_now;
	unsigned long long host_allocations; /* successful cuMemHostAlloc calls */
	unsigned long long streams_now;      /* created, not destroyed */
	unsigned long long events_now;
	unsigned long long nvml_inits_now; /* nvmlInit_v2 not yet matched by nvmlShutdown */
	int devices;                       /* devices the driver reports (0 before cuInit) */
	struct fakecuda_device_counters device[FAKECUDA_MAX_DEVICES];
};

/* Sets knob `name` (an environment variable name of README.md, e.g. "FAKECUDA_DEVICES")
 * to `value`, over the environment; NULL value forgets the setting. The device knobs
 * (count, memory, engines, names, ...) are read once, at the first cuInit or
 * nvmlInit_v2, and refuse a change after that; the fault injections (FAKECUDA_FAIL_*),
 * FAKECUDA_READ_ONLY_REGISTER and FAKECUDA_QUIET apply at once, an injection counting
 * its calls from the time it is set. Returns 0, or -1 for an unknown knob or value
 * (with a line on stderr), or -2 for a device knob after initialisation. */
int fakecuda_set(const char *name, const char *value);

/* Copies the counters into *out; `size` must be sizeof(struct fakecuda_counters), so
 * that a test built against another version of this header is refused (-1). */
int fakecuda_counters_get(struct fakecuda_counters *out, size_t size);

/* Zeroes the counters that count (violations and their messages included); the "now"
 * fields are state and stay. */
void fakecuda_counters_reset(void);

/* The number of violations so far (since the last reset). */
unsigned long long fakecuda_violations(void);

/* Counts as a violation, and returns the number of, every object still alive: device
 * allocations, host allocations, registrations, streams, events, created contexts,
 * retained primary contexts, NVML initialisations. Set FAKECUDA_LEAK_CHECK_AT_EXIT=1 to
 * have it run as the process exits, which then exits with status 1 (and the messages
 * on stderr) if there has been any violation at all. */
int fakecuda_check_leaks(void);

/* Reads `n` bytes of device memory at `dptr` into `dst`, with no context and no
 * ordering (finish the copies first). The range must lie in one live allocation.
 * Returns 0, or a CUresult (CUDA_ERROR_INVALID_VALUE) without counting a violation. */
int fakecuda_device_read(unsigned long long dptr, void *dst, size_t n);

/* Inverts every bit of the device byte at `dptr` (for tests of verification). Same
 * rules and results as fakecuda_device_read(). */
int fakecuda_device_flip_byte(unsigned long long dptr);

/* FAKECUDA_API_VERSION of the library. */
int fakecuda_version(void);

/* The controls, looked up in a library opened by path. */
struct fakecuda_api {
	void *lib;
	int (*set)(const char *name, const char *value);
	int (*counters_get)(struct fakecuda_counters *out, size_t size);
	void (*counters_reset)(void);
	unsigned long long (*violations)(void);
	int (*check_leaks)(void);
	int (*device_read)(unsigned long long dptr, void *dst, size_t n);
	int (*device_flip_byte)(unsigned long long dptr);
	int (*version)(void);
};

/* Opens the fake at `path` (the same path the code under test loads, so both share one
 * copy of the driver's state) and fills *api. Returns 0, or -1 when the library cannot
 * be opened, lacks a control (then it is not the fake) or is of another version;
 * dlerror() may say more. The library stays loaded. */
static inline int fakecuda_load(const char *path, struct fakecuda_api *api)
{
	struct {
		const char *name;
		void **slot;
	} syms[] = {
	        {"fakecuda_set", (void **)&api->set},
	        {"fakecuda_counters_get", (void **)&api->counters_get},
	        {"fakecuda_counters_reset", (void **)&api->counters_reset},
	        {"fakecuda_violations", (void **)&api->violations},
	        {"fakecuda_check_leaks", (void **)&api->check_leaks},
	        {"fakecuda_device_read", (void **)&api->device_read},
	        {"fakecuda_device_flip_byte", (void **)&api->device_flip_byte},
	        {"fakecuda_version", (void **)&api->version},
	};
	api->lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!api->lib)
		return -1;
	for (size_t i = 0; i < sizeof syms / sizeof syms[0]; i++) {
		/* POSIX: dlsym's result converts to a function pointer; stored through void **
		 * to avoid ISO C's cast warning. */
		*syms[i].slot = dlsym(api->lib, syms[i].name);
		if (!*syms[i].slot)
			return -1;
	}
	return api->version() == FAKECUDA_API_VERSION ? 0 : -1;
}

#endif /* FAKECUDA_H */
