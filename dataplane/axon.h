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

struct bx_peer {
	char ip[48];
	uint16_t port;
	uint64_t ip_key;
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
 * Returns true if the connection stays open after it.
 */
bool bx_axon_handle(struct bx_axon_ctx *ax, const struct bx_http_req *req,
                    const struct bx_peer *peer, struct bx_obuf *out);

/* Answer an HTTP-level error (-status from the parser); the connection then
 * closes. */
void bx_axon_http_error(struct bx_axon_ctx *ax, int status, struct bx_obuf *out);

#endif
