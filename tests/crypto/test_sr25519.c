/* sr25519 keys, signing and verification: sr25519.md §2, §3, §6.2-6.4. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include <sodium.h>

#include "bx_test.h"
#include "crypto_int.h"
#include "test_util.h"

#define DEV_MINI  "fac7959dbfe72f052e5a0c3c8d6530f202b02fd8f9f5ca3580ec8deb7797479e"
#define DEV_PUB   "46ebddef8cd9bb167dc30878d7113b7e168e6f0646beffd77d69d39bad76b47a"
#define ALICE_PUB "d43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d"

static struct bx_sr25519_keypair *
kp_from_hex(const char *mini_hex)
{
	uint8_t mini[32];
	struct bx_sr25519_keypair *kp = NULL;

	hex2bin(mini, 32, mini_hex);
	assert_int_equal(bx_sr25519_keypair_from_seed(mini, &kp), 0);
	return kp;
}

static const struct {
	const char *mini, *pub;
	const char *schnorrkel; /* secret, or NULL */
	const char *ed25519;
} key_vectors[] = {
	{ DEV_MINI, DEV_PUB,
	  "05d65584630d16cd4af6d0bec10f34bb504a5dcb62dba2122d49f5a663763d0a"
	  "fd190cce74df356432b410bd64682309d6dedb27c76845daf388557cbac3ca34",
	  "28b0ae221c6bb06856b287f60d7ea0d98552ea5a16db16956849aa371db3eb51"
	  "fd190cce74df356432b410bd64682309d6dedb27c76845daf388557cbac3ca34" },
	/* DEV//Alice hard mini */
	{ "e5be9a5092b81bca64be81d212e7f2f9eba183bb7a90954f7b76361f6edb5c0a", ALICE_PUB,
	  "33a6f3093f158a7109f679410bef1a0c54168145e0cecb4df006c1c2fffb1f09"
	  "925a225d97aa00682d6a59b95b18780c10d7032336e88f3442b42361f4a66011",
	  "98319d4ff8a9508c4bb0cf0b5a78d760a0b2082c02775e6e82370816fedfff48"
	  "925a225d97aa00682d6a59b95b18780c10d7032336e88f3442b42361f4a66011" },
	/* DEV//Bob */
	{ "398f0c28f98885e046333d4a41c19cee4c37368a9832c6502f6cfd182e2aef89",
	  "8eaf04151687736326c9fea17e25fc5287613693c912909cb226aa4794f26a48", NULL, NULL },
	/* ASCII "12345678901234567890123456789012" */
	{ "3132333435363738393031323334353637383930313233343536373839303132",
	  "741c08a06f41c596608f6774259bd9043304adfa5d3eea62760bd9be97634d63", NULL,
	  "f0106660c3dda23f16daa9ac5b811b963077f5bc0af89f85804f0de8e424f050"
	  "f98d66f39442506ff947fd911f18c7a7a5da639a63e8d3b4e233f74143d951c1" },
	{ "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
	  "44a996beb1eef7bdcab976ab6d2ca26104834164ecf28fb375600576fcc6eb0f", NULL, NULL },
	{ "f30eb58ad9bde4a702da3c723709cbfaf7030b22d5e4d16bcbf733c9c09bf6bd",
	  "0e563c7dcb4446c0ed7e7a9d9f0a3a3d41c8767a87f205bd48fb8ef5db066b6b",
	  "1a470f5b685a943fc90d8c0ec0cddb4ace28e26fd3e0091eb39a4333277def0b"
	  "c5cb44ce61338968b0d5f2022346684a90ba8e526dd9d1c0616f1e76be5edcff",
	  NULL },
	/* btwallet test_keyfile.py secretSeed / privateKey / publicKey */
	{ "da3cf5b1e9144931a0f0db65664aab662673b099415a7f8121b7245fb0be4143",
	  "e4359ad3e2716c539a1d663ebd0a51bdc5c98a12e663bb4c4402db47828c9446",
	  "1f1995bdf3a17b60626a26cfe6f564b337d46056b7a1281b64c649d592ccda0a"
	  "9cffd34d9fb01cae1fba61aeed184c817442a2186d5172416729a4b54dd4b84e",
	  NULL },
};

/* bx_sr25519_verify_prepared() when the key prepares, else what verify must say. */
static int
verify_prepared(const uint8_t sig[64], const void *msg, size_t len, const uint8_t pub[32])
{
	struct bx_sr25519_public_prepared pp;

	if (bx_sr25519_public_prepare(&pp, pub) != 0) {
		assert_false(bx_sr25519_public_is_valid(pub));
		return -EBADMSG;
	}
	return bx_sr25519_verify_prepared(sig, msg, len, &pp);
}

