/*
 * probe.h - measuring the machine (probe.c): the links of a load as hoist bench
 * measures them (hoist_bench_run), and the pieces the doctor measures with too: where
 * a file's storage is mounted, a short cold read of a checkpoint's shards, what the
 * CUDA driver says of a GPU beyond what the backend asks it.
 */
#ifndef HOIST_PROBE_H
#define HOIST_PROBE_H

#include "figures.h"

/* The mount holding a file, from /proc/self/mountinfo (matched by device number,
 * the longest mount point above the file's real path). */
struct hoist__mount {
	char fstype[64];  /* "ext4", "nfs4", "fuse.sshfs", "tmpfs", "overlay" */
	char source[256]; /* "/dev/nvme0n1p2", "server:/export" */
	char point[4096]; /* "/", "/data" */
	unsigned major, minor;
};

/* false where the file or its mount cannot be found (the mount then reads "?"). */
bool hoist__mount_of(const char *path, struct hoist__mount *out);

/* "ext4 on /dev/vda, mounted at / (254:0)" into buf. */
void hoist__mount_describe(const struct hoist__mount *m, char *buf, size_t size);

/* Reads up to `bytes` of the given files (spread over them, from their starts) with
 * O_DIRECT on `threads` readers, for at most max_s seconds: *out is the storage
 * figure (pub.bytes, pub.seconds, pub.threads, where, fs_dev of the first file).
 * Errors: HOIST_ERR_IO ("<path>: no O_DIRECT on <fstype>" where the file system has
 * none, or the read's error), HOIST_ERR_NOMEM. */
enum hoist_status hoist__probe_cold(const char *const *paths, size_t npaths, uint64_t bytes,
                                    unsigned threads, double max_s, struct hoist__figure *out);

/* The reader threads a load uses by default: min(16, 2 x cores). */
unsigned hoist__probe_readers(void);

/* GPU ordinal's PCI bus id ("0000:18:00.0") from the CUDA driver already loaded by
 * the backend (hoist_device_list first). Errors: HOIST_ERR_NO_DEVICE, HOIST_ERR_DEVICE. */
enum hoist_status hoist__cuda_pci_bus_id(int ordinal, char *buf, size_t size);

/* The path of the loaded libcuda.so.1 into buf (from the dynamic linker); false where
 * none is loaded. */
bool hoist__cuda_library(char *buf, size_t size);

#endif /* HOIST_PROBE_H */
