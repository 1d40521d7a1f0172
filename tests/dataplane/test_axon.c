/*
 * The axon protocol on golden requests built as the SDK builds them: the
 * success shape and signatures, the body hash with Python str() rules, and
 * each rejection's stock code and message.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "axon.h"
#include "bx_test.h"
#include "dp_testlib.h"
#include "metagraph_int.h"

static struct dpt_keys K;
static struct bx_axon_shared SH;
static struct bx_axon_ctx AX;
static char OUT[1 << 17];
static struct bx_jtok RTOKS[4096];

static struct bx_peer PEER = { .ip = "127.0.0.1", .port = 40000, .ip_key = 1 };

static int
setup(void **state)
{
	struct bx_dp_conf c;
	struct bx_errbuf eb;
	char mgj[4096];
	size_t n;

	(void)state;
	dpt_keys_make(&K);
	bx_dp_conf_default(&c);
	c.hotkey = K.miner;
	c.min_stake = 1.0;
	c.replay_slots = 4096;
	if (bx_axon_shared_init(&SH, &c, &eb) < 0) {
		fprintf(stderr, "%s\n", eb.msg);
		return -1;
	}
	n = dpt_metagraph_json(&K, mgj, sizeof(mgj));
	if (bx_metagraph_parse(mgj, n, "test", &SH.mg, &eb) < 0) {
		fprintf(stderr, "%s\n", eb.msg);
		return -1;
	}
	SH.nb_workers = 1;
	return bx_axon_ctx_init(&AX, &SH);
}

static int
teardown(void **state)
{
	(void)state;
	bx_axon_ctx_fini(&AX);
	bx_axon_shared_fini(&SH);
	dpt_keys_free(&K);
	return 0;
}

/* Run one request through parser and axon; returns the parsed response. */
static struct dpt_resp
run(const struct dpt_req *r)
{
	static char in[1 << 17];
	struct bx_http_req req;
	struct bx_obuf out;
	struct dpt_resp resp;
	size_t n = dpt_build(r, in, sizeof(in));
	long v = bx_http_parse_request(in, n, &SH.lim, &req);

	assert_int_equal(v, (long)n);
	bx_obuf_init(&out, OUT, sizeof(OUT));
	bx_axon_handle(&AX, &req, &PEER, &out);
	assert_false(out.overflow);
	assert_int_equal(dpt_parse_resp(OUT, out.len, &resp), 0);
	assert_int_equal(resp.total, out.len);
	return resp;
}

static void
expect(const struct dpt_resp *r, int status, const char *msg_prefix)
{
	char v[4096];
	struct bx_json j;
	char m[4096];
	long n;
	int t;

	if (r->status != status) {
		fprintf(stderr, "status %d, want %d: %.*s\n", r->status, status, (int)r->body_len,
		        r->body);
		fail();
	}
	assert_true(dpt_header(r, "content-type", v, sizeof(v)));
	assert_string_equal(v, "application/json");
	assert_true(dpt_header(r, "bt_header_axon_status_code", v, sizeof(v)));
	assert_int_equal(atoi(v), status);
	assert_int_equal(bx_json_parse(&j, r->body, r->body_len, RTOKS, 4096, 8), 0);
	t = bx_json_get(&j, 0, "message", 7);
	assert_true(t >= 0);
	n = bx_json_str_copy(&j, t, m, sizeof(m) - 1);
	assert_true(n >= 0);
	m[n] = 0;
	if (strncmp(m, msg_prefix, strlen(msg_prefix)) != 0) {
		fprintf(stderr, "message \"%s\", want prefix \"%s\"\n", m, msg_prefix);
		fail();
	}
	assert_true(dpt_header(r, "bt_header_axon_status_message", v, sizeof(v)));
	assert_string_equal(v, m);
}

