/*
 * Benchmark: the echo synapse (/Synapse) over loopback, server on io_uring
 * in this process, client in a forked process. Open loop: request i is due
 * at t0 + i/rate whatever happened before, and its latency counts from that
 * due time (no coordinated omission). Several fixed rates; for each, the
 * achieved throughput and p50/p99/p99.9/max.
 *
 * Three server set-ups in the same run: "verified" (sr25519 verify of every
 * request, both response signatures), "verified_nosign" (verify only) and
 * "unsigned" (verify_signatures and sign_responses off: what the dataplane
 * costs without crypto).
 *
 * Environment: BX_BENCH_RATES="2000,5000,..." BX_BENCH_SECS=2
 * BX_BENCH_CONNS=32.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bx_bench.h"
#include "dp_testlib.h"

#define MAX_CONNS 256
#define FIFO      4096
#define REQ_MAX   2048

struct cconn {
	int fd;
	char rx[1 << 16];
	size_t rx_len;
	uint64_t due[FIFO]; /* due times of requests in flight, in order */
	unsigned head, tail;
};

static struct dpt_keys K;

static uint64_t
now_ns(void)
{
	return bx_time_ns();
}

static int
connect_port(uint16_t port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		return -1;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	fcntl(fd, F_SETFL, O_NONBLOCK);
	return fd;
}

