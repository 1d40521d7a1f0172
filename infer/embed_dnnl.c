/*
 * The BERT encoder on oneDNN 2.6 in bf16 (research inference.md §1-§3).
 *
 * Precision: matmul inputs and weights bf16, accumulation f32; the residual
 * stream x stays f32 (the O and FFN-down matmuls add into it with a sum
 * post-op); LayerNorm statistics, softmax and pooling run in f32.
 *
 * Linear layers run on all T tokens of all sequences together (no padding
 * per sequence). oneDNN's fast brgemm kernels need a fixed M (a runtime M
 * falls back to gemm:jit, §1.2), so the T rows go through in chunks of 256,
 * the last chunk rounded up to a multiple of 8 (at most 7 scratch rows per
 * batch): 32 fixed-M primitive sets per context cover every batch. Weights
 * are converted to bf16 and packed once at load into the layout the brgemm
 * matmul picks (format_tag_any, then a reorder); every chunk primitive is
 * created with that layout.
 *
 * Attention runs per sequence: its Q, K and V rows are copied into plain
 * per-head buffers [heads][L][d] (strided views of the fused QKV output make
 * oneDNN pick gemm:jit, 5x slower), then Q·K^T/sqrt(d) (K read as a
 * transposed view), softmax f32 -> bf16, P·V, and the context is copied back
 * into token order. The batch is processed sorted by length (outputs go back
 * to the caller's order), so runs of equal-length sequences, up to 32
 * sequences or 512 tokens, share one call with a batch of g x heads.
 * Primitives are cached per (length, group size).
 *
 * Threads: a context belongs to one worker thread. It sets that thread's
 * OpenMP team size and creates every primitive on that thread (oneDNN fixes
 * the thread count at creation); all primitives use a user-mode scratchpad
 * owned by the context.
 */
#include <errno.h>
#include <math.h>
#include <omp.h>
#include <string.h>

#include "dnnl_inc.h"
#include "embed_int.h"

#define NB_MM        4   /* QKV, O, FFN up, FFN down */
#define CHUNK_ROWS   256 /* linear layers run on row chunks of at most this */
#define ROW_QUANTUM  8   /* a chunk's rows are rounded up to this */
#define NB_BUCKETS   (CHUNK_ROWS / ROW_QUANTUM) /* every chunk size has its primitives */
#define PACK_M       128
#define GROUP_TOKENS 512 /* attention of equal-length sequences runs together up to this */
#define GROUP_LOGS   6   /* groups of 1, 2, 4, ... 32 sequences */

enum {
	MM_QKV,
	MM_O,
	MM_UP,
	MM_DOWN
};

struct bx_dnnl_model {
	dnnl_memory_desc_t wmd[NB_MM]; /* packed layouts */
	void **packed;                 /* [layer * NB_MM + mm] bf16 packed weights */
	float *qkv_bias;               /* [layer][3H] */
};

/* The four linear-layer primitives for one padded token count. */
struct bucket {
	unsigned m;
	dnnl_primitive_t p[NB_MM];
	dnnl_memory_t src[NB_MM], dst[NB_MM], sp[NB_MM];
};

/* Attention primitives for one sequence length. */
struct att {
	dnnl_primitive_t qk, sm, pv;
	dnnl_memory_t q, k, s, p, v, c;
	dnnl_memory_t sp_qk, sp_sm, sp_pv; /* scratchpads */
};

struct bx_dnnl_ctx {
	const struct bx_embed_model *m;
	const struct bx_dnnl_model *dm;
	unsigned nb_threads;
	dnnl_engine_t eng;
	dnnl_stream_t strm;
	dnnl_memory_t *w, *b; /* [layer * NB_MM + mm] */
	struct bucket bk[NB_BUCKETS];
	struct att *att; /* [(max_tokens + 1) * GROUP_LOGS], created on first use */
	void *scratch;
	size_t scratch_size;
	/* activations for cap_tokens rows */
	unsigned cap_tokens;
	float *x;
	uint16_t *xb, *qkv, *cb, *ffn;
	/* one sequence's attention: [heads][L][d] and scores [heads][L][L] */
	uint16_t *qh, *kh, *vh, *ch, *pb;
	float *sc;
	/* the batch sorted by length (so equal lengths share attention calls) */
	unsigned cap_seqs;
	unsigned *ord, *slens, *count;
	const int32_t **sids;
	bool fast_softmax; /* the AVX-512 kernel instead of oneDNN's softmax */
	bool prof_on;
	struct bx_embed_profile prof;
};

/*
 * The small f32 loops (embedding gather, LayerNorm, bf16 conversion, head
 * copies) get an AVX-512 clone picked at load time; the build itself stays
 * generic x86-64.
 */
#if defined(__x86_64__) && defined(__linux__)
#define SIMD_CLONES __attribute__((target_clones("arch=x86-64-v4", "default")))
#else
#define SIMD_CLONES
#endif

static inline uint64_t
prof_start(const struct bx_dnnl_ctx *dc)
{
	return dc->prof_on ? bx_time_ns() : 0;
}

static inline void
prof_end(struct bx_dnnl_ctx *dc, enum bx_embed_op op, uint64_t t0, double flop)
{
	if (dc->prof_on) {
		dc->prof.ns[op] += bx_time_ns() - t0;
		dc->prof.flop[op] += flop;
	}
}

void
bx_dnnl_profile_enable(struct bx_dnnl_ctx *dc, bool on)
{
	dc->prof_on = on;
	memset(&dc->prof, 0, sizeof(dc->prof));
}

void
bx_dnnl_profile(const struct bx_dnnl_ctx *dc, struct bx_embed_profile *out)
{
	*out = dc->prof;
}

