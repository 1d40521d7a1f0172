/*
 * BERT uncased WordPiece tokenizer: BasicTokenizer (clean, CJK, whitespace,
 * lowercase + accent strip, punctuation) then greedy longest-match-first
 * WordPiece over vocab.txt. Unicode data comes from unicode_tab.c, which
 * infer/gen/gen_unicode.py generates.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bx/infer.h>

#include "unicode_tab.h"

#define TOKEN_BYTES_MAX 1024
#define UNK_ID_NONE     (-1)

struct bx_wordpiece {
	char *text;        /* all tokens, NUL-separated */
	uint32_t *tok_off; /* id -> offset into text */
	uint32_t *slots;   /* hash slots: id + 1, 0 = empty */
	uint32_t nb_tokens;
	uint32_t mask; /* slots - 1 */
	int32_t unk, cls, sep;
};

static uint32_t
hash(const char *s, size_t len)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < len; i++) {
		h = (h ^ (uint8_t)s[i]) * 16777619u;
	}
	return h;
}

static int
lookup(const struct bx_wordpiece *wp, const char *s, size_t len)
{
	for (uint32_t i = hash(s, len) & wp->mask;; i = (i + 1) & wp->mask) {
		uint32_t v = wp->slots[i];
		const char *t;

		if (v == 0) {
			return -ENOENT;
		}
		t = wp->text + wp->tok_off[v - 1];
		if (strncmp(t, s, len) == 0 && t[len] == '\0') {
			return (int)(v - 1);
		}
	}
}

int
bx_wordpiece_id(const struct bx_wordpiece *wp, const char *tok, size_t len)
{
	return lookup(wp, tok, len);
}

unsigned
bx_wordpiece_size(const struct bx_wordpiece *wp)
{
	return wp->nb_tokens;
}

const char *
bx_wordpiece_token(const struct bx_wordpiece *wp, unsigned id)
{
	return id < wp->nb_tokens ? wp->text + wp->tok_off[id] : NULL;
}

void
bx_wordpiece_destroy(struct bx_wordpiece *wp)
{
	if (wp == NULL) {
		return;
	}
	bx_free(wp->text);
	bx_free(wp->tok_off);
	bx_free(wp->slots);
	bx_free(wp);
}

/* Insert id; a repeated token maps to its last line, as BERT's load_vocab does. */
static void
insert(struct bx_wordpiece *wp, uint32_t id)
{
	const char *s = wp->text + wp->tok_off[id];
	size_t len = strlen(s);

	for (uint32_t i = hash(s, len) & wp->mask;; i = (i + 1) & wp->mask) {
		uint32_t v = wp->slots[i];

		if (v == 0 || strcmp(wp->text + wp->tok_off[v - 1], s) == 0) {
			wp->slots[i] = id + 1;
			return;
		}
	}
}

static int
split_lines(struct bx_wordpiece *wp, size_t len, const char *name, struct bx_errbuf *eb)
{
	uint32_t n = 0;
	size_t start = 0;

	for (size_t i = 0; i < len; i++) {
		if (wp->text[i] == '\0') {
			return bx_err(eb, EBADMSG, "%s: line %u: NUL byte", name, n + 1);
		}
	}
	for (size_t i = 0; i <= len; i++) {
		if (i < len && wp->text[i] != '\n') {
			continue;
		}
		if (i == len && start == len) {
			break; /* final newline */
		}
		if (i > start && wp->text[i - 1] == '\r') {
			wp->text[i - 1] = '\0';
		}
		if (i - start > TOKEN_BYTES_MAX) {
			return bx_err(eb, EBADMSG, "%s: line %u: token longer than %d bytes", name,
			              n + 1, TOKEN_BYTES_MAX);
		}
		wp->text[i] = '\0';
		wp->tok_off[n++] = (uint32_t)start;
		start = i + 1;
	}
	wp->nb_tokens = n;
	return 0;
}

static int
find_special(struct bx_wordpiece *wp, const char *tok, int32_t *id, const char *name,
             struct bx_errbuf *eb)
{
	int r = lookup(wp, tok, strlen(tok));

	if (r < 0) {
		return bx_err(eb, EBADMSG, "%s: vocabulary has no %s token", name, tok);
	}
	*id = r;
	return 0;
}

int
bx_wordpiece_load_mem(const char *text, size_t len, const char *name, struct bx_wordpiece **out,
                      struct bx_errbuf *eb)
{
	struct bx_wordpiece *wp;
	size_t nb_lines = 1, cap = 2;
	int ret = -ENOMEM;

