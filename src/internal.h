/*
 * internal.h - what the library's files share and nothing else sees.
 *
 * All allocation and file I/O inside the library goes through the hoist__ wrappers
 * below, so tests can inject ENOMEM, EIO and short reads (see hoist__fault_set).
 */
#ifndef HOIST_INTERNAL_H
#define HOIST_INTERNAL_H

#include "hoist.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define HOIST__MIN(a, b) ((a) < (b) ? (a) : (b))
#define HOIST__MAX(a, b) ((a) > (b) ? (a) : (b))
#define HOIST__ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#if defined(__GNUC__)
#define HOIST__PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define HOIST__PRINTF(f, a)
#endif

/* ---- errors (error.c) ---------------------------------------------------------- */

/* Sets this thread's message and returns status, so a failure reads
 * `return hoist__error(HOIST_ERR_FORMAT, "%s: tensor \"%s\": ...", file, name);` */
enum hoist_status hoist__error(enum hoist_status status, const char *fmt, ...) HOIST__PRINTF(2, 3);
enum hoist_status hoist__verror(enum hoist_status status, const char *fmt, va_list ap);
/* Prefixes the current message with "<prefix>: " (adding context on the way out). */
void hoist__error_prefix(const char *fmt, ...) HOIST__PRINTF(1, 2);
void hoist__error_clear(void);

/* ---- allocation and I/O wrappers (sys.c) ----------------------------------------- */

void *hoist__malloc(size_t size);
void *hoist__calloc(size_t count, size_t size); /* checks count * size for overflow */
void *hoist__realloc(void *ptr, size_t size);
/* realloc of count * size with overflow check. */
void *hoist__reallocarray(void *ptr, size_t count, size_t size);
char *hoist__strdup(const char *s);
char *hoist__strndup(const char *s, size_t n);
void hoist__free(void *ptr);
/* Aligned allocation (alignment a power of two >= sizeof(void *)); free with hoist__free. */
void *hoist__aligned_alloc(size_t alignment, size_t size);

/* These return -1 and set errno like their libc namesakes. */
int hoist__open(const char *path, int flags);
/* Like pread, retrying on EINTR; may return fewer bytes (injected short reads too). */
ssize_t hoist__pread(int fd, void *buf, size_t count, uint64_t offset);
/* Reads exactly count bytes or fails: returns 0, or -1 with errno (EIO on early EOF). */
int hoist__pread_full(int fd, void *buf, size_t count, uint64_t offset);
int hoist__close(int fd);
/* File size of an open descriptor (regular files), or -1. */
int64_t hoist__file_size(int fd);

/* Fault injection for tests. A fault strikes on the Nth call (1-based) of its kind
 * counted from hoist__fault_set, then every call after it if `sticky`, else once.
 * Counters are atomic, so faults work across worker threads. */
enum hoist__fault_kind {
	HOIST__FAULT_ALLOC,      /* malloc/calloc/realloc/strdup/aligned_alloc return NULL */
	HOIST__FAULT_OPEN,       /* open fails with the given errno */
	HOIST__FAULT_READ,       /* pread fails with the given errno */
	HOIST__FAULT_SHORT_READ, /* pread returns half of what was asked (at least 1 byte) */
	HOIST__FAULT_KIND_COUNT
};
void hoist__fault_set(enum hoist__fault_kind kind, long nth, int err, bool sticky);
void hoist__fault_clear_all(void);

/* ---- time ----------------------------------------------------------------------- */

/* Monotonic seconds. */
double hoist__now(void);

/* ---- text ----------------------------------------------------------------------- */

/* Formats bytes as "16.58 GB" (decimal, 2 decimals) into buf; returns buf. */
char *hoist__format_bytes(uint64_t bytes, char *buf, size_t size);

/* Overflow-checked arithmetic: return false on overflow. */
static inline bool hoist__mul_u64(uint64_t a, uint64_t b, uint64_t *out)
{
	return !__builtin_mul_overflow(a, b, out);
}
static inline bool hoist__add_u64(uint64_t a, uint64_t b, uint64_t *out)
{
	return !__builtin_add_overflow(a, b, out);
}

/* ---- contracts between the library's parts ---------------------------------------- */

/* Arena offsets are multiples of this (CUDA's allocation granularity for tensors;
 * DLPack consumers expect at least 64). */
#define HOIST__ARENA_ALIGN 256u

#define HOIST__MAX_DEVICES 64

struct hoist__device_info {
	struct hoist_device device;
	uint64_t free_bytes;  /* now; for cpu: MemAvailable */
	uint64_t total_bytes;
	char name[96];        /* "NVIDIA H200", "sim", "host" */
};

/* Lists the devices of `kind` present now (backend_*.c): cuda through the driver,
 * sim from opt (sim_devices, sim_capacity), cpu as one device. At most cap entries.
 * Errors: HOIST_ERR_NO_DEVICE when the kind's driver does not load or it has no
 * devices (the message says which: "libcuda.so.1: cannot open ..." or "no GPU"). */
enum hoist_status hoist__devices_list(enum hoist_device_kind kind, const struct hoist_options *opt,
				      struct hoist__device_info *out, size_t cap, size_t *count);

/* Conversion on load (convert.c): the dtype tensor `t` has once loaded with target
 * dtype `to` (HOIST_DTYPE_NONE keeps it; only F16, BF16 and F32 tensors convert,
 * others keep theirs), and its byte size then. */
enum hoist_dtype hoist__loaded_dtype(const struct hoist_tensor_info *t, enum hoist_dtype to);
uint64_t hoist__loaded_nbytes(const struct hoist_tensor_info *t, enum hoist_dtype to);
/* Converts n elements from `from` to `to` (both among F16, BF16, F32): round to
 * nearest even, NaN stays NaN (quiet), Inf stays Inf, subnormals kept or rounded
 * as IEEE says. dst and src must not overlap. */
void hoist__convert(enum hoist_dtype from, enum hoist_dtype to, void *dst, const void *src,
		    size_t n);
/* The same without CPU-specific instructions (F16C), so tests can hold both paths
 * against the reference. */
void hoist__convert_portable(enum hoist_dtype from, enum hoist_dtype to, void *dst,
			     const void *src, size_t n);

#endif /* HOIST_INTERNAL_H */
