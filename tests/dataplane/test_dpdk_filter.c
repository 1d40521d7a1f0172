/*
 * Covers: dataplane/dpdk_filter.c, the DPDK port's pre-TCP filter: the
 * allow-list (addresses and networks), the per-source packet and SYN
 * buckets, the open lane's bucket, allowlist_only, and that a flood of
 * distinct sources neither grows the table nor starves the reserved lane.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "bx_test.h"
#include "dpdk_filter.h"

#define MS 1000000ull

static uint32_t
ip4(const char *s)
{
	struct in_addr a;

	assert_int_equal(inet_pton(AF_INET, s, &a), 1);
	return ntohl(a.s_addr);
}

static void
init(struct bx_filter *f, double pkt_rate, double syn_rate, double open_rate, bool only)
{
	struct bx_filter_conf c = {
		.pkt_rate = pkt_rate,
		.pkt_burst = pkt_rate,
		.syn_rate = syn_rate,
		.syn_burst = syn_rate,
		.open_rate = open_rate,
		.open_burst = open_rate,
		.allowlist_only = only,
		.allow_cap = 16,
		.src_slots = 1024,
	};

	assert_int_equal(bx_filter_init(f, &c), 0);
}

static void
test_allow_addresses_and_nets(void **state)
{
	struct bx_filter f;
	struct bx_errbuf eb;

	init(&f, 0, 0, 0, true);
	assert_false(bx_filter_allowed(&f, ip4("192.0.2.7")));
	assert_int_equal(bx_filter_allow_add(&f, ip4("192.0.2.7")), 0);
	assert_int_equal(bx_filter_allow_add(&f, ip4("192.0.2.7")), 0); /* twice is once */
	assert_int_equal(f.nb_allow, 1);
	assert_true(bx_filter_allowed(&f, ip4("192.0.2.7")));
	assert_false(bx_filter_allowed(&f, ip4("192.0.2.8")));
	assert_int_equal(bx_filter_allow_add(&f, 0), 0); /* 0.0.0.0 is no address */
	assert_int_equal(f.nb_allow, 1);

	assert_int_equal(bx_filter_allow_nets(&f, "10.0.0.0/8, 198.51.100.9 172.16.0.0/12", &eb),
	                 0);
	assert_int_equal(f.nb_nets, 3);
	assert_true(bx_filter_allowed(&f, ip4("10.200.3.4")));
	assert_true(bx_filter_allowed(&f, ip4("198.51.100.9")));
	assert_false(bx_filter_allowed(&f, ip4("198.51.100.10")));
	assert_true(bx_filter_allowed(&f, ip4("172.31.255.255")));
	assert_false(bx_filter_allowed(&f, ip4("172.32.0.0")));

	bx_filter_allow_clear(&f); /* a metagraph reload: addresses go, networks stay */
	assert_false(bx_filter_allowed(&f, ip4("192.0.2.7")));
	assert_true(bx_filter_allowed(&f, ip4("10.1.1.1")));
	bx_filter_fini(&f);
}

static void
test_allow_bad_entries(void **state)
{
	static const char *const bad[] = { "10.0.0.0/33", "10.0.0/8", "host.example",
		                           "1.2.3.4/",    "::1",      "1.2.3.4/x" };
	struct bx_filter f;
	struct bx_errbuf eb;

	init(&f, 0, 0, 0, true);
	for (size_t i = 0; i < BX_ARRAY_SIZE(bad); i++) {
		eb.msg[0] = 0;
		assert_int_equal(bx_filter_allow_nets(&f, bad[i], &eb), -EINVAL);
		assert_non_null(strstr(eb.msg, "allow-list entry"));
	}
	assert_int_equal(f.nb_nets, 0);
	assert_int_equal(bx_filter_allow_nets(&f, "", &eb), 0);
	assert_int_equal(bx_filter_allow_nets(&f, " , ", &eb), 0);
	for (int i = 0; i < 16; i++) {
		assert_int_equal(bx_filter_allow_nets(&f, "10.0.0.0/8", &eb), 0);
	}
	assert_int_equal(bx_filter_allow_nets(&f, "11.0.0.0/8", &eb), -ENOSPC);
	bx_filter_fini(&f);
}

static void
test_allow_set_full(void **state)
{
	struct bx_filter f;
	int r = 0;
	uint32_t n;

	init(&f, 0, 0, 0, true);
	for (n = 1; n < 100000 && r == 0; n++) {
		r = bx_filter_allow_add(&f, 0x0a000000u + n);
	}
	assert_int_equal(r, -ENOSPC);
	/* everything that went in is still found */
	for (uint32_t k = 1; k < n - 1; k++) {
		assert_true(bx_filter_allowed(&f, 0x0a000000u + k));
	}
	bx_filter_fini(&f);
}

