/*
 * exp(x) for x <= 0 on 16 floats (AVX-512F), shared by the embedding
 * softmax and the generation attention. Include after <immintrin.h>, on
 * x86-64 only.
 */
#ifndef BX_SIMD_EXP_H
#define BX_SIMD_EXP_H

#include <immintrin.h>

/*
 * Clamped at -87: x = k ln2 + f with |f| <= ln2 / 2, exp(f) by its degree-7
 * Taylor polynomial (relative error < 3e-7), times 2^k.
 */
__attribute__((target("avx512f"))) static inline __m512
bx_exp_neg16(__m512 x)
{
	__m512 k, f, p;

	x = _mm512_max_ps(x, _mm512_set1_ps(-87.0f));
	k = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504f)),
	                         _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
	f = _mm512_fnmadd_ps(k, _mm512_set1_ps(0.693145752f), x); /* ln2 in two parts */
	f = _mm512_fnmadd_ps(k, _mm512_set1_ps(1.42860677e-6f), f);
	p = _mm512_set1_ps(1.0f / 5040);
	p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f / 720));
	p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f / 120));
	p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f / 24));
	p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f / 6));
	p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(0.5f));
	p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f));
	p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f));
	return _mm512_scalef_ps(p, k);
}

/* Lanes [0, n - i) of the 16 at i, for a loop over n. */
static inline __mmask16
bx_tail16(unsigned n, unsigned i)
{
	return n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
}

#endif
