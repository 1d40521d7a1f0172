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
	char sched_cpus[128]; /* inference worker CPUs; empty: every physical core */

	struct {
		char eal_args[256], device[128], exception[128], addr[32], gateway[16];
		char allow[256];
		bool allowlist_only;
		int64_t idle_us;
		double syn_rate, syn_burst, pkt_rate, pkt_burst, open_rate, open_burst;
	} dpdk; /* dataplane = dpdk: the kernel-bypass port (dataplane/README.md) */

	char mgmt_addr[64];
	int64_t mgmt_port;
	char wallet_path[256];
	char wallet_name[64];
	char wallet_hotkey[64];
	char metagraph[256];
	char model_dir[256];
	bool model_reference;    /* plain-C f32 forward pass instead of oneDNN (debugging) */
	char gen_model[256];     /* llama2.c .bin or GGUF; empty: no generation */
	char gen_tokenizer[256]; /* tokenizer.bin for a llama2.c checkpoint */
	int64_t gen_max_tokens;  /* cap on a request's max_tokens */
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

/* ======================= Management listener ======================= */

/*
 * A small HTTP/1.1 listener on its own thread for operators and
 * orchestrators, one request per connection (Connection: close):
 *   GET /healthz  200 while the process runs
 *   GET /readyz   200 once models are loaded and workers are up, else 503
 *   GET /metrics  Prometheus text exposition 0.0.4 from the render callback
 * Bind it to loopback unless the network in front is trusted.
 */
struct bx_mgmt;

/* Append the metrics text to p (see struct bx_prom). */
struct bx_prom;
typedef void(bx_mgmt_render_fn)(void *arg, struct bx_prom *p);

int bx_mgmt_start(const char *addr, uint16_t port, bx_mgmt_render_fn *render, void *arg,
                  struct bx_mgmt **out, struct bx_errbuf *eb);
/* The bound port (useful with port 0). */
uint16_t bx_mgmt_port(const struct bx_mgmt *m);
/* ready: /readyz answers 200; else 503 with `why` (copied). Any thread. */
void bx_mgmt_set_ready(struct bx_mgmt *m, bool ready, const char *why);
/* Stop the thread and close the socket. Accepts NULL. */
void bx_mgmt_stop(struct bx_mgmt *m);

/* ======================= Prometheus text ======================= */

/* A bounded text buffer; writes past the end are dropped and counted. */
struct bx_prom {
	char *buf;
	size_t len, used;
	bool truncated;
};

/* One sample line: name{labels} value. labels may be NULL or "k=\"v\",...". */
void bx_prom_sample(struct bx_prom *p, const char *name, const char *labels, double value);
/* # HELP and # TYPE lines for a metric family. */
void bx_prom_family(struct bx_prom *p, const char *name, const char *type, const char *help);
/* A histogram in seconds from a bx_lathist (buckets, _sum, _count). */
void bx_prom_lathist(struct bx_prom *p, const char *name, const char *labels,
                     const struct bx_lathist *h);

#endif
