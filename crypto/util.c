/* Hex helpers (constant time in the data: used on secrets too). */
#include <errno.h>

#include "crypto_int.h"

static int
hexval_ct(unsigned char c)
{
	/* returns 0..15, or -1; branch-free in c */
	int d = c - '0', l = (c | 0x20) - 'a';
	int isd = ((unsigned)d < 10u) ? 1 : 0; /* compiles to setcc */
	int isl = ((unsigned)l < 6u) ? 1 : 0;
	return (isd * d) + (isl * (l + 10)) - (1 - isd - isl);
}

int
bx_hex_decode(uint8_t *out, size_t out_len, const char *hex, size_t hex_len)
{
	int bad = 0;

	if (hex_len >= 2 && hex[0] == '0' && (hex[1] == 'x' || hex[1] == 'X')) {
		hex += 2;
		hex_len -= 2;
	}
	if (hex_len != 2 * out_len) {
		return -EINVAL;
	}
	for (size_t i = 0; i < out_len; i++) {
		int hi = hexval_ct((unsigned char)hex[2 * i]);
		int lo = hexval_ct((unsigned char)hex[2 * i + 1]);
		bad |= (hi | lo) & 0x100; /* -1 has bit 8 set */
		out[i] = (uint8_t)(((unsigned)hi << 4) | ((unsigned)lo & 15));
	}
	return bad ? -EINVAL : 0;
}

void
bx_hex_encode(char *out, const uint8_t *in, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned hi = in[i] >> 4, lo = in[i] & 15;
		/* '0'+v, plus 39 when v > 9, without a branch on v */
		out[2 * i] = (char)('0' + hi + (((unsigned)(9 - (int)hi) >> 8) & 39));
		out[2 * i + 1] = (char)('0' + lo + (((unsigned)(9 - (int)lo) >> 8) & 39));
	}
	out[2 * len] = '\0';
}
