/*
 * Benchmark: the same open-loop signed-echo load (/Synapse, every request
 * sr25519-verified, both response signatures made) through both ports in
 * one run, from a client in a network namespace:
 *
 *     uring:     the io_uring port on the kernel's TCP, over a veth pair
 *     dpdk_afp:  the DPDK port with lwIP, net_af_packet on a veth pair
 *     dpdk_tap:  the DPDK port with lwIP, net_tap
 *
 * then each again while a raw SYN flood comes from an address that is not
 * on the allow-list: the validator's throughput, p50/p99 and success rate.
 * Open loop: request i is due at t0 + i/rate and its latency counts from
 * that due time. One server core each (cpu 1), the client on cpu 0.
 *
 * Every path crosses the client's kernel and a virtual link: af_packet's
 * mmap'ed rings (a copy per frame each way, a sendto per TX burst), or the
 * tap (a read() per received frame, woken by a signal). These numbers say
 * what the software costs on virtual devices, not what a NIC would do.
 *
 * Needs root and /dev/net/tun (exits 77 without). Environment:
 * BX_BENCH_RATES="1000,2000,4000" BX_BENCH_SECS=2 BX_BENCH_CONNS=16
 * BX_BENCH_FLOOD_RATE=1000 (validator rate during the flood).
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
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bx_bench.h"
#include "bx_test.h"
#include "dp_testlib.h"

#define MAX_CONNS 64
#define FIFO      4096
#define REQ_MAX   2048

#define CLI_IP     "10.213.9.1"
#define FLOOD_IP   "10.213.9.66"
#define DPDK_IP    "10.213.9.2"
#define AFP_CLI    "10.213.11.1"
#define AFP_FLOOD  "10.213.11.66"
#define AFP_IP     "10.213.11.2"
#define VETH_CLI   "10.213.10.1"
#define VETH_FLOOD "10.213.10.66"
#define URING_IP   "10.213.10.2"

struct cconn {
	int fd;
	char rx[1 << 16];
	size_t rx_len;
	uint64_t due[FIFO];
	unsigned head, tail;
};

static struct dpt_keys K;
static char ns_name[32], tap[16], veth[16], vpeer[16], afp_dev[16], apeer[16];
static int cli_ns = -1;

static int
dial(const char *ip, uint16_t port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	inet_pton(AF_INET, ip, &a.sin_addr);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		if (fd >= 0) {
			close(fd);
		}
		return -1;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	fcntl(fd, F_SETFL, O_NONBLOCK);
	return fd;
}

static int
send_full(int fd, const char *p, size_t n)
{
	for (unsigned spins = 0; n && spins < 1000000; spins++) {
		ssize_t k = send(fd, p, n, MSG_NOSIGNAL);

		if (k < 0 && (errno == EAGAIN || errno == EINTR)) {
			continue;
		}
		if (k <= 0) {
			return -1;
		}
		p += k;
		n -= (size_t)k;
	}
	return n ? -1 : 0;
}

struct run {
	const char *name;
	const char *ip;
	uint16_t port;
	double rate, secs;
	unsigned nconns;
	/* results */
	size_t n, done, bad;
	uint64_t *lat;
	uint64_t t0, last;
};

static void
drain(struct cconn *c, struct run *r)
{
	ssize_t k = recv(c->fd, c->rx + c->rx_len, sizeof(c->rx) - c->rx_len, 0);
	uint64_t now = bx_time_ns();
	size_t off = 0;
	struct dpt_resp resp;

	if (k <= 0) {
		return;
	}
	c->rx_len += (size_t)k;
	while (dpt_parse_resp(c->rx + off, c->rx_len - off, &resp) == 0) {
		uint64_t due = c->due[c->head++ % FIFO];

		off += resp.total;
		if (resp.status == 200) {
			r->lat[r->done++] = now - due;
			r->last = now;
		} else {
			r->bad++;
		}
	}
	memmove(c->rx, c->rx + off, c->rx_len - off);
	c->rx_len -= off;
}

