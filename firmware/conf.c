/* bxd's settings table and command line. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <bx/firmware.h>

static const char *const dataplanes[] = { "uring", "dpdk", NULL };

#define FIELD(f) offsetof(struct bx_fw_conf, f), sizeof(((struct bx_fw_conf *)0)->f)

/* NOLINTBEGIN(bugprone-macro-parentheses): table rows, not expressions */
#define STR(n, f, d, h)                                                                           \
	{                                                                                         \
		.name = n, .type = BX_CONF_STR, .offset = FIELD(f), .def = d, .min = 1, .max = 0, \
		.help = h                                                                         \
	}
#define INT(n, f, d, lo, hi, fl, h)                                                      \
	{                                                                                \
		.name = n, .type = BX_CONF_INT, .offset = FIELD(f), .def = d, .min = lo, \
		.max = hi, .flags = fl, .help = h                                        \
	}
#define DBL(n, f, d, h)                                                                    \
	{                                                                                  \
		.name = n, .type = BX_CONF_DOUBLE, .offset = FIELD(f), .def = d, .min = 0, \
		.max = 1e9, .help = h                                                      \
	}
/* NOLINTEND(bugprone-macro-parentheses) */

static const struct bx_conf_opt opts[] = {
	STR("listen_addr", listen_addr, "127.0.0.1", "IPv4 address the axon listens on"),
	INT("port", port, "8091", 1, 65535, 0, "axon TCP port"),
	{ .name = "dataplane",
	  .type = BX_CONF_ENUM,
	  .offset = FIELD(dataplane),
	  .def = "uring",
	  .choices = dataplanes,
	  .help = "packet path: uring (kernel TCP) or dpdk (kernel bypass)" },
	STR("dp.cores", dp_cores, "", "dataplane CPUs, e.g. 0-1 (empty: planned from topology)"),
	INT("dp.conns_per_core", dp_conns_per_core, "1024", 1, 1 << 20, 0,
	    "connection cap per dataplane core"),
	INT("dp.idle_timeout_ms", dp_idle_timeout_ms, "20000", 100, 3600000, 0,
	    "close idle keep-alive connections after this long (> dendrite's 15 s)"),
	STR("sched.cpus", sched_cpus, "",
	    "inference worker CPUs, one worker each (empty: every physical core)"),
	STR("dpdk.eal_args", dpdk.eal_args, "", "EAL arguments, e.g. --no-huge -m 512"),
	STR("dpdk.device", dpdk.device, "", "wire port: PCI address or vdev (net_tap0,iface=bx0)"),
	STR("dpdk.exception", dpdk.exception, "",
	    "kernel exception port vdev (net_tap1,iface=bx-mgmt)"),
	STR("dpdk.addr", dpdk.addr, "", "the appliance's IPv4 on the wire, e.g. 10.0.0.2/24"),
	STR("dpdk.gateway", dpdk.gateway, "", "IPv4 next hop off the subnet (empty: none)"),
	STR("dpdk.allow", dpdk.allow, "", "allow-listed networks besides the metagraph's IPs"),
	{ .name = "dpdk.allowlist_only",
	  .type = BX_CONF_BOOL,
	  .offset = FIELD(dpdk.allowlist_only),
	  .def = "false",
	  .min = 1,
	  .max = 0,
	  .help = "drop every source not on the allow-list" },
	INT("dpdk.idle_us", dpdk.idle_us, "50", 0, 1000000, 0,
	    "sleep after empty polls (0: busy poll; keep > 0 when inference shares the core)"),
	DBL("dpdk.syn_rate", dpdk.syn_rate, "20", "SYNs/s per open-lane source (0: off)"),
	DBL("dpdk.syn_burst", dpdk.syn_burst, "40", "SYN burst per open-lane source"),
	DBL("dpdk.pkt_rate", dpdk.pkt_rate, "0", "packets/s per open-lane source (0: off)"),
	DBL("dpdk.pkt_burst", dpdk.pkt_burst, "0", "packet burst per open-lane source"),
	DBL("dpdk.open_rate", dpdk.open_rate, "4000", "packets/s of the whole open lane (0: off)"),
	DBL("dpdk.open_burst", dpdk.open_burst, "8000", "packet burst of the whole open lane"),
	STR("mgmt.addr", mgmt_addr, "127.0.0.1", "health and metrics listener address"),
	INT("mgmt.port", mgmt_port, "9100", 1, 65535, 0, "health and metrics port"),
	STR("wallet.path", wallet_path, "~/.bittensor/wallets", "btcli wallets directory"),
	STR("wallet.name", wallet_name, "default", "wallet name"),
	STR("wallet.hotkey", wallet_hotkey, "default", "hotkey name (the miner's signing key)"),
	STR("metagraph", metagraph, "", "metagraph JSON file (uid, hotkey, stake, permits)"),
	STR("model.dir", model_dir, "../shared/models/all-MiniLM-L6-v2",
	    "embedding model directory"),
	{ .name = "model.reference",
	  .type = BX_CONF_BOOL,
	  .offset = FIELD(model_reference),
	  .def = "false",
	  .min = 1,
	  .max = 0,
	  .help = "run the plain-C f32 reference forward pass instead of oneDNN (debugging)" },
	STR("gen.model", gen_model, "../shared/models/fortune-1m/model.bin",
	    "text generation model: llama2.c .bin or .gguf (empty: none)"),
	STR("gen.tokenizer", gen_tokenizer, "../shared/models/fortune-1m/tokenizer.bin",
	    "tokenizer.bin of a llama2.c checkpoint (GGUF carries its own)"),
	INT("gen.max_tokens", gen_max_tokens, "256", 1, 4096, 0,
	    "cap on the tokens one TextGeneration request may ask for"),
	STR("log_level", log_level, "info", "e.g. info or info,dp:debug"),
	INT("drain_timeout_ms", drain_timeout_ms, "10000", 0, 600000, 0,
	    "on SIGTERM, wait this long for in-flight requests"),
};

