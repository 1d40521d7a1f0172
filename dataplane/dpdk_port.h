/*
 * The two halves of the DPDK port and what they share. port_dpdk.c is the
 * DPDK side (queues, classification, filter, exception path, the loop);
 * dpdk_tcp.c is the lwIP side (the stack, its connections, conn.c). They
 * are separate files because they cannot share headers: rte_ethdev.h pulls
 * in glibc's <netinet/ip6.h>, whose struct ip6_hdr lwIP defines again.
 */
#ifndef BX_DP_DPDK_PORT_H
#define BX_DP_DPDK_PORT_H

#include <stdbool.h>
#include <stdint.h>

#include "port.h"

struct rte_mbuf;
struct rte_mempool;

#define BX_DPDK_TX_CAP 128

/* Frames for one TX queue, sent as a burst. */
struct bx_txbuf {
	struct rte_mbuf *m[BX_DPDK_TX_CAP];
	unsigned n;
	uint64_t since_ns;        /* when the oldest queued frame came */
	void (*flush)(void *arg); /* sends (or frees) all n frames; sets n = 0 */
	void *arg;
};

struct bx_dtcp_conf {
	uint8_t mac[6];
	uint32_t ip, netmask, gw; /* network order */
	uint16_t port;            /* the service's TCP port */
	struct rte_mempool *pool; /* mbufs for frames the stack sends */
	struct bx_txbuf *tx;      /* where they go */
	/* a peer whose request verified and was admitted (host-order IPv4); may be NULL */
	void (*learn)(void *arg, uint32_t ip);
	void *learn_arg;
};

/* Bytes of private area the stack's mbuf pools need (dpdk_lwip.c's RX glue). */
unsigned bx_lw_mbuf_priv_size(void);

/* One worker's TCP/IP stack and connections. Touched by that worker only. */
struct bx_dtcp;

/* Start-up: load the worker's lwIP, allocate connections, listen. */
int bx_dtcp_create(struct bx_dp_worker *w, const struct bx_dtcp_conf *c, struct bx_dtcp **out,
                   struct bx_errbuf *eb);
/* Abort every connection (no mbuf stays held) and put the stack away. */
void bx_dtcp_destroy(struct bx_dtcp *t);
/* One received frame for the stack (ARP, or IPv4 that passed the filter); consumed. */
void bx_dtcp_input(struct bx_dtcp *t, struct rte_mbuf *m, uint64_t now_ns);
/* lwIP's timers when due. */
void bx_dtcp_tick(struct bx_dtcp *t, uint64_t now_ns);
/* Close idle and slow connections; while draining, close what is done. */
void bx_dtcp_sweep(struct bx_dtcp *t, uint64_t now_ns);
/* Stop accepting and close connections as they finish; forced: close all now. */
void bx_dtcp_drain(struct bx_dtcp *t, bool forced, uint64_t now_ns);
/* Answers of deferred requests (bx_call_defer) that came back: write them. */
void bx_dtcp_completions(struct bx_dtcp *t, uint64_t now_ns);
/* No connection open and nothing left for lwIP to send. */
bool bx_dtcp_idle(const struct bx_dtcp *t);

#endif
