/*
 * Variable-time Ristretto255 arithmetic for sr25519 verification (public
 * inputs only; signing never comes here). libsodium 1.0.18 has no
 * double-scalar multiplication for ristretto255, so this file carries its
 * own field arithmetic (radix 2^51, 128-bit products), extended twisted
 * Edwards points (Hisil-Wong-Carter-Dawson formulas) and the Ristretto
 * encoding (RFC 9496 §4.3). s*B - c*A is one interleaved pass with a
 * width-5 wNAF for A and a width-8 wNAF over a 64-entry affine table of B.
 * Tests compare every result with libsodium's own ristretto255 calls.
 */
#include <string.h>

#include "bx/platform.h"
#include "crypto_int.h"

__extension__ typedef unsigned __int128 u128;

struct fe {
	uint64_t v[5];
};

/* extended coordinates: x = X/Z, y = Y/Z, xy = T/Z */
struct ge_p3 {
	struct fe X, Y, Z, T;
};

struct ge_p2 {
	struct fe X, Y, Z;
};

/* completed: x = X/Z, y = Y/T */
struct ge_p1p1 {
	struct fe X, Y, Z, T;
};

struct ge_cached {
	struct fe YplusX, YminusX, Z, T2d;
};

struct ge_precomp {
	struct fe yplusx, yminusx, xy2d;
};

#define MASK51  ((1ULL << 51) - 1)
#define B_WNAF  8
#define A_WNAF  5
#define NAF_LEN 272

static const struct fe fe_d2 = { { 0x69b9426b2f159ULL, 0x35050762add7aULL, 0x3cf44c0038052ULL,
	                           0x6738cc7407977ULL, 0x2406d9dc56dffULL } };
static const struct fe fe_d = { { 0x34dca135978a3ULL, 0x1a8283b156ebdULL, 0x5e7a26001c029ULL,
	                          0x739c663a03cbbULL, 0x52036cee2b6ffULL } };
static const struct fe fe_sqrtm1 = { { 0x61b274a0ea0b0ULL, 0xd5a5fc8f189dULL, 0x7ef5e9cbd0c60ULL,
	                               0x78595a6804c9eULL, 0x2b8324804fc1dULL } };
static const struct fe fe_invsqrt_a_minus_d = { { 0xfdaa805d40eaULL, 0x2eb482e57d339ULL,
	                                          0x7610274bc58ULL, 0x6510b613dc8ffULL,
	                                          0x786c8905cfaffULL } };
static const uint8_t basepoint_bytes[32] = {
	0xe2, 0xf2, 0xae, 0x0a, 0x6a, 0xbc, 0x4e, 0x71, 0xa8, 0x84, 0xa9,
	0x61, 0xc5, 0x00, 0x51, 0x5f, 0x58, 0xe3, 0x0b, 0x6a, 0xa5, 0x82,
	0xdd, 0x8d, 0xb6, 0xa6, 0x59, 0x45, 0xe0, 0x8d, 0x2d, 0x76,
};

/* odd multiples B, 3B, ..., 127B, affine */
static struct ge_precomp base_table[1 << (B_WNAF - 2)];

/* ---------------- field ---------------- */

static inline void
fe_set(struct fe *h, uint64_t v)
{
	memset(h, 0, sizeof(*h));
	h->v[0] = v;
}

static inline void
fe_carry(struct fe *h)
{
	uint64_t c;

	c = h->v[0] >> 51;
	h->v[0] &= MASK51;
	h->v[1] += c;
	c = h->v[1] >> 51;
	h->v[1] &= MASK51;
	h->v[2] += c;
	c = h->v[2] >> 51;
	h->v[2] &= MASK51;
	h->v[3] += c;
	c = h->v[3] >> 51;
	h->v[3] &= MASK51;
	h->v[4] += c;
	c = h->v[4] >> 51;
	h->v[4] &= MASK51;
	h->v[0] += c * 19;
}

static inline void
fe_add(struct fe *h, const struct fe *f, const struct fe *g)
{
	for (int i = 0; i < 5; i++) {
		h->v[i] = f->v[i] + g->v[i];
	}
}

