/* bench_open.c - how long hoist_checkpoint_open takes on a checkpoint of 100,000
 * tensors: 4 shards of 25,000 small tensors each plus model.safetensors.index.json
 * (the index cross-check is part of what is timed). Prints the median, min and max
 * of RUNS opens (default 5), and the time of 100,000 finds by name; then the same
 * for the real Qwen2-VL-7B layout (730 tensors, 5 shards, from
 * tests/data/qwen2-vl-7b/shard-headers.json, or $HOIST_TEST_DATA) when it is there.
 *
 *   make bench-open            (builds build/bench_open and runs it)
 *   build/bench_open [RUNS] [TENSORS]     from the repository root
 *
 * Uses only the public header (and jansson to read the 7B headers). Files go to a
 * fresh directory under $TMPDIR (default /tmp), sparse, and are removed at the end. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "bench.h"
#include "hoist.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SHARDS 4

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* CPU seconds of this process: on a loaded machine, closer to the cost than wall. */
static double cpu_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void die(const char *what)
{
	fprintf(stderr, "bench_open: %s: %s\n", what, errno ? strerror(errno) : "failed");
	exit(1);
}

struct buf {
	char *p;
	size_t len, cap;
};

static void put(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct buf *b, const char *fmt, ...)
{
	for (;;) {
		va_list ap;
		va_start(ap, fmt);
		int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
		if (n >= 0 && (size_t)n < b->cap - b->len) {
			b->len += (size_t)n;
			return;
		}
		b->cap = b->cap ? b->cap * 2 : 1 << 20;
		if (!(b->p = realloc(b->p, b->cap)))
			die("realloc");
	}
}

static void tensor_name(char *out, size_t size, size_t i)
{
	/* 100,000 names like a real model's: layers of 10 tensors each */
	static const char *parts[] = {"self_attn.q_proj.weight", "self_attn.q_proj.bias",
				      "self_attn.k_proj.weight", "self_attn.k_proj.bias",
				      "self_attn.v_proj.weight", "self_attn.o_proj.weight",
				      "mlp.gate_proj.weight",    "mlp.up_proj.weight",
				      "mlp.down_proj.weight",    "input_layernorm.weight"};
	snprintf(out, size, "model.layers.%zu.%s", i / 10, parts[i % 10]);
}

/* Opens dir `runs` times; prints the median, min and max wall time and the median CPU
 * time. Leaves the last open checkpoint in *out. */
static void time_opens(const char *label, const char *dir, int runs,
		       struct hoist_checkpoint **out)
{
	double *t = calloc((size_t)runs, sizeof *t), *cpu = calloc((size_t)runs, sizeof *cpu);
	struct hoist_checkpoint *c = NULL;
	if (!t || !cpu)
		die("calloc");
	for (int r = 0; r < runs; r++) {
		hoist_checkpoint_close(c);
		double t0 = now(), c0 = cpu_now();
		if (hoist_checkpoint_open(dir, NULL, &c) != HOIST_OK) {
			fprintf(stderr, "bench_open: %s\n", hoist_errmsg());
			exit(1);
		}
		t[r] = now() - t0;
		cpu[r] = cpu_now() - c0;
	}
	qsort(t, (size_t)runs, sizeof *t, bench_cmp_double);
	qsort(cpu, (size_t)runs, sizeof *cpu, bench_cmp_double);
	printf("open %s: median %.1f ms (min %.1f, max %.1f) over %d runs, CPU median %.1f ms",
	       label, t[runs / 2] * 1e3, t[0] * 1e3, t[runs - 1] * 1e3, runs,
	       cpu[runs / 2] * 1e3);
	free(t);
	free(cpu);
	*out = c;
}

static void write_shard(const char *path, const char *header, size_t hlen, uint64_t file_size)
{
	unsigned char len[8];
	for (int k = 0; k < 8; k++)
		len[k] = (unsigned char)((uint64_t)hlen >> (8 * k));
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || write(fd, len, 8) != 8 || write(fd, header, hlen) != (ssize_t)hlen ||
	    ftruncate(fd, (off_t)file_size) != 0 || close(fd) != 0)
		die(path);
}

