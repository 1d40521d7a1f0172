/*
 * The optimized forward pass: a batch of tokens (decode steps of several
 * sequences, or a prefill chunk of one) goes through each linear layer
 * together, so the weights stream from memory once per step whatever the
 * batch. Block-quantized weights (Q8_0, Q4_0, Q4_1) meet activations
 * quantized to Q8_0 per block in AVX-512 VNNI dot products (llm_quant.c);
 * F32/F16/BF16 weights use f32 dot products. Rows are split across the
 * context's OpenMP threads; attention runs per (token, head).
 */
#include <errno.h>
#include <math.h>
#include <omp.h>
#include <string.h>

#include "llm_int.h"

#define ROWS_CHUNK 16

struct llm_fwd {
	const struct bx_llm_model *m;
	unsigned max_batch, nt;
	float *x, *xb, *xb2, *q, *k, *v; /* [max_batch][dim or kv_dim] */
	float *hb, *hb2;                 /* [max_batch][hidden] */
	float *att;                      /* [nt][seq_len] */
	uint8_t *act;                    /* [max_batch] packed activations */
	size_t act_bytes;
	uint16_t *xbf;             /* [max_batch][wide rounded up to 32] bf16 activations */
	struct llm_dnnl_ctx *dnnl; /* oneDNN matmuls when the model has its copies */
};

static bool
is_block(enum bx_llm_type t)
{
	return t == BX_LLM_Q8_0 || t == BX_LLM_Q4_0 || t == BX_LLM_Q4_1 || t == BX_LLM_Q4_K ||
	       t == BX_LLM_Q6_K;
}

int
llm_fwd_create(const struct bx_llm_model *m, unsigned max_batch, unsigned nb_threads,
               struct llm_fwd **out)
{
	const struct bx_llm_config *c = &m->cfg;
	size_t B = max_batch, D = c->dim, H = c->hidden_dim, wide = D > H ? D : H;
	struct llm_fwd *f = bx_calloc(1, sizeof(*f));

	if (!f) {
		return -ENOMEM;
	}
	f->m = m;
	f->max_batch = max_batch;
	f->nt = nb_threads ? nb_threads : 1;
	f->x = bx_aligned_alloc(64, (B * (6 * D + 2 * H) + f->nt * (size_t)c->seq_len) * 4 + 64);
	f->act_bytes = llm_act_bytes(wide);
	f->act = bx_aligned_alloc(64, B * f->act_bytes);
	f->xbf = bx_aligned_alloc(64, B * llm_bf16_cols(wide) * 2);
	if (!f->x || !f->act || !f->xbf ||
	    (m->dnnl && llm_dnnl_ctx_create(m, max_batch, f->nt, &f->dnnl))) {
		llm_fwd_destroy(f);
		return -ENOMEM;
	}
	f->xb = f->x + B * D;
	f->xb2 = f->xb + B * D;
	f->q = f->xb2 + B * D;
	f->k = f->q + B * D;
	f->v = f->k + B * D;
	f->hb = f->v + B * D;
	f->hb2 = f->hb + B * H;
	f->att = f->hb2 + B * H;
	*out = f;
	return 0;
}

void
llm_fwd_destroy(struct llm_fwd *f)
{
	if (!f) {
		return;
	}
	bx_free(f->x);
	bx_free(f->act);
	bx_free(f->xbf);
	llm_dnnl_ctx_destroy(f->dnnl);
	bx_free(f);
}

/*
 * outs[i][b][rows] = ws[i] x[b] for nb activations of the shared width, the
 * nw matrices (Q, K, V or gate, up) split into row chunks in one parallel
 * region, so a step forks and joins the thread team fewer times.
 */
static void
matmul_n(struct llm_fwd *f, const struct llm_tensor *const *ws, float *const *outs, unsigned nw,
         const float *x, unsigned nb)
{
	uint32_t cols = ws[0]->cols, start[4] = { 0 }, total;
	size_t ab = llm_act_bytes(cols), kp = llm_bf16_cols(cols);
	bool bf16 = nb >= LLM_BF16_MIN_BATCH, blocks = false;

	if (f->dnnl && nb >= f->m->dnnl_min_batch &&
	    llm_dnnl_matmul(f->dnnl, ws, outs, nw, x, nb) == 0) {
		return;
	}
	for (unsigned i = 0; i < nw; i++) {
		bf16 = bf16 && ws[i]->bf16;
		blocks = blocks || is_block(ws[i]->type);
		start[i + 1] = start[i] + (ws[i]->rows + ROWS_CHUNK - 1) / ROWS_CHUNK;
	}
	total = start[nw];
	for (unsigned b = 0; b < nb; b++) {
		if (bf16) {
			llm_to_bf16(x + (size_t)b * cols, cols, f->xbf + b * kp);
		} else if (blocks) {
			llm_pack_act(x + (size_t)b * cols, cols, f->act + b * ab);
		}
	}
#pragma omp parallel for num_threads(f->nt) schedule(static) if (f->nt > 1)
	for (uint32_t ch = 0; ch < total; ch++) {
		unsigned i = 0;
		uint32_t r0, r1;

		while (ch >= start[i + 1]) {
			i++;
		}
		r0 = (ch - start[i]) * ROWS_CHUNK;
		r1 = BX_MIN(r0 + ROWS_CHUNK, ws[i]->rows);
		if (bf16) {
			llm_matmul_bf16_rows(ws[i], r0, r1, f->xbf, nb, outs[i], ws[i]->rows);
		} else {
			llm_matmul_rows(ws[i], r0, r1, x, f->act, nb, outs[i], ws[i]->rows);
		}
	}
}

