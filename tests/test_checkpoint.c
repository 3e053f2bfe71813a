/* test_checkpoint.c - opening checkpoints: the reference files against their
 * manifest, the full-size 7B layout, directories and index files, the index
 * cross-checks, config.json, and injected allocation and I/O faults. */
#include "fixtures.h"
#include "internal.h"
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
		{"torch.float64", "F64"},  {"torch.float32", "F32"},  {"torch.float16", "F16"},
		{"torch.bfloat16", "BF16"}, {"torch.int64", "I64"},   {"torch.int32", "I32"},
		{"torch.int16", "I16"},    {"torch.int8", "I8"},      {"torch.uint64", "U64"},
		{"torch.uint32", "U32"},   {"torch.uint16", "U16"},   {"torch.uint8", "U8"},
		{"torch.bool", "BOOL"},    {"torch.complex64", "C64"},
		{"torch.float8_e4m3fn", "F8_E4M3"}, {"torch.float8_e5m2", "F8_E5M2"},
		{"torch.float8_e8m0fnu", "F8_E8M0"}, {"torch.float4_e2m1fn_x2", "F4"},
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
		const char *path = hoist_checkpoint_shard_path(ckpt, s);
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
		json_object_foreach(json_object_get(entry, "metadata"), mk, mv) {
			bool found = false;
			for (size_t i = 0; i < hoist_checkpoint_metadata_count(ckpt); i++) {
				const char *k, *v;
				hoist_checkpoint_metadata(ckpt, i, &k, &v);
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
			const char *want = torch_to_st(json_string_value(json_object_get(m, "dtype")));
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
	CHECK_OK(hoist_checkpoint_open(test_join(test_data_dir(), "reference/all_dtypes.safetensors"),
				       NULL, &c));
	CHECK_EQ_INT(hoist_checkpoint_shard_count(c), 1);
	CHECK_EQ_INT(hoist_checkpoint_tensor_count(c), 21);
	CHECK_EQ_INT(check_against_manifest(c, manifest, ""), 21);
	/* the whole data region, exactly */
	CHECK_EQ_U64(hoist_checkpoint_total_bytes(c), 133501);
	CHECK_EQ_INT(hoist_checkpoint_metadata_count(c), 2);
	const char *k, *v;
	hoist_checkpoint_metadata(c, 0, &k, &v);
	CHECK_STR(k, "format");
	CHECK_STR(v, "pt");
	hoist_checkpoint_metadata(c, 1, &k, &v);
	CHECK_STR(k, "note");
	CHECK_STR(v, "reference vectors");
	CHECK(hoist_checkpoint_architecture(c) == NULL);
	CHECK_EQ_INT(hoist_checkpoint_warning_count(c), 0);
	/* file order: by data offset */
	for (size_t i = 1; i < hoist_checkpoint_tensor_count(c); i++)
		CHECK(hoist_checkpoint_tensor(c, i - 1)->offset <= hoist_checkpoint_tensor(c, i)->offset);
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
		const char *p = hoist_checkpoint_shard_path(c, s);
		CHECK(strlen(p) > strlen(want) && strcmp(p + strlen(p) - strlen(want), want) == 0);
		struct stat st;
		CHECK(stat(p, &st) == 0);
		CHECK_EQ_U64(hoist_checkpoint_shard_size(c, s), st.st_size);
	}
	/* numbering: shard, then offset */
	for (size_t i = 1; i < 70; i++) {
		const struct hoist_tensor_info *a = hoist_checkpoint_tensor(c, i - 1);
		const struct hoist_tensor_info *b = hoist_checkpoint_tensor(c, i);
		CHECK(a->shard < b->shard || (a->shard == b->shard && a->offset + a->nbytes == b->offset));
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
	CHECK_EQ_U64(hoist_checkpoint_shard_size(c, 0), 3898638336ull);
	CHECK_EQ_U64(hoist_checkpoint_shard_size(c, 4), 1089994880ull);

	/* spot checks against shard-headers.json itself */
	json_error_t e;
	json_t *sh = json_load_file(test_join(test_join(test_data_dir(), "qwen2-vl-7b"),
					      "shard-headers.json"), 0, &e);
	CHECK(sh != NULL);
	const char *checks[][2] = {
		{"lm_head.weight", "model-00005-of-00005.safetensors"},
		{"model.language_model.embed_tokens.weight", "model-00001-of-00005.safetensors"},
		{"model.language_model.layers.10.mlp.down_proj.weight", "model-00002-of-00005.safetensors"},
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
		const char *p = hoist_checkpoint_shard_path(c, ti->shard);
		CHECK_STR(p + strlen(p) - strlen(checks[k][1]), checks[k][1]);
		json_t *off = json_object_get(t, "data_offsets");
		CHECK_EQ_U64(ti->offset, 8 + strlen(htext) + json_integer_value(json_array_get(off, 0)));
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
