/*
 * bx infer: model files, tokenizers and the text-embedding engine
 * (all-MiniLM-L6-v2, BERT encoder) on oneDNN 2.6.
 *
 * Parts, in the order a request uses them:
 *  - safetensors reader (bx_st_*): mmap a file, validate its header fully.
 *  - BERT uncased WordPiece tokenizer (bx_wordpiece_*).
 *  - embedding model (bx_embed_model_*) loaded once per process, shared
 *    read-only by every worker, and one context (bx_embed_ctx_*) per worker
 *    thread that owns the oneDNN primitives, scratchpad and activations.
 *
 * Threading and ownership:
 *  - A loaded struct bx_embed_model is immutable: any number of threads may
 *    use it at once (tokenize, create contexts). Destroy it after every
 *    context made from it.
 *  - A struct bx_embed_ctx belongs to ONE thread: create it on the worker
 *    thread that will run it, and call bx_embed_* with it only from that
 *    thread. Creating it fixes that thread's OpenMP team size
 *    (omp_set_num_threads(nb_threads)), because oneDNN primitives are tied
 *    to the thread count they were created with (research inference.md §2).
 *  - Pointer parameters are borrowed unless the comment says otherwise.
 *
 * Entry point for the scheduler: tokenize on any thread with
 * bx_embed_tokenize() (its length is the request's token cost for batching
 * under a token budget), then run a batch of token sequences on a worker
 * with bx_embed_batch_ids(). bx_embed_batch() does both for plain texts.
 */
#ifndef BX_INFER_H
#define BX_INFER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <bx/platform.h>

/* ======================= safetensors ======================= */

enum bx_dtype {
	BX_DT_F32,
	BX_DT_F16,
	BX_DT_BF16,
	BX_DT_F64,
	BX_DT_I64,
	BX_DT_I32,
	BX_DT_I16,
	BX_DT_I8,
	BX_DT_U8,
	BX_DT_BOOL,
};

#define BX_ST_NDIMS_MAX  8
#define BX_ST_HEADER_MAX (100u << 20) /* the reference implementation's cap */

struct bx_st_tensor {
	const char *name; /* NUL-terminated, owned by the file */
	enum bx_dtype dtype;
	unsigned ndims;
	uint64_t shape[BX_ST_NDIMS_MAX];
	uint64_t begin, end; /* data_offsets, relative to the data section */
	const void *data;    /* into the mapping; NULL when opened header-only */
};

struct bx_st_file;

enum bx_st_flags {
	/*
	 * Parse and validate the header but do not require the data section
	 * to be present (for headers cut out of a file). data stays NULL.
	 */
	BX_ST_HEADER_ONLY = 1,
};

/*
 * Map and validate a safetensors file: the header length against the file,
 * the JSON, every dtype, shape and data_offsets pair (size = product of the
 * shape x dtype size, inside the data section, no overlaps, no holes, no
 * trailing bytes), no duplicate names. "__metadata__" must be a string map.
 * On error returns -EINVAL/-EBADMSG/-ENOENT/-ENOMEM with a message in eb
 * naming the file and the first problem; a file never crashes the reader.
 * Returned-owned: bx_st_close().
 */
int bx_st_open(const char *path, unsigned flags, struct bx_st_file **out, struct bx_errbuf *eb);
/* The same checks on a buffer (borrowed; it must outlive the result). */
int bx_st_open_mem(const void *buf, size_t len, const char *name, unsigned flags,
                   struct bx_st_file **out, struct bx_errbuf *eb);
void bx_st_close(struct bx_st_file *f);

/* Tensors in header order. */
unsigned bx_st_count(const struct bx_st_file *f);
const struct bx_st_tensor *bx_st_get(const struct bx_st_file *f, unsigned i);
/* By name, or NULL. */
const struct bx_st_tensor *bx_st_find(const struct bx_st_file *f, const char *name);
const char *bx_st_path(const struct bx_st_file *f);
/* "F32", "BF16", ... */
const char *bx_dtype_name(enum bx_dtype dt);
size_t bx_dtype_size(enum bx_dtype dt);

