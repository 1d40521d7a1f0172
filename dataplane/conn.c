/*
 * Connection logic shared by every port backend: pipelined requests out of
 * the receive buffer, responses into the send buffer, backpressure when the
 * send side is slow (no parsing while the send buffer lacks room for one more
 * response), and the listening socket.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "port.h"

#define HEAD_ROOM 8192 /* room for a response head beyond the body scratch */

uint32_t
bx_conn_tx_cap(const struct bx_dp_worker *w)
{
	return 2 * w->dp->sh.conf.tx_buf + HEAD_ROOM;
}

uint32_t
bx_conn_rx_room(const struct bx_dp_worker *w, const struct bx_conn *c)
{
	if (c->closing || c->close_after) {
		return 0;
	}
	return w->dp->sh.conf.rx_buf - c->rx_len;
}

void
bx_conn_rx_compact(struct bx_conn *c)
{
	if (c->rx_off == 0) {
		return;
	}
	memmove(c->rx, c->rx + c->rx_off, c->rx_len - c->rx_off);
	c->rx_len -= c->rx_off;
	c->rx_off = 0;
}

/*
 * A streamed answer (bx_ticket_stream): the head, then what the producer
 * wrote, as tx has room. When it ends, the request leaves rx and the
 * connection carries on with what was pipelined behind it.
 */
static void
stream_flush(struct bx_dp_worker *w, struct bx_conn *c)
{
	struct bx_call_ticket *t = c->stream;
	const struct bx_http_req *rp = NULL;
	uint32_t tx_cap = bx_conn_tx_cap(w);
	struct bx_http_req req;
	struct bx_obuf out;
	uint32_t req_len;
	int r;

	if (!t->head_sent) {
		long n;

		if (tx_cap - c->tx_len < HEAD_ROOM) {
			return; /* the head goes out once tx has room */
		}
		n = bx_http_parse_request(c->rx + c->rx_off, c->rx_len - c->rx_off, &w->dp->sh.lim,
		                          &req);
		if (n <= 0) { /* cannot happen: the same bytes parsed before */
			bx_axon_stream_orphan(&w->ax, t); /* released when it completes */
			c->stream = NULL;
			c->close_after = true;
			return;
		}
		if (__atomic_load_n(&w->stop, __ATOMIC_RELAXED)) {
			req.keep_alive = false;
		}
		t->req_len = (uint32_t)n;
		rp = &req;
	}
	req_len = t->req_len; /* t is released when the stream ends */
	bx_obuf_init(&out, c->tx + c->tx_len, tx_cap - c->tx_len);
	r = bx_axon_stream(&w->ax, rp, &c->peer, t, &out);
	c->tx_len += (uint32_t)out.len; /* no overflow: the head fits HEAD_ROOM, chunks what fits */
	if (r == BX_AXON_PENDING) {
		return;
	}
	c->rx_off += req_len;
	c->stream = NULL;
	c->pending = false;
	c->last_active_ns = bx_time_ns();
	if (r == BX_AXON_CLOSE) {
		c->close_after = true;
	}
}

void
bx_conn_process(struct bx_dp_worker *w, struct bx_conn *c)
{
	const struct bx_axon_shared *sh = &w->dp->sh;
	uint32_t tx_cap = bx_conn_tx_cap(w);
	struct bx_http_req req;
	uint64_t t0;
	int r;

	if (c->stream) {
		stream_flush(w, c);
	}
	while (!c->close_after && !c->pending && c->rx_off < c->rx_len) {
		struct bx_obuf out;
		long n;

		if (tx_cap - c->tx_len < sh->conf.tx_buf + HEAD_ROOM) {
			break; /* backpressure: wait for the send side */
		}
		t0 = bx_time_ns();
		n = bx_http_parse_request(c->rx + c->rx_off, c->rx_len - c->rx_off, &sh->lim, &req);
		if (n > 0) {
			/* receive: since the first byte, when the request came in pieces */
			bx_lathist_record(&w->ax.stats.stage[BX_DP_S_RECEIVE],
			                  c->has_partial ? t0 - c->partial_since_ns : 0);
			bx_lathist_record(&w->ax.stats.stage[BX_DP_S_PARSE], bx_time_ns() - t0);
		}
		bx_obuf_init(&out, c->tx + c->tx_len, tx_cap - c->tx_len);
		if (n == BX_HTTP_INCOMPLETE) {
			if (c->rx_off == 0 && c->rx_len == sh->conf.rx_buf) {
				/* cannot happen with max_head + max_body <= rx_buf; be safe */
				bx_axon_http_error(&w->ax, 413, &out);
				c->tx_len += (uint32_t)out.len;
				c->close_after = true;
			}
			break;
		}
		if (n < 0) {
			bx_axon_http_error(&w->ax, (int)-n, &out);
			c->tx_len += (uint32_t)out.len;
			c->close_after = true;
			break;
		}
		if (__atomic_load_n(&w->stop, __ATOMIC_RELAXED)) {
			req.keep_alive = false; /* draining: this answer is the connection's last */
		}
		r = bx_axon_handle(&w->ax, &req, &c->peer, &out);
		if (r == BX_AXON_PENDING) {
			/* the request stays at rx_off until its ticket completes */
			c->pending = true;
			break;
		}
		if (r == BX_AXON_CLOSE) {
			c->close_after = true;
		}
		if (out.overflow) { /* a response must fit; drop the connection if not */
			c->close_after = true;
			out.len = 0;
		}
		c->tx_len += (uint32_t)out.len;
		c->rx_off += (uint32_t)n;
	}
	if (c->rx_off == c->rx_len && !c->recv_pending) {
		c->rx_off = c->rx_len = 0; /* the common case: nothing left, nothing to move */
	}
	if (c->rx_len > c->rx_off && !c->close_after) {
		if (!c->has_partial) {
			c->has_partial = true;
			c->partial_since_ns = bx_time_ns();
		}
	} else {
		c->has_partial = false;
	}
}

