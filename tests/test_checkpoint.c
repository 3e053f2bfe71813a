/* test_checkpoint.c - opening checkpoints: the reference files against their
 * manifest, the full-size 7B layout, directories and index files, the index
 * cross-checks, config.json, and injected allocation and I/O faults. */
#include "fixtures.h"
#include "safetensors.h"
#include "test.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <sys/stat.h>
#include <unistd.h>

/* Manifest dtypes are torch's names. */
static const char *torch_to_st(const char *t)
{
	static const char *map[][2] = {
	        {"torch.float64", "F64"},
	        {"torch.float32", "F32"},
	        {"torch.float16", "F16"},
	        {"torch.bfloat16", "BF16"},
	        {"torch.int64", "I64"},
	        {"torch.int32", "I32"},
	        {"torch.int16", "I16"},
	        {"torch.int8", "I8"},
	        {"torch.uint64", "U64"},
	        {"torch.uint32", "U32"},
	        {"torch.uint16", "U16"},
	        {"torch.uint8", "U8"},
	        {"torch.bool", "BOOL"},
	        {"torch.complex64", "C64"},
	        {"torch.float8_e4m3fn", "F8_E4M3"},
	        {"torch.float8_e5m2", "F8_E5M2"},
	        {"torch.float8_e8m0fnu", "F8_E8M0"},
	        {"torch.float4_e2m1fn_x2", "F4"},
	};
	for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
		if (strcmp(map[i][0], t) == 0)
			return map[i][1];
	FAIL("manifest dtype %s has no safetensors name here", t);
}

static json_t *load_manifest(void)
{
	json_error_t e;
	json_t *m = json_load_file(test_join(test_data_dir(), "reference/manifest.json"), 0, &e);
	if (!json_is_object(m))
		FAIL("manifest.json: %s", e.text);
	return m;
}

static void sha_of_range(const char *path, uint64_t offset, uint64_t size, char hex[65])
{
	int fd = open(path, O_RDONLY);
	CHECK(fd >= 0);
	char *buf = malloc(size ? size : 1);
	CHECK(pread(fd, buf, size, (off_t)offset) == (ssize_t)size);
	close(fd);
	test_sha256_hex(buf, size, hex);
	free(buf);
}

/* Every tensor of `ckpt` whose shard's manifest key is `prefix + basename` matches
 * the manifest: dtype, shape, sha256 of the bytes at the reported range; every
 * manifest tensor of those files is present; metadata equal. Returns tensors seen. */
static size_t check_against_manifest(const struct hoist_checkpoint *ckpt, json_t *manifest,
                                     const char *prefix)
{
	size_t seen = 0, expected = 0;
	for (size_t s = 0; s < hoist_checkpoint_shard_count(ckpt); s++) {
		const char *path = hoist_checkpoint_shard(ckpt, s)->path;
		const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
		char key[512];
		snprintf(key, sizeof key, "%s%s", prefix, base);
		json_t *entry = json_object_get(manifest, key);
		if (!entry)
			FAIL("no manifest entry %s", key);
		json_t *tensors = json_object_get(entry, "tensors");
		expected += json_object_size(tensors);
		/* metadata: each file's __metadata__ is in the merged set */
		const char *mk;
		json_t *mv;
		json_object_foreach(json_object_get(entry, "metadata"), mk, mv)
		{
			bool found = false;
			for (size_t i = 0; i < hoist_checkpoint_metadata_count(ckpt); i++) {
				const char *k, *v;
				k = hoist_checkpoint_metadata(ckpt, i)->key;
				v = hoist_checkpoint_metadata(ckpt, i)->value;
				if (strcmp(k, mk) == 0) {
					CHECK_STR(v, json_string_value(mv));
					found = true;
				}
			}
			if (!found)
				FAIL("metadata %s missing", mk);
		}
		for (size_t i = 0; i < hoist_checkpoint_tensor_count(ckpt); i++) {
			const struct hoist_tensor_info *t = hoist_checkpoint_tensor(ckpt, i);
			if (t->shard != s)
				continue;
			json_t *m = json_object_get(tensors, t->name);
			if (!m)
				FAIL("tensor %s not in manifest %s", t->name, key);
			const char *want =
			        torch_to_st(json_string_value(json_object_get(m, "dtype")));
			CHECK_STR(hoist_dtype_name(t->dtype), want);
			json_t *shape = json_object_get(m, "shape");
			/* torch's float4_e2m1fn_x2 packs two elements per element: the file's
			 * last dimension is twice the manifest's. */
			bool packed = strcmp(want, "F4") == 0;
			CHECK_EQ_INT(t->ndim, json_array_size(shape));
			uint64_t numel = 1;
			for (unsigned d = 0; d < t->ndim; d++) {
				long long dim = json_integer_value(json_array_get(shape, d));
				if (packed && d + 1 == t->ndim)
					dim *= 2;
				CHECK_EQ_INT(t->shape[d], dim);
				numel *= (uint64_t)dim;
			}
			CHECK_EQ_U64(t->numel, numel);
			CHECK_EQ_U64(t->nbytes, numel * hoist_dtype_bits(t->dtype) / 8);
			char hex[65];
			sha_of_range(path, t->offset, t->nbytes, hex);
			CHECK_STR(hex, json_string_value(json_object_get(m, "sha256")));
			seen++;
		}
	}
	CHECK_EQ_INT(seen, expected);
	return seen;
}

