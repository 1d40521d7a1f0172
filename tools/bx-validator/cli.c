/* bx-validator's command line (cli.h). */
#include "cli.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bx/crypto.h>
#include <bx/platform.h>

void
bx_cli_usage(FILE *f)
{
	fputs("usage: bx-validator [options]\n"
	      "Drive validator-shaped load at a Bittensor axon and report what a validator sees.\n"
	      "\n"
	      "Target\n"
	      "  --url URL             axon, http://HOST:PORT, HOST an IPv4 address or a name\n"
	      "                        (default http://127.0.0.1:8091)\n"
	      "  --axon-hotkey SS58    the miner's hotkey: requests are signed for it and its\n"
	      "                        response signatures are verified (default: a generated key)\n"
	      "  --dendrite-ip IP      bt_header_dendrite_ip to send (default 127.0.0.1)\n"
	      "Load\n"
	      "  --synapse MIX         echo|embedding|generation|stream, or weights such as\n"
	      "                        echo:3,embedding:1 (default echo; class names also work)\n"
	      "  --rate R              open loop at R requests/s; 0 = closed loop (default 0)\n"
	      "  --arrival A           constant|poisson (open loop; default constant)\n"
	      "  --seed N              schedule, mix and generated hotkeys (default 1)\n"
	      "  --connections N       keep-alive connections (default 16)\n"
	      "  --threads N           worker threads (default 1)\n"
	      "  --duration S          seconds of sending (default 10)\n"
	      "  --warmup S            seconds excluded from the figures (default 0)\n"
	      "  --requests N          stop after N requests (default 10000000)\n"
	      "  --timeout S           per-request total timeout, as the dendrite's (default 12)\n"
	      "  --no-verify           do not verify the miner's response signatures\n"
	      "Identities\n"
	      "  --hotkeys N           N generated validator hotkeys (default 1)\n"
	      "  --wallet-path DIR     btcli wallets directory (default ~/.bittensor/wallets)\n"
	      "  --wallet NAME         btcli wallet holding the hotkeys below\n"
	      "  --hotkey NAME         a hotkey of that wallet (repeat for several)\n"
	      "Payloads\n"
	      "  --text T              an embedding input (repeat; default \"hello world\")\n"
	      "  --prompt P            generation prompt (default \"Hello\")\n"
	      "  --max-tokens N        generation length (default 16)\n"
	      "  --temperature T       (default 0.0: greedy)\n"
	      "Reports\n"
	      "  --json PATH           every figure as JSON\n"
	      "  --svg PATH            latency percentiles over time and the distribution\n"
	      "  --quiet               no per-second progress lines\n"
	      "  --sign-bench S        measure signed requests/s per thread for S seconds, exit\n"
	      "  --dump-answer         print the body of the first successful answer\n"
	      "  --print-hotkeys       print the validator hotkeys' SS58 addresses (for a\n"
	      "                        metagraph or registration) and exit\n"
	      "Scoring and consensus\n"
	      "  --reference V         reference embedding (comma-separated floats); embedding\n"
	      "                        answers are scored by cosine similarity against it\n"
	      "  --reference-model DIR embedding model directory (as bxd's model.dir): the\n"
	      "                        texts are embedded locally by bx's reference path and\n"
	      "                        each answer is scored against its text's vector\n"
	      "  --reference-llm PATH  generation model (llama2.c .bin or .gguf) run locally:\n"
	      "                        answers score min(1, exp(ll(answer) - ll(greedy)))\n"
	      "  --reference-tokenizer PATH  tokenizer.bin for a llama2.c model\n"
	      "  --latency-weight W    score = quality * (1 - W * latency/timeout) (default 0.2)\n"
	      "  --miner IP:PORT=SS58  consensus mode: a miner (repeat); every validator hotkey\n"
	      "                        scores every miner, sets weights, and Yuma runs\n"
	      "  --epochs N            consensus epochs (default 3)\n"
	      "  --stakes A,B,...      validator stakes (default 1 each)\n"
	      "  --yuma3               Yuma 3 bonds (default: the original Yuma, Yuma3On=false)\n"
	      "  --liquid-alpha        per-bond alpha (Yuma 3)\n"
	      "  --kappa N             consensus threshold, u16 (default 32767)\n"
	      "  --bonds-penalty N     u16 (default 65535)\n"
	      "  --bonds-ma N          bonds moving average, /1e6 (default 900000)\n"
	      "  --help\n",
	      f);
}

