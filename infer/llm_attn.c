/*
 * Attention of one query head over a sequence's KV cache, for the optimized
 * forward pass: softmax(q K^T / sqrt(hd)) V over positions 0..pos.
 *
 * The plain loops are scalar chains (a float sum cannot be reordered
 * without -ffast-math), 64 dependent FMAs a position at head_dim 64: at a
 * few hundred positions they took more time than the weights of a decode
 * step. The AVX-512 form does each position's dot product in a vector and
 * the softmax with a vector exp; the C form stays for other CPUs.
 */
#include <math.h>
#include <string.h>

#include "llm_int.h"

static void
attend_c(const float *q, const float *kc, const float *vc, size_t kvd, uint32_t hd, uint32_t n,
         float scale, float *out, float *att)
{
	float max = -INFINITY;
	double sum = 0;

	for (uint32_t t = 0; t < n; t++) {
		const float *kt = kc + (size_t)t * kvd;
		float s = 0;

		for (uint32_t i = 0; i < hd; i++) {
			s += q[i] * kt[i];
		}
		att[t] = s * scale;
		max = att[t] > max ? att[t] : max;
	}
	for (uint32_t t = 0; t < n; t++) {
		att[t] = expf(att[t] - max);
		sum += att[t];
	}
	memset(out, 0, hd * sizeof(*out));
	for (uint32_t t = 0; t < n; t++) {
		const float *vt = vc + (size_t)t * kvd;
		float a = (float)(att[t] / sum);

		for (uint32_t i = 0; i < hd; i++) {
			out[i] += a * vt[i];
		}
	}
}

#if defined(__x86_64__)
#include "simd_exp.h"

#define ATTN_AVX512 __attribute__((target("avx512f")))

ATTN_AVX512 static float
scores(const float *q, const float *kc, size_t kvd, uint32_t hd, uint32_t n, float scale,
       float *att)
{
	float max = -INFINITY;

	for (uint32_t t = 0; t < n; t++) {
		const float *kt = kc + (size_t)t * kvd;
		__m512 acc = _mm512_setzero_ps();

		for (uint32_t i = 0; i < hd; i += 16) {
			__mmask16 m = bx_tail16(hd, i);

			acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, q + i),
			                      _mm512_maskz_loadu_ps(m, kt + i), acc);
		}
		att[t] = _mm512_reduce_add_ps(acc) * scale;
		max = att[t] > max ? att[t] : max;
	}
	return max;
}

ATTN_AVX512 static void
attend_avx(const float *q, const float *kc, const float *vc, size_t kvd, uint32_t hd, uint32_t n,
           float scale, float *out, float *att)
{
	__m512 vm = _mm512_set1_ps(scores(q, kc, kvd, hd, n, scale, att));
	__m512 sum = _mm512_setzero_ps(), inv;

	for (uint32_t t = 0; t < n; t += 16) {
		__mmask16 m = bx_tail16(n, t);
		__m512 e = bx_exp_neg16(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, att + t), vm));

		sum = _mm512_mask_add_ps(sum, m, sum, e);
		_mm512_mask_storeu_ps(att + t, m, e);
	}
	inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(sum));
	for (uint32_t i = 0; i < hd; i += 16) {
		__mmask16 m = bx_tail16(hd, i);
		__m512 acc = _mm512_setzero_ps();

		for (uint32_t t = 0; t < n; t++) {
			acc = _mm512_fmadd_ps(_mm512_set1_ps(att[t]),
			                      _mm512_maskz_loadu_ps(m, vc + (size_t)t * kvd + i),
			                      acc);
		}
		_mm512_mask_storeu_ps(out + i, m, _mm512_mul_ps(acc, inv));
	}
}

static bool
have_avx512f(void)
{
	static int have = -1;

	if (have < 0) {
		__builtin_cpu_init();
		have = __builtin_cpu_supports("avx512f");
	}
	return have;
}
#endif

void
llm_attend_head(const struct bx_llm_config *c, const struct llm_kv *kv, uint32_t l, uint32_t pos,
                uint32_t h, const float *q, float *out, float *att)
{
	uint32_t hd = c->head_dim, kvd = hd * c->n_kv_heads;
	uint32_t off = (h / (c->n_heads / c->n_kv_heads)) * hd;
	const float *kc = kv->k + (size_t)l * kv->ctx_len * kvd + off;
	const float *vc = kv->v + (size_t)l * kv->ctx_len * kvd + off;
	float scale = 1.0f / sqrtf((float)hd);

#if defined(__x86_64__)
	if (have_avx512f()) {
		attend_avx(q, kc, vc, kvd, hd, pos + 1, scale, out, att);
		return;
	}
#endif
	attend_c(q, kc, vc, kvd, hd, pos + 1, scale, out, att);
}
