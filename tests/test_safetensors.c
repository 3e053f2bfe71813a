/* test_safetensors.c - one file's header: every rule of the format with its own
 * message, the edge cases the reference accepts, the in-memory parser the fuzzer
 * uses, and the differential check against the reference implementation. */
#include "safetensors.h"
#include "fixtures.h"
#include "test.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

/* A case: a header written with data_size bytes of data after it. status HOIST_OK
 * means the file must open; else it must fail with status and a message that holds
 * the file's path and `needle`. */
struct st_case {
	const char *name;
	const char *header; /* NULL: a tensor entry with an unknown key nesting
	                     * data_size arrays deep (and no data) */
	size_t data_size;
	enum hoist_status status;
	const char *needle;
};

#define T1(dt, shape, b, e)                                                                        \
	"{\"t\":{\"dtype\":\"" dt "\",\"shape\":" shape ",\"data_offsets\":[" b "," e "]}}"

static const struct st_case cases[] = {
        /* not JSON, or not the right JSON */
        {"not_json", "{\"a\":", 0, HOIST_ERR_FORMAT, "header is not valid JSON"},
        {"not_object", "[1,2]", 0, HOIST_ERR_FORMAT, "header is not a JSON object"},
        {"bad_utf8", "{\"a\xff\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1,
         HOIST_ERR_FORMAT, "header is not valid UTF-8 (bad byte 0xff at byte offset 11)"},
        {"overlong_utf8", "{\"a\xc0\xaf\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}",
         1, HOIST_ERR_FORMAT, "not valid UTF-8 (bad byte 0xc0"},
        {"surrogate_utf8",
         "{\"a\xed\xa0\x80\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1,
         HOIST_ERR_FORMAT, "not valid UTF-8 (bad byte 0xed"},
        {"trailing_junk", "{} x", 0, HOIST_ERR_FORMAT, "header is not valid JSON"},
        {"trailing_formfeed", "{}\f", 0, HOIST_ERR_FORMAT, "header is not valid JSON"},
        {"nul_escape", "{\"a\\u0000\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1,
         HOIST_ERR_FORMAT, "header is not valid JSON"},
        {"lone_surrogate_escape",
         "{\"a\\ud800\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1,
         HOIST_ERR_FORMAT, "header is not valid JSON"},
        {"too_deep", NULL, 126, HOIST_ERR_FORMAT, "header nests deeper than 127 levels"},
        /* __metadata__ */
        {"metadata_list", "{\"__metadata__\":[]}", 0, HOIST_ERR_FORMAT,
         "__metadata__ is not a map of strings to strings"},
        {"metadata_int", "{\"__metadata__\":{\"format\":1}}", 0, HOIST_ERR_FORMAT,
         "__metadata__ entry \"format\" is not a string"},
        {"metadata_nested", "{\"__metadata__\":{\"a\":{}}}", 0, HOIST_ERR_FORMAT,
         "__metadata__ entry \"a\" is not a string"},
        {"metadata_twice", "{\"__metadata__\":{},\"__metadata__\":{}}", 0, HOIST_ERR_FORMAT,
         "duplicate key"},
        {"metadata_dup_key", "{\"__metadata__\":{\"a\":\"1\",\"a\":\"2\"}}", 0, HOIST_ERR_FORMAT,
         "duplicate key"},
        /* tensor entries */
        {"entry_not_object", "{\"t\":1}", 0, HOIST_ERR_FORMAT,
         "tensor \"t\": entry is not an object"},
        {"missing_dtype", "{\"t\":{\"shape\":[1],\"data_offsets\":[0,1]}}", 1, HOIST_ERR_FORMAT,
         "tensor \"t\": missing \"dtype\""},
        {"missing_shape", "{\"t\":{\"dtype\":\"U8\",\"data_offsets\":[0,1]}}", 1, HOIST_ERR_FORMAT,
         "tensor \"t\": missing \"shape\""},
        {"missing_offsets", "{\"t\":{\"dtype\":\"U8\",\"shape\":[1]}}", 1, HOIST_ERR_FORMAT,
         "tensor \"t\": missing \"data_offsets\""},
        {"dtype_not_string", T1("", "[1]", "0", "1"), 1, HOIST_ERR_FORMAT, "unknown dtype \"\""},
        {"dtype_number", "{\"t\":{\"dtype\":3,\"shape\":[1],\"data_offsets\":[0,1]}}", 1,
         HOIST_ERR_FORMAT, "tensor \"t\": dtype is not a string"},
        {"dtype_as_map", "{\"t\":{\"dtype\":{\"U8\":null},\"shape\":[1],\"data_offsets\":[0,1]}}",
         1, HOIST_ERR_FORMAT, "tensor \"t\": dtype is not a string"},
        {"dtype_unknown", T1("F8", "[1]", "0", "1"), 1, HOIST_ERR_FORMAT,
         "tensor \"t\": unknown dtype \"F8\""},
        {"dtype_lowercase", T1("f32", "[1]", "0", "4"), 4, HOIST_ERR_FORMAT,
         "unknown dtype \"f32\""},
        {"dtype_fnuz", T1("F8_E4M3FNUZ", "[1]", "0", "1"), 1, HOIST_ERR_FORMAT,
         "unknown dtype \"F8_E4M3FNUZ\""},
        {"shape_not_list", T1("U8", "4", "0", "4"), 4, HOIST_ERR_FORMAT,
         "tensor \"t\": shape is not a list of non-negative integers"},
        {"shape_null", T1("U8", "null", "0", "4"), 4, HOIST_ERR_FORMAT, "shape is not a list"},
        {"shape_negative", T1("U8", "[2,-1]", "0", "4"), 4, HOIST_ERR_FORMAT,
         "tensor \"t\": shape[1] is not a non-negative integer"},
        {"shape_float", T1("U8", "[4.0]", "0", "4"), 4, HOIST_ERR_FORMAT,
         "shape[0] is not a non-negative integer"},
        {"shape_exponent", T1("U8", "[4e0]", "0", "4"), 4, HOIST_ERR_FORMAT,
         "shape[0] is not a non-negative integer"},
        {"shape_bool", T1("U8", "[true]", "0", "1"), 1, HOIST_ERR_FORMAT,
         "shape[0] is not a non-negative integer"},
        {"shape_string", T1("U8", "[\"4\"]", "0", "4"), 4, HOIST_ERR_FORMAT,
         "shape[0] is not a non-negative integer"},
        {"shape_negative_zero", T1("U8", "[-0]", "0", "0"), 0, HOIST_ERR_FORMAT,
         "tensor \"t\": shape[0] is not a non-negative integer"},
        {"offset_negative_zero", T1("U8", "[0]", "0", "-0"), 0, HOIST_ERR_FORMAT,
         "data_offsets is not a list of two non-negative integers"},
        {"shape_above_int64", T1("U8", "[9223372036854775808,0]", "0", "0"), 0, HOIST_ERR_FORMAT,
         "too big integer"},
        {"shape_overflow", T1("U8", "[4294967296,4294967296]", "0", "0"), 0, HOIST_ERR_FORMAT,
         "tensor \"t\": shape [4294967296, 4294967296] x U8 overflows a 64-bit byte count"},
        {"shape_overflow_before_zero", T1("U8", "[4294967296,4294967296,0]", "0", "0"), 0,
         HOIST_ERR_FORMAT, "overflows a 64-bit byte count"},
        {"bits_overflow", T1("F64", "[4611686018427387904]", "0", "0"), 0, HOIST_ERR_FORMAT,
         "shape [4611686018427387904] x F64 overflows"},
        {"f4_odd", T1("F4", "[3]", "0", "1"), 1, HOIST_ERR_FORMAT,
         "tensor \"t\": shape [3] x F4 is 12 bits, not a whole number of bytes"},
        {"f6_three", T1("F6_E3M2", "[3]", "0", "2"), 2, HOIST_ERR_FORMAT,
         "shape [3] x F6_E3M2 is 18 bits, not a whole number of bytes"},
        {"offsets_not_list", "{\"t\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":0}}", 1,
         HOIST_ERR_FORMAT, "tensor \"t\": data_offsets is not a list of two non-negative integers"},
        {"offsets_three", "{\"t\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1,1]}}", 1,
         HOIST_ERR_FORMAT, "data_offsets is not a list of two non-negative integers"},
        {"offsets_one", "{\"t\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0]}}", 0,
         HOIST_ERR_FORMAT, "data_offsets is not a list of two non-negative integers"},
        {"offsets_negative", T1("U8", "[1]", "-1", "0"), 1, HOIST_ERR_FORMAT,
         "data_offsets is not a list of two non-negative integers"},
        {"offsets_float", T1("U8", "[1]", "0", "1.0"), 1, HOIST_ERR_FORMAT,
         "data_offsets is not a list of two non-negative integers"},
        {"offsets_reversed", T1("U8", "[0]", "1", "0"), 1, HOIST_ERR_FORMAT,
         "tensor \"t\": data_offsets [1, 0) end before they begin"},
        {"offsets_mismatch",
         "{\"lm_head.weight\":{\"dtype\":\"F32\",\"shape\":[4,4],\"data_offsets\":[0,12]}}", 12,
         HOIST_ERR_FORMAT,
         "tensor \"lm_head.weight\": data_offsets [0, 12) do not match shape [4, 4] x F32 (64 "
         "bytes)"},
        {"offsets_huge", T1("U8", "[0]", "9223372036854775807", "9223372036854775807"), 0,
         HOIST_ERR_FORMAT, "does not start at 0"},
        /* the tensors must tile the data region */
        {"overlap",
         "{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},"
         "\"b\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[2,6]}}",
         6, HOIST_ERR_FORMAT, "tensor \"b\": data_offsets [2, 6) overlap tensor \"a\" [0, 4)"},
        {"same_range",
         "{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},"
         "\"b\":{\"dtype\":\"I8\",\"shape\":[4],\"data_offsets\":[0,4]}}",
         4, HOIST_ERR_FORMAT, "tensor \"b\": data_offsets [0, 4) overlap tensor \"a\" [0, 4)"},
        {"empty_inside",
         "{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},"
         "\"e\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[2,2]}}",
         4, HOIST_ERR_FORMAT, "tensor \"e\": data_offsets [2, 2) overlap tensor \"a\" [0, 4)"},
        {"hole",
         "{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},"
         "\"b\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[6,10]}}",
         10, HOIST_ERR_FORMAT,
         "tensor \"b\": data_offsets [6, 10) leave a hole of 2 bytes after tensor \"a\""},
        {"not_from_zero", T1("U8", "[4]", "2", "6"), 6, HOIST_ERR_FORMAT,
         "tensor \"t\": data_offsets [2, 6): the data region does not start at 0"},
        {"data_left_over", T1("U8", "[4]", "0", "4"), 5, HOIST_ERR_FORMAT,
         "the tensors end at data offset 4 but the data region is 5 bytes"},
        {"data_short", T1("U8", "[4]", "0", "4"), 3, HOIST_ERR_FORMAT,
         "tensor \"t\": data_offsets end at 4, past the end of the data region (3 bytes"},
        {"no_tensors_some_data", "{}", 1, HOIST_ERR_FORMAT,
         "the tensors end at data offset 0 but the data region is 1 bytes"},
        {"metadata_only_some_data", "{\"__metadata__\":{\"format\":\"pt\"}}", 2, HOIST_ERR_FORMAT,
         "data region is 2 bytes"},
        {"duplicate_name",
         "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
         "\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}",
         2, HOIST_ERR_FORMAT, "duplicate key"},
        {"duplicate_field",
         "{\"t\":{\"dtype\":\"U8\",\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1,
         HOIST_ERR_FORMAT, "duplicate key"},

        /* accepted: what the reference accepts */
        {"ok_padding", T1("U8", "[2]", "0", "2") "        ", 2, HOIST_OK, NULL},
        {"ok_whitespace",
         " \n{ \"t\" : {\"dtype\" : \"U8\", \"shape\" : [ 2 ], \"data_offsets\" : [0, 2]} }\r\n\t ",
         2, HOIST_OK, NULL},
        {"ok_any_order",
         "{\"b\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[4,8]},"
         "\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]}}",
         8, HOIST_OK, NULL},
        {"ok_zero_size",
         "{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},"
         "\"e\":{\"dtype\":\"F32\",\"shape\":[0,3],\"data_offsets\":[4,4]},"
         "\"f\":{\"dtype\":\"F32\",\"shape\":[3,0],\"data_offsets\":[0,0]},"
         "\"g\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,8]},"
         "\"b\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[4,8]}}",
         8, HOIST_OK, NULL},
        {"ok_scalar", T1("F64", "[]", "0", "8"), 8, HOIST_OK, NULL},
        {"ok_empty", "{}", 0, HOIST_OK, NULL},
        {"ok_metadata_only", "{\"__metadata__\":{\"format\":\"pt\",\"\":\"\"}}", 0, HOIST_OK, NULL},
        {"ok_metadata_null", "{\"__metadata__\":null}", 0, HOIST_OK, NULL},
        {"ok_unknown_key",
         "{\"t\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1],\"x\":[{}]}}", 1, HOIST_OK,
         NULL},
        {"ok_f4_pairs", T1("F4", "[3,2]", "0", "3"), 3, HOIST_OK, NULL},
        {"ok_f6_fours", T1("F6_E2M3", "[2,4]", "0", "6"), 6, HOIST_OK, NULL},
        {"ok_empty_name", "{\"\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1,
         HOIST_OK, NULL},
        {"ok_unicode_name",
         "{\"w\xc3\xa9ight\xf0\x9f\x98\x80\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]"
         "}}",
         1, HOIST_OK, NULL},
        {"ok_zero_before_overflow", T1("U8", "[0,4294967296,4294967296]", "0", "0"), 0, HOIST_OK,
         NULL},
        {"ok_big_dim_zero", T1("U8", "[9223372036854775807,0]", "0", "0"), 0, HOIST_OK, NULL},
        {"ok_deep_unknown", NULL, 125, HOIST_OK, NULL},
        {"ok_negative_zero_ignored",
         "{\"t\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0],\"x\":[-0,-0.0,\"-0\",{\"-"
         "0\":-0}]}}",
         0, HOIST_OK, NULL},
        {"ok_escapes",
         "{\"a\\\"b\\\\c\\u00e9\\ud83d\\ude00\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":["
         "0,1]}}",
         1, HOIST_OK, NULL},
};

