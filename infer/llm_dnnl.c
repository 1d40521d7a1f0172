/*
 * Prefill chunks and batched decode steps on oneDNN 2.6 matmuls (research
 * inference.md §1.2, §1.5, §2.1, §4.4).
 *
 * bx_llm_model_pack_dnnl packs every matrix once at load into the layout
 * oneDNN's brgemm matmul picks (format_tag_any, then a reorder):
 *  - block types (Q8_0, Q4_0, Q4_1, Q4_K, Q6_K) are requantized to int8
 *    with one scale per output row (s = max|w| / 127): 1 byte a weight;
 *  - F16 and BF16 become bf16 (AMX-BF16 or AVX512-BF16); F32 stays f32.
 * Matrices that a step multiplies by the same input (Q|K|V, gate|up) are
 * packed side by side as one wider matrix, so they run as one matmul.
 *
 * int8 runs as u8 x s8 -> s32: activations are quantized per token at run
 * time, asymmetric (x = sa * (u - zp)). oneDNN 2.6 has no per-row output
 * scales (§1.5), so the s32 sums are scaled here:
 *   y[m][n] = sa[m] * sw[n] * (acc[m][n] - zp[m] * colsum[n]),
 * with colsum[n] the sum of row n's int8 weights. A u8 source keeps one
 * weights layout for every M (with an s8 source the VNNI kernels want a
 * compensation buffer inside the weights and the AMX ones do not).
 *
 * The brgemm kernels need a fixed M (a runtime M gives gemm:jit, §1.2), so
 * a context creates its primitives per (shape, M) the first time a step of
 * that size comes, with the packed layout as the weights descriptor; one
 * whose implementation is not brgemm AMX/VNNI/BF16 is marked unusable and
 * those steps keep the AVX-512 block kernels (llm_quant.c).
 *
 * Threads: oneDNN's OpenMP team is the calling thread's, sized by
 * omp_set_num_threads and fixed when a primitive is created (§2.1). A
 * context sets the calling thread's count to its own before creating or
 * running a primitive, and never calls oneDNN inside a parallel region.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <omp.h>
#include <string.h>

#include "dnnl_inc.h"
#include "llm_int.h"

#if defined(__x86_64__)
#include <immintrin.h>
#define DN_X86 1
#define DN_AVX __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl")))
#endif

#define PROBE_M   16   /* M of the primitive that picks the packed layout */
#define GROUP_MAX 3    /* Q|K|V */
#define PAGE      4096 /* packed matrices start on their own page */
#define PAR_MIN   8192 /* elements of work before a loop forks the team */

/* One matmul's weights: 1 to GROUP_MAX matrices of the same input width, side by side. */
struct llm_dnnl_w {
	dnnl_memory_desc_t md; /* packed W^T [k][n] */
	void *data;            /* in the model's buffer */
	float *scale;          /* [n] int8: weight = scale * q */
	int32_t *colsum;       /* [n] int8: sum of the row's q */
	struct llm_tensor *t[GROUP_MAX];
	uint32_t off[GROUP_MAX + 1]; /* matrix j is rows off[j] .. off[j + 1] */
	uint32_t k, kp, n;           /* input width; as the matmul sees it (bf16: padded to 32) */
	unsigned nb, id, shape;      /* matrices; index in the model; first group of its shape */
	dnnl_data_type_t wdt;        /* s8, bf16 or f32 */
	bool skip;                   /* no good kernel for this shape: left to the block kernels */
};

struct llm_dnnl_model {
	struct llm_dnnl_w *w; /* [nb_w] */
	unsigned nb_w, nb_shapes;
	uint32_t k_max, n_max;
	void *buf;        /* packed weights */
	size_t buf_bytes; /* what they cost */
	void *sbuf;       /* scales and column sums */
};

static dnnl_data_type_t
w_dt(enum bx_llm_type t)
{
	switch (t) {
	case BX_LLM_F32:
		return dnnl_f32;
	case BX_LLM_F16:
	case BX_LLM_BF16:
		return dnnl_bf16;
	default:
		return dnnl_s8;
	}
}

static dnnl_data_type_t
src_dt(dnnl_data_type_t wdt)
{
	return wdt == dnnl_s8 ? dnnl_u8 : wdt;
}

/*
 * The input width the matmul sees: bf16 rows zero-padded to 32 as
 * llm_to_bf16 writes them (the weights get zero rows to match), because a
 * strided source makes oneDNN drop brgemm for gemm:jit.
 */
static uint32_t
k_pad(dnnl_data_type_t wdt, uint32_t k)
{
	return wdt == dnnl_bf16 ? (uint32_t)llm_bf16_cols(k) : k;
}

