/* dtype.c - the safetensors dtypes: spelling, bit size, and the one rule of what a load
 * converts. */
#include "base.h"

#include <string.h>
#include <strings.h>

static const struct {
	const char *name;
	unsigned bits;
} dtypes[HOIST_DTYPE_COUNT] = {
        [HOIST_BOOL] = {"BOOL", 8},       [HOIST_U8] = {"U8", 8},
        [HOIST_I8] = {"I8", 8},           [HOIST_F8_E5M2] = {"F8_E5M2", 8},
        [HOIST_F8_E4M3] = {"F8_E4M3", 8}, [HOIST_F8_E8M0] = {"F8_E8M0", 8},
        [HOIST_F4] = {"F4", 4},           [HOIST_F6_E2M3] = {"F6_E2M3", 6},
        [HOIST_F6_E3M2] = {"F6_E3M2", 6}, [HOIST_I16] = {"I16", 16},
        [HOIST_U16] = {"U16", 16},        [HOIST_F16] = {"F16", 16},
        [HOIST_BF16] = {"BF16", 16},      [HOIST_I32] = {"I32", 32},
        [HOIST_U32] = {"U32", 32},        [HOIST_F32] = {"F32", 32},
        [HOIST_C64] = {"C64", 64},        [HOIST_F64] = {"F64", 64},
        [HOIST_I64] = {"I64", 64},        [HOIST_U64] = {"U64", 64},
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

bool hoist__dtype_is_load_target(enum hoist_dtype dtype)
{
	return dtype == HOIST_F16 || dtype == HOIST_BF16 || dtype == HOIST_F32;
}

enum hoist_dtype hoist_dtype_loaded(enum hoist_dtype stored, enum hoist_dtype target)
{
	return hoist__dtype_is_load_target(stored) && hoist__dtype_is_load_target(target) ? target
	                                                                                  : stored;
}

uint64_t hoist__loaded_nbytes(enum hoist_dtype stored, uint64_t numel, uint64_t nbytes,
                              enum hoist_dtype target)
{
	enum hoist_dtype d = hoist_dtype_loaded(stored, target);
	/* numel * 2 or 4 cannot overflow: the checkpoint reader checked numel * the
	 * stored size against the file, and the factor grows by 2 at most. */
	return d == stored ? nbytes : numel * (hoist_dtype_bits(d) / 8);
}

enum hoist_status hoist_dtype_from_name(const char *name, enum hoist_dtype *out)
{
	/* torch's and numpy's spellings, as users type them */
	static const struct {
		const char *name;
		enum hoist_dtype dtype;
	} aliases[] = {
	        {"bool", HOIST_BOOL},
	        {"uint8", HOIST_U8},
	        {"int8", HOIST_I8},
	        {"int16", HOIST_I16},
	        {"short", HOIST_I16},
	        {"uint16", HOIST_U16},
	        {"int32", HOIST_I32},
	        {"int", HOIST_I32},
	        {"uint32", HOIST_U32},
	        {"int64", HOIST_I64},
	        {"long", HOIST_I64},
	        {"uint64", HOIST_U64},
	        {"float16", HOIST_F16},
	        {"fp16", HOIST_F16},
	        {"half", HOIST_F16},
	        {"bfloat16", HOIST_BF16},
	        {"bf16", HOIST_BF16},
	        {"float32", HOIST_F32},
	        {"fp32", HOIST_F32},
	        {"float", HOIST_F32},
	        {"float64", HOIST_F64},
	        {"fp64", HOIST_F64},
	        {"double", HOIST_F64},
	        {"complex64", HOIST_C64},
	        {"float8_e4m3fn", HOIST_F8_E4M3},
	        {"float8_e5m2", HOIST_F8_E5M2},
	        {"float8_e8m0fnu", HOIST_F8_E8M0},
	};
	const char *n = name;
	if (n && strncmp(n, "torch.", 6) == 0)
		n += 6;
	for (unsigned i = 1; n && i < HOIST_DTYPE_COUNT; i++) {
		if (strcasecmp(n, dtypes[i].name) == 0) {
			*out = (enum hoist_dtype)i;
			return HOIST_OK;
		}
	}
	for (size_t i = 0; n && i < HOIST__ARRAY_SIZE(aliases); i++) {
		if (strcasecmp(n, aliases[i].name) == 0) {
			*out = aliases[i].dtype;
			return HOIST_OK;
		}
	}
	return hoist__error(
	        HOIST_ERR_INVALID,
	        "unknown dtype \"%s\" (safetensors' names such as BF16, F16, F32, or "
	        "torch's: bfloat16, bf16, float16, fp16, half, float32, fp32, float, ...)",
	        name ? name : "(null)");
}
