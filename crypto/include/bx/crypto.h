/*
 * bx crypto: SHA3-256, sr25519 (schnorrkel on Ristretto255, context
 * "substrate"), SS58 addresses, substrate-bip39 mnemonics, SURIs with HDKD
 * junctions, and btwallet (btcli) keyfiles. Byte-compatible with schnorrkel,
 * sp-core and btwallet; see shared/research/sr25519.md.
 *
 * Conventions as in bx/platform.h: 0 or -errno, constructors set *out only
 * on success, destroy functions accept NULL, messages for people go into a
 * caller's struct bx_errbuf. Nothing here prints or exits.
 *
 * Secrets (mini secrets, scalars, nonces, mnemonics) live in sodium_malloc()
 * memory, are wiped before release, and never appear in error messages.
 *
 * Thread safety: every function is safe to call from several threads at
 * once on different objects; a keypair may be shared read-only (signing does
 * not modify it). bx_crypto_init() runs on first use of any function that
 * needs it; calling it once at start-up is cheaper.
 */
#ifndef BX_CRYPTO_H
#define BX_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bx/platform.h"

#define BX_SR25519_PUB_BYTES    32
#define BX_SR25519_SIG_BYTES    64
#define BX_SR25519_SEED_BYTES   32 /* mini secret */
#define BX_SR25519_SECRET_BYTES 64 /* scalar (32) || nonce (32) */

/* Longest SS58 text for a 32-byte key (2-byte prefix), NUL included, rounded up. */
#define BX_SS58_MAX_LEN 64
/* The network prefix Bittensor uses ("5..." addresses). */
#define BX_SS58_BITTENSOR 42

/* Initialise libsodium and the precomputed tables. 0 or -EIO. Idempotent. */
int bx_crypto_init(void);

/* ======================= Hashes ======================= */

/* SHA3-256 (FIPS 202). Always returns 0. */
int bx_sha3_256(uint8_t out[32], const void *msg, size_t len);

/* Incremental SHA3-256. */
struct bx_sha3_256_ctx {
	uint8_t st[200];
	size_t pos;
};

void bx_sha3_256_init(struct bx_sha3_256_ctx *ctx);
void bx_sha3_256_update(struct bx_sha3_256_ctx *ctx, const void *msg, size_t len);
void bx_sha3_256_final(struct bx_sha3_256_ctx *ctx, uint8_t out[32]);

/* The bare Keccak-f[1600] permutation on a 200-byte little-endian state. */
void bx_keccak_f1600(uint8_t st[200]);

/* ======================= sr25519 ======================= */

/* Opaque; the secret half lives in sodium_malloc() memory. */
struct bx_sr25519_keypair;

/* The two 64-byte secret-key layouts (sr25519.md §2.2). */
enum bx_sr25519_secret_format {
	/* scalar x (canonical, LE) || nonce: schnorrkel to_bytes, sp-core, btwallet "privateKey" */
	BX_SR25519_SECRET_SCHNORRKEL,
	/* 8x (LE, unreduced) || nonce: polkadot-js wasm, @scure/sr25519, PKCS8 */
	BX_SR25519_SECRET_ED25519,
};

/* Keypair from a 32-byte mini secret with schnorrkel's ExpandEd25519. 0, -ENOMEM, -EIO. */
int bx_sr25519_keypair_from_seed(const uint8_t mini_secret[32], struct bx_sr25519_keypair **out);

/*
 * Keypair from a 64-byte secret key in either layout. -EINVAL if the scalar
 * is not canonical or is zero (schnorrkel >= 0.11 rules), -ENOMEM.
 */
int bx_sr25519_keypair_from_secret(const uint8_t secret[64], enum bx_sr25519_secret_format fmt,
                                   struct bx_sr25519_keypair **out);

void bx_sr25519_keypair_destroy(struct bx_sr25519_keypair *kp);

/* 32-byte public key (compressed Ristretto255), valid while kp lives. */
const uint8_t *bx_sr25519_public(const struct bx_sr25519_keypair *kp);

/* Export the secret key (caller wipes it). Always 0. */
int bx_sr25519_keypair_secret(const struct bx_sr25519_keypair *kp, uint8_t out[64],
                              enum bx_sr25519_secret_format fmt);

/* Export the mini secret, when the keypair was made from one. 0 or -ENOENT. */
int bx_sr25519_keypair_seed(const struct bx_sr25519_keypair *kp, uint8_t out[32]);

/*
 * Sign with context "substrate" and fresh libsodium randomness. 0, -EIO, or
 * -EMSGSIZE for a message of 4 GiB or more (Merlin frames lengths as u32).
 */
int bx_sr25519_sign(uint8_t sig[64], const void *msg, size_t len,
                    const struct bx_sr25519_keypair *kp);

/*
 * Sign with any signing context. `rnd`: 32 bytes mixed into the witness
 * (tests and vectors); NULL takes 32 bytes from randombytes_buf().
 */