static int
dnnl_errno(dnnl_status_t st)
{
	return st == dnnl_success ? 0 : st == dnnl_out_of_memory ? -ENOMEM : -ENOTSUP;
}

/* src [M][k] x W^T [k][n] -> dst [M][n] (s32 for int8, else f32); wmd NULL: oneDNN picks. */
static dnnl_status_t
mm_pd(dnnl_engine_t eng, unsigned rows, const struct llm_dnnl_w *g, const dnnl_memory_desc_t *wmd,
      dnnl_primitive_desc_t *out)
{
	dnnl_memory_desc_t src, wei, dst;
	dnnl_primitive_attr_t attr = NULL;
	dnnl_matmul_desc_t d;
	dnnl_status_t st;

	CHK(dnnl_memory_desc_init_by_tag(&src, 2, (dnnl_dims_t){ rows, g->kp }, src_dt(g->wdt),
	                                 dnnl_ab));
	if (wmd) {
		wei = *wmd;
	} else {
		CHK(dnnl_memory_desc_init_by_tag(&wei, 2, (dnnl_dims_t){ g->kp, g->n }, g->wdt,
		                                 dnnl_format_tag_any));
	}
	CHK(dnnl_memory_desc_init_by_tag(&dst, 2, (dnnl_dims_t){ rows, g->n },
	                                 g->wdt == dnnl_s8 ? dnnl_s32 : dnnl_f32, dnnl_ab));
	CHK(dnnl_matmul_desc_init(&d, &src, &wei, NULL, &dst));
	CHK(dnnl_primitive_attr_create(&attr));
	CHK(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user));
	CHK(dnnl_primitive_desc_create(out, &d, attr, eng, NULL));
out:
	dnnl_primitive_attr_destroy(attr);
	return st;
}

static const char *
impl_name(const_dnnl_primitive_desc_t pd)
{
	const char *impl = NULL;

	if (dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl) != dnnl_success ||
	    !impl) {
		return "?";
	}
	return impl;
}

/* The kernels worth leaving the AVX-512 block kernels for: brgemm on AMX, VNNI or BF16. */
static bool
impl_ok(const_dnnl_primitive_desc_t pd, dnnl_data_type_t wdt)
{
	const char *impl = impl_name(pd);

	if (strncmp(impl, "brg:", 4) != 0) {
		return false;
	}
	if (wdt == dnnl_s8) {
		return strstr(impl, "amx") || strstr(impl, "vnni");
	}
	return wdt == dnnl_f32 || strstr(impl, "bf16");
}

/* ---- packing at load ---- */

/* Matrices ts[0..nt) as one group when they share the class and input width, else one each. */
static unsigned
add_group(struct llm_dnnl_w *w, unsigned n, struct llm_tensor *const *ts, unsigned nt)
{
	bool same = true;

	for (unsigned i = 1; i < nt; i++) {
		same = same && w_dt(ts[i]->type) == w_dt(ts[0]->type) && ts[i]->cols == ts[0]->cols;
	}
	for (unsigned i = 0; i < nt; i++) {
		struct llm_dnnl_w *g = &w[n - (i > 0 && same)];

		if (i == 0 || !same) {
			g = &w[n++];
			g->wdt = w_dt(ts[i]->type);
			g->k = ts[i]->cols;
			g->kp = k_pad(g->wdt, g->k);
		}
		g->t[g->nb] = ts[i];
		g->off[g->nb + 1] = g->off[g->nb] + ts[i]->rows;
		g->n = g->off[++g->nb];
	}
	return n;
}

static unsigned
make_groups(struct bx_llm_model *m, struct llm_dnnl_w *w)
{
	struct llm_tensor *out = &m->out;
	unsigned n = 0;

	for (uint32_t l = 0; l < m->cfg.n_layers; l++) {
		struct llm_layer *y = &m->layers[l];
		struct llm_tensor *qkv[] = { &y->wq, &y->wk, &y->wv }, *gu[] = { &y->w1, &y->w3 };
		struct llm_tensor *o = &y->wo, *d = &y->w2;

		n = add_group(w, n, qkv, 3);
		n = add_group(w, n, &o, 1);
		n = add_group(w, n, gu, 2);
		n = add_group(w, n, &d, 1);
	}
	return add_group(w, n, &out, 1);
}

/*
 * Group i's packed layout: its shape's, or a new shape's from a probe
 * primitive. A shape whose kernel is not brgemm AMX/VNNI/BF16 is skipped
 * (its matrices keep the block kernels); the reason goes to eb.
 */
