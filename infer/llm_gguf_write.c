/*
 * GGUF v3 writer: a loaded model (any origin) as a `llama` file, matrices
 * converted to one type, norms in F32, the tokenizer as
 * tokenizer.ggml.model = llama with U+2581 for spaces. The header is built
 * in memory; tensor data is converted a row at a time and streamed out.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "llm_int.h"

#define ALIGN 32

struct wbuf {
	uint8_t *p;
	size_t len, cap;
	bool oom;
};

static void
put(struct wbuf *b, const void *v, size_t n)
{
	if (b->oom) {
		return;
	}
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		uint8_t *p;

		while (cap < b->len + n) {
			cap *= 2;
		}
		p = realloc(b->p, cap);
		if (!p) {
			b->oom = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, v, n);
	b->len += n;
}

static void
put_u32(struct wbuf *b, uint32_t v)
{
	put(b, &v, 4);
}

static void
put_u64(struct wbuf *b, uint64_t v)
{
	put(b, &v, 8);
}

static void
put_str(struct wbuf *b, const char *s, size_t n)
{
	put_u64(b, n);
	put(b, s, n);
}

static void
kv_u32(struct wbuf *b, const char *key, uint32_t v)
{
	put_str(b, key, strlen(key));
	put_u32(b, 4); /* u32 */
	put_u32(b, v);
}

static void
kv_f32(struct wbuf *b, const char *key, float v)
{
	put_str(b, key, strlen(key));
	put_u32(b, 6); /* f32 */
	put(b, &v, 4);
}

static void
kv_string(struct wbuf *b, const char *key, const char *v)
{
	put_str(b, key, strlen(key));
	put_u32(b, 8); /* string */
	put_str(b, v, strlen(v));
}

/* A piece with spaces spelled U+2581, as SentencePiece vocabularies are in GGUF. */
static void
put_piece(struct wbuf *b, const char *p, size_t n)
{
	size_t sp = 0;

	for (size_t i = 0; i < n; i++) {
		sp += p[i] == ' ';
	}
	put_u64(b, n + 2 * sp);
	for (size_t i = 0; i < n; i++) {
		put(b, p[i] == ' ' ? "\xe2\x96\x81" : p + i, p[i] == ' ' ? 3 : 1);
	}
}

/* GPT-2's bytes_to_unicode: printable bytes stand for themselves, the rest from U+0100. */
static size_t
map_byte(uint8_t c, char *out)
{
	unsigned cp = c, n = 0;

	if (!((c >= '!' && c <= '~') || (c >= 0xa1 && c <= 0xac) || c >= 0xae)) {
		for (unsigned x = 0; x < c; x++) {
			n += !((x >= '!' && x <= '~') || (x >= 0xa1 && x <= 0xac) || x >= 0xae);
		}
		cp = 256 + n;
	}
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	out[0] = (char)(0xc0 | (cp >> 6));
	out[1] = (char)(0x80 | (cp & 0x3f));
	return 2;
}

static void
put_mapped(struct wbuf *b, const char *p, size_t n, bool with_len)
{
	char tmp[2];
	size_t len = 0;

	for (size_t i = 0; i < n; i++) {
		len += map_byte((uint8_t)p[i], tmp);
	}
	if (with_len) {
		put_u64(b, len);
	}
	for (size_t i = 0; i < n; i++) {
		put(b, tmp, map_byte((uint8_t)p[i], tmp));
	}
}

static int
cmp_u64(const void *x, const void *y)
{
	uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;

	return a < b ? -1 : a > b;
}

