/*
 * JSON reader/writer and Python str()/repr() rendering. See json.h.
 *
 * Why our own rather than Debian's libjansson-dev or libjson-c-dev: both
 * build a heap tree (a malloc per value, against the dataplane's
 * no-allocation-per-request rule), jansson rejects NaN/Infinity outright
 * (Python's json.dumps emits them), and neither keeps the literal text of a
 * number, which the echo needs to re-emit a float exactly as it came. The
 * token array below is ~150 lines, validates in one pass and costs nothing
 * per request beyond a caller-owned array.
 */
#include "json.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------- reader ---------------- */

struct jparser {
	const char *s;
	size_t n;
	size_t i;
	struct bx_jtok *toks;
	uint32_t nb, cap;
	unsigned max_depth;
};

static void
skip_ws(struct jparser *p)
{
	while (p->i < p->n) {
		char c = p->s[p->i];

		if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
			break;
		}
		p->i++;
	}
}

static int
new_tok(struct jparser *p, enum bx_jtype type, size_t start)
{
	struct bx_jtok *t;

	if (p->nb >= p->cap) {
		return -E2BIG;
	}
	t = &p->toks[p->nb];
	t->type = (uint8_t)type;
	t->escaped = 0;
	t->_pad = 0;
	t->start = (uint32_t)start;
	t->len = 0;
	t->nb = 0;
	t->next = 0;
	return (int)p->nb++;
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9') {
		return c - '0';
	}
	if (c >= 'a' && c <= 'f') {
		return c - 'a' + 10;
	}
	if (c >= 'A' && c <= 'F') {
		return c - 'A' + 10;
	}
	return -1;
}

/* Length of a valid UTF-8 sequence at s (at most n bytes), or 0. */
static size_t
utf8_len(const uint8_t *s, size_t n, uint32_t *cp_out)
{
	uint32_t cp;
	size_t len;

	if (s[0] < 0x80) {
		*cp_out = s[0];
		return 1;
	}
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		len = 2;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		len = 3;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		len = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	if (n < len) {
		return 0;
	}
	for (size_t k = 1; k < len; k++) {
		if ((s[k] & 0xc0) != 0x80) {
			return 0;
		}
		cp = (cp << 6) | (s[k] & 0x3f);
	}
	if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (len == 4 && (cp < 0x10000 || cp > 0x10ffff))) {
		return 0;
	}
	*cp_out = cp;
	return len;
}

static int
parse_string(struct jparser *p)
{
	int t = new_tok(p, BX_J_STRING, p->i + 1);

	if (t < 0) {
		return t;
	}
	p->i++; /* opening quote */
	while (p->i < p->n) {
		uint8_t c = (uint8_t)p->s[p->i];

		if (c == '"') {
			p->toks[t].len = (uint32_t)(p->i - p->toks[t].start);
			p->i++;
			p->toks[t].next = p->nb;
			return t;
		}
		if (c < 0x20) {
			return -EINVAL;
		}
		if (c == '\\') {
			char e;

			p->toks[t].escaped = 1;
			if (p->i + 1 >= p->n) {
				return -EINVAL;
			}
			e = p->s[p->i + 1];
			if (e == 'u') {
				if (p->i + 6 > p->n) {
					return -EINVAL;
				}
				for (int k = 2; k < 6; k++) {
					if (hexval(p->s[p->i + (size_t)k]) < 0) {
						return -EINVAL;
					}
				}
				p->i += 6;
			} else if (e == '"' || e == '\\' || e == '/' || e == 'b' || e == 'f' ||
			           e == 'n' || e == 'r' || e == 't') {
				p->i += 2;
			} else {
				return -EINVAL;
			}
			continue;
		}
		if (c < 0x80) {
			p->i++;
		} else {
			uint32_t cp;
			size_t l = utf8_len((const uint8_t *)p->s + p->i, p->n - p->i, &cp);

			if (l == 0) {
				return -EINVAL;
			}
			p->i += l;
		}
	}
	return -EINVAL;
}