int
bx_cli_parse_url(const char *url, char *ip, size_t ip_len, unsigned *port)
{
	const char *p = url, *colon, *end;
	struct in_addr a;
	char *e;
	long v;

	if (strncmp(p, "http://", 7) == 0) {
		p += 7;
	}
	colon = strchr(p, ':');
	if (colon == NULL || (size_t)(colon - p) >= ip_len) {
		return -EINVAL;
	}
	memcpy(ip, p, (size_t)(colon - p));
	ip[colon - p] = 0;
	if (inet_pton(AF_INET, ip, &a) != 1) {
		/* A name: its first IPv4 address (the dendrite itself only dials addresses). */
		struct addrinfo hints = { .ai_family = AF_INET, .ai_socktype = SOCK_STREAM }, *res;

		if (getaddrinfo(ip, NULL, &hints, &res) != 0) {
			return -EINVAL;
		}
		inet_ntop(AF_INET, &((struct sockaddr_in *)res->ai_addr)->sin_addr, ip,
		          (socklen_t)ip_len);
		freeaddrinfo(res);
	}
	v = strtol(colon + 1, &e, 10);
	end = e;
	if (end == colon + 1 || v <= 0 || v > 65535 || (*end != 0 && *end != '/')) {
		return -EINVAL;
	}
	*port = (unsigned)v;
	return 0;
}

