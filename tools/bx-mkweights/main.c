/*
 * bx-mkweights: write a model directory with generated all-MiniLM-L6-v2
 * weights (upstream tensor names, shapes and dtypes; seeded values) for
 * tests and benchmarks, because the real 90 MB file cannot be shipped here.
 *
 *   bx-mkweights [--seed N] [--shape vocab,hidden,layers,heads,ffn,positions] DIR
 *
 * Writes DIR/model.safetensors and DIR/config.json; copy the real vocab.txt
 * beside them (the default shape needs its 30522 tokens).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bx/infer.h>

static int
usage(void)
{
	fprintf(stderr, "usage: bx-mkweights [--seed N] "
	                "[--shape vocab,hidden,layers,heads,ffn,positions] DIR\n");
	return 2;
}

int
main(int argc, char **argv)
{
	struct bx_embed_shape s = bx_embed_minilm_shape;
	unsigned long long seed = 1;
	struct bx_errbuf eb;
	const char *dir = NULL;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc) {
			seed = strtoull(argv[++i], NULL, 0);
		} else if (strcmp(argv[i], "--shape") == 0 && i + 1 < argc) {
			if (sscanf(argv[++i], "%u,%u,%u,%u,%u,%u", &s.vocab, &s.hidden, &s.layers,
			           &s.heads, &s.ffn, &s.positions) != 6 ||
			    s.heads == 0 || s.hidden % s.heads != 0) {
				return usage();
			}
		} else if (argv[i][0] != '-' && dir == NULL) {
			dir = argv[i];
		} else {
			return usage();
		}
	}
	if (dir == NULL) {
		return usage();
	}
	if (bx_embed_synth_write(dir, &s, seed, &eb) < 0) {
		fprintf(stderr, "bx-mkweights: %s\n", eb.msg);
		return 1;
	}
	printf("%s/model.safetensors: %u layers, hidden %u, seed %" PRIu64 "\n", dir, s.layers,
	       s.hidden, (uint64_t)seed);
	return 0;
}
