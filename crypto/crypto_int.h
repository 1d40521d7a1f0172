/* Internal to crypto/: STROBE-128, Merlin transcripts, scalar helpers. */
#ifndef BX_CRYPTO_INT_H
#define BX_CRYPTO_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bx/crypto.h"

/* ---- STROBE-128 (the subset Merlin uses) ---- */
struct bx_strobe {
	uint8_t st[200];
	uint8_t pos;
	uint8_t pos_begin;
	uint8_t cur_flags;
};

void bx_strobe_init(struct bx_strobe *s, const void *label, size_t len);
void bx_strobe_meta_ad(struct bx_strobe *s, const void *data, size_t len, bool more);
void bx_strobe_ad(struct bx_strobe *s, const void *data, size_t len, bool more);
void bx_strobe_prf(struct bx_strobe *s, void *out, size_t len, bool more);
void bx_strobe_key(struct bx_strobe *s, const void *data, size_t len, bool more);

/* ---- Merlin ---- */
struct bx_transcript {
	struct bx_strobe strobe;
};

void bx_transcript_init(struct bx_transcript *t, const char *label);
void bx_transcript_append(struct bx_transcript *t, const char *label, const void *msg, size_t len);
void bx_transcript_challenge(struct bx_transcript *t, const char *label, void *out, size_t n);

/* TranscriptRng: witnesses into a clone, then 32 bytes of randomness. */
struct bx_transcript_rng {
	struct bx_strobe strobe;
};

void bx_transcript_rng_begin(struct bx_transcript_rng *r, const struct bx_transcript *t);
void bx_transcript_rng_witness(struct bx_transcript_rng *r, const char *label, const void *w,
                               size_t len);
void bx_transcript_rng_finalize(struct bx_transcript_rng *r, const uint8_t rnd[32]);
void bx_transcript_rng_fill(struct bx_transcript_rng *r, void *out, size_t n);

/* ---- keypair internals ---- */
struct bx_sr25519_secret {
	uint8_t x[32]; /* canonical scalar, LE */
	uint8_t nonce[32];
	uint8_t seed[32]; /* mini secret when has_seed */
	bool has_seed;
};

struct bx_sr25519_keypair {
	uint8_t pub[32];
	struct bx_sr25519_secret *sec; /* sodium_malloc, read-only after creation */
};

int bx_sr25519_keypair_alloc(struct bx_sr25519_keypair **out);
/* Compute pub from sec->x; -EINVAL if x is zero. */
int bx_sr25519_keypair_finish(struct bx_sr25519_keypair *kp);
void bx_sr25519_expand_ed25519(const uint8_t mini[32], uint8_t x[32], uint8_t nonce[32]);

bool bx_scalar_is_canonical(const uint8_t s[32]);
/* Transcript for the signing context with the prefix cached (SigningContext + ctx). */
void bx_signing_transcript(struct bx_transcript *t, const void *ctx, size_t ctx_len,
                           const void *msg, size_t len);
void bx_sr25519_challenge(uint8_t c[32], struct bx_transcript *t, const uint8_t pub[32],
                          const uint8_t R[32]);

/* ---- fast verify (ristretto.c) ---- */
int bx_ristretto_init(void);
/* R' = s*B - c*A, encoded; -1 if A does not decode. */
int bx_ristretto_double_scalarmult_vartime(uint8_t out[32], const uint8_t s[32],
                                           const uint8_t c[32], const uint8_t A[32]);
/*
 * Whether (bsum)B + sum_k zc_k(-A_k) + z_k(-R_k) is the identity, for at most
 * BX_RISTRETTO_BATCH_MAX terms: 0 yes, -1 no or a point does not decode.
 */
#define BX_RISTRETTO_BATCH_MAX 16
int bx_ristretto_batch_vartime(const uint8_t bsum[32], size_t n, const uint8_t *const A[],
                               const uint8_t (*zc)[32], const uint8_t *const R[],
                               const uint8_t (*z)[32]);
/* -A, -3A, ..., -15A for A's encoding (the verify table); -1 if A does not decode. */
#define BX_RISTRETTO_TABLE_BYTES 1280
int bx_ristretto_table_neg(uint8_t table[BX_RISTRETTO_TABLE_BYTES], const uint8_t A[32]);
/* s*B + c*(table's point), encoded. */
void bx_ristretto_dsm_table_vartime(uint8_t out[32], const uint8_t s[32], const uint8_t c[32],
                                    const uint8_t table[BX_RISTRETTO_TABLE_BYTES]);
/* Decode check only. */
bool bx_ristretto_is_valid(const uint8_t p[32]);

/* ---- base58 ---- */
size_t bx_base58_encode(char *out, size_t out_len, const uint8_t *in, size_t len);
/* 0, or -EINVAL with *bad = offset of first bad character (or len if too long). */
int bx_base58_decode(uint8_t *out, size_t *out_len, const char *in, size_t len, size_t *bad);

/* ---- bip39 ---- */
extern const char *const bx_bip39_english[2048];

/* ---- HDKD with an extra input i (tests against py-sr25519-bindings) ---- */
void bx_hdkd_hard_mini(uint8_t mini_out[32], uint8_t cc_out[32], const uint8_t x[32],
                       const uint8_t cc[32], const void *i, size_t ilen);
int bx_hdkd_derive_hard_i(const struct bx_sr25519_keypair *kp, const uint8_t cc[32], const void *i,
                          size_t ilen, struct bx_sr25519_keypair **out, uint8_t cc_out[32]);
int bx_hdkd_derive_soft_i(const struct bx_sr25519_keypair *kp, const uint8_t cc[32], const void *i,
                          size_t ilen, struct bx_sr25519_keypair **out, uint8_t cc_out[32],
                          const uint8_t rnd[32]);
/* ---- keyfiles: Argon2i cost (btwallet: OPSLIMIT/MEMLIMIT_SENSITIVE); tests lower it ---- */
extern unsigned long long bx_keyfile_kdf_ops;
extern size_t bx_keyfile_kdf_mem;

#endif
