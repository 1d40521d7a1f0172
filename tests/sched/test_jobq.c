/* Covers: sched/jobq.c — priority order, arrival order, reserved lane, removal. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "jobq.h"

static void
test_jobq_priority_then_arrival(void **state)
{
	static const uint64_t prio[] = { 5, 1, 9, 5, 0, 9, 3 };
	static const unsigned want[] = { 2, 5, 0, 3, 6, 1, 4 };
	struct bx_job jobs[7] = { 0 };
	struct jobq q;

	assert_int_equal(jobq_init(&q, 7, 0), 0);
	for (unsigned i = 0; i < 7; i++) {
		jobs[i].priority = prio[i];
		jobs[i].cost = 1;
		assert_int_equal(jobq_push(&q, &jobs[i]), 0);
	}
	assert_int_equal(jobq_push(&q, &jobs[0]), -ENOBUFS);
	for (unsigned i = 0; i < 7; i++) {
		struct jobq_pick p = jobq_peek(&q);

		assert_ptr_equal(p.job, &jobs[want[i]]);
		assert_false(p.reserved);
		jobq_take(&q, &p);
	}
	assert_null(jobq_peek(&q).job);
	assert_null(q.oldest);
	jobq_fini(&q);
}

/* Remove from the middle in random order: heap and list stay consistent. */
static void
test_jobq_remove_anywhere(void **state)
{
	struct bx_job jobs[200] = { 0 };
	unsigned order[200];
	struct jobq q;

	srand(7);
	assert_int_equal(jobq_init(&q, 200, 0), 0);
	for (unsigned i = 0; i < 200; i++) {
		jobs[i].priority = (uint64_t)(rand() % 10);
		jobs[i].cost = 1;
		jobq_push(&q, &jobs[i]);
		order[i] = i;
	}
	for (unsigned i = 199; i > 0; i--) {
		unsigned j = (unsigned)rand() % (i + 1), t = order[i];

		order[i] = order[j];
		order[j] = t;
	}
	for (unsigned i = 0; i < 100; i++) {
		jobq_remove(&q, &jobs[order[i]]);
	}
	/* What is left comes out in priority, then arrival, order. */
	for (const struct bx_job *prev = NULL; q.nb > 0;) {
		struct jobq_pick p = jobq_peek(&q);

		if (prev != NULL) {
			assert_true(prev->priority > p.job->priority ||
			            (prev->priority == p.job->priority && prev->seq < p.job->seq));
		}
		prev = p.job;
		jobq_take(&q, &p);
	}
	jobq_fini(&q);
}

/*
 * Two classes compete: one high-stake job always waiting, low-stake jobs
 * older. With a 25 % reserve, about a quarter of the tokens go to the low
 * class; with 0 % none do until the high class is gone.
 */
static unsigned
low_tokens_served(unsigned reserve_pct)
{
	struct bx_job hi[300] = { 0 }, lo[300] = { 0 };
	unsigned nb_lo = 0;
	struct jobq q;

	jobq_init(&q, 600, reserve_pct);
	for (unsigned i = 0; i < 300; i++) {
		lo[i] = (struct bx_job){ .priority = 1, .cost = 1 };
		jobq_push(&q, &lo[i]);
	}
	for (unsigned i = 0; i < 300; i++) {
		hi[i] = (struct bx_job){ .priority = 1000, .cost = 1 };
		jobq_push(&q, &hi[i]);
	}
	for (unsigned served = 0; served < 200; served++) {
		struct jobq_pick p = jobq_peek(&q);

		nb_lo += p.job->priority == 1;
		jobq_take(&q, &p);
	}
	jobq_fini(&q);
	return nb_lo;
}

static void
test_jobq_reserved_share(void **state)
{
	assert_int_equal(low_tokens_served(0), 0);
	assert_in_range(low_tokens_served(25), 48, 52);
	assert_in_range(low_tokens_served(50), 98, 102);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_jobq_priority_then_arrival),
		cmocka_unit_test(test_jobq_remove_anywhere),
		cmocka_unit_test(test_jobq_reserved_share),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