static int
dnnl_errno(dnnl_status_t st)
{
	switch (st) {
	case dnnl_success:
		return 0;
	case dnnl_out_of_memory:
		return -ENOMEM;
	case dnnl_unimplemented:
		return -ENOTSUP;
	default:
		return -EINVAL;
	}
}

static inline uint16_t
to_bf16(float f)
{
	uint32_t u;

	memcpy(&u, &f, 4);
	u += 0x7FFF + ((u >> 16) & 1);
	return (uint16_t)(u >> 16);
}

/* K x N of one matmul. */
static void
mm_shape(const struct bx_embed_model *m, unsigned which, unsigned *k, unsigned *n)
{
	unsigned h = m->shape.hidden, f = m->shape.ffn;

	*k = which == MM_DOWN ? f : h;
	*n = which == MM_QKV ? 3 * h : which == MM_UP ? f : h;
}

static dnnl_data_type_t
mm_dst_dt(unsigned which)
{
	return (which == MM_O || which == MM_DOWN) ? dnnl_f32 : dnnl_bf16;
}

/*
 * A bf16 matmul src [M][K] x W[K][N] + bias -> dst [M][N] with its post-ops:
 * gelu_erf for FFN up, sum (x += ...) for O and FFN down. wmd NULL: let
 * oneDNN pick the weights layout and return it in *chosen.
 */
static dnnl_status_t
mm_create(dnnl_engine_t eng, unsigned which, unsigned mrows, unsigned k, unsigned n,
          const dnnl_memory_desc_t *wmd, dnnl_primitive_t *out, dnnl_memory_desc_t *chosen)
{
	dnnl_memory_desc_t src, wei, bias, dst;
	dnnl_primitive_desc_t pd = NULL;
	dnnl_primitive_attr_t attr = NULL;
	dnnl_post_ops_t po = NULL;
	dnnl_matmul_desc_t d;
	dnnl_status_t st;

	CHK(dnnl_memory_desc_init_by_tag(&src, 2, (dnnl_dims_t){ mrows, k }, dnnl_bf16, dnnl_ab));
	if (wmd != NULL) {
		wei = *wmd;
	} else {
		CHK(dnnl_memory_desc_init_by_tag(&wei, 2, (dnnl_dims_t){ k, n }, dnnl_bf16,
		                                 dnnl_format_tag_any));
	}
	CHK(dnnl_memory_desc_init_by_tag(&bias, 2, (dnnl_dims_t){ 1, n }, dnnl_f32, dnnl_ab));
	CHK(dnnl_memory_desc_init_by_tag(&dst, 2, (dnnl_dims_t){ mrows, n }, mm_dst_dt(which),
	                                 dnnl_ab));
	CHK(dnnl_matmul_desc_init(&d, &src, &wei, &bias, &dst));
	CHK(dnnl_primitive_attr_create(&attr));
	CHK(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user));
	CHK(dnnl_post_ops_create(&po));
	if (which == MM_UP) {
		CHK(dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_gelu_erf, 0, 0));
	} else if (which == MM_O || which == MM_DOWN) {
		CHK(dnnl_post_ops_append_sum(po, 1.0f));
	}
	CHK(dnnl_primitive_attr_set_post_ops(attr, po));
	CHK(dnnl_primitive_desc_create(&pd, &d, attr, eng, NULL));
	if (chosen != NULL) {
		*chosen = *dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
	}
	if (out != NULL) {
		CHK(dnnl_primitive_create(out, pd));
	}
out:
	dnnl_primitive_desc_destroy(pd);
	dnnl_post_ops_destroy(po);
	dnnl_primitive_attr_destroy(attr);
	return st;
}

/* 1/sqrt(head dim): folded into the query weights and bias, so Q·K^T needs no scale. */
static float
q_scale(const struct bx_embed_model *m)
{
	unsigned head_dim = m->shape.hidden / m->shape.heads; /* exact: heads divides hidden */

	return 1.0f / sqrtf((float)head_dim);
}

/*
 * f32 weights [N][K] (PyTorch [out][in]) of one matmul of layer l; QKV is
 * concatenated into tmp, with the query rows scaled by q_scale().
 */
static const float *
mm_source(const struct bx_embed_model *m, unsigned l, unsigned which, float *tmp)
{
	const struct bx_embed_layer *ly = &m->layers[l];
	size_t hh = (size_t)m->shape.hidden * m->shape.hidden;

	switch (which) {
	case MM_QKV:
		for (size_t i = 0; i < hh; i++) {
			tmp[i] = ly->q_w[i] * q_scale(m);
		}
		memcpy(tmp + hh, ly->k_w, hh * sizeof(float));
		memcpy(tmp + 2 * hh, ly->v_w, hh * sizeof(float));
		return tmp;
	case MM_O:
		return ly->o_w;
	case MM_UP:
		return ly->i_w;
	default:
		return ly->f_w;
	}
}

dnnl_status_t
bx_dnnl_pack_ba(dnnl_engine_t eng, dnnl_stream_t strm, const void *plain, dnnl_data_type_t dt,
                size_t k, size_t n, const dnnl_memory_desc_t *to_md, void *to)
{
	dnnl_primitive_desc_t rpd = NULL;
	dnnl_primitive_t r = NULL;
	dnnl_memory_t ms = NULL, md = NULL;
	dnnl_memory_desc_t user;
	dnnl_status_t st;

	CHK(dnnl_memory_desc_init_by_tag(&user, 2, (dnnl_dims_t){ (dnnl_dim_t)k, (dnnl_dim_t)n },
	                                 dt, dnnl_ba));
	CHK(dnnl_memory_create(&ms, &user, eng, (void *)plain));
	CHK(dnnl_memory_create(&md, to_md, eng, to));
	CHK(dnnl_reorder_primitive_desc_create(&rpd, &user, eng, to_md, eng, NULL));
	CHK(dnnl_primitive_create(&r, rpd));
	CHK(dnnl_primitive_execute(
		r, strm, 2, (dnnl_exec_arg_t[]){ { DNNL_ARG_FROM, ms }, { DNNL_ARG_TO, md } }));
	CHK(dnnl_stream_wait(strm));
out:
	dnnl_primitive_destroy(r);
	dnnl_primitive_desc_destroy(rpd);
	dnnl_memory_destroy(ms);
	dnnl_memory_destroy(md);
	return st;
}

