/*
 * Port backends: how bytes get in and out. Each backend is one file with a
 * struct bx_port_ops; meson decides which files are built, server.c picks one
 * by name at start. Everything above the port (HTTP, the axon protocol) goes
 * through conn.c, so a DPDK backend reuses it unchanged.
 */
#ifndef BX_DP_PORT_H
#define BX_DP_PORT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <bx/dataplane.h>

#include "axon.h"

#define BX_QS_OFFLINE UINT64_MAX

struct bx_dp;

/* One connection's buffers and state, owned by one worker. */
struct bx_conn {
	int fd;
	uint32_t idx;
	char *rx;        /* receive buffer, rx_buf bytes */
	uint32_t rx_off; /* start of bytes not yet answered */
	uint32_t rx_len; /* end of bytes held */
	char *tx;        /* send buffer, tx_cap bytes */
	uint32_t tx_len; /* bytes queued */
	uint32_t tx_sent;
	bool recv_pending, send_pending;
	bool close_after; /* close once tx is sent */
	bool pending;     /* a handler deferred the request at rx_off (bx_call_defer) */
	struct bx_call_ticket *stream; /* the pending request's answer is streaming */
	uint32_t gen; /* bumped at accept and release: deferred answers find the right one */
	bool closing;
	bool has_partial; /* rx holds part of a request */
	uint64_t last_active_ns;
	uint64_t partial_since_ns;
	struct bx_peer peer;
};

struct bx_dp_worker {
	struct bx_dp *dp;
	unsigned id;
	unsigned cpu;
	pthread_t thread;
	bool started;
	struct bx_axon_ctx ax;
	int listen_fd;
	uint64_t qs; /* quiescent-state epoch for metagraph reclamation */
	int stop;    /* atomic: 1 = drain and exit */
	uint64_t drain_deadline_ns;
	int run_rc;
	void *priv; /* backend state */
} __attribute__((aligned(64)));

struct bx_port_ops {
	const char *name;
	/* Per worker, on the worker's thread, before run. */
	int (*init)(struct bx_dp_worker *w, struct bx_errbuf *eb);
	/* The event loop: returns when w->stop is set and the drain is done. */
	int (*run)(struct bx_dp_worker *w);
	/* From another thread: make run() look at w->stop now. */
	void (*wake)(struct bx_dp_worker *w);
	void (*fini)(struct bx_dp_worker *w);
};

#ifdef BX_HAVE_IO_URING
extern const struct bx_port_ops bx_port_uring_ops;
#endif
#ifdef BX_HAVE_DPDK
extern const struct bx_port_ops bx_port_dpdk_ops;
#endif

struct bx_dp {
	struct bx_axon_shared sh;
	const struct bx_port_ops *ops;
	unsigned nb_workers;
	struct bx_dp_worker *workers;
	uint16_t bound_port;
	uint64_t epoch; /* metagraph generation */
	pthread_mutex_t reload_lock;
	pthread_mutex_t start_lock;
	pthread_cond_t start_cond;
	unsigned nb_ready;
	int start_rc;
	char start_err[512];
	bool running;
};

/* ---- helpers for backends (conn.c, server.c) ---- */

/* Listening socket for conf (SO_REUSEPORT); port 0 binds any port. Returns fd
 * or -errno. */
int bx_dp_listen(const struct bx_dp_conf *c, uint16_t port, struct bx_errbuf *eb);
/* Fill peer from an accepted socket. */
void bx_conn_peer(struct bx_conn *c);

/*
 * Answer the complete requests in c->rx while c->tx has room for another
 * response (pipelining; backpressure once it has not). Consumed bytes are
 * dropped from rx. Sets close_after when the connection must close.
 */
void bx_conn_process(struct bx_dp_worker *w, struct bx_conn *c);
/*
 * Move unanswered bytes to the front of rx. Only while no receive is in
 * flight (the kernel writes at rx + rx_len).
 */
void bx_conn_rx_compact(struct bx_conn *c);
/*
 * Write the answers of deferred requests that completed (bx_ticket_complete)
 * and carry on with what was pipelined behind them; pump(w, c) is called for
 * each connection that got bytes to send. Ports call this once per loop
 * iteration; the axon context's wake hook (set by the port) interrupts a
 * blocking wait when a ticket completes.
 */
void bx_conn_completions(struct bx_dp_worker *w,
                         void (*pump)(struct bx_dp_worker *w, struct bx_conn *c));
/* Bytes the next recv may use at rx + rx_len (0 = paused: rx full or closing).
 */
uint32_t bx_conn_rx_room(const struct bx_dp_worker *w, const struct bx_conn *c);
uint32_t bx_conn_tx_cap(const struct bx_dp_worker *w);

/* Quiescent-state marks around blocking waits (server.c reclaims metagraphs).
 */
static inline void
bx_worker_offline(struct bx_dp_worker *w)
{
	__atomic_store_n(&w->qs, BX_QS_OFFLINE, __ATOMIC_SEQ_CST);
}

static inline void
bx_worker_online(struct bx_dp_worker *w)
{
	__atomic_store_n(&w->qs, __atomic_load_n(&w->dp->epoch, __ATOMIC_SEQ_CST),
	                 __ATOMIC_SEQ_CST);
}

#endif
