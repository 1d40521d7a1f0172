/*
 * bxd: the miner appliance process. It owns the process (arguments, log
 * sink, signals, exit codes); the libraries do the work.
 *
 * Start-up: settings -> machine plan -> hotkey -> metagraph -> models ->
 * dataplane -> management listener -> READY. SIGHUP reloads the metagraph;
 * SIGTERM/SIGINT drain in-flight requests (drain_timeout_ms) and exit 0.
 * Exit codes: 0 clean stop, 1 start-up or runtime failure, 2 bad settings.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <systemd/sd-daemon.h>

#include <bx/crypto.h>
#include <bx/dataplane.h>
#include <bx/firmware.h>
#include <bx/infer.h>

#include "embed_synapse.h"
#include "gen_synapse.h"

struct bxd {
	struct bx_fw_conf conf;

	struct bx_sched_plan plan; /* dataplane CPUs and inference workers */
	struct bx_sr25519_keypair *hotkey;
	struct bx_embed_model *embed;
	struct bx_fw_embed *embed_syn;
	struct bx_llm_model *llm;
	struct bx_fw_gen *gen;
	struct bx_dp *dp;
	struct bx_mgmt *mgmt;
	uint64_t start_ns;
	uint64_t reloads, reload_failures;
};

static void
usage(void)
{
	static char help[8192];

	bx_fw_conf_help(help, sizeof(help));
	printf("usage: bxd [-c FILE] [--key=value ...] [--check | --print-config | --version]\n"
	       "\n"
	       "Serves Bittensor axon requests. Settings come from the defaults, then FILE\n"
	       "(key = value lines, [section] headers), then --key=value arguments.\n"
	       "\n"
	       "settings (with defaults):\n%s",
	       help);
}

/* "~/x" -> "$HOME/x", as btcli writes wallet paths. */
static void
expand_home(const char *in, char *out, size_t len)
{
	const char *home = getenv("HOME");

	if (in[0] == '~' && in[1] == '/' && home != NULL) {
		snprintf(out, len, "%s%s", home, in + 1);
	} else {
		snprintf(out, len, "%s", in);
	}
}

static int
load_hotkey(struct bxd *d, struct bx_errbuf *eb)
{
	char dir[512], path[1024], ss58[BX_SS58_MAX_LEN];
	int ret;

	expand_home(d->conf.wallet_path, dir, sizeof(dir));
	ret = bx_wallet_hotkey_path(path, sizeof(path), dir, d->conf.wallet_name,
	                            d->conf.wallet_hotkey);
	if (ret < 0) {
		return bx_err(eb, ret, "wallet path too long");
	}
	/* Hotkeys are plaintext in btcli wallets; an encrypted one is an error here. */
	ret = bx_keyfile_load(path, NULL, &d->hotkey, eb);
	if (ret < 0) {
		return ret;
	}
	bx_ss58_encode(ss58, sizeof(ss58), bx_sr25519_public(d->hotkey), BX_SS58_BITTENSOR);
	BX_LOG(NOTICE, "hotkey %s (wallet %s, hotkey %s)", ss58, d->conf.wallet_name,
	       d->conf.wallet_hotkey);
	return 0;
}

