/*
 * bx platform: the ground every other bx library stands on.
 *
 * Sections: compiler helpers, errors and error messages, logging,
 * allocation (with failure injection), time, configuration table, CPU/NUMA
 * topology and pinning, object pools and arenas, rings.
 *
 * Conventions (see README "Conventions"):
 *  - action functions return 0 or -errno; bursts return counts; constructors
 *    are int bx_x_create(..., struct bx_x **out) and set *out only on success;
 *    destroy functions return void and accept NULL.
 *  - pointer parameters are borrowed unless the comment says consumed or
 *    returned-owned.
 *  - nothing here prints, exits or aborts on input; messages for people go
 *    into a caller's struct bx_errbuf or through the log sink.
 */
#ifndef BX_PLATFORM_H
#define BX_PLATFORM_H

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ======================= Compiler helpers ======================= */

#define BX_CACHE_LINE      64
#define __bx_cache_aligned __attribute__((aligned(BX_CACHE_LINE)))
#define __bx_must_check    __attribute__((warn_unused_result))
#define __bx_cold          __attribute__((cold, noinline))
#define __bx_unused        __attribute__((unused))
#define __bx_printf(a, b)  __attribute__((format(printf, a, b)))
#define bx_likely(x)       __builtin_expect(!!(x), 1)
#define bx_unlikely(x)     __builtin_expect(!!(x), 0)
#define BX_ARRAY_SIZE(a)   (sizeof(a) / sizeof((a)[0]))
#define BX_MIN(a, b)       ((a) < (b) ? (a) : (b))
#define BX_MAX(a, b)       ((a) > (b) ? (a) : (b))

/*
 * Programmer errors only; never for input validation. Active unless NDEBUG
 * (release builds). Calls bx_assert_fail(), which logs and aborts: the one
 * place a library may end the process, because the process is already wrong.
 */
#ifdef NDEBUG
#define BX_ASSERT(x) ((void)0)
#else
#define BX_ASSERT(x) ((x) ? (void)0 : bx_assert_fail(#x, __FILE__, __LINE__))
#endif
void bx_assert_fail(const char *expr, const char *file, int line) __attribute__((noreturn));

/* ======================= Errors and error messages ======================= */

/*
 * A message for a person, filled by functions that reject files or input
 * (config, keys, models), naming the file, the place and what is wrong.
 * Caller-allocated; functions that take one write it only on failure.
 */
struct bx_errbuf {
	char msg[512];
};

/* Format into eb (NULL allowed: nothing is written). Returns -err, so that
 * `return bx_err(eb, EINVAL, "...")` reads as one step. */
int bx_err(struct bx_errbuf *eb, int err, const char *fmt, ...) __bx_printf(3, 4);

/* Text for a -errno or errno value, thread-safe. */
const char *bx_strerror(int err);

/* ======================= Logging ======================= */

/* One log type per library; levels changeable at run time. */
enum bx_log_type {
	BX_LOGT_PLATFORM,
	BX_LOGT_CRYPTO,
	BX_LOGT_INFER,
	BX_LOGT_SCHED,
	BX_LOGT_DP,
	BX_LOGT_HTTP,
	BX_LOGT_FW,
	BX_LOGT_TOOL,
	BX_LOGT_MAX
};

enum bx_log_level {
	BX_LOG_ERR = 1,
	BX_LOG_WARN,
	BX_LOG_NOTICE,
	BX_LOG_INFO,
	BX_LOG_DEBUG,
};

/* Where finished lines go; the default writes to stderr. A sink gets one
 * complete line without the trailing newline. Set before threads start. */
typedef void(bx_log_sink_fn)(enum bx_log_type type, enum bx_log_level level, const char *line,
                             void *arg);
void bx_log_set_sink(bx_log_sink_fn *fn, void *arg);

extern int bx_log_levels[BX_LOGT_MAX];

static inline bool
bx_log_enabled(enum bx_log_type type, enum bx_log_level level)
{
	return __atomic_load_n(&bx_log_levels[type], __ATOMIC_RELAXED) >= (int)level;
}

void bx_log_emit(enum bx_log_type type, enum bx_log_level level, const char *fmt, ...)
	__bx_printf(3, 4);

/*
 * Set levels from a spec such as "info" or "info,crypto:debug,dp:warn".
 * Returns 0, or -EINVAL with the bad word in eb (nothing changed).
 */
int bx_log_set_levels(const char *spec, struct bx_errbuf *eb);
const char *bx_log_type_name(enum bx_log_type type);
const char *bx_log_level_name(enum bx_log_level level);

