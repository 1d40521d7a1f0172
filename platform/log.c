/*
 * Logging: one type per library, run-time levels, pluggable sink.
 * A line is formatted on the stack and handed to the sink whole, so lines
 * from different threads never interleave.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <bx/platform.h>

int bx_log_levels[BX_LOGT_MAX] = {
	BX_LOG_INFO, BX_LOG_INFO, BX_LOG_INFO, BX_LOG_INFO,
	BX_LOG_INFO, BX_LOG_INFO, BX_LOG_INFO, BX_LOG_INFO,
};

static const char *const type_names[BX_LOGT_MAX] = {
	"platform", "crypto", "infer", "sched", "dp", "http", "fw", "tool",
};

static const char *const level_names[] = {
	"", "err", "warn", "notice", "info", "debug",
};

static void
stderr_sink(enum bx_log_type type, enum bx_log_level level, const char *line, void *arg)
{
	char buf[1200];
	int n;

	n = snprintf(buf, sizeof(buf), "bx %s %s: %s\n", type_names[type], level_names[level],
	             line);
	if (n > (int)sizeof(buf) - 1) {
		n = sizeof(buf) - 1;
		buf[n - 1] = '\n';
	}
	/* One write(2) per line keeps lines whole; a failed log write has nowhere to go. */
	if (write(STDERR_FILENO, buf, n) < 0) {
		return;
	}
}

static bx_log_sink_fn *sink = stderr_sink;
static void *sink_arg;

void
bx_log_set_sink(bx_log_sink_fn *fn, void *arg)
{
	sink = fn != NULL ? fn : stderr_sink;
	sink_arg = arg;
}

void
bx_log_emit(enum bx_log_type type, enum bx_log_level level, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	sink(type, level, line, sink_arg);
}

const char *
bx_log_type_name(enum bx_log_type type)
{
	return (unsigned)type < BX_LOGT_MAX ? type_names[type] : "?";
}

const char *
bx_log_level_name(enum bx_log_level level)
{
	return level >= BX_LOG_ERR && level <= BX_LOG_DEBUG ? level_names[level] : "?";
}

static int
find_name(const char *const *names, int lo, int hi, const char *s, size_t len)
{
	for (int i = lo; i <= hi; i++) {
		if (strlen(names[i]) == len && strncmp(names[i], s, len) == 0) {
			return i;
		}
	}
	return -1;
}

/* One word of a level spec: "debug" (every type) or "crypto:debug". */
static int
parse_word(const char *w, size_t len, int *levels, struct bx_errbuf *eb)
{
	const char *colon = memchr(w, ':', len);
	int type = -1, level;

	if (colon != NULL) {
		type = find_name(type_names, 0, BX_LOGT_MAX - 1, w, colon - w);
		if (type < 0) {
			return bx_err(eb, EINVAL, "unknown log type '%.*s'", (int)(colon - w), w);
		}
		len -= colon + 1 - w;
		w = colon + 1;
	}
	level = find_name(level_names, BX_LOG_ERR, BX_LOG_DEBUG, w, len);
	if (level < 0) {
		return bx_err(eb, EINVAL,
		              "unknown log level '%.*s' (err, warn, notice, info, debug)", (int)len,
		              w);
	}
	for (int t = 0; t < BX_LOGT_MAX; t++) {
		if (type < 0 || t == type) {
			levels[t] = level;
		}
	}
	return 0;
}

int
bx_log_set_levels(const char *spec, struct bx_errbuf *eb)
{
	int levels[BX_LOGT_MAX];
	const char *p = spec;
	int ret;

	memcpy(levels, bx_log_levels, sizeof(levels));
	while (*p != '\0') {
		size_t len = strcspn(p, ",");

		ret = parse_word(p, len, levels, eb);
		if (ret < 0) {
			return ret;
		}
		p += len + (p[len] == ',');
	}
	for (int t = 0; t < BX_LOGT_MAX; t++) {
		__atomic_store_n(&bx_log_levels[t], levels[t], __ATOMIC_RELAXED);
	}
	return 0;
}

void
bx_assert_fail(const char *expr, const char *file, int line)
{
	bx_log_emit(BX_LOGT_PLATFORM, BX_LOG_ERR, "assertion failed: %s (%s:%d)", expr, file, line);
	__builtin_trap();
}
