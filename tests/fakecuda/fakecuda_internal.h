/* fakecuda_internal.h - the fake driver's state, shared by its files: fakecuda.c (set-up,
 * knobs, violations, handles, devices, contexts, controls), fakecuda_mem.c (device and
 * host memory) and fakecuda_stream.c (streams, events, copy engines), and the interface
 * fakenvml.c reaches through the loaded libcuda.so.1.
 *
 * One mutex, fc.lock, guards everything here. Every entry point takes it for its whole
 * run except while it waits (on fc.done, which is broadcast whenever work completes);
 * engine threads take it to pick and to finish an operation and let it go while they
 * move the bytes. With one lock there is no lock order to get wrong. */
#ifndef FAKECUDA_INTERNAL_H
#define FAKECUDA_INTERNAL_H

#include "cuda_abi.h"
#include "fakecuda.h"

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Device d's pointers lie in [FC_DEVICE_BASE + d * FC_DEVICE_SPAN, + FC_DEVICE_SPAN):
 * non-canonical x86-64 addresses, so that dereferencing one on the host faults. */
#define FC_DEVICE_BASE 0x5200000000000000ull
#define FC_DEVICE_SPAN (1ull << 40)
/* Device memory is handed out, and counted as used, in 2 MiB pages, with a free page
 * between allocations so that a copy past the end of one hits none. */
#define FC_PAGE (2ull << 20)
/* Handles (contexts, streams, events) are numbers too, never addresses of our objects:
 * FC_HANDLE_BASE | kind << 44 | id, ids never reused. A stale or wrong-kind handle is
 * told apart from a live one without touching memory. */
#define FC_HANDLE_BASE 0x4300000000000000ull
#define FC_MAX_ENGINES 8

enum fc_kind { FC_CONTEXT = 1, FC_STREAM = 2, FC_EVENT = 3 };

/* First member of every object that has a handle. */
struct fc_object {
	uint64_t id;
	enum fc_kind kind;
};

struct fc_config {
	int devices;
	uint64_t memory[FAKECUDA_MAX_DEVICES];
	uint64_t bandwidth[FAKECUDA_MAX_DEVICES]; /* bytes/s per direction, 0: no cap */
	uint64_t copy_latency_ns;                 /* least time any device operation takes */
	int engines;
	int init_result;
	int driver_version;
	uint64_t context_memory;
	char name[64];
	unsigned pci[FAKECUDA_MAX_DEVICES][3]; /* domain, bus, device */
	bool nvml_reversed;
	bool host_pointer_registered;
	bool leak_check_at_exit;
	bool exit_check_violations_only; /* FAKECUDA_LEAK_CHECK_AT_EXIT=violations */
	/* 0 (FAKECUDA_MOVE_BYTES=0): copies take their time and move nothing, so a speed
	 * model of many gigabytes costs neither memory nor memcpy time */
	bool move_bytes;
	/* These may change at any time (under the lock). */
	bool read_only_register;
	bool quiet;
	/* Fail the Nth call counted from when the knob was set (0: never), once. */
	unsigned long long fail_alloc, fail_host_alloc, fail_register;
	unsigned long long fail_copy_submit, fail_copy_exec;
	int fail_copy_submit_error, fail_copy_exec_error;
};

struct fc_alloc {
	uint64_t base;     /* device pointer */
	uint64_t size;     /* as asked for */
	uint64_t reserved; /* size in whole pages */
	struct fc_context *ctx;
};

/* Page-locked host memory: from cuMemHostAlloc or a registration. */
struct fc_host_range {
	uintptr_t base;
	size_t size;
	size_t mapped; /* cuMemHostAlloc: the length mmap'd */
	bool registered;
	unsigned flags;
	struct fc_context *ctx;
};

struct fc_stream;
struct fc_op;

struct fc_context {
	struct fc_object obj;
	int device;
	bool primary;
	/* A created context until cuCtxDestroy; a primary one from its first retain to its
	 * last release (its object, and so its handle, stay; the driver keeps one primary
	 * context per device). */
	bool active;
	bool dying; /* being torn down (its work finishing) */
	unsigned flags;
	int primary_refs;
	hcu_result sticky; /* first asynchronous fault, then every call in it returns it */
	struct fc_stream *null_stream;
	struct fc_stream *streams; /* all of its streams, the NULL stream among them */
};

enum fc_op_kind { FC_OP_H2D, FC_OP_D2H, FC_OP_MEMSET, FC_OP_HOST_FN, FC_OP_MARKER };

/* One piece of stream work. The stream's queue holds a reference until it completes;
 * an event holds one on the marker it last recorded, and an operation on each of the
 * operations it waits for. */
struct fc_op {
	enum fc_op_kind kind;
	const char *call;
	struct fc_stream *stream; /* NULL once done */
	struct fc_context *ctx;   /* NULL once done */
	struct fc_op *next;       /* in the stream's queue */
	int refs;
	bool taken; /* an engine is executing it */
	bool done;
	int ndeps;
	struct fc_op **deps; /* operations of other streams it waits for */
	uint64_t dptr;
	void *host;
	size_t n;
	unsigned char value;
	bool fail; /* the injected fault at execution */
	hcu_host_fn fn;
	void *user;
};

struct fc_stream {
	struct fc_object obj; /* id 0 for a context's NULL stream, which has no handle */
	struct fc_context *ctx;
	unsigned flags;
	bool is_null;
	bool destroyed; /* by cuStreamDestroy; freed once its queue drains */
	struct fc_op *head, *tail;
	struct fc_stream *ctx_next;
	struct fc_stream *busy_next, *busy_prev; /* in fc.busy while its queue is not empty */
};

