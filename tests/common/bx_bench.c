/* Benchmark output as one JSON object per line (see bx_bench.h). */
#include "bx_bench.h"

#include <stdio.h>
#include <stdlib.h>

void
bx_bench_emit(const char *bench, const char *name, const char *metric, double value,
              const char *unit)
{
	printf("{\"bench\":\"%s\",\"case\":\"%s\",\"metric\":\"%s\",\"value\":%.6g,\"unit\":\"%s\"}\n",
	       bench, name, metric, value, unit);
	fflush(stdout);
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

uint64_t
bx_bench_percentile(uint64_t *samples, size_t n, double p)
{
	size_t rank;

	if (n == 0) {
		return 0;
	}
	qsort(samples, n, sizeof(*samples), cmp_u64);
	/* Nearest rank: the smallest sample with at least p% of samples at or below it. */
	rank = (size_t)(p / 100.0 * (double)n + 0.999999);
	rank = rank == 0 ? 1 : (rank > n ? n : rank);
	return samples[rank - 1];
}

void
bx_bench_emit_latency(const char *bench, const char *name, uint64_t *samples, size_t n)
{
	static const struct {
		double p;
		const char *metric;
	} ps[] = { { 50, "p50" }, { 99, "p99" }, { 99.9, "p99.9" }, { 100, "max" } };

	for (size_t i = 0; i < sizeof(ps) / sizeof(ps[0]); i++) {
		bx_bench_emit(bench, name, ps[i].metric,
		              (double)bx_bench_percentile(samples, n, ps[i].p) / 1e3, "us");
	}
}