	if (len > (1u << 30)) {
		return bx_err(eb, EFBIG, "%s: vocabulary larger than 1 GiB", name);
	}
	for (size_t i = 0; i < len; i++) {
		nb_lines += text[i] == '\n';
	}
	while (cap < 2 * nb_lines) {
		cap *= 2;
	}
	wp = bx_calloc(1, sizeof(*wp));
	if (wp == NULL) {
		goto out_nomem;
	}
	wp->text = bx_malloc(len + 1);
	wp->tok_off = bx_calloc(nb_lines, sizeof(*wp->tok_off));
	wp->slots = bx_calloc(cap, sizeof(*wp->slots));
	if (wp->text == NULL || wp->tok_off == NULL || wp->slots == NULL) {
		goto out_nomem;
	}
	memcpy(wp->text, text, len);
	wp->text[len] = '\0';
	wp->mask = (uint32_t)cap - 1;
	ret = split_lines(wp, len, name, eb);
	if (ret < 0) {
		goto out_free;
	}
	if (wp->nb_tokens == 0) {
		ret = bx_err(eb, EBADMSG, "%s: empty vocabulary", name);
		goto out_free;
	}
	for (uint32_t i = 0; i < wp->nb_tokens; i++) {
		insert(wp, i);
	}
	if ((ret = find_special(wp, "[UNK]", &wp->unk, name, eb)) < 0 ||
	    (ret = find_special(wp, "[CLS]", &wp->cls, name, eb)) < 0 ||
	    (ret = find_special(wp, "[SEP]", &wp->sep, name, eb)) < 0) {
		goto out_free;
	}
	*out = wp;
	return 0;
out_nomem:
	ret = bx_err(eb, ENOMEM, "%s: out of memory loading the vocabulary", name);
out_free:
	bx_wordpiece_destroy(wp);
	return ret;
}

int
bx_wordpiece_load(const char *path, struct bx_wordpiece **out, struct bx_errbuf *eb)
{
	FILE *fp = fopen(path, "rb");
	char *buf = NULL;
	long size;
	int ret;

	if (fp == NULL) {
		return bx_err(eb, errno, "%s: %s", path, bx_strerror(errno));
	}
	if (fseek(fp, 0, SEEK_END) != 0 || (size = ftell(fp)) < 0 || fseek(fp, 0, SEEK_SET) != 0) {
		ret = bx_err(eb, EIO, "%s: cannot get the file size", path);
		goto out_close;
	}
	if (size > (1l << 30)) {
		ret = bx_err(eb, EFBIG, "%s: vocabulary larger than 1 GiB", path);
		goto out_close;
	}
	buf = bx_malloc((size_t)size + 1);
	if (buf == NULL) {
		ret = bx_err(eb, ENOMEM, "%s: out of memory", path);
		goto out_close;
	}
	if (fread(buf, 1, (size_t)size, fp) != (size_t)size) {
		ret = bx_err(eb, EIO, "%s: short read", path);
		goto out_free;
	}
	ret = bx_wordpiece_load_mem(buf, (size_t)size, path, out, eb);
out_free:
	bx_free(buf);
out_close:
	fclose(fp);
	return ret;
}

/* ---------------------------------------------------------------- */
/* Unicode helpers */

static unsigned
range_find(const struct bx_uc_range *r, unsigned n, uint32_t cp)
{
	unsigned lo = 0, hi = n;

	while (lo < hi) {
		unsigned mid = (lo + hi) / 2;

		if (cp < r[mid].lo) {
			hi = mid;
		} else if (cp > r[mid].hi) {
			lo = mid + 1;
		} else {
			return r[mid].cls;
		}
	}
	return 0;
}

static unsigned
uc_sigma(uint32_t cp)
{
	return range_find(bx_uc_sigma, bx_uc_nb_sigma, cp);
}

static unsigned
uc_class(uint32_t cp)
{
	if (cp < 128) {
		if (cp == 0 || (cp < 32 && cp != '\t' && cp != '\n' && cp != '\r') || cp == 127) {
			return BX_UC_CTRL;
		}
		if (cp == ' ' || cp == '\t' || cp == '\n' || cp == '\r') {
			return BX_UC_SPACE;
		}
		if ((cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) ||
		    (cp >= 123 && cp <= 126)) {
			return BX_UC_PUNCT;
		}
		return BX_UC_OTHER;
	}
	return range_find(bx_uc_ranges, bx_uc_nb_ranges, cp);
}

