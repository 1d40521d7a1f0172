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
	/* ggml's type ids (ggml.h), so a rejected tensor's type is named even if not read */
	static const char *const names[] = {
		"F32",     "F16",    "Q4_0",    "Q4_1",  "?",      "?",     "Q5_0",  "Q5_1",
		"Q8_0",    "Q8_1",   "Q2_K",    "Q3_K",  "Q4_K",   "Q5_K",  "Q6_K",  "Q8_K",
		"IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S", "IQ4_NL", "IQ3_S", "IQ2_S", "IQ4_XS",
		"I8",      "I16",    "I32",     "I64",   "F64",    "IQ1_M", "BF16",  "?",
		"?",       "?",      "TQ1_0",   "TQ2_0", "?",      "?",     "?",     "MXFP4",
	};

	return (unsigned)type < BX_ARRAY_SIZE(names) ? names[type] : "?";
}

bool
llm_type_known(enum bx_llm_type type)
{
	return type == BX_LLM_F32 || type == BX_LLM_F16 || type == BX_LLM_BF16 ||
	       type == BX_LLM_Q8_0 || type == BX_LLM_Q4_0 || type == BX_LLM_Q4_1 ||
	       type == BX_LLM_Q4_K || type == BX_LLM_Q6_K;
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
	case BX_LLM_Q4_K:
	case BX_LLM_Q6_K:
		return llm_kquant_row_bytes(type, n);
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
	if (type == BX_LLM_Q4_K || type == BX_LLM_Q6_K) {
		llm_kquant_quantize(type, x, n, out);
		return 0;
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
	} else if (type == BX_LLM_Q4_K || type == BX_LLM_Q6_K) {
		llm_kquant_dequantize(type, in, n, out);
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

/*
 * The decode kernels work on 16-block groups (512 values) of two packed
 * forms, both padded with zeros to whole groups:
 *
 *   activation (llm_pack_act):  i8 qs[512] | f32 d[16] | f32 d*sum(qs)[16]
 *   decoded weight row (decode): u8 z[512]  | f32 d[16] | f32 m[16]
 *
 * with z = q (0..15) for Q4_0/Q4_1 and z = q + 128 for Q8_0, so VNNI's
 * u8 x s8 dot (vpdpbusd) applies directly; the offset comes back as
 * off * sum_b dw_b * da_b * s_b, one FMA per group. A pair of blocks fills
 * one zmm; its 16 int32 lanes (8 per block) are scaled by dw * da picked
 * out of the group's 16 scales with one permute.
 */
#define GROUP       16
#define GROUP_QS    ((size_t)GROUP * LLM_QK) /* bytes of values in a group */
#define GROUP_F     ((size_t)GROUP * 4)      /* bytes of one f32 per block */
#define GROUP_BYTES (GROUP_QS + 2 * GROUP_F)
_Static_assert(GROUP == LLM_ACT_GROUP && GROUP_BYTES == LLM_ACT_GROUP_BYTES, "llm_int.h layout");
#define GROUPS_BYTES(n) ((size_t)(n) / GROUP_QS * GROUP_BYTES)
/* a decoded row (or packed activation) of the widest matrix (hidden_dim <= 4 * LLM_DIM_MAX) */
#define ROW_BUF GROUPS_BYTES(4 * LLM_DIM_MAX)
#ifndef LLM_PF_HINT
#define LLM_PF_HINT _MM_HINT_T1
#endif
#ifndef LLM_PREFETCH
#define LLM_PREFETCH \
	2048 /* bytes ahead into L2 (tried 0, 2, 4, 8, 16 KiB with T1; T0 was slower) */
#endif

static size_t
groups(size_t n)
{
	return (n / LLM_QK + GROUP - 1) / GROUP;
}

size_t
llm_act_bytes(size_t n)
{
	return groups(n) * GROUP_BYTES;
}

#ifdef LLM_X86
#define LLM_AVX512 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,f16c,fma")))

/* llm_pack_act's blocks, the same bits (lrintf and vcvtps2dq both round to nearest even). */
LLM_AVX512 static void
pack_act_avx(const float *x, size_t n, uint8_t *out)
{
	size_t nb = n / LLM_QK;

	if (nb % GROUP) {
		memset(out + nb / GROUP * GROUP_BYTES, 0, GROUP_BYTES);
	}
	for (size_t b = 0; b < nb; b++) {
		uint8_t *g = out + b / GROUP * GROUP_BYTES;
		__m512 v0 = _mm512_loadu_ps(x + b * LLM_QK),
		       v1 = _mm512_loadu_ps(x + b * LLM_QK + 16);
		float amax =
			_mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
		__m512 id = _mm512_set1_ps(amax ? 127 / amax : 0);
		__m512i q0 = _mm512_cvtps_epi32(_mm512_mul_ps(v0, id));
		__m512i q1 = _mm512_cvtps_epi32(_mm512_mul_ps(v1, id));
		float d = amax / 127;

		_mm_storeu_si128((__m128i *)(g + (b % GROUP) * LLM_QK), _mm512_cvtepi32_epi8(q0));
		_mm_storeu_si128((__m128i *)(g + (b % GROUP) * LLM_QK + 16),
		                 _mm512_cvtepi32_epi8(q1));
		((float *)(g + GROUP_QS))[b % GROUP] = d;
		((float *)(g + GROUP_QS + GROUP_F))[b % GROUP] =
			d * (float)_mm512_reduce_add_epi32(_mm512_add_epi32(q0, q1));
	}
}
#endif

void
llm_pack_act(const float *x, size_t n, uint8_t *out)
{
	size_t nb = n / LLM_QK;

#ifdef LLM_X86
	if (llm_have_avx512()) {
		pack_act_avx(x, n, out);
		return;
	}
#endif
	memset(out, 0, llm_act_bytes(n));
	for (size_t b = 0; b < nb; b++) {
		uint8_t *g = out + b / GROUP * GROUP_BYTES;
		int8_t *qs = (int8_t *)g + (b % GROUP) * LLM_QK;
		const float *v = x + b * LLM_QK;
		float amax = 0, id, d;
		int32_t sum = 0;

		for (int j = 0; j < LLM_QK; j++) {
			amax = fmaxf(amax, fabsf(v[j]));
		}
		d = amax / 127;
		id = amax ? 127 / amax : 0;
		for (int j = 0; j < LLM_QK; j++) {
			qs[j] = (int8_t)lrintf(v[j] * id);
			sum += qs[j];
		}
		((float *)(g + GROUP_QS))[b % GROUP] = d;
		((float *)(g + GROUP_QS + GROUP_F))[b % GROUP] = d * (float)sum;
	}
}

static float
type_offset(enum bx_llm_type type)
{
	return type == BX_LLM_Q8_0 ? 128.0f : type == BX_LLM_Q4_0 ? 8.0f : 0.0f;
}

/* Plain C decode of a block row into the packed form (also the fallback). */
static void
decode_row_c(enum bx_llm_type type, const void *row, size_t n, uint8_t *out)
{
	memset(out, 0, groups(n) * GROUP_BYTES);
	for (size_t b = 0; b < n / LLM_QK; b++) {
		uint8_t *g = out + b / GROUP * GROUP_BYTES, *z = g + (b % GROUP) * LLM_QK;
		float *dw = (float *)(g + GROUP_QS) + b % GROUP;
		float *dm = (float *)(g + GROUP_QS + GROUP_F) + b % GROUP;

		if (type == BX_LLM_Q8_0) {
			const struct blk_q8_0 *q = (const struct blk_q8_0 *)row + b;

			for (int j = 0; j < LLM_QK; j++) {
				z[j] = (uint8_t)(q->qs[j] + 128);
			}
			*dw = llm_f16_to_f32(q->d);
		} else {
			const uint8_t *qs = type == BX_LLM_Q4_0 ?
			                            ((const struct blk_q4_0 *)row + b)->qs :
			                            ((const struct blk_q4_1 *)row + b)->qs;
			uint16_t d = type == BX_LLM_Q4_0 ? ((const struct blk_q4_0 *)row + b)->d :
			                                   ((const struct blk_q4_1 *)row + b)->d;

			for (int j = 0; j < LLM_QK / 2; j++) {
				z[j] = qs[j] & 15;
				z[j + 16] = qs[j] >> 4;
			}
			*dw = llm_f16_to_f32(d);
			if (type == BX_LLM_Q4_1) {
				*dm = llm_f16_to_f32(((const struct blk_q4_1 *)row + b)->m);
			}
		}
	}
}

static float
dot_packed_c(const uint8_t *z, const uint8_t *a, size_t ng, float off)
{
	double sum = 0;

	for (size_t g = 0; g < ng; g++, z += GROUP_BYTES, a += GROUP_BYTES) {
		const float *dw = (const float *)(z + GROUP_QS), *dm = dw + GROUP;
		const float *da = (const float *)(a + GROUP_QS), *das = da + GROUP;

		for (int b = 0; b < GROUP; b++) {
			int32_t acc = 0;

			for (int j = 0; j < LLM_QK; j++) {
				acc += z[b * LLM_QK + j] * ((const int8_t *)a)[b * LLM_QK + j];
			}
			sum += (double)dw[b] * da[b] * acc - off * dw[b] * das[b] + dm[b] * das[b];
		}
	}
	return (float)sum;
}

#ifdef LLM_X86
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

LLM_AVX512 static void
decode_row_avx(enum bx_llm_type type, const void *row, size_t n, uint8_t *out)
{
	size_t nb = n / LLM_QK, ng = groups(n);
	const __m128i m4 = _mm_set1_epi8(15);
	const __m256i x80 = _mm256_set1_epi8((char)0x80);

	if (nb % GROUP) {
		memset(out + (ng - 1) * GROUP_BYTES, 0, GROUP_BYTES);
	}
	for (size_t b = 0; b < nb; b++) {
		uint8_t *g = out + b / GROUP * GROUP_BYTES, *z = g + (b % GROUP) * LLM_QK;
		float *dw = (float *)(g + GROUP_QS) + b % GROUP;

		if (type == BX_LLM_Q8_0) {
			const struct blk_q8_0 *q = (const struct blk_q8_0 *)row + b;

			_mm256_store_si256(
				(__m256i *)z,
				_mm256_xor_si256(_mm256_loadu_si256((const __m256i *)q->qs), x80));
			*dw = _cvtsh_ss(q->d);
		} else {
			const uint8_t *qs = type == BX_LLM_Q4_0 ?
			                            ((const struct blk_q4_0 *)row + b)->qs :
			                            ((const struct blk_q4_1 *)row + b)->qs;
			__m128i x = _mm_loadu_si128((const __m128i *)qs);

			_mm_store_si128((__m128i *)z, _mm_and_si128(x, m4));
			_mm_store_si128((__m128i *)(z + 16),
			                _mm_and_si128(_mm_srli_epi16(x, 4), m4));
			if (type == BX_LLM_Q4_0) {
				*dw = _cvtsh_ss(((const struct blk_q4_0 *)row + b)->d);
				dw[GROUP] = 0;
			} else {
				*dw = _cvtsh_ss(((const struct blk_q4_1 *)row + b)->d);
				dw[GROUP] = _cvtsh_ss(((const struct blk_q4_1 *)row + b)->m);
			}
		}
		if (type == BX_LLM_Q8_0) {
			dw[GROUP] = 0;
		}
	}
}

LLM_AVX512 static float
dot_packed_avx(const uint8_t *z, const uint8_t *a, size_t ng, float off)
{
	__m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
	__m512 corr = _mm512_setzero_ps(), mt = _mm512_setzero_ps();
	const __m512i lo = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
	const __m512i two = _mm512_set1_epi32(2);

	for (size_t g = 0; g < ng; g++, z += GROUP_BYTES, a += GROUP_BYTES) {
		__m512 dw = _mm512_load_ps(z + GROUP_QS);
		__m512 dm = _mm512_load_ps(z + GROUP_QS + GROUP_F);
		__m512 da = _mm512_load_ps(a + GROUP_QS);
		__m512 das = _mm512_load_ps(a + GROUP_QS + GROUP_F);
		__m512 s = _mm512_mul_ps(dw, da);
		__m512i idx = lo;

		corr = _mm512_fmadd_ps(dw, das, corr);
		mt = _mm512_fmadd_ps(dm, das, mt);
		for (size_t p = 0; p < GROUP / 2; p += 2) {
			__m512i d0 = _mm512_dpbusd_epi32(_mm512_setzero_si512(),
			                                 _mm512_load_si512(z + 64 * p),
			                                 _mm512_load_si512(a + 64 * p));
			__m512i d1 = _mm512_dpbusd_epi32(_mm512_setzero_si512(),
			                                 _mm512_load_si512(z + 64 * p + 64),
			                                 _mm512_load_si512(a + 64 * p + 64));
			__m512i idx1 = _mm512_add_epi32(idx, two);

			acc0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d0),
			                       _mm512_permutexvar_ps(idx, s), acc0);
			acc1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d1),
			                       _mm512_permutexvar_ps(idx1, s), acc1);
			idx = _mm512_add_epi32(idx1, two);
		}
	}
	return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1)) - off * _mm512_reduce_add_ps(corr) +
	       _mm512_reduce_add_ps(mt);
}