static void
plan_group(struct llm_dnnl_model *dm, unsigned i, dnnl_engine_t eng, struct bx_errbuf *eb)
{
	struct llm_dnnl_w *g = &dm->w[i];
	dnnl_primitive_desc_t pd = NULL;

	g->id = i;
	for (unsigned j = 0; j < i; j++) {
		if (dm->w[j].k == g->k && dm->w[j].n == g->n && dm->w[j].wdt == g->wdt) {
			g->md = dm->w[j].md;
			g->shape = dm->w[j].shape;
			g->skip = dm->w[j].skip;
			return;
		}
	}
	g->skip = true;
	if (mm_pd(eng, PROBE_M, g, NULL, &pd) != dnnl_success) {
		bx_err(eb, ENOTSUP, "oneDNN: no %s matmul of %u x %u here", dnnl_dt2str(g->wdt),
		       g->n, g->k);
		return;
	}
	if (!impl_ok(pd, g->wdt)) {
		bx_err(eb, ENOTSUP, "oneDNN picks %s for a %s matmul of %u x %u: not AMX/VNNI/BF16",
		       impl_name(pd), dnnl_dt2str(g->wdt), g->n, g->k);
	} else {
		g->md = *dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
		g->shape = dm->nb_shapes++;
		g->skip = false;
		dm->k_max = BX_MAX(dm->k_max, g->kp);
		dm->n_max = BX_MAX(dm->n_max, g->n);
	}
	dnnl_primitive_desc_destroy(pd);
}

static int
alloc_bufs(struct llm_dnnl_model *dm, struct bx_errbuf *eb)
{
	size_t total = 0, nq = 0;
	uint8_t *p;

	for (unsigned i = 0; i < dm->nb_w; i++) {
		if (!dm->w[i].skip) {
			total += (dnnl_memory_desc_get_size(&dm->w[i].md) + PAGE - 1) / PAGE * PAGE;
			nq += dm->w[i].wdt == dnnl_s8 ? dm->w[i].n : 0;
		}
	}
	dm->buf = bx_aligned_alloc(PAGE, total);
	dm->sbuf = bx_malloc(nq * 8 + 8);
	if (!dm->buf || !dm->sbuf) {
		return bx_err(eb, ENOMEM, "oneDNN copies: out of memory (%zu bytes)", total);
	}
	llm_hugepages(dm->buf, total);
	dm->buf_bytes = total + nq * 8;
	p = dm->buf;
	nq = 0;
	for (unsigned i = 0; i < dm->nb_w; i++) {
		struct llm_dnnl_w *g = &dm->w[i];

		if (g->skip) {
			continue;
		}
		g->data = p;
		p += (dnnl_memory_desc_get_size(&g->md) + PAGE - 1) / PAGE * PAGE;
		if (g->wdt == dnnl_s8) {
			g->scale = (float *)dm->sbuf + nq;
			g->colsum = (int32_t *)dm->sbuf + nq + g->n;
			nq += 2 * (size_t)g->n;
		}
	}
	return 0;
}

static uint16_t
to_bf16(float f)
{
	uint32_t u;

	memcpy(&u, &f, 4);
	u += 0x7fff + ((u >> 16) & 1); /* round to nearest even */
	return (uint16_t)(u >> 16);
}

#ifdef DN_X86
/* w[k] -> q[k] = round(w * 127 / max|w|) with their sum; returns max|w| / 127. */
DN_AVX static float
quant_w(const float *w, uint32_t k, int8_t *q, int32_t *sum)
{
	__m512 amax = _mm512_setzero_ps(), inv;
	__m512i acc = _mm512_setzero_si512(), lo = _mm512_set1_epi32(-127),
		hi = _mm512_set1_epi32(127);
	float m;
	uint32_t i;

	for (i = 0; i < k; i += 16) {
		__mmask16 mk = k - i >= 16 ? 0xffff : (__mmask16)((1u << (k - i)) - 1);

		amax = _mm512_max_ps(amax, _mm512_abs_ps(_mm512_maskz_loadu_ps(mk, w + i)));
	}
	m = _mm512_reduce_max_ps(amax);
	inv = _mm512_set1_ps(m > 0 ? 127 / m : 0);
	for (i = 0; i < k; i += 16) {
		__mmask16 mk = k - i >= 16 ? 0xffff : (__mmask16)((1u << (k - i)) - 1);
		__m512i v =
			_mm512_cvtps_epi32(_mm512_mul_ps(_mm512_maskz_loadu_ps(mk, w + i), inv));

		v = _mm512_min_epi32(_mm512_max_epi32(v, lo), hi);
		acc = _mm512_add_epi32(acc, v);
		_mm512_mask_cvtsepi32_storeu_epi8(q + i, mk, v);
	}
	*sum = _mm512_reduce_add_epi32(acc);
	return m / 127;
}
#else
static float
quant_w(const float *w, uint32_t k, int8_t *q, int32_t *sum)
{
	float m = 0, inv;

	for (uint32_t i = 0; i < k; i++) {
		m = fmaxf(m, fabsf(w[i]));
	}
	inv = m > 0 ? 127 / m : 0;
	*sum = 0;
	for (uint32_t i = 0; i < k; i++) {
		q[i] = (int8_t)BX_MAX(-127, BX_MIN(127, lrintf(w[i] * inv)));
		*sum += q[i];
	}
	return m / 127;
}
#endif

