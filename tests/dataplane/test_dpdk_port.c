/*
 * Covers: dataplane/port_dpdk.c and dpdk_tcp.c end to end. A real EAL
 * (--no-huge), a net_tap device whose kernel side the test moves into a
 * network namespace it creates, a client there speaking real TCP (the
 * kernel's) to lwIP on the dataplane's workers: signed synapses with
 * keep-alive, pipelining under backpressure, many concurrent connections,
 * and a SYN flood from a source that is not on the allow-list, dropped
 * before TCP while the validator's requests keep succeeding.
 *
 * Needs root and /dev/net/tun (exits 77, saying which, without them).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>

#include <bx/crypto.h>
#include <bx/dataplane.h>

#include "bx_test.h"
#include "dp_testlib.h"

#define CLI_IP    "10.213.7.1"
#define FLOOD_IP  "10.213.7.66"
#define SRV_IP    "10.213.7.2"
#define WIRE_MAC  "02:0b:00:00:00:02"
#define MGMT_PORT 2222

static struct dpt_keys K;
static struct bx_dp *DP;
static uint16_t PORT;
static char ns_name[32], ifname[16];
static char kns_name[32], excname[16]; /* the appliance's kernel, behind the exception path */
static int root_ns = -1, test_ns = -1, kernel_ns = -1;
static bool ns_created;

static int teardown(void **state);

/* Deferred answers (what bxd's inference handlers do): a handler defers, a thread answers. */
static struct bx_call_ticket *deferred[16];
static unsigned nb_deferred, nb_completed;

static int
defer_handler(void *arg, struct bx_call *c)
{
	struct bx_call_ticket *t = bx_call_defer(c);
	unsigned i;

	if (!t) {
		return bx_call_fail(c, 503, "busy");
	}
	i = __atomic_fetch_add(&nb_deferred, 1, __ATOMIC_SEQ_CST);
	__atomic_store_n(&deferred[i % 16], t, __ATOMIC_RELEASE);
	return BX_CALL_PENDING;
}

/* Streamed answers: a thread streams four pieces 20 ms apart, then completes. */
static const char *const PIECES[] = { "Once", " upon", " a", " time" };

static void *
streamer(void *arg)
{
	struct bx_call_ticket *t = arg;

	for (unsigned i = 0; i < BX_ARRAY_SIZE(PIECES); i++) {
		usleep(20000);
		if (bx_ticket_stream(t, PIECES[i], strlen(PIECES[i])) != 0) {
			bx_ticket_fail(t, 500, "stream refused");
			break;
		}
	}
	bx_ticket_complete(t);
	return NULL;
}

static int
stream_handler(void *arg, struct bx_call *c)
{
	struct bx_call_ticket *t = bx_call_defer(c);
	pthread_t th;

	(void)arg;
	if (!t || pthread_create(&th, NULL, streamer, t) != 0) {
		return bx_call_fail(c, 503, "busy"); /* a ticket taken is released unanswered */
	}
	pthread_detach(th);
	return BX_CALL_PENDING;
}

static struct bx_metagraph *
make_mg(void)
{
	char buf[4096];
	int n = snprintf(buf, sizeof(buf),
	                 "{\"netuid\": 1, \"block\": 7, \"neurons\": ["
	                 "{\"uid\": 0, \"hotkey\": \"%s\", \"stake\": 5000.0, "
	                 "\"validator_permit\": true, \"ip\": \"" CLI_IP "\"}, "
	                 "{\"uid\": 1, \"hotkey\": \"%s\", \"stake\": 10.0, "
	                 "\"validator_permit\": false, \"ip\": \"" FLOOD_IP "\"}]}",
	                 K.validator_ss58, K.nopermit_ss58);
	struct bx_metagraph *mg;
	struct bx_errbuf eb;

	if (bx_metagraph_parse(buf, (size_t)n, "test", &mg, &eb) < 0) {
		fprintf(stderr, "metagraph: %s\n", eb.msg);
		abort();
	}
	return mg;
}

