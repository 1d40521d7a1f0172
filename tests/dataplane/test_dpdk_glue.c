/*
 * Covers: dataplane/dpdk_lwip.c, the glue between DPDK mbufs and lwIP pbufs,
 * and the private lwIP copy per lcore. Real EAL (--no-huge), a real mbuf
 * pool, the real liblwip: a SYN in an mbuf gets an ARP request, then (after
 * the ARP reply) a SYN-ACK out through linkoutput into an mbuf; received
 * data reaches tcp_recv as a pbuf that points into the mbuf (zero copy) and
 * holds the mbuf until pbuf_free; chained mbufs are copied; two copies of
 * the stack share no state (a listener on one is no listener on the other).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include "bx_test.h"
#include "dpdk_env.h"
#include "dpdk_lwip.h"

#define NB_MBUF  511
#define PORT     8091
#define CLI_PORT 40000
#define ETH_LEN  14
#define IP_LEN   20
#define TCP_LEN  20
#define F_FIN    0x01
#define F_SYN    0x02
#define F_RST    0x04
#define F_PSH    0x08
#define F_ACK    0x10

static const uint8_t srv_mac[6] = { 0x02, 0, 0, 0, 0, 0x02 };
static const uint8_t cli_mac[6] = { 0x02, 0, 0, 0, 0, 0x01 };
static struct rte_mempool *pool;
static struct bx_txbuf txb;
static unsigned flushes;

struct accepted {
	struct bx_lw *l;
	struct tcp_pcb *pcb;
	struct pbuf *held;
	unsigned nb_accept;
	char data[64];
	size_t len;
};

static void
flush_free(void *arg)
{
	(void)arg;
	rte_pktmbuf_free_bulk(txb.m, txb.n);
	txb.n = 0;
	flushes++;
}

static uint32_t
ip4(const char *s)
{
	struct in_addr a;

	inet_pton(AF_INET, s, &a);
	return a.s_addr;
}

static uint16_t
csum(const void *p, size_t n, uint32_t sum)
{
	const uint8_t *b = p;

	for (size_t i = 0; i + 1 < n; i += 2) {
		sum += (uint32_t)(b[i] << 8 | b[i + 1]);
	}
	if (n & 1) {
		sum += (uint32_t)b[n - 1] << 8;
	}
	while (sum >> 16) {
		sum = (sum & 0xffff) + (sum >> 16);
	}
	return (uint16_t)~sum;
}

static void
put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void
put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)(v >> 16));
	put16(p + 2, (uint16_t)v);
}

static uint32_t
get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Ethernet + IPv4 + TCP from the client to the server, checksums right. */
static uint32_t cli_ip; /* network order */
static uint16_t cli_port = CLI_PORT;

static size_t
tcp_frame(uint8_t *f, uint8_t flags, uint32_t seq, uint32_t ack, const char *data)
{
	size_t dl = data ? strlen(data) : 0;
	uint8_t *ip = f + ETH_LEN, *th = ip + IP_LEN;
	uint8_t pseudo[12];
	uint32_t src = cli_ip, dst = ip4("10.9.0.2");
	uint32_t sum = 0;

	memset(f, 0, ETH_LEN + IP_LEN + TCP_LEN);
	memcpy(f, srv_mac, 6);
	memcpy(f + 6, cli_mac, 6);
	put16(f + 12, 0x0800);
	ip[0] = 0x45;
	put16(ip + 2, (uint16_t)(IP_LEN + TCP_LEN + dl));
	ip[8] = 64;
	ip[9] = 6;
	memcpy(ip + 12, &src, 4);
	memcpy(ip + 16, &dst, 4);
	put16(ip + 10, csum(ip, IP_LEN, 0));
	put16(th, cli_port);
	put16(th + 2, PORT);
	put32(th + 4, seq);
	put32(th + 8, ack);
	th[12] = 5 << 4;
	th[13] = flags;
	put16(th + 14, 65535);
	for (size_t i = 0; i < dl; i++) { /* the payload only: no terminator on the wire */
		th[TCP_LEN + i] = (uint8_t)data[i];
	}
	memcpy(pseudo, ip + 12, 8);
	pseudo[8] = 0;
	pseudo[9] = 6;
	put16(pseudo + 10, (uint16_t)(TCP_LEN + dl));
	for (size_t i = 0; i < 12; i += 2) {
		sum += (uint32_t)(pseudo[i] << 8 | pseudo[i + 1]);
	}
	put16(th + 16, csum(th, TCP_LEN + dl, sum));
	return ETH_LEN + IP_LEN + TCP_LEN + dl;
}

