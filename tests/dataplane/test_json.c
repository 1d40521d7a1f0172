/* JSON reader/writer and Python rendering. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "bx_test.h"
#include "json.h"

static struct bx_jtok toks[256];

static int
parse(struct bx_json *j, const char *s)
{
	size_t n = strlen(s);
	char *g = bx_guard_copy(s, n);
	int r;

	assert_non_null(g);
	r = bx_json_parse(j, g, n, toks, 256, 16);
	/* keep the copy alive for the caller: leak is fine in a test, but free on
   * failure */
	if (r < 0) {
		bx_guard_free(g, n);
	}
	return r;
}

static void
check_repr(double v, const char *want)
{
	char buf[32];

	bx_py_float_repr(buf, v);
	if (strcmp(buf, want) != 0) {
		fprintf(stderr, "repr(%.17g): got %s want %s\n", v, buf, want);
		fail();
	}
}

static void
test_float_repr(void **state)
{
	(void)state;
	check_repr(12.0, "12.0");
	check_repr(0.1, "0.1");
	check_repr(-2.5, "-2.5");
	check_repr(1e16, "1e+16");
	check_repr(1.5e16, "1.5e+16");
	check_repr(9999999999999998.0, "9999999999999998.0");
	check_repr(123456789012345678.0, "1.2345678901234568e+17");
	check_repr(1e-5, "1e-05");
	check_repr(0.0001, "0.0001");
	check_repr(0.00012345, "0.00012345");
	check_repr(1.2345e-7, "1.2345e-07");
	check_repr(1e22, "1e+22");
	check_repr(1e300, "1e+300");
	check_repr(5e-324, "5e-324");
	check_repr(1.7976931348623157e308, "1.7976931348623157e+308");
	check_repr(0.0, "0.0");
	check_repr(-0.0, "-0.0");
	check_repr(INFINITY, "inf");
	check_repr(-INFINITY, "-inf");
	check_repr(NAN, "nan");
	check_repr(100.0, "100.0");
	check_repr(0.3, "0.3");
	check_repr(2.0 / 3.0, "0.6666666666666666");
	check_repr(1234567890123456.7, "1234567890123456.8");
}

static void
test_parse_ok(void **state)
{
	struct bx_json j;
	int v;
	int64_t i;
	double d;
	char out[64];
	long n;

	(void)state;
	assert_int_equal(parse(&j,
	                       "{\"name\": \"Synapse\", \"timeout\": 12.0, \"n\": -5, "
	                       "\"big\": 1742428800123456789, \"x\": [NaN, Infinity, -Infinity], "
	                       "\"e\": {}, \"a\": [], \"s\": \"na\\u00efve \\ud83d\\ude00 "
	                       "\\\"q\\\"\", "
	                       "\"t\": true, \"f\": false, \"z\": null}"),
	                 0);
	assert_int_equal(j.toks[0].type, BX_J_OBJECT);
	assert_int_equal(j.toks[0].nb, 11);
	v = bx_json_get(&j, 0, "name", 4);
	assert_true(bx_json_str_eq(&j, v, "Synapse", 7));
	v = bx_json_get(&j, 0, "big", 3);
	assert_int_equal(bx_json_int64(&j, v, &i), 0);
	assert_true(i == 1742428800123456789LL);
	v = bx_json_get(&j, 0, "n", 1);
	assert_int_equal(bx_json_int64(&j, v, &i), 0);
	assert_true(i == -5);
	v = bx_json_get(&j, 0, "timeout", 7);
	assert_int_equal(j.toks[v].type, BX_J_FLOAT);
	assert_int_equal(bx_json_double(&j, v, &d), 0);
	assert_true(d == 12.0);
	v = bx_json_get(&j, 0, "x", 1);
	assert_int_equal(j.toks[v].nb, 3);
	assert_int_equal(bx_json_double(&j, v + 1, &d), 0);
	assert_true(isnan(d));
	assert_int_equal(bx_json_double(&j, v + 3, &d), 0);
	assert_true(d < 0 && isinf(d));
	v = bx_json_get(&j, 0, "s", 1);
	n = bx_json_str_copy(&j, v, out, sizeof(out));
	assert_int_equal(n, strlen("naïve 😀 \"q\""));
	assert_memory_equal(out, "naïve 😀 \"q\"", (size_t)n);
	assert_true(bx_json_str_eq(&j, v, "naïve 😀 \"q\"", strlen("naïve 😀 \"q\"")));
	assert_int_equal(bx_json_get(&j, 0, "missing", 7), -1);
	assert_int_equal(j.toks[bx_json_get(&j, 0, "z", 1)].type, BX_J_NULL);
	assert_int_equal(parse(&j, " [1 , 2 ]\n"), 0);
	assert_int_equal(parse(&j, "\"\\ud800\""), 0); /* lone surrogate, as json.loads */
}

