/* A worker's local priority queue with a reserved oldest-first lane. */
#include "jobq.h"

#include <errno.h>

#define DECAY_TOKENS (1u << 20)

int
jobq_init(struct jobq *q, unsigned cap, unsigned reserve_pct)
{
	*q = (struct jobq){ .cap = cap, .reserve_pct = BX_MIN(reserve_pct, 100u) };
	q->heap = bx_calloc(cap, sizeof(struct bx_job *));
	return q->heap != NULL ? 0 : -ENOMEM;
}

void
jobq_fini(struct jobq *q)
{
	bx_free(q->heap);
	q->heap = NULL;
}

/* a before b: higher priority, then earlier arrival. */
static bool
before(const struct bx_job *a, const struct bx_job *b)
{
	return a->priority != b->priority ? a->priority > b->priority : a->seq < b->seq;
}

static void
place(struct jobq *q, unsigned i, struct bx_job *job)
{
	q->heap[i] = job;
	job->heap_idx = i;
}

static void
sift_up(struct jobq *q, unsigned i)
{
	struct bx_job *job = q->heap[i];

	while (i > 0 && before(job, q->heap[(i - 1) / 2])) {
		place(q, i, q->heap[(i - 1) / 2]);
		i = (i - 1) / 2;
	}
	place(q, i, job);
}

static void
sift_down(struct jobq *q, unsigned i)
{
	struct bx_job *job = q->heap[i];

	for (;;) {
		unsigned c = 2 * i + 1;

		if (c >= q->nb) {
			break;
		}
		if (c + 1 < q->nb && before(q->heap[c + 1], q->heap[c])) {
			c++;
		}
		if (!before(q->heap[c], job)) {
			break;
		}
		place(q, i, q->heap[c]);
		i = c;
	}
	place(q, i, job);
}

int
jobq_push(struct jobq *q, struct bx_job *job)
{
	if (q->nb == q->cap) {
		return -ENOBUFS;
	}
	job->seq = q->next_seq++;
	job->newer = NULL;
	job->older = q->newest;
	if (q->newest != NULL) {
		q->newest->newer = job;
	} else {
		q->oldest = job;
	}
	q->newest = job;
	place(q, q->nb++, job);
	sift_up(q, q->nb - 1);
	return 0;
}

void
jobq_remove(struct jobq *q, struct bx_job *job)
{
	unsigned i = job->heap_idx;

	if (job->older != NULL) {
		job->older->newer = job->newer;
	} else {
		q->oldest = job->newer;
	}
	if (job->newer != NULL) {
		job->newer->older = job->older;
	} else {
		q->newest = job->older;
	}
	q->nb--;
	if (i != q->nb) {
		struct bx_job *moved = q->heap[q->nb];

		/* The last entry fills the hole and moves whichever way it must. */
		place(q, i, moved);
		sift_down(q, i);
		sift_up(q, moved->heap_idx);
	}
}

struct jobq_pick
jobq_peek(const struct jobq *q)
{
	struct jobq_pick p = { NULL, false, false };

	if (q->nb == 0) {
		return p;
	}
	p.job = q->heap[0];
	if (q->oldest != q->heap[0]) {
		p.contended = true;
		/* Below its share: the oldest job goes first, whatever its stake. */
		if (q->reserved * 100 < (uint64_t)q->reserve_pct * q->contended) {
			p.job = q->oldest;
			p.reserved = true;
		}
	}
	return p;
}

void
jobq_take(struct jobq *q, const struct jobq_pick *pick)
{
	if (pick->contended) {
		q->contended += pick->job->cost;
		q->reserved += pick->reserved ? pick->job->cost : 0;
		if (q->contended > DECAY_TOKENS) {
			q->contended /= 2;
			q->reserved /= 2;
		}
	}
	jobq_remove(q, pick->job);
}