/* Row r of group g (f32 values in row) into the plain [n][k] buffer. */
static void
store_row(struct llm_dnnl_w *g, uint32_t r, const float *row, void *plain)
{
	if (g->wdt == dnnl_f32) {
		memcpy((float *)plain + (size_t)r * g->k, row, (size_t)g->k * 4);
		return;
	}
	if (g->wdt == dnnl_bf16) {
		for (uint32_t i = 0; i < g->kp; i++) {
			((uint16_t *)plain)[(size_t)r * g->kp + i] = i < g->k ? to_bf16(row[i]) : 0;
		}
		return;
	}
	g->scale[r] = quant_w(row, g->k, (int8_t *)plain + (size_t)r * g->k, &g->colsum[r]);
}

/* Every row of g through llm_row_f32, on all threads (rows: k_max floats a thread). */
static void
fill_plain(struct llm_dnnl_w *g, void *plain, float *rows, size_t k_max)
{
#pragma omp parallel
	{
		float *row = rows + (size_t)omp_get_thread_num() * k_max;

#pragma omp for schedule(dynamic, 64)
		for (uint32_t r = 0; r < g->n; r++) {
			unsigned j = 0;

			while (r >= g->off[j + 1]) {
				j++;
			}
			llm_row_f32(g->t[j], r - g->off[j], row);
			store_row(g, r, row, plain);
		}
	}
}

/* plain [n][k] (W^T [k][n] read as `ba`) -> the packed layout. */
static dnnl_status_t
reorder(struct llm_dnnl_w *g, void *plain, dnnl_engine_t eng, dnnl_stream_t strm)
{
	return bx_dnnl_pack_ba(eng, strm, plain, g->wdt, g->kp, g->n, &g->md, g->data);
}

static int
fill_all(struct llm_dnnl_model *dm, dnnl_engine_t eng, struct bx_errbuf *eb)
{
	size_t plain_max = (size_t)dm->k_max * dm->n_max * 4;
	float *rows = bx_malloc((size_t)omp_get_max_threads() * dm->k_max * sizeof(float));
	void *plain = bx_aligned_alloc(64, plain_max);
	dnnl_stream_t strm = NULL;
	dnnl_status_t st = dnnl_out_of_memory;

	if (!rows || !plain) {
		goto out;
	}
	CHK(dnnl_stream_create(&strm, eng, dnnl_stream_default_flags));
	for (unsigned i = 0; i < dm->nb_w; i++) {
		if (!dm->w[i].skip) {
			fill_plain(&dm->w[i], plain, rows, dm->k_max);
			CHK(reorder(&dm->w[i], plain, eng, strm));
		}
	}
out:
	if (strm) {
		dnnl_stream_destroy(strm);
	}
	bx_free(rows);
	bx_free(plain);
	if (st != dnnl_success) {
		return bx_err(eb, -dnnl_errno(st), "oneDNN copies: cannot pack the weights (%s)",
		              dnnl_status2str(st));
	}
	return 0;
}

void
llm_dnnl_model_free(struct llm_dnnl_model *dm)
{
	if (!dm) {
		return;
	}
	bx_free(dm->buf);
	bx_free(dm->sbuf);
	bx_free(dm->w);
	bx_free(dm);
}

size_t
llm_dnnl_model_bytes(const struct llm_dnnl_model *dm)
{
	return dm ? dm->buf_bytes : 0;
}

static int
pack(struct bx_llm_model *m, struct llm_dnnl_model *dm, struct bx_errbuf *eb)
{
	dnnl_engine_t eng = NULL;
	int ret;

	dm->w = bx_calloc(7 * (size_t)m->cfg.n_layers + 1, sizeof(*dm->w));
	if (!dm->w) {
		return bx_err(eb, ENOMEM, "oneDNN copies: out of memory");
	}
	if (dnnl_engine_create(&eng, dnnl_cpu, 0) != dnnl_success) {
		return bx_err(eb, ENOTSUP, "oneDNN: no CPU engine");
	}
	dm->nb_w = make_groups(m, dm->w);
	for (unsigned i = 0; i < dm->nb_w; i++) {
		plan_group(dm, i, eng, eb);
	}
	/* none packed: the message of the last shape that had no kernel says why */
	ret = dm->nb_shapes ? alloc_bufs(dm, eb) : -ENOTSUP;
	ret = ret ? ret : fill_all(dm, eng, eb);
	dnnl_engine_destroy(eng);
	return ret;
}

