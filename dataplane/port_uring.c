/*
 * io_uring port (liburing >= 2.3, kernel TCP stack): one ring and one
 * SO_REUSEPORT listener per worker, run to completion on the worker's
 * thread: multishot accept -> recv into the connection's fixed buffer ->
 * parse -> handle -> send from its fixed buffer. Buffers come from one
 * mapping made at start-up (max_conns x (rx + tx)), touched lazily; nothing
 * is allocated per request and nothing is shared between workers.
 *
 * Per connection at most one recv and one send are in flight. A recv is
 * posted only while the receive buffer has room and the connection is not
 * closing; requests are parsed only while the send buffer has room for one
 * more response (conn.c), so a slow reader stalls its own connection and
 * nobody else's. A 500 ms tick closes idle (idle_timeout_ms) and slow
 * (request_timeout_ms) connections and drives the drain on stop.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <liburing.h>

#include "port.h"

enum {
	T_RECV = 0,
	T_SEND = 1,
	T_ACCEPT = 2,
	T_TICK = 3,
	T_WAKE = 4,
	T_IGNORE = 5
};

#define TAG_MASK 7ull

struct uw {
	struct io_uring ring;
	bool ring_ok;
	struct bx_conn *conns;
	uint32_t *free_stack;
	uint32_t nb_free;
	uint32_t nb_conns;
	unsigned nb_open;
	char *mem;
	size_t mem_len;
	int efd;
	uint64_t efd_val;
	struct __kernel_timespec tick;
	bool accept_armed;
	bool draining;
	bool forced;
} __attribute__((aligned(8)));

static inline uint64_t
ud(const void *p, unsigned tag)
{
	return (uint64_t)(uintptr_t)p | tag;
}

static struct io_uring_sqe *
sqe_get(struct uw *u)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);

	if (!sqe) {
		io_uring_submit(&u->ring);
		sqe = io_uring_get_sqe(&u->ring);
	}
	return sqe;
}

static void
arm_accept(struct bx_dp_worker *w, struct uw *u)
{
	struct io_uring_sqe *sqe;

	if (u->accept_armed || u->draining) {
		return;
	}
	sqe = sqe_get(u);
	if (!sqe) {
		return;
	}
	io_uring_prep_multishot_accept(sqe, w->listen_fd, NULL, NULL, SOCK_CLOEXEC);
	io_uring_sqe_set_data64(sqe, ud(u, T_ACCEPT));
	u->accept_armed = true;
}

static void
arm_tick(struct uw *u)
{
	struct io_uring_sqe *sqe = sqe_get(u);

	if (!sqe) {
		return;
	}
	io_uring_prep_timeout(sqe, &u->tick, 0, 0);
	io_uring_sqe_set_data64(sqe, ud(u, T_TICK));
}

static void
arm_wake(struct uw *u)
{
	struct io_uring_sqe *sqe = sqe_get(u);

	if (!sqe) {
		return;
	}
	io_uring_prep_read(sqe, u->efd, &u->efd_val, sizeof(u->efd_val), 0);
	io_uring_sqe_set_data64(sqe, ud(u, T_WAKE));
}

static void
conn_release_if_done(struct bx_dp_worker *w, struct uw *u, struct bx_conn *c)
{
	if (!c->closing || c->recv_pending || c->send_pending) {
		return;
	}
	close(c->fd);
	c->fd = -1;
	c->closing = false;
	/* a new generation: bx_ticket_abandoned() stays true for the old one's tickets */
	__atomic_store_n(&c->gen, c->gen + 1, __ATOMIC_RELAXED);
	u->free_stack[u->nb_free++] = c->idx;
	u->nb_open--;
	w->ax.stats.conns_closed++;
}

static void
conn_close(struct bx_dp_worker *w, struct uw *u, struct bx_conn *c)
{
	if (c->fd < 0) {
		return;
	}
	if (!c->closing) {
		/* Atomic: bx_ticket_abandoned() reads it from scheduler workers. */
		__atomic_store_n(&c->closing, true, __ATOMIC_RELAXED);
		if (c->recv_pending || c->send_pending) {
			shutdown(c->fd, SHUT_RDWR); /* completes what is in flight */
		}
	}
	conn_release_if_done(w, u, c);
}

