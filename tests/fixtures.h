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

#endif