/* Convert and pack one f32 weight matrix into a new buffer laid out as wmd. */
static dnnl_status_t
pack(dnnl_engine_t eng, dnnl_stream_t strm, const float *src, unsigned k, unsigned n,
     const dnnl_memory_desc_t *wmd, void **out)
{
	size_t size = dnnl_memory_desc_get_size(wmd);
	void *buf = bx_aligned_alloc(64, (size + 63) & ~(size_t)63);
	dnnl_status_t st;

	if (buf == NULL) {
		return dnnl_out_of_memory;
	}
	/* the [N][K] f32 tensor is W[K][N] with strides {1, K}: tag ba */
	st = bx_dnnl_pack_ba(eng, strm, src, dnnl_f32, k, n, wmd, buf);
	if (st != dnnl_success) {
		bx_free(buf);
	} else {
		*out = buf;
	}
	return st;
}

void
bx_dnnl_model_destroy(struct bx_dnnl_model *dm)
{
	if (dm == NULL) {
		return;
	}
	for (size_t i = 0; dm->packed != NULL && dm->packed[i] != NULL; i++) {
		bx_free(dm->packed[i]);
	}
	bx_free(dm->packed);
	bx_free(dm->qkv_bias);
	bx_free(dm);
}

static void
fill_qkv_bias(const struct bx_embed_model *m, float *b)
{
	unsigned h = m->shape.hidden;

	for (unsigned l = 0; l < m->shape.layers; l++) {
		for (unsigned i = 0; i < h; i++) {
			b[(size_t)l * 3 * h + i] = m->layers[l].q_b[i] * q_scale(m);
		}
		memcpy(b + (size_t)l * 3 * h + h, m->layers[l].k_b, h * sizeof(float));
		memcpy(b + (size_t)l * 3 * h + 2 * h, m->layers[l].v_b, h * sizeof(float));
	}
}

/* Pick each matmul's packed layout (fixed M) and pack every layer's weights into it. */
static dnnl_status_t
pack_model(const struct bx_embed_model *m, struct bx_dnnl_model *dm, dnnl_engine_t eng,
           dnnl_stream_t strm)
{
	float *tmp = bx_malloc(sizeof(float) * 3 * m->shape.hidden * m->shape.hidden);
	dnnl_status_t st = dnnl_out_of_memory;

	if (tmp == NULL) {
		return st;
	}
	for (unsigned i = 0; i < NB_MM; i++) {
		unsigned k, n;

		mm_shape(m, i, &k, &n);
		CHK(mm_create(eng, i, PACK_M, k, n, NULL, NULL, &dm->wmd[i]));
		for (unsigned l = 0; l < m->shape.layers; l++) {
			CHK(pack(eng, strm, mm_source(m, l, i, tmp), k, n, &dm->wmd[i],
			         &dm->packed[l * NB_MM + i]));
		}
	}
out:
	bx_free(tmp);
	return st;
}

int
bx_dnnl_model_create(const struct bx_embed_model *m, struct bx_dnnl_model **out,
                     struct bx_errbuf *eb)
{
	struct bx_dnnl_model *dm = bx_calloc(1, sizeof(*dm));
	dnnl_engine_t eng = NULL;
	dnnl_stream_t strm = NULL;
	dnnl_status_t st = dnnl_out_of_memory;
	unsigned nl = m->shape.layers;

	if (dm == NULL) {
		goto out;
	}
	dm->packed = bx_calloc((size_t)nl * NB_MM + 1, sizeof(void *));
	dm->qkv_bias = bx_malloc(sizeof(float) * 3 * m->shape.hidden * (nl ? nl : 1));
	if (dm->packed == NULL || dm->qkv_bias == NULL) {
		goto out;
	}
	fill_qkv_bias(m, dm->qkv_bias);
	CHK(dnnl_engine_create(&eng, dnnl_cpu, 0));
	CHK(dnnl_stream_create(&strm, eng, dnnl_stream_default_flags));
	CHK(pack_model(m, dm, eng, strm));
out:
	dnnl_stream_destroy(strm);
	dnnl_engine_destroy(eng);
	if (st != dnnl_success) {
		bx_dnnl_model_destroy(dm);
		return bx_err(eb, -dnnl_errno(st), "oneDNN: cannot build the bf16 matmuls (%s)",
		              dnnl_status2str(st));
	}
	*out = dm;
	return 0;
}

/* ---------------------------------------------------------------- */
/* Context */

static void
bucket_fini(struct bucket *b)
{
	for (unsigned i = 0; i < NB_MM; i++) {
		dnnl_primitive_destroy(b->p[i]);
		dnnl_memory_destroy(b->src[i]);
		dnnl_memory_destroy(b->dst[i]);
		dnnl_memory_destroy(b->sp[i]);
	}
	memset(b, 0, sizeof(*b));
}

