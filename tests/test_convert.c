/* test_convert.c - F16 / BF16 / F32 conversion, bit for bit against torch.
 *
 * tests/convert_reference.py writes torch's conversions of every F16 and BF16 bit
 * pattern and of 1.6 M F32 patterns (every RNE tie of both narrowings, the edges of
 * each format, 1 M random patterns) into the test's directory; both of hoist's
 * paths (the default, which uses F16C/SSE2 on x86-64, and the portable one) must
 * give the same bytes.
 *
 * NaN outputs are compared as "NaN, quiet, with the input's sign", not by payload,
 * because torch 1.13 (CPU) is not consistent there: F32 -> BF16 turns every NaN
 * into 0xFFFF (sign set whatever the input's), F32 -> F16 into 0x7E00 / 0xFE00
 * (payload dropped, sign kept), and BF16 -> F32 keeps a signalling NaN signalling.
 * hoist keeps the sign, quiets, and keeps the payload's top bits.
 */
#include "test.h"
#include "convert.h"

#include <math.h>

static const char *python(void)
{
	const char *p = getenv("HOIST_PYTHON");
	return p && *p ? p : ".venv/bin/python3";
}

/* Runs the reference script into the test directory; skips where torch is absent. */
static void make_reference(void)
{
	char *out = NULL;
	int rc = test_run(&out, "%s tests/convert_reference.py %s", python(), test_tmpdir());
	if (rc != 0 && (rc == 127 || strstr(out, "No module named")))
		SKIP("no Python with torch (%s): %s", python(), out);
	if (rc != 0)
		FAIL("convert_reference.py failed (%d): %s", rc, out);
	free(out);
}

static void *read_ref(const char *name, size_t want)
{
	size_t size;
	char *data = test_read_file(test_path(name), &size);
	if (size != want)
		FAIL("%s: %zu bytes, expected %zu", name, size, want);
	return data;
}

static bool is_nan_bits(enum hoist_dtype d, uint32_t v)
{
	switch (d) {
	case HOIST_F16: return (v & 0x7fff) > 0x7c00;
	case HOIST_BF16: return (v & 0x7fff) > 0x7f80;
	default: return (v & 0x7fffffff) > 0x7f800000;
	}
}

static uint32_t quiet_bit(enum hoist_dtype d)
{
	return d == HOIST_F16 ? 0x200 : d == HOIST_BF16 ? 0x40 : 0x400000;
}

static uint32_t sign_bit(enum hoist_dtype d)
{
	return d == HOIST_F32 ? 0x80000000u : 0x8000;
}

static uint32_t get(enum hoist_dtype d, const void *p, size_t i)
{
	if (d == HOIST_F32) {
		uint32_t v;
		memcpy(&v, (const char *)p + 4 * i, 4);
		return v;
	}
	uint16_t v;
	memcpy(&v, (const char *)p + 2 * i, 2);
	return v;
}

static size_t esize(enum hoist_dtype d)
{
	return hoist_dtype_bits(d) / 8;
}

typedef void (*convert_fn)(enum hoist_dtype, enum hoist_dtype, void *, const void *, size_t);

/* Converts `in` (n elements of `from`) with fn and compares with torch's `ref`. */
static void compare(const char *what, convert_fn fn, enum hoist_dtype from, enum hoist_dtype to,
                    const void *in, const void *ref, size_t n)
{
	void *out = malloc(n * esize(to) + 1);
	CHECK(out);
	memset(out, 0xa5, n * esize(to));
	fn(from, to, out, in, n);
	size_t nans = 0;
	for (size_t i = 0; i < n; i++) {
		uint32_t x = get(from, in, i), o = get(to, out, i), r = get(to, ref, i);
		if (is_nan_bits(to, r)) {
			nans++;
			bool in_neg = x & sign_bit(from), out_neg = o & sign_bit(to);
			if (!is_nan_bits(from, x) || !is_nan_bits(to, o) || !(o & quiet_bit(to)) ||
			    in_neg != out_neg)
				FAIL("%s %s->%s [%zu]: input 0x%x gave 0x%x, expected a quiet NaN "
				     "with the input's sign (torch: 0x%x)",
				     what, hoist_dtype_name(from), hoist_dtype_name(to), i, x, o,
				     r);
		} else if (o != r) {
			FAIL("%s %s->%s [%zu]: input 0x%x gave 0x%x, torch 0x%x", what,
			     hoist_dtype_name(from), hoist_dtype_name(to), i, x, o, r);
		}
	}
	/* The inputs hold NaNs of every kind; make sure this branch ran. */
	CHECK(nans > 0);
	free(out);
}

