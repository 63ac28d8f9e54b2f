/* Tests for the image ops (core/ops_image.c): conv2d, upsampling, average
 * pooling, group norm, per-channel add.
 *
 * Forward values are compared with naive loops written here (double
 * accumulation, straight from the definitions). Gradient checks as in
 * test_graph.c: loss = sum(op(inputs) .* R) with fixed random R; analytic
 * gradients against central differences, error ||g - g_num|| / ||g_num|| over
 * each input's whole gradient. */
#include <glib.h>
#include <math.h>
#include <string.h>

#include "gemm.h"
#include "graph.h"

/* ---- helpers ------------------------------------------------------------------- */

static void
fill_uniform(CfRng *rng, float *x, size_t n, float lo, float hi)
{
  for (size_t i = 0; i < n; i++)
    x[i] = lo + (hi - lo) * (float)cf_rng_uniform(rng);
}

static size_t
node_size(CfGraph *g, CfNode n)
{
  return (size_t)cf_graph_rows(g, n) * (size_t)cf_graph_cols(g, n);
}

/* sum(out .* w) in double after a forward pass. */
static double
weighted_loss(CfGraph *g, CfNode out, const float *w)
{
  cf_graph_forward(g);
  const float *y = cf_graph_value(g, out);
  double s = 0.0;
  for (size_t i = 0; i < node_size(g, out); i++)
    s += (double)y[i] * w[i];
  return s;
}

static double
vec_rel_err(const float *a, const double *num, size_t n)
{
  double d = 0.0, s = 0.0;
  for (size_t i = 0; i < n; i++) {
    d += (a[i] - num[i]) * (a[i] - num[i]);
    s += num[i] * num[i];
  }
  return s == 0.0 ? sqrt(d) : sqrt(d / s);
}

/* Central differences on every element of `value` (n floats); compares with
 * the analytic gradient `grad`. */
static void
fd_check(CfGraph *g, CfNode out, const float *w, float *value, const float *grad, size_t n, double h,
         double tol, const char *name, const char *what)
{
  double *num = g_new(double, n);
  for (size_t i = 0; i < n; i++) {
    float v = value[i];
    value[i] = (float)(v + h);
    double lp = weighted_loss(g, out, w);
    value[i] = (float)(v - h);
    double lm = weighted_loss(g, out, w);
    value[i] = v;
    num[i] = (lp - lm) / ((double)(float)(v + h) - (double)(float)(v - h));
  }
  double err = vec_rel_err(grad, num, n);
  if (g_test_verbose() || !(err < tol))
    g_test_message("%s: d/d%s relative error %.3g (tol %.1g)", name, what, err, tol);
  g_assert_cmpfloat(err, <, tol);
  g_free(num);
  weighted_loss(g, out, w);
}

/* ---- naive references ------------------------------------------------------------ */

/* Direct convolution from the definition (independent of cf_ref_conv2d). */
static void
naive_conv(double *y, const float *x, const float *w, const float *bias, int B, int Ci, int H, int W,
           int Co, int k, int s, int p)
{
  int Ho = (H + 2 * p - k) / s + 1, Wo = (W + 2 * p - k) / s + 1;
  for (int b = 0; b < B; b++)
    for (int o = 0; o < Co; o++)
      for (int i = 0; i < Ho; i++)
        for (int j = 0; j < Wo; j++) {
          double acc = bias ? bias[o] : 0.0;
          for (int c = 0; c < Ci; c++)
            for (int u = 0; u < k; u++)
              for (int v = 0; v < k; v++) {
                int r = i * s + u - p, q = j * s + v - p;
                if (r >= 0 && r < H && q >= 0 && q < W)
                  acc += (double)w[((o * Ci + c) * k + u) * k + v] * x[((b * Ci + c) * H + r) * W + q];
              }
          y[((b * Co + o) * Ho + i) * Wo + j] = acc;
        }
}

/* Bilinear sample position of output o (align_corners = false), clamped. */
static void
bilinear_src(int o, int n, int *i0, int *i1, double *l)
{
  double src = (o + 0.5) / 2.0 - 0.5;
  if (src < 0)
    src = 0;
  *i0 = (int)floor(src);
  *i1 = *i0 + 1 < n ? *i0 + 1 : n - 1;
  *l = src - *i0;
}

