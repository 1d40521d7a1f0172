/*
 * The axon protocol (shared/research/bittensor-protocol.md §1-§5, §11).
 *
 * Order of checks, cheapest first: method and route (404), bt headers
 * (400), hotkey and nonce present (401), nonce window and replay lookup
 * (401), metagraph (403), token buckets (429), axon hotkey and signature
 * present (401), then sr25519 verify (401), replay insert, body JSON (422),
 * body hash (500), handler, response. Codes and messages are the stock
 * axon's (v7.2-v10.x) wherever the stock axon has the case.
 */
#include "axon.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <bx/crypto.h>

#include "metagraph_int.h"

/* SHA3-256("") : the body hash of a synapse without hash fields. */
static const char EMPTY_HASH[] = "a7ffc6f8bf1ed76651c14756a061d662f580ff4de43b49fa82d80a4b80f8434a";

/* ---------------- request state ---------------- */

struct rq {
	const struct bx_http_req *http;
	const struct bx_peer *peer;
	const struct bx_synapse_type *type;
	uint64_t start_wall_ns;
	/* bt headers (views into the receive buffer) */
	struct bx_http_str name, timeout_s, body_hash;
	struct bx_http_str d_ip, d_version, d_nonce, d_uuid, d_hotkey, d_sig;
	struct bx_http_str a_ip, a_port, a_hotkey;
	bool have_version, have_nonce, have_timeout;
	int64_t version, nonce;
	double timeout;
	const struct bx_mg_neuron *nr;
	bool verified; /* signature checked: errors may be signed */
	int64_t axon_nonce;
	char axon_sig[131];
	bool keep_alive;
};

struct bx_call {
	struct bx_axon_ctx *ax;
	struct rq *rq;
	const struct bx_json *j;
	const int *vals;
	char hotkey[64];
	uint32_t out_off[BX_SYN_MAX_FIELDS];
	uint32_t out_len[BX_SYN_MAX_FIELDS];
	bool out_set[BX_SYN_MAX_FIELDS];
	size_t out_used;
	int fail_status;
	char fail_msg[512];
	char *out_buf; /* where out_off[] point: the worker's scratch or a ticket's */
	struct bx_call_ticket *ticket;
};

/* ---------------- small helpers ---------------- */

static bool
str_is(struct bx_http_str s, const char *lit)
{
	size_t n = strlen(lit);

	return s.len == n && memcmp(s.p, lit, n) == 0;
}

/* Python int() of a header value: optional sign, digits, surrounding spaces. */
static int
parse_int64(struct bx_http_str s, int64_t *out)
{
	uint32_t i = 0;
	bool neg = false;
	uint64_t v = 0;
	int nd = 0;

	while (i < s.len && s.p[i] == ' ') {
		i++;
	}
	if (i < s.len && (s.p[i] == '-' || s.p[i] == '+')) {
		neg = s.p[i++] == '-';
	}
	for (; i < s.len && s.p[i] >= '0' && s.p[i] <= '9'; i++, nd++) {
		if (v > (uint64_t)INT64_MAX / 10) {
			return -ERANGE;
		}
		v = v * 10 + (uint64_t)(s.p[i] - '0');
	}
	while (i < s.len && s.p[i] == ' ') {
		i++;
	}
	if (nd == 0 || i != s.len || v > (uint64_t)INT64_MAX) {
		return -EINVAL;
	}
	*out = neg ? -(int64_t)v : (int64_t)v;
	return 0;
}

static int
parse_float(struct bx_http_str s, double *out)
{
	char tmp[64], *end;

	if (s.len == 0 || s.len >= sizeof(tmp)) {
		return -EINVAL;
	}
	memcpy(tmp, s.p, s.len);
	tmp[s.len] = 0;
	*out = strtod(tmp, &end);
	while (*end == ' ') {
		end++;
	}
	if (*end || end == tmp || isnan(*out)) {
		return -EINVAL;
	}
	return 0;
}

static void
hdr(struct bx_obuf *b, const char *name, struct bx_http_str v)
{
	bx_http_header(b, name, v.p, v.len);
}

static void
hdr_z(struct bx_obuf *b, const char *name, const char *v)
{
	bx_http_header(b, name, v, strlen(v));
}

static void
hdr_i64(struct bx_obuf *b, const char *name, int64_t v)
{
	bx_obuf_puts(b, name);
	bx_obuf_put(b, ": ", 2);
	bx_obuf_i64(b, v);
	bx_obuf_put(b, "\r\n", 2);
}

/* A header value must stay one line of latin-1 text under aiohttp's 8190-byte
 * limit. */
static void
hdr_msg(struct bx_obuf *b, const char *name, const char *msg)
{
	size_t n = strlen(msg);

	bx_obuf_puts(b, name);
	bx_obuf_put(b, ": ", 2);
	for (size_t i = 0; i < n && i < 2048; i++) {
		uint8_t c = (uint8_t)msg[i];

		bx_obuf_putc(b, (c < 0x20 || c == 0x7f) ? ' ' : (char)c);
	}
	bx_obuf_put(b, "\r\n", 2);
}

/* Seconds as a decimal float with nanosecond digits ("0.000123456"): cheaper
 * than repr. */
static size_t
fmt_secs(char out[32], uint64_t ns)
{
	char tmp[24];
	int i = (int)sizeof(tmp);
	uint64_t s = ns / 1000000000ull, f = ns % 1000000000ull;
	size_t n = 0;

	do {
		tmp[--i] = (char)('0' + s % 10);
		s /= 10;
	} while (s);
	memcpy(out, tmp + i, sizeof(tmp) - (size_t)i);
	n = sizeof(tmp) - (size_t)i;
	out[n++] = '.';
	for (int k = 8; k >= 0; k--) {
		out[n + (size_t)k] = (char)('0' + f % 10);
		f /= 10;
	}
	n += 9;
	out[n] = 0;
	return n;
}

static void
hdr_secs(struct bx_obuf *b, const char *name, uint64_t ns)
{
	char tmp[32];

	bx_http_header(b, name, tmp, fmt_secs(tmp, ns));
}

static void
uuid4(struct bx_axon_ctx *ax, char out[37])
{
	uint64_t a = bx_hash64(&ax->uuid_ctr, sizeof(ax->uuid_ctr), bx_wall_ns());
	uint64_t b2 = bx_hash64(&a, sizeof(a), (uint64_t)(uintptr_t)ax);

	ax->uuid_ctr++;
	snprintf(out, 37, "%08x-%04x-4%03x-%04x-%012" PRIx64 "", (unsigned)(a >> 32),
	         (unsigned)(a >> 16) & 0xffff, (unsigned)a & 0xfff,
	         (unsigned)(0x8000 | ((b2 >> 48) & 0x3fff)), (uint64_t)(b2 & 0xffffffffffffull));
}

/* ---------------- signing ---------------- */

static void
sig_hex(char out[131], const uint8_t sig[64])
{
	out[0] = '0';
	out[1] = 'x';
	bx_hex_encode(out + 2, sig, 64);
}

/*
 * axon.signature: sign
 * f"{axon_nonce}.{dendrite_hotkey}.{axon_hotkey}.{axon_uuid}" (SDK §3.3). No
 * dendrite checks it and nothing in it depends on the request beyond the
 * caller's hotkey, so one signature (and its axon nonce) is reused per caller
 * for up to a second; the body signature is what binds each answer.
 */