static void
test_key_vectors(void **state)
{
	for (size_t i = 0; i < BX_ARRAY_SIZE(key_vectors); i++) {
		struct bx_sr25519_keypair *kp = kp_from_hex(key_vectors[i].mini), *kp2;
		uint8_t pub[32], sec[64], seed[32];
		char hex[129];

		hex2bin(pub, 32, key_vectors[i].pub);
		assert_memory_equal(bx_sr25519_public(kp), pub, 32);
		assert_int_equal(bx_sr25519_keypair_seed(kp, seed), 0);
		bx_hex_encode(hex, seed, 32);
		assert_string_equal(hex, key_vectors[i].mini);
		if (key_vectors[i].schnorrkel) {
			bx_sr25519_keypair_secret(kp, sec, BX_SR25519_SECRET_SCHNORRKEL);
			bx_hex_encode(hex, sec, 64);
			assert_string_equal(hex, key_vectors[i].schnorrkel);
			hex2bin(sec, 64, key_vectors[i].schnorrkel);
			assert_int_equal(bx_sr25519_keypair_from_secret(
						 sec, BX_SR25519_SECRET_SCHNORRKEL, &kp2),
			                 0);
			assert_memory_equal(bx_sr25519_public(kp2), pub, 32);
			assert_int_equal(bx_sr25519_keypair_seed(kp2, seed), -ENOENT);
			bx_sr25519_keypair_destroy(kp2);
		}
		if (key_vectors[i].ed25519) {
			bx_sr25519_keypair_secret(kp, sec, BX_SR25519_SECRET_ED25519);
			bx_hex_encode(hex, sec, 64);
			assert_string_equal(hex, key_vectors[i].ed25519);
			hex2bin(sec, 64, key_vectors[i].ed25519);
			assert_int_equal(bx_sr25519_keypair_from_secret(
						 sec, BX_SR25519_SECRET_ED25519, &kp2),
			                 0);
			assert_memory_equal(bx_sr25519_public(kp2), pub, 32);
			bx_sr25519_keypair_destroy(kp2);
		}
		bx_sr25519_keypair_destroy(kp);
	}
}

/* schnorrkel 33a6f309... x 8 = ed25519 98319d4f... (py-sr25519-bindings) */
static void
test_secret_noncanonical_rejected(void **state)
{
	uint8_t sec[64] = { 0 };
	struct bx_sr25519_keypair *kp = NULL;

	/* x = l: not canonical */
	hex2bin(sec, 32, "edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010");
	assert_int_equal(bx_sr25519_keypair_from_secret(sec, BX_SR25519_SECRET_SCHNORRKEL, &kp),
	                 -EINVAL);
	assert_null(kp);
	/* x = 0 */
	memset(sec, 0, 32);
	assert_int_equal(bx_sr25519_keypair_from_secret(sec, BX_SR25519_SECRET_SCHNORRKEL, &kp),
	                 -EINVAL);
	/* ed25519 form whose x >= l */
	memset(sec, 0xff, 32);
	assert_int_equal(bx_sr25519_keypair_from_secret(sec, BX_SR25519_SECRET_ED25519, &kp),
	                 -EINVAL);
	assert_null(kp);
}

static const struct {
	const char *mini;
	const char *msg;
	size_t msg_len;   /* 0 with msg NULL: 200 x 'a' */
	uint8_t rnd_kind; /* 0: zeros, 1: 01..20 */
	const char *sig;
} sign_vectors[] = {
	{ DEV_MINI, "this is a message", 17, 0,
	  "dc4831339346dc294d21dd6efa22c078b6eb6602a30fb9c67540c1fb4e20936e"
	  "17489f36dbe14aec6d2b1e56d979f7b420ca34143aca1691db0bab9535c49a86" },
	{ "e5be9a5092b81bca64be81d212e7f2f9eba183bb7a90954f7b76361f6edb5c0a", "hello world", 11, 0,
	  "f2549b3b1944ae61ad758e02b23f2debbee319792b7451baf714484e62ba6836"
	  "d59d3f594530dc27578a796172db4348425f41613f7cd50e6bf54147ac715083" },
	{ DEV_MINI, NULL, 200, 0,
	  "e0a2c90e72bdb6dac3f71a13dae50a5a6f719b854be5f0bf6a403fbcda38cf09"
	  "45ec57f8c3b88ed27e77bfce5721727731711db83a1d6248beefd196dec89988" },
	{ DEV_MINI, "", 0, 1,
	  "94a8225d3697a86fdc48caa2c7b3cdefecbc7e516a6b766b4d002af695501006"
	  "ad0eb213de2d44b452af543ddb65c89976ce0e963efd4240fc0671aaf4857983" },
};

