/*
 * Fuzz secret-URI parsing (phrase, 0x seed, //hard, /soft, ///password) and
 * the mnemonic reader behind it. Only phrases with a valid checksum reach
 * PBKDF2, so runs stay fast.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bx/crypto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bx_sr25519_keypair *kp = NULL;
	struct bx_errbuf eb = { { 0 } };
	char *s;

	if (size > 4096) {
		return 0;
	}
	s = malloc(size + 1);
	if (s == NULL) {
		return 0;
	}
	memcpy(s, data, size);
	s[size] = '\0';
	if (bx_suri_to_keypair(s, &kp, &eb) == 0) {
		if (kp == NULL || !bx_sr25519_public_is_valid(bx_sr25519_public(kp))) {
			abort();
		}
		bx_sr25519_keypair_destroy(kp);
	} else if (kp != NULL || eb.msg[0] == '\0') {
		abort();
	}
	(void)bx_mnemonic_is_valid(s);
	free(s);
	return 0;
}