static void
sign_sdk(struct bx_axon_ctx *ax, struct rq *rq)
{
	const struct bx_axon_shared *sh = ax->sh;
	char msg[256];
	int n;
	uint8_t sig[64];
	uint64_t key, now = bx_time_ns();
	unsigned slot;

	rq->axon_sig[0] = 0;
	rq->axon_nonce = (int64_t)bx_wall_ns();
	if (!sh->conf.sign_responses || !sh->conf.hotkey || !rq->d_hotkey.p) {
		return;
	}
	key = bx_hash64(rq->d_hotkey.p, rq->d_hotkey.len, 11) | 1;
	slot = (unsigned)(key % BX_ARRAY_SIZE(ax->sdk_sig));
	if (ax->sdk_sig[slot].key == key && now < ax->sdk_sig[slot].until_ns) {
		rq->axon_nonce = ax->sdk_sig[slot].nonce;
		memcpy(rq->axon_sig, ax->sdk_sig[slot].sig, sizeof(rq->axon_sig));
		return;
	}
	n = snprintf(msg, sizeof(msg), "%" PRId64 ".%.*s.%s.%s", rq->axon_nonce,
	             (int)BX_MIN(rq->d_hotkey.len, 64u), rq->d_hotkey.p, sh->hotkey, sh->uuid);
	if (n < 0 || (size_t)n >= sizeof(msg) || rq->d_hotkey.len > 64) {
		return;
	}
	if (bx_sr25519_sign(sig, msg, (size_t)n, sh->conf.hotkey) != 0) {
		return;
	}
	sig_hex(rq->axon_sig, sig);
	ax->sdk_sig[slot].key = key;
	ax->sdk_sig[slot].until_ns = now + 1000000000ull;
	ax->sdk_sig[slot].nonce = rq->axon_nonce;
	memcpy(ax->sdk_sig[slot].sig, rq->axon_sig, sizeof(rq->axon_sig));
}

/*
 * The body signature (beyond the SDK): sign
 * "bx-axon-body-v1.{axon_nonce}.{dendrite_hotkey}.{dendrite_nonce}.{dendrite_uuid}.{axon_hotkey}.{sha3_256_hex(body)}"
 * so a validator can prove which bytes this miner answered to which request.
 */
static void
body_sign_headers(struct bx_axon_ctx *ax, struct rq *rq, const char *body, size_t len,
                  struct bx_obuf *out)
{
	const struct bx_axon_shared *sh = ax->sh;
	uint8_t d[32], sig[64];
	char hex[65], sh_[131], msg[512];
	int n;

	if (!sh->conf.sign_responses || !sh->conf.hotkey) {
		return;
	}
	bx_sha3_256(d, body, len);
	bx_hex_encode(hex, d, 32);
	hdr_z(out, "bt_header_axon_body_hash", hex);
	n = snprintf(msg, sizeof(msg), "bx-axon-body-v1.%" PRId64 ".%.*s.%" PRId64 ".%.*s.%s.%s",
	             (int64_t)rq->axon_nonce, (int)BX_MIN(rq->d_hotkey.len, 64u), rq->d_hotkey.p,
	             (int64_t)rq->nonce, (int)BX_MIN(rq->d_uuid.len, 128u), rq->d_uuid.p,
	             sh->hotkey, hex);
	if (n < 0 || (size_t)n >= sizeof(msg)) {
		return;
	}
	if (bx_sr25519_sign(sig, msg, (size_t)n, sh->conf.hotkey) == 0) {
		sig_hex(sh_, sig);
		hdr_z(out, "bt_header_axon_body_signature", sh_);
	}
}

/* ---------------- responses ---------------- */

static void
finish(struct bx_obuf *out, const char *body, size_t len, bool keep_alive)
{
	bx_http_end_head(out, len, keep_alive);
	bx_obuf_put(out, body, len);
}

/* bt headers common to error responses (the header-derived synapse's
 * to_headers()). */
static void
error_bt_headers(struct bx_axon_ctx *ax, struct rq *rq, int status, const char *msg,
                 struct bx_obuf *out)
{
	const struct bx_axon_shared *sh = ax->sh;

	if (rq->type) {
		hdr_z(out, "name", rq->type->name);
	}
	if (rq->have_timeout) {
		hdr(out, "timeout", rq->timeout_s); /* str(float) as the dendrite sent it */
	}
	hdr_i64(out, "bt_header_axon_status_code", status);
	hdr_msg(out, "bt_header_axon_status_message", msg);
	hdr_secs(out, "bt_header_axon_process_time", bx_wall_ns() - rq->start_wall_ns);
	if (rq->a_ip.p) {
		hdr(out, "bt_header_axon_ip", rq->a_ip);
	}
	if (rq->a_port.p) {
		hdr(out, "bt_header_axon_port", rq->a_port);
	}
	hdr_i64(out, "bt_header_axon_version", sh->conf.version);
	if (rq->axon_sig[0]) {
		hdr_i64(out, "bt_header_axon_nonce", rq->axon_nonce);
		hdr_z(out, "bt_header_axon_uuid", sh->uuid);
	}
	hdr_z(out, "bt_header_axon_hotkey", sh->hotkey);
	if (rq->axon_sig[0]) {
		hdr_z(out, "bt_header_axon_signature", rq->axon_sig);
	}
	if (rq->peer) {
		hdr_z(out, "bt_header_dendrite_ip", rq->peer->ip);
		hdr_i64(out, "bt_header_dendrite_port", rq->peer->port);
	}
	if (rq->have_version) {
		hdr_i64(out, "bt_header_dendrite_version", rq->version);
	}
	if (rq->have_nonce) {
		hdr_i64(out, "bt_header_dendrite_nonce", rq->nonce);
	}
	if (rq->d_uuid.p) {
		hdr(out, "bt_header_dendrite_uuid", rq->d_uuid);
	}
	if (rq->d_hotkey.p) {
		hdr(out, "bt_header_dendrite_hotkey", rq->d_hotkey);
	}
	if (rq->d_sig.p) {
		hdr(out, "bt_header_dendrite_signature", rq->d_sig);
	}
	if (rq->body_hash.p) {
		hdr(out, "computed_body_hash", rq->body_hash);
	}
}

/* JSONResponse({"message": msg}, status) with the bt headers. Returns
 * keep-alive. */
static bool
send_error(struct bx_axon_ctx *ax, struct rq *rq, int status, enum bx_dp_reason reason,
           const char *msg, struct bx_obuf *out)
{
	struct bx_obuf body;
	struct bx_jw w;

	ax->stats.rejected[reason]++;
	if (rq->verified && !rq->axon_sig[0]) {
		sign_sdk(ax, rq);
	}
	bx_obuf_init(&body, ax->body_buf, ax->body_cap);
	bx_jw_init(&w, &body, BX_JW_COMPACT);
	bx_jw_obj_begin(&w);
	bx_jw_key(&w, "message", 7);
	bx_jw_str(&w, msg, strlen(msg));
	bx_jw_obj_end(&w);
	bx_http_status_line(out, status);
	hdr_z(out, "content-type", "application/json");
	error_bt_headers(ax, rq, status, msg, out);
	if (rq->verified) { /* answers to authenticated requests are signed, errors too */
		body_sign_headers(ax, rq, body.p, body.len, out);
	}
	finish(out, body.p, body.len, rq->keep_alive);
	return rq->keep_alive;
}

/* FastAPI's own 422/404/405 shape: {"detail": ...}, no bt headers. */
static bool
send_detail(struct bx_axon_ctx *ax, struct rq *rq, int status, enum bx_dp_reason reason,
            const char *detail_json, struct bx_obuf *out)
{
	size_t n = strlen(detail_json);

	ax->stats.rejected[reason]++;
	bx_http_status_line(out, status);
	hdr_z(out, "content-type", "application/json");
	if (rq->verified) {
		if (!rq->axon_sig[0]) {
			sign_sdk(ax, rq);
		}
		body_sign_headers(ax, rq, detail_json, n, out);
	}
	finish(out, detail_json, n, rq->keep_alive);
	return rq->keep_alive;
}

