/*
 * EAL, ports and start-up checks for the DPDK port (see dpdk_env.h).
 */
#include "dpdk_env.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_log.h>
#include <rte_mempool.h>

#define MAX_ARGS 64

pthread_mutex_t bx_dpdk_env_lock = PTHREAD_MUTEX_INITIALIZER;

static bool eal_done;
static char eal_args_used[512];

/* DPDK's log lines go through bx's log, at the level DPDK gave them. */
static ssize_t
log_write(void *cookie, const char *buf, size_t len)
{
	uint32_t lvl = rte_log_cur_msg_loglevel();
	enum bx_log_level l = lvl <= RTE_LOG_ERR     ? BX_LOG_ERR :
	                      lvl <= RTE_LOG_WARNING ? BX_LOG_WARN :
	                      lvl <= RTE_LOG_INFO    ? BX_LOG_INFO :
	                                               BX_LOG_DEBUG;
	size_t n = len;

	(void)cookie;
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) {
		n--;
	}
	if (n > 0 && bx_log_enabled(BX_LOG_TYPE, l)) {
		bx_log_emit(BX_LOG_TYPE, l, "dpdk: %.*s", (int)n, buf);
	}
	return (ssize_t)len;
}

static void
log_redirect(void)
{
	static cookie_io_functions_t fns = { .write = log_write };
	FILE *f = fopencookie(NULL, "w", fns);

	if (f) {
		setvbuf(f, NULL, _IOLBF, 0);
		rte_openlog_stream(f);
	}
}

static bool
has_arg(char *const *argv, int argc, const char *a, const char *b)
{
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], a) == 0 || (b && strcmp(argv[i], b) == 0) ||
		    (strncmp(argv[i], a, strlen(a)) == 0 && argv[i][strlen(a)] == '=')) {
			return true;
		}
	}
	return false;
}

/* Free pages of every size, from sysfs. -1 when sysfs does not say. */
static long
hugepages_free(void)
{
	DIR *d = opendir("/sys/kernel/mm/hugepages");
	struct dirent *e;
	long total = -1;

	if (!d) {
		return -1;
	}
	while ((e = readdir(d))) {
		char path[512];
		FILE *f;
		long n;

		if (strncmp(e->d_name, "hugepages-", 10) != 0) {
			continue;
		}
		snprintf(path, sizeof(path), "/sys/kernel/mm/hugepages/%s/free_hugepages",
		         e->d_name);
		f = fopen(path, "r");
		if (f && fscanf(f, "%ld", &n) == 1) {
			total = (total < 0 ? 0 : total) + n;
		}
		if (f) {
			fclose(f);
		}
	}
	closedir(d);
	return total;
}

static bool
hugetlbfs_mounted(void)
{
	FILE *f = fopen("/proc/mounts", "r");
	char line[512];
	bool found = false;

	if (!f) {
		return true; /* cannot tell: let the EAL say */
	}
	while (!found && fgets(line, sizeof(line), f)) {
		found = strstr(line, " hugetlbfs ") != NULL;
	}
	fclose(f);
	return found;
}

static int
check_hugepages(struct bx_errbuf *eb)
{
	long n = hugepages_free();

	if (n == 0) {
		return bx_err(eb, ENOMEM,
		              "dataplane: dpdk: no free hugepages (/sys/kernel/mm/hugepages); "
		              "reserve some with scripts/dpdk-setup.sh, or add --no-huge to the "
		              "EAL arguments (dp.dpdk_eal_args) for a test setup");
	}
	if (!hugetlbfs_mounted()) {
		return bx_err(eb, ENOENT,
		              "dataplane: dpdk: no hugetlbfs is mounted (/proc/mounts); "
		              "scripts/dpdk-setup.sh mounts one, or add --no-huge to "
		              "dp.dpdk_eal_args");
	}
	return 0;
}

/* Split args into argv (in buf) and add the defaults bx wants. */
static int
build_argv(const char *args, char *buf, size_t cap, char **argv, char *lcore, size_t lcap)
{
	int argc = 0;
	char *save = NULL;
	char *tok;

	snprintf(buf, cap, "%s", args ? args : "");
	argv[argc++] = "bxd";
	for (tok = strtok_r(buf, " \t", &save); tok && argc < MAX_ARGS - 8;
	     tok = strtok_r(NULL, " \t", &save)) {
		argv[argc++] = tok;
	}
	if (!has_arg(argv, argc, "-l", "-c") && !has_arg(argv, argc, "--lcores", NULL)) {
		int cpu = sched_getcpu();

		snprintf(lcore, lcap, "%d", cpu < 0 ? 0 : cpu);
		argv[argc++] = "-l";
		argv[argc++] = lcore;
	}
	if (has_arg(argv, argc, "--no-huge", NULL)) {
		if (!has_arg(argv, argc, "--no-shconf", NULL)) {
			argv[argc++] = "--no-shconf";
		}
	} else if (!has_arg(argv, argc, "--in-memory", NULL) &&
	           !has_arg(argv, argc, "--file-prefix", NULL)) {
		argv[argc++] = "--in-memory";
	}
	if (!has_arg(argv, argc, "--no-telemetry", NULL) &&
	    !has_arg(argv, argc, "--telemetry", NULL)) {
		argv[argc++] = "--no-telemetry";
	}
	argv[argc] = NULL;
	return argc;
}