static void
test_sign_vectors(void **state)
{
	for (size_t i = 0; i < BX_ARRAY_SIZE(sign_vectors); i++) {
		struct bx_sr25519_keypair *kp = kp_from_hex(sign_vectors[i].mini);
		uint8_t rnd[32] = { 0 }, sig[64], a200[200];
		const void *msg = sign_vectors[i].msg;
		char hex[129];

		if (msg == NULL) {
			memset(a200, 'a', sizeof(a200));
			msg = a200;
		}
		if (sign_vectors[i].rnd_kind == 1) {
			for (int j = 0; j < 32; j++) {
				rnd[j] = (uint8_t)(j + 1);
			}
		}
		assert_int_equal(bx_sr25519_sign_ctx(sig, "substrate", 9, msg,
		                                     sign_vectors[i].msg_len, kp, rnd),
		                 0);
		bx_hex_encode(hex, sig, 64);
		assert_string_equal(hex, sign_vectors[i].sig);
		assert_int_equal(
			bx_sr25519_verify(sig, msg, sign_vectors[i].msg_len, bx_sr25519_public(kp)),
			0);
		assert_int_equal(bx_sr25519_verify_ref(sig, "substrate", 9, msg,
		                                       sign_vectors[i].msg_len,
		                                       bx_sr25519_public(kp)),
		                 0);
		bx_sr25519_keypair_destroy(kp);
	}
}

/* §6.1 intermediate challenge scalar c for the first sign vector. */
static void
test_challenge_value(void **state)
{
	struct bx_transcript t;
	uint8_t pub[32], R[32], c[32];

	hex2bin(pub, 32, DEV_PUB);
	hex2bin(R, 32, "dc4831339346dc294d21dd6efa22c078b6eb6602a30fb9c67540c1fb4e20936e");
	bx_signing_transcript(&t, "substrate", 9, "this is a message", 17);
	bx_sr25519_challenge(c, &t, pub, R);
	assert_hex_equal(c, "8b322786be1b44e2b8c662f1979357530b6a03a80fa076c06e0fe9b29f4a2a0b");
}

static const struct {
	const char *pub, *msg, *sig;
	int expect;
} verify_vectors[] = {
	{ ALICE_PUB,
	  "I hereby verify that I control 5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY",
	  "1037eb7e51613d0dcf5930ae518819c87d655056605764840d9280984e1b7063"
	  "c4566b55bf292fcab07b369d01095879b50517beca4d26e6a65866e25fec0d83",
	  0 },
	{ ALICE_PUB,
	  "I hereby verify that I control 5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY",
	  "b83881d3bd7302981ee1c504fe5b7b394682927131fc0846fd616bb40fa14d02"
	  "640fd2aca785b4cb57904765c2e4e75f59a7dd30154c209964369912091f6981",
	  0 },
	{ "f84d048da2ddae2d9d8fd6763f469566e8817a26114f39408de15547f6d47805",
	  "<Bytes>message to sign</Bytes>",
	  "48ce2c90e08651adfc8ecef84e916f6d1bb51ebebd16150ee12df247841a5437"
	  "951ea0f9d632ca165e6ab391532e75e701be6a1caa88c8a6bcca3511f55b4183",
	  0 },
	{ "f84d048da2ddae2d9d8fd6763f469566e8817a26114f39408de15547f6d47805", "message to sign",
	  "48ce2c90e08651adfc8ecef84e916f6d1bb51ebebd16150ee12df247841a5437"
	  "951ea0f9d632ca165e6ab391532e75e701be6a1caa88c8a6bcca3511f55b4183",
	  -EBADMSG },
	/* pre-audit signature without the marker: only verify_deprecated accepts it */
	{ "b4bfa1f7a5166695eb75299fd1c4c03ea212871c342f2c5dfea0902b2c246918",
	  "Verifying that I am the owner of 5G9hQLdsKQswNPgB499DeA5PkFBbgkLPJWkkS6FAM6xGQ8xD. "
	  "Hash: 221455a3\n",
	  "5a9755f069939f45d96aaf125cf5ce7ba1db998686f87f2fb3cbdea922078741"
	  "a73891ba265f70c31436e18a9acd14d189d73c12317ab6c313285cd938453202",
	  -EBADMSG },
};

