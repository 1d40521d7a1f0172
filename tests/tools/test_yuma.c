/*
 * Covers: tools/bx-validator/yuma.c against every worked case of
 * shared/research/yuma.md §6: TV1 (weighted median), TV2 (original Yuma,
 * exact u16 bonds and emissions), TV3 (Yuma 3 + liquid alpha, "kappa moves
 * first"), TV4 (Yuma 3 one-epoch switch, liquid alpha on and off).
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "yuma.h"

static int64_t
f32(float v)
{
	return bx_fx_from_double((double)v);
}

static void
median_case(const float *stake, const float w[4][3], float kappa, const float *want)
{
	int64_t s[4], sc[12], out[3], tmp[20];
	unsigned i, j;

	for (i = 0; i < 4; i++) {
		s[i] = f32(stake[i]);
		for (j = 0; j < 3; j++) {
			sc[i * 3 + j] = f32(w[i][j]);
		}
	}
	bx_yuma_weighted_median_cols(s, sc, 4, 3, f32(kappa), out, tmp);
	for (j = 0; j < 3; j++) {
		assert_int_equal(out[j], f32(want[j]));
	}
}

static void
test_median_tv1(void **state)
{
	static const float s1[4] = { 0, 0.75f, 0.25f, 0 };
	static const float w1[4][3] = {
		{ 0, 0.1f, 0 }, { 0, 0.2f, 0.4f }, { 0, 0.3f, 0.1f }, { 0, 0.4f, 0.5f }
	};
	static const float s2[4] = { 0, 0.3f, 0.2f, 0.5f };
	static const float w2[4][3] = {
		{ 0, 0.1f, 0 }, { 0, 0.2f, 0.4f }, { 0, 0.3f, 0.1f }, { 0, 0, 0.5f }
	};

	(void)state;
	median_case(s1, w1, 0.24f, (const float[]){ 0, 0.3f, 0.4f });
	median_case(s1, w1, 0.26f, (const float[]){ 0, 0.2f, 0.4f });
	median_case(s1, w1, 0.76f, (const float[]){ 0, 0.2f, 0.1f });
	median_case(s2, w2, 0.51f, (const float[]){ 0, 0, 0.4f });
}

static struct bx_yuma *
tv2_setup(void)
{
	struct bx_yuma_conf c;
	struct bx_yuma *y;
	unsigned i;

	bx_yuma_conf_default(&c);
	c.max_allowed_validators = 8;
	c.tempo = 1;
	assert_int_equal(bx_yuma_create(8, &c, &y), 0);
	for (i = 0; i < 4; i++) {
		y->stake[i] = i + 1;
	}
	return y;
}

static void
set_row(struct bx_yuma *y, unsigned uid, unsigned n, const uint16_t *cols, const uint16_t *vals)
{
	assert_int_equal(bx_yuma_set_weights(y, uid, cols, vals, n, false), 0);
}

static void
check_col(const struct bx_yuma *y, unsigned col, const uint16_t *want)
{
	unsigned i;

	for (i = 0; i < 4; i++) {
		assert_int_equal(y->bonds[i * y->n + col], want[i]);
	}
}

static void
check_vec(const int64_t *v, const double *want, unsigned n, double eps)
{
	unsigned i;

	for (i = 0; i < n; i++) {
		double got = bx_fx_to_double(v[i]);

		if (fabs(got - want[i]) > eps) {
			fail_msg("entry %u: got %.10f want %.10f", i, got, want[i]);
		}
	}
}

static void
check_u64(const uint64_t *v, const uint64_t *want, unsigned n)
{
	unsigned i;

	for (i = 0; i < n; i++) {
		assert_int_equal(v[i], want[i]);
	}
}

static void
test_yuma2_tv2(void **state)
{
	static const uint16_t cols[4] = { 4, 5, 6, 7 };
	static const uint16_t vals[4] = { 16383, 32767, 49149, 65535 };
	struct bx_yuma *y = tv2_setup();
	const uint64_t e = 1000000000;
	unsigned i;

	(void)state;
	bx_yuma_epoch(y, e); /* epoch 0: no weights, grants permits */
	for (i = 0; i < 8; i++) {
		assert_int_equal(y->permit[i], i < 4);
	}
	for (i = 0; i < 4; i++) {
		set_row(y, i, 4, cols, vals);
	}
	bx_yuma_epoch(y, e);
	check_col(y, 4, (const uint16_t[]){ 16383, 32767, 49151, 65535 });
	check_vec(y->I + 4,
	          (const double[]){ 0.0999975582, 0.2000012207, 0.2999926752, 0.4000085455 }, 4,
	          1e-10);
	check_vec(y->D, (const double[]){ 0.0999999978, 0.1999999983, 0.3000000012, 0.4000000022 },
	          4, 1e-10);
	check_u64(y->server_emission + 4,
	          (const uint64_t[]){ 49998779, 100000610, 149996337, 200004272 }, 4);
	check_u64(y->validator_emission,
	          (const uint64_t[]){ 49999998, 99999999, 150000000, 200000001 }, 4);

	set_row(y, 0, 1, (const uint16_t[]){ 0 }, (const uint16_t[]){ 65535 });
	bx_yuma_epoch(y, e);
	check_col(y, 4, (const uint16_t[]){ 14582, 32767, 49151, 65535 });
	check_u64(y->validator_emission,
	          (const uint64_t[]){ 44998351, 101110561, 151667215, 202223870 }, 4);

	set_row(y, 1, 1, (const uint16_t[]){ 1 }, (const uint16_t[]){ 65535 });
	bx_yuma_epoch(y, e);
	check_col(y, 4, (const uint16_t[]){ 12603, 28321, 49151, 65535 });
	check_vec(y->D, (const double[]){ 0.0809936118, 0.1819995677, 0.3158592721, 0.421147548 },
	          4, 5e-10); /* printed to 9 digits */

	set_row(y, 2, 1, (const uint16_t[]){ 2 }, (const uint16_t[]){ 65535 });
	bx_yuma_epoch(y, e);
	check_col(y, 7, (const uint16_t[]){ 12602, 28320, 49150, 65535 });
	for (i = 0; i < 8; i++) {
		assert_int_equal(y->C[i], 0);
		assert_int_equal(y->I[i], 0);
		assert_int_equal(y->D[i], 0);
	}
	check_u64(y->validator_emission,
	          (const uint64_t[]){ 99999999, 199999999, 299999999, 399999999 }, 4);

	set_row(y, 2, 1, (const uint16_t[]){ 7 }, (const uint16_t[]){ 65535 });
	bx_yuma_epoch(y, e);
	check_col(y, 7, (const uint16_t[]){ 10951, 24609, 49150, 65535 });
	check_vec(y->C + 7, (const double[]){ 0.400008545 }, 1, 1e-9);
	check_vec(y->Tv + 2, (const double[]){ 0.400008545, 0.400008545 }, 2, 1e-9);
	assert_int_equal(y->I[7], BX_FX_ONE);
	check_vec(y->D, (const double[]){ 0.0728874663, 0.1637972582, 0.3271309866, 0.4361842885 },
	          4, 1e-10);
	assert_int_equal(y->server_emission[7], 500000000);
	check_u64(y->validator_emission,
	          (const uint64_t[]){ 36443733, 81898628, 163565493, 218092144 }, 4);

	bx_yuma_epoch(y, e);
	check_col(y, 7, (const uint16_t[]){ 9559, 21482, 49150, 65535 });
	check_vec(y->D, (const double[]){ 0.0655988548, 0.1474132247, 0.3372762585, 0.4497116616 },
	          4, 1e-10);
	bx_yuma_epoch(y, e);
	check_col(y, 7, (const uint16_t[]){ 8376, 18824, 49150, 65535 });
	check_vec(y->D, (const double[]){ 0.0590361361, 0.1326722752, 0.3464062694, 0.4618853189 },
	          4, 1e-10);
	bx_yuma_destroy(y);
}