static int
eal_error(int e, struct bx_errbuf *eb)
{
	if (e == EACCES || e == EPERM) {
		return bx_err(eb, e,
		              "dataplane: dpdk: EAL start-up refused (%s): run bxd as root, or "
		              "with CAP_SYS_ADMIN, CAP_NET_ADMIN and CAP_IPC_LOCK",
		              rte_strerror(e));
	}
	if (e == EALREADY) {
		return bx_err(eb, e, "dataplane: dpdk: the EAL was started by someone else");
	}
	return bx_err(eb, e ? e : EINVAL,
	              "dataplane: dpdk: EAL start-up failed (%s); its log lines above say why "
	              "(check dp.dpdk_eal_args)",
	              rte_strerror(e));
}

int
bx_dpdk_eal_init(const char *args, struct bx_errbuf *eb)
{
	char buf[512], lcore[16];
	char *argv[MAX_ARGS];
	cpu_set_t saved;
	int argc, r;
	bool have_aff;

	if (eal_done) {
		if (strcmp(eal_args_used, args ? args : "") != 0) {
			BX_LOG(NOTICE,
			       "dataplane: dpdk: EAL already running with \"%s\"; \"%s\" ignored",
			       eal_args_used, args ? args : "");
		}
		return 0;
	}
	argc = build_argv(args, buf, sizeof(buf), argv, lcore, sizeof(lcore));
	if (!has_arg(argv, argc, "--no-huge", NULL)) {
		r = check_hugepages(eb);
		if (r < 0) {
			return r;
		}
	}
	log_redirect();
	/* the EAL pins its caller to the main lcore; the dataplane decides pinning */
	have_aff = pthread_getaffinity_np(pthread_self(), sizeof(saved), &saved) == 0;
	r = rte_eal_init(argc, argv);
	if (have_aff) {
		pthread_setaffinity_np(pthread_self(), sizeof(saved), &saved);
	}
	if (r < 0) {
		return eal_error(rte_errno, eb);
	}
	eal_done = true;
	snprintf(eal_args_used, sizeof(eal_args_used), "%s", args ? args : "");
	BX_LOG(INFO, "dataplane: dpdk: EAL up (%s), %u lcore(s), socket %d", args ? args : "",
	       rte_lcore_count(), (int)rte_socket_id());
	return 0;
}

int
bx_dpdk_cpu_node(unsigned cpu)
{
	char path[128];
	struct dirent *e;
	DIR *d;
	int node = 0;

	snprintf(path, sizeof(path), "/sys/devices/system/cpu/cpu%u", cpu);
	d = opendir(path);
	if (!d) {
		return 0;
	}
	while ((e = readdir(d))) {
		if (strncmp(e->d_name, "node", 4) == 0 && e->d_name[4] >= '0' &&
		    e->d_name[4] <= '9') {
			node = atoi(e->d_name + 4);
			break;
		}
	}
	closedir(d);
	return node;
}

static int
find_or_probe(struct bx_dpdk_port *p, const char *devargs, struct bx_errbuf *eb)
{
	size_t n = strcspn(devargs, ",");
	int r;

	if (n == 0 || n >= sizeof(p->name)) {
		return bx_err(eb, EINVAL, "dataplane: dpdk: device \"%s\" has no name", devargs);
	}
	memcpy(p->name, devargs, n);
	p->name[n] = 0;
	if (rte_eth_dev_get_port_by_name(p->name, &p->id) == 0) {
		return 0;
	}
	r = rte_dev_probe(devargs);
	if (r < 0) {
		return bx_err(eb, -r,
		              "dataplane: dpdk: cannot attach device \"%s\": %s; a PCI NIC must "
		              "be bound to vfio-pci first (dpdk-devbind.py --status, "
		              "scripts/dpdk-setup.sh), a net_tap needs /dev/net/tun and "
		              "CAP_NET_ADMIN",
		              devargs, rte_strerror(-r));
	}
	p->hotplugged = true;
	if (rte_eth_dev_get_port_by_name(p->name, &p->id) != 0) {
		return bx_err(eb, ENODEV,
		              "dataplane: dpdk: device \"%s\" attached but no ethdev port is "
		              "named \"%s\"",
		              devargs, p->name);
	}
	return 0;
}

