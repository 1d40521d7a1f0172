/* Fuzz the tokenizer (UTF-8 decoding, Unicode tables, WordPiece) on arbitrary bytes. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <bx/infer.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char vocab[] = "[PAD]\n[UNK]\n[CLS]\n[SEP]\na\nb\n##a\n##b\nab\n##ab\n!\n\xc3\xa9\n"
			    "\xe4\xb8\x80\n##\xe1\x84\x80\n\xe1\x84\x92\n";

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct bx_wordpiece *wp;
	static int32_t ids[512];
	struct bx_errbuf eb;
	int n;

	if (wp == NULL && bx_wordpiece_load_mem(vocab, strlen(vocab), "fuzz", &wp, &eb) < 0) {
		return 0;
	}
	n = bx_wordpiece_encode(wp, (const char *)data, size, BX_WP_SPECIALS, ids, 512, NULL);
	if (n < 2 || n > 512 || ids[0] != 2 || ids[n - 1] != 3) {
		__builtin_trap();
	}
	for (int i = 0; i < n; i++) {
		if (ids[i] < 0 || ids[i] >= (int)bx_wordpiece_size(wp)) {
			__builtin_trap();
		}
	}
	n = bx_wordpiece_encode(wp, (const char *)data, size, 0, ids, 7, NULL);
	if (n < 0 || n > 7) {
		__builtin_trap();
	}
	return 0;
}