/*
 * Single-activation kernel straight from the file's blocks (no decode pass):
 * the group's 16 f16 scales come in with one gather. Full groups only; the
 * tail goes through decode_row_avx.
 *
 * Q4_0/Q4_1: four blocks' 16-byte nibble arrays fill one zmm; masking gives
 * the four low halves (values 0..15 of each block), shifting the four high
 * halves (16..31). The activations' natural order is rearranged to match
 * with two lane shuffles, and both halves accumulate into one int32 vector
 * whose lanes 4i..4i+3 belong to block i: about a third of the uops of
 * unpacking pairs of blocks into value order, so the core has room left
 * while it waits for the weight stream.
 */
LLM_AVX512 static inline __m512i
load4_q4(const uint8_t *q, size_t bs)
{
	__m512i x = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)q));

	x = _mm512_inserti32x4(x, _mm_loadu_si128((const __m128i *)(q + bs)), 1);
	x = _mm512_inserti32x4(x, _mm_loadu_si128((const __m128i *)(q + 2 * bs)), 2);
	return _mm512_inserti32x4(x, _mm_loadu_si128((const __m128i *)(q + 3 * bs)), 3);
}

/* Four Q4 blocks (at q, bs apart) . activation blocks at a: int32 lanes 4i..4i+3 = block i. */
LLM_AVX512 static inline __m512i
dot4_q4(const uint8_t *q, size_t bs, const uint8_t *a)
{
	const __m512i m4 = _mm512_set1_epi8(15);
	__m512i x = load4_q4(q, bs);
	__m512i a0 = _mm512_load_si512(a), a1 = _mm512_load_si512(a + 64);
	__m512i lo = _mm512_and_si512(x, m4), hi = _mm512_and_si512(_mm512_srli_epi16(x, 4), m4);
	__m512i alo = _mm512_shuffle_i64x2(a0, a1, _MM_SHUFFLE(2, 0, 2, 0));
	__m512i ahi = _mm512_shuffle_i64x2(a0, a1, _MM_SHUFFLE(3, 1, 3, 1));

	return _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), lo, alo), hi, ahi);
}

