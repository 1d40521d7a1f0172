/*
 * btwallet keyfiles: the plaintext and "$NACL" forms, corrupt files of each
 * kind, and wallet paths. Fixtures in data/ were written with PyNaCl the way
 * bittensor's keyfile.py writes them (password "bx-test-password").
 * With the argument "nacl-real" only the slow check runs: decrypting the
 * PyNaCl fixture with btwallet's real Argon2i cost (512 MiB, ~4 s).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bx_test.h"
#include "crypto_int.h"
#include "test_util.h"

#define BT_PUB  "e4359ad3e2716c539a1d663ebd0a51bdc5c98a12e663bb4c4402db47828c9446"
#define BT_SEED "0xda3cf5b1e9144931a0f0db65664aab662673b099415a7f8121b7245fb0be4143"
#define BT_PRIV \
	"0x1f1995bdf3a17b60626a26cfe6f564b337d46056b7a1281b64c649d592ccda0a9cffd34d9fb01cae1fba61aeed184c817442a2186d5172416729a4b54dd4b84e"
#define BT_PHRASE "old leopard transfer rib spatial phone calm indicate online fire caution review"
#define BT_SS58   "5HDvhV6WDCjCKyrXqGQSDYqQAzkzabNhctmiDYEqgBC66BsX"

static char tmpdir[256];

static void
path_in_tmp(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", tmpdir, name);
}

static void
expect_pub(const struct bx_sr25519_keypair *kp)
{
	char hex[65];

	bx_hex_encode(hex, bx_sr25519_public(kp), 32);
	assert_string_equal(hex, BT_PUB);
}

static void
test_fixture_plain(void **state)
{
	struct bx_sr25519_keypair *kp = NULL;
	struct bx_errbuf eb;
	uint8_t seed[32];

	if (bx_keyfile_load(BX_TEST_DATA "/btwallet_plain.json", NULL, &kp, &eb) != 0) {
		fail_msg("%s", eb.msg);
	}
	expect_pub(kp);
	assert_int_equal(bx_sr25519_keypair_seed(kp, seed), 0);
	bx_sr25519_keypair_destroy(kp);
}

static int
parse_str(const char *json, struct bx_sr25519_keypair **kp, struct bx_errbuf *eb)
{
	return bx_keyfile_parse(json, strlen(json), "hotkeys/test", NULL, kp, eb);
}

/* Each secret field alone, as btwallet's reader accepts them. */
static void
test_each_secret_field(void **state)
{
	static const char *const docs[] = {
		"{\"secretPhrase\": \"" BT_PHRASE "\"}",
		"{\"secretSeed\": \"" BT_SEED "\"}",
		"{\"privateKey\": \"" BT_PRIV "\"}",
		"{\"privateKey\": \"" BT_SEED "\"}", /* 32 bytes: a mini secret */
		"{\"secretPhrase\": null, \"secretSeed\": \"" BT_SEED
		"\", \"ss58Address\": \"" BT_SS58 "\"}",
		"{\"publicKey\": \"0x" BT_PUB "\", \"privateKey\": \"" BT_PRIV "\"}",
	};

	for (size_t i = 0; i < BX_ARRAY_SIZE(docs); i++) {
		struct bx_sr25519_keypair *kp = NULL;
		struct bx_errbuf eb;
		if (parse_str(docs[i], &kp, &eb) != 0) {
			fail_msg("doc %zu: %s", i, eb.msg);
		}
		expect_pub(kp);
		bx_sr25519_keypair_destroy(kp);
	}
}