/* Lowercase + NFD + drop Mn of one code point into f[] (room for 4); returns the count. */
static unsigned
uc_fold(uint32_t cp, uint32_t f[static 18])
{
	unsigned lo = 0, hi = bx_uc_nb_folds;

	if (cp < 128) {
		f[0] = (cp >= 'A' && cp <= 'Z') ? cp + 32 : cp;
		return 1;
	}
	if (cp >= 0xAC00 && cp < 0xAC00 + 11172) { /* Hangul syllable: L V [T] jamo */
		uint32_t s = cp - 0xAC00, t = s % 28;

		f[0] = 0x1100 + s / 588;
		f[1] = 0x1161 + (s % 588) / 28;
		if (t == 0) {
			return 2;
		}
		f[2] = 0x11A7 + t;
		return 3;
	}
	while (lo < hi) {
		unsigned mid = (lo + hi) / 2;
		const struct bx_uc_fold *e = &bx_uc_folds[mid];

		if (cp < e->cp) {
			hi = mid;
		} else if (cp > e->cp) {
			lo = mid + 1;
		} else {
			unsigned n = BX_MIN(e->len, 18u);

			memcpy(f, &bx_uc_fold_pool[e->off], n * sizeof(*f));
			return n;
		}
	}
	f[0] = cp;
	return 1;
}

/* Decode one code point; invalid or truncated sequences give U+FFFD and consume 1 byte. */
static uint32_t
utf8_next(const uint8_t *s, size_t len, size_t *pos)
{
	size_t i = *pos;
	uint32_t c = s[i], min;
	unsigned n;

	if (c < 0x80) {
		*pos = i + 1;
		return c;
	}
	if (c >= 0xC2 && c <= 0xDF) {
		n = 1, c &= 0x1F, min = 0x80;
	} else if (c >= 0xE0 && c <= 0xEF) {
		n = 2, c &= 0x0F, min = 0x800;
	} else if (c >= 0xF0 && c <= 0xF4) {
		n = 3, c &= 0x07, min = 0x10000;
	} else {
		goto bad;
	}
	if (len - i <= n) {
		goto bad;
	}
	for (unsigned k = 1; k <= n; k++) {
		if ((s[i + k] & 0xC0) != 0x80) {
			goto bad;
		}
		c = (c << 6) | (s[i + k] & 0x3F);
	}
	if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) {
		goto bad;
	}
	*pos = i + n + 1;
	return c;
bad:
	*pos = i + 1;
	return 0xFFFD;
}

static unsigned
utf8_put(uint32_t c, char *o)
{
	if (c < 0x80) {
		o[0] = (char)c;
		return 1;
	}
	if (c < 0x800) {
		o[0] = (char)(0xC0 | (c >> 6));
		o[1] = (char)(0x80 | (c & 0x3F));
		return 2;
	}
	if (c < 0x10000) {
		o[0] = (char)(0xE0 | (c >> 12));
		o[1] = (char)(0x80 | ((c >> 6) & 0x3F));
		o[2] = (char)(0x80 | (c & 0x3F));
		return 3;
	}
	o[0] = (char)(0xF0 | (c >> 18));
	o[1] = (char)(0x80 | ((c >> 12) & 0x3F));
	o[2] = (char)(0x80 | ((c >> 6) & 0x3F));
	o[3] = (char)(0x80 | (c & 0x3F));
	return 4;
}

/*
 * Final_Sigma lookahead (Python's str.lower()): is the next character of the
 * same word that is not case-ignorable a cased one? Cleaning drops control
 * characters first, and whitespace or a CJK ideograph ends the word.
 */
static bool
next_cased(const uint8_t *s, size_t len, size_t pos)
{
	while (pos < len) {
		uint32_t cp = utf8_next(s, len, &pos);
		unsigned cls = uc_class(cp), sc;

		if (cls == BX_UC_CTRL) {
			continue;
		}
		if (cls == BX_UC_SPACE || cls == BX_UC_CJK) {
			return false;
		}
		sc = uc_sigma(cp);
		if (sc != BX_UC_SIGMA_IGNORE) {
			return sc == BX_UC_SIGMA_CASED;
		}
	}
	return false;
}

/* ---------------------------------------------------------------- */
/* Encoding */

/* One word being collected: "##" + its UTF-8 bytes, and where each character starts. */
struct word {
	char buf[2 + 4 * BX_WP_MAX_WORD_CHARS + 1];
	uint16_t start[BX_WP_MAX_WORD_CHARS + 1];
	unsigned nb_chars; /* may exceed BX_WP_MAX_WORD_CHARS: then only counted */
	unsigned nb_bytes;
};

struct out {
	int32_t *ids;
	unsigned n, max; /* max: room for pieces */
	bool truncated;
};

