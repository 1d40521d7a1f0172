/*
 * Covers: bx-validator against two real bxd processes on 127.0.0.1.
 * Miner A runs an embedding model (bx-mkweights, seed 7); miner B is
 * deliberately wrong: started without weights, it answers TextEmbedding
 * with 503; miner C runs a different model (seed 8). Answers are scored
 * against reference embeddings computed locally from A's model directory
 * (bx's plain-C reference path). Checks that every request the tool signs verifies in bxd and
 * every bxd response signature verifies in the tool (open loop at 300
 * req/s), then that four validator hotkeys scoring both miners over three
 * Yuma epochs give A all the incentive and emission.
 * argv: bxd bx-mkweights. Suite 'slow' (writes a 90 MB model).
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include <bx/crypto.h>

#include "bx_test.h"
#include "consensus.h"
#include "reference.h"
#include "score.h"

static const char *BXD, *MKW;
static char DIR_[64];
static struct bx_dd_identity IDS[4];

struct miner {
	pid_t pid;
	unsigned port;
	char ss58[BX_SS58_MAX_LEN];
	uint8_t pub[32];
};

static struct miner A, B, C;
static char MODEL[160];
static char GEN_MODEL[512], GEN_TOK[512]; /* --gen.* arguments, when this bxd has them */
static bool HAVE_GEN;

/* Does this bxd know the TextGeneration settings? (It may predate them.) */
static bool
bxd_has_gen(void)
{
	char cmd[600], line[512];
	bool found = false;
	FILE *p;

	snprintf(cmd, sizeof(cmd), "'%s' --help 2>&1", BXD);
	p = popen(cmd, "r");
	if (p == NULL) {
		return false;
	}
	while (fgets(line, sizeof(line), p) != NULL) {
		found |= strstr(line, "--gen.model=") != NULL;
	}
	pclose(p);
	return found;
}

static int
sh(const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	return system(cmd);
}

/* A hotkey keyfile at DIR_/wallets/<name>/hotkeys/default. */
static void
make_key(const char *name, uint8_t fill, struct miner *m)
{
	struct bx_sr25519_keypair *kp;
	struct bx_errbuf eb;
	char path[256];
	uint8_t seed[32];

	memset(seed, fill, sizeof(seed));
	assert_int_equal(bx_sr25519_keypair_from_seed(seed, &kp), 0);
	snprintf(path, sizeof(path), "%s/wallets/%s/hotkeys/default", DIR_, name);
	assert_int_equal(bx_keyfile_write(path, kp, NULL, NULL, true, &eb), 0);
	memcpy(m->pub, bx_sr25519_public(kp), 32);
	bx_ss58_encode(m->ss58, sizeof(m->ss58), m->pub, BX_SS58_BITTENSOR);
	bx_sr25519_keypair_destroy(kp);
}

static bool
port_open(unsigned port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int fd = socket(AF_INET, SOCK_STREAM, 0), ok;

	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	close(fd);
	return ok;
}

/* A port nobody listens on now (the kernel's pick for an ephemeral bind). */
static unsigned
free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	unsigned port = 0;

	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &len) == 0) {
		port = ntohs(a.sin_port);
	}
	close(fd);
	return port;
}

static void
start_bxd(struct miner *m, const char *wallet, const char *model)
{
	char port[32], mport[32], wp[128], wn[64], mg[128], md[160];
	unsigned i;

	snprintf(port, sizeof(port), "--port=%u", m->port);
	snprintf(mport, sizeof(mport), "--mgmt.port=%u", free_port());
	snprintf(wp, sizeof(wp), "--wallet.path=%s/wallets", DIR_);
	snprintf(wn, sizeof(wn), "--wallet.name=%s", wallet);
	snprintf(mg, sizeof(mg), "--metagraph=%s/metagraph.json", DIR_);
	snprintf(md, sizeof(md), "--model.dir=%s", model);
	m->pid = fork();
	if (m->pid == 0) {
		char log[128];
		FILE *f;

		snprintf(log, sizeof(log), "%s/%s.log", DIR_, wallet);
		f = freopen(log, "w", stderr);
		(void)f;
		if (HAVE_GEN) {
			execl(BXD, BXD, port, mport, wp, wn, mg, md, "--dp.cores=0", GEN_MODEL,
			      GEN_TOK, (char *)NULL);
		} else {
			execl(BXD, BXD, port, mport, wp, wn, mg, md, "--dp.cores=0", (char *)NULL);
		}
		_exit(127);
	}
	for (i = 0; i < 200 && !port_open(m->port); i++) {
		usleep(50000);
	}
	assert_true(port_open(m->port));
}

