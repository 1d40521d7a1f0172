/*
 * Covers: tools/bx-validator/hist.c: bucket layout, stated precision
 * (2^-11 relative) against exact nearest-rank percentiles of known data,
 * exact small values, merge, overflow clamp.
 */
#include <inttypes.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "arrival.h"
#include "hist.h"

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static uint64_t
exact_pct(const uint64_t *sorted, size_t n, double p)
{
	uint64_t rank = (uint64_t)ceil(p / 100.0 * (double)n * (1 - 1e-12));

	rank = rank == 0 ? 1 : rank;
	return sorted[rank - 1];
}

static void
test_hist_buckets(void **state)
{
	uint64_t v;

	(void)state;
	for (v = 0; v < 4096; v++) {
		assert_true(bx_hist_bucket_lo(bx_hist_index(v)) <= v);
		assert_true(bx_hist_bucket_hi(bx_hist_index(v)) >= v);
	}
	assert_int_equal(bx_hist_index(2047), 2047);
	assert_int_equal(bx_hist_bucket_lo(bx_hist_index(2048)), 2048);
	for (v = 2048; v < ((uint64_t)1 << 40); v = v * 3 / 2 + 7) {
		unsigned i = bx_hist_index(v);
		uint64_t lo = bx_hist_bucket_lo(i), hi = bx_hist_bucket_hi(i);

		assert_true(lo <= v && v <= hi);
		assert_true((double)(hi - lo + 1) <= (double)lo / 1024.0);
		assert_true(i < BX_HIST_BUCKETS);
		/* Neighbouring buckets touch. */
		assert_int_equal(bx_hist_bucket_lo(i + 1), hi + 1);
	}
}

static void
test_hist_small_exact(void **state)
{
	struct bx_hist h;
	uint64_t v;

	(void)state;
	assert_int_equal(bx_hist_init(&h), 0);
	for (v = 1; v <= 1000; v++) {
		bx_hist_record(&h, v);
	}
	assert_int_equal(bx_hist_percentile(&h, 0), 1);
	assert_int_equal(bx_hist_percentile(&h, 50), 500);
	assert_int_equal(bx_hist_percentile(&h, 99), 990);
	assert_int_equal(bx_hist_percentile(&h, 99.9), 999);
	assert_int_equal(bx_hist_percentile(&h, 100), 1000);
	assert_true(fabs(bx_hist_mean(&h) - 500.5) < 1e-9);
	bx_hist_fini(&h);
}

static void
test_hist_percentiles_known_data(void **state)
{
	static const double ps[] = { 0, 1, 10, 25, 50, 75, 90, 99, 99.9, 99.99, 100 };
	const size_t n = 200000;
	uint64_t *data = malloc(n * sizeof(*data));
	struct bx_arrival rng;
	struct bx_hist h, a, b;
	size_t i, k;

	(void)state;
	assert_non_null(data);
	assert_int_equal(bx_arrival_init(&rng, BX_ARRIVAL_POISSON, 1, 42, 0), 0);
	assert_int_equal(bx_hist_init(&h), 0);
	assert_int_equal(bx_hist_init(&a), 0);
	assert_int_equal(bx_hist_init(&b), 0);
	for (i = 0; i < n; i++) {
		/* Log-uniform from 1 us to 10 s: every magnitude a latency can have. */
		data[i] = (uint64_t)(1e3 * pow(1e7, bx_arrival_uniform(&rng)));
		bx_hist_record(&h, data[i]);
		bx_hist_record(i % 2 ? &a : &b, data[i]);
	}
	bx_hist_merge(&a, &b);
	qsort(data, n, sizeof(*data), cmp_u64);
	for (k = 0; k < sizeof(ps) / sizeof(ps[0]); k++) {
		uint64_t want = exact_pct(data, n, ps[k]), got = bx_hist_percentile(&h, ps[k]);

		if (fabs((double)got - (double)want) > (double)want / 2048.0 + 0.5) {
			fail_msg("p%g: got %" PRIu64 " want %" PRIu64 "", ps[k], (uint64_t)got,
			         (uint64_t)want);
		}
		assert_int_equal(bx_hist_percentile(&a, ps[k]), got);
	}
	assert_int_equal(h.min, data[0]);
	assert_int_equal(h.max, data[n - 1]);
	assert_int_equal(a.count, n);
	bx_hist_fini(&h);
	bx_hist_fini(&a);
	bx_hist_fini(&b);
	free(data);
}

static void
test_hist_overflow_and_reset(void **state)
{
	struct bx_hist h;

	(void)state;
	assert_int_equal(bx_hist_init(&h), 0);
	assert_int_equal(bx_hist_percentile(&h, 50), 0);
	bx_hist_record_n(&h, (uint64_t)1 << 50, 3);
	assert_int_equal(h.overflow, 3);
	assert_int_equal(h.count, 3);
	assert_int_equal(bx_hist_percentile(&h, 50), (uint64_t)1 << 50);
	bx_hist_reset(&h);
	assert_int_equal(h.count, 0);
	bx_hist_record(&h, 7);
	assert_int_equal(bx_hist_percentile(&h, 99), 7);
	bx_hist_fini(&h);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hist_buckets),
		cmocka_unit_test(test_hist_small_exact),
		cmocka_unit_test(test_hist_percentiles_known_data),
		cmocka_unit_test(test_hist_overflow_and_reset),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
