/*
 * The server: configuration, worker threads (one per configured CPU, each
 * with its own listener and event loop), start/stop/drain, metagraph swaps,
 * counters. The event loop itself belongs to the port backend.
 *
 * Metagraph reclamation is quiescent-state based: a worker is "online"
 * (may hold a metagraph pointer) only while it processes events, and marks
 * itself offline before it blocks. A swap publishes the new pointer, bumps
 * the epoch and frees the old snapshot once every worker is offline or has
 * passed through the new epoch. Workers never take a lock.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <bx/crypto.h>

#include "metagraph_int.h"
#include "port.h"

void
bx_dp_conf_default(struct bx_dp_conf *c)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->listen_addr, sizeof(c->listen_addr), "0.0.0.0");
	c->port = 8091;
	c->nb_cores = 1;
	c->cpus[0] = 0;
	c->pin = true;
	c->port_backend = "io_uring";
	c->max_conns = 1024;
	c->rx_buf = 64 * 1024;
	c->tx_buf = 64 * 1024;
	c->idle_timeout_ms = 20000;
	c->request_timeout_ms = 15000;
	c->ring_entries = 1024;
	c->max_request_line = 8192;
	c->max_headers = BX_HTTP_MAX_HEADERS;
	c->max_header_line = 8192;
	c->max_head = 16384;
	c->max_body = 48 * 1024;
	c->require_permit = true;
	c->min_stake = 0;
	c->replay_slots = 1u << 20;
	c->nonce_future_ns = 60ull * 1000000000ull;
	c->allow_legacy_nonce = true;
	c->verify_signatures = true;
	c->sign_responses = true;
	c->version = 10002000;
}

static const char *const reason_names[BX_DP_R_MAX] = {
	[BX_DP_R_HTTP_BAD] = "http_bad",
	[BX_DP_R_HTTP_LIMIT] = "http_limit",
	[BX_DP_R_METHOD] = "method",
	[BX_DP_R_UNKNOWN_SYNAPSE] = "unknown_synapse",
	[BX_DP_R_BAD_HEADERS] = "bad_headers",
	[BX_DP_R_NO_HOTKEY] = "no_hotkey",
	[BX_DP_R_NO_NONCE] = "no_nonce",
	[BX_DP_R_NONCE_STALE] = "nonce_stale",
	[BX_DP_R_NONCE_FUTURE] = "nonce_future",
	[BX_DP_R_NONCE_LEGACY] = "nonce_legacy",
	[BX_DP_R_NOT_REGISTERED] = "not_registered",
	[BX_DP_R_NO_PERMIT] = "no_permit",
	[BX_DP_R_LOW_STAKE] = "low_stake",
	[BX_DP_R_RATE_IP] = "rate_ip",
	[BX_DP_R_RATE_HOTKEY] = "rate_hotkey",
	[BX_DP_R_AXON_MISMATCH] = "axon_mismatch",
	[BX_DP_R_NO_SIGNATURE] = "no_signature",
	[BX_DP_R_BAD_SIGNATURE] = "bad_signature",
	[BX_DP_R_REPLAY] = "replay",
	[BX_DP_R_REPLAY_FULL] = "replay_full",
	[BX_DP_R_BODY_JSON] = "body_json",
	[BX_DP_R_BODY_HASH] = "body_hash",
	[BX_DP_R_UNAVAILABLE] = "unavailable",
	[BX_DP_R_HANDLER] = "handler",
	[BX_DP_R_RESPONSE_TOO_BIG] = "response_too_big",
};

const char *
bx_dp_stage_name(enum bx_dp_stage s)
{
	static const char *const names[BX_DP_S_MAX] = {
		"receive", "parse", "admission", "verify", "body", "handler", "respond",
	};

	return (unsigned)s < BX_DP_S_MAX ? names[s] : "?";
}

const char *
bx_dp_reason_name(enum bx_dp_reason r)
{
	return (unsigned)r < BX_DP_R_MAX ? reason_names[r] : "unknown";
}

static const struct bx_port_ops *
find_ops(const char *name)
{
#ifdef BX_HAVE_IO_URING
	if (!name || strcmp(name, "io_uring") == 0) {
		return &bx_port_uring_ops;
	}
#endif
#ifdef BX_HAVE_DPDK
	if (name && strcmp(name, "dpdk") == 0) {
		return &bx_port_dpdk_ops;
	}
#endif
	(void)name;
	return NULL;
}

static int
check_conf(const struct bx_dp_conf *c, struct bx_errbuf *eb)
{
	if (c->nb_cores == 0 || c->nb_cores > BX_DP_MAX_CORES) {
		return bx_err(eb, EINVAL, "dataplane: nb_cores must be 1..%d", BX_DP_MAX_CORES);
	}
	if (c->max_conns == 0 || c->max_conns > (1u << 20)) {
		return bx_err(eb, EINVAL, "dataplane: max_conns must be 1..1048576");
	}
	if (c->max_headers == 0 || c->max_headers > BX_HTTP_MAX_HEADERS) {
		return bx_err(eb, EINVAL, "dataplane: max_headers must be 1..%d",
		              BX_HTTP_MAX_HEADERS);
	}
	if (c->max_request_line >= c->max_head || c->max_header_line >= c->max_head) {
		return bx_err(eb, EINVAL,
		              "dataplane: request and header lines must be shorter "
		              "than max_head");
	}
	if ((uint64_t)c->max_head + c->max_body > c->rx_buf) {
		return bx_err(eb, EINVAL,
		              "dataplane: max_head (%u) + max_body (%u) must fit rx_buf (%u)",
		              c->max_head, c->max_body, c->rx_buf);
	}
	if (c->tx_buf < 4096 || c->tx_buf > (64u << 20)) {
		return bx_err(eb, EINVAL, "dataplane: tx_buf must be 4 KiB..64 MiB");
	}
	if (c->idle_timeout_ms < 1000) {
		return bx_err(eb, EINVAL, "dataplane: idle_timeout_ms must be >= 1000");
	}
	if (!c->hotkey) {
		return bx_err(eb, EINVAL, "dataplane: no axon hotkey");
	}
	return 0;
}

int
bx_dp_create(const struct bx_dp_conf *conf, struct bx_metagraph *mg, struct bx_dp **out,
             struct bx_errbuf *eb)
{
	struct bx_dp *dp;
	int r;

	r = check_conf(conf, eb);
	if (r < 0) {
		bx_metagraph_free(mg);
		return r;
	}
	dp = bx_aligned_alloc(64, sizeof(*dp));
	if (!dp) {
		bx_metagraph_free(mg);
		return -ENOMEM;
	}
	memset(dp, 0, sizeof(*dp));
	dp->ops = find_ops(conf->port_backend);
	if (!dp->ops) {
		bx_free(dp);
		bx_metagraph_free(mg);
		return bx_err(eb, ENOTSUP, "dataplane: port backend \"%s\" is not built in",
		              conf->port_backend ? conf->port_backend : "(null)");
	}
	r = bx_axon_shared_init(&dp->sh, conf, eb);
	if (r < 0) {
		bx_axon_shared_fini(&dp->sh);
		bx_free(dp);
		bx_metagraph_free(mg);
		return r;
	}
	dp->sh.mg = mg;
	dp->sh.nb_workers = conf->nb_cores;
	dp->nb_workers = conf->nb_cores;
	dp->workers = bx_aligned_alloc(64, sizeof(*dp->workers) * dp->nb_workers);
	if (!dp->workers) {
		bx_axon_shared_fini(&dp->sh);
		bx_free(dp);
		return -ENOMEM;
	}
	memset(dp->workers, 0, sizeof(*dp->workers) * dp->nb_workers);
	for (unsigned i = 0; i < dp->nb_workers; i++) {
		dp->workers[i].dp = dp;
		dp->workers[i].id = i;
		dp->workers[i].cpu = conf->cpus[i];
		dp->workers[i].listen_fd = -1;
		dp->workers[i].qs = BX_QS_OFFLINE;
	}
	pthread_mutex_init(&dp->reload_lock, NULL);
	pthread_mutex_init(&dp->start_lock, NULL);
	pthread_cond_init(&dp->start_cond, NULL);
	*out = dp;
	return 0;
}

int
bx_dp_set_handler(struct bx_dp *dp, const char *synapse, bx_synapse_fn *fn, void *arg)
{
	const struct bx_synapse_type *t = bx_synapse_find(synapse, strlen(synapse));

	if (!t || dp->running) {
		return t ? -EBUSY : -ENOENT;
	}
	dp->sh.handlers[bx_synapse_index(t)].fn = fn;
	dp->sh.handlers[bx_synapse_index(t)].arg = arg;
	return 0;
}

static void
ready(struct bx_dp *dp, int rc, const struct bx_errbuf *eb)
{
	pthread_mutex_lock(&dp->start_lock);
	if (rc < 0 && dp->start_rc == 0) {
		dp->start_rc = rc;
		snprintf(dp->start_err, sizeof(dp->start_err), "%s", eb->msg);
	}
	dp->nb_ready++;
	pthread_cond_broadcast(&dp->start_cond);
	pthread_mutex_unlock(&dp->start_lock);
}

static void *
worker_main(void *arg)
{
	struct bx_dp_worker *w = arg;
	struct bx_dp *dp = w->dp;
	struct bx_errbuf eb = { .msg = "" };
	int r = 0;

	if (dp->sh.conf.pin) {
		r = bx_thread_pin_self(w->cpu, &eb);
	}
	if (r == 0) {
		bx_axon_ctx_fini(&w->ax); /* a restart: the last run's tickets */
		r = bx_axon_ctx_init(&w->ax, &dp->sh);
	}
	if (r == 0) {
		r = dp->ops->init(w, &eb);
	}
	if (r < 0 && !eb.msg[0]) {
		bx_err(&eb, -r, "dataplane: worker %u: %s", w->id, bx_strerror(r));
	}
	ready(dp, r, &eb);
	if (r < 0) {
		w->run_rc = r;
		return NULL;
	}
	/* wait until every worker is up (or start failed) */
	pthread_mutex_lock(&dp->start_lock);
	while (dp->nb_ready < dp->nb_workers) {
		pthread_cond_wait(&dp->start_cond, &dp->start_lock);
	}
	pthread_mutex_unlock(&dp->start_lock);
	if (dp->start_rc == 0) {
		w->run_rc = dp->ops->run(w);
	}
	bx_worker_offline(w);
	bx_axon_wake_off(&w->ax); /* before the port's state the hook uses goes */
	dp->ops->fini(w);
	return NULL;
}

