/*
 * Fuzz SS58 decoding (any bytes as address text) and, when it decodes,
 * the encode round trip.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bx/crypto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t pub[32], again[32];
	uint16_t prefix = 0;
	struct bx_errbuf eb;
	char out[BX_SS58_MAX_LEN];

	if (bx_ss58_decode((const char *)data, size, pub, &prefix, &eb) != 0) {
		return 0;
	}
	/* what decodes must encode to a text that decodes to the same key */
	if (bx_ss58_encode(out, sizeof(out), pub, prefix) != 0 ||
	    bx_ss58_decode(out, strlen(out), again, NULL, &eb) != 0 ||
	    memcmp(pub, again, 32) != 0) {
		abort();
	}
	return 0;
}
