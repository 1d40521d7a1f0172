/* substrate-bip39, SURIs and HDKD: sr25519.md §5, §6.2. */
#include <errno.h>
#include <stdlib.h>

#include "crypto_int.h"
#include "test_util.h"

#define DEV_PHRASE "bottom drive obey lake curtain smoke basket hold race lonely fit walk"
#define BT_PHRASE  "old leopard transfer rib spatial phone calm indicate online fire caution review"

/* Runs first: a SURI as the process's first crypto call initialises libsodium itself. */
static void
test_suri_as_first_call(void **state)
{
	struct bx_sr25519_keypair *kp = NULL;

	assert_int_equal(bx_suri_to_keypair("//Alice", &kp, NULL), 0);
	bx_sr25519_keypair_destroy(kp);
}

static void
test_dev_phrase(void **state)
{
	uint8_t mini[32];
	struct bx_errbuf eb;

	assert_int_equal(bx_mnemonic_to_mini_secret(DEV_PHRASE, NULL, mini, &eb), 0);
	assert_hex_equal(mini, "fac7959dbfe72f052e5a0c3c8d6530f202b02fd8f9f5ca3580ec8deb7797479e");
	assert_true(bx_mnemonic_is_valid(DEV_PHRASE));
}

/* substrate-bip39 VECTORS with password "Substrate": the first 32 bytes of seed64 */
static const struct {
	const char *phrase, *seed64;
} bip39_vectors[] = {
	{ "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon "
	  "abandon about",
	  "44e9d125f037ac1d51f0a7d3649689d422c2af8b1ec8e00d71db4d7bf6d127e3" },
	{ "legal winner thank year wave sausage worth useful legal winner thank yellow",
	  "4313249608fe8ac10fd5886c92c4579007272cb77c21551ee5b8d60b78041685" },
	{ "hamster diagram private dutch cause delay private meat slide toddler razor book happy "
	  "fancy gospel tennis maple dilemma loan word shrug inflict delay length",
	  "7c60c555126c297deddddd59f8cdcdc9e3608944455824dd604897984b5cc369" },
};

static void
test_bip39_vectors(void **state)
{
	uint8_t mini[32];
	struct bx_errbuf eb;

	for (size_t i = 0; i < BX_ARRAY_SIZE(bip39_vectors); i++) {
		assert_int_equal(
			bx_mnemonic_to_mini_secret(bip39_vectors[i].phrase, "Substrate", mini, &eb),
			0);
		assert_hex_equal(mini, bip39_vectors[i].seed64);
	}
}

static void
test_btwallet_phrase(void **state)
{
	uint8_t mini[32];
	struct bx_sr25519_keypair *kp;
	char addr[BX_SS58_MAX_LEN];

	assert_int_equal(bx_mnemonic_to_mini_secret(BT_PHRASE, NULL, mini, NULL), 0);
	assert_hex_equal(mini, "da3cf5b1e9144931a0f0db65664aab662673b099415a7f8121b7245fb0be4143");
	assert_int_equal(bx_sr25519_keypair_from_seed(mini, &kp), 0);
	assert_int_equal(bx_ss58_encode(addr, sizeof(addr), bx_sr25519_public(kp), 42), 0);
	assert_string_equal(addr, "5HDvhV6WDCjCKyrXqGQSDYqQAzkzabNhctmiDYEqgBC66BsX");
	bx_sr25519_keypair_destroy(kp);
}

static void
test_bad_mnemonics(void **state)
{
	uint8_t mini[32];
	struct bx_errbuf eb;

	assert_int_equal(bx_mnemonic_to_mini_secret("bottom drive obey lake curtain smoke basket "
	                                            "hold race lonely fit",
	                                            NULL, mini, &eb),
	                 -EINVAL);
	assert_non_null(strstr(eb.msg, "11 words"));
	assert_int_equal(bx_mnemonic_to_mini_secret("bottom drive obey lake curtain smoke basket "
	                                            "hold race lonely fit wxyz",
	                                            NULL, mini, &eb),
	                 -EINVAL);
	assert_non_null(strstr(eb.msg, "word 12"));
	assert_null(strstr(eb.msg, "wxyz")); /* never echoes the phrase */
	assert_int_equal(bx_mnemonic_to_mini_secret("bottom drive obey lake curtain smoke basket "
	                                            "hold race lonely fit fit",
	                                            NULL, mini, &eb),
	                 -EINVAL);
	assert_non_null(strstr(eb.msg, "checksum"));
	assert_int_equal(bx_mnemonic_to_mini_secret("", NULL, mini, &eb), -EINVAL);
	assert_false(bx_mnemonic_is_valid("abandon"));
}

