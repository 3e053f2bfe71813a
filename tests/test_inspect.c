/* test_inspect.c - `hoist inspect`: its text and JSON output on the reference
 * checkpoints and the 7B layout, checked against the manifest, the files and the
 * configs, and its errors. */
#include "fixtures.h"
#include "test.h"

#include <fcntl.h>
#include <jansson.h>
#include <sys/stat.h>
#include <unistd.h>

static json_t *inspect_json(const char *path)
{
	char *out;
	int rc = test_run(&out, "%s inspect --json '%s' 2>/dev/null", test_hoist_bin(), path);
	if (rc != 0)
		FAIL("hoist inspect --json %s exited %d: %s", path, rc, out);
	json_error_t e;
	json_t *j = json_loads(out, 0, &e);
	if (!json_is_object(j))
		FAIL("hoist inspect --json %s: not one JSON object (%s): %.300s", path, e.text,
		     out);
	free(out);
	return j;
}

static char *inspect_text(const char *path)
{
	char *out;
	int rc = test_run(&out, "%s inspect '%s'", test_hoist_bin(), path);
	if (rc != 0)
		FAIL("hoist inspect %s exited %d: %s", path, rc, out);
	return out;
}

#define CHECK_HAS(text, needle)                                                                    \
	do {                                                                                       \
		if (!strstr((text), (needle)))                                                     \
			FAIL("output lacks \"%s\":\n%s", (needle), (text));                        \
	} while (0)

static uint64_t file_size(const char *path)
{
	struct stat st;
	CHECK(stat(path, &st) == 0);
	return (uint64_t)st.st_size;
}

/* JSON tensors against the manifest: name, dtype, shape, and sha256 of the bytes
 * at file/offset/nbytes. */
static void check_json_tensors(json_t *j, json_t *manifest, const char *prefix)
{
	json_t *tensors = json_object_get(j, "tensors");
	CHECK(json_is_array(tensors));
	size_t i;
	json_t *t;
	uint64_t total = 0;
	json_array_foreach(tensors, i, t)
	{
		const char *file = json_string_value(json_object_get(t, "file"));
		const char *name = json_string_value(json_object_get(t, "name"));
		CHECK(file && name);
		const char *base = strrchr(file, '/') ? strrchr(file, '/') + 1 : file;
		char key[512];
		snprintf(key, sizeof key, "%s%s", prefix, base);
		json_t *m = json_object_get(
		        json_object_get(json_object_get(manifest, key), "tensors"), name);
		if (!m)
			FAIL("%s: %s not in the manifest", key, name);
		/* the manifest's shape (F4 packs two per element in torch) */
		json_t *ms = json_object_get(m, "shape"), *hs = json_object_get(t, "shape");
		const char *dt = json_string_value(json_object_get(t, "dtype"));
		CHECK_EQ_INT(json_array_size(hs), json_array_size(ms));
		for (size_t d = 0; d < json_array_size(ms); d++) {
			long long want = json_integer_value(json_array_get(ms, d));
			if (strcmp(dt, "F4") == 0 && d + 1 == json_array_size(ms))
				want *= 2;
			CHECK_EQ_INT(json_integer_value(json_array_get(hs, d)), want);
		}
		long long off = json_integer_value(json_object_get(t, "offset"));
		long long nb = json_integer_value(json_object_get(t, "nbytes"));
		int fd = open(file, O_RDONLY);
		CHECK(fd >= 0);
		char *buf = malloc(nb ? (size_t)nb : 1);
		CHECK(pread(fd, buf, (size_t)nb, off) == nb);
		close(fd);
		char hex[65];
		test_sha256_hex(buf, (size_t)nb, hex);
		free(buf);
		CHECK_STR(hex, json_string_value(json_object_get(m, "sha256")));
		total += (uint64_t)nb;
	}
	CHECK_EQ_U64(json_integer_value(json_object_get(j, "total_bytes")), total);
	CHECK_EQ_INT(json_integer_value(json_object_get(j, "tensor_count")),
	             json_array_size(tensors));
}

