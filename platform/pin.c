/* Thread pinning with errors that say which CPUs exist. */
#include <errno.h>
#include <sched.h>
#include <stdio.h>

#include <bx/platform.h>

/* "0-3,6" style list of the CPUs this process may use. */
static void
format_cpus(const cpu_set_t *set, char *buf, size_t len)
{
	size_t used = 0;
	int first = -1;

	buf[0] = '\0';
	for (int c = 0; c <= CPU_SETSIZE && used < len; c++) {
		bool in = c < CPU_SETSIZE && CPU_ISSET(c, set);

		if (in && first < 0) {
			first = c;
		} else if (!in && first >= 0) {
			used += snprintf(buf + used, len - used,
			                 first == c - 1 ? "%s%d" : "%s%d-%d", used > 0 ? "," : "",
			                 first, c - 1);
			first = -1;
		}
	}
}

int
bx_thread_pin(pthread_t thread, unsigned cpu, struct bx_errbuf *eb)
{
	cpu_set_t allowed, want;
	char list[256];
	int ret;

	/* The process's own mask: what cgroups, taskset and isolcpus left us. */
	if (sched_getaffinity(0, sizeof(allowed), &allowed) < 0) {
		return bx_err(eb, errno, "sched_getaffinity: %s", bx_strerror(errno));
	}
	if (cpu >= CPU_SETSIZE || !CPU_ISSET(cpu, &allowed)) {
		format_cpus(&allowed, list, sizeof(list));
		return bx_err(eb, ENODEV, "CPU %u does not exist or is not allowed (CPUs: %s)", cpu,
		              list);
	}
	CPU_ZERO(&want);
	CPU_SET(cpu, &want);
	ret = pthread_setaffinity_np(thread, sizeof(want), &want);
	if (ret != 0) {
		return bx_err(eb, ret, "pinning to CPU %u: %s", cpu, bx_strerror(ret));
	}
	return 0;
}

int
bx_thread_pin_self(unsigned cpu, struct bx_errbuf *eb)
{
	return bx_thread_pin(pthread_self(), cpu, eb);
}

int
bx_thread_pinned_cpu(pthread_t thread)
{
	cpu_set_t set;
	int ret = pthread_getaffinity_np(thread, sizeof(set), &set);

	if (ret != 0) {
		return -ret;
	}
	if (CPU_COUNT(&set) != 1) {
		return -EINVAL;
	}
	for (int c = 0; c < CPU_SETSIZE; c++) {
		if (CPU_ISSET(c, &set)) {
			return c;
		}
	}
	return -EINVAL;
}
