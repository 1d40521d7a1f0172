/*
 * Arrival schedules (arrival.h). The generator is xoshiro256** seeded by
 * splitmix64 (Blackman and Vigna), small, fast and reproducible.
 */
#include "arrival.h"

#include <errno.h>
#include <math.h>
#include <string.h>

static uint64_t
rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static uint64_t
splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t
xoshiro(uint64_t s[4])
{
	uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return r;
}

double
bx_arrival_uniform(struct bx_arrival *a)
{
	return (double)(xoshiro(a->s) >> 11) * 0x1.0p-53;
}

int
bx_arrival_init(struct bx_arrival *a, enum bx_arrival_kind kind, double rate, uint64_t seed,
                uint64_t start_ns)
{
	int i;

	if (!(rate > 0) || !isfinite(rate)) {
		return -EINVAL;
	}
	memset(a, 0, sizeof(*a));
	a->kind = kind;
	a->rate = rate;
	a->start_ns = start_ns;
	for (i = 0; i < 4; i++) {
		a->s[i] = splitmix64(&seed);
	}
	return 0;
}

uint64_t
bx_arrival_next(struct bx_arrival *a)
{
	double off;

	if (a->kind == BX_ARRIVAL_CONSTANT) {
		off = (double)a->k * 1e9 / a->rate;
	} else {
		off = a->t_ns;
		/* Inverse transform: -ln(U) / rate with U in (0, 1]. */
		a->t_ns += -log(1.0 - bx_arrival_uniform(a)) * 1e9 / a->rate;
	}
	a->k++;
	return a->start_ns + (uint64_t)off;
}
