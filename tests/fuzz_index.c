/* fuzz_index.c - libFuzzer target: model.safetensors.index.json over fixed shards.
 * The driver and the promises it checks are in fuzzdrv.c, shared with the tests that
 * replay the corpus and the saved findings. */
#include "fuzzdrv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return fuzz_run(fuzz_index, data, size);
}
