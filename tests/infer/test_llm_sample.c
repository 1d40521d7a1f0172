/*
 * Covers: sampling (greedy, temperature, top-k, top-p, repetition penalty,
 * seeds), stop strings and max tokens with streamed text, context limits,
 * API misuse, and every allocation failure of the create functions; on
 * fortune-1m.
 */
#include <errno.h>
#include <math.h>

#include "test_llm_util.h"

#define FORTUNE     "models/fortune-1m/model.bin"
#define FORTUNE_TOK "models/fortune-1m/tokenizer.bin"

static struct bx_llm_model *m;
static struct bx_llm_ctx *ctx;
static int32_t love[16];
static size_t nlove;

static int
setup(void **state)
{
	m = llm_load_l2c(FORTUNE, FORTUNE_TOK);
	assert_int_equal(bx_llm_tokenize(m, "Love", 4, true, love, 16, &nlove), 0);
	return bx_llm_ctx_create(m, 4, 1, false, &ctx);
}

static int
teardown(void **state)
{
	bx_llm_ctx_destroy(ctx);
	bx_llm_model_destroy(m);
	return 0;
}

/* Run sequence s from "Love" to its end or n tokens; ids and text out; returns the count. */
static unsigned
run_on(struct bx_llm_seq *s, unsigned n, int32_t *ids, char *text, size_t cap,
       enum bx_llm_stop *why)
{
	struct bx_llm_event ev;
	size_t tl = 0;
	unsigned k = 0;

	assert_int_equal(bx_llm_seq_prefill(ctx, s, love, nlove, &ev), 0);
	for (;;) {
		ids[k++] = ev.id;
		if (text) {
			assert_true(tl + ev.len < cap);
			memcpy(text + tl, ev.text, ev.len);
			tl += ev.len;
		}
		if (ev.stop != BX_LLM_RUNNING || k == n) {
			break;
		}
		assert_int_equal(bx_llm_step(ctx, &s, 1, &ev), 0);
	}
	if (text) {
		text[tl] = 0;
	}
	if (why) {
		*why = ev.stop;
	}
	return k;
}

/* The same on a new sequence for sc. */
static unsigned
run(const struct bx_llm_seq_conf *sc, unsigned n, int32_t *ids, char *text, size_t cap,
    enum bx_llm_stop *why)
{
	struct bx_llm_seq *s;
	unsigned k;

	assert_int_equal(bx_llm_seq_create(m, sc, &s), 0);
	k = run_on(s, n, ids, text, cap, why);
	bx_llm_seq_destroy(s);
	return k;
}

/*
 * A reset sequence (a pooled KV cache) behaves as a new one: sampled with a
 * seed and a stop string, then greedy, then the first conf again, each equal
 * to a fresh sequence's run. A longer context than it was made for, or a bad
 * conf, is refused.
 */
static void
test_seq_reset(void **state)
{
	static const char *const stops[] = { "." };
	struct bx_llm_seq_conf a = { .sample = { .temperature = 0.9f,
		                                 .top_p = 0.95f,
		                                 .repeat_penalty = 1.1f,
		                                 .seed = 77 },
		                     .stops = stops,
		                     .nb_stops = 1,
		                     .ctx_len = 128 };
	struct bx_llm_seq_conf b = { .sample = { .top_p = 1, .repeat_penalty = 1 },
		                     .max_tokens = 25,
		                     .ctx_len = 64 };
	struct bx_llm_seq_conf bad = b;
	int32_t want[3][80], got[80];
	char wt[3][1024], gt[1024];
	unsigned nw[3], ng;
	struct bx_llm_seq *s;

	nw[0] = run(&a, 80, want[0], wt[0], sizeof(wt[0]), NULL);
	nw[1] = run(&b, 80, want[1], wt[1], sizeof(wt[1]), NULL);
	assert_int_equal(bx_llm_seq_create(m, &a, &s), 0);
	for (unsigned i = 0; i < 3; i++) {
		assert_int_equal(bx_llm_seq_reset(s, i == 1 ? &b : &a), 0);
		ng = run_on(s, 80, got, gt, sizeof(gt), NULL);
		assert_int_equal(ng, nw[i == 1]);
		assert_memory_equal(got, want[i == 1], ng * sizeof(*got));
		assert_string_equal(gt, wt[i == 1]);
	}
	bad.ctx_len = 256;
	assert_int_equal(bx_llm_seq_reset(s, &bad), -ENOSPC);
	bad.ctx_len = 64;
	bad.sample.top_p = 0;
	assert_int_equal(bx_llm_seq_reset(s, &bad), -EINVAL);
	bx_llm_seq_destroy(s);
}

