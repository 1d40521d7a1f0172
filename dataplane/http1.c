/*
 * HTTP/1.1 request parser and response writer. See http1.h.
 *
 * Why our own parser rather than Debian's libhttp-parser-dev: that library
 * is unmaintained upstream (superseded by llhttp), is a callback state
 * machine that hands out pieces of a field split across reads (the caller
 * must glue them back together, i.e. copy), and its limits are compile-time
 * (HTTP_MAX_HEADER_SIZE) rather than per-server. A stateless re-scan over
 * the connection's receive buffer is simpler to prove incremental (any split
 * gives the same answer), gives zero-copy views for free, and costs one pass
 * over a ~1 KiB head.
 */
#include "http1.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define BX_MIN_U(a, b) ((a) < (b) ? (a) : (b))

void
bx_http_limits_default(struct bx_http_limits *lim)
{
	lim->max_request_line = 8192;
	lim->max_headers = BX_HTTP_MAX_HEADERS;
	lim->max_header_line = 8192;
	lim->max_head = 16384;
	lim->max_body = 1u << 20;
}

/* RFC 9110 tchar */
static const uint8_t tchar[256] = {
	['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1, ['*'] = 1, ['+'] = 1,
	['-'] = 1, ['.'] = 1, ['^'] = 1, ['_'] = 1, ['`'] = 1, ['|'] = 1,  ['~'] = 1, ['0'] = 1,
	['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1,  ['7'] = 1, ['8'] = 1,
	['9'] = 1, ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1,  ['F'] = 1, ['G'] = 1,
	['H'] = 1, ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1,  ['N'] = 1, ['O'] = 1,
	['P'] = 1, ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1,  ['V'] = 1, ['W'] = 1,
	['X'] = 1, ['Y'] = 1, ['Z'] = 1, ['a'] = 1, ['b'] = 1, ['c'] = 1,  ['d'] = 1, ['e'] = 1,
	['f'] = 1, ['g'] = 1, ['h'] = 1, ['i'] = 1, ['j'] = 1, ['k'] = 1,  ['l'] = 1, ['m'] = 1,
	['n'] = 1, ['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1, ['s'] = 1,  ['t'] = 1, ['u'] = 1,
	['v'] = 1, ['w'] = 1, ['x'] = 1, ['y'] = 1, ['z'] = 1,
};

enum {
	EOL_FOUND = 1,
	EOL_INCOMPLETE = 0,
	EOL_TOO_LONG = -1,
	EOL_BAD = -2
};

/*
 * Find the CRLF ending the line that starts at buf[start]. The line (without
 * CRLF) may be at most maxlen bytes. *eol is the index of the CR. memchr
 * (vectorised) does the scan; the answer depends only on the bytes in the
 * window, so every prefix agrees with the whole.
 */
static int
find_eol(const char *buf, size_t start, size_t len, size_t maxlen, size_t *eol)
{
	size_t avail = len - start, win = maxlen + 2; /* the line and its CRLF */
	const char *nl = memchr(buf + start, '\n', BX_MIN_U(avail, win));
	size_t p;

	if (!nl) {
		return avail >= win ? EOL_TOO_LONG : EOL_INCOMPLETE;
	}
	p = (size_t)(nl - buf);
	if (p == start || buf[p - 1] != '\r') {
		return EOL_BAD; /* bare LF */
	}
	/* a stray CR inside the line is a control byte: the line parsers reject it */
	*eol = p - 1;
	return EOL_FOUND;
}

bool
bx_http_str_eq_nocase(struct bx_http_str s, const char *lit, size_t lit_len)
{
	return s.len == lit_len && strncasecmp(s.p, lit, lit_len) == 0;
}

const struct bx_http_hdr *
bx_http_find(const struct bx_http_req *req, const char *name, size_t name_len)
{
	for (unsigned i = 0; i < req->nb_headers; i++) {
		if (bx_http_str_eq_nocase(req->headers[i].name, name, name_len)) {
			return &req->headers[i];
		}
	}
	return NULL;
}

static int
parse_request_line(const char *p, size_t n, struct bx_http_req *req)
{
	size_t i = 0, t0;

	while (i < n && tchar[(uint8_t)p[i]]) {
		i++;
	}
	if (i == 0 || i >= n || p[i] != ' ') {
		return -400;
	}
	req->method.p = p;
	req->method.len = (uint32_t)i;
	i++;
	t0 = i;
	while (i < n && (uint8_t)p[i] > 0x20 && (uint8_t)p[i] != 0x7f) {
		i++;
	}
	if (i == t0 || i >= n || p[i] != ' ' || p[t0] != '/') {
		return -400;
	}
	req->target.p = p + t0;
	req->target.len = (uint32_t)(i - t0);
	req->path = req->target;
	{
		const char *q = memchr(req->target.p, '?', req->target.len);

		if (q) {
			req->path.len = (uint32_t)(q - req->target.p);
		}
	}
	i++;
	if (n - i != 8 || memcmp(p + i, "HTTP/", 5) != 0 || p[i + 6] != '.' || p[i + 5] < '0' ||
	    p[i + 5] > '9' || p[i + 7] < '0' || p[i + 7] > '9') {
		return -400;
	}
	if (p[i + 5] != '1' || (p[i + 7] != '0' && p[i + 7] != '1')) {
		return -505;
	}
	req->minor_version = p[i + 7] - '0';
	return 0;
}

static int
parse_header_line(const char *p, size_t n, struct bx_http_hdr *h)
{
	size_t i = 0, v0, v1;

	while (i < n && tchar[(uint8_t)p[i]]) {
		i++;
	}
	if (i == 0 || i >= n || p[i] != ':') {
		return -400; /* empty name, obs-fold, or space before ':' */
	}
	h->name.p = p;
	h->name.len = (uint32_t)i;
	i++;
	for (size_t k = i; k < n; k++) {
		uint8_t c = (uint8_t)p[k];

		if ((c < 0x20 && c != '\t') || c == 0x7f) {
			return -400;
		}
	}
	while (i < n && (p[i] == ' ' || p[i] == '\t')) {
		i++;
	}
	v0 = i;
	v1 = n;
	while (v1 > v0 && (p[v1 - 1] == ' ' || p[v1 - 1] == '\t')) {
		v1--;
	}
	h->value.p = p + v0;
	h->value.len = (uint32_t)(v1 - v0);
	return 0;
}

/* Comma-separated tokens of a Connection header. */
static void
scan_connection(struct bx_http_str v, bool *close, bool *keep)
{
	size_t i = 0;

	while (i < v.len) {
		size_t s, e;

		while (i < v.len && (v.p[i] == ' ' || v.p[i] == '\t' || v.p[i] == ',')) {
			i++;
		}
		s = i;
		while (i < v.len && v.p[i] != ',') {
			i++;
		}
		e = i;
		while (e > s && (v.p[e - 1] == ' ' || v.p[e - 1] == '\t')) {
			e--;
		}
		if (e - s == 5 && strncasecmp(v.p + s, "close", 5) == 0) {
			*close = true;
		} else if (e - s == 10 && strncasecmp(v.p + s, "keep-alive", 10) == 0) {
			*keep = true;
		}
	}
}

static int
parse_content_length(struct bx_http_str v, uint64_t *out)
{
	uint64_t x = 0;

	if (v.len == 0 || v.len > 18) {
		return -400;
	}
	for (uint32_t i = 0; i < v.len; i++) {
		if (v.p[i] < '0' || v.p[i] > '9') {
			return -400;
		}
		x = x * 10 + (uint64_t)(v.p[i] - '0');
	}
	*out = x;
	return 0;
}

long
bx_http_parse_request(const char *buf, size_t len, const struct bx_http_limits *lim,
                      struct bx_http_req *req)
{
	size_t pos, eol;
	unsigned max_headers = BX_MIN_U(lim->max_headers, BX_HTTP_MAX_HEADERS);
	bool conn_close = false, conn_keep = false, have_host = false, have_te = false;
	int r;

	req->nb_headers = 0;
	req->has_body_len = false;
	req->content_length = 0;

	/* request line */
	r = find_eol(buf, 0, len, lim->max_request_line, &eol);
	if (r == EOL_INCOMPLETE) {
		return BX_HTTP_INCOMPLETE;
	}
	if (r == EOL_TOO_LONG) {
		return -414;
	}
	if (r == EOL_BAD) {
		return -400;
	}
	r = parse_request_line(buf, eol, req);
	if (r < 0) {
		return r;
	}
	pos = eol + 2;

	/* header lines */
	for (;;) {
		size_t room;

		if (pos >= len) {
			return BX_HTTP_INCOMPLETE;
		}
		if (buf[pos] == '\r') {
			if (pos + 1 >= len) {
				return BX_HTTP_INCOMPLETE;
			}
			if (buf[pos + 1] != '\n') {
				return -400;
			}
			pos += 2;
			if (pos > lim->max_head) {
				return -431;
			}
			break;
		}
		/* the line plus its CRLF and the final CRLF must fit in max_head */
		room = lim->max_head > pos + 4 ? lim->max_head - pos - 4 : 0;
		r = find_eol(buf, pos, len, BX_MIN_U(room, lim->max_header_line), &eol);
		if (r == EOL_INCOMPLETE) {
			return BX_HTTP_INCOMPLETE;
		}
		if (r == EOL_TOO_LONG) {
			return -431;
		}
		if (r == EOL_BAD) {
			return -400;
		}
		if (req->nb_headers >= max_headers) {
			return -431;
		}
		r = parse_header_line(buf + pos, eol - pos, &req->headers[req->nb_headers]);
		if (r < 0) {
			return r;
		}
		req->nb_headers++;
		pos = eol + 2;
	}
	req->head_len = pos;

	for (unsigned i = 0; i < req->nb_headers; i++) {
		const struct bx_http_hdr *h = &req->headers[i];

		if (bx_http_str_eq_nocase(h->name, "content-length", 14)) {
			uint64_t cl;

			if (parse_content_length(h->value, &cl) < 0) {
				return -400;
			}
			if (req->has_body_len && cl != req->content_length) {
				return -400;
			}
			req->has_body_len = true;
			req->content_length = cl;
		} else if (bx_http_str_eq_nocase(h->name, "transfer-encoding", 17)) {
			have_te = true;
		} else if (bx_http_str_eq_nocase(h->name, "connection", 10)) {
			scan_connection(h->value, &conn_close, &conn_keep);
		} else if (bx_http_str_eq_nocase(h->name, "host", 4)) {
			if (have_host) {
				return -400;
			}
			have_host = true;
		}
	}
	if (have_te) {
		return req->has_body_len ? -400 : -501;
	}
	if (req->minor_version == 1 && !have_host) {
		return -400;
	}
	if (req->content_length > lim->max_body) {
		return -413;
	}
	req->keep_alive = req->minor_version == 1 ? !conn_close : (conn_keep && !conn_close);
	req->body = buf + req->head_len;
	req->total_len = req->head_len + req->content_length;
	if (len < req->total_len) {
		return BX_HTTP_INCOMPLETE;
	}
	return (long)req->total_len;
}

const char *
bx_http_reason(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 408:
		return "Request Timeout";
	case 413:
		return "Content Too Large";
	case 414:
		return "URI Too Long";
	case 422:
		return "Unprocessable Entity";
	case 429:
		return "Too Many Requests";
	case 431:
		return "Request Header Fields Too Large";
	case 500:
		return "Internal Server Error";
	case 501:
		return "Not Implemented";
	case 503:
		return "Service Unavailable";
	case 505:
		return "HTTP Version Not Supported";
	default:
		return "Unknown";
	}
}

/* ---------------- output buffer ---------------- */

void
bx_obuf_flush(struct bx_obuf *b)
{
	if (b->sink && b->len) {
		b->sink(b->sink_arg, b->p, b->len);
		b->len = 0;
	}
}

void
bx_obuf_put(struct bx_obuf *b, const void *data, size_t n)
{
	if (n > b->cap - b->len && b->sink) {
		bx_obuf_flush(b);
		if (n > b->cap) {
			b->sink(b->sink_arg, data, n);
			return;
		}
	}
	if (n > b->cap - b->len) {
		b->overflow = true;
		return;
	}
	memcpy(b->p + b->len, data, n);
	b->len += n;
}

void
bx_obuf_putc(struct bx_obuf *b, char c)
{
	if (b->len >= b->cap) {
		bx_obuf_flush(b);
	}
	if (b->len >= b->cap) {
		b->overflow = true;
		return;
	}
	b->p[b->len++] = c;
}

void
bx_obuf_puts(struct bx_obuf *b, const char *s)
{
	bx_obuf_put(b, s, strlen(s));
}

void
bx_obuf_printf(struct bx_obuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;
	size_t room;

	if (b->cap - b->len < 128) {
		bx_obuf_flush(b);
	}
	room = b->cap - b->len;
	va_start(ap, fmt);
	n = vsnprintf(b->p + b->len, room, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= room) {
		b->overflow = true;
		return;
	}
	b->len += (size_t)n;
}

void
bx_obuf_u64(struct bx_obuf *b, uint64_t v)
{
	char tmp[24];
	int i = (int)sizeof(tmp);

	do {
		tmp[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	bx_obuf_put(b, tmp + i, sizeof(tmp) - (size_t)i);
}

void
bx_obuf_i64(struct bx_obuf *b, int64_t v)
{
	if (v < 0) {
		bx_obuf_putc(b, '-');
		bx_obuf_u64(b, (uint64_t)0 - (uint64_t)v);
	} else {
		bx_obuf_u64(b, (uint64_t)v);
	}
}

void
bx_http_status_line(struct bx_obuf *b, int status)
{
	bx_obuf_put(b, "HTTP/1.1 ", 9);
	bx_obuf_u64(b, (uint64_t)status);
	bx_obuf_putc(b, ' ');
	bx_obuf_puts(b, bx_http_reason(status));
	bx_obuf_put(b, "\r\n", 2);
}

void
bx_http_header(struct bx_obuf *b, const char *name, const char *value, size_t value_len)
{
	bx_obuf_puts(b, name);
	bx_obuf_put(b, ": ", 2);
	bx_obuf_put(b, value, value_len);
	bx_obuf_put(b, "\r\n", 2);
}

void
bx_http_end_head(struct bx_obuf *b, size_t content_length, bool keep_alive)
{
	bx_obuf_put(b, "content-length: ", 16);
	bx_obuf_u64(b, content_length);
	bx_obuf_put(b, "\r\n", 2);
	if (keep_alive) {
		bx_obuf_put(b, "connection: keep-alive\r\n\r\n", 26);
	} else {
		bx_obuf_put(b, "connection: close\r\n\r\n", 21);
	}
}

void
bx_http_end_head_chunked(struct bx_obuf *b, bool keep_alive)
{
	bx_obuf_put(b, "transfer-encoding: chunked\r\n", 28);
	if (keep_alive) {
		bx_obuf_put(b, "connection: keep-alive\r\n\r\n", 26);
	} else {
		bx_obuf_put(b, "connection: close\r\n\r\n", 21);
	}
}

void
bx_http_chunk(struct bx_obuf *b, const void *data, size_t n)
{
	if (n == 0) {
		return;
	}
	bx_obuf_printf(b, "%zx\r\n", n);
	bx_obuf_put(b, data, n);
	bx_obuf_put(b, "\r\n", 2);
}

void
bx_http_chunk_end(struct bx_obuf *b)
{
	bx_obuf_put(b, "0\r\n\r\n", 5);
}