static void
test_verify_vectors(void **state)
{
	for (size_t i = 0; i < BX_ARRAY_SIZE(verify_vectors); i++) {
		uint8_t pub[32], sig[64];
		const char *m = verify_vectors[i].msg;

		hex2bin(pub, 32, verify_vectors[i].pub);
		hex2bin(sig, 64, verify_vectors[i].sig);
		assert_int_equal(bx_sr25519_verify(sig, m, strlen(m), pub),
		                 verify_vectors[i].expect);
		assert_int_equal(verify_prepared(sig, m, strlen(m), pub), verify_vectors[i].expect);
		assert_int_equal(bx_sr25519_verify_ref(sig, "substrate", 9, m, strlen(m), pub),
		                 verify_vectors[i].expect);
	}
}

/* btwallet's <Bytes> retry: the unwrapped text of the §6.4 <Bytes> vector. */
static void
test_verify_btwallet_wrapping(void **state)
{
	uint8_t pub[32], sig[64], mini[32] = { 3 }, sig2[64];
	struct bx_sr25519_keypair *kp;

	hex2bin(pub, 32, "f84d048da2ddae2d9d8fd6763f469566e8817a26114f39408de15547f6d47805");
	hex2bin(sig, 64,
	        "48ce2c90e08651adfc8ecef84e916f6d1bb51ebebd16150ee12df247841a5437"
	        "951ea0f9d632ca165e6ab391532e75e701be6a1caa88c8a6bcca3511f55b4183");
	assert_int_equal(bx_sr25519_verify(sig, "message to sign", 15, pub), -EBADMSG);
	assert_int_equal(bx_sr25519_verify_btwallet(sig, "message to sign", 15, pub), 0);
	struct bx_sr25519_public_prepared pp;
	assert_int_equal(bx_sr25519_public_prepare(&pp, pub), 0);
	assert_int_equal(bx_sr25519_verify_btwallet_prepared(sig, "message to sign", 15, &pp), 0);
	assert_int_equal(bx_sr25519_verify_btwallet_prepared(sig, "message to sigN", 15, &pp),
	                 -EBADMSG);
	assert_int_equal(bx_sr25519_verify_prepared(sig, "message to sign", 15, &pp), -EBADMSG);
	assert_int_equal(bx_sr25519_verify_btwallet(sig, "message to sigN", 15, pub), -EBADMSG);
	assert_int_equal(bx_sr25519_verify_btwallet(sig, "<Bytes>message to sign</Bytes>", 30, pub),
	                 0);
	/* plain signatures still pass, and a long message crosses STROBE blocks */
	uint8_t big[1000];
	memset(big, 'q', sizeof(big));
	assert_int_equal(bx_sr25519_keypair_from_seed(mini, &kp), 0);
	assert_int_equal(bx_sr25519_sign(sig2, big, sizeof(big), kp), 0);
	assert_int_equal(bx_sr25519_verify_btwallet(sig2, big, sizeof(big), bx_sr25519_public(kp)),
	                 0);
	static const uint8_t open_tag[7] = { '<', 'B', 'y', 't', 'e', 's', '>' };
	static const uint8_t close_tag[8] = { '<', '/', 'B', 'y', 't', 'e', 's', '>' };
	uint8_t wrapped[1015];
	memcpy(wrapped, open_tag, 7);
	memcpy(wrapped + 7, big, sizeof(big));
	memcpy(wrapped + 1007, close_tag, 8);
	assert_int_equal(bx_sr25519_sign(sig2, wrapped, sizeof(wrapped), kp), 0);
	assert_int_equal(bx_sr25519_verify(sig2, big, sizeof(big), bx_sr25519_public(kp)),
	                 -EBADMSG);
	assert_int_equal(bx_sr25519_verify_btwallet(sig2, big, sizeof(big), bx_sr25519_public(kp)),
	                 0);
	bx_sr25519_keypair_destroy(kp);
}

/* ---------- negative classes, one test each ---------- */

struct fixture {
	uint8_t pub[32], sig[64];
	const char *msg;
	size_t len;
};

