/*
 * The lwIP half of the DPDK port (dpdk_port.h): one worker's stack, its
 * listening pcb and its connections, on lwIP's raw API.
 *
 * Connections reuse conn.c unchanged. lwIP's recv callback chains the pbufs
 * on the connection (pend); they are copied into the connection's rx buffer
 * as it has room, and tcp_recved() is called only for what was copied, so
 * lwIP's receive window is the backpressure on a client that sends faster
 * than it reads. bx_conn_process() appends responses to tx, and tx goes to
 * tcp_write() as lwIP's send buffer allows; on_sent() resumes it. Every
 * callback runs inside bx_lw_input() or lwIP's timers, on this worker.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "dpdk_lwip.h"
#include "dpdk_port.h"

struct dconn {
	struct bx_conn c;
	struct tcp_pcb *pcb;
	struct pbuf *pend; /* received, not yet copied into c.rx */
	struct bx_dtcp *d;
	uint32_t ip4; /* the peer, network order */
	bool fin;     /* the peer closed its side */
	bool learned; /* reported to the filter once */
};

struct bx_dtcp {
	struct bx_dp_worker *w;
	void (*learn)(void *arg, uint32_t ip);
	void *learn_arg;
	struct bx_lw lw;
	bool lw_ok;
	struct tcp_pcb *listen;
	struct dconn *conns;
	uint32_t *free_stack;
	uint32_t nb_free, nb_conns;
	unsigned nb_open;
	char *mem;
	size_t mem_len;
	bool draining, forced;
	uint64_t now_ns;
};

/* ======================= Connections (lwIP raw API callbacks) ======================= */

static err_t on_recv(void *arg, struct tcp_pcb *pcb, struct pbuf *p, err_t err);
static err_t on_sent(void *arg, struct tcp_pcb *pcb, u16_t len);
static void on_err(void *arg, err_t err);

static void
conn_release(struct bx_dtcp *d, struct dconn *dc)
{
	if (dc->pend) {
		d->lw.f.pbuf_free(dc->pend);
		dc->pend = NULL;
	}
	dc->pcb = NULL;
	dc->c.fd = -1;
	/* a new generation: bx_ticket_abandoned() turns true for this one's tickets */
	__atomic_store_n(&dc->c.gen, dc->c.gen + 1, __ATOMIC_RELAXED);
	d->free_stack[d->nb_free++] = dc->c.idx;
	d->nb_open--;
	d->w->ax.stats.conns_closed++;
}

static void
conn_detach(struct bx_dtcp *d, struct tcp_pcb *pcb)
{
	d->lw.f.tcp_arg(pcb, NULL);
	d->lw.f.tcp_recv(pcb, NULL);
	d->lw.f.tcp_sent(pcb, NULL);
	d->lw.f.tcp_err(pcb, NULL);
}

/*
 * Close: a FIN after what lwIP still holds to send, or an RST when abort is
 * set or lwIP has no room for the FIN. Returns ERR_ABRT when the pcb is
 * gone (the value a callback must then return), ERR_OK otherwise.
 */
static err_t
conn_close(struct bx_dtcp *d, struct dconn *dc, bool abort)
{
	struct tcp_pcb *pcb = dc->pcb;

	if (dc->pend) { /* acknowledged unread data would turn the FIN into an RST */
		d->lw.f.tcp_recved(pcb, dc->pend->tot_len);
	}
	conn_detach(d, pcb);
	conn_release(d, dc);
	if (!abort && d->lw.f.tcp_close(pcb) == ERR_OK) {
		return ERR_OK;
	}
	d->lw.f.tcp_abort(pcb);
	return ERR_ABRT;
}

/* Copy what was received into rx while it has room; the window opens as much. */
static void
conn_feed(struct bx_dtcp *d, struct dconn *dc)
{
	struct bx_conn *c = &dc->c;

	while (dc->pend) {
		uint32_t room;
		u16_t n;

		bx_conn_rx_compact(c);
		room = bx_conn_rx_room(d->w, c);
		if (room == 0) {
			return;
		}
		n = (u16_t)BX_MIN(room, dc->pend->tot_len);
		d->lw.f.pbuf_copy_partial(dc->pend, c->rx + c->rx_len, n, 0);
		c->rx_len += n;
		d->w->ax.stats.bytes_in += n;
		dc->pend = d->lw.f.pbuf_free_header(dc->pend, n);
		d->lw.f.tcp_recved(dc->pcb, n);
	}
}

