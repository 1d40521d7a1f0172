/*
 * Start-up allocation with per-thread failure injection (SQLite's malloc
 * tests): tests walk every failure path of a create function.
 */
#include <errno.h>
#include <stdlib.h>

#include <bx/platform.h>

static __thread struct {
	unsigned count;   /* allocations since the hook was set or cleared */
	unsigned fail_at; /* count at which allocations start failing */
	bool armed;
	bool failed; /* an allocation was refused since the hook was set */
} hook;

static bool mem_debug;

void
bx_alloc_fail_after(unsigned n)
{
	hook.count = 0;
	hook.fail_at = n;
	hook.armed = true;
	hook.failed = false;
}

void
bx_alloc_fail_off(void)
{
	hook.count = 0;
	hook.armed = false;
	hook.failed = false;
}

unsigned
bx_alloc_count(void)
{
	return hook.count;
}

bool
bx_alloc_failed(void)
{
	return hook.failed;
}

/* True when this allocation must fail. */
static bool
refuse(void)
{
	if (hook.armed && hook.count >= hook.fail_at) {
		hook.failed = true;
		return true;
	}
	hook.count++;
	return false;
}

void *
bx_malloc(size_t size)
{
	return refuse() ? NULL : malloc(size);
}

void *
bx_calloc(size_t n, size_t size)
{
	return refuse() ? NULL : calloc(n, size);
}

void *
bx_aligned_alloc(size_t align, size_t size)
{
	void *p;

	if (refuse() || posix_memalign(&p, align, size) != 0) {
		return NULL;
	}
	return p;
}

void
bx_free(void *p)
{
	free(p);
}

void
bx_mem_debug_set(bool on)
{
	mem_debug = on;
}

bool
bx_mem_debug(void)
{
	return mem_debug;
}
