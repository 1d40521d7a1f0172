/*
 * The BERT encoder on oneDNN 2.6 in bf16 (research inference.md §1-§3).
 *
 * Precision: matmul inputs and weights bf16, accumulation f32; the residual
 * stream x stays f32 (the O and FFN-down matmuls add into it with a sum
 * post-op), LayerNorm statistics, softmax and pooling run in f32.
 *
 * Layout: the linear layers run once per batch on all T tokens of all
 * sequences (runtime M = T, no padding); attention runs per sequence on
 * strided views of the fused QKV output [T][3H], writing the context in
 * [T][H] order. Weights are converted to bf16 and packed once at load into
 * the layout oneDNN picks (format_tag_any, reorder); a context whose
 * primitives pick another layout repacks its own copy.
 *
 * Threads: a context belongs to one worker thread. It sets that thread's
 * OpenMP team size, creates every primitive on that thread (oneDNN fixes the
 * thread count at creation) and gives each a user-mode scratchpad.
 */
#include <errno.h>
#include <math.h>
#include <omp.h>
#include <string.h>

#include "dnnl_inc.h"
#include "embed_int.h"

#define NB_MM 4 /* QKV, O, FFN up, FFN down */

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

/* One runtime-M matmul of a context, shared by all layers. */
struct mm {
	dnnl_primitive_t p;
	dnnl_memory_desc_t wmd;
	unsigned k, n;
	dnnl_data_type_t dst_dt;
	dnnl_memory_t *w, *b; /* per layer */
	void **own;           /* per layer, when the context repacked */
};

/* Attention primitives for one sequence length. */
struct att {
	dnnl_primitive_t qk, sm, pv;
	dnnl_memory_t q, k, s, s2, p, v, c;
};

struct bx_dnnl_ctx {
	const struct bx_embed_model *m;
	const struct bx_dnnl_model *dm;
	unsigned nb_threads;
	dnnl_engine_t eng;
	dnnl_stream_t strm;
	struct mm mm[NB_MM];
	struct att *att; /* [max_tokens + 1], created on first use */
	void *scratch;
	size_t scratch_size;
	/* activations for cap_tokens tokens */
	unsigned cap_tokens;
	float *x;
	uint16_t *xb, *qkv, *cb, *ffn;
	float *sc;    /* scores [heads][L][L] */
	uint16_t *pb; /* probabilities, bf16 */
};

#define CHK(call)                                    \
	do {                                         \
		if ((st = (call)) != dnnl_success) { \
			goto out;                    \
		}                                    \
	} while (0)

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

/* K x N weights and the matmul's shapes. */
static void
mm_shape(const struct bx_embed_model *m, unsigned which, unsigned *k, unsigned *n)
{
	unsigned h = m->shape.hidden, f = m->shape.ffn;
	static const unsigned kk[NB_MM][2] = { { 1, 3 }, { 1, 1 }, { 1, 0 }, { 0, 1 } };

	*k = kk[which][0] ? h : f;
	*n = which == MM_QKV ? 3 * h : (kk[which][1] ? h : f);
}

/* Create a runtime-M bf16 matmul: src [M][K] x W[K][N] + bias -> dst [M][N] with post-ops. */
static dnnl_status_t
mm_create(dnnl_engine_t eng, unsigned which, unsigned k, unsigned n, dnnl_primitive_t *out,
          dnnl_memory_desc_t *wmd)
{
	dnnl_memory_desc_t src, wei, bias, dst;
	dnnl_data_type_t dt = (which == MM_O || which == MM_DOWN) ? dnnl_f32 : dnnl_bf16;
	dnnl_primitive_desc_t pd = NULL;
	dnnl_primitive_attr_t attr = NULL;
	dnnl_post_ops_t po = NULL;
	dnnl_matmul_desc_t d;
	dnnl_status_t st;

	CHK(dnnl_memory_desc_init_by_tag(&src, 2, (dnnl_dims_t){ DNNL_RUNTIME_DIM_VAL, k },
	                                 dnnl_bf16, dnnl_ab));
	CHK(dnnl_memory_desc_init_by_tag(&wei, 2, (dnnl_dims_t){ k, n }, dnnl_bf16,
	                                 dnnl_format_tag_any));
	CHK(dnnl_memory_desc_init_by_tag(&bias, 2, (dnnl_dims_t){ 1, n }, dnnl_f32, dnnl_ab));
	CHK(dnnl_memory_desc_init_by_tag(&dst, 2, (dnnl_dims_t){ DNNL_RUNTIME_DIM_VAL, n }, dt,
	                                 dnnl_ab));
	CHK(dnnl_matmul_desc_init(&d, &src, &wei, &bias, &dst));
	CHK(dnnl_primitive_attr_create(&attr));
	CHK(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user));
	CHK(dnnl_post_ops_create(&po));
	if (which == MM_UP) {
		CHK(dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_gelu_erf, 0, 0));
	} else if (which == MM_O || which == MM_DOWN) {
		CHK(dnnl_post_ops_append_sum(po, 1.0f)); /* residual: x += ... */
	}
	CHK(dnnl_primitive_attr_set_post_ops(attr, po));
	CHK(dnnl_primitive_desc_create(&pd, &d, attr, eng, NULL));
	*wmd = *dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
	CHK(dnnl_primitive_create(out, pd));
