/*
 * Yuma Consensus epoch (subtensor run_epoch.rs `epoch_mechanism`, math.rs),
 * ported step by step from shared/research/yuma.md §3. Matrices are dense
 * (n, n) arrays of I32F32 raw values with a presence mask, which keeps the
 * sparse semantics (explicit zeros, dropped entries) without sparse rows.
 */
#include "yuma.h"

#include <errno.h>
#include <string.h>

#include <bx/platform.h>

#define ONE BX_FX_ONE

__extension__ typedef __int128 i128;
__extension__ typedef unsigned __int128 u128;

/* ======================= I32F32 arithmetic (yuma.md §1) ======================= */

/* a * b, floored (arithmetic shift of the double-width product). */
static int64_t
fmul(int64_t a, int64_t b)
{
	return (int64_t)(((i128)a * b) >> 32);
}

/* a / b truncated toward zero; 0 when b == 0 (safe_div). */
static int64_t
fdiv(int64_t a, int64_t b)
{
	if (b == 0) {
		return 0;
	}
	return (int64_t)(((i128)a * ONE) / b);
}

static int64_t
fclamp(int64_t x, int64_t lo, int64_t hi)
{
	return x < lo ? lo : (x > hi ? hi : x);
}

uint16_t
bx_fx_to_u16(int64_t x)
{
	int64_t v = fmul(x, (int64_t)65535 * ONE) >> 32;

	return (uint16_t)(v < 0 ? 0 : (v > 65535 ? 65535 : v));
}

double
bx_fx_to_double(int64_t x)
{
	return (double)x / 4294967296.0;
}

int64_t
bx_fx_from_double(double v)
{
	double r = v * 4294967296.0;

	return (int64_t)(r < 0 ? r - 0.5 : r + 0.5);
}

/* u16 / 65535 as an I32F32 divide (u16_proportion_to_fixed). */
static int64_t
u16_prop(uint16_t u)
{
	return fdiv((int64_t)u * ONE, (int64_t)65535 * ONE);
}

/*
 * substrate-fixed exp on I32F32 (transcendental.rs): the Taylor series on
 * |x|, term = term * x / i for i = 2..30, and 1/result for negative x;
 * exp_safe clamps x to [-20, 20] first, so nothing overflows.
 */
static int64_t
fexp_safe(int64_t x)
{
	int64_t ax, term, sum;
	int i;

	x = fclamp(x, -20 * ONE, 20 * ONE);
	ax = x < 0 ? -x : x;
	term = ax;
	sum = ONE + ax;
	for (i = 2; i < 31; i++) {
		term = fdiv(fmul(term, ax), (int64_t)i * ONE);
		sum += term;
		if (term == 0) {
			break;
		}
	}
	return x < 0 ? fdiv(ONE, sum) : sum;
}

static void
vnormalize(int64_t *v, unsigned n)
{
	int64_t sum = 0;
	unsigned i;

	for (i = 0; i < n; i++) {
		sum += v[i];
	}
	if (sum == 0) {
		return;
	}
	for (i = 0; i < n; i++) {
		v[i] = fdiv(v[i], sum);
	}
}

/* ======================= Configuration and state ======================= */

void
bx_yuma_conf_default(struct bx_yuma_conf *conf)
{
	memset(conf, 0, sizeof(*conf));
	conf->kappa = 32767;
	conf->bonds_penalty = 65535;
	conf->bonds_moving_average = 900000;
	conf->alpha_low = 45875;
	conf->alpha_high = 58982;
	conf->alpha_steepness = 1000;
	conf->max_allowed_validators = 128;
	conf->activity_cutoff = 5000;
	conf->tempo = 360;
	conf->owner_uid = -1;
}

