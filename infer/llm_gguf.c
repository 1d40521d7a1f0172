/*
 * GGUF reader (ggml docs/gguf.md), validated fully before anything is used:
 *
 *   u32 magic "GGUF", u32 version (3; 2 read too), u64 tensor_count,
 *   u64 kv_count, then kv pairs {string key, u32 type, value}, then tensor
 *   infos {string name, u32 n_dims, u64 dims[n_dims], u32 type, u64 offset},
 *   then padding to general.alignment (default 32), then the data section.
 *
 * Strings are u64 length + bytes; arrays are u32 element type, u64 count,
 * elements, and may nest. Some writers (and version 1) use u32 for counts
 * and lengths: when the u64 header counts cannot fit in the file, the file
 * is read again with u32 ones. Every read is bounds-checked against the
 * mapping, so a truncated or inconsistent file is an error naming the file
 * and the first problem, never a crash.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llm_int.h"

#define GGUF_MAGIC     0x46554747u
#define GGUF_DEPTH_MAX 4
#define GGUF_NAME_MAX  256
#define GGUF_KEY_MAX   65535
#define GGUF_NDIMS_MAX 4

enum gguf_vt {
	VT_U8,
	VT_I8,
	VT_U16,
	VT_I16,
	VT_U32,
	VT_I32,
	VT_F32,
	VT_BOOL,
	VT_STRING,
	VT_ARRAY,
	VT_U64,
	VT_I64,
	VT_F64,
	VT_MAX
};

struct gguf_str {
	const char *p;
	uint64_t len;
};

struct gguf_kv {
	struct gguf_str key;
	uint32_t type;
	const uint8_t *val; /* the value (for arrays: the first element) */
	uint32_t atype;     /* arrays: element type */
	uint64_t n;         /* arrays: element count */
};

struct gguf_ti {
	struct gguf_str name;
	uint32_t n_dims;
	uint64_t dims[GGUF_NDIMS_MAX];
	uint32_t type;
	uint64_t offset, size;
};

struct gguf {
	const char *path;
	struct bx_errbuf *eb;
	const uint8_t *base, *p, *end;
	bool narrow; /* u32 counts and lengths */
	uint32_t version;
	uint64_t nb_kv, nb_ti, align;
	struct gguf_kv *kv;
	struct gguf_ti *ti;
	const uint8_t *data;
	uint64_t data_len;
};

static int
bad(struct gguf *g, const char *what)
{
	return bx_err(g->eb, EBADMSG, "%s: %s at byte %zu", g->path, what,
	              (size_t)(g->p - g->base));
}

static int
rd(struct gguf *g, void *out, size_t n, const char *what)
{
	if ((size_t)(g->end - g->p) < n) {
		return bad(g, what);
	}
	memcpy(out, g->p, n);
	g->p += n;
	return 0;
}

static int
rd_count(struct gguf *g, uint64_t *out, const char *what)
{
	uint32_t v32 = 0;

	if (g->narrow) {
		int ret = rd(g, &v32, 4, what);

		*out = v32;
		return ret;
	}
	return rd(g, out, 8, what);
}

static int
rd_str(struct gguf *g, struct gguf_str *s, uint64_t max, const char *what)
{
	if (rd_count(g, &s->len, what)) {
		return -EBADMSG;
	}
	if (s->len > max || s->len > (uint64_t)(g->end - g->p)) {
		return bad(g, what);
	}
	s->p = (const char *)g->p;
	g->p += s->len;
	return 0;
}

static size_t
vt_size(uint32_t t)
{
	static const uint8_t sz[VT_MAX] = { 1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8 };

	return t < VT_MAX ? sz[t] : 0;
}

