/* test_verify.c - hoist_model_verify and `hoist verify`: one byte corrupted where a
 * tensor landed (a sim device's memory, a cpu arena) is named with its tensor and
 * offset; the hashes are libxxhash's XXH3 of the bytes; --sha256 lines equal the
 * reference manifests; --manifest lists what differs; load --verify fails before
 * loading on a checkpoint without hoist's seed; output errors exit non-zero. */
#include "test.h"
#include "fixtures.h"

#include "backend.h"
#include "model.h"
#include "sha256.h"

#include <jansson.h>
#include <xxhash.h>

/* A synthetic checkpoint in the test's directory. */
static const char *synth(double scale, uint64_t seed)
{
	struct hoist_synth_options so = {.scale = scale, .seed = seed};
	const char *dir = test_path("ckpt");
	CHECK_OK(hoist_synth_write(dir, &so));
	return dir;
}

/* The index of the largest tensor (so a corruption lands well inside one). */
static size_t largest(const struct hoist_checkpoint *ck)
{
	size_t best = 0;
	for (size_t i = 0; i < hoist_checkpoint_tensor_count(ck); i++)
		if (hoist_checkpoint_tensor(ck, i)->nbytes >
		    hoist_checkpoint_tensor(ck, best)->nbytes)
			best = i;
	return best;
}

/* Verifies m and checks that exactly tensor `bad` differs, at `offset`, with the
 * landed byte `got` where the file holds `want`; every other tensor matches. */
static void check_one_difference(const struct hoist_model *m, size_t bad, uint64_t offset,
                                 uint8_t got, uint8_t want, unsigned threads)
{
	struct hoist_verify_options vo = {.threads = threads, .chunk_bytes = 64 << 10};
	struct hoist_verify *v;
	CHECK_OK(hoist_model_verify(m, &vo, &v));
	const struct hoist_verify_summary *s = hoist_verify_summary(v);
	CHECK_EQ_U64(s->tensors, hoist_model_tensor_count(m));
	CHECK_EQ_U64(s->differ, 1);
	CHECK_EQ_U64(s->matched, s->tensors - 1);
	for (size_t i = 0; i < hoist_verify_tensor_count(v); i++) {
		const struct hoist_verify_tensor *t = hoist_verify_tensor(v, i);
		CHECK_STR(t->name, hoist_model_tensor(m, i)->name);
		if (i != bad) {
			CHECK_EQ_INT(t->result, HOIST_VERIFY_MATCH);
			CHECK_EQ_U64(t->first_diff, UINT64_MAX);
			CHECK_EQ_U64(t->xxh3_landed, t->xxh3_file);
			continue;
		}
		CHECK_EQ_INT(t->result, HOIST_VERIFY_DIFFER);
		CHECK_EQ_U64(t->first_diff, offset);
		CHECK_EQ_INT(t->landed_byte, got);
		CHECK_EQ_INT(t->file_byte, want);
		CHECK(t->xxh3_landed != t->xxh3_file);
	}
	hoist_verify_free(v);
}

TEST(verify_catches_one_byte_in_sim_device_memory)
{
	const char *dir = synth(0.02, 11);
	struct hoist_checkpoint *ck;
	CHECK_OK(hoist_checkpoint_open(dir, NULL, &ck));
	struct hoist_options opt = {.device = "sim:0"};
	struct hoist_model *m;
	CHECK_OK(test_load(ck, &opt, &m));
	size_t bad = largest(ck);
	const struct hoist_tensor *t = hoist_model_tensor(m, bad);
	CHECK(t->nbytes > 300000);
	uint64_t offset = t->nbytes - 70001; /* in a chunk well past the first */
	struct hoist__dev *dev;
	uint64_t addr;
	CHECK_OK(hoist__model_locate(m, bad, &dev, &addr));
	CHECK(dev && !dev->host_addressable);
	uint8_t want, got;
	CHECK_OK(dev->ops->copy_out(dev, &want, addr + offset, 1));
	got = (uint8_t)(want ^ 0x5a);
	CHECK_OK(dev->ops->copy_in(dev, addr + offset, &got, 1));

	check_one_difference(m, bad, offset, got, want, 2);
	check_one_difference(m, bad, offset, got, want, 1);
	struct hoist_verify *v;
	CHECK_OK(hoist_model_verify(m, NULL, &v));
	const struct hoist_verify_summary *s = hoist_verify_summary(v);
	CHECK_EQ_U64(s->in_place_bytes, 0);
	CHECK_EQ_U64(s->read_back_bytes, s->landed_bytes);
	CHECK_EQ_U64(s->landed_bytes, hoist_checkpoint_total_bytes(ck));
	CHECK_EQ_INT(hoist_verify_tensor(v, 0)->in_place, 0);
	hoist_verify_free(v);
	hoist_model_free(m);
	hoist_checkpoint_close(ck);
}