out:
	dnnl_primitive_desc_destroy(pd);
	dnnl_post_ops_destroy(po);
	dnnl_primitive_attr_destroy(attr);
	return st;
}

/* f32 weights [N][K] (PyTorch [out][in]) of one matmul of layer l; QKV is concatenated into tmp. */
static const float *
mm_source(const struct bx_embed_model *m, unsigned l, unsigned which, float *tmp)
{
	const struct bx_embed_layer *ly = &m->layers[l];
	size_t hh = (size_t)m->shape.hidden * m->shape.hidden;

	switch (which) {
	case MM_QKV:
		memcpy(tmp, ly->q_w, hh * sizeof(float));
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

/* Convert and pack one weight matrix into a new buffer laid out as wmd. */
static dnnl_status_t
pack(dnnl_engine_t eng, dnnl_stream_t strm, const float *src, unsigned k, unsigned n,
     const dnnl_memory_desc_t *wmd, void **out)
{
	dnnl_primitive_desc_t rpd = NULL;
	dnnl_primitive_t r = NULL;
	dnnl_memory_t ms = NULL, md = NULL;
	dnnl_memory_desc_t user;
	size_t size = dnnl_memory_desc_get_size(wmd);
	void *buf = bx_aligned_alloc(64, (size + 63) & ~(size_t)63);
	dnnl_status_t st;

	if (buf == NULL) {
		return dnnl_out_of_memory;
	}
	CHK(dnnl_memory_desc_init_by_tag(&user, 2, (dnnl_dims_t){ k, n }, dnnl_f32, dnnl_ba));
	CHK(dnnl_memory_create(&ms, &user, eng, (void *)src));
	CHK(dnnl_memory_create(&md, wmd, eng, buf));
	CHK(dnnl_reorder_primitive_desc_create(&rpd, &user, eng, wmd, eng, NULL));
	CHK(dnnl_primitive_create(&r, rpd));
	CHK(dnnl_primitive_execute(
		r, strm, 2, (dnnl_exec_arg_t[]){ { DNNL_ARG_FROM, ms }, { DNNL_ARG_TO, md } }));
	CHK(dnnl_stream_wait(strm));
out:
	dnnl_primitive_destroy(r);
	dnnl_primitive_desc_destroy(rpd);
	dnnl_memory_destroy(ms);
	dnnl_memory_destroy(md);
	if (st != dnnl_success) {
		bx_free(buf);
	} else {
		*out = buf;
	}
	return st;
}

/* Pack all layers' weights of one matmul for layout wmd into bufs[layer * stride]. */
static dnnl_status_t
pack_all(const struct bx_embed_model *m, dnnl_engine_t eng, dnnl_stream_t strm, unsigned which,
         const dnnl_memory_desc_t *wmd, void **bufs, unsigned stride)
{
	unsigned k, n;
	float *tmp = NULL;
	dnnl_status_t st = dnnl_success;

	mm_shape(m, which, &k, &n);
	if (which == MM_QKV) {
		tmp = bx_malloc(sizeof(float) * k * n);
		if (tmp == NULL) {
			return dnnl_out_of_memory;
		}
	}
	for (unsigned l = 0; l < m->shape.layers && st == dnnl_success; l++) {
		st = pack(eng, strm, mm_source(m, l, which, tmp), k, n, wmd, &bufs[l * stride]);
	}
	bx_free(tmp);
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
		memcpy(b + (size_t)l * 3 * h, m->layers[l].q_b, h * sizeof(float));
		memcpy(b + (size_t)l * 3 * h + h, m->layers[l].k_b, h * sizeof(float));
		memcpy(b + (size_t)l * 3 * h + 2 * h, m->layers[l].v_b, h * sizeof(float));
	}
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
	for (unsigned i = 0; i < NB_MM; i++) {
		dnnl_primitive_t p = NULL;
		unsigned k, n;

		mm_shape(m, i, &k, &n);
		CHK(mm_create(eng, i, k, n, &p, &dm->wmd[i]));
		dnnl_primitive_destroy(p);
		CHK(pack_all(m, eng, strm, i, &dm->wmd[i], dm->packed + i, NB_MM));
	}
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
mm_fini(struct mm *mm, unsigned layers)
{
	for (unsigned l = 0; l < layers; l++) {
		if (mm->w != NULL) {
			dnnl_memory_destroy(mm->w[l]);
		}
		if (mm->b != NULL) {
			dnnl_memory_destroy(mm->b[l]);
		}
		if (mm->own != NULL) {
			bx_free(mm->own[l]);
		}
	}
	bx_free(mm->w);
	bx_free(mm->b);
	bx_free(mm->own);
	dnnl_primitive_destroy(mm->p);
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
	dnnl_memory_destroy(a->s2);
	dnnl_memory_destroy(a->p);
	dnnl_memory_destroy(a->v);
	dnnl_memory_destroy(a->c);
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
	if (dc == NULL) {
		return;
	}
	for (unsigned i = 0; i < NB_MM; i++) {
		mm_fini(&dc->mm[i], dc->m->shape.layers);
	}
	for (unsigned l = 0; dc->att != NULL && l <= dc->m->max_tokens; l++) {
		att_fini(&dc->att[l]);
	}
	bx_free(dc->att);
	free_acts(dc);
	bx_free(dc->sc);
	bx_free(dc->pb);
	bx_free(dc->scratch);
	dnnl_stream_destroy(dc->strm);
	dnnl_engine_destroy(dc->eng);
	bx_free(dc);
}

/* Make sure the scratchpad holds what primitive pd needs. */
static dnnl_status_t
scratch_need(struct bx_dnnl_ctx *dc, const_dnnl_primitive_desc_t pd)
{
	size_t need = dnnl_memory_desc_get_size(
		dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0));

	if (need <= dc->scratch_size) {
		return dnnl_success;
	}
	bx_free(dc->scratch);
	dc->scratch_size = 0;
	dc->scratch = bx_aligned_alloc(64, (need + 63) & ~(size_t)63);
	if (dc->scratch == NULL) {
		return dnnl_out_of_memory;
	}
	dc->scratch_size = need;
	return dnnl_success;
}

static dnnl_status_t
ctx_mm(struct bx_dnnl_ctx *dc, unsigned which)
{
	const struct bx_embed_model *m = dc->m;
	struct mm *mm = &dc->mm[which];
	unsigned nl = m->shape.layers;
	const_dnnl_primitive_desc_t pd;
	dnnl_memory_desc_t bmd;
	void **w = dc->dm->packed + which;
	unsigned stride = NB_MM;
	dnnl_status_t st;

	mm_shape(m, which, &mm->k, &mm->n);
	mm->dst_dt = (which == MM_O || which == MM_DOWN) ? dnnl_f32 : dnnl_bf16;
	CHK(mm_create(dc->eng, which, mm->k, mm->n, &mm->p, &mm->wmd));
	CHK(dnnl_primitive_get_primitive_desc(mm->p, &pd));
	CHK(scratch_need(dc, pd));
	mm->w = bx_calloc(nl, sizeof(*mm->w));
	mm->b = bx_calloc(nl, sizeof(*mm->b));
	if (mm->w == NULL || mm->b == NULL) {
		return dnnl_out_of_memory;
	}
	if (!dnnl_memory_desc_equal(&mm->wmd, &dc->dm->wmd[which])) {
		/* this thread count picked another layout: a private copy */
		mm->own = bx_calloc(nl, sizeof(void *));
		if (mm->own == NULL) {
			return dnnl_out_of_memory;
		}
		CHK(pack_all(m, dc->eng, dc->strm, which, &mm->wmd, mm->own, 1));
		w = mm->own;
		stride = 1;
	}
	CHK(dnnl_memory_desc_init_by_tag(&bmd, 2, (dnnl_dims_t){ 1, mm->n }, dnnl_f32, dnnl_ab));
	for (unsigned l = 0; l < nl; l++) {
		const float *b = which == MM_QKV ? dc->dm->qkv_bias + (size_t)l * mm->n :
		                 which == MM_O   ? m->layers[l].o_b :
		                 which == MM_UP  ? m->layers[l].i_b :
		                                   m->layers[l].f_b;

		CHK(dnnl_memory_create(&mm->w[l], &mm->wmd, dc->eng, w[l * stride]));
		CHK(dnnl_memory_create(&mm->b[l], &bmd, dc->eng, (void *)b));
	}
out:
	return st;
}

int
bx_dnnl_ctx_create(const struct bx_embed_model *m, unsigned nb_threads, struct bx_dnnl_ctx **out)
{
	struct bx_dnnl_ctx *dc = bx_calloc(1, sizeof(*dc));
	unsigned mt = m->max_tokens, heads = m->shape.heads;
	dnnl_status_t st = dnnl_out_of_memory;

	if (dc == NULL) {
		return -ENOMEM;
	}
	dc->m = m;
	dc->dm = m->dn;
	dc->nb_threads = nb_threads;
	omp_set_num_threads((int)nb_threads);
	dc->att = bx_calloc(mt + 1, sizeof(*dc->att));
	dc->sc = bx_aligned_alloc(64, sizeof(float) * heads * mt * mt);
	dc->pb = bx_aligned_alloc(64, sizeof(uint16_t) * heads * mt * mt);
	if (dc->att == NULL || dc->sc == NULL || dc->pb == NULL) {
		goto out;
	}
	CHK(dnnl_engine_create(&dc->eng, dnnl_cpu, 0));
	CHK(dnnl_stream_create(&dc->strm, dc->eng, dnnl_stream_default_flags));
	for (unsigned i = 0; i < NB_MM; i++) {
		CHK(ctx_mm(dc, i));
	}
out:
	if (st != dnnl_success) {
		bx_dnnl_ctx_destroy(dc);
		return dnnl_errno(st);
	}
	*out = dc;
	return 0;
}

/* ---------------------------------------------------------------- */
/* Attention for one sequence length L */

static dnnl_status_t
att_create(struct bx_dnnl_ctx *dc, unsigned L, struct att *a)
{
	unsigned h = dc->m->shape.hidden, nh = dc->m->shape.heads, d = h / nh;
	dnnl_memory_desc_t q, k, s, p, v, c;
	dnnl_primitive_desc_t pd = NULL;
	dnnl_primitive_attr_t attr = NULL;
	dnnl_matmul_desc_t md;
	dnnl_softmax_v2_desc_t sd;
	float scale = 1.0f / sqrtf((float)d);
	dnnl_status_t st;

	CHK(dnnl_memory_desc_init_by_strides(&q, 3, (dnnl_dims_t){ nh, L, d }, dnnl_bf16,
	                                     (dnnl_dims_t){ d, 3 * h, 1 }));
	CHK(dnnl_memory_desc_init_by_strides(&k, 3, (dnnl_dims_t){ nh, d, L }, dnnl_bf16,
	                                     (dnnl_dims_t){ d, 1, 3 * h }));
	CHK(dnnl_memory_desc_init_by_tag(&s, 3, (dnnl_dims_t){ nh, L, L }, dnnl_f32, dnnl_abc));
	CHK(dnnl_memory_desc_init_by_tag(&p, 3, (dnnl_dims_t){ nh, L, L }, dnnl_bf16, dnnl_abc));
	v = q;
	CHK(dnnl_memory_desc_init_by_strides(&c, 3, (dnnl_dims_t){ nh, L, d }, dnnl_bf16,
	                                     (dnnl_dims_t){ d, h, 1 }));
	CHK(dnnl_primitive_attr_create(&attr));
	CHK(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user));
	CHK(dnnl_primitive_attr_set_output_scales(attr, 1, 0, &scale));
	CHK(dnnl_matmul_desc_init(&md, &q, &k, NULL, &s));
	CHK(dnnl_primitive_desc_create(&pd, &md, attr, dc->eng, NULL));
	CHK(scratch_need(dc, pd));
	CHK(dnnl_primitive_create(&a->qk, pd));
	dnnl_primitive_desc_destroy(pd);
	pd = NULL;
	dnnl_primitive_attr_destroy(attr);
	CHK(dnnl_primitive_attr_create(&attr));
	CHK(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user));
	CHK(dnnl_softmax_v2_forward_desc_init(&sd, dnnl_forward_inference, dnnl_softmax_accurate,
	                                      &s, &p, 2));
	CHK(dnnl_primitive_desc_create(&pd, &sd, attr, dc->eng, NULL));
	CHK(scratch_need(dc, pd));
	CHK(dnnl_primitive_create(&a->sm, pd));
	dnnl_primitive_desc_destroy(pd);
	pd = NULL;
	CHK(dnnl_matmul_desc_init(&md, &p, &v, NULL, &c));
	CHK(dnnl_primitive_desc_create(&pd, &md, attr, dc->eng, NULL));
	CHK(scratch_need(dc, pd));
	CHK(dnnl_primitive_create(&a->pv, pd));
	CHK(dnnl_memory_create(&a->q, &q, dc->eng, DNNL_MEMORY_NONE));
	CHK(dnnl_memory_create(&a->k, &k, dc->eng, DNNL_MEMORY_NONE));
	CHK(dnnl_memory_create(&a->s, &s, dc->eng, dc->sc));
	CHK(dnnl_memory_create(&a->s2, &p, dc->eng, dc->pb));
	CHK(dnnl_memory_create(&a->v, &v, dc->eng, DNNL_MEMORY_NONE));
	CHK(dnnl_memory_create(&a->c, &c, dc->eng, DNNL_MEMORY_NONE));
