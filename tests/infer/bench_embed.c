/*
 * bench_embed: all-MiniLM-L6-v2 forward pass on oneDNN bf16.
 *
 * Sentences/s and p50/p99 batch latency for batch 1 and 32 at 16 and 128
 * tokens, on 1 core (1 worker x 1 thread) and 2 cores (1 worker x 2
 * threads, and 2 workers x 1 thread each on its own core), then each
 * kernel's time share and achieved GFLOP/s against the 535 GFLOP/s bf16
 * peak per core (research inference.md §1.4, §5.1), and the tokenizer rate.
 *
 * Weights: $BX_EMBED_MODEL (a directory with model.safetensors and
 * vocab.txt) or generated weights of the real shapes in /tmp.
 * $BX_BENCH_SECONDS sets the time per case (default 1).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bx/infer.h>

#include "bx_bench.h"
#include "bx_test.h"

#define PEAK_BF16_PER_CORE 535e9
#define MAX_SAMPLES        100000

struct job {
	const struct bx_embed_model *m;
	unsigned threads, batch, tokens, cpu;
	double seconds;
	uint64_t *lat;
	size_t nb_lat;
	uint64_t sentences, wall_ns, ctx_ns, batch_tokens;
	struct bx_embed_profile prof;
	int ret;
};

static void
make_ids(int32_t *ids, unsigned tokens, unsigned seed)
{
	ids[0] = 101;
	for (unsigned i = 1; i + 1 < tokens; i++) {
		seed = seed * 1103515245u + 12345u;
		ids[i] = 1000 + (int32_t)((seed >> 8) % 28000);
	}
	ids[tokens - 1] = 102;
}

static void *
run_job(void *arg)
{
	struct job *j = arg;
	static __thread int32_t ids[32][256];
	const int32_t *ptr[32];
	unsigned lens[32];
	float *out = malloc(sizeof(float) * 32 * 384);
	struct bx_embed_ctx *ctx = NULL;
	struct bx_errbuf eb;
	uint64_t t0, end;

	if (j->cpu != ~0u) {
		bx_thread_pin_self(j->cpu, &eb);
	}
	t0 = bx_time_ns();
	j->ret = out == NULL ? -ENOMEM : bx_embed_ctx_create(j->m, j->threads, &ctx);
	j->ctx_ns = bx_time_ns() - t0;
	for (unsigned i = 0; i < j->batch; i++) {
		/* tokens 0: mixed lengths 8..64, like short search queries and sentences */
		lens[i] = j->tokens ? j->tokens : 8 + (i * 37 + 11 * j->cpu) % 57;
		make_ids(ids[i], lens[i], i + 7 * j->cpu);
		j->batch_tokens += lens[i];
		ptr[i] = ids[i];
	}
	/* warm up: primitive creation for this length */
	for (int i = 0; i < 2 && j->ret == 0; i++) {
		j->ret = bx_embed_batch_ids(ctx, ptr, lens, j->batch, out);
	}
	if (j->ret == 0) {
		bx_embed_ctx_profile_enable(ctx, true);
	}
	t0 = bx_time_ns();
	end = t0 + (uint64_t)(j->seconds * 1e9);
	while (j->ret == 0 && j->nb_lat < MAX_SAMPLES) {
		uint64_t a = bx_time_ns(), b;

		j->ret = bx_embed_batch_ids(ctx, ptr, lens, j->batch, out);
		b = bx_time_ns();
		j->lat[j->nb_lat++] = b - a;
		j->sentences += j->batch;
		if (b >= end) {
			break;
		}
	}
	j->wall_ns = bx_time_ns() - t0;
	if (ctx != NULL) {
		bx_embed_ctx_profile(ctx, &j->prof);
	}
	bx_embed_ctx_destroy(ctx);
	free(out);
	return NULL;
}

static void
report_kernels(const char *name, const struct bx_embed_profile *p, unsigned threads)
{
	uint64_t total = 0;
	char c[160];

	for (int i = 0; i < BX_EMBED_OP_MAX; i++) {
		total += p->ns[i];
	}
	for (int i = 0; i < BX_EMBED_OP_MAX; i++) {
		snprintf(c, sizeof(c), "%s/%s", name, bx_embed_op_name(i));
		bx_bench_emit("embed", c, "share", total ? (double)p->ns[i] / total : 0, "1");
		bx_bench_emit("embed", c, "us_per_batch",
		              p->batches ? (double)p->ns[i] / 1e3 / p->batches : 0, "us");
		if (p->flop[i] > 0 && p->ns[i] > 0) {
			double rate = p->flop[i] / ((double)p->ns[i] / 1e9);

			bx_bench_emit("embed", c, "gflops", rate / 1e9, "GFLOP/s");
			bx_bench_emit("embed", c, "peak_fraction",
			              rate / (PEAK_BF16_PER_CORE * threads), "1");
		}
	}
}