/* ---- cases ---------------------------------------------------------------------- */

typedef enum { K_CONV, K_UP_NEAREST, K_UP_BILINEAR, K_AVGPOOL, K_GROUP_NORM, K_ADD_CHANNEL } Kind;

typedef struct {
  const char *name;
  Kind kind;
  int B, C, H, W;
  int Co, k, stride, pad; /* conv */
  int f;                  /* upsample factor, pool size, groups */
  bool bias;              /* conv: with bias */
  unsigned nograd;        /* bit k: input k built without requires_grad */
  double h, tol;
} ImgCase;

typedef struct {
  int nin;
  int shape[3][2];
} Shapes;

static Shapes
case_shapes(const ImgCase *c)
{
  Shapes s = { 0 };
  s.shape[0][0] = c->B;
  s.shape[0][1] = c->C * c->H * c->W;
  switch (c->kind) {
  case K_CONV:
    s.nin = c->bias ? 3 : 2;
    s.shape[1][0] = c->Co;
    s.shape[1][1] = c->C * c->k * c->k;
    s.shape[2][0] = 1;
    s.shape[2][1] = c->Co;
    break;
  case K_GROUP_NORM:
    s.nin = 3;
    s.shape[1][0] = s.shape[2][0] = 1;
    s.shape[1][1] = s.shape[2][1] = c->C;
    break;
  case K_ADD_CHANNEL:
    s.nin = 2;
    s.shape[1][0] = c->B;
    s.shape[1][1] = c->C;
    break;
  default:
    s.nin = 1;
  }
  return s;
}

static CfNode
case_build(CfGraph *g, const CfNode *x, const ImgCase *c)
{
  switch (c->kind) {
  case K_CONV:
    return cf_conv2d(g, x[0], x[1], c->bias ? x[2] : -1, c->C, c->H, c->W, c->Co, c->k, c->stride, c->pad);
  case K_UP_NEAREST:
    return cf_upsample_nearest(g, x[0], c->C, c->H, c->W, c->f);
  case K_UP_BILINEAR:
    return cf_upsample_bilinear2x(g, x[0], c->C, c->H, c->W);
  case K_AVGPOOL:
    return cf_avgpool(g, x[0], c->C, c->H, c->W, c->f);
  case K_GROUP_NORM:
    return cf_group_norm(g, x[0], x[1], x[2], c->C, c->H, c->W, c->f, 1e-5f);
  case K_ADD_CHANNEL:
    return cf_add_channel(g, x[0], x[1], c->C, c->H * c->W);
  }
  return -1;
}

