/*
 * Covers: sched/sched.c on real pinned threads — execution, deadline and
 * queue-full rejection, stake priority under contention, batch formation
 * under a token budget, cancellation, expiry, shutdown, init failure.
 *
 * A "gate" job blocks the worker inside exec so the test can queue work
 * behind it and then watch the order in which the worker serves it.
 */
#include <errno.h>
#include <semaphore.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include <bx/sched.h>

#define KIND_GATE 1

struct tjob {
	struct bx_job job;
	unsigned id;
	int status; /* enum bx_job_status, -1 until done */
};

static sem_t gate;
static unsigned order[512], nb_order; /* ids in execution order (worker thread) */
static unsigned batch_sizes[512], nb_batches;
static unsigned nb_done; /* atomic */
static struct bx_sched_plan plan;

static int
exec(void *wctx, struct bx_job *const *jobs, unsigned n)
{
	batch_sizes[nb_batches++] = n;
	for (unsigned i = 0; i < n; i++) {
		struct tjob *t = (struct tjob *)jobs[i];

		if (jobs[i]->kind == KIND_GATE) {
			sem_wait(&gate);
		}
		order[nb_order++] = t->id;
		jobs[i]->result = t->id == 999 ? -EIO : 0;
	}
	return 0;
}

static void
done(struct bx_job *job, enum bx_job_status status)
{
	((struct tjob *)job)->status = (int)status;
	__atomic_fetch_add(&nb_done, 1, __ATOMIC_RELEASE);
}

static void
wait_done(unsigned n)
{
	for (int i = 0; i < 5000 && __atomic_load_n(&nb_done, __ATOMIC_ACQUIRE) < n; i++) {
		struct timespec ts = { 0, 1000000 };

		nanosleep(&ts, NULL);
	}
	assert_int_equal(__atomic_load_n(&nb_done, __ATOMIC_ACQUIRE), n);
}

static struct bx_sched_conf
conf(unsigned queue_max, unsigned budget, unsigned jobs_max, unsigned reserve)
{
	return (struct bx_sched_conf){
		.plan = &plan,
		.queue_max = queue_max,
		.batch_tokens = budget,
		.batch_jobs_max = jobs_max,
		.reserve_pct = reserve,
		.est_ns_per_token = 1000,
		.exec = exec,
	};
}

static void
job_init(struct tjob *t, unsigned id, uint64_t priority, uint32_t cost)
{
	*t = (struct tjob){ .id = id, .status = -1 };
	t->job.priority = priority;
	t->job.cost = cost;
	t->job.done = done;
}

/* Start a scheduler and park its worker on a gate job. */
static struct bx_sched *
start_gated(struct bx_sched_conf c, struct tjob *g)
{
	struct bx_sched *s;

	assert_int_equal(bx_sched_create(&c, &s, NULL), 0);
	job_init(g, 0, 0, 1);
	g->job.kind = KIND_GATE;
	assert_int_equal(bx_sched_submit(s, &g->job), 0);
	while (__atomic_load_n(&nb_batches, __ATOMIC_ACQUIRE) == 0) {
		sched_yield();
	}
	return s;
}

static int
setup(void **state)
{
	struct bx_topo *t;

	nb_order = nb_batches = nb_done = 0;
	sem_init(&gate, 0, 0);
	assert_int_equal(bx_topo_load(&t, NULL), 0);
	assert_int_equal(bx_sched_plan_auto(t, 1, 1, &plan, NULL), 0);
	plan.nb_workers = 1;
	bx_topo_free(t);
	return 0;
}

static int
teardown(void **state)
{
	sem_destroy(&gate);
	return 0;
}

static void
test_sched_runs_jobs_and_reports_failures(void **state)
{
	struct bx_sched_conf c = conf(64, 100, 8, 0);
	struct tjob jobs[20];
	struct bx_sched_stats st;
	struct bx_sched *s;

	assert_int_equal(bx_sched_create(&c, &s, NULL), 0);
	for (unsigned i = 0; i < 20; i++) {
		job_init(&jobs[i], i == 7 ? 999 : i + 1, 0, 1);
		assert_int_equal(bx_sched_submit(s, &jobs[i].job), 0);
	}
	wait_done(20);
	for (unsigned i = 0; i < 20; i++) {
		assert_int_equal(jobs[i].status, i == 7 ? BX_JOB_FAILED : BX_JOB_OK);
	}
	bx_sched_stats(s, &st);
	assert_int_equal(st.submitted, 20);
	assert_int_equal(st.executed, 19);
	assert_int_equal(st.failed, 1);
	assert_int_equal(st.depth, 0);
	assert_int_equal(st.queue_hist.count, 20);
	assert_int_equal(st.compute_hist.count, 20);
	assert_true(bx_sched_idle(s));
	bx_sched_destroy(s);
}

