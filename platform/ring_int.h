/* Shared by the two rings. */
#ifndef BX_PLATFORM_RING_INT_H
#define BX_PLATFORM_RING_INT_H

#include <stdint.h>

/* Capacity rounded up to a power of two in [2, 2^30], or 0 if n is out of range. */
static inline uint32_t
bx_ring_size(unsigned n)
{
	uint32_t s = 2;

	if (n == 0 || n > (1u << 30)) {
		return 0;
	}
	while (s < n) {
		s <<= 1;
	}
	return s;
}

#endif
