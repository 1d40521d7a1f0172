/*
 * Per-request bump arena of fixed capacity (nginx pools, ggml contexts).
 * In debug mode each allocation is its own malloc() block on a list, so
 * ASan sees overflows and use after reset; the capacity still applies, so
 * code behaves the same in both modes.
 */
#include <errno.h>
#include <stdlib.h>

#include <bx/platform.h>

/* Sits just before each debug-mode allocation. */
struct debug_block {
	struct debug_block *next;
	void *raw; /* what malloc returned */
};

struct bx_arena {
	char *base; /* capacity bytes; NULL in debug mode */
	size_t capacity;
	size_t used;                /* bytes handed out, padding included */
	struct debug_block *blocks; /* debug mode: every live allocation */
	bool debug;
};

int
bx_arena_create(size_t capacity, struct bx_arena **out)
{
	struct bx_arena *a;

	if (capacity == 0) {
		return -EINVAL;
	}
	a = bx_calloc(1, sizeof(*a));
	if (a == NULL) {
		return -ENOMEM;
	}
	a->capacity = capacity;
	a->debug = bx_mem_debug();
	if (!a->debug) {
		a->base = bx_aligned_alloc(4096, capacity);
		if (a->base == NULL) {
			bx_free(a);
			return -ENOMEM;
		}
	}
	*out = a;
	return 0;
}

void
bx_arena_destroy(struct bx_arena *arena)
{
	if (arena == NULL) {
		return;
	}
	bx_arena_reset(arena);
	bx_free(arena->base);
	bx_free(arena);
}

static void *
debug_alloc(struct bx_arena *a, size_t size, size_t align)
{
	size_t head = (sizeof(struct debug_block) + align - 1) & ~(align - 1);
	struct debug_block *b;
	char *p;

	if (posix_memalign((void **)&p, BX_MAX(align, sizeof(void *)), head + size) != 0) {
		return NULL;
	}
	b = (struct debug_block *)(p + head - sizeof(*b));
	b->raw = p;
	b->next = a->blocks;
	a->blocks = b;
	a->used += size;
	return p + head;
}

void *
bx_arena_alloc(struct bx_arena *arena, size_t size, size_t align)
{
	size_t start;

	if (align == 0 || (align & (align - 1)) != 0 || align > 4096) {
		return NULL;
	}
	start = (arena->used + align - 1) & ~(align - 1);
	if (start < arena->used || size > arena->capacity || start > arena->capacity - size) {
		return NULL;
	}
	if (arena->debug) {
		return debug_alloc(arena, size, align);
	}
	arena->used = start + size;
	return arena->base + start;
}

void
bx_arena_reset(struct bx_arena *arena)
{
	while (arena->blocks != NULL) {
		struct debug_block *b = arena->blocks;

		arena->blocks = b->next;
		free(b->raw);
	}
	arena->used = 0;
}

size_t
bx_arena_used(const struct bx_arena *arena)
{
	return arena->used;
}
