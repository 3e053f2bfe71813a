/* fuzz_device_map.c - libFuzzer target: a device-map file, planned and loaded against a fixed
 * checkpoint. The driver and the promises it checks are in fuzzdrv.c, shared with the tests that
 * replay the corpus and the saved findings. */
#include "fuzzdrv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return fuzz_run(fuzz_device_map, data, size);
}
