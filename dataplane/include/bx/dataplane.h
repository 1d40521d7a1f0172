/*
 * bx dataplane: the request path of a Bittensor miner. HTTP/1.1 on a port
 * backend (io_uring today, DPDK later), the axon protocol of the Python SDK
 * byte-for-byte (shared/research/bittensor-protocol.md), admission before
 * any crypto, sr25519 verification, signed responses. See dataplane/README.md.
 *
 * Life cycle, as bxd uses it:
 *
 *     struct bx_dp_conf c;
 *     bx_dp_conf_default(&c);              // then set port, cpus, hotkey,
 * limits bx_metagraph_load(path, &mg, &eb);   // or bx_metagraph_parse()
 *     bx_dp_create(&c, mg, &dp, &eb);      // mg is consumed
 *     bx_dp_set_handler(dp, "TextEmbedding", fn, arg);   // optional, before
 * start bx_dp_start(dp, &eb);                // one pinned thread per cpu
 *     ...  bx_dp_reload_metagraph(dp, path, &eb);        // on SIGHUP, any
 * thread bx_dp_stop(dp);                      // stop accepting, drain, join
 *     bx_dp_destroy(dp);
 *
 * Conventions as in bx/platform.h.
 */
#ifndef BX_DATAPLANE_H
#define BX_DATAPLANE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bx/platform.h"

struct bx_sr25519_keypair;

#define BX_DP_MAX_CORES 64

/* ======================= Metagraph ======================= */

struct bx_mg_neuron {
	uint32_t uid;
	bool validator_permit;
	double stake;
	uint8_t hotkey_pub[32];
	char hotkey[64];  /* SS58 as in the file */
	char coldkey[64]; /* SS58, may be empty */
	char ip[48];      /* may be empty */
};

/* An immutable snapshot; the server swaps whole snapshots. */
struct bx_metagraph;

/*
 * Parse a metagraph snapshot. JSON: either an array of neurons or an object
 * {"netuid": n, "block": n, "neurons": [...]}; a neuron is
 * {"uid": 0, "hotkey": "5...", "coldkey": "5...", "stake": 1234.5,
 *  "validator_permit": true, "ip": "1.2.3.4"} (coldkey and ip optional).
 * Hotkeys must decode as SS58 and be unique. -EINVAL with the neuron named
 * in eb, -ENOMEM. `name` is used in messages.
 */
int bx_metagraph_parse(const char *text, size_t len, const char *name, struct bx_metagraph **out,
                       struct bx_errbuf *eb);
int bx_metagraph_load(const char *path, struct bx_metagraph **out, struct bx_errbuf *eb);
void bx_metagraph_free(struct bx_metagraph *mg);
unsigned bx_metagraph_size(const struct bx_metagraph *mg);
int64_t bx_metagraph_block(const struct bx_metagraph *mg); /* -1 if the file had none */
/* The neuron with this SS58 hotkey, or NULL. */
const struct bx_mg_neuron *bx_metagraph_find(const struct bx_metagraph *mg, const char *hotkey,
                                             size_t len);

/* ======================= Configuration ======================= */

struct bx_dp_conf {
	/* listening */
	char listen_addr[64];           /* IPv4 or IPv6 literal; "0.0.0.0" */
	uint16_t port;                  /* 8091; 0 = any free port (tests), see bx_dp_port() */
	unsigned nb_cores;              /* worker threads, one listener and one ring each */
	unsigned cpus[BX_DP_MAX_CORES]; /* kernel CPU of each worker */
	bool pin;                       /* pin workers to cpus[] */
	const char *port_backend;       /* "io_uring" (default) */

	/* connections, per worker */
	unsigned max_conns;          /* open connections; more are closed at accept */
	unsigned rx_buf;             /* receive buffer per connection: bounds one request */
	unsigned tx_buf;             /* send buffer per connection: bounds one response */
	unsigned idle_timeout_ms;    /* idle keep-alive connection (> dendrite's 15 s) */
	unsigned request_timeout_ms; /* a started request must complete within */
	unsigned ring_entries;

	/* HTTP limits */
	uint32_t max_request_line;
	uint32_t max_headers;
	uint32_t max_header_line;
	uint32_t max_head;
	uint32_t max_body; /* <= rx_buf - max_head */

	/* admission, cheapest first */
	bool require_permit;              /* caller must hold a validator permit */
	double min_stake;                 /* caller's stake at least this */
	double ip_rate, ip_burst;         /* token bucket per peer IP, requests/s over all
                               workers; 0 = off */
	double hotkey_rate, hotkey_burst; /* per caller hotkey; 0 = off */
	unsigned replay_slots;            /* replay cache entries (shared, lock-free) */
	uint64_t nonce_future_ns;         /* reject nonces further ahead than this */
	bool allow_legacy_nonce;          /* accept dendrites < 7.2.0 (no freshness window) */

