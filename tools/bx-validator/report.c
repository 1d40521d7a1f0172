/* Run reports (report.h). */
#include "report.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bx/platform.h>

const double bx_rp_pcts[BX_RP_NB_PCT] = { 50, 90, 99, 99.9, 99.99, 99.999, 100 };

static void
count_rec(struct bx_rp_summary *s, const struct bx_ld_rec *r, double to_s)
{
	uint64_t lat = (uint64_t)r->lat_us10 * 100, ttfb = (uint64_t)r->ttfb_us10 * 100;

	s->counted++;
	s->status[r->status < 600 ? r->status : 0]++;
	s->per_kind[r->kind]++;
	bx_hist_record(&s->all, lat);
	if (r->status == 200) {
		s->per_kind_ok[r->kind]++;
		bx_hist_record(&s->ok, lat);
		bx_hist_record(&s->ttfb, ttfb);
		if ((double)lat <= to_s * 1e9) {
			s->ok_in_time++;
		}
	}
	if (r->score >= 0) {
		s->score_sum[r->kind] += r->score;
		s->scored[r->kind]++;
	}
	if (r->flags & BX_LD_F_STREAM) {
		s->streams++;
		s->tokens += r->tokens;
		s->ttft_sum_s += (double)ttfb / 1e9;
		s->stream_time_s += (double)(lat - ttfb) / 1e9;
	}
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Exact per-second percentiles of latency, by intended send second. */
static int
timeline(struct bx_rp_summary *s)
{
	const struct bx_ld_result *res = s->res;
	uint64_t *lat, *off, i;
	unsigned sec, nb = 0;

	for (i = 0; i < res->nb_recs; i++) {
		nb = BX_MAX(nb, (unsigned)(res->recs[i].t_ns / 1000000000ull) + 1);
	}
	nb = BX_MIN(nb, BX_RP_MAX_SECONDS);
	s->nb_seconds = nb;
	s->seconds = bx_calloc(nb + 1, sizeof(*s->seconds));
	lat = bx_calloc(res->nb_recs + 1, sizeof(uint64_t));
	off = bx_calloc(nb + 2, sizeof(uint64_t));
	if (s->seconds == NULL || lat == NULL || off == NULL) {
		bx_free(lat);
		bx_free(off);
		return -ENOMEM;
	}
	for (i = 0; i < res->nb_recs; i++) {
		sec = (unsigned)(res->recs[i].t_ns / 1000000000ull);
		if (sec < nb) {
			off[sec + 2]++;
		}
	}
	for (sec = 0; sec < nb; sec++) {
		off[sec + 2] += off[sec + 1];
	}
	for (i = 0; i < res->nb_recs; i++) {
		const struct bx_ld_rec *r = &res->recs[i];

		sec = (unsigned)(r->t_ns / 1000000000ull);
		if (sec < nb) {
			lat[off[sec + 1]++] = (uint64_t)r->lat_us10 * 100;
			s->seconds[sec].errors += r->status != 200;
		}
	}
	for (sec = 0; sec < nb; sec++) {
		struct bx_rp_second *q = &s->seconds[sec];
		uint64_t lo = sec ? off[sec] : 0, n = off[sec + 1] - lo, *v = lat + lo;

		q->count = n;
		if (n == 0) {
			continue;
		}
		qsort(v, n, sizeof(*v), cmp_u64);
		q->p50 = v[(uint64_t)ceil(0.5 * (double)n) - 1];
		q->p90 = v[(uint64_t)ceil(0.9 * (double)n) - 1];
		q->p99 = v[(uint64_t)ceil(0.99 * (double)n) - 1];
		q->max = v[n - 1];
	}
	bx_free(lat);
	bx_free(off);
	return 0;
}

int
bx_rp_summarize(struct bx_rp_summary *s, const struct bx_ld_conf *conf,
                const struct bx_ld_result *res)
{
	double pt_sum = 0, window;
	uint64_t pt_n = 0, i;
	int k;

	memset(s, 0, sizeof(*s));
	s->conf = conf;
	s->res = res;
	if (bx_hist_init(&s->all) < 0 || bx_hist_init(&s->ok) < 0 || bx_hist_init(&s->ttfb) < 0) {
		bx_rp_fini(s);
		return -ENOMEM;
	}
	for (i = 0; i < res->nb_recs; i++) {
		const struct bx_ld_rec *r = &res->recs[i];

		if (r->flags & BX_LD_F_WARMUP) {
			continue;
		}
		count_rec(s, r, conf->timeout_s);
		if (r->process_time >= 0) {
			pt_sum += r->process_time;
			pt_n++;
		}
	}
	s->process_time_mean = pt_n ? pt_sum / (double)pt_n : -1;
	window = BX_MAX(conf->duration_s - conf->warmup_s, 1e-9);
	s->rate = (double)s->counted / window;
	for (k = 0; k < BX_RP_NB_PCT; k++) {
		s->pct_all[k] = bx_hist_percentile(&s->all, bx_rp_pcts[k]);
		s->pct_ok[k] = bx_hist_percentile(&s->ok, bx_rp_pcts[k]);
		s->pct_ttfb[k] = bx_hist_percentile(&s->ttfb, bx_rp_pcts[k]);
	}
	if (timeline(s) < 0) {
		bx_rp_fini(s);
		return -ENOMEM;
	}
	return 0;
}

void
bx_rp_fini(struct bx_rp_summary *s)
{
	bx_hist_fini(&s->all);
	bx_hist_fini(&s->ok);
	bx_hist_fini(&s->ttfb);
	bx_free(s->seconds);
	s->seconds = NULL;
}

static const char *
status_name(unsigned st)
{
	switch (st) {
	case 0:
		return "no status in the answer";
	case 200:
		return "success";
	case 401:
		return "not verified";
	case 403:
		return "blacklisted";
	case 404:
		return "unknown synapse";
	case 408:
		return "timeout";
	case 422:
		return "response not parseable";
	case 429:
		return "rate limited";
	case 500:
		return "miner error";
	case 503:
		return "unavailable (the miner's 503, or no connection)";
	default:
		return "";
	}
}

void
bx_rp_text(const struct bx_rp_summary *s, FILE *f)
{
	const struct bx_ld_conf *c = s->conf;
	const struct bx_ld_result *r = s->res;
	unsigned st;
	int k;

	fprintf(f, "bx-validator: %s, %s, %s%s, %u connections, %u threads, %u hotkeys\n", s->url,
	        s->mix,
	        c->rate > 0 ? (c->arrival == BX_ARRIVAL_POISSON ? "open loop Poisson" :
	                                                          "open loop constant") :
	                      "closed loop",
	        "", c->connections, c->threads, c->nb_ids);
	if (c->rate > 0) {
		fprintf(f, "  target rate        %.0f req/s\n", c->rate);
	}
	fprintf(f, "  duration           %.1f s (warm-up %.1f s), timeout %.1f s\n", c->duration_s,
	        c->warmup_s, c->timeout_s);
	fprintf(f, "  sent               %" PRIu64 " (dropped by a full backlog: %" PRIu64 ")\n",
	        (uint64_t)r->sent, (uint64_t)r->dropped);
	fprintf(f, "  measured           %" PRIu64 " requests, %.1f req/s\n", (uint64_t)s->counted,
	        s->rate);
	fprintf(f, "  success in time    %" PRIu64 " (%.2f %%)\n", (uint64_t)s->ok_in_time,
	        s->counted ? 100.0 * (double)s->ok_in_time / (double)s->counted : 0.0);
	for (st = 0; st < 600; st++) {
		if (s->status[st]) {
			fprintf(f, "  status %3u         %" PRIu64 "  %s\n", st,
			        (uint64_t)s->status[st], status_name(st));
		}
	}
	fprintf(f, "  latency (all)     ");
	for (k = 0; k < BX_RP_NB_PCT; k++) {
		fprintf(f, " p%g=%.3fms", bx_rp_pcts[k], (double)s->pct_all[k] / 1e6);
	}
	fprintf(f, "\n  latency mean       %.3f ms (measured from the %s)\n",
	        bx_hist_mean(&s->all) / 1e6,
	        c->rate > 0 ? "intended send time: open loop" : "actual send: closed loop");
	fprintf(f, "  first byte (200)  ");
	for (k = 0; k < 3; k++) {
		fprintf(f, " p%g=%.3fms", bx_rp_pcts[k], (double)s->pct_ttfb[k] / 1e6);
	}
	fprintf(f, "\n");
	if (s->process_time_mean >= 0) {
		fprintf(f, "  miner process_time mean %.3f ms\n", s->process_time_mean * 1e3);
	}
	if (s->streams) {
		fprintf(f,
		        "  streams            %" PRIu64
		        ", time to first token %.3f ms, %.1f tokens/s\n",
		        (uint64_t)s->streams, s->ttft_sum_s / (double)s->streams * 1e3,
		        s->stream_time_s > 0 ? (double)s->tokens / s->stream_time_s : 0.0);
	}
	for (k = 0; k < BX_DD_NB_KINDS; k++) {
		if (s->per_kind[k]) {
			fprintf(f, "  %-24s %" PRIu64 " sent, %" PRIu64 " ok",
			        bx_dd_kind_name((enum bx_dd_kind)k), (uint64_t)s->per_kind[k],
			        (uint64_t)s->per_kind_ok[k]);
			if (s->scored[k]) {
				fprintf(f, ", mean score %.4f over %" PRIu64 "",
				        s->score_sum[k] / (double)s->scored[k],
				        (uint64_t)s->scored[k]);
			}
			fprintf(f, "\n");
		}
	}
	fprintf(f, "  response signatures ok %" PRIu64 ", failed %" PRIu64 ", absent %" PRIu64 "\n",
	        (uint64_t)r->sig_ok, (uint64_t)r->sig_bad, (uint64_t)r->sig_absent);
	if (s->sign_rate > 0) {
		fprintf(f,
		        "  client ceiling     %.0f signed requests/s per thread (this machine)\n",
		        s->sign_rate);
	}
}

static void
json_pcts(FILE *f, const char *name, const uint64_t *v)
{
	int k;

	fprintf(f, "\"%s\": {", name);
	for (k = 0; k < BX_RP_NB_PCT; k++) {
		fprintf(f, "%s\"p%g\": %" PRIu64 "", k ? ", " : "", bx_rp_pcts[k], (uint64_t)v[k]);
	}
	fprintf(f, "}");
}

static void
json_conf(FILE *f, const struct bx_rp_summary *s)
{
	const struct bx_ld_conf *c = s->conf;

	fprintf(f, "  \"url\": \"%s\",\n  \"mix\": \"%s\",\n", s->url, s->mix);
	fprintf(f,
	        "  \"config\": {\"mode\": \"%s\", \"rate\": %.3f, \"arrival\": \"%s\", "
	        "\"connections\": %u, \"threads\": %u, \"hotkeys\": %u, \"duration_s\": %.3f, "
	        "\"warmup_s\": %.3f, \"timeout_s\": %.3f, \"seed\": %" PRIu64 "},\n",
	        c->rate > 0 ? "open" : "closed", c->rate,
	        c->arrival == BX_ARRIVAL_POISSON ? "poisson" : "constant", c->connections,
	        c->threads, c->nb_ids, c->duration_s, c->warmup_s, c->timeout_s, (uint64_t)c->seed);
}

int
bx_rp_json(const struct bx_rp_summary *s, const char *path)
{
	const struct bx_ld_result *r = s->res;
	FILE *f = fopen(path, "w");
	unsigned st, i;
	int k, first = 1;

	if (f == NULL) {
		return -errno;
	}
	fprintf(f, "{\n");
	json_conf(f, s);
	fprintf(f,
	        "  \"sent\": %" PRIu64 ", \"dropped\": %" PRIu64 ", \"measured\": %" PRIu64
	        ", \"rate\": %.3f, "
	        "\"success_in_time\": %" PRIu64 ",\n  \"status\": {",
	        (uint64_t)r->sent, (uint64_t)r->dropped, (uint64_t)s->counted, s->rate,
	        (uint64_t)s->ok_in_time);
	for (st = 0; st < 600; st++) {
		if (s->status[st]) {
			fprintf(f, "%s\"%u\": %" PRIu64 "", first ? "" : ", ", st,
			        (uint64_t)s->status[st]);
			first = 0;
		}
	}
	fprintf(f,
	        "},\n  \"latency_ns\": {\"mean\": %.0f, \"min\": %" PRIu64 ", \"max\": %" PRIu64
	        ", ",
	        bx_hist_mean(&s->all), (uint64_t)(s->all.count ? s->all.min : 0),
	        (uint64_t)s->all.max);
	json_pcts(f, "all", s->pct_all);
	fprintf(f, ", ");
	json_pcts(f, "success", s->pct_ok);
	fprintf(f, ", ");
	json_pcts(f, "first_byte", s->pct_ttfb);
	fprintf(f, ", \"precision\": \"nearest rank, within 2^-11 relative\"},\n");
	fprintf(f, "  \"process_time_mean_s\": %.6f,\n", s->process_time_mean);
	fprintf(f,
	        "  \"streams\": {\"count\": %" PRIu64 ", \"tokens\": %" PRIu64
	        ", \"ttft_mean_s\": %.6f, "
	        "\"tokens_per_s\": %.3f},\n",
	        (uint64_t)s->streams, (uint64_t)s->tokens,
	        s->streams ? s->ttft_sum_s / (double)s->streams : 0.0,
	        s->stream_time_s > 0 ? (double)s->tokens / s->stream_time_s : 0.0);
	fprintf(f, "  \"synapses\": {");
	for (k = 0, first = 1; k < BX_DD_NB_KINDS; k++) {
		if (s->per_kind[k] == 0) {
			continue;
		}
		fprintf(f,
		        "%s\"%s\": {\"sent\": %" PRIu64 ", \"ok\": %" PRIu64
		        ", \"scored\": %" PRIu64 ", \"mean_score\": %.6f}",
		        first ? "" : ", ", bx_dd_kind_name((enum bx_dd_kind)k),
		        (uint64_t)s->per_kind[k], (uint64_t)s->per_kind_ok[k],
		        (uint64_t)s->scored[k],
		        s->scored[k] ? s->score_sum[k] / (double)s->scored[k] : 0.0);
		first = 0;
	}
	fprintf(f,
	        "},\n  \"response_signatures\": {\"ok\": %" PRIu64 ", \"failed\": %" PRIu64
	        ", \"absent\": %" PRIu64 "},\n",
	        (uint64_t)r->sig_ok, (uint64_t)r->sig_bad, (uint64_t)r->sig_absent);
	fprintf(f, "  \"client_sign_rate_per_thread\": %.1f,\n  \"timeline\": [", s->sign_rate);
	for (i = 0; i < s->nb_seconds; i++) {
		const struct bx_rp_second *q = &s->seconds[i];

		fprintf(f,
		        "%s\n    {\"t\": %u, \"count\": %" PRIu64 ", \"errors\": %" PRIu64
		        ", \"p50_ns\": %" PRIu64 ", "
		        "\"p90_ns\": %" PRIu64 ", \"p99_ns\": %" PRIu64 ", \"max_ns\": %" PRIu64
		        "}",
		        i ? "," : "", i, (uint64_t)q->count, (uint64_t)q->errors, (uint64_t)q->p50,
		        (uint64_t)q->p90, (uint64_t)q->p99, (uint64_t)q->max);
	}
	fprintf(f, "\n  ]\n}\n");
	return fclose(f) == 0 ? 0 : -EIO;
}

/* ======================= SVG ======================= */

struct axis {
	double x0, y0, w, h;           /* plot area, px */
	double xmin, xmax, lmin, lmax; /* x range; y as log10(ms) */
};

static double
ax_x(const struct axis *a, double x)
{
	return a->x0 + (x - a->xmin) / (a->xmax - a->xmin) * a->w;
}

static double
ax_y(const struct axis *a, double ms)
{
	double l = log10(BX_MAX(ms, 1e-4));

	l = BX_MIN(BX_MAX(l, a->lmin), a->lmax);
	return a->y0 + a->h - (l - a->lmin) / (a->lmax - a->lmin) * a->h;
}

static void
svg_frame(FILE *f, const struct axis *a, const char *title, const char *xlabel)
{
	int e;

	fprintf(f,
	        "<rect x='%.0f' y='%.0f' width='%.0f' height='%.0f' fill='none' stroke='#444'/>\n",
	        a->x0, a->y0, a->w, a->h);
	fprintf(f, "<text x='%.0f' y='%.0f' font-size='14'>%s</text>\n", a->x0, a->y0 - 8, title);
	fprintf(f, "<text x='%.0f' y='%.0f' font-size='11'>%s</text>\n", a->x0 + a->w / 2 - 40,
	        a->y0 + a->h + 32, xlabel);
	for (e = (int)floor(a->lmin); e <= (int)ceil(a->lmax); e++) {
		double y = ax_y(a, pow(10, e));

		fprintf(f,
		        "<line x1='%.0f' x2='%.0f' y1='%.1f' y2='%.1f' stroke='#ddd'/>"
		        "<text x='%.0f' y='%.1f' font-size='10' text-anchor='end'>%g ms</text>\n",
		        a->x0, a->x0 + a->w, y, y, a->x0 - 4, y + 3, pow(10, e));
	}
}

static void
svg_series(FILE *f, const struct axis *a, const double *xs, const double *ms, unsigned n,
           const char *color, const char *label, unsigned slot)
{
	unsigned i;

	fprintf(f, "<polyline fill='none' stroke='%s' stroke-width='1.5' points='", color);
	for (i = 0; i < n; i++) {
		if (ms[i] > 0) {
			fprintf(f, "%.1f,%.1f ", ax_x(a, xs[i]), ax_y(a, ms[i]));
		}
	}
	fprintf(f, "'/>\n<text x='%.0f' y='%.0f' font-size='11' fill='%s'>%s</text>\n",
	        a->x0 + a->w + 8, a->y0 + 14 + 14.0 * slot, color, label);
}

static void
svg_timeline(FILE *f, const struct bx_rp_summary *s, struct axis *a)
{
	static const char *const colors[4] = { "#1b9e77", "#7570b3", "#d95f02", "#e7298a" };
	static const char *const names[4] = { "p50", "p90", "p99", "max" };
	unsigned n = BX_MAX(s->nb_seconds, 1), i, k;
	double *xs = calloc(n, sizeof(double)), *ys = calloc(n, sizeof(double));

	if (xs == NULL || ys == NULL) {
		free(xs);
		free(ys);
		return;
	}
	a->xmin = 0;
	a->xmax = BX_MAX((double)s->nb_seconds, 1);
	svg_frame(f, a, "latency percentiles per second (by intended send time)", "seconds");
	for (k = 0; k < 4; k++) {
		for (i = 0; i < s->nb_seconds; i++) {
			const struct bx_rp_second *q = &s->seconds[i];
			uint64_t v = k == 0 ? q->p50 : k == 1 ? q->p90 : k == 2 ? q->p99 : q->max;

			xs[i] = i + 0.5;
			ys[i] = (double)v / 1e6;
		}
		svg_series(f, a, xs, ys, s->nb_seconds, colors[k], names[k], k);
	}
	free(xs);
	free(ys);
}

/* Percentile spectrum as HdrHistogram plots it: x = log10(1 / (1 - p)). */
static void
svg_spectrum(FILE *f, const struct bx_rp_summary *s, struct axis *a)
{
	double xs[121], ys[121];
	unsigned i;

	a->xmin = 0;
	a->xmax = 6;
	svg_frame(f, a, "latency distribution (x: 1=90%, 2=99%, 3=99.9%, ...)",
	          "percentile, log10(1/(1-p))");
	for (i = 0; i <= 120; i++) {
		double x = i * 0.05, p = 100.0 * (1.0 - pow(10, -x));

		xs[i] = x;
		ys[i] = (double)bx_hist_percentile(&s->all, i == 120 ? 100 : p) / 1e6;
	}
	svg_series(f, a, xs, ys, 121, "#d95f02", "all", 0);
	for (i = 0; i <= 120; i++) {
		ys[i] = (double)bx_hist_percentile(
				&s->ok, i == 120 ? 100 : 100.0 * (1.0 - pow(10, -xs[i]))) /
		        1e6;
	}
	if (s->ok.count) {
		svg_series(f, a, xs, ys, 121, "#1b9e77", "success", 1);
	}
}

int
bx_rp_svg(const struct bx_rp_summary *s, const char *path)
{
	struct axis top = { 80, 50, 700, 260, 0, 1, 0, 0 }, bot = { 80, 400, 700, 260, 0, 6, 0, 0 };
	double lo = s->all.count ? (double)s->all.min / 1e6 : 0.01;
	double hi = s->all.count ? (double)s->all.max / 1e6 : 1;
	FILE *f = fopen(path, "w");

	if (f == NULL) {
		return -errno;
	}
	top.lmin = bot.lmin = floor(log10(BX_MAX(lo, 1e-3)));
	top.lmax = bot.lmax = BX_MAX(ceil(log10(BX_MAX(hi, 1e-3))), top.lmin + 1);
	fprintf(f,
	        "<?xml version='1.0'?>\n<svg xmlns='http://www.w3.org/2000/svg' width='900' "
	        "height='720' font-family='sans-serif'>\n<rect width='900' height='720' fill='white'/>\n");
	fprintf(f,
	        "<text x='80' y='22' font-size='13'>bx-validator %s %s: %" PRIu64
	        " requests, %.1f req/s</text>\n",
	        s->url, s->mix, (uint64_t)s->counted, s->rate);
	svg_timeline(f, s, &top);
	svg_spectrum(f, s, &bot);
	fprintf(f, "</svg>\n");
	return fclose(f) == 0 ? 0 : -EIO;
}
