/*
 * The request a Bittensor v10.2 dendrite sends, byte for byte
 * (shared/research/bittensor-protocol.md §1-§3):
 *
 *   POST /<Synapse> HTTP/1.1
 *   Host, then Synapse.to_headers() in insertion order (name, timeout,
 *   bt_header_axon_{ip,port,hotkey}, bt_header_dendrite_{ip,version,nonce,
 *   uuid,hotkey,signature}, bt_header_input_obj_<required field>,
 *   header_size, total_size, computed_body_hash), then aiohttp's
 *   Accept, Accept-Encoding, User-Agent, Content-Length, Content-Type;
 *   body = json.dumps(synapse.model_dump()) with ", " / ": " separators and
 *   ensure_ascii.
 *
 * The signature is sr25519 (context "substrate") over
 * "{nonce}.{dendrite_hotkey}.{axon_hotkey}.{uuid}.{body_hash}". The nonce is
 * time.time_ns(), made strictly increasing per identity.
 *
 * A struct bx_dd_template holds everything that does not change between
 * requests of one kind (the synapse's own fields as JSON, the body hash);
 * building a request then costs one signature and a few copies.
 *
 * Secrets: identities own sr25519 keypairs (crypto keeps them in
 * sodium_malloc memory); nothing here logs key material.
 */
#ifndef BX_DENDRITE_H
#define BX_DENDRITE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <bx/crypto.h>
#include <bx/platform.h>

#define BX_DD_VERSION 10002000 /* bittensor 10.2.0 version_as_int */

/* A growable output buffer (start-up sized; requests reuse it). */
struct bx_sbuf {
	char *p;
	size_t len, cap;
	bool overflow; /* a write did not fit: contents are truncated */
};

void bx_sbuf_init(struct bx_sbuf *b, char *mem, size_t cap);
void bx_sbuf_put(struct bx_sbuf *b, const void *s, size_t n);
void bx_sbuf_puts(struct bx_sbuf *b, const char *s);
void bx_sbuf_printf(struct bx_sbuf *b, const char *fmt, ...) __bx_printf(2, 3);

/*
 * Python float repr (shortest round-trip, exponent form when the exponent
 * is < -4 or >= 16, "1e+16", "1e-05", "12.0"). json selects json.dumps's
 * "NaN"/"Infinity" over str()'s "nan"/"inf". Returns the length.
 */
int bx_py_float(char buf[32], double v, bool json);

/* json.dumps of a UTF-8 string (ensure_ascii: \uXXXX, surrogate pairs). */
void bx_py_json_str(struct bx_sbuf *b, const char *s, size_t n);

/* Python repr() of a str (single quotes unless it has ' and no "). */
void bx_py_repr_str(struct bx_sbuf *b, const char *s, size_t n);

/* One validator identity: a hotkey, its SS58 address and a uuid1. */
struct bx_dd_identity {
	struct bx_sr25519_keypair *kp; /* owned */
	char ss58[BX_SS58_MAX_LEN];
	char uuid[40];       /* str(uuid.uuid1()), fixed per identity */
	uint64_t last_nonce; /* strictly increasing */
};

/* From a keypair (consumed on success). 0 or -EINVAL. */
int bx_dd_identity_init(struct bx_dd_identity *id, struct bx_sr25519_keypair *kp);
/* A new identity from a seed (deterministic: seed i gives the same key). */
int bx_dd_identity_from_seed(struct bx_dd_identity *id, const uint8_t seed[32]);
void bx_dd_identity_fini(struct bx_dd_identity *id);
/* The next nonce: max(time.time_ns(), last + 1). */
uint64_t bx_dd_next_nonce(struct bx_dd_identity *id);

/* The synapse kinds bx serves (dataplane/synapse.c) and their fields. */
enum bx_dd_kind {
	BX_DD_ECHO,       /* "Synapse": the ping every axon has */
	BX_DD_EMBEDDING,  /* "TextEmbedding": texts -> embeddings */
	BX_DD_GENERATION, /* "TextGeneration": prompt -> completion */
	BX_DD_STREAM,     /* "StreamingTextGeneration" */
	BX_DD_NB_KINDS
};

const char *bx_dd_kind_name(enum bx_dd_kind k);
/* The kind of a class name or short name ("echo", "embedding", "generation", "stream"); -1. */
int bx_dd_kind_parse(const char *s);

struct bx_dd_payload {
	enum bx_dd_kind kind;
	const char *const *texts; /* EMBEDDING: nb_texts UTF-8 strings (borrowed) */
	unsigned nb_texts;
	const char *prompt; /* GENERATION/STREAM (borrowed) */
	int64_t max_tokens;
	double temperature, top_p;
	int64_t seed; /* < 0: None */
};

/* The fixed part of one kind of request to one axon. */
struct bx_dd_template {
	enum bx_dd_kind kind;
	char name[32];
	char host[80]; /* Host header: "127.0.0.1:8091" */
	char axon_ip[64];
	unsigned axon_port;
	char axon_hotkey[BX_SS58_MAX_LEN];
	char dendrite_ip[64]; /* the validator's external IP as it would send it */
	double timeout_s;
	char body_hash[65]; /* computed_body_hash */
	char *fields;       /* the synapse's own fields, json.dumps text, leading ", " */
	size_t fields_len;
	const char *input_obj; /* "bt_header_input_obj_<f>: <b64>\r\n" lines */
	uint64_t total_size;
};

/*
 * Prepare a template. Strings are copied. 0, -EINVAL (a name too long, an
 * unknown kind), -ENOMEM; eb says which.
 */
int bx_dd_template_init(struct bx_dd_template *t, const struct bx_dd_payload *p,
                        const char *axon_ip, unsigned axon_port, const char *axon_hotkey,
                        const char *dendrite_ip, double timeout_s, struct bx_errbuf *eb);
void bx_dd_template_fini(struct bx_dd_template *t);

/*
 * The body hash of a payload (§2): sha3(concat(sha3(str(field)))) over the
 * kind's required_hash_fields; hex gets 64 hex digits and a NUL.
 */
void bx_dd_body_hash(const struct bx_dd_payload *p, char hex[65]);

/*
 * Build one signed request into out: nonce from the identity (or `nonce`
 * when non-zero, for golden tests), signature by id. Returns 0, -ENOSPC
 * (out too small), -EIO (signing failed).
 */
int bx_dd_build(const struct bx_dd_template *t, struct bx_dd_identity *id, uint64_t nonce,
                struct bx_sbuf *out);

#endif /* BX_DENDRITE_H */