static void
test_generate_roundtrip(void **state)
{
	char phrase[256];
	uint8_t mini[32];
	static const unsigned counts[] = { 12, 15, 18, 21, 24 };

	for (size_t i = 0; i < BX_ARRAY_SIZE(counts); i++) {
		assert_int_equal(bx_mnemonic_generate(phrase, sizeof(phrase), counts[i]), 0);
		assert_true(bx_mnemonic_is_valid(phrase));
		unsigned n = 1;
		for (char *p = phrase; *p; p++) {
			n += *p == ' ';
		}
		assert_int_equal(n, counts[i]);
		assert_int_equal(bx_mnemonic_to_mini_secret(phrase, NULL, mini, NULL), 0);
	}
	assert_int_equal(bx_mnemonic_generate(phrase, sizeof(phrase), 13), -EINVAL);
	assert_int_equal(bx_mnemonic_generate(phrase, 20, 12), -ENOSPC);
}

static const struct {
	const char *suri, *pub_hex, *ss58;
} suri_vectors[] = {
	{ "", "46ebddef8cd9bb167dc30878d7113b7e168e6f0646beffd77d69d39bad76b47a", NULL },
	{ "//Alice", "d43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d",
	  "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY" },
	{ DEV_PHRASE "//Alice", "d43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d",
	  NULL },
	{ "//Bob", "8eaf04151687736326c9fea17e25fc5287613693c912909cb226aa4794f26a48",
	  "5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty" },
	{ "/Alice", "d6c71059dbbe9ad2b0ed3f289738b800836eb425544ce694825285b958ca755e",
	  "5GvKEoc787uDV8etY1AM8vF385edu2iyqD1WfCjDugzLUiAL" },
	{ "//Alice//stash", "be5ddb1579b72e84524fc29e78609e3caf42e85aa118ebfe0b0ad404b5bdd25f",
	  "5GNJqTPyNqANBkUVMN1LPPrxXnFouWXoe2wNSmmEoLctxiZY" },
	{ "//0", "2afba9278e30ccf6a6ceb3a8b6e336b70068f045c666f2e7f4f9cc5f47db8972", NULL },
	{ "//1//2", "2cb4434bc524b744cdea061e76461417abf04bec25c353d61cc0e99775d8de38", NULL },
	{ "//Alice/soft//hard", "568a4209957aa77918aabb4f51a81f443878ff27ad0b118106273b25253d5e2e",
	  NULL },
	{ "//Alice///password", "32fc18294f88e02ec071e59bb3996aa21f4519d92593dc6e01fda2921d459b23",
	  NULL },
	{ "//aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	  "1209e9744812ac2c671dd1ac7b756ce15c1c0950bc88f0f14a42e244a573391c", NULL },
	{ "//aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	  "f664e39a1662f83fcfed934f1e2b70b46d59e011e7e2136cab24c7df8806a00f", NULL },
	{ "//aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	  "ec4bd7a9e6bec585c8c7bda15d79ba912c0c9f465f015b2b850cad5ce79c9e63", NULL },
	{ "0xfac7959dbfe72f052e5a0c3c8d6530f202b02fd8f9f5ca3580ec8deb7797479e//Alice",
	  "d43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d", NULL },
	{ BT_PHRASE, "e4359ad3e2716c539a1d663ebd0a51bdc5c98a12e663bb4c4402db47828c9446",
	  "5HDvhV6WDCjCKyrXqGQSDYqQAzkzabNhctmiDYEqgBC66BsX" },
	{ BT_PHRASE "//Alice", "8c569308ecfaff02ff941e0af41227042959ab8d60b8bf819ce55427fe78597c",
	  "5FEiH8iuDUw271xbqWTWuB6WrDjv5dnCeDX1CyHubAniXDNN" },
	{ BT_PHRASE "/Alice", NULL, "5GNXbA46ma5dg19GXdiKi5JH3mnkZ8Yea3bBtZAvj7t99P9i" },
};

static void
test_suri_vectors(void **state)
{
	for (size_t i = 0; i < BX_ARRAY_SIZE(suri_vectors); i++) {
		struct bx_sr25519_keypair *kp = NULL;
		struct bx_errbuf eb = { { 0 } };
		char hex[65], addr[BX_SS58_MAX_LEN];

		if (bx_suri_to_keypair(suri_vectors[i].suri, &kp, &eb) != 0) {
			fail_msg("SURI %zu: %s", i, eb.msg);
		}
		if (suri_vectors[i].pub_hex) {
			bx_hex_encode(hex, bx_sr25519_public(kp), 32);
			assert_string_equal(hex, suri_vectors[i].pub_hex);
		}
		if (suri_vectors[i].ss58) {
			assert_int_equal(
				bx_ss58_encode(addr, sizeof(addr), bx_sr25519_public(kp), 42), 0);
			assert_string_equal(addr, suri_vectors[i].ss58);
		}
		bx_sr25519_keypair_destroy(kp);
	}
}

static void
test_hard_mini_alice(void **state)
{
	struct bx_sr25519_keypair *kp = NULL;
	uint8_t seed[32], sec[64];
	char hex[129];

	assert_int_equal(bx_suri_to_keypair("//Alice", &kp, NULL), 0);
	assert_int_equal(bx_sr25519_keypair_seed(kp, seed), 0);
	assert_hex_equal(seed, "e5be9a5092b81bca64be81d212e7f2f9eba183bb7a90954f7b76361f6edb5c0a");
	bx_sr25519_keypair_secret(kp, sec, BX_SR25519_SECRET_ED25519);
	bx_hex_encode(hex, sec, 64);
	assert_string_equal(hex,
	                    "98319d4ff8a9508c4bb0cf0b5a78d760a0b2082c02775e6e82370816fedfff48"
	                    "925a225d97aa00682d6a59b95b18780c10d7032336e88f3442b42361f4a66011");
	bx_sr25519_keypair_destroy(kp);
}

static void
test_bad_suris(void **state)
{
	struct bx_sr25519_keypair *kp = NULL;
	struct bx_errbuf eb;

	assert_int_equal(bx_suri_to_keypair("//Alice//", &kp, &eb), -EINVAL);
	assert_non_null(strstr(eb.msg, "empty junction"));
	assert_int_equal(bx_suri_to_keypair("bad-phrase//x", &kp, &eb), -EINVAL);
	assert_int_equal(bx_suri_to_keypair("0x1234", &kp, &eb), -EINVAL);
	assert_non_null(strstr(eb.msg, "64 hex"));
	assert_int_equal(
		bx_suri_to_keypair("not a real phrase at all here ok fine yes no maybe", &kp, &eb),
		-EINVAL);
	assert_null(kp);
}

static void
test_junction_codes(void **state)
{
	uint8_t cc[32];

	bx_junction_chain_code(cc, "Alice", 5);
	assert_hex_equal(cc, "14416c6963650000000000000000000000000000000000000000000000000000");
	bx_junction_chain_code(cc, "foo", 3);
	assert_hex_equal(cc, "0c666f6f00000000000000000000000000000000000000000000000000000000");
	bx_junction_chain_code(cc, "+007", 4);
	assert_hex_equal(cc, "0700000000000000000000000000000000000000000000000000000000000000");
	bx_junction_chain_code(cc, "18446744073709551616", 20); /* u64 overflow: a string */
	assert_int_equal(cc[0], 20 << 2);
}

/* dev public, soft cc "foo": wasm soft_derives_public; scure publicSoft / secretSoft */
static void
test_soft_public_and_secret(void **state)
{
	uint8_t pub[32], out[32], cc[32], rnd[32] = { 0 }, sec[64];
	struct bx_sr25519_keypair *dev = NULL, *child = NULL;
	char hex[129];

	hex2bin(pub, 32, "46ebddef8cd9bb167dc30878d7113b7e168e6f0646beffd77d69d39bad76b47a");
	bx_junction_chain_code(cc, "foo", 3);
	assert_int_equal(bx_sr25519_derive_public_soft(out, pub, cc), 0);
	assert_hex_equal(out, "40b9675df90efa6069ff623b0fdfcf706cd47ca7452a5056c7ad58194d23440a");
	assert_int_equal(bx_suri_to_keypair("", &dev, NULL), 0);
	assert_int_equal(bx_hdkd_derive_soft_i(dev, cc, "", 0, &child, NULL, rnd), 0);
	assert_memory_equal(bx_sr25519_public(child), out, 32);
	bx_sr25519_keypair_secret(child, sec, BX_SR25519_SECRET_ED25519);
	bx_hex_encode(hex, sec, 64);
	assert_string_equal(hex,
	                    "881a05a29a64c5e65982a58658f9af14a6bdaff9780e7d8ed20074cb4ce6c673"
	                    "b6b70c912fe74e0dfdbb5cb0fbb3a9cf2f1c3296209984792b320e96cfbab888");
	bx_sr25519_keypair_destroy(child);
	bx_sr25519_keypair_destroy(dev);
}

/* py-sr25519-bindings: key f30eb5..., cc 79f708..., i = 01020304 */
static void
test_hdkd_with_input(void **state)
{
	static const uint8_t i4[4] = { 1, 2, 3, 4 };
	uint8_t mini[32], cc[32], cco[32], sec[64];
	struct bx_sr25519_keypair *kp = NULL, *child = NULL;
	char hex[129];

	hex2bin(mini, 32, "f30eb58ad9bde4a702da3c723709cbfaf7030b22d5e4d16bcbf733c9c09bf6bd");
	hex2bin(cc, 32, "79f708602879cb5cecfff56f57a8551ff170025d77a42d053a9caf7ac4c543b5");
	assert_int_equal(bx_sr25519_keypair_from_seed(mini, &kp), 0);

	assert_int_equal(bx_hdkd_derive_soft_i(kp, cc, i4, 4, &child, cco, NULL), 0);
	assert_hex_equal(cco, "6c623b771ab68008e4d3c739abf5ae322a2be44e2bd477e3dec237a0fe5ede1e");
	bx_hex_encode(hex, bx_sr25519_public(child), 32);
	assert_string_equal(hex,
	                    "5e578b800520128de3056e59e2e11aad250dd72a28dddf5886ab7f7808f7642f");
	bx_sr25519_keypair_secret(child, sec, BX_SR25519_SECRET_SCHNORRKEL);
	bx_hex_encode(hex, sec, 32);
	assert_string_equal(hex,
	                    "4f0db52b5d4105303aa0ef052b33040727c5fd5beeb0a7ca12cd8244ed1c6505");
	bx_sr25519_keypair_destroy(child);

	assert_int_equal(bx_hdkd_derive_hard_i(kp, cc, i4, 4, &child, cco), 0);
	assert_hex_equal(cco, "0e89c4b7b29d92138c0a093b9f9cf9a0132960f52664a188e6d0e3ef324316cc");
	bx_hex_encode(hex, bx_sr25519_public(child), 32);
	assert_string_equal(hex,
	                    "8c0ff65769fdb4bfdf12e628261f39bfb29fba94353b6faddbcddcd455d4ea29");
	bx_sr25519_keypair_secret(child, sec, BX_SR25519_SECRET_SCHNORRKEL);
	bx_hex_encode(hex, sec, 64);
	assert_string_equal(hex,
	                    "1c76b89abb8cce5310fa40ef7f197b6c0fd482f2b59e1a524ec30736fbcf5808"
	                    "81f2e63b515c6be0a484e3ceaefce0372f1826d3dd230502f8cea22a323bfbb1");
	bx_sr25519_keypair_destroy(child);
	bx_sr25519_keypair_destroy(kp);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_suri_as_first_call),
		cmocka_unit_test(test_dev_phrase),
		cmocka_unit_test(test_bip39_vectors),
		cmocka_unit_test(test_btwallet_phrase),
		cmocka_unit_test(test_bad_mnemonics),
		cmocka_unit_test(test_generate_roundtrip),
		cmocka_unit_test(test_suri_vectors),
		cmocka_unit_test(test_hard_mini_alice),
		cmocka_unit_test(test_bad_suris),
		cmocka_unit_test(test_junction_codes),
		cmocka_unit_test(test_soft_public_and_secret),
		cmocka_unit_test(test_hdkd_with_input),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
