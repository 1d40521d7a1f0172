/*
 * A tiny axon for tests on 127.0.0.1: one thread per connection, verifies
 * each request's sr25519 signature and body hash as the stock axon does
 * (bittensor-protocol.md §3.2) and answers 200 with a signed success
 * response (or 401). Knobs: a delay per request, one long stall, signing
 * with the wrong key, and an embedding answer of a given vector.
 */
#ifndef BX_TEST_RESPONDER_H
#define BX_TEST_RESPONDER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <bx/crypto.h>

struct responder {
	int lfd;
	unsigned port;
	struct bx_sr25519_keypair *kp;    /* the miner's hotkey */
	struct bx_sr25519_keypair *wrong; /* signs responses when bad_sig */
	char ss58[BX_SS58_MAX_LEN];
	/* knobs */
	unsigned delay_us; /* before every answer */
	uint64_t stall_at; /* request number (1-based) that stalls; 0 none */
	unsigned stall_ms;
	bool bad_sig;
	bool trivial;           /* no verification, no response signature: a bare echo */
	const float *embedding; /* answer TextEmbedding with this vector per text */
	unsigned dim;
	const char
		*stream; /* answer generation as a chunked stream of these '\n'-separated tokens */
	unsigned token_delay_us;
	/* counters */
	uint64_t requests, verified, rejected, accepted_conns;
	bool stop;     /* atomic */
	unsigned live; /* connection threads running (atomic) */
	int fds[1024]; /* their sockets, shut down by responder_stop */
	pthread_t acceptor;
};

/* Listen on 127.0.0.1 (ephemeral port) and serve in the background. 0 or -errno. */
int responder_start(struct responder *r, uint8_t seed_fill);
/* Stop accepting, close every connection, wait for the threads, free the keys. */
void responder_stop(struct responder *r);

#endif
