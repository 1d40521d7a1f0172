/*
 * The management listener: health, readiness and metrics on a separate
 * port, served by one thread that handles one short request at a time.
 * Management traffic is a scrape every few seconds; a slow client is cut
 * off by a 1 s receive timeout rather than served concurrently.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <bx/firmware.h>

#define METRICS_MAX (1u << 20)

struct bx_mgmt {
	int fd;
	uint16_t port;
	pthread_t thread;
	int stop; /* atomic */
	bx_mgmt_render_fn *render;
	void *arg;
	char *text; /* METRICS_MAX bytes, reused for every scrape */
	pthread_mutex_t mu;
	bool ready;
	char why[128];
};

static int
listen_on(const char *addr, uint16_t port, struct bx_errbuf *eb)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	int fd, one = 1;

	if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1) {
		return bx_err(eb, EINVAL, "management address '%s' is not an IPv4 address", addr);
	}
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		return bx_err(eb, errno, "socket: %s", bx_strerror(errno));
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 16) < 0) {
		int err = errno;

		close(fd);
		return bx_err(eb, err, "management listener %s:%u: %s", addr, port,
		              bx_strerror(err));
	}
	return fd;
}

static void
send_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);

		if (n <= 0) {
			return;
		}
		buf += n;
		len -= (size_t)n;
	}
}

static void
respond(int fd, int status, const char *ctype, const char *body, size_t len)
{
	static const char *const reasons[] = { [200] = "OK",
		                               [404] = "Not Found",
		                               [405] = "Method Not Allowed",
		                               [503] = "Service Unavailable" };
	char head[256];
	int n;

	n = snprintf(head, sizeof(head),
	             "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
	             "Connection: close\r\n\r\n",
	             status, reasons[status], ctype, len);
	send_all(fd, head, (size_t)n);
	send_all(fd, body, len);
}

/* Read the request head; returns the path (NUL-terminated in buf) or NULL. */
static char *
read_path(int fd, char *buf, size_t len, bool *is_get)
{
	size_t used = 0;
	char *sp, *end;

	while (used < len - 1) {
		ssize_t n = recv(fd, buf + used, len - 1 - used, 0);

		if (n <= 0) {
			return NULL;
		}
		used += (size_t)n;
		buf[used] = '\0';
		if (strstr(buf, "\r\n\r\n") != NULL || strstr(buf, "\n\n") != NULL) {
			break;
		}
	}
	sp = strchr(buf, ' ');
	if (sp == NULL) {
		return NULL;
	}
	*is_get = (size_t)(sp - buf) == 3 && memcmp(buf, "GET", 3) == 0;
	end = strpbrk(sp + 1, " ?\r\n");
	if (end == NULL) {
		return NULL;
	}
	*end = '\0';
	return sp + 1;
}

static void
serve_metrics(struct bx_mgmt *m, int fd)
{
	struct bx_prom p = { .buf = m->text, .len = METRICS_MAX };

	m->render(m->arg, &p);
	respond(fd, 200, "text/plain; version=0.0.4; charset=utf-8", p.buf, p.used);
}

static void
serve_ready(struct bx_mgmt *m, int fd)
{
	char body[160];
	bool ready;
	int n;

	pthread_mutex_lock(&m->mu);
	ready = m->ready;
	n = snprintf(body, sizeof(body), ready ? "ready\n" : "not ready: %s\n", m->why);
	pthread_mutex_unlock(&m->mu);
	respond(fd, ready ? 200 : 503, "text/plain", body, (size_t)n);
}

static void
serve(struct bx_mgmt *m, int fd)
{
	struct timeval tv = { .tv_sec = 1 };
	bool is_get = false;
	char buf[4096];
	char *path;

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	path = read_path(fd, buf, sizeof(buf), &is_get);
	if (path == NULL) {
		return;
	}
	if (!is_get) {
		respond(fd, 405, "text/plain", "GET only\n", 9);
	} else if (strcmp(path, "/healthz") == 0) {
		respond(fd, 200, "text/plain", "ok\n", 3);
	} else if (strcmp(path, "/readyz") == 0) {
		serve_ready(m, fd);
	} else if (strcmp(path, "/metrics") == 0) {
		serve_metrics(m, fd);
	} else {
		respond(fd, 404, "text/plain", "not found\n", 10);
	}
}

static void *
mgmt_main(void *arg)
{
	struct bx_mgmt *m = arg;
	struct pollfd pfd = { .fd = m->fd, .events = POLLIN };

	while (!__atomic_load_n(&m->stop, __ATOMIC_ACQUIRE)) {
		int fd;

		/* Wake every 100 ms to notice bx_mgmt_stop(). */
		if (poll(&pfd, 1, 100) <= 0) {
			continue;
		}
		fd = accept4(m->fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd >= 0) {
			serve(m, fd);
			close(fd);
		}
	}
	return NULL;
}

int
bx_mgmt_start(const char *addr, uint16_t port, bx_mgmt_render_fn *render, void *arg,
              struct bx_mgmt **out, struct bx_errbuf *eb)
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	struct bx_mgmt *m;
	int ret;

	m = bx_calloc(1, sizeof(*m));
	if (m == NULL || (m->text = bx_malloc(METRICS_MAX)) == NULL) {
		bx_free(m);
		return bx_err(eb, ENOMEM, "out of memory");
	}
	m->render = render;
	m->arg = arg;
	snprintf(m->why, sizeof(m->why), "starting");
	pthread_mutex_init(&m->mu, NULL);
	m->fd = listen_on(addr, port, eb);
	if (m->fd < 0) {
		ret = m->fd;
		goto out_free;
	}
	getsockname(m->fd, (struct sockaddr *)&sa, &sl);
	m->port = ntohs(sa.sin_port);
	ret = -pthread_create(&m->thread, NULL, mgmt_main, m);
	if (ret < 0) {
		bx_err(eb, ret, "management thread: %s", bx_strerror(ret));
		close(m->fd);
		goto out_free;
	}
	*out = m;
	return 0;

out_free:
	pthread_mutex_destroy(&m->mu);
	bx_free(m->text);
	bx_free(m);
	return ret;
}

uint16_t
bx_mgmt_port(const struct bx_mgmt *m)
{
	return m->port;
}

void
bx_mgmt_set_ready(struct bx_mgmt *m, bool ready, const char *why)
{
	pthread_mutex_lock(&m->mu);
	m->ready = ready;
	snprintf(m->why, sizeof(m->why), "%s", why != NULL ? why : "");
	pthread_mutex_unlock(&m->mu);
}

void
bx_mgmt_stop(struct bx_mgmt *m)
{
	if (m == NULL) {
		return;
	}
	__atomic_store_n(&m->stop, 1, __ATOMIC_RELEASE);
	pthread_join(m->thread, NULL);
	close(m->fd);
	pthread_mutex_destroy(&m->mu);
	bx_free(m->text);
	bx_free(m);
}
