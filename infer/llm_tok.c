/*
 * SentencePiece-style BPE with scores and byte fallback (Llama 2 and
 * llama2.c tokenizer.bin), and a detokenizer that streams valid UTF-8.
 *
 * Pieces are kept with plain spaces: GGUF `llama` vocabularies spell the
 * space U+2581 and are converted when read (and back when written).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "llm_int.h"

#define TOK_STACK 2048 /* bytes of text encoded in a stack buffer (18 KiB) */

static uint32_t
fnv1a(const char *p, size_t len)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < len; i++) {
		h = (h ^ (uint8_t)p[i]) * 16777619u;
	}
	return h;
}

int
llm_vocab_alloc(struct llm_vocab *v, uint32_t n, size_t text_bytes)
{
	memset(v, 0, sizeof(*v));
	v->n = n;
	v->text = bx_malloc(text_bytes + n + 1);
	v->off = bx_calloc(n, sizeof(*v->off));
	v->len = bx_calloc(n, sizeof(*v->len));
	v->score = bx_calloc(n, sizeof(*v->score));
	v->type = bx_calloc(n, sizeof(*v->type));
	for (v->nb_hash = 16; v->nb_hash < 2 * (uint64_t)n; v->nb_hash *= 2) {
	}
	v->hash = bx_malloc(v->nb_hash * sizeof(*v->hash));
	v->bos = v->eos = v->unk = -1;
	if (!v->text || !v->off || !v->len || !v->score || !v->type || !v->hash) {
		llm_vocab_free(v);
		return -ENOMEM;
	}
	return 0;
}

void
llm_vocab_free(struct llm_vocab *v)
{
	bx_free(v->text);
	bx_free(v->off);
	bx_free(v->len);
	bx_free(v->score);
	bx_free(v->type);
	bx_free(v->hash);
	bx_free(v->mkey);
	bx_free(v->mval);
	memset(v, 0, sizeof(*v));
}

int
llm_vocab_set(struct llm_vocab *v, uint32_t i, const char *p, size_t len, float score, int type,
              size_t *text_used)
{
	char *dst = v->text + *text_used;
	size_t n = 0;

	if (len > BX_LLM_PIECE_MAX) {
		return -EBADMSG;
	}
	for (size_t j = 0; j < len; j++) {
		if (!v->bpe && j + 2 < len && (uint8_t)p[j] == 0xe2 && (uint8_t)p[j + 1] == 0x96 &&
		    (uint8_t)p[j + 2] == 0x81) {
			dst[n++] = ' ';
			j += 2;
		} else {
			dst[n++] = p[j];
		}
	}
	dst[n] = 0;
	v->off[i] = (uint32_t)*text_used;
	v->len[i] = (uint16_t)n;
	v->score[i] = score;
	v->type[i] = (uint8_t)type;
	*text_used += n + 1;
	return 0;
}

int32_t
llm_vocab_find(const struct llm_vocab *v, const char *p, size_t len)
{
	uint32_t mask = v->nb_hash - 1;

	for (uint32_t h = fnv1a(p, len) & mask;; h = (h + 1) & mask) {
		int32_t id = v->hash[h];

		if (id < 0) {
			return -1;
		}
		if (v->len[id] == len && !memcmp(v->text + v->off[id], p, len)) {
			return id;
		}
	}
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9') {
		return c - '0';
	}
	if (c >= 'A' && c <= 'F') {
		return c - 'A' + 10;
	}
	if (c >= 'a' && c <= 'f') {
		return c - 'a' + 10;
	}
	return -1;
}

/* Byte pieces are spelled <0xXX>; llama2.c files carry no types, so they are found by name. */
static int
byte_piece(const char *p, size_t len)
{
	if (len != 6 || memcmp(p, "<0x", 3) != 0 || p[5] != '>' || hexval(p[3]) < 0 ||
	    hexval(p[4]) < 0) {
		return -1;
	}
	return hexval(p[3]) * 16 + hexval(p[4]);
}

