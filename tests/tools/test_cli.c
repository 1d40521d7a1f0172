/*
 * Covers: the bx-validator executable (main.c, cli.c, report.c) run as a
 * process against an axon-like responder on 127.0.0.1: exit codes, the JSON
 * report's figures against what the responder saw, the SVG, and the
 * once-a-second progress lines. argv[1] is the executable.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include <bx/crypto.h>

#include "bx_test.h"
#include "responder.h"

static const char *EXE;
static char DIR_[64];
static struct responder R;

/* Run EXE with args; stdout and stderr go to files in DIR_. Returns the exit status. */
static int
run(char *const *args)
{
	char out[128], err[128];
	char *argv[40];
	pid_t pid;
	int st, i;

	snprintf(out, sizeof(out), "%s/stdout", DIR_);
	snprintf(err, sizeof(err), "%s/stderr", DIR_);
	argv[0] = (char *)EXE;
	for (i = 0; args[i] != NULL && i < 38; i++) {
		argv[i + 1] = args[i];
	}
	argv[i + 1] = NULL;
	pid = fork();
	if (pid == 0) {
		int o = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		int e = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		dup2(o, 1);
		dup2(e, 2);
		execv(EXE, argv);
		_exit(127);
	}
	assert_true(pid > 0);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static json_int_t
jint(json_t *o, const char *path1, const char *path2)
{
	json_t *v = json_object_get(o, path1);

	if (path2 != NULL) {
		v = json_object_get(v, path2);
	}
	assert_non_null(v);
	return json_integer_value(v);
}

static void
test_usage_and_errors(void **state)
{
	(void)state;
	assert_int_equal(run((char *[]){ "--help", NULL }), 0);
	assert_int_equal(run((char *[]){ "--bogus", NULL }), 2);
	/* RFC 6761: .invalid never resolves, so nothing is sent anywhere. */
	assert_int_equal(run((char *[]){ "--url", "http://no-such-host.invalid:80", NULL }), 2);
	assert_int_equal(run((char *[]){ "--url", "http://127.0.0.1:0", NULL }), 2);
	assert_int_equal(run((char *[]){ "--synapse", "nonsense", NULL }), 2);
	assert_int_equal(run((char *[]){ "--rate", "-1", NULL }), 2);
}

static void
test_open_loop_run_and_reports(void **state)
{
	char url[64], json[128], svg[128];
	json_t *j;
	size_t len;
	char *text;

	(void)state;
	snprintf(url, sizeof(url), "http://localhost:%u",
	         R.port); /* a name, resolved to 127.0.0.1 */
	snprintf(json, sizeof(json), "%s/r.json", DIR_);
	snprintf(svg, sizeof(svg), "%s/r.svg", DIR_);
	R.requests = R.verified = 0;
	assert_int_equal(run((char *[]){ "--url", url, "--axon-hotkey", R.ss58, "--rate", "400",
	                                 "--duration", "1.5", "--connections", "4", "--hotkeys",
	                                 "3", "--json", json, "--svg", svg, NULL }),
	                 0);
	j = json_load_file(json, 0, NULL);
	assert_non_null(j);
	assert_int_equal(jint(j, "sent", NULL), 600);
	assert_int_equal(jint(j, "measured", NULL), 600);
	assert_int_equal(jint(j, "success_in_time", NULL), 600);
	assert_int_equal(jint(j, "status", "200"), 600);
	assert_int_equal(jint(j, "response_signatures", "ok"), 600);
	assert_int_equal(R.verified, 600);
	assert_true(json_array_size(json_object_get(j, "timeline")) == 2);
	assert_true(json_real_value(json_object_get(j, "client_sign_rate_per_thread")) > 100);
	json_decref(j);
	text = bx_test_read_file(svg, &len);
	assert_non_null(text);
	assert_true(strncmp(text, "<?xml", 5) == 0 && strstr(text, "</svg>") != NULL);
	free(text);
	snprintf(svg, sizeof(svg), "%s/stderr", DIR_);
	text = bx_test_read_file(svg, &len);
	assert_non_null(text);
	assert_non_null(strstr(text, "t=  1.0s")); /* one progress line a second */
	free(text);
	snprintf(svg, sizeof(svg), "%s/stdout", DIR_);
	text = bx_test_read_file(svg, &len);
	assert_non_null(strstr(text, "success in time    600 (100.00 %)"));
	free(text);
}

static void
test_consensus_mode(void **state)
{
	char miner[160], json[128];
	json_t *j, *ep;

	(void)state;
	snprintf(miner, sizeof(miner), "127.0.0.1:%u=%s", R.port, R.ss58);
	snprintf(json, sizeof(json), "%s/c.json", DIR_);
	assert_int_equal(run((char *[]){ "--miner",       miner,
	                                 "--hotkeys",     "2",
	                                 "--stakes",      "3,1",
	                                 "--epochs",      "2",
	                                 "--duration",    "0.2",
	                                 "--connections", "1",
	                                 "--yuma3",       "--liquid-alpha",
	                                 "--kappa",       "40000",
	                                 "--json",        json,
	                                 "--quiet",       NULL }),
	                 0);
	j = json_load_file(json, 0, NULL);
	assert_non_null(j);
	assert_true(json_is_true(json_object_get(json_object_get(j, "yuma"), "yuma3")));
	assert_int_equal(jint(j, "yuma", "kappa"), 40000);
	ep = json_object_get(j, "epochs");
	assert_int_equal(json_array_size(ep), 2);
	ep = json_array_get(json_object_get(json_array_get(ep, 1), "miners"), 0);
	assert_true(json_real_value(json_object_get(ep, "incentive")) > 0.999);
	json_decref(j);
	assert_int_equal(run((char *[]){ "--miner", "nonsense", NULL }), 2);
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_usage_and_errors),
		cmocka_unit_test(test_open_loop_run_and_reports),
		cmocka_unit_test(test_consensus_mode),
	};
	int ret;

	if (argc < 2) {
		bx_test_skip("needs the bx-validator executable as argument");
	}
	EXE = argv[1];
	snprintf(DIR_, sizeof(DIR_), "/tmp/bx-validator-test-XXXXXX");
	if (bx_crypto_init() < 0 || mkdtemp(DIR_) == NULL || responder_start(&R, 31) < 0) {
		return 1;
	}
	ret = cmocka_run_group_tests(tests, NULL, NULL);
	responder_stop(&R);
	{
		char cmd[128];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", DIR_);
		if (system(cmd) != 0) {
			ret = ret ? ret : 1;
		}
	}
	return ret;
}
