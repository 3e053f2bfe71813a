/* bench_plan.c - how long planning takes, from headers alone: the real Qwen2-VL-7B
 * layout (730 tensors, 5 shards, as sparse files) and a synthetic checkpoint of
 * 100,000 tensors in 10 shards. Prints one row per case: median milliseconds of
 * open, plan, print and JSON over the runs.
 *
 *   make bench-plan              (builds build/bench_plan and runs it)
 *   build/bench_plan [RUNS]      from the repository root (reads tests/data)
 *
 * Uses only the public header. The files it writes go to a fresh directory under
 * $TMPDIR (default /tmp) and are removed at the end; they are sparse, so they cost
 * a few MB of disk whatever their nominal size. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "bench.h"
#include "hoist.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void die(const char *what)
{
	fprintf(stderr, "bench_plan: %s: %s\n", what, errno ? strerror(errno) : "failed");
	exit(1);
}

static void write_shard(const char *path, const char *header, size_t hlen, uint64_t file_size)
{
	unsigned char len[8];
	for (int i = 0; i < 8; i++)
		len[i] = (unsigned char)((uint64_t)hlen >> (8 * i));
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || write(fd, len, 8) != 8 || write(fd, header, hlen) != (ssize_t)hlen ||
	    ftruncate(fd, (off_t)file_size) != 0 || close(fd) != 0)
		die(path);
}

static void copy_file(const char *from, const char *to)
{
	FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
	char buf[65536];
	size_t n;
	if (!in || !out)
		die(from);
	while ((n = fread(buf, 1, sizeof buf, in)) > 0)
		if (fwrite(buf, 1, n, out) != n)
			die(to);
	fclose(in);
	if (fclose(out) != 0)
		die(to);
}

/* The 7B layout from tests/data/qwen2-vl-7b/shard-headers.json. */
static void make_qwen7b(const char *data, const char *dir)
{
	char path[4096];
	json_error_t e;
	snprintf(path, sizeof path, "%s/qwen2-vl-7b/shard-headers.json", data);
	json_t *root = json_load_file(path, 0, &e);
	if (!root) {
		fprintf(stderr, "bench_plan: %s: %s (run from the repository root)\n", path,
		        e.text);
		exit(1);
	}
	mkdir(dir, 0755);
	const char *name;
	json_t *v;
	json_object_foreach(root, name, v)
	{
		json_t *h = json_object_get(v, "header");
		snprintf(path, sizeof path, "%s/%s", dir, name);
		write_shard(path, json_string_value(h), json_string_length(h),
		            (uint64_t)json_integer_value(json_object_get(v, "file_size")));
	}
	json_decref(root);
	char from[4096];
	snprintf(from, sizeof from, "%s/qwen2-vl-7b/model.safetensors.index.json", data);
	snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
	copy_file(from, path);
}

/* 100,000 BF16 tensors: 1,000 layers of 100 tensors ("model.layers.L.block.K.weight",
 * sizes cycling through 1..7 x 8 KiB), 10 shards of 100 layers, and an index. */
#define SYN_LAYERS 1000
#define SYN_PER_LAYER 100
#define SYN_SHARDS 10

static void make_synthetic(const char *dir)
{
	char path[4096], fname[64];
	size_t cap = 16u << 20;
	char *h = malloc(cap), *idx = malloc(cap);
	size_t ilen = 0;
	if (!h || !idx)
		die("malloc");
	mkdir(dir, 0755);
	ilen += (size_t)snprintf(idx + ilen, cap - ilen, "{\"metadata\":{},\"weight_map\":{");
	for (int s = 0; s < SYN_SHARDS; s++) {
		size_t hlen = 0;
		uint64_t off = 0;
		snprintf(fname, sizeof fname, "model-%05d-of-%05d.safetensors", s + 1, SYN_SHARDS);
		hlen += (size_t)snprintf(h + hlen, cap - hlen, "{");
		int per = SYN_LAYERS / SYN_SHARDS;
		for (int l = s * per; l < (s + 1) * per; l++) {
			for (int k = 0; k < SYN_PER_LAYER; k++) {
				uint64_t numel =
				        4096u * (uint64_t)(1 + (l * SYN_PER_LAYER + k) % 7);
				hlen += (size_t)snprintf(
				        h + hlen, cap - hlen,
				        "%s\"model.layers.%d.block.%d.weight\":{\"dtype\":"
				        "\"BF16\",\"shape\":[%llu],\"data_offsets\":[%llu,%llu]}",
				        hlen > 1 ? "," : "", l, k, (unsigned long long)numel,
				        (unsigned long long)off,
				        (unsigned long long)(off + 2 * numel));
				ilen += (size_t)snprintf(
				        idx + ilen, cap - ilen,
				        "%s\"model.layers.%d.block.%d.weight\":\"%s\"",
				        l || k ? "," : "", l, k, fname);
				off += 2 * numel;
			}
		}
		hlen += (size_t)snprintf(h + hlen, cap - hlen, "}");
		if (hlen >= cap - 1 || ilen >= cap - 1)
			die("header buffer too small");
		snprintf(path, sizeof path, "%s/%s", dir, fname);
		write_shard(path, h, hlen, 8 + hlen + off);
	}
	ilen += (size_t)snprintf(idx + ilen, cap - ilen, "}}");
	snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(idx, 1, ilen, f) != ilen || fclose(f) != 0)
		die(path);
	free(h);
	free(idx);
}