/*
 * A writer for tests and tools: tensors are laid out in the order given,
 * the header is padded with spaces to a multiple of 8 bytes. data[i] holds
 * bx_dtype_size x product(shape) bytes. Returns 0 or -errno with eb set.
 */
struct bx_st_out {
	const char *name;
	enum bx_dtype dtype;
	unsigned ndims;
	uint64_t shape[BX_ST_NDIMS_MAX];
	const void *data;
};

int bx_st_write(const char *path, const struct bx_st_out *t, unsigned n, struct bx_errbuf *eb);

/* ======================= WordPiece tokenizer ======================= */

#define BX_WP_ID_PAD         0
#define BX_WP_MAX_WORD_CHARS 100 /* longer words become [UNK] */

struct bx_wordpiece;

/*
 * Load a BERT vocab.txt (one token per line, id = line number). It must
 * hold [UNK], [CLS] and [SEP]. Returned-owned: bx_wordpiece_destroy().
 */
int bx_wordpiece_load(const char *path, struct bx_wordpiece **out, struct bx_errbuf *eb);
int bx_wordpiece_load_mem(const char *text, size_t len, const char *name, struct bx_wordpiece **out,
                          struct bx_errbuf *eb);
void bx_wordpiece_destroy(struct bx_wordpiece *wp);

enum bx_wp_flags {
	BX_WP_SPECIALS = 1, /* [CLS] pieces... [SEP] */
};

/*
 * Tokenize text[0..len) (UTF-8; NUL bytes are dropped like other control
 * characters) as BERT's uncased BasicTokenizer + WordPiece do: clean, space
 * around CJK ideographs, split on whitespace, lowercase, strip accents (NFD,
 * drop Mn), split on punctuation, then greedy longest-match WordPiece.
 * Invalid UTF-8: each byte that does not start a valid sequence decodes as
 * U+FFFD, which cleaning drops (as BERT does for U+FFFD), so it never fails.
 * Writes at most max_ids ids (with BX_WP_SPECIALS, [CLS] and [SEP] are
 * always written and the pieces are cut to max_ids - 2; max_ids must be
 * >= 2). Returns the number of ids written, or -EINVAL. *truncated (may be
 * NULL) says whether pieces were cut. Thread-safe (wp is read-only).
 */
int bx_wordpiece_encode(const struct bx_wordpiece *wp, const char *text, size_t len, unsigned flags,
                        int32_t *ids, unsigned max_ids, bool *truncated);
/* Id of a token, or -ENOENT. */
int bx_wordpiece_id(const struct bx_wordpiece *wp, const char *tok, size_t len);
unsigned bx_wordpiece_size(const struct bx_wordpiece *wp);
/* The token text of an id (NUL-terminated), or NULL. */
const char *bx_wordpiece_token(const struct bx_wordpiece *wp, unsigned id);

/* ======================= Embedding model ======================= */

/* The upstream all-MiniLM-L6-v2 model.safetensors (sentence-transformers). */
#define BX_MINILM_FILE_SIZE 90868376ull
#define BX_MINILM_SHA256    "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
#define BX_EMBED_MAX_TOKENS 256 /* sentence_bert_config.json max_seq_length */

struct bx_embed_opts {
	/* Pieces per text including [CLS]/[SEP]; 0 = 256 (or the model's positions if fewer). */
	unsigned max_tokens;
	/* Run the plain-C f32 reference forward pass instead of oneDNN bf16 (debugging). */
	bool reference;
	/* Skip the sha256 check of a file with the upstream size (tests only). */
	bool no_verify;
	/* Paths overriding <model_dir>/model.safetensors and <model_dir>/vocab.txt. */
	const char *weights_path;
	const char *vocab_path;
};

struct bx_embed_model;
struct bx_embed_ctx;

