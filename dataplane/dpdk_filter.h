/*
 * The packet filter a kernel-bypass port runs before TCP: the reason to own
 * the packets. Per lcore, no locks, no allocation after init.
 *
 * Two lanes. Sources on the allow-list (validator IPs from the metagraph,
 * configured networks, and addresses whose signed requests were verified
 * and admitted: validators rarely publish an axon IP) take the reserved lane: never rate limited here,
 * never charged to anyone else's budget. Every other source takes the open
 * lane: a token bucket per source for packets and one for SYNs, then one
 * bucket for the whole open lane, so a flood from anywhere, spoofed or not,
 * spends at most the open lane's budget and the validators' packets still
 * reach TCP. allowlist_only closes the open lane.
 *
 * Per-source state is a 4-way set-associative table of fixed size; a flood
 * of random sources evicts the least recently seen entry of a set, which
 * can only make an evicted source's bucket full again: the open lane's
 * bucket is the bound that does not depend on the table.
 */
#ifndef BX_DP_DPDK_FILTER_H
#define BX_DP_DPDK_FILTER_H

#include <stdbool.h>
#include <stdint.h>

#include <bx/dataplane.h>

struct bx_filter_conf {
	double syn_rate, syn_burst;   /* SYNs/s per open-lane source; 0 = off */
	double pkt_rate, pkt_burst;   /* packets/s per open-lane source; 0 = off */
	double open_rate, open_burst; /* packets/s of the whole open lane (this lcore); 0 = off */
	bool allowlist_only;          /* drop every source not on the allow-list */
	unsigned allow_cap;           /* allow-list addresses (rounded up to a power of 2) */
	unsigned src_slots;           /* per-source buckets (rounded up to a power of 4) */
};

struct bx_filter_src {
	uint32_t ip; /* host order; 0 = empty */
	uint32_t t_ms;
	float pkt, syn; /* tokens */
};

struct bx_filter {
	struct bx_filter_conf c;
	uint32_t *allow; /* open addressing, host-order IPv4, 0 = empty */
	uint32_t allow_mask;
	unsigned nb_allow;

	struct {
		uint32_t net, mask;
	} nets[16];

	unsigned nb_nets;
	struct bx_filter_src *src;
	uint32_t src_mask; /* slots - 1 */
	double open_tokens;
	uint64_t open_ns;
};

/* The filter's answer for one packet; PASS_* go on to TCP. */
enum bx_filter_verdict {
	BX_FILTER_PASS_ALLOWED = BX_DP_P_ALLOWED,
	BX_FILTER_PASS_OPEN = BX_DP_P_OPEN,
	BX_FILTER_DROP_NOT_ALLOWED = BX_DP_P_DROP_NOT_ALLOWED,
	BX_FILTER_DROP_PKT_RATE = BX_DP_P_DROP_PKT_RATE,
	BX_FILTER_DROP_SYN_RATE = BX_DP_P_DROP_SYN_RATE,
	BX_FILTER_DROP_OPEN_LANE = BX_DP_P_DROP_OPEN_LANE,
};

/* f is caller-allocated. Start-up only. 0, -EINVAL, -ENOMEM. */
int bx_filter_init(struct bx_filter *f, const struct bx_filter_conf *c);
void bx_filter_fini(struct bx_filter *f);

/* Empty the address set (networks stay). */
void bx_filter_allow_clear(struct bx_filter *f);
/* Add a host-order IPv4 address. 0, or -ENOSPC when the set is 3/4 full. */
int bx_filter_allow_add(struct bx_filter *f, uint32_t ip);
/*
 * Add networks from a list "10.0.0.0/8, 192.168.1.7" (commas or spaces).
 * 0, -EINVAL naming the bad entry in eb, -ENOSPC past 16 networks.
 */
int bx_filter_allow_nets(struct bx_filter *f, const char *list, struct bx_errbuf *eb);
/* Is this host-order source on the allow-list? */
bool bx_filter_allowed(const struct bx_filter *f, uint32_t ip);

/*
 * Classify one packet for the service from host-order source ip; syn is a
 * SYN without ACK (a new connection). now_ns is monotonic.
 */
enum bx_filter_verdict bx_filter_check(struct bx_filter *f, uint32_t ip, bool syn, uint64_t now_ns);

#endif