/* Two Q8_0 blocks' values, + 128 as unsigned bytes. */
LLM_AVX512 static inline __m512i
load2_q8(const uint8_t *q0, const uint8_t *q1, __m512i x80)
{
	__m512i z =
		_mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)q0)),
	                           _mm256_loadu_si256((const __m256i *)q1), 1);

	return _mm512_xor_si512(z, x80);
}

LLM_AVX512 static inline __m512
gather_f16(const uint8_t *base, int stride)
{
	__m512i idx = _mm512_mullo_epi32(
		_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
		_mm512_set1_epi32(stride));
	__m512i v = _mm512_i32gather_epi32(idx, (const void *)base, 1);

	return _mm512_cvtph_ps(_mm512_cvtepi32_epi16(v));
}

/* One group of 16 Q4 blocks: acc += per-block int dots x s (dw * da). */
LLM_AVX512 static inline __m512
group_q4(const uint8_t *q, size_t bs, const uint8_t *a, __m512 s, __m512 acc)
{
	const __m512i step = _mm512_set1_epi32(4);
	__m512i idx = _mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0);
	__m512 acc1 = _mm512_setzero_ps();

	for (size_t p = 0; p < GROUP; p += 8) {
		__m512i d0 = dot4_q4(q + p * bs, bs, a + 32 * p);
		__m512i d1 = dot4_q4(q + (p + 4) * bs, bs, a + 32 * p + 128);
		__m512i idx1 = _mm512_add_epi32(idx, step);

		acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d0), _mm512_permutexvar_ps(idx, s), acc);
		acc1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d1), _mm512_permutexvar_ps(idx1, s),
		                       acc1);
		idx = _mm512_add_epi32(idx1, step);
	}
	return _mm512_add_ps(acc, acc1);
}