static void
att_fini(struct att *a)
{
	dnnl_primitive_destroy(a->qk);
	dnnl_primitive_destroy(a->sm);
	dnnl_primitive_destroy(a->pv);
	dnnl_memory_destroy(a->q);
	dnnl_memory_destroy(a->k);
	dnnl_memory_destroy(a->s);
	dnnl_memory_destroy(a->p);
	dnnl_memory_destroy(a->v);
	dnnl_memory_destroy(a->c);
	dnnl_memory_destroy(a->sp_qk);
	dnnl_memory_destroy(a->sp_sm);
	dnnl_memory_destroy(a->sp_pv);
	memset(a, 0, sizeof(*a));
}

static void
free_acts(struct bx_dnnl_ctx *dc)
{
	bx_free(dc->x);
	bx_free(dc->xb);
	bx_free(dc->qkv);
	bx_free(dc->cb);
	bx_free(dc->ffn);
	dc->x = NULL;
	dc->xb = dc->qkv = dc->cb = dc->ffn = NULL;
	dc->cap_tokens = 0;
}

void
bx_dnnl_ctx_destroy(struct bx_dnnl_ctx *dc)
{
	unsigned nw = dc == NULL ? 0 : dc->m->shape.layers * NB_MM;

	if (dc == NULL) {
		return;
	}
	for (unsigned i = 0; i < nw; i++) {
		dnnl_memory_destroy(dc->w != NULL ? dc->w[i] : NULL);
		dnnl_memory_destroy(dc->b != NULL ? dc->b[i] : NULL);
	}
	for (unsigned i = 0; i < NB_BUCKETS; i++) {
		bucket_fini(&dc->bk[i]);
	}
	for (unsigned l = 0; dc->att != NULL && l < (dc->m->max_tokens + 1) * GROUP_LOGS; l++) {
		att_fini(&dc->att[l]);
	}
	bx_free(dc->w);
	bx_free(dc->b);
	bx_free(dc->att);
	free_acts(dc);
	bx_free(dc->qh);
	bx_free(dc->kh);
	bx_free(dc->vh);
	bx_free(dc->ch);
	bx_free(dc->pb);
	bx_free(dc->sc);
	bx_free(dc->scratch);
	bx_free(dc->ord);
	bx_free(dc->slens);
	bx_free(dc->sids);
	bx_free(dc->count);
	dnnl_stream_destroy(dc->strm);
	dnnl_engine_destroy(dc->eng);
	bx_free(dc);
}

dnnl_status_t
bx_dnnl_scratch_grow(void **buf, size_t *cap, const_dnnl_primitive_desc_t pd)
{
	size_t need = dnnl_memory_desc_get_size(
		dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0));

	if (need <= *cap) {
		return dnnl_success;
	}
	bx_free(*buf);
	*cap = 0;
	*buf = bx_aligned_alloc(64, (need + 63) & ~(size_t)63);
	if (*buf == NULL) {
		return dnnl_out_of_memory;
	}
	*cap = need;
	return dnnl_success;
}

/* Grow the scratchpad to what primitive p needs (before any execution uses it). */
static dnnl_status_t
scratch_need(struct bx_dnnl_ctx *dc, const_dnnl_primitive_t p)
{
	const_dnnl_primitive_desc_t pd;
	dnnl_status_t st = dnnl_primitive_get_primitive_desc(p, &pd);

	return st != dnnl_success ? st : bx_dnnl_scratch_grow(&dc->scratch, &dc->scratch_size, pd);
}

/* Weights and bias memory objects of every layer, over the model's packed buffers. */
static dnnl_status_t
ctx_weights(struct bx_dnnl_ctx *dc)
{
	const struct bx_embed_model *m = dc->m;
	dnnl_status_t st = dnnl_success;

	for (unsigned l = 0; l < m->shape.layers; l++) {
		for (unsigned i = 0; i < NB_MM; i++) {
			const float *b =
				i == MM_QKV ? dc->dm->qkv_bias + (size_t)l * 3 * m->shape.hidden :
				i == MM_O   ? m->layers[l].o_b :
				i == MM_UP  ? m->layers[l].i_b :
					      m->layers[l].f_b;
			dnnl_memory_desc_t bmd;
			unsigned k, n;

			mm_shape(m, i, &k, &n);
			CHK(dnnl_memory_desc_init_by_tag(&bmd, 2, (dnnl_dims_t){ 1, n }, dnnl_f32,
			                                 dnnl_ab));
			CHK(dnnl_memory_create(&dc->w[l * NB_MM + i], &dc->dm->wmd[i], dc->eng,
			                       dc->dm->packed[l * NB_MM + i]));
			CHK(dnnl_memory_create(&dc->b[l * NB_MM + i], &bmd, dc->eng, (void *)b));
		}
	}
out:
	return st;
}

/* A memory object for p's scratchpad (its buffer is set at each execution). */
static dnnl_status_t
scratch_mem(struct bx_dnnl_ctx *dc, const_dnnl_primitive_t p, dnnl_memory_t *out)
{
	const_dnnl_primitive_desc_t pd;
	dnnl_status_t st = dnnl_primitive_get_primitive_desc(p, &pd);

	if (st != dnnl_success) {
		return st;
	}
	st = scratch_need(dc, p);
	if (st != dnnl_success) {
		return st;
	}
	return dnnl_memory_create(out,
	                          dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0),
	                          dc->eng, DNNL_MEMORY_NONE);
}

/* Run p with args[0..n) and its scratchpad sp on the context's buffer. */
static dnnl_status_t
exec(struct bx_dnnl_ctx *dc, dnnl_primitive_t p, dnnl_memory_t sp, int n, dnnl_exec_arg_t *args)
{
	dnnl_status_t st = dnnl_memory_set_data_handle(sp, dc->scratch);

	if (st != dnnl_success) {
		return st;
	}
	args[n].arg = DNNL_ARG_SCRATCHPAD;
	args[n].memory = sp;
	return dnnl_primitive_execute(p, dc->strm, n + 1, args);
}

