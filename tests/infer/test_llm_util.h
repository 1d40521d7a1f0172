/* Shared helpers of the text-generation tests (test_llm_*.c). */
#ifndef BX_TEST_LLM_UTIL_H
#define BX_TEST_LLM_UTIL_H

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <bx/infer.h>

#include "bx_test.h"
#include "llm_int.h"

static inline const char *
llm_shared(const char *rel, char *buf, size_t len)
{
	const char *p = bx_test_shared(rel, buf, len);

	if (p == NULL || access(p, R_OK) != 0) {
		bx_test_skip("missing shared model files (../shared/models)");
	}
	return p;
}

static inline struct bx_llm_model *
llm_load_l2c(const char *model, const char *tok)
{
	char b1[512], b2[512];
	struct bx_errbuf eb;
	struct bx_llm_model *m = NULL;
	const char *p = llm_shared(model, b1, sizeof(b1));
	const char *t = tok ? llm_shared(tok, b2, sizeof(b2)) : NULL;
	int ret = bx_llm_load_llama2c(p, t, &m, &eb);

	if (ret) {
		print_error("%s\n", eb.msg);
	}
	assert_int_equal(ret, 0);
	return m;
}

/*
 * Greedy run: prefill `prompt`, then steps until n tokens are produced.
 * Token k goes to toks[k]; its logits to logits[k * vocab] when logits.
 */
static inline unsigned
llm_greedy(const struct bx_llm_model *m, bool ref, const int32_t *prompt, size_t np, unsigned n,
           int32_t *toks, float *logits, char *text, size_t text_cap)
{
	struct bx_llm_seq_conf sc = { .sample = { .top_p = 1, .repeat_penalty = 1 } };
	struct bx_llm_ctx *ctx;
	struct bx_llm_seq *s;
	struct bx_llm_event ev;
	uint32_t V = bx_llm_model_config(m)->vocab_size;
	size_t tl = 0;
	unsigned k = 0;

	assert_int_equal(bx_llm_ctx_create(m, 8, 1, ref, &ctx), 0);
	assert_int_equal(bx_llm_seq_create(m, &sc, &s), 0);
	assert_int_equal(bx_llm_seq_prefill(ctx, s, prompt, np, &ev), 0);
	for (;;) {
		toks[k] = ev.id;
		if (logits) {
			memcpy(logits + (size_t)k * V, bx_llm_seq_logits(s), V * sizeof(float));
		}
		if (text && tl + ev.len < text_cap) {
			memcpy(text + tl, ev.text, ev.len);
			tl += ev.len;
		}
		k++;
		if (k == n || ev.stop != BX_LLM_RUNNING) {
			break;
		}
		assert_int_equal(bx_llm_step(ctx, &s, 1, &ev), 0);
	}
	if (text) {
		text[tl] = 0;
	}
	bx_llm_seq_destroy(s);
	bx_llm_ctx_destroy(ctx);
	return k;
}

/* src written as a GGUF of type t (with options o, may be NULL) and loaded back. */
static inline struct bx_llm_model *
llm_convert(const struct bx_llm_model *src, enum bx_llm_type t, const struct bx_llm_write_opts *o)
{
	char path[128];
	struct bx_errbuf eb;
	struct bx_llm_model *m = NULL;

	snprintf(path, sizeof(path), "/tmp/bx-llm-test-%d-%s.gguf", (int)getpid(),
	         bx_llm_type_name(t));
	assert_int_equal(bx_llm_write_gguf_opts(src, t, path, o, &eb), 0);
	if (bx_llm_load_gguf(path, &m, &eb)) {
		print_error("%s\n", eb.msg);
	}
	unlink(path);
	assert_non_null(m);
	return m;
}

/* max |a[i] - b[i]| over n floats. */
static inline float
llm_max_diff(const float *a, const float *b, size_t n)
{
	float worst = 0;

	for (size_t i = 0; i < n; i++) {
		float d = fabsf(a[i] - b[i]);

		worst = d > worst ? d : worst;
	}
	return worst;
}

/*
 * The reference and the optimized path from one prompt: the same top-1 at
 * every one of `steps` greedy steps, every logit within tol.
 */
static inline void
llm_compare_paths(const struct bx_llm_model *m, const int32_t *prompt, size_t np, unsigned steps,
                  float tol)
{
	uint32_t V = bx_llm_model_config(m)->vocab_size;
	int32_t *ta = calloc(steps, 4), *tb = calloc(steps, 4);
	float *la = calloc((size_t)steps * V, 4), *lb = calloc((size_t)steps * V, 4), worst;
	unsigned na = llm_greedy(m, true, prompt, np, steps, ta, la, NULL, 0);
	unsigned nb = llm_greedy(m, false, prompt, np, steps, tb, lb, NULL, 0);

	assert_int_equal(na, nb);
	assert_memory_equal(ta, tb, na * sizeof(*ta));
	worst = llm_max_diff(la, lb, (size_t)na * V);
	print_message("%u steps after a %zu-token prompt, same tokens, max |logit diff| %.2e\n", na,
	              np, worst);
	assert_true(worst < tol);
	free(ta);
	free(tb);
	free(la);
	free(lb);
}

#endif
