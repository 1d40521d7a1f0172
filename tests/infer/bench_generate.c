/*
 * bench_generate: text generation on a synthetic Llama shape of 1.1 B
 * parameters (TinyLlama: dim 2048, hidden 5632, 22 layers, 32/4 heads,
 * vocab 32000, untied) in Q4_0 and Q8_0: prefill tokens/s, single-stream
 * decode tokens/s, aggregate decode tokens/s at 4 and 16 sequences. The
 * machine's memory read bandwidth is measured in the same run; decode is
 * printed as a fraction of the bound bandwidth / bytes of weights per token.
 *
 * BX_BENCH_THREADS (default 2) sets the OpenMP threads; BX_BENCH_SHAPE=small
 * runs a 60 M shape for a quick look; BX_BENCH_NO_I8=1 leaves out the int8
 * row-interleaved copies (batched steps then decode the blocks row by row);
 * BX_BENCH_BF16=1 adds the bf16 copies
 * (prefill and 16-sequence steps then run AVX512-BF16: faster while the
 * weights fit in cache, slower than the quantized blocks at 1 B here).
 *
 * Each type then gets the oneDNN copies (bx_llm_model_pack_dnnl) and runs
 * prefill and the 4- and 16-sequence steps again as <type>_dnnl_*, next to
 * the figures above; BX_BENCH_NO_DNNL=1 leaves that out. Both paths print
 * decode_16seq_over_1seq against the same single-stream rate. Every figure
 * is the best of 5 runs: this machine is shared, and a neighbour's burst
 * slows one run by up to 10x.
 */
#include <errno.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <bx/infer.h>
#include <bx/platform.h>

#include "bench_mem.h"
#include "bx_bench.h"

#define REPS 5 /* runs of each figure; the best counts (other load only slows one down) */

static double
now_s(void)
{
	return (double)bx_time_ns() * 1e-9;
}

/* Process CPU seconds: on a shared machine, what the step itself cost. */
static double
cpu_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

struct run {
	const struct bx_llm_model *m;
	struct bx_llm_ctx *ctx;
	struct bx_llm_seq *seqs[16];
	const char *name;
	double bound; /* tokens/s at the bandwidth bound */
	double rate1; /* single-sequence decode tokens/s */
};

static int
open_seqs(struct run *r, unsigned n, const int32_t *prompt, size_t np)
{
	struct bx_llm_seq_conf sc = { .sample = { .top_p = 1, .repeat_penalty = 1 },
		                      .ctx_len = 256 };
	struct bx_llm_event ev;

	for (unsigned i = 0; i < n; i++) {
		if (bx_llm_seq_create(r->m, &sc, &r->seqs[i]) ||
		    bx_llm_seq_prefill(r->ctx, r->seqs[i], prompt, np, &ev)) {
			return -ENOMEM;
		}
	}
	return 0;
}

static void
close_seqs(struct run *r, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		bx_llm_seq_destroy(r->seqs[i]);
		r->seqs[i] = NULL;
	}
}

static int
decode(struct run *r, unsigned n, unsigned steps, const int32_t *prompt, double *out)
{
	struct bx_llm_event ev[16];
	char name[64];
	double best = 0, cpu = 0;

	if (open_seqs(r, n, prompt, 8)) {
		return -ENOMEM;
	}
	bx_llm_step(r->ctx, r->seqs, n, ev); /* warm-up */
	for (unsigned rep = 0; rep < REPS; rep++) {
		double t0 = now_s(), c0 = cpu_s(), rate;

		for (unsigned k = 0; k < steps; k++) {
			if (bx_llm_step(r->ctx, r->seqs, n, ev)) {
				return -EINVAL;
			}
		}
		rate = n * steps / (now_s() - t0);
		if (rate > best) {
			best = rate;
			cpu = (cpu_s() - c0) * 1e3 / steps;
		}
	}
	snprintf(name, sizeof(name), "%s_decode_%useq", r->name, n);
	bx_bench_emit("generate", name, "tokens_per_s", best, "tok/s");
	bx_bench_emit("generate", name, "cpu_ms_per_step", cpu, "ms");
	if (n == 1) {
		bx_bench_emit("generate", name, "fraction_of_bandwidth_bound", best / r->bound,
		              "1");
	} else {
		bx_bench_emit("generate", name, "per_seq_tokens_per_s", best / n, "tok/s");
	}
	*out = best;
	close_seqs(r, n);
	return 0;
}

/* The first run also creates the context's oneDNN primitives for its chunk size. */
static int
prefill(struct run *r, const int32_t *prompt, size_t np)
{
	struct bx_llm_seq_conf sc = { .sample = { .top_p = 1, .repeat_penalty = 1 },
		                      .ctx_len = 256 };
	struct bx_llm_event ev;
	struct bx_llm_seq *s;
	char name[64];
	double best = 0, cpu = 0;

	for (unsigned rep = 0; rep < REPS; rep++) {
		double t0, c0;
		int ret;

		if (bx_llm_seq_create(r->m, &sc, &s)) {
			return -ENOMEM;
		}
		t0 = now_s();
		c0 = cpu_s();
		ret = bx_llm_seq_prefill(r->ctx, s, prompt, np, &ev);
		if (np / (now_s() - t0) > best) {
			best = np / (now_s() - t0);
			cpu = np / (cpu_s() - c0);
		}
		bx_llm_seq_destroy(s);
		if (ret) {
			return ret;
		}
	}
	snprintf(name, sizeof(name), "%s_prefill_%zu", r->name, np);
	bx_bench_emit("generate", name, "tokens_per_s", best, "tok/s");
	bx_bench_emit("generate", name, "tokens_per_cpu_s", cpu, "tok/s");
	return 0;
}