static void
good_sig(struct fixture *f)
{
	struct bx_sr25519_keypair *kp = kp_from_hex(DEV_MINI);

	f->msg = "this is a message";
	f->len = 17;
	memcpy(f->pub, bx_sr25519_public(kp), 32);
	assert_int_equal(bx_sr25519_sign(f->sig, f->msg, f->len, kp), 0);
	bx_sr25519_keypair_destroy(kp);
	assert_int_equal(bx_sr25519_verify(f->sig, f->msg, f->len, f->pub), 0);
}

static void
expect_reject(const struct fixture *f)
{
	assert_int_equal(verify_prepared(f->sig, f->msg, f->len, f->pub), -EBADMSG);
	assert_int_equal(bx_sr25519_verify(f->sig, f->msg, f->len, f->pub), -EBADMSG);
	assert_int_equal(bx_sr25519_verify_ref(f->sig, "substrate", 9, f->msg, f->len, f->pub),
	                 -EBADMSG);
}

static void
test_neg_wrong_context(void **state)
{
	struct fixture f;

	good_sig(&f);
	assert_int_equal(bx_sr25519_verify_ctx(f.sig, "substrat", 8, f.msg, f.len, f.pub),
	                 -EBADMSG);
	assert_int_equal(bx_sr25519_verify_ctx(f.sig, "", 0, f.msg, f.len, f.pub), -EBADMSG);
	assert_int_equal(bx_sr25519_verify_ctx(f.sig, "substrate", 9, f.msg, f.len, f.pub), 0);
}

static void
test_neg_flipped_message_bit(void **state)
{
	struct fixture f;
	char m[17];

	good_sig(&f);
	for (size_t bit = 0; bit < (size_t)17 * 8; bit++) {
		memcpy(m, f.msg, 17);
		m[bit / 8] ^= (char)(1 << (bit % 8));
		assert_int_equal(bx_sr25519_verify(f.sig, m, 17, f.pub), -EBADMSG);
	}
}

static void
test_neg_flipped_signature_bit(void **state)
{
	struct fixture f, g;

	good_sig(&f);
	for (size_t bit = 0; bit < 512; bit++) {
		g = f;
		g.sig[bit / 8] ^= (uint8_t)(1 << (bit % 8));
		expect_reject(&g);
	}
}

static void
test_neg_flipped_key_bit(void **state)
{
	struct fixture f, g;

	good_sig(&f);
	for (size_t bit = 0; bit < 256; bit++) {
		g = f;
		g.pub[bit / 8] ^= (uint8_t)(1 << (bit % 8));
		expect_reject(&g);
	}
}

static const uint8_t L[32] = {
	0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7,
	0xa2, 0xde, 0xf9, 0xde, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10,
};

static void
test_neg_noncanonical_s(void **state)
{
	struct fixture f, g;
	unsigned carry = 0;

	good_sig(&f);
	g = f;
	g.sig[63] &= 0x7f;
	/* s + l: the same scalar mod l, still below 2^255 */
	for (int i = 0; i < 32; i++) {
		carry += (unsigned)g.sig[32 + i] + L[i];
		g.sig[32 + i] = (uint8_t)carry;
		carry >>= 8;
	}
	assert_int_equal(g.sig[63] & 0x80, 0);
	g.sig[63] |= 0x80;
	expect_reject(&g);
	/* s = l exactly */
	memcpy(g.sig + 32, L, 32);
	g.sig[63] |= 0x80;
	expect_reject(&g);
	assert_false(bx_scalar_is_canonical(L));
}

static void
test_neg_bad_R(void **state)
{
	struct fixture f, g;
	static const uint8_t p_minus_1_even[32] = {
		0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
	};

	good_sig(&f);
	/* R with its top bit set: a non-canonical encoding */
	g = f;
	g.sig[31] |= 0x80;
	expect_reject(&g);
	/* R = p - 1 (not canonical field element for Ristretto: it is negative) */
	g = f;
	memcpy(g.sig, p_minus_1_even, 32);
	expect_reject(&g);
	/* R = identity, s = 0 */
	g = f;
	memset(g.sig, 0, 64);
	g.sig[63] = 0x80;
	expect_reject(&g);
	/* R = identity with the right s for it does not exist; any s is refused */
	g = f;
	memset(g.sig, 0, 32);
	expect_reject(&g);
}

static void
test_neg_bad_public(void **state)
{
	struct fixture f, g;

	good_sig(&f);
	g = f;
	memset(g.pub, 0xff, 32);
	expect_reject(&g);
	assert_false(bx_sr25519_public_is_valid(g.pub));
	g.pub[31] = 0x7f; /* still not canonical */
	expect_reject(&g);
	assert_true(bx_sr25519_public_is_valid(f.pub));
}

