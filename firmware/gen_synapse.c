/*
 * The TextGeneration synapse with continuous batching: `prompt` (or the
 * contents of `messages`, one per line) in, `completion` out, with the
 * request's max_tokens (capped), temperature, top_p and seed.
 * StreamingTextGeneration takes the same fields and sends the completion
 * as it is decoded: each step's new text is one chunk (bx_ticket_stream),
 * so the chunks concatenated are the completion.
 *
 * The dataplane thread tokenizes the prompt into a job from a fixed pool,
 * takes a ticket and queues the job for the generation worker, a pinned
 * thread that owns the engine context. Each iteration the worker
 *   1. drops waiting jobs whose deadline passed (408) or whose client went,
 *   2. runs one decode step for every active sequence (decode first),
 *   3. spends the rest of the step's token budget on prefill chunks of
 *      waiting prompts, highest stake first, admitting them as they finish,
 * and answers a job's ticket the moment its sequence stops (inference.md §6:
 * iteration-level scheduling, vLLM's decode-first chunked prefill).
 */
#include "gen_synapse.h"

#include <errno.h>
#include <semaphore.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include <bx/firmware.h>

#define JOBS_MAX          64                /* waiting or active sequences */
#define ACTIVE_MAX        16                /* sequences decoded together */
#define STEP_TOKENS       BX_GEN_PROMPT_MAX /* tokens one iteration may run */
#define TEXT_MAX          (16 * 1024)
#define DEADLINE_SLACK_NS 50000000ull
#define FLUSH_RETRY_NS    1000000ull /* a lagging stream's client is retried this often */
#define POOL_MAX          ACTIVE_MAX /* sequences (KV caches) kept for reuse */

struct gen_job {
	struct bx_call_ticket *ticket;
	struct bx_llm_seq_conf sc;
	struct bx_llm_seq *seq; /* once admitted */
	int32_t ids[BX_GEN_PROMPT_MAX];
	size_t nb_ids, fed; /* prompt tokens, and how many were prefilled */
	uint64_t deadline_ns, priority, submit_ns;
	char text[TEXT_MAX];
	size_t len;
	bool stream;     /* StreamingTextGeneration: text goes out as it comes */
	size_t streamed; /* text[0..streamed) is with the ticket */
};

struct bx_fw_gen {
	const struct bx_llm_model *model;
	unsigned max_tokens;
	struct bx_mpmc *free_jobs, *inbox;
	struct gen_job *jobs;
	sem_t wake;    /* work arrived, or stop */
	sem_t started; /* the worker's init is done (init_ret is set) */
	pthread_t thread;
	/* worker thread only: finished sequences, reset for the next request */
	struct bx_llm_seq *pool[POOL_MAX];
	unsigned nb_pool;
	/* written by the worker (atomic stores; one writer), read by bx_fw_gen_stats */
	struct bx_fw_gen_stats st;
	int stop; /* atomic */
	int init_ret;
	unsigned cpu;
};

/* ------------------------- the worker ------------------------- */

struct worker {
	struct bx_fw_gen *g;
	struct bx_llm_ctx *ctx;
	struct gen_job *waiting[JOBS_MAX], *active[ACTIVE_MAX];
	struct gen_job *flushing[JOBS_MAX]; /* finished streams whose client lags */
	unsigned nb_waiting, nb_active, nb_flushing;
};

/* A job's sequence goes back to the pool (or away when the pool is full). */
static void
drop_seq(struct bx_fw_gen *g, struct gen_job *job)
{
	if (job->seq != NULL && g->nb_pool < POOL_MAX) {
		g->pool[g->nb_pool++] = job->seq;
	} else {
		bx_llm_seq_destroy(job->seq);
	}
	job->seq = NULL;
}

/* A sequence for the job: a pooled one reset, else a new one. */
static int
take_seq(struct bx_fw_gen *g, struct gen_job *job)
{
	while (g->nb_pool > 0) {
		struct bx_llm_seq *s = g->pool[--g->nb_pool];

		if (bx_llm_seq_reset(s, &job->sc) == 0) {
			job->seq = s;
			return 0;
		}
		bx_llm_seq_destroy(s);
	}
	return bx_llm_seq_create(g->model, &job->sc, &job->seq);
}

static void
release(struct bx_fw_gen *g, struct gen_job *job)
{
	void *obj = job;

	drop_seq(g, job);
	bx_mpmc_enqueue_burst(g->free_jobs, &obj, 1);
}

/*
 * Answer a job: its completion, or status and message. A stream's text went
 * out as chunks: completing it sends the last one.
 */