/* f - g for limbs of f, g below 2^53: add 8p first */
static inline void
fe_sub(struct fe *h, const struct fe *f, const struct fe *g)
{
	h->v[0] = (f->v[0] + 0x3fffffffffff68ULL) - g->v[0];
	h->v[1] = (f->v[1] + 0x3ffffffffffff8ULL) - g->v[1];
	h->v[2] = (f->v[2] + 0x3ffffffffffff8ULL) - g->v[2];
	h->v[3] = (f->v[3] + 0x3ffffffffffff8ULL) - g->v[3];
	h->v[4] = (f->v[4] + 0x3ffffffffffff8ULL) - g->v[4];
	fe_carry(h);
}

static inline void
fe_neg(struct fe *h, const struct fe *f)
{
	struct fe zero;

	fe_set(&zero, 0);
	fe_sub(h, &zero, f);
}

static inline void
fe_carry_wide(struct fe *h, u128 r0, u128 r1, u128 r2, u128 r3, u128 r4)
{
	u128 c;

	r1 += (uint64_t)(r0 >> 51);
	h->v[0] = (uint64_t)r0 & MASK51;
	r2 += (uint64_t)(r1 >> 51);
	h->v[1] = (uint64_t)r1 & MASK51;
	r3 += (uint64_t)(r2 >> 51);
	h->v[2] = (uint64_t)r2 & MASK51;
	r4 += (uint64_t)(r3 >> 51);
	h->v[3] = (uint64_t)r3 & MASK51;
	/* in 128 bits: (r4 >> 51) * 19 may pass 2^64 for inputs near 2^53 */
	c = (r4 >> 51) * 19 + h->v[0];
	h->v[4] = (uint64_t)r4 & MASK51;
	h->v[0] = (uint64_t)c & MASK51;
	h->v[1] += (uint64_t)(c >> 51);
}

static void
fe_mul(struct fe *h, const struct fe *f, const struct fe *g)
{
	const uint64_t *a = f->v, *b = g->v;
	uint64_t b1 = b[1] * 19, b2 = b[2] * 19, b3 = b[3] * 19, b4 = b[4] * 19;
	u128 r0, r1, r2, r3, r4;

	r0 = (u128)a[0] * b[0] + (u128)a[1] * b4 + (u128)a[2] * b3 + (u128)a[3] * b2 +
	     (u128)a[4] * b1;
	r1 = (u128)a[0] * b[1] + (u128)a[1] * b[0] + (u128)a[2] * b4 + (u128)a[3] * b3 +
	     (u128)a[4] * b2;
	r2 = (u128)a[0] * b[2] + (u128)a[1] * b[1] + (u128)a[2] * b[0] + (u128)a[3] * b4 +
	     (u128)a[4] * b3;
	r3 = (u128)a[0] * b[3] + (u128)a[1] * b[2] + (u128)a[2] * b[1] + (u128)a[3] * b[0] +
	     (u128)a[4] * b4;
	r4 = (u128)a[0] * b[4] + (u128)a[1] * b[3] + (u128)a[2] * b[2] + (u128)a[3] * b[1] +
	     (u128)a[4] * b[0];
	fe_carry_wide(h, r0, r1, r2, r3, r4);
}

static void
fe_sq(struct fe *h, const struct fe *f)
{
	const uint64_t *a = f->v;
	uint64_t d0 = a[0] * 2, d1 = a[1] * 2, d2 = a[2] * 2 * 19, d4 = a[4] * 19, d3 = a[3] * 19;
	u128 r0, r1, r2, r3, r4;

	r0 = (u128)a[0] * a[0] + (u128)d4 * d1 + (u128)d2 * a[3];
	r1 = (u128)d0 * a[1] + (u128)d2 * a[4] + (u128)d3 * a[3];
	r2 = (u128)d0 * a[2] + (u128)a[1] * a[1] + (u128)(2 * a[3]) * d4;
	r3 = (u128)d0 * a[3] + (u128)d1 * a[2] + (u128)d4 * a[4];
	r4 = (u128)d0 * a[4] + (u128)d1 * a[3] + (u128)a[2] * a[2];
	fe_carry_wide(h, r0, r1, r2, r3, r4);
}

