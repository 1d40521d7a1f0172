/*
 * Embedding model: the f32 reference against an independent double-precision
 * computation on a tiny configuration (1 layer, hidden 8), oneDNN bf16
 * against the reference on generated weights of the real shapes, unit norms,
 * batch invariance, and bad model files.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>

#include "embed_int.h"
#include "test_util.h"

static const struct bx_embed_shape tiny = {
	.vocab = 10,
	.hidden = 8,
	.layers = 1,
	.heads = 2,
	.ffn = 16,
	.positions = 16,
	.types = 2,
};
static const char tiny_vocab[] = "[PAD]\n[UNK]\n[CLS]\n[SEP]\nab\n##c\nd\ne\n##f\ng\n";

static char full_dir[64], tiny_dir[64];

static void
write_text(const char *dir, const char *file, const char *text)
{
	char path[256];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs(text, fp);
	assert_int_equal(fclose(fp), 0);
}

static int
setup(void **state)
{
	char vocab[512], path[256];
	struct bx_errbuf eb;

	tmpdir(tiny_dir, sizeof(tiny_dir));
	if (bx_embed_synth_write(tiny_dir, &tiny, 7, &eb) < 0) {
		fprintf(stderr, "%s\n", eb.msg);
		return -1;
	}
	write_text(tiny_dir, "vocab.txt", tiny_vocab);
	tmpdir(full_dir, sizeof(full_dir));
	if (bx_embed_synth_write(full_dir, &bx_embed_minilm_shape, 42, &eb) < 0) {
		fprintf(stderr, "%s\n", eb.msg);
		return -1;
	}
	snprintf(path, sizeof(path), "%s/vocab.txt", full_dir);
	copy_file(shared_or_skip("models/all-MiniLM-L6-v2/vocab.txt", vocab, sizeof(vocab)), path);
	return 0;
}

static int
teardown(void **state)
{
	rm_rf(tiny_dir);
	rm_rf(full_dir);
	return 0;
}

/* ---------------------------------------------------------------- */
/* An independent double-precision BERT, written per element, for the tiny model. */

static const float *
T(const struct bx_st_file *f, const char *name)
{
	const struct bx_st_tensor *t = bx_st_find(f, name);

	assert_non_null(t);
	return t->data;
}

static void
norm_rows(double *x, int n, int h, const float *g, const float *b)
{
	for (int t = 0; t < n; t++) {
		double mu = 0, var = 0;

		for (int i = 0; i < h; i++) {
			mu += x[t * h + i] / h;
		}
		for (int i = 0; i < h; i++) {
			var += (x[t * h + i] - mu) * (x[t * h + i] - mu) / h;
		}
		for (int i = 0; i < h; i++) {
			x[t * h + i] = (x[t * h + i] - mu) / sqrt(var + 1e-12) * g[i] + b[i];
		}
	}
}

/* out[t][o] = b[o] + sum_i in[t][i] W[o][i] */
static void
dense(const double *in, int n, int nin, const float *w, const float *b, int nout, double *out)
{
	for (int t = 0; t < n; t++) {
		for (int o = 0; o < nout; o++) {
			out[t * nout + o] = b[o];
			for (int i = 0; i < nin; i++) {
				out[t * nout + o] += in[t * nin + i] * w[o * nin + i];
			}
		}
	}
}