static struct bx_yuma *
yuma3_setup(const uint64_t *stake, bool liquid)
{
	struct bx_yuma_conf c;
	struct bx_yuma *y;
	unsigned i;

	bx_yuma_conf_default(&c);
	c.bonds_penalty = 0;
	c.bonds_moving_average = 975000;
	c.alpha_low = 6553;
	c.alpha_high = 19660;
	c.yuma3 = true;
	c.liquid_alpha = liquid;
	c.max_allowed_validators = 3;
	c.tempo = 1;
	assert_int_equal(bx_yuma_create(5, &c, &y), 0);
	for (i = 0; i < 5; i++) {
		y->stake[i] = stake[i];
	}
	bx_yuma_epoch(y, 1000000000); /* grants permits to 0, 1, 2 */
	return y;
}

/* Validators 0..2 each weight miner 3 ('X') or miner 4 ('Y') with an explicit zero. */
static void
set_xy(struct bx_yuma *y, const char *who)
{
	static const uint16_t cols[2] = { 3, 4 };
	static const uint16_t x[2] = { 65535, 0 }, yy[2] = { 0, 65535 };
	unsigned i;

	for (i = 0; i < 3; i++) {
		assert_int_equal(bx_yuma_set_weights(y, i, cols, who[i] == 'X' ? x : yy, 2, true),
		                 0);
	}
}

