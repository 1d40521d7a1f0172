/* Shared test helpers (see bx_test.h). */
#include "bx_test.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include <bx/platform.h>

void
bx_test_skip(const char *why)
{
	printf("SKIP: %s\n", why);
	exit(BX_TEST_SKIP);
}

/* Pages needed for len bytes plus one guard page. */
static size_t
guard_span(size_t len, size_t *data_pages)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);

	*data_pages = (len + page - 1) / page * page;
	return *data_pages + page;
}

void *
bx_guard_copy(const void *buf, size_t len)
{
	size_t data, span = guard_span(len, &data);
	char *base = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (base == MAP_FAILED) {
		return NULL;
	}
	if (mprotect(base + data, span - data, PROT_NONE) < 0) {
		munmap(base, span);
		return NULL;
	}
	memcpy(base + data - len, buf, len);
	return base + data - len;
}

void
bx_guard_free(void *p, size_t len)
{
	size_t data, span = guard_span(len, &data);

	if (p != NULL) {
		munmap((char *)p + len - data, span);
	}
}

char *
bx_test_read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;

	if (f == NULL) {
		return NULL;
	}
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
		buf = malloc((size_t)n + 1);
		if (buf != NULL && fread(buf, 1, (size_t)n, f) != (size_t)n) {
			free(buf);
			buf = NULL;
		} else if (buf != NULL) {
			buf[n] = '\0';
			if (len != NULL) {
				*len = (size_t)n;
			}
		}
	}
	fclose(f);
	return buf;
}

const char *
bx_test_shared(const char *rel, char *buf, size_t len)
{
	const char *root = getenv("BX_SHARED");

	if (root != NULL) {
		snprintf(buf, len, "%s/%s", root, rel);
	} else {
		/* BX_SOURCE_ROOT is the repo; ../shared sits beside it. */
		snprintf(buf, len, "%s/../shared/%s", BX_SOURCE_ROOT, rel);
	}
	return buf;
}

unsigned
bx_test_alloc_walk(int (*create)(void *ctx, void **obj), void (*destroy)(void *obj), void *ctx)
{
	for (unsigned n = 0; n < 100000; n++) {
		void *obj = NULL;
		int ret;

		bx_alloc_fail_after(n);
		ret = create(ctx, &obj);
		if (!bx_alloc_failed()) {
			unsigned used = bx_alloc_count();

			bx_alloc_fail_off();
			assert_int_equal(ret, 0);
			destroy(obj);
			return used;
		}
		bx_alloc_fail_off();
		if (ret == 0) {
			/* Tolerated only if create reported the failure some other way: it must not. */
			destroy(obj);
			fail_msg("create succeeded although allocation %u failed", n);
		}
		assert_int_equal(ret, -ENOMEM);
	}
	fail_msg("create never succeeded");
	return 0;
}

/* BX_DEBUG_POOL=1 (the ASan CI run) puts every test's pools and arenas in malloc mode. */
__attribute__((constructor)) static void
debug_pool_from_env(void)
{
	const char *v = getenv("BX_DEBUG_POOL");

	if (v != NULL && strcmp(v, "1") == 0) {
		bx_mem_debug_set(true);
	}
}
