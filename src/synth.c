/* synth.c - deterministic synthetic checkpoints: demos, tests and benchmarks.
 *
 * A layout (tensor names, dtypes, shapes, shards) comes from a config.json, a
 * shard-headers.json, or the built-in small Qwen2 model; every tensor's bytes are
 * hoist_synth_fill(seed, name, offset), a counter-based generator, so any byte
 * range of any tensor can be regenerated on its own to verify a load.
 *
 * Output is safe against interruption: an existing index is removed first and the
 * new one is renamed into place last, so a directory whose write failed or was cut
 * short has no index and no reader takes it for a checkpoint. Shards written by a
 * failed call are removed.
 */
#include "synth.h"
#include "json.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Output is written in blocks of this size: one pwrite per 8 MiB, whatever the
 * tensors' sizes. */
#define WRITE_BLOCK (8u << 20)
/* Sources are small JSON files; anything bigger is not one. */
#define MAX_SOURCE_BYTES (256u << 20)
#define DEFAULT_SHARD_BYTES 1000000000ull

/* ---- content ----------------------------------------------------------------------- */

static inline uint64_t splitmix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* FNV-1a of the name, mixed with the seed. */
static uint64_t tensor_key(uint64_t seed, const char *name)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		h = (h ^ *p) * 0x100000001b3ull;
	return splitmix64(h ^ splitmix64(seed));
}

/* Little-endian 8-byte word w of a tensor's content: splitmix64 of a counter, so
 * every word stands alone and any offset costs the same. */
static inline uint64_t content_word(uint64_t key, uint64_t w)
{
	return splitmix64(key + w * 0x9e3779b97f4a7c15ull);
}

void hoist_synth_fill(uint64_t seed, const char *name, uint64_t offset, void *buf, size_t size)
{
	unsigned char *p = buf;
	uint64_t key = tensor_key(seed, name ? name : "");
	uint64_t w = offset / 8;
	size_t skip = (size_t)(offset % 8);
	if (skip && size) {
		uint64_t v = content_word(key, w++);
		size_t n = HOIST__MIN(8 - skip, size);
		memcpy(p, (unsigned char *)&v + skip, n);
		p += n;
		size -= n;
	}
	for (; size >= 8; size -= 8, p += 8) {
		uint64_t v = content_word(key, w++);
		memcpy(p, &v, 8);
	}
	if (size) {
		uint64_t v = content_word(key, w);
		memcpy(p, &v, size);
	}
}

/* ---- layouts ----------------------------------------------------------------------- */

void hoist__synth_layout_free(struct hoist__synth_layout *layout)
{
	if (!layout)
		return;
	for (size_t i = 0; i < layout->count; i++)
		hoist__free(layout->tensors[i].name);
	hoist__free(layout->tensors);
	free(layout->config_json); /* from json_dumps */
	hoist__free(layout);
}

struct builder {
	struct hoist__synth_layout *layout;
	size_t cap;
	const char *file; /* for messages */
	double scale;     /* 1: none */
};

/* Appends a tensor, shrinking its first dimension by the scale. */
static enum hoist_status add_tensor(struct builder *b, const char *name, enum hoist_dtype dtype,
                                    unsigned ndim, const int64_t *shape)
{
	struct hoist__synth_layout *l = b->layout;
	if (ndim > HOIST__SYNTH_MAX_DIMS)
		return hoist__error(HOIST_ERR_FORMAT,
		                    "%s: tensor \"%s\": %u dimensions (synth takes %d at most)",
		                    b->file, name, ndim, HOIST__SYNTH_MAX_DIMS);
	if (l->count == b->cap) {
		size_t cap = b->cap ? 2 * b->cap : 256;
		void *t = hoist__reallocarray(l->tensors, cap, sizeof *l->tensors);
		if (!t)
			return hoist__error(HOIST_ERR_NOMEM, "synth: out of memory for %zu tensors",
			                    cap);
		l->tensors = t;
		b->cap = cap;
	}
	struct hoist__synth_tensor *t = &l->tensors[l->count];
	memset(t, 0, sizeof *t);
	t->dtype = dtype;
	t->ndim = ndim;
	uint64_t numel = 1;
	for (unsigned d = 0; d < ndim; d++) {
		if (shape[d] < 0)
			return hoist__error(HOIST_ERR_FORMAT,
			                    "%s: tensor \"%s\": negative dimension %lld", b->file,
			                    name, (long long)shape[d]);
		t->shape[d] = shape[d];
		if (d == 0 && b->scale != 1 && shape[0] > 0) {
			double v = floor((double)shape[0] * b->scale);
			t->shape[0] = v < 1 ? 1 : (int64_t)v;
		}
	}
	/* Sub-byte dtypes need whole bytes: grow a scaled first dimension to fit. */
	unsigned bits = hoist_dtype_bits(dtype);
	for (;;) {
		numel = 1;
		bool ok = true;
		for (unsigned d = 0; d < ndim && ok; d++)
			ok = hoist__mul_u64(numel, (uint64_t)t->shape[d], &numel);
		uint64_t nbits;
		if (!ok || !hoist__mul_u64(numel, bits, &nbits))
			return hoist__error(HOIST_ERR_FORMAT, "%s: tensor \"%s\": size overflows",
			                    b->file, name);
		if (nbits % 8 == 0) {
			t->nbytes = nbits / 8;
			break;
		}
		if (ndim == 0 || t->shape[0] == shape[0])
			return hoist__error(
			        HOIST_ERR_FORMAT,
			        "%s: tensor \"%s\": %llu elements of %s are not whole bytes",
			        b->file, name, (unsigned long long)numel, hoist_dtype_name(dtype));
		t->shape[0]++;
	}
	if (!hoist__add_u64(l->total_bytes, t->nbytes, &l->total_bytes))
		return hoist__error(HOIST_ERR_FORMAT, "%s: total size overflows", b->file);
	t->name = hoist__strdup(name);
	if (!t->name)
		return hoist__error(HOIST_ERR_NOMEM, "synth: out of memory");
	l->count++;
	return HOIST_OK;
}