static void run_case(const char *label, const char *path, const struct hoist_options *opt, int runs)
{
	double t_open[64], t_plan[64], t_print[64], t_json[64];
	FILE *null = fopen("/dev/null", "w");
	size_t tensors = 0;
	char where[256] = "";
	if (!null)
		die("/dev/null");
	for (int r = 0; r < runs; r++) {
		struct hoist_checkpoint *c;
		struct hoist_plan *p;
		double t0 = now();
		if (hoist_checkpoint_open(path, opt, &c) != HOIST_OK) {
			fprintf(stderr, "bench_plan: %s\n", hoist_errmsg());
			exit(1);
		}
		double t1 = now();
		if (hoist_plan_create(c, opt, &p) != HOIST_OK) {
			fprintf(stderr, "bench_plan: %s: %s\n", label, hoist_errmsg());
			exit(1);
		}
		double t2 = now();
		hoist_plan_print(p, null);
		double t3 = now();
		hoist_plan_print_json(p, null);
		double t4 = now();
		t_open[r] = (t1 - t0) * 1e3;
		t_plan[r] = (t2 - t1) * 1e3;
		t_print[r] = (t3 - t2) * 1e3;
		t_json[r] = (t4 - t3) * 1e3;
		if (r == 0) {
			tensors = hoist_checkpoint_tensor_count(c);
			size_t len = 0;
			for (size_t i = 0; i < hoist_plan_device_count(p); i++) {
				const struct hoist_plan_device *pd = hoist_plan_device(p, i);
				char dn[32];
				len += (size_t)snprintf(
				        where + len, sizeof where - len, "%s%s %.2f", i ? ", " : "",
				        hoist_device_format(pd->device, dn, sizeof dn),
				        (double)pd->bytes / 1e9);
			}
		}
		hoist_plan_free(p);
		hoist_checkpoint_close(c);
	}
	fclose(null);
	printf("%-34s %8zu %9.2f %9.2f %9.2f %9.2f   %s GB\n", label, tensors, bench_median(t_open, runs),
	       bench_median(t_plan, runs), bench_median(t_print, runs), bench_median(t_json, runs), where);
}

int main(int argc, char **argv)
{
	int runs = argc > 1 ? atoi(argv[1]) : 9;
	if (runs < 1 || runs > 64)
		runs = 9;
	const char *data = getenv("HOIST_TEST_DATA") ? getenv("HOIST_TEST_DATA") : "tests/data";
	const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	char root[1024], q7[1100], syn[1100], map[1100], cmd[1200];
	snprintf(root, sizeof root, "%s/bench_plan.XXXXXX", tmp);
	if (!mkdtemp(root))
		die(root);
	snprintf(q7, sizeof q7, "%s/qwen2-vl-7b", root);
	snprintf(syn, sizeof syn, "%s/synthetic-100k", root);
	snprintf(map, sizeof map, "%s/map.json", root);
	make_qwen7b(data, q7);
	double t0 = now();
	make_synthetic(syn);
	fprintf(stderr, "bench_plan: wrote the synthetic checkpoint in %.2f s\n", now() - t0);
	FILE *f = fopen(map, "w");
	if (!f ||
	    fprintf(f, "{\"\": \"cpu\", \"model.layers\": 0, \"model.layers.500\": 1,"
	               " \"model.layers.999.block.7\": \"disk\"}\n") < 0 ||
	    fclose(f) != 0)
		die(map);

	printf("planning from headers, median of %d runs (ms); plans for described machines "
	       "(no GPU needed)\n",
	       runs);
	printf("%-34s %8s %9s %9s %9s %9s   %s\n", "case", "tensors", "open", "plan", "print",
	       "json", "bytes per device");
	struct hoist_options o1 = {.device = "cpu", .max_memory = "cpu=32GiB"};
	run_case("qwen2-vl-7b cpu (single target)", q7, &o1, runs);
	struct hoist_options o2 = {.device_map = "sequential", .max_memory = "0=10GiB,cpu=30GiB"};
	run_case("qwen2-vl-7b sequential 10GiB", q7, &o2, runs);
	struct hoist_options o3 = {.max_memory = "0=12GiB,1=12GiB,cpu=8GiB"};
	run_case("qwen2-vl-7b auto 2 x 12GiB", q7, &o3, runs);
	struct hoist_options o4 = {.max_memory = "0=6GiB,cpu=6GiB"};
	run_case("qwen2-vl-7b auto 6GiB + cpu + disk", q7, &o4, runs);
	struct hoist_options o5 = {.max_memory = "0=1GB,1=1GB,2=1GB,3=1GB,cpu=2GB"};
	run_case("synthetic-100k auto 4 x 1GB", syn, &o5, runs);
	struct hoist_options o6 = {.device_map = "sequential", .max_memory = "0=2GB,cpu=1GB"};
	run_case("synthetic-100k sequential", syn, &o6, runs);
	struct hoist_options o7 = {.device_map = map, .max_memory = "0=8GB,1=8GB,cpu=8GB"};
	run_case("synthetic-100k explicit map", syn, &o7, runs);

	snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
	if (system(cmd) != 0)
		fprintf(stderr, "bench_plan: could not remove %s\n", root);
	return 0;
}