static void
fe_sqn(struct fe *h, const struct fe *f, int n)
{
	fe_sq(h, f);
	while (--n > 0) {
		fe_sq(h, h);
	}
}

static void
fe_frombytes(struct fe *h, const uint8_t s[32])
{
	uint64_t w[4];

	for (int i = 0; i < 4; i++) {
		w[i] = 0;
		for (int j = 7; j >= 0; j--) {
			w[i] = (w[i] << 8) | s[8 * i + j];
		}
	}
	h->v[0] = w[0] & MASK51;
	h->v[1] = ((w[0] >> 51) | (w[1] << 13)) & MASK51;
	h->v[2] = ((w[1] >> 38) | (w[2] << 26)) & MASK51;
	h->v[3] = ((w[2] >> 25) | (w[3] << 39)) & MASK51;
	h->v[4] = (w[3] >> 12) & MASK51;
}

static void
fe_tobytes(uint8_t s[32], const struct fe *f)
{
	struct fe t = *f;
	uint64_t q, w[4];

	fe_carry(&t);
	fe_carry(&t);
	/* t < 2^255 + small; subtract p if t >= p */
	q = (t.v[0] + 19) >> 51;
	q = (t.v[1] + q) >> 51;
	q = (t.v[2] + q) >> 51;
	q = (t.v[3] + q) >> 51;
	q = (t.v[4] + q) >> 51;
	t.v[0] += 19 * q;
	t.v[1] += t.v[0] >> 51;
	t.v[0] &= MASK51;
	t.v[2] += t.v[1] >> 51;
	t.v[1] &= MASK51;
	t.v[3] += t.v[2] >> 51;
	t.v[2] &= MASK51;
	t.v[4] += t.v[3] >> 51;
	t.v[3] &= MASK51;
	t.v[4] &= MASK51;
	w[0] = t.v[0] | (t.v[1] << 51);
	w[1] = (t.v[1] >> 13) | (t.v[2] << 38);
	w[2] = (t.v[2] >> 26) | (t.v[3] << 25);
	w[3] = (t.v[3] >> 39) | (t.v[4] << 12);
	for (int i = 0; i < 4; i++) {
		for (int j = 0; j < 8; j++) {
			s[8 * i + j] = (uint8_t)(w[i] >> (8 * j));
		}
	}
}

static bool
fe_is_negative(const struct fe *f)
{
	uint8_t s[32];

	fe_tobytes(s, f);
	return s[0] & 1;
}

static bool
fe_is_zero(const struct fe *f)
{
	uint8_t s[32], acc = 0;

	fe_tobytes(s, f);
	for (int i = 0; i < 32; i++) {
		acc |= s[i];
	}
	return acc == 0;
}

static bool
fe_equal(const struct fe *f, const struct fe *g)
{
	uint8_t a[32], b[32];

	fe_tobytes(a, f);
	fe_tobytes(b, g);
	return memcmp(a, b, 32) == 0;
}

static void
fe_abs(struct fe *h, const struct fe *f)
{
	if (fe_is_negative(f)) {
		fe_neg(h, f);
	} else {
		*h = *f;
	}
}

