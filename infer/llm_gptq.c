/*
 * GPTQ (Frantar et al., "GPTQ: Accurate Post-Training Quantization for
 * Generative Pre-trained Transformers", 2022) for Q8_0, Q4_0 and Q4_1.
 *
 * Rounding each weight to its nearest level (what bx_llm_quantize does)
 * minimizes the weights' error; what matters is the error of the layer's
 * output, W x, over the inputs x the layer sees. With H = sum x x^T over
 * calibration tokens, GPTQ quantizes a row one column at a time and moves
 * each column's rounding error onto the columns not yet quantized, in the
 * proportions H^-1 gives, so they can absorb it. A block's scale is chosen
 * when its first column comes up, from the weights as they are by then.
 *
 * Calibration tokens are the model's own samples (temperature 1 from BOS,
 * seeded), run through the f32 reference path: no data set is needed, and
 * the inputs are the kind the model produces. The Hessians are float
 * (3 dim^2 + hidden^2 per layer), so this is for models up to a few hundred
 * million parameters; larger ones are refused with a message.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "llm_int.h"

#define CALIB_BYTES_MAX (2ull << 30)
#define DAMP            0.01 /* of the mean diagonal, added to H's diagonal */

struct llm_calib {
	uint32_t dim, hidden;
	size_t per_layer; /* floats: three dim x dim, one hidden x hidden */
	float *h;
	uint64_t tokens;
	/* the last factor of each input kind: Q/K/V share one, gate/up another */
	double *u[LLM_TAP_N];
	int64_t u_layer[LLM_TAP_N]; /* -1: none yet */
	int u_ret[LLM_TAP_N];
};

static float *
hessian(const struct llm_calib *c, uint32_t l, enum llm_tap which)
{
	float *h = c->h + (size_t)l * c->per_layer;

	return h + (size_t)which * c->dim * c->dim;
}

/* H += x x^T, upper triangle (mirrored when used). */
static void
tap(void *arg, uint32_t l, enum llm_tap which, const float *x, uint32_t n)
{
	float *h = hessian(arg, l, which);

	for (uint32_t i = 0; i < n; i++) {
		float xi = x[i], *hr = h + (size_t)i * n;

		for (uint32_t j = i; j < n; j++) {
			hr[j] += xi * x[j];
		}
	}
}

