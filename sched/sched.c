/*
 * Workers and submission. Dataplane threads push jobs into a worker's MPMC
 * ring and post its semaphore; the worker moves them into its local
 * priority queue, forms a batch under the token budget and runs it.
 *
 * The finish-time estimate for a new job counts the queued tokens it would
 * wait behind: those of equal or higher priority (by power-of-two bucket
 * of priority) plus the reserved lane's share of the rest, times the
 * worker's measured ns per token. Buckets keep the estimate O(64) with no
 * scan of the queue.
 */
#include <errno.h>
#include <semaphore.h>
#include <string.h>

#include <bx/sched.h>

#include "jobq.h"

#define NB_BUCKETS 65

struct worker {
	struct bx_sched *s;
	unsigned idx;
	pthread_t thread;
	sem_t wake;
	struct bx_mpmc *inbox;
	struct jobq q; /* the worker thread's own */
	void *wctx;
	int init_ret;
	bool started;

	/* shared with submitters, atomics */
	unsigned depth;                     /* jobs in inbox + q + running */
	uint64_t queued_tokens[NB_BUCKETS]; /* by priority bucket */
	uint64_t ns_per_token;

	/* written by the worker only, read by stats */
	uint64_t expired, cancelled, executed, failed, batches;
	uint64_t batch_hist[8];
	uint64_t queue_ns_sum, compute_ns_sum;
	struct bx_lathist queue_hist, compute_hist;
} __bx_cache_aligned;

struct bx_sched {
	struct bx_sched_conf conf;
	struct worker *workers;
	unsigned nb_workers;
	int stopping; /* atomic: workers exit once their queue is empty */
	int draining; /* atomic: submit refuses */
	uint64_t submitted, rejected_full, rejected_late, rejected_expired;
	pthread_mutex_t start_mu;
	pthread_cond_t start_cv;
	unsigned nb_ready;
};

static unsigned
bucket(uint64_t priority)
{
	return priority == 0 ? 0 : 64 - (unsigned)__builtin_clzll(priority);
}

#define LOAD(p)     __atomic_load_n(p, __ATOMIC_RELAXED)
#define ADD(p, v)   __atomic_fetch_add(p, v, __ATOMIC_RELAXED)
#define SUB(p, v)   __atomic_fetch_sub(p, v, __ATOMIC_RELAXED)
#define STORE(p, v) __atomic_store_n(p, v, __ATOMIC_RELAXED)
/* Counters with one writer (the worker) and readers elsewhere. */
#define INC(p, v) STORE(p, LOAD(p) + (v))

/* Tokens a job of this priority would wait behind on worker w. */
static uint64_t
tokens_ahead(const struct worker *w, uint64_t priority, unsigned reserve_pct)
{
	unsigned b = bucket(priority);
	uint64_t ahead = 0, below = 0;

	for (unsigned i = 0; i < NB_BUCKETS; i++) {
		uint64_t t = LOAD(&w->queued_tokens[i]);

		if (i >= b) {
			ahead += t;
		} else {
			below += t;
		}
	}
	return ahead + below * reserve_pct / 100;
}

/* The worker that would finish the job first, and when (ns from now). */
static struct worker *
choose_worker(struct bx_sched *s, const struct bx_job *job, uint64_t *wait_ns)
{
	struct worker *best = NULL;

	for (unsigned i = 0; i < s->nb_workers; i++) {
		struct worker *w = &s->workers[i];
		uint64_t ns;

		if (LOAD(&w->depth) >= s->conf.queue_max) {
			continue;
		}
		ns = (tokens_ahead(w, job->priority, s->conf.reserve_pct) + job->cost) *
		     LOAD(&w->ns_per_token);
		if (best == NULL || ns < *wait_ns) {
			best = w;
			*wait_ns = ns;
		}
	}
	return best;
}

