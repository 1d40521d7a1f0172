/*
 * bx sched: from dataplane threads to pinned inference workers.
 *
 * A job is submitted by a dataplane thread and executed in a batch by one
 * worker thread; when it is done (or dropped) the worker calls the job's
 * done() and forgets it. Invariants:
 *  - submission never blocks: a job that cannot be answered in time is
 *    refused at once (the axon answers 503, or 408 past the deadline);
 *  - when work queues up, the worker serves higher stake first, but a
 *    reserved share of the tokens goes to the oldest job, whoever sent it;
 *  - a batch grows only with load: the worker takes what is queued, up to
 *    a token budget, and never waits for more (TEI's rule);
 *  - jobs whose deadline passed or whose client went away are dropped when
 *    the worker reaches them, never computed.
 */
#ifndef BX_SCHED_H
#define BX_SCHED_H

#include <stdbool.h>
#include <stdint.h>

#include <bx/platform.h>

/* What happened to a job, passed to done(). */
enum bx_job_status {
	BX_JOB_OK,        /* executed; results are wherever exec put them */
	BX_JOB_FAILED,    /* exec reported an error for this job */
	BX_JOB_EXPIRED,   /* deadline passed while queued: not computed */
	BX_JOB_CANCELLED, /* bx_job_cancel() before it ran: not computed */
	BX_JOB_SHUTDOWN,  /* the scheduler stopped before it ran */
};

struct bx_job;
typedef void(bx_job_done_fn)(struct bx_job *job, enum bx_job_status status);

/*
 * Caller-owned; filled before submit and untouched by the caller until
 * done() runs (except bx_job_cancel). Embed it in the request context.
 */
struct bx_job {
	/* set by the caller */
	uint64_t deadline_ns; /* bx_time_ns() clock; 0: none */
	uint64_t priority;    /* higher first, e.g. stake in rao */
	uint32_t cost;        /* tokens this job adds to a batch (>= 1) */
	uint32_t kind;        /* the caller's job type, passed through to exec */
	bx_job_done_fn *done; /* called once, on the worker thread */
	void *arg;            /* the caller's */
	int result;           /* exec's per-job result (0 or -errno) */

	/* the scheduler's */
	uint64_t submit_ns;
	uint64_t start_ns; /* when its batch began */
	int cancelled;     /* atomic */
	unsigned heap_idx;
	struct bx_job *older, *newer; /* arrival order in the worker's queue */
	uint64_t seq;
};

/*
 * Runs one batch on a worker thread: fill jobs[i]->result (0 or -errno)
 * for each. wctx is what init() returned for this worker.
 */
typedef int(bx_sched_exec_fn)(void *wctx, struct bx_job *const *jobs, unsigned n);
/*
 * Runs on each worker thread after it is pinned, before any job: create
 * per-worker state there (oneDNN primitives, node-local weights: first
 * touch). Returns 0 or -errno (start fails).
 */
typedef int(bx_sched_init_fn)(void *arg, unsigned worker, unsigned node, void **wctx);
typedef void(bx_sched_fini_fn)(void *arg, void *wctx);

#define BX_SCHED_WORKERS_MAX 64
#define BX_SCHED_CPUS_MAX    64

/* One worker: a pinned thread (and its team) on a slice of CPUs. */
struct bx_sched_worker_plan {
	unsigned cpus[BX_SCHED_CPUS_MAX];
	unsigned nb_cpus; /* team size: the worker and its OpenMP threads */
	unsigned node;    /* NUMA node of the slice */
};

struct bx_sched_plan {
	unsigned dp_cpus[BX_SCHED_CPUS_MAX]; /* dataplane threads, one CPU each */
	unsigned nb_dp;
	struct bx_sched_worker_plan workers[BX_SCHED_WORKERS_MAX];
	unsigned nb_workers;
};

/*
 * Split the machine: per NUMA node, the first `dp_per_node` cores go to
 * the dataplane; the rest of each L3 domain becomes one worker of at most
 * `threads_max` threads (more cores: more workers). A machine too small to
 * split (one core) shares its core. Returns 0 or -EINVAL with eb set.
 */
int bx_sched_plan_auto(const struct bx_topo *topo, unsigned dp_per_node, unsigned threads_max,
                       struct bx_sched_plan *plan, struct bx_errbuf *eb);
/* One line per dataplane and worker slice, for start-up logs. */
int bx_sched_plan_describe(const struct bx_sched_plan *plan, char *buf, size_t len);

struct bx_sched_conf {
	const struct bx_sched_plan *plan;
	unsigned queue_max;        /* queued jobs per worker */
	unsigned batch_tokens;     /* token budget of one batch */
	unsigned batch_jobs_max;   /* jobs in one batch */
	unsigned reserve_pct;      /* share of tokens for oldest-first service, 0..100 */
	uint64_t est_ns_per_token; /* first guess of compute cost, refined as it runs */
	bx_sched_init_fn *init;
	bx_sched_exec_fn *exec;
	bx_sched_fini_fn *fini;
	/*
	 * Optional, on the worker: true when nobody waits for this job any more
	 * (its client went away); it is then dropped as BX_JOB_CANCELLED.
	 */
	bool (*is_abandoned)(const struct bx_job *job);
	void *arg;
};

struct bx_sched;

/*
 * Start the workers (each pinned per the plan, init() on its own thread).
 * Returns 0, or -errno with eb naming the worker and what failed (no
 * threads remain).
 */
int bx_sched_create(const struct bx_sched_conf *conf, struct bx_sched **out, struct bx_errbuf *eb);
/* Stop the workers: queued jobs finish with BX_JOB_SHUTDOWN. Accepts NULL. */
void bx_sched_destroy(struct bx_sched *s);

/*
 * Queue a job (ownership passes until done()). Thread-safe, never blocks.
 *   0           queued
 *   -ETIMEDOUT  its deadline has already passed (axon: 408)
 *   -EBUSY      every queue is full, or no worker can finish it before its
 *               deadline by the current estimate (axon: 503)
 *   -ESHUTDOWN  the scheduler is draining
 */
int bx_sched_submit(struct bx_sched *s, struct bx_job *job);

/* Ask that a queued job not be computed (its client went away). Thread-safe. */
void bx_job_cancel(struct bx_job *job);

/* Stop accepting, let queued work finish; true when nothing is queued or running. */
void bx_sched_drain(struct bx_sched *s);
bool bx_sched_idle(const struct bx_sched *s);

/* Counters summed over workers (a snapshot; each is monotonic but for depth). */
struct bx_sched_stats {
	uint64_t submitted;
	uint64_t rejected_full;
	uint64_t rejected_late;    /* estimated finish past deadline */
	uint64_t rejected_expired; /* deadline already passed at submit */
	uint64_t expired;          /* dropped in the queue */
	uint64_t cancelled;
	uint64_t executed;
	uint64_t failed;
	uint64_t batches;
	uint64_t batch_jobs_hist[8];    /* batches of 1, 2-3, 4-7, ... 128+ jobs */
	uint64_t queue_ns_sum;          /* submit to batch start, executed jobs */
	uint64_t compute_ns_sum;        /* batch wall time, per executed job */
	struct bx_lathist queue_hist;   /* submit to batch start, per job */
	struct bx_lathist compute_hist; /* batch wall time, per job */
	unsigned depth;                 /* queued now */
	uint64_t ns_per_token;          /* current estimate, worker 0 */
};

void bx_sched_stats(const struct bx_sched *s, struct bx_sched_stats *out);
unsigned bx_sched_nb_workers(const struct bx_sched *s);

#endif /* BX_SCHED_H */