static uint64_t
rng_next(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* A token from softmax(logits) at temperature 1. */
static int32_t
sample(const float *l, uint32_t V, uint64_t *rng)
{
	double max = -INFINITY, sum = 0, u;

	for (uint32_t i = 0; i < V; i++) {
		max = fmax(max, l[i]);
	}
	for (uint32_t i = 0; i < V; i++) {
		sum += exp(l[i] - max);
	}
	u = (double)(rng_next(rng) >> 11) * 0x1p-53 * sum;
	for (uint32_t i = 0; i < V; i++) {
		u -= exp(l[i] - max);
		if (u <= 0) {
			return (int32_t)i;
		}
	}
	return (int32_t)(V - 1);
}

/* Run `tokens` self-sampled tokens through the reference with the taps on. */
static int
calib_sample(const struct bx_llm_model *m, struct llm_calib *c, unsigned tokens, uint64_t seed)
{
	const struct bx_llm_config *cfg = &m->cfg;
	uint32_t ctx = BX_MIN(cfg->seq_len, 256u), kvd = cfg->head_dim * cfg->n_kv_heads;
	size_t kvn = (size_t)cfg->n_layers * ctx * kvd;
	struct llm_kv kv = { .k = calloc(2 * kvn, sizeof(float)), .ctx_len = ctx };
	float *scratch = malloc((llm_ref_scratch_floats(cfg) + cfg->vocab_size) * sizeof(float));
	int32_t first = bx_llm_bos(m) >= 0 ? bx_llm_bos(m) : 1, tok = first;
	uint64_t rng = seed | 1;
	uint32_t pos = 0;

	if (!kv.k || !scratch) {
		free(kv.k);
		free(scratch);
		return -ENOMEM;
	}
	kv.v = kv.k + kvn;
	for (unsigned i = 0; i < tokens; i++) {
		float *logits = scratch + llm_ref_scratch_floats(cfg);

		llm_ref_forward_tap(m, &kv, tok, pos, scratch, logits, tap, c);
		tok = sample(logits, cfg->vocab_size, &rng);
		if (++pos == ctx || tok == bx_llm_eos(m)) {
			pos = 0;
			tok = first;
		}
	}
	c->tokens = tokens;
	free(kv.k);
	free(scratch);
	return 0;
}

int
llm_calib_run(const struct bx_llm_model *m, unsigned tokens, uint64_t seed, struct llm_calib **out,
              struct bx_errbuf *eb)
{
	const struct bx_llm_config *cfg = &m->cfg;
	struct llm_calib *c = calloc(1, sizeof(*c));
	size_t per = 3 * (size_t)cfg->dim * cfg->dim + (size_t)cfg->hidden_dim * cfg->hidden_dim;

	if (!c) {
		return bx_err(eb, ENOMEM, "calibration: out of memory");
	}
	if ((double)per * cfg->n_layers * sizeof(float) > (double)CALIB_BYTES_MAX) {
		free(c);
		return bx_err(eb, EFBIG,
		              "calibration: dim %u, hidden %u, %u layers need more than %u MiB "
		              "of statistics; quantize this model without calibration",
		              cfg->dim, cfg->hidden_dim, cfg->n_layers,
		              (unsigned)(CALIB_BYTES_MAX >> 20));
	}
	c->dim = cfg->dim;
	c->hidden = cfg->hidden_dim;
	for (unsigned i = 0; i < LLM_TAP_N; i++) {
		c->u_layer[i] = -1;
	}
	c->per_layer = per;
	c->h = calloc(per * cfg->n_layers, sizeof(float));
	if (!c->h || calib_sample(m, c, tokens, seed)) {
		llm_calib_free(c);
		return bx_err(eb, ENOMEM, "calibration: out of memory");
	}
	*out = c;
	return 0;
}

void
llm_calib_free(struct llm_calib *c)
{
	if (c) {
		for (unsigned i = 0; i < LLM_TAP_N; i++) {
			free(c->u[i]);
		}
		free(c->h);
		free(c);
	}
}

/* Lower Cholesky factor of a (n x n, lower triangle read) in place; -EDOM if not positive. */
static int
cholesky(double *a, uint32_t n)
{
	for (uint32_t j = 0; j < n; j++) {
		double s = a[(size_t)j * n + j];

		for (uint32_t k = 0; k < j; k++) {
			s -= a[(size_t)j * n + k] * a[(size_t)j * n + k];
		}
		if (!(s > 0)) {
			return -EDOM;
		}
		a[(size_t)j * n + j] = sqrt(s);
		for (uint32_t i = j + 1; i < n; i++) {
			double t = a[(size_t)i * n + j];

			for (uint32_t k = 0; k < j; k++) {
				t -= a[(size_t)i * n + k] * a[(size_t)j * n + k];
			}
			a[(size_t)i * n + j] = t / a[(size_t)j * n + j];
		}
	}
	return 0;
}

/* b = L^-1 (lower) of the lower factor in a. */
static void
tri_inverse(const double *a, double *b, uint32_t n)
{
	memset(b, 0, (size_t)n * n * sizeof(*b));
	for (uint32_t j = 0; j < n; j++) {
		b[(size_t)j * n + j] = 1 / a[(size_t)j * n + j];
		for (uint32_t i = j + 1; i < n; i++) {
			double s = 0;

			for (uint32_t k = j; k < i; k++) {
				s += a[(size_t)i * n + k] * b[(size_t)k * n + j];
			}
			b[(size_t)i * n + j] = -s / a[(size_t)i * n + i];
		}
	}
}

/*
 * u (n x n) = the upper Cholesky factor of (H + damp)^-1, from the upper
 * triangle h of H: H = L L^T, H^-1 = L^-T L^-1, then its own factor.
 * Columns the calibration never excited get H = 1 (their weights are free).
 */
static int
hinv_factor(const float *h, uint32_t n, double *u, double *tmp)
{
	double mean = 0;

	for (uint32_t i = 0; i < n; i++) {
		mean += h[(size_t)i * n + i] / n;
	}
	for (uint32_t i = 0; i < n; i++) {
		for (uint32_t j = 0; j <= i; j++) {
			u[(size_t)i * n + j] = h[(size_t)j * n + i];
		}
		u[(size_t)i * n + i] += u[(size_t)i * n + i] > 0 ? DAMP * mean : 1;
	}
	if (cholesky(u, n)) {
		return -EDOM;
	}
	tri_inverse(u, tmp, n);
	for (uint32_t i = 0; i < n; i++) { /* H^-1 = L^-T L^-1, lower triangle */
		for (uint32_t j = 0; j <= i; j++) {
			double s = 0;

			for (uint32_t k = i; k < n; k++) {
				s += tmp[(size_t)k * n + i] * tmp[(size_t)k * n + j];
			}
			u[(size_t)i * n + j] = s;
		}
	}
	if (cholesky(u, n)) {
		return -EDOM;
	}
	for (uint32_t i = 0; i < n; i++) { /* transpose: upper factor */
		for (uint32_t j = i + 1; j < n; j++) {
			u[(size_t)i * n + j] = u[(size_t)j * n + i];
			u[(size_t)j * n + i] = 0;
		}
	}
	return 0;
}

/* The block's scale (and min) as bx_llm_quantize picks them for x[32]. */
static void
block_params(enum bx_llm_type type, const double *w, uint8_t *blk, float *d, float *mn)
{
	float x[LLM_QK];
	uint16_t h;

	for (int j = 0; j < LLM_QK; j++) {
		x[j] = (float)w[j];
	}
	bx_llm_quantize(type, x, LLM_QK, blk);
	memcpy(&h, blk, 2);
	*d = llm_f16_to_f32(h);
	*mn = 0;
	if (type == BX_LLM_Q4_1) {
		memcpy(&h, blk + 2, 2);
		*mn = llm_f16_to_f32(h);
	}
}

/* Level of w in a block of (d, mn); its value back in *deq. */
static int
level(enum bx_llm_type type, double w, float d, float mn, double *deq)
{
	double id = d != 0 ? 1.0 / d : 0;
	int q;

	if (type == BX_LLM_Q8_0) {
		q = (int)fmin(fmax(round(w * id), -127), 127);
		*deq = (double)q * d;
	} else if (type == BX_LLM_Q4_0) {
		q = (int)fmin(fmax(round(w * id + 8), 0), 15);
		*deq = (double)(q - 8) * d;
	} else {
		q = (int)fmin(fmax(round((w - mn) * id), 0), 15);
		*deq = (double)q * d + mn;
	}
	return q;
}

static void
put_level(enum bx_llm_type type, uint8_t *blk, int j, int q)
{
	if (type == BX_LLM_Q8_0) {
		blk[2 + j] = (uint8_t)(int8_t)q;
		return;
	}
	blk += type == BX_LLM_Q4_1 ? 4 : 2;
	if (j < LLM_QK / 2) {
		blk[j] = (uint8_t)((blk[j] & 0xF0) | q);
	} else {
		blk[j - LLM_QK / 2] = (uint8_t)((blk[j - LLM_QK / 2] & 0x0F) | (q << 4));
	}
}

/* One row w[n] (modified) into blocks at out, against u. */
static void
gptq_row(enum bx_llm_type type, double *w, uint32_t n, const double *u, uint8_t *out)
{
	size_t bb = bx_llm_row_bytes(type, LLM_QK);
	float d = 0, mn = 0;

	for (uint32_t j = 0; j < n; j++) {
		uint8_t *blk = out + j / LLM_QK * bb;
		const double *uj = u + (size_t)j * n;
		double deq, e;

		if (j % LLM_QK == 0) {
			block_params(type, w + j, blk, &d, &mn);
		}
		put_level(type, blk, (int)(j % LLM_QK), level(type, w[j], d, mn, &deq));
		e = (w[j] - deq) / uj[j];
		for (uint32_t k = j + 1; k < n; k++) {
			w[k] -= e * uj[k];
		}
	}
}

/* Which Hessian t's input has, or -1. */
static int
tap_of(const struct bx_llm_model *m, const struct llm_tensor *t, uint32_t *layer)
{
	for (uint32_t l = 0; l < m->cfg.n_layers; l++) {
		const struct llm_layer *y = &m->layers[l];

		*layer = l;
		if (t == &y->wq || t == &y->wk || t == &y->wv) {
			return LLM_TAP_ATTN;
		}
		if (t == &y->wo) {
			return LLM_TAP_WO;
		}
		if (t == &y->w1 || t == &y->w3) {
			return LLM_TAP_FFN;
		}
		if (t == &y->w2) {
			return LLM_TAP_DOWN;
		}
	}
	return -1;
}

/* The factor for layer l's input `which` (n x n), made once per layer and kind; NULL: -errno in *ret. */
static const double *
factor(struct llm_calib *c, uint32_t l, enum llm_tap which, uint32_t n, int *ret)
{
	double *tmp;

	if (c->u_layer[which] == (int64_t)l) {
		*ret = c->u_ret[which];
		return *ret ? NULL : c->u[which];
	}
	if (!c->u[which]) {
		c->u[which] = malloc((size_t)n * n * sizeof(double));
	}
	tmp = malloc((size_t)n * n * sizeof(*tmp));
	*ret = c->u[which] && tmp ? hinv_factor(hessian(c, l, which), n, c->u[which], tmp) :
	                            -ENOMEM;
	free(tmp);
	c->u_layer[which] = *ret == -ENOMEM ? -1 : (int64_t)l;
	c->u_ret[which] = *ret;
	return *ret ? NULL : c->u[which];
}

int
llm_gptq(struct llm_calib *c, const struct bx_llm_model *m, const struct llm_tensor *t,
         enum bx_llm_type type, uint8_t *out)
{
	uint32_t l, n = t->cols;
	int which = tap_of(m, t, &l), ret = -ENOMEM;
	const double *u;
	double *w;
	float *row;

	if (which < 0 || n % LLM_QK ||
	    (type != BX_LLM_Q8_0 && type != BX_LLM_Q4_0 && type != BX_LLM_Q4_1)) {
		return -ENOENT;
	}
	u = factor(c, l, (enum llm_tap)which, n, &ret);
	w = malloc(n * sizeof(*w));
	row = malloc(n * sizeof(*row));
	if (u && (!w || !row)) {
		ret = -ENOMEM;
	}
	for (uint32_t r = 0; ret == 0 && r < t->rows; r++) {
		llm_row_f32(t, r, row);
		for (uint32_t j = 0; j < n; j++) {
			w[j] = row[j];
		}
		gptq_row(type, w, n, u, out + (size_t)r * bx_llm_row_bytes(type, n));
	}
	free(w);
	free(row);
	return ret;
}