/* ---------------------------------------------------------------- */
/* Attention for one sequence length L on plain per-head buffers */

/* For g sequences of L tokens: batch g x heads. */
static dnnl_status_t
att_create(struct bx_dnnl_ctx *dc, unsigned L, unsigned g, struct att *a)
{
	unsigned nh = dc->m->shape.heads * g, d = dc->m->shape.hidden / dc->m->shape.heads;
	dnnl_memory_desc_t q, kt, s, p;
	dnnl_primitive_desc_t pd = NULL;
	dnnl_primitive_attr_t attr = NULL;
	dnnl_matmul_desc_t md;
	dnnl_softmax_v2_desc_t sd;
	dnnl_status_t st;

	CHK(dnnl_memory_desc_init_by_tag(&q, 3, (dnnl_dims_t){ nh, L, d }, dnnl_bf16, dnnl_abc));
	/* K^T: K [heads][L][d] read as [heads][d][L] */
	CHK(dnnl_memory_desc_init_by_strides(&kt, 3, (dnnl_dims_t){ nh, d, L }, dnnl_bf16,
	                                     (dnnl_dims_t){ (dnnl_dim_t)L * d, 1, d }));
	CHK(dnnl_memory_desc_init_by_tag(&s, 3, (dnnl_dims_t){ nh, L, L }, dnnl_f32, dnnl_abc));
	CHK(dnnl_memory_desc_init_by_tag(&p, 3, (dnnl_dims_t){ nh, L, L }, dnnl_bf16, dnnl_abc));
	CHK(dnnl_primitive_attr_create(&attr));
	CHK(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user));
	CHK(dnnl_matmul_desc_init(&md, &q, &kt, NULL, &s));
	CHK(dnnl_primitive_desc_create(&pd, &md, attr, dc->eng, NULL));
	CHK(dnnl_primitive_create(&a->qk, pd));
	dnnl_primitive_desc_destroy(pd);
	pd = NULL;
	dnnl_primitive_attr_destroy(attr);
	CHK(dnnl_primitive_attr_create(&attr));
	CHK(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user));
	CHK(dnnl_softmax_v2_forward_desc_init(&sd, dnnl_forward_inference, dnnl_softmax_accurate,
	                                      &s, &p, 2));
	CHK(dnnl_primitive_desc_create(&pd, &sd, attr, dc->eng, NULL));
	CHK(dnnl_primitive_create(&a->sm, pd));
	dnnl_primitive_desc_destroy(pd);
	pd = NULL;
	CHK(dnnl_matmul_desc_init(&md, &p, &q, NULL, &q));
	CHK(dnnl_primitive_desc_create(&pd, &md, attr, dc->eng, NULL));
	CHK(dnnl_primitive_create(&a->pv, pd));
	CHK(scratch_mem(dc, a->qk, &a->sp_qk));
	CHK(scratch_mem(dc, a->sm, &a->sp_sm));
	CHK(scratch_mem(dc, a->pv, &a->sp_pv));
	CHK(dnnl_memory_create(&a->q, &q, dc->eng, dc->qh));
	CHK(dnnl_memory_create(&a->k, &kt, dc->eng, dc->kh));
	CHK(dnnl_memory_create(&a->s, &s, dc->eng, dc->sc));
	CHK(dnnl_memory_create(&a->p, &p, dc->eng, dc->pb));
	CHK(dnnl_memory_create(&a->v, &q, dc->eng, dc->vh));
	CHK(dnnl_memory_create(&a->c, &q, dc->eng, dc->ch));
out:
	dnnl_primitive_desc_destroy(pd);
	dnnl_primitive_attr_destroy(attr);
	return st;
}

/* g sequences' qkv rows [g][L][3H] -> qh, kh, vh [g][heads][L][d]. */
SIMD_CLONES static void
split_heads(struct bx_dnnl_ctx *dc, const uint16_t *qkv, unsigned L, unsigned g)
{
	unsigned h = dc->m->shape.hidden, nh = dc->m->shape.heads, d = h / nh;

	for (unsigned t = 0; t < g * L; t++) {
		const uint16_t *r = qkv + (size_t)t * 3 * h;
		unsigned sq = t / L, tt = t % L;

		for (unsigned j = 0; j < nh; j++) {
			size_t o = (((size_t)sq * nh + j) * L + tt) * d;

			if (d == 32) { /* MiniLM: fixed-size copies the compiler inlines */
				memcpy(dc->qh + o, r + j * 32, 64);
				memcpy(dc->kh + o, r + h + j * 32, 64);
				memcpy(dc->vh + o, r + 2 * h + j * 32, 64);
			} else {
				memcpy(dc->qh + o, r + j * d, d * 2);
				memcpy(dc->kh + o, r + h + j * d, d * 2);
				memcpy(dc->vh + o, r + 2 * h + j * d, d * 2);
			}
		}
	}
}

/* ch [g][heads][L][d] -> rows [g][L][H]. */
SIMD_CLONES static void
merge_heads(struct bx_dnnl_ctx *dc, uint16_t *out, unsigned L, unsigned g)
{
	unsigned h = dc->m->shape.hidden, nh = dc->m->shape.heads, d = h / nh;

	for (unsigned t = 0; t < g * L; t++) {
		unsigned sq = t / L, tt = t % L;

		for (unsigned j = 0; j < nh; j++) {
			const uint16_t *c = dc->ch + (((size_t)sq * nh + j) * L + tt) * d;

			if (d == 32) {
				memcpy(out + (size_t)t * h + j * 32, c, 64);
			} else {
				memcpy(out + (size_t)t * h + j * d, c, d * 2);
			}
		}
	}
}

