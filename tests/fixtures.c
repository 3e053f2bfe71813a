/* fixtures.c - shared test checkpoints (see fixtures.h). */
#include "fixtures.h"
#include "test.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <sys/stat.h>
#include <unistd.h>

static void put_le64(unsigned char *b, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		b[i] = (unsigned char)(v >> (8 * i));
}

static void write_all(int fd, const void *data, size_t size, const char *path)
{
	const char *p = data;
	while (size > 0) {
		ssize_t n = write(fd, p, size);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			FAIL("write %s: %s", path, strerror(errno));
		p += n;
		size -= (size_t)n;
	}
}

void fixture_write_safetensors(const char *path, const char *header_json, const void *data,
                               size_t data_size)
{
	size_t n = strlen(header_json);
	unsigned char prefix[8];
	put_le64(prefix, n);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		FAIL("open %s: %s", path, strerror(errno));
	write_all(fd, prefix, 8, path);
	write_all(fd, header_json, n, path);
	if (data)
		write_all(fd, data, data_size, path);
	else if (ftruncate(fd, (off_t)(8 + n + data_size)) != 0)
		FAIL("ftruncate %s: %s", path, strerror(errno));
	if (close(fd) != 0)
		FAIL("close %s: %s", path, strerror(errno));
}

static void copy_file(const char *from, const char *to)
{
	size_t size;
	char *data = test_read_file(from, &size);
	test_write_file(to, data, size);
	free(data);
}

const char *fixture_qwen7b_sparse(void)
{
	static char dir[4096];
	if (dir[0])
		return dir;
	char src[4096];
	snprintf(src, sizeof src, "%s/qwen2-vl-7b", test_data_dir());
	snprintf(dir, sizeof dir, "%s/qwen2-vl-7b", test_tmpdir());
	if (mkdir(dir, 0755) != 0 && errno != EEXIST)
		FAIL("mkdir %s: %s", dir, strerror(errno));

	json_error_t jerr;
	json_t *root = json_load_file(test_join(src, "shard-headers.json"), 0, &jerr);
	if (!json_is_object(root))
		FAIL("%s/shard-headers.json: %s", src, jerr.text);
	const char *name;
	json_t *v;
	json_object_foreach(root, name, v)
	{
		json_t *header = json_object_get(v, "header");
		json_t *size = json_object_get(v, "file_size");
		if (!json_is_string(header) || !json_is_integer(size))
			FAIL("shard-headers.json: entry %s lacks header or file_size", name);
		const char *path = test_join(dir, name);
		size_t n = json_string_length(header);
		unsigned char prefix[8];
		put_le64(prefix, n);
		int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd < 0)
			FAIL("open %s: %s", path, strerror(errno));
		write_all(fd, prefix, 8, path);
		write_all(fd, json_string_value(header), n, path);
		if ((long long)json_integer_value(size) < (long long)(8 + n))
			FAIL("shard-headers.json: %s: file_size smaller than its header", name);
		if (ftruncate(fd, (off_t)json_integer_value(size)) != 0)
			FAIL("ftruncate %s: %s", path, strerror(errno));
		close(fd);
	}
	json_decref(root);
	copy_file(test_join(src, "model.safetensors.index.json"),
	          test_join(dir, "model.safetensors.index.json"));
	copy_file(test_join(src, "config.json"), test_join(dir, "config.json"));
	return dir;
}

void fixture_check_bf16_widened(const struct hoist_checkpoint *ck, const struct hoist_model *m,
                                size_t i)
{
	const struct hoist_tensor_info *ti = hoist_checkpoint_tensor(ck, i);
	struct hoist_tensor t;
	t = *hoist_model_tensor(m, i);
	CHECK_EQ_INT(ti->dtype, HOIST_BF16);
	CHECK_EQ_INT(t.dtype, HOIST_F32);
	CHECK_EQ_U64(t.nbytes, ti->numel * 4);
	uint16_t *raw = malloc(ti->nbytes + 2);
	uint32_t *got = malloc(t.nbytes + 4);
	FILE *f = fopen(hoist_checkpoint_shard(ck, ti->shard)->path, "rb");
	CHECK(f && fseek(f, (long)ti->offset, SEEK_SET) == 0);
	CHECK_EQ_U64(fread(raw, 1, ti->nbytes, f), ti->nbytes);
	fclose(f);
	CHECK_OK(hoist_model_read(m, i, got, t.nbytes));
	for (uint64_t e = 0; e < ti->numel; e++)
		if (got[e] != (uint32_t)raw[e] << 16)
			FAIL("%s element %llu: %08x != %04x << 16", ti->name, (unsigned long long)e,
			     got[e], raw[e]);
	free(raw);
	free(got);
}

/* ---- generated checkpoints -------------------------------------------------- */

uint8_t gen_byte(size_t tensor, uint64_t off)
{
	uint64_t x = (tensor + 1) * 0x9e3779b97f4a7c15ull ^ (off * 0xbf58476d1ce4e5b9ull);
	x ^= x >> 31;
	return (uint8_t)(x * 0x94d049bb133111ebull >> 56);
}

/* Sizes of tensor i (elements): a mix of tiny, odd and chunk-crossing tensors. */
static uint64_t gen_numel(size_t i, uint64_t big)
{
	static const uint64_t small[] = {1, 3, 7, 64, 250, 1023, 4099, 20000};
	if (i % 5 == 4)
		return big + i;
	return small[i % TEST_ARRAY_SIZE(small)];
}