static bool
send_422(struct bx_axon_ctx *ax, struct rq *rq, const char *type, const char *loc_field,
         const char *msg, struct bx_obuf *out)
{
	char d[512];

	if (loc_field) {
		snprintf(d, sizeof(d),
		         "{\"detail\":[{\"type\":\"%s\",\"loc\":[\"body\",\"%s\"],\"msg\":"
		         "\"%s\"}]}",
		         type, loc_field, msg);
	} else {
		snprintf(d, sizeof(d),
		         "{\"detail\":[{\"type\":\"%s\",\"loc\":[\"body\"],\"msg\":\"%s\"}]}", type,
		         msg);
	}
	return send_detail(ax, rq, 422, BX_DP_R_BODY_JSON, d, out);
}

void
bx_axon_http_error(struct bx_axon_ctx *ax, int status, struct bx_obuf *out)
{
	static const char body[] = "{\"message\":\"Improperly formatted request.\"}";
	enum bx_dp_reason r = (status == 413 || status == 414 || status == 431) ?
	                              BX_DP_R_HTTP_LIMIT :
	                              BX_DP_R_HTTP_BAD;

	ax->stats.rejected[r]++;
	bx_http_status_line(out, status);
	hdr_z(out, "content-type", "application/json");
	hdr_i64(out, "bt_header_axon_status_code", status);
	hdr_z(out, "bt_header_axon_status_message", bx_http_reason(status));
	finish(out, body, sizeof(body) - 1, false);
}

/* ---------------- header parsing ---------------- */

/* Longest bt header value accepted (uuid 36, signature 130, hash 64): responses echo them. */
#define BT_HEADER_MAX 256

struct hname {
	const char *name;
	size_t off;
};

#define H(n, f)                           \
	{                                 \
		n, offsetof(struct rq, f) \
	}
static const struct hname bt_headers[] = {
	H("name", name),
	H("timeout", timeout_s),
	H("computed_body_hash", body_hash),
	H("bt_header_dendrite_ip", d_ip),
	H("bt_header_dendrite_version", d_version),
	H("bt_header_dendrite_nonce", d_nonce),
	H("bt_header_dendrite_uuid", d_uuid),
	H("bt_header_dendrite_hotkey", d_hotkey),
	H("bt_header_dendrite_signature", d_sig),
	H("bt_header_axon_ip", a_ip),
	H("bt_header_axon_port", a_port),
	H("bt_header_axon_hotkey", a_hotkey),
};

/* Fill rq's header views; returns the name of a header that does not parse, or
 * NULL. */
static const char *
parse_bt_headers(struct rq *rq)
{
	const struct bx_http_req *req = rq->http;

	for (unsigned i = 0; i < req->nb_headers; i++) {
		const struct bx_http_hdr *h = &req->headers[i];

		if (h->name.len < 4) {
			continue;
		}
		for (unsigned k = 0; k < BX_ARRAY_SIZE(bt_headers); k++) {
			const char *n = bt_headers[k].name;

			if (bx_http_str_eq_nocase(h->name, n, strlen(n))) {
				struct bx_http_str *dst =
					(struct bx_http_str *)((char *)rq + bt_headers[k].off);

				if (h->value.len > BT_HEADER_MAX) {
					/* no dendrite sends that; never echoed back */
					return bt_headers[k].name;
				}
				if (!dst->p) { /* first one wins, as Starlette's .get() */
					*dst = h->value;
				}
				break;
			}
		}
	}
	if (rq->timeout_s.p) {
		if (parse_float(rq->timeout_s, &rq->timeout) < 0) {
			return "timeout";
		}
		rq->have_timeout = true;
	} else {
		rq->timeout = 12.0; /* Synapse.timeout default */
	}
	if (rq->d_version.p) {
		if (parse_int64(rq->d_version, &rq->version) < 0) {
			return "bt_header_dendrite_version";
		}
		rq->have_version = true;
	}
	if (rq->d_nonce.p) {
		if (parse_int64(rq->d_nonce, &rq->nonce) < 0) {
			return "bt_header_dendrite_nonce";
		}
		rq->have_nonce = true;
	}
	if (rq->a_port.p) {
		int64_t port;

		if (parse_int64(rq->a_port, &port) < 0) {
			return "bt_header_axon_port";
		}
	}
	return NULL;
}

/* ---------------- signature ---------------- */

static bool
verify_sig(struct bx_axon_ctx *ax, struct rq *rq, const char *msg, size_t n)
{
	uint8_t sig[64];
	char wrapped[1100];

	if (rq->d_sig.len != 130 || rq->d_sig.p[0] != '0' ||
	    (rq->d_sig.p[1] != 'x' && rq->d_sig.p[1] != 'X') ||
	    bx_hex_decode(sig, 64, rq->d_sig.p + 2, 128) < 0) {
		return false;
	}
	if (bx_sr25519_verify(sig, msg, n, rq->nr->hotkey_pub) == 0) {
		return true;
	}
	/* btwallet also accepts the polkadot.js signRaw wrapping */
	if (n + 15 > sizeof(wrapped)) {
		return false;
	}
	memcpy(wrapped, "<Bytes>", 7);
	memcpy(wrapped + 7, msg, n);
	memcpy(wrapped + 7 + n, "</Bytes>", 8);
	(void)ax;
	return bx_sr25519_verify(sig, wrapped, n + 15, rq->nr->hotkey_pub) == 0;
}

/* ---------------- bx_call API ---------------- */

const char *
bx_call_synapse(const struct bx_call *c)
{
	return c->rq->type->name;
}

const char *
bx_call_hotkey(const struct bx_call *c)
{
	return c->hotkey;
}

const struct bx_mg_neuron *
bx_call_neuron(const struct bx_call *c)
{
	return c->rq->nr;
}

double
bx_call_timeout(const struct bx_call *c)
{
	return c->rq->timeout;
}

const char *
bx_call_field(const struct bx_call *c, const char *name, size_t *len)
{
	int f = bx_synapse_field(c->rq->type, name, strlen(name));
	int t;

	if (f < 0 || c->vals[f] < 0) {
		return NULL;
	}
	t = c->vals[f];
	if (c->j->toks[t].type == BX_J_STRING) { /* include the quotes */
		*len = c->j->toks[t].len + 2;
		return c->j->src + c->j->toks[t].start - 1;
	}
	*len = c->j->toks[t].len;
	return c->j->src + c->j->toks[t].start;
}

int
bx_call_set_output(struct bx_call *c, const char *field, const char *json, size_t len)
{
	int f = bx_synapse_field(c->rq->type, field, strlen(field));

	if (f < 0 || !c->rq->type->fields[f].output) {
		return -ENOENT;
	}
	if (len > c->ax->out_cap - c->out_used) {
		return -ENOSPC;
	}
	memcpy(c->ax->out_buf + c->out_used, json, len);
	c->out_off[f] = (uint32_t)c->out_used;
	c->out_len[f] = (uint32_t)len;
	c->out_set[f] = true;
	c->out_used += len;
	return 0;
}

int
bx_call_fail(struct bx_call *c, int status, const char *message)
{
	c->fail_status = status;
	snprintf(c->fail_msg, sizeof(c->fail_msg), "%s", message);
	return 0;
}

/* ---------------- success response ---------------- */

static void
write_terminal_dendrite(struct bx_jw *w, const struct bx_json *j, int obj)
{
	static const char *const keys[] = { "status_code", "status_message", "process_time", "ip",
		                            "port",        "version",        "nonce",        "uuid",
		                            "hotkey",      "signature" };

	bx_jw_obj_begin(w);
	for (unsigned i = 0; i < BX_ARRAY_SIZE(keys); i++) {
		int v = obj >= 0 ? bx_json_get(j, obj, keys[i], strlen(keys[i])) : -1;

		bx_jw_key(w, keys[i], strlen(keys[i]));
		if (v < 0) {
			bx_jw_null(w);
		} else {
			bx_jw_value(w, j, v);
		}
	}
	bx_jw_obj_end(w);
}