/*
 * Load <model_dir>/model.safetensors, vocab.txt and (optional) config.json.
 * The architecture (layers, hidden, FFN, vocab, positions) comes from the
 * tensor shapes, checked against config.json when present; heads and the
 * LayerNorm epsilon come from config.json (default 12 and 1e-12). A file of
 * the upstream size must have the upstream sha256. Every tensor the forward
 * pass reads must be present with dtype F32 and the right shape; unknown
 * keys (embeddings.position_ids, pooler.*) are skipped. Unless
 * opts->reference, the weights are converted to bf16 and packed once into
 * the layouts oneDNN picks. opts may be NULL. Returned-owned.
 */
int bx_embed_model_load(const char *model_dir, const struct bx_embed_opts *opts,
                        struct bx_embed_model **out, struct bx_errbuf *eb);
void bx_embed_model_destroy(struct bx_embed_model *m);

unsigned bx_embed_dim(const struct bx_embed_model *m);
unsigned bx_embed_max_tokens(const struct bx_embed_model *m);
/* True unless the weights file is byte-identical to the upstream release (by sha256). */
bool bx_embed_model_is_synthetic(const struct bx_embed_model *m);
const struct bx_wordpiece *bx_embed_vocab(const struct bx_embed_model *m);

/*
 * Tokenize one text for this model: [CLS] pieces [SEP], truncated to
 * bx_embed_max_tokens(). ids holds at least that many. Returns the count.
 */
int bx_embed_tokenize(const struct bx_embed_model *m, const char *text, size_t len, int32_t *ids);

/*
 * A per-worker context: call on the worker thread that will use it (after
 * pinning it). nb_threads is that worker's OpenMP team size (>= 1), fixed
 * for the life of the context; on a shared or busy machine one thread per
 * worker and one worker per core is the robust choice. Creating it builds
 * the linear-layer primitives for every batch size (the first context per
 * thread count in a process takes ~0.3 s to JIT, later ones hit oneDNN's
 * primitive cache). Returns 0, -EINVAL, -ENOMEM or -ENOTSUP (oneDNN has no
 * kernel for this CPU). Returned-owned; destroy on the same thread.
 */
int bx_embed_ctx_create(const struct bx_embed_model *m, unsigned nb_threads,
                        struct bx_embed_ctx **out);
void bx_embed_ctx_destroy(struct bx_embed_ctx *ctx);

/*
 * Embed n token sequences (ids[i][0..lens[i]), each 1..max_tokens ids
 * below the vocabulary size, normally from bx_embed_tokenize()) into
 * out[n x dim], L2-normalised. Sequences are not padded: the linear layers
 * run on all tokens at once and attention runs per sequence (runs of
 * equal-length sequences share one call). The first batch with a new
 * sequence length creates that length's attention primitives (~0.1 ms), and
 * activation buffers grow to the largest batch seen; nothing else is
 * allocated. Returns 0, -EINVAL for a bad id or length, -ENOMEM, or
 * -ENOTSUP/-EINVAL if oneDNN refuses a primitive.
 */
int bx_embed_batch_ids(struct bx_embed_ctx *ctx, const int32_t *const *ids, const unsigned *lens,
                       unsigned n, float *out);

/*
 * Optional per-context timing of the forward pass (oneDNN path only), for
 * benchmarks and tuning. Each entry sums wall time and the useful FLOPs
 * (2·M·K·N for a matmul) since the last reset.
 */
enum bx_embed_op {
	BX_EMBED_OP_QKV,    /* fused Q/K/V projection, bias */
	BX_EMBED_OP_O,      /* attention output projection, bias, residual */
	BX_EMBED_OP_UP,     /* FFN up, bias, gelu_erf */
	BX_EMBED_OP_DOWN,   /* FFN down, bias, residual */
	BX_EMBED_OP_ATT_QK, /* Q·K^T / sqrt(d) per sequence */
	BX_EMBED_OP_ATT_SM, /* softmax */
	BX_EMBED_OP_ATT_PV, /* P·V */
	BX_EMBED_OP_NORM,   /* embedding gather, LayerNorms, bf16 conversion */
	BX_EMBED_OP_POOL,   /* mean pooling and L2 normalisation */
	BX_EMBED_OP_MAX
};

