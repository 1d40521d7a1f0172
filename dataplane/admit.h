/*
 * Admission before crypto: nonce freshness, the replay cache (shared by all
 * workers, lock-free) and token buckets (per worker, no sharing).
 */
#ifndef BX_DP_ADMIT_H
#define BX_DP_ADMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* SDK constants (bittensor utils/axon_utils.py, core/axon.py). */
#define BX_NONCE_ALLOWED_DELTA_NS 4000000000LL
#define BX_V_7_2_0                7002000

/*
 * The v7.2+ freshness rule: a nonce is stale when
 * nonce <= now - 4 s - timeout. Returns 0, 1 (stale: msg gets the SDK's
 * "Nonce is too old: acceptable delta is %.2f seconds but request was %.2f
 * seconds old"), or 2 (further in the future than future_ns).
 */
int bx_nonce_window(int64_t nonce, double timeout_s, int64_t now_ns, uint64_t future_ns, char *msg,
                    size_t cap);

struct bx_replay;

int bx_replay_create(unsigned slots, struct bx_replay **out);
void bx_replay_destroy(struct bx_replay *r);
/* Key for (hotkey, uuid, nonce). */
uint64_t bx_replay_key(const char *hotkey, size_t hk_len, const char *uuid, size_t uuid_len,
                       int64_t nonce);
/* true if key was recorded and has not expired. */
bool bx_replay_seen(const struct bx_replay *r, uint64_t key, uint32_t now_s);
/* Record key until now_s + ttl_s. 0, -EEXIST (already there: a replay), -ENOSPC
 * (no room). */
int bx_replay_insert(struct bx_replay *r, uint64_t key, uint32_t now_s, uint32_t ttl_s);

/* A table of token buckets keyed by a 64-bit hash; collisions share a bucket.
 */
struct bx_tb {
	uint64_t key;
	uint64_t last_ns;
	double tokens;
};

struct bx_tb_table {
	struct bx_tb *e;
	uint32_t mask;
	double rate;  /* tokens per second */
	double burst; /* bucket size */
};

int bx_tb_init(struct bx_tb_table *t, unsigned entries, double rate, double burst);
void bx_tb_fini(struct bx_tb_table *t);
/* Take one token; false when the bucket is empty. Always true when rate is 0.
 */
bool bx_tb_take(struct bx_tb_table *t, uint64_t key, uint64_t now_ns);

uint64_t bx_hash64(const void *data, size_t n, uint64_t seed);

#endif
