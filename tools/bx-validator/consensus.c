/* Consensus mode (consensus.h). */
#include "consensus.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bx/crypto.h>
#include <bx/platform.h>

#define EPOCH_EMISSION 1000000000ull /* 1 alpha in rao per epoch */

struct miner {
	char ip[64];
	unsigned port;
	char ss58[BX_SS58_MAX_LEN];
	uint8_t pub[32];
};

static int
parse_miner(const char *s, struct miner *m, struct bx_errbuf *eb)
{
	const char *eq = strchr(s, '=');
	char url[160];

	if (eq == NULL || (size_t)(eq - s) >= sizeof(url) || strlen(eq + 1) >= sizeof(m->ss58)) {
		return bx_err(eb, EINVAL, "--miner \"%s\": want IP:PORT=SS58", s);
	}
	memcpy(url, s, (size_t)(eq - s));
	url[eq - s] = 0;
	snprintf(m->ss58, sizeof(m->ss58), "%s", eq + 1);
	if (bx_cli_parse_url(url, m->ip, sizeof(m->ip), &m->port) < 0 ||
	    bx_ss58_decode(m->ss58, strlen(m->ss58), m->pub, NULL, eb) < 0) {
		return bx_err(eb, EINVAL, "--miner \"%s\": want IP:PORT=SS58", s);
	}
	return 0;
}

/* Mean final score (score.h) of validator id's requests to one miner. */
static int
score_miner(const struct bx_cli *cli, const struct miner *m, struct bx_dd_identity *id,
            const struct bx_scorer *scorer, double *out, struct bx_errbuf *eb)
{
	struct bx_dd_payload p = { .texts = cli->texts,
		                   .nb_texts = cli->nb_texts,
		                   .prompt = cli->prompt,
		                   .max_tokens = cli->max_tokens,
		                   .temperature = cli->temperature,
		                   .top_p = 1.0,
		                   .seed = -1 };
	struct bx_dd_template t[BX_DD_NB_KINDS];
	struct bx_ld_conf c = cli->ld;
	struct bx_ld_result res;
	double sum = 0;
	uint64_t i, n = 0;
	int k, ret = 0, made = 0;

	snprintf(c.ip, sizeof(c.ip), "%s", m->ip);
	c.port = m->port;
	memcpy(c.axon_pub, m->pub, 32);
	c.have_axon_pub = true;
	c.ids = id;
	c.nb_ids = 1;
	c.score = bx_scorer_fn;
	c.score_arg = (void *)scorer;
	c.progress = NULL;
	for (k = 0; k < BX_DD_NB_KINDS; k++, made++) {
		c.tmpl[k] = NULL;
		c.mix[k] = cli->mix[k];
		p.kind = (enum bx_dd_kind)k;
		ret = bx_dd_template_init(&t[k], &p, m->ip, m->port, m->ss58, cli->dendrite_ip,
		                          c.timeout_s, eb);
		if (ret < 0) {
			goto out;
		}
		c.tmpl[k] = cli->mix[k] > 0 ? &t[k] : NULL;
	}
	ret = bx_ld_run(&c, &res, eb);
	if (ret < 0) {
		goto out;
	}
	for (i = 0; i < res.nb_recs; i++) {
		const struct bx_ld_rec *r = &res.recs[i];
		double q = r->status == 200 ? (r->score >= 0 ? r->score : 1.0) : 0.0;

		if (r->flags & BX_LD_F_WARMUP) {
			continue;
		}
		if (r->flags & BX_LD_F_SIG_BAD) {
			q = 0; /* an answer the miner's key did not sign is worth nothing */
		}
		sum += bx_score_final(q, r->lat_us10 / 1e7, c.timeout_s, cli->latency_weight);
		n++;
	}
	*out = n ? sum / (double)n : 0;
	bx_ld_result_fini(&res);
out:
	for (k = 0; k < made; k++) {
		bx_dd_template_fini(&t[k]);
	}
	return ret;
}

