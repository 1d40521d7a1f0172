/* Admission: nonce window, replay cache, token buckets. See admit.h. */
#include "admit.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <bx/platform.h>

int
bx_nonce_window(int64_t nonce, double timeout_s, int64_t now_ns, uint64_t future_ns, char *msg,
                size_t cap)
{
	double timeout_ns = timeout_s * 1e9;

	if ((double)nonce <= (double)(now_ns - BX_NONCE_ALLOWED_DELTA_NS) - timeout_ns) {
		double diff = ((double)now_ns - (double)nonce) / 1e9; /* no int64 overflow */
		double allowed = ((double)BX_NONCE_ALLOWED_DELTA_NS + timeout_ns) / 1e9;

		snprintf(msg, cap,
		         "Nonce is too old: acceptable delta is %.2f seconds but request was "
		         "%.2f seconds old",
		         allowed, diff);
		return 1;
	}
	if (nonce > now_ns && (uint64_t)(nonce - now_ns) > future_ns) {
		snprintf(msg, cap, "Nonce is too far in the future: %.2f seconds ahead",
		         (double)(nonce - now_ns) / 1e9);
		return 2;
	}
	return 0;
}

/* ---------------- replay cache ---------------- */

/*
 * Each slot is one 64-bit word: a 40-bit fingerprint and a 24-bit expiry in
 * seconds (mod 2^24, about 194 days), so a slot changes with one CAS and a
 * reader never sees half an entry.
 */
#define RP_PROBE 16

struct bx_replay {
	uint32_t mask;
	uint64_t *slots;
};

static inline uint64_t
fp_of(uint64_t key)
{
	uint64_t fp = key >> 24;

	return fp ? fp : 1;
}

static inline bool
live(uint64_t slot, uint32_t now_s)
{
	uint32_t d = ((uint32_t)slot - now_s) & 0xffffff;

	return slot != 0 && d != 0 && d < 0x800000;
}

int
bx_replay_create(unsigned slots, struct bx_replay **out)
{
	struct bx_replay *r;
	uint32_t n;

	for (n = 64; n < slots && n < (1u << 30); n <<= 1) {
		;
	}
	r = bx_calloc(1, sizeof(*r));
	if (!r) {
		return -ENOMEM;
	}
	r->slots = bx_calloc(n, sizeof(uint64_t));
	if (!r->slots) {
		bx_free(r);
		return -ENOMEM;
	}
	r->mask = n - 1;
	*out = r;
	return 0;
}

void
bx_replay_destroy(struct bx_replay *r)
{
	if (!r) {
		return;
	}
	bx_free(r->slots);
	bx_free(r);
}

uint64_t
bx_hash64(const void *data, size_t n, uint64_t seed)
{
	const uint8_t *p = data;
	uint64_t h = seed ^ 0x9e3779b97f4a7c15ull;

	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 0x100000001b3ull;
	}
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ull;
	h ^= h >> 33;
	return h;
}

uint64_t
bx_replay_key(const char *hotkey, size_t hk_len, const char *uuid, size_t uuid_len, int64_t nonce)
{
	uint64_t h = bx_hash64(hotkey, hk_len, 1);

	h = bx_hash64(uuid, uuid_len, h);
	return bx_hash64(&nonce, sizeof(nonce), h);
}

bool
bx_replay_seen(const struct bx_replay *r, uint64_t key, uint32_t now_s)
{
	uint64_t fp = fp_of(key);

	for (uint32_t k = 0; k < RP_PROBE; k++) {
		uint64_t s = __atomic_load_n(&r->slots[(key + k) & r->mask], __ATOMIC_ACQUIRE);

		if ((s >> 24) == fp && live(s, now_s)) {
			return true;
		}
	}
	return false;
}

int
bx_replay_insert(struct bx_replay *r, uint64_t key, uint32_t now_s, uint32_t ttl_s)
{
	uint64_t fp = fp_of(key);
	uint64_t want = fp << 24 | ((now_s + ttl_s) & 0xffffff);

	for (int tries = 0; tries < 4; tries++) {
		uint64_t *cand = NULL, cand_old = 0;

		for (uint32_t k = 0; k < RP_PROBE; k++) {
			uint64_t *p = &r->slots[(key + k) & r->mask];
			uint64_t s = __atomic_load_n(p, __ATOMIC_ACQUIRE);

			if (live(s, now_s)) {
				if ((s >> 24) == fp) {
					return -EEXIST;
				}
			} else if (!cand) {
				cand = p;
				cand_old = s;
			}
		}
		if (!cand) {
			return -ENOSPC;
		}
		if (__atomic_compare_exchange_n(cand, &cand_old, want, false, __ATOMIC_ACQ_REL,
		                                __ATOMIC_ACQUIRE)) {
			return 0;
		}
	}
	return -ENOSPC;
}

/* ---------------- token buckets ---------------- */

int
bx_tb_init(struct bx_tb_table *t, unsigned entries, double rate, double burst)
{
	uint32_t n;

	for (n = 16; n < entries && n < (1u << 24); n <<= 1) {
		;
	}
	t->e = bx_calloc(n, sizeof(*t->e));
	if (!t->e) {
		return -ENOMEM;
	}
	t->mask = n - 1;
	t->rate = rate;
	t->burst = burst < 1 ? 1 : burst;
	return 0;
}

void
bx_tb_fini(struct bx_tb_table *t)
{
	bx_free(t->e);
	t->e = NULL;
}

bool
bx_tb_take(struct bx_tb_table *t, uint64_t key, uint64_t now_ns)
{
	struct bx_tb *b;

	if (t->rate <= 0) {
		return true;
	}
	b = &t->e[key & t->mask];
	if (b->key != key || b->last_ns == 0) {
		b->key = key;
		b->tokens = t->burst;
	} else {
		b->tokens += (double)(now_ns - b->last_ns) * 1e-9 * t->rate;
		if (b->tokens > t->burst) {
			b->tokens = t->burst;
		}
	}
	b->last_ns = now_ns;
	if (b->tokens < 1) {
		return false;
	}
	b->tokens -= 1;
	return true;
}
