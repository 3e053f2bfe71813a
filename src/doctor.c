/* doctor.c - hoist_doctor_run: what would make loading a checkpoint slow or fail,
 * each finding with its evidence and a remedy.
 *
 * Every figure in a finding is measured now (mincore, statfs and mountinfo, /proc and
 * /sys, getrlimit, the driver, a short O_DIRECT read of the shards) or was measured
 * by hoist bench on this machine, and says which; what cannot be measured is a
 * finding of its own (HOIST_VERDICT_UNMEASURED) with the reason. The checks share
 * one examination: the checkpoint, its plan under the options (or why none could be
 * made), the GPUs the driver lists, the shards' mount. */
#include "figures.h"
#include "probe.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#define COLD_SAMPLE (64ull << 20) /* bytes of the shards read with O_DIRECT, at most */
#define COLD_SECONDS 1.0
#define THP_SAMPLE (64u << 20)
#define HUGE (2u << 20)
#define TEXT 2048 /* a finding's summary, evidence or remedy, at most */

struct hoist_doctor {
	struct hoist_finding findings[HOIST_CHECK_COUNT];
	size_t count;
	struct hoist__strings text; /* owns the findings' strings */
};

/* What the checks share. */
struct exam {
	const char *path;
	const struct hoist_options *opt;
	struct hoist_checkpoint *ck;
	struct hoist_plan *plan;       /* NULL: planning failed, as plan_status says */
	enum hoist_status plan_status; /* HOIST_OK, or why there is no plan */
	char plan_error[1024];
	uint64_t host_bytes; /* arena bytes the plan puts in host memory (not mmap) */
	uint64_t file_bytes; /* bytes of every shard */
	/* the CUDA driver, as hoist_device_list finds it */
	enum hoist_status cuda_status;
	char cuda_error[600];
	size_t ngpu;
	struct hoist_device_info gpus[HOIST_MAX_DEVICES];
	struct hoist__mount mount; /* of the first shard */
	uint64_t fs_dev;
	/* the shards' storage read cold: a stored figure or one measured now */
	bool storage_tried, storage_known;
	double storage_bps;
	char storage_how[1600]; /* where the figure comes from, or why there is none */
};

const char *hoist_check_name(enum hoist_check check)
{
	static const char *const names[] = {
	        [HOIST_CHECK_PAGE_CACHE] = "page cache",
	        [HOIST_CHECK_HOST_MEMORY] = "host memory",
	        [HOIST_CHECK_GPU_MEMORY] = "gpu memory",
	        [HOIST_CHECK_FILE_SYSTEM] = "file system",
	        [HOIST_CHECK_MEMLOCK] = "memlock",
	        [HOIST_CHECK_GPU_DRIVER] = "gpu driver",
	        [HOIST_CHECK_HUGE_PAGES] = "huge pages",
	        [HOIST_CHECK_NUMA] = "numa",
	        [HOIST_CHECK_STORAGE_SPEED] = "storage speed",
	};
	return (unsigned)check < HOIST__ARRAY_SIZE(names) ? names[check] : NULL;
}

const char *hoist_verdict_name(enum hoist_verdict verdict)
{
	static const char *const names[] = {
	        [HOIST_VERDICT_OK] = "ok",
	        [HOIST_VERDICT_NOTE] = "note",
	        [HOIST_VERDICT_SLOW] = "slow",
	        [HOIST_VERDICT_FAIL] = "fail",
	        [HOIST_VERDICT_UNMEASURED] = "unmeasured",
	};
	return (unsigned)verdict < HOIST__ARRAY_SIZE(names) ? names[verdict] : NULL;
}

/* ---- findings ----------------------------------------------------------------------- */

/* A finding's three texts while it is written. */
struct text {
	char summary[TEXT], evidence[TEXT], remedy[TEXT];
};

static void put(char *buf, const char *fmt, ...) HOIST__PRINTF(2, 3);

/* Appends to one of a finding's texts. */
static void put(char *buf, const char *fmt, ...)
{
	size_t n = strlen(buf);
	if (n + 1 >= TEXT)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf + n, TEXT - n, fmt, ap);
	va_end(ap);
}

static enum hoist_status add(struct hoist_doctor *d, enum hoist_check check,
                             enum hoist_verdict verdict, const struct text *t)
{
	const char *parts[3] = {t->summary, t->evidence, t->remedy};
	const char *copies[3];
	for (int i = 0; i < 3; i++) {
		enum hoist_status st = hoist__strings_add(&d->text, parts[i]);
		if (st != HOIST_OK)
			return st;
		copies[i] = d->text.items[d->text.count - 1];
	}
	d->findings[d->count++] =
	        (struct hoist_finding){check, verdict, copies[0], copies[1], copies[2]};
	return HOIST_OK;
}

static char *bytes(uint64_t n, char *buf, size_t size)
{
	return hoist_bytes_format(n, buf, size);
}

static char *when(int64_t t, char *buf, size_t size)
{
	time_t tt = (time_t)t;
	struct tm tm;
	if (!localtime_r(&tt, &tm) || !strftime(buf, size, "%Y-%m-%d %H:%M", &tm))
		snprintf(buf, size, "?");
	return buf;
}

/* ---- small readers of /proc and /sys -------------------------------------------------- */

/* The first line of a file, without its newline; false if it cannot be read. */
static bool read_line(const char *path, char *buf, size_t size)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return false;
	bool ok = fgets(buf, (int)size, f) != NULL;
	fclose(f);
	if (ok)
		buf[strcspn(buf, "\n")] = '\0';
	return ok;
}

/* A /proc/meminfo field in bytes; false if absent. */
static bool meminfo(const char *key, uint64_t *out)
{
	FILE *f = fopen("/proc/meminfo", "r");
	char line[256];
	size_t n = strlen(key);
	bool found = false;
	if (!f)
		return false;
	while (!found && fgets(line, sizeof line, f)) {
		unsigned long long kb;
		if (strncmp(line, key, n) == 0 && line[n] == ':' &&
		    sscanf(line + n + 1, "%llu", &kb) == 1) {
			*out = (uint64_t)kb * 1024;
			found = true;
		}
	}
	fclose(f);
	return found;
}

/* The memory cgroup's limit and usage (v2 memory.max / memory.current, or v1
 * memory.limit_in_bytes / memory.usage_in_bytes); false where there is no limit. */
