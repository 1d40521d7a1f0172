/*
 * Dendrite-exact request building (dendrite.h). Python formatting rules
 * (json.dumps, repr, str) are reproduced here rather than taken from the
 * dataplane's private json.h, so the client side depends only on public
 * headers.
 */
#include "dendrite.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include <bx/crypto.h>
#include <bx/platform.h>

/* ======================= Output buffer ======================= */

void
bx_sbuf_init(struct bx_sbuf *b, char *mem, size_t cap)
{
	b->p = mem;
	b->len = 0;
	b->cap = cap;
	b->overflow = false;
}

void
bx_sbuf_put(struct bx_sbuf *b, const void *s, size_t n)
{
	if (n == 0) {
		return;
	}
	if (n > b->cap - b->len) {
		b->overflow = true;
		n = b->cap - b->len;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

void
bx_sbuf_puts(struct bx_sbuf *b, const char *s)
{
	bx_sbuf_put(b, s, strlen(s));
}

void
bx_sbuf_printf(struct bx_sbuf *b, const char *fmt, ...)
{
	va_list ap;
	size_t room = b->cap - b->len;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(b->p + b->len, room, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= room) {
		b->overflow = true;
		b->len = b->cap;
		return;
	}
	b->len += (size_t)n;
}

/* ======================= Python formatting ======================= */

int
bx_py_float(char buf[32], double v, bool json)
{
	char tmp[40], digits[20];
	int p, e, nd = 0, i, n = 0;
	char *s;

	if (isnan(v)) {
		return snprintf(buf, 32, "%s", json ? "NaN" : "nan");
	}
	if (isinf(v)) {
		return snprintf(buf, 32, "%s%s", v < 0 ? "-" : "", json ? "Infinity" : "inf");
	}
	/* Shortest digits that round-trip (repr's float_repr_style "short"). */
	for (p = 1; p <= 17; p++) {
		snprintf(tmp, sizeof(tmp), "%.*e", p - 1, v);
		if (strtod(tmp, NULL) == v) {
			break;
		}
	}
	s = tmp;
	if (*s == '-') {
		buf[n++] = *s++;
	}
	for (; *s != 'e'; s++) {
		if (*s != '.') {
			digits[nd++] = *s;
		}
	}
	e = atoi(s + 1);
	while (nd > 1 && digits[nd - 1] == '0') {
		nd--;
	}
	if (e < -4 || e >= 16) {
		buf[n++] = digits[0];
		if (nd > 1) {
			buf[n++] = '.';
			memcpy(buf + n, digits + 1, (size_t)nd - 1);
			n += nd - 1;
		}
		return n + snprintf(buf + n, 32 - (size_t)n, "e%c%02d", e < 0 ? '-' : '+', abs(e));
	}
	if (e < 0) {
		buf[n++] = '0';
		buf[n++] = '.';
		for (i = 0; i < -e - 1; i++) {
			buf[n++] = '0';
		}
		memcpy(buf + n, digits, (size_t)nd);
		n += nd;
	} else {
		for (i = 0; i <= e; i++) {
			buf[n++] = i < nd ? digits[i] : '0';
		}
		buf[n++] = '.';
		if (nd > e + 1) {
			memcpy(buf + n, digits + e + 1, (size_t)(nd - e - 1));
			n += nd - e - 1;
		} else {
			buf[n++] = '0';
		}
	}
	buf[n] = 0;
	return n;
}

/* Next code point of UTF-8 text; invalid bytes give U+FFFD. */
static uint32_t
utf8_next(const unsigned char *s, size_t n, size_t *i)
{
	unsigned char c = s[*i];
	uint32_t cp;
	int len, k;

	if (c < 0x80) {
		(*i)++;
		return c;
	}
	len = c >= 0xf0 ? 4 : (c >= 0xe0 ? 3 : (c >= 0xc0 ? 2 : 0));
	if (len == 0 || *i + (size_t)len > n) {
		(*i)++;
		return 0xfffd;
	}
	cp = c & (0x7f >> len);
	for (k = 1; k < len; k++) {
		if ((s[*i + k] & 0xc0) != 0x80) {
			(*i)++;
			return 0xfffd;
		}
		cp = (cp << 6) | (s[*i + k] & 0x3f);
	}
	*i += (size_t)len;
	return cp;
}

void
bx_py_json_str(struct bx_sbuf *b, const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0;

	bx_sbuf_put(b, "\"", 1);
	while (i < n) {
		uint32_t c = utf8_next(u, n, &i);

		if (c == '"' || c == '\\') {
			bx_sbuf_printf(b, "\\%c", (char)c);
		} else if (c == '\n') {
			bx_sbuf_puts(b, "\\n");
		} else if (c == '\r') {
			bx_sbuf_puts(b, "\\r");
		} else if (c == '\t') {
			bx_sbuf_puts(b, "\\t");
		} else if (c == '\b') {
			bx_sbuf_puts(b, "\\b");
		} else if (c == '\f') {
			bx_sbuf_puts(b, "\\f");
		} else if (c < 0x20 || (c > 0x7e && c < 0x10000)) {
			bx_sbuf_printf(b, "\\u%04x", (unsigned)c);
		} else if (c >= 0x10000) {
			c -= 0x10000;
			bx_sbuf_printf(b, "\\u%04x\\u%04x", 0xd800 + (unsigned)(c >> 10),
			               0xdc00 + (unsigned)(c & 0x3ff));
		} else {
			char ch = (char)c;

			bx_sbuf_put(b, &ch, 1);
		}
	}
	bx_sbuf_put(b, "\"", 1);
}

void
bx_py_repr_str(struct bx_sbuf *b, const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	char q = memchr(s, '\'', n) != NULL && memchr(s, '"', n) == NULL ? '"' : '\'';
	size_t i = 0, start;

	bx_sbuf_put(b, &q, 1);
	while (i < n) {
		uint32_t c;

		start = i;
		c = utf8_next(u, n, &i);
		if (c == (uint32_t)q || c == '\\') {
			bx_sbuf_printf(b, "\\%c", (char)c);
		} else if (c == '\n') {
			bx_sbuf_puts(b, "\\n");
		} else if (c == '\r') {
			bx_sbuf_puts(b, "\\r");
		} else if (c == '\t') {
			bx_sbuf_puts(b, "\\t");
		} else if (c < 0x20 || (c >= 0x7f && c <= 0xa0) || c == 0xad) {
			/* Not printable in Latin-1 (str.isprintable). */
			bx_sbuf_printf(b, "\\x%02x", (unsigned)c);
		} else {
			bx_sbuf_put(b, s + start, i - start);
		}
	}
	bx_sbuf_put(b, &q, 1);
}

/* ======================= Identities ======================= */

/* str(uuid.uuid1()): 100 ns ticks since 1582-10-15, random clock_seq and node. */
static void
uuid1(char out[40])
{
	uint64_t t = bx_wall_ns() / 100 + 0x01b21dd213814000ull;
	uint8_t r[8];

	randombytes_buf(r, sizeof(r));
	snprintf(out, 40, "%08x-%04x-%04x-%02x%02x-%02x%02x%02x%02x%02x%02x",
	         (unsigned)(t & 0xffffffff), (unsigned)((t >> 32) & 0xffff),
	         (unsigned)(((t >> 48) & 0x0fff) | 0x1000), (r[0] & 0x3f) | 0x80, r[1], r[2] | 0x01,
	         r[3], r[4], r[5], r[6], r[7]);
}

int
bx_dd_identity_init(struct bx_dd_identity *id, struct bx_sr25519_keypair *kp)
{
	memset(id, 0, sizeof(*id));
	if (bx_ss58_encode(id->ss58, sizeof(id->ss58), bx_sr25519_public(kp), BX_SS58_BITTENSOR) <
	    0) {
		return -EINVAL;
	}
	id->kp = kp;
	uuid1(id->uuid);
	return 0;
}

int
bx_dd_identity_from_seed(struct bx_dd_identity *id, const uint8_t seed[32])
{
	struct bx_sr25519_keypair *kp;
	int ret = bx_sr25519_keypair_from_seed(seed, &kp);

	if (ret < 0) {
		return ret;
	}
	ret = bx_dd_identity_init(id, kp);
	if (ret < 0) {
		bx_sr25519_keypair_destroy(kp);
	}
	return ret;
}

void
bx_dd_identity_fini(struct bx_dd_identity *id)
{
	bx_sr25519_keypair_destroy(id->kp);
	id->kp = NULL;
}

uint64_t
bx_dd_next_nonce(struct bx_dd_identity *id)
{
	uint64_t now = bx_wall_ns(), prev = __atomic_load_n(&id->last_nonce, __ATOMIC_RELAXED);
	uint64_t next;

	do {
		next = now > prev ? now : prev + 1;
	} while (!__atomic_compare_exchange_n(&id->last_nonce, &prev, next, true, __ATOMIC_RELAXED,
	                                      __ATOMIC_RELAXED));
	return next;
}

/* ======================= Synapse kinds ======================= */

static const char *const kind_names[BX_DD_NB_KINDS] = { "Synapse", "TextEmbedding",
	                                                "TextGeneration",
	                                                "StreamingTextGeneration" };
static const char *const kind_short[BX_DD_NB_KINDS] = { "echo", "embedding", "generation",
	                                                "stream" };

const char *
bx_dd_kind_name(enum bx_dd_kind k)
{
	return (unsigned)k < BX_DD_NB_KINDS ? kind_names[k] : "?";
}

int
bx_dd_kind_parse(const char *s)
{
	int k;

	for (k = 0; k < BX_DD_NB_KINDS; k++) {
		if (strcmp(s, kind_names[k]) == 0 || strcmp(s, kind_short[k]) == 0) {
			return k;
		}
	}
	return -1;
}

static void
hash_hex(const void *s, size_t n, char hex[65])
{
	uint8_t d[32];

	bx_sha3_256(d, s, n);
	bx_hex_encode(hex, d, 32);
}

/* Append H(str(value)) for each hashed field of the payload (§2). */
static void
hash_parts(const struct bx_dd_payload *p, struct bx_sbuf *parts, struct bx_sbuf *tmp)
{
	char hex[65], f[32];
	unsigned i;

	if (p->kind == BX_DD_EMBEDDING) { /* required_hash_fields = ("texts",) */
		bx_sbuf_put(tmp, "[", 1);
		for (i = 0; i < p->nb_texts; i++) {
			bx_sbuf_puts(tmp, i ? ", " : "");
			bx_py_repr_str(tmp, p->texts[i], strlen(p->texts[i]));
		}
		bx_sbuf_put(tmp, "]", 1);
		hash_hex(tmp->p, tmp->len, hex);
		bx_sbuf_put(parts, hex, 64);
		return;
	}
	if (p->kind != BX_DD_GENERATION && p->kind != BX_DD_STREAM) {
		return;
	}
	/* messages, prompt, max_tokens, temperature, top_p, seed */
	hash_hex("[]", 2, hex);
	bx_sbuf_put(parts, hex, 64);
	if (p->prompt != NULL) {
		hash_hex(p->prompt, strlen(p->prompt), hex);
	} else {
		hash_hex("None", 4, hex);
	}
	bx_sbuf_put(parts, hex, 64);
	snprintf(f, sizeof(f), "%" PRId64 "", (int64_t)p->max_tokens);
	hash_hex(f, strlen(f), hex);
	bx_sbuf_put(parts, hex, 64);
	hash_hex(f, (size_t)bx_py_float(f, p->temperature, false), hex);
	bx_sbuf_put(parts, hex, 64);
	hash_hex(f, (size_t)bx_py_float(f, p->top_p, false), hex);
	bx_sbuf_put(parts, hex, 64);
	if (p->seed >= 0) {
		snprintf(f, sizeof(f), "%" PRId64 "", (int64_t)p->seed);
	} else {
		snprintf(f, sizeof(f), "None");
	}
	hash_hex(f, strlen(f), hex);
	bx_sbuf_put(parts, hex, 64);
}

void
bx_dd_body_hash(const struct bx_dd_payload *p, char hex[65])
{
	static __thread char mem_parts[64 * 8], mem_tmp[1 << 16];
	struct bx_sbuf parts, tmp;

	bx_sbuf_init(&parts, mem_parts, sizeof(mem_parts));
	bx_sbuf_init(&tmp, mem_tmp, sizeof(mem_tmp));
	hash_parts(p, &parts, &tmp);
	hash_hex(parts.p, parts.len, hex);
}

/* The synapse's own fields as json.dumps writes them after computed_body_hash. */
static void
fields_json(const struct bx_dd_payload *p, struct bx_sbuf *b)
{
	char f[32];
	unsigned i;

	if (p->kind == BX_DD_EMBEDDING) {
		bx_sbuf_puts(b, ", \"texts\": [");
		for (i = 0; i < p->nb_texts; i++) {
			bx_sbuf_puts(b, i ? ", " : "");
			bx_py_json_str(b, p->texts[i], strlen(p->texts[i]));
		}
		bx_sbuf_puts(b, "], \"model\": null, \"embeddings\": null");
		return;
	}
	if (p->kind != BX_DD_GENERATION && p->kind != BX_DD_STREAM) {
		return;
	}
	bx_sbuf_puts(b, ", \"messages\": [], \"prompt\": ");
	if (p->prompt != NULL) {
		bx_py_json_str(b, p->prompt, strlen(p->prompt));
	} else {
		bx_sbuf_puts(b, "null");
	}
	bx_sbuf_printf(b,
	               ", \"max_tokens\": %" PRId64 ", \"temperature\": ", (int64_t)p->max_tokens);
	bx_py_float(f, p->temperature, true);
	bx_sbuf_puts(b, f);
	bx_sbuf_puts(b, ", \"top_p\": ");
	bx_py_float(f, p->top_p, true);
	bx_sbuf_puts(b, f);
	if (p->seed >= 0) {
		bx_sbuf_printf(b, ", \"seed\": %" PRId64 "", (int64_t)p->seed);
	} else {
		bx_sbuf_puts(b, ", \"seed\": null");
	}
	bx_sbuf_puts(b, ", \"completion\": null");
}

static int
copy_str(char *dst, size_t cap, const char *src, const char *what, struct bx_errbuf *eb)
{
	if (src == NULL || strlen(src) >= cap) {
		return bx_err(eb, EINVAL, "%s missing or longer than %zu bytes", what, cap - 1);
	}
	memcpy(dst, src, strlen(src) + 1);
	return 0;
}

int
bx_dd_template_init(struct bx_dd_template *t, const struct bx_dd_payload *p, const char *axon_ip,
                    unsigned axon_port, const char *axon_hotkey, const char *dendrite_ip,
                    double timeout_s, struct bx_errbuf *eb)
{
	struct bx_sbuf b;
	size_t cap = 256;
	unsigned i;
	int ret;

	memset(t, 0, sizeof(*t));
	if ((unsigned)p->kind >= BX_DD_NB_KINDS) {
		return bx_err(eb, EINVAL, "unknown synapse kind %d", (int)p->kind);
	}
	t->kind = p->kind;
	snprintf(t->name, sizeof(t->name), "%s", kind_names[p->kind]);
	if ((ret = copy_str(t->axon_ip, sizeof(t->axon_ip), axon_ip, "axon ip", eb)) < 0 ||
	    (ret = copy_str(t->axon_hotkey, sizeof(t->axon_hotkey), axon_hotkey, "axon hotkey",
	                    eb)) < 0 ||
	    (ret = copy_str(t->dendrite_ip, sizeof(t->dendrite_ip), dendrite_ip, "dendrite ip",
	                    eb)) < 0) {
		return ret;
	}
	snprintf(t->host, sizeof(t->host), "%s:%u", axon_ip, axon_port);
	t->axon_port = axon_port;
	t->timeout_s = timeout_s;
	for (i = 0; i < p->nb_texts; i++) {
		cap += 6 * strlen(p->texts[i]) + 8;
	}
	cap += p->prompt != NULL ? 6 * strlen(p->prompt) : 0;
	t->fields = bx_malloc(cap);
	if (t->fields == NULL) {
		return bx_err(eb, ENOMEM, "synapse fields: out of memory");
	}
	bx_sbuf_init(&b, t->fields, cap);
	fields_json(p, &b);
	t->fields_len = b.len;
	bx_dd_body_hash(p, t->body_hash);
	/* Required fields (no default) get an empty-instance header: texts: [] -> "W10=". */
	t->input_obj = p->kind == BX_DD_EMBEDDING ? "bt_header_input_obj_texts: W10=\r\n" : "";
	/* sys.getsizeof artefacts: any stable number will do (§1.2); this is CPython's for Synapse. */
	t->total_size = 3336 + t->fields_len;
	return 0;
}

void
bx_dd_template_fini(struct bx_dd_template *t)
{
	bx_free(t->fields);
	t->fields = NULL;
}

/* The body: json.dumps(synapse.model_dump()). */
static void
body(const struct bx_dd_template *t, const struct bx_dd_identity *id, uint64_t nonce,
     const char *sig, struct bx_sbuf *b)
{
	char f[32];

	bx_py_float(f, t->timeout_s, true);
	bx_sbuf_printf(b,
	               "{\"name\": \"%s\", \"timeout\": %s, \"total_size\": %" PRIu64
	               ", \"header_size\": 0, "
	               "\"dendrite\": {\"status_code\": null, \"status_message\": null, "
	               "\"process_time\": null, \"ip\": \"%s\", \"port\": null, \"version\": %d, "
	               "\"nonce\": %" PRIu64
	               ", \"uuid\": \"%s\", \"hotkey\": \"%s\", \"signature\": \"%s\"}, ",
	               t->name, f, (uint64_t)t->total_size, t->dendrite_ip, BX_DD_VERSION,
	               (uint64_t)nonce, id->uuid, id->ss58, sig);
	bx_sbuf_printf(b,
	               "\"axon\": {\"status_code\": null, \"status_message\": null, "
	               "\"process_time\": null, \"ip\": \"%s\", \"port\": %u, \"version\": null, "
	               "\"nonce\": null, \"uuid\": null, \"hotkey\": \"%s\", \"signature\": null}, "
	               "\"computed_body_hash\": \"\"",
	               t->axon_ip, t->axon_port, t->axon_hotkey);
	bx_sbuf_put(b, t->fields, t->fields_len);
	bx_sbuf_put(b, "}", 1);
}

int
bx_dd_build(const struct bx_dd_template *t, struct bx_dd_identity *id, uint64_t nonce,
            struct bx_sbuf *out)
{
	char msg[512], sig[2 + 128 + 1], f[32];
	uint8_t raw[64];
	size_t head, body_start;
	int n;

	if (nonce == 0) {
		nonce = bx_dd_next_nonce(id);
	}
	n = snprintf(msg, sizeof(msg), "%" PRIu64 ".%s.%s.%s.%s", (uint64_t)nonce, id->ss58,
	             t->axon_hotkey, id->uuid, t->body_hash);
	if (n < 0 || (size_t)n >= sizeof(msg)) {
		return -ENOSPC;
	}
	if (bx_sr25519_sign(raw, msg, (size_t)n, id->kp) < 0) {
		return -EIO;
	}
	sig[0] = '0';
	sig[1] = 'x';
	bx_hex_encode(sig + 2, raw, 64);
	bx_py_float(f, t->timeout_s, false);
	head = out->len;
	bx_sbuf_printf(out,
	               "POST /%s HTTP/1.1\r\nHost: %s\r\nname: %s\r\ntimeout: %s\r\n"
	               "bt_header_axon_ip: %s\r\nbt_header_axon_port: %u\r\n"
	               "bt_header_axon_hotkey: %s\r\nbt_header_dendrite_ip: %s\r\n"
	               "bt_header_dendrite_version: %d\r\nbt_header_dendrite_nonce: %" PRIu64 "\r\n"
	               "bt_header_dendrite_uuid: %s\r\nbt_header_dendrite_hotkey: %s\r\n"
	               "bt_header_dendrite_signature: %s\r\n%sheader_size: 640\r\n"
	               "total_size: %" PRIu64 "\r\ncomputed_body_hash: %s\r\nAccept: */*\r\n"
	               "Accept-Encoding: gzip, deflate\r\n"
	               "User-Agent: Python/3.11 aiohttp/3.10.11\r\nContent-Length: ",
	               t->name, t->host, t->name, f, t->axon_ip, t->axon_port, t->axon_hotkey,
	               t->dendrite_ip, BX_DD_VERSION, (uint64_t)nonce, id->uuid, id->ss58, sig,
	               t->input_obj, (uint64_t)t->total_size, t->body_hash);
	/* Body after a 64-byte gap (room for the length and Content-Type), then the length written and the body moved up. */
	body_start = out->len + 64;
	if (out->overflow || body_start > out->cap) {
		out->len = head;
		return -ENOSPC;
	}
	{
		struct bx_sbuf b;

		bx_sbuf_init(&b, out->p + body_start, out->cap - body_start);
		body(t, id, nonce, sig, &b);
		if (b.overflow) {
			out->len = head;
			return -ENOSPC;
		}
		bx_sbuf_printf(out, "%zu\r\nContent-Type: application/json\r\n\r\n", b.len);
		memmove(out->p + out->len, out->p + body_start, b.len);
		out->len += b.len;
	}
	return 0;
}
