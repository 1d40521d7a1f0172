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
 * They are read through dequantization (both forward paths see f32 rows);
 * the quantizers are plain (no search), for the converter and the tests.
 */
#include <math.h>
#include <string.h>

#include "llm_int.h"

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
