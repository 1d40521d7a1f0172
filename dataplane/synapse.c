/*
 * The synapse table. The Python classes a validator would use for these
 * types are in dataplane/README.md; field order and defaults here must
 * match them, because the response echoes fields in this order and the body
 * hash uses the defaults of absent fields.
 */
#include "synapse.h"

#include <errno.h>
#include <string.h>

#include <bx/crypto.h>
#include <bx/dataplane.h>

#define F(n, t, opt, req, out, d, dpy)      \
	{                                   \
		n, t, opt, req, out, d, dpy \
	}

static const struct bx_syn_field embedding_fields[] = {
	F("texts", BX_F_LIST_STR, false, true, false, "[]", "[]"),
	F("model", BX_F_STR, true, false, false, "null", "None"),
	F("embeddings", BX_F_LIST_VEC, true, false, true, "null", "None"),
};
static const uint8_t embedding_hash[] = { 0 };

static const struct bx_syn_field generation_fields[] = {
	F("messages", BX_F_MESSAGES, false, false, false, "[]", "[]"),
	F("prompt", BX_F_STR, true, false, false, "null", "None"),
	F("max_tokens", BX_F_INT, false, false, false, "256", "256"),
	F("temperature", BX_F_FLOAT, false, false, false, "1.0", "1.0"),
	F("top_p", BX_F_FLOAT, false, false, false, "1.0", "1.0"),
	F("seed", BX_F_INT, true, false, false, "null", "None"),
	F("completion", BX_F_STR, true, false, true, "null", "None"),
};
/* messages, prompt, max_tokens, temperature, top_p, seed */
static const uint8_t generation_hash[] = { 0, 1, 2, 3, 4, 5 };

const struct bx_synapse_type bx_synapse_types[] = {
	{ "Synapse", NULL, 0, NULL, 0, false, NULL },
	{ "TextEmbedding", embedding_fields, BX_ARRAY_SIZE(embedding_fields), embedding_hash,
	  BX_ARRAY_SIZE(embedding_hash), false, NULL },
	{ "TextGeneration", generation_fields, BX_ARRAY_SIZE(generation_fields), generation_hash,
	  BX_ARRAY_SIZE(generation_hash), false, NULL },
	{ "StreamingTextGeneration", generation_fields, BX_ARRAY_SIZE(generation_fields),
	  generation_hash, BX_ARRAY_SIZE(generation_hash), true, "completion" },
};
const unsigned bx_nb_synapse_types = BX_ARRAY_SIZE(bx_synapse_types);

const char *const bx_dp_synapse_names[] = { "Synapse", "TextEmbedding", "TextGeneration",
	                                    "StreamingTextGeneration", NULL };

const struct bx_synapse_type *
bx_synapse_find(const char *name, size_t len)
{
	for (unsigned i = 0; i < bx_nb_synapse_types; i++) {
		if (strlen(bx_synapse_types[i].name) == len &&
		    memcmp(bx_synapse_types[i].name, name, len) == 0) {
			return &bx_synapse_types[i];
		}
	}
	return NULL;
}

int
bx_synapse_index(const struct bx_synapse_type *t)
{
	return (int)(t - bx_synapse_types);
}

int
bx_synapse_field(const struct bx_synapse_type *t, const char *name, size_t len)
{
	for (unsigned i = 0; i < t->nb_fields; i++) {
		if (strlen(t->fields[i].name) == len && memcmp(t->fields[i].name, name, len) == 0) {
			return (int)i;
		}
	}
	return -1;
}

static bool
is_number(const struct bx_json *j, int t)
{
	uint8_t ty = j->toks[t].type;

	return ty == BX_J_INT || ty == BX_J_FLOAT || ty == BX_J_NONFINITE;
}