static void
need(void)
{
	if (geteuid() != 0) {
		bx_test_skip("needs root (network namespace, net_tap)");
	}
	if (access("/dev/net/tun", R_OK | W_OK) != 0) {
		bx_test_skip("needs /dev/net/tun for net_tap");
	}
	if (system("ip -V > /dev/null 2>&1") != 0) {
		bx_test_skip("needs iproute2's ip");
	}
}

static void
conf_dpdk(struct bx_dp_conf *c, unsigned nb_cores)
{
	bx_dp_conf_default(c);
	c->port_backend = "dpdk";
	c->port = 0;
	c->nb_cores = nb_cores;
	c->cpus[0] = 0;
	c->cpus[1] = 1;
	c->pin = false;
	c->max_conns = 256;
	c->hotkey = K.miner;
	c->replay_slots = 1 << 16;
	snprintf(c->dpdk_eal_args, sizeof(c->dpdk_eal_args),
	         "--no-huge -m 256 --no-pci --log-level=lib.eal:error");
	snprintf(c->dpdk_device, sizeof(c->dpdk_device), "net_tap_%s,iface=%s,mac=" WIRE_MAC,
	         ifname, ifname);
	snprintf(c->dpdk_exception, sizeof(c->dpdk_exception), "net_tap_%s,iface=%s", excname,
	         excname);
	snprintf(c->dpdk_addr, sizeof(c->dpdk_addr), SRV_IP "/24");
	c->dpdk_idle_us = 50; /* a shared test machine: do not spin on idle cores */
	c->dpdk_syn_rate = 20;
	c->dpdk_syn_burst = 20;
	c->dpdk_open_rate = 4000;
	c->dpdk_open_burst = 4000;
}

/* The port gave the exception interface's kernel side the wire port's MAC. */
static int
exc_mac_check(void)
{
	char path[64], mac[32] = "";
	FILE *f;

	snprintf(path, sizeof(path), "/sys/class/net/%s/address", excname);
	f = fopen(path, "r");
	if (!f || !fgets(mac, sizeof(mac), f)) {
		fprintf(stderr, "cannot read %s\n", path);
	}
	if (f) {
		fclose(f);
	}
	if (strncmp(mac, WIRE_MAC, strlen(WIRE_MAC)) != 0) {
		fprintf(stderr, "%s has MAC %s, not the wire's " WIRE_MAC "\n", excname, mac);
		return -1;
	}
	return 0;
}

static int
enter_ns(int fd)
{
	return setns(fd, CLONE_NEWNET);
}

static int
setup(void **state)
{
	struct bx_dp_conf c;
	struct bx_errbuf eb = { .msg = "" };
	char path[64];
	int r;

	need();
	snprintf(ns_name, sizeof(ns_name), "bxdp%d", (int)getpid());
	snprintf(ifname, sizeof(ifname), "bxw%d", (int)getpid() % 100000);
	snprintf(kns_name, sizeof(kns_name), "bxdk%d", (int)getpid());
	snprintf(excname, sizeof(excname), "bxe%d", (int)getpid() % 100000);
	/*
	 * net_tap signals its queue fds' activity with a realtime signal
	 * (F_SETSIG), and sockets with timeouts are not restarted after a
	 * signal. Blocked here before the dataplane starts, as bxd would: the
	 * workers unblock it for themselves, this thread and the clients never
	 * see an EINTR.
	 */
	{
		sigset_t io;

		sigemptyset(&io);
		sigaddset(&io, SIGIO);
		for (int sig = SIGRTMIN; sig <= SIGRTMAX; sig++) {
			sigaddset(&io, sig);
		}
		pthread_sigmask(SIG_BLOCK, &io, NULL);
	}
	dpt_keys_make(&K);
	conf_dpdk(&c, 2);
	r = bx_dp_create(&c, make_mg(), &DP, &eb);
	if (r == 0) {
		r = bx_dp_set_handler(DP, "TextEmbedding", defer_handler, NULL);
	}
	if (r == 0) {
		r = bx_dp_set_handler(DP, "StreamingTextGeneration", stream_handler, NULL);
	}
	if (r == 0) {
		r = bx_dp_start(DP, &eb);
	}
	if (r < 0) {
		fprintf(stderr, "start: %s\n", eb.msg);
		return -1;
	}
	PORT = bx_dp_port(DP);
	ns_created = true;
	/* the tap's kernel side becomes the client's link, in its own namespace */
	if (dpt_sh("ip netns add %s", ns_name) ||
	    dpt_sh("ip link set %s netns %s", ifname, ns_name) ||
	    dpt_sh("ip -n %s addr add " CLI_IP "/24 dev %s", ns_name, ifname) ||
	    dpt_sh("ip -n %s addr add " FLOOD_IP "/24 dev %s", ns_name, ifname) ||
	    dpt_sh("ip -n %s link set %s up", ns_name, ifname) ||
	    dpt_sh("ip -n %s link set lo up", ns_name) || exc_mac_check() ||
	    dpt_sh("ip netns add %s", kns_name) ||
	    dpt_sh("ip link set %s netns %s", excname, kns_name) ||
	    dpt_sh("ip -n %s addr add " SRV_IP "/24 dev %s", kns_name, excname) ||
	    dpt_sh("ip -n %s link set %s up", kns_name, excname)) {
		teardown(state); /* cmocka skips the group teardown when setup fails */
		return -1;
	}
	root_ns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	snprintf(path, sizeof(path), "/var/run/netns/%s", ns_name);
	test_ns = open(path, O_RDONLY | O_CLOEXEC);
	snprintf(path, sizeof(path), "/var/run/netns/%s", kns_name);
	kernel_ns = open(path, O_RDONLY | O_CLOEXEC);
	if (root_ns < 0 || test_ns < 0 || kernel_ns < 0 || enter_ns(test_ns) < 0) {
		fprintf(stderr, "setns: %s\n", strerror(errno));
		teardown(state);
		return -1;
	}
	return 0;
}

