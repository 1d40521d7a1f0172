/*
 * The TextEmbedding synapse through the scheduler: `texts` in, `embeddings`
 * out (one L2-normalised vector per text).
 *
 * On the dataplane thread the handler tokenizes the texts into a job from a
 * fixed pool, takes a ticket (the answer comes later) and submits the job
 * with the dendrite's deadline, the caller's stake as priority and its token
 * count as cost. A refusal is answered at once: 408 when the deadline has
 * already passed, 503 when no worker can finish it in time. On a pinned
 * worker, exec embeds every text of the batch's jobs in one unpadded call
 * and writes each job's vectors onto its ticket; done() completes the ticket
 * and returns the job to the pool.
 *
 * `texts` is parsed with jansson (Debian libjansson): it reads everything
 * Python's json.dumps writes, \u escapes and surrogate pairs included.
 * Floats are written with 9 significant digits, which round-trip float32.
 */
#include "embed_synapse.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include <bx/firmware.h>

#define JOBS_MAX          1024        /* queued or running embedding requests */
#define BATCH_JOBS        16          /* requests in one batch */
#define BATCH_TOKENS      4096        /* tokens in one batch (inference.md §6: 2-8 k) */
#define DEADLINE_SLACK_NS 50000000ull /* the dendrite started its clock before us */

struct embed_job {
	struct bx_job job; /* first: the scheduler hands back &job */
	struct bx_fw_embed *e;
	struct bx_call_ticket *ticket;
	unsigned n;
	unsigned lens[BX_EMBED_TEXTS_MAX];
	int32_t *ids; /* BX_EMBED_TEXTS_MAX * max_tokens, from the pool's block */
};

struct bx_fw_embed {
	const struct bx_embed_model *m;
	struct bx_sched *sched;
	struct bx_mpmc *free_jobs; /* jobs are taken on dataplane threads, returned on workers */
	struct embed_job *jobs;
	int32_t *ids;
};

/* A worker's engine and scratch, made on the pinned worker thread. */
struct worker {
	struct bx_embed_ctx *ctx;
	float *vecs; /* BATCH_JOBS * BX_EMBED_TEXTS_MAX * dim */
	char *json;  /* one job's answer */
	size_t json_cap;
};

static int
worker_init(void *arg, unsigned idx, unsigned node, void **wctx)
{
	const struct bx_fw_embed *e = arg;
	unsigned dim = bx_embed_dim(e->m);
	struct worker *w = bx_calloc(1, sizeof(*w));
	int ret;

	if (w == NULL) {
		return -ENOMEM;
	}
	/* "-0.123456789, " is at most 16 bytes a value, plus brackets. */
	w->json_cap = (size_t)BX_EMBED_TEXTS_MAX * (dim * 16 + 4) + 4;
	w->vecs = bx_malloc(sizeof(float) * BATCH_JOBS * BX_EMBED_TEXTS_MAX * dim);
	w->json = bx_malloc(w->json_cap);
	ret = w->vecs != NULL && w->json != NULL ? bx_embed_ctx_create(e->m, 1, &w->ctx) : -ENOMEM;
	if (ret < 0) {
		bx_free(w->vecs);
		bx_free(w->json);
		bx_free(w);
		return ret;
	}
	*wctx = w;
	return 0;
}

static void
worker_fini(void *arg, void *wctx)
{
	struct worker *w = wctx;

	bx_embed_ctx_destroy(w->ctx);
	bx_free(w->vecs);
	bx_free(w->json);
	bx_free(w);
}

/* Vectors as [[a, b, ...], ...] with json.dumps spacing. */
static size_t
write_vectors(struct worker *w, const float *v, unsigned n, unsigned dim)
{
	size_t o = 0;

	w->json[o++] = '[';
	for (unsigned i = 0; i < n; i++) {
		o += (size_t)snprintf(w->json + o, w->json_cap - o, "%s[", i > 0 ? ", " : "");
		for (unsigned k = 0; k < dim; k++) {
			o += (size_t)snprintf(w->json + o, w->json_cap - o, "%s%.9g",
			                      k > 0 ? ", " : "", (double)v[(size_t)i * dim + k]);
		}
		w->json[o++] = ']';
	}
	w->json[o++] = ']';
	return o;
}