static int
configure(struct bx_dpdk_port *p, const struct rte_eth_dev_info *di, struct bx_errbuf *eb)
{
	struct rte_eth_conf conf;
	int r;

	memset(&conf, 0, sizeof(conf));
	p->rss = false;
	if (p->nb_q > 1 && (di->flow_type_rss_offloads & (RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP))) {
		conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
		conf.rx_adv_conf.rss_conf.rss_hf =
			di->flow_type_rss_offloads & (RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP);
		r = rte_eth_dev_configure(p->id, p->nb_q, p->nb_q, &conf);
		if (r == 0) {
			p->rss = true;
			return 0;
		}
		BX_LOG(WARN,
		       "dataplane: dpdk: %s: RSS refused (%s); the device spreads flows itself",
		       p->name, rte_strerror(-r));
		memset(&conf, 0, sizeof(conf));
	}
	r = rte_eth_dev_configure(p->id, p->nb_q, p->nb_q, &conf);
	if (r < 0) {
		return bx_err(eb, -r, "dataplane: dpdk: %s: configure %u queue pair(s): %s",
		              p->name, p->nb_q, rte_strerror(-r));
	}
	return 0;
}

static int
setup_queues(struct bx_dpdk_port *p, unsigned nb_rxd, unsigned nb_txd,
             struct rte_mempool *const *pools, struct bx_errbuf *eb)
{
	uint16_t rxd = (uint16_t)nb_rxd, txd = (uint16_t)nb_txd;
	int r = rte_eth_dev_adjust_nb_rx_tx_desc(p->id, &rxd, &txd);

	if (r < 0) {
		return bx_err(eb, -r, "dataplane: dpdk: %s: descriptors: %s", p->name,
		              rte_strerror(-r));
	}
	for (uint16_t q = 0; q < p->nb_q; q++) {
		int sock = pools[q]->socket_id;

		r = rte_eth_rx_queue_setup(p->id, q, rxd, (unsigned)sock, NULL, pools[q]);
		if (r == 0) {
			r = rte_eth_tx_queue_setup(p->id, q, txd, (unsigned)sock, NULL);
		}
		if (r < 0) {
			return bx_err(eb, -r, "dataplane: dpdk: %s: queue %u: %s", p->name, q,
			              rte_strerror(-r));
		}
	}
	return 0;
}

int
bx_dpdk_port_open(struct bx_dpdk_port *p, const char *devargs, uint16_t nb_q, unsigned nb_rxd,
                  unsigned nb_txd, struct rte_mempool *const *pools, struct bx_errbuf *eb)
{
	struct rte_eth_dev_info di;
	struct rte_ether_addr mac;
	int r;

	memset(p, 0, sizeof(*p));
	r = find_or_probe(p, devargs, eb);
	if (r < 0) {
		goto out_close;
	}
	p->open = true;
	p->nb_q = nb_q;
	r = rte_eth_dev_info_get(p->id, &di);
	if (r < 0) {
		bx_err(eb, -r, "dataplane: dpdk: %s: device info: %s", p->name, rte_strerror(-r));
		goto out_close;
	}
	p->dev = di.device;
	if (di.max_rx_queues < nb_q || di.max_tx_queues < nb_q) {
		r = bx_err(eb, EINVAL,
		           "dataplane: dpdk: %s has %u RX / %u TX queues; %u workers need one "
		           "pair each (lower dp.cores)",
		           p->name, di.max_rx_queues, di.max_tx_queues, nb_q);
		goto out_close;
	}
	r = configure(p, &di, eb);
	if (r == 0) {
		r = setup_queues(p, nb_rxd, nb_txd, pools, eb);
	}
	if (r < 0) {
		goto out_close;
	}
	r = rte_eth_dev_start(p->id);
	if (r < 0) {
		bx_err(eb, -r, "dataplane: dpdk: %s: start: %s", p->name, rte_strerror(-r));
		goto out_close;
	}
	p->started = true;
	rte_eth_macaddr_get(p->id, &mac);
	memcpy(p->mac, mac.addr_bytes, 6);
	p->socket = rte_eth_dev_socket_id(p->id);
	return 0;
out_close:
	bx_dpdk_port_close(p);
	return r;
}

void
bx_dpdk_port_close(struct bx_dpdk_port *p)
{
	if (p->started) {
		rte_eth_dev_stop(p->id);
		p->started = false;
	}
	if (p->open && p->hotplugged) {
		/* only what we attached: a device from the EAL's arguments stays */
		rte_eth_dev_close(p->id);
		if (p->dev) {
			rte_dev_remove(p->dev);
		}
	}
	p->open = false;
	p->hotplugged = false;
	p->dev = NULL;
}