static void write_case(const char *path, const struct st_case *c)
{
	if (!c->header) {
		static const char head[] =
		        "{\"t\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0],\"x\":";
		size_t d = c->data_size, n = strlen(head);
		char *h = malloc(n + 2 * d + 3);
		memcpy(h, head, n);
		memset(h + n, '[', d);
		memset(h + n + d, ']', d);
		memcpy(h + n + 2 * d, "}}", 3);
		fixture_write_safetensors(path, h, NULL, 0);
		free(h);
		return;
	}
	unsigned char *data = malloc(c->data_size ? c->data_size : 1);
	for (size_t i = 0; i < c->data_size; i++)
		data[i] = (unsigned char)(i * 7 + 1);
	fixture_write_safetensors(path, c->header, data, c->data_size);
	free(data);
}

/* Raw files the header-string form cannot express. */
static void put_le64(unsigned char *b, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		b[i] = (unsigned char)(v >> (8 * i));
}

static void write_raw_cases(const char *dir)
{
	unsigned char buf[64];
	test_write_file(test_join(dir, "raw_empty_file"), "", 0);
	test_write_file(test_join(dir, "raw_short_file"), "\x02\0\0\0\0", 5);
	put_le64(buf, 50);
	memcpy(buf + 8, "{}", 2);
	test_write_file(test_join(dir, "raw_length_past_end"), buf, 10);
	put_le64(buf, 100000001);
	test_write_file(test_join(dir, "raw_length_over_limit"), buf, 10);
	put_le64(buf, UINT64_MAX);
	test_write_file(test_join(dir, "raw_length_max"), buf, 10);
	put_le64(buf, 0);
	test_write_file(test_join(dir, "raw_length_zero"), buf, 8);
	put_le64(buf, 2);
	memcpy(buf + 8, "{}", 2);
	test_write_file(test_join(dir, "raw_ok_minimal"), buf, 10);
	/* a NUL byte inside the header */
	put_le64(buf, 3);
	memcpy(buf + 8, "{}\0", 3);
	test_write_file(test_join(dir, "raw_nul_after_json"), buf, 11);
}

