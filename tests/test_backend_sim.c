/* test_backend_sim.c - the device backends on their own: device lists, the sim
 * accelerator's memory, copies, capacity and faults, the host backend. */
#include "registry.h"
#include "test.h"

static void fill(unsigned char *p, size_t n, unsigned seed)
{
	uint32_t x = seed * 2654435761u + 1;
	for (size_t i = 0; i < n; i++) {
		x = x * 1664525u + 1013904223u;
		p[i] = (unsigned char)(x >> 24);
	}
}

TEST(devices_list_cpu)
{
	struct hoist_device_info info[4];
	size_t n = 99;
	CHECK_OK(hoist_device_list(HOIST_DEVICE_CPU, NULL, info, 4, &n));
	CHECK_EQ_INT(n, 1);
	CHECK_EQ_INT(info[0].device.kind, HOIST_DEVICE_CPU);
	CHECK_EQ_INT(info[0].device.index, 0);
	CHECK(info[0].free_bytes > 0 && info[0].free_bytes <= info[0].total_bytes);
	CHECK_STR(info[0].name, "host");
}

TEST(devices_list_sim)
{
	struct hoist_device_info info[8];
	size_t n = 99;
	CHECK_OK(hoist_device_list(HOIST_DEVICE_SIM, NULL, info, 8, &n));
	CHECK_EQ_INT(n, 1);
	CHECK_EQ_INT(info[0].device.kind, HOIST_DEVICE_SIM);
	CHECK_EQ_U64(info[0].total_bytes, 4ull << 30);
	CHECK_EQ_U64(info[0].free_bytes, 4ull << 30);
	struct hoist_options opt = {
	        .sim = &(struct hoist_sim_options){.devices = 3, .capacity = 1000000}};
	CHECK_OK(hoist_device_list(HOIST_DEVICE_SIM, &opt, info, 8, &n));
	CHECK_EQ_INT(n, 3);
	for (int i = 0; i < 3; i++) {
		CHECK_EQ_INT(info[i].device.index, i);
		CHECK_EQ_U64(info[i].free_bytes, 1000000);
		CHECK_STR(info[i].name, "sim");
	}
	CHECK_OK(hoist_device_list(HOIST_DEVICE_SIM, &opt, info, 2, &n));
	CHECK_EQ_INT(n, 2);
}

TEST(devices_list_cuda)
{
	struct hoist_device_info info[HOIST_MAX_DEVICES];
	size_t n = 99;
	enum hoist_status st =
	        hoist_device_list(HOIST_DEVICE_CUDA, NULL, info, HOIST_MAX_DEVICES, &n);
	if (st == HOIST_OK) {
		CHECK(n >= 1);
		CHECK(info[0].total_bytes > 0);
		CHECK(info[0].name[0] != '\0');
	} else {
		CHECK_EQ_INT(st, HOIST_ERR_NO_DEVICE);
		CHECK_EQ_INT(n, 0);
		const char *m = hoist_errmsg();
		/* dlerror() names the library (HOIST_CUDA_LIBRARY's path where set) */
		CHECK((strncmp(m, "no CUDA driver: ", 16) == 0 && strstr(m, "libcuda.so.1")) ||
		      strncmp(m, "no CUDA GPU", 11) == 0);
	}
}

TEST(devices_list_disk_is_invalid)
{
	struct hoist_device_info info[1];
	size_t n;
	CHECK_ERR(hoist_device_list(HOIST_DEVICE_DISK, NULL, info, 1, &n), HOIST_ERR_INVALID,
	          "no device list");
}

/* Copies `n` bytes into a fresh sim arena at `off` in pieces over both streams, waits
 * for the event, reads them back. */
