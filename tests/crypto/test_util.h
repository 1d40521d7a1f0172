/* Small helpers shared by the crypto tests. */
#ifndef BX_TEST_CRYPTO_UTIL_H
#define BX_TEST_CRYPTO_UTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "bx/crypto.h"

static inline void
hex2bin(uint8_t *out, size_t n, const char *hex)
{
	assert_int_equal(strlen(hex), 2 * n);
	assert_int_equal(bx_hex_decode(out, n, hex, strlen(hex)), 0);
}

#define assert_hex_equal(bytes, hex)                                        \
	do {                                                                \
		char h_[2 * sizeof(bytes) + 1];                             \
		bx_hex_encode(h_, (const uint8_t *)(bytes), sizeof(bytes)); \
		assert_string_equal(h_, (hex));                             \
	} while (0)

#endif
