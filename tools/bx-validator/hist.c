/*
 * Log-linear histogram: 2^SUB_BITS linear sub-buckets per power of two
 * (HdrHistogram's layout with unit magnitude 1). See hist.h for precision.
 */
#include "hist.h"

#include <errno.h>
#include <math.h>
#include <string.h>

#include <bx/platform.h>

#define SUB (1u << BX_HIST_SUB_BITS)

unsigned
bx_hist_index(uint64_t v)
{
	unsigned msb, shift;

	if (v >= ((uint64_t)1 << BX_HIST_MAX_BITS)) {
		return BX_HIST_BUCKETS - 1;
	}
	if (v < 2 * (uint64_t)SUB) {
		return (unsigned)v;
	}
	msb = 63 - (unsigned)__builtin_clzll(v);
	shift = msb - BX_HIST_SUB_BITS;
	return shift * SUB + (unsigned)(v >> shift);
}

uint64_t
bx_hist_bucket_lo(unsigned idx)
{
	unsigned shift;

	if (idx < 2 * SUB) {
		return idx;
	}
	shift = idx / SUB - 1;
	return (uint64_t)(idx - shift * SUB) << shift;
}

uint64_t
bx_hist_bucket_hi(unsigned idx)
{
	unsigned shift = idx < 2 * SUB ? 0 : idx / SUB - 1;

	return bx_hist_bucket_lo(idx) + ((uint64_t)1 << shift) - 1;
}

int
bx_hist_init(struct bx_hist *h)
{
	memset(h, 0, sizeof(*h));
	h->counts = bx_calloc(BX_HIST_BUCKETS, sizeof(uint64_t));
	if (h->counts == NULL) {
		return -ENOMEM;
	}
	h->min = UINT64_MAX;
	return 0;
}

void
bx_hist_fini(struct bx_hist *h)
{
	bx_free(h->counts);
	h->counts = NULL;
}

void
bx_hist_reset(struct bx_hist *h)
{
	memset(h->counts, 0, BX_HIST_BUCKETS * sizeof(uint64_t));
	h->count = h->max = h->overflow = 0;
	h->sum = 0;
	h->min = UINT64_MAX;
}

void
bx_hist_record_n(struct bx_hist *h, uint64_t v, uint64_t n)
{
	if (n == 0) {
		return;
	}
	if (v >= ((uint64_t)1 << BX_HIST_MAX_BITS)) {
		h->overflow += n;
	}
	h->counts[bx_hist_index(v)] += n;
	h->count += n;
	h->sum += (double)v * (double)n;
	h->min = BX_MIN(h->min, v);
	h->max = BX_MAX(h->max, v);
}

void
bx_hist_merge(struct bx_hist *dst, const struct bx_hist *src)
{
	unsigned i;

	if (src->count == 0) {
		return;
	}
	for (i = 0; i < BX_HIST_BUCKETS; i++) {
		dst->counts[i] += src->counts[i];
	}
	dst->count += src->count;
	dst->overflow += src->overflow;
	dst->sum += src->sum;
	dst->min = BX_MIN(dst->min, src->min);
	dst->max = BX_MAX(dst->max, src->max);
}

uint64_t
bx_hist_percentile(const struct bx_hist *h, double p)
{
	uint64_t rank, seen = 0, lo, hi, mid;
	unsigned i;

	if (h->count == 0) {
		return 0;
	}
	p = p < 0 ? 0 : (p > 100 ? 100 : p);
	/* The tolerance keeps 99.9 % of 1000 at rank 999 despite binary fractions. */
	rank = (uint64_t)ceil(p / 100.0 * (double)h->count * (1 - 1e-12));
	rank = rank == 0 ? 1 : (rank > h->count ? h->count : rank);
	for (i = 0; i < BX_HIST_BUCKETS; i++) {
		seen += h->counts[i];
		if (seen >= rank) {
			break;
		}
	}
	lo = bx_hist_bucket_lo(i);
	hi = bx_hist_bucket_hi(i);
	mid = lo + (hi - lo) / 2;
	/* The exact extremes are known: never report outside them. */
	return BX_MIN(BX_MAX(mid, h->min), h->max);
}

double
bx_hist_mean(const struct bx_hist *h)
{
	return h->count == 0 ? 0 : h->sum / (double)h->count;
}
