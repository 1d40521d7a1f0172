/*
 * Covers: streamed answers (bx_ticket_stream) on the io_uring port over
 * loopback. A producer thread streams a deferred StreamingTextGeneration
 * request in pieces: the head comes first with the bt headers, each piece
 * arrives as a chunk before the stream ends and the chunks concatenate to
 * exactly the bytes given; a request pipelined behind the stream is answered
 * after its last chunk; a client that closes mid-stream makes
 * bx_ticket_abandoned() true; a failure before the first chunk is an
 * ordinary error answer, one after it cuts the stream; -ENOBUFS, -EBUSY and
 * -EINVAL where the header says.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "bx_test.h"
#include "dp_testlib.h"

static struct dpt_keys K;
static struct bx_dp *DP;
static uint16_t PORT;

/* ---------------- the producer side ---------------- */

enum mode {
	M_PIECES,     /* four pieces 30 ms apart, then complete */
	M_BURST,      /* 200 one-byte pieces at once: coalesced */
	M_FAIL_EARLY, /* fail before streaming anything */
	M_FAIL_LATE,  /* one piece, then fail */
	M_ABANDON,    /* one piece, then wait for bx_ticket_abandoned() */
	M_LATE,       /* one piece, then used after the dataplane stopped */
	M_EMBED,      /* a TextEmbedding ticket: streaming is refused */
};

static const char *const PIECES[] = { "Hel", "lo ", "w\xc3\xb6r", "ld\n" };

struct job {
	struct bx_call_ticket *t;
	enum mode mode;
};

static int producers_done; /* atomic */
static int abandoned_seen; /* atomic: 1 when M_ABANDON saw it turn true */
static int api_errors;     /* atomic: API results that differ from the header */
static size_t stream_cap;  /* tx_buf: the ticket's stream buffer */
static int dp_stopped;     /* atomic: bx_dp_stop() returned */
static int late_abandoned; /* atomic: M_LATE's ticket read abandoned after the stop */

static void
check(bool ok)
{
	if (!ok) {
		__atomic_fetch_add(&api_errors, 1, __ATOMIC_SEQ_CST);
	}
}

static void
produce_pieces(struct bx_call_ticket *t)
{
	static char big[1 << 17];

	check(bx_ticket_stream(t, big, stream_cap + 1) == -ENOBUFS); /* never fits */
	for (unsigned i = 0; i < BX_ARRAY_SIZE(PIECES); i++) {
		if (i > 0) {
			usleep(30000);
		}
		check(bx_ticket_stream(t, PIECES[i], strlen(PIECES[i])) == 0);
	}
	check(bx_ticket_set_output(t, "completion", "\"x\"", 3) == -EBUSY);
}

