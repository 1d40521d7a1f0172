/* Covers: firmware/conf.c — bxd's settings from file and arguments, CPU lists. */
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

#include <bx/firmware.h>

static int
load(char **argv, int argc, struct bx_fw_conf *c, enum bx_fw_action *a, struct bx_errbuf *eb)
{
	return bx_fw_conf_load(argc, argv, c, a, eb);
}

static void
test_fwconf_defaults_file_then_args(void **state)
{
	char path[] = "/tmp/bxd_conf_XXXXXX";
	int fd = mkstemp(path);
	static const char text[] = "[dp]\ncores = 0-1\n[mgmt]\nport = 9200\n";
	char *argv[] = { "bxd", "-c", path, "--port=8099", "--mgmt.port=9300" };
	struct bx_fw_conf c;
	enum bx_fw_action a;
	struct bx_errbuf eb;

	assert_int_equal(write(fd, text, sizeof(text) - 1), (ssize_t)sizeof(text) - 1);
	close(fd);
	assert_int_equal(load(argv, 5, &c, &a, &eb), 0);
	assert_int_equal(a, BX_FW_RUN);
	assert_string_equal(c.listen_addr, "127.0.0.1");
	assert_int_equal(c.port, 8099);
	assert_string_equal(c.dp_cores, "0-1");
	assert_int_equal(c.mgmt_port, 9300); /* the argument wins over the file */
	assert_int_equal(c.dataplane, BX_FW_DP_URING);
	unlink(path);
}

static void
test_fwconf_bad_arguments(void **state)
{
	char *unknown[] = { "bxd", "--nope=1" };
	char *bare[] = { "bxd", "serve" };
	char *nofile[] = { "bxd", "-c" };
	char *clash[] = { "bxd", "--port=9100" };
	char *cpus[] = { "bxd", "--dp.cores=0-x" };
	char *dp[] = { "bxd", "--dataplane=dpdk", "--dpdk.device=net_tap0",
		       "--dpdk.addr=10.0.0.2/24", "--print-config" };
	char *nodev[] = { "bxd", "--dataplane=dpdk" };
	struct bx_fw_conf c;
	enum bx_fw_action a;
	struct bx_errbuf eb;

	assert_int_equal(load(unknown, 2, &c, &a, &eb), -EINVAL);
	assert_string_equal(eb.msg, "unknown key 'nope'");
	assert_int_equal(load(bare, 2, &c, &a, &eb), -EINVAL);
	assert_non_null(strstr(eb.msg, "unknown argument 'serve'"));
	assert_int_equal(load(nofile, 2, &c, &a, &eb), -EINVAL);
	assert_int_equal(load(clash, 2, &c, &a, &eb), -EINVAL);
	assert_non_null(strstr(eb.msg, "port and mgmt.port are both 9100"));
	assert_int_equal(load(cpus, 2, &c, &a, &eb), -EINVAL);
	assert_non_null(strstr(eb.msg, "CPU list '0-x'"));
	assert_int_equal(load(nodev, 2, &c, &a, &eb), -EINVAL);
	assert_non_null(strstr(eb.msg, "needs dpdk.device and dpdk.addr"));
	assert_int_equal(load(dp, 5, &c, &a, &eb), 0);
	assert_int_equal(a, BX_FW_PRINT_CONFIG);
	assert_int_equal(c.dataplane, BX_FW_DP_DPDK);
}

static void
test_fwconf_cpulist(void **state)
{
	uint64_t m;

	assert_int_equal(bx_fw_parse_cpulist("0", &m, NULL), 0);
	assert_int_equal(m, 1);
	assert_int_equal(bx_fw_parse_cpulist("0-3,6,8-9", &m, NULL), 0);
	assert_int_equal(m, 0x34f);
	assert_int_equal(bx_fw_parse_cpulist("63", &m, NULL), 0);
	assert_int_equal(m, 1ull << 63);
	assert_int_equal(bx_fw_parse_cpulist("64", &m, NULL), -EINVAL);
	assert_int_equal(bx_fw_parse_cpulist("3-1", &m, NULL), -EINVAL);
	assert_int_equal(bx_fw_parse_cpulist("1,", &m, NULL), -EINVAL);
	assert_int_equal(bx_fw_parse_cpulist("", &m, NULL), -EINVAL);
	assert_int_equal(bx_fw_parse_cpulist("1 2", &m, NULL), -EINVAL);
}

static void
test_fwconf_dump_round_trips(void **state)
{
	char *argv[] = { "bxd", "--port=8123", "--wallet.name=x y" };
	char path[] = "/tmp/bxd_dump_XXXXXX";
	char text[8192];
	struct bx_fw_conf c, d;
	enum bx_fw_action a;
	int fd = mkstemp(path), n;
	char *argv2[] = { "bxd", "-c", path };

	assert_int_equal(load(argv, 3, &c, &a, NULL), 0);
	n = bx_fw_conf_dump(&c, text, sizeof(text));
	assert_int_equal(write(fd, text, (size_t)n), n);
	close(fd);
	assert_int_equal(load(argv2, 3, &d, &a, NULL), 0);
	assert_memory_equal(&c, &d, sizeof(c));
	assert_true(bx_fw_conf_help(text, sizeof(text)) > 0);
	assert_non_null(strstr(text, "--drain_timeout_ms=10000"));
	unlink(path);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fwconf_defaults_file_then_args),
		cmocka_unit_test(test_fwconf_bad_arguments),
		cmocka_unit_test(test_fwconf_cpulist),
		cmocka_unit_test(test_fwconf_dump_round_trips),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
