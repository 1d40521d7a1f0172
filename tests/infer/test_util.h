/* Shared includes and helpers of the infer tests. */
#ifndef BX_TEST_INFER_UTIL_H
#define BX_TEST_INFER_UTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <bx/infer.h>

#include "bx_test.h"

/* A shared file's path, or skip the whole test program when it is missing. */
static inline const char *
shared_or_skip(const char *rel, char *buf, size_t len)
{
	const char *p = bx_test_shared(rel, buf, len);

	if (p == NULL || access(p, R_OK) != 0) {
		bx_test_skip("missing shared model files (../shared/models)");
	}
	return p;
}

/* A fresh temporary directory (mkdtemp under /tmp). */
static inline void
tmpdir(char *buf, size_t len)
{
	snprintf(buf, len, "/tmp/bx-infer-XXXXXX");
	assert_non_null(mkdtemp(buf));
}

static inline void
rm_rf(const char *dir)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

static inline void
copy_file(const char *from, const char *to)
{
	size_t len;
	char *buf = bx_test_read_file(from, &len);
	FILE *fp = fopen(to, "wb");

	assert_non_null(buf);
	assert_non_null(fp);
	assert_int_equal(fwrite(buf, 1, len, fp), len);
	assert_int_equal(fclose(fp), 0);
	free(buf);
}

#endif