static void
tiny_expected(const int32_t *ids, int n, double *e)
{
	char path[128];
	struct bx_st_file *f;
	struct bx_errbuf eb;

	enum {
		H = 8,
		F = 16,
		D = 4
	};

	double x[16 * H], q[16 * H], k[16 * H], v[16 * H], c[16 * H], a[16 * H], u[16 * F];
	double len = 0;

	snprintf(path, sizeof(path), "%s/model.safetensors", tiny_dir);
	assert_int_equal(bx_st_open(path, 0, &f, &eb), 0);
	for (int t = 0; t < n; t++) {
		for (int i = 0; i < H; i++) {
			x[t * H + i] = T(f, "embeddings.word_embeddings.weight")[ids[t] * H + i] +
			               T(f, "embeddings.position_embeddings.weight")[t * H + i] +
			               T(f, "embeddings.token_type_embeddings.weight")[i];
		}
	}
	norm_rows(x, n, H, T(f, "embeddings.LayerNorm.weight"), T(f, "embeddings.LayerNorm.bias"));
#define L0 "encoder.layer.0."
	dense(x, n, H, T(f, L0 "attention.self.query.weight"), T(f, L0 "attention.self.query.bias"),
	      H, q);
	dense(x, n, H, T(f, L0 "attention.self.key.weight"), T(f, L0 "attention.self.key.bias"), H,
	      k);
	dense(x, n, H, T(f, L0 "attention.self.value.weight"), T(f, L0 "attention.self.value.bias"),
	      H, v);
	for (int hd = 0; hd < 2; hd++) {
		for (int i = 0; i < n; i++) {
			double w[16], z = 0;

			for (int j = 0; j < n; j++) {
				double s = 0;

				for (int d = 0; d < D; d++) {
					s += q[i * H + hd * D + d] * k[j * H + hd * D + d];
				}
				w[j] = exp(s / 2.0); /* sqrt(4) */
				z += w[j];
			}
			for (int d = 0; d < D; d++) {
				c[i * H + hd * D + d] = 0;
				for (int j = 0; j < n; j++) {
					c[i * H + hd * D + d] += w[j] / z * v[j * H + hd * D + d];
				}
			}
		}
	}
	dense(c, n, H, T(f, L0 "attention.output.dense.weight"),
	      T(f, L0 "attention.output.dense.bias"), H, a);
	for (int i = 0; i < n * H; i++) {
		x[i] += a[i];
	}
	norm_rows(x, n, H, T(f, L0 "attention.output.LayerNorm.weight"),
	          T(f, L0 "attention.output.LayerNorm.bias"));
	dense(x, n, H, T(f, L0 "intermediate.dense.weight"), T(f, L0 "intermediate.dense.bias"), F,
	      u);
	for (int i = 0; i < n * F; i++) {
		u[i] = u[i] * 0.5 * erfc(-u[i] / sqrt(2.0));
	}
	dense(u, n, F, T(f, L0 "output.dense.weight"), T(f, L0 "output.dense.bias"), H, a);
	for (int i = 0; i < n * H; i++) {
		x[i] += a[i];
	}
	norm_rows(x, n, H, T(f, L0 "output.LayerNorm.weight"), T(f, L0 "output.LayerNorm.bias"));
#undef L0
	for (int i = 0; i < H; i++) {
		e[i] = 0;
		for (int t = 0; t < n; t++) {
			e[i] += x[t * H + i] / n;
		}
		len += e[i] * e[i];
	}
	for (int i = 0; i < H; i++) {
		e[i] /= sqrt(len);
	}
	bx_st_close(f);
}

static double
cosine(const float *a, const float *b, unsigned n)
{
	double ab = 0, aa = 0, bb = 0;

	for (unsigned i = 0; i < n; i++) {
		ab += (double)a[i] * b[i];
		aa += (double)a[i] * a[i];
		bb += (double)b[i] * b[i];
	}
	return ab / sqrt(aa * bb);
}

static double
norm(const float *a, unsigned n)
{
	double s = 0;

	for (unsigned i = 0; i < n; i++) {
		s += (double)a[i] * a[i];
	}
	return sqrt(s);
}

