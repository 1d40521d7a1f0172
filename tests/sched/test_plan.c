/* Covers: sched/plan.c — worker plans from real and synthetic topologies. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <bx/sched.h>

static void
plan_for(const char *desc, unsigned dp, unsigned tmax, struct bx_sched_plan *plan)
{
	struct bx_topo *t;

	assert_int_equal(bx_topo_load_synthetic(desc, &t, NULL), 0);
	assert_int_equal(bx_sched_plan_auto(t, dp, tmax, plan, NULL), 0);
	bx_topo_free(t);
}

static void
test_plan_two_cores(void **state)
{
	struct bx_sched_plan p;
	char buf[256];

	plan_for("core:2 pu:1", 1, 8, &p);
	assert_int_equal(p.nb_dp, 1);
	assert_int_equal(p.dp_cpus[0], 0);
	assert_int_equal(p.nb_workers, 1);
	assert_int_equal(p.workers[0].nb_cpus, 1);
	assert_int_equal(p.workers[0].cpus[0], 1);
	bx_sched_plan_describe(&p, buf, sizeof(buf));
	assert_string_equal(buf, "dataplane cpus 0; worker 0 node 0 cpus 1");
}

static void
test_plan_one_core_shares(void **state)
{
	struct bx_sched_plan p;

	plan_for("core:1 pu:2", 1, 8, &p);
	assert_int_equal(p.nb_dp, 1);
	assert_int_equal(p.nb_workers, 1);
	assert_int_equal(p.workers[0].cpus[0], p.dp_cpus[0]);
}

/* Two nodes, two L3 each, 4 cores per L3, SMT 2: per node one dataplane core,
 * then one worker per L3 slice, hyperthread siblings unused, teams capped. */
static void
test_plan_numa_l3_slices(void **state)
{
	struct bx_sched_plan p;

	plan_for("pack:2 numa:1 l3:2 core:4 pu:2", 1, 3, &p);
	assert_int_equal(p.nb_dp, 2);
	assert_int_equal(p.dp_cpus[0], 0);
	assert_int_equal(p.dp_cpus[1], 16);
	/* node 0: L3 0 has cores 1-3 (3 threads), L3 1 has 4 cores: 3 + 1 */
	assert_int_equal(p.nb_workers, 6);
	assert_int_equal(p.workers[0].nb_cpus, 3);
	assert_int_equal(p.workers[0].cpus[0], 2);
	assert_int_equal(p.workers[1].nb_cpus, 3);
	assert_int_equal(p.workers[2].nb_cpus, 1);
	for (unsigned i = 0; i < 3; i++) {
		assert_int_equal(p.workers[i].node, 0);
		assert_int_equal(p.workers[i + 3].node, 1);
	}
	struct bx_topo *t;
	assert_int_equal(bx_topo_load_synthetic("core:2 pu:1", &t, NULL), 0);
	assert_int_equal(bx_sched_plan_auto(t, 1, 0, &p, NULL), -EINVAL);
	bx_topo_free(t);
}

static void
test_plan_real_machine(void **state)
{
	struct bx_sched_plan p;
	struct bx_topo *t;

	assert_int_equal(bx_topo_load(&t, NULL), 0);
	assert_int_equal(bx_sched_plan_auto(t, 1, 8, &p, NULL), 0);
	assert_true(p.nb_dp >= 1 && p.nb_workers >= 1);
	for (unsigned i = 0; i < p.nb_workers; i++) {
		for (unsigned c = 0; c < p.workers[i].nb_cpus; c++) {
			assert_non_null(bx_topo_find_cpu(t, p.workers[i].cpus[c]));
		}
	}
	bx_topo_free(t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plan_two_cores),
		cmocka_unit_test(test_plan_one_core_shares),
		cmocka_unit_test(test_plan_numa_l3_slices),
		cmocka_unit_test(test_plan_real_machine),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