static json_t *manifest(void)
{
	json_error_t e;
	json_t *m = json_load_file(test_join(test_data_dir(), "reference/manifest.json"), 0, &e);
	CHECK(m != NULL);
	return m;
}

TEST(inspect_json_tiny_qwen)
{
	json_t *man = manifest();
	char dir[4096];
	snprintf(dir, sizeof dir, "%s/reference/tiny-qwen2-vl", test_data_dir());
	json_t *j = inspect_json(dir);
	check_json_tensors(j, man, "tiny-qwen2-vl/");
	CHECK_EQ_INT(json_integer_value(json_object_get(j, "tensor_count")), 70);
	json_t *shards = json_object_get(j, "shards");
	CHECK_EQ_INT(json_array_size(shards), 3);
	for (size_t s = 0; s < 3; s++) {
		char want[4200];
		snprintf(want, sizeof want, "%s/model-0000%zu-of-00003.safetensors", dir, s + 1);
		CHECK_STR(json_string_value(json_array_get(shards, s)), want);
		CHECK_EQ_U64(
		        json_integer_value(json_array_get(json_object_get(j, "shard_sizes"), s)),
		        file_size(want));
	}
	/* every tensor is BF16: the dtypes map has that one entry, all the bytes */
	json_t *dtypes = json_object_get(j, "dtypes");
	CHECK_EQ_INT(json_object_size(dtypes), 1);
	CHECK_EQ_U64(json_integer_value(json_object_get(dtypes, "BF16")),
	             json_integer_value(json_object_get(j, "total_bytes")));
	json_t *meta = json_object_get(j, "metadata");
	CHECK_EQ_INT(json_object_size(meta), 1);
	CHECK_STR(json_string_value(json_object_get(meta, "format")), "pt");
	CHECK_STR(json_string_value(json_object_get(j, "architecture")),
	          "Qwen2VLForConditionalGeneration");
	CHECK_EQ_INT(json_array_size(json_object_get(j, "warnings")), 0);
	/* offsets are absolute and in file order within each shard */
	json_t *tensors = json_object_get(j, "tensors");
	for (size_t i = 1; i < json_array_size(tensors); i++) {
		json_t *a = json_array_get(tensors, i - 1), *b = json_array_get(tensors, i);
		if (strcmp(json_string_value(json_object_get(a, "file")),
		           json_string_value(json_object_get(b, "file"))) == 0)
			CHECK_EQ_INT(json_integer_value(json_object_get(a, "offset")) +
			                     json_integer_value(json_object_get(a, "nbytes")),
			             json_integer_value(json_object_get(b, "offset")));
	}
	/* groups: 3 text layers, 2 vision blocks, from the config */
	json_t *cfg = json_load_file(test_join(dir, "config.json"), 0, NULL);
	CHECK(cfg != NULL);
	json_t *tc = json_object_get(cfg, "text_config");
	long long layers = json_integer_value(json_object_get(tc ? tc : cfg, "num_hidden_layers"));
	long long blocks =
	        json_integer_value(json_object_get(json_object_get(cfg, "vision_config"), "depth"));
	CHECK(layers > 0 && blocks > 0);
	size_t nl = 0, nb = 0, i;
	json_t *g;
	json_array_foreach(json_object_get(j, "groups"), i, g)
	{
		const char *p = json_string_value(json_object_get(g, "prefix"));
		nl += strncmp(p, "model.layers.", 13) == 0;
		nb += strncmp(p, "visual.blocks.", 14) == 0;
	}
	CHECK_EQ_INT(nl, layers);
	CHECK_EQ_INT(nb, blocks);
	json_decref(cfg);
	json_decref(j);
	json_decref(man);
}

