/* The (Streaming)TextGeneration synapse with continuous batching (see gen_synapse.c). */
#ifndef BX_FW_GEN_SYNAPSE_H
#define BX_FW_GEN_SYNAPSE_H

#include <bx/dataplane.h>
#include <bx/infer.h>

/* Prompt tokens kept (BOS and the end of a longer prompt); tokens per iteration. */
#define BX_GEN_PROMPT_MAX 256

struct bx_fw_gen;

/*
 * Start the generation worker pinned to `cpu` (its engine context is made
 * there). m is borrowed and must outlive the result; max_tokens caps a
 * request's max_tokens.
 */
int bx_fw_gen_create(const struct bx_llm_model *m, unsigned max_tokens, unsigned cpu,
                     struct bx_fw_gen **out, struct bx_errbuf *eb);
/* After the dataplane has stopped: finishes what is queued, stops. Accepts NULL. */
void bx_fw_gen_destroy(struct bx_fw_gen *g);

/* bx_synapse_fn for TextGeneration and StreamingTextGeneration (the completion
 * streamed as it is decoded); arg is the struct bx_fw_gen. */
int bx_fw_gen_synapse(void *arg, struct bx_call *call);

#endif
