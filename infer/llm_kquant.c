/*
 * K-quant super-blocks of 256 values (ggml src/ggml-common.h, ggml-quants.c
 * dequantize_row_q4_K / _q6_K):
 *
 *   Q4_K: {f16 d, dmin; u8 scales[12]; u8 qs[128]}: 8 sub-blocks of 32 with
 *         a 6-bit scale sc and min m (get_scale_min_k4); per 64 values the
 *         low nibbles are the first 32, the high nibbles the next 32;
 *         x = d * sc * q - dmin * m.
 *   Q6_K: {u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d}: 16 sub-blocks of
 *         16; per 128 values, q = (4 bits of ql | 2 bits of qh << 4) - 32;
 *         x = d * scales[i / 16] * q.
 *
 * The reference path reads them through dequantization. Decode multiplies
 * them straight from the file's blocks by activations quantized to Q8_0
 * per 32 (llm_pack_act): a Q4_K sub-block lines up with one activation
 * block, a Q6_K activation block spans two sub-blocks. The quantizers are
 * plain (no search), for the converter and the tests.
 */
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "llm_int.h"

#if defined(__x86_64__)
#include <immintrin.h>
#define KQ_AVX512 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,f16c,fma")))
#endif

#define QK_K 256

struct blk_q4_k {
	uint16_t d, dmin;
	uint8_t scales[12];
	uint8_t qs[QK_K / 2];
};

struct blk_q6_k {
	uint8_t ql[QK_K / 2];
	uint8_t qh[QK_K / 4];
	int8_t scales[QK_K / 16];
	uint16_t d;
};

_Static_assert(sizeof(struct blk_q4_k) == 144, "Q4_K block");
_Static_assert(sizeof(struct blk_q6_k) == 210, "Q6_K block");

static size_t
blk_bytes(enum bx_llm_type type)
{
	return type == BX_LLM_Q4_K ? sizeof(struct blk_q4_k) : sizeof(struct blk_q6_k);
}

size_t
llm_kquant_row_bytes(enum bx_llm_type type, size_t n)
{
	if (n % QK_K) {
		return 0;
	}
	return n / QK_K * (type == BX_LLM_Q4_K ? sizeof(struct blk_q4_k) : sizeof(struct blk_q6_k));
}

static void
scale_min_k4(int j, const uint8_t *q, uint8_t *d, uint8_t *m)
{
	if (j < 4) {
		*d = q[j] & 63;
		*m = q[j + 4] & 63;
	} else {
		*d = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
		*m = (q[j + 4] >> 4) | ((q[j - 0] >> 6) << 4);
	}
}

static void
deq_q4_k(const struct blk_q4_k *x, float *y)
{
	const uint8_t *q = x->qs;
	float d = llm_f16_to_f32(x->d), min = llm_f16_to_f32(x->dmin);

	for (int j = 0, is = 0; j < QK_K; j += 64, is += 2, q += 32) {
		uint8_t sc, m;
		float d1, m1, d2, m2;

		scale_min_k4(is, x->scales, &sc, &m);
		d1 = d * sc;
		m1 = min * m;
		scale_min_k4(is + 1, x->scales, &sc, &m);
		d2 = d * sc;
		m2 = min * m;
		for (int l = 0; l < 32; l++) {
			*y++ = d1 * (q[l] & 0xF) - m1;
		}
		for (int l = 0; l < 32; l++) {
			*y++ = d2 * (q[l] >> 4) - m2;
		}
	}
}

static void
deq_q6_k(const struct blk_q6_k *x, float *y)
{
	const uint8_t *ql = x->ql, *qh = x->qh;
	const int8_t *sc = x->scales;
	float d = llm_f16_to_f32(x->d);

	for (int n = 0; n < QK_K; n += 128, y += 128, ql += 64, qh += 32, sc += 8) {
		for (int l = 0; l < 32; l++) {
			int is = l / 16;
			int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
			int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
			int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
			int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;

			y[l] = d * sc[is] * q1;
			y[l + 32] = d * sc[is + 2] * q2;
			y[l + 64] = d * sc[is + 4] * q3;
			y[l + 96] = d * sc[is + 6] * q4;
		}
	}
}