int
bx_llm_model_pack_dnnl(struct bx_llm_model *m, struct bx_errbuf *eb)
{
	struct llm_dnnl_model *dm;
	int ret;

	if (m->dnnl) {
		return 0;
	}
	if (!llm_have_avx512()) {
		return bx_err(eb, ENOTSUP, "oneDNN copies: this CPU has no AVX-512 VNNI");
	}
	dm = bx_calloc(1, sizeof(*dm));
	if (!dm) {
		return bx_err(eb, ENOMEM, "oneDNN copies: out of memory");
	}
	ret = pack(m, dm, eb);
	if (ret) {
		llm_dnnl_model_free(dm);
		return ret;
	}
	for (unsigned i = 0; i < dm->nb_w; i++) {
		for (unsigned j = 0; j < dm->w[i].nb && !dm->w[i].skip; j++) {
			dm->w[i].t[j]->dnnl = &dm->w[i];
		}
	}
	m->dnnl = dm;
	m->dnnl_min_batch = LLM_DNNL_MIN_BATCH;
	return 0;
}

/* ---- a worker's context ---- */

/* One (shape, M) primitive, its memory objects over buffers set at each run. */
struct mm_entry {
	dnnl_primitive_t p;
	dnnl_memory_t src, dst, sp;
	int state; /* 0 not tried yet, 1 ready, -1 not usable here */
};

struct llm_dnnl_ctx {
	const struct llm_dnnl_model *dm;
	dnnl_engine_t eng;
	dnnl_stream_t strm;
	unsigned nt, max_rows; /* a matmul runs on at most max_rows tokens at a time */
	struct mm_entry *e;    /* [nb_shapes][max_rows], M = 1 .. max_rows */
	dnnl_memory_t *wmem;   /* [nb_w] each group's packed weights */
	void *src;             /* [max_rows][bf16 cols of k_max] u8 or bf16 activations */
	int32_t *acc;          /* [max_rows][n_max] s32 or f32 sums */
	float *sa;             /* [max_rows] activation scales */
	int32_t *zp;           /* [max_rows] zero points */
	void *scratch;
	size_t scratch_bytes;
};

static void
entry_free(struct mm_entry *e)
{
	dnnl_memory_destroy(e->src);
	dnnl_memory_destroy(e->dst);
	dnnl_memory_destroy(e->sp);
	dnnl_primitive_destroy(e->p);
	memset(e, 0, sizeof(*e));
}

void
llm_dnnl_ctx_destroy(struct llm_dnnl_ctx *dc)
{
	if (!dc) {
		return;
	}
	for (size_t i = 0; dc->e && i < (size_t)dc->dm->nb_shapes * dc->max_rows; i++) {
		entry_free(&dc->e[i]);
	}
	for (unsigned i = 0; dc->wmem && i < dc->dm->nb_w; i++) {
		dnnl_memory_destroy(dc->wmem[i]);
	}
	if (dc->strm) {
		dnnl_stream_destroy(dc->strm);
	}
	if (dc->eng) {
		dnnl_engine_destroy(dc->eng);
	}
	bx_free(dc->e);
	bx_free(dc->wmem);
	bx_free(dc->src);
	bx_free(dc->acc);
	bx_free(dc->sa);
	bx_free(dc->scratch);
	bx_free(dc);
}

/* Weights memory objects made once: setting a handle may zero a blocked layout's padding. */
static dnnl_status_t
ctx_objects(struct llm_dnnl_ctx *dc)
{
	dnnl_status_t st;

	CHK(dnnl_engine_create(&dc->eng, dnnl_cpu, 0));
	CHK(dnnl_stream_create(&dc->strm, dc->eng, dnnl_stream_default_flags));
	for (unsigned i = 0; i < dc->dm->nb_w; i++) {
		const struct llm_dnnl_w *g = &dc->dm->w[i];

		if (!g->skip) {
			CHK(dnnl_memory_create(&dc->wmem[i], &g->md, dc->eng, g->data));
		}
	}
out:
	return st;
}

int
llm_dnnl_ctx_create(const struct bx_llm_model *m, unsigned max_batch, unsigned nb_threads,
                    struct llm_dnnl_ctx **out)
{
	const struct llm_dnnl_model *dm = m->dnnl;
	struct llm_dnnl_ctx *dc = bx_calloc(1, sizeof(*dc));
	size_t B = BX_MIN(max_batch, LLM_DNNL_ROWS_MAX);
	int ret = -ENOMEM;