static int
check(const void *p, struct bx_errbuf *eb)
{
	const struct bx_fw_conf *c = p;
	uint64_t mask;

	if (bx_log_set_levels(c->log_level, NULL) < 0) {
		return bx_err(eb, EINVAL, "log_level '%s' is not a level spec", c->log_level);
	}
	if (c->port == c->mgmt_port && strcmp(c->listen_addr, c->mgmt_addr) == 0) {
		return bx_err(eb, EINVAL, "port and mgmt.port are both %" PRId64, c->port);
	}
	if (c->dataplane == BX_FW_DP_DPDK &&
	    (c->dpdk.device[0] == '\0' || c->dpdk.addr[0] == '\0')) {
		return bx_err(eb, EINVAL, "dataplane = dpdk needs dpdk.device and dpdk.addr");
	}
	if (c->sched_cpus[0] != '\0' && bx_fw_parse_cpulist(c->sched_cpus, &mask, eb) < 0) {
		return -EINVAL;
	}
	return c->dp_cores[0] != '\0' ? bx_fw_parse_cpulist(c->dp_cores, &mask, eb) : 0;
}

const struct bx_conf_schema bx_fw_conf_schema = {
	.opts = opts,
	.nb_opts = BX_ARRAY_SIZE(opts),
	.conf_size = sizeof(struct bx_fw_conf),
	.check = check,
};

static int
parse_cpu(const char **p, unsigned *cpu)
{
	unsigned v = 0;

	if (!isdigit((unsigned char)**p)) {
		return -EINVAL;
	}
	while (isdigit((unsigned char)**p) && v < 64) {
		v = v * 10 + (unsigned)(*(*p)++ - '0');
	}
	*cpu = v;
	return v < 64 ? 0 : -ERANGE;
}

