/*
 * Covers: tools/bx-validator/dendrite.c: Python float repr and string
 * repr/json.dumps rules, body hashes (bittensor-protocol.md §2 vectors),
 * and a golden request (§1.2 example header set, §1.3 body) whose signature
 * verifies over the §3.1 message; nonces increase per identity.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <bx/crypto.h>

#include "dendrite.h"

static void
float_is(double v, bool json, const char *want)
{
	char buf[32];

	bx_py_float(buf, v, json);
	assert_string_equal(buf, want);
}

static void
test_py_float(void **state)
{
	(void)state;
	float_is(12.0, true, "12.0");
	float_is(0.1, true, "0.1");
	float_is(1.5, true, "1.5");
	float_is(-2.25, true, "-2.25");
	float_is(0.0, true, "0.0");
	float_is(100.0, true, "100.0");
	float_is(1e16, true, "1e+16");
	float_is(1e-5, true, "1e-05");
	float_is(0.0001, true, "0.0001");
	float_is(1.2345678901234568e+17, true, "1.2345678901234568e+17");
	float_is(123456789012345.6, true, "123456789012345.6");
	float_is(1.0 / 3.0, true, "0.3333333333333333");
	float_is(0.0 / 0.0, true, "NaN");
	float_is(0.0 / 0.0, false, "nan");
	float_is(-1.0 / 0.0, true, "-Infinity");
	float_is(1.0 / 0.0, false, "inf");
}

static void
test_py_strings(void **state)
{
	char mem[256];
	struct bx_sbuf b;

	(void)state;
	bx_sbuf_init(&b, mem, sizeof(mem));
	bx_py_json_str(&b, "na\xc3\xafve \"q\"\n\\ \xf0\x9f\x98\x80", 17);
	assert_int_equal(b.len, strlen("\"na\\u00efve \\\"q\\\"\\n\\\\ \\ud83d\\ude00\""));
	assert_memory_equal(mem, "\"na\\u00efve \\\"q\\\"\\n\\\\ \\ud83d\\ude00\"", b.len);
	bx_sbuf_init(&b, mem, sizeof(mem));
	bx_py_repr_str(&b, "it's", 4);
	bx_py_repr_str(&b, "say \"hi\"", 8);
	bx_py_repr_str(&b, "a'b\"c\x01", 6);
	assert_int_equal(b.len, strlen("\"it's\"'say \"hi\"''a\\'b\"c\\x01'"));
	assert_memory_equal(mem, "\"it's\"'say \"hi\"''a\\'b\"c\\x01'", b.len);
}

static void
test_body_hashes(void **state)
{
	static const char *const texts[] = { "hello", "it's", "say \"hi\"", "na\xc3\xafve" };
	struct bx_dd_payload p = { .kind = BX_DD_ECHO };
	char hex[65];

	(void)state;
	bx_dd_body_hash(&p, hex);
	assert_string_equal(hex,
	                    "a7ffc6f8bf1ed76651c14756a061d662f580ff4de43b49fa82d80a4b80f8434a");
	/* §2's example: one hashed list field holding these strings (CPython 3.11). */
	p.kind = BX_DD_EMBEDDING;
	p.texts = texts;
	p.nb_texts = 4;
	bx_dd_body_hash(&p, hex);
	assert_string_equal(hex,
	                    "ac3455c37ab7979777a7597cf550aee713105dedc0112ba58fc2006769425ac4");
}

static void
identity(struct bx_dd_identity *id, uint8_t fill)
{
	uint8_t seed[32];

	memset(seed, fill, sizeof(seed));
	assert_int_equal(bx_dd_identity_from_seed(id, seed), 0);
}

