/* placeholder: naive composition of libsodium calls */
#include <string.h>

#include <sodium.h>

#include "crypto_int.h"

int
bx_ristretto_init(void)
{
	return 0;
}

bool
bx_ristretto_is_valid(const uint8_t p[32])
{
	return crypto_core_ristretto255_is_valid_point(p) == 1;
}

int
bx_ristretto_double_scalarmult_vartime(uint8_t out[32], const uint8_t s[32], const uint8_t c[32],
                                       const uint8_t A[32])
{
	uint8_t sB[32], cA[32];

	if (!crypto_core_ristretto255_is_valid_point(A)) {
		return -1;
	}
	if (crypto_scalarmult_ristretto255_base(sB, s) != 0) {
		memset(sB, 0, 32);
	}
	if (crypto_scalarmult_ristretto255(cA, c, A) != 0) {
		memset(cA, 0, 32);
	}
	return crypto_core_ristretto255_sub(out, sB, cA) == 0 ? 0 : -1;
}
