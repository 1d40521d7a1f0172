/*
 * Embedding model: load and check the weights, vocabulary and config, hand
 * batches to the oneDNN path (embed_dnnl.c) or the reference (embed_ref.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "embed_int.h"

struct bx_embed_ctx {
	const struct bx_embed_model *m;
	struct bx_dnnl_ctx *dn;
	int32_t *tok; /* n x max_tokens ids for bx_embed_batch() */
	const int32_t **tok_ptr;
	unsigned *tok_len;
	unsigned tok_cap; /* texts the buffers hold */
};

const struct bx_embed_shape bx_embed_minilm_shape = {
	.vocab = 30522,
	.hidden = 384,
	.layers = 6,
	.heads = 12,
	.ffn = 1536,
	.positions = 512,
	.types = 2,
};

unsigned
bx_embed_dim(const struct bx_embed_model *m)
{
	return m->shape.hidden;
}

unsigned
bx_embed_max_tokens(const struct bx_embed_model *m)
{
	return m->max_tokens;
}

bool
bx_embed_model_is_synthetic(const struct bx_embed_model *m)
{
	return m->synthetic;
}

const struct bx_wordpiece *
bx_embed_vocab(const struct bx_embed_model *m)
{
	return m->vocab;
}

/* sha256 of a file as lowercase hex. */
static int
file_sha256(const char *path, char hex[65], struct bx_errbuf *eb)
{
	unsigned char digest[crypto_hash_sha256_BYTES];
	crypto_hash_sha256_state st;
	static unsigned char buf[1 << 16];
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0) {
		return bx_err(eb, errno, "%s: %s", path, bx_strerror(errno));
	}
	pthread_mutex_lock(&lock);
	crypto_hash_sha256_init(&st);
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		crypto_hash_sha256_update(&st, buf, (uint64_t)n);
	}
	crypto_hash_sha256_final(&st, digest);
	pthread_mutex_unlock(&lock);
	close(fd);
	if (n < 0) {
		return bx_err(eb, EIO, "%s: read error while hashing", path);
	}
	sodium_bin2hex(hex, 65, digest, sizeof(digest));
	return 0;
}

/* A tensor that must exist as F32 with exactly the given shape. */
static const float *
need(const struct bx_st_file *st, const char *name, unsigned ndims, uint64_t d0, uint64_t d1,
     struct bx_errbuf *eb, int *ret)
{
	const struct bx_st_tensor *t = bx_st_find(st, name);
	uint64_t want[2] = { d0, d1 };

	if (*ret < 0) {
		return NULL;
	}
	if (t == NULL) {
		*ret = bx_err(eb, ENOENT, "%s: missing tensor \"%s\"", bx_st_path(st), name);
		return NULL;
	}
	if (t->dtype != BX_DT_F32) {
		*ret = bx_err(eb, EINVAL, "%s: tensor \"%s\" has dtype %s, expected F32",
		              bx_st_path(st), name, bx_dtype_name(t->dtype));
		return NULL;
	}
	if (t->ndims != ndims || t->shape[0] != want[0] || (ndims == 2 && t->shape[1] != want[1])) {
		char got[96] = "";
		size_t p = 0;

		for (unsigned i = 0; i < t->ndims && p < sizeof(got); i++) {
			p += (size_t)snprintf(got + p, sizeof(got) - p, "%s%" PRIu64, i ? "," : "",
			                      (uint64_t)t->shape[i]);
		}
		if (ndims == 2) {
			*ret = bx_err(eb, EINVAL,
			              "%s: tensor \"%s\" has shape [%s], expected [%" PRIu64
			              ",%" PRIu64 "]",
			              bx_st_path(st), name, got, (uint64_t)d0, (uint64_t)d1);
		} else {
			*ret = bx_err(eb, EINVAL,
			              "%s: tensor \"%s\" has shape [%s], expected [%" PRIu64 "]",
			              bx_st_path(st), name, got, (uint64_t)d0);
		}
		return NULL;
	}
	return t->data;
}