static void
test_allowlist_only(void **state)
{
	struct bx_filter f;

	init(&f, 0, 0, 0, true);
	bx_filter_allow_add(&f, ip4("192.0.2.7"));
	assert_int_equal(bx_filter_check(&f, ip4("192.0.2.7"), true, 0), BX_FILTER_PASS_ALLOWED);
	assert_int_equal(bx_filter_check(&f, ip4("192.0.2.8"), true, 0),
	                 BX_FILTER_DROP_NOT_ALLOWED);
	bx_filter_fini(&f);
}

static void
test_packet_rate_per_source(void **state)
{
	struct bx_filter f;
	uint64_t t = 1000 * MS;
	int pass = 0;

	init(&f, 100, 0, 0, false); /* 100 packets/s, burst 100 */
	for (int i = 0; i < 150; i++) {
		pass += bx_filter_check(&f, ip4("203.0.113.1"), false, t) == BX_FILTER_PASS_OPEN;
	}
	assert_int_equal(pass, 100);
	assert_int_equal(bx_filter_check(&f, ip4("203.0.113.1"), false, t),
	                 BX_FILTER_DROP_PKT_RATE);
	/* another source has its own bucket */
	assert_int_equal(bx_filter_check(&f, ip4("203.0.113.2"), false, t), BX_FILTER_PASS_OPEN);
	/* 50 ms later: 5 more */
	t += 50 * MS;
	pass = 0;
	for (int i = 0; i < 10; i++) {
		pass += bx_filter_check(&f, ip4("203.0.113.1"), false, t) == BX_FILTER_PASS_OPEN;
	}
	assert_int_equal(pass, 5);
	/* allow-listed sources are never charged */
	bx_filter_allow_add(&f, ip4("203.0.113.1"));
	for (int i = 0; i < 1000; i++) {
		assert_int_equal(bx_filter_check(&f, ip4("203.0.113.1"), false, t),
		                 BX_FILTER_PASS_ALLOWED);
	}
	bx_filter_fini(&f);
}

static void
test_syn_rate(void **state)
{
	struct bx_filter f;
	uint64_t t = 5000 * MS;
	int pass = 0;

	init(&f, 0, 10, 0, false);
	for (int i = 0; i < 30; i++) {
		pass += bx_filter_check(&f, ip4("203.0.113.9"), true, t) == BX_FILTER_PASS_OPEN;
	}
	assert_int_equal(pass, 10);
	assert_int_equal(bx_filter_check(&f, ip4("203.0.113.9"), true, t), BX_FILTER_DROP_SYN_RATE);
	/* segments of connections already open are not SYNs */
	assert_int_equal(bx_filter_check(&f, ip4("203.0.113.9"), false, t), BX_FILTER_PASS_OPEN);
	/* one second refills the bucket */
	t += 1000 * MS;
	assert_int_equal(bx_filter_check(&f, ip4("203.0.113.9"), true, t), BX_FILTER_PASS_OPEN);
	bx_filter_fini(&f);
}

static void
test_open_lane_spoofed_flood(void **state)
{
	struct bx_filter f;
	uint64_t t = 10000 * MS;
	unsigned open = 0, lane = 0, allowed = 0;

	/* per-source limits cannot stop a flood that never repeats a source; the lane can */
	init(&f, 10, 5, 1000, false);
	bx_filter_allow_add(&f, ip4("192.0.2.7"));
	for (uint32_t i = 0; i < 200000; i++) {
		enum bx_filter_verdict v;

		if (i % 1000 == 0) {
			t += MS; /* 200,000 packets in 200 ms */
			allowed += bx_filter_check(&f, ip4("192.0.2.7"), false, t) ==
			           BX_FILTER_PASS_ALLOWED;
		}
		v = bx_filter_check(&f, 0xc6120000u + i, true,
		                    t); /* 198.18.0.0/15, never the same */
		open += v == BX_FILTER_PASS_OPEN;
		lane += v == BX_FILTER_DROP_OPEN_LANE;
	}
	/* burst 1000 + 1000/s for 0.2 s */
	assert_in_range(open, 1000, 1201);
	assert_int_equal(open + lane, 200000);
	assert_int_equal(allowed, 200);
	/* the table did not grow: it is the size it was made */
	assert_int_equal(f.src_mask + 1, 1024);
	bx_filter_fini(&f);
}

static void
test_bad_conf(void **state)
{
	struct bx_filter f;
	struct bx_filter_conf c = { .pkt_rate = -1 };

	assert_int_equal(bx_filter_init(&f, &c), -EINVAL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_allow_addresses_and_nets),
		cmocka_unit_test(test_allow_bad_entries),
		cmocka_unit_test(test_allow_set_full),
		cmocka_unit_test(test_allowlist_only),
		cmocka_unit_test(test_packet_rate_per_source),
		cmocka_unit_test(test_syn_rate),
		cmocka_unit_test(test_open_lane_spoofed_flood),
		cmocka_unit_test(test_bad_conf),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
