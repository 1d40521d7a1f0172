/* The metagraph snapshot's layout (private to dataplane). */
#ifndef BX_DP_METAGRAPH_INT_H
#define BX_DP_METAGRAPH_INT_H

#include <stdint.h>

#include <bx/dataplane.h>

struct bx_metagraph {
	uint32_t nb;
	uint32_t mask;  /* slots - 1 */
	int32_t *slots; /* index into n[], -1 empty */
	int64_t block;
	struct bx_mg_neuron *n;
};

#endif