/*
 * Prefill of 128 tokens (chunks of 64), decode at 4 and 16 sequences, and
 * with single the 1-sequence decode that every path shares (it never
 * leaves the block kernels); 16 sequences over 1 as its own figure.
 */
static int
run_path(struct run *r, unsigned nt, const int32_t *prompt, bool single)
{
	double rate4, rate16;
	int ret = bx_llm_ctx_create(r->m, 64, nt, false, &r->ctx);

	ret = ret ? ret : prefill(r, prompt, 128);
	if (!ret && single) {
		ret = decode(r, 1, 16, prompt, &r->rate1);
	}
	ret = ret ? ret : decode(r, 4, 8, prompt, &rate4);
	ret = ret ? ret : decode(r, 16, 6, prompt, &rate16);
	if (!ret) {
		bx_bench_emit("generate", r->name, "decode_16seq_over_1seq", rate16 / r->rate1,
		              "x");
	}
	bx_llm_ctx_destroy(r->ctx);
	r->ctx = NULL;
	return ret;
}

static int
bench_type(const struct bx_llm_config *cfg, enum bx_llm_type type, unsigned nt, double bw)
{
	struct run r = { .name = bx_llm_type_name(type) };
	struct bx_llm_model *m;
	struct bx_errbuf eb;
	int32_t prompt[128];
	char dname[32];
	double t0 = now_s();
	int ret;

	if (bx_llm_synth(cfg, type, 1, &m, &eb)) {
		fprintf(stderr, "bench_generate: %s\n", eb.msg);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < 128; i++) {
		prompt[i] = (int32_t)(259 + i * 97 % (cfg->vocab_size - 259));
	}
	/* int8 copies for prefill and batched steps (4+ tokens a step) */
	if (!getenv("BX_BENCH_NO_I8") && bx_llm_model_pack_i8(m, &eb) == 0) {
		bx_bench_emit("generate", r.name, "int8_copies", 1, "1");
	}
	/* optional bf16 copies for prefill and wide batches (steps of 8+ tokens) */
	if (getenv("BX_BENCH_BF16") && bx_llm_model_pack_bf16(m, &eb) == 0) {
		bx_bench_emit("generate", r.name, "bf16_copies", 1, "1");
	}
	r.m = m;
	r.bound = bw / (double)bx_llm_model_weight_bytes(m);
	fprintf(stderr, "%s: %.2f GB of weights, generated in %.1f s; bound %.1f tok/s\n", r.name,
	        (double)bx_llm_model_weight_bytes(m) * 1e-9, now_s() - t0, r.bound);
	bx_bench_emit("generate", r.name, "weight_bytes", (double)bx_llm_model_weight_bytes(m),
	              "B");
	bx_bench_emit("generate", r.name, "bandwidth_bound_tokens_per_s", r.bound, "tok/s");
	ret = run_path(&r, nt, prompt, true);
	/* the same model with oneDNN copies: prefill and batched steps on AMX/VNNI matmuls */
	if (!ret && !getenv("BX_BENCH_NO_DNNL")) {
		t0 = now_s();
		if (bx_llm_model_pack_dnnl(m, &eb) == 0) {
			snprintf(dname, sizeof(dname), "%s_dnnl", r.name);
			fprintf(stderr, "%s: oneDNN copies packed in %.1f s\n", r.name,
			        now_s() - t0);
			r.name = dname;
			ret = run_path(&r, nt, prompt, false);
		} else {
			fprintf(stderr, "bench_generate: no oneDNN path: %s\n", eb.msg);
		}
	}
	bx_llm_model_destroy(m);
	return ret;
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
		                     .seq_len = 2048 };
	const char *env = getenv("BX_BENCH_THREADS");
	unsigned nt = env ? (unsigned)atoi(env) : 2;
	double bw;

	if (getenv("BX_BENCH_SHAPE") && !strcmp(getenv("BX_BENCH_SHAPE"), "small")) {
		cfg.dim = 512;
		cfg.hidden_dim = 1536;
		cfg.n_layers = 8;
		cfg.n_heads = 8;
		cfg.n_kv_heads = 4;
	}
	nt = nt ? nt : 1;
	bw = bench_read_bandwidth(nt);
	bx_bench_emit("generate", "memory", "read_bandwidth", bw * 1e-9, "GB/s");
	bx_bench_emit("generate", "memory", "threads", nt, "1");
	if (bench_type(&cfg, BX_LLM_Q4_0, nt, bw) || bench_type(&cfg, BX_LLM_Q8_0, nt, bw)) {
		return 1;
	}
	return 0;
}
