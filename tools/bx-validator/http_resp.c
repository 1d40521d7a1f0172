/*
 * HTTP/1.1 response parsing (RFC 9112 §4 status line, §5 fields, §6.3
 * message body length, §7.1 chunked coding).
 */
#include "http_resp.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

/* The line starting at p, ending before "\r\n"; NULL if not complete. */
static const char *
line_end(const char *p, const char *end)
{
	const char *q = memchr(p, '\n', (size_t)(end - p));

	return q;
}

static int
parse_status(const char *p, const char *eol, struct bx_resp *r)
{
	if (eol - p < 12 || memcmp(p, "HTTP/1.", 7) != 0 || (p[7] != '0' && p[7] != '1') ||
	    p[8] != ' ' || p[9] < '1' || p[9] > '5' || p[10] < '0' || p[10] > '9' || p[11] < '0' ||
	    p[11] > '9') {
		return -EBADMSG;
	}
	r->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
	r->keep_alive = p[7] == '1';
	return 0;
}

static int
parse_field(const char *p, const char *eol, struct bx_resp *r)
{
	const char *colon = memchr(p, ':', (size_t)(eol - p)), *v, *ve;
	struct bx_resp_hdr *h;

	if (colon == NULL || colon == p || r->nb_hdrs == BX_RESP_MAX_HDRS) {
		return -EBADMSG;
	}
	for (v = p; v < colon; v++) {
		if (*v <= ' ' || *v == 0x7f) {
			return -EBADMSG;
		}
	}
	v = colon + 1;
	ve = eol;
	while (v < ve && (*v == ' ' || *v == '\t')) {
		v++;
	}
	while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t')) {
		ve--;
	}
	h = &r->hdrs[r->nb_hdrs++];
	h->name = p;
	h->name_len = (size_t)(colon - p);
	h->value = v;
	h->value_len = (size_t)(ve - v);
	return 0;
}

/* Status line and fields; returns the head length, -EAGAIN or -EBADMSG. */
static long
parse_head(const char *buf, size_t len, struct bx_resp *r)
{
	const char *p = buf, *end = buf + len, *nl;
	int ret;

	nl = line_end(p, end);
	if (nl == NULL) {
		return len > 8192 ? -EBADMSG : -EAGAIN;
	}
	if (nl == p || nl[-1] != '\r' || parse_status(p, nl - 1, r) < 0) {
		return -EBADMSG;
	}
	for (p = nl + 1;; p = nl + 1) {
		nl = line_end(p, end);
		if (nl == NULL) {
			return len > 65536 ? -EBADMSG : -EAGAIN;
		}
		if (nl == p || nl[-1] != '\r') {
			return -EBADMSG;
		}
		if (nl - 1 == p) {
			return (long)(nl + 1 - buf);
		}
		ret = parse_field(p, nl - 1, r);
		if (ret < 0) {
			return ret;
		}
	}
}

