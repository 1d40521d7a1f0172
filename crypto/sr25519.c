/*
 * sr25519: schnorrkel Schnorr signatures on Ristretto255 (sr25519.md §2-§4).
 * Signing uses libsodium's constant-time ristretto255 operations; verifying
 * uses the variable-time double-scalar multiplication in ristretto.c (public
 * data only), with a libsodium-only reference kept for tests.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "crypto_int.h"

static const uint8_t L_BYTES[32] = {
	0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7,
	0xa2, 0xde, 0xf9, 0xde, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10,
};

/* Longest message or context: Merlin's u32 length, less room for <Bytes></Bytes>. */
#define MSG_LEN_MAX ((size_t)UINT32_MAX - 15)

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_rc = -EIO;
static struct bx_transcript substrate_prefix; /* Transcript("SigningContext") + ctx */

static void
signing_prefix(struct bx_transcript *t, const void *ctx, size_t ctx_len)
{
	bx_transcript_init(t, "SigningContext");
	bx_transcript_append(t, "", ctx, ctx_len);
}

static void
crypto_init_once(void)
{
	if (sodium_init() < 0) {
		return;
	}
	signing_prefix(&substrate_prefix, "substrate", 9);
	if (bx_ristretto_init() != 0) {
		return;
	}
	init_rc = 0;
}

int
bx_crypto_init(void)
{
	pthread_once(&init_once, crypto_init_once);
	return init_rc;
}

bool
bx_scalar_is_canonical(const uint8_t s[32])
{
	/* public data: a plain comparison with l from the top byte down */
	for (int i = 31; i >= 0; i--) {
		if (s[i] < L_BYTES[i]) {
			return true;
		}
		if (s[i] > L_BYTES[i]) {
			return false;
		}
	}
	return false; /* s == l */
}

/* Constant-time: s < l, for secret scalars. */
static bool
scalar_is_canonical_ct(const uint8_t s[32])
{
	uint8_t wide[64] = { 0 }, red[32];
	bool ok;

	memcpy(wide, s, 32);
	crypto_core_ristretto255_scalar_reduce(red, wide);
	ok = sodium_memcmp(red, s, 32) == 0;
	sodium_memzero(wide, sizeof(wide));
	sodium_memzero(red, sizeof(red));
	return ok;
}

void
bx_signing_transcript(struct bx_transcript *t, const void *ctx, size_t ctx_len, const void *msg,
                      size_t len)
{
	if (ctx_len == 9 && memcmp(ctx, "substrate", 9) == 0 && bx_crypto_init() == 0) {
		*t = substrate_prefix;
	} else {
		signing_prefix(t, ctx, ctx_len);
	}
	bx_transcript_append(t, "sign-bytes", msg, len);
}

/* The same with the message as "<Bytes>" || msg || "</Bytes>", without copying it. */
static void
signing_transcript_wrapped(struct bx_transcript *t, const void *msg, size_t len)
{
	uint8_t l[4];
	size_t n = len + 15;

	*t = substrate_prefix; /* bx_crypto_init() has run */
	l[0] = (uint8_t)n;
	l[1] = (uint8_t)(n >> 8);
	l[2] = (uint8_t)(n >> 16);
	l[3] = (uint8_t)(n >> 24);
	bx_strobe_meta_ad(&t->strobe, "sign-bytes", 10, false);
	bx_strobe_meta_ad(&t->strobe, l, 4, true);
	bx_strobe_ad(&t->strobe, "<Bytes>", 7, false);
	bx_strobe_ad(&t->strobe, msg, len, true);
	bx_strobe_ad(&t->strobe, "</Bytes>", 8, true);
}

void
bx_sr25519_challenge(uint8_t c[32], struct bx_transcript *t, const uint8_t pub[32],
                     const uint8_t R[32])
{
	uint8_t wide[64];

	bx_transcript_append(t, "proto-name", "Schnorr-sig", 11);
	bx_transcript_append(t, "sign:pk", pub, 32);
	bx_transcript_append(t, "sign:R", R, 32);
	bx_transcript_challenge(t, "sign:c", wide, 64);
	crypto_core_ristretto255_scalar_reduce(c, wide);
}