void
llm_kquant_dequantize(enum bx_llm_type type, const void *in, size_t n, float *out)
{
	for (size_t b = 0; b < n / QK_K; b++) {
		if (type == BX_LLM_Q4_K) {
			deq_q4_k((const struct blk_q4_k *)in + b, out + b * QK_K);
		} else {
			deq_q6_k((const struct blk_q6_k *)in + b, out + b * QK_K);
		}
	}
}

/* Q4_K: per sub-block scale (max - min) / 15 and offset -min, both to 6 bits. */
static void
quant_q4_k(const float *x, struct blk_q4_k *b)
{
	float s[8], mn[8], smax = 0, mmax = 0, d, dmin;
	uint8_t sc[8], m[8];

	for (int j = 0; j < 8; j++) {
		float lo = x[(size_t)32 * j], hi = x[(size_t)32 * j];

		for (int l = 1; l < 32; l++) {
			lo = fminf(lo, x[32 * j + l]);
			hi = fmaxf(hi, x[32 * j + l]);
		}
		lo = fminf(lo, 0);
		s[j] = (hi - lo) / 15;
		mn[j] = -lo;
		smax = fmaxf(smax, s[j]);
		mmax = fmaxf(mmax, mn[j]);
	}
	b->d = llm_f32_to_f16(smax / 63);
	b->dmin = llm_f32_to_f16(mmax / 63);
	d = llm_f16_to_f32(b->d);
	dmin = llm_f16_to_f32(b->dmin);
	for (int j = 0; j < 8; j++) {
		sc[j] = (uint8_t)(d ? fminf(63, lrintf(s[j] / d)) : 0);
		m[j] = (uint8_t)(dmin ? fminf(63, lrintf(mn[j] / dmin)) : 0);
	}
	for (int j = 0; j < 4; j++) {
		b->scales[j] = (uint8_t)((sc[j] & 63) | ((sc[j + 4] >> 4) << 6));
		b->scales[j + 4] = (uint8_t)((m[j] & 63) | ((m[j + 4] >> 4) << 6));
		b->scales[j + 8] = (uint8_t)((sc[j + 4] & 0xF) | ((m[j + 4] & 0xF) << 4));
	}
	for (int j = 0; j < 8; j++) {
		float ds = d * sc[j], off = dmin * m[j];

		for (int l = 0; l < 32; l++) {
			int q = ds ? (int)lrintf((x[32 * j + l] + off) / ds) : 0;
			uint8_t *p = &b->qs[(j / 2) * 32 + l];

			q = q < 0 ? 0 : q > 15 ? 15 : q;
			*p = (uint8_t)(j % 2 ? (*p & 0x0F) | (q << 4) : (*p & 0xF0) | q);
		}
	}
}

/* Q6_K: per 16 values scale amax / 32, scales to int8 under one f16 d. */
static void
quant_q6_k(const float *x, struct blk_q6_k *b)
{
	float s[16], smax = 0, d;
	uint8_t q[QK_K];

	for (int j = 0; j < 16; j++) {
		float amax = 0;

		for (int l = 0; l < 16; l++) {
			amax = fmaxf(amax, fabsf(x[16 * j + l]));
		}
		s[j] = amax / 31;
		smax = fmaxf(smax, s[j]);
	}
	b->d = llm_f32_to_f16(smax / 127);
	d = llm_f16_to_f32(b->d);
	for (int j = 0; j < 16; j++) {
		float ds;

		b->scales[j] = (int8_t)(d ? fminf(127, lrintf(s[j] / d)) : 0);
		ds = d * b->scales[j];
		for (int l = 0; l < 16; l++) {
			int v = ds ? (int)lrintf(x[16 * j + l] / ds) : 0;

			q[16 * j + l] = (uint8_t)((v < -32 ? -32 : v > 31 ? 31 : v) + 32);
		}
	}
	for (int n = 0; n < QK_K; n += 128) {
		uint8_t *ql = b->ql + n / 2, *qh = b->qh + n / 4;
		const uint8_t *v = q + n;

		for (int l = 0; l < 32; l++) {
			ql[l] = (uint8_t)((v[l] & 0xF) | ((v[l + 64] & 0xF) << 4));
			ql[l + 32] = (uint8_t)((v[l + 32] & 0xF) | ((v[l + 96] & 0xF) << 4));
			qh[l] = (uint8_t)((v[l] >> 4) | ((v[l + 32] >> 4) << 2) |
			                  ((v[l + 64] >> 4) << 4) | ((v[l + 96] >> 4) << 6));
		}
	}
}

