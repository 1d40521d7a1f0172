/* Scoring (score.h). */
#include "score.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* max(0, cos(v, ref)) of one answered vector, or -1 when it must score 0. */
static double
one_vector(const struct bx_scorer *s, json_t *v, size_t k)
{
	const float *ref = s->ref != NULL && s->nb_refs > 1 ? s->ref + k * s->dim : s->ref;
	size_t dim = s->ref != NULL ? s->dim : json_array_size(v), i;
	double dot = 0, nv = 0, nr = 0;

	if (!json_is_array(v) || json_array_size(v) != dim || dim == 0) {
		return -1;
	}
	for (i = 0; i < dim; i++) {
		json_t *e = json_array_get(v, i);
		double x;

		if (!json_is_number(e)) {
			return -1;
		}
		x = json_number_value(e);
		if (!isfinite(x)) {
			return -1;
		}
		nv += x * x;
		if (s->ref != NULL) {
			dot += x * ref[i];
			nr += (double)ref[i] * ref[i];
		}
	}
	if (fabs(sqrt(nv) - 1.0) > s->norm_tol) {
		return -1;
	}
	if (s->ref == NULL) {
		return 1.0; /* no reference: a well-formed unit vector is all that can be checked */
	}
	return nr == 0 ? -1 : BX_MAX(0.0, dot / (sqrt(nv) * sqrt(nr)));
}

float
bx_score_embedding(const struct bx_scorer *s, json_t *body)
{
	json_t *em = json_object_get(body, "embeddings");
	double sum = 0;
	size_t i, n;

	if (!json_is_array(em)) {
		return 0;
	}
	n = json_array_size(em);
	if (n == 0 || (s->nb_texts && n != s->nb_texts) || (s->nb_refs > 1 && n != s->nb_refs)) {
		return 0;
	}
	for (i = 0; i < n; i++) {
		double c = one_vector(s, json_array_get(em, i), i);

		if (c < 0) {
			return 0;
		}
		sum += c;
	}
	return (float)(sum / (double)n);
}

/* Next whitespace-separated token: *p advanced, length returned (0 at the end). */
static size_t
token(const char **p)
{
	const char *s = *p;
	size_t n = 0;

	while (*s == ' ' || *s == '\n' || *s == '\t' || *s == '\r') {
		s++;
	}
	while (s[n] != 0 && s[n] != ' ' && s[n] != '\n' && s[n] != '\t' && s[n] != '\r') {
		n++;
	}
	*p = s;
	return n;
}

static unsigned
count_tokens(const char *s)
{
	unsigned n = 0;
	size_t k;

	while ((k = token(&s)) > 0) {
		n++;
		s += k;
	}
	return n;
}

float
bx_score_generation(const struct bx_scorer *s, json_t *body, uint32_t *tokens)
{
	json_t *c = json_object_get(body, "completion");
	const char *a, *r = s->ref_completion;
	unsigned same = 0, na, nr;
	size_t ka, kr;

	if (!json_is_string(c)) {
		return 0;
	}
	a = json_string_value(c);
	na = count_tokens(a);
	*tokens = na;
	if (s->llm != NULL) {
		double ll;

		if (na == 0 || bx_ref_llm_loglik(s->llm, s->prompt, a, &ll) < 0) {
			return 0;
		}
		return (float)BX_MIN(1.0, exp(ll - s->ref_ll));
	}
	if (r == NULL) {
		return -1;
	}
	nr = count_tokens(r);
	for (;;) {
		ka = token(&a);
		kr = token(&r);
		if (ka == 0 || ka != kr || memcmp(a, r, ka) != 0) {
			break;
		}
		same++;
		a += ka;
		r += kr;
	}
	return BX_MAX(na, nr) == 0 ? 1.0f : (float)same / (float)BX_MAX(na, nr);
}

double
bx_score_final(double quality, double lat_s, double timeout_s, double w)
{
	if (!(lat_s <= timeout_s) || quality <= 0) {
		return 0;
	}
	return quality * (1.0 - w * BX_MIN(1.0, lat_s / timeout_s));
}

float
bx_scorer_fn(void *arg, enum bx_dd_kind kind, json_t *body, uint32_t *tokens)
{
	const struct bx_scorer *s = arg;

	switch (kind) {
	case BX_DD_EMBEDDING:
		return bx_score_embedding(s, body);
	case BX_DD_GENERATION:
	case BX_DD_STREAM:
		return bx_score_generation(s, body, tokens);
	default:
		return 1.0f;
	}
}

int
bx_score_parse_vector(const char *s, float *out, unsigned cap)
{
	unsigned n = 0;
	char *e;

	while (*s != 0) {
		double v = strtod(s, &e);

		if (e == s || n == cap || !isfinite(v)) {
			return -EINVAL;
		}
		out[n++] = (float)v;
		s = e;
		if (*s == ',') {
			s++;
		} else if (*s != 0) {
			return -EINVAL;
		}
	}
	return n == 0 ? -EINVAL : (int)n;
}