TEST(checkpoint_reference_all_dtypes)
{
	json_t *manifest = load_manifest();
	struct hoist_checkpoint *c;
	CHECK_OK(hoist_checkpoint_open(
	        test_join(test_data_dir(), "reference/all_dtypes.safetensors"), NULL, &c));
	CHECK_EQ_INT(hoist_checkpoint_shard_count(c), 1);
	CHECK_EQ_INT(hoist_checkpoint_tensor_count(c), 21);
	CHECK_EQ_INT(check_against_manifest(c, manifest, ""), 21);
	/* the whole data region, exactly */
	CHECK_EQ_U64(hoist_checkpoint_total_bytes(c), 133501);
	CHECK_EQ_INT(hoist_checkpoint_metadata_count(c), 2);
	const char *k, *v;
	k = hoist_checkpoint_metadata(c, 0)->key;
	v = hoist_checkpoint_metadata(c, 0)->value;
	CHECK_STR(k, "format");
	CHECK_STR(v, "pt");
	k = hoist_checkpoint_metadata(c, 1)->key;
	v = hoist_checkpoint_metadata(c, 1)->value;
	CHECK_STR(k, "note");
	CHECK_STR(v, "reference vectors");
	CHECK(hoist_checkpoint_architecture(c) == NULL);
	CHECK_EQ_INT(hoist_checkpoint_warning_count(c), 0);
	/* file order: by data offset */
	for (size_t i = 1; i < hoist_checkpoint_tensor_count(c); i++)
		CHECK(hoist_checkpoint_tensor(c, i - 1)->offset <=
		      hoist_checkpoint_tensor(c, i)->offset);
	CHECK_STR(hoist_checkpoint_tensor(c, 0)->name, "t_uint64");
	CHECK_EQ_U64(hoist_checkpoint_tensor(c, 0)->offset, 8 + 1592);
	size_t idx;
	CHECK_OK(hoist_checkpoint_find(c, "scalar_f32", &idx));
	CHECK_STR(hoist_checkpoint_tensor(c, idx)->name, "scalar_f32");
	CHECK_EQ_INT(hoist_checkpoint_tensor(c, idx)->ndim, 0);
	CHECK_EQ_U64(hoist_checkpoint_tensor(c, idx)->numel, 1);
	CHECK_ERR(hoist_checkpoint_find(c, "nope", &idx), HOIST_ERR_INVALID, "\"nope\"");
	hoist_checkpoint_close(c);
	json_decref(manifest);
}

static void check_tiny(const char *path, json_t *manifest)
{
	struct hoist_checkpoint *c;
	CHECK_OK(hoist_checkpoint_open(path, NULL, &c));
	CHECK_EQ_INT(hoist_checkpoint_shard_count(c), 3);
	CHECK_EQ_INT(hoist_checkpoint_tensor_count(c), 70);
	CHECK_EQ_INT(check_against_manifest(c, manifest, "tiny-qwen2-vl/"), 70);
	CHECK_EQ_U64(hoist_checkpoint_total_bytes(c), 529664);
	CHECK_STR(hoist_checkpoint_architecture(c), "Qwen2VLForConditionalGeneration");
	CHECK(hoist_checkpoint_config_dtype(c) != NULL);
	CHECK_EQ_INT(hoist_checkpoint_warning_count(c), 0);
	for (size_t s = 0; s < 3; s++) {
		char want[64];
		snprintf(want, sizeof want, "model-0000%zu-of-00003.safetensors", s + 1);
		const char *p = hoist_checkpoint_shard(c, s)->path;
		CHECK(strlen(p) > strlen(want) && strcmp(p + strlen(p) - strlen(want), want) == 0);
		struct stat st;
		CHECK(stat(p, &st) == 0);
		CHECK_EQ_U64(hoist_checkpoint_shard(c, s)->size, st.st_size);
	}
	/* numbering: shard, then offset */
	for (size_t i = 1; i < 70; i++) {
		const struct hoist_tensor_info *a = hoist_checkpoint_tensor(c, i - 1);
		const struct hoist_tensor_info *b = hoist_checkpoint_tensor(c, i);
		CHECK(a->shard < b->shard ||
		      (a->shard == b->shard && a->offset + a->nbytes == b->offset));
	}
	hoist_checkpoint_close(c);
}

TEST(checkpoint_reference_tiny_qwen)
{
	json_t *manifest = load_manifest();
	const char *dir = test_join(test_data_dir(), "reference/tiny-qwen2-vl");
	check_tiny(dir, manifest);
	char slash[4200];
	snprintf(slash, sizeof slash, "%s/", dir);
	check_tiny(slash, manifest);
	check_tiny(test_join(dir, "model.safetensors.index.json"), manifest);
	json_decref(manifest);
}

TEST(checkpoint_qwen7b_sparse)
{
	const char *dir = fixture_qwen7b_sparse();
	struct hoist_checkpoint *c;
	CHECK_OK(hoist_checkpoint_open(dir, NULL, &c));
	CHECK_EQ_INT(hoist_checkpoint_shard_count(c), 5);
	CHECK_EQ_INT(hoist_checkpoint_tensor_count(c), 730);
	CHECK_EQ_U64(hoist_checkpoint_total_bytes(c), 16582751232ull);
	CHECK_STR(hoist_checkpoint_architecture(c), "Qwen2VLForConditionalGeneration");
	CHECK_STR(hoist_checkpoint_config_dtype(c), "bfloat16");
	CHECK_EQ_INT(hoist_checkpoint_warning_count(c), 0);
	CHECK_EQ_U64(hoist_checkpoint_shard(c, 0)->size, 3898638336ull);
	CHECK_EQ_U64(hoist_checkpoint_shard(c, 4)->size, 1089994880ull);

	/* spot checks against shard-headers.json itself */
	json_error_t e;
	json_t *sh = json_load_file(
	        test_join(test_join(test_data_dir(), "qwen2-vl-7b"), "shard-headers.json"), 0, &e);
	CHECK(sh != NULL);
	const char *checks[][2] = {
	        {"lm_head.weight", "model-00005-of-00005.safetensors"},
	        {"model.language_model.embed_tokens.weight", "model-00001-of-00005.safetensors"},
	        {"model.language_model.layers.10.mlp.down_proj.weight",
	         "model-00002-of-00005.safetensors"},
	};
	for (size_t k = 0; k < 3; k++) {
		json_t *entry = json_object_get(sh, checks[k][1]);
		const char *htext = json_string_value(json_object_get(entry, "header"));
		json_t *h = json_loads(htext, 0, &e);
		json_t *t = json_object_get(h, checks[k][0]);
		CHECK(t != NULL);
		size_t idx;
		CHECK_OK(hoist_checkpoint_find(c, checks[k][0], &idx));
		const struct hoist_tensor_info *ti = hoist_checkpoint_tensor(c, idx);
		const char *p = hoist_checkpoint_shard(c, ti->shard)->path;
		CHECK_STR(p + strlen(p) - strlen(checks[k][1]), checks[k][1]);
		json_t *off = json_object_get(t, "data_offsets");
		CHECK_EQ_U64(ti->offset,
		             8 + strlen(htext) + json_integer_value(json_array_get(off, 0)));
		CHECK_EQ_U64(ti->nbytes, json_integer_value(json_array_get(off, 1)) -
		                                 json_integer_value(json_array_get(off, 0)));
		CHECK_STR(hoist_dtype_name(ti->dtype),
		          json_string_value(json_object_get(t, "dtype")));
		json_decref(h);
	}
	json_decref(sh);
	size_t idx;
	CHECK_OK(hoist_checkpoint_find(c, "lm_head.weight", &idx));
	CHECK_EQ_INT(idx, 729); /* the last shard holds only lm_head */
	const struct hoist_tensor_info *lm = hoist_checkpoint_tensor(c, idx);
	CHECK_EQ_INT(lm->ndim, 2);
	CHECK_EQ_INT(lm->shape[0], 152064);
	CHECK_EQ_INT(lm->shape[1], 3584);
	CHECK_EQ_U64(lm->nbytes, 1089994752ull);
	hoist_checkpoint_close(c);
}

