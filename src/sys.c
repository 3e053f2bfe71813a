/* sys.c - the allocation and I/O wrappers every library file uses, with the fault
 * injection that lets tests reach each failure path. */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct fault {
	atomic_long countdown; /* calls left before the fault strikes; <= 0: disarmed */
	atomic_bool sticky;
	atomic_bool striking;  /* sticky fault already struck: every call fails */
	atomic_int err;
};

static struct fault faults[HOIST__FAULT_KIND_COUNT];

void hoist__fault_set(enum hoist__fault_kind kind, long nth, int err, bool sticky)
{
	struct fault *f = &faults[kind];
	atomic_store(&f->striking, false);
	atomic_store(&f->sticky, sticky);
	atomic_store(&f->err, err);
	atomic_store(&f->countdown, nth);
}

void hoist__fault_clear_all(void)
{
	for (size_t i = 0; i < HOIST__FAULT_KIND_COUNT; i++)
		hoist__fault_set((enum hoist__fault_kind)i, 0, 0, false);
}

/* True when this call of `kind` must fail; sets errno to the fault's error. */
static bool fault_strikes(enum hoist__fault_kind kind)
{
	struct fault *f = &faults[kind];
	if (atomic_load_explicit(&f->striking, memory_order_relaxed)) {
		errno = atomic_load(&f->err);
		return true;
	}
	if (atomic_load_explicit(&f->countdown, memory_order_relaxed) <= 0)
		return false;
	if (atomic_fetch_sub(&f->countdown, 1) != 1)
		return false;
	if (atomic_load(&f->sticky))
		atomic_store(&f->striking, true);
	errno = atomic_load(&f->err);
	return true;
}

void *hoist__malloc(size_t size)
{
	if (fault_strikes(HOIST__FAULT_ALLOC))
		return NULL;
	return malloc(size ? size : 1);
}

void *hoist__calloc(size_t count, size_t size)
{
	size_t total;
	if (__builtin_mul_overflow(count, size, &total) || fault_strikes(HOIST__FAULT_ALLOC))
		return NULL;
	return calloc(total ? total : 1, 1);
}

void *hoist__realloc(void *ptr, size_t size)
{
	if (fault_strikes(HOIST__FAULT_ALLOC))
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
	if (fault_strikes(HOIST__FAULT_ALLOC))
		return NULL;
	if (posix_memalign(&p, alignment, size ? size : 1) != 0)
		return NULL;
	return p;
}

int hoist__open(const char *path, int flags)
{
	int fd;
	if (fault_strikes(HOIST__FAULT_OPEN))
		return -1;
	do
		fd = open(path, flags | O_CLOEXEC);
	while (fd < 0 && errno == EINTR);
	return fd;
}

ssize_t hoist__pread(int fd, void *buf, size_t count, uint64_t offset)
{
	ssize_t n;
	if (fault_strikes(HOIST__FAULT_READ))
		return -1;
	if (count > 1 && fault_strikes(HOIST__FAULT_SHORT_READ))
		count /= 2;
	do
		n = pread(fd, buf, count, (off_t)offset);
	while (n < 0 && errno == EINTR);
	return n;
}

int hoist__pread_full(int fd, void *buf, size_t count, uint64_t offset)
{
	char *p = buf;
	while (count > 0) {
		ssize_t n = hoist__pread(fd, p, count, offset);
		if (n < 0)
			return -1;
		if (n == 0) {
			errno = EIO; /* the file ended before the range it promised */
			return -1;
		}
		p += n;
		count -= (size_t)n;
		offset += (uint64_t)n;
	}
	return 0;
}

int hoist__close(int fd)
{
	return fd >= 0 ? close(fd) : 0;
}

int64_t hoist__file_size(int fd)
{
	struct stat st;
	if (fstat(fd, &st) != 0)
		return -1;
	return (int64_t)st.st_size;
}

double hoist__now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}