/* ---------------- keypairs ---------------- */

int
bx_sr25519_keypair_alloc(struct bx_sr25519_keypair **out)
{
	struct bx_sr25519_keypair *kp;

	if (bx_crypto_init() != 0) {
		return -EIO;
	}
	kp = bx_calloc(1, sizeof(*kp));
	if (kp == NULL) {
		return -ENOMEM;
	}
	kp->sec = sodium_malloc(sizeof(*kp->sec));
	if (kp->sec == NULL) {
		bx_free(kp);
		return -ENOMEM;
	}
	memset(kp->sec, 0, sizeof(*kp->sec));
	*out = kp;
	return 0;
}

int
bx_sr25519_keypair_finish(struct bx_sr25519_keypair *kp)
{
	/* base(0) and base(l) return -1 (identity): a zero scalar is no key */
	if (crypto_scalarmult_ristretto255_base(kp->pub, kp->sec->x) != 0) {
		return -EINVAL;
	}
	sodium_mprotect_readonly(kp->sec);
	return 0;
}

void
bx_sr25519_keypair_destroy(struct bx_sr25519_keypair *kp)
{
	if (kp == NULL) {
		return;
	}
	sodium_free(kp->sec); /* makes it writable, wipes, unlocks */
	sodium_memzero(kp, sizeof(*kp));
	bx_free(kp);
}

void
bx_sr25519_expand_ed25519(const uint8_t mini[32], uint8_t x[32], uint8_t nonce[32])
{
	uint8_t h[64];
	uint8_t carry = 0;

	crypto_hash_sha512(h, mini, 32);
	h[0] &= 248;
	h[31] &= 63;
	h[31] |= 64;
	/* divide the clamped half by the cofactor (schnorrkel divide_scalar_bytes_by_cofactor) */
	for (int i = 31; i >= 0; i--) {
		uint8_t r = h[i] & 7;
		h[i] = (uint8_t)((h[i] >> 3) + carry);
		carry = (uint8_t)(r << 5);
	}
	memcpy(x, h, 32);
	memcpy(nonce, h + 32, 32);
	sodium_memzero(h, sizeof(h));
}

int
bx_sr25519_keypair_from_seed(const uint8_t mini_secret[32], struct bx_sr25519_keypair **out)
{
	struct bx_sr25519_keypair *kp;
	int rc = bx_sr25519_keypair_alloc(&kp);

	if (rc != 0) {
		return rc;
	}
	bx_sr25519_expand_ed25519(mini_secret, kp->sec->x, kp->sec->nonce);
	memcpy(kp->sec->seed, mini_secret, 32);
	kp->sec->has_seed = true;
	rc = bx_sr25519_keypair_finish(kp);
	if (rc != 0) {
		bx_sr25519_keypair_destroy(kp);
		return rc;
	}
	*out = kp;
	return 0;
}

int
bx_sr25519_keypair_from_secret(const uint8_t secret[64], enum bx_sr25519_secret_format fmt,
                               struct bx_sr25519_keypair **out)
{
	struct bx_sr25519_keypair *kp;
	int rc;

	if (fmt != BX_SR25519_SECRET_SCHNORRKEL && fmt != BX_SR25519_SECRET_ED25519) {
		return -EINVAL;
	}
	rc = bx_sr25519_keypair_alloc(&kp);
	if (rc != 0) {
		return rc;
	}
	if (fmt == BX_SR25519_SECRET_SCHNORRKEL) {
		memcpy(kp->sec->x, secret, 32);
	} else {
		/* from_ed25519_bytes: shift the 256-bit LE value right by 3 */
		for (int i = 0; i < 32; i++) {
			unsigned hi = i < 31 ? secret[i + 1] : 0;
			kp->sec->x[i] = (uint8_t)((secret[i] >> 3) | (hi << 5));
		}
	}
	memcpy(kp->sec->nonce, secret + 32, 32);
	if (!scalar_is_canonical_ct(kp->sec->x)) {
		bx_sr25519_keypair_destroy(kp);
		return -EINVAL;
	}
	rc = bx_sr25519_keypair_finish(kp);
	if (rc != 0) {
		bx_sr25519_keypair_destroy(kp);
		return rc;
	}
	*out = kp;
	return 0;
}

