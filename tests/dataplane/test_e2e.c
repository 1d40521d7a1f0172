/*
 * End to end over loopback: the real server on io_uring, a client sending
 * signed requests on keep-alive connections, pipelined and split writes,
 * errors that close, metagraph swaps while serving, stop with drain.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
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

static struct bx_metagraph *
make_mg(void)
{
	char buf[4096];
	size_t n = dpt_metagraph_json(&K, buf, sizeof(buf));
	struct bx_metagraph *mg;
	struct bx_errbuf eb;

	if (bx_metagraph_parse(buf, n, "test", &mg, &eb) < 0) {
		abort();
	}
	return mg;
}

static int
setup(void **state)
{
	struct bx_dp_conf c;
	struct bx_errbuf eb;
	int r;

	(void)state;
	dpt_keys_make(&K);
	bx_dp_conf_default(&c);
	snprintf(c.listen_addr, sizeof(c.listen_addr), "127.0.0.1");
	c.port = 0;
	c.nb_cores = 2;
	c.cpus[0] = 0;
	c.cpus[1] = 1;
	c.pin = false;
	c.max_conns = 64;
	c.hotkey = K.miner;
	c.replay_slots = 1 << 16;
	r = bx_dp_create(&c, make_mg(), &DP, &eb);
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
connect_lo_rcvbuf(int rcvbuf)
{
	int fd = dpt_connect_lo(PORT, rcvbuf);

	assert_true(fd >= 0);
	return fd;
}

static int
connect_lo(void)
{
	return connect_lo_rcvbuf(0);
}

static void
send_all(int fd, const char *p, size_t n)
{
	assert_int_equal(dpt_send_all(fd, p, n), 0);
}

/* Read until `count` whole responses are in buf; returns bytes held. */
static size_t
read_responses(int fd, char *buf, size_t cap, unsigned count, struct dpt_resp *out)
{
	size_t len = 0, off = 0;
	unsigned got = 0;

	while (got < count) {
		struct dpt_resp r;

		if (dpt_parse_resp(buf + off, len - off, &r) == 0) {
			out[got++] = r;
			off += r.total;
			continue;
		}
		{
			ssize_t k = recv(fd, buf + len, cap - len, 0);

			if (k <= 0) {
				fprintf(stderr, "recv: %zd (%s) after %u responses\n", k,
				        strerror(errno), got);
				fail();
			}
			len += (size_t)k;
		}
	}
	return len;
}

static void
test_keepalive(void **state)
{
	static char req[16384], buf[1 << 16];
	struct dpt_req q;
	struct dpt_resp r;
	int fd = connect_lo();

	(void)state;
	for (int i = 0; i < 20; i++) {
		size_t n;

		dpt_req_init(&q, &K, "Synapse");
		n = dpt_build(&q, req, sizeof(req));
		send_all(fd, req, n);
		read_responses(fd, buf, sizeof(buf), 1, &r);
		assert_int_equal(r.status, 200);
	}
	close(fd);
}

static void
test_pipelined_and_split(void **state)
{
	static char req[1 << 16], buf[1 << 17];
	struct dpt_req q;
	struct dpt_resp r[8];
	size_t n = 0;
	int fd = connect_lo();

	(void)state;
	/* eight requests in one write: one of them for an unknown synapse */
	for (int i = 0; i < 8; i++) {
		dpt_req_init(&q, &K, "Synapse");
		if (i == 5) {
			q.synapse = "Nope";
		}
		n += dpt_build(&q, req + n, sizeof(req) - n);
	}
	send_all(fd, req, n);
	read_responses(fd, buf, sizeof(buf), 8, r);
	for (int i = 0; i < 8; i++) {
		assert_int_equal(r[i].status, i == 5 ? 404 : 200);
	}

	/* one request, one byte per write */
	dpt_req_init(&q, &K, "Synapse");
	n = dpt_build(&q, req, sizeof(req));
	for (size_t i = 0; i < n; i++) {
		send_all(fd, req + i, 1);
		if (i % 64 == 0) {
			usleep(100);
		}
	}
	read_responses(fd, buf, sizeof(buf), 1, r);
	assert_int_equal(r[0].status, 200);

	/* a request split across writes with the next one starting in the same write
   */
	{
		size_t a, b;

		dpt_req_init(&q, &K, "Synapse");
		a = dpt_build(&q, req, sizeof(req));
		dpt_req_init(&q, &K, "Synapse");
		b = dpt_build(&q, req + a, sizeof(req) - a);
		send_all(fd, req, a - 10);
		usleep(2000);
		send_all(fd, req + a - 10, 20);
		usleep(2000);
		send_all(fd, req + a + 10, b - 10);
		read_responses(fd, buf, sizeof(buf), 2, r);
		assert_int_equal(r[0].status, 200);
		assert_int_equal(r[1].status, 200);
	}
	close(fd);
}

