/*
 * Fuzz the GGUF reader on arbitrary bytes; when a file loads, tokenize,
 * detokenize and run one prefill step on it, so the tensors and vocabulary
 * the reader accepted are used for real.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include <bx/infer.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
exercise(const struct bx_llm_model *m)
{
	struct bx_llm_seq_conf sc = { .sample = { .top_p = 1, .repeat_penalty = 1 }, .ctx_len = 4 };
	const struct bx_llm_config *c = bx_llm_model_config(m);
	struct bx_llm_ctx *ctx;
	struct bx_llm_seq *s;
	struct bx_llm_event ev;
	struct bx_llm_detok d;
	char out[BX_LLM_DETOK_OUT];
	int32_t ids[64];
	size_t n = 0;

	if (bx_llm_tokenize(m, "Hi \xc3\xa9\xff!", 7, true, ids, 64, &n) == 0) {
		bx_llm_detok_init(&d);
		for (size_t i = 0; i < n; i++) {
			bx_llm_detok_push(m, &d, ids[i], out);
		}
		bx_llm_detok_flush(&d, out);
	}
	if ((uint64_t)c->dim * c->n_layers * c->hidden_dim > (1u << 24) || c->seq_len < 4) {
		return; /* keep each input fast */
	}
	if (bx_llm_ctx_create(m, 2, 1, false, &ctx)) {
		return;
	}
	if (bx_llm_seq_create(m, &sc, &s) == 0) {
		ids[0] = 0;
		bx_llm_seq_prefill(ctx, s, ids, 1, &ev);
		bx_llm_seq_destroy(s);
	}
	bx_llm_ctx_destroy(ctx);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bx_llm_model *m;
	struct bx_errbuf eb;
	char path[64];
	int fd = memfd_create("fuzz.gguf", MFD_CLOEXEC);

	if (fd < 0) {
		return 0;
	}
	if (write(fd, data, size) == (ssize_t)size) {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		if (bx_llm_load_gguf(path, &m, &eb) == 0) {
			exercise(m);
			bx_llm_model_destroy(m);
		}
	}
	close(fd);
	return 0;
}
