/*
 * WordPiece tokenizer on the real uncased vocabulary: a table of sentences
 * with their expected pieces, bad UTF-8, truncation, and llama.cpp's
 * independent BERT tokenizer test vectors (bert-wordpiece-tests).
 */
#include <errno.h>

#include "test_util.h"

static struct bx_wordpiece *wp;
static const char *vectors_path; /* argv[1]: wordpiece_vectors.txt */

/* Expected pieces, space-separated, without [CLS]/[SEP]. */
static const struct {
	const char *text;
	size_t len; /* 0: strlen */
	const char *pieces;
} table[] = {
	{ "Hello, World!", 0, "hello , world !" },
	{ "Café déjà vu", 0, "cafe de ##ja vu" },
	{ "naïve RÉSUMÉ", 0, "naive resume" },
	{ "ÅNGSTRÖM Øre", 0, "ang ##strom ø ##re" },
	{ "我想在北京工作", 0, "我 [UNK] [UNK] 北 京 [UNK] [UNK]" },
	{ "東京タワー", 0, "東 京 タ ##ワ ##ー" },
	{ "한국어", 0, "ᄒ ##ᅡ ##ᆫ ##ᄀ ##ᅮ ##ᆨ ##ᄋ ##ᅥ" },
	{ "don't-stop...now", 0, "don ' t - stop . . . now" },
	{ "I love 🍕!", 0, "i love [UNK] !" },
	{ "😶\u200d🌫️ emoji", 0, "[UNK] em ##oj ##i" },
	{ "snow ☃ man", 0, "snow [UNK] man" },
	{ "", 0, "" },
	{ "   \t\n ", 0, "" },
	{ "a\0b\x07"
	  "c",
	  5, "abc" },
	{ "İstanbul", 0, "istanbul" },
	{ "ＡＢＣ full width", 0, "[UNK] full width" },
	{ "the unaffable antidisestablishmentarianism", 0,
	  "the una ##ffa ##ble anti ##dis ##est ##ab ##lish ##ment ##arian ##ism" },
	{ "½ + ¾ = 1¼", 0, "½ + ¾ = 1 ##¼" },
	{ "Ελληνικά κείμενο", 0, "ε ##λ ##λ ##η ##ν ##ι ##κ ##α κ ##ε ##ι ##μ ##ε ##ν ##ο" },
	{ "Привет, мир", 0, "п ##р ##и ##в ##е ##т , м ##и ##р" },
	{ "\u037e;", 0, "; ;" },
	{ "ﬁne ligature", 0, "ﬁ ##ne liga ##ture" },
	{ "a\u2028"
	  "b",
	  0, "a b" },
	{ "e\u0301t\u0301e\u0301", 0, "et ##e" },
	{ "\uf900\u8c48", 0, "[UNK] [UNK]" },
	/* Greek capital sigma lowercases to the final form at the end of a word (str.lower) */
	{ "ΟΔΟΣ", 0, "ο ##δ ##ος" },
	{ "ΣΟΦΟΣ'", 0, "σ ##ο ##φ ##ος '" },
	{ "ΑΣ.Β", 0, "α ##σ . β" },
	{ "Σ", 0, "σ" },
	{ "ΑΣ'Σ", 0, "α ##σ ' ς" },
	{ "ΑΣ我", 0, "α ##ς 我" },
	{ "ΑΣ\u0301", 0, "α ##ς" },
	{ "ΑΣ\0Β", 7, "α ##σ ##β" },
	/* invalid UTF-8: each bad byte is U+FFFD, which cleaning drops */
	{ "ab\xff"
	  "cd",
	  0, "abc ##d" },
	{ "caf\xc3", 0, "caf" },
	{ "\xe2\x82", 0, "" },
	{ "\xc0\xafx", 0, "x" },
	{ "\xed\xa0\x80z", 0, "z" },
	{ "\xf4\x90\x80\x80 ok", 0, "ok" },
};

static void
expect(const char *text, size_t len, const char *pieces)
{
	int32_t ids[300], want[300];
	unsigned nw = 0;
	char buf[1024], *save = NULL;
	int n;

	snprintf(buf, sizeof(buf), "%s", pieces);
	for (char *p = strtok_r(buf, " ", &save); p != NULL; p = strtok_r(NULL, " ", &save)) {
		int id = bx_wordpiece_id(wp, p, strlen(p));

		if (id < 0) {
			fail_msg("piece \"%s\" is not in the vocabulary", p);
		}
		want[nw++] = id;
	}
	n = bx_wordpiece_encode(wp, text, len, BX_WP_SPECIALS, ids, 300, NULL);
	assert_int_equal(n, nw + 2);
	assert_int_equal(ids[0], 101);
	assert_int_equal(ids[n - 1], 102);
	for (unsigned i = 0; i < nw; i++) {
		if (ids[i + 1] != want[i]) {
			fail_msg("\"%s\": piece %u is %d (%s), expected %d (%s)", pieces, i,
			         ids[i + 1], bx_wordpiece_token(wp, (unsigned)ids[i + 1]), want[i],
			         bx_wordpiece_token(wp, (unsigned)want[i]));
		}
	}
}