int
bx_fw_parse_cpulist(const char *list, uint64_t *mask, struct bx_errbuf *eb)
{
	const char *p = list;
	uint64_t m = 0;

	do {
		unsigned lo, hi;

		if (parse_cpu(&p, &lo) < 0) {
			return bx_err(eb, EINVAL, "CPU list '%s': expected a CPU number 0..63",
			              list);
		}
		hi = lo;
		if (*p == '-' && (p++, parse_cpu(&p, &hi) < 0 || hi < lo)) {
			return bx_err(eb, EINVAL, "CPU list '%s': bad range", list);
		}
		for (unsigned c = lo; c <= hi; c++) {
			m |= 1ull << c;
		}
	} while (*p == ',' && *p++ == ','); /* a comma must be followed by a CPU */
	if (*p != '\0') {
		return bx_err(eb, EINVAL, "CPU list '%s': unexpected '%c'", list, *p);
	}
	*mask = m;
	return 0;
}

static enum bx_fw_action
flag_action(const char *arg)
{
	static const struct {
		const char *flag;
		enum bx_fw_action action;
	} flags[] = {
		{ "--help", BX_FW_HELP },       { "-h", BX_FW_HELP },
		{ "--version", BX_FW_VERSION }, { "--print-config", BX_FW_PRINT_CONFIG },
		{ "--check", BX_FW_CHECK },
	};

	for (size_t i = 0; i < BX_ARRAY_SIZE(flags); i++) {
		if (strcmp(arg, flags[i].flag) == 0) {
			return flags[i].action;
		}
	}
	return BX_FW_RUN;
}

/* First pass: the config file and the action flags; the rest are settings. */
static int
scan_args(int argc, char *const *argv, const char **file, const char **kv, size_t *nb_kv,
          enum bx_fw_action *action, struct bx_errbuf *eb)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) {
			if (++i == argc) {
				return bx_err(eb, EINVAL, "%s needs a file name", a);
			}
			*file = argv[i];
		} else if (strncmp(a, "--config=", 9) == 0) {
			*file = a + 9;
		} else if (flag_action(a) != BX_FW_RUN) {
			*action = flag_action(a);
		} else if (strncmp(a, "--", 2) == 0 && strchr(a, '=') != NULL) {
			kv[(*nb_kv)++] = a + 2;
		} else {
			return bx_err(eb, EINVAL, "unknown argument '%s' (try --help)", a);
		}
	}
	return 0;
}

int
bx_fw_conf_load(int argc, char *const *argv, struct bx_fw_conf *conf, enum bx_fw_action *action,
                struct bx_errbuf *eb)
{
	const char *kv[256], *file = NULL;
	size_t nb_kv = 0;
	int ret;

	if (argc > (int)BX_ARRAY_SIZE(kv)) {
		return bx_err(eb, E2BIG, "too many arguments");
	}
	*action = BX_FW_RUN;
	ret = scan_args(argc, argv, &file, kv, &nb_kv, action, eb);
	if (ret < 0) {
		return ret;
	}
	ret = bx_conf_defaults(&bx_fw_conf_schema, conf, eb);
	if (ret == 0 && file != NULL) {
		ret = bx_conf_load_file(&bx_fw_conf_schema, conf, file, eb);
	}
	if (ret == 0) {
		ret = bx_conf_apply_overrides(&bx_fw_conf_schema, conf, kv, nb_kv, eb);
	}
	return ret;
}

int
bx_fw_conf_help(char *buf, size_t len)
{
	size_t used = 0;

	for (size_t i = 0; i < BX_ARRAY_SIZE(opts) && used < len; i++) {
		used += snprintf(buf + used, len - used, "  --%s=%s\n        %s%s\n", opts[i].name,
		                 opts[i].def, opts[i].help,
		                 opts[i].flags & BX_CONF_RUNTIME ? " (runtime)" : "");
	}
	return (int)used;
}

int
bx_fw_conf_dump(const struct bx_fw_conf *conf, char *buf, size_t len)
{
	size_t used = 0;
	char val[300];

	for (size_t i = 0; i < BX_ARRAY_SIZE(opts) && used < len; i++) {
		bx_conf_format(&opts[i], conf, val, sizeof(val));
		used += snprintf(buf + used, len - used, "%s = %s\n", opts[i].name, val);
	}
	return (int)used;
}
