/*
 * Quantization blocks (ggml src/ggml-common.h layouts) and the dot products
 * that run on them.
 *
 *   Q8_0: {f16 d; i8 qs[32]}           x_j = d * qs[j]
 *   Q4_0: {f16 d; u8 qs[16]}           x_j = d * ((qs[j] & 15) - 8),
 *                                      x_{j+16} = d * ((qs[j] >> 4) - 8)
 *   Q4_1: {f16 d; f16 m; u8 qs[16]}    x = d * q + m, same nibble order
 *
 * Decode multiplies a block row by activations quantized to Q8_0 per block
 * (struct llm_q8a, which also keeps the block's sum for Q4_1's offset). The
 * AVX-512 VNNI kernels are compiled with function-level target attributes,
 * so the library still builds for baseline x86-64 and picks them at run time.
 */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "llm_int.h"

#if defined(__x86_64__)
#include <immintrin.h>
#define LLM_X86 1
#endif

struct blk_q8_0 {
	uint16_t d;
	int8_t qs[LLM_QK];
};

struct blk_q4_0 {
	uint16_t d;
	uint8_t qs[LLM_QK / 2];
};

struct blk_q4_1 {
	uint16_t d, m;
	uint8_t qs[LLM_QK / 2];
};

_Static_assert(sizeof(struct blk_q8_0) == 34, "Q8_0 block");
_Static_assert(sizeof(struct blk_q4_0) == 18, "Q4_0 block");
_Static_assert(sizeof(struct blk_q4_1) == 20, "Q4_1 block");

float
llm_f16_to_f32(uint16_t h)
{
	uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 31, man = h & 0x3ff;
	uint32_t bits;
	float f;

	if (exp == 0) {
		f = ldexpf((float)man, -24);
		return sign ? -f : f;
	}
	if (exp == 31) {
		bits = sign | 0x7f800000u | (man << 13);
	} else {
		bits = sign | ((exp + 112) << 23) | (man << 13);
	}
	memcpy(&f, &bits, 4);
	return f;
}

/* Round to nearest even, as F16C's vcvtps2ph with imm 0. */
uint16_t
llm_f32_to_f16(float f)
{
	uint32_t x, sign, man;
	int exp;

	memcpy(&x, &f, 4);
	sign = (x >> 16) & 0x8000;
	exp = (int)((x >> 23) & 0xff) - 127 + 15;
	man = x & 0x7fffff;
	if (((x >> 23) & 0xff) == 0xff) {
		return (uint16_t)(sign | 0x7c00 | (man ? 0x200 : 0));
	}
	if (exp >= 31) {
		return (uint16_t)(sign | 0x7c00);
	}
	if (exp <= 0) {
		uint32_t m = man | 0x800000, shift = (uint32_t)(14 - exp), r;

		if (shift > 24) {
			return (uint16_t)sign;
		}
		r = m >> shift;
		if ((m & ((1u << shift) - 1)) > (1u << (shift - 1)) ||
		    ((m & ((1u << shift) - 1)) == (1u << (shift - 1)) && (r & 1))) {
			r++;
		}
		return (uint16_t)(sign | r);
	}
	{
		uint32_t r = ((uint32_t)exp << 10) | (man >> 13), rest = man & 0x1fff;

		if (rest > 0x1000 || (rest == 0x1000 && (r & 1))) {
			r++; /* may carry into the exponent: still correct */
		}
		return (uint16_t)(sign | r);
	}
}

float
llm_bf16_to_f32(uint16_t h)
{
	uint32_t bits = (uint32_t)h << 16;
	float f;

	memcpy(&f, &bits, 4);
	return f;
}

static uint16_t
f32_to_bf16(float f)
{
	uint32_t x;

	memcpy(&x, &f, 4);
	if ((x & 0x7fffffff) > 0x7f800000) {
		return (uint16_t)((x >> 16) | 0x40);
	}
	return (uint16_t)((x + 0x7fff + ((x >> 16) & 1)) >> 16);
}