/* z^(2^252 - 3) */
static void
fe_pow22523(struct fe *out, const struct fe *z)
{
	struct fe t0, t1, t2;

	fe_sq(&t0, z);         /* 2 */
	fe_sqn(&t1, &t0, 2);   /* 8 */
	fe_mul(&t1, z, &t1);   /* 9 */
	fe_mul(&t0, &t0, &t1); /* 11 */
	fe_sq(&t0, &t0);       /* 22 */
	fe_mul(&t0, &t1, &t0); /* 2^5 - 1 */
	fe_sqn(&t1, &t0, 5);
	fe_mul(&t0, &t1, &t0); /* 2^10 - 1 */
	fe_sqn(&t1, &t0, 10);
	fe_mul(&t1, &t1, &t0); /* 2^20 - 1 */
	fe_sqn(&t2, &t1, 20);
	fe_mul(&t1, &t2, &t1); /* 2^40 - 1 */
	fe_sqn(&t1, &t1, 10);
	fe_mul(&t0, &t1, &t0); /* 2^50 - 1 */
	fe_sqn(&t1, &t0, 50);
	fe_mul(&t1, &t1, &t0); /* 2^100 - 1 */
	fe_sqn(&t2, &t1, 100);
	fe_mul(&t1, &t2, &t1); /* 2^200 - 1 */
	fe_sqn(&t1, &t1, 50);
	fe_mul(&t0, &t1, &t0); /* 2^250 - 1 */
	fe_sqn(&t0, &t0, 2);   /* 2^252 - 4 */
	fe_mul(out, &t0, z);   /* 2^252 - 3 */
}

static void
fe_invert(struct fe *out, const struct fe *z)
{
	struct fe t, z3;

	/* z^(p-2) = z^(2^255 - 21) = (z^(2^252 - 3))^8 * z^3 */
	fe_pow22523(&t, z);
	fe_sqn(&t, &t, 3);
	fe_sq(&z3, z);
	fe_mul(&z3, &z3, z);
	fe_mul(out, &t, &z3);
}

/* RFC 9496 SQRT_RATIO_M1: r = sqrt(u/v) or sqrt(i*u/v); returns was_square */
static bool
fe_sqrt_ratio_m1(struct fe *r, const struct fe *u, const struct fe *v)
{
	struct fe v3, v7, t, check, neg_u, neg_u_i;
	bool correct, flipped, flipped_i;

	fe_sq(&v3, v);
	fe_mul(&v3, &v3, v); /* v^3 */
	fe_sq(&v7, &v3);
	fe_mul(&v7, &v7, v); /* v^7 */
	fe_mul(&t, u, &v7);
	fe_pow22523(&t, &t);
	fe_mul(&t, &t, &v3);
	fe_mul(r, &t, u); /* (u v^3)(u v^7)^((p-5)/8) */
	fe_sq(&check, r);
	fe_mul(&check, &check, v);
	fe_neg(&neg_u, u);
	fe_mul(&neg_u_i, &neg_u, &fe_sqrtm1);
	correct = fe_equal(&check, u);
	flipped = fe_equal(&check, &neg_u);
	flipped_i = fe_equal(&check, &neg_u_i);
	if (flipped || flipped_i) {
		fe_mul(r, r, &fe_sqrtm1);
	}
	fe_abs(r, r);
	return correct || flipped;
}

/* ---------------- group ---------------- */

static void
ge_p3_identity(struct ge_p3 *h)
{
	fe_set(&h->X, 0);
	fe_set(&h->Y, 1);
	fe_set(&h->Z, 1);
	fe_set(&h->T, 0);
}

static void
ge_p1p1_to_p2(struct ge_p2 *r, const struct ge_p1p1 *p)
{
	fe_mul(&r->X, &p->X, &p->T);
	fe_mul(&r->Y, &p->Y, &p->Z);
	fe_mul(&r->Z, &p->Z, &p->T);
}

static void
ge_p1p1_to_p3(struct ge_p3 *r, const struct ge_p1p1 *p)
{
	fe_mul(&r->X, &p->X, &p->T);
	fe_mul(&r->Y, &p->Y, &p->Z);
	fe_mul(&r->Z, &p->Z, &p->T);
	fe_mul(&r->T, &p->X, &p->Y);
}

static void
ge_p3_to_cached(struct ge_cached *r, const struct ge_p3 *p)
{
	fe_add(&r->YplusX, &p->Y, &p->X);
	fe_sub(&r->YminusX, &p->Y, &p->X);
	r->Z = p->Z;
	fe_mul(&r->T2d, &p->T, &fe_d2);
}

