/*
 * The load engine (load.h): epoll workers with keep-alive connections,
 * closed and open loop, latency from the intended send time.
 */
#include "load.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include <bx/crypto.h>
#include <bx/platform.h>

#include "hist.h"
#include "http_resp.h"

#define TX_CAP     (1u << 16)
#define RX_CAP     (1u << 20)
#define BACKLOG    65536
#define MAX_EVENTS 64

enum cstate {
	C_IDLE,
	C_CONNECTING,
	C_SENDING,
	C_READING,
};

struct conn {
	int fd;
	enum cstate st;
	char *tx, *rx;
	size_t tx_len, tx_off, rx_len;
	uint64_t intended, sent, first_byte, first_body, nonce;
	uint8_t kind;
	struct bx_dd_identity *id;
};

struct worker {
	const struct bx_ld_conf *c;
	unsigned idx;
	pthread_t th;
	int ep;
	struct conn *conns;
	unsigned nb_conns, nb_idle, inflight;
	unsigned *idle;
	uint64_t *bl; /* backlog of intended times (ring) */
	unsigned bl_head, bl_count;
	struct bx_arrival arr, rng;
	uint64_t next_arrival;
	struct bx_ld_rec *recs;
	uint64_t nb_recs, cap; /* nb_recs is published with release stores */
	uint64_t start, end_send, quota, issued;
	uint64_t sent, dropped, sig_ok, sig_bad, sig_absent;
	unsigned next_id;
	bool done;
	char *sample; /* first 200 body */
	size_t sample_len;
	uint64_t seen; /* records the progress reporter has read */
	struct sockaddr_in addr;
	double cum[BX_DD_NB_KINDS];
};

void
bx_ld_conf_default(struct bx_ld_conf *c)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->ip, sizeof(c->ip), "127.0.0.1");
	c->port = 8091;
	c->threads = 1;
	c->connections = 16;
	c->arrival = BX_ARRIVAL_CONSTANT;
	c->seed = 1;
	c->duration_s = 10;
	c->max_requests = 10000000;
	c->timeout_s = 12;
	c->verify_responses = true;
}

/* ======================= Connections ======================= */

static void
conn_close(struct worker *w, struct conn *cn)
{
	if (cn->fd >= 0) {
		epoll_ctl(w->ep, EPOLL_CTL_DEL, cn->fd, NULL);
		close(cn->fd);
	}
	cn->fd = -1;
}

static int
conn_open(struct worker *w, struct conn *cn)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | EPOLLET | EPOLLRDHUP };
	int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0) {
		return -errno;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&w->addr, sizeof(w->addr)) < 0 && errno != EINPROGRESS) {
		int e = -errno;

		close(fd);
		return e;
	}
	ev.data.ptr = cn;
	if (epoll_ctl(w->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
		int e = -errno;

		close(fd);
		return e;
	}
	cn->fd = fd;
	return 0;
}

/* ======================= Outcomes ======================= */

static void
push_rec(struct worker *w, const struct bx_ld_rec *r)
{
	if (w->nb_recs < w->cap) {
		w->recs[w->nb_recs] = *r;
		__atomic_store_n(&w->nb_recs, w->nb_recs + 1, __ATOMIC_RELEASE);
	}
}

static uint32_t
units(uint64_t ns)
{
	uint64_t u = ns / 100;

	return u > UINT32_MAX ? UINT32_MAX : (uint32_t)u;
}