const char *
bx_llm_type_name(enum bx_llm_type type)
{
	switch (type) {
	case BX_LLM_F32:
		return "F32";
	case BX_LLM_F16:
		return "F16";
	case BX_LLM_Q4_0:
		return "Q4_0";
	case BX_LLM_Q4_1:
		return "Q4_1";
	case BX_LLM_Q8_0:
		return "Q8_0";
	case BX_LLM_Q4_K:
		return "Q4_K";
	case BX_LLM_Q6_K:
		return "Q6_K";
	case BX_LLM_BF16:
		return "BF16";
	}
	return "?";
}

bool
llm_type_known(enum bx_llm_type type)
{
	return type == BX_LLM_F32 || type == BX_LLM_F16 || type == BX_LLM_BF16 ||
	       type == BX_LLM_Q8_0 || type == BX_LLM_Q4_0 || type == BX_LLM_Q4_1;
}

size_t
bx_llm_row_bytes(enum bx_llm_type type, size_t n)
{
	switch (type) {
	case BX_LLM_F32:
		return n * 4;
	case BX_LLM_F16:
	case BX_LLM_BF16:
		return n * 2;
	case BX_LLM_Q8_0:
		return n % LLM_QK ? 0 : n / LLM_QK * sizeof(struct blk_q8_0);
	case BX_LLM_Q4_0:
		return n % LLM_QK ? 0 : n / LLM_QK * sizeof(struct blk_q4_0);
	case BX_LLM_Q4_1:
		return n % LLM_QK ? 0 : n / LLM_QK * sizeof(struct blk_q4_1);
	default:
		return 0;
	}
}

static void
quant_q8_0(const float *x, struct blk_q8_0 *b)
{
	float amax = 0, d, id;

	for (int j = 0; j < LLM_QK; j++) {
		amax = fmaxf(amax, fabsf(x[j]));
	}
	d = amax / 127;
	id = d ? 1 / d : 0;
	b->d = llm_f32_to_f16(d);
	for (int j = 0; j < LLM_QK; j++) {
		b->qs[j] = (int8_t)roundf(x[j] * id);
	}
}

/* Squared error of x against d * (q - off) + m with q rounded and clamped to 0..15. */
static float
q4_err(const float *x, float d, float off, float m)
{
	float id = d ? 1 / d : 0, e = 0;

	for (int j = 0; j < LLM_QK; j++) {
		float q = fminf(fmaxf(roundf((x[j] - m) * id + off), 0), 15);
		float r = x[j] - (d * (q - off) + m);

		e += r * r;
	}
	return e;
}

static void
q4_pack(const float *x, float d, float off, float m, uint8_t *qs)
{
	float id = d ? 1 / d : 0;

	for (int j = 0; j < LLM_QK / 2; j++) {
		int q0 = (int)fminf(fmaxf(roundf((x[j] - m) * id + off), 0), 15);
		int q1 = (int)fminf(fmaxf(roundf((x[j + 16] - m) * id + off), 0), 15);

		qs[j] = (uint8_t)(q0 | (q1 << 4));
	}
}

/*
 * Q4_0: ggml's reference scale is d = max / -8 (max: the value of largest
 * magnitude). Scales a little either side often fit the block better, so
 * a few are tried and the one of least squared error is kept (the idea of
 * ggml's make_qx_quants, without weights).
 */
static void
quant_q4_0(const float *x, struct blk_q4_0 *b)
{
	float amax = 0, max = 0, best_d, best_e;

	for (int j = 0; j < LLM_QK; j++) {
		if (fabsf(x[j]) > amax) {
			amax = fabsf(x[j]);
			max = x[j];
		}
	}
	best_d = max / -8;
	best_e = q4_err(x, best_d, 8, 0);
	for (int k = -4; k <= 8; k++) {
		float d = max / (-8 - 0.125f * (float)k), e = q4_err(x, d, 8, 0);

		if (e < best_e) {
			best_e = e;
			best_d = d;
		}
	}
	b->d = llm_f32_to_f16(best_d);
	q4_pack(x, llm_f16_to_f32(b->d), 8, 0, b->qs);
}

