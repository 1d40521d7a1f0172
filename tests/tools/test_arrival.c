/*
 * Covers: tools/bx-validator/arrival.c: constant schedules hit the rate
 * exactly, Poisson schedules have the requested rate, exponential gaps
 * (coefficient of variation 1) and Poisson counts (dispersion 1), and a seed
 * reproduces its schedule.
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "arrival.h"

static void
test_constant_rate(void **state)
{
	struct bx_arrival a;
	uint64_t t, prev = 0, in_first_second = 0;
	unsigned k;

	(void)state;
	assert_int_equal(bx_arrival_init(&a, BX_ARRIVAL_CONSTANT, 1000, 1, 5000), 0);
	for (k = 0; k < 10000; k++) {
		t = bx_arrival_next(&a);
		if (k > 0) {
			assert_int_equal(t - prev, 1000000);
		} else {
			assert_int_equal(t, 5000);
		}
		in_first_second += t < 5000 + 1000000000ull;
		prev = t;
	}
	assert_int_equal(in_first_second, 1000);
	/* A rate that does not divide 1e9 must not drift: request k at k / rate. */
	assert_int_equal(bx_arrival_init(&a, BX_ARRIVAL_CONSTANT, 3, 1, 0), 0);
	for (k = 0; k < 3001; k++) {
		t = bx_arrival_next(&a);
	}
	assert_true(t >= 999999999999ull && t <= 1000000000000ull);
}

static void
test_poisson_rate_and_shape(void **state)
{
	const unsigned n = 200000;
	const double rate = 5000;
	struct bx_arrival a;
	double sum = 0, sum2 = 0, gap, mean, cv, cm = 0, cm2 = 0, disp;
	uint64_t t, prev, win_end = 1000000, nwin = 0, in_win = 0;
	unsigned k;

	(void)state;
	assert_int_equal(bx_arrival_init(&a, BX_ARRIVAL_POISSON, rate, 7, 0), 0);
	prev = bx_arrival_next(&a);
	for (k = 1; k < n; k++) {
		t = bx_arrival_next(&a);
		gap = (double)(t - prev);
		sum += gap;
		sum2 += gap * gap;
		prev = t;
		while (t >= win_end) { /* counts per 1 ms window */
			cm += (double)in_win;
			cm2 += (double)in_win * (double)in_win;
			nwin++;
			in_win = 0;
			win_end += 1000000;
		}
		in_win++;
	}
	mean = sum / (n - 1);
	cv = sqrt(sum2 / (n - 1) - mean * mean) / mean;
	/* Achieved rate within 1 % (the standard error is 0.22 %). */
	assert_true(fabs(1e9 / mean - rate) / rate < 0.01);
	assert_true(fabs(cv - 1.0) < 0.02);
	cm /= (double)nwin;
	disp = (cm2 / (double)nwin - cm * cm) / cm;
	assert_true(fabs(cm - rate / 1000) < 0.1);
	assert_true(fabs(disp - 1.0) < 0.05);
}

static void
test_seed_reproduces(void **state)
{
	struct bx_arrival a, b, c;
	unsigned k, same_c = 0;

	(void)state;
	assert_int_equal(bx_arrival_init(&a, BX_ARRIVAL_POISSON, 100, 99, 0), 0);
	assert_int_equal(bx_arrival_init(&b, BX_ARRIVAL_POISSON, 100, 99, 0), 0);
	assert_int_equal(bx_arrival_init(&c, BX_ARRIVAL_POISSON, 100, 100, 0), 0);
	for (k = 0; k < 1000; k++) {
		uint64_t ta = bx_arrival_next(&a);

		assert_int_equal(ta, bx_arrival_next(&b));
		same_c += ta == bx_arrival_next(&c);
	}
	assert_true(same_c < 5);
	assert_int_equal(bx_arrival_init(&a, BX_ARRIVAL_POISSON, 0, 1, 0), -EINVAL);
	assert_int_equal(bx_arrival_init(&a, BX_ARRIVAL_CONSTANT, INFINITY, 1, 0), -EINVAL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_constant_rate),
		cmocka_unit_test(test_poisson_rate_and_shape),
		cmocka_unit_test(test_seed_reproduces),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