/* Reference forward in double; out has the op's output size. */
static void
case_ref(const ImgCase *c, float *const *in, double *out)
{
  int B = c->B, C = c->C, H = c->H, W = c->W, HW = H * W;
  switch (c->kind) {
  case K_CONV:
    naive_conv(out, in[0], in[1], c->bias ? in[2] : NULL, B, C, H, W, c->Co, c->k, c->stride, c->pad);
    break;
  case K_UP_NEAREST: {
    int f = c->f;
    for (int p = 0; p < B * C; p++)
      for (int i = 0; i < H * f; i++)
        for (int j = 0; j < W * f; j++)
          out[((size_t)p * H * f + i) * W * f + j] = in[0][((size_t)p * H + i / f) * W + j / f];
    break;
  }
  case K_UP_BILINEAR:
    for (int p = 0; p < B * C; p++)
      for (int i = 0; i < 2 * H; i++)
        for (int j = 0; j < 2 * W; j++) {
          int i0, i1, j0, j1;
          double li, lj;
          bilinear_src(i, H, &i0, &i1, &li);
          bilinear_src(j, W, &j0, &j1, &lj);
          const float *xp = in[0] + (size_t)p * HW;
          out[((size_t)p * 2 * H + i) * 2 * W + j] =
            (1 - li) * ((1 - lj) * xp[i0 * W + j0] + lj * xp[i0 * W + j1]) +
            li * ((1 - lj) * xp[i1 * W + j0] + lj * xp[i1 * W + j1]);
        }
    break;
  case K_AVGPOOL: {
    int k = c->f, Ho = H / k, Wo = W / k;
    for (int p = 0; p < B * C; p++)
      for (int i = 0; i < Ho; i++)
        for (int j = 0; j < Wo; j++) {
          double s = 0;
          for (int u = 0; u < k; u++)
            for (int v = 0; v < k; v++)
              s += in[0][(size_t)p * HW + (i * k + u) * W + j * k + v];
          out[((size_t)p * Ho + i) * Wo + j] = s / (k * k);
        }
    break;
  }
  case K_GROUP_NORM: {
    int G = c->f, Cg = C / G;
    for (int b = 0; b < B; b++)
      for (int gi = 0; gi < G; gi++) {
        double m = 0, v = 0;
        int N = Cg * HW;
        for (int cc = gi * Cg; cc < (gi + 1) * Cg; cc++)
          for (int p = 0; p < HW; p++)
            m += in[0][((size_t)b * C + cc) * HW + p];
        m /= N;
        for (int cc = gi * Cg; cc < (gi + 1) * Cg; cc++)
          for (int p = 0; p < HW; p++) {
            double d = in[0][((size_t)b * C + cc) * HW + p] - m;
            v += d * d;
          }
        v /= N;
        for (int cc = gi * Cg; cc < (gi + 1) * Cg; cc++)
          for (int p = 0; p < HW; p++) {
            size_t i = ((size_t)b * C + cc) * HW + p;
            out[i] = in[1][cc] * (in[0][i] - m) / sqrt(v + 1e-5) + in[2][cc];
          }
      }
    break;
  }
  case K_ADD_CHANNEL:
    for (int b = 0; b < B; b++)
      for (int cc = 0; cc < C; cc++)
        for (int p = 0; p < HW; p++)
          out[((size_t)b * C + cc) * HW + p] = (double)in[0][((size_t)b * C + cc) * HW + p] + in[1][b * C + cc];
    break;
  }
}

static const ImgCase img_cases[] = {
  /* conv: k = 3 pad 1 stride 1 and 2, odd sizes, k = 5, k = 1, pad 0 */
  { "conv_k3_s1", K_CONV, 2, 2, 5, 4, 3, 3, 1, 1, 0, true, 0, 1e-2, 1e-4 },
  { "conv_k3_s1_b1", K_CONV, 1, 3, 4, 5, 2, 3, 1, 1, 0, true, 0, 1e-2, 1e-4 },
  { "conv_k3_s2", K_CONV, 2, 2, 7, 6, 3, 3, 2, 1, 0, true, 0, 1e-2, 1e-4 },
  { "conv_k3_s2_even", K_CONV, 3, 1, 8, 8, 2, 3, 2, 1, 0, true, 0, 1e-2, 1e-4 },
  { "conv_k3_s2_pad0", K_CONV, 2, 2, 7, 7, 2, 3, 2, 0, 0, true, 0, 1e-2, 1e-4 },
  { "conv_k5_s1", K_CONV, 2, 2, 6, 5, 3, 5, 1, 2, 0, true, 0, 1e-2, 1e-4 },
  { "conv_k5_s3_pad1", K_CONV, 2, 1, 9, 8, 2, 5, 3, 1, 0, true, 0, 1e-2, 1e-4 },
  { "conv_k1", K_CONV, 2, 3, 3, 4, 2, 1, 1, 0, 0, true, 0, 1e-2, 1e-4 },
  { "conv_k1_s2", K_CONV, 2, 3, 5, 4, 2, 1, 2, 0, 0, true, 0, 1e-2, 1e-4 },
  { "conv_nobias", K_CONV, 2, 2, 5, 5, 3, 3, 1, 1, 0, false, 0, 1e-2, 1e-4 },
  { "conv_x_nograd", K_CONV, 2, 2, 5, 5, 3, 3, 1, 1, 0, true, 1u, 1e-2, 1e-4 },
  { "conv_w_nograd", K_CONV, 2, 2, 5, 5, 3, 3, 2, 1, 0, true, 2u, 1e-2, 1e-4 },
  { "upsample_nearest2", K_UP_NEAREST, 2, 2, 3, 4, .f = 2, .h = 1e-2, .tol = 1e-4 },
  { "upsample_nearest3", K_UP_NEAREST, 2, 1, 3, 2, .f = 3, .h = 1e-2, .tol = 1e-4 },
  { "upsample_bilinear2x", K_UP_BILINEAR, 2, 2, 3, 4, .h = 1e-2, .tol = 1e-4 },
  { "upsample_bilinear2x_1px", K_UP_BILINEAR, 2, 1, 1, 3, .h = 1e-2, .tol = 1e-4 },
  { "avgpool2", K_AVGPOOL, 2, 2, 4, 6, .f = 2, .h = 1e-2, .tol = 1e-4 },
  { "avgpool3", K_AVGPOOL, 2, 1, 6, 3, .f = 3, .h = 1e-2, .tol = 1e-4 },
  { "group_norm", K_GROUP_NORM, 2, 4, 3, 2, .f = 2, .h = 1e-3, .tol = 1e-3 },
  { "group_norm_wide", K_GROUP_NORM, 2, 4, 3, 5, .f = 2, .h = 1e-3, .tol = 1e-3 }, /* HW 15: 8 partial sums + tail */
  { "group_norm_1group", K_GROUP_NORM, 2, 3, 2, 3, .f = 1, .h = 1e-3, .tol = 1e-3 },
  { "group_norm_per_channel", K_GROUP_NORM, 3, 2, 3, 3, .f = 2, .h = 1e-3, .tol = 1e-3 },
  { "group_norm_x_nograd", K_GROUP_NORM, 2, 4, 2, 2, .f = 2, .nograd = 1u, .h = 1e-3, .tol = 1e-3 },
  { "add_channel", K_ADD_CHANNEL, 3, 2, 3, 2, .h = 1e-2, .tol = 1e-4 },
};

