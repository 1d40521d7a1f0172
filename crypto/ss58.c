/*
 * Base58 (Bitcoin alphabet) and SS58 addresses (sp-core
 * to_ss58check_with_version / from_ss58check_with_version; sr25519.md §7).
 */
#include <errno.h>
#include <string.h>

#include <sodium.h>

#include "crypto_int.h"

static const char B58[] = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

/* Inputs here are at most 36 bytes / 60 characters; quadratic is fine. */
#define B58_MAX_BYTES 64
#define B58_MAX_CHARS 96

size_t
bx_base58_encode(char *out, size_t out_len, const uint8_t *in, size_t len)
{
	uint8_t digits[B58_MAX_CHARS];
	size_t nd = 0, zeros = 0, n;

	if (len > B58_MAX_BYTES) {
		return 0;
	}
	while (zeros < len && in[zeros] == 0) {
		zeros++;
	}
	for (size_t i = zeros; i < len; i++) {
		unsigned carry = in[i];
		for (size_t j = 0; j < nd; j++) {
			carry += (unsigned)digits[j] << 8;
			digits[j] = (uint8_t)(carry % 58);
			carry /= 58;
		}
		while (carry) {
			digits[nd++] = (uint8_t)(carry % 58);
			carry /= 58;
		}
	}
	n = zeros + nd;
	if (n + 1 > out_len) {
		return 0;
	}
	for (size_t i = 0; i < zeros; i++) {
		out[i] = '1';
	}
	for (size_t i = 0; i < nd; i++) {
		out[zeros + i] = B58[digits[nd - 1 - i]];
	}
	out[n] = '\0';
	return n;
}

static int
b58_value(char c)
{
	const char *p;

	if (c == '\0') {
		return -1;
	}
	p = strchr(B58, c);
	return p ? (int)(p - B58) : -1;
}

int
bx_base58_decode(uint8_t *out, size_t *out_len, const char *in, size_t len, size_t *bad)
{
	uint8_t bytes[B58_MAX_BYTES];
	size_t nb = 0, zeros = 0;

	if (len > B58_MAX_CHARS) {
		*bad = len;
		return -EINVAL;
	}
	while (zeros < len && in[zeros] == '1') {
		zeros++;
	}
	for (size_t i = 0; i < len; i++) {
		int v = b58_value(in[i]);
		if (v < 0) {
			*bad = i;
			return -EINVAL;
		}
	}
	for (size_t i = zeros; i < len; i++) {
		unsigned carry = (unsigned)b58_value(in[i]);
		for (size_t j = 0; j < nb; j++) {
			carry += (unsigned)bytes[j] * 58;
			bytes[j] = (uint8_t)carry;
			carry >>= 8;
		}
		while (carry) {
			if (nb == sizeof(bytes)) {
				*bad = len;
				return -EINVAL;
			}
			bytes[nb++] = (uint8_t)carry;
			carry >>= 8;
		}
	}
	if (zeros + nb > *out_len) {
		*bad = len;
		return -EINVAL;
	}
	memset(out, 0, zeros);
	for (size_t i = 0; i < nb; i++) {
		out[zeros + i] = bytes[nb - 1 - i];
	}
	*out_len = zeros + nb;
	return 0;
}

static void
ss58_checksum(uint8_t out[64], const uint8_t *body, size_t len)
{
	crypto_generichash_state st;

	crypto_generichash_init(&st, NULL, 0, 64);
	crypto_generichash_update(&st, (const uint8_t *)"SS58PRE", 7);
	crypto_generichash_update(&st, body, len);
	crypto_generichash_final(&st, out, 64);
}

int
bx_ss58_encode(char *out, size_t out_len, const uint8_t pub[32], uint16_t prefix)
{
	uint8_t buf[36], h[64];
	size_t n;

	if (prefix > 16383) {
		return -EINVAL;
	}
	if (bx_crypto_init() != 0) {
		return -EIO;
	}
	if (prefix < 64) {
		buf[0] = (uint8_t)prefix;
		n = 1;
	} else {
		buf[0] = (uint8_t)(((prefix & 0xfc) >> 2) | 0x40);
		buf[1] = (uint8_t)((prefix >> 8) | ((prefix & 0x03) << 6));
		n = 2;
	}
	memcpy(buf + n, pub, 32);
	n += 32;
	ss58_checksum(h, buf, n);
	buf[n++] = h[0];
	buf[n++] = h[1];
	if (bx_base58_encode(out, out_len, buf, n) == 0) {
		return -ENOSPC;
	}
	return 0;
}

int
bx_ss58_decode(const char *s, size_t len, uint8_t pub[32], uint16_t *prefix, struct bx_errbuf *eb)
{
	uint8_t buf[B58_MAX_BYTES], h[64];
	size_t n = sizeof(buf), bad = 0, plen;
	uint16_t ident;

	if (bx_crypto_init() != 0) {
		return bx_err(eb, EIO, "SS58: libsodium failed to initialise");
	}
	if (len == 0) {
		return bx_err(eb, EINVAL, "SS58 address is empty");
	}
	if (bx_base58_decode(buf, &n, s, len, &bad) != 0) {
		if (bad < len) {
			return bx_err(
				eb, EINVAL,
				"SS58 address has a character that is not base58 at offset %zu",
				bad);
		}
		return bx_err(eb, EINVAL, "SS58 address is too long (%zu characters)", len);
	}
	if (n != 35 && n != 36) {
		return bx_err(eb, EINVAL,
		              "SS58 address decodes to %zu bytes; a 32-byte key needs 35 or 36", n);
	}
	if (buf[0] >= 128) {
		return bx_err(eb, EINVAL, "SS58 address has an invalid prefix byte");
	}
	if (buf[0] < 64) {
		ident = buf[0];
		plen = 1;
	} else {
		uint16_t lower = (uint16_t)(((buf[0] << 2) | (buf[1] >> 6)) & 0xff);
		uint16_t upper = buf[1] & 0x3f;
		ident = (uint16_t)(lower | (upper << 8));
		plen = 2;
	}
	if (n != plen + 32 + 2) {
		return bx_err(eb, EINVAL,
		              "SS58 address decodes to %zu bytes; a 32-byte key with a %zu-byte "
		              "prefix needs %zu",
		              n, plen, plen + 34);
	}
	ss58_checksum(h, buf, plen + 32);
	if (h[0] != buf[plen + 32] || h[1] != buf[plen + 33]) {
		return bx_err(eb, EINVAL, "SS58 address has a bad checksum");
	}
	memcpy(pub, buf + plen, 32);
	if (prefix) {
		*prefix = ident;
	}
	return 0;
}