static bool cgroup_memory(uint64_t *limit, uint64_t *usage, char *where, size_t size)
{
	FILE *f = fopen("/proc/self/cgroup", "r");
	char line[1024], dir[1200], v[64];
	bool found = false;
	if (!f)
		return false;
	while (!found && fgets(line, sizeof line, f)) {
		line[strcspn(line, "\n")] = '\0';
		char *path = strrchr(line, ':');
		if (!path)
			continue;
		bool v2 = strncmp(line, "0::", 3) == 0;
		bool v1 = !v2 && strstr(line, ":memory:") != NULL;
		if (!v1 && !v2)
			continue;
		snprintf(dir, sizeof dir, "/sys/fs/cgroup%s%s", v1 ? "/memory" : "", path + 1);
		char file[1300];
		snprintf(file, sizeof file, "%s/%s", dir,
		         v1 ? "memory.limit_in_bytes" : "memory.max");
		unsigned long long l, u;
		if (!read_line(file, v, sizeof v) || sscanf(v, "%llu", &l) != 1)
			continue; /* "max", or no such file */
		if (l >= (1ull << 62))
			continue; /* v1's way of saying unlimited */
		snprintf(file, sizeof file, "%s/%s", dir,
		         v1 ? "memory.usage_in_bytes" : "memory.current");
		if (!read_line(file, v, sizeof v) || sscanf(v, "%llu", &u) != 1)
			u = 0;
		*limit = l;
		*usage = u;
		snprintf(where, size, "%s", file);
		*strrchr(where, '/') = '\0';
		found = true;
	}
	fclose(f);
	return found;
}

/* CAP_IPC_LOCK (14) in the effective set (/proc/self/status CapEff). */
static bool has_ipc_lock(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	bool has = false;
	if (!f)
		return false;
	while (fgets(line, sizeof line, f)) {
		unsigned long long caps;
		if (sscanf(line, "CapEff: %llx", &caps) == 1)
			has = caps & (1ull << 14);
	}
	fclose(f);
	return has;
}

/* A list such as "0-3,8" into a bit mask of up to 64 numbers; the count set. */
static unsigned parse_list(const char *s, uint64_t *mask)
{
	unsigned n = 0;
	*mask = 0;
	while (*s) {
		char *end;
		unsigned long a = strtoul(s, &end, 10), b = a;
		if (end == s)
			break;
		if (*end == '-')
			b = strtoul(end + 1, &end, 10);
		for (unsigned long i = a; i <= b && i < 64; i++, n++)
			*mask |= 1ull << i;
		s = *end == ',' ? end + 1 : end;
		if (*s == '\n' || *s == '\0')
			break;
	}
	return n;
}

/* ---- the examination --------------------------------------------------------------- */

static enum hoist_status examine(struct exam *e)
{
	static const struct hoist_options defaults;
	const struct hoist_options *opt = e->opt ? e->opt : &defaults;
	/* the checkpoint's warnings and the plan's notice are the load's business */
	struct hoist_options quiet = *opt;
	quiet.log = NULL;
	quiet.progress = NULL;
	enum hoist_status st = hoist_checkpoint_open(e->path, &quiet, &e->ck);
	if (st != HOIST_OK)
		return st;
	for (size_t i = 0; i < hoist_checkpoint_shard_count(e->ck); i++)
		e->file_bytes += hoist_checkpoint_shard(e->ck, i)->size;
	e->plan_status = hoist_plan_create(e->ck, &quiet, &e->plan);
	/* No room and no device are findings; a bad option or map file is the caller's
	 * to fix. */
	if (e->plan_status != HOIST_OK && e->plan_status != HOIST_ERR_NO_SPACE &&
	    e->plan_status != HOIST_ERR_NO_DEVICE)
		return e->plan_status;
	if (e->plan_status != HOIST_OK)
		snprintf(e->plan_error, sizeof e->plan_error, "%s", hoist_errmsg());
	for (size_t i = 0; e->plan && i < hoist_plan_device_count(e->plan); i++) {
		const struct hoist_plan_device *pd = hoist_plan_device(e->plan, i);
		if (pd->device.kind == HOIST_DEVICE_CPU && opt->host_memory != HOIST_HOST_MMAP)
			e->host_bytes += pd->bytes;
	}
	e->cuda_status =
	        hoist_device_list(HOIST_DEVICE_CUDA, &quiet, e->gpus, HOIST_MAX_DEVICES, &e->ngpu);
	if (e->cuda_status != HOIST_OK)
		snprintf(e->cuda_error, sizeof e->cuda_error, "%s", hoist_errmsg());
	if (hoist_checkpoint_shard_count(e->ck) > 0) {
		const char *shard = hoist_checkpoint_shard(e->ck, 0)->path;
		hoist__mount_of(shard, &e->mount);
		e->fs_dev = hoist__fs_dev(shard);
	}
	hoist__error_clear();
	return HOIST_OK;
}

/* The shards' cold-read figure: kept by hoist bench for their file system, else
 * measured now with a short O_DIRECT read (which leaves the page cache alone). */
static void storage_rate(struct exam *e)
{
	char at[32], where[300];
	if (e->storage_tried)
		return;
	e->storage_tried = true;
	struct hoist__figure f;
	hoist__mount_describe(&e->mount, where, sizeof where);
	if (hoist__figure_stored(HOIST_LINK_STORAGE, (struct hoist_device){HOIST_DEVICE_CPU, 0},
	                         e->fs_dev, &f)) {
		e->storage_known = true;
		e->storage_bps = f.pub.bytes_per_second;
		snprintf(
		        e->storage_how, sizeof e->storage_how,
		        "%.2f GB/s read cold (O_DIRECT, %u readers), measured by hoist bench on %s "
		        "on %s",
		        e->storage_bps / 1e9, f.pub.threads, when(f.pub.measured_at, at, sizeof at),
		        where);
		return;
	}
	size_t n = hoist_checkpoint_shard_count(e->ck);
	const char **paths = hoist__calloc(n ? n : 1, sizeof *paths);
	if (!paths) {
		snprintf(e->storage_how, sizeof e->storage_how, "out of memory measuring it");
		return;
	}
	for (size_t i = 0; i < n; i++)
		paths[i] = hoist_checkpoint_shard(e->ck, i)->path;
	enum hoist_status st =
	        hoist__probe_cold(paths, n, COLD_SAMPLE, hoist__probe_readers(), COLD_SECONDS, &f);
	hoist__free(paths);
	if (st != HOIST_OK) {
		snprintf(e->storage_how, sizeof e->storage_how,
		         "the cold-read speed could not be measured (%s), and hoist bench has kept "
		         "no figure for %s",
		         hoist_errmsg(), where);
		hoist__error_clear();
		return;
	}
	char b[32];
	e->storage_known = true;
	e->storage_bps = f.pub.bytes_per_second;
	snprintf(e->storage_how, sizeof e->storage_how,
	         "%.2f GB/s read cold, measured now: %s of the shards by O_DIRECT on %u readers "
	         "in %.3f s, on %s",
	         e->storage_bps / 1e9, bytes(f.pub.bytes, b, sizeof b), f.pub.threads,
	         f.pub.seconds, where);
}

