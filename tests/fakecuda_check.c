/* fakecuda_check.c - the tests' side of the fake CUDA driver (fakecuda_check.h). */
#include "fakecuda_check.h"
#include "test.h"

#include <dlfcn.h>
#include <unistd.h>

static struct fakecuda_api api;
static bool loaded, allow_leaks;

static const char *fake_path(void)
{
	const char *p = getenv("HOIST_CUDA_LIBRARY");
	return p && *p ? p : NULL;
}

/* HOIST_TEST_FAKE_AS_SYSTEM=1: the fake stands for a system driver (with
 * FAKECUDA_DEVICES=0, a machine with a driver and no GPU): tests that drive its knobs
 * skip as they do on a real driver; the end check still holds hoist to its rules. */
static bool as_system(void)
{
	const char *v = getenv("HOIST_TEST_FAKE_AS_SYSTEM");
	return v && strcmp(v, "1") == 0;
}

static bool load_fake(void)
{
	if (!loaded && fake_path() && fakecuda_load(fake_path(), &api) == 0)
		loaded = true;
	return loaded;
}

const struct fakecuda_api *test_fake(void)
{
	return !as_system() && load_fake() ? &api : NULL;
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
	if (!loaded &&
	    (!fake_path() || !dlopen(fake_path(), RTLD_NOW | RTLD_NOLOAD) || !load_fake()))
		return;
	if (!allow_leaks)
		api.check_leaks();
	fail_on_violations("by the end of the test (leaks count as violations)");
}

void test_cuda_absent(void)
{
	if (fake_path() && !as_system())
		setenv("HOIST_CUDA_LIBRARY", "/nonexistent/hoist-test/libcuda.so.1", 1);
}

bool test_cuda_driver_loads(void)
{
	void *h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
	if (h)
		dlclose(h);
	return h != NULL;
}

const char *test_fake_driver_dir(void)
{
	static char dir[4096];
	snprintf(dir, sizeof dir, "%s", test_hoist_bin());
	char *slash = strrchr(dir, '/');
	snprintf(slash ? slash + 1 : dir, sizeof dir - (size_t)(slash ? slash + 1 - dir : 0),
	         "fakecuda");
	char lib[4200];
	snprintf(lib, sizeof lib, "%s/libcuda.so.1", dir);
	return access(lib, R_OK) == 0 ? dir : NULL;
}