/* The generation model: a GGUF by its name, else a llama2.c checkpoint. */
static int
load_llm(struct bxd *d, struct bx_errbuf *eb)
{
	const char *path = d->conf.gen_model;
	size_t len = strlen(path);
	struct stat st;
	int ret;

	if (len == 0 || stat(path, &st) < 0) {
		BX_LOG(WARN, "no generation model%s%s: TextGeneration answers 503",
		       len ? " at " : "", path);
		return 0;
	}
	if (len > 5 && strcmp(path + len - 5, ".gguf") == 0) {
		ret = bx_llm_load_gguf(path, &d->llm, eb);
	} else {
		ret = bx_llm_load_llama2c(path, d->conf.gen_tokenizer, &d->llm, eb);
	}
	if (ret < 0) {
		return ret;
	}
	BX_LOG(NOTICE, "generation model %s: %u layers, dim %u, vocab %u", path,
	       bx_llm_model_config(d->llm)->n_layers, bx_llm_model_config(d->llm)->dim,
	       bx_llm_model_config(d->llm)->vocab_size);
	/*
	 * Prefill and batched steps on oneDNN AMX/VNNI matmuls; where oneDNN has
	 * no such kernel, on row-interleaved int8 copies (VNNI); else the blocks.
	 */
	ret = bx_llm_model_pack_dnnl(d->llm, eb);
	if (ret < 0) {
		BX_LOG(WARN, "generation: no oneDNN copies (%s)", eb->msg);
		ret = bx_llm_model_pack_i8(d->llm, eb);
		BX_LOG(WARN, "generation: batched steps run %s",
		       ret == 0 ? "int8 row-interleaved copies" : "the block kernels");
	}
	return 0;
}

/* The embedding model, when its directory holds weights. */
static int
load_models(struct bxd *d, struct bx_errbuf *eb)
{
	struct bx_embed_opts opts = { 0 };
	char path[600];
	struct stat st;
	uint64_t t0 = bx_time_ns();
	int ret;

	ret = load_llm(d, eb);
	if (ret < 0) {
		return ret;
	}
	snprintf(path, sizeof(path), "%s/model.safetensors", d->conf.model_dir);
	if (stat(path, &st) < 0) {
		BX_LOG(WARN, "no embedding weights at %s: TextEmbedding answers 503", path);
		return 0;
	}
	BX_LOG(NOTICE,
	       "loading the embedding model from %s (%" PRId64 " MB, packing for oneDNN)...",
	       d->conf.model_dir, (int64_t)(st.st_size >> 20));
	opts.reference = d->conf.model_reference;
	ret = bx_embed_model_load(d->conf.model_dir, &opts, &d->embed, eb);
	if (ret < 0) {
		return ret;
	}
	BX_LOG(NOTICE, "embedding model loaded in %.1f s: dim %u, %s weights",
	       (double)(bx_time_ns() - t0) / 1e9, bx_embed_dim(d->embed),
	       bx_embed_model_is_synthetic(d->embed) ? "SYNTHETIC (generated, not upstream)" :
	                                               "upstream all-MiniLM-L6-v2");
	return 0;
}

/* A CPU list setting into out[]; the count, or -EINVAL with eb set. */
static int
cpu_list(const char *setting, unsigned *out, unsigned max, struct bx_errbuf *eb)
{
	uint64_t mask;
	unsigned n = 0;

	if (bx_fw_parse_cpulist(setting, &mask, eb) < 0) {
		return -EINVAL;
	}
	for (unsigned c = 0; c < 64 && n < max; c++) {
		if (mask & (1ull << c)) {
			out[n++] = c;
		}
	}
	return (int)n;
}

/* Workers on these CPUs, one thread each, at the front of the plan. */
static void
prepend_workers(struct bx_sched_plan *plan, const struct bx_topo *topo, const unsigned *cpus,
                unsigned n)
{
	n = BX_MIN(n, BX_SCHED_WORKERS_MAX - plan->nb_workers);
	memmove(&plan->workers[n], &plan->workers[0], plan->nb_workers * sizeof(plan->workers[0]));
	for (unsigned i = 0; i < n; i++) {
		const struct bx_topo_cpu *c = bx_topo_find_cpu(topo, cpus[i]);

		plan->workers[i] = (struct bx_sched_worker_plan){ .cpus = { cpus[i] },
			                                          .nb_cpus = 1,
			                                          .node = c != NULL ? c->node : 0 };
	}
	plan->nb_workers += n;
}

/*
 * The plan from hwloc (bx_sched_plan_auto): per NUMA node one dataplane
 * core, single-thread inference workers on the other cores (infer measured
 * a 2-thread team no faster than one thread). On a machine of up to four
 * cores the dataplane cores run a worker too: its threads mostly wait on
 * the network. dp.cores and sched.cpus override either part.
 */
