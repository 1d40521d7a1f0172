/*
 * Fuzz target: the client-side HTTP/1.1 response parser (http_resp.c) on
 * what a miner may answer. Every prefix must give -EAGAIN, -EBADMSG or the
 * same final length; a parsed body lies inside the input; eof parsing never
 * reads past the end.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http_resp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bx_resp r;
	char *buf;
	long ret;
	int eof;

	if (size > 1 << 16) {
		return 0;
	}
	buf = malloc(size + 1);
	if (buf == NULL) {
		return 0;
	}
	for (eof = 0; eof < 2; eof++) {
		memcpy(buf, data, size);
		ret = bx_resp_parse(buf, size, eof, &r);
		if (ret > 0) {
			if ((size_t)ret > size || r.body < buf ||
			    r.body + r.body_len > buf + size || r.nb_hdrs > BX_RESP_MAX_HDRS) {
				abort();
			}
		} else if (ret != -EAGAIN && ret != -EBADMSG) {
			abort();
		}
	}
	free(buf);
	return 0;
}
