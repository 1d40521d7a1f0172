/*
 * DPDK port: kernel bypass with lwIP as the TCP/IP stack, run to completion
 * on each worker's pinned thread:
 *
 *     rx burst -> L2/L3 classify -> filter -> lwIP (ARP, IPv4, TCP) ->
 *     recv callback -> bx_conn_process (HTTP, axon) -> tcp_write ->
 *     linkoutput -> tx burst (when the burst is full, the RX queue ran dry,
 *     or the 100 us drain timer fires)
 *
 * One RX/TX queue pair per worker (RSS, or the device's own flow spreading
 * for net_tap), one mbuf pool per NUMA node, one private lwIP per worker
 * (dpdk_lwip.h), one filter per worker (dpdk_filter.h). Workers share
 * nothing on the hot path but the ARP rings: ARP is answered by every
 * stack, so the frames a worker receives are copied to the others, whose
 * ARP caches then know the peers their own TCP connections talk to.
 *
 * The exception path: with dp.dpdk_exception set, frames not for the
 * service (other TCP ports, UDP, ICMP, IPv6, ARP for anyone) go to the
 * kernel through a second port (a net_tap or virtio_user interface that
 * carries the appliance's address), and what the kernel sends there goes
 * out on the wire, so the box stays reachable by SSH when DPDK owns the NIC.
 *
 * Connections reuse conn.c unchanged: lwIP's recv callback copies into the
 * connection's rx buffer (tcp_recved only for what was copied, so lwIP's
 * window is the backpressure), bx_conn_process appends responses to tx,
 * and tx goes to tcp_write as the send buffer allows.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <rte_arp.h>
#include <rte_ethdev.h>
#include <rte_ip.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_ring.h>
#include <rte_tcp.h>

#include "dpdk_env.h"
#include "dpdk_filter.h"
#include "dpdk_port.h"
#include "metagraph_int.h"

#define BURST      32
#define DRAIN_NS   100000ull    /* TX drain timer */
#define SWEEP_NS   500000000ull /* timeouts, allow-list refresh */
#define ARP_RING   1024
#define MAX_DP     8
#define IDLE_POLLS 256
#define LEARN_RING 1024
#define LEARN_MAX  4096

/* ======================= Per-dataplane shared state ======================= */

struct dshared {
	const struct bx_dp *dp;
	unsigned refs;
	unsigned seq; /* makes DPDK object names unique */
	struct bx_dpdk_port wire, exc;
	bool has_exc;
	struct rte_mempool *node_pool[RTE_MAX_NUMA_NODES];
	struct rte_mempool *qpool[BX_DP_MAX_CORES];
	struct rte_ring *arp[BX_DP_MAX_CORES];
	struct rte_ring *learn[BX_DP_MAX_CORES]; /* validator IPs learnt by any worker */
	uint32_t ip, mask, gw;                   /* network order */
};

static struct dshared *shared_list[MAX_DP];
static unsigned shared_seq;

static int
parse_addr(const struct bx_dp_conf *c, struct dshared *s, struct bx_errbuf *eb)
{
	char buf[32];
	char *slash;
	struct in_addr a;
	long bits = 24;

	snprintf(buf, sizeof(buf), "%s", c->dpdk_addr);
	slash = strchr(buf, '/');
	if (slash) {
		char *end;

		*slash = 0;
		bits = strtol(slash + 1, &end, 10);
		if (*end || end == slash + 1 || bits < 1 || bits > 32) {
			bits = -1;
		}
	}
	if (bits < 0 || inet_pton(AF_INET, buf, &a) != 1 || a.s_addr == 0) {
		return bx_err(eb, EINVAL,
		              "dataplane: dpdk: dp.dpdk_addr \"%s\" must be the appliance's IPv4 "
		              "address with its prefix, as 10.0.0.2/24",
		              c->dpdk_addr);
	}
	s->ip = a.s_addr;
	s->mask = htonl(bits == 32 ? ~0u : ~0u << (32 - bits));
	s->gw = 0;
	if (c->dpdk_gateway[0] && inet_pton(AF_INET, c->dpdk_gateway, &a) != 1) {
		return bx_err(eb, EINVAL, "dataplane: dpdk: dp.dpdk_gateway \"%s\" is not IPv4",
		              c->dpdk_gateway);
	}
	if (c->dpdk_gateway[0]) {
		s->gw = a.s_addr;
	}
	return 0;
}

