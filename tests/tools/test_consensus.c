/*
 * Covers: tools/bx-validator/consensus.c and score.c end to end on
 * 127.0.0.1: three validator hotkeys score two real axon-like responders
 * (responder.c, which verifies every request's signature) over signed
 * TextEmbedding requests, set weights, and Yuma runs. The miner that answers
 * wrongly (or 150 ms late) must end with less incentive and emission. Also the
 * scoring rules one by one.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <bx/crypto.h>

#include "consensus.h"
#include "responder.h"
#include "score.h"

static const float REF[4] = { 0.5f, 0.5f, 0.5f, 0.5f };
static const float ORTHO[4] = { 0.5f, -0.5f, 0.5f, -0.5f };
static const float NOT_UNIT[4] = { 1, 1, 1, 1 };

static void
test_scoring_rules(void **state)
{
	struct bx_scorer s = { .ref = REF, .dim = 4, .nb_texts = 1, .norm_tol = 1e-3 };
	json_t *b;
	uint32_t tokens = 0;

	(void)state;
	b = json_loads("{\"embeddings\": [[0.5, 0.5, 0.5, 0.5]]}", 0, NULL);
	assert_true(fabs(bx_score_embedding(&s, b) - 1.0) < 1e-6);
	json_decref(b);
	b = json_loads("{\"embeddings\": [[0.5, 0.5, 0.5, 0.5, 0]]}", 0, NULL); /* wrong dim */
	assert_true(bx_score_embedding(&s, b) == 0);
	json_decref(b);
	b = json_loads("{\"embeddings\": [[1, 1, 1, 1]]}", 0, NULL); /* not unit norm */
	assert_true(bx_score_embedding(&s, b) == 0);
	json_decref(b);
	b = json_loads("{\"embeddings\": [[0.7071067811865476, 0.7071067811865476, 0, 0]]}", 0,
	               NULL);
	assert_true(fabs(bx_score_embedding(&s, b) - 0.7071067811865476) < 1e-6);
	json_decref(b);
	b = json_loads("{\"embeddings\": [[0.5, 0.5, 0.5, 0.5], [0.5, 0.5, 0.5, 0.5]]}", 0, NULL);
	assert_true(bx_score_embedding(&s, b) == 0); /* two vectors for one text */
	json_decref(b);
	s.ref_completion = "the cat sat on the mat";
	b = json_loads("{\"completion\": \"the cat sat in the hat\"}", 0, NULL);
	assert_true(fabs(bx_score_generation(&s, b, &tokens) - 3.0 / 6.0) < 1e-6);
	assert_int_equal(tokens, 6);
	json_decref(b);
	assert_true(fabs(bx_score_final(1.0, 0.5, 1.0, 0.2) - 0.9) < 1e-12);
	assert_true(bx_score_final(1.0, 1.5, 1.0, 0.2) == 0);
	assert_true(bx_score_final(0.0, 0.1, 1.0, 0.2) == 0);
}

static void
miner_arg(char *buf, size_t n, const struct responder *r)
{
	snprintf(buf, n, "127.0.0.1:%u=%s", r->port, r->ss58);
}

static void
run_pair(struct responder *good, struct responder *bad, struct bx_cs_result *res, const char *json,
         char *timeout)
{
	static struct bx_cli cli;
	static struct bx_dd_identity ids[3];
	char m0[128], m1[128], ref[64];
	char *argv[] = { "bx-validator",
		         "--synapse",
		         "embedding",
		         "--hotkeys",
		         "3",
		         "--duration",
		         "0.2",
		         "--connections",
		         "2",
		         "--timeout",
		         timeout,
		         "--epochs",
		         "3",
		         "--stakes",
		         "50,30,20",
		         "--quiet",
		         NULL };
	struct bx_scorer s = { .ref = REF, .dim = 4, .nb_texts = 1, .norm_tol = 1e-3 };
	struct bx_errbuf eb;
	unsigned nb = 0, i;

	assert_int_equal(bx_cli_parse(&cli, 16, argv, &eb), 0);
	miner_arg(m0, sizeof(m0), good);
	miner_arg(m1, sizeof(m1), bad);
	cli.miners[0] = m0;
	cli.miners[1] = m1;
	cli.nb_miners = 2;
	cli.json_path = json;
	snprintf(ref, sizeof(ref), "0.5,0.5,0.5,0.5");
	assert_int_equal(bx_cli_identities(&cli, ids, &nb, &eb), 0);
	assert_int_equal(nb, 3);
	if (bx_cs_run(&cli, ids, nb, &s, stdout, res, &eb) < 0) {
		fail_msg("%s", eb.msg);
	}
	for (i = 0; i < nb; i++) {
		bx_dd_identity_fini(&ids[i]);
	}
}

