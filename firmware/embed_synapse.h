/* The TextEmbedding synapse handler (see embed_synapse.c). */
#ifndef BX_FW_EMBED_SYNAPSE_H
#define BX_FW_EMBED_SYNAPSE_H

#include <bx/dataplane.h>

/* Texts in one request; 16 vectors of 384 floats fit a 256 KiB response. */
#define BX_EMBED_TEXTS_MAX 16

/* bx_synapse_fn for TextEmbedding; arg is the struct bx_embed_model (borrowed). */
int bx_fw_embed_synapse(void *arg, struct bx_call *call);

#endif
