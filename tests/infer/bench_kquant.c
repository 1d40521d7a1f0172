/*
 * bench_kquant: single-stream decode on a synthetic TinyLlama shape (dim
 * 2048, hidden 5632, 22 layers, 32/4 heads, vocab 32000, untied) in Q4_K
 * and in Q6_K, at 1 and 2 threads: the AVX-512 VNNI K-quant kernels
 * ("new") against the old path, rows dequantized to f32 256 values at a
 * time (llm_kquant_kernels = false, "old"). The memory read bandwidth is
 * measured in the same run (as bench_generate) and decode is printed as a
 * fraction of the bound bandwidth / bytes of weights per token. A 4-
 * sequence step on the new path shows batched steps too.
 *
 * The old path takes seconds a token at this size, so it runs one step;
 * the new path is the best of 3 runs of 4 steps (the machine is shared).
 * BX_BENCH_SHAPE=small runs a 60 M shape for a quick look;
 * BX_BENCH_NO_OLD=1 leaves the old path out.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bx/infer.h>
#include <bx/platform.h>

#include "bench_mem.h"
#include "bx_bench.h"
#include "llm_int.h"

/* Decode tokens/s of nseq sequences: best of reps runs of steps steps (after a warm-up step). */
static double
decode(const struct bx_llm_model *m, unsigned nt, unsigned nseq, unsigned reps, unsigned steps,
       bool old)
{
	struct bx_llm_seq_conf sc = { .sample = { .top_p = 1, .repeat_penalty = 1 } };
	struct bx_llm_seq *s[4] = { NULL };
	struct bx_llm_event ev[4];
	struct bx_llm_ctx *ctx;
	const int32_t prompt[] = { 1, 300, 301, 302, 303, 304, 305, 306 };
	double best = 0;

	if (bx_llm_ctx_create(m, 8, nt, false, &ctx)) {
		return 0;
	}
	for (unsigned i = 0; i < nseq; i++) {
		if (bx_llm_seq_create(m, &sc, &s[i]) ||
		    bx_llm_seq_prefill(ctx, s[i], prompt, 8, &ev[i])) {
			goto out;
		}
	}
	llm_kquant_kernels = !old; /* the prompt went through the new path either way */
	if (reps > 1 && bx_llm_step(ctx, s, nseq, ev)) {
		goto out;
	}
	for (unsigned r = 0; r < reps; r++) {
		uint64_t t0 = bx_time_ns();

		for (unsigned k = 0; k < steps; k++) {
			if (bx_llm_step(ctx, s, nseq, ev)) {
				best = 0;
				goto out;
			}
		}
		best = BX_MAX(best, nseq * steps / ((double)(bx_time_ns() - t0) * 1e-9));
	}
out:
	for (unsigned i = 0; i < nseq; i++) {
		bx_llm_seq_destroy(s[i]);
	}
	bx_llm_ctx_destroy(ctx);
	llm_kquant_kernels = true;
	return best;
}

static int
bench_type(const struct bx_llm_config *cfg, enum bx_llm_type type, const double *bw)
{
	struct bx_llm_model *m;
	struct bx_errbuf eb;
	char name[64];
	double wb;

	if (bx_llm_synth(cfg, type, 1, &m, &eb)) {
		fprintf(stderr, "bench_kquant: %s\n", eb.msg);
		return -1;
	}
	wb = (double)bx_llm_model_weight_bytes(m);
	bx_bench_emit("kquant", bx_llm_type_name(type), "weight_bytes", wb, "B");
	for (unsigned nt = 1; nt <= 2; nt++) {
		for (int path = getenv("BX_BENCH_NO_OLD") ? 1 : 0; path < 2; path++) {
			double rate;

			rate = path ? decode(m, nt, 1, 3, 4, false) : decode(m, nt, 1, 1, 1, true);
			snprintf(name, sizeof(name), "%s_%s_decode_1seq_%ut",
			         bx_llm_type_name(type), path ? "new" : "old", nt);
			bx_bench_emit("kquant", name, "tokens_per_s", rate, "tok/s");
			bx_bench_emit("kquant", name, "fraction_of_bandwidth_bound",
			              rate * wb / bw[nt - 1], "1");
		}
		snprintf(name, sizeof(name), "%s_new_decode_4seq_%ut", bx_llm_type_name(type), nt);
		bx_bench_emit("kquant", name, "tokens_per_s", decode(m, nt, 4, 2, 2, false),
		              "tok/s");
	}
	bx_llm_model_destroy(m);
	return 0;
}

int
main(void)
{
	struct bx_llm_config cfg = { .dim = 2048,
		                     .hidden_dim = 5632,
		                     .n_layers = 22,
		                     .n_heads = 32,
		                     .n_kv_heads = 4,
		                     .vocab_size = 32000,
		                     .seq_len = 64 };
	double bw[2];

	if (!llm_have_avx512()) {
		fprintf(stderr, "bench_kquant: no AVX-512 VNNI here\n");
		return 77;
	}
	if (getenv("BX_BENCH_SHAPE") && !strcmp(getenv("BX_BENCH_SHAPE"), "small")) {
		cfg.dim = 512;
		cfg.hidden_dim = 1536;
		cfg.n_layers = 8;
		cfg.n_heads = 8;
		cfg.n_kv_heads = 4;
	}
	for (unsigned nt = 1; nt <= 2; nt++) {
		char name[16];

		bw[nt - 1] = bench_read_bandwidth(nt);
		snprintf(name, sizeof(name), "memory_%ut", nt);
		bx_bench_emit("kquant", name, "read_bandwidth", bw[nt - 1] * 1e-9, "GB/s");
	}
	if (bench_type(&cfg, BX_LLM_Q4_K, bw) || bench_type(&cfg, BX_LLM_Q6_K, bw)) {
		return 1;
	}
	return 0;
}