/* Q4_1: min/max (ggml's reference), then a few shrunken ranges, least error kept. */
static void
quant_q4_1(const float *x, struct blk_q4_1 *b)
{
	float min = x[0], max = x[0], best_d, best_m, best_e;

	for (int j = 1; j < LLM_QK; j++) {
		min = fminf(min, x[j]);
		max = fmaxf(max, x[j]);
	}
	best_d = (max - min) / 15;
	best_m = min;
	best_e = q4_err(x, best_d, 0, min);
	for (int k = 1; k <= 6; k++) {
		for (int side = 0; side < 3; side++) {
			float shrink = (max - min) * 0.02f * (float)k;
			float lo = side == 1 ? min : min + shrink * (side ? 0.5f : 1);
			float hi = side == 0 ? max : max - shrink * (side == 2 ? 0.5f : 1);
			float d = (hi - lo) / 15, e = q4_err(x, d, 0, lo);

			if (e < best_e) {
				best_e = e;
				best_d = d;
				best_m = lo;
			}
		}
	}
	b->d = llm_f32_to_f16(best_d);
	b->m = llm_f32_to_f16(best_m);
	q4_pack(x, llm_f16_to_f32(b->d), 0, llm_f16_to_f32(b->m), b->qs);
}

int
bx_llm_quantize(enum bx_llm_type type, const float *x, size_t n, void *out)
{
	if (!bx_llm_row_bytes(type, n) && n) {
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		switch (type) {
		case BX_LLM_F32:
			((float *)out)[i] = x[i];
			break;
		case BX_LLM_F16:
			((uint16_t *)out)[i] = llm_f32_to_f16(x[i]);
			break;
		case BX_LLM_BF16:
			((uint16_t *)out)[i] = f32_to_bf16(x[i]);
			break;
		default:
			if (i % LLM_QK == 0) {
				size_t b = i / LLM_QK;

				if (type == BX_LLM_Q8_0) {
					quant_q8_0(x + i, (struct blk_q8_0 *)out + b);
				} else if (type == BX_LLM_Q4_0) {
					quant_q4_0(x + i, (struct blk_q4_0 *)out + b);
				} else {
					quant_q4_1(x + i, (struct blk_q4_1 *)out + b);
				}
			}
		}
	}
	return 0;
}

static void
dequant_block(enum bx_llm_type type, const void *in, size_t b, float *y)
{
	if (type == BX_LLM_Q8_0) {
		const struct blk_q8_0 *q = (const struct blk_q8_0 *)in + b;
		float d = llm_f16_to_f32(q->d);

		for (int j = 0; j < LLM_QK; j++) {
			y[j] = d * q->qs[j];
		}
	} else if (type == BX_LLM_Q4_0) {
		const struct blk_q4_0 *q = (const struct blk_q4_0 *)in + b;
		float d = llm_f16_to_f32(q->d);

		for (int j = 0; j < LLM_QK / 2; j++) {
			y[j] = d * ((q->qs[j] & 15) - 8);
			y[j + 16] = d * ((q->qs[j] >> 4) - 8);
		}
	} else {
		const struct blk_q4_1 *q = (const struct blk_q4_1 *)in + b;
		float d = llm_f16_to_f32(q->d), m = llm_f16_to_f32(q->m);

		for (int j = 0; j < LLM_QK / 2; j++) {
			y[j] = d * (q->qs[j] & 15) + m;
			y[j + 16] = d * (q->qs[j] >> 4) + m;
		}
	}
}

