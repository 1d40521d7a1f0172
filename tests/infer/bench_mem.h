/* The machine's memory read bandwidth, for the generation benches' bound. */
#ifndef BX_BENCH_MEM_H
#define BX_BENCH_MEM_H

/* Read bandwidth in bytes/s over a 1 GiB buffer, best of 3, with nt OpenMP threads; 0 if no memory. */
double bench_read_bandwidth(unsigned nt);

#endif