/* 2p (dbl-2008-hwcd, a = -1) */
static void
ge_p2_dbl(struct ge_p1p1 *r, const struct ge_p2 *p)
{
	struct fe t0;

	fe_sq(&r->X, &p->X);
	fe_sq(&r->Z, &p->Y);
	fe_sq(&r->T, &p->Z);
	fe_add(&r->T, &r->T, &r->T);
	fe_add(&r->Y, &p->X, &p->Y);
	fe_sq(&t0, &r->Y);
	fe_add(&r->Y, &r->Z, &r->X);
	fe_sub(&r->Z, &r->Z, &r->X);
	fe_sub(&r->X, &t0, &r->Y);
	fe_sub(&r->T, &r->T, &r->Z);
}

/* The common last step of both additions: t0 = 2·Z1·Z2 (2·Z1 for affine q). */
static void
add_finish(struct ge_p1p1 *r, const struct fe *t0, bool neg)
{
	fe_sub(&r->X, &r->Z, &r->Y);
	fe_add(&r->Y, &r->Z, &r->Y);
	if (neg) {
		fe_sub(&r->Z, t0, &r->T);
		fe_add(&r->T, t0, &r->T);
	} else {
		fe_add(&r->Z, t0, &r->T);
		fe_sub(&r->T, t0, &r->T);
	}
}

/* p + q, or p - q when neg (add-2008-hwcd-3) */
static void
ge_add_cached(struct ge_p1p1 *r, const struct ge_p3 *p, const struct ge_cached *q, bool neg)
{
	struct fe t0;

	fe_add(&r->X, &p->Y, &p->X);
	fe_sub(&r->Y, &p->Y, &p->X);
	fe_mul(&r->Z, &r->X, neg ? &q->YminusX : &q->YplusX);
	fe_mul(&r->Y, &r->Y, neg ? &q->YplusX : &q->YminusX);
	fe_mul(&r->T, &q->T2d, &p->T);
	fe_mul(&r->X, &p->Z, &q->Z);
	fe_add(&t0, &r->X, &r->X);
	add_finish(r, &t0, neg);
}

/* p + q or p - q with q affine (Z = 1) */
static void
ge_add_precomp(struct ge_p1p1 *r, const struct ge_p3 *p, const struct ge_precomp *q, bool neg)
{
	struct fe t0;

	fe_add(&r->X, &p->Y, &p->X);
	fe_sub(&r->Y, &p->Y, &p->X);
	fe_mul(&r->Z, &r->X, neg ? &q->yminusx : &q->yplusx);
	fe_mul(&r->Y, &r->Y, neg ? &q->yplusx : &q->yminusx);
	fe_mul(&r->T, &q->xy2d, &p->T);
	fe_add(&t0, &p->Z, &p->Z);
	add_finish(r, &t0, neg);
}

static void
ge_p3_add(struct ge_p3 *r, const struct ge_p3 *p, const struct ge_p3 *q)
{
	struct ge_cached c;
	struct ge_p1p1 t;

	ge_p3_to_cached(&c, q);
	ge_add_cached(&t, p, &c, false);
	ge_p1p1_to_p3(r, &t);
}

static void
ge_p3_dbl(struct ge_p3 *r, const struct ge_p3 *p)
{
	struct ge_p2 q = { p->X, p->Y, p->Z };
	struct ge_p1p1 t;

	ge_p2_dbl(&t, &q);
	ge_p1p1_to_p3(r, &t);
}

/* ---------------- Ristretto encoding (RFC 9496 §4.3.1, §4.3.2) ---------------- */