static void
test_seed_determinism(void **state)
{
	struct bx_llm_seq_conf sc = {
		.sample = { .temperature = 0.9f,
		            .top_k = 40,
		            .top_p = 0.95f,
		            .repeat_penalty = 1,
		            .seed = 1234 },
	};
	int32_t a[60], b[60], c[60];
	unsigned na = run(&sc, 60, a, NULL, 0, NULL), nb = run(&sc, 60, b, NULL, 0, NULL), nc;

	assert_int_equal(na, nb);
	assert_memory_equal(a, b, na * sizeof(*a));
	sc.sample.seed = 99;
	nc = run(&sc, 60, c, NULL, 0, NULL);
	assert_true(nc != na || memcmp(a, c, na * sizeof(*a)) != 0);
}

/* top_k = 1 and a vanishing temperature are greedy. */
static void
test_greedy_limits(void **state)
{
	struct bx_llm_seq_conf sc = { .sample = { .top_p = 1, .repeat_penalty = 1 } };
	int32_t g[40], k1[40], t0[40];
	unsigned n = run(&sc, 40, g, NULL, 0, NULL);

	sc.sample.temperature = 1;
	sc.sample.top_k = 1;
	sc.sample.seed = 5;
	assert_int_equal(run(&sc, 40, k1, NULL, 0, NULL), n);
	assert_memory_equal(g, k1, n * sizeof(*g));
	sc.sample.top_k = 0;
	sc.sample.temperature = 1e-4f;
	assert_int_equal(run(&sc, 40, t0, NULL, 0, NULL), n);
	assert_memory_equal(g, t0, n * sizeof(*g));
}

/* Every drawn token lies inside the top-k set and the top-p nucleus of its logits. */
static void
test_topk_topp_sets(void **state)
{
	struct bx_llm_seq_conf sc = {
		.sample = { .temperature = 1.5f,
		            .top_k = 5,
		            .top_p = 0.6f,
		            .repeat_penalty = 1,
		            .seed = 7 },
	};
	uint32_t V = bx_llm_model_config(m)->vocab_size;
	struct bx_llm_seq *s;
	struct bx_llm_event ev;
	unsigned distinct_ranks = 0;

	assert_int_equal(bx_llm_seq_create(m, &sc, &s), 0);
	assert_int_equal(bx_llm_seq_prefill(ctx, s, love, nlove, &ev), 0);
	for (unsigned k = 0; k < 80 && ev.stop == BX_LLM_RUNNING; k++) {
		const float *l = bx_llm_seq_logits(s);
		unsigned rank = 0;
		double above = 0, total = 0, max = -INFINITY;

		for (uint32_t i = 0; i < V; i++) {
			max = fmax(max, l[i]);
		}
		for (uint32_t i = 0; i < V; i++) {
			double p = exp((l[i] - max) / 1.5);

			total += p;
			if (l[i] > l[ev.id]) {
				rank++;
				above += p;
			}
		}
		assert_true(rank < 5);
		/* the mass strictly above the drawn token is below top_p */
		assert_true(above < 0.6 * total + 1e-9);
		distinct_ranks |= 1u << rank;
		assert_int_equal(bx_llm_step(ctx, &s, 1, &ev), 0);
	}
	assert_true(distinct_ranks & ~1u); /* not just greedy */
	bx_llm_seq_destroy(s);
}

