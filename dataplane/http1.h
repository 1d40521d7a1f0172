/*
 * HTTP/1.1 request parser and response writer (private to dataplane).
 *
 * The parser is stateless in the picohttpparser style: it is handed the
 * whole buffer received so far and either says "incomplete", returns the
 * parsed request, or returns the error status to answer with. Any split of
 * the same bytes gives the same answer, because nothing is remembered between
 * calls. Results are views into the caller's buffer (zero-copy): they stay
 * valid while the buffer is unchanged.
 *
 * Strictness: CRLF line endings only, token method, origin-form target
 * without spaces or control bytes, HTTP/1.0 or HTTP/1.1, token header names,
 * no obs-fold, at most one Content-Length value, no Transfer-Encoding on
 * requests (dendrites never send it; 501).
 */
#ifndef BX_DP_HTTP1_H
#define BX_DP_HTTP1_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BX_HTTP_MAX_HEADERS 64 /* compile-time bound for struct bx_http_req */

struct bx_http_limits {
	uint32_t max_request_line; /* bytes before CRLF; longer: 414 */
	uint32_t max_headers;      /* header lines (<= BX_HTTP_MAX_HEADERS); more: 431 */
	uint32_t max_header_line;  /* one header line; longer: 431 */
	uint32_t max_head;         /* request line + headers + blank line; larger: 431 */
	uint64_t max_body;         /* Content-Length; larger: 413 */
};

/* Defaults: 8 KiB request line, 64 headers, 8 KiB line, 16 KiB head, 1 MiB
 * body. */
void bx_http_limits_default(struct bx_http_limits *lim);

struct bx_http_str {
	const char *p;
	uint32_t len;
};

struct bx_http_hdr {
	struct bx_http_str name;
	struct bx_http_str value; /* leading/trailing spaces and tabs trimmed */
};

struct bx_http_req {
	struct bx_http_str method;
	struct bx_http_str target; /* as sent */
	struct bx_http_str path;   /* target up to '?' */
	int minor_version;         /* 0 or 1 */
	bool keep_alive;           /* after this request */
	bool has_body_len;         /* a Content-Length header was present */
	unsigned nb_headers;
	struct bx_http_hdr headers[BX_HTTP_MAX_HEADERS];
	uint64_t content_length;
	size_t head_len; /* bytes up to and including the blank line */
	const char *body;
	size_t total_len; /* head_len + content_length: bytes this request used */
};

/* Return values of bx_http_parse_request() besides a positive length. */
#define BX_HTTP_INCOMPLETE 0

/*
 * Parse one request at the start of buf[0..len). Returns the request's total
 * length (> 0, req filled), BX_HTTP_INCOMPLETE, or -status (-400, -413,
 * -414, -431, -501, -505) for a request that must be answered with that
 * status and the connection closed. Never reads buf[len] or beyond.
 */
long bx_http_parse_request(const char *buf, size_t len, const struct bx_http_limits *lim,
                           struct bx_http_req *req);

/* First header whose name matches case-insensitively, or NULL. */
const struct bx_http_hdr *bx_http_find(const struct bx_http_req *req, const char *name,
                                       size_t name_len);

bool bx_http_str_eq_nocase(struct bx_http_str s, const char *lit, size_t lit_len);

/* Reason phrase for a status code ("Unknown" if none). */
const char *bx_http_reason(int status);

/* ---------------- response writer ---------------- */

/*
 * An append-only output buffer with a fixed capacity. Writes past the end
 * set `overflow` and are dropped; the caller checks once at the end.
 */
struct bx_obuf {
	char *p;
	size_t len;
	size_t cap;
	bool overflow;
	/* Optional: when set, a full buffer is handed to sink and emptied (streaming
   * hashes). */
	void (*sink)(void *arg, const void *data, size_t n);
	void *sink_arg;
};

static inline void
bx_obuf_init(struct bx_obuf *b, void *mem, size_t cap)
{
	b->p = mem;
	b->len = 0;
	b->cap = cap;
	b->overflow = false;
	b->sink = NULL;
	b->sink_arg = NULL;
}

/* Hand what is buffered to the sink (no-op without one). */
void bx_obuf_flush(struct bx_obuf *b);

void bx_obuf_put(struct bx_obuf *b, const void *data, size_t n);
void bx_obuf_putc(struct bx_obuf *b, char c);
void bx_obuf_puts(struct bx_obuf *b, const char *s);
void bx_obuf_printf(struct bx_obuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void bx_obuf_u64(struct bx_obuf *b, uint64_t v);
void bx_obuf_i64(struct bx_obuf *b, int64_t v);

/* "HTTP/1.1 <status> <reason>\r\n" */
void bx_http_status_line(struct bx_obuf *b, int status);
/* "<name>: <value>\r\n" */
void bx_http_header(struct bx_obuf *b, const char *name, const char *value, size_t value_len);
/* Content-Length, Connection (keep-alive or close), blank line. */
void bx_http_end_head(struct bx_obuf *b, size_t content_length, bool keep_alive);
/* Transfer-Encoding: chunked, Connection, blank line: the head of a streamed
 * response. */
void bx_http_end_head_chunked(struct bx_obuf *b, bool keep_alive);
/* One chunk ("<hex>\r\n<data>\r\n"); an empty chunk is not written (use
 * chunk_end). */
void bx_http_chunk(struct bx_obuf *b, const void *data, size_t n);
/* The last chunk "0\r\n\r\n". */
void bx_http_chunk_end(struct bx_obuf *b);

#endif
