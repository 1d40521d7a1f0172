/* Covers: platform/log.c — levels per type, lazy arguments, sinks, level specs. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <bx/platform.h>

static char last[1024];
static int nb_lines;
static enum bx_log_type last_type;

static void
capture(enum bx_log_type type, enum bx_log_level level, const char *line, void *arg)
{
	snprintf(last, sizeof(last), "%s", line);
	last_type = type;
	nb_lines++;
}

static int evaluated;

static int
costly(void)
{
	return ++evaluated;
}

static int
setup(void **state)
{
	bx_log_set_sink(capture, NULL);
	nb_lines = 0;
	evaluated = 0;
	return bx_log_set_levels("info", NULL);
}

static void
test_log_level_checked_before_arguments(void **state)
{
	BX_LOG(DEBUG, "value %d", costly());
	assert_int_equal(evaluated, 0);
	assert_int_equal(nb_lines, 0);
	BX_LOG(INFO, "value %d", costly());
	assert_int_equal(evaluated, 1);
	assert_string_equal(last, "value 1");
	assert_int_equal(last_type, BX_LOGT_TOOL);
}

static void
test_log_per_type_levels(void **state)
{
	struct bx_errbuf eb;

	assert_int_equal(bx_log_set_levels("warn,tool:debug", &eb), 0);
	assert_true(bx_log_enabled(BX_LOGT_TOOL, BX_LOG_DEBUG));
	assert_false(bx_log_enabled(BX_LOGT_CRYPTO, BX_LOG_INFO));
	assert_true(bx_log_enabled(BX_LOGT_CRYPTO, BX_LOG_WARN));
	BX_LOG(DEBUG, "now visible");
	assert_string_equal(last, "now visible");
}

static void
test_log_bad_spec_changes_nothing(void **state)
{
	struct bx_errbuf eb;

	assert_int_equal(bx_log_set_levels("debug,bogus:info", &eb), -EINVAL);
	assert_string_equal(eb.msg, "unknown log type 'bogus'");
	assert_false(bx_log_enabled(BX_LOGT_CRYPTO, BX_LOG_DEBUG));
	assert_int_equal(bx_log_set_levels("loud", &eb), -EINVAL);
	assert_non_null(strstr(eb.msg, "unknown log level 'loud'"));
}

static void
test_log_dp_compiled_out(void **state)
{
	assert_int_equal(bx_log_set_levels("debug", NULL), 0);
	BX_LOG_DP(DEBUG, "hot %d", costly());
	assert_int_equal(evaluated, 0);
	BX_LOG_DP(ERR, "hot %d", costly());
	assert_int_equal(evaluated, 1);
}

static void
test_log_long_line_truncated(void **state)
{
	char big[3000];

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	BX_LOG(ERR, "%s", big);
	assert_int_equal(strlen(last), 1023);
	assert_string_equal(bx_log_type_name(BX_LOGT_CRYPTO), "crypto");
	assert_string_equal(bx_log_level_name(BX_LOG_NOTICE), "notice");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_log_level_checked_before_arguments, setup),
		cmocka_unit_test_setup(test_log_per_type_levels, setup),
		cmocka_unit_test_setup(test_log_bad_spec_changes_nothing, setup),
		cmocka_unit_test_setup(test_log_dp_compiled_out, setup),
		cmocka_unit_test_setup(test_log_long_line_truncated, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