static void
count(uint64_t *c, uint64_t n)
{
	__atomic_store_n(c, *c + n, __ATOMIC_RELAXED); /* the worker is the only writer */
}

static void
answer(struct bx_fw_gen *g, struct gen_job *job, int status, const char *msg)
{
	count(&g->st.outcomes[status == 0   ? BX_GEN_OK :
	                      status == 408 ? BX_GEN_EXPIRED :
	                      status == 503 ? BX_GEN_ABANDONED :
	                                      BX_GEN_FAILED],
	      1);
	json_t *s = status == 0 && !job->stream ? json_stringn(job->text, job->len) : NULL;
	char *out = s != NULL ? json_dumps(s, JSON_ENCODE_ANY) : NULL;

	if (status != 0) {
		bx_ticket_fail(job->ticket, status, msg);
	} else if (!job->stream && (out == NULL || bx_ticket_set_output(job->ticket, "completion",
	                                                                out, strlen(out)) < 0)) {
		bx_ticket_fail(job->ticket, 500, "Internal Server Error: completion too large");
	}
	free(out);
	json_decref(s);
	bx_ticket_complete(job->ticket);
	release(g, job);
}

/*
 * Hand a streaming job's text not yet streamed to its ticket. -ENOBUFS: the
 * client reads slower than we decode; the text stays in job->text and goes
 * with the next step's (one larger chunk).
 */
static int
stream_out(struct gen_job *job)
{
	int ret;

	if (!job->stream || job->streamed == job->len) {
		return 0;
	}
	ret = bx_ticket_stream(job->ticket, job->text + job->streamed, job->len - job->streamed);
	if (ret == 0) {
		job->streamed = job->len;
	}
	return ret;
}

/* A sequence stopped: answer, unless its stream still has text the client has no room for. */
static void
finished(struct worker *w, struct gen_job *job)
{
	int ret = stream_out(job);

	if (ret == -ENOBUFS) {
		/* The slot is free: nb_flushing + nb_active + nb_waiting <= JOBS_MAX. */
		drop_seq(w->g, job);
		w->flushing[w->nb_flushing++] = job;
		return;
	}
	answer(w->g, job, ret == 0 ? 0 : 500, "Internal Server Error: cannot stream");
}

/* Finished streams waiting for their client: send the rest, or give up at the deadline. */
static void
flush_lagging(struct worker *w, uint64_t now)
{
	for (unsigned i = 0; i < w->nb_flushing;) {
		struct gen_job *job = w->flushing[i];
		int ret = bx_ticket_abandoned(job->ticket) ? -EPIPE : stream_out(job);

		if (ret == -ENOBUFS && job->deadline_ns > now) {
			i++;
			continue;
		}
		w->flushing[i] = w->flushing[--w->nb_flushing];
		answer(w->g, job, ret == 0 ? 0 : 503,
		       "Service unavailable: the client does not read the stream");
	}
}

/* Append an event's text; true when the sequence is finished. */
static bool
take_event(struct gen_job *job, const struct bx_llm_event *ev)
{
	size_t k = BX_MIN(ev->len, TEXT_MAX - job->len);

	memcpy(job->text + job->len, ev->text, k);
	job->len += k;
	return ev->stop != BX_LLM_RUNNING;
}

/* Waiting jobs in priority order; drop the expired and the abandoned. */
static void
admit_from_inbox(struct worker *w, uint64_t now)
{
	struct gen_job *job;

	while (w->nb_waiting < JOBS_MAX &&
	       bx_mpmc_dequeue_burst(w->g->inbox, (void **)&job, 1) == 1) {
		unsigned i = w->nb_waiting++;

		/* Insertion keeps higher stake first, arrival order among equals. */
		while (i > 0 && w->waiting[i - 1]->priority < job->priority) {
			w->waiting[i] = w->waiting[i - 1];
			i--;
		}
		w->waiting[i] = job;
	}
	for (unsigned i = 0; i < w->nb_waiting;) {
		job = w->waiting[i];
		if (job->deadline_ns <= now || bx_ticket_abandoned(job->ticket)) {
			memmove(&w->waiting[i], &w->waiting[i + 1],
			        (w->nb_waiting - i - 1) * sizeof(struct gen_job *));
			w->nb_waiting--;
			answer(w->g, job, job->deadline_ns <= now ? 408 : 503,
			       job->deadline_ns <= now ?
			               "Request timeout: the deadline passed while queued" :
			               "Service unavailable: the client went away");
			continue;
		}
		i++;
	}
}

