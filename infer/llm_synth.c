/*
 * Synthetic models of any Llama shape with seeded random weights, held in
 * memory: for benchmarks (a 1 B-parameter shape in Q4_0, Q8_0, Q4_K...) and for
 * the converter. Block types are filled with random quants directly (no
 * f32 detour), scaled so each matrix keeps activations near unit size.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "llm_int.h"

static uint64_t
xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* Random row data of t's type, entries of standard deviation about `std`. */
static void
fill(struct llm_tensor *t, uint8_t *dst, float std, uint64_t *rng)
{
	size_t rb = bx_llm_row_bytes(t->type, t->cols), n = (size_t)t->rows * rb;
	size_t nblk = n / (t->type == BX_LLM_Q8_0 ? 34 : t->type == BX_LLM_Q4_1 ? 20 : 18);

	t->data = dst;
	if (t->type == BX_LLM_F32) {
		float *f = (float *)dst;

		for (size_t i = 0; i < n / 4; i++) {
			f[i] = (float)((int64_t)(xorshift(rng) >> 40) - (1 << 23)) / (1 << 23) *
			       std * 1.732f;
		}
		return;
	}
	for (size_t i = 0; i + 8 <= n; i += 8) {
		uint64_t r = xorshift(rng);

		memcpy(dst + i, &r, 8);
	}
	if (t->type == BX_LLM_Q4_K || t->type == BX_LLM_Q6_K) {
		llm_kquant_synth_scales(t->type, dst, n, std);
		return;
	}
	for (size_t b = 0; b < nblk; b++) {
		uint16_t d, m;

		if (t->type == BX_LLM_Q8_0) {
			d = llm_f32_to_f16(std / 73.9f);
			memcpy(dst + b * 34, &d, 2);
		} else {
			d = llm_f32_to_f16(std / 4.6f);
			memcpy(dst + b * (t->type == BX_LLM_Q4_1 ? 20 : 18), &d, 2);
			if (t->type == BX_LLM_Q4_1) {
				m = llm_f32_to_f16(-7.5f * std / 4.6f);
				memcpy(dst + b * 20 + 2, &m, 2);
			}
		}
	}
}

static int
synth_vocab(struct llm_vocab *v, uint32_t n)
{
	size_t used = 0;
	char piece[16];
	int ret = llm_vocab_alloc(v, n, (size_t)n * 12);

	if (ret) {
		return ret;
	}
	for (uint32_t i = 0; i < n; i++) {
		int len, type = LLM_TOK_NORMAL;

		if (i < 3) {
			len = snprintf(piece, sizeof(piece), "%s",
			               i == 0 ? "<unk>" :
			               i == 1 ? "<s>" :
			                        "</s>");
			type = i ? LLM_TOK_CONTROL : LLM_TOK_UNKNOWN;
		} else if (i < 259) {
			len = snprintf(piece, sizeof(piece), "<0x%02X>", i - 3);
		} else {
			len = snprintf(piece, sizeof(piece), " w%u", i);
		}
		llm_vocab_set(v, i, piece, (size_t)len, -(float)i, type, &used);
	}
	v->unk = 0;
	v->bos = 1;
	v->eos = 2;
	return llm_vocab_index(v, "synthetic", NULL);
}

static uint64_t
layout(struct bx_llm_model *m, uint8_t *base)
{
	const struct bx_llm_config *c = &m->cfg;
	enum bx_llm_type type = m->embd.type;
	uint32_t D = c->dim, H = c->hidden_dim, KV = c->head_dim * c->n_kv_heads;
	uint64_t off = 0;

#define PLACE(t, r, k)                                                             \
	do {                                                                       \
		(t)->type = type;                                                  \
		(t)->rows = (r);                                                   \
		(t)->cols = (k);                                                   \
		(t)->data = base ? base + off : NULL;                              \
		off += ((uint64_t)(r)*bx_llm_row_bytes(type, (k)) + 63) / 64 * 64; \
	} while (0)
	PLACE(&m->embd, c->vocab_size, D);
	if (!c->tied) {
		PLACE(&m->out, c->vocab_size, D);
	}
	for (uint32_t l = 0; l < c->n_layers; l++) {
		struct llm_layer *y = &m->layers[l];

		PLACE(&y->wq, D, D);
		PLACE(&y->wk, KV, D);
		PLACE(&y->wv, KV, D);
		PLACE(&y->wo, D, D);
		PLACE(&y->w1, H, D);
		PLACE(&y->w3, H, D);
		PLACE(&y->w2, D, H);
	}
#undef PLACE
	return off;
}