/*
 * Attention of g sequences of L tokens each, rows [off, off + g L) of qkv ->
 * the same rows of cb; 2^lg = g.
 */
static dnnl_status_t
attend(struct bx_dnnl_ctx *dc, unsigned off, unsigned L, unsigned lg)
{
	unsigned h = dc->m->shape.hidden, g = 1u << lg;
	struct att *a = &dc->att[L * GROUP_LOGS + lg];
	double flop = 2.0 * g * L * L * h;
	dnnl_status_t st;
	uint64_t t0;

	if (a->qk == NULL) {
		st = att_create(dc, L, g, a);
		if (st != dnnl_success) {
			att_fini(a);
			return st;
		}
	}
	t0 = prof_start(dc);
	split_heads(dc, dc->qkv + (size_t)off * 3 * h, L, g);
	prof_end(dc, BX_EMBED_OP_NORM, t0, 0);
	t0 = prof_start(dc);
	CHK(exec(dc, a->qk, a->sp_qk, 3,
	         (dnnl_exec_arg_t[4]){ { DNNL_ARG_SRC, a->q },
	                               { DNNL_ARG_WEIGHTS, a->k },
	                               { DNNL_ARG_DST, a->s } }));
	prof_end(dc, BX_EMBED_OP_ATT_QK, t0, flop);
	t0 = prof_start(dc);
	if (dc->fast_softmax) {
		bx_embed_softmax_bf16(dc->sc, dc->pb, (size_t)g * dc->m->shape.heads * L, L);
	} else {
		CHK(exec(dc, a->sm, a->sp_sm, 2,
		         (dnnl_exec_arg_t[3]){ { DNNL_ARG_SRC, a->s }, { DNNL_ARG_DST, a->p } }));
	}
	prof_end(dc, BX_EMBED_OP_ATT_SM, t0, 0);
	t0 = prof_start(dc);
	CHK(exec(dc, a->pv, a->sp_pv, 3,
	         (dnnl_exec_arg_t[4]){ { DNNL_ARG_SRC, a->p },
	                               { DNNL_ARG_WEIGHTS, a->v },
	                               { DNNL_ARG_DST, a->c } }));
	prof_end(dc, BX_EMBED_OP_ATT_PV, t0, flop);
	t0 = prof_start(dc);
	merge_heads(dc, dc->cb + (size_t)off * h, L, g);
	prof_end(dc, BX_EMBED_OP_NORM, t0, 0);
out:
	return st;
}

/* ---------------------------------------------------------------- */
/* Linear layers */

/* Rows a chunk of T <= CHUNK_ROWS tokens runs on: at most ROW_QUANTUM - 1 rows of padding. */
static unsigned
bucket_rows(unsigned T)
{
	return (T + ROW_QUANTUM - 1) / ROW_QUANTUM * ROW_QUANTUM;
}

static dnnl_status_t
bucket_create(struct bx_dnnl_ctx *dc, unsigned mrows, struct bucket *b)
{
	dnnl_status_t st = dnnl_success;

	b->m = mrows;
	for (unsigned i = 0; i < NB_MM; i++) {
		dnnl_memory_desc_t smd, dmd;
		unsigned k, n;

		mm_shape(dc->m, i, &k, &n);
		CHK(mm_create(dc->eng, i, mrows, k, n, &dc->dm->wmd[i], &b->p[i], NULL));
		CHK(scratch_mem(dc, b->p[i], &b->sp[i]));
		CHK(dnnl_memory_desc_init_by_tag(&smd, 2, (dnnl_dims_t){ mrows, k }, dnnl_bf16,
		                                 dnnl_ab));
		CHK(dnnl_memory_desc_init_by_tag(&dmd, 2, (dnnl_dims_t){ mrows, n }, mm_dst_dt(i),
		                                 dnnl_ab));
		CHK(dnnl_memory_create(&b->src[i], &smd, dc->eng, DNNL_MEMORY_NONE));
		CHK(dnnl_memory_create(&b->dst[i], &dmd, dc->eng, DNNL_MEMORY_NONE));
	}
out:
	return st;
}

/* The primitives for mrows rows (a multiple of ROW_QUANTUM up to CHUNK_ROWS), created once. */
static dnnl_status_t
bucket_get(struct bx_dnnl_ctx *dc, unsigned mrows, struct bucket **out)
{
	struct bucket *b = &dc->bk[mrows / ROW_QUANTUM - 1];
	dnnl_status_t st;

	if (b->m == 0) {
		st = bucket_create(dc, mrows, b);
		if (st != dnnl_success) {
			bucket_fini(b); /* m = 0: created again next time */
			return st;
		}
	}
	*out = b;
	return dnnl_success;
}

/*
 * One linear layer on T rows: chunks of CHUNK_ROWS rows, the last one rounded
 * up to ROW_QUANTUM (the activation buffers hold those padding rows).
 */
static dnnl_status_t
linear(struct bx_dnnl_ctx *dc, unsigned which, unsigned l, unsigned T, void *src, void *dst)
{
	uint64_t t0 = prof_start(dc);
	unsigned i = l * NB_MM + which, k, n;
	size_t ssz = 2, dsz = mm_dst_dt(which) == dnnl_f32 ? 4 : 2;
	dnnl_status_t st = dnnl_success;

	mm_shape(dc->m, which, &k, &n);
	for (unsigned r = 0; r < T; r += CHUNK_ROWS) {
		struct bucket *b;

		CHK(bucket_get(dc, bucket_rows(BX_MIN(T - r, CHUNK_ROWS)), &b));
		CHK(dnnl_memory_set_data_handle(b->src[which], (char *)src + (size_t)r * k * ssz));
		CHK(dnnl_memory_set_data_handle(b->dst[which], (char *)dst + (size_t)r * n * dsz));
		CHK(exec(dc, b->p[which], b->sp[which], 4,
		         (dnnl_exec_arg_t[5]){ { DNNL_ARG_SRC, b->src[which] },
		                               { DNNL_ARG_WEIGHTS, dc->w[i] },
		                               { DNNL_ARG_BIAS, dc->b[i] },
		                               { DNNL_ARG_DST, b->dst[which] } }));
	}
	prof_end(dc, (enum bx_embed_op)which, t0, 2.0 * T * k * n);
out:
	return st;
}