/* ---- config.json sources ------------------------------------------------------------ */

struct config {
	const char *file;
	json_t *text; /* text_config, or the top level */
	json_t *top;
};

static json_t *cfg_get(const struct config *c, const char *key)
{
	json_t *v = json_object_get(c->text, key);
	return v ? v : json_object_get(c->top, key);
}

/* A positive integer (at most 2^31) from the text config, else the top level, else
 * dflt (0: required). */
static enum hoist_status cfg_int(const struct config *c, json_t *obj, const char *key, int64_t dflt,
                                 int64_t *out)
{
	json_t *v = obj ? json_object_get(obj, key) : cfg_get(c, key);
	if (!v || json_is_null(v)) {
		if (!dflt)
			return hoist__error(HOIST_ERR_FORMAT, "%s: %s\"%s\" is missing", c->file,
			                    obj ? "vision_config: " : "", key);
		*out = dflt;
		return HOIST_OK;
	}
	if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > (1ll << 31))
		return hoist__error(HOIST_ERR_FORMAT, "%s: %s\"%s\" must be a positive integer",
		                    c->file, obj ? "vision_config: " : "", key);
	*out = json_integer_value(v);
	return HOIST_OK;
}

static enum hoist_status cfg_dtype(const struct config *c, enum hoist_dtype *out)
{
	json_t *v = cfg_get(c, "torch_dtype");
	if (!v || json_is_null(v))
		v = cfg_get(c, "dtype");
	if (!v || json_is_null(v)) {
		*out = HOIST_BF16;
		return HOIST_OK;
	}
	const char *s = json_string_value(v);
	if (s && strncmp(s, "torch.", 6) == 0)
		s += 6;
	if (s && strcmp(s, "bfloat16") == 0)
		*out = HOIST_BF16;
	else if (s && strcmp(s, "float16") == 0)
		*out = HOIST_F16;
	else if (s && strcmp(s, "float32") == 0)
		*out = HOIST_F32;
	else
		return hoist__error(HOIST_ERR_FORMAT,
		                    "%s: torch_dtype %s%s%s is not one synth writes (bfloat16, "
		                    "float16, float32)",
		                    c->file, s ? "\"" : "", s ? s : "(not a string)",
		                    s ? "\"" : "");
	return HOIST_OK;
}

static bool cfg_bool(const struct config *c, const char *key, bool dflt)
{
	json_t *v = cfg_get(c, key);
	return json_is_boolean(v) ? json_is_true(v) : dflt;
}

static const char *cfg_str(json_t *obj, const char *key)
{
	const char *s = json_string_value(json_object_get(obj, key));
	return s ? s : "";
}

#define ADD(name, ...)                                                                             \
	do {                                                                                       \
		const int64_t shape_[] = {__VA_ARGS__};                                            \
		st = add_tensor(b, name, dtype, HOIST__ARRAY_SIZE(shape_), shape_);                \
		if (st)                                                                            \
			goto out;                                                                  \
	} while (0)

/* The Qwen2 / Llama decoder: names and shapes as transformers saves them. */
static enum hoist_status config_text(struct builder *b, const struct config *c, unsigned layers,
                                     enum hoist_dtype dtype)
{
	enum hoist_status st;
	int64_t hidden, inter, nlayers, heads, kv_heads, vocab, head_dim;
	if ((st = cfg_int(c, NULL, "hidden_size", 0, &hidden)) ||
	    (st = cfg_int(c, NULL, "intermediate_size", 0, &inter)) ||
	    (st = cfg_int(c, NULL, "num_hidden_layers", 0, &nlayers)) ||
	    (st = cfg_int(c, NULL, "num_attention_heads", 0, &heads)) ||
	    (st = cfg_int(c, NULL, "vocab_size", 0, &vocab)))
		return st;
	if ((st = cfg_int(c, NULL, "num_key_value_heads", heads, &kv_heads)))
		return st;
	if (hidden % heads && !cfg_get(c, "head_dim"))
		return hoist__error(
		        HOIST_ERR_FORMAT,
		        "%s: hidden_size %lld is not a multiple of num_attention_heads %lld",
		        c->file, (long long)hidden, (long long)heads);
	if ((st = cfg_int(c, NULL, "head_dim", hidden / heads, &head_dim)))
		return st;
	if (layers)
		nlayers = layers;
	/* Qwen2 has q/k/v biases, Llama and Mistral none, unless attention_bias says. */
	const char *type = cfg_str(c->text, "model_type");
	if (!*type)
		type = cfg_str(c->top, "model_type");
	bool bias = cfg_bool(c, "attention_bias", strncmp(type, "qwen2", 5) == 0);
	bool tied = cfg_bool(c, "tie_word_embeddings", false);
	int64_t q = heads * head_dim, kv = kv_heads * head_dim;
	char name[160];

