/*
 * Covers: byte-level BPE (tokenizer.ggml.model = gpt2): GPT-2's byte map,
 * the GPT-2 and Llama 3 pre-tokenizer regexes (expected splits derived by
 * hand from the patterns), merges applied lowest rank first, byte round
 * trips through the streaming detokenizer.
 */
#include <errno.h>

#include "test_llm_util.h"

static struct bx_llm_model *m;

static void
add(struct llm_vocab *v, uint32_t i, const char *p, size_t n, size_t *used)
{
	assert_int_equal(llm_vocab_set(v, i, p, n, 0, LLM_TOK_NORMAL, used), 0);
}

static int32_t
id_of(const char *s)
{
	return llm_vocab_find(&m->vocab, s, strlen(s));
}

/* 256 single bytes (id = byte), then he ll hell hello " w" or " wo". */
static int
setup(void **state)
{
	static const char *const merged[] = { "he", "ll", "hell", "hello", " w", "or", " wo" };
	struct llm_vocab *v;
	size_t used = 0;

	if (llm_model_alloc(&m)) {
		return -1;
	}
	v = &m->vocab;
	if (llm_vocab_alloc(v, 256 + 7, 4096)) {
		return -1;
	}
	v->bpe = true;
	for (unsigned b = 0; b < 256; b++) {
		char c = (char)b;

		add(v, b, &c, 1, &used);
	}
	for (unsigned i = 0; i < 7; i++) {
		add(v, 256 + i, merged[i], strlen(merged[i]), &used);
	}
	v->bos = v->eos = -1;
	v->unk = 0;
	m->cfg.vocab_size = v->n;
	if (llm_vocab_index(v, "test", NULL) || llm_bpe_merges_alloc(v, 7)) {
		return -1;
	}
	llm_bpe_merge_add(v, 'h', 'e', id_of("he"), 0);
	llm_bpe_merge_add(v, 'l', 'l', id_of("ll"), 1);
	llm_bpe_merge_add(v, id_of("he"), id_of("ll"), id_of("hell"), 2);
	llm_bpe_merge_add(v, id_of("hell"), 'o', id_of("hello"), 3);
	llm_bpe_merge_add(v, ' ', 'w', id_of(" w"), 4);
	llm_bpe_merge_add(v, 'o', 'r', id_of("or"), 5);
	llm_bpe_merge_add(v, id_of(" w"), 'o', id_of(" wo"), 6);
	return 0;
}

static int
teardown(void **state)
{
	bx_llm_model_destroy(m);
	return 0;
}

/* Pre-tokens of text, joined with '|'. */
static void
expect_split(bool llama3, const char *text, const char *want)
{
	char got[512];
	size_t k = 0, len = strlen(text);

	m->vocab.pre_llama3 = llama3;
	for (size_t i = 0; i < len;) {
		size_t n = llm_bpe_pretok(&m->vocab, text, len, i);

		if (k) {
			got[k++] = '|';
		}
		memcpy(got + k, text + i, n);
		k += n;
		i += n;
	}
	got[k] = 0;
	if (strcmp(got, want) != 0) {
		print_error("%s: \"%s\" split as \"%s\", want \"%s\"\n", llama3 ? "llama3" : "gpt2",
		            text, got, want);
	}
	assert_string_equal(got, want);
	m->vocab.pre_llama3 = false;
}

static void
test_pretok_gpt2(void **state)
{
	expect_split(false, "Hello world's 123 !!\n\n  x", "Hello| world|'s| 123| !!|\n\n | x");
	expect_split(false, "a  b", "a| | b");
	expect_split(false, "trailing   ", "trailing|   ");
	expect_split(false, "x\t\ty", "x|\t|\t|y");
	expect_split(false, "\xc3\xa9t\xc3\xa9 2024", "\xc3\xa9t\xc3\xa9| 2024");
	expect_split(false, "I'M", "I|'|M"); /* contractions are case-sensitive in GPT-2 */
	expect_split(false, "\xe6\x97\xa5\xe6\x9c\xac!?", "\xe6\x97\xa5\xe6\x9c\xac|!?");
}

static void
test_pretok_llama3(void **state)
{
	expect_split(true, "\xc3\xa9t\xc3\xa9 2024", "\xc3\xa9t\xc3\xa9| |202|4");
	expect_split(true, "HELLO'S world", "HELLO|'S| world");
	expect_split(true, "!!\n\nx", "!!\n\n|x");
	expect_split(true, "a\n\n  b", "a|\n\n| | b");
	expect_split(true, "(hi)", "(hi|)");
}

