/* test_synth.c - synthetic checkpoints: content function, layouts from each kind of
 * source, the files as the reference reader (safetensors) and hoist's reader see
 * them, determinism, and every error path. */
#include "test.h"
#include "fixtures.h"
#include "base.h"
#include "synth.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *data_path(const char *rel)
{
	return test_join(test_data_dir(), rel);
}

static const char *python(void)
{
	const char *p = getenv("HOIST_PYTHON");
	return p && *p ? p : ".venv/bin/python3";
}

/* ---- the content function ------------------------------------------------------------ */

TEST(synth_fill_any_offset_matches_fill_from_zero)
{
	enum { N = 4096 };
	unsigned char whole[N], part[N + 16];
	hoist_synth_fill(42, "model.layers.0.mlp.up_proj.weight", 0, whole, N);
	for (uint64_t off = 0; off < 40; off++) {
		for (size_t size = 0; size <= 70; size++) {
			memset(part, 0xee, sizeof part);
			hoist_synth_fill(42, "model.layers.0.mlp.up_proj.weight", off, part, size);
			if (memcmp(part, whole + off, size) != 0)
				FAIL("offset %llu size %zu differs from the fill at 0",
				     (unsigned long long)off, size);
			for (size_t k = size; k < sizeof part; k++)
				CHECK_EQ_INT(part[k], 0xee);
		}
	}
	/* Long ranges at odd offsets, as the writer's 8 MiB blocks cut tensors. */
	hoist_synth_fill(42, "model.layers.0.mlp.up_proj.weight", 1237, part, 2000);
	CHECK(memcmp(part, whole + 1237, 2000) == 0);
	/* Far offsets: the same as a fill that starts just before them. */
	unsigned char far1[64], far2[64];
	hoist_synth_fill(1, "x", (1ull << 40) + 3, far1, 61);
	hoist_synth_fill(1, "x", (1ull << 40), far2, 64);
	CHECK(memcmp(far1, far2 + 3, 61) == 0);
}

TEST(synth_fill_depends_on_seed_and_name)
{
	enum { N = 1 << 16 };
	static unsigned char a[N], b[N], c[N], d[N];
	hoist_synth_fill(0, "w", 0, a, N);
	hoist_synth_fill(0, "w", 0, b, N);
	hoist_synth_fill(1, "w", 0, c, N);
	hoist_synth_fill(0, "w2", 0, d, N);
	CHECK(memcmp(a, b, N) == 0);
	/* Different seeds and names give unrelated bytes: about 1/256 equal by chance. */
	size_t same_seed = 0, same_name = 0;
	unsigned counts[256] = {0};
	for (size_t i = 0; i < N; i++) {
		same_seed += a[i] == c[i];
		same_name += a[i] == d[i];
		counts[a[i]]++;
	}
	CHECK(same_seed < N / 128);
	CHECK(same_name < N / 128);
	/* Every byte value appears, none far more often than the others. */
	for (int v = 0; v < 256; v++)
		CHECK(counts[v] > N / 256 / 2 && counts[v] < N / 256 * 2);
}

/* ---- checking written checkpoints ----------------------------------------------------- */

/* Every tensor's bytes in its shard equal hoist_synth_fill(seed, name, 0..nbytes). */
static void verify_bytes(const char *dir, uint64_t seed)
{
	struct hoist_checkpoint *c;
	CHECK_OK(hoist_checkpoint_open(dir, NULL, &c));
	size_t n = hoist_checkpoint_tensor_count(c);
	CHECK(n > 0);
	for (size_t i = 0; i < n; i++) {
		const struct hoist_tensor_info *t = hoist_checkpoint_tensor(c, i);
		unsigned char *got = malloc(t->nbytes + 1), *want = malloc(t->nbytes + 1);
		CHECK(got && want);
		int fd = open(hoist_checkpoint_shard(c, t->shard)->path, O_RDONLY);
		CHECK(fd >= 0);
		CHECK(pread(fd, got, t->nbytes, (off_t)t->offset) == (ssize_t)t->nbytes);
		close(fd);
		hoist_synth_fill(seed, t->name, 0, want, t->nbytes);
		if (memcmp(got, want, t->nbytes) != 0)
			FAIL("%s: tensor \"%s\": bytes differ from hoist_synth_fill", dir, t->name);
		free(got);
		free(want);
	}
	/* Each shard's __metadata__ carries the seed. */
	char seed_text[24];
	snprintf(seed_text, sizeof seed_text, "%llu", (unsigned long long)seed);
	bool found = false;
	for (size_t i = 0; i < hoist_checkpoint_metadata_count(c); i++) {
		const char *k, *v;
		k = hoist_checkpoint_metadata(c, i)->key;
		v = hoist_checkpoint_metadata(c, i)->value;
		if (strcmp(k, "hoist_synth_seed") == 0) {
			CHECK_STR(v, seed_text);
			found = true;
		}
	}
	CHECK(found);
	hoist_checkpoint_close(c);
}

static const char *torch_dtype(enum hoist_dtype d)
{
	switch (d) {
	case HOIST_BF16: return "torch.bfloat16";
	case HOIST_F16: return "torch.float16";
	case HOIST_F32: return "torch.float32";
	default: return "?";
	}
}