	ADD("model.embed_tokens.weight", vocab, hidden);
	for (int64_t i = 0; i < nlayers; i++) {
#define LAYER(suffix, ...)                                                                         \
	do {                                                                                       \
		snprintf(name, sizeof name, "model.layers.%lld.%s", (long long)i, suffix);         \
		ADD(name, __VA_ARGS__);                                                            \
	} while (0)
		LAYER("input_layernorm.weight", hidden);
		LAYER("self_attn.q_proj.weight", q, hidden);
		if (bias)
			LAYER("self_attn.q_proj.bias", q);
		LAYER("self_attn.k_proj.weight", kv, hidden);
		if (bias)
			LAYER("self_attn.k_proj.bias", kv);
		LAYER("self_attn.v_proj.weight", kv, hidden);
		if (bias)
			LAYER("self_attn.v_proj.bias", kv);
		LAYER("self_attn.o_proj.weight", hidden, q);
		LAYER("post_attention_layernorm.weight", hidden);
		LAYER("mlp.gate_proj.weight", inter, hidden);
		LAYER("mlp.up_proj.weight", inter, hidden);
		LAYER("mlp.down_proj.weight", hidden, inter);
#undef LAYER
	}
	ADD("model.norm.weight", hidden);
	if (!tied)
		ADD("lm_head.weight", vocab, hidden);
out:
	return st;
}

/* The Qwen2-VL vision tower (ViT blocks with LayerNorm, and the patch merger). */
static enum hoist_status config_vision(struct builder *b, const struct config *c, json_t *v,
                                       enum hoist_dtype dtype)
{
	enum hoist_status st;
	int64_t depth, embed, chans, out_dim, patch, merge, temporal;
	json_t *chans_v = json_object_get(v, "in_chans") ? NULL : json_object_get(v, "in_channels");
	if ((st = cfg_int(c, v, "depth", 0, &depth)) ||
	    (st = cfg_int(c, v, "embed_dim", 0, &embed)) ||
	    (st = cfg_int(c, v, chans_v ? "in_channels" : "in_chans", 3, &chans)) ||
	    (st = cfg_int(c, v, "hidden_size", 0, &out_dim)) ||
	    (st = cfg_int(c, v, "patch_size", 14, &patch)) ||
	    (st = cfg_int(c, v, "spatial_merge_size", 2, &merge)) ||
	    (st = cfg_int(c, v, "temporal_patch_size", 2, &temporal)))
		return st;
	json_t *ratio_v = json_object_get(v, "mlp_ratio");
	double ratio = ratio_v ? json_number_value(ratio_v) : 4;
	double mlp_d = ratio * (double)embed;
	if (!(ratio > 0) || mlp_d != floor(mlp_d) || mlp_d > (double)(1ll << 40))
		return hoist__error(
		        HOIST_ERR_FORMAT,
		        "%s: vision_config: mlp_ratio x embed_dim is not a positive integer",
		        c->file);
	int64_t mlp = (int64_t)mlp_d, merged = embed * merge * merge;
	char name[160];

	ADD("visual.patch_embed.proj.weight", embed, chans, temporal, patch, patch);
	for (int64_t i = 0; i < depth; i++) {
#define BLOCK(suffix, ...)                                                                         \
	do {                                                                                       \
		snprintf(name, sizeof name, "visual.blocks.%lld.%s", (long long)i, suffix);        \
		ADD(name, __VA_ARGS__);                                                            \
	} while (0)
		BLOCK("norm1.weight", embed);
		BLOCK("norm1.bias", embed);
		BLOCK("attn.qkv.weight", 3 * embed, embed);
		BLOCK("attn.qkv.bias", 3 * embed);
		BLOCK("attn.proj.weight", embed, embed);
		BLOCK("attn.proj.bias", embed);
		BLOCK("norm2.weight", embed);
		BLOCK("norm2.bias", embed);
		BLOCK("mlp.fc1.weight", mlp, embed);
		BLOCK("mlp.fc1.bias", mlp);
		BLOCK("mlp.fc2.weight", embed, mlp);
		BLOCK("mlp.fc2.bias", embed);
#undef BLOCK
	}
	ADD("visual.merger.ln_q.weight", embed);
	ADD("visual.merger.ln_q.bias", embed);
	ADD("visual.merger.mlp.0.weight", merged, merged);
	ADD("visual.merger.mlp.0.bias", merged);
	ADD("visual.merger.mlp.2.weight", out_dim, merged);
	ADD("visual.merger.mlp.2.bias", out_dim);
out:
	return st;
}
#undef ADD

