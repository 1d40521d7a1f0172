/*
 * The TextEmbedding synapse: `texts` in, `embeddings` out (one L2-normalised
 * vector per text), computed by the infer library.
 *
 * For now this runs on the dataplane thread that parsed the request
 * (run-to-completion, one engine context per dataplane thread, created on
 * that thread's first request). Routing it through the scheduler's pinned
 * workers needs the dataplane to hand a call off and complete it later.
 *
 * `texts` is parsed with jansson (Debian libjansson): it reads everything
 * Python's json.dumps writes, \u escapes and surrogate pairs included.
 * Floats are written with 9 significant digits, which round-trip float32.
 */
#include "embed_synapse.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include <bx/dataplane.h>
#include <bx/firmware.h>
#include <bx/infer.h>

/* Per dataplane thread: the engine context and scratch, made on first use. */
static __thread struct {
	struct bx_embed_ctx *ctx;
	int32_t *ids; /* BX_EMBED_TEXTS_MAX * max_tokens */
	float *vecs;  /* BX_EMBED_TEXTS_MAX * dim */
	char *json;   /* the output array */
	size_t json_cap;
} tls;

static pthread_key_t tls_key;
static pthread_once_t tls_once = PTHREAD_ONCE_INIT;

/* At dataplane thread exit: the context is destroyed on the thread that made it. */
static void
thread_fini(void *unused)
{
	bx_embed_ctx_destroy(tls.ctx);
	bx_free(tls.ids);
	bx_free(tls.vecs);
	bx_free(tls.json);
	memset(&tls, 0, sizeof(tls));
}

static void
make_key(void)
{
	pthread_key_create(&tls_key, thread_fini);
}

static int
thread_init(const struct bx_embed_model *m)
{
	unsigned maxt = bx_embed_max_tokens(m), dim = bx_embed_dim(m);
	int ret;

	pthread_once(&tls_once, make_key);
	ret = bx_embed_ctx_create(m, 1, &tls.ctx);
	if (ret < 0) {
		return ret;
	}
	/* Any non-NULL value makes the destructor run when this thread exits. */
	pthread_setspecific(tls_key, &tls);
	/* "-0.123456789, " is at most 16 bytes a value, plus brackets. */
	tls.json_cap = (size_t)BX_EMBED_TEXTS_MAX * (dim * 16 + 4) + 4;
	tls.ids = bx_malloc(sizeof(int32_t) * BX_EMBED_TEXTS_MAX * maxt);
	tls.vecs = bx_malloc(sizeof(float) * BX_EMBED_TEXTS_MAX * dim);
	tls.json = bx_malloc(tls.json_cap);
	if (tls.ids == NULL || tls.vecs == NULL || tls.json == NULL) {
		thread_fini(NULL);
		return -ENOMEM;
	}
	return 0;
}

/* The vectors as [[a, b, ...], ...] with json.dumps spacing. */
static size_t
write_vectors(const float *v, unsigned n, unsigned dim)
{
	size_t o = 0;

	tls.json[o++] = '[';
	for (unsigned i = 0; i < n; i++) {
		o += (size_t)snprintf(tls.json + o, tls.json_cap - o, "%s[", i > 0 ? ", " : "");
		for (unsigned k = 0; k < dim; k++) {
			o += (size_t)snprintf(tls.json + o, tls.json_cap - o, "%s%.9g",
			                      k > 0 ? ", " : "", (double)v[(size_t)i * dim + k]);
		}
		tls.json[o++] = ']';
	}
	tls.json[o++] = ']';
	return o;
}

/* Tokenize every text of the JSON array; the count, or an axon status. */
static int
tokenize_all(const struct bx_embed_model *m, json_t *texts, const int32_t **ids, unsigned *lens,
             struct bx_call *call)
{
	unsigned maxt = bx_embed_max_tokens(m);
	size_t n = json_array_size(texts);

	if (n > BX_EMBED_TEXTS_MAX) {
		bx_call_fail(call, 413, "Too many texts in one request (the limit is 16)");
		return -E2BIG;
	}
	for (size_t i = 0; i < n; i++) {
		json_t *t = json_array_get(texts, i);
		int k;

		if (!json_is_string(t)) {
			bx_call_fail(call, 422, "texts must be a list of strings");
			return -EINVAL;
		}
		k = bx_embed_tokenize(m, json_string_value(t), json_string_length(t),
		                      tls.ids + i * maxt);
		if (k < 0) {
			bx_call_fail(call, 422, "a text is not valid UTF-8");
			return k;
		}
		ids[i] = tls.ids + i * maxt;
		lens[i] = (unsigned)k;
	}
	return (int)n;
}

static int
embed_json(const struct bx_embed_model *m, json_t *texts, struct bx_call *call)
{
	const int32_t *ids[BX_EMBED_TEXTS_MAX];
	unsigned lens[BX_EMBED_TEXTS_MAX];
	size_t len;
	int n, ret;

	n = tokenize_all(m, texts, ids, lens, call);
	if (n < 0) {
		return 0; /* answered with the status set by tokenize_all */
	}
	if (n > 0) {
		ret = bx_embed_batch_ids(tls.ctx, ids, lens, (unsigned)n, tls.vecs);
		if (ret < 0) {
			return ret;
		}
	}
	len = write_vectors(tls.vecs, (unsigned)n, bx_embed_dim(m));
	ret = bx_call_set_output(call, "embeddings", tls.json, len);
	return ret == -ENOSPC ? bx_call_fail(call, 413, "Response too large") : ret;
}

int
bx_fw_embed_synapse(void *arg, struct bx_call *call)
{
	const struct bx_embed_model *m = arg;
	json_error_t jerr;
	const char *raw;
	json_t *texts;
	size_t len;
	int ret;

	if (tls.ctx == NULL && thread_init(m) < 0) {
		return -ENOMEM;
	}
	raw = bx_call_field(call, "texts", &len);
	if (raw == NULL) {
		return bx_call_fail(call, 422, "texts is required");
	}
	texts = json_loadb(raw, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
	if (texts == NULL || !json_is_array(texts)) {
		json_decref(texts);
		return bx_call_fail(call, 422, "texts must be a list of strings");
	}
	ret = embed_json(m, texts, call);
	json_decref(texts);
	return ret;
}