int bx_sr25519_sign_ctx(uint8_t sig[64], const void *ctx, size_t ctx_len, const void *msg,
                        size_t len, const struct bx_sr25519_keypair *kp, const uint8_t rnd[32]);

/*
 * Verify with context "substrate". Returns 0 (valid) or -EBADMSG (anything
 * else): missing schnorrkel marker, non-canonical s, public key that does
 * not decode or is the identity, R that is the identity, or a wrong
 * signature. Variable time (all inputs are public).
 */
int bx_sr25519_verify(const uint8_t sig[64], const void *msg, size_t len, const uint8_t pub[32])
	__bx_must_check;

/*
 * A public key decoded once, for many signatures by the same signer (the
 * validators' hotkeys): verifying against it skips the point decoding and
 * the table building, about a tenth of a verification. Caller-allocated,
 * read-only after bx_sr25519_public_prepare(), shareable between threads.
 */
struct bx_sr25519_public_prepared {
	uint8_t pub[32];
	uint64_t table[160]; /* opaque */
};

/* 0, or -EINVAL if pub does not decode or is the identity. */
int bx_sr25519_public_prepare(struct bx_sr25519_public_prepared *pp, const uint8_t pub[32]);

/* bx_sr25519_verify() against a prepared key: same results. */
int bx_sr25519_verify_prepared(const uint8_t sig[64], const void *msg, size_t len,
                               const struct bx_sr25519_public_prepared *pp) __bx_must_check;

/*
 * btwallet Keypair.verify (what the stock axon runs): the message as given,
 * and if that fails, "<Bytes>" || msg || "</Bytes>" (polkadot.js signRaw).
 * Same results as bx_sr25519_verify() otherwise; nothing is copied.
 */
int bx_sr25519_verify_btwallet(const uint8_t sig[64], const void *msg, size_t len,
                               const uint8_t pub[32]) __bx_must_check;
/* The same against a prepared key (the axon's case: a known validator). */
int bx_sr25519_verify_btwallet_prepared(const uint8_t sig[64], const void *msg, size_t len,
                                        const struct bx_sr25519_public_prepared *pp)
	__bx_must_check;

int bx_sr25519_verify_ctx(const uint8_t sig[64], const void *ctx, size_t ctx_len, const void *msg,
                          size_t len, const uint8_t pub[32]) __bx_must_check;

/*
 * Verify n signatures (context "substrate") together: 0 if every one is
 * valid, -EBADMSG if any is not (verify them one by one to learn which).
 * Each signature gets the same per-signature checks as bx_sr25519_verify();
 * the group equations are then summed with random 128-bit weights from
 * libsodium, 16 signatures per pass, so a forged set passes with
 * probability about 2^-128. Uses about 40 KiB of stack. n = 0 is valid.
 */
int bx_sr25519_verify_batch(const uint8_t *const sigs[], const void *const msgs[],
                            const size_t lens[], const uint8_t *const pubs[], size_t n)
	__bx_must_check;

/*
 * The same check built only from libsodium's ristretto255 calls (two scalar
 * multiplications). Slower; kept as the reference the fast path is tested
 * against.
 */
int bx_sr25519_verify_ref(const uint8_t sig[64], const void *ctx, size_t ctx_len, const void *msg,
                          size_t len, const uint8_t pub[32]) __bx_must_check;

/* true if pub decodes as a Ristretto255 point other than the identity. */
bool bx_sr25519_public_is_valid(const uint8_t pub[32]);

/* ======================= SS58 ======================= */

/*
 * SS58 text of a 32-byte public key under a network prefix (0..16383),
 * NUL-terminated. 0, -ENOSPC (out too small; BX_SS58_MAX_LEN always fits),
 * -EINVAL (prefix > 16383).
 */
int bx_ss58_encode(char *out, size_t out_len, const uint8_t pub[32], uint16_t prefix);

/*
 * Decode SS58 text of a 32-byte key (s need not be NUL-terminated). Any
 * network prefix is accepted and returned in *prefix (may be NULL). 0, or
 * -EINVAL with a message: bad base58 character (and where), wrong length,
 * invalid prefix byte, bad checksum.
 */
int bx_ss58_decode(const char *s, size_t len, uint8_t pub[32], uint16_t *prefix,
                   struct bx_errbuf *eb);

/* ======================= Mnemonics and SURIs ======================= */

/*
 * A new BIP39 English mnemonic of `words` words (12, 15, 18, 21 or 24) from
 * libsodium randomness, written NUL-terminated into out (256 bytes always
 * fit). 0, -EINVAL (word count), -ENOSPC.
 */
int bx_mnemonic_generate(char *out, size_t out_len, unsigned words);

/*
 * substrate-bip39: phrase -> entropy -> PBKDF2-HMAC-SHA512(entropy,
 * "mnemonic" || password, 2048) -> first 32 bytes. password may be NULL
 * (empty). 0 or -EINVAL with a message (unknown word, its position, word
 * count, checksum); never echoes the phrase.
 */
int bx_mnemonic_to_mini_secret(const char *phrase, const char *password, uint8_t mini[32],
                               struct bx_errbuf *eb);

