/* convert.c - F16 / BF16 / F32 conversion on the load path.
 *
 * Every narrowing rounds to nearest, ties to even, as IEEE 754 and torch's `.to()`
 * do; widenings are exact. NaN stays NaN with its sign and is quieted (the top
 * mantissa bit set; the rest of the payload is truncated), Inf stays Inf, finite
 * values too large for the target round to Inf exactly when round-to-nearest says
 * so, and F16 subnormals are produced and consumed exactly.
 *
 * The portable loops are written branch-free (selects, not ifs) over 32-bit
 * integers (GCC vectorises the BF16 ones at -O3, none at -O2, which is why x86
 * has its own). On x86-64, BF16 <-> F32 runs on SSE2 integer SIMD (baseline), and
 * with F16C (checked at run time), F16 <-> F32 on vcvtph2ps / vcvtps2ph, which
 * round the same way. tests/test_convert.c holds both paths against torch.
 * Values are read and written through memcpy: staging buffers hold tensors at the
 * file's offsets, which need not be aligned. Little-endian hosts only.
 */
#include "convert.h"

#include <string.h>

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#define HAVE_X86 1
#endif

/* ---- one element, as bits ------------------------------------------------------------ */

static inline float f32_from_bits(uint32_t u)
{
	float f;
	memcpy(&f, &u, 4);
	return f;
}

static inline uint32_t f32_bits(float f)
{
	uint32_t u;
	memcpy(&u, &f, 4);
	return u;
}

static inline uint32_t f16_to_f32(uint16_t h)
{
	uint32_t sign = (uint32_t)(h & 0x8000) << 16;
	int32_t em = h & 0x7fff;
	/* Normal: rebias the exponent by 127 - 15. */
	uint32_t normal = ((uint32_t)em << 13) + 0x38000000u;
	/* Inf and NaN: all-ones exponent, payload kept, NaN quieted. */
	uint32_t special = ((uint32_t)em << 13) | 0x7f800000u | (em > 0x7c00 ? 0x00400000u : 0);
	/* Zero and subnormal: em * 2^-24 is exact in F32 (em < 1024, result normal). */
	uint32_t sub = f32_bits((float)em * 0x1p-24f);
	uint32_t r = em >= 0x7c00 ? special : em >= 0x0400 ? normal : sub;
	return r | sign;
}

static inline uint16_t f32_to_f16(uint32_t x)
{
	uint32_t sign = (x >> 16) & 0x8000;
	int32_t a = (int32_t)(x & 0x7fffffff);
	/* Normal result: rebias by 15 - 127 and round the 13 dropped bits to nearest
	 * even (add half minus one, plus the lowest kept bit); a carry walks into the
	 * exponent, up to Inf (0x7c00) from 65520 on, as RNE requires. */
	uint32_t normal = ((uint32_t)a - 0x38000000u + 0x0fffu + (((uint32_t)a >> 13) & 1)) >> 13;
	/* Subnormal result (|x| < 2^-14): adding 0.5 puts the F16 subnormal ulp (2^-24)
	 * at F32's last mantissa bit, so the FPU's own RNE addition does the rounding;
	 * 0x400 (rounded up to the smallest normal) comes out right too. F32
	 * subnormal inputs give 0 whether or not the FPU flushes them. */
	uint32_t sub = f32_bits(f32_from_bits((uint32_t)a) + 0.5f) - 0x3f000000u;
	uint32_t nan = 0x7e00u | (((uint32_t)a >> 13) & 0x3ff);
	uint32_t r = a > 0x7f800000    ? nan
	             : a >= 0x477ff000 ? 0x7c00u /* >= 65520 (and Inf) */
	             : a >= 0x38800000 ? normal
	                               : sub;
	return (uint16_t)(r | sign);
}

static inline uint16_t f32_to_bf16(uint32_t x)
{
	/* Bias by 0x7fff plus the lowest kept bit: RNE; a carry reaches Inf from the
	 * top binade as it should. NaN would round to Inf this way, so it is kept apart. */
	uint32_t rounded = (x + 0x7fffu + ((x >> 16) & 1)) >> 16;
	uint32_t nan = (x >> 16) | 0x40u;
	return (uint16_t)((x & 0x7fffffff) > 0x7f800000u ? nan : rounded);
}

static inline uint32_t bf16_to_f32(uint16_t b)
{
	uint32_t quiet = (b & 0x7fff) > 0x7f80 ? 0x00400000u : 0;
	return ((uint32_t)b << 16) | quiet;
}

/* ---- portable loops ---------------------------------------------------------------- */

static inline uint16_t load16(const unsigned char *p, size_t i)
{
	uint16_t v;
	memcpy(&v, p + 2 * i, 2);
	return v;
}