static void
test_merges_by_rank(void **state)
{
	int32_t ids[32];
	size_t n = 0;
	char out[64], buf[BX_LLM_DETOK_OUT];
	struct bx_llm_detok d;
	size_t k = 0;

	assert_int_equal(bx_llm_tokenize(m, "hello world", 11, false, ids, 32, &n), 0);
	/* "or" (rank 5) merges before " wo" (rank 6) could: " w" "or" "l" "d" */
	assert_int_equal(n, 5);
	assert_int_equal(ids[0], id_of("hello"));
	assert_int_equal(ids[1], id_of(" w"));
	assert_int_equal(ids[2], id_of("or"));
	assert_int_equal(ids[3], 'l');
	assert_int_equal(ids[4], 'd');
	bx_llm_detok_init(&d);
	for (size_t i = 0; i < n; i++) {
		size_t b = bx_llm_detok_push(m, &d, ids[i], buf);

		memcpy(out + k, buf, b);
		k += b;
	}
	out[k] = 0;
	assert_string_equal(out, "hello world"); /* no SentencePiece space stripping */
	/* any bytes round-trip, invalid UTF-8 included (as U+FFFD on output) */
	assert_int_equal(bx_llm_tokenize(m, "\xf0\x9f\xa6\x99 ok", 7, false, ids, 32, &n), 0);
	assert_int_equal(n, 7);
	assert_int_equal(ids[0], 0xf0);
}

static void
test_byte_map(void **state)
{
	char out[16];

	assert_int_equal(llm_bpe_unmap("\xc4\xa0world", 7, out), 6); /* U+0120 is the space */
	assert_memory_equal(out, " world", 6);
	assert_int_equal(llm_bpe_unmap("\xc4\x8a", 2, out), 1); /* U+010A is \n */
	assert_int_equal(out[0], '\n');
	/* "\xe2\x80\x99" (a right quote) is spelled U+00E2 U+0122 U+013B */
	assert_int_equal(llm_bpe_unmap("\xc3\xa2\xc4\xa2\xc4\xbb", 6, out), 3);
	assert_memory_equal(out, "\xe2\x80\x99", 3);
	assert_int_equal(llm_bpe_unmap("<|endoftext|>", 13, out), 13);
}

/* A GGUF with this vocabulary (gpt2 model, mapped tokens, merges) reads back the same. */
static void
test_gguf_roundtrip(void **state)
{
	struct bx_llm_config c = { .dim = 64,
		                   .hidden_dim = 128,
		                   .n_layers = 1,
		                   .n_heads = 2,
		                   .n_kv_heads = 1,
		                   .vocab_size = 263,
		                   .seq_len = 16 };
	char path[64];
	struct bx_llm_model *s, *g = NULL;

	struct bx_llm_vocab_swap {
		struct llm_vocab v;
	} keep;
	struct bx_errbuf eb;
	int32_t a[32], b[32];
	size_t na = 0, nb = 0;
	const char *text = "hello world, hello\n\tworlds";

	assert_int_equal(bx_llm_synth(&c, BX_LLM_Q8_0, 1, &s, &eb), 0);
	keep.v = s->vocab; /* lend our vocabulary to the synthetic model */
	s->vocab = m->vocab;
	s->vocab.pre_llama3 = true;
	snprintf(path, sizeof(path), "/tmp/bx-llm-bpe-%d.gguf", (int)getpid());
	assert_int_equal(bx_llm_write_gguf(s, BX_LLM_Q8_0, path, &eb), 0);
	s->vocab = keep.v;
	bx_llm_model_destroy(s);
	if (bx_llm_load_gguf(path, &g, &eb)) {
		print_error("%s\n", eb.msg);
	}
	unlink(path);
	assert_non_null(g);
	assert_true(g->vocab.bpe);
	assert_true(g->vocab.pre_llama3);
	m->vocab.pre_llama3 = true;
	assert_int_equal(bx_llm_tokenize(m, text, strlen(text), false, a, 32, &na), 0);
	assert_int_equal(bx_llm_tokenize(g, text, strlen(text), false, b, 32, &nb), 0);
	m->vocab.pre_llama3 = false;
	assert_int_equal(na, nb);
	assert_memory_equal(a, b, na * sizeof(*a));
	assert_int_equal(b[0], id_of("hello"));
	bx_llm_model_destroy(g);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pretok_gpt2),    cmocka_unit_test(test_pretok_llama3),
		cmocka_unit_test(test_merges_by_rank), cmocka_unit_test(test_byte_map),
		cmocka_unit_test(test_gguf_roundtrip),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