	/* crypto */
	const struct bx_sr25519_keypair
		*hotkey;        /* axon hotkey, borrowed; must outlive the server */
	bool verify_signatures; /* false only for benchmarks (unsigned echo) */
	bool sign_responses;    /* axon.signature and the body signature */
	uint32_t version;       /* our version_as_int in bt_header_axon_version */

	/* DPDK port (port_backend "dpdk"); 0 or "" picks the default noted */
	char dpdk_eal_args[256];  /* EAL arguments, space separated: "--no-huge -m 512" */
	char dpdk_device[128];    /* wire port devargs: "0000:01:00.0", "net_tap0,iface=bx0" */
	char dpdk_exception[128]; /* kernel exception port devargs ("net_tap1,iface=bx-mgmt");
				     "" = traffic not for the appliance is dropped */
	char dpdk_addr[32];       /* the appliance's IPv4 on the wire, "10.0.0.2/24" */
	char dpdk_gateway[16];    /* IPv4 next hop off the subnet; "" = none */
	unsigned dpdk_mbufs;      /* mbufs per NUMA node (0: from max_conns and queues) */
	unsigned dpdk_rx_desc;    /* RX descriptors per queue (0: 1024) */
	unsigned dpdk_tx_desc;    /* TX descriptors per queue (0: 1024) */
	unsigned dpdk_idle_us;    /* sleep after 256 empty polls; 0 = busy poll (production) */
	char dpdk_allow[256];     /* allow-listed networks besides the metagraph's validator
				     IPs: "10.0.0.0/8, 192.0.2.7" */
	bool dpdk_allowlist_only; /* drop every source not on the allow-list */
	double dpdk_syn_rate, dpdk_syn_burst;   /* SYNs/s per open-lane source; 0 = off */
	double dpdk_pkt_rate, dpdk_pkt_burst;   /* packets/s per open-lane source; 0 = off */
	double dpdk_open_rate, dpdk_open_burst; /* packets/s of the whole open lane; 0 = off */
};

/* Defaults: 0.0.0.0:8091, 1 core (cpu 0, pinned), 1024 conns, 64 KiB buffers,
 * 20 s idle, permit required, replay 1M slots, verify and sign on. */
void bx_dp_conf_default(struct bx_dp_conf *c);

/* ======================= Synapse handlers ======================= */

/*
 * One verified, admitted request, handed to a synapse handler on the worker
 * thread. Valid only during the call.
 */
struct bx_call;

/* Name of the synapse ("TextEmbedding"). */
const char *bx_call_synapse(const struct bx_call *c);
/* Caller's SS58 hotkey (verified) and its metagraph record. */
const char *bx_call_hotkey(const struct bx_call *c);
const struct bx_mg_neuron *bx_call_neuron(const struct bx_call *c);
/* Raw JSON text of a request field, or NULL when absent. */
const char *bx_call_field(const struct bx_call *c, const char *name, size_t *len);
/* Seconds the dendrite will wait (the `timeout` header). */
double bx_call_timeout(const struct bx_call *c);
/*
 * Set an output field (declared as output in the synapse table) to a JSON
 * value; copied. 0, -ENOENT (not an output field), -ENOSPC (response too big).
 */
int bx_call_set_output(struct bx_call *c, const char *field, const char *json, size_t len);
/* Answer with an error status and message instead ({"message": ...}). Returns
 * 0. */
int bx_call_fail(struct bx_call *c, int status, const char *message);

/*
 * A handler returns 0 (answered: outputs set, or bx_call_fail), -errno
 * (answered with 500), or BX_CALL_PENDING after bx_call_defer(). Handlers run
 * on the worker thread: they must not block.
 */
typedef int bx_synapse_fn(void *arg, struct bx_call *call);

/* ---- answering later (inference) ---- */

#define BX_CALL_PENDING 1

/*
 * A ticket to answer this request later, from any thread. The handler then
 * returns BX_CALL_PENDING. The connection answers nothing behind this request
 * until the ticket completes (responses stay in order). The request's fields
 * (bx_call_field) are valid only during the handler: copy what the work needs.
 * NULL when the worker has no free ticket (answer 503 instead). A ticket
 * whose connection closed meanwhile is dropped quietly. bx_dp_stop() waits
 * for tickets until its drain deadline; one still out then may be used
 * until bx_dp_destroy() (it is abandoned and its answer dropped), so stop the
 * threads that hold tickets before destroying the dataplane.
 */
struct bx_call_ticket;
struct bx_call_ticket *bx_call_defer(struct bx_call *c);
/* As bx_call_set_output / bx_call_fail, on a ticket (any thread, before complete). */
int bx_ticket_set_output(struct bx_call_ticket *t, const char *field, const char *json, size_t len);
int bx_ticket_fail(struct bx_call_ticket *t, int status, const char *message);
/*
 * Hand the answer to the worker (any thread, once); t is not to be used after.
 * After bx_ticket_stream(): ends the stream with the last chunk (0 CRLF CRLF),
 * or, after bx_ticket_fail(), as bx_ticket_stream() says.
 */
