/*
 * Covers: the real bxd binary on loopback — start-up from a btcli wallet, a
 * metagraph file and generated MiniLM-shaped weights, /readyz, signed echo
 * and TextEmbedding synapses on one keep-alive connection (single and
 * pipelined; the vectors equal a direct library call on the same files),
 * TextGeneration, StreamingTextGeneration streamed chunk by chunk (the
 * chunks concatenated are the TextGeneration completion),
 * /metrics, SIGHUP reload, and SIGTERM while requests are in flight: every
 * response bxd starts is complete, and bxd exits 0.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
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
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include <bx/infer.h>

#include "bx_test.h"
#include "bxd_run.h"
#include "dp_testlib.h"

static const char *bxd_path, *mkweights_path;
static struct bxd_run run;

static size_t leftover; /* bytes after the last complete response */

static char last_body[1 << 17];
static size_t last_body_len;

/* The `completion` of the last response body, copied into out. */
static void
completion(char *out, size_t cap)
{
	json_t *root = json_loadb(last_body, last_body_len, 0, NULL);
	const char *c = json_string_value(json_object_get(root, "completion"));

	assert_non_null(c);
	snprintf(out, cap, "%s", c);
	json_decref(root);
}

static unsigned
read_responses(int fd, unsigned n, int *statuses)
{
	static char buf[1 << 20];
	size_t used = 0, off = 0;
	unsigned got = 0;

	while (got < n) {
		struct dpt_resp r;
		ssize_t k;

		if (dpt_parse_resp(buf + off, used - off, &r) == 0) {
			if (r.status != 200 && r.status != 503) {
				printf("response %u: %d %.*s\n", got, r.status, (int)r.body_len,
				       r.body);
			}
			statuses[got++] = r.status;
			last_body_len = BX_MIN(r.body_len, sizeof(last_body));
			memcpy(last_body, r.body, last_body_len);
			off += r.total;
			continue;
		}
		k = recv(fd, buf + used, sizeof(buf) - used, 0);
		if (k <= 0) {
			break;
		}
		used += (size_t)k;
	}
	leftover = used - off;
	return got;
}

/* §2: H(H(str(texts))) with Python's str() of ["hello"]. */
static const char *
texts_hello_hash(void)
{
	static char hex[65];
	uint8_t h[32];
	char inner[65];

	bx_sha3_256(h, "['hello']", 9);
	bx_hex_encode(inner, h, 32);
	bx_sha3_256(h, inner, 64);
	bx_hex_encode(hex, h, 32);
	return hex;
}

/* Strictly increasing nonces: two requests built in one clock tick must not collide. */
static int64_t
next_nonce(void)
{
	static int64_t last;
	int64_t now = (int64_t)bx_wall_ns();

	last = now > last ? now : last + 1;
	return last;
}

static size_t
echo(char *buf, size_t cap, const char *synapse, const char *fields)
{
	struct dpt_req r = {
		.synapse = synapse,
		.fields_json = fields,
		.signer = run.keys.validator,
		.signer_ss58 = run.keys.validator_ss58,
		.axon_hotkey = run.keys.miner_ss58,
		.uuid = "6f1c2a9e-1b7d-11ef-9d1a-0242ac120002",
		.body_hash = fields != NULL ? texts_hello_hash() : NULL,
		.nonce = next_nonce(),
	};

	return dpt_build(&r, buf, cap);
}

/*
 * A TextGeneration (or StreamingTextGeneration) request. Its hash fields are messages, prompt,
 * max_tokens, temperature, top_p and seed (§2): H of the concatenated
 * H(str(value)), Python's str() of each value as fields_json gives them.
 */
