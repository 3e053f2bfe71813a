/* test_sim_engines.c - the sim device's copy engines and striped memory: copies on
 * both streams land where they belong, across stripe boundaries, and big
 * allocations are spread over one memfd per engine exactly as backend_sim.c says. */
#include "registry.h"
#include "test.h"

#include <dirent.h>
#include <unistd.h>

#define STRIPE (2u << 20)

static unsigned char pattern(uint64_t off)
{
	uint64_t x = (off + 1) * 0x9e3779b97f4a7c15ull;
	return (unsigned char)(x >> 56);
}

/* The sim's memfds open in this process, in fd order. */
static size_t sim_fds(int *fd, size_t cap)
{
	size_t n = 0;
	DIR *d = opendir("/proc/self/fd");
	CHECK(d != NULL);
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		char path[300], link[256];
		if (e->d_name[0] == '.' || atoi(e->d_name) == dirfd(d))
			continue;
		snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
		ssize_t len = readlink(path, link, sizeof link - 1);
		if (len < 0)
			continue;
		link[len] = '\0';
		if (strncmp(link, "/memfd:hoist-sim", 16) == 0 && n < cap)
			fd[n++] = atoi(e->d_name);
	}
	closedir(d);
	return n;
}

static bool listed(const int *fd, size_t n, int x)
{
	for (size_t i = 0; i < n; i++)
		if (fd[i] == x)
			return true;
	return false;
}

TEST(sim_striped_copies_on_both_engines)
{
	const struct hoist__backend *b = &hoist__backend_sim;
	struct hoist_options opt = {.sim = &(struct hoist_sim_options){.capacity = 1ull << 30}};
	struct hoist__dev *dev;
	CHECK_OK(hoist__device_open((struct hoist_device){b->kind, 0}, &opt, &dev));
	CHECK_EQ_INT(dev->streams, 2);
	int before[64], after[64];
	size_t nb = sim_fds(before, 64);

	/* 80 MiB + 5: striped, with a partial last stripe */
	const uint64_t size = (80ull << 20) + 5;
	uint64_t addr;
	CHECK_OK(b->alloc(dev, size, &addr));
	size_t na = sim_fds(after, 64);
	CHECK_EQ_INT(na, nb + 2);
	int mine[2], k = 0;
	for (size_t i = 0; i < na; i++)
		if (!listed(before, nb, after[i]))
			mine[k++] = after[i];
	CHECK_EQ_INT(k, 2);

	void *staging;
	const char *how;
	CHECK_OK(b->host_alloc(dev, (size_t)size, &staging, &how));
	unsigned char *src = staging;
	for (uint64_t i = 0; i < size; i++)
		src[i] = pattern(i);
	/* Pieces of odd sizes that cross stripe boundaries, alternating streams. */
	struct hoist__event *ev[2];
	CHECK_OK(b->event_create(dev, &ev[0]));
	CHECK_OK(b->event_create(dev, &ev[1]));
	uint64_t piece = STRIPE + 12345, off = 0;
	for (unsigned i = 0; off < size; i++, off += piece)
		CHECK_OK(b->copy_async(dev, i % 2, addr + off, src + off,
		                       HOIST__MIN(piece, size - off)));
	CHECK_OK(b->event_record(dev, ev[0], 0));
	CHECK_OK(b->event_record(dev, ev[1], 1));
	for (int s = 0; s < 2; s++) {
		bool done = false;
		while (!done)
			CHECK_OK(b->event_wait(dev, ev[s], 0.05, &done));
	}

	/* Read back through the device, across stripes. */
	unsigned char *back = malloc(size);
	memset(back, 0, size);
	CHECK_OK(b->copy_out(dev, back, addr, size));
	for (uint64_t i = 0; i < size; i++)
		if (back[i] != pattern(i))
			FAIL("byte %llu: 0x%02x, wrote 0x%02x", (unsigned long long)i, back[i],
			     pattern(i));
	/* An unaligned window straddling a stripe boundary, both ways. */
	uint64_t w = 3 * STRIPE - 777;
	memset(back, 0, 4096);
	CHECK_OK(b->copy_out(dev, back, addr + w, 4096));
	for (uint64_t i = 0; i < 4096; i++)
		CHECK_EQ_INT(back[i], pattern(w + i));
	for (uint64_t i = 0; i < 4096; i++)
		back[i] = (unsigned char)~pattern(w + i);
	CHECK_OK(b->copy_in(dev, addr + w, back, 4096));
	for (uint64_t i = 0; i < 4096; i++)
		src[w + i] = (unsigned char)~pattern(w + i);

	/* The layout: stripe j is in the j % 2-th memfd, at (j / 2) * STRIPE. The two
	 * memfds are told apart by what stripe 0 holds. */
	unsigned char probe[64];
	CHECK_EQ_INT(pread(mine[0], probe, sizeof probe, 0), (long long)sizeof probe);
	if (memcmp(probe, src, sizeof probe) != 0) {
		int t = mine[0];
		mine[0] = mine[1];
		mine[1] = t;
	}
	unsigned char *raw = malloc(STRIPE);
	for (uint64_t j = 0; j * STRIPE < size; j++) {
		uint64_t n = HOIST__MIN((uint64_t)STRIPE, size - j * STRIPE);
		CHECK_EQ_INT(pread(mine[j % 2], raw, n, (off_t)(j / 2 * STRIPE)), (long long)n);
		if (memcmp(raw, src + j * STRIPE, n) != 0)
			FAIL("stripe %llu is not at %llu of memfd %llu", (unsigned long long)j,
			     (unsigned long long)(j / 2 * STRIPE), (unsigned long long)(j % 2));
	}
	free(raw);

	/* A small allocation stays in one memfd, bytes at their offsets. */
	nb = sim_fds(before, 64);
	uint64_t small;
	CHECK_OK(b->alloc(dev, 3 * STRIPE, &small));
	na = sim_fds(after, 64);
	CHECK_EQ_INT(na, nb + 1);

	b->free(dev, small, 3 * STRIPE);
	b->free(dev, addr, size);
	CHECK_EQ_INT(sim_fds(after, 64), nb - 2);
	b->event_destroy(dev, ev[0]);
	b->event_destroy(dev, ev[1]);
	b->host_free(dev, staging, (size_t)size);
	b->close(dev);
	free(back);
}

