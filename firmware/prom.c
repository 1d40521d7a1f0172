/* Prometheus text exposition format 0.0.4 into a bounded buffer. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>

#include <bx/firmware.h>

static void
put(struct bx_prom *p, const char *fmt, ...)
{
	size_t room = p->used < p->len ? p->len - p->used : 0;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(p->buf + (p->len - room), room, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= room) {
		/* Keep whole lines only: cut the partial one off. */
		if (room > 0) {
			p->buf[p->len - room] = '\0';
		}
		p->truncated = true;
		p->used = p->len;
		return;
	}
	p->used += (size_t)n;
}

void
bx_prom_family(struct bx_prom *p, const char *name, const char *type, const char *help)
{
	put(p, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void
bx_prom_sample(struct bx_prom *p, const char *name, const char *labels, double value)
{
	if (labels != NULL && labels[0] != '\0') {
		put(p, "%s{%s} %.17g\n", name, labels, value);
	} else {
		put(p, "%s %.17g\n", name, value);
	}
}

void
bx_prom_lathist(struct bx_prom *p, const char *name, const char *labels, const struct bx_lathist *h)
{
	const char *sep = labels != NULL && labels[0] != '\0' ? "," : "";
	uint64_t cum = 0;

	if (labels == NULL) {
		labels = "";
	}
	for (unsigned i = 0; i < BX_LATHIST_BUCKETS; i++) {
		uint64_t b = bx_lathist_bound_ns(i);

		cum += h->counts[i];
		if (b == UINT64_MAX) {
			put(p, "%s_bucket{%s%sle=\"+Inf\"} %" PRIu64 "\n", name, labels, sep, cum);
		} else {
			put(p, "%s_bucket{%s%sle=\"%g\"} %" PRIu64 "\n", name, labels, sep,
			    (double)b / 1e9, cum);
		}
	}
	put(p, "%s_sum{%s} %.9f\n%s_count{%s} %" PRIu64 "\n", name, labels, (double)h->sum_ns / 1e9,
	    name, labels, h->count);
}