static void
write_metagraph(void)
{
	char path[128];
	FILE *f;
	unsigned i;

	snprintf(path, sizeof(path), "%s/metagraph.json", DIR_);
	f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "{\"neurons\": [");
	for (i = 0; i < 4; i++) {
		fprintf(f,
		        "{\"uid\": %u, \"hotkey\": \"%s\", \"stake\": 10000.0, "
		        "\"validator_permit\": true}, ",
		        i, IDS[i].ss58);
	}
	fprintf(f,
	        "{\"uid\": 4, \"hotkey\": \"%s\", \"stake\": 0.0}, {\"uid\": 5, \"hotkey\": "
	        "\"%s\", \"stake\": 0.0}]}\n",
	        A.ss58, B.ss58);
	fclose(f);
}

static int
setup(void **state)
{
	char shared[512], model8[160];

	(void)state;
	if (bx_test_shared("models/all-MiniLM-L6-v2", shared, sizeof(shared)) == NULL) {
		return -1;
	}
	snprintf(MODEL, sizeof(MODEL), "%s/model", DIR_);
	snprintf(model8, sizeof(model8), "%s/model8", DIR_);
	if (sh("cp -r '%s' '%s' && chmod -R u+w '%s' && rm -f '%s/model.safetensors' && "
	       "cp -r '%s' '%s' && '%s' --seed 7 '%s' >/dev/null && '%s' --seed 8 '%s' >/dev/null",
	       shared, MODEL, MODEL, MODEL, MODEL, model8, MKW, MODEL, MKW, model8) != 0) {
		return -1;
	}
	HAVE_GEN = bxd_has_gen();
	if (HAVE_GEN) {
		char path[400];

		HAVE_GEN =
			bx_test_shared("models/fortune-1m/model.bin", path, sizeof(path)) != NULL &&
			access(path, R_OK) == 0;
		snprintf(GEN_MODEL, sizeof(GEN_MODEL), "--gen.model=%s", path);
		bx_test_shared("models/fortune-1m/tokenizer.bin", path, sizeof(path));
		snprintf(GEN_TOK, sizeof(GEN_TOK), "--gen.tokenizer=%s", path);
	}
	make_key("a", 0x71, &A);
	make_key("b", 0x72, &B);
	make_key("c", 0x73, &C);
	A.port = free_port();
	do {
		B.port = free_port();
		C.port = free_port();
	} while (B.port == A.port || C.port == A.port || C.port == B.port);
	write_metagraph();
	start_bxd(&A, "a", MODEL);
	start_bxd(&B, "b", "/nonexistent");
	start_bxd(&C, "c", model8);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	if (A.pid > 0) {
		kill(A.pid, SIGTERM);
		waitpid(A.pid, NULL, 0);
	}
	if (B.pid > 0) {
		kill(B.pid, SIGTERM);
		waitpid(B.pid, NULL, 0);
	}
	if (C.pid > 0) {
		kill(C.pid, SIGTERM);
		waitpid(C.pid, NULL, 0);
	}
	sh("rm -rf '%s'", DIR_);
	return 0;
}

