/*
 * Covers: tools/bx-validator/load.c and http_resp.c against a real axon-like
 * responder on 127.0.0.1 (responder.c, which verifies every signature):
 * closed loop with keep-alive, open loop at the requested rate, latency
 * from the intended time when the miner stalls (coordinated omission),
 * timeouts, bad response signatures, refused connections; and the response
 * parser on every prefix of Content-Length and chunked answers.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <bx/crypto.h>

#include "bx_test.h"
#include "http_resp.h"
#include "load.h"
#include "responder.h"
#include "score.h"

static struct bx_dd_identity IDS[2];

static void
setup_conf(struct bx_ld_conf *c, struct bx_dd_template *t, struct responder *r)
{
	struct bx_dd_payload p = { .kind = BX_DD_ECHO };
	struct bx_errbuf eb;

	bx_ld_conf_default(c);
	c->port = r->port;
	memcpy(c->axon_pub, bx_sr25519_public(r->kp), 32);
	c->have_axon_pub = true;
	assert_int_equal(
		bx_dd_template_init(t, &p, "127.0.0.1", r->port, r->ss58, "127.0.0.1", 12.0, &eb),
		0);
	c->tmpl[BX_DD_ECHO] = t;
	c->mix[BX_DD_ECHO] = 1;
	c->ids = IDS;
	c->nb_ids = 2;
}

static uint64_t
count_status(const struct bx_ld_result *res, uint16_t st)
{
	uint64_t n = 0, i;

	for (i = 0; i < res->nb_recs; i++) {
		n += res->recs[i].status == st;
	}
	return n;
}

static void
test_closed_loop_keepalive(void **state)
{
	struct responder r = { 0 };
	struct bx_ld_conf c;
	struct bx_ld_result res;
	struct bx_dd_template t;
	struct bx_errbuf eb;

	(void)state;
	assert_int_equal(responder_start(&r, 9), 0);
	setup_conf(&c, &t, &r);
	c.connections = 4;
	c.duration_s = 0.5;
	assert_int_equal(bx_ld_run(&c, &res, &eb), 0);
	assert_true(res.nb_recs > 50);
	assert_int_equal(res.nb_recs, res.sent);
	assert_int_equal(count_status(&res, 200), res.nb_recs);
	assert_int_equal(r.rejected, 0);
	assert_int_equal(r.verified, res.sent);
	assert_int_equal(res.sig_ok, res.nb_recs);
	assert_int_equal(res.sig_bad, 0);
	assert_true(r.accepted_conns <= 4); /* keep-alive: one connection each */
	bx_ld_result_fini(&res);
	bx_dd_template_fini(&t);
	responder_stop(&r);
}

static void
test_open_loop_rate(void **state)
{
	struct responder r = { 0 };
	struct bx_ld_conf c;
	struct bx_ld_result res;
	struct bx_dd_template t;
	struct bx_errbuf eb;
	uint64_t i, in_window = 0;

	(void)state;
	assert_int_equal(responder_start(&r, 10), 0);
	setup_conf(&c, &t, &r);
	c.rate = 1000;
	c.duration_s = 1.0;
	c.connections = 8;
	assert_int_equal(bx_ld_run(&c, &res, &eb), 0);
	/* A constant schedule: exactly rate x duration requests, 1 ms apart. */
	assert_int_equal(res.sent, 1000);
	assert_int_equal(res.nb_recs, 1000);
	for (i = 0; i < res.nb_recs; i++) {
		in_window += res.recs[i].t_ns < 1000000000ull;
		assert_int_equal(res.recs[i].t_ns % 1000000, 0);
	}
	assert_int_equal(in_window, 1000);
	assert_int_equal(count_status(&res, 200), 1000);
	bx_ld_result_fini(&res);

	/* Two threads interleave into one even schedule: 1000 distinct 1 ms slots. */
	c.threads = 2;
	assert_int_equal(bx_ld_run(&c, &res, &eb), 0);
	assert_int_equal(res.sent, 1000);
	{
		static uint8_t seen[1000];

		memset(seen, 0, sizeof(seen));
		for (i = 0; i < res.nb_recs; i++) {
			uint64_t slot = res.recs[i].t_ns / 1000000;

			assert_int_equal(res.recs[i].t_ns % 1000000, 0);
			assert_true(slot < 1000 && !seen[slot]);
			seen[slot] = 1;
		}
	}
	bx_ld_result_fini(&res);
	c.threads = 1;

	/* Poisson arrivals at 2000/s for 1 s: 2000 +- 4 sigma. */
	c.rate = 2000;
	c.arrival = BX_ARRIVAL_POISSON;
	c.seed = 5;
	assert_int_equal(bx_ld_run(&c, &res, &eb), 0);
	assert_true(fabs((double)res.sent - 2000) < 4 * sqrt(2000));
	assert_int_equal(count_status(&res, 200), res.nb_recs);
	bx_ld_result_fini(&res);
	bx_dd_template_fini(&t);
	responder_stop(&r);
}