/* Hand tx to lwIP as far as its send buffer goes. false: the pcb failed. */
static bool
conn_write(struct bx_dtcp *d, struct dconn *dc)
{
	struct bx_conn *c = &dc->c;
	bool wrote = false;

	while (c->tx_sent < c->tx_len) {
		u16_t room = tcp_sndbuf(dc->pcb);
		uint32_t left = c->tx_len - c->tx_sent;
		u16_t n = (u16_t)BX_MIN(room, left);
		err_t e;

		if (n == 0) {
			break;
		}
		e = d->lw.f.tcp_write(dc->pcb, c->tx + c->tx_sent, n,
		                      TCP_WRITE_FLAG_COPY | (n < left ? TCP_WRITE_FLAG_MORE : 0));
		if (e == ERR_MEM) {
			break; /* segment queue full: on_sent calls again */
		}
		if (e != ERR_OK) {
			return false;
		}
		c->tx_sent += n;
		d->w->ax.stats.bytes_out += n;
		wrote = true;
	}
	if (wrote) {
		d->lw.f.tcp_output(dc->pcb);
	}
	return true;
}

/*
 * Everything a connection can do now: take received bytes, answer complete
 * requests, send, and close when done. Returns ERR_ABRT if the pcb was
 * aborted (callbacks must return it).
 */
/*
 * A 200 on this connection with signatures verified means its caller signed
 * with a hotkey admission accepted (a validator, with require_permit): its
 * address joins the reserved lane. Validators rarely publish an axon IP, so
 * the metagraph alone would leave most of them on the open lane.
 */
static void
conn_learn(struct bx_dtcp *d, struct dconn *dc, uint64_t ok_before)
{
	if (!dc->learned && d->learn && d->w->dp->sh.conf.verify_signatures &&
	    d->w->ax.stats.responses_ok > ok_before) {
		dc->learned = true;
		d->learn(d->learn_arg, ntohl(dc->ip4));
	}
}

static err_t
conn_pump(struct bx_dtcp *d, struct dconn *dc)
{
	struct bx_conn *c = &dc->c;
	uint64_t ok_before = d->w->ax.stats.responses_ok;

	for (int round = 0; round < 64; round++) {
		bool produced;

		conn_feed(d, dc);
		bx_conn_process(d->w, c);
		produced = c->tx_len > 0;
		if (!conn_write(d, dc)) {
			return conn_close(d, dc, true);
		}
		if (c->tx_sent < c->tx_len) {
			break; /* lwIP's send buffer is full: on_sent comes back */
		}
		c->tx_len = c->tx_sent = 0;
		conn_learn(d, dc, ok_before);
		/* tx is empty again: answer what backpressure held back */
		if (!produced || c->close_after) {
			break;
		}
	}
	if ((c->close_after || dc->fin) && c->tx_len == 0) {
		return conn_close(d, dc, false);
	}
	return ERR_OK;
}

static void
conn_peer(struct dconn *dc, const struct tcp_pcb *pcb)
{
	const ip4_addr_t *a = ip_2_ip4(&pcb->remote_ip);

	dc->ip4 = a->addr;
	inet_ntop(AF_INET, &a->addr, dc->c.peer.ip, sizeof(dc->c.peer.ip));
	dc->c.peer.port = pcb->remote_port;
	dc->c.peer.ip_key = bx_hash64(&a->addr, 4, 3); /* as conn.c keys IPv4 peers */
}

static err_t
on_accept(void *arg, struct tcp_pcb *pcb, err_t err)
{
	struct bx_dtcp *d = arg;
	struct dconn *dc;

	if (!d || err != ERR_OK || !pcb) {
		return ERR_VAL;
	}
	if (d->draining || d->nb_free == 0) {
		d->w->ax.stats.conns_refused++;
		d->lw.f.tcp_abort(pcb);
		return ERR_ABRT;
	}
	dc = &d->conns[d->free_stack[--d->nb_free]];
	dc->pcb = pcb;
	dc->pend = NULL;
	dc->fin = false;
	dc->learned = false;
	dc->c.fd = (int)dc->c.idx;
	dc->c.rx_off = dc->c.rx_len = 0;
	dc->c.tx_len = dc->c.tx_sent = 0;
	dc->c.recv_pending = dc->c.send_pending = false;
	dc->c.close_after = dc->c.closing = dc->c.has_partial = dc->c.pending = false;
	dc->c.stream = NULL;
	dc->c.gen++;
	dc->c.last_active_ns = d->now_ns;
	conn_peer(dc, pcb);
	dc->c.peer.conn = &dc->c;
	dc->c.peer.conn_gen = dc->c.gen;
	d->nb_open++;
	d->w->ax.stats.conns_accepted++;
	tcp_nagle_disable(pcb);
	d->lw.f.tcp_arg(pcb, dc);
	d->lw.f.tcp_recv(pcb, on_recv);
	d->lw.f.tcp_sent(pcb, on_sent);
	d->lw.f.tcp_err(pcb, on_err);
	return ERR_OK;
}

