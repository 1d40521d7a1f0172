/*
 * bx firmware: the bxd process's configuration and lifecycle pieces.
 * The table of every bxd setting lives here, so the file syntax, the
 * command line (--key=value) and --help all come from one place.
 */
#ifndef BX_FIRMWARE_H
#define BX_FIRMWARE_H

#include <stdbool.h>
#include <stdint.h>

#include <bx/platform.h>

enum bx_fw_dataplane {
	BX_FW_DP_URING,
	BX_FW_DP_DPDK,
};

struct bx_fw_conf {
	char listen_addr[64];
	int64_t port;
	int dataplane;      /* enum bx_fw_dataplane */
	char dp_cores[128]; /* CPU list such as "0-1"; empty: plan from the topology */
	int64_t dp_conns_per_core;
	int64_t dp_idle_timeout_ms;
	char mgmt_addr[64];
	int64_t mgmt_port;
	char wallet_path[256];
	char wallet_name[64];
	char wallet_hotkey[64];
	char metagraph[256];
	char model_dir[256];
	char log_level[128];
	int64_t drain_timeout_ms;
};

extern const struct bx_conf_schema bx_fw_conf_schema;

/* What the command line asked for besides settings. */
enum bx_fw_action {
	BX_FW_RUN,
	BX_FW_HELP,
	BX_FW_VERSION,
	BX_FW_PRINT_CONFIG,
	BX_FW_CHECK,
};

/*
 * Defaults, then the -c/--config file, then every --key=value in order,
 * then validation. argv is borrowed. Returns 0 with *action set, or
 * -errno with a message naming the file, line or argument in eb.
 */
int bx_fw_conf_load(int argc, char *const *argv, struct bx_fw_conf *conf, enum bx_fw_action *action,
                    struct bx_errbuf *eb);

/* Write --help text (one line per setting with its default) into buf. */
int bx_fw_conf_help(char *buf, size_t len);

/* Write the effective configuration in the file syntax into buf. */
int bx_fw_conf_dump(const struct bx_fw_conf *conf, char *buf, size_t len);

/*
 * Parse a CPU list such as "0-3,6" into a bitmask of at most 64 CPUs.
 * -EINVAL with a message for bad syntax or CPUs past 63.
 */
int bx_fw_parse_cpulist(const char *list, uint64_t *mask, struct bx_errbuf *eb);

#endif