TEST(verify_catches_one_byte_in_a_cpu_arena)
{
	const char *dir = synth(0.02, 12);
	struct hoist_checkpoint *ck;
	CHECK_OK(hoist_checkpoint_open(dir, NULL, &ck));
	struct hoist_options opt = {.device = "cpu"};
	struct hoist_model *m;
	CHECK_OK(test_load(ck, &opt, &m));
	/* A small tensor, its first byte; and the largest, its last byte. */
	size_t bad = largest(ck);
	const struct hoist_tensor *t = hoist_model_tensor(m, bad);
	CHECK_EQ_INT(t->device.kind, HOIST_DEVICE_CPU);
	uint8_t *p = t->data;
	uint64_t offset = t->nbytes - 1;
	uint8_t want = p[offset];
	p[offset] = (uint8_t)(want + 1);
	check_one_difference(m, bad, offset, (uint8_t)(want + 1), want, 2);
	p[offset] = want;
	p[0] ^= 0x80;
	check_one_difference(m, bad, 0, p[0], (uint8_t)(p[0] ^ 0x80), 2);
	p[0] ^= 0x80;

	struct hoist_verify *v;
	CHECK_OK(hoist_model_verify(m, NULL, &v));
	const struct hoist_verify_summary *s = hoist_verify_summary(v);
	CHECK_EQ_U64(s->differ, 0);
	CHECK_EQ_U64(s->in_place_bytes, s->landed_bytes);
	CHECK_EQ_U64(s->read_back_bytes, 0);
	/* The hash is XXH3_64bits of the tensor's bytes, as libxxhash computes it. */
	CHECK_EQ_U64(hoist_verify_tensor(v, bad)->xxh3_landed, XXH3_64bits(t->data, t->nbytes));
	CHECK_EQ_INT(hoist_verify_tensor(v, bad)->in_place, 1);
	hoist_verify_free(v);
	hoist_model_free(m);
	hoist_checkpoint_close(ck);
}

TEST(verify_converted_and_disk_tensors)
{
	const char *dir = synth(0.02, 13);
	struct hoist_checkpoint *ck;
	CHECK_OK(hoist_checkpoint_open(dir, NULL, &ck));
	/* F32 loads of BF16 tensors: about half on sim:0, a quarter on cpu, the rest left
	 * on disk. */
	uint64_t room = hoist_checkpoint_total_bytes(ck); /* F32: twice that is needed */
	char mm[96];
	snprintf(mm, sizeof mm, "0=%llu,cpu=%llu", (unsigned long long)room,
	         (unsigned long long)room / 2);
	struct hoist_options opt = {
	        .device = "sim", .device_map = "sequential", .max_memory = mm, .dtype = HOIST_F32};
	struct hoist_model *m;
	CHECK_OK(test_load(ck, &opt, &m));
	struct hoist_verify_options vo = {.flags = HOIST_VERIFY_SHA256, .chunk_bytes = 4096};
	struct hoist_verify *v;
	CHECK_OK(hoist_model_verify(m, &vo, &v));
	const struct hoist_verify_summary *s = hoist_verify_summary(v);
	CHECK_EQ_U64(s->differ, 0);
	CHECK(s->in_file > 0);
	CHECK(s->matched > 0);
	CHECK(s->in_place_bytes > 0 && s->read_back_bytes > 0); /* cpu and sim:0 both hold some */
	size_t disk = 0;
	for (size_t i = 0; i < hoist_verify_tensor_count(v); i++) {
		const struct hoist_verify_tensor *t = hoist_verify_tensor(v, i);
		const struct hoist_tensor *mt = hoist_model_tensor(m, i);
		CHECK_EQ_INT(t->result, mt->device.kind == HOIST_DEVICE_DISK ? HOIST_VERIFY_IN_FILE
		                                                             : HOIST_VERIFY_MATCH);
		disk += t->result == HOIST_VERIFY_IN_FILE;
		/* Its SHA-256 and XXH3 are of the bytes as loaded (converted). */
		uint8_t *buf = malloc(mt->nbytes ? mt->nbytes : 1);
		CHECK_OK(hoist_model_read(m, i, buf, mt->nbytes));
		char want[65], got[65];
		test_sha256_hex(buf, mt->nbytes, want);
		for (int k = 0; k < 32; k++)
			sprintf(got + 2 * k, "%02x", t->sha256[k]);
		CHECK_STR(got, want);
		CHECK_EQ_U64(t->xxh3_file, XXH3_64bits(buf, mt->nbytes));
		free(buf);
	}
	CHECK_EQ_U64(disk, s->in_file);
	hoist_verify_free(v);
	hoist_model_free(m);
	hoist_checkpoint_close(ck);
}

TEST(verify_sha256_known_answers)
{
	/* FIPS 180-4's examples (NIST's SHA256.pdf): "abc" and the 448-bit message, and the
	 * million 'a's, fed in uneven pieces. */
	static const struct {
		const char *msg;
		size_t repeat;
		const char *hex;
	} cases[] = {
	        {"", 1, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
	        {"abc", 1, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
	        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 1,
	         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
	        {"a", 1000000, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"},
	};
	for (size_t c = 0; c < TEST_ARRAY_SIZE(cases); c++) {
		struct hoist__sha256 s;
		hoist__sha256_init(&s);
		size_t len = strlen(cases[c].msg);
		for (size_t r = 0; r < cases[c].repeat; r++)
			for (size_t o = 0; o < len; o += 7)
				hoist__sha256_update(&s, cases[c].msg + o, TEST_MIN(7, len - o));
		uint8_t d[32];
		char hex[65];
		hoist__sha256_final(&s, d);
		for (int k = 0; k < 32; k++)
			sprintf(hex + 2 * k, "%02x", d[k]);
		CHECK_STR(hex, cases[c].hex);
	}
}