/* ---- the checks ------------------------------------------------------------------------ */

/* Resident bytes of a file (mincore over a mapping that touches no page). */
static bool resident(const char *path, uint64_t *res, uint64_t *size, char *why, size_t wsize)
{
	int fd = hoist__open(path, O_RDONLY);
	struct stat st;
	bool ok = false;
	unsigned char *vec = NULL;
	void *p = MAP_FAILED;
	long page = sysconf(_SC_PAGESIZE);
	*res = *size = 0;
	if (fd < 0 || fstat(fd, &st) != 0) {
		snprintf(why, wsize, "%s: cannot open: %s", path, strerror(errno));
		goto out;
	}
	*size = (uint64_t)st.st_size;
	if (st.st_size == 0) {
		ok = true;
		goto out;
	}
	size_t pages = (size_t)(((uint64_t)st.st_size + (uint64_t)page - 1) / (uint64_t)page);
	p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
	vec = hoist__malloc(pages);
	if (p == MAP_FAILED || !vec || mincore(p, (size_t)st.st_size, vec) != 0) {
		snprintf(why, wsize, "%s: mincore: %s", path, strerror(errno));
		goto out;
	}
	for (size_t i = 0; i < pages; i++)
		if (vec[i] & 1)
			*res += (uint64_t)page;
	*res = HOIST__MIN(*res, *size);
	ok = true;
out:
	if (p != MAP_FAILED)
		munmap(p, (size_t)st.st_size);
	hoist__free(vec);
	hoist__close(fd);
	return ok;
}

static enum hoist_status check_page_cache(struct exam *e, struct hoist_doctor *d)
{
	struct text t = {"", "", ""};
	char b1[32], b2[32], why[600] = "";
	uint64_t res_all = 0, size_all = 0;
	size_t n = hoist_checkpoint_shard_count(e->ck), full = 0;
	for (size_t i = 0; i < n; i++) {
		uint64_t res, size;
		if (!resident(hoist_checkpoint_shard(e->ck, i)->path, &res, &size, why,
		              sizeof why)) {
			put(t.summary,
			    "the page cache's share of the shards could not be measured");
			put(t.evidence, "%s", why);
			return add(d, HOIST_CHECK_PAGE_CACHE, HOIST_VERDICT_UNMEASURED, &t);
		}
		res_all += res;
		size_all += size;
		full += res == size;
	}
	double share = size_all ? (double)res_all / (double)size_all : 1.0;
	put(t.evidence, "mincore over %zu shard%s: %s of %s resident (%.0f%%), %zu shard%s wholly",
	    n, n == 1 ? "" : "s", bytes(res_all, b1, sizeof b1), bytes(size_all, b2, sizeof b2),
	    100.0 * share, full, full == 1 ? "" : "s");
	if (share >= 0.99) {
		put(t.summary, "the shards are in the page cache (%.0f%%): a load reads memory",
		    100.0 * share);
		return add(d, HOIST_CHECK_PAGE_CACHE, HOIST_VERDICT_OK, &t);
	}
	uint64_t cold = size_all - res_all;
	storage_rate(e);
	put(t.summary,
	    "%s of the shards (%.0f%%) is not in the page cache: a load reads it from "
	    "storage",
	    bytes(cold, b1, sizeof b1), 100.0 * (1.0 - share));
	if (e->storage_known)
		put(t.summary, ", about %.2f s at %.2f GB/s", (double)cold / e->storage_bps,
		    e->storage_bps / 1e9);
	put(t.evidence, "; storage: %s", e->storage_how);
	uint64_t avail;
	put(t.remedy, "read the shards into the page cache before the load (cat FILES > /dev/null, "
	              "or vmtouch -t FILES)");
	if (meminfo("MemAvailable", &avail))
		put(t.remedy, " with memory to keep them there (%s available now, %s needed)",
		    bytes(avail, b1, sizeof b1), bytes(size_all, b2, sizeof b2));
	put(t.remedy, "; or load with --direct, which reads storage with O_DIRECT on parallel "
	              "readers, at its full speed");
	return add(d, HOIST_CHECK_PAGE_CACHE, HOIST_VERDICT_SLOW, &t);
}

/* The device a planner's "no room" message names first ("cuda:0: the tensors need"). */
static bool plan_error_on(const struct exam *e, enum hoist_device_kind kind)
{
	static const char *const prefix[] = {[HOIST_DEVICE_CPU] = "cpu",
	                                     [HOIST_DEVICE_CUDA] = "cuda:",
	                                     [HOIST_DEVICE_SIM] = "sim:",
	                                     [HOIST_DEVICE_DISK] = "disk"};
	return e->plan_status == HOIST_ERR_NO_SPACE &&
	       strncmp(e->plan_error, prefix[kind], strlen(prefix[kind])) == 0;
}

