/*
 * Open-loop arrival schedules: the intended send time of every request,
 * fixed in advance of (and independent from) how fast the miner answers,
 * so latency can be measured from the intended time (no coordinated
 * omission, peers.md §5).
 *
 *   BX_ARRIVAL_CONSTANT  request k at start + k / rate (computed from k, so no drift)
 *   BX_ARRIVAL_POISSON   exponential gaps with mean 1 / rate from a seeded
 *                        splitmix64/xoshiro256** generator: the same seed
 *                        gives the same schedule
 */
#ifndef BX_ARRIVAL_H
#define BX_ARRIVAL_H

#include <stdint.h>

enum bx_arrival_kind {
	BX_ARRIVAL_CONSTANT,
	BX_ARRIVAL_POISSON,
};

struct bx_arrival {
	enum bx_arrival_kind kind;
	double rate;       /* requests per second, > 0 */
	uint64_t start_ns; /* time of request 0 */
	uint64_t k;        /* requests scheduled so far */
	double t_ns;       /* Poisson: offset of the next request from start */
	uint64_t s[4];     /* xoshiro256** state */
};

/* 0, or -EINVAL (rate not positive and finite). */
int bx_arrival_init(struct bx_arrival *a, enum bx_arrival_kind kind, double rate, uint64_t seed,
                    uint64_t start_ns);

/* The intended send time (ns, same clock as start_ns) of the next request. */
uint64_t bx_arrival_next(struct bx_arrival *a);

/* A uniform double in [0, 1) from the generator (also used for synapse mixes). */
double bx_arrival_uniform(struct bx_arrival *a);

#endif /* BX_ARRIVAL_H */