/* The open-loop client for one rate; fills r. */
static int
run_rate(struct run *r)
{
	size_t n = (size_t)(r->rate * r->secs), sent = 0;
	char *reqs = malloc(n * REQ_MAX);
	uint32_t *lens = malloc(n * sizeof(*lens));
	struct cconn *cc = calloc(r->nconns, sizeof(*cc));
	uint64_t period = (uint64_t)(1e9 / r->rate), deadline;
	int ep = epoll_create1(0);

	r->n = n;
	r->lat = malloc(n * sizeof(*r->lat));
	if (!reqs || !lens || !cc || !r->lat || ep < 0) {
		return -1;
	}
	for (size_t i = 0; i < n; i++) { /* signed before the clock starts */
		struct dpt_req q = { .synapse = "Synapse",
			             .signer = K.validator,
			             .signer_ss58 = K.validator_ss58,
			             .axon_hotkey = K.miner_ss58 };

		lens[i] = (uint32_t)dpt_build(&q, reqs + i * REQ_MAX, REQ_MAX);
	}
	for (unsigned c = 0; c < r->nconns; c++) {
		struct epoll_event ev = { .events = EPOLLIN, .data.u32 = c };

		cc[c].fd = dial(r->ip, r->port);
		if (cc[c].fd < 0) {
			fprintf(stderr, "bench_dpdk: %s: connect: %s\n", r->name, strerror(errno));
			return -1;
		}
		epoll_ctl(ep, EPOLL_CTL_ADD, cc[c].fd, &ev);
	}
	r->t0 = bx_time_ns() + 2000000;
	deadline = r->t0 + (uint64_t)(r->secs * 1e9) + 5000000000ull;
	while (r->done + r->bad < n && bx_time_ns() < deadline) {
		struct epoll_event evs[64];
		struct timespec ts = { 0, 1000000 };
		uint64_t now = bx_time_ns();
		int ne;

		while (sent < n && r->t0 + sent * period <= now) {
			struct cconn *c = &cc[sent % r->nconns];

			if (c->tail - c->head >= FIFO) {
				r->bad++;
			} else {
				c->due[c->tail++ % FIFO] = r->t0 + sent * period;
				if (send_full(c->fd, reqs + sent * REQ_MAX, lens[sent]) < 0) {
					return -1;
				}
			}
			sent++;
		}
		if (sent < n) {
			uint64_t due = r->t0 + sent * period, t = bx_time_ns();

			ts.tv_nsec = due > t ? (long)BX_MIN(due - t, 1000000ull) : 0;
		}
		ne = epoll_pwait2(ep, evs, 64, &ts, NULL);
		for (int e = 0; e < ne; e++) {
			drain(&cc[evs[e].data.u32], r);
		}
	}
	for (unsigned c = 0; c < r->nconns; c++) {
		close(cc[c].fd);
	}
	close(ep);
	free(reqs);
	free(lens);
	free(cc);
	return 0;
}

static void
emit(struct run *r)
{
	double thr = r->last > r->t0 ? (double)r->done / ((double)(r->last - r->t0) / 1e9) : 0;

	bx_bench_emit("dpdk", r->name, "offered", r->rate, "1/s");
	bx_bench_emit("dpdk", r->name, "throughput", thr, "1/s");
	bx_bench_emit("dpdk", r->name, "success", r->n ? (double)r->done / (double)r->n : 0,
	              "ratio");
	bx_bench_emit_latency("dpdk", r->name, r->lat, r->done);
	fflush(stdout);
}