static int
bind_layer(struct bx_embed_model *m, unsigned i, struct bx_errbuf *eb)
{
	struct bx_embed_layer *l = &m->layers[i];
	unsigned h = m->shape.hidden, f = m->shape.ffn;
	const struct bx_st_file *st = m->st;
	char n[128];
	int ret = 0;

#define W(field, suffix, nd, a, b)                                \
	snprintf(n, sizeof(n), "encoder.layer.%u.%s", i, suffix); \
	l->field = need(st, n, nd, a, b, eb, &ret)
	W(q_w, "attention.self.query.weight", 2, h, h);
	W(q_b, "attention.self.query.bias", 1, h, 0);
	W(k_w, "attention.self.key.weight", 2, h, h);
	W(k_b, "attention.self.key.bias", 1, h, 0);
	W(v_w, "attention.self.value.weight", 2, h, h);
	W(v_b, "attention.self.value.bias", 1, h, 0);
	W(o_w, "attention.output.dense.weight", 2, h, h);
	W(o_b, "attention.output.dense.bias", 1, h, 0);
	W(ln1_g, "attention.output.LayerNorm.weight", 1, h, 0);
	W(ln1_b, "attention.output.LayerNorm.bias", 1, h, 0);
	W(i_w, "intermediate.dense.weight", 2, f, h);
	W(i_b, "intermediate.dense.bias", 1, f, 0);
	W(f_w, "output.dense.weight", 2, h, f);
	W(f_b, "output.dense.bias", 1, h, 0);
	W(ln2_g, "output.LayerNorm.weight", 1, h, 0);
	W(ln2_b, "output.LayerNorm.bias", 1, h, 0);
#undef W
	return ret;
}

/* Sizes from the tensors themselves: word/position/type embeddings and the layer count. */
static int
infer_shape(struct bx_embed_model *m, struct bx_errbuf *eb)
{
	const struct bx_st_file *st = m->st;
	const struct bx_st_tensor *w = bx_st_find(st, "embeddings.word_embeddings.weight");
	const struct bx_st_tensor *p = bx_st_find(st, "embeddings.position_embeddings.weight");
	const struct bx_st_tensor *t = bx_st_find(st, "embeddings.token_type_embeddings.weight");
	const struct bx_st_tensor *f = bx_st_find(st, "encoder.layer.0.intermediate.dense.weight");
	char n[96];

	if (w == NULL || p == NULL || t == NULL || f == NULL) {
		return bx_err(eb, ENOENT, "%s: missing tensor \"%s\"", bx_st_path(st),
		              w == NULL ? "embeddings.word_embeddings.weight" :
		              p == NULL ? "embeddings.position_embeddings.weight" :
		              t == NULL ? "embeddings.token_type_embeddings.weight" :
		                          "encoder.layer.0.intermediate.dense.weight");
	}
	if (w->ndims != 2 || p->ndims != 2 || t->ndims != 2 || f->ndims != 2 || w->shape[0] == 0 ||
	    w->shape[0] > INT32_MAX || w->shape[1] == 0 || w->shape[1] > 65536 ||
	    p->shape[0] == 0 || p->shape[0] > 65536 || t->shape[0] == 0 || f->shape[0] == 0 ||
	    f->shape[0] > 262144) {
		return bx_err(eb, EINVAL, "%s: embedding or FFN tensors are not sensible matrices",
		              bx_st_path(st));
	}
	m->shape.vocab = (unsigned)w->shape[0];
	m->shape.hidden = (unsigned)w->shape[1];
	m->shape.positions = (unsigned)p->shape[0];
	m->shape.types = (unsigned)t->shape[0];
	m->shape.ffn = (unsigned)f->shape[0];
	for (m->shape.layers = 0; m->shape.layers < 1000; m->shape.layers++) {
		snprintf(n, sizeof(n), "encoder.layer.%u.attention.self.query.weight",
		         m->shape.layers);
		if (bx_st_find(st, n) == NULL) {
			break;
		}
	}
	return 0;
}

