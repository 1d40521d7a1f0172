/*
 * Secret URIs and hierarchical derivation (sr25519.md §5.3-5.4): sp-core
 * Pair::from_string and schnorrkel's derive.rs. Every junction uses only its
 * own chain code; derived chain codes are discarded, as in sp-core.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "crypto_int.h"

#define DEV_PHRASE "bottom drive obey lake curtain smoke basket hold race lonely fit walk"

/* Rust str::parse::<u64>: optional '+', then one or more digits, no overflow. */
static bool
parse_u64(const char *s, size_t len, uint64_t *out)
{
	uint64_t v = 0;
	size_t i = 0;

	if (len > 0 && s[0] == '+') {
		i = 1;
	}
	if (i == len) {
		return false;
	}
	for (; i < len; i++) {
		if (s[i] < '0' || s[i] > '9') {
			return false;
		}
		unsigned d = (unsigned)(s[i] - '0');
		if (v > (UINT64_MAX - d) / 10) {
			return false;
		}
		v = v * 10 + d;
	}
	*out = v;
	return true;
}

void
bx_junction_chain_code(uint8_t cc[32], const char *junction, size_t len)
{
	uint64_t n;

	(void)bx_crypto_init(); /* blake2b below; nothing else can fail here */
	memset(cc, 0, 32);
	if (parse_u64(junction, len, &n)) {
		for (int i = 0; i < 8; i++) {
			cc[i] = (uint8_t)(n >> (8 * i));
		}
		return;
	}
	/* SCALE: compact length, then the bytes; blake2b-256 when over 32 bytes */
	uint8_t hdr[4];
	size_t hl;
	if (len < 64) {
		hdr[0] = (uint8_t)(len << 2);
		hl = 1;
	} else if (len < (1u << 14)) {
		uint16_t v = (uint16_t)((len << 2) | 1);
		hdr[0] = (uint8_t)v;
		hdr[1] = (uint8_t)(v >> 8);
		hl = 2;
	} else {
		uint32_t v = (uint32_t)((len << 2) | 2);
		for (int i = 0; i < 4; i++) {
			hdr[i] = (uint8_t)(v >> (8 * i));
		}
		hl = 4;
	}
	if (hl + len <= 32) {
		memcpy(cc, hdr, hl);
		memcpy(cc + hl, junction, len);
		return;
	}
	crypto_generichash_state st;
	crypto_generichash_init(&st, NULL, 0, 32);
	crypto_generichash_update(&st, hdr, hl);
	crypto_generichash_update(&st, (const uint8_t *)junction, len);
	crypto_generichash_final(&st, cc, 32);
}

/* Hard step with an extra input i (sp-core passes i = ""). Writes the new mini secret. */
void
bx_hdkd_hard_mini(uint8_t mini_out[32], uint8_t cc_out[32], const uint8_t x[32],
                  const uint8_t cc[32], const void *i, size_t ilen)
{
	struct bx_transcript t;

	bx_transcript_init(&t, "SchnorrRistrettoHDKD");
	bx_transcript_append(&t, "sign-bytes", i, ilen);
	bx_transcript_append(&t, "chain-code", cc, 32);
	bx_transcript_append(&t, "secret-key", x, 32);
	bx_transcript_challenge(&t, "HDKD-hard", mini_out, 32);
	bx_transcript_challenge(&t, "HDKD-chaincode", cc_out, 32);
	sodium_memzero(&t, sizeof(t));
}

/* Soft step: delta scalar and chain code, leaving t for the nonce RNG. */
static void
soft_scalar(struct bx_transcript *t, uint8_t delta[32], uint8_t cc_out[32], const uint8_t pub[32],
            const uint8_t cc[32], const void *i, size_t ilen)
{
	uint8_t wide[64];

	bx_transcript_init(t, "SchnorrRistrettoHDKD");
	bx_transcript_append(t, "sign-bytes", i, ilen);
	bx_transcript_append(t, "chain-code", cc, 32);
	bx_transcript_append(t, "public-key", pub, 32);
	bx_transcript_challenge(t, "HDKD-scalar", wide, 64);
	crypto_core_ristretto255_scalar_reduce(delta, wide);
	bx_transcript_challenge(t, "HDKD-chaincode", cc_out, 32);
}