/* A copy fault on one engine is the device's: both streams' events report it, and the
 * other engine's queue drains (synchronize returns, nothing left queued). */
TEST(sim_copy_fault_on_either_engine)
{
	const struct hoist__backend *b = &hoist__backend_sim;
	struct hoist_options opt = {.sim = &(struct hoist_sim_options){
	                                    .fault = HOIST_SIM_FAULT_COPY, .fault_after = 0}};
	struct hoist__dev *dev;
	CHECK_OK(hoist__device_open((struct hoist_device){b->kind, 0}, &opt, &dev));
	uint64_t a;
	CHECK_OK(b->alloc(dev, 1 << 20, &a));
	unsigned char buf[4096];
	memset(buf, 7, sizeof buf);
	struct hoist__event *e0, *e1;
	CHECK_OK(b->event_create(dev, &e0));
	CHECK_OK(b->event_create(dev, &e1));
	CHECK_OK(b->copy_async(dev, 1, a + 8192, buf, sizeof buf));
	CHECK_OK(b->event_record(dev, e1, 1));
	CHECK_OK(b->copy_async(dev, 0, a, buf, sizeof buf));
	CHECK_OK(b->event_record(dev, e0, 0));
	for (int s = 0; s < 2; s++) {
		bool done = false;
		enum hoist_status st = HOIST_OK;
		while (!done && st == HOIST_OK)
			st = b->event_wait(dev, s ? e1 : e0, 0.05, &done);
		CHECK_EQ_INT(st, HOIST_ERR_DEVICE);
		CHECK(strstr(hoist_errmsg(), "sim:0: injected copy fault at device address 0x") !=
		      NULL);
	}
	CHECK_ERR(b->synchronize(dev), HOIST_ERR_DEVICE, "injected copy fault");
	b->event_destroy(dev, e0);
	b->event_destroy(dev, e1);
	b->free(dev, a, 1 << 20);
	b->close(dev);
}