/* workers x threads each, pinned to cpus 0.. when there are enough. */
static int
run_case(const struct bx_embed_model *m, unsigned workers, unsigned threads, unsigned batch,
         unsigned tokens, double seconds, unsigned nb_cpus)
{
	struct job j[2];
	pthread_t th[2];
	uint64_t sent = 0, wall = 0;
	char name[96];

	memset(j, 0, sizeof(j));
	for (unsigned w = 0; w < workers; w++) {
		j[w] = (struct job){ .m = m,
			             .threads = threads,
			             .batch = batch,
			             .tokens = tokens,
			             .cpu = (workers > 1 && w < nb_cpus) ? w : ~0u,
			             .seconds = seconds };
		j[w].lat = malloc(sizeof(uint64_t) * MAX_SAMPLES);
		if (j[w].lat == NULL || pthread_create(&th[w], NULL, run_job, &j[w]) != 0) {
			return -ENOMEM;
		}
	}
	for (unsigned w = 0; w < workers; w++) {
		pthread_join(th[w], NULL);
		if (j[w].ret < 0) {
			fprintf(stderr, "bench_embed: worker failed: %d\n", j[w].ret);
			return j[w].ret;
		}
		sent += j[w].sentences;
		wall = BX_MAX(wall, j[w].wall_ns);
	}
	if (tokens) {
		snprintf(name, sizeof(name), "%uw x %ut/batch%u/%utok", workers, threads, batch,
		         tokens);
	} else {
		snprintf(name, sizeof(name), "%uw x %ut/batch%u/8-64tok", workers, threads, batch);
	}
	bx_bench_emit("embed", name, "sentences_per_s", (double)sent / ((double)wall / 1e9), "1/s");
	bx_bench_emit("embed", name, "tokens_per_s",
	              (double)sent * j[0].batch_tokens / batch / ((double)wall / 1e9), "1/s");
	bx_bench_emit_latency("embed", name, j[0].lat, j[0].nb_lat);
	bx_bench_emit("embed", name, "ctx_create_ms", (double)j[0].ctx_ns / 1e6, "ms");
	if (workers == 1) {
		report_kernels(name, &j[0].prof, threads);
	}
	for (unsigned w = 0; w < workers; w++) {
		free(j[w].lat);
	}
	return 0;
}

static void
bench_tokenizer(const struct bx_embed_model *m)
{
	static const char text[] =
		"The quick brown fox jumps over the lazy dog, and then naïvely asks: "
		"what is an embedding? Café déjà vu, 東京タワー.";
	int32_t ids[256];
	uint64_t t0 = bx_time_ns(), n = 0;

	while (bx_time_ns() - t0 < 300000000ull) {
		for (int i = 0; i < 100; i++) {
			n += bx_embed_tokenize(m, text, sizeof(text) - 1, ids) > 0;
		}
	}
	bx_bench_emit("embed", "tokenize/120B", "texts_per_s",
	              (double)n / ((double)(bx_time_ns() - t0) / 1e9), "1/s");
}

int
main(void)
{
	const char *dir = getenv("BX_EMBED_MODEL"), *secs = getenv("BX_BENCH_SECONDS");
	double seconds = secs ? atof(secs) : 1.0;
	char tmp[] = "/tmp/bx-bench-embed-XXXXXX", vocab[512], path[600], cmd[700];
	struct bx_embed_model *m;
	struct bx_errbuf eb;
	long nb_cpus = sysconf(_SC_NPROCESSORS_ONLN);
	static const unsigned batches[] = { 1, 32 }, tokens[] = { 16, 128, 0 };

	if (dir == NULL) {
		size_t len;
		char *v;
		FILE *fp;

		if (mkdtemp(tmp) == NULL ||
		    bx_embed_synth_write(tmp, &bx_embed_minilm_shape, 1, &eb) < 0) {
			fprintf(stderr, "bench_embed: cannot generate weights: %s\n", eb.msg);
			return 1;
		}
		v = bx_test_read_file(
			bx_test_shared("models/all-MiniLM-L6-v2/vocab.txt", vocab, sizeof(vocab)),
			&len);
		if (v == NULL) {
			bx_test_skip("no vocab.txt in ../shared/models/all-MiniLM-L6-v2");
		}
		snprintf(path, sizeof(path), "%s/vocab.txt", tmp);
		fp = fopen(path, "wb");
		if (fp == NULL || fwrite(v, 1, len, fp) != len || fclose(fp) != 0) {
			return 1;
		}
		free(v);
		dir = tmp;
	}
	if (bx_embed_model_load(dir, NULL, &m, &eb) < 0) {
		fprintf(stderr, "bench_embed: %s\n", eb.msg);
		return 1;
	}
	bench_tokenizer(m);
	for (unsigned b = 0; b < 2; b++) {
		for (unsigned t = 0; t < 3; t++) {
			if (tokens[t] == 0 && batches[b] == 1) {
				continue;
			}
			run_case(m, 1, 1, batches[b], tokens[t], seconds, (unsigned)nb_cpus);
			if (nb_cpus >= 2) {
				run_case(m, 1, 2, batches[b], tokens[t], seconds,
				         (unsigned)nb_cpus);
				run_case(m, 2, 1, batches[b], tokens[t], seconds,
				         (unsigned)nb_cpus);
			}
		}
	}
	bx_embed_model_destroy(m);
	if (dir == tmp) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
		if (system(cmd) != 0) {
			return 1;
		}
	}
	return 0;
}
