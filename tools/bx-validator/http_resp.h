/*
 * Client-side HTTP/1.1 response parser (the dataplane has the server side
 * only). Incremental: call it on everything received so far; it answers
 * -EAGAIN until one whole response is there, then fills a view of it.
 * Bodies are Content-Length or chunked (decoded in place, so the buffer
 * must be writable); a response without either ends at connection close,
 * which callers signal with eof.
 */
#ifndef BX_HTTP_RESP_H
#define BX_HTTP_RESP_H

#include <stdbool.h>
#include <stddef.h>

#define BX_RESP_MAX_HDRS 64

struct bx_resp_hdr {
	const char *name, *value;
	size_t name_len, value_len;
};

struct bx_resp {
	int status;
	unsigned nb_hdrs;
	struct bx_resp_hdr hdrs[BX_RESP_MAX_HDRS];
	const char *body; /* contiguous (chunked bodies decoded in place) */
	size_t body_len;
	size_t head_len;    /* bytes of status line and headers */
	unsigned nb_chunks; /* chunked: chunks that carried data */
	bool chunked;
	bool keep_alive; /* false on "Connection: close" or HTTP/1.0 */
	bool head_done;  /* the head is complete (set even when the body is not) */
};

/*
 * Parse one response at buf[0..len). Returns the bytes it occupied on the
 * wire (> 0; later bytes belong to the next response), -EAGAIN (incomplete;
 * r->head_done says whether the head has arrived), or -EBADMSG (not a valid
 * response). eof: the peer closed, so a body without length ends here.
 * Never reads past buf + len.
 */
long bx_resp_parse(char *buf, size_t len, bool eof, struct bx_resp *r);

/*
 * Whether body[0..len) (the bytes after a chunked head) holds a whole chunk
 * with data: a stream's first token has arrived.
 */
bool bx_resp_first_chunk(const char *body, size_t len);

/* Value of header name (case-insensitive), or NULL; *vlen gets its length. */
const char *bx_resp_header(const struct bx_resp *r, const char *name, size_t *vlen);

#endif /* BX_HTTP_RESP_H */