static const struct {
	const char *json;
	int err;
	const char *words;
} bad_docs[] = {
	{ "{\"secretSeed\": \"0xda3cf5b1e91449", -EINVAL, "not valid JSON" },
	{ "", -EINVAL, "not valid JSON" },
	{ "[1, 2]", -EINVAL, "not an object" },
	{ "{\"secretSeed\": \"0xzz3cf5b1e9144931a0f0db65664aab662673b099415a7f8121b7245fb0be4143\"}",
	  -EINVAL, "hex digits" },
	{ "{\"secretSeed\": \"0xda3cf5b1e9144931a0f0db65664aab662673b099415a7f8121b7245fb0be41\"}",
	  -EINVAL, "\"secretSeed\"" },
	{ "{\"privateKey\": \"0x1f1995bdf3a17b60626a26cfe6f564b337d46056b7a1281b64c649d592ccda0a"
	  "9cffd34d9fb01cae1fba61aeed184c817442a2186d5172416729a4b54dd4b8\"}",
	  -EINVAL, "\"privateKey\"" },
	{ "{\"secretSeed\": 12}", -EINVAL, "not a string" },
	{ "{\"secretPhrase\": \"old leopard transfer rib spatial phone calm indicate online fire "
	  "caution caution\"}",
	  -EINVAL, "checksum" },
	{ "{\"publicKey\": \"0x" BT_PUB "\", \"ss58Address\": \"" BT_SS58 "\"}", -ENOKEY,
	  "public-only" },
	{ "{\"publicKey\": \"0x46ebddef8cd9bb167dc30878d7113b7e168e6f0646beffd77d69d39bad76b47a\", "
	  "\"secretSeed\": \"" BT_SEED "\"}",
	  -EINVAL, "does not match" },
	{ "{\"ss58Address\": \"5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY\", "
	  "\"secretSeed\": \"" BT_SEED "\"}",
	  -EINVAL, "does not match" },
	{ "{\"ss58Address\": \"5HDvhV6WDCjCKyrXqGQSDYqQAzkzabNhctmiDYEqgBC66BsY\", "
	  "\"secretSeed\": \"" BT_SEED "\"}",
	  -EINVAL, "not a valid address" },
	{ "{\"secretSeed\": \"" BT_SEED "\", \"secretSeed\": \"" BT_SEED "\"}", -EINVAL,
	  "not valid JSON" },
	/* x >= l in a schnorrkel-format privateKey */
	{ "{\"privateKey\": \"0xffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"
	  "9cffd34d9fb01cae1fba61aeed184c817442a2186d5172416729a4b54dd4b84e\"}",
	  -EINVAL, "canonical" },
	/* Fernet tokens are base64: the oldest legacy form is refused by name */
	{ "gAAAAABlZ3Vlc3N3aGF0", -ENOTSUP, "legacy" },
	{ "$ANSIBLE_VAULT;1.1;AES256\n3031", -ENOTSUP, "legacy" },
};

static void
test_corrupt_documents(void **state)
{
	for (size_t i = 0; i < BX_ARRAY_SIZE(bad_docs); i++) {
		struct bx_sr25519_keypair *kp = NULL;
		struct bx_errbuf eb = { { 0 } };
		int rc = parse_str(bad_docs[i].json, &kp, &eb);
		if (rc != bad_docs[i].err || strstr(eb.msg, bad_docs[i].words) == NULL ||
		    strstr(eb.msg, "hotkeys/test") == NULL) {
			fail_msg("doc %zu: rc %d, message \"%s\"", i, rc, eb.msg);
		}
		assert_null(kp);
		/* no secret material in the message */
		assert_null(strstr(eb.msg, "da3cf5"));
		assert_null(strstr(eb.msg, "leopard"));
	}
}

/* Every truncation of a real keyfile fails cleanly (input ends at a guard page). */
static void
test_truncated_json(void **state)
{
	size_t len;
	char *full = bx_test_read_file(BX_TEST_DATA "/btwallet_plain.json", &len);

	assert_non_null(full);
	for (size_t n = 0; n < len; n++) {
		struct bx_sr25519_keypair *kp = NULL;
		struct bx_errbuf eb;
		void *g = bx_guard_copy(full, n);
		assert_non_null(g);
		int rc = bx_keyfile_parse(g, n, "trunc", NULL, &kp, &eb);
		bx_guard_free(g, n);
		if (rc == 0) {
			fail_msg("truncation to %zu bytes parsed", n);
		}
		assert_non_null(strstr(eb.msg, "trunc"));
	}
	free(full);
}

static void
lower_kdf_cost(void)
{
	bx_keyfile_kdf_ops = 3;
	bx_keyfile_kdf_mem = 8u << 20;
}

