/*
 * A private liblwip per lcore and the mbuf <-> pbuf glue (see dpdk_lwip.h
 * for why the shared object is copied).
 */
#include "dpdk_lwip.h"

#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <sodium.h>

#ifndef BX_LWIP_LIB
#define BX_LWIP_LIB "liblwip.so.0"
#endif

#define MAX_SPARE 64

/* Copies closed and ready for reuse: loaded, initialised, no netif, no pcb. */
struct spare {
	struct bx_lwip_fns f;
	struct tcp_pcb **active_pcbs, **tw_pcbs, **listen_pcbs, **bound_pcbs;
	struct bx_lw_heap_stats *heap;
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

/* ======================= The copy's heap and ISNs =======================
 *
 * The shipped liblwip allocates every pcb, segment and pbuf with glibc's
 * malloc (MEM_LIBC_MALLOC, MEMP_MEM_MALLOC), and its initial sequence
 * numbers are a counter plus the tick (tcp_next_iss: predictable). Each copy
 * is private, so its GOT is ours to point elsewhere: malloc/calloc/free go
 * to a heap of size classes owned by that copy (a region reserved at load,
 * touched on first use by the copy's lcore, blocks recycled per class, glibc
 * only past the region or for blocks over 4 KiB, counted), and tcp_next_iss
 * to RFC 6528's keyed hash of the connection's addresses and ports plus a
 * 4 us clock. BX_DEBUG_POOL=1 leaves malloc to glibc so ASan sees lwIP's
 * blocks.
 */

#define HEAP_SLOTS   32
#define HEAP_CLASSES 7 /* 64 B .. 4 KiB */
#define HEAP_REGION  (512ull << 20)
#define HDR          16 /* keeps lwIP's MEM_ALIGNMENT (8) and then some */
#define HDR_LIBC     0xffu

struct heap {
	char *base;
	size_t used;
	void *free_list[HEAP_CLASSES];
	struct bx_lw_heap_stats st;
};

static struct heap heaps[HEAP_SLOTS];
static unsigned nb_heaps; /* slots handed out (copies are never unloaded) */
static uint8_t isn_key[crypto_shorthash_KEYBYTES];

static unsigned
size_class(size_t n)
{
	unsigned c = 0;

	while (c < HEAP_CLASSES && ((size_t)64 << c) < n + HDR) {
		c++;
	}
	return c;
}

static void *
heap_alloc(struct heap *h, size_t n)
{
	unsigned c = size_class(n);
	uint32_t *hdr;

	if (c < HEAP_CLASSES && h->free_list[c]) {
		hdr = h->free_list[c];
		memcpy(&h->free_list[c], hdr + 2, sizeof(void *));
	} else if (c < HEAP_CLASSES && h->used + ((size_t)64 << c) <= HEAP_REGION) {
		hdr = (uint32_t *)(void *)(h->base + h->used);
		h->used += (size_t)64 << c;
	} else {
		hdr = malloc(n + HDR); /* too big, or the region is spent */
		if (!hdr) {
			return NULL;
		}
		c = HDR_LIBC;
		h->st.libc++;
	}
	hdr[0] = c;
	h->st.allocs++;
	h->st.live++;
	return (char *)hdr + HDR;
}

static void
heap_free(struct heap *h, void *p)
{
	uint32_t *hdr;

	if (!p) {
		return;
	}
	hdr = (uint32_t *)(void *)((char *)p - HDR);
	h->st.live--;
	if (hdr[0] == HDR_LIBC) {
		free(hdr);
		return;
	}
	memcpy(hdr + 2, &h->free_list[hdr[0]], sizeof(void *));
	h->free_list[hdr[0]] = hdr;
}

static void *
heap_calloc(struct heap *h, size_t n, size_t size)
{
	void *p;

	if (size && n > SIZE_MAX / size) {
		return NULL;
	}
	p = heap_alloc(h, n * size);
	if (p) {
		memset(p, 0, n * size);
	}
	return p;
}

/* One set of entry points per slot: a GOT entry carries no context. */
#define HEAP_FNS(i)                                         \
	static void *heap_malloc_##i(size_t n)              \
	{                                                   \
		return heap_alloc(&heaps[i], n);            \
	}                                                   \
	static void *heap_calloc_##i(size_t n, size_t size) \
	{                                                   \
		return heap_calloc(&heaps[i], n, size);     \
	}                                                   \
	static void heap_free_##i(void *p)                  \
	{                                                   \
		heap_free(&heaps[i], p);                    \
	}
/* clang-format off */
#define HEAP_SLOT_LIST(X) \
	X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13) X(14) X(15) \
	X(16) X(17) X(18) X(19) X(20) X(21) X(22) X(23) X(24) X(25) X(26) X(27) X(28) X(29) \
	X(30) X(31)
/* clang-format on */
HEAP_SLOT_LIST(HEAP_FNS)
#undef HEAP_FNS

#define HEAP_ROW(i) { heap_malloc_##i, heap_calloc_##i, heap_free_##i },

static const struct {
	void *(*malloc_fn)(size_t);
	void *(*calloc_fn)(size_t, size_t);
	void (*free_fn)(void *);
} heap_fns[HEAP_SLOTS] = { HEAP_SLOT_LIST(HEAP_ROW) };

#undef HEAP_ROW