static const struct {
	const char *name;
	enum hoist_status status;
	const char *needle;
} raw_expect[] = {
        {"raw_empty_file", HOIST_ERR_FORMAT,
         "file is 0 bytes, shorter than the 8-byte header length"},
        {"raw_short_file", HOIST_ERR_FORMAT,
         "file is 5 bytes, shorter than the 8-byte header length"},
        {"raw_length_past_end", HOIST_ERR_FORMAT,
         "header length 50 runs past the end of the file (10 bytes)"},
        {"raw_length_over_limit", HOIST_ERR_FORMAT,
         "header length 100000001 exceeds the format's limit of 100000000 bytes"},
        {"raw_length_max", HOIST_ERR_FORMAT, "header length 18446744073709551615 exceeds"},
        {"raw_length_zero", HOIST_ERR_FORMAT, "header is not valid JSON"},
        {"raw_ok_minimal", HOIST_OK, NULL},
        {"raw_nul_after_json", HOIST_ERR_FORMAT, "header is not valid JSON"},
};

static void expect_open(const char *path, enum hoist_status status, const char *needle)
{
	struct hoist_checkpoint *c = NULL;
	enum hoist_status s = hoist_checkpoint_open(path, NULL, &c);
	if (s != status)
		FAIL("%s: status %s, expected %s (%s)", path, hoist_status_name(s),
		     hoist_status_name(status), hoist_errmsg());
	if (status == HOIST_OK) {
		CHECK(c != NULL);
		hoist_checkpoint_close(c);
		return;
	}
	CHECK(c == NULL);
	if (!strstr(hoist_errmsg(), needle))
		FAIL("%s: message \"%s\" lacks \"%s\"", path, hoist_errmsg(), needle);
	if (strncmp(hoist_errmsg(), path, strlen(path)) != 0)
		FAIL("%s: message \"%s\" does not start with the file's path", path,
		     hoist_errmsg());
}