static int
config_uint(json_t *root, const char *key, unsigned have, const char *path, struct bx_errbuf *eb)
{
	json_t *v = json_object_get(root, key);

	if (v != NULL && (!json_is_integer(v) || json_integer_value(v) != (json_int_t)have)) {
		return bx_err(eb, EINVAL, "%s: %s does not match the weights (%u)", path, key,
		              have);
	}
	return 0;
}

/* config.json, when present: heads, epsilon, activation; sizes must match the tensors. */
static int
read_config(struct bx_embed_model *m, const char *dir, struct bx_errbuf *eb)
{
	char path[PATH_MAX];
	json_error_t jerr;
	json_t *root, *v;
	int ret = 0;

	m->shape.heads = 12;
	m->eps = 1e-12f;
	snprintf(path, sizeof(path), "%s/config.json", dir);
	if (access(path, F_OK) != 0) {
		goto check;
	}
	root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL || !json_is_object(root)) {
		json_decref(root);
		return bx_err(eb, EBADMSG, "%s: line %d: %s", path, jerr.line,
		              root ? "not an object" : jerr.text);
	}
	v = json_object_get(root, "num_attention_heads");
	if (v != NULL) {
		m->shape.heads = json_is_integer(v) && json_integer_value(v) > 0 &&
		                                 json_integer_value(v) <= 1024 ?
		                         (unsigned)json_integer_value(v) :
		                         0;
	}
	v = json_object_get(root, "layer_norm_eps");
	if (v != NULL) {
		m->eps = json_is_number(v) ? (float)json_number_value(v) : -1.0f;
	}
	v = json_object_get(root, "hidden_act");
	if (v != NULL && (!json_is_string(v) || strcmp(json_string_value(v), "gelu") != 0)) {
		ret = bx_err(eb, ENOTSUP, "%s: hidden_act must be \"gelu\" (exact erf)", path);
	}
	if (ret == 0 && (m->eps < 0 || m->eps > 1 || m->shape.heads == 0)) {
		ret = bx_err(eb, EINVAL, "%s: bad num_attention_heads or layer_norm_eps", path);
	}
	if (ret == 0) {
		ret = config_uint(root, "hidden_size", m->shape.hidden, path, eb);
	}
	if (ret == 0) {
		ret = config_uint(root, "num_hidden_layers", m->shape.layers, path, eb);
	}
	if (ret == 0) {
		ret = config_uint(root, "intermediate_size", m->shape.ffn, path, eb);
	}
	if (ret == 0) {
		ret = config_uint(root, "vocab_size", m->shape.vocab, path, eb);
	}
	json_decref(root);
	if (ret < 0) {
		return ret;
	}
check:
	if (m->shape.hidden % m->shape.heads != 0) {
		return bx_err(eb, EINVAL, "%s: hidden size %u is not a multiple of %u heads", dir,
		              m->shape.hidden, m->shape.heads);
	}
	return 0;
}

/* Use the mapping in place when every F32 tensor is 4-byte aligned, else copy the data. */
static int
align_data(struct bx_embed_model *m, struct bx_errbuf *eb)
{
	const uint8_t *base = NULL;
	uint64_t end = 0;
	bool ok = true;

	for (unsigned i = 0; i < bx_st_count(m->st); i++) {
		const struct bx_st_tensor *t = bx_st_get(m->st, i);

		base = (const uint8_t *)t->data - t->begin;
		end = BX_MAX(end, t->end);
		ok = ok && ((uintptr_t)t->data % 4) == 0;
	}
	if (ok || base == NULL) {
		return 0;
	}
	m->data_copy = bx_aligned_alloc(64, (end + 63) & ~(uint64_t)63);
	if (m->data_copy == NULL) {
		return bx_err(eb, ENOMEM, "%s: out of memory", bx_st_path(m->st));
	}
	memcpy(m->data_copy, base, end);
	return 1;
}

