/*
 * bench_crypto: sr25519 sign/verify, SHA3-256 and SS58 decode rates on one
 * core, with libsodium's crypto_sign_ed25519_verify_detached in the same run
 * as the yardstick. One JSON line per figure (bx_bench.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "bx/crypto.h"
#include "bx_bench.h"

#define WINDOW_NS 150000000ULL /* per sample */
#define ROUNDS    5 /* samples per figure, interleaved; the best one counts (shared machine) */

#define BATCH 64

struct bench_ctx {
	struct bx_sr25519_keypair *kp;
	const uint8_t *bsigs[BATCH], *bpubs[BATCH];
	const void *bmsgs[BATCH];
	size_t blens[BATCH];
	uint8_t msg[128], sig[64], pub[32];
	struct bx_sr25519_public_prepared prep;
	uint8_t ed_pk[32], ed_sk[64], ed_sig[64];
	uint8_t *big;
	size_t big_len;
	char addr[BX_SS58_MAX_LEN];
	volatile int sink;
};

typedef void(bench_fn)(struct bench_ctx *b, unsigned n);

static void
run_sign(struct bench_ctx *b, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		b->sink += bx_sr25519_sign(b->sig, b->msg, sizeof(b->msg), b->kp);
	}
}

static void
run_verify(struct bench_ctx *b, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		b->sink += bx_sr25519_verify(b->sig, b->msg, sizeof(b->msg), b->pub);
	}
}

/* n calls = n signatures, checked 16 or 64 at a time */
static void
run_batch(struct bench_ctx *b, unsigned n, size_t per)
{
	for (unsigned i = 0; i < n; i += (unsigned)per) {
		b->sink += bx_sr25519_verify_batch(b->bsigs, b->bmsgs, b->blens, b->bpubs, per);
	}
}

static void
run_batch16(struct bench_ctx *b, unsigned n)
{
	run_batch(b, n, 16);
}

static void
run_batch64(struct bench_ctx *b, unsigned n)
{
	run_batch(b, n, BATCH);
}

static void
run_verify_prepared(struct bench_ctx *b, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		b->sink += bx_sr25519_verify_prepared(b->sig, b->msg, sizeof(b->msg), &b->prep);
	}
}

static void
run_verify_ref(struct bench_ctx *b, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		b->sink += bx_sr25519_verify_ref(b->sig, "substrate", 9, b->msg, sizeof(b->msg),
		                                 b->pub);
	}
}

static void
run_ed25519(struct bench_ctx *b, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		b->sink += crypto_sign_ed25519_verify_detached(b->ed_sig, b->msg, sizeof(b->msg),
		                                               b->ed_pk);
	}
}

static void
run_sha3(struct bench_ctx *b, unsigned n)
{
	uint8_t out[32];

	for (unsigned i = 0; i < n; i++) {
		bx_sha3_256(out, b->big, b->big_len);
		b->sink += out[0];
	}
}

static void
run_ss58(struct bench_ctx *b, unsigned n)
{
	uint8_t pub[32];
	size_t len = strlen(b->addr);

	for (unsigned i = 0; i < n; i++) {
		b->sink += bx_ss58_decode(b->addr, len, pub, NULL, NULL);
	}
}

/*
 * This thread's CPU time: rates per core stay meaningful while other
 * processes share the machine (time spent descheduled is not counted).
 */
static uint64_t
cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* Calls per CPU second of fn, growing the batch until one window has passed. */
static double
measure(struct bench_ctx *b, bench_fn *fn)
{
	unsigned n = 1;
	uint64_t t0, dt;

	fn(b, 1); /* warm */
	for (;;) {
		t0 = cpu_ns();
		fn(b, n);
		dt = cpu_ns() - t0;
		if (dt >= WINDOW_NS || n >= (1u << 30)) {
			break;
		}
		n = dt < WINDOW_NS / 16 ? n * 8 : n * 2;
	}
	return (double)n * 1e9 / (double)dt;
}

