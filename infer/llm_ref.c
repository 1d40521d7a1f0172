/*
 * The plain-C f32 reference forward pass of a Llama decoder, one token at a
 * time, written to be read in one sitting (after llama2.c run.c):
 *
 *   x = embd[tok]
 *   per layer:  n = RMSNorm(x) * g_attn
 *               q, k, v = Wq n, Wk n, Wv n;  RoPE(q, k) at pos
 *               head h attends with KV head h / (n_heads / n_kv_heads):
 *               c_h = softmax(q_h K^T / sqrt(hd)) V
 *               x += Wo c
 *               n = RMSNorm(x) * g_ffn
 *               x += W2 (silu(W1 n) * (W3 n))
 *   logits = Wout (RMSNorm(x) * g_out)
 *
 * Quantized weights are dequantized a row at a time; dot products
 * accumulate in double. It is the yardstick for the optimized path.
 */
#include <math.h>
#include <string.h>

#include "llm_int.h"

void
llm_rope(const struct bx_llm_config *c, float *v, uint32_t nb_heads, uint32_t pos)
{
	uint32_t hd = c->head_dim;

	for (uint32_t i = 0; i < hd / 2; i++) {
		double theta = pos * pow(c->rope_base, -2.0 * i / hd);
		float co = (float)cos(theta), si = (float)sin(theta);
		uint32_t a = c->rope == BX_LLM_ROPE_NORM ? 2 * i : i;
		uint32_t b = c->rope == BX_LLM_ROPE_NORM ? 2 * i + 1 : i + hd / 2;

		for (uint32_t h = 0; h < nb_heads; h++) {
			float *x = v + (size_t)h * hd, x0 = x[a], x1 = x[b];

			x[a] = x0 * co - x1 * si;
			x[b] = x0 * si + x1 * co;
		}
	}
}

static void
rmsnorm(float *out, const float *x, const float *g, uint32_t n, float eps)
{
	double ss = 0;
	float inv;

	for (uint32_t i = 0; i < n; i++) {
		ss += (double)x[i] * x[i];
	}
	inv = (float)(1.0 / sqrt(ss / n + eps));
	for (uint32_t i = 0; i < n; i++) {
		out[i] = x[i] * inv * g[i];
	}
}

static void
matvec(float *out, const struct llm_tensor *w, const float *x, float *row)
{
	for (uint32_t r = 0; r < w->rows; r++) {
		double s = 0;

		llm_row_f32(w, r, row);
		for (uint32_t j = 0; j < w->cols; j++) {
			s += (double)row[j] * x[j];
		}
		out[r] = (float)s;
	}
}

size_t
llm_ref_scratch_floats(const struct bx_llm_config *c)
{
	return 5 * (size_t)c->dim + 3 * (size_t)c->hidden_dim + c->seq_len;
}

static void
attention(const struct bx_llm_config *c, const struct llm_kv *kv, uint32_t l, uint32_t pos,
          const float *q, float *out, float *att)
{
	uint32_t hd = c->head_dim, kvd = hd * c->n_kv_heads, grp = c->n_heads / c->n_kv_heads;
	const float *kc = kv->k + (size_t)l * kv->ctx_len * kvd;
	const float *vc = kv->v + (size_t)l * kv->ctx_len * kvd;

	for (uint32_t h = 0; h < c->n_heads; h++) {
		const float *qh = q + (size_t)h * hd;
		uint32_t off = (h / grp) * hd;
		double max = -INFINITY, sum = 0;

		for (uint32_t t = 0; t <= pos; t++) {
			double s = 0;

			for (uint32_t i = 0; i < hd; i++) {
				s += (double)qh[i] * kc[(size_t)t * kvd + off + i];
			}
			att[t] = (float)(s / sqrt(hd));
			max = att[t] > max ? att[t] : max;
		}
		for (uint32_t t = 0; t <= pos; t++) {
			att[t] = (float)exp(att[t] - max);
			sum += att[t];
		}
		for (uint32_t i = 0; i < hd; i++) {
			double s = 0;

			for (uint32_t t = 0; t <= pos; t++) {
				s += (double)att[t] * vc[(size_t)t * kvd + off + i];
			}
			out[(size_t)h * hd + i] = (float)(s / sum);
		}
	}
}

void
llm_ref_forward(const struct bx_llm_model *m, struct llm_kv *kv, int32_t tok, uint32_t pos,
                float *scratch, float *logits)
{
	llm_ref_forward_tap(m, kv, tok, pos, scratch, logits, NULL, NULL);
}

void
llm_ref_forward_tap(const struct bx_llm_model *m, struct llm_kv *kv, int32_t tok, uint32_t pos,
                    float *scratch, float *logits, llm_tap_fn *tap, void *arg)
{
	const struct bx_llm_config *c = &m->cfg;
	uint32_t D = c->dim, H = c->hidden_dim, kvd = c->head_dim * c->n_kv_heads;
	float *x = scratch, *xb = x + D, *xb2 = xb + D, *q = xb2 + D, *row = q + D;
	float *hb = row + D + H, *hb2 = hb + H, *att = hb2 + H;

	llm_row_f32(&m->embd, (uint32_t)tok, x);
	for (uint32_t l = 0; l < c->n_layers; l++) {
		const struct llm_layer *y = &m->layers[l];
		float *kr = kv->k + ((size_t)l * kv->ctx_len + pos) * kvd;
		float *vr = kv->v + ((size_t)l * kv->ctx_len + pos) * kvd;

		rmsnorm(xb, x, y->attn_norm, D, c->rms_eps);
		if (tap) {
			tap(arg, l, LLM_TAP_ATTN, xb, D);
		}
		matvec(q, &y->wq, xb, row);
		matvec(kr, &y->wk, xb, row);
		matvec(vr, &y->wv, xb, row);
		llm_rope(c, q, c->n_heads, pos);
		llm_rope(c, kr, c->n_kv_heads, pos);
		attention(c, kv, l, pos, q, xb, att);
		if (tap) {
			tap(arg, l, LLM_TAP_WO, xb, D);
		}
		matvec(xb2, &y->wo, xb, row);
		for (uint32_t i = 0; i < D; i++) {
			x[i] += xb2[i];
		}
		rmsnorm(xb, x, y->ffn_norm, D, c->rms_eps);
		if (tap) {
			tap(arg, l, LLM_TAP_FFN, xb, D);
		}
		matvec(hb, &y->w1, xb, row);
		matvec(hb2, &y->w3, xb, row);
		for (uint32_t i = 0; i < H; i++) {
			hb[i] = hb[i] / (1.0f + expf(-hb[i])) * hb2[i];
		}
		if (tap) {
			tap(arg, l, LLM_TAP_DOWN, hb, H);
		}
		matvec(xb2, &y->w2, hb, row);
		for (uint32_t i = 0; i < D; i++) {
			x[i] += xb2[i];
		}
	}
	rmsnorm(xb, x, m->out_norm, D, c->rms_eps);
	matvec(logits, &m->out, xb, row);
}
