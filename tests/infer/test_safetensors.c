/*
 * safetensors reader: the real all-MiniLM-L6-v2 header (data absent), a
 * write/read round trip, and every kind of bad file, including every
 * truncation of a valid one (read through a guard page).
 */
#include <errno.h>

#include "test_util.h"

#define REAL_HEADER "models/all-MiniLM-L6-v2/model.safetensors.header-only.bin"

static char real_path[512];

/* Every tensor name and shape of the upstream file, built from the architecture. */
static unsigned
expected_tensors(char names[][96], uint64_t shapes[][2], unsigned *ndims)
{
	static const char *const lin[] = { "attention.self.query", "attention.self.key",
		                           "attention.self.value", "attention.output.dense" };
	unsigned n = 0;

#define E(nd, a, b, ...)                                           \
	do {                                                       \
		snprintf(names[n], 96, __VA_ARGS__);               \
		ndims[n] = nd, shapes[n][0] = a, shapes[n][1] = b; \
		n++;                                               \
	} while (0)
	E(2, 1, 512, "embeddings.position_ids");
	E(2, 30522, 384, "embeddings.word_embeddings.weight");
	E(2, 512, 384, "embeddings.position_embeddings.weight");
	E(2, 2, 384, "embeddings.token_type_embeddings.weight");
	E(1, 384, 0, "embeddings.LayerNorm.weight");
	E(1, 384, 0, "embeddings.LayerNorm.bias");
	for (unsigned l = 0; l < 6; l++) {
		for (unsigned i = 0; i < 4; i++) {
			E(2, 384, 384, "encoder.layer.%u.%s.weight", l, lin[i]);
			E(1, 384, 0, "encoder.layer.%u.%s.bias", l, lin[i]);
		}
		E(1, 384, 0, "encoder.layer.%u.attention.output.LayerNorm.weight", l);
		E(1, 384, 0, "encoder.layer.%u.attention.output.LayerNorm.bias", l);
		E(2, 1536, 384, "encoder.layer.%u.intermediate.dense.weight", l);
		E(1, 1536, 0, "encoder.layer.%u.intermediate.dense.bias", l);
		E(2, 384, 1536, "encoder.layer.%u.output.dense.weight", l);
		E(1, 384, 0, "encoder.layer.%u.output.dense.bias", l);
		E(1, 384, 0, "encoder.layer.%u.output.LayerNorm.weight", l);
		E(1, 384, 0, "encoder.layer.%u.output.LayerNorm.bias", l);
	}
	E(2, 384, 384, "pooler.dense.weight");
	E(1, 384, 0, "pooler.dense.bias");
#undef E
	return n;
}

static void
test_real_header(void **state)
{
	static char names[128][96];
	uint64_t shapes[128][2], total = 0;
	unsigned ndims[128], n = expected_tensors(names, shapes, ndims);
	const struct bx_st_tensor *t;
	struct bx_st_file *f;
	struct bx_errbuf eb;

	assert_int_equal(n, 104);
	assert_int_equal(bx_st_open(real_path, BX_ST_HEADER_ONLY, &f, &eb), 0);
	assert_int_equal(bx_st_count(f), 104);
	for (unsigned i = 0; i < n; i++) {
		t = bx_st_find(f, names[i]);
		assert_non_null(t);
		assert_int_equal(t->dtype, i == 0 ? BX_DT_I64 : BX_DT_F32);
		assert_int_equal(t->ndims, ndims[i]);
		assert_int_equal(t->shape[0], shapes[i][0]);
		if (ndims[i] == 2) {
			assert_int_equal(t->shape[1], shapes[i][1]);
		}
		assert_null(t->data);
		total += t->end - t->begin;
	}
	/* 8 + header + data = the upstream file size */
	assert_int_equal(8 + 11408 + total, BX_MINILM_FILE_SIZE);
	t = bx_st_find(f, "encoder.layer.0.attention.self.query.weight");
	assert_int_equal(t->begin, 48865792);
	assert_int_equal(t->end, 49455616);
	t = bx_st_find(f, "embeddings.word_embeddings.weight");
	assert_int_equal(t->begin, 796672);
	assert_int_equal(t->end, 47678464);
	t = bx_st_find(f, "embeddings.position_ids");
	assert_int_equal(t->begin, 0);
	assert_int_equal(t->end, 4096);
	assert_null(bx_st_find(f, "bert.embeddings.word_embeddings.weight"));
	bx_st_close(f);
}