int
bx_llm_dequantize(enum bx_llm_type type, const void *in, size_t n, float *out)
{
	if (!bx_llm_row_bytes(type, n) && n) {
		return -EINVAL;
	}
	if (type == BX_LLM_F32) {
		memcpy(out, in, n * 4);
	} else if (type == BX_LLM_F16 || type == BX_LLM_BF16) {
		const uint16_t *h = in;

		for (size_t i = 0; i < n; i++) {
			out[i] = type == BX_LLM_F16 ? llm_f16_to_f32(h[i]) : llm_bf16_to_f32(h[i]);
		}
	} else {
		for (size_t b = 0; b < n / LLM_QK; b++) {
			dequant_block(type, in, b, out + b * LLM_QK);
		}
	}
	return 0;
}

void
llm_row_f32(const struct llm_tensor *t, uint32_t r, float *out)
{
	const uint8_t *row =
		(const uint8_t *)t->data + (size_t)r * bx_llm_row_bytes(t->type, t->cols);

	bx_llm_dequantize(t->type, row, t->cols, out);
}

/* Activations: Q8_0 per block (d = amax / 127), keeping d as f32 and the block sum. */
void
llm_quantize_act(const float *x, size_t n, struct llm_q8a *out)
{
	for (size_t b = 0; b < n / LLM_QK; b++) {
		const float *v = x + b * LLM_QK;
		float amax = 0, id;
		int32_t s = 0;

		for (int j = 0; j < LLM_QK; j++) {
			amax = fmaxf(amax, fabsf(v[j]));
		}
		out[b].d = amax / 127;
		id = amax ? 127 / amax : 0;
		for (int j = 0; j < LLM_QK; j++) {
			out[b].qs[j] = (int8_t)lrintf(v[j] * id);
			s += out[b].qs[j];
		}
		out[b].s = s;
	}
}

/* Plain C: the yardstick for the AVX-512 kernels. */
float
llm_dot_ref(enum bx_llm_type type, const void *row, const struct llm_q8a *qa, size_t n)
{
	float sum = 0;

	for (size_t b = 0; b < n / LLM_QK; b++) {
		int32_t acc = 0;

		if (type == BX_LLM_Q8_0) {
			const struct blk_q8_0 *q = (const struct blk_q8_0 *)row + b;

			for (int j = 0; j < LLM_QK; j++) {
				acc += q->qs[j] * qa[b].qs[j];
			}
			sum += llm_f16_to_f32(q->d) * qa[b].d * (float)acc;
		} else if (type == BX_LLM_Q4_0) {
			const struct blk_q4_0 *q = (const struct blk_q4_0 *)row + b;

			for (int j = 0; j < LLM_QK / 2; j++) {
				acc += ((q->qs[j] & 15) - 8) * qa[b].qs[j];
				acc += ((q->qs[j] >> 4) - 8) * qa[b].qs[j + 16];
			}
			sum += llm_f16_to_f32(q->d) * qa[b].d * (float)acc;
		} else {
			const struct blk_q4_1 *q = (const struct blk_q4_1 *)row + b;

			for (int j = 0; j < LLM_QK / 2; j++) {
				acc += (q->qs[j] & 15) * qa[b].qs[j];
				acc += (q->qs[j] >> 4) * qa[b].qs[j + 16];
			}
			sum += llm_f16_to_f32(q->d) * qa[b].d * (float)acc +
			       llm_f16_to_f32(q->m) * qa[b].d * (float)qa[b].s;
		}
	}
	return sum;
}

#ifdef LLM_X86
#define LLM_AVX512 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,f16c,fma")))

bool
llm_have_avx512(void)
{
	static int have = -1;

	if (have < 0) {
		__builtin_cpu_init();
		have = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
		       __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
		       __builtin_cpu_supports("avx512vnni");
	}
	return have;
}

LLM_AVX512 static inline __m512
scale2(float d0, float d1)
{
	return _mm512_insertf32x8(_mm512_set1_ps(d0), _mm256_set1_ps(d1), 1);
}

/* signed x signed bytes with VNNI's u8 x s8: |w| times a with w's sign applied. */
LLM_AVX512 static inline __m512i
dot_s8(__m512i w, __m512i a)
{
	__mmask64 neg = _mm512_movepi8_mask(w);
	__m512i sa = _mm512_mask_sub_epi8(a, neg, _mm512_setzero_si512(), a);

	return _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_abs_epi8(w), sa);
}

