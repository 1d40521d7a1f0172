/*
 * Keccak-f[1600] and SHA3-256 (FIPS 202). One permutation serves SHA3 and
 * STROBE/Merlin (sr25519.md §1.1, §8). Lanes are little-endian 64-bit words.
 */
#include <string.h>

#include "crypto_int.h"

static const uint64_t keccak_rc[24] = {
	0x0000000000000001ULL, 0x0000000000008082ULL, 0x800000000000808aULL, 0x8000000080008000ULL,
	0x000000000000808bULL, 0x0000000080000001ULL, 0x8000000080008081ULL, 0x8000000000008009ULL,
	0x000000000000008aULL, 0x0000000000000088ULL, 0x0000000080008009ULL, 0x000000008000000aULL,
	0x000000008000808bULL, 0x800000000000008bULL, 0x8000000000008089ULL, 0x8000000000008003ULL,
	0x8000000000008002ULL, 0x8000000000000080ULL, 0x000000000000800aULL, 0x800000008000000aULL,
	0x8000000080008081ULL, 0x8000000000008080ULL, 0x0000000080000001ULL, 0x8000000080008008ULL,
};

static inline uint64_t
rol64(uint64_t x, unsigned n)
{
	return (x << n) | (x >> ((64 - n) & 63));
}

static void
keccak_f1600_lanes(uint64_t a[25])
{
	uint64_t b[25], c[5], d[5];

	for (unsigned round = 0; round < 24; round++) {
		for (unsigned x = 0; x < 5; x++) {
			c[x] = a[x] ^ a[x + 5] ^ a[x + 10] ^ a[x + 15] ^ a[x + 20];
		}
		for (unsigned x = 0; x < 5; x++) {
			d[x] = c[(x + 4) % 5] ^ rol64(c[(x + 1) % 5], 1);
		}
		for (unsigned i = 0; i < 25; i++) {
			a[i] ^= d[i % 5];
		}
		/* rho and pi: b[y, 2x+3y] = rot(a[x, y], r[x, y]) */
		b[0] = a[0];
		b[10] = rol64(a[1], 1);
		b[20] = rol64(a[2], 62);
		b[5] = rol64(a[3], 28);
		b[15] = rol64(a[4], 27);
		b[16] = rol64(a[5], 36);
		b[1] = rol64(a[6], 44);
		b[11] = rol64(a[7], 6);
		b[21] = rol64(a[8], 55);
		b[6] = rol64(a[9], 20);
		b[7] = rol64(a[10], 3);
		b[17] = rol64(a[11], 10);
		b[2] = rol64(a[12], 43);
		b[12] = rol64(a[13], 25);
		b[22] = rol64(a[14], 39);
		b[23] = rol64(a[15], 41);
		b[8] = rol64(a[16], 45);
		b[18] = rol64(a[17], 15);
		b[3] = rol64(a[18], 21);
		b[13] = rol64(a[19], 8);
		b[14] = rol64(a[20], 18);
		b[24] = rol64(a[21], 2);
		b[9] = rol64(a[22], 61);
		b[19] = rol64(a[23], 56);
		b[4] = rol64(a[24], 14);
		for (unsigned y = 0; y < 25; y += 5) {
			for (unsigned x = 0; x < 5; x++) {
				a[y + x] = b[y + x] ^ (~b[y + (x + 1) % 5] & b[y + (x + 2) % 5]);
			}
		}
		a[0] ^= keccak_rc[round];
	}
}

void
bx_keccak_f1600(uint8_t st[200])
{
	uint64_t a[25];

#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	memcpy(a, st, 200);
	keccak_f1600_lanes(a);
	memcpy(st, a, 200);
#else
	for (unsigned i = 0; i < 25; i++) {
		uint64_t v = 0;
		for (unsigned j = 0; j < 8; j++)
			v |= (uint64_t)st[8 * i + j] << (8 * j);
		a[i] = v;
	}
	keccak_f1600_lanes(a);
	for (unsigned i = 0; i < 25; i++)
		for (unsigned j = 0; j < 8; j++)
			st[8 * i + j] = (uint8_t)(a[i] >> (8 * j));
#endif
	/* a held state derived from secrets when STROBE keys it */
	memset(a, 0, sizeof(a));
	__asm__ __volatile__("" : : "r"(a) : "memory");
}

#define SHA3_256_RATE 136

void
bx_sha3_256_init(struct bx_sha3_256_ctx *ctx)
{
	memset(ctx->st, 0, sizeof(ctx->st));
	ctx->pos = 0;
}

void
bx_sha3_256_update(struct bx_sha3_256_ctx *ctx, const void *msg, size_t len)
{
	const uint8_t *p = msg;

	while (len > 0) {
		size_t n = SHA3_256_RATE - ctx->pos;
		if (n > len) {
			n = len;
		}
		for (size_t i = 0; i < n; i++) {
			ctx->st[ctx->pos + i] ^= p[i];
		}
		ctx->pos += n;
		p += n;
		len -= n;
		if (ctx->pos == SHA3_256_RATE) {
			bx_keccak_f1600(ctx->st);
			ctx->pos = 0;
		}
	}
}

void
bx_sha3_256_final(struct bx_sha3_256_ctx *ctx, uint8_t out[32])
{
	ctx->st[ctx->pos] ^= 0x06;
	ctx->st[SHA3_256_RATE - 1] ^= 0x80;
	bx_keccak_f1600(ctx->st);
	memcpy(out, ctx->st, 32);
	memset(ctx->st, 0, sizeof(ctx->st));
	ctx->pos = 0;
}

int
bx_sha3_256(uint8_t out[32], const void *msg, size_t len)
{
	struct bx_sha3_256_ctx ctx;

	bx_sha3_256_init(&ctx);
	bx_sha3_256_update(&ctx, msg, len);
	bx_sha3_256_final(&ctx, out);
	return 0;
}