struct fc_event {
	struct fc_object obj;
	struct fc_context *ctx;
	unsigned flags;
	struct fc_op *recorded; /* the marker of the last cuEventRecord, or NULL */
};

struct fc_device {
	int index;
	char name[64];
	uint64_t capacity;
	uint64_t used; /* allocations' pages and contexts' cost */
	uint64_t bandwidth;
	unsigned domain, bus, slot;
	int fd;                  /* memfd holding the device's bytes, never mapped */
	struct fc_alloc *allocs; /* sorted by base */
	size_t nallocs, allocs_cap;
	uint64_t cursor; /* offset where the search for the next allocation starts */
	struct fc_context *primary;
	struct fc_op *executing[FC_MAX_ENGINES];
	uint64_t link_free_ns[2]; /* when each direction's link is next free */
	int nthreads;
	pthread_t threads[FC_MAX_ENGINES + 1];
	struct fakecuda_device_counters c;
};

struct fc_state {
	pthread_mutex_t lock;
	pthread_cond_t work; /* engines wait here for ready operations */
	pthread_cond_t done; /* broadcast whenever an operation completes */
	bool configured;     /* knobs read (first cuInit or nvmlInit_v2) */
	bool initialized;    /* cuInit ran, with result init_result */
	hcu_result init_result;
	struct fc_config cfg;
	int ndev;
	struct fc_device dev[FAKECUDA_MAX_DEVICES];
	struct fc_object **objects; /* live handles' objects, sorted by id */
	size_t nobjects, objects_cap;
	uint64_t next_id;
	struct fc_host_range *hosts; /* sorted by base, never overlapping */
	size_t nhosts, hosts_cap;
	struct fc_stream *busy;
	struct fakecuda_counters c; /* the global part; devices' parts live in dev[] */
	unsigned long long alloc_calls, host_alloc_calls, register_calls;
	unsigned long long copy_submits, copy_execs;
	int nvml_inits;
};

extern struct fc_state fc;
/* Set on the thread running a host function, whose CUDA calls are violations. */
extern _Thread_local bool fc_in_host_fn;

/* fakecuda.c */
void fc_violation(const char *call, hcu_result code, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
const char *fc_result_name(hcu_result r);
void fc_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
hcu_result fc_enter(const char *call);
hcu_result fc_enter_ctx(const char *call, struct fc_context **ctx);
hcu_result fc_enter_ctx_faulted(const char *call, struct fc_context **ctx);
hcu_result fc_leave(hcu_result r);
void *fc_handle(const struct fc_object *obj);
struct fc_object *fc_lookup(const void *handle, enum fc_kind kind, const char *call,
                            const char *what);
int fc_object_add(struct fc_object *obj, enum fc_kind kind);
void fc_object_remove(struct fc_object *obj);
struct fc_device *fc_device_of_ptr(uint64_t dptr);
void fc_configure(void);

/* fakecuda_mem.c */
int fc_memory_setup(struct fc_device *d);
struct fc_alloc *fc_alloc_containing(uint64_t dptr);
hcu_result fc_check_device_range(const char *call, struct fc_context *ctx, uint64_t dptr, size_t n);
bool fc_host_pinned(struct fc_context *ctx, const void *p, size_t n);
int fc_dev_write(struct fc_device *d, uint64_t dptr, const void *src, size_t n);
int fc_dev_read(struct fc_device *d, uint64_t dptr, void *dst, size_t n);
int fc_dev_fill(struct fc_device *d, uint64_t dptr, unsigned char value, size_t n);
void fc_memory_release_context(struct fc_context *ctx);
int fc_memory_leaks(void);

/* fakecuda_stream.c */
int fc_engines_start(struct fc_device *d);
struct fc_stream *fc_stream_new(struct fc_context *ctx, unsigned flags, bool is_null);
hcu_result fc_copy(const char *call, enum fc_op_kind kind, uint64_t dptr, void *host, size_t n,
                   hcu_stream stream, bool async);
bool fc_ops_touch_device(uint64_t base, uint64_t size, struct fc_op **first);
bool fc_ops_touch_host(uintptr_t base, size_t size, struct fc_op **first);
void fc_wait_op(struct fc_op *op);
void fc_streams_drain(struct fc_context *ctx);
void fc_streams_release_context(struct fc_context *ctx);
void fc_op_unref(struct fc_op *op);
int fc_stream_leaks(void);

/* What fakenvml.c asks of the loaded fake (exported as fakecuda__nvml_*). NVML indexes
 * are not CUDA ordinals: with FAKECUDA_NVML_ORDER=reversed (the default) NVML index i is
 * CUDA ordinal devices - 1 - i. */
struct fakecuda__nvml_device {
	char name[64];
	unsigned domain, bus, slot;
	unsigned long long total, used;
};
typedef int (*fakecuda__nvml_init_fn)(void);
typedef int (*fakecuda__nvml_shutdown_fn)(void);
typedef int (*fakecuda__nvml_count_fn)(void);
typedef int (*fakecuda__nvml_device_fn)(int index, struct fakecuda__nvml_device *out);
typedef int (*fakecuda__nvml_find_fn)(const char *bus_id);
typedef void (*fakecuda__nvml_violation_fn)(const char *call, const char *message);

#endif /* FAKECUDA_INTERNAL_H */