/* Greedy with a repetition penalty picks the argmax of the penalized logits. */
static void
test_repeat_penalty(void **state)
{
	struct bx_llm_seq_conf sc = {
		.sample = { .top_p = 1, .repeat_penalty = 1.3f, .repeat_last_n = 64 },
	};
	uint32_t V = bx_llm_model_config(m)->vocab_size;
	int32_t hist[256];
	unsigned nh = 0, changed = 0;
	struct bx_llm_seq *s;
	struct bx_llm_event ev;
	float *l = malloc(V * sizeof(float));

	for (size_t i = 0; i < nlove; i++) {
		hist[nh++] = love[i];
	}
	assert_int_equal(bx_llm_seq_create(m, &sc, &s), 0);
	assert_int_equal(bx_llm_seq_prefill(ctx, s, love, nlove, &ev), 0);
	for (unsigned k = 0; k < 60 && ev.stop == BX_LLM_RUNNING; k++) {
		int32_t best = 0, raw = 0;

		memcpy(l, bx_llm_seq_logits(s), V * sizeof(float));
		for (uint32_t i = 1; i < V; i++) {
			raw = l[i] > l[raw] ? (int32_t)i : raw;
		}
		for (uint32_t i = 0; i < V; i++) {
			for (unsigned j = nh > 64 ? nh - 64 : 0; j < nh; j++) {
				if (hist[j] == (int32_t)i) {
					l[i] = l[i] > 0 ? l[i] / 1.3f : l[i] * 1.3f;
					break;
				}
			}
		}
		for (uint32_t i = 1; i < V; i++) {
			best = l[i] > l[best] ? (int32_t)i : best;
		}
		assert_int_equal(ev.id, best);
		changed += best != raw;
		hist[nh++] = ev.id;
		assert_int_equal(bx_llm_step(ctx, &s, 1, &ev), 0);
	}
	assert_true(changed > 0);
	bx_llm_seq_destroy(s);
	free(l);
}

/* Greedy from "Love": " is always sure, but I'm always been able to be able to\nsay." */
static void
test_stop_string(void **state)
{
	const char *stops[] = { "zzz", "able to be" };
	struct bx_llm_seq_conf sc = {
		.sample = { .top_p = 1, .repeat_penalty = 1 },
		.stops = stops,
		.nb_stops = 2,
	};
	int32_t ids[100];
	char text[2048];
	enum bx_llm_stop why;

	run(&sc, 100, ids, text, sizeof(text), &why);
	assert_int_equal(why, BX_LLM_STOP_STRING);
	assert_string_equal(text, " is always sure, but I'm always been ");
	/* a stop string inside one piece, right at the start */
	stops[1] = " is";
	run(&sc, 100, ids, text, sizeof(text), &why);
	assert_int_equal(why, BX_LLM_STOP_STRING);
	assert_string_equal(text, "");
}

static void
test_max_tokens_and_ctx(void **state)
{
	struct bx_llm_seq_conf sc = { .sample = { .top_p = 1, .repeat_penalty = 1 },
		                      .max_tokens = 10 };
	int32_t ids[300];
	char text[4096];
	enum bx_llm_stop why;

	assert_int_equal(run(&sc, 300, ids, text, sizeof(text), &why), 10);
	assert_int_equal(why, BX_LLM_STOP_MAX);
	assert_true(!strncmp(text, " is always sure", 15));
	sc.max_tokens = 0;
	sc.ctx_len = 20; /* the prompt, then one token for each free position and one more */
	assert_int_equal(run(&sc, 300, ids, text, sizeof(text), &why), 20 - nlove + 1);
	assert_int_equal(why, BX_LLM_STOP_CTX);
}