static int
bind_all(struct bx_embed_model *m, struct bx_errbuf *eb)
{
	const struct bx_st_file *st = m->st;
	unsigned h = m->shape.hidden;
	int ret = 0;

	m->word = need(st, "embeddings.word_embeddings.weight", 2, m->shape.vocab, h, eb, &ret);
	m->pos = need(st, "embeddings.position_embeddings.weight", 2, m->shape.positions, h, eb,
	              &ret);
	m->type =
		need(st, "embeddings.token_type_embeddings.weight", 2, m->shape.types, h, eb, &ret);
	m->ln_g = need(st, "embeddings.LayerNorm.weight", 1, h, 0, eb, &ret);
	m->ln_b = need(st, "embeddings.LayerNorm.bias", 1, h, 0, eb, &ret);
	if (ret < 0) {
		return ret;
	}
	m->layers = bx_calloc(m->shape.layers ? m->shape.layers : 1, sizeof(*m->layers));
	if (m->layers == NULL) {
		return bx_err(eb, ENOMEM, "%s: out of memory", bx_st_path(st));
	}
	for (unsigned i = 0; i < m->shape.layers && ret == 0; i++) {
		ret = bind_layer(m, i, eb);
	}
	return ret;
}

/* Rebase every bound pointer from the mapping onto data_copy. */
static void
rebase(struct bx_embed_model *m)
{
	const struct bx_st_tensor *t0 = bx_st_get(m->st, 0);
	const uint8_t *base = (const uint8_t *)t0->data - t0->begin;
	const float **p = &m->word;
	ptrdiff_t d = (uint8_t *)m->data_copy - base;

	for (unsigned i = 0; i < 5; i++) {
		p[i] = (const float *)((const uint8_t *)p[i] + d);
	}
	for (unsigned l = 0; l < m->shape.layers; l++) {
		const float **q = &m->layers[l].q_w;

		for (unsigned i = 0; i < sizeof(struct bx_embed_layer) / sizeof(*q); i++) {
			q[i] = (const float *)((const uint8_t *)q[i] + d);
		}
	}
}

static int
check_upstream(struct bx_embed_model *m, const char *path, bool no_verify, struct bx_errbuf *eb)
{
	struct stat st;
	char hex[65];
	int ret;

	m->synthetic = true;
	if (stat(path, &st) != 0 || (uint64_t)st.st_size != BX_MINILM_FILE_SIZE || no_verify) {
		return 0;
	}
	if (sodium_init() < 0) {
		return bx_err(eb, EIO, "libsodium failed to initialise");
	}
	ret = file_sha256(path, hex, eb);
	if (ret < 0) {
		return ret;
	}
	if (strcmp(hex, BX_MINILM_SHA256) != 0) {
		return bx_err(eb, EBADMSG,
		              "%s: has the size of the upstream all-MiniLM-L6-v2 model.safetensors "
		              "but sha256 %s, not %s (damaged download?)",
		              path, hex, BX_MINILM_SHA256);
	}
	m->synthetic = false;
	return 0;
}

static int
load_files(struct bx_embed_model *m, const char *dir, const struct bx_embed_opts *o,
           struct bx_errbuf *eb)
{
	char wpath[PATH_MAX], vpath[PATH_MAX];
	int ret;