void
llm_kquant_quantize(enum bx_llm_type type, const float *x, size_t n, void *out)
{
	for (size_t b = 0; b < n / QK_K; b++) {
		if (type == BX_LLM_Q4_K) {
			memset((struct blk_q4_k *)out + b, 0, sizeof(struct blk_q4_k));
			quant_q4_k(x + b * QK_K, (struct blk_q4_k *)out + b);
		} else {
			quant_q6_k(x + b * QK_K, (struct blk_q6_k *)out + b);
		}
	}
}

/*
 * Random bytes make 6-bit scales and mins uniform in 0..63 and values
 * uniform (Q4_K q in 0..15, std 4.6; Q6_K q - 32 in -32..31, std 18.5,
 * int8 scales std 74). Q4_K's dmin = 7.5 d centres a sub-block on
 * average; the spread of sc - m between sub-blocks then adds to the
 * spread within one, about 240 d in all.
 */
void
llm_kquant_synth_scales(enum bx_llm_type type, uint8_t *blocks, size_t bytes, float std)
{
	size_t bs = blk_bytes(type);

	for (size_t b = 0; b < bytes / bs; b++) {
		uint8_t *p = blocks + b * bs;
		uint16_t d = llm_f32_to_f16(type == BX_LLM_Q4_K ? std / 240 : std / 1370);

		if (type == BX_LLM_Q4_K) {
			uint16_t dmin = llm_f32_to_f16(7.5f * std / 240);

			memcpy(p + offsetof(struct blk_q4_k, d), &d, 2);
			memcpy(p + offsetof(struct blk_q4_k, dmin), &dmin, 2);
		} else {
			memcpy(p + offsetof(struct blk_q6_k, d), &d, 2);
		}
	}
}

/* ---- dot products against Q8_0 activation blocks ---- */

bool llm_kquant_kernels = true;