static bool
match_lit(struct jparser *p, const char *lit, size_t n)
{
	if (p->n - p->i < n || memcmp(p->s + p->i, lit, n) != 0) {
		return false;
	}
	p->i += n;
	return true;
}

static int
parse_number(struct jparser *p)
{
	size_t s = p->i;
	bool is_float = false;
	int t;

	if (p->i < p->n && p->s[p->i] == '-') {
		p->i++;
		if (match_lit(p, "Infinity", 8)) {
			t = new_tok(p, BX_J_NONFINITE, s);
			goto done;
		}
	}
	if (p->i >= p->n) {
		return -EINVAL;
	}
	if (p->s[p->i] == '0') {
		p->i++;
	} else if (p->s[p->i] >= '1' && p->s[p->i] <= '9') {
		while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9') {
			p->i++;
		}
	} else {
		return -EINVAL;
	}
	if (p->i < p->n && p->s[p->i] == '.') {
		size_t d0;

		p->i++;
		d0 = p->i;
		while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9') {
			p->i++;
		}
		if (p->i == d0) {
			return -EINVAL;
		}
		is_float = true;
	}
	if (p->i < p->n && (p->s[p->i] == 'e' || p->s[p->i] == 'E')) {
		size_t d0;

		p->i++;
		if (p->i < p->n && (p->s[p->i] == '+' || p->s[p->i] == '-')) {
			p->i++;
		}
		d0 = p->i;
		while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9') {
			p->i++;
		}
		if (p->i == d0) {
			return -EINVAL;
		}
		is_float = true;
	}
	t = new_tok(p, is_float ? BX_J_FLOAT : BX_J_INT, s);
done:
	if (t < 0) {
		return t;
	}
	p->toks[t].len = (uint32_t)(p->i - s);
	p->toks[t].next = p->nb;
	return t;
}

static int parse_value(struct jparser *p, unsigned depth);

static int
parse_container(struct jparser *p, unsigned depth, bool is_obj)
{
	int t, r;
	char close = is_obj ? '}' : ']';

	if (depth >= p->max_depth) {
		return -ELOOP;
	}
	t = new_tok(p, is_obj ? BX_J_OBJECT : BX_J_ARRAY, p->i);
	if (t < 0) {
		return t;
	}
	p->i++;
	skip_ws(p);
	if (p->i < p->n && p->s[p->i] == close) {
		p->i++;
		goto done;
	}
	for (;;) {
		skip_ws(p);
		if (is_obj) {
			if (p->i >= p->n || p->s[p->i] != '"') {
				return -EINVAL;
			}
			r = parse_string(p);
			if (r < 0) {
				return r;
			}
			skip_ws(p);
			if (p->i >= p->n || p->s[p->i] != ':') {
				return -EINVAL;
			}
			p->i++;
			skip_ws(p);
		}
		r = parse_value(p, depth + 1);
		if (r < 0) {
			return r;
		}
		p->toks[t].nb++;
		skip_ws(p);
		if (p->i >= p->n) {
			return -EINVAL;
		}
		if (p->s[p->i] == ',') {
			p->i++;
			continue;
		}
		if (p->s[p->i] == close) {
			p->i++;
			break;
		}
		return -EINVAL;
	}
done:
	p->toks[t].len = (uint32_t)(p->i - p->toks[t].start);
	p->toks[t].next = p->nb;
	return t;
}

/* true, false, null, and the NaN/Infinity that Python's json.dumps writes. */
static int
literal(struct jparser *p, enum bx_jtype *type)
{
	static const struct {
		const char *lit;
		uint8_t len;
		enum bx_jtype type;
	} lits[] = {
		{ "true", 4, BX_J_TRUE },          { "false", 5, BX_J_FALSE },
		{ "null", 4, BX_J_NULL },          { "NaN", 3, BX_J_NONFINITE },
		{ "Infinity", 8, BX_J_NONFINITE },
	};

	for (size_t k = 0; k < sizeof(lits) / sizeof(lits[0]); k++) {
		if (p->s[p->i] == lits[k].lit[0]) {
			if (!match_lit(p, lits[k].lit, lits[k].len)) {
				return -EINVAL;
			}
			*type = lits[k].type;
			return 0;
		}
	}
	return -ENOENT;
}

