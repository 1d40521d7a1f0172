/*
 * Covers: the oneDNN path for prefill chunks and batched steps (llm_dnnl.c,
 * bx_llm_model_pack_dnnl). Its matmuls against a plain-C f32 matmul of the
 * dequantized weights, for every weight type and M = 1, 3, 4, 16, 17, 40,
 * on odd widths too (stories260K's hidden 172), within a bound derived from
 * the rounding each type does; batched decode steps through it give the
 * single-sequence path's tokens on fortune-1m (the .bin in F32 and a Q8_0
 * GGUF), free-running and teacher-forced (Q8_0 may differ only at the
 * kernels' own near-ties); prefill logits near the f32 reference's; 200 greedy steps on the
 * .bin keep test_llm_gen's tolerance; perplexity of held-aside text through
 * it next to the block kernels' in Q8_0 and Q4_0. Exits 77 when oneDNN has
 * no AMX/VNNI/BF16 brgemm kernel on this CPU. The matmul and batch tests
 * run 2 OpenMP threads; the whole-text ones 1, since on a shared machine
 * each of their hundreds of tiny parallel regions can wait for a preempted
 * peer.
 */
#include <errno.h>
#include <math.h>

#include "test_llm_util.h"

#define FORTUNE     "models/fortune-1m/model.bin"
#define FORTUNE_TOK "models/fortune-1m/tokenizer.bin"
#define STORIES     "models/llama2c/stories260K.bin"
#define MAX_M       40

static const unsigned ms[] = { 1, 3, 4, 16, 17, MAX_M };

static uint64_t rng = 88172645463325252ull;

static float
frand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (float)((double)(rng >> 11) / (double)(1ull << 53)) * 2 - 1;
}

static struct bx_llm_model *
convert(const struct bx_llm_model *src, enum bx_llm_type t)
{
	return llm_convert(src, t, NULL);
}

static void
pack(struct bx_llm_model *m)
{
	struct bx_errbuf eb;
	int ret = bx_llm_model_pack_dnnl(m, &eb);

	if (ret) {
		print_error("%s\n", eb.msg);
	}
	assert_int_equal(ret, 0);
	assert_int_equal(bx_llm_model_pack_dnnl(m, &eb), 0); /* a second call keeps them */
}

/*
 * Worst-case error of one output for the weights' class: f32 sums in
 * another order; bf16 rounds weights and activations (2^-9 each); int8
 * rounds weights to s_w / 2 (s_w = max|w| / 127 of the row) and activations
 * to s_a (s_a = range / 255 of the token, a full step where the top value
 * rounds past 255).
 */
static double
bound(enum bx_llm_type type, const float *w, const float *x, uint32_t k)
{
	double wmax = 0, lo = 0, hi = 0, sum = 0, sw, sa;

	for (uint32_t i = 0; i < k; i++) {
		wmax = fmax(wmax, fabs(w[i]));
		lo = fmin(lo, x[i]);
		hi = fmax(hi, x[i]);
		sum += fabs((double)w[i] * x[i]);
	}
	if (type == BX_LLM_F32) {
		return 1e-5 * sum + 1e-6;
	}
	if (type == BX_LLM_F16 || type == BX_LLM_BF16) {
		return 4.0e-3 * sum + 1e-6;
	}
	sw = wmax / 127;
	sa = (hi - lo) / 255;
	sum = 1e-5 * sum + 1e-6;
	for (uint32_t i = 0; i < k; i++) {
		sum += fabs(w[i]) * sa + (fabs(x[i]) + sa) * sw / 2;
	}
	return sum * 1.001;
}