static enum hoist_status layout_from_config(struct builder *b, json_t *root,
                                            const struct hoist_synth_options *opt)
{
	enum hoist_status st;
	struct config c = {.file = b->file, .top = root, .text = root};
	json_t *text = json_object_get(root, "text_config");
	if (json_is_object(text))
		c.text = text;
	enum hoist_dtype dtype = HOIST_BF16;
	if ((st = cfg_dtype(&c, &dtype)) || (st = config_text(b, &c, opt->layers, dtype)))
		return st;
	json_t *vision = json_object_get(root, "vision_config");
	if (json_is_object(vision)) {
		const char *type = cfg_str(root, "model_type");
		if (strcmp(type, "qwen2_vl") != 0)
			return hoist__error(
			        HOIST_ERR_FORMAT,
			        "%s: vision_config of model_type \"%s\" is not supported "
			        "(synth knows qwen2_vl)",
			        b->file, type);
		if ((st = config_vision(b, &c, vision, dtype)))
			return st;
	}
	if (opt->layers)
		json_object_set_new(c.text, "num_hidden_layers", json_integer(opt->layers));
	return HOIST_OK;
}

/* ---- shard-headers.json sources --------------------------------------------------- */

struct src_tensor {
	const char *name;
	uint64_t begin;
	size_t index; /* order in the header, for a stable sort */
};

