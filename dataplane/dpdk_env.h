/*
 * DPDK's process-wide parts for the DPDK port: the EAL (initialised once per
 * process, by whichever dataplane worker gets there first, and kept), ethdev
 * ports (probed or hot-plugged, one RX/TX queue pair per worker, RSS), and
 * the checks that turn a missing hugepage, device or permission into a
 * message that says what to do. Start-up only: callers hold dpdk_env_lock.
 */
#ifndef BX_DP_DPDK_ENV_H
#define BX_DP_DPDK_ENV_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <bx/platform.h>

struct rte_mempool;
struct rte_device;

extern pthread_mutex_t bx_dpdk_env_lock;

struct bx_dpdk_port {
	uint16_t id;
	uint16_t nb_q;
	bool open;
	bool hotplugged; /* probed by us at run time: removed again at close */
	bool started;
	bool rss;
	int socket;
	uint8_t mac[6];
	char name[64];
	struct rte_device *dev;
};

/*
 * Initialise the EAL from a space-separated argument string (idempotent:
 * later calls only log when their arguments differ). Adds --in-memory (or
 * --no-shconf with --no-huge), --no-telemetry and -l <this cpu> unless given.
 * Checks hugepages first. 0 or -errno with the reason in eb.
 */
int bx_dpdk_eal_init(const char *args, struct bx_errbuf *eb);

/*
 * Open the port named by devargs ("0000:01:00.0" or "net_tap0,iface=bx0"):
 * probe it if the EAL has not, configure nb_q queue pairs (RSS over IPv4/TCP
 * when nb_q > 1 and the device has it), queue q receiving into pools[q], and
 * start it. p is caller-allocated. 0 or -errno with the reason in eb.
 */
int bx_dpdk_port_open(struct bx_dpdk_port *p, const char *devargs, uint16_t nb_q, unsigned nb_rxd,
                      unsigned nb_txd, struct rte_mempool *const *pools, struct bx_errbuf *eb);
/* Stop and close; remove the device if it was hot-plugged here. */
void bx_dpdk_port_close(struct bx_dpdk_port *p);

/* NUMA node of a kernel CPU (0 when unknown). */
int bx_dpdk_cpu_node(unsigned cpu);

#endif
