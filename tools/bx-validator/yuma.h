/*
 * Yuma Consensus epoch, a bit-exact I32F32 port of subtensor's sparse
 * `epoch_mechanism` (shared/research/yuma.md §3). Both bond paths: the
 * original Yuma ("Yuma 2", §3.10a) and Yuma 3 with optional liquid alpha
 * (§3.10b). One struct bx_yuma holds a subnet's state across epochs: raw
 * stake, weights as stored on chain (u16, explicit zeros kept), bonds (u16),
 * permits, last_update and registration blocks.
 *
 * Fixed point: every proportion is an I32F32 raw value (int64_t, value =
 * raw / 2^32). Products floor, quotients truncate, u16 conversions floor,
 * exactly as substrate-fixed does (yuma.md §1).
 *
 * Thread safety: none; one thread owns a struct bx_yuma.
 */
#ifndef BX_YUMA_H
#define BX_YUMA_H

#include <stdbool.h>
#include <stdint.h>

#define BX_FX_ONE ((int64_t)1 << 32)

struct bx_yuma_conf {
	uint16_t kappa;                  /* consensus threshold, /65535 (32767) */
	uint16_t bonds_penalty;          /* beta, /65535 (65535) */
	uint64_t bonds_moving_average;   /* alpha = 1 - bma/1e6 (900000) */
	bool yuma3;                      /* Yuma 3 bonds (§3.10b) */
	bool liquid_alpha;               /* per-bond alpha (Yuma 3 only) */
	uint16_t alpha_low;              /* liquid alpha range, /65535 (45875) */
	uint16_t alpha_high;             /* (58982) */
	int16_t alpha_steepness;         /* sigmoid slope * 100 (1000) */
	unsigned max_allowed_validators; /* permits go to the top-k stake (128) */
	uint64_t activity_cutoff;        /* blocks (5000) */
	uint16_t tempo;                  /* blocks per epoch (360) */
	int owner_uid;                   /* subnet owner's UID, -1 for none */
};

/* The chain's defaults (yuma.md §2). */
void bx_yuma_conf_default(struct bx_yuma_conf *conf);

struct bx_yuma {
	unsigned n;
	struct bx_yuma_conf conf;
	uint64_t block;           /* current block; bx_yuma_epoch() advances it by tempo */
	uint64_t last_step_block; /* block of the previous epoch, 0 before the first */
	uint64_t *stake;          /* (n) raw stake, any unit */
	uint64_t *last_update;    /* (n) block of the last set_weights */
	uint64_t *reg_block;      /* (n) block of registration */
	bool *permit;             /* (n) validator permits from the previous epoch */
	uint16_t *weights;        /* (n, n) stored weights, row = validator */
	uint8_t *wset;            /* (n, n) 1 where a weight entry exists (explicit zeros) */
	uint16_t *bonds;          /* (n, n) stored bonds, 0 = none */

	/* Outputs of the last epoch, I32F32 raw. */
	int64_t *S;                   /* (n) normalised stake */
	int64_t *A;                   /* (n) active stake */
	int64_t *C;                   /* (n) consensus per column */
	int64_t *Tv;                  /* (n) validator trust */
	int64_t *I;                   /* (n) incentive */
	int64_t *D;                   /* (n) dividends */
	uint64_t *server_emission;    /* (n) */
	uint64_t *validator_emission; /* (n) */

	/* Scratch (n, n) matrices, I32F32 raw, with presence masks. */
	int64_t *m_w, *m_wc, *m_wb, *m_b, *m_t;
	uint8_t *p_w, *p_wc, *p_wb, *p_b, *p_t;
	int64_t *v_tmp;   /* (5n) */
	bool *forbid;     /* (n) no permit last epoch */
	bool *new_permit; /* (n) */
};

/*
 * A subnet of n UIDs (1..4096), all registered at block 0 with zero stake,
 * no permits, no weights and no bonds; the current block is 1.
 * conf is copied. 0, -EINVAL, -ENOMEM.
 */
int bx_yuma_create(unsigned n, const struct bx_yuma_conf *conf, struct bx_yuma **out);
void bx_yuma_destroy(struct bx_yuma *y);

/*
 * Set validator uid's weights as the chain stores them: when upscale is true
 * the values are max-upscaled so the largest is 65535 (vec_u16_max_upscale);
 * otherwise they are stored as given. Entries listed with value 0 are kept
 * as explicit zeros. last_update[uid] becomes the current block.
 * 0, or -EINVAL (uid or a column out of range, a duplicate column).
 */
int bx_yuma_set_weights(struct bx_yuma *y, unsigned uid, const uint16_t *cols, const uint16_t *vals,
                        unsigned count, bool upscale);

/* Re-register uid at the current block: its bonds column and weight row are cleared. */
void bx_yuma_register(struct bx_yuma *y, unsigned uid);

/*
 * Run one epoch at the current block with emission E, fill the outputs,
 * store the new bonds and permits, then advance the block by tempo.
 */
void bx_yuma_epoch(struct bx_yuma *y, uint64_t emission);

/* floor(x * 65535) of an I32F32 proportion, as the chain stores it. */
uint16_t bx_fx_to_u16(int64_t x);
/* I32F32 raw to double and back (round to nearest, as from_num). */
double bx_fx_to_double(int64_t x);
int64_t bx_fx_from_double(double v);

/*
 * Stake-weighted median per column (weighted_median_col_sparse, §3.6) of a
 * dense (rows, cols) matrix: stake (rows), score (rows*cols), kappa I32F32.
 * tmp must hold 5*rows int64_t. Exposed for the TV1 test vectors.
 */
void bx_yuma_weighted_median_cols(const int64_t *stake, const int64_t *score, unsigned rows,
                                  unsigned cols, int64_t kappa, int64_t *out, int64_t *tmp);

#endif /* BX_YUMA_H */