static void
stop_workers(struct bx_dp *dp, unsigned drain_ms)
{
	uint64_t deadline = bx_time_ns() + (uint64_t)drain_ms * 1000000ull;

	for (unsigned i = 0; i < dp->nb_workers; i++) {
		struct bx_dp_worker *w = &dp->workers[i];

		if (!w->started) {
			continue;
		}
		w->drain_deadline_ns = deadline;
		__atomic_store_n(&w->stop, 1, __ATOMIC_SEQ_CST);
		dp->ops->wake(w);
	}
	for (unsigned i = 0; i < dp->nb_workers; i++) {
		struct bx_dp_worker *w = &dp->workers[i];

		if (!w->started) {
			continue;
		}
		pthread_join(w->thread, NULL);
		w->started = false;
		/* the tickets stay until bx_dp_destroy: a worker may complete one late */
		if (w->listen_fd >= 0) {
			close(w->listen_fd);
		}
		w->listen_fd = -1;
	}
}

int
bx_dp_start(struct bx_dp *dp, struct bx_errbuf *eb)
{
	int r;

	if (dp->running) {
		return -EBUSY;
	}
	/* listeners first, on this thread: worker 0 learns the port when conf.port is
   * 0 */
	dp->bound_port = dp->sh.conf.port;
	for (unsigned i = 0; i < dp->nb_workers; i++) {
		int fd = bx_dp_listen(&dp->sh.conf, dp->bound_port, eb);

		if (fd < 0) {
			for (unsigned k = 0; k < i; k++) {
				close(dp->workers[k].listen_fd);
				dp->workers[k].listen_fd = -1;
			}
			return fd;
		}
		dp->workers[i].listen_fd = fd;
		if (i == 0 && dp->bound_port == 0) {
			struct sockaddr_storage ss;
			socklen_t sl = sizeof(ss);

			if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
				dp->bound_port =
					ntohs(ss.ss_family == AF_INET ?
				                      ((struct sockaddr_in *)&ss)->sin_port :
				                      ((struct sockaddr_in6 *)&ss)->sin6_port);
			}
		}
	}
	dp->nb_ready = 0;
	dp->start_rc = 0;
	dp->start_err[0] = 0;
	for (unsigned i = 0; i < dp->nb_workers; i++) {
		struct bx_dp_worker *w = &dp->workers[i];

		w->stop = 0;
		r = pthread_create(&w->thread, NULL, worker_main, w);
		if (r != 0) {
			struct bx_errbuf e2;

			bx_err(&e2, r, "dataplane: pthread_create: %s", bx_strerror(r));
			/* account for the workers that will never report */
			for (unsigned k = i; k < dp->nb_workers; k++) {
				ready(dp, -r, &e2);
			}
			break;
		}
		w->started = true;
	}
	pthread_mutex_lock(&dp->start_lock);
	while (dp->nb_ready < dp->nb_workers) {
		pthread_cond_wait(&dp->start_cond, &dp->start_lock);
	}
	r = dp->start_rc;
	pthread_mutex_unlock(&dp->start_lock);
	if (r < 0) {
		stop_workers(dp, 0);
		return bx_err(eb, -r, "%s", dp->start_err);
	}
	dp->running = true;
	BX_LOG(INFO, "dataplane: %u worker(s) on %s port %u (%s), axon hotkey %s", dp->nb_workers,
	       dp->sh.conf.listen_addr, dp->bound_port, dp->ops->name, dp->sh.hotkey);
	return 0;
}

