/*
 * The pre-TCP filter: allow-list, per-source packet and SYN buckets, the
 * open lane's bucket. See dpdk_filter.h.
 */
#include "dpdk_filter.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define WAYS 4

static uint32_t
ip_hash(uint32_t ip)
{
	uint64_t h = (uint64_t)ip * 0x9E3779B97F4A7C15ull;

	return (uint32_t)(h >> 32);
}

static uint32_t
pow2_at_least(unsigned n, unsigned min)
{
	uint32_t p = min;

	while (p < n && p < (1u << 30)) {
		p <<= 1;
	}
	return p;
}

int
bx_filter_init(struct bx_filter *f, const struct bx_filter_conf *c)
{
	uint32_t na, ns;

	memset(f, 0, sizeof(*f));
	if (c->syn_rate < 0 || c->pkt_rate < 0 || c->open_rate < 0 || c->syn_burst < 0 ||
	    c->pkt_burst < 0 || c->open_burst < 0) {
		return -EINVAL;
	}
	f->c = *c;
	na = pow2_at_least(c->allow_cap * 2, 64); /* at most half full */
	ns = pow2_at_least(c->src_slots, 1024);
	f->allow = bx_calloc(na, sizeof(*f->allow));
	f->src = bx_calloc(ns, sizeof(*f->src));
	if (!f->allow || !f->src) {
		bx_filter_fini(f);
		return -ENOMEM;
	}
	f->allow_mask = na - 1;
	f->src_mask = ns - 1;
	f->open_tokens = c->open_burst;
	return 0;
}

void
bx_filter_fini(struct bx_filter *f)
{
	bx_free(f->allow);
	bx_free(f->src);
	f->allow = NULL;
	f->src = NULL;
}

void
bx_filter_allow_clear(struct bx_filter *f)
{
	memset(f->allow, 0, sizeof(*f->allow) * (f->allow_mask + 1));
	f->nb_allow = 0;
}

int
bx_filter_allow_add(struct bx_filter *f, uint32_t ip)
{
	uint32_t i;

	if (ip == 0) {
		return 0; /* 0.0.0.0: a neuron that serves no axon */
	}
	for (i = ip_hash(ip) & f->allow_mask;; i = (i + 1) & f->allow_mask) {
		if (f->allow[i] == ip) {
			return 0;
		}
		if (f->allow[i] == 0) {
			break;
		}
	}
	if ((f->nb_allow + 1) * 4 > (f->allow_mask + 1) * 3) {
		return -ENOSPC;
	}
	f->allow[i] = ip;
	f->nb_allow++;
	return 0;
}

static int
parse_net(const char *s, size_t len, uint32_t *net, uint32_t *mask)
{
	char buf[32];
	char *slash, *end;
	struct in_addr a;
	long bits = 32;

	if (len == 0 || len >= sizeof(buf)) {
		return -EINVAL;
	}
	memcpy(buf, s, len);
	buf[len] = 0;
	slash = strchr(buf, '/');
	if (slash) {
		*slash = 0;
		bits = strtol(slash + 1, &end, 10);
		if (end == slash + 1 || *end || bits < 0 || bits > 32) {
			return -EINVAL;
		}
	}
	if (inet_pton(AF_INET, buf, &a) != 1) {
		return -EINVAL;
	}
	*mask = bits == 0 ? 0 : ~0u << (32 - bits);
	*net = ntohl(a.s_addr) & *mask;
	return 0;
}

int
bx_filter_allow_nets(struct bx_filter *f, const char *list, struct bx_errbuf *eb)
{
	const char *p = list;

	while (p && *p) {
		size_t n;

		p += strspn(p, ", \t");
		n = strcspn(p, ", \t");
		if (n == 0) {
			break;
		}
		if (f->nb_nets == BX_ARRAY_SIZE(f->nets)) {
			return bx_err(eb, ENOSPC,
			              "dataplane: dpdk: more than %zu allow-list networks",
			              BX_ARRAY_SIZE(f->nets));
		}
		if (parse_net(p, n, &f->nets[f->nb_nets].net, &f->nets[f->nb_nets].mask) < 0) {
			return bx_err(eb, EINVAL,
			              "dataplane: dpdk: allow-list entry \"%.*s\" is not an IPv4 "
			              "address or address/bits",
			              (int)n, p);
		}
		f->nb_nets++;
		p += n;
	}
	return 0;
}