static void
test_echo_success(void **state)
{
	struct dpt_req q;
	struct dpt_resp r;
	struct bx_json j;
	char v[512], axon_nonce[32], msg[512], uuid[64], bh[80], bsig[140];
	int ax, t;
	uint8_t sig[64], d[32];

	(void)state;
	dpt_req_init(&q, &K, "Synapse");
	r = run(&q);
	assert_int_equal(r.status, 200);
	assert_true(dpt_header(&r, "content-type", v, sizeof(v)));
	assert_string_equal(v, "application/json");
	assert_true(dpt_header(&r, "bt_header_axon_status_code", v, sizeof(v)));
	assert_string_equal(v, "200");
	assert_true(dpt_header(&r, "bt_header_axon_status_message", v, sizeof(v)));
	assert_string_equal(v, "Success");
	assert_true(dpt_header(&r, "bt_header_axon_process_time", v, sizeof(v)));
	assert_true(dpt_header(&r, "computed_body_hash", v, sizeof(v)));
	assert_string_equal(v, "a7ffc6f8bf1ed76651c14756a061d662f580ff4de43b49fa82d80a4b80f8434a");
	assert_true(dpt_header(&r, "bt_header_dendrite_hotkey", v, sizeof(v)));
	assert_string_equal(v, K.validator_ss58);
	assert_true(dpt_header(&r, "name", v, sizeof(v)));
	assert_string_equal(v, "Synapse");

	/* body: compact JSON, every field in model order */
	assert_int_equal(bx_json_parse(&j, r.body, r.body_len, RTOKS, 4096, 8), 0);
	assert_memory_equal(r.body,
	                    "{\"name\":\"Synapse\",\"timeout\":12.0,\"total_size\":1234,"
	                    "\"header_size\":0,\"dendrite\":{\"status_code\":null,",
	                    strlen("{\"name\":\"Synapse\",\"timeout\":12.0,\"total_size\":1234,"
	                           "\"header_size\":0,\"dendrite\":{\"status_code\":null,"));
	ax = bx_json_get(&j, 0, "axon", 4);
	assert_true(ax >= 0);
	assert_int_equal(j.toks[0].nb, 7);
	t = bx_json_get(&j, ax, "status_code", 11);
	assert_memory_equal(j.src + j.toks[t].start, "200", 3);
	assert_true(bx_json_str_eq(&j, bx_json_get(&j, ax, "status_message", 14), "Success", 7));
	assert_true(bx_json_str_eq(&j, bx_json_get(&j, ax, "hotkey", 6), K.miner_ss58,
	                           strlen(K.miner_ss58)));
	assert_int_equal(j.toks[bx_json_get(&j, ax, "process_time", 12)].type, BX_J_FLOAT);

	/* axon.signature =
   * sign(f"{axon.nonce}.{dendrite.hotkey}.{axon.hotkey}.{axon.uuid}") */
	t = bx_json_get(&j, ax, "nonce", 5);
	snprintf(axon_nonce, sizeof(axon_nonce), "%.*s", (int)j.toks[t].len,
	         j.src + j.toks[t].start);
	assert_true(bx_json_str_copy(&j, bx_json_get(&j, ax, "uuid", 4), uuid, sizeof(uuid)) == 36);
	uuid[36] = 0;
	snprintf(msg, sizeof(msg), "%s.%s.%s.%s", axon_nonce, K.validator_ss58, K.miner_ss58, uuid);
	assert_true(dpt_header(&r, "bt_header_axon_signature", v, sizeof(v)));
	assert_int_equal(bx_hex_decode(sig, 64, v, strlen(v)), 0);
	assert_int_equal(bx_sr25519_verify(sig, msg, strlen(msg), bx_sr25519_public(K.miner)), 0);
	assert_true(bx_json_str_eq(&j, bx_json_get(&j, ax, "signature", 9), v, strlen(v)));

	/* the body signature binds the exact bytes */
	bx_sha3_256(d, r.body, r.body_len);
	bx_hex_encode(bh, d, 32);
	assert_true(dpt_header(&r, "bt_header_axon_body_hash", v, sizeof(v)));
	assert_string_equal(v, bh);
	assert_true(dpt_header(&r, "bt_header_axon_body_signature", bsig, sizeof(bsig)));
	assert_true(dpt_header(&r, "bt_header_dendrite_nonce", v, sizeof(v)));
	snprintf(msg, sizeof(msg), "bx-axon-body-v1.%s.%s.%s.%s.%s.%s", axon_nonce,
	         K.validator_ss58, v, "5ecbd69c-1cec-11ee-b0dc-e29ce36fec1a", K.miner_ss58, bh);
	assert_int_equal(bx_hex_decode(sig, 64, bsig, strlen(bsig)), 0);
	assert_int_equal(bx_sr25519_verify(sig, msg, strlen(msg), bx_sr25519_public(K.miner)), 0);

	/* the <Bytes>-wrapped signature (polkadot.js signRaw) is accepted too */
	dpt_req_init(&q, &K, "Synapse");
	q.sig_mode = 4;
	r = run(&q);
	assert_int_equal(r.status, 200);
}