LLM_AVX512 static inline __m512i
load2_q8a(const struct llm_q8a *qa)
{
	__m256i a0 = _mm256_loadu_si256((const __m256i *)qa[0].qs);
	__m256i a1 = _mm256_loadu_si256((const __m256i *)qa[1].qs);

	return _mm512_inserti64x4(_mm512_castsi256_si512(a0), a1, 1);
}

/* 16 nibble bytes of two Q4 blocks -> 64 bytes in element order [lo0 hi0 lo1 hi1]. */
LLM_AVX512 static inline __m512i
unpack2_q4(const uint8_t *q0, const uint8_t *q1)
{
	__m256i q = _mm256_inserti128_si256(
		_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)q0)),
		_mm_loadu_si128((const __m128i *)q1), 1);
	__m256i m = _mm256_set1_epi8(15);
	__m256i lo = _mm256_and_si256(q, m), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m);
	__m512i z = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);

	return _mm512_shuffle_i64x2(z, z, _MM_SHUFFLE(3, 1, 2, 0));
}

LLM_AVX512 static float
dot_q8_0_avx(const struct blk_q8_0 *w, const struct llm_q8a *qa, size_t nb)
{
	__m512 acc = _mm512_setzero_ps();
	size_t b = 0;

	for (; b + 2 <= nb; b += 2) {
		__m512i wv = _mm512_inserti64x4(
			_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)w[b].qs)),
			_mm256_loadu_si256((const __m256i *)w[b + 1].qs), 1);
		__m512i p = dot_s8(wv, load2_q8a(qa + b));
		__m512 d = scale2(_cvtsh_ss(w[b].d) * qa[b].d, _cvtsh_ss(w[b + 1].d) * qa[b + 1].d);

		acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), d, acc);
	}
	{
		float sum = _mm512_reduce_add_ps(acc);

		if (b < nb) {
			sum += llm_dot_ref(BX_LLM_Q8_0, w + b, qa + b, LLM_QK);
		}
		return sum;
	}
}

LLM_AVX512 static float
dot_q4_0_avx(const struct blk_q4_0 *w, const struct llm_q8a *qa, size_t nb)
{
	__m512 acc = _mm512_setzero_ps();
	__m512i eight = _mm512_set1_epi8(8);
	size_t b = 0;

	for (; b + 2 <= nb; b += 2) {
		__m512i wv = _mm512_sub_epi8(unpack2_q4(w[b].qs, w[b + 1].qs), eight);
		__m512i p = dot_s8(wv, load2_q8a(qa + b));
		__m512 d = scale2(_cvtsh_ss(w[b].d) * qa[b].d, _cvtsh_ss(w[b + 1].d) * qa[b + 1].d);

		acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), d, acc);
	}
	{
		float sum = _mm512_reduce_add_ps(acc);

		if (b < nb) {
			sum += llm_dot_ref(BX_LLM_Q4_0, w + b, qa + b, LLM_QK);
		}
		return sum;
	}
}

LLM_AVX512 static float
dot_q4_1_avx(const struct blk_q4_1 *w, const struct llm_q8a *qa, size_t nb)
{
	__m512 acc = _mm512_setzero_ps();
	float msum = 0;
	size_t b = 0;

	for (; b + 2 <= nb; b += 2) {
		__m512i wv = unpack2_q4(w[b].qs, w[b + 1].qs);
		__m512i p = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wv, load2_q8a(qa + b));
		__m512 d = scale2(_cvtsh_ss(w[b].d) * qa[b].d, _cvtsh_ss(w[b + 1].d) * qa[b + 1].d);

		acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), d, acc);
		msum += _cvtsh_ss(w[b].m) * qa[b].d * (float)qa[b].s +
		        _cvtsh_ss(w[b + 1].m) * qa[b + 1].d * (float)qa[b + 1].s;
	}
	{
		float sum = _mm512_reduce_add_ps(acc) + msum;

		if (b < nb) {
			sum += llm_dot_ref(BX_LLM_Q4_1, w + b, qa + b, LLM_QK);
		}
		return sum;
	}
}