static inline uint32_t load32(const unsigned char *p, size_t i)
{
	uint32_t v;
	memcpy(&v, p + 4 * i, 4);
	return v;
}

static inline void store16(unsigned char *p, size_t i, uint16_t v)
{
	memcpy(p + 2 * i, &v, 2);
}

static inline void store32(unsigned char *p, size_t i, uint32_t v)
{
	memcpy(p + 4 * i, &v, 4);
}

static void loop_f16_f32(unsigned char *d, const unsigned char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		store32(d, i, f16_to_f32(load16(s, i)));
}

static void loop_f32_f16(unsigned char *d, const unsigned char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		store16(d, i, f32_to_f16(load32(s, i)));
}

static void loop_bf16_f32(unsigned char *d, const unsigned char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		store32(d, i, bf16_to_f32(load16(s, i)));
}

static void loop_f32_bf16(unsigned char *d, const unsigned char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		store16(d, i, f32_to_bf16(load32(s, i)));
}

/* ---- F16C ------------------------------------------------------------------------ */

#ifdef HAVE_X86
__attribute__((target("avx,f16c"))) static void f16c_f16_f32(unsigned char *d,
                                                             const unsigned char *s, size_t n)
{
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		__m128i h = _mm_loadu_si128((const __m128i *)(const void *)(s + 2 * i));
		_mm256_storeu_ps((float *)(void *)(d + 4 * i), _mm256_cvtph_ps(h));
	}
	/* GCC 12 leaves the ymm upper halves dirty before this tail call, and the
	 * SSE code after it then ran 4x slower (measured): clear them. */
	_mm256_zeroupper();
	loop_f16_f32(d + 4 * i, s + 2 * i, n - i);
}

__attribute__((target("avx,f16c"))) static void f16c_f32_f16(unsigned char *d,
                                                             const unsigned char *s, size_t n)
{
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		__m256 f = _mm256_loadu_ps((const float *)(const void *)(s + 4 * i));
		__m128i h = _mm256_cvtps_ph(f, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
		_mm_storeu_si128((__m128i *)(void *)(d + 2 * i), h);
	}
	/* GCC 12 leaves the ymm upper halves dirty before this tail call, and the
	 * SSE code after it then ran 4x slower (measured): clear them. */
	_mm256_zeroupper();
	loop_f32_f16(d + 2 * i, s + 4 * i, n - i);
}

/* BF16 needs only integer SIMD; SSE2 is part of x86-64, so no run-time check. */
static void sse2_bf16_f32(unsigned char *d, const unsigned char *s, size_t n)
{
	const __m128i zero = _mm_setzero_si128();
	const __m128i abs = _mm_set1_epi32(0x7fffffff), inf = _mm_set1_epi32(0x7f800000);
	const __m128i quiet = _mm_set1_epi32(0x00400000);
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		__m128i b = _mm_loadu_si128((const __m128i *)(const void *)(s + 2 * i));
		__m128i lo = _mm_unpacklo_epi16(zero, b), hi = _mm_unpackhi_epi16(zero, b);
		/* Magnitudes fit 31 bits, so the signed compare is the unsigned one. */
		lo = _mm_or_si128(
		        lo, _mm_and_si128(_mm_cmpgt_epi32(_mm_and_si128(lo, abs), inf), quiet));
		hi = _mm_or_si128(
		        hi, _mm_and_si128(_mm_cmpgt_epi32(_mm_and_si128(hi, abs), inf), quiet));
		_mm_storeu_si128((__m128i *)(void *)(d + 4 * i), lo);
		_mm_storeu_si128((__m128i *)(void *)(d + 4 * i + 16), hi);
	}
	loop_bf16_f32(d + 4 * i, s + 2 * i, n - i);
}

static inline __m128i sse2_round_bf16(__m128i x)
{
	const __m128i one = _mm_set1_epi32(1), bias = _mm_set1_epi32(0x7fff);
	const __m128i abs = _mm_set1_epi32(0x7fffffff), inf = _mm_set1_epi32(0x7f800000);
	const __m128i quiet = _mm_set1_epi32(0x40);
	__m128i lsb = _mm_and_si128(_mm_srli_epi32(x, 16), one);
	__m128i rounded = _mm_srli_epi32(_mm_add_epi32(_mm_add_epi32(x, bias), lsb), 16);
	__m128i nan = _mm_or_si128(_mm_srli_epi32(x, 16), quiet);
	__m128i is_nan = _mm_cmpgt_epi32(_mm_and_si128(x, abs), inf);
	__m128i r = _mm_or_si128(_mm_and_si128(is_nan, nan), _mm_andnot_si128(is_nan, rounded));
	/* Sign-extend the 16-bit results so the signed saturating pack keeps them. */
	return _mm_srai_epi32(_mm_slli_epi32(r, 16), 16);
}