/* One group of 16 Q8_0 blocks, two blocks a zmm. */
LLM_AVX512 static inline __m512
group_q8(const uint8_t *w, const uint8_t *a, __m512 s, __m512 acc)
{
	const __m512i two = _mm512_set1_epi32(2), x80 = _mm512_set1_epi8((char)0x80);
	__m512i idx = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
	__m512 acc1 = _mm512_setzero_ps();

	for (size_t p = 0; p < GROUP; p += 4) {
		__m512i z0 = load2_q8(w + p * 34 + 2, w + (p + 1) * 34 + 2, x80);
		__m512i z1 = load2_q8(w + (p + 2) * 34 + 2, w + (p + 3) * 34 + 2, x80);
		__m512i d0 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), z0,
		                                 _mm512_load_si512(a + 32 * p));
		__m512i d1 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), z1,
		                                 _mm512_load_si512(a + 32 * p + 64));
		__m512i idx1 = _mm512_add_epi32(idx, two);

		acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d0), _mm512_permutexvar_ps(idx, s), acc);
		acc1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d1), _mm512_permutexvar_ps(idx1, s),
		                       acc1);
		idx = _mm512_add_epi32(idx1, two);
	}
	return _mm512_add_ps(acc, acc1);
}

LLM_AVX512 static float
dot_direct_avx(enum bx_llm_type type, const uint8_t *row, const uint8_t *a, size_t nb)
{
	size_t bs = type == BX_LLM_Q8_0 ? 34 : type == BX_LLM_Q4_0 ? 18 : 20;
	size_t qo = type == BX_LLM_Q4_1 ? 4 : 2; /* where qs starts in a block */
	size_t ng = nb / GROUP;
	__m512 acc = _mm512_setzero_ps(), corr = _mm512_setzero_ps(), mt = _mm512_setzero_ps();
	float off = type_offset(type), tail = 0;

	for (size_t g = 0; g < ng; g++, a += GROUP_BYTES) {
		const uint8_t *w = row + g * GROUP * bs;
		__m512 dw = gather_f16(w, (int)bs);
		__m512 da = _mm512_load_ps(a + GROUP_QS);
		__m512 das = _mm512_load_ps(a + GROUP_QS + GROUP_F);
		__m512 s = _mm512_mul_ps(dw, da);

		/*
		 * The gathers do not train the hardware prefetcher: ask for what
		 * comes next, into L2 only (a prefetch into L1 holds one of the
		 * core's few fill buffers until the line arrives, which capped the
		 * stream at ~10 GB/s a core).
		 */
		for (size_t i = 0; LLM_PREFETCH && i < GROUP * bs; i += 64) {
			_mm_prefetch((const char *)w + LLM_PREFETCH + i, LLM_PF_HINT);
		}
		corr = _mm512_fmadd_ps(dw, das, corr);
		if (type == BX_LLM_Q4_1) {
			mt = _mm512_fmadd_ps(gather_f16(w + 2, (int)bs), das, mt);
		}
		acc = type == BX_LLM_Q8_0 ? group_q8(w, a, s, acc) :
		                            group_q4(w + qo, bs, a, s, acc);
	}
	if (nb % GROUP) {
		uint8_t z[GROUP_BYTES] __attribute__((aligned(64)));

		decode_row_avx(type, row + ng * GROUP * bs, (nb % GROUP) * LLM_QK, z);
		tail = dot_packed_avx(z, a, 1, off);
	}
	return _mm512_reduce_add_ps(acc) - off * _mm512_reduce_add_ps(corr) +
	       _mm512_reduce_add_ps(mt) + tail;
}

