/*
 * Sequences, worker contexts and the two calls the scheduler drives:
 * prefill (prompt tokens of one sequence) and step (one token for each of N
 * sequences). Each produced token is sampled, detokenized and checked
 * against the stop strings here, so what reaches the caller is final text.
 */
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "llm_int.h"

#define HOLD_MAX (LLM_STOP_LEN_MAX + BX_LLM_DETOK_OUT + 32)

struct bx_llm_ctx {
	const struct bx_llm_model *m;
	bool ref;
	unsigned max_batch;
	struct llm_fwd *fwd;
	float *scratch; /* reference path */
	float *logits;  /* [max_batch][vocab] */
	struct llm_kv **kvs;
	int32_t *toks;
	uint32_t *pos;
	bool *want;
};

struct bx_llm_seq {
	const struct bx_llm_model *m;
	struct bx_llm_sample_conf sc;
	uint32_t max_tokens, generated, pos;
	struct llm_kv kv;
	float *logits, *work; /* [vocab] each */
	int32_t *idx;         /* [vocab] */
	int32_t last;
	enum bx_llm_stop stop;
	uint64_t rng;
	int32_t recent[LLM_RECENT_MAX];
	uint32_t nb_recent;
	struct bx_llm_detok dt;
	char stops[LLM_STOPS_MAX][LLM_STOP_LEN_MAX + 1];
	unsigned nb_stops;
	char hold[HOLD_MAX], out[HOLD_MAX + 16];
	size_t hold_len;
};

void
bx_llm_ctx_destroy(struct bx_llm_ctx *ctx)
{
	if (!ctx) {
		return;
	}
	llm_fwd_destroy(ctx->fwd);
	bx_free(ctx->scratch);
	bx_free(ctx->logits);
	bx_free(ctx->kvs);
	bx_free(ctx->toks);
	bx_free(ctx->pos);
	bx_free(ctx->want);
	bx_free(ctx);
}

int
bx_llm_ctx_create(const struct bx_llm_model *m, unsigned max_batch, unsigned nb_threads,
                  bool reference, struct bx_llm_ctx **out)
{
	struct bx_llm_ctx *ctx;

	if (!m || !max_batch || max_batch > 4096) {
		return -EINVAL;
	}
	ctx = bx_calloc(1, sizeof(*ctx));
	if (!ctx) {
		return -ENOMEM;
	}
	ctx->m = m;
	ctx->ref = reference;
	ctx->max_batch = max_batch;
	ctx->logits = bx_malloc((size_t)max_batch * m->cfg.vocab_size * sizeof(float));
	ctx->kvs = bx_calloc(max_batch, sizeof(struct llm_kv *));
	ctx->toks = bx_calloc(max_batch, sizeof(*ctx->toks));
	ctx->pos = bx_calloc(max_batch, sizeof(*ctx->pos));
	ctx->want = bx_calloc(max_batch, sizeof(*ctx->want));
	if (!ctx->logits || !ctx->kvs || !ctx->toks || !ctx->pos || !ctx->want) {
		goto out_nomem;
	}
	if (reference) {
		ctx->scratch = bx_malloc(llm_ref_scratch_floats(&m->cfg) * sizeof(float));
		if (!ctx->scratch) {
			goto out_nomem;
		}
	} else if (llm_fwd_create(m, max_batch, nb_threads, &ctx->fwd)) {
		goto out_nomem;
	}
	*out = ctx;
	return 0;
out_nomem:
	bx_llm_ctx_destroy(ctx);
	return -ENOMEM;
}

void
bx_llm_seq_destroy(struct bx_llm_seq *s)
{
	if (!s) {
		return;
	}
	bx_free(s->kv.k);
	bx_free(s->logits);
	bx_free(s->idx);
	bx_free(s);
}

static int
seq_conf_check(const struct bx_llm_model *m, const struct bx_llm_seq_conf *conf)
{
	const struct bx_llm_sample_conf *sc = &conf->sample;

	if (conf->ctx_len > m->cfg.seq_len || conf->nb_stops > LLM_STOPS_MAX ||
	    (conf->nb_stops && !conf->stops)) {
		return -EINVAL;
	}
	for (unsigned i = 0; i < conf->nb_stops; i++) {
		size_t n = conf->stops[i] ? strlen(conf->stops[i]) : 0;

		if (!n || n > LLM_STOP_LEN_MAX) {
			return -EINVAL;
		}
	}
	if (!(sc->temperature >= 0) || !(sc->top_p > 0 && sc->top_p <= 1) ||
	    !(sc->repeat_penalty > 0) || sc->repeat_last_n > LLM_RECENT_MAX) {
		return -EINVAL;
	}
	return 0;
}