/* Record the outcome of cn's request and make the connection idle. */
static void
finish(struct worker *w, struct conn *cn, uint64_t now, struct bx_ld_rec *r)
{
	uint64_t base = w->c->rate > 0 ? cn->intended : cn->sent;

	r->t_ns = cn->intended - w->start;
	r->lat_us10 = units(now - base);
	r->ttfb_us10 = cn->first_byte ? units(cn->first_byte - base) : r->lat_us10;
	if ((r->flags & BX_LD_F_STREAM) && cn->first_body) {
		/* Time to the first chunk with data, not to the head: the first token. */
		r->ttfb_us10 = units(cn->first_body - base);
	}
	r->kind = cn->kind;
	if ((double)r->t_ns < w->c->warmup_s * 1e9) {
		r->flags |= BX_LD_F_WARMUP;
	}
	push_rec(w, r);
	cn->st = C_IDLE;
	cn->rx_len = 0;
	w->inflight--;
	w->idle[w->nb_idle++] = (unsigned)(cn - w->conns);
}

static void
fail(struct worker *w, struct conn *cn, uint64_t now, uint16_t status)
{
	struct bx_ld_rec r = { .status = status, .process_time = -1, .score = -1 };

	conn_close(w, cn);
	finish(w, cn, now, &r);
}

static bool
hdr_eq(const struct bx_resp *rp, const char *name, const char *lit)
{
	size_t n;
	const char *v = bx_resp_header(rp, name, &n);

	return v != NULL && n >= strlen(lit) && strncasecmp(v, lit, strlen(lit)) == 0;
}

/* A header's value as a NUL-terminated copy; false if absent or too long. */
static bool
hdr_copy(const struct bx_resp *rp, const char *name, char *out, size_t cap)
{
	size_t n;
	const char *v = bx_resp_header(rp, name, &n);

	if (v == NULL || n >= cap) {
		return false;
	}
	memcpy(out, v, n);
	out[n] = 0;
	return true;
}

static int
verify_hex(const char *sig_hex, const char *msg, int n, const uint8_t pub[32])
{
	uint8_t sig[64];
	size_t len = strlen(sig_hex);

	if (n < 0 || len != 130 || bx_hex_decode(sig, 64, sig_hex, len) < 0) {
		return -EBADMSG;
	}
	return bx_sr25519_verify(sig, msg, (size_t)n, pub);
}

/*
 * The miner's signatures: the SDK axon signature over
 * "{axon_nonce}.{dendrite_hotkey}.{axon_hotkey}.{axon_uuid}" (§3.3) and bx's
 * body signature over "bx-axon-body-v1.{axon_nonce}.{dendrite_hotkey}.
 * {dendrite_nonce}.{dendrite_uuid}.{axon_hotkey}.{sha3_256_hex(body)}".
 */
static uint8_t
check_sigs(struct worker *w, const struct conn *cn, const struct bx_resp *rp)
{
	const struct bx_dd_template *t = w->c->tmpl[cn->kind];
	char sig[160], an[32], au[64], msg[640], hex[65];
	uint8_t d[32];
	int n, seen = 0, bad = 0;

	if (!w->c->verify_responses || !w->c->have_axon_pub ||
	    !hdr_copy(rp, "bt_header_axon_nonce", an, sizeof(an))) {
		w->sig_absent++;
		return 0;
	}
	if (hdr_copy(rp, "bt_header_axon_signature", sig, sizeof(sig)) &&
	    hdr_copy(rp, "bt_header_axon_uuid", au, sizeof(au))) {
		n = snprintf(msg, sizeof(msg), "%s.%s.%s.%s", an, cn->id->ss58, t->axon_hotkey, au);
		seen++;
		bad += verify_hex(sig, msg, n, w->c->axon_pub) != 0;
	}
	if (!rp->chunked && hdr_copy(rp, "bt_header_axon_body_signature", sig, sizeof(sig))) {
		bx_sha3_256(d, rp->body, rp->body_len);
		bx_hex_encode(hex, d, 32);
		n = snprintf(msg, sizeof(msg), "bx-axon-body-v1.%s.%s.%" PRIu64 ".%s.%s.%s", an,
		             cn->id->ss58, (uint64_t)cn->nonce, cn->id->uuid, t->axon_hotkey, hex);
		seen++;
		bad += verify_hex(sig, msg, n, w->c->axon_pub) != 0;
	}
	if (seen == 0) {
		w->sig_absent++;
		return 0;
	}
	if (bad) {
		w->sig_bad++;
		return BX_LD_F_SIG_BAD;
	}
	w->sig_ok++;
	return BX_LD_F_SIG_OK;
}

