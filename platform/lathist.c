/* Latency histograms with fixed 1-2-5 buckets (Prometheus-shaped). */
#include <bx/platform.h>

static const uint64_t bounds[BX_LATHIST_BUCKETS - 1] = {
	1000,      2000,      5000,       10000,      20000,      50000,       100000,   200000,
	500000,    1000000,   2000000,    5000000,    10000000,   20000000,    50000000, 100000000,
	200000000, 500000000, 1000000000, 2000000000, 5000000000, 10000000000,
};

uint64_t
bx_lathist_bound_ns(unsigned i)
{
	return i < BX_LATHIST_BUCKETS - 1 ? bounds[i] : UINT64_MAX;
}

void
bx_lathist_record(struct bx_lathist *h, uint64_t ns)
{
	unsigned i = 0;

	while (i < BX_LATHIST_BUCKETS - 1 && ns > bounds[i]) {
		i++;
	}
	/* Single writer: plain read-modify-write, published with relaxed stores. */
	__atomic_store_n(&h->counts[i], h->counts[i] + 1, __ATOMIC_RELAXED);
	__atomic_store_n(&h->sum_ns, h->sum_ns + ns, __ATOMIC_RELAXED);
	__atomic_store_n(&h->count, h->count + 1, __ATOMIC_RELAXED);
}

void
bx_lathist_merge(struct bx_lathist *dst, const struct bx_lathist *src)
{
	for (unsigned i = 0; i < BX_LATHIST_BUCKETS; i++) {
		dst->counts[i] += __atomic_load_n(&src->counts[i], __ATOMIC_RELAXED);
	}
	dst->sum_ns += __atomic_load_n(&src->sum_ns, __ATOMIC_RELAXED);
	dst->count += __atomic_load_n(&src->count, __ATOMIC_RELAXED);
}
