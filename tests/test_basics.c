/* test_basics.c - dtypes, devices, byte counts, layer groups, errors, fault injection. */
#include "test.h"
#include "source.h"

#include <errno.h>

TEST(dtype_names_and_bits)
{
	static const struct {
		const char *name;
		unsigned bits;
	} want[] = {
	        {"BOOL", 8},    {"U8", 8},   {"I8", 8},      {"F8_E5M2", 8}, {"F8_E4M3", 8},
	        {"F8_E8M0", 8}, {"F4", 4},   {"F6_E2M3", 6}, {"F6_E3M2", 6}, {"I16", 16},
	        {"U16", 16},    {"F16", 16}, {"BF16", 16},   {"I32", 32},    {"U32", 32},
	        {"F32", 32},    {"C64", 64}, {"F64", 64},    {"I64", 64},    {"U64", 64},
	};
	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
		enum hoist_dtype d;
		CHECK_OK(hoist_dtype_parse(want[i].name, &d));
		CHECK_STR(hoist_dtype_name(d), want[i].name);
		CHECK_EQ_INT(hoist_dtype_bits(d), want[i].bits);
	}
	enum hoist_dtype d;
	CHECK_ERR(hoist_dtype_parse("bf16", &d), HOIST_ERR_INVALID, "unknown dtype \"bf16\"");
	CHECK(hoist_dtype_name(HOIST_DTYPE_NONE) == NULL);
	CHECK(hoist_dtype_name(HOIST_DTYPE_COUNT) == NULL);
	CHECK_EQ_INT(hoist_dtype_bits(HOIST_DTYPE_COUNT), 0);
}

TEST(device_parse_and_format)
{
	struct hoist_device d;
	char buf[32];
	CHECK_OK(hoist_device_parse("cuda:3", &d));
	CHECK(d.kind == HOIST_DEVICE_CUDA && d.index == 3);
	CHECK_STR(hoist_device_format(d, buf, sizeof buf), "cuda:3");
	CHECK_OK(hoist_device_parse("cuda", &d));
	CHECK(d.kind == HOIST_DEVICE_CUDA && d.index == -1);
	CHECK_OK(hoist_device_parse("sim:0", &d));
	CHECK_STR(hoist_device_format(d, buf, sizeof buf), "sim:0");
	CHECK_OK(hoist_device_parse("cpu", &d));
	CHECK(d.kind == HOIST_DEVICE_CPU);
	CHECK_OK(hoist_device_parse("disk", &d));
	CHECK_STR(hoist_device_format(d, buf, sizeof buf), "disk");
	CHECK_ERR(hoist_device_parse("gpu:0", &d), HOIST_ERR_INVALID, "device \"gpu:0\"");
	CHECK_ERR(hoist_device_parse("cuda:", &d), HOIST_ERR_INVALID, "cuda:N");
	CHECK_ERR(hoist_device_parse("cpu:1", &d), HOIST_ERR_INVALID, "device \"cpu:1\"");
	CHECK_ERR(hoist_device_parse("cuda:1x", &d), HOIST_ERR_INVALID, "device");
}

TEST(byte_counts)
{
	uint64_t v;
	CHECK_OK(hoist_bytes_parse("20GiB", &v));
	CHECK_EQ_U64(v, 20ull << 30);
	CHECK_OK(hoist_bytes_parse("1.5GB", &v));
	CHECK_EQ_U64(v, 1500000000ull);
	CHECK_OK(hoist_bytes_parse("4096", &v));
	CHECK_EQ_U64(v, 4096);
	CHECK_OK(hoist_bytes_parse("512MiB", &v));
	CHECK_EQ_U64(v, 512ull << 20);
	CHECK_OK(hoist_bytes_parse("7kb", &v));
	CHECK_EQ_U64(v, 7000);
	CHECK_ERR(hoist_bytes_parse("12 parsecs", &v), HOIST_ERR_INVALID, "unknown unit");
	CHECK_ERR(hoist_bytes_parse("-1GB", &v), HOIST_ERR_INVALID, "expected a number");
	CHECK_ERR(hoist_bytes_parse("", &v), HOIST_ERR_INVALID, "empty");
	CHECK_ERR(hoist_bytes_parse("1e30TB", &v), HOIST_ERR_INVALID, "too large");
	char buf[32];
	CHECK_STR(hoist_bytes_format(16582751232ull, buf, sizeof buf), "16.58 GB");
	CHECK_STR(hoist_bytes_format(999, buf, sizeof buf), "999 B");
}