void gen_checkpoint(const char *dir, size_t nshards, size_t per_shard, uint64_t big)
{
	char cmd[1200];
	snprintf(cmd, sizeof cmd, "mkdir -p '%s'", dir);
	CHECK_EQ_INT(system(cmd), 0);
	static const char *dt[] = {"BF16", "F32", "F16", "U8", "I64"};
	static const unsigned dsz[] = {2, 4, 2, 1, 8};
	size_t icap = 1 << 16, ilen = 0;
	char *index = malloc(icap);
	ilen += (size_t)snprintf(index, icap, "{\"metadata\": {}, \"weight_map\": {");
	size_t t = 0;
	for (size_t s = 0; s < nshards; s++) {
		char fname[64];
		snprintf(fname, sizeof fname, "model-%05zu-of-%05zu.safetensors", s + 1, nshards);
		size_t hcap = 1 << 16, hlen = 0;
		char *hdr = malloc(hcap);
		hlen += (size_t)snprintf(hdr, hcap, "{\"__metadata__\":{\"format\":\"pt\"}");
		uint64_t total = 0;
		size_t t0 = t;
		for (size_t k = 0; k < per_shard; k++, t++) {
			size_t d = t % 5;
			uint64_t n = gen_numel(t, big) * dsz[d];
			hlen += (size_t)snprintf(
			        hdr + hlen, hcap - hlen,
			        ",\"layers.%zu.w%zu\":{\"dtype\":\"%s\",\"shape\":[%llu],"
			        "\"data_offsets\":[%llu,%llu]}",
			        t / 4, t, dt[d], (unsigned long long)(n / dsz[d]),
			        (unsigned long long)total, (unsigned long long)(total + n));
			ilen += (size_t)snprintf(index + ilen, icap - ilen,
			                         "%s\"layers.%zu.w%zu\": \"%s\"", t ? ", " : "",
			                         t / 4, t, fname);
			total += n;
		}
		hlen += (size_t)snprintf(hdr + hlen, hcap - hlen, "}");
		CHECK(hlen < hcap);
		unsigned char *data = malloc(total ? total : 1);
		uint64_t pos = 0;
		for (size_t u = t0; u < t; u++) {
			uint64_t n = gen_numel(u, big) * dsz[u % 5];
			for (uint64_t b = 0; b < n; b++)
				data[pos + b] = gen_byte(u, b);
			pos += n;
		}
		fixture_write_safetensors(test_join(dir, fname), hdr, data, total);
		free(data);
		free(hdr);
	}
	ilen += (size_t)snprintf(index + ilen, icap - ilen, "}}");
	CHECK(ilen < icap);
	test_write_file(test_join(dir, "model.safetensors.index.json"), index, ilen);
	free(index);
}

/* Every tensor of m reads back as gen_byte says (tensor numbering = generation order,
 * since names sort in file order within shards and shards are in order). */
void check_gen(const struct hoist_model *m, const struct hoist_checkpoint *ck)
{
	for (size_t i = 0; i < hoist_model_tensor_count(m); i++) {
		const struct hoist_tensor_info *ti = hoist_checkpoint_tensor(ck, i);
		size_t gen = (size_t)strtoull(strrchr(ti->name, 'w') + 1, NULL, 10);
		struct hoist_tensor t;
		t = *hoist_model_tensor(m, i);
		CHECK_STR(t.name, ti->name);
		CHECK_EQ_U64(t.nbytes, ti->nbytes);
		unsigned char *buf = malloc(t.nbytes ? t.nbytes : 1);
		CHECK_OK(hoist_model_read(m, i, buf, t.nbytes));
		for (uint64_t b = 0; b < t.nbytes; b++)
			if (buf[b] != gen_byte(gen, b))
				FAIL("tensor %s byte %llu: %u != %u", ti->name,
				     (unsigned long long)b, buf[b], gen_byte(gen, b));
		free(buf);
	}
}

/* ---- reference checkpoints against the manifest ----------------------------------- */

/* Compares every tensor of m with manifest.json's sha256 for file key `key`. */
void check_manifest(const struct hoist_model *m, const char *key, const char *dev)
{
	json_error_t jerr;
	json_t *root =
	        json_load_file(test_join(test_data_dir(), "reference/manifest.json"), 0, &jerr);
	CHECK(root != NULL);
	size_t n = hoist_model_tensor_count(m);
	CHECK(n > 0);
	for (size_t i = 0; i < n; i++) {
		struct hoist_tensor t;
		t = *hoist_model_tensor(m, i);
		/* tiny-qwen2-vl's tensors are spread over 3 files: find the one naming it */
		json_t *entry = NULL;
		const char *k;
		json_t *v;
		json_object_foreach(root, k, v)
		{
			if (strncmp(k, key, strlen(key)) != 0)
				continue;
			json_t *e = json_object_get(json_object_get(v, "tensors"), t.name);
			if (e)
				entry = e;
		}
		if (!entry)
			FAIL("tensor %s not in the manifest under %s", t.name, key);
		char dev_name[24];
		CHECK_STR(hoist_device_format(t.device, dev_name, sizeof dev_name), dev);
		unsigned char *buf = malloc(t.nbytes ? t.nbytes : 1);
		CHECK_OK(hoist_model_read(m, i, buf, t.nbytes));
		char hex[65];
		test_sha256_hex(buf, t.nbytes, hex);
		if (strcmp(hex, json_string_value(json_object_get(entry, "sha256"))) != 0)
			FAIL("tensor %s on %s: sha256 %s differs from the manifest", t.name, dev,
			     hex);
		/* torch counts sub-byte dtypes (F4, F6) in packed units; the file in elements */
		json_t *shape = json_object_get(entry, "shape");
		if (hoist_dtype_bits(t.dtype) < 8)
			shape = NULL;
		CHECK(!shape || json_array_size(shape) == t.ndim);
		for (unsigned d = 0; shape && d < t.ndim; d++)
			CHECK_EQ_INT(json_integer_value(json_array_get(shape, d)), t.shape[d]);
		free(buf);
	}
	json_decref(root);
}