static void
write_value_as_float(struct bx_jw *w, const struct bx_json *j, int t)
{
	double d;

	if (j->toks[t].type == BX_J_INT && bx_json_double(j, t, &d) == 0) {
		bx_jw_double(w, d);
	} else {
		bx_jw_value(w, j, t);
	}
}

static void
write_synapse_body(struct bx_axon_ctx *ax, struct rq *rq, struct bx_call *c, struct bx_obuf *b)
{
	const struct bx_axon_shared *sh = ax->sh;
	const struct bx_json *j = c->j;
	const struct bx_synapse_type *t = rq->type;
	struct bx_jw w;
	int v, axon;

	bx_jw_init(&w, b, BX_JW_COMPACT);
	bx_jw_obj_begin(&w);
	bx_jw_key(&w, "name", 4);
	bx_jw_str(&w, t->name, strlen(t->name));
	bx_jw_key(&w, "timeout", 7);
	v = bx_json_get(j, 0, "timeout", 7);
	if (v >= 0 && j->toks[v].type != BX_J_NULL) {
		write_value_as_float(&w, j, v);
	} else {
		bx_jw_double(&w, 12.0);
	}
	bx_jw_key(&w, "total_size", 10);
	v = bx_json_get(j, 0, "total_size", 10);
	if (v >= 0) {
		bx_jw_value(&w, j, v);
	} else {
		bx_jw_int(&w, 0);
	}
	bx_jw_key(&w, "header_size", 11);
	v = bx_json_get(j, 0, "header_size", 11);
	if (v >= 0) {
		bx_jw_value(&w, j, v);
	} else {
		bx_jw_int(&w, 0);
	}
	bx_jw_key(&w, "dendrite", 8);
	write_terminal_dendrite(&w, j, bx_json_get(j, 0, "dendrite", 8));

	bx_jw_key(&w, "axon", 4);
	axon = bx_json_get(j, 0, "axon", 4);
	bx_jw_obj_begin(&w);
	bx_jw_key(&w, "status_code", 11);
	bx_jw_int(&w, 200);
	bx_jw_key(&w, "status_message", 14);
	bx_jw_str(&w, "Success", 7);
	bx_jw_key(&w, "process_time", 12);
	{
		char tmp[32];

		bx_jw_raw(&w, tmp, fmt_secs(tmp, bx_wall_ns() - rq->start_wall_ns));
	}
	bx_jw_key(&w, "ip", 2);
	v = axon >= 0 ? bx_json_get(j, axon, "ip", 2) : -1;
	if (v >= 0) {
		bx_jw_value(&w, j, v);
	} else {
		bx_jw_null(&w);
	}
	bx_jw_key(&w, "port", 4);
	v = axon >= 0 ? bx_json_get(j, axon, "port", 4) : -1;
	if (v >= 0) {
		bx_jw_value(&w, j, v);
	} else {
		bx_jw_null(&w);
	}
	bx_jw_key(&w, "version", 7);
	bx_jw_int(&w, sh->conf.version);
	bx_jw_key(&w, "nonce", 5);
	bx_jw_int(&w, rq->axon_nonce);
	bx_jw_key(&w, "uuid", 4);
	bx_jw_str(&w, sh->uuid, strlen(sh->uuid));
	bx_jw_key(&w, "hotkey", 6);
	bx_jw_str(&w, sh->hotkey, sh->hotkey_len);
	bx_jw_key(&w, "signature", 9);
	if (rq->axon_sig[0]) {
		bx_jw_str(&w, rq->axon_sig, 130);
	} else {
		bx_jw_null(&w);
	}
	bx_jw_obj_end(&w);

	bx_jw_key(&w, "computed_body_hash", 18);
	v = bx_json_get(j, 0, "computed_body_hash", 18);
	if (v >= 0) {
		bx_jw_value(&w, j, v);
	} else {
		bx_jw_str(&w, "", 0);
	}

	for (unsigned i = 0; i < t->nb_fields; i++) {
		const struct bx_syn_field *f = &t->fields[i];

		bx_jw_key(&w, f->name, strlen(f->name));
		if (c->out_set[i]) {
			bx_jw_raw(&w, c->out_buf + c->out_off[i], c->out_len[i]);
		} else if (c->vals[i] >= 0 && f->type == BX_F_FLOAT) {
			write_value_as_float(&w, j, c->vals[i]);
		} else if (c->vals[i] >= 0) {
			bx_jw_value(&w, j, c->vals[i]);
		} else {
			bx_jw_raw(&w, f->def, strlen(f->def));
		}
	}
	bx_jw_obj_end(&w);
}

/* Close one stage of an answered request: record since *t, then *t = now. */
static void
stage_mark(struct bx_axon_ctx *ax, enum bx_dp_stage s, uint64_t *t)
{
	uint64_t now = bx_time_ns();

	bx_lathist_record(&ax->stats.stage[s], now - *t);
	*t = now;
}

/* Status line and headers of a 200 (the synapse's to_headers(), §4.4), up to
 * the framing headers. */
static void
success_head(struct bx_axon_ctx *ax, struct rq *rq, struct bx_obuf *out)
{
	const struct bx_axon_shared *sh = ax->sh;
	uint64_t pt = bx_wall_ns() - rq->start_wall_ns;

	bx_http_status_line(out, 200);
	if (rq->type->streaming) {
		hdr_z(out, "content-type", "text/event-stream");
	} else {
		hdr_z(out, "content-type", "application/json");
	}
	hdr_z(out, "name", rq->type->name);
	if (rq->have_timeout) {
		hdr(out, "timeout", rq->timeout_s);
	} else {
		hdr_z(out, "timeout", "12.0");
	}
	hdr_z(out, "bt_header_axon_status_code", "200");
	hdr_z(out, "bt_header_axon_status_message", "Success");
	hdr_secs(out, "bt_header_axon_process_time", pt);
	if (rq->a_ip.p) {
		hdr(out, "bt_header_axon_ip", rq->a_ip);
	}
	if (rq->a_port.p) {
		hdr(out, "bt_header_axon_port", rq->a_port);
	}
	hdr_i64(out, "bt_header_axon_version", sh->conf.version);
	hdr_i64(out, "bt_header_axon_nonce", rq->axon_nonce);
	hdr_z(out, "bt_header_axon_uuid", sh->uuid);
	hdr_z(out, "bt_header_axon_hotkey", sh->hotkey);
	if (rq->axon_sig[0]) {
		hdr_z(out, "bt_header_axon_signature", rq->axon_sig);
	}
	if (rq->d_ip.p) {
		hdr(out, "bt_header_dendrite_ip", rq->d_ip);
	}
	if (rq->have_version) {
		hdr_i64(out, "bt_header_dendrite_version", rq->version);
	}
	hdr_i64(out, "bt_header_dendrite_nonce", rq->nonce);
	if (rq->d_uuid.p) {
		hdr(out, "bt_header_dendrite_uuid", rq->d_uuid);
	}
	hdr(out, "bt_header_dendrite_hotkey", rq->d_hotkey);
	if (rq->d_sig.p) {
		hdr(out, "bt_header_dendrite_signature", rq->d_sig);
	}
	hdr(out, "computed_body_hash", rq->body_hash);
}

