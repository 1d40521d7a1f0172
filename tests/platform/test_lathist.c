/* Covers: platform/lathist.c — bucket edges, sums, merge. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <bx/platform.h>

static void
test_hist_bucket_edges(void **state)
{
	struct bx_lathist h = { 0 };

	bx_lathist_record(&h, 0);              /* <= 1 us */
	bx_lathist_record(&h, 1000);           /* exactly 1 us: still the first bucket */
	bx_lathist_record(&h, 1001);           /* (1 us, 2 us] */
	bx_lathist_record(&h, 7000000);        /* (5 ms, 10 ms] */
	bx_lathist_record(&h, 10000000000ull); /* exactly 10 s */
	bx_lathist_record(&h, 10000000001ull); /* +Inf */
	assert_int_equal(h.counts[0], 2);
	assert_int_equal(h.counts[1], 1);
	assert_int_equal(bx_lathist_bound_ns(12), 10000000);
	assert_int_equal(h.counts[12], 1);
	assert_int_equal(h.counts[21], 1);
	assert_int_equal(h.counts[22], 1);
	assert_int_equal(bx_lathist_bound_ns(22), UINT64_MAX);
	assert_int_equal(h.count, 6);
	assert_int_equal(h.sum_ns, 0 + 1000 + 1001 + 7000000 + 20000000001ull);
}

static void
test_hist_merge_and_monotonic_bounds(void **state)
{
	struct bx_lathist a = { 0 }, b = { 0 }, m = { 0 };

	for (uint64_t v = 1; v < 100000000; v *= 3) {
		bx_lathist_record(&a, v);
		bx_lathist_record(&b, v * 2);
	}
	bx_lathist_merge(&m, &a);
	bx_lathist_merge(&m, &b);
	assert_int_equal(m.count, a.count + b.count);
	assert_int_equal(m.sum_ns, a.sum_ns + b.sum_ns);
	for (unsigned i = 1; i < BX_LATHIST_BUCKETS; i++) {
		assert_true(bx_lathist_bound_ns(i) > bx_lathist_bound_ns(i - 1));
		assert_int_equal(m.counts[i], a.counts[i] + b.counts[i]);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hist_bucket_edges),
		cmocka_unit_test(test_hist_merge_and_monotonic_bounds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
