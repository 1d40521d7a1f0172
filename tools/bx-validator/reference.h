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

#endif /* BX_VALIDATOR_REFERENCE_H */