void bx_ticket_complete(struct bx_call_ticket *t);
/*
 * Stream part of the answer (streaming synapses: StreamingTextGeneration).
 * Any one thread (the producer), before bx_ticket_complete(), as often as it
 * likes; never blocks. The first call makes the worker send the head: 200,
 * content-type: text/event-stream, transfer-encoding: chunked and the same bt
 * headers as a non-streamed 200 (process_time is then the time to the head).
 * The bytes of each call then go out as an HTTP chunk as soon as the worker
 * picks them up; calls that come faster than that are coalesced into one
 * chunk, in order. Nothing is added: the chunks concatenated are exactly the
 * bytes given. len 0 only starts the head.
 *
 * The bytes are copied into the ticket's own buffer (tx_buf bytes, shared
 * with the outputs: once a ticket streams, bx_ticket_set_output() is -EBUSY,
 * and the other way round). Returns 0; -ENOBUFS when they do not fit in what
 * the worker has not sent yet: nothing was taken, so keep them and call again
 * later with them (and whatever came since) — the client reads slower than
 * the producer writes; or give up with bx_ticket_fail + bx_ticket_complete.
 * -EINVAL for a synapse that does not stream, -EBUSY after set_output.
 *
 * Failures: bx_ticket_fail() before the worker sent the head still answers
 * the status and message as an ordinary error. Once the head went out, a
 * failed ticket ends the stream by closing the connection without the last
 * chunk: the client sees an incomplete response, never a short one that
 * looks whole. If the client goes away, bx_ticket_abandoned() turns true:
 * stop producing and complete the ticket. Like any deferred answer, the
 * stream must end within request_timeout_ms (the slow-request timer that
 * runs while a request's bytes are held) or the connection is closed.
 */
int bx_ticket_stream(struct bx_call_ticket *t, const void *data, size_t len);
/*
 * Any thread, before complete: true once the connection the answer is for has
 * closed, so the answer would be dropped (a scheduler skips the work). A hint:
 * it may turn true just after it returned false.
 */
bool bx_ticket_abandoned(const struct bx_call_ticket *t);

/* Names of the built-in synapse types, for listing. NULL-terminated. */
extern const char *const bx_dp_synapse_names[];

/* ======================= Server ======================= */

/* Rejections, counted per reason. */
enum bx_dp_reason {
	BX_DP_R_HTTP_BAD,         /* 400/505/501 at the HTTP layer */
	BX_DP_R_HTTP_LIMIT,       /* 413/414/431 */
	BX_DP_R_METHOD,           /* 405 */
	BX_DP_R_UNKNOWN_SYNAPSE,  /* 404 */
	BX_DP_R_BAD_HEADERS,      /* 400: bt headers do not parse */
	BX_DP_R_NO_HOTKEY,        /* 401 */
	BX_DP_R_NO_NONCE,         /* 401 */
	BX_DP_R_NONCE_STALE,      /* 401 */
	BX_DP_R_NONCE_FUTURE,     /* 401 */
	BX_DP_R_NONCE_LEGACY,     /* 401: pre-7.2 dendrite while not allowed */
	BX_DP_R_NOT_REGISTERED,   /* 403 */
	BX_DP_R_NO_PERMIT,        /* 403 */
	BX_DP_R_LOW_STAKE,        /* 403 */
	BX_DP_R_RATE_IP,          /* 429 */
	BX_DP_R_RATE_HOTKEY,      /* 429 */
	BX_DP_R_AXON_MISMATCH,    /* 401: signed for another axon hotkey */
	BX_DP_R_NO_SIGNATURE,     /* 401: empty or missing */
	BX_DP_R_BAD_SIGNATURE,    /* 401 */
	BX_DP_R_REPLAY,           /* 401 */
	BX_DP_R_REPLAY_FULL,      /* 503: replay cache has no room */
	BX_DP_R_BODY_JSON,        /* 422 */
	BX_DP_R_BODY_HASH,        /* 500 */
	BX_DP_R_UNAVAILABLE,      /* 503: no handler (no model loaded) */
	BX_DP_R_HANDLER,          /* handler failed or answered an error */
	BX_DP_R_RESPONSE_TOO_BIG, /* 500: response does not fit tx_buf */
	BX_DP_R_MAX
};

const char *bx_dp_reason_name(enum bx_dp_reason r);