/* true if phrase is a valid English mnemonic (words and checksum). */
bool bx_mnemonic_is_valid(const char *phrase);

/*
 * A keypair from a substrate secret URI: `<phrase or 0x-hex seed>[//hard][/soft]...[///password]`,
 * with the dev phrase when the phrase is empty (sp-core Pair::from_string).
 * 0, -EINVAL with a message, -ENOMEM.
 */
int bx_suri_to_keypair(const char *suri, struct bx_sr25519_keypair **out, struct bx_errbuf *eb);

/*
 * One HDKD step (sr25519.md §5.4, sp-core: empty extra input) with the
 * chain code of a junction (bx_junction_chain_code). Hard steps give a key
 * with a mini secret; soft steps a key without one (random nonce half).
 */
int bx_sr25519_derive_hard(const struct bx_sr25519_keypair *kp, const uint8_t chain_code[32],
                           struct bx_sr25519_keypair **out);
int bx_sr25519_derive_soft(const struct bx_sr25519_keypair *kp, const uint8_t chain_code[32],
                           struct bx_sr25519_keypair **out);
/* Public-only soft derivation. 0 or -EINVAL (pub does not decode). */
int bx_sr25519_derive_public_soft(uint8_t out[32], const uint8_t pub[32],
                                  const uint8_t chain_code[32]);
/* Junction text -> 32-byte chain code (u64 LE, or SCALE string, blake2b-256 if long). */
void bx_junction_chain_code(uint8_t cc[32], const char *junction, size_t len);

/* ======================= Keyfiles and wallets ======================= */

/*
 * Load a btwallet/btcli keyfile (hotkey or coldkey): plaintext JSON, or
 * "$NACL" (Argon2i + XSalsa20-Poly1305) when password is given. Key
 * material is taken in btwallet's order: secretPhrase, secretSeed,
 * privateKey; the result must match publicKey/ss58Address when present.
 * Errors name the file and the problem, never key material: -ENOENT,
 * -EACCES, -EINVAL (malformed, wrong lengths, public fields that do not
 * match), -EKEYREJECTED (wrong password or damaged $NACL), -ENOKEY
 * (encrypted but no password, or a public-only file), -ENOTSUP (legacy
 * ansible-vault/Fernet encryption), -ENOMEM.
 */
int bx_keyfile_load(const char *path, const char *password, struct bx_sr25519_keypair **out,
                    struct bx_errbuf *eb);

/* The same on a buffer; `name` is used in messages. */
int bx_keyfile_parse(const void *data, size_t len, const char *name, const char *password,
                     struct bx_sr25519_keypair **out, struct bx_errbuf *eb);

/* Public key of a keyfile that may be public-only (coldkeypub.txt, *pub.txt). */
int bx_keyfile_load_public(const char *path, uint8_t pub[32], struct bx_errbuf *eb);

/* true if the file starts with "$NACL" (or another encrypted-form prefix). */
bool bx_keyfile_is_encrypted(const void *data, size_t len);

/*
 * Write a keyfile as btwallet does: mode 0600, written to a temporary file
 * beside it and then linked (-EEXIST if the file exists) or, with
 * overwrite, renamed into place. mnemonic may be NULL. password NULL writes
 * plaintext JSON, otherwise "$NACL". Missing parent folders are created 0700.
 */
int bx_keyfile_write(const char *path, const struct bx_sr25519_keypair *kp, const char *mnemonic,
                     const char *password, bool overwrite, struct bx_errbuf *eb);

/* Public-only JSON (accountId, publicKey, ss58Address), as coldkeypub.txt. */
int bx_keyfile_write_public(const char *path, const uint8_t pub[32], bool overwrite,
                            struct bx_errbuf *eb);

/*
 * Paths in a btcli wallets directory (NULL wallets_dir: $BT_WALLET_PATH or
 * ~/.bittensor/wallets). 0, -ENOSPC, -EINVAL (a name containing '/' or "..").
 */
int bx_wallet_hotkey_path(char *buf, size_t len, const char *wallets_dir, const char *wallet,
                          const char *hotkey);
int bx_wallet_hotkeypub_path(char *buf, size_t len, const char *wallets_dir, const char *wallet,
                             const char *hotkey);
int bx_wallet_coldkey_path(char *buf, size_t len, const char *wallets_dir, const char *wallet);
int bx_wallet_coldkeypub_path(char *buf, size_t len, const char *wallets_dir, const char *wallet);

/* ======================= Helpers ======================= */

/* Constant-time equality of secrets: true if equal. */
bool bx_crypto_equal(const void *a, const void *b, size_t len);

/* Hex with optional 0x prefix into exactly out_len bytes. 0 or -EINVAL. */
int bx_hex_decode(uint8_t *out, size_t out_len, const char *hex, size_t hex_len);
/* Lower-case hex, NUL-terminated; out_size >= 2*len+1. */
void bx_hex_encode(char *out, const uint8_t *in, size_t len);

#endif /* BX_CRYPTO_H */