static void
test_parse_bad(void **state)
{
	static const char *bad[] = {
		"",
		"{",
		"}",
		"[1,]",
		"{\"a\":}",
		"{\"a\" 1}",
		"{a:1}",
		"01",
		"1.",
		".5",
		"1e",
		"-",
		"+1",
		"nul",
		"NaNx",
		"\"abc",
		"\"a\x01\"",
		"\"\\x\"",
		"\"\\u12g4\"",
		"[1] 2",
		"\"\xff\"",
		"\"\xc3\"",
		"\"\xed\xa0\x80\"",
		"{\"a\":1,}",
		"tru",
		"[-Infinit]",
		"[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]",
	};
	struct bx_json j;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r = parse(&j, bad[i]);

		if (r == 0) {
			fprintf(stderr, "accepted: %s\n", bad[i]);
			fail();
		}
	}
	assert_int_equal(parse(&j, "[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]"), -ELOOP);
	{
		char big[2000];
		size_t n = 0;

		big[n++] = '[';
		for (int i = 0; i < 300; i++) {
			big[n++] = '1';
			big[n++] = ',';
		}
		big[n++] = '1';
		big[n++] = ']';
		big[n] = 0;
		assert_int_equal(parse(&j, big), -E2BIG);
	}
}

static void
test_writer(void **state)
{
	struct bx_json j;
	char mem[512];
	struct bx_obuf b;
	struct bx_jw w;
	static const char in[] = "{\"a\": [1, 2.5, \"x\\u00e9\\n\"], \"b\": {\"c\": "
				 "null}, \"\\u00fc\": true}";

	(void)state;
	assert_int_equal(parse(&j, in), 0);
	bx_obuf_init(&b, mem, sizeof(mem));
	bx_jw_init(&w, &b, BX_JW_COMPACT);
	bx_jw_value(&w, &j, 0);
	assert_false(b.overflow);
	mem[b.len] = 0;
	assert_string_equal(mem, "{\"a\":[1,2.5,\"xé\\n\"],\"b\":{\"c\":null},\"ü\":true}");

	bx_obuf_init(&b, mem, sizeof(mem));
	bx_jw_init(&w, &b, BX_JW_PY_DEFAULT);
	bx_jw_value(&w, &j, 0);
	mem[b.len] = 0;
	assert_string_equal(mem, in);

	bx_obuf_init(&b, mem, sizeof(mem));
	bx_jw_init(&w, &b, BX_JW_PY_DEFAULT);
	bx_jw_obj_begin(&w);
	bx_jw_key(&w, "k", 1);
	bx_jw_str(&w, "😀\x7f", strlen("😀\x7f"));
	bx_jw_key(&w, "f", 1);
	bx_jw_double(&w, 1e16);
	bx_jw_key(&w, "n", 1);
	bx_jw_double(&w, NAN);
	bx_jw_key(&w, "l", 1);
	bx_jw_arr_begin(&w);
	bx_jw_int(&w, -3);
	bx_jw_bool(&w, false);
	bx_jw_null(&w);
	bx_jw_arr_end(&w);
	bx_jw_obj_end(&w);
	mem[b.len] = 0;
	assert_string_equal(mem, "{\"k\": \"\\ud83d\\ude00\\u007f\", \"f\": 1e+16, \"n\": NaN, "
	                         "\"l\": [-3, false, null]}");
}

static const char *
pystr(const char *json, bool as_float, char *mem, size_t cap)
{
	struct bx_json j;
	struct bx_obuf b;

	assert_int_equal(parse(&j, json), 0);
	bx_obuf_init(&b, mem, cap - 1);
	bx_py_str(&b, &j, 0, as_float);
	assert_false(b.overflow);
	mem[b.len] = 0;
	return mem;
}

static void
test_py_str(void **state)
{
	char m[512];

	(void)state;
	assert_string_equal(pystr("[\"hello\", \"it's\", \"say \\\"hi\\\"\", \"na\\u00efve\"]",
	                          false, m, sizeof(m)),
	                    "['hello', \"it's\", 'say \"hi\"', 'naïve']");
	assert_string_equal(pystr("\"plain \\u00e9\"", false, m, sizeof(m)), "plain é");
	assert_string_equal(pystr("[1, 2]", true, m, sizeof(m)), "[1.0, 2.0]");
	assert_string_equal(pystr("[1, 2]", false, m, sizeof(m)), "[1, 2]");
	assert_string_equal(pystr("12", true, m, sizeof(m)), "12.0");
	assert_string_equal(pystr("1e5", false, m, sizeof(m)), "100000.0");
	assert_string_equal(pystr("[true, false, null, NaN, -Infinity]", false, m, sizeof(m)),
	                    "[True, False, None, nan, -inf]");
	assert_string_equal(
		pystr("{\"role\": \"user\", \"content\": \"a\\tb\\\\\"}", false, m, sizeof(m)),
		"{'role': 'user', 'content': 'a\\tb\\\\'}");
	assert_string_equal(pystr("[\"both ' and \\\"\"]", false, m, sizeof(m)),
	                    "['both \\' and \"']");
	assert_string_equal(pystr("[\"\\u0001\\u007f\\u00a0\\u00ad\\u2028\\ud83d\\ude00\"]", false,
	                          m, sizeof(m)),
	                    "['\\x01\\x7f\\xa0\\xad\\u2028😀']");
	assert_string_equal(pystr("[[]]", false, m, sizeof(m)), "[[]]");
	assert_string_equal(pystr("{}", false, m, sizeof(m)), "{}");
	assert_string_equal(pystr("-0", false, m, sizeof(m)), "0");
	assert_string_equal(pystr("null", false, m, sizeof(m)), "None");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_float_repr), cmocka_unit_test(test_parse_ok),
		cmocka_unit_test(test_parse_bad),  cmocka_unit_test(test_writer),
		cmocka_unit_test(test_py_str),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
