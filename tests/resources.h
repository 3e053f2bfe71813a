/*
 * resources.h - what the test process holds, counted from outside the library
 * (/proc/self): descriptors, threads, sim device memory (one memfd per allocation or
 * stripe, named "hoist-sim", backend_sim.c), and memory (VmRSS, VmHWM). A failed call
 * must leave these as they were; a loop of loads must keep them flat.
 */
#ifndef HOIST_TEST_RESOURCES_H
#define HOIST_TEST_RESOURCES_H

#include <stddef.h>
#include <stdint.h>

struct test_held {
	size_t fds;        /* open descriptors (sim memfds included) */
	size_t threads;    /* tasks of the process */
	size_t sim_memfds; /* sim allocations' memfds */
	uint64_t sim_bytes;
};

void test_held_now(struct test_held *out);

/* True where descriptor fd (a name in /proc/self/fd) is a sim allocation's memfd. */
int test_is_sim_memfd(const char *fd);

/* Fails the test (naming `when` and what differs) unless the process holds what it
 * held in *before. hoist's threads must all be joined when a call returns; since the
 * kernel may list a joined thread for a moment after the join, more threads than
 * before are given 2 s to go, and fewer (one still listed in *before) pass. */
void test_held_check(const struct test_held *before, const char *when);

/* A field of /proc/self/status in KiB ("VmRSS", "VmHWM"). */
uint64_t test_status_kb(const char *field);

/* Resets VmHWM to the current VmRSS (writes 5 to /proc/self/clear_refs); false
 * where the kernel refuses. */
int test_reset_hwm(void);

/* True under AddressSanitizer or ThreadSanitizer, whose shadow memory and quarantine
 * make resident-memory figures meaningless, and whose mlock does nothing. */
int test_sanitized(void);

#endif
