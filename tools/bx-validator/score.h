/*
 * Scoring what miners answer, as subnet validators do.
 *
 * Quality Q in [0, 1]:
 *   embedding   the mean over the answered vectors of max(0, cos(answer,
 *               reference)); 0 if any vector has the wrong dimension, is
 *               not unit-norm (| |v| - 1 | > norm_tol), has a non-number,
 *               or the count differs from the texts sent. Without a
 *               reference, a well-formed set of unit vectors scores 1.
 *   generation  with a reference model: min(1, exp(ll(answer) - ll(greedy))),
 *               ll the mean per-token log-likelihood under the reference
 *               model after the prompt and "greedy" its own greedy output
 *               (so the reference answer scores 1 and each nat per token
 *               below it costs a factor e). Without a model: agreement
 *               with a reference text, the number of leading
 *               whitespace-separated tokens equal to the reference's divided
 *               by the longer of the two lengths.
 *   echo        1 for a 200 answer.
 *
 * Latency enters the final score linearly, as most subnets' reward
 * functions do:  S = Q * (1 - w * min(1, t / T))  for an answer in time,
 * S = 0 for a failure or an answer after the timeout T; t is the latency a
 * validator sees, w the latency weight (default 0.2).
 *
 * The reference comes from the caller (a vector or a text); when bx's
 * inference library lands, its reference path can fill it locally.
 */
#ifndef BX_SCORE_H
#define BX_SCORE_H

#include <jansson.h>

#include "dendrite.h"
#include "reference.h"

struct bx_scorer {
	const float *ref; /* reference embeddings (nb_refs x dim), borrowed */
	unsigned dim;
	unsigned nb_refs;  /* 1: every answered vector against ref; else vector i against row i */
	unsigned nb_texts; /* vectors expected per answer */
	double norm_tol;   /* 1e-3 */
	const char *ref_completion; /* reference greedy output, borrowed */
	struct bx_ref_llm *llm;     /* reference generation model, borrowed (or NULL) */
	const char *prompt;         /* the prompt sent, for the log-likelihood */
	double ref_ll;              /* mean log-likelihood of the greedy output */
};

float bx_score_embedding(const struct bx_scorer *s, json_t *body);
float bx_score_generation(const struct bx_scorer *s, json_t *body, uint32_t *tokens);

/* S = Q * (1 - w * min(1, t / T)); 0 when t > T. */
double bx_score_final(double quality, double lat_s, double timeout_s, double w);

/* bx_ld_score_fn for the load engine; arg is a struct bx_scorer. */
float bx_scorer_fn(void *arg, enum bx_dd_kind kind, json_t *body, uint32_t *tokens);

/* Parse "0.1,0.2,..." into out (cap floats). Returns the count, or -EINVAL. */
int bx_score_parse_vector(const char *s, float *out, unsigned cap);

#endif /* BX_SCORE_H */
