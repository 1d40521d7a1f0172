/* Private to infer/: the embedding model's pieces shared by embed.c, embed_ref.c and embed_dnnl.c. */
#ifndef BX_INFER_EMBED_INT_H
#define BX_INFER_EMBED_INT_H

#include <bx/infer.h>

/* One encoder layer's f32 weights, borrowed from the model file. Linear weights are [out][in]. */
struct bx_embed_layer {
	const float *q_w, *q_b, *k_w, *k_b, *v_w, *v_b, *o_w, *o_b;
	const float *ln1_g, *ln1_b, *i_w, *i_b, *f_w, *f_b, *ln2_g, *ln2_b;
};

struct bx_dnnl_model;
struct bx_dnnl_ctx;

struct bx_embed_model {
	struct bx_embed_shape shape;
	float eps;
	unsigned max_tokens;
	bool reference;
	bool synthetic;
	struct bx_st_file *st;
	void *data_copy; /* aligned copy of the data section when the file's is misaligned */
	struct bx_wordpiece *vocab;
	const float *word, *pos, *type, *ln_g, *ln_b;
	struct bx_embed_layer *layers;
	struct bx_dnnl_model *dn; /* NULL with opts.reference */
};

/*
 * The plain-C f32 reference forward pass of one sequence into out[hidden]
 * (pooled and normalised). 0 or -ENOMEM.
 */
int bx_embed_ref_forward(const struct bx_embed_model *m, const int32_t *ids, unsigned len,
                         float *out);

/* oneDNN bf16 path (embed_dnnl.c). */
int bx_dnnl_model_create(const struct bx_embed_model *m, struct bx_dnnl_model **out,
                         struct bx_errbuf *eb);
void bx_dnnl_model_destroy(struct bx_dnnl_model *dm);
int bx_dnnl_ctx_create(const struct bx_embed_model *m, unsigned nb_threads,
                       struct bx_dnnl_ctx **out);
void bx_dnnl_ctx_destroy(struct bx_dnnl_ctx *dc);
int bx_dnnl_forward(struct bx_dnnl_ctx *dc, const int32_t *const *ids, const unsigned *lens,
                    unsigned n, float *out);

void bx_dnnl_profile_enable(struct bx_dnnl_ctx *dc, bool on);
void bx_dnnl_profile(const struct bx_dnnl_ctx *dc, struct bx_embed_profile *out);

/*
 * AVX-512 softmax over rows of L f32 scores into bf16 probabilities (s is
 * overwritten). Only when bx_embed_softmax_fast_ok() (embed_simd.c).
 */
bool bx_embed_softmax_fast_ok(void);
void bx_embed_softmax_bf16(float *s, uint16_t *p, size_t rows, unsigned L);

/* Shared small kernels. */
void bx_embed_layernorm(float *x, unsigned h, const float *g, const float *b, float eps);
void bx_embed_pool(const float *x, unsigned len, unsigned h, float *out);

#endif