/* The matrices ws[0..nw) (one input) at every M: each output within its bound. */
static void
check_group(struct llm_dnnl_ctx *dc, const struct llm_tensor *const *ws, unsigned nw, double *nmse)
{
	uint32_t k = ws[0]->cols;
	float *x = malloc((size_t)MAX_M * k * 4), *w = malloc((size_t)k * 4), *outs_b[3];
	double err2 = 0, ref2 = 0;

	for (unsigned i = 0; i < nw; i++) {
		outs_b[i] = malloc((size_t)MAX_M * ws[i]->rows * 4);
	}
	for (unsigned t = 0; t < BX_ARRAY_SIZE(ms); t++) {
		unsigned M = ms[t];

		for (size_t i = 0; i < (size_t)M * k; i++) {
			x[i] = frand() * (i % 97 == 0 ? 8 : 1); /* a few outliers per token */
		}
		assert_int_equal(llm_dnnl_matmul(dc, ws, outs_b, nw, x, M), 0);
		for (unsigned i = 0; i < nw; i++) {
			for (uint32_t r = 0; r < ws[i]->rows; r++) {
				llm_row_f32(ws[i], r, w);
				for (unsigned b = 0; b < M; b++) {
					const float *xb = x + (size_t)b * k;
					double ref = 0, d;

					for (uint32_t j = 0; j < k; j++) {
						ref += (double)w[j] * xb[j];
					}
					d = outs_b[i][(size_t)b * ws[i]->rows + r] - ref;
					err2 += d * d;
					ref2 += ref * ref;
					if (fabs(d) > bound(ws[i]->type, w, xb, k)) {
						fail_msg("%s %ux%u M=%u row %u token %u: %g vs %g",
						         bx_llm_type_name(ws[i]->type), ws[i]->rows,
						         k, M, r, b, ref + d, ref);
					}
				}
			}
		}
	}
	*nmse = fmax(*nmse, err2 / ref2);
	for (unsigned i = 0; i < nw; i++) {
		free(outs_b[i]);
	}
	free(x);
	free(w);
}

/* QKV, O, gate|up, down and the output layer of layer 0, as the forward groups them. */
static void
check_model(struct bx_llm_model *m, const char *what)
{
	const struct llm_layer *y = &m->layers[0];
	const struct llm_tensor *qkv[] = { &y->wq, &y->wk, &y->wv }, *gu[] = { &y->w1, &y->w3 };
	const struct llm_tensor *o = &y->wo, *d = &y->w2, *out = &m->out;
	struct llm_dnnl_ctx *dc;
	double nmse = 0;

	pack(m);
	/* 16 tokens at a time: M = 17 and 40 run in pieces */
	assert_int_equal(llm_dnnl_ctx_create(m, 16, 2, &dc), 0);
	check_group(dc, qkv, 3, &nmse);
	check_group(dc, &o, 1, &nmse);
	check_group(dc, gu, 2, &nmse);
	check_group(dc, &d, 1, &nmse);
	check_group(dc, &out, 1, &nmse);
	print_message("%-22s %-4s: worst NMSE %.2e; %ux%u at M=16 runs %s\n", what,
	              bx_llm_type_name(y->w2.type), nmse, y->w2.rows, y->w2.cols,
	              llm_dnnl_impl(dc, &y->w2, 16));
	/* a matrix on its own out of its group, or a group cut short: refused */
	assert_int_equal(llm_dnnl_matmul(dc, qkv + 1, NULL, 1, NULL, 1), -ENOTSUP);
	assert_int_equal(llm_dnnl_matmul(dc, qkv, NULL, 2, NULL, 1), -ENOTSUP);
	llm_dnnl_ctx_destroy(dc);
}

static void
test_matmul_synth(void **state)
{
	static const enum bx_llm_type types[] = { BX_LLM_F32, BX_LLM_Q8_0, BX_LLM_Q4_0,
		                                  BX_LLM_Q4_1 };
	/* hidden 160 and vocab 300: K and N that are not multiples of oneDNN's blocks */
	struct bx_llm_config cfg = { .dim = 64,
		                     .hidden_dim = 160,
		                     .n_layers = 1,
		                     .n_heads = 4,
		                     .n_kv_heads = 2,
		                     .vocab_size = 300,
		                     .seq_len = 64 };
	struct bx_errbuf eb;

	for (unsigned t = 0; t < BX_ARRAY_SIZE(types); t++) {
		struct bx_llm_model *m;

		assert_int_equal(bx_llm_synth(&cfg, types[t], 7, &m, &eb), 0);
		check_model(m, "synthetic");
		if (types[t] == BX_LLM_F32) {
			struct bx_llm_model *h = convert(m, BX_LLM_F16);
			struct bx_llm_model *b = convert(m, BX_LLM_BF16);

			check_model(h, "synthetic");
			check_model(b, "synthetic");
			bx_llm_model_destroy(h);
			bx_llm_model_destroy(b);
		}
		bx_llm_model_destroy(m);
	}
}

