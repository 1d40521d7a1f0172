/*
 * Metagraph snapshots: loaded from a JSON file (written by a sidecar or
 * btcli), immutable once built, looked up by SS58 hotkey in an open-addressed
 * table. The server swaps whole snapshots (server.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bx/crypto.h>
#include <bx/dataplane.h>

#include "json.h"
#include "metagraph_int.h"

static uint64_t
hash_key(const char *s, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < n; i++) {
		h ^= (uint8_t)s[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

const struct bx_mg_neuron *
bx_metagraph_find(const struct bx_metagraph *mg, const char *hotkey, size_t len)
{
	uint32_t i;

	if (!mg || mg->nb == 0 || len >= sizeof(mg->n[0].hotkey)) {
		return NULL;
	}
	for (i = (uint32_t)hash_key(hotkey, len) & mg->mask;; i = (i + 1) & mg->mask) {
		int32_t k = mg->slots[i];

		if (k < 0) {
			return NULL;
		}
		if (strncmp(mg->n[k].hotkey, hotkey, len) == 0 && mg->n[k].hotkey[len] == 0) {
			return &mg->n[k];
		}
	}
}

unsigned
bx_metagraph_size(const struct bx_metagraph *mg)
{
	return mg ? mg->nb : 0;
}

int64_t
bx_metagraph_block(const struct bx_metagraph *mg)
{
	return mg ? mg->block : -1;
}

void
bx_metagraph_free(struct bx_metagraph *mg)
{
	if (!mg) {
		return;
	}
	bx_free(mg->slots);
	bx_free(mg->n);
	bx_free(mg);
}

static int
copy_str(const struct bx_json *j, int t, char *out, size_t cap)
{
	long n;

	if (t < 0 || j->toks[t].type != BX_J_STRING) {
		return -EINVAL;
	}
	n = bx_json_str_copy(j, t, out, cap - 1);
	if (n < 0) {
		return -EINVAL;
	}
	out[n] = 0;
	return 0;
}

static int
parse_neuron(const struct bx_json *j, int o, struct bx_mg_neuron *nr, unsigned idx,
             const char *name, struct bx_errbuf *eb)
{
	int v;
	int64_t uid;
	double stake = 0;

	memset(nr, 0, sizeof(*nr));
	if (j->toks[o].type != BX_J_OBJECT) {
		return bx_err(eb, EINVAL, "%s: neuron %u is not an object", name, idx);
	}
	v = bx_json_get(j, o, "uid", 3);
	if (v < 0 || bx_json_int64(j, v, &uid) < 0 || uid < 0 || uid > UINT32_MAX) {
		return bx_err(eb, EINVAL, "%s: neuron %u: missing or bad \"uid\"", name, idx);
	}
	nr->uid = (uint32_t)uid;
	v = bx_json_get(j, o, "hotkey", 6);
	if (copy_str(j, v, nr->hotkey, sizeof(nr->hotkey)) < 0 ||
	    bx_ss58_decode(nr->hotkey, strlen(nr->hotkey), nr->hotkey_pub, NULL, NULL) < 0) {
		return bx_err(eb, EINVAL, "%s: neuron uid %u: missing or bad SS58 \"hotkey\"", name,
		              nr->uid);
	}
	v = bx_json_get(j, o, "coldkey", 7);
	if (v >= 0 && j->toks[v].type != BX_J_NULL &&
	    copy_str(j, v, nr->coldkey, sizeof(nr->coldkey)) < 0) {
		return bx_err(eb, EINVAL, "%s: neuron uid %u: bad \"coldkey\"", name, nr->uid);
	}
	v = bx_json_get(j, o, "ip", 2);
	if (v >= 0 && j->toks[v].type != BX_J_NULL && copy_str(j, v, nr->ip, sizeof(nr->ip)) < 0) {
		return bx_err(eb, EINVAL, "%s: neuron uid %u: bad \"ip\"", name, nr->uid);
	}
	v = bx_json_get(j, o, "stake", 5);
	if (v >= 0 && (bx_json_double(j, v, &stake) < 0 || !(stake >= 0))) {
		return bx_err(eb, EINVAL, "%s: neuron uid %u: bad \"stake\"", name, nr->uid);
	}
	nr->stake = stake;
	v = bx_json_get(j, o, "validator_permit", 16);
	if (v >= 0) {
		if (j->toks[v].type != BX_J_TRUE && j->toks[v].type != BX_J_FALSE) {
			return bx_err(eb, EINVAL,
			              "%s: neuron uid %u: \"validator_permit\" not a bool", name,
			              nr->uid);
		}
		nr->validator_permit = j->toks[v].type == BX_J_TRUE;
	}
	return 0;
}

int
bx_metagraph_parse(const char *text, size_t len, const char *name, struct bx_metagraph **out,
                   struct bx_errbuf *eb)
{
	struct bx_json j;
	struct bx_jtok *toks;
	struct bx_metagraph *mg = NULL;
	uint32_t cap = (uint32_t)BX_MIN(len / 2 + 16, (size_t)UINT32_MAX / 2);
	int r, arr, c;
	unsigned nb, size;

	toks = bx_malloc(sizeof(*toks) * cap);
	if (!toks) {
		return -ENOMEM;
	}
	r = bx_json_parse(&j, text, len, toks, cap, 8);
	if (r < 0) {
		r = bx_err(eb, EINVAL, "%s: not valid JSON", name);
		goto out;
	}
	mg = bx_calloc(1, sizeof(*mg));
	if (!mg) {
		r = -ENOMEM;
		goto out;
	}
	mg->block = -1;
	arr = 0;
	if (j.toks[0].type == BX_J_OBJECT) {
		int v = bx_json_get(&j, 0, "block", 5);

		if (v >= 0 && bx_json_int64(&j, v, &mg->block) < 0) {
			r = bx_err(eb, EINVAL, "%s: bad \"block\"", name);
			goto out;
		}
		arr = bx_json_get(&j, 0, "neurons", 7);
	}
	if (arr < 0 || j.toks[arr].type != BX_J_ARRAY) {
		r = bx_err(eb, EINVAL, "%s: expected an array of neurons or {\"neurons\": [...]}",
		           name);
		goto out;
	}
	nb = j.toks[arr].nb;
	for (size = 16; size < nb * 2; size <<= 1) {
		;
	}
	mg->n = bx_calloc(nb ? nb : 1, sizeof(*mg->n));
	mg->slots = bx_malloc(sizeof(*mg->slots) * size);
	if (!mg->n || !mg->slots) {
		r = -ENOMEM;
		goto out;
	}
	memset(mg->slots, 0xff, sizeof(*mg->slots) * size);
	mg->mask = size - 1;
	for (c = bx_json_child(&j, arr); c >= 0 && c < (int)j.toks[arr].next;
	     c = bx_json_next(&j, c)) {
		struct bx_mg_neuron *nr = &mg->n[mg->nb];
		size_t kl;
		uint32_t i;

		r = parse_neuron(&j, c, nr, mg->nb, name, eb);
		if (r < 0) {
			goto out;
		}
		kl = strlen(nr->hotkey);
		if (bx_metagraph_find(mg, nr->hotkey, kl)) {
			r = bx_err(eb, EINVAL, "%s: hotkey %s appears twice", name, nr->hotkey);
			goto out;
		}
		for (i = (uint32_t)hash_key(nr->hotkey, kl) & mg->mask; mg->slots[i] >= 0;
		     i = (i + 1) & mg->mask) {
			;
		}
		mg->slots[i] = (int32_t)mg->nb;
		mg->nb++;
	}
	*out = mg;
	mg = NULL;
	r = 0;
out:
	bx_metagraph_free(mg);
	bx_free(toks);
	return r;
}

int
bx_metagraph_load(const char *path, struct bx_metagraph **out, struct bx_errbuf *eb)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;
	int r;

	if (!f) {
		return bx_err(eb, errno, "%s: %s", path, bx_strerror(errno));
	}
	if (fseek(f, 0, SEEK_END) < 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) < 0) {
		fclose(f);
		return bx_err(eb, EIO, "%s: cannot read", path);
	}
	if (n > 256L << 20) {
		fclose(f);
		return bx_err(eb, EFBIG, "%s: larger than 256 MiB", path);
	}
	buf = bx_malloc((size_t)n + 1);
	if (!buf) {
		fclose(f);
		return -ENOMEM;
	}
	if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
		fclose(f);
		bx_free(buf);
		return bx_err(eb, EIO, "%s: short read", path);
	}
	fclose(f);
	r = bx_metagraph_parse(buf, (size_t)n, path, out, eb);
	bx_free(buf);
	return r;
}
