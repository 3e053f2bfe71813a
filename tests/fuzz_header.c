/* fuzz_header.c - libFuzzer target: the input is a whole safetensors file, parsed
 * and validated in memory by the same code hoist_checkpoint_open uses. Whatever it
 * returns, it must not crash, leak or read out of bounds, and on success the
 * tensors it reports must tile the data region. */
#include "safetensors.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hoist__st_header h;
	enum hoist_status status = hoist__st_parse_bytes("fuzz.safetensors", data, size, &h);
	if (status == HOIST_OK) {
		uint64_t pos = 8 + h.header_len;
		for (size_t i = 0; i < h.tensor_count; i++) {
			const struct hoist_tensor_info *t = &h.tensors[i];
			if (t->offset != pos || !t->name || !hoist_dtype_name(t->dtype))
				abort();
			pos += t->nbytes;
		}
		if (pos != size)
			abort();
	} else if (status != HOIST_ERR_FORMAT && status != HOIST_ERR_NOMEM) {
		abort();
	} else if (!hoist_errmsg()[0]) {
		abort();
	}
	hoist__st_header_free(&h);
	return 0;
}