TEST(inspect_json_all_dtypes)
{
	json_t *man = manifest();
	const char *file = test_join(test_data_dir(), "reference/all_dtypes.safetensors");
	json_t *j = inspect_json(file);
	check_json_tensors(j, man, "");
	CHECK_EQ_INT(json_integer_value(json_object_get(j, "tensor_count")), 21);
	/* dtypes: 18 distinct names here (F32 three times, F16 twice), summing to total */
	json_t *dtypes = json_object_get(j, "dtypes");
	const char *k;
	json_t *v;
	long long sum = 0;
	json_object_foreach(dtypes, k, v) sum += json_integer_value(v);
	CHECK_EQ_INT(sum, json_integer_value(json_object_get(j, "total_bytes")));
	CHECK_EQ_INT(json_integer_value(json_object_get(dtypes, "F32")), (257 * 129 + 1 + 15) * 4);
	CHECK_EQ_INT(json_integer_value(json_object_get(dtypes, "F4")), 15);
	json_t *meta = json_object_get(j, "metadata");
	json_t *mm = json_object_get(json_object_get(man, "all_dtypes.safetensors"), "metadata");
	CHECK(json_equal(meta, mm));
	CHECK(json_is_null(json_object_get(j, "architecture")));
	CHECK_STR(json_string_value(json_array_get(json_object_get(j, "largest"), 0)), "big_f32");
	json_decref(j);
	json_decref(man);
}

TEST(inspect_text_tiny_qwen)
{
	char dir[4096];
	snprintf(dir, sizeof dir, "%s/reference/tiny-qwen2-vl", test_data_dir());
	char *out = inspect_text(dir);
	struct hoist_checkpoint *c;
	CHECK_OK(hoist_checkpoint_open(dir, NULL, &c));
	char want[4200];
	snprintf(want, sizeof want, "checkpoint: %s\n", dir);
	CHECK_HAS(out, want);
	snprintf(want, sizeof want, "tensors: %zu, ", hoist_checkpoint_tensor_count(c));
	CHECK_HAS(out, want);
	snprintf(want, sizeof want, "(%llu bytes)",
	         (unsigned long long)hoist_checkpoint_total_bytes(c));
	CHECK_HAS(out, want);
	CHECK_HAS(out, "shards: 3\n");
	for (size_t s = 0; s < 3; s++)
		CHECK_HAS(out, hoist_checkpoint_shard(c, s)->path);
	CHECK_HAS(out, "config: Qwen2VLForConditionalGeneration, dtype bfloat16\n");
	snprintf(want, sizeof want, "BF16     %6zu tensors", hoist_checkpoint_tensor_count(c));
	CHECK_HAS(out, want);
	CHECK_HAS(out, "metadata:\n  format = pt\n");
	/* the largest tensor, by the library's numbers */
	size_t big = 0;
	for (size_t i = 1; i < hoist_checkpoint_tensor_count(c); i++)
		if (hoist_checkpoint_tensor(c, i)->nbytes > hoist_checkpoint_tensor(c, big)->nbytes)
			big = i;
	char *largest = strstr(out, "largest tensors:\n");
	CHECK(largest != NULL);
	char *first = strchr(largest, '\n') + 1;
	char *eol = strchr(first, '\n');
	*eol = '\0';
	CHECK_HAS(first, hoist_checkpoint_tensor(c, big)->name);
	*eol = '\n';
	CHECK_HAS(out, "layer groups:\n");
	CHECK_HAS(out, "model.layers.N.");
	CHECK_HAS(out, "x 3 groups");
	CHECK_HAS(out, "visual.blocks.N.");
	CHECK_HAS(out, "x 2 groups");
	CHECK(strstr(out, "warnings:") == NULL);
	hoist_checkpoint_close(c);
	free(out);
}