int
bx_sched_submit(struct bx_sched *s, struct bx_job *job)
{
	uint64_t now = bx_time_ns(), wait_ns = 0;
	struct worker *w;

	if (LOAD(&s->draining)) {
		return -ESHUTDOWN;
	}
	if (job->deadline_ns != 0 && job->deadline_ns <= now) {
		ADD(&s->rejected_expired, 1);
		return -ETIMEDOUT;
	}
	job->cost = BX_MAX(job->cost, 1u);
	w = choose_worker(s, job, &wait_ns);
	if (w == NULL) {
		ADD(&s->rejected_full, 1);
		return -EBUSY;
	}
	if (job->deadline_ns != 0 && now + wait_ns > job->deadline_ns) {
		ADD(&s->rejected_late, 1);
		return -EBUSY;
	}
	/* depth may overshoot queue_max by the racing submitters; the inbox holds 2x. */
	ADD(&w->depth, 1);
	ADD(&w->queued_tokens[bucket(job->priority)], job->cost);
	job->submit_ns = now;
	job->cancelled = 0;
	if (bx_mpmc_enqueue_burst(w->inbox, (void *const *)&job, 1) != 1) {
		SUB(&w->depth, 1);
		SUB(&w->queued_tokens[bucket(job->priority)], job->cost);
		ADD(&s->rejected_full, 1);
		return -EBUSY;
	}
	ADD(&s->submitted, 1);
	sem_post(&w->wake);
	return 0;
}

void
bx_job_cancel(struct bx_job *job)
{
	__atomic_store_n(&job->cancelled, 1, __ATOMIC_RELEASE);
}

/* Forget a job (it leaves the queue accounting), then tell its owner. */
static void
finish(struct worker *w, struct bx_job *job, enum bx_job_status status)
{
	SUB(&w->queued_tokens[bucket(job->priority)], job->cost);
	SUB(&w->depth, 1);
	job->done(job, status);
}

static void
drain_inbox(struct worker *w)
{
	struct bx_job *jobs[32];
	unsigned n;

	while ((n = bx_mpmc_dequeue_burst(w->inbox, (void **)jobs, BX_ARRAY_SIZE(jobs))) > 0) {
		for (unsigned i = 0; i < n; i++) {
			/* Cannot fail: the queue holds as many as the inbox. */
			jobq_push(&w->q, jobs[i]);
		}
	}
}

/* A queued job that must not run: expired or cancelled. */
static bool
drop_if_dead(struct worker *w, struct bx_job *job, uint64_t now)
{
	if (__atomic_load_n(&job->cancelled, __ATOMIC_ACQUIRE) ||
	    (w->s->conf.is_abandoned != NULL && w->s->conf.is_abandoned(job))) {
		jobq_remove(&w->q, job);
		INC(&w->cancelled, 1);
		finish(w, job, BX_JOB_CANCELLED);
		return true;
	}
	if (job->deadline_ns != 0 && job->deadline_ns <= now) {
		jobq_remove(&w->q, job);
		INC(&w->expired, 1);
		finish(w, job, BX_JOB_EXPIRED);
		return true;
	}
	return false;
}

/* Greedy fill under the token budget; never waits for more work. */
static unsigned
form_batch(struct worker *w, struct bx_job **batch, uint64_t *tokens)
{
	const struct bx_sched_conf *c = &w->s->conf;
	uint64_t now = bx_time_ns();
	unsigned n = 0;

	*tokens = 0;
	while (n < c->batch_jobs_max) {
		struct jobq_pick p = jobq_peek(&w->q);

		if (p.job == NULL) {
			break;
		}
		if (drop_if_dead(w, p.job, now)) {
			continue;
		}
		if (n > 0 && *tokens + p.job->cost > c->batch_tokens) {
			break;
		}
		jobq_take(&w->q, &p);
		batch[n++] = p.job;
		*tokens += p.job->cost;
	}
	return n;
}

static void
account(struct worker *w, unsigned n, uint64_t tokens, uint64_t t0, uint64_t t1)
{
	uint64_t per = (t1 - t0) / BX_MAX(tokens, 1u), old = LOAD(&w->ns_per_token);

	/* EWMA with weight 1/8: follows the load without jumping on one batch. */
	STORE(&w->ns_per_token, BX_MAX((old * 7 + per) / 8, 1u));
	INC(&w->batches, 1);
	INC(&w->batch_hist[BX_MIN(31 - __builtin_clz(n), 7)], 1);
	INC(&w->compute_ns_sum, (t1 - t0) * n);
	for (unsigned i = 0; i < n; i++) {
		bx_lathist_record(&w->compute_hist, t1 - t0);
	}
}