static void
test_sched_deadline_rejection(void **state)
{
	struct bx_sched_conf c = conf(64, 100, 8, 0);
	struct tjob late, hopeless, fine;
	struct bx_sched_stats st;
	struct bx_sched *s;

	c.est_ns_per_token = 1000000; /* 1 ms per token */
	assert_int_equal(bx_sched_create(&c, &s, NULL), 0);
	job_init(&late, 1, 0, 1);
	late.job.deadline_ns = bx_time_ns() - 1;
	assert_int_equal(bx_sched_submit(s, &late.job), -ETIMEDOUT); /* axon 408 */
	job_init(&hopeless, 2, 0, 100); /* ~100 ms of work, 10 ms to do it */
	hopeless.job.deadline_ns = bx_time_ns() + 10000000;
	assert_int_equal(bx_sched_submit(s, &hopeless.job), -EBUSY); /* axon 503 */
	job_init(&fine, 3, 0, 1);
	fine.job.deadline_ns = bx_time_ns() + 2000000000ull;
	assert_int_equal(bx_sched_submit(s, &fine.job), 0);
	wait_done(1);
	bx_sched_stats(s, &st);
	assert_int_equal(st.rejected_expired, 1);
	assert_int_equal(st.rejected_late, 1);
	assert_int_equal(st.executed, 1);
	bx_sched_destroy(s);
}

static void
test_sched_queue_full(void **state)
{
	struct tjob g, jobs[10];
	struct bx_sched_stats st;
	struct bx_sched *s = start_gated(conf(4, 100, 8, 0), &g);
	unsigned ok = 0;

	for (unsigned i = 0; i < 10; i++) {
		job_init(&jobs[i], i + 1, 0, 1);
		ok += bx_sched_submit(s, &jobs[i].job) == 0;
	}
	assert_int_equal(ok, 3); /* the gate job holds one of the 4 places */
	bx_sched_stats(s, &st);
	assert_int_equal(st.rejected_full, 7);
	assert_int_equal(st.depth, 4);
	sem_post(&gate);
	wait_done(4);
	bx_sched_destroy(s);
}

/* Two classes compete behind a busy worker: high stake is served first. */
static unsigned
low_in_first_half(unsigned reserve)
{
	struct tjob g, jobs[40];
	struct bx_sched *s;
	unsigned low = 0;

	nb_order = nb_batches = nb_done = 0;
	s = start_gated(conf(64, 100, 1, reserve), &g);
	for (unsigned i = 0; i < 40; i++) {
		/* interleaved arrivals: even ids low stake (1 TAO), odd high (10k TAO) */
		job_init(&jobs[i], i + 1, i % 2 ? 10000000000000ull : 1000000000ull, 1);
		assert_int_equal(bx_sched_submit(s, &jobs[i].job), 0);
	}
	sem_post(&gate);
	wait_done(41);
	for (unsigned i = 1; i <= 20; i++) {
		low += order[i] % 2 == 1; /* ids are i + 1: odd id = even i = low */
	}
	bx_sched_destroy(s);
	return low;
}

static void
test_sched_stake_priority_with_reserve(void **state)
{
	/* No reserve: all 20 high-stake jobs run before any low-stake one. */
	assert_int_equal(low_in_first_half(0), 0);
	/* 25 % reserve: low stake still gets about a quarter of the service. */
	assert_in_range(low_in_first_half(25), 4, 6);
}

static void
test_sched_batches_fill_token_budget(void **state)
{
	struct tjob g, jobs[9];
	struct bx_sched *s = start_gated(conf(64, 35, 8, 0), &g);

	for (unsigned i = 0; i < 9; i++) {
		job_init(&jobs[i], i + 1, 0, 10);
		assert_int_equal(bx_sched_submit(s, &jobs[i].job), 0);
	}
	sem_post(&gate);
	wait_done(10);
	/* gate alone, then 3 + 3 + 3 jobs of 10 tokens under a 35-token budget */
	assert_int_equal(nb_batches, 4);
	assert_int_equal(batch_sizes[1], 3);
	assert_int_equal(batch_sizes[2], 3);
	assert_int_equal(batch_sizes[3], 3);
	bx_sched_destroy(s);
}

