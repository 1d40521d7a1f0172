/* The test axon (responder.h). */
#include "responder.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <bx/crypto.h>
#include <bx/platform.h>

struct rconn {
	struct responder *r;
	int fd;
	uint64_t k; /* index in r->fds */
};

static bool
hval(const char *head, const char *name, char *out, size_t cap)
{
	size_t n = strlen(name);
	const char *p = head;

	while ((p = strstr(p, "\r\n")) != NULL) {
		p += 2;
		if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
			const char *v = p + n + 1, *e;

			while (*v == ' ') {
				v++;
			}
			e = strstr(v, "\r\n");
			if (e == NULL || (size_t)(e - v) >= cap) {
				return false;
			}
			memcpy(out, v, (size_t)(e - v));
			out[e - v] = 0;
			return true;
		}
	}
	return false;
}

/* §3.2: verify the dendrite's signature with our own hotkey, and the body hash. */
static bool
verify_req(struct responder *r, const char *head, const char *body, size_t blen)
{
	char nonce[32], hk[80], uuid[64], bh[80], sig[160], msg[512];
	uint8_t pub[32], s[64], d[32];
	char want[65];
	int n;

	if (!hval(head, "bt_header_dendrite_nonce", nonce, sizeof(nonce)) ||
	    !hval(head, "bt_header_dendrite_hotkey", hk, sizeof(hk)) ||
	    !hval(head, "bt_header_dendrite_uuid", uuid, sizeof(uuid)) ||
	    !hval(head, "computed_body_hash", bh, sizeof(bh)) ||
	    !hval(head, "bt_header_dendrite_signature", sig, sizeof(sig)) || strlen(sig) != 130 ||
	    bx_ss58_decode(hk, strlen(hk), pub, NULL, NULL) < 0 ||
	    bx_hex_decode(s, 64, sig + 2, 128) < 0) {
		return false;
	}
	n = snprintf(msg, sizeof(msg), "%s.%s.%s.%s.%s", nonce, hk, r->ss58, uuid, bh);
	if (bx_sr25519_verify(s, msg, (size_t)n, pub) != 0) {
		return false;
	}
	/* Echo requests hash no field: the body hash is sha3(""). */
	if (strncmp(head, "POST /Synapse ", 14) == 0) {
		bx_sha3_256(d, "", 0);
		bx_hex_encode(want, d, 32);
		if (strcmp(want, bh) != 0) {
			return false;
		}
	}
	return memchr(body, '{', blen) == body;
}

static size_t
answer(struct responder *r, const char *head, bool ok, char *out, size_t cap)
{
	static const char fmt[] =
		"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %zu\r\n"
		"bt_header_axon_status_code: %d\r\nbt_header_axon_status_message: %s\r\n"
		"bt_header_axon_process_time: 0.0001\r\nbt_header_axon_nonce: %" PRIu64 "\r\n"
		"bt_header_axon_uuid: 11111111-2222-1333-8444-555555555555\r\n"
		"bt_header_axon_hotkey: %s\r\nbt_header_axon_signature: 0x%s\r\n\r\n%s";
	char body[65536], hk[80] = "", msg[512], sig[129];
	uint64_t an = bx_wall_ns();
	uint8_t s[64];
	size_t bl = 0;
	int n, code = ok ? 200 : 401;
	unsigned i, k;

	hval(head, "bt_header_dendrite_hotkey", hk, sizeof(hk));
	bl += (size_t)snprintf(body, sizeof(body),
	                       "{\"name\":\"Synapse\",\"axon\":{\"status_code\":%d,"
	                       "\"status_message\":\"%s\",\"process_time\":0.0001}",
	                       code, ok ? "Success" : "Not Verified");
	if (ok && r->embedding != NULL && strncmp(head, "POST /TextEmbedding ", 20) == 0) {
		unsigned texts = 1;
		const char *p = strstr(head, "\r\n\r\n");

		(void)p;
		bl += (size_t)snprintf(body + bl, sizeof(body) - bl, ",\"embeddings\":[");
		for (k = 0; k < texts; k++) {
			bl += (size_t)snprintf(body + bl, sizeof(body) - bl, "%s[", k ? "," : "");
			for (i = 0; i < r->dim; i++) {
				bl += (size_t)snprintf(body + bl, sizeof(body) - bl, "%s%.9g",
				                       i ? "," : "", (double)r->embedding[i]);
			}
			bl += (size_t)snprintf(body + bl, sizeof(body) - bl, "]");
		}
		bl += (size_t)snprintf(body + bl, sizeof(body) - bl, "]");
	}
	bl += (size_t)snprintf(body + bl, sizeof(body) - bl, "}");
	n = snprintf(msg, sizeof(msg), "%" PRIu64 ".%s.%s.%s", (uint64_t)an, hk, r->ss58,
	             "11111111-2222-1333-8444-555555555555");
	if (r->trivial) {
		memset(s, 0, sizeof(s));
	} else {
		bx_sr25519_sign(s, msg, (size_t)n, r->bad_sig ? r->wrong : r->kp);
	}
	bx_hex_encode(sig, s, 64);
	n = snprintf(out, cap, fmt, code, ok ? "OK" : "Unauthorized", bl, code,
	             ok ? "Success" : "Not Verified", (uint64_t)an, r->ss58, sig, body);
	return (size_t)n;
}

