/*
 * libFuzzer target: the JSON body reader, the writer and Python str().
 * Whatever parses must re-emit (both styles) as text that parses again to
 * the same shape.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct bx_jtok toks[4096], toks2[4096];
static char out[1 << 17], out2[1 << 18];

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bx_json j, j2;
	struct bx_obuf b;
	struct bx_jw w;

	if (bx_json_parse(&j, (const char *)data, size, toks, 4096, 24) < 0) {
		return 0;
	}
	for (int style = 0; style < 2; style++) {
		bx_obuf_init(&b, out, sizeof(out));
		bx_jw_init(&w, &b, style ? BX_JW_PY_DEFAULT : BX_JW_COMPACT);
		bx_jw_value(&w, &j, 0);
		if (b.overflow) {
			continue;
		}
		if (bx_json_parse(&j2, out, b.len, toks2, 4096, 24) < 0) {
			abort();
		}
		if (j2.nb_toks != j.nb_toks) {
			abort();
		}
		for (uint32_t i = 0; i < j.nb_toks; i++) {
			if (j.toks[i].type != j2.toks[i].type || j.toks[i].nb != j2.toks[i].nb) {
				abort();
			}
		}
	}
	bx_obuf_init(&b, out2, sizeof(out2));
	bx_py_str(&b, &j, 0, false);
	bx_obuf_init(&b, out2, sizeof(out2));
	bx_py_str(&b, &j, 0, true);
	return 0;
}
