/* sys.c - the allocation and I/O wrappers every library file uses, with the fault
 * injection that lets tests reach each failure path; growing arrays and string lists. */
#include "base.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The block an injected short read of an O_DIRECT descriptor keeps whole (the
 * alignment source.c's direct reads use). */
#define SHORT_READ_BLOCK 4096u

struct fault {
	atomic_long countdown; /* calls left before the fault strikes; <= 0: disarmed */
	atomic_bool sticky;
	atomic_bool striking; /* sticky fault already struck: every call fails */
	atomic_int err;
	atomic_long struck; /* times it struck since armed */
};

static struct fault faults[HOIST_FAULT_COUNT];

/* HOIST_FAULT_READ_AT: one file (by device and inode) and one byte offset. The fields
 * are written while `armed` is false and read only after it is seen true. */
static struct {
	atomic_bool armed;
	atomic_bool sticky;
	atomic_int err;
	atomic_ullong dev, ino, offset;
} read_at;

void hoist_fault_set(enum hoist_fault kind, long nth, int err, bool sticky)
{
	if ((unsigned)kind >= HOIST_FAULT_COUNT)
		return;
	if (kind == HOIST_FAULT_READ_AT) {
		atomic_store(&read_at.armed, false);
		atomic_store(&faults[kind].struck, 0);
		return;
	}
	struct fault *f = &faults[kind];
	atomic_store(&f->countdown, 0);
	atomic_store(&f->striking, false);
	atomic_store(&f->sticky, sticky);
	atomic_store(&f->err, err);
	atomic_store(&f->struck, 0);
	atomic_store(&f->countdown, nth);
}

enum hoist_status hoist_fault_set_read_at(const char *path, uint64_t offset, int err, bool sticky)
{
	struct stat st;
	hoist_fault_set(HOIST_FAULT_READ_AT, 0, 0, false);
	if (!path)
		return hoist__error(HOIST_ERR_INVALID, "hoist_fault_set_read_at: path is NULL");
	if (stat(path, &st) != 0)
		return hoist__error(HOIST_ERR_IO, "hoist_fault_set_read_at: %s: %s", path,
		                    strerror(errno));
	atomic_store(&read_at.dev, (unsigned long long)st.st_dev);
	atomic_store(&read_at.ino, (unsigned long long)st.st_ino);
	atomic_store(&read_at.offset, offset);
	atomic_store(&read_at.err, err);
	atomic_store(&read_at.sticky, sticky);
	atomic_store(&read_at.armed, true);
	return HOIST_OK;
}

long hoist_fault_struck(enum hoist_fault kind)
{
	return (unsigned)kind < HOIST_FAULT_COUNT ? atomic_load(&faults[kind].struck) : 0;
}

void hoist_fault_clear_all(void)
{
	for (size_t i = 0; i < HOIST_FAULT_COUNT; i++)
		hoist_fault_set((enum hoist_fault)i, 0, 0, false);
}

/* True when `kind` will strike on some call from now: a look, which takes nothing. */
static bool fault_armed(enum hoist_fault kind)
{
	const struct fault *f = &faults[kind];
	return atomic_load_explicit(&f->striking, memory_order_relaxed) ||
	       atomic_load_explicit(&f->countdown, memory_order_relaxed) > 0;
}

/* True when this call of `kind` must fail; sets errno to the fault's error. */
static bool fault_strikes(enum hoist_fault kind)
{
	struct fault *f = &faults[kind];
	if (atomic_load_explicit(&f->striking, memory_order_relaxed)) {
		atomic_fetch_add(&f->struck, 1);
		errno = atomic_load(&f->err);
		return true;
	}
	if (atomic_load_explicit(&f->countdown, memory_order_relaxed) <= 0)
		return false;
	if (atomic_fetch_sub(&f->countdown, 1) != 1)
		return false;
	if (atomic_load(&f->sticky))
		atomic_store(&f->striking, true);
	atomic_fetch_add(&f->struck, 1);
	errno = atomic_load(&f->err);
	return true;
}

/* True when a read of [offset, offset + count) of fd must fail (HOIST_FAULT_READ_AT);
 * sets errno. */
static bool read_at_strikes(int fd, size_t count, uint64_t offset)
{
	if (!atomic_load_explicit(&read_at.armed, memory_order_acquire))
		return false;
	uint64_t at = atomic_load(&read_at.offset);
	struct stat st;
	if (at < offset || at - offset >= count || fstat(fd, &st) != 0 ||
	    (unsigned long long)st.st_dev != atomic_load(&read_at.dev) ||
	    (unsigned long long)st.st_ino != atomic_load(&read_at.ino))
		return false;
	/* once: the first reader to get here takes it */
	if (!atomic_load(&read_at.sticky) && !atomic_exchange(&read_at.armed, false))
		return false;
	atomic_fetch_add(&faults[HOIST_FAULT_READ_AT].struck, 1);
	errno = atomic_load(&read_at.err);
	return true;
}