bool
bx_filter_allowed(const struct bx_filter *f, uint32_t ip)
{
	for (uint32_t i = ip_hash(ip) & f->allow_mask; f->allow[i]; i = (i + 1) & f->allow_mask) {
		if (f->allow[i] == ip) {
			return true;
		}
	}
	for (unsigned k = 0; k < f->nb_nets; k++) {
		if ((ip & f->nets[k].mask) == f->nets[k].net) {
			return true;
		}
	}
	return false;
}

/* The source's slot: found, or the least recently seen of its set, refilled. */
static struct bx_filter_src *
src_slot(struct bx_filter *f, uint32_t ip, uint32_t now_ms)
{
	struct bx_filter_src *set = &f->src[ip_hash(ip) & f->src_mask & ~(uint32_t)(WAYS - 1)];
	struct bx_filter_src *old = &set[0];

	for (unsigned k = 0; k < WAYS; k++) {
		if (set[k].ip == ip) {
			return &set[k];
		}
		if ((uint32_t)(now_ms - set[k].t_ms) > (uint32_t)(now_ms - old->t_ms) ||
		    set[k].ip == 0) {
			old = &set[k];
		}
	}
	old->ip = ip;
	old->t_ms = now_ms;
	old->pkt = (float)f->c.pkt_burst;
	old->syn = (float)f->c.syn_burst;
	return old;
}

static bool
open_lane(struct bx_filter *f, uint64_t now_ns)
{
	double t;

	if (f->c.open_rate <= 0) {
		return true;
	}
	t = f->open_tokens + f->c.open_rate * (double)(now_ns - f->open_ns) * 1e-9;
	f->open_ns = now_ns;
	if (t > f->c.open_burst) {
		t = f->c.open_burst;
	}
	if (t < 1.0) {
		f->open_tokens = t;
		return false;
	}
	f->open_tokens = t - 1.0;
	return true;
}

enum bx_filter_verdict
bx_filter_check(struct bx_filter *f, uint32_t ip, bool syn, uint64_t now_ns)
{
	struct bx_filter_src *s;
	uint32_t now_ms;
	double dt;

	if (bx_filter_allowed(f, ip)) {
		return BX_FILTER_PASS_ALLOWED;
	}
	if (f->c.allowlist_only) {
		return BX_FILTER_DROP_NOT_ALLOWED;
	}
	if (f->c.pkt_rate > 0 || f->c.syn_rate > 0) {
		now_ms = (uint32_t)(now_ns / 1000000);
		s = src_slot(f, ip, now_ms);
		dt = (double)(uint32_t)(now_ms - s->t_ms) * 1e-3;
		s->t_ms = now_ms;
		/* both buckets refill for dt before either is charged */
		s->pkt = (float)BX_MIN(f->c.pkt_burst, s->pkt + f->c.pkt_rate * dt);
		s->syn = (float)BX_MIN(f->c.syn_burst, s->syn + f->c.syn_rate * dt);
		if (f->c.pkt_rate > 0) {
			if (s->pkt < 1.0f) {
				return BX_FILTER_DROP_PKT_RATE;
			}
			s->pkt -= 1.0f;
		}
		if (f->c.syn_rate > 0 && syn) {
			if (s->syn < 1.0f) {
				return BX_FILTER_DROP_SYN_RATE;
			}
			s->syn -= 1.0f;
		}
	}
	if (!open_lane(f, now_ns)) {
		return BX_FILTER_DROP_OPEN_LANE;
	}
	return BX_FILTER_PASS_OPEN;
}
