/*
 * The load engine: validator-shaped traffic against one axon.
 *
 * Each worker thread owns an epoll loop and its share of keep-alive
 * connections (one request in flight per connection, as aiohttp does).
 * Closed loop (rate == 0): every connection sends its next request as soon
 * as the previous one is answered. Open loop (rate > 0): a schedule
 * (arrival.h) fixes every request's intended send time in advance; requests
 * wait in a backlog when all connections are busy, and latency is measured
 * from the intended time, so a stalled miner is charged for the requests it
 * delayed (no coordinated omission, peers.md §5). In closed loop latency is
 * measured from the actual send.
 *
 * Every request is signed at send time by one of the identities (round
 * robin), times out after timeout_s like the dendrite's ClientTimeout
 * (status 408), and is read as the dendrite reads it (§4.5): the status
 * from bt_header_axon_status_code, else the JSON axon.status_code, else the
 * HTTP status; process_time; the outputs (handed to an optional scoring
 * hook); and the miner's signatures (bt_header_axon_signature and bx's
 * bt_header_axon_body_signature) are verified when the miner's hotkey is
 * known.
 *
 * Runs are bounded in time (duration + timeout) and in count (max_requests).
 */
#ifndef BX_LOAD_H
#define BX_LOAD_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include <bx/platform.h>

#include "arrival.h"
#include "dendrite.h"

/* Dendrite-side statuses for failures that never produced an answer (§4.3). */
#define BX_LD_ST_TIMEOUT 408 /* total timeout */
#define BX_LD_ST_CONNECT 503 /* connect failed or server disconnected */
#define BX_LD_ST_PARSE   422 /* response not parseable */

enum bx_ld_flags {
	BX_LD_F_WARMUP = 1,  /* intended during warm-up: not in the figures */
	BX_LD_F_SIG_OK = 2,  /* every response signature present verified */
	BX_LD_F_SIG_BAD = 4, /* a response signature failed */
	BX_LD_F_STREAM = 8,  /* answered as a chunked stream */
};

/* One request's outcome (32 bytes). */
struct bx_ld_rec {
	uint64_t t_ns;      /* intended send time, from the run's start */
	uint32_t lat_us10;  /* latency in units of 100 ns (up to 429 s) */
	uint32_t ttfb_us10; /* first response byte, same units */
	float process_time; /* the axon's bt_header_axon_process_time, s; -1 absent */
	float score;        /* scoring hook's answer in [0, 1]; -1 not scored */
	uint16_t status;    /* dendrite status code */
	uint8_t kind;       /* enum bx_dd_kind */
	uint8_t flags;      /* enum bx_ld_flags */
	uint32_t tokens;    /* streamed chunks / generated tokens, when known */
};

/*
 * Scoring hook, called on a worker thread for every 200 response whose body
 * parsed as JSON: returns a score in [0, 1] or -1 (not scored). tokens may
 * be set. Must be thread-safe.
 */
typedef float(bx_ld_score_fn)(void *arg, enum bx_dd_kind kind, json_t *body, uint32_t *tokens);

struct bx_ld_conf {
	/* Target */
	char ip[64];
	unsigned port;
	uint8_t axon_pub[32]; /* the miner's hotkey, for response signatures */
	bool have_axon_pub;
	/* Shape */
	unsigned threads;     /* worker threads (>= 1) */
	unsigned connections; /* total keep-alive connections (>= threads) */
	double rate;          /* requests/s; 0 = closed loop */
	enum bx_arrival_kind arrival;
	uint64_t seed;
	double duration_s;     /* sending stops after this */
	double warmup_s;       /* requests intended before this are not counted */
	uint64_t max_requests; /* hard cap on requests sent */
	double timeout_s;      /* per-request total timeout */
	bool verify_responses; /* verify the miner's signatures */
	/* What to send */
	const struct bx_dd_template *tmpl[BX_DD_NB_KINDS]; /* NULL: kind not in the mix */
	double mix[BX_DD_NB_KINDS];                        /* relative weights */
	struct bx_dd_identity *ids;                        /* borrowed; nonces updated */
	unsigned nb_ids;
	bx_ld_score_fn *score;
	void *score_arg;
	/* Progress: one line a second to this callback (NULL: none). */
	void (*progress)(void *arg, const char *line);
	void *progress_arg;
};

struct bx_ld_result {
	struct bx_ld_rec *recs; /* every completed request, returned-owned (bx_ld_result_fini) */
	uint64_t nb_recs;
	uint64_t sent;
	uint64_t dropped; /* open loop: backlog overflow, never sent */
	uint64_t sig_ok, sig_bad, sig_absent;
	double wall_s; /* from start to the last completion */
	char *sample;  /* body of the first 200 answer (NUL-terminated), returned-owned */
	size_t sample_len;
	double send_window_s; /* duration actually used for sending */
};

/* Sensible defaults: 1 thread, 16 connections, closed loop, 10 s, 12 s timeout. */
void bx_ld_conf_default(struct bx_ld_conf *c);

/*
 * Run the load. Blocks until done. 0, or -EINVAL / -ENOMEM / -errno from
 * socket setup with eb set. Per-request failures are results, not errors.
 */
int bx_ld_run(const struct bx_ld_conf *c, struct bx_ld_result *res, struct bx_errbuf *eb);
void bx_ld_result_fini(struct bx_ld_result *res);

#endif /* BX_LOAD_H */
