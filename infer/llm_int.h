/*
 * Private parts of the Llama-family generation engine (llm_*.c): the model
 * in memory, the vocabulary, the kernels and the two forward paths.
 */
#ifndef BX_LLM_INT_H
#define BX_LLM_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <bx/infer.h>

#define LLM_QK           32 /* values per Q8_0/Q4_0/Q4_1 block */
#define LLM_DIM_MAX      16384
#define LLM_LAYERS_MAX   512
#define LLM_VOCAB_MAX    (1u << 20)
#define LLM_SEQ_MAX      (1u << 20)
#define LLM_STOPS_MAX    8
#define LLM_STOP_LEN_MAX 64
#define LLM_RECENT_MAX   256

/* One matrix or vector: rows x cols, cols contiguous (GGUF dims[0]). */
struct llm_tensor {
	const void *data;
	enum bx_llm_type type;
	uint32_t rows, cols;
	const uint16_t *bf16; /* [rows][cols rounded up to 32], from bx_llm_model_pack_bf16 */
	const uint8_t *i8x16; /* rows interleaved by 16, from bx_llm_model_pack_i8 */
	const struct llm_dnnl_w *dnnl; /* packed for oneDNN, from bx_llm_model_pack_dnnl */
};

struct llm_layer {
	const float *attn_norm, *ffn_norm; /* [dim] */
	struct llm_tensor wq;              /* [n_heads*head_dim, dim] */
	struct llm_tensor wk, wv;          /* [n_kv_heads*head_dim, dim] */
	struct llm_tensor wo;              /* [dim, n_heads*head_dim] */
	struct llm_tensor w1, w3;          /* gate, up: [hidden, dim] */
	struct llm_tensor w2;              /* down: [dim, hidden] */
};

/* Token types, as GGUF tokenizer.ggml.token_type. */
enum llm_tok_type {
	LLM_TOK_NORMAL = 1,
	LLM_TOK_UNKNOWN = 2,
	LLM_TOK_CONTROL = 3,
	LLM_TOK_USER = 4,
	LLM_TOK_UNUSED = 5,
	LLM_TOK_BYTE = 6,
};

struct llm_vocab {
	uint32_t n;
	char *text;        /* all pieces, each NUL-terminated, spaces not U+2581 */
	uint32_t *off;     /* [n] piece i at text + off[i] */
	uint16_t *len;     /* [n] */
	float *score;      /* [n] */
	uint8_t *type;     /* [n] enum llm_tok_type */
	int32_t *hash;     /* open addressing, nb_hash slots, -1 empty */
	uint32_t nb_hash;  /* power of two */
	int32_t byte[256]; /* id of <0xXX>, or -1 */
	int32_t bos, eos, unk;
	uint32_t len_max;
	/* byte-level BPE (gpt2): pieces are raw bytes; merges (a, b) -> rank, id */
	bool bpe, pre_llama3;
	uint64_t *mkey; /* (a << 32 | b), UINT64_MAX empty */
	uint64_t *mval; /* (rank << 32 | id) */
	uint32_t nb_mhash;
};

struct bx_llm_model {
	struct bx_llm_config cfg;
	struct llm_layer *layers;
	struct llm_tensor embd; /* [vocab, dim] */
	struct llm_tensor out;  /* [vocab, dim]; embd when tied */
	const float *out_norm;  /* [dim] */
	float *norms;           /* owned f32 copies of the norm vectors */
	struct llm_vocab vocab; /* n == 0: no tokenizer */
	void *map;              /* file mapping, or NULL */
	size_t map_len;
	void *blob;                  /* owned weights (synthetic models), or NULL */
	uint16_t *bf16s;             /* owned bf16 copies of the matrices, or NULL */
	uint8_t *i8s;                /* owned row-interleaved int8 copies, or NULL */
	struct llm_dnnl_model *dnnl; /* owned oneDNN copies, or NULL */
	unsigned dnnl_min_batch;     /* steps of this many tokens or more run on them */
	char origin[16];
};