static void
emit(struct out *o, int32_t id)
{
	if (o->n < o->max) {
		o->ids[o->n++] = id;
	} else {
		o->truncated = true;
	}
}

/* Greedy longest-match-first WordPiece of the collected word. */
static void
word_flush(const struct bx_wordpiece *wp, struct word *w, struct out *o)
{
	int32_t pieces[BX_WP_MAX_WORD_CHARS];
	unsigned np = 0, s = 0;

	if (w->nb_chars == 0) {
		return;
	}
	if (w->nb_chars > BX_WP_MAX_WORD_CHARS) {
		emit(o, wp->unk);
		goto out;
	}
	w->start[w->nb_chars] = (uint16_t)w->nb_bytes;
	while (s < w->nb_chars) {
		int id = -ENOENT;
		unsigned e;

		for (e = w->nb_chars; e > s; e--) {
			size_t b = w->start[s], len = w->start[e] - b;
			const char *p = w->buf + 2 + b;

			if (s > 0) { /* "##" + rest, in place: the bytes before are overwritten */
				char save0 = p[-2], save1 = p[-1];

				((char *)p)[-2] = '#';
				((char *)p)[-1] = '#';
				id = lookup(wp, p - 2, len + 2);
				((char *)p)[-2] = save0;
				((char *)p)[-1] = save1;
			} else {
				id = lookup(wp, p, len);
			}
			if (id >= 0) {
				break;
			}
		}
		if (id < 0) {
			emit(o, wp->unk);
			goto out;
		}
		pieces[np++] = id;
		s = e;
	}
	for (unsigned i = 0; i < np; i++) {
		emit(o, pieces[i]);
	}
out:
	w->nb_chars = 0;
	w->nb_bytes = 0;
}

static void
word_add(struct word *w, uint32_t cp)
{
	if (w->nb_chars < BX_WP_MAX_WORD_CHARS) {
		w->start[w->nb_chars] = (uint16_t)w->nb_bytes;
		w->nb_bytes += utf8_put(cp, w->buf + 2 + w->nb_bytes);
	}
	w->nb_chars++;
}

/*
 * Fold cp and add the result to the word, punctuation as words of their own.
 * final_sigma: cp is a capital sigma that lowercases to the final form.
 */
static void
add_folded(const struct bx_wordpiece *wp, struct word *w, struct out *o, uint32_t cp,
           bool final_sigma)
{
	uint32_t f[18];
	unsigned n = final_sigma ? (f[0] = 0x3C2, 1) : uc_fold(cp, f);

	for (unsigned i = 0; i < n; i++) {
		if (uc_class(f[i]) == BX_UC_PUNCT) {
			word_flush(wp, w, o);
			word_add(w, f[i]);
			word_flush(wp, w, o);
		} else {
			word_add(w, f[i]);
		}
	}
}

int
bx_wordpiece_encode(const struct bx_wordpiece *wp, const char *text, size_t len, unsigned flags,
                    int32_t *ids, unsigned max_ids, bool *truncated)
{
	bool specials = (flags & BX_WP_SPECIALS) != 0;
	struct out o = { .ids = ids, .max = max_ids };
	const uint8_t *s = (const uint8_t *)text;
	bool prev_cased = false; /* the word's last not case-ignorable character was cased */
	struct word w;
	size_t pos = 0;

	if (specials) {
		if (max_ids < 2) {
			return -EINVAL;
		}
		ids[o.n++] = wp->cls;
		o.max = max_ids - 1;
	}
	w.nb_chars = w.nb_bytes = 0;
	while (pos < len && !o.truncated) {
		uint32_t cp = utf8_next(s, len, &pos);
		unsigned cls = uc_class(cp), sc;

		if (cls == BX_UC_CTRL) {
			continue;
		}
		if (cls == BX_UC_SPACE) {
			word_flush(wp, &w, &o);
			prev_cased = false;
		} else if (cls == BX_UC_CJK) {
			word_flush(wp, &w, &o);
			add_folded(wp, &w, &o, cp, false);
			word_flush(wp, &w, &o);
			prev_cased = false;
		} else {
			add_folded(wp, &w, &o, cp,
			           cp == 0x3A3 && prev_cased && !next_cased(s, len, pos));
			sc = uc_sigma(cp);
			if (sc != BX_UC_SIGMA_IGNORE) {
				prev_cased = sc == BX_UC_SIGMA_CASED;
			}
		}
	}
	word_flush(wp, &w, &o);
	if (specials) {
		ids[o.n++] = wp->sep;
	}
	if (truncated != NULL) {
		*truncated = o.truncated;
	}
	return (int)o.n;
}
