/* test_rss.c - host memory stays bounded while loading to a device: peak RSS grows by
 * no more than the staging ring + metadata + 64 MiB, whatever the model's size.
 *
 * Method. The runner forks each test, so this process is the measured one. The sim
 * device keeps its memory in memfds that are never mapped into the process (see
 * backend_sim.c), so device memory is not part of this process's RSS, just as GPU
 * memory is not; and reads go through pread, so the page cache is not mapped either.
 * What RSS then counts is what the load costs the host: staging ring, chunk tables,
 * thread stacks, the model's tensor table. We write a 2.07 GB synthetic checkpoint,
 * reset the peak (writing 5 to /proc/self/clear_refs sets VmHWM to the current RSS),
 * note VmRSS, load it to sim:0 with a 16 MiB staging ring, and compare VmHWM with
 * the baseline. As a control that the measurement can see a model-sized growth, the
 * same checkpoint loaded to a pageable cpu arena must raise VmHWM by about its size.
 *
 * Sanitizer builds skip: shadow memory and ASan's quarantine of freed blocks inflate
 * RSS by amounts that have nothing to do with hoist. */
#include "test.h"

#include <fcntl.h>
#include <unistd.h>

/* A "VmHWM:" / "VmRSS:" line of /proc/self/status, in bytes. */
static uint64_t status_kb(const char *key)
{
	size_t n;
	char *s = test_read_file("/proc/self/status", &n);
	const char *p = strstr(s, key);
	CHECK(p != NULL);
	unsigned long long kb = 0;
	CHECK(sscanf(p + strlen(key), " %llu kB", &kb) == 1);
	free(s);
	return (uint64_t)kb * 1024;
}

static void reset_peak(void)
{
	int fd = open("/proc/self/clear_refs", O_WRONLY);
	CHECK(fd >= 0);
	CHECK(write(fd, "5", 1) == 1);
	close(fd);
}

/* Checks tensors against the synthetic content, in pieces (sampling big ones). */
static void verify_synth(const struct hoist_model *m, uint64_t seed)
{
	unsigned char *got = NULL, *want = malloc(1 << 20);
	uint64_t cap = 0, checked = 0;
	for (size_t i = 0; i < hoist_model_tensor_count(m); i++) {
		struct hoist_tensor t;
		t = *hoist_model_tensor(m, i);
		if (t.nbytes > cap) {
			free(got);
			got = malloc(t.nbytes);
			cap = t.nbytes;
		}
		CHECK_OK(hoist_model_read(m, i, got, t.nbytes));
		/* first and last MiB of each tensor, and every tensor under 1 MiB whole */
		for (int end = 0; end < 2; end++) {
			uint64_t len = TEST_MIN(t.nbytes, 1u << 20);
			uint64_t off = end ? t.nbytes - len : 0;
			hoist_synth_fill(seed, t.name, off, want, len);
			if (memcmp(got + off, want, len) != 0)
				FAIL("tensor %s differs from the synthetic content near byte %llu",
				     t.name, (unsigned long long)off);
			checked += len;
		}
	}
	CHECK(checked > 0);
	free(got);
	free(want);
}

TEST_TIMEOUT(rss_bounded_while_loading_2gb_to_sim, 600)
{
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
	SKIP("RSS is measured without sanitizers (shadow memory and quarantine inflate it)");
#endif
	const char *dir = test_path("synth");
	char config[4096];
	snprintf(config, sizeof config, "%s/qwen2-vl-7b/config.json", test_data_dir());
	struct hoist_synth_options so = {.source = config, .scale = 0.125, .seed = 11};
	CHECK_OK(hoist_synth_write(dir, &so));
	struct hoist_checkpoint *ck;
	CHECK_OK(hoist_checkpoint_open(dir, NULL, &ck));
	uint64_t total = hoist_checkpoint_total_bytes(ck);
	CHECK(total > 2000000000ull);

	const uint64_t staging = 16ull << 20;
	struct hoist_options opt = {.device = "sim:0",
	                            .staging_bytes = staging,
	                            .chunk_bytes = 4ull << 20,
	                            .threads = 4};
	reset_peak();
	uint64_t base = status_kb("VmRSS:");
	CHECK(status_kb("VmHWM:") < base + (8ull << 20));
	struct hoist_model *m;
	CHECK_OK(test_load(ck, &opt, &m));
	uint64_t grew = status_kb("VmHWM:") - base;
	const struct hoist_report *r = hoist_model_report(m);
	uint64_t ring = r->staging_slots * r->staging_slot_bytes;
	CHECK_EQ_U64(r->moved_bytes, total);
	CHECK(ring <= staging + 4 * 3 * 4096 * 4);
	printf("sim load of %.2f GB: peak RSS grew %.1f MiB (ring %.1f MiB)\n", (double)total / 1e9,
	       (double)grew / 1048576, (double)ring / 1048576);
	if (grew > ring + (64ull << 20))
		FAIL("peak RSS grew %llu bytes loading %llu bytes to sim: more than the ring "
		     "(%llu) "
		     "+ 64 MiB",
		     (unsigned long long)grew, (unsigned long long)total, (unsigned long long)ring);
	verify_synth(m, 11);
	hoist_model_free(m);

	/* Control: to a pageable cpu arena the model itself is host memory. */
	struct hoist_options cpu = {.device = "cpu", .threads = 4};
	reset_peak();
	base = status_kb("VmRSS:");
	CHECK_OK(test_load(ck, &cpu, &m));
	grew = status_kb("VmHWM:") - base;
	printf("cpu load: peak RSS grew %.1f MiB\n", (double)grew / 1048576);
	CHECK(grew > total - (64ull << 20));
	hoist_model_free(m);
	hoist_checkpoint_close(ck);
}
