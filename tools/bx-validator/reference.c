/* Local reference embeddings (reference.h). */
#include "reference.h"

#include <errno.h>
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