const uint8_t *
bx_sr25519_public(const struct bx_sr25519_keypair *kp)
{
	return kp->pub;
}

int
bx_sr25519_keypair_secret(const struct bx_sr25519_keypair *kp, uint8_t out[64],
                          enum bx_sr25519_secret_format fmt)
{
	if (fmt == BX_SR25519_SECRET_ED25519) {
		unsigned carry = 0;
		for (int i = 0; i < 32; i++) {
			unsigned v = ((unsigned)kp->sec->x[i] << 3) | carry;
			out[i] = (uint8_t)v;
			carry = v >> 8;
		}
	} else {
		memcpy(out, kp->sec->x, 32);
	}
	memcpy(out + 32, kp->sec->nonce, 32);
	return 0;
}

int
bx_sr25519_keypair_seed(const struct bx_sr25519_keypair *kp, uint8_t out[32])
{
	if (!kp->sec->has_seed) {
		return -ENOENT;
	}
	memcpy(out, kp->sec->seed, 32);
	return 0;
}

/* ---------------- signing ---------------- */

int
bx_sr25519_sign_ctx(uint8_t sig[64], const void *ctx, size_t ctx_len, const void *msg, size_t len,
                    const struct bx_sr25519_keypair *kp, const uint8_t rnd[32])
{
	struct bx_transcript t;
	struct bx_transcript_rng rng;
	uint8_t rbuf[32], wide[64], r[32], c[32], s[32];
	int rc = 0;

	if (bx_crypto_init() != 0) {
		return -EIO;
	}
	/* Merlin frames lengths as u32 (and panics beyond); so do we, by refusing */
	if (len > MSG_LEN_MAX || ctx_len > MSG_LEN_MAX) {
		return -EMSGSIZE;
	}
	bx_signing_transcript(&t, ctx, ctx_len, msg, len);
	bx_transcript_append(&t, "proto-name", "Schnorr-sig", 11);
	bx_transcript_append(&t, "sign:pk", kp->pub, 32);

	if (rnd == NULL) {
		randombytes_buf(rbuf, sizeof(rbuf));
		rnd = rbuf;
	}
	bx_transcript_rng_begin(&rng, &t);
	bx_transcript_rng_witness(&rng, "signing", kp->sec->nonce, 32);
	bx_transcript_rng_finalize(&rng, rnd);
	bx_transcript_rng_fill(&rng, wide, 64);
	crypto_core_ristretto255_scalar_reduce(r, wide);

	/* r == 0 has probability 2^-252; base() then reports the identity */
	if (crypto_scalarmult_ristretto255_base(sig, r) != 0) {
		memset(sig, 0, 64);
		rc = -EIO;
		goto out_wipe;
	}
	bx_transcript_append(&t, "sign:R", sig, 32);
	bx_transcript_challenge(&t, "sign:c", wide, 64);
	crypto_core_ristretto255_scalar_reduce(c, wide);
	crypto_core_ristretto255_scalar_mul(s, c, kp->sec->x);
	crypto_core_ristretto255_scalar_add(s, s, r);
	memcpy(sig + 32, s, 32);
	sig[63] |= 0x80;
out_wipe:
	sodium_memzero(&rng, sizeof(rng));
	sodium_memzero(rbuf, sizeof(rbuf));
	sodium_memzero(wide, sizeof(wide));
	sodium_memzero(r, sizeof(r));
	sodium_memzero(s, sizeof(s));
	sodium_memzero(&t, sizeof(t));
	return rc;
}

int
bx_sr25519_sign(uint8_t sig[64], const void *msg, size_t len, const struct bx_sr25519_keypair *kp)
{
	return bx_sr25519_sign_ctx(sig, "substrate", 9, msg, len, kp, NULL);
}

/* ---------------- verification ---------------- */

static bool
is_zero32(const uint8_t p[32])
{
	uint8_t acc = 0;
	for (int i = 0; i < 32; i++) {
		acc |= p[i];
	}
	return acc == 0;
}