/* ---- llm_quant.c ---- */
float llm_f16_to_f32(uint16_t h);
uint16_t llm_f32_to_f16(float f);
float llm_bf16_to_f32(uint16_t h);
bool llm_type_known(enum bx_llm_type type);
/* Q4_K and Q6_K (llm_kquant.c): 256-value super-blocks, read by dequantization. */
size_t llm_kquant_row_bytes(enum bx_llm_type type, size_t n);
void llm_kquant_dequantize(enum bx_llm_type type, const void *in, size_t n, float *out);
void llm_kquant_quantize(enum bx_llm_type type, const float *x, size_t n, void *out);
/* Synthetic models: K blocks of random bytes get f16 scales for entries of about std. */
void llm_kquant_synth_scales(enum bx_llm_type type, uint8_t *blocks, size_t bytes, float std);
/*
 * Packed activations (llm_pack_act), per 16 blocks of 32 values:
 * i8 qs[512] | f32 d[16] | f32 d * sum(qs)[16].
 */
#define LLM_ACT_GROUP       16
#define LLM_ACT_GROUP_BYTES ((size_t)LLM_ACT_GROUP * (LLM_QK + 8))
struct llm_q8a;
/* Plain-C dot of a Q4_K/Q6_K row of n values with activation blocks (the yardstick). */
float llm_kquant_dot_ref(enum bx_llm_type type, const void *row, const struct llm_q8a *qa,
                         size_t n);
/* The same on a packed activation: AVX-512 VNNI when llm_have_avx512(), else plain C. */
float llm_kquant_dot(enum bx_llm_type type, const void *row, const uint8_t *act, size_t n);
/* The plain-C fallback of llm_kquant_dot (exposed for the tests). */
float llm_kquant_dot_c(enum bx_llm_type type, const void *row, const uint8_t *act, size_t n);
/* out[i] = row . activation i (act_stride apart), na <= 4: the row unpacked once. */
void llm_kquant_dot_n(enum bx_llm_type type, const void *row, const uint8_t *act, size_t act_stride,
                      unsigned na, size_t n, float *out);
/*
 * false: Q4_K/Q6_K matrices take the old path (rows dequantized to f32 256
 * values at a time, f32 dots), for bench_kquant's before/after figures.
 */
extern bool llm_kquant_kernels;
/* Dequantize row r of t into out[t->cols]. */
void llm_row_f32(const struct llm_tensor *t, uint32_t r, float *out);

/* Activations quantized for the block kernels: Q8_0 with the block's sum. */
struct llm_q8a {
	float d;
	int32_t s; /* sum of qs */
	int8_t qs[LLM_QK];
};

void llm_quantize_act(const float *x, size_t n, struct llm_q8a *out);
bool llm_have_avx512(void);
/* Activations packed for the decode kernels (Q8_0 per block, 16-block groups). */
size_t llm_act_bytes(size_t n);
void llm_pack_act(const float *x, size_t n, uint8_t *out);
/*
 * out[b * out_stride + r] = row r of w . activation b, for rows [r0, r1) and
 * nb activations: x (f32, rows of w->cols) for F32/F16/BF16 weights, act
 * (llm_act_bytes(w->cols) apart) for block types (Q8_0, Q4_0, Q4_1, Q4_K,
 * Q6_K); for Q4_K/Q6_K act may be NULL, x is then packed on each call.
 */
void llm_matmul_rows(const struct llm_tensor *w, uint32_t r0, uint32_t r1, const float *x,
                     const uint8_t *act, unsigned nb, float *out, size_t out_stride);
/* The same for a block matrix from act alone. */
void llm_matmul_rows_packed(const struct llm_tensor *w, uint32_t r0, uint32_t r1,
                            const uint8_t *act, unsigned nb, float *out, size_t out_stride);
/*
 * Batched steps on row-interleaved int8 copies of block matrices: per 16
 * rows and block, f32 d[16] | f32 m[16] | u8 q[8][16][4] (x = d * q + m), so
 * one vpdpbusd with a broadcast activation word feeds 16 rows at once.
 */
#define LLM_I8_MIN_BATCH 4
#define LLM_I8_GROUP     640
size_t llm_i8x16_bytes(const struct llm_tensor *t);
void llm_pack_i8x16(const struct llm_tensor *t, uint8_t *out);
uint32_t llm_matmul_i8_rows(const struct llm_tensor *w, uint32_t r0, uint32_t r1,
                            const uint8_t *act, unsigned nb, float *out, size_t stride);
