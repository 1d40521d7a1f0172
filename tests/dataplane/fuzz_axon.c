/*
 * libFuzzer target: whole requests through the HTTP parser and the axon
 * protocol (routing, bt headers, admission, JSON body, body hash, response
 * writing), as a registered validator that signs correctly would reach it:
 * signature checks and response signing are off, legacy (pre-7.2) nonces are
 * allowed so the seeds do not go stale, and the replay cache starts empty for
 * every input. Pipelined requests in one input are answered in turn.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "axon.h"
#include "dp_testlib.h"
#include "metagraph_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct dpt_keys K;
static struct bx_axon_shared SH;
static struct bx_axon_ctx AX;
static char OUT[1 << 18];
static bool ready;

static void
init(void)
{
	struct bx_dp_conf c;
	struct bx_errbuf eb;
	char mgj[4096];
	size_t n;

	dpt_keys_make(&K);
	memset(&c, 0, sizeof(c));
	c.nb_cores = 1;
	c.max_conns = 4;
	c.rx_buf = 64 * 1024;
	c.tx_buf = 64 * 1024;
	c.max_request_line = 8192;
	c.max_headers = BX_HTTP_MAX_HEADERS;
	c.max_header_line = 8192;
	c.max_head = 16384;
	c.max_body = 48 * 1024;
	c.require_permit = true;
	c.replay_slots = 64;
	c.nonce_future_ns = 60ull * 1000000000ull;
	c.allow_legacy_nonce = true;
	c.hotkey = K.miner;
	c.verify_signatures = false;
	c.sign_responses = false;
	c.version = 10002000;
	if (bx_axon_shared_init(&SH, &c, &eb) < 0) {
		abort();
	}
	n = dpt_metagraph_json(&K, mgj, sizeof(mgj));
	if (bx_metagraph_parse(mgj, n, "fuzz", &SH.mg, &eb) < 0) {
		abort();
	}
	SH.nb_workers = 1;
	if (bx_axon_ctx_init(&AX, &SH) < 0) {
		abort();
	}
	ready = true;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data;
	struct bx_peer peer = { .ip = "127.0.0.1", .port = 4242, .ip_key = 1 };
	size_t off = 0;

	if (!ready) {
		init();
	}
	bx_replay_destroy(SH.replay);
	if (bx_replay_create(64, &SH.replay) < 0) {
		abort();
	}
	while (off < size) {
		struct bx_http_req req;
		struct bx_obuf out;
		long n = bx_http_parse_request(buf + off, size - off, &SH.lim, &req);

		bx_obuf_init(&out, OUT, sizeof(OUT));
		if (n == BX_HTTP_INCOMPLETE) {
			break;
		}
		if (n < 0) {
			bx_axon_http_error(&AX, (int)-n, &out);
			break;
		}
		if (bx_axon_handle(&AX, &req, &peer, &out) == BX_AXON_CLOSE || out.overflow) {
			break;
		}
		off += (size_t)n;
	}
	return 0;
}
