/*
 * base.h - the bottom layer, which every library file includes: errors and log
 * messages (error.c), the allocation and I/O wrappers (sys.c), growing arrays and
 * string lists, overflow-checked arithmetic, time. Nothing here knows of checkpoints,
 * devices or loads.
 *
 * All allocation and file I/O inside the library goes through the hoist__ wrappers
 * below, so tests can inject ENOMEM, open and read errors (EIO at a chosen byte of a
 * chosen file too), short reads and EINTR (hoist_fault_set and hoist_fault_set_read_at
 * in hoist_testing.h).
 */
#ifndef HOIST_BASE_H
#define HOIST_BASE_H

#include "hoist.h"
#include "hoist_testing.h"

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

/* ---- errors and log messages (error.c) -------------------------------------------- */

/* Sets this thread's message and returns status, so a failure reads
 * `return hoist__error(HOIST_ERR_FORMAT, "%s: tensor \"%s\": ...", file, name);` */
enum hoist_status hoist__error(enum hoist_status status, const char *fmt, ...) HOIST__PRINTF(2, 3);
enum hoist_status hoist__verror(enum hoist_status status, const char *fmt, va_list ap);
/* Prefixes the current message with "<prefix>: " (adding context on the way out). */
void hoist__error_prefix(const char *fmt, ...) HOIST__PRINTF(1, 2);
void hoist__error_clear(void);

/* Formats a message and hands it to fn (nothing when fn is NULL). Only ever called on
 * the thread that called into the library. */
void hoist__log(hoist_log_fn fn, void *arg, enum hoist_log_level level, const char *fmt, ...)
        HOIST__PRINTF(4, 5);

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

/* These return -1 and set errno like their libc namesakes. open and pread retry on
 * EINTR (a signal handler installed without SA_RESTART); close does not, since on
 * Linux the descriptor is gone whatever close returns. */
int hoist__open(const char *path, int flags);
/* Like pread; may return fewer bytes (injected short reads too). */
ssize_t hoist__pread(int fd, void *buf, size_t count, uint64_t offset);
int hoist__close(int fd);
/* The end of a printer: flushes out, then returns HOIST_OK, or HOIST_ERR_IO with
 * "<what>: <why>" when this or an earlier write failed (a full disk, a closed pipe). */
enum hoist_status hoist__output_end(FILE *out, const char *what);

/* ---- growing arrays and string lists (sys.c) ------------------------------------ */

/* Makes room for one more item in a growing array: *(T **)items holds *cap items of
 * `size` bytes, count of them used. When full, the capacity doubles (starting at
 * `first`). Returns false, leaving the array as it was, when memory runs out. */
bool hoist__grow(void *items, size_t *cap, size_t count, size_t size, size_t first);

/* An owned list of strings (warnings, names). Zero-initialized is empty. */
struct hoist__strings {
	char **items;
	size_t count, cap;
};
/* Appends a copy. Errors: HOIST_ERR_NOMEM. */
enum hoist_status hoist__strings_add(struct hoist__strings *list, const char *text);
enum hoist_status hoist__strings_addf(struct hoist__strings *list, const char *fmt, ...)
        HOIST__PRINTF(2, 3);
void hoist__strings_free(struct hoist__strings *list);

/* ---- time ----------------------------------------------------------------------- */

/* Monotonic seconds. */
double hoist__now(void);

/* ---- arithmetic ------------------------------------------------------------------ */

/* Overflow-checked arithmetic: return false on overflow. */
static inline bool hoist__mul_u64(uint64_t a, uint64_t b, uint64_t *out)
{
	return !__builtin_mul_overflow(a, b, out);
}
static inline bool hoist__add_u64(uint64_t a, uint64_t b, uint64_t *out)
{
	return !__builtin_add_overflow(a, b, out);
}

/* ---- dtypes (dtype.c) ------------------------------------------------------------ */

/* True for the dtypes a load converts to (options.dtype): F16, BF16, F32. */
bool hoist__dtype_is_load_target(enum hoist_dtype dtype);
/* Bytes of a tensor of `numel` elements stored as `stored` once loaded with target
 * (hoist_dtype_loaded), given its stored size nbytes. */
uint64_t hoist__loaded_nbytes(enum hoist_dtype stored, uint64_t numel, uint64_t nbytes,
                              enum hoist_dtype target);

#endif /* HOIST_BASE_H */