static size_t
gen_request(char *buf, size_t cap, const char *synapse, const char *fields)
{
	static const char *const strs[] = {
		"[]", "The best thing about", "24", "0.0", "1.0", "None"
	};
	char parts[6 * 64 + 1], hex[65];
	uint8_t h[32];
	struct dpt_req r = {
		.synapse = synapse,
		.fields_json = fields,
		.signer = run.keys.validator,
		.signer_ss58 = run.keys.validator_ss58,
		.axon_hotkey = run.keys.miner_ss58,
		.uuid = "6f1c2a9e-1b7d-11ef-9d1a-0242ac120002",
		.nonce = next_nonce(),
		.body_hash = hex,
	};

	for (int i = 0; i < 6; i++) {
		bx_sha3_256(h, strs[i], strlen(strs[i]));
		bx_hex_encode(parts + 64 * i, h, 32);
	}
	bx_sha3_256(h, parts, 6 * 64);
	bx_hex_encode(hex, h, 32);
	return dpt_build(&r, buf, cap);
}

/* The library's own answer for "hello" on the same files. */
static void
direct_embedding(float *out, unsigned *dim)
{
	struct bx_embed_model *m;
	struct bx_embed_ctx *ctx;
	char mdir[128];
	int32_t ids[256];
	const int32_t *idp = ids;
	unsigned len;

	snprintf(mdir, sizeof(mdir), "%s/model", run.dir);
	assert_int_equal(bx_embed_model_load(mdir, NULL, &m, NULL), 0);
	assert_int_equal(bx_embed_ctx_create(m, 1, &ctx), 0);
	len = (unsigned)bx_embed_tokenize(m, "hello", 5, ids);
	assert_int_equal(bx_embed_batch_ids(ctx, &idp, &len, 1, out), 0);
	*dim = bx_embed_dim(m);
	bx_embed_ctx_destroy(ctx);
	bx_embed_model_destroy(m);
}

/* The response's embeddings[0] equals the direct call and has unit norm. */
static void
check_embedding(const char *body, size_t len)
{
	float want[1024];
	double norm = 0;
	unsigned dim;
	json_t *root = json_loadb(body, len, 0, NULL), *vecs, *v;

	assert_non_null(root);
	vecs = json_object_get(root, "embeddings");
	assert_true(json_is_array(vecs) && json_array_size(vecs) == 1);
	v = json_array_get(vecs, 0);
	direct_embedding(want, &dim);
	assert_int_equal(json_array_size(v), dim);
	for (unsigned k = 0; k < dim; k++) {
		double x = json_real_value(json_array_get(v, k));

		assert_true(fabs(x - want[k]) < 1e-6);
		norm += x * x;
	}
	assert_true(fabs(norm - 1.0) < 1e-4);
	json_decref(root);
}

static void
test_bxd_serves_signed_synapses(void **state)
{
	static char req[3][8192], metrics[65536];
	int statuses[3], fd;
	size_t n0, n1, n2;

	assert_int_equal(bxd_run_start(&run, bxd_path, mkweights_path, NULL), 0);
	fd = bxd_run_dial(run.port);
	assert_true(fd >= 0);
	n0 = echo(req[0], sizeof(req[0]), "Synapse", NULL);
	assert_int_equal(send(fd, req[0], n0, 0), (ssize_t)n0);
	assert_int_equal(read_responses(fd, 1, statuses), 1);
	assert_int_equal(statuses[0], 200);
	/* Two pipelined in one write (new nonces: the replay cache refuses repeats). */
	n1 = echo(req[1], sizeof(req[1]), "Synapse", NULL);
	n2 = echo(req[2], sizeof(req[2]), "TextEmbedding", "\"texts\": [\"hello\"]");
	memcpy(req[1] + n1, req[2], n2);
	assert_int_equal(send(fd, req[1], n1 + n2, 0), (ssize_t)(n1 + n2));
	assert_int_equal(read_responses(fd, 2, statuses), 2);
	assert_int_equal(statuses[0], 200);
	assert_int_equal(statuses[1], 200);
	check_embedding(last_body, last_body_len);
	close(fd);
	assert_int_equal(bxd_run_mgmt_get(&run, "/metrics", metrics, sizeof(metrics)), 200);
	assert_non_null(strstr(metrics, "bx_responses_ok_total 3\n"));
	assert_non_null(strstr(metrics, "weights=\"synthetic\"} 1\n"));
	/* Per-stage latency: the dataplane's stages, and the scheduler's for the embedding. */
	assert_non_null(strstr(metrics, "bx_dp_stage_seconds_count{stage=\"verify\"} 3\n"));
	assert_non_null(strstr(metrics, "bx_dp_stage_seconds_count{stage=\"parse\"} 3\n"));
	assert_non_null(strstr(metrics, "bx_sched_stage_seconds_count{stage=\"compute\"} 1\n"));
	kill(run.pid, SIGHUP);
	for (int i = 0; i < 50 && !strstr(metrics, "result=\"ok\"} 1"); i++) {
		struct timespec ts = { 0, 20000000 };

		nanosleep(&ts, NULL);
		bxd_run_mgmt_get(&run, "/metrics", metrics, sizeof(metrics));
	}
	assert_non_null(strstr(metrics, "bx_metagraph_reloads_total{result=\"ok\"} 1\n"));
}

