/*
 * Log-linear latency histogram in the manner of HdrHistogram (no C
 * HdrHistogram is packaged for Debian bookworm). Values are integers (the
 * tool records nanoseconds) from 0 to 2^BX_HIST_MAX_BITS - 1; larger values
 * are clamped into the top bucket and counted in `overflow`.
 *
 * Precision: values below 2^(BX_HIST_SUB_BITS + 1) (2048) have their own
 * bucket and are exact. Above that a bucket spans [lo, lo + 2^shift) with
 * lo >= 2^(BX_HIST_SUB_BITS + shift), and a percentile is reported as the
 * bucket's midpoint, so every reported value is within 2^-(SUB_BITS + 1)
 * (0.049 %) of the exact sample at that rank: three significant digits,
 * HdrHistogram's "3 significant figures" setting.
 *
 * Percentiles use the nearest-rank definition: p in [0, 100] gives the
 * sample of rank max(1, ceil(p / 100 * count)) in sorted order.
 *
 * Thread safety: none; one thread records, merge per-thread histograms.
 */
#ifndef BX_HIST_H
#define BX_HIST_H

#include <stdint.h>

#define BX_HIST_SUB_BITS 10
#define BX_HIST_MAX_BITS 40 /* 2^40 ns is 18 minutes */
#define BX_HIST_BUCKETS  ((BX_HIST_MAX_BITS - BX_HIST_SUB_BITS + 1) << BX_HIST_SUB_BITS)

struct bx_hist {
	uint64_t count;
	uint64_t min, max; /* exact */
	uint64_t overflow; /* values clamped to the top bucket */
	double sum;        /* for the mean */
	uint64_t *counts;  /* (BX_HIST_BUCKETS) */
};

/* 0 or -ENOMEM. */
int bx_hist_init(struct bx_hist *h);
void bx_hist_fini(struct bx_hist *h);
void bx_hist_reset(struct bx_hist *h);

void bx_hist_record_n(struct bx_hist *h, uint64_t v, uint64_t n);

static inline void
bx_hist_record(struct bx_hist *h, uint64_t v)
{
	bx_hist_record_n(h, v, 1);
}

/* dst += src. */
void bx_hist_merge(struct bx_hist *dst, const struct bx_hist *src);

/* Nearest-rank percentile (see above); 0 when empty. */
uint64_t bx_hist_percentile(const struct bx_hist *h, double p);
double bx_hist_mean(const struct bx_hist *h);

/* Bucket index of v and the bucket's [lo, hi] range, exposed for tests and plots. */
unsigned bx_hist_index(uint64_t v);
uint64_t bx_hist_bucket_lo(unsigned idx);
uint64_t bx_hist_bucket_hi(unsigned idx);

#endif /* BX_HIST_H */