static enum hoist_status check_host_memory(struct exam *e, struct hoist_doctor *d)
{
	struct text t = {"", "", ""};
	char b1[32], b2[32], b3[32], where[1300];
	uint64_t avail = 0, swap_total = 0, swap_free = 0, limit = 0, usage = 0;
	bool have_avail = meminfo("MemAvailable", &avail);
	meminfo("SwapTotal", &swap_total);
	meminfo("SwapFree", &swap_free);
	bool cg = cgroup_memory(&limit, &usage, where, sizeof where);
	if (!have_avail) {
		put(t.summary, "available host memory could not be measured");
		put(t.evidence, "/proc/meminfo has no MemAvailable");
		return add(d, HOIST_CHECK_HOST_MEMORY, HOIST_VERDICT_UNMEASURED, &t);
	}
	uint64_t room = avail;
	put(t.evidence, "/proc/meminfo: MemAvailable %s, swap %s free of %s",
	    bytes(avail, b1, sizeof b1), bytes(swap_free, b2, sizeof b2),
	    bytes(swap_total, b3, sizeof b3));
	if (cg) {
		uint64_t left = limit > usage ? limit - usage : 0;
		put(t.evidence, "; memory cgroup %s: limit %s, %s in use", where,
		    bytes(limit, b1, sizeof b1), bytes(usage, b2, sizeof b2));
		room = HOIST__MIN(room, left);
	}
	if (plan_error_on(e, HOIST_DEVICE_CPU)) {
		put(t.summary, "the model does not fit host memory: planning failed");
		put(t.evidence, "; the planner: %s", e->plan_error);
		put(t.remedy,
		    "spill to disk (--device-map auto with --max-memory cpu=...), map the "
		    "files instead of copying them (--host-memory mmap), or load to a GPU");
		return add(d, HOIST_CHECK_HOST_MEMORY, HOIST_VERDICT_FAIL, &t);
	}
	if (!e->plan) {
		put(t.summary, "no plan to hold against host memory");
		put(t.evidence, "; the planner: %s", e->plan_error);
		return add(d, HOIST_CHECK_HOST_MEMORY, HOIST_VERDICT_UNMEASURED, &t);
	}
	bool mapped = e->opt && e->opt->host_memory == HOIST_HOST_MMAP;
	if (e->host_bytes == 0) {
		put(t.summary, "the plan stages nothing in host memory%s",
		    mapped ? " (cpu tensors are views of the mapped files)"
		           : " beyond the staging ring");
		return add(d, HOIST_CHECK_HOST_MEMORY, HOIST_VERDICT_OK, &t);
	}
	put(t.evidence, "; the plan puts %s in host arenas", bytes(e->host_bytes, b1, sizeof b1));
	bool tmpfs = strcmp(e->mount.fstype, "tmpfs") == 0 || strcmp(e->mount.fstype, "ramfs") == 0;
	if (tmpfs)
		put(t.evidence,
		    ", while the files themselves are in memory (%s): RAM holds the "
		    "model twice",
		    e->mount.fstype);
	if (e->host_bytes <= room) {
		put(t.summary, "host memory holds the plan's %s (%s available)",
		    bytes(e->host_bytes, b1, sizeof b1), bytes(room, b2, sizeof b2));
		return add(d, HOIST_CHECK_HOST_MEMORY, HOIST_VERDICT_OK, &t);
	}
	uint64_t short_by = e->host_bytes - room;
	bool swaps = !cg && swap_free >= short_by;
	put(t.summary, "the plan puts %s in host memory, %s more than is available: the load %s",
	    bytes(e->host_bytes, b1, sizeof b1), bytes(short_by, b2, sizeof b2),
	    swaps ? "would swap (the classic hang)" : "would run out of memory");
	put(t.remedy, "give the cpu a budget and spill the rest to disk (--device-map auto "
	              "--max-memory cpu=...), map the files instead of copying them "
	              "(--host-memory mmap), or load to a GPU");
	return add(d, HOIST_CHECK_HOST_MEMORY, swaps ? HOIST_VERDICT_SLOW : HOIST_VERDICT_FAIL, &t);
}

static enum hoist_status check_gpu_memory(struct exam *e, struct hoist_doctor *d)
{
	struct text t = {"", "", ""};
	char b1[32], b2[32], dev[24];
	if (plan_error_on(e, HOIST_DEVICE_CUDA) || plan_error_on(e, HOIST_DEVICE_SIM)) {
		put(t.summary, "the plan does not fit the devices' memory");
		put(t.evidence, "the planner: %s", e->plan_error);
		put(t.remedy, "spread it over more devices or spill to host memory and disk "
		              "(--device-map auto), or load at a smaller dtype (--dtype BF16)");
		return add(d, HOIST_CHECK_GPU_MEMORY, HOIST_VERDICT_FAIL, &t);
	}
	if (!e->plan) {
		put(t.summary, "no plan to hold against device memory");
		put(t.evidence, "the planner: %s", e->plan_error);
		return add(d, HOIST_CHECK_GPU_MEMORY, HOIST_VERDICT_UNMEASURED, &t);
	}
	size_t used = 0, over = 0;
	for (size_t i = 0; i < hoist_plan_device_count(e->plan); i++) {
		const struct hoist_plan_device *pd = hoist_plan_device(e->plan, i);
		if (pd->device.kind != HOIST_DEVICE_CUDA && pd->device.kind != HOIST_DEVICE_SIM)
			continue;
		if (pd->bytes == 0)
			continue;
		used++;
		struct hoist_device_info infos[HOIST_MAX_DEVICES];
		size_t n = 0;
		const struct hoist_device_info *info = NULL;
		if (pd->device.kind == HOIST_DEVICE_CUDA) {
			for (size_t g = 0; g < e->ngpu; g++)
				if (e->gpus[g].device.index == pd->device.index)
					info = &e->gpus[g];
		} else if (hoist_device_list(HOIST_DEVICE_SIM, e->opt, infos, HOIST_MAX_DEVICES,
		                             &n) == HOIST_OK) {
			for (size_t g = 0; g < n; g++)
				if (infos[g].device.index == pd->device.index)
					info = &infos[g];
		}
		hoist_device_format(pd->device, dev, sizeof dev);
		put(t.evidence, "%s%s: ", t.evidence[0] ? "; " : "", dev);
		if (!info) {
			put(t.evidence,
			    "the plan puts %s there, but no such device is present (%s)",
			    bytes(pd->bytes, b1, sizeof b1),
			    pd->device.kind == HOIST_DEVICE_CUDA && e->cuda_status != HOIST_OK
			            ? e->cuda_error
			            : "not listed");
			over++;
			continue;
		}
		put(t.evidence, "the plan puts %s there, %s free now (%s)",
		    bytes(pd->bytes, b1, sizeof b1), bytes(info->free_bytes, b2, sizeof b2),
		    pd->device.kind == HOIST_DEVICE_CUDA ? "cuMemGetInfo" : "the sim's capacity");
		over += pd->bytes > info->free_bytes;
	}
	if (used == 0) {
		for (size_t i = 0; i < hoist_plan_device_count(e->plan); i++) {
			const struct hoist_plan_device *pd = hoist_plan_device(e->plan, i);
			put(t.evidence, "%sthe plan puts %s on %s", i ? "; " : "",
			    bytes(pd->bytes, b1, sizeof b1),
			    hoist_device_format(pd->device, dev, sizeof dev));
		}
		put(t.summary, "the plan puts nothing in device memory");
		return add(d, HOIST_CHECK_GPU_MEMORY, HOIST_VERDICT_OK, &t);
	}
	if (over) {
		put(t.summary,
		    "the plan does not fit %zu device%s' free memory: the load would fail "
		    "allocating",
		    over, over == 1 ? "" : "s");
		put(t.remedy, "plan within what is free (drop --max-memory, or lower it) and let a "
		              "device map spill the rest (--device-map auto), or free the devices");
		return add(d, HOIST_CHECK_GPU_MEMORY, HOIST_VERDICT_FAIL, &t);
	}
	put(t.summary, "the plan fits the devices' free memory");
	return add(d, HOIST_CHECK_GPU_MEMORY, HOIST_VERDICT_OK, &t);
}

