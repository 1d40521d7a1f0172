/* HTTP/1.1 parser and writer: every prefix, every error class, the writer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "bx_test.h"
#include "http1.h"

/*
 * Parse every prefix of req (each copied to end at a guard page): each must
 * say incomplete or give exactly the full input's answer. Returns that answer.
 */
static long
parse_all_prefixes(const char *req, size_t len, const struct bx_http_limits *lim,
                   struct bx_http_req *out)
{
	long final;
	struct bx_http_req r;
	char *g = bx_guard_copy(req, len);

	assert_non_null(g);
	final = bx_http_parse_request(g, len, lim, &r);
	bx_guard_free(g, len);
	/* views in *out must outlive the guard copy: parse the caller's bytes again
   */
	assert_int_equal(bx_http_parse_request(req, len, lim, out), final);
	for (size_t n = 0; n < len; n++) {
		long v;

		g = bx_guard_copy(req, n);
		assert_non_null(g);
		v = bx_http_parse_request(g, n, lim, &r);
		bx_guard_free(g, n);
		if (v != BX_HTTP_INCOMPLETE && v != final) {
			fprintf(stderr, "prefix %zu of %zu: %ld, full: %ld\n", n, len, v, final);
			fail();
		}
		if (v > 0) {
			assert_int_equal(r.total_len, out->total_len);
		}
	}
	return final;
}

static bool
str_is(struct bx_http_str s, const char *lit)
{
	return s.len == strlen(lit) && memcmp(s.p, lit, s.len) == 0;
}

static void
test_valid(void **state)
{
	struct bx_http_limits lim;
	struct bx_http_req r;
	const struct bx_http_hdr *h;
	static const char post[] = "POST /Synapse?x=1 HTTP/1.1\r\n"
				   "Host: 127.0.0.1:8091\r\n"
				   "Accept: */*\r\n"
				   "Content-Type: application/json\r\n"
				   "bt_header_dendrite_nonce:   1742428800123456789  \r\n"
				   "Content-Length: 7\r\n"
				   "\r\n"
				   "{\"a\":1}";
	static const char get[] = "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n";
	static const char get_close[] = "GET /x HTTP/1.1\r\nHost: h\r\nconnection: close\r\n\r\n";
	static const char empty_val[] = "GET /x HTTP/1.1\r\nHost: h\r\nX-Empty:\r\n\r\n";
	long n;

	(void)state;
	bx_http_limits_default(&lim);
	n = parse_all_prefixes(post, sizeof(post) - 1, &lim, &r);
	assert_int_equal(n, sizeof(post) - 1);
	assert_true(str_is(r.method, "POST"));
	assert_true(str_is(r.target, "/Synapse?x=1"));
	assert_true(str_is(r.path, "/Synapse"));
	assert_int_equal(r.minor_version, 1);
	assert_true(r.keep_alive);
	assert_int_equal(r.nb_headers, 5);
	assert_int_equal(r.content_length, 7);
	assert_memory_equal(r.body, "{\"a\":1}", 7);
	h = bx_http_find(&r, "BT_HEADER_DENDRITE_NONCE", 24);
	assert_non_null(h);
	assert_true(str_is(h->value, "1742428800123456789"));
	assert_null(bx_http_find(&r, "bt_header_dendrite_hotkey", 25));

	n = parse_all_prefixes(get, sizeof(get) - 1, &lim, &r);
	assert_int_equal(n, sizeof(get) - 1);
	assert_int_equal(r.minor_version, 0);
	assert_true(r.keep_alive);
	n = parse_all_prefixes(get_close, sizeof(get_close) - 1, &lim, &r);
	assert_int_equal(n, sizeof(get_close) - 1);
	assert_false(r.keep_alive);
	n = parse_all_prefixes(empty_val, sizeof(empty_val) - 1, &lim, &r);
	assert_int_equal(n, sizeof(empty_val) - 1);
	assert_int_equal(r.headers[1].value.len, 0);
}

static void
test_pipelined(void **state)
{
	static const char two[] = "POST /A HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc"
				  "GET /B HTTP/1.1\r\nHost: h\r\n\r\n";
	struct bx_http_limits lim;
	struct bx_http_req r;
	long n, m;

	(void)state;
	bx_http_limits_default(&lim);
	n = parse_all_prefixes(two, sizeof(two) - 1, &lim, &r);
	assert_true(n > 0 && (size_t)n < sizeof(two) - 1);
	assert_true(str_is(r.path, "/A"));
	m = parse_all_prefixes(two + n, sizeof(two) - 1 - (size_t)n, &lim, &r);
	assert_int_equal(n + m, sizeof(two) - 1);
	assert_true(str_is(r.path, "/B"));
}

struct bad_case {
	const char *req;
	long code;
};

