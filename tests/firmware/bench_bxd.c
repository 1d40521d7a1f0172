/*
 * bench_bxd: signed TextEmbedding requests through the real bxd, against the
 * bare engine on the same weights and thread count, in one run.
 *
 *   1. closed loop (bx-validator, 8 connections): peak requests/s, p50/p99;
 *   2. open loop at 70 % of that peak: p50/p99 and success within the
 *      dendrite's 12 s timeout;
 *   3. the bare engine: one context per dataplane thread, one text per call,
 *      as bxd runs it; sentences/s.
 * One JSON line per figure, then the ratio e2e/bare. Client and server share
 * this machine's cores, so the client skips verifying bxd's two response
 * signatures (--no-verify: ~80 us of its CPU per request that is not bxd's);
 * bxd still verifies every request and signs every answer twice.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include <bx/infer.h>

#include "bx_bench.h"
#include "bxd_run.h"

#define TEXT          "the quick brown fox jumps over the lazy dog near the river bank"
#define BARE_SECONDS  3.0
#define NB_DP_THREADS 2

static const char *validator_path;

/* Run bx-validator with a JSON report; returns the parsed report or NULL. */
static json_t *
run_validator(const struct bxd_run *r, const char *rate, const char *seconds)
{
	char url[64], wallets[128], json[128];
	pid_t pid;
	int status;

	snprintf(url, sizeof(url), "http://127.0.0.1:%u", r->port);
	snprintf(json, sizeof(json), "%s/report.json", r->dir);
	snprintf(wallets, sizeof(wallets), "%s/wallets", r->dir);
	pid = fork();
	if (pid == 0) {
		execl(validator_path, "bx-validator", "--url", url, "--axon-hotkey",
		      r->keys.miner_ss58, "--wallet-path", wallets, "--wallet", "validator",
		      "--hotkey", "default", "--synapse", "embedding", "--text", TEXT, "--rate",
		      rate, "--connections", "8", "--duration", seconds, "--warmup", "1", "--quiet",
		      "--no-verify", "--json", json, (char *)NULL);
		_exit(127);
	}
	waitpid(pid, &status, 0);
	return WIFEXITED(status) ? json_load_file(json, 0, NULL) : NULL;
}

/* Throughput and latency figures of one bx-validator report. */
static double
emit_report(const char *name, json_t *rep)
{
	json_t *lat = json_object_get(json_object_get(rep, "latency_ns"), "all");
	double rate = json_number_value(json_object_get(rep, "rate"));
	double ok = json_number_value(json_object_get(rep, "success_in_time"));
	double measured = json_number_value(json_object_get(rep, "measured"));

	bx_bench_emit("bxd", name, "requests_per_s", rate, "1/s");
	bx_bench_emit("bxd", name, "p50", json_number_value(json_object_get(lat, "p50")) / 1e3,
	              "us");
	bx_bench_emit("bxd", name, "p99", json_number_value(json_object_get(lat, "p99")) / 1e3,
	              "us");
	bx_bench_emit("bxd", name, "success_in_time", measured > 0 ? ok / measured : 0, "ratio");
	return rate;
}

struct bare {
	const struct bx_embed_model *m;
	uint64_t done;
};

static void *
bare_thread(void *arg)
{
	struct bare *b = arg;
	struct bx_embed_ctx *ctx;
	int32_t ids[256];
	const int32_t *idp = ids;
	float out[1024];
	unsigned len = (unsigned)bx_embed_tokenize(b->m, TEXT, strlen(TEXT), ids);
	uint64_t end = bx_time_ns() + (uint64_t)(BARE_SECONDS * 1e9);

	if (bx_embed_ctx_create(b->m, 1, &ctx) < 0) {
		return NULL;
	}
	while (bx_time_ns() < end) {
		bx_embed_batch_ids(ctx, &idp, &len, 1, out);
		b->done++;
	}
	bx_embed_ctx_destroy(ctx);
	return NULL;
}

/* The engine alone: NB_DP_THREADS threads, one text per call. */
static double
bare_engine(const struct bxd_run *r)
{
	struct bx_embed_model *m;
	struct bare b[NB_DP_THREADS];
	pthread_t t[NB_DP_THREADS];
	char dir[128];
	double total = 0;

	snprintf(dir, sizeof(dir), "%s/model", r->dir);
	if (bx_embed_model_load(dir, NULL, &m, NULL) < 0) {
		return 0;
	}
	for (int i = 0; i < NB_DP_THREADS; i++) {
		b[i] = (struct bare){ m, 0 };
		pthread_create(&t[i], NULL, bare_thread, &b[i]);
	}
	for (int i = 0; i < NB_DP_THREADS; i++) {
		pthread_join(t[i], NULL);
		total += (double)b[i].done;
	}
	bx_embed_model_destroy(m);
	bx_bench_emit("bxd", "bare_engine", "sentences_per_s", total / BARE_SECONDS, "1/s");
	return total / BARE_SECONDS;
}

int
main(int argc, char **argv)
{
	struct bxd_run r;
	double peak, bare;
	char rate[32];
	json_t *rep;

	if (argc < 4) {
		fprintf(stderr, "usage: bench_bxd BXD BX_MKWEIGHTS BX_VALIDATOR\n");
		return 77;
	}
	validator_path = argv[3];
	if (bxd_run_start(&r, argv[1], argv[2], NULL) < 0) {
		bxd_run_cleanup(&r);
		return 1;
	}
	rep = run_validator(&r, "0", "6");
	peak = rep != NULL ? emit_report("closed_loop_8conn", rep) : 0;
	json_decref(rep);
	snprintf(rate, sizeof(rate), "%.0f", peak * 0.7);
	rep = peak > 0 ? run_validator(&r, rate, "6") : NULL;
	if (rep != NULL) {
		emit_report("open_loop_70pct", rep);
	}
	json_decref(rep);
	bxd_run_stop(&r);
	bare = bare_engine(&r);
	bx_bench_emit("bxd", "e2e_over_bare", "ratio", bare > 0 ? peak / bare : 0, "ratio");
	bxd_run_cleanup(&r);
	return peak > 0 && bare > 0 ? 0 : 1;
}