static void
test_errors_close(void **state)
{
	static char buf[1 << 16];
	struct dpt_resp r;
	char v[64];
	int fd = connect_lo();
	static const char bad[] = "GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n";

	(void)state;
	send_all(fd, bad, sizeof(bad) - 1);
	read_responses(fd, buf, sizeof(buf), 1, &r);
	assert_int_equal(r.status, 400);
	assert_true(dpt_header(&r, "connection", v, sizeof(v)));
	assert_string_equal(v, "close");
	assert_int_equal(recv(fd, buf, sizeof(buf), 0), 0); /* server closed */
	close(fd);

	/* Connection: close is honoured after the response */
	{
		static char req[16384];
		struct dpt_req q;
		size_t n;

		fd = connect_lo();
		dpt_req_init(&q, &K, "Synapse");
		q.conn_close = true;
		n = dpt_build(&q, req, sizeof(req));
		send_all(fd, req, n);
		read_responses(fd, buf, sizeof(buf), 1, &r);
		assert_int_equal(r.status, 200);
		assert_int_equal(recv(fd, buf, sizeof(buf), 0), 0);
		close(fd);
	}

	/* too large a body: 413 and close */
	{
		static const char big[] = "POST /Synapse HTTP/1.1\r\nHost: x\r\nContent-Length: "
					  "99999999\r\n\r\n";

		fd = connect_lo();
		send_all(fd, big, sizeof(big) - 1);
		read_responses(fd, buf, sizeof(buf), 1, &r);
		assert_int_equal(r.status, 413);
		close(fd);
	}
}

static void
test_metagraph_swap(void **state)
{
	static char req[16384], buf[1 << 16];
	struct dpt_req q;
	struct dpt_resp r;
	int fd = connect_lo();
	char mgj[1024];
	struct bx_metagraph *mg;
	struct bx_errbuf eb;
	size_t n;

	(void)state;
	/* a metagraph without the validator: 403, then the full one back: 200 */
	snprintf(mgj, sizeof(mgj), "[{\"uid\": 5, \"hotkey\": \"%s\", \"validator_permit\": true}]",
	         K.stranger_ss58);
	assert_int_equal(bx_metagraph_parse(mgj, strlen(mgj), "t", &mg, &eb), 0);
	assert_int_equal(bx_dp_swap_metagraph(DP, mg), 0);
	dpt_req_init(&q, &K, "Synapse");
	n = dpt_build(&q, req, sizeof(req));
	send_all(fd, req, n);
	read_responses(fd, buf, sizeof(buf), 1, &r);
	assert_int_equal(r.status, 403);
	assert_int_equal(bx_dp_swap_metagraph(DP, make_mg()), 0);
	dpt_req_init(&q, &K, "Synapse");
	n = dpt_build(&q, req, sizeof(req));
	send_all(fd, req, n);
	read_responses(fd, buf, sizeof(buf), 1, &r);
	assert_int_equal(r.status, 200);
	close(fd);
}

/* A client that writes 400 pipelined requests before reading anything: the
 * server must stop parsing when its send buffer is full (backpressure) and
 * resume as the client reads, answering every one, in order. */