/*
 * A streaming answer (§5): status 200 and the bt headers in the head, then
 * subnet-defined chunks. Tokens are counted as chunks: bxd sends one per
 * decode step (the subnet template one per '\n'-ended token). The chunks
 * concatenated are scored as the completion.
 */
static void
stream_response(struct worker *w, struct conn *cn, struct bx_resp *rp, struct bx_ld_rec *r)
{
	char v[64];
	json_t *root;

	r->flags |= BX_LD_F_STREAM;
	if (hdr_copy(rp, "bt_header_axon_status_code", v, sizeof(v))) {
		r->status = (uint16_t)strtoul(v, NULL, 10);
	}
	r->tokens = rp->nb_chunks;
	if (r->status != 200 || w->c->score == NULL) {
		return;
	}
	root = json_object();
	if (root != NULL &&
	    json_object_set_new(root, "completion", json_stringn(rp->body, rp->body_len)) == 0) {
		uint32_t tokens = r->tokens;

		r->score = w->c->score(w->c->score_arg, (enum bx_dd_kind)cn->kind, root, &tokens);
	}
	json_decref(root);
}

/* Read the answer as process_server_response does (§4.5). */
static void
on_response(struct worker *w, struct conn *cn, struct bx_resp *rp, uint64_t now)
{
	struct bx_ld_rec r = { .status = (uint16_t)rp->status, .process_time = -1, .score = -1 };
	json_t *root = NULL, *ax, *sc;
	char v[64];

	r.flags = check_sigs(w, cn, rp);
	if (rp->chunked && hdr_eq(rp, "content-type", "text/event-stream")) {
		stream_response(w, cn, rp, &r);
		goto out;
	}
	if (hdr_eq(rp, "content-type", "application/json")) {
		root = json_loadb(rp->body, rp->body_len, 0, NULL);
	}
	if (rp->status == 200) {
		r.status = 0; /* neither a JSON nor a header status: a failure */
		if (root == NULL || !json_is_object(root)) {
			r.status = BX_LD_ST_PARSE;
		} else if ((ax = json_object_get(root, "axon")) != NULL &&
		           (sc = json_object_get(ax, "status_code")) != NULL &&
		           json_is_integer(sc)) {
			r.status = (uint16_t)json_integer_value(sc);
		}
	}
	if (r.status != BX_LD_ST_PARSE &&
	    hdr_copy(rp, "bt_header_axon_status_code", v, sizeof(v))) {
		r.status = (uint16_t)strtoul(v, NULL, 10);
	}
	if (hdr_copy(rp, "bt_header_axon_process_time", v, sizeof(v))) {
		r.process_time = strtof(v, NULL);
	}
	if (rp->chunked) {
		r.flags |= BX_LD_F_STREAM;
	}
	if (r.status == 200 && w->sample == NULL && rp->body_len < (1u << 20)) {
		w->sample = malloc(rp->body_len + 1);
		if (w->sample != NULL) {
			memcpy(w->sample, rp->body, rp->body_len);
			w->sample[rp->body_len] = 0;
			w->sample_len = rp->body_len;
		}
	}
	if (r.status == 200 && root != NULL && w->c->score != NULL) {
		r.score = w->c->score(w->c->score_arg, (enum bx_dd_kind)cn->kind, root, &r.tokens);
	}
	json_decref(root);
out:
	if (!rp->keep_alive) {
		conn_close(w, cn);
	}
	finish(w, cn, now, &r);
}

/* ======================= I/O ======================= */

