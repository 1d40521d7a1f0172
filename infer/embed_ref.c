/*
 * The f32 reference forward pass of a BERT encoder with mean pooling and L2
 * normalisation, written to be read in one sitting and checked by hand. It
 * is the yardstick for the oneDNN path and runs with --reference.
 *
 *   x = LN(word[id] + pos[t] + type[0])
 *   per layer:  q,k,v = x Wq,k,v^T + b       (per head of size d:)
 *               p = softmax(q k^T / sqrt(d)),  c = p v
 *               x = LN1(c Wo^T + bo + x)
 *               x = LN2(gelu_erf(x W1^T + b1) W2^T + b2 + x)
 *   out = normalise(mean over tokens of x)
 * Dot products accumulate in double.
 */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "embed_int.h"

void
bx_embed_layernorm(float *x, unsigned h, const float *g, const float *b, float eps)
{
	double mean = 0, var = 0;
	float inv;

	for (unsigned i = 0; i < h; i++) {
		mean += x[i];
	}
	mean /= h;
	for (unsigned i = 0; i < h; i++) {
		var += (x[i] - mean) * (x[i] - mean);
	}
	var /= h;
	inv = (float)(1.0 / sqrt(var + eps));
	for (unsigned i = 0; i < h; i++) {
		x[i] = (float)(x[i] - mean) * inv * g[i] + b[i];
	}
}

void
bx_embed_pool(const float *x, unsigned len, unsigned h, float *out)
{
	double norm = 0;

	for (unsigned i = 0; i < h; i++) {
		double s = 0;

		for (unsigned t = 0; t < len; t++) {
			s += x[(size_t)t * h + i];
		}
		out[i] = (float)(s / len);
		norm += (double)out[i] * out[i];
	}
	norm = sqrt(norm);
	if (norm < 1e-12) {
		norm = 1e-12;
	}
	for (unsigned i = 0; i < h; i++) {
		out[i] = (float)(out[i] / norm);
	}
}

/* y[len][nout] = x[len][nin] W^T + b, with W [nout][nin]. */
static void
linear(const float *x, unsigned len, unsigned nin, const float *w, const float *b, unsigned nout,
       float *y)
{
	for (unsigned t = 0; t < len; t++) {
		for (unsigned o = 0; o < nout; o++) {
			const float *wr = w + (size_t)o * nin, *xr = x + (size_t)t * nin;
			double s = b[o];

			for (unsigned i = 0; i < nin; i++) {
				s += (double)xr[i] * wr[i];
			}
			y[(size_t)t * nout + o] = (float)s;
		}
	}
}

/* c = softmax(q k^T / sqrt(d)) v per head; q, k, v, c are [len][hidden]. */
static void
attention(const float *q, const float *k, const float *v, unsigned len, unsigned hidden,
          unsigned heads, float *p, float *c)
{
	unsigned d = hidden / heads;
	double scale = 1.0 / sqrt(d);

	for (unsigned hd = 0; hd < heads; hd++) {
		for (unsigned i = 0; i < len; i++) {
			double max = -INFINITY, sum = 0;

			for (unsigned j = 0; j < len; j++) {
				double s = 0;

				for (unsigned e = 0; e < d; e++) {
					s += (double)q[(size_t)i * hidden + hd * d + e] *
					     k[(size_t)j * hidden + hd * d + e];
				}
				p[j] = (float)(s * scale);
				max = fmax(max, p[j]);
			}
			for (unsigned j = 0; j < len; j++) {
				p[j] = (float)exp(p[j] - max);
				sum += p[j];
			}
			for (unsigned e = 0; e < d; e++) {
				double s = 0;

				for (unsigned j = 0; j < len; j++) {
					s += (double)p[j] * v[(size_t)j * hidden + hd * d + e];
				}
				c[(size_t)i * hidden + hd * d + e] = (float)(s / sum);
			}
		}
	}
}

static void
encoder_layer(const struct bx_embed_model *m, const struct bx_embed_layer *l, unsigned len,
              float *x, float *q, float *k, float *v, float *c, float *f, float *p)
{
	unsigned h = m->shape.hidden, ffn = m->shape.ffn;
	size_t n = (size_t)len * h;

	linear(x, len, h, l->q_w, l->q_b, h, q);
	linear(x, len, h, l->k_w, l->k_b, h, k);
	linear(x, len, h, l->v_w, l->v_b, h, v);
	attention(q, k, v, len, h, m->shape.heads, p, c);
	linear(c, len, h, l->o_w, l->o_b, h, q);
	for (size_t i = 0; i < n; i++) {
		x[i] += q[i];
	}
	for (unsigned t = 0; t < len; t++) {
		bx_embed_layernorm(x + (size_t)t * h, h, l->ln1_g, l->ln1_b, m->eps);
	}
	linear(x, len, h, l->i_w, l->i_b, ffn, f);
	for (size_t i = 0; i < (size_t)len * ffn; i++) {
		f[i] = (float)(0.5 * f[i] * (1.0 + erf(f[i] / sqrt(2.0))));
	}
	linear(f, len, ffn, l->f_w, l->f_b, h, q);
	for (size_t i = 0; i < n; i++) {
		x[i] += q[i];
	}
	for (unsigned t = 0; t < len; t++) {
		bx_embed_layernorm(x + (size_t)t * h, h, l->ln2_g, l->ln2_b, m->eps);
	}
}

int
bx_embed_ref_forward(const struct bx_embed_model *m, const int32_t *ids, unsigned len, float *out)
{
	unsigned h = m->shape.hidden;
	size_t n = (size_t)len * h;
	float *buf = bx_malloc(sizeof(float) * (5 * n + (size_t)len * m->shape.ffn + len));
	float *x, *q, *k, *v, *c, *f, *p;

	if (buf == NULL) {
		return -ENOMEM;
	}
	x = buf, q = x + n, k = q + n, v = k + n, c = v + n, f = c + n;
	p = f + (size_t)len * m->shape.ffn;
	for (unsigned t = 0; t < len; t++) {
		for (unsigned i = 0; i < h; i++) {
			x[(size_t)t * h + i] = m->word[(size_t)ids[t] * h + i] +
			                       m->pos[(size_t)t * h + i] + m->type[i];
		}
		bx_embed_layernorm(x + (size_t)t * h, h, m->ln_g, m->ln_b, m->eps);
	}
	for (unsigned l = 0; l < m->shape.layers; l++) {
		encoder_layer(m, &m->layers[l], len, x, q, k, v, c, f, p);
	}
	bx_embed_pool(x, len, h, out);
	bx_free(buf);
	return 0;
}
