/*
 * Fuzz keyfile parsing: plaintext JSON and "$NACL" inputs (password "pw";
 * Argon2i cost lowered so each run is quick, which changes only the key).
 */
#include <stdint.h>
#include <stdlib.h>

#include "bx/crypto.h"
#include "crypto_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bx_sr25519_keypair *kp = NULL;
	struct bx_errbuf eb = { { 0 } };

	bx_keyfile_kdf_ops = 3; /* argon2i minimums */
	bx_keyfile_kdf_mem = 8192;
	if (bx_keyfile_parse(data, size, "fuzz", "pw", &kp, &eb) == 0) {
		if (kp == NULL || !bx_sr25519_public_is_valid(bx_sr25519_public(kp))) {
			abort();
		}
		bx_sr25519_keypair_destroy(kp);
	} else if (kp != NULL || eb.msg[0] == '\0') {
		abort(); /* failures leave *out alone and always explain themselves */
	}
	return 0;
}