/* stories260K: dim 64, hidden 172 (no block type fits), in F32 and F16. */
static void
test_matmul_stories(void **state)
{
	struct bx_llm_model *m = llm_load_l2c(STORIES, NULL);
	struct bx_llm_model *h = convert(m, BX_LLM_F16);

	check_model(m, "stories260K");
	check_model(h, "stories260K");
	bx_llm_model_destroy(h);
	bx_llm_model_destroy(m);
}

/* K-quants (rows of 256): requantized from their dequantized rows like the other blocks. */
static void
test_matmul_kquant(void **state)
{
	struct bx_llm_config cfg = { .dim = 256,
		                     .hidden_dim = 512,
		                     .n_layers = 1,
		                     .n_heads = 4,
		                     .n_kv_heads = 2,
		                     .vocab_size = 300,
		                     .seq_len = 64 };
	struct bx_errbuf eb;
	struct bx_llm_model *m, *k4, *k6;

	assert_int_equal(bx_llm_synth(&cfg, BX_LLM_F32, 9, &m, &eb), 0);
	k4 = convert(m, BX_LLM_Q4_K);
	k6 = convert(m, BX_LLM_Q6_K);
	check_model(k4, "synthetic");
	check_model(k6, "synthetic");
	bx_llm_model_destroy(k4);
	bx_llm_model_destroy(k6);
	bx_llm_model_destroy(m);
}

/* ---- whole steps on fortune-1m ---- */

static const char *const prompts[] = { "Love", "The", "Money is", "Why" };

/*
 * 4 sequences stepped together (through oneDNN) against each alone on a
 * model without the copies (block kernels): the same greedy tokens. Returns
 * the fewest steps that matched before the first difference (or EOS).
 */
static unsigned
batch_vs_single(struct bx_llm_model *plain, struct bx_llm_model *m, unsigned steps)
{
	struct bx_llm_seq_conf sc = { .sample = { .top_p = 1, .repeat_penalty = 1 } };
	struct bx_llm_seq *seqs[4];
	struct bx_llm_event ev[4];
	struct bx_llm_ctx *ctx;
	int32_t ids[64], solo[4][64], got[4][64];
	unsigned worst = steps;

	assert_true(steps <= 64);
	assert_int_equal(bx_llm_ctx_create(m, 4, 2, false, &ctx), 0);
	for (unsigned i = 0; i < 4; i++) {
		size_t n = 0;

		assert_int_equal(
			bx_llm_tokenize(m, prompts[i], strlen(prompts[i]), true, ids, 64, &n), 0);
		llm_greedy(plain, false, ids, n, steps, solo[i], NULL, NULL, 0);
		assert_int_equal(bx_llm_seq_create(m, &sc, &seqs[i]), 0);
		assert_int_equal(bx_llm_seq_prefill(ctx, seqs[i], ids, n, &ev[i]), 0);
		got[i][0] = ev[i].id;
	}
	for (unsigned k = 1; k < steps; k++) {
		assert_int_equal(bx_llm_step(ctx, seqs, 4, ev), 0);
		for (unsigned i = 0; i < 4; i++) {
			got[i][k] = ev[i].id;
		}
	}
	for (unsigned i = 0; i < 4; i++) {
		unsigned same = 0;

		while (same < steps && solo[i][same] == got[i][same] &&
		       solo[i][same] != bx_llm_eos(m)) {
			same++;
		}
		same = same < steps && solo[i][same] == bx_llm_eos(m) ? steps : same;
		worst = BX_MIN(worst, same);
		bx_llm_seq_destroy(seqs[i]);
	}
	bx_llm_ctx_destroy(ctx);
	return worst;
}

static uint32_t
argmax(const float *l, uint32_t n, float *margin)
{
	uint32_t best = 0;
	float second = -INFINITY;

	for (uint32_t i = 1; i < n; i++) {
		if (l[i] > l[best]) {
			second = l[best];
			best = i;
		} else if (l[i] > second) {
			second = l[i];
		}
	}
	*margin = l[best] - second;
	return best;
}

/*
 * Teacher-forced: each prompt's tokens from the block kernels alone, fed
 * back as one 4-sequence batch through llm_fwd_run (oneDNN) with a KV cache
 * each; its top-1 at every step against the kernels'. A step may differ only
 * where the kernels' own top-2 margin is below `noise`. Returns the steps
 * that agreed, out of *total.
 */
