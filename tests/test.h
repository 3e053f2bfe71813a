/*
 * test.h - hoist's test framework.
 *
 * TEST(name) { ... } defines and registers a test. The runner (runner.c) forks each
 * test with a timeout, so a crash or a hang fails that test alone. Assertions print
 * where and why, then end the test's process. SKIP("why") ends it as skipped.
 */
#ifndef HOIST_TEST_H
#define HOIST_TEST_H

#include "hoist.h"
#include "hoist_testing.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TEST_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define TEST_MIN(a, b) ((a) < (b) ? (a) : (b))

typedef void (*test_fn)(void);
void test_register(const char *name, const char *file, test_fn fn, unsigned timeout_s);

#define TEST_TIMEOUT(name, seconds)                                                                \
	static void test_##name(void);                                                             \
	__attribute__((constructor)) static void test_register_##name(void)                        \
	{                                                                                          \
		test_register(#name, __FILE__, test_##name, seconds);                              \
	}                                                                                          \
	static void test_##name(void)
#define TEST(name) TEST_TIMEOUT(name, 60)

#define TEST_EXIT_SKIP 77

void test_fail(const char *file, int line, const char *fmt, ...)
        __attribute__((noreturn, format(printf, 3, 4)));
void test_skip(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

#define FAIL(...) test_fail(__FILE__, __LINE__, __VA_ARGS__)
#define SKIP(...) test_skip(__VA_ARGS__)
#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond))                                                                       \
			FAIL("CHECK(%s) failed", #cond);                                           \
	} while (0)
#define CHECK_EQ_INT(a, b)                                                                         \
	do {                                                                                       \
		long long a_ = (long long)(a), b_ = (long long)(b);                                \
		if (a_ != b_)                                                                      \
			FAIL("%s == %s: %lld != %lld", #a, #b, a_, b_);                            \
	} while (0)
#define CHECK_EQ_U64(a, b)                                                                         \
	do {                                                                                       \
		unsigned long long a_ = (unsigned long long)(a), b_ = (unsigned long long)(b);     \
		if (a_ != b_)                                                                      \
			FAIL("%s == %s: %llu != %llu", #a, #b, a_, b_);                            \
	} while (0)
#define CHECK_STR(a, b)                                                                            \
	do {                                                                                       \
		const char *a_ = (a), *b_ = (b);                                                   \
		if (!a_ || !b_ || strcmp(a_, b_) != 0)                                             \
			FAIL("%s == %s: \"%s\" != \"%s\"", #a, #b, a_ ? a_ : "(null)",             \
			     b_ ? b_ : "(null)");                                                  \
	} while (0)
/* The call returns `status` and hoist_errmsg() contains `needle`. */
#define CHECK_STATUS(call, status)                                                                 \
	do {                                                                                       \
		enum hoist_status s_ = (call);                                                     \
		if (s_ != (status))                                                                \
			FAIL("%s returned %s, expected %s (message: %s)", #call,                   \
			     hoist_status_name(s_), hoist_status_name(status), hoist_errmsg());    \
	} while (0)
#define CHECK_OK(call) CHECK_STATUS(call, HOIST_OK)
#define CHECK_ERR(call, status, needle)                                                            \
	do {                                                                                       \
		CHECK_STATUS(call, status);                                                        \
		if (!strstr(hoist_errmsg(), (needle)))                                             \
			FAIL("%s: message \"%s\" lacks \"%s\"", #call, hoist_errmsg(), (needle));  \
	} while (0)

/* ---- helpers (helpers.c) ---- */

/* The repository's tests/data directory (from HOIST_TEST_DATA or the build's default). */
const char *test_data_dir(void);
/* A fresh empty directory for this test, removed by the runner afterwards. */
const char *test_tmpdir(void);
/* test_tmpdir()/name, in a static rotating buffer (8 slots). */
const char *test_path(const char *name);
/* Joins into a static rotating buffer. */
const char *test_join(const char *dir, const char *name);
/* Writes bytes to path; fails the test on error. */
void test_write_file(const char *path, const void *data, size_t size);
/* Reads a whole file (malloc'd, NUL-terminated); fails the test on error. */
char *test_read_file(const char *path, size_t *size);
/* Lower-case hex sha256 of data into out[65]. */
void test_sha256_hex(const void *data, size_t size, char out[65]);
/* Runs a shell command, capturing stdout+stderr (malloc'd); returns the exit status
 * (or 128+signal). */
int test_run(char **output, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Under AddressSanitizer, fails the test if memory has leaked by now (a check in the
 * middle of a test, e.g. after each injected fault; the runner checks at every test's
 * end too). Does nothing in other builds. */
void test_check_no_leaks(void);
/* Path of the built hoist command (HOIST_BIN or the build's default). */
const char *test_hoist_bin(void);
/* hoist_device_format(d), in a static rotating buffer (8 slots). */
const char *test_device_name(struct hoist_device d);
/* The device plan p gives ck's tensor `name` (as test_device_name); fails the test if
 * ck has no such tensor. */
const char *test_tensor_device(const struct hoist_checkpoint *ck, const struct hoist_plan *p,
                               const char *name);
/* Points XDG_CACHE_HOME at test_tmpdir()/cache (made here), so that the figures hoist
 * bench keeps and plans read are this test's own (children of test_run inherit it);
 * returns that directory. */
const char *test_own_cache(void);
/* How many entries of dir, dot files aside, have `part` in their names ("": all); 0
 * where dir is not there (yet). */
size_t test_count_files(const char *dir, const char *part);
/* Plans ck under opt and loads by that plan (what a load given only options does):
 * the first failing step's status, its message in hoist_errmsg(). */
enum hoist_status test_load(const struct hoist_checkpoint *ck, const struct hoist_options *opt,
                            struct hoist_model **out);

#endif
