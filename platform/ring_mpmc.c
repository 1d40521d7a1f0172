/*
 * Multi-producer/multi-consumer bounded ring (Vyukov's queue): each slot
 * carries a sequence number that says whose turn it is, so producers and
 * consumers claim slots with one compare-and-swap on their own position
 * counter and never wait on each other's half-finished slots elsewhere.
 *   slot free for the producer at position p:   seq == p
 *   slot full for the consumer at position p:   seq == p + 1
 *   after a read, free for the next lap:        seq = p + capacity
 * Positions are 64-bit and never wrap in practice.
 */
#include <errno.h>

#include <bx/platform.h>

#include "ring_int.h"

struct cell {
	uint64_t seq;
	void *obj;
};

struct bx_mpmc {
	struct cell *cells;
	uint64_t mask;
	uint32_t capacity;

	uint64_t enq_pos __bx_cache_aligned;
	uint64_t deq_pos __bx_cache_aligned;
} __bx_cache_aligned;

int
bx_mpmc_create(unsigned capacity, struct bx_mpmc **out)
{
	uint32_t size = bx_ring_size(capacity);
	struct bx_mpmc *r;

	if (size == 0) {
		return -EINVAL;
	}
	r = bx_aligned_alloc(BX_CACHE_LINE, sizeof(*r));
	if (r == NULL) {
		return -ENOMEM;
	}
	*r = (struct bx_mpmc){ .mask = size - 1, .capacity = size };
	r->cells = bx_aligned_alloc(BX_CACHE_LINE, size * sizeof(struct cell));
	if (r->cells == NULL) {
		bx_free(r);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < size; i++) {
		r->cells[i] = (struct cell){ .seq = i, .obj = NULL };
	}
	*out = r;
	return 0;
}

void
bx_mpmc_destroy(struct bx_mpmc *r)
{
	if (r == NULL) {
		return;
	}
	bx_free(r->cells);
	bx_free(r);
}

static bool
enqueue_one(struct bx_mpmc *r, void *obj)
{
	uint64_t pos = __atomic_load_n(&r->enq_pos, __ATOMIC_RELAXED);
	struct cell *c;

	for (;;) {
		int64_t diff;

		c = &r->cells[pos & r->mask];
		diff = (int64_t)(__atomic_load_n(&c->seq, __ATOMIC_ACQUIRE) - pos);
		if (diff == 0) {
			if (__atomic_compare_exchange_n(&r->enq_pos, &pos, pos + 1, true,
			                                __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
				break;
			}
		} else if (diff < 0) {
			return false; /* the slot still holds last lap's object: full */
		} else {
			pos = __atomic_load_n(&r->enq_pos, __ATOMIC_RELAXED);
		}
	}
	c->obj = obj;
	__atomic_store_n(&c->seq, pos + 1, __ATOMIC_RELEASE);
	return true;
}

static bool
dequeue_one(struct bx_mpmc *r, void **obj)
{
	uint64_t pos = __atomic_load_n(&r->deq_pos, __ATOMIC_RELAXED);
	struct cell *c;

	for (;;) {
		int64_t diff;

		c = &r->cells[pos & r->mask];
		diff = (int64_t)(__atomic_load_n(&c->seq, __ATOMIC_ACQUIRE) - (pos + 1));
		if (diff == 0) {
			if (__atomic_compare_exchange_n(&r->deq_pos, &pos, pos + 1, true,
			                                __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
				break;
			}
		} else if (diff < 0) {
			return false; /* not yet written: empty */
		} else {
			pos = __atomic_load_n(&r->deq_pos, __ATOMIC_RELAXED);
		}
	}
	*obj = c->obj;
	__atomic_store_n(&c->seq, pos + r->mask + 1, __ATOMIC_RELEASE);
	return true;
}

unsigned
bx_mpmc_enqueue_burst(struct bx_mpmc *r, void *const *objs, unsigned n)
{
	unsigned i = 0;

	while (i < n && enqueue_one(r, objs[i])) {
		i++;
	}
	return i;
}

unsigned
bx_mpmc_dequeue_burst(struct bx_mpmc *r, void **objs, unsigned n)
{
	unsigned i = 0;

	while (i < n && dequeue_one(r, &objs[i])) {
		i++;
	}
	return i;
}

unsigned
bx_mpmc_count(const struct bx_mpmc *r)
{
	uint64_t deq = __atomic_load_n(&r->deq_pos, __ATOMIC_ACQUIRE);
	uint64_t enq = __atomic_load_n(&r->enq_pos, __ATOMIC_ACQUIRE);

	return enq > deq ? (unsigned)BX_MIN(enq - deq, r->capacity) : 0;
}

unsigned
bx_mpmc_capacity(const struct bx_mpmc *r)
{
	return r->capacity;
}