static unsigned
forced_agree(const struct bx_llm_model *plain, const struct bx_llm_model *m, unsigned steps,
             float noise, unsigned *total)
{
	const struct bx_llm_config *c = bx_llm_model_config(m);
	size_t kvd = (size_t)c->head_dim * c->n_kv_heads * c->n_layers * c->seq_len, n[4];
	float *sl = malloc((size_t)4 * steps * c->vocab_size * 4),
	      *l = malloc((size_t)16 * c->vocab_size * 4);
	int32_t ids[4][16], solo[4][64], toks[16];
	struct llm_kv kv[4], *kvs[16];
	uint32_t pos[16];
	bool want[16];
	unsigned agree = 0;
	struct llm_fwd *f;

	assert_int_equal(llm_fwd_create(m, 16, 2, &f), 0);
	for (unsigned i = 0; i < 4; i++) {
		assert_int_equal(
			bx_llm_tokenize(m, prompts[i], strlen(prompts[i]), true, ids[i], 16, &n[i]),
			0);
		steps = BX_MIN(steps, llm_greedy(plain, false, ids[i], n[i], steps, solo[i],
		                                 sl + (size_t)i * steps * c->vocab_size, NULL, 0));
		kv[i] = (struct llm_kv){ .k = calloc(2 * kvd, 4), .ctx_len = c->seq_len };
		kv[i].v = kv[i].k + kvd;
		for (unsigned b = 0; b < n[i]; b++) {
			kvs[b] = &kv[i];
			pos[b] = b;
			want[b] = b + 1 == n[i];
		}
		llm_fwd_run(f, kvs, ids[i], pos, want, (unsigned)n[i],
		            l + (size_t)i * c->vocab_size);
	}
	for (unsigned k = 0; k < steps; k++) {
		for (unsigned i = 0; i < 4 && k > 0; i++) {
			kvs[i] = &kv[i];
			toks[i] = solo[i][k - 1];
			pos[i] = (uint32_t)(n[i] + k - 1);
			want[i] = true;
		}
		if (k > 0) {
			llm_fwd_run(f, kvs, toks, pos, want, 4, l);
		}
		for (unsigned i = 0; i < 4; i++) {
			float mg, dummy;

			argmax(sl + ((size_t)i * steps + k) * c->vocab_size, c->vocab_size, &mg);
			if ((int32_t)argmax(l + (size_t)i * c->vocab_size, c->vocab_size, &dummy) ==
			    solo[i][k]) {
				agree++;
			} else {
				print_message("step %u of \"%s\": kernels' margin %.3f\n", k,
				              prompts[i], mg);
				assert_true(mg < noise);
			}
		}
	}
	*total = 4 * steps;
	for (unsigned i = 0; i < 4; i++) {
		free(kv[i].k);
	}
	llm_fwd_destroy(f);
	free(sl);
	free(l);
	return agree;
}

static void
test_batch_f32(void **state)
{
	struct bx_llm_model *plain = llm_load_l2c(FORTUNE, FORTUNE_TOK);
	struct bx_llm_model *m = llm_load_l2c(FORTUNE, FORTUNE_TOK);
	unsigned same, agree, total;

	pack(m);
	same = batch_vs_single(plain, m, 40);
	agree = forced_agree(plain, m, 60, 0, &total);
	print_message("F32: 4 sequences through oneDNN = alone for %u of 40 steps; top-1 on the "
	              "same history at %u of %u steps\n",
	              same, agree, total);
	assert_int_equal(same, 40);
	assert_int_equal(agree, total);
	bx_llm_model_destroy(m);
	bx_llm_model_destroy(plain);
}

static void
test_batch_q8(void **state)
{
	struct bx_llm_model *bin = llm_load_l2c(FORTUNE, FORTUNE_TOK);
	struct bx_llm_model *plain = convert(bin, BX_LLM_Q8_0);
	struct bx_llm_model *m = convert(bin, BX_LLM_Q8_0);
	unsigned same, agree, total;

	pack(m);
	same = batch_vs_single(plain, m, 40);
	agree = forced_agree(plain, m, 60, 0.1f, &total);
	print_message("Q8_0: 4 sequences through oneDNN (int8 per row/token) = alone (Q8_0 "
	              "blocks) for %u of 40 free steps; top-1 on the same history at %u of %u "
	              "steps\n",
	              same, agree, total);
	assert_true(same >= 20);
	assert_true(agree * 100 >= total * 95);
	bx_llm_model_destroy(m);
	bx_llm_model_destroy(plain);
	bx_llm_model_destroy(bin);
}

