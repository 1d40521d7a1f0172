/*
 * The configuration table: typed rows with offsets into the caller's
 * struct (nginx ngx_command_t). Every change is made on a copy and kept
 * only when the whole input parsed and validated, so bad input changes
 * nothing.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bx/platform.h>

#define CONF_FILE_MAX (1u << 20)
#define CONF_LINE_MAX 4096

const struct bx_conf_opt *
bx_conf_find(const struct bx_conf_schema *s, const char *key)
{
	for (size_t i = 0; i < s->nb_opts; i++) {
		if (strcmp(s->opts[i].name, key) == 0) {
			return &s->opts[i];
		}
	}
	return NULL;
}

static bool
has_bounds(const struct bx_conf_opt *opt)
{
	return opt->min <= opt->max;
}

/* Decimal or 0x hex with an optional k/m/g (x1024) suffix; no octal surprises. */
static int
parse_int(const char *v, int64_t *out)
{
	const char *p = v;
	int base = 10, shift = 0;
	bool neg = false;
	uint64_t acc = 0, lim;

	if (*p == '-') {
		neg = true;
		p++;
	}
	if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
		base = 16;
		p += 2;
	}
	if (!isxdigit((unsigned char)*p)) {
		return -EINVAL;
	}
	lim = neg ? (uint64_t)INT64_MAX + 1 : INT64_MAX;
	for (; isxdigit((unsigned char)*p); p++) {
		unsigned d = isdigit((unsigned char)*p) ? *p - '0' : (tolower(*p) - 'a' + 10);

		if (d >= (unsigned)base || acc > (lim - d) / base) {
			return d >= (unsigned)base ? -EINVAL : -ERANGE;
		}
		acc = acc * base + d;
	}
	switch (tolower((unsigned char)*p)) {
	case 'k':
		shift = 10;
		break;
	case 'm':
		shift = 20;
		break;
	case 'g':
		shift = 30;
		break;
	case '\0':
		break;
	default:
		return -EINVAL;
	}
	if (shift != 0 && *++p != '\0') {
		return -EINVAL;
	}
	if (acc > lim >> shift) {
		return -ERANGE;
	}
	acc <<= shift;
	*out = neg ? (int64_t)(0 - acc) : (int64_t)acc;
	return 0;
}

static int
parse_bool(const char *v, bool *out)
{
	static const char *const yes[] = { "true", "yes", "on", "1" };
	static const char *const no[] = { "false", "no", "off", "0" };

	for (size_t i = 0; i < BX_ARRAY_SIZE(yes); i++) {
		if (strcasecmp(v, yes[i]) == 0 || strcasecmp(v, no[i]) == 0) {
			*out = strcasecmp(v, yes[i]) == 0;
			return 0;
		}
	}
	return -EINVAL;
}

static int
set_number(const struct bx_conf_opt *opt, char *field, const char *v, struct bx_errbuf *eb)
{
	double d;
	int64_t i = 0;
	char *end;

	if (opt->type == BX_CONF_INT) {
		int ret = parse_int(v, &i);

		if (ret < 0) {
			return bx_err(eb, -ret,
			              ret == -ERANGE ? "'%s' does not fit in 64 bits" :
			                               "'%s' is not an integer",
			              v);
		}
		d = (double)i;
	} else {
		errno = 0;
		d = strtod(v, &end);
		if (end == v || *end != '\0' || errno != 0 || !isfinite(d)) {
			return bx_err(eb, EINVAL, "'%s' is not a finite number", v);
		}
	}
	if (has_bounds(opt) && (d < opt->min || d > opt->max)) {
		return bx_err(eb, ERANGE, "%s is out of range [%.17g, %.17g]", v, opt->min,
		              opt->max);
	}
	if (opt->type == BX_CONF_INT) {
		memcpy(field, &i, sizeof(i));
	} else {
		memcpy(field, &d, sizeof(d));
	}
	return 0;
}

static int
set_enum(const struct bx_conf_opt *opt, char *field, const char *v, struct bx_errbuf *eb)
{
	char names[256] = "";
	size_t used = 0;

	for (int i = 0; opt->choices[i] != NULL; i++) {
		if (strcmp(opt->choices[i], v) == 0) {
			memcpy(field, &i, sizeof(i));
			return 0;
		}
		used += snprintf(names + used, used < sizeof(names) ? sizeof(names) - used : 0,
		                 "%s%s", i > 0 ? ", " : "", opt->choices[i]);
	}
	return bx_err(eb, EINVAL, "'%s' is not one of: %s", v, names);
}