/* ---- sharded checkpoints made here ------------------------------------------------- */

#define SHARD1 "model-00001-of-00002.safetensors"
#define SHARD2 "model-00002-of-00002.safetensors"

/* Two shards: a, b (4 + 8 bytes) in the first, c (16 bytes) in the second. */
static const char *make_sharded(const char *name, const char *index_json, const char *config)
{
	static char dir[4096];
	snprintf(dir, sizeof dir, "%s", test_path(name));
	CHECK(mkdir(dir, 0755) == 0);
	fixture_write_safetensors(
	        test_join(dir, SHARD1),
	        "{\"__metadata__\":{\"format\":\"pt\",\"only1\":\"x\"},"
	        "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
	        "\"b\":{\"dtype\":\"BF16\",\"shape\":[2,2],\"data_offsets\":[4,12]}}",
	        NULL, 12);
	fixture_write_safetensors(
	        test_join(dir, SHARD2),
	        "{\"__metadata__\":{\"format\":\"np\",\"only2\":\"y\"},"
	        "\"c\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[0,16]}}",
	        NULL, 16);
	if (index_json)
		test_write_file(test_join(dir, "model.safetensors.index.json"), index_json,
		                strlen(index_json));
	if (config)
		test_write_file(test_join(dir, "config.json"), config, strlen(config));
	return dir;
}

#define GOOD_MAP "\"weight_map\":{\"a\":\"" SHARD1 "\",\"b\":\"" SHARD1 "\",\"c\":\"" SHARD2 "\"}"

TEST(checkpoint_sharded_ok)
{
	const char *dir =
	        make_sharded("ok", "{\"metadata\":{\"total_size\":28}," GOOD_MAP "}",
	                     "{\"architectures\":[\"LlamaForCausalLM\"],\"dtype\":\"float16\"}");
	struct hoist_checkpoint *c;
	CHECK_OK(hoist_checkpoint_open(dir, NULL, &c));
	CHECK_EQ_INT(hoist_checkpoint_shard_count(c), 2);
	CHECK_EQ_INT(hoist_checkpoint_tensor_count(c), 3);
	CHECK_EQ_U64(hoist_checkpoint_total_bytes(c), 28);
	CHECK_STR(hoist_checkpoint_tensor(c, 0)->name, "a");
	CHECK_STR(hoist_checkpoint_tensor(c, 2)->name, "c");
	CHECK_EQ_INT(hoist_checkpoint_tensor(c, 2)->shard, 1);
	CHECK_STR(hoist_checkpoint_shard(c, 1)->path, test_join(dir, SHARD2));
	CHECK(hoist_checkpoint_shard(c, 2) == NULL);
	CHECK_STR(hoist_checkpoint_architecture(c), "LlamaForCausalLM");
	CHECK_STR(hoist_checkpoint_config_dtype(c), "float16");
	CHECK_EQ_INT(hoist_checkpoint_warning_count(c), 0);
	/* metadata merged, first shard wins, sorted by key */
	CHECK_EQ_INT(hoist_checkpoint_metadata_count(c), 3);
	const char *k, *v;
	k = hoist_checkpoint_metadata(c, 0)->key;
	v = hoist_checkpoint_metadata(c, 0)->value;
	CHECK_STR(k, "format");
	CHECK_STR(v, "pt");
	k = hoist_checkpoint_metadata(c, 1)->key;
	v = hoist_checkpoint_metadata(c, 1)->value;
	CHECK_STR(k, "only1");
	k = hoist_checkpoint_metadata(c, 2)->key;
	v = hoist_checkpoint_metadata(c, 2)->value;
	CHECK_STR(k, "only2");
	CHECK_STR(v, "y");
	CHECK(hoist_checkpoint_metadata(c, 3) == NULL);
	hoist_checkpoint_close(c);

	/* the same through the index path */
	CHECK_OK(hoist_checkpoint_open(test_join(dir, "model.safetensors.index.json"), NULL, &c));
	CHECK_EQ_INT(hoist_checkpoint_tensor_count(c), 3);
	CHECK_STR(hoist_checkpoint_architecture(c), "LlamaForCausalLM");
	hoist_checkpoint_close(c);

	/* a single shard by its own path: one file, its tensors only */
	CHECK_OK(hoist_checkpoint_open(test_join(dir, SHARD2), NULL, &c));
	CHECK_EQ_INT(hoist_checkpoint_tensor_count(c), 1);
	CHECK_EQ_INT(hoist_checkpoint_metadata_count(c), 2);
	hoist_checkpoint_close(c);
}