static void
try_send(struct worker *w, struct conn *cn)
{
	while (cn->tx_off < cn->tx_len) {
		ssize_t n = send(cn->fd, cn->tx + cn->tx_off, cn->tx_len - cn->tx_off,
		                 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EAGAIN) {
				return;
			}
			fail(w, cn, bx_time_ns(), BX_LD_ST_CONNECT);
			return;
		}
		cn->tx_off += (size_t)n;
	}
	cn->st = C_READING;
}

static void
do_read(struct worker *w, struct conn *cn)
{
	struct bx_resp rp;
	bool eof = false;
	long ret;

	for (;;) {
		ssize_t n = recv(cn->fd, cn->rx + cn->rx_len, RX_CAP - cn->rx_len, MSG_DONTWAIT);

		if (n > 0) {
			if (cn->first_byte == 0) {
				cn->first_byte = bx_time_ns();
			}
			cn->rx_len += (size_t)n;
			if (cn->rx_len < RX_CAP) {
				continue;
			}
		} else if (n == 0 || errno != EAGAIN) {
			eof = true; /* closed, or reset */
		}
		break;
	}
	if (cn->st != C_READING) {
		/* Bytes or a close on an idle connection: the server gave up on it. */
		if (eof || cn->rx_len > 0) {
			conn_close(w, cn);
			cn->rx_len = 0;
		}
		return;
	}
	ret = bx_resp_parse(cn->rx, cn->rx_len, eof, &rp);
	/* Once the head is in: a stream's first chunk with data (its first token), else
	 * the first body byte. The decoded parse moved the chunks: test them only on
	 * -EAGAIN, when cn->rx is untouched; a whole response sets it below. */
	if (cn->first_body == 0 && rp.head_done && cn->rx_len > rp.head_len &&
	    (!rp.chunked || ret > 0 ||
	     bx_resp_first_chunk(cn->rx + rp.head_len, cn->rx_len - rp.head_len))) {
		cn->first_body = bx_time_ns();
	}
	if (ret > 0) {
		on_response(w, cn, &rp, bx_time_ns());
		if (eof) {
			conn_close(w, cn);
		}
	} else if (ret == -EBADMSG || cn->rx_len == RX_CAP) {
		fail(w, cn, bx_time_ns(), BX_LD_ST_PARSE);
	} else if (eof) {
		fail(w, cn, bx_time_ns(), BX_LD_ST_CONNECT); /* ServerDisconnectedError */
	}
}

static enum bx_dd_kind
pick_kind(struct worker *w)
{
	double u = bx_arrival_uniform(&w->rng) * w->cum[BX_DD_NB_KINDS - 1];
	int k;

	for (k = 0; k < BX_DD_NB_KINDS - 1; k++) {
		if (u < w->cum[k]) {
			break;
		}
	}
	while (w->c->tmpl[k] == NULL) { /* rounding at the top: the last kind in the mix */
		k--;
	}
	return (enum bx_dd_kind)k;
}

/* Build, sign and start sending one request on an idle connection. */
static void
issue(struct worker *w, uint64_t intended)
{
	struct conn *cn = &w->conns[w->idle[--w->nb_idle]];
	const struct bx_ld_conf *c = w->c;
	struct bx_sbuf b;
	int ret;

	w->inflight++;
	w->sent++;
	cn->kind = (uint8_t)pick_kind(w);
	cn->id = &c->ids[w->next_id % c->nb_ids];
	w->next_id += c->threads;
	cn->nonce = bx_dd_next_nonce(cn->id);
	bx_sbuf_init(&b, cn->tx, TX_CAP);
	cn->intended = intended;
	cn->first_byte = 0;
	cn->first_body = 0;
	cn->rx_len = 0;
	ret = bx_dd_build(c->tmpl[cn->kind], cn->id, cn->nonce, &b);
	cn->sent = bx_time_ns();
	if (ret < 0) {
		fail(w, cn, cn->sent, BX_LD_ST_PARSE);
		return;
	}
	cn->tx_len = b.len;
	cn->tx_off = 0;
	if (cn->fd < 0) {
		if (conn_open(w, cn) < 0) {
			fail(w, cn, cn->sent, BX_LD_ST_CONNECT);
			return;
		}
		cn->st = C_CONNECTING;
		return;
	}
	cn->st = C_SENDING;
	try_send(w, cn);
}

