/* SS58 encode/decode: sr25519.md §7 vectors and each kind of bad input. */
#include <errno.h>

#include "test_util.h"

#define ALICE_PUB "d43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d"

static const struct {
	uint16_t prefix;
	const char *addr;
} vectors[] = {
	{ 0, "15oF4uVJwmo4TdGW7VfQxNLavjCXviqxT9S1MgbjMNHr6Sp5" },
	{ 2, "HNZata7iMYWmk5RvZRTiAsSDhV8366zq2YGb3tLH5Upf74F" },
	{ 42, "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY" },
	{ 64, "cEaNSpz4PxFcZ7nT1VEKrKewH67rfx6MfcM6yKojyyPz7qaqp" },
	{ 255, "yGHXkYLYqxijLKKfd9Q2CB9shRVu8rPNBS53wvwGTutYg4zTg" },
	{ 16383, "yNa8JpqfFB3q8A29rCwSgxvdU94ufJw2yKKxDgznS5m1PoFvn" },
};

static void
test_vectors(void **state)
{
	uint8_t pub[32], got[32];
	char out[BX_SS58_MAX_LEN];
	uint16_t prefix;
	struct bx_errbuf eb;

	hex2bin(pub, 32, ALICE_PUB);
	for (size_t i = 0; i < BX_ARRAY_SIZE(vectors); i++) {
		assert_int_equal(bx_ss58_encode(out, sizeof(out), pub, vectors[i].prefix), 0);
		assert_string_equal(out, vectors[i].addr);
		assert_int_equal(
			bx_ss58_decode(vectors[i].addr, strlen(vectors[i].addr), got, &prefix, &eb),
			0);
		assert_memory_equal(got, pub, 32);
		assert_int_equal(prefix, vectors[i].prefix);
	}
}

static const struct {
	const char *pub, *addr;
} known[] = {
	{ "46ebddef8cd9bb167dc30878d7113b7e168e6f0646beffd77d69d39bad76b47a",
	  "5DfhGyQdFobKM8NsWvEeAKk5EQQgYe9AydgJ7rMB6E1EqRzV" },
	{ "8eaf04151687736326c9fea17e25fc5287613693c912909cb226aa4794f26a48",
	  "5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty" },
	{ "e4359ad3e2716c539a1d663ebd0a51bdc5c98a12e663bb4c4402db47828c9446",
	  "5HDvhV6WDCjCKyrXqGQSDYqQAzkzabNhctmiDYEqgBC66BsX" },
	{ "be5ddb1579b72e84524fc29e78609e3caf42e85aa118ebfe0b0ad404b5bdd25f",
	  "5GNJqTPyNqANBkUVMN1LPPrxXnFouWXoe2wNSmmEoLctxiZY" },
};

static void
test_known_addresses(void **state)
{
	uint8_t pub[32];
	char out[BX_SS58_MAX_LEN];

	for (size_t i = 0; i < BX_ARRAY_SIZE(known); i++) {
		hex2bin(pub, 32, known[i].pub);
		assert_int_equal(bx_ss58_encode(out, sizeof(out), pub, 42), 0);
		assert_string_equal(out, known[i].addr);
	}
	hex2bin(pub, 32, "e4359ad3e2716c539a1d663ebd0a51bdc5c98a12e663bb4c4402db47828c9446");
	assert_int_equal(bx_ss58_encode(out, sizeof(out), pub, 0), 0);
	assert_string_equal(out, "16ADqpMa4yzfmWs3nuTSMhfZ2ckeGtvqhPWCNqECEGDcGgU2");
}

static void
test_encode_errors(void **state)
{
	uint8_t pub[32] = { 0 };
	char out[BX_SS58_MAX_LEN];

	assert_int_equal(bx_ss58_encode(out, sizeof(out), pub, 16384), -EINVAL);
	assert_int_equal(bx_ss58_encode(out, 48, pub, 42), -ENOSPC); /* needs 48 + NUL */
	assert_int_equal(bx_ss58_encode(out, 49, pub, 42), 0);
}

static void
expect_bad(const char *s, const char *words)
{
	uint8_t pub[32];
	struct bx_errbuf eb = { { 0 } };

	assert_int_equal(bx_ss58_decode(s, strlen(s), pub, NULL, &eb), -EINVAL);
	if (strstr(eb.msg, words) == NULL) {
		fail_msg("message \"%s\" lacks \"%s\"", eb.msg, words);
	}
}

static void
test_bad_base58(void **state)
{
	expect_bad("5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKut0Y", "base58 at offset 46");
	expect_bad("5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutIY", "base58");
	expect_bad("5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutlY", "base58");
	expect_bad(" 5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY", "offset 0");
	/* an embedded NUL inside the given length */
	uint8_t pub[32];
	struct bx_errbuf eb;
	assert_int_equal(bx_ss58_decode("5Grw\0aEF", 8, pub, NULL, &eb), -EINVAL);
}

static void
test_bad_length(void **state)
{
	expect_bad("", "empty");
	expect_bad("5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQ", "bytes");
	expect_bad("5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQYY", "bytes");
	expect_bad("5GrwvaEF", "bytes");
	expect_bad("1111111111111111111111111111111111111111111111111111111111111111111111111111111"
	           "1111111111111111111111111",
	           "too long");
}

static void
test_bad_checksum(void **state)
{
	expect_bad("5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQZ", "checksum");
	expect_bad("5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKvtQY", "checksum");
}

static void
test_bad_prefix(void **state)
{
	uint8_t raw[35] = { 0x80 }, pub[32];
	char s[80];
	struct bx_errbuf eb;

	/* a first byte >= 128 is no valid prefix */
	extern size_t bx_base58_encode(char *, size_t, const uint8_t *, size_t);
	assert_true(bx_base58_encode(s, sizeof(s), raw, sizeof(raw)) > 0);
	assert_int_equal(bx_ss58_decode(s, strlen(s), pub, NULL, &eb), -EINVAL);
	assert_non_null(strstr(eb.msg, "prefix"));
}

static void
test_roundtrip_random_prefixes(void **state)
{
	uint8_t pub[32], got[32];
	char out[BX_SS58_MAX_LEN];
	uint16_t prefix;

	for (unsigned i = 0; i < 2000; i++) {
		uint16_t p = (uint16_t)((i * 2654435761u) % 16384);
		for (int j = 0; j < 32; j++) {
			pub[j] = (uint8_t)(i * 31 + (unsigned)j * 17);
		}
		if (i % 3 == 0) {
			pub[0] = 0;
		}
		assert_int_equal(bx_ss58_encode(out, sizeof(out), pub, p), 0);
		assert_int_equal(bx_ss58_decode(out, strlen(out), got, &prefix, NULL), 0);
		assert_memory_equal(got, pub, 32);
		assert_int_equal(prefix, p);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vectors),
		cmocka_unit_test(test_known_addresses),
		cmocka_unit_test(test_encode_errors),
		cmocka_unit_test(test_bad_base58),
		cmocka_unit_test(test_bad_length),
		cmocka_unit_test(test_bad_checksum),
		cmocka_unit_test(test_bad_prefix),
		cmocka_unit_test(test_roundtrip_random_prefixes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
