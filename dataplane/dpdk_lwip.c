/*
 * A private liblwip per lcore and the mbuf <-> pbuf glue (see dpdk_lwip.h
 * for why the shared object is copied).
 */
#include "dpdk_lwip.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include <rte_mbuf.h>
#include <rte_mempool.h>

#ifndef BX_LWIP_LIB
#define BX_LWIP_LIB "liblwip.so.0"
#endif

#define MAX_SPARE 64

/* Copies closed and ready for reuse: loaded, initialised, no netif, no pcb. */
struct spare {
	struct bx_lwip_fns f;
	struct tcp_pcb **active_pcbs, **tw_pcbs, **listen_pcbs, **bound_pcbs;
	void *dl;
	int memfd;
};

static pthread_mutex_t spare_lock = PTHREAD_MUTEX_INITIALIZER;
static struct spare spares[MAX_SPARE];
static unsigned nb_spares;

/* Lives in the mbuf's private area: the pbuf lwIP sees, and the way back. */
struct mbuf_pbuf {
	struct pbuf_custom pc;
	struct rte_mbuf *m;
};

unsigned
bx_lw_mbuf_priv_size(void)
{
	return RTE_ALIGN(sizeof(struct mbuf_pbuf), RTE_MBUF_PRIV_ALIGN);
}

/* A memfd holding the library's bytes: a file the loader has not seen yet. */
static int
copy_lib(const char *path, struct bx_errbuf *eb)
{
	struct stat st;
	off_t off = 0;
	int src, fd;

	src = open(path, O_RDONLY | O_CLOEXEC);
	if (src < 0) {
		return bx_err(eb, errno, "dataplane: dpdk: cannot open lwIP library %s: %s", path,
		              bx_strerror(errno));
	}
	fd = memfd_create("bx-lwip", MFD_CLOEXEC);
	if (fd < 0 || fstat(src, &st) < 0) {
		int e = errno;

		close(src);
		if (fd >= 0) {
			close(fd);
		}
		return bx_err(eb, e, "dataplane: dpdk: memfd for lwIP: %s", bx_strerror(e));
	}
	while (off < st.st_size) {
		ssize_t n = sendfile(fd, src, &off, (size_t)(st.st_size - off));

		if (n <= 0) {
			int e = n < 0 ? errno : EIO;

			close(src);
			close(fd);
			return bx_err(eb, e, "dataplane: dpdk: copying %s: %s", path,
			              bx_strerror(e));
		}
	}
	close(src);
	return fd;
}