static void
test_backpressure(void **state)
{
	enum {
		N = 400
	};

	static char req[N * 2400];
	struct dpt_req q;
	size_t n = 0, sent = 0;
	unsigned got = 0;
	int fd = connect_lo_rcvbuf(4096);
	uint64_t deadline = bx_time_ns() + 20000000000ull;

	(void)state;
	for (int i = 0; i < N; i++) {
		dpt_req_init(&q, &K, "Synapse");
		n += dpt_build(&q, req + n, sizeof(req) - n);
	}
	/* write as much as the socket takes, without reading */
	for (int spins = 0; spins < 50 && sent < n; spins++) {
		ssize_t k = send(fd, req + sent, n - sent, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (k > 0) {
			sent += (size_t)k;
		} else {
			usleep(2000);
		}
	}
	usleep(50000);
	got = dpt_pipeline(fd, req, n, sent, N, deadline);
	assert_int_equal(got, N);
	close(fd);
}

/* A second server: two connections per worker at most, 1 s idle timeout. */
static void
test_conn_cap_and_idle(void **state)
{
	struct bx_dp_conf c;
	struct bx_errbuf eb;
	struct bx_dp *dp;
	struct bx_dp_stats st;
	uint16_t saved = PORT;
	int fds[3];
	char b[16];

	(void)state;
	bx_dp_conf_default(&c);
	snprintf(c.listen_addr, sizeof(c.listen_addr), "127.0.0.1");
	c.port = 0;
	c.nb_cores = 1;
	c.pin = false;
	c.max_conns = 2;
	c.idle_timeout_ms = 1000;
	c.hotkey = K.miner;
	c.replay_slots = 1024;
	assert_int_equal(bx_dp_create(&c, make_mg(), &dp, &eb), 0);
	assert_int_equal(bx_dp_start(dp, &eb), 0);
	PORT = bx_dp_port(dp);
	for (int i = 0; i < 3; i++) {
		fds[i] = connect_lo();
	}
	/* the third is closed at accept */
	assert_int_equal(recv(fds[2], b, sizeof(b), 0), 0);
	/* the first two are closed after the idle timeout (tick is 500 ms) */
	assert_int_equal(recv(fds[0], b, sizeof(b), 0), 0);
	assert_int_equal(recv(fds[1], b, sizeof(b), 0), 0);
	bx_dp_stats(dp, &st);
	assert_int_equal(st.conns_refused, 1);
	assert_int_equal(st.conns_timed_out, 2);
	for (int i = 0; i < 3; i++) {
		close(fds[i]);
	}
	bx_dp_stop(dp, 100);
	bx_dp_destroy(dp);
	PORT = saved;
}

/* bx_dp_reload_metagraph from a file, as bxd does on SIGHUP; a bad file keeps the old one. */
static void
test_reload_file(void **state)
{
	char path[] = "/tmp/bx-mg-XXXXXX", buf[4096];
	struct bx_errbuf eb;
	int fd = mkstemp(path);
	size_t n = dpt_metagraph_json(&K, buf, sizeof(buf));

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(write(fd, buf, n), (ssize_t)n);
	close(fd);
	assert_int_equal(bx_dp_reload_metagraph(DP, path, &eb), 0);
	fd = open(path, O_WRONLY | O_TRUNC);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "[{\"uid\": 1}]", 12), 12);
	close(fd);
	assert_int_equal(bx_dp_reload_metagraph(DP, path, &eb), -EINVAL);
	assert_non_null(strstr(eb.msg, path));
	unlink(path);
	assert_true(bx_dp_reload_metagraph(DP, path, &eb) < 0);
	/* still serving with the old snapshot */
	{
		static char req[16384], rbuf[1 << 16];
		struct dpt_req q;
		struct dpt_resp r;
		int c = connect_lo();

		dpt_req_init(&q, &K, "Synapse");
		n = dpt_build(&q, req, sizeof(req));
		send_all(c, req, n);
		read_responses(c, rbuf, sizeof(rbuf), 1, &r);
		assert_int_equal(r.status, 200);
		close(c);
	}
}