/* Identity public key with (R = B, s = 1): schnorrkel accepts, bx refuses on purpose. */
static void
test_neg_identity_public(void **state)
{
	struct fixture g;
	static const char *B = "e2f2ae0a6abc4e71a884a961c500515f58e30b6aa582dd8db6a65945e08d2d76";

	memset(&g, 0, sizeof(g));
	g.msg = "x";
	g.len = 1;
	hex2bin(g.sig, 32, B);
	g.sig[32] = 1;
	g.sig[63] |= 0x80;
	expect_reject(&g);
	assert_false(bx_sr25519_public_is_valid(g.pub));
}

static void
test_neg_missing_marker(void **state)
{
	struct fixture f, g;

	good_sig(&f);
	g = f;
	g.sig[63] &= 0x7f;
	expect_reject(&g);
}

/* Truncated and overlong inputs: the message length is part of the transcript. */
static void
test_neg_truncated_overlong(void **state)
{
	struct fixture f;
	char longer[18];

	good_sig(&f);
	assert_int_equal(bx_sr25519_verify(f.sig, f.msg, f.len - 1, f.pub), -EBADMSG);
	assert_int_equal(bx_sr25519_verify(f.sig, f.msg, 0, f.pub), -EBADMSG);
	memcpy(longer, f.msg, 17);
	longer[17] = '\0';
	assert_int_equal(bx_sr25519_verify(f.sig, longer, 18, f.pub), -EBADMSG);
}

/* ---------- round trips and fast vs reference ---------- */

static void
test_roundtrip_random(void **state)
{
	uint8_t mini[32], msg[300], sig[64];

	for (int i = 0; i < 64; i++) {
		struct bx_sr25519_keypair *kp;
		size_t len = (size_t)randombytes_uniform(sizeof(msg) + 1);

		randombytes_buf(mini, 32);
		randombytes_buf(msg, len);
		assert_int_equal(bx_sr25519_keypair_from_seed(mini, &kp), 0);
		assert_int_equal(bx_sr25519_sign(sig, msg, len, kp), 0);
		assert_int_equal(bx_sr25519_verify(sig, msg, len, bx_sr25519_public(kp)), 0);
		assert_int_equal(verify_prepared(sig, msg, len, bx_sr25519_public(kp)), 0);
		assert_int_equal(
			bx_sr25519_verify_ref(sig, "substrate", 9, msg, len, bx_sr25519_public(kp)),
			0);
		if (len > 0) {
			msg[randombytes_uniform((uint32_t)len)] ^= 1;
			assert_int_equal(bx_sr25519_verify(sig, msg, len, bx_sr25519_public(kp)),
			                 -EBADMSG);
		}
		bx_sr25519_keypair_destroy(kp);
	}
}

/* The fast double-scalar multiplication against libsodium on random and edge inputs. */
static void
test_fast_vs_libsodium(void **state)
{
	uint8_t s[32], c[32], A[32], a[32], wide[64], fast[32], sB[32], cA[32], ref[32];

	for (int i = 0; i < 300; i++) {
		randombytes_buf(wide, 64);
		crypto_core_ristretto255_scalar_reduce(s, wide);
		randombytes_buf(wide, 64);
		crypto_core_ristretto255_scalar_reduce(c, wide);
		if (i == 0) {
			memset(s, 0, 32);
		}
		if (i == 1) {
			memset(c, 0, 32);
		}
		if (i == 2) {
			memset(s, 0, 32);
			memset(c, 0, 32);
		}
		if (i == 3) {
			memcpy(s, L, 32);
			s[0]--; /* l - 1 */
		}
		crypto_core_ristretto255_random(A);
		if (i == 4) {
			memset(A, 0, 32);
		}
		if (i == 5) { /* A = B, c = s: result identity */
			memset(a, 0, 32);
			a[0] = 1;
			assert_int_equal(crypto_scalarmult_ristretto255_base(A, a), 0);
			memcpy(c, s, 32);
		}
		assert_int_equal(bx_ristretto_double_scalarmult_vartime(fast, s, c, A), 0);
		if (crypto_scalarmult_ristretto255_base(sB, s) != 0) {
			memset(sB, 0, 32);
		}
		if (crypto_scalarmult_ristretto255(cA, c, A) != 0) {
			memset(cA, 0, 32);
		}
		assert_int_equal(crypto_core_ristretto255_sub(ref, sB, cA), 0);
		assert_memory_equal(fast, ref, 32);
	}
}