/* Post what the connection needs: a send for queued bytes, a recv when there is
 * room. */
static void
conn_pump(struct bx_dp_worker *w, struct uw *u, struct bx_conn *c)
{
	struct io_uring_sqe *sqe;

	if (c->closing) {
		return;
	}
	if (!c->send_pending && c->tx_len > c->tx_sent) {
		sqe = sqe_get(u);
		if (sqe) {
			io_uring_prep_send(sqe, c->fd, c->tx + c->tx_sent, c->tx_len - c->tx_sent,
			                   MSG_NOSIGNAL);
			io_uring_sqe_set_data64(sqe, ud(c, T_SEND));
			c->send_pending = true;
		}
	}
	if (c->close_after && c->tx_len == c->tx_sent && !c->send_pending) {
		conn_close(w, u, c);
		return;
	}
	if (!c->recv_pending) {
		uint32_t room;

		bx_conn_rx_compact(c);
		room = bx_conn_rx_room(w, c);

		if (room) {
			sqe = sqe_get(u);
			if (sqe) {
				io_uring_prep_recv(sqe, c->fd, c->rx + c->rx_len, room, 0);
				io_uring_sqe_set_data64(sqe, ud(c, T_RECV));
				c->recv_pending = true;
			}
		}
	}
}

static void
on_accept(struct bx_dp_worker *w, struct uw *u, struct io_uring_cqe *cqe)
{
	struct bx_conn *c;
	int one = 1;

	if (!(cqe->flags & IORING_CQE_F_MORE)) {
		u->accept_armed = false;
	}
	if (cqe->res < 0) {
		return;
	}
	if (u->draining || u->nb_free == 0) {
		close(cqe->res);
		w->ax.stats.conns_refused++;
		return;
	}
	c = &u->conns[u->free_stack[--u->nb_free]];
	c->fd = cqe->res;
	c->rx_off = c->rx_len = 0;
	c->tx_len = 0;
	c->tx_sent = 0;
	c->recv_pending = c->send_pending = false;
	c->close_after = c->closing = c->has_partial = c->pending = false;
	c->stream = NULL;
	c->gen++;
	c->last_active_ns = bx_time_ns();
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	bx_conn_peer(c);
	c->peer.conn = c;
	c->peer.conn_gen = c->gen;
	u->nb_open++;
	w->ax.stats.conns_accepted++;
	conn_pump(w, u, c);
}

static void
on_recv(struct bx_dp_worker *w, struct uw *u, struct bx_conn *c, int res)
{
	c->recv_pending = false;
	if (c->closing) {
		conn_release_if_done(w, u, c);
		return;
	}
	if (res <= 0) {
		if (res == -EINTR || res == -EAGAIN) {
			conn_pump(w, u, c);
			return;
		}
		conn_close(w, u, c);
		return;
	}
	c->rx_len += (uint32_t)res;
	w->ax.stats.bytes_in += (uint64_t)res;
	c->last_active_ns = bx_time_ns();
	bx_conn_process(w, c);
	conn_pump(w, u, c);
}

static void
on_send(struct bx_dp_worker *w, struct uw *u, struct bx_conn *c, int res)
{
	c->send_pending = false;
	if (c->closing) {
		conn_release_if_done(w, u, c);
		return;
	}
	if (res < 0) {
		if (res == -EINTR || res == -EAGAIN) {
			conn_pump(w, u, c);
			return;
		}
		conn_close(w, u, c);
		return;
	}
	c->tx_sent += (uint32_t)res;
	w->ax.stats.bytes_out += (uint64_t)res;
	c->last_active_ns = bx_time_ns();
	if (c->tx_sent == c->tx_len) {
		c->tx_sent = c->tx_len = 0;
		/* room again: answer requests held back by backpressure */
		if (c->rx_len > c->rx_off && !c->close_after) {
			bx_conn_process(w, c);
		}
	}
	conn_pump(w, u, c);
}

static void
pump_cb(struct bx_dp_worker *w, struct bx_conn *c)
{
	conn_pump(w, w->priv, c);
}