static enum hoist_status check_file_system(struct exam *e, struct hoist_doctor *d)
{
	static const struct {
		const char *prefix;
		enum hoist_verdict verdict;
		const char *what, *remedy;
	} kinds[] = {
	        {"tmpfs", HOIST_VERDICT_NOTE,
	         "a memory file system: reads are memory copies, but the files take RAM (and the "
	         "cgroup's memory) for as long as they exist",
	         "for a cpu target, --host-memory mmap makes the tensors views of these pages "
	         "instead of a second copy"},
	        {"ramfs", HOIST_VERDICT_NOTE,
	         "a memory file system: the files take RAM and cannot be evicted",
	         "for a cpu target, --host-memory mmap avoids a second copy"},
	        {"overlay", HOIST_VERDICT_NOTE,
	         "an overlay file system (a container's layers): reads go through to the layer "
	         "below, which the evidence does not name",
	         "mount the model directory into the container as a volume (a bind mount of "
	         "local storage)"},
	        {"nfs", HOIST_VERDICT_SLOW,
	         "a network file system: reads run at the network's and the server's pace",
	         "copy the checkpoint to local storage (NVMe) once and load from there"},
	        {"cifs", HOIST_VERDICT_SLOW,
	         "an SMB network share: reads run at the network's pace",
	         "copy the checkpoint to local storage once and load from there"},
	        {"smb", HOIST_VERDICT_SLOW, "an SMB network share: reads run at the network's pace",
	         "copy the checkpoint to local storage once and load from there"},
	        {"fuse", HOIST_VERDICT_SLOW,
	         "a FUSE file system: every read goes through a user-space daemon (and, for "
	         "s3fs/gcsfuse/sshfs, the network)",
	         "copy the checkpoint to local storage once and load from there"},
	        {"9p", HOIST_VERDICT_SLOW, "a 9p share (a VM's or WSL's host files): slow reads",
	         "copy the checkpoint into the guest's own disk"},
	        {"virtiofs", HOIST_VERDICT_SLOW, "a virtiofs share of the host's files",
	         "copy the checkpoint into the guest's own disk if reads are slow"},
	        {"ceph", HOIST_VERDICT_SLOW, "a Ceph network file system",
	         "copy the checkpoint to local storage once and load from there"},
	        {"lustre", HOIST_VERDICT_SLOW,
	         "a Lustre parallel file system: fast when striped "
	         "wide, slow on one stripe",
	         "stripe the files widely (lfs setstripe) or stage them on local NVMe"},
	        {"gpfs", HOIST_VERDICT_SLOW, "a GPFS network file system",
	         "stage the checkpoint on local storage"},
	};
	struct text t = {"", "", ""};
	char where[300];
	struct statfs sf;
	const char *shard = hoist_checkpoint_shard_count(e->ck)
	                            ? hoist_checkpoint_shard(e->ck, 0)->path
	                            : e->path;
	if (statfs(shard, &sf) != 0 || strcmp(e->mount.fstype, "?") == 0) {
		put(t.summary, "the shards' file system could not be found");
		put(t.evidence, "%s: statfs: %s; /proc/self/mountinfo names no mount for it", shard,
		    strerror(errno));
		return add(d, HOIST_CHECK_FILE_SYSTEM, HOIST_VERDICT_UNMEASURED, &t);
	}
	hoist__mount_describe(&e->mount, where, sizeof where);
	put(t.evidence, "%s: statfs f_type 0x%llx; /proc/self/mountinfo: %s", shard,
	    (unsigned long long)sf.f_type, where);
	/* whether --direct can bypass the page cache there */
	int fd = open(shard, O_RDONLY | O_DIRECT | O_CLOEXEC);
	if (fd >= 0)
		put(t.evidence, "; O_DIRECT accepted");
	else
		put(t.evidence, "; O_DIRECT refused (%s): --direct reads buffered",
		    strerror(errno));
	if (fd >= 0)
		close(fd);
	/* every shard on the one file system? */
	for (size_t i = 1; i < hoist_checkpoint_shard_count(e->ck); i++)
		if (hoist__fs_dev(hoist_checkpoint_shard(e->ck, i)->path) != e->fs_dev) {
			put(t.evidence, "; %s is on another file system",
			    hoist_checkpoint_shard(e->ck, i)->path);
			break;
		}
	for (size_t k = 0; k < HOIST__ARRAY_SIZE(kinds); k++)
		if (strncmp(e->mount.fstype, kinds[k].prefix, strlen(kinds[k].prefix)) == 0) {
			put(t.summary, "the shards are on %s: %s", e->mount.fstype, kinds[k].what);
			put(t.remedy, "%s", kinds[k].remedy);
			return add(d, HOIST_CHECK_FILE_SYSTEM, kinds[k].verdict, &t);
		}
	put(t.summary, "the shards are on a local file system (%s)", e->mount.fstype);
	return add(d, HOIST_CHECK_FILE_SYSTEM, HOIST_VERDICT_OK, &t);
}