/*
 * Decoding against libsodium. libsodium 1.0.18 ignores bit 255 of a
 * ristretto255 encoding; curve25519-dalek (schnorrkel) refuses such an
 * encoding as non-canonical, and so does bx.
 */
static void
test_decode_vs_libsodium(void **state)
{
	uint8_t p[32];

	for (int i = 0; i < 20000; i++) {
		randombytes_buf(p, 32);
		if (i & 2) {
			p[0] &= 0xfe;
		}
		if (i % 7 == 0) {
			crypto_core_ristretto255_random(p);
		}
		bool top = (p[31] & 0x80) != 0;
		p[31] &= 0x7f;
		assert_int_equal(bx_ristretto_is_valid(p),
		                 crypto_core_ristretto255_is_valid_point(p) == 1);
		if (top) {
			p[31] |= 0x80;
			assert_false(bx_ristretto_is_valid(p));
		}
	}
}

/* ---------- batch verification ---------- */

#define NB 40

struct batch {
	uint8_t sig[NB][64], pub[NB][32], msg[NB][48];
	const uint8_t *sigs[NB], *pubs[NB];
	const void *msgs[NB];
	size_t lens[NB];
};

static void
make_batch(struct batch *b)
{
	uint8_t mini[32];

	for (int i = 0; i < NB; i++) {
		struct bx_sr25519_keypair *kp;
		randombytes_buf(mini, 32);
		assert_int_equal(bx_sr25519_keypair_from_seed(mini, &kp), 0);
		memcpy(b->pub[i], bx_sr25519_public(kp), 32);
		b->lens[i] = (size_t)i; /* 0..39 bytes */
		randombytes_buf(b->msg[i], sizeof(b->msg[i]));
		assert_int_equal(bx_sr25519_sign(b->sig[i], b->msg[i], b->lens[i], kp), 0);
		bx_sr25519_keypair_destroy(kp);
		b->sigs[i] = b->sig[i];
		b->pubs[i] = b->pub[i];
		b->msgs[i] = b->msg[i];
	}
}

static void
test_batch_valid(void **state)
{
	static const size_t sizes[] = { 0, 1, 2, 5, 16, 17, 33, NB };
	struct batch b;

	make_batch(&b);
	for (size_t i = 0; i < BX_ARRAY_SIZE(sizes); i++) {
		assert_int_equal(bx_sr25519_verify_batch(b.sigs, b.msgs, b.lens, b.pubs, sizes[i]),
		                 0);
	}
}

/* One bad signature anywhere in the batch fails the batch, whatever the flaw. */
static void
test_batch_one_bad(void **state)
{
	struct batch b;

	make_batch(&b);
	for (int i = 0; i < NB; i += 3) {
		struct batch c = b;
		for (int j = 0; j < NB; j++) {
			c.sigs[j] = c.sig[j];
			c.pubs[j] = c.pub[j];
			c.msgs[j] = c.msg[j];
		}
		switch (i % 5) {
		case 0:
			c.sig[i][40] ^= 1;
			break; /* s */
		case 1:
			c.sig[i][5] ^= 1;
			break; /* R */
		case 2:
			c.pub[i][9] ^= 1;
			break; /* key */
		case 3:
			c.sig[i][63] &= 0x7f;
			break; /* marker */
		default:
			c.lens[i] = c.lens[i] ? c.lens[i] - 1 : 1;
			break;
		}
		assert_int_equal(bx_sr25519_verify_batch(c.sigs, c.msgs, c.lens, c.pubs, NB),
		                 -EBADMSG);
		assert_int_equal(bx_sr25519_verify(c.sigs[i], c.msgs[i], c.lens[i], c.pubs[i]),
		                 -EBADMSG);
	}
}

/*
 * Two invalid signatures whose errors cancel when the weights are equal
 * (s1 + d, s2 - d under one key): random weights must still refuse them
 * (sr25519.md §9.14).
 */