static err_t
on_recv(void *arg, struct tcp_pcb *pcb, struct pbuf *p, err_t err)
{
	struct dconn *dc = arg;
	struct bx_dtcp *d = dc->d;

	if (!p) {
		dc->fin = true; /* answer what is complete, then close */
		return conn_pump(d, dc);
	}
	if (err != ERR_OK) {
		d->lw.f.pbuf_free(p);
		return ERR_OK;
	}
	if (dc->pend) {
		d->lw.f.pbuf_cat(dc->pend, p);
	} else {
		dc->pend = p;
	}
	dc->c.last_active_ns = d->now_ns;
	return conn_pump(d, dc);
}

static err_t
on_sent(void *arg, struct tcp_pcb *pcb, u16_t len)
{
	struct dconn *dc = arg;

	dc->c.last_active_ns = dc->d->now_ns;
	return conn_pump(dc->d, dc);
}

static void
on_err(void *arg, err_t err)
{
	struct dconn *dc = arg;

	if (dc) { /* lwIP has freed the pcb (RST, or retransmissions gave up) */
		conn_release(dc->d, dc);
	}
}

/* Idle and slow connections (as port_uring.c), and the drain on stop. */
static void
sweep(struct bx_dtcp *d)
{
	const struct bx_dp_conf *cf = &d->w->dp->sh.conf;
	uint64_t idle_ns = (uint64_t)cf->idle_timeout_ms * 1000000ull;
	uint64_t req_ns = (uint64_t)cf->request_timeout_ms * 1000000ull;

	for (uint32_t i = 0; i < d->nb_conns; i++) {
		struct dconn *dc = &d->conns[i];
		struct bx_conn *c = &dc->c;
		bool quiet = c->rx_len == c->rx_off && c->tx_len == 0 && !dc->pend;

		if (c->fd < 0) {
			continue;
		}
		if (d->draining) {
			if (d->forced || quiet) {
				conn_close(d, dc, d->forced);
			} else if (!c->pending) {
				c->close_after = true;
				conn_pump(d, dc);
			}
			/* a deferred answer (or stream) still to come: it says connection: close */
			continue;
		}
		if ((c->has_partial && d->now_ns - c->partial_since_ns > req_ns) ||
		    (quiet && d->now_ns - c->last_active_ns > idle_ns)) {
			d->w->ax.stats.conns_timed_out++;
			conn_close(d, dc, false);
		}
	}
}

/* Before the stack goes: every connection and pcb, so no mbuf stays held. */
static void
abort_all(struct bx_dtcp *d)
{
	for (uint32_t i = 0; i < d->nb_conns; i++) {
		if (d->conns[i].c.fd >= 0 && d->conns[i].pcb) {
			conn_close(d, &d->conns[i], true);
		}
	}
	if (d->listen) {
		d->lw.f.tcp_close(d->listen);
		d->listen = NULL;
	}
}