/* A client that went away gets no more steps (its answer would be dropped). */
static void
drop_abandoned(struct worker *w)
{
	unsigned n = 0;

	for (unsigned i = 0; i < w->nb_active; i++) {
		if (bx_ticket_abandoned(w->active[i]->ticket)) {
			answer(w->g, w->active[i], 503,
			       "Service unavailable: the client went away");
		} else {
			w->active[n++] = w->active[i];
		}
	}
	w->nb_active = n;
}

/* One decode step for every active sequence; finished ones answer and leave. */
static void
decode(struct worker *w)
{
	struct bx_llm_seq *seqs[ACTIVE_MAX];
	struct bx_llm_event ev[ACTIVE_MAX];
	unsigned n = 0;
	uint64_t t0;
	int rc;

	drop_abandoned(w);
	if (w->nb_active == 0) {
		return;
	}
	for (unsigned i = 0; i < w->nb_active; i++) {
		seqs[i] = w->active[i]->seq;
	}
	t0 = bx_time_ns();
	rc = bx_llm_step(w->ctx, seqs, w->nb_active, ev);
	bx_lathist_record(&w->g->st.step, bx_time_ns() - t0);
	count(&w->g->st.generated_tokens, rc < 0 ? 0 : w->nb_active);
	if (rc < 0) {
		for (unsigned i = 0; i < w->nb_active; i++) {
			answer(w->g, w->active[i], 500, "Internal Server Error: generation failed");
		}
		w->nb_active = 0;
		return;
	}
	for (unsigned i = 0; i < w->nb_active; i++) {
		struct gen_job *job = w->active[i];
		int ret;

		if (take_event(job, &ev[i])) {
			finished(w, job);
			continue;
		}
		ret = stream_out(job); /* -ENOBUFS: this step's text goes with the next */
		if (ret < 0 && ret != -ENOBUFS) {
			answer(w->g, job, 500, "Internal Server Error: cannot stream");
			continue;
		}
		w->active[n++] = job;
	}
	w->nb_active = n;
}

/* Feed up to `budget` prompt tokens of the first waiting job; 0 or the tokens used. */
static size_t
prefill_one(struct worker *w, size_t budget)
{
	struct gen_job *job = w->waiting[0];
	size_t k = BX_MIN(budget, job->nb_ids - job->fed);
	struct bx_llm_event ev;

	if (job->seq == NULL && take_seq(w->g, job) < 0) {
		k = 0;
	}
	if (job->seq == NULL ||
	    bx_llm_seq_prefill(w->ctx, job->seq, job->ids + job->fed, k, &ev) < 0) {
		memmove(&w->waiting[0], &w->waiting[1], --w->nb_waiting * sizeof(struct gen_job *));
		answer(w->g, job, 500, "Internal Server Error: prefill failed");
		return k;
	}
	job->fed += k;
	count(&w->g->st.prompt_tokens, k);
	if (job->fed < job->nb_ids) {
		return k; /* the rest of the prompt next iteration */
	}
	count(&w->g->st.generated_tokens, 1);
	bx_lathist_record(&w->g->st.ttft, bx_time_ns() - job->submit_ns);
	memmove(&w->waiting[0], &w->waiting[1], --w->nb_waiting * sizeof(struct gen_job *));
	if (take_event(job, &ev)) {
		finished(w, job);
	} else {
		(void)stream_out(job); /* the first token; -ENOBUFS: it goes with the next */
		w->active[w->nb_active++] = job;
	}
	return k;
}

static void
iterate(struct worker *w)
{
	size_t budget = STEP_TOKENS;

	decode(w);
	budget -= BX_MIN(budget, w->nb_active);
	while (budget > 0 && w->nb_waiting > 0 && w->nb_active < ACTIVE_MAX) {
		size_t used = prefill_one(w, budget); /* not inside BX_MIN: it evaluates twice */

		budget -= BX_MIN(budget, used);
	}
	__atomic_store_n(&w->g->st.active, w->nb_active, __ATOMIC_RELAXED);
	__atomic_store_n(&w->g->st.waiting, w->nb_waiting, __ATOMIC_RELAXED);
}

/* Sleep until work arrives or FLUSH_RETRY_NS passes. */
static void
wait_a_little(sem_t *wake)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_nsec += (long)FLUSH_RETRY_NS;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	(void)sem_timedwait(wake, &ts);
}

