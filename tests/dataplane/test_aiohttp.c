/*
 * Interoperability: the real server on io_uring, and a Python aiohttp client
 * (aiohttp_dendrite.py) sending what the SDK's dendrite sends (json=, the bt
 * headers) and reading answers the way the SDK does. The signatures are made
 * here; the script gets them in a spec file. Skips when python3-aiohttp is
 * not installed.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bx_test.h"
#include "dp_testlib.h"

static struct dpt_keys K;

struct spec {
	const char *synapse;
	const char *fields; /* extra body members, json text, or NULL */
	const char *hash;
	int status;
	const char *message;
	bool corrupt;
};

static void
emit_spec(FILE *f, const struct spec *s, bool first, uint16_t port)
{
	int64_t nonce = (int64_t)bx_wall_ns();
	const char *uuid = "5ecbd69c-1cec-11ee-b0dc-e29ce36fec1a";
	char msg[1024], sig[131];
	uint8_t raw[64];

	snprintf(msg, sizeof(msg), "%" PRId64 ".%s.%s.%s.%s", nonce, K.validator_ss58, K.miner_ss58,
	         uuid, s->hash);
	if (bx_sr25519_sign(raw, msg, strlen(msg), K.validator) < 0) {
		abort();
	}
	if (s->corrupt) {
		raw[7] ^= 1;
	}
	sig[0] = '0';
	sig[1] = 'x';
	bx_hex_encode(sig + 2, raw, 64);
	fprintf(f,
	        "%s{\"synapse\": \"%s\", \"status\": %d, \"message\": \"%s\",\n"
	        " \"headers\": {\"name\": \"%s\", \"timeout\": \"12.0\", "
	        "\"bt_header_axon_ip\": \"127.0.0.1\", \"bt_header_axon_port\": \"%u\", "
	        "\"bt_header_axon_hotkey\": \"%s\", \"bt_header_dendrite_ip\": \"127.0.0.1\", "
	        "\"bt_header_dendrite_version\": \"10002000\", \"bt_header_dendrite_nonce\": "
	        "\"%" PRId64 "\", \"bt_header_dendrite_uuid\": \"%s\", "
	        "\"bt_header_dendrite_hotkey\": \"%s\", \"bt_header_dendrite_signature\": \"%s\", "
	        "\"bt_header_input_obj_texts\": \"W10=\", \"header_size\": \"640\", "
	        "\"total_size\": \"1234\", \"computed_body_hash\": \"%s\"},\n"
	        " \"body\": {\"name\": \"%s\", \"timeout\": 12.0, \"total_size\": 1234, "
	        "\"header_size\": 0, \"dendrite\": {\"status_code\": null, \"status_message\": null, "
	        "\"process_time\": null, \"ip\": \"127.0.0.1\", \"port\": null, \"version\": 10002000, "
	        "\"nonce\": %" PRId64
	        ", \"uuid\": \"%s\", \"hotkey\": \"%s\", \"signature\": \"%s\"}, "
	        "\"axon\": {\"status_code\": null, \"status_message\": null, \"process_time\": null, "
	        "\"ip\": \"127.0.0.1\", \"port\": %u, \"version\": null, \"nonce\": null, \"uuid\": "
	        "null, \"hotkey\": \"%s\", \"signature\": null}, \"computed_body_hash\": \"\"%s%s}}\n",
	        first ? "" : ",", s->synapse, s->status, s->message, s->synapse, port, K.miner_ss58,
	        nonce, uuid, K.validator_ss58, sig, s->hash, s->synapse, nonce, uuid,
	        K.validator_ss58, sig, port, K.miner_ss58, s->fields ? ", " : "",
	        s->fields ? s->fields : "");
}

static const char *
find_python(void)
{
	static const char *const cands[] = { "/usr/bin/python3", "python3" };

	for (size_t i = 0; i < BX_ARRAY_SIZE(cands); i++) {
		char cmd[256];

		snprintf(cmd, sizeof(cmd), "%s -c 'import aiohttp' >/dev/null 2>&1", cands[i]);
		if (system(cmd) == 0) {
			return cands[i];
		}
	}
	return NULL;
}

int
main(int argc, char **argv)
{
	static const char empty[] =
		"a7ffc6f8bf1ed76651c14756a061d662f580ff4de43b49fa82d80a4b80f8434a";
	const struct spec specs[] = {
		{ "Synapse", NULL, empty, 200, "", false },
		{ "Synapse", NULL, empty, 200, "", false },
		{ "TextEmbedding",
		  "\"texts\": [\"hello\", \"it's\", \"say \\\"hi\\\"\", \"na\\u00efve\"], \"model\": null, "
		  "\"embeddings\": null",
		  "ac3455c37ab7979777a7597cf550aee713105dedc0112ba58fc2006769425ac4", 503,
		  "Service unavailable: no model loaded for TextEmbedding", false },
		{ "Synapse", NULL, empty, 401, "Not Verified with error: Signature mismatch with ",
		  true },
		{ "Nope", NULL, empty, 404, "Synapse name 'Nope' not found.", false },
		{ "Synapse", NULL, empty, 200, "", false },
	};
	struct bx_dp_conf c;
	struct bx_errbuf eb;
	struct bx_dp *dp;
	struct bx_metagraph *mg;
	char mgj[4096], path[] = "/tmp/bx-aiohttp-XXXXXX", cmd[1024];
	const char *py;
	size_t n;
	int fd, rc;
	FILE *f;

	if (argc < 2) {
		fprintf(stderr, "usage: %s aiohttp_dendrite.py\n", argv[0]);
		return 1;
	}
	py = find_python();
	if (!py) {
		bx_test_skip("python3-aiohttp is not installed");
	}
	dpt_keys_make(&K);
	n = dpt_metagraph_json(&K, mgj, sizeof(mgj));
	if (bx_metagraph_parse(mgj, n, "test", &mg, &eb) < 0) {
		return 1;
	}
	bx_dp_conf_default(&c);
	snprintf(c.listen_addr, sizeof(c.listen_addr), "127.0.0.1");
	c.port = 0;
	c.nb_cores = 2;
	c.cpus[1] = 1;
	c.pin = false;
	c.max_conns = 64;
	c.hotkey = K.miner;
	c.replay_slots = 4096;
	if (bx_dp_create(&c, mg, &dp, &eb) < 0 || bx_dp_start(dp, &eb) < 0) {
		fprintf(stderr, "start: %s\n", eb.msg);
		return 1;
	}
	fd = mkstemp(path);
	f = fd >= 0 ? fdopen(fd, "w") : NULL;
	if (!f) {
		return 1;
	}
	fprintf(f, "[");
	for (size_t i = 0; i < BX_ARRAY_SIZE(specs); i++) {
		emit_spec(f, &specs[i], i == 0, bx_dp_port(dp));
	}
	fprintf(f, "]\n");
	fclose(f);
	snprintf(cmd, sizeof(cmd), "%s %s %u %s", py, argv[1], bx_dp_port(dp), path);
	fflush(stdout);
	rc = system(cmd);
	unlink(path);
	bx_dp_stop(dp, 1000);
	bx_dp_destroy(dp);
	dpt_keys_free(&K);
	if (rc == -1 || !WIFEXITED(rc)) {
		return 1;
	}
	return WEXITSTATUS(rc);
}
