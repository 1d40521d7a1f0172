/*
 * BIP39 English mnemonics as substrate-bip39 uses them (sr25519.md §5.1):
 * the phrase gives entropy, and the mini secret is the first 32 bytes of
 * PBKDF2-HMAC-SHA512(entropy, "mnemonic" || password, 2048). That is not
 * standard BIP39 (which hashes the phrase text).
 */
#include <errno.h>
#include <string.h>

#include <sodium.h>

#include "crypto_int.h"

#define MAX_WORDS     24
#define PBKDF2_ROUNDS 2048

static const uint8_t salt_prefix[8] = { 'm', 'n', 'e', 'm', 'o', 'n', 'i', 'c' };

/*
 * Index of a word in the list, or -1, in time independent of which word it
 * is: every entry is compared, never stopping at the first match (the words are secrets).
 */
static int
word_index(const char *w, size_t len)
{
	uint8_t cand[9] = { 0 }, ent[9];
	unsigned found = 0, idx = 0;

	if (len == 0 || len > 8) {
		return -1;
	}
	memcpy(cand, w, len);
	for (unsigned i = 0; i < 2048; i++) {
		const char *m = bx_bip39_english[i];
		size_t ml = strlen(m); /* public */
		unsigned diff = 0;
		memset(ent, 0, sizeof(ent));
		memcpy(ent, m, ml + 1); /* with its NUL; ml <= 8 */
		for (unsigned j = 0; j < sizeof(ent); j++) {
			diff |= (unsigned)(cand[j] ^ ent[j]);
		}
		/* eq = 1 when diff == 0, branch-free */
		unsigned eq = ((diff | (0u - diff)) >> 31) ^ 1u;
		found |= eq;
		idx |= (0u - eq) & i;
	}
	sodium_memzero(cand, sizeof(cand));
	return found ? (int)idx : -1;
}

static bool
is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* Split the phrase into word indexes. Returns the count, or -EINVAL with a message. */
static int
phrase_words(const char *phrase, uint16_t idx[MAX_WORDS], struct bx_errbuf *eb)
{
	const char *p = phrase;
	unsigned n = 0;

	while (*p) {
		while (is_space(*p)) {
			p++;
		}
		if (*p == '\0') {
			break;
		}
		size_t len = 0;
		while (p[len] && !is_space(p[len])) {
			len++;
		}
		int wi = word_index(p, len);
		if (wi < 0) {
			return bx_err(eb, EINVAL,
			              "mnemonic word %u is not in the BIP39 English list", n + 1);
		}
		if (n == MAX_WORDS) {
			return bx_err(eb, EINVAL, "mnemonic has more than %d words", MAX_WORDS);
		}
		idx[n++] = (uint16_t)wi;
		p += len;
	}
	if (n < 12 || n % 3 != 0) {
		return bx_err(eb, EINVAL, "mnemonic has %u words; expected 12, 15, 18, 21 or 24",
		              n);
	}
	return (int)n;
}

/*
 * Phrase -> entropy (16..32 bytes). Returns the entropy length, or -EINVAL
 * with a message.
 */
static int
phrase_to_entropy(const char *phrase, uint8_t entropy[33], struct bx_errbuf *eb)
{
	uint16_t idx[MAX_WORDS];
	unsigned n, ent_bytes, cs_bits;
	uint8_t h[32];
	int rc = phrase_words(phrase, idx, eb);

	if (rc < 0) {
		goto out;
	}
	n = (unsigned)rc;
	memset(entropy, 0, 33);
	for (unsigned i = 0; i < n * 11; i++) {
		unsigned bit = (idx[i / 11] >> (10 - i % 11)) & 1;
		entropy[i / 8] |= (uint8_t)(bit << (7 - i % 8));
	}
	ent_bytes = n * 4 / 3;
	cs_bits = n / 3;
	crypto_hash_sha256(h, entropy, ent_bytes);
	if ((h[0] >> (8 - cs_bits)) != (entropy[ent_bytes] >> (8 - cs_bits))) {
		rc = bx_err(eb, EINVAL, "mnemonic checksum does not match (a word is wrong)");
		goto out;
	}
	entropy[ent_bytes] = 0;
	rc = (int)ent_bytes;
out:
	sodium_memzero(idx, sizeof(idx));
	sodium_memzero(h, sizeof(h));
	return rc;
}