static enum hoist_status check_memlock(struct exam *e, struct hoist_doctor *d)
{
	struct text t = {"", "", ""};
	char b1[32], b2[32];
	struct rlimit rl;
	if (getrlimit(RLIMIT_MEMLOCK, &rl) != 0) {
		put(t.summary, "the locked-memory limit could not be read");
		put(t.evidence, "getrlimit(RLIMIT_MEMLOCK): %s", strerror(errno));
		return add(d, HOIST_CHECK_MEMLOCK, HOIST_VERDICT_UNMEASURED, &t);
	}
	bool capped = rl.rlim_cur != RLIM_INFINITY;
	bool cap = has_ipc_lock();
	if (capped)
		put(t.evidence, "RLIMIT_MEMLOCK %llu bytes (%s)", (unsigned long long)rl.rlim_cur,
		    bytes((uint64_t)rl.rlim_cur, b1, sizeof b1));
	else
		put(t.evidence, "RLIMIT_MEMLOCK unlimited");
	put(t.evidence, "; CAP_IPC_LOCK %s (/proc/self/status CapEff)", cap ? "held" : "not held");
	/* What the load would lock with mlock: a pinned cpu arena where no GPU driver
	 * pins it (the host backend's fallback). The CUDA driver pins its own buffers
	 * (cuMemHostAlloc), not through mlock. */
	bool pinned = e->opt && e->opt->host_memory == HOIST_HOST_PINNED;
	uint64_t locked = pinned && e->cuda_status != HOIST_OK ? e->host_bytes : 0;
	if (pinned && e->cuda_status == HOIST_OK && e->host_bytes)
		put(t.evidence,
		    "; the pinned cpu arena (%s) would come from the CUDA driver "
		    "(cuMemHostAlloc), not mlock",
		    bytes(e->host_bytes, b1, sizeof b1));
	if (locked == 0) {
		put(t.summary, "the load locks nothing with mlock");
		return add(d, HOIST_CHECK_MEMLOCK, HOIST_VERDICT_OK, &t);
	}
	put(t.evidence,
	    "; with no GPU driver, the pinned cpu arena of %s would be locked with "
	    "mlock",
	    bytes(locked, b1, sizeof b1));
	if (!capped || cap || locked <= rl.rlim_cur) {
		put(t.summary, "the locked-memory limit allows the %s the load locks",
		    bytes(locked, b1, sizeof b1));
		return add(d, HOIST_CHECK_MEMLOCK, HOIST_VERDICT_OK, &t);
	}
	put(t.summary,
	    "the locked-memory limit (%s) is too low for the %s the load would lock: "
	    "the load would fail",
	    bytes((uint64_t)rl.rlim_cur, b1, sizeof b1), bytes(locked, b2, sizeof b2));
	put(t.remedy,
	    "raise the limit (ulimit -l unlimited; systemd LimitMEMLOCK=infinity; docker "
	    "--ulimit memlock=-1), or load into pageable memory (--host-memory pageable)");
	return add(d, HOIST_CHECK_MEMLOCK, HOIST_VERDICT_FAIL, &t);
}

/* Why a driver that loads has no usable GPU: the visible devices, the device nodes,
 * the kernel module. */
static void driver_evidence(struct text *t)
{
	const char *visible = getenv("CUDA_VISIBLE_DEVICES");
	char line[256];
	if (visible)
		put(t->evidence, "; CUDA_VISIBLE_DEVICES=\"%s\"", visible);
	else
		put(t->evidence, "; CUDA_VISIBLE_DEVICES unset");
	int nodes = 0;
	for (int i = 0; i < 64; i++) {
		char node[32];
		snprintf(node, sizeof node, "/dev/nvidia%d", i);
		nodes += access(node, F_OK) == 0;
	}
	put(t->evidence, "; %d /dev/nvidiaN device node%s", nodes, nodes == 1 ? "" : "s");
	if (nodes && access("/dev/nvidia0", R_OK | W_OK) != 0)
		put(t->evidence, " (/dev/nvidia0 not readable and writable by this user)");
	if (read_line("/proc/driver/nvidia/version", line, sizeof line))
		put(t->evidence, "; /proc/driver/nvidia/version: %s", line);
	else
		put(t->evidence,
		    "; no /proc/driver/nvidia/version (no NVIDIA kernel module loaded)");
	if (visible && (!*visible || strcmp(visible, "-1") == 0 || strcmp(visible, "none") == 0))
		put(t->remedy, "CUDA_VISIBLE_DEVICES hides every GPU: unset it, or name the GPUs");
	else if (!nodes)
		put(t->remedy,
		    "the GPU device nodes are missing: in a container, run it with the "
		    "GPUs (docker run --gpus all, with the NVIDIA Container Toolkit); on "
		    "the host, load the driver's module (nvidia-modprobe, or reboot "
		    "after installing the driver)");
	else
		put(t->remedy, "nvidia-smi says whether the driver sees the GPUs; a driver and "
		               "kernel module of different versions, or a GPU fallen off the bus "
		               "(dmesg | grep -i nvrm) also look like this");
}

static enum hoist_status check_gpu_driver(struct exam *e, struct hoist_doctor *d)
{
	struct text t = {"", "", ""};
	char lib[1024], b1[32], b2[32];
	const char *dev = e->opt ? e->opt->device : NULL;
	bool wants_gpu = !dev || strncmp(dev, "cuda", 4) == 0;
	bool asked = dev && strncmp(dev, "cuda", 4) == 0;
	if (e->cuda_status == HOIST_OK) {
		put(t.summary, "the CUDA driver lists %zu GPU%s", e->ngpu, e->ngpu == 1 ? "" : "s");
		if (hoist__cuda_library(lib, sizeof lib))
			put(t.evidence, "libcuda.so.1 loaded from %s", lib);
		for (size_t g = 0; g < e->ngpu; g++)
			put(t.evidence, "; cuda:%d %s, %s of %s free", e->gpus[g].device.index,
			    e->gpus[g].name, bytes(e->gpus[g].free_bytes, b1, sizeof b1),
			    bytes(e->gpus[g].total_bytes, b2, sizeof b2));
		return add(d, HOIST_CHECK_GPU_DRIVER, HOIST_VERDICT_OK, &t);
	}
	enum hoist_verdict v = asked       ? HOIST_VERDICT_FAIL
	                       : wants_gpu ? HOIST_VERDICT_SLOW
	                                   : HOIST_VERDICT_NOTE;
	const char *effect = asked       ? "the load asks for one and would fail"
	                     : wants_gpu ? "the load goes to cpu instead"
	                                 : "the plan needs none";
	if (hoist__cuda_library(lib, sizeof lib)) {
		put(t.summary, "a CUDA driver loads but has no usable GPU: %s", effect);
		put(t.evidence, "libcuda.so.1 loaded from %s; %s", lib, e->cuda_error);
		driver_evidence(&t);
	} else {
		put(t.summary, "no CUDA driver: %s", effect);
		put(t.evidence, "%s", e->cuda_error);
		if (read_line("/proc/driver/nvidia/version", lib, sizeof lib))
			put(t.evidence, "; yet /proc/driver/nvidia/version: %s", lib);
		put(t.remedy, "install the NVIDIA driver's user-space library (libcuda.so.1, in "
		              "the driver package), or in a container run it with the GPUs (docker "
		              "run --gpus all)");
	}
	if (v == HOIST_VERDICT_NOTE)
		t.remedy[0] = '\0';
	return add(d, HOIST_CHECK_GPU_DRIVER, v, &t);
}

/* Anonymous huge pages of the mapping [p, p + len) (/proc/self/smaps AnonHugePages). */
static bool huge_bytes(const void *p, size_t len, uint64_t *out)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	char line[512];
	bool in = false, found = false;
	uintptr_t a = (uintptr_t)p;
	*out = 0;
	if (!f)
		return false;
	while (fgets(line, sizeof line, f)) {
		unsigned long long lo, hi, kb;
		if (sscanf(line, "%llx-%llx ", &lo, &hi) == 2 &&
		    strchr(line, '-') < strchr(line, ' ')) {
			in = lo < a + len && hi > a;
			continue;
		}
		if (in && sscanf(line, "AnonHugePages: %llu kB", &kb) == 1) {
			*out += kb * 1024;
			found = true;
		}
	}
	fclose(f);
	return found;
}