static void
test_table(void **state)
{
	for (size_t i = 0; i < BX_ARRAY_SIZE(table); i++) {
		const char *t = table[i].text;

		expect(t, table[i].len ? table[i].len : strlen(t), table[i].pieces);
	}
}

static void
test_special_ids(void **state)
{
	assert_int_equal(bx_wordpiece_size(wp), 30522);
	assert_int_equal(bx_wordpiece_id(wp, "[PAD]", 5), 0);
	assert_int_equal(bx_wordpiece_id(wp, "[UNK]", 5), 100);
	assert_int_equal(bx_wordpiece_id(wp, "[CLS]", 5), 101);
	assert_int_equal(bx_wordpiece_id(wp, "[SEP]", 5), 102);
	assert_int_equal(bx_wordpiece_id(wp, "[MASK]", 6), 103);
	assert_int_equal(bx_wordpiece_id(wp, "hello", 5), 7592);
	assert_int_equal(bx_wordpiece_id(wp, "no-such-token", 13), -ENOENT);
	assert_string_equal(bx_wordpiece_token(wp, 7592), "hello");
	assert_null(bx_wordpiece_token(wp, 30522));
}

static void
test_long_words(void **state)
{
	char w[202];
	int32_t ids[300];
	int n;

	memset(w, 'x', sizeof(w));
	/* 101 characters: [UNK]; 100: real pieces */
	n = bx_wordpiece_encode(wp, w, 101, 0, ids, 300, NULL);
	assert_int_equal(n, 1);
	assert_int_equal(ids[0], 100);
	n = bx_wordpiece_encode(wp, w, 100, 0, ids, 300, NULL);
	assert_true(n > 1);
	for (int i = 0; i < n; i++) {
		assert_int_not_equal(ids[i], 100);
	}
	/* a very long word of multi-byte characters is one [UNK] too */
	n = bx_wordpiece_encode(wp, "é", 2, 0, ids, 300, NULL);
	assert_int_equal(n, 1);
	{
		static char big[3 * 100000];

		for (size_t i = 0; i < sizeof(big); i += 3) {
			/* NOLINTNEXTLINE(bugprone-not-null-terminated-result): bytes of タ */
			memcpy(big + i, "\xe3\x82\xbf", 3);
		}
		n = bx_wordpiece_encode(wp, big, sizeof(big), 0, ids, 300, NULL);
		assert_int_equal(n, 1);
		assert_int_equal(ids[0], 100);
	}
}

static void
test_truncation(void **state)
{
	static char text[6 * 300 + 1];
	int32_t ids[256];
	bool trunc = false;
	int n;

	for (int i = 0; i < 300; i++) {
		memcpy(text + 6 * i, "hello ", 6); /* NOLINT(bugprone-not-null-terminated-result) */
	}
	n = bx_wordpiece_encode(wp, text, strlen(text), BX_WP_SPECIALS, ids, 256, &trunc);
	assert_int_equal(n, 256);
	assert_true(trunc);
	assert_int_equal(ids[0], 101);
	assert_int_equal(ids[1], 7592);
	assert_int_equal(ids[254], 7592);
	assert_int_equal(ids[255], 102);
	n = bx_wordpiece_encode(wp, text, 6 * 254, BX_WP_SPECIALS, ids, 256, &trunc);
	assert_int_equal(n, 256);
	assert_false(trunc);
	n = bx_wordpiece_encode(wp, text, strlen(text), BX_WP_SPECIALS, ids, 2, &trunc);
	assert_int_equal(n, 2);
	assert_true(trunc);
	assert_int_equal(bx_wordpiece_encode(wp, text, 5, BX_WP_SPECIALS, ids, 1, NULL), -EINVAL);
}

/* llama.cpp's test strings (separated by "\n__ggml_vocab_test__\n") and its ids. */
static void
test_llama_cpp_vectors(void **state)
{
	char p1[512], p2[512];
	size_t ilen, olen;
	char *inp = bx_test_read_file(
		shared_or_skip("models/bert-wordpiece-tests/ggml-vocab-bert-bge.gguf.inp", p1, 512),
		&ilen);
	char *out = bx_test_read_file(
		shared_or_skip("models/bert-wordpiece-tests/ggml-vocab-bert-bge.gguf.out", p2, 512),
		&olen);
	const char *sep = "\n__ggml_vocab_test__\n";
	char *s = inp, *o = out;
	unsigned nb = 0;

	assert_non_null(inp);
	assert_non_null(out);
	for (char *e; (e = strstr(s, sep)) != NULL; s = e + strlen(sep), nb++) {
		char *ol = strchr(o, '\n'), *tok, *save = NULL;
		int32_t ids[1024];
		int n = bx_wordpiece_encode(wp, s, (size_t)(e - s), 0, ids, 1024, NULL), k = 0;

		assert_non_null(ol);
		*ol = '\0';
		for (tok = strtok_r(o, " ", &save); tok != NULL; tok = strtok_r(NULL, " ", &save)) {
			if (k >= n || ids[k] != atoi(tok)) {
				fail_msg("test string %u: id %d is %d, expected %s", nb, k,
				         k < n ? ids[k] : -1, tok);
			}
			k++;
		}
		assert_int_equal(k, n);
		o = ol + 1;
	}
	assert_int_equal(nb, 46);
	free(inp);
	free(out);
}