static void *
producer(void *arg)
{
	struct job *j = arg;
	struct bx_call_ticket *t = j->t;

	switch (j->mode) {
	case M_PIECES:
		produce_pieces(t);
		break;
	case M_BURST:
		for (unsigned i = 0; i < 200; i++) {
			check(bx_ticket_stream(t, &"abcdefghij"[i % 10], 1) == 0);
		}
		break;
	case M_FAIL_EARLY:
		usleep(10000);
		bx_ticket_fail(t, 503, "Service unavailable: busy now");
		break;
	case M_FAIL_LATE:
		check(bx_ticket_stream(t, "a", 1) == 0);
		usleep(50000);
		bx_ticket_fail(t, 500, "Internal Server Error: generation failed");
		break;
	case M_ABANDON:
		check(bx_ticket_stream(t, "x", 1) == 0);
		for (int i = 0; i < 5000 && !bx_ticket_abandoned(t); i++) {
			usleep(1000);
		}
		__atomic_store_n(&abandoned_seen, bx_ticket_abandoned(t) ? 1 : 0, __ATOMIC_SEQ_CST);
		break;
	case M_LATE:
		check(bx_ticket_stream(t, "x", 1) == 0);
		for (int i = 0; i < 5000 && !__atomic_load_n(&dp_stopped, __ATOMIC_SEQ_CST); i++) {
			usleep(1000);
		}
		__atomic_store_n(&late_abandoned, bx_ticket_abandoned(t) ? 1 : 0, __ATOMIC_SEQ_CST);
		(void)bx_ticket_stream(t, "y", 1); /* dropped: nobody reads it */
		break;
	case M_EMBED:
		check(bx_ticket_stream(t, "x", 1) == -EINVAL);
		check(bx_ticket_set_output(t, "embeddings", "[[1.0]]", 7) == 0);
		check(bx_ticket_stream(t, "x", 1) == -EINVAL);
		break;
	}
	bx_ticket_complete(t);
	free(j);
	__atomic_fetch_add(&producers_done, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

/* Handlers run on the dataplane thread: defer, and hand the ticket to a thread. */
static int
handler(void *arg, struct bx_call *c)
{
	static const char *const names[] = { "\"pieces\"",    "\"burst\"",   "\"fail-early\"",
		                             "\"fail-late\"", "\"abandon\"", "\"late\"" };
	struct job *j = malloc(sizeof(*j));
	size_t n = 0;
	const char *p = bx_call_field(c, "prompt", &n);
	pthread_t th;

	(void)arg;
	if (!j) {
		return -ENOMEM;
	}
	j->mode = M_EMBED;
	for (unsigned i = 0; p && i < BX_ARRAY_SIZE(names); i++) {
		if (n == strlen(names[i]) && memcmp(p, names[i], n) == 0) {
			j->mode = (enum mode)i;
		}
	}
	j->t = bx_call_defer(c);
	if (!j->t || pthread_create(&th, NULL, producer, j) != 0) {
		free(j);
		return bx_call_fail(c, 503, "busy");
	}
	pthread_detach(th);
	return BX_CALL_PENDING;
}

/* ---------------- the client side ---------------- */

static int
setup(void **state)
{
	struct bx_dp_conf c;
	struct bx_errbuf eb;
	struct bx_metagraph *mg;
	char buf[4096];
	size_t n;
	int r;

	(void)state;
	dpt_keys_make(&K);
	n = dpt_metagraph_json(&K, buf, sizeof(buf));
	if (bx_metagraph_parse(buf, n, "test", &mg, &eb) < 0) {
		return -1;
	}
	bx_dp_conf_default(&c);
	snprintf(c.listen_addr, sizeof(c.listen_addr), "127.0.0.1");
	c.port = 0;
	c.nb_cores = 1;
	c.pin = false;
	c.max_conns = 16;
	c.hotkey = K.miner;
	c.replay_slots = 1024;
	stream_cap = c.tx_buf;
	r = bx_dp_create(&c, mg, &DP, &eb);
	if (r == 0) {
		r = bx_dp_set_handler(DP, "StreamingTextGeneration", handler, NULL);
		r = r ? r : bx_dp_set_handler(DP, "TextEmbedding", handler, NULL);
	}
	return dpt_start(DP, r, &eb, &PORT);
}

static int
teardown(void **state)
{
	(void)state;
	dpt_stop(DP);
	dpt_keys_free(&K);
	return 0;
}

static int
connect_lo(void)
{
	int fd = dpt_connect_lo(PORT, 0);

	assert_true(fd >= 0);
	return fd;
}

static void
send_all(int fd, const char *p, size_t n)
{
	assert_int_equal(dpt_send_all(fd, p, n), 0);
}

/* hex(SHA3-256(s)) */
static void
sha3_hex(const char *s, size_t n, char hex[65])
{
	uint8_t d[32];

	bx_sha3_256(d, s, n);
	bx_hex_encode(hex, d, 32);
}

/* A StreamingTextGeneration request with this prompt and every other field at its default. */
static size_t
build_gen(const char *synapse, const char *prompt, char *buf, size_t cap)
{
	char vals[6][64], cat[6 * 64 + 1] = "", hash[65], fields[128];
	struct dpt_req q;

	snprintf(vals[0], sizeof(vals[0]), "[]");
	snprintf(vals[1], sizeof(vals[1]), "%s", prompt); /* str() of a str: itself */
	snprintf(vals[2], sizeof(vals[2]), "256");
	snprintf(vals[3], sizeof(vals[3]), "1.0");
	snprintf(vals[4], sizeof(vals[4]), "1.0");
	snprintf(vals[5], sizeof(vals[5]), "None");
	for (unsigned i = 0; i < 6; i++) {
		sha3_hex(vals[i], strlen(vals[i]), cat + 64 * i);
	}
	sha3_hex(cat, 6 * 64, hash);
	snprintf(fields, sizeof(fields), "\"prompt\": \"%s\"", prompt);
	memset(&q, 0, sizeof(q));
	q.synapse = synapse;
	q.signer = K.validator;
	q.signer_ss58 = K.validator_ss58;
	q.axon_hotkey = K.miner_ss58;
	q.fields_json = fields;
	q.body_hash = hash;
	return dpt_build(&q, buf, cap);
}

/* TextEmbedding with texts ["a"]. */
static size_t
build_embed(char *buf, size_t cap)
{
	char inner[65], hash[65];
	struct dpt_req q;

	sha3_hex("['a']", 5, inner);
	sha3_hex(inner, 64, hash);
	memset(&q, 0, sizeof(q));
	q.synapse = "TextEmbedding";
	q.signer = K.validator;
	q.signer_ss58 = K.validator_ss58;
	q.axon_hotkey = K.miner_ss58;
	q.fields_json = "\"texts\": [\"a\"]";
	q.body_hash = hash;
	return dpt_build(&q, buf, cap);
}

static size_t
build_echo(char *buf, size_t cap)
{
	struct dpt_req q;

	memset(&q, 0, sizeof(q));
	q.synapse = "Synapse";
	q.signer = K.validator;
	q.signer_ss58 = K.validator_ss58;
	q.axon_hotkey = K.miner_ss58;
	return dpt_build(&q, buf, cap);
}

/* A connection and its receive buffer. */
static struct dpt_rx *
rx_open(void)
{
	static char buf[1 << 18];
	static struct dpt_rx rx;

	rx = (struct dpt_rx){ .fd = connect_lo(), .buf = buf, .cap = sizeof(buf) };
	return &rx;
}

static void
wait_producers(int n)
{
	for (int i = 0; i < 5000 && __atomic_load_n(&producers_done, __ATOMIC_SEQ_CST) < n; i++) {
		usleep(1000);
	}
	assert_int_equal(__atomic_load_n(&producers_done, __ATOMIC_SEQ_CST), n);
}

/* Pieces arrive as chunks, in order, before the end; an echo pipelined behind waits. */
static void
test_stream_pieces(void **state)
{
	static char req[1 << 16];
	struct dpt_rx *r = rx_open();
	struct dpt_stream s;
	struct dpt_resp e;
	char v[256], want[64];
	size_t n;

	(void)state;
	n = build_gen("StreamingTextGeneration", "pieces", req, sizeof(req));
	n += build_echo(req + n, sizeof(req) - n);
	send_all(r->fd, req, n);
	assert_true(dpt_read_stream(r, &s));
	assert_true(s.ended);
	assert_int_equal(s.head.status, 200);
	assert_true(dpt_header(&s.head, "content-type", v, sizeof(v)));
	assert_string_equal(v, "text/event-stream");
	assert_true(dpt_header(&s.head, "transfer-encoding", v, sizeof(v)));
	assert_string_equal(v, "chunked");
	assert_true(dpt_header(&s.head, "connection", v, sizeof(v)));
	assert_string_equal(v, "keep-alive");
	assert_false(dpt_header(&s.head, "content-length", v, sizeof(v)));
	assert_true(dpt_header(&s.head, "name", v, sizeof(v)));
	assert_string_equal(v, "StreamingTextGeneration");
	assert_true(dpt_header(&s.head, "bt_header_axon_status_code", v, sizeof(v)));
	assert_string_equal(v, "200");
	assert_true(dpt_header(&s.head, "bt_header_axon_status_message", v, sizeof(v)));
	assert_string_equal(v, "Success");
	assert_true(dpt_header(&s.head, "bt_header_axon_hotkey", v, sizeof(v)));
	assert_string_equal(v, K.miner_ss58);
	assert_true(dpt_header(&s.head, "bt_header_dendrite_hotkey", v, sizeof(v)));
	assert_string_equal(v, K.validator_ss58);
	assert_true(dpt_header(&s.head, "bt_header_axon_signature", v, sizeof(v)));
	assert_true(dpt_header(&s.head, "bt_header_axon_process_time", v, sizeof(v)));
	assert_true(dpt_header(&s.head, "computed_body_hash", v, sizeof(v)));
	snprintf(want, sizeof(want), "%s%s%s%s", PIECES[0], PIECES[1], PIECES[2], PIECES[3]);
	assert_int_equal(s.text_len, strlen(want));
	assert_memory_equal(s.text, want, s.text_len);
	/* 30 ms apart: one chunk each, the first long before the end */
	assert_int_equal(s.nb_chunks, 4);
	assert_true(s.first_before_end);
	assert_true(s.end_ns - s.first_chunk_ns > 60000000ull);
	/* the echo comes after the last chunk, on the same connection */
	assert_true(dpt_read_resp(r, &e));
	assert_int_equal(e.status, 200);
	assert_non_null(memmem(e.body, e.body_len, "\"name\":\"Synapse\"", 16));
	close(r->fd);
	wait_producers(1);
	assert_int_equal(__atomic_load_n(&api_errors, __ATOMIC_SEQ_CST), 0);
}

/* Pieces faster than the worker takes them are coalesced, bytes intact. */
static void
test_stream_coalesced(void **state)
{
	static char req[1 << 16];
	struct dpt_rx *r = rx_open();
	struct dpt_stream s;

	(void)state;
	send_all(r->fd, req, build_gen("StreamingTextGeneration", "burst", req, sizeof(req)));
	assert_true(dpt_read_stream(r, &s));
	assert_true(s.ended);
	assert_int_equal(s.head.status, 200);
	assert_int_equal(s.text_len, 200);
	for (unsigned i = 0; i < 200; i++) {
		assert_int_equal(s.text[i], "abcdefghij"[i % 10]);
	}
	assert_true(s.nb_chunks >= 1 && s.nb_chunks <= 200);
	close(r->fd);
	wait_producers(2);
	assert_int_equal(__atomic_load_n(&api_errors, __ATOMIC_SEQ_CST), 0);
}

/* Failing before the first chunk is an ordinary error answer; after it, a cut stream. */
static void
test_stream_failures(void **state)
{
	static char req[1 << 16];
	struct dpt_rx *r = rx_open();
	struct dpt_resp e;
	struct dpt_stream s;
	char v[128];
	size_t n;

	(void)state;
	n = build_gen("StreamingTextGeneration", "fail-early", req, sizeof(req));
	n += build_echo(req + n, sizeof(req) - n);
	send_all(r->fd, req, n);
	assert_true(dpt_read_resp(r, &e));
	assert_int_equal(e.status, 503);
	assert_true(dpt_header(&e, "content-type", v, sizeof(v)));
	assert_string_equal(v, "application/json");
	assert_true(dpt_header(&e, "bt_header_axon_status_code", v, sizeof(v)));
	assert_string_equal(v, "503");
	assert_non_null(memmem(e.body, e.body_len, "busy now", 8));
	assert_true(dpt_read_resp(r, &e)); /* the connection carries on */
	assert_int_equal(e.status, 200);
	wait_producers(3);

	n = build_gen("StreamingTextGeneration", "fail-late", req, sizeof(req));
	send_all(r->fd, req, n);
	assert_true(dpt_read_stream(r, &s));
	assert_int_equal(s.head.status, 200);
	assert_int_equal(s.text_len, 1);
	assert_false(s.ended); /* closed without the last chunk */
	assert_true(r->eof);
	close(r->fd);
	wait_producers(4);
	assert_int_equal(__atomic_load_n(&api_errors, __ATOMIC_SEQ_CST), 0);
}

/* A client that goes away mid-stream: the producer sees bx_ticket_abandoned(). */
static void
test_stream_abandoned(void **state)
{
	static char req[1 << 16];
	struct dpt_rx *r = rx_open();
	struct dpt_resp e;
	char v[32];

	(void)state;
	send_all(r->fd, req, build_gen("StreamingTextGeneration", "abandon", req, sizeof(req)));
	while (!memmem(r->buf, r->len, "\r\n1\r\nx\r\n", 8)) { /* head and the first chunk */
		assert_true(dpt_rx_more(r));
	}
	close(r->fd);
	wait_producers(5);
	assert_int_equal(__atomic_load_n(&abandoned_seen, __ATOMIC_SEQ_CST), 1);

	/* a ticket of a synapse that does not stream refuses to; the answer is JSON */
	r = rx_open();
	send_all(r->fd, req, build_embed(req, sizeof(req)));
	assert_true(dpt_read_resp(r, &e));
	close(r->fd);
	wait_producers(6);
	assert_int_equal(e.status, 200);
	assert_true(dpt_header(&e, "content-type", v, sizeof(v)));
	assert_string_equal(v, "application/json");
	assert_non_null(memmem(e.body, e.body_len, "\"embeddings\":[[1.0]]", 20));
	assert_int_equal(__atomic_load_n(&api_errors, __ATOMIC_SEQ_CST), 0);
}

/*
 * A ticket still out when the drain deadline passes (a scheduler behind):
 * bx_dp_stop() returns, the ticket stays usable until bx_dp_destroy(), reads
 * abandoned, and streaming into it or completing it touches nothing freed
 * (ASan checks). Last: it stops the dataplane.
 */
static void
test_stream_after_stop(void **state)
{
	static char req[1 << 16];
	struct dpt_rx *r = rx_open();

	(void)state;
	send_all(r->fd, req, build_gen("StreamingTextGeneration", "late", req, sizeof(req)));
	while (!memmem(r->buf, r->len, "\r\n1\r\nx\r\n", 8)) {
		assert_true(dpt_rx_more(r));
	}
	bx_dp_stop(DP, 50);
	__atomic_store_n(&dp_stopped, 1, __ATOMIC_SEQ_CST);
	wait_producers(7);
	assert_int_equal(__atomic_load_n(&late_abandoned, __ATOMIC_SEQ_CST), 1);
	close(r->fd);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stream_pieces),     cmocka_unit_test(test_stream_coalesced),
		cmocka_unit_test(test_stream_failures),   cmocka_unit_test(test_stream_abandoned),
		cmocka_unit_test(test_stream_after_stop),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