static int
parse_value(struct jparser *p, unsigned depth)
{
	int t;
	size_t s = p->i;
	enum bx_jtype type;

	if (p->i >= p->n) {
		return -EINVAL;
	}
	switch (p->s[p->i]) {
	case '{':
		return parse_container(p, depth, true);
	case '[':
		return parse_container(p, depth, false);
	case '"':
		return parse_string(p);
	default:
		t = literal(p, &type);
		if (t == -ENOENT) {
			return parse_number(p);
		}
		if (t < 0) {
			return t;
		}
		break;
	}
	t = new_tok(p, type, s);
	if (t < 0) {
		return t;
	}
	p->toks[t].len = (uint32_t)(p->i - s);
	p->toks[t].next = p->nb;
	return t;
}

int
bx_json_parse(struct bx_json *j, const char *text, size_t len, struct bx_jtok *toks, uint32_t cap,
              unsigned max_depth)
{
	struct jparser p = {
		.s = text,
		.n = len,
		.toks = toks,
		.cap = cap,
		.max_depth = max_depth > BX_JSON_MAX_DEPTH ? BX_JSON_MAX_DEPTH : max_depth,
	};
	int r;

	j->src = text;
	j->src_len = len;
	j->toks = toks;
	j->nb_toks = 0;
	j->cap = cap;
	if (len > UINT32_MAX) {
		return -E2BIG;
	}
	skip_ws(&p);
	r = parse_value(&p, 0);
	if (r < 0) {
		return r;
	}
	skip_ws(&p);
	if (p.i != p.n) {
		return -EINVAL;
	}
	j->nb_toks = p.nb;
	return 0;
}

/* Decode one escape or UTF-8 sequence of a string at s[*i]; returns the code
 * point. */
static uint32_t
str_next_cp(const char *s, size_t n, size_t *i)
{
	uint8_t c = (uint8_t)s[*i];
	uint32_t cp;

	if (c == '\\') {
		char e = s[*i + 1];

		*i += 2;
		switch (e) {
		case 'b':
			return '\b';
		case 'f':
			return '\f';
		case 'n':
			return '\n';
		case 'r':
			return '\r';
		case 't':
			return '\t';
		case 'u':
			cp = (uint32_t)(hexval(s[*i]) << 12 | hexval(s[*i + 1]) << 8 |
			                hexval(s[*i + 2]) << 4 | hexval(s[*i + 3]));
			*i += 4;
			if (cp >= 0xd800 && cp <= 0xdbff && *i + 6 <= n && s[*i] == '\\' &&
			    s[*i + 1] == 'u') {
				int h0 = hexval(s[*i + 2]), h1 = hexval(s[*i + 3]);
				int h2 = hexval(s[*i + 4]), h3 = hexval(s[*i + 5]);
				uint32_t lo = (uint32_t)(h0 << 12 | h1 << 8 | h2 << 4 | h3);

				if (lo >= 0xdc00 && lo <= 0xdfff) {
					*i += 6;
					cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
				}
			}
			return cp;
		default:
			return (uint32_t)(uint8_t)e; /* " \ / */
		}
	}
	if (c < 0x80) {
		*i += 1;
		return c;
	}
	{
		size_t l = utf8_len((const uint8_t *)s + *i, n - *i, &cp);

		*i += l ? l : 1; /* validated at parse time */
		return cp;
	}
}