static int
parse_mix(struct bx_cli *cli, const char *s, struct bx_errbuf *eb)
{
	char buf[128], *tok, *save = NULL;

	if (strlen(s) >= sizeof(buf)) {
		return bx_err(eb, EINVAL, "--synapse: too long");
	}
	memset(cli->mix, 0, sizeof(cli->mix));
	snprintf(buf, sizeof(buf), "%s", s);
	snprintf(cli->mix_text, sizeof(cli->mix_text), "%s", s);
	for (tok = strtok_r(buf, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
		char *w = strchr(tok, ':');
		double weight = 1;
		int k;

		if (w != NULL) {
			*w++ = 0;
			weight = strtod(w, NULL);
		}
		k = bx_dd_kind_parse(tok);
		if (k < 0 || !(weight > 0)) {
			return bx_err(eb, EINVAL, "--synapse: unknown synapse or bad weight \"%s\"",
			              tok);
		}
		cli->mix[k] += weight;
	}
	return 0;
}

static int
num(const char *opt, const char *s, double lo, double hi, double *out, struct bx_errbuf *eb)
{
	char *e;
	double v = strtod(s, &e);

	if (e == s || *e != 0 || !(v >= lo && v <= hi)) {
		return bx_err(eb, EINVAL, "--%s: \"%s\" is not a number in [%g, %g]", opt, s, lo,
		              hi);
	}
	*out = v;
	return 0;
}

static void
defaults(struct bx_cli *cli)
{
	memset(cli, 0, sizeof(*cli));
	bx_ld_conf_default(&cli->ld);
	snprintf(cli->url, sizeof(cli->url), "http://127.0.0.1:8091");
	snprintf(cli->dendrite_ip, sizeof(cli->dendrite_ip), "127.0.0.1");
	snprintf(cli->mix_text, sizeof(cli->mix_text), "echo");
	cli->mix[BX_DD_ECHO] = 1;
	cli->nb_hotkeys = 1;
	cli->max_tokens = 16;
	cli->epochs = 3;
	cli->latency_weight = 0.2;
	bx_yuma_conf_default(&cli->yuma);
}

static const struct option opts[] = {
	{ "url", 1, NULL, 'u' },
	{ "axon-hotkey", 1, NULL, 'a' },
	{ "dendrite-ip", 1, NULL, 'I' },
	{ "synapse", 1, NULL, 's' },
	{ "rate", 1, NULL, 'r' },
	{ "arrival", 1, NULL, 'A' },
	{ "seed", 1, NULL, 'S' },
	{ "connections", 1, NULL, 'c' },
	{ "threads", 1, NULL, 't' },
	{ "duration", 1, NULL, 'd' },
	{ "warmup", 1, NULL, 'w' },
	{ "requests", 1, NULL, 'n' },
	{ "timeout", 1, NULL, 'T' },
	{ "no-verify", 0, NULL, 'V' },
	{ "hotkeys", 1, NULL, 'k' },
	{ "wallet-path", 1, NULL, 'P' },
	{ "wallet", 1, NULL, 'W' },
	{ "hotkey", 1, NULL, 'H' },
	{ "text", 1, NULL, 'x' },
	{ "prompt", 1, NULL, 'p' },
	{ "max-tokens", 1, NULL, 'm' },
	{ "temperature", 1, NULL, 'e' },
	{ "json", 1, NULL, 'j' },
	{ "svg", 1, NULL, 'g' },
	{ "quiet", 0, NULL, 'q' },
	{ "sign-bench", 1, NULL, 'B' },
	{ "reference", 1, NULL, 'R' },
	{ "latency-weight", 1, NULL, 'L' },
	{ "miner", 1, NULL, 'M' },
	{ "epochs", 1, NULL, 'E' },
	{ "stakes", 1, NULL, 'K' },
	{ "help", 0, NULL, 'h' },
	{ "print-hotkeys", 0, NULL, 'Y' },
	{ "dump-answer", 0, NULL, 'D' },
	{ "reference-model", 1, NULL, 'O' },
	{ "reference-llm", 1, NULL, 'G' },
	{ "yuma3", 0, NULL, '3' },
	{ "liquid-alpha", 0, NULL, 'l' },
	{ "kappa", 1, NULL, 'f' },
	{ "bonds-penalty", 1, NULL, 'b' },
	{ "bonds-ma", 1, NULL, 'v' },
	{ "reference-tokenizer", 1, NULL, 'Z' },
	{ NULL, 0, NULL, 0 },
};

/* The Yuma hyperparameters (yuma.md §2). */
static int
yuma_num(struct bx_cli *cli, int c, const char *arg, struct bx_errbuf *eb)
{
	double v;
	int ret = num(c == 'f' ? "kappa" :
	              c == 'b' ? "bonds-penalty" :
	                         "bonds-ma",
	              arg, 0, c == 'v' ? 1e6 : 65535, &v, eb);

	if (ret < 0) {
		return ret;
	}
	if (c == 'f') {
		cli->yuma.kappa = (uint16_t)v;
	} else if (c == 'b') {
		cli->yuma.bonds_penalty = (uint16_t)v;
	} else {
		cli->yuma.bonds_moving_average = (uint64_t)v;
	}
	return 0;
}

/* Options taking a number, with their bounds. */
static int
numeric(struct bx_cli *cli, int c, const char *arg, struct bx_errbuf *eb)
{
	double v;
	int ret;

	switch (c) {
	case 'r':
		return num("rate", arg, 0, 1e7, &cli->ld.rate, eb);
	case 'd':
		return num("duration", arg, 0.001, 86400, &cli->ld.duration_s, eb);
	case 'w':
		return num("warmup", arg, 0, 86400, &cli->ld.warmup_s, eb);
	case 'T':
		return num("timeout", arg, 0.001, 400, &cli->ld.timeout_s, eb);
	case 'e':
		return num("temperature", arg, 0, 10, &cli->temperature, eb);
	case 'B':
		return num("sign-bench", arg, 0.01, 60, &cli->sign_bench_s, eb);
	case 'f':
	case 'b':
	case 'v':
		return yuma_num(cli, c, arg, eb);
	case 'L':
		return num("latency-weight", arg, 0, 1, &cli->latency_weight, eb);
	case 'S':
	case 'c':
	case 't':
	case 'n':
	case 'k':
	case 'm':
	case 'E':
		break;
	default:
		return bx_err(eb, EINVAL, "internal: option %c has no handler", c);
	}
	ret = num(c == 'S' ? "seed" :
	          c == 'c' ? "connections" :
	          c == 't' ? "threads" :
	          c == 'n' ? "requests" :
	          c == 'k' ? "hotkeys" :
	          c == 'm' ? "max-tokens" :
	                     "epochs",
	          arg, 0, 1e12, &v, eb);
	if (ret < 0) {
		return ret;
	}
	switch (c) {
	case 'S':
		cli->ld.seed = (uint64_t)v;
		break;
	case 'c':
		cli->ld.connections = (unsigned)v;
		break;
	case 't':
		cli->ld.threads = (unsigned)v;
		break;
	case 'n':
		cli->ld.max_requests = (uint64_t)v;
		break;
	case 'k':
		cli->nb_hotkeys = (unsigned)BX_MIN(v, BX_CLI_MAX_IDS);
		break;
	case 'm':
		cli->max_tokens = (long)v;
		break;
	default:
		cli->epochs = (unsigned)BX_MIN(v, 10000);
		break;
	}
	return 0;
}

static int
option(struct bx_cli *cli, int c, const char *arg, struct bx_errbuf *eb)
{
	switch (c) {
	case 'u':
		snprintf(cli->url, sizeof(cli->url), "%s", arg);
		return 0;
	case 'a':
		snprintf(cli->axon_hotkey, sizeof(cli->axon_hotkey), "%s", arg);
		return 0;
	case 'I':
		snprintf(cli->dendrite_ip, sizeof(cli->dendrite_ip), "%s", arg);
		return 0;
	case 's':
		return parse_mix(cli, arg, eb);
	case 'A':
		if (strcmp(arg, "constant") != 0 && strcmp(arg, "poisson") != 0) {
			return bx_err(eb, EINVAL, "--arrival: \"%s\" is not constant or poisson",
			              arg);
		}
		cli->ld.arrival = arg[0] == 'p' ? BX_ARRIVAL_POISSON : BX_ARRIVAL_CONSTANT;
		return 0;
	case 'V':
		cli->ld.verify_responses = false;
		return 0;
	case 'P':
		cli->wallet_path = arg;
		return 0;
	case 'W':
		cli->wallet = arg;
		return 0;
	case 'H':
		if (cli->nb_named == BX_CLI_MAX_IDS) {
			return bx_err(eb, EINVAL, "--hotkey: at most %d", BX_CLI_MAX_IDS);
		}
		cli->hotkeys[cli->nb_named++] = arg;
		return 0;
	case 'x':
		if (cli->nb_texts == BX_CLI_MAX_TEXTS) {
			return bx_err(eb, EINVAL, "--text: at most %d", BX_CLI_MAX_TEXTS);
		}
		cli->texts[cli->nb_texts++] = arg;
		return 0;
	case 'p':
		cli->prompt = arg;
		return 0;
	case 'j':
		cli->json_path = arg;
		return 0;
	case 'g':
		cli->svg_path = arg;
		return 0;
	case 'q':
		cli->quiet = true;
		return 0;
	case 'Y':
		cli->print_hotkeys = true;
		return 0;
	case 'D':
		cli->dump_answer = true;
		return 0;
	case 'O':
		cli->ref_model = arg;
		return 0;
	case 'G':
		cli->ref_llm = arg;
		return 0;
	case '3':
		cli->yuma.yuma3 = true;
		return 0;
	case 'l':
		cli->yuma.liquid_alpha = true;
		return 0;
	case 'Z':
		cli->ref_tok = arg;
		return 0;
	case 'R':
		cli->reference = arg;
		return 0;
	case 'M':
		if (cli->nb_miners == BX_CLI_MAX_MINERS) {
			return bx_err(eb, EINVAL, "--miner: at most %d", BX_CLI_MAX_MINERS);
		}
		cli->miners[cli->nb_miners++] = arg;
		return 0;
	case 'K':
		snprintf(cli->stakes, sizeof(cli->stakes), "%s", arg);
		return 0;
	default:
		return numeric(cli, c, arg, eb);
	}
}

int
bx_cli_parse(struct bx_cli *cli, int argc, char **argv, struct bx_errbuf *eb)
{
	int c, ret;

	defaults(cli);
	optind = 0; /* glibc: a full reset, so the parser can run again */
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'h') {
			return 1;
		}
		if (c == '?' || c == ':') {
			return bx_err(eb, EINVAL,
			              "unknown option or missing value: %s (see --help)",
			              argv[optind - 1]);
		}
		ret = option(cli, c, optarg, eb);
		if (ret < 0) {
			return ret;
		}
	}
	if (optind < argc) {
		return bx_err(eb, EINVAL, "unexpected argument \"%s\" (see --help)", argv[optind]);
	}
	if (bx_cli_parse_url(cli->url, cli->ld.ip, sizeof(cli->ld.ip), &cli->ld.port) < 0) {
		return bx_err(eb, EINVAL, "--url: \"%s\" is not http://HOST:PORT with an IPv4 host",
		              cli->url);
	}
	if (cli->nb_texts == 0) {
		cli->texts[cli->nb_texts++] = "hello world";
	}
	if (cli->prompt == NULL) {
		cli->prompt = "Hello";
	}
	if (cli->nb_named > 0 && cli->wallet == NULL) {
		return bx_err(eb, EINVAL, "--hotkey needs --wallet");
	}
	return 0;
}