static const char long_prompt[] = "A fool and his money are soon parted, but a wise man keeps "
				  "his purse closed and his mouth shut.";

/* Prefill of a 20+ token prompt in one chunk: the last logits against the reference's. */
static float
prefill_diff(const struct bx_llm_model *m)
{
	struct bx_llm_seq_conf sc = { .sample = { .top_p = 1, .repeat_penalty = 1 } };
	uint32_t V = bx_llm_model_config(m)->vocab_size;
	float *ref = malloc((size_t)V * 4), worst = 0;
	struct bx_llm_ctx *ctx;
	struct bx_llm_seq *s;
	struct bx_llm_event ev;
	int32_t ids[128], tok;
	size_t n = 0;

	assert_int_equal(bx_llm_tokenize(m, long_prompt, strlen(long_prompt), true, ids, 128, &n),
	                 0);
	assert_true(n >= 20 && n <= 64);
	llm_greedy(m, true, ids, n, 1, &tok, ref, NULL, 0);
	assert_int_equal(bx_llm_ctx_create(m, 64, 1, false, &ctx), 0);
	assert_int_equal(bx_llm_seq_create(m, &sc, &s), 0);
	assert_int_equal(bx_llm_seq_prefill(ctx, s, ids, n, &ev), 0);
	worst = llm_max_diff(ref, bx_llm_seq_logits(s), V);
	assert_int_equal(ev.id, tok);
	bx_llm_seq_destroy(s);
	bx_llm_ctx_destroy(ctx);
	free(ref);
	return worst;
}

static void
test_prefill_logits(void **state)
{
	struct bx_llm_model *bin = llm_load_l2c(FORTUNE, FORTUNE_TOK);
	struct bx_llm_model *q8 = convert(bin, BX_LLM_Q8_0), *q4 = convert(bin, BX_LLM_Q4_0);
	float d32, d8, k8, d4, k4;

	/* the block kernels first: activations in Q8_0 per 32 values */
	k8 = prefill_diff(q8);
	k4 = prefill_diff(q4);
	pack(bin);
	pack(q8);
	pack(q4);
	d32 = prefill_diff(bin);
	d8 = prefill_diff(q8);
	d4 = prefill_diff(q4);
	print_message("prefill through oneDNN, last logits vs the f32 reference of the same file: "
	              "F32 %.2e, Q8_0 %.3f (block kernels %.3f), Q4_0 %.3f (block kernels %.3f)\n",
	              d32, d8, k8, d4, k4);
	assert_true(d32 < 1e-4f);
	assert_true(d8 < 0.1f);
	assert_true(d4 < 0.1f);
	bx_llm_model_destroy(q4);
	bx_llm_model_destroy(q8);
	bx_llm_model_destroy(bin);
}

/* test_llm_gen's 200-step comparison, its prompt long enough for prefill chunks of 8. */
static void
test_greedy_200(void **state)
{
	struct bx_llm_model *m = llm_load_l2c(FORTUNE, FORTUNE_TOK);
	int32_t ids[128];
	size_t n = 0;

	pack(m);
	assert_int_equal(bx_llm_tokenize(m, long_prompt, strlen(long_prompt), true, ids, 128, &n),
	                 0);
	llm_compare_paths(m, ids, n, 200, 1e-3f);
	bx_llm_model_destroy(m);
}

/* ---- perplexity, teacher-forced in chunks of 16 through llm_fwd_run ---- */

static const char heldout[] =
	"The best way to learn something is to try it yourself and fail a few times. "
	"A good friend will tell you the truth, even when you do not want to hear it.\n"
	"Never put off until tomorrow what you can do today, unless it is work.\n"
	"Life is what happens to you while you are busy making other plans.";