/* Store the text value v into the option's field; eb says what is wrong. */
static int
set_value(const struct bx_conf_opt *opt, void *conf, const char *v, struct bx_errbuf *eb)
{
	char *field = (char *)conf + opt->offset;
	size_t len = strlen(v);
	bool b;

	switch (opt->type) {
	case BX_CONF_BOOL:
		if (parse_bool(v, &b) < 0) {
			return bx_err(eb, EINVAL, "'%s' is not a boolean (true/false)", v);
		}
		memcpy(field, &b, sizeof(b));
		return 0;
	case BX_CONF_INT:
	case BX_CONF_DOUBLE:
		return set_number(opt, field, v, eb);
	case BX_CONF_STR:
		if (len >= opt->size) {
			return bx_err(eb, ENAMETOOLONG, "value is %zu bytes, longer than %zu", len,
			              opt->size - 1);
		}
		memcpy(field, v, len + 1);
		return 0;
	case BX_CONF_ENUM:
		return set_enum(opt, field, v, eb);
	}
	return bx_err(eb, EINVAL, "option has an unknown type");
}

int
bx_conf_defaults(const struct bx_conf_schema *s, void *conf, struct bx_errbuf *eb)
{
	struct bx_errbuf why;

	memset(conf, 0, s->conf_size);
	for (size_t i = 0; i < s->nb_opts; i++) {
		const struct bx_conf_opt *opt = &s->opts[i];

		if (set_value(opt, conf, opt->def != NULL ? opt->def : "", &why) < 0) {
			return bx_err(eb, EINVAL, "default of %s: %s", opt->name, why.msg);
		}
	}
	return 0;
}

int
bx_conf_format(const struct bx_conf_opt *opt, const void *conf, char *buf, size_t len)
{
	const char *field = (const char *)conf + opt->offset;
	int64_t i;
	double d;
	bool b;
	int e;

	switch (opt->type) {
	case BX_CONF_BOOL:
		memcpy(&b, field, sizeof(b));
		return snprintf(buf, len, "%s", b ? "true" : "false");
	case BX_CONF_INT:
		memcpy(&i, field, sizeof(i));
		return snprintf(buf, len, "%" PRId64, i);
	case BX_CONF_DOUBLE:
		memcpy(&d, field, sizeof(d));
		return snprintf(buf, len, "%.17g", d);
	case BX_CONF_STR:
		return snprintf(buf, len, "\"%s\"", field);
	case BX_CONF_ENUM:
		memcpy(&e, field, sizeof(e));
		return snprintf(buf, len, "%s", opt->choices[e]);
	}
	return snprintf(buf, len, "?");
}

/* ----------------------- the file syntax ----------------------- */

/* Parser state for one text; each line is copied into line[] and cut in place. */
struct cursor {
	const struct bx_conf_schema *s;
	void *conf;       /* the copy being filled */
	bool *seen;       /* per option: set by this text already */
	const char *name; /* file name for messages */
	unsigned lineno;
	char section[128];
	char line[CONF_LINE_MAX + 1];
};

static int
line_err(struct cursor *c, struct bx_errbuf *eb, int err, const char *what)
{
	return bx_err(eb, err, "%s:%u: %s", c->name, c->lineno, what);
}

static char *
trim(char *p)
{
	char *end = p + strlen(p);

	while (*p == ' ' || *p == '\t') {
		p++;
	}
	while (end > p && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r')) {
		*--end = '\0';
	}
	return p;
}

static bool
is_key_char(int ch)
{
	return isalnum(ch) || ch == '_' || ch == '-' || ch == '.';
}

/* "[name]": later keys are "name.key". */
static int
parse_section(struct cursor *c, char *p, struct bx_errbuf *eb)
{
	char *end = strchr(p, ']');
	char *name;

	if (end == NULL || (*trim(end + 1) != '\0' && *trim(end + 1) != '#')) {
		return line_err(c, eb, EINVAL, "malformed [section] header");
	}
	*end = '\0';
	name = trim(p + 1);
	for (char *q = name; *q != '\0'; q++) {
		if (!is_key_char((unsigned char)*q)) {
			return line_err(c, eb, EINVAL, "bad character in section name");
		}
	}
	if (*name == '\0' || strlen(name) >= sizeof(c->section)) {
		return line_err(c, eb, EINVAL, "empty or overlong section name");
	}
	memcpy(c->section, name, strlen(name) + 1);
	return 0;
}