static int
check_list(const struct bx_json *j, int t, uint8_t elem, const char **why)
{
	int c;

	if (j->toks[t].type != BX_J_ARRAY) {
		*why = "list_type";
		return -EINVAL;
	}
	for (c = bx_json_child(j, t); c >= 0 && c < (int)j->toks[t].next; c = bx_json_next(j, c)) {
		switch (elem) {
		case BX_F_STR:
			if (j->toks[c].type != BX_J_STRING) {
				*why = "string_type";
				return -EINVAL;
			}
			break;
		case BX_F_FLOAT:
			if (!is_number(j, c)) {
				*why = "float_type";
				return -EINVAL;
			}
			break;
		case BX_F_LIST_FLOAT:
			if (check_list(j, c, BX_F_FLOAT, why) < 0) {
				return -EINVAL;
			}
			break;
		case BX_F_MESSAGES: { /* Dict[str, str] */
			const struct bx_jtok *o = &j->toks[c];
			int k;

			if (o->type != BX_J_OBJECT) {
				*why = "dict_type";
				return -EINVAL;
			}
			for (k = bx_json_child(j, c); k >= 0 && k < (int)o->next;
			     k = bx_json_next(j, k + 1)) {
				if (j->toks[k + 1].type != BX_J_STRING) {
					*why = "string_type";
					return -EINVAL;
				}
			}
			break;
		}
		default:
			break;
		}
	}
	return 0;
}

int
bx_synapse_check_value(const struct bx_syn_field *f, const struct bx_json *j, int t,
                       const char **why)
{
	uint8_t ty = j->toks[t].type;

	if (ty == BX_J_NULL) {
		if (f->optional) {
			return 0;
		}
		*why = f->type == BX_F_STR   ? "string_type" :
		       f->type == BX_F_INT   ? "int_type" :
		       f->type == BX_F_FLOAT ? "float_type" :
		       f->type == BX_F_BOOL  ? "bool_type" :
		                               "list_type";
		return -EINVAL;
	}
	switch (f->type) {
	case BX_F_STR:
		*why = "string_type";
		return ty == BX_J_STRING ? 0 : -EINVAL;
	case BX_F_INT:
		*why = "int_type";
		return ty == BX_J_INT ? 0 : -EINVAL;
	case BX_F_FLOAT:
		*why = "float_type";
		return is_number(j, t) ? 0 : -EINVAL;
	case BX_F_BOOL:
		*why = "bool_type";
		return ty == BX_J_TRUE || ty == BX_J_FALSE ? 0 : -EINVAL;
	case BX_F_LIST_STR:
		return check_list(j, t, BX_F_STR, why);
	case BX_F_LIST_FLOAT:
		return check_list(j, t, BX_F_FLOAT, why);
	case BX_F_LIST_VEC:
		return check_list(j, t, BX_F_LIST_FLOAT, why);
	case BX_F_MESSAGES:
		return check_list(j, t, BX_F_MESSAGES, why);
	default:
		*why = "value_error";
		return -EINVAL;
	}
}

static void
sha3_sink(void *arg, const void *data, size_t n)
{
	bx_sha3_256_update(arg, data, n);
}

void
bx_synapse_body_hash(const struct bx_synapse_type *t, const struct bx_json *j, const int *vals,
                     char hex[65])
{
	struct bx_sha3_256_ctx outer, inner;
	uint8_t d[32];
	char stage[512], h[65];
	struct bx_obuf b;

	bx_sha3_256_init(&outer);
	for (unsigned i = 0; i < t->nb_hash; i++) {
		const struct bx_syn_field *f = &t->fields[t->hash_fields[i]];
		int v = vals[t->hash_fields[i]];

		bx_sha3_256_init(&inner);
		bx_obuf_init(&b, stage, sizeof(stage));
		b.sink = sha3_sink;
		b.sink_arg = &inner;
		if (v < 0) {
			bx_obuf_puts(&b, f->def_py);
		} else {
			bx_py_str(&b, j, v,
			          f->type == BX_F_FLOAT || f->type == BX_F_LIST_FLOAT ||
			                  f->type == BX_F_LIST_VEC);
		}
		bx_obuf_flush(&b);
		bx_sha3_256_final(&inner, d);
		bx_hex_encode(h, d, 32);
		bx_sha3_256_update(&outer, h, 64);
	}
	bx_sha3_256_final(&outer, d);
	bx_hex_encode(hex, d, 32);
}
