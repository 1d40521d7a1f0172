/* Covers: platform/conf.c — defaults, file syntax, overrides, runtime changes, bad input. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <bx/platform.h>

#include "bx_test.h"

struct conf {
	int64_t port;
	int64_t queue_depth;
	double stake_min;
	bool verbose;
	char model_dir[32];
	int dataplane;
};

static const char *const dataplanes[] = { "uring", "dpdk", NULL };

/* NOLINTBEGIN(bugprone-macro-parentheses): f is a member name, n a literal */
#define OPT(n, t, f, d, lo, hi, fl)                                                    \
	{                                                                              \
		.name = n, .type = t, .offset = offsetof(struct conf, f),              \
		.size = sizeof(((struct conf *)0)->f), .def = d, .min = lo, .max = hi, \
		.flags = fl, .help = n                                                 \
	}
/* NOLINTEND(bugprone-macro-parentheses) */

static const struct bx_conf_opt opts[] = {
	OPT("port", BX_CONF_INT, port, "8091", 1, 65535, 0),
	OPT("sched.queue_depth", BX_CONF_INT, queue_depth, "1k", 1, 1 << 20, BX_CONF_RUNTIME),
	OPT("admit.stake_min", BX_CONF_DOUBLE, stake_min, "0", 0, 1e12, BX_CONF_RUNTIME),
	OPT("verbose", BX_CONF_BOOL, verbose, "false", 1, 0, 0),
	OPT("model_dir", BX_CONF_STR, model_dir, "models", 1, 0, 0),
	{ .name = "dataplane",
	  .type = BX_CONF_ENUM,
	  .offset = offsetof(struct conf, dataplane),
	  .def = "uring",
	  .choices = dataplanes,
	  .help = "port" },
};

/* Cross-field rule for the check hook: verbose needs a queue of at least 2. */
static int
check(const void *p, struct bx_errbuf *eb)
{
	const struct conf *c = p;

	if (c->verbose && c->queue_depth < 2) {
		return bx_err(eb, EINVAL, "verbose needs sched.queue_depth >= 2");
	}
	return 0;
}

static const struct bx_conf_schema schema = {
	.opts = opts,
	.nb_opts = BX_ARRAY_SIZE(opts),
	.conf_size = sizeof(struct conf),
	.check = check,
};

static struct conf
defaults(void)
{
	struct conf c;

	assert_int_equal(bx_conf_defaults(&schema, &c, NULL), 0);
	return c;
}

static void
test_conf_defaults(void **state)
{
	struct conf c = defaults();

	assert_int_equal(c.port, 8091);
	assert_int_equal(c.queue_depth, 1024);
	assert_false(c.verbose);
	assert_string_equal(c.model_dir, "models");
	assert_int_equal(c.dataplane, 0);
}

static void
test_conf_parse_sections_quotes_comments(void **state)
{
	static const char text[] = "# bx config\n"
				   "port = 9000   # trailing comment\n"
				   "verbose=yes\n"
				   "model_dir = \"a \\\"b\\\" #c\"\n"
				   "dataplane = dpdk\r\n"
				   "\n"
				   "[sched]\n"
				   "queue_depth = 0x10\n"
				   "[ admit ]\n"
				   "stake_min = 1.5e3\n";
	struct conf c = defaults();
	struct bx_errbuf eb;

	assert_int_equal(bx_conf_parse(&schema, &c, "t.conf", text, sizeof(text) - 1, &eb), 0);
	assert_int_equal(c.port, 9000);
	assert_true(c.verbose);
	assert_string_equal(c.model_dir, "a \"b\" #c");
	assert_int_equal(c.dataplane, 1);
	assert_int_equal(c.queue_depth, 16);
	assert_true(c.stake_min == 1500.0);
	/* A quoted empty string is a value; a bare empty one is not. */
	assert_int_equal(bx_conf_parse(&schema, &c, "t.conf", "model_dir = \"\"\n", 15, &eb), 0);
	assert_string_equal(c.model_dir, "");
}

/* Each bad input must fail, name file, line and key, and leave conf unchanged. */
static void
expect_bad(const char *text, size_t len, const char *want)
{
	struct conf c = defaults(), before = c;
	struct bx_errbuf eb = { "" };

	assert_int_not_equal(bx_conf_parse(&schema, &c, "bad.conf", text, len, &eb), 0);
	if (strstr(eb.msg, want) == NULL) {
		fail_msg("message '%s' lacks '%s'", eb.msg, want);
	}
	assert_memory_equal(&c, &before, sizeof(c));
}

#define BAD(lit, want) expect_bad(lit, sizeof(lit) - 1, want)

static void
test_conf_bad_inputs(void **state)
{
	static const char binary[] = "port = 1\n\x01\x02\xff\xfe garbage";
	static const char nul[] = "port = 1\0\nverbose = 1\n";

	BAD("port = 1\nbogus = 2\n", "bad.conf:2: unknown key 'bogus'");
	BAD("port = 70000\n", "bad.conf:1: key 'port': 70000 is out of range");
	BAD("port = 0\n", "out of range");
	BAD("port =\n", "bad.conf:1: key 'port' has no value");
	BAD("port = 12ab\n", "'12ab' is not an integer");
	BAD("port = 99999999999999999999\n", "does not fit in 64 bits");
	BAD("verbose = maybe\n", "not a boolean");
	BAD("dataplane = xdp\n", "'xdp' is not one of: uring, dpdk");
	BAD("model_dir = \"0123456789012345678901234567890123\"\n", "longer than 31");
	BAD("model_dir = \"unterminated\n", "bad.conf:1: expected 'key = value'");
	BAD("admit.stake_min = nan\n", "not a finite number");
	BAD("port = 1\nport = 2\n", "bad.conf:2: key 'port' set twice");
	BAD("[sched\nqueue_depth = 1\n", "malformed [section]");
	BAD("just words\n", "bad.conf:1: expected 'key = value'");
	BAD(" = 5\n", "missing key");
	expect_bad(binary, sizeof(binary) - 1, "bad.conf:2: control character");
	expect_bad(nul, sizeof(nul) - 1, "bad.conf:1: NUL byte");
	/* The cross-field check runs last and names the file. */
	BAD("verbose = true\n[sched]\nqueue_depth = 1\n", "bad.conf: verbose needs");
}