/* PBKDF2-HMAC-SHA512 with one 64-byte output block (libsodium has no PBKDF2). */
static void
pbkdf2_sha512_64(uint8_t out[64], const uint8_t *pw, size_t pw_len, const uint8_t *salt,
                 size_t salt_len, unsigned rounds)
{
	crypto_auth_hmacsha512_state keyed, st;
	uint8_t u[64];
	static const uint8_t one[4] = { 0, 0, 0, 1 };

	crypto_auth_hmacsha512_init(&keyed, pw, pw_len);
	st = keyed;
	crypto_auth_hmacsha512_update(&st, salt, salt_len);
	crypto_auth_hmacsha512_update(&st, one, 4);
	crypto_auth_hmacsha512_final(&st, u);
	memcpy(out, u, 64);
	for (unsigned i = 1; i < rounds; i++) {
		st = keyed;
		crypto_auth_hmacsha512_update(&st, u, 64);
		crypto_auth_hmacsha512_final(&st, u);
		for (int j = 0; j < 64; j++) {
			out[j] ^= u[j];
		}
	}
	sodium_memzero(&keyed, sizeof(keyed));
	sodium_memzero(&st, sizeof(st));
	sodium_memzero(u, sizeof(u));
}

int
bx_mnemonic_to_mini_secret(const char *phrase, const char *password, uint8_t mini[32],
                           struct bx_errbuf *eb)
{
	uint8_t entropy[33], seed[64];
	size_t pw_len = password ? strlen(password) : 0;
	uint8_t *salt;
	int n;

	if (bx_crypto_init() != 0) {
		return bx_err(eb, EIO, "libsodium failed to initialise");
	}
	n = phrase_to_entropy(phrase, entropy, eb);
	if (n < 0) {
		sodium_memzero(entropy, sizeof(entropy));
		return n;
	}
	salt = sodium_malloc(8 + pw_len + 1);
	if (salt == NULL) {
		sodium_memzero(entropy, sizeof(entropy));
		return bx_err(eb, ENOMEM, "out of memory");
	}
	memcpy(salt, salt_prefix, sizeof(salt_prefix));
	salt[8] = '\0';
	if (pw_len) {
		memcpy(salt + 8, password, pw_len + 1);
	}
	pbkdf2_sha512_64(seed, entropy, (size_t)n, salt, 8 + pw_len, PBKDF2_ROUNDS);
	memcpy(mini, seed, 32);
	sodium_free(salt);
	sodium_memzero(seed, sizeof(seed));
	sodium_memzero(entropy, sizeof(entropy));
	return 0;
}

bool
bx_mnemonic_is_valid(const char *phrase)
{
	uint8_t entropy[33];
	int n;

	if (bx_crypto_init() != 0) {
		return false;
	}
	n = phrase_to_entropy(phrase, entropy, NULL);

	sodium_memzero(entropy, sizeof(entropy));
	return n > 0;
}

int
bx_mnemonic_generate(char *out, size_t out_len, unsigned words)
{
	uint8_t entropy[33], h[32];
	unsigned ent_bytes;
	size_t pos = 0;
	int rc = 0;

	if (words < 12 || words > 24 || words % 3 != 0) {
		return -EINVAL;
	}
	if (bx_crypto_init() != 0) {
		return -EIO;
	}
	ent_bytes = words * 4 / 3;
	memset(entropy, 0, sizeof(entropy));
	randombytes_buf(entropy, ent_bytes);
	crypto_hash_sha256(h, entropy, ent_bytes);
	entropy[ent_bytes] = h[0]; /* the top words/3 bits are the checksum */
	for (unsigned w = 0; w < words; w++) {
		unsigned v = 0;
		for (unsigned b = 0; b < 11; b++) {
			unsigned i = w * 11 + b;
			v = (v << 1) | ((entropy[i / 8] >> (7 - i % 8)) & 1);
		}
		const char *word = bx_bip39_english[v];
		size_t wl = strlen(word);
		if (pos + wl + 2 > out_len) {
			rc = -ENOSPC;
			break;
		}
		if (w > 0) {
			out[pos++] = ' ';
		}
		memcpy(out + pos, word, wl);
		pos += wl;
	}
	if (rc == 0) {
		out[pos] = '\0';
	} else if (out_len > 0) {
		sodium_memzero(out, out_len);
	}
	sodium_memzero(entropy, sizeof(entropy));
	sodium_memzero(h, sizeof(h));
	return rc;
}
