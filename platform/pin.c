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

/*
 * The CPUs this process may use, as taskset, cgroups and isolcpus left
 * them at start-up: taken before main() runs, because sched_getaffinity()
 * later returns the calling thread's mask, which pinning narrows.
 */
static cpu_set_t process_cpus;
static int process_cpus_err;

__attribute__((constructor)) static void
save_process_cpus(void)
{
	if (sched_getaffinity(0, sizeof(process_cpus), &process_cpus) < 0) {
		process_cpus_err = errno;
	}
}

int
bx_thread_pin_cpus(pthread_t thread, const unsigned *cpus, unsigned n, struct bx_errbuf *eb)
{
	const cpu_set_t *allowed = &process_cpus;
	cpu_set_t want;
	char list[256];
	int ret;

	if (n == 0) {
		return bx_err(eb, EINVAL, "no CPUs to pin to");
	}
	if (process_cpus_err != 0) {
		return bx_err(eb, process_cpus_err, "sched_getaffinity: %s",
		              bx_strerror(process_cpus_err));
	}
	CPU_ZERO(&want);
	for (unsigned i = 0; i < n; i++) {
		if (cpus[i] >= CPU_SETSIZE || !CPU_ISSET(cpus[i], allowed)) {
			format_cpus(allowed, list, sizeof(list));
			return bx_err(eb, ENODEV,
			              "CPU %u does not exist or is not allowed (CPUs: %s)", cpus[i],
			              list);
		}
		CPU_SET(cpus[i], &want);
	}
	ret = pthread_setaffinity_np(thread, sizeof(want), &want);
	if (ret != 0) {
		return bx_err(eb, ret, "pinning to CPU %u: %s", cpus[0], bx_strerror(ret));
	}
	return 0;
}

int
bx_thread_pin(pthread_t thread, unsigned cpu, struct bx_errbuf *eb)
{
	return bx_thread_pin_cpus(thread, &cpu, 1, eb);
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
