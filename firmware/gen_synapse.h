/* The TextGeneration synapse handler (see gen_synapse.c). */
#ifndef BX_FW_GEN_SYNAPSE_H
#define BX_FW_GEN_SYNAPSE_H

#include <bx/dataplane.h>
#include <bx/infer.h>

/* Prompt tokens kept (the end of a longer prompt) and tokens per step. */
#define BX_GEN_PROMPT_MAX 256

struct bx_fw_gen {
	const struct bx_llm_model *model; /* borrowed */
	unsigned max_tokens;              /* cap on a request's max_tokens */
};

/* bx_synapse_fn for TextGeneration; arg is a struct bx_fw_gen (borrowed). */
int bx_fw_gen_synapse(void *arg, struct bx_call *call);

#endif