/* SYNs from src (an address of the namespace) to ip:port, as fast as it goes, for secs. */
static void
flood(const char *src, const char *ip, uint16_t port, double secs, unsigned *sent)
{
	struct sockaddr_in dst = { .sin_family = AF_INET };
	uint64_t until = bx_time_ns() + (uint64_t)(secs * 1e9);
	int fd = socket(AF_INET, SOCK_RAW, IPPROTO_RAW);
	uint8_t pkt[40];

	if (fd < 0) {
		return;
	}
	inet_pton(AF_INET, ip, &dst.sin_addr);
	for (unsigned i = 0; i < 10000000 && bx_time_ns() < until; i++) {
		dpt_syn_frame(pkt, src, dst.sin_addr.s_addr, (uint16_t)(1024 + i % 60000), port,
		              i * 7919u);
		if (sendto(fd, pkt, sizeof(pkt), 0, (struct sockaddr *)&dst, sizeof(dst)) > 0) {
			(*sent)++;
		} else {
			usleep(50);
		}
	}
	close(fd);
}

struct cfg {
	double rates[16];
	unsigned nrates, nconns;
	double secs, flood_rate;
};

/* The client process: every rate against one server, then the flood run. */
static int
client(const char *port_name, const char *ip, uint16_t port, const struct cfg *g)
{
	char name[64];
	unsigned fsent = 0;
	pid_t fpid;
	int status;

	if (setns(cli_ns, CLONE_NEWNET) < 0) {
		return 1;
	}
	bx_thread_pin_self(0, NULL);
	for (unsigned i = 0; i < g->nrates; i++) {
		struct run r = { .name = name,
			         .ip = ip,
			         .port = port,
			         .rate = g->rates[i],
			         .secs = g->secs,
			         .nconns = g->nconns };

		snprintf(name, sizeof(name), "%s_verified_%.0f", port_name, g->rates[i]);
		if (run_rate(&r) < 0) {
			return 1;
		}
		emit(&r);
		free(r.lat);
	}
	/* the flood from another process, so it competes like an outside sender */
	fpid = fork();
	if (fpid == 0) {
		flood(strcmp(ip, DPDK_IP) == 0 ? FLOOD_IP :
		      strcmp(ip, AFP_IP) == 0  ? AFP_FLOOD :
		                                 VETH_FLOOD,
		      ip, port, g->secs + 1.5, &fsent);
		fprintf(stderr, "bench_dpdk: %s flood: %u SYNs sent\n", port_name, fsent);
		_exit(0);
	}
	usleep(300000);
	{
		struct run r = { .name = name,
			         .ip = ip,
			         .port = port,
			         .rate = g->flood_rate,
			         .secs = g->secs,
			         .nconns = g->nconns };

		snprintf(name, sizeof(name), "%s_flood_%.0f", port_name, g->flood_rate);
		if (run_rate(&r) < 0) {
			fprintf(stderr,
			        "bench_dpdk: %s: the validator could not connect during the "
			        "flood\n",
			        port_name);
			bx_bench_emit("dpdk", name, "success", 0, "ratio");
		} else {
			emit(&r);
		}
		free(r.lat);
	}
	waitpid(fpid, &status, 0);
	return 0;
}

static struct bx_metagraph *
make_mg(void)
{
	char buf[2048];
	int n = snprintf(buf, sizeof(buf),
	                 "[{\"uid\": 0, \"hotkey\": \"%s\", \"stake\": 5000.0, "
	                 "\"validator_permit\": true, \"ip\": \"" CLI_IP "\"}, "
	                 "{\"uid\": 1, \"hotkey\": \"%s\", \"stake\": 5000.0, "
	                 "\"validator_permit\": true, \"ip\": \"" VETH_CLI "\"}, "
	                 "{\"uid\": 2, \"hotkey\": \"%s\", \"stake\": 5000.0, "
	                 "\"validator_permit\": true, \"ip\": \"" AFP_CLI "\"}]",
	                 K.validator_ss58, K.nopermit_ss58, K.stranger_ss58);
	struct bx_metagraph *mg = NULL;
	struct bx_errbuf eb;

	if (bx_metagraph_parse(buf, (size_t)n, "bench", &mg, &eb) < 0) {
		fprintf(stderr, "bench_dpdk: %s\n", eb.msg);
	}
	return mg;
}

static void
conf_common(struct bx_dp_conf *c)
{
	bx_dp_conf_default(c);
	c->port = 0;
	c->nb_cores = 1;
	c->cpus[0] = 1;
	c->pin = true;
	c->max_conns = 256;
	c->hotkey = K.miner;
}