static int
teardown(void **state)
{
	if (root_ns >= 0) {
		enter_ns(root_ns);
	}
	if (DP) {
		bx_dp_stop(DP, 1000);
		bx_dp_destroy(DP);
		DP = NULL;
	}
	if (ns_created) {
		dpt_sh("ip netns del %s", ns_name);
		dpt_sh("ip netns del %s 2> /dev/null", kns_name);
		ns_created = false;
	}
	dpt_keys_free(&K);
	return 0;
}

/* A TCP connection from src (NULL: any) to the appliance's port. -1 on failure. */
static int
dial_port(const char *src, uint16_t port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	struct timeval tv = { .tv_sec = 5 };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	if (fd < 0) {
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (src) {
		struct sockaddr_in b = { .sin_family = AF_INET };

		inet_pton(AF_INET, src, &b.sin_addr);
		if (bind(fd, (struct sockaddr *)&b, sizeof(b)) < 0) {
			close(fd);
			return -1;
		}
	}
	inet_pton(AF_INET, SRV_IP, &a.sin_addr);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		fprintf(stderr, "connect from %s: %s\n", src ? src : "any", strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

static int
dial(const char *src)
{
	return dial_port(src, PORT);
}

/* Read one response; its status, or -1. */
static int
read_one(int fd, char *buf, size_t cap)
{
	size_t len = 0;
	struct dpt_resp r;

	while (dpt_parse_resp(buf, len, &r) != 0) {
		ssize_t k = recv(fd, buf + len, cap - len, 0);

		if (k <= 0 || len + (size_t)k >= cap) {
			return -1;
		}
		len += (size_t)k;
	}
	return r.status;
}

/* n signed requests on one keep-alive connection; how many got 200. */
static int
signed_requests(int fd, int n)
{
	static __thread char req[16384], buf[65536];
	int ok = 0;

	for (int i = 0; i < n; i++) {
		struct dpt_req q;
		size_t len;

		dpt_req_init(&q, &K, "Synapse");
		len = dpt_build(&q, req, sizeof(req));
		if (dpt_send_all(fd, req, len) < 0) {
			break;
		}
		ok += read_one(fd, buf, sizeof(buf)) == 200;
	}
	return ok;
}

static void
test_keepalive(void **state)
{
	struct bx_dp_stats s;
	int fd = dial(NULL);

	assert_true(fd >= 0);
	assert_int_equal(signed_requests(fd, 20), 20);
	close(fd);
	bx_dp_stats(DP, &s);
	assert_true(s.responses_ok >= 20);
	assert_true(s.conns_accepted >= 1);
	assert_true(s.pkt[BX_DP_P_ALLOWED] > 0); /* the validator's IP is on the allow-list */
	assert_true(s.pkt[BX_DP_P_ARP] > 0);
	assert_true(s.pkt[BX_DP_P_TX] > 0);
	assert_int_equal(s.pkt[BX_DP_P_DROP_MALFORMED], 0);
}

static void
test_pipelined_backpressure(void **state)
{
	enum {
		N = 300
	};

	static char req[N * 2400];
	struct dpt_req q;
	size_t n = 0, sent = 0;
	unsigned got = 0;
	int fd, rcvbuf = 4096;
	uint64_t deadline = bx_time_ns() + 30000000000ull;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	/* a small window: lwIP's sends stall and the server's send side backs up */
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	{
		struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(PORT) };

		inet_pton(AF_INET, SRV_IP, &a.sin_addr);
		assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	}
	for (int i = 0; i < N; i++) {
		dpt_req_init(&q, &K, "Synapse");
		n += dpt_build(&q, req + n, sizeof(req) - n);
	}
	got = dpt_pipeline(fd, req, n, sent, N, deadline);
	assert_int_equal(got, N);
	close(fd);
}

struct client {
	pthread_t t;
	int conns, reqs, ok, dial_failed;
};

static void *
client_main(void *arg)
{
	struct client *c = arg;
	int fds[8];

	if (enter_ns(test_ns) < 0) {
		return NULL;
	}
	for (int i = 0; i < c->conns; i++) {
		fds[i] = dial(NULL);
		c->dial_failed += fds[i] < 0;
	}
	for (int r = 0; r < c->reqs; r++) {
		for (int i = 0; i < c->conns; i++) {
			if (fds[i] >= 0) {
				c->ok += signed_requests(fds[i], 1);
			}
		}
	}
	for (int i = 0; i < c->conns; i++) {
		if (fds[i] >= 0) {
			close(fds[i]);
		}
	}
	return NULL;
}

static void
test_concurrent_connections(void **state)
{
	struct client cl[8];
	struct bx_dp_stats before, after;
	int ok = 0;

	bx_dp_stats(DP, &before);
	for (int i = 0; i < 8; i++) {
		memset(&cl[i], 0, sizeof(cl[i]));
		cl[i].conns = 8;
		cl[i].reqs = 4;
		assert_int_equal(pthread_create(&cl[i].t, NULL, client_main, &cl[i]), 0);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(cl[i].t, NULL);
		assert_int_equal(cl[i].dial_failed, 0);
		ok += cl[i].ok;
	}
	assert_int_equal(ok, 8 * 8 * 4);
	bx_dp_stats(DP, &after);
	assert_true(after.conns_accepted - before.conns_accepted >= 64);
}

struct flood {
	pthread_t t;
	uint64_t until_ns;
	unsigned max;
	unsigned sent;
};

/* SYNs from FLOOD_IP (an address of the namespace, so nothing is spoofed). */
static void *
flood_main(void *arg)
{
	struct flood *f = arg;
	struct sockaddr_in dst = { .sin_family = AF_INET };
	uint8_t pkt[40];
	int fd;

	if (enter_ns(test_ns) < 0) {
		return NULL;
	}
	fd = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
	if (fd < 0) {
		return NULL;
	}
	inet_pton(AF_INET, SRV_IP, &dst.sin_addr);
	for (unsigned i = 0; i < f->max && bx_time_ns() < f->until_ns; i++) {
		dpt_syn_frame(pkt, FLOOD_IP, dst.sin_addr.s_addr, (uint16_t)(20000 + i % 40000),
		              PORT, i * 7919u);
		if (sendto(fd, pkt, sizeof(pkt), 0, (struct sockaddr *)&dst, sizeof(dst)) > 0) {
			f->sent++;
		} else if (errno == ENOBUFS || errno == EAGAIN) {
			usleep(100);
		}
	}
	close(fd);
	return NULL;
}

static void
test_flood_from_unlisted_source(void **state)
{
	struct flood f = { .max = 400000 };
	struct bx_dp_stats before, after;
	int total = 0, ok = 0, fd;
	uint64_t t0, open;
	double dropped;

	bx_dp_stats(DP, &before);
	t0 = bx_time_ns();
	f.until_ns = t0 + 2000000000ull;
	assert_int_equal(pthread_create(&f.t, NULL, flood_main, &f), 0);
	usleep(100000);
	/* the validator keeps working: old connection, and new ones during the flood */
	fd = dial(NULL);
	assert_true(fd >= 0);
	while (bx_time_ns() < f.until_ns - 100000000ull && total < 400) {
		total += 4;
		ok += signed_requests(fd, 3);
		{
			int fd2 = dial(NULL);

			ok += fd2 >= 0 && signed_requests(fd2, 1) == 1;
			if (fd2 >= 0) {
				close(fd2);
			}
		}
	}
	close(fd);
	pthread_join(f.t, NULL);
	bx_dp_stats(DP, &after);
	dropped = (double)(after.pkt[BX_DP_P_DROP_SYN_RATE] - before.pkt[BX_DP_P_DROP_SYN_RATE] +
	                   after.pkt[BX_DP_P_DROP_OPEN_LANE] - before.pkt[BX_DP_P_DROP_OPEN_LANE]);
	open = after.pkt[BX_DP_P_OPEN] - before.pkt[BX_DP_P_OPEN];
	print_message("flood: %u SYNs sent in %.2f s, %" PRIu64 " frames reached the dataplane, "
	              "%.0f dropped before TCP (syn_rate %" PRIu64 ", open_lane %" PRIu64
	              "), %" PRIu64 " passed on the open lane; validator %d/%d ok\n",
	              f.sent, (double)(bx_time_ns() - t0) * 1e-9,
	              after.pkt[BX_DP_P_RX] - before.pkt[BX_DP_P_RX], dropped,
	              after.pkt[BX_DP_P_DROP_SYN_RATE] - before.pkt[BX_DP_P_DROP_SYN_RATE],
	              after.pkt[BX_DP_P_DROP_OPEN_LANE] - before.pkt[BX_DP_P_DROP_OPEN_LANE], open,
	              ok, total);
	assert_true(f.sent > 1000);
	assert_true(total > 0);
	assert_int_equal(ok, total);
	assert_true(dropped > 1000);
	/* per worker: the SYN burst (20) plus 20/s for the flood's ~2 s, and the handshakes' ACKs */
	assert_true(open < 1000);
	assert_true(after.pkt[BX_DP_P_ALLOWED] > before.pkt[BX_DP_P_ALLOWED]);
}

static void
test_unlisted_client_still_served(void **state)
{
	/* the open lane serves strangers within their budget (admission then says 403/200) */
	int fd;

	sleep(2); /* the flooder's SYN bucket refills (it is the same address) */
	fd = dial(FLOOD_IP);
	assert_true(fd >= 0);
	assert_int_equal(signed_requests(fd, 3), 3);
	close(fd);
}

/* The stranger above answered 200 with a validator's signature: its address was learnt. */
static void
test_learned_validator_ip(void **state)
{
	struct bx_dp_stats before, after;
	int fd;

	usleep(10000); /* the other worker drains its learn ring on its next poll */
	bx_dp_stats(DP, &before);
	fd = dial(FLOOD_IP);
	assert_true(fd >= 0);
	assert_int_equal(signed_requests(fd, 2), 2);
	close(fd);
	bx_dp_stats(DP, &after);
	assert_int_equal(after.pkt[BX_DP_P_OPEN], before.pkt[BX_DP_P_OPEN]);
	assert_true(after.pkt[BX_DP_P_ALLOWED] > before.pkt[BX_DP_P_ALLOWED]);
}

/* Answers every deferred request 20 ms later, from this thread. */
static void *
completer(void *arg)
{
	unsigned want = *(unsigned *)arg;
	uint64_t deadline = bx_time_ns() + 20000000000ull;

	while (__atomic_load_n(&nb_completed, __ATOMIC_SEQ_CST) < want && bx_time_ns() < deadline) {
		unsigned i = __atomic_load_n(&nb_completed, __ATOMIC_SEQ_CST);
		struct bx_call_ticket *t;

		if (i >= __atomic_load_n(&nb_deferred, __ATOMIC_SEQ_CST) ||
		    !(t = __atomic_exchange_n(&deferred[i % 16], NULL, __ATOMIC_ACQ_REL))) {
			usleep(500);
			continue;
		}
		usleep(20000);
		if (bx_ticket_set_output(t, "embeddings", "[[1.0,2.5]]", 11) != 0) {
			bx_ticket_fail(t, 500, "set_output failed");
		}
		bx_ticket_complete(t);
		__atomic_fetch_add(&nb_completed, 1, __ATOMIC_SEQ_CST);
	}
	return NULL;
}

static void
test_deferred_answers(void **state)
{
	static char req[1 << 15], buf[1 << 16];
	struct dpt_req q;
	struct dpt_resp r;
	uint8_t d[32];
	char inner[65], hash[65];
	size_t n = 0, len = 0, off = 0;
	pthread_t th;
	unsigned want = 2, got = 0;
	int fd, status[3];

	bx_sha3_256(d, "['a']", 5);
	bx_hex_encode(inner, d, 32);
	bx_sha3_256(d, inner, 64);
	bx_hex_encode(hash, d, 32);
	assert_int_equal(pthread_create(&th, NULL, completer, &want), 0);
	/* deferred, echo, deferred on one connection: answers come back in order */
	for (int i = 0; i < 3; i++) {
		dpt_req_init(&q, &K, "Synapse");
		if (i != 1) {
			q.synapse = "TextEmbedding";
			q.fields_json = "\"texts\": [\"a\"]";
			q.body_hash = hash;
		}
		n += dpt_build(&q, req + n, sizeof(req) - n);
	}
	fd = dial(NULL);
	assert_true(fd >= 0);
	assert_int_equal(dpt_send_all(fd, req, n), 0);
	while (got < 3) {
		ssize_t k;

		if (dpt_parse_resp(buf + off, len - off, &r) == 0) {
			status[got] = r.status;
			assert_non_null(memmem(r.body, r.body_len,
			                       got == 1 ? "\"name\":\"Synapse\"" :
			                                  "\"embeddings\":[[1.0,2.5]]",
			                       got == 1 ? 16 : 24));
			off += r.total;
			got++;
			continue;
		}
		k = recv(fd, buf + len, sizeof(buf) - len, 0);
		if (k <= 0) {
			fail_msg("recv after %u answers: %s", got, strerror(errno));
		}
		len += (size_t)k;
	}
	close(fd);
	pthread_join(th, NULL);
	assert_int_equal(status[0], 200);
	assert_int_equal(status[1], 200);
	assert_int_equal(status[2], 200);
}

/* A StreamingTextGeneration request with prompt "p" (other fields default). */
static size_t
stream_req(char *buf, size_t cap)
{
	static const char *const strs[] = { "[]", "p", "256", "1.0", "1.0", "None" };
	char parts[6 * 64 + 1], hash[65];
	uint8_t d[32];
	struct dpt_req q;

	for (int i = 0; i < 6; i++) {
		bx_sha3_256(d, strs[i], strlen(strs[i]));
		bx_hex_encode(parts + 64 * i, d, 32);
	}
	bx_sha3_256(d, parts, 6 * 64);
	bx_hex_encode(hash, d, 32);
	dpt_req_init(&q, &K, "Synapse");
	q.synapse = "StreamingTextGeneration";
	q.fields_json = "\"prompt\": \"p\"";
	q.body_hash = hash;
	return dpt_build(&q, buf, cap);
}

/* Through lwIP as on io_uring: chunks as they are produced, then what was pipelined. */
static void
test_streamed_answer(void **state)
{
	static char req[1 << 15], buf[1 << 16];
	static struct dpt_stream s;
	struct dpt_rx rx = { .fd = dial(NULL), .buf = buf, .cap = sizeof(buf) };
	struct dpt_resp e;
	struct dpt_req q;
	size_t n;

	assert_true(rx.fd >= 0);
	n = stream_req(req, sizeof(req));
	dpt_req_init(&q, &K, "Synapse");
	n += dpt_build(&q, req + n, sizeof(req) - n);
	assert_int_equal(dpt_send_all(rx.fd, req, n), 0);
	assert_true(dpt_read_stream(&rx, &s));
	assert_true(dpt_stream_ok(&s));
	assert_int_equal(s.nb_chunks, 4);
	assert_true(s.first_before_end);
	assert_int_equal(s.text_len, strlen("Once upon a time"));
	assert_memory_equal(s.text, "Once upon a time", s.text_len);
	assert_true(dpt_read_resp(&rx, &e));
	assert_int_equal(e.status, 200);
	assert_non_null(memmem(e.body, e.body_len, "\"name\":\"Synapse\"", 16));
	close(rx.fd);
}

struct mgmt {
	pthread_t t;
	int ready; /* atomic: 1 listening, -1 failed */
	char got[8];
};

/* A management service (think sshd) in the appliance's kernel: echo one line. */
static void *
mgmt_main(void *arg)
{
	struct mgmt *m = arg;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(MGMT_PORT) };
	struct timeval tv = { .tv_sec = 10 };
	int one = 1, lfd, fd;

	if (enter_ns(kernel_ns) < 0 || (lfd = socket(AF_INET, SOCK_STREAM, 0)) < 0) {
		__atomic_store_n(&m->ready, -1, __ATOMIC_RELEASE);
		return NULL;
	}
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(lfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (bind(lfd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(lfd, 4) < 0) {
		__atomic_store_n(&m->ready, -1, __ATOMIC_RELEASE);
		close(lfd);
		return NULL;
	}
	__atomic_store_n(&m->ready, 1, __ATOMIC_RELEASE);
	fd = accept(lfd, NULL, NULL);
	if (fd >= 0) {
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		if (recv(fd, m->got, 4, MSG_WAITALL) == 4) {
			send(fd, "pong", 4, MSG_NOSIGNAL);
		}
		close(fd);
	}
	close(lfd);
	return NULL;
}

static void
test_exception_path(void **state)
{
	struct mgmt m = { 0 };
	struct bx_dp_stats before, after;
	char buf[8] = "";
	int fd;

	bx_dp_stats(DP, &before);
	assert_int_equal(pthread_create(&m.t, NULL, mgmt_main, &m), 0);
	for (int i = 0; i < 500 && !__atomic_load_n(&m.ready, __ATOMIC_ACQUIRE); i++) {
		usleep(10000);
	}
	assert_int_equal(m.ready, 1);
	/* the appliance's address, another port: not the service, so the kernel's */
	fd = dial_port(NULL, MGMT_PORT);
	assert_true(fd >= 0);
	assert_int_equal(send(fd, "ping", 4, MSG_NOSIGNAL), 4);
	assert_int_equal(recv(fd, buf, 4, MSG_WAITALL), 4);
	assert_memory_equal(buf, "pong", 4);
	close(fd);
	pthread_join(m.t, NULL);
	assert_memory_equal(m.got, "ping", 4);
	bx_dp_stats(DP, &after);
	assert_true(after.pkt[BX_DP_P_EXC_TO_KERNEL] > before.pkt[BX_DP_P_EXC_TO_KERNEL]);
	assert_true(after.pkt[BX_DP_P_EXC_FROM_KERNEL] > before.pkt[BX_DP_P_EXC_FROM_KERNEL]);
	/* and the service is still lwIP's */
	fd = dial(NULL);
	assert_true(fd >= 0);
	assert_int_equal(signed_requests(fd, 2), 2);
	close(fd);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keepalive),
		cmocka_unit_test(test_pipelined_backpressure),
		cmocka_unit_test(test_concurrent_connections),
		cmocka_unit_test(test_flood_from_unlisted_source),
		cmocka_unit_test(test_unlisted_client_still_served),
		cmocka_unit_test(test_learned_validator_ip),
		cmocka_unit_test(test_exception_path),
		cmocka_unit_test(test_deferred_answers),
		cmocka_unit_test(test_streamed_answer),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
