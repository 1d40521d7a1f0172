/*
 * Shared helpers for bx's CMocka tests. Include after cmocka's required
 * system headers (stdarg, stddef, setjmp, stdint) and <cmocka.h>.
 */
#ifndef BX_TEST_H
#define BX_TEST_H

#include <stddef.h>
#include <stdint.h>

/* Exit code meson reads as SKIP: the machine lacks what the test needs. */
#define BX_TEST_SKIP 77

/* Print the reason and exit 77. For use in main() before any test runs. */
void bx_test_skip(const char *why) __attribute__((noreturn));

/*
 * A copy of buf[0..len) that ends exactly at a PROT_NONE page, so any read
 * past len faults (picohttpparser's test harness). Release with
 * bx_guard_free(). Returns NULL if mmap fails.
 */
void *bx_guard_copy(const void *buf, size_t len);
void bx_guard_free(void *p, size_t len);

/* Read a whole file into a malloc'd buffer (NUL-terminated). NULL on error. */
char *bx_test_read_file(const char *path, size_t *len);

/* Path to ../shared beside the repo (BX_SHARED overrides), e.g. "models/fortune-1m". */
const char *bx_test_shared(const char *rel, char *buf, size_t len);

/*
 * Walk every allocation-failure path of a create function: run `create`
 * with the first allocation failing, then the second, ... until it succeeds
 * without reaching the injected failure. `create` returns 0 or -errno and on
 * success the walker calls `destroy` on what it made. Fails the CMocka test
 * when a failing run returns 0 or a run returns anything but 0/-ENOMEM.
 * Returns the number of allocations a successful create makes.
 */
unsigned bx_test_alloc_walk(int (*create)(void *ctx, void **obj), void (*destroy)(void *obj),
                            void *ctx);

#endif