static bool
send_success(struct bx_axon_ctx *ax, struct rq *rq, struct bx_call *c, struct bx_obuf *out)
{
	struct bx_obuf body;

	bx_obuf_init(&body, ax->body_buf, ax->body_cap);
	write_synapse_body(ax, rq, c, &body);
	if (body.overflow) {
		rq->keep_alive = false;
		return send_error(ax, rq, 500, BX_DP_R_RESPONSE_TOO_BIG,
		                  "Internal Server Error: response too large", out);
	}
	success_head(ax, rq, out);
	if (rq->type->streaming) {
		/* Answered without bx_ticket_stream(): the output field's text as one chunk. */
		int f = bx_synapse_field(rq->type, rq->type->output_for_stream,
		                         strlen(rq->type->output_for_stream));
		char tmp[4096];
		long n = 0;

		if (f >= 0 && c->out_set[f]) {
			struct bx_json oj;
			struct bx_jtok ot[2];

			if (bx_json_parse(&oj, c->out_buf + c->out_off[f], c->out_len[f], ot, 2,
			                  1) == 0 &&
			    oj.toks[0].type == BX_J_STRING) {
				n = bx_json_str_copy(&oj, 0, tmp, sizeof(tmp));
			}
		}
		bx_http_end_head_chunked(out, rq->keep_alive);
		if (n > 0) {
			bx_http_chunk(out, tmp, (size_t)n);
		}
		bx_http_chunk_end(out);
	} else {
		body_sign_headers(ax, rq, body.p, body.len, out);
		finish(out, body.p, body.len, rq->keep_alive);
	}
	ax->stats.responses_ok++;
	return rq->keep_alive;
}

/* ---------------- the pipeline ---------------- */

int
bx_axon_handle(struct bx_axon_ctx *ax, const struct bx_http_req *req, const struct bx_peer *peer,
               struct bx_obuf *out)
{
	const struct bx_axon_shared *sh = ax->sh;
	const struct bx_dp_conf *conf = &sh->conf;
	struct rq rq_, *rq = &rq_;
	struct bx_call call_, *c = &call_;
	struct bx_json j;
	char msg[1400];
	const char *bad;
	size_t name_len, mlen;
	const struct bx_metagraph *mg;
	uint64_t now_mono = bx_time_ns(), t_stage = now_mono, t_sdk;
	uint32_t now_s;
	uint64_t rkey = 0;
	int vals[BX_SYN_MAX_FIELDS];
	int r, ti;
	char hash[65];

	memset(rq, 0, sizeof(*rq));
	rq->http = req;
	rq->peer = peer;
	rq->keep_alive = req->keep_alive;
	rq->start_wall_ns = bx_wall_ns();
	now_s = (uint32_t)(rq->start_wall_ns / 1000000000ull);
	ax->stats.requests++;

	/* method */
	if (!str_is(req->method, "POST") && !str_is(req->method, "GET")) {
		return send_detail(ax, rq, 405, BX_DP_R_METHOD,
		                   "{\"detail\":\"Method Not Allowed\"}", out);
	}

	/* route: request.url.path.split("/")[1] */
	for (name_len = 0; name_len + 1 < req->path.len && req->path.p[1 + name_len] != '/';
	     name_len++) {
		;
	}
	rq->type = bx_synapse_find(req->path.p + 1, name_len);
	if (!rq->type) {
		snprintf(msg, sizeof(msg), "Synapse name '%.*s' not found. Available synapses %s",
		         (int)BX_MIN(name_len, 256u), req->path.p + 1, sh->synapse_list);
		return send_error(ax, rq, 404, BX_DP_R_UNKNOWN_SYNAPSE, msg, out);
	}
	if (1 + name_len != req->path.len) { /* "/Synapse/x": no FastAPI route */
		rq->type = NULL;
		return send_detail(ax, rq, 404, BX_DP_R_UNKNOWN_SYNAPSE,
		                   "{\"detail\":\"Not Found\"}", out);
	}
	ti = bx_synapse_index(rq->type);

	/* bt headers */
	bad = parse_bt_headers(rq);
	if (bad) {
		snprintf(msg, sizeof(msg),
		         "Improperly formatted request. Could not parse headers (%s) into synapse "
		         "of type %s.",
		         bad, rq->type->name);
		return send_error(ax, rq, 400, BX_DP_R_BAD_HEADERS, msg, out);
	}
	if (!rq->d_hotkey.p || rq->d_hotkey.len == 0) {
		return send_error(
			ax, rq, 401, BX_DP_R_NO_HOTKEY,
			"Not Verified with error: No SS58 formatted address or public key "
			"provided.",
			out);
	}
	if (!rq->have_nonce) {
		return send_error(ax, rq, 401, BX_DP_R_NO_NONCE,
		                  "Not Verified with error: Missing Nonce", out);
	}

	/* nonce window, then a replay lookup (insertion comes after the signature) */
	if (rq->have_version && rq->version >= BX_V_7_2_0) {
		char why[200];

		r = bx_nonce_window(rq->nonce, rq->timeout, (int64_t)rq->start_wall_ns,
		                    conf->nonce_future_ns, why, sizeof(why));
		if (r) {
			snprintf(msg, sizeof(msg), "Not Verified with error: %s", why);
			return send_error(ax, rq, 401,
			                  r == 1 ? BX_DP_R_NONCE_STALE : BX_DP_R_NONCE_FUTURE, msg,
			                  out);
		}
	} else if (!conf->allow_legacy_nonce) {
		return send_error(
			ax, rq, 401, BX_DP_R_NONCE_LEGACY,
			"Not Verified with error: dendrite older than 7.2.0 is not accepted", out);
	}
	rkey = bx_replay_key(rq->d_hotkey.p, rq->d_hotkey.len, rq->d_uuid.p, rq->d_uuid.len,
	                     rq->nonce);
	if (bx_replay_seen(sh->replay, rkey, now_s)) {
		return send_error(ax, rq, 401, BX_DP_R_REPLAY,
		                  "Not Verified with error: Nonce is too old, a newer one was last "
		                  "processed",
		                  out);
	}

	/* metagraph: registered, permit, stake */
	mg = __atomic_load_n(&sh->mg, __ATOMIC_ACQUIRE);
	rq->nr = bx_metagraph_find(mg, rq->d_hotkey.p, rq->d_hotkey.len);
	if (!rq->nr) {
		return send_error(ax, rq, 403, BX_DP_R_NOT_REGISTERED,
		                  "Forbidden. Key is blacklisted: Unrecognized hotkey.", out);
	}
	if (conf->require_permit && !rq->nr->validator_permit) {
		return send_error(ax, rq, 403, BX_DP_R_NO_PERMIT,
		                  "Forbidden. Key is blacklisted: Non-validator hotkey.", out);
	}
	if (rq->nr->stake < conf->min_stake) {
		return send_error(ax, rq, 403, BX_DP_R_LOW_STAKE,
		                  "Forbidden. Key is blacklisted: Insufficient stake.", out);
	}

	/* token buckets */
	if (!bx_tb_take(&ax->tb_ip, peer ? peer->ip_key : 0, now_mono)) {
		return send_error(ax, rq, 429, BX_DP_R_RATE_IP,
		                  "Too many requests: rate limit for this IP exceeded", out);
	}
	if (!bx_tb_take(&ax->tb_hotkey, bx_hash64(rq->nr->hotkey_pub, 32, 7), now_mono)) {
		return send_error(ax, rq, 429, BX_DP_R_RATE_HOTKEY,
		                  "Too many requests: rate limit for this hotkey exceeded", out);
	}

	stage_mark(ax, BX_DP_S_ADMIT, &t_stage);

