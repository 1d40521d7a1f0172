/* Covers: platform/alloc.c — failure injection; the walker over every create in platform. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <bx/platform.h>

#include "bx_test.h"

static void
test_alloc_fail_after_n(void **state)
{
	void *a, *b, *c;

	bx_alloc_fail_after(2);
	a = bx_malloc(8);
	b = bx_calloc(1, 8);
	c = bx_aligned_alloc(64, 64);
	assert_non_null(a);
	assert_non_null(b);
	assert_null(c);
	assert_true(bx_alloc_failed());
	assert_int_equal(bx_alloc_count(), 2);
	assert_null(bx_malloc(1)); /* stays failing until turned off */
	bx_alloc_fail_off();
	c = bx_aligned_alloc(64, 64);
	assert_non_null(c);
	assert_int_equal((uintptr_t)c % 64, 0);
	bx_free(a);
	bx_free(b);
	bx_free(c);
}

static void *
other_thread(void *arg)
{
	void *p = bx_malloc(16);

	bx_free(p);
	return p;
}

static void
test_alloc_hook_is_per_thread(void **state)
{
	pthread_t t;
	void *got;

	bx_alloc_fail_after(0);
	assert_int_equal(pthread_create(&t, NULL, other_thread, NULL), 0);
	assert_int_equal(pthread_join(t, &got), 0);
	bx_alloc_fail_off();
	assert_non_null(got);
}

/* Adapters so the walker can drive every platform constructor. */
static int
mk_pool(void *ctx, void **o)
{
	return bx_pool_create(100, 8, (struct bx_pool **)o);
}

static void
rm_pool(void *o)
{
	bx_pool_destroy(o);
}

static int
mk_arena(void *ctx, void **o)
{
	return bx_arena_create(4096, (struct bx_arena **)o);
}

static void
rm_arena(void *o)
{
	bx_arena_destroy(o);
}

static int
mk_spsc(void *ctx, void **o)
{
	return bx_spsc_create(64, (struct bx_spsc **)o);
}

static void
rm_spsc(void *o)
{
	bx_spsc_destroy(o);
}

static int
mk_mpmc(void *ctx, void **o)
{
	return bx_mpmc_create(64, (struct bx_mpmc **)o);
}

static void
rm_mpmc(void *o)
{
	bx_mpmc_destroy(o);
}

static int
mk_topo(void *ctx, void **o)
{
	return bx_topo_load_synthetic("numa:2 core:2 pu:2", (struct bx_topo **)o, NULL);
}

static void
rm_topo(void *o)
{
	bx_topo_free(o);
}

static void
test_alloc_walk_every_platform_create(void **state)
{
	/* debug mode (BX_DEBUG_POOL=1) has no backing block to allocate */
	assert_int_equal(bx_test_alloc_walk(mk_pool, rm_pool, NULL), bx_mem_debug() ? 2 : 3);
	assert_int_equal(bx_test_alloc_walk(mk_arena, rm_arena, NULL), bx_mem_debug() ? 1 : 2);
	assert_int_equal(bx_test_alloc_walk(mk_spsc, rm_spsc, NULL), 2);
	assert_int_equal(bx_test_alloc_walk(mk_mpmc, rm_mpmc, NULL), 2);
	assert_int_equal(bx_test_alloc_walk(mk_topo, rm_topo, NULL), 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_alloc_fail_after_n),
		cmocka_unit_test(test_alloc_hook_is_per_thread),
		cmocka_unit_test(test_alloc_walk_every_platform_create),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
