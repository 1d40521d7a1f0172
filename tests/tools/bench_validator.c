/*
 * bx-validator's own ceiling: signed requests/s one thread can build (the
 * signature dominates), and signed requests/s delivered to a trivial echo
 * on 127.0.0.1 (no verification, unsigned answers) in closed loop with one
 * and two client threads. One JSON line per figure.
 */
#include <stdio.h>
#include <string.h>

#include <bx/crypto.h>

#include "bx_bench.h"
#include "cli.h"
#include "load.h"
#include "responder.h"

static double
delivered(struct responder *r, struct bx_dd_identity *ids, unsigned threads, bool verify)
{
	struct bx_dd_payload p = { .kind = BX_DD_ECHO };
	struct bx_dd_template t;
	struct bx_ld_conf c;
	struct bx_ld_result res;
	struct bx_errbuf eb;
	double rate = 0;

	bx_ld_conf_default(&c);
	c.port = r->port;
	c.threads = threads;
	c.connections = 32;
	c.duration_s = 2;
	c.warmup_s = 0.5;
	c.verify_responses = verify;
	c.ids = ids;
	c.nb_ids = 4;
	if (bx_dd_template_init(&t, &p, "127.0.0.1", r->port, r->ss58, "127.0.0.1", 12, &eb) < 0) {
		return 0;
	}
	c.tmpl[BX_DD_ECHO] = &t;
	c.mix[BX_DD_ECHO] = 1;
	if (bx_ld_run(&c, &res, &eb) == 0) {
		uint64_t i, ok = 0;

		for (i = 0; i < res.nb_recs; i++) {
			ok += res.recs[i].status == 200 && !(res.recs[i].flags & BX_LD_F_WARMUP);
		}
		rate = (double)ok / (c.duration_s - c.warmup_s);
		bx_ld_result_fini(&res);
	}
	bx_dd_template_fini(&t);
	return rate;
}

int
main(void)
{
	struct responder r = { .trivial = true };
	struct bx_dd_identity ids[4];
	struct bx_dd_payload p = { .kind = BX_DD_ECHO };
	struct bx_dd_template t;
	struct bx_errbuf eb;
	uint8_t seed[32];
	unsigned i;

	if (bx_crypto_init() < 0 || responder_start(&r, 41) < 0) {
		return 1;
	}
	for (i = 0; i < 4; i++) {
		memset(seed, 0x60 + (int)i, sizeof(seed));
		if (bx_dd_identity_from_seed(&ids[i], seed) < 0) {
			return 1;
		}
	}
	if (bx_dd_template_init(&t, &p, "127.0.0.1", r.port, r.ss58, "127.0.0.1", 12, &eb) < 0) {
		return 1;
	}
	bx_bench_emit("validator", "sign_echo_1thread", "rate", bx_cli_sign_rate(&t, &ids[0], 1.0),
	              "req/s");
	bx_bench_emit("validator", "echo_closed_1thread", "rate", delivered(&r, ids, 1, false),
	              "req/s");
	bx_bench_emit("validator", "echo_closed_2threads", "rate", delivered(&r, ids, 2, false),
	              "req/s");
	bx_dd_template_fini(&t);
	responder_stop(&r);
	for (i = 0; i < 4; i++) {
		bx_dd_identity_fini(&ids[i]);
	}
	return 0;
}