uint16_t
bx_dp_port(const struct bx_dp *dp)
{
	return dp->bound_port;
}

const char *
bx_dp_hotkey(const struct bx_dp *dp)
{
	return dp->sh.hotkey;
}

int
bx_dp_swap_metagraph(struct bx_dp *dp, struct bx_metagraph *mg)
{
	struct bx_metagraph *old;
	uint64_t e;

	pthread_mutex_lock(&dp->reload_lock);
	old = __atomic_exchange_n(&dp->sh.mg, mg, __ATOMIC_SEQ_CST);
	e = __atomic_add_fetch(&dp->epoch, 1, __ATOMIC_SEQ_CST);
	for (unsigned i = 0; i < dp->nb_workers; i++) {
		struct bx_dp_worker *w = &dp->workers[i];

		for (;;) {
			uint64_t q = __atomic_load_n(&w->qs, __ATOMIC_SEQ_CST);

			if (q == BX_QS_OFFLINE || q >= e) {
				break;
			}
			usleep(200);
		}
	}
	bx_metagraph_free(old);
	pthread_mutex_unlock(&dp->reload_lock);
	return 0;
}

int
bx_dp_reload_metagraph(struct bx_dp *dp, const char *path, struct bx_errbuf *eb)
{
	struct bx_metagraph *mg;
	int r = bx_metagraph_load(path, &mg, eb);

	if (r < 0) {
		return r;
	}
	BX_LOG(NOTICE, "dataplane: metagraph %s: %u neurons, block %" PRId64 "", path,
	       bx_metagraph_size(mg), (int64_t)bx_metagraph_block(mg));
	return bx_dp_swap_metagraph(dp, mg);
}