	/* signature: message with our own hotkey (§3.2) */
	{
		char m[1024];
		int n = snprintf(m, sizeof(m), "%" PRId64 ".%.*s.%s.%.*s.%.*s", (int64_t)rq->nonce,
		                 (int)rq->d_hotkey.len, rq->d_hotkey.p, sh->hotkey,
		                 (int)BX_MIN(rq->d_uuid.len, 512u),
		                 rq->d_uuid.p ? rq->d_uuid.p : "",
		                 (int)BX_MIN(rq->body_hash.len, 128u),
		                 rq->body_hash.p ? rq->body_hash.p : "");

		mlen = n < 0 ? 0 : BX_MIN((size_t)n, sizeof(m) - 1);
		if (!rq->a_hotkey.p || rq->a_hotkey.len != sh->hotkey_len ||
		    memcmp(rq->a_hotkey.p, sh->hotkey, sh->hotkey_len) != 0) {
			snprintf(msg, sizeof(msg),
			         "Not Verified with error: Signature mismatch with %.*s and %.*s",
			         (int)mlen, m, (int)BX_MIN(rq->d_sig.len, 200u),
			         rq->d_sig.p ? rq->d_sig.p : "");
			return send_error(ax, rq, 401, BX_DP_R_AXON_MISMATCH, msg, out);
		}
		if (!rq->d_sig.p || rq->d_sig.len == 0) {
			return send_error(ax, rq, 401, BX_DP_R_NO_SIGNATURE,
			                  "Not Verified with error: Missing signature", out);
		}
		if (conf->verify_signatures && !verify_sig(ax, rq, m, mlen)) {
			snprintf(msg, sizeof(msg),
			         "Not Verified with error: Signature mismatch with %.*s and %.*s",
			         (int)mlen, m, (int)BX_MIN(rq->d_sig.len, 200u), rq->d_sig.p);
			return send_error(ax, rq, 401, BX_DP_R_BAD_SIGNATURE, msg, out);
		}
	}
	{
		/* keep the entry only while the nonce could still pass the window:
		 * until nonce + 4 s + timeout (legacy nonces: as long as a fresh one) */
		double until = (double)BX_NONCE_ALLOWED_DELTA_NS / 1e9 + rq->timeout;

		if (rq->have_version && rq->version >= BX_V_7_2_0 &&
		    rq->nonce > (int64_t)rq->start_wall_ns) {
			until += (double)(rq->nonce - (int64_t)rq->start_wall_ns) / 1e9;
		}
		if (!(until < 3600)) {
			until = 3600; /* also a timeout of inf */
		} else if (!(until > 0)) {
			until = 0; /* a negative timeout */
		}
		r = bx_replay_insert(sh->replay, rkey, now_s, (uint32_t)until + 2);
	}
	if (r == -EEXIST) {
		return send_error(ax, rq, 401, BX_DP_R_REPLAY,
		                  "Not Verified with error: Nonce is too old, a newer one was last "
		                  "processed",
		                  out);
	}
	if (r < 0) {
		return send_error(ax, rq, 503, BX_DP_R_REPLAY_FULL,
		                  "Service unavailable: replay cache full", out);
	}
	stage_mark(ax, BX_DP_S_VERIFY, &t_stage);
	rq->verified = true;
	sign_sdk(ax, rq);
	t_sdk = bx_time_ns() - t_stage; /* part of responding, counted there */
	t_stage += t_sdk;

	/* body: JSON, fields, types */
	r = bx_json_parse(&j, req->body, req->content_length, ax->toks, ax->tok_cap,
	                  BX_JSON_MAX_DEPTH);
	if (r < 0) {
		return send_422(ax, rq, "json_invalid", NULL,
		                r == -E2BIG ? "JSON too complex" : "JSON decode error", out);
	}
	if (j.toks[0].type != BX_J_OBJECT) {
		return send_422(
			ax, rq, "model_attributes_type", NULL,
			"Input should be a valid dictionary or object to extract fields from", out);
	}
	for (unsigned i = 0; i < rq->type->nb_fields; i++) {
		const struct bx_syn_field *f = &rq->type->fields[i];
		const char *why;

		vals[i] = bx_json_get(&j, 0, f->name, strlen(f->name));
		if (vals[i] < 0) {
			if (f->required) {
				return send_422(ax, rq, "missing", f->name, "Field required", out);
			}
			continue;
		}
		if (bx_synapse_check_value(f, &j, vals[i], &why) < 0) {
			return send_422(ax, rq, why, f->name, "Input has the wrong type", out);
		}
	}

	/* body hash (§2): a mismatch is a 500 in the stock axon */
	if (rq->type->nb_hash == 0) {
		memcpy(hash, EMPTY_HASH, sizeof(EMPTY_HASH));
	} else {
		bx_synapse_body_hash(rq->type, &j, vals, hash);
	}
	if (!rq->body_hash.p || rq->body_hash.len != 64 || memcmp(rq->body_hash.p, hash, 64) != 0) {
		char id[37];

		uuid4(ax, id);
		snprintf(msg, sizeof(msg), "Internal Server Error #%s", id);
		return send_error(ax, rq, 500, BX_DP_R_BODY_HASH, msg, out);
	}

	/* handler */
	stage_mark(ax, BX_DP_S_BODY, &t_stage);
	memset(c, 0, sizeof(*c));
	c->ax = ax;
	c->rq = rq;
	c->j = &j;
	c->vals = vals;
	c->out_buf = ax->out_buf;
	snprintf(c->hotkey, sizeof(c->hotkey), "%.*s", (int)BX_MIN(rq->d_hotkey.len, 63u),
	         rq->d_hotkey.p);
	if (sh->handlers[ti].fn) {
		r = sh->handlers[ti].fn(sh->handlers[ti].arg, c);
		if (r == BX_CALL_PENDING && c->ticket) {
			return BX_AXON_PENDING; /* bx_axon_finish() writes the answer */
		}
		if (c->ticket) { /* deferred, then answered anyway */
			bx_axon_ticket_release(ax, c->ticket);
			c->ticket = NULL;
		}
		if (r == BX_CALL_PENDING) {
			r = -EINVAL; /* pending without a ticket */
		}
		if (r < 0 && !c->fail_status) {
			char id[37];

			uuid4(ax, id);
			snprintf(c->fail_msg, sizeof(c->fail_msg), "Internal Server Error #%s", id);
			c->fail_status = 500;
		}
	} else if (rq->type->nb_fields != 0) {
		/* No model behind this synapse: what a stock axon answers for a handler
     * raising a SynapseException with status 503 (§4.3). */
		snprintf(c->fail_msg, sizeof(c->fail_msg),
		         "Service unavailable: no model loaded for %s", rq->type->name);
		c->fail_status = 503;
		return send_error(ax, rq, 503, BX_DP_R_UNAVAILABLE, c->fail_msg, out);
	}
	stage_mark(ax, BX_DP_S_HANDLER, &t_stage);
	if (c->fail_status) {
		return send_error(ax, rq, c->fail_status, BX_DP_R_HANDLER, c->fail_msg, out);
	}
	r = send_success(ax, rq, c, out);
	t_stage -= t_sdk;
	stage_mark(ax, BX_DP_S_RESPOND, &t_stage);
	return r;
}

/* ---------------- deferred answers ---------------- */

struct bx_call_ticket *
bx_call_defer(struct bx_call *c)
{
	struct bx_axon_ctx *ax = c->ax;
	const struct bx_peer *peer = c->rq->peer;
	struct bx_call_ticket *t;

	if (c->ticket) {
		return c->ticket;
	}
	if (ax->nb_free_tickets == 0 || !peer || !peer->conn) {
		return NULL;
	}
	t = &ax->tickets[ax->free_tickets[--ax->nb_free_tickets]];
	t->busy = true;
	t->conn = peer->conn;
	t->conn_gen = peer->conn_gen;
	t->type = (uint8_t)bx_synapse_index(c->rq->type);
	t->start_wall_ns = c->rq->start_wall_ns;
	t->fail_status = 0;
	t->fail_msg[0] = 0;
	t->out_used = 0;
	memset(t->out_set, 0, sizeof(t->out_set));
	t->state = 0;
	t->s_head = t->s_tail = 0;
	t->seen_stream = t->seen_done = t->head_sent = false;
	c->ticket = t;
	return t;
}