/* Skip over one value of type t, checking it (arrays recursively). */
static int
skip_value(struct gguf *g, uint32_t t, int depth)
{
	struct gguf_str s;
	uint32_t at = 0;
	uint64_t n = 0;

	if (t == VT_STRING) {
		return rd_str(g, &s, UINT64_MAX, "string past the end");
	}
	if (t != VT_ARRAY) {
		if (t >= VT_MAX) {
			return bad(g, "unknown value type");
		}
		if ((size_t)(g->end - g->p) < vt_size(t)) {
			return bad(g, "value past the end");
		}
		if (t == VT_BOOL && *g->p > 1) {
			return bad(g, "bool is neither 0 nor 1");
		}
		g->p += vt_size(t);
		return 0;
	}
	if (depth >= GGUF_DEPTH_MAX) {
		return bad(g, "arrays nested too deep");
	}
	if (rd(g, &at, 4, "array type past the end") ||
	    rd_count(g, &n, "array count past the end")) {
		return -EBADMSG;
	}
	if (at >= VT_MAX) {
		return bad(g, "unknown array element type");
	}
	if (vt_size(at)) {
		if (n > (uint64_t)(g->end - g->p) / vt_size(at)) {
			return bad(g, "array past the end");
		}
		if (at == VT_BOOL) {
			for (uint64_t i = 0; i < n; i++) {
				if (g->p[i] > 1) {
					return bad(g, "bool is neither 0 nor 1");
				}
			}
		}
		g->p += n * vt_size(at);
		return 0;
	}
	for (uint64_t i = 0; i < n; i++) {
		if (skip_value(g, at, depth + 1)) {
			return -EBADMSG;
		}
	}
	return 0;
}

static int
parse_kvs(struct gguf *g)
{
	for (uint64_t i = 0; i < g->nb_kv; i++) {
		struct gguf_kv *kv = &g->kv[i];

		if (rd_str(g, &kv->key, GGUF_KEY_MAX, "key past the end") ||
		    rd(g, &kv->type, 4, "value type past the end")) {
			return -EBADMSG;
		}
		for (uint64_t j = 0; j < i; j++) {
			if (g->kv[j].key.len == kv->key.len &&
			    !memcmp(g->kv[j].key.p, kv->key.p, kv->key.len)) {
				return bx_err(g->eb, EBADMSG, "%s: key %.*s repeated", g->path,
				              (int)kv->key.len, kv->key.p);
			}
		}
		kv->val = g->p;
		if (kv->type == VT_ARRAY && (size_t)(g->end - g->p) >= (g->narrow ? 8u : 12u)) {
			memcpy(&kv->atype, g->p, 4);
			kv->n = 0;
			memcpy(&kv->n, g->p + 4, g->narrow ? 4 : 8);
		}
		if (skip_value(g, kv->type, 0)) {
			char why[sizeof(g->eb->msg)];

			snprintf(why, sizeof(why), "%s", g->eb ? g->eb->msg : "");
			return bx_err(g->eb, EBADMSG, "key %.*s: %s", (int)BX_MIN(kv->key.len, 64u),
			              kv->key.p, why);
		}
		if (kv->type == VT_ARRAY) {
			kv->val += 4 + (g->narrow ? 4 : 8);
		}
	}
	return 0;
}

static const struct gguf_kv *
find_kv(const struct gguf *g, const char *key)
{
	size_t n = strlen(key);

	for (uint64_t i = 0; i < g->nb_kv; i++) {
		if (g->kv[i].key.len == n && !memcmp(g->kv[i].key.p, key, n)) {
			return &g->kv[i];
		}
	}
	return NULL;
}

/* An integer of any integer type, in [0, max]. -ENOENT when absent (def applies). */
static int
kv_uint(const struct gguf *g, const char *key, uint64_t max, uint64_t def, uint64_t *out)
{
	const struct gguf_kv *kv = find_kv(g, key);
	int64_t s = 0;
	uint64_t u = 0;

	*out = def;
	if (!kv) {
		return -ENOENT;
	}
	switch (kv->type) {
	case VT_U8:
	case VT_U16:
	case VT_U32:
	case VT_U64:
		memcpy(&u, kv->val, vt_size(kv->type)); /* little-endian */
		break;
	case VT_I8:
	case VT_I16:
	case VT_I32:
	case VT_I64:
		memcpy(&u, kv->val, vt_size(kv->type));
		s = kv->type == VT_I8  ? (int8_t)u :
		    kv->type == VT_I16 ? (int16_t)u :
		    kv->type == VT_I32 ? (int32_t)u :
		                         (int64_t)u;
		if (s < 0) {
			return bx_err(g->eb, EBADMSG, "%s: %s is negative", g->path, key);
		}
		u = (uint64_t)s;
		break;
	default:
		return bx_err(g->eb, EBADMSG, "%s: %s is not an integer", g->path, key);
	}
	if (u > max) {
		return bx_err(g->eb, EBADMSG, "%s: %s = %" PRIu64 " out of range", g->path, key,
		              (uint64_t)u);
	}
	*out = u;
	return 0;
}