static int cmp_line(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The reference reader (safetensors.safe_open, framework pt) lists every tensor with
 * its dtype, shape, the sha256 of its bytes and the shard's seed; the same lines are
 * computed here from hoist's reader and hoist_synth_fill. */
static void verify_with_safetensors(const char *dir, uint64_t seed)
{
	static const char script[] =
	        "import sys, json, hashlib, torch\n"
	        "from safetensors import safe_open\n"
	        "d = sys.argv[1]\n"
	        "idx = json.load(open(d + '/model.safetensors.index.json'))\n"
	        "lines = []\n"
	        "for f in sorted(set(idx['weight_map'].values())):\n"
	        "    with safe_open(d + '/' + f, framework='pt') as s:\n"
	        "        seed = s.metadata()['hoist_synth_seed']\n"
	        "        for k in s.keys():\n"
	        "            assert idx['weight_map'][k] == f, k\n"
	        "            t = s.get_tensor(k)\n"
	        "            b = t.reshape(-1).view(torch.uint8).numpy().tobytes()\n"
	        "            lines.append('%s %s %s %s %s' % (k, t.dtype, list(t.shape),\n"
	        "                         hashlib.sha256(b).hexdigest(), seed))\n"
	        "assert len(lines) == len(idx['weight_map'])\n"
	        "print('\\n'.join(sorted(lines)))\n";
	const char *script_path = test_path("verify.py");
	test_write_file(script_path, script, strlen(script));
	char *out = NULL;
	int rc = test_run(&out, "%s %s %s", python(), script_path, dir);
	/* Called last in its tests, so a skip here skips no other assertion. */
	if (rc != 0 && (rc == 127 || strstr(out, "No module named")))
		SKIP("no Python with torch and safetensors (%s): %s", python(), out);
	if (rc != 0)
		FAIL("safetensors could not read %s (%d): %s", dir, rc, out);

	struct hoist_checkpoint *c;
	CHECK_OK(hoist_checkpoint_open(dir, NULL, &c));
	size_t n = hoist_checkpoint_tensor_count(c);
	char **lines = calloc(n, sizeof *lines);
	CHECK(lines);
	for (size_t i = 0; i < n; i++) {
		const struct hoist_tensor_info *t = hoist_checkpoint_tensor(c, i);
		unsigned char *buf = malloc(t->nbytes + 1);
		CHECK(buf);
		hoist_synth_fill(seed, t->name, 0, buf, t->nbytes);
		char sha[65], shape[256] = "[";
		test_sha256_hex(buf, t->nbytes, sha);
		free(buf);
		for (unsigned d = 0; d < t->ndim; d++)
			snprintf(shape + strlen(shape), sizeof shape - strlen(shape), "%s%lld",
			         d ? ", " : "", (long long)t->shape[d]);
		strcat(shape, "]");
		lines[i] = malloc(1024);
		CHECK(lines[i]);
		snprintf(lines[i], 1024, "%s %s %s %s %llu", t->name, torch_dtype(t->dtype), shape,
		         sha, (unsigned long long)seed);
	}
	qsort(lines, n, sizeof *lines, cmp_line);
	size_t len = 0;
	for (size_t i = 0; i < n; i++)
		len += strlen(lines[i]) + 1;
	char *want = malloc(len + 1);
	CHECK(want);
	want[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		strcat(want, lines[i]);
		strcat(want, "\n");
		free(lines[i]);
	}
	free(lines);
	if (strcmp(out, want) != 0)
		FAIL("safetensors reads %s differently:\n--- safetensors\n%.2000s\n--- "
		     "expected\n%.2000s",
		     dir, out, want);
	free(want);
	free(out);
	hoist_checkpoint_close(c);
}

static json_t *load_json(const char *path)
{
	json_error_t e;
	json_t *j = json_load_file(path, 0, &e);
	if (!j)
		FAIL("%s: %s", path, e.text);
	return j;
}

/* The expected first dimension after scaling. */
static int64_t scaled(int64_t d, double scale)
{
	if (d == 0)
		return 0;
	int64_t v = (int64_t)floor((double)d * scale);
	return v < 1 ? 1 : v;
}

/* ---- layouts ---------------------------------------------------------------------- */

/* The names the built-in layout must have: a Qwen2 decoder of 8 layers. */
TEST(synth_builtin_scaled_writes_and_reads_back)
{
	const char *dir = test_path("builtin");
	struct hoist_synth_options opt = {.scale = 0.01, .seed = 3};
	CHECK_OK(hoist_synth_write(dir, &opt));
	struct hoist_checkpoint *c;
	CHECK_OK(hoist_checkpoint_open(dir, NULL, &c));
	CHECK_EQ_INT(hoist_checkpoint_shard_count(c), 1);
	CHECK_STR(hoist_checkpoint_architecture(c), "Qwen2ForCausalLM");
	CHECK_STR(hoist_checkpoint_config_dtype(c), "bfloat16");
	/* config.json says what the layout came from: 1024 hidden, 8 layers, 32000 vocab. */
	json_t *cfg = load_json(test_join(dir, "config.json"));
	int64_t hidden = json_integer_value(json_object_get(cfg, "hidden_size"));
	int64_t layers = json_integer_value(json_object_get(cfg, "num_hidden_layers"));
	int64_t vocab = json_integer_value(json_object_get(cfg, "vocab_size"));
	int64_t inter = json_integer_value(json_object_get(cfg, "intermediate_size"));
	int64_t heads = json_integer_value(json_object_get(cfg, "num_attention_heads"));
	int64_t kv = json_integer_value(json_object_get(cfg, "num_key_value_heads"));
	CHECK_STR(json_string_value(json_object_get(json_object_get(cfg, "hoist_synth"), "seed")),
	          "3");
	json_decref(cfg);
	CHECK(hidden > 0 && layers > 0 && vocab > 0 && inter > 0 && heads > 0 && kv > 0);
	int64_t kvd = kv * (hidden / heads);
	CHECK_EQ_U64(hoist_checkpoint_tensor_count(c), 3 + 12 * layers);
	struct {
		const char *name;
		int64_t d0, d1;
	} want[] = {
	        {"model.embed_tokens.weight", vocab, hidden},
	        {"lm_head.weight", vocab, hidden},
	        {"model.norm.weight", hidden, -1},
	        {"model.layers.0.self_attn.q_proj.weight", hidden, hidden},
	        {"model.layers.0.self_attn.q_proj.bias", hidden, -1},
	        {"model.layers.7.self_attn.k_proj.weight", kvd, hidden},
	        {"model.layers.7.self_attn.v_proj.bias", kvd, -1},
	        {"model.layers.3.self_attn.o_proj.weight", hidden, hidden},
	        {"model.layers.5.mlp.gate_proj.weight", inter, hidden},
	        {"model.layers.5.mlp.up_proj.weight", inter, hidden},
	        {"model.layers.5.mlp.down_proj.weight", hidden, inter},
	        {"model.layers.6.input_layernorm.weight", hidden, -1},
	        {"model.layers.6.post_attention_layernorm.weight", hidden, -1},
	};
	for (size_t i = 0; i < HOIST__ARRAY_SIZE(want); i++) {
		size_t k;
		CHECK_OK(hoist_checkpoint_find(c, want[i].name, &k));
		const struct hoist_tensor_info *t = hoist_checkpoint_tensor(c, k);
		CHECK_EQ_INT(t->dtype, HOIST_BF16);
		CHECK_EQ_INT(t->ndim, want[i].d1 < 0 ? 1 : 2);
		CHECK_EQ_INT(t->shape[0], scaled(want[i].d0, 0.01));
		if (want[i].d1 >= 0)
			CHECK_EQ_INT(t->shape[1], want[i].d1);
	}
	/* Unscaled, the demo model is a few hundred MB: the figure the README quotes. */
	struct hoist__synth_layout *full;
	CHECK_OK(hoist__synth_layout(NULL, &full));
	CHECK_EQ_U64(full->total_bytes, 2 * (2 * vocab * hidden + hidden +
	                                     layers * (2 * hidden + hidden * hidden + hidden +
	                                               2 * (kvd * hidden + kvd) + hidden * hidden +
	                                               3 * inter * hidden)));
	CHECK(full->total_bytes > 200000000 && full->total_bytes < 400000000);
	CHECK_EQ_INT(full->shards, 1);
	hoist__synth_layout_free(full);
	hoist_checkpoint_close(c);
	verify_bytes(dir, 3);
	verify_with_safetensors(dir, 3);
}

/* The tiny Qwen2-VL that transformers wrote: synth from its config.json must give
 * the same tensors (names, dtypes, shapes), vision tower included. */
TEST(synth_config_matches_transformers_tiny_qwen2_vl)
{
	const char *ref_dir = data_path("reference/tiny-qwen2-vl");
	const char *dir = test_path("tiny");
	struct hoist_synth_options opt = {
	        .source = test_join(ref_dir, "config.json"), .shard_bytes = 100000, .seed = 9};
	CHECK_OK(hoist_synth_write(dir, &opt));
	struct hoist_checkpoint *ref, *c;
	CHECK_OK(hoist_checkpoint_open(ref_dir, NULL, &ref));
	CHECK_OK(hoist_checkpoint_open(dir, NULL, &c));
	CHECK_EQ_U64(hoist_checkpoint_tensor_count(c), hoist_checkpoint_tensor_count(ref));
	CHECK_EQ_U64(hoist_checkpoint_total_bytes(c), hoist_checkpoint_total_bytes(ref));
	for (size_t i = 0; i < hoist_checkpoint_tensor_count(ref); i++) {
		const struct hoist_tensor_info *r = hoist_checkpoint_tensor(ref, i);
		size_t k;
		CHECK_OK(hoist_checkpoint_find(c, r->name, &k));
		const struct hoist_tensor_info *t = hoist_checkpoint_tensor(c, k);
		CHECK_EQ_INT(t->dtype, r->dtype);
		CHECK_EQ_INT(t->ndim, r->ndim);
		for (unsigned d = 0; d < r->ndim; d++)
			if (t->shape[d] != r->shape[d])
				FAIL("%s: dim %u is %lld, transformers wrote %lld", r->name, d,
				     (long long)t->shape[d], (long long)r->shape[d]);
	}
	/* 100 kB shards: several, each within the target unless one tensor is bigger. */
	CHECK(hoist_checkpoint_shard_count(c) > 2);
	for (size_t s = 0; s < hoist_checkpoint_shard_count(c); s++) {
		uint64_t data = 0, biggest = 0;
		for (size_t i = 0; i < hoist_checkpoint_tensor_count(c); i++) {
			const struct hoist_tensor_info *t = hoist_checkpoint_tensor(c, i);
			if (t->shard == s) {
				data += t->nbytes;
				biggest = HOIST__MAX(biggest, t->nbytes);
			}
		}
		CHECK(data > 0);
		CHECK(data <= 100000 || data == biggest);
	}
	/* config.json is the source's, with the synth note. */
	json_t *cfg = load_json(test_join(dir, "config.json"));
	CHECK_STR(json_string_value(json_array_get(json_object_get(cfg, "architectures"), 0)),
	          "Qwen2VLForConditionalGeneration");
	CHECK_EQ_INT(json_integer_value(json_object_get(json_object_get(cfg, "text_config"),
	                                                "num_hidden_layers")),
	             3);
	json_decref(cfg);
	hoist_checkpoint_close(ref);
	hoist_checkpoint_close(c);
	verify_bytes(dir, 9);
	verify_with_safetensors(dir, 9);
}

/* --layers overrides num_hidden_layers, in the tensors and in the config written. */
TEST(synth_config_layers_override)
{
	const char *dir = test_path("tiny5");
	struct hoist_synth_options opt = {
	        .source = data_path("reference/tiny-qwen2-vl/config.json"), .layers = 5};
	CHECK_OK(hoist_synth_write(dir, &opt));
	struct hoist_checkpoint *c;
	CHECK_OK(hoist_checkpoint_open(dir, NULL, &c));
	size_t k;
	CHECK_OK(hoist_checkpoint_find(c, "model.layers.4.mlp.down_proj.weight", &k));
	CHECK_ERR(hoist_checkpoint_find(c, "model.layers.5.mlp.down_proj.weight", &k),
	          HOIST_ERR_INVALID, "model.layers.5.mlp.down_proj.weight");
	CHECK_OK(hoist_checkpoint_find(c, "visual.blocks.1.attn.qkv.bias", &k));
	hoist_checkpoint_close(c);
	json_t *cfg = load_json(test_join(dir, "config.json"));
	CHECK_EQ_INT(json_integer_value(json_object_get(json_object_get(cfg, "text_config"),
	                                                "num_hidden_layers")),
	             5);
	json_decref(cfg);
	/* A Llama config: no biases, tied embeddings, F16. */
	const char *llama = test_path("llama.json");
	const char *text = "{\"architectures\":[\"LlamaForCausalLM\"],\"model_type\":\"llama\","
	                   "\"hidden_size\":64,\"intermediate_size\":96,\"num_hidden_layers\":2,"
	                   "\"num_attention_heads\":4,\"num_key_value_heads\":2,\"vocab_size\":100,"
	                   "\"tie_word_embeddings\":true,\"torch_dtype\":\"float16\"}";
	test_write_file(llama, text, strlen(text));
	opt = (struct hoist_synth_options){.source = llama};
	CHECK_OK(hoist_synth_write(test_path("llama"), &opt));
	CHECK_OK(hoist_checkpoint_open(test_path("llama"), NULL, &c));
	CHECK_EQ_U64(hoist_checkpoint_tensor_count(c), 2 + 2 * 9);
	CHECK_ERR(hoist_checkpoint_find(c, "lm_head.weight", &k), HOIST_ERR_INVALID, "lm_head");
	CHECK_ERR(hoist_checkpoint_find(c, "model.layers.0.self_attn.q_proj.bias", &k),
	          HOIST_ERR_INVALID, "q_proj.bias");
	CHECK_OK(hoist_checkpoint_find(c, "model.layers.1.self_attn.k_proj.weight", &k));
	CHECK_EQ_INT(hoist_checkpoint_tensor(c, k)->dtype, HOIST_F16);
	CHECK_EQ_INT(hoist_checkpoint_tensor(c, k)->shape[0], 32);
	CHECK_EQ_INT(hoist_checkpoint_tensor(c, k)->shape[1], 64);
	hoist_checkpoint_close(c);
}

/* Shard headers at scale 1: the layout is the 7B checkpoint's, tensor for tensor:
 * names, dtypes, shapes, shards and data offsets, as hoist's reader sees the
 * sparse copy of the real headers. */
TEST(synth_headers_layout_equals_7b)
{
	const char *sparse = fixture_qwen7b_sparse();
	struct hoist_checkpoint *ref;
	CHECK_OK(hoist_checkpoint_open(sparse, NULL, &ref));
	struct hoist_synth_options opt = {.source = data_path("qwen2-vl-7b/shard-headers.json")};
	struct hoist__synth_layout *l;
	CHECK_OK(hoist__synth_layout(&opt, &l));
	CHECK_EQ_U64(l->count, hoist_checkpoint_tensor_count(ref));
	CHECK_EQ_U64(l->shards, hoist_checkpoint_shard_count(ref));
	CHECK_EQ_U64(l->total_bytes, hoist_checkpoint_total_bytes(ref));
	for (size_t i = 0; i < l->count; i++) {
		const struct hoist_tensor_info *r = hoist_checkpoint_tensor(ref, i);
		const struct hoist__synth_tensor *t = &l->tensors[i];
		CHECK_STR(t->name, r->name);
		CHECK_EQ_INT(t->dtype, r->dtype);
		CHECK_EQ_INT(t->ndim, r->ndim);
		for (unsigned d = 0; d < r->ndim; d++)
			CHECK_EQ_INT(t->shape[d], r->shape[d]);
		CHECK_EQ_U64(t->shard, r->shard);
		CHECK_EQ_U64(t->nbytes, r->nbytes);
		/* Offsets relative to the data section: the same in both, since both pack
		 * the tensors back to back in the same order. */
		const struct hoist_tensor_info *first = NULL;
		for (size_t j = 0; j < hoist_checkpoint_tensor_count(ref); j++) {
			if (hoist_checkpoint_tensor(ref, j)->shard == r->shard) {
				first = hoist_checkpoint_tensor(ref, j);
				break;
			}
		}
		CHECK_EQ_U64(t->offset, r->offset - first->offset);
	}
	/* The index's total_size is what synth would write as its own. */
	json_t *idx = load_json(data_path("qwen2-vl-7b/model.safetensors.index.json"));
	CHECK_EQ_U64(l->total_bytes, json_integer_value(json_object_get(
	                                     json_object_get(idx, "metadata"), "total_size")));
	json_decref(idx);
	hoist__synth_layout_free(l);
	hoist_checkpoint_close(ref);
}

/* The 7B config.json gives the 7B tensors too (hub names: "model." and "visual."
 * where transformers 5 in memory says "model.language_model." and "model.visual."). */
TEST(synth_config_7b_equals_headers_layout)
{
	struct hoist_synth_options from_cfg = {.source = data_path("qwen2-vl-7b/config.json")};
	struct hoist_synth_options from_hdr = {.source =
	                                               data_path("qwen2-vl-7b/shard-headers.json")};
	struct hoist__synth_layout *a, *b;
	CHECK_OK(hoist__synth_layout(&from_cfg, &a));
	CHECK_OK(hoist__synth_layout(&from_hdr, &b));
	CHECK_EQ_U64(a->count, b->count);
	CHECK_EQ_U64(a->total_bytes, b->total_bytes);
	for (size_t i = 0; i < b->count; i++) {
		const struct hoist__synth_tensor *h = &b->tensors[i];
		char name[256];
		if (strncmp(h->name, "model.language_model.", 21) == 0)
			snprintf(name, sizeof name, "model.%s", h->name + 21);
		else if (strncmp(h->name, "model.visual.", 13) == 0)
			snprintf(name, sizeof name, "visual.%s", h->name + 13);
		else
			snprintf(name, sizeof name, "%s", h->name);
		const struct hoist__synth_tensor *t = NULL;
		for (size_t j = 0; j < a->count && !t; j++)
			if (strcmp(a->tensors[j].name, name) == 0)
				t = &a->tensors[j];
		if (!t)
			FAIL("config layout lacks %s (%s in the headers)", name, h->name);
		CHECK_EQ_INT(t->dtype, h->dtype);
		CHECK_EQ_INT(t->ndim, h->ndim);
		for (unsigned d = 0; d < h->ndim; d++)
			CHECK_EQ_INT(t->shape[d], h->shape[d]);
	}
	/* 1 GB shards by default for config sources, filled greedily: each shard holds
	 * at most 1 GB (or one bigger tensor), and a shard was closed only because the
	 * next tensor did not fit, so two neighbours together hold more than 1 GB. */
	CHECK(a->shards >= (a->total_bytes + 999999999) / 1000000000);
	uint64_t used[64] = {0};
	CHECK(a->shards < 64);
	for (size_t i = 0; i < a->count; i++) {
		const struct hoist__synth_tensor *t = &a->tensors[i];
		CHECK(t->offset + t->nbytes <= 1000000000ull || t->offset == 0);
		used[t->shard] += t->nbytes;
	}
	for (uint32_t k = 0; k + 1 < a->shards; k++)
		CHECK(used[k] + used[k + 1] > 1000000000ull);
	hoist__synth_layout_free(a);
	hoist__synth_layout_free(b);
}

/* The 7B headers at scale 0.001 written for real: same names and dtypes, scaled
 * first dimensions, five shards, the sibling config.json, bytes as filled. */
TEST(synth_headers_scaled_write)
{
	const char *src = data_path("qwen2-vl-7b/shard-headers.json");
	struct hoist_synth_options full = {.source = src};
	struct hoist__synth_layout *l;
	CHECK_OK(hoist__synth_layout(&full, &l));
	const char *dir = test_path("q7");
	struct hoist_synth_options opt = {.source = src, .scale = 0.001, .seed = 11};
	CHECK_OK(hoist_synth_write(dir, &opt));
	struct hoist_checkpoint *c;
	CHECK_OK(hoist_checkpoint_open(dir, NULL, &c));
	CHECK_EQ_U64(hoist_checkpoint_shard_count(c), 5);
	CHECK(strstr(hoist_checkpoint_shard(c, 4)->path, "model-00005-of-00005.safetensors"));
	CHECK_EQ_U64(hoist_checkpoint_tensor_count(c), l->count);
	CHECK_STR(hoist_checkpoint_architecture(c), "Qwen2VLForConditionalGeneration");
	for (size_t i = 0; i < l->count; i++) {
		const struct hoist__synth_tensor *f = &l->tensors[i];
		const struct hoist_tensor_info *t = hoist_checkpoint_tensor(c, i);
		CHECK_STR(t->name, f->name);
		CHECK_EQ_INT(t->dtype, f->dtype);
		CHECK_EQ_INT(t->ndim, f->ndim);
		CHECK_EQ_U64(t->shard, f->shard);
		CHECK_EQ_INT(t->shape[0], scaled(f->shape[0], 0.001));
		for (unsigned d = 1; d < f->ndim; d++)
			CHECK_EQ_INT(t->shape[d], f->shape[d]);
	}
	size_t k;
	CHECK_OK(hoist_checkpoint_find(c, "model.language_model.embed_tokens.weight", &k));
	CHECK_EQ_INT(hoist_checkpoint_tensor(c, k)->shape[0], 152);
	hoist_checkpoint_close(c);
	hoist__synth_layout_free(l);
	verify_bytes(dir, 11);
	verify_with_safetensors(dir, 11);

	/* Re-sharded by size: 4 MB shards. */
	opt.shard_bytes = 4000000;
	const char *dir2 = test_path("q7-4mb");
	CHECK_OK(hoist_synth_write(dir2, &opt));
	CHECK_OK(hoist_checkpoint_open(dir2, NULL, &c));
	CHECK(hoist_checkpoint_shard_count(c) >=
	      (hoist_checkpoint_total_bytes(c) + 3999999) / 4000000);
	for (size_t s = 0; s < hoist_checkpoint_shard_count(c); s++) {
		uint64_t data = 0;
		for (size_t i = 0; i < hoist_checkpoint_tensor_count(c); i++)
			if (hoist_checkpoint_tensor(c, i)->shard == s)
				data += hoist_checkpoint_tensor(c, i)->nbytes;
		CHECK(data > 0 && data <= 4000000);
	}
	hoist_checkpoint_close(c);
	verify_bytes(dir2, 11);
}

static void sha_of_dir(const char *dir, char out[65])
{
	/* sha256 over the shards' sha256s, in shard order, plus the index. */
	struct hoist_checkpoint *c;
	CHECK_OK(hoist_checkpoint_open(dir, NULL, &c));
	size_t n = hoist_checkpoint_shard_count(c);
	char *all = calloc(n + 1, 65);
	CHECK(all);
	for (size_t s = 0; s <= n; s++) {
		size_t size;
		const char *p = s < n ? hoist_checkpoint_shard(c, s)->path
		                      : test_join(dir, "model.safetensors.index.json");
		char *data = test_read_file(p, &size);
		test_sha256_hex(data, size, all + 65 * s);
		free(data);
	}
	test_sha256_hex(all, (n + 1) * 65, out);
	free(all);
	hoist_checkpoint_close(c);
}

TEST(synth_deterministic)
{
	struct hoist_synth_options opt = {.scale = 0.02, .seed = 123, .shard_bytes = 2000000};
	char a[65], b[65], c[65];
	CHECK_OK(hoist_synth_write(test_path("a"), &opt));
	CHECK_OK(hoist_synth_write(test_path("b"), &opt));
	opt.seed = 124;
	CHECK_OK(hoist_synth_write(test_path("c"), &opt));
	sha_of_dir(test_path("a"), a);
	sha_of_dir(test_path("b"), b);
	sha_of_dir(test_path("c"), c);
	CHECK_STR(a, b);
	CHECK(strcmp(a, c) != 0);
	/* Every shard differs between seeds, not just the metadata. */
	struct hoist_checkpoint *ca, *cc;
	CHECK_OK(hoist_checkpoint_open(test_path("a"), NULL, &ca));
	CHECK_OK(hoist_checkpoint_open(test_path("c"), NULL, &cc));
	CHECK(hoist_checkpoint_shard_count(ca) > 1);
	for (size_t i = 0; i < hoist_checkpoint_tensor_count(ca); i++) {
		const struct hoist_tensor_info *t = hoist_checkpoint_tensor(ca, i);
		const struct hoist_tensor_info *u = hoist_checkpoint_tensor(cc, i);
		CHECK_STR(t->name, u->name);
		CHECK_EQ_U64(t->offset, u->offset);
	}
	hoist_checkpoint_close(ca);
	hoist_checkpoint_close(cc);
	/* Writing over an existing checkpoint gives the new one whole. */
	CHECK_OK(hoist_synth_write(test_path("a"), &opt));
	sha_of_dir(test_path("a"), a);
	CHECK_STR(a, c);
}

/* ---- errors ------------------------------------------------------------------------ */

static void write_text(const char *name, const char *text)
{
	test_write_file(test_path(name), text, strlen(text));
}

TEST(synth_bad_sources)
{
	struct hoist_synth_options opt = {0};
	const char *out = test_path("out");
#define SOURCE_ERR(src, status, needle)                                                            \
	do {                                                                                       \
		opt.source = (src);                                                                \
		CHECK_ERR(hoist_synth_write(out, &opt), status, needle);                           \
		CHECK(access(test_join(out, "model.safetensors.index.json"), F_OK) != 0);          \
	} while (0)
	SOURCE_ERR(test_path("nope.json"), HOIST_ERR_IO, "nope.json: cannot open");
	CHECK(strstr(hoist_errmsg(), "No such file"));
	write_text("garbage.json", "{\"hidden_size\": 12,");
	SOURCE_ERR(test_path("garbage.json"), HOIST_ERR_FORMAT, "garbage.json: not valid JSON");
	write_text("array.json", "[1, 2]");
	SOURCE_ERR(test_path("array.json"), HOIST_ERR_FORMAT, "array.json: not a JSON object");
	write_text("other.json", "{\"name\": \"x\"}");
	SOURCE_ERR(test_path("other.json"), HOIST_ERR_FORMAT, "other.json: neither a config.json");
	write_text("nolayers.json", "{\"hidden_size\": 64, \"intermediate_size\": 8, "
	                            "\"num_attention_heads\": 4, \"vocab_size\": 10}");
	SOURCE_ERR(test_path("nolayers.json"), HOIST_ERR_FORMAT,
	           "nolayers.json: \"num_hidden_layers\" is missing");
	write_text("neg.json",
	           "{\"hidden_size\": -64, \"intermediate_size\": 8, "
	           "\"num_hidden_layers\": 1, \"num_attention_heads\": 4, \"vocab_size\": 10}");
	SOURCE_ERR(test_path("neg.json"), HOIST_ERR_FORMAT,
	           "neg.json: \"hidden_size\" must be a positive integer");
	write_text("heads.json",
	           "{\"hidden_size\": 65, \"intermediate_size\": 8, "
	           "\"num_hidden_layers\": 1, \"num_attention_heads\": 4, \"vocab_size\": 10}");
	SOURCE_ERR(test_path("heads.json"), HOIST_ERR_FORMAT,
	           "not a multiple of num_attention_heads");
	write_text("f64.json", "{\"hidden_size\": 64, \"intermediate_size\": 8, \"torch_dtype\": "
	                       "\"float64\", \"num_hidden_layers\": 1, \"num_attention_heads\": 4, "
	                       "\"vocab_size\": 10}");
	SOURCE_ERR(test_path("f64.json"), HOIST_ERR_FORMAT,
	           "torch_dtype \"float64\" is not one synth writes");
	write_text("vl25.json",
	           "{\"model_type\": \"qwen2_5_vl\", \"hidden_size\": 64, "
	           "\"intermediate_size\": 8, \"num_hidden_layers\": 1, "
	           "\"num_attention_heads\": 4, \"vocab_size\": 10, \"vision_config\": {}}");
	SOURCE_ERR(test_path("vl25.json"), HOIST_ERR_FORMAT,
	           "vision_config of model_type \"qwen2_5_vl\" is not supported");
	write_text("vl.json", "{\"model_type\": \"qwen2_vl\", \"hidden_size\": 64, "
	                      "\"intermediate_size\": 8, \"num_hidden_layers\": 1, "
	                      "\"num_attention_heads\": 4, \"vocab_size\": 10, \"vision_config\": "
	                      "{\"depth\": 2}}");
	SOURCE_ERR(test_path("vl.json"), HOIST_ERR_FORMAT,
	           "vision_config: \"embed_dim\" is missing");
	/* Shard-headers sources. */
	write_text("h1.json", "{\"a.safetensors\": {\"header\": \"{\\\"w\\\": {\\\"dtype\\\": "
	                      "\\\"Q7\\\", \\\"shape\\\": [2], \\\"data_offsets\\\": [0, 2]}}\", "
	                      "\"file_size\": 10}}");
	SOURCE_ERR(test_path("h1.json"), HOIST_ERR_FORMAT,
	           "h1.json: a.safetensors: tensor \"w\": unknown dtype \"Q7\"");
	write_text("h2.json", "{\"a.safetensors\": {\"header\": \"{not json\"}}");
	SOURCE_ERR(test_path("h2.json"), HOIST_ERR_FORMAT,
	           "h2.json: a.safetensors: header is not JSON");
	write_text(
	        "h3.json",
	        "{\"a.safetensors\": {\"header\": {\"w\": {\"dtype\": \"F32\", \"shape\": [2], "
	        "\"data_offsets\": [0, 8]}}}, \"b.safetensors\": {\"header\": {\"w\": {\"dtype\": "
	        "\"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}}}");
	SOURCE_ERR(test_path("h3.json"), HOIST_ERR_FORMAT, "h3.json: tensor \"w\" appears twice");
	write_text("h4.json", "{\"a.safetensors\": {\"header\": {\"w\": {\"dtype\": \"F32\", "
	                      "\"shape\": [2, -1], \"data_offsets\": [0, 8]}}}}");
	SOURCE_ERR(test_path("h4.json"), HOIST_ERR_FORMAT,
	           "a.safetensors: tensor \"w\": bad shape");
	write_text("h5.json", "{\"a.safetensors\": {\"header\": {\"w\": {\"dtype\": \"F32\", "
	                      "\"shape\": [4294967296, 4294967296], \"data_offsets\": [0, 8]}}}}");
	SOURCE_ERR(test_path("h5.json"), HOIST_ERR_FORMAT, "tensor \"w\": size overflows");
	write_text("h6.json", "{\"a.safetensors\": {\"header\": {\"w\": {\"dtype\": \"F32\", "
	                      "\"shape\": [1,1,1,1,1,1,1,1,1], \"data_offsets\": [0, 4]}}}}");
	SOURCE_ERR(test_path("h6.json"), HOIST_ERR_FORMAT, "shape is not an array of at most 8");
	write_text("h7.json", "{\"a.safetensors\": {\"header\": {\"w\": {\"dtype\": \"F32\", "
	                      "\"shape\": [1], \"data_offsets\": \"x\"}}}}");
	SOURCE_ERR(test_path("h7.json"), HOIST_ERR_FORMAT, "tensor \"w\": bad data_offsets");
	/* Options. */
	opt.source = data_path("qwen2-vl-7b/shard-headers.json");
	opt.layers = 2;
	CHECK_ERR(hoist_synth_write(out, &opt), HOIST_ERR_INVALID,
	          "layers applies to config.json sources");
	opt = (struct hoist_synth_options){.scale = 1.5};
	CHECK_ERR(hoist_synth_write(out, &opt), HOIST_ERR_INVALID,
	          "scale 1.5: expected 0 < scale <= 1");
	opt.scale = -0.5;
	CHECK_ERR(hoist_synth_write(out, &opt), HOIST_ERR_INVALID, "scale -0.5");
	opt.scale = NAN;
	CHECK_ERR(hoist_synth_write(out, &opt), HOIST_ERR_INVALID, "scale");
	CHECK_ERR(hoist_synth_write("", NULL), HOIST_ERR_INVALID, "no output directory");
#undef SOURCE_ERR
}

/* A full disk: the shard's name points at /dev/full. The error names the file and
 * the offset; the old index is gone and the partial shard removed, so nothing
 * reads the directory as a checkpoint. */
TEST(synth_disk_full_leaves_no_checkpoint)
{
	if (access("/dev/full", W_OK) != 0)
		SKIP("no writable /dev/full");
	const char *dir = test_path("full");
	struct hoist_synth_options opt = {.scale = 0.01};
	CHECK_OK(hoist_synth_write(dir, &opt));
	struct hoist_checkpoint *c;
	CHECK_OK(hoist_checkpoint_open(dir, NULL, &c));
	hoist_checkpoint_close(c);
	const char *shard = test_join(dir, "model-00001-of-00001.safetensors");
	CHECK(unlink(shard) == 0);
	CHECK(symlink("/dev/full", shard) == 0);
	CHECK_ERR(hoist_synth_write(dir, &opt), HOIST_ERR_IO,
	          "model-00001-of-00001.safetensors: write failed at offset 0: No space left on "
	          "device");
	CHECK(access(test_join(dir, "model.safetensors.index.json"), F_OK) != 0);
	struct stat st;
	CHECK(lstat(shard, &st) != 0 && errno == ENOENT);
	CHECK_STATUS(hoist_checkpoint_open(dir, NULL, &c), HOIST_ERR_IO);

	/* An output directory that cannot be made. */
	test_write_file(test_path("file"), "x", 1);
	CHECK_ERR(hoist_synth_write(test_join(test_path("file"), "sub"), &opt), HOIST_ERR_IO,
	          "file/sub: cannot create directory: Not a directory");
}

/* Allocation failures anywhere: NOMEM or success, never a crash, never an index
 * without its shards. */
TEST(synth_allocation_failures)
{
	struct hoist_synth_options opt = {.scale = 0.001, .layers = 2};
	bool succeeded = false;
	for (long nth = 1; nth < 2000 && !succeeded; nth++) {
		const char *dir = test_path("nomem");
		hoist_fault_set(HOIST_FAULT_ALLOC, nth, ENOMEM, false);
		enum hoist_status st = hoist_synth_write(dir, &opt);
		hoist_fault_clear_all();
		if (st == HOIST_OK) {
			succeeded = true;
			CHECK(nth > 3);
			verify_bytes(dir, 0);
		} else {
			CHECK_ERR(st, HOIST_ERR_NOMEM, "out of memory");
			CHECK(access(test_join(dir, "model.safetensors.index.json"), F_OK) != 0);
		}
	}
	CHECK(succeeded);
}

/* ---- the command --------------------------------------------------------------------- */

TEST(synth_command)
{
	char *out = NULL;
	const char *dir = test_path("cli");
	int rc = test_run(&out, "%s synth %s --scale 0.01 --seed 5 --shard-size 1MB --verbose",
	                  test_hoist_bin(), dir);
	CHECK_EQ_INT(rc, 0);
	struct hoist_checkpoint *c;
	CHECK_OK(hoist_checkpoint_open(dir, NULL, &c));
	char want[256];
	snprintf(want, sizeof want, "synth: %s: %zu shards, %zu tensors, ", dir,
	         hoist_checkpoint_shard_count(c), hoist_checkpoint_tensor_count(c));
	if (!strstr(out, want))
		FAIL("output lacks \"%s\": %s", want, out);
	CHECK(hoist_checkpoint_shard_count(c) > 1);
	CHECK(strstr(out, "seed 5"));
	/* --verbose: a line per shard. */
	CHECK(strstr(out, "hoist synth: "));
	CHECK(strstr(out, "model-00002-of-"));
	hoist_checkpoint_close(c);
	free(out);
	verify_bytes(dir, 5);

	rc = test_run(&out, "%s synth %s --from %s", test_hoist_bin(), test_path("x"),
	              test_path("missing.json"));
	CHECK_EQ_INT(rc, 1);
	CHECK(strstr(out, "hoist: ") && strstr(out, "missing.json: cannot open"));
	free(out);
	rc = test_run(&out, "%s synth %s --scale 2", test_hoist_bin(), test_path("x"));
	CHECK_EQ_INT(rc, 2);
	CHECK(strstr(out, "hoist synth: --scale '2': expected a number with 0 < F <= 1"));
	free(out);
	rc = test_run(&out, "%s synth %s --seed -1", test_hoist_bin(), test_path("x"));
	CHECK_EQ_INT(rc, 2);
	CHECK(strstr(out, "hoist synth: --seed '-1': expected a whole number"));
	free(out);
	rc = test_run(&out, "%s synth %s --shard-size 12XB", test_hoist_bin(), test_path("x"));
	CHECK_EQ_INT(rc, 2);
	CHECK(strstr(out, "--shard-size"));
	free(out);
	rc = test_run(&out, "%s synth --bogus", test_hoist_bin());
	CHECK_EQ_INT(rc, 2);
	CHECK(strstr(out, "hoist synth: unrecognized option '--bogus'"));
	free(out);
	rc = test_run(&out, "%s synth", test_hoist_bin());
	CHECK_EQ_INT(rc, 2);
	CHECK(strstr(out, "missing DIR"));
	free(out);
	rc = test_run(&out, "%s synth --help", test_hoist_bin());
	CHECK_EQ_INT(rc, 0);
	CHECK(strstr(out, "usage: hoist synth DIR"));
	free(out);
}

static int cancel_on_second_call(const struct hoist_progress *pr, void *arg)
{
	int *calls = arg;
	CHECK_EQ_INT(pr->phase, HOIST_PHASE_STREAM);
	CHECK(pr->bytes_done <= pr->bytes_total);
	return ++*calls == 2;
}

/* A cancelled write removes what it wrote and says how far it got. */
TEST(synth_cancelled_leaves_nothing)
{
	const char *dir = test_path("cancelled");
	int calls = 0;
	struct hoist_synth_options opt = {.scale = 0.2,
	                                  .shard_bytes = 20000000,
	                                  .progress = cancel_on_second_call,
	                                  .progress_arg = &calls};
	CHECK_ERR(hoist_synth_write(dir, &opt), HOIST_ERR_CANCELLED, "synth: cancelled after ");
	CHECK_EQ_INT(calls, 2);
	char *out;
	CHECK_EQ_INT(test_run(&out, "ls -A %s", dir), 0);
	CHECK_STR(out, "");
	free(out);
	/* and without cancelling, progress runs to the end */
	calls = -1000000;
	CHECK_OK(hoist_synth_write(dir, &opt));
	CHECK(calls > -1000000 + 2);
	struct hoist_checkpoint *c;
	CHECK_OK(hoist_checkpoint_open(dir, NULL, &c));
	hoist_checkpoint_close(c);
}