static void
check_bond(const struct bx_yuma *y, unsigned v, const double *want, double eps)
{
	unsigned j;

	for (j = 0; j < 2; j++) {
		double got = y->bonds[v * y->n + 3 + j] / 65535.0;

		if (fabs(got - want[j]) > eps) {
			fail_msg("bond %u->%u: got %.5f want %.4f", v, 3 + j, got, want[j]);
		}
	}
}

static void
test_yuma3_kappa_moves_first_tv3(void **state)
{
	static const char *const w[6] = { "XXX", "YXX", "YYX", "YYY", "YYY", "YYY" };
	static const double d[6][3] = {
		{ 0.8, 0.1, 0.1 },          { 1.0, 0, 0 },
		{ 0.9382, 0.0618, 0 },      { 0.8819, 0.0773, 0.0407 },
		{ 0.8564, 0.0844, 0.0592 }, { 0.8418, 0.0884, 0.0697 },
	};
	static const double b[6][3][2] = {
		{ { 0.1013, 0 }, { 0.1013, 0 }, { 0.1013, 0 } },
		{ { 0.0908, 0.1013 }, { 0.3697, 0 }, { 0.3697, 0 } },
		{ { 0.0815, 0.1924 }, { 0.3170, 0.1013 }, { 0.5580, 0 } },
		{ { 0.0731, 0.2742 }, { 0.2765, 0.1924 }, { 0.4306, 0.1013 } },
		{ { 0.0656, 0.3478 }, { 0.2435, 0.2742 }, { 0.3589, 0.1924 } },
		{ { 0.0588, 0.4139 }, { 0.2157, 0.3478 }, { 0.3089, 0.2742 } },
	};
	struct bx_yuma *y = yuma3_setup((const uint64_t[]){ 8, 1, 1, 0, 0 }, true);
	unsigned ep, v;

	(void)state;
	for (ep = 0; ep < 6; ep++) {
		set_xy(y, w[ep]);
		bx_yuma_epoch(y, 1000000000);
		check_vec(y->D, d[ep], 3, 1e-4);
		for (v = 0; v < 3; v++) {
			check_bond(y, v, b[ep][v], 1.5e-4);
		}
	}
	bx_yuma_destroy(y);
}

static void
one_epoch_switch(bool liquid, const double d[6][3], const double b[6][2][2])
{
	struct bx_yuma *y = yuma3_setup((const uint64_t[]){ 33, 33, 34, 0, 0 }, liquid);
	unsigned ep;

	for (ep = 0; ep < 6; ep++) {
		set_xy(y, ep == 2 ? "XXY" : "XXX");
		bx_yuma_epoch(y, 1000000000);
		check_vec(y->D, d[ep], 3, 1e-4);
		check_bond(y, 0, b[ep][0], 1.5e-4);
		check_bond(y, 1, b[ep][0], 1.5e-4); /* B's bonds equal A's */
		check_bond(y, 2, b[ep][1], 1.5e-4);
	}
	bx_yuma_destroy(y);
}

static void
test_yuma3_one_epoch_switch_tv4(void **state)
{
	static const double d_on[6][3] = {
		{ .33, .33, .34 },       { .33, .33, .34 },       { .3782, .3782, .2436 },
		{ .3628, .3628, .2745 }, { .3541, .3541, .2917 }, { .3487, .3487, .3026 },
	};
	static const double b_on[6][2][2] = {
		{ { 0.1013, 0 }, { 0.1013, 0 } },      { { 0.1924, 0 }, { 0.1924, 0 } },
		{ { 0.2742, 0 }, { 0.1715, 0.2987 } }, { { 0.3478, 0 }, { 0.2554, 0.2618 } },
		{ { 0.4139, 0 }, { 0.3309, 0.2312 } }, { { 0.4733, 0 }, { 0.3987, 0.2051 } },
	};
	static const double d_off[6][3] = {
		{ .33, .33, .34 },       { .33, .33, .34 },       { .3734, .3734, .2532 },
		{ .3611, .3611, .2779 }, { .3541, .3541, .2919 }, { .3495, .3495, .3009 },
	};
	static const double b_off[6][2][2] = {
		{ { 0.0250, 0 }, { 0.0250, 0 } },      { { 0.0494, 0 }, { 0.0494, 0 } },
		{ { 0.0731, 0 }, { 0.0481, 0.0250 } }, { { 0.0963, 0 }, { 0.0719, 0.0244 } },
		{ { 0.1189, 0 }, { 0.0951, 0.0238 } }, { { 0.1409, 0 }, { 0.1178, 0.0232 } },
	};

	(void)state;
	one_epoch_switch(true, d_on, b_on);
	one_epoch_switch(false, d_off, b_off);
}

