/*
 * The Bittensor axon protocol over one parsed HTTP request: routing, bt
 * headers, admission, signature, body hash, handler, response. Port
 * independent: a port hands in complete requests and sends what is appended
 * to the output buffer.
 */
#ifndef BX_DP_AXON_H
#define BX_DP_AXON_H

#include <stdbool.h>
#include <stdint.h>

#include <bx/dataplane.h>

#include "admit.h"
#include "http1.h"
#include "json.h"
#include "synapse.h"

#define BX_AXON_MAX_TYPES 8

/* Per server; read-only while workers run, except the metagraph pointer and
 * epochs. */
struct bx_axon_shared {
	struct bx_dp_conf conf;
	struct bx_http_limits lim;
	struct bx_metagraph *mg; /* atomic pointer; see server.c for reclamation */
	struct bx_replay *replay;
	char hotkey[64];
	size_t hotkey_len;
	char uuid[40]; /* our axon uuid, fixed per server */

	struct {
		bx_synapse_fn *fn;
		void *arg;
	} handlers[BX_AXON_MAX_TYPES];

	unsigned nb_workers;
	char synapse_list[256]; /* "['Synapse', 'TextEmbedding', ...]" */
};

struct bx_axon_ctx;

struct bx_peer {
	char ip[48];
	uint16_t port;
	uint64_t ip_key;
	void *conn;        /* the port's connection, for deferred answers */
	uint32_t conn_gen; /* its generation: a reused slot has another */
};

/* A deferred answer (bx_call_defer). */
struct bx_call_ticket {
	struct bx_axon_ctx *ax;
	uint32_t idx;
	bool busy;
	void *conn;
	uint32_t conn_gen;
	uint8_t type; /* index into bx_synapse_types */
	uint64_t start_wall_ns;
	int fail_status;
	char fail_msg[256];
	char *out_buf; /* outputs, or (streaming) a byte ring of out_cap bytes */
	size_t out_cap, out_used;
	uint32_t out_off[BX_SYN_MAX_FIELDS];
	uint32_t out_len[BX_SYN_MAX_FIELDS];
	bool out_set[BX_SYN_MAX_FIELDS];

	/*
	 * Streaming (bx_ticket_stream). The producer appends at s_head, the
	 * worker takes from s_tail; both count bytes since the start, the ring
	 * position is the count modulo out_cap. `state` is how the producer
	 * hands over: it sets BX_TK_STREAM or BX_TK_DONE together with
	 * BX_TK_QUEUED and puts the ticket on the done ring only if QUEUED was
	 * clear, so a ticket is on the ring at most once.
	 */
	uint32_t state;  /* atomic: BX_TK_* */
	uint64_t s_head; /* atomic: written by the producer */
	uint64_t s_tail; /* atomic: written by the worker */
	/* the worker's own view, from the last bx_axon_next_done() */
	bool seen_stream, seen_done;
	bool head_sent;   /* the response head is in the connection's tx */
	bool keep_alive;  /* what the head said */
	uint32_t req_len; /* bytes of the request, dropped from rx when the stream ends */
};

enum {
	BX_TK_QUEUED = 1, /* on the done ring */
	BX_TK_STREAM = 2, /* bx_ticket_stream() was called */
	BX_TK_DONE = 4,   /* bx_ticket_complete() was called */
};

/* Results of bx_axon_handle(). */
enum {
	BX_AXON_CLOSE = 0,   /* answered; close the connection after it */
	BX_AXON_KEEP = 1,    /* answered; keep the connection */
	BX_AXON_PENDING = 2, /* deferred: nothing written; finish with bx_axon_finish() */
};