static int
send_full(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t k = send(fd, p, n, MSG_NOSIGNAL);

		if (k < 0 && errno == EAGAIN) {
			continue; /* loopback buffer full: spin (the server is behind) */
		}
		if (k <= 0) {
			return -1;
		}
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

/* One rate step; returns 0 and fills the results. */
static int
run_rate(const char *mode, uint16_t port, double rate, double secs, unsigned nconns)
{
	size_t n = (size_t)(rate * secs);
	char *reqs = malloc(n * REQ_MAX);
	uint32_t *lens = malloc(n * sizeof(*lens));
	uint64_t *lat = malloc(n * sizeof(*lat));
	uint64_t *lag = malloc(n * sizeof(*lag)); /* how late the client sent each request */
	struct cconn *cc = calloc(nconns, sizeof(*cc));
	size_t done = 0, bad = 0, sent = 0;
	uint64_t t0, period = (uint64_t)(1e9 / rate), gen0, last = 0, deadline;
	int ep = epoll_create1(0);
	struct dpt_req q;
	char name[64];

	if (!reqs || !lens || !lat || !lag || !cc || ep < 0) {
		return -1;
	}
	/* pre-sign every request (client cost stays out of the timed part) */
	gen0 = now_ns();
	for (size_t i = 0; i < n; i++) {
		memset(&q, 0, sizeof(q));
		q.synapse = "Synapse";
		q.signer = K.validator;
		q.signer_ss58 = K.validator_ss58;
		q.axon_hotkey = K.miner_ss58;
		lens[i] = (uint32_t)dpt_build(&q, reqs + i * REQ_MAX, REQ_MAX);
	}
	fprintf(stderr, "bench_axon: %s %.0f/s: %zu requests signed in %.2f s\n", mode, rate, n,
	        (double)(now_ns() - gen0) / 1e9);
	for (unsigned c = 0; c < nconns; c++) {
		struct epoll_event ev = { .events = EPOLLIN, .data.u32 = c };

		cc[c].fd = connect_port(port);
		if (cc[c].fd < 0) {
			return -1;
		}
		epoll_ctl(ep, EPOLL_CTL_ADD, cc[c].fd, &ev);
	}
	t0 = now_ns() + 2000000;
	deadline = t0 + (uint64_t)(secs * 1e9) + 5000000000ull;
	while (done + bad < n && now_ns() < deadline) {
		uint64_t now = now_ns();
		struct epoll_event evs[64];
		struct timespec ts = { 0, 1000000 };
		int ne;

		while (sent < n && t0 + sent * period <= now) {
			struct cconn *c = &cc[sent % nconns];

			if (c->tail - c->head >= FIFO) {
				bad++; /* too many in flight on one connection: count as lost */
				sent++;
				continue;
			}
			c->due[c->tail++ % FIFO] = t0 + sent * period;
			lag[sent] = now_ns() - (t0 + sent * period);
			if (send_full(c->fd, reqs + sent * REQ_MAX, lens[sent]) < 0) {
				return -1;
			}
			sent++;
		}
		/* sleep until the next request is due or a response arrives: a spinning
     * client would steal the server's cores */
		if (sent < n) {
			uint64_t due = t0 + sent * period, t = now_ns();

			ts.tv_nsec = due > t ? (long)(due - t) : 0;
		}
		ne = epoll_pwait2(ep, evs, 64, &ts, NULL);
		for (int e = 0; e < ne; e++) {
			struct cconn *c = &cc[evs[e].data.u32];
			ssize_t k = recv(c->fd, c->rx + c->rx_len, sizeof(c->rx) - c->rx_len, 0);
			size_t off = 0;
			struct dpt_resp r;

			if (k <= 0) {
				if (k < 0 && errno == EAGAIN) {
					continue;
				}
				fprintf(stderr, "bench_axon: connection closed by server\n");
				return -1;
			}
			c->rx_len += (size_t)k;
			now = now_ns();
			while (dpt_parse_resp(c->rx + off, c->rx_len - off, &r) == 0) {
				uint64_t due = c->due[c->head++ % FIFO];

				off += r.total;
				if (r.status == 200) {
					lat[done++] = now - due;
					last = now;
				} else {
					bad++;
				}
			}
			memmove(c->rx, c->rx + off, c->rx_len - off);
			c->rx_len -= off;
		}
	}
	snprintf(name, sizeof(name), "%s_%.0f", mode, rate);
	bx_bench_emit("axon", name, "offered", rate, "1/s");
	bx_bench_emit("axon", name, "throughput",
	              last > t0 ? (double)done / ((double)(last - t0) / 1e9) : 0, "1/s");
	bx_bench_emit("axon", name, "errors", (double)bad + (double)(n - done - bad), "count");
	bx_bench_emit_latency("axon", name, lat, done);
	bx_bench_emit("axon", name, "client_send_lag_p99",
	              (double)bx_bench_percentile(lag, sent, 99) / 1e3, "us");
	for (unsigned c = 0; c < nconns; c++) {
		close(cc[c].fd);
	}
	close(ep);
	free(reqs);
	free(lens);
	free(lat);
	free(lag);
	free(cc);
	return 0;
}

static int
client(const char *mode, uint16_t port, const double *rates, unsigned nrates, double secs,
       unsigned nconns)
{
	for (unsigned i = 0; i < nrates; i++) {
		if (run_rate(mode, port, rates[i], secs, nconns) < 0) {
			return 1;
		}
	}
	return 0;
}

static int
serve(const char *mode, bool verify, bool sign, const double *rates, unsigned nrates, double secs,
      unsigned nconns)
{
	struct bx_dp_conf c;
	struct bx_errbuf eb;
	struct bx_dp *dp;
	struct bx_metagraph *mg;
	struct bx_dp_stats st;
	char mgj[4096];
	size_t n = dpt_metagraph_json(&K, mgj, sizeof(mgj));
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	pid_t pid;
	int status;

	if (bx_metagraph_parse(mgj, n, "bench", &mg, &eb) < 0) {
		return 1;
	}
	bx_dp_conf_default(&c);
	snprintf(c.listen_addr, sizeof(c.listen_addr), "127.0.0.1");
	c.port = 0;
	c.nb_cores = ncpu >= 2 ? 2 : 1;
	if (getenv("BX_BENCH_SERVER_CORES")) {
		c.nb_cores = (unsigned)atoi(getenv("BX_BENCH_SERVER_CORES"));
	}
	c.cpus[0] = 0;
	c.cpus[1] = 1;
	c.pin = true;
	c.max_conns = 512;
	c.hotkey = K.miner;
	c.verify_signatures = verify;
	c.sign_responses = sign;
	if (bx_dp_create(&c, mg, &dp, &eb) < 0 || bx_dp_start(dp, &eb) < 0) {
		fprintf(stderr, "bench_axon: %s\n", eb.msg);
		return 1;
	}
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		if (getenv("BX_BENCH_CLIENT_CPU")) {
			bx_thread_pin_self((unsigned)atoi(getenv("BX_BENCH_CLIENT_CPU")), NULL);
		}
		_exit(client(mode, bx_dp_port(dp), rates, nrates, secs, nconns));
	}
	waitpid(pid, &status, 0);
	bx_dp_stats(dp, &st);
	fprintf(stderr, "bench_axon: %s server: %" PRIu64 " requests, %" PRIu64 " ok", mode,
	        st.requests, st.responses_ok);
	for (unsigned k = 0; k < BX_DP_R_MAX; k++) {
		if (st.rejected[k]) {
			fprintf(stderr, ", %s %" PRIu64, bx_dp_reason_name(k), st.rejected[k]);
		}
	}
	fprintf(stderr, "\n");
	bx_dp_stop(dp, 1000);
	bx_dp_destroy(dp);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

int
main(void)
{
	double rates[16] = { 2000, 5000, 7500, 10000, 15000, 20000 };
	unsigned nrates = 6, nconns = 32;
	double secs = 2;
	const char *e;
	int r;

	if ((e = getenv("BX_BENCH_RATES")) != NULL) {
		char *s = strdup(e), *save = NULL;

		nrates = 0;
		for (char *t = strtok_r(s, ",", &save); t && nrates < 16;
		     t = strtok_r(NULL, ",", &save)) {
			rates[nrates++] = atof(t);
		}
		free(s);
	}
	if ((e = getenv("BX_BENCH_SECS")) != NULL) {
		secs = atof(e);
	}
	if ((e = getenv("BX_BENCH_CONNS")) != NULL) {
		nconns = (unsigned)atoi(e);
	}
	if (nconns == 0 || nconns > MAX_CONNS) {
		nconns = 32;
	}
	dpt_keys_make(&K);
	bx_log_set_levels("warn", NULL);
	/* verified: request signature checked, both response signatures made (the default);
	 * verified_nosign: request checked, responses unsigned; unsigned: no crypto at all */
	r = serve("verified", true, true, rates, nrates, secs, nconns);
	if (r == 0) {
		r = serve("verified_nosign", true, false, rates, nrates, secs, nconns);
	}
	if (r == 0) {
		r = serve("unsigned", false, false, rates, nrates, secs, nconns);
	}
	dpt_keys_free(&K);
	return r;
}
