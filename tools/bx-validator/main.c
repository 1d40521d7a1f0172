/*
 * bx-validator: a Bittensor validator's dendrite as a benchmark. See
 * --help, load.h (how load is driven and measured), score.h (scoring) and
 * consensus.h (weights and Yuma).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bx/crypto.h>
#include <bx/platform.h>

#include "cli.h"
#include "consensus.h"
#include "reference.h"
#include "report.h"
#include "score.h"

#define MAX_DIM ((size_t)64 * 1024) /* reference floats: texts x dimension */

static struct bx_dd_identity ids[BX_CLI_MAX_IDS];
static char greedy[16384];
static unsigned nb_ids;
static float ref_vec[MAX_DIM];

static void
progress_line(void *arg, const char *line)
{
	(void)arg;
	fprintf(stderr, "%s\n", line);
}

/* The miner's hotkey: given, or a generated stand-in (then nothing can be verified). */
static int
axon_key(struct bx_cli *cli, struct bx_errbuf *eb)
{
	struct bx_sr25519_keypair *kp;
	uint8_t seed[32] = "bx-validator stand-in axon key";

	if (cli->axon_hotkey[0] != 0) {
		if (bx_ss58_decode(cli->axon_hotkey, strlen(cli->axon_hotkey), cli->ld.axon_pub,
		                   NULL, eb) < 0) {
			return -EINVAL;
		}
		cli->ld.have_axon_pub = true;
		return 0;
	}
	if (bx_sr25519_keypair_from_seed(seed, &kp) < 0) {
		return bx_err(eb, EIO, "cannot make a stand-in axon key");
	}
	bx_ss58_encode(cli->axon_hotkey, sizeof(cli->axon_hotkey), bx_sr25519_public(kp),
	               BX_SS58_BITTENSOR);
	bx_sr25519_keypair_destroy(kp);
	return 0;
}

static int
templates(struct bx_cli *cli, struct bx_dd_template *t, struct bx_errbuf *eb)
{
	struct bx_dd_payload p = { .texts = cli->texts,
		                   .nb_texts = cli->nb_texts,
		                   .prompt = cli->prompt,
		                   .max_tokens = cli->max_tokens,
		                   .temperature = cli->temperature,
		                   .top_p = 1.0,
		                   .seed = -1 };
	int k, ret;

	for (k = 0; k < BX_DD_NB_KINDS; k++) {
		p.kind = (enum bx_dd_kind)k;
		ret = bx_dd_template_init(&t[k], &p, cli->ld.ip, cli->ld.port, cli->axon_hotkey,
		                          cli->dendrite_ip, cli->ld.timeout_s, eb);
		if (ret < 0) {
			return ret;
		}
		cli->ld.tmpl[k] = cli->mix[k] > 0 ? &t[k] : NULL;
		cli->ld.mix[k] = cli->mix[k];
	}
	return 0;
}

static int
load_run(struct bx_cli *cli, const struct bx_scorer *scorer, struct bx_errbuf *eb)
{
	struct bx_ld_result res;
	struct bx_rp_summary s;
	const struct bx_dd_template *first = NULL;
	double rate;
	int k, ret;

	for (k = 0; k < BX_DD_NB_KINDS && first == NULL; k++) {
		first = cli->ld.tmpl[k];
	}
	/* The client's own ceiling, reported beside every run. */
	rate = bx_cli_sign_rate(first, &ids[0], 0.2);
	cli->ld.score = bx_scorer_fn;
	cli->ld.score_arg = (void *)scorer;
	cli->ld.progress = cli->quiet ? NULL : progress_line;
	ret = bx_ld_run(&cli->ld, &res, eb);
	if (ret < 0) {
		return ret;
	}
	ret = bx_rp_summarize(&s, &cli->ld, &res);
	if (ret < 0) {
		bx_ld_result_fini(&res);
		return bx_err(eb, ENOMEM, "report: out of memory");
	}
	snprintf(s.url, sizeof(s.url), "%s", cli->url);
	snprintf(s.mix, sizeof(s.mix), "%s", cli->mix_text);
	s.sign_rate = rate;
	bx_rp_text(&s, stdout);
	if (cli->dump_answer && res.sample != NULL) {
		printf("first answer: %s\n", res.sample);
	}
	if (cli->json_path != NULL && (ret = bx_rp_json(&s, cli->json_path)) < 0) {
		bx_err(eb, -ret, "%s: %s", cli->json_path, bx_strerror(ret));
	}
	if (ret == 0 && cli->svg_path != NULL && (ret = bx_rp_svg(&s, cli->svg_path)) < 0) {
		bx_err(eb, -ret, "%s: %s", cli->svg_path, bx_strerror(ret));
	}
	bx_rp_fini(&s);
	bx_ld_result_fini(&res);
	return ret;
}