/* One batch: every text of every job in one engine call, answers onto the tickets. */
static int
worker_exec(void *wctx, struct bx_job *const *jobs, unsigned n)
{
	struct worker *w = wctx;
	const int32_t *ids[BATCH_JOBS * BX_EMBED_TEXTS_MAX];
	unsigned lens[BATCH_JOBS * BX_EMBED_TEXTS_MAX], nb = 0, dim, maxt;
	const struct bx_embed_model *m;
	int ret = 0;

	m = ((const struct embed_job *)jobs[0])->e->m;
	dim = bx_embed_dim(m);
	maxt = bx_embed_max_tokens(m);
	for (unsigned j = 0; j < n; j++) {
		const struct embed_job *ej = (const struct embed_job *)jobs[j];

		for (unsigned i = 0; i < ej->n; i++, nb++) {
			ids[nb] = ej->ids + (size_t)i * maxt;
			lens[nb] = ej->lens[i];
		}
	}
	if (nb > 0) {
		ret = bx_embed_batch_ids(w->ctx, ids, lens, nb, w->vecs);
	}
	for (unsigned j = 0, first = 0; j < n && ret == 0; j++) {
		struct embed_job *ej = (struct embed_job *)jobs[j];
		size_t len = write_vectors(w, w->vecs + (size_t)first * dim, ej->n, dim);

		jobs[j]->result = bx_ticket_set_output(ej->ticket, "embeddings", w->json, len);
		first += ej->n;
	}
	return ret;
}

/* The client of this job went away: skip it (the answer would be dropped). */
static bool
job_abandoned(const struct bx_job *job)
{
	return bx_ticket_abandoned(((const struct embed_job *)job)->ticket);
}

/* On the worker: answer the ticket (or say why not) and return the job. */
static void
job_done(struct bx_job *job, enum bx_job_status status)
{
	struct embed_job *ej = (struct embed_job *)job;
	void *obj = ej;

	if (status == BX_JOB_EXPIRED) {
		bx_ticket_fail(ej->ticket, 408,
		               "Request timeout: the deadline passed while queued");
	} else if (status == BX_JOB_FAILED) {
		bx_ticket_fail(ej->ticket, job->result == -ENOSPC ? 413 : 500,
		               job->result == -ENOSPC ? "Response too large" :
		                                        "Internal Server Error: embedding failed");
	} else if (status == BX_JOB_CANCELLED) {
		bx_ticket_fail(ej->ticket, 503, "Service unavailable: the client went away");
	} else if (status != BX_JOB_OK) {
		bx_ticket_fail(ej->ticket, 503, "Service unavailable: shutting down");
	}
	bx_ticket_complete(ej->ticket);
	bx_mpmc_enqueue_burst(ej->e->free_jobs, &obj, 1);
}

/* Tokenize every text into the job; the token count, or -1 with the call failed. */
static int
tokenize_all(struct embed_job *ej, json_t *texts, struct bx_call *call)
{
	unsigned maxt = bx_embed_max_tokens(ej->e->m);
	size_t n = json_array_size(texts);
	int total = 0;

	if (n > BX_EMBED_TEXTS_MAX) {
		bx_call_fail(call, 413, "Too many texts in one request (the limit is 16)");
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		json_t *t = json_array_get(texts, i);
		int k = json_is_string(t) ?
		                bx_embed_tokenize(ej->e->m, json_string_value(t),
		                                  json_string_length(t), ej->ids + i * maxt) :
		                -EINVAL;

		if (k < 0) {
			bx_call_fail(call, 422, "texts must be a list of valid UTF-8 strings");
			return -1;
		}
		ej->lens[i] = (unsigned)k;
		total += k;
	}
	ej->n = (unsigned)n;
	return total;
}

/* Queue the job for a worker; 0, or the call answered with the refusal. */
static int
submit(struct bx_fw_embed *e, struct embed_job *ej, int tokens, struct bx_call *call)
{
	const struct bx_mg_neuron *who = bx_call_neuron(call);
	double stake = who != NULL ? who->stake : 0;
	int ret;

	ej->job = (struct bx_job){
		.deadline_ns =
			bx_time_ns() + (uint64_t)(bx_call_timeout(call) * 1e9) - DEADLINE_SLACK_NS,
		.priority = stake > 0 ? (uint64_t)BX_MIN(stake * 1e9, 1.8e19) : 0,
		.cost = (uint32_t)BX_MAX(tokens, 1),
		.done = job_done,
	};
	ej->ticket = bx_call_defer(call);
	if (ej->ticket == NULL) {
		return bx_call_fail(call, 503, "Service unavailable: too many requests in flight");
	}
	ret = bx_sched_submit(e->sched, &ej->job);
	if (ret == -ETIMEDOUT) {
		return bx_call_fail(call, 408, "Request timeout: the deadline has passed");
	}
	if (ret < 0) {
		return bx_call_fail(
			call, 503,
			"Service unavailable: cannot answer within the request's timeout");
	}
	return BX_CALL_PENDING;
}

