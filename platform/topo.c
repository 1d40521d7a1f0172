/* CPU, L3 and NUMA topology from hwloc, flattened to one entry per CPU. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>

#include <hwloc.h>

#include <bx/platform.h>

/* Logical index of the ancestor of `pu` of the given type, 0 when there is none. */
static unsigned
ancestor_index(hwloc_obj_t pu, hwloc_obj_type_t type)
{
	hwloc_obj_t o = hwloc_get_ancestor_obj_by_type(NULL, type, pu);

	return o != NULL ? o->logical_index : 0;
}

/* NUMA nodes are memory children in hwloc 2: match by cpuset overlap. */
static unsigned
node_of(hwloc_topology_t t, hwloc_obj_t pu)
{
	hwloc_obj_t node = NULL;

	while ((node = hwloc_get_next_obj_by_type(t, HWLOC_OBJ_NUMANODE, node)) != NULL) {
		if (hwloc_bitmap_isset(node->cpuset, pu->os_index)) {
			return node->logical_index;
		}
	}
	return 0;
}

static int
count(hwloc_topology_t t, hwloc_obj_type_t type)
{
	int n = hwloc_get_nbobjs_by_type(t, type);

	return n > 0 ? n : 1;
}

static int
flatten(hwloc_topology_t t, struct bx_topo **out, struct bx_errbuf *eb)
{
	int nb_pus = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_PU);
	hwloc_obj_t l3;
	struct bx_topo *topo;

	if (nb_pus <= 0) {
		return bx_err(eb, ENODEV, "hwloc reports no CPUs");
	}
	topo = bx_calloc(1, sizeof(*topo) + nb_pus * sizeof(topo->cpus[0]));
	if (topo == NULL) {
		return bx_err(eb, ENOMEM, "out of memory");
	}
	topo->nb_cpus = nb_pus;
	topo->nb_cores = count(t, HWLOC_OBJ_CORE);
	topo->nb_l3 = count(t, HWLOC_OBJ_L3CACHE);
	topo->nb_nodes = count(t, HWLOC_OBJ_NUMANODE);
	l3 = hwloc_get_obj_by_type(t, HWLOC_OBJ_L3CACHE, 0);
	topo->l3_bytes = l3 != NULL && l3->attr != NULL ? l3->attr->cache.size : 0;
	for (int i = 0; i < nb_pus; i++) {
		hwloc_obj_t pu = hwloc_get_obj_by_type(t, HWLOC_OBJ_PU, i);

		topo->cpus[i].os_index = pu->os_index;
		topo->cpus[i].core = ancestor_index(pu, HWLOC_OBJ_CORE);
		topo->cpus[i].l3 = ancestor_index(pu, HWLOC_OBJ_L3CACHE);
		topo->cpus[i].node = node_of(t, pu);
	}
	*out = topo;
	return 0;
}

static int
load(const char *synthetic, struct bx_topo **out, struct bx_errbuf *eb)
{
	hwloc_topology_t t;
	int ret;

	if (hwloc_topology_init(&t) < 0) {
		return bx_err(eb, ENOMEM, "hwloc: cannot initialise");
	}
	if (synthetic != NULL && hwloc_topology_set_synthetic(t, synthetic) < 0) {
		hwloc_topology_destroy(t);
		return bx_err(eb, EINVAL, "hwloc: bad synthetic topology '%s'", synthetic);
	}
	if (hwloc_topology_load(t) < 0) {
		ret = errno;
		hwloc_topology_destroy(t);
		return bx_err(eb, ret, "hwloc: cannot read the topology: %s", bx_strerror(ret));
	}
	ret = flatten(t, out, eb);
	hwloc_topology_destroy(t);
	return ret;
}

int
bx_topo_load(struct bx_topo **out, struct bx_errbuf *eb)
{
	return load(NULL, out, eb);
}

int
bx_topo_load_synthetic(const char *desc, struct bx_topo **out, struct bx_errbuf *eb)
{
	return load(desc, out, eb);
}

void
bx_topo_free(struct bx_topo *topo)
{
	bx_free(topo);
}

const struct bx_topo_cpu *
bx_topo_find_cpu(const struct bx_topo *topo, unsigned os_index)
{
	for (unsigned i = 0; i < topo->nb_cpus; i++) {
		if (topo->cpus[i].os_index == os_index) {
			return &topo->cpus[i];
		}
	}
	return NULL;
}

int
bx_topo_describe(const struct bx_topo *topo, char *buf, size_t len)
{
	return snprintf(buf, len,
	                "%u NUMA node%s, %u L3 (%" PRIu64 " KiB each), %u core%s, %u cpu%s",
	                topo->nb_nodes, topo->nb_nodes == 1 ? "" : "s", topo->nb_l3,
	                topo->l3_bytes >> 10, topo->nb_cores, topo->nb_cores == 1 ? "" : "s",
	                topo->nb_cpus, topo->nb_cpus == 1 ? "" : "s");
}