/*
 * BX_LOG(INFO, "fmt", ...): each library compiles with -DBX_LOG_TYPE=BX_LOGT_<LIB>.
 * The level is checked before the arguments are evaluated.
 */
#define BX_LOG(lvl, ...)                                                     \
	do {                                                                 \
		if (bx_log_enabled(BX_LOG_TYPE, BX_LOG_##lvl)) {             \
			bx_log_emit(BX_LOG_TYPE, BX_LOG_##lvl, __VA_ARGS__); \
		}                                                            \
	} while (0)

/* For hot loops: compiled out unless BX_LOG_DP_LEVEL (default ERR) allows it. */
#ifndef BX_LOG_DP_LEVEL
#define BX_LOG_DP_LEVEL BX_LOG_ERR
#endif
#define BX_LOG_DP(lvl, ...)                            \
	do {                                           \
		if (BX_LOG_##lvl <= BX_LOG_DP_LEVEL) { \
			BX_LOG(lvl, __VA_ARGS__);      \
		}                                      \
	} while (0)

/* ======================= Allocation and failure injection ======================= */

/*
 * Start-up allocations go through these so tests can make the N-th one fail.
 * bx_aligned_alloc() memory is released with bx_free() too.
 */
void *bx_malloc(size_t size);
void *bx_calloc(size_t n, size_t size);
void *bx_aligned_alloc(size_t align, size_t size);
void bx_free(void *p);

/*
 * Test hook, per thread: after bx_alloc_fail_after(n), the next n
 * allocations succeed and the (n+1)-th and all later ones fail, until
 * bx_alloc_fail_off(). bx_alloc_count() counts allocations since the last
 * call to either, so a test can loop n = 0, 1, ... until a create succeeds
 * without reaching the failure.
 */
void bx_alloc_fail_after(unsigned n);
void bx_alloc_fail_off(void);
unsigned bx_alloc_count(void);
bool bx_alloc_failed(void);

/*
 * Debug switch: when on, pools and arenas hand out individual malloc()
 * blocks so AddressSanitizer sees every object. Set once at start-up,
 * before any pool or arena exists (tools and bxd read BX_DEBUG_POOL=1).
 */
void bx_mem_debug_set(bool on);
bool bx_mem_debug(void);

/* ======================= Time ======================= */

/* Monotonic nanoseconds (CLOCK_MONOTONIC). */
uint64_t bx_time_ns(void);
/* Wall clock nanoseconds since the Unix epoch (CLOCK_REALTIME). */
uint64_t bx_wall_ns(void);

/* A cheap cycle counter: the TSC on x86-64, the monotonic clock elsewhere. */
static inline uint64_t
bx_cycles(void)
{
#if defined(__x86_64__)
	return __builtin_ia32_rdtsc();
#else
	return bx_time_ns();
#endif
}

/*
 * Measure the counter's rate against CLOCK_MONOTONIC_RAW over about
 * `window_ms` (10..1000). Thread-safe; the last result is kept for
 * bx_cycles_hz()/bx_cycles_to_ns(). Returns 0 or -EINVAL.
 */
int bx_cycles_calibrate(unsigned window_ms);
/* Counter rate in Hz; calibrates with a 20 ms window on first use. */
uint64_t bx_cycles_hz(void);
uint64_t bx_cycles_to_ns(uint64_t cycles);

/* ======================= Configuration table ======================= */

enum bx_conf_type {
	BX_CONF_BOOL,   /* bool: true/false, yes/no, on/off, 1/0 */
	BX_CONF_INT,    /* int64_t, decimal or 0x hex, optional k/m/g (x1024) suffix */
	BX_CONF_DOUBLE, /* double, finite */
	BX_CONF_STR,    /* char[size], NUL-terminated, quoted or bare */
	BX_CONF_ENUM,   /* int: index into choices */
};

enum bx_conf_flags {
	BX_CONF_IMMUTABLE = 0, /* set from file or command line only */
	BX_CONF_RUNTIME = 1,   /* may also change while running (bx_conf_set_runtime) */
};

/* One row of a configuration table (nginx ngx_command_t, Redis standardConfig). */
struct bx_conf_opt {
	const char *name; /* "section.key" or "key" */
	enum bx_conf_type type;
	size_t offset;              /* offsetof() into the caller's struct */
	size_t size;                /* BX_CONF_STR: bytes of the char array, NUL included */
	const char *def;            /* default, as text in the file syntax */
	double min, max;            /* BX_CONF_INT/DOUBLE bounds, inclusive; min > max: none */
	const char *const *choices; /* BX_CONF_ENUM: NULL-terminated names */
	unsigned flags;             /* enum bx_conf_flags */
	const char *help;           /* one line */
};

struct bx_conf_schema {
	const struct bx_conf_opt *opts;
	size_t nb_opts;
	size_t conf_size; /* sizeof the caller's struct */
	/* Optional check across fields after everything is parsed: 0 or -errno with eb set. */
	int (*check)(const void *conf, struct bx_errbuf *eb);
};

/* Fill conf with every default. 0, or -EINVAL if a default is bad (a bug, named in eb). */
int bx_conf_defaults(const struct bx_conf_schema *s, void *conf, struct bx_errbuf *eb);

/*
 * Parse a key=value / TOML-like text: `key = value` lines, `# comments`,
 * `[section]` headers that prefix later keys with "section.", double-quoted
 * strings with \" \\ \n \t escapes. Unknown keys, repeated keys, values that
 * do not parse or are out of range, NUL bytes and control characters are
 * errors naming `name`, the line and the key. On error conf is unchanged.
 */
int bx_conf_parse(const struct bx_conf_schema *s, void *conf, const char *name, const char *text,
                  size_t len, struct bx_errbuf *eb);

/* bx_conf_parse() of a file's contents (at most 1 MiB). */
int bx_conf_load_file(const struct bx_conf_schema *s, void *conf, const char *path,
                      struct bx_errbuf *eb);

/*
 * Apply overrides "key=value" (command line, after the file), then run the
 * schema's check. All or nothing: on error conf is unchanged.
 */
int bx_conf_apply_overrides(const struct bx_conf_schema *s, void *conf, const char *const *kv,
                            size_t n, struct bx_errbuf *eb);

/* Change one key while running: -EPERM for keys without BX_CONF_RUNTIME. */
int bx_conf_set_runtime(const struct bx_conf_schema *s, void *conf, const char *key,
                        const char *value, struct bx_errbuf *eb);

const struct bx_conf_opt *bx_conf_find(const struct bx_conf_schema *s, const char *key);

/* Render one value as text in the file syntax. Returns bytes written (snprintf rules). */
int bx_conf_format(const struct bx_conf_opt *opt, const void *conf, char *buf, size_t len);

/* ======================= Topology and pinning ======================= */

struct bx_topo_cpu {
	unsigned os_index; /* the kernel's CPU number */
	unsigned core;     /* logical index of the physical core */
	unsigned node;     /* NUMA node, 0 when the machine reports none */
	unsigned l3;       /* logical index of the L3 domain */
};

struct bx_topo {
	unsigned nb_nodes;
	unsigned nb_l3;
	unsigned nb_cores;
	unsigned nb_cpus;  /* processing units (hyperthreads), length of cpus[] */
	uint64_t l3_bytes; /* size of one L3, 0 if unknown */
	struct bx_topo_cpu cpus[];
};

/* The machine's topology (allowed CPUs only). Returned-owned: bx_topo_free(). */
int bx_topo_load(struct bx_topo **out, struct bx_errbuf *eb);
/*
 * A made-up topology from hwloc's synthetic description, for tests and
 * planning, e.g. "pack:2 numa:1 l3:1 core:4 pu:2".
 */
int bx_topo_load_synthetic(const char *desc, struct bx_topo **out, struct bx_errbuf *eb);
void bx_topo_free(struct bx_topo *topo);
/* The entry for a kernel CPU number, or NULL. */
const struct bx_topo_cpu *bx_topo_find_cpu(const struct bx_topo *topo, unsigned os_index);
/* One line such as "1 node, 1 L3 (32 MiB), 2 cores, 2 cpus". Returns snprintf's count. */
int bx_topo_describe(const struct bx_topo *topo, char *buf, size_t len);

/*
 * Pin a thread to one kernel CPU. -ENODEV with a message naming the CPU and
 * the ones that exist when it is not online or not allowed for this process.
 */
int bx_thread_pin(pthread_t thread, unsigned cpu, struct bx_errbuf *eb);
int bx_thread_pin_self(unsigned cpu, struct bx_errbuf *eb);
/*
 * Pin a thread to a set of CPUs (a worker whose OpenMP team inherits the
 * set). n >= 1; the same errors as bx_thread_pin for any CPU in the list.
 */
int bx_thread_pin_cpus(pthread_t thread, const unsigned *cpus, unsigned n, struct bx_errbuf *eb);
/* The CPU a thread is pinned to, or -EINVAL if it may run on more than one. */
int bx_thread_pinned_cpu(pthread_t thread);

/* ======================= Object pools and arenas ======================= */

/*
 * A fixed-size object pool sized at start-up: get/put never allocate.
 * Not thread-safe: one owner thread (per-lcore pools), or hand objects
 * back through a ring. Objects are cache-line aligned.
 */
struct bx_pool;

int bx_pool_create(size_t obj_size, unsigned nb_objs, struct bx_pool **out);
void bx_pool_destroy(struct bx_pool *pool);
/* An object, or NULL when the pool is empty. Contents are undefined. */
void *bx_pool_get(struct bx_pool *pool);
/* Give back an object from this pool (consumed). */
void bx_pool_put(struct bx_pool *pool, void *obj);
unsigned bx_pool_avail(const struct bx_pool *pool);
unsigned bx_pool_capacity(const struct bx_pool *pool);

/*
 * A per-request bump arena of fixed capacity, freed whole by reset.
 * Not thread-safe. In debug mode (bx_mem_debug) each allocation is its own
 * malloc() so ASan reports overflows and use after reset.
 */
struct bx_arena;

int bx_arena_create(size_t capacity, struct bx_arena **out);
void bx_arena_destroy(struct bx_arena *arena);
/* size bytes aligned to align (a power of two <= 4096), or NULL when full. */
void *bx_arena_alloc(struct bx_arena *arena, size_t size, size_t align);
/* Forget every allocation; their memory may be handed out again. */
void bx_arena_reset(struct bx_arena *arena);
size_t bx_arena_used(const struct bx_arena *arena);

/* ======================= Rings ======================= */

/*
 * Bounded lock-free rings of pointers for handing work between pinned
 * threads. Enqueue transfers ownership of each object to the consumer.
 * Capacity is rounded up to a power of two (>= 2, <= 2^30).
 *
 * bx_spsc: exactly one producer thread and one consumer thread.
 * bx_mpmc: any number of producers and consumers (per-slot sequence numbers).
 *
 * Bursts return how many objects moved (0..n); none block.
 */
struct bx_spsc;

int bx_spsc_create(unsigned capacity, struct bx_spsc **out);
void bx_spsc_destroy(struct bx_spsc *r);
unsigned bx_spsc_enqueue_burst(struct bx_spsc *r, void *const *objs, unsigned n);
unsigned bx_spsc_dequeue_burst(struct bx_spsc *r, void **objs, unsigned n);
/* Objects queued now: exact for the owner threads, a snapshot for others. */
unsigned bx_spsc_count(const struct bx_spsc *r);
unsigned bx_spsc_capacity(const struct bx_spsc *r);

struct bx_mpmc;

int bx_mpmc_create(unsigned capacity, struct bx_mpmc **out);
void bx_mpmc_destroy(struct bx_mpmc *r);
unsigned bx_mpmc_enqueue_burst(struct bx_mpmc *r, void *const *objs, unsigned n);
unsigned bx_mpmc_dequeue_burst(struct bx_mpmc *r, void **objs, unsigned n);
unsigned bx_mpmc_count(const struct bx_mpmc *r);
unsigned bx_mpmc_capacity(const struct bx_mpmc *r);

/* ======================= Latency histograms ======================= */

/*
 * Fixed buckets on a 1-2-5 series from 1 us to 10 s plus +Inf, the shape
 * Prometheus histograms want. One writer per histogram (a per-thread
 * instance); readers merge snapshots with bx_lathist_merge from any thread.
 */
#define BX_LATHIST_BUCKETS 23 /* 22 bounds + Inf */

struct bx_lathist {
	uint64_t counts[BX_LATHIST_BUCKETS]; /* counts[i]: bound(i-1) < v <= bound(i) */
	uint64_t sum_ns;
	uint64_t count;
};

/* Record one value (ns). Only the owning thread calls this. */
void bx_lathist_record(struct bx_lathist *h, uint64_t ns);
/* dst += src, reading src with atomic loads. */
void bx_lathist_merge(struct bx_lathist *dst, const struct bx_lathist *src);
/* Upper bound of bucket i in ns; UINT64_MAX for the last (+Inf). */
uint64_t bx_lathist_bound_ns(unsigned i);

#endif /* BX_PLATFORM_H */