TEST(safetensors_rules_each_with_its_message)
{
	for (size_t i = 0; i < HOIST__ARRAY_SIZE(cases); i++) {
		const char *path = test_path(cases[i].name);
		write_case(path, &cases[i]);
		expect_open(path, cases[i].status, cases[i].needle);
	}
	write_raw_cases(test_tmpdir());
	for (size_t i = 0; i < HOIST__ARRAY_SIZE(raw_expect); i++)
		expect_open(test_path(raw_expect[i].name), raw_expect[i].status,
		            raw_expect[i].needle);
	test_check_no_leaks();
}

/* The in-memory entry point (the fuzzer's) agrees with opening the file. */
TEST(safetensors_parse_bytes_matches_open)
{
	for (size_t i = 0; i < HOIST__ARRAY_SIZE(cases); i++) {
		const char *path = test_path(cases[i].name);
		write_case(path, &cases[i]);
		size_t size;
		char *bytes = test_read_file(path, &size);
		struct hoist__st_header h;
		enum hoist_status s = hoist__st_parse_bytes(path, bytes, size, &h);
		if (s != cases[i].status)
			FAIL("%s: %s (%s)", cases[i].name, hoist_status_name(s), hoist_errmsg());
		if (s != HOIST_OK && !strstr(hoist_errmsg(), cases[i].needle))
			FAIL("%s: \"%s\" lacks \"%s\"", cases[i].name, hoist_errmsg(),
			     cases[i].needle);
		if (s != HOIST_OK) {
			CHECK_EQ_INT(h.tensor_count, 0);
			CHECK(h.tensors == NULL);
		}
		hoist__st_header_free(&h);
		free(bytes);
	}
	test_check_no_leaks();
}

static const struct hoist_tensor_info *find(const struct hoist_checkpoint *c, const char *name)
{
	size_t i;
	CHECK_OK(hoist_checkpoint_find(c, name, &i));
	return hoist_checkpoint_tensor(c, i);
}

TEST(safetensors_accepted_edge_cases_read_right)
{
	struct hoist_checkpoint *c;
	const char *p;

	/* any order in the header; file order out */
	p = test_path("order");
	fixture_write_safetensors(
	        p,
	        "{\"b\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[4,8]},"
	        "\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]}}  ",
	        NULL, 8);
	CHECK_OK(hoist_checkpoint_open(p, NULL, &c));
	size_t hl = strlen("{\"b\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[4,8]},"
	                   "\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]}}  ");
	CHECK_EQ_INT(hoist_checkpoint_tensor_count(c), 2);
	CHECK_STR(hoist_checkpoint_tensor(c, 0)->name, "a");
	CHECK_EQ_U64(hoist_checkpoint_tensor(c, 0)->offset, 8 + hl);
	CHECK_STR(hoist_checkpoint_tensor(c, 1)->name, "b");
	CHECK_EQ_U64(hoist_checkpoint_tensor(c, 1)->offset, 8 + hl + 4);
	CHECK_EQ_INT(hoist_checkpoint_tensor(c, 1)->dtype, HOIST_F16);
	CHECK_EQ_U64(hoist_checkpoint_tensor(c, 1)->numel, 2);
	CHECK_EQ_U64(hoist_checkpoint_total_bytes(c), 8);
	hoist_checkpoint_close(c);

	/* zero-size tensors and scalars */
	p = test_path("zero");
	write_case(p, &(struct st_case){
	                      "",
	                      "{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},"
	                      "\"e\":{\"dtype\":\"F32\",\"shape\":[0,3],\"data_offsets\":[4,4]},"
	                      "\"s\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[4,8]}}",
	                      8, HOIST_OK, NULL});
	CHECK_OK(hoist_checkpoint_open(p, NULL, &c));
	CHECK_EQ_INT(hoist_checkpoint_tensor_count(c), 3);
	const struct hoist_tensor_info *e = find(c, "e");
	CHECK_EQ_INT(e->ndim, 2);
	CHECK_EQ_INT(e->shape[0], 0);
	CHECK_EQ_INT(e->shape[1], 3);
	CHECK_EQ_U64(e->numel, 0);
	CHECK_EQ_U64(e->nbytes, 0);
	const struct hoist_tensor_info *s = find(c, "s");
	CHECK_EQ_INT(s->ndim, 0);
	CHECK_EQ_U64(s->numel, 1);
	CHECK_EQ_U64(s->nbytes, 4);
	CHECK_STR(hoist_checkpoint_tensor(c, 1)->name, "e"); /* [4,4) before [4,8) */
	hoist_checkpoint_close(c);

	/* no tensors at all */
	p = test_path("none");
	fixture_write_safetensors(p, "{\"__metadata__\":{\"b\":\"2\",\"a\":\"1\"}}", NULL, 0);
	CHECK_OK(hoist_checkpoint_open(p, NULL, &c));
	CHECK_EQ_INT(hoist_checkpoint_tensor_count(c), 0);
	CHECK_EQ_U64(hoist_checkpoint_total_bytes(c), 0);
	CHECK(hoist_checkpoint_tensor(c, 0) == NULL);
	CHECK_EQ_INT(hoist_checkpoint_metadata_count(c), 2);
	const char *k, *v;
	k = hoist_checkpoint_metadata(c, 0)->key; /* sorted by key */
	v = hoist_checkpoint_metadata(c, 0)->value;
	CHECK_STR(k, "a");
	CHECK_STR(v, "1");
	k = hoist_checkpoint_metadata(c, 1)->key;
	v = hoist_checkpoint_metadata(c, 1)->value;
	CHECK_STR(k, "b");
	CHECK_STR(v, "2");
	hoist_checkpoint_close(c);

	/* sub-byte dtypes */
	p = test_path("subbyte");
	fixture_write_safetensors(
	        p,
	        "{\"f4\":{\"dtype\":\"F4\",\"shape\":[3,2],\"data_offsets\":[0,3]},"
	        "\"f6\":{\"dtype\":\"F6_E2M3\",\"shape\":[4],\"data_offsets\":[3,6]}}",
	        NULL, 6);
	CHECK_OK(hoist_checkpoint_open(p, NULL, &c));
	CHECK_EQ_U64(find(c, "f4")->nbytes, 3);
	CHECK_EQ_U64(find(c, "f4")->numel, 6);
	CHECK_EQ_U64(find(c, "f6")->nbytes, 3);
	hoist_checkpoint_close(c);

	/* an unknown key: ignored, with a warning naming it */
	p = test_path("unknown_key");
	fixture_write_safetensors(
	        p,
	        "{\"t\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1],\"x\":1},"
	        "\"u\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2],\"y\":2}}",
	        NULL, 2);
	CHECK_OK(hoist_checkpoint_open(p, NULL, &c));
	CHECK_EQ_INT(hoist_checkpoint_warning_count(c), 1);
	CHECK(strstr(hoist_checkpoint_warning(c, 0),
	             "unknown key \"x\" ignored (2 unknown keys in all)"));
	CHECK(strstr(hoist_checkpoint_warning(c, 0), p));
	hoist_checkpoint_close(c);

	/* escapes in names come out decoded */
	p = test_path("escapes");
	fixture_write_safetensors(
	        p, "{\"a\\\"b\\u00e9\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}",
	        NULL, 1);
	CHECK_OK(hoist_checkpoint_open(p, NULL, &c));
	CHECK_STR(hoist_checkpoint_tensor(c, 0)->name, "a\"b\xc3\xa9");
	hoist_checkpoint_close(c);
}