int
bx_hdkd_derive_hard_i(const struct bx_sr25519_keypair *kp, const uint8_t cc[32], const void *i,
                      size_t ilen, struct bx_sr25519_keypair **out, uint8_t cc_out[32])
{
	uint8_t mini[32], ccn[32];
	int rc;

	bx_hdkd_hard_mini(mini, ccn, kp->sec->x, cc, i, ilen);
	rc = bx_sr25519_keypair_from_seed(mini, out);
	if (cc_out) {
		memcpy(cc_out, ccn, 32);
	}
	sodium_memzero(mini, sizeof(mini));
	return rc;
}

int
bx_hdkd_derive_soft_i(const struct bx_sr25519_keypair *kp, const uint8_t cc[32], const void *i,
                      size_t ilen, struct bx_sr25519_keypair **out, uint8_t cc_out[32],
                      const uint8_t rnd[32])
{
	struct bx_transcript t;
	struct bx_transcript_rng rng;
	struct bx_sr25519_keypair *nk;
	uint8_t delta[32], ccn[32], rbuf[32], xn[64];
	int rc = bx_sr25519_keypair_alloc(&nk);

	if (rc != 0) {
		return rc;
	}
	soft_scalar(&t, delta, ccn, kp->pub, cc, i, ilen);
	crypto_core_ristretto255_scalar_add(nk->sec->x, kp->sec->x, delta);
	if (rnd == NULL) {
		randombytes_buf(rbuf, sizeof(rbuf));
		rnd = rbuf;
	}
	memcpy(xn, kp->sec->x, 32);
	memcpy(xn + 32, kp->sec->nonce, 32);
	bx_transcript_rng_begin(&rng, &t);
	bx_transcript_rng_witness(&rng, "HDKD-nonce", kp->sec->nonce, 32);
	bx_transcript_rng_witness(&rng, "HDKD-nonce", xn, 64);
	bx_transcript_rng_finalize(&rng, rnd);
	bx_transcript_rng_fill(&rng, nk->sec->nonce, 32);
	rc = bx_sr25519_keypair_finish(nk);
	if (rc != 0) {
		bx_sr25519_keypair_destroy(nk);
	} else {
		*out = nk;
		if (cc_out) {
			memcpy(cc_out, ccn, 32);
		}
	}
	sodium_memzero(&rng, sizeof(rng));
	sodium_memzero(&t, sizeof(t));
	sodium_memzero(delta, sizeof(delta));
	sodium_memzero(xn, sizeof(xn));
	sodium_memzero(rbuf, sizeof(rbuf));
	return rc;
}

int
bx_sr25519_derive_hard(const struct bx_sr25519_keypair *kp, const uint8_t chain_code[32],
                       struct bx_sr25519_keypair **out)
{
	return bx_hdkd_derive_hard_i(kp, chain_code, "", 0, out, NULL);
}

int
bx_sr25519_derive_soft(const struct bx_sr25519_keypair *kp, const uint8_t chain_code[32],
                       struct bx_sr25519_keypair **out)
{
	return bx_hdkd_derive_soft_i(kp, chain_code, "", 0, out, NULL, NULL);
}

int
bx_sr25519_derive_public_soft(uint8_t out[32], const uint8_t pub[32], const uint8_t chain_code[32])
{
	struct bx_transcript t;
	uint8_t delta[32], cc[32], dB[32];

	if (bx_crypto_init() != 0 || !bx_sr25519_public_is_valid(pub)) {
		return -EINVAL;
	}
	soft_scalar(&t, delta, cc, pub, chain_code, "", 0);
	if (crypto_scalarmult_ristretto255_base(dB, delta) != 0) {
		memset(dB, 0, 32);
	}
	return crypto_core_ristretto255_add(out, pub, dB) == 0 ? 0 : -EINVAL;
}

/* ---------------- SURI ---------------- */

static bool
phrase_char_ok(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == ' ';
}