LLM_AVX512 static float
dot_f32_avx(const float *w, const float *x, size_t n)
{
	__m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
	size_t i = 0;

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
	return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
}
#else
bool
llm_have_avx512(void)
{
	return false;
}
#endif

static void
decode_row(enum bx_llm_type type, const void *row, size_t n, uint8_t *out)
{
#ifdef LLM_X86
	if (llm_have_avx512()) {
		decode_row_avx(type, row, n, out);
		return;
	}
#endif
	decode_row_c(type, row, n, out);
}

static float
dot_packed(const uint8_t *z, const uint8_t *a, size_t n, float off)
{
#ifdef LLM_X86
	if (llm_have_avx512()) {
		return dot_packed_avx(z, a, groups(n), off);
	}
#endif
	return dot_packed_c(z, a, groups(n), off);
}

float
llm_dot_fast(enum bx_llm_type type, const void *row, const uint8_t *act, size_t n)
{
	uint8_t z[ROW_BUF] __attribute__((aligned(64)));

	if (type == BX_LLM_Q4_K || type == BX_LLM_Q6_K) {
		return llm_kquant_dot(type, row, act, n);
	}
#ifdef LLM_X86
	if (llm_have_avx512()) {
		return dot_direct_avx(type, row, act, n / LLM_QK);
	}
#endif
	decode_row(type, row, n, z);
	return dot_packed(z, act, n, type_offset(type));
}

static float
dot_f32(const float *w, const float *x, size_t n)
{
	float s = 0;

	for (size_t i = 0; i < n; i++) {
		s += w[i] * x[i];
	}
	return s;
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
	/* F16, BF16, Q4_K, Q6_K: converted 256 values at a time (one K super-block). */
	for (uint32_t i = 0; i < w->cols; i += 256) {
		uint32_t n = BX_MIN(256u, w->cols - i);

		bx_llm_dequantize(w->type, (const uint8_t *)row + bx_llm_row_bytes(w->type, i), n,
		                  tmp);
		s += dot_f32(tmp, x + i, n);
	}
	return s;
}

/*
 * K-quant rows from the caller's packed activations; without them (act
 * NULL) x is packed here, the whole batch when it fits the buffer (each row
 * then read once against all nb), else one activation at a time.
 */