static void
test_malformed(void **state)
{
	static const struct bad_case cases[] = {
		{ "GET  / HTTP/1.1\r\nHost: h\r\n\r\n", -400 },
		{ "GET / HTTP/1.1\nHost: h\r\n\r\n", -400 },    /* bare LF */
		{ "GET / HTTP/1.1\rXHost: h\r\n\r\n", -400 },   /* bare CR */
		{ "G(T / HTTP/1.1\r\nHost: h\r\n\r\n", -400 },  /* method not a token */
		{ "GET x HTTP/1.1\r\nHost: h\r\n\r\n", -400 },  /* not origin-form */
		{ "GET / HTTP/1.1 \r\nHost: h\r\n\r\n", -400 }, /* trailing space */
		{ "GET / HTTX/1.1\r\nHost: h\r\n\r\n", -400 },
		{ "GET / HTTP/2.0\r\nHost: h\r\n\r\n", -505 },
		{ "GET / HTTP/1.1\r\n\r\n", -400 },                       /* no Host */
		{ "GET / HTTP/1.1\r\nHost: h\r\nHost: i\r\n\r\n", -400 }, /* two Hosts */
		{ "GET / HTTP/1.1\r\nHost: h\r\nBad Name: x\r\n\r\n", -400 },
		{ "GET / HTTP/1.1\r\nHost: h\r\n: x\r\n\r\n", -400 },
		{ "GET / HTTP/1.1\r\nHost: h\r\n folded\r\n\r\n", -400 },
		{ "GET / HTTP/1.1\r\nHost: h\r\nX: a\001b\r\n\r\n", -400 },
		{ "GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 1x\r\n\r\n", -400 },
		{ "GET / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n", -400 },
		{ "GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: "
		  "2\r\n\r\nab",
		  -400 },
		{ "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n", -501 },
		{ "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: "
		  "chunked\r\nContent-Length: "
		  "1\r\n\r\n",
		  -400 },
		{ "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2000\r\n\r\n", -413 },
		{ "GET / HTTP/1.1\r\nHost: h\r\n\rX", -400 },
	};
	struct bx_http_limits lim;
	struct bx_http_req r;

	(void)state;
	bx_http_limits_default(&lim);
	lim.max_body = 1000;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		long v = parse_all_prefixes(cases[i].req, strlen(cases[i].req), &lim, &r);

		if (v != cases[i].code) {
			fprintf(stderr, "case %zu: got %ld want %ld\n", i, v, cases[i].code);
			fail();
		}
	}
}

static void
test_limits(void **state)
{
	struct bx_http_limits lim;
	struct bx_http_req r;
	char buf[4096];
	size_t n;

	(void)state;
	bx_http_limits_default(&lim);
	lim.max_request_line = 64;
	lim.max_header_line = 100;
	lim.max_head = 400;
	lim.max_headers = 4;

	/* 414: request line too long */
	n = (size_t)snprintf(buf, sizeof(buf), "GET /%070d HTTP/1.1\r\nHost: h\r\n\r\n", 0);
	assert_int_equal(parse_all_prefixes(buf, n, &lim, &r), -414);
	/* a request line exactly at the limit passes */
	n = (size_t)snprintf(buf, sizeof(buf), "GET /%050d HTTP/1.1\r\nHost: h\r\n\r\n", 0);
	assert_int_equal(n - 13, 64); /* request line is 64 bytes */
	assert_int_equal(parse_all_prefixes(buf, n, &lim, &r), (long)n);
	/* 431: one header line too long */
	n = (size_t)snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nHost: h\r\nX: %0120d\r\n\r\n", 0);
	assert_int_equal(parse_all_prefixes(buf, n, &lim, &r), -431);
	/* 431: too many headers */
	n = (size_t)snprintf(buf, sizeof(buf),
	                     "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n");
	assert_int_equal(parse_all_prefixes(buf, n, &lim, &r), -431);
	/* 431: whole head too large */
	n = (size_t)snprintf(buf, sizeof(buf),
	                     "GET / HTTP/1.1\r\nHost: h\r\nA: %090d\r\nB: %090d\r\n"
	                     "C: %090d\r\nD: %090d\r\n\r\n",
	                     0, 0, 0, 0);
	lim.max_headers = 10;
	assert_int_equal(parse_all_prefixes(buf, n, &lim, &r), -431);
	lim.max_head = 4000;
	assert_int_equal(parse_all_prefixes(buf, n, &lim, &r), (long)n);
}

static void
test_writer(void **state)
{
	char mem[512];
	struct bx_obuf b;
	static const char want[] = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
				   "content-length: 2\r\nconnection: keep-alive\r\n\r\n{}";
	static const char want_chunked[] = "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n"
					   "connection: close\r\n\r\n5\r\nhello\r\n10\r\n"
					   "0123456789abcdef\r\n0\r\n\r\n";
	struct bx_http_req r;
	struct bx_http_limits lim;

	(void)state;
	bx_obuf_init(&b, mem, sizeof(mem));
	bx_http_status_line(&b, 200);
	bx_http_header(&b, "content-type", "application/json", 16);
	bx_http_end_head(&b, 2, true);
	bx_obuf_put(&b, "{}", 2);
	assert_false(b.overflow);
	assert_int_equal(b.len, sizeof(want) - 1);
	assert_memory_equal(mem, want, b.len);

	bx_obuf_init(&b, mem, sizeof(mem));
	bx_http_status_line(&b, 200);
	bx_http_end_head_chunked(&b, false);
	bx_http_chunk(&b, "hello", 5);
	bx_http_chunk(&b, "", 0);
	bx_http_chunk(&b, "0123456789abcdef", 16);
	bx_http_chunk_end(&b);
	assert_int_equal(b.len, sizeof(want_chunked) - 1);
	assert_memory_equal(mem, want_chunked, b.len);

	/* overflow is sticky and never writes past cap */
	bx_obuf_init(&b, mem, 8);
	bx_http_status_line(&b, 404);
	assert_true(b.overflow);
	assert_true(b.len <= 8);

	/* 4xx status lines carry the reason */
	bx_obuf_init(&b, mem, sizeof(mem));
	bx_http_status_line(&b, 431);
	assert_memory_equal(mem, "HTTP/1.1 431 Request Header Fields Too Large\r\n", b.len);
	(void)r;
	(void)lim;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid),     cmocka_unit_test(test_pipelined),
		cmocka_unit_test(test_malformed), cmocka_unit_test(test_limits),
		cmocka_unit_test(test_writer),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