TEST(layer_groups)
{
	CHECK_EQ_INT(hoist_layer_group_prefix("model.layers.12.mlp.up_proj.weight"), 16);
	CHECK_EQ_INT(hoist_layer_group_prefix("visual.blocks.3.attn.qkv.bias"), 16);
	CHECK_EQ_INT(hoist_layer_group_prefix("model.embed_tokens.weight"), 0);
	CHECK_EQ_INT(hoist_layer_group_prefix("lm_head.weight"), 0);
	CHECK_EQ_INT(hoist_layer_group_prefix("a.1"), 0);
	CHECK_EQ_INT(hoist_layer_group_prefix("x.1.2.y"), 4);
	CHECK_EQ_INT(hoist_layer_group_prefix("a..b"), 0);
}

TEST(errors_and_status_names)
{
	CHECK_STR(hoist_status_name(HOIST_ERR_FORMAT), "HOIST_ERR_FORMAT");
	CHECK_STR(hoist_status_name((enum hoist_status)99), "HOIST_ERR_UNKNOWN");
	CHECK_EQ_INT(hoist__error(HOIST_ERR_IO, "%s: %d", "f", 7), HOIST_ERR_IO);
	CHECK_STR(hoist_errmsg(), "f: 7");
	hoist__error_prefix("%s", "outer");
	CHECK_STR(hoist_errmsg(), "outer: f: 7");
	CHECK_STR(hoist_version(), HOIST_VERSION_STRING);
}

TEST(fault_injection)
{
	hoist_fault_set(HOIST_FAULT_ALLOC, 2, ENOMEM, false);
	void *a = hoist__malloc(8), *b = hoist__malloc(8), *c = hoist__malloc(8);
	CHECK(a && !b && c);
	hoist__free(a);
	hoist__free(c);
	CHECK(hoist__calloc(SIZE_MAX, 2) == NULL);
	const char *p = test_path("f");
	test_write_file(p, "0123456789", 10);
	int fd = hoist__open(p, 0);
	CHECK(fd >= 0);
	char buf[16];
	hoist_fault_set(HOIST_FAULT_SHORT_READ, 1, 0, false);
	CHECK_EQ_INT(hoist__pread(fd, buf, 10, 0), 5);
	hoist_fault_set(HOIST_FAULT_READ, 1, EIO, true);
	CHECK_EQ_INT(hoist__pread(fd, buf, 10, 0), -1);
	CHECK_EQ_INT(errno, EIO);
	CHECK_EQ_INT(hoist__pread(fd, buf, 10, 0), -1);
	hoist_fault_clear_all();
	hoist__close(fd);

	/* A source reads a range whole, however short each read, or says why not. */
	struct hoist__source *src;
	CHECK_OK(hoist__source_open(p, 0, &src));
	CHECK_EQ_U64(src->size, 10);
	CHECK(!src->direct && src->align == 1);
	hoist_fault_set(HOIST_FAULT_SHORT_READ, 1, 0, true);
	memset(buf, 0, sizeof buf);
	CHECK_EQ_INT(hoist__source_read_full(src, buf, 10, 0), 0);
	CHECK(memcmp(buf, "0123456789", 10) == 0);
	hoist_fault_clear_all();
	CHECK_EQ_INT(hoist__source_read_full(src, buf, 11, 0), -1); /* past the end */
	CHECK_EQ_INT(errno, EIO);
	hoist__source_close(src);
	CHECK_ERR(hoist__source_open(test_path("nope"), 0, &src), HOIST_ERR_IO,
	          "nope: cannot open: No such file or directory");
	CHECK_ERR(hoist__source_open(test_tmpdir(), 0, &src), HOIST_ERR_IO, ": not a regular file");
}