/* /metrics after `req` generation requests of up to max_tokens each, all answered. */
static void
check_gen_metrics(unsigned req, unsigned max_tokens)
{
	static char metrics[65536];
	char want[128];
	const char *p;
	double gen = 0, prompt = 0;

	assert_int_equal(bxd_run_mgmt_get(&run, "/metrics", metrics, sizeof(metrics)), 200);
	snprintf(want, sizeof(want), "bx_gen_requests_total{outcome=\"ok\"} %u\n", req);
	assert_non_null(strstr(metrics, want));
	snprintf(want, sizeof(want), "bx_gen_seconds_count{stage=\"first_token\"} %u\n", req);
	assert_non_null(strstr(metrics, want));
	p = strstr(metrics, "bx_gen_tokens_total{kind=\"generated\"} ");
	assert_non_null(p);
	gen = strtod(strchr(p, '}') + 2, NULL);
	p = strstr(metrics, "bx_gen_tokens_total{kind=\"prompt\"} ");
	assert_non_null(p);
	prompt = strtod(strchr(p, '}') + 2, NULL);
	assert_true(gen >= req && gen <= (double)req * max_tokens);
	assert_true(prompt >= req);
	assert_non_null(strstr(metrics, "bx_gen_sequences{state=\"active\"} "));
}

/* Greedy generation with the real fortune-1m model: English, and deterministic. */
static void
test_bxd_generates_text(void **state)
{
	static const char fields[] = "\"messages\": [], \"prompt\": \"The best thing about\", "
				     "\"max_tokens\": 24, \"temperature\": 0.0, \"top_p\": 1.0, "
				     "\"seed\": null";
	char req[8192], first[2048], second[2048];
	int status, fd = bxd_run_dial(run.port);
	size_t n, letters = 0;

	assert_true(fd >= 0);
	for (int i = 0; i < 2; i++) {
		n = gen_request(req, sizeof(req), "TextGeneration", fields);
		assert_int_equal(send(fd, req, n, 0), (ssize_t)n);
		assert_int_equal(read_responses(fd, 1, &status), 1);
		assert_int_equal(status, 200);
		completion(i == 0 ? first : second, sizeof(first));
	}
	close(fd);
	check_gen_metrics(2, 24);
	assert_string_equal(first, second);
	for (const char *p = first; *p != '\0'; p++) {
		letters += (*p >= 'a' && *p <= 'z') || *p == ' ';
	}
	printf("completion: \"%s\"\n", first);
	assert_true(strlen(first) > 20 && letters * 10 >= strlen(first) * 8);
}

/*
 * StreamingTextGeneration with the same greedy settings: chunked
 * text/event-stream, several chunks, the first before the end, and the
 * chunks concatenated equal TextGeneration's completion. An echo pipelined
 * behind the stream comes after its last chunk.
 */