/* The references answers are scored against: a vector, a local model, a generation model. */
static int
references(struct bx_cli *cli, struct bx_scorer *scorer, struct bx_errbuf *eb)
{
	unsigned dim;
	int ret, n;

	if (cli->reference != NULL) {
		n = bx_score_parse_vector(cli->reference, ref_vec, MAX_DIM);
		if (n < 0) {
			return bx_err(eb, EINVAL,
			              "--reference: not a comma-separated list of numbers");
		}
		scorer->ref = ref_vec;
		scorer->dim = (unsigned)n;
		scorer->nb_refs = 1;
	} else if (cli->ref_model != NULL) {
		ret = bx_ref_embed(cli->ref_model, cli->texts, cli->nb_texts, ref_vec, MAX_DIM,
		                   &dim, eb);
		if (ret < 0) {
			return ret;
		}
		scorer->ref = ref_vec;
		scorer->dim = dim;
		scorer->nb_refs = cli->nb_texts;
	}
	if (cli->ref_llm == NULL) {
		return 0;
	}
	ret = bx_ref_llm_open(cli->ref_llm, cli->ref_tok, &scorer->llm, eb);
	if (ret < 0) {
		return ret;
	}
	ret = bx_ref_llm_greedy(scorer->llm, cli->prompt, (unsigned)cli->max_tokens, greedy,
	                        sizeof(greedy), &scorer->ref_ll);
	if (ret < 0) {
		return bx_err(eb, -ret, "%s: reference generation failed: %s", cli->ref_llm,
		              bx_strerror(ret));
	}
	scorer->prompt = cli->prompt;
	scorer->ref_completion = greedy;
	fprintf(stderr, "reference greedy output (mean log-likelihood %.4f): %s\n", scorer->ref_ll,
	        greedy);
	return 0;
}

/* --sign-bench: one JSON line per synapse in the mix. */
static void
sign_bench(const struct bx_cli *cli)
{
	int k;

	for (k = 0; k < BX_DD_NB_KINDS; k++) {
		if (cli->ld.tmpl[k] != NULL) {
			printf("{\"bench\": \"sign_rate\", \"synapse\": \"%s\", \"per_thread\": %.0f}\n",
			       bx_dd_kind_name((enum bx_dd_kind)k),
			       bx_cli_sign_rate(cli->ld.tmpl[k], &ids[0], cli->sign_bench_s));
		}
	}
}

static int
run(struct bx_cli *cli, struct bx_errbuf *eb)
{
	struct bx_dd_template t[BX_DD_NB_KINDS];
	struct bx_scorer scorer = { .norm_tol = 1e-3, .nb_texts = cli->nb_texts };
	struct bx_cs_result cs;
	unsigned i;
	int ret, k;

	memset(t, 0, sizeof(t));
	if ((ret = references(cli, &scorer, eb)) < 0 ||
	    (ret = bx_cli_identities(cli, ids, &nb_ids, eb)) < 0) {
		goto out;
	}
	cli->ld.ids = ids;
	cli->ld.nb_ids = nb_ids;
	if (cli->print_hotkeys) {
		for (i = 0; i < nb_ids; i++) {
			printf("%s\n", ids[i].ss58);
		}
	} else if (cli->nb_miners > 0) {
		ret = bx_cs_run(cli, ids, nb_ids, &scorer, stdout, &cs, eb);
	} else if ((ret = axon_key(cli, eb)) == 0 && (ret = templates(cli, t, eb)) == 0) {
		if (cli->sign_bench_s > 0) {
			sign_bench(cli);
		} else {
			ret = load_run(cli, &scorer, eb);
		}
	}
out:
	for (k = 0; k < BX_DD_NB_KINDS; k++) {
		bx_dd_template_fini(&t[k]);
	}
	bx_ref_llm_close(scorer.llm);
	return ret;
}

int
main(int argc, char **argv)
{
	static struct bx_cli cli;
	struct bx_errbuf eb = { { 0 } };
	unsigned i;
	int ret = bx_cli_parse(&cli, argc, argv, &eb);

	if (ret == 1) {
		bx_cli_usage(stdout);
		return 0;
	}
	if (ret < 0) {
		fprintf(stderr, "bx-validator: %s\n", eb.msg);
		return 2;
	}
	if (bx_crypto_init() < 0) {
		fprintf(stderr, "bx-validator: libsodium failed to initialise\n");
		return 1;
	}
	ret = run(&cli, &eb);
	for (i = 0; i < nb_ids; i++) {
		bx_dd_identity_fini(&ids[i]);
	}
	if (ret < 0) {
		fprintf(stderr, "bx-validator: %s\n", eb.msg);
		return ret == -EINVAL ? 2 : 1;
	}
	return 0;
}