/* RFC 6528: ISN = M + F(local ip, local port, remote ip, remote port, secret). */
static u32_t
keyed_iss(struct tcp_pcb *pcb)
{
	uint8_t in[12], h[crypto_shorthash_BYTES];
	uint32_t f;

	memcpy(in, &ip_2_ip4(&pcb->local_ip)->addr, 4);
	memcpy(in + 4, &ip_2_ip4(&pcb->remote_ip)->addr, 4);
	memcpy(in + 8, &pcb->local_port, 2);
	memcpy(in + 10, &pcb->remote_port, 2);
	crypto_shorthash(h, in, sizeof(in), isn_key);
	memcpy(&f, h, sizeof(f));
	return (u32_t)(bx_time_ns() / 4000) + f;
}

/* Point the copy's GOT slot for `name` at fn. Returns 0 or -ENOENT. */
static int
got_patch(ElfW(Addr) base, const ElfW(Dyn) * dyn, const char *name, void *fn)
{
	const ElfW(Rela) *rel = NULL;
	const ElfW(Sym) *sym = NULL;
	const char *str = NULL;
	size_t relsz = 0;
	long page = sysconf(_SC_PAGESIZE);

	for (; dyn->d_tag != DT_NULL; dyn++) {
		ElfW(Addr) v = dyn->d_un.d_ptr < base ? base + dyn->d_un.d_ptr : dyn->d_un.d_ptr;

		if (dyn->d_tag == DT_JMPREL) {
			rel = (const ElfW(Rela) *)v;
		} else if (dyn->d_tag == DT_PLTRELSZ) {
			relsz = dyn->d_un.d_val;
		} else if (dyn->d_tag == DT_SYMTAB) {
			sym = (const ElfW(Sym) *)v;
		} else if (dyn->d_tag == DT_STRTAB) {
			str = (const char *)v;
		}
	}
	if (!rel || !sym || !str) {
		return -ENOENT;
	}
	for (size_t i = 0; i < relsz / sizeof(*rel); i++) {
		void **slot = (void **)(base + rel[i].r_offset);
		uintptr_t pg = (uintptr_t)slot & ~(uintptr_t)(page - 1);

		if (ELF64_R_TYPE(rel[i].r_info) != R_X86_64_JUMP_SLOT ||
		    strcmp(str + sym[ELF64_R_SYM(rel[i].r_info)].st_name, name) != 0) {
			continue;
		}
		/* BIND_NOW + RELRO: the GOT is read-only by now */
		if (mprotect((void *)pg, (size_t)page, PROT_READ | PROT_WRITE) < 0) {
			return -errno;
		}
		__atomic_store_n(slot, fn, __ATOMIC_RELEASE);
		mprotect((void *)pg, (size_t)page, PROT_READ);
		return 0;
	}
	return -ENOENT;
}

static int
redirect(struct bx_lw *l, const char *path, struct bx_errbuf *eb)
{
	struct link_map *lm;
	void *fn;
	int r;

	if (dlinfo(l->dl, RTLD_DI_LINKMAP, &lm) < 0) {
		return bx_err(eb, ENOEXEC, "dataplane: dpdk: dlinfo on %s: %s", path, dlerror());
	}
	memcpy(&fn, &(u32_t(*)(struct tcp_pcb *)){ keyed_iss }, sizeof(fn));
	r = got_patch(lm->l_addr, lm->l_ld, "tcp_next_iss", fn);
	if (r < 0 || bx_mem_debug() || nb_heaps == HEAP_SLOTS) {
		l->heap = NULL; /* glibc's heap: ASan's view, or no slot left */
		return r < 0 ? bx_err(eb, ENOEXEC,
		                      "dataplane: dpdk: %s: cannot redirect tcp_next_iss", path) :
		               0;
	}
	heaps[nb_heaps].base = mmap(NULL, HEAP_REGION, PROT_READ | PROT_WRITE,
	                            MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (heaps[nb_heaps].base == MAP_FAILED) {
		heaps[nb_heaps].base = NULL;
		return 0; /* glibc's heap then */
	}
	memcpy(&fn, &heap_fns[nb_heaps].malloc_fn, sizeof(fn));
	r = got_patch(lm->l_addr, lm->l_ld, "malloc", fn);
	memcpy(&fn, &heap_fns[nb_heaps].calloc_fn, sizeof(fn));
	r = r < 0 ? r : got_patch(lm->l_addr, lm->l_ld, "calloc", fn);
	memcpy(&fn, &heap_fns[nb_heaps].free_fn, sizeof(fn));
	r = r < 0 ? r : got_patch(lm->l_addr, lm->l_ld, "free", fn);
	if (r < 0) {
		return bx_err(eb, ENOEXEC, "dataplane: dpdk: %s: cannot redirect its heap", path);
	}
	l->heap = &heaps[nb_heaps++].st;
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
		l->heap = sp->heap;
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
	int r;

	l->memfd = copy_lib(path, eb);
	if (l->memfd < 0) {
		return l->memfd;
	}
	/* the name is unique while the fd stays open (for good), so the loader cannot match it */
	snprintf(name, sizeof(name), "/proc/self/fd/%d", l->memfd);
	l->dl = dlopen(name, RTLD_NOW | RTLD_LOCAL);
	if (!l->dl) {
		r = bx_err(eb, ENOEXEC, "dataplane: dpdk: cannot load a copy of %s: %s", path,
		           dlerror());
		close(l->memfd);
		l->memfd = -1;
		return r;
	}
	r = load_syms(l, path, eb);
	if (r == 0) {
		pthread_mutex_lock(&spare_lock); /* heap slots and the ISN key are process-wide */
		if (nb_heaps == 0) {
			randombytes_buf(isn_key, sizeof(isn_key));
		}
		r = redirect(l, path, eb);
		pthread_mutex_unlock(&spare_lock);
	}
	return r;
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
		sp->heap = l->heap;
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