struct bx_embed_profile {
	uint64_t ns[BX_EMBED_OP_MAX];
	double flop[BX_EMBED_OP_MAX];
	uint64_t tokens, batches;
};

/* Turn timing on or off (off by default); both reset the counters. */
void bx_embed_ctx_profile_enable(struct bx_embed_ctx *ctx, bool on);
/* Copy the counters out (zeros for the reference path). */
void bx_embed_ctx_profile(const struct bx_embed_ctx *ctx, struct bx_embed_profile *out);
const char *bx_embed_op_name(enum bx_embed_op op);

/* Tokenize and embed n texts (texts[i][0..lens[i]) bytes of UTF-8). */
int bx_embed_batch(struct bx_embed_ctx *ctx, const char *const *texts, const size_t *lens,
                   unsigned n, float *out);

/* ======================= Generated test weights ======================= */

/* Shapes of a BERT embedding model; bx_embed_minilm_shape() is the upstream one. */
struct bx_embed_shape {
	unsigned vocab, hidden, layers, heads, ffn, positions, types;
};
extern const struct bx_embed_shape bx_embed_minilm_shape;

/*
 * Write a model directory's model.safetensors (and config.json) with the
 * upstream tensor names, dtypes and layout for `shape`, filled with seeded
 * deterministic values of a plausible scale (embeddings.position_ids and
 * pooler.* included, as upstream). vocab.txt is not written.
 */
int bx_embed_synth_write(const char *dir, const struct bx_embed_shape *shape, uint64_t seed,
                         struct bx_errbuf *eb);

/* ======================= Text generation (Llama family) ======================= */

/*
 * Llama-architecture decoders: llama2.c checkpoints (with their tokenizer.bin)
 * and GGUF v3 files of architecture `llama`.
 *
 * Parts, in the order a request uses them:
 *  - a model (bx_llm_model_*) loaded once per process (mmap), validated fully
 *    before use, immutable and shared read-only by every worker;
 *  - its tokenizer (bx_llm_tokenize, bx_llm_detok_*): SentencePiece-style BPE
 *    with scores and byte fallback;
 *  - one context (bx_llm_ctx_*) per worker thread: activations and scratch for
 *    up to max_batch tokens a step;
 *  - one sequence (bx_llm_seq_*) per request: KV cache, sampler state, stop
 *    strings and the text not yet streamed.
 *
 * Scheduling: bx_llm_seq_prefill() feeds prompt tokens to one sequence;
 * bx_llm_step() runs one decode step for N sequences at once (continuous
 * batching: the caller picks the N each step). Both deliver the token each
 * sequence produced, with the UTF-8 text that became final, so the dataplane
 * can stream it. A sequence is used by one context at a time.
 */

/* Tensor types: the values are ggml's type ids, as stored in GGUF. */
enum bx_llm_type {
	BX_LLM_F32 = 0,
	BX_LLM_F16 = 1,
	BX_LLM_Q4_0 = 2,
	BX_LLM_Q4_1 = 3,
	BX_LLM_Q8_0 = 8,
	BX_LLM_Q4_K = 12,
	BX_LLM_Q6_K = 14,
	BX_LLM_BF16 = 30,
};

/* RoPE pairing: NORM rotates (x[2i], x[2i+1]) (llama2.c, GGUF llama); NEOX (x[i], x[i+d/2]). */
enum bx_llm_rope {
	BX_LLM_ROPE_NORM,
	BX_LLM_ROPE_NEOX,
};

struct bx_llm_config {
	uint32_t dim;        /* residual width */
	uint32_t hidden_dim; /* SwiGLU width */
	uint32_t n_layers;
	uint32_t n_heads;
	uint32_t n_kv_heads; /* grouped-query attention: n_heads % n_kv_heads == 0 */
	uint32_t head_dim;   /* dim / n_heads */
	uint32_t vocab_size;
	uint32_t seq_len; /* context length the model was trained for */
	float rope_base;  /* 10000 unless the file says otherwise */
	float rms_eps;    /* 1e-5 unless the file says otherwise */
	bool tied;        /* output layer shares the token embedding */
	enum bx_llm_rope rope;
};