static int
plan_cpus(struct bxd *d, struct bx_errbuf *eb)
{
	unsigned cpus[BX_SCHED_WORKERS_MAX];
	struct bx_topo *topo;
	int n = 0, ret;

	if (bx_topo_load(&topo, eb) < 0) {
		return -ENODEV;
	}
	ret = bx_sched_plan_auto(topo, 1, 1, &d->plan, eb);
	if (ret == 0 && topo->nb_cores <= 4) {
		prepend_workers(&d->plan, topo, d->plan.dp_cpus, d->plan.nb_dp);
	}
	if (ret == 0 && d->conf.dp_cores[0] != '\0') {
		n = cpu_list(d->conf.dp_cores, d->plan.dp_cpus, BX_SCHED_CPUS_MAX, eb);
		d->plan.nb_dp = n > 0 ? (unsigned)n : 0;
	}
	if (ret == 0 && n >= 0 && d->conf.sched_cpus[0] != '\0') {
		n = cpu_list(d->conf.sched_cpus, cpus, BX_SCHED_WORKERS_MAX, eb);
		d->plan.nb_workers = 0;
		prepend_workers(&d->plan, topo, cpus, n > 0 ? (unsigned)n : 0);
	}
	bx_topo_free(topo);
	return ret < 0 ? ret : (n < 0 ? n : 0);
}

/* The kernel-bypass port's settings (dataplane/README.md). */
static void
dpdk_conf(const struct bx_fw_conf *c, struct bx_dp_conf *dc)
{
	dc->port_backend = "dpdk";
	snprintf(dc->dpdk_eal_args, sizeof(dc->dpdk_eal_args), "%s", c->dpdk.eal_args);
	snprintf(dc->dpdk_device, sizeof(dc->dpdk_device), "%s", c->dpdk.device);
	snprintf(dc->dpdk_exception, sizeof(dc->dpdk_exception), "%s", c->dpdk.exception);
	snprintf(dc->dpdk_addr, sizeof(dc->dpdk_addr), "%s", c->dpdk.addr);
	snprintf(dc->dpdk_gateway, sizeof(dc->dpdk_gateway), "%s", c->dpdk.gateway);
	snprintf(dc->dpdk_allow, sizeof(dc->dpdk_allow), "%s", c->dpdk.allow);
	dc->dpdk_allowlist_only = c->dpdk.allowlist_only;
	dc->dpdk_idle_us = (unsigned)c->dpdk.idle_us;
	dc->dpdk_syn_rate = c->dpdk.syn_rate;
	dc->dpdk_syn_burst = c->dpdk.syn_burst;
	dc->dpdk_pkt_rate = c->dpdk.pkt_rate;
	dc->dpdk_pkt_burst = c->dpdk.pkt_burst;
	dc->dpdk_open_rate = c->dpdk.open_rate;
	dc->dpdk_open_burst = c->dpdk.open_burst;
}

