/*
 * Benchmark output: one JSON object per line on stdout, so results can be
 * collected by scripts and compared across runs:
 *   {"bench":"ring","case":"spsc","metric":"ops_per_s","value":1.2e8,"unit":"1/s"}
 */
#ifndef BX_BENCH_H
#define BX_BENCH_H

#include <stddef.h>
#include <stdint.h>

void bx_bench_emit(const char *bench, const char *name, const char *metric, double value,
                   const char *unit);

/* Sort samples (ns) in place and return the p-th percentile (0..100), nearest rank. */
uint64_t bx_bench_percentile(uint64_t *samples, size_t n, double p);

/* Emit p50/p99/p99.9/max of samples (sorted in place), in microseconds. */
void bx_bench_emit_latency(const char *bench, const char *name, uint64_t *samples, size_t n);

#endif
