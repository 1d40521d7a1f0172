/*
 * Byte-level BPE with merges (tokenizer.ggml.model = gpt2): GPT-2's
 * pre-tokenizer regex (or Llama 3's when tokenizer.ggml.pre says so),
 * then each pre-token's bytes merged pair by pair, lowest merge rank first.
 *
 * Vocabularies spell bytes through GPT-2's bytes_to_unicode map (0x20 is
 * U+0120 'Ġ'); they are mapped back to raw bytes when read, so merges
 * become pairs of token ids and detokenizing is byte concatenation.
 *
 *   gpt2:   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 *   llama3: (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
 *           ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "llm_int.h"

/* ---- GPT-2's byte <-> code point map ---- */

static bool
printable_byte(unsigned b)
{
	return (b >= '!' && b <= '~') || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
}

/* The byte a code point stands for, or -1. */
static int
unmap_cp(uint32_t cp)
{
	unsigned n = 0;

	if (cp < 256 && printable_byte(cp)) {
		return (int)cp;
	}
	for (unsigned b = 0; b < 256; b++) {
		if (!printable_byte(b)) {
			if (cp == 256 + n) {
				return (int)b;
			}
			n++;
		}
	}
	return -1;
}

/* Decode one UTF-8 sequence (any lead byte, lax): returns its length, *cp the value. */
static size_t
utf8_cp(const uint8_t *p, size_t avail, uint32_t *cp)
{
	size_t n = p[0] < 0x80 ? 1 : p[0] >= 0xf0 ? 4 : p[0] >= 0xe0 ? 3 : p[0] >= 0xc0 ? 2 : 1;

	if (n > avail) {
		n = 1;
	}
	*cp = n == 1 ? p[0] : (uint32_t)(p[0] & (0x7f >> n));
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80) {
			*cp = p[0];
			return 1;
		}
		*cp = (*cp << 6) | (p[i] & 0x3f);
	}
	return n;
}

/* A piece in mapped form to raw bytes (in place is fine: raw is never longer). */
size_t
llm_bpe_unmap(const char *in, size_t len, char *out)
{
	size_t k = 0;

	for (size_t i = 0; i < len;) {
		uint32_t cp;
		size_t n = utf8_cp((const uint8_t *)in + i, len - i, &cp);
		int b = unmap_cp(cp);

		if (b < 0) {
			memmove(out + k, in + i, n); /* not a mapped byte: keep as is */
			k += n;
		} else {
			out[k++] = (char)b;
		}
		i += n;
	}
	return k;
}

/* ---- classes ---- */

enum {
	UC_OTHER,
	UC_LETTER,
	UC_NUMBER,
	UC_SPACE
};

static int
uc_class(uint32_t cp)
{
	unsigned lo = 0, hi = llm_uc_nb_ranges;

	while (lo < hi) {
		unsigned mid = (lo + hi) / 2;

		if (cp < llm_uc_ranges[mid].lo) {
			hi = mid;
		} else if (cp > llm_uc_ranges[mid].hi) {
			lo = mid + 1;
		} else {
			return llm_uc_ranges[mid].cls;
		}
	}
	return UC_OTHER;
}

struct cur {
	const uint8_t *p;
	size_t len;
};

/* Class and length of the code point at byte i (past the end: UC_OTHER, 0). */
static int
at(const struct cur *c, size_t i, size_t *n)
{
	uint32_t cp;

	if (i >= c->len) {
		*n = 0;
		return -1;
	}
	*n = utf8_cp(c->p + i, c->len - i, &cp);
	return uc_class(cp);
}

static size_t
run_of(const struct cur *c, size_t i, int cls, unsigned max)
{
	size_t n, j = i;

	for (unsigned k = 0; k < max && at(c, j, &n) == cls; k++) {
		j += n;
	}
	return j - i;
}

/* [^\s\p{L}\p{N}]+ */
static size_t
run_other(const struct cur *c, size_t i)
{
	size_t n, j = i;

	while (at(c, j, &n) == UC_OTHER) {
		j += n;
	}
	return j - i;
}

static size_t
contraction(const struct cur *c, size_t i, bool icase)
{
	static const char *const forms[] = { "'s", "'t", "'re", "'ve", "'m", "'ll", "'d" };

	for (unsigned k = 0; k < BX_ARRAY_SIZE(forms); k++) {
		size_t n = strlen(forms[k]);

		if (i + n <= c->len && (icase ? !strncasecmp((const char *)c->p + i, forms[k], n) :
		                                !memcmp(c->p + i, forms[k], n))) {
			return n;
		}
	}
	return 0;
}

/* \s+(?!\S) then \s+: a run of spaces, less its last one when a non-space follows. */
static size_t
spaces(const struct cur *c, size_t i)
{
	size_t n, j = i, last = 0;

	while (at(c, j, &n) == UC_SPACE) {
		last = n;
		j += n;
	}
	if (j < c->len && j - i > last) {
		return j - i - last;
	}
	return j - i;
}

static bool
is_crlf(const struct cur *c, size_t i)
{
	return i < c->len && (c->p[i] == '\r' || c->p[i] == '\n');
}

static size_t
next_gpt2(const struct cur *c, size_t i)
{
	size_t n, k = contraction(c, i, false), sp = 0;
	int cls;

	if (k) {
		return k;
	}
	if (c->p[i] == ' ' && i + 1 < c->len) {
		sp = 1;
	}
	cls = at(c, i + sp, &n);
	if (sp && cls == UC_SPACE) {
		sp = 0;
		cls = UC_SPACE;
	}
	if (cls == UC_LETTER || cls == UC_NUMBER) {
		return sp + run_of(c, i + sp, cls, ~0u);
	}
	if (cls == UC_OTHER) {
		return sp + run_other(c, i + sp);
	}
	return spaces(c, i);
}

