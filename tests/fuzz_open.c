/* fuzz_open.c - libFuzzer target: a whole checkpoint directory (an index and files, split by
 * FUZZ_FILE_MARK lines), opened, planned and loaded. The driver and the promises it checks are in
 * fuzzdrv.c, shared with the tests that replay the corpus and the saved findings. */
#include "fuzzdrv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return fuzz_run(fuzz_open, data, size);
}
