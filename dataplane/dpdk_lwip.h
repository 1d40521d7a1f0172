/*
 * One lcore's TCP/IP stack: a private copy of Debian's liblwip (2.1.3) and
 * the glue between DPDK mbufs and lwIP pbufs.
 *
 * Debian builds liblwip for the GNU Hurd translator: NO_SYS=0, core locking,
 * MEM_LIBC_MALLOC, and all of the stack's state in globals (tcp_active_pcbs,
 * netif_list, the timeout list). One process-wide copy would need the core
 * lock on every call from every lcore. Instead each lcore loads its own copy
 * of the shared object (a memfd holding the file's bytes, dlopen'ed
 * RTLD_LOCAL: the dynamic loader sees a new file and maps a new instance with
 * its own globals) and calls it through a table of dlsym'ed entry points.
 * The raw API is then used from that lcore only, tcpip_init() is never
 * called, so the core lock is never taken and sys_check_core_locking() has
 * no tcpip thread to compare with. Nothing in the process may link liblwip
 * directly: a global definition would capture every copy's internal calls.
 *
 * Receive is zero-copy: an mbuf becomes a PBUF_REF custom pbuf whose
 * struct pbuf_custom lives in the mbuf's private area; lwIP's last
 * pbuf_free() returns the mbuf to its pool. Transmit copies lwIP's frame
 * (one pbuf, LWIP_NETIF_TX_SINGLE_PBUF) into an mbuf that joins the lcore's
 * TX burst.
 */
#ifndef BX_DP_DPDK_LWIP_H
#define BX_DP_DPDK_LWIP_H

#include <netif/ethernet.h>
#include <stdbool.h>
#include <stdint.h>

#include <lwip/etharp.h>
#include <lwip/init.h>
#include <lwip/netif.h>
#include <lwip/pbuf.h>
#include <lwip/tcp.h>
#include <lwip/timeouts.h>

#include <bx/platform.h>

#include "dpdk_port.h"

/* The entry points bx uses, looked up in each copy. */
#define BX_LWIP_FNS(X)             \
	X(lwip_init)               \
	X(netif_add)               \
	X(netif_remove)            \
	X(netif_set_default)       \
	X(netif_set_up)            \
	X(netif_set_link_up)       \
	X(ethernet_input)          \
	X(etharp_output)           \
	X(sys_check_timeouts)      \
	X(pbuf_alloc)              \
	X(pbuf_alloced_custom)     \
	X(pbuf_free)               \
	X(pbuf_cat)                \
	X(pbuf_copy_partial)       \
	X(pbuf_free_header)        \
	X(tcp_new)                 \
	X(tcp_bind)                \
	X(tcp_listen_with_backlog) \
	X(tcp_accept)              \
	X(tcp_arg)                 \
	X(tcp_recv)                \
	X(tcp_sent)                \
	X(tcp_err)                 \
	X(tcp_write)               \
	X(tcp_output)              \
	X(tcp_recved)              \
	X(tcp_close)               \
	X(tcp_abort)

struct bx_lwip_fns {
#define BX_LWIP_FN_PTR(n) __typeof__(n) *n;
	BX_LWIP_FNS(BX_LWIP_FN_PTR)
#undef BX_LWIP_FN_PTR
};

struct bx_lw_conf {
	const char *lib_path; /* liblwip.so.0 to copy; NULL: the one found at build time */
	uint8_t mac[6];
	uint32_t ip, netmask, gw; /* IPv4, network byte order */
	uint16_t mtu;
	struct rte_mempool *tx_pool; /* mbufs for frames lwIP sends (borrowed) */
	struct bx_txbuf *tx;         /* where they are queued (borrowed) */
};

/* The copy's own heap (dpdk_lwip.c): what lwIP allocated and freed. */
struct bx_lw_heap_stats {
	uint64_t allocs; /* malloc/calloc calls */
	uint64_t live;   /* blocks not freed */
	uint64_t libc;   /* served by glibc: over 4 KiB, or the region was spent */
};

/* One instance: everything lwIP needs on one lcore. Touched by that lcore only. */
struct bx_lw {
	struct bx_lwip_fns f;
	struct tcp_pcb **active_pcbs;  /* the copy's tcp_active_pcbs */
	struct tcp_pcb **tw_pcbs;      /* the copy's tcp_tw_pcbs */
	struct tcp_pcb **listen_pcbs;  /* the copy's tcp_listen_pcbs (a union of pointers) */
	struct tcp_pcb **bound_pcbs;   /* the copy's tcp_bound_pcbs */
	struct bx_lw_heap_stats *heap; /* NULL: the copy uses glibc (BX_DEBUG_POOL, no slot) */
	void *dl;
	int memfd;
	struct netif netif;
	bool netif_added;
	uint8_t mac[6];
	uint16_t mtu;
	struct rte_mempool *tx_pool;
	struct bx_txbuf *tx;
	uint64_t now_ns;    /* of the current poll, for the drain timer */
	uint64_t tx_frames; /* frames lwIP produced */
	uint64_t tx_nomem;  /* frames dropped: no mbuf (TCP retransmits) */
	uint64_t rx_copied; /* multi-segment mbufs copied into a pbuf */
	uint64_t rx_nomem;  /* frames dropped: no pbuf for a copy */
	uint64_t next_timer_ns;
};

/*
 * Load a private copy of liblwip, initialise it and add one Ethernet netif
 * (up, link up, default). l is caller-allocated. Start-up only (allocates).
 * -ENOENT (library missing), -ENOEXEC (a symbol is missing), -ENOMEM; eb says
 * which. On failure l is left closed.
 */
int bx_lw_open(struct bx_lw *l, const struct bx_lw_conf *c, struct bx_errbuf *eb);
/*
 * Abort the pcbs still open (their callbacks must be detached first), remove
 * the netif, and keep the copy for the next bx_lw_open(): lwIP has no
 * teardown, so a copy is never unloaded (its heap stays reachable).
 */
void bx_lw_close(struct bx_lw *l);

/*
 * Hand one received Ethernet frame to the stack. m is consumed: it either
 * becomes a pbuf that lwIP frees (returning m to its pool) or is freed here.
 * The pool m came from must have bx_lw_mbuf_priv_size() of private area.
 */
void bx_lw_input(struct bx_lw *l, struct rte_mbuf *m);

/* lwIP's timers (TCP fast/slow, ARP, reassembly) when due; call often. */
void bx_lw_timers(struct bx_lw *l, uint64_t now_ns);

#endif
