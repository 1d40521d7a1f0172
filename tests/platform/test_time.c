/* Covers: platform/time.c — monotonic clock, cycle counter calibration. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cmocka.h>

#include <bx/platform.h>

static void
test_time_monotonic(void **state)
{
	uint64_t a = bx_time_ns(), b = bx_time_ns();

	assert_true(b >= a);
	/* Later than 2020-01-01 in ns: the wall clock is the epoch clock. */
	assert_true(bx_wall_ns() > 1577836800ull * 1000000000ull);
}

static void
test_time_cycles_calibrated_against_clock(void **state)
{
	struct timespec ts = { 0, 30L * 1000000 };
	uint64_t c0, c1, t0, t1, ns;

	assert_int_equal(bx_cycles_calibrate(5), -EINVAL);
	assert_int_equal(bx_cycles_calibrate(2000), -EINVAL);
	assert_int_equal(bx_cycles_calibrate(20), 0);
	assert_true(bx_cycles_hz() > 1000000); /* at least 1 MHz on any real counter */
	t0 = bx_time_ns();
	c0 = bx_cycles();
	nanosleep(&ts, NULL);
	c1 = bx_cycles();
	t1 = bx_time_ns();
	ns = bx_cycles_to_ns(c1 - c0);
	/* Converted cycles agree with the clock within 10 % (loose: a VM may stall). */
	assert_true(ns > (t1 - t0) * 9 / 10 && ns < (t1 - t0) * 11 / 10);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_time_monotonic),
		cmocka_unit_test(test_time_cycles_calibrated_against_clock),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