/* Batched steps on bf16 copies (AVX512-BF16): from this many tokens a step. */
#define LLM_BF16_MIN_BATCH 8
bool llm_have_bf16(void);
size_t llm_bf16_cols(size_t n);
void llm_to_bf16(const float *x, size_t n, uint16_t *out); /* zero-padded to llm_bf16_cols */
void llm_matmul_bf16_rows(const struct llm_tensor *w, uint32_t r0, uint32_t r1, const uint16_t *x,
                          unsigned nb, float *out, size_t out_stride);
/* Plain-C dot of one block row with activation blocks (the yardstick for the kernels). */
float llm_dot_ref(enum bx_llm_type type, const void *row, const struct llm_q8a *qa, size_t n);
/* The kernels' dot of one block row with a packed activation. */
float llm_dot_fast(enum bx_llm_type type, const void *row, const uint8_t *act, size_t n);

/*
 * ---- llm_dnnl.c ---- oneDNN matmuls for prefill chunks and batched steps,
 * on copies packed at load (bx_llm_model_pack_dnnl): int8 per output row for
 * block types (u8 x s8 AMX/VNNI, activations quantized per token), bf16 for
 * F16/BF16, f32 for F32.
 */
#define LLM_DNNL_MIN_BATCH 2   /* one token: the block kernels read fewer bytes */
#define LLM_DNNL_ROWS_MAX  256 /* longer steps run in pieces of this many tokens */
struct llm_dnnl_w;
struct llm_dnnl_model;
struct llm_dnnl_ctx;
void llm_dnnl_model_free(struct llm_dnnl_model *dm);
/* Bytes the copies take (packed weights, scales, column sums). */
size_t llm_dnnl_model_bytes(const struct llm_dnnl_model *dm);
/* A worker's primitives and buffers for steps of up to max_batch tokens; sets the thread's OMP count. */
int llm_dnnl_ctx_create(const struct bx_llm_model *m, unsigned max_batch, unsigned nb_threads,
                        struct llm_dnnl_ctx **out);
void llm_dnnl_ctx_destroy(struct llm_dnnl_ctx *dc);
/*
 * outs[i] [nb][ws[i]->rows] = ws[i] x[b] for nb tokens of x [nb][cols]
 * (Q|K|V and gate|up as packed together, or one matrix): 0, or -ENOTSUP (a
 * matrix not packed or not with its group, no good kernel for this nb,
 * called inside an OpenMP parallel region: nothing written) or -ENOMEM.
 */
int llm_dnnl_matmul(struct llm_dnnl_ctx *dc, const struct llm_tensor *const *ws, float *const *outs,
                    unsigned nw, const float *x, unsigned nb);
/* The implementation oneDNN runs for t at nb tokens (creating it), or NULL if none. */
const char *llm_dnnl_impl(struct llm_dnnl_ctx *dc, const struct llm_tensor *t, unsigned nb);

/* ---- llm_model.c ---- */
int llm_model_alloc(struct bx_llm_model **out);
/* A new model with `path` mapped into m->map; on error nothing is left behind. */
int llm_model_open(const char *path, struct bx_llm_model **out, struct bx_errbuf *eb);
void llm_hugepages(void *p, size_t len);
int llm_config_check(const struct bx_llm_config *c, const char *name, struct bx_errbuf *eb);
int llm_model_finish(struct bx_llm_model *m, const char *name, struct bx_errbuf *eb);
int llm_map_file(const char *path, void **map, size_t *len, struct bx_errbuf *eb);
int llm_tokenizer_only(const char *tok_path, uint32_t vocab_size, struct bx_llm_model **out,
                       struct bx_errbuf *eb);

/* ---- llm_tok.c ---- */
int llm_vocab_alloc(struct llm_vocab *v, uint32_t n, size_t text_bytes);
/* Append piece i (bytes p[0..len)), converting U+2581 to space when spm. */
int llm_vocab_set(struct llm_vocab *v, uint32_t i, const char *p, size_t len, float score, int type,
                  size_t *text_used);
