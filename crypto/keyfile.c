/*
 * btwallet / btcli keyfiles (bittensor-protocol.md §7, sr25519.md §5.2):
 * JSON {accountId, publicKey, privateKey, secretPhrase, secretSeed,
 * ss58Address}, plaintext or "$NACL" || nonce(24) || secretbox, the key
 * being Argon2i(password, fixed salt, OPSLIMIT/MEMLIMIT_SENSITIVE).
 *
 * Key material read from a file passes through sodium_malloc() buffers and
 * is wiped; the JSON string values are wiped in place before jansson frees
 * them. (jansson's lexer keeps a short-lived copy of each token in its own
 * malloc() memory, which is freed unwiped.)
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "crypto_int.h"

#define KEYFILE_MAX    65536
#define NACL_MAGIC     "$NACL"
#define NACL_MAGIC_LEN 5

static const uint8_t nacl_salt[16] = { 0x13, 0x71, 0x83, 0xdf, 0xf1, 0x5a, 0x09, 0xbc,
	                               0x9c, 0x90, 0xb5, 0x51, 0x87, 0x39, 0xe9, 0xb1 };

/* btwallet's parameters; tests may lower them (files then only read back here) */
unsigned long long bx_keyfile_kdf_ops = 8; /* OPSLIMIT_SENSITIVE */
size_t bx_keyfile_kdf_mem = 536870912;     /* MEMLIMIT_SENSITIVE */

bool
bx_keyfile_is_encrypted(const void *data, size_t len)
{
	static const char *const prefixes[] = { NACL_MAGIC, "$ANSIBLE_VAULT", "gAAAAA" };

	for (size_t i = 0; i < BX_ARRAY_SIZE(prefixes); i++) {
		size_t pl = strlen(prefixes[i]);
		if (len >= pl && memcmp(data, prefixes[i], pl) == 0) {
			return true;
		}
	}
	return false;
}

static int
nacl_key(uint8_t key[32], const char *password, const char *name, struct bx_errbuf *eb)
{
	if (crypto_pwhash(key, 32, password, strlen(password), nacl_salt, bx_keyfile_kdf_ops,
	                  bx_keyfile_kdf_mem, crypto_pwhash_ALG_ARGON2I13) != 0) {
		return bx_err(eb, ENOMEM, "%s: not enough memory for the Argon2i key derivation",
		              name);
	}
	return 0;
}

/* Decrypt "$NACL" data into a sodium_malloc() buffer (returned-owned, NUL-terminated). */
static int
nacl_decrypt(const uint8_t *data, size_t len, const char *password, const char *name, char **plain,
             size_t *plain_len, struct bx_errbuf *eb)
{
	const size_t hdr = NACL_MAGIC_LEN + crypto_secretbox_NONCEBYTES;
	uint8_t *key;
	char *out;
	int rc;

	if (password == NULL) {
		return bx_err(eb, ENOKEY, "%s: keyfile is encrypted ($NACL); a password is needed",
		              name);
	}
	if (len < hdr + crypto_secretbox_MACBYTES) {
		return bx_err(eb, EINVAL, "%s: encrypted keyfile is truncated (%zu bytes)", name,
		              len);
	}
	key = sodium_malloc(32);
	out = sodium_malloc(len - hdr - crypto_secretbox_MACBYTES + 1);
	if (key == NULL || out == NULL) {
		rc = bx_err(eb, ENOMEM, "%s: out of memory", name);
		goto fail;
	}
	rc = nacl_key(key, password, name, eb);
	if (rc != 0) {
		goto fail;
	}
	if (crypto_secretbox_open_easy((uint8_t *)out, data + hdr, len - hdr, data + NACL_MAGIC_LEN,
	                               key) != 0) {
		rc = bx_err(eb, EKEYREJECTED, "%s: wrong password, or the keyfile is damaged",
		            name);
		goto fail;
	}
	*plain_len = len - hdr - crypto_secretbox_MACBYTES;
	out[*plain_len] = '\0';
	*plain = out;
	sodium_free(key);
	return 0;
fail:
	sodium_free(key);
	sodium_free(out);
	return rc;
}

/* A "0x"-hex string field of exactly n bytes; 1 if present, 0 if absent/null. */
static int
hex_field(json_t *root, const char *key, uint8_t *out, size_t n, const char *name,
          struct bx_errbuf *eb)
{
	json_t *v = json_object_get(root, key);
	const char *s;

	if (v == NULL || json_is_null(v)) {
		return 0;
	}
	if (!json_is_string(v)) {
		return bx_err(eb, EINVAL, "%s: \"%s\" is not a string", name, key);
	}
	s = json_string_value(v);
	if (bx_hex_decode(out, n, s, json_string_length(v)) != 0) {
		return bx_err(eb, EINVAL, "%s: \"%s\" is not 0x followed by %zu hex digits", name,
		              key, 2 * n);
	}
	return 1;
}