static void uring_wake(struct bx_dp_worker *w);

static void
wake_cb(void *arg)
{
	uring_wake(arg);
}

static void
sweep(struct bx_dp_worker *w, struct uw *u)
{
	const struct bx_dp_conf *cf = &w->dp->sh.conf;
	uint64_t now = bx_time_ns();

	for (uint32_t i = 0; i < u->nb_conns; i++) {
		struct bx_conn *c = &u->conns[i];

		if (c->fd < 0 || c->closing) {
			continue;
		}
		if (u->draining) {
			if (u->forced || (c->rx_len == c->rx_off && c->tx_len == 0)) {
				conn_close(w, u, c);
				continue;
			}
			if (c->rx_len == c->rx_off) {
				/* only a response left to send: close after it */
				c->close_after = true;
				conn_pump(w, u, c);
			}
			/* a request half in: let it finish (answered with connection: close,
			 * see bx_conn_process) or meet the drain deadline */
			continue;
		}
		bool slow = c->has_partial && now - c->partial_since_ns >
		                                      (uint64_t)cf->request_timeout_ms * 1000000ull;
		bool idle = c->rx_len == c->rx_off && c->tx_len == 0 &&
		            now - c->last_active_ns > (uint64_t)cf->idle_timeout_ms * 1000000ull;

		if (slow || idle) {
			w->ax.stats.conns_timed_out++;
			conn_close(w, u, c);
		}
	}
}

static void
start_drain(struct bx_dp_worker *w, struct uw *u)
{
	struct io_uring_sqe *sqe;

	u->draining = true;
	if (u->accept_armed) {
		sqe = sqe_get(u);
		if (sqe) {
			io_uring_prep_cancel64(sqe, ud(u, T_ACCEPT), 0);
			io_uring_sqe_set_data64(sqe, ud(u, T_IGNORE));
		}
	}
	sweep(w, u);
}