out:
	dnnl_primitive_desc_destroy(pd);
	dnnl_primitive_attr_destroy(attr);
	return st;
}

static dnnl_status_t
exec(struct bx_dnnl_ctx *dc, dnnl_primitive_t p, int n, dnnl_exec_arg_t *args)
{
	const_dnnl_primitive_desc_t pd;
	dnnl_memory_t sp;
	dnnl_status_t st;

	CHK(dnnl_primitive_get_primitive_desc(p, &pd));
	CHK(dnnl_memory_create(&sp, dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0),
	                       dc->eng, dc->scratch));
	args[n].arg = DNNL_ARG_SCRATCHPAD;
	args[n].memory = sp;
	st = dnnl_primitive_execute(p, dc->strm, n + 1, args);
	dnnl_memory_destroy(sp);
out:
	return st;
}

/* Attention of one sequence: rows [off, off + L) of qkv -> rows of cb. */
static dnnl_status_t
attend(struct bx_dnnl_ctx *dc, unsigned off, unsigned L)
{
	unsigned h = dc->m->shape.hidden;
	struct att *a = &dc->att[L];
	uint16_t *base = dc->qkv + (size_t)off * 3 * h;
	dnnl_status_t st;

	if (a->qk == NULL) {
		st = att_create(dc, L, a);
		if (st != dnnl_success) {
			att_fini(a);
			memset(a, 0, sizeof(*a));
			return st;
		}
	}
	CHK(dnnl_memory_set_data_handle(a->q, base));
	CHK(dnnl_memory_set_data_handle(a->k, base + h));
	CHK(dnnl_memory_set_data_handle(a->v, base + 2 * h));
	CHK(dnnl_memory_set_data_handle(a->c, dc->cb + (size_t)off * h));
	CHK(exec(dc, a->qk, 3,
	         (dnnl_exec_arg_t[4]){ { DNNL_ARG_SRC, a->q },
	                               { DNNL_ARG_WEIGHTS, a->k },
	                               { DNNL_ARG_DST, a->s } }));
	CHK(exec(dc, a->sm, 2,
	         (dnnl_exec_arg_t[3]){ { DNNL_ARG_SRC, a->s }, { DNNL_ARG_DST, a->s2 } }));
	CHK(exec(dc, a->pv, 3,
	         (dnnl_exec_arg_t[4]){ { DNNL_ARG_SRC, a->s2 },
	                               { DNNL_ARG_WEIGHTS, a->v },
	                               { DNNL_ARG_DST, a->c } }));
out:
	return st;
}