/* Stop drains: a half-sent request keeps its connection until the deadline, then it closes. */
static void
test_stop_drains(void **state)
{
	struct bx_dp_conf c;
	struct bx_errbuf eb;
	struct bx_dp *dp;
	uint16_t saved = PORT;
	uint64_t t0;
	char b[16];
	int fd;

	(void)state;
	bx_dp_conf_default(&c);
	snprintf(c.listen_addr, sizeof(c.listen_addr), "127.0.0.1");
	c.port = 0;
	c.nb_cores = 1;
	c.pin = false;
	c.max_conns = 8;
	c.hotkey = K.miner;
	c.replay_slots = 1024;
	assert_int_equal(bx_dp_create(&c, make_mg(), &dp, &eb), 0);
	assert_int_equal(bx_dp_start(dp, &eb), 0);
	PORT = bx_dp_port(dp);
	fd = connect_lo();
	send_all(fd, "POST /Synapse HTTP/1.1\r\nHost: x\r\n", 33);
	usleep(20000);
	t0 = bx_time_ns();
	bx_dp_stop(dp, 300);
	assert_true(bx_time_ns() - t0 >= 250000000ull); /* waited for the request */
	assert_true(bx_time_ns() - t0 < 3000000000ull);
	assert_int_equal(recv(fd, b, sizeof(b), 0), 0);
	close(fd);
	bx_dp_destroy(dp);
	PORT = saved;
}

/* ---- deferred answers (bx_call_defer / bx_ticket_complete from another thread) ---- */

static struct bx_call_ticket *deferred[16];
static unsigned nb_deferred, nb_completed;

static int
defer_handler(void *arg, struct bx_call *c)
{
	struct bx_call_ticket *t = bx_call_defer(c);
	unsigned i;

	(void)arg;
	if (!t) {
		return bx_call_fail(c, 503, "busy");
	}
	i = __atomic_fetch_add(&nb_deferred, 1, __ATOMIC_SEQ_CST);
	__atomic_store_n(&deferred[i % 16], t, __ATOMIC_RELEASE);
	return BX_CALL_PENDING;
}

/* Another thread answers every deferred request 20 ms later. */
static void *
completer(void *arg)
{
	unsigned want = *(unsigned *)arg;

	while (__atomic_load_n(&nb_completed, __ATOMIC_SEQ_CST) < want) {
		unsigned i = __atomic_load_n(&nb_completed, __ATOMIC_SEQ_CST);
		struct bx_call_ticket *t;

		if (i >= __atomic_load_n(&nb_deferred, __ATOMIC_SEQ_CST)) {
			usleep(1000);
			continue;
		}
		while (!(t = __atomic_exchange_n(&deferred[i % 16], NULL, __ATOMIC_ACQ_REL))) {
			usleep(100);
		}
		usleep(20000);
		if (bx_ticket_set_output(t, "embeddings", "[[1.0,2.5]]", 11) != 0) {
			bx_ticket_fail(t, 500, "set_output failed");
		}
		bx_ticket_complete(t);
		__atomic_fetch_add(&nb_completed, 1, __ATOMIC_SEQ_CST);
	}
	return NULL;
}

static void
embed_req(struct dpt_req *q, char hash[65])
{
	uint8_t d[32];
	char inner[65];

	bx_sha3_256(d, "['a']", 5);
	bx_hex_encode(inner, d, 32);
	bx_sha3_256(d, inner, 64);
	bx_hex_encode(hash, d, 32);
	dpt_req_init(q, &K, "Synapse");
	q->synapse = "TextEmbedding";
	q->fields_json = "\"texts\": [\"a\"]";
	q->body_hash = hash;
}