struct bx_llm_model;

/* Name of a type ("Q4_0"), or "?" for one bx does not know. */
const char *bx_llm_type_name(enum bx_llm_type type);

/*
 * Map and validate a llama2.c legacy checkpoint (7 x int32 header, f32
 * tensors, exact file size) and, unless tok_path is NULL, its tokenizer.bin
 * (without one the model runs on token ids only). Returns 0, -ENOENT (cannot
 * open), -EBADMSG (malformed, named in eb), -ENOTSUP (a llama2.c version
 * bx does not read) or -ENOMEM. Any thread; blocks on file I/O.
 */
int bx_llm_load_llama2c(const char *path, const char *tok_path, struct bx_llm_model **out,
                        struct bx_errbuf *eb);

/*
 * Map and validate a GGUF v3 (or v2) file of architecture `llama`: every
 * metadata value (nested arrays too), tensor infos, alignment, offsets and
 * sizes inside the file, the shapes the config implies, and the tokenizer
 * (tokenizer.ggml.model `llama`). Tensor types F32, F16, BF16, Q8_0, Q4_0,
 * Q4_1 are read, and Q4_K, Q6_K through dequantization (correct, not fast);
 * any other is -ENOTSUP with the tensor and type named.
 * Returns 0, -ENOENT, -EBADMSG, -ENOTSUP or -ENOMEM.
 */
int bx_llm_load_gguf(const char *path, struct bx_llm_model **out, struct bx_errbuf *eb);

/*
 * A model of shape cfg with seeded random weights of `type` (F32, Q8_0, Q4_0
 * or Q4_1; dim and hidden_dim multiples of 32 for the block types) and a
 * synthetic vocabulary (<unk> <s> </s>, 256 byte pieces, then filler
 * pieces), held in memory. For benchmarks and converter tests.
 */
int bx_llm_synth(const struct bx_llm_config *cfg, enum bx_llm_type type, uint64_t seed,
                 struct bx_llm_model **out, struct bx_errbuf *eb);

/*
 * Write m as a GGUF v3 file at path, its matrices converted to `type` (F32,
 * F16, Q8_0, Q4_0, Q4_1, Q4_K or Q6_K; matrices whose rows are not a
 * multiple of the block stay F32, norms stay F32; 4-bit files keep the
 * embedding and output at Q8_0) and its tokenizer as
 * tokenizer.ggml.model = llama. Returns 0, -EINVAL, -EIO or -ENOMEM.
 */
int bx_llm_write_gguf(const struct bx_llm_model *m, enum bx_llm_type type, const char *path,
                      struct bx_errbuf *eb);

struct bx_llm_write_opts {
	/*
	 * > 0: Q8_0/Q4_0/Q4_1 layer matrices are quantized with GPTQ, against
	 * the statistics of their inputs over this many tokens the model
	 * samples itself (seeded by calib_seed), instead of rounding each
	 * weight to its nearest level. For models whose statistics fit 2 GiB
	 * (3 dim^2 + hidden^2 floats a layer); larger ones get -EFBIG.
	 */
	unsigned calib_tokens;
	uint64_t calib_seed;
};

/* As bx_llm_write_gguf, with options (o may be NULL). */
int bx_llm_write_gguf_opts(const struct bx_llm_model *m, enum bx_llm_type type, const char *path,
                           const struct bx_llm_write_opts *o, struct bx_errbuf *eb);

void bx_llm_model_destroy(struct bx_llm_model *m);
const struct bx_llm_config *bx_llm_model_config(const struct bx_llm_model *m);
/* Bytes of weights one decode step reads (matrices, the output layer included). */
uint64_t bx_llm_model_weight_bytes(const struct bx_llm_model *m);

/*
 * Add bf16 copies of every matrix (2 bytes a weight, besides the file's),
 * for prefill and wide batches: steps of LLM_BF16_MIN_BATCH (8) or more
 * tokens then run AVX512-BF16 dot products on them, while smaller steps keep
 * reading the quantized blocks. Call once after loading, before contexts
 * use the model. Returns 0, -ENOTSUP (no AVX512-BF16 here) or -ENOMEM.
 */
