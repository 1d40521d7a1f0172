/*
 * bx-validator's command line: shared by main.c and the tests, so the same
 * parsing and set-up runs in both.
 */
#ifndef BX_VALIDATOR_CLI_H
#define BX_VALIDATOR_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include "dendrite.h"
#include "load.h"
#include "yuma.h"

#define BX_CLI_MAX_IDS    256
#define BX_CLI_MAX_TEXTS  64
#define BX_CLI_MAX_MINERS 16

struct bx_cli {
	struct bx_ld_conf ld;
	char url[160];
	char axon_hotkey[BX_SS58_MAX_LEN];
	char dendrite_ip[64];
	char mix_text[128];
	double mix[BX_DD_NB_KINDS];
	unsigned nb_hotkeys; /* generated identities */
	const char *wallet_path, *wallet;
	const char *hotkeys[BX_CLI_MAX_IDS]; /* btcli hotkey names */
	unsigned nb_named;
	const char *texts[BX_CLI_MAX_TEXTS];
	unsigned nb_texts;
	const char *prompt;
	long max_tokens;
	double temperature;
	const char *json_path, *svg_path;
	bool quiet;
	bool print_hotkeys;
	bool dump_answer;
	/* print the first 200 answer's body */ /* print the identities' SS58 addresses and exit */
	double sign_bench_s;                    /* > 0: only measure the signing rate */
	/* Consensus mode */
	const char *miners[BX_CLI_MAX_MINERS]; /* "ip:port=ss58" */
	unsigned nb_miners, epochs;
	char stakes[256];
	const char *reference;         /* reference embedding: comma-separated floats */
	const char *ref_model;         /* model directory: reference embeddings computed locally */
	const char *ref_llm, *ref_tok; /* reference generation model and its tokenizer.bin */
	double latency_weight;
	struct bx_yuma_conf yuma; /* chain defaults; --yuma3, --liquid-alpha, --kappa, ... */
};

/* Parse argv. 0, 1 (--help printed: exit 0), or -EINVAL with a message in eb. */
int bx_cli_parse(struct bx_cli *cli, int argc, char **argv, struct bx_errbuf *eb);
void bx_cli_usage(FILE *f);

/* "http://1.2.3.4:8091[/...]" -> ip, port. 0 or -EINVAL. */
int bx_cli_parse_url(const char *url, char *ip, size_t ip_len, unsigned *port);

/* Identities: generated from the seed, or loaded from a btcli wallet. */
int bx_cli_identities(const struct bx_cli *cli, struct bx_dd_identity *ids, unsigned *nb,
                      struct bx_errbuf *eb);

/* Signed requests/s one thread can build for tmpl (the client's ceiling). */
double bx_cli_sign_rate(const struct bx_dd_template *tmpl, struct bx_dd_identity *id,
                        double seconds);

#endif /* BX_VALIDATOR_CLI_H */