LLM_AVX512 static float
dot_f32_avx(const float *w, const float *x, size_t n)
{
	__m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
	size_t i = 0;
	float sum;

	for (; i + 32 <= n; i += 32) {
		acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i), _mm512_loadu_ps(x + i), acc0);
		acc1 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i + 16), _mm512_loadu_ps(x + i + 16),
		                       acc1);
	}
	for (; i + 16 <= n; i += 16) {
		acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i), _mm512_loadu_ps(x + i), acc0);
	}
	if (i < n) {
		__mmask16 k = (__mmask16)((1u << (n - i)) - 1);

		acc1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(k, w + i),
		                       _mm512_maskz_loadu_ps(k, x + i), acc1);
	}
	sum = _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
	return sum;
}
#else
bool
llm_have_avx512(void)
{
	return false;
}
#endif

static float
dot_f32(const float *w, const float *x, size_t n)
{
	float s = 0;

	for (size_t i = 0; i < n; i++) {
		s += w[i] * x[i];
	}
	return s;
}

float
llm_dot_fast(enum bx_llm_type type, const void *row, const struct llm_q8a *qa, size_t n)
{
#ifdef LLM_X86
	if (llm_have_avx512()) {
		switch (type) {
		case BX_LLM_Q8_0:
			return dot_q8_0_avx(row, qa, n / LLM_QK);
		case BX_LLM_Q4_0:
			return dot_q4_0_avx(row, qa, n / LLM_QK);
		case BX_LLM_Q4_1:
			return dot_q4_1_avx(row, qa, n / LLM_QK);
		default:
			break;
		}
	}
#endif
	return llm_dot_ref(type, row, qa, n);
}

static float
dot_any_f32(const struct llm_tensor *w, const void *row, const float *x)
{
	float tmp[256], s = 0;

#ifdef LLM_X86
	if (w->type == BX_LLM_F32 && llm_have_avx512()) {
		return dot_f32_avx(row, x, w->cols);
	}
#endif
	if (w->type == BX_LLM_F32) {
		return dot_f32(row, x, w->cols);
	}
	/* F16 and BF16: 2 bytes a value, converted 256 at a time. */
	for (uint32_t i = 0; i < w->cols; i += 256) {
		uint32_t n = BX_MIN(256u, w->cols - i);

		bx_llm_dequantize(w->type, (const uint16_t *)row + i, n, tmp);
		s += dot_f32(tmp, x + i, n);
	}
	return s;
}

/*
 * Rows outer, activations inner: each weight row is read from memory once
 * and stays in L1 for the nb dot products, so a batched step costs about
 * one pass over the weights, which is what makes continuous batching pay.
 */
void
llm_matmul_rows(const struct llm_tensor *w, uint32_t r0, uint32_t r1, const float *x,
                const struct llm_q8a *qa, unsigned nb, float *out, size_t out_stride)
{
	size_t rb = bx_llm_row_bytes(w->type, w->cols), nblk = w->cols / LLM_QK;
	bool blocks = w->type == BX_LLM_Q8_0 || w->type == BX_LLM_Q4_0 || w->type == BX_LLM_Q4_1;

	for (uint32_t r = r0; r < r1; r++) {
		const uint8_t *row = (const uint8_t *)w->data + (size_t)r * rb;

		__builtin_prefetch(row + rb * 2);
		for (unsigned b = 0; b < nb; b++) {
			float v;

			if (blocks) {
				v = llm_dot_fast(w->type, row, qa + (size_t)b * nblk, w->cols);
			} else {
				v = dot_any_f32(w, row, x + (size_t)b * w->cols);
			}
			out[(size_t)b * out_stride + r] = v;
		}
	}
}
