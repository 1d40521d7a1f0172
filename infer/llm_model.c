/*
 * The model in memory: llama2.c checkpoints and their tokenizer.bin, shape
 * checks shared by every reader, synthetic models for benchmarks.
 *
 * llama2.c legacy checkpoint (karpathy/llama2.c run.c, memory_map_weights):
 *   int32 dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len
 *   (vocab_size < 0: an untied classifier follows), then f32 tensors:
 *   token_embedding [V,D], rms_att [L,D], wq [L,D,D], wk [L,KV,D],
 *   wv [L,KV,D], wo [L,D,D], rms_ffn [L,D], w1 [L,H,D], w2 [L,D,H],
 *   w3 [L,H,D], rms_final [D], freq_cis_real/imag [S,hd/2] each,
 *   wcls [V,D] when untied. Nothing may follow.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "llm_int.h"

int
llm_map_file(const char *path, void **map, size_t *len, struct bx_errbuf *eb)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC), ret = 0;

	if (fd < 0) {
		return bx_err(eb, ENOENT, "%s: cannot open: %s", path, bx_strerror(errno));
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		ret = bx_err(eb, EBADMSG, "%s: not a regular file", path);
		goto out_close;
	}
	*len = (size_t)st.st_size;
	*map = NULL;
	if (*len) {
		*map = mmap(NULL, *len, PROT_READ, MAP_PRIVATE, fd, 0);
		if (*map == MAP_FAILED) {
			*map = NULL;
			ret = bx_err(eb, ENOMEM, "%s: mmap: %s", path, bx_strerror(errno));
		} else {
			llm_hugepages(*map, *len); /* file THP where the kernel has it */
		}
	}
out_close:
	close(fd);
	return ret;
}

/*
 * Ask for transparent huge pages on a large weight buffer before it is
 * first written: decode streams every weight once a token, and 4 KiB pages
 * cost a TLB miss every 4 KiB of the stream. Best effort.
 */
void
llm_hugepages(void *p, size_t len)
{
	uintptr_t lo = ((uintptr_t)p + 4095) & ~(uintptr_t)4095;
	uintptr_t hi = ((uintptr_t)p + len) & ~(uintptr_t)4095;

	if (hi > lo) {
		madvise((void *)lo, hi - lo, MADV_HUGEPAGE);
	}
}

int
llm_model_alloc(struct bx_llm_model **out)
{
	struct bx_llm_model *m = bx_calloc(1, sizeof(*m));

	if (!m) {
		return -ENOMEM;
	}
	m->cfg.rope_base = 10000;
	m->cfg.rms_eps = 1e-5f;
	*out = m;
	return 0;
}

void
bx_llm_model_destroy(struct bx_llm_model *m)
{
	if (!m) {
		return;
	}
	if (m->map) {
		munmap(m->map, m->map_len);
	}
	bx_free(m->blob);
	bx_free(m->bf16s);
	bx_free(m->i8s);
	llm_dnnl_model_free(m->dnnl);
	bx_free(m->norms);
	bx_free(m->layers);
	llm_vocab_free(&m->vocab);
	bx_free(m);
}

const struct bx_llm_config *
bx_llm_model_config(const struct bx_llm_model *m)
{
	return &m->cfg;
}

static uint64_t
tensor_bytes(const struct llm_tensor *t)
{
	return (uint64_t)t->rows * bx_llm_row_bytes(t->type, t->cols);
}

uint64_t
bx_llm_model_weight_bytes(const struct bx_llm_model *m)
{
	uint64_t n = tensor_bytes(&m->out);

	for (uint32_t l = 0; l < m->cfg.n_layers; l++) {
		const struct llm_layer *y = &m->layers[l];

		n += tensor_bytes(&y->wq) + tensor_bytes(&y->wk) + tensor_bytes(&y->wv) +
		     tensor_bytes(&y->wo) + tensor_bytes(&y->w1) + tensor_bytes(&y->w2) +
		     tensor_bytes(&y->w3);
	}
	return n;
}