TEST(sim_copy_round_trip)
{
	const struct hoist__backend *b = hoist__backend_for(HOIST_DEVICE_SIM);
	struct hoist_sim_options sim = {.devices = 2};
	struct hoist__dev *dev;
	CHECK_OK(b->open(&sim, 1, &dev));
	CHECK_EQ_INT(dev->device.kind, HOIST_DEVICE_SIM);
	CHECK_EQ_INT(dev->device.index, 1);
	CHECK(!dev->host_addressable);
	uint64_t addr;
	CHECK_OK(b->alloc(dev, 1 << 20, &addr));
	CHECK(addr >= HOIST_SIM_BASE + HOIST_SIM_WINDOW);
	CHECK(addr < HOIST_SIM_BASE + 2 * HOIST_SIM_WINDOW);
	/* The arena counts against the capacity: what is left, and no byte more. */
	uint64_t rest;
	CHECK_ERR(b->alloc(dev, (4ull << 30) - (1 << 20) + 1, &rest), HOIST_ERR_NO_SPACE,
	          "sim:1: out of device memory: 4.29 GB asked, 4.29 GB free of 4.29 GB");
	CHECK_OK(b->alloc(dev, (4ull << 30) - (1 << 20), &rest));
	b->free(dev, rest, (4ull << 30) - (1 << 20));

	size_t n = 300000;
	unsigned char *src = malloc(n), *back = malloc(n);
	void *staging;
	const char *how;
	fill(src, n, 7);
	CHECK_OK(b->host_alloc(dev, n, &staging, &how));
	memcpy(staging, src, n);
	struct hoist__event *ev;
	CHECK_OK(b->event_create(dev, &ev));
	for (size_t off = 0, i = 0; off < n; off += 4096, i++)
		CHECK_OK(b->copy_async(dev, (unsigned)(i % dev->streams), addr + 1000 + off,
		                       (char *)staging + off, HOIST__MIN(4096, n - off)));
	CHECK_OK(b->event_record(dev, ev, 0));
	bool done = false;
	while (!done)
		CHECK_OK(b->event_wait(dev, ev, 0.05, &done));
	memset(back, 0, n);
	CHECK_OK(b->copy_out(dev, back, addr + 1000, n));
	CHECK(memcmp(back, src, n) == 0);

	/* Synchronous copy in, then out. */
	fill(src, 5000, 9);
	CHECK_OK(b->copy_in(dev, addr, src, 5000));
	CHECK_OK(b->copy_out(dev, back, addr, 5000));
	CHECK(memcmp(back, src, 5000) == 0);

	/* Outside the allocation: the device refuses. */
	CHECK_ERR(b->copy_out(dev, back, addr + (1 << 20) - 10, 11), HOIST_ERR_DEVICE,
	          "sim:1: copy of 11 bytes at 0x");
	CHECK_ERR(b->copy_out(dev, back, 12345, 1), HOIST_ERR_DEVICE, "no allocation holds");

	b->event_destroy(dev, ev);
	b->host_free(dev, staging, n);
	b->free(dev, addr, 1 << 20);
	CHECK_OK(b->alloc(dev, 4ull << 30, &addr)); /* all of it free again */
	b->free(dev, addr, 4ull << 30);
	b->close(dev);
	free(src);
	free(back);
}

TEST(sim_open_bad_index)
{
	struct hoist__dev *dev = (struct hoist__dev *)1;
	CHECK_ERR(hoist__backend_sim.open(NULL, 1, &dev), HOIST_ERR_NO_DEVICE,
	          "sim:1: no such simulated device (sim_devices is 1)");
	CHECK(dev == NULL);
}

TEST(sim_capacity)
{
	const struct hoist__backend *b = &hoist__backend_sim;
	struct hoist_options opt = {.sim = &(struct hoist_sim_options){.capacity = 1000000}};
	struct hoist__dev *dev;
	uint64_t a1, a2;
	CHECK_OK(hoist__device_open((struct hoist_device){b->kind, 0}, &opt, &dev));
	CHECK_OK(b->alloc(dev, 600000, &a1));
	CHECK_ERR(b->alloc(dev, 400001, &a2), HOIST_ERR_NO_SPACE,
	          "sim:0: out of device memory: 400.00 KB asked, 400.00 KB free of 1.00 MB");
	CHECK_OK(b->alloc(dev, 400000, &a2));
	CHECK(a2 >= a1 + 600000);
	b->free(dev, a1, 600000);
	b->free(dev, a2, 400000);
	b->close(dev);
}

TEST(sim_fault_alloc)
{
	struct hoist_options opt = {
	        .sim = &(struct hoist_sim_options){.fault = HOIST_SIM_FAULT_ALLOC}};
	struct hoist__dev *dev;
	uint64_t a;
	CHECK_OK(hoist__device_open((struct hoist_device){HOIST_DEVICE_SIM, 0}, &opt, &dev));
	CHECK_ERR(hoist__backend_sim.alloc(dev, 4096, &a), HOIST_ERR_DEVICE,
	          "sim:0: injected allocation fault allocating 4.10 KB of device memory");
	hoist__backend_sim.close(dev);
}