static void
test_tiny_reference(void **state)
{
	struct bx_embed_opts o = { .reference = true };
	struct bx_embed_model *m, *md;
	struct bx_embed_ctx *ctx, *cd;
	static const int32_t ids[] = { 2, 4, 5, 6, 9, 7, 8, 1, 3 };
	const int32_t *p = ids;
	unsigned n = BX_ARRAY_SIZE(ids);
	struct bx_errbuf eb;
	float got[8], dn[8];
	double want[8];

	assert_int_equal(bx_embed_model_load(tiny_dir, &o, &m, &eb), 0);
	assert_int_equal(bx_embed_dim(m), 8);
	assert_true(bx_embed_model_is_synthetic(m));
	assert_int_equal(bx_embed_ctx_create(m, 1, &ctx), 0);
	assert_int_equal(bx_embed_batch_ids(ctx, &p, &n, 1, got), 0);
	tiny_expected(ids, (int)n, want);
	for (int i = 0; i < 8; i++) {
		assert_float_equal(got[i], want[i], 1e-5);
	}
	/* tokenizer + reference end to end: "ab c" -> [CLS] ab [UNK] [SEP]; "abc" -> ab ##c */
	{
		const char *texts[] = { "AbC D  e", "g" };
		size_t lens[] = { 8, 1 };
		static const int32_t t0[] = { 2, 4, 5, 6, 7, 3 };
		float two[16];

		assert_int_equal(bx_embed_batch(ctx, texts, lens, 2, two), 0);
		tiny_expected(t0, 6, want);
		for (int i = 0; i < 8; i++) {
			assert_float_equal(two[i], want[i], 1e-5);
		}
	}
	/* oneDNN bf16 agrees on the tiny model too */
	assert_int_equal(bx_embed_model_load(tiny_dir, NULL, &md, &eb), 0);
	assert_int_equal(bx_embed_ctx_create(md, 1, &cd), 0);
	assert_int_equal(bx_embed_batch_ids(cd, &p, &n, 1, dn), 0);
	assert_true(cosine(dn, got, 8) > 0.999);
	bx_embed_ctx_destroy(cd);
	bx_embed_model_destroy(md);
	bx_embed_ctx_destroy(ctx);
	bx_embed_model_destroy(m);
}

static int
load_tiny(void *arg, void **obj)
{
	struct bx_errbuf eb;

	return bx_embed_model_load(tiny_dir, arg, (struct bx_embed_model **)obj, &eb);
}

static void
destroy_model(void *obj)
{
	bx_embed_model_destroy(obj);
}

static int
make_ctx(void *arg, void **obj)
{
	return bx_embed_ctx_create(arg, 1, (struct bx_embed_ctx **)obj);
}

static void
destroy_ctx(void *obj)
{
	bx_embed_ctx_destroy(obj);
}

/* Every allocation failure while loading or making a context is -ENOMEM, never a crash. */
static void
test_alloc_failures(void **state)
{
	struct bx_embed_opts ro = { .reference = true };
	struct bx_embed_model *m;
	struct bx_errbuf eb;

	bx_test_alloc_walk(load_tiny, destroy_model, NULL);
	bx_test_alloc_walk(load_tiny, destroy_model, &ro);
	assert_int_equal(bx_embed_model_load(tiny_dir, NULL, &m, &eb), 0);
	bx_test_alloc_walk(make_ctx, destroy_ctx, m);
	bx_embed_model_destroy(m);
}

/* The AVX-512 softmax kernel against a double-precision softmax, every row length 1..300. */
static void
test_softmax_kernel(void **state)
{
	static float s[300], keep[300];
	static uint16_t p[300];
	unsigned seed = 5;

	if (!bx_embed_softmax_fast_ok()) {
		skip();
	}
	for (unsigned L = 1; L <= 300; L++) {
		double mx = -1e30, sum = 0;

		for (unsigned i = 0; i < L; i++) {
			seed = seed * 1103515245u + 12345u;
			keep[i] = s[i] = (float)((seed >> 8) % 20000) / 400.0f - 25.0f;
			mx = keep[i] > mx ? keep[i] : mx;
		}
		bx_embed_softmax_bf16(s, p, 1, L);
		for (unsigned i = 0; i < L; i++) {
			sum += exp(keep[i] - mx);
		}
		for (unsigned i = 0; i < L; i++) {
			double want = exp(keep[i] - mx) / sum;
			uint32_t u = (uint32_t)p[i] << 16;
			float got;

			memcpy(&got, &u, 4);
			if (want > 1e-30 && fabs(got - want) > want / 256 + 1e-37) {
				fail_msg("L %u, element %u: %g, expected %g", L, i, got, want);
			}
		}
	}
}