static int
unhex(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Random texts over tricky characters, ids from gen_wordpiece_vectors.py (Python oracle). */
static void
test_python_vectors(void **state)
{
	size_t len;
	char *all = vectors_path ? bx_test_read_file(vectors_path, &len) : NULL, *save = NULL;
	unsigned nb = 0;

	if (all == NULL) {
		skip();
	}
	for (char *line = strtok_r(all, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save), nb++) {
		char *tab = strchr(line, '\t'), text[512], *p, *end;
		int32_t ids[512];
		size_t n = 0;
		int got, k = 0;

		assert_non_null(tab);
		for (p = line; p + 1 < tab && n < sizeof(text); p += 2) {
			text[n++] = (char)(unhex(p[0]) * 16 + unhex(p[1]));
		}
		got = bx_wordpiece_encode(wp, text, n, 0, ids, 512, NULL);
		for (p = tab + 1; *p != '\0'; p = end, k++) {
			long v = strtol(p, &end, 10);

			if (end == p) {
				break;
			}
			if (k >= got || ids[k] != v) {
				fail_msg("vector %u (%s): id %d is %d, expected %ld", nb, line, k,
				         k < got ? ids[k] : -1, v);
			}
		}
		assert_int_equal(k, got);
	}
	assert_int_equal(nb, 600);
	free(all);
}

static void
test_bad_vocab(void **state)
{
	static const char crlf[] = "[UNK]\r\n[CLS]\r\n[SEP]\r\nab\r\n##c\r\n";
	struct bx_wordpiece *w = NULL;
	struct bx_errbuf eb;

	assert_int_equal(bx_wordpiece_load_mem("[PAD]\n[CLS]\n[SEP]\n", 18, "v", &w, &eb),
	                 -EBADMSG);
	assert_non_null(strstr(eb.msg, "[UNK]"));
	assert_int_equal(bx_wordpiece_load_mem("", 0, "v", &w, &eb), -EBADMSG);
	assert_int_equal(bx_wordpiece_load_mem("[UNK]\0x\n", 8, "v", &w, &eb), -EBADMSG);
	assert_null(w);
	assert_int_equal(bx_wordpiece_load("/nonexistent/vocab.txt", &w, &eb), -ENOENT);
	assert_int_equal(bx_wordpiece_load_mem(crlf, strlen(crlf), "v", &w, &eb), 0);
	{
		int32_t ids[8];

		assert_int_equal(bx_wordpiece_encode(w, "abc ABX", 7, BX_WP_SPECIALS, ids, 8, NULL),
		                 5);
		assert_int_equal(ids[0], 1);
		assert_int_equal(ids[1], 3);
		assert_int_equal(ids[2], 4);
		assert_int_equal(ids[3], 0);
		assert_int_equal(ids[4], 2);
	}
	bx_wordpiece_destroy(w);
}

static int
load_wp(void *ctx, void **obj)
{
	struct bx_errbuf eb;

	return bx_wordpiece_load((const char *)ctx, (struct bx_wordpiece **)obj, &eb);
}

static void
destroy_wp(void *obj)
{
	bx_wordpiece_destroy(obj);
}

static void
test_alloc_failures(void **state)
{
	char p[512];

	bx_test_alloc_walk(load_wp, destroy_wp,
	                   (void *)shared_or_skip("models/all-MiniLM-L6-v2/vocab.txt", p, 512));
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_special_ids),       cmocka_unit_test(test_table),
		cmocka_unit_test(test_long_words),        cmocka_unit_test(test_truncation),
		cmocka_unit_test(test_llama_cpp_vectors), cmocka_unit_test(test_python_vectors),
		cmocka_unit_test(test_bad_vocab),         cmocka_unit_test(test_alloc_failures),
	};
	char p[512];
	struct bx_errbuf eb;
	int ret;

	vectors_path = argc > 1 ? argv[1] : NULL;
	if (bx_wordpiece_load(shared_or_skip("models/all-MiniLM-L6-v2/vocab.txt", p, sizeof(p)),
	                      &wp, &eb) < 0) {
		fprintf(stderr, "%s\n", eb.msg);
		return 1;
	}
	ret = cmocka_run_group_tests(tests, NULL, NULL);
	bx_wordpiece_destroy(wp);
	return ret;
}