static int
kv_float(const struct gguf *g, const char *key, float def, float *out)
{
	const struct gguf_kv *kv = find_kv(g, key);

	*out = def;
	if (!kv) {
		return 0;
	}
	if (kv->type == VT_F32) {
		memcpy(out, kv->val, 4);
	} else if (kv->type == VT_F64) {
		double d;

		memcpy(&d, kv->val, 8);
		*out = (float)d;
	} else {
		return bx_err(g->eb, EBADMSG, "%s: %s is not a float", g->path, key);
	}
	if (!isfinite(*out)) {
		return bx_err(g->eb, EBADMSG, "%s: %s is not finite", g->path, key);
	}
	return 0;
}

/* The string value of key (NULL when absent or not a string). */
static const char *
kv_str(const struct gguf *g, const char *key, uint64_t *len)
{
	const struct gguf_kv *kv = find_kv(g, key);
	uint64_t n = 0;

	if (!kv || kv->type != VT_STRING) {
		return NULL;
	}
	memcpy(&n, kv->val, g->narrow ? 4 : 8);
	*len = n;
	return (const char *)kv->val + (g->narrow ? 4 : 8);
}

static int
parse_tensor_infos(struct gguf *g)
{
	for (uint64_t i = 0; i < g->nb_ti; i++) {
		struct gguf_ti *t = &g->ti[i];
		uint64_t rows = 1;
		size_t rb;

		if (rd_str(g, &t->name, GGUF_NAME_MAX, "tensor name past the end or too long") ||
		    rd(g, &t->n_dims, 4, "tensor info past the end")) {
			return -EBADMSG;
		}
		if (!t->n_dims || t->n_dims > GGUF_NDIMS_MAX) {
			return bx_err(g->eb, EBADMSG, "%s: tensor %.*s has %u dimensions", g->path,
			              (int)t->name.len, t->name.p, t->n_dims);
		}
		if (rd(g, t->dims, (size_t)8 * t->n_dims, "tensor dims past the end") ||
		    rd(g, &t->type, 4, "tensor type past the end") ||
		    rd(g, &t->offset, 8, "tensor offset past the end")) {
			return -EBADMSG;
		}
		for (uint32_t d = 0; d < t->n_dims; d++) {
			if (!t->dims[d] || t->dims[d] > UINT32_MAX ||
			    (d && rows > UINT64_MAX / t->dims[d])) {
				return bx_err(g->eb, EBADMSG,
				              "%s: tensor %.*s: dimension %u is %" PRIu64, g->path,
				              (int)t->name.len, t->name.p, d, (uint64_t)t->dims[d]);
			}
			rows *= d ? t->dims[d] : 1;
		}
		if (!llm_type_known((enum bx_llm_type)t->type)) {
			return bx_err(g->eb, ENOTSUP, "%s: tensor %.*s has type %s (%u), not read",
			              g->path, (int)t->name.len, t->name.p,
			              bx_llm_type_name((enum bx_llm_type)t->type), t->type);
		}
		rb = bx_llm_row_bytes((enum bx_llm_type)t->type, t->dims[0]);
		if (!rb || rows > UINT64_MAX / rb) {
			return bx_err(g->eb, EBADMSG,
			              "%s: tensor %.*s: rows of %" PRIu64 " do not fit %s", g->path,
			              (int)t->name.len, t->name.p, (uint64_t)t->dims[0],
			              bx_llm_type_name((enum bx_llm_type)t->type));
		}
		t->size = rows * rb;
		for (uint64_t j = 0; j < i; j++) {
			if (g->ti[j].name.len == t->name.len &&
			    !memcmp(g->ti[j].name.p, t->name.p, t->name.len)) {
				return bx_err(g->eb, EBADMSG, "%s: tensor %.*s repeated", g->path,
				              (int)t->name.len, t->name.p);
			}
		}
	}
	return 0;
}

