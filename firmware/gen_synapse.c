/*
 * The TextGeneration synapse: `prompt` (or the contents of `messages`, one
 * per line) in, `completion` out, with the request's max_tokens (capped),
 * temperature, top_p and seed.
 *
 * Like the embedding synapse, this runs on the dataplane thread that parsed
 * the request for now, one engine context per thread; continuous batching
 * across requests comes with the scheduler hand-off.
 */
#include "gen_synapse.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include <bx/firmware.h>

#define TEXT_MAX (64 * 1024)

static __thread struct {
	struct bx_llm_ctx *ctx;
	char *text; /* the completion so far, TEXT_MAX bytes */
} tls;

static pthread_key_t tls_key;
static pthread_once_t tls_once = PTHREAD_ONCE_INIT;

static void
thread_fini(void *unused)
{
	bx_llm_ctx_destroy(tls.ctx);
	bx_free(tls.text);
	memset(&tls, 0, sizeof(tls));
}

static void
make_key(void)
{
	pthread_key_create(&tls_key, thread_fini);
}

static int
thread_init(const struct bx_llm_model *m)
{
	int ret;

	pthread_once(&tls_once, make_key);
	ret = bx_llm_ctx_create(m, BX_GEN_PROMPT_MAX, 1, false, &tls.ctx);
	if (ret < 0) {
		return ret;
	}
	pthread_setspecific(tls_key, &tls);
	tls.text = bx_malloc(TEXT_MAX);
	if (tls.text == NULL) {
		thread_fini(NULL);
		return -ENOMEM;
	}
	return 0;
}

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

/* Prefill then decode until a stop; the completion's length in tls.text. */
static int
generate(const struct bx_llm_model *m, struct bx_llm_seq *s, const int32_t *ids, size_t n)
{
	struct bx_llm_event ev;
	size_t used = 0;
	int ret;

	ret = bx_llm_seq_prefill(tls.ctx, s, ids, n, &ev);
	while (ret == 0) {
		size_t k = BX_MIN(ev.len, TEXT_MAX - 1 - used);

		memcpy(tls.text + used, ev.text, k);
		used += k;
		if (ev.stop != BX_LLM_RUNNING) {
			break;
		}
		ret = bx_llm_step(tls.ctx, &s, 1, &ev);
	}
	tls.text[used] = '\0';
	return ret < 0 ? ret : (int)used;
}

static int
answer(struct bx_call *call, const char *text, size_t len)
{
	json_t *s = json_stringn(text, len);
	char *out = s != NULL ? json_dumps(s, JSON_ENCODE_ANY) : NULL;
	int ret = out != NULL ? bx_call_set_output(call, "completion", out, strlen(out)) : -ENOMEM;

	free(out);
	json_decref(s);
	return ret;
}

int
bx_fw_gen_synapse(void *arg, struct bx_call *call)
{
	const struct bx_fw_gen *g = arg;
	int32_t ids[4 * BX_GEN_PROMPT_MAX];
	struct bx_llm_seq_conf sc;
	struct bx_llm_seq *s;
	char prompt[4096];
	size_t n, len;
	int ret;

	if (tls.ctx == NULL && thread_init(g->model) < 0) {
		return -ENOMEM;
	}
	len = prompt_text(call, prompt, sizeof(prompt));
	ret = bx_llm_tokenize(g->model, prompt, len, true, ids, BX_ARRAY_SIZE(ids), &n);
	if (ret < 0) {
		return ret == -ENOBUFS ? bx_call_fail(call, 413, "Prompt too long") : ret;
	}
	seq_conf(call, g, &sc);
	ret = bx_llm_seq_create(g->model, &sc, &s);
	if (ret < 0) {
		return ret;
	}
	/* Keep BOS and the end of a long prompt: what the completion follows. */
	if (n > BX_GEN_PROMPT_MAX) {
		memmove(ids + 1, ids + n - (BX_GEN_PROMPT_MAX - 1), (BX_GEN_PROMPT_MAX - 1) * 4);
		n = BX_GEN_PROMPT_MAX;
	}
	ret = generate(g->model, s, ids, n);
	bx_llm_seq_destroy(s);
	return ret < 0 ? ret : answer(call, tls.text, (size_t)ret);
}
