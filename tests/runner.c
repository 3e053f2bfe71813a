/* runner.c - runs every registered test in its own process with a timeout.
 *
 * usage: hoist_test [-v] [SUBSTRING ...]   (run only tests whose name contains one)
 * Prints one line per test and ends with `tests: N passed, N failed, N skipped`. */
#include "fakecuda_check.h"
#include "test.h"

#include <errno.h>
#include <ftw.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Tests end with _exit, which skips LeakSanitizer's exit-time check: run it by hand
 * so every test of an ASan build is also a leak test. */
#if defined(__SANITIZE_ADDRESS__)
#define HOIST_TEST_LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HOIST_TEST_LSAN 1
#endif
#endif
#ifdef HOIST_TEST_LSAN
#include <sanitizer/lsan_interface.h>
#endif

struct test {
	const char *name, *file;
	test_fn fn;
	unsigned timeout_s;
};

static struct test tests[1024];
static size_t ntests;
static char tmpdir[4096];

void test_register(const char *name, const char *file, test_fn fn, unsigned timeout_s)
{
	if (ntests == sizeof tests / sizeof tests[0]) {
		fprintf(stderr, "runner: too many tests\n");
		exit(2);
	}
	tests[ntests++] = (struct test){name, file, fn, timeout_s};
}

void test_fail(const char *file, int line, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "    %s:%d: ", file, line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fflush(NULL);
	_exit(1);
}

void test_skip(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "    skip: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fflush(NULL);
	_exit(TEST_EXIT_SKIP);
}

void test_check_no_leaks(void)
{
#ifdef HOIST_TEST_LSAN
	if (__lsan_do_recoverable_leak_check() != 0)
		FAIL("LeakSanitizer found leaks (above)");
#endif
}

const char *test_tmpdir(void)
{
	return tmpdir;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path);
}

static int by_file_then_order(const void *a, const void *b)
{
	const struct test *x = a, *y = b;
	int c = strcmp(x->file, y->file);
	if (c)
		return c;
	return x < y ? -1 : x > y;
}

static bool selected(const struct test *t, int argc, char **argv, int first)
{
	if (first >= argc)
		return true;
	for (int i = first; i < argc; i++)
		if (strstr(t->name, argv[i]))
			return true;
	return false;
}

int main(int argc, char **argv)
{
	int first = 1;
	bool verbose = false;
	if (argc > 1 && strcmp(argv[1], "-v") == 0) {
		verbose = true;
		first = 2;
	}
	/* Constructors run in link order; sort by file for a stable listing. */
	qsort(tests, ntests, sizeof tests[0], by_file_then_order);
	unsigned passed = 0, failed = 0, skipped = 0;
	const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	for (size_t i = 0; i < ntests; i++) {
		struct test *t = &tests[i];
		if (!selected(t, argc, argv, first))
			continue;
		snprintf(tmpdir, sizeof tmpdir, "%s/hoist-test-%s-XXXXXX", base, t->name);
		if (!mkdtemp(tmpdir)) {
			fprintf(stderr, "runner: mkdtemp %s: %s\n", tmpdir, strerror(errno));
			return 2;
		}
		fflush(NULL);
		struct timespec t0, t1;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		pid_t pid = fork();
		if (pid == 0) {
			setpgid(0, 0);
			alarm(t->timeout_s);
			t->fn();
			fflush(NULL);
			test_check_no_leaks();
			test_fake_check_end();
			_exit(0);
		}
		int status = 0;
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
		kill(-pid, SIGKILL); /* anything the test left running */
		clock_gettime(CLOCK_MONOTONIC, &t1);
		double secs =
		        (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
		const char *verdict;
		if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
			verdict = "ok  ";
			passed++;
		} else if (WIFEXITED(status) && WEXITSTATUS(status) == TEST_EXIT_SKIP) {
			verdict = "skip";
			skipped++;
		} else {
			verdict = "FAIL";
			failed++;
		}
		printf("%s %-48s %7.3f s", verdict, t->name, secs);
		if (WIFSIGNALED(status))
			printf("  (%s%s)", strsignal(WTERMSIG(status)),
			       WTERMSIG(status) == SIGALRM ? ": timed out" : "");
		printf("\n");
		fflush(stdout);
		if (!verbose || strcmp(verdict, "FAIL") != 0)
			nftw(tmpdir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
		else
			printf("     kept %s\n", tmpdir);
	}
	printf("tests: %u passed, %u failed, %u skipped\n", passed, failed, skipped);
	if (passed + failed + skipped == 0 && first < argc) {
		fprintf(stderr, "runner: no test name contains");
		for (int i = first; i < argc; i++)
			fprintf(stderr, " \"%s\"", argv[i]);
		fprintf(stderr, "\n");
		return 2;
	}
	return failed ? 1 : 0;
}