static void
print_epoch(FILE *f, const struct bx_yuma *y, unsigned e, unsigned nv, unsigned nm,
            const double *scores)
{
	unsigned i, j;

	fprintf(f, "epoch %u\n  miner  uid  score   consensus  incentive  emission\n", e);
	for (j = 0; j < nm; j++) {
		unsigned u = nv + j;

		fprintf(f, "  %-5u  %-3u  %.4f  %.6f   %.6f   %" PRIu64 "\n", j, u, scores[j],
		        bx_fx_to_double(y->C[u]), bx_fx_to_double(y->I[u]),
		        (uint64_t)y->server_emission[u]);
	}
	fprintf(f,
	        "  validator  uid  stake    trust     dividends  emission    bonds(u16 per miner)\n");
	for (i = 0; i < nv; i++) {
		fprintf(f, "  %-9u  %-3u  %.4f   %.6f  %.6f   %-10" PRIu64 " ", i, i,
		        bx_fx_to_double(y->S[i]), bx_fx_to_double(y->Tv[i]),
		        bx_fx_to_double(y->D[i]), (uint64_t)y->validator_emission[i]);
		for (j = 0; j < nm; j++) {
			fprintf(f, " %u", y->bonds[(size_t)i * y->n + nv + j]);
		}
		fprintf(f, "\n");
	}
}

/* One epoch as a JSON object (every u16-stored output as a proportion, emissions in rao). */
static void
json_epoch(FILE *f, const struct bx_yuma *y, unsigned e, unsigned nv, unsigned nm,
           const double *scores)
{
	unsigned i, j;

	fprintf(f, "%s\n    {\"epoch\": %u, \"miners\": [", e > 1 ? "," : "", e);
	for (j = 0; j < nm; j++) {
		unsigned u = nv + j;

		fprintf(f,
		        "%s{\"uid\": %u, \"score\": %.6f, \"consensus\": %.9f, "
		        "\"incentive\": %.9f, \"emission\": %" PRIu64 "}",
		        j ? ", " : "", u, scores[j], bx_fx_to_double(y->C[u]),
		        bx_fx_to_double(y->I[u]), (uint64_t)y->server_emission[u]);
	}
	fprintf(f, "], \"validators\": [");
	for (i = 0; i < nv; i++) {
		fprintf(f,
		        "%s{\"uid\": %u, \"stake\": %.9f, \"trust\": %.9f, \"dividends\": %.9f, "
		        "\"emission\": %" PRIu64 ", \"weights_u16\": [",
		        i ? ", " : "", i, bx_fx_to_double(y->S[i]), bx_fx_to_double(y->Tv[i]),
		        bx_fx_to_double(y->D[i]), (uint64_t)y->validator_emission[i]);
		for (j = 0; j < nm; j++) {
			fprintf(f, "%s%u", j ? ", " : "", y->weights[(size_t)i * y->n + nv + j]);
		}
		fprintf(f, "], \"bonds_u16\": [");
		for (j = 0; j < nm; j++) {
			fprintf(f, "%s%u", j ? ", " : "", y->bonds[(size_t)i * y->n + nv + j]);
		}
		fprintf(f, "]}");
	}
	fprintf(f, "]}");
}

static int
json_open(const char *path, const struct bx_yuma_conf *yc, unsigned nv, unsigned nm, FILE **out,
          struct bx_errbuf *eb)
{
	FILE *f = fopen(path, "w");

	if (f == NULL) {
		return bx_err(eb, errno, "%s: %s", path, bx_strerror(errno));
	}
	fprintf(f,
	        "{\"yuma\": {\"kappa\": %u, \"bonds_penalty\": %u, "
	        "\"bonds_moving_average\": %" PRIu64 ", \"yuma3\": %s, \"liquid_alpha\": %s}, "
	        "\"validators\": %u, \"miners\": %u, \"epoch_emission\": %" PRIu64 ", "
	        "\"epochs\": [",
	        yc->kappa, yc->bonds_penalty, yc->bonds_moving_average,
	        yc->yuma3 ? "true" : "false", yc->liquid_alpha ? "true" : "false", nv, nm,
	        (uint64_t)EPOCH_EMISSION);
	*out = f;
	return 0;
}

static int
stakes(const struct bx_cli *cli, struct bx_yuma *y, unsigned nv, struct bx_errbuf *eb)
{
	const char *s = cli->stakes;
	unsigned i;
	char *e;

	for (i = 0; i < nv; i++) {
		double v = 1;

		if (*s != 0) {
			v = strtod(s, &e);
			if (e == s || !(v >= 0) || v > 1e12) {
				return bx_err(eb, EINVAL, "--stakes: bad value at \"%s\"", s);
			}
			s = *e == ',' ? e + 1 : e;
		}
		y->stake[i] = (uint64_t)(v * 1e9); /* alpha in rao */
	}
	return 0;
}