int
bx_ticket_set_output(struct bx_call_ticket *t, const char *field, const char *json, size_t len)
{
	const struct bx_synapse_type *type = &bx_synapse_types[t->type];
	int f = bx_synapse_field(type, field, strlen(field));

	if (f < 0 || !type->fields[f].output) {
		return -ENOENT;
	}
	if (__atomic_load_n(&t->state, __ATOMIC_RELAXED) & BX_TK_STREAM) {
		return -EBUSY; /* out_buf is the stream's ring */
	}
	if (len > t->out_cap - t->out_used) {
		return -ENOSPC;
	}
	memcpy(t->out_buf + t->out_used, json, len);
	t->out_off[f] = (uint32_t)t->out_used;
	t->out_len[f] = (uint32_t)len;
	t->out_set[f] = true;
	t->out_used += len;
	return 0;
}

int
bx_ticket_fail(struct bx_call_ticket *t, int status, const char *message)
{
	t->fail_status = status;
	snprintf(t->fail_msg, sizeof(t->fail_msg), "%s", message);
	return 0;
}

/*
 * Tell the worker: set `bits` with QUEUED, and put the ticket on the done
 * ring unless it is there already (the worker clears QUEUED before it looks
 * at the ticket, so nothing set here goes unseen). After BX_TK_DONE the
 * ticket may be reused at once: nothing of it is read after the fetch_or.
 */
static void
ticket_signal(struct bx_call_ticket *t, uint32_t bits)
{
	struct bx_axon_ctx *ax = t->ax;
	void (*wake)(void *arg);
	void *p = t;

	if (__atomic_fetch_or(&t->state, bits | BX_TK_QUEUED, __ATOMIC_ACQ_REL) & BX_TK_QUEUED) {
		return;
	}
	/* the ring holds every ticket of the pool, each at most once: it cannot be full */
	while (bx_mpmc_enqueue_burst(ax->done, &p, 1) != 1) {
		;
	}
	/* counted first, then read: bx_axon_wake_off clears it first, then waits (both seq_cst) */
	__atomic_fetch_add(&ax->wakers, 1, __ATOMIC_SEQ_CST);
	wake = __atomic_load_n(&ax->wake, __ATOMIC_SEQ_CST);
	if (wake) {
		wake(ax->wake_arg);
	}
	__atomic_fetch_sub(&ax->wakers, 1, __ATOMIC_SEQ_CST);
}

void
bx_axon_wake_off(struct bx_axon_ctx *ax)
{
	__atomic_store_n(&ax->wake, NULL, __ATOMIC_SEQ_CST);
	for (uint32_t i = 0; i < ax->nb_tickets; i++) {
		__atomic_store_n(&ax->tickets[i].conn, NULL, __ATOMIC_SEQ_CST);
	}
	while (__atomic_load_n(&ax->wakers, __ATOMIC_SEQ_CST) != 0) {
		sched_yield();
	}
}

int
bx_ticket_stream(struct bx_call_ticket *t, const void *data, size_t len)
{
	uint64_t head = __atomic_load_n(&t->s_head, __ATOMIC_RELAXED); /* ours */
	uint64_t tail = __atomic_load_n(&t->s_tail, __ATOMIC_ACQUIRE);
	size_t off, n1;

	if (!bx_synapse_types[t->type].streaming) {
		return -EINVAL;
	}
	if (t->out_used) {
		return -EBUSY;
	}
	if (len > t->out_cap - (size_t)(head - tail)) {
		return -ENOBUFS;
	}
	off = (size_t)(head % t->out_cap);
	n1 = BX_MIN(len, t->out_cap - off);
	memcpy(t->out_buf + off, data, n1);
	memcpy(t->out_buf, (const char *)data + n1, len - n1);
	__atomic_store_n(&t->s_head, head + len, __ATOMIC_RELEASE);
	ticket_signal(t, BX_TK_STREAM);
	return 0;
}

void
bx_ticket_complete(struct bx_call_ticket *t)
{
	ticket_signal(t, BX_TK_DONE);
}

struct bx_call_ticket *
bx_axon_next_done(struct bx_axon_ctx *ax)
{
	struct bx_call_ticket *t;
	void *p;
	uint32_t st;

	if (!ax->done || bx_mpmc_dequeue_burst(ax->done, &p, 1) != 1) {
		return NULL;
	}
	t = p;
	st = __atomic_fetch_and(&t->state, ~(uint32_t)BX_TK_QUEUED, __ATOMIC_ACQ_REL);
	t->seen_stream = (st & BX_TK_STREAM) != 0;
	t->seen_done = (st & BX_TK_DONE) != 0;
	return t;
}

void
bx_axon_ticket_release(struct bx_axon_ctx *ax, struct bx_call_ticket *t)
{
	if (!t->busy) {
		return;
	}
	t->busy = false;
	ax->free_tickets[ax->nb_free_tickets++] = t->idx;
}

/* The request state of a deferred request, from the same bytes again. */
static void
rq_again(struct bx_axon_ctx *ax, struct rq *rq, const struct bx_http_req *req,
         const struct bx_peer *peer, const struct bx_call_ticket *t)
{
	memset(rq, 0, sizeof(*rq));
	rq->http = req;
	rq->peer = peer;
	rq->keep_alive = req->keep_alive;
	rq->type = &bx_synapse_types[t->type];
	rq->start_wall_ns = t->start_wall_ns;
	(void)parse_bt_headers(rq); /* parsed fine the first time */
	rq->verified = true;
	sign_sdk(ax, rq);
}

int
bx_axon_finish(struct bx_axon_ctx *ax, const struct bx_http_req *req, const struct bx_peer *peer,
               struct bx_call_ticket *t, struct bx_obuf *out)
{
	struct rq rq_, *rq = &rq_;
	struct bx_call call_, *c = &call_;
	struct bx_json j;
	int vals[BX_SYN_MAX_FIELDS];
	uint64_t t_stage = bx_time_ns();
	int r;

	rq_again(ax, rq, req, peer, t);
	if (t->fail_status) {
		r = send_error(ax, rq, t->fail_status, BX_DP_R_HANDLER, t->fail_msg, out);
		bx_axon_ticket_release(ax, t);
		return r;
	}
	if (bx_json_parse(&j, req->body, req->content_length, ax->toks, ax->tok_cap,
	                  BX_JSON_MAX_DEPTH) < 0 ||
	    j.toks[0].type != BX_J_OBJECT) {
		bx_axon_ticket_release(ax, t);
		return send_error(ax, rq, 500, BX_DP_R_HANDLER, "Internal Server Error", out);
	}
	for (unsigned i = 0; i < rq->type->nb_fields; i++) {
		const char *name = rq->type->fields[i].name;

		vals[i] = bx_json_get(&j, 0, name, strlen(name));
	}
	memset(c, 0, sizeof(*c));
	c->ax = ax;
	c->rq = rq;
	c->j = &j;
	c->vals = vals;
	c->out_buf = t->out_buf;
	memcpy(c->out_off, t->out_off, sizeof(c->out_off));
	memcpy(c->out_len, t->out_len, sizeof(c->out_len));
	memcpy(c->out_set, t->out_set, sizeof(c->out_set));
	r = send_success(ax, rq, c, out);
	stage_mark(ax, BX_DP_S_RESPOND, &t_stage);
	bx_axon_ticket_release(ax, t);
	return r;
}

/* ---------------- streamed answers ---------------- */

/* Largest chunk-size line and trailing CRLF ("ffffffffffffffff\r\n...\r\n"). */
#define CHUNK_OVERHEAD 20

/* Move what the producer wrote into out as one chunk, as far as out has room. */
static void
stream_chunk(struct bx_call_ticket *t, struct bx_obuf *out)
{
	uint64_t head = __atomic_load_n(&t->s_head, __ATOMIC_ACQUIRE);
	uint64_t tail = t->s_tail; /* ours */
	size_t room = out->cap - out->len, n, off, n1;

	if (head == tail || room <= CHUNK_OVERHEAD + 5) {
		return;
	}
	/* keep room for the last chunk so a finished stream can always end */
	n = BX_MIN((size_t)(head - tail), room - CHUNK_OVERHEAD - 5);
	off = (size_t)(tail % t->out_cap);
	n1 = BX_MIN(n, t->out_cap - off);
	bx_obuf_printf(out, "%zx\r\n", n);
	bx_obuf_put(out, t->out_buf + off, n1);
	bx_obuf_put(out, t->out_buf, n - n1);
	bx_obuf_put(out, "\r\n", 2);
	__atomic_store_n(&t->s_tail, tail + n, __ATOMIC_RELEASE);
}

