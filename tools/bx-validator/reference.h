/*
 * Reference embeddings computed locally with bx's inference library (its
 * plain-C f32 reference forward pass), so embedding answers are scored
 * against the model a miner claims to run rather than a vector typed in.
 */
#ifndef BX_VALIDATOR_REFERENCE_H
#define BX_VALIDATOR_REFERENCE_H

#include <bx/platform.h>

/*
 * Embed n texts with the model in model_dir (as bxd loads it) into out
 * (n x dim floats, L2-normalised; cap floats available). *dim gets the
 * dimension. 0, or -errno with eb naming the model or the text.
 */
int bx_ref_embed(const char *model_dir, const char *const *texts, unsigned n, float *out,
                 size_t cap, unsigned *dim, struct bx_errbuf *eb);

/*
 * A reference text-generation model (llama2.c checkpoint with its
 * tokenizer.bin, or GGUF), run on infer's plain-C f32 reference path. Calls
 * are serialised by an internal mutex, so worker threads may share one.
 */
struct bx_ref_llm;

/* tok may be NULL for GGUF. 0 or -errno with eb set. Returned-owned. */
int bx_ref_llm_open(const char *model, const char *tok, struct bx_ref_llm **out,
                    struct bx_errbuf *eb);
void bx_ref_llm_close(struct bx_ref_llm *r);

/*
 * The greedy completion of prompt (BOS, then the prompt's tokens) up to
 * max_tokens or EOS, NUL-terminated into out; *mean_ll gets its mean
 * per-token log-likelihood under the model. 0 or -errno.
 */
int bx_ref_llm_greedy(struct bx_ref_llm *r, const char *prompt, unsigned max_tokens, char *out,
                      size_t cap, double *mean_ll);

/*
 * Mean per-token log-likelihood of completion after prompt (teacher
 * forcing: log softmax of the model's logits at each answer token).
 * An empty completion gives -EINVAL. 0 or -errno.
 */
int bx_ref_llm_loglik(struct bx_ref_llm *r, const char *prompt, const char *completion,
                      double *mean_ll);

#endif /* BX_VALIDATOR_REFERENCE_H */
