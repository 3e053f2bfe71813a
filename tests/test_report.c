/* test_report.c - the report's storage reads and the bound they correct: a stream
 * whose bytes came from the page cache is not "bound by storage". */
#include "report.h"
#include "fixtures.h"
#include "test.h"

#include <fcntl.h>
#include <jansson.h>
#include <sys/mman.h>
#include <unistd.h>

/* Stream figures a judge reads as `bound` (before any storage correction): readers
 * busy all along (storage), waiting for buffers (staging), a device copying all along
 * (device copy), or nothing streamed (none). */
static struct hoist__stream_stats stats_for(enum hoist_bound bound, uint64_t read_bytes)
{
	struct hoist__stream_stats s = {.read_bytes = read_bytes,
	                                .moved_bytes = read_bytes,
	                                .chunks = 10,
	                                .readers = 4,
	                                .wall = 1.0};
	switch (bound) {
	case HOIST_BOUND_STORAGE: s.read_s = 3.9; break;
	case HOIST_BOUND_STAGING:
		s.read_s = 1.0;
		s.wait_s = 2.0;
		break;
	case HOIST_BOUND_DEVICE_COPY:
		s.engines = true;
		s.read_s = 1.0;
		s.copy_s = 0.95;
		break;
	default: s.chunks = 0; break;
	}
	return s;
}

static struct hoist__report empty_report(void)
{
	struct hoist__report r;
	hoist__report_init(&r);
	return r;
}

/* The judgement alone, and its busy fractions, where no storage reads are counted. */
TEST(report_judges_the_bound)
{
	static const enum hoist_bound bounds[] = {HOIST_BOUND_STORAGE, HOIST_BOUND_STAGING,
	                                          HOIST_BOUND_DEVICE_COPY, HOIST_BOUND_NONE};
	for (size_t i = 0; i < HOIST__ARRAY_SIZE(bounds); i++) {
		struct hoist__report r = empty_report();
		struct hoist__stream_stats s = stats_for(bounds[i], 0);
		hoist__report_stream_end(&r, &s); /* no begin: storage reads unknown */
		CHECK(!r.storage_known);
		CHECK_EQ_U64(r.pub.storage_read_bytes, UINT64_MAX);
		CHECK_STR(hoist_bound_name(r.pub.bound), hoist_bound_name(bounds[i]));
	}
	struct hoist__report r = empty_report();
	struct hoist__stream_stats s = stats_for(HOIST_BOUND_STAGING, 0);
	hoist__report_stream_end(&r, &s);
	CHECK(r.pub.read_busy == 0.25 && r.pub.staging_wait == 0.5 && r.pub.copy_busy == 0);
	CHECK(hoist_bound_name((enum hoist_bound)99) == NULL);
}

/* Nothing read from storage between begin and end: readers that set the pace were
 * copying out of the page cache. Other bounds stay as judged. */
TEST(report_bound_without_storage_reads)
{
	struct hoist__report r = empty_report();
	struct hoist__stream_stats s = stats_for(HOIST_BOUND_STORAGE, 1ull << 30);
	hoist__report_stream_begin(&r);
	hoist__report_stream_end(&r, &s);
	if (access("/proc/self/io", F_OK) != 0) {
		/* no task I/O accounting: unknown, and the judgement stands */
		CHECK(!r.storage_known);
		CHECK_EQ_INT(r.pub.bound, HOIST_BOUND_STORAGE);
		return;
	}
	CHECK(r.storage_known);
	CHECK(r.pub.storage_read_bytes < (1ull << 29));
	CHECK_STR(hoist_bound_name(r.pub.bound), "host memory");

	const enum hoist_bound others[] = {HOIST_BOUND_DEVICE_COPY, HOIST_BOUND_STAGING,
	                                   HOIST_BOUND_NONE};
	for (size_t i = 0; i < HOIST__ARRAY_SIZE(others); i++) {
		r = empty_report();
		s = stats_for(others[i], 1ull << 30);
		hoist__report_stream_begin(&r);
		hoist__report_stream_end(&r, &s);
		CHECK(r.storage_known);
		CHECK_EQ_INT(r.pub.bound, others[i]);
	}
	/* nothing read at all: no evidence against storage */
	r = empty_report();
	s = stats_for(HOIST_BOUND_STORAGE, 0);
	hoist__report_stream_begin(&r);
	hoist__report_stream_end(&r, &s);
	CHECK_EQ_INT(r.pub.bound, HOIST_BOUND_STORAGE);
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

	struct hoist__report r = empty_report();
	struct hoist__stream_stats s = stats_for(HOIST_BOUND_STORAGE, size);
	hoist__report_stream_begin(&r);
	unsigned char *back = malloc(size);
	CHECK_EQ_INT(pread(fd, back, size, 0), (long long)size);
	hoist__report_stream_end(&r, &s);
	CHECK(memcmp(back, data, size) == 0);
	CHECK(r.storage_known);
	CHECK(r.pub.storage_read_bytes >= size);
	CHECK_EQ_INT(r.pub.bound, HOIST_BOUND_STORAGE);
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
	CHECK_OK(test_load(ck, &opt, &m));
	const struct hoist_report *r = hoist_model_report(m);
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	CHECK_OK(hoist_model_report_print_json(m, f));
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
	if (r->storage_read_bytes != UINT64_MAX) {
		char want[128], b1[32], b2[32];
		snprintf(want, sizeof want, "%s of %s from storage",
		         hoist_bytes_format(r->storage_read_bytes, b1, sizeof b1),
		         hoist_bytes_format(r->read_bytes, b2, sizeof b2));
		CHECK(strstr(text, want) != NULL);
		if (strcmp(bound, "host memory") == 0)
			CHECK(strstr(text, "bound by host memory") != NULL &&
			      strstr(text,
			             "the rest from the page cache: the readers copied it into "
			             "fresh host memory, paying its first-touch page faults") !=
			              NULL);
	}
	free(text);
	hoist_model_free(m);
	hoist_checkpoint_close(ck);
}