/* One super-block's integer values (Q4_K: 0..15, Q6_K: -32..31) and sub-block scales. */
static void
sb_ints(enum bx_llm_type type, const void *blk, int8_t *q, int *sc, int *m)
{
	if (type == BX_LLM_Q4_K) {
		const struct blk_q4_k *x = blk;

		for (int j = 0; j < 8; j++) {
			uint8_t s, mn;

			scale_min_k4(j, x->scales, &s, &mn);
			sc[j] = s;
			m[j] = mn;
			for (int l = 0; l < 32; l++) {
				uint8_t b = x->qs[(j / 2) * 32 + l];

				q[32 * j + l] = (int8_t)(j % 2 ? b >> 4 : b & 0xF);
			}
		}
		return;
	}
	{
		const struct blk_q6_k *x = blk;

		for (int n = 0; n < 2; n++) {
			const uint8_t *ql = x->ql + 64 * n, *qh = x->qh + 32 * n;
			int8_t *y = q + 128 * n;

			for (int l = 0; l < 32; l++) {
				y[l] = (int8_t)(((ql[l] & 0xF) | ((qh[l] & 3) << 4)) - 32);
				y[l + 32] =
					(int8_t)(((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) -
				                 32);
				y[l + 64] =
					(int8_t)(((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
				y[l + 96] =
					(int8_t)(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) -
				                 32);
			}
		}
		for (int j = 0; j < 16; j++) {
			sc[j] = (int)x->scales[j]; /* signed: Q6_K scales are int8 */
		}
	}
}

/*
 * One super-block . 8 activation blocks:
 *   Q4_K: sum_j d sc_j da_j sum(q qa) - dmin m_j da_j sum(qa)
 *   Q6_K: sum_i d sc_i da_(i/2) sum over the 16 values of (q - 32) qa
 */
static float
sb_dot_ref(enum bx_llm_type type, const void *blk, const struct llm_q8a *qa)
{
	int8_t q[QK_K];
	int sc[16], m[8];
	float sum = 0;

	sb_ints(type, blk, q, sc, m);
	if (type == BX_LLM_Q4_K) {
		const struct blk_q4_k *x = blk;
		float d = llm_f16_to_f32(x->d), dmin = llm_f16_to_f32(x->dmin);

		for (int j = 0; j < 8; j++) {
			int32_t acc = 0;

			for (int l = 0; l < 32; l++) {
				acc += q[32 * j + l] * qa[j].qs[l];
			}
			sum += d * (float)sc[j] * qa[j].d * (float)acc -
			       dmin * (float)m[j] * qa[j].d * (float)qa[j].s;
		}
		return sum;
	}
	{
		float d = llm_f16_to_f32(((const struct blk_q6_k *)blk)->d);

		for (int i = 0; i < 16; i++) {
			int32_t acc = 0;

			for (int l = 0; l < 16; l++) {
				acc += q[16 * i + l] * qa[i / 2].qs[(i % 2) * 16 + l];
			}
			sum += d * (float)sc[i] * qa[i / 2].d * (float)acc;
		}
		return sum;
	}
}

float
llm_kquant_dot_ref(enum bx_llm_type type, const void *row, const struct llm_q8a *qa, size_t n)
{
	float sum = 0;

	for (size_t b = 0; b < n / QK_K; b++) {
		sum += sb_dot_ref(type, (const uint8_t *)row + b * blk_bytes(type),
		                  qa + b * (QK_K / LLM_QK));
	}
	return sum;
}

/* Plain C on a packed activation: its 8 blocks of super-block b back into struct llm_q8a. */
float
llm_kquant_dot_c(enum bx_llm_type type, const void *row, const uint8_t *act, size_t n)
{
	float sum = 0;

	for (size_t b = 0; b < n / QK_K; b++) {
		struct llm_q8a qa[QK_K / LLM_QK];

		for (size_t k = 0; k < QK_K / LLM_QK; k++) {
			size_t i = b * (QK_K / LLM_QK) + k;
			const uint8_t *g = act + i / LLM_ACT_GROUP * LLM_ACT_GROUP_BYTES;

			memcpy(qa[k].qs, g + i % LLM_ACT_GROUP * LLM_QK, LLM_QK);
			memcpy(&qa[k].d, g + LLM_ACT_GROUP * LLM_QK + i % LLM_ACT_GROUP * 4, 4);
			qa[k].s = 0;
			for (int j = 0; j < LLM_QK; j++) {
				qa[k].s += qa[k].qs[j];
			}
		}
		sum += sb_dot_ref(type, (const uint8_t *)row + b * blk_bytes(type), qa);
	}
	return sum;
}

#ifdef KQ_AVX512
#ifndef KQ_PREFETCH
#define KQ_PREFETCH 2048 /* bytes ahead into L2, as the Q4_0/Q8_0 kernel */
#endif
#define KQ_NA 4 /* activations a row meets at once */

/* Super-block s's activations: its group, its 256 qs, the group's 16 d, its 8 d. */
#define ACT_G(a, s)  ((a) + (s) / 2 * LLM_ACT_GROUP_BYTES)
#define ACT_QS(a, s) (ACT_G(a, s) + (s) % 2 * QK_K)
#define ACT_DG(a, s) ((const float *)(ACT_G(a, s) + LLM_ACT_GROUP * LLM_QK))
#define ACT_D(a, s)  (ACT_DG(a, s) + (s) % 2 * 8)

KQ_AVX512 static inline void
prefetch(const uint8_t *p, size_t bytes)
{
	for (size_t i = 0; KQ_PREFETCH && i < bytes; i += 64) {
		_mm_prefetch((const char *)p + KQ_PREFETCH + i, _MM_HINT_T1);
	}
}

/*
 * Q4_K scales times d: lanes 0-7 d sc_j, lanes 8-15 dmin m_j. The 12
 * bytes as 32-bit words u0 u1 u2 (scale_min_k4):
 *   sc 0-3 = u0 & 0x3f, sc 4-7 = (u2 & 0x0f) | (u0 >> 2 & 0x30),
 *   m 0-3 = u1 & 0x3f,  m 4-7 = (u2 >> 4 & 0x0f) | (u1 >> 2 & 0x30),
 * four lanes of one xmm (a scalar unpacking through memory stalled on
 * store forwarding and cost a third of the kernel).
 */
KQ_AVX512 static inline __m512
q4_k_scales(const struct blk_q4_k *x)
{
	const __m512i dd = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
	__m128i v = _mm_loadu_si128((const __m128i *)x->scales); /* 12 bytes and 4 of qs */
	__m128i lo = _mm_srlv_epi32(_mm_shuffle_epi32(v, _MM_SHUFFLE(2, 1, 2, 0)),
	                            _mm_set_epi32(4, 0, 0, 0));
	__m128i hi = _mm_srli_epi32(_mm_shuffle_epi32(v, _MM_SHUFFLE(1, 1, 0, 0)), 2);
	__m128i scm = _mm_or_si128(
		_mm_and_si128(lo, _mm_set_epi32(0x0f0f0f0f, 0x3f3f3f3f, 0x0f0f0f0f, 0x3f3f3f3f)),
		_mm_and_si128(hi, _mm_set_epi32(0x30303030, 0, 0x30303030, 0)));
	uint32_t dm;
	__m512 d;

	memcpy(&dm, x, 4);
	d = _mm512_permutexvar_ps(dd,
	                          _mm512_castps128_ps512(_mm_cvtph_ps(_mm_cvtsi32_si128((int)dm))));
	return _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(scm)), d);
}

/* The activation's da_j | da_j sum(qa_j) for super-block s's 8 blocks. */
KQ_AVX512 static inline __m512
q4_k_dadas(const uint8_t *a, size_t s)
{
	const float *da = ACT_D(a, s);

	return _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_load_ps(da)),
	                          _mm256_load_ps(da + LLM_ACT_GROUP), 1);
}

