/*
 * source.h - where checkpoint bytes come from: a file source is a small table of
 * methods (read at an offset, map a range, close) behind which a local file, or
 * later another kind of storage, serves the checkpoint reader, the stream and the
 * disk tier alike. Its first member points to its table, as SQLite's files do.
 *
 * The local file (source.c) is the only source for now. Its I/O goes through the
 * fault-injecting wrappers of base.h, so tests reach every failure path.
 */
#ifndef HOIST_SOURCE_H
#define HOIST_SOURCE_H

#include "base.h"

struct hoist__source;

/* What a file is, to tell when it changes: its size and modification time, and which
 * file (device and inode) to name what happened. A file truncated or written in place
 * changes size or mtime; one replaced (a rename over it, a fresh download) is another
 * inode with, as a rule, another mtime. Timestamps move by the file system's clock
 * tick (a few ms on ext4), so a rewrite of the same size within one tick of the last
 * write goes unseen, as does a replacement of the same size and mtime. */
struct hoist__file_id {
	uint64_t dev, ino, size;
	int64_t mtime_sec;
	long mtime_nsec;
};

struct hoist__source_methods {
	int version; /* 2: identify added */
	/* Reads up to n bytes at offset into buf: the count read (0 at the end of the
	 * source), or -1 with errno set. May read fewer bytes than asked. With
	 * HOIST__SOURCE_DIRECT, buf, n and offset are multiples of src->align. */
	ssize_t (*read_at)(struct hoist__source *src, void *buf, size_t n, uint64_t offset);
	/* Maps [offset, offset + length) into memory, read-only (or copy-on-write with
	 * HOIST__SOURCE_MAP_PRIVATE): *addr is where byte
	 * `offset` lies. Until unmap, the bytes stay readable. Errors: HOIST_ERR_IO. */
	enum hoist_status (*map)(struct hoist__source *src, uint64_t offset, uint64_t length,
	                         const void **addr);
	void (*unmap)(struct hoist__source *src, const void *addr, uint64_t length);
	void (*close)(struct hoist__source *src);
	/* The file as it is now: *now through the open source (a truncation or a write
	 * shows there), *named what its path names now (another inode once replaced).
	 * Returns 0, or -1 with errno when the path names nothing (ENOENT: removed);
	 * *now is filled either way. */
	int (*identify)(struct hoist__source *src, struct hoist__file_id *now,
	                struct hoist__file_id *named);
};

struct hoist__source {
	const struct hoist__source_methods *methods;
	const char *path;         /* names the source in messages */
	uint64_t size;            /* bytes, when opened */
	struct hoist__file_id id; /* the file when opened */
	bool direct;              /* reads bypass the page cache (O_DIRECT) */
	unsigned align;           /* alignment direct reads need; 1 otherwise */
};

enum {
	/* Bypass the page cache where the file system can (O_DIRECT); where it cannot,
	 * the source opens buffered and says so with direct = false. */
	HOIST__SOURCE_DIRECT = 1u << 0,
	/* Maps are private and writable (copy-on-write): the pages are the page cache's
	 * until written, and a write lands in the process's own copy, never in the file.
	 * For views handed to consumers that ignore DLPack's read-only flag (torch), for
	 * whom a write into a read-only mapping would be a crash. */
	HOIST__SOURCE_MAP_PRIVATE = 1u << 1,
};

/* Opens the local file at path, which must be a regular file.
 * Errors: HOIST_ERR_IO ("<path>: cannot open: <why>", "<path>: not a regular file"),
 * HOIST_ERR_NOMEM. */
enum hoist_status hoist__source_open(const char *path, unsigned flags, struct hoist__source **out);

/* Destroys a source (NULL ok); mappings must be gone. */
void hoist__source_close(struct hoist__source *src);

/* Checks that the source's file still has `expect`'s size and mtime (what a reader
 * saw earlier: the checkpoint's header), through the open source and by its path.
 * `when` completes the message: "while it was being loaded", "since the checkpoint
 * was opened". Errors: HOIST_ERR_IO, "<path>: changed <when> (size 1234 -> 1000
 * bytes)", or "(replaced by another file: device D inode A -> device D inode B)",
 * "(removed)", "(modified: mtime <then> -> <now> UTC)". */
enum hoist_status hoist__source_verify(struct hoist__source *src,
                                       const struct hoist__file_id *expect, const char *when);

/* Reads exactly n bytes at offset, however many reads that takes: returns 0, or -1
 * with errno (EIO when the source ends first). */
int hoist__source_read_full(struct hoist__source *src, void *buf, size_t n, uint64_t offset);

/* Reads a whole small file (at most limit bytes) into a malloc'd, NUL-terminated
 * buffer. Errors: HOIST_ERR_IO, HOIST_ERR_FORMAT ("<path>: N bytes is too large for
 * <what> (limit L)"), HOIST_ERR_NOMEM. */
enum hoist_status hoist__source_read_file(const char *path, const char *what, uint64_t limit,
                                          char **out, size_t *len);

#endif /* HOIST_SOURCE_H */