TEST_TIMEOUT(convert_bit_exact_against_torch, 120)
{
	make_reference();
	size_t nf32;
	char *f32_in = test_read_file(test_path("f32_in.bin"), &nf32);
	nf32 /= 4;
	CHECK(nf32 > 1000000);
	uint16_t *all16 = malloc(65536 * 2);
	CHECK(all16);
	for (uint32_t i = 0; i < 65536; i++)
		all16[i] = (uint16_t)i;

	struct {
		const char *file;
		enum hoist_dtype from, to;
	} cases[] = {
	        {"f32_to_f16.bin", HOIST_F32, HOIST_F16},
	        {"f32_to_bf16.bin", HOIST_F32, HOIST_BF16},
	        {"f16_to_f32.bin", HOIST_F16, HOIST_F32},
	        {"f16_to_bf16.bin", HOIST_F16, HOIST_BF16},
	        {"bf16_to_f32.bin", HOIST_BF16, HOIST_F32},
	        {"bf16_to_f16.bin", HOIST_BF16, HOIST_F16},
	};
	for (size_t c = 0; c < HOIST__ARRAY_SIZE(cases); c++) {
		bool wide = cases[c].from == HOIST_F32;
		size_t n = wide ? nf32 : 65536;
		const void *in = wide ? (const void *)f32_in : all16;
		void *ref = read_ref(cases[c].file, n * esize(cases[c].to));
		compare("default", hoist__convert, cases[c].from, cases[c].to, in, ref, n);
		compare("portable", hoist__convert_portable, cases[c].from, cases[c].to, in, ref,
		        n);
		/* Unaligned source and destination, and a length with a SIMD tail. */
		size_t m = n - 13;
		char *uin = malloc(m * esize(cases[c].from) + 1);
		CHECK(uin);
		memcpy(uin + 1, (const char *)in + 3 * esize(cases[c].from),
		       m * esize(cases[c].from));
		char *uref = malloc(m * esize(cases[c].to) + 1);
		CHECK(uref);
		memcpy(uref + 1, (const char *)ref + 3 * esize(cases[c].to),
		       m * esize(cases[c].to));
		compare("unaligned", hoist__convert, cases[c].from, cases[c].to, uin + 1, uref + 1,
		        m);
		free(uin);
		free(uref);
		free(ref);
	}
	free(all16);
	free(f32_in);
}

static uint32_t f32_bits(float f)
{
	uint32_t u;
	memcpy(&u, &f, 4);
	return u;
}