static void *
worker_main(void *arg)
{
	struct worker w = { .g = arg };
	struct bx_errbuf eb;

	w.g->init_ret = bx_thread_pin_self(w.g->cpu, &eb);
	if (w.g->init_ret == 0) {
		w.g->init_ret = bx_llm_ctx_create(w.g->model, STEP_TOKENS, 1, false, &w.ctx);
	}
	sem_post(&w.g->started); /* tell create() how init went */
	while (w.g->init_ret == 0) {
		admit_from_inbox(&w, bx_time_ns());
		flush_lagging(&w, bx_time_ns());
		if (w.nb_active == 0 && w.nb_waiting == 0) {
			if (w.nb_flushing > 0) {
				wait_a_little(&w.g->wake);
				continue;
			}
			if (__atomic_load_n(&w.g->stop, __ATOMIC_ACQUIRE)) {
				break;
			}
			sem_wait(&w.g->wake);
			continue;
		}
		iterate(&w);
	}
	bx_llm_ctx_destroy(w.ctx);
	return NULL;
}

/* ------------------------- the dataplane side ------------------------- */

/* A field's JSON value parsed, or NULL when absent or null. */
static json_t *
field(struct bx_call *call, const char *name)
{
	size_t len;
	const char *raw = bx_call_field(call, name, &len);
	json_t *v = raw != NULL ? json_loadb(raw, len, JSON_DECODE_ANY, NULL) : NULL;

	if (json_is_null(v)) {
		json_decref(v);
		return NULL;
	}
	return v;
}

/* The prompt text: `prompt`, else every message's content, one per line. */
static size_t
prompt_text(struct bx_call *call, char *buf, size_t cap)
{
	json_t *p = field(call, "prompt"), *msgs, *m;
	size_t used = 0, i;

	if (json_is_string(p)) {
		used = (size_t)snprintf(buf, cap, "%s", json_string_value(p));
		json_decref(p);
		return BX_MIN(used, cap - 1);
	}
	json_decref(p);
	msgs = field(call, "messages");
	json_array_foreach(msgs, i, m)
	{
		const char *c = json_string_value(json_object_get(m, "content"));

		if (c != NULL && used < cap) {
			used += (size_t)snprintf(buf + used, cap - used, "%s%s", used ? "\n" : "",
			                         c);
		}
	}
	json_decref(msgs);
	return BX_MIN(used, cap - 1);
}

/* Sampling settings from the request; max_tokens capped. */
static void
seq_conf(struct bx_call *call, const struct bx_fw_gen *g, struct bx_llm_seq_conf *c)
{
	json_t *mt = field(call, "max_tokens"), *t = field(call, "temperature");
	json_t *tp = field(call, "top_p"), *seed = field(call, "seed");

	*c = (struct bx_llm_seq_conf){
		.sample = { .temperature = 1.0f, .top_p = 1.0f, .repeat_penalty = 1.0f }
	};
	c->max_tokens =
		json_is_integer(mt) && json_integer_value(mt) > 0 ?
			(uint32_t)BX_MIN(json_integer_value(mt), (json_int_t)g->max_tokens) :
			g->max_tokens;
	c->sample.temperature = json_is_number(t) ? (float)json_number_value(t) : 1.0f;
	c->sample.top_p = json_is_number(tp) ? (float)json_number_value(tp) : 1.0f;
	c->sample.seed = json_is_integer(seed) ? (uint64_t)json_integer_value(seed) : bx_wall_ns();
	json_decref(mt);
	json_decref(t);
	json_decref(tp);
	json_decref(seed);
}

/* Tokenize into the job: BOS and the last prompt tokens. 0 or the call failed. */
static int
tokenize(const struct bx_fw_gen *g, struct gen_job *job, struct bx_call *call)
{
	int32_t ids[4 * BX_GEN_PROMPT_MAX];
	char prompt[4096];
	size_t len = prompt_text(call, prompt, sizeof(prompt)), n;
	int ret = bx_llm_tokenize(g->model, prompt, len, true, ids, BX_ARRAY_SIZE(ids), &n);

	if (ret < 0) {
		bx_call_fail(call, ret == -ENOBUFS ? 413 : 500,
		             ret == -ENOBUFS ? "Prompt too long" : "Internal Server Error");
		return -1;
	}
	/* Keep BOS and the end of a long prompt: what the completion follows. */
	job->nb_ids = BX_MIN(n, (size_t)BX_GEN_PROMPT_MAX);
	job->ids[0] = ids[0];
	memcpy(job->ids + 1, ids + n - (job->nb_ids - 1), (job->nb_ids - 1) * sizeof(int32_t));
	return 0;
}