static void
test_img_case(gconstpointer data)
{
  const ImgCase *c = data;
  Shapes sh = case_shapes(c);
  CfRng rng;
  cf_rng_seed(&rng, 4321);
  CfGraph *g = cf_graph_new();
  CfNode x[3];
  for (int k = 0; k < sh.nin; k++)
    x[k] = cf_input(g, sh.shape[k][0], sh.shape[k][1], !(c->nograd & (1u << k)));
  CfNode out = case_build(g, x, c);
  CfNode w = cf_input(g, cf_graph_rows(g, out), cf_graph_cols(g, out), false);
  CfNode loss = cf_sum_all(g, cf_mul(g, out, w));
  g_assert_cmpint(cf_graph_finalize(g), ==, CF_OK);

  float *in[3] = { NULL, NULL, NULL };
  for (int k = 0; k < sh.nin; k++) {
    in[k] = cf_graph_value(g, x[k]);
    fill_uniform(&rng, in[k], (size_t)sh.shape[k][0] * sh.shape[k][1], -1, 1);
  }
  if (c->kind == K_GROUP_NORM) /* gamma around 1 */
    for (int j = 0; j < c->C; j++)
      in[1][j] += 1.0f;
  float *wv = cf_graph_value(g, w);
  size_t nout = node_size(g, out);
  fill_uniform(&rng, wv, nout, -1, 1);

  cf_graph_forward(g);
  double *ref = g_new(double, nout);
  case_ref(c, in, ref);
  const float *y = cf_graph_value(g, out);
  for (size_t i = 0; i < nout; i++)
    if (!(fabs(y[i] - ref[i]) <= 1e-5 * (1.0 + fabs(ref[i]))))
      g_error("%s: forward[%zu] = %.9g, reference %.9g", c->name, i, y[i], ref[i]);
  g_free(ref);

  cf_graph_backward(g, loss);
  static const char *names[3] = { "x", "in1", "in2" };
  float *an[3] = { NULL, NULL, NULL };
  for (int k = 0; k < sh.nin; k++) {
    size_t n = (size_t)sh.shape[k][0] * sh.shape[k][1];
    float *gr = cf_graph_grad(g, x[k]);
    an[k] = g_memdup2(gr, n * sizeof(float));
    if (c->nograd & (1u << k)) {
      for (size_t i = 0; i < n; i++)
        g_assert_cmpfloat(gr[i], ==, 0.0f);
      continue;
    }
    fd_check(g, out, wv, in[k], an[k], n, c->h, c->tol, c->name, names[k]);
  }

  /* Lazily cleared gradients (the first write of a pass stores): a second
   * pass over stale memory gives the same gradients, and the op applied
   * twice to the same inputs (the second consumer adds) exactly twice them. */
  cf_graph_forward(g);
  cf_graph_backward(g, loss);
  for (int k = 0; k < sh.nin; k++)
    for (size_t i = 0; i < (size_t)sh.shape[k][0] * sh.shape[k][1]; i++)
      g_assert_cmpfloat(cf_graph_grad(g, x[k])[i], ==, an[k][i]);
  CfGraph *g2 = cf_graph_new();
  CfNode x2[3];
  for (int k = 0; k < sh.nin; k++)
    x2[k] = cf_input(g2, sh.shape[k][0], sh.shape[k][1], !(c->nograd & (1u << k)));
  CfNode o1 = case_build(g2, x2, c), o2 = case_build(g2, x2, c);
  CfNode w2 = cf_input(g2, cf_graph_rows(g2, o1), cf_graph_cols(g2, o1), false);
  CfNode loss2 = cf_add(g2, cf_sum_all(g2, cf_mul(g2, o1, w2)), cf_sum_all(g2, cf_mul(g2, o2, w2)));
  g_assert_cmpint(cf_graph_finalize(g2), ==, CF_OK);
  for (int k = 0; k < sh.nin; k++)
    memcpy(cf_graph_value(g2, x2[k]), in[k], (size_t)sh.shape[k][0] * sh.shape[k][1] * sizeof(float));
  memcpy(cf_graph_value(g2, w2), wv, nout * sizeof(float));
  for (int pass = 0; pass < 2; pass++) {
    cf_graph_forward(g2);
    cf_graph_backward(g2, loss2);
    for (int k = 0; k < sh.nin; k++) {
      const float *gr = cf_graph_grad(g2, x2[k]);
      for (size_t i = 0; i < (size_t)sh.shape[k][0] * sh.shape[k][1]; i++)
        if (!(fabsf(gr[i] - 2.0f * an[k][i]) <= 1e-6f * (1.0f + fabsf(an[k][i]))))
          g_error("%s: op applied twice, pass %d: d/d%s[%zu] = %.9g, twice the single op's %.9g", c->name, pass,
                  names[k], i, gr[i], 2.0f * an[k][i]);
    }
  }
  cf_graph_free(g2);
  for (int k = 0; k < sh.nin; k++)
    g_free(an[k]);
  cf_graph_free(g);
}

