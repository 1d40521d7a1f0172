/*
 * JSON reader/writer and Python str()/repr() rendering (private to dataplane).
 *
 * Reader: one validating pass over the text into a caller-provided flat
 * token array (no allocation); values stay views into the text. Accepts
 * everything Python's json.dumps emits: any whitespace/separators, \uXXXX
 * escapes with surrogate pairs (lone surrogates too, as json.loads does),
 * NaN / Infinity / -Infinity. Rejects: raw control characters in strings,
 * invalid UTF-8, bad escapes, trailing garbage, leading zeros, nesting
 * deeper than the limit. Object key order is the text order.
 *
 * Writer: into a struct bx_obuf, either compact with ensure_ascii=False
 * (what FastAPI's JSONResponse sends) or Python-default style (", " / ": ",
 * ensure_ascii=True: what aiohttp's json= sends).
 */
#ifndef BX_DP_JSON_H
#define BX_DP_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http1.h"

enum bx_jtype {
	BX_J_NULL,
	BX_J_FALSE,
	BX_J_TRUE,
	BX_J_INT,       /* integer literal */
	BX_J_FLOAT,     /* with fraction or exponent */
	BX_J_NONFINITE, /* NaN, Infinity, -Infinity */
	BX_J_STRING,    /* start/len exclude the quotes */
	BX_J_ARRAY,
	BX_J_OBJECT,
};

struct bx_jtok {
	uint8_t type;    /* enum bx_jtype */
	uint8_t escaped; /* BX_J_STRING: contains a backslash */
	uint16_t _pad;
	uint32_t start; /* offset in the text */
	uint32_t len;
	uint32_t nb;   /* ARRAY: elements; OBJECT: members */
	uint32_t next; /* index of the token after this value's subtree */
};

struct bx_json {
	const char *src;
	size_t src_len;
	struct bx_jtok *toks;
	uint32_t nb_toks;
	uint32_t cap;
};

#define BX_JSON_MAX_DEPTH 32

/*
 * Parse text[0..len) into toks[0..cap). Token 0 is the root; an object's
 * members are key (STRING) then value. Returns 0, -EINVAL (malformed),
 * -E2BIG (more than cap tokens) or -ELOOP (nested deeper than max_depth,
 * itself at most BX_JSON_MAX_DEPTH).
 */
int bx_json_parse(struct bx_json *j, const char *text, size_t len, struct bx_jtok *toks,
                  uint32_t cap, unsigned max_depth);

/* Value of member `key` of object token `obj`, or -1. */
int bx_json_get(const struct bx_json *j, int obj, const char *key, size_t key_len);

/* First child (for arrays: element 0; for objects: key 0), or -1 if empty. */
static inline int
bx_json_child(const struct bx_json *j, int t)
{
	return j->toks[t].nb ? t + 1 : -1;
}

static inline int
bx_json_next(const struct bx_json *j, int t)
{
	return (int)j->toks[t].next;
}

/* Compare a STRING token's (unescaped) value with s. */
bool bx_json_str_eq(const struct bx_json *j, int t, const char *s, size_t n);
/* Unescape a STRING token into out as UTF-8 (lone surrogates as WTF-8). Returns
 * length or -1. */
long bx_json_str_copy(const struct bx_json *j, int t, char *out, size_t cap);
/* INT token to int64 (-ERANGE if it does not fit, -EINVAL if not an INT). */
int bx_json_int64(const struct bx_json *j, int t, int64_t *out);
/* INT, FLOAT or NONFINITE token to double. */
int bx_json_double(const struct bx_json *j, int t, double *out);

/* ---------------- writer ---------------- */

enum bx_jw_style {
	BX_JW_COMPACT,    /* separators (",", ":"), ensure_ascii=False */
	BX_JW_PY_DEFAULT, /* separators (", ", ": "), ensure_ascii=True */
};

struct bx_jw {
	struct bx_obuf *b;
	enum bx_jw_style style;
	unsigned depth;
	bool first[BX_JSON_MAX_DEPTH + 1];
	bool after_key;
};

void bx_jw_init(struct bx_jw *w, struct bx_obuf *b, enum bx_jw_style style);
void bx_jw_obj_begin(struct bx_jw *w);
void bx_jw_obj_end(struct bx_jw *w);
void bx_jw_arr_begin(struct bx_jw *w);
void bx_jw_arr_end(struct bx_jw *w);
void bx_jw_key(struct bx_jw *w, const char *k, size_t n);
void bx_jw_str(struct bx_jw *w, const char *s, size_t n); /* s is UTF-8 */
void bx_jw_int(struct bx_jw *w, int64_t v);
void bx_jw_double(struct bx_jw *w, double v); /* Python float repr; NaN/Infinity literals */
void bx_jw_bool(struct bx_jw *w, bool v);
void bx_jw_null(struct bx_jw *w);
/* Pre-rendered JSON text as one value. */
void bx_jw_raw(struct bx_jw *w, const char *json, size_t n);
/* Re-emit a parsed value (whole subtree) in the writer's style. */
void bx_jw_value(struct bx_jw *w, const struct bx_json *j, int t);

/* ---------------- Python rendering ---------------- */

/*
 * Python repr(float): shortest round-trip digits, exponent form when the
 * decimal exponent is < -4 or >= 16, "inf", "-inf", "nan". Returns length.
 * buf needs 32 bytes.
 */
int bx_py_float_repr(char buf[32], double v);

/*
 * Python str() of the value json.loads() would give for token t, as pydantic
 * dumps it: strings raw, ints decimal, floats repr, True/False/None,
 * containers repr'ed. With ints_as_float, integer literals render as floats
 * (a field declared float, or List[float]). Appends to b.
 */
void bx_py_str(struct bx_obuf *b, const struct bx_json *j, int t, bool ints_as_float);

#endif