/* ---------------------------------------------------------------- */
/* Full shape: oneDNN bf16 against the reference */

static const char *const sentences[] = {
	"Hello, world!",
	"The quick brown fox jumps over the lazy dog.",
	"A",
	"Embeddings map sentences to vectors; similar meanings land close together.",
	"東京タワーは高い。 Café déjà vu 🍕",
	"In 1905, Albert Einstein published four papers that changed physics: the photoelectric "
	"effect, Brownian motion, special relativity and mass-energy equivalence. Each of them "
	"would have been enough for a Nobel prize, and together they opened the door to quantum "
	"mechanics and to a new understanding of space and time, which physicists still explore "
	"today with experiments of ever greater precision and ambition.",
};
#define NB_SENT BX_ARRAY_SIZE(sentences)

static void
embed_texts(struct bx_embed_ctx *ctx, const char *const *t, unsigned n, float *out)
{
	size_t lens[16];

	for (unsigned i = 0; i < n; i++) {
		lens[i] = strlen(t[i]);
	}
	assert_int_equal(bx_embed_batch(ctx, t, lens, n, out), 0);
}

static void
test_full_bf16_vs_reference(void **state)
{
	struct bx_embed_opts ro = { .reference = true };
	struct bx_embed_model *mr, *md;
	struct bx_embed_ctx *cr, *cd;
	static float ref[NB_SENT][384], dn[NB_SENT][384], one[384];
	struct bx_errbuf eb;

	assert_int_equal(bx_embed_model_load(full_dir, &ro, &mr, &eb), 0);
	assert_int_equal(bx_embed_model_load(full_dir, NULL, &md, &eb), 0);
	assert_int_equal(bx_embed_dim(md), 384);
	assert_int_equal(bx_embed_max_tokens(md), 256);
	assert_true(bx_embed_model_is_synthetic(md));
	assert_int_equal(bx_embed_ctx_create(mr, 1, &cr), 0);
	assert_int_equal(bx_embed_ctx_create(md, 1, &cd), 0);
	embed_texts(cr, sentences, NB_SENT, ref[0]);
	embed_texts(cd, sentences, NB_SENT, dn[0]);
	for (unsigned i = 0; i < NB_SENT; i++) {
		double c = cosine(ref[i], dn[i], 384);

		print_message("sentence %u: cosine(bf16, f32 reference) = %.6f\n", i, c);
		assert_true(c >= 0.999);
		assert_float_equal(norm(ref[i], 384), 1.0, 1e-5);
		assert_float_equal(norm(dn[i], 384), 1.0, 1e-5);
		/* alone == inside the mixed-length batch */
		embed_texts(cd, &sentences[i], 1, one);
		assert_true(cosine(one, dn[i], 384) >= 0.99999);
		for (unsigned k = 0; k < 384; k++) {
			assert_float_equal(one[k], dn[i][k], 2e-3);
		}
	}
	/* different texts give different vectors */
	assert_true(cosine(dn[0], dn[1], 384) < 0.99);
	bx_embed_ctx_destroy(cd);
	bx_embed_ctx_destroy(cr);
	bx_embed_model_destroy(mr);
	bx_embed_model_destroy(md);
}