	if (!dc) {
		return -ENOMEM;
	}
	dc->dm = dm;
	dc->max_rows = (unsigned)B;
	dc->nt = nb_threads ? nb_threads : 1;
	omp_set_num_threads((int)dc->nt);
	dc->e = bx_calloc((size_t)dm->nb_shapes * B, sizeof(*dc->e));
	dc->wmem = bx_calloc(dm->nb_w, sizeof(dnnl_memory_t));
	dc->src = bx_aligned_alloc(64, B * llm_bf16_cols(dm->k_max) * 2);
	dc->acc = bx_aligned_alloc(64, B * dm->n_max * 4);
	dc->sa = bx_malloc(B * (sizeof(float) + sizeof(int32_t)));
	if (!dc->e || !dc->wmem || !dc->src || !dc->acc || !dc->sa) {
		goto out;
	}
	dc->zp = (int32_t *)(dc->sa + B);
	/* rows past a step's tokens are read when its M is padded (their sums are dropped) */
	memset(dc->src, 0, B * llm_bf16_cols(dm->k_max) * 2);
	ret = dnnl_errno(ctx_objects(dc));
out:
	if (ret) {
		llm_dnnl_ctx_destroy(dc);
		return ret;
	}
	*out = dc;
	return 0;
}

static dnnl_status_t
entry_create(struct llm_dnnl_ctx *dc, const struct llm_dnnl_w *g, unsigned rows, struct mm_entry *e)
{
	dnnl_primitive_desc_t pd = NULL;
	dnnl_status_t st;

	CHK(mm_pd(dc->eng, rows, g, &g->md, &pd));
	if (!impl_ok(pd, g->wdt)) {
		st = dnnl_unimplemented;
		goto out;
	}
	CHK(bx_dnnl_scratch_grow(&dc->scratch, &dc->scratch_bytes, pd));
	CHK(dnnl_primitive_create(&e->p, pd));
	CHK(dnnl_memory_create(&e->src, dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0),
	                       dc->eng, DNNL_MEMORY_NONE));
	CHK(dnnl_memory_create(&e->dst, dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0),
	                       dc->eng, DNNL_MEMORY_NONE));
	CHK(dnnl_memory_create(&e->sp,
	                       dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0),
	                       dc->eng, DNNL_MEMORY_NONE));
out:
	dnnl_primitive_desc_destroy(pd);
	if (st != dnnl_success) {
		entry_free(e);
	}
	return st;
}

/*
 * The M a step of `rows` tokens runs at: exact up to 16 (decode batches),
 * then whole 16s, so a context creates at most 31 primitives a shape
 * instead of one for every prefill chunk length (~1.5 ms each). The padded
 * rows come from the context's own activation buffer; f32 matmuls read the
 * caller's x in place, so they stay exact.
 */
static unsigned
padded_rows(const struct llm_dnnl_ctx *dc, const struct llm_dnnl_w *g, unsigned rows)
{
	unsigned m = rows <= 16 || g->wdt == dnnl_f32 ? rows : (rows + 15) / 16 * 16;

	return BX_MIN(m, dc->max_rows);
}

static struct mm_entry *
entry(struct llm_dnnl_ctx *dc, const struct llm_dnnl_w *g, unsigned rows)
{
	struct mm_entry *e = &dc->e[(size_t)g->shape * dc->max_rows + rows - 1];

	if (e->state == 0) {
		e->state = entry_create(dc, g, rows, e) == dnnl_success ? 1 : -1;
	}
	return e->state > 0 ? e : NULL;
}

const char *
llm_dnnl_impl(struct llm_dnnl_ctx *dc, const struct llm_tensor *t, unsigned rows)
{
	const_dnnl_primitive_desc_t pd;
	struct mm_entry *e;

	if (!t->dnnl || !rows || rows > dc->max_rows) {
		return NULL;
	}
	omp_set_num_threads((int)dc->nt);
	e = entry(dc, t->dnnl, rows);
	if (!e || dnnl_primitive_get_primitive_desc(e->p, &pd) != dnnl_success) {
		return NULL;
	}
	return impl_name(pd);
}

/* ---- one step ---- */

