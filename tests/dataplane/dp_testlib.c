/* Test helpers: see dp_testlib.h. */
#include "dp_testlib.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/ip.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <bx/platform.h>

static void
mk(uint8_t fill, struct bx_sr25519_keypair **kp, char *ss58)
{
	uint8_t seed[32];

	memset(seed, fill, sizeof(seed));
	if (bx_sr25519_keypair_from_seed(seed, kp) < 0 ||
	    bx_ss58_encode(ss58, 64, bx_sr25519_public(*kp), BX_SS58_BITTENSOR) < 0) {
		fprintf(stderr, "dpt: key generation failed\n");
		abort();
	}
}

void
dpt_keys_make(struct dpt_keys *k)
{
	if (bx_crypto_init() < 0) {
		abort();
	}
	mk(0x11, &k->miner, k->miner_ss58);
	mk(0x22, &k->validator, k->validator_ss58);
	mk(0x33, &k->nopermit, k->nopermit_ss58);
	mk(0x44, &k->stranger, k->stranger_ss58);
}

void
dpt_keys_free(struct dpt_keys *k)
{
	bx_sr25519_keypair_destroy(k->miner);
	bx_sr25519_keypair_destroy(k->validator);
	bx_sr25519_keypair_destroy(k->nopermit);
	bx_sr25519_keypair_destroy(k->stranger);
}

size_t
dpt_metagraph_json(const struct dpt_keys *k, char *buf, size_t cap)
{
	return (size_t)snprintf(
		buf, cap,
		"{\"netuid\": 1, \"block\": 4242, \"neurons\": ["
		"{\"uid\": 0, \"hotkey\": \"%s\", \"coldkey\": \"%s\", \"stake\": "
		"5000.0, "
		"\"validator_permit\": true, \"ip\": \"127.0.0.1\"}, "
		"{\"uid\": 1, \"hotkey\": \"%s\", \"coldkey\": \"%s\", \"stake\": 10.0, "
		"\"validator_permit\": false, \"ip\": \"127.0.0.2\"}, "
		"{\"uid\": 2, \"hotkey\": \"%s\", \"stake\": 0, \"validator_permit\": "
		"false}]}",
		k->validator_ss58, k->stranger_ss58, k->nopermit_ss58, k->stranger_ss58,
		k->miner_ss58);
}

static const char EMPTY[] = "a7ffc6f8bf1ed76651c14756a061d662f580ff4de43b49fa82d80a4b80f8434a";