static void
synth_fill(struct bx_llm_model *m, uint64_t seed)
{
	const struct bx_llm_config *c = &m->cfg;
	uint64_t rng = seed * 0x9e3779b97f4a7c15ull + 1;
	float sd = 1 / sqrtf((float)c->dim), sh = 1 / sqrtf((float)c->hidden_dim);

	fill(&m->embd, (uint8_t *)m->embd.data, 1.0f, &rng);
	if (c->tied) {
		m->out = m->embd;
	} else {
		fill(&m->out, (uint8_t *)m->out.data, sd, &rng);
	}
	for (uint32_t l = 0; l < c->n_layers; l++) {
		struct llm_layer *y = &m->layers[l];
		struct llm_tensor *d[] = { &y->wq, &y->wk, &y->wv, &y->wo, &y->w1, &y->w3 };

		for (unsigned i = 0; i < BX_ARRAY_SIZE(d); i++) {
			fill(d[i], (uint8_t *)d[i]->data, sd, &rng);
		}
		fill(&y->w2, (uint8_t *)y->w2.data, sh, &rng);
		y->attn_norm = m->norms + (2 * (size_t)l) * c->dim;
		y->ffn_norm = m->norms + (2 * (size_t)l + 1) * c->dim;
	}
	for (size_t i = 0; i < (2 * (size_t)c->n_layers + 1) * c->dim; i++) {
		m->norms[i] = 1;
	}
	m->out_norm = m->norms + 2 * (size_t)c->n_layers * c->dim;
}

int
bx_llm_synth(const struct bx_llm_config *cfg, enum bx_llm_type type, uint64_t seed,
             struct bx_llm_model **out, struct bx_errbuf *eb)
{
	struct bx_llm_model *m;
	uint64_t bytes;
	int ret;

	if (type != BX_LLM_F32 && type != BX_LLM_Q8_0 && type != BX_LLM_Q4_0 &&
	    type != BX_LLM_Q4_1 && type != BX_LLM_Q4_K && type != BX_LLM_Q6_K) {
		return bx_err(eb, EINVAL, "synthetic model: type %s not generated",
		              bx_llm_type_name(type));
	}
	ret = llm_model_alloc(&m);
	if (ret) {
		return bx_err(eb, ENOMEM, "synthetic model: out of memory");
	}
	m->cfg = *cfg;
	m->cfg.head_dim = cfg->n_heads ? cfg->dim / cfg->n_heads : 0;
	m->cfg.rope_base = cfg->rope_base > 0 ? cfg->rope_base : 10000;
	m->cfg.rms_eps = cfg->rms_eps > 0 ? cfg->rms_eps : 1e-5f;
	snprintf(m->origin, sizeof(m->origin), "synthetic");
	m->embd.type = type;
	if (llm_config_check(&m->cfg, "synthetic model", eb) || m->cfg.vocab_size < 259 ||
	    !bx_llm_row_bytes(type, m->cfg.dim) || !bx_llm_row_bytes(type, m->cfg.hidden_dim)) {
		ret = bx_err(eb, EINVAL, "synthetic model: bad shape, or %s rows do not fit it",
		             bx_llm_type_name(type));
		goto out_destroy;
	}
	m->layers = bx_calloc(m->cfg.n_layers, sizeof(*m->layers));
	m->norms = bx_malloc((2 * (size_t)m->cfg.n_layers + 1) * m->cfg.dim * sizeof(float));
	bytes = m->layers ? layout(m, NULL) : 0;
	m->blob = m->layers && m->norms ? bx_aligned_alloc(64, bytes) : NULL;
	if (m->blob) {
		llm_hugepages(m->blob, bytes);
	}
	if (!m->blob || synth_vocab(&m->vocab, m->cfg.vocab_size)) {
		ret = bx_err(eb, ENOMEM, "synthetic model: out of memory (%" PRIu64 " bytes)",
		             (uint64_t)bytes);
		goto out_destroy;
	}
	layout(m, m->blob);
	synth_fill(m, seed);
	ret = llm_model_finish(m, "synthetic model", eb);
	if (ret) {
		goto out_destroy;
	}
	*out = m;
	return 0;
out_destroy:
	bx_llm_model_destroy(m);
	return ret;
}