/* Runs of equal-length sequences share attention calls: each must still match its lone run. */
static void
test_grouped_attention(void **state)
{
	static const unsigned len[] = { 16, 9, 80, 5 }, count[] = { 21, 11, 7, 3 };
	static int32_t ids[42][80];
	static float alone[42][384], out[42][384];
	const int32_t *ptr[42];
	unsigned lens[42], n = 0, seed = 1;
	struct bx_embed_model *m;
	struct bx_embed_ctx *ctx;
	struct bx_errbuf eb;

	assert_int_equal(bx_embed_model_load(full_dir, NULL, &m, &eb), 0);
	assert_int_equal(bx_embed_ctx_create(m, 1, &ctx), 0);
	for (unsigned i = 0; i < 4; i++) {
		for (unsigned k = 0; k < count[i]; k++, n++) {
			for (unsigned t = 0; t < len[i]; t++) {
				seed = seed * 1103515245u + 12345u;
				ids[n][t] = 1000 + (int32_t)((seed >> 8) % 28000);
			}
			ptr[n] = ids[n];
			lens[n] = len[i];
			assert_int_equal(bx_embed_batch_ids(ctx, &ptr[n], &lens[n], 1, alone[n]),
			                 0);
		}
	}
	/* in length blocks, then interleaved (the engine sorts by length itself) */
	for (unsigned pass = 0; pass < 2; pass++) {
		const int32_t *pp[42];
		unsigned pl[42], idx[42];

		for (unsigned i = 0; i < n; i++) {
			idx[i] = pass ? (i * 17) % n : i;
			pp[i] = ptr[idx[i]];
			pl[i] = lens[idx[i]];
		}
		assert_int_equal(bx_embed_batch_ids(ctx, pp, pl, n, out[0]), 0);
		for (unsigned i = 0; i < n; i++) {
			assert_true(cosine(out[i], alone[idx[i]], 384) >= 0.99999);
			for (unsigned d = 0; d < 384; d++) {
				assert_float_equal(out[i][d], alone[idx[i]][d], 2e-3);
			}
		}
	}
	bx_embed_ctx_destroy(ctx);
	bx_embed_model_destroy(m);
}

struct worker {
	const struct bx_embed_model *m;
	unsigned threads;
	float out[NB_SENT][384];
	int ret;
};

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	struct bx_embed_ctx *ctx;
	size_t lens[NB_SENT];

	for (unsigned i = 0; i < NB_SENT; i++) {
		lens[i] = strlen(sentences[i]);
	}
	w->ret = bx_embed_ctx_create(w->m, w->threads, &ctx);
	for (int r = 0; r < 3 && w->ret == 0; r++) {
		w->ret = bx_embed_batch(ctx, sentences, lens, NB_SENT, w->out[0]);
	}
	bx_embed_ctx_destroy(ctx);
	return NULL;
}