static int cmp_src_tensor(const void *a, const void *b)
{
	const struct src_tensor *x = a, *y = b;
	if (x->begin != y->begin)
		return x->begin < y->begin ? -1 : 1;
	return x->index < y->index ? -1 : x->index > y->index;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* One shard's header: its tensors in data order, appended with shard = `shard`. */
static enum hoist_status headers_shard(struct builder *b, const char *shard_name, json_t *entry,
                                       uint32_t shard)
{
	enum hoist_status st = HOIST_OK;
	struct src_tensor *order = NULL;
	json_t *header = NULL;
	json_t *h = json_object_get(entry, "header");
	if (json_is_string(h)) {
		json_error_t jerr;
		header = json_loads(json_string_value(h), JSON_REJECT_DUPLICATES, &jerr);
		if (!header)
			return hoist__error(HOIST_ERR_FORMAT, "%s: %s: header is not JSON: %s",
			                    b->file, shard_name, jerr.text);
	} else if (json_is_object(h)) {
		header = json_incref(h);
	}
	if (!json_is_object(header)) {
		st = hoist__error(HOIST_ERR_FORMAT, "%s: %s: \"header\" is not a JSON object",
		                  b->file, shard_name);
		goto out;
	}
	order = hoist__calloc(json_object_size(header) + 1, sizeof *order);
	if (!order) {
		st = hoist__error(HOIST_ERR_NOMEM, "synth: out of memory");
		goto out;
	}
	size_t n = 0;
	const char *key;
	json_t *t;
	json_object_foreach(header, key, t)
	{
		if (strcmp(key, "__metadata__") == 0)
			continue;
		json_t *offs = json_object_get(t, "data_offsets");
		json_t *begin = json_array_get(offs, 0);
		if (!json_is_integer(begin) || json_integer_value(begin) < 0) {
			st = hoist__error(HOIST_ERR_FORMAT,
			                  "%s: %s: tensor \"%s\": bad data_offsets", b->file,
			                  shard_name, key);
			goto out;
		}
		order[n] = (struct src_tensor){key, (uint64_t)json_integer_value(begin), n};
		n++;
	}
	qsort(order, n, sizeof *order, cmp_src_tensor);
	for (size_t i = 0; i < n; i++) {
		t = json_object_get(header, order[i].name);
		enum hoist_dtype dtype;
		const char *dname = json_string_value(json_object_get(t, "dtype"));
		if (hoist_dtype_parse(dname, &dtype) != HOIST_OK) {
			st = hoist__error(HOIST_ERR_FORMAT,
			                  "%s: %s: tensor \"%s\": unknown dtype \"%s\"", b->file,
			                  shard_name, order[i].name, dname ? dname : "(none)");
			goto out;
		}
		json_t *shape_v = json_object_get(t, "shape");
		size_t ndim = json_array_size(shape_v);
		int64_t shape[HOIST__SYNTH_MAX_DIMS];
		if (!json_is_array(shape_v) || ndim > HOIST__SYNTH_MAX_DIMS) {
			st = hoist__error(
			        HOIST_ERR_FORMAT,
			        "%s: %s: tensor \"%s\": shape is not an array of at most %d sizes",
			        b->file, shard_name, order[i].name, HOIST__SYNTH_MAX_DIMS);
			goto out;
		}
		for (size_t d = 0; d < ndim; d++) {
			json_t *dim = json_array_get(shape_v, d);
			if (!json_is_integer(dim) || json_integer_value(dim) < 0) {
				st = hoist__error(HOIST_ERR_FORMAT,
				                  "%s: %s: tensor \"%s\": bad shape", b->file,
				                  shard_name, order[i].name);
				goto out;
			}
			shape[d] = json_integer_value(dim);
		}
		if ((st = add_tensor(b, order[i].name, dtype, (unsigned)ndim, shape)))
			goto out;
		b->layout->tensors[b->layout->count - 1].shard = shard;
	}
out:
	hoist__free(order);
	json_decref(header);
	return st;
}

static enum hoist_status layout_from_headers(struct builder *b, json_t *root)
{
	enum hoist_status st = HOIST_OK;
	size_t n = json_object_size(root);
	const char **names = hoist__calloc(n + 1, sizeof *names);
	if (!names)
		return hoist__error(HOIST_ERR_NOMEM, "synth: out of memory");
	size_t i = 0;
	const char *key;
	json_t *v;
	json_object_foreach(root, key, v) names[i++] = key;
	qsort(names, n, sizeof *names, cmp_str);
	for (i = 0; i < n && !st; i++)
		st = headers_shard(b, names[i], json_object_get(root, names[i]), (uint32_t)i);
	hoist__free(names);
	return st;
}

/* ---- sharding ------------------------------------------------------------------------ */

static int cmp_shard_name(const void *a, const void *b)
{
	const struct hoist__synth_tensor *x = a, *y = b;
	if (x->shard != y->shard)
		return x->shard < y->shard ? -1 : 1;
	return strcmp(x->name, y->name);
}

static int cmp_shard_offset(const void *a, const void *b)
{
	const struct hoist__synth_tensor *x = a, *y = b;
	if (x->shard != y->shard)
		return x->shard < y->shard ? -1 : 1;
	return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* Greedy, as transformers shards: a tensor starts a new shard when it would take
 * the current one past the target (a tensor bigger than the target gets its own). */
static void assign_shards(struct hoist__synth_layout *l, uint64_t target)
{
	uint64_t used = 0;
	uint32_t shard = 0;
	for (size_t i = 0; i < l->count; i++) {
		if (used > 0 && l->tensors[i].nbytes > target - HOIST__MIN(used, target)) {
			shard++;
			used = 0;
		}
		l->tensors[i].shard = shard;
		used += l->tensors[i].nbytes;
	}
	l->shards = l->count ? shard + 1 : 1;
}

/* Data offsets in the current order; then file order (by shard, offset). */
static void assign_offsets(struct hoist__synth_layout *l)
{
	uint64_t off = 0;
	for (size_t i = 0; i < l->count; i++) {
		if (i == 0 || l->tensors[i].shard != l->tensors[i - 1].shard)
			off = 0;
		l->tensors[i].offset = off;
		off += l->tensors[i].nbytes;
	}
	if (l->count) /* a source of empty headers has none, and no array */
		qsort(l->tensors, l->count, sizeof *l->tensors, cmp_shard_offset);
}

static int cmp_tensor_name(const void *a, const void *b)
{
	const struct hoist__synth_tensor *const *x = a, *const *y = b;
	return strcmp((*x)->name, (*y)->name);
}

static enum hoist_status check_duplicates(const struct hoist__synth_layout *l, const char *file)
{
	const struct hoist__synth_tensor **v = hoist__calloc(l->count + 1, sizeof *v);
	if (!v)
		return hoist__error(HOIST_ERR_NOMEM, "synth: out of memory");
	for (size_t i = 0; i < l->count; i++)
		v[i] = &l->tensors[i];
	qsort(v, l->count, sizeof *v, cmp_tensor_name);
	enum hoist_status st = HOIST_OK;
	for (size_t i = 1; i < l->count && !st; i++)
		if (strcmp(v[i]->name, v[i - 1]->name) == 0)
			st = hoist__error(HOIST_ERR_FORMAT, "%s: tensor \"%s\" appears twice", file,
			                  v[i]->name);
	hoist__free(v);
	return st;
}

/* ---- the layout step ----------------------------------------------------------------- */

static json_t *builtin_config(void)
{
	/* About 310 MB in BF16: loads in well under a second from the page cache. */
	return json_pack("{s:[s], s:s, s:i, s:i, s:i, s:i, s:i, s:i, s:b, s:s, s:i, s:f, s:f, s:s}",
	                 "architectures", "Qwen2ForCausalLM", "model_type", "qwen2", "hidden_size",
	                 1024, "intermediate_size", 2816, "num_hidden_layers", 8,
	                 "num_attention_heads", 16, "num_key_value_heads", 4, "vocab_size", 32000,
	                 "tie_word_embeddings", 0, "torch_dtype", "bfloat16",
	                 "max_position_embeddings", 4096, "rms_norm_eps", 1e-6, "rope_theta",
	                 1000000.0, "hidden_act", "silu");
}

static const char *torch_dtype_name(enum hoist_dtype d)
{
	switch (d) {
	case HOIST_BF16: return "bfloat16";
	case HOIST_F16: return "float16";
	case HOIST_F32: return "float32";
	default: return NULL;
	}
}

/* config.json next to a shard-headers.json, when there is one. */
static json_t *sibling_config(const char *source)
{
	const char *slash = strrchr(source, '/');
	size_t dirlen = slash ? (size_t)(slash - source) + 1 : 0;
	char *path = hoist__malloc(dirlen + sizeof "config.json");
	if (!path)
		return NULL;
	memcpy(path, source, dirlen);
	memcpy(path + dirlen, "config.json", sizeof "config.json");
	json_t *cfg = NULL;
	/* Best effort: without a readable one, a minimal config is written instead. */
	if (access(path, R_OK) == 0 &&
	    hoist__json_read_file(path, JSON_REJECT_DUPLICATES, &cfg) != HOIST_OK) {
		cfg = NULL;
		hoist__error_clear();
	}
	hoist__free(path);
	if (cfg && !json_is_object(cfg)) {
		json_decref(cfg);
		cfg = NULL;
	}
	return cfg;
}

enum hoist_status hoist__synth_layout(const struct hoist_synth_options *opt,
                                      struct hoist__synth_layout **out)
{
	static const struct hoist_synth_options defaults;
	enum hoist_status st = HOIST_OK;
	json_t *root = NULL, *config = NULL;
	if (!opt)
		opt = &defaults;
	*out = NULL;
	if (!(opt->scale >= 0 && opt->scale <= 1))
		return hoist__error(HOIST_ERR_INVALID, "synth: scale %g: expected 0 < scale <= 1",
		                    opt->scale);
	struct builder b = {.file = opt->source ? opt->source : "(built-in layout)",
	                    .scale = opt->scale > 0 ? opt->scale : 1};
	b.layout = hoist__calloc(1, sizeof *b.layout);
	if (!b.layout)
		return hoist__error(HOIST_ERR_NOMEM, "synth: out of memory");

	bool from_headers = false;
	if (opt->source) {
		if ((st = hoist__json_read_file(opt->source, JSON_REJECT_DUPLICATES, &root)))
			goto out;
	} else if (!(root = builtin_config())) {
		st = hoist__error(HOIST_ERR_NOMEM, "synth: out of memory");
		goto out;
	}
	if (!json_is_object(root)) {
		st = hoist__error(HOIST_ERR_FORMAT, "%s: not a JSON object", b.file);
		goto out;
	}
	const char *first_key = json_object_iter_key(json_object_iter(root));
	json_t *first = json_object_iter_value(json_object_iter(root));
	if (json_object_get(root, "hidden_size") ||
	    json_is_object(json_object_get(root, "text_config"))) {
		if ((st = layout_from_config(&b, root, opt)))
			goto out;
		config = json_incref(root);
	} else if (first_key && json_is_object(first) && json_object_get(first, "header")) {
		from_headers = true;
		if (opt->layers) {
			st = hoist__error(
			        HOIST_ERR_INVALID,
			        "%s: layers applies to config.json sources, not shard headers",
			        b.file);
			goto out;
		}
		if ((st = layout_from_headers(&b, root)))
			goto out;
		config = sibling_config(opt->source);
		if (!config)
			config = json_object();
		const char *dt =
		        b.layout->count ? torch_dtype_name(b.layout->tensors[0].dtype) : NULL;
		if (config && dt && !json_object_get(config, "torch_dtype") &&
		    !json_object_get(config, "dtype"))
			json_object_set_new(config, "torch_dtype", json_string(dt));
	} else {
		st = hoist__error(
		        HOIST_ERR_FORMAT,
		        "%s: neither a config.json (no \"hidden_size\" or \"text_config\") "
		        "nor a shard-headers.json (file name -> {\"header\", \"file_size\"})",
		        b.file);
		goto out;
	}
	if ((st = check_duplicates(b.layout, b.file)))
		goto out;

	struct hoist__synth_layout *l = b.layout;
	if (!from_headers || opt->shard_bytes)
		assign_shards(l, opt->shard_bytes ? opt->shard_bytes : DEFAULT_SHARD_BYTES);
	else
		l->shards = json_object_size(root) ? (uint32_t)json_object_size(root) : 1;
	if (l->shards > 99999) {
		st = hoist__error(HOIST_ERR_INVALID, "synth: %u shards (at most 99999)", l->shards);
		goto out;
	}
	/* Config layouts: names sorted within each shard, as safetensors writes them.
	 * Shard-header layouts keep the source's order. */
	if (!from_headers)
		qsort(l->tensors, l->count, sizeof *l->tensors, cmp_shard_name);
	assign_offsets(l);

	if (!config) {
		st = hoist__error(HOIST_ERR_NOMEM, "synth: out of memory");
		goto out;
	}
	char seed[24];
	snprintf(seed, sizeof seed, "%llu", (unsigned long long)opt->seed);
	json_t *note = json_pack("{s:s, s:f}", "seed", seed, "scale", b.scale);
	if (note)
		json_object_set_new(config, "hoist_synth", note);
	l->config_json =
	        json_dumps(config, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15));
	if (!note || !l->config_json) {
		st = hoist__error(HOIST_ERR_NOMEM, "synth: out of memory");
		goto out;
	}
out:
	json_decref(root);
	json_decref(config);
	if (st) {
		hoist__synth_layout_free(b.layout);
		return st;
	}
	*out = b.layout;
	return HOIST_OK;
}

/* ---- writing ------------------------------------------------------------------------- */

struct writer {
	const char *dir;
	char path[4096];
	int fd;
	uint64_t file_off; /* where buf[0] goes */
	unsigned char *buf;
	size_t used;
	const struct hoist_synth_options *opt; /* its progress callback */
	uint64_t written, total; /* bytes written (headers too) and tensor bytes, for progress */
	double since, last;
};

/* Reports progress at most every 50 ms; a non-zero answer cancels the write. */
static enum hoist_status progress(struct writer *w)
{
	double now = hoist__now();
	if (!w->opt->progress || (now - w->last < 0.05 && w->written < w->total))
		return HOIST_OK;
	w->last = now;
	struct hoist_progress pr = {HOIST_PHASE_STREAM, HOIST__MIN(w->written, w->total), w->total,
	                            now - w->since};
	if (w->opt->progress(&pr, w->opt->progress_arg) == 0)
		return HOIST_OK;
	char a[32], b[32];
	return hoist__error(HOIST_ERR_CANCELLED, "synth: cancelled after %s of %s",
	                    hoist_bytes_format(w->written, a, sizeof a),
	                    hoist_bytes_format(w->total, b, sizeof b));
}

static enum hoist_status flush(struct writer *w)
{
	size_t done = 0;
	while (done < w->used) {
		/* No library wrapper for writes: synth is the only writer, and tests reach
		 * its failure path through /dev/full. */
		ssize_t n =
		        pwrite(w->fd, w->buf + done, w->used - done, (off_t)(w->file_off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return hoist__error(HOIST_ERR_IO, "%s: write failed at offset %llu: %s",
			                    w->path, (unsigned long long)(w->file_off + done),
			                    n < 0 ? strerror(errno) : "no progress");
		done += (size_t)n;
	}
	w->file_off += w->used;
	w->written += w->used;
	w->used = 0;
	return progress(w);
}

static enum hoist_status put(struct writer *w, const void *data, size_t size)
{
	const unsigned char *p = data;
	while (size) {
		size_t n = HOIST__MIN(size, WRITE_BLOCK - w->used);
		memcpy(w->buf + w->used, p, n);
		w->used += n;
		p += n;
		size -= n;
		if (w->used == WRITE_BLOCK) {
			enum hoist_status st = flush(w);
			if (st)
				return st;
		}
	}
	return HOIST_OK;
}

static void shard_name(char *buf, size_t size, uint32_t k, uint32_t n)
{
	snprintf(buf, size, "model-%05u-of-%05u.safetensors", k + 1, n);
}

static enum hoist_status set_path(struct writer *w, const char *name)
{
	if ((size_t)snprintf(w->path, sizeof w->path, "%s/%s", w->dir, name) >= sizeof w->path)
		return hoist__error(HOIST_ERR_INVALID, "synth: path too long: %s/%s", w->dir, name);
	return HOIST_OK;
}

static enum hoist_status open_out(struct writer *w)
{
	w->fd = open(w->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (w->fd < 0)
		return hoist__error(HOIST_ERR_IO, "%s: cannot create: %s", w->path,
		                    strerror(errno));
	w->file_off = 0;
	w->used = 0;
	return HOIST_OK;
}

static enum hoist_status close_out(struct writer *w)
{
	int fd = w->fd;
	w->fd = -1;
	if (close(fd) != 0)
		return hoist__error(HOIST_ERR_IO, "%s: close failed: %s", w->path, strerror(errno));
	return HOIST_OK;
}

/* The header JSON of tensors [first, end) of shard, padded with spaces to a
 * multiple of 8 as safetensors does. */
static char *shard_header(const struct hoist__synth_layout *l, size_t first, size_t end,
                          uint64_t seed, size_t *len)
{
	char seed_text[24], *text = NULL, *padded = NULL;
	snprintf(seed_text, sizeof seed_text, "%llu", (unsigned long long)seed);
	json_t *h = json_object();
	json_t *meta = json_pack("{s:s, s:s}", "format", "pt", "hoist_synth_seed", seed_text);
	if (!h || !meta || json_object_set_new(h, "__metadata__", meta)) {
		meta = NULL;
		goto out;
	}
	for (size_t i = first; i < end; i++) {
		const struct hoist__synth_tensor *t = &l->tensors[i];
		json_t *shape = json_array();
		for (unsigned d = 0; d < t->ndim && shape; d++)
			if (json_array_append_new(shape, json_integer(t->shape[d])))
				goto out;
		json_t *e = json_pack("{s:s, s:o, s:[I, I]}", "dtype", hoist_dtype_name(t->dtype),
		                      "shape", shape, "data_offsets", (json_int_t)t->offset,
		                      (json_int_t)(t->offset + t->nbytes));
		if (!e || json_object_set_new(h, t->name, e))
			goto out;
	}
	text = json_dumps(h, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (!text)
		goto out;
	size_t n = strlen(text), padded_len = (n + 7) / 8 * 8;
	padded = hoist__malloc(padded_len + 1);
	if (padded) {
		memcpy(padded, text, n);
		memset(padded + n, ' ', padded_len - n);
		padded[padded_len] = '\0';
		*len = padded_len;
	}
out:
	free(text);
	json_decref(h);
	return padded;
}

static enum hoist_status write_shard(struct writer *w, const struct hoist__synth_layout *l,
                                     size_t first, size_t end, uint64_t seed)
{
	size_t hlen = 0;
	char *header = shard_header(l, first, end, seed, &hlen);
	if (!header)
		return hoist__error(HOIST_ERR_NOMEM, "%s: out of memory for the header", w->path);
	enum hoist_status st;
	unsigned char len8[8];
	for (int i = 0; i < 8; i++)
		len8[i] = (unsigned char)((uint64_t)hlen >> (8 * i));
	if ((st = put(w, len8, 8)) || (st = put(w, header, hlen)))
		goto out;
	for (size_t i = first; i < end; i++) {
		const struct hoist__synth_tensor *t = &l->tensors[i];
		uint64_t done = 0;
		while (done < t->nbytes) {
			size_t n = (size_t)HOIST__MIN(t->nbytes - done,
			                              (uint64_t)(WRITE_BLOCK - w->used));
			hoist_synth_fill(seed, t->name, done, w->buf + w->used, n);
			w->used += n;
			done += n;
			if (w->used == WRITE_BLOCK && (st = flush(w)))
				goto out;
		}
	}
	st = flush(w);
out:
	hoist__free(header);
	return st;
}

/* Writes text to dir/name through a temporary name and a rename. */
static enum hoist_status write_small(struct writer *w, const char *name, const char *text)
{
	enum hoist_status st;
	char tmp[300];
	snprintf(tmp, sizeof tmp, "%s.tmp", name);
	if ((st = set_path(w, tmp)) || (st = open_out(w)))
		return st;
	st = put(w, text, strlen(text));
	if (!st)
		st = flush(w);
	enum hoist_status cst = close_out(w);
	if (!st)
		st = cst;
	if (st) {
		unlink(w->path);
		return st;
	}
	char final[4096];
	snprintf(final, sizeof final, "%s/%s", w->dir, name);
	if (rename(w->path, final) != 0) {
		st = hoist__error(HOIST_ERR_IO, "%s: cannot rename to %s: %s", w->path, final,
		                  strerror(errno));
		unlink(w->path);
	}
	return st;
}

static int cmp_index_name(const void *a, const void *b)
{
	const struct hoist__synth_tensor *const *x = a, *const *y = b;
	return strcmp((*x)->name, (*y)->name);
}

static char *index_json(const struct hoist__synth_layout *l)
{
	char *text = NULL, name[64];
	const struct hoist__synth_tensor **v = hoist__calloc(l->count + 1, sizeof *v);
	json_t *map = json_object();
	json_t *root = json_pack("{s:{s:I}}", "metadata", "total_size", (json_int_t)l->total_bytes);
	if (!v || !map || !root)
		goto out;
	for (size_t i = 0; i < l->count; i++)
		v[i] = &l->tensors[i];
	qsort(v, l->count, sizeof *v, cmp_index_name);
	for (size_t i = 0; i < l->count; i++) {
		shard_name(name, sizeof name, v[i]->shard, l->shards);
		if (json_object_set_new(map, v[i]->name, json_string(name)))
			goto out;
	}
	if (json_object_set(root, "weight_map", map))
		goto out;
	text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
out:
	hoist__free(v);
	json_decref(map);
	json_decref(root);
	return text;
}

enum hoist_status hoist_synth_write(const char *dir, const struct hoist_synth_options *opt)
{
	static const struct hoist_synth_options defaults;
	struct hoist__synth_layout *l = NULL;
	struct writer w = {.dir = dir, .fd = -1, .since = hoist__now()};
	uint32_t written = 0; /* shards created so far, removed on failure */
	char *index = NULL;
	enum hoist_status st;
	if (!dir || !*dir)
		return hoist__error(HOIST_ERR_INVALID, "synth: no output directory");
	if (!opt)
		opt = &defaults;
	if ((st = hoist__synth_layout(opt, &l)))
		return st;
	w.opt = opt;
	for (size_t i = 0; i < l->count; i++)
		w.total += l->tensors[i].nbytes;
	if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
		st = hoist__error(HOIST_ERR_IO, "%s: cannot create directory: %s", dir,
		                  strerror(errno));
		goto out;
	}
	/* A stale index would make a half-written directory look whole. */
	if ((st = set_path(&w, "model.safetensors.index.json")))
		goto out;
	if (unlink(w.path) != 0 && errno != ENOENT) {
		st = hoist__error(HOIST_ERR_IO, "%s: cannot remove the old index: %s", w.path,
		                  strerror(errno));
		goto out;
	}
	w.buf = hoist__aligned_alloc(4096, WRITE_BLOCK);
	if (!w.buf) {
		st = hoist__error(HOIST_ERR_NOMEM, "synth: out of memory for the write buffer");
		goto out;
	}
	size_t first = 0;
	for (uint32_t k = 0; k < l->shards; k++) {
		double t0 = hoist__now();
		size_t end = first;
		while (end < l->count && l->tensors[end].shard == k)
			end++;
		char name[64];
		shard_name(name, sizeof name, k, l->shards);
		if ((st = set_path(&w, name)) || (st = open_out(&w)))
			goto out;
		written = k + 1;
		st = write_shard(&w, l, first, end, opt->seed);
		uint64_t size = w.file_off;
		enum hoist_status cst = close_out(&w);
		if (st || (st = cst))
			goto out;
		if (opt->log) {
			char bytes[32];
			double dt = hoist__now() - t0;
			hoist__log(opt->log, opt->log_arg, HOIST_LOG_INFO,
			           "%s: %zu tensors, %s, %.2f s (%.2f GB/s)", w.path, end - first,
			           hoist_bytes_format(size, bytes, sizeof bytes), dt,
			           dt > 0 ? (double)size / dt / 1e9 : 0.0);
		}
		first = end;
	}
	if ((st = write_small(&w, "config.json", l->config_json)))
		goto out;
	index = index_json(l);
	if (!index) {
		st = hoist__error(HOIST_ERR_NOMEM, "synth: out of memory for the index");
		goto out;
	}
	st = write_small(&w, "model.safetensors.index.json", index);
out:
	if (w.fd >= 0)
		close(w.fd);
	if (st) {
		for (uint32_t k = 0; k < written; k++) {
			char name[64], path[4096];
			shard_name(name, sizeof name, k, l->shards);
			snprintf(path, sizeof path, "%s/%s", dir, name);
			unlink(path);
		}
	}
	free(index);
	hoist__free(w.buf);
	hoist__synth_layout_free(l);
	return st;
}
