/*
 * Memory read bandwidth as decode sees it: a sequential stream of vector
 * loads per thread, each thread over its own part of a 1 GiB buffer (far
 * larger than the caches).
 */
#include "bench_mem.h"

#include <stdlib.h>
#include <string.h>

#include <bx/platform.h>

#define BW_BYTES (1ull << 30)

__attribute__((target("avx512f"))) static double
read_sum(const float *p, size_t n)
{
	/* Four independent accumulators keep several loads in flight. */
	typedef float v16 __attribute__((vector_size(64)));
	v16 a = { 0 }, b = { 0 }, c = { 0 }, d = { 0 };

	for (size_t i = 0; i + 64 <= n; i += 64) {
		a += *(const v16 *)(p + i);
		b += *(const v16 *)(p + i + 16);
		c += *(const v16 *)(p + i + 32);
		d += *(const v16 *)(p + i + 48);
	}
	a += b + c + d;
	return a[0] + a[15];
}

double
bench_read_bandwidth(unsigned nt)
{
	float *buf = aligned_alloc(64, BW_BYTES);
	size_t n = BW_BYTES / sizeof(float);
	double best = 0, sink = 0;

	if (!buf) {
		return 0;
	}
	memset(buf, 1, BW_BYTES);
	for (int rep = 0; rep < 3; rep++) {
		uint64_t t0 = bx_time_ns();

#pragma omp parallel for num_threads(nt) reduction(+ : sink)
		for (unsigned t = 0; t < nt; t++) {
			size_t chunk = n / nt / 64 * 64;

			sink += read_sum(buf + t * chunk, chunk);
		}
		best = BX_MAX(best, (double)BW_BYTES / ((double)(bx_time_ns() - t0) * 1e-9));
	}
	free(buf);
	return sink == -1 ? 0 : best;
}