/* The client's ARP reply to the server's request. */
static size_t
arp_reply(uint8_t *f)
{
	uint32_t cli = ip4("10.9.0.1"), srv = ip4("10.9.0.2");

	memcpy(f, srv_mac, 6);
	memcpy(f + 6, cli_mac, 6);
	put16(f + 12, 0x0806);
	put16(f + 14, 1);
	put16(f + 16, 0x0800);
	f[18] = 6;
	f[19] = 4;
	put16(f + 20, 2);
	memcpy(f + 22, cli_mac, 6);
	memcpy(f + 28, &cli, 4);
	memcpy(f + 32, srv_mac, 6);
	memcpy(f + 38, &srv, 4);
	memset(f + 42, 0, 18);
	return 60;
}

static struct rte_mbuf *
mbuf_of(const uint8_t *f, size_t n)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(pool);

	assert_non_null(m);
	memcpy(rte_pktmbuf_append(m, (uint16_t)n), f, n);
	return m;
}

static void tx_drop(void);

static void
open_stack(struct bx_lw *l)
{
	struct bx_lw_conf c = {
		.ip = ip4("10.9.0.2"),
		.netmask = ip4("255.255.255.0"),
		.tx_pool = pool,
		.tx = &txb,
	};
	struct bx_errbuf eb = { .msg = "" };

	memcpy(c.mac, srv_mac, 6);
	if (bx_lw_open(l, &c, &eb) != 0) {
		fail_msg("%s", eb.msg);
	}
	/* the netif coming up announces itself (gratuitous ARP); not what is tested */
	tx_drop();
	l->tx_frames = 0;
}

static err_t
on_recv(void *arg, struct tcp_pcb *pcb, struct pbuf *p, err_t err)
{
	struct accepted *a = arg;

	if (p) {
		a->len = p->tot_len < sizeof(a->data) ? p->tot_len : sizeof(a->data) - 1;
		memcpy(a->data, p->payload, a->len < p->len ? a->len : p->len);
		a->held = p; /* the test frees it, to watch the mbuf come back */
	}
	return ERR_OK;
}

static err_t
on_accept(void *arg, struct tcp_pcb *pcb, err_t err)
{
	struct accepted *a = arg;

	a->pcb = pcb;
	a->nb_accept++;
	a->l->f.tcp_arg(pcb, a);
	return ERR_OK;
}

static void
listen_on(struct bx_lw *l, struct accepted *a)
{
	struct tcp_pcb *pcb = l->f.tcp_new();
	ip_addr_t any;

	IP_ADDR4(&any, 0, 0, 0, 0);
	a->l = l;
	assert_non_null(pcb);
	assert_int_equal(l->f.tcp_bind(pcb, &any, PORT), ERR_OK);
	pcb = l->f.tcp_listen_with_backlog(pcb, 8);
	assert_non_null(pcb);
	l->f.tcp_arg(pcb, a);
	l->f.tcp_accept(pcb, on_accept);
}

static const uint8_t *
tx_frame(unsigned i, uint16_t *len)
{
	assert_true(i < txb.n);
	*len = rte_pktmbuf_data_len(txb.m[i]);
	return rte_pktmbuf_mtod(txb.m[i], const uint8_t *);
}

static void
tx_drop(void)
{
	rte_pktmbuf_free_bulk(txb.m, txb.n);
	txb.n = 0;
}

/* The one frame sent: an ARP request for the client. */
static void
expect_arp_request(void)
{
	uint16_t len;
	const uint8_t *f;
	uint32_t cli = ip4("10.9.0.1");

	assert_int_equal(txb.n, 1);
	f = tx_frame(0, &len);
	assert_true(len >= 42);
	assert_int_equal(f[12] << 8 | f[13], 0x0806);
	assert_int_equal(f[20] << 8 | f[21], 1);
	assert_memory_equal(f + 38, &cli, 4);
	tx_drop();
}

/* The one frame sent: TCP to the client with these flags; returns its seq. */
static uint32_t
expect_tcp(uint8_t flags, uint32_t ack)
{
	uint16_t len;
	const uint8_t *f, *th;

	/* the last frame; before it at most pure ACKs (lwIP acks data as it likes) */
	assert_true(txb.n >= 1);
	for (unsigned i = 0; i + 1 < txb.n; i++) {
		f = tx_frame(i, &len);
		th = f + ETH_LEN + (size_t)(f[ETH_LEN] & 0xf) * 4;
		assert_int_equal(th[13] & (F_SYN | F_ACK | F_RST | F_FIN), F_ACK);
	}
	f = tx_frame(txb.n - 1, &len);
	assert_memory_equal(f, cli_mac, 6);
	assert_memory_equal(f + 6, srv_mac, 6);
	assert_int_equal(f[12] << 8 | f[13], 0x0800);
	th = f + ETH_LEN + (size_t)(f[ETH_LEN] & 0xf) * 4;
	assert_int_equal(th[0] << 8 | th[1], PORT);
	assert_int_equal(th[2] << 8 | th[3], cli_port);
	assert_int_equal(th[13] & (F_SYN | F_ACK | F_RST), flags);
	if (flags & F_ACK) {
		assert_int_equal(get32(th + 8), ack);
	}
	ack = get32(th + 4);
	tx_drop();
	return ack;
}