TEST(checkpoint_index_warnings_and_config)
{
	struct hoist_checkpoint *c;
	const char *dir = make_sharded("total", "{\"metadata\":{\"total_size\":29}," GOOD_MAP "}",
	                               "{\"architectures\": [\"X\"], \"torch_dtype\": 5");
	CHECK_OK(hoist_checkpoint_open(dir, NULL, &c));
	CHECK_EQ_INT(hoist_checkpoint_warning_count(c), 2);
	CHECK(strstr(hoist_checkpoint_warning(c, 0),
	             "metadata.total_size says 29 bytes but the shards' tensors hold 28"));
	CHECK(strstr(hoist_checkpoint_warning(c, 1), "config.json: not valid JSON"));
	CHECK(strstr(hoist_checkpoint_warning(c, 1), "config ignored"));
	CHECK(hoist_checkpoint_warning(c, 2) == NULL);
	CHECK(hoist_checkpoint_architecture(c) == NULL);
	hoist_checkpoint_close(c);

	dir = make_sharded("total_str", "{\"metadata\":{\"total_size\":\"28\"}," GOOD_MAP "}",
	                   "[\"not an object\"]");
	CHECK_OK(hoist_checkpoint_open(dir, NULL, &c));
	CHECK_EQ_INT(hoist_checkpoint_warning_count(c), 2);
	CHECK(strstr(hoist_checkpoint_warning(c, 0), "total_size is not a non-negative integer"));
	CHECK(strstr(hoist_checkpoint_warning(c, 1), "config.json: not a JSON object"));
	hoist_checkpoint_close(c);

	/* config fields of the wrong type are simply absent; torch_dtype wins over dtype */
	dir = make_sharded(
	        "config_types", "{" GOOD_MAP "}",
	        "{\"architectures\":\"Llama\",\"torch_dtype\":\"bfloat16\",\"dtype\":\"float32\"}");
	CHECK_OK(hoist_checkpoint_open(dir, NULL, &c));
	CHECK_EQ_INT(hoist_checkpoint_warning_count(c), 0);
	CHECK(hoist_checkpoint_architecture(c) == NULL);
	CHECK_STR(hoist_checkpoint_config_dtype(c), "bfloat16");
	hoist_checkpoint_close(c);

	/* config.json that is a directory: a warning */
	dir = make_sharded("config_dir", "{" GOOD_MAP "}", NULL);
	CHECK(mkdir(test_join(dir, "config.json"), 0755) == 0);
	CHECK_OK(hoist_checkpoint_open(dir, NULL, &c));
	CHECK_EQ_INT(hoist_checkpoint_warning_count(c), 1);
	CHECK(strstr(hoist_checkpoint_warning(c, 0),
	             "config.json: not a regular file; config ignored"));
	hoist_checkpoint_close(c);
}

static void expect_fail(const char *path, enum hoist_status status, const char *needle)
{
	struct hoist_checkpoint *c = (struct hoist_checkpoint *)1;
	enum hoist_status s = hoist_checkpoint_open(path, NULL, &c);
	if (s != status)
		FAIL("%s: %s, expected %s (%s)", path, hoist_status_name(s),
		     hoist_status_name(status), hoist_errmsg());
	CHECK(c == NULL);
	if (!strstr(hoist_errmsg(), needle))
		FAIL("%s: message \"%s\" lacks \"%s\"", path, hoist_errmsg(), needle);
}

TEST(checkpoint_index_mismatches)
{
	const char *dir;
	/* a tensor in another shard than the index says */
	dir = make_sharded("wrong_shard",
	                   "{\"weight_map\":{\"a\":\"" SHARD1 "\",\"b\":\"" SHARD2
	                   "\",\"c\":\"" SHARD2 "\"}}",
	                   NULL);
	expect_fail(dir, HOIST_ERR_FORMAT,
	            "model.safetensors.index.json: the index and the shards disagree on 1 tensor: "
	            "\"b\" is in " SHARD1 " (the index says " SHARD2 ")");
	/* the index names a tensor no shard has */
	dir = make_sharded("phantom",
	                   "{\"weight_map\":{\"a\":\"" SHARD1 "\",\"b\":\"" SHARD1
	                   "\",\"c\":\"" SHARD2 "\",\"zz\":\"" SHARD2 "\"}}",
	                   NULL);
	expect_fail(dir, HOIST_ERR_FORMAT,
	            "disagree on 1 tensor: \"zz\" is in no shard (the index says " SHARD2 ")");
	/* a shard holds a tensor the index does not list */
	dir = make_sharded("unlisted",
	                   "{\"weight_map\":{\"a\":\"" SHARD1 "\",\"c\":\"" SHARD2 "\"}}", NULL);
	expect_fail(dir, HOIST_ERR_FORMAT,
	            "disagree on 1 tensor: \"b\" in " SHARD1 " is not in the index");
	/* several at once: each listed */
	dir = make_sharded("several",
	                   "{\"weight_map\":{\"a\":\"" SHARD2 "\",\"x\":\"" SHARD1
	                   "\",\"c\":\"" SHARD2 "\"}}",
	                   NULL);
	expect_fail(dir, HOIST_ERR_FORMAT,
	            "disagree on 3 tensors: \"a\" is in " SHARD1 " (the index says " SHARD2 "); "
	            "\"x\" is in no shard (the index says " SHARD1 "); \"b\" in " SHARD1
	            " is not in the index");
	/* many: the count is right, the list is cut */
	char big[8192];
	int n = snprintf(big, sizeof big,
	                 "{\"weight_map\":{"
	                 "\"a\":\"" SHARD1 "\",\"b\":\"" SHARD1 "\",\"c\":\"" SHARD2 "\"");
	for (int i = 0; i < 20; i++)
		n += snprintf(big + n, sizeof big - n, ",\"ghost%d\":\"" SHARD1 "\"", i);
	snprintf(big + n, sizeof big - n, "}}");
	dir = make_sharded("many", big, NULL);
	expect_fail(dir, HOIST_ERR_FORMAT, "disagree on 20 tensors: \"ghost0\" is in no shard");
	CHECK(strstr(hoist_errmsg(), "; ...") != NULL);
	CHECK(strstr(hoist_errmsg(), "ghost19") == NULL);
}