void
bx_yuma_destroy(struct bx_yuma *y)
{
	if (y == NULL) {
		return;
	}
	bx_free(y->stake);
	bx_free(y->last_update);
	bx_free(y->reg_block);
	bx_free(y->permit);
	bx_free(y->weights);
	bx_free(y->wset);
	bx_free(y->bonds);
	bx_free(y->S);
	bx_free(y->server_emission);
	bx_free(y->validator_emission);
	bx_free(y->m_w);
	bx_free(y->p_w);
	bx_free(y->v_tmp);
	bx_free(y->forbid);
	bx_free(y);
}

int
bx_yuma_create(unsigned n, const struct bx_yuma_conf *conf, struct bx_yuma **out)
{
	struct bx_yuma *y;
	size_t nn = (size_t)n * n;

	if (n == 0 || n > 4096 || conf == NULL) {
		return -EINVAL;
	}
	y = bx_calloc(1, sizeof(*y));
	if (y == NULL) {
		return -ENOMEM;
	}
	y->n = n;
	y->conf = *conf;
	y->block = 1;
	y->stake = bx_calloc(n, sizeof(uint64_t));
	y->last_update = bx_calloc(n, sizeof(uint64_t));
	y->reg_block = bx_calloc(n, sizeof(uint64_t));
	y->permit = bx_calloc(n, sizeof(bool));
	y->weights = bx_calloc(nn, sizeof(uint16_t));
	y->wset = bx_calloc(nn, 1);
	y->bonds = bx_calloc(nn, sizeof(uint16_t));
	y->S = bx_calloc(6 * (size_t)n, sizeof(int64_t));
	y->server_emission = bx_calloc(n, sizeof(uint64_t));
	y->validator_emission = bx_calloc(n, sizeof(uint64_t));
	y->m_w = bx_calloc(5 * nn, sizeof(int64_t));
	y->p_w = bx_calloc(5 * nn, 1);
	y->v_tmp = bx_calloc(5 * (size_t)n, sizeof(int64_t));
	y->forbid = bx_calloc(2 * (size_t)n, sizeof(bool));
	if (y->stake == NULL || y->last_update == NULL || y->reg_block == NULL ||
	    y->permit == NULL || y->weights == NULL || y->wset == NULL || y->bonds == NULL ||
	    y->S == NULL || y->server_emission == NULL || y->validator_emission == NULL ||
	    y->m_w == NULL || y->p_w == NULL || y->v_tmp == NULL || y->forbid == NULL) {
		bx_yuma_destroy(y);
		return -ENOMEM;
	}
	y->new_permit = y->forbid + n;
	y->A = y->S + n;
	y->C = y->A + n;
	y->Tv = y->C + n;
	y->I = y->Tv + n;
	y->D = y->I + n;
	y->m_wc = y->m_w + nn;
	y->m_wb = y->m_wc + nn;
	y->m_b = y->m_wb + nn;
	y->m_t = y->m_b + nn;
	y->p_wc = y->p_w + nn;
	y->p_wb = y->p_wc + nn;
	y->p_b = y->p_wb + nn;
	y->p_t = y->p_b + nn;
	*out = y;
	return 0;
}

/*
 * vec_u16_max_upscale_to_u16 (math.rs): round(v * 65535 / max), computed as
 * v * (65535 / max) when max > 32768, else (v * 65535) / max, in I32F32,
 * rounding half away from zero.
 */
static uint16_t
max_upscale(uint16_t v, uint16_t max)
{
	int64_t r;

	if (max == 0) {
		return 0;
	}
	if (max > 32768) {
		r = fmul((int64_t)v * ONE, fdiv((int64_t)65535 * ONE, (int64_t)max * ONE));
	} else {
		r = fdiv((int64_t)v * 65535 * ONE, (int64_t)max * ONE);
	}
	r = (r + ONE / 2) >> 32;
	return (uint16_t)(r > 65535 ? 65535 : r);
}