/* ---- conv forward against the naive loops, many geometries ------------------------ */

typedef struct {
  int B, Ci, H, W, Co, k, s, p;
} ConvShape;

static const ConvShape conv_shapes[] = {
  { 1, 1, 1, 1, 1, 1, 1, 0 },   { 2, 1, 1, 1, 3, 3, 1, 1 },   { 3, 2, 5, 7, 4, 3, 1, 1 },
  { 2, 3, 7, 7, 5, 3, 2, 1 },   { 2, 3, 8, 8, 5, 3, 2, 1 },   { 2, 3, 9, 5, 2, 3, 2, 0 },
  { 2, 2, 11, 13, 3, 5, 1, 2 }, { 2, 2, 11, 13, 3, 5, 2, 2 }, { 2, 4, 6, 6, 3, 7, 1, 3 },
  { 4, 5, 4, 4, 6, 1, 1, 0 },   { 2, 3, 5, 5, 2, 1, 2, 0 },   { 1, 2, 3, 3, 2, 3, 3, 1 },
  /* several GEMM chunks (2 images of 32 x 32 each) with a partial last one */
  { 31, 16, 32, 32, 8, 3, 1, 1 },
};

static void
test_conv_forward_ref(void)
{
  CfRng rng;
  cf_rng_seed(&rng, 99);
  for (size_t t = 0; t < G_N_ELEMENTS(conv_shapes); t++) {
    const ConvShape *s = &conv_shapes[t];
    int Ho = cf_conv2d_out_size(s->H, s->k, s->s, s->p), Wo = cf_conv2d_out_size(s->W, s->k, s->s, s->p);
    g_assert_cmpint(Ho, ==, (s->H + 2 * s->p - s->k) / s->s + 1);
    CfGraph *g = cf_graph_new();
    CfNode x = cf_input(g, s->B, s->Ci * s->H * s->W, false);
    CfNode w = cf_input(g, s->Co, s->Ci * s->k * s->k, false);
    CfNode b = cf_input(g, 1, s->Co, false);
    CfNode y = cf_conv2d(g, x, w, b, s->Ci, s->H, s->W, s->Co, s->k, s->s, s->p);
    g_assert_cmpint(cf_graph_rows(g, y), ==, s->B);
    g_assert_cmpint(cf_graph_cols(g, y), ==, s->Co * Ho * Wo);
    g_assert_cmpint(cf_graph_finalize(g), ==, CF_OK);
    fill_uniform(&rng, cf_graph_value(g, x), node_size(g, x), -1, 1);
    fill_uniform(&rng, cf_graph_value(g, w), node_size(g, w), -1, 1);
    fill_uniform(&rng, cf_graph_value(g, b), node_size(g, b), -1, 1);
    cf_graph_forward(g);
    size_t n = node_size(g, y);
    double *ref = g_new(double, n);
    float *ref2 = g_new(float, n);
    naive_conv(ref, cf_graph_value(g, x), cf_graph_value(g, w), cf_graph_value(g, b), s->B, s->Ci, s->H,
               s->W, s->Co, s->k, s->s, s->p);
    cf_ref_conv2d(ref2, cf_graph_value(g, x), cf_graph_value(g, w), cf_graph_value(g, b), s->B, s->Ci,
                  s->H, s->W, s->Co, s->k, s->s, s->p);
    const float *yv = cf_graph_value(g, y);
    double K = (double)s->Ci * s->k * s->k;
    for (size_t i = 0; i < n; i++) {
      g_assert_cmpfloat(fabs(yv[i] - ref[i]), <=, 1e-6 * (1.0 + sqrt(K)) * (1.0 + fabs(ref[i])));
      g_assert_cmpfloat(fabs(ref2[i] - ref[i]), <=, 1e-6 * (1.0 + fabs(ref[i])));
    }
    g_free(ref);
    g_free(ref2);
    cf_graph_free(g);
  }
}