static void
test_batch_cancelling_pair(void **state)
{
	struct batch b;
	uint8_t d[32] = { 5 }, s[32];

	make_batch(&b);
	/* both messages signed by one key */
	struct bx_sr25519_keypair *kp;
	uint8_t mini[32] = { 9 };
	assert_int_equal(bx_sr25519_keypair_from_seed(mini, &kp), 0);
	for (int i = 0; i < 2; i++) {
		memcpy(b.pub[i], bx_sr25519_public(kp), 32);
		assert_int_equal(bx_sr25519_sign(b.sig[i], b.msg[i], b.lens[i], kp), 0);
	}
	bx_sr25519_keypair_destroy(kp);
	memcpy(s, b.sig[0] + 32, 32);
	s[31] &= 0x7f;
	crypto_core_ristretto255_scalar_add(s, s, d);
	memcpy(b.sig[0] + 32, s, 32);
	b.sig[0][63] |= 0x80;
	memcpy(s, b.sig[1] + 32, 32);
	s[31] &= 0x7f;
	crypto_core_ristretto255_scalar_sub(s, s, d);
	memcpy(b.sig[1] + 32, s, 32);
	b.sig[1][63] |= 0x80;
	assert_int_equal(bx_sr25519_verify(b.sigs[0], b.msgs[0], b.lens[0], b.pubs[0]), -EBADMSG);
	assert_int_equal(bx_sr25519_verify(b.sigs[1], b.msgs[1], b.lens[1], b.pubs[1]), -EBADMSG);
	for (int rep = 0; rep < 20; rep++) {
		assert_int_equal(bx_sr25519_verify_batch(b.sigs, b.msgs, b.lens, b.pubs, 2),
		                 -EBADMSG);
	}
}

/* One keypair shared read-only by threads that sign and verify at once. */
static void *
sign_verify_thread(void *arg)
{
	const struct bx_sr25519_keypair *kp = arg;
	uint8_t msg[64], sig[64];
	intptr_t bad = 0;

	for (int i = 0; i < 300; i++) {
		randombytes_buf(msg, sizeof(msg));
		bad += bx_sr25519_sign(sig, msg, sizeof(msg), kp) != 0;
		bad += bx_sr25519_verify(sig, msg, sizeof(msg), bx_sr25519_public(kp)) != 0;
		msg[0] ^= 1;
		bad += bx_sr25519_verify(sig, msg, sizeof(msg), bx_sr25519_public(kp)) != -EBADMSG;
	}
	return (void *)bad;
}

static void
test_threads_share_keypair(void **state)
{
	struct bx_sr25519_keypair *kp = kp_from_hex(DEV_MINI);
	pthread_t t[4];
	void *bad;

	for (int i = 0; i < 4; i++) {
		assert_int_equal(pthread_create(&t[i], NULL, sign_verify_thread, kp), 0);
	}
	for (int i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(t[i], &bad), 0);
		assert_null(bad);
	}
	bx_sr25519_keypair_destroy(kp);
}

static int
create_kp(void *ctx, void **obj)
{
	return bx_sr25519_keypair_from_seed(ctx, (struct bx_sr25519_keypair **)obj);
}

static void
destroy_kp(void *obj)
{
	bx_sr25519_keypair_destroy(obj);
}

/* Every allocation failure of keypair creation is reported as -ENOMEM. */
static void
test_keypair_alloc_failures(void **state)
{
	uint8_t mini[32] = { 7 };

	assert_true(bx_test_alloc_walk(create_kp, destroy_kp, mini) >= 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_key_vectors),
		cmocka_unit_test(test_secret_noncanonical_rejected),
		cmocka_unit_test(test_sign_vectors),
		cmocka_unit_test(test_challenge_value),
		cmocka_unit_test(test_verify_vectors),
		cmocka_unit_test(test_verify_btwallet_wrapping),
		cmocka_unit_test(test_neg_wrong_context),
		cmocka_unit_test(test_neg_flipped_message_bit),
		cmocka_unit_test(test_neg_flipped_signature_bit),
		cmocka_unit_test(test_neg_flipped_key_bit),
		cmocka_unit_test(test_neg_noncanonical_s),
		cmocka_unit_test(test_neg_bad_R),
		cmocka_unit_test(test_neg_bad_public),
		cmocka_unit_test(test_neg_identity_public),
		cmocka_unit_test(test_neg_missing_marker),
		cmocka_unit_test(test_neg_truncated_overlong),
		cmocka_unit_test(test_roundtrip_random),
		cmocka_unit_test(test_fast_vs_libsodium),
		cmocka_unit_test(test_decode_vs_libsodium),
		cmocka_unit_test(test_keypair_alloc_failures),
		cmocka_unit_test(test_batch_valid),
		cmocka_unit_test(test_batch_one_bad),
		cmocka_unit_test(test_batch_cancelling_pair),
		cmocka_unit_test(test_threads_share_keypair),
	};
	if (bx_crypto_init() != 0) {
		return 1;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
