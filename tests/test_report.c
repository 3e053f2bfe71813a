/* test_report.c - the report's storage reads and the bound they correct: a stream
 * whose bytes came from the page cache is not "bound by storage". */
#include "backend.h"
#include "fixtures.h"
#include "test.h"

#include <fcntl.h>
#include <jansson.h>
#include <sys/mman.h>
#include <unistd.h>


static struct hoist__report with_bound(const char *bound, uint64_t read_bytes)
{
	struct hoist__report r;
	memset(&r, 0, sizeof r);
	snprintf(r.bound, sizeof r.bound, "%s", bound);
	r.read_bytes = read_bytes;
	return r;
}

/* Nothing read from storage between begin and end: readers that set the pace were
 * copying out of the page cache. Other bounds stay as judged. */
TEST(report_bound_without_storage_reads)
{
	struct hoist__report r = with_bound("storage", 1ull << 30);
	hoist__report_stream_begin(&r);
	hoist__report_stream_end(&r);
	if (access("/proc/self/io", F_OK) != 0) {
		/* no task I/O accounting: unknown, and the judgement stands */
		CHECK(!r.storage_known);
		CHECK_STR(r.bound, "storage");
		return;
	}
	CHECK(r.storage_known);
	CHECK(r.storage_read_bytes < (1ull << 29));
	CHECK_STR(r.bound, "host memory");

	const char *others[] = {"device copy", "staging", "none"};
	for (size_t i = 0; i < HOIST__ARRAY_SIZE(others); i++) {
		r = with_bound(others[i], 1ull << 30);
		hoist__report_stream_begin(&r);
		hoist__report_stream_end(&r);
		CHECK(r.storage_known);
		CHECK_STR(r.bound, others[i]);
	}
	/* nothing read at all: no evidence against storage */
	r = with_bound("storage", 0);
	hoist__report_stream_begin(&r);
	hoist__report_stream_end(&r);
	CHECK_STR(r.bound, "storage");
	/* end without begin: unknown */
	r = with_bound("storage", 1ull << 30);
	hoist__report_stream_end(&r);
	CHECK(!r.storage_known);
	CHECK_STR(r.bound, "storage");
}

/* A file evicted from the page cache and read back: its bytes count as storage reads
 * and "storage" stands. */
TEST(report_bound_with_storage_reads)
{
	if (access("/proc/self/io", F_OK) != 0)
		SKIP("no task I/O accounting (/proc/self/io): storage reads are not counted");
	const size_t size = 16u << 20;
	const char *path = test_path("cold.bin");
	unsigned char *data = malloc(size);
	for (size_t i = 0; i < size; i++)
		data[i] = (unsigned char)(i * 131 + 7);
	test_write_file(path, data, size);
	int fd = open(path, O_RDONLY);
	CHECK(fd >= 0);
	CHECK_EQ_INT(fdatasync(fd), 0);
	CHECK_EQ_INT(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
	/* Some file systems (tmpfs) keep the pages whatever the advice. */
	void *map = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
	CHECK(map != MAP_FAILED);
	unsigned char *vec = malloc(size / 4096);
	CHECK_EQ_INT(mincore(map, size, vec), 0);
	size_t resident = 0;
	for (size_t i = 0; i < size / 4096; i++)
		resident += vec[i] & 1;
	munmap(map, size);
	free(vec);
	if (resident > 0) {
		close(fd);
		free(data);
		SKIP("%zu of %zu pages stayed in the page cache after POSIX_FADV_DONTNEED "
		     "(tmpfs?): nothing to read from storage",
		     resident, size / 4096);
	}

	struct hoist__report r = with_bound("storage", size);
	hoist__report_stream_begin(&r);
	unsigned char *back = malloc(size);
	CHECK_EQ_INT(pread(fd, back, size, 0), (long long)size);
	hoist__report_stream_end(&r);
	CHECK(memcmp(back, data, size) == 0);
	CHECK(r.storage_known);
	CHECK(r.storage_read_bytes >= size);
	CHECK_STR(r.bound, "storage");
	close(fd);
	free(back);
	free(data);
}

/* A load of files just written (in the page cache): the JSON counts the storage
 * reads, the bound is not "storage", and the text says where the bytes came from. */
TEST(report_load_from_page_cache)
{
	const char *dir = test_path("gen");
	gen_checkpoint(dir, 2, 10, 100000);
	struct hoist_checkpoint *ck;
	CHECK_OK(hoist_checkpoint_open(dir, NULL, &ck));
	struct hoist_options opt = {.device = "cpu", .threads = 2, .chunk_bytes = 65536};
	struct hoist_model *m;
	CHECK_OK(hoist_model_load(ck, NULL, &opt, &m));
	const struct hoist__report *r = hoist__model_report(m);
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	CHECK_OK(hoist_model_report_json(m, f));
	fclose(f);
	json_error_t jerr;
	json_t *j = json_loads(text, 0, &jerr);
	if (!j)
		FAIL("report JSON does not parse: %s: %s", jerr.text, text);
	json_t *stream = json_object_get(j, "stream");
	json_t *sb = json_object_get(stream, "storage_read_bytes");
	char bound[32];
	const char *b = json_string_value(json_object_get(stream, "bound"));
	CHECK(b != NULL);
	snprintf(bound, sizeof bound, "%s", b);
	if (access("/proc/self/io", F_OK) == 0) {
		CHECK(json_is_integer(sb));
		CHECK_EQ_U64(json_integer_value(sb), r->storage_read_bytes);
		CHECK(r->storage_read_bytes < r->read_bytes / 2);
		CHECK(strcmp(bound, "storage") != 0);
	} else {
		CHECK(json_is_null(sb));
	}
	json_decref(j);
	free(text);

	f = open_memstream(&text, &len);
	CHECK_OK(hoist_model_report_print(m, f));
	fclose(f);
	if (r->storage_known) {
		char want[128], b1[32], b2[32];
		snprintf(want, sizeof want, "%s of %s from storage",
			 hoist__format_bytes(r->storage_read_bytes, b1, sizeof b1),
			 hoist__format_bytes(r->read_bytes, b2, sizeof b2));
		CHECK(strstr(text, want) != NULL);
		if (strcmp(bound, "host memory") == 0)
			CHECK(strstr(text, "bound by host memory") != NULL &&
			      strstr(text, "the rest from the page cache: the readers copied it into "
					   "fresh host memory, paying its first-touch page faults") != NULL);
	}
	free(text);
	hoist_model_free(m);
	hoist_checkpoint_close(ck);
}