#ifdef LLM_X86
static void
kq_matmul_rows(const struct llm_tensor *w, uint32_t r0, uint32_t r1, const float *x,
               const uint8_t *act, unsigned nb, float *out, size_t out_stride)
{
	uint8_t buf[ROW_BUF] __attribute__((aligned(64)));
	size_t ab = llm_act_bytes(w->cols);

	if (act != NULL) {
		llm_matmul_rows_packed(w, r0, r1, act, nb, out, out_stride);
		return;
	}
	if (nb * ab <= sizeof(buf)) {
		for (unsigned b = 0; b < nb; b++) {
			llm_pack_act(x + (size_t)b * w->cols, w->cols, buf + b * ab);
		}
		llm_matmul_rows_packed(w, r0, r1, buf, nb, out, out_stride);
		return;
	}
	for (unsigned b = 0; b < nb; b++) {
		llm_pack_act(x + (size_t)b * w->cols, w->cols, buf);
		llm_matmul_rows_packed(w, r0, r1, buf, 1, out + (size_t)b * out_stride, out_stride);
	}
}
#endif

static bool
kq_type(enum bx_llm_type t)
{
	return t == BX_LLM_Q4_K || t == BX_LLM_Q6_K;
}

/*
 * Rows outer, activations inner: each weight row is read from memory and
 * decoded once, then stays in L1 for the nb dot products, so a batched
 * step costs about one pass over the weights (continuous batching pays).
 * K-quant rows meet up to four activations at a time in the kernel,
 * unpacked once for them.
 */
void
llm_matmul_rows_packed(const struct llm_tensor *w, uint32_t r0, uint32_t r1, const uint8_t *act,
                       unsigned nb, float *out, size_t out_stride)
{
	uint8_t z[ROW_BUF] __attribute__((aligned(64)));
	size_t rb = bx_llm_row_bytes(w->type, w->cols), ab = llm_act_bytes(w->cols);
	float off = type_offset(w->type);

	if (!kq_type(w->type)) {
		r0 += llm_matmul_i8_rows(w, r0, r1, act, nb, out, out_stride);
	}
	for (uint32_t r = r0; r < r1; r++) {
		const uint8_t *row = (const uint8_t *)w->data + (size_t)r * rb;

		if (kq_type(w->type)) {
			for (unsigned b = 0; b < nb; b += 4) {
				float o[4];
				unsigned na = BX_MIN(4u, nb - b);

				llm_kquant_dot_n(w->type, row, act + b * ab, ab, na, w->cols, o);
				for (unsigned i = 0; i < na; i++) {
					out[(size_t)(b + i) * out_stride + r] = o[i];
				}
			}
			continue;
		}
#ifdef LLM_X86
		if (nb == 1 && llm_have_avx512()) {
			out[r] = dot_direct_avx(w->type, row, act, w->cols / LLM_QK);
			continue;
		}
#endif
		decode_row(w->type, row, w->cols, z);
		for (unsigned b = 0; b < nb; b++) {
			out[(size_t)b * out_stride + r] = dot_packed(z, act + b * ab, w->cols, off);
		}
	}
}

void
llm_matmul_rows(const struct llm_tensor *w, uint32_t r0, uint32_t r1, const float *x,
                const uint8_t *act, unsigned nb, float *out, size_t out_stride)
{
	size_t rb = bx_llm_row_bytes(w->type, w->cols);

	if (w->type == BX_LLM_Q8_0 || w->type == BX_LLM_Q4_0 || w->type == BX_LLM_Q4_1) {
		llm_matmul_rows_packed(w, r0, r1, act, nb, out, out_stride);
		return;
	}
#ifdef LLM_X86
	if (kq_type(w->type) && llm_kquant_kernels && llm_have_avx512()) {
		kq_matmul_rows(w, r0, r1, x, act, nb, out, out_stride);
		return;
	}
#endif
	/* F32, F16, BF16; Q4_K and Q6_K without AVX-512 VNNI */
	for (uint32_t r = r0; r < r1; r++) {
		const uint8_t *row = (const uint8_t *)w->data + (size_t)r * rb;

		for (unsigned b = 0; b < nb; b++) {
			out[(size_t)b * out_stride + r] =
				dot_any_f32(w, row, x + (size_t)b * w->cols);
		}
	}
}

/* ---- bf16 copies for batched steps and prefill ---- */

size_t
llm_bf16_cols(size_t n)
{
	return (n + 31) / 32 * 32;
}

void
llm_to_bf16(const float *x, size_t n, uint16_t *out)
{
	size_t i = 0;

	for (; i < n; i++) {
		out[i] = f32_to_bf16(x[i]);
	}
	for (; i < llm_bf16_cols(n); i++) {
		out[i] = 0;
	}
}

#ifdef LLM_X86
#define LLM_BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))

bool
llm_have_bf16(void)
{
	__builtin_cpu_init();
	return llm_have_avx512() && __builtin_cpu_supports("avx512bf16");
}

/*
 * One weight row against four activations at a time: five loads feed four
 * vdpbf16ps (32 multiply-adds each), the row staying in L1 for the batch.
 */