int
bx_yuma_set_weights(struct bx_yuma *y, unsigned uid, const uint16_t *cols, const uint16_t *vals,
                    unsigned count, bool upscale)
{
	size_t row = (size_t)uid * y->n;
	uint16_t max = 0;
	unsigned k, m;

	if (uid >= y->n) {
		return -EINVAL;
	}
	for (k = 0; k < count; k++) {
		if (cols[k] >= y->n) {
			return -EINVAL;
		}
		for (m = 0; m < k; m++) {
			if (cols[m] == cols[k]) {
				return -EINVAL;
			}
		}
		max = BX_MAX(max, vals[k]);
	}
	memset(y->weights + row, 0, y->n * sizeof(uint16_t));
	memset(y->wset + row, 0, y->n);
	for (k = 0; k < count; k++) {
		y->weights[row + cols[k]] = upscale ? max_upscale(vals[k], max) : vals[k];
		y->wset[row + cols[k]] = 1;
	}
	y->last_update[uid] = y->block;
	return 0;
}

void
bx_yuma_register(struct bx_yuma *y, unsigned uid)
{
	unsigned i;

	if (uid >= y->n) {
		return;
	}
	y->reg_block[uid] = y->block;
	for (i = 0; i < y->n; i++) {
		y->bonds[(size_t)i * y->n + uid] = 0;
	}
	memset(y->weights + (size_t)uid * y->n, 0, y->n * sizeof(uint16_t));
	memset(y->wset + (size_t)uid * y->n, 0, y->n);
	y->permit[uid] = false;
}

/* ======================= Weighted median (§3.6) ======================= */

/*
 * weighted_median (math.rs): a deterministic quickselect. cur/lo/hi are
 * index lists kept in original order; the pivot is the middle entry.
 */
static int64_t
wmedian(const int64_t *stake, const int64_t *score, int64_t *cur, unsigned n, int64_t *lower,
        int64_t *upper, int64_t minority, int64_t plo, int64_t phi)
{
	unsigned it, limit = n, nl, nu, k;
	int64_t pivot, lo_stake, hi_stake;

	for (it = 0;; it++) {
		if (n == 0) {
			return 0;
		}
		if (n == 1) {
			return score[cur[0]];
		}
		pivot = score[cur[n / 2]];
		lo_stake = hi_stake = 0;
		nl = nu = 0;
		for (k = 0; k < n; k++) {
			int64_t idx = cur[k];

			if (score[idx] < pivot) {
				lo_stake += stake[idx];
				lower[nl++] = idx;
			} else if (score[idx] > pivot) {
				hi_stake += stake[idx];
				upper[nu++] = idx;
			}
		}
		if (minority < plo + lo_stake && nl > 0) {
			memcpy(cur, lower, nl * sizeof(*cur));
			n = nl;
			phi = plo + lo_stake;
		} else if (phi - hi_stake <= minority && nu > 0) {
			memcpy(cur, upper, nu * sizeof(*cur));
			n = nu;
			plo = phi - hi_stake;
		} else {
			return pivot;
		}
		if (it > limit) {
			return 0;
		}
	}
}

void
bx_yuma_weighted_median_cols(const int64_t *stake, const int64_t *score, unsigned rows,
                             unsigned cols, int64_t kappa, int64_t *out, int64_t *tmp)
{
	int64_t *use = tmp, *col = tmp + rows, *cur = col + rows, *lower = cur + rows;
	int64_t *upper = lower + rows, sum = 0;
	unsigned i, j, k = 0;

	for (i = 0; i < rows; i++) {
		if (stake[i] > 0) {
			use[k++] = stake[i];
		}
	}
	vnormalize(use, k);
	for (i = 0; i < k; i++) {
		sum += use[i];
	}
	for (j = 0; j < cols; j++) {
		unsigned r = 0;

		for (i = 0; i < rows; i++) {
			if (stake[i] > 0) {
				col[r] = score[(size_t)i * cols + j];
				cur[r] = r;
				r++;
			}
		}
		out[j] = wmedian(use, col, cur, k, lower, upper, sum - kappa, 0, sum);
	}
}

/* ======================= Epoch steps ======================= */