int
bx_fw_embed_synapse(void *arg, struct bx_call *call)
{
	struct bx_fw_embed *e = arg;
	struct embed_job *ej;
	const char *raw;
	json_t *texts;
	size_t len;
	int tokens, ret;

	raw = bx_call_field(call, "texts", &len);
	texts = raw != NULL ? json_loadb(raw, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL) : NULL;
	if (!json_is_array(texts)) {
		json_decref(texts);
		return bx_call_fail(call, 422, "texts must be a list of strings");
	}
	if (bx_mpmc_dequeue_burst(e->free_jobs, (void **)&ej, 1) != 1) {
		json_decref(texts);
		return bx_call_fail(call, 503, "Service unavailable: too many requests in flight");
	}
	tokens = tokenize_all(ej, texts, call);
	json_decref(texts);
	ret = tokens < 0 ? 0 : submit(e, ej, tokens, call);
	if (ret != BX_CALL_PENDING) {
		/* Answered now (refused or bad input): the job goes straight back. */
		bx_mpmc_enqueue_burst(e->free_jobs, (void *const *)&ej, 1);
	}
	return ret;
}

static int
make_pool(struct bx_fw_embed *e)
{
	size_t per = (size_t)BX_EMBED_TEXTS_MAX * bx_embed_max_tokens(e->m);
	int ret = bx_mpmc_create(JOBS_MAX, &e->free_jobs);

	if (ret < 0) {
		return ret;
	}
	e->jobs = bx_calloc(JOBS_MAX, sizeof(*e->jobs));
	e->ids = bx_malloc(sizeof(int32_t) * per * JOBS_MAX);
	if (e->jobs == NULL || e->ids == NULL) {
		return -ENOMEM;
	}
	for (unsigned i = 0; i < JOBS_MAX; i++) {
		void *obj = &e->jobs[i];

		e->jobs[i].e = e;
		e->jobs[i].ids = e->ids + per * i;
		bx_mpmc_enqueue_burst(e->free_jobs, &obj, 1);
	}
	return 0;
}

int
bx_fw_embed_create(const struct bx_embed_model *m, const struct bx_sched_plan *plan,
                   struct bx_fw_embed **out, struct bx_errbuf *eb)
{
	struct bx_fw_embed *e = bx_calloc(1, sizeof(*e));
	struct bx_sched_conf sc = {
		.plan = plan,
		.queue_max = JOBS_MAX,
		.batch_tokens = BATCH_TOKENS,
		.batch_jobs_max = BATCH_JOBS,
		.reserve_pct = 20,
		.est_ns_per_token = 50000, /* refined from the first batches */
		.init = worker_init,
		.exec = worker_exec,
		.fini = worker_fini,
		.is_abandoned = job_abandoned,
	};
	int ret;

	if (e == NULL) {
		return bx_err(eb, ENOMEM, "out of memory");
	}
	e->m = m;
	sc.arg = e;
	ret = make_pool(e);
	if (ret < 0) {
		bx_fw_embed_destroy(e);
		return bx_err(eb, ret, "embedding job pool: %s", bx_strerror(ret));
	}
	ret = bx_sched_create(&sc, &e->sched, eb);
	if (ret < 0) {
		bx_fw_embed_destroy(e);
		return ret;
	}
	*out = e;
	return 0;
}

void
bx_fw_embed_destroy(struct bx_fw_embed *e)
{
	if (e == NULL) {
		return;
	}
	bx_sched_destroy(e->sched);
	bx_mpmc_destroy(e->free_jobs);
	bx_free(e->jobs);
	bx_free(e->ids);
	bx_free(e);
}

const struct bx_sched *
bx_fw_embed_sched(const struct bx_fw_embed *e)
{
	return e->sched;
}