	snprintf(wpath, sizeof(wpath), "%s/model.safetensors", dir);
	snprintf(vpath, sizeof(vpath), "%s/vocab.txt", dir);
	if ((ret = bx_st_open(o->weights_path ? o->weights_path : wpath, 0, &m->st, eb)) < 0 ||
	    (ret = check_upstream(m, bx_st_path(m->st), o->no_verify, eb)) < 0 ||
	    (ret = infer_shape(m, eb)) < 0 || (ret = read_config(m, dir, eb)) < 0 ||
	    (ret = bind_all(m, eb)) < 0 || (ret = align_data(m, eb)) < 0) {
		return ret;
	}
	if (ret == 1) {
		rebase(m);
	}
	ret = bx_wordpiece_load(o->vocab_path ? o->vocab_path : vpath, &m->vocab, eb);
	if (ret < 0) {
		return ret;
	}
	if (bx_wordpiece_size(m->vocab) != m->shape.vocab) {
		return bx_err(eb, EINVAL, "%s: %u tokens, but the weights have %u rows",
		              o->vocab_path ? o->vocab_path : vpath, bx_wordpiece_size(m->vocab),
		              m->shape.vocab);
	}
	return 0;
}

int
bx_embed_model_load(const char *model_dir, const struct bx_embed_opts *opts,
                    struct bx_embed_model **out, struct bx_errbuf *eb)
{
	static const struct bx_embed_opts defaults;
	const struct bx_embed_opts *o = opts ? opts : &defaults;
	struct bx_embed_model *m = bx_calloc(1, sizeof(*m));
	int ret;

	if (m == NULL) {
		return bx_err(eb, ENOMEM, "%s: out of memory", model_dir);
	}
	m->reference = o->reference;
	ret = load_files(m, model_dir, o, eb);
	if (ret < 0) {
		goto out_free;
	}
	m->max_tokens =
		o->max_tokens ? o->max_tokens : BX_MIN(BX_EMBED_MAX_TOKENS, m->shape.positions);
	if (m->max_tokens < 2 || m->max_tokens > m->shape.positions) {
		ret = bx_err(eb, EINVAL, "%s: max_tokens %u is outside 2..%u (positions)",
		             model_dir, m->max_tokens, m->shape.positions);
		goto out_free;
	}
	if (!m->reference) {
		ret = bx_dnnl_model_create(m, &m->dn, eb);
		if (ret < 0) {
			goto out_free;
		}
	}
	BX_LOG(INFO, "embed: %s: %u layers, hidden %u, %u heads, ffn %u, vocab %u, %s weights, %s",
	       model_dir, m->shape.layers, m->shape.hidden, m->shape.heads, m->shape.ffn,
	       m->shape.vocab, m->synthetic ? "generated" : "upstream",
	       m->reference ? "f32 reference" : "oneDNN bf16");
	*out = m;
	return 0;
out_free:
	bx_embed_model_destroy(m);
	return ret;
}

void
bx_embed_model_destroy(struct bx_embed_model *m)
{
	if (m == NULL) {
		return;
	}
	bx_dnnl_model_destroy(m->dn);
	bx_wordpiece_destroy(m->vocab);
	bx_free(m->layers);
	bx_free(m->data_copy);
	bx_st_close(m->st);
	bx_free(m);
}

int
bx_embed_tokenize(const struct bx_embed_model *m, const char *text, size_t len, int32_t *ids)
{
	return bx_wordpiece_encode(m->vocab, text, len, BX_WP_SPECIALS, ids, m->max_tokens, NULL);
}

int
bx_embed_ctx_create(const struct bx_embed_model *m, unsigned nb_threads, struct bx_embed_ctx **out)
{
	struct bx_embed_ctx *ctx;
	int ret;

	if (nb_threads == 0 || nb_threads > 1024) {
		return -EINVAL;
	}
	ctx = bx_calloc(1, sizeof(*ctx));
	if (ctx == NULL) {
		return -ENOMEM;
	}
	ctx->m = m;
	if (!m->reference) {
		ret = bx_dnnl_ctx_create(m, nb_threads, &ctx->dn);
		if (ret < 0) {
			bx_free(ctx);
			return ret;
		}
	}
	*out = ctx;
	return 0;
}