/* ---- one sample alone vs within a batch ------------------------------------------- */

/* Output and gradients of each sample computed alone (B = 1 graph) equal the
 * batched ones to rounding: the same rows of y and dx, and dw, dbias sum over
 * samples.
 * The batch spans several GEMM chunks (2 images each at stride 1, 8 at
 * stride 2), the last one partial. */
static void
test_conv_batch_vs_single(void)
{
  const int B = 31, Ci = 16, H = 32, W = 32, Co = 8, k = 3;
  for (int stride = 1; stride <= 2; stride++) {
    int Ho = cf_conv2d_out_size(H, k, stride, 1), Wo = cf_conv2d_out_size(W, k, stride, 1);
    size_t in_sz = (size_t)Ci * H * W, out_sz = (size_t)Co * Ho * Wo, wsz = (size_t)Co * Ci * k * k;
    CfRng rng;
    cf_rng_seed(&rng, 7 + stride);
    CfGraph *gb[2];
    CfNode x[2], w[2], b[2], y[2], r[2], loss[2];
    for (int m = 0; m < 2; m++) {
      int rows = m == 0 ? B : 1;
      gb[m] = cf_graph_new();
      x[m] = cf_input(gb[m], rows, (int)in_sz, true);
      w[m] = cf_input(gb[m], Co, Ci * k * k, true);
      b[m] = cf_input(gb[m], 1, Co, true);
      y[m] = cf_conv2d(gb[m], x[m], w[m], b[m], Ci, H, W, Co, k, stride, 1);
      r[m] = cf_input(gb[m], rows, (int)out_sz, false);
      loss[m] = cf_sum_all(gb[m], cf_mul(gb[m], y[m], r[m]));
      g_assert_cmpint(cf_graph_finalize(gb[m]), ==, CF_OK);
    }
    fill_uniform(&rng, cf_graph_value(gb[0], x[0]), B * in_sz, -1, 1);
    fill_uniform(&rng, cf_graph_value(gb[0], w[0]), wsz, -1, 1);
    fill_uniform(&rng, cf_graph_value(gb[0], b[0]), Co, -1, 1);
    fill_uniform(&rng, cf_graph_value(gb[0], r[0]), B * out_sz, -1, 1);
    memcpy(cf_graph_value(gb[1], w[1]), cf_graph_value(gb[0], w[0]), wsz * sizeof(float));
    memcpy(cf_graph_value(gb[1], b[1]), cf_graph_value(gb[0], b[0]), Co * sizeof(float));
    cf_graph_forward(gb[0]);
    cf_graph_backward(gb[0], loss[0]);
    double *dw_sum = g_new0(double, wsz), db_sum[8] = { 0 };
    for (int s = 0; s < B; s++) {
      memcpy(cf_graph_value(gb[1], x[1]), cf_graph_value(gb[0], x[0]) + s * in_sz, in_sz * sizeof(float));
      memcpy(cf_graph_value(gb[1], r[1]), cf_graph_value(gb[0], r[0]) + s * out_sz, out_sz * sizeof(float));
      cf_graph_forward(gb[1]);
      cf_graph_backward(gb[1], loss[1]);
      /* The same dot products, but OpenBLAS picks its kernel by matrix size
       * (one image vs a chunk of several), so the summation order inside a dot
       * product may differ: equal to rounding (measured <= 7e-6 here). */
      const float *y1 = cf_graph_value(gb[1], y[1]), *yb = cf_graph_value(gb[0], y[0]) + s * out_sz;
      for (size_t i = 0; i < out_sz; i++)
        g_assert_cmpfloat(fabsf(y1[i] - yb[i]), <=, 1e-6f * (float)(Ci * k * k) * (1.0f + fabsf(yb[i])) / 16.0f);
      const float *dx1 = cf_graph_grad(gb[1], x[1]), *dxb = cf_graph_grad(gb[0], x[0]) + s * in_sz;
      for (size_t i = 0; i < in_sz; i++)
        g_assert_cmpfloat(fabsf(dx1[i] - dxb[i]), <=, 1e-5f * (1.0f + fabsf(dxb[i])));
      for (size_t i = 0; i < wsz; i++)
        dw_sum[i] += cf_graph_grad(gb[1], w[1])[i];
      for (int o = 0; o < Co; o++)
        db_sum[o] += cf_graph_grad(gb[1], b[1])[o];
    }
    const float *dwb = cf_graph_grad(gb[0], w[0]), *dbb = cf_graph_grad(gb[0], b[0]);
    for (size_t i = 0; i < wsz; i++)
      g_assert_cmpfloat(fabs(dwb[i] - dw_sum[i]), <=, 1e-4 * (1.0 + fabs(dw_sum[i])));
    for (int o = 0; o < Co; o++)
      g_assert_cmpfloat(fabs(dbb[o] - db_sum[o]), <=, 1e-4 * (1.0 + fabs(db_sum[o])));
    g_free(dw_sum);
    for (int m = 0; m < 2; m++)
      cf_graph_free(gb[m]);
  }
}

