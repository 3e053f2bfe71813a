/* helpers.c - files, paths, sha256 and commands for the tests. */
#include "test.h"

#include <openssl/evp.h>
#include <dirent.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>

#ifndef HOIST_TEST_DATA_DEFAULT
#define HOIST_TEST_DATA_DEFAULT "tests/data"
#endif
#ifndef HOIST_BIN_DEFAULT
#define HOIST_BIN_DEFAULT "build/hoist"
#endif

const char *test_data_dir(void)
{
	const char *d = getenv("HOIST_TEST_DATA");
	return d && *d ? d : HOIST_TEST_DATA_DEFAULT;
}

const char *test_hoist_bin(void)
{
	const char *b = getenv("HOIST_BIN");
	return b && *b ? b : HOIST_BIN_DEFAULT;
}

const char *test_join(const char *dir, const char *name)
{
	static char bufs[8][4096];
	static unsigned next;
	char *b = bufs[next++ % 8];
	snprintf(b, sizeof bufs[0], "%s/%s", dir, name);
	return b;
}

const char *test_path(const char *name)
{
	return test_join(test_tmpdir(), name);
}

const char *test_device_name(struct hoist_device d)
{
	static char bufs[8][32];
	static unsigned next;
	return hoist_device_format(d, bufs[next++ % 8], sizeof bufs[0]);
}

const char *test_tensor_device(const struct hoist_checkpoint *ck, const struct hoist_plan *p,
                               const char *name)
{
	size_t i;
	CHECK_OK(hoist_checkpoint_find(ck, name, &i));
	return test_device_name(hoist_plan_tensor(p, i)->device);
}

const char *test_own_cache(void)
{
	static char dir[4096];
	snprintf(dir, sizeof dir, "%s", test_path("cache"));
	mkdir(dir, 0700);
	setenv("XDG_CACHE_HOME", dir, 1);
	return dir;
}

size_t test_count_files(const char *dir, const char *part)
{
	DIR *d = opendir(dir);
	if (!d)
		return 0;
	size_t n = 0;
	for (struct dirent *e; (e = readdir(d));)
		n += e->d_name[0] != '.' && strstr(e->d_name, part) != NULL;
	closedir(d);
	return n;
}

void test_write_file(const char *path, const void *data, size_t size)
{
	FILE *f = fopen(path, "wb");
	if (!f)
		FAIL("cannot write %s", path);
	if (size && fwrite(data, 1, size, f) != size)
		FAIL("short write to %s", path);
	if (fclose(f) != 0)
		FAIL("cannot close %s", path);
}

char *test_read_file(const char *path, size_t *size)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		FAIL("cannot read %s", path);
	size_t cap = 1 << 16, n = 0;
	char *buf = malloc(cap + 1);
	size_t got;
	while ((got = fread(buf + n, 1, cap - n, f)) > 0) {
		n += got;
		if (n == cap)
			buf = realloc(buf, (cap *= 2) + 1);
	}
	fclose(f);
	buf[n] = '\0';
	if (size)
		*size = n;
	return buf;
}

void test_sha256_hex(const void *data, size_t size, char out[65])
{
	unsigned char md[32];
	unsigned int len = 0;
	if (!EVP_Digest(data, size, md, &len, EVP_sha256(), NULL) || len != 32)
		FAIL("sha256 failed");
	for (int i = 0; i < 32; i++)
		sprintf(out + 2 * i, "%02x", md[i]);
}

int test_run(char **output, const char *fmt, ...)
{
	char cmd[8192];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof cmd, fmt, ap);
	va_end(ap);
	char full[8300];
	snprintf(full, sizeof full, "( %s ) 2>&1", cmd);
	FILE *p = popen(full, "r");
	if (!p)
		FAIL("popen %s", cmd);
	size_t cap = 1 << 16, n = 0, got;
	char *buf = malloc(cap + 1);
	while ((got = fread(buf + n, 1, cap - n, p)) > 0) {
		n += got;
		if (n == cap)
			buf = realloc(buf, (cap *= 2) + 1);
	}
	buf[n] = '\0';
	int status = pclose(p);
	if (output)
		*output = buf;
	else
		free(buf);
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

enum hoist_status test_load(const struct hoist_checkpoint *ck, const struct hoist_options *opt,
                            struct hoist_model **out)
{
	struct hoist_plan *plan = NULL;
	*out = NULL;
	enum hoist_status st = hoist_plan_create(ck, opt, &plan);
	if (st == HOIST_OK)
		st = hoist_model_load(plan, opt, out);
	hoist_plan_free(plan);
	return st;
}