int
bx_axon_stream(struct bx_axon_ctx *ax, const struct bx_http_req *req, const struct bx_peer *peer,
               struct bx_call_ticket *t, struct bx_obuf *out)
{
	bool keep;

	if (!t->head_sent) {
		struct rq rq_, *rq = &rq_;

		rq_again(ax, rq, req, peer, t);
		success_head(ax, rq, out);
		bx_http_end_head_chunked(out, rq->keep_alive);
		t->keep_alive = rq->keep_alive;
		t->head_sent = true;
	}
	stream_chunk(t, out);
	if (!t->seen_done || __atomic_load_n(&t->s_head, __ATOMIC_ACQUIRE) != t->s_tail ||
	    out->cap - out->len < 5) {
		return BX_AXON_PENDING;
	}
	if (t->fail_status) {
		/* Too late for a status: end it without the last chunk, so the client
		 * sees a cut stream rather than a short one that looks whole. */
		ax->stats.rejected[BX_DP_R_HANDLER]++;
		keep = false;
	} else {
		bx_http_chunk_end(out);
		ax->stats.responses_ok++;
		keep = t->keep_alive;
	}
	bx_axon_ticket_release(ax, t);
	return keep ? BX_AXON_KEEP : BX_AXON_CLOSE;
}

void
bx_axon_stream_orphan(struct bx_axon_ctx *ax, struct bx_call_ticket *t)
{
	if (t->seen_done) {
		bx_axon_ticket_release(ax, t);
		return;
	}
	/* the producer is still writing: make room so it sees abandoned, not -ENOBUFS */
	__atomic_store_n(&t->s_tail, __atomic_load_n(&t->s_head, __ATOMIC_ACQUIRE),
	                 __ATOMIC_RELEASE);
}

/* ---------------- set-up ---------------- */

int
bx_axon_shared_init(struct bx_axon_shared *sh, const struct bx_dp_conf *conf, struct bx_errbuf *eb)
{
	int r;
	size_t o = 0;
	uint8_t rnd[16];

	memset(sh, 0, sizeof(*sh));
	sh->conf = *conf;
	sh->lim.max_request_line = conf->max_request_line;
	sh->lim.max_headers = conf->max_headers;
	sh->lim.max_header_line = conf->max_header_line;
	sh->lim.max_head = conf->max_head;
	sh->lim.max_body = conf->max_body;
	if (conf->hotkey) {
		r = bx_ss58_encode(sh->hotkey, sizeof(sh->hotkey), bx_sr25519_public(conf->hotkey),
		                   BX_SS58_BITTENSOR);
		if (r < 0) {
			return bx_err(eb, -r, "dataplane: cannot encode the axon hotkey");
		}
	} else {
		return bx_err(eb, EINVAL, "dataplane: no axon hotkey configured");
	}
	sh->hotkey_len = strlen(sh->hotkey);
	{
		uint64_t a = bx_hash64(sh->hotkey, sh->hotkey_len, bx_wall_ns());
		uint64_t b = bx_hash64(&a, sizeof(a), bx_time_ns());

		memcpy(rnd, &a, 8);
		memcpy(rnd + 8, &b, 8);
		snprintf(sh->uuid, sizeof(sh->uuid),
		         "%02x%02x%02x%02x-%02x%02x-11%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		         rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6],
		         (rnd[7] & 0x3f) | 0x80, rnd[8], rnd[9], rnd[10], rnd[11], rnd[12], rnd[13],
		         rnd[14]);
	}
	o += (size_t)snprintf(sh->synapse_list, sizeof(sh->synapse_list), "[");
	for (unsigned i = 0; i < bx_nb_synapse_types; i++) {
		o += (size_t)snprintf(sh->synapse_list + o, sizeof(sh->synapse_list) - o, "%s'%s'",
		                      i ? ", " : "", bx_synapse_types[i].name);
	}
	snprintf(sh->synapse_list + o, sizeof(sh->synapse_list) - o, "]");
	r = bx_replay_create(conf->replay_slots, &sh->replay);
	if (r < 0) {
		return bx_err(eb, -r, "dataplane: cannot allocate the replay cache");
	}
	return 0;
}

void
bx_axon_shared_fini(struct bx_axon_shared *sh)
{
	bx_replay_destroy(sh->replay);
	sh->replay = NULL;
	bx_metagraph_free(sh->mg);
	sh->mg = NULL;
}

int
bx_axon_ctx_init(struct bx_axon_ctx *ax, const struct bx_axon_shared *sh)
{
	const struct bx_dp_conf *c = &sh->conf;
	unsigned nw = sh->nb_workers ? sh->nb_workers : 1;

	memset(ax, 0, sizeof(*ax));
	ax->sh = sh;
	ax->tok_cap = c->max_body / 2 + 64;
	ax->toks = bx_malloc(sizeof(*ax->toks) * ax->tok_cap);
	ax->body_cap = c->tx_buf;
	ax->body_buf = bx_malloc(ax->body_cap);
	ax->out_cap = c->tx_buf;
	ax->out_buf = bx_malloc(ax->out_cap);
	ax->nb_tickets = BX_MIN(c->max_conns, 256u);
	ax->tickets = bx_calloc(ax->nb_tickets, sizeof(*ax->tickets));
	ax->free_tickets = bx_calloc(ax->nb_tickets, sizeof(*ax->free_tickets));
	ax->ticket_mem = bx_malloc((size_t)ax->nb_tickets * c->tx_buf);
	if (ax->tickets && ax->free_tickets && ax->ticket_mem) {
		for (uint32_t i = 0; i < ax->nb_tickets; i++) {
			struct bx_call_ticket *t = &ax->tickets[i];

			t->ax = ax;
			t->idx = i;
			t->out_buf = ax->ticket_mem + (size_t)i * c->tx_buf;
			t->out_cap = c->tx_buf;
			ax->free_tickets[ax->nb_free_tickets++] = ax->nb_tickets - 1 - i;
		}
	}
	if (!ax->tickets || !ax->free_tickets || !ax->ticket_mem ||
	    bx_mpmc_create(ax->nb_tickets, &ax->done) < 0 || !ax->toks || !ax->body_buf ||
	    !ax->out_buf || bx_tb_init(&ax->tb_ip, 4096, c->ip_rate / nw, c->ip_burst / nw) < 0 ||
	    bx_tb_init(&ax->tb_hotkey, 1024, c->hotkey_rate / nw, c->hotkey_burst / nw) < 0) {
		bx_axon_ctx_fini(ax);
		return -ENOMEM;
	}
	return 0;
}

void
bx_axon_ctx_fini(struct bx_axon_ctx *ax)
{
	bx_free(ax->toks);
	bx_free(ax->body_buf);
	bx_free(ax->out_buf);
	bx_tb_fini(&ax->tb_ip);
	bx_tb_fini(&ax->tb_hotkey);
	bx_mpmc_destroy(ax->done);
	bx_free(ax->tickets);
	bx_free(ax->free_tickets);
	bx_free(ax->ticket_mem);
	ax->done = NULL;
	ax->tickets = NULL;
	ax->free_tickets = NULL;
	ax->ticket_mem = NULL;
	ax->nb_tickets = ax->nb_free_tickets = 0;
	ax->toks = NULL;
	ax->body_buf = NULL;
	ax->out_buf = NULL;
}