KQ_AVX512 static inline __m512
q4_k_pair(__m512i w, const uint8_t *aq, __m512 f, __m512i idx, __m512 acc)
{
	__m512i r = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w, _mm512_load_si512(aq));

	return _mm512_fmadd_ps(_mm512_cvtepi32_ps(r), _mm512_permutexvar_ps(idx, f), acc);
}

/*
 * Q4_K, one row against na activations (act_stride apart): each 32 bytes
 * of qs hold two sub-blocks (low nibbles, then high). Broadcast to both
 * halves of a zmm and masked with 0x0f | 0xf0, they line up with two
 * consecutive activation blocks, so one vpdpbusd gives int32 lanes 0-7
 * for sub-block 2j and lanes 8-15 for 16 x sub-block 2j+1 (the 1/16 goes
 * into the odd sub-blocks' factors), scaled by a permute of the
 * super-block's 8 factors. The row's unpacking is shared by the batch.
 */
KQ_AVX512 static inline __attribute__((always_inline)) void
q4_k_rows(const struct blk_q4_k *x, size_t nsb, const uint8_t *a, size_t as, unsigned na,
          float *out)
{
	const __m512 k16 = _mm512_set_ps(1, 1, 1, 1, 1, 1, 1, 1, 0.0625f, 1, 0.0625f, 1, 0.0625f, 1,
	                                 0.0625f, 1);
	const __m512i i0 = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
	const __m512i i1 = _mm512_set_epi32(3, 3, 3, 3, 3, 3, 3, 3, 2, 2, 2, 2, 2, 2, 2, 2);
	const __m512i i2 = _mm512_set_epi32(5, 5, 5, 5, 5, 5, 5, 5, 4, 4, 4, 4, 4, 4, 4, 4);
	const __m512i i3 = _mm512_set_epi32(7, 7, 7, 7, 7, 7, 7, 7, 6, 6, 6, 6, 6, 6, 6, 6);
	const __m512i mask = _mm512_inserti64x4(_mm512_set1_epi8(0x0f), _mm256_set1_epi8(-16), 1);
	__m512 acc[KQ_NA], acc1[KQ_NA], mins[KQ_NA];

	for (unsigned i = 0; i < na; i++) {
		acc[i] = acc1[i] = mins[i] = _mm512_setzero_ps();
	}
	for (size_t s = 0; s < nsb; s++, x++) {
		__m512 sd = q4_k_scales(x);
		__m512i w[4];

		prefetch((const uint8_t *)x, sizeof(*x));
		for (int j = 0; j < 4; j++) {
			w[j] = _mm512_and_si512(_mm512_broadcast_i64x4(_mm256_loadu_si256(
							(const __m256i *)(x->qs + 32 * j))),
			                        mask);
		}
		for (unsigned i = 0; i < na; i++) {
			const uint8_t *aq = ACT_QS(a + i * as, s);
			__m512 f = _mm512_mul_ps(sd, q4_k_dadas(a + i * as, s));

			mins[i] = _mm512_add_ps(mins[i], f);
			f = _mm512_mul_ps(f, k16);
			acc[i] = q4_k_pair(w[0], aq, f, i0, acc[i]);
			acc1[i] = q4_k_pair(w[1], aq + 64, f, i1, acc1[i]);
			acc[i] = q4_k_pair(w[2], aq + 128, f, i2, acc[i]);
			acc1[i] = q4_k_pair(w[3], aq + 192, f, i3, acc1[i]);
		}
	}
	for (unsigned i = 0; i < na; i++) {
		out[i] = _mm512_reduce_add_ps(_mm512_add_ps(acc[i], acc1[i])) -
		         _mm512_mask_reduce_add_ps((__mmask16)0xff00, mins[i]);
	}
}

