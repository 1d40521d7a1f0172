/*
 * Start the real bxd binary for tests and benchmarks: a temporary directory
 * with a btcli wallet for the miner, a metagraph (dp_testlib's keys) and
 * generated MiniLM-shaped weights beside the real vocabulary.
 */
#ifndef BX_TEST_BXD_RUN_H
#define BX_TEST_BXD_RUN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "dp_testlib.h"

struct bxd_run {
	char dir[64];
	pid_t pid;
	uint16_t port, mgmt_port;
	struct dpt_keys keys;
};

/* 0, or -1 with the reason printed. extra: more bxd arguments, NULL-terminated. */
int bxd_run_start(struct bxd_run *r, const char *bxd, const char *mkweights,
                  const char *const *extra);
/* SIGTERM, wait; the wait status. */
int bxd_run_stop(struct bxd_run *r);
/* Stop if running, free keys, remove the directory. */
void bxd_run_cleanup(struct bxd_run *r);
/* GET on the management port: the status (0: no answer), body in buf. */
int bxd_run_mgmt_get(const struct bxd_run *r, const char *path, char *buf, size_t len);
/* A TCP connection to 127.0.0.1:port with a 10 s receive timeout, or -1. */
int bxd_run_dial(uint16_t port);

#endif