/* Unquote "..." in place (\" \\ \n \t); the rest of the line may be a comment. */
static int
unquote(char *p, char **value)
{
	char *out = p, *in = p + 1;

	for (; *in != '"'; in++) {
		if (*in == '\0') {
			return -EINVAL;
		}
		if (*in == '\\') {
			static const char from[] = "\"\\nt", to[] = "\"\\\n\t";
			const char *k = *++in != '\0' ? strchr(from, *in) : NULL;

			if (k == NULL) {
				return -EINVAL;
			}
			*out++ = to[k - from];
			continue;
		}
		*out++ = *in;
	}
	in = trim(in + 1);
	if (*in != '\0' && *in != '#') {
		return -EINVAL;
	}
	*out = '\0';
	*value = p;
	return 0;
}

/*
 * Split "key = value  # comment" into trimmed key and value. Returns 1 for
 * a quoted value (which may be empty), 0 for a bare one, -EINVAL.
 */
static int
split_kv(char *p, char **key, char **value)
{
	char *eq = strchr(p, '=');
	char *v;

	if (eq == NULL) {
		return -EINVAL;
	}
	*eq = '\0';
	*key = trim(p);
	v = trim(eq + 1);
	if (*v == '"') {
		return unquote(v, value) < 0 ? -EINVAL : 1;
	}
	if (strchr(v, '#') != NULL) {
		*strchr(v, '#') = '\0';
	}
	*value = trim(v);
	return 0;
}

static int
apply_kv(struct cursor *c, const char *key, const char *value, bool quoted, struct bx_errbuf *eb)
{
	const struct bx_conf_opt *opt;
	struct bx_errbuf why;
	char full[256];

	if (c->section[0] != '\0') {
		snprintf(full, sizeof(full), "%s.%s", c->section, key);
	} else {
		snprintf(full, sizeof(full), "%s", key);
	}
	opt = bx_conf_find(c->s, full);
	if (opt == NULL) {
		return bx_err(eb, EINVAL, "%s:%u: unknown key '%s'", c->name, c->lineno, full);
	}
	if (c->seen[opt - c->s->opts]) {
		return bx_err(eb, EINVAL, "%s:%u: key '%s' set twice", c->name, c->lineno, full);
	}
	c->seen[opt - c->s->opts] = true;
	if (*value == '\0' && !quoted) {
		return bx_err(eb, EINVAL, "%s:%u: key '%s' has no value", c->name, c->lineno, full);
	}
	if (set_value(opt, c->conf, value, &why) < 0) {
		return bx_err(eb, EINVAL, "%s:%u: key '%s': %s", c->name, c->lineno, full, why.msg);
	}
	return 0;
}

static int
parse_line(struct cursor *c, struct bx_errbuf *eb)
{
	char *p = trim(c->line);
	char *key, *value;
	int quoted;

	for (const char *q = c->line; *q != '\0'; q++) {
		if (((unsigned char)*q < 0x20 && *q != '\t') || *q == 0x7f) {
			return line_err(c, eb, EINVAL, "control character or binary data");
		}
	}
	if (*p == '\0' || *p == '#') {
		return 0;
	}
	if (*p == '[') {
		return parse_section(c, p, eb);
	}
	quoted = split_kv(p, &key, &value);
	if (quoted < 0) {
		return line_err(c, eb, EINVAL, "expected 'key = value' (or a bad quoted string)");
	}
	for (const char *q = key; *q != '\0'; q++) {
		if (!is_key_char((unsigned char)*q)) {
			return line_err(c, eb, EINVAL, "bad character in key");
		}
	}
	if (*key == '\0') {
		return line_err(c, eb, EINVAL, "missing key before '='");
	}
	return apply_kv(c, key, value, quoted == 1, eb);
}

static int
parse_text(struct cursor *c, const char *text, size_t len, struct bx_errbuf *eb)
{
	const char *p = text, *end = text + len;
	int ret;

	while (p < end) {
		const char *nl = memchr(p, '\n', end - p);
		size_t n = (nl != NULL ? nl : end) - p;

		c->lineno++;
		if (memchr(p, '\0', n) != NULL) {
			return line_err(c, eb, EINVAL, "NUL byte (binary data?)");
		}
		if (n > CONF_LINE_MAX) {
			return line_err(c, eb, EINVAL, "line longer than 4096 bytes");
		}
		memcpy(c->line, p, n);
		c->line[n] = '\0';
		ret = parse_line(c, eb);
		if (ret < 0) {
			return ret;
		}
		p += n + 1;
	}
	return 0;
}

/* Run the schema's cross-field check, then copy tmp over conf. */
static int
commit(const struct bx_conf_schema *s, void *conf, const void *tmp, const char *name,
       struct bx_errbuf *eb)
{
	struct bx_errbuf why;
	int ret;

	if (s->check != NULL) {
		ret = s->check(tmp, &why);
		if (ret < 0) {
			return bx_err(eb, ret, "%s: %s", name, why.msg);
		}
	}
	memcpy(conf, tmp, s->conf_size);
	return 0;
}