TEST(checkpoint_index_broken)
{
	const char *dir;
	dir = make_sharded("missing_shard",
	                   "{\"weight_map\":{\"a\":\"" SHARD1 "\",\"b\":\"" SHARD1
	                   "\",\"c\":\"" SHARD2 "\",\"d\":\"model-00003-of-00003.safetensors\"}}",
	                   NULL);
	expect_fail(dir, HOIST_ERR_IO,
	            "model-00003-of-00003.safetensors: cannot open: No such file");
	dir = make_sharded("escape", "{\"weight_map\":{\"a\":\"../" SHARD1 "\"}}", NULL);
	expect_fail(dir, HOIST_ERR_FORMAT,
	            "weight_map entry \"a\" names shard \"../" SHARD1
	            "\", which is not a plain file name");
	dir = make_sharded("absolute", "{\"weight_map\":{\"a\":\"/etc/passwd\"}}", NULL);
	expect_fail(dir, HOIST_ERR_FORMAT,
	            "names shard \"/etc/passwd\", which is not a plain file name");
	dir = make_sharded("dotdot", "{\"weight_map\":{\"a\":\"..\"}}", NULL);
	expect_fail(dir, HOIST_ERR_FORMAT, "names shard \"..\"");
	dir = make_sharded("empty_name", "{\"weight_map\":{\"a\":\"\"}}", NULL);
	expect_fail(dir, HOIST_ERR_FORMAT, "names shard \"\"");
	dir = make_sharded("not_json", "{\"weight_map\":", NULL);
	expect_fail(dir, HOIST_ERR_FORMAT, "model.safetensors.index.json: not valid JSON");
	dir = make_sharded("no_map", "{\"metadata\":{}}", NULL);
	expect_fail(dir, HOIST_ERR_FORMAT, "no \"weight_map\" object");
	dir = make_sharded("map_list", "{\"weight_map\":[]}", NULL);
	expect_fail(dir, HOIST_ERR_FORMAT, "no \"weight_map\" object");
	dir = make_sharded("empty_map", "{\"weight_map\":{}}", NULL);
	expect_fail(dir, HOIST_ERR_FORMAT, "\"weight_map\" is empty");
	dir = make_sharded("map_value", "{\"weight_map\":{\"a\":1}}", NULL);
	expect_fail(dir, HOIST_ERR_FORMAT, "weight_map entry \"a\" is not a file name");
	dir = make_sharded("map_dup",
	                   "{\"weight_map\":{\"a\":\"" SHARD1 "\",\"a\":\"" SHARD1 "\"}}", NULL);
	expect_fail(dir, HOIST_ERR_FORMAT, "duplicate object key");
	/* a tensor name in two shards */
	dir = make_sharded("twice", "{" GOOD_MAP "}", NULL);
	fixture_write_safetensors(
	        test_join(dir, SHARD2),
	        "{\"c\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[0,16]},"
	        "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[16,20]}}",
	        NULL, 20);
	expect_fail(dir, HOIST_ERR_FORMAT,
	            "duplicate tensor name across shards: \"a\" in " SHARD1 " and " SHARD2);
	/* a bad shard: the message names that shard */
	dir = make_sharded("bad_shard", "{" GOOD_MAP "}", NULL);
	fixture_write_safetensors(
	        test_join(dir, SHARD2),
	        "{\"c\":{\"dtype\":\"F32\",\"shape\":[4,4],\"data_offsets\":[0,12]}}", NULL, 12);
	expect_fail(
	        dir, HOIST_ERR_FORMAT,
	        SHARD2
	        ": tensor \"c\": data_offsets [0, 12) do not match shape [4, 4] x F32 (64 bytes)");
	/* a shard that is a directory */
	dir = make_sharded("shard_dir", "{" GOOD_MAP "}", NULL);
	CHECK(unlink(test_join(dir, SHARD2)) == 0);
	CHECK(mkdir(test_join(dir, SHARD2), 0755) == 0);
	expect_fail(dir, HOIST_ERR_IO, SHARD2 ": not a regular file");
}

TEST(checkpoint_paths_and_arguments)
{
	struct hoist_checkpoint *c = NULL;
	expect_fail(test_path("nothing-here"), HOIST_ERR_IO,
	            "nothing-here: No such file or directory");
	expect_fail(test_tmpdir(), HOIST_ERR_IO,
	            "no model.safetensors.index.json or model.safetensors in this directory");
	CHECK_ERR(hoist_checkpoint_open(NULL, NULL, &c), HOIST_ERR_INVALID, "no path");
	CHECK_ERR(hoist_checkpoint_open("", NULL, &c), HOIST_ERR_INVALID, "no path");
	CHECK_ERR(hoist_checkpoint_open("x", NULL, NULL), HOIST_ERR_INVALID, "out is NULL");
	/* a directory with model.safetensors and config.json */
	const char *dir = test_path("single");
	CHECK(mkdir(dir, 0755) == 0);
	fixture_write_safetensors(test_join(dir, "model.safetensors"),
	                          "{\"w\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[0,3]}}",
	                          "abc", 3);
	test_write_file(test_join(dir, "config.json"), "{\"architectures\":[\"M\"]}", 23);
	CHECK_OK(hoist_checkpoint_open(dir, NULL, &c));
	CHECK_EQ_INT(hoist_checkpoint_tensor_count(c), 1);
	CHECK_STR(hoist_checkpoint_architecture(c), "M");
	CHECK(hoist_checkpoint_config_dtype(c) == NULL);
	CHECK_STR(hoist_checkpoint_shard(c, 0)->path, test_join(dir, "model.safetensors"));
	hoist_checkpoint_close(c);
	/* NULL handles are harmless */
	hoist_checkpoint_close(NULL);
	CHECK_EQ_INT(hoist_checkpoint_tensor_count(NULL), 0);
	CHECK_EQ_INT(hoist_checkpoint_shard_count(NULL), 0);
	CHECK(hoist_checkpoint_tensor(NULL, 0) == NULL);
	CHECK(hoist_checkpoint_shard(NULL, 0) == NULL);
	CHECK(hoist_checkpoint_warning(NULL, 0) == NULL);
	size_t i;
	CHECK_ERR(hoist_checkpoint_find(NULL, "a", &i), HOIST_ERR_INVALID, "NULL");
}

/* ---- faults ------------------------------------------------------------------------- */