int llm_vocab_index(struct llm_vocab *v, const char *name, struct bx_errbuf *eb);
void llm_vocab_free(struct llm_vocab *v);
int32_t llm_vocab_find(const struct llm_vocab *v, const char *p, size_t len);

/* ---- llm_bpe.c, llm_unicode.c ---- */
struct llm_uc_range {
	uint32_t lo, hi;
	uint8_t cls; /* 1 letter, 2 number, 3 white space */
};
extern const struct llm_uc_range llm_uc_ranges[];
extern const unsigned llm_uc_nb_ranges;
size_t llm_bpe_unmap(const char *in, size_t len, char *out);
int llm_bpe_merges_alloc(struct llm_vocab *v, uint64_t n);
void llm_bpe_merge_add(struct llm_vocab *v, int32_t a, int32_t b, int32_t id, uint32_t rank);
/* Length of the pre-token at byte i of text (the regex's next match). */
size_t llm_bpe_pretok(const struct llm_vocab *v, const char *text, size_t len, size_t i);
size_t llm_bpe_encode(const struct llm_vocab *v, const char *text, size_t len, int32_t *ids,
                      size_t k0);

/* ---- llm_ref.c / llm_forward.c ---- */
struct llm_kv {
	float *k, *v; /* [n_layers][ctx_len][n_kv_heads*head_dim] */
	uint32_t ctx_len;
};

void llm_rope(const struct bx_llm_config *c, float *v, uint32_t nb_heads, uint32_t pos);
/* llm_attn.c: one head of one token at pos: out[hd] = softmax(q K^T / sqrt(hd)) V; att[pos+1]. */
void llm_attend_head(const struct bx_llm_config *c, const struct llm_kv *kv, uint32_t l,
                     uint32_t pos, uint32_t h, const float *q, float *out, float *att);
/* Reference: one token at pos, logits[vocab]; scratch of llm_ref_scratch_floats(). */
size_t llm_ref_scratch_floats(const struct bx_llm_config *c);
void llm_ref_forward(const struct bx_llm_model *m, struct llm_kv *kv, int32_t tok, uint32_t pos,
                     float *scratch, float *logits);

/* The inputs of a layer's linear maps (Q/K/V, output, gate/up, down), for calibration. */
enum llm_tap {
	LLM_TAP_ATTN,
	LLM_TAP_WO,
	LLM_TAP_FFN,
	LLM_TAP_DOWN,
	LLM_TAP_N
};

typedef void llm_tap_fn(void *arg, uint32_t layer, enum llm_tap which, const float *x, uint32_t n);
void llm_ref_forward_tap(const struct bx_llm_model *m, struct llm_kv *kv, int32_t tok, uint32_t pos,
                         float *scratch, float *logits, llm_tap_fn *tap, void *arg);

/*
 * ---- llm_gptq.c ---- GPTQ for the block types: the second moments of each
 * linear map's input over calibration tokens (the model's own samples),
 * then rows quantized one column at a time with the error spread over the
 * columns not yet quantized.
 */
struct llm_calib;
int llm_calib_run(const struct bx_llm_model *m, unsigned tokens, uint64_t seed,
                  struct llm_calib **out, struct bx_errbuf *eb);
void llm_calib_free(struct llm_calib *c);
/* t's rows as `type` blocks into out (rows x row bytes): 0, -ENOENT (not a layer matrix), -ENOMEM. */
int llm_gptq(struct llm_calib *c, const struct bx_llm_model *m, const struct llm_tensor *t,
             enum bx_llm_type type, uint8_t *out);

struct llm_fwd;
int llm_fwd_create(const struct bx_llm_model *m, unsigned max_batch, unsigned nb_threads,
                   struct llm_fwd **out);
void llm_fwd_destroy(struct llm_fwd *f);
/*
 * Batched forward of nb tokens, token i of KV cache kvs[i] at pos[i]
 * (several tokens may share one cache: a prefill chunk, in order). Logits of
 * the k-th token with want[i] set go to logits[k * vocab].
 */
void llm_fwd_run(struct llm_fwd *f, struct llm_kv *const *kvs, const int32_t *toks,
                 const uint32_t *pos, const bool *want, unsigned nb, float *logits);

#endif