static int
serve(const char *port_name, const struct cfg *g)
{
	bool afp = strcmp(port_name, "dpdk_afp") == 0;
	bool dpdk = afp || strcmp(port_name, "dpdk_tap") == 0;
	const char *ip = afp ? AFP_IP : dpdk ? DPDK_IP : URING_IP;
	struct bx_dp_conf c;
	struct bx_errbuf eb = { .msg = "" };
	struct bx_dp *dp;
	struct bx_dp_stats st;
	int status, r = 0;
	pid_t pid;

	conf_common(&c);
	if (dpdk) {
		c.port_backend = "dpdk";
		snprintf(
			c.dpdk_eal_args, sizeof(c.dpdk_eal_args),
			"--no-huge -m 512 --no-pci --log-level=lib.eal:error --log-level=pmd.*:crit");
		if (afp) {
			snprintf(c.dpdk_device, sizeof(c.dpdk_device), "net_af_packet_%s,iface=%s",
			         afp_dev, afp_dev);
		} else {
			snprintf(c.dpdk_device, sizeof(c.dpdk_device), "net_tap_%s,iface=%s", tap,
			         tap);
		}
		snprintf(c.dpdk_addr, sizeof(c.dpdk_addr), "%s/24", ip);
		c.dpdk_syn_rate = 50;
		c.dpdk_syn_burst = 50;
		c.dpdk_open_rate = 2000;
		c.dpdk_open_burst = 2000;
	} else {
		snprintf(c.listen_addr, sizeof(c.listen_addr), URING_IP);
	}
	if (bx_dp_create(&c, make_mg(), &dp, &eb) < 0 || bx_dp_start(dp, &eb) < 0) {
		fprintf(stderr, "bench_dpdk: %s: %s\n", port_name, eb.msg);
		return 1;
	}
	if (dpdk && !afp &&
	    (dpt_sh("ip link set %s netns %s", tap, ns_name) ||
	     dpt_sh("ip -n %s addr add " CLI_IP "/24 dev %s", ns_name, tap) ||
	     dpt_sh("ip -n %s addr add " FLOOD_IP "/24 dev %s", ns_name, tap) ||
	     dpt_sh("ip -n %s link set %s up", ns_name, tap))) {
		r = 1;
	}
	fflush(stdout);
	pid = r ? -1 : fork();
	if (pid == 0) {
		sigset_t all; /* net_tap's wake-up signal is for the workers */

		sigfillset(&all);
		pthread_sigmask(SIG_BLOCK, &all, NULL);
		_exit(client(port_name, ip, bx_dp_port(dp), g));
	}
	if (pid > 0) {
		waitpid(pid, &status, 0);
		r = WIFEXITED(status) ? WEXITSTATUS(status) : 1;
	}
	bx_dp_stats(dp, &st);
	fprintf(stderr, "bench_dpdk: %s server: %" PRIu64 " requests, %" PRIu64 " ok", port_name,
	        st.requests, st.responses_ok);
	for (unsigned k = 0; k < BX_DP_P_MAX; k++) {
		if (st.pkt[k]) {
			fprintf(stderr, ", %s %" PRIu64, bx_dp_pkt_name(k), st.pkt[k]);
		}
	}
	fprintf(stderr, "\n");
	bx_dp_stop(dp, 1000);
	bx_dp_destroy(dp);
	return r;
}