void
bx_dp_stats(const struct bx_dp *dp, struct bx_dp_stats *out)
{
	memset(out, 0, sizeof(*out));
	for (unsigned i = 0; i < dp->nb_workers; i++) {
		const struct bx_dp_stats *s = &dp->workers[i].ax.stats;

		out->requests += __atomic_load_n(&s->requests, __ATOMIC_RELAXED);
		out->responses_ok += __atomic_load_n(&s->responses_ok, __ATOMIC_RELAXED);
		for (unsigned k = 0; k < BX_DP_R_MAX; k++) {
			out->rejected[k] += __atomic_load_n(&s->rejected[k], __ATOMIC_RELAXED);
		}
		out->conns_accepted += __atomic_load_n(&s->conns_accepted, __ATOMIC_RELAXED);
		out->conns_refused += __atomic_load_n(&s->conns_refused, __ATOMIC_RELAXED);
		out->conns_closed += __atomic_load_n(&s->conns_closed, __ATOMIC_RELAXED);
		out->conns_timed_out += __atomic_load_n(&s->conns_timed_out, __ATOMIC_RELAXED);
		out->bytes_in += __atomic_load_n(&s->bytes_in, __ATOMIC_RELAXED);
		out->bytes_out += __atomic_load_n(&s->bytes_out, __ATOMIC_RELAXED);
		for (unsigned k = 0; k < BX_DP_P_MAX; k++) {
			out->pkt[k] += __atomic_load_n(&s->pkt[k], __ATOMIC_RELAXED);
		}
		for (unsigned k = 0; k < BX_DP_S_MAX; k++) {
			bx_lathist_merge(&out->stage[k], &s->stage[k]);
		}
	}
}

void
bx_dp_stop(struct bx_dp *dp, unsigned drain_ms)
{
	if (!dp || !dp->running) {
		return;
	}
	stop_workers(dp, drain_ms);
	dp->running = false;
}

void
bx_dp_destroy(struct bx_dp *dp)
{
	if (!dp) {
		return;
	}
	bx_dp_stop(dp, 0);
	for (unsigned i = 0; i < dp->nb_workers; i++) {
		bx_axon_ctx_fini(&dp->workers[i].ax);
	}
	bx_axon_shared_fini(&dp->sh);
	pthread_mutex_destroy(&dp->reload_lock);
	pthread_mutex_destroy(&dp->start_lock);
	pthread_cond_destroy(&dp->start_cond);
	bx_free(dp->workers);
	bx_free(dp);
}