static void
on_event(struct worker *w, struct conn *cn, uint32_t ev)
{
	if (cn->st == C_CONNECTING && (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
		int err = 0;
		socklen_t len = sizeof(err);

		getsockopt(cn->fd, SOL_SOCKET, SO_ERROR, &err, &len);
		if (err != 0) {
			fail(w, cn, bx_time_ns(), BX_LD_ST_CONNECT);
			return;
		}
		cn->st = C_SENDING;
	}
	if (cn->st == C_SENDING && (ev & EPOLLOUT)) {
		try_send(w, cn);
	}
	if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
		if (cn->fd >= 0) {
			do_read(w, cn);
		}
	}
}

/* Requests past their total timeout, in flight or still waiting in the backlog. */
static uint64_t
expire(struct worker *w, uint64_t now)
{
	uint64_t to = (uint64_t)(w->c->timeout_s * 1e9), next = UINT64_MAX;
	unsigned i;

	for (i = 0; i < w->nb_conns; i++) {
		struct conn *cn = &w->conns[i];
		uint64_t base = w->c->rate > 0 ? cn->intended : cn->sent;

		if (cn->st == C_IDLE) {
			continue;
		}
		if (now >= base + to) {
			fail(w, cn, now, BX_LD_ST_TIMEOUT);
		} else {
			next = BX_MIN(next, base + to);
		}
	}
	while (w->bl_count > 0 && now >= w->bl[w->bl_head] + to) {
		struct bx_ld_rec r = { .t_ns = w->bl[w->bl_head] - w->start,
			               .lat_us10 = units(now - w->bl[w->bl_head]),
			               .status = BX_LD_ST_TIMEOUT,
			               .process_time = -1,
			               .score = -1 };

		r.ttfb_us10 = r.lat_us10;
		if ((double)r.t_ns < w->c->warmup_s * 1e9) {
			r.flags |= BX_LD_F_WARMUP;
		}
		push_rec(w, &r);
		w->bl_head = (w->bl_head + 1) % BACKLOG;
		w->bl_count--;
	}
	return next;
}

/* Open loop: move every arrival that is due into the backlog. */
static void
arrivals(struct worker *w, uint64_t now)
{
	while (w->next_arrival <= now && w->next_arrival < w->end_send && w->issued < w->quota) {
		if (w->bl_count == BACKLOG) {
			w->dropped++;
		} else {
			w->bl[(w->bl_head + w->bl_count) % BACKLOG] = w->next_arrival;
			w->bl_count++;
		}
		w->issued++;
		w->next_arrival = bx_arrival_next(&w->arr);
	}
}