/* Hashes computed with CPython 3.11: H(H(str(v1)) + H(str(v2)) + ...), H =
 * sha3_256 hex. */
#define HASH_TEXTS "ac3455c37ab7979777a7597cf550aee713105dedc0112ba58fc2006769425ac4"
#define HASH_GEN1  "45943da9dbf519c4ee9c388bca6f284161234ea3a2ee3af172c73a2f92a37c2b"
#define HASH_GEN2  "18f645395ef287bd34c969424496d38d82c5ae5738709c74f5ab2438869e98da"

static void
test_body_hash_and_unavailable(void **state)
{
	struct dpt_req q;
	struct dpt_resp r;

	(void)state;
	/* texts=["hello","it's",'say "hi"',"naïve"] (the spec's vector) reaches the
   * handler */
	dpt_req_init(&q, &K, "TextEmbedding");
	q.fields_json = "\"texts\": [\"hello\", \"it's\", \"say \\\"hi\\\"\", \"na\\u00efve\"], "
			"\"model\": null, \"embeddings\": null";
	q.body_hash = HASH_TEXTS;
	r = run(&q);
	expect(&r, 503, "Service unavailable: no model loaded for TextEmbedding");
	{
		/* an error to an authenticated request is signed too (body signature) */
		char v[200];

		assert_true(dpt_header(&r, "bt_header_axon_body_signature", v, sizeof(v)));
		assert_true(dpt_header(&r, "bt_header_axon_signature", v, sizeof(v)));
	}

	/* TextGeneration: messages dicts, None, int, float */
	dpt_req_init(&q, &K, "TextGeneration");
	q.fields_json = "\"messages\": [{\"role\": \"user\", \"content\": \"Hi \\u00e9\\n\"}], "
			"\"prompt\": null, \"max_tokens\": 64, \"temperature\": 0.7, \"top_p\": "
			"1.0, "
			"\"seed\": null, \"completion\": null";
	q.body_hash = HASH_GEN1;
	r = run(&q);
	expect(&r, 503, "Service unavailable: no model loaded for TextGeneration");

	/* an int literal in a float field hashes as a float (1 -> "1.0"); absent
   * fields use defaults */
	dpt_req_init(&q, &K, "StreamingTextGeneration");
	q.fields_json = "\"messages\": [], \"prompt\": \"tell me\", \"temperature\": 1, "
			"\"top_p\": 0.95, \"seed\": 42";
	q.body_hash = HASH_GEN2;
	r = run(&q);
	expect(&r, 503, "Service unavailable: no model loaded for StreamingTextGeneration");

	/* a body that does not match its signed hash: 500 "Internal Server Error
   * #<uuid>" */
	dpt_req_init(&q, &K, "TextEmbedding");
	q.fields_json = "\"texts\": [\"hello\"]";
	q.body_hash = HASH_TEXTS;
	r = run(&q);
	expect(&r, 500, "Internal Server Error #");
	assert_int_equal(AX.stats.rejected[BX_DP_R_BODY_HASH], 1);
}

static int
embed_handler(void *arg, struct bx_call *c)
{
	size_t n;
	const char *texts = bx_call_field(c, "texts", &n);

	(void)arg;
	assert_non_null(texts);
	assert_memory_equal(texts, "[\"a\"]", n);
	assert_string_equal(bx_call_synapse(c), "TextEmbedding");
	assert_int_equal(bx_call_set_output(c, "texts", "1", 1), -ENOENT);
	return bx_call_set_output(c, "embeddings", "[[0.5,-1.0]]", 12);
}

