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

/* What the generation worker did, for /metrics. */
enum bx_gen_outcome {
	BX_GEN_OK,        /* answered (or streamed) to the end */
	BX_GEN_EXPIRED,   /* 408: the deadline passed while queued */
	BX_GEN_ABANDONED, /* the client went away: not run, or stopped */
	BX_GEN_FAILED,    /* 500 */
	BX_GEN_OUTCOMES
};

struct bx_fw_gen_stats {
	uint64_t prompt_tokens, generated_tokens;
	uint64_t outcomes[BX_GEN_OUTCOMES];
	unsigned active, waiting; /* sequences decoding, and admitted but not prefilled */
	struct bx_lathist step;   /* one decode step of all active sequences */
	struct bx_lathist ttft;   /* request handed to the worker to its first token */
};

/* A snapshot (any thread). */
void bx_fw_gen_stats(const struct bx_fw_gen *g, struct bx_fw_gen_stats *out);

/* bx_synapse_fn for TextGeneration and StreamingTextGeneration (the completion
 * streamed as it is decoded); arg is the struct bx_fw_gen. */
int bx_fw_gen_synapse(void *arg, struct bx_call *call);

#endif