static void
test_real_header_needs_data(void **state)
{
	struct bx_st_file *f = NULL;
	struct bx_errbuf eb;

	assert_int_equal(bx_st_open(real_path, 0, &f, &eb), -EBADMSG);
	assert_null(f);
	assert_non_null(strstr(eb.msg, "file shorter than its header says"));
	assert_non_null(strstr(eb.msg, "header-only.bin"));
}

static void
test_real_header_as_model(void **state)
{
	char dir[64], path[600], vocab[512];
	struct bx_embed_model *m = NULL;
	struct bx_errbuf eb;

	tmpdir(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/model.safetensors", dir);
	copy_file(real_path, path);
	snprintf(path, sizeof(path), "%s/vocab.txt", dir);
	copy_file(shared_or_skip("models/all-MiniLM-L6-v2/vocab.txt", vocab, sizeof(vocab)), path);
	assert_int_equal(bx_embed_model_load(dir, NULL, &m, &eb), -EBADMSG);
	assert_null(m);
	assert_non_null(strstr(eb.msg, "file shorter than its header says"));
	assert_non_null(strstr(eb.msg, "model.safetensors"));
	rm_rf(dir);
}

/* A small valid file in memory: a [2,3] F32, an empty tensor and a [4] I8. */
static size_t
small_file(uint8_t *buf, const char *hdr)
{
	size_t n = strlen(hdr);

	for (int i = 0; i < 8; i++) {
		buf[i] = (uint8_t)(n >> (8 * i));
	}
	memcpy(buf + 8, hdr, n); /* NOLINT(bugprone-not-null-terminated-result): bytes */
	for (size_t i = 0; i < 28; i++) {
		buf[8 + n + i] = (uint8_t)i;
	}
	return 8 + n + 28;
}

static const char good_hdr[] =
	"{\"__metadata__\":{\"format\":\"pt\"},\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],"
	"\"data_offsets\":[0,24]},\"e\":{\"dtype\":\"F16\",\"shape\":[0,7],\"data_offsets\":[24,24]},"
	"\"b\":{\"dtype\":\"I8\",\"shape\":[4],\"data_offsets\":[24,28]}}  ";

static void
test_small_ok_and_truncations(void **state)
{
	uint8_t buf[1024];
	size_t len = small_file(buf, good_hdr);
	const struct bx_st_tensor *t;
	struct bx_st_file *f;
	struct bx_errbuf eb;

	assert_int_equal(bx_st_open_mem(buf, len, "mem", 0, &f, &eb), 0);
	assert_int_equal(bx_st_count(f), 3);
	t = bx_st_find(f, "b");
	assert_int_equal(t->dtype, BX_DT_I8);
	assert_int_equal(((const uint8_t *)t->data)[0], 24);
	bx_st_close(f);
	for (size_t cut = 0; cut < len; cut++) {
		uint8_t *g = bx_guard_copy(buf, cut);

		assert_non_null(g);
		f = NULL;
		assert_true(bx_st_open_mem(g, cut, "cut", 0, &f, &eb) < 0);
		assert_null(f);
		assert_true(strncmp(eb.msg, "cut: ", 5) == 0);
		bx_guard_free(g, cut);
	}
}

static const struct {
	const char *hdr;
	const char *msg;
} bad[] = {
	{ "[1,2]", "does not start with '{'" },
	{ "{\"a\":", "header JSON" },
	{ "{\"a\":{\"dtype\":\"F33\",\"shape\":[7],\"data_offsets\":[0,28]}}", "unknown dtype" },
	{ "{\"a\":{\"dtype\":\"F32\",\"shape\":[6],\"data_offsets\":[0,28]}}", "need 24" },
	{ "{\"a\":{\"dtype\":\"F32\",\"shape\":[-7],\"data_offsets\":[0,28]}}", "bad shape" },
	{ "{\"a\":{\"dtype\":\"F32\",\"shape\":[7],\"data_offsets\":[28,0]}}", "bad data_offsets" },
	{ "{\"a\":{\"dtype\":\"F32\",\"shape\":[7]}}", "needs exactly" },
	{ "{\"a\":{\"dtype\":\"I8\",\"shape\":[20],\"data_offsets\":[0,20]},"
	  "\"b\":{\"dtype\":\"I8\",\"shape\":[8],\"data_offsets\":[16,24]}}",
	  "overlaps" },
	{ "{\"a\":{\"dtype\":\"I8\",\"shape\":[20],\"data_offsets\":[0,20]},"
	  "\"b\":{\"dtype\":\"I8\",\"shape\":[4],\"data_offsets\":[24,28]}}",
	  "hole" },
	{ "{\"a\":{\"dtype\":\"I8\",\"shape\":[20],\"data_offsets\":[0,20]}}",
	  "after the last tensor" },
	{ "{\"a\":{\"dtype\":\"I8\",\"shape\":[40],\"data_offsets\":[0,40]}}",
	  "file shorter than its header says" },
	{ "{\"a\":{\"dtype\":\"I8\",\"shape\":[28],\"data_offsets\":[0,28]},"
	  "\"a\":{\"dtype\":\"I8\",\"shape\":[28],\"data_offsets\":[0,28]}}",
	  "header JSON" },
	{ "{\"__metadata__\":{\"x\":1},\"a\":{\"dtype\":\"I8\",\"shape\":[28],\"data_offsets\":[0,28]}}",
	  "not a string" },
	{ "{\"a\":{\"dtype\":\"I8\",\"shape\":[1,1,1,1,1,1,1,1,28],\"data_offsets\":[0,28]}}",
	  "shape is not" },
	{ "{\"a\":{\"dtype\":\"F64\",\"shape\":[1152921504606846976,16],\"data_offsets\":[0,28]}}",
	  "bad shape" },
};

static void
test_bad_headers(void **state)
{
	for (size_t i = 0; i < BX_ARRAY_SIZE(bad); i++) {
		uint8_t buf[1024];
		size_t len = small_file(buf, bad[i].hdr);
		struct bx_st_file *f = NULL;
		struct bx_errbuf eb;

		assert_true(bx_st_open_mem(buf, len, "bad", 0, &f, &eb) < 0);
		assert_null(f);
		if (strstr(eb.msg, bad[i].msg) == NULL) {
			fail_msg("case %zu: \"%s\" lacks \"%s\"", i, eb.msg, bad[i].msg);
		}
	}
}

static void
test_header_length_past_end(void **state)
{
	uint8_t buf[64] = { 0xff, 0xff, 0, 0, 0, 0, 0, 0, '{', '}' };
	struct bx_st_file *f = NULL;
	struct bx_errbuf eb;

	assert_int_equal(bx_st_open_mem(buf, 10, "x", 0, &f, &eb), -EBADMSG);
	assert_non_null(strstr(eb.msg, "past the end of the file"));
	memset(buf, 0xff, 8);
	assert_int_equal(bx_st_open_mem(buf, 64, "x", 0, &f, &eb), -EBADMSG);
	assert_non_null(strstr(eb.msg, "limit"));
	assert_int_equal(bx_st_open("/nonexistent/x.safetensors", 0, &f, &eb), -ENOENT);
	assert_non_null(strstr(eb.msg, "/nonexistent/x.safetensors"));
}

static void
test_write_roundtrip(void **state)
{
	float a[6] = { 1, 2, 3, 4, 5, 6 };
	int64_t b[3] = { 7, 8, 9 };
	struct bx_st_out t[] = {
		{ .name = "x.weight",
		  .dtype = BX_DT_F32,
		  .ndims = 2,
		  .shape = { 2, 3 },
		  .data = a },
		{ .name = "ids", .dtype = BX_DT_I64, .ndims = 1, .shape = { 3 }, .data = b },
	};
	char dir[64], path[128];
	struct bx_st_file *f;
	struct bx_errbuf eb;
	const struct bx_st_tensor *x;

	tmpdir(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/t.safetensors", dir);
	assert_int_equal(bx_st_write(path, t, 2, &eb), 0);
	assert_int_equal(bx_st_open(path, 0, &f, &eb), 0);
	x = bx_st_find(f, "x.weight");
	assert_non_null(x);
	assert_int_equal((uintptr_t)x->data % 8, 0);
	assert_memory_equal(x->data, a, sizeof(a));
	assert_memory_equal(bx_st_find(f, "ids")->data, b, sizeof(b));
	bx_st_close(f);
	rm_rf(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_real_header),
		cmocka_unit_test(test_real_header_needs_data),
		cmocka_unit_test(test_real_header_as_model),
		cmocka_unit_test(test_small_ok_and_truncations),
		cmocka_unit_test(test_bad_headers),
		cmocka_unit_test(test_header_length_past_end),
		cmocka_unit_test(test_write_roundtrip),
	};

	shared_or_skip(REAL_HEADER, real_path, sizeof(real_path));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
