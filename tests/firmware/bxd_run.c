/* Start the real bxd binary for tests and benchmarks (see bxd_run.h). */
#include "bxd_run.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bx_test.h"

static uint16_t
free_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		return 0;
	}
	getsockname(fd, (struct sockaddr *)&sa, &sl);
	close(fd);
	return ntohs(sa.sin_port);
}

int
bxd_run_dial(uint16_t p)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(p) };
	struct timeval tv = { .tv_sec = 10 };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

int
bxd_run_mgmt_get(const struct bxd_run *r, const char *path, char *buf, size_t len)
{
	char req[128];
	size_t used = 0;
	ssize_t n;
	int fd = bxd_run_dial(r->mgmt_port), status = 0;

	if (fd < 0) {
		return 0;
	}
	snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\n\r\n", path);
	send(fd, req, strlen(req), 0);
	while (used < len - 1 && (n = recv(fd, buf + used, len - 1 - used, 0)) > 0) {
		used += (size_t)n;
	}
	buf[used] = '\0';
	close(fd);
	sscanf(buf, "HTTP/1.1 %d", &status);
	return status;
}

/* Wallet, metagraph and generated weights beside the real vocabulary. */
static int
prepare(struct bxd_run *r, const char *mkweights)
{
	char path[256], mg[4096], shared[512], cmd[4096];
	struct bx_errbuf eb;
	FILE *f;

	/* The miner's hotkey for bxd, the registered validator's for clients. */
	snprintf(path, sizeof(path), "%s/wallets/miner/hotkeys/default", r->dir);
	if (bx_keyfile_write(path, r->keys.miner, NULL, NULL, false, &eb) < 0) {
		fprintf(stderr, "bxd_run: %s\n", eb.msg);
		return -1;
	}
	snprintf(path, sizeof(path), "%s/wallets/validator/hotkeys/default", r->dir);
	if (bx_keyfile_write(path, r->keys.validator, NULL, NULL, false, &eb) < 0) {
		fprintf(stderr, "bxd_run: %s\n", eb.msg);
		return -1;
	}
	dpt_metagraph_json(&r->keys, mg, sizeof(mg));
	snprintf(path, sizeof(path), "%s/metagraph.json", r->dir);
	f = fopen(path, "w");
	if (f == NULL || fputs(mg, f) < 0 || fclose(f) != 0) {
		return -1;
	}
	bx_test_shared("models/all-MiniLM-L6-v2", shared, sizeof(shared));
	snprintf(cmd, sizeof(cmd),
	         "mkdir -p %s/model && cp %s/vocab.txt %s/config.json %s/model/ && "
	         "%s --seed 7 %s/model >/dev/null",
	         r->dir, shared, shared, r->dir, mkweights, r->dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void
exec_bxd(const struct bxd_run *r, const char *bxd, const char *const *extra)
{
	char a[7][600], shared[512];
	const char *argv[32] = { "bxd", a[0], a[1],
		                 a[2],  a[3], a[4],
		                 a[5],  a[6], "--wallet.name=miner" };
	unsigned n = 9;

	snprintf(a[0], sizeof(a[0]), "--wallet.path=%s/wallets", r->dir);
	snprintf(a[1], sizeof(a[1]), "--metagraph=%s/metagraph.json", r->dir);
	snprintf(a[2], sizeof(a[2]), "--port=%u", r->port);
	snprintf(a[3], sizeof(a[3]), "--mgmt.port=%u", r->mgmt_port);
	snprintf(a[4], sizeof(a[4]), "--model.dir=%s/model", r->dir);
	snprintf(a[5], sizeof(a[5]), "--gen.model=%s",
	         bx_test_shared("models/fortune-1m/model.bin", shared, sizeof(shared)));
	snprintf(a[6], sizeof(a[6]), "--gen.tokenizer=%s",
	         bx_test_shared("models/fortune-1m/tokenizer.bin", shared, sizeof(shared)));
	for (; extra != NULL && *extra != NULL && n < 31; extra++) {
		argv[n++] = *extra;
	}
	argv[n] = NULL;
	execv(bxd, (char *const *)argv);
	_exit(127);
}

int
bxd_run_start(struct bxd_run *r, const char *bxd, const char *mkweights, const char *const *extra)
{
	char body[256];

	memset(r, 0, sizeof(*r));
	snprintf(r->dir, sizeof(r->dir), "/tmp/bxd_run_XXXXXX");
	if (mkdtemp(r->dir) == NULL) {
		return -1;
	}
	dpt_keys_make(&r->keys);
	r->port = free_port();
	r->mgmt_port = free_port();
	if (prepare(r, mkweights) < 0) {
		return -1;
	}
	r->pid = fork();
	if (r->pid == 0) {
		exec_bxd(r, bxd, extra);
	}
	for (int i = 0; i < 300; i++) {
		struct timespec ts = { 0, 100000000 };

		if (bxd_run_mgmt_get(r, "/readyz", body, sizeof(body)) == 200) {
			return 0;
		}
		nanosleep(&ts, NULL);
	}
	fprintf(stderr, "bxd_run: bxd not ready after 30 s\n");
	return -1;
}

int
bxd_run_stop(struct bxd_run *r)
{
	int status = -1;

	if (r->pid > 0) {
		kill(r->pid, SIGTERM);
		waitpid(r->pid, &status, 0);
		r->pid = 0;
	}
	return status;
}

void
bxd_run_cleanup(struct bxd_run *r)
{
	char cmd[128];

	bxd_run_stop(r);
	dpt_keys_free(&r->keys);
	if (r->dir[0] != '\0') {
		snprintf(cmd, sizeof(cmd), "rm -rf %s", r->dir);
		if (system(cmd) != 0) {
			fprintf(stderr, "bxd_run: could not remove %s\n", r->dir);
		}
	}
}