static void
test_handler(void **state)
{
	struct dpt_req q;
	struct dpt_resp r;
	char h[65];
	struct bx_json j;
	int t;

	(void)state;
	/* hash of texts=["a"] */
	snprintf(h, sizeof(h), "%s",
	         "e48d7c5b9fa30a3dc0df2e8a6a7a4ad3f9ac9c3bf09b8a1d2f07e4b0ba0f0a2d");
	SH.handlers[1].fn = embed_handler;
	dpt_req_init(&q, &K, "TextEmbedding");
	q.fields_json = "\"texts\": [\"a\"]";
	{
		/* compute the expected hash the SDK way: H(H("['a']")) */
		uint8_t d[32];
		char inner[65];

		bx_sha3_256(d, "['a']", 5);
		bx_hex_encode(inner, d, 32);
		bx_sha3_256(d, inner, 64);
		bx_hex_encode(h, d, 32);
	}
	q.body_hash = h;
	r = run(&q);
	SH.handlers[1].fn = NULL;
	assert_int_equal(r.status, 200);
	assert_int_equal(bx_json_parse(&j, r.body, r.body_len, RTOKS, 4096, 8), 0);
	t = bx_json_get(&j, 0, "embeddings", 10);
	assert_true(t >= 0);
	assert_memory_equal(j.src + j.toks[t].start, "[[0.5,-1.0]]", 12);
	t = bx_json_get(&j, 0, "model", 5);
	assert_int_equal(j.toks[t].type, BX_J_NULL);
	/* fields come after the base fields, in declaration order */
	assert_non_null(strstr(r.body,
	                       "\"computed_body_hash\":\"\",\"texts\":[\"a\"],\"model\":null,"
	                       "\"embeddings\":[[0.5,-1.0]]}"));
}

static int
stream_handler(void *arg, struct bx_call *c)
{
	(void)arg;
	return bx_call_set_output(c, "completion", "\"hello\\nworld\"", 14);
}

/* A streaming synapse answers text/event-stream, chunked, with the bt headers in the head. */
static void
test_streaming(void **state)
{
	struct dpt_req q;
	struct dpt_resp r;
	char v[128];

	(void)state;
	SH.handlers[3].fn = stream_handler;
	dpt_req_init(&q, &K, "StreamingTextGeneration");
	q.fields_json = "\"messages\": [], \"prompt\": \"tell me\", \"temperature\": 1, "
			"\"top_p\": 0.95, \"seed\": 42";
	q.body_hash = HASH_GEN2;
	r = run(&q);
	SH.handlers[3].fn = NULL;
	assert_int_equal(r.status, 200);
	assert_true(dpt_header(&r, "content-type", v, sizeof(v)));
	assert_string_equal(v, "text/event-stream");
	assert_true(dpt_header(&r, "transfer-encoding", v, sizeof(v)));
	assert_string_equal(v, "chunked");
	assert_true(dpt_header(&r, "bt_header_axon_status_code", v, sizeof(v)));
	assert_string_equal(v, "200");
	assert_int_equal(r.body_len, strlen("b\r\nhello\nworld\r\n"));
	assert_memory_equal(r.body, "b\r\nhello\nworld\r\n", r.body_len);
}

