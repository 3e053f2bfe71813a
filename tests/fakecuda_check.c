/* fakecuda_check.c - the tests' side of the fake CUDA driver (fakecuda_check.h). */
#include "fakecuda_check.h"
#include "test.h"

static struct fakecuda_api api;
static bool loaded, allow_leaks;

static const char *fake_path(void)
{
	const char *p = getenv("HOIST_CUDA_LIBRARY");
	return p && *p ? p : NULL;
}

const struct fakecuda_api *test_fake(void)
{
	if (!loaded && fake_path() && fakecuda_load(fake_path(), &api) == 0)
		loaded = true;
	return loaded ? &api : NULL;
}

const struct fakecuda_api *test_need_fake(void)
{
	const struct fakecuda_api *f = test_fake();
	if (!f)
		SKIP("the CUDA driver is not the fake (HOIST_CUDA_LIBRARY=%s): this test drives "
		     "the fake's knobs and counters",
		     fake_path() ? fake_path() : "(unset)");
	return f;
}

void test_fake_set(const char *name, const char *value)
{
	const struct fakecuda_api *f = test_need_fake();
	int rc = f->set(name, value);
	if (rc != 0)
		FAIL("fakecuda_set(%s, %s): %d", name, value ? value : "NULL", rc);
}

struct fakecuda_counters test_fake_counters(void)
{
	struct fakecuda_counters c;
	if (test_need_fake()->counters_get(&c, sizeof c) != 0)
		FAIL("fakecuda_counters_get refused the size of struct fakecuda_counters");
	return c;
}

static void fail_on_violations(const char *when)
{
	struct fakecuda_counters c;
	if (api.counters_get(&c, sizeof c) != 0 || c.violations == 0)
		return;
	fprintf(stderr, "    fake CUDA driver: %llu violation(s) %s; the first:\n", c.violations,
	        when);
	for (unsigned long long i = 0; i < c.violations && i < FAKECUDA_MESSAGES; i++)
		fprintf(stderr, "      %s\n", c.messages[i]);
	FAIL("the fake CUDA driver counted %llu violation(s)", c.violations);
}

void test_fake_no_violations(void)
{
	test_need_fake();
	fail_on_violations("so far");
}

void test_fake_allow_leaks(void)
{
	allow_leaks = true;
}

void test_fake_check_end(void)
{
	/* Only where hoist (or the test) loaded the fake: never load it here. */
	if (!loaded) {
		if (!fake_path() || !dlopen(fake_path(), RTLD_NOW | RTLD_NOLOAD))
			return;
		if (fakecuda_load(fake_path(), &api) != 0)
			return;
		loaded = true;
	}
	if (!allow_leaks)
		api.check_leaks();
	fail_on_violations("by the end of the test (leaks count as violations)");
}

void test_cuda_absent(void)
{
	if (fake_path())
		setenv("HOIST_CUDA_LIBRARY", "/nonexistent/hoist-test/libcuda.so.1", 1);
}