static unsigned
pool_size(const struct bx_dp_conf *c, unsigned nb_q, bool exc)
{
	unsigned rxd = c->dpdk_rx_desc ? c->dpdk_rx_desc : 1024;
	unsigned txd = c->dpdk_tx_desc ? c->dpdk_tx_desc : 1024;
	unsigned per_q = (rxd + txd) * (exc ? 2 : 1) + 2 * BX_DPDK_TX_CAP + ARP_RING;
	unsigned n = nb_q * per_q + 4096; /* + what lwIP holds out of order */

	if (c->dpdk_mbufs) {
		return c->dpdk_mbufs;
	}
	return n < 8191 ? 8191 : n;
}

static int
make_pools(struct dshared *s, const struct bx_dp_conf *c, struct bx_errbuf *eb)
{
	unsigned nb = c->nb_cores;

	for (unsigned i = 0; i < nb; i++) {
		int node = bx_dpdk_cpu_node(c->cpus[i]);
		char name[RTE_MEMPOOL_NAMESIZE];

		if (node < 0 || node >= RTE_MAX_NUMA_NODES) {
			node = 0;
		}
		if (!s->node_pool[node]) {
			unsigned n = pool_size(c, nb, c->dpdk_exception[0] != 0);

			snprintf(name, sizeof(name), "bx%u_mb%d", s->seq, node);
			s->node_pool[node] = rte_pktmbuf_pool_create(
				name, n, 256, (uint16_t)bx_lw_mbuf_priv_size(),
				RTE_MBUF_DEFAULT_BUF_SIZE, node);
			if (!s->node_pool
			             [node]) { /* no memory on that node (--no-huge): anywhere */
				s->node_pool[node] = rte_pktmbuf_pool_create(
					name, n, 256, (uint16_t)bx_lw_mbuf_priv_size(),
					RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
			}
			if (!s->node_pool[node]) {
				return bx_err(
					eb, ENOMEM,
					"dataplane: dpdk: cannot create a pool of %u mbufs on "
					"node %d (%s); give the EAL more memory (-m, or more "
					"hugepages) or lower dp.dpdk_mbufs",
					n, node, rte_strerror(rte_errno));
			}
		}
		s->qpool[i] = s->node_pool[node];
	}
	return 0;
}

static int
make_rings(struct dshared *s, unsigned nb, struct bx_errbuf *eb)
{
	char name[RTE_RING_NAMESIZE];

	for (unsigned i = 0; i < nb; i++) {
		snprintf(name, sizeof(name), "bx%u_lrn%u", s->seq, i);
		s->learn[i] =
			rte_ring_create(name, LEARN_RING, s->qpool[i]->socket_id, RING_F_SC_DEQ);
		if (!s->learn[i]) {
			return bx_err(eb, ENOMEM, "dataplane: dpdk: ring %s: %s", name,
			              rte_strerror(rte_errno));
		}
	}
	for (unsigned i = 0; i < nb && nb > 1; i++) {
		snprintf(name, sizeof(name), "bx%u_arp%u", s->seq, i);
		s->arp[i] = rte_ring_create(name, ARP_RING, s->qpool[i]->socket_id, RING_F_SC_DEQ);
		if (!s->arp[i]) {
			return bx_err(eb, ENOMEM, "dataplane: dpdk: ring %s: %s", name,
			              rte_strerror(rte_errno));
		}
	}
	return 0;
}

static void
shared_free(struct dshared *s)
{
	bx_dpdk_port_close(&s->exc);
	bx_dpdk_port_close(&s->wire);
	for (unsigned i = 0; i < BX_DP_MAX_CORES; i++) {
		rte_ring_free(s->arp[i]);
		rte_ring_free(s->learn[i]);
	}
	for (unsigned i = 0; i < RTE_MAX_NUMA_NODES; i++) {
		rte_mempool_free(s->node_pool[i]);
	}
	bx_free(s);
}

/*
 * The kernel's side of the exception port answers ARP for the appliance's
 * address too: it must do so with the wire port's MAC, or peers would send
 * to a MAC the NIC does not accept. Sets it when the devargs name the
 * kernel interface (iface=, net_tap and virtio_user); warns otherwise.
 */
static void
exc_kernel_mac(const char *devargs, const uint8_t *mac)
{
	const char *p = strstr(devargs, "iface=");
	struct ifreq ifr;
	size_t n;
	int fd;

	if (!p) {
		BX_LOG(WARN,
		       "dataplane: dpdk: give the exception interface the wire port's MAC "
		       "%02x:%02x:%02x:%02x:%02x:%02x yourself",
		       mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
		return;
	}
	p += 6;
	n = strcspn(p, ",");
	memset(&ifr, 0, sizeof(ifr));
	if (n == 0 || n >= sizeof(ifr.ifr_name)) {
		return;
	}
	memcpy(ifr.ifr_name, p, n);
	ifr.ifr_hwaddr.sa_family = ARPHRD_ETHER;
	memcpy(ifr.ifr_hwaddr.sa_data, mac, 6);
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || ioctl(fd, SIOCSIFHWADDR, &ifr) < 0) {
		BX_LOG(WARN, "dataplane: dpdk: cannot give %s the wire port's MAC: %s",
		       ifr.ifr_name, bx_strerror(errno));
	}
	if (fd >= 0) {
		close(fd);
	}
}

static int
shared_setup(struct dshared *s, const struct bx_dp_conf *c, struct bx_errbuf *eb)
{
	unsigned rxd = c->dpdk_rx_desc ? c->dpdk_rx_desc : 1024;
	unsigned txd = c->dpdk_tx_desc ? c->dpdk_tx_desc : 1024;
	int r;

	if (!c->dpdk_device[0]) {
		return bx_err(eb, EINVAL,
		              "dataplane: dpdk: no device: set dp.dpdk_device to the NIC's PCI "
		              "address (0000:01:00.0) or a vdev (net_tap0,iface=bx0)");
	}
	r = parse_addr(c, s, eb);
	if (r == 0) {
		r = bx_dpdk_eal_init(c->dpdk_eal_args, eb);
	}
	if (r == 0) {
		r = make_pools(s, c, eb);
	}
	if (r == 0) {
		r = bx_dpdk_port_open(&s->wire, c->dpdk_device, (uint16_t)c->nb_cores, rxd, txd,
		                      s->qpool, eb);
	}
	if (r == 0 && c->dpdk_exception[0]) {
		r = bx_dpdk_port_open(&s->exc, c->dpdk_exception, (uint16_t)c->nb_cores, rxd, txd,
		                      s->qpool, eb);
		s->has_exc = r == 0;
		if (r == 0) {
			exc_kernel_mac(c->dpdk_exception, s->wire.mac);
		}
	}
	if (r == 0) {
		r = make_rings(s, c->nb_cores, eb);
	}
	return r;
}

/* The workers' shared state, made by the first to arrive. Takes a reference. */
static int
shared_get(const struct bx_dp *dp, struct dshared **out, struct bx_errbuf *eb)
{
	struct dshared *s = NULL;
	unsigned slot = MAX_DP;
	int r = 0;

	pthread_mutex_lock(&bx_dpdk_env_lock);
	for (unsigned i = 0; i < MAX_DP; i++) {
		if (shared_list[i] && shared_list[i]->dp == dp) {
			s = shared_list[i];
		} else if (!shared_list[i] && slot == MAX_DP) {
			slot = i;
		}
	}
	if (!s && slot == MAX_DP) {
		r = bx_err(eb, EBUSY, "dataplane: dpdk: more than %d DPDK dataplanes", MAX_DP);
	} else if (!s) {
		s = bx_calloc(1, sizeof(*s));
		r = s ? 0 : -ENOMEM;
		if (s) {
			s->dp = dp;
			s->seq = shared_seq++;
			r = shared_setup(s, &dp->sh.conf, eb);
			if (r < 0) {
				shared_free(s);
				s = NULL;
			} else {
				shared_list[slot] = s;
			}
		}
	}
	if (s) {
		s->refs++;
		*out = s;
	}
	pthread_mutex_unlock(&bx_dpdk_env_lock);
	return r;
}

static void
shared_put(struct dshared *s)
{
	pthread_mutex_lock(&bx_dpdk_env_lock);
	if (--s->refs == 0) {
		for (unsigned i = 0; i < MAX_DP; i++) {
			if (shared_list[i] == s) {
				shared_list[i] = NULL;
			}
		}
		shared_free(s);
	}
	pthread_mutex_unlock(&bx_dpdk_env_lock);
}

/* ======================= Per-worker state ======================= */

struct dworker {
	struct bx_dp_worker *w;
	struct dshared *sh;
	struct bx_dtcp *tcp;
	bool registered;
	bool filter_ok;
	uint16_t port_id, exc_id, q;
	bool has_exc;
	uint32_t ip;       /* network order */
	uint16_t svc_port; /* host order */
	unsigned nb_workers;
	struct rte_mempool *pool;
	struct bx_txbuf tx;  /* to the wire: lwIP's frames and the kernel's */
	struct bx_txbuf exc; /* to the kernel */
	struct bx_filter filter;
	uint64_t epoch_seen;
	bool allow_built;
	uint32_t learned[LEARN_MAX]; /* host order; kept across metagraph refreshes */
	unsigned nb_learned;
	uint64_t next_sweep_ns;
	unsigned idle_polls;
	bool draining, forced;
	uint64_t now_ns;
};

static inline void
count(struct dworker *d, enum bx_dp_pkt p, uint64_t n)
{
	d->w->ax.stats.pkt[p] += n;
}

/* ======================= TX ======================= */

static void
tx_burst(struct dworker *d, struct bx_txbuf *b, uint16_t port, enum bx_dp_pkt ok)
{
	unsigned n = b->n, sent = 0;

	for (unsigned tries = 0; sent < n && tries < 4; tries++) {
		sent += rte_eth_tx_burst(port, d->q, b->m + sent, (uint16_t)(n - sent));
	}
	if (sent < n) {
		rte_pktmbuf_free_bulk(b->m + sent, n - sent);
		count(d, BX_DP_P_DROP_TX, n - sent);
	}
	count(d, ok, sent);
	b->n = 0;
}

static void
flush_wire(void *arg)
{
	struct dworker *d = arg;

	tx_burst(d, &d->tx, d->port_id, BX_DP_P_TX);
}

static void
flush_exc(void *arg)
{
	struct dworker *d = arg;

	tx_burst(d, &d->exc, d->exc_id, BX_DP_P_EXC_TO_KERNEL);
}

static void
enqueue(struct dworker *d, struct bx_txbuf *b, struct rte_mbuf *m)
{
	if (b->n == BX_DPDK_TX_CAP) {
		b->flush(b->arg);
	}
	if (b->n == 0) {
		b->since_ns = d->now_ns;
	}
	b->m[b->n++] = m;
}

static void
to_kernel(struct dworker *d, struct rte_mbuf *m)
{
	if (!d->has_exc) {
		count(d, BX_DP_P_DROP_NOT_OURS, 1);
		rte_pktmbuf_free(m);
		return;
	}
	enqueue(d, &d->exc, m);
}

/* ======================= RX: classify ======================= */

static void
arp_in(struct dworker *d, struct rte_mbuf *m)
{
	count(d, BX_DP_P_ARP, 1);
	/* every other stack learns the sender too; the kernel answers for itself */
	for (unsigned k = 0; k < d->nb_workers && d->sh->arp[0]; k++) {
		struct rte_mbuf *c;

		if (k == d->q) {
			continue;
		}
		c = rte_pktmbuf_copy(m, d->pool, 0, UINT32_MAX);
		if (c && rte_ring_mp_enqueue(d->sh->arp[k], c) != 0) {
			rte_pktmbuf_free(c);
		}
	}
	if (d->has_exc) {
		struct rte_mbuf *c = rte_pktmbuf_copy(m, d->pool, 0, UINT32_MAX);

		if (c) {
			to_kernel(d, c);
		}
	}
	bx_dtcp_input(d->tcp, m, d->now_ns);
}

/* An IPv4 frame: the service's TCP goes through the filter to lwIP. */
static void
ipv4_in(struct dworker *d, struct rte_mbuf *m)
{
	const struct rte_ipv4_hdr *ip;
	const struct rte_tcp_hdr *th;
	unsigned hl;
	bool frag;
	enum bx_filter_verdict v;

	if (m->data_len < sizeof(struct rte_ether_hdr) + sizeof(*ip)) {
		goto malformed;
	}
	ip = rte_pktmbuf_mtod_offset(m, const struct rte_ipv4_hdr *, sizeof(struct rte_ether_hdr));
	hl = (ip->version_ihl & 0xf) * 4u;
	if ((ip->version_ihl >> 4) != 4 || hl < sizeof(*ip) ||
	    m->data_len < sizeof(struct rte_ether_hdr) + hl) {
		goto malformed;
	}
	if (ip->dst_addr != d->ip) {
		to_kernel(d, m); /* broadcast, multicast, someone else's */
		return;
	}
	frag = (ip->fragment_offset & htons(RTE_IPV4_HDR_OFFSET_MASK)) != 0;
	if (ip->next_proto_id != IPPROTO_TCP) {
		if (ip->next_proto_id == IPPROTO_ICMP && !d->has_exc) {
			bx_dtcp_input(d->tcp, m,
			              d->now_ns); /* lwIP answers ping when no kernel does */
			return;
		}
		to_kernel(d, m);
		return;
	}
	th = NULL;
	if (!frag) {
		if (m->data_len < sizeof(struct rte_ether_hdr) + hl + sizeof(*th)) {
			goto malformed;
		}
		th = rte_pktmbuf_mtod_offset(m, const struct rte_tcp_hdr *,
		                             sizeof(struct rte_ether_hdr) + hl);
		if (ntohs(th->dst_port) != d->svc_port) {
			to_kernel(d, m); /* SSH, management */
			return;
		}
	}
	v = bx_filter_check(&d->filter, ntohl(ip->src_addr),
	                    th && (th->tcp_flags & (RTE_TCP_SYN_FLAG | RTE_TCP_ACK_FLAG)) ==
	                                    RTE_TCP_SYN_FLAG,
	                    d->now_ns);
	count(d, (enum bx_dp_pkt)v, 1);
	if (v != BX_FILTER_PASS_ALLOWED && v != BX_FILTER_PASS_OPEN) {
		rte_pktmbuf_free(m);
		return;
	}
	bx_dtcp_input(d->tcp, m, d->now_ns);
	return;
malformed:
	count(d, BX_DP_P_DROP_MALFORMED, 1);
	rte_pktmbuf_free(m);
}

static void
frame_in(struct dworker *d, struct rte_mbuf *m)
{
	const struct rte_ether_hdr *eh;

	if (m->data_len < sizeof(*eh)) {
		count(d, BX_DP_P_DROP_MALFORMED, 1);
		rte_pktmbuf_free(m);
		return;
	}
	eh = rte_pktmbuf_mtod(m, const struct rte_ether_hdr *);
	switch (eh->ether_type) {
	case RTE_BE16(RTE_ETHER_TYPE_ARP):
		arp_in(d, m);
		break;
	case RTE_BE16(RTE_ETHER_TYPE_IPV4):
		ipv4_in(d, m);
		break;
	default:
		to_kernel(d, m); /* IPv6, LLDP, ... */
		break;
	}
}

static unsigned
poll_wire(struct dworker *d)
{
	struct rte_mbuf *pkts[BURST];
	uint16_t n = rte_eth_rx_burst(d->port_id, d->q, pkts, BURST);

	count(d, BX_DP_P_RX, n);
	for (uint16_t i = 0; i < n; i++) {
		frame_in(d, pkts[i]);
	}
	return n;
}

static unsigned
poll_side(struct dworker *d)
{
	struct rte_mbuf *pkts[BURST];
	unsigned n = 0, k;

	if (d->sh->arp[d->q]) {
		k = rte_ring_sc_dequeue_burst(d->sh->arp[d->q], (void **)pkts, BURST, NULL);
		for (unsigned i = 0; i < k; i++) {
			bx_dtcp_input(d->tcp, pkts[i], d->now_ns);
		}
		n += k;
	}
	if (d->has_exc) {
		k = rte_eth_rx_burst(d->exc_id, d->q, pkts, BURST);
		for (unsigned i = 0; i < k; i++) {
			enqueue(d, &d->tx, pkts[i]);
		}
		count(d, BX_DP_P_EXC_FROM_KERNEL, k);
		n += k;
	}
	return n;
}

/* ======================= Allow-list ======================= */

/* Validator IPs from the metagraph (all neurons' when permits are not required). */
/* From this worker's stack: tell every worker (itself included). */
static void
learn_cb(void *arg, uint32_t ip)
{
	struct dworker *d = arg;

	for (unsigned k = 0; k < d->nb_workers; k++) {
		rte_ring_mp_enqueue(d->sh->learn[k], (void *)(uintptr_t)ip);
	}
}

static void
learn_drain(struct dworker *d)
{
	void *ips[BURST];
	unsigned n = rte_ring_sc_dequeue_burst(d->sh->learn[d->q], ips, BURST, NULL);

	for (unsigned i = 0; i < n; i++) {
		uint32_t ip = (uint32_t)(uintptr_t)ips[i];

		if (bx_filter_allowed(&d->filter, ip) || d->nb_learned == LEARN_MAX) {
			continue;
		}
		d->learned[d->nb_learned++] = ip;
		bx_filter_allow_add(&d->filter, ip);
		if (d->q == 0) {
			BX_LOG(INFO,
			       "dataplane: dpdk: %u.%u.%u.%u answered as a validator: on the "
			       "reserved lane",
			       ip >> 24, (ip >> 16) & 255, (ip >> 8) & 255, ip & 255);
		}
	}
}

static void
allow_refresh(struct dworker *d)
{
	const struct bx_axon_shared *sh = &d->w->dp->sh;
	const struct bx_metagraph *mg = __atomic_load_n(&sh->mg, __ATOMIC_ACQUIRE);
	uint64_t e = __atomic_load_n(&d->w->dp->epoch, __ATOMIC_ACQUIRE);
	unsigned full = 0;

	if (d->allow_built && e == d->epoch_seen) {
		return;
	}
	d->epoch_seen = e;
	d->allow_built = true;
	bx_filter_allow_clear(&d->filter);
	for (uint32_t i = 0; mg && i < mg->nb; i++) {
		const struct bx_mg_neuron *n = &mg->n[i];
		struct in_addr a;

		if ((sh->conf.require_permit && !n->validator_permit) || !n->ip[0] ||
		    inet_pton(AF_INET, n->ip, &a) != 1) {
			continue;
		}
		full += bx_filter_allow_add(&d->filter, ntohl(a.s_addr)) < 0;
	}
	for (unsigned i = 0; i < d->nb_learned; i++) {
		full += bx_filter_allow_add(&d->filter, d->learned[i]) < 0;
	}
	if (full && d->q == 0) {
		BX_LOG(WARN, "dataplane: dpdk: allow-list full, %u metagraph address(es) left out",
		       full);
	}
}

/* ======================= Loop ======================= */

static void
idle_wait(struct dworker *d, unsigned n)
{
	unsigned us = d->w->dp->sh.conf.dpdk_idle_us;

	if (n || us == 0) {
		d->idle_polls = 0;
		return;
	}
	if (++d->idle_polls < IDLE_POLLS) {
		return;
	}
	bx_worker_offline(d->w);
	usleep(us);
	bx_worker_online(d->w);
}

/* Stop: drain, then force at the deadline. True when the worker may exit. */
static bool
stopping(struct dworker *d)
{
	bool force = d->now_ns >= d->w->drain_deadline_ns;

	if (!d->draining || (force && !d->forced)) {
		d->draining = true;
		d->forced = force;
		bx_dtcp_drain(d->tcp, force, d->now_ns);
	}
	/* lwIP still owes FINs and unacked data: wait for that too, until forced */
	return bx_dtcp_idle(d->tcp) ||
	       (d->forced && d->now_ns >= d->w->drain_deadline_ns + SWEEP_NS);
}

static int
dpdk_run(struct bx_dp_worker *w)
{
	struct dworker *d = w->priv;

	bx_worker_online(w);
	d->now_ns = bx_time_ns();
	allow_refresh(d);
	d->next_sweep_ns = d->now_ns + SWEEP_NS;
	for (;;) {
		unsigned n;

		bx_worker_online(w);
		d->now_ns = bx_time_ns();
		n = poll_wire(d);
		n += poll_side(d);
		learn_drain(d);
		bx_dtcp_completions(d->tcp, d->now_ns);
		bx_dtcp_tick(d->tcp, d->now_ns);
		/* the drain timer: send a partial burst when RX ran dry or it waited too long */
		if (d->tx.n && (n < BURST || d->now_ns - d->tx.since_ns >= DRAIN_NS)) {
			flush_wire(d);
		}
		if (d->exc.n) {
			flush_exc(d);
		}
		if (d->now_ns >= d->next_sweep_ns) {
			d->next_sweep_ns = d->now_ns + SWEEP_NS;
			bx_dtcp_sweep(d->tcp, d->now_ns);
			allow_refresh(d);
		}
		if (__atomic_load_n(&w->stop, __ATOMIC_ACQUIRE) && stopping(d)) {
			break;
		}
		idle_wait(d, n);
	}
	if (d->tx.n) {
		flush_wire(d);
	}
	return 0;
}

/* ======================= init / fini ======================= */

static int
filter_init(struct dworker *d, const struct bx_dp_conf *cf, struct bx_errbuf *eb)
{
	struct bx_filter_conf fc = {
		.syn_rate = cf->dpdk_syn_rate / d->nb_workers,
		.syn_burst = cf->dpdk_syn_burst,
		.pkt_rate = cf->dpdk_pkt_rate / d->nb_workers,
		.pkt_burst = cf->dpdk_pkt_burst,
		.open_rate = cf->dpdk_open_rate / d->nb_workers,
		.open_burst = cf->dpdk_open_burst,
		.allowlist_only = cf->dpdk_allowlist_only,
		.allow_cap = 8192,
		.src_slots = 65536,
	};
	int r = bx_filter_init(&d->filter, &fc);

	if (r < 0) {
		return bx_err(eb, -r, "dataplane: dpdk: filter: %s (rates must be >= 0)",
		              bx_strerror(r));
	}
	d->filter_ok = true;
	return bx_filter_allow_nets(&d->filter, cf->dpdk_allow, eb);
}

/*
 * net_tap arms its queue fds with O_ASYNC and a realtime signal (F_SETSIG)
 * whose handler has no SA_RESTART: a thread that takes one sees EINTR from
 * a socket call with a timeout, and where every thread blocks it the
 * signals pile up pending. The workers take them, whatever mask the
 * starting thread had, so the process's other threads can block them all.
 */
static void
wake_signals(void)
{
	sigset_t s;

	sigemptyset(&s);
	sigaddset(&s, SIGIO);
	for (int sig = SIGRTMIN; sig <= SIGRTMAX; sig++) {
		sigaddset(&s, sig);
	}
	pthread_sigmask(SIG_UNBLOCK, &s, NULL);
}

static void dpdk_fini(struct bx_dp_worker *w);

static int
dpdk_init(struct bx_dp_worker *w, struct bx_errbuf *eb)
{
	const struct bx_dp_conf *cf = &w->dp->sh.conf;
	struct dworker *d;
	int r;

	d = bx_aligned_alloc(64, sizeof(*d));
	if (!d) {
		return -ENOMEM;
	}
	memset(d, 0, sizeof(*d));
	d->w = w;
	w->priv = d;
	d->nb_workers = w->dp->nb_workers;
	d->q = (uint16_t)w->id;
	r = shared_get(w->dp, &d->sh, eb);
	if (r < 0) {
		goto out_fail;
	}
	wake_signals();
	if (rte_lcore_id() == LCORE_ID_ANY) {
		/* a non-EAL thread gets an lcore id, and with it mempool caches */
		d->registered = rte_thread_register() == 0;
	}
	/* server.c opened a kernel listener for every backend; bypassed here */
	if (w->listen_fd >= 0) {
		close(w->listen_fd);
		w->listen_fd = -1;
	}
	d->port_id = d->sh->wire.id;
	d->exc_id = d->sh->exc.id;
	d->has_exc = d->sh->has_exc;
	d->ip = d->sh->ip;
	d->svc_port = w->dp->bound_port;
	d->pool = d->sh->qpool[w->id];
	d->tx.flush = flush_wire;
	d->tx.arg = d;
	d->exc.flush = flush_exc;
	d->exc.arg = d;
	r = filter_init(d, cf, eb);
	if (r == 0) {
		struct bx_dtcp_conf tc = {
			.ip = d->sh->ip,
			.netmask = d->sh->mask,
			.gw = d->sh->gw,
			.port = d->svc_port,
			.pool = d->pool,
			.tx = &d->tx,
			.learn = learn_cb,
			.learn_arg = d,
		};

		memcpy(tc.mac, d->sh->wire.mac, 6);
		r = bx_dtcp_create(w, &tc, &d->tcp, eb);
	}
	if (r < 0) {
		goto out_fail;
	}
	return 0;
out_fail:
	dpdk_fini(w); /* server.c does not call fini after a failed init */
	return r;
}

static void
dpdk_wake(struct bx_dp_worker *w)
{
	(void)w; /* the loop polls w->stop; an idle sleep is at most dpdk_idle_us */
}

static void
dpdk_fini(struct bx_dp_worker *w)
{
	struct dworker *d = w->priv;

	if (!d) {
		return;
	}
	bx_dtcp_destroy(d->tcp);
	if (d->tx.n) {
		rte_pktmbuf_free_bulk(d->tx.m, d->tx.n);
	}
	if (d->exc.n) {
		rte_pktmbuf_free_bulk(d->exc.m, d->exc.n);
	}
	if (d->filter_ok) {
		bx_filter_fini(&d->filter);
	}
	if (d->registered) {
		rte_thread_unregister();
	}
	if (d->sh) {
		shared_put(d->sh);
	}
	bx_free(d);
	w->priv = NULL;
}

const struct bx_port_ops bx_port_dpdk_ops = {
	.name = "dpdk",
	.init = dpdk_init,
	.run = dpdk_run,
	.wake = dpdk_wake,
	.fini = dpdk_fini,
};
