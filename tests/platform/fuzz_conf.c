/* Fuzz target: the configuration parser on arbitrary bytes must return, never crash. */
#include <stddef.h>
#include <stdint.h>

#include <bx/platform.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct conf {
	int64_t i;
	double d;
	bool b;
	char s[16];
	int e;
};

static const char *const choices[] = { "a", "b", NULL };

static const struct bx_conf_opt opts[] = {
	{ .name = "i",
	  .type = BX_CONF_INT,
	  .offset = offsetof(struct conf, i),
	  .def = "1",
	  .min = -5,
	  .max = 1e6 },
	{ .name = "s.d",
	  .type = BX_CONF_DOUBLE,
	  .offset = offsetof(struct conf, d),
	  .def = "0",
	  .min = 1,
	  .max = 0 },
	{ .name = "b", .type = BX_CONF_BOOL, .offset = offsetof(struct conf, b), .def = "no" },
	{ .name = "s.s",
	  .type = BX_CONF_STR,
	  .offset = offsetof(struct conf, s),
	  .size = 16,
	  .def = "x" },
	{ .name = "e",
	  .type = BX_CONF_ENUM,
	  .offset = offsetof(struct conf, e),
	  .def = "a",
	  .choices = choices },
};

static const struct bx_conf_schema schema = { opts, BX_ARRAY_SIZE(opts), sizeof(struct conf),
	                                      NULL };

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bx_errbuf eb;
	struct conf c;

	if (bx_conf_defaults(&schema, &c, &eb) == 0) {
		bx_conf_parse(&schema, &c, "fuzz", (const char *)data, size, &eb);
	}
	return 0;
}
