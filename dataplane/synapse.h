/*
 * Synapse types as data: each type is a row with its fields (in pydantic
 * declaration order), which of them are outputs, and its required_hash_fields
 * ClassVar (in its own order). axon.c reads this table; nothing branches on
 * a synapse's name.
 */
#ifndef BX_DP_SYNAPSE_H
#define BX_DP_SYNAPSE_H

#include <stdbool.h>
#include <stdint.h>

#include "json.h"

enum bx_ftype {
	BX_F_STR,        /* str */
	BX_F_INT,        /* int */
	BX_F_FLOAT,      /* float (an int literal becomes a float) */
	BX_F_BOOL,       /* bool */
	BX_F_LIST_STR,   /* List[str] */
	BX_F_LIST_FLOAT, /* List[float] */
	BX_F_LIST_VEC,   /* List[List[float]] */
	BX_F_MESSAGES,   /* List[Dict[str, str]] */
};

struct bx_syn_field {
	const char *name;
	uint8_t type;       /* enum bx_ftype */
	bool optional;      /* Optional[...]: null allowed */
	bool required;      /* no default: absent -> 422 */
	bool output;        /* filled by the handler */
	const char *def;    /* default as compact JSON ("null", "[]", "256") */
	const char *def_py; /* str() of the default, for the body hash */
};

#define BX_SYN_MAX_FIELDS 16

struct bx_synapse_type {
	const char *name;
	const struct bx_syn_field *fields;
	unsigned nb_fields;
	const uint8_t *hash_fields; /* indices into fields, ClassVar order */
	unsigned nb_hash;
	bool streaming;                /* answered as text/event-stream, chunked */
	const char *output_for_stream; /* the field whose text is streamed */
};

extern const struct bx_synapse_type bx_synapse_types[];
extern const unsigned bx_nb_synapse_types;

/* The type named name[0..len), or NULL. */
const struct bx_synapse_type *bx_synapse_find(const char *name, size_t len);
int bx_synapse_index(const struct bx_synapse_type *t);
/* Index of a field by name, or -1. */
int bx_synapse_field(const struct bx_synapse_type *t, const char *name, size_t len);

/*
 * Check a value token against a field type (pydantic strict-ish). 0 or -EINVAL
 * with a pydantic error type name in *why ("list_type", "string_type", ...).
 */
int bx_synapse_check_value(const struct bx_syn_field *f, const struct bx_json *j, int t,
                           const char **why);

/*
 * The body hash the dendrite computed: SHA3-256 over the concatenated hex
 * SHA3-256 of str(value) of each hash field, values as pydantic dumps them
 * (field defaults when absent). vals[i] is the value token of fields[i] or -1.
 * hex gets 64 lowercase hex digits and a NUL.
 */
void bx_synapse_body_hash(const struct bx_synapse_type *t, const struct bx_json *j, const int *vals,
                          char hex[65]);

#endif