/* Group norm output: zero mean, unit variance per group when gamma = 1, beta = 0. */
static void
test_group_norm_stats(void)
{
  const int B = 3, C = 6, H = 5, W = 7, G = 3;
  CfGraph *g = cf_graph_new();
  CfNode x = cf_input(g, B, C * H * W, false);
  CfNode gm = cf_input(g, 1, C, false), bt = cf_input(g, 1, C, false);
  CfNode y = cf_group_norm(g, x, gm, bt, C, H, W, G, 1e-6f);
  g_assert_cmpint(cf_graph_finalize(g), ==, CF_OK);
  CfRng rng;
  cf_rng_seed(&rng, 3);
  fill_uniform(&rng, cf_graph_value(g, x), node_size(g, x), 5, 9); /* offset, scale */
  for (int c = 0; c < C; c++)
    cf_graph_value(g, gm)[c] = 1.0f;
  cf_graph_forward(g);
  const float *yv = cf_graph_value(g, y);
  int N = C / G * H * W;
  for (int b = 0; b < B; b++)
    for (int gi = 0; gi < G; gi++) {
      double m = 0, v = 0;
      for (int i = 0; i < N; i++)
        m += yv[b * C * H * W + gi * N + i];
      m /= N;
      for (int i = 0; i < N; i++)
        v += (yv[b * C * H * W + gi * N + i] - m) * (yv[b * C * H * W + gi * N + i] - m);
      v /= N;
      g_assert_cmpfloat(fabs(m), <, 1e-5);
      g_assert_cmpfloat(fabs(v - 1.0), <, 1e-4);
    }
  cf_graph_free(g);
}