/* tokenizer.ggml.merges in rank order, each "A B" in mapped form. */
static void
kv_merges(struct wbuf *b, const struct llm_vocab *v)
{
	uint64_t n = 0, *order = malloc((v->nb_mhash + 1) * sizeof(*order));

	if (!order) {
		b->oom = true;
		return;
	}
	for (uint32_t h = 0; h < v->nb_mhash; h++) {
		if (v->mkey[h] != UINT64_MAX) {
			order[n++] = (v->mval[h] >> 32) << 32 | h; /* rank, then slot */
		}
	}
	qsort(order, n, sizeof(*order), cmp_u64);
	put_str(b, "tokenizer.ggml.merges", 21);
	put_u32(b, 9);
	put_u32(b, 8);
	put_u64(b, n);
	for (uint64_t i = 0; i < n; i++) {
		uint32_t h = (uint32_t)order[i];
		int32_t x = (int32_t)(v->mkey[h] >> 32), y = (int32_t)(uint32_t)v->mkey[h];
		char tmp[2];
		size_t len = 1;

		for (int k = 0; k < 2; k++) {
			int32_t t = k ? y : x;

			for (size_t j = 0; j < v->len[t]; j++) {
				len += map_byte((uint8_t)v->text[v->off[t] + j], tmp);
			}
		}
		put_u64(b, len);
		put_mapped(b, v->text + v->off[x], v->len[x], false);
		put(b, " ", 1);
		put_mapped(b, v->text + v->off[y], v->len[y], false);
	}
	free(order);
	kv_string(b, "tokenizer.ggml.pre", v->pre_llama3 ? "llama-bpe" : "gpt2");
}

static void
kv_vocab(struct wbuf *b, const struct llm_vocab *v)
{
	put_str(b, "tokenizer.ggml.model", 20);
	put_u32(b, 8);
	put_str(b, v->bpe ? "gpt2" : "llama", v->bpe ? 4 : 5);
	put_str(b, "tokenizer.ggml.tokens", 21);
	put_u32(b, 9);
	put_u32(b, 8);
	put_u64(b, v->n);
	for (uint32_t i = 0; i < v->n; i++) {
		if (v->bpe) {
			put_mapped(b, v->text + v->off[i], v->len[i], true);
		} else {
			put_piece(b, v->text + v->off[i], v->len[i]);
		}
	}
	put_str(b, "tokenizer.ggml.scores", 21);
	put_u32(b, 9);
	put_u32(b, 6);
	put_u64(b, v->n);
	put(b, v->score, 4 * (size_t)v->n);
	put_str(b, "tokenizer.ggml.token_type", 25);
	put_u32(b, 9);
	put_u32(b, 5);
	put_u64(b, v->n);
	for (uint32_t i = 0; i < v->n; i++) {
		put_u32(b, v->type[i]);
	}
	/* special ids: only those the vocabulary has (see vocab_keys) */
	if (v->bos >= 0) {
		kv_u32(b, "tokenizer.ggml.bos_token_id", (uint32_t)v->bos);
	}
	if (v->eos >= 0) {
		kv_u32(b, "tokenizer.ggml.eos_token_id", (uint32_t)v->eos);
	}
	if (v->unk >= 0) {
		kv_u32(b, "tokenizer.ggml.unknown_token_id", (uint32_t)v->unk);
	}
	if (v->bpe) {
		kv_merges(b, v);
	}
}

/* One tensor to write: a matrix (src) or a norm vector (vec). */
struct wt {
	char name[64];
	const struct llm_tensor *src;
	const float *vec;
	uint32_t rows, cols;
	enum bx_llm_type type;
	uint64_t offset, size;
};

static unsigned
list_tensors(const struct bx_llm_model *m, enum bx_llm_type type, struct wt *t)
{
	static const char *const names[] = { "attn_q",   "attn_k",   "attn_v", "attn_output",
		                             "ffn_gate", "ffn_down", "ffn_up" };
	const struct bx_llm_config *c = &m->cfg;
	unsigned n = 0;

	t[n++] = (struct wt){ .name = "token_embd.weight", .src = &m->embd };
	t[n++] = (struct wt){ .name = "output_norm.weight", .vec = m->out_norm };
	if (!c->tied) {
		t[n++] = (struct wt){ .name = "output.weight", .src = &m->out };
	}
	for (uint32_t l = 0; l < c->n_layers; l++) {
		const struct llm_layer *y = &m->layers[l];
		const struct llm_tensor *src[] = { &y->wq, &y->wk, &y->wv, &y->wo,
			                           &y->w1, &y->w2, &y->w3 };

		t[n] = (struct wt){ .vec = y->attn_norm };
		snprintf(t[n++].name, 64, "blk.%u.attn_norm.weight", l);
		t[n] = (struct wt){ .vec = y->ffn_norm };
		snprintf(t[n++].name, 64, "blk.%u.ffn_norm.weight", l);
		for (unsigned i = 0; i < BX_ARRAY_SIZE(names); i++) {
			t[n] = (struct wt){ .src = src[i] };
			snprintf(t[n++].name, 64, "blk.%u.%s.weight", l, names[i]);
		}
	}
	for (unsigned i = 0; i < n; i++) {
		t[i].rows = t[i].src ? t[i].src->rows : 1;
		t[i].cols = t[i].src ? t[i].src->cols : c->dim;
		t[i].type = t[i].src && bx_llm_row_bytes(type, t[i].cols) ? type : BX_LLM_F32;
		/*
		 * As llama.cpp does, 4-bit files keep the token embedding and the
		 * output layer at 8 bits: errors there reach every logit.
		 */
		if (t[i].src && (t[i].src == &m->embd || t[i].src == &m->out) &&
		    (type == BX_LLM_Q4_0 || type == BX_LLM_Q4_1 || type == BX_LLM_Q4_K) &&
		    bx_llm_row_bytes(BX_LLM_Q8_0, t[i].cols)) {
			t[i].type = BX_LLM_Q8_0;
		}
		t[i].size = (uint64_t)t[i].rows * bx_llm_row_bytes(t[i].type, t[i].cols);
	}
	return n;
}