static void
test_max_upscale_and_register(void **state)
{
	struct bx_yuma_conf c;
	struct bx_yuma *y;

	(void)state;
	bx_yuma_conf_default(&c);
	assert_int_equal(bx_yuma_create(4, &c, &y), 0);
	assert_int_equal(bx_yuma_set_weights(y, 0, (const uint16_t[]){ 1, 2, 3 },
	                                     (const uint16_t[]){ 1, 2, 4 }, 3, true),
	                 0);
	assert_int_equal(y->weights[1], 16384); /* round(1 * 65535 / 4) */
	assert_int_equal(y->weights[2], 32768);
	assert_int_equal(y->weights[3], 65535);
	assert_int_equal(bx_yuma_set_weights(y, 0, (const uint16_t[]){ 1, 1 },
	                                     (const uint16_t[]){ 1, 2 }, 2, true),
	                 -EINVAL);
	assert_int_equal(bx_yuma_set_weights(y, 0, (const uint16_t[]){ 9 }, (const uint16_t[]){ 1 },
	                                     1, true),
	                 -EINVAL);
	y->bonds[0 * 4 + 3] = 500;
	bx_yuma_register(y, 3);
	assert_int_equal(y->bonds[3], 0);
	assert_int_equal(y->reg_block[3], y->block);
	bx_yuma_destroy(y);
	assert_int_equal(bx_yuma_create(0, &c, &y), -EINVAL);
}

/* §3.3 top-k permits with stable ties; §3.1 an inactive validator's stake stops counting. */
static void
test_permits_and_activity(void **state)
{
	struct bx_yuma_conf c;
	struct bx_yuma *y;
	unsigned e;

	(void)state;
	bx_yuma_conf_default(&c);
	c.max_allowed_validators = 2;
	c.tempo = 1;
	c.activity_cutoff = 2;
	assert_int_equal(bx_yuma_create(4, &c, &y), 0);
	y->stake[0] = 2;
	y->stake[1] = 2;
	y->stake[2] = 2;
	bx_yuma_epoch(y, 1000);
	/* Ascending stable order is 3, 0, 1, 2: the first n - k = 2 lose. */
	assert_false(y->permit[0]);
	assert_true(y->permit[1]);
	assert_true(y->permit[2]);
	assert_false(y->permit[3]);
	/* Both permitted validators weight miner 3; only 2 keeps doing so. */
	assert_int_equal(bx_yuma_set_weights(y, 1, (const uint16_t[]){ 3 }, (const uint16_t[]){ 1 },
	                                     1, true),
	                 0);
	for (e = 0; e < 4; e++) {
		assert_int_equal(bx_yuma_set_weights(y, 2, (const uint16_t[]){ 3 },
		                                     (const uint16_t[]){ 1 }, 1, true),
		                 0);
		bx_yuma_epoch(y, 1000);
	}
	/* 1 last set weights 4 blocks ago, more than the cutoff of 2: inactive. */
	assert_int_equal(y->A[1], 0);
	assert_int_equal(y->A[2], BX_FX_ONE);
	/* Its old bonds still earn (Yuma 2 dividends follow bonds), but less than 2's. */
	assert_true(y->D[1] > 0 && y->D[1] < y->D[2]);
	assert_int_equal(y->I[3], BX_FX_ONE);
	bx_yuma_destroy(y);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_median_tv1),
		cmocka_unit_test(test_yuma2_tv2),
		cmocka_unit_test(test_yuma3_kappa_moves_first_tv3),
		cmocka_unit_test(test_yuma3_one_epoch_switch_tv4),
		cmocka_unit_test(test_max_upscale_and_register),
		cmocka_unit_test(test_permits_and_activity),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