static size_t
put_utf8(char *o, uint32_t cp)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xc0 | (cp >> 6));
		o[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xe0 | (cp >> 12));
		o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		o[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (char)(0xf0 | (cp >> 18));
	o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	o[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

long
bx_json_str_copy(const struct bx_json *j, int t, char *out, size_t cap)
{
	const struct bx_jtok *k = &j->toks[t];
	const char *s = j->src + k->start;
	size_t i = 0, o = 0;

	if (k->type != BX_J_STRING) {
		return -1;
	}
	if (!k->escaped) {
		if (k->len > cap) {
			return -1;
		}
		memcpy(out, s, k->len);
		return k->len;
	}
	while (i < k->len) {
		uint32_t cp = str_next_cp(s, k->len, &i);

		if (cap - o < 4) {
			return -1;
		}
		o += put_utf8(out + o, cp);
	}
	return (long)o;
}

bool
bx_json_str_eq(const struct bx_json *j, int t, const char *str, size_t n)
{
	const struct bx_jtok *k = &j->toks[t];
	const char *s = j->src + k->start;
	size_t i = 0, o = 0;

	if (k->type != BX_J_STRING) {
		return false;
	}
	if (!k->escaped) {
		return k->len == n && memcmp(s, str, n) == 0;
	}
	while (i < k->len) {
		char tmp[4];
		size_t l = put_utf8(tmp, str_next_cp(s, k->len, &i));

		if (n - o < l || memcmp(str + o, tmp, l) != 0) {
			return false;
		}
		o += l;
	}
	return o == n;
}

int
bx_json_get(const struct bx_json *j, int obj, const char *key, size_t key_len)
{
	int k;

	if (obj < 0 || j->toks[obj].type != BX_J_OBJECT) {
		return -1;
	}
	for (k = bx_json_child(j, obj); k >= 0 && k < (int)j->toks[obj].next;) {
		int v = k + 1;

		if (bx_json_str_eq(j, k, key, key_len)) {
			return v;
		}
		k = bx_json_next(j, v);
	}
	return -1;
}

int
bx_json_int64(const struct bx_json *j, int t, int64_t *out)
{
	const struct bx_jtok *k = &j->toks[t];
	const char *s = j->src + k->start;
	bool neg = false;
	uint64_t v = 0;
	uint32_t i = 0;

	if (k->type != BX_J_INT) {
		return -EINVAL;
	}
	if (s[0] == '-') {
		neg = true;
		i = 1;
	}
	for (; i < k->len; i++) {
		uint64_t d = (uint64_t)(s[i] - '0');

		if (v > (UINT64_MAX - d) / 10) {
			return -ERANGE;
		}
		v = v * 10 + d;
	}
	if (neg) {
		if (v > (uint64_t)INT64_MAX + 1) {
			return -ERANGE;
		}
		*out = (int64_t)(0 - v);
	} else {
		if (v > (uint64_t)INT64_MAX) {
			return -ERANGE;
		}
		*out = (int64_t)v;
	}
	return 0;
}

int
bx_json_double(const struct bx_json *j, int t, double *out)
{
	const struct bx_jtok *k = &j->toks[t];
	const char *s = j->src + k->start;
	char tmp[400];

	if (k->type == BX_J_NONFINITE) {
		*out = s[0] == 'N' ? NAN : s[0] == '-' ? -INFINITY : INFINITY;
		return 0;
	}
	if (k->type != BX_J_INT && k->type != BX_J_FLOAT) {
		return -EINVAL;
	}
	if (k->start + k->len < j->src_len) {
		/* a structural character or whitespace follows: strtod stops there */
		*out = strtod(s, NULL);
		return 0;
	}
	if (k->len >= sizeof(tmp)) {
		/* a bare number as the whole text, absurdly long: never on a request path */
		char *big = malloc(k->len + 1);

		if (!big) {
			return -ENOMEM;
		}
		memcpy(big, s, k->len);
		big[k->len] = 0;
		*out = strtod(big, NULL);
		free(big);
		return 0;
	}
	memcpy(tmp, s, k->len);
	tmp[k->len] = 0;
	*out = strtod(tmp, NULL);
	return 0;
}

/* ---------------- writer ---------------- */

void
bx_jw_init(struct bx_jw *w, struct bx_obuf *b, enum bx_jw_style style)
{
	w->b = b;
	w->style = style;
	w->depth = 0;
	w->first[0] = true;
	w->after_key = false;
}

static void
pre_value(struct bx_jw *w)
{
	if (w->after_key) {
		w->after_key = false;
		return;
	}
	if (!w->first[w->depth]) {
		if (w->style == BX_JW_PY_DEFAULT) {
			bx_obuf_put(w->b, ", ", 2);
		} else {
			bx_obuf_putc(w->b, ',');
		}
	}
	w->first[w->depth] = false;
}

static void
open_(struct bx_jw *w, char c)
{
	pre_value(w);
	bx_obuf_putc(w->b, c);
	if (w->depth < BX_JSON_MAX_DEPTH) {
		w->depth++;
	} else {
		w->b->overflow = true;
	}
	w->first[w->depth] = true;
}

void
bx_jw_obj_begin(struct bx_jw *w)
{
	open_(w, '{');
}

void
bx_jw_arr_begin(struct bx_jw *w)
{
	open_(w, '[');
}

void
bx_jw_obj_end(struct bx_jw *w)
{
	if (w->depth) {
		w->depth--;
	}
	bx_obuf_putc(w->b, '}');
}

void
bx_jw_arr_end(struct bx_jw *w)
{
	if (w->depth) {
		w->depth--;
	}
	bx_obuf_putc(w->b, ']');
}

static const char hexd[] = "0123456789abcdef";

static void
put_u_escape(struct bx_obuf *b, uint32_t u)
{
	char e[6] = {
		'\\',        'u', hexd[(u >> 12) & 15], hexd[(u >> 8) & 15], hexd[(u >> 4) & 15],
		hexd[u & 15]
	};

	bx_obuf_put(b, e, 6);
}

/* Python json encoder escaping of one code point. */
static void
json_escape_cp(struct bx_jw *w, uint32_t cp)
{
	struct bx_obuf *b = w->b;

	/* The two-character escapes json.dumps uses; the rest below. */
	static const char from[] = "\"\\\n\r\t\b\f", to[] = "\"\\nrtbf";
	const char *k = cp != 0 && cp < 0x80 ? strchr(from, (int)cp) : NULL;

	if (k != NULL) {
		char e[2] = { '\\', to[k - from] };

		bx_obuf_put(b, e, 2);
		return;
	}
	if (cp < 0x20) {
		put_u_escape(b, cp);
	} else if (cp < 0x7f || (cp == 0x7f && w->style == BX_JW_COMPACT)) {
		bx_obuf_putc(b, (char)cp);
	} else if (w->style == BX_JW_PY_DEFAULT || (cp >= 0xd800 && cp <= 0xdfff)) {
		/* ensure_ascii (0x7f is escaped too), or a lone surrogate */
		if (cp >= 0x10000) {
			cp -= 0x10000;
			put_u_escape(b, 0xd800 + (cp >> 10));
			put_u_escape(b, 0xdc00 + (cp & 0x3ff));
		} else {
			put_u_escape(b, cp);
		}
	} else {
		char tmp[4];

		bx_obuf_put(b, tmp, put_utf8(tmp, cp));
	}
}

static void
jw_str_cps(struct bx_jw *w, const char *s, size_t n, bool from_json)
{
	size_t i = 0;

	bx_obuf_putc(w->b, '"');
	while (i < n) {
		uint32_t cp;

		if (from_json) {
			cp = str_next_cp(s, n, &i);
		} else if ((uint8_t)s[i] < 0x80) {
			cp = (uint8_t)s[i++];
		} else {
			size_t l = utf8_len((const uint8_t *)s + i, n - i, &cp);

			if (l == 0) {
				cp = 0xfffd;
				l = 1;
			}
			i += l;
		}
		json_escape_cp(w, cp);
	}
	bx_obuf_putc(w->b, '"');
}

void
bx_jw_key(struct bx_jw *w, const char *k, size_t n)
{
	pre_value(w);
	jw_str_cps(w, k, n, false);
	if (w->style == BX_JW_PY_DEFAULT) {
		bx_obuf_put(w->b, ": ", 2);
	} else {
		bx_obuf_putc(w->b, ':');
	}
	w->after_key = true;
}

void
bx_jw_str(struct bx_jw *w, const char *s, size_t n)
{
	pre_value(w);
	jw_str_cps(w, s, n, false);
}

void
bx_jw_int(struct bx_jw *w, int64_t v)
{
	pre_value(w);
	bx_obuf_i64(w->b, v);
}

void
bx_jw_double(struct bx_jw *w, double v)
{
	char tmp[32];

	pre_value(w);
	if (isnan(v)) {
		bx_obuf_put(w->b, "NaN", 3);
	} else if (isinf(v)) {
		bx_obuf_puts(w->b, v < 0 ? "-Infinity" : "Infinity");
	} else {
		bx_obuf_put(w->b, tmp, (size_t)bx_py_float_repr(tmp, v));
	}
}

void
bx_jw_bool(struct bx_jw *w, bool v)
{
	pre_value(w);
	if (v) {
		bx_obuf_put(w->b, "true", 4);
	} else {
		bx_obuf_put(w->b, "false", 5);
	}
}

void
bx_jw_null(struct bx_jw *w)
{
	pre_value(w);
	bx_obuf_put(w->b, "null", 4);
}

void
bx_jw_raw(struct bx_jw *w, const char *json, size_t n)
{
	pre_value(w);
	bx_obuf_put(w->b, json, n);
}

void
bx_jw_value(struct bx_jw *w, const struct bx_json *j, int t)
{
	const struct bx_jtok *k = &j->toks[t];
	int c;

	switch (k->type) {
	case BX_J_STRING:
		pre_value(w);
		jw_str_cps(w, j->src + k->start, k->len, true);
		return;
	case BX_J_ARRAY:
		bx_jw_arr_begin(w);
		for (c = bx_json_child(j, t); c >= 0 && c < (int)k->next; c = bx_json_next(j, c)) {
			bx_jw_value(w, j, c);
		}
		bx_jw_arr_end(w);
		return;
	case BX_J_OBJECT:
		bx_jw_obj_begin(w);
		for (c = bx_json_child(j, t); c >= 0 && c < (int)k->next;) {
			pre_value(w);
			jw_str_cps(w, j->src + j->toks[c].start, j->toks[c].len, true);
			if (w->style == BX_JW_PY_DEFAULT) {
				bx_obuf_put(w->b, ": ", 2);
			} else {
				bx_obuf_putc(w->b, ':');
			}
			w->after_key = true;
			bx_jw_value(w, j, c + 1);
			c = bx_json_next(j, c + 1);
		}
		bx_jw_obj_end(w);
		return;
	default:
		bx_jw_raw(w, j->src + k->start, k->len);
		return;
	}
}

/* ---------------- Python rendering ---------------- */

int
bx_py_float_repr(char buf[32], double v)
{
	char tmp[40], digits[20];
	int nd = 0, exp10, p, pos = 0;
	const char *e;

	if (isnan(v)) {
		return snprintf(buf, 32, "nan");
	}
	if (isinf(v)) {
		return snprintf(buf, 32, v < 0 ? "-inf" : "inf");
	}
	if (v == 0) {
		return snprintf(buf, 32, signbit(v) ? "-0.0" : "0.0");
	}
	/* shortest precision that round-trips; %.*e rounds correctly (glibc) */
	for (p = 1; p <= 17; p++) {
		snprintf(tmp, sizeof(tmp), "%.*e", p - 1, v);
		if (strtod(tmp, NULL) == v) {
			break;
		}
	}
	/* tmp = [-]d[.ddd]e[+-]XX */
	for (const char *s = tmp; *s && *s != 'e'; s++) {
		if (*s >= '0' && *s <= '9') {
			digits[nd++] = *s;
		}
	}
	while (nd > 1 && digits[nd - 1] == '0') {
		nd--;
	}
	e = strchr(tmp, 'e');
	exp10 = atoi(e + 1);
	if (v < 0) {
		buf[pos++] = '-';
	}
	if (exp10 < -4 || exp10 >= 16) {
		buf[pos++] = digits[0];
		if (nd > 1) {
			buf[pos++] = '.';
			for (int i = 1; i < nd; i++) {
				buf[pos++] = digits[i];
			}
		}
		pos += snprintf(buf + pos, (size_t)(32 - pos), "e%c%02d", exp10 < 0 ? '-' : '+',
		                exp10 < 0 ? -exp10 : exp10);
	} else if (exp10 < 0) {
		buf[pos++] = '0';
		buf[pos++] = '.';
		for (int i = 0; i < -exp10 - 1; i++) {
			buf[pos++] = '0';
		}
		for (int i = 0; i < nd; i++) {
			buf[pos++] = digits[i];
		}
	} else {
		for (int i = 0; i <= exp10; i++) {
			buf[pos++] = i < nd ? digits[i] : '0';
		}
		buf[pos++] = '.';
		if (nd > exp10 + 1) {
			for (int i = exp10 + 1; i < nd; i++) {
				buf[pos++] = digits[i];
			}
		} else {
			buf[pos++] = '0';
		}
	}
	buf[pos] = 0;
	return pos;
}

/* Python's str.isprintable(), for code points >= 0x80 (close approximation, see
 * README). */
static bool
py_printable(uint32_t cp)
{
	if (cp <= 0xa0 || cp == 0xad) {
		return false;
	}
	if ((cp >= 0x600 && cp <= 0x605) || cp == 0x61c || cp == 0x6dd || cp == 0x70f ||
	    cp == 0x890 || cp == 0x891 || cp == 0x8e2 || cp == 0x180e || cp == 0x1680) {
		return false;
	}
	if ((cp >= 0x2000 && cp <= 0x200f) || (cp >= 0x2028 && cp <= 0x202f) ||
	    (cp >= 0x205f && cp <= 0x2064) || (cp >= 0x2066 && cp <= 0x206f) || cp == 0x3000) {
		return false;
	}
	if ((cp >= 0xd800 && cp <= 0xf8ff) || (cp >= 0xfdd0 && cp <= 0xfdef) || cp == 0xfeff ||
	    (cp >= 0xfff9 && cp <= 0xfffb) || (cp & 0xfffe) == 0xfffe) {
		return false;
	}
	if (cp == 0x110bd || cp == 0x110cd || (cp >= 0x13430 && cp <= 0x1343f) ||
	    (cp >= 0x1bca0 && cp <= 0x1bca3) || (cp >= 0x1d173 && cp <= 0x1d17a) ||
	    (cp >= 0xe0000 && cp <= 0xe0fff) || cp >= 0xf0000) {
		return false;
	}
	return true;
}

/* Python repr() of a str, from a JSON string token. */
static void
py_repr_str(struct bx_obuf *b, const struct bx_json *j, int t)
{
	const struct bx_jtok *k = &j->toks[t];
	const char *s = j->src + k->start;
	bool has_sq = false, has_dq = false;
	size_t i = 0;
	char q;

	while (i < k->len) {
		uint32_t cp = str_next_cp(s, k->len, &i);

		has_sq |= cp == '\'';
		has_dq |= cp == '"';
	}
	q = (has_sq && !has_dq) ? '"' : '\'';
	bx_obuf_putc(b, q);
	i = 0;
	while (i < k->len) {
		uint32_t cp = str_next_cp(s, k->len, &i);

		if (cp == (uint32_t)q || cp == '\\') {
			bx_obuf_putc(b, '\\');
			bx_obuf_putc(b, (char)cp);
		} else if (cp == '\t') {
			bx_obuf_put(b, "\\t", 2);
		} else if (cp == '\n') {
			bx_obuf_put(b, "\\n", 2);
		} else if (cp == '\r') {
			bx_obuf_put(b, "\\r", 2);
		} else if (cp < 0x20 || cp == 0x7f) {
			bx_obuf_printf(b, "\\x%02x", cp);
		} else if (cp < 0x7f) {
			bx_obuf_putc(b, (char)cp);
		} else if (!py_printable(cp)) {
			if (cp <= 0xff) {
				bx_obuf_printf(b, "\\x%02x", cp);
			} else if (cp <= 0xffff) {
				bx_obuf_printf(b, "\\u%04x", cp);
			} else {
				bx_obuf_printf(b, "\\U%08x", cp);
			}
		} else {
			char tmp[4];

			bx_obuf_put(b, tmp, put_utf8(tmp, cp));
		}
	}
	bx_obuf_putc(b, q);
}

static void py_repr(struct bx_obuf *b, const struct bx_json *j, int t, bool ints_as_float);

static void
py_number(struct bx_obuf *b, const struct bx_json *j, int t, bool as_float)
{
	const struct bx_jtok *k = &j->toks[t];
	double d;
	char tmp[32];

	if (k->type == BX_J_INT && !as_float) {
		const char *s = j->src + k->start;

		if (k->len == 2 && s[0] == '-' && s[1] == '0') {
			bx_obuf_putc(b, '0'); /* int("-0") == 0 */
		} else {
			bx_obuf_put(b, s, k->len);
		}
		return;
	}
	if (bx_json_double(j, t, &d) < 0) {
		b->overflow = true;
		return;
	}
	bx_obuf_put(b, tmp, (size_t)bx_py_float_repr(tmp, d));
}

static void
py_repr(struct bx_obuf *b, const struct bx_json *j, int t, bool ints_as_float)
{
	const struct bx_jtok *k = &j->toks[t];
	int c;
	bool first = true;

	switch (k->type) {
	case BX_J_NULL:
		bx_obuf_put(b, "None", 4);
		return;
	case BX_J_TRUE:
		bx_obuf_put(b, "True", 4);
		return;
	case BX_J_FALSE:
		bx_obuf_put(b, "False", 5);
		return;
	case BX_J_INT:
	case BX_J_FLOAT:
	case BX_J_NONFINITE:
		py_number(b, j, t, ints_as_float);
		return;
	case BX_J_STRING:
		py_repr_str(b, j, t);
		return;
	case BX_J_ARRAY:
		bx_obuf_putc(b, '[');
		for (c = bx_json_child(j, t); c >= 0 && c < (int)k->next; c = bx_json_next(j, c)) {
			if (!first) {
				bx_obuf_put(b, ", ", 2);
			}
			first = false;
			py_repr(b, j, c, ints_as_float);
		}
		bx_obuf_putc(b, ']');
		return;
	case BX_J_OBJECT:
		bx_obuf_putc(b, '{');
		for (c = bx_json_child(j, t); c >= 0 && c < (int)k->next;) {
			if (!first) {
				bx_obuf_put(b, ", ", 2);
			}
			first = false;
			py_repr_str(b, j, c);
			bx_obuf_put(b, ": ", 2);
			py_repr(b, j, c + 1, ints_as_float);
			c = bx_json_next(j, c + 1);
		}
		bx_obuf_putc(b, '}');
		return;
	default:
		b->overflow = true;
		return;
	}
}

void
bx_py_str(struct bx_obuf *b, const struct bx_json *j, int t, bool ints_as_float)
{
	const struct bx_jtok *k = &j->toks[t];

	if (k->type == BX_J_STRING) {
		size_t i = 0;
		const char *s = j->src + k->start;

		if (!k->escaped) {
			bx_obuf_put(b, s, k->len);
			return;
		}
		while (i < k->len) {
			char tmp[4];

			bx_obuf_put(b, tmp, put_utf8(tmp, str_next_cp(s, k->len, &i)));
		}
		return;
	}
	py_repr(b, j, t, ints_as_float);
}