static uint64_t
slow_count(const struct bx_ld_result *res, uint64_t ms)
{
	uint64_t n = 0, i;

	for (i = 0; i < res->nb_recs; i++) {
		n += res->recs[i].lat_us10 >= ms * 10000;
	}
	return n;
}

/* One 300 ms stall: open loop charges every request it delayed, closed loop only one. */
static void
test_coordinated_omission(void **state)
{
	struct responder r = { 0 };
	struct bx_ld_conf c;
	struct bx_ld_result res;
	struct bx_dd_template t;
	struct bx_errbuf eb;
	uint64_t slow;

	(void)state;
	r.trivial = true; /* fast answers even under sanitizers: only the stall matters */
	assert_int_equal(responder_start(&r, 11), 0);
	setup_conf(&c, &t, &r);
	c.verify_responses = false;
	c.connections = 1;
	c.rate = 500;
	c.duration_s = 1.0;
	r.stall_at = 100;
	r.stall_ms = 300;
	assert_int_equal(bx_ld_run(&c, &res, &eb), 0);
	slow = slow_count(&res, 100);
	print_message("requests >= 100 ms behind their intended time: %" PRIu64 "\n",
	              (uint64_t)slow);
	/* Requests intended in the first 200 ms of the stall wait >= 100 ms: ~100 of them. */
	assert_true(slow >= 80 && slow <= 160);
	bx_ld_result_fini(&res);

	r.requests = 0;
	c.rate = 0;
	c.duration_s = 0.6;
	assert_int_equal(bx_ld_run(&c, &res, &eb), 0);
	assert_int_equal(slow_count(&res, 100), 1);
	bx_ld_result_fini(&res);
	bx_dd_template_fini(&t);
	responder_stop(&r);
}

static void
test_timeouts_bad_sigs_refused(void **state)
{
	struct responder r = { 0 };
	struct bx_ld_conf c;
	struct bx_ld_result res;
	struct bx_dd_template t;
	struct bx_errbuf eb;

	(void)state;
	assert_int_equal(responder_start(&r, 12), 0);
	setup_conf(&c, &t, &r);
	c.connections = 2;
	c.duration_s = 0.3;
	c.timeout_s = 0.05;
	r.delay_us = 200000;
	assert_int_equal(bx_ld_run(&c, &res, &eb), 0);
	assert_true(res.nb_recs >= 2);
	assert_int_equal(count_status(&res, BX_LD_ST_TIMEOUT), res.nb_recs);
	bx_ld_result_fini(&res);

	r.delay_us = 0;
	r.bad_sig = true;
	c.timeout_s = 2;
	assert_int_equal(bx_ld_run(&c, &res, &eb), 0);
	assert_true(res.nb_recs > 10);
	assert_int_equal(res.sig_bad, res.nb_recs);
	assert_int_equal(res.sig_ok, 0);
	bx_ld_result_fini(&res);
	bx_dd_template_fini(&t);
	responder_stop(&r);

	/* Nobody listening any more: the dendrite's 503. */
	assert_int_equal(bx_ld_run(&c, &res, &eb), 0);
	assert_true(res.nb_recs > 0);
	assert_int_equal(count_status(&res, BX_LD_ST_CONNECT), res.nb_recs);
	bx_ld_result_fini(&res);
	c.connections = 0;
	assert_int_equal(bx_ld_run(&c, &res, &eb), -EINVAL);
}

static void
test_streaming(void **state)
{
	/* Three chunks of five words: tokens are chunks (bxd sends one per decode step). */
	struct responder r = { .stream = "The cat\nsat on\nmats\n", .token_delay_us = 6000 };
	struct bx_dd_payload p = {
		.kind = BX_DD_STREAM, .prompt = "Hi", .max_tokens = 5, .top_p = 1.0, .seed = -1
	};
	struct bx_scorer sc = { .ref_completion = "The cat sat on the mat" };
	struct bx_dd_template t, ts;
	struct bx_ld_conf c;
	struct bx_ld_result res;
	struct bx_errbuf eb;
	uint64_t i;

	(void)state;
	assert_int_equal(responder_start(&r, 13), 0);
	setup_conf(&c, &t, &r);
	assert_int_equal(
		bx_dd_template_init(&ts, &p, "127.0.0.1", r.port, r.ss58, "127.0.0.1", 12.0, &eb),
		0);
	c.tmpl[BX_DD_ECHO] = NULL;
	c.tmpl[BX_DD_STREAM] = &ts;
	c.mix[BX_DD_STREAM] = 1;
	c.connections = 2;
	c.duration_s = 0.3;
	c.score = bx_scorer_fn;
	c.score_arg = &sc;
	assert_int_equal(bx_ld_run(&c, &res, &eb), 0);
	assert_true(res.nb_recs >= 4);
	for (i = 0; i < res.nb_recs; i++) {
		const struct bx_ld_rec *q = &res.recs[i];

		assert_int_equal(q->status, 200);
		assert_true(q->flags & BX_LD_F_STREAM);
		assert_int_equal(q->tokens, 3);
		/*
		 * The head comes at once, the first chunk after one delay: time to first
		 * token is the first chunk's; the whole stream takes three delays.
		 */
		assert_true(q->ttfb_us10 >= 55000 && q->lat_us10 >= 170000);
		assert_true(q->ttfb_us10 + 110000 <= q->lat_us10);
		assert_true(fabs(q->score - 4.0 / 6.0) < 1e-6); /* "The cat sat on" of 6 */
	}
	bx_ld_result_fini(&res);
	bx_dd_template_fini(&ts);
	bx_dd_template_fini(&t);
	responder_stop(&r);
}