/*
 * Q6_K: 64 bytes of ql and 32 of qh (broadcast to both halves) make the
 * 6-bit values of 64 + 64 activations with two shifts each; vpdpbusd of
 * u8 q against the activation, less vpdpbusd of 32 against it, is the
 * int32 sum of (q - 32) qa over 4 values, so lanes 4i..4i+3 belong to
 * sub-block i of the 64 and the two 16-value halves of an activation
 * block stay apart until scaled.
 */
KQ_AVX512 static inline void
q6_k_unpack(const uint8_t *ql, const uint8_t *qh, __m512i *qa, __m512i *qb)
{
	const __m512i m4 = _mm512_set1_epi8(15), m30 = _mm512_set1_epi8(0x30);
	const __m512i shl = _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(2), 1);
	const __m512i shr = _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(2), 1);
	__m512i l = _mm512_loadu_si512(ql);
	__m512i h = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)qh));

	*qa = _mm512_or_si512(_mm512_and_si512(l, m4),
	                      _mm512_and_si512(_mm512_sllv_epi16(h, shl), m30));
	*qb = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(l, 4), m4),
	                      _mm512_and_si512(_mm512_srlv_epi16(h, shr), m30));
}

KQ_AVX512 static inline __m512
q6_k_half(__m512i qa, __m512i qb, const uint8_t *aq, __m512 f, __m512i idx, __m512 acc)
{
	const __m512i c32 = _mm512_set1_epi8(32), four = _mm512_set1_epi32(4);
	__m512i a0 = _mm512_load_si512(aq), a1 = _mm512_load_si512(aq + 64);
	__m512i r0 = _mm512_sub_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), qa, a0),
	                              _mm512_dpbusd_epi32(_mm512_setzero_si512(), c32, a0));
	__m512i r1 = _mm512_sub_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), qb, a1),
	                              _mm512_dpbusd_epi32(_mm512_setzero_si512(), c32, a1));

	acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(r0), _mm512_permutexvar_ps(idx, f), acc);
	return _mm512_fmadd_ps(_mm512_cvtepi32_ps(r1),
	                       _mm512_permutexvar_ps(_mm512_add_epi32(idx, four), f), acc);
}