/* §3.2 stake and §3.3 permits: S, forbid, new_permit. */
static void
stake_and_permits(struct bx_yuma *y)
{
	unsigned n = y->n, i, k, kmax = y->conf.max_allowed_validators;
	u128 sum = 0;
	int64_t *ord = y->v_tmp;

	for (i = 0; i < n; i++) {
		sum += y->stake[i];
	}
	for (i = 0; i < n; i++) {
		/* I64F64 normalise then floor to I32F32 == floor(raw * 2^32 / sum). */
		y->S[i] = sum == 0 ? 0 : (int64_t)(((u128)y->stake[i] << 32) / sum);
		y->forbid[i] = !y->permit[i] && (int)i != y->conf.owner_uid;
		y->new_permit[i] = y->S[i] != 0;
	}
	if (n >= kmax) {
		/* is_topk_nonzero: stable ascending sort, the first n - k lose. */
		for (i = 0; i < n; i++) {
			int64_t v = i;

			for (k = i; k > 0 && y->S[ord[k - 1]] > y->S[v]; k--) {
				ord[k] = ord[k - 1];
			}
			ord[k] = v;
		}
		for (i = 0; i < n - kmax; i++) {
			y->new_permit[ord[i]] = false;
		}
	}
	if (y->conf.owner_uid >= 0 && (unsigned)y->conf.owner_uid < n) {
		y->new_permit[y->conf.owner_uid] = true;
	}
}

/* §3.1 activity and §3.4 active stake. */
static void
active_stake(struct bx_yuma *y)
{
	unsigned i;

	for (i = 0; i < y->n; i++) {
		bool inactive = y->last_update[i] + y->conf.activity_cutoff < y->block;

		y->A[i] = (inactive || y->forbid[i]) ? 0 : y->S[i];
	}
	vnormalize(y->A, y->n);
}

/* §3.5: masked, row-normalised weights into m_w / p_w. */
static void
load_weights(struct bx_yuma *y)
{
	unsigned n = y->n, i, j;

	for (i = 0; i < n; i++) {
		size_t row = (size_t)i * n;
		int64_t sum = 0;

		for (j = 0; j < n; j++) {
			bool keep = y->wset[row + j] && !y->forbid[i] &&
			            (i != j || (int)i == y->conf.owner_uid) &&
			            y->last_update[i] > y->reg_block[j];

			y->p_w[row + j] = keep;
			y->m_w[row + j] = keep ? (int64_t)y->weights[row + j] * ONE : 0;
			sum += y->m_w[row + j];
		}
		for (j = 0; j < n && sum > 0; j++) {
			y->m_w[row + j] = fdiv(y->m_w[row + j], sum);
		}
	}
}

/* §3.6-3.9: consensus, clipping, trust, incentive, bond weights. */
static void
consensus_and_incentive(struct bx_yuma *y)
{
	unsigned n = y->n, i, j;
	int64_t beta = fdiv((int64_t)y->conf.bonds_penalty * ONE, (int64_t)65535 * ONE);

	bx_yuma_weighted_median_cols(y->A, y->m_w, n, n,
	                             fdiv((int64_t)y->conf.kappa * ONE, (int64_t)65535 * ONE), y->C,
	                             y->v_tmp);
	memset(y->I, 0, n * sizeof(int64_t));
	for (i = 0; i < n; i++) {
		size_t row = (size_t)i * n;

		y->Tv[i] = 0;
		for (j = 0; j < n; j++) {
			int64_t w = y->m_w[row + j], c = y->C[j];
			bool keep = y->p_w[row + j] && !(c < w && c == 0);

			y->p_wc[row + j] = keep;
			y->m_wc[row + j] = keep ? BX_MIN(w, c) : 0;
			y->Tv[i] += y->m_wc[row + j];
			y->I[j] += fmul(y->A[i], y->m_wc[row + j]);
		}
		for (j = 0; j < n; j++) {
			int64_t w = y->m_w[row + j], v;

			if (beta == 0) {
				y->m_wb[row + j] = w;
				y->p_wb[row + j] = y->p_w[row + j];
			} else if (beta == ONE) {
				y->m_wb[row + j] = y->m_wc[row + j];
				y->p_wb[row + j] = y->p_wc[row + j];
			} else {
				v = w + fmul(beta, y->m_wc[row + j] - w);
				y->m_wb[row + j] = v > 0 ? v : 0;
				y->p_wb[row + j] = v > 0;
			}
		}
	}
	vnormalize(y->I, n);
}