/* The §1.2 example (subnet-template Dummy replaced by the base Synapse echo). */
static void
test_golden_request(void **state)
{
	static char mem[8192], want_head[2048], want_body[2048];
	struct bx_dd_identity v, m;
	struct bx_dd_template t;
	struct bx_dd_payload p = { .kind = BX_DD_ECHO };
	struct bx_errbuf eb;
	struct bx_sbuf out;
	char sig[131], msg[512];
	uint8_t raw[64];
	const char *s, *body;
	int n;

	(void)state;
	identity(&v, 1);
	identity(&m, 2);
	snprintf(v.uuid, sizeof(v.uuid), "5ecbd69c-1cec-11ee-b0dc-e29ce36fec1a");
	assert_int_equal(
		bx_dd_template_init(&t, &p, "203.0.113.7", 8091, m.ss58, "198.51.100.2", 12.0, &eb),
		0);
	bx_sbuf_init(&out, mem, sizeof(mem));
	assert_int_equal(bx_dd_build(&t, &v, 1742428800123456789ull, &out), 0);
	s = strstr(mem, "bt_header_dendrite_signature: ");
	assert_non_null(s);
	memcpy(sig, s + 30, 130);
	sig[130] = 0;
	assert_true(sig[0] == '0' && sig[1] == 'x');
	snprintf(
		want_body, sizeof(want_body),
		"{\"name\": \"Synapse\", \"timeout\": 12.0, \"total_size\": 3336, \"header_size\": 0, "
		"\"dendrite\": {\"status_code\": null, \"status_message\": null, \"process_time\": "
		"null, \"ip\": \"198.51.100.2\", \"port\": null, \"version\": 10002000, \"nonce\": "
		"1742428800123456789, \"uuid\": \"5ecbd69c-1cec-11ee-b0dc-e29ce36fec1a\", "
		"\"hotkey\": \"%s\", \"signature\": \"%s\"}, \"axon\": {\"status_code\": null, "
		"\"status_message\": null, \"process_time\": null, \"ip\": \"203.0.113.7\", "
		"\"port\": 8091, \"version\": null, \"nonce\": null, \"uuid\": null, \"hotkey\": "
		"\"%s\", \"signature\": null}, \"computed_body_hash\": \"\"}",
		v.ss58, sig, m.ss58);
	snprintf(want_head, sizeof(want_head),
	         "POST /Synapse HTTP/1.1\r\nHost: 203.0.113.7:8091\r\nname: Synapse\r\n"
	         "timeout: 12.0\r\nbt_header_axon_ip: 203.0.113.7\r\nbt_header_axon_port: 8091\r\n"
	         "bt_header_axon_hotkey: %s\r\nbt_header_dendrite_ip: 198.51.100.2\r\n"
	         "bt_header_dendrite_version: 10002000\r\n"
	         "bt_header_dendrite_nonce: 1742428800123456789\r\n"
	         "bt_header_dendrite_uuid: 5ecbd69c-1cec-11ee-b0dc-e29ce36fec1a\r\n"
	         "bt_header_dendrite_hotkey: %s\r\nbt_header_dendrite_signature: %s\r\n"
	         "header_size: 640\r\ntotal_size: 3336\r\ncomputed_body_hash: "
	         "a7ffc6f8bf1ed76651c14756a061d662f580ff4de43b49fa82d80a4b80f8434a\r\n"
	         "Accept: */*\r\nAccept-Encoding: gzip, deflate\r\n"
	         "User-Agent: Python/3.11 aiohttp/3.10.11\r\nContent-Length: %zu\r\n"
	         "Content-Type: application/json\r\n\r\n",
	         m.ss58, v.ss58, sig, strlen(want_body));
	body = strstr(mem, "\r\n\r\n") + 4;
	assert_int_equal((size_t)(body - mem), strlen(want_head));
	assert_memory_equal(mem, want_head, strlen(want_head));
	assert_int_equal(out.len - (size_t)(body - mem), strlen(want_body));
	assert_memory_equal(body, want_body, strlen(want_body));
	/* The signature verifies over §3.1's message with the validator's key. */
	n = snprintf(msg, sizeof(msg), "1742428800123456789.%s.%s.%s.%s", v.ss58, m.ss58, v.uuid,
	             "a7ffc6f8bf1ed76651c14756a061d662f580ff4de43b49fa82d80a4b80f8434a");
	assert_int_equal(bx_hex_decode(raw, 64, sig + 2, 128), 0);
	assert_int_equal(bx_sr25519_verify(raw, msg, (size_t)n, bx_sr25519_public(v.kp)), 0);
	assert_int_equal(bx_sr25519_verify(raw, msg, (size_t)n, bx_sr25519_public(m.kp)), -EBADMSG);
	bx_dd_template_fini(&t);
	bx_dd_identity_fini(&v);
	bx_dd_identity_fini(&m);
}