static void
test_misuse(void **state)
{
	struct bx_llm_seq_conf sc = { .sample = { .top_p = 1, .repeat_penalty = 1 },
		                      .max_tokens = 1 };
	struct bx_llm_seq *s, *two[2];
	struct bx_llm_ctx *c;
	struct bx_llm_event ev[2];
	int32_t bad = 512;

	assert_int_equal(bx_llm_ctx_create(m, 0, 1, false, &c), -EINVAL);
	sc.sample.top_p = 0;
	assert_int_equal(bx_llm_seq_create(m, &sc, &s), -EINVAL);
	sc.sample.top_p = 1;
	sc.ctx_len = 1000; /* past the model's 256 */
	assert_int_equal(bx_llm_seq_create(m, &sc, &s), -EINVAL);
	sc.ctx_len = 4;
	assert_int_equal(bx_llm_seq_create(m, &sc, &s), 0);
	assert_int_equal(bx_llm_step(ctx, &s, 1, ev), -EINVAL); /* not prefilled */
	assert_int_equal(bx_llm_seq_prefill(ctx, s, &bad, 1, ev), -EINVAL);
	assert_int_equal(bx_llm_seq_prefill(ctx, s, love, 0, ev), -EINVAL);
	{
		int32_t five[5] = { 1, 5, 6, 7, 8 };

		assert_int_equal(bx_llm_seq_prefill(ctx, s, five, 5, ev), -ENOSPC);
	}
	assert_int_equal(bx_llm_seq_prefill(ctx, s, love, nlove, ev), 0);
	assert_int_equal(ev[0].stop, BX_LLM_STOP_MAX);
	assert_int_equal(bx_llm_step(ctx, &s, 1, ev), -EINVAL); /* finished */
	two[0] = two[1] = s;
	assert_int_equal(bx_llm_step(ctx, two, 2, ev), -EINVAL);
	bx_llm_seq_destroy(s);
	bx_llm_seq_destroy(NULL);
	bx_llm_ctx_destroy(NULL);
	bx_llm_model_destroy(NULL);
}

/* ---- every allocation failure of the create functions ---- */

static char model_path[512], tok_path[512];

static int
mk_model(void *arg, void **obj)
{
	struct bx_errbuf eb;

	return bx_llm_load_llama2c(model_path, tok_path, (struct bx_llm_model **)obj, &eb);
}

static void
rm_model(void *obj)
{
	bx_llm_model_destroy(obj);
}

static int
mk_ctx(void *arg, void **obj)
{
	return bx_llm_ctx_create(m, 4, 1, arg != NULL, (struct bx_llm_ctx **)obj);
}

static void
rm_ctx(void *obj)
{
	bx_llm_ctx_destroy(obj);
}

static int
mk_seq(void *arg, void **obj)
{
	struct bx_llm_seq_conf sc = { .sample = { .top_p = 1, .repeat_penalty = 1 } };

	return bx_llm_seq_create(m, &sc, (struct bx_llm_seq **)obj);
}

static void
rm_seq(void *obj)
{
	bx_llm_seq_destroy(obj);
}

static void
test_alloc_failures(void **state)
{
	llm_shared(FORTUNE, model_path, sizeof(model_path));
	llm_shared(FORTUNE_TOK, tok_path, sizeof(tok_path));
	assert_true(bx_test_alloc_walk(mk_model, rm_model, NULL) > 3);
	assert_true(bx_test_alloc_walk(mk_ctx, rm_ctx, NULL) > 3);
	assert_true(bx_test_alloc_walk(mk_ctx, rm_ctx, (void *)1) > 3);
	assert_true(bx_test_alloc_walk(mk_seq, rm_seq, NULL) > 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_seed_determinism),   cmocka_unit_test(test_seq_reset),
		cmocka_unit_test(test_greedy_limits),      cmocka_unit_test(test_topk_topp_sets),
		cmocka_unit_test(test_repeat_penalty),     cmocka_unit_test(test_stop_string),
		cmocka_unit_test(test_max_tokens_and_ctx), cmocka_unit_test(test_misuse),
		cmocka_unit_test(test_alloc_failures),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