static void
col_normalize(int64_t *m, unsigned n)
{
	unsigned i, j;

	for (j = 0; j < n; j++) {
		int64_t sum = 0;

		for (i = 0; i < n; i++) {
			sum += m[(size_t)i * n + j];
		}
		for (i = 0; i < n && sum != 0; i++) {
			m[(size_t)i * n + j] = fdiv(m[(size_t)i * n + j], sum);
		}
	}
}

/* Stored bonds into m_b, masking recently registered columns (§3.10a step 2). */
static void
load_bonds(struct bx_yuma *y, bool proportion)
{
	unsigned n = y->n, i, j;
	uint64_t last_tempo = y->last_step_block != 0 ?
	                              y->last_step_block + 1 :
	                              (y->block > y->conf.tempo ? y->block - y->conf.tempo : 0);

	for (i = 0; i < n; i++) {
		for (j = 0; j < n; j++) {
			size_t k = (size_t)i * n + j;
			uint16_t b = last_tempo <= y->reg_block[j] ? 0 : y->bonds[k];

			y->m_b[k] = proportion ? u16_prop(b) : (int64_t)b * ONE;
		}
	}
}

static int64_t
ema_alpha(const struct bx_yuma *y)
{
	/* 1 - I32F32(I64F64(bma) / 1e6) == 1 - floor(bma * 2^32 / 1e6). */
	return ONE - (int64_t)(((u128)y->conf.bonds_moving_average << 32) / 1000000);
}

/* mat_ema_sparse: alpha * new + (1 - alpha) * old, entries > 0 kept; into m_b. */
static void
ema_fixed(struct bx_yuma *y, const int64_t *nw, int64_t alpha)
{
	size_t k, nn = (size_t)y->n * y->n;

	for (k = 0; k < nn; k++) {
		int64_t v = fmul(alpha, nw[k]) + fmul(ONE - alpha, y->m_b[k]);

		y->m_b[k] = v > 0 ? v : 0;
	}
}

/* §3.10a: original Yuma bonds and dividends; the u16 bonds go to m_t. */
static void
bonds_yuma2(struct bx_yuma *y)
{
	unsigned n = y->n, i, j;

	load_bonds(y, false);
	col_normalize(y->m_b, n);
	for (i = 0; i < n; i++) {
		for (j = 0; j < n; j++) {
			y->m_t[(size_t)i * n + j] = fmul(y->m_wb[(size_t)i * n + j], y->A[i]);
		}
	}
	col_normalize(y->m_t, n);
	ema_fixed(y, y->m_t, ema_alpha(y));
	col_normalize(y->m_b, n);
	for (i = 0; i < n; i++) {
		y->D[i] = 0;
		for (j = 0; j < n; j++) {
			y->D[i] += fmul(y->I[j], y->m_b[(size_t)i * n + j]);
		}
	}
	vnormalize(y->D, n);
	/* Column max-upscale for storage. */
	for (j = 0; j < n; j++) {
		int64_t max = 0;

		for (i = 0; i < n; i++) {
			max = BX_MAX(max, y->m_b[(size_t)i * n + j]);
		}
		for (i = 0; i < n; i++) {
			size_t k = (size_t)i * n + j;

			y->m_t[k] = max == 0 ? y->m_b[k] : fdiv(y->m_b[k], max);
		}
	}
}