/* ENOMEM at each allocation in turn: each fails cleanly with HOIST_ERR_NOMEM (ASan
 * reports any leak when the test process exits) until the count passes the last. */
TEST(checkpoint_fault_each_allocation)
{
	char tiny[4096], made[4096];
	snprintf(tiny, sizeof tiny, "%s", test_join(test_data_dir(), "reference/tiny-qwen2-vl"));
	snprintf(made, sizeof made, "%s",
	         make_sharded("faults", "{\"metadata\":{\"total_size\":1}," GOOD_MAP "}",
	                      "{\"architectures\":[\"A\"],\"dtype\":\"bfloat16\"}"));
	const char *paths[] = {tiny, made};
	for (size_t p = 0; p < 2; p++) {
		long n;
		for (n = 1; n < 100000; n++) {
			struct hoist_checkpoint *c = NULL;
			hoist_fault_set(HOIST_FAULT_ALLOC, n, ENOMEM, false);
			enum hoist_status s = hoist_checkpoint_open(paths[p], NULL, &c);
			hoist_fault_clear_all();
			if (s == HOIST_OK) {
				/* past the last allocation: a complete, correct result */
				CHECK_EQ_INT(hoist_checkpoint_tensor_count(c), p == 0 ? 70 : 3);
				CHECK(hoist_checkpoint_architecture(c) != NULL);
				CHECK_EQ_INT(hoist_checkpoint_warning_count(c), p == 0 ? 0 : 1);
				hoist_checkpoint_close(c);
				break;
			}
			CHECK(c == NULL);
			if (s != HOIST_ERR_NOMEM)
				FAIL("%s: allocation %ld: %s (%s)", paths[p], n,
				     hoist_status_name(s), hoist_errmsg());
			CHECK(strstr(hoist_errmsg(), "out of memory") != NULL);
		}
		CHECK(n > 15); /* it did reach the allocations */
		/* every allocation failing from the first */
		struct hoist_checkpoint *c = NULL;
		hoist_fault_set(HOIST_FAULT_ALLOC, 1, ENOMEM, true);
		CHECK_ERR(hoist_checkpoint_open(paths[p], NULL, &c), HOIST_ERR_NOMEM,
		          "out of memory");
		hoist_fault_clear_all();
		CHECK(c == NULL);
	}
	test_check_no_leaks();
}

TEST(checkpoint_fault_io)
{
	const char *file = test_join(test_data_dir(), "reference/all_dtypes.safetensors");
	struct hoist_checkpoint *c = NULL;
	/* EIO on each read in turn (the length, the header) */
	long n;
	for (n = 1; n < 100; n++) {
		hoist_fault_set(HOIST_FAULT_READ, n, EIO, false);
		enum hoist_status s = hoist_checkpoint_open(file, NULL, &c);
		hoist_fault_clear_all();
		if (s == HOIST_OK)
			break;
		CHECK(c == NULL);
		CHECK_EQ_INT(s, HOIST_ERR_IO);
		CHECK(strstr(hoist_errmsg(), "all_dtypes.safetensors: cannot read the"));
		CHECK(strstr(hoist_errmsg(), "Input/output error"));
	}
	CHECK_EQ_INT(n, 3); /* two reads: the length, then the header */
	CHECK_EQ_INT(hoist_checkpoint_tensor_count(c), 21);
	hoist_checkpoint_close(c);

	/* short reads everywhere: the same result, read in pieces */
	hoist_fault_set(HOIST_FAULT_SHORT_READ, 1, 0, true);
	CHECK_OK(hoist_checkpoint_open(test_join(test_data_dir(), "reference/tiny-qwen2-vl"), NULL,
	                               &c));
	hoist_fault_clear_all();
	CHECK_EQ_INT(hoist_checkpoint_tensor_count(c), 70);
	CHECK_STR(hoist_checkpoint_architecture(c), "Qwen2VLForConditionalGeneration");
	hoist_checkpoint_close(c);

	/* open failing: the message names the file and the error */
	hoist_fault_set(HOIST_FAULT_OPEN, 1, EACCES, false);
	CHECK_ERR(hoist_checkpoint_open(file, NULL, &c), HOIST_ERR_IO,
	          "all_dtypes.safetensors: cannot open: Permission denied");
	hoist_fault_clear_all();
	/* in a sharded checkpoint: each open in turn (the index, 3 shards, config.json) */
	const char *tiny = test_join(test_data_dir(), "reference/tiny-qwen2-vl");
	for (n = 1; n <= 5; n++) {
		hoist_fault_set(HOIST_FAULT_OPEN, n, EMFILE, false);
		enum hoist_status s = hoist_checkpoint_open(tiny, NULL, &c);
		hoist_fault_clear_all();
		if (n <= 4) {
			CHECK_EQ_INT(s, HOIST_ERR_IO);
			CHECK(strstr(hoist_errmsg(), "cannot open: Too many open files"));
		} else {
			/* config.json unreadable: a warning, not an error */
			CHECK_OK(s);
			CHECK_EQ_INT(hoist_checkpoint_warning_count(c), 1);
			CHECK(strstr(hoist_checkpoint_warning(c, 0), "config.json: cannot open"));
			CHECK(hoist_checkpoint_architecture(c) == NULL);
			hoist_checkpoint_close(c);
		}
	}
	test_check_no_leaks();
}

/* ---- shard headers read on several threads ------------------------------------------ */

#define MANY_SHARDS 12

/* Shard s's header: one tensor "t<s>", U8 [s + 1]. */
static const char *many_header(int s)
{
	static char header[256];
	snprintf(header, sizeof header,
	         "{\"t%d\":{\"dtype\":\"U8\",\"shape\":[%d],\"data_offsets\":[0,%d]}}", s, s + 1,
	         s + 1);
	return header;
}