/* LayerNorm rows [0, T) of x in place (f32 statistics) and write their bf16 copy to xb. */
SIMD_CLONES static void
ln_rows(float *x, uint16_t *xb, unsigned T, unsigned h, const float *g, const float *b, float eps)
{
#pragma omp parallel for schedule(static)
	for (unsigned t = 0; t < T; t++) {
		float *r = x + (size_t)t * h;
		uint16_t *rb = xb + (size_t)t * h;
		float mean = 0, var = 0, inv;

#pragma omp simd reduction(+ : mean)
		for (unsigned i = 0; i < h; i++) {
			mean += r[i];
		}
		mean /= (float)h;
#pragma omp simd reduction(+ : var)
		for (unsigned i = 0; i < h; i++) {
			var += (r[i] - mean) * (r[i] - mean);
		}
		inv = 1.0f / sqrtf(var / (float)h + eps);
		for (unsigned i = 0; i < h; i++) {
			r[i] = (r[i] - mean) * inv * g[i] + b[i];
			rb[i] = to_bf16(r[i]);
		}
	}
}

SIMD_CLONES static void
embed_tokens(struct bx_dnnl_ctx *dc, const int32_t *const *ids, const unsigned *lens, unsigned n)
{
	const struct bx_embed_model *m = dc->m;
	unsigned h = m->shape.hidden, t = 0;

	for (unsigned s = 0; s < n; s++) {
		for (unsigned i = 0; i < lens[s]; i++, t++) {
			const float *w = m->word + (size_t)ids[s][i] * h,
				    *p = m->pos + (size_t)i * h;
			float *x = dc->x + (size_t)t * h;

			for (unsigned j = 0; j < h; j++) {
				x[j] = w[j] + p[j] + m->type[j];
			}
		}
	}
	ln_rows(dc->x, dc->xb, t, h, m->ln_g, m->ln_b, m->eps);
}

/* Activation buffers for rows rows; new memory is zeroed so padding rows stay finite. */
static int
grow_acts(struct bx_dnnl_ctx *dc, unsigned rows)
{
	size_t h = dc->m->shape.hidden, f = dc->m->shape.ffn;
	size_t cap = BX_MAX(rows, 256u);

	if (rows <= dc->cap_tokens) {
		return 0;
	}
	free_acts(dc);
	dc->x = bx_aligned_alloc(64, sizeof(float) * cap * h);
	dc->xb = bx_aligned_alloc(64, sizeof(uint16_t) * cap * h);
	dc->qkv = bx_aligned_alloc(64, sizeof(uint16_t) * cap * 3 * h);
	dc->cb = bx_aligned_alloc(64, sizeof(uint16_t) * cap * h);
	dc->ffn = bx_aligned_alloc(64, sizeof(uint16_t) * cap * f);
	if (dc->x == NULL || dc->xb == NULL || dc->qkv == NULL || dc->cb == NULL ||
	    dc->ffn == NULL) {
		free_acts(dc);
		return -ENOMEM;
	}
	memset(dc->x, 0, sizeof(float) * cap * h);
	memset(dc->xb, 0, sizeof(uint16_t) * cap * h);
	memset(dc->cb, 0, sizeof(uint16_t) * cap * h);
	memset(dc->ffn, 0, sizeof(uint16_t) * cap * f);
	dc->cap_tokens = (unsigned)cap;
	return 0;
}

static dnnl_status_t
layer(struct bx_dnnl_ctx *dc, unsigned l, const unsigned *lens, unsigned n, unsigned T)
{
	const struct bx_embed_model *m = dc->m;
	const struct bx_embed_layer *ly = &m->layers[l];
	unsigned h = m->shape.hidden, off = 0;
	dnnl_status_t st;
	uint64_t t0;

	CHK(linear(dc, MM_QKV, l, T, dc->xb, dc->qkv));
	for (unsigned s = 0; s < n;) {
		unsigned L = lens[s], run = 1, lg = 0;

		while (s + run < n && lens[s + run] == L) {
			run++;
		}
		/* the largest power-of-two group of these equal-length sequences that fits */
		while (lg + 1 < GROUP_LOGS && (2u << lg) <= run && (2u << lg) * L <= GROUP_TOKENS) {
			lg++;
		}
		CHK(attend(dc, off, L, lg));
		off += L << lg;
		s += 1u << lg;
	}
	CHK(linear(dc, MM_O, l, T, dc->cb, dc->x));
	t0 = prof_start(dc);
	ln_rows(dc->x, dc->xb, T, h, ly->ln1_g, ly->ln1_b, m->eps);
	prof_end(dc, BX_EMBED_OP_NORM, t0, 0);
	CHK(linear(dc, MM_UP, l, T, dc->xb, dc->ffn));
	CHK(linear(dc, MM_DOWN, l, T, dc->ffn, dc->x));
	t0 = prof_start(dc);
	ln_rows(dc->x, dc->xb, T, h, ly->ln2_g, ly->ln2_b, m->eps);
	prof_end(dc, BX_EMBED_OP_NORM, t0, 0);
out:
	return st;
}