void
bx_embed_ctx_destroy(struct bx_embed_ctx *ctx)
{
	if (ctx == NULL) {
		return;
	}
	bx_dnnl_ctx_destroy(ctx->dn);
	bx_free(ctx->tok);
	bx_free(ctx->tok_ptr);
	bx_free(ctx->tok_len);
	bx_free(ctx);
}

int
bx_embed_batch_ids(struct bx_embed_ctx *ctx, const int32_t *const *ids, const unsigned *lens,
                   unsigned n, float *out)
{
	const struct bx_embed_model *m = ctx->m;

	for (unsigned i = 0; i < n; i++) {
		if (lens[i] == 0 || lens[i] > m->max_tokens) {
			return -EINVAL;
		}
		for (unsigned t = 0; t < lens[i]; t++) {
			if (ids[i][t] < 0 || (unsigned)ids[i][t] >= m->shape.vocab) {
				return -EINVAL;
			}
		}
	}
	if (ctx->dn != NULL) {
		return bx_dnnl_forward(ctx->dn, ids, lens, n, out);
	}
	for (unsigned i = 0; i < n; i++) {
		int ret =
			bx_embed_ref_forward(m, ids[i], lens[i], out + (size_t)i * m->shape.hidden);

		if (ret < 0) {
			return ret;
		}
	}
	return 0;
}

void
bx_embed_ctx_profile_enable(struct bx_embed_ctx *ctx, bool on)
{
	if (ctx->dn != NULL) {
		bx_dnnl_profile_enable(ctx->dn, on);
	}
}

void
bx_embed_ctx_profile(const struct bx_embed_ctx *ctx, struct bx_embed_profile *out)
{
	memset(out, 0, sizeof(*out));
	if (ctx->dn != NULL) {
		bx_dnnl_profile(ctx->dn, out);
	}
}

const char *
bx_embed_op_name(enum bx_embed_op op)
{
	static const char *const names[BX_EMBED_OP_MAX] = {
		"qkv", "o", "ffn_up", "ffn_down", "att_qk", "att_softmax", "att_pv", "norm", "pool",
	};

	return (unsigned)op < BX_EMBED_OP_MAX ? names[op] : "?";
}

static int
grow_tok(struct bx_embed_ctx *ctx, unsigned n)
{
	unsigned cap = BX_MAX(n, 32u);

	if (n <= ctx->tok_cap) {
		return 0;
	}
	bx_free(ctx->tok);
	bx_free(ctx->tok_ptr);
	bx_free(ctx->tok_len);
	ctx->tok = bx_malloc(sizeof(*ctx->tok) * cap * ctx->m->max_tokens);
	ctx->tok_ptr = bx_malloc(sizeof(*ctx->tok_ptr) * cap);
	ctx->tok_len = bx_malloc(sizeof(*ctx->tok_len) * cap);
	ctx->tok_cap = cap;
	if (ctx->tok == NULL || ctx->tok_ptr == NULL || ctx->tok_len == NULL) {
		ctx->tok_cap = 0;
		return -ENOMEM;
	}
	return 0;
}

int
bx_embed_batch(struct bx_embed_ctx *ctx, const char *const *texts, const size_t *lens, unsigned n,
               float *out)
{
	unsigned mt = ctx->m->max_tokens;
	int ret = grow_tok(ctx, n);

	if (ret < 0) {
		return ret;
	}
	for (unsigned i = 0; i < n; i++) {
		int32_t *ids = ctx->tok + (size_t)i * mt;

		ret = bx_embed_tokenize(ctx->m, texts[i], lens[i], ids);
		if (ret < 0) {
			return ret;
		}
		ctx->tok_ptr[i] = ids;
		ctx->tok_len[i] = (unsigned)ret;
	}
	return bx_embed_batch_ids(ctx, ctx->tok_ptr, ctx->tok_len, n, out);
}