static void
sleep_us(unsigned us)
{
	struct timespec ts = { us / 1000000, (long)(us % 1000000) * 1000 };

	nanosleep(&ts, NULL);
}

/* §5: status 200, bt headers, then one chunk per token. */
static int
stream(struct responder *r, int fd)
{
	static const char head[] =
		"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
		"transfer-encoding: chunked\r\nbt_header_axon_status_code: 200\r\n"
		"bt_header_axon_status_message: Success\r\n\r\n";
	const char *p = r->stream;
	char chunk[256];

	if (send(fd, head, sizeof(head) - 1, MSG_NOSIGNAL) < 0) {
		return -1;
	}
	while (*p != 0) {
		const char *e = strchr(p, '\n');
		size_t len = e != NULL ? (size_t)(e - p) + 1 : strlen(p);
		int n;

		sleep_us(r->token_delay_us);
		n = snprintf(chunk, sizeof(chunk), "%zx\r\n%.*s\r\n", len, (int)len, p);
		if (send(fd, chunk, (size_t)n, MSG_NOSIGNAL) < 0) {
			return -1;
		}
		p += len;
	}
	return send(fd, "0\r\n\r\n", 5, MSG_NOSIGNAL) < 0 ? -1 : 0;
}

static void *
conn_main(void *arg)
{
	struct rconn *c = arg;
	struct responder *r = c->r;
	static __thread char buf[1 << 18], out[1 << 18];
	size_t len = 0;

	for (;;) {
		char *end = len ? memmem(buf, len, "\r\n\r\n", 4) : NULL;
		char clv[32];
		size_t head, cl = 0, n;
		uint64_t k;
		bool ok;

		if (end == NULL) {
			ssize_t got = recv(c->fd, buf + len, sizeof(buf) - len - 1, 0);

			if (got <= 0 || __atomic_load_n(&r->stop, __ATOMIC_ACQUIRE)) {
				break;
			}
			len += (size_t)got;
			continue;
		}
		head = (size_t)(end + 4 - buf);
		buf[head - 2] = 0; /* terminate the head for hval (keeps one \r\n) */
		if (hval(buf, "content-length", clv, sizeof(clv))) {
			cl = strtoul(clv, NULL, 10);
		}
		while (len < head + cl) {
			ssize_t got = recv(c->fd, buf + len, sizeof(buf) - len - 1, 0);

			if (got <= 0) {
				goto out;
			}
			len += (size_t)got;
		}
		k = __atomic_add_fetch(&r->requests, 1, __ATOMIC_RELAXED);
		ok = r->trivial || verify_req(r, buf, buf + head, cl);
		__atomic_add_fetch(ok ? &r->verified : &r->rejected, 1, __ATOMIC_RELAXED);
		if (r->stall_at != 0 && k == r->stall_at) {
			sleep_us(r->stall_ms * 1000);
		}
		if (r->delay_us) {
			sleep_us(r->delay_us);
		}
		if (ok && r->stream != NULL && strstr(buf, "TextGeneration ") != NULL) {
			if (stream(r, c->fd) < 0) {
				break;
			}
		} else {
			n = answer(r, buf, ok, out, sizeof(out));
			if (send(c->fd, out, n, MSG_NOSIGNAL) != (ssize_t)n) {
				break;
			}
		}
		memmove(buf, buf + head + cl, len - head - cl);
		len -= head + cl;
	}
out:
	if (c->k < 1024) {
		__atomic_store_n(&r->fds[c->k], -1, __ATOMIC_RELEASE);
	}
	close(c->fd);
	free(c);
	__atomic_sub_fetch(&r->live, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void *
accept_main(void *arg)
{
	struct responder *r = arg;

	while (!__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE)) {
		int fd = accept(r->lfd, NULL, NULL), one = 1;
		struct rconn *c;
		pthread_t th;
		uint64_t k;

		if (fd < 0) {
			if (__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE)) {
				break;
			}
			continue;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		k = __atomic_fetch_add(&r->accepted_conns, 1, __ATOMIC_RELAXED);
		if (k < 1024) {
			r->fds[k] = fd;
		}
		c = malloc(sizeof(*c));
		c->r = r;
		c->fd = fd;
		c->k = k;
		__atomic_add_fetch(&r->live, 1, __ATOMIC_ACQUIRE);
		if (pthread_create(&th, NULL, conn_main, c) != 0) {
			__atomic_sub_fetch(&r->live, 1, __ATOMIC_RELEASE);
			close(fd);
			free(c);
			continue;
		}
		pthread_detach(th);
	}
	return NULL;
}

int
responder_start(struct responder *r, uint8_t seed_fill)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof(a);
	uint8_t seed[32];
	int one = 1;

	memset(seed, seed_fill, sizeof(seed));
	if (bx_sr25519_keypair_from_seed(seed, &r->kp) < 0) {
		return -EIO;
	}
	seed[0] ^= 0xff;
	if (bx_sr25519_keypair_from_seed(seed, &r->wrong) < 0) {
		return -EIO;
	}
	bx_ss58_encode(r->ss58, sizeof(r->ss58), bx_sr25519_public(r->kp), BX_SS58_BITTENSOR);
	r->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	setsockopt(r->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	if (bind(r->lfd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(r->lfd, 512) < 0 ||
	    getsockname(r->lfd, (struct sockaddr *)&a, &alen) < 0) {
		return -errno;
	}
	r->port = ntohs(a.sin_port);
	return -pthread_create(&r->acceptor, NULL, accept_main, r);
}

void
responder_stop(struct responder *r)
{
	uint64_t k, n;
	int i;

	__atomic_store_n(&r->stop, true, __ATOMIC_RELEASE);
	shutdown(r->lfd, SHUT_RDWR);
	pthread_join(r->acceptor, NULL);
	close(r->lfd);
	n = BX_MIN(__atomic_load_n(&r->accepted_conns, __ATOMIC_RELAXED), 1024);
	for (k = 0; k < n; k++) {
		int fd = __atomic_load_n(&r->fds[k], __ATOMIC_ACQUIRE);

		if (fd >= 0) {
			shutdown(fd, SHUT_RDWR);
		}
	}
	for (i = 0; i < 2000 && __atomic_load_n(&r->live, __ATOMIC_ACQUIRE) > 0; i++) {
		sleep_us(1000);
	}
	bx_sr25519_keypair_destroy(r->kp);
	bx_sr25519_keypair_destroy(r->wrong);
}
