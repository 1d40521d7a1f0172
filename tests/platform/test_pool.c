/* Covers: platform/pool.c, platform/arena.c — in normal and debug (malloc) modes. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <bx/platform.h>

static int
normal_mode(void **state)
{
	bx_mem_debug_set(false);
	return 0;
}

static int
debug_mode(void **state)
{
	bx_mem_debug_set(true);
	return 0;
}

static void
test_pool_get_put_exhaust(void **state)
{
	struct bx_pool *p;
	void *objs[5];

	assert_int_equal(bx_pool_create(0, 4, &p), -EINVAL);
	assert_int_equal(bx_pool_create(100, 4, &p), 0);
	assert_int_equal(bx_pool_capacity(p), 4);
	for (int i = 0; i < 4; i++) {
		objs[i] = bx_pool_get(p);
		assert_non_null(objs[i]);
		assert_int_equal((uintptr_t)objs[i] % BX_CACHE_LINE, 0);
		memset(objs[i], i, 100); /* whole object writable */
		for (int j = 0; j < i; j++) {
			assert_ptr_not_equal(objs[i], objs[j]);
		}
	}
	assert_null(bx_pool_get(p));
	assert_int_equal(bx_pool_avail(p), 0);
	bx_pool_put(p, objs[2]);
	assert_int_equal(bx_pool_avail(p), 1);
	objs[4] = bx_pool_get(p);
	assert_non_null(objs[4]);
	for (int i = 0; i < 5; i++) {
		if (i != 2) {
			bx_pool_put(p, objs[i]);
		}
	}
	assert_int_equal(bx_pool_avail(p), 4);
	bx_pool_destroy(p);
	bx_pool_destroy(NULL);
}

static void
test_arena_alignment_capacity_reset(void **state)
{
	struct bx_arena *a;
	char *x, *y, *z;

	assert_int_equal(bx_arena_create(0, &a), -EINVAL);
	assert_int_equal(bx_arena_create(256, &a), 0);
	x = bx_arena_alloc(a, 3, 1);
	y = bx_arena_alloc(a, 64, 64);
	assert_non_null(x);
	assert_non_null(y);
	assert_int_equal((uintptr_t)y % 64, 0);
	memset(x, 1, 3);
	memset(y, 2, 64);
	assert_null(bx_arena_alloc(a, 8, 3));    /* not a power of two */
	assert_null(bx_arena_alloc(a, 8, 8192)); /* alignment too large */
	assert_null(bx_arena_alloc(a, 512, 8));  /* larger than the arena */
	assert_null(bx_arena_alloc(a, SIZE_MAX, 8));
	z = bx_arena_alloc(a, 128, 16);
	assert_non_null(z);
	assert_true(bx_arena_used(a) <= 256);
	assert_null(bx_arena_alloc(a, 128, 16)); /* full */
	bx_arena_reset(a);
	assert_int_equal(bx_arena_used(a), 0);
	assert_non_null(bx_arena_alloc(a, 256, 8));
	bx_arena_destroy(a);
	bx_arena_destroy(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_pool_get_put_exhaust, normal_mode),
		cmocka_unit_test_setup(test_arena_alignment_capacity_reset, normal_mode),
		cmocka_unit_test_setup(test_pool_get_put_exhaust, debug_mode),
		cmocka_unit_test_setup(test_arena_alignment_capacity_reset, debug_mode),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