LLM_BF16 static void
row_x4(const uint16_t *w, const uint16_t *x, size_t kp, size_t nb, float *out, size_t stride)
{
	size_t b = 0;

	for (; b + 4 <= nb; b += 4) {
		const uint16_t *x0 = x + b * kp;
		__m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;

		for (size_t i = 0; i < kp; i += 32) {
			__m512bh wv = (__m512bh)_mm512_loadu_si512(w + i);

			a0 = _mm512_dpbf16_ps(a0, wv, (__m512bh)_mm512_loadu_si512(x0 + i));
			a1 = _mm512_dpbf16_ps(a1, wv, (__m512bh)_mm512_loadu_si512(x0 + kp + i));
			a2 = _mm512_dpbf16_ps(a2, wv,
			                      (__m512bh)_mm512_loadu_si512(x0 + 2 * kp + i));
			a3 = _mm512_dpbf16_ps(a3, wv,
			                      (__m512bh)_mm512_loadu_si512(x0 + 3 * kp + i));
		}
		out[b * stride] = _mm512_reduce_add_ps(a0);
		out[(b + 1) * stride] = _mm512_reduce_add_ps(a1);
		out[(b + 2) * stride] = _mm512_reduce_add_ps(a2);
		out[(b + 3) * stride] = _mm512_reduce_add_ps(a3);
	}
	for (; b < nb; b++) {
		__m512 a0 = _mm512_setzero_ps();

		for (size_t i = 0; i < kp; i += 32) {
			a0 = _mm512_dpbf16_ps(a0, (__m512bh)_mm512_loadu_si512(w + i),
			                      (__m512bh)_mm512_loadu_si512(x + b * kp + i));
		}
		out[b * stride] = _mm512_reduce_add_ps(a0);
	}
}

void
llm_matmul_bf16_rows(const struct llm_tensor *w, uint32_t r0, uint32_t r1, const uint16_t *x,
                     unsigned nb, float *out, size_t out_stride)
{
	size_t kp = llm_bf16_cols(w->cols);

	for (uint32_t r = r0; r < r1; r++) {
		row_x4(w->bf16 + (size_t)r * kp, x, kp, nb, out + r, out_stride);
	}
}
#else
bool
llm_have_bf16(void)
{
	return false;
}

void
llm_matmul_bf16_rows(const struct llm_tensor *w, uint32_t r0, uint32_t r1, const uint16_t *x,
                     unsigned nb, float *out, size_t out_stride)
{
	(void)w, (void)r0, (void)r1, (void)x, (void)nb, (void)out, (void)out_stride;
}
#endif

/* ---- row-interleaved int8 copies for batched steps ---- */

static bool
i8_type(enum bx_llm_type t)
{
	return t == BX_LLM_Q8_0 || t == BX_LLM_Q4_0 || t == BX_LLM_Q4_1;
}

size_t
llm_i8x16_bytes(const struct llm_tensor *t)
{
	return i8_type(t->type) ? (size_t)(t->rows / 16) * (t->cols / LLM_QK) * LLM_I8_GROUP : 0;
}

/* One block of one row into its group: q as u8 with x = d * q + m. */
static void
pack_block(enum bx_llm_type type, const uint8_t *row, size_t b, unsigned i, uint8_t *g)
{
	float *d = (float *)g + i, *m = (float *)(g + 64) + i;
	uint8_t q[LLM_QK];

	if (type == BX_LLM_Q8_0) {
		const struct blk_q8_0 *x = (const struct blk_q8_0 *)row + b;

		*d = llm_f16_to_f32(x->d);
		*m = -128 * *d;
		for (int j = 0; j < LLM_QK; j++) {
			q[j] = (uint8_t)(x->qs[j] + 128);
		}
	} else {
		const uint8_t *qs = type == BX_LLM_Q4_0 ? ((const struct blk_q4_0 *)row + b)->qs :
		                                          ((const struct blk_q4_1 *)row + b)->qs;

		*d = llm_f16_to_f32(type == BX_LLM_Q4_0 ? ((const struct blk_q4_0 *)row + b)->d :
		                                          ((const struct blk_q4_1 *)row + b)->d);
		*m = type == BX_LLM_Q4_0 ? -8 * *d :
		                           llm_f16_to_f32(((const struct blk_q4_1 *)row + b)->m);
		for (int j = 0; j < LLM_QK / 2; j++) {
			q[j] = qs[j] & 15;
			q[j + 16] = qs[j] >> 4;
		}
	}
	for (int j = 0; j < LLM_QK; j++) {
		g[128 + (size_t)(j / 4) * 64 + (size_t)i * 4 + (size_t)(j % 4)] = q[j];
	}
}

