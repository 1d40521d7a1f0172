/*
 * Covers: the DPDK port's start-up errors (dpdk_env.c, port_dpdk.c): each
 * missing or wrong setting fails bx_dp_start with a message that names it
 * and says what to do, and a failed start leaves nothing behind (the next
 * good start works). Hugepages are checked only when this machine has none
 * free; a bad EAL argument runs in a child (the EAL starts once per process).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include <bx/dataplane.h>

#include "bx_test.h"
#include "dp_testlib.h"

static struct dpt_keys K;

static struct bx_metagraph *
make_mg(void)
{
	char buf[4096];
	size_t n = dpt_metagraph_json(&K, buf, sizeof(buf));
	struct bx_metagraph *mg = NULL;
	struct bx_errbuf eb;

	assert_int_equal(bx_metagraph_parse(buf, n, "test", &mg, &eb), 0);
	return mg;
}

static void
conf(struct bx_dp_conf *c)
{
	bx_dp_conf_default(c);
	snprintf(c->listen_addr, sizeof(c->listen_addr), "127.0.0.1");
	c->port_backend = "dpdk";
	c->port = 0;
	c->nb_cores = 1;
	c->pin = false;
	c->max_conns = 16;
	c->hotkey = K.miner;
	c->replay_slots = 1024;
	c->dpdk_idle_us = 100;
	snprintf(c->dpdk_eal_args, sizeof(c->dpdk_eal_args),
	         "--no-huge -m 128 --no-pci --log-level=lib.eal:error");
	snprintf(c->dpdk_device, sizeof(c->dpdk_device), "net_null_bxerr0");
	snprintf(c->dpdk_addr, sizeof(c->dpdk_addr), "10.213.12.2/24");
}

/* Start with c; returns bx_dp_start's result, its message in eb. */
static int
start(const struct bx_dp_conf *c, struct bx_errbuf *eb)
{
	struct bx_dp *dp;
	int r;

	eb->msg[0] = 0;
	r = bx_dp_create(c, make_mg(), &dp, eb);
	if (r < 0) {
		return r;
	}
	r = bx_dp_start(dp, eb);
	bx_dp_stop(dp, 100);
	bx_dp_destroy(dp);
	return r;
}

static void
expect_error(const struct bx_dp_conf *c, const char *needle)
{
	struct bx_errbuf eb;
	int r = start(c, &eb);

	if (r == 0 || !strstr(eb.msg, needle)) {
		fail_msg("wanted an error with \"%s\", got %d \"%s\"", needle, r, eb.msg);
	}
}

static void
test_bad_eal_argument_in_child(void **state)
{
	struct bx_dp_conf c;
	int fds[2], status;
	char msg[600] = "";
	pid_t pid;

	conf(&c);
	snprintf(c.dpdk_eal_args, sizeof(c.dpdk_eal_args), "--no-huge --bogus-eal-option");
	assert_int_equal(pipe(fds), 0);
	pid = fork();
	if (pid == 0) {
		struct bx_errbuf eb;
		int r;

		bx_log_set_levels("crit", NULL);
		r = start(&c, &eb);
		if (write(fds[1], eb.msg, strlen(eb.msg)) < 0) {
			_exit(3);
		}
		_exit(r < 0 ? 0 : 1);
	}
	close(fds[1]);
	assert_true(read(fds[0], msg, sizeof(msg) - 1) > 0);
	close(fds[0]);
	waitpid(pid, &status, 0);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_non_null(strstr(msg, "EAL start-up failed"));
	assert_non_null(strstr(msg, "dp.dpdk_eal_args"));
}

static void
test_settings(void **state)
{
	struct bx_dp_conf c;

	conf(&c);
	c.dpdk_device[0] = 0;
	expect_error(&c, "set dp.dpdk_device");
	conf(&c);
	c.dpdk_addr[0] = 0;
	expect_error(&c, "dp.dpdk_addr");
	conf(&c);
	snprintf(c.dpdk_addr, sizeof(c.dpdk_addr), "10.213.12.2/40");
	expect_error(&c, "dp.dpdk_addr \"10.213.12.2/40\"");
	conf(&c);
	snprintf(c.dpdk_gateway, sizeof(c.dpdk_gateway), "gateway");
	expect_error(&c, "dp.dpdk_gateway \"gateway\"");
	conf(&c);
	snprintf(c.dpdk_allow, sizeof(c.dpdk_allow), "10.0.0.0/8, 300.1.1.1");
	expect_error(&c, "allow-list entry \"300.1.1.1\"");
	conf(&c);
	c.dpdk_syn_rate = -1;
	expect_error(&c, "rates must be >= 0");
}

static void
test_hugepages(void **state)
{
	struct bx_dp_conf c;
	FILE *f = fopen("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages", "r");
	FILE *g = fopen("/sys/kernel/mm/hugepages/hugepages-1048576kB/free_hugepages", "r");
	long n2 = 0, n1 = 0;

	if (f && fscanf(f, "%ld", &n2) != 1) {
		n2 = 1;
	}
	if (g && fscanf(g, "%ld", &n1) != 1) {
		n1 = 1;
	}
	if (f) {
		fclose(f);
	}
	if (g) {
		fclose(g);
	}
	if (!f || n2 + n1 > 0) {
		skip(); /* this machine has hugepages: nothing to refuse */
	}
	conf(&c);
	snprintf(c.dpdk_eal_args, sizeof(c.dpdk_eal_args), "-m 64 --no-pci");
	expect_error(&c, "no free hugepages");
}

static void
test_devices(void **state)
{
	struct bx_dp_conf c;
	struct bx_errbuf eb;
	int r;

	conf(&c);
	snprintf(c.dpdk_device, sizeof(c.dpdk_device), "net_nosuchdriver0");
	expect_error(&c, "cannot attach device \"net_nosuchdriver0\"");
	conf(&c);
	snprintf(c.dpdk_device, sizeof(c.dpdk_device), "0000:ff:1f.7");
	expect_error(&c, "bound to vfio-pci");
	/* after every failure, a good start works: nothing was left behind */
	conf(&c);
	r = start(&c, &eb);
	if (r < 0) {
		fail_msg("%s", eb.msg);
	}
}

static int
setup(void **state)
{
	dpt_keys_make(&K);
	if (geteuid() != 0) {
		bx_test_skip("the EAL here needs root (net_null, --no-huge)");
	}
	return 0;
}

static int
teardown(void **state)
{
	dpt_keys_free(&K);
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_eal_argument_in_child),
		cmocka_unit_test(test_hugepages), /* before anything starts the EAL here */
		cmocka_unit_test(test_settings),
		cmocka_unit_test(test_devices),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