static int
hex_digit(char c)
{
	if (c >= '0' && c <= '9') {
		return c - '0';
	}
	c = (char)(c | 0x20);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/*
 * Walk the chunks from p; on a complete body return the wire length, with
 * *out_len the decoded length, and (decode) the chunk data moved to p.
 */
static long
chunked(char *p, size_t len, bool decode, size_t *out_len, unsigned *nb_chunks)
{
	size_t i = 0, w = 0;

	*nb_chunks = 0;
	for (;;) {
		uint64_t size = 0;
		int d, nd = 0;

		while (i < len && (d = hex_digit(p[i])) >= 0) {
			if (++nd > 15) {
				return -EBADMSG;
			}
			size = size * 16 + (uint64_t)d;
			i++;
		}
		if (i == len) {
			return -EAGAIN;
		}
		if (nd == 0) {
			return -EBADMSG;
		}
		/* Skip chunk extensions up to CRLF. */
		while (i < len && p[i] != '\n') {
			i++;
		}
		if (i == len) {
			return -EAGAIN;
		}
		i++;
		if (size == 0) {
			break;
		}
		if (len - i < size + 2) {
			return -EAGAIN;
		}
		if (p[i + size] != '\r' || p[i + size + 1] != '\n') {
			return -EBADMSG;
		}
		if (decode) {
			memmove(p + w, p + i, size);
		}
		(*nb_chunks)++;
		w += size;
		i += size + 2;
	}
	/* Trailer fields, then an empty line. */
	for (;;) {
		char *nl = memchr(p + i, '\n', len - i);

		if (nl == NULL) {
			return -EAGAIN;
		}
		if (nl == p + i || nl[-1] != '\r') {
			return -EBADMSG;
		}
		if (nl - 1 == p + i) {
			*out_len = w;
			return (long)(nl + 1 - p);
		}
		i = (size_t)(nl + 1 - p);
	}
}

bool
bx_resp_first_chunk(const char *body, size_t len)
{
	size_t i = 0;
	uint64_t size = 0;
	int d, nd = 0;

	while (i < len && nd < 16 && (d = hex_digit(body[i])) >= 0) {
		size = size * 16 + (uint64_t)d;
		i++;
		nd++;
	}
	while (i < len && body[i] != '\n') { /* extensions */
		i++;
	}
	return nd > 0 && nd < 16 && size > 0 && i < len && len - i - 1 >= size + 2;
}

const char *
bx_resp_header(const struct bx_resp *r, const char *name, size_t *vlen)
{
	size_t n = strlen(name);
	unsigned i;

	for (i = 0; i < r->nb_hdrs; i++) {
		if (r->hdrs[i].name_len == n && strncasecmp(r->hdrs[i].name, name, n) == 0) {
			*vlen = r->hdrs[i].value_len;
			return r->hdrs[i].value;
		}
	}
	return NULL;
}

static long
content_length(const struct bx_resp *r, uint64_t *cl)
{
	size_t n, i;
	const char *v = bx_resp_header(r, "content-length", &n);

	if (v == NULL) {
		return 0;
	}
	if (n == 0 || n > 15) {
		return -EBADMSG;
	}
	*cl = 0;
	for (i = 0; i < n; i++) {
		if (v[i] < '0' || v[i] > '9') {
			return -EBADMSG;
		}
		*cl = *cl * 10 + (uint64_t)(v[i] - '0');
	}
	return 1;
}

long
bx_resp_parse(char *buf, size_t len, bool eof, struct bx_resp *r)
{
	long head, wire;
	uint64_t cl = 0;
	size_t n;
	const char *v;
	long has_cl;

	memset(r, 0, sizeof(*r));
	head = parse_head(buf, len, r);
	if (head < 0) {
		return head;
	}
	r->head_done = true;
	r->head_len = (size_t)head;
	v = bx_resp_header(r, "connection", &n);
	if (v != NULL) {
		r->keep_alive = !(n == 5 && strncasecmp(v, "close", 5) == 0);
	}
	v = bx_resp_header(r, "transfer-encoding", &n);
	r->body = buf + head;
	if (v != NULL) {
		if (n < 7 || strncasecmp(v + n - 7, "chunked", 7) != 0) {
			return -EBADMSG;
		}
		r->chunked = true;
		/* Check the whole body is there before decoding, so -EAGAIN leaves buf intact. */
		wire = chunked(buf + head, len - (size_t)head, false, &r->body_len, &r->nb_chunks);
		if (wire > 0) {
			chunked(buf + head, len - (size_t)head, true, &r->body_len, &r->nb_chunks);
		}
		return wire < 0 ? wire : head + wire;
	}
	has_cl = content_length(r, &cl);
	if (has_cl < 0) {
		return has_cl;
	}
	if (has_cl == 0 && (r->status / 100 == 1 || r->status == 204 || r->status == 304)) {
		return head;
	}
	if (has_cl == 0) {
		/* Until close (RFC 9112 §6.3 item 8). */
		r->keep_alive = false;
		if (!eof) {
			return -EAGAIN;
		}
		r->body_len = len - (size_t)head;
		return (long)len;
	}
	if (len - (size_t)head < cl) {
		return -EAGAIN;
	}
	r->body_len = (size_t)cl;
	return head + (long)cl;
}