size_t
dpt_build(const struct dpt_req *r, char *buf, size_t cap)
{
	char body[65536], sig[140] = "", msg[1024];
	const char *hash = r->body_hash ? r->body_hash : EMPTY;
	const char *uuid = r->uuid ? r->uuid : "5ecbd69c-1cec-11ee-b0dc-e29ce36fec1a";
	int64_t nonce = r->nonce ? r->nonce : (int64_t)bx_wall_ns();
	int64_t version = r->version ? r->version : 10002000;
	size_t blen, n;
	int ml;

	ml = snprintf(msg, sizeof(msg), "%" PRId64 ".%s.%s.%s.%s", (int64_t)nonce, r->signer_ss58,
	              r->axon_hotkey, uuid, hash);
	if (r->sig_mode != 2 && r->sig_mode != 3) {
		uint8_t s[64];
		char wrapped[1100];

		if (r->sig_mode == 4) {
			snprintf(wrapped, sizeof(wrapped), "<Bytes>%s</Bytes>", msg);
			bx_sr25519_sign(s, wrapped, strlen(wrapped), r->signer);
		} else {
			bx_sr25519_sign(s, msg, (size_t)ml, r->signer);
		}
		if (r->sig_mode == 1) {
			s[5] ^= 1;
		}
		sig[0] = '0';
		sig[1] = 'x';
		bx_hex_encode(sig + 2, s, 64);
	}
	if (r->raw_body) {
		blen = (size_t)snprintf(body, sizeof(body), "%s", r->raw_body);
	} else {
		blen = (size_t)snprintf(
			body, sizeof(body),
			"{\"name\": \"%s\", \"timeout\": 12.0, \"total_size\": 1234, "
			"\"header_size\": 0, "
			"\"dendrite\": {\"status_code\": null, \"status_message\": null, "
			"\"process_time\": null, \"ip\": \"127.0.0.1\", \"port\": null, "
			"\"version\": "
			"%" PRId64 ", \"nonce\": %" PRId64
			", \"uuid\": \"%s\", \"hotkey\": \"%s\", \"signature\": "
			"%s%s%s}, "
			"\"axon\": {\"status_code\": null, \"status_message\": null, "
			"\"process_time\": "
			"null, \"ip\": \"127.0.0.1\", \"port\": 8091, \"version\": null, "
			"\"nonce\": "
			"null, \"uuid\": null, \"hotkey\": \"%s\", \"signature\": null}, "
			"\"computed_body_hash\": \"\"%s%s}",
			r->synapse, (int64_t)version, (int64_t)nonce, uuid, r->signer_ss58,
			sig[0] ? "\"" : "", sig[0] ? sig : "null", sig[0] ? "\"" : "",
			r->axon_hotkey, r->fields_json ? ", " : "",
			r->fields_json ? r->fields_json : "");
	}
	n = (size_t)snprintf(buf, cap,
	                     "POST /%s HTTP/1.1\r\n"
	                     "Host: 127.0.0.1:8091\r\n"
	                     "name: %s\r\n"
	                     "timeout: 12.0\r\n"
	                     "bt_header_axon_ip: 127.0.0.1\r\n"
	                     "bt_header_axon_port: 8091\r\n"
	                     "bt_header_axon_hotkey: %s\r\n"
	                     "bt_header_dendrite_ip: 127.0.0.1\r\n"
	                     "bt_header_dendrite_version: %" PRId64 "\r\n"
	                     "%s%" PRId64 "%s"
	                     "bt_header_dendrite_uuid: %s\r\n"
	                     "bt_header_dendrite_hotkey: %s\r\n"
	                     "%s%s%s"
	                     "header_size: 640\r\n"
	                     "total_size: 1234\r\n"
	                     "computed_body_hash: %s\r\n"
	                     "Accept: */*\r\n"
	                     "Accept-Encoding: gzip, deflate\r\n"
	                     "User-Agent: Python/3.11 aiohttp/3.9.5\r\n"
	                     "%s"
	                     "Content-Length: %zu\r\n"
	                     "Content-Type: application/json\r\n"
	                     "%s"
	                     "\r\n",
	                     r->synapse, r->synapse, r->axon_hotkey, (int64_t)version,
	                     r->no_nonce ? "" : "bt_header_dendrite_nonce: ", (int64_t)nonce,
	                     r->no_nonce ? "" : "\r\n", uuid, r->signer_ss58,
	                     r->sig_mode == 3 ? "" : "bt_header_dendrite_signature: ", sig,
	                     r->sig_mode == 3 ? "" : "\r\n", hash,
	                     r->extra_headers ? r->extra_headers : "", blen,
	                     r->conn_close ? "Connection: close\r\n" : "");
	if (r->no_nonce) {
		/* remove the digits printed for the absent nonce header */
		char tmp[32];
		char *p;

		snprintf(tmp, sizeof(tmp), "%" PRId64 "", (int64_t)nonce);
		p = strstr(buf, tmp);
		if (p && p < strstr(buf, "bt_header_dendrite_uuid")) {
			memmove(p, p + strlen(tmp), n - (size_t)(p - buf) - strlen(tmp) + 1);
			n -= strlen(tmp);
		}
	}
	if (n + blen > cap) {
		abort();
	}
	memcpy(buf + n, body, blen);
	return n + blen;
}

int
dpt_parse_resp(const char *buf, size_t len, struct dpt_resp *out)
{
	const char *end = memmem(buf, len, "\r\n\r\n", 4);
	const char *cl;
	char v[32];

	if (!end || len < 12) {
		return -1;
	}
	out->status = atoi(buf + 9);
	out->head = buf;
	out->head_len = (size_t)(end - buf) + 4;
	out->body = end + 4;
	if (dpt_header(out, "content-length", v, sizeof(v))) {
		out->body_len = (size_t)strtoul(v, NULL, 10);
		out->total = out->head_len + out->body_len;
		return out->total <= len ? 0 : -1;
	}
	cl = memmem(out->body, len - out->head_len, "0\r\n\r\n", 5);
	if (!cl) {
		return -1;
	}
	out->body_len = (size_t)(cl - out->body);
	out->total = (size_t)(cl + 5 - buf);
	return 0;
}