static int
ristretto_decode(struct ge_p3 *h, const uint8_t in[32])
{
	struct fe s, ss, u1, u2, u2_sqr, v, invsqrt, den_x, den_y, t, one;
	uint8_t back[32];

	fe_frombytes(&s, in);
	fe_tobytes(back, &s);
	if (memcmp(back, in, 32) != 0 || (in[0] & 1)) {
		return -1; /* not canonical (>= p or bit 255 set), or negative */
	}
	fe_set(&one, 1);
	fe_sq(&ss, &s);
	fe_sub(&u1, &one, &ss);
	fe_add(&u2, &one, &ss);
	fe_sq(&u2_sqr, &u2);
	fe_sq(&v, &u1);
	fe_mul(&v, &v, &fe_d);
	fe_neg(&v, &v);
	fe_sub(&v, &v, &u2_sqr); /* -(d u1^2) - u2^2 */
	fe_mul(&t, &v, &u2_sqr);
	bool was_square = fe_sqrt_ratio_m1(&invsqrt, &one, &t);
	fe_mul(&den_x, &invsqrt, &u2);
	fe_mul(&den_y, &invsqrt, &den_x);
	fe_mul(&den_y, &den_y, &v);
	fe_add(&t, &s, &s);
	fe_mul(&t, &t, &den_x);
	fe_abs(&h->X, &t);
	fe_mul(&h->Y, &u1, &den_y);
	fe_set(&h->Z, 1);
	fe_mul(&h->T, &h->X, &h->Y);
	if (!was_square || fe_is_negative(&h->T) || fe_is_zero(&h->Y)) {
		return -1;
	}
	return 0;
}

static void
ristretto_encode(uint8_t out[32], const struct ge_p3 *p)
{
	struct fe u1, u2, t, invsqrt, den1, den2, z_inv, ix, iy, x, y, den_inv, one;

	fe_add(&u1, &p->Z, &p->Y);
	fe_sub(&t, &p->Z, &p->Y);
	fe_mul(&u1, &u1, &t);
	fe_mul(&u2, &p->X, &p->Y);
	fe_sq(&t, &u2);
	fe_mul(&t, &t, &u1);
	fe_set(&one, 1);
	(void)fe_sqrt_ratio_m1(&invsqrt, &one, &t);
	fe_mul(&den1, &invsqrt, &u1);
	fe_mul(&den2, &invsqrt, &u2);
	fe_mul(&z_inv, &den1, &den2);
	fe_mul(&z_inv, &z_inv, &p->T);
	fe_mul(&t, &p->T, &z_inv);
	if (fe_is_negative(&t)) {
		fe_mul(&ix, &p->X, &fe_sqrtm1);
		fe_mul(&iy, &p->Y, &fe_sqrtm1);
		x = iy;
		y = ix;
		fe_mul(&den_inv, &den1, &fe_invsqrt_a_minus_d);
	} else {
		x = p->X;
		y = p->Y;
		den_inv = den2;
	}
	fe_mul(&t, &x, &z_inv);
	if (fe_is_negative(&t)) {
		fe_neg(&y, &y);
	}
	fe_sub(&t, &p->Z, &y);
	fe_mul(&t, &t, &den_inv);
	fe_abs(&t, &t);
	fe_tobytes(out, &t);
}

/* ---------------- scalar multiplication ---------------- */

/* width-w NAF of a scalar below 2^253: naf[i] odd in (-2^(w-1), 2^(w-1)) or 0 */
static void
wnaf(int8_t naf[NAF_LEN], const uint8_t s[32], unsigned w)
{
	uint8_t bits[NAF_LEN + 16];
	int width = 1 << w, half = 1 << (w - 1);

	memset(bits, 0, sizeof(bits));
	memset(naf, 0, NAF_LEN);
	for (unsigned i = 0; i < 256; i++) {
		bits[i] = (s[i >> 3] >> (i & 7)) & 1;
	}
	for (unsigned pos = 0; pos < NAF_LEN;) {
		if (!bits[pos]) {
			pos++;
			continue;
		}
		int win = 0;
		for (unsigned j = 0; j < w; j++) {
			win |= bits[pos + j] << j;
			bits[pos + j] = 0;
		}
		if (win >= half) {
			unsigned j = pos + w;
			while (bits[j]) {
				bits[j++] = 0;
			}
			bits[j] = 1;
			win -= width;
		}
		naf[pos] = (int8_t)win;
		pos += w;
	}
}