#ifdef DN_X86
/* Token x[k] -> u[k] with x ~ s * (u - z): asymmetric, the range widened to hold 0. */
DN_AVX static void
quant_row(const float *x, uint32_t k, uint8_t *u, float *s, int32_t *z)
{
	__m512 lo = _mm512_setzero_ps(), hi = lo, inv;
	__m512i vz, v0 = _mm512_setzero_si512(), v255 = _mm512_set1_epi32(255);
	float mn, mx;
	uint32_t i;

	for (i = 0; i < k; i += 16) {
		__mmask16 mk = k - i >= 16 ? 0xffff : (__mmask16)((1u << (k - i)) - 1);
		__m512 v = _mm512_maskz_loadu_ps(mk, x + i);

		lo = _mm512_min_ps(lo, v);
		hi = _mm512_max_ps(hi, v);
	}
	mn = _mm512_reduce_min_ps(lo);
	mx = _mm512_reduce_max_ps(hi);
	*s = mx > mn && isfinite(mx - mn) ? (mx - mn) / 255 : 1;
	*z = (int32_t)lrintf(-mn / *s);
	inv = _mm512_set1_ps(1 / *s);
	vz = _mm512_set1_epi32(*z);
	for (i = 0; i < k; i += 16) {
		__mmask16 mk = k - i >= 16 ? 0xffff : (__mmask16)((1u << (k - i)) - 1);
		__m512i q =
			_mm512_cvtps_epi32(_mm512_mul_ps(_mm512_maskz_loadu_ps(mk, x + i), inv));

		q = _mm512_min_epi32(_mm512_max_epi32(_mm512_add_epi32(q, vz), v0), v255);
		_mm512_mask_cvtusepi32_storeu_epi8(u + i, mk, q);
	}
}

/* out[c - c0] = sa * sw[c] * (acc[c] - zp * colsum[c]) for c in [c0, c1). */
DN_AVX static void
scale_cols(const int32_t *acc, const struct llm_dnnl_w *g, float sa, int32_t zp, uint32_t c0,
           uint32_t c1, float *out)
{
	__m512i vz = _mm512_set1_epi32(zp);
	__m512 vs = _mm512_set1_ps(sa);

	for (uint32_t c = c0; c < c1; c += 16) {
		__mmask16 mk = c1 - c >= 16 ? 0xffff : (__mmask16)((1u << (c1 - c)) - 1);
		__m512i a = _mm512_sub_epi32(
			_mm512_maskz_loadu_epi32(mk, acc + c),
			_mm512_mullo_epi32(vz, _mm512_maskz_loadu_epi32(mk, g->colsum + c)));
		__m512 w = _mm512_mul_ps(vs, _mm512_maskz_loadu_ps(mk, g->scale + c));

		_mm512_mask_storeu_ps(out + c - c0, mk, _mm512_mul_ps(_mm512_cvtepi32_ps(a), w));
	}
}
#else
static void
quant_row(const float *x, uint32_t k, uint8_t *u, float *s, int32_t *z)
{
	float mn = 0, mx = 0;

	for (uint32_t i = 0; i < k; i++) {
		mn = fminf(mn, x[i]);
		mx = fmaxf(mx, x[i]);
	}
	*s = mx > mn && isfinite(mx - mn) ? (mx - mn) / 255 : 1;
	*z = (int32_t)lrintf(-mn / *s);
	for (uint32_t i = 0; i < k; i++) {
		u[i] = (uint8_t)BX_MAX(0, BX_MIN(255, lrintf(x[i] / *s) + *z));
	}
}

static void
scale_cols(const int32_t *acc, const struct llm_dnnl_w *g, float sa, int32_t zp, uint32_t c0,
           uint32_t c1, float *out)
{
	for (uint32_t c = c0; c < c1; c++) {
		out[c - c0] = (float)(acc[c] - zp * g->colsum[c]) * (sa * g->scale[c]);
	}
}
#endif

/* x [nb][k] f32 -> the context's u8 (with scales) or bf16 source rows. */
static void
prep_src(struct llm_dnnl_ctx *dc, const struct llm_dnnl_w *g, const float *x, unsigned nb)
{
	size_t ld = g->kp;

#pragma omp parallel for num_threads(dc->nt) if ((size_t)nb * g->k >= PAR_MIN)
	for (unsigned b = 0; b < nb; b++) {
		if (g->wdt == dnnl_s8) {
			quant_row(x + (size_t)b * g->k, g->k, (uint8_t *)dc->src + b * ld,
			          &dc->sa[b], &dc->zp[b]);
		} else {
			llm_to_bf16(x + (size_t)b * g->k, g->k, (uint16_t *)dc->src + b * ld);
		}
	}
}