int
bx_conf_parse(const struct bx_conf_schema *s, void *conf, const char *name, const char *text,
              size_t len, struct bx_errbuf *eb)
{
	struct cursor *c;
	int ret = -ENOMEM;

	c = bx_calloc(1, sizeof(*c));
	if (c == NULL) {
		return bx_err(eb, ENOMEM, "%s: out of memory", name);
	}
	c->conf = bx_malloc(s->conf_size);
	c->seen = bx_calloc(s->nb_opts + 1, sizeof(bool));
	if (c->conf == NULL || c->seen == NULL) {
		bx_err(eb, ENOMEM, "%s: out of memory", name);
		goto out_free;
	}
	memcpy(c->conf, conf, s->conf_size);
	c->s = s;
	c->name = name;
	ret = parse_text(c, text, len, eb);
	if (ret == 0) {
		ret = commit(s, conf, c->conf, name, eb);
	}
out_free:
	bx_free(c->seen);
	bx_free(c->conf);
	bx_free(c);
	return ret;
}

int
bx_conf_load_file(const struct bx_conf_schema *s, void *conf, const char *path,
                  struct bx_errbuf *eb)
{
	struct stat st;
	char *buf;
	ssize_t n;
	int fd, ret;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		return bx_err(eb, errno, "%s: cannot open: %s", path, bx_strerror(errno));
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > CONF_FILE_MAX) {
		close(fd);
		return bx_err(eb, EINVAL, "%s: not a regular file of at most 1 MiB", path);
	}
	buf = bx_malloc(st.st_size + 1);
	if (buf == NULL) {
		close(fd);
		return bx_err(eb, ENOMEM, "%s: out of memory", path);
	}
	n = read(fd, buf, st.st_size);
	close(fd);
	if (n != st.st_size) {
		bx_free(buf);
		return bx_err(eb, EIO, "%s: short read", path);
	}
	ret = bx_conf_parse(s, conf, path, buf, n, eb);
	bx_free(buf);
	return ret;
}

/* Set "key=value" pairs on tmp; origin names where they came from. */
static int
set_pairs(const struct bx_conf_schema *s, void *tmp, const char *const *kv, size_t n,
          unsigned need_flags, struct bx_errbuf *eb)
{
	const struct bx_conf_opt *opt;
	struct bx_errbuf why;
	char key[256];

	for (size_t i = 0; i < n; i++) {
		const char *eq = strchr(kv[i], '=');
		size_t klen = eq != NULL ? (size_t)(eq - kv[i]) : 0;

		if (eq == NULL || klen == 0 || klen >= sizeof(key)) {
			return bx_err(eb, EINVAL, "'%s': expected key=value", kv[i]);
		}
		memcpy(key, kv[i], klen);
		key[klen] = '\0';
		opt = bx_conf_find(s, key);
		if (opt == NULL) {
			return bx_err(eb, EINVAL, "unknown key '%s'", key);
		}
		if ((opt->flags & need_flags) != need_flags) {
			return bx_err(eb, EPERM, "key '%s' cannot change while running", key);
		}
		if (set_value(opt, tmp, eq + 1, &why) < 0) {
			return bx_err(eb, EINVAL, "key '%s': %s", key, why.msg);
		}
	}
	return 0;
}

static int
apply_pairs(const struct bx_conf_schema *s, void *conf, const char *const *kv, size_t n,
            unsigned need_flags, struct bx_errbuf *eb)
{
	void *tmp = bx_malloc(s->conf_size);
	int ret;

	if (tmp == NULL) {
		return bx_err(eb, ENOMEM, "out of memory");
	}
	memcpy(tmp, conf, s->conf_size);
	ret = set_pairs(s, tmp, kv, n, need_flags, eb);
	if (ret == 0) {
		ret = commit(s, conf, tmp, "command line", eb);
	}
	bx_free(tmp);
	return ret;
}

int
bx_conf_apply_overrides(const struct bx_conf_schema *s, void *conf, const char *const *kv, size_t n,
                        struct bx_errbuf *eb)
{
	return apply_pairs(s, conf, kv, n, 0, eb);
}

int
bx_conf_set_runtime(const struct bx_conf_schema *s, void *conf, const char *key, const char *value,
                    struct bx_errbuf *eb)
{
	char pair[CONF_LINE_MAX];
	const char *kv[1] = { pair };

	if ((size_t)snprintf(pair, sizeof(pair), "%s=%s", key, value) >= sizeof(pair)) {
		return bx_err(eb, EINVAL, "key '%s': value too long", key);
	}
	return apply_pairs(s, conf, kv, 1, BX_CONF_RUNTIME, eb);
}