static enum hoist_status check_huge_pages(struct exam *e, struct hoist_doctor *d)
{
	struct text t = {"", "", ""};
	char setting[256], b1[32], b2[32];
	if (!read_line("/sys/kernel/mm/transparent_hugepage/enabled", setting, sizeof setting)) {
		put(t.summary, "transparent huge pages could not be examined");
		put(t.evidence, "no /sys/kernel/mm/transparent_hugepage/enabled");
		return add(d, HOIST_CHECK_HUGE_PAGES,
		           e->host_bytes ? HOIST_VERDICT_UNMEASURED : HOIST_VERDICT_OK, &t);
	}
	put(t.evidence, "/sys/kernel/mm/transparent_hugepage/enabled: %s", setting);
	if (e->host_bytes == 0) {
		put(t.summary, "the plan has no host arena, where huge pages would matter");
		return add(d, HOIST_CHECK_HUGE_PAGES, HOIST_VERDICT_OK, &t);
	}
	/* What a host arena gets: an aligned, madvised buffer, touched and timed. */
	size_t len = THP_SAMPLE;
	uint8_t *raw =
	        mmap(NULL, len + HUGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (raw == MAP_FAILED) {
		put(t.summary, "huge pages could not be tried");
		put(t.evidence, "; mmap of %s: %s", bytes(len, b1, sizeof b1), strerror(errno));
		return add(d, HOIST_CHECK_HUGE_PAGES, HOIST_VERDICT_UNMEASURED, &t);
	}
	uint8_t *p = (uint8_t *)(((uintptr_t)raw + HUGE - 1) & ~(uintptr_t)(HUGE - 1));
	madvise(p, len, MADV_HUGEPAGE);
	double t0 = hoist__now();
	for (size_t i = 0; i < len; i += 4096)
		p[i] = 1;
	double secs = hoist__now() - t0;
	uint64_t huge = 0;
	bool known = huge_bytes(p, len, &huge);
	munmap(raw, len + HUGE);
	put(t.evidence, "; a %s MADV_HUGEPAGE buffer (as a host arena) got ",
	    bytes(len, b1, sizeof b1));
	if (known)
		put(t.evidence, "%s of huge pages (AnonHugePages, /proc/self/smaps)",
		    bytes(huge, b2, sizeof b2));
	else
		put(t.evidence,
		    "an unknown share of huge pages (no AnonHugePages in /proc/self/smaps)");
	put(t.evidence, ", first touch at %.2f GB/s", secs > 0 ? (double)len / secs / 1e9 : 0.0);
	if (!known) {
		put(t.summary, "whether host arenas get huge pages could not be measured");
		return add(d, HOIST_CHECK_HUGE_PAGES, HOIST_VERDICT_UNMEASURED, &t);
	}
	if (huge * 2 >= len) {
		put(t.summary, "host arenas get transparent huge pages");
		return add(d, HOIST_CHECK_HUGE_PAGES, HOIST_VERDICT_OK, &t);
	}
	put(t.summary,
	    "host arenas get no transparent huge pages: the first touch of the plan's "
	    "%s in host memory costs a fault per 4 KiB page",
	    bytes(e->host_bytes, b1, sizeof b1));
	if (strstr(setting, "[never]"))
		put(t.remedy, "allow them where asked for: echo madvise > "
		              "/sys/kernel/mm/transparent_hugepage/enabled (root)");
	else
		put(t.remedy, "memory is too fragmented for huge pages: compact it (echo 1 > "
		              "/proc/sys/vm/compact_memory), or see "
		              "/sys/kernel/mm/transparent_hugepage/defrag");
	return add(d, HOIST_CHECK_HUGE_PAGES, HOIST_VERDICT_SLOW, &t);
}

static enum hoist_status check_numa(struct exam *e, struct hoist_doctor *d)
{
	struct text t = {"", "", ""};
	char online[256], bus[64], file[256], line[64], cpus[1024];
	uint64_t nodes_mask;
	if (!read_line("/sys/devices/system/node/online", online, sizeof online)) {
		put(t.summary, "NUMA nodes could not be listed");
		put(t.evidence, "no /sys/devices/system/node/online");
		return add(d, HOIST_CHECK_NUMA, HOIST_VERDICT_UNMEASURED, &t);
	}
	unsigned nodes = parse_list(online, &nodes_mask);
	put(t.evidence, "/sys/devices/system/node/online: %s", online);
	if (nodes <= 1) {
		put(t.summary, "one NUMA node: no placement to get wrong");
		return add(d, HOIST_CHECK_NUMA, HOIST_VERDICT_OK, &t);
	}
	/* the nodes this process may run on */
	cpu_set_t set;
	uint64_t run_nodes = 0;
	if (sched_getaffinity(0, sizeof set, &set) == 0)
		for (unsigned n = 0; n < 64; n++) {
			if (!(nodes_mask & (1ull << n)))
				continue;
			snprintf(file, sizeof file, "/sys/devices/system/node/node%u/cpulist", n);
			uint64_t m;
			if (!read_line(file, cpus, sizeof cpus))
				continue;
			parse_list(cpus, &m); /* CPUs above 63 are not looked at */
			for (unsigned c = 0; c < 64; c++)
				if ((m & (1ull << c)) && CPU_ISSET(c, &set))
					run_nodes |= 1ull << n;
		}
	put(t.evidence, "; this process may run on the CPUs of %d node%s",
	    __builtin_popcountll(run_nodes), __builtin_popcountll(run_nodes) == 1 ? "" : "s");
	size_t far = 0, unknown = 0, gpus = 0;
	int gpu_node = -1;
	for (size_t i = 0; e->plan && i < hoist_plan_device_count(e->plan); i++) {
		const struct hoist_plan_device *pd = hoist_plan_device(e->plan, i);
		if (pd->device.kind != HOIST_DEVICE_CUDA || pd->bytes == 0)
			continue;
		gpus++;
		if (hoist__cuda_pci_bus_id(pd->device.index, bus, sizeof bus) != HOIST_OK) {
			put(t.evidence, "; cuda:%d: %s", pd->device.index, hoist_errmsg());
			unknown++;
			continue;
		}
		for (char *c = bus; *c; c++)
			*c = (char)(*c >= 'A' && *c <= 'F' ? *c - 'A' + 'a' : *c);
		snprintf(file, sizeof file, "/sys/bus/pci/devices/%s/numa_node", bus);
		int node = -1;
		if (read_line(file, line, sizeof line))
			node = atoi(line);
		if (node < 0) {
			put(t.evidence, "; cuda:%d (%s): no NUMA node in %s", pd->device.index, bus,
			    file);
			unknown++;
			continue;
		}
		put(t.evidence, "; cuda:%d (%s) on node %d", pd->device.index, bus, node);
		gpu_node = node;
		far += run_nodes & ~(1ull << node) ? 1 : 0;
	}
	hoist__error_clear();
	if (gpus == 0) {
		put(t.summary, "%u NUMA nodes; the plan copies to no GPU, so no GPU's node matters",
		    nodes);
		return add(d, HOIST_CHECK_NUMA, HOIST_VERDICT_OK, &t);
	}
	if (unknown == gpus) {
		put(t.summary, "%u NUMA nodes; which node the GPUs hang on could not be measured",
		    nodes);
		return add(d, HOIST_CHECK_NUMA, HOIST_VERDICT_UNMEASURED, &t);
	}
	if (far) {
		put(t.summary, "the process may run on NUMA nodes other than its GPUs': staging "
		               "buffers can land on the far node, and copies then cross the "
		               "inter-socket link");
		put(t.remedy,
		    "bind the load to the GPU's node: numactl --cpunodebind=%d "
		    "--membind=%d hoist load ...",
		    gpu_node, gpu_node);
		return add(d, HOIST_CHECK_NUMA, HOIST_VERDICT_SLOW, &t);
	}
	put(t.summary, "the process runs on its GPUs' NUMA node");
	return add(d, HOIST_CHECK_NUMA, HOIST_VERDICT_OK, &t);
}

static enum hoist_status check_storage_speed(struct exam *e, struct hoist_doctor *d)
{
	struct text t = {"", "", ""};
	char at[32];
	struct hoist_bench *figs = NULL;
	if (strcmp(e->mount.fstype, "tmpfs") == 0 || strcmp(e->mount.fstype, "ramfs") == 0) {
		char where[300];
		hoist__mount_describe(&e->mount, where, sizeof where);
		put(t.summary, "the shards are in memory (%s): there is no storage to be slow",
		    e->mount.fstype);
		put(t.evidence, "%s", where);
		return add(d, HOIST_CHECK_STORAGE_SPEED, HOIST_VERDICT_OK, &t);
	}
	storage_rate(e);
	put(t.evidence, "the shards' storage: %s", e->storage_how);
	if (!e->storage_known) {
		put(t.summary, "the shards' storage speed could not be measured");
		return add(d, HOIST_CHECK_STORAGE_SPEED, HOIST_VERDICT_UNMEASURED, &t);
	}
	if (hoist_bench_stored(&figs) != HOIST_OK)
		hoist__error_clear();
	const struct hoist__figure *best = NULL;
	for (size_t i = 0; figs && i < figs->count; i++) {
		const struct hoist__figure *f = &figs->figs[i];
		if (f->pub.link == HOIST_LINK_STORAGE && f->fs_dev != e->fs_dev &&
		    (!best || f->pub.bytes_per_second > best->pub.bytes_per_second))
			best = f;
	}
	enum hoist_status st;
	if (!best) {
		put(t.summary,
		    "no other storage of this machine has been measured to compare with");
		put(t.remedy,
		    "run `hoist bench DIR` with a directory on each disk to compare them");
		st = add(d, HOIST_CHECK_STORAGE_SPEED, HOIST_VERDICT_UNMEASURED, &t);
	} else {
		double ratio = e->storage_bps / best->pub.bytes_per_second;
		put(t.evidence,
		    "; the fastest other storage measured here: %.2f GB/s, %s (hoist bench, "
		    "%s)",
		    best->pub.bytes_per_second / 1e9, best->where,
		    when(best->pub.measured_at, at, sizeof at));
		if (ratio < 0.5) {
			put(t.summary,
			    "the shards are on storage %.1fx slower than this machine's best",
			    1.0 / ratio);
			put(t.remedy,
			    "copy the checkpoint to the faster storage (%s) and load from there",
			    best->where);
			st = add(d, HOIST_CHECK_STORAGE_SPEED, HOIST_VERDICT_SLOW, &t);
		} else {
			put(t.summary,
			    "the shards are on storage about as fast as this machine's best");
			st = add(d, HOIST_CHECK_STORAGE_SPEED, HOIST_VERDICT_OK, &t);
		}
	}
	hoist_bench_free(figs);
	return st;
}

enum hoist_status hoist_doctor_run(const char *path, const struct hoist_options *opt,
                                   struct hoist_doctor **out)
{
	static enum hoist_status (*const checks[HOIST_CHECK_COUNT])(struct exam *,
	                                                            struct hoist_doctor *) = {
	        check_page_cache,  check_host_memory, check_gpu_memory,
	        check_file_system, check_memlock,     check_gpu_driver,
	        check_huge_pages,  check_numa,        check_storage_speed,
	};
	if (!path || !out)
		return hoist__error(HOIST_ERR_INVALID, "hoist_doctor_run: NULL path or out");
	*out = NULL;
	struct exam *e = hoist__calloc(1, sizeof *e);
	struct hoist_doctor *d = hoist__calloc(1, sizeof *d);
	enum hoist_status st = HOIST_OK;
	if (!e || !d) {
		st = hoist__error(HOIST_ERR_NOMEM, "doctor: out of memory");
		goto out;
	}
	e->path = path;
	e->opt = opt;
	if ((st = examine(e)) != HOIST_OK)
		goto out;
	for (size_t i = 0; i < HOIST_CHECK_COUNT && st == HOIST_OK; i++)
		st = checks[i](e, d);
out:
	if (e) {
		hoist_plan_free(e->plan);
		hoist_checkpoint_close(e->ck);
		hoist__free(e);
	}
	if (st != HOIST_OK) {
		hoist_doctor_free(d);
		return st;
	}
	*out = d;
	return HOIST_OK;
}

void hoist_doctor_free(struct hoist_doctor *d)
{
	if (!d)
		return;
	hoist__strings_free(&d->text);
	hoist__free(d);
}

size_t hoist_doctor_finding_count(const struct hoist_doctor *d)
{
	return d ? d->count : 0;
}

const struct hoist_finding *hoist_doctor_finding(const struct hoist_doctor *d, size_t i)
{
	return d && i < d->count ? &d->findings[i] : NULL;
}
