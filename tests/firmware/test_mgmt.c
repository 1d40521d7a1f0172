/* Covers: firmware/mgmt.c, firmware/prom.c — health, readiness, metrics over loopback. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include <bx/firmware.h>

/* One request to 127.0.0.1:port; the whole response into buf. */
static size_t
get(uint16_t port, const char *req, char *buf, size_t len)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	size_t used = 0;
	ssize_t n;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(send(fd, req, strlen(req), 0), (ssize_t)strlen(req));
	while (used < len - 1 && (n = recv(fd, buf + used, len - 1 - used, 0)) > 0) {
		used += (size_t)n;
	}
	buf[used] = '\0';
	close(fd);
	return used;
}

static void
render(void *arg, struct bx_prom *p)
{
	struct bx_lathist h = { 0 };

	bx_lathist_record(&h, 1500);   /* 1.5 us */
	bx_lathist_record(&h, 300000); /* 300 us */
	bx_prom_family(p, "bx_requests_total", "counter", "requests");
	bx_prom_sample(p, "bx_requests_total", "synapse=\"Synapse\"", *(int *)arg);
	bx_prom_family(p, "bx_stage_seconds", "histogram", "latency");
	bx_prom_lathist(p, "bx_stage_seconds", "stage=\"verify\"", &h);
}

static void
test_mgmt_endpoints(void **state)
{
	struct bx_mgmt *m;
	struct bx_errbuf eb;
	char buf[16384];
	int nb_req = 42;
	uint16_t port;

	assert_int_equal(bx_mgmt_start("127.0.0.1", 0, render, &nb_req, &m, &eb), 0);
	port = bx_mgmt_port(m);
	get(port, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", buf, sizeof(buf));
	assert_non_null(strstr(buf, "HTTP/1.1 200 OK"));
	get(port, "GET /readyz HTTP/1.1\r\n\r\n", buf, sizeof(buf));
	assert_non_null(strstr(buf, "HTTP/1.1 503"));
	assert_non_null(strstr(buf, "not ready: starting"));
	bx_mgmt_set_ready(m, true, NULL);
	get(port, "GET /readyz HTTP/1.1\r\n\r\n", buf, sizeof(buf));
	assert_non_null(strstr(buf, "HTTP/1.1 200 OK"));
	get(port, "GET /metrics HTTP/1.1\r\n\r\n", buf, sizeof(buf));
	assert_non_null(strstr(buf, "text/plain; version=0.0.4"));
	assert_non_null(strstr(buf, "bx_requests_total{synapse=\"Synapse\"} 42\n"));
	assert_non_null(strstr(buf, "bx_stage_seconds_bucket{stage=\"verify\",le=\"1e-06\"} 0\n"));
	assert_non_null(strstr(buf, "bx_stage_seconds_bucket{stage=\"verify\",le=\"2e-06\"} 1\n"));
	assert_non_null(strstr(buf, "bx_stage_seconds_bucket{stage=\"verify\",le=\"+Inf\"} 2\n"));
	assert_non_null(strstr(buf, "bx_stage_seconds_count{stage=\"verify\"} 2\n"));
	get(port, "GET /nope HTTP/1.1\r\n\r\n", buf, sizeof(buf));
	assert_non_null(strstr(buf, "HTTP/1.1 404"));
	get(port, "POST /metrics HTTP/1.1\r\n\r\n", buf, sizeof(buf));
	assert_non_null(strstr(buf, "HTTP/1.1 405"));
	get(port, "garbage\r\n\r\n", buf, sizeof(buf)); /* no answer, no crash */
	get(port, "GET /healthz HTTP/1.1\r\n\r\n", buf, sizeof(buf));
	assert_non_null(strstr(buf, "200 OK"));
	bx_mgmt_stop(m);
	assert_int_equal(bx_mgmt_start("not-an-ip", 0, render, &nb_req, &m, &eb), -EINVAL);
	assert_non_null(strstr(eb.msg, "not-an-ip"));
}

static void
test_prom_truncates_cleanly(void **state)
{
	char small[40];
	struct bx_prom p = { .buf = small, .len = sizeof(small) };

	bx_prom_sample(&p, "a", NULL, 1);
	assert_false(p.truncated);
	bx_prom_sample(&p, "a_very_long_metric_name_that_does_not_fit", NULL, 2);
	assert_true(p.truncated);
	assert_int_equal(p.used, p.len);
	assert_string_equal(small, "a 1\n");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mgmt_endpoints),
		cmocka_unit_test(test_prom_truncates_cleanly),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