/* acc [nb][n] -> outs[j] [nb][rows of matrix j], scaled back for int8. */
static void
epilogue(struct llm_dnnl_ctx *dc, const struct llm_dnnl_w *g, unsigned nb, float *const *outs)
{
	unsigned items = nb * g->nb;

#pragma omp parallel for num_threads(dc->nt) schedule(dynamic, 1) if ((size_t)nb * g->n >= PAR_MIN)
	for (unsigned it = 0; it < items; it++) {
		unsigned b = it / g->nb, j = it % g->nb;
		uint32_t c0 = g->off[j], c1 = g->off[j + 1];
		const int32_t *acc = dc->acc + (size_t)b * g->n;
		float *out = outs[j] + (size_t)b * (c1 - c0);

		if (g->wdt == dnnl_s8) {
			scale_cols(acc, g, dc->sa[b], dc->zp[b], c0, c1, out);
		} else {
			memcpy(out, (const float *)acc + c0, (size_t)(c1 - c0) * 4);
		}
	}
}

static int
run(struct llm_dnnl_ctx *dc, const struct llm_dnnl_w *g, const float *x, unsigned nb,
    float *const *outs)
{
	struct mm_entry *e = &dc->e[(size_t)g->shape * dc->max_rows + padded_rows(dc, g, nb) - 1];
	void *src = g->wdt == dnnl_f32 ? (void *)(uintptr_t)x : dc->src;
	dnnl_exec_arg_t args[] = { { DNNL_ARG_SRC, e->src },
		                   { DNNL_ARG_WEIGHTS, dc->wmem[g->id] },
		                   { DNNL_ARG_DST, e->dst },
		                   { DNNL_ARG_SCRATCHPAD, e->sp } };
	dnnl_status_t st;

	CHK(dnnl_memory_set_data_handle(e->src, src));
	CHK(dnnl_memory_set_data_handle(e->dst, dc->acc));
	CHK(dnnl_memory_set_data_handle(e->sp, dc->scratch));
	CHK(dnnl_primitive_execute(e->p, dc->strm, BX_ARRAY_SIZE(args), args));
	CHK(dnnl_stream_wait(dc->strm));
	epilogue(dc, g, nb, outs);
out:
	return dnnl_errno(st);
}

/* ws[0..nw) as whole groups, each with its primitive for M = rows. */
static bool
runnable(struct llm_dnnl_ctx *dc, const struct llm_tensor *const *ws, unsigned nw, unsigned rows)
{
	const struct llm_dnnl_w *g = NULL;

	for (unsigned i = 0; i < nw; i += g->nb) {
		g = ws[i]->dnnl;
		if (!g || i + g->nb > nw || !entry(dc, g, padded_rows(dc, g, rows))) {
			return false;
		}
		for (unsigned j = 0; j < g->nb; j++) {
			if (ws[i + j] != g->t[j]) {
				return false;
			}
		}
	}
	return true;
}

/* Tokens r0 .. r0 + rows of the step. */
static int
run_rows(struct llm_dnnl_ctx *dc, const struct llm_tensor *const *ws, float *const *outs,
         unsigned nw, const float *x, unsigned r0, unsigned rows)
{
	const struct llm_dnnl_w *g = NULL;
	dnnl_data_type_t ready = dnnl_data_type_undef;
	const float *xr = x + (size_t)r0 * ws[0]->cols;

	for (unsigned i = 0; i < nw; i += g->nb) {
		float *o[GROUP_MAX];
		int ret;

		g = ws[i]->dnnl;
		for (unsigned j = 0; j < g->nb; j++) {
			o[j] = outs[i + j] + (size_t)r0 * ws[i + j]->rows;
		}
		if (g->wdt != dnnl_f32 && g->wdt != ready) {
			prep_src(dc, g, xr, rows);
			ready = g->wdt;
		}
		ret = run(dc, g, xr, rows, o);
		if (ret) {
			return ret;
		}
	}
	return 0;
}

int
llm_dnnl_matmul(struct llm_dnnl_ctx *dc, const struct llm_tensor *const *ws, float *const *outs,
                unsigned nw, const float *x, unsigned nb)
{
	unsigned chunk = dc->max_rows;

	if (!nb || omp_in_parallel()) {
		return -ENOTSUP;
	}
	if (omp_get_max_threads() != (int)dc->nt) {
		omp_set_num_threads((int)dc->nt);
	}
	/* every primitive ready before any runs: a refusal leaves the whole step to the kernels */
	if (!runnable(dc, ws, nw, BX_MIN(nb, chunk)) ||
	    (nb > chunk && nb % chunk && !runnable(dc, ws, nw, nb % chunk))) {
		return -ENOTSUP;
	}
	for (unsigned r0 = 0; r0 < nb; r0 += chunk) {
		int ret = run_rows(dc, ws, outs, nw, x, r0, BX_MIN(nb - r0, chunk));

		if (ret) {
			return ret;
		}
	}
	return 0;
}