void *hoist__malloc(size_t size)
{
	if (fault_strikes(HOIST_FAULT_ALLOC))
		return NULL;
	return malloc(size ? size : 1);
}

void *hoist__calloc(size_t count, size_t size)
{
	size_t total;
	if (__builtin_mul_overflow(count, size, &total) || fault_strikes(HOIST_FAULT_ALLOC))
		return NULL;
	return calloc(total ? total : 1, 1);
}

void *hoist__realloc(void *ptr, size_t size)
{
	if (fault_strikes(HOIST_FAULT_ALLOC))
		return NULL;
	return realloc(ptr, size ? size : 1);
}

void *hoist__reallocarray(void *ptr, size_t count, size_t size)
{
	size_t total;
	if (__builtin_mul_overflow(count, size, &total))
		return NULL;
	return hoist__realloc(ptr, total);
}

char *hoist__strndup(const char *s, size_t n)
{
	char *copy = hoist__malloc(n + 1);
	if (copy) {
		memcpy(copy, s, n);
		copy[n] = '\0';
	}
	return copy;
}

char *hoist__strdup(const char *s)
{
	return hoist__strndup(s, strlen(s));
}

void hoist__free(void *ptr)
{
	free(ptr);
}

void *hoist__aligned_alloc(size_t alignment, size_t size)
{
	void *p = NULL;
	if (fault_strikes(HOIST_FAULT_ALLOC))
		return NULL;
	if (posix_memalign(&p, alignment, size ? size : 1) != 0)
		return NULL;
	return p;
}

/* What an injected short read returns: half, and from a descriptor opened with
 * O_DIRECT whole blocks of it (direct reads end inside a block only at the end of the
 * file), or all of count when that leaves nothing. */
static size_t short_count(int fd, size_t count)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || !(fl & O_DIRECT))
		return count / 2;
	size_t blocks = count / 2 / SHORT_READ_BLOCK * SHORT_READ_BLOCK;
	return blocks ? blocks : count;
}

int hoist__open(const char *path, int flags)
{
	int fd;
	if (fault_strikes(HOIST_FAULT_OPEN))
		return -1;
	bool interrupted = fault_strikes(HOIST_FAULT_EINTR);
	do {
		if (interrupted) {
			interrupted = false;
			fd = -1;
			errno = EINTR;
			continue;
		}
		fd = open(path, flags | O_CLOEXEC);
	} while (fd < 0 && errno == EINTR);
	return fd;
}

ssize_t hoist__pread(int fd, void *buf, size_t count, uint64_t offset)
{
	ssize_t n;
	if (fault_strikes(HOIST_FAULT_READ) || read_at_strikes(fd, count, offset))
		return -1;
	/* a read the fault cannot shorten (one direct block) does not take it */
	if (count > 1 && fault_armed(HOIST_FAULT_SHORT_READ)) {
		size_t shorter = short_count(fd, count);
		if (shorter < count && fault_strikes(HOIST_FAULT_SHORT_READ))
			count = shorter;
	}
	bool interrupted = fault_strikes(HOIST_FAULT_EINTR);
	do {
		if (interrupted) {
			interrupted = false;
			n = -1;
			errno = EINTR;
			continue;
		}
		n = pread(fd, buf, count, (off_t)offset);
	} while (n < 0 && errno == EINTR);
	return n;
}

int hoist__close(int fd)
{
	return fd >= 0 ? close(fd) : 0;
}

enum hoist_status hoist__output_end(FILE *out, const char *what)
{
	/* A buffered stream keeps what it failed to write, so the flush fails again and
	 * says why; an unbuffered one only has its error flag left. */
	errno = 0;
	if (fflush(out) == 0 && !ferror(out))
		return HOIST_OK;
	return hoist__error(HOIST_ERR_IO, "%s: %s", what, errno ? strerror(errno) : "write error");
}

bool hoist__grow(void *items, size_t *cap, size_t count, size_t size, size_t first)
{
	if (count < *cap)
		return true;
	size_t n = *cap ? 2 * *cap : first;
	void *old, *p;
	memcpy(&old, items, sizeof old);
	if (n <= *cap || !(p = hoist__reallocarray(old, n, size)))
		return false;
	memcpy(items, &p, sizeof p);
	*cap = n;
	return true;
}

enum hoist_status hoist__strings_add(struct hoist__strings *list, const char *text)
{
	char *copy = hoist__strdup(text);
	if (!copy || !hoist__grow(&list->items, &list->cap, list->count, sizeof *list->items, 4)) {
		hoist__free(copy);
		return hoist__error(HOIST_ERR_NOMEM, "out of memory");
	}
	list->items[list->count++] = copy;
	return HOIST_OK;
}

enum hoist_status hoist__strings_addf(struct hoist__strings *list, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	return hoist__strings_add(list, buf);
}

void hoist__strings_free(struct hoist__strings *list)
{
	for (size_t i = 0; i < list->count; i++)
		hoist__free(list->items[i]);
	hoist__free(list->items);
	*list = (struct hoist__strings){NULL, 0, 0};
}

double hoist__now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}
