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
	json_object_foreach(root, name, v) {
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
	hoist_model_tensor(m, i, &t);
	CHECK_EQ_INT(ti->dtype, HOIST_BF16);
	CHECK_EQ_INT(t.dtype, HOIST_F32);
	CHECK_EQ_U64(t.nbytes, ti->numel * 4);
	uint16_t *raw = malloc(ti->nbytes + 2);
	uint32_t *got = malloc(t.nbytes + 4);
	FILE *f = fopen(hoist_checkpoint_shard_path(ck, ti->shard), "rb");
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