static int
uring_init(struct bx_dp_worker *w, struct bx_errbuf *eb)
{
	const struct bx_dp_conf *cf = &w->dp->sh.conf;
	struct uw *u;
	struct io_uring_params p;
	size_t per;
	uint32_t tx_cap = bx_conn_tx_cap(w);
	int r;

	u = bx_aligned_alloc(64, sizeof(*u));
	if (!u) {
		return -ENOMEM;
	}
	memset(u, 0, sizeof(*u));
	u->efd = -1;
	w->priv = u;
	u->nb_conns = cf->max_conns;
	u->conns = bx_calloc(u->nb_conns, sizeof(*u->conns));
	u->free_stack = bx_calloc(u->nb_conns, sizeof(*u->free_stack));
	if (!u->conns || !u->free_stack) {
		return -ENOMEM;
	}
	per = (size_t)cf->rx_buf + tx_cap;
	per = (per + 4095) & ~(size_t)4095;
	u->mem_len = per * u->nb_conns;
	u->mem = mmap(NULL, u->mem_len, PROT_READ | PROT_WRITE,
	              MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (u->mem == MAP_FAILED) {
		u->mem = NULL;
		return bx_err(eb, ENOMEM, "dataplane: worker %u: cannot map %zu MiB of buffers",
		              w->id, u->mem_len >> 20);
	}
	for (uint32_t i = 0; i < u->nb_conns; i++) {
		struct bx_conn *c = &u->conns[i];

		c->fd = -1;
		c->idx = i;
		c->rx = u->mem + per * i;
		c->tx = c->rx + cf->rx_buf;
		u->free_stack[u->nb_conns - 1 - i] = i;
	}
	u->nb_free = u->nb_conns;
	u->efd = eventfd(0, EFD_CLOEXEC);
	if (u->efd < 0) {
		return bx_err(eb, errno, "dataplane: eventfd: %s", bx_strerror(errno));
	}

	memset(&p, 0, sizeof(p));
	p.flags = IORING_SETUP_CQSIZE | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
	p.cq_entries = BX_MAX(cf->ring_entries * 2, cf->max_conns * 4);
	r = io_uring_queue_init_params(cf->ring_entries, &u->ring, &p);
	if (r == -EINVAL) { /* older kernel: plain ring */
		memset(&p, 0, sizeof(p));
		p.flags = IORING_SETUP_CQSIZE;
		p.cq_entries = BX_MAX(cf->ring_entries * 2, cf->max_conns * 4);
		r = io_uring_queue_init_params(cf->ring_entries, &u->ring, &p);
	}
	if (r < 0) {
		return bx_err(eb, -r, "dataplane: worker %u: io_uring_queue_init: %s", w->id,
		              bx_strerror(r));
	}
	u->ring_ok = true;
	w->ax.wake = wake_cb; /* bx_ticket_complete() from other threads */
	w->ax.wake_arg = w;
	u->tick.tv_sec = 0;
	u->tick.tv_nsec = 500000000LL;
	return 0;
}

static int
uring_run(struct bx_dp_worker *w)
{
	struct uw *u = w->priv;

	arm_accept(w, u);
	arm_tick(u);
	arm_wake(u);
	for (;;) {
		struct io_uring_cqe *cqe;
		unsigned head, n = 0;
		int r;

		bx_worker_offline(w);
		r = io_uring_submit_and_wait(&u->ring, 1);
		bx_worker_online(w);
		if (r < 0 && r != -EINTR && r != -ETIME && r != -EBUSY) {
			BX_LOG(ERR, "dataplane: worker %u: io_uring_submit_and_wait: %s", w->id,
			       bx_strerror(r));
			return r;
		}
		io_uring_for_each_cqe(&u->ring, head, cqe) {
			uint64_t d = io_uring_cqe_get_data64(cqe);
			void *p = (void *)(uintptr_t)(d & ~TAG_MASK);

			n++;
			switch (d & TAG_MASK) {
			case T_RECV:
				on_recv(w, u, p, cqe->res);
				break;
			case T_SEND:
				on_send(w, u, p, cqe->res);
				break;
			case T_ACCEPT:
				on_accept(w, u, cqe);
				break;
			case T_TICK:
				sweep(w, u);
				arm_tick(u);
				break;
			case T_WAKE:
				if (!__atomic_load_n(&w->stop, __ATOMIC_ACQUIRE)) {
					arm_wake(u);
				}
				break;
			default:
				break;
			}
		}
		io_uring_cq_advance(&u->ring, n);
		bx_conn_completions(w, pump_cb); /* deferred answers that came back */
		if (__atomic_load_n(&w->stop, __ATOMIC_ACQUIRE)) {
			if (!u->draining) {
				start_drain(w, u);
			}
			if (!u->forced && bx_time_ns() >= w->drain_deadline_ns) {
				u->forced = true;
				sweep(w, u);
			}
			if (u->nb_open == 0) {
				break;
			}
		} else if (!u->accept_armed) {
			arm_accept(w, u);
		}
	}
	return 0;
}

static void
uring_wake(struct bx_dp_worker *w)
{
	struct uw *u = w->priv;
	uint64_t one = 1;

	if (u && u->efd >= 0 && write(u->efd, &one, sizeof(one)) < 0) {
		BX_LOG(WARN, "dataplane: worker %u: eventfd write: %s", w->id, bx_strerror(errno));
	}
}

static void
uring_fini(struct bx_dp_worker *w)
{
	struct uw *u = w->priv;

	if (!u) {
		return;
	}
	if (u->ring_ok) {
		io_uring_queue_exit(&u->ring); /* cancels what is still in flight */
	}
	if (u->conns) {
		for (uint32_t i = 0; i < u->nb_conns; i++) {
			if (u->conns[i].fd >= 0) {
				close(u->conns[i].fd);
			}
		}
	}
	if (u->efd >= 0) {
		close(u->efd);
	}
	if (u->mem) {
		munmap(u->mem, u->mem_len);
	}
	bx_free(u->conns);
	bx_free(u->free_stack);
	bx_free(u);
	w->priv = NULL;
}

const struct bx_port_ops bx_port_uring_ops = {
	.name = "io_uring",
	.init = uring_init,
	.run = uring_run,
	.wake = uring_wake,
	.fini = uring_fini,
};