/* Q6_K, one row against na activations; the row's unpacking shared by the batch. */
KQ_AVX512 static inline __attribute__((always_inline)) void
q6_k_rows(const struct blk_q6_k *x, size_t nsb, const uint8_t *a, size_t as, unsigned na,
          float *out)
{
	const __m512i pair = _mm512_set_epi32(7, 7, 6, 6, 5, 5, 4, 4, 3, 3, 2, 2, 1, 1, 0, 0);
	const __m512i idx0 = _mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0);
	const __m512i idx1 = _mm512_add_epi32(idx0, _mm512_set1_epi32(8));
	__m512 acc[KQ_NA], acc1[KQ_NA];

	for (unsigned i = 0; i < na; i++) {
		acc[i] = acc1[i] = _mm512_setzero_ps();
	}
	for (size_t s = 0; s < nsb; s++, x++) {
		__m512 sc = _mm512_cvtepi32_ps(
			_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)x->scales)));
		__m512 sd = _mm512_mul_ps(sc, _mm512_set1_ps(_cvtsh_ss(x->d)));
		__m512i pi = _mm512_add_epi32(pair, _mm512_set1_epi32((int)(s % 2) * 8));
		__m512i qa0, qb0, qa1, qb1;

		prefetch((const uint8_t *)x, sizeof(*x));
		q6_k_unpack(x->ql, x->qh, &qa0, &qb0);
		q6_k_unpack(x->ql + 64, x->qh + 32, &qa1, &qb1);
		for (unsigned i = 0; i < na; i++) {
			/* f_k = d sc_k da_(k/2), k = 0..15 */
			__m512 f = _mm512_mul_ps(
				sd,
				_mm512_permutexvar_ps(pi, _mm512_load_ps(ACT_DG(a + i * as, s))));

			acc[i] = q6_k_half(qa0, qb0, ACT_QS(a + i * as, s), f, idx0, acc[i]);
			acc1[i] =
				q6_k_half(qa1, qb1, ACT_QS(a + i * as, s) + 128, f, idx1, acc1[i]);
		}
	}
	for (unsigned i = 0; i < na; i++) {
		out[i] = _mm512_reduce_add_ps(_mm512_add_ps(acc[i], acc1[i]));
	}
}

/*
 * One activation: the same arithmetic in the same order (so the same
 * bits), the loads left next to their use, which kept the weight stream
 * going better than the batch kernels' unpacking up front (a tenth to a
 * fifth faster from L3).
 */
KQ_AVX512 static float
dot_q4_k_avx(const struct blk_q4_k *x, const uint8_t *a, size_t nsb)
{
	const __m512 k16 = _mm512_set_ps(1, 1, 1, 1, 1, 1, 1, 1, 0.0625f, 1, 0.0625f, 1, 0.0625f, 1,
	                                 0.0625f, 1);
	const __m512i i0 = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
	const __m512i two = _mm512_set1_epi32(2);
	const __m512i mask = _mm512_inserti64x4(_mm512_set1_epi8(0x0f), _mm256_set1_epi8(-16), 1);
	__m512 acc = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps(), mins = _mm512_setzero_ps();

	for (size_t s = 0; s < nsb; s++, x++) {
		const uint8_t *aq = ACT_QS(a, s);
		__m512 f = _mm512_mul_ps(q4_k_scales(x), q4_k_dadas(a, s));
		__m512i idx = i0;

		prefetch((const uint8_t *)x, sizeof(*x));
		mins = _mm512_add_ps(mins, f);
		f = _mm512_mul_ps(f, k16);
		for (int j = 0; j < 4; j += 2) {
			__m512i w0 = _mm512_and_si512(_mm512_broadcast_i64x4(_mm256_loadu_si256(
							      (const __m256i *)(x->qs + 32 * j))),
			                              mask);
			__m512i w1 =
				_mm512_and_si512(_mm512_broadcast_i64x4(_mm256_loadu_si256(
							 (const __m256i *)(x->qs + 32 * j + 32))),
			                         mask);

			acc = q4_k_pair(w0, aq + 64 * j, f, idx, acc);
			idx = _mm512_add_epi32(idx, two);
			acc1 = q4_k_pair(w1, aq + 64 * j + 64, f, idx, acc1);
			idx = _mm512_add_epi32(idx, two);
		}
	}
	return _mm512_reduce_add_ps(_mm512_add_ps(acc, acc1)) -
	       _mm512_mask_reduce_add_ps((__mmask16)0xff00, mins);
}