int
bx_cli_identities(const struct bx_cli *cli, struct bx_dd_identity *ids, unsigned *nb,
                  struct bx_errbuf *eb)
{
	char path[4096];
	unsigned i;
	int ret = 0;

	*nb = 0;
	for (i = 0; i < cli->nb_named; i++) {
		struct bx_sr25519_keypair *kp;

		ret = bx_wallet_hotkey_path(path, sizeof(path), cli->wallet_path, cli->wallet,
		                            cli->hotkeys[i]);
		if (ret < 0) {
			return bx_err(eb, -ret, "wallet %s hotkey %s: bad name", cli->wallet,
			              cli->hotkeys[i]);
		}
		ret = bx_keyfile_load(path, NULL, &kp, eb);
		if (ret < 0) {
			return ret;
		}
		ret = bx_dd_identity_init(&ids[*nb], kp);
		if (ret < 0) {
			bx_sr25519_keypair_destroy(kp);
			return bx_err(eb, -ret, "%s: cannot use this key", path);
		}
		(*nb)++;
	}
	for (i = 0; cli->nb_named == 0 && i < cli->nb_hotkeys; i++) {
		static const char tag[16] = "bx-validator";
		uint8_t seed[32] = { 0 };

		/* Generated validators: seed = "bx-validator" (16 bytes, zero padded) || seed || index. */
		memcpy(seed, tag, sizeof(tag));
		memcpy(seed + 16, &cli->ld.seed, 8);
		memcpy(seed + 24, &i, sizeof(i));
		ret = bx_dd_identity_from_seed(&ids[*nb], seed);
		if (ret < 0) {
			return bx_err(eb, -ret, "generating hotkey %u failed", i);
		}
		(*nb)++;
	}
	return 0;
}

double
bx_cli_sign_rate(const struct bx_dd_template *tmpl, struct bx_dd_identity *id, double seconds)
{
	static char mem[1 << 16];
	uint64_t start = bx_time_ns(), end = start + (uint64_t)(seconds * 1e9), n = 0, now;
	struct bx_sbuf b;

	do {
		bx_sbuf_init(&b, mem, sizeof(mem));
		if (bx_dd_build(tmpl, id, 0, &b) < 0) {
			return 0;
		}
		n++;
		now = bx_time_ns();
	} while (now < end);
	return (double)n / ((double)(now - start) / 1e9);
}
