/*
 * libFuzzer target: the HTTP/1.1 request parser. Besides not crashing or
 * reading past the end, every prefix must say "incomplete" or give the same
 * answer as the whole input (checked on a sample of prefixes).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http1.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bx_http_limits lim;
	struct bx_http_req req, r2;
	const char *buf = (const char *)data;
	long full;
	size_t off = 0;

	bx_http_limits_default(&lim);
	lim.max_request_line = 512;
	lim.max_header_line = 512;
	lim.max_head = 2048;
	lim.max_headers = 16;
	lim.max_body = 4096;
	full = bx_http_parse_request(buf, size, &lim, &req);
	for (size_t n = 0; n < size; n += 1 + n / 8) {
		long v = bx_http_parse_request(buf, n, &lim, &r2);

		if (v != BX_HTTP_INCOMPLETE && v != full) {
			abort();
		}
	}
	/* walk pipelined requests like a connection would */
	while (full > 0) {
		if (req.total_len != (size_t)full || req.head_len > req.total_len) {
			abort();
		}
		for (unsigned i = 0; i < req.nb_headers; i++) {
			if (req.headers[i].name.p < buf + off ||
			    req.headers[i].value.p + req.headers[i].value.len > buf + size) {
				abort();
			}
		}
		off += (size_t)full;
		full = bx_http_parse_request(buf + off, size - off, &lim, &req);
	}
	return 0;
}
