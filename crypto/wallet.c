/*
 * Writing btwallet keyfiles and naming the files of a btcli wallets
 * directory (bittensor-protocol.md §7.1-7.3).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "crypto_int.h"

static const uint8_t nacl_salt[16] = { 0x13, 0x71, 0x83, 0xdf, 0xf1, 0x5a, 0x09, 0xbc,
	                               0x9c, 0x90, 0xb5, 0x51, 0x87, 0x39, 0xe9, 0xb1 };

static const uint8_t nacl_magic[5] = { '$', 'N', 'A', 'C', 'L' };

/* ---------------- paths ---------------- */

static bool
name_ok(const char *s)
{
	return s != NULL && s[0] != '\0' && strchr(s, '/') == NULL && strcmp(s, ".") != 0 &&
	       strcmp(s, "..") != 0;
}

static int
wallets_root(char *buf, size_t len, const char *wallets_dir)
{
	const char *env = getenv("BT_WALLET_PATH");
	const char *home = getenv("HOME");
	int n;

	if (wallets_dir != NULL) {
		n = snprintf(buf, len, "%s", wallets_dir);
	} else if (env != NULL && env[0] != '\0') {
		n = snprintf(buf, len, "%s", env);
	} else if (home != NULL && home[0] != '\0') {
		n = snprintf(buf, len, "%s/.bittensor/wallets", home);
	} else {
		return -EINVAL;
	}
	if (n < 0 || (size_t)n >= len) {
		return -ENOSPC;
	}
	/* drop one trailing '/' so paths read cleanly */
	if (n > 1 && buf[n - 1] == '/') {
		buf[n - 1] = '\0';
	}
	return 0;
}

static int
wallet_path(char *buf, size_t len, const char *wallets_dir, const char *wallet, const char *hotkey,
            const char *suffix)
{
	char root[PATH_MAX];
	int rc, n;

	if (!name_ok(wallet) || (hotkey != NULL && !name_ok(hotkey))) {
		return -EINVAL;
	}
	rc = wallets_root(root, sizeof(root), wallets_dir);
	if (rc != 0) {
		return rc;
	}
	if (hotkey != NULL) {
		n = snprintf(buf, len, "%s/%s/hotkeys/%s%s", root, wallet, hotkey, suffix);
	} else {
		n = snprintf(buf, len, "%s/%s/%s", root, wallet, suffix);
	}
	return n < 0 || (size_t)n >= len ? -ENOSPC : 0;
}

int
bx_wallet_hotkey_path(char *buf, size_t len, const char *wallets_dir, const char *wallet,
                      const char *hotkey)
{
	return wallet_path(buf, len, wallets_dir, wallet, hotkey, "");
}

int
bx_wallet_hotkeypub_path(char *buf, size_t len, const char *wallets_dir, const char *wallet,
                         const char *hotkey)
{
	return wallet_path(buf, len, wallets_dir, wallet, hotkey, "pub.txt");
}

int
bx_wallet_coldkey_path(char *buf, size_t len, const char *wallets_dir, const char *wallet)
{
	return wallet_path(buf, len, wallets_dir, wallet, NULL, "coldkey");
}

int
bx_wallet_coldkeypub_path(char *buf, size_t len, const char *wallets_dir, const char *wallet)
{
	return wallet_path(buf, len, wallets_dir, wallet, NULL, "coldkeypub.txt");
}

/* ---------------- writing ---------------- */

/* mkdir -p of path's parent, mode 0700 for new folders. */
static int
make_parents(const char *path, struct bx_errbuf *eb)
{
	char dir[PATH_MAX];
	size_t n = strlen(path);

	if (n >= sizeof(dir)) {
		return bx_err(eb, ENAMETOOLONG, "%s: path too long", path);
	}
	memcpy(dir, path, n + 1);
	for (char *p = dir + 1; *p; p++) {
		if (*p != '/') {
			continue;
		}
		*p = '\0';
		if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
			int e = errno;
			return bx_err(eb, e, "%s: cannot create folder %s: %s", path, dir,
			              bx_strerror(e));
		}
		*p = '/';
	}
	return 0;
}

/* Write data to path atomically with mode 0600 (temp file, then link or rename). */
static int
write_atomic(const char *path, const void *data, size_t len, bool overwrite, struct bx_errbuf *eb)
{
	char tmp[PATH_MAX];
	int fd, rc = 0;

	rc = make_parents(path, eb);
	if (rc != 0) {
		return rc;
	}
	if (snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", path) >= (int)sizeof(tmp)) {
		return bx_err(eb, ENAMETOOLONG, "%s: path too long", path);
	}
	fd = mkostemp(tmp, O_CLOEXEC); /* mode 0600 */
	if (fd < 0) {
		return bx_err(eb, errno, "%s: cannot create a file beside it: %s", path,
		              bx_strerror(errno));
	}
	if (fchmod(fd, 0600) != 0 || write(fd, data, len) != (ssize_t)len || fsync(fd) != 0) {
		rc = bx_err(eb, EIO, "%s: write failed: %s", path, bx_strerror(errno));
	}
	if (close(fd) != 0 && rc == 0) {
		rc = bx_err(eb, EIO, "%s: write failed: %s", path, bx_strerror(errno));
	}
	if (rc == 0 && overwrite && rename(tmp, path) != 0) {
		rc = bx_err(eb, errno, "%s: cannot replace: %s", path, bx_strerror(errno));
	}
	if (rc == 0 && !overwrite && link(tmp, path) != 0) {
		rc = errno == EEXIST ?
		             bx_err(eb, EEXIST, "%s: keyfile exists (not overwritten)", path) :
		             bx_err(eb, errno, "%s: cannot create: %s", path, bx_strerror(errno));
	}
	if (rc != 0 || !overwrite) {
		unlink(tmp);
	}
	return rc;
}

