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

/*
 * One round from lanes A into lanes E (theta, rho, pi, chi, iota), fully
 * unrolled: output row y takes B[x] = rot(A[3(y - 3x) mod 5, x] ^ D, r).
 */
#define KECCAK_ROUND(A, E, rc)                                        \
	do {                                                          \
		c[0] = (A)[0] ^ (A)[5] ^ (A)[10] ^ (A)[15] ^ (A)[20]; \
		c[1] = (A)[1] ^ (A)[6] ^ (A)[11] ^ (A)[16] ^ (A)[21]; \
		c[2] = (A)[2] ^ (A)[7] ^ (A)[12] ^ (A)[17] ^ (A)[22]; \
		c[3] = (A)[3] ^ (A)[8] ^ (A)[13] ^ (A)[18] ^ (A)[23]; \
		c[4] = (A)[4] ^ (A)[9] ^ (A)[14] ^ (A)[19] ^ (A)[24]; \
		d[0] = c[4] ^ rol64(c[1], 1);                         \
		d[1] = c[0] ^ rol64(c[2], 1);                         \
		d[2] = c[1] ^ rol64(c[3], 1);                         \
		d[3] = c[2] ^ rol64(c[4], 1);                         \
		d[4] = c[3] ^ rol64(c[0], 1);                         \
		b[0] = (A)[0] ^ d[0];                                 \
		b[1] = rol64((A)[6] ^ d[1], 44);                      \
		b[2] = rol64((A)[12] ^ d[2], 43);                     \
		b[3] = rol64((A)[18] ^ d[3], 21);                     \
		b[4] = rol64((A)[24] ^ d[4], 14);                     \
		(E)[0] = b[0] ^ (~b[1] & b[2]) ^ (rc);                \
		(E)[1] = b[1] ^ (~b[2] & b[3]);                       \
		(E)[2] = b[2] ^ (~b[3] & b[4]);                       \
		(E)[3] = b[3] ^ (~b[4] & b[0]);                       \
		(E)[4] = b[4] ^ (~b[0] & b[1]);                       \
		b[0] = rol64((A)[3] ^ d[3], 28);                      \
		b[1] = rol64((A)[9] ^ d[4], 20);                      \
		b[2] = rol64((A)[10] ^ d[0], 3);                      \
		b[3] = rol64((A)[16] ^ d[1], 45);                     \
		b[4] = rol64((A)[22] ^ d[2], 61);                     \
		(E)[5] = b[0] ^ (~b[1] & b[2]);                       \
		(E)[6] = b[1] ^ (~b[2] & b[3]);                       \
		(E)[7] = b[2] ^ (~b[3] & b[4]);                       \
		(E)[8] = b[3] ^ (~b[4] & b[0]);                       \
		(E)[9] = b[4] ^ (~b[0] & b[1]);                       \
		b[0] = rol64((A)[1] ^ d[1], 1);                       \
		b[1] = rol64((A)[7] ^ d[2], 6);                       \
		b[2] = rol64((A)[13] ^ d[3], 25);                     \
		b[3] = rol64((A)[19] ^ d[4], 8);                      \
		b[4] = rol64((A)[20] ^ d[0], 18);                     \
		(E)[10] = b[0] ^ (~b[1] & b[2]);                      \
		(E)[11] = b[1] ^ (~b[2] & b[3]);                      \
		(E)[12] = b[2] ^ (~b[3] & b[4]);                      \
		(E)[13] = b[3] ^ (~b[4] & b[0]);                      \
		(E)[14] = b[4] ^ (~b[0] & b[1]);                      \
		b[0] = rol64((A)[4] ^ d[4], 27);                      \
		b[1] = rol64((A)[5] ^ d[0], 36);                      \
		b[2] = rol64((A)[11] ^ d[1], 10);                     \
		b[3] = rol64((A)[17] ^ d[2], 15);                     \
		b[4] = rol64((A)[23] ^ d[3], 56);                     \
		(E)[15] = b[0] ^ (~b[1] & b[2]);                      \
		(E)[16] = b[1] ^ (~b[2] & b[3]);                      \
		(E)[17] = b[2] ^ (~b[3] & b[4]);                      \
		(E)[18] = b[3] ^ (~b[4] & b[0]);                      \
		(E)[19] = b[4] ^ (~b[0] & b[1]);                      \
		b[0] = rol64((A)[2] ^ d[2], 62);                      \
		b[1] = rol64((A)[8] ^ d[3], 55);                      \
		b[2] = rol64((A)[14] ^ d[4], 39);                     \
		b[3] = rol64((A)[15] ^ d[0], 41);                     \
		b[4] = rol64((A)[21] ^ d[1], 2);                      \
		(E)[20] = b[0] ^ (~b[1] & b[2]);                      \
		(E)[21] = b[1] ^ (~b[2] & b[3]);                      \
		(E)[22] = b[2] ^ (~b[3] & b[4]);                      \
		(E)[23] = b[3] ^ (~b[4] & b[0]);                      \
		(E)[24] = b[4] ^ (~b[0] & b[1]);                      \
	} while (0)

static void
keccak_f1600_lanes(uint64_t st[25])
{
	uint64_t e[25], b[5], c[5], d[5];

	for (unsigned round = 0; round < 24; round += 2) {
		KECCAK_ROUND(st, e, keccak_rc[round]);
		KECCAK_ROUND(e, st, keccak_rc[round + 1]);
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