static uint32_t
file_type(enum bx_llm_type type)
{
	switch (type) {
	case BX_LLM_F16:
		return 1;
	case BX_LLM_Q4_0:
		return 2;
	case BX_LLM_Q4_1:
		return 3;
	case BX_LLM_Q8_0:
		return 7;
	case BX_LLM_Q4_K:
		return 14;
	case BX_LLM_BF16:
		return 32;
	case BX_LLM_Q6_K:
		return 18;
	default:
		return 0;
	}
}

/* How many keys kv_vocab writes. */
static unsigned
vocab_keys(const struct llm_vocab *v)
{
	if (!v->n) {
		return 0;
	}
	return 4 + (v->bos >= 0) + (v->eos >= 0) + (v->unk >= 0) + (v->bpe ? 2 : 0);
}

static void
header(struct wbuf *b, const struct bx_llm_model *m, enum bx_llm_type type, struct wt *t,
       unsigned nt)
{
	const struct bx_llm_config *c = &m->cfg;
	uint64_t off = 0;

	put_u32(b, 0x46554747u);
	put_u32(b, 3);
	put_u64(b, nt);
	put_u64(b, 14 + vocab_keys(&m->vocab)); /* keys below */
	kv_string(b, "general.architecture", "llama");
	kv_string(b, "general.name", m->origin[0] ? m->origin : "bx");
	kv_u32(b, "general.alignment", ALIGN);
	kv_u32(b, "general.file_type", file_type(type));
	kv_u32(b, "general.quantization_version", 2);
	kv_u32(b, "llama.context_length", c->seq_len);
	kv_u32(b, "llama.embedding_length", c->dim);
	kv_u32(b, "llama.block_count", c->n_layers);
	kv_u32(b, "llama.feed_forward_length", c->hidden_dim);
	kv_u32(b, "llama.attention.head_count", c->n_heads);
	kv_u32(b, "llama.attention.head_count_kv", c->n_kv_heads);
	kv_u32(b, "llama.rope.dimension_count", c->head_dim);
	kv_f32(b, "llama.rope.freq_base", c->rope_base);
	kv_f32(b, "llama.attention.layer_norm_rms_epsilon", c->rms_eps);
	if (m->vocab.n) {
		kv_vocab(b, &m->vocab);
	}
	for (unsigned i = 0; i < nt; i++) {
		put_str(b, t[i].name, strlen(t[i].name));
		put_u32(b, t[i].src ? 2 : 1);
		put_u64(b, t[i].cols);
		if (t[i].src) {
			put_u64(b, t[i].rows);
		}
		put_u32(b, t[i].type);
		t[i].offset = off;
		put_u64(b, off);
		off += (t[i].size + ALIGN - 1) / ALIGN * ALIGN;
	}
	while (b->len % ALIGN) {
		put(b, "", 1);
	}
}

static int
write_all(int fd, const void *p, size_t n)
{
	const uint8_t *q = p;

	while (n) {
		ssize_t w = write(fd, q, n);

		if (w < 0 && errno == EINTR) {
			continue;
		}
		if (w <= 0) {
			return -EIO;
		}
		q += w;
		n -= (size_t)w;
	}
	return 0;
}