/* Build the lookup table and the byte map. The first of duplicate pieces wins. */
int
llm_vocab_index(struct llm_vocab *v, const char *name, struct bx_errbuf *eb)
{
	uint32_t mask = v->nb_hash - 1;

	memset(v->hash, 0xff, v->nb_hash * sizeof(*v->hash));
	for (int b = 0; b < 256; b++) {
		v->byte[b] = -1;
	}
	for (uint32_t i = 0; i < v->n; i++) {
		const char *p = v->text + v->off[i];
		int b = byte_piece(p, v->len[i]);

		if (v->len[i] > v->len_max) {
			v->len_max = v->len[i];
		}
		if (b >= 0 && v->byte[b] < 0 &&
		    (v->type[i] == LLM_TOK_BYTE || v->type[i] == LLM_TOK_NORMAL)) {
			v->byte[b] = (int32_t)i;
			v->type[i] = LLM_TOK_BYTE;
		}
		if (llm_vocab_find(v, p, v->len[i]) >= 0) {
			continue;
		}
		for (uint32_t h = fnv1a(p, v->len[i]) & mask;; h = (h + 1) & mask) {
			if (v->hash[h] < 0) {
				v->hash[h] = (int32_t)i;
				break;
			}
		}
	}
	if (v->bos >= (int32_t)v->n || v->eos >= (int32_t)v->n || v->unk >= (int32_t)v->n) {
		return bx_err(eb, EBADMSG, "%s: BOS/EOS/UNK token id past the vocabulary (%u)",
		              name, v->n);
	}
	return 0;
}

int32_t
bx_llm_bos(const struct bx_llm_model *m)
{
	return m->vocab.bos;
}

int32_t
bx_llm_eos(const struct bx_llm_model *m)
{
	return m->vocab.eos;
}

/* Length of the valid UTF-8 sequence at p (1..4), or 0 if the bytes are not one. */
static size_t
utf8_len(const uint8_t *p, size_t avail)
{
	size_t n;
	uint8_t lo = 0x80, hi = 0xbf;

	if (p[0] < 0x80) {
		return 1;
	}
	if (p[0] >= 0xc2 && p[0] <= 0xdf) {
		n = 2;
	} else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		n = 3;
		lo = p[0] == 0xe0 ? 0xa0 : 0x80;
		hi = p[0] == 0xed ? 0x9f : 0xbf;
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		n = 4;
		lo = p[0] == 0xf0 ? 0x90 : 0x80;
		hi = p[0] == 0xf4 ? 0x8f : 0xbf;
	} else {
		return 0;
	}
	if (avail < n || p[1] < lo || p[1] > hi) {
		return 0;
	}
	for (size_t i = 2; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80) {
			return 0;
		}
	}
	return n;
}

/* Code points to ids, bytes falling back to <0xXX> (or <unk> when the vocabulary has none). */
static size_t
tok_initial(const struct llm_vocab *v, const char *text, size_t len, int32_t *ids, size_t k)
{
	int32_t sp = llm_vocab_find(v, " ", 1);

	if (len && sp >= 0) {
		ids[k++] = sp;
	}
	for (size_t i = 0; i < len;) {
		size_t n = utf8_len((const uint8_t *)text + i, len - i);
		int32_t id = n ? llm_vocab_find(v, text + i, n) : -1;

		if (id >= 0 && v->type[id] != LLM_TOK_CONTROL) {
			ids[k++] = id;
			i += n;
			continue;
		}
		for (size_t j = 0; j < (n ? n : 1); j++) {
			int32_t b = v->byte[(uint8_t)text[i + j]];

			ids[k++] = b >= 0 ? b : v->unk;
		}
		i += n ? n : 1;
	}
	return k;
}

/* Score and id of merging ids[i] and ids[i + 1], or -1. */
static int32_t
pair_merge(const struct llm_vocab *v, const int32_t *ids, size_t i, char *buf)
{
	int32_t a = ids[i], b = ids[i + 1];
	int32_t id;

	if (a < 0 || b < 0 || v->type[a] == LLM_TOK_BYTE || v->type[b] == LLM_TOK_BYTE) {
		return -1;
	}
	memcpy(buf, v->text + v->off[a], v->len[a]);
	memcpy(buf + v->len[a], v->text + v->off[b], v->len[b]);
	id = llm_vocab_find(v, buf, (size_t)v->len[a] + v->len[b]);
	if (id >= 0 && (v->type[id] == LLM_TOK_CONTROL || v->type[id] == LLM_TOK_UNUSED)) {
		return -1;
	}
	return id;
}

/* Merge the best-scoring adjacent pair (leftmost on ties) until none is left. */
static size_t
tok_merge(const struct llm_vocab *v, int32_t *ids, size_t k0, size_t n, int32_t *pair)
{
	char buf[2 * BX_LLM_PIECE_MAX];

	for (size_t i = k0; i + 1 < n; i++) {
		pair[i] = pair_merge(v, ids, i, buf);
	}
	for (;;) {
		size_t best = SIZE_MAX;
		float best_score = 0;

		for (size_t i = k0; i + 1 < n; i++) {
			if (pair[i] >= 0 && (best == SIZE_MAX || v->score[pair[i]] > best_score)) {
				best = i;
				best_score = v->score[pair[i]];
			}
		}
		if (best == SIZE_MAX) {
			return n;
		}
		ids[best] = pair[best];
		memmove(ids + best + 1, ids + best + 2, (n - best - 2) * sizeof(*ids));
		memmove(pair + best + 1, pair + best + 2, (n - best - 2) * sizeof(*pair));
		n--;
		if (best > k0) {
			pair[best - 1] = pair_merge(v, ids, best - 1, buf);
		}
		if (best + 1 < n) {
			pair[best] = pair_merge(v, ids, best, buf);
		}
	}
}

