/*
 * bx-convert: write GGUF files for the generation engine.
 *
 *   bx-convert [--type=T] MODEL.bin TOKENIZER.bin OUT.gguf
 *       a llama2.c checkpoint and its tokenizer.bin as GGUF, matrices in T
 *   bx-convert [--type=T] IN.gguf OUT.gguf
 *       re-quantize a GGUF file
 *   bx-convert --synth=SHAPE [--seed=N] [--type=T] OUT.gguf
 *       a model of SHAPE with seeded random weights; SHAPE is 1b (TinyLlama
 *       1.1B: dim 2048, hidden 5632, 22 layers, 32/4 heads, vocab 32000),
 *       15m (stories15M) or dim,hidden,layers,heads,kv_heads,vocab,seq_len
 *
 * T is F32 (default), F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K or Q6_K (K types: matrices whose rows
 * are not a multiple of 256 stay F32). --calibrate=N quantizes Q8_0/Q4_0/Q4_1 layer matrices
 * with GPTQ against N tokens the model samples itself (seeded by --seed), for models up to a
 * few hundred million parameters. Exit: 0 ok, 1 failure, 2 usage.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bx/infer.h>

static void
usage(FILE *f)
{
	fprintf(f,
	        "usage: bx-convert [--type=F32|F16|BF16|Q8_0|Q4_0|Q4_1|Q4_K|Q6_K] MODEL.bin TOKENIZER.bin "
	        "OUT.gguf\n"
	        "       bx-convert [--type=T] IN.gguf OUT.gguf\n"
	        "       (either with --calibrate=N [--seed=N]: GPTQ on N self-sampled tokens)\n"
	        "       bx-convert --synth=1b|15m|D,H,L,NH,NKV,V,S [--seed=N] [--type=T] "
	        "OUT.gguf\n");
}

static int
parse_type(const char *s, enum bx_llm_type *t)
{
	static const enum bx_llm_type all[] = {
		BX_LLM_F32,  BX_LLM_F16,  BX_LLM_BF16, BX_LLM_Q8_0,
		BX_LLM_Q4_0, BX_LLM_Q4_1, BX_LLM_Q4_K, BX_LLM_Q6_K
	};

	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		if (!strcmp(s, bx_llm_type_name(all[i]))) {
			*t = all[i];
			return 0;
		}
	}
	return -EINVAL;
}

static int
parse_shape(const char *s, struct bx_llm_config *c)
{
	unsigned v[7];

	memset(c, 0, sizeof(*c));
	if (!strcmp(s, "1b")) {
		s = "2048,5632,22,32,4,32000,2048";
	} else if (!strcmp(s, "15m")) {
		s = "288,768,6,6,6,32000,256";
	}
	if (sscanf(s, "%u,%u,%u,%u,%u,%u,%u", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6]) !=
	    7) {
		return -EINVAL;
	}
	c->dim = v[0];
	c->hidden_dim = v[1];
	c->n_layers = v[2];
	c->n_heads = v[3];
	c->n_kv_heads = v[4];
	c->vocab_size = v[5];
	c->seq_len = v[6];
	c->tied = false;
	return 0;
}

static int
load(int argc, char **argv, int i, const char *synth, unsigned long long seed,
     enum bx_llm_type type, struct bx_llm_model **m, struct bx_errbuf *eb)
{
	struct bx_llm_config c;
	size_t n;

	if (synth) {
		if (parse_shape(synth, &c)) {
			return -EINVAL;
		}
		/* generated directly in the block type; F16 goes through F32 */
		/* generated directly in the block type; the others go through F32 */
		enum bx_llm_type st =
			type == BX_LLM_Q8_0 || type == BX_LLM_Q4_0 || type == BX_LLM_Q4_1 ?
				type :
				BX_LLM_F32;

		return bx_llm_synth(&c, st, seed, m, eb) ? -EIO : 0;
	}
	n = strlen(argv[i]);
	if (argc - i == 2 && n > 5 && !strcmp(argv[i] + n - 5, ".gguf")) {
		return bx_llm_load_gguf(argv[i], m, eb);
	}
	if (argc - i != 3) {
		return -EINVAL;
	}
	return bx_llm_load_llama2c(argv[i], argv[i + 1], m, eb);
}

int
main(int argc, char **argv)
{
	enum bx_llm_type type = BX_LLM_F32;
	const char *synth = NULL;
	unsigned long long seed = 1;
	struct bx_llm_model *m = NULL;
	struct bx_errbuf eb = { { 0 } };
	struct bx_llm_write_opts opts = { 0 };
	int i = 1, ret;

	for (; i < argc && !strncmp(argv[i], "--", 2); i++) {
		if (!strncmp(argv[i], "--type=", 7) && !parse_type(argv[i] + 7, &type)) {
			continue;
		}
		if (!strncmp(argv[i], "--synth=", 8)) {
			synth = argv[i] + 8;
		} else if (!strncmp(argv[i], "--seed=", 7)) {
			seed = strtoull(argv[i] + 7, NULL, 0);
		} else if (!strncmp(argv[i], "--calibrate=", 12)) {
			opts.calib_tokens = (unsigned)strtoul(argv[i] + 12, NULL, 0);
		} else {
			usage(!strcmp(argv[i], "--help") ? stdout : stderr);
			return !strcmp(argv[i], "--help") ? 0 : 2;
		}
	}
	if (i >= argc || (synth && argc - i != 1)) {
		usage(stderr);
		return 2;
	}
	ret = load(argc, argv, i, synth, seed, type, &m, &eb);
	if (ret == -EINVAL) {
		usage(stderr);
		return 2;
	}
	if (ret) {
		fprintf(stderr, "bx-convert: %s\n", eb.msg);
		return 1;
	}
	opts.calib_seed = seed;
	ret = bx_llm_write_gguf_opts(m, type, argv[argc - 1], &opts, &eb);
	if (ret) {
		fprintf(stderr, "bx-convert: %s\n", eb.msg);
	} else {
		printf("%s: %s, from a model of %" PRIu64 " bytes of weights\n", argv[argc - 1],
		       bx_llm_type_name(type), (uint64_t)bx_llm_model_weight_bytes(m));
	}
	bx_llm_model_destroy(m);
	return ret ? 1 : 0;
}