/* Wipe every string value of the object in place (they may hold secrets). */
static void
wipe_json(json_t *root)
{
	const char *k;
	json_t *v;

	json_object_foreach(root, k, v)
	{
		if (json_is_string(v)) {
			sodium_memzero((void *)json_string_value(v), json_string_length(v));
		}
	}
}

/* Name an allocation failure of keypair creation (the only way it fails on a good seed). */
static int
made(int rc, const char *name, struct bx_errbuf *eb)
{
	return rc == 0 ? 0 :
	                 bx_err(eb, -rc, "%s: cannot create the key: %s", name, bx_strerror(rc));
}

/* The keypair from the first secret field present, in btwallet's order. */
static int
keypair_from_json(json_t *root, const char *name, struct bx_sr25519_keypair **out,
                  struct bx_errbuf *eb)
{
	json_t *phrase = json_object_get(root, "secretPhrase");
	uint8_t *buf = sodium_malloc(64);
	int rc;

	if (buf == NULL) {
		return bx_err(eb, ENOMEM, "%s: out of memory", name);
	}
	if (phrase != NULL && !json_is_null(phrase)) {
		if (!json_is_string(phrase)) {
			rc = bx_err(eb, EINVAL, "%s: \"secretPhrase\" is not a string", name);
			goto out;
		}
		struct bx_errbuf e2;
		rc = bx_mnemonic_to_mini_secret(json_string_value(phrase), NULL, buf, &e2);
		if (rc != 0) {
			rc = bx_err(eb, -rc, "%s: \"secretPhrase\": %s", name, e2.msg);
			goto out;
		}
		rc = made(bx_sr25519_keypair_from_seed(buf, out), name, eb);
		goto out;
	}
	rc = hex_field(root, "secretSeed", buf, 32, name, eb);
	if (rc != 0) {
		rc = rc < 0 ? rc : made(bx_sr25519_keypair_from_seed(buf, out), name, eb);
		goto out;
	}
	rc = hex_field(root, "privateKey", buf, 64, name, eb);
	if (rc < 0) {
		/* btwallet's from_seed_slice also takes a 32-byte mini secret here */
		if (hex_field(root, "privateKey", buf, 32, name, NULL) == 1) {
			rc = made(bx_sr25519_keypair_from_seed(buf, out), name, eb);
		}
		goto out;
	}
	if (rc == 1) {
		rc = bx_sr25519_keypair_from_secret(buf, BX_SR25519_SECRET_SCHNORRKEL, out);
		if (rc == -EINVAL) {
			rc = bx_err(eb, EINVAL,
			            "%s: \"privateKey\" is not a canonical sr25519 "
			            "secret key",
			            name);
		} else {
			rc = made(rc, name, eb);
		}
		goto out;
	}
	rc = bx_err(eb, ENOKEY,
	            "%s: no secret key (secretPhrase, secretSeed or privateKey); is it a "
	            "public-only keyfile?",
	            name);
out:
	sodium_free(buf);
	return rc;
}

/* publicKey / accountId / ss58Address, when present, must agree with pub. */
static int
check_public(json_t *root, const uint8_t pub[32], const char *name, struct bx_errbuf *eb)
{
	static const char *const keys[] = { "publicKey", "accountId" };
	uint8_t p[32];
	json_t *ss58;
	int rc;

	for (size_t i = 0; i < BX_ARRAY_SIZE(keys); i++) {
		rc = hex_field(root, keys[i], p, 32, name, eb);
		if (rc < 0) {
			return rc;
		}
		if (rc == 1 && memcmp(p, pub, 32) != 0) {
			return bx_err(eb, EINVAL, "%s: \"%s\" does not match the secret key", name,
			              keys[i]);
		}
	}
	ss58 = json_object_get(root, "ss58Address");
	if (ss58 != NULL && !json_is_null(ss58)) {
		struct bx_errbuf e2;
		if (!json_is_string(ss58) ||
		    bx_ss58_decode(json_string_value(ss58), json_string_length(ss58), p, NULL,
		                   &e2) != 0) {
			return bx_err(eb, EINVAL, "%s: \"ss58Address\" is not a valid address",
			              name);
		}
		if (memcmp(p, pub, 32) != 0) {
			return bx_err(eb, EINVAL,
			              "%s: \"ss58Address\" does not match the secret key", name);
		}
	}
	return 0;
}

static int
parse_json(const char *text, size_t len, const char *name, json_t **out, struct bx_errbuf *eb)
{
	json_error_t err;
	json_t *root;

	/* err.text may quote the input, which may be a secret: report the place only */
	root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &err);
	sodium_memzero(err.text, sizeof(err.text));
	if (root == NULL) {
		return bx_err(eb, EINVAL, "%s: not valid JSON (line %d, column %d)", name, err.line,
		              err.column);
	}
	if (!json_is_object(root)) {
		json_decref(root);
		return bx_err(eb, EINVAL, "%s: keyfile JSON is not an object", name);
	}
	*out = root;
	return 0;
}