static void
test_rejections(void **state)
{
	struct dpt_req q;
	struct dpt_resp r;
	char line[256];

	(void)state;
	/* unknown synapse */
	dpt_req_init(&q, &K, "Nope");
	r = run(&q);
	expect(&r, 404,
	       "Synapse name 'Nope' not found. Available synapses ['Synapse', "
	       "'TextEmbedding', "
	       "'TextGeneration', 'StreamingTextGeneration']");

	/* bad signature */
	dpt_req_init(&q, &K, "Synapse");
	q.sig_mode = 1;
	r = run(&q);
	expect(&r, 401, "Not Verified with error: Signature mismatch with ");
	assert_int_equal(AX.stats.rejected[BX_DP_R_BAD_SIGNATURE], 1);
	{
		/* no signature spent on unauthenticated input */
		char v[200];

		assert_false(dpt_header(&r, "bt_header_axon_body_signature", v, sizeof(v)));
		assert_false(dpt_header(&r, "bt_header_axon_signature", v, sizeof(v)));
	}

	/* empty and missing signature: rejected (stricter than SDK 9.3-10.4.1) */
	dpt_req_init(&q, &K, "Synapse");
	q.sig_mode = 2;
	r = run(&q);
	expect(&r, 401, "Not Verified with error: Missing signature");
	dpt_req_init(&q, &K, "Synapse");
	q.sig_mode = 3;
	r = run(&q);
	expect(&r, 401, "Not Verified with error: Missing signature");
	assert_int_equal(AX.stats.rejected[BX_DP_R_NO_SIGNATURE], 2);

	/* stale nonce: 4 s + timeout (12 s) window */
	dpt_req_init(&q, &K, "Synapse");
	q.nonce = (int64_t)bx_wall_ns() - 30000000000LL;
	r = run(&q);
	expect(&r, 401,
	       "Not Verified with error: Nonce is too old: acceptable delta is 16.00 "
	       "seconds but "
	       "request was 30.");
	/* the most negative nonce: stale, and no int64 overflow on the way */
	dpt_req_init(&q, &K, "Synapse");
	q.nonce = -INT64_MAX;
	r = run(&q);
	expect(&r, 401, "Not Verified with error: Nonce is too old: acceptable delta is 16.00");
	/* far-future nonce */
	dpt_req_init(&q, &K, "Synapse");
	q.nonce = (int64_t)bx_wall_ns() + 3600000000000LL;
	r = run(&q);
	expect(&r, 401, "Not Verified with error: Nonce is too far in the future");

	/* replay: the same (hotkey, uuid, nonce) twice */
	dpt_req_init(&q, &K, "Synapse");
	q.nonce = (int64_t)bx_wall_ns();
	r = run(&q);
	assert_int_equal(r.status, 200);
	r = run(&q);
	expect(&r, 401,
	       "Not Verified with error: Nonce is too old, a newer one was last "
	       "processed");
	assert_int_equal(AX.stats.rejected[BX_DP_R_REPLAY], 1);
	/* a reordered (older but fresh) nonce from the same dendrite is fine */
	q.nonce -= 1000;
	r = run(&q);
	assert_int_equal(r.status, 200);

	/* signed for another axon */
	dpt_req_init(&q, &K, "Synapse");
	q.axon_hotkey = K.stranger_ss58;
	r = run(&q);
	expect(&r, 401, "Not Verified with error: Signature mismatch with ");
	assert_int_equal(AX.stats.rejected[BX_DP_R_AXON_MISMATCH], 1);

	/* unregistered caller, no permit */
	dpt_req_init(&q, &K, "Synapse");
	q.signer = K.stranger;
	q.signer_ss58 = K.stranger_ss58;
	r = run(&q);
	expect(&r, 403, "Forbidden. Key is blacklisted: Unrecognized hotkey.");
	dpt_req_init(&q, &K, "Synapse");
	q.signer = K.nopermit;
	q.signer_ss58 = K.nopermit_ss58;
	r = run(&q);
	expect(&r, 403, "Forbidden. Key is blacklisted: Non-validator hotkey.");

	/* missing nonce, malformed nonce header */
	dpt_req_init(&q, &K, "Synapse");
	q.no_nonce = true;
	r = run(&q);
	expect(&r, 401, "Not Verified with error: Missing Nonce");
	dpt_req_init(&q, &K, "Synapse");
	snprintf(line, sizeof(line), "bt_header_dendrite_version: x\r\n");
	q.extra_headers = line;
	/* the first of two identical names wins, so put the bad one in a fresh
   * request */
	q.version = 0;
	r = run(&q);
	assert_int_equal(r.status, 200);
	dpt_req_init(&q, &K, "Synapse");
	q.extra_headers = "timeout: soon\r\n";
	{
		/* a request whose only timeout header does not parse */
		static char in[8192];
		struct bx_http_req req;
		struct bx_obuf out;
		size_t n = dpt_build(&q, in, sizeof(in));
		char *p = strstr(in, "timeout: 12.0");

		memcpy(p, "timeout: soon", 13);
		assert_int_equal(bx_http_parse_request(in, n, &SH.lim, &req), (long)n);
		bx_obuf_init(&out, OUT, sizeof(OUT));
		bx_axon_handle(&AX, &req, &PEER, &out);
		assert_int_equal(dpt_parse_resp(OUT, out.len, &r), 0);
		expect(&r, 400, "Improperly formatted request. Could not parse headers");
	}

	/* an absurdly long bt header value (responses would echo it) */
	{
		static char longuuid[301];

		memset(longuuid, 'a', 300);
		dpt_req_init(&q, &K, "Synapse");
		q.uuid = longuuid;
		r = run(&q);
		expect(&r, 400,
		       "Improperly formatted request. Could not parse headers "
		       "(bt_header_dendrite_uuid)");
	}

	/* malformed JSON body: FastAPI's 422 {"detail": ...} */
	dpt_req_init(&q, &K, "Synapse");
	q.raw_body = "{\"name\": \"Synapse\",";
	r = run(&q);
	assert_int_equal(r.status, 422);
	assert_non_null(strstr(r.body, "\"detail\""));
	/* a required field missing: 422 */
	dpt_req_init(&q, &K, "TextEmbedding");
	q.fields_json = "\"model\": null";
	r = run(&q);
	assert_int_equal(r.status, 422);
	assert_non_null(strstr(r.body, "\"missing\""));
	/* wrong type: 422 */
	dpt_req_init(&q, &K, "TextEmbedding");
	q.fields_json = "\"texts\": [1]";
	r = run(&q);
	assert_int_equal(r.status, 422);

	/* legacy (pre-7.2) dendrites: no window, replay cache only */
	dpt_req_init(&q, &K, "Synapse");
	q.version = 724;
	q.nonce = 123456789;
	r = run(&q);
	assert_int_equal(r.status, 200);
	r = run(&q);
	assert_int_equal(r.status, 401);
}