static void
test_deferred(void **state)
{
	static char req[1 << 15], buf[1 << 16];
	struct bx_dp_conf c;
	struct bx_errbuf eb;
	struct bx_dp *dp;
	struct dpt_req q;
	struct dpt_resp r[3];
	uint16_t saved = PORT;
	char hash[65];
	size_t n = 0;
	pthread_t th;
	unsigned want = 2;
	int fd;

	(void)state;
	bx_dp_conf_default(&c);
	snprintf(c.listen_addr, sizeof(c.listen_addr), "127.0.0.1");
	c.port = 0;
	c.nb_cores = 1;
	c.pin = false;
	c.max_conns = 8;
	c.hotkey = K.miner;
	c.replay_slots = 1024;
	assert_int_equal(bx_dp_create(&c, make_mg(), &dp, &eb), 0);
	assert_int_equal(bx_dp_set_handler(dp, "TextEmbedding", defer_handler, NULL), 0);
	assert_int_equal(bx_dp_start(dp, &eb), 0);
	PORT = bx_dp_port(dp);
	assert_int_equal(pthread_create(&th, NULL, completer, &want), 0);

	/* deferred request, then an echo pipelined behind it: answers come in order */
	fd = connect_lo();
	embed_req(&q, hash);
	n += dpt_build(&q, req + n, sizeof(req) - n);
	dpt_req_init(&q, &K, "Synapse");
	n += dpt_build(&q, req + n, sizeof(req) - n);
	embed_req(&q, hash);
	n += dpt_build(&q, req + n, sizeof(req) - n);
	send_all(fd, req, n);
	read_responses(fd, buf, sizeof(buf), 3, r);
	assert_int_equal(r[0].status, 200);
	assert_non_null(memmem(r[0].body, r[0].body_len, "\"embeddings\":[[1.0,2.5]]", 24));
	assert_int_equal(r[1].status, 200);
	assert_non_null(memmem(r[1].body, r[1].body_len, "\"name\":\"Synapse\"", 16));
	assert_int_equal(r[2].status, 200);
	close(fd);
	pthread_join(th, NULL);

	/* a deferred request whose connection is gone by the time it completes */
	want = 3;
	assert_int_equal(pthread_create(&th, NULL, completer, &want), 0);
	fd = connect_lo();
	embed_req(&q, hash);
	n = dpt_build(&q, req, sizeof(req));
	send_all(fd, req, n);
	usleep(5000);
	close(fd);
	pthread_join(th, NULL);
	/* the slot is reused cleanly */
	fd = connect_lo();
	dpt_req_init(&q, &K, "Synapse");
	n = dpt_build(&q, req, sizeof(req));
	send_all(fd, req, n);
	read_responses(fd, buf, sizeof(buf), 1, r);
	assert_int_equal(r[0].status, 200);
	close(fd);

	bx_dp_stop(dp, 500);
	bx_dp_destroy(dp);
	PORT = saved;
}

static void
test_stats(void **state)
{
	struct bx_dp_stats s;

	(void)state;
	bx_dp_stats(DP, &s);
	assert_true(s.requests >= 30);
	assert_true(s.responses_ok >= 30);
	assert_true(s.rejected[BX_DP_R_UNKNOWN_SYNAPSE] >= 1);
	assert_true(s.rejected[BX_DP_R_NOT_REGISTERED] >= 1);
	assert_true(s.rejected[BX_DP_R_HTTP_BAD] >= 1);
	assert_true(s.rejected[BX_DP_R_HTTP_LIMIT] >= 1);
	assert_true(s.conns_accepted >= 5);
	assert_string_equal(bx_dp_reason_name(BX_DP_R_REPLAY), "replay");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keepalive),    cmocka_unit_test(test_pipelined_and_split),
		cmocka_unit_test(test_errors_close), cmocka_unit_test(test_metagraph_swap),
		cmocka_unit_test(test_backpressure), cmocka_unit_test(test_conn_cap_and_idle),
		cmocka_unit_test(test_reload_file),  cmocka_unit_test(test_stop_drains),
		cmocka_unit_test(test_deferred),     cmocka_unit_test(test_stats),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