TEST(safetensors_utf8_validator)
{
	size_t bad;
	CHECK(hoist__utf8_valid((const unsigned char *)"", 0, &bad));
	CHECK(hoist__utf8_valid((const unsigned char *)"a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 10,
	                        &bad));
	CHECK(hoist__utf8_valid((const unsigned char *)"\xf4\x8f\xbf\xbf", 4, &bad)); /* U+10FFFF */
	CHECK(hoist__utf8_valid((const unsigned char *)"\xed\x9f\xbf", 3, &bad));     /* U+D7FF */
	static const struct {
		const char *s;
		size_t n, at;
	} badcases[] = {
	        {"ab\x80", 3, 2},           /* lone continuation */
	        {"\xc1\xbf", 2, 0},         /* overlong 2-byte */
	        {"\xe0\x9f\xbf", 3, 0},     /* overlong 3-byte */
	        {"\xf0\x8f\xbf\xbf", 4, 0}, /* overlong 4-byte */
	        {"\xed\xa0\x80", 3, 0},     /* surrogate */
	        {"\xf4\x90\x80\x80", 4, 0}, /* above U+10FFFF */
	        {"\xf5\x80\x80\x80", 4, 0},
	        {"x\xe2\x82", 3, 1}, /* truncated */
	        {"\xc3(", 2, 0},     /* bad continuation */
	        {"\xff", 1, 0},
	};
	for (size_t i = 0; i < HOIST__ARRAY_SIZE(badcases); i++) {
		bad = 99;
		if (hoist__utf8_valid((const unsigned char *)badcases[i].s, badcases[i].n, &bad))
			FAIL("case %zu accepted", i);
		CHECK_EQ_INT(bad, badcases[i].at);
	}
}

/* Writes the malformed corpus (the cases above, raw files included) into dir. */
static void write_corpus(const char *dir)
{
	for (size_t i = 0; i < HOIST__ARRAY_SIZE(cases); i++)
		write_case(test_join(dir, cases[i].name), &cases[i]);
	write_raw_cases(dir);
}

TEST_TIMEOUT(safetensors_differential_vs_reference, 120)
{
	const char *py = ".venv/bin/python3";
	if (access(py, X_OK) != 0)
		FAIL("%s not found: run from the repository root after setup", py);
	char dir[4096];
	snprintf(dir, sizeof dir, "%s", test_path("corpus"));
	CHECK(mkdir(dir, 0755) == 0);
	write_corpus(dir);
	char *out = NULL;
	int rc = test_run(&out,
	                  "%s tests/differential.py --hoist %s --mutants 400 %s tests/fuzz/header",
	                  py, test_hoist_bin(), dir);
	if (rc != 0)
		FAIL("differential.py exited %d:\n%s", rc, out);
	/* it judged every file: the corpus and the seeds, plus the mutants */
	char want[4200];
	snprintf(want, sizeof want, "%s: %zu files", dir,
	         HOIST__ARRAY_SIZE(cases) + HOIST__ARRAY_SIZE(raw_expect));
	if (!strstr(out, want) || !strstr(out, "disagreements: 0") || !strstr(out, "mutants: 400"))
		FAIL("unexpected summary:\n%s", out);
	free(out);
}

/* ---- the fast header reader against the jansson one ----------------------------------- */