int
llm_config_check(const struct bx_llm_config *c, const char *name, struct bx_errbuf *eb)
{
	if (!c->dim || c->dim > LLM_DIM_MAX || !c->hidden_dim || c->hidden_dim > 4 * LLM_DIM_MAX ||
	    !c->n_layers || c->n_layers > LLM_LAYERS_MAX || !c->n_heads || !c->n_kv_heads ||
	    !c->vocab_size || c->vocab_size > LLM_VOCAB_MAX || !c->seq_len ||
	    c->seq_len > LLM_SEQ_MAX) {
		return bx_err(eb, EBADMSG,
		              "%s: shape out of range (dim %u hidden %u layers %u heads %u/%u "
		              "vocab %u seq %u)",
		              name, c->dim, c->hidden_dim, c->n_layers, c->n_heads, c->n_kv_heads,
		              c->vocab_size, c->seq_len);
	}
	if (c->dim % c->n_heads || c->n_heads % c->n_kv_heads || (c->dim / c->n_heads) % 2) {
		return bx_err(eb, EBADMSG, "%s: dim %u, %u heads and %u KV heads do not fit", name,
		              c->dim, c->n_heads, c->n_kv_heads);
	}
	if (!(c->rope_base > 0) || !(c->rms_eps > 0) || !isfinite(c->rope_base)) {
		return bx_err(eb, EBADMSG, "%s: bad rope base or RMS epsilon", name);
	}
	return 0;
}

static int
check_tensor(const struct llm_tensor *t, uint32_t rows, uint32_t cols, const char *what,
             const char *name, struct bx_errbuf *eb)
{
	if (!t->data) {
		return bx_err(eb, EBADMSG, "%s: tensor %s missing", name, what);
	}
	if (t->rows != rows || t->cols != cols) {
		return bx_err(eb, EBADMSG, "%s: tensor %s is [%u, %u], expected [%u, %u]", name,
		              what, t->cols, t->rows, cols, rows);
	}
	if (!llm_type_known(t->type) || !bx_llm_row_bytes(t->type, cols)) {
		return bx_err(eb, ENOTSUP, "%s: tensor %s has type %s with rows of %u", name, what,
		              bx_llm_type_name(t->type), cols);
	}
	return 0;
}

/* Every reader ends here: the config and each tensor's shape and type. */
int
llm_model_finish(struct bx_llm_model *m, const char *name, struct bx_errbuf *eb)
{
	struct bx_llm_config *c = &m->cfg;
	uint32_t d = c->dim, kv, hd;
	int ret;

	c->head_dim = c->n_heads ? c->dim / c->n_heads : 0;
	ret = llm_config_check(c, name, eb);
	if (ret) {
		return ret;
	}
	hd = c->head_dim;
	kv = hd * c->n_kv_heads;
	ret = check_tensor(&m->embd, c->vocab_size, d, "token_embd", name, eb);
	ret = ret ? ret : check_tensor(&m->out, c->vocab_size, d, "output", name, eb);
	for (uint32_t l = 0; !ret && l < c->n_layers; l++) {
		const struct llm_layer *y = &m->layers[l];

		ret = check_tensor(&y->wq, d, d, "attn_q", name, eb);
		ret = ret ? ret : check_tensor(&y->wk, kv, d, "attn_k", name, eb);
		ret = ret ? ret : check_tensor(&y->wv, kv, d, "attn_v", name, eb);
		ret = ret ? ret : check_tensor(&y->wo, d, d, "attn_output", name, eb);
		ret = ret ? ret : check_tensor(&y->w1, c->hidden_dim, d, "ffn_gate", name, eb);
		ret = ret ? ret : check_tensor(&y->w3, c->hidden_dim, d, "ffn_up", name, eb);
		ret = ret ? ret : check_tensor(&y->w2, d, c->hidden_dim, "ffn_down", name, eb);
		if (!ret && (!y->attn_norm || !y->ffn_norm)) {
			ret = bx_err(eb, EBADMSG, "%s: layer %u norm missing", name, l);
		}
	}
	if (!ret && !m->out_norm) {
		ret = bx_err(eb, EBADMSG, "%s: output_norm missing", name);
	}
	if (!ret && m->vocab.n && m->vocab.n != c->vocab_size) {
		ret = bx_err(eb, EBADMSG, "%s: tokenizer has %u pieces, model vocabulary %u", name,
		             m->vocab.n, c->vocab_size);
	}
	return ret;
}

/* ---- llama2.c ---- */

static const float *
take(const float **p, uint64_t n)
{
	const float *t = *p;

	*p += n;
	return t;
}