/*
 * Checks shared by every verifier; fills s (marker cleared) and c. ctx NULL:
 * context "substrate" with the message wrapped in <Bytes>...</Bytes>.
 */
static int
verify_prepare(uint8_t s[32], uint8_t c[32], const uint8_t sig[64], const void *ctx, size_t ctx_len,
               const void *msg, size_t len, const uint8_t pub[32])
{
	struct bx_transcript t;

	_Static_assert(sizeof(((struct bx_sr25519_public_prepared *)0)->table) ==
	                       BX_RISTRETTO_TABLE_BYTES,
	               "prepared table size");
	if (bx_crypto_init() != 0 || len > MSG_LEN_MAX || ctx_len > MSG_LEN_MAX) {
		return -EBADMSG;
	}
	if ((sig[63] & 0x80) == 0) { /* NotMarkedSchnorrkel (pre-audit signature) */
		return -EBADMSG;
	}
	memcpy(s, sig + 32, 32);
	s[31] &= 0x7f;
	if (!bx_scalar_is_canonical(s)) {
		return -EBADMSG;
	}
	/* identity public key and identity R are refused (sr25519.md §3.3, §9.15) */
	if (is_zero32(pub) || is_zero32(sig)) {
		return -EBADMSG;
	}
	if (ctx == NULL) {
		signing_transcript_wrapped(&t, msg, len);
	} else {
		bx_signing_transcript(&t, ctx, ctx_len, msg, len);
	}
	bx_sr25519_challenge(c, &t, pub, sig);
	return 0;
}

int
bx_sr25519_verify_ctx(const uint8_t sig[64], const void *ctx, size_t ctx_len, const void *msg,
                      size_t len, const uint8_t pub[32])
{
	uint8_t s[32], c[32], R[32];

	if (verify_prepare(s, c, sig, ctx, ctx_len, msg, len, pub) != 0) {
		return -EBADMSG;
	}
	if (bx_ristretto_double_scalarmult_vartime(R, s, c, pub) != 0) {
		return -EBADMSG;
	}
	return memcmp(R, sig, 32) == 0 ? 0 : -EBADMSG;
}

int
bx_sr25519_verify(const uint8_t sig[64], const void *msg, size_t len, const uint8_t pub[32])
{
	return bx_sr25519_verify_ctx(sig, "substrate", 9, msg, len, pub);
}

int
bx_sr25519_public_prepare(struct bx_sr25519_public_prepared *pp, const uint8_t pub[32])
{
	if (bx_crypto_init() != 0 || is_zero32(pub) ||
	    bx_ristretto_table_neg((uint8_t *)pp->table, pub) != 0) {
		return -EINVAL;
	}
	memcpy(pp->pub, pub, 32);
	return 0;
}

int
bx_sr25519_verify_prepared(const uint8_t sig[64], const void *msg, size_t len,
                           const struct bx_sr25519_public_prepared *pp)
{
	uint8_t s[32], c[32], R[32];

	if (verify_prepare(s, c, sig, "substrate", 9, msg, len, pp->pub) != 0) {
		return -EBADMSG;
	}
	bx_ristretto_dsm_table_vartime(R, s, c, (const uint8_t *)pp->table);
	return memcmp(R, sig, 32) == 0 ? 0 : -EBADMSG;
}

int
bx_sr25519_verify_btwallet_prepared(const uint8_t sig[64], const void *msg, size_t len,
                                    const struct bx_sr25519_public_prepared *pp)
{
	uint8_t s[32], c[32], R[32];

	if (bx_sr25519_verify_prepared(sig, msg, len, pp) == 0) {
		return 0;
	}
	if (verify_prepare(s, c, sig, NULL, 0, msg, len, pp->pub) != 0) {
		return -EBADMSG;
	}
	bx_ristretto_dsm_table_vartime(R, s, c, (const uint8_t *)pp->table);
	return memcmp(R, sig, 32) == 0 ? 0 : -EBADMSG;
}

