/* resources.c - counting what the process holds (resources.h). */
#include "resources.h"
#include "test.h"

#include <dirent.h>
#include <pthread.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

static size_t count_entries(const char *dir)
{
	size_t n = 0;
	DIR *d = opendir(dir);
	if (!d)
		FAIL("opendir %s", dir);
	struct dirent *e;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static void *nothing(void *arg)
{
	return arg;
}

int test_is_sim_memfd(const char *fd)
{
	char path[300], link[256];
	snprintf(path, sizeof path, "/proc/self/fd/%s", fd);
	ssize_t n = readlink(path, link, sizeof link - 1);
	if (n < 0)
		return 0;
	link[n] = '\0';
	return strncmp(link, "/memfd:hoist-sim", 16) == 0;
}

void test_held_now(struct test_held *out)
{
	/* ThreadSanitizer starts a thread of its own with the process's second thread:
	 * have it started before anything is counted. */
	static bool threaded;
	pthread_t t;
	if (!threaded && pthread_create(&t, NULL, nothing, NULL) == 0) {
		pthread_join(t, NULL);
		threaded = true;
	}
	memset(out, 0, sizeof *out);
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		FAIL("opendir /proc/self/fd");
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.' || atoi(e->d_name) == dirfd(d))
			continue;
		out->fds++;
		if (!test_is_sim_memfd(e->d_name))
			continue;
		struct stat st;
		if (fstat(atoi(e->d_name), &st) == 0)
			out->sim_bytes += (uint64_t)st.st_size;
		out->sim_memfds++;
	}
	closedir(d);
	out->threads = count_entries("/proc/self/task");
}

void test_held_check(const struct test_held *before, const char *when)
{
	/* A joined thread can stay listed in /proc/self/task for a moment after
	 * pthread_join returns (the kernel wakes the joiner before it reaps the thread),
	 * in `before` or now: fewer threads than before is no leak, and more are given
	 * up to 2 s to go. */
	struct test_held now;
	test_held_now(&now);
	for (int tries = 0; now.threads > before->threads && tries < 200; tries++) {
		usleep(10 * 1000);
		test_held_now(&now);
	}
	if (now.fds != before->fds || now.threads > before->threads ||
	    now.sim_memfds != before->sim_memfds || now.sim_bytes != before->sim_bytes)
		FAIL("%s: the process holds %zu descriptors, %zu threads, %zu sim allocations "
		     "(%llu bytes); before: %zu, %zu, %zu (%llu bytes)",
		     when, now.fds, now.threads, now.sim_memfds, (unsigned long long)now.sim_bytes,
		     before->fds, before->threads, before->sim_memfds,
		     (unsigned long long)before->sim_bytes);
}

uint64_t test_status_kb(const char *field)
{
	char *text = test_read_file("/proc/self/status", NULL);
	size_t n = strlen(field);
	uint64_t kb = 0;
	for (char *line = text; line && *line;) {
		if (strncmp(line, field, n) == 0 && line[n] == ':') {
			kb = strtoull(line + n + 1, NULL, 10);
			break;
		}
		line = strchr(line, '\n');
		if (line)
			line++;
	}
	free(text);
	if (kb == 0)
		FAIL("/proc/self/status: no %s", field);
	return kb;
}

int test_reset_hwm(void)
{
	int fd = open("/proc/self/clear_refs", O_WRONLY);
	if (fd < 0)
		return 0;
	int ok = write(fd, "5", 1) == 1;
	close(fd);
	return ok;
}

int test_sanitized(void)
{
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
	return 1;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
	return 1;
#else
	return 0;
#endif
#else
	return 0;
#endif
}
