/* The TextEmbedding synapse through the scheduler (see embed_synapse.c). */
#ifndef BX_FW_EMBED_SYNAPSE_H
#define BX_FW_EMBED_SYNAPSE_H

#include <bx/dataplane.h>
#include <bx/infer.h>
#include <bx/sched.h>

/* Texts in one request; 16 vectors of 384 floats fit a 256 KiB response. */
#define BX_EMBED_TEXTS_MAX 16

struct bx_fw_embed;

/*
 * Start the embedding workers of `plan` (each makes its engine context on
 * its pinned thread) and the job pool. m and plan are borrowed and must
 * outlive the result.
 */
int bx_fw_embed_create(const struct bx_embed_model *m, const struct bx_sched_plan *plan,
                       struct bx_fw_embed **out, struct bx_errbuf *eb);
/* After the dataplane has stopped (every ticket completed). Accepts NULL. */
void bx_fw_embed_destroy(struct bx_fw_embed *e);
const struct bx_sched *bx_fw_embed_sched(const struct bx_fw_embed *e);

/* bx_synapse_fn for TextEmbedding; arg is the struct bx_fw_embed. */
int bx_fw_embed_synapse(void *arg, struct bx_call *call);

#endif