static void
dispatch(struct worker *w, uint64_t now)
{
	bool open = w->c->rate > 0;

	while (w->nb_idle > 0) {
		uint64_t t;

		if (open) {
			if (w->bl_count == 0) {
				return;
			}
			t = w->bl[w->bl_head];
			w->bl_head = (w->bl_head + 1) % BACKLOG;
			w->bl_count--;
		} else {
			if (now >= w->end_send || w->issued >= w->quota) {
				return;
			}
			w->issued++;
			t = now;
		}
		issue(w, t);
	}
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	struct epoll_event evs[MAX_EVENTS];
	uint64_t hard_end = w->end_send + (uint64_t)((w->c->timeout_s + 1) * 1e9);

	for (;;) {
		uint64_t now = bx_time_ns(), wake;
		struct timespec ts;
		int n, i;

		if (w->c->rate > 0) {
			arrivals(w, now);
		}
		dispatch(w, now);
		wake = expire(w, now);
		if (now >= hard_end || (w->inflight == 0 && w->bl_count == 0 &&
		                        (now >= w->end_send || w->issued >= w->quota))) {
			break;
		}
		if (w->c->rate > 0 && w->next_arrival < w->end_send && w->issued < w->quota) {
			wake = BX_MIN(wake, w->next_arrival);
		}
		if (w->c->rate == 0 && now < w->end_send) {
			wake = BX_MIN(wake, w->end_send);
		}
		wake = BX_MIN(wake, now + 100000000ull);
		wake = wake > now ? wake - now : 0;
		ts.tv_sec = (time_t)(wake / 1000000000ull);
		ts.tv_nsec = (long)(wake % 1000000000ull);
		n = epoll_pwait2(w->ep, evs, MAX_EVENTS, &ts, NULL);
		for (i = 0; i < n; i++) {
			on_event(w, evs[i].data.ptr, evs[i].events);
		}
	}
	for (unsigned i = 0; i < w->nb_conns; i++) {
		conn_close(w, &w->conns[i]);
	}
	__atomic_store_n(&w->done, true, __ATOMIC_RELEASE);
	return NULL;
}

/* ======================= Set-up and the run ======================= */

static void
worker_fini(struct worker *w)
{
	unsigned i;

	if (w->c == NULL) { /* never initialised */
		return;
	}
	if (w->conns != NULL) {
		for (i = 0; i < w->nb_conns; i++) {
			bx_free(w->conns[i].tx);
			bx_free(w->conns[i].rx);
		}
	}
	bx_free(w->conns);
	bx_free(w->idle);
	bx_free(w->bl);
	bx_free(w->recs);
	free(w->sample);
	if (w->ep >= 0) {
		close(w->ep);
	}
}

static int
worker_init(struct worker *w, const struct bx_ld_conf *c, unsigned idx, uint64_t start)
{
	unsigned i, share = c->connections / c->threads + (idx < c->connections % c->threads);
	double rate = c->rate / c->threads;
	int k;

	memset(w, 0, sizeof(*w));
	w->c = c;
	w->idx = idx;
	w->next_id = idx;
	w->start = start;
	w->end_send = start + (uint64_t)(c->duration_s * 1e9);
	w->quota = c->max_requests / c->threads + (idx < c->max_requests % c->threads);
	w->ep = epoll_create1(EPOLL_CLOEXEC);
	w->nb_conns = share;
	w->conns = bx_calloc(share, sizeof(*w->conns));
	w->idle = bx_calloc(share, sizeof(unsigned));
	w->bl = bx_calloc(BACKLOG, sizeof(uint64_t));
	/*
	 * Room for every outcome: at most the schedule (+10 %) in open loop, and
	 * 1M a thread (32 MB) in closed loop. Never send what cannot be recorded.
	 */
	w->cap = c->rate > 0 ? (uint64_t)(rate * c->duration_s * 1.1 + 1000) : 1000000;
	w->cap = BX_MIN(w->cap, 4000000);
	w->quota = BX_MIN(w->quota, w->cap);
	w->cap = w->quota;
	w->recs = bx_calloc(w->cap, sizeof(*w->recs));
	if (w->ep < 0 || w->conns == NULL || w->idle == NULL || w->bl == NULL || w->recs == NULL) {
		return -ENOMEM;
	}
	for (i = 0; i < share; i++) {
		w->conns[i].fd = -1;
		w->conns[i].tx = bx_malloc(TX_CAP);
		w->conns[i].rx = bx_malloc(RX_CAP);
		if (w->conns[i].tx == NULL || w->conns[i].rx == NULL) {
			return -ENOMEM;
		}
		w->idle[w->nb_idle++] = share - 1 - i;
	}
	w->addr.sin_family = AF_INET;
	w->addr.sin_port = htons((uint16_t)c->port);
	inet_pton(AF_INET, c->ip, &w->addr.sin_addr);
	for (k = 0; k < BX_DD_NB_KINDS; k++) {
		w->cum[k] = (k ? w->cum[k - 1] : 0) + (c->tmpl[k] != NULL ? c->mix[k] : 0);
	}
	bx_arrival_init(&w->rng, BX_ARRIVAL_POISSON, 1, c->seed * 7919 + idx + 1, 0);
	if (c->rate > 0) {
		/* Constant schedules interleave: thread k starts k / rate later, so the sum is even. */
		uint64_t phase =
			c->arrival == BX_ARRIVAL_CONSTANT ? (uint64_t)(idx * 1e9 / c->rate) : 0;

		bx_arrival_init(&w->arr, c->arrival, rate, c->seed + idx, start + phase);
		w->next_arrival = bx_arrival_next(&w->arr);
	}
	return 0;
}