bool
dpt_header(const struct dpt_resp *r, const char *name, char *v, size_t cap)
{
	size_t nl = strlen(name);
	const char *p = r->head, *end = r->head + r->head_len;

	while (p < end) {
		const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);

		if (!eol) {
			break;
		}
		if ((size_t)(eol - p) > nl + 1 && memcmp(p, name, nl) == 0 && p[nl] == ':') {
			const char *s = p + nl + 1;
			size_t n;

			while (*s == ' ') {
				s++;
			}
			n = (size_t)(eol - s);
			if (n >= cap) {
				n = cap - 1;
			}
			memcpy(v, s, n);
			v[n] = 0;
			return true;
		}
		p = eol + 2;
	}
	return false;
}

static uint16_t
csum(const void *p, size_t n, uint32_t sum)
{
	const uint8_t *b = p;

	for (size_t i = 0; i + 1 < n; i += 2) {
		sum += (uint32_t)(b[i] << 8 | b[i + 1]);
	}
	while (sum >> 16) {
		sum = (sum & 0xffff) + (sum >> 16);
	}
	return htons((uint16_t)~sum);
}

void
dpt_syn_frame(uint8_t pkt[40], const char *src, uint32_t daddr, uint16_t sport, uint16_t dport,
              uint32_t seq)
{
	struct iphdr *ip = (struct iphdr *)pkt;
	struct tcphdr *th = (struct tcphdr *)(pkt + 20);
	uint8_t pseudo[12];
	uint32_t sum = 0;

	memset(pkt, 0, 40);
	ip->version = 4;
	ip->ihl = 5;
	ip->tot_len = htons(40);
	ip->ttl = 64;
	ip->protocol = IPPROTO_TCP;
	inet_pton(AF_INET, src, &ip->saddr);
	ip->daddr = daddr;
	th->source = htons(sport);
	th->dest = htons(dport);
	th->seq = htonl(seq);
	th->doff = 5;
	th->syn = 1;
	th->window = htons(65535);
	/* TCP checksum: pseudo header (addresses, protocol, TCP length), then the header */
	memcpy(pseudo, &ip->saddr, 8);
	pseudo[8] = 0;
	pseudo[9] = IPPROTO_TCP;
	pseudo[10] = 0;
	pseudo[11] = 20;
	for (int k = 0; k < 12; k += 2) {
		sum += (uint32_t)(pseudo[k] << 8 | pseudo[k + 1]);
	}
	th->check = csum(th, 20, sum);
}

unsigned
dpt_pipeline(int fd, const char *req, size_t n, size_t sent, unsigned want, uint64_t deadline_ns)
{
	static char buf[1 << 20];
	size_t off = 0, len = 0;
	unsigned got = 0;

	while (got < want && bx_time_ns() < deadline_ns) {
		struct dpt_resp r;
		ssize_t k;

		if (sent < n) {
			k = send(fd, req + sent, n - sent, MSG_DONTWAIT | MSG_NOSIGNAL);
			sent += k > 0 ? (size_t)k : 0;
		}
		while (dpt_parse_resp(buf + off, len - off, &r) == 0) {
			if (r.status != 200) {
				fprintf(stderr, "response %u: status %d\n", got, r.status);
				return got;
			}
			off += r.total;
			got++;
		}
		if (off > sizeof(buf) / 2) {
			memmove(buf, buf + off, len - off);
			len -= off;
			off = 0;
		}
		k = recv(fd, buf + len, sizeof(buf) - len, MSG_DONTWAIT);
		if (k > 0) {
			len += (size_t)k;
		} else if (k == 0) {
			fprintf(stderr, "closed after %u responses\n", got);
			return got;
		} else {
			usleep(200);
		}
	}
	return got;
}