int
bx_sr25519_verify_btwallet(const uint8_t sig[64], const void *msg, size_t len,
                           const uint8_t pub[32])
{
	uint8_t s[32], c[32], R[32];

	if (bx_sr25519_verify_ctx(sig, "substrate", 9, msg, len, pub) == 0) {
		return 0;
	}
	if (verify_prepare(s, c, sig, NULL, 0, msg, len, pub) != 0 ||
	    bx_ristretto_double_scalarmult_vartime(R, s, c, pub) != 0) {
		return -EBADMSG;
	}
	return memcmp(R, sig, 32) == 0 ? 0 : -EBADMSG;
}

int
bx_sr25519_verify_ref(const uint8_t sig[64], const void *ctx, size_t ctx_len, const void *msg,
                      size_t len, const uint8_t pub[32])
{
	uint8_t s[32], c[32], sB[32], cA[32], R[32];

	if (verify_prepare(s, c, sig, ctx, ctx_len, msg, len, pub) != 0) {
		return -EBADMSG;
	}
	/* libsodium 1.0.18 ignores bit 255 of an encoding; schnorrkel refuses it */
	if ((pub[31] & 0x80) || !crypto_core_ristretto255_is_valid_point(pub)) {
		return -EBADMSG;
	}
	/* -1 from either means an identity result, which is a valid point here */
	if (crypto_scalarmult_ristretto255_base(sB, s) != 0) {
		memset(sB, 0, 32);
	}
	if (crypto_scalarmult_ristretto255(cA, c, pub) != 0) {
		memset(cA, 0, 32);
	}
	if (crypto_core_ristretto255_sub(R, sB, cA) != 0) {
		return -EBADMSG;
	}
	return memcmp(R, sig, 32) == 0 ? 0 : -EBADMSG;
}

bool
bx_sr25519_public_is_valid(const uint8_t pub[32])
{
	if (bx_crypto_init() != 0) {
		return false;
	}
	return !is_zero32(pub) && bx_ristretto_is_valid(pub);
}

bool
bx_crypto_equal(const void *a, const void *b, size_t len)
{
	return sodium_memcmp(a, b, len) == 0;
}

/* One chunk of at most BX_RISTRETTO_BATCH_MAX signatures. */
static int
verify_batch_chunk(const uint8_t *const sigs[], const void *const msgs[], const size_t lens[],
                   const uint8_t *const pubs[], size_t n)
{
	uint8_t s[32], c[32], zc[BX_RISTRETTO_BATCH_MAX][32], z[BX_RISTRETTO_BATCH_MAX][32];
	uint8_t bsum[32] = { 0 }, t[32];
	const uint8_t *R[BX_RISTRETTO_BATCH_MAX];

	for (size_t k = 0; k < n; k++) {
		if (verify_prepare(s, c, sigs[k], "substrate", 9, msgs[k], lens[k], pubs[k]) != 0) {
			return -EBADMSG;
		}
		/* random 128-bit weights the signer cannot foresee */
		memset(z[k], 0, 32);
		randombytes_buf(z[k], 16);
		z[k][0] |= 1; /* never zero */
		crypto_core_ristretto255_scalar_mul(zc[k], z[k], c);
		crypto_core_ristretto255_scalar_mul(t, z[k], s);
		crypto_core_ristretto255_scalar_add(bsum, bsum, t);
		R[k] = sigs[k];
	}
	return bx_ristretto_batch_vartime(bsum, n, pubs, (const uint8_t(*)[32])zc, R,
	                                  (const uint8_t(*)[32])z) == 0 ?
	               0 :
	               -EBADMSG;
}

int
bx_sr25519_verify_batch(const uint8_t *const sigs[], const void *const msgs[], const size_t lens[],
                        const uint8_t *const pubs[], size_t n)
{
	if (bx_crypto_init() != 0) {
		return -EBADMSG;
	}
	for (size_t off = 0; off < n; off += BX_RISTRETTO_BATCH_MAX) {
		size_t m = BX_MIN(n - off, (size_t)BX_RISTRETTO_BATCH_MAX);
		if (verify_batch_chunk(sigs + off, msgs + off, lens + off, pubs + off, m) != 0) {
			return -EBADMSG;
		}
	}
	return 0;
}
