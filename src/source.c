/* source.c - the local file as a source of checkpoint bytes: pread for reads, mmap for
 * mappings, O_DIRECT on request where the file system has it. */
#include "source.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* O_DIRECT needs the buffer, the length and the offset aligned to the logical block
 * size; 4096 covers every device in use. */
#define DIRECT_ALIGN 4096u

struct local_file {
	struct hoist__source base; /* first */
	int fd;
	bool private_maps; /* HOIST__SOURCE_MAP_PRIVATE */
	char path[];       /* base.path points here */
};

static ssize_t local_read_at(struct hoist__source *src, void *buf, size_t n, uint64_t offset)
{
	return hoist__pread(((struct local_file *)src)->fd, buf, n, offset);
}

static enum hoist_status local_map(struct hoist__source *src, uint64_t offset, uint64_t length,
                                   const void **addr)
{
	struct local_file *f = (struct local_file *)src;
	long page = sysconf(_SC_PAGESIZE);
	uint64_t start = offset - offset % (uint64_t)(page > 0 ? page : 4096);
	uint64_t len = length + (offset - start);
	if (len > SIZE_MAX)
		return hoist__error(HOIST_ERR_IO, "%s: cannot map %llu bytes", src->path,
		                    (unsigned long long)length);
	int prot = f->private_maps ? PROT_READ | PROT_WRITE : PROT_READ;
	int kind = f->private_maps ? MAP_PRIVATE : MAP_SHARED;
	void *p = mmap(NULL, len ? (size_t)len : 1, prot, kind, f->fd, (off_t)start);
	if (p == MAP_FAILED)
		return hoist__error(HOIST_ERR_IO, "%s: cannot map %llu bytes at offset %llu: %s",
		                    src->path, (unsigned long long)length,
		                    (unsigned long long)offset, strerror(errno));
	*addr = (const char *)p + (offset - start);
	return HOIST_OK;
}

static void local_unmap(struct hoist__source *src, const void *addr, uint64_t length)
{
	(void)src;
	long page = sysconf(_SC_PAGESIZE);
	uintptr_t a = (uintptr_t)addr, start = a - a % (uintptr_t)(page > 0 ? page : 4096);
	munmap((void *)start, (size_t)(length + (a - start)) ? (size_t)(length + (a - start)) : 1);
}

static void local_close(struct hoist__source *src)
{
	struct local_file *f = (struct local_file *)src;
	hoist__close(f->fd);
	hoist__free(f);
}

static void file_id_of(const struct stat *st, struct hoist__file_id *id)
{
	*id = (struct hoist__file_id){
	        .dev = (uint64_t)st->st_dev,
	        .ino = (uint64_t)st->st_ino,
	        .size = (uint64_t)st->st_size,
	        .mtime_sec = (int64_t)st->st_mtim.tv_sec,
	        .mtime_nsec = st->st_mtim.tv_nsec,
	};
}

static int local_identify(struct hoist__source *src, struct hoist__file_id *now,
                          struct hoist__file_id *named)
{
	struct local_file *f = (struct local_file *)src;
	struct stat st;
	*now = src->id;
	if (fstat(f->fd, &st) == 0)
		file_id_of(&st, now);
	if (stat(src->path, &st) != 0)
		return -1;
	file_id_of(&st, named);
	return 0;
}

static const struct hoist__source_methods local_methods = {
        .version = 2,
        .read_at = local_read_at,
        .map = local_map,
        .unmap = local_unmap,
        .close = local_close,
        .identify = local_identify,
};