/* Stable counting sort of the batch by length into dc->ord/sids/slens. */
static int
sort_batch(struct bx_dnnl_ctx *dc, const int32_t *const *ids, const unsigned *lens, unsigned n)
{
	unsigned mt = dc->m->max_tokens;

	if (n > dc->cap_seqs) {
		bx_free(dc->ord);
		bx_free(dc->slens);
		bx_free(dc->sids);
		dc->ord = bx_malloc(sizeof(*dc->ord) * n);
		dc->slens = bx_malloc(sizeof(*dc->slens) * n);
		dc->sids = bx_malloc(sizeof(*dc->sids) * n);
		dc->cap_seqs = n;
		if (dc->ord == NULL || dc->slens == NULL || dc->sids == NULL) {
			dc->cap_seqs = 0;
			return -ENOMEM;
		}
	}
	if (dc->count == NULL && (dc->count = bx_malloc(sizeof(*dc->count) * (mt + 2))) == NULL) {
		return -ENOMEM;
	}
	memset(dc->count, 0, sizeof(*dc->count) * (mt + 2));
	for (unsigned s = 0; s < n; s++) {
		dc->count[lens[s] + 1]++;
	}
	for (unsigned l = 1; l <= mt + 1; l++) {
		dc->count[l] += dc->count[l - 1];
	}
	for (unsigned s = 0; s < n; s++) {
		unsigned k = dc->count[lens[s]]++;

		dc->ord[k] = s;
		dc->slens[k] = lens[s];
		dc->sids[k] = ids[s];
	}
	return 0;
}

int
bx_dnnl_forward(struct bx_dnnl_ctx *dc, const int32_t *const *ids, const unsigned *lens, unsigned n,
                float *out)
{
	const struct bx_embed_model *m = dc->m;
	unsigned h = m->shape.hidden, T = 0, off = 0;
	dnnl_status_t st = dnnl_success;
	uint64_t t0;
	int ret;

	for (unsigned s = 0; s < n; s++) {
		T += lens[s];
	}
	if (T == 0) {
		return 0;
	}
	ret = grow_acts(dc, bucket_rows(T));
	if (ret == 0) {
		ret = sort_batch(dc, ids, lens, n);
	}
	if (ret < 0) {
		return ret;
	}
	ids = dc->sids;
	lens = dc->slens;
	omp_set_num_threads((int)dc->nb_threads);
	t0 = prof_start(dc);
	embed_tokens(dc, ids, lens, n);
	prof_end(dc, BX_EMBED_OP_NORM, t0, 0);
	for (unsigned l = 0; l < m->shape.layers; l++) {
		CHK(layer(dc, l, lens, n, T));
	}
	t0 = prof_start(dc);
	for (unsigned s = 0; s < n; s++) {
		bx_embed_pool(dc->x + (size_t)off * h, lens[s], h, out + (size_t)dc->ord[s] * h);
		off += lens[s];
	}
	prof_end(dc, BX_EMBED_OP_POOL, t0, 0);
	dc->prof.tokens += T;
	dc->prof.batches++;
out:
	return dnnl_errno(st);
}

int
bx_dnnl_ctx_create(const struct bx_embed_model *m, unsigned nb_threads, struct bx_dnnl_ctx **out)
{
	struct bx_dnnl_ctx *dc = bx_calloc(1, sizeof(*dc));
	size_t mt = m->max_tokens, gt = BX_MAX(mt, GROUP_TOKENS);
	size_t hs = (size_t)m->shape.heads * gt * mt, ht = gt * m->shape.hidden;
	dnnl_status_t st = dnnl_out_of_memory;

	if (dc == NULL) {
		return -ENOMEM;
	}
	dc->m = m;
	dc->dm = m->dn;
	dc->nb_threads = nb_threads;
	dc->fast_softmax = bx_embed_softmax_fast_ok();
	omp_set_num_threads((int)nb_threads);
	dc->w = bx_calloc((size_t)m->shape.layers * NB_MM + 1, sizeof(dnnl_memory_t));
	dc->b = bx_calloc((size_t)m->shape.layers * NB_MM + 1, sizeof(dnnl_memory_t));
	dc->att = bx_calloc((mt + 1) * GROUP_LOGS, sizeof(*dc->att));
	dc->sc = bx_aligned_alloc(64, sizeof(float) * hs);
	dc->pb = bx_aligned_alloc(64, sizeof(uint16_t) * hs);
	dc->qh = bx_aligned_alloc(64, sizeof(uint16_t) * ht);
	dc->kh = bx_aligned_alloc(64, sizeof(uint16_t) * ht);
	dc->vh = bx_aligned_alloc(64, sizeof(uint16_t) * ht);
	dc->ch = bx_aligned_alloc(64, sizeof(uint16_t) * ht);
	if (dc->w == NULL || dc->b == NULL || dc->att == NULL || dc->sc == NULL || dc->pb == NULL ||
	    dc->qh == NULL || dc->kh == NULL || dc->vh == NULL || dc->ch == NULL) {
		goto out;
	}
	CHK(dnnl_engine_create(&dc->eng, dnnl_cpu, 0));
	CHK(dnnl_stream_create(&dc->strm, dc->eng, dnnl_stream_default_flags));
	CHK(ctx_weights(dc));
	/* every chunk size now, so linear layers never create primitives while serving */
	for (unsigned r = ROW_QUANTUM; r <= CHUNK_ROWS; r += ROW_QUANTUM) {
		struct bucket *b;

		CHK(bucket_get(dc, r, &b));
	}
out:
	if (st != dnnl_success) {
		bx_dnnl_ctx_destroy(dc);
		return dnnl_errno(st);
	}
	*out = dc;
	return 0;
}