static int
check_conf(const struct bx_ld_conf *c, struct bx_errbuf *eb)
{
	struct in_addr a;
	double sum = 0;
	int k;

	if (inet_pton(AF_INET, c->ip, &a) != 1 || c->port == 0 || c->port > 65535) {
		return bx_err(eb, EINVAL, "target %s:%u is not an IPv4 address and port", c->ip,
		              c->port);
	}
	if (c->threads == 0 || c->threads > 64 || c->connections < c->threads ||
	    c->connections > 10000) {
		return bx_err(eb, EINVAL,
		              "threads (%u) must be 1..64 and connections (%u) %u..10000",
		              c->threads, c->connections, c->threads);
	}
	if (!(c->duration_s > 0) || c->duration_s > 86400 || !(c->timeout_s > 0) ||
	    c->timeout_s > 400 || c->rate < 0 || c->warmup_s < 0 || c->max_requests == 0) {
		return bx_err(
			eb, EINVAL,
			"duration, timeout (<= 400 s), rate, warm-up or request cap out of range");
	}
	for (k = 0; k < BX_DD_NB_KINDS; k++) {
		sum += c->tmpl[k] != NULL ? c->mix[k] : 0;
	}
	if (!(sum > 0) || c->nb_ids == 0) {
		return bx_err(eb, EINVAL, "nothing to send: no synapse in the mix or no identity");
	}
	return 0;
}

/* One progress line for the second that just ended. */
static void
progress(const struct bx_ld_conf *c, struct worker *ws, struct bx_hist *h, uint64_t start,
         uint64_t *prev_sent)
{
	uint64_t done = 0, errs = 0, sent = 0, now = bx_time_ns();
	unsigned t;
	char line[256];

	bx_hist_reset(h);
	for (t = 0; t < c->threads; t++) {
		struct worker *w = &ws[t];
		uint64_t n = __atomic_load_n(&w->nb_recs, __ATOMIC_ACQUIRE), i;

		for (i = w->seen; i < n; i++) {
			bx_hist_record(h, (uint64_t)w->recs[i].lat_us10 * 100);
			errs += w->recs[i].status != 200;
		}
		done += n - w->seen;
		w->seen = n;
		sent += __atomic_load_n(&w->sent, __ATOMIC_RELAXED);
	}
	snprintf(line, sizeof(line),
	         "t=%5.1fs sent/s=%-7" PRIu64 " done/s=%-7" PRIu64 " errors=%-5" PRIu64
	         " p50=%.3fms p99=%.3fms",
	         (double)(now - start) / 1e9, (uint64_t)(sent - *prev_sent), (uint64_t)done,
	         (uint64_t)errs, (double)bx_hist_percentile(h, 50) / 1e6,
	         (double)bx_hist_percentile(h, 99) / 1e6);
	*prev_sent = sent;
	c->progress(c->progress_arg, line);
}