static void
test_workers(void **state)
{
	struct bx_embed_model *m;
	struct bx_errbuf eb;
	static struct worker w[3];
	pthread_t th[3];

	assert_int_equal(bx_embed_model_load(full_dir, NULL, &m, &eb), 0);
	for (int i = 0; i < 3; i++) {
		w[i].m = m;
		w[i].threads = i == 2 ? 2 : 1;
		assert_int_equal(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
	}
	for (int i = 0; i < 3; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(w[i].ret, 0);
	}
	for (unsigned s = 0; s < NB_SENT; s++) {
		assert_true(cosine(w[0].out[s], w[1].out[s], 384) >= 0.99999);
		assert_true(cosine(w[0].out[s], w[2].out[s], 384) >= 0.99999);
	}
	bx_embed_model_destroy(m);
}

static void
test_bad_inputs(void **state)
{
	struct bx_embed_model *m;
	struct bx_embed_ctx *ctx;
	struct bx_errbuf eb;
	int32_t ids[300] = { 101, 30522, 102 };
	const int32_t *p = ids;
	unsigned n = 3;
	float out[384];

	assert_int_equal(bx_embed_model_load(full_dir, NULL, &m, &eb), 0);
	assert_int_equal(bx_embed_ctx_create(m, 1, &ctx), 0);
	assert_int_equal(bx_embed_batch_ids(ctx, &p, &n, 1, out), -EINVAL);
	ids[1] = -1;
	assert_int_equal(bx_embed_batch_ids(ctx, &p, &n, 1, out), -EINVAL);
	ids[1] = 7592;
	n = 0;
	assert_int_equal(bx_embed_batch_ids(ctx, &p, &n, 1, out), -EINVAL);
	n = 257;
	assert_int_equal(bx_embed_batch_ids(ctx, &p, &n, 1, out), -EINVAL);
	assert_int_equal(bx_embed_ctx_create(m, 0, &ctx), -EINVAL);
	assert_int_equal(bx_embed_tokenize(m, "hello", 5, ids), 3);
	bx_embed_ctx_destroy(ctx);
	bx_embed_model_destroy(m);
}

/*
 * The real upstream header with generated data: exactly the upstream size
 * and layout, so the loader must check its sha256 (and refuse it), and with
 * the check off it must run on the upstream tensor order.
 */
static void
test_upstream_layout(void **state)
{
	char hdr_path[512], dir[64], path[128], vocab[512];
	struct bx_embed_opts o = { .no_verify = true };
	struct bx_embed_model *m = NULL;
	struct bx_embed_ctx *ctx;
	struct bx_st_file *hf;
	struct bx_errbuf eb;
	size_t hlen;
	char *hdr = bx_test_read_file(
		shared_or_skip("models/all-MiniLM-L6-v2/model.safetensors.header-only.bin",
	                       hdr_path, sizeof(hdr_path)),
		&hlen);
	uint8_t *data = calloc(1, BX_MINILM_FILE_SIZE - hlen);
	const char *text = "upstream layout";
	size_t tlen = strlen(text);
	float out[384];
	FILE *fp;

	assert_non_null(hdr);
	assert_non_null(data);
	assert_int_equal(bx_st_open(hdr_path, BX_ST_HEADER_ONLY, &hf, &eb), 0);
	for (unsigned i = 0; i < bx_st_count(hf); i++) {
		const struct bx_st_tensor *t = bx_st_get(hf, i);
		uint8_t *p = data + t->begin;

		for (uint64_t k = 0; t->dtype == BX_DT_F32 && k < (t->end - t->begin) / 4; k++) {
			float v = 0.05f * sinf((float)(k * 7 + i));

			memcpy(p + 4 * k, &v, 4);
		}
		for (uint64_t k = 0; t->dtype == BX_DT_I64 && k < (t->end - t->begin) / 8; k++) {
			int64_t v = (int64_t)k;

			memcpy(p + 8 * k, &v, 8);
		}
	}
	bx_st_close(hf);
	tmpdir(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/model.safetensors", dir);
	fp = fopen(path, "wb");
	assert_non_null(fp);
	assert_int_equal(fwrite(hdr, 1, hlen, fp), hlen);
	assert_int_equal(fwrite(data, 1, BX_MINILM_FILE_SIZE - hlen, fp),
	                 BX_MINILM_FILE_SIZE - hlen);
	assert_int_equal(fclose(fp), 0);
	snprintf(path, sizeof(path), "%s/vocab.txt", dir);
	copy_file(shared_or_skip("models/all-MiniLM-L6-v2/vocab.txt", vocab, sizeof(vocab)), path);
	assert_int_equal(bx_embed_model_load(dir, NULL, &m, &eb), -EBADMSG);
	assert_non_null(strstr(eb.msg, "has the size of the upstream"));
	assert_non_null(strstr(eb.msg, BX_MINILM_SHA256));
	assert_int_equal(bx_embed_model_load(dir, &o, &m, &eb), 0);
	assert_true(bx_embed_model_is_synthetic(m));
	assert_int_equal(bx_embed_ctx_create(m, 1, &ctx), 0);
	assert_int_equal(bx_embed_batch(ctx, &text, &tlen, 1, out), 0);
	assert_float_equal(norm(out, 384), 1.0, 1e-5);
	bx_embed_ctx_destroy(ctx);
	bx_embed_model_destroy(m);
	rm_rf(dir);
	free(data);
	free(hdr);
}

/* ---------------------------------------------------------------- */
/* Bad model files, made from the tiny model */

enum mutation {
	TRUNCATE,
	WRONG_DTYPE,
	WRONG_SHAPE,
	MISSING,
	HEADER_PAST_END,
	BAD_VOCAB,
	BAD_CONFIG
};

static void
make_bad(const char *dir, enum mutation mu)
{
	char src[128], dst[128];
	struct bx_st_file *f;
	struct bx_st_out t[64];
	struct bx_errbuf eb;
	unsigned n = 0;
	const char *victim = "encoder.layer.0.attention.self.key.weight";

	snprintf(src, sizeof(src), "%s/model.safetensors", tiny_dir);
	snprintf(dst, sizeof(dst), "%s/model.safetensors", dir);
	write_text(dir, "vocab.txt", mu == BAD_VOCAB ? "[UNK]\n[CLS]\n[SEP]\n" : tiny_vocab);
	if (mu == BAD_CONFIG) {
		write_text(dir, "config.json", "{\"hidden_size\": 16}");
	} else {
		char cs[128], cd[128];

		snprintf(cs, sizeof(cs), "%s/config.json", tiny_dir);
		snprintf(cd, sizeof(cd), "%s/config.json", dir);
		copy_file(cs, cd);
	}
	if (mu == TRUNCATE || mu == HEADER_PAST_END) {
		size_t len;
		uint8_t *buf = (uint8_t *)bx_test_read_file(src, &len);
		FILE *fp = fopen(dst, "wb");

		if (mu == HEADER_PAST_END) {
			buf[2] = 0x10; /* header length + 1 MiB */
		}
		assert_int_equal(fwrite(buf, 1, mu == TRUNCATE ? len - 100 : len, fp),
		                 mu == TRUNCATE ? len - 100 : len);
		fclose(fp);
		free(buf);
		return;
	}
	assert_int_equal(bx_st_open(src, 0, &f, &eb), 0);
	for (unsigned i = 0; i < bx_st_count(f); i++) {
		const struct bx_st_tensor *s = bx_st_get(f, i);

		if (mu == MISSING && strcmp(s->name, victim) == 0) {
			continue;
		}
		t[n] = (struct bx_st_out){
			.name = s->name, .dtype = s->dtype, .ndims = s->ndims, .data = s->data
		};
		memcpy(t[n].shape, s->shape, sizeof(s->shape));
		if (strcmp(s->name, victim) == 0 && mu == WRONG_DTYPE) {
			t[n].dtype = BX_DT_I32; /* same size */
		}
		if (strcmp(s->name, victim) == 0 && mu == WRONG_SHAPE) {
			t[n].shape[0] = 4, t[n].shape[1] = 16;
		}
		n++;
	}
	assert_int_equal(bx_st_write(dst, t, n, &eb), 0);
	bx_st_close(f);
}

static void
test_bad_model_files(void **state)
{
	static const struct {
		enum mutation mu;
		const char *msg;
	} cases[] = {
		{ TRUNCATE, "file shorter than its header says" },
		{ WRONG_DTYPE,
		  "\"encoder.layer.0.attention.self.key.weight\" has dtype I32, expected F32" },
		{ WRONG_SHAPE,
		  "\"encoder.layer.0.attention.self.key.weight\" has shape [4,16], expected "
		  "[8,8]" },
		{ MISSING, "missing tensor \"encoder.layer.0.attention.self.key.weight\"" },
		{ HEADER_PAST_END, "past the end of the file" },
		{ BAD_VOCAB, "3 tokens, but the weights have 10 rows" },
		{ BAD_CONFIG, "hidden_size does not match the weights (8)" },
	};

	for (size_t i = 0; i < BX_ARRAY_SIZE(cases); i++) {
		struct bx_embed_model *m = NULL;
		struct bx_errbuf eb;
		char dir[64];

		tmpdir(dir, sizeof(dir));
		make_bad(dir, cases[i].mu);
		assert_true(bx_embed_model_load(dir, NULL, &m, &eb) < 0);
		assert_null(m);
		if (strstr(eb.msg, cases[i].msg) == NULL) {
			fail_msg("case %zu: \"%s\" lacks \"%s\"", i, eb.msg, cases[i].msg);
		}
		rm_rf(dir);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tiny_reference),
		cmocka_unit_test(test_softmax_kernel),
		cmocka_unit_test(test_alloc_failures),
		cmocka_unit_test(test_bad_model_files),
		cmocka_unit_test(test_upstream_layout),
		cmocka_unit_test(test_bad_inputs),
		cmocka_unit_test(test_full_bf16_vs_reference),
		cmocka_unit_test(test_grouped_attention),
		cmocka_unit_test(test_workers),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
