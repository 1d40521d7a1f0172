/* Test helpers that run a dataplane on loopback (not in the fuzz builds). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <bx/platform.h>

#include "bx_test.h"
#include "dp_testlib.h"

int
dpt_start(struct bx_dp *dp, int r, struct bx_errbuf *eb, uint16_t *port)
{
	if (r == 0) {
		r = bx_dp_start(dp, eb);
	}
	if (r < 0) {
		if (r == -ENOSYS || r == -EPERM) {
			bx_test_skip("io_uring is not available here");
		}
		fprintf(stderr, "start: %s\n", eb->msg);
		return -1;
	}
	*port = bx_dp_port(dp);
	return 0;
}

void
dpt_stop(struct bx_dp *dp)
{
	bx_dp_stop(dp, 1000);
	bx_dp_destroy(dp);
}

int
dpt_connect_lo(uint16_t port, int rcvbuf)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
	struct timeval tv = { .tv_sec = 5 };

	if (fd < 0) {
		return -1;
	}
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (rcvbuf) { /* a small window makes the server's sends stall */
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	}
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
		close(fd);
		return -1;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

int
dpt_send_all(int fd, const void *buf, size_t n)
{
	const char *p = buf;

	while (n) {
		ssize_t k = send(fd, p, n, MSG_NOSIGNAL);

		if (k <= 0) {
			return -1;
		}
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

int
dpt_sh(const char *fmt, ...)
{
	char cmd[512];
	va_list ap;
	int r;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	r = system(cmd);
	if (r != 0) {
		fprintf(stderr, "command failed (%d): %s\n", r, cmd);
	}
	return r;
}
