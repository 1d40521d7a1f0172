/* Keccak-f[1600], SHA3-256, STROBE-128 and Merlin against sr25519.md §1, §8. */
#include <stdlib.h>

#include "crypto_int.h"
#include "test_util.h"

static void
test_keccak_zero(void **state)
{
	uint8_t st[200] = { 0 };

	bx_keccak_f1600(st);
	uint8_t head[32];
	memcpy(head, st, 32);
	assert_hex_equal(head, "e7dde140798f25f18a47c033f9ccd584eea95aa61e2698d54d49806f304715bd");
}

static const struct {
	char fill;
	size_t n;
	const char *hex;
} sha3_vectors[] = {
	{ 0, 0, "a7ffc6f8bf1ed76651c14756a061d662f580ff4de43b49fa82d80a4b80f8434a" },
	{ 'a', 135, "8094bb53c44cfb1e67b7c30447f9a1c33696d2463ecc1d9c92538913392843c9" },
	{ 'a', 136, "3fc5559f14db8e453a0a3091edbd2bc25e11528d81c66fa570a4efdcc2695ee1" },
	{ 'a', 200, "cce34485baf2bf2aca99b94833892a4f52896d3d153f7b840cc4f9fe695f1387" },
};

static void
test_sha3_vectors(void **state)
{
	uint8_t out[32];
	char buf[256];

	assert_int_equal(bx_sha3_256(out, "abc", 3), 0);
	assert_hex_equal(out, "3a985da74fe225b2045c172d6bd390bd855f086e3e9d525b46bfe24511431532");
	for (size_t i = 0; i < BX_ARRAY_SIZE(sha3_vectors); i++) {
		memset(buf, sha3_vectors[i].fill, sha3_vectors[i].n);
		assert_int_equal(bx_sha3_256(out, buf, sha3_vectors[i].n), 0);
		assert_hex_equal(out, sha3_vectors[i].hex);
	}
}

static void
test_sha3_incremental(void **state)
{
	uint8_t msg[1000], one[32], inc[32];
	struct bx_sha3_256_ctx ctx;

	for (size_t i = 0; i < sizeof(msg); i++) {
		msg[i] = (uint8_t)(i * 7 + 3);
	}
	for (size_t split = 0; split <= sizeof(msg); split += 37) {
		bx_sha3_256(one, msg, sizeof(msg));
		bx_sha3_256_init(&ctx);
		bx_sha3_256_update(&ctx, msg, split);
		bx_sha3_256_update(&ctx, msg + split, sizeof(msg) - split);
		bx_sha3_256_final(&ctx, inc);
		assert_memory_equal(one, inc, 32);
	}
}

static void
test_strobe_conformance(void **state)
{
	struct bx_strobe s;
	uint8_t big[1024], prf1[32], prf2[32];

	memset(big, 0x63, sizeof(big));
	bx_strobe_init(&s, "Conformance Test Protocol", 25);
	bx_strobe_meta_ad(&s, "ms", 2, false);
	bx_strobe_meta_ad(&s, "g", 1, true);
	bx_strobe_ad(&s, big, sizeof(big), false);
	bx_strobe_meta_ad(&s, "prf", 3, false);
	bx_strobe_prf(&s, prf1, 32, false);
	assert_hex_equal(prf1, "b48e645ca17c667fd5206ba57a6a228d72d8e1903814d3f17f622996d7cfefb0");
	bx_strobe_meta_ad(&s, "key", 3, false);
	bx_strobe_key(&s, prf1, 32, false);
	bx_strobe_meta_ad(&s, "prf", 3, false);
	bx_strobe_prf(&s, prf2, 32, false);
	assert_hex_equal(prf2, "07e45cce8078cee259e3e375bb85d75610e2d1e1201c5f645045a194edd49ff8");
}

static void
test_merlin_simple(void **state)
{
	struct bx_transcript t;
	uint8_t c[32];

	bx_transcript_init(&t, "test protocol");
	bx_transcript_append(&t, "some label", "some data", 9);
	bx_transcript_challenge(&t, "challenge", c, 32);
	assert_hex_equal(c, "d5a21972d0d5fe320c0d263fac7fffb8145aa640af6e9bca177c03c7efcf0615");
}

static void
test_merlin_complex(void **state)
{
	struct bx_transcript t;
	uint8_t c[32], big[1024];

	memset(big, 0x63, sizeof(big));
	bx_transcript_init(&t, "test protocol");
	bx_transcript_append(&t, "step1", "some data", 9);
	for (int i = 0; i < 32; i++) {
		bx_transcript_challenge(&t, "challenge", c, 32);
		bx_transcript_append(&t, "bigdata", big, sizeof(big));
		bx_transcript_append(&t, "challengedata", c, 32);
	}
	assert_hex_equal(c, "a8c933f54fae76e3f9bea93648c1308e7dfa2152dd51674ff3ca438351cf003c");
}

/* sr25519.md §6.1: signing-transcript trace for the dev key, "this is a message". */
static void
test_signing_transcript_trace(void **state)
{
	struct bx_transcript t;
	uint8_t head[16], pub[32], R[32], wide[64];

	assert_int_equal(bx_crypto_init(), 0);
	bx_signing_transcript(&t, "substrate", 9, "this is a message", 17);
	assert_int_equal(t.strobe.pos, 94);
	assert_int_equal(t.strobe.pos_begin, 76);
	assert_int_equal(t.strobe.cur_flags, 0x02);
	memcpy(head, t.strobe.st, 16);
	assert_hex_equal(head, "9c7f5bea8a913cb40ad10d0d65642707");

	hex2bin(pub, 32, "46ebddef8cd9bb167dc30878d7113b7e168e6f0646beffd77d69d39bad76b47a");
	hex2bin(R, 32, "dc4831339346dc294d21dd6efa22c078b6eb6602a30fb9c67540c1fb4e20936e");
	bx_transcript_append(&t, "proto-name", "Schnorr-sig", 11);
	bx_transcript_append(&t, "sign:pk", pub, 32);
	assert_int_equal(t.strobe.pos, 4);
	assert_int_equal(t.strobe.pos_begin, 0);
	bx_transcript_append(&t, "sign:R", R, 32);
	bx_transcript_challenge(&t, "sign:c", wide, 64);
	assert_int_equal(t.strobe.pos, 64);
	assert_int_equal(t.strobe.pos_begin, 0);
	assert_int_equal(t.strobe.cur_flags, 0x07);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keccak_zero),
		cmocka_unit_test(test_sha3_vectors),
		cmocka_unit_test(test_sha3_incremental),
		cmocka_unit_test(test_strobe_conformance),
		cmocka_unit_test(test_merlin_simple),
		cmocka_unit_test(test_merlin_complex),
		cmocka_unit_test(test_signing_transcript_trace),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
