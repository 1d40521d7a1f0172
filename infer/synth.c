/*
 * Generated test weights: a model.safetensors with the upstream
 * all-MiniLM-L6-v2 tensor names, dtypes and shapes (for any shape), filled
 * from a seed, plus a matching config.json. Linear weights are uniform with
 * standard deviation 1/sqrt(fan_in), so activations keep unit scale through
 * the layers and attention is neither flat nor one-hot.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <bx/infer.h>

#define NB_PER_LAYER 16
#define NB_FIXED     8 /* position_ids, 5 embeddings tensors, pooler weight and bias */

static uint64_t
splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9E3779B97F4A7C15ull);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

/* Uniform in [center - half, center + half]. */
static float *
fill(uint64_t *seed, size_t n, float center, float half)
{
	float *p = bx_malloc(n * sizeof(float) + 1);

	for (size_t i = 0; p != NULL && i < n; i++) {
		double u = (double)(splitmix(seed) >> 11) / (double)(1ull << 53);

		p[i] = center + (float)((2.0 * u - 1.0) * half);
	}
	return p;
}

static void
add(struct bx_st_out *t, unsigned *n, const char *name, unsigned nd, uint64_t d0, uint64_t d1,
    const void *data)
{
	t[*n] = (struct bx_st_out){
		.name = name, .dtype = BX_DT_F32, .ndims = nd, .shape = { d0, d1 }, .data = data
	};
	(*n)++;
}

/* Linear layer: weight [out][in] and bias [out]. */
static void
add_linear(struct bx_st_out *t, unsigned *n, char *names, const char *prefix, unsigned out,
           unsigned in, uint64_t *seed)
{
	float a = sqrtf(3.0f / (float)in);

	snprintf(names, 96, "%s.weight", prefix);
	add(t, n, names, 2, out, in, fill(seed, (size_t)out * in, 0, a));
	snprintf(names + 96, 96, "%s.bias", prefix);
	add(t, n, names + 96, 1, out, 0, fill(seed, out, 0, 0.05f));
}

static void
add_norm(struct bx_st_out *t, unsigned *n, char *names, const char *prefix, unsigned h,
         uint64_t *seed)
{
	snprintf(names, 96, "%s.weight", prefix);
	add(t, n, names, 1, h, 0, fill(seed, h, 1.0f, 0.1f));
	snprintf(names + 96, 96, "%s.bias", prefix);
	add(t, n, names + 96, 1, h, 0, fill(seed, h, 0, 0.05f));
}

static void
add_layer(struct bx_st_out *t, unsigned *n, char *names, unsigned l, const struct bx_embed_shape *s,
          uint64_t *seed)
{
	static const char *const lin[] = { "attention.self.query", "attention.self.key",
		                           "attention.self.value", "attention.output.dense" };
	char p[96];

	for (unsigned i = 0; i < 4; i++) {
		snprintf(p, sizeof(p), "encoder.layer.%u.%s", l, lin[i]);
		add_linear(t, n, names + 2 * i * 96, p, s->hidden, s->hidden, seed);
	}
	snprintf(p, sizeof(p), "encoder.layer.%u.attention.output.LayerNorm", l);
	add_norm(t, n, names + 8 * 96, p, s->hidden, seed);
	snprintf(p, sizeof(p), "encoder.layer.%u.intermediate.dense", l);
	add_linear(t, n, names + 10 * 96, p, s->ffn, s->hidden, seed);
	snprintf(p, sizeof(p), "encoder.layer.%u.output.dense", l);
	add_linear(t, n, names + 12 * 96, p, s->hidden, s->ffn, seed);
	snprintf(p, sizeof(p), "encoder.layer.%u.output.LayerNorm", l);
	add_norm(t, n, names + 14 * 96, p, s->hidden, seed);
}