/* alpha_sigmoid (§3.10b): the liquid alpha of one bond. */
static int64_t
liquid_alpha(const struct bx_yuma *y, int64_t c, int64_t w, int64_t b)
{
	int64_t lo = u16_prop(y->conf.alpha_low), hi = u16_prop(y->conf.alpha_high);
	int64_t buy = fclamp(w - c, 0, ONE), sell = fclamp(b - w, 0, ONE);
	int64_t d = w >= b ? buy : sell;
	int64_t slope = fdiv((int64_t)y->conf.alpha_steepness * ONE, -100 * ONE);
	int64_t sig = fdiv(ONE, ONE + fexp_safe(fmul(slope, d - ONE / 2)));

	return fclamp(lo + fmul(sig, hi - lo), lo, hi);
}

/* §3.10b: Yuma 3 bonds and dividends; the new bonds go to m_t. */
static void
bonds_yuma3(struct bx_yuma *y)
{
	unsigned n = y->n, i, j;
	bool any_c = false, liquid;

	load_bonds(y, true);
	for (j = 0; j < n; j++) {
		any_c |= y->C[j] != 0;
	}
	liquid = y->conf.liquid_alpha && any_c;
	if (liquid) {
		for (i = 0; i < n; i++) {
			for (j = 0; j < n; j++) {
				size_t k = (size_t)i * n + j;
				int64_t a, v;

				if (!y->p_wb[k]) {
					/* Only the columns of the new Wb row are emitted (§7.1). */
					y->m_b[k] = 0;
					continue;
				}
				a = liquid_alpha(y, y->C[j], y->m_wb[k], y->m_b[k]);
				v = fmul(ONE - a, y->m_b[k]) + BX_MAX(fmul(a, y->m_wb[k]), 0);
				v = BX_MIN(v, ONE);
				y->m_b[k] = v > 0 ? v : 0;
			}
		}
	} else {
		ema_fixed(y, y->m_wb, ema_alpha(y));
	}
	memcpy(y->m_t, y->m_b, (size_t)n * n * sizeof(int64_t));
	col_normalize(y->m_t, n);
	for (i = 0; i < n; i++) {
		int64_t tb = 0;

		for (j = 0; j < n; j++) {
			tb += fmul(y->m_t[(size_t)i * n + j], y->I[j]);
		}
		y->D[i] = fmul(tb, y->A[i]);
	}
	vnormalize(y->D, n);
	memcpy(y->m_t, y->m_b, (size_t)n * n * sizeof(int64_t));
}

/* §3.11: emission shares and amounts. */
static void
emission(struct bx_yuma *y, uint64_t e)
{
	unsigned n = y->n, i;
	int64_t sum = 0, asum = 0;

	for (i = 0; i < n; i++) {
		sum += y->I[i] + y->D[i];
		asum += y->A[i];
	}
	for (i = 0; i < n; i++) {
		int64_t ss = 0, vs;

		if (sum == 0) {
			vs = asum != 0 ? y->A[i] : y->S[i];
		} else {
			ss = fdiv(y->I[i], sum);
			vs = fdiv(y->D[i], sum);
		}
		y->server_emission[i] = (uint64_t)(((u128)ss * e) >> 32);
		y->validator_emission[i] = (uint64_t)(((u128)vs * e) >> 32);
	}
}

/* §3.12: bond rows by permit, then the new permits. */
static void
store(struct bx_yuma *y)
{
	unsigned n = y->n, i, j;

	for (i = 0; i < n; i++) {
		uint16_t *row = y->bonds + (size_t)i * n;

		if (y->new_permit[i]) {
			for (j = 0; j < n; j++) {
				row[j] = bx_fx_to_u16(y->m_t[(size_t)i * n + j]);
			}
		} else if (y->permit[i]) {
			memset(row, 0, n * sizeof(uint16_t));
		}
	}
	memcpy(y->permit, y->new_permit, n * sizeof(bool));
}

void
bx_yuma_epoch(struct bx_yuma *y, uint64_t e)
{
	stake_and_permits(y);
	active_stake(y);
	load_weights(y);
	consensus_and_incentive(y);
	if (y->conf.yuma3) {
		bonds_yuma3(y);
	} else {
		bonds_yuma2(y);
	}
	emission(y, e);
	store(y);
	y->last_step_block = y->block;
	y->block += y->conf.tempo;
}
