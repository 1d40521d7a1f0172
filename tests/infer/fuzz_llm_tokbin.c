/*
 * Fuzz the llama2.c tokenizer.bin reader and the BPE encoder on the
 * vocabularies it accepts: the input is a tokenizer.bin for a fixed tiny
 * 512-token checkpoint generated at start.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <bx/infer.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int model_fd = -1;

/* dim 8, hidden 16, 1 layer, 2 heads, 1 KV head, vocab 512 (tied), seq 4. */
static void
make_model(void)
{
	const int32_t h[7] = { 8, 16, 1, 2, 1, 512, 4 };
	size_t floats = 512 * 8 + 8 + 8 * 8 + 2 * 8 * 4 + 8 * 8 + 8 + 3 * 8 * 16 + 8 + 4 * 4;
	float *w = calloc(floats, sizeof(float));

	model_fd = memfd_create("fuzz.bin", MFD_CLOEXEC);
	if (model_fd < 0 || !w || write(model_fd, h, sizeof(h)) != sizeof(h) ||
	    write(model_fd, w, floats * sizeof(float)) != (ssize_t)(floats * sizeof(float))) {
		abort();
	}
	free(w);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const texts[] = { "Hello world", " a  b\n", "\xe6\x97\xa5\xff", "" };
	struct bx_llm_model *m;
	struct bx_errbuf eb;
	char mp[64], tp[64];
	int fd;

	if (model_fd < 0) {
		make_model();
	}
	fd = memfd_create("fuzz.tok", MFD_CLOEXEC);
	if (fd < 0) {
		return 0;
	}
	snprintf(mp, sizeof(mp), "/proc/self/fd/%d", model_fd);
	snprintf(tp, sizeof(tp), "/proc/self/fd/%d", fd);
	if (write(fd, data, size) == (ssize_t)size && bx_llm_load_llama2c(mp, tp, &m, &eb) == 0) {
		for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
			int32_t ids[64];
			char out[BX_LLM_DETOK_OUT];
			struct bx_llm_detok d;
			size_t n = 0;

			if (bx_llm_tokenize(m, texts[i], strlen(texts[i]), true, ids, 64, &n)) {
				continue;
			}
			bx_llm_detok_init(&d);
			for (size_t k = 0; k < n; k++) {
				bx_llm_detok_push(m, &d, ids[k], out);
			}
		}
		bx_llm_model_destroy(m);
	}
	close(fd);
	return 0;
}
