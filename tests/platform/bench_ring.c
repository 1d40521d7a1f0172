/*
 * bench_ring: cross-core handoff rate of the SPSC and MPMC rings, with a
 * mutex-protected queue as the peer yardstick in the same run. One JSON
 * line per figure (ops/s of objects moved producer -> consumer).
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>

#include <bx/platform.h>

#include "bx_bench.h"

#define N     (4u << 20)
#define BURST 32

struct q_ops {
	const char *name;
	unsigned (*enq)(void *q, void *const *objs, unsigned n);
	unsigned (*deq)(void *q, void **objs, unsigned n);
};

/* The peer: a ring of the same size behind one pthread mutex. */
struct locked {
	pthread_mutex_t mu;
	void *slots[1024];
	unsigned head, tail;
};

static unsigned
locked_enq(void *p, void *const *objs, unsigned n)
{
	struct locked *q = p;
	unsigned i;

	pthread_mutex_lock(&q->mu);
	for (i = 0; i < n && q->head - q->tail < 1024; i++) {
		q->slots[q->head++ % 1024] = objs[i];
	}
	pthread_mutex_unlock(&q->mu);
	return i;
}

static unsigned
locked_deq(void *p, void **objs, unsigned n)
{
	struct locked *q = p;
	unsigned i;

	pthread_mutex_lock(&q->mu);
	for (i = 0; i < n && q->tail != q->head; i++) {
		objs[i] = q->slots[q->tail++ % 1024];
	}
	pthread_mutex_unlock(&q->mu);
	return i;
}

static unsigned
spsc_enq(void *q, void *const *o, unsigned n)
{
	return bx_spsc_enqueue_burst(q, o, n);
}

static unsigned
spsc_deq(void *q, void **o, unsigned n)
{
	return bx_spsc_dequeue_burst(q, o, n);
}

static unsigned
mpmc_enq(void *q, void *const *o, unsigned n)
{
	return bx_mpmc_enqueue_burst(q, o, n);
}

static unsigned
mpmc_deq(void *q, void **o, unsigned n)
{
	return bx_mpmc_dequeue_burst(q, o, n);
}

struct run {
	const struct q_ops *ops;
	void *q;
	unsigned burst;
};

static void *
producer(void *p)
{
	struct run *r = p;
	void *objs[BURST];

	for (unsigned i = 0; i < BURST; i++) {
		objs[i] = (void *)(uintptr_t)(i + 1);
	}
	for (unsigned sent = 0; sent < N;) {
		sent += r->ops->enq(r->q, objs, BX_MIN(r->burst, N - sent));
	}
	return NULL;
}

static void
run_case(const struct q_ops *ops, void *q, unsigned burst)
{
	struct run r = { ops, q, burst };
	void *objs[BURST];
	char name[64];
	pthread_t t;
	uint64_t t0 = bx_time_ns();

	pthread_create(&t, NULL, producer, &r);
	for (unsigned got = 0; got < N;) {
		got += ops->deq(q, objs, burst);
	}
	pthread_join(t, NULL);
	snprintf(name, sizeof(name), "%s_burst%u", ops->name, burst);
	bx_bench_emit("ring", name, "ops_per_s", (double)N * 1e9 / (double)(bx_time_ns() - t0),
	              "1/s");
}

int
main(void)
{
	static const struct q_ops ops[] = {
		{ "spsc", spsc_enq, spsc_deq },
		{ "mpmc", mpmc_enq, mpmc_deq },
		{ "mutex_peer", locked_enq, locked_deq },
	};
	static struct locked lq = { .mu = PTHREAD_MUTEX_INITIALIZER };
	struct bx_spsc *s;
	struct bx_mpmc *m;
	void *qs[3];

	if (bx_spsc_create(1024, &s) < 0 || bx_mpmc_create(1024, &m) < 0) {
		return 1;
	}
	qs[0] = s;
	qs[1] = m;
	qs[2] = &lq;
	for (unsigned burst = 1; burst <= BURST; burst *= 32) {
		for (int i = 0; i < 3; i++) {
			run_case(&ops[i], qs[i], burst);
		}
	}
	bx_spsc_destroy(s);
	bx_mpmc_destroy(m);
	return 0;
}