static void
test_write_read_plain(void **state)
{
	struct bx_sr25519_keypair *kp = NULL, *back = NULL;
	struct bx_errbuf eb;
	char path[512];
	struct stat st;
	uint8_t mini[32];

	path_in_tmp(path, sizeof(path), "w1/hotkeys/default");
	assert_int_equal(bx_mnemonic_to_mini_secret(BT_PHRASE, NULL, mini, NULL), 0);
	assert_int_equal(bx_sr25519_keypair_from_seed(mini, &kp), 0);
	if (bx_keyfile_write(path, kp, BT_PHRASE, NULL, false, &eb) != 0) {
		fail_msg("%s", eb.msg);
	}
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(bx_keyfile_load(path, NULL, &back, &eb), 0);
	expect_pub(back);
	bx_sr25519_keypair_destroy(back);

	/* the text carries every field btwallet writes */
	char *text = bx_test_read_file(path, NULL);
	assert_non_null(strstr(text, "\"ss58Address\": \"" BT_SS58 "\""));
	assert_non_null(strstr(text, "\"secretSeed\": \"" BT_SEED "\""));
	assert_non_null(strstr(text, "\"privateKey\": \"" BT_PRIV "\""));
	assert_non_null(strstr(text, "\"secretPhrase\": \"" BT_PHRASE "\""));
	free(text);

	/* no silent overwrite */
	assert_int_equal(bx_keyfile_write(path, kp, NULL, NULL, false, &eb), -EEXIST);
	assert_non_null(strstr(eb.msg, path));
	assert_int_equal(bx_keyfile_write(path, kp, NULL, NULL, true, &eb), 0);
	bx_sr25519_keypair_destroy(kp);
}

static void
test_write_read_encrypted(void **state)
{
	struct bx_sr25519_keypair *kp = NULL, *back = NULL;
	struct bx_errbuf eb;
	char path[512];
	size_t len;

	lower_kdf_cost();
	path_in_tmp(path, sizeof(path), "w2/coldkey");
	assert_int_equal(bx_suri_to_keypair("//Alice", &kp, NULL), 0);
	assert_int_equal(bx_keyfile_write(path, kp, NULL, "hunter2", false, &eb), 0);
	uint8_t *data = (uint8_t *)bx_test_read_file(path, &len);
	assert_true(bx_keyfile_is_encrypted(data, len));
	assert_memory_equal(data, "$NACL", 5);

	assert_int_equal(bx_keyfile_load(path, "hunter2", &back, &eb), 0);
	assert_memory_equal(bx_sr25519_public(back), bx_sr25519_public(kp), 32);
	bx_sr25519_keypair_destroy(back);
	back = NULL;

	assert_int_equal(bx_keyfile_load(path, "hunter3", &back, &eb), -EKEYREJECTED);
	assert_non_null(strstr(eb.msg, "wrong password"));
	assert_non_null(strstr(eb.msg, path));
	assert_int_equal(bx_keyfile_load(path, NULL, &back, &eb), -ENOKEY);
	assert_non_null(strstr(eb.msg, "password"));
	/* truncated, and one flipped ciphertext bit */
	assert_int_equal(bx_keyfile_parse(data, 30, "t", "hunter2", &back, &eb), -EINVAL);
	assert_non_null(strstr(eb.msg, "truncated"));
	data[len - 1] ^= 1;
	assert_int_equal(bx_keyfile_parse(data, len, "t", "hunter2", &back, &eb), -EKEYREJECTED);
	assert_null(back);
	free(data);
	bx_sr25519_keypair_destroy(kp);
}

static void
test_public_files(void **state)
{
	struct bx_errbuf eb;
	char path[512];
	uint8_t pub[32], got[32];

	hex2bin(pub, 32, BT_PUB);
	path_in_tmp(path, sizeof(path), "w3/coldkeypub.txt");
	assert_int_equal(bx_keyfile_write_public(path, pub, false, &eb), 0);
	assert_int_equal(bx_keyfile_load_public(path, got, &eb), 0);
	assert_memory_equal(got, pub, 32);
	/* a hotkey file gives its public key too */
	assert_int_equal(bx_keyfile_load_public(BX_TEST_DATA "/btwallet_plain.json", got, &eb), 0);
	assert_memory_equal(got, pub, 32);
	/* public-only file has no secret */
	struct bx_sr25519_keypair *kp = NULL;
	assert_int_equal(bx_keyfile_load(path, NULL, &kp, &eb), -ENOKEY);
	path_in_tmp(path, sizeof(path), "does-not-exist");
	assert_int_equal(bx_keyfile_load(path, NULL, &kp, &eb), -ENOENT);
	assert_non_null(strstr(eb.msg, "does-not-exist"));
	path_in_tmp(path, sizeof(path), "");
	assert_int_equal(bx_keyfile_load(path, NULL, &kp, &eb), -EINVAL); /* a folder */
}

