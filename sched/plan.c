/*
 * The worker plan: which CPUs run the dataplane and which form inference
 * workers, from the hwloc topology. One physical core per thread: oneDNN
 * gains little from hyperthread siblings and loses to their contention.
 */
#include <errno.h>
#include <stdio.h>

#include <bx/sched.h>

/* The first CPU (hyperthread) of every core, in topology order. */
static unsigned
first_cpus(const struct bx_topo *t, unsigned *cpus, unsigned max)
{
	unsigned n = 0;

	for (unsigned i = 0; i < t->nb_cpus && n < max; i++) {
		if (i == 0 || t->cpus[i].core != t->cpus[i - 1].core) {
			cpus[n++] = i; /* index into t->cpus */
		}
	}
	return n;
}

static int
add_worker(struct bx_sched_plan *plan, const struct bx_topo_cpu *c, struct bx_errbuf *eb)
{
	struct bx_sched_worker_plan *w;

	if (plan->nb_workers == BX_SCHED_WORKERS_MAX) {
		return bx_err(eb, EINVAL, "more than %d workers", BX_SCHED_WORKERS_MAX);
	}
	w = &plan->workers[plan->nb_workers++];
	w->nb_cpus = 0;
	w->node = c->node;
	return 0;
}

/* Give core c to a worker: the current one if it has room in the same L3. */
static int
give_to_worker(struct bx_sched_plan *plan, const struct bx_topo *t, unsigned idx, unsigned prev_l3,
               unsigned threads_max, struct bx_errbuf *eb)
{
	const struct bx_topo_cpu *c = &t->cpus[idx];
	struct bx_sched_worker_plan *w =
		plan->nb_workers > 0 ? &plan->workers[plan->nb_workers - 1] : NULL;
	int ret;

	if (w == NULL || w->nb_cpus == threads_max || c->l3 != prev_l3 || c->node != w->node) {
		ret = add_worker(plan, c, eb);
		if (ret < 0) {
			return ret;
		}
		w = &plan->workers[plan->nb_workers - 1];
	}
	w->cpus[w->nb_cpus++] = c->os_index;
	return 0;
}

int
bx_sched_plan_auto(const struct bx_topo *t, unsigned dp_per_node, unsigned threads_max,
                   struct bx_sched_plan *plan, struct bx_errbuf *eb)
{
	unsigned cores[256], nb, dp_on_node[BX_SCHED_WORKERS_MAX] = { 0 }, prev_l3 = ~0u;
	int ret;

	if (threads_max == 0 || threads_max > BX_SCHED_CPUS_MAX) {
		return bx_err(eb, EINVAL, "threads per worker must be 1..%d", BX_SCHED_CPUS_MAX);
	}
	*plan = (struct bx_sched_plan){ 0 };
	nb = first_cpus(t, cores, BX_ARRAY_SIZE(cores));
	for (unsigned i = 0; i < nb; i++) {
		const struct bx_topo_cpu *c = &t->cpus[cores[i]];
		unsigned node = BX_MIN(c->node, BX_SCHED_WORKERS_MAX - 1);

		if (dp_on_node[node] < dp_per_node && plan->nb_dp < BX_SCHED_CPUS_MAX) {
			plan->dp_cpus[plan->nb_dp++] = c->os_index;
			dp_on_node[node]++;
			continue;
		}
		ret = give_to_worker(plan, t, cores[i], prev_l3, threads_max, eb);
		if (ret < 0) {
			return ret;
		}
		prev_l3 = c->l3;
	}
	if (plan->nb_workers == 0 && nb > 0) {
		/* Too small to split: one worker shares the first dataplane core. */
		add_worker(plan, &t->cpus[cores[0]], eb);
		plan->workers[0].cpus[0] = t->cpus[cores[0]].os_index;
		plan->workers[0].nb_cpus = 1;
	}
	if (plan->nb_dp == 0 && nb > 0) {
		plan->dp_cpus[plan->nb_dp++] = t->cpus[cores[0]].os_index;
	}
	return 0;
}

static size_t
put_cpus(char *buf, size_t len, const unsigned *cpus, unsigned n)
{
	size_t used = 0;

	for (unsigned i = 0; i < n && used < len; i++) {
		used += snprintf(buf + used, len - used, "%s%u", i > 0 ? "," : "", cpus[i]);
	}
	return used;
}

int
bx_sched_plan_describe(const struct bx_sched_plan *plan, char *buf, size_t len)
{
	size_t used = snprintf(buf, len, "dataplane cpus ");

	used += put_cpus(buf + BX_MIN(used, len), len - BX_MIN(used, len), plan->dp_cpus,
	                 plan->nb_dp);
	for (unsigned i = 0; i < plan->nb_workers && used < len; i++) {
		const struct bx_sched_worker_plan *w = &plan->workers[i];

		used += snprintf(buf + used, len - used, "; worker %u node %u cpus ", i, w->node);
		used += put_cpus(buf + BX_MIN(used, len), len - BX_MIN(used, len), w->cpus,
		                 w->nb_cpus);
	}
	return (int)used;
}