/* Everything but the buffers, as a new sequence for conf (checked). */
static void
seq_init(struct bx_llm_seq *s, const struct bx_llm_seq_conf *conf)
{
	struct llm_kv kv = s->kv;
	float *logits = s->logits, *work = s->work;
	int32_t *idx = s->idx;
	const struct bx_llm_model *m = s->m;

	memset(s, 0, offsetof(struct bx_llm_seq, hold));
	s->hold_len = 0;
	s->m = m;
	s->kv = kv;
	s->logits = logits;
	s->work = work;
	s->idx = idx;
	s->sc = conf->sample;
	s->max_tokens = conf->max_tokens;
	s->rng = conf->sample.seed ^ 0x9e3779b97f4a7c15ull;
	s->nb_stops = conf->nb_stops;
	for (unsigned i = 0; i < conf->nb_stops; i++) {
		/* lengths were checked against the slot size (<= 64 bytes) */
		memcpy(s->stops[i], conf->stops[i], strlen(conf->stops[i]) + 1);
	}
	s->last = BX_LLM_NO_TOKEN;
	bx_llm_detok_init(&s->dt);
}

int
bx_llm_seq_create(const struct bx_llm_model *m, const struct bx_llm_seq_conf *conf,
                  struct bx_llm_seq **out)
{
	uint32_t V = m->cfg.vocab_size, kvd = m->cfg.head_dim * m->cfg.n_kv_heads;
	struct bx_llm_seq *s;
	size_t cache;

	if (seq_conf_check(m, conf)) {
		return -EINVAL;
	}
	s = bx_calloc(1, sizeof(*s));
	if (!s) {
		return -ENOMEM;
	}
	s->m = m;
	s->kv.ctx_len = conf->ctx_len ? conf->ctx_len : m->cfg.seq_len;
	cache = (size_t)m->cfg.n_layers * s->kv.ctx_len * kvd;
	s->kv.k = bx_malloc(2 * cache * sizeof(float));
	s->logits = bx_malloc(2 * (size_t)V * sizeof(float));
	s->idx = bx_malloc((size_t)V * sizeof(int32_t));
	if (!s->kv.k || !s->logits || !s->idx) {
		bx_llm_seq_destroy(s);
		return -ENOMEM;
	}
	s->kv.v = s->kv.k + cache;
	s->work = s->logits + V;
	seq_init(s, conf);
	*out = s;
	return 0;
}

int
bx_llm_seq_reset(struct bx_llm_seq *s, const struct bx_llm_seq_conf *conf)
{
	if (seq_conf_check(s->m, conf)) {
		return -EINVAL;
	}
	if ((conf->ctx_len ? conf->ctx_len : s->m->cfg.seq_len) > s->kv.ctx_len) {
		return -ENOSPC;
	}
	seq_init(s, conf);
	return 0;
}

const float *
bx_llm_seq_logits(const struct bx_llm_seq *s)
{
	return s->logits;
}

uint32_t
bx_llm_seq_pos(const struct bx_llm_seq *s)
{
	return s->pos;
}

/* ---- sampling ---- */

static uint64_t
rng_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static int32_t
argmax(const float *x, uint32_t n)
{
	int32_t best = 0;

	for (uint32_t i = 1; i < n; i++) {
		if (x[i] > x[best]) {
			best = (int32_t)i;
		}
	}
	return best;
}

static void
penalize(struct bx_llm_seq *s, float *l)
{
	uint32_t n = BX_MIN(s->nb_recent, s->sc.repeat_last_n);

	for (uint32_t i = 0; i < n; i++) {
		int32_t t = s->recent[(s->nb_recent - 1 - i) % LLM_RECENT_MAX];
		bool seen = false;

		for (uint32_t j = 0; j < i && !seen; j++) {
			seen = s->recent[(s->nb_recent - 1 - j) % LLM_RECENT_MAX] == t;
		}
		if (!seen) {
			l[t] = l[t] > 0 ? l[t] / s->sc.repeat_penalty : l[t] * s->sc.repeat_penalty;
		}
	}
}