int bx_llm_model_pack_bf16(struct bx_llm_model *m, struct bx_errbuf *eb);

/*
 * Add row-interleaved int8 copies of the Q8_0/Q4_0/Q4_1 matrices (1.25
 * bytes a weight, besides the file's): steps of 4 or more tokens (prefill
 * chunks, several sequences) then run one VNNI dot product across 16 rows
 * at a time, while single-sequence steps keep streaming the file's blocks.
 * Same arithmetic as the block kernels. Call once after loading, before
 * contexts use the model. Returns 0, -ENOTSUP (no AVX-512 VNNI) or -ENOMEM.
 */
int bx_llm_model_pack_i8(struct bx_llm_model *m, struct bx_errbuf *eb);

/*
 * Add copies of every matrix packed for oneDNN matmuls: block types
 * (Q8_0, Q4_0, Q4_1, Q4_K, Q6_K) requantized to int8 with one scale per
 * output row (1 byte a weight, besides the file's), F16/BF16 as bf16, F32
 * as f32. Steps of 2 or more tokens (prefill chunks, several sequences)
 * then run AMX or VNNI matmuls on them (u8 activations quantized per token),
 * while single-sequence steps keep the block kernels. Takes precedence over
 * the int8 and bf16 copies above for those steps. Call once after loading,
 * before contexts use the model; uses the calling thread's OpenMP threads.
 * Returns 0, -ENOTSUP (oneDNN has no AMX/VNNI/BF16 brgemm kernel for these
 * matrices on this CPU; named in eb) or -ENOMEM.
 */
int bx_llm_model_pack_dnnl(struct bx_llm_model *m, struct bx_errbuf *eb);

/* ---- quantization blocks (ggml layouts) ---- */

/* Bytes of one row of n values of type, or 0 if n is not a multiple of its block. */
size_t bx_llm_row_bytes(enum bx_llm_type type, size_t n);
/* x[n] -> out (bx_llm_row_bytes(type, n) bytes). 0 or -EINVAL (type, n). */
int bx_llm_quantize(enum bx_llm_type type, const float *x, size_t n, void *out);
/* in -> out[n]. 0 or -EINVAL. */
int bx_llm_dequantize(enum bx_llm_type type, const void *in, size_t n, float *out);

/* ---- tokenizer ---- */

#define BX_LLM_NO_TOKEN (-1)
int32_t bx_llm_bos(const struct bx_llm_model *m);
int32_t bx_llm_eos(const struct bx_llm_model *m);

/*
 * Encode text[0..len) (UTF-8; invalid bytes fall back to byte pieces) into
 * ids[0..cap), BOS first when bos. SentencePiece BPE as llama2.c does it: a
 * leading space, then every code point looked up (else its bytes as
 * <0xXX>), then the adjacent pair whose merge has the highest score merged,
 * leftmost first, until none is left. *n gets the count. Returns 0,
 * -ENOBUFS (cap too small; *n is what was needed), -ENOTSUP (no tokenizer)
 * or -ENOMEM. Any thread.
 */
int bx_llm_tokenize(const struct bx_llm_model *m, const char *text, size_t len, bool bos,
                    int32_t *ids, size_t cap, size_t *n);

/*
 * Streaming detokenizer: push ids, get the bytes that are now complete
 * UTF-8 (a code point split over byte pieces is held back; a byte sequence
 * that can never be valid becomes U+FFFD). The first piece after BOS loses
 * its leading space. Control tokens give no text.
 */
#define BX_LLM_PIECE_MAX 128
#define BX_LLM_DETOK_OUT (3 * BX_LLM_PIECE_MAX + 16)

struct bx_llm_detok {
	uint8_t pend[4];
	uint8_t nb_pend;
	bool at_start;
};