KQ_AVX512 static float
dot_q6_k_avx(const struct blk_q6_k *x, const uint8_t *a, size_t nsb)
{
	const __m512i pair = _mm512_set_epi32(7, 7, 6, 6, 5, 5, 4, 4, 3, 3, 2, 2, 1, 1, 0, 0);
	const __m512i idx0 = _mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0);
	const __m512i idx1 = _mm512_add_epi32(idx0, _mm512_set1_epi32(8));
	__m512 acc = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();

	for (size_t s = 0; s < nsb; s++, x++) {
		__m512 da = _mm512_permutexvar_ps(
			_mm512_add_epi32(pair, _mm512_set1_epi32((int)(s % 2) * 8)),
			_mm512_load_ps(ACT_DG(a, s)));
		__m512 sc = _mm512_cvtepi32_ps(
			_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)x->scales)));
		__m512 f = _mm512_mul_ps(_mm512_mul_ps(sc, _mm512_set1_ps(_cvtsh_ss(x->d))), da);
		__m512i qa, qb;

		prefetch((const uint8_t *)x, sizeof(*x));
		q6_k_unpack(x->ql, x->qh, &qa, &qb);
		acc = q6_k_half(qa, qb, ACT_QS(a, s), f, idx0, acc);
		q6_k_unpack(x->ql + 64, x->qh + 32, &qa, &qb);
		acc1 = q6_k_half(qa, qb, ACT_QS(a, s) + 128, f, idx1, acc1);
	}
	return _mm512_reduce_add_ps(_mm512_add_ps(acc, acc1));
}

KQ_AVX512 static void
dot_n_avx(enum bx_llm_type type, const void *row, const uint8_t *a, size_t as, unsigned na,
          size_t nsb, float *out)
{
	/* one copy per batch size, the loops over it unrolled */
	switch (type == BX_LLM_Q4_K ? na : na + KQ_NA) {
	case 1:
		out[0] = dot_q4_k_avx(row, a, nsb);
		break;
	case 2:
		q4_k_rows(row, nsb, a, as, 2, out);
		break;
	case 3:
		q4_k_rows(row, nsb, a, as, 3, out);
		break;
	case 4:
		q4_k_rows(row, nsb, a, as, 4, out);
		break;
	case 5:
		out[0] = dot_q6_k_avx(row, a, nsb);
		break;
	case 6:
		q6_k_rows(row, nsb, a, as, 2, out);
		break;
	case 7:
		q6_k_rows(row, nsb, a, as, 3, out);
		break;
	default:
		q6_k_rows(row, nsb, a, as, 4, out);
		break;
	}
}
#endif

void
llm_kquant_dot_n(enum bx_llm_type type, const void *row, const uint8_t *act, size_t act_stride,
                 unsigned na, size_t n, float *out)
{
#ifdef KQ_AVX512
	if (llm_have_avx512()) {
		dot_n_avx(type, row, act, act_stride, na, n / QK_K, out);
		return;
	}
#endif
	for (unsigned i = 0; i < na; i++) {
		out[i] = llm_kquant_dot_c(type, row, act + i * act_stride, n);
	}
}

float
llm_kquant_dot(enum bx_llm_type type, const void *row, const uint8_t *act, size_t n)
{
	float out;

	llm_kquant_dot_n(type, row, act, 0, 1, n, &out);
	return out;
}