/* The Qwen2-VL-7B layout as sparse files in dir: false when the test data is absent. */
static bool make_qwen7b(const char *data, const char *dir)
{
	char path[4200];
	json_error_t e;
	snprintf(path, sizeof path, "%s/qwen2-vl-7b/shard-headers.json", data);
	json_t *root = json_load_file(path, 0, &e);
	if (!root)
		return false;
	const char *name;
	json_t *v;
	json_object_foreach(root, name, v) {
		json_t *h = json_object_get(v, "header");
		snprintf(path, sizeof path, "%s/%s", dir, name);
		write_shard(path, json_string_value(h), json_string_length(h),
			    (uint64_t)json_integer_value(json_object_get(v, "file_size")));
	}
	json_decref(root);
	snprintf(path, sizeof path, "%s/qwen2-vl-7b/model.safetensors.index.json", data);
	json_t *index = json_load_file(path, 0, &e);
	if (!index)
		die(path);
	snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
	if (json_dump_file(index, path, 0) != 0)
		die(path);
	json_decref(index);
	return true;
}

static void remove_dir(const char *dir)
{
	char cmd[4200];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		die(cmd);
}

int main(int argc, char **argv)
{
	int runs = argc > 1 ? atoi(argv[1]) : 5;
	size_t count = argc > 2 ? (size_t)strtoull(argv[2], NULL, 10) : 100000;
	if (runs < 1 || count < SHARDS)
		return fprintf(stderr, "usage: bench_open [RUNS] [TENSORS >= 4]\n"), 2;
	const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	const char *data = getenv("HOIST_TEST_DATA") ? getenv("HOIST_TEST_DATA") : "tests/data";
	char dir[4096], path[4200], name[128], label[128];
	snprintf(dir, sizeof dir, "%s/hoist-bench-open-XXXXXX", tmp);
	if (!mkdtemp(dir))
		die("mkdtemp");

	struct buf index = {0};
	put(&index, "{\"metadata\":{\"total_size\":%llu},\"weight_map\":{",
	    (unsigned long long)count * 64);
	size_t per = (count + SHARDS - 1) / SHARDS;
	for (size_t s = 0; s < SHARDS; s++) {
		struct buf h = {0};
		char file[64];
		snprintf(file, sizeof file, "model-%05zu-of-%05d.safetensors", s + 1, SHARDS);
		put(&h, "{\"__metadata__\":{\"format\":\"pt\"}");
		uint64_t off = 0;
		for (size_t i = s * per; i < count && i < (s + 1) * per; i++) {
			tensor_name(name, sizeof name, i);
			/* F32 [4, 4]: 64 bytes each */
			put(&h, ",\"%s\":{\"dtype\":\"F32\",\"shape\":[4,4],\"data_offsets\":[%llu,%llu]}",
			    name, (unsigned long long)off, (unsigned long long)off + 64);
			put(&index, "%s\"%s\":\"%s\"", i ? "," : "", name, file);
			off += 64;
		}
		put(&h, "}");
		snprintf(path, sizeof path, "%s/%s", dir, file);
		write_shard(path, h.p, h.len, 8 + h.len + off);
		free(h.p);
	}
	put(&index, "}}");
	snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(index.p, 1, index.len, f) != index.len || fclose(f) != 0)
		die(path);
	free(index.p);

	struct hoist_checkpoint *c = NULL;
	snprintf(label, sizeof label, "%zu tensors, %d shards + index", count, SHARDS);
	time_opens(label, dir, runs, &c);
	if (hoist_checkpoint_tensor_count(c) != count) {
		fprintf(stderr, "\nbench_open: %zu tensors, expected %zu\n",
			hoist_checkpoint_tensor_count(c), count);
		return 1;
	}
	double f0 = now();
	for (size_t i = 0; i < count; i++) {
		size_t idx;
		tensor_name(name, sizeof name, i);
		if (hoist_checkpoint_find(c, name, &idx) != HOIST_OK)
			return fprintf(stderr, "\nbench_open: %s\n", hoist_errmsg()), 1;
	}
	printf("; %zu finds by name %.1f ms\n", count, (now() - f0) * 1e3);
	hoist_checkpoint_close(c);
	remove_dir(dir);

	snprintf(dir, sizeof dir, "%s/hoist-bench-open-XXXXXX", tmp);
	if (!mkdtemp(dir))
		die("mkdtemp");
	if (make_qwen7b(data, dir)) {
		time_opens("qwen2-vl-7b layout (730 tensors, 5 shards + index)", dir, runs, &c);
		printf("\n");
		hoist_checkpoint_close(c);
	} else {
		printf("qwen2-vl-7b layout: %s/qwen2-vl-7b not found; skipped\n", data);
	}
	remove_dir(dir);
	return 0;
}