static int
setup(void **state)
{
	struct bx_errbuf eb = { .msg = "" };
	int r = bx_dpdk_eal_init("--no-huge -m 64 --no-pci --log-level=lib.eal:error", &eb);

	if (r < 0) {
		bx_test_skip(eb.msg); /* no EAL on this machine (permissions, memory): say why */
	}
	pool = rte_pktmbuf_pool_create("glue", NB_MBUF, 0, (uint16_t)bx_lw_mbuf_priv_size(),
	                               RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
	assert_non_null(pool);
	txb.flush = flush_free;
	cli_ip = ip4("10.9.0.1");
	return 0;
}

static void
test_syn_arp_synack_data(void **state)
{
	struct bx_lw l;
	struct accepted a = { 0 };
	uint8_t f[256];
	uint32_t iss;
	unsigned before;
	struct rte_mbuf *m;

	tx_drop();
	before = rte_mempool_avail_count(pool);
	open_stack(&l);
	listen_on(&l, &a);
	bx_lw_input(&l, mbuf_of(f, tcp_frame(f, F_SYN, 1000, 0, NULL)));
	expect_arp_request(); /* the SYN-ACK waits in lwIP's ARP queue */
	bx_lw_input(&l, mbuf_of(f, arp_reply(f)));
	iss = expect_tcp(F_SYN | F_ACK, 1001);
	assert_int_equal(rte_mempool_avail_count(pool), before); /* RX mbufs went back */

	bx_lw_input(&l, mbuf_of(f, tcp_frame(f, F_ACK, 1001, iss + 1, NULL)));
	assert_int_equal(a.nb_accept, 1);
	l.f.tcp_recv(a.pcb, on_recv);

	m = mbuf_of(f, tcp_frame(f, F_ACK | F_PSH, 1001, iss + 1, "GET / HTTP/1.1\r\n"));
	bx_lw_input(&l, m);
	assert_non_null(a.held);
	assert_int_equal(a.len, 16);
	assert_memory_equal(a.data, "GET / HTTP/1.1\r\n", 16);
	/* zero copy: the payload is inside the mbuf, which is out of the pool until freed */
	assert_ptr_equal(a.held->payload, rte_pktmbuf_mtod_offset(m, char *, 54));
	assert_int_equal(rte_mempool_avail_count(pool), before - 1);
	l.f.pbuf_free(a.held);
	assert_int_equal(rte_mempool_avail_count(pool), before);

	l.f.tcp_abort(a.pcb); /* an RST goes out */
	expect_tcp(F_RST | F_ACK, 1017);
	bx_lw_close(&l);
	tx_drop();
	assert_int_equal(rte_mempool_avail_count(pool), before);
}

static void
test_copies_share_nothing(void **state)
{
	struct bx_lw l1, l2;
	struct accepted a = { 0 };
	uint8_t f[256];

	open_stack(&l1);
	open_stack(&l2);
	assert_ptr_not_equal(l1.f.tcp_new, l2.f.tcp_new);
	assert_ptr_not_equal(l1.active_pcbs, l2.active_pcbs);
	listen_on(&l1, &a);
	/* the same SYN to the other copy: no listener there, so an RST (after ARP) */
	bx_lw_input(&l2, mbuf_of(f, tcp_frame(f, F_SYN, 5000, 0, NULL)));
	expect_arp_request();
	bx_lw_input(&l2, mbuf_of(f, arp_reply(f)));
	expect_tcp(F_RST | F_ACK, 5001);
	assert_int_equal(a.nb_accept, 0);
	/* and the listener's copy answers it; its ARP cache is its own, so it asks too */
	bx_lw_input(&l1, mbuf_of(f, tcp_frame(f, F_SYN, 5000, 0, NULL)));
	expect_arp_request();
	bx_lw_input(&l1, mbuf_of(f, arp_reply(f)));
	expect_tcp(F_SYN | F_ACK, 5001);
	bx_lw_close(&l1);
	bx_lw_close(&l2);
}

static void
test_chained_mbuf_is_copied(void **state)
{
	struct bx_lw l;
	struct accepted a = { 0 };
	uint8_t f[256];
	size_t n;
	uint32_t iss;
	struct rte_mbuf *m, *tail;
	unsigned before;

	tx_drop(); /* what earlier tests' closes sent */
	before = rte_mempool_avail_count(pool);
	open_stack(&l);
	listen_on(&l, &a);
	bx_lw_input(&l, mbuf_of(f, arp_reply(f))); /* learn the client first */
	assert_int_equal(txb.n, 0);
	bx_lw_input(&l, mbuf_of(f, tcp_frame(f, F_SYN, 7000, 0, NULL)));
	iss = expect_tcp(F_SYN | F_ACK, 7001);
	bx_lw_input(&l, mbuf_of(f, tcp_frame(f, F_ACK, 7001, iss + 1, NULL)));
	l.f.tcp_recv(a.pcb, on_recv);
	/* the same segment in two mbufs: headers in one, the payload in the next */
	n = tcp_frame(f, F_ACK | F_PSH, 7001, iss + 1, "chained!");
	m = mbuf_of(f, n - 8);
	tail = mbuf_of(f + n - 8, 8);
	assert_int_equal(rte_pktmbuf_chain(m, tail), 0);
	bx_lw_input(&l, m);
	assert_int_equal(l.rx_copied, 1);
	assert_non_null(a.held);
	assert_memory_equal(a.data, "chained!", 8);
	tx_drop();                                               /* lwIP's ACK */
	assert_int_equal(rte_mempool_avail_count(pool), before); /* both mbufs freed at once */
	l.f.pbuf_free(a.held);
	bx_lw_close(&l);
	tx_drop();
	assert_int_equal(rte_mempool_avail_count(pool), before);
}

static void
test_full_burst_flushes(void **state)
{
	struct bx_lw l;
	uint8_t f[256];
	unsigned before = flushes;

	open_stack(&l);
	/* SYNs from unknown peers, no listener: each RST needs an ARP request first */
	for (unsigned i = 0; i < BX_DPDK_TX_CAP + 3; i++) {
		cli_ip = htonl(0x0a090000u + 10 + i);
		bx_lw_input(&l, mbuf_of(f, tcp_frame(f, F_SYN, 1, 0, NULL)));
	}
	cli_ip = ip4("10.9.0.1");
	assert_int_equal(l.tx_frames, BX_DPDK_TX_CAP + 3);
	assert_int_equal(flushes, before + 1); /* the burst filled once */
	assert_int_equal(txb.n, 3);
	tx_drop();
	bx_lw_close(&l);
}

/* lwIP allocates from the copy's own heap, and its ISNs are keyed hashes, not a counter. */
static void
test_heap_and_isn(void **state)
{
	struct bx_lw l;
	struct accepted a = { 0 };
	uint8_t f[256];
	uint32_t iss[4];
	uint64_t allocs;
	bool spread = false;

	open_stack(&l);
	listen_on(&l, &a);
	bx_lw_input(&l, mbuf_of(f, arp_reply(f)));
	allocs = l.heap ? l.heap->allocs : 0;
	for (int i = 0; i < 4; i++) {
		cli_port = (uint16_t)(41000 + i);
		bx_lw_input(&l, mbuf_of(f, tcp_frame(f, F_SYN, 100, 0, NULL)));
		iss[i] = expect_tcp(F_SYN | F_ACK, 101);
	}
	cli_port = CLI_PORT;
	for (int i = 1; i < 4; i++) {
		/* lwIP's own tcp_next_iss adds the tick count: these would be a few apart */
		spread = spread || iss[i] - iss[0] > 1000000u;
	}
	assert_true(spread);
	if (bx_mem_debug()) {
		assert_null(l.heap); /* BX_DEBUG_POOL: glibc's heap, for ASan */
	} else {
		assert_non_null(l.heap);
		assert_true(l.heap->allocs > allocs); /* four pcbs at least */
		assert_int_equal(l.heap->libc, 0);
		assert_true(l.heap->live > 0);
	}
	bx_lw_close(&l);
	tx_drop();
}

static void
test_missing_library(void **state)
{
	struct bx_lw l;
	struct bx_lw_conf c = { .lib_path = "/nonexistent/liblwip.so.0",
		                .tx_pool = pool,
		                .tx = &txb };
	struct bx_errbuf eb = { .msg = "" };

	assert_int_equal(bx_lw_open(&l, &c, &eb), -ENOENT);
	assert_non_null(strstr(eb.msg, "/nonexistent/liblwip.so.0"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_syn_arp_synack_data),
		cmocka_unit_test(test_copies_share_nothing),
		cmocka_unit_test(test_chained_mbuf_is_copied),
		cmocka_unit_test(test_full_burst_flushes),
		cmocka_unit_test(test_heap_and_isn),
		cmocka_unit_test(test_missing_library),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