int
bx_fw_gen_synapse(void *arg, struct bx_call *call)
{
	struct bx_fw_gen *g = arg;
	const struct bx_mg_neuron *who = bx_call_neuron(call);
	struct gen_job *job;
	void *obj;

	if (bx_mpmc_dequeue_burst(g->free_jobs, &obj, 1) != 1) {
		return bx_call_fail(call, 503,
		                    "Service unavailable: too many generations in flight");
	}
	job = obj;
	job->seq = NULL;
	job->fed = job->len = job->streamed = 0;
	job->stream = strcmp(bx_call_synapse(call), "StreamingTextGeneration") == 0;
	if (tokenize(g, job, call) < 0) {
		bx_mpmc_enqueue_burst(g->free_jobs, &obj, 1);
		return 0; /* answered by tokenize */
	}
	job->ticket = bx_call_defer(call);
	if (job->ticket == NULL) {
		bx_mpmc_enqueue_burst(g->free_jobs, &obj, 1);
		return bx_call_fail(call, 503, "Service unavailable: too many requests in flight");
	}
	seq_conf(call, g, &job->sc);
	job->submit_ns = bx_time_ns();
	job->deadline_ns =
		job->submit_ns + (uint64_t)(bx_call_timeout(call) * 1e9) - DEADLINE_SLACK_NS;
	job->priority =
		who != NULL && who->stake > 0 ? (uint64_t)BX_MIN(who->stake * 1e9, 1.8e19) : 0;
	/* Cannot fail: the inbox holds the whole pool. */
	bx_mpmc_enqueue_burst(g->inbox, &obj, 1);
	sem_post(&g->wake);
	return BX_CALL_PENDING;
}

int
bx_fw_gen_create(const struct bx_llm_model *m, unsigned max_tokens, unsigned cpu,
                 struct bx_fw_gen **out, struct bx_errbuf *eb)
{
	struct bx_fw_gen *g = bx_calloc(1, sizeof(*g));
	int ret;

	if (g == NULL) {
		return bx_err(eb, ENOMEM, "out of memory");
	}
	*g = (struct bx_fw_gen){ .model = m, .max_tokens = max_tokens, .cpu = cpu };
	g->jobs = bx_calloc(JOBS_MAX, sizeof(*g->jobs));
	if (g->jobs == NULL || bx_mpmc_create(JOBS_MAX, &g->free_jobs) < 0 ||
	    bx_mpmc_create(JOBS_MAX, &g->inbox) < 0) {
		bx_fw_gen_destroy(g);
		return bx_err(eb, ENOMEM, "generation job pool: out of memory");
	}
	for (unsigned i = 0; i < JOBS_MAX; i++) {
		void *obj = &g->jobs[i];

		bx_mpmc_enqueue_burst(g->free_jobs, &obj, 1);
	}
	sem_init(&g->wake, 0, 0);
	sem_init(&g->started, 0, 0);
	ret = -pthread_create(&g->thread, NULL, worker_main, g);
	if (ret == 0) {
		sem_wait(&g->started);
		ret = g->init_ret;
	}
	if (ret < 0) {
		bx_err(eb, ret, "generation worker on cpu %u: %s", cpu, bx_strerror(ret));
		bx_fw_gen_destroy(g);
		return ret;
	}
	*out = g;
	return 0;
}

void
bx_fw_gen_destroy(struct bx_fw_gen *g)
{
	if (g == NULL) {
		return;
	}
	if (g->thread) {
		__atomic_store_n(&g->stop, 1, __ATOMIC_RELEASE);
		sem_post(&g->wake);
		pthread_join(g->thread, NULL);
		sem_destroy(&g->wake);
		sem_destroy(&g->started);
	}
	while (g->nb_pool > 0) {
		bx_llm_seq_destroy(g->pool[--g->nb_pool]);
	}
	bx_mpmc_destroy(g->inbox);
	bx_mpmc_destroy(g->free_jobs);
	bx_free(g->jobs);
	bx_free(g);
}

void
bx_fw_gen_stats(const struct bx_fw_gen *g, struct bx_fw_gen_stats *out)
{
	memset(out, 0, sizeof(*out));
	out->prompt_tokens = __atomic_load_n(&g->st.prompt_tokens, __ATOMIC_RELAXED);
	out->generated_tokens = __atomic_load_n(&g->st.generated_tokens, __ATOMIC_RELAXED);
	for (unsigned i = 0; i < BX_GEN_OUTCOMES; i++) {
		out->outcomes[i] = __atomic_load_n(&g->st.outcomes[i], __ATOMIC_RELAXED);
	}
	out->active = __atomic_load_n(&g->st.active, __ATOMIC_RELAXED);
	out->waiting = __atomic_load_n(&g->st.waiting, __ATOMIC_RELAXED);
	bx_lathist_merge(&out->step, &g->st.step);
	bx_lathist_merge(&out->ttft, &g->st.ttft);
}