static int
load_syms(struct bx_lw *l, const char *path, struct bx_errbuf *eb)
{
	void *p;

#define BX_LWIP_FN_LOAD(n)                                                                    \
	p = dlsym(l->dl, #n);                                                                 \
	if (!p) {                                                                             \
		return bx_err(eb, ENOEXEC, "dataplane: dpdk: %s has no symbol %s", path, #n); \
	}                                                                                     \
	memcpy(&l->f.n, &p, sizeof(p));
	BX_LWIP_FNS(BX_LWIP_FN_LOAD)
#undef BX_LWIP_FN_LOAD
	l->active_pcbs = dlsym(l->dl, "tcp_active_pcbs");
	l->tw_pcbs = dlsym(l->dl, "tcp_tw_pcbs");
	l->listen_pcbs = dlsym(l->dl, "tcp_listen_pcbs");
	l->bound_pcbs = dlsym(l->dl, "tcp_bound_pcbs");
	if (!l->active_pcbs || !l->tw_pcbs || !l->listen_pcbs || !l->bound_pcbs) {
		return bx_err(eb, ENOEXEC, "dataplane: dpdk: %s has no TCP pcb lists", path);
	}
	return 0;
}

static err_t
lw_linkoutput(struct netif *nif, struct pbuf *p)
{
	struct bx_lw *l = nif->state;
	struct rte_mbuf *m;
	char *dst;

	if (l->tx->n == BX_DPDK_TX_CAP) {
		l->tx->flush(l->tx->arg);
	}
	m = rte_pktmbuf_alloc(l->tx_pool);
	if (!m) {
		l->tx_nomem++;
		return ERR_MEM;
	}
	dst = rte_pktmbuf_append(m, p->tot_len);
	if (!dst || l->f.pbuf_copy_partial(p, dst, p->tot_len, 0) != p->tot_len) {
		rte_pktmbuf_free(m);
		l->tx_nomem++;
		return ERR_MEM;
	}
	if (l->tx->n == 0) {
		l->tx->since_ns = l->now_ns;
	}
	l->tx->m[l->tx->n++] = m;
	l->tx_frames++;
	return ERR_OK;
}

static err_t
lw_netif_init(struct netif *nif)
{
	struct bx_lw *l = nif->state;

	nif->name[0] = 'b';
	nif->name[1] = 'x';
	nif->output = l->f.etharp_output;
	nif->linkoutput = lw_linkoutput;
	nif->hwaddr_len = ETH_HWADDR_LEN;
	memcpy(nif->hwaddr, l->mac, ETH_HWADDR_LEN);
	nif->mtu = l->mtu;
	nif->flags = NETIF_FLAG_BROADCAST | NETIF_FLAG_ETHARP | NETIF_FLAG_ETHERNET;
	return ERR_OK;
}

static int
add_netif(struct bx_lw *l, const struct bx_lw_conf *c, struct bx_errbuf *eb)
{
	ip4_addr_t ip, mask, gw;

	ip.addr = c->ip;
	mask.addr = c->netmask;
	gw.addr = c->gw;
	memcpy(l->mac, c->mac, sizeof(l->mac));
	l->mtu = c->mtu ? c->mtu : 1500;
	if (!l->f.netif_add(&l->netif, &ip, &mask, &gw, l, lw_netif_init, l->f.ethernet_input)) {
		return bx_err(eb, ENOMEM, "dataplane: dpdk: lwIP netif_add failed");
	}
	l->netif_added = true;
	l->f.netif_set_default(&l->netif);
	l->f.netif_set_up(&l->netif);
	l->f.netif_set_link_up(&l->netif);
	return 0;
}

static bool
take_spare(struct bx_lw *l)
{
	bool ok = false;

	pthread_mutex_lock(&spare_lock);
	if (nb_spares > 0) {
		struct spare *sp = &spares[--nb_spares];

		l->f = sp->f;
		l->active_pcbs = sp->active_pcbs;
		l->tw_pcbs = sp->tw_pcbs;
		l->listen_pcbs = sp->listen_pcbs;
		l->bound_pcbs = sp->bound_pcbs;
		l->dl = sp->dl;
		l->memfd = sp->memfd;
		ok = true;
	}
	pthread_mutex_unlock(&spare_lock);
	return ok;
}

static int
load_copy(struct bx_lw *l, const char *path, struct bx_errbuf *eb)
{
	char name[64];

	l->memfd = copy_lib(path, eb);
	if (l->memfd < 0) {
		return l->memfd;
	}
	/* the name is unique while the fd stays open (for good), so the loader cannot match it */
	snprintf(name, sizeof(name), "/proc/self/fd/%d", l->memfd);
	l->dl = dlopen(name, RTLD_NOW | RTLD_LOCAL);
	if (!l->dl) {
		int r = bx_err(eb, ENOEXEC, "dataplane: dpdk: cannot load a copy of %s: %s", path,
		               dlerror());

		close(l->memfd);
		l->memfd = -1;
		return r;
	}
	return load_syms(l, path, eb);
}

int
bx_lw_open(struct bx_lw *l, const struct bx_lw_conf *c, struct bx_errbuf *eb)
{
	int r;

	memset(l, 0, sizeof(*l));
	l->memfd = -1;
	l->tx_pool = c->tx_pool;
	l->tx = c->tx;
	/* spares are copies of the default library */
	if (c->lib_path || !take_spare(l)) {
		r = load_copy(l, c->lib_path ? c->lib_path : BX_LWIP_LIB, eb);
		if (r < 0) {
			/* a copy that loaded but lacks a symbol is not worth keeping */
			return r;
		}
		l->f.lwip_init();
	}
	r = add_netif(l, c, eb);
	if (r < 0) {
		bx_lw_close(l);
	}
	return r;
}

void
bx_lw_close(struct bx_lw *l)
{
	if (!l->dl) {
		return;
	}
	/* bounded: each abort takes one pcb off its list */
	for (unsigned i = 0; i < 1u << 20 && *l->active_pcbs; i++) {
		l->f.tcp_abort(*l->active_pcbs);
	}
	for (unsigned i = 0; i < 1u << 20 && *l->tw_pcbs; i++) {
		l->f.tcp_abort(*l->tw_pcbs);
	}
	/* closing a listening or bound pcb frees it at once */
	for (unsigned i = 0; i < 1024 && *l->listen_pcbs; i++) {
		l->f.tcp_close(*l->listen_pcbs);
	}
	for (unsigned i = 0; i < 1024 && *l->bound_pcbs; i++) {
		l->f.tcp_close(*l->bound_pcbs);
	}
	if (l->netif_added) {
		l->f.netif_remove(&l->netif);
		l->netif_added = false;
	}
	pthread_mutex_lock(&spare_lock);
	if (nb_spares < MAX_SPARE) {
		struct spare *sp = &spares[nb_spares++];

		sp->f = l->f;
		sp->active_pcbs = l->active_pcbs;
		sp->tw_pcbs = l->tw_pcbs;
		sp->listen_pcbs = l->listen_pcbs;
		sp->bound_pcbs = l->bound_pcbs;
		sp->dl = l->dl;
		sp->memfd = l->memfd;
	}
	pthread_mutex_unlock(&spare_lock);
	l->dl = NULL;
	l->memfd = -1;
}

static void
mbuf_pbuf_free(struct pbuf *p)
{
	struct mbuf_pbuf *mp = (struct mbuf_pbuf *)(void *)p;

	rte_pktmbuf_free(mp->m);
}

void
bx_lw_input(struct bx_lw *l, struct rte_mbuf *m)
{
	struct pbuf *p;

	if (m->nb_segs == 1 && rte_pktmbuf_priv_size(m->pool) >= sizeof(struct mbuf_pbuf)) {
		struct mbuf_pbuf *mp = rte_mbuf_to_priv(m);

		mp->m = m;
		mp->pc.custom_free_function = mbuf_pbuf_free;
		p = l->f.pbuf_alloced_custom(PBUF_RAW, m->data_len, PBUF_REF, &mp->pc,
		                             rte_pktmbuf_mtod(m, void *), m->data_len);
	} else {
		/* chained or foreign mbuf: one contiguous copy */
		p = m->pkt_len <= 0xffff ? l->f.pbuf_alloc(PBUF_RAW, (u16_t)m->pkt_len, PBUF_RAM) :
		                           NULL;
		if (!p) {
			l->rx_nomem++;
			rte_pktmbuf_free(m);
			return;
		}
		const void *d = rte_pktmbuf_read(m, 0, m->pkt_len, p->payload);

		if (d != p->payload) { /* contiguous: read returned a pointer into m */
			memcpy(p->payload, d, m->pkt_len);
		}
		rte_pktmbuf_free(m);
		l->rx_copied++;
	}
	if (l->netif.input(p, &l->netif) != ERR_OK) {
		l->f.pbuf_free(p);
	}
}

void
bx_lw_timers(struct bx_lw *l, uint64_t now_ns)
{
	if (now_ns < l->next_timer_ns) {
		return;
	}
	l->next_timer_ns = now_ns + 1000000; /* lwIP's finest timer is 250 ms; check each ms */
	l->f.sys_check_timeouts();
}
