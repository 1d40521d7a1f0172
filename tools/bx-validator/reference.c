/* Local reference embeddings (reference.h). */
#include "reference.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <string.h>

#include <bx/infer.h>
#include <bx/platform.h>

int
bx_ref_embed(const char *model_dir, const char *const *texts, unsigned n, float *out, size_t cap,
             unsigned *dim, struct bx_errbuf *eb)
{
	struct bx_embed_opts opts = { .reference = true };
	struct bx_embed_model *m = NULL;
	struct bx_embed_ctx *ctx = NULL;
	size_t lens[64];
	unsigned i;
	int ret;

	if (n == 0 || n > BX_ARRAY_SIZE(lens)) {
		return bx_err(eb, EINVAL, "reference: 1..%zu texts", BX_ARRAY_SIZE(lens));
	}
	ret = bx_embed_model_load(model_dir, &opts, &m, eb);
	if (ret < 0) {
		return ret;
	}
	*dim = bx_embed_dim(m);
	if ((size_t)n * *dim > cap) {
		ret = bx_err(eb, ENOSPC, "reference: %u x %u floats do not fit", n, *dim);
		goto out;
	}
	ret = bx_embed_ctx_create(m, 1, &ctx);
	if (ret < 0) {
		bx_err(eb, -ret, "reference: %s: no inference context: %s", model_dir,
		       bx_strerror(ret));
		goto out;
	}
	for (i = 0; i < n; i++) {
		lens[i] = strlen(texts[i]);
	}
	ret = bx_embed_batch(ctx, texts, lens, n, out);
	if (ret < 0) {
		bx_err(eb, -ret, "reference: %s: embedding failed: %s", model_dir,
		       bx_strerror(ret));
	}
out:
	bx_embed_ctx_destroy(ctx);
	bx_embed_model_destroy(m);
	return ret;
}

/* ======================= Generation ======================= */

#define MAX_IDS 4096

#define CACHE 64

struct bx_ref_llm {
	struct bx_llm_model *m;
	struct bx_llm_ctx *ctx;
	pthread_mutex_t mu;
	int32_t ids[MAX_IDS];
	/* Answers repeat (greedy miners): their log-likelihoods, by FNV-1a of prompt and text. */
	uint64_t key[CACHE];
	double val[CACHE];
	unsigned next;
};

static uint64_t
fnv(uint64_t h, const char *s)
{
	for (; *s != 0; s++) {
		h = (h ^ (uint8_t)*s) * 0x100000001b3ull;
	}
	return (h ^ 0xff) * 0x100000001b3ull;
}

int
bx_ref_llm_open(const char *model, const char *tok, struct bx_ref_llm **out, struct bx_errbuf *eb)
{
	size_t n = strlen(model);
	struct bx_ref_llm *r = bx_calloc(1, sizeof(*r));
	int ret;

	if (r == NULL) {
		return bx_err(eb, ENOMEM, "reference model: out of memory");
	}
	if (n > 5 && strcmp(model + n - 5, ".gguf") == 0) {
		ret = bx_llm_load_gguf(model, &r->m, eb);
	} else {
		ret = bx_llm_load_llama2c(model, tok, &r->m, eb);
	}
	if (ret == 0) {
		ret = bx_llm_ctx_create(r->m, 1, 1, true, &r->ctx);
		if (ret < 0) {
			bx_err(eb, -ret, "%s: no reference context: %s", model, bx_strerror(ret));
		}
	}
	if (ret < 0) {
		bx_ref_llm_close(r);
		return ret;
	}
	pthread_mutex_init(&r->mu, NULL);
	*out = r;
	return 0;
}

void
bx_ref_llm_close(struct bx_ref_llm *r)
{
	if (r == NULL) {
		return;
	}
	if (r->ctx != NULL) {
		pthread_mutex_destroy(&r->mu);
	}
	bx_llm_ctx_destroy(r->ctx);
	bx_llm_model_destroy(r->m);
	bx_free(r);
}

/* log softmax(logits)[id] over the vocabulary. */
static double
log_prob(const float *logits, uint32_t vocab, int32_t id)
{
	double max = logits[0], sum = 0;
	uint32_t i;

	for (i = 1; i < vocab; i++) {
		max = logits[i] > max ? logits[i] : max;
	}
	for (i = 0; i < vocab; i++) {
		sum += exp((double)logits[i] - max);
	}
	return (double)logits[id] - max - log(sum);
}

/* A greedy sequence prefilled with BOS + prompt; *ev gets the first token. */
static int
start(struct bx_ref_llm *r, const char *prompt, unsigned max_tokens, struct bx_llm_seq **s,
      struct bx_llm_event *ev)
{
	struct bx_llm_seq_conf sc = {
		.sample = { .temperature = 0, .top_p = 1, .repeat_penalty = 1 },
		.max_tokens = max_tokens
	};
	size_t n;
	int ret;

	ret = bx_llm_tokenize(r->m, prompt, strlen(prompt), true, r->ids, MAX_IDS, &n);
	if (ret < 0) {
		return ret;
	}
	ret = bx_llm_seq_create(r->m, &sc, s);
	if (ret < 0) {
		return ret;
	}
	ret = bx_llm_seq_prefill(r->ctx, *s, r->ids, n, ev);
	if (ret < 0) {
		bx_llm_seq_destroy(*s);
	}
	return ret;
}

