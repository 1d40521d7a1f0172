/*
 * STROBE-128 (the subset Merlin uses) and Merlin transcripts, byte-exact
 * with merlin's src/strobe.rs and src/transcript.rs (sr25519.md §1.2-1.3).
 */
#include <string.h>

#include <sodium.h>

#include "crypto_int.h"

#define STROBE_R 166

enum {
	FLAG_I = 0x01,
	FLAG_A = 0x02,
	FLAG_C = 0x04,
	FLAG_T = 0x08,
	FLAG_M = 0x10,
	FLAG_K = 0x20,
};

static void
strobe_run_f(struct bx_strobe *s)
{
	s->st[s->pos] ^= s->pos_begin;
	s->st[s->pos + 1] ^= 0x04;
	s->st[STROBE_R + 1] ^= 0x80;
	bx_keccak_f1600(s->st);
	s->pos = 0;
	s->pos_begin = 0;
}

static void
strobe_absorb(struct bx_strobe *s, const uint8_t *data, size_t len)
{
	while (len > 0) {
		size_t n = STROBE_R - s->pos;
		if (n > len) {
			n = len;
		}
		uint8_t *st = s->st + s->pos;
		for (size_t i = 0; i < n; i++) {
			st[i] ^= data[i];
		}
		s->pos = (uint8_t)(s->pos + n);
		data += n;
		len -= n;
		if (s->pos == STROBE_R) {
			strobe_run_f(s);
		}
	}
}

static void
strobe_overwrite(struct bx_strobe *s, const uint8_t *data, size_t len)
{
	while (len > 0) {
		size_t n = STROBE_R - s->pos;
		if (n > len) {
			n = len;
		}
		memcpy(s->st + s->pos, data, n);
		s->pos = (uint8_t)(s->pos + n);
		data += n;
		len -= n;
		if (s->pos == STROBE_R) {
			strobe_run_f(s);
		}
	}
}

static void
strobe_squeeze(struct bx_strobe *s, uint8_t *out, size_t len)
{
	while (len > 0) {
		size_t n = STROBE_R - s->pos;
		if (n > len) {
			n = len;
		}
		memcpy(out, s->st + s->pos, n);
		memset(s->st + s->pos, 0, n);
		s->pos = (uint8_t)(s->pos + n);
		out += n;
		len -= n;
		if (s->pos == STROBE_R) {
			strobe_run_f(s);
		}
	}
}

static void
strobe_begin_op(struct bx_strobe *s, uint8_t flags, bool more)
{
	if (more) {
		/* continuing the same operation: merlin asserts flags == cur_flags */
		return;
	}
	uint8_t old = s->pos_begin;
	s->pos_begin = (uint8_t)(s->pos + 1);
	s->cur_flags = flags;
	uint8_t hdr[2] = { old, flags };
	strobe_absorb(s, hdr, 2);
	if ((flags & (FLAG_C | FLAG_K)) && s->pos != 0) {
		strobe_run_f(s);
	}
}

void
bx_strobe_init(struct bx_strobe *s, const void *label, size_t len)
{
	static const uint8_t hdr[18] = { 1,   STROBE_R + 2, 1,   0,   1,   96,  'S', 'T', 'R',
		                         'O', 'B',          'E', 'v', '1', '.', '0', '.', '2' };

	memset(s, 0, sizeof(*s));
	memcpy(s->st, hdr, sizeof(hdr));
	bx_keccak_f1600(s->st);
	bx_strobe_meta_ad(s, label, len, false);
}

void
bx_strobe_meta_ad(struct bx_strobe *s, const void *data, size_t len, bool more)
{
	strobe_begin_op(s, FLAG_M | FLAG_A, more);
	strobe_absorb(s, data, len);
}

void
bx_strobe_ad(struct bx_strobe *s, const void *data, size_t len, bool more)
{
	strobe_begin_op(s, FLAG_A, more);
	strobe_absorb(s, data, len);
}

void
bx_strobe_prf(struct bx_strobe *s, void *out, size_t len, bool more)
{
	strobe_begin_op(s, FLAG_I | FLAG_A | FLAG_C, more);
	strobe_squeeze(s, out, len);
}

void
bx_strobe_key(struct bx_strobe *s, const void *data, size_t len, bool more)
{
	strobe_begin_op(s, FLAG_A | FLAG_C, more);
	strobe_overwrite(s, data, len);
}

static void
le32(uint8_t out[4], size_t v)
{
	out[0] = (uint8_t)v;
	out[1] = (uint8_t)(v >> 8);
	out[2] = (uint8_t)(v >> 16);
	out[3] = (uint8_t)(v >> 24);
}

void
bx_transcript_init(struct bx_transcript *t, const char *label)
{
	bx_strobe_init(&t->strobe, "Merlin v1.0", 11);
	bx_transcript_append(t, "dom-sep", label, strlen(label));
}

/* Merlin frames every operation with its label and the 32-bit length of its data. */
static void
frame(struct bx_strobe *s, const char *label, size_t len)
{
	uint8_t l[4];

	le32(l, len);
	bx_strobe_meta_ad(s, label, strlen(label), false);
	bx_strobe_meta_ad(s, l, 4, true);
}

void
bx_transcript_append(struct bx_transcript *t, const char *label, const void *msg, size_t len)
{
	frame(&t->strobe, label, len);
	bx_strobe_ad(&t->strobe, msg, len, false);
}

void
bx_transcript_challenge(struct bx_transcript *t, const char *label, void *out, size_t n)
{
	frame(&t->strobe, label, n);
	bx_strobe_prf(&t->strobe, out, n, false);
}

void
bx_transcript_rng_begin(struct bx_transcript_rng *r, const struct bx_transcript *t)
{
	r->strobe = t->strobe;
}

void
bx_transcript_rng_witness(struct bx_transcript_rng *r, const char *label, const void *w, size_t len)
{
	frame(&r->strobe, label, len);
	bx_strobe_key(&r->strobe, w, len, false);
}

void
bx_transcript_rng_finalize(struct bx_transcript_rng *r, const uint8_t rnd[32])
{
	bx_strobe_meta_ad(&r->strobe, "rng", 3, false);
	bx_strobe_key(&r->strobe, rnd, 32, false);
}

void
bx_transcript_rng_fill(struct bx_transcript_rng *r, void *out, size_t n)
{
	uint8_t l[4];

	le32(l, n);
	bx_strobe_meta_ad(&r->strobe, l, 4, false);
	bx_strobe_prf(&r->strobe, out, n, false);
}
