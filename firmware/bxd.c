/*
 * bxd: the miner appliance process. It owns the process: arguments,
 * logging sink, signals, exit codes. The libraries do the work.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bx/firmware.h>

static void
usage(void)
{
	static char help[8192];

	bx_fw_conf_help(help, sizeof(help));
	printf("usage: bxd [-c FILE] [--key=value ...] [--check | --print-config | --version]\n"
	       "\n"
	       "Serves Bittensor axon requests. Settings come from the defaults, then FILE\n"
	       "(key = value lines, [section] headers), then --key=value arguments.\n"
	       "\n"
	       "settings (with defaults):\n%s",
	       help);
}

static int
describe_machine(const struct bx_fw_conf *conf)
{
	struct bx_topo *topo;
	struct bx_errbuf eb;
	char desc[160];
	int ret;

	ret = bx_topo_load(&topo, &eb);
	if (ret < 0) {
		fprintf(stderr, "bxd: topology: %s\n", eb.msg);
		return ret;
	}
	bx_topo_describe(topo, desc, sizeof(desc));
	BX_LOG(NOTICE, "machine: %s", desc);
	bx_topo_free(topo);
	return 0;
}

int
main(int argc, char **argv)
{
	static char text[8192];
	struct bx_fw_conf conf;
	enum bx_fw_action action;
	struct bx_errbuf eb;

	if (getenv("BX_DEBUG_POOL") != NULL && strcmp(getenv("BX_DEBUG_POOL"), "1") == 0) {
		bx_mem_debug_set(true);
	}
	if (bx_fw_conf_load(argc, argv, &conf, &action, &eb) < 0) {
		fprintf(stderr, "bxd: %s\n", eb.msg);
		return 2;
	}
	switch (action) {
	case BX_FW_HELP:
		usage();
		return 0;
	case BX_FW_VERSION:
		printf("bxd %s\n", BX_VERSION);
		return 0;
	case BX_FW_PRINT_CONFIG:
		bx_fw_conf_dump(&conf, text, sizeof(text));
		fputs(text, stdout);
		return 0;
	case BX_FW_CHECK:
	case BX_FW_RUN:
		break;
	}
	if (describe_machine(&conf) < 0) {
		return 1;
	}
	if (action == BX_FW_CHECK) {
		printf("bxd: configuration OK\n");
		return 0;
	}
	BX_LOG(NOTICE, "bxd %s: no request path is built in yet; configuration and machine OK",
	       BX_VERSION);
	return 0;
}