/* Known answers from the IEEE 754 formats themselves, independent of torch. */
TEST(convert_known_values)
{
	static const struct {
		uint32_t f32;
		uint16_t f16, bf16;
	} want[] = {
	        {0x00000000, 0x0000, 0x0000}, /* +0 */
	        {0x80000000, 0x8000, 0x8000}, /* -0 */
	        {0x3f800000, 0x3c00, 0x3f80}, /* 1 */
	        {0xc0000000, 0xc000, 0xc000}, /* -2 */
	        {0x7f800000, 0x7c00, 0x7f80}, /* Inf */
	        {0xff800000, 0xfc00, 0xff80}, /* -Inf */
	        {0x477fe000, 0x7bff, 0x4780}, /* 65504: F16 max */
	        {0x477fefff, 0x7bff, 0x4780}, /* just under the F16 overflow tie */
	        {0x477ff000, 0x7c00, 0x4780}, /* 65520: tie, rounds to even = Inf */
	        {0x38800000, 0x0400, 0x3880}, /* 2^-14: F16 min normal */
	        {0x387fc000, 0x03ff,
	         0x3880}, /* largest F16 subnormal (0x387fc000 -> bf16 ties up) */
	        {0x33800000, 0x0001, 0x3380}, /* 2^-24: F16 min subnormal */
	        {0x33000000, 0x0000, 0x3300}, /* 2^-25: tie between 0 and 2^-24, to even 0 */
	        {0x33000001, 0x0001, 0x3300}, /* just above the tie */
	        {0x33c00000, 0x0002, 0x33c0}, /* 1.5 x 2^-24: tie, to even 2 */
	        {0x3f801000, 0x3c00, 0x3f80}, /* 1 + 2^-11: F16 tie, to even 1 */
	        {0x3f803000, 0x3c02, 0x3f80}, /* 1 + 3 x 2^-11: F16 tie, to even */
	        {0x3f808000, 0x3c04, 0x3f80}, /* 1 + 2^-8: BF16 tie, to even 0x3f80 */
	        {0x3f818000, 0x3c0c, 0x3f82}, /* BF16 tie, to even 0x3f82 */
	        {0x7f7fffff, 0x7c00, 0x7f80}, /* F32 max: overflows both */
	        {0x7f7f7fff, 0x7c00, 0x7f7f}, /* BF16 max, just under the tie */
	        {0x7f7f8000, 0x7c00, 0x7f80}, /* tie above BF16 max (odd): to Inf */
	        {0x00000001, 0x0000, 0x0000}, /* F32 min subnormal */
	        {0x00008000, 0x0000, 0x0000}, /* BF16 subnormal tie, to even 0 */
	        {0x00018000, 0x0000, 0x0002}, /* BF16 subnormal tie, to even 2 */
	        {0x80018000, 0x8000, 0x8002}, /* its negative */
	};
	for (int portable = 0; portable < 2; portable++) {
		convert_fn fn = portable ? hoist__convert_portable : hoist__convert;
		for (size_t i = 0; i < HOIST__ARRAY_SIZE(want); i++) {
			uint16_t h, b;
			uint32_t back;
			fn(HOIST_F32, HOIST_F16, &h, &want[i].f32, 1);
			fn(HOIST_F32, HOIST_BF16, &b, &want[i].f32, 1);
			if (h != want[i].f16 || b != want[i].bf16)
				FAIL("%s: 0x%08x -> F16 0x%04x (want 0x%04x), BF16 0x%04x (want "
				     "0x%04x)",
				     portable ? "portable" : "default", want[i].f32, h, want[i].f16,
				     b, want[i].bf16);
			/* Widening is exact: BF16 -> F32 gives back the rounded value's bits. */
			fn(HOIST_BF16, HOIST_F32, &back, &b, 1);
			CHECK_EQ_U64(back, (uint32_t)b << 16);
		}
		/* F16 subnormals widen exactly: k x 2^-24. */
		for (uint16_t k = 1; k < 0x400; k++) {
			uint32_t f;
			fn(HOIST_F16, HOIST_F32, &f, &k, 1);
			CHECK_EQ_U64(f, f32_bits(ldexpf((float)k, -24)));
		}
		/* NaNs: quiet, sign kept, top payload bits kept. */
		uint32_t snan = 0xff800001, qnan_payload = 0x7fe00000;
		uint16_t h, b;
		fn(HOIST_F32, HOIST_F16, &h, &snan, 1);
		CHECK_EQ_U64(h, 0xfe00);
		fn(HOIST_F32, HOIST_BF16, &b, &snan, 1);
		CHECK_EQ_U64(b, 0xffc0);
		fn(HOIST_F32, HOIST_F16, &h, &qnan_payload, 1);
		CHECK_EQ_U64(h, 0x7f00);
		fn(HOIST_F32, HOIST_BF16, &b, &qnan_payload, 1);
		CHECK_EQ_U64(b, 0x7fe0);
		uint16_t sb = 0x7f81, sh = 0xfc01;
		uint32_t f;
		fn(HOIST_BF16, HOIST_F32, &f, &sb, 1);
		CHECK_EQ_U64(f, 0x7fc10000);
		fn(HOIST_F16, HOIST_F32, &f, &sh, 1);
		CHECK_EQ_U64(f, 0xffc02000);
		fn(HOIST_BF16, HOIST_F16, &h, &sb, 1);
		CHECK_EQ_U64(h, 0x7e08); /* 0x7fc10000: payload's top ten bits 0x208 */
		fn(HOIST_F16, HOIST_BF16, &b, &sh, 1);
		CHECK_EQ_U64(b, 0xffc0);
	}
}

/* Every length 0..40 at every start 0..7 gives what one long conversion gives: the
 * SIMD bodies and their scalar tails agree, and nothing is written past n. */
TEST(convert_lengths_and_tails)
{
	enum { N = 64 };
	static const enum hoist_dtype types[] = {HOIST_F16, HOIST_BF16, HOIST_F32};
	unsigned char src[N * 4], full[N * 4 + 8], part[N * 4 + 8];
	uint64_t x = 0x9e3779b97f4a7c15ull;
	for (size_t i = 0; i < sizeof src; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		src[i] = (unsigned char)x;
	}
	for (size_t a = 0; a < 3; a++) {
		for (size_t b = 0; b < 3; b++) {
			enum hoist_dtype from = types[a], to = types[b];
			hoist__convert(from, to, full, src, N);
			for (size_t start = 0; start < 8; start++) {
				for (size_t n = 0; n <= 40; n++) {
					memset(part, 0x5a, sizeof part);
					hoist__convert(from, to, part, src + start * esize(from),
					               n);
					if (memcmp(part, full + start * esize(to), n * esize(to)) !=
					    0)
						FAIL("%s->%s start %zu n %zu differs",
						     hoist_dtype_name(from), hoist_dtype_name(to),
						     start, n);
					for (size_t k = n * esize(to); k < sizeof part; k++)
						CHECK_EQ_INT(part[k], 0x5a);
				}
			}
			if (from == to)
				CHECK(memcmp(full, src, N * esize(from)) == 0);
		}
	}
}