static void
run_batch(struct worker *w, struct bx_job **batch, unsigned n, uint64_t tokens)
{
	uint64_t t0 = bx_time_ns(), t1;
	int ret;

	for (unsigned i = 0; i < n; i++) {
		batch[i]->start_ns = t0;
		batch[i]->result = 0;
		INC(&w->queue_ns_sum, t0 - batch[i]->submit_ns);
		bx_lathist_record(&w->queue_hist, t0 - batch[i]->submit_ns);
	}
	ret = w->s->conf.exec(w->wctx, batch, n);
	t1 = bx_time_ns();
	account(w, n, tokens, t0, t1);
	for (unsigned i = 0; i < n; i++) {
		bool ok = ret == 0 && batch[i]->result == 0;

		INC(ok ? &w->executed : &w->failed, 1);
		finish(w, batch[i], ok ? BX_JOB_OK : BX_JOB_FAILED);
	}
}

static void
worker_loop(struct worker *w)
{
	struct bx_job *batch[256];
	uint64_t tokens;

	for (;;) {
		unsigned n;

		drain_inbox(w);
		if (w->q.nb == 0) {
			if (LOAD(&w->s->stopping)) {
				return;
			}
			sem_wait(&w->wake);
			continue;
		}
		if (LOAD(&w->s->stopping)) {
			struct jobq_pick p = jobq_peek(&w->q);

			jobq_remove(&w->q, p.job);
			finish(w, p.job, BX_JOB_SHUTDOWN);
			continue;
		}
		n = form_batch(w, batch, &tokens);
		if (n > 0) {
			run_batch(w, batch, n, tokens);
		}
	}
}

static void
report_ready(struct bx_sched *s)
{
	pthread_mutex_lock(&s->start_mu);
	s->nb_ready++;
	pthread_cond_broadcast(&s->start_cv);
	pthread_mutex_unlock(&s->start_mu);
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	const struct bx_sched_worker_plan *p = &w->s->conf.plan->workers[w->idx];
	struct bx_errbuf eb;

	w->init_ret = bx_thread_pin_cpus(pthread_self(), p->cpus, p->nb_cpus, &eb);
	if (w->init_ret == 0 && w->s->conf.init != NULL) {
		/* After pinning: what init allocates and writes first lands on this node. */
		w->init_ret = w->s->conf.init(w->s->conf.arg, w->idx, p->node, &w->wctx);
	}
	report_ready(w->s);
	if (w->init_ret == 0) {
		worker_loop(w);
		if (w->s->conf.fini != NULL) {
			w->s->conf.fini(w->s->conf.arg, w->wctx);
		}
	}
	return NULL;
}

static int
worker_create(struct bx_sched *s, unsigned idx)
{
	struct worker *w = &s->workers[idx];
	int ret;

	w->s = s;
	w->idx = idx;
	w->ns_per_token = BX_MAX(s->conf.est_ns_per_token, 1u);
	ret = bx_mpmc_create(2 * s->conf.queue_max, &w->inbox);
	if (ret < 0) {
		return ret;
	}
	ret = jobq_init(&w->q, 2 * s->conf.queue_max, s->conf.reserve_pct);
	if (ret < 0) {
		return ret;
	}
	if (sem_init(&w->wake, 0, 0) < 0) {
		return -errno;
	}
	ret = pthread_create(&w->thread, NULL, worker_main, w);
	if (ret != 0) {
		sem_destroy(&w->wake);
		return -ret;
	}
	w->started = true;
	return 0;
}

static int
wait_ready(struct bx_sched *s, struct bx_errbuf *eb)
{
	pthread_mutex_lock(&s->start_mu);
	while (s->nb_ready < s->nb_workers) {
		pthread_cond_wait(&s->start_cv, &s->start_mu);
	}
	pthread_mutex_unlock(&s->start_mu);
	for (unsigned i = 0; i < s->nb_workers; i++) {
		if (s->workers[i].init_ret < 0) {
			return bx_err(eb, s->workers[i].init_ret,
			              "worker %u (cpu %u) failed to start: %s", i,
			              s->conf.plan->workers[i].cpus[0],
			              bx_strerror(s->workers[i].init_ret));
		}
	}
	return 0;
}

static int
check_conf(const struct bx_sched_conf *c, struct bx_errbuf *eb)
{
	if (c->plan == NULL || c->plan->nb_workers == 0 || c->exec == NULL) {
		return bx_err(eb, EINVAL,
		              "scheduler needs a plan with workers and an exec function");
	}
	if (c->queue_max == 0 || c->queue_max > (1u << 20) || c->batch_tokens == 0 ||
	    c->batch_jobs_max == 0 || c->batch_jobs_max > 256 || c->reserve_pct > 100) {
		return bx_err(eb, EINVAL,
		              "scheduler limits out of range (queue 1..1M, batch jobs 1..256, "
		              "reserve 0..100 %%)");
	}
	return 0;
}

