/*
 * Covers: tools/bx-validator/reference.c and the model-based scores in
 * score.c: local reference embeddings (infer's f32 reference path on a
 * small generated BERT with the MiniLM vocabulary) and the generation
 * log-likelihood score on ../shared/models/fortune-1m (skipped if absent).
 */
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
#include "reference.h"
#include "score.h"

static void
test_reference_embeddings(void **state)
{
	static const struct bx_embed_shape shape = { .vocab = 30522,
		                                     .hidden = 64,
		                                     .layers = 2,
		                                     .heads = 2,
		                                     .ffn = 128,
		                                     .positions = 128,
		                                     .types = 2 };
	static const char *const texts[2] = { "hello world", "the quick brown fox" };
	char dir[64] = "/tmp/bx-validator-ref-XXXXXX", vocab[512], cmd[1200];
	static float v[2 * 64], w[2 * 64];
	struct bx_errbuf eb;
	unsigned dim = 0, i;
	double n0 = 0, dot = 0;

	(void)state;
	if (bx_test_shared("models/all-MiniLM-L6-v2/vocab.txt", vocab, sizeof(vocab)) == NULL ||
	    access(vocab, R_OK) != 0) {
		skip();
	}
	assert_non_null(mkdtemp(dir));
	snprintf(cmd, sizeof(cmd), "cp '%s' '%s/vocab.txt'", vocab, dir);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(bx_embed_synth_write(dir, &shape, 3, &eb), 0);
	if (bx_ref_embed(dir, texts, 2, v, BX_ARRAY_SIZE(v), &dim, &eb) < 0) {
		fail_msg("%s", eb.msg);
	}
	assert_int_equal(dim, 64);
	for (i = 0; i < dim; i++) {
		n0 += (double)v[i] * v[i];
		dot += (double)v[i] * v[dim + i];
	}
	assert_true(fabs(n0 - 1.0) < 1e-4); /* L2-normalised */
	assert_true(dot < 0.9999);          /* two texts, two vectors */
	assert_int_equal(bx_ref_embed(dir, texts, 2, w, BX_ARRAY_SIZE(w), &dim, &eb), 0);
	assert_memory_equal(v, w, sizeof(v)); /* deterministic */
	assert_true(bx_ref_embed(dir, texts, 2, w, 10, &dim, &eb) < 0);
	assert_true(bx_ref_embed("/nonexistent", texts, 1, w, BX_ARRAY_SIZE(w), &dim, &eb) < 0);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

static float
gen_score(struct bx_scorer *s, const char *text)
{
	json_t *b = json_object();
	uint32_t tokens = 0;
	float q;

	json_object_set_new(b, "completion", json_string(text));
	q = bx_scorer_fn(s, BX_DD_GENERATION, b, &tokens);
	json_decref(b);
	return q;
}

static void
test_generation_loglik(void **state)
{
	char model[512], tok[512], greedy[4096];
	struct bx_scorer s = { .prompt = "Once upon a time" };
	struct bx_errbuf eb;
	double ll;
	float good, bad, again;

	(void)state;
	if (bx_test_shared("models/fortune-1m/model.bin", model, sizeof(model)) == NULL ||
	    bx_test_shared("models/fortune-1m/tokenizer.bin", tok, sizeof(tok)) == NULL ||
	    access(model, R_OK) != 0) {
		skip();
	}
	if (bx_ref_llm_open(model, tok, &s.llm, &eb) < 0) {
		fail_msg("%s", eb.msg);
	}
	assert_int_equal(bx_ref_llm_greedy(s.llm, s.prompt, 24, greedy, sizeof(greedy), &s.ref_ll),
	                 0);
	assert_true(strlen(greedy) > 0);
	assert_true(s.ref_ll < 0);
	/* Teacher-forcing the greedy text gives (nearly) its own likelihood. */
	assert_int_equal(bx_ref_llm_loglik(s.llm, s.prompt, greedy, &ll), 0);
	print_message("greedy \"%s\": ll %.4f, teacher-forced %.4f\n", greedy, s.ref_ll, ll);
	assert_true(fabs(ll - s.ref_ll) < 0.05);
	good = gen_score(&s, greedy);
	bad = gen_score(&s, "zebra quantum xylophone marmalade 12345");
	again = gen_score(&s, greedy); /* cached */
	print_message("score greedy %.4f, nonsense %.4f\n", (double)good, (double)bad);
	assert_true(good > 0.95f);
	assert_true(bad < 0.5f * good);
	assert_true(again == good);
	assert_true(gen_score(&s, "") == 0);
	assert_true(bx_ref_llm_loglik(s.llm, s.prompt, "", &ll) < 0);
	bx_ref_llm_close(s.llm);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reference_embeddings),
		cmocka_unit_test(test_generation_loglik),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