TEST(inspect_text_qwen7b)
{
	const char *dir = fixture_qwen7b_sparse();
	char *out = inspect_text(dir);
	CHECK_HAS(out, "tensors: 730, 16.58 GB (16582751232 bytes)");
	CHECK_HAS(out, "shards: 5\n");
	CHECK_HAS(out, "BF16        730 tensors");
	/* a text layer's bytes, summed from the config's sizes: attention (q, k, v with
	 * biases; o), MLP (gate, up, down) and two norms, in BF16 */
	json_t *cfg = json_load_file(test_join(dir, "config.json"), 0, NULL);
	CHECK(cfg != NULL);
	long long h = json_integer_value(json_object_get(cfg, "hidden_size"));
	long long inter = json_integer_value(json_object_get(cfg, "intermediate_size"));
	long long heads = json_integer_value(json_object_get(cfg, "num_attention_heads"));
	long long kv = json_integer_value(json_object_get(cfg, "num_key_value_heads"));
	long long layers = json_integer_value(json_object_get(cfg, "num_hidden_layers"));
	long long kvdim = h / heads * kv;
	long long params = h * h + h + 2 * (h * kvdim + kvdim) + h * h + 3 * h * inter + 2 * h;
	char want[256];
	snprintf(want, sizeof want, "x %lld groups, %.2f MB each", layers,
	         (double)(params * 2) / 1e6);
	CHECK_HAS(out, "model.language_model.layers.N.");
	CHECK_HAS(out, want);
	long long depth =
	        json_integer_value(json_object_get(json_object_get(cfg, "vision_config"), "depth"));
	snprintf(want, sizeof want, "x %lld groups", depth);
	CHECK_HAS(out, "model.visual.blocks.N.");
	CHECK_HAS(out, want);
	json_decref(cfg);
	/* the two embedding-sized tensors lead the largest list */
	char *largest = strstr(out, "largest tensors:\n");
	CHECK(largest != NULL);
	char *third = largest;
	for (int i = 0; i < 3; i++)
		third = strchr(third, '\n') + 1;
	char *groups = strstr(out, "layer groups:");
	CHECK(groups && third < groups);
	char *lm = strstr(largest, "lm_head.weight"), *emb = strstr(largest, "embed_tokens.weight");
	CHECK(lm && emb && lm < third && emb < third);
	free(out);
}

TEST(inspect_errors)
{
	char *out;
	int rc = test_run(&out, "%s inspect '%s' 2>&1 >/dev/null", test_hoist_bin(),
	                  test_path("missing"));
	CHECK_EQ_INT(rc, 1);
	CHECK(strncmp(out, "hoist: ", 7) == 0);
	CHECK_HAS(out, "missing: No such file or directory");
	free(out);

	const char *bad = test_path("bad.safetensors");
	fixture_write_safetensors(
	        bad, "{\"t\":{\"dtype\":\"F32\",\"shape\":[4,4],\"data_offsets\":[0,12]}}", NULL,
	        12);
	rc = test_run(&out, "%s inspect --json '%s' 2>&1", test_hoist_bin(), bad);
	CHECK_EQ_INT(rc, 1);
	CHECK_HAS(out, "hoist: ");
	CHECK_HAS(out, "bad.safetensors: tensor \"t\": data_offsets [0, 12) do not match shape [4, "
	               "4] x F32 (64 bytes)");
	CHECK(strchr(out, '{') == NULL); /* nothing on stdout */
	free(out);

	rc = test_run(&out, "%s inspect", test_hoist_bin());
	CHECK_EQ_INT(rc, 2);
	CHECK_HAS(out, "missing PATH");
	free(out);
	rc = test_run(&out, "%s inspect --bogus x", test_hoist_bin());
	CHECK_EQ_INT(rc, 2);
	CHECK_HAS(out, "hoist inspect: unrecognized option '--bogus'");
	free(out);
	rc = test_run(&out, "%s inspect a b", test_hoist_bin());
	CHECK_EQ_INT(rc, 2);
	CHECK_HAS(out, "one PATH only");
	free(out);
	rc = test_run(&out, "%s inspect --help", test_hoist_bin());
	CHECK_EQ_INT(rc, 0);
	CHECK_HAS(out, "usage: hoist inspect PATH [--json]");
	free(out);

	/* a warning shows in both forms */
	const char *warn = test_path("warn.safetensors");
	fixture_write_safetensors(
	        warn,
	        "{\"t\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1],\"note\":\"x\"}}",
	        NULL, 1);
	rc = test_run(&out, "%s inspect '%s'", test_hoist_bin(), warn);
	CHECK_EQ_INT(rc, 0);
	CHECK_HAS(out, "warnings:\n");
	CHECK_HAS(out, "unknown key \"note\" ignored");
	free(out);
	json_t *j = inspect_json(warn);
	CHECK_EQ_INT(json_array_size(json_object_get(j, "warnings")), 1);
	CHECK(strstr(json_string_value(json_array_get(json_object_get(j, "warnings"), 0)),
	             "\"note\""));
	json_decref(j);
}