int
bx_llm_tokenize(const struct bx_llm_model *m, const char *text, size_t len, bool bos, int32_t *ids,
                size_t cap, size_t *n)
{
	const struct llm_vocab *v = &m->vocab;
	size_t k0 = 0, k, need = len + 2;
	int32_t stack[2 * (TOK_STACK + 2)], *work = stack, *pair;

	if (!v->n) {
		return -ENOTSUP;
	}
	/* prompts up to TOK_STACK bytes are encoded without allocating */
	if (len > TOK_STACK) {
		work = malloc(2 * need * sizeof(*work));
		if (!work) {
			return -ENOMEM;
		}
	}
	pair = work + need;
	if (bos && v->bos >= 0) {
		work[k0++] = v->bos;
	}
	if (v->bpe) {
		k = llm_bpe_encode(v, text, len, work, k0);
	} else {
		k = tok_initial(v, text, len, work, k0);
		k = tok_merge(v, work, k0, k, pair);
	}
	*n = k;
	if (k <= cap) {
		memcpy(ids, work, k * sizeof(*ids));
	}
	if (work != stack) {
		free(work);
	}
	return k <= cap ? 0 : -ENOBUFS;
}

void
bx_llm_detok_init(struct bx_llm_detok *d)
{
	memset(d, 0, sizeof(*d));
	d->at_start = true;
}

static size_t
put_fffd(char *out)
{
	out[0] = (char)0xef; /* U+FFFD */
	out[1] = (char)0xbf;
	out[2] = (char)0xbd;
	return 3;
}

/* Feed one byte through the UTF-8 assembler. */
static size_t
detok_byte(struct bx_llm_detok *d, uint8_t c, char *out)
{
	size_t k = 0;

	if (d->nb_pend) {
		uint8_t tmp[4];
		size_t want;

		memcpy(tmp, d->pend, d->nb_pend);
		tmp[d->nb_pend] = c;
		want = d->pend[0] >= 0xf0 ? 4 : d->pend[0] >= 0xe0 ? 3 : 2;
		/* Is pend + c still a prefix of a valid sequence? Pad and check. */
		{
			uint8_t full[4] = { 0x80, 0x80, 0x80, 0x80 };

			memcpy(full, tmp, d->nb_pend + 1u);
			if (utf8_len(full, want) == want) {
				d->pend[d->nb_pend++] = c;
				if (d->nb_pend == want) {
					memcpy(out, d->pend, want);
					d->nb_pend = 0;
					return want;
				}
				return 0;
			}
		}
		k += put_fffd(out);
		d->nb_pend = 0;
	}
	if (c < 0x80) {
		out[k++] = (char)c;
	} else if ((c >= 0xc2 && c <= 0xf4)) {
		d->pend[d->nb_pend++] = c;
	} else {
		k += put_fffd(out + k);
	}
	return k;
}

size_t
bx_llm_detok_push(const struct bx_llm_model *m, struct bx_llm_detok *d, int32_t id, char *out)
{
	const struct llm_vocab *v = &m->vocab;
	const char *p;
	size_t n, k = 0;

	if (id < 0 || (uint32_t)id >= v->n) {
		return 0;
	}
	if (id == v->bos) {
		d->at_start = true;
		return 0;
	}
	if (v->type[id] == LLM_TOK_CONTROL || v->type[id] == LLM_TOK_UNKNOWN ||
	    v->type[id] == LLM_TOK_UNUSED) {
		return 0;
	}
	if (v->type[id] == LLM_TOK_BYTE) {
		d->at_start = false;
		return detok_byte(d, (uint8_t)byte_piece(v->text + v->off[id], v->len[id]), out);
	}
	p = v->text + v->off[id];
	n = v->len[id];
	if (d->at_start && n && p[0] == ' ' && !v->bpe) { /* SentencePiece's dummy prefix */
		p++;
		n--;
	}
	d->at_start = false;
	for (size_t i = 0; i < n; i++) {
		k += detok_byte(d, (uint8_t)p[i], out + k);
	}
	return k;
}

size_t
bx_llm_detok_flush(struct bx_llm_detok *d, char *out)
{
	if (!d->nb_pend) {
		return 0;
	}
	d->nb_pend = 0;
	return put_fffd(out);
}