/* ---------------------------------------------------------------- */
/* Linear layers */

static dnnl_status_t
linear(struct bx_dnnl_ctx *dc, unsigned which, unsigned l, unsigned T, void *src, void *dst)
{
	struct mm *mm = &dc->mm[which];
	dnnl_memory_desc_t smd, dmd;
	dnnl_memory_t ms = NULL, md = NULL;
	dnnl_status_t st;

	CHK(dnnl_memory_desc_init_by_tag(&smd, 2, (dnnl_dims_t){ T, mm->k }, dnnl_bf16, dnnl_ab));
	CHK(dnnl_memory_desc_init_by_tag(&dmd, 2, (dnnl_dims_t){ T, mm->n }, mm->dst_dt, dnnl_ab));
	CHK(dnnl_memory_create(&ms, &smd, dc->eng, src));
	CHK(dnnl_memory_create(&md, &dmd, dc->eng, dst));
	CHK(exec(dc, mm->p, 4,
	         (dnnl_exec_arg_t[5]){ { DNNL_ARG_SRC, ms },
	                               { DNNL_ARG_WEIGHTS, mm->w[l] },
	                               { DNNL_ARG_BIAS, mm->b[l] },
	                               { DNNL_ARG_DST, md } }));
out:
	dnnl_memory_destroy(ms);
	dnnl_memory_destroy(md);
	return st;
}