/* Frames a kernel-bypass port (DPDK) received, sent, passed or dropped before TCP. */
enum bx_dp_pkt {
	BX_DP_P_RX,               /* frames received on the wire */
	BX_DP_P_TX,               /* frames sent on the wire */
	BX_DP_P_ALLOWED,          /* to TCP on the reserved lane (allow-listed source) */
	BX_DP_P_OPEN,             /* to TCP on the open lane */
	BX_DP_P_ARP,              /* ARP, to the stacks (and the kernel) */
	BX_DP_P_DROP_NOT_ALLOWED, /* allowlist_only and the source is not listed */
	BX_DP_P_DROP_PKT_RATE,    /* over the source's packet rate */
	BX_DP_P_DROP_SYN_RATE,    /* over the source's SYN rate */
	BX_DP_P_DROP_OPEN_LANE,   /* over the open lane's rate */
	BX_DP_P_DROP_MALFORMED,   /* runt or bad IPv4 header */
	BX_DP_P_DROP_NOT_OURS,    /* not for the appliance and no exception path */
	BX_DP_P_DROP_TX,          /* TX queue full or no mbuf */
	BX_DP_P_EXC_TO_KERNEL,    /* wire -> exception path */
	BX_DP_P_EXC_FROM_KERNEL,  /* exception path -> wire */
	BX_DP_P_MAX
};

static inline const char *
bx_dp_pkt_name(enum bx_dp_pkt p)
{
	static const char *const names[BX_DP_P_MAX] = {
		"rx",
		"tx",
		"allowed",
		"open",
		"arp",
		"drop_not_allowed",
		"drop_pkt_rate",
		"drop_syn_rate",
		"drop_open_lane",
		"drop_malformed",
		"drop_not_ours",
		"drop_tx",
		"exc_to_kernel",
		"exc_from_kernel",
	};

	return (unsigned)p < BX_DP_P_MAX ? names[p] : "unknown";
}

/* Stages of an answered request, each a latency histogram in bx_dp_stats. */
enum bx_dp_stage {
	BX_DP_S_RECEIVE, /* first byte of the request to its last */
	BX_DP_S_PARSE,   /* HTTP head and body framing */
	BX_DP_S_ADMIT,   /* route, bt headers, nonce, metagraph, rate limits */
	BX_DP_S_VERIFY,  /* the dendrite's sr25519 signature */
	BX_DP_S_BODY,    /* JSON, field types, body hash */
	BX_DP_S_HANDLER, /* the synapse handler (until it answers or defers) */
	BX_DP_S_RESPOND, /* response body, headers and both signatures */
	BX_DP_S_MAX
};

const char *bx_dp_stage_name(enum bx_dp_stage s);

struct bx_dp_stats {
	uint64_t requests; /* complete requests parsed */
	uint64_t responses_ok;
	uint64_t rejected[BX_DP_R_MAX];
	uint64_t conns_accepted;
	uint64_t conns_refused; /* over max_conns */
	uint64_t conns_closed;
	uint64_t conns_timed_out;
	uint64_t bytes_in, bytes_out;
	uint64_t pkt[BX_DP_P_MAX]; /* kernel-bypass ports: frames by fate, bx_dp_pkt_name() */
	struct bx_lathist stage[BX_DP_S_MAX]; /* answered requests, per stage */
};

struct bx_dp;

/* mg is consumed (also on failure). */
int bx_dp_create(const struct bx_dp_conf *conf, struct bx_metagraph *mg, struct bx_dp **out,
                 struct bx_errbuf *eb);
/* Before bx_dp_start(). -ENOENT for an unknown synapse name. */
int bx_dp_set_handler(struct bx_dp *dp, const char *synapse, bx_synapse_fn *fn, void *arg);
/* Open listeners and start the workers. */
int bx_dp_start(struct bx_dp *dp, struct bx_errbuf *eb);
/* The port actually bound (useful with conf.port = 0), after start. */
uint16_t bx_dp_port(const struct bx_dp *dp);
/* SS58 of the axon hotkey. */
const char *bx_dp_hotkey(const struct bx_dp *dp);
/*
 * Load a metagraph file and swap it in atomically; workers see the new one
 * at their next request, the old one is freed once no worker can hold it.
 * On error the old one stays. Safe from any thread (one reload at a time).
 */
int bx_dp_reload_metagraph(struct bx_dp *dp, const char *path, struct bx_errbuf *eb);
int bx_dp_swap_metagraph(struct bx_dp *dp, struct bx_metagraph *mg); /* mg consumed */
/* Sum of every worker's counters (a snapshot). */
void bx_dp_stats(const struct bx_dp *dp, struct bx_dp_stats *out);
/*
 * Stop accepting, finish requests in flight, close connections (at most
 * drain_ms), join the workers. Idempotent.
 */
void bx_dp_stop(struct bx_dp *dp, unsigned drain_ms);
void bx_dp_destroy(struct bx_dp *dp);

#endif /* BX_DATAPLANE_H */
