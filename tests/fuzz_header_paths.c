/* fuzz_header_paths.c - libFuzzer target: the input is a whole safetensors file; its
 * header goes through the three entry points of the header reader (automatic, the
 * jansson reader alone, the purpose-built reader alone), which must agree: the
 * automatic one with jansson always (status, message, every field), the fast one
 * with jansson wherever it does not decline. Aborts on any difference. The corpus
 * tests/fuzz/header_paths is a link to tests/fuzz/header. */
#include "safetensors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void differ(const char *what, const char *detail)
{
	fprintf(stderr, "fuzz_header_paths: %s: %s\n", what, detail);
	abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint64_t n;
	if (size < 8 || hoist__st_check_prefix("fuzz.safetensors", data, size, &n) != HOIST_OK)
		return 0;
	const char *file = "fuzz.safetensors";
	struct hoist__st_header hj, ha, hf;
	char mj[1100], why[512];
	enum hoist_status sj =
	        hoist__st_parse_with(HOIST__ST_PARSER_JSON, file, data + 8, n, size, &hj);
	snprintf(mj, sizeof mj, "%s", hoist_errmsg());
	enum hoist_status sa =
	        hoist__st_parse_with(HOIST__ST_PARSER_AUTO, file, data + 8, n, size, &ha);
	if (sa != sj || (sj != HOIST_OK && strcmp(hoist_errmsg(), mj) != 0))
		differ("automatic against jansson", hoist_errmsg());
	if (sj == HOIST_OK && !hoist__st_header_same(&ha, &hj, why, sizeof why))
		differ("automatic against jansson", why);
	enum hoist_status sf =
	        hoist__st_parse_with(HOIST__ST_PARSER_FAST, file, data + 8, n, size, &hf);
	bool declined = sf == HOIST_ERR_INVALID &&
	                strstr(hoist_errmsg(), "declined by the fast header reader") != NULL;
	if (!declined) {
		if (sf != sj || (sj != HOIST_OK && strcmp(hoist_errmsg(), mj) != 0))
			differ("fast against jansson", hoist_errmsg());
		if (sj == HOIST_OK && !hoist__st_header_same(&hf, &hj, why, sizeof why))
			differ("fast against jansson", why);
	} else if (hf.tensors || hf.tensor_count) {
		differ("fast", "declined but left tensors");
	}
	if (sj == HOIST_OK) {
		uint64_t pos = 8 + n;
		for (size_t i = 0; i < hj.tensor_count; i++) {
			if (hj.tensors[i].offset != pos)
				differ("jansson", "tensors do not tile the data");
			if (i && strcmp(hj.tensors[hj.by_name[i - 1]].name,
			                hj.tensors[hj.by_name[i]].name) >= 0)
				differ("jansson", "by_name out of order");
			pos += hj.tensors[i].nbytes;
		}
		if (pos != size)
			differ("jansson", "tensors do not reach the end of the file");
	} else if (sj != HOIST_ERR_FORMAT && sj != HOIST_ERR_NOMEM) {
		differ("jansson", hoist_status_name(sj));
	}
	hoist__st_header_free(&hj);
	hoist__st_header_free(&ha);
	hoist__st_header_free(&hf);
	return 0;
}