int
bx_sched_create(const struct bx_sched_conf *conf, struct bx_sched **out, struct bx_errbuf *eb)
{
	struct bx_sched *s;
	int ret;

	ret = check_conf(conf, eb);
	if (ret < 0) {
		return ret;
	}
	s = bx_calloc(1, sizeof(*s));
	if (s == NULL) {
		return bx_err(eb, ENOMEM, "out of memory");
	}
	s->conf = *conf;
	pthread_mutex_init(&s->start_mu, NULL);
	pthread_cond_init(&s->start_cv, NULL);
	s->workers = bx_aligned_alloc(BX_CACHE_LINE, conf->plan->nb_workers * sizeof(*s->workers));
	if (s->workers == NULL) {
		bx_free(s);
		return bx_err(eb, ENOMEM, "out of memory");
	}
	memset(s->workers, 0, conf->plan->nb_workers * sizeof(*s->workers));
	for (ret = 0; s->nb_workers < conf->plan->nb_workers && ret == 0; s->nb_workers++) {
		ret = worker_create(s, s->nb_workers);
	}
	if (ret < 0) {
		bx_err(eb, ret, "worker %u: %s", s->nb_workers - 1, bx_strerror(ret));
	} else {
		ret = wait_ready(s, eb);
	}
	if (ret < 0) {
		bx_sched_destroy(s);
		return ret;
	}
	*out = s;
	return 0;
}

/* Jobs a submitter slipped into the inbox after the worker's last look. */
static void
shutdown_leftovers(struct worker *w)
{
	struct bx_job *job;

	while (bx_mpmc_dequeue_burst(w->inbox, (void **)&job, 1) == 1) {
		finish(w, job, BX_JOB_SHUTDOWN);
	}
}

void
bx_sched_destroy(struct bx_sched *s)
{
	if (s == NULL) {
		return;
	}
	STORE(&s->draining, 1);
	__atomic_store_n(&s->stopping, 1, __ATOMIC_RELEASE);
	for (unsigned i = 0; i < s->nb_workers; i++) {
		struct worker *w = &s->workers[i];

		if (w->started) {
			sem_post(&w->wake);
			pthread_join(w->thread, NULL);
			sem_destroy(&w->wake);
			shutdown_leftovers(w);
		}
		jobq_fini(&w->q);
		bx_mpmc_destroy(w->inbox);
	}
	pthread_cond_destroy(&s->start_cv);
	pthread_mutex_destroy(&s->start_mu);
	bx_free(s->workers);
	bx_free(s);
}

void
bx_sched_drain(struct bx_sched *s)
{
	STORE(&s->draining, 1);
}

bool
bx_sched_idle(const struct bx_sched *s)
{
	for (unsigned i = 0; i < s->nb_workers; i++) {
		if (LOAD(&s->workers[i].depth) != 0) {
			return false;
		}
	}
	return true;
}

unsigned
bx_sched_nb_workers(const struct bx_sched *s)
{
	return s->nb_workers;
}

void
bx_sched_stats(const struct bx_sched *s, struct bx_sched_stats *st)
{
	*st = (struct bx_sched_stats){
		.submitted = LOAD(&s->submitted),
		.rejected_full = LOAD(&s->rejected_full),
		.rejected_late = LOAD(&s->rejected_late),
		.rejected_expired = LOAD(&s->rejected_expired),
		.ns_per_token = LOAD(&s->workers[0].ns_per_token),
	};
	for (unsigned i = 0; i < s->nb_workers; i++) {
		const struct worker *w = &s->workers[i];

		st->expired += LOAD(&w->expired);
		st->cancelled += LOAD(&w->cancelled);
		st->executed += LOAD(&w->executed);
		st->failed += LOAD(&w->failed);
		st->batches += LOAD(&w->batches);
		st->queue_ns_sum += LOAD(&w->queue_ns_sum);
		st->compute_ns_sum += LOAD(&w->compute_ns_sum);
		st->depth += LOAD(&w->depth);
		bx_lathist_merge(&st->queue_hist, &w->queue_hist);
		bx_lathist_merge(&st->compute_hist, &w->compute_hist);
		for (unsigned b = 0; b < 8; b++) {
			st->batch_jobs_hist[b] += LOAD(&w->batch_hist[b]);
		}
	}
}
