/* Fuzz the safetensors header parser and layout checks on arbitrary bytes. */
#include <stddef.h>
#include <stdint.h>

#include <bx/infer.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bx_st_file *f;
	struct bx_errbuf eb;
	volatile uint8_t sink = 0;

	if (bx_st_open_mem(data, size, "fuzz", 0, &f, &eb) == 0) {
		for (unsigned i = 0; i < bx_st_count(f); i++) {
			const struct bx_st_tensor *t = bx_st_get(f, i);

			if (t->end > t->begin) {
				sink ^= ((const uint8_t *)t->data)[t->end - t->begin - 1];
			}
		}
		bx_st_close(f);
	}
	if (bx_st_open_mem(data, size, "fuzz", BX_ST_HEADER_ONLY, &f, &eb) == 0) {
		bx_st_close(f);
	}
	(void)sink;
	return 0;
}