/* MANY_SHARDS shards of one tensor each ("t0" .. "t11") and an index. */
static const char *make_many(const char *name)
{
	static char dir[4096];
	char file[64], tname[16], index[4096];
	int n = snprintf(index, sizeof index, "{\"weight_map\":{");
	snprintf(dir, sizeof dir, "%s", test_path(name));
	CHECK(mkdir(dir, 0755) == 0);
	for (int s = 0; s < MANY_SHARDS; s++) {
		snprintf(file, sizeof file, "model-%05d-of-%05d.safetensors", s + 1, MANY_SHARDS);
		snprintf(tname, sizeof tname, "t%d", s);
		fixture_write_safetensors(test_join(dir, file), many_header(s), NULL,
		                          (size_t)s + 1);
		n += snprintf(index + n, sizeof index - (size_t)n, "%s\"%s\":\"%s\"", s ? "," : "",
		              tname, file);
	}
	snprintf(index + n, sizeof index - (size_t)n, "}}");
	test_write_file(test_join(dir, "model.safetensors.index.json"), index, strlen(index));
	return dir;
}

static void break_shard(const char *dir, int s, const char *header)
{
	char file[64];
	snprintf(file, sizeof file, "model-%05d-of-%05d.safetensors", s + 1, MANY_SHARDS);
	fixture_write_safetensors(test_join(dir, file), header, NULL, 0);
}

/* Whatever the thread count and however the threads interleave, the same checkpoint
 * comes out, and a broken checkpoint reports its first broken shard. */
TEST(checkpoint_threads_same_result_first_error)
{
	static const unsigned threads[] = {1, 2, 3, 8, 0};
	const char *dir = make_many("many");
	for (size_t k = 0; k < TEST_ARRAY_SIZE(threads); k++) {
		hoist_checkpoint_set_header_threads(threads[k]);
		struct hoist_checkpoint *c;
		CHECK_OK(hoist_checkpoint_open(dir, NULL, &c));
		CHECK_EQ_INT(hoist_checkpoint_shard_count(c), MANY_SHARDS);
		CHECK_EQ_INT(hoist_checkpoint_tensor_count(c), MANY_SHARDS);
		for (int s = 0; s < MANY_SHARDS; s++) {
			const struct hoist_tensor_info *t = hoist_checkpoint_tensor(c, (size_t)s);
			char want[16];
			snprintf(want, sizeof want, "t%d", s);
			CHECK_STR(t->name, want);
			CHECK_EQ_INT(t->shard, s);
			CHECK_EQ_U64(t->nbytes, (uint64_t)s + 1);
			CHECK_EQ_U64(t->offset, 8 + strlen(many_header(s)));
			CHECK_EQ_U64(hoist_checkpoint_shard(c, (size_t)s)->size,
			             8 + strlen(many_header(s)) + (size_t)s + 1);
		}
		hoist_checkpoint_close(c);
	}

	/* shards 4, 7 and 10 broken three ways: shard 4 is always the one reported */
	dir = make_many("many_broken");
	break_shard(dir, 4, "{\"t4\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,1]}}");
	break_shard(dir, 7, "{\"t7\":");
	char file[64];
	snprintf(file, sizeof file, "model-%05d-of-%05d.safetensors", 11, MANY_SHARDS);
	CHECK(unlink(test_join(dir, file)) == 0);
	char want[4200];
	snprintf(want, sizeof want,
	         "%s/model-00005-of-00012.safetensors: tensor \"t4\": data_offsets [0, 1) do not "
	         "match shape [2] x U8 (2 bytes)",
	         dir);
	for (size_t k = 0; k < TEST_ARRAY_SIZE(threads); k++) {
		hoist_checkpoint_set_header_threads(threads[k]);
		for (int r = 0; r < 50; r++) {
			struct hoist_checkpoint *c = (struct hoist_checkpoint *)1;
			CHECK_EQ_INT(hoist_checkpoint_open(dir, NULL, &c), HOIST_ERR_FORMAT);
			CHECK(c == NULL);
			CHECK_STR(hoist_errmsg(), want);
		}
	}
	/* nesting as deep as jansson parses (on a worker thread), then rejected */
	{
		static char deep[8192];
		int depth = 2000;
		int n = snprintf(
		        deep, sizeof deep,
		        "{\"t2\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0],\"x\":");
		memset(deep + n, '[', (size_t)depth);
		memset(deep + n + depth, ']', (size_t)depth);
		memcpy(deep + n + 2 * depth, "}}", 3);
		break_shard(dir, 2, deep);
		snprintf(want, sizeof want,
		         "%s/model-00003-of-00012.safetensors: header nests deeper than 127 levels",
		         dir);
		for (size_t k = 0; k < TEST_ARRAY_SIZE(threads); k++) {
			hoist_checkpoint_set_header_threads(threads[k]);
			struct hoist_checkpoint *c = NULL;
			CHECK_ERR(hoist_checkpoint_open(dir, NULL, &c), HOIST_ERR_FORMAT, want);
		}
		char file2[64];
		snprintf(file2, sizeof file2, "model-%05d-of-%05d.safetensors", 3, MANY_SHARDS);
		fixture_write_safetensors(test_join(dir, file2), many_header(2), NULL, 3);
	}
	/* with shard 4 mended, shard 7's error; then shard 10's */
	break_shard(dir, 4, "{\"t4\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0]}}");
	for (size_t k = 0; k < TEST_ARRAY_SIZE(threads); k++) {
		hoist_checkpoint_set_header_threads(threads[k]);
		struct hoist_checkpoint *c = NULL;
		CHECK_ERR(hoist_checkpoint_open(dir, NULL, &c), HOIST_ERR_FORMAT,
		          "model-00008-of-00012.safetensors: header is not valid JSON");
	}
	break_shard(dir, 7, "{\"t7\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0]}}");
	for (size_t k = 0; k < TEST_ARRAY_SIZE(threads); k++) {
		hoist_checkpoint_set_header_threads(threads[k]);
		struct hoist_checkpoint *c = NULL;
		CHECK_ERR(
		        hoist_checkpoint_open(dir, NULL, &c), HOIST_ERR_IO,
		        "model-00011-of-00012.safetensors: cannot open: No such file or directory");
	}
	hoist_checkpoint_set_header_threads(0);
	test_check_no_leaks();
}

/* ENOMEM at each allocation, and EMFILE at each open, with 8 threads on 12 shards:
 * the allocation that fails is no longer a fixed site, but each run fails cleanly
 * with the fault's status and message, and runs past the last succeed. */