static int
set_hex(json_t *o, const char *key, const uint8_t *b, size_t n)
{
	char hex[2 + 128 + 1];
	int rc;

	hex[0] = '0';
	hex[1] = 'x';
	bx_hex_encode(hex + 2, b, n);
	rc = json_object_set_new(o, key, json_string(hex));
	sodium_memzero(hex, sizeof(hex));
	return rc;
}

/* The JSON text of a keyfile (malloc'd by jansson; the caller wipes and frees). */
static char *
keyfile_json(const uint8_t pub[32], const struct bx_sr25519_keypair *kp, const char *mnemonic)
{
	json_t *o = json_object();
	uint8_t *sec = sodium_malloc(64);
	char addr[BX_SS58_MAX_LEN], *text = NULL;
	int bad = 0;

	if (o == NULL || sec == NULL || bx_ss58_encode(addr, sizeof(addr), pub, 42) != 0) {
		goto out;
	}
	/* Python btwallet's key order */
	bad |= set_hex(o, "accountId", pub, 32);
	bad |= set_hex(o, "publicKey", pub, 32);
	if (kp != NULL) {
		bx_sr25519_keypair_secret(kp, sec, BX_SR25519_SECRET_SCHNORRKEL);
		bad |= set_hex(o, "privateKey", sec, 64);
		if (mnemonic != NULL) {
			bad |= json_object_set_new(o, "secretPhrase", json_string(mnemonic));
		}
		if (bx_sr25519_keypair_seed(kp, sec) == 0) {
			bad |= set_hex(o, "secretSeed", sec, 32);
		}
	}
	bad |= json_object_set_new(o, "ss58Address", json_string(addr));
	if (!bad) {
		text = json_dumps(o, 0);
	}
out:
	if (o != NULL) {
		const char *k;
		json_t *v;
		json_object_foreach(o, k, v)
		{
			sodium_memzero((void *)json_string_value(v), json_string_length(v));
		}
		json_decref(o);
	}
	sodium_free(sec);
	return text;
}

/* "$NACL" || nonce || secretbox(text), in sodium_malloc() memory. */
static int
nacl_encrypt(const char *text, size_t len, const char *password, const char *path, uint8_t **out,
             size_t *out_len, struct bx_errbuf *eb)
{
	size_t hdr = 5 + crypto_secretbox_NONCEBYTES;
	uint8_t *key = sodium_malloc(32);
	uint8_t *buf = sodium_malloc(hdr + crypto_secretbox_MACBYTES + len);
	int rc = 0;

	if (key == NULL || buf == NULL) {
		rc = bx_err(eb, ENOMEM, "%s: out of memory", path);
		goto fail;
	}
	if (crypto_pwhash(key, 32, password, strlen(password), nacl_salt, bx_keyfile_kdf_ops,
	                  bx_keyfile_kdf_mem, crypto_pwhash_ALG_ARGON2I13) != 0) {
		rc = bx_err(eb, ENOMEM, "%s: not enough memory for the Argon2i key derivation",
		            path);
		goto fail;
	}
	memcpy(buf, nacl_magic, sizeof(nacl_magic));
	randombytes_buf(buf + 5, crypto_secretbox_NONCEBYTES);
	crypto_secretbox_easy(buf + hdr, (const uint8_t *)text, len, buf + 5, key);
	sodium_free(key);
	*out = buf;
	*out_len = hdr + crypto_secretbox_MACBYTES + len;
	return 0;
fail:
	sodium_free(key);
	sodium_free(buf);
	return rc;
}

int
bx_keyfile_write(const char *path, const struct bx_sr25519_keypair *kp, const char *mnemonic,
                 const char *password, bool overwrite, struct bx_errbuf *eb)
{
	char *text;
	uint8_t *enc = NULL;
	size_t len, enc_len = 0;
	int rc;

	if (bx_crypto_init() != 0) {
		return bx_err(eb, EIO, "%s: libsodium failed to initialise", path);
	}
	text = keyfile_json(bx_sr25519_public(kp), kp, mnemonic);
	if (text == NULL) {
		return bx_err(eb, ENOMEM, "%s: cannot build the keyfile JSON", path);
	}
	len = strlen(text);
	if (password != NULL) {
		rc = nacl_encrypt(text, len, password, path, &enc, &enc_len, eb);
		if (rc == 0) {
			rc = write_atomic(path, enc, enc_len, overwrite, eb);
			sodium_free(enc);
		}
	} else {
		rc = write_atomic(path, text, len, overwrite, eb);
	}
	sodium_memzero(text, len);
	free(text);
	return rc;
}

int
bx_keyfile_write_public(const char *path, const uint8_t pub[32], bool overwrite,
                        struct bx_errbuf *eb)
{
	char *text;
	int rc;

	if (bx_crypto_init() != 0) {
		return bx_err(eb, EIO, "%s: libsodium failed to initialise", path);
	}
	text = keyfile_json(pub, NULL, NULL);
	if (text == NULL) {
		return bx_err(eb, ENOMEM, "%s: cannot build the keyfile JSON", path);
	}
	rc = write_atomic(path, text, strlen(text), overwrite, eb);
	free(text);
	return rc;
}