TEST(convert_loaded_dtype_and_nbytes)
{
	int64_t shape[2] = {3, 5};
	struct hoist_tensor_info t = {.name = "w", .ndim = 2, .shape = shape, .numel = 15};
	static const enum hoist_dtype floats[] = {HOIST_F16, HOIST_BF16, HOIST_F32};
	for (size_t i = 0; i < 3; i++) {
		t.dtype = floats[i];
		t.nbytes = 15 * (hoist_dtype_bits(t.dtype) / 8);
		CHECK_EQ_INT(hoist_dtype_loaded(t.dtype, HOIST_DTYPE_NONE), t.dtype);
		CHECK_EQ_U64(hoist__loaded_nbytes(t.dtype, t.numel, t.nbytes, HOIST_DTYPE_NONE),
		             t.nbytes);
		CHECK_EQ_INT(hoist_dtype_loaded(t.dtype, HOIST_F32), HOIST_F32);
		CHECK_EQ_U64(hoist__loaded_nbytes(t.dtype, t.numel, t.nbytes, HOIST_F32), 60);
		CHECK_EQ_INT(hoist_dtype_loaded(t.dtype, HOIST_BF16), HOIST_BF16);
		CHECK_EQ_U64(hoist__loaded_nbytes(t.dtype, t.numel, t.nbytes, HOIST_BF16), 30);
		CHECK_EQ_INT(hoist_dtype_loaded(t.dtype, HOIST_F16), HOIST_F16);
		CHECK_EQ_U64(hoist__loaded_nbytes(t.dtype, t.numel, t.nbytes, HOIST_F16), 30);
		/* Targets outside the three keep the tensor's dtype. */
		CHECK_EQ_INT(hoist_dtype_loaded(t.dtype, HOIST_F64), t.dtype);
		CHECK_EQ_INT(hoist_dtype_loaded(t.dtype, HOIST_I8), t.dtype);
		CHECK_EQ_U64(hoist__loaded_nbytes(t.dtype, t.numel, t.nbytes, HOIST_F64), t.nbytes);
	}
	/* Other dtypes never convert, and keep their stored size (F4: half a byte each). */
	static const struct {
		enum hoist_dtype d;
		uint64_t nbytes;
	} others[] = {{HOIST_I32, 60},     {HOIST_F64, 120}, {HOIST_U8, 15},
	              {HOIST_F8_E4M3, 15}, {HOIST_BOOL, 15}, {HOIST_I64, 120}};
	for (size_t i = 0; i < HOIST__ARRAY_SIZE(others); i++) {
		t.dtype = others[i].d;
		t.nbytes = others[i].nbytes;
		CHECK_EQ_INT(hoist_dtype_loaded(t.dtype, HOIST_F32), t.dtype);
		CHECK_EQ_U64(hoist__loaded_nbytes(t.dtype, t.numel, t.nbytes, HOIST_F32),
		             others[i].nbytes);
		CHECK_EQ_INT(hoist_dtype_loaded(t.dtype, HOIST_BF16), t.dtype);
	}
	int64_t shape4[1] = {16};
	struct hoist_tensor_info f4 = {.name = "q",
	                               .dtype = HOIST_F4,
	                               .ndim = 1,
	                               .shape = shape4,
	                               .numel = 16,
	                               .nbytes = 8};
	CHECK_EQ_INT(hoist_dtype_loaded(f4.dtype, HOIST_F16), HOIST_F4);
	CHECK_EQ_U64(hoist__loaded_nbytes(f4.dtype, f4.numel, f4.nbytes, HOIST_F16), 8);
	/* Scalars and empty tensors. */
	struct hoist_tensor_info s = {.name = "s", .dtype = HOIST_BF16, .numel = 1, .nbytes = 2};
	CHECK_EQ_U64(hoist__loaded_nbytes(s.dtype, s.numel, s.nbytes, HOIST_F32), 4);
	s.numel = 0, s.nbytes = 0;
	CHECK_EQ_U64(hoist__loaded_nbytes(s.dtype, s.numel, s.nbytes, HOIST_F32), 0);
}