/* A layer matrix through GPTQ: 0 written, 1 not for GPTQ (write it plainly), or -errno. */
static int
write_gptq(int fd, const struct wt *t, const struct bx_llm_model *m, struct llm_calib *cal)
{
	size_t bytes = (size_t)t->rows * bx_llm_row_bytes(t->type, t->cols);
	uint8_t *q;
	int ret;

	if (!cal || !t->src || t->src->type == t->type) {
		return 1;
	}
	q = malloc(bytes);
	if (!q) {
		return -ENOMEM;
	}
	ret = llm_gptq(cal, m, t->src, t->type, q);
	if (ret == 0) {
		ret = write_all(fd, q, bytes);
	}
	free(q);
	return ret == -ENOENT || ret == -EDOM ? 1 : ret;
}

/* Convert one tensor row by row (raw copy when the type already matches). */
static int
write_tensor(int fd, const struct wt *t, float *row, uint8_t *qrow, const struct bx_llm_model *m,
             struct llm_calib *cal)
{
	size_t rb = bx_llm_row_bytes(t->type, t->cols);
	static const uint8_t zero[ALIGN];
	int ret = write_gptq(fd, t, m, cal);

	if (ret <= 0) {
		goto pad;
	}
	ret = 0;
	for (uint32_t r = 0; r < t->rows && !ret; r++) {
		if (t->vec) {
			ret = write_all(fd, t->vec, rb);
		} else if (t->src->type == t->type) {
			ret = write_all(fd, (const uint8_t *)t->src->data + (size_t)r * rb, rb);
		} else {
			llm_row_f32(t->src, r, row);
			bx_llm_quantize(t->type, row, t->cols, qrow);
			ret = write_all(fd, qrow, rb);
		}
	}
pad:
	if (!ret && t->size % ALIGN) {
		ret = write_all(fd, zero, ALIGN - t->size % ALIGN);
	}
	return ret;
}

int
bx_llm_write_gguf(const struct bx_llm_model *m, enum bx_llm_type type, const char *path,
                  struct bx_errbuf *eb)
{
	return bx_llm_write_gguf_opts(m, type, path, NULL, eb);
}

int
bx_llm_write_gguf_opts(const struct bx_llm_model *m, enum bx_llm_type type, const char *path,
                       const struct bx_llm_write_opts *o, struct bx_errbuf *eb)
{
	unsigned nt = 3 + 9 * m->cfg.n_layers;
	struct llm_calib *cal = NULL;
	struct wt *t = calloc(nt, sizeof(*t));
	float *row = malloc(2 * (size_t)(m->cfg.hidden_dim + m->cfg.dim) * sizeof(float));
	struct wbuf b = { 0 };
	int fd = -1, ret = 0;

	if (type != BX_LLM_F32 && type != BX_LLM_F16 && type != BX_LLM_BF16 &&
	    type != BX_LLM_Q8_0 && type != BX_LLM_Q4_0 && type != BX_LLM_Q4_1 &&
	    type != BX_LLM_Q4_K && type != BX_LLM_Q6_K) {
		ret = bx_err(eb, EINVAL, "%s: cannot write type %s", path, bx_llm_type_name(type));
		goto out_free;
	}
	if (!t || !row) {
		ret = bx_err(eb, ENOMEM, "%s: out of memory", path);
		goto out_free;
	}
	if (o && o->calib_tokens &&
	    (type == BX_LLM_Q8_0 || type == BX_LLM_Q4_0 || type == BX_LLM_Q4_1) &&
	    (ret = llm_calib_run(m, o->calib_tokens, o->calib_seed, &cal, eb)) != 0) {
		goto out_free;
	}
	nt = list_tensors(m, type, t);
	header(&b, m, type, t, nt);
	if (b.oom) {
		ret = bx_err(eb, ENOMEM, "%s: out of memory", path);
		goto out_free;
	}
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		ret = bx_err(eb, EIO, "%s: cannot create: %s", path, bx_strerror(errno));
		goto out_free;
	}
	ret = write_all(fd, b.p, b.len);
	for (unsigned i = 0; i < nt && !ret; i++) {
		ret = write_tensor(fd, &t[i], row,
		                   (uint8_t *)(row + m->cfg.hidden_dim + m->cfg.dim), m, cal);
	}
	if (close(fd) < 0 || ret) {
		ret = bx_err(eb, EIO, "%s: write failed", path);
	}
out_free:
	llm_calib_free(cal);
	free(b.p);
	free(row);
	free(t);
	return ret;
}
