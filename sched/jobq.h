/*
 * A worker's local queue, touched only by that worker's thread: an indexed
 * max-heap by (priority, arrival) and a doubly linked arrival-order list,
 * so either end can remove a job in O(log n).
 */
#ifndef BX_SCHED_JOBQ_H
#define BX_SCHED_JOBQ_H

#include <bx/sched.h>

struct jobq {
	struct bx_job **heap; /* cap entries, nb used */
	unsigned nb, cap;
	struct bx_job *oldest, *newest;
	uint64_t next_seq;
	unsigned reserve_pct;
	/*
	 * Tokens picked while the oldest job was not the highest-priority
	 * one, and how many of those went to the oldest: the reserved lane
	 * keeps reserved * 100 >= reserve_pct * contended. Halved now and
	 * then so the share follows recent load, not all of history.
	 */
	uint64_t contended, reserved;
};

/* What to take next and through which lane. */
struct jobq_pick {
	struct bx_job *job;
	bool reserved; /* taken as the oldest, over a higher priority */
	bool contended;
};

int jobq_init(struct jobq *q, unsigned cap, unsigned reserve_pct);
void jobq_fini(struct jobq *q);
/* 0, or -ENOBUFS when cap jobs are queued. */
int jobq_push(struct jobq *q, struct bx_job *job);
/* The job the policy serves next (not removed); job NULL when empty. */
struct jobq_pick jobq_peek(const struct jobq *q);
/* Remove a job found by jobq_peek; `pick` updates the lane accounting. */
void jobq_take(struct jobq *q, const struct jobq_pick *pick);
/* Remove any queued job without accounting (expired, cancelled). */
void jobq_remove(struct jobq *q, struct bx_job *job);

#endif