static int
start_dataplane(struct bxd *d, struct bx_errbuf *eb)
{
	struct bx_metagraph *mg;
	struct bx_dp_conf dc;
	int ret;

	if (d->conf.metagraph[0] == '\0') {
		return bx_err(eb, EINVAL,
		              "no metagraph file (--metagraph=FILE): admission needs it");
	}
	ret = bx_metagraph_load(d->conf.metagraph, &mg, eb);
	if (ret < 0) {
		return ret;
	}
	BX_LOG(NOTICE, "metagraph %s: %u neurons", d->conf.metagraph, bx_metagraph_size(mg));
	bx_dp_conf_default(&dc);
	snprintf(dc.listen_addr, sizeof(dc.listen_addr), "%s", d->conf.listen_addr);
	dc.port = (uint16_t)d->conf.port;
	dc.nb_cores = BX_MIN(d->plan.nb_dp, (unsigned)BX_DP_MAX_CORES);
	memcpy(dc.cpus, d->plan.dp_cpus, sizeof(unsigned) * dc.nb_cores);
	dc.max_conns = (unsigned)d->conf.dp_conns_per_core;
	dc.idle_timeout_ms = (unsigned)d->conf.dp_idle_timeout_ms;
	dc.hotkey = d->hotkey;
	dc.tx_buf = 256 * 1024; /* 16 embeddings of 384 floats with the echoed texts */
	if (d->conf.dataplane == BX_FW_DP_DPDK) {
		dpdk_conf(&d->conf, &dc);
	}
	ret = bx_dp_create(&dc, mg, &d->dp, eb);
	if (ret == 0 && d->embed != NULL) {
		ret = bx_fw_embed_create(d->embed, &d->plan, &d->embed_syn, eb);
	}
	if (ret == 0 && d->embed_syn != NULL) {
		ret = bx_dp_set_handler(d->dp, "TextEmbedding", bx_fw_embed_synapse, d->embed_syn);
	}
	if (ret == 0 && d->llm != NULL) {
		/* The generation worker shares the last inference CPU. */
		ret = bx_fw_gen_create(d->llm, (unsigned)d->conf.gen_max_tokens,
		                       d->plan.workers[d->plan.nb_workers - 1].cpus[0], &d->gen,
		                       eb);
	}
	if (ret == 0 && d->gen != NULL) {
		ret = bx_dp_set_handler(d->dp, "TextGeneration", bx_fw_gen_synapse, d->gen);
	}
	if (ret == 0 && d->gen != NULL) { /* the same fields, answered chunk by chunk */
		ret = bx_dp_set_handler(d->dp, "StreamingTextGeneration", bx_fw_gen_synapse,
		                        d->gen);
	}
	if (ret == 0) {
		ret = bx_dp_start(d->dp, eb);
	}
	return ret;
}

static void
render_dp(struct bxd *d, struct bx_prom *p)
{
	struct bx_dp_stats st;
	char labels[64];

	bx_dp_stats(d->dp, &st);
	bx_prom_family(p, "bx_requests_total", "counter", "complete HTTP requests parsed");
	bx_prom_sample(p, "bx_requests_total", NULL, (double)st.requests);
	bx_prom_family(p, "bx_responses_ok_total", "counter", "requests answered 200");
	bx_prom_sample(p, "bx_responses_ok_total", NULL, (double)st.responses_ok);
	bx_prom_family(p, "bx_rejections_total", "counter", "requests refused, by reason");
	for (unsigned r = 0; r < BX_DP_R_MAX; r++) {
		snprintf(labels, sizeof(labels), "reason=\"%s\"", bx_dp_reason_name(r));
		bx_prom_sample(p, "bx_rejections_total", labels, (double)st.rejected[r]);
	}
	bx_prom_family(p, "bx_connections_total", "counter", "TCP connections, by event");
	bx_prom_sample(p, "bx_connections_total", "event=\"accepted\"", (double)st.conns_accepted);
	bx_prom_sample(p, "bx_connections_total", "event=\"refused\"", (double)st.conns_refused);
	bx_prom_sample(p, "bx_connections_total", "event=\"closed\"", (double)st.conns_closed);
	bx_prom_sample(p, "bx_connections_total", "event=\"timed_out\"",
	               (double)st.conns_timed_out);
	bx_prom_family(p, "bx_dp_stage_seconds", "histogram",
	               "per-stage latency of answered requests on the dataplane");
	for (unsigned s = 0; s < BX_DP_S_MAX; s++) {
		snprintf(labels, sizeof(labels), "stage=\"%s\"", bx_dp_stage_name(s));
		bx_prom_lathist(p, "bx_dp_stage_seconds", labels, &st.stage[s]);
	}
	bx_prom_family(p, "bx_packets_total", "counter",
	               "kernel-bypass port: frames by fate (filter, lanes, exception path)");
	for (unsigned k = 0; k < BX_DP_P_MAX; k++) {
		snprintf(labels, sizeof(labels), "fate=\"%s\"", bx_dp_pkt_name(k));
		bx_prom_sample(p, "bx_packets_total", labels, (double)st.pkt[k]);
	}
	bx_prom_family(p, "bx_bytes_total", "counter", "bytes on the axon port");
	bx_prom_sample(p, "bx_bytes_total", "dir=\"in\"", (double)st.bytes_in);
	bx_prom_sample(p, "bx_bytes_total", "dir=\"out\"", (double)st.bytes_out);
}