static void
matmul(struct llm_fwd *f, const struct llm_tensor *w, const float *x, unsigned nb, float *out)
{
	matmul_n(f, &w, &out, 1, x, nb);
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
attention(struct llm_fwd *f, struct llm_kv *const *kvs, const uint32_t *pos, unsigned nb,
          uint32_t l)
{
	const struct bx_llm_config *c = &f->m->cfg;
	uint32_t D = c->dim, kvd = c->head_dim * c->n_kv_heads, nh = c->n_heads;

	for (unsigned b = 0; b < nb; b++) {
		llm_rope(c, f->q + (size_t)b * D, nh, pos[b]);
		llm_rope(c, f->k + (size_t)b * kvd, c->n_kv_heads, pos[b]);
		memcpy(kvs[b]->k + ((size_t)l * kvs[b]->ctx_len + pos[b]) * kvd,
		       f->k + (size_t)b * kvd, (size_t)kvd * 4);
		memcpy(kvs[b]->v + ((size_t)l * kvs[b]->ctx_len + pos[b]) * kvd,
		       f->v + (size_t)b * kvd, (size_t)kvd * 4);
	}
#pragma omp parallel for num_threads(f->nt) schedule(static) if (f->nt > 1 && nb * nh >= 8)
	for (uint32_t i = 0; i < nb * nh; i++) {
		uint32_t b = i / nh, h = i % nh;
		float *att = f->att + (size_t)omp_get_thread_num() * c->seq_len;

		size_t o = (size_t)b * D + (size_t)h * c->head_dim;

		llm_attend_head(c, kvs[b], l, pos[b], h, f->q + o, f->xb + o, att);
	}
}

static void
layer(struct llm_fwd *f, struct llm_kv *const *kvs, const uint32_t *pos, unsigned nb, uint32_t l)
{
	const struct bx_llm_config *c = &f->m->cfg;
	const struct llm_layer *y = &f->m->layers[l];
	size_t D = c->dim, H = c->hidden_dim;

	for (unsigned b = 0; b < nb; b++) {
		rmsnorm(f->xb + b * D, f->x + b * D, y->attn_norm, c->dim, c->rms_eps);
	}
	{
		const struct llm_tensor *qkv[] = { &y->wq, &y->wk, &y->wv };
		float *outs[] = { f->q, f->k, f->v };

		matmul_n(f, qkv, outs, 3, f->xb, nb);
	}
	attention(f, kvs, pos, nb, l);
	matmul(f, &y->wo, f->xb, nb, f->xb2);
	for (size_t i = 0; i < nb * D; i++) {
		f->x[i] += f->xb2[i];
	}
	for (unsigned b = 0; b < nb; b++) {
		rmsnorm(f->xb + b * D, f->x + b * D, y->ffn_norm, c->dim, c->rms_eps);
	}
	{
		const struct llm_tensor *gu[] = { &y->w1, &y->w3 };
		float *outs[] = { f->hb, f->hb2 };

		matmul_n(f, gu, outs, 2, f->xb, nb);
	}
	/* SwiGLU: 8 ns a value (expf), worth both threads on a step of several tokens */
#pragma omp parallel for num_threads(f->nt) schedule(static) if (f->nt > 1 && nb >= 4)
	for (size_t i = 0; i < nb * H; i++) {
		f->hb[i] = f->hb[i] / (1.0f + expf(-f->hb[i])) * f->hb2[i];
	}
	matmul(f, &y->w2, f->hb, nb, f->xb2);
	for (size_t i = 0; i < nb * D; i++) {
		f->x[i] += f->xb2[i];
	}
}

void
llm_fwd_run(struct llm_fwd *f, struct llm_kv *const *kvs, const int32_t *toks, const uint32_t *pos,
            const bool *want, unsigned nb, float *logits)
{
	const struct bx_llm_model *m = f->m;
	size_t D = m->cfg.dim;
	unsigned nw = 0;

	for (unsigned b = 0; b < nb; b++) {
		llm_row_f32(&m->embd, (uint32_t)toks[b], f->x + b * D);
	}
	for (uint32_t l = 0; l < m->cfg.n_layers; l++) {
		layer(f, kvs, pos, nb, l);
	}
	for (unsigned b = 0; b < nb; b++) {
		if (want[b]) {
			rmsnorm(f->xb + nw * D, f->x + b * D, m->out_norm, m->cfg.dim,
			        m->cfg.rms_eps);
			nw++;
		}
	}
	if (nw) {
		matmul(f, &m->out, f->xb, nw, logits);
	}
}