TEST(safetensors_sort_names)
{
	static char names[400][8];
	struct hoist__name_ref refs[800], want[400];
	uint64_t x = 88172645463325252ull;
	for (int trial = 0; trial < 3000; trial++) {
		size_t n = (size_t)(trial % 400);
		for (size_t i = 0; i < n; i++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			/* few letters: many equal names; runs of ascending names some trials */
			if (trial % 3 == 0)
				snprintf(names[i], sizeof names[i], "%c%c", 'a' + (int)(x % 4),
				         'a' + (int)(x / 4 % 4));
			else if (trial % 3 == 1)
				snprintf(names[i], sizeof names[i], "n%03zu", i % 37 ? i : 400 - i);
			else
				snprintf(names[i], sizeof names[i], "t%llu",
				         (unsigned long long)(x % 1000));
			refs[i] = want[i] = (struct hoist__name_ref){names[i], i};
		}
		/* the reference: insertion sort by (name, index) */
		for (size_t i = 1; i < n; i++)
			for (size_t j = i; j > 0; j--) {
				int c = strcmp(want[j - 1].name, want[j].name);
				if (c < 0 || (c == 0 && want[j - 1].index < want[j].index))
					break;
				struct hoist__name_ref t = want[j];
				want[j] = want[j - 1];
				want[j - 1] = t;
			}
		hoist__sort_names(refs, refs + n, n);
		for (size_t i = 0; i < n; i++)
			if (refs[i].index != want[i].index)
				FAIL("trial %d (n %zu): position %zu holds %zu (\"%s\"), expected "
				     "%zu (\"%s\")",
				     trial, n, i, refs[i].index, refs[i].name, want[i].index,
				     want[i].name);
	}
}

struct reader_tally {
	size_t inputs, fast, accepted, fast_accepted;
};

/* The three readers on one header: AUTO must equal JSON in status, message and
 * contents; FAST must decline or equal JSON too. Returns whether FAST read it. */
static bool compare_readers(const char *label, const void *header, size_t len, uint64_t file_size,
                            struct reader_tally *tally)
{
	struct hoist__st_header hj, ha, hf;
	char mj[1100], why[512];
	const char *file = "f.safetensors";
	enum hoist_status sj =
	        hoist__st_parse_with(HOIST__ST_PARSER_JSON, file, header, len, file_size, &hj);
	snprintf(mj, sizeof mj, "%s", hoist_errmsg());
	enum hoist_status sa =
	        hoist__st_parse_with(HOIST__ST_PARSER_AUTO, file, header, len, file_size, &ha);
	if (sa != sj || (sj != HOIST_OK && strcmp(hoist_errmsg(), mj) != 0))
		FAIL("%s: auto: %s \"%s\"; jansson: %s \"%s\"", label, hoist_status_name(sa),
		     hoist_errmsg(), hoist_status_name(sj), mj);
	if (sj == HOIST_OK && !hoist__st_header_same(&ha, &hj, why, sizeof why))
		FAIL("%s: auto and jansson differ: %s", label, why);
	enum hoist_status sf =
	        hoist__st_parse_with(HOIST__ST_PARSER_FAST, file, header, len, file_size, &hf);
	bool fast = !(sf == HOIST_ERR_INVALID &&
	              strstr(hoist_errmsg(), "declined by the fast header reader"));
	if (fast) {
		if (sf != sj || (sj != HOIST_OK && strcmp(hoist_errmsg(), mj) != 0))
			FAIL("%s: fast: %s \"%s\"; jansson: %s \"%s\"", label,
			     hoist_status_name(sf), hoist_errmsg(), hoist_status_name(sj), mj);
		if (sj == HOIST_OK && !hoist__st_header_same(&hf, &hj, why, sizeof why))
			FAIL("%s: fast and jansson differ: %s", label, why);
	} else if (hf.tensors || hf.tensor_count) {
		FAIL("%s: declined, but left tensors", label);
	}
	if (sj == HOIST_OK) {
		/* the name index is in name order; the tensors tile the data */
		uint64_t pos = 8 + len;
		for (size_t i = 0; i < hj.tensor_count; i++) {
			if (i && strcmp(hj.tensors[hj.by_name[i - 1]].name,
			                hj.tensors[hj.by_name[i]].name) >= 0)
				FAIL("%s: by_name out of order at %zu", label, i);
			if (hj.tensors[i].offset != pos)
				FAIL("%s: tensor %zu at %llu, expected %llu", label, i,
				     (unsigned long long)hj.tensors[i].offset,
				     (unsigned long long)pos);
			pos += hj.tensors[i].nbytes;
		}
		CHECK_EQ_U64(pos, file_size);
	}
	tally->inputs++;
	tally->fast += fast;
	tally->accepted += sj == HOIST_OK;
	tally->fast_accepted += fast && sj == HOIST_OK;
	hoist__st_header_free(&hj);
	hoist__st_header_free(&ha);
	hoist__st_header_free(&hf);
	return fast;
}

/* A whole file's bytes: the readers see its header, when the prefix lets them. */
static void compare_file_bytes(const char *label, const unsigned char *bytes, size_t size,
                               struct reader_tally *tally, bool must_be_fast)
{
	uint64_t n;
	if (size < 8 || hoist__st_check_prefix(label, bytes, size, &n) != HOIST_OK)
		return;
	if (!compare_readers(label, bytes + 8, (size_t)n, size, tally) && must_be_fast)
		FAIL("%s: the fast reader declined it", label);
}

/* The header cases above the fast reader leaves to jansson: everything else it must
 * read itself (so the comparisons compare something). */
static const char *const declined_cases[] = {
        "not_json",
        "not_object",
        "trailing_junk",
        "trailing_formfeed",
        "nul_escape",
        "lone_surrogate_escape",
        "too_deep",
        "metadata_list",
        "metadata_int",
        "metadata_nested",
        "metadata_twice",
        "metadata_dup_key",
        "entry_not_object",
        "missing_dtype",
        "missing_shape",
        "missing_offsets",
        "dtype_number",
        "dtype_as_map",
        "shape_not_list",
        "shape_null",
        "shape_negative",
        "shape_float",
        "shape_exponent",
        "shape_bool",
        "shape_string",
        "shape_negative_zero",
        "offset_negative_zero",
        "shape_above_int64",
        "offsets_not_list",
        "offsets_three",
        "offsets_one",
        "offsets_negative",
        "offsets_float",
        "duplicate_name",
        "duplicate_field",
        "ok_unknown_key",
        "ok_deep_unknown",
        "ok_negative_zero_ignored",
        "ok_escapes",
};

