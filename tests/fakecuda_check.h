/*
 * fakecuda_check.h - the tests' side of the strict fake CUDA driver (tests/fakecuda):
 * `make check` points HOIST_CUDA_LIBRARY and HOIST_NVML_LIBRARY at it, and every test
 * process loads it on hoist's first CUDA call. These reach its controls (knobs,
 * counters, device bytes) through the same library, and the runner's end-of-test
 * check fails a test on any violation and on anything hoist left alive.
 */
#ifndef HOIST_TEST_FAKECUDA_CHECK_H
#define HOIST_TEST_FAKECUDA_CHECK_H

#include "fakecuda/fakecuda.h"

#include <stdbool.h>

/* The fake's controls where HOIST_CUDA_LIBRARY names the fake (loading it if hoist
 * has not yet), else NULL. */
const struct fakecuda_api *test_fake(void);
/* The same, skipping the test (saying why) where the CUDA driver is not the fake. */
const struct fakecuda_api *test_need_fake(void);
/* Sets a fake knob, failing the test if the fake refuses it (call before hoist's first
 * CUDA call for the device knobs). */
void test_fake_set(const char *name, const char *value);
/* The fake's counters now. */
struct fakecuda_counters test_fake_counters(void);
/* Fails the test if the fake counted a violation so far (printing the first ones). */
void test_fake_no_violations(void);
/* The runner's end-of-test check, where hoist loaded the fake: fails the test on any
 * violation, and on any CUDA object still alive (hoist frees everything it made by
 * the end of every test) unless test_fake_allow_leaks() was called. */
void test_fake_check_end(void);
void test_fake_allow_leaks(void);

/* Makes this test process see no CUDA driver (call before hoist's first CUDA call):
 * HOIST_CUDA_LIBRARY, where set (to the fake, in `make check`), then names a library
 * that does not exist, so the no-driver paths run; where it is unset the system's
 * driver stays, and tests that need no driver skip on a GPU machine. */
void test_cuda_absent(void);

/* True where libcuda.so.1 loads by name (the system's driver, or the fake through
 * LD_LIBRARY_PATH), as hoist loads it without HOIST_CUDA_LIBRARY. */
bool test_cuda_driver_loads(void);
/* The directory of the fake driver built beside the hoist binary (build/fakecuda), for
 * a child's LD_LIBRARY_PATH; NULL where it is not built. */
const char *test_fake_driver_dir(void);

#endif
