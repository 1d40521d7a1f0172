/*
 * Consensus mode: several validator identities each load and score several
 * miners, set weights from the scores, and Yuma (yuma.h) runs over a number
 * of epochs from a stake table. UIDs 0..V-1 are the validators, V..V+M-1 the
 * miners.
 */
#ifndef BX_CONSENSUS_H
#define BX_CONSENSUS_H

#include <stdio.h>

#include "cli.h"
#include "score.h"
#include "yuma.h"

struct bx_cs_result {
	unsigned nb_validators, nb_miners;
	double score[BX_CLI_MAX_MINERS];             /* last epoch, mean over validators */
	double incentive[BX_CLI_MAX_MINERS];         /* last epoch */
	uint64_t miner_emission[BX_CLI_MAX_MINERS];  /* summed over epochs */
	double dividends[BX_CLI_MAX_IDS];            /* last epoch */
	uint64_t validator_emission[BX_CLI_MAX_IDS]; /* summed over epochs */
};

/*
 * Run the epochs. ids: nb_ids validator identities (borrowed). scorer:
 * scores embedding/generation answers (may have no reference: echo only).
 * One table per epoch goes to out (NULL: silent). 0 or -errno with eb set.
 */
int bx_cs_run(const struct bx_cli *cli, struct bx_dd_identity *ids, unsigned nb_ids,
              const struct bx_scorer *scorer, FILE *out, struct bx_cs_result *res,
              struct bx_errbuf *eb);

#endif /* BX_CONSENSUS_H */
