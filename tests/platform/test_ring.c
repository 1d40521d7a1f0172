/*
 * Covers: platform/ring_spsc.c, platform/ring_mpmc.c — bursts, full/empty,
 * wrap-around, and multi-thread stress that checks every object arrives
 * exactly once and (for SPSC) in order.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include <bx/platform.h>

#define STRESS_N 2000000u

static void
test_spsc_basic_and_wrap(void **state)
{
	void *in[8], *out[8];
	struct bx_spsc *r;

	assert_int_equal(bx_spsc_create(0, &r), -EINVAL);
	assert_int_equal(bx_spsc_create(5, &r), 0);
	assert_int_equal(bx_spsc_capacity(r), 8);
	for (uintptr_t i = 0; i < 8; i++) {
		in[i] = (void *)(i + 1);
	}
	assert_int_equal(bx_spsc_dequeue_burst(r, out, 8), 0);
	/* Many laps of partial bursts exercise wrap-around of the free-running indices. */
	for (unsigned lap = 0; lap < 1000; lap++) {
		assert_int_equal(bx_spsc_enqueue_burst(r, in, 5), 5);
		assert_int_equal(bx_spsc_enqueue_burst(r, in, 5), 3); /* only 3 slots left */
		assert_int_equal(bx_spsc_count(r), 8);
		assert_int_equal(bx_spsc_dequeue_burst(r, out, 6), 6);
		assert_ptr_equal(out[0], in[0]);
		assert_ptr_equal(out[5], in[0]);
		assert_int_equal(bx_spsc_dequeue_burst(r, out, 8), 2);
		assert_ptr_equal(out[1], in[2]);
	}
	bx_spsc_destroy(r);
}

static void
test_mpmc_basic(void **state)
{
	void *in[4] = { (void *)1, (void *)2, (void *)3, (void *)4 }, *out[4];
	struct bx_mpmc *r;

	assert_int_equal(bx_mpmc_create(1u << 31, &r), -EINVAL);
	assert_int_equal(bx_mpmc_create(3, &r), 0);
	assert_int_equal(bx_mpmc_capacity(r), 4);
	for (int lap = 0; lap < 100; lap++) {
		assert_int_equal(bx_mpmc_enqueue_burst(r, in, 4), 4);
		assert_int_equal(bx_mpmc_enqueue_burst(r, in, 1), 0);
		assert_int_equal(bx_mpmc_count(r), 4);
		assert_int_equal(bx_mpmc_dequeue_burst(r, out, 3), 3);
		assert_ptr_equal(out[2], in[2]);
		assert_int_equal(bx_mpmc_dequeue_burst(r, out, 3), 1);
		assert_ptr_equal(out[0], in[3]);
		assert_int_equal(bx_mpmc_dequeue_burst(r, out, 1), 0);
	}
	bx_mpmc_destroy(r);
}

/* ----- two-thread SPSC stress: values 1..N arrive in order ----- */

static void *
spsc_producer(void *arg)
{
	struct bx_spsc *r = arg;
	uintptr_t next = 1;
	void *batch[16];

	while (next <= STRESS_N) {
		unsigned n = (unsigned)(next % 16) + 1, sent;

		n = BX_MIN(n, STRESS_N - next + 1);
		for (unsigned i = 0; i < n; i++) {
			batch[i] = (void *)(next + i);
		}
		sent = bx_spsc_enqueue_burst(r, batch, n);
		next += sent;
	}
	return NULL;
}

static void
test_spsc_two_thread_stress(void **state)
{
	struct bx_spsc *r;
	pthread_t t;
	uintptr_t expect = 1;
	void *batch[32];

	assert_int_equal(bx_spsc_create(64, &r), 0);
	assert_int_equal(pthread_create(&t, NULL, spsc_producer, r), 0);
	while (expect <= STRESS_N) {
		unsigned n = bx_spsc_dequeue_burst(r, batch, (unsigned)(expect % 32) + 1);

		for (unsigned i = 0; i < n; i++) {
			if ((uintptr_t)batch[i] != expect) {
				fail_msg("got %zu, expected %zu", (size_t)(uintptr_t)batch[i],
				         (size_t)expect);
			}
			expect++;
		}
	}
	pthread_join(t, NULL);
	assert_int_equal(bx_spsc_count(r), 0);
	bx_spsc_destroy(r);
}

/* ----- MPMC stress: 2 producers x 2 consumers, every value exactly once ----- */

struct mp_arg {
	struct bx_mpmc *r;
	uintptr_t base;  /* producer: values base+1 .. base+STRESS_N/2 */
	uint8_t *seen;   /* consumer: one byte per value */
	unsigned *taken; /* shared count of dequeued objects */
};

static void *
mp_producer(void *p)
{
	struct mp_arg *a = p;

	for (uintptr_t v = 1; v <= STRESS_N / 2;) {
		void *obj = (void *)(a->base + v);

		v += bx_mpmc_enqueue_burst(a->r, &obj, 1);
	}
	return NULL;
}

static void *
mp_consumer(void *p)
{
	struct mp_arg *a = p;
	void *batch[8];

	while (__atomic_load_n(a->taken, __ATOMIC_RELAXED) < STRESS_N) {
		unsigned n = bx_mpmc_dequeue_burst(a->r, batch, 8);

		for (unsigned i = 0; i < n; i++) {
			__atomic_fetch_add(&a->seen[(uintptr_t)batch[i]], 1, __ATOMIC_RELAXED);
		}
		__atomic_fetch_add(a->taken, n, __ATOMIC_RELAXED);
	}
	return NULL;
}

static void
test_mpmc_multi_thread_stress(void **state)
{
	uint8_t *seen = calloc(STRESS_N + 1, 1);
	unsigned taken = 0;
	struct mp_arg args[4];
	pthread_t t[4];
	struct bx_mpmc *r;

	assert_non_null(seen);
	assert_int_equal(bx_mpmc_create(128, &r), 0);
	for (int i = 0; i < 4; i++) {
		args[i] = (struct mp_arg){ r, i == 1 ? STRESS_N / 2 : 0, seen, &taken };
		assert_int_equal(
			pthread_create(&t[i], NULL, i < 2 ? mp_producer : mp_consumer, &args[i]),
			0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
	}
	for (unsigned v = 1; v <= STRESS_N; v++) {
		if (seen[v] != 1) {
			fail_msg("value %u seen %u times", v, seen[v]);
		}
	}
	assert_int_equal(bx_mpmc_count(r), 0);
	bx_mpmc_destroy(r);
	free(seen);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_spsc_basic_and_wrap),
		cmocka_unit_test(test_mpmc_basic),
		cmocka_unit_test(test_spsc_two_thread_stress),
		cmocka_unit_test(test_mpmc_multi_thread_stress),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