static bool is_declined_case(const char *name)
{
	for (size_t i = 0; i < HOIST__ARRAY_SIZE(declined_cases); i++)
		if (strcmp(declined_cases[i], name) == 0)
			return true;
	return false;
}

/* Seeded mutations: bytes JSON and the format care about, deletions, copies of a
 * stretch elsewhere (duplicate names far apart), tokens spliced in. */
static uint64_t rng_next(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

/* Where a key starts: a '"' after '{' or ',' (and whitespace), from a random place. */
static bool find_key(uint64_t *rng, const char *buf, size_t len, size_t *at)
{
	size_t start = len ? rng_next(rng) % len : 0;
	for (size_t k = 0; k < len; k++) {
		size_t p = (start + k) % len, q = p;
		if (buf[p] != '"')
			continue;
		while (q > 0 && strchr(" \n\r\t", buf[q - 1]))
			q--;
		if (q > 0 && (buf[q - 1] == '{' || buf[q - 1] == ',')) {
			*at = p;
			return true;
		}
	}
	return false;
}

static size_t insert(char *buf, size_t len, size_t cap, size_t at, const char *s, size_t n)
{
	if (len + n > cap)
		return len;
	memmove(buf + at + n, buf + at, len - at);
	memcpy(buf + at, s, n);
	return len + n;
}

static size_t mutate(uint64_t *rng, char *buf, size_t len, size_t cap)
{
	static const char bytes[] = "\"\\,:{}[]-019e. \n\t\rnx\x01\x1f\x7f";
	static const char *const tokens[] = {
	        "\"dtype\":\"U8\",",
	        "\"x\":1,",
	        ",",
	        "\"__metadata__\":{},",
	        "\\u0041",
	        "-0",
	        "01",
	        "1e2",
	        "9223372036854775808",
	        "9223372036854775807",
	        "null",
	        "\"a\":\"b\",",
	        "\"t\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},",
	        "[0,0]",
	        "\"\"",
	        "\xc3\xa9",
	        "\\\"",
	        " ",
	        "}",
	        "]",
	};
	unsigned kind = (unsigned)(rng_next(rng) % 20);
	size_t at = len ? rng_next(rng) % len : 0;
	if (kind < 8) {
		/* a digit for another: sizes and offsets that no longer fit */
		for (size_t k = 0; k < len; k++, at = (at + 1) % len)
			if (buf[at] >= '0' && buf[at] <= '9') {
				buf[at] = (char)('0' + rng_next(rng) % 10);
				break;
			}
		return len;
	}
	if (kind < 11) {
		/* a letter for another: names, dtypes, keys */
		for (size_t k = 0; k < len; k++, at = (at + 1) % len)
			if ((buf[at] >= 'a' && buf[at] <= 'z') ||
			    (buf[at] >= 'A' && buf[at] <= 'Z')) {
				buf[at] = "abtUIF8B"[rng_next(rng) % 8];
				break;
			}
		return len;
	}
	if (kind < 14) {
		/* a whole member copied in front of another: duplicate names far apart */
		size_t from, to;
		if (!find_key(rng, buf, len, &from) || !find_key(rng, buf, len, &to))
			return len;
		const char *end = memchr(buf + from, '}', len - from);
		if (!end)
			return len;
		char member[4096];
		size_t n = (size_t)(end + 1 - (buf + from));
		if (n + 1 > sizeof member)
			return len;
		memcpy(member, buf + from, n);
		member[n++] = ',';
		return insert(buf, len, cap, to, member, n);
	}
	/* anything: bytes JSON cares about, deletions, copies, tokens */
	size_t rounds = 1 + rng_next(rng) % 3;
	for (size_t r = 0; r < rounds; r++) {
		at = len ? rng_next(rng) % (len + 1) : 0;
		switch (rng_next(rng) % 4) {
		case 0:
			if (at < len)
				buf[at] = bytes[rng_next(rng) % (sizeof bytes - 1)];
			break;
		case 1: {
			size_t want = 1 + rng_next(rng) % 12; /* HOIST__MIN evaluates twice */
			size_t n = HOIST__MIN(len - at, want);
			memmove(buf + at, buf + at + n, len - at - n);
			len -= n;
			break;
		}
		case 2: {
			size_t from = len ? rng_next(rng) % len : 0;
			size_t want = 1 + rng_next(rng) % 80;
			size_t n = HOIST__MIN(len - from, want);
			char tmp[80];
			memcpy(tmp, buf + from, n);
			len = insert(buf, len, cap, at, tmp, n);
			break;
		}
		default: {
			const char *t = tokens[rng_next(rng) % HOIST__ARRAY_SIZE(tokens)];
			len = insert(buf, len, cap, at, t, strlen(t));
			break;
		}
		}
	}
	return len;
}

TEST_TIMEOUT(safetensors_fast_reader_agrees_with_jansson, 120)
{
	struct reader_tally tally = {0};
	char label[4200];

	/* every rule case: fast exactly where expected */
	for (size_t i = 0; i < HOIST__ARRAY_SIZE(cases); i++) {
		const char *path = test_path(cases[i].name);
		write_case(path, &cases[i]);
		size_t size;
		unsigned char *bytes = (unsigned char *)test_read_file(path, &size);
		uint64_t n;
		CHECK_OK(hoist__st_check_prefix(path, bytes, size, &n));
		bool fast = compare_readers(cases[i].name, bytes + 8, (size_t)n, size, &tally);
		bool utf8 = strstr(cases[i].name, "utf8") != NULL; /* rejected before either */
		if (!utf8 && fast == is_declined_case(cases[i].name))
			FAIL("%s: the fast reader %s it", cases[i].name,
			     fast ? "read" : "declined");
		free(bytes);
	}

	/* the reference files and the fuzz corpus */
	static const char *const refs[] = {
	        "reference/all_dtypes.safetensors",
	        "reference/tiny-qwen2-vl/model-00001-of-00003.safetensors",
	        "reference/tiny-qwen2-vl/model-00002-of-00003.safetensors",
	        "reference/tiny-qwen2-vl/model-00003-of-00003.safetensors",
	};
	for (size_t i = 0; i < HOIST__ARRAY_SIZE(refs); i++) {
		size_t size;
		unsigned char *bytes =
		        (unsigned char *)test_read_file(test_join(test_data_dir(), refs[i]), &size);
		compare_file_bytes(refs[i], bytes, size, &tally, true);
		free(bytes);
	}
	size_t corpus = 0;
	DIR *d = opendir("tests/fuzz/header");
	if (!d)
		FAIL("tests/fuzz/header: %s (run from the repository root)", strerror(errno));
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(label, sizeof label, "tests/fuzz/header/%s", e->d_name);
		size_t size;
		unsigned char *bytes = (unsigned char *)test_read_file(label, &size);
		compare_file_bytes(label, bytes, size, &tally,
		                   strncmp(e->d_name, "valid_", 6) == 0);
		free(bytes);
		corpus++;
	}
	closedir(d);
	CHECK(corpus >= 40);

	/* the 7B checkpoint's real headers */
	json_error_t jerr;
	json_t *sh = json_load_file(test_join(test_data_dir(), "qwen2-vl-7b/shard-headers.json"), 0,
	                            &jerr);
	if (!json_is_object(sh))
		FAIL("shard-headers.json: %s", jerr.text);
	const char *name;
	json_t *v;
	size_t shards = 0;
	json_object_foreach(sh, name, v)
	{
		json_t *h = json_object_get(v, "header");
		uint64_t fsize = (uint64_t)json_integer_value(json_object_get(v, "file_size"));
		struct hoist__st_header out;
		if (!compare_readers(name, json_string_value(h), json_string_length(h), fsize,
		                     &tally))
			FAIL("%s: the fast reader declined it", name);
		CHECK_OK(hoist__st_parse_with(HOIST__ST_PARSER_FAST, name, json_string_value(h),
		                              json_string_length(h), fsize, &out));
		CHECK(out.tensor_count > 0);
		hoist__st_header_free(&out);
		shards++;
	}
	json_decref(sh);
	CHECK_EQ_INT(shards, 5);

	/* a larger header: 60 tensors written out of name order (tensor k holds
	 * 4 * (k % 3) bytes), keys in another order, whitespace, metadata */
	static char big[16384];
	size_t blen = (size_t)snprintf(
	        big, sizeof big, "{\"__metadata__\":{\"format\":\"pt\",\"b\":\"x\",\"a\":\"\"}");
	uint64_t start[60], pos = 0;
	for (int k = 0; k < 60; k++) {
		start[k] = pos;
		pos += 4 * (uint64_t)(k % 3);
	}
	for (int i = 0; i < 60; i++) {
		int k = (i * 37) % 60;
		blen += (size_t)snprintf(big + blen, sizeof big - blen,
		                         ",\n  \"layer.%d.w\": {\"shape\": [%d, 2], \"dtype\": "
		                         "\"BF16\", \"data_offsets\": [%llu, %llu]}",
		                         k, k % 3, (unsigned long long)start[k],
		                         (unsigned long long)(start[k] + 4 * (uint64_t)(k % 3)));
	}
	blen += (size_t)snprintf(big + blen, sizeof big - blen, "}  ");
	CHECK(blen < sizeof big - 1);
	{
		struct hoist__st_header out;
		CHECK_OK(hoist__st_parse_with(HOIST__ST_PARSER_FAST, "big", big, blen,
		                              8 + blen + pos, &out));
		CHECK_EQ_INT(out.tensor_count, 60);
		CHECK_EQ_INT(out.metadata_count, 3);
		CHECK_STR(out.metadata_keys[2], "a");
		CHECK_STR(out.tensors[out.by_name[0]].name, "layer.0.w");
		CHECK_STR(out.tensors[out.by_name[1]].name, "layer.1.w");
		CHECK_STR(out.tensors[out.by_name[2]].name, "layer.10.w");
		CHECK_STR(out.tensors[out.by_name[59]].name, "layer.9.w");
		CHECK_STR(out.tensors[1].name, "layer.1.w"); /* file order: layer.0.w is empty */
		CHECK_EQ_INT(out.tensors[1].shape[0], 1);
		hoist__st_header_free(&out);
		compare_readers("big", big, blen, 8 + blen + pos, &tally);

		/* mutants of every seed, the big one most */
		uint64_t rng = 0x9e3779b97f4a7c15ull;
		static char buf[32768];
		size_t mutants = 0;
		for (size_t i = 0; i <= HOIST__ARRAY_SIZE(cases); i++) {
			const char *seed = i < HOIST__ARRAY_SIZE(cases) ? cases[i].header : big;
			if (!seed)
				continue;
			size_t seed_len = strlen(seed);
			uint64_t data = i < HOIST__ARRAY_SIZE(cases) ? cases[i].data_size : pos;
			size_t rounds = i < HOIST__ARRAY_SIZE(cases) ? 60 : 4000;
			for (size_t m = 0; m < rounds; m++) {
				memcpy(buf, seed, seed_len);
				size_t len = mutate(&rng, buf, seed_len, sizeof buf);
				uint64_t fsize = 8 + len + data;
				if (rng_next(&rng) % 8 == 0)
					fsize += rng_next(&rng) % 3 - 1; /* a byte more or less */
				snprintf(label, sizeof label, "mutant %zu of %s", m,
				         i < HOIST__ARRAY_SIZE(cases) ? cases[i].name : "big");
				compare_readers(label, buf, len, fsize, &tally);
				mutants++;
			}
		}
		CHECK(mutants >= 4000 + 60 * 60); /* 60 and more cases with a header */
	}
	/* the comparisons compared: the fast reader read many, accepted and not */
	if (tally.fast * 3 < tally.inputs || tally.fast_accepted < 400)
		FAIL("of %zu inputs the fast reader read %zu (%zu accepted); %zu accepted in all",
		     tally.inputs, tally.fast, tally.fast_accepted, tally.accepted);
	test_check_no_leaks();
}