/* Sort idx[0..n) by p[] descending (insertion into a heap-free shell sort). */
static void
sort_desc(int32_t *idx, uint32_t n, const float *p)
{
	static const uint32_t gaps[] = { 701, 301, 132, 57, 23, 10, 4, 1 };

	for (unsigned g = 0; g < BX_ARRAY_SIZE(gaps); g++) {
		for (uint32_t i = gaps[g]; i < n; i++) {
			int32_t t = idx[i];
			uint32_t j = i;

			for (; j >= gaps[g] &&
			       (p[idx[j - gaps[g]]] < p[t] ||
			        (p[idx[j - gaps[g]]] == p[t] && idx[j - gaps[g]] > t));
			     j -= gaps[g]) {
				idx[j] = idx[j - gaps[g]];
			}
			idx[j] = t;
		}
	}
}

/* Softmax with temperature, then keep the top_k, then the top_p nucleus, then draw. */
static int32_t
sample_dist(struct bx_llm_seq *s, float *l, uint32_t V)
{
	float max = l[argmax(l, V)], cut;
	double sum = 0, acc = 0, r;
	uint32_t n = 0, keep;

	for (uint32_t i = 0; i < V; i++) {
		l[i] = expf((l[i] - max) / s->sc.temperature);
		sum += l[i];
	}
	/* Candidates: everything that could be in the nucleus or the top k. */
	cut = s->sc.top_p < 1 ? (float)((1 - s->sc.top_p) / (V - 1 ? V - 1 : 1) * sum) : 0;
	for (uint32_t i = 0; i < V; i++) {
		if (l[i] >= cut) {
			s->idx[n++] = (int32_t)i;
		}
	}
	sort_desc(s->idx, n, l);
	keep = s->sc.top_k && s->sc.top_k < n ? s->sc.top_k : n;
	sum = 0;
	for (uint32_t i = 0; i < keep; i++) {
		sum += l[s->idx[i]];
	}
	if (s->sc.top_p < 1) {
		for (uint32_t i = 0; i < keep; i++) {
			acc += l[s->idx[i]];
			if (acc >= s->sc.top_p * sum) {
				keep = i + 1;
				break;
			}
		}
		sum = acc < sum ? acc : sum;
	}
	r = (double)(rng_next(&s->rng) >> 11) * 0x1.0p-53 * sum;
	acc = 0;
	for (uint32_t i = 0; i < keep; i++) {
		acc += l[s->idx[i]];
		if (r < acc) {
			return s->idx[i];
		}
	}
	return s->idx[keep - 1];
}

static int32_t
sample(struct bx_llm_seq *s)
{
	uint32_t V = s->m->cfg.vocab_size;

	memcpy(s->work, s->logits, V * sizeof(float));
	if (s->sc.repeat_penalty != 1 && s->sc.repeat_last_n) {
		penalize(s, s->work);
	}
	if (s->sc.temperature <= 0 || s->sc.top_k == 1) {
		return argmax(s->work, V);
	}
	return sample_dist(s, s->work, V);
}

/* ---- stop strings and streaming ---- */

/* Move final text from hold to out: up to a stop string, or all but a possible stop prefix. */
static size_t
release(struct bx_llm_seq *s, bool all)
{
	size_t cut = s->hold_len, keep = 0;

	for (unsigned i = 0; i < s->nb_stops; i++) {
		const char *hit = memmem(s->hold, s->hold_len, s->stops[i], strlen(s->stops[i]));

		if (hit && (size_t)(hit - s->hold) < cut) {
			cut = (size_t)(hit - s->hold);
			s->stop = BX_LLM_STOP_STRING;
		}
	}
	if (s->stop == BX_LLM_STOP_STRING) {
		memcpy(s->out, s->hold, cut);
		s->hold_len = 0;
		return cut;
	}
	for (unsigned i = 0; i < s->nb_stops && !all; i++) {
		size_t sl = strlen(s->stops[i]);

		for (size_t k = BX_MIN(sl - 1, s->hold_len); k > keep; k--) {
			if (!memcmp(s->hold + s->hold_len - k, s->stops[i], k)) {
				keep = k;
				break;
			}
		}
	}
	memcpy(s->out, s->hold, s->hold_len - keep);
	memmove(s->hold, s->hold + s->hold_len - keep, keep);
	cut = s->hold_len - keep;
	s->hold_len = keep;
	return cut;
}

