/*
 * Fixed-size object pool: one block carved into cache-line-aligned slots
 * and a stack of free slot pointers. The free list lives outside the
 * objects, so a use after put cannot corrupt the pool's own bookkeeping.
 */
#include <errno.h>
#include <stdlib.h>

#include <bx/platform.h>

struct bx_pool {
	void **free; /* stack of free objects, nb_free deep */
	unsigned nb_free;
	unsigned nb_objs;
	size_t slot_size; /* obj_size rounded up to a cache line */
	char *base;       /* nb_objs * slot_size bytes; NULL in debug mode */
	bool debug;       /* objects are individual malloc() blocks */
};

int
bx_pool_create(size_t obj_size, unsigned nb_objs, struct bx_pool **out)
{
	struct bx_pool *p;

	if (obj_size == 0 || nb_objs == 0 || obj_size > (1u << 30)) {
		return -EINVAL;
	}
	p = bx_calloc(1, sizeof(*p));
	if (p == NULL) {
		return -ENOMEM;
	}
	p->slot_size = (obj_size + BX_CACHE_LINE - 1) & ~(size_t)(BX_CACHE_LINE - 1);
	p->nb_objs = nb_objs;
	p->debug = bx_mem_debug();
	p->free = bx_calloc(nb_objs, sizeof(void *));
	if (p->free == NULL) {
		goto out_free;
	}
	if (p->debug) {
		p->nb_free = nb_objs; /* a count only: objects are made on get */
		*out = p;
		return 0;
	}
	p->base = bx_aligned_alloc(BX_CACHE_LINE, p->slot_size * nb_objs);
	if (p->base == NULL) {
		goto out_free;
	}
	for (unsigned i = 0; i < nb_objs; i++) {
		p->free[p->nb_free++] = p->base + (size_t)(nb_objs - 1 - i) * p->slot_size;
	}
	*out = p;
	return 0;

out_free:
	bx_free(p->free);
	bx_free(p);
	return -ENOMEM;
}

void
bx_pool_destroy(struct bx_pool *pool)
{
	if (pool == NULL) {
		return;
	}
	bx_free(pool->base);
	bx_free(pool->free);
	bx_free(pool);
}

void *
bx_pool_get(struct bx_pool *pool)
{
	void *obj;

	if (pool->nb_free == 0) {
		return NULL;
	}
	if (pool->debug) {
		if (posix_memalign(&obj, BX_CACHE_LINE, pool->slot_size) != 0) {
			return NULL;
		}
		pool->nb_free--;
		return obj;
	}
	return pool->free[--pool->nb_free];
}

void
bx_pool_put(struct bx_pool *pool, void *obj)
{
	BX_ASSERT(pool->nb_free < pool->nb_objs);
	if (pool->debug) {
		free(obj);
		pool->nb_free++;
		return;
	}
	BX_ASSERT((char *)obj >= pool->base &&
	          (char *)obj < pool->base + pool->slot_size * pool->nb_objs &&
	          ((char *)obj - pool->base) % pool->slot_size == 0);
	pool->free[pool->nb_free++] = obj;
}

unsigned
bx_pool_avail(const struct bx_pool *pool)
{
	return pool->nb_free;
}

unsigned
bx_pool_capacity(const struct bx_pool *pool)
{
	return pool->nb_objs;
}
