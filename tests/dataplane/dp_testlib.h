/*
 * Test helpers: keys, a metagraph, and requests built the way the Python
 * SDK's dendrite builds them (bittensor v10.2 Synapse.to_headers() and
 * aiohttp json=synapse.model_dump(): json.dumps defaults).
 */
#ifndef BX_DP_TESTLIB_H
#define BX_DP_TESTLIB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <bx/crypto.h>
#include <bx/dataplane.h>

struct dpt_keys {
	struct bx_sr25519_keypair *miner, *validator, *nopermit, *stranger;
	char miner_ss58[64], validator_ss58[64], nopermit_ss58[64], stranger_ss58[64];
};

/* Deterministic keys from fixed seeds. Aborts on failure. */
void dpt_keys_make(struct dpt_keys *k);
void dpt_keys_free(struct dpt_keys *k);
/* A metagraph JSON text: validator (permit, stake 5000), nopermit (stake 10).
 */
size_t dpt_metagraph_json(const struct dpt_keys *k, char *buf, size_t cap);

/* dp_start.c (not in fuzz builds): */
/*
 * The end of a setup: start dp unless r (from create) already failed. 0 and
 * its port, or -1 after printing why; exits 77 (skip) without io_uring.
 */
int dpt_start(struct bx_dp *dp, int r, struct bx_errbuf *eb, uint16_t *port);
/* Drain for up to a second, stop, destroy. */
void dpt_stop(struct bx_dp *dp);
/* A TCP connection to 127.0.0.1:port, no delay, 5 s receive timeout, rcvbuf if > 0; -1 on error. */
int dpt_connect_lo(uint16_t port, int rcvbuf);
/* Run a shell command (printf-style); its exit status, a failure also printed. */
int dpt_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* All n bytes to fd: 0, or -1. */
int dpt_send_all(int fd, const void *buf, size_t n);

struct dpt_req {
	const char *synapse;     /* "Synapse" */
	const char *fields_json; /* subclass fields as json.dumps text without braces,
                              or NULL */
	const char *body_hash;   /* computed_body_hash header; NULL: the SHA3("") constant */
	const struct bx_sr25519_keypair *signer;
	const char *signer_ss58;
	const char *axon_hotkey;   /* bt_header_axon_hotkey and the signed message */
	int64_t nonce;             /* 0: now */
	int64_t version;           /* 0: 10002000 */
	const char *uuid;          /* NULL: fixed */
	int sig_mode;              /* 0 normal, 1 corrupt, 2 empty, 3 absent, 4 <Bytes> wrapped */
	const char *extra_headers; /* raw lines, each ending CRLF */
	bool no_nonce;
	const char *raw_body; /* replaces the JSON body */
	bool conn_close;
};

/*
 * A 40-byte IPv4 TCP SYN from src (dotted quad) to daddr:dport (network
 * order address, host order port) with a correct checksum, for flood tests
 * on a raw socket of a test namespace.
 */
void dpt_syn_frame(uint8_t pkt[40], const char *src, uint32_t daddr, uint16_t sport, uint16_t dport,
                   uint32_t seq);

/*
 * Send req[sent..n) on fd without blocking, as the socket takes it, while
 * reading responses, until `want` have arrived, one is not 200, the peer
 * closes, or deadline_ns passes. Returns how many 200s arrived, in order
 * (a reason for stopping early goes to stderr). Not thread-safe: one static
 * 1 MiB receive buffer.
 */
unsigned dpt_pipeline(int fd, const char *req, size_t n, size_t sent, unsigned want,
                      uint64_t deadline_ns);

/* Build one request into buf; returns its length. */
size_t dpt_build(const struct dpt_req *r, char *buf, size_t cap);
/* A request for synapse, signed by k's validator, to k's miner; other fields zero. */
void dpt_req_init(struct dpt_req *r, const struct dpt_keys *k, const char *synapse);

/* Parsed response (views into the caller's buffer). */
struct dpt_resp {
	int status;
	const char *head;
	size_t head_len;
	const char *body;
	size_t body_len;
	size_t total; /* bytes this response used */
};

/* Parse one response at buf (Content-Length or chunked). 0 or -1
 * (incomplete/bad). */
int dpt_parse_resp(const char *buf, size_t len, struct dpt_resp *out);
/* Value of a header (case-sensitive name), copied NUL-terminated into v; false
 * if absent. */
bool dpt_header(const struct dpt_resp *r, const char *name, char *v, size_t cap);

/* A connection's received bytes, read as they come (blocking recv on fd). */
struct dpt_rx {
	int fd;
	char *buf;
	size_t cap, len, off; /* buffer, bytes held, bytes parsed */
	bool eof;             /* the peer closed (or the receive timed out) */
};

/* One chunked response as it arrived. */
struct dpt_stream {
	struct dpt_resp head; /* status and head; body fields unused */
	char text[16384];     /* the chunks' data concatenated */
	size_t text_len;
	unsigned nb_chunks;                       /* chunks with data */
	uint64_t head_ns, first_chunk_ns, end_ns; /* bx_time_ns() at arrival */
	bool ended;                               /* the last chunk arrived */
	bool first_before_end; /* the first chunk was read while the last was not there yet */
};

/* Wait for more bytes; false on close or timeout (rx->eof). */
bool dpt_rx_more(struct dpt_rx *rx);
/* Read one Content-Length or chunked response whole; false if the peer closed first. */
bool dpt_read_resp(struct dpt_rx *rx, struct dpt_resp *out);
/*
 * Read a response head and then chunk by chunk, noting when each arrives,
 * until the last chunk (ended) or the peer closes (not ended). false if no
 * whole head came or the text does not fit.
 */
bool dpt_read_stream(struct dpt_rx *rx, struct dpt_stream *s);
/* A whole successful stream: 200, text/event-stream, chunked, bt status 200, last chunk seen. */
bool dpt_stream_ok(const struct dpt_stream *s);

#endif
