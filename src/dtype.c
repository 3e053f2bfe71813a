/* dtype.c - the safetensors dtypes: spelling and bit size. */
#include "internal.h"

#include <string.h>

static const struct {
	const char *name;
	unsigned bits;
} dtypes[HOIST_DTYPE_COUNT] = {
	[HOIST_BOOL] = {"BOOL", 8},        [HOIST_U8] = {"U8", 8},
	[HOIST_I8] = {"I8", 8},            [HOIST_F8_E5M2] = {"F8_E5M2", 8},
	[HOIST_F8_E4M3] = {"F8_E4M3", 8},  [HOIST_F8_E8M0] = {"F8_E8M0", 8},
	[HOIST_F4] = {"F4", 4},            [HOIST_F6_E2M3] = {"F6_E2M3", 6},
	[HOIST_F6_E3M2] = {"F6_E3M2", 6},  [HOIST_I16] = {"I16", 16},
	[HOIST_U16] = {"U16", 16},         [HOIST_F16] = {"F16", 16},
	[HOIST_BF16] = {"BF16", 16},       [HOIST_I32] = {"I32", 32},
	[HOIST_U32] = {"U32", 32},         [HOIST_F32] = {"F32", 32},
	[HOIST_C64] = {"C64", 64},         [HOIST_F64] = {"F64", 64},
	[HOIST_I64] = {"I64", 64},         [HOIST_U64] = {"U64", 64},
};

const char *hoist_dtype_name(enum hoist_dtype dtype)
{
	if ((unsigned)dtype == HOIST_DTYPE_NONE || (unsigned)dtype >= HOIST_DTYPE_COUNT)
		return NULL;
	return dtypes[dtype].name;
}

unsigned hoist_dtype_bits(enum hoist_dtype dtype)
{
	if ((unsigned)dtype == HOIST_DTYPE_NONE || (unsigned)dtype >= HOIST_DTYPE_COUNT)
		return 0;
	return dtypes[dtype].bits;
}

enum hoist_status hoist_dtype_parse(const char *name, enum hoist_dtype *out)
{
	if (name) {
		for (unsigned i = 1; i < HOIST_DTYPE_COUNT; i++) {
			if (strcmp(name, dtypes[i].name) == 0) {
				*out = (enum hoist_dtype)i;
				return HOIST_OK;
			}
		}
	}
	return hoist__error(HOIST_ERR_INVALID, "unknown dtype \"%s\"", name ? name : "(null)");
}