static int
net_up(void)
{
	char path[64];

	snprintf(ns_name, sizeof(ns_name), "bxbn%d", (int)getpid());
	snprintf(tap, sizeof(tap), "bxbt%d", (int)getpid() % 100000);
	snprintf(veth, sizeof(veth), "bxbv%d", (int)getpid() % 100000);
	snprintf(vpeer, sizeof(vpeer), "bxbp%d", (int)getpid() % 100000);
	snprintf(afp_dev, sizeof(afp_dev), "bxba%d", (int)getpid() % 100000);
	snprintf(apeer, sizeof(apeer), "bxbq%d", (int)getpid() % 100000);
	if (dpt_sh("ip netns add %s", ns_name) ||
	    dpt_sh("ip link add %s type veth peer name %s netns %s", veth, vpeer, ns_name) ||
	    dpt_sh("ip addr add " URING_IP "/24 dev %s", veth) ||
	    dpt_sh("ip link set %s up", veth) ||
	    dpt_sh("ip -n %s addr add " VETH_CLI "/24 dev %s", ns_name, vpeer) ||
	    dpt_sh("ip -n %s addr add " VETH_FLOOD "/24 dev %s", ns_name, vpeer) ||
	    dpt_sh("ip -n %s link set %s up", ns_name, vpeer) ||
	    dpt_sh("ip -n %s link set lo up", ns_name) ||
	    dpt_sh("ip link add %s type veth peer name %s netns %s", afp_dev, apeer, ns_name) ||
	    dpt_sh("ip link set %s up", afp_dev) ||
	    dpt_sh("ip -n %s addr add " AFP_CLI "/24 dev %s", ns_name, apeer) ||
	    dpt_sh("ip -n %s addr add " AFP_FLOOD "/24 dev %s", ns_name, apeer) ||
	    dpt_sh("ip -n %s link set %s up", ns_name, apeer) ||
	    /* veth leaves TCP checksums to an offload af_packet does not finish */
	    dpt_sh("ip netns exec %s ethtool -K %s tx off > /dev/null", ns_name, apeer)) {
		return -1;
	}
	snprintf(path, sizeof(path), "/var/run/netns/%s", ns_name);
	cli_ns = open(path, O_RDONLY | O_CLOEXEC);
	return cli_ns < 0 ? -1 : 0;
}

static void
net_down(void)
{
	dpt_sh("ip link del %s 2> /dev/null || true", veth);
	dpt_sh("ip link del %s 2> /dev/null || true", afp_dev);
	dpt_sh("ip netns del %s", ns_name);
}

static void
parse_env(struct cfg *g)
{
	const char *e;

	*g = (struct cfg){ .rates = { 1000, 2000, 4000 },
		           .nrates = 3,
		           .nconns = 16,
		           .secs = 2,
		           .flood_rate = 1000 };
	if ((e = getenv("BX_BENCH_RATES")) != NULL) {
		char *s = strdup(e), *save = NULL;

		g->nrates = 0;
		for (char *t = strtok_r(s, ",", &save); t && g->nrates < 16;
		     t = strtok_r(NULL, ",", &save)) {
			g->rates[g->nrates++] = atof(t);
		}
		free(s);
	}
	if ((e = getenv("BX_BENCH_SECS")) != NULL) {
		g->secs = atof(e);
	}
	if ((e = getenv("BX_BENCH_CONNS")) != NULL) {
		g->nconns = (unsigned)atoi(e);
	}
	if ((e = getenv("BX_BENCH_FLOOD_RATE")) != NULL) {
		g->flood_rate = atof(e);
	}
	if (g->nconns == 0 || g->nconns > MAX_CONNS) {
		g->nconns = 16;
	}
}

int
main(void)
{
	struct cfg g;
	int r;

	if (geteuid() != 0 || access("/dev/net/tun", R_OK | W_OK) != 0) {
		bx_test_skip("bench_dpdk needs root and /dev/net/tun");
	}
	if (sysconf(_SC_NPROCESSORS_ONLN) < 2) {
		bx_test_skip("bench_dpdk needs two CPUs (server on 1, client on 0)");
	}
	parse_env(&g);
	dpt_keys_make(&K);
	bx_log_set_levels("warn", NULL);
	if (net_up() < 0) {
		net_down();
		return 1;
	}
	r = serve("uring", &g);
	if (r == 0) {
		r = serve("dpdk_afp", &g);
	}
	if (r == 0) {
		r = serve("dpdk_tap", &g);
	}
	net_down();
	dpt_keys_free(&K);
	return r;
}