static int
build_base_table(void)
{
	struct ge_p3 B, B2, P;
	struct fe zinv, x, y;

	if (ristretto_decode(&B, basepoint_bytes) != 0) {
		return -1;
	}
	ge_p3_dbl(&B2, &B);
	P = B;
	for (size_t i = 0; i < BX_ARRAY_SIZE(base_table); i++) {
		fe_invert(&zinv, &P.Z);
		fe_mul(&x, &P.X, &zinv);
		fe_mul(&y, &P.Y, &zinv);
		fe_add(&base_table[i].yplusx, &y, &x);
		fe_sub(&base_table[i].yminusx, &y, &x);
		fe_mul(&base_table[i].xy2d, &x, &y);
		fe_mul(&base_table[i].xy2d, &base_table[i].xy2d, &fe_d2);
		fe_carry(&base_table[i].yplusx);
		ge_p3_add(&P, &P, &B2);
	}
	return 0;
}

int
bx_ristretto_init(void)
{
	return build_base_table();
}

bool
bx_ristretto_is_valid(const uint8_t p[32])
{
	struct ge_p3 h;

	return ristretto_decode(&h, p) == 0;
}

/* One step of the interleaved loop at bit i. */
static void
dsm_step(struct ge_p2 *r, struct ge_p3 *out, int na, int nb, const struct ge_cached Ai[8],
         bool last)
{
	struct ge_p1p1 t;
	struct ge_p3 u;

	ge_p2_dbl(&t, r);
	if (na != 0) {
		ge_p1p1_to_p3(&u, &t);
		ge_add_cached(&t, &u, &Ai[(na < 0 ? -na : na) / 2], na < 0);
	}
	if (nb != 0) {
		ge_p1p1_to_p3(&u, &t);
		ge_add_precomp(&t, &u, &base_table[(nb < 0 ? -nb : nb) / 2], nb < 0);
	}
	if (last) {
		ge_p1p1_to_p3(out, &t);
	} else {
		ge_p1p1_to_p2(r, &t);
	}
}

/* Odd multiples of -P into tab[0..count) (P is negated in place). */
static void
odd_multiples_neg(struct ge_cached *tab, size_t count, struct ge_p3 *P)
{
	struct ge_p3 P2, Q;

	fe_neg(&P->X, &P->X);
	fe_neg(&P->T, &P->T);
	ge_p3_dbl(&P2, P);
	Q = *P;
	for (size_t k = 0; k < count; k++) {
		ge_p3_to_cached(&tab[k], &Q);
		if (k + 1 < count) {
			ge_p3_add(&Q, &Q, &P2);
		}
	}
}

_Static_assert(sizeof(struct ge_cached) * (1 << (A_WNAF - 2)) == BX_RISTRETTO_TABLE_BYTES,
               "table size");

int
bx_ristretto_table_neg(uint8_t table[BX_RISTRETTO_TABLE_BYTES], const uint8_t A[32])
{
	struct ge_cached Ai[1 << (A_WNAF - 2)];
	struct ge_p3 P;

	if (ristretto_decode(&P, A) != 0) {
		return -1;
	}
	odd_multiples_neg(Ai, BX_ARRAY_SIZE(Ai), &P);
	memcpy(table, Ai, sizeof(Ai));
	return 0;
}

void
bx_ristretto_dsm_table_vartime(uint8_t out[32], const uint8_t s[32], const uint8_t c[32],
                               const uint8_t table[BX_RISTRETTO_TABLE_BYTES])
{
	int8_t na[NAF_LEN], nb[NAF_LEN];
	struct ge_cached Ai[1 << (A_WNAF - 2)];
	struct ge_p3 res;
	struct ge_p2 r;
	int i;

	memcpy(Ai, table, sizeof(Ai));
	wnaf(na, c, A_WNAF);
	wnaf(nb, s, B_WNAF);
	for (i = NAF_LEN - 1; i >= 0 && na[i] == 0 && nb[i] == 0; i--) {
	}
	if (i < 0) {
		ge_p3_identity(&res);
	} else {
		fe_set(&r.X, 0);
		fe_set(&r.Y, 1);
		fe_set(&r.Z, 1);
		for (; i >= 0; i--) {
			dsm_step(&r, &res, na[i], nb[i], Ai, i == 0);
		}
	}
	ristretto_encode(out, &res);
}