static void
render_sched(const struct bx_sched *s, struct bx_prom *p)
{
	static const char *const sizes[8] = { "1", "2", "4", "8", "16", "32", "64", "128" };
	struct bx_sched_stats st;
	char labels[64];

	bx_sched_stats(s, &st);
	bx_prom_family(p, "bx_sched_queue_depth", "gauge", "embedding jobs queued or running");
	bx_prom_sample(p, "bx_sched_queue_depth", NULL, st.depth);
	bx_prom_family(p, "bx_sched_jobs_total", "counter", "embedding jobs, by outcome");
	bx_prom_sample(p, "bx_sched_jobs_total", "outcome=\"executed\"", (double)st.executed);
	bx_prom_sample(p, "bx_sched_jobs_total", "outcome=\"failed\"", (double)st.failed);
	bx_prom_sample(p, "bx_sched_jobs_total", "outcome=\"expired\"", (double)st.expired);
	bx_prom_sample(p, "bx_sched_jobs_total", "outcome=\"cancelled\"", (double)st.cancelled);
	bx_prom_sample(p, "bx_sched_jobs_total", "outcome=\"rejected_full\"",
	               (double)st.rejected_full);
	bx_prom_sample(p, "bx_sched_jobs_total", "outcome=\"rejected_late\"",
	               (double)st.rejected_late);
	bx_prom_sample(p, "bx_sched_jobs_total", "outcome=\"rejected_expired\"",
	               (double)st.rejected_expired);
	bx_prom_family(p, "bx_sched_batches_total", "counter",
	               "batches by size class (jobs, at least)");
	for (unsigned i = 0; i < 8; i++) {
		snprintf(labels, sizeof(labels), "jobs=\"%s\"", sizes[i]);
		bx_prom_sample(p, "bx_sched_batches_total", labels, (double)st.batch_jobs_hist[i]);
	}
	bx_prom_family(p, "bx_sched_stage_seconds", "histogram",
	               "embedding jobs: queue wait and batch compute");
	bx_prom_lathist(p, "bx_sched_stage_seconds", "stage=\"queue\"", &st.queue_hist);
	bx_prom_lathist(p, "bx_sched_stage_seconds", "stage=\"compute\"", &st.compute_hist);
}

static void
render_gen(const struct bx_fw_gen *g, struct bx_prom *p)
{
	static const char *const outcome[BX_GEN_OUTCOMES] = { "outcome=\"ok\"",
		                                              "outcome=\"expired\"",
		                                              "outcome=\"abandoned\"",
		                                              "outcome=\"failed\"" };
	struct bx_fw_gen_stats st;

	bx_fw_gen_stats(g, &st);
	bx_prom_family(p, "bx_gen_tokens_total", "counter", "generation tokens, by kind");
	bx_prom_sample(p, "bx_gen_tokens_total", "kind=\"prompt\"", (double)st.prompt_tokens);
	bx_prom_sample(p, "bx_gen_tokens_total", "kind=\"generated\"", (double)st.generated_tokens);
	bx_prom_family(p, "bx_gen_requests_total", "counter",
	               "generation requests the worker finished, by outcome");
	for (unsigned i = 0; i < BX_GEN_OUTCOMES; i++) {
		bx_prom_sample(p, "bx_gen_requests_total", outcome[i], (double)st.outcomes[i]);
	}
	bx_prom_family(p, "bx_gen_sequences", "gauge", "sequences decoding or waiting for prefill");
	bx_prom_sample(p, "bx_gen_sequences", "state=\"active\"", st.active);
	bx_prom_sample(p, "bx_gen_sequences", "state=\"waiting\"", st.waiting);
	bx_prom_family(p, "bx_gen_seconds", "histogram",
	               "a decode step of all active sequences; a request's time to first token");
	bx_prom_lathist(p, "bx_gen_seconds", "stage=\"step\"", &st.step);
	bx_prom_lathist(p, "bx_gen_seconds", "stage=\"first_token\"", &st.ttft);
}