static void
test_signed_both_ways(void **state)
{
	static struct bx_cli cli;
	char url[64];
	char *argv[] = { "bx-validator",
		         "--url",
		         url,
		         "--axon-hotkey",
		         A.ss58,
		         "--rate",
		         "300",
		         "--duration",
		         "2",
		         "--connections",
		         "4",
		         "--synapse",
		         "echo:1,embedding:1",
		         "--quiet",
		         NULL };
	struct bx_dd_payload p = { .texts = cli.texts, .nb_texts = 1 };
	struct bx_dd_template t[2];
	struct bx_ld_result res;
	struct bx_errbuf eb;
	uint64_t i, ok = 0;

	(void)state;
	snprintf(url, sizeof(url), "http://127.0.0.1:%u", A.port);
	assert_int_equal(bx_cli_parse(&cli, 14, argv, &eb), 0);
	p.texts = cli.texts;
	for (i = 0; i < 2; i++) {
		p.kind = (enum bx_dd_kind)i;
		assert_int_equal(bx_dd_template_init(&t[i], &p, "127.0.0.1", A.port, A.ss58,
		                                     "127.0.0.1", 12, &eb),
		                 0);
		cli.ld.tmpl[i] = &t[i];
		cli.ld.mix[i] = 1;
	}
	memcpy(cli.ld.axon_pub, A.pub, 32);
	cli.ld.have_axon_pub = true;
	cli.ld.ids = IDS;
	cli.ld.nb_ids = 4;
	assert_int_equal(bx_ld_run(&cli.ld, &res, &eb), 0);
	for (i = 0; i < res.nb_recs; i++) {
		ok += res.recs[i].status == 200;
	}
	print_message("bxd answered %" PRIu64 " of %" PRIu64 " signed requests with 200\n",
	              (uint64_t)ok, (uint64_t)res.sent);
	assert_int_equal(res.sent, 600);
	assert_int_equal(ok, 600);
	assert_int_equal(res.sig_ok, 600);
	assert_int_equal(res.sig_bad, 0);
	bx_ld_result_fini(&res);
	bx_dd_template_fini(&t[0]);
	bx_dd_template_fini(&t[1]);
}

static void
test_better_miner_earns_more(void **state)
{
	static struct bx_cli cli;
	char ma[128], mb[128], mc[128];
	static float ref[2 * 384];
	unsigned dim = 0;
	char *argv[] = { "bx-validator",
		         "--synapse",
		         "embedding",
		         "--text",
		         "hello world",
		         "--text",
		         "the quick brown fox",
		         "--duration",
		         "0.3",
		         "--connections",
		         "2",
		         "--timeout",
		         "2",
		         "--epochs",
		         "3",
		         "--stakes",
		         "40,30,20,10",
		         "--quiet",
		         NULL };
	struct bx_scorer s = { .nb_texts = 2, .norm_tol = 1e-3 };
	struct bx_cs_result res;
	struct bx_errbuf eb;

	(void)state;
	assert_int_equal(bx_cli_parse(&cli, 18, argv, &eb), 0);
	if (bx_ref_embed(MODEL, cli.texts, 2, ref, BX_ARRAY_SIZE(ref), &dim, &eb) < 0) {
		fail_msg("%s", eb.msg);
	}
	assert_int_equal(dim, 384);
	s.ref = ref;
	s.dim = dim;
	s.nb_refs = 2;
	snprintf(ma, sizeof(ma), "127.0.0.1:%u=%s", A.port, A.ss58);
	snprintf(mb, sizeof(mb), "127.0.0.1:%u=%s", B.port, B.ss58);
	cli.miners[0] = ma;
	cli.miners[1] = mb;
	snprintf(mc, sizeof(mc), "127.0.0.1:%u=%s", C.port, C.ss58);
	cli.miners[2] = mc;
	cli.nb_miners = 3;
	if (bx_cs_run(&cli, IDS, 4, &s, stdout, &res, &eb) < 0) {
		fail_msg("%s", eb.msg);
	}
	/* bxd's bf16 oneDNN path against the f32 reference: near 1 (latency costs a little). */
	assert_true(res.score[0] > 0.9);
	assert_true(res.score[1] == 0);  /* 503: no weights */
	assert_true(res.score[2] < 0.2); /* another model */
	assert_true(res.incentive[0] > 0.99);
	assert_true(res.miner_emission[0] > 0 && res.miner_emission[1] == 0 &&
	            res.miner_emission[2] == 0);
}