static void
test_wallet_paths(void **state)
{
	char buf[512];

	assert_int_equal(bx_wallet_hotkey_path(buf, sizeof(buf), "/w/", "default", "hk1"), 0);
	assert_string_equal(buf, "/w/default/hotkeys/hk1");
	assert_int_equal(bx_wallet_hotkeypub_path(buf, sizeof(buf), "/w", "default", "hk1"), 0);
	assert_string_equal(buf, "/w/default/hotkeys/hk1pub.txt");
	assert_int_equal(bx_wallet_coldkey_path(buf, sizeof(buf), "/w", "c"), 0);
	assert_string_equal(buf, "/w/c/coldkey");
	assert_int_equal(bx_wallet_coldkeypub_path(buf, sizeof(buf), "/w", "c"), 0);
	assert_string_equal(buf, "/w/c/coldkeypub.txt");
	setenv("BT_WALLET_PATH", "/env/wallets", 1);
	assert_int_equal(bx_wallet_hotkey_path(buf, sizeof(buf), NULL, "a", "b"), 0);
	assert_string_equal(buf, "/env/wallets/a/hotkeys/b");
	unsetenv("BT_WALLET_PATH");
	setenv("HOME", "/home/x", 1);
	assert_int_equal(bx_wallet_hotkey_path(buf, sizeof(buf), NULL, "a", "b"), 0);
	assert_string_equal(buf, "/home/x/.bittensor/wallets/a/hotkeys/b");
	assert_int_equal(bx_wallet_hotkey_path(buf, sizeof(buf), "/w", "../x", "b"), -EINVAL);
	assert_int_equal(bx_wallet_hotkey_path(buf, sizeof(buf), "/w", "a", ".."), -EINVAL);
	assert_int_equal(bx_wallet_hotkey_path(buf, sizeof(buf), "/w", "", "b"), -EINVAL);
	assert_int_equal(bx_wallet_hotkey_path(buf, 10, "/w", "a", "b"), -ENOSPC);
}

static void
test_nacl_fixture_real_cost(void **state)
{
	struct bx_sr25519_keypair *kp = NULL;
	struct bx_errbuf eb;

	if (bx_keyfile_load(BX_TEST_DATA "/btwallet_nacl.key", "bx-test-password", &kp, &eb) != 0) {
		fail_msg("%s", eb.msg);
	}
	expect_pub(kp);
	bx_sr25519_keypair_destroy(kp);
}

/* A $NACL file PyNaCl wrote with Argon2i's minimum cost (the keyfile fuzz corpus seed). */
static void
test_nacl_fixture_low_cost(void **state)
{
	struct bx_sr25519_keypair *kp = NULL;
	struct bx_errbuf eb;
	char hex[65];
	unsigned long long ops = bx_keyfile_kdf_ops;
	size_t mem = bx_keyfile_kdf_mem;

	bx_keyfile_kdf_ops = 3;
	bx_keyfile_kdf_mem = 8192;
	int rc = bx_keyfile_load(BX_TEST_DATA "/../../fuzz/corpus/keyfile/nacl_seed", "pw", &kp,
	                         &eb);
	bx_keyfile_kdf_ops = ops;
	bx_keyfile_kdf_mem = mem;
	if (rc != 0) {
		fail_msg("%s", eb.msg);
	}
	bx_hex_encode(hex, bx_sr25519_public(kp), 32);
	assert_string_equal(hex,
	                    "46ebddef8cd9bb167dc30878d7113b7e168e6f0646beffd77d69d39bad76b47a");
	bx_sr25519_keypair_destroy(kp);
}

static int
cleanup(void **state)
{
	char cmd[300];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest fast[] = {
		cmocka_unit_test(test_fixture_plain),
		cmocka_unit_test(test_each_secret_field),
		cmocka_unit_test(test_corrupt_documents),
		cmocka_unit_test(test_truncated_json),
		cmocka_unit_test(test_write_read_plain),
		cmocka_unit_test(test_write_read_encrypted),
		cmocka_unit_test(test_public_files),
		cmocka_unit_test(test_wallet_paths),
		cmocka_unit_test(test_nacl_fixture_low_cost),
	};
	const struct CMUnitTest slow[] = {
		cmocka_unit_test(test_nacl_fixture_real_cost),
	};

	snprintf(tmpdir, sizeof(tmpdir), "/tmp/bx-keyfile-XXXXXX");
	if (mkdtemp(tmpdir) == NULL) {
		return 1;
	}
	if (argc > 1 && strcmp(argv[1], "nacl-real") == 0) {
		return cmocka_run_group_tests(slow, NULL, cleanup);
	}
	return cmocka_run_group_tests(fast, NULL, cleanup);
}