TEST(checkpoint_threads_faults)
{
	const char *dir = make_many("many_faults");
	hoist_checkpoint_set_header_threads(8);
	long n;
	for (n = 1; n < 100000; n++) {
		struct hoist_checkpoint *c = (struct hoist_checkpoint *)1;
		hoist_fault_set(HOIST_FAULT_ALLOC, n, ENOMEM, false);
		enum hoist_status s = hoist_checkpoint_open(dir, NULL, &c);
		hoist_fault_clear_all();
		if (s == HOIST_OK) {
			CHECK_EQ_INT(hoist_checkpoint_tensor_count(c), MANY_SHARDS);
			CHECK_STR(hoist_checkpoint_tensor(c, MANY_SHARDS - 1)->name, "t11");
			hoist_checkpoint_close(c);
			break;
		}
		CHECK(c == NULL);
		if (s != HOIST_ERR_NOMEM)
			FAIL("allocation %ld: %s (%s)", n, hoist_status_name(s), hoist_errmsg());
		CHECK(strstr(hoist_errmsg(), "out of memory") != NULL);
	}
	CHECK(n > 4 * MANY_SHARDS); /* at least the path and the header's pools of each */
	for (n = 1; n <= MANY_SHARDS + 1; n++) {
		struct hoist_checkpoint *c = (struct hoist_checkpoint *)1;
		hoist_fault_set(HOIST_FAULT_OPEN, n, EMFILE, false);
		CHECK_ERR(hoist_checkpoint_open(dir, NULL, &c), HOIST_ERR_IO,
		          "cannot open: Too many open files");
		hoist_fault_clear_all();
		CHECK(c == NULL);
	}
	/* every allocation failing, and every read */
	struct hoist_checkpoint *c = NULL;
	hoist_fault_set(HOIST_FAULT_ALLOC, 1, ENOMEM, true);
	CHECK_ERR(hoist_checkpoint_open(dir, NULL, &c), HOIST_ERR_NOMEM, "out of memory");
	hoist_fault_clear_all();
	hoist_fault_set(HOIST_FAULT_READ, 2, EIO, true);
	CHECK_ERR(hoist_checkpoint_open(dir, NULL, &c), HOIST_ERR_IO, "Input/output error");
	hoist_fault_clear_all();
	CHECK(c == NULL);
	hoist_checkpoint_set_header_threads(0);
	test_check_no_leaks();
}

/* Files people hand a safetensors reader by mistake are named for what they are. */
TEST(checkpoint_says_what_a_wrong_file_is)
{
	expect_fail(test_join(test_data_dir(), "reference/tiny-qwen2-vl.pytorch_model.bin"),
	            HOIST_ERR_FORMAT,
	            "tiny-qwen2-vl.pytorch_model.bin: a PyTorch checkpoint (zip and pickle, as "
	            "torch.save writes it), not safetensors");
	static const struct {
		const char *name, *bytes, *says;
	} files[] = {
	        {"lfs.safetensors",
	         "version https://git-lfs.github.com/spec/v1\noid sha256:4d7a\nsize 3898638336\n",
	         "lfs.safetensors: a Git LFS pointer, not the weights: they were never downloaded"},
	        {"model.gguf", "GGUF\x03\0\0\0\x10\0\0\0\0\0\0\0\x05\0\0\0\0\0\0\0",
	         "model.gguf: a GGUF file (llama.cpp's format), not safetensors"},
	        {"old.pt", "\x80\x02\x8a\x0alp\x18\x19\x1f\x29\xc0\x4f\x00\x00",
	         "old.pt: a pickle"},
	        {"x.npy", "\x93NUMPY\x01\x01v\x01{'descr': '<f4', 'fortran_order': False}",
	         "x.npy: a NumPy .npy file, not safetensors"},
	        {"index.safetensors", "{\"metadata\": {}, \"weight_map\": {}}\n",
	         "index.safetensors: a JSON file, not safetensors"},
	};
	for (size_t i = 0; i < TEST_ARRAY_SIZE(files); i++) {
		const char *p = test_path(files[i].name);
		size_t n = strlen(files[i].bytes);
		if (files[i].bytes[0] == 'G')
			n = 24; /* holds NULs */
		test_write_file(p, files[i].bytes, n);
		expect_fail(p, HOIST_ERR_FORMAT, files[i].says);
	}
	/* a real header whose length happens to look like "PK..." is still read as one:
	 * the naming applies only where the length cannot be a header's */
	const char *ok = test_path("fine.safetensors");
	fixture_write_safetensors(
	        ok, "{\"t\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", "x", 1);
	struct hoist_checkpoint *c;
	CHECK_OK(hoist_checkpoint_open(ok, NULL, &c));
	hoist_checkpoint_close(c);

	/* directories holding other formats */
	const char *pt = test_path("pt");
	CHECK_EQ_INT(mkdir(pt, 0755), 0);
	test_write_file(test_join(pt, "pytorch_model.bin"), "PK\x03\x04", 4);
	expect_fail(pt, HOIST_ERR_IO,
	            "no model.safetensors.index.json or model.safetensors in this directory; it "
	            "holds PyTorch weights (pytorch_model.bin, *.pt), not safetensors");
	const char *other = test_path("other");
	CHECK_EQ_INT(mkdir(other, 0755), 0);
	test_write_file(test_join(other, "adapter_model.safetensors"), "x", 1);
	expect_fail(other, HOIST_ERR_IO,
	            "; it holds adapter_model.safetensors: pass that file itself");
	const char *gg = test_path("gg");
	CHECK_EQ_INT(mkdir(gg, 0755), 0);
	test_write_file(test_join(gg, "q4.gguf"), "GGUF", 4);
	expect_fail(gg, HOIST_ERR_IO,
	            "; it holds GGUF files (llama.cpp's format), not safetensors");
	const char *empty = test_path("empty");
	CHECK_EQ_INT(mkdir(empty, 0755), 0);
	expect_fail(empty, HOIST_ERR_IO, "in this directory");
	CHECK(strstr(hoist_errmsg(), "it holds") == NULL);
}