static void
l2c_tensor(struct llm_tensor *t, const float *data, uint32_t rows, uint32_t cols)
{
	t->data = data;
	t->type = BX_LLM_F32;
	t->rows = rows;
	t->cols = cols;
}

static void
l2c_layout(struct bx_llm_model *m, const float *w)
{
	const struct bx_llm_config *c = &m->cfg;
	uint64_t L = c->n_layers, D = c->dim, H = c->hidden_dim;
	uint64_t KV = (uint64_t)c->head_dim * c->n_kv_heads;
	const float *emb = take(&w, (uint64_t)c->vocab_size * D), *ra = take(&w, L * D);
	const float *wq = take(&w, L * D * D), *wk = take(&w, L * D * KV);
	const float *wv = take(&w, L * D * KV), *wo = take(&w, L * D * D);
	const float *rf = take(&w, L * D), *w1 = take(&w, L * H * D);
	const float *w2 = take(&w, L * D * H), *w3 = take(&w, L * H * D);

	m->out_norm = take(&w, D);
	take(&w, (uint64_t)c->seq_len * c->head_dim); /* freq_cis_real and _imag */
	l2c_tensor(&m->embd, emb, c->vocab_size, (uint32_t)D);
	l2c_tensor(&m->out, c->tied ? emb : w, c->vocab_size, (uint32_t)D);
	for (uint64_t l = 0; l < L; l++) {
		struct llm_layer *y = &m->layers[l];

		y->attn_norm = ra + l * D;
		y->ffn_norm = rf + l * D;
		l2c_tensor(&y->wq, wq + l * D * D, (uint32_t)D, (uint32_t)D);
		l2c_tensor(&y->wk, wk + l * D * KV, (uint32_t)KV, (uint32_t)D);
		l2c_tensor(&y->wv, wv + l * D * KV, (uint32_t)KV, (uint32_t)D);
		l2c_tensor(&y->wo, wo + l * D * D, (uint32_t)D, (uint32_t)D);
		l2c_tensor(&y->w1, w1 + l * H * D, (uint32_t)H, (uint32_t)D);
		l2c_tensor(&y->w2, w2 + l * D * H, (uint32_t)D, (uint32_t)H);
		l2c_tensor(&y->w3, w3 + l * H * D, (uint32_t)H, (uint32_t)D);
	}
}

static uint64_t
l2c_floats(const struct bx_llm_config *c)
{
	uint64_t L = c->n_layers, D = c->dim, H = c->hidden_dim;
	uint64_t KV = (uint64_t)c->head_dim * c->n_kv_heads;
	uint64_t n = (uint64_t)c->vocab_size * D * (c->tied ? 1 : 2);

	n += L * (2 * D + 2 * D * D + 2 * D * KV + 3 * D * H) + D;
	return n + (uint64_t)c->seq_len * c->head_dim;
}

static int
l2c_header(struct bx_llm_model *m, const char *path, struct bx_errbuf *eb)
{
	struct bx_llm_config *c = &m->cfg;
	int32_t h[7];
	uint64_t want;

	if (m->map_len < sizeof(h)) {
		return bx_err(eb, EBADMSG, "%s: %zu bytes, shorter than the 28-byte header", path,
		              m->map_len);
	}
	memcpy(h, m->map, sizeof(h));
	if (h[0] == 0x616b3432) {
		return bx_err(eb, ENOTSUP,
		              "%s: llama2.c version %d export; only the legacy format "
		              "is read",
		              path, h[1]);
	}
	for (int i = 0; i < 7; i++) {
		if (h[i] == 0 || (h[i] < 0 && i != 5) || h[i] == INT32_MIN) {
			return bx_err(eb, EBADMSG, "%s: header field %d is %d", path, i, h[i]);
		}
	}
	c->dim = (uint32_t)h[0];
	c->hidden_dim = (uint32_t)h[1];
	c->n_layers = (uint32_t)h[2];
	c->n_heads = (uint32_t)h[3];
	c->n_kv_heads = (uint32_t)h[4];
	c->tied = h[5] > 0;
	c->vocab_size = (uint32_t)(h[5] > 0 ? h[5] : -h[5]);
	c->seq_len = (uint32_t)h[6];
	c->rope = BX_LLM_ROPE_NORM;
	c->head_dim = c->dim / c->n_heads;
	if (llm_config_check(c, path, eb)) {
		return -EBADMSG;
	}
	want = sizeof(h) + 4 * l2c_floats(c);
	if (m->map_len != want) {
		return bx_err(eb, EBADMSG, "%s: %zu bytes, but its header implies %" PRIu64 " (%s)",
		              path, m->map_len, (uint64_t)want,
		              m->map_len < want ? "truncated" : "trailing bytes");
	}
	return 0;
}