/* The root keypair from the phrase part (empty: the dev phrase). */
static int
suri_root(const char *phrase, size_t len, const char *password, struct bx_sr25519_keypair **out,
          struct bx_errbuf *eb)
{
	uint8_t mini[32];
	char *buf;
	int rc;

	if (len >= 2 && phrase[0] == '0' && phrase[1] == 'x') {
		if (bx_hex_decode(mini, 32, phrase, len) != 0) {
			return bx_err(eb, EINVAL,
			              "secret URI: a 0x seed must be 64 hex digits (32 bytes)");
		}
		rc = bx_sr25519_keypair_from_seed(mini, out);
		sodium_memzero(mini, sizeof(mini));
		return rc == 0 ? 0 : bx_err(eb, -rc, "secret URI: cannot make a key");
	}
	buf = sodium_malloc(len + 1);
	if (buf == NULL) {
		return bx_err(eb, ENOMEM, "out of memory");
	}
	memcpy(buf, phrase, len);
	buf[len] = '\0';
	rc = bx_mnemonic_to_mini_secret(len ? buf : DEV_PHRASE, password, mini, eb);
	sodium_free(buf);
	if (rc == 0) {
		rc = bx_sr25519_keypair_from_seed(mini, out);
		if (rc != 0) {
			bx_err(eb, -rc, "secret URI: cannot make a key");
		}
	}
	sodium_memzero(mini, sizeof(mini));
	return rc;
}

/* Apply one junction "x" (hard when hard) to *kp, replacing it. */
static int
suri_step(struct bx_sr25519_keypair **kp, const char *j, size_t len, bool hard,
          struct bx_errbuf *eb)
{
	struct bx_sr25519_keypair *nk = NULL;
	uint8_t cc[32];
	int rc;

	bx_junction_chain_code(cc, j, len);
	rc = hard ? bx_sr25519_derive_hard(*kp, cc, &nk) : bx_sr25519_derive_soft(*kp, cc, &nk);
	if (rc != 0) {
		return bx_err(eb, -rc, "secret URI: derivation failed");
	}
	bx_sr25519_keypair_destroy(*kp);
	*kp = nk;
	return 0;
}

int
bx_suri_to_keypair(const char *suri, struct bx_sr25519_keypair **out, struct bx_errbuf *eb)
{
	struct bx_sr25519_keypair *kp = NULL;
	const char *pw = strstr(suri, "///");
	size_t end = pw ? (size_t)(pw - suri) : strlen(suri);
	size_t plen = 0, pos;
	int rc;

	if (bx_crypto_init() != 0) {
		return bx_err(eb, EIO, "libsodium failed to initialise");
	}
	while (plen < end && suri[plen] != '/') {
		if (!phrase_char_ok(suri[plen])) {
			return bx_err(eb, EINVAL,
			              "secret URI: the phrase may hold only letters, digits and "
			              "spaces (character %zu)",
			              plen + 1);
		}
		plen++;
	}
	/* check the path before the (slow) phrase step */
	for (pos = plen; pos < end;) {
		pos += (pos + 1 < end && suri[pos + 1] == '/') ? 2 : 1;
		size_t jl = 0;
		while (pos + jl < end && suri[pos + jl] != '/') {
			jl++;
		}
		if (jl == 0) {
			return bx_err(eb, EINVAL, "secret URI: empty junction at character %zu",
			              pos + 1);
		}
		pos += jl;
	}
	rc = suri_root(suri, plen, pw ? pw + 3 : NULL, &kp, eb);
	if (rc != 0) {
		return rc;
	}
	for (pos = plen; pos < end;) {
		bool hard = pos + 1 < end && suri[pos + 1] == '/';
		pos += hard ? 2 : 1;
		size_t jl = 0;
		while (pos + jl < end && suri[pos + jl] != '/') {
			jl++;
		}
		rc = suri_step(&kp, suri + pos, jl, hard, eb);
		if (rc != 0) {
			bx_sr25519_keypair_destroy(kp);
			return rc;
		}
		pos += jl;
	}
	*out = kp;
	return 0;
}