static int
greedy_locked(struct bx_ref_llm *r, const char *prompt, unsigned max_tokens, char *out, size_t cap,
              double *mean_ll)
{
	uint32_t vocab = bx_llm_model_config(r->m)->vocab_size;
	struct bx_llm_seq *s;
	struct bx_llm_event ev;
	double ll = 0;
	size_t len = 0;
	unsigned k = 0;
	int ret = start(r, prompt, max_tokens, &s, &ev);

	if (ret < 0) {
		return ret;
	}
	for (;;) {
		ll += log_prob(bx_llm_seq_logits(s), vocab, ev.id);
		k++;
		if (ev.len > 0 && len + ev.len < cap) {
			memcpy(out + len, ev.text, ev.len);
			len += ev.len;
		}
		if (ev.stop != BX_LLM_RUNNING) {
			break;
		}
		ret = bx_llm_step(r->ctx, &s, 1, &ev);
		if (ret < 0) {
			break;
		}
	}
	out[len] = 0;
	*mean_ll = ll / k;
	bx_llm_seq_destroy(s);
	return ret < 0 ? ret : 0;
}

int
bx_ref_llm_greedy(struct bx_ref_llm *r, const char *prompt, unsigned max_tokens, char *out,
                  size_t cap, double *mean_ll)
{
	int ret;

	if (cap == 0) {
		return -EINVAL;
	}
	pthread_mutex_lock(&r->mu);
	ret = greedy_locked(r, prompt, max_tokens, out, cap, mean_ll);
	pthread_mutex_unlock(&r->mu);
	return ret;
}

/*
 * A fresh greedy sequence prefilled with BOS + prompt + ans[0..k): used
 * when the incremental one finished early (its own sample was EOS).
 */
static int
refill(struct bx_ref_llm *r, const char *prompt, const int32_t *ans, size_t k,
       struct bx_llm_seq **s)
{
	struct bx_llm_seq_conf sc = { .sample = {
					      .temperature = 0, .top_p = 1, .repeat_penalty = 1 } };
	struct bx_llm_event ev;
	size_t n;
	int ret;

	ret = bx_llm_tokenize(r->m, prompt, strlen(prompt), true, r->ids, MAX_IDS, &n);
	if (ret < 0 || n + k > MAX_IDS) {
		return ret < 0 ? ret : -ENOSPC;
	}
	memcpy(r->ids + n, ans, k * sizeof(*ans));
	ret = bx_llm_seq_create(r->m, &sc, s);
	if (ret < 0) {
		return ret;
	}
	ret = bx_llm_seq_prefill(r->ctx, *s, r->ids, n + k, &ev);
	if (ret < 0) {
		bx_llm_seq_destroy(*s);
		*s = NULL;
	}
	return ret;
}

static int
loglik_locked(struct bx_ref_llm *r, const char *prompt, const char *completion, double *mean_ll)
{
	uint32_t vocab = bx_llm_model_config(r->m)->vocab_size;
	static __thread int32_t ans[MAX_IDS];
	struct bx_llm_seq *s = NULL;
	struct bx_llm_event ev;
	double ll = 0;
	size_t n, i;
	int ret;

	/*
	 * The answer's tokens as the model would write them after the prompt.
	 * The tokenizer adds SentencePiece's leading space itself, so one the
	 * text already starts with is not doubled.
	 */
	if (completion[0] == ' ') {
		completion++;
	}
	ret = bx_llm_tokenize(r->m, completion, strlen(completion), false, ans, MAX_IDS, &n);
	if (ret < 0 || n == 0) {
		return ret < 0 ? ret : -EINVAL;
	}
	ret = refill(r, prompt, ans, 0, &s);
	for (i = 0; i < n && ret == 0; i++) {
		if (i > 0) {
			/* Teacher forcing: feed the answer's token, not the sampled one. */
			ret = bx_llm_seq_prefill(r->ctx, s, &ans[i - 1], 1, &ev);
			if (ret == -EINVAL || ret == -ENOSPC) {
				bx_llm_seq_destroy(s);
				s = NULL;
				ret = refill(r, prompt, ans, i, &s);
			}
			if (ret < 0) {
				break;
			}
		}
		ll += log_prob(bx_llm_seq_logits(s), vocab, ans[i]);
	}
	if (s != NULL) {
		bx_llm_seq_destroy(s);
	}
	*mean_ll = ll / (double)n;
	return ret;
}

int
bx_ref_llm_loglik(struct bx_ref_llm *r, const char *prompt, const char *completion, double *mean_ll)
{
	uint64_t key = fnv(fnv(0xcbf29ce484222325ull, prompt), completion) | 1;
	unsigned i;
	int ret = 0;

	pthread_mutex_lock(&r->mu);
	for (i = 0; i < CACHE; i++) {
		if (r->key[i] == key) {
			*mean_ll = r->val[i];
			goto out;
		}
	}
	ret = loglik_locked(r, prompt, completion, mean_ll);
	if (ret == 0) {
		r->key[r->next] = key;
		r->val[r->next] = *mean_ll;
		r->next = (r->next + 1) % CACHE;
	}
out:
	pthread_mutex_unlock(&r->mu);
	return ret;
}