/* tokenizer.bin: int32 max_token_length, then per token f32 score, int32 len, bytes. */
static int
l2c_tokenizer(struct llm_vocab *v, uint32_t n, const char *path, struct bx_errbuf *eb)
{
	void *map;
	size_t len, pos = 4, used = 0;
	int32_t maxlen;
	int ret = llm_map_file(path, &map, &len, eb);

	if (ret) {
		return ret;
	}
	if (len < 4) {
		ret = bx_err(eb, EBADMSG, "%s: truncated header", path);
		goto out_unmap;
	}
	memcpy(&maxlen, map, 4);
	if (maxlen <= 0 || maxlen > BX_LLM_PIECE_MAX) {
		ret = bx_err(eb, EBADMSG, "%s: max token length %d out of range", path, maxlen);
		goto out_unmap;
	}
	ret = llm_vocab_alloc(v, n, len);
	if (ret) {
		goto out_unmap;
	}
	for (uint32_t i = 0; i < n; i++) {
		float score;
		int32_t l;

		if (len - pos < 8) {
			ret = bx_err(eb, EBADMSG, "%s: truncated at token %u of %u", path, i, n);
			goto out_unmap;
		}
		memcpy(&score, (char *)map + pos, 4);
		memcpy(&l, (char *)map + pos + 4, 4);
		pos += 8;
		if (l < 0 || l > maxlen || (size_t)l > len - pos || !isfinite(score)) {
			ret = bx_err(eb, EBADMSG,
			             "%s: token %u: length %d or score bad at byte %zu", path, i, l,
			             pos - 8);
			goto out_unmap;
		}
		llm_vocab_set(v, i, (char *)map + pos, (size_t)l, score,
		              i == 0 ? LLM_TOK_UNKNOWN :
		              i < 3  ? LLM_TOK_CONTROL :
		                       LLM_TOK_NORMAL,
		              &used);
		pos += (size_t)l;
	}
	if (pos != len) {
		ret = bx_err(eb, EBADMSG, "%s: %zu trailing bytes after %u tokens", path, len - pos,
		             n);
		goto out_unmap;
	}
	v->unk = 0;
	v->bos = 1;
	v->eos = 2;
	ret = llm_vocab_index(v, path, eb);
out_unmap:
	if (map) {
		munmap(map, len);
	}
	return ret;
}

int
llm_model_open(const char *path, struct bx_llm_model **out, struct bx_errbuf *eb)
{
	struct bx_llm_model *m;
	int ret = llm_model_alloc(&m);

	if (ret) {
		return bx_err(eb, ENOMEM, "%s: out of memory", path);
	}
	ret = llm_map_file(path, &m->map, &m->map_len, eb);
	if (ret) {
		bx_llm_model_destroy(m);
		return ret;
	}
	*out = m;
	return 0;
}

int
bx_llm_load_llama2c(const char *path, const char *tok_path, struct bx_llm_model **out,
                    struct bx_errbuf *eb)
{
	struct bx_llm_model *m;
	int ret = llm_model_open(path, &m, eb);

	if (ret) {
		return ret;
	}
	ret = l2c_header(m, path, eb);
	if (ret) {
		goto out_destroy;
	}
	m->layers = bx_calloc(m->cfg.n_layers, sizeof(*m->layers));
	if (!m->layers) {
		ret = bx_err(eb, ENOMEM, "%s: out of memory", path);
		goto out_destroy;
	}
	l2c_layout(m, (const float *)((const char *)m->map + 28));
	if (tok_path) {
		ret = l2c_tokenizer(&m->vocab, m->cfg.vocab_size, tok_path, eb);
		if (ret) {
			goto out_destroy;
		}
	}
	snprintf(m->origin, sizeof(m->origin), "llama2.c");
	ret = llm_model_finish(m, path, eb);
	if (ret) {
		goto out_destroy;
	}
	*out = m;
	return 0;
out_destroy:
	bx_llm_model_destroy(m);
	return ret;
}