TEST(sim_fault_copy)
{
	const struct hoist__backend *b = &hoist__backend_sim;
	struct hoist_options opt = {.sim = &(struct hoist_sim_options){
	                                    .fault = HOIST_SIM_FAULT_COPY, .fault_after = 10000}};
	struct hoist__dev *dev;
	uint64_t a;
	unsigned char buf[4096];
	fill(buf, sizeof buf, 3);
	CHECK_OK(hoist__device_open((struct hoist_device){b->kind, 0}, &opt, &dev));
	CHECK_OK(b->alloc(dev, 1 << 20, &a));
	struct hoist__event *e1, *e2;
	CHECK_OK(b->event_create(dev, &e1));
	CHECK_OK(b->event_create(dev, &e2));
	/* 8192 bytes land; the third copy would pass 10000 and fails. */
	CHECK_OK(b->copy_async(dev, 0, a, buf, 4096));
	CHECK_OK(b->copy_async(dev, 0, a + 4096, buf, 4096));
	CHECK_OK(b->event_record(dev, e1, 0));
	CHECK_OK(b->copy_async(dev, 0, a + 8192, buf, 4096));
	CHECK_OK(b->event_record(dev, e2, 0));
	bool done = false;
	enum hoist_status st = HOIST_OK;
	while (!done && st == HOIST_OK)
		st = b->event_wait(dev, e2, 0.05, &done);
	CHECK_EQ_INT(st, HOIST_ERR_DEVICE);
	CHECK(strstr(hoist_errmsg(), "sim:0: injected copy fault at device address 0x") != NULL);
	CHECK(strstr(hoist_errmsg(), "after 8192 bytes copied") != NULL);
	CHECK_ERR(b->synchronize(dev), HOIST_ERR_DEVICE, "injected copy fault");
	b->event_destroy(dev, e1);
	b->event_destroy(dev, e2);
	b->free(dev, a, 1 << 20);
	b->close(dev);
}

/* Device addresses the host must not dereference: the window is non-canonical. */
TEST(sim_addresses_are_not_host_memory)
{
	struct hoist__dev *dev;
	uint64_t a;
	CHECK_OK(hoist__backend_sim.open(NULL, 0, &dev));
	CHECK_OK(hoist__backend_sim.alloc(dev, 4096, &a));
	CHECK_EQ_U64(a >> 48, HOIST_SIM_BASE >> 48);
	hoist__backend_sim.free(dev, a, 4096);
	hoist__backend_sim.close(dev);
}

TEST(host_backend_pageable_and_pinned)
{
	const struct hoist__backend *b = hoist__backend_for(HOIST_DEVICE_CPU);
	for (int pinned = 0; pinned < 2; pinned++) {
		struct hoist_options opt = {.host_memory = pinned ? HOIST_HOST_PINNED
		                                                  : HOIST_HOST_PAGEABLE};
		struct hoist__dev *dev;
		uint64_t a;
		CHECK_OK(hoist__device_open((struct hoist_device){b->kind, 0}, &opt, &dev));
		CHECK(dev->host_addressable);
		enum hoist_status st = b->alloc(dev, 1 << 16, &a);
		if (st == HOIST_ERR_NOMEM && pinned) {
			/* no CUDA driver and mlock refused (RLIMIT_MEMLOCK): says so */
			CHECK(strstr(hoist_errmsg(), "mlock") != NULL);
			b->close(dev);
			continue;
		}
		CHECK_OK(st);
		CHECK_EQ_U64(a % 4096, 0);
		CHECK_STR(dev->memory, pinned ? (strstr(dev->memory, "cuMemHostAlloc")
		                                         ? "pinned by cuMemHostAlloc"
		                                         : "pinned by mlock")
		                              : "pageable");
		unsigned char src[1000], back[1000];
		fill(src, sizeof src, 5);
		CHECK_OK(b->copy_in(dev, a + 100, src, sizeof src));
		CHECK(memcmp((char *)(uintptr_t)a + 100, src, sizeof src) == 0);
		CHECK_OK(b->copy_out(dev, back, a + 100, sizeof back));
		CHECK(memcmp(back, src, sizeof src) == 0);
		b->free(dev, a, 1 << 16);
		b->close(dev);
	}
}
