/*
 * Single-producer/single-consumer ring (Lamport's queue with cached
 * indices). Each side owns one cache line and re-reads the other side's
 * index only when its cached copy says the ring is full or empty, so in a
 * steady stream the two cores rarely touch each other's line.
 * Indices run freely over 32 bits; head - tail is the fill even across wrap.
 */
#include <assert.h>
#include <errno.h>

#include <bx/platform.h>

#include "ring_int.h"

struct bx_spsc {
	uint32_t mask; /* capacity - 1; read-only after create */
	uint32_t capacity;
	void **slots;

	struct {
		uint32_t head;       /* next slot to write; written by the producer only */
		uint32_t tail_cache; /* producer's last view of cons.tail */
	} prod __bx_cache_aligned;

	struct {
		uint32_t tail;       /* next slot to read; written by the consumer only */
		uint32_t head_cache; /* consumer's last view of prod.head */
	} cons __bx_cache_aligned;
} __bx_cache_aligned;

static_assert(sizeof(struct bx_spsc) == (size_t)3 * BX_CACHE_LINE, "one line per side");

int
bx_spsc_create(unsigned capacity, struct bx_spsc **out)
{
	uint32_t size = bx_ring_size(capacity);
	struct bx_spsc *r;

	if (size == 0) {
		return -EINVAL;
	}
	r = bx_aligned_alloc(BX_CACHE_LINE, sizeof(*r));
	if (r == NULL) {
		return -ENOMEM;
	}
	*r = (struct bx_spsc){ .mask = size - 1, .capacity = size };
	r->slots = bx_calloc(size, sizeof(void *));
	if (r->slots == NULL) {
		bx_free(r);
		return -ENOMEM;
	}
	*out = r;
	return 0;
}

void
bx_spsc_destroy(struct bx_spsc *r)
{
	if (r == NULL) {
		return;
	}
	bx_free(r->slots);
	bx_free(r);
}

unsigned
bx_spsc_enqueue_burst(struct bx_spsc *r, void *const *objs, unsigned n)
{
	uint32_t head = r->prod.head;
	uint32_t space = r->capacity - (head - r->prod.tail_cache);

	if (space < n) {
		r->prod.tail_cache = __atomic_load_n(&r->cons.tail, __ATOMIC_ACQUIRE);
		space = r->capacity - (head - r->prod.tail_cache);
		n = BX_MIN(n, space);
	}
	for (unsigned i = 0; i < n; i++) {
		r->slots[(head + i) & r->mask] = objs[i];
	}
	/* Release: the slot writes above become visible before the new head. */
	__atomic_store_n(&r->prod.head, head + n, __ATOMIC_RELEASE);
	return n;
}

unsigned
bx_spsc_dequeue_burst(struct bx_spsc *r, void **objs, unsigned n)
{
	uint32_t tail = r->cons.tail;
	uint32_t ready = r->cons.head_cache - tail;

	if (ready < n) {
		r->cons.head_cache = __atomic_load_n(&r->prod.head, __ATOMIC_ACQUIRE);
		ready = r->cons.head_cache - tail;
		n = BX_MIN(n, ready);
	}
	for (unsigned i = 0; i < n; i++) {
		objs[i] = r->slots[(tail + i) & r->mask];
	}
	/* Release: our slot reads finish before the producer may reuse them. */
	__atomic_store_n(&r->cons.tail, tail + n, __ATOMIC_RELEASE);
	return n;
}

unsigned
bx_spsc_count(const struct bx_spsc *r)
{
	uint32_t tail = __atomic_load_n(&r->cons.tail, __ATOMIC_ACQUIRE);
	uint32_t head = __atomic_load_n(&r->prod.head, __ATOMIC_ACQUIRE);

	return BX_MIN(head - tail, r->capacity);
}

unsigned
bx_spsc_capacity(const struct bx_spsc *r)
{
	return r->capacity;
}