/* A model that holds only a tokenizer (no weights): for tokenizer tests and tools. */
int
llm_tokenizer_only(const char *tok_path, uint32_t vocab_size, struct bx_llm_model **out,
                   struct bx_errbuf *eb)
{
	struct bx_llm_model *m;
	int ret = llm_model_alloc(&m);

	if (ret) {
		return bx_err(eb, ENOMEM, "%s: out of memory", tok_path);
	}
	m->cfg.vocab_size = vocab_size;
	ret = l2c_tokenizer(&m->vocab, vocab_size, tok_path, eb);
	if (ret) {
		bx_llm_model_destroy(m);
		return ret;
	}
	*out = m;
	return 0;
}

/* ---- bf16 copies for batched steps ---- */

static struct llm_tensor *
nth_matrix(struct bx_llm_model *m, uint32_t i)
{
	struct llm_layer *y;

	if (i == 7 * m->cfg.n_layers) {
		return &m->out;
	}
	y = &m->layers[i / 7];
	switch (i % 7) {
	case 0:
		return &y->wq;
	case 1:
		return &y->wk;
	case 2:
		return &y->wv;
	case 3:
		return &y->wo;
	case 4:
		return &y->w1;
	case 5:
		return &y->w2;
	default:
		return &y->w3;
	}
}

int
bx_llm_model_pack_bf16(struct bx_llm_model *m, struct bx_errbuf *eb)
{
	uint32_t nm = 7 * m->cfg.n_layers + 1;
	uint64_t total = 0;
	uint16_t *p;
	float *row;

	if (!llm_have_bf16()) {
		return bx_err(eb, ENOTSUP, "this CPU has no AVX512-BF16");
	}
	if (m->bf16s) {
		return 0;
	}
	for (uint32_t i = 0; i < nm; i++) {
		total += (uint64_t)nth_matrix(m, i)->rows * llm_bf16_cols(nth_matrix(m, i)->cols);
	}
	row = bx_malloc(4 * (size_t)(m->cfg.hidden_dim + m->cfg.dim) * sizeof(float));
	m->bf16s = bx_aligned_alloc(64, total * 2 + 64);
	if (!row || !m->bf16s) {
		bx_free(row);
		bx_free(m->bf16s);
		m->bf16s = NULL;
		return bx_err(eb, ENOMEM, "bf16 copies: out of memory (%" PRIu64 " bytes)",
		              (uint64_t)total * 2);
	}
	p = m->bf16s;
	for (uint32_t i = 0; i < nm; i++) {
		struct llm_tensor *t = nth_matrix(m, i);
		size_t kp = llm_bf16_cols(t->cols);

		t->bf16 = p;
		for (uint32_t r = 0; r < t->rows; r++) {
			llm_row_f32(t, r, row);
			llm_to_bf16(row, t->cols, p + (size_t)r * kp);
		}
		p += (size_t)t->rows * kp;
	}
	bx_free(row);
	return 0;
}

int
bx_llm_model_pack_i8(struct bx_llm_model *m, struct bx_errbuf *eb)
{
	uint32_t nm = 7 * m->cfg.n_layers + 1;
	uint64_t total = 0;
	uint8_t *p;

	if (!llm_have_avx512()) {
		return bx_err(eb, ENOTSUP, "this CPU has no AVX-512 VNNI");
	}
	if (m->i8s) {
		return 0;
	}
	for (uint32_t i = 0; i < nm; i++) {
		total += llm_i8x16_bytes(nth_matrix(m, i));
	}
	m->i8s = bx_aligned_alloc(64, total + 64);
	if (m->i8s) {
		llm_hugepages(m->i8s, total);
	}
	if (!m->i8s) {
		return bx_err(eb, ENOMEM, "int8 copies: out of memory (%" PRIu64 " bytes)",
		              (uint64_t)total);
	}
	p = m->i8s;
	for (uint32_t i = 0; i < nm; i++) {
		struct llm_tensor *t = nth_matrix(m, i);
		size_t n = llm_i8x16_bytes(t);

		if (n) {
			llm_pack_i8x16(t, p);
			t->i8x16 = p;
			p += n;
		}
	}
	return 0;
}