static void
every_prefix(const char *wire, int status, const char *body)
{
	size_t n = strlen(wire), k;
	struct bx_resp rp;
	char *buf;
	long ret;

	/* Each prefix ends at a PROT_NONE page: reading past it crashes the test. */
	for (k = 0; k < n; k++) {
		buf = bx_guard_copy(wire, k);
		assert_non_null(buf);
		assert_int_equal(bx_resp_parse(buf, k, false, &rp), -EAGAIN);
		bx_guard_free(buf, k);
	}
	buf = bx_guard_copy(wire, n);
	assert_non_null(buf);
	ret = bx_resp_parse(buf, n, false, &rp);
	assert_int_equal(ret, (long)n);
	assert_int_equal(rp.status, status);
	assert_int_equal(rp.body_len, strlen(body));
	assert_memory_equal(rp.body, body, rp.body_len);
	bx_guard_free(buf, n);
}

static void
test_response_parser(void **state)
{
	struct bx_resp rp;
	char bad[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n";
	char noline[] = "HTTX/1.1 200 OK\r\n\r\n";
	char eof[] = "HTTP/1.1 200 OK\r\n\r\nuntil close";
	size_t n;

	(void)state;
	every_prefix("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
	             "bt_header_axon_status_code: 200\r\n\r\n{}",
	             200, "{}");
	every_prefix("HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
	             "transfer-encoding: chunked\r\n\r\n5\r\nhello\r\n6;x=1\r\n world\r\n0\r\n\r\n",
	             200, "hello world");
	every_prefix("HTTP/1.1 401 Unauthorized\r\ncontent-length: 0\r\n\r\n", 401, "");
	{
		char two[] = "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n"
			     "6;x=1\r\n world\r\n0\r\n\r\n";

		assert_int_equal(bx_resp_parse(two, strlen(two), false, &rp), (long)strlen(two));
		assert_int_equal(rp.nb_chunks, 2);
	}
	/* A stream's first token: a whole chunk with data after the head. */
	assert_false(bx_resp_first_chunk("", 0));
	assert_false(bx_resp_first_chunk("5\r\nhel", 6));
	assert_false(bx_resp_first_chunk("5\r\nhello\r", 9));
	assert_true(bx_resp_first_chunk("5\r\nhello\r\n", 10));
	assert_true(bx_resp_first_chunk("5;x=1\r\nhello\r\n", 14));
	assert_false(bx_resp_first_chunk("0\r\n\r\n", 5));
	assert_false(bx_resp_first_chunk("zz\r\n", 4));
	assert_int_equal(bx_resp_parse(bad, strlen(bad), false, &rp), -EBADMSG);
	assert_int_equal(bx_resp_parse(noline, strlen(noline), false, &rp), -EBADMSG);
	assert_int_equal(bx_resp_parse(eof, strlen(eof), false, &rp), -EAGAIN);
	assert_int_equal(bx_resp_parse(eof, strlen(eof), true, &rp), (long)strlen(eof));
	assert_false(rp.keep_alive);
	assert_non_null(bx_resp_header(&rp, "x", &n) == NULL ? "" : NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_response_parser),
		cmocka_unit_test(test_closed_loop_keepalive),
		cmocka_unit_test(test_open_loop_rate),
		cmocka_unit_test(test_coordinated_omission),
		cmocka_unit_test(test_timeouts_bad_sigs_refused),
		cmocka_unit_test(test_streaming),
	};
	uint8_t seed[32];
	int ret, i;

	if (bx_crypto_init() < 0) {
		return 1;
	}
	for (i = 0; i < 2; i++) {
		memset(seed, 0x40 + i, sizeof(seed));
		if (bx_dd_identity_from_seed(&IDS[i], seed) < 0) {
			return 1;
		}
	}
	ret = cmocka_run_group_tests(tests, NULL, NULL);
	for (i = 0; i < 2; i++) {
		bx_dd_identity_fini(&IDS[i]);
	}
	return ret;
}