int
bx_ristretto_double_scalarmult_vartime(uint8_t out[32], const uint8_t s[32], const uint8_t c[32],
                                       const uint8_t A[32])
{
	uint8_t table[BX_RISTRETTO_TABLE_BYTES];

	if (bx_ristretto_table_neg(table, A) != 0) {
		return -1;
	}
	bx_ristretto_dsm_table_vartime(out, s, c, table);
	return 0;
}

/* ---------------- batch equation ---------------- */

#define R_WNAF 4

struct batch_point {
	struct ge_cached A[1 << (A_WNAF - 2)]; /* -A, -3A, ..., -15A */
	struct ge_cached R[1 << (R_WNAF - 2)]; /* -R, -3R, -5R, -7R */
	int8_t na[NAF_LEN], nr[NAF_LEN];
};

static void
batch_step(struct ge_p2 *r, struct ge_p3 *out, const struct batch_point *pts, size_t n, int nb,
           int i)
{
	struct ge_p1p1 t;
	struct ge_p3 u;

	ge_p2_dbl(&t, r);
	for (size_t k = 0; k < n; k++) {
		int a = (int)pts[k].na[i], b = (int)pts[k].nr[i];
		if (a != 0) {
			ge_p1p1_to_p3(&u, &t);
			ge_add_cached(&t, &u, &pts[k].A[(a < 0 ? -a : a) / 2], a < 0);
		}
		if (b != 0) {
			ge_p1p1_to_p3(&u, &t);
			ge_add_cached(&t, &u, &pts[k].R[(b < 0 ? -b : b) / 2], b < 0);
		}
	}
	if (nb != 0) {
		ge_p1p1_to_p3(&u, &t);
		ge_add_precomp(&t, &u, &base_table[(nb < 0 ? -nb : nb) / 2], nb < 0);
	}
	if (i == 0) {
		ge_p1p1_to_p3(out, &t);
	} else {
		ge_p1p1_to_p2(r, &t);
	}
}

/* Highest index where any of the NAFs is non-zero, or -1. */
static int
batch_top(const struct batch_point *pts, size_t n, const int8_t *nb)
{
	for (int i = NAF_LEN - 1; i >= 0; i--) {
		if (nb[i] != 0) {
			return i;
		}
		for (size_t k = 0; k < n; k++) {
			if (pts[k].na[i] != 0 || pts[k].nr[i] != 0) {
				return i;
			}
		}
	}
	return -1;
}

int
bx_ristretto_batch_vartime(const uint8_t bsum[32], size_t n, const uint8_t *const A[],
                           const uint8_t (*zc)[32], const uint8_t *const R[],
                           const uint8_t (*z)[32])
{
	struct batch_point pts[BX_RISTRETTO_BATCH_MAX];
	struct ge_p3 P, res;
	struct ge_p2 r;
	int8_t nb[NAF_LEN];
	uint8_t enc[32], acc = 0;
	int i;

	if (n == 0 || n > BX_RISTRETTO_BATCH_MAX) {
		return -1;
	}
	for (size_t k = 0; k < n; k++) {
		if (ristretto_decode(&P, A[k]) != 0) {
			return -1;
		}
		odd_multiples_neg(pts[k].A, BX_ARRAY_SIZE(pts[k].A), &P);
		if (ristretto_decode(&P, R[k]) != 0) {
			return -1;
		}
		odd_multiples_neg(pts[k].R, BX_ARRAY_SIZE(pts[k].R), &P);
		wnaf(pts[k].na, zc[k], A_WNAF);
		wnaf(pts[k].nr, z[k], R_WNAF);
	}
	wnaf(nb, bsum, B_WNAF);
	i = batch_top(pts, n, nb);
	if (i < 0) {
		return 0;
	}
	fe_set(&r.X, 0);
	fe_set(&r.Y, 1);
	fe_set(&r.Z, 1);
	for (; i >= 0; i--) {
		batch_step(&r, &res, pts, n, nb[i], i);
	}
	ristretto_encode(enc, &res);
	for (int k = 0; k < 32; k++) {
		acc |= enc[k];
	}
	return acc == 0 ? 0 : -1;
}