static void
produce(struct bx_llm_seq *s, const float *logits, struct bx_llm_event *ev)
{
	int32_t id;
	size_t n = 0;

	memcpy(s->logits, logits, s->m->cfg.vocab_size * sizeof(float));
	id = sample(s);
	s->last = id;
	s->generated++;
	s->recent[s->nb_recent++ % LLM_RECENT_MAX] = id;
	if (id == s->m->vocab.eos && s->m->vocab.n) {
		s->stop = BX_LLM_STOP_EOS;
	} else if (s->m->vocab.n) {
		s->hold_len += bx_llm_detok_push(s->m, &s->dt, id, s->hold + s->hold_len);
	}
	if (s->stop == BX_LLM_RUNNING && s->max_tokens && s->generated >= s->max_tokens) {
		s->stop = BX_LLM_STOP_MAX;
	}
	if (s->stop == BX_LLM_RUNNING && s->pos >= s->kv.ctx_len) {
		s->stop = BX_LLM_STOP_CTX;
	}
	if (s->stop != BX_LLM_RUNNING) {
		s->hold_len += bx_llm_detok_flush(&s->dt, s->hold + s->hold_len);
	}
	n = release(s, s->stop != BX_LLM_RUNNING);
	ev->id = id;
	ev->text = s->out;
	ev->len = n;
	ev->stop = s->stop;
}

/* ---- running ---- */

static void
run_ref(struct bx_llm_ctx *ctx, struct bx_llm_seq *s, int32_t tok, float *logits)
{
	llm_ref_forward(ctx->m, &s->kv, tok, s->pos, ctx->scratch, logits);
	s->pos++;
}

int
bx_llm_seq_prefill(struct bx_llm_ctx *ctx, struct bx_llm_seq *s, const int32_t *ids, size_t n,
                   struct bx_llm_event *ev)
{
	uint32_t V = ctx->m->cfg.vocab_size;

	if (s->m != ctx->m || !n || s->stop != BX_LLM_RUNNING) {
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		if (ids[i] < 0 || (uint32_t)ids[i] >= V) {
			return -EINVAL;
		}
	}
	if (n > s->kv.ctx_len - s->pos) {
		return -ENOSPC;
	}
	for (size_t i = 0; i < n;) {
		unsigned nb = (unsigned)BX_MIN(n - i, (size_t)ctx->max_batch);

		if (ctx->ref) {
			run_ref(ctx, s, ids[i], ctx->logits);
			i++;
			continue;
		}
		for (unsigned b = 0; b < nb; b++) {
			ctx->kvs[b] = &s->kv;
			ctx->toks[b] = ids[i + b];
			ctx->pos[b] = s->pos + b;
			ctx->want[b] = i + b == n - 1;
		}
		llm_fwd_run(ctx->fwd, ctx->kvs, ctx->toks, ctx->pos, ctx->want, nb, ctx->logits);
		s->pos += nb;
		i += nb;
	}
	/* A new prompt part: what was sampled before it is dropped. */
	s->generated = 0;
	s->hold_len = 0;
	bx_llm_detok_init(&s->dt);
	s->dt.at_start = ids[n - 1] == ctx->m->vocab.bos;
	for (size_t i = 0; i < n; i++) {
		s->recent[s->nb_recent++ % LLM_RECENT_MAX] = ids[i];
	}
	produce(s, ctx->logits, ev);
	return 0;
}

int
bx_llm_step(struct bx_llm_ctx *ctx, struct bx_llm_seq *const *seqs, unsigned n,
            struct bx_llm_event *ev)
{
	uint32_t V = ctx->m->cfg.vocab_size;

	if (n > ctx->max_batch) {
		return -EINVAL;
	}
	for (unsigned b = 0; b < n; b++) {
		const struct bx_llm_seq *s = seqs[b];

		if (s->m != ctx->m || s->stop != BX_LLM_RUNNING || !s->generated ||
		    s->pos >= s->kv.ctx_len) {
			return -EINVAL;
		}
		for (unsigned j = 0; j < b; j++) {
			if (seqs[j] == s) {
				return -EINVAL;
			}
		}
	}
	for (unsigned b = 0; b < n; b++) {
		struct bx_llm_seq *s = seqs[b];

		if (ctx->ref) {
			run_ref(ctx, s, s->last, ctx->logits + (size_t)b * V);
			continue;
		}
		ctx->kvs[b] = &s->kv;
		ctx->toks[b] = s->last;
		ctx->pos[b] = s->pos++;
		ctx->want[b] = true;
	}
	if (!ctx->ref && n) {
		llm_fwd_run(ctx->fwd, ctx->kvs, ctx->toks, ctx->pos, ctx->want, n, ctx->logits);
	}
	for (unsigned b = 0; b < n; b++) {
		produce(seqs[b], ctx->logits + (size_t)b * V, &ev[b]);
	}
	return 0;
}