static size_t
next_llama3(const struct cur *c, size_t i)
{
	size_t n, k = contraction(c, i, true), m;
	int cls = at(c, i, &n);

	if (k) {
		return k;
	}
	/* [^\r\n\p{L}\p{N}]?\p{L}+ */
	if (cls == UC_LETTER) {
		return run_of(c, i, UC_LETTER, ~0u);
	}
	if (!is_crlf(c, i) && cls != UC_NUMBER && (m = run_of(c, i + n, UC_LETTER, ~0u))) {
		return n + m;
	}
	if (cls == UC_NUMBER) {
		return run_of(c, i, UC_NUMBER, 3);
	}
	/* ' '?[^\s\p{L}\p{N}]+[\r\n]* */
	k = c->p[i] == ' ' ? 1 : 0;
	if ((m = run_other(c, i + k))) {
		k += m;
		while (is_crlf(c, i + k)) {
			k++;
		}
		return k;
	}
	/* \s*[\r\n]+ : spaces ending in the last newline of the run */
	{
		size_t j = i, end = 0;

		while (at(c, j, &n) == UC_SPACE) {
			j += n;
			if (is_crlf(c, j - 1)) {
				end = j;
			}
		}
		if (end) {
			return end - i;
		}
	}
	return spaces(c, i);
}

/* ---- merges ---- */

static uint64_t
mix(uint64_t k)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdull;
	return k ^ (k >> 33);
}

int
llm_bpe_merges_alloc(struct llm_vocab *v, uint64_t n)
{
	for (v->nb_mhash = 16; v->nb_mhash < 2 * n; v->nb_mhash *= 2) {
	}
	v->mkey = bx_malloc(v->nb_mhash * sizeof(*v->mkey));
	v->mval = bx_malloc(v->nb_mhash * sizeof(*v->mval));
	if (!v->mkey || !v->mval) {
		return -ENOMEM;
	}
	memset(v->mkey, 0xff, v->nb_mhash * sizeof(*v->mkey));
	return 0;
}

/* Record merge (a, b) -> id with rank; the first of duplicates wins. */
void
llm_bpe_merge_add(struct llm_vocab *v, int32_t a, int32_t b, int32_t id, uint32_t rank)
{
	uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
	uint32_t mask = v->nb_mhash - 1;

	for (uint32_t h = (uint32_t)mix(key) & mask;; h = (h + 1) & mask) {
		if (v->mkey[h] == key) {
			return;
		}
		if (v->mkey[h] == UINT64_MAX) {
			v->mkey[h] = key;
			v->mval[h] = (uint64_t)rank << 32 | (uint32_t)id;
			return;
		}
	}
}

static bool
merge_find(const struct llm_vocab *v, int32_t a, int32_t b, uint32_t *rank, int32_t *id)
{
	uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
	uint32_t mask = v->nb_mhash - 1;

	if (a < 0 || b < 0 || !v->nb_mhash) {
		return false;
	}
	for (uint32_t h = (uint32_t)mix(key) & mask;; h = (h + 1) & mask) {
		if (v->mkey[h] == UINT64_MAX) {
			return false;
		}
		if (v->mkey[h] == key) {
			*rank = (uint32_t)(v->mval[h] >> 32);
			*id = (int32_t)(uint32_t)v->mval[h];
			return true;
		}
	}
}

/* One pre-token: its bytes as single-byte tokens, then merges by rank. */
static size_t
bpe_word(const struct llm_vocab *v, const uint8_t *p, size_t n, int32_t *ids)
{
	size_t k = n;

	for (size_t i = 0; i < n; i++) {
		char c = (char)p[i];
		int32_t id = llm_vocab_find(v, &c, 1);

		ids[i] = id >= 0 ? id : v->unk;
	}
	for (;;) {
		uint32_t best_rank = UINT32_MAX, r;
		size_t best = SIZE_MAX;
		int32_t best_id = -1, id;

		for (size_t i = 0; i + 1 < k; i++) {
			if (merge_find(v, ids[i], ids[i + 1], &r, &id) && r < best_rank) {
				best_rank = r;
				best = i;
				best_id = id;
			}
		}
		if (best == SIZE_MAX) {
			return k;
		}
		ids[best] = best_id;
		memmove(ids + best + 1, ids + best + 2, (k - best - 2) * sizeof(*ids));
		k--;
	}
}

size_t
llm_bpe_pretok(const struct llm_vocab *v, const char *text, size_t len, size_t i)
{
	struct cur c = { (const uint8_t *)text, len };
	size_t n = v->pre_llama3 ? next_llama3(&c, i) : next_gpt2(&c, i);

	return n ? n : 1; /* cannot be 0 with the rules above; never loop */
}

/* Encode text after the optional BOS already in ids[0..k0). Returns the count. */
size_t
llm_bpe_encode(const struct llm_vocab *v, const char *text, size_t len, int32_t *ids, size_t k0)
{
	struct cur c = { (const uint8_t *)text, len };
	size_t k = k0;

	for (size_t i = 0; i < len;) {
		size_t n = llm_bpe_pretok(v, text, len, i);

		k += bpe_word(v, c.p + i, n, ids + k);
		i += n;
	}
	return k;
}