static int
write_config(const char *dir, const struct bx_embed_shape *s, struct bx_errbuf *eb)
{
	char path[PATH_MAX], text[1024];
	FILE *fp;
	int n;

	snprintf(path, sizeof(path), "%s/config.json", dir);
	fp = fopen(path, "w");
	if (fp == NULL) {
		return bx_err(eb, errno, "%s: %s", path, bx_strerror(errno));
	}
	n = snprintf(
		text, sizeof(text),
		"{\n  \"architectures\": [\"BertModel\"],\n  \"hidden_act\": \"gelu\",\n"
		"  \"hidden_size\": %u,\n  \"intermediate_size\": %u,\n"
		"  \"layer_norm_eps\": 1e-12,\n  \"max_position_embeddings\": %u,\n"
		"  \"model_type\": \"bert\",\n  \"num_attention_heads\": %u,\n"
		"  \"num_hidden_layers\": %u,\n  \"type_vocab_size\": %u,\n  \"vocab_size\": %u\n}\n",
		s->hidden, s->ffn, s->positions, s->heads, s->layers, s->types, s->vocab);
	if (fwrite(text, 1, (size_t)n, fp) != (size_t)n) {
		fclose(fp);
		return bx_err(eb, EIO, "%s: write failed", path);
	}
	if (fclose(fp) != 0) {
		return bx_err(eb, EIO, "%s: write failed", path);
	}
	return 0;
}

int
bx_embed_synth_write(const char *dir, const struct bx_embed_shape *s, uint64_t seed,
                     struct bx_errbuf *eb)
{
	unsigned cap = NB_FIXED + NB_PER_LAYER * s->layers, n = 0;
	struct bx_st_out *t = bx_calloc(cap, sizeof(*t));
	char *names = bx_calloc(cap, 96), path[PATH_MAX];
	int64_t *pos_ids = bx_calloc(s->positions ? s->positions : 1, sizeof(int64_t));
	int ret = -ENOMEM;

	if (t == NULL || names == NULL || pos_ids == NULL) {
		goto out_free;
	}
	for (unsigned i = 0; i < s->positions; i++) {
		pos_ids[i] = i;
	}
	t[n++] = (struct bx_st_out){ .name = "embeddings.position_ids",
		                     .dtype = BX_DT_I64,
		                     .ndims = 2,
		                     .shape = { 1, s->positions },
		                     .data = pos_ids };
	add(t, &n, "embeddings.word_embeddings.weight", 2, s->vocab, s->hidden,
	    fill(&seed, (size_t)s->vocab * s->hidden, 0, 0.1f));
	add(t, &n, "embeddings.position_embeddings.weight", 2, s->positions, s->hidden,
	    fill(&seed, (size_t)s->positions * s->hidden, 0, 0.1f));
	add(t, &n, "embeddings.token_type_embeddings.weight", 2, s->types, s->hidden,
	    fill(&seed, (size_t)s->types * s->hidden, 0, 0.1f));
	add_norm(t, &n, names, "embeddings.LayerNorm", s->hidden, &seed);
	for (unsigned l = 0; l < s->layers; l++) {
		add_layer(t, &n, names + (2 + (size_t)l * NB_PER_LAYER) * 96, l, s, &seed);
	}
	add_linear(t, &n, names + (2 + (size_t)s->layers * NB_PER_LAYER) * 96, "pooler.dense",
	           s->hidden, s->hidden, &seed);
	for (unsigned i = 0; i < n; i++) {
		if (t[i].data == NULL) {
			goto out_free;
		}
	}
	snprintf(path, sizeof(path), "%s/model.safetensors", dir);
	ret = bx_st_write(path, t, n, eb);
	if (ret == 0) {
		ret = write_config(dir, s, eb);
	}
out_free:
	if (ret == -ENOMEM) {
		bx_err(eb, ENOMEM, "%s: out of memory generating weights", dir);
	}
	for (unsigned i = 1; t != NULL && i < n; i++) {
		bx_free((void *)t[i].data);
	}
	bx_free(pos_ids);
	bx_free(names);
	bx_free(t);
	return ret;
}