static void
test_bxd_streams_text(void **state)
{
	static const char fields[] = "\"messages\": [], \"prompt\": \"The best thing about\", "
				     "\"max_tokens\": 24, \"temperature\": 0.0, \"top_p\": 1.0, "
				     "\"seed\": null";
	static char req[16384], buf[1 << 18];
	static struct dpt_stream s;
	char want[2048];
	struct dpt_rx rx = { .fd = bxd_run_dial(run.port), .buf = buf, .cap = sizeof(buf) };
	struct dpt_resp e;
	int status;
	size_t n;

	assert_true(rx.fd >= 0);
	n = gen_request(req, sizeof(req), "TextGeneration", fields);
	assert_int_equal(send(rx.fd, req, n, 0), (ssize_t)n);
	assert_int_equal(read_responses(rx.fd, 1, &status), 1);
	assert_int_equal(status, 200);
	completion(want, sizeof(want));

	n = gen_request(req, sizeof(req), "StreamingTextGeneration", fields);
	n += echo(req + n, sizeof(req) - n, "Synapse", NULL);
	assert_int_equal(send(rx.fd, req, n, 0), (ssize_t)n);
	assert_true(dpt_read_stream(&rx, &s));
	assert_true(dpt_stream_ok(&s));
	printf("stream: %u chunks, first after the head +%.3f ms, last +%.3f ms\n", s.nb_chunks,
	       (double)(s.first_chunk_ns - s.head_ns) / 1e6, (double)(s.end_ns - s.head_ns) / 1e6);
	assert_true(s.nb_chunks > 1);
	assert_true(s.first_before_end);
	assert_int_equal(s.text_len, strlen(want));
	assert_memory_equal(s.text, want, s.text_len);
	assert_true(dpt_read_resp(&rx, &e));
	assert_int_equal(e.status, 200);
	assert_non_null(memmem(e.body, e.body_len, "\"name\":\"Synapse\"", 16));
	close(rx.fd);
}

/* SIGTERM with a burst in flight: every response that starts is complete; exit 0. */
static void
test_bxd_drains_on_sigterm(void **state)
{
	static char burst[64 * 8192];
	int statuses[64], fd, status;
	size_t used = 0;
	unsigned got;

	fd = bxd_run_dial(run.port);
	assert_true(fd >= 0);
	for (int i = 0; i < 64; i++) {
		used += echo(burst + used, sizeof(burst) - used, "Synapse", NULL);
	}
	assert_int_equal(send(fd, burst, used, 0), (ssize_t)used);
	kill(run.pid, SIGTERM);
	got = read_responses(fd, 64, statuses);
	if (got > 0 && statuses[0] != 200) {
		printf("first drain response: %d\n", statuses[0]);
	}
	for (unsigned i = 0; i < got; i++) {
		assert_int_equal(statuses[i], 200);
	}
	/*
	 * What bxd took in before the signal it answers whole and nothing is cut
	 * off; how much it took in depends on when the signal lands (0..64).
	 */
	assert_int_equal(leftover, 0);
	printf("drain: %u of 64 pipelined requests answered before the connection closed\n", got);
	close(fd);
	waitpid(run.pid, &status, 0);
	run.pid = 0;
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

static int
teardown(void **state)
{
	bxd_run_cleanup(&run);
	return 0;
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bxd_serves_signed_synapses),
		cmocka_unit_test(test_bxd_generates_text),
		cmocka_unit_test(test_bxd_streams_text),
		cmocka_unit_test(test_bxd_drains_on_sigterm),
	};

	char shared[512];

	if (argc < 3) {
		bx_test_skip("usage: test_bxd_e2e PATH_TO_BXD PATH_TO_BX_MKWEIGHTS");
	}
	bxd_path = argv[1];
	mkweights_path = argv[2];
	if (access(bx_test_shared("models/all-MiniLM-L6-v2/vocab.txt", shared, sizeof(shared)),
	           R_OK) != 0) {
		bx_test_skip("../shared/models/all-MiniLM-L6-v2/vocab.txt is not there");
	}
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, teardown);
}
