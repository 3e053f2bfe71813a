/* test_fuzz_regressions.c - the fuzz targets' inputs, replayed through their drivers
 * (fuzzdrv.c) in every build: every corpus file of tests/fuzz/NAME/ keeps the
 * library's promises, and every finding saved in tests/fuzz/regressions/ ends in the
 * clean error (status and message) its .expect file names.
 *
 * A finding is saved as tests/fuzz/regressions/TARGET-what (TARGET a driver's name:
 * index, config, device_map, open) with TARGET-what.expect beside it: the status's
 * name on the first line ("HOIST_ERR_FORMAT", or "HOIST_OK" where the fix made the
 * input load), and text the message must contain on the second (may be empty). */
#include "fuzzdrv.h"
#include "test.h"

#include <dirent.h>
#include <sys/stat.h>

static const char *fuzz_dir(void)
{
	static char dir[4096];
	snprintf(dir, sizeof dir, "%s/../fuzz", test_data_dir());
	return dir;
}

static void scratch(void)
{
	const char *dir = test_path("fuzz");
	CHECK_EQ_INT(mkdir(dir, 0755), 0);
	fuzz_set_dir(dir);
}

/* Runs file through the driver; fails the test on a broken promise. */
static void replay(fuzz_driver driver, const char *path, struct fuzz_result *r)
{
	size_t size;
	char *data = test_read_file(path, &size);
	driver((const uint8_t *)data, size, r);
	free(data);
	if (r->broken)
		FAIL("%s: broken promise: %s (status %s: %s)", path, r->why,
		     hoist_status_name(r->status), r->message);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The regular files of dir, sorted (malloc'd names); *n of them. */
static char **list_files(const char *dir, size_t *n)
{
	DIR *d = opendir(dir);
	if (!d)
		FAIL("cannot open %s", dir);
	size_t cap = 64;
	char **names = malloc(cap * sizeof *names);
	*n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		struct stat st;
		if (e->d_name[0] == '.' || stat(test_join(dir, e->d_name), &st) != 0 ||
		    !S_ISREG(st.st_mode))
			continue;
		if (*n == cap)
			names = realloc(names, (cap *= 2) * sizeof *names);
		names[(*n)++] = strdup(e->d_name);
	}
	closedir(d);
	qsort(names, *n, sizeof *names, cmp_str);
	return names;
}

static void free_list(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

TEST_TIMEOUT(fuzz_corpora_keep_their_promises, 120)
{
	static const char *targets[] = {"index", "config", "device_map", "open"};
	scratch();
	for (size_t t = 0; t < TEST_ARRAY_SIZE(targets); t++) {
		char dir[4200];
		snprintf(dir, sizeof dir, "%s/%s", fuzz_dir(), targets[t]);
		size_t n;
		char **files = list_files(dir, &n);
		if (n < 5)
			FAIL("%s: %zu inputs; the corpus has gone", dir, n);
		for (size_t i = 0; i < n; i++) {
			struct fuzz_result r;
			replay(fuzz_driver_named(targets[t]), test_join(dir, files[i]), &r);
		}
		free_list(files, n);
	}
}

/* The status whose name is `name`, or -1. */
static int status_named(const char *name)
{
	for (int s = 0; s < 64; s++)
		if (strcmp(hoist_status_name((enum hoist_status)s), name) == 0)
			return s;
	return -1;
}

TEST(fuzz_regressions_end_in_clean_errors)
{
	char dir[4200];
	snprintf(dir, sizeof dir, "%s/regressions", fuzz_dir());
	scratch();
	size_t n, replayed = 0;
	char **files = list_files(dir, &n);
	for (size_t i = 0; i < n; i++) {
		const char *name = files[i];
		size_t len = strlen(name);
		if (len > 7 && strcmp(name + len - 7, ".expect") == 0)
			continue;
		char target[64];
		const char *dash = strchr(name, '-');
		if (!dash || (size_t)(dash - name) >= sizeof target)
			FAIL("%s/%s: not named TARGET-what", dir, name);
		memcpy(target, name, (size_t)(dash - name));
		target[dash - name] = '\0';
		fuzz_driver driver = fuzz_driver_named(target);
		if (!driver)
			FAIL("%s/%s: no fuzz target \"%s\"", dir, name, target);
		char expect_path[4400];
		snprintf(expect_path, sizeof expect_path, "%s/%s.expect", dir, name);
		char *expect = test_read_file(expect_path, NULL);
		char *nl = strchr(expect, '\n');
		const char *needle = "";
		if (nl) {
			*nl = '\0';
			needle = nl + 1;
			char *end = strchr(nl + 1, '\n');
			if (end)
				*end = '\0';
		}
		int want = status_named(expect);
		if (want < 0)
			FAIL("%s: \"%s\" is no status name", expect_path, expect);
		struct fuzz_result r;
		replay(driver, test_join(dir, name), &r);
		if ((int)r.status != want || !strstr(r.message, needle))
			FAIL("%s: %s (%s), expected %s with \"%s\"", name,
			     hoist_status_name(r.status), r.message, expect, needle);
		free(expect);
		replayed++;
	}
	free_list(files, n);
	printf("    %zu findings replayed\n", replayed);
}