void
llm_pack_i8x16(const struct llm_tensor *t, uint8_t *out)
{
	size_t rb = bx_llm_row_bytes(t->type, t->cols), nblk = t->cols / LLM_QK;

	for (uint32_t r = 0; r < t->rows / 16 * 16; r++) {
		const uint8_t *row = (const uint8_t *)t->data + (size_t)r * rb;

		for (size_t b = 0; b < nblk; b++) {
			pack_block(t->type, row, b, r % 16,
			           out + ((size_t)(r / 16) * nblk + b) * LLM_I8_GROUP);
		}
	}
}

#ifdef LLM_X86
/*
 * 16 rows against na activations: per block, eight vpdpbusd per activation
 * (a broadcast 4-byte word of the activation against 4 bytes of each row),
 * then one scale (d * da) and one offset (m * da * sum(a)) FMA per block.
 */
LLM_AVX512 static inline __attribute__((always_inline)) void
i8x16_kernel(const uint8_t *wg, size_t nblk, const uint8_t *const *a, unsigned na,
             float *const *out)
{
	__m512 acc[4] = { _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(),
		          _mm512_setzero_ps() };

	for (size_t blk = 0; blk < nblk; blk++) {
		const uint8_t *w = wg + blk * LLM_I8_GROUP;
		size_t qo = blk / GROUP * GROUP_BYTES + blk % GROUP * LLM_QK;
		size_t so = blk / GROUP * GROUP_BYTES + GROUP_QS + blk % GROUP * 4;
		__m512 d = _mm512_load_ps(w), m = _mm512_load_ps(w + 64);
		__m512i is[4] = { _mm512_setzero_si512(), _mm512_setzero_si512(),
			          _mm512_setzero_si512(), _mm512_setzero_si512() };

		for (size_t k = 0; k < 8; k++) {
			__m512i wv = _mm512_load_si512(w + 128 + 64 * k);

			for (unsigned i = 0; i < na; i++) {
				int32_t word;

				memcpy(&word, a[i] + qo + 4 * k, 4);
				is[i] = _mm512_dpbusd_epi32(is[i], wv, _mm512_set1_epi32(word));
			}
		}
		for (unsigned i = 0; i < na; i++) {
			float da, das;

			memcpy(&da, a[i] + so, 4);
			memcpy(&das, a[i] + so + GROUP_F, 4);
			acc[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(is[i]),
			                         _mm512_mul_ps(d, _mm512_set1_ps(da)), acc[i]);
			acc[i] = _mm512_fmadd_ps(m, _mm512_set1_ps(das), acc[i]);
		}
	}
	for (unsigned i = 0; i < na; i++) {
		_mm512_storeu_ps(out[i], acc[i]);
	}
}

LLM_AVX512 static void
i8x16_rows(const struct llm_tensor *w, uint32_t r0, const uint8_t *act, unsigned nb, float *out,
           size_t stride)
{
	size_t nblk = w->cols / LLM_QK, ab = llm_act_bytes(w->cols);
	const uint8_t *wg = w->i8x16 + (size_t)(r0 / 16) * nblk * LLM_I8_GROUP;
	unsigned b = 0;

	for (; b + 4 <= nb; b += 4) {
		const uint8_t *a[4] = { act + b * ab, act + (b + 1) * ab, act + (b + 2) * ab,
			                act + (b + 3) * ab };
		float *o[4] = { out + b * stride + r0, out + (b + 1) * stride + r0,
			        out + (b + 2) * stride + r0, out + (b + 3) * stride + r0 };

		i8x16_kernel(wg, nblk, a, 4, o);
	}
	for (; b < nb; b++) {
		const uint8_t *a[1] = { act + b * ab };
		float *o[1] = { out + b * stride + r0 };

		i8x16_kernel(wg, nblk, a, 1, o);
	}
}

/* Rows [r0, r1) through the int8 copies where whole groups of 16 allow; returns rows done. */
uint32_t
llm_matmul_i8_rows(const struct llm_tensor *w, uint32_t r0, uint32_t r1, const uint8_t *act,
                   unsigned nb, float *out, size_t stride)
{
	uint32_t r = r0;

	if (!w->i8x16 || nb < LLM_I8_MIN_BATCH || r0 % 16 || !llm_have_avx512()) {
		return 0;
	}
	for (; r + 16 <= r1 && r + 16 <= w->rows / 16 * 16; r += 16) {
		i8x16_rows(w, r, act, nb, out, stride);
	}
	return r - r0;
}
#else
uint32_t
llm_matmul_i8_rows(const struct llm_tensor *w, uint32_t r0, uint32_t r1, const uint8_t *act,
                   unsigned nb, float *out, size_t stride)
{
	return 0;
}
#endif
