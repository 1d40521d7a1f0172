/* Monotonic time and the cycle counter's calibration. */
#include <errno.h>
#include <time.h>

#include <bx/platform.h>

static uint64_t
clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t
bx_time_ns(void)
{
	return clock_ns(CLOCK_MONOTONIC);
}

uint64_t
bx_wall_ns(void)
{
	return clock_ns(CLOCK_REALTIME);
}

static uint64_t cycles_hz;

int
bx_cycles_calibrate(unsigned window_ms)
{
	uint64_t t0, t1, c0, c1, hz;
	struct timespec req;

	if (window_ms < 10 || window_ms > 1000) {
		return -EINVAL;
	}
	req.tv_sec = window_ms / 1000;
	req.tv_nsec = (long)(window_ms % 1000) * 1000000;
	/* RAW: NTP slewing must not skew the measured rate. */
	t0 = clock_ns(CLOCK_MONOTONIC_RAW);
	c0 = bx_cycles();
	nanosleep(&req, NULL);
	t1 = clock_ns(CLOCK_MONOTONIC_RAW);
	c1 = bx_cycles();
	hz = (uint64_t)((double)(c1 - c0) * 1e9 / (double)(t1 - t0));
	__atomic_store_n(&cycles_hz, hz > 0 ? hz : 1, __ATOMIC_RELAXED);
	return 0;
}

uint64_t
bx_cycles_hz(void)
{
	uint64_t hz = __atomic_load_n(&cycles_hz, __ATOMIC_RELAXED);

	if (hz == 0) {
		bx_cycles_calibrate(20);
		hz = __atomic_load_n(&cycles_hz, __ATOMIC_RELAXED);
	}
	return hz;
}

uint64_t
bx_cycles_to_ns(uint64_t cycles)
{
	return (uint64_t)((double)cycles * 1e9 / (double)bx_cycles_hz());
}