/* Channel concatenation is cf_concat_cols on CHW rows. */
static void
test_concat_channels(void)
{
  const int B = 2, C1 = 2, C2 = 3, HW = 4;
  CfGraph *g = cf_graph_new();
  CfNode a = cf_input(g, B, C1 * HW, false), b = cf_input(g, B, C2 * HW, false);
  CfNode y = cf_concat_cols(g, a, b);
  g_assert_cmpint(cf_graph_finalize(g), ==, CF_OK);
  for (int i = 0; i < B * C1 * HW; i++)
    cf_graph_value(g, a)[i] = (float)i;
  for (int i = 0; i < B * C2 * HW; i++)
    cf_graph_value(g, b)[i] = (float)(1000 + i);
  cf_graph_forward(g);
  const float *yv = cf_graph_value(g, y);
  for (int s = 0; s < B; s++)
    for (int c = 0; c < C1 + C2; c++)
      for (int p = 0; p < HW; p++) {
        float want = c < C1 ? (float)((s * C1 + c) * HW + p) : (float)(1000 + (s * C2 + c - C1) * HW + p);
        g_assert_cmpfloat(yv[(s * (C1 + C2) + c) * HW + p], ==, want);
      }
  cf_graph_free(g);
}

/* The same tests with cf_gemm on OpenBLAS: where AVX-512 is present the
 * default runs Conform's kernel, so both paths are checked on this machine. */
typedef struct {
  GTestDataFunc data_fn;
  GTestFunc fn;
  gconstpointer data;
} OnBlas;

static void
run_on_blas(gconstpointer p)
{
  const OnBlas *o = p;
  bool prev = cf_gemm_set_native(false);
  if (o->data_fn)
    o->data_fn(o->data);
  else
    o->fn();
  cf_gemm_set_native(prev);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  static OnBlas blas_cases[G_N_ELEMENTS(img_cases)];
  for (size_t i = 0; i < G_N_ELEMENTS(img_cases); i++) {
    char path[128];
    g_snprintf(path, sizeof path, "/conv/op/%s", img_cases[i].name);
    g_test_add_data_func(path, &img_cases[i], test_img_case);
    blas_cases[i] = (OnBlas){.data_fn = test_img_case, .data = &img_cases[i]};
    g_snprintf(path, sizeof path, "/conv/blas/op/%s", img_cases[i].name);
    g_test_add_data_func(path, &blas_cases[i], run_on_blas);
  }
  static const OnBlas fwd = {.fn = test_conv_forward_ref}, bvs = {.fn = test_conv_batch_vs_single};
  g_test_add_func("/conv/forward-ref", test_conv_forward_ref);
  g_test_add_func("/conv/batch-vs-single", test_conv_batch_vs_single);
  g_test_add_data_func("/conv/blas/forward-ref", &fwd, run_on_blas);
  g_test_add_data_func("/conv/blas/batch-vs-single", &bvs, run_on_blas);
  g_test_add_func("/conv/group-norm-stats", test_group_norm_stats);
  g_test_add_func("/conv/concat-channels", test_concat_channels);
  return g_test_run();
}