void bx_llm_detok_init(struct bx_llm_detok *d);
/* out must hold BX_LLM_DETOK_OUT bytes; returns the bytes written. */
size_t bx_llm_detok_push(const struct bx_llm_model *m, struct bx_llm_detok *d, int32_t id,
                         char *out);
/* Emit what is held back (as U+FFFD); out holds 16 bytes. */
size_t bx_llm_detok_flush(struct bx_llm_detok *d, char *out);

/* ---- generation ---- */

struct bx_llm_sample_conf {
	float temperature;      /* 0: greedy (argmax, lowest id on ties) */
	uint32_t top_k;         /* 0: off */
	float top_p;            /* 1: off */
	float repeat_penalty;   /* 1: off; > 1 lowers logits of recent tokens */
	uint32_t repeat_last_n; /* window of the penalty, in tokens (<= 256) */
	uint64_t seed;
};

struct bx_llm_seq_conf {
	struct bx_llm_sample_conf sample;
	uint32_t max_tokens;      /* tokens to generate; 0: until the context is full */
	uint32_t ctx_len;         /* KV cache length; 0: the model's seq_len */
	const char *const *stops; /* stop strings (borrowed for the call), not streamed */
	unsigned nb_stops;        /* <= 8, each <= 64 bytes */
};

enum bx_llm_stop {
	BX_LLM_RUNNING,
	BX_LLM_STOP_EOS,
	BX_LLM_STOP_MAX,
	BX_LLM_STOP_STRING,
	BX_LLM_STOP_CTX,
};

/* One produced token. text is owned by the sequence, valid until its next call. */
struct bx_llm_event {
	int32_t id;
	const char *text; /* the bytes now final (stop strings held back, then cut) */
	size_t len;
	enum bx_llm_stop stop; /* not RUNNING: the sequence is finished */
};

struct bx_llm_ctx;
struct bx_llm_seq;

/*
 * A worker's context for up to max_batch tokens a step, running the
 * optimized path (AVX-512 quantized dot products; OpenMP with nb_threads),
 * or when reference is true the plain-C f32 reference path (one thread).
 * Use from one thread. Returns 0, -EINVAL or -ENOMEM.
 */
int bx_llm_ctx_create(const struct bx_llm_model *m, unsigned max_batch, unsigned nb_threads,
                      bool reference, struct bx_llm_ctx **out);
void bx_llm_ctx_destroy(struct bx_llm_ctx *ctx);

/* A sequence with its KV cache. Returns 0, -EINVAL (conf) or -ENOMEM. */
int bx_llm_seq_create(const struct bx_llm_model *m, const struct bx_llm_seq_conf *conf,
                      struct bx_llm_seq **out);
void bx_llm_seq_destroy(struct bx_llm_seq *s);
/*
 * Make s a new sequence for conf, keeping its buffers (a worker's pool of
 * KV caches: no allocation and no page faults per request). Returns 0,
 * -EINVAL (conf) or -ENOSPC (conf's context is longer than s was made for).
 */
int bx_llm_seq_reset(struct bx_llm_seq *s, const struct bx_llm_seq_conf *conf);

/*
 * Feed n prompt tokens (any number of calls before the first step), run
 * them and sample the first generated token into *ev. Returns 0, -EINVAL
 * (bad id, finished sequence) or -ENOSPC (context full).
 */
int bx_llm_seq_prefill(struct bx_llm_ctx *ctx, struct bx_llm_seq *s, const int32_t *ids, size_t n,
                       struct bx_llm_event *ev);

/*
 * One decode step for n running sequences (n <= the context's max_batch):
 * each consumes its last produced token and produces ev[i]. Returns 0 or
 * -EINVAL (a sequence finished or not prefilled).
 */
int bx_llm_step(struct bx_llm_ctx *ctx, struct bx_llm_seq *const *seqs, unsigned n,
                struct bx_llm_event *ev);

/* Logits (vocab_size floats) of the sequence's last forward position. */
const float *bx_llm_seq_logits(const struct bx_llm_seq *s);
/* Tokens in the KV cache. */
uint32_t bx_llm_seq_pos(const struct bx_llm_seq *s);

#endif /* BX_INFER_H */