static void
render(void *arg, struct bx_prom *p)
{
	struct bxd *d = arg;

	bx_prom_family(p, "bx_up_seconds", "gauge", "seconds since bxd started");
	bx_prom_sample(p, "bx_up_seconds", NULL, (double)(bx_time_ns() - d->start_ns) / 1e9);
	bx_prom_family(p, "bx_model_info", "gauge", "loaded models (1), synthetic or upstream");
	if (d->embed != NULL) {
		bx_prom_sample(p, "bx_model_info",
		               bx_embed_model_is_synthetic(d->embed) ?
		                       "model=\"all-MiniLM-L6-v2\",weights=\"synthetic\"" :
		                       "model=\"all-MiniLM-L6-v2\",weights=\"upstream\"",
		               1);
	}
	if (d->llm != NULL) {
		bx_prom_sample(p, "bx_model_info", "model=\"generation\",weights=\"file\"", 1);
	}
	bx_prom_family(p, "bx_metagraph_reloads_total", "counter", "SIGHUP reloads, by result");
	bx_prom_sample(p, "bx_metagraph_reloads_total", "result=\"ok\"", (double)d->reloads);
	bx_prom_sample(p, "bx_metagraph_reloads_total", "result=\"failed\"",
	               (double)d->reload_failures);
	if (d->dp != NULL) {
		render_dp(d, p);
	}
	if (d->embed_syn != NULL) {
		render_sched(bx_fw_embed_sched(d->embed_syn), p);
	}
	if (d->gen != NULL) {
		render_gen(d->gen, p);
	}
}

static void
reload(struct bxd *d)
{
	struct bx_errbuf eb;

	if (bx_dp_reload_metagraph(d->dp, d->conf.metagraph, &eb) < 0) {
		d->reload_failures++;
		BX_LOG(ERR, "metagraph reload failed, keeping the old one: %s", eb.msg);
		return;
	}
	d->reloads++;
	BX_LOG(NOTICE, "metagraph reloaded from %s", d->conf.metagraph);
}

/* The signals the main thread takes synchronously (blocked everywhere else). */
static void
control_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGHUP);
}

/* Wait for signals; ping the systemd watchdog meanwhile. Returns on SIGTERM/SIGINT. */
static void
serve(struct bxd *d)
{
	uint64_t wd_us = 0;
	struct timespec tick;
	sigset_t set;

	control_signals(&set);
	if (sd_watchdog_enabled(0, &wd_us) <= 0) {
		wd_us = 0;
	}
	/* Ping at half the watchdog period; without one, wake once a second anyway. */
	tick.tv_sec = wd_us ? (time_t)(wd_us / 2000000) : 1;
	tick.tv_nsec = wd_us ? (long)(wd_us / 2 % 1000000) * 1000 : 0;
	for (;;) {
		int sig = sigtimedwait(&set, NULL, &tick);

		if (wd_us != 0) {
			sd_notify(0, "WATCHDOG=1");
		}
		if (sig == SIGHUP) {
			reload(d);
		} else if (sig == SIGTERM || sig == SIGINT) {
			BX_LOG(NOTICE, "%s: draining for up to %" PRId64 " ms", strsignal(sig),
			       d->conf.drain_timeout_ms);
			return;
		}
	}
}

