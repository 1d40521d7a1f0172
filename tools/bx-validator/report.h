/*
 * Run reports: a summary computed once from the load engine's records, then
 * written as text (for people), JSON (every figure, for machines) and SVG
 * (latency percentiles per second, and the percentile spectrum).
 */
#ifndef BX_REPORT_H
#define BX_REPORT_H

#include <stdio.h>

#include "hist.h"
#include "load.h"

#define BX_RP_MAX_SECONDS 3600
#define BX_RP_NB_PCT      7

extern const double bx_rp_pcts[BX_RP_NB_PCT]; /* 50 90 99 99.9 99.99 99.999 100 */

struct bx_rp_second {
	uint64_t count, errors;
	uint64_t p50, p90, p99, max; /* ns */
};

struct bx_rp_summary {
	const struct bx_ld_conf *conf;
	const struct bx_ld_result *res;
	char url[160];
	char mix[128];
	double sign_rate;     /* signed requests/s this machine can build, 0 if not measured */
	uint64_t counted;     /* outside warm-up */
	uint64_t ok_in_time;  /* 200 within the timeout */
	uint64_t status[600]; /* counts per status code (0 = no status) */
	uint64_t per_kind[BX_DD_NB_KINDS], per_kind_ok[BX_DD_NB_KINDS];
	double score_sum[BX_DD_NB_KINDS];
	uint64_t scored[BX_DD_NB_KINDS];
	double rate;              /* completed requests/s over the measured window */
	double process_time_mean; /* s, over answers that carried one */
	uint64_t streams, tokens;
	double ttft_sum_s, stream_time_s;
	struct bx_hist all, ok, ttfb; /* ns */
	uint64_t pct_all[BX_RP_NB_PCT], pct_ok[BX_RP_NB_PCT], pct_ttfb[BX_RP_NB_PCT];
	unsigned nb_seconds;
	struct bx_rp_second *seconds;
};

/* 0 or -ENOMEM. The summary borrows conf and res. */
int bx_rp_summarize(struct bx_rp_summary *s, const struct bx_ld_conf *conf,
                    const struct bx_ld_result *res);
void bx_rp_fini(struct bx_rp_summary *s);

void bx_rp_text(const struct bx_rp_summary *s, FILE *f);
/* 0 or -errno (file cannot be written). */
int bx_rp_json(const struct bx_rp_summary *s, const char *path);
int bx_rp_svg(const struct bx_rp_summary *s, const char *path);

#endif /* BX_REPORT_H */