static void
test_wrong_miner_earns_less(void **state)
{
	struct responder good = { .embedding = REF, .dim = 4 };
	struct responder bad = { .embedding = ORTHO, .dim = 4 };
	struct bx_cs_result res;
	char path[64];

	(void)state;
	snprintf(path, sizeof(path), "/tmp/bx-validator-consensus-%d.json", (int)getpid());
	assert_int_equal(responder_start(&good, 21), 0);
	assert_int_equal(responder_start(&bad, 22), 0);
	run_pair(&good, &bad, &res, path, "1");
	assert_true(res.score[0] > 0.9);
	assert_true(res.score[1] < 0.01);
	{
		json_t *j = json_load_file(path, 0, NULL), *ep, *m;

		assert_non_null(j);
		ep = json_object_get(j, "epochs");
		assert_int_equal(json_array_size(ep), 3);
		m = json_array_get(json_object_get(json_array_get(ep, 2), "miners"), 0);
		assert_true(fabs(json_real_value(json_object_get(m, "incentive")) -
		                 res.incentive[0]) < 1e-6);
		assert_int_equal(
			json_array_size(json_object_get(json_array_get(ep, 2), "validators")), 3);
		json_decref(j);
		unlink(path);
	}
	assert_true(res.incentive[0] > 0.99);
	assert_true(res.miner_emission[0] > 10 * res.miner_emission[1] + 1);
	/* Validators that agreed with consensus share the dividends by stake. */
	print_message("dividends %.6f %.6f %.6f\n", res.dividends[0], res.dividends[1],
	              res.dividends[2]);
	assert_true(res.dividends[0] > res.dividends[1] && res.dividends[1] > res.dividends[2]);
	assert_int_equal(good.rejected + bad.rejected, 0);
	responder_stop(&good);
	responder_stop(&bad);
}

static void
test_slow_or_unnormalised_miner_earns_less(void **state)
{
	struct responder good = { .embedding = REF, .dim = 4 };
	struct responder slow = { .embedding = REF, .dim = 4, .delay_us = 150000 };
	struct responder sloppy = { .embedding = NOT_UNIT, .dim = 4 };
	struct bx_cs_result res;

	(void)state;
	assert_int_equal(responder_start(&good, 23), 0);
	assert_int_equal(responder_start(&slow, 24), 0);
	run_pair(&good, &slow, &res, NULL, "0.5");
	print_message("good %.4f, slow %.4f\n", res.score[0], res.score[1]);
	assert_true(res.score[0] > res.score[1]);
	assert_true(res.incentive[0] > res.incentive[1]);
	assert_true(res.miner_emission[0] > res.miner_emission[1]);
	assert_int_equal(responder_start(&sloppy, 25), 0);
	run_pair(&good, &sloppy, &res, NULL, "1");
	assert_true(res.score[1] == 0);
	assert_true(res.miner_emission[0] > res.miner_emission[1]);
	responder_stop(&good);
	responder_stop(&slow);
	responder_stop(&sloppy);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_scoring_rules),
		cmocka_unit_test(test_wrong_miner_earns_less),
		cmocka_unit_test(test_slow_or_unnormalised_miner_earns_less),
	};

	if (bx_crypto_init() < 0) {
		return 1;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