/* LayerNorm rows [0, T) of x in place (f32 statistics) and write their bf16 copy to xb. */
static void
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

static void
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

static int
grow_acts(struct bx_dnnl_ctx *dc, unsigned T)
{
	unsigned h = dc->m->shape.hidden, f = dc->m->shape.ffn;
	unsigned cap = BX_MAX(T, 256u);

	if (T <= dc->cap_tokens) {
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
	dc->cap_tokens = cap;
	return 0;
}

static dnnl_status_t
layer(struct bx_dnnl_ctx *dc, unsigned l, const unsigned *lens, unsigned n, unsigned T)
{
	const struct bx_embed_model *m = dc->m;
	const struct bx_embed_layer *ly = &m->layers[l];
	unsigned h = m->shape.hidden, off = 0;
	dnnl_status_t st;

	CHK(linear(dc, MM_QKV, l, T, dc->xb, dc->qkv));
	for (unsigned s = 0; s < n; s++) {
		CHK(attend(dc, off, lens[s]));
		off += lens[s];
	}
	CHK(linear(dc, MM_O, l, T, dc->cb, dc->x));
	ln_rows(dc->x, dc->xb, T, h, ly->ln1_g, ly->ln1_b, m->eps);
	CHK(linear(dc, MM_UP, l, T, dc->xb, dc->ffn));
	CHK(linear(dc, MM_DOWN, l, T, dc->ffn, dc->x));
	ln_rows(dc->x, dc->xb, T, h, ly->ln2_g, ly->ln2_b, m->eps);
out:
	return st;
}

int
bx_dnnl_forward(struct bx_dnnl_ctx *dc, const int32_t *const *ids, const unsigned *lens, unsigned n,
                float *out)
{
	const struct bx_embed_model *m = dc->m;
	unsigned h = m->shape.hidden, T = 0, off = 0;
	dnnl_status_t st = dnnl_success;
	int ret;

	for (unsigned s = 0; s < n; s++) {
		T += lens[s];
	}
	if (T == 0) {
		return 0;
	}
	ret = grow_acts(dc, T);
	if (ret < 0) {
		return ret;
	}
	omp_set_num_threads((int)dc->nb_threads);
	embed_tokens(dc, ids, lens, n);
	for (unsigned l = 0; l < m->shape.layers; l++) {
		CHK(layer(dc, l, lens, n, T));
	}
	for (unsigned s = 0; s < n; s++) {
		bx_embed_pool(dc->x + (size_t)off * h, lens[s], h, out + (size_t)s * h);
		off += lens[s];
	}
out:
	return dnnl_errno(st);
}