void
bx_conn_completions(struct bx_dp_worker *w, void (*pump)(struct bx_dp_worker *w, struct bx_conn *c))
{
	const struct bx_axon_shared *sh = &w->dp->sh;
	struct bx_call_ticket *t;

	while ((t = bx_axon_next_done(&w->ax)) != NULL) {
		struct bx_conn *c = t->conn;
		struct bx_http_req req;
		struct bx_obuf out;
		uint32_t tx_cap = bx_conn_tx_cap(w);
		long n;

		if (!c || c->gen != t->conn_gen || !c->pending || c->closing || c->fd < 0 ||
		    (c->stream && c->stream != t)) {
			bx_axon_stream_orphan(&w->ax, t); /* its connection is gone */
			continue;
		}
		/* streamed, unless it failed before the head went out: then an error answer */
		if (t->seen_stream && !(t->seen_done && t->fail_status && !t->head_sent)) {
			c->stream = t;
			bx_conn_process(w, c); /* the stream, then what is pipelined behind it */
			pump(w, c);
			continue;
		}
		if (!t->seen_done) {
			continue; /* cannot happen: a ticket is queued to stream or when done */
		}
		n = bx_http_parse_request(c->rx + c->rx_off, c->rx_len - c->rx_off, &sh->lim, &req);
		c->pending = false;
		if (n <= 0) { /* cannot happen: the same bytes parsed before */
			bx_axon_ticket_release(&w->ax, t);
			c->close_after = true;
			pump(w, c);
			continue;
		}
		if (__atomic_load_n(&w->stop, __ATOMIC_RELAXED)) {
			req.keep_alive = false;
		}
		/* room was there when the request was taken, and tx only shrank since */
		bx_obuf_init(&out, c->tx + c->tx_len, tx_cap - c->tx_len);
		if (bx_axon_finish(&w->ax, &req, &c->peer, t, &out) == BX_AXON_CLOSE) {
			c->close_after = true;
		}
		if (out.overflow) {
			c->close_after = true;
			out.len = 0;
		}
		c->tx_len += (uint32_t)out.len;
		c->rx_off += (uint32_t)n;
		c->last_active_ns = bx_time_ns();
		bx_conn_process(w, c); /* what was pipelined behind it */
		pump(w, c);
	}
}

void
bx_conn_peer(struct bx_conn *c)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	c->peer.ip[0] = 0;
	c->peer.port = 0;
	c->peer.ip_key = 0;
	if (getpeername(c->fd, (struct sockaddr *)&ss, &sl) < 0) {
		return;
	}
	if (ss.ss_family == AF_INET) {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;

		inet_ntop(AF_INET, &a->sin_addr, c->peer.ip, sizeof(c->peer.ip));
		c->peer.port = ntohs(a->sin_port);
		c->peer.ip_key = bx_hash64(&a->sin_addr, 4, 3);
	} else if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;

		if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr)) {
			inet_ntop(AF_INET, a->sin6_addr.s6_addr + 12, c->peer.ip,
			          sizeof(c->peer.ip));
			c->peer.ip_key = bx_hash64(a->sin6_addr.s6_addr + 12, 4, 3);
		} else {
			inet_ntop(AF_INET6, &a->sin6_addr, c->peer.ip, sizeof(c->peer.ip));
			/* rate-limit IPv6 callers per /64 */
			c->peer.ip_key = bx_hash64(&a->sin6_addr, 8, 3);
		}
		c->peer.port = ntohs(a->sin6_port);
	}
}

int
bx_dp_listen(const struct bx_dp_conf *c, uint16_t port, struct bx_errbuf *eb)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int fd, one = 1;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, c->listen_addr, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;

		a->sin_family = AF_INET;
		a->sin_port = htons(port);
		sl = sizeof(*a);
	} else if (inet_pton(AF_INET6, c->listen_addr, &((struct sockaddr_in6 *)&ss)->sin6_addr) ==
	           1) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;

		a->sin6_family = AF_INET6;
		a->sin6_port = htons(port);
		sl = sizeof(*a);
	} else {
		return bx_err(eb, EINVAL, "dataplane: listen address \"%s\" is not an IP literal",
		              c->listen_addr);
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		return bx_err(eb, errno, "dataplane: socket: %s", bx_strerror(errno));
	}
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0) {
		int e = errno;

		close(fd);
		return bx_err(eb, e, "dataplane: setsockopt: %s", bx_strerror(e));
	}
	if (bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 4096) < 0) {
		int e = errno;

		close(fd);
		return bx_err(eb, e, "dataplane: cannot listen on %s:%u: %s", c->listen_addr, port,
		              bx_strerror(e));
	}
	return fd;
}

bool
bx_ticket_abandoned(const struct bx_call_ticket *t)
{
	uint32_t *busy = &t->ax->wakers; /* the port frees its connections only once this is 0 */
	const struct bx_conn *c;
	bool gone;

	__atomic_fetch_add(busy, 1, __ATOMIC_SEQ_CST);
	c = __atomic_load_n(&t->conn, __ATOMIC_SEQ_CST); /* NULL once the worker stopped */
	/* Read while the owning worker may be closing or reusing the connection. */
	gone = c == NULL || __atomic_load_n(&c->gen, __ATOMIC_RELAXED) != t->conn_gen ||
	       __atomic_load_n(&c->closing, __ATOMIC_RELAXED);
	__atomic_fetch_sub(busy, 1, __ATOMIC_SEQ_CST);
	return gone;
}