static void sse2_f32_bf16(unsigned char *d, const unsigned char *s, size_t n)
{
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		__m128i a = _mm_loadu_si128((const __m128i *)(const void *)(s + 4 * i));
		__m128i b = _mm_loadu_si128((const __m128i *)(const void *)(s + 4 * i + 16));
		__m128i h = _mm_packs_epi32(sse2_round_bf16(a), sse2_round_bf16(b));
		_mm_storeu_si128((__m128i *)(void *)(d + 2 * i), h);
	}
	loop_f32_bf16(d + 2 * i, s + 4 * i, n - i);
}

/* F16C needs AVX state saved by the OS (OSXSAVE and XCR0 bits 1-2), as well as the
 * CPU's F16C and AVX bits. cpuid directly: clang 14 has no "f16c" for
 * __builtin_cpu_supports. */
static bool detect_f16c(void)
{
	unsigned a, b, c, d;
	if (!__get_cpuid(1, &a, &b, &c, &d))
		return false;
	if (!(c & bit_OSXSAVE) || !(c & bit_AVX) || !(c & bit_F16C))
		return false;
	unsigned lo, hi;
	__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
	(void)hi;
	return (lo & 6u) == 6u;
}

static bool have_f16c(void)
{
	static int known; /* 0 unknown, 1 yes, 2 no; a benign race: every thread agrees */
	int k = __atomic_load_n(&known, __ATOMIC_RELAXED);
	if (!k) {
		k = detect_f16c() ? 1 : 2;
		__atomic_store_n(&known, k, __ATOMIC_RELAXED);
	}
	return k == 1;
}
#endif

static void f16_f32(unsigned char *d, const unsigned char *s, size_t n, bool portable)
{
#ifdef HAVE_X86
	if (!portable && have_f16c()) {
		f16c_f16_f32(d, s, n);
		return;
	}
#endif
	(void)portable;
	loop_f16_f32(d, s, n);
}

static void bf16_f32(unsigned char *d, const unsigned char *s, size_t n, bool portable)
{
#ifdef HAVE_X86
	if (!portable) {
		sse2_bf16_f32(d, s, n);
		return;
	}
#endif
	(void)portable;
	loop_bf16_f32(d, s, n);
}

static void f32_bf16(unsigned char *d, const unsigned char *s, size_t n, bool portable)
{
#ifdef HAVE_X86
	if (!portable) {
		sse2_f32_bf16(d, s, n);
		return;
	}
#endif
	(void)portable;
	loop_f32_bf16(d, s, n);
}

static void f32_f16(unsigned char *d, const unsigned char *s, size_t n, bool portable)
{
#ifdef HAVE_X86
	if (!portable && have_f16c()) {
		f16c_f32_f16(d, s, n);
		return;
	}
#endif
	(void)portable;
	loop_f32_f16(d, s, n);
}

/* ---- dispatch ---------------------------------------------------------------------- */

static void convert(enum hoist_dtype from, enum hoist_dtype to, void *dst, const void *src,
                    size_t n, bool portable)
{
	unsigned char *d = dst;
	const unsigned char *s = src;
	if (from == to) {
		memcpy(d, s, n * (hoist_dtype_bits(from) / 8));
		return;
	}
	if (from == HOIST_F16 && to == HOIST_F32)
		f16_f32(d, s, n, portable);
	else if (from == HOIST_F32 && to == HOIST_F16)
		f32_f16(d, s, n, portable);
	else if (from == HOIST_BF16 && to == HOIST_F32)
		bf16_f32(d, s, n, portable);
	else if (from == HOIST_F32 && to == HOIST_BF16)
		f32_bf16(d, s, n, portable);
	else {
		/* F16 <-> BF16 through F32: the widening is exact, so the one rounding
		 * is the narrowing's and the result is correctly rounded. */
		enum { BLOCK = 1024 };
		uint32_t tmp[BLOCK];
		while (n) {
			size_t k = HOIST__MIN(n, (size_t)BLOCK);
			if (from == HOIST_F16) {
				f16_f32((unsigned char *)tmp, s, k, portable);
				f32_bf16(d, (const unsigned char *)tmp, k, portable);
			} else {
				bf16_f32((unsigned char *)tmp, s, k, portable);
				f32_f16(d, (const unsigned char *)tmp, k, portable);
			}
			d += 2 * k;
			s += 2 * k;
			n -= k;
		}
	}
}

void hoist__convert(enum hoist_dtype from, enum hoist_dtype to, void *dst, const void *src,
                    size_t n)
{
	convert(from, to, dst, src, n, false);
}

void hoist__convert_portable(enum hoist_dtype from, enum hoist_dtype to, void *dst, const void *src,
                             size_t n)
{
	convert(from, to, dst, src, n, true);
}