/* Per worker; touched by its own thread only. */
struct bx_axon_ctx {
	const struct bx_axon_shared *sh;
	struct bx_tb_table tb_ip, tb_hotkey;
	struct bx_jtok *toks;
	uint32_t tok_cap;
	char *body_buf; /* response body scratch */
	size_t body_cap;
	char *out_buf; /* handler outputs */
	size_t out_cap;
	struct bx_dp_stats stats;
	uint64_t uuid_ctr;
	/* deferred answers: a ticket pool and the ring completed tickets come back on */
	struct bx_call_ticket *tickets;
	uint32_t nb_tickets;
	uint32_t *free_tickets;
	uint32_t nb_free_tickets;
	char *ticket_mem;
	struct bx_mpmc *done;
	void (*wake)(void *arg); /* set by the port: wakes this worker's loop */
	void *wake_arg;
	uint32_t wakers; /* calls of wake in progress (bx_axon_wake_off waits them out) */

	/* SDK-style axon signatures, reused per caller hotkey for up to a second */
	struct {
		uint64_t key;
		uint64_t until_ns;
		int64_t nonce;
		char sig[131];
	} sdk_sig[64];
};

int bx_axon_shared_init(struct bx_axon_shared *sh, const struct bx_dp_conf *conf,
                        struct bx_errbuf *eb);
void bx_axon_shared_fini(struct bx_axon_shared *sh);

int bx_axon_ctx_init(struct bx_axon_ctx *ax, const struct bx_axon_shared *sh);
void bx_axon_ctx_fini(struct bx_axon_ctx *ax);

/*
 * Answer one complete request: the whole response is appended to out.
 * Returns BX_AXON_KEEP, BX_AXON_CLOSE or BX_AXON_PENDING (a handler deferred:
 * keep the request's bytes and call bx_axon_finish() when its ticket comes
 * back from bx_axon_next_done()).
 */
int bx_axon_handle(struct bx_axon_ctx *ax, const struct bx_http_req *req,
                   const struct bx_peer *peer, struct bx_obuf *out);

/*
 * The worker is going away: no ticket signal calls its wake hook and no
 * bx_ticket_abandoned reads its connections from now on (every ticket is
 * abandoned), and none is still doing so when this returns. Tickets completed
 * later (a scheduler past the drain deadline) land in the done ring, which
 * lives until bx_axon_ctx_fini (bx_dp_destroy).
 */
void bx_axon_wake_off(struct bx_axon_ctx *ax);

/*
 * A ticket that completed or has stream bytes, or NULL; sets its
 * seen_stream and seen_done. Worker thread only.
 */
struct bx_call_ticket *bx_axon_next_done(struct bx_axon_ctx *ax);
/*
 * For a ticket that streamed (seen_stream) and did not fail before its head:
 * write the head if not written yet (req is its request, parsed again from
 * the same bytes), then what the producer wrote, as one chunk, as far as out
 * has room, and once the producer completed and everything is out, the last
 * chunk; then the ticket is released. Returns BX_AXON_PENDING (more to come,
 * or no room: call again), BX_AXON_KEEP or BX_AXON_CLOSE (answered; a failure
 * after the head ends it with BX_AXON_CLOSE and no last chunk). req may be
 * NULL once the head is written.
 */
int bx_axon_stream(struct bx_axon_ctx *ax, const struct bx_http_req *req,
                   const struct bx_peer *peer, struct bx_call_ticket *t, struct bx_obuf *out);
/* A stream ticket whose connection is gone: drop its bytes; release it once it
 * completed. */
void bx_axon_stream_orphan(struct bx_axon_ctx *ax, struct bx_call_ticket *t);
/*
 * Write the answer of a completed ticket for the same request (parsed again
 * from the same bytes) and release the ticket. Returns BX_AXON_KEEP or
 * BX_AXON_CLOSE.
 */
int bx_axon_finish(struct bx_axon_ctx *ax, const struct bx_http_req *req,
                   const struct bx_peer *peer, struct bx_call_ticket *t, struct bx_obuf *out);
/* Give a ticket back without answering (its connection is gone). */
void bx_axon_ticket_release(struct bx_axon_ctx *ax, struct bx_call_ticket *t);

/* Answer an HTTP-level error (-status from the parser); the connection then
 * closes. */
void bx_axon_http_error(struct bx_axon_ctx *ax, int status, struct bx_obuf *out);

#endif