static void
test_sched_cancel_and_expire_in_queue(void **state)
{
	struct tjob g, jobs[4];
	struct bx_sched_stats st;
	struct bx_sched *s = start_gated(conf(64, 100, 8, 0), &g);
	struct timespec ts = { 0, 20000000 };

	for (unsigned i = 0; i < 4; i++) {
		job_init(&jobs[i], i + 1, 0, 1);
	}
	jobs[3].job.deadline_ns = bx_time_ns() + 5000000; /* 5 ms; the gate holds 20 */
	for (unsigned i = 0; i < 4; i++) {
		assert_int_equal(bx_sched_submit(s, &jobs[i].job), 0);
	}
	bx_job_cancel(&jobs[1].job);
	nanosleep(&ts, NULL);
	sem_post(&gate);
	wait_done(5);
	assert_int_equal(jobs[0].status, BX_JOB_OK);
	assert_int_equal(jobs[1].status, BX_JOB_CANCELLED);
	assert_int_equal(jobs[2].status, BX_JOB_OK);
	assert_int_equal(jobs[3].status, BX_JOB_EXPIRED);
	assert_int_equal(nb_order, 3); /* gate, 1 and 3: the dead ones never ran */
	bx_sched_stats(s, &st);
	assert_int_equal(st.cancelled, 1);
	assert_int_equal(st.expired, 1);
	bx_sched_destroy(s);
}

/* Job 2 says its client went away: dropped as cancelled, never run. */
static bool
abandoned(const struct bx_job *job)
{
	return ((const struct tjob *)job)->id == 2;
}

static void
test_sched_drops_abandoned_jobs(void **state)
{
	struct bx_sched_conf c = conf(64, 100, 8, 0);
	struct tjob g, jobs[3];
	struct bx_sched *s;

	c.is_abandoned = abandoned;
	s = start_gated(c, &g);
	for (unsigned i = 0; i < 3; i++) {
		job_init(&jobs[i], i + 1, 0, 1);
		assert_int_equal(bx_sched_submit(s, &jobs[i].job), 0);
	}
	sem_post(&gate);
	wait_done(4);
	assert_int_equal(jobs[1].status, BX_JOB_CANCELLED);
	assert_int_equal(jobs[0].status, BX_JOB_OK);
	assert_int_equal(jobs[2].status, BX_JOB_OK);
	assert_int_equal(nb_order, 3); /* gate, 1 and 3 */
	bx_sched_destroy(s);
}

static void *
destroy_thread(void *arg)
{
	bx_sched_destroy(arg);
	return NULL;
}

static void
test_sched_shutdown_answers_everything(void **state)
{
	struct tjob g, jobs[5], after;
	struct bx_sched *s = start_gated(conf(64, 100, 8, 0), &g);
	pthread_t t;

	for (unsigned i = 0; i < 5; i++) {
		job_init(&jobs[i], i + 1, 0, 1);
		assert_int_equal(bx_sched_submit(s, &jobs[i].job), 0);
	}
	bx_sched_drain(s);
	job_init(&after, 9, 0, 1);
	assert_int_equal(bx_sched_submit(s, &after.job), -ESHUTDOWN);
	assert_false(bx_sched_idle(s));
	pthread_create(&t, NULL, destroy_thread, s);
	sem_post(&gate); /* destroy waits for the worker, which waits for the gate */
	pthread_join(t, NULL);
	assert_int_equal(nb_done, 6);
	assert_int_equal(g.status, BX_JOB_OK);
	for (unsigned i = 0; i < 5; i++) {
		assert_true(jobs[i].status == BX_JOB_SHUTDOWN || jobs[i].status == BX_JOB_OK);
	}
}

static int
failing_init(void *arg, unsigned worker, unsigned node, void **wctx)
{
	return -EIO;
}

static void
test_sched_init_failure_is_reported(void **state)
{
	struct bx_sched_conf c = conf(64, 100, 8, 0);
	struct bx_errbuf eb;
	struct bx_sched *s = NULL;

	c.init = failing_init;
	assert_int_equal(bx_sched_create(&c, &s, &eb), -EIO);
	assert_null(s);
	assert_non_null(strstr(eb.msg, "worker 0"));
	c = conf(0, 100, 8, 0);
	assert_int_equal(bx_sched_create(&c, &s, &eb), -EINVAL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_sched_runs_jobs_and_reports_failures, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_sched_deadline_rejection, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sched_queue_full, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sched_stake_priority_with_reserve, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_sched_batches_fill_token_budget, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_sched_cancel_and_expire_in_queue, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_sched_shutdown_answers_everything, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_sched_drops_abandoned_jobs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sched_init_failure_is_reported, setup,
		                                teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