static int
conns_alloc(struct bx_dtcp *d, const struct bx_dp_conf *cf, struct bx_errbuf *eb)
{
	uint32_t tx_cap = bx_conn_tx_cap(d->w);
	size_t per = ((size_t)cf->rx_buf + tx_cap + 4095) & ~(size_t)4095;

	d->nb_conns = cf->max_conns;
	d->conns = bx_calloc(d->nb_conns, sizeof(*d->conns));
	d->free_stack = bx_calloc(d->nb_conns, sizeof(*d->free_stack));
	if (!d->conns || !d->free_stack) {
		return -ENOMEM;
	}
	d->mem_len = per * d->nb_conns;
	d->mem = mmap(NULL, d->mem_len, PROT_READ | PROT_WRITE,
	              MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (d->mem == MAP_FAILED) {
		d->mem = NULL;
		return bx_err(eb, ENOMEM, "dataplane: worker %u: cannot map %zu MiB of buffers",
		              d->w->id, d->mem_len >> 20);
	}
	for (uint32_t i = 0; i < d->nb_conns; i++) {
		struct dconn *dc = &d->conns[i];

		dc->d = d;
		dc->c.fd = -1;
		dc->c.idx = i;
		dc->c.rx = d->mem + per * i;
		dc->c.tx = dc->c.rx + cf->rx_buf;
		d->free_stack[d->nb_conns - 1 - i] = i;
	}
	d->nb_free = d->nb_conns;
	return 0;
}

static int
stack_init(struct bx_dtcp *d, const struct bx_dtcp_conf *c, struct bx_errbuf *eb)
{
	struct bx_lw_conf lc = {
		.ip = c->ip,
		.netmask = c->netmask,
		.gw = c->gw,
		.mtu = 1500,
		.tx_pool = c->pool,
		.tx = c->tx,
	};
	ip_addr_t local;
	int r;

	memcpy(lc.mac, c->mac, 6);
	r = bx_lw_open(&d->lw, &lc, eb);
	if (r < 0) {
		return r;
	}
	d->lw_ok = true;
	d->listen = d->lw.f.tcp_new();
	if (!d->listen) {
		return bx_err(eb, ENOMEM, "dataplane: dpdk: lwIP tcp_new failed");
	}
	IP_ADDR4(&local, 0, 0, 0, 0);
	ip_2_ip4(&local)->addr = c->ip;
	if (d->lw.f.tcp_bind(d->listen, &local, c->port) != ERR_OK) {
		return bx_err(eb, EADDRINUSE, "dataplane: dpdk: lwIP cannot bind port %u", c->port);
	}
	d->listen = d->lw.f.tcp_listen_with_backlog(d->listen, 255);
	if (!d->listen) {
		return bx_err(eb, ENOMEM, "dataplane: dpdk: lwIP tcp_listen failed");
	}
	d->lw.f.tcp_arg(d->listen, d);
	d->lw.f.tcp_accept(d->listen, on_accept);
	return 0;
}

int
bx_dtcp_create(struct bx_dp_worker *w, const struct bx_dtcp_conf *c, struct bx_dtcp **out,
               struct bx_errbuf *eb)
{
	struct bx_dtcp *d = bx_aligned_alloc(64, sizeof(*d));
	int r;

	if (!d) {
		return -ENOMEM;
	}
	memset(d, 0, sizeof(*d));
	d->w = w;
	d->learn = c->learn;
	d->learn_arg = c->learn_arg;
	r = conns_alloc(d, &w->dp->sh.conf, eb);
	if (r == 0) {
		r = stack_init(d, c, eb);
	}
	if (r < 0) {
		bx_dtcp_destroy(d);
		return r;
	}
	*out = d;
	return 0;
}

void
bx_dtcp_destroy(struct bx_dtcp *d)
{
	if (!d) {
		return;
	}
	if (d->lw_ok) {
		abort_all(d);
		bx_lw_close(&d->lw);
	}
	if (d->mem) {
		munmap(d->mem, d->mem_len);
	}
	bx_free(d->conns);
	bx_free(d->free_stack);
	bx_free(d);
}

void
bx_dtcp_input(struct bx_dtcp *d, struct rte_mbuf *m, uint64_t now_ns)
{
	d->now_ns = now_ns;
	d->lw.now_ns = now_ns;
	bx_lw_input(&d->lw, m);
}

void
bx_dtcp_tick(struct bx_dtcp *d, uint64_t now_ns)
{
	d->now_ns = now_ns;
	d->lw.now_ns = now_ns;
	bx_lw_timers(&d->lw, now_ns);
}

void
bx_dtcp_sweep(struct bx_dtcp *d, uint64_t now_ns)
{
	d->now_ns = now_ns;
	d->lw.now_ns = now_ns;
	sweep(d);
}

void
bx_dtcp_drain(struct bx_dtcp *d, bool forced, uint64_t now_ns)
{
	d->now_ns = now_ns;
	d->lw.now_ns = now_ns;
	if (!d->draining) {
		d->draining = true;
		if (d->listen) {
			d->lw.f.tcp_arg(d->listen, NULL);
			d->lw.f.tcp_accept(d->listen, NULL);
			d->lw.f.tcp_close(d->listen);
			d->listen = NULL;
		}
	}
	d->forced = d->forced || forced;
	sweep(d);
}

/* A deferred answer came back for this connection (conn.c calls, on this worker). */
static void
pump_cb(struct bx_dp_worker *w, struct bx_conn *c)
{
	struct dconn *dc = (struct dconn *)(void *)c; /* c is dconn's first member */

	if (dc->pcb) {
		conn_pump(dc->d, dc);
	}
}

void
bx_dtcp_completions(struct bx_dtcp *d, uint64_t now_ns)
{
	d->now_ns = now_ns;
	d->lw.now_ns = now_ns;
	bx_conn_completions(d->w, pump_cb);
}

bool
bx_dtcp_idle(const struct bx_dtcp *d)
{
	return d->nb_open == 0 && !*d->lw.active_pcbs;
}