static int
epoch(const struct bx_cli *cli, struct bx_yuma *y, struct bx_dd_identity *ids, unsigned nv,
      const struct miner *ms, unsigned nm, const struct bx_scorer *scorer, double *mean,
      struct bx_errbuf *eb)
{
	uint16_t cols[BX_CLI_MAX_MINERS], vals[BX_CLI_MAX_MINERS];
	unsigned i, j;
	int ret;

	memset(mean, 0, nm * sizeof(double));
	for (i = 0; i < nv; i++) {
		for (j = 0; j < nm; j++) {
			double sc = 0;

			ret = score_miner(cli, &ms[j], &ids[i], scorer, &sc, eb);
			if (ret < 0) {
				return ret;
			}
			mean[j] += sc / nv;
			cols[j] = (uint16_t)(nv + j);
			vals[j] = (uint16_t)(sc * 65535.0);
		}
		/* As set_weights does: max-upscaled u16, explicit zeros kept. */
		ret = bx_yuma_set_weights(y, i, cols, vals, nm, true);
		if (ret < 0) {
			return bx_err(eb, -ret, "set_weights for validator %u failed", i);
		}
	}
	return 0;
}

int
bx_cs_run(const struct bx_cli *cli, struct bx_dd_identity *ids, unsigned nb_ids,
          const struct bx_scorer *scorer, FILE *out, struct bx_cs_result *res, struct bx_errbuf *eb)
{
	struct miner ms[BX_CLI_MAX_MINERS];
	unsigned nm = cli->nb_miners, nv = nb_ids, e, i;
	struct bx_yuma_conf yc;
	struct bx_yuma *y = NULL;
	double mean[BX_CLI_MAX_MINERS];
	FILE *jf = NULL;
	int ret;

	memset(res, 0, sizeof(*res));
	for (i = 0; i < nm; i++) {
		ret = parse_miner(cli->miners[i], &ms[i], eb);
		if (ret < 0) {
			return ret;
		}
	}
	yc = cli->yuma;
	yc.tempo = 1; /* one epoch per scoring round; blocks are only a clock here */
	if (cli->json_path != NULL && (ret = json_open(cli->json_path, &yc, nv, nm, &jf, eb)) < 0) {
		return ret;
	}
	ret = bx_yuma_create(nv + nm, &yc, &y);
	if (ret < 0) {
		ret = bx_err(eb, -ret, "yuma: cannot create a subnet of %u", nv + nm);
		goto out;
	}
	ret = stakes(cli, y, nv, eb);
	if (ret < 0) {
		goto out;
	}
	bx_yuma_epoch(y, EPOCH_EMISSION); /* the chain grants permits an epoch ahead */
	for (e = 1; e <= cli->epochs; e++) {
		ret = epoch(cli, y, ids, nv, ms, nm, scorer, mean, eb);
		if (ret < 0) {
			goto out;
		}
		bx_yuma_epoch(y, EPOCH_EMISSION);
		for (i = 0; i < nm; i++) {
			res->miner_emission[i] += y->server_emission[nv + i];
		}
		for (i = 0; i < nv; i++) {
			res->validator_emission[i] += y->validator_emission[i];
		}
		if (out != NULL) {
			print_epoch(out, y, e, nv, nm, mean);
		}
		if (jf != NULL) {
			json_epoch(jf, y, e, nv, nm, mean);
		}
	}
	res->nb_validators = nv;
	res->nb_miners = nm;
	for (i = 0; i < nm; i++) {
		res->score[i] = mean[i];
		res->incentive[i] = bx_fx_to_double(y->I[nv + i]);
	}
	for (i = 0; i < nv; i++) {
		res->dividends[i] = bx_fx_to_double(y->D[i]);
	}
out:
	if (jf != NULL) {
		fprintf(jf, "\n  ]}\n");
		if (fclose(jf) != 0 && ret == 0) {
			ret = bx_err(eb, EIO, "%s: write failed", cli->json_path);
		}
	}
	bx_yuma_destroy(y);
	return ret;
}