static int
setup(struct bench_ctx *b)
{
	uint8_t seed[32];

	memset(b, 0, sizeof(*b));
	if (bx_crypto_init() != 0) {
		return -1;
	}
	randombytes_buf(seed, sizeof(seed));
	randombytes_buf(b->msg, sizeof(b->msg));
	if (bx_sr25519_keypair_from_seed(seed, &b->kp) != 0) {
		return -1;
	}
	memcpy(b->pub, bx_sr25519_public(b->kp), 32);
	if (bx_sr25519_public_prepare(&b->prep, b->pub) != 0) {
		return -1;
	}
	if (bx_sr25519_sign(b->sig, b->msg, sizeof(b->msg), b->kp) != 0 ||
	    bx_sr25519_verify(b->sig, b->msg, sizeof(b->msg), b->pub) != 0) {
		return -1;
	}
	for (int i = 0; i < BATCH; i++) {
		/* the same signature repeated: the work per entry is the same as for distinct ones */
		b->bsigs[i] = b->sig;
		b->bpubs[i] = b->pub;
		b->bmsgs[i] = b->msg;
		b->blens[i] = sizeof(b->msg);
	}
	crypto_sign_ed25519_keypair(b->ed_pk, b->ed_sk);
	crypto_sign_ed25519_detached(b->ed_sig, NULL, b->msg, sizeof(b->msg), b->ed_sk);
	b->big_len = 1 << 20;
	b->big = malloc(b->big_len);
	if (b->big == NULL) {
		return -1;
	}
	randombytes_buf(b->big, b->big_len);
	return bx_ss58_encode(b->addr, sizeof(b->addr), b->pub, BX_SS58_BITTENSOR);
}

int
main(void)
{
	struct bench_ctx b;
	double sign, verify, ref, ed, sha3, ss58, b16, b64, prep;

	if (setup(&b) != 0) {
		fprintf(stderr, "bench_crypto: setup failed\n");
		return 1;
	}
	ed = verify = ref = sign = sha3 = ss58 = b16 = b64 = prep = 0;
	for (int r = 0; r < ROUNDS; r++) {
		/* the yardstick and the verifiers side by side in every round */
		ed = BX_MAX(ed, measure(&b, run_ed25519));
		verify = BX_MAX(verify, measure(&b, run_verify));
		ref = BX_MAX(ref, measure(&b, run_verify_ref));
		prep = BX_MAX(prep, measure(&b, run_verify_prepared));
		b16 = BX_MAX(b16, measure(&b, run_batch16));
		b64 = BX_MAX(b64, measure(&b, run_batch64));
		sign = BX_MAX(sign, measure(&b, run_sign));
		sha3 = BX_MAX(sha3, measure(&b, run_sha3) * (double)b.big_len / 1e6);
		ss58 = BX_MAX(ss58, measure(&b, run_ss58));
	}

	bx_bench_emit("crypto", "sr25519_sign", "ops_per_s", sign, "1/s");
	bx_bench_emit("crypto", "sr25519_verify", "ops_per_s", verify, "1/s");
	bx_bench_emit("crypto", "sr25519_verify_ref", "ops_per_s", ref, "1/s");
	bx_bench_emit("crypto", "sr25519_verify_prepared", "ops_per_s", prep, "1/s");
	bx_bench_emit("crypto", "sr25519_verify_batch16", "sigs_per_s", b16, "1/s");
	bx_bench_emit("crypto", "sr25519_verify_batch64", "sigs_per_s", b64, "1/s");
	bx_bench_emit("crypto", "ed25519_verify_libsodium", "ops_per_s", ed, "1/s");
	bx_bench_emit("crypto", "sr25519_verify_cost_vs_ed25519", "ratio", ed / verify, "x");
	bx_bench_emit("crypto", "sr25519_verify_ref_cost_vs_ed25519", "ratio", ed / ref, "x");
	bx_bench_emit("crypto", "sha3_256_1MiB", "throughput", sha3, "MB/s");
	bx_bench_emit("crypto", "ss58_decode", "ops_per_s", ss58, "1/s");
	bx_sr25519_keypair_destroy(b.kp);
	free(b.big);
	return b.sink == 12345 ? 2 : 0;
}