static int
start(struct bxd *d, struct bx_errbuf *eb)
{
	char plan[512];
	int ret;

	ret = bx_mgmt_start(d->conf.mgmt_addr, (uint16_t)d->conf.mgmt_port, render, d, &d->mgmt,
	                    eb);
	if (ret == 0) {
		ret = plan_cpus(d, eb);
	}
	if (ret == 0) {
		bx_sched_plan_describe(&d->plan, plan, sizeof(plan));
		BX_LOG(NOTICE, "plan: %s", plan);
		ret = load_hotkey(d, eb);
	}
	if (ret == 0) {
		ret = load_models(d, eb);
	}
	if (ret == 0) {
		ret = start_dataplane(d, eb);
	}
	return ret;
}

static void
stop(struct bxd *d)
{
	if (d->mgmt != NULL) {
		bx_mgmt_set_ready(d->mgmt, false, "draining");
	}
	sd_notify(0, "STOPPING=1");
	/*
	 * The dataplane drains first (it waits for tickets until drain_timeout_ms),
	 * then the workers go; a ticket they still hold stays valid (abandoned)
	 * until bx_dp_destroy, after them.
	 */
	if (d->dp != NULL) {
		bx_dp_stop(d->dp, (unsigned)d->conf.drain_timeout_ms);
	}
	bx_fw_embed_destroy(d->embed_syn);
	bx_fw_gen_destroy(d->gen);
	bx_dp_destroy(d->dp);
	bx_mgmt_stop(d->mgmt);
	bx_embed_model_destroy(d->embed);
	bx_llm_model_destroy(d->llm);
	bx_sr25519_keypair_destroy(d->hotkey);
}

static int
run(struct bxd *d)
{
	struct bx_errbuf eb;
	sigset_t set;

	/* Blocked before any thread starts, so every thread inherits the mask. */
	control_signals(&set);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	/* DPDK's net_tap signals its queues; only the DPDK workers take those. */
	sigemptyset(&set);
	sigaddset(&set, SIGIO);
	for (int s = SIGRTMIN; s <= SIGRTMAX; s++) {
		sigaddset(&set, s);
	}
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	d->start_ns = bx_time_ns();
	if (bx_crypto_init() < 0 || start(d, &eb) < 0) {
		fprintf(stderr, "bxd: %s\n", eb.msg);
		stop(d);
		return 1;
	}
	bx_mgmt_set_ready(d->mgmt, true, NULL);
	sd_notify(0, "READY=1");
	BX_LOG(NOTICE, "serving %s on %s:%u (%s); management on %s:%u", bx_dp_hotkey(d->dp),
	       d->conf.dataplane == BX_FW_DP_DPDK ? d->conf.dpdk.addr : d->conf.listen_addr,
	       bx_dp_port(d->dp), d->conf.dataplane == BX_FW_DP_DPDK ? "dpdk" : "io_uring",
	       d->conf.mgmt_addr, bx_mgmt_port(d->mgmt));
	serve(d);
	stop(d);
	BX_LOG(NOTICE, "stopped");
	return 0;
}

int
main(int argc, char **argv)
{
	static char text[8192];
	static struct bxd d;
	enum bx_fw_action action;
	struct bx_errbuf eb;

	if (getenv("BX_DEBUG_POOL") != NULL && strcmp(getenv("BX_DEBUG_POOL"), "1") == 0) {
		bx_mem_debug_set(true);
	}
	if (bx_fw_conf_load(argc, argv, &d.conf, &action, &eb) < 0) {
		fprintf(stderr, "bxd: %s\n", eb.msg);
		return 2;
	}
	switch (action) {
	case BX_FW_HELP:
		usage();
		return 0;
	case BX_FW_VERSION:
		printf("bxd %s\n", BX_VERSION);
		return 0;
	case BX_FW_PRINT_CONFIG:
		bx_fw_conf_dump(&d.conf, text, sizeof(text));
		fputs(text, stdout);
		return 0;
	case BX_FW_CHECK:
		printf("bxd: configuration OK\n");
		return 0;
	case BX_FW_RUN:
		break;
	}
	return run(&d);
}