static void
wait_workers(const struct bx_ld_conf *c, struct worker *ws, uint64_t start)
{
	struct bx_hist h;
	uint64_t next = start + 1000000000ull, prev_sent = 0;
	bool have_hist = c->progress != NULL && bx_hist_init(&h) == 0;
	unsigned t, running;

	do {
		struct timespec ts = { 0, 20000000 };

		nanosleep(&ts, NULL);
		running = 0;
		for (t = 0; t < c->threads; t++) {
			running += !__atomic_load_n(&ws[t].done, __ATOMIC_ACQUIRE);
		}
		if (have_hist && bx_time_ns() >= next) {
			progress(c, ws, &h, start, &prev_sent);
			next += 1000000000ull;
		}
	} while (running > 0);
	if (have_hist) {
		bx_hist_fini(&h);
	}
}

static void
collect(struct worker *ws, unsigned threads, struct bx_ld_result *res, uint64_t start)
{
	uint64_t last = 0, i;
	unsigned t;

	for (t = 0; t < threads; t++) {
		struct worker *w = &ws[t];

		memcpy(res->recs + res->nb_recs, w->recs, w->nb_recs * sizeof(*w->recs));
		res->nb_recs += w->nb_recs;
		res->sent += w->sent;
		res->dropped += w->dropped;
		res->sig_ok += w->sig_ok;
		res->sig_bad += w->sig_bad;
		res->sig_absent += w->sig_absent;
		if (res->sample == NULL && w->sample != NULL) {
			res->sample = w->sample; /* ownership moves to the result */
			res->sample_len = w->sample_len;
			w->sample = NULL;
		}
	}
	for (i = 0; i < res->nb_recs; i++) {
		last = BX_MAX(last, res->recs[i].t_ns + (uint64_t)res->recs[i].lat_us10 * 100);
	}
	res->wall_s = (double)last / 1e9;
	(void)start;
}

int
bx_ld_run(const struct bx_ld_conf *c, struct bx_ld_result *res, struct bx_errbuf *eb)
{
	struct worker *ws;
	uint64_t start, total = 0;
	unsigned t, started = 0;
	int ret = check_conf(c, eb);

	memset(res, 0, sizeof(*res));
	if (ret < 0) {
		return ret;
	}
	ws = bx_calloc(c->threads, sizeof(*ws));
	if (ws == NULL) {
		return bx_err(eb, ENOMEM, "load workers: out of memory");
	}
	start = bx_time_ns() + 20000000ull;
	for (t = 0; t < c->threads; t++) {
		ret = worker_init(&ws[t], c, t, start);
		if (ret < 0) {
			bx_err(eb, -ret, "load worker %u: %s", t, bx_strerror(ret));
			goto out_fini;
		}
		total += ws[t].cap;
	}
	res->recs = bx_calloc(total, sizeof(*res->recs));
	if (res->recs == NULL) {
		ret = bx_err(eb, ENOMEM, "load results: out of memory");
		goto out_fini;
	}
	for (t = 0; t < c->threads; t++) {
		ret = -pthread_create(&ws[t].th, NULL, worker_main, &ws[t]);
		if (ret < 0) {
			bx_err(eb, -ret, "load worker thread: %s", bx_strerror(ret));
			break;
		}
		started++;
	}
	if (started == c->threads) {
		wait_workers(c, ws, start);
	}
	for (t = 0; t < started; t++) {
		pthread_join(ws[t].th, NULL);
	}
	if (started == c->threads) {
		collect(ws, c->threads, res, start);
		res->send_window_s = c->duration_s;
	}
out_fini:
	for (t = 0; t < c->threads; t++) {
		worker_fini(&ws[t]);
	}
	bx_free(ws);
	if (ret < 0) {
		bx_ld_result_fini(res);
	}
	return ret;
}

void
bx_ld_result_fini(struct bx_ld_result *res)
{
	bx_free(res->recs);
	free(res->sample);
	res->recs = NULL;
	res->sample = NULL;
	res->nb_recs = 0;
}