/*
 * TextGeneration, when this bxd serves it: greedy answers scored by the
 * reference model's log-likelihood (fortune-1m on infer's f32 path) score
 * near 1; sampled ones (temperature 1) score lower.
 */
static void
test_generation_scored(void **state)
{
	struct bx_dd_payload p = { .kind = BX_DD_GENERATION,
		                   .prompt = "Once upon a time",
		                   .max_tokens = 24,
		                   .top_p = 1.0,
		                   .seed = -1 };
	struct bx_scorer s = { .prompt = "Once upon a time" };
	char model[512], tok[512], greedy[4096];
	double mean[2] = { 0, 0 };
	struct bx_dd_template t;
	struct bx_ld_conf c;
	struct bx_ld_result res;
	struct bx_errbuf eb;
	uint64_t i, n[2] = { 0, 0 };
	int k;

	(void)state;
	if (!HAVE_GEN) {
		print_message("this bxd has no TextGeneration settings: skipped\n");
		skip();
	}
	bx_test_shared("models/fortune-1m/model.bin", model, sizeof(model));
	bx_test_shared("models/fortune-1m/tokenizer.bin", tok, sizeof(tok));
	if (bx_ref_llm_open(model, tok, &s.llm, &eb) < 0) {
		fail_msg("%s", eb.msg);
	}
	assert_int_equal(bx_ref_llm_greedy(s.llm, s.prompt, 24, greedy, sizeof(greedy), &s.ref_ll),
	                 0);
	for (k = 0; k < 2; k++) {
		p.temperature = k == 0 ? 0.0 : 1.0;
		assert_int_equal(bx_dd_template_init(&t, &p, "127.0.0.1", A.port, A.ss58,
		                                     "127.0.0.1", 12, &eb),
		                 0);
		bx_ld_conf_default(&c);
		c.port = A.port;
		memcpy(c.axon_pub, A.pub, 32);
		c.have_axon_pub = true;
		c.connections = 2;
		c.duration_s = 0.5;
		c.ids = IDS;
		c.nb_ids = 4;
		c.tmpl[BX_DD_GENERATION] = &t;
		c.mix[BX_DD_GENERATION] = 1;
		c.score = bx_scorer_fn;
		c.score_arg = &s;
		assert_int_equal(bx_ld_run(&c, &res, &eb), 0);
		for (i = 0; i < res.nb_recs; i++) {
			assert_int_equal(res.recs[i].status, 200);
			mean[k] += res.recs[i].score;
			n[k]++;
		}
		assert_int_equal(res.sig_bad, 0);
		bx_ld_result_fini(&res);
		bx_dd_template_fini(&t);
	}
	assert_true(n[0] > 0 && n[1] > 0);
	mean[0] /= (double)n[0];
	mean[1] /= (double)n[1];
	print_message("generation: greedy answers score %.4f, sampled %.4f\n", mean[0], mean[1]);
	assert_true(mean[0] > 0.95);
	assert_true(mean[1] < mean[0]);
	bx_ref_llm_close(s.llm);
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_signed_both_ways),
		cmocka_unit_test(test_better_miner_earns_more),
		cmocka_unit_test(test_generation_scored),
	};
	uint8_t seed[32];
	int i, ret;

	if (argc < 3) {
		bx_test_skip("needs bxd and bx-mkweights as arguments");
	}
	BXD = argv[1];
	MKW = argv[2];
	snprintf(DIR_, sizeof(DIR_), "/tmp/bx-validator-e2e-XXXXXX");
	if (bx_crypto_init() < 0 || mkdtemp(DIR_) == NULL) {
		return 1;
	}
	for (i = 0; i < 4; i++) {
		memset(seed, 0x50 + i, sizeof(seed));
		if (bx_dd_identity_from_seed(&IDS[i], seed) < 0) {
			return 1;
		}
	}
	ret = cmocka_run_group_tests(tests, setup, teardown);
	for (i = 0; i < 4; i++) {
		bx_dd_identity_fini(&IDS[i]);
	}
	return ret;
}