static int
cmp_offset(const void *a, const void *b)
{
	const struct gguf_ti *x = *(const struct gguf_ti *const *)a;
	const struct gguf_ti *y = *(const struct gguf_ti *const *)b;

	return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* Offsets aligned, each tensor inside the data section, no two overlapping. */
static int
check_data(struct gguf *g)
{
	uint64_t pos = (uint64_t)(g->p - g->base),
		 start = pos + (g->align - pos % g->align) % g->align;
	const struct gguf_ti **order;
	int ret = 0;

	if (start > (uint64_t)(g->end - g->base)) {
		if (g->nb_ti) {
			return bad(g, "data section past the end");
		}
		start = (uint64_t)(g->end - g->base); /* no tensors: no data, padding optional */
	}
	g->data = g->base + start;
	g->data_len = (uint64_t)(g->end - g->data);
	order = malloc((g->nb_ti + 1) * sizeof(const struct gguf_ti *));
	if (!order) {
		return bx_err(g->eb, ENOMEM, "%s: out of memory", g->path);
	}
	for (uint64_t i = 0; i < g->nb_ti; i++) {
		const struct gguf_ti *t = &g->ti[i];

		order[i] = t;
		if (t->offset % g->align) {
			ret = bx_err(g->eb, EBADMSG,
			             "%s: tensor %.*s: offset %" PRIu64 " not a multiple of "
			             "the alignment %" PRIu64,
			             g->path, (int)t->name.len, t->name.p, (uint64_t)t->offset,
			             (uint64_t)g->align);
			goto out_free;
		}
		if (t->offset > g->data_len || t->size > g->data_len - t->offset) {
			ret = bx_err(g->eb, EBADMSG,
			             "%s: tensor %.*s: %" PRIu64 " bytes at %" PRIu64 ", past the "
			             "end of the data (%" PRIu64 " bytes)",
			             g->path, (int)t->name.len, t->name.p, (uint64_t)t->size,
			             (uint64_t)t->offset, (uint64_t)g->data_len);
			goto out_free;
		}
	}
	qsort(order, g->nb_ti, sizeof(const struct gguf_ti *), cmp_offset);
	for (uint64_t i = 1; i < g->nb_ti; i++) {
		if (order[i - 1]->offset + order[i - 1]->size > order[i]->offset) {
			ret = bx_err(g->eb, EBADMSG, "%s: tensors %.*s and %.*s overlap", g->path,
			             (int)order[i - 1]->name.len, order[i - 1]->name.p,
			             (int)order[i]->name.len, order[i]->name.p);
			goto out_free;
		}
	}
out_free:
	free(order);
	return ret;
}

/* Header counts: u64, or u32 for version 1 and for writers that use u32 counts. */
static int
parse_header(struct gguf *g)
{
	uint32_t magic = 0, c32[2] = { 0, 0 };
	uint64_t left;

	if (rd(g, &magic, 4, "truncated header") || rd(g, &g->version, 4, "truncated header")) {
		return -EBADMSG;
	}
	if (magic != GGUF_MAGIC) {
		return bx_err(g->eb, EBADMSG, "%s: not a GGUF file (bad magic)", g->path);
	}
	if (g->version < 1 || g->version > 3) {
		return bx_err(g->eb, ENOTSUP, "%s: GGUF version %u, only 1 to 3 are read", g->path,
		              g->version);
	}
	g->narrow = g->version == 1;
	if (!g->narrow &&
	    (rd(g, &g->nb_ti, 8, "truncated header") || rd(g, &g->nb_kv, 8, "truncated header"))) {
		return -EBADMSG;
	}
	left = (uint64_t)(g->end - g->p);
	if (g->narrow || g->nb_ti > left / 24 || g->nb_kv > left / 12) {
		g->narrow = true;
		g->p = g->base + 8;
		if (rd(g, c32, 8, "truncated header")) {
			return -EBADMSG;
		}
		g->nb_ti = c32[0];
		g->nb_kv = c32[1];
		left = (uint64_t)(g->end - g->p);
	}
	if (g->nb_ti > left / 20 || g->nb_kv > left / 8) {
		return bad(g, "tensor or key count past the end");
	}
	return 0;
}

static int
gguf_parse(struct gguf *g)
{
	uint64_t align;
	int ret = parse_header(g);

	if (ret) {
		return ret;
	}
	g->kv = calloc(g->nb_kv + 1, sizeof(*g->kv));
	g->ti = calloc(g->nb_ti + 1, sizeof(*g->ti));
	if (!g->kv || !g->ti) {
		return bx_err(g->eb, ENOMEM, "%s: out of memory", g->path);
	}
	ret = parse_kvs(g);
	if (ret) {
		return ret;
	}
	ret = kv_uint(g, "general.alignment", UINT32_MAX, 32, &align);
	if (ret && ret != -ENOENT) {
		return ret;
	}
	if (!align || align % 8) {
		return bx_err(g->eb, EBADMSG,
		              "%s: general.alignment %" PRIu64 " is not a multiple of 8", g->path,
		              (uint64_t)align);
	}
	g->align = align;
	ret = parse_tensor_infos(g);
	return ret ? ret : check_data(g);
}

/* ---- from the parsed file to a model ---- */

static const struct gguf_ti *
find_ti(const struct gguf *g, const char *name)
{
	size_t n = strlen(name);

	for (uint64_t i = 0; i < g->nb_ti; i++) {
		if (g->ti[i].name.len == n && !memcmp(g->ti[i].name.p, name, n)) {
			return &g->ti[i];
		}
	}
	return NULL;
}

/* A matrix [rows, cols] (GGUF dims [cols, rows]); absent leaves t empty. */
static int
get_matrix(const struct gguf *g, const char *name, struct llm_tensor *t)
{
	const struct gguf_ti *ti = find_ti(g, name);

	memset(t, 0, sizeof(*t));
	if (!ti) {
		return 0;
	}
	if (ti->n_dims > 2) {
		for (uint32_t d = 2; d < ti->n_dims; d++) {
			if (ti->dims[d] != 1) {
				return bx_err(g->eb, EBADMSG, "%s: tensor %s has %u dimensions",
				              g->path, name, ti->n_dims);
			}
		}
	}
	t->data = g->data + ti->offset;
	t->type = (enum bx_llm_type)ti->type;
	t->cols = (uint32_t)ti->dims[0];
	t->rows = ti->n_dims > 1 ? (uint32_t)ti->dims[1] : 1;
	return 0;
}

/* A norm vector of dim values, converted to f32 into dst. */
static int
get_norm(const struct gguf *g, const char *name, uint32_t dim, float *dst, const float **out)
{
	struct llm_tensor t;
	int ret = get_matrix(g, name, &t);

	if (ret) {
		return ret;
	}
	if (!t.data) {
		return bx_err(g->eb, EBADMSG, "%s: tensor %s missing", g->path, name);
	}
	if (t.cols != dim || t.rows != 1) {
		return bx_err(g->eb, EBADMSG, "%s: tensor %s is [%u, %u], expected [%u]", g->path,
		              name, t.cols, t.rows, dim);
	}
	bx_llm_dequantize(t.type, t.data, dim, dst);
	*out = dst;
	return 0;
}

static int
read_config(struct gguf *g, struct bx_llm_config *c)
{
	static const char *const keys[] = { "llama.embedding_length", "llama.feed_forward_length",
		                            "llama.block_count", "llama.attention.head_count",
		                            "llama.context_length" };
	uint32_t *dst[] = { &c->dim, &c->hidden_dim, &c->n_layers, &c->n_heads, &c->seq_len };
	uint64_t len = 0, v;
	const char *arch = kv_str(g, "general.architecture", &len);
	int ret;

	if (!arch || len != 5 || memcmp(arch, "llama", 5) != 0) {
		return bx_err(g->eb, ENOTSUP,
		              "%s: general.architecture is %.*s, only llama is read", g->path,
		              arch ? (int)BX_MIN(len, 64u) : 7, arch ? arch : "missing");
	}
	for (unsigned i = 0; i < BX_ARRAY_SIZE(keys); i++) {
		ret = kv_uint(g, keys[i], UINT32_MAX, 0, &v);
		if (ret) {
			return ret == -ENOENT ?
			               bx_err(g->eb, EBADMSG, "%s: %s missing", g->path, keys[i]) :
			               ret;
		}
		*dst[i] = (uint32_t)v;
	}
	c->seq_len = BX_MIN(c->seq_len, LLM_SEQ_MAX);
	ret = kv_uint(g, "llama.attention.head_count_kv", UINT32_MAX, c->n_heads, &v);
	if (ret && ret != -ENOENT) {
		return ret;
	}
	c->n_kv_heads = (uint32_t)v;
	ret = kv_float(g, "llama.rope.freq_base", 10000, &c->rope_base);
	ret = ret ? ret : kv_float(g, "llama.attention.layer_norm_rms_epsilon", 1e-5f, &c->rms_eps);
	if (ret) {
		return ret;
	}
	ret = kv_uint(g, "llama.rope.dimension_count", UINT32_MAX, 0, &v);
	if (ret && ret != -ENOENT) {
		return ret;
	}
	if (!ret && c->n_heads && v != c->dim / c->n_heads) {
		return bx_err(g->eb, ENOTSUP, "%s: partial RoPE (%" PRIu64 " of %u) not supported",
		              g->path, (uint64_t)v, c->dim / c->n_heads);
	}
	c->rope = BX_LLM_ROPE_NORM; /* GGUF llama: adjacent pairs (convert_hf permutes q, k) */
	return 0;
}

static int
read_layers(struct gguf *g, struct bx_llm_model *m)
{
	static const char *const names[] = { "attn_q",   "attn_k",   "attn_v", "attn_output",
		                             "ffn_gate", "ffn_down", "ffn_up" };
	const struct bx_llm_config *c = &m->cfg;
	char name[96];
	int ret = 0;

	for (uint32_t l = 0; l < c->n_layers && !ret; l++) {
		struct llm_layer *y = &m->layers[l];
		struct llm_tensor *dst[] = {
			&y->wq, &y->wk, &y->wv, &y->wo, &y->w1, &y->w2, &y->w3
		};

		for (unsigned i = 0; i < BX_ARRAY_SIZE(names) && !ret; i++) {
			snprintf(name, sizeof(name), "blk.%u.%s.weight", l, names[i]);
			ret = get_matrix(g, name, dst[i]);
		}
		snprintf(name, sizeof(name), "blk.%u.attn_norm.weight", l);
		ret = ret ? ret :
		            get_norm(g, name, c->dim, m->norms + (size_t)(2 * l) * c->dim,
		                     &y->attn_norm);
		snprintf(name, sizeof(name), "blk.%u.ffn_norm.weight", l);
		ret = ret ? ret :
		            get_norm(g, name, c->dim, m->norms + (size_t)(2 * l + 1) * c->dim,
		                     &y->ffn_norm);
	}
	return ret;
}

/* A token's bytes: as stored (SentencePiece), or mapped back from GPT-2's byte map. */
static const char *
piece(bool bpe, const uint8_t *p, uint64_t *n, char *raw)
{
	if (!bpe) {
		return (const char *)p;
	}
	*n = llm_bpe_unmap((const char *)p, *n, raw);
	return raw;
}

/* tokenizer.ggml.merges: "A B" strings, rank = index; A, B and AB must be tokens. */
static int
read_merges(struct gguf *g, struct llm_vocab *v)
{
	const struct gguf_kv *mk = find_kv(g, "tokenizer.ggml.merges");
	char a[4 * BX_LLM_PIECE_MAX], b[4 * BX_LLM_PIECE_MAX], ab[8 * BX_LLM_PIECE_MAX];
	const uint8_t *p;
	uint64_t skipped = 0;

	if (!mk || mk->type != VT_ARRAY || mk->atype != VT_STRING) {
		return bx_err(g->eb, EBADMSG, "%s: gpt2 tokenizer without tokenizer.ggml.merges",
		              g->path);
	}
	if (llm_bpe_merges_alloc(v, mk->n)) {
		return bx_err(g->eb, ENOMEM, "%s: out of memory", g->path);
	}
	p = mk->val;
	for (uint64_t i = 0; i < mk->n; i++) {
		uint64_t n = 0;
		const char *s, *sp;
		size_t na, nb;
		int32_t ia, ib, iab;

		memcpy(&n, p, g->narrow ? 4 : 8); /* bounds checked by parse_kvs */
		s = (const char *)p + (g->narrow ? 4 : 8);
		p += (g->narrow ? 4 : 8) + n;
		sp = memchr(s, ' ', n);
		if (!sp || (size_t)(sp - s) > sizeof(a) || n - (size_t)(sp - s) - 1 > sizeof(b)) {
			skipped++;
			continue;
		}
		na = llm_bpe_unmap(s, (size_t)(sp - s), a);
		nb = llm_bpe_unmap(sp + 1, n - (size_t)(sp - s) - 1, b);
		memcpy(ab, a, na);
		memcpy(ab + na, b, nb);
		ia = llm_vocab_find(v, a, na);
		ib = llm_vocab_find(v, b, nb);
		iab = llm_vocab_find(v, ab, na + nb);
		if (ia < 0 || ib < 0 || iab < 0) {
			skipped++;
			continue;
		}
		llm_bpe_merge_add(v, ia, ib, iab, (uint32_t)BX_MIN(i, (uint64_t)UINT32_MAX));
	}
	if (skipped) {
		BX_LOG(WARN, "%s: %" PRIu64 " of %" PRIu64 " merges name unknown tokens, skipped",
		       g->path, (uint64_t)skipped, (uint64_t)mk->n);
	}
	{
		uint64_t len = 0;
		const char *pre = kv_str(g, "tokenizer.ggml.pre", &len);

		v->pre_llama3 = pre && ((len == 9 && !memcmp(pre, "llama-bpe", 9)) ||
		                        (len == 6 && !memcmp(pre, "llama3", 6)));
	}
	return 0;
}

/* tokenizer.ggml.*: tokens (strings), scores (f32), token_type (i32), special ids. */
static int
read_vocab(struct gguf *g, struct bx_llm_model *m)
{
	const struct gguf_kv *tok = find_kv(g, "tokenizer.ggml.tokens");
	const struct gguf_kv *sc = find_kv(g, "tokenizer.ggml.scores");
	const struct gguf_kv *ty = find_kv(g, "tokenizer.ggml.token_type");
	struct llm_vocab *v = &m->vocab;
	uint64_t len = 0, id;
	const char *model = kv_str(g, "tokenizer.ggml.model", &len);
	const uint8_t *p;
	size_t used = 0;
	bool bpe;
	char raw[4 * BX_LLM_PIECE_MAX];
	int ret;

	if (!model && !tok) {
		return 0; /* ids only */
	}
	bpe = model && len == 4 && !memcmp(model, "gpt2", 4);
	if (!model || (!bpe && (len != 5 || memcmp(model, "llama", 5) != 0))) {
		return bx_err(g->eb, ENOTSUP,
		              "%s: tokenizer.ggml.model %.*s not supported (llama, "
		              "gpt2)",
		              g->path, model ? (int)BX_MIN(len, 64u) : 7,
		              model ? model : "missing");
	}
	if (!tok || tok->type != VT_ARRAY || tok->atype != VT_STRING ||
	    tok->n != m->cfg.vocab_size) {
		return bx_err(g->eb, EBADMSG, "%s: tokenizer.ggml.tokens is not %u strings",
		              g->path, m->cfg.vocab_size);
	}
	if ((sc && (sc->type != VT_ARRAY || sc->atype != VT_F32 || sc->n != tok->n)) ||
	    (ty && (ty->type != VT_ARRAY || ty->atype != VT_I32 || ty->n != tok->n))) {
		return bx_err(g->eb, EBADMSG,
		              "%s: tokenizer scores or token types do not match "
		              "the %" PRIu64 " tokens",
		              g->path, (uint64_t)tok->n);
	}
	p = tok->val;
	for (uint64_t i = 0, n = 0; i < tok->n; i++) {
		memcpy(&n, p, g->narrow ? 4 : 8); /* bounds checked by parse_kvs */
		p += (g->narrow ? 4 : 8) + n;
		len += n;
	}
	ret = llm_vocab_alloc(v, (uint32_t)tok->n, (size_t)len);
	if (ret) {
		return bx_err(g->eb, ENOMEM, "%s: out of memory", g->path);
	}
	v->bpe = bpe;
	p = tok->val;
	for (uint32_t i = 0; i < v->n; i++) {
		uint64_t n = 0, file_len;
		const char *text;
		float score = 0;
		int32_t type = LLM_TOK_NORMAL;

		memcpy(&n, p, g->narrow ? 4 : 8);
		p += g->narrow ? 4 : 8;
		file_len = n;
		if (sc) {
			memcpy(&score, sc->val + (size_t)4 * i, 4);
		}
		if (ty) {
			memcpy(&type, ty->val + (size_t)4 * i, 4);
		}
		text = n <= sizeof(raw) ? piece(bpe, p, &n, raw) : NULL; /* may shorten n */
		if (!text || llm_vocab_set(v, i, text, n, score, type, &used)) {
			return bx_err(g->eb, EBADMSG, "%s: token %u longer than %d bytes", g->path,
			              i, BX_LLM_PIECE_MAX);
		}
		p += file_len;
	}

	/* absent special ids: SentencePiece's 1, 2, 0; none for byte-level BPE */
	v->bos = kv_uint(g, "tokenizer.ggml.bos_token_id", UINT32_MAX, 1, &id) == -ENOENT && bpe ?
	                 -1 :
	                 (int32_t)BX_MIN(id, (uint64_t)INT32_MAX);
	v->eos = kv_uint(g, "tokenizer.ggml.eos_token_id", UINT32_MAX, 2, &id) == -ENOENT && bpe ?
	                 -1 :
	                 (int32_t)BX_MIN(id, (uint64_t)INT32_MAX);
	v->unk = kv_uint(g, "tokenizer.ggml.unknown_token_id", UINT32_MAX, 0, &id) == -ENOENT &&
	                         bpe ?
	                 -1 :
	                 (int32_t)BX_MIN(id, (uint64_t)INT32_MAX);
	ret = llm_vocab_index(v, g->path, g->eb);
	return ret || !bpe ? ret : read_merges(g, v);
}

static int
build_model(struct gguf *g, struct bx_llm_model *m)
{
	struct bx_llm_config *c = &m->cfg;
	int ret = read_config(g, c);

	if (ret) {
		return ret;
	}
	ret = get_matrix(g, "token_embd.weight", &m->embd);
	if (ret) {
		return ret;
	}
	if (!m->embd.data) {
		return bx_err(g->eb, EBADMSG, "%s: tensor token_embd.weight missing", g->path);
	}
	c->vocab_size = m->embd.rows;
	ret = get_matrix(g, "output.weight", &m->out);
	if (ret) {
		return ret;
	}
	c->tied = !m->out.data;
	if (c->tied) {
		m->out = m->embd;
	}
	if (!c->dim || c->dim > LLM_DIM_MAX || !c->n_layers || c->n_layers > LLM_LAYERS_MAX) {
		return bx_err(g->eb, EBADMSG, "%s: dim %u or %u layers out of range", g->path,
		              c->dim, c->n_layers);
	}
	m->layers = bx_calloc(c->n_layers, sizeof(*m->layers));
	m->norms = bx_calloc((2 * (size_t)c->n_layers + 1) * c->dim, sizeof(float));
	if (!m->layers || !m->norms) {
		return bx_err(g->eb, ENOMEM, "%s: out of memory", g->path);
	}
	ret = read_layers(g, m);
	ret = ret ? ret :
	            get_norm(g, "output_norm.weight", c->dim,
	                     m->norms + 2 * (size_t)c->n_layers * c->dim, &m->out_norm);
	return ret ? ret : read_vocab(g, m);
}

int
bx_llm_load_gguf(const char *path, struct bx_llm_model **out, struct bx_errbuf *eb)
{
	struct gguf g = { .path = path, .eb = eb };
	struct bx_llm_model *m;
	int ret = llm_model_open(path, &m, eb);

	if (ret) {
		return ret;
	}
	if (!m->map_len) {
		ret = bx_err(eb, EBADMSG, "%s: empty file", path);
		goto out_destroy;
	}
	g.base = g.p = m->map;
	g.end = g.base + m->map_len;
	ret = gguf_parse(&g);
	ret = ret ? ret : build_model(&g, m);
	if (ret) {
		goto out_destroy;
	}
	snprintf(m->origin, sizeof(m->origin), "gguf");
	ret = llm_model_finish(m, path, eb);
	if (ret) {
		goto out_destroy;
	}
	free(g.kv);
	free(g.ti);
	*out = m;
	return 0;
out_destroy:
	free(g.kv);
	free(g.ti);
	bx_llm_model_destroy(m);
	return ret;
}
