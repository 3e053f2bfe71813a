/* fuzz_config.c - libFuzzer target: config.json, as hoist_checkpoint_open reads it and as synth
 * lays out a model from it. The driver and the promises it checks are in fuzzdrv.c, shared with the
 * tests that replay the corpus and the saved findings. */
#include "fuzzdrv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return fuzz_run(fuzz_config, data, size);
}