enum hoist_status hoist__source_open(const char *path, unsigned flags, struct hoist__source **out)
{
	*out = NULL;
	bool direct = flags & HOIST__SOURCE_DIRECT;
	int fd = -1;
	if (direct) {
		fd = hoist__open(path, O_RDONLY | O_DIRECT);
		/* EINVAL: the file system (tmpfs, ...) has no O_DIRECT; read buffered. */
		if (fd < 0 && errno != EINVAL)
			return hoist__error(HOIST_ERR_IO, "%s: cannot open: %s", path,
			                    strerror(errno));
		direct = fd >= 0;
	}
	if (fd < 0)
		fd = hoist__open(path, O_RDONLY);
	if (fd < 0)
		return hoist__error(HOIST_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
	struct stat st;
	if (fstat(fd, &st) != 0) {
		int err = errno;
		hoist__close(fd);
		return hoist__error(HOIST_ERR_IO, "%s: cannot stat: %s", path, strerror(err));
	}
	if (!S_ISREG(st.st_mode)) {
		hoist__close(fd);
		return hoist__error(HOIST_ERR_IO, "%s: not a regular file", path);
	}
	size_t n = strlen(path);
	struct local_file *f = hoist__malloc(sizeof *f + n + 1);
	if (!f) {
		hoist__close(fd);
		return hoist__error(HOIST_ERR_NOMEM, "%s: out of memory opening it", path);
	}
	memcpy(f->path, path, n + 1);
	f->fd = fd;
	f->private_maps = flags & HOIST__SOURCE_MAP_PRIVATE;
	f->base = (struct hoist__source){
	        .methods = &local_methods,
	        .path = f->path,
	        .size = (uint64_t)st.st_size,
	        .direct = direct,
	        .align = direct ? DIRECT_ALIGN : 1,
	};
	file_id_of(&st, &f->base.id);
	*out = &f->base;
	return HOIST_OK;
}

void hoist__source_close(struct hoist__source *src)
{
	if (src)
		src->methods->close(src);
}

/* "2024-05-01 12:00:00.123456789" (UTC). */
static const char *mtime_format(const struct hoist__file_id *id, char *buf, size_t size)
{
	struct tm tm;
	time_t t = (time_t)id->mtime_sec;
	if (!gmtime_r(&t, &tm) || strftime(buf, size, "%Y-%m-%d %H:%M:%S", &tm) == 0) {
		snprintf(buf, size, "%lld", (long long)id->mtime_sec);
		return buf;
	}
	size_t n = strlen(buf);
	snprintf(buf + n, size - n, ".%09ld", id->mtime_nsec);
	return buf;
}

/* Size and mtime: what tells a file's contents changed. Device and inode only name
 * the change: they can move for the same file (FUSE without stable inodes, CIFS with
 * noserverino, once the kernel drops the inode; overlayfs's stat and fstat before
 * Linux 4.19), so they alone are not taken for a change. */
static bool same_contents(const struct hoist__file_id *a, const struct hoist__file_id *b)
{
	return a->size == b->size && a->mtime_sec == b->mtime_sec && a->mtime_nsec == b->mtime_nsec;
}

static bool same_file(const struct hoist__file_id *a, const struct hoist__file_id *b)
{
	return a->dev == b->dev && a->ino == b->ino;
}

/* "size 10 -> 8 bytes", "modified: mtime ... -> ... UTC" or "replaced by another file:
 * ..." for how `now` differs from `then`. */
static void describe(const struct hoist__file_id *then, const struct hoist__file_id *now, char *how,
                     size_t size)
{
	char t1[48], t2[48];
	if (!same_file(then, now))
		snprintf(how, size,
		         "replaced by another file: device %llu inode %llu -> device %llu inode "
		         "%llu",
		         (unsigned long long)then->dev, (unsigned long long)then->ino,
		         (unsigned long long)now->dev, (unsigned long long)now->ino);
	else if (now->size != then->size)
		snprintf(how, size, "size %llu -> %llu bytes", (unsigned long long)then->size,
		         (unsigned long long)now->size);
	else
		snprintf(how, size, "modified: mtime %s -> %s UTC",
		         mtime_format(then, t1, sizeof t1), mtime_format(now, t2, sizeof t2));
}

enum hoist_status hoist__source_verify(struct hoist__source *src,
                                       const struct hoist__file_id *expect, const char *when)
{
	struct hoist__file_id now, named;
	char how[200];
	int rc = src->methods->identify(src, &now, &named);
	int err = errno;
	if (!same_contents(&now, expect))
		describe(expect, &now, how, sizeof how);
	else if (rc != 0 && err == ENOENT)
		snprintf(how, sizeof how, "removed");
	else if (rc == 0 && !same_contents(&named, expect))
		describe(expect, &named, how, sizeof how);
	else
		return HOIST_OK; /* the path not stat'able for another reason: the open
		                  * descriptor is what is read, and it is unchanged */
	return hoist__error(HOIST_ERR_IO, "%s: changed %s (%s)", src->path, when, how);
}

int hoist__source_read_full(struct hoist__source *src, void *buf, size_t n, uint64_t offset)
{
	char *p = buf;
	while (n > 0) {
		ssize_t got = src->methods->read_at(src, p, n, offset);
		if (got < 0)
			return -1;
		if (got == 0) {
			errno = EIO; /* the source ended before the range it promised */
			return -1;
		}
		p += got;
		n -= (size_t)got;
		offset += (uint64_t)got;
	}
	return 0;
}

enum hoist_status hoist__source_read_file(const char *path, const char *what, uint64_t limit,
                                          char **out, size_t *len)
{
	struct hoist__source *src = NULL;
	char *buf = NULL;
	*out = NULL;
	*len = 0;
	enum hoist_status st = hoist__source_open(path, 0, &src);
	if (st != HOIST_OK)
		return st;
	if (src->size > limit) {
		char b1[32], b2[32];
		st = hoist__error(HOIST_ERR_FORMAT, "%s: %s is too large for %s (limit %s)", path,
		                  hoist_bytes_format(src->size, b1, sizeof b1), what,
		                  hoist_bytes_format(limit, b2, sizeof b2));
	} else if (!(buf = hoist__malloc((size_t)src->size + 1))) {
		st = hoist__error(HOIST_ERR_NOMEM, "%s: out of memory reading it", path);
	} else if (hoist__source_read_full(src, buf, (size_t)src->size, 0) != 0) {
		st = hoist__error(HOIST_ERR_IO, "%s: cannot read: %s", path, strerror(errno));
	} else {
		buf[src->size] = '\0';
		*out = buf;
		*len = (size_t)src->size;
		buf = NULL;
	}
	hoist__free(buf);
	hoist__source_close(src);
	return st;
}
