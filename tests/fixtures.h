/*
 * fixtures.h - checkpoints the tests share: the full-size Qwen2-VL-7B layout as
 * sparse files, and single safetensors files written from a header string.
 */
#ifndef HOIST_TEST_FIXTURES_H
#define HOIST_TEST_FIXTURES_H

#include "hoist.h"

#include <stddef.h>

/* Builds, in test_tmpdir()/qwen2-vl-7b, the Qwen2-VL-7B checkpoint's exact layout
 * from tests/data/qwen2-vl-7b/shard-headers.json: each of the 5 shards is the
 * 8-byte little-endian header length, the exact header JSON bytes (padding
 * included), then a hole up to the real file size (16.6 GB in all, no disk used);
 * plus copies of model.safetensors.index.json and config.json. Tensor data reads
 * as zeros. Returns the directory (static storage); built once per test process.
 * Fails the test on any error. */
const char *fixture_qwen7b_sparse(void);

/* Writes a safetensors file: 8-byte LE length of header_json, header_json itself
 * (exactly strlen bytes, no padding added), then data_size bytes of data (data may
 * be NULL for zeros). Fails the test on error. */
void fixture_write_safetensors(const char *path, const char *header_json, const void *data,
                               size_t data_size);

/* Asserts that tensor i, stored as BF16, was loaded widened to F32 exactly: each
 * element's 16 stored bits (read from the shard file, not through hoist) are the high
 * half of the loaded 32 (hoist_model_read, from whatever device holds it). */
void fixture_check_bf16_widened(const struct hoist_checkpoint *ck, const struct hoist_model *m,
                                size_t i);

/* Generated multi-shard checkpoints whose every byte is known: nshards shards of
 * per_shard tensors (U8, names "...w<N>" in generation order), a mix of tiny, odd-sized
 * and `big`-element tensors, written with an index into dir. Byte `off` of tensor N
 * is gen_byte(N, off); check_gen asserts that every tensor of m reads back so. */
uint8_t gen_byte(size_t tensor, uint64_t off);
void gen_checkpoint(const char *dir, size_t nshards, size_t per_shard, uint64_t big);
void check_gen(const struct hoist_model *m, const struct hoist_checkpoint *ck);

/* Asserts that every tensor of m, loaded from tests/data/reference file `key` (a
 * manifest key or its directory prefix), is on device `dev` and that its bytes,
 * read back, have manifest.json's sha256 (and its shape). */
void check_manifest(const struct hoist_model *m, const char *key, const char *dev);

#endif