static void
test_embedding_and_generation_bodies(void **state)
{
	static const char *const texts[] = { "a\"b", "c" };
	static char mem[8192];
	struct bx_dd_identity v;
	struct bx_dd_template t;
	struct bx_dd_payload p = { .kind = BX_DD_EMBEDDING, .texts = texts, .nb_texts = 2 };
	struct bx_errbuf eb;
	struct bx_sbuf out;

	(void)state;
	identity(&v, 3);
	assert_int_equal(
		bx_dd_template_init(&t, &p, "127.0.0.1", 8091, v.ss58, "127.0.0.1", 12.0, &eb), 0);
	bx_sbuf_init(&out, mem, sizeof(mem));
	assert_int_equal(bx_dd_build(&t, &v, 0, &out), 0);
	mem[out.len] = 0;
	assert_non_null(strstr(mem, "\r\nbt_header_input_obj_texts: W10=\r\nheader_size: 640\r\n"));
	assert_non_null(strstr(mem, "\"computed_body_hash\": \"\", \"texts\": [\"a\\\"b\", \"c\"], "
	                            "\"model\": null, \"embeddings\": null}"));
	bx_dd_template_fini(&t);

	p = (struct bx_dd_payload){ .kind = BX_DD_GENERATION,
		                    .prompt = "Hi",
		                    .max_tokens = 16,
		                    .temperature = 0.0,
		                    .top_p = 1.0,
		                    .seed = -1 };
	assert_int_equal(
		bx_dd_template_init(&t, &p, "127.0.0.1", 8091, v.ss58, "127.0.0.1", 12.0, &eb), 0);
	bx_sbuf_init(&out, mem, sizeof(mem));
	assert_int_equal(bx_dd_build(&t, &v, 0, &out), 0);
	mem[out.len] = 0;
	assert_non_null(strstr(mem, "POST /TextGeneration HTTP/1.1\r\n"));
	assert_non_null(strstr(mem, "\"computed_body_hash\": \"\", \"messages\": [], \"prompt\": "
	                            "\"Hi\", \"max_tokens\": 16, \"temperature\": 0.0, \"top_p\": "
	                            "1.0, \"seed\": null, \"completion\": null}"));
	/* Too small a buffer is an error, not a truncated request. */
	bx_sbuf_init(&out, mem, 300);
	assert_int_equal(bx_dd_build(&t, &v, 0, &out), -ENOSPC);
	assert_int_equal(out.len, 0);
	bx_dd_template_fini(&t);
	bx_dd_identity_fini(&v);
}

static void
test_nonce_increases(void **state)
{
	struct bx_dd_identity v;
	uint64_t prev = 0, n;
	unsigned i;

	(void)state;
	identity(&v, 4);
	for (i = 0; i < 10000; i++) {
		n = bx_dd_next_nonce(&v);
		assert_true(n > prev);
		prev = n;
	}
	assert_true(n > 1700000000000000000ull); /* wall clock ns */
	assert_int_equal(bx_dd_kind_parse("embedding"), BX_DD_EMBEDDING);
	assert_int_equal(bx_dd_kind_parse("Synapse"), BX_DD_ECHO);
	assert_int_equal(bx_dd_kind_parse("nope"), -1);
	bx_dd_identity_fini(&v);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_py_float),
		cmocka_unit_test(test_py_strings),
		cmocka_unit_test(test_body_hashes),
		cmocka_unit_test(test_golden_request),
		cmocka_unit_test(test_embedding_and_generation_bodies),
		cmocka_unit_test(test_nonce_increases),
	};

	if (bx_crypto_init() < 0) {
		return 1;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