static int
parse_plain(const char *text, size_t len, const char *name, struct bx_sr25519_keypair **out,
            struct bx_errbuf *eb)
{
	struct bx_sr25519_keypair *kp = NULL;
	json_t *root;
	int rc = parse_json(text, len, name, &root, eb);

	if (rc != 0) {
		return rc;
	}
	rc = keypair_from_json(root, name, &kp, eb);
	if (rc == 0) {
		rc = check_public(root, bx_sr25519_public(kp), name, eb);
	}
	wipe_json(root);
	json_decref(root);
	if (rc != 0) {
		bx_sr25519_keypair_destroy(kp);
		return rc;
	}
	*out = kp;
	return 0;
}

int
bx_keyfile_parse(const void *data, size_t len, const char *name, const char *password,
                 struct bx_sr25519_keypair **out, struct bx_errbuf *eb)
{
	char *plain = NULL;
	size_t plain_len = 0;
	int rc;

	if (bx_crypto_init() != 0) {
		return bx_err(eb, EIO, "%s: libsodium failed to initialise", name);
	}
	if (len >= NACL_MAGIC_LEN && memcmp(data, NACL_MAGIC, NACL_MAGIC_LEN) == 0) {
		rc = nacl_decrypt(data, len, password, name, &plain, &plain_len, eb);
		if (rc != 0) {
			return rc;
		}
		rc = parse_plain(plain, plain_len, name, out, eb);
		sodium_free(plain);
		return rc;
	}
	if (bx_keyfile_is_encrypted(data, len)) {
		return bx_err(eb, ENOTSUP,
		              "%s: keyfile uses a legacy encryption (ansible-vault or Fernet); "
		              "re-encrypt it with a current btcli",
		              name);
	}
	return parse_plain(data, len, name, out, eb);
}

/* Read a whole keyfile into sodium_malloc() memory. */
static int
read_keyfile(const char *path, uint8_t **buf, size_t *len, struct bx_errbuf *eb)
{
	struct stat st;
	ssize_t n;
	size_t got = 0;
	int fd, rc = 0;

	if (bx_crypto_init() != 0) {
		return bx_err(eb, EIO, "%s: libsodium failed to initialise", path);
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		return bx_err(eb, errno, "%s: cannot open keyfile: %s", path, bx_strerror(errno));
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		rc = bx_err(eb, EINVAL, "%s: not a regular file", path);
		goto out;
	}
	if (st.st_size == 0 || st.st_size > KEYFILE_MAX) {
		rc = bx_err(eb, EINVAL, "%s: keyfile size %jd is not in 1..%d bytes", path,
		            (intmax_t)st.st_size, KEYFILE_MAX);
		goto out;
	}
	*buf = sodium_malloc((size_t)st.st_size + 1);
	if (*buf == NULL) {
		rc = bx_err(eb, ENOMEM, "%s: out of memory", path);
		goto out;
	}
	while (got < (size_t)st.st_size) {
		n = read(fd, *buf + got, (size_t)st.st_size - got);
		if (n <= 0) {
			rc = bx_err(eb, EIO, "%s: read failed: %s", path,
			            n < 0 ? bx_strerror(errno) : "file shrank");
			sodium_free(*buf);
			*buf = NULL;
			goto out;
		}
		got += (size_t)n;
	}
	(*buf)[got] = '\0';
	*len = got;
out:
	close(fd);
	return rc;
}

int
bx_keyfile_load(const char *path, const char *password, struct bx_sr25519_keypair **out,
                struct bx_errbuf *eb)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc = read_keyfile(path, &buf, &len, eb);

	if (rc != 0) {
		return rc;
	}
	rc = bx_keyfile_parse(buf, len, path, password, out, eb);
	sodium_free(buf);
	return rc;
}

int
bx_keyfile_load_public(const char *path, uint8_t pub[32], struct bx_errbuf *eb)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	json_t *root = NULL;
	int rc = read_keyfile(path, &buf, &len, eb);

	if (rc != 0) {
		return rc;
	}
	if (bx_keyfile_is_encrypted(buf, len)) {
		rc = bx_err(eb, EINVAL, "%s: keyfile is encrypted; use its public file", path);
		goto out;
	}
	rc = parse_json((const char *)buf, len, path, &root, eb);
	if (rc != 0) {
		goto out;
	}
	rc = hex_field(root, "publicKey", pub, 32, path, eb);
	if (rc == 0) {
		rc = hex_field(root, "accountId", pub, 32, path, eb);
	}
	if (rc == 0) {
		json_t *ss58 = json_object_get(root, "ss58Address");
		rc = json_is_string(ss58) ?
		             bx_ss58_decode(json_string_value(ss58), json_string_length(ss58), pub,
		                            NULL, eb) :
		             bx_err(eb, EINVAL, "%s: no public key in keyfile", path);
	} else if (rc == 1) {
		rc = check_public(root, pub, path, eb);
	}
	wipe_json(root);
	json_decref(root);
out:
	sodium_free(buf);
	return rc;
}