static double
perplexity(const struct bx_llm_model *m)
{
	const struct bx_llm_config *c = bx_llm_model_config(m);
	size_t kvd = (size_t)c->head_dim * c->n_kv_heads, n = 0;
	struct llm_kv kv = { .ctx_len = c->seq_len };
	struct llm_kv *kvs[16];
	struct llm_fwd *f;
	int32_t ids[512];
	uint32_t pos[16];
	bool want[16];
	float *logits = malloc(16 * (size_t)c->vocab_size * 4);
	double nll = 0;

	assert_int_equal(bx_llm_tokenize(m, heldout, strlen(heldout), true, ids, 512, &n), 0);
	assert_true(n <= c->seq_len);
	kv.k = calloc(2 * (size_t)c->n_layers * c->seq_len * kvd, 4);
	kv.v = kv.k + (size_t)c->n_layers * c->seq_len * kvd;
	assert_int_equal(llm_fwd_create(m, 16, 1, &f), 0);
	for (size_t i0 = 0; i0 + 1 < n; i0 += 16) {
		unsigned nb = (unsigned)BX_MIN(16, n - 1 - i0);

		for (unsigned b = 0; b < nb; b++) {
			kvs[b] = &kv;
			pos[b] = (uint32_t)(i0 + b);
			want[b] = true;
		}
		llm_fwd_run(f, kvs, ids + i0, pos, want, nb, logits);
		for (unsigned b = 0; b < nb; b++) {
			const float *l = logits + (size_t)b * c->vocab_size;
			double max = -INFINITY, sum = 0;

			for (uint32_t k = 0; k < c->vocab_size; k++) {
				max = fmax(max, l[k]);
			}
			for (uint32_t k = 0; k < c->vocab_size; k++) {
				sum += exp(l[k] - max);
			}
			nll += -(l[ids[i0 + b + 1]] - max - log(sum));
		}
	}
	llm_fwd_destroy(f);
	free(kv.k);
	free(logits);
	return exp(nll / (double)(n - 1));
}

/*
 * The same model through the block kernels (dnnl_min_batch out of reach)
 * and through oneDNN: int8 per row and per token costs Q8_0 under 1 % and
 * Q4_0 under 2 % of perplexity.
 */
static void
test_perplexity(void **state)
{
	static const enum bx_llm_type types[] = { BX_LLM_F32, BX_LLM_Q8_0, BX_LLM_Q4_0 };
	struct bx_llm_model *bin = llm_load_l2c(FORTUNE, FORTUNE_TOK);

	for (unsigned t = 0; t < BX_ARRAY_SIZE(types); t++) {
		struct bx_llm_model *m = types[t] == BX_LLM_F32 ? bin : convert(bin, types[t]);
		double kernels, dnnl;

		kernels = perplexity(m);
		pack(m);
		dnnl = perplexity(m);
		m->dnnl_min_batch = UINT32_MAX;
		assert_true(fabs(perplexity(m) - kernels) < 1e-9);
		m->dnnl_min_batch = LLM_DNNL_MIN_BATCH;
		print_message("%-4s perplexity on held-aside text: block kernels %.4f, oneDNN %.4f "
		              "(%+.2f %%)\n",
		              bx_llm_type_name(types[t]), kernels, dnnl,
		              (dnnl / kernels - 1) * 100);
		assert_true(dnnl < kernels * (types[t] == BX_LLM_Q4_0 ? 1.02 : 1.01));
		if (m != bin) {
			bx_llm_model_destroy(m);
		}
	}
	bx_llm_model_destroy(bin);
}

/* The CPU can run the path: a tiny model packs, or the whole file is skipped. */
static void
require_kernels(void)
{
	struct bx_llm_config cfg = { .dim = 64,
		                     .hidden_dim = 128,
		                     .n_layers = 1,
		                     .n_heads = 2,
		                     .n_kv_heads = 2,
		                     .vocab_size = 260,
		                     .seq_len = 16 };
	struct bx_llm_model *m;
	struct bx_errbuf eb;
	int ret;

	if (bx_llm_synth(&cfg, BX_LLM_Q8_0, 1, &m, &eb)) {
		return; /* the tests will say what is wrong */
	}
	ret = bx_llm_model_pack_dnnl(m, &eb);
	bx_llm_model_destroy(m);
	if (ret == -ENOTSUP) {
		bx_test_skip(eb.msg);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_matmul_synth),  cmocka_unit_test(test_matmul_stories),
		cmocka_unit_test(test_matmul_kquant), cmocka_unit_test(test_batch_f32),
		cmocka_unit_test(test_batch_q8),      cmocka_unit_test(test_prefill_logits),
		cmocka_unit_test(test_greedy_200),    cmocka_unit_test(test_perplexity),
	};

	require_kernels();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
