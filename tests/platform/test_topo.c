/* Covers: platform/topo.c, platform/pin.c — real and synthetic topologies, pinning errors. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <bx/platform.h>

static void
test_topo_real_machine_matches_affinity(void **state)
{
	struct bx_topo *t;
	struct bx_errbuf eb;
	cpu_set_t set;
	char desc[128];

	assert_int_equal(bx_topo_load(&t, &eb), 0);
	assert_int_equal(sched_getaffinity(0, sizeof(set), &set), 0);
	/* hwloc restricts to what this process may use: the same CPU count. */
	assert_int_equal(t->nb_cpus, (unsigned)CPU_COUNT(&set));
	assert_true(t->nb_cores >= 1 && t->nb_cores <= t->nb_cpus);
	assert_true(t->nb_nodes >= 1);
	for (unsigned i = 0; i < t->nb_cpus; i++) {
		assert_true(CPU_ISSET(t->cpus[i].os_index, &set));
		assert_true(t->cpus[i].node < t->nb_nodes);
		assert_true(t->cpus[i].core < t->nb_cores);
		assert_ptr_equal(bx_topo_find_cpu(t, t->cpus[i].os_index), &t->cpus[i]);
	}
	assert_null(bx_topo_find_cpu(t, 100000));
	assert_true(bx_topo_describe(t, desc, sizeof(desc)) > 0);
	assert_non_null(strstr(desc, "core"));
	bx_topo_free(t);
}

static void
test_topo_synthetic_two_nodes(void **state)
{
	struct bx_topo *t;
	struct bx_errbuf eb;

	assert_int_equal(bx_topo_load_synthetic("pack:2 numa:1 l3:1 core:4 pu:2", &t, &eb), 0);
	assert_int_equal(t->nb_nodes, 2);
	assert_int_equal(t->nb_l3, 2);
	assert_int_equal(t->nb_cores, 8);
	assert_int_equal(t->nb_cpus, 16);
	/* Hyperthread siblings share a core; the second package is node 1, L3 1. */
	assert_int_equal(t->cpus[0].core, t->cpus[1].core);
	assert_int_equal(t->cpus[15].node, 1);
	assert_int_equal(t->cpus[15].l3, 1);
	assert_int_equal(t->cpus[15].core, 7);
	bx_topo_free(t);
	assert_int_equal(bx_topo_load_synthetic("nonsense:x", &t, &eb), -EINVAL);
	assert_non_null(strstr(eb.msg, "nonsense:x"));
}

static void
test_pin_self_and_missing_core(void **state)
{
	struct bx_errbuf eb;
	cpu_set_t saved;
	int cpu = -1;

	assert_int_equal(sched_getaffinity(0, sizeof(saved), &saved), 0);
	for (int c = 0; c < CPU_SETSIZE && cpu < 0; c++) {
		cpu = CPU_ISSET(c, &saved) ? c : -1;
	}
	assert_int_equal(bx_thread_pin_self((unsigned)cpu, &eb), 0);
	assert_int_equal(bx_thread_pinned_cpu(pthread_self()), cpu);
	assert_int_equal(sched_getcpu(), cpu);
	assert_int_equal(bx_thread_pin_self(4000, &eb), -ENODEV);
	assert_non_null(strstr(eb.msg, "CPU 4000 does not exist or is not allowed (CPUs: "));
	assert_int_equal(bx_thread_pinned_cpu(pthread_self()), cpu); /* unchanged */
	if (CPU_COUNT(&saved) > 1) {
		unsigned two[2] = { (unsigned)cpu, 0 };
		cpu_set_t got;

		for (int c = cpu + 1; c < CPU_SETSIZE; c++) {
			if (CPU_ISSET(c, &saved)) {
				two[1] = (unsigned)c;
				break;
			}
		}
		assert_int_equal(bx_thread_pin_cpus(pthread_self(), two, 2, &eb), 0);
		assert_int_equal(pthread_getaffinity_np(pthread_self(), sizeof(got), &got), 0);
		assert_int_equal(CPU_COUNT(&got), 2);
		assert_true(CPU_ISSET(two[1], &got));
	}
	assert_int_equal(bx_thread_pin_cpus(pthread_self(), NULL, 0, &eb), -EINVAL);
	assert_int_equal(pthread_setaffinity_np(pthread_self(), sizeof(saved), &saved), 0);
	if (CPU_COUNT(&saved) > 1) {
		assert_int_equal(bx_thread_pinned_cpu(pthread_self()), -EINVAL);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_topo_real_machine_matches_affinity),
		cmocka_unit_test(test_topo_synthetic_two_nodes),
		cmocka_unit_test(test_pin_self_and_missing_core),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