static void
test_rate_limit(void **state)
{
	struct dpt_req q;
	struct dpt_resp r;
	struct bx_tb_table saved = AX.tb_hotkey;
	int ok = 0, limited = 0;

	(void)state;
	assert_int_equal(bx_tb_init(&AX.tb_hotkey, 16, 0.001, 3), 0);
	for (int i = 0; i < 6; i++) {
		dpt_req_init(&q, &K, "Synapse");
		r = run(&q);
		if (r.status == 200) {
			ok++;
		} else if (r.status == 429) {
			limited++;
		}
	}
	bx_tb_fini(&AX.tb_hotkey);
	AX.tb_hotkey = saved;
	assert_int_equal(ok, 3);
	assert_int_equal(limited, 3);
	assert_int_equal(AX.stats.rejected[BX_DP_R_RATE_HOTKEY], 3);
}

static void
test_metagraph(void **state)
{
	struct bx_metagraph *mg;
	struct bx_errbuf eb;
	const struct bx_mg_neuron *n;
	char buf[4096];
	size_t len;

	(void)state;
	len = dpt_metagraph_json(&K, buf, sizeof(buf));
	assert_int_equal(bx_metagraph_parse(buf, len, "t", &mg, &eb), 0);
	assert_int_equal(bx_metagraph_size(mg), 3);
	assert_int_equal(bx_metagraph_block(mg), 4242);
	n = bx_metagraph_find(mg, K.validator_ss58, strlen(K.validator_ss58));
	assert_non_null(n);
	assert_true(n->validator_permit);
	assert_true(n->stake == 5000.0);
	assert_memory_equal(n->hotkey_pub, bx_sr25519_public(K.validator), 32);
	assert_null(bx_metagraph_find(mg, K.stranger_ss58, strlen(K.stranger_ss58)));
	bx_metagraph_free(mg);

	assert_int_equal(bx_metagraph_parse("[{\"uid\": 0, \"hotkey\": \"5abc\"}]", 31, "bad.json",
	                                    &mg, &eb),
	                 -EINVAL);
	assert_non_null(strstr(eb.msg, "bad.json"));
	snprintf(buf, sizeof(buf),
	         "[{\"uid\": 0, \"hotkey\": \"%s\"}, {\"uid\": 1, \"hotkey\": \"%s\"}]",
	         K.miner_ss58, K.miner_ss58);
	assert_int_equal(bx_metagraph_parse(buf, strlen(buf), "dup", &mg, &eb), -EINVAL);
	assert_non_null(strstr(eb.msg, "twice"));
}

static void
test_replay_cache(void **state)
{
	struct bx_replay *rp;

	(void)state;
	assert_int_equal(bx_replay_create(64, &rp), 0);
	assert_false(bx_replay_seen(rp, 12345u << 24, 1000));
	assert_int_equal(bx_replay_insert(rp, 12345u << 24, 1000, 20), 0);
	assert_true(bx_replay_seen(rp, 12345u << 24, 1010));
	assert_int_equal(bx_replay_insert(rp, 12345u << 24, 1010, 20), -EEXIST);
	/* expired entries are forgotten and their slots reused */
	assert_false(bx_replay_seen(rp, 12345u << 24, 1021));
	assert_int_equal(bx_replay_insert(rp, 12345u << 24, 1021, 20), 0);
	/* bounded: a full probe window says no room instead of growing */
	{
		int full = 0;

		for (uint64_t k = 1; k < 200; k++) {
			if (bx_replay_insert(rp, (k << 24) | 5, 2000, 20) == -ENOSPC) {
				full++;
			}
		}
		assert_true(full > 0);
	}
	bx_replay_destroy(rp);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_echo_success),
		cmocka_unit_test(test_body_hash_and_unavailable),
		cmocka_unit_test(test_handler),
		cmocka_unit_test(test_streaming),
		cmocka_unit_test(test_rejections),
		cmocka_unit_test(test_rate_limit),
		cmocka_unit_test(test_metagraph),
		cmocka_unit_test(test_replay_cache),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