static void
test_conf_long_line(void **state)
{
	size_t n = 5000;
	char *text = malloc(n);

	memset(text, 'a', n);
	memcpy(text, "model_dir = ", 12); /* NOLINT: not a string, 5000 bytes of line */
	expect_bad(text, n, "longer than 4096");
	free(text);
}

static void
test_conf_load_file(void **state)
{
	char path[] = "/tmp/bx_conf_XXXXXX";
	int fd = mkstemp(path);
	struct conf c = defaults();
	struct bx_errbuf eb;

	assert_true(fd >= 0);
	assert_int_equal(write(fd, "port = 1234\n", 12), 12);
	close(fd);
	assert_int_equal(bx_conf_load_file(&schema, &c, path, &eb), 0);
	assert_int_equal(c.port, 1234);
	unlink(path);
	assert_int_equal(bx_conf_load_file(&schema, &c, path, &eb), -ENOENT);
	assert_non_null(strstr(eb.msg, path));
	assert_int_equal(bx_conf_load_file(&schema, &c, "/tmp", &eb), -EINVAL);
}

static void
test_conf_overrides_all_or_nothing(void **state)
{
	const char *good[] = { "port=1", "sched.queue_depth=512k", "model_dir=x y" };
	const char *bad[] = { "port=2", "nope=1" };
	const char *noeq[] = { "port" };
	struct conf c = defaults();
	struct bx_errbuf eb;

	assert_int_equal(bx_conf_apply_overrides(&schema, &c, good, 3, &eb), 0);
	assert_int_equal(c.port, 1);
	assert_int_equal(c.queue_depth, 512 << 10);
	assert_string_equal(c.model_dir, "x y");
	assert_int_equal(bx_conf_apply_overrides(&schema, &c, bad, 2, &eb), -EINVAL);
	assert_string_equal(eb.msg, "unknown key 'nope'");
	assert_int_equal(c.port, 1);
	assert_int_equal(bx_conf_apply_overrides(&schema, &c, noeq, 1, &eb), -EINVAL);
}

static void
test_conf_runtime(void **state)
{
	struct conf c = defaults();
	struct bx_errbuf eb;

	assert_int_equal(bx_conf_set_runtime(&schema, &c, "sched.queue_depth", "64", &eb), 0);
	assert_int_equal(c.queue_depth, 64);
	assert_int_equal(bx_conf_set_runtime(&schema, &c, "port", "80", &eb), -EPERM);
	assert_int_equal(c.port, 8091);
	assert_int_equal(bx_conf_set_runtime(&schema, &c, "sched.queue_depth", "-1", &eb), -EINVAL);
	assert_int_equal(c.queue_depth, 64);
}

static void
test_conf_format_round_trip(void **state)
{
	struct conf c = defaults(), d = defaults();
	char text[1024], val[128];
	size_t used = 0;

	c.port = 4242;
	c.stake_min = 0.1;
	c.verbose = true;
	c.dataplane = 1;
	for (size_t i = 0; i < BX_ARRAY_SIZE(opts); i++) {
		bx_conf_format(&opts[i], &c, val, sizeof(val));
		used += snprintf(text + used, sizeof(text) - used, "%s = %s\n", opts[i].name, val);
	}
	assert_int_equal(bx_conf_parse(&schema, &d, "dump", text, used, NULL), 0);
	assert_memory_equal(&c, &d, sizeof(c));
}

static int
create_parse(void *ctx, void **obj)
{
	static struct conf c;
	int ret;

	c = defaults();
	ret = bx_conf_parse(&schema, &c, "walk", "port = 5\n", 9, NULL);
	*obj = &c;
	return ret;
}

static void
nothing(void *obj)
{
}

static void
test_conf_alloc_failures(void **state)
{
	assert_true(bx_test_alloc_walk(create_parse, nothing, NULL) >= 1);
}

static void
test_conf_bad_default_is_reported(void **state)
{
	static const struct bx_conf_opt bad[] = {
		{ .name = "n", .type = BX_CONF_INT, .offset = 0, .def = NULL, .min = 1, .max = 0 },
	};
	const struct bx_conf_schema s = { .opts = bad, .nb_opts = 1, .conf_size = 8 };
	struct bx_errbuf eb;
	int64_t v;

	assert_int_equal(bx_conf_defaults(&s, &v, &eb), -EINVAL);
	assert_non_null(strstr(eb.msg, "default of n"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_conf_defaults),
		cmocka_unit_test(test_conf_parse_sections_quotes_comments),
		cmocka_unit_test(test_conf_bad_inputs),
		cmocka_unit_test(test_conf_long_line),
		cmocka_unit_test(test_conf_load_file),
		cmocka_unit_test(test_conf_overrides_all_or_nothing),
		cmocka_unit_test(test_conf_runtime),
		cmocka_unit_test(test_conf_format_round_trip),
		cmocka_unit_test(test_conf_alloc_failures),
		cmocka_unit_test(test_conf_bad_default_is_reported),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