bool
dpt_rx_more(struct dpt_rx *rx)
{
	ssize_t k = rx->len < rx->cap ? recv(rx->fd, rx->buf + rx->len, rx->cap - rx->len, 0) : 0;

	if (k <= 0) {
		rx->eof = true;
		return false;
	}
	rx->len += (size_t)k;
	return true;
}

bool
dpt_read_resp(struct dpt_rx *rx, struct dpt_resp *out)
{
	while (dpt_parse_resp(rx->buf + rx->off, rx->len - rx->off, out) != 0) {
		if (!dpt_rx_more(rx)) {
			return false;
		}
	}
	rx->off += out->total;
	return true;
}

/* The next chunk at rx->off: 1 taken (size in *size), 0 incomplete. */
static int
take_chunk(struct dpt_rx *rx, struct dpt_stream *s, size_t *size)
{
	const char *p = rx->buf + rx->off;
	const char *eol = memmem(p, rx->len - rx->off, "\r\n", 2);
	size_t n, line;

	if (!eol) {
		return 0;
	}
	n = strtoul(p, NULL, 16);
	line = (size_t)(eol + 2 - p);
	if (rx->len - rx->off < line + n + 2) {
		return 0;
	}
	if (n > 0 && s->text_len + n <= sizeof(s->text)) {
		memcpy(s->text + s->text_len, eol + 2, n);
	}
	s->text_len += n;
	rx->off += line + n + 2;
	*size = n;
	return 1;
}

/* Whether the bytes held after rx->off already hold the last chunk. */
static bool
end_held(const struct dpt_rx *rx)
{
	size_t off = rx->off;

	for (;;) {
		const char *p = rx->buf + off;
		const char *eol = memmem(p, rx->len - off, "\r\n", 2);
		size_t n;

		if (!eol) {
			return false;
		}
		n = strtoul(p, NULL, 16);
		if (n == 0) {
			return true;
		}
		off += (size_t)(eol + 2 - p) + n + 2;
		if (off >= rx->len) {
			return false;
		}
	}
}

bool
dpt_read_stream(struct dpt_rx *rx, struct dpt_stream *s)
{
	const char *end;

	memset(s, 0, sizeof(*s));
	while (!(end = memmem(rx->buf + rx->off, rx->len - rx->off, "\r\n\r\n", 4))) {
		if (!dpt_rx_more(rx)) {
			return false;
		}
	}
	s->head_ns = bx_time_ns();
	s->head.status = atoi(rx->buf + rx->off + 9);
	s->head.head = rx->buf + rx->off;
	s->head.head_len = (size_t)(end + 4 - s->head.head);
	rx->off += s->head.head_len;
	for (;;) {
		size_t n;

		if (!take_chunk(rx, s, &n)) {
			if (!dpt_rx_more(rx)) {
				return s->text_len <= sizeof(s->text); /* cut: not ended */
			}
			continue;
		}
		if (n == 0) {
			s->end_ns = bx_time_ns();
			s->ended = true;
			return s->text_len <= sizeof(s->text);
		}
		if (s->nb_chunks++ == 0) {
			s->first_chunk_ns = bx_time_ns();
			s->first_before_end = !end_held(rx);
		}
	}
}

bool
dpt_stream_ok(const struct dpt_stream *s)
{
	char v[64];

	return s->head.status == 200 && s->ended &&
	       dpt_header(&s->head, "content-type", v, sizeof(v)) &&
	       strcmp(v, "text/event-stream") == 0 &&
	       dpt_header(&s->head, "transfer-encoding", v, sizeof(v)) &&
	       strcmp(v, "chunked") == 0 &&
	       dpt_header(&s->head, "bt_header_axon_status_code", v, sizeof(v)) &&
	       strcmp(v, "200") == 0;
}

void
dpt_req_init(struct dpt_req *r, const struct dpt_keys *k, const char *synapse)
{
	memset(r, 0, sizeof(*r));
	r->synapse = synapse;
	r->signer = k->validator;
	r->signer_ss58 = k->validator_ss58;
	r->axon_hotkey = k->miner_ss58;
}
