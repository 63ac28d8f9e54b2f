/* Tests for core/graph (autodiff, every op), core/ops and core/nn.
 *
 * Gradient checks: loss = sum(op(inputs) .* W) with fixed random weights W;
 * analytic gradients from cf_graph_backward are compared with central
 * differences (L(x + h) - L(x - h)) / 2h where L is summed in double from the
 * op's output values. Error measure: ||g_analytic - g_numeric|| / ||g_numeric||
 * over each input's whole gradient. */
#include <glib.h>
#include <math.h>
#include <string.h>

#include "graph.h"
#include "nn.h"

/* ---- helpers ------------------------------------------------------------------- */

static void
fill_uniform(CfRng *rng, float *x, size_t n, float lo, float hi)
{
  for (size_t i = 0; i < n; i++)
    x[i] = lo + (hi - lo) * (float)cf_rng_uniform(rng);
}

/* Uniform in [lo, hi] with |x| >= min_abs (keeps inputs away from kinks). */
static void
fill_away(CfRng *rng, float *x, size_t n, float lo, float hi, float min_abs)
{
  for (size_t i = 0; i < n; i++)
    do
      x[i] = lo + (hi - lo) * (float)cf_rng_uniform(rng);
    while (fabsf(x[i]) < min_abs);
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

/* A tensor whose gradient is checked: its values (perturbed in place) and a
 * copy of the analytic gradient. */
typedef struct {
  const char *what;
  float *value;
  float *grad;
  size_t n;
} Leaf;

static double
vec_rel_err(const float *a, const double *num, size_t n)
{
  double d = 0.0, s = 0.0;
  for (size_t i = 0; i < n; i++) {
    d += (a[i] - num[i]) * (a[i] - num[i]);
    s += num[i] * num[i];
  }
  if (s == 0.0)
    return sqrt(d);
  return sqrt(d / s);
}

/* Central differences for every leaf; the analytic gradients are in leaf.grad. */
static void
fd_check(CfGraph *g, CfNode out, const float *w, Leaf *leaves, int nleaves, double h, double tol,
         const char *name)
{
  for (int k = 0; k < nleaves; k++) {
    Leaf *l = &leaves[k];
    double *num = g_new(double, l->n);
    for (size_t i = 0; i < l->n; i++) {
      float v = l->value[i];
      l->value[i] = (float)(v + h);
      double lp = weighted_loss(g, out, w);
      l->value[i] = (float)(v - h);
      double lm = weighted_loss(g, out, w);
      l->value[i] = v;
      /* divide by the step actually taken in float */
      num[i] = (lp - lm) / ((double)(float)(v + h) - (double)(float)(v - h));
    }
    double err = vec_rel_err(l->grad, num, l->n);
    if (g_test_verbose())
      g_test_message("%s: d/d%s relative error %.3g (tol %.1g)", name, l->what, err, tol);
    if (!(err < tol))
      g_test_message("%s: gradient of %s: relative error %g >= %g", name, l->what, err, tol);
    g_assert_cmpfloat(err, <, tol);
    g_free(num);
  }
  weighted_loss(g, out, w);
}

/* ---- per-op cases ------------------------------------------------------------- */

typedef struct OpCase OpCase;
struct OpCase {
  const char *name;
  int nin;
  int shape[3][2];
  float lo, hi;  /* input range */
  float min_abs; /* inputs kept at |x| >= min_abs */
  unsigned nograd; /* bit k: input k is built with requires_grad = false */
  CfNode (*build)(CfGraph *g, const CfNode *x, const OpCase *c);
  /* Reference forward in double; out has the op's output size. */
  void (*ref)(const OpCase *c, float *const *in, double *out);
  double (*f1)(double x, double p); /* unary elementwise reference */
  double (*f2)(double a, double b); /* binary elementwise reference */
  void (*prep)(const OpCase *c, CfRng *rng, float *const *in); /* adjust inputs */
  float p;
  int i0, i1;
  double h, tol, ftol;
};

static size_t
in_size(const OpCase *c, int k)
{
  return (size_t)c->shape[k][0] * (size_t)c->shape[k][1];
}

/* builders */
static CfNode b_matmul(CfGraph *g, const CfNode *x, const OpCase *c) { return cf_matmul(g, x[0], x[1], c->i0, c->i1); }
static CfNode b_linear(CfGraph *g, const CfNode *x, const OpCase *c) { return cf_linear(g, x[0], x[1], c->nin > 2 ? x[2] : -1); }
static CfNode b_linear_act(CfGraph *g, const CfNode *x, const OpCase *c) { return cf_linear_act(g, x[0], x[1], c->nin > 2 ? x[2] : -1, (CfPointwise)c->i0); }
static CfNode b_add(CfGraph *g, const CfNode *x, const OpCase *c) { (void)c; return cf_add(g, x[0], x[1]); }
static CfNode b_sub(CfGraph *g, const CfNode *x, const OpCase *c) { (void)c; return cf_sub(g, x[0], x[1]); }
static CfNode b_mul(CfGraph *g, const CfNode *x, const OpCase *c) { (void)c; return cf_mul(g, x[0], x[1]); }
static CfNode b_scale(CfGraph *g, const CfNode *x, const OpCase *c) { return cf_scale(g, x[0], c->p); }
static CfNode b_add_scalar(CfGraph *g, const CfNode *x, const OpCase *c) { return cf_add_scalar(g, x[0], c->p); }
static CfNode b_bias_add(CfGraph *g, const CfNode *x, const OpCase *c) { (void)c; return cf_bias_add(g, x[0], x[1]); }
static CfNode b_concat(CfGraph *g, const CfNode *x, const OpCase *c) { (void)c; return cf_concat_cols(g, x[0], x[1]); }
static CfNode b_slice(CfGraph *g, const CfNode *x, const OpCase *c) { return cf_slice_cols(g, x[0], c->i0, c->i1); }
static CfNode b_silu(CfGraph *g, const CfNode *x, const OpCase *c) { (void)c; return cf_silu(g, x[0]); }
static CfNode b_softplus(CfGraph *g, const CfNode *x, const OpCase *c) { (void)c; return cf_softplus(g, x[0]); }
static CfNode b_sigmoid(CfGraph *g, const CfNode *x, const OpCase *c) { (void)c; return cf_sigmoid(g, x[0]); }
static CfNode b_tanh(CfGraph *g, const CfNode *x, const OpCase *c) { (void)c; return cf_tanh(g, x[0]); }
static CfNode b_relu(CfGraph *g, const CfNode *x, const OpCase *c) { (void)c; return cf_relu(g, x[0]); }
static CfNode b_leaky(CfGraph *g, const CfNode *x, const OpCase *c) { return cf_leaky_relu(g, x[0], c->p); }
static CfNode b_exp(CfGraph *g, const CfNode *x, const OpCase *c) { (void)c; return cf_exp(g, x[0]); }
static CfNode b_log(CfGraph *g, const CfNode *x, const OpCase *c) { (void)c; return cf_log(g, x[0]); }
static CfNode b_square(CfGraph *g, const CfNode *x, const OpCase *c) { (void)c; return cf_square(g, x[0]); }
static CfNode b_abs(CfGraph *g, const CfNode *x, const OpCase *c) { (void)c; return cf_abs(g, x[0]); }
static CfNode b_sqrt(CfGraph *g, const CfNode *x, const OpCase *c) { (void)c; return cf_sqrt(g, x[0]); }
static CfNode b_sum_rows(CfGraph *g, const CfNode *x, const OpCase *c) { (void)c; return cf_sum_rows(g, x[0]); }
static CfNode b_sum_cols(CfGraph *g, const CfNode *x, const OpCase *c) { (void)c; return cf_sum_cols(g, x[0]); }
static CfNode b_sum_all(CfGraph *g, const CfNode *x, const OpCase *c) { (void)c; return cf_sum_all(g, x[0]); }
static CfNode b_mean_rows(CfGraph *g, const CfNode *x, const OpCase *c) { (void)c; return cf_mean_rows(g, x[0]); }
static CfNode b_mean_cols(CfGraph *g, const CfNode *x, const OpCase *c) { (void)c; return cf_mean_cols(g, x[0]); }
static CfNode b_mean_all(CfGraph *g, const CfNode *x, const OpCase *c) { (void)c; return cf_mean_all(g, x[0]); }
static CfNode b_mse(CfGraph *g, const CfNode *x, const OpCase *c) { (void)c; return cf_mse(g, x[0], x[1]); }
static CfNode b_l1(CfGraph *g, const CfNode *x, const OpCase *c) { (void)c; return cf_l1(g, x[0], x[1]); }
static CfNode b_time_embed(CfGraph *g, const CfNode *x, const OpCase *c) { return cf_time_embed(g, x[0], c->i0, c->p); }

/* elementwise references */
static double sigm(double x) { return 1.0 / (1.0 + exp(-x)); }
static double r_silu(double x, double p) { (void)p; return x * sigm(x); }
static double r_softplus(double x, double p) { (void)p; return log1p(exp(x)); }
static double r_sigmoid(double x, double p) { (void)p; return sigm(x); }
static double r_tanh(double x, double p) { (void)p; return tanh(x); }
static double r_relu(double x, double p) { (void)p; return x > 0 ? x : 0.0; }
static double r_leaky(double x, double p) { return x > 0 ? x : p * x; }
static double r_exp(double x, double p) { (void)p; return exp(x); }
static double r_log(double x, double p) { (void)p; return log(x); }
static double r_square(double x, double p) { (void)p; return x * x; }
static double r_abs(double x, double p) { (void)p; return fabs(x); }
static double r_sqrt(double x, double p) { (void)p; return sqrt(x); }
static double r_scale(double x, double p) { return p * x; }
static double r_add_scalar(double x, double p) { return x + p; }
static double r_identity(double x, double p) { (void)p; return x; }
static double r_add(double a, double b) { return a + b; }
static double r_sub(double a, double b) { return a - b; }
static double r_mul(double a, double b) { return a * b; }

static void
ref_unary(const OpCase *c, float *const *in, double *out)
{
  for (size_t i = 0; i < in_size(c, 0); i++)
    out[i] = c->f1(in[0][i], c->p);
}

static void
ref_binary(const OpCase *c, float *const *in, double *out)
{
  for (size_t i = 0; i < in_size(c, 0); i++)
    out[i] = c->f2(in[0][i], in[1][i]);
}

static void
ref_matmul(const OpCase *c, float *const *in, double *out)
{
  bool ta = c->i0, tb = c->i1;
  int M = ta ? c->shape[0][1] : c->shape[0][0], K = ta ? c->shape[0][0] : c->shape[0][1];
  int N = tb ? c->shape[1][0] : c->shape[1][1];
  for (int i = 0; i < M; i++)
    for (int j = 0; j < N; j++) {
      double s = 0;
      for (int k = 0; k < K; k++)
        s += (double)(ta ? in[0][k * M + i] : in[0][i * K + k]) *
             (tb ? in[1][j * K + k] : in[1][k * N + j]);
      out[i * N + j] = s;
    }
}

/* y = f(x W^T + b), f = c->f1 (identity for plain linear). */
static void
ref_linear(const OpCase *c, float *const *in, double *out)
{
  int B = c->shape[0][0], nin = c->shape[0][1], nout = c->shape[1][0];
  for (int r = 0; r < B; r++)
    for (int j = 0; j < nout; j++) {
      double s = c->nin > 2 ? in[2][j] : 0.0;
      for (int k = 0; k < nin; k++)
        s += (double)in[0][r * nin + k] * in[1][j * nin + k];
      out[r * nout + j] = c->f1 ? c->f1(s, c->p) : s;
    }
}

static void
ref_bias_add(const OpCase *c, float *const *in, double *out)
{
  int B = c->shape[0][0], n = c->shape[0][1];
  for (int r = 0; r < B; r++)
    for (int j = 0; j < n; j++)
      out[r * n + j] = (double)in[0][r * n + j] + in[1][j];
}

static void
ref_concat(const OpCase *c, float *const *in, double *out)
{
  int B = c->shape[0][0], p = c->shape[0][1], q = c->shape[1][1];
  for (int r = 0; r < B; r++) {
    for (int j = 0; j < p; j++)
      out[r * (p + q) + j] = in[0][r * p + j];
    for (int j = 0; j < q; j++)
      out[r * (p + q) + p + j] = in[1][r * q + j];
  }
}

static void
ref_slice(const OpCase *c, float *const *in, double *out)
{
  int B = c->shape[0][0], m = c->shape[0][1];
  for (int r = 0; r < B; r++)
    for (int j = 0; j < c->i1; j++)
      out[r * c->i1 + j] = in[0][r * m + c->i0 + j];
}

/* sums: i0 = 0 rows, 1 cols, 2 all; p = 1 (sum) or 0 (mean) */
static void
ref_reduce(const OpCase *c, float *const *in, double *out)
{
  int B = c->shape[0][0], n = c->shape[0][1];
  int nout = c->i0 == 0 ? B : c->i0 == 1 ? n : 1;
  for (int o = 0; o < nout; o++)
    out[o] = 0.0;
  for (int r = 0; r < B; r++)
    for (int j = 0; j < n; j++)
      out[c->i0 == 0 ? r : c->i0 == 1 ? j : 0] += in[0][r * n + j];
  double cnt = c->i0 == 0 ? n : c->i0 == 1 ? B : (double)B * n;
  for (int o = 0; o < nout; o++)
    out[o] = c->p != 0.0f ? out[o] : out[o] / cnt;
}

static void
ref_mse(const OpCase *c, float *const *in, double *out)
{
  double s = 0;
  for (size_t i = 0; i < in_size(c, 0); i++) {
    double d = (double)in[0][i] - in[1][i];
    s += c->i0 ? fabs(d) : d * d;
  }
  out[0] = s / (double)in_size(c, 0);
}

static void
ref_time_embed(const OpCase *c, float *const *in, double *out)
{
  int B = c->shape[0][0], half = c->i0 / 2;
  for (int r = 0; r < B; r++)
    for (int j = 0; j < half; j++) {
      double f = pow(c->p, -(double)j / half);
      out[r * c->i0 + j] = sin(in[0][r] * f);
      out[r * c->i0 + half + j] = cos(in[0][r] * f);
    }
}

/* l1: keep |a - b| >= 0.2 so the central difference never crosses the kink */
static void
prep_l1(const OpCase *c, CfRng *rng, float *const *in)
{
  for (size_t i = 0; i < in_size(c, 0); i++) {
    float d = 0.2f + 0.8f * (float)cf_rng_uniform(rng);
    in[1][i] = in[0][i] + (cf_rng_uniform(rng) < 0.5 ? d : -d);
  }
}

#define SH1(r, c) { { r, c } }
#define SH2(r0, c0, r1, c1) { { r0, c0 }, { r1, c1 } }
#define SH3(r0, c0, r1, c1, r2, c2) { { r0, c0 }, { r1, c1 }, { r2, c2 } }

static const OpCase op_cases[] = {
  /* matmul, all transpose combinations, odd shapes: op(a) (3,4), op(b) (4,5) */
  { "matmul_nn", 2, SH2(3, 4, 4, 5), -1, 1, 0, 0, b_matmul, ref_matmul, .i0 = 0, .i1 = 0, .h = 1e-2, .tol = 1e-4 },
  { "matmul_tn", 2, SH2(4, 3, 4, 5), -1, 1, 0, 0, b_matmul, ref_matmul, .i0 = 1, .i1 = 0, .h = 1e-2, .tol = 1e-4 },
  { "matmul_nt", 2, SH2(3, 4, 5, 4), -1, 1, 0, 0, b_matmul, ref_matmul, .i0 = 0, .i1 = 1, .h = 1e-2, .tol = 1e-4 },
  { "matmul_tt", 2, SH2(4, 3, 5, 4), -1, 1, 0, 0, b_matmul, ref_matmul, .i0 = 1, .i1 = 1, .h = 1e-2, .tol = 1e-4 },
  { "matmul_a_nograd", 2, SH2(3, 4, 4, 5), -1, 1, 0, 1u, b_matmul, ref_matmul, .h = 1e-2, .tol = 1e-4 },
  /* linear: x (3,4), W (5,4), b (1,5) */
  { "linear", 3, SH3(3, 4, 5, 4, 1, 5), -1, 1, 0, 0, b_linear, ref_linear, .h = 1e-2, .tol = 1e-4 },
  { "linear_wide", 3, SH3(6, 7, 5, 7, 1, 5), -1, 1, 0, 0, b_linear, ref_linear, .h = 1e-2, .tol = 1e-4 }, /* sgemm */
  { "linear_nobias", 2, SH2(3, 4, 5, 4), -1, 1, 0, 0, b_linear, ref_linear, .h = 1e-2, .tol = 1e-4 },
  { "linear_x_nograd", 3, SH3(3, 4, 5, 4, 1, 5), -1, 1, 0, 1u, b_linear, ref_linear, .h = 1e-2, .tol = 1e-4 },
  { "linear_act_identity", 3, SH3(3, 4, 5, 4, 1, 5), -1, 1, 0, 0, b_linear_act, ref_linear, r_identity, .i0 = CF_PW_IDENTITY, .h = 1e-2, .tol = 1e-4 },
  { "linear_act_silu", 3, SH3(3, 4, 5, 4, 1, 5), -1, 1, 0, 0, b_linear_act, ref_linear, r_silu, .i0 = CF_PW_SILU, .h = 1e-2, .tol = 5e-4 },
  { "linear_act_silu_nobias", 2, SH2(3, 4, 5, 4), -1, 1, 0, 0, b_linear_act, ref_linear, r_silu, .i0 = CF_PW_SILU, .h = 1e-2, .tol = 5e-4 },
  { "linear_act_tanh", 3, SH3(3, 4, 5, 4, 1, 5), -1, 1, 0, 0, b_linear_act, ref_linear, r_tanh, .i0 = CF_PW_TANH, .h = 1e-2, .tol = 5e-4 },
  { "linear_act_softplus", 3, SH3(3, 4, 5, 4, 1, 5), -1, 1, 0, 0, b_linear_act, ref_linear, r_softplus, .i0 = CF_PW_SOFTPLUS, .h = 1e-2, .tol = 5e-4 },
  { "linear_act_sigmoid", 3, SH3(3, 4, 5, 4, 1, 5), -1, 1, 0, 0, b_linear_act, ref_linear, r_sigmoid, .i0 = CF_PW_SIGMOID, .h = 1e-2, .tol = 5e-4 },
  /* relu kinks: a step of 1e-4 rarely crosses one with these inputs; tolerance
   * allows nothing else */
  { "linear_act_relu", 3, SH3(3, 4, 5, 4, 1, 5), -1, 1, 0, 0, b_linear_act, ref_linear, r_relu, .i0 = CF_PW_RELU, .h = 1e-4, .tol = 5e-3 },
  { "linear_act_leaky", 3, SH3(3, 4, 5, 4, 1, 5), -1, 1, 0, 0, b_linear_act, ref_linear, r_leaky, .p = 0.01f, .i0 = CF_PW_LEAKY_RELU, .h = 1e-4, .tol = 5e-3 },
  { "add", 2, SH2(3, 4, 3, 4), -1, 1, 0, 0, b_add, ref_binary, .f2 = r_add, .h = 1e-2, .tol = 1e-4 },
  { "sub", 2, SH2(3, 4, 3, 4), -1, 1, 0, 0, b_sub, ref_binary, .f2 = r_sub, .h = 1e-2, .tol = 1e-4 },
  { "mul", 2, SH2(3, 4, 3, 4), -1, 1, 0, 0, b_mul, ref_binary, .f2 = r_mul, .h = 1e-2, .tol = 1e-4 },
  { "mul_b_nograd", 2, SH2(3, 4, 3, 4), -1, 1, 0, 2u, b_mul, ref_binary, .f2 = r_mul, .h = 1e-2, .tol = 1e-4 },
  { "scale", 1, SH1(3, 4), -1, 1, 0, 0, b_scale, ref_unary, r_scale, .p = -1.7f, .h = 1e-2, .tol = 1e-4 },
  { "add_scalar", 1, SH1(3, 4), -1, 1, 0, 0, b_add_scalar, ref_unary, r_add_scalar, .p = 0.3f, .h = 1e-2, .tol = 1e-4 },
  { "bias_add", 2, SH2(3, 4, 1, 4), -1, 1, 0, 0, b_bias_add, ref_bias_add, .h = 1e-2, .tol = 1e-4 },
  { "concat_cols", 2, SH2(3, 4, 3, 2), -1, 1, 0, 0, b_concat, ref_concat, .h = 1e-2, .tol = 1e-4 },
  { "slice_cols", 1, SH1(3, 6), -1, 1, 0, 0, b_slice, ref_slice, .i0 = 2, .i1 = 3, .h = 1e-2, .tol = 1e-4 },
  { "silu", 1, SH1(3, 4), -4, 4, 0, 0, b_silu, ref_unary, r_silu, .h = 1e-2, .tol = 1e-4 },
  { "softplus", 1, SH1(3, 4), -4, 4, 0, 0, b_softplus, ref_unary, r_softplus, .h = 1e-2, .tol = 1e-4 },
  { "sigmoid", 1, SH1(3, 4), -4, 4, 0, 0, b_sigmoid, ref_unary, r_sigmoid, .h = 1e-2, .tol = 1e-4 },
  { "tanh", 1, SH1(3, 4), -2, 2, 0, 0, b_tanh, ref_unary, r_tanh, .h = 1e-2, .tol = 1e-4 },
  { "relu", 1, SH1(3, 4), -2, 2, 0.1f, 0, b_relu, ref_unary, r_relu, .h = 1e-2, .tol = 1e-4 },
  { "leaky_relu", 1, SH1(3, 4), -2, 2, 0.1f, 0, b_leaky, ref_unary, r_leaky, .p = 0.05f, .h = 1e-2, .tol = 1e-4 },
  { "exp", 1, SH1(3, 4), -1.5f, 1.5f, 0, 0, b_exp, ref_unary, r_exp, .h = 1e-3, .tol = 5e-4 },
  { "log", 1, SH1(3, 4), 0.5f, 3, 0, 0, b_log, ref_unary, r_log, .h = 1e-3, .tol = 5e-4 },
  { "square", 1, SH1(3, 4), -2, 2, 0, 0, b_square, ref_unary, r_square, .h = 1e-2, .tol = 1e-4 },
  { "abs", 1, SH1(3, 4), -2, 2, 0.1f, 0, b_abs, ref_unary, r_abs, .h = 1e-2, .tol = 1e-4 },
  { "sqrt", 1, SH1(3, 4), 0.5f, 3, 0, 0, b_sqrt, ref_unary, r_sqrt, .h = 1e-3, .tol = 5e-4 },
  { "sum_rows", 1, SH1(3, 4), -1, 1, 0, 0, b_sum_rows, ref_reduce, .i0 = 0, .p = 1, .h = 1e-2, .tol = 1e-4 },
  { "sum_cols", 1, SH1(3, 4), -1, 1, 0, 0, b_sum_cols, ref_reduce, .i0 = 1, .p = 1, .h = 1e-2, .tol = 1e-4 },
  { "sum_all", 1, SH1(3, 4), -1, 1, 0, 0, b_sum_all, ref_reduce, .i0 = 2, .p = 1, .h = 1e-2, .tol = 1e-4 },
  { "mean_rows", 1, SH1(3, 4), -1, 1, 0, 0, b_mean_rows, ref_reduce, .i0 = 0, .p = 0, .h = 1e-2, .tol = 1e-4 },
  { "mean_cols", 1, SH1(3, 4), -1, 1, 0, 0, b_mean_cols, ref_reduce, .i0 = 1, .p = 0, .h = 1e-2, .tol = 1e-4 },
  { "mean_all", 1, SH1(3, 4), -1, 1, 0, 0, b_mean_all, ref_reduce, .i0 = 2, .p = 0, .h = 1e-2, .tol = 1e-4 },
  { "mse", 2, SH2(3, 4, 3, 4), -1, 1, 0, 0, b_mse, ref_mse, .i0 = 0, .h = 1e-2, .tol = 1e-4 },
  { "mse_b_nograd", 2, SH2(3, 4, 3, 4), -1, 1, 0, 2u, b_mse, ref_mse, .i0 = 0, .h = 1e-2, .tol = 1e-4 },
  { "mse_a_nograd", 2, SH2(3, 4, 3, 4), -1, 1, 0, 1u, b_mse, ref_mse, .i0 = 0, .h = 1e-2, .tol = 1e-4 },
  { "l1", 2, SH2(3, 4, 3, 4), -1, 1, 0, 0, b_l1, ref_mse, .prep = prep_l1, .i0 = 1, .h = 1e-2, .tol = 1e-4 },
  { "l1_a_nograd", 2, SH2(3, 4, 3, 4), -1, 1, 0, 1u, b_l1, ref_mse, .prep = prep_l1, .i0 = 1, .h = 1e-2, .tol = 1e-4 },
  /* t (5,1) in [0, 3], dim 8, max_period 100 */
  { "time_embed", 1, SH1(5, 1), 0, 3, 0, 0, b_time_embed, ref_time_embed, .i0 = 8, .p = 100.0f, .h = 1e-3, .tol = 5e-4 },
};

static void
test_op_case(gconstpointer data)
{
  const OpCase *c = data;
  CfRng rng;
  cf_rng_seed(&rng, 1234);
  CfGraph *g = cf_graph_new();
  CfNode x[3];
  for (int k = 0; k < c->nin; k++)
    x[k] = cf_input(g, c->shape[k][0], c->shape[k][1], !(c->nograd & (1u << k)));
  CfNode out = c->build(g, x, c);
  CfNode w = cf_input(g, cf_graph_rows(g, out), cf_graph_cols(g, out), false);
  CfNode loss = cf_sum_all(g, cf_mul(g, out, w));
  g_assert_cmpint(cf_graph_finalize(g), ==, CF_OK);

  float *in[3] = { NULL, NULL, NULL };
  for (int k = 0; k < c->nin; k++) {
    in[k] = cf_graph_value(g, x[k]);
    fill_away(&rng, in[k], in_size(c, k), c->lo, c->hi, c->min_abs);
  }
  if (c->prep)
    c->prep(c, &rng, in);
  float *wv = cf_graph_value(g, w);
  fill_uniform(&rng, wv, node_size(g, out), -1, 1);

  /* forward values against the reference */
  cf_graph_forward(g);
  size_t nout = node_size(g, out);
  double *ref = g_new(double, nout);
  c->ref(c, in, ref);
  const float *y = cf_graph_value(g, out);
  double ftol = c->ftol > 0 ? c->ftol : 2e-6;
  for (size_t i = 0; i < nout; i++)
    if (!(fabs(y[i] - ref[i]) <= ftol * (1.0 + fabs(ref[i]))))
      g_error("%s: forward[%zu] = %.9g, reference %.9g", c->name, i, y[i], ref[i]);
  double lsum = 0;
  for (size_t i = 0; i < nout; i++)
    lsum += ref[i] * wv[i];
  g_assert_cmpfloat(fabs(cf_graph_value(g, loss)[0] - lsum), <=, 1e-5 * (1.0 + fabs(lsum)));
  g_free(ref);

  /* analytic gradients; inputs built without requires_grad must stay zero */
  cf_graph_backward(g, loss);
  Leaf leaves[3];
  int nl = 0;
  for (int k = 0; k < c->nin; k++) {
    float *gr = cf_graph_grad(g, x[k]);
    if (c->nograd & (1u << k)) {
      for (size_t i = 0; i < in_size(c, k); i++)
        g_assert_cmpfloat(gr[i], ==, 0.0f);
      continue;
    }
    static const char *names[3] = { "in0", "in1", "in2" };
    leaves[nl].what = names[k];
    leaves[nl].value = in[k];
    leaves[nl].grad = g_memdup2(gr, in_size(c, k) * sizeof(float));
    leaves[nl].n = in_size(c, k);
    nl++;
  }
  fd_check(g, out, wv, leaves, nl, c->h, c->tol, c->name);

  /* Gradients are cleared lazily (the first write of a pass stores):
   * a second pass over stale memory gives the same gradients, and with
   * the op applied twice to the same inputs, where the second consumer
   * adds to what the first stored, exactly twice them. */
  cf_graph_forward(g);
  cf_graph_backward(g, loss);
  for (int k = 0, l = 0; k < c->nin; k++) {
    if (c->nograd & (1u << k))
      continue;
    for (size_t i = 0; i < in_size(c, k); i++)
      g_assert_cmpfloat(cf_graph_grad(g, x[k])[i], ==, leaves[l].grad[i]);
    l++;
  }
  CfGraph *g2 = cf_graph_new();
  CfNode x2[3];
  for (int k = 0; k < c->nin; k++)
    x2[k] = cf_input(g2, c->shape[k][0], c->shape[k][1], !(c->nograd & (1u << k)));
  CfNode o1 = c->build(g2, x2, c), o2 = c->build(g2, x2, c);
  CfNode w2 = cf_input(g2, cf_graph_rows(g2, o1), cf_graph_cols(g2, o1), false);
  CfNode loss2 = cf_add(g2, cf_sum_all(g2, cf_mul(g2, o1, w2)), cf_sum_all(g2, cf_mul(g2, o2, w2)));
  g_assert_cmpint(cf_graph_finalize(g2), ==, CF_OK);
  for (int k = 0; k < c->nin; k++)
    memcpy(cf_graph_value(g2, x2[k]), in[k], in_size(c, k) * sizeof(float));
  memcpy(cf_graph_value(g2, w2), wv, nout * sizeof(float));
  for (int pass = 0; pass < 2; pass++) {
    cf_graph_forward(g2);
    cf_graph_backward(g2, loss2);
    for (int k = 0, l = 0; k < c->nin; k++) {
      if (c->nograd & (1u << k))
        continue;
      const float *gr = cf_graph_grad(g2, x2[k]);
      for (size_t i = 0; i < in_size(c, k); i++)
        if (!(fabsf(gr[i] - 2.0f * leaves[l].grad[i]) <= 1e-6f * (1.0f + fabsf(leaves[l].grad[i]))))
          g_error("%s: op applied twice, pass %d: d/d%s[%zu] = %.9g, twice the single op's %.9g", c->name, pass,
                  leaves[l].what, i, gr[i], 2.0f * leaves[l].grad[i]);
      l++;
    }
  }
  cf_graph_free(g2);
  for (int k = 0; k < nl; k++)
    g_free(leaves[k].grad);
  cf_graph_free(g);
}

/* ---- matmul against the naive reference ---------------------------------------- */

static void
test_matmul_ref(void)
{
  /* thin shapes (a dimension <= 4: ops.c's own loops) and wider ones (sgemm),
   * among them a 2-D model's output layer and its two gradients */
  static const int shapes[][3] = { { 7, 5, 3 },     { 1, 1, 1 },     { 13, 9, 17 },  { 2, 33, 1 },
                                   { 64, 3, 65 },   { 256, 2, 128 }, { 2, 128, 256 }, { 256, 128, 2 },
                                   { 40, 24, 36 }, { 5, 4, 19 },     { 4, 5, 5 } };
  CfRng rng;
  cf_rng_seed(&rng, 77);
  for (size_t s = 0; s < G_N_ELEMENTS(shapes); s++)
    for (int t = 0; t < 4; t++) {
      int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
      bool ta = t & 1, tb = t & 2;
      CfGraph *g = cf_graph_new();
      CfNode a = ta ? cf_input(g, K, M, false) : cf_input(g, M, K, false);
      CfNode b = tb ? cf_input(g, N, K, false) : cf_input(g, K, N, false);
      CfNode c = cf_matmul(g, a, b, ta, tb);
      g_assert_cmpint(cf_graph_rows(g, c), ==, M);
      g_assert_cmpint(cf_graph_cols(g, c), ==, N);
      g_assert_cmpint(cf_graph_finalize(g), ==, CF_OK);
      fill_uniform(&rng, cf_graph_value(g, a), (size_t)M * K, -1, 1);
      fill_uniform(&rng, cf_graph_value(g, b), (size_t)K * N, -1, 1);
      cf_graph_forward(g);
      float *ref = g_new(float, (size_t)M * N);
      cf_ref_matmul(ref, cf_graph_value(g, a), cf_graph_value(g, b), M, N, K, ta, tb);
      const float *y = cf_graph_value(g, c);
      for (int i = 0; i < M * N; i++)
        g_assert_cmpfloat(fabsf(y[i] - ref[i]), <=, 1e-5f * (1.0f + sqrtf((float)K)));
      /* reference itself against a direct formula for one entry */
      {
        double s0 = 0;
        const float *A = cf_graph_value(g, a), *Bv = cf_graph_value(g, b);
        int i = M - 1, j = N - 1;
        for (int k = 0; k < K; k++)
          s0 += (double)(ta ? A[k * M + i] : A[i * K + k]) * (tb ? Bv[j * K + k] : Bv[k * N + j]);
        g_assert_cmpfloat(fabs(ref[i * N + j] - s0), <=, 1e-6 * (1.0 + fabs(s0)));
      }
      g_free(ref);
      cf_graph_free(g);
    }
}

/* ---- parameters ------------------------------------------------------------------ */

static void
test_params(void)
{
  CfParams p;
  cf_params_init(&p);
  int a = cf_params_add(&p, "a", 3, 5, CF_INIT_UNIFORM_FAN_IN, 1.0f);
  int b = cf_params_add(&p, "b", 1, 5, CF_INIT_ZERO, 0.0f);
  int c = cf_params_add(&p, "c", 40, 50, CF_INIT_NORMAL, 0.5f);
  int d = cf_params_add(&p, "d", 2, 2, CF_INIT_ONE, 0.0f);
  g_assert_cmpint(a, ==, 0);
  g_assert_cmpint(d, ==, 3);
  g_assert_cmpint(cf_params_find(&p, "c"), ==, c);
  g_assert_cmpint(cf_params_find(&p, "zz"), ==, -1);
  g_assert_cmpint(p.count, ==, 4);
  for (int k = 0; k < p.count; k++) {
    g_assert_cmpuint(p.info[k].offset % 16, ==, 0); /* 64-byte aligned views */
    g_assert_cmpuint(p.info[k].offset + (size_t)p.info[k].rows * p.info[k].cols, <=, p.total);
    if (k > 0)
      g_assert_cmpuint(p.info[k].offset, >=,
                       p.info[k - 1].offset + (size_t)p.info[k - 1].rows * p.info[k - 1].cols);
  }
  g_assert_cmpint(cf_params_alloc(&p), ==, CF_OK);
  g_assert_true(((uintptr_t)p.value & 63) == 0 && ((uintptr_t)p.grad & 63) == 0);
  CfRng rng;
  cf_rng_seed(&rng, 5);
  cf_params_randomize(&p, &rng);
  const float *va = cf_params_value(&p, a);
  double bound = 1.0 / sqrt(5.0), maxabs = 0;
  for (int i = 0; i < 15; i++)
    maxabs = fmax(maxabs, fabs(va[i]));
  g_assert_cmpfloat(maxabs, <=, bound);
  g_assert_cmpfloat(maxabs, >, 0.5 * bound);
  for (int i = 0; i < 5; i++)
    g_assert_cmpfloat(cf_params_value(&p, b)[i], ==, 0.0f);
  for (int i = 0; i < 4; i++)
    g_assert_cmpfloat(cf_params_value(&p, d)[i], ==, 1.0f);
  const float *vc = cf_params_value(&p, c);
  double m = 0, s2 = 0;
  for (int i = 0; i < 2000; i++) {
    m += vc[i];
    s2 += (double)vc[i] * vc[i];
  }
  m /= 2000;
  double sd = sqrt(s2 / 2000 - m * m);
  g_assert_cmpfloat(fabs(m), <, 0.05);
  g_assert_cmpfloat(fabs(sd - 0.5), <, 0.05);
  cf_params_grad(&p, c)[7] = 3.0f;
  cf_params_zero_grad(&p);
  for (size_t i = 0; i < p.total; i++)
    g_assert_cmpfloat(p.grad[i], ==, 0.0f);
  cf_params_clear(&p);
  g_assert_null(p.value);
  g_assert_cmpint(p.count, ==, 0);
}

/* ---- linear through parameters ---------------------------------------------------- */

/* Parameter gradients land in the CfParams arena and accumulate across
 * backward passes until cf_params_zero_grad. */
static void
test_linear_params(void)
{
  CfParams p;
  cf_params_init(&p);
  int iw = cf_params_add(&p, "w", 5, 4, CF_INIT_NORMAL, 1.0f);
  int ib = cf_params_add(&p, "b", 1, 5, CF_INIT_NORMAL, 1.0f);
  g_assert_cmpint(cf_params_alloc(&p), ==, CF_OK);
  CfRng rng;
  cf_rng_seed(&rng, 11);
  cf_params_randomize(&p, &rng);
  CfGraph *g = cf_graph_new();
  CfNode x = cf_input(g, 3, 4, true);
  CfNode y = cf_linear(g, x, cf_param(g, &p, iw), cf_param(g, &p, ib));
  CfNode w = cf_input(g, 3, 5, false);
  CfNode loss = cf_sum_all(g, cf_mul(g, y, w));
  g_assert_cmpint(cf_graph_finalize(g), ==, CF_OK);
  fill_uniform(&rng, cf_graph_value(g, x), 12, -1, 1);
  fill_uniform(&rng, cf_graph_value(g, w), 15, -1, 1);
  cf_graph_forward(g);
  cf_params_zero_grad(&p);
  cf_graph_backward(g, loss);
  Leaf leaves[3] = {
    { "x", cf_graph_value(g, x), g_memdup2(cf_graph_grad(g, x), 12 * sizeof(float)), 12 },
    { "W", cf_params_value(&p, iw), g_memdup2(cf_params_grad(&p, iw), 20 * sizeof(float)), 20 },
    { "b", cf_params_value(&p, ib), g_memdup2(cf_params_grad(&p, ib), 5 * sizeof(float)), 5 },
  };
  fd_check(g, y, cf_graph_value(g, w), leaves, 3, 1e-2, 1e-3, "linear(params)");
  /* second backward without zeroing: param grads double, x's grad does not */
  cf_graph_backward(g, loss);
  for (int i = 0; i < 20; i++)
    g_assert_cmpfloat(fabsf(cf_params_grad(&p, iw)[i] - 2 * leaves[1].grad[i]), <=, 1e-6f);
  for (int i = 0; i < 12; i++)
    g_assert_cmpfloat(cf_graph_grad(g, x)[i], ==, leaves[0].grad[i]);
  for (int k = 0; k < 3; k++)
    g_free(leaves[k].grad);
  cf_graph_free(g);
  cf_params_clear(&p);
}

/* ---- MLP ----------------------------------------------------------------------- */

static void
test_mlp_declare(void)
{
  CfParams p;
  cf_params_init(&p);
  cf_params_add(&p, "other", 2, 2, CF_INIT_ZERO, 0);
  CfMlp m;
  cf_mlp_declare(&m, &p, "net", 3, 5, 2, 2);
  g_assert_cmpint(m.first_param, ==, 1);
  g_assert_cmpint(p.count, ==, 7);
  static const char *names[] = { "net.0.w", "net.0.b", "net.1.w", "net.1.b", "net.2.w", "net.2.b" };
  static const int shapes[][2] = { { 5, 3 }, { 1, 5 }, { 5, 5 }, { 1, 5 }, { 2, 5 }, { 1, 2 } };
  for (int i = 0; i < 6; i++) {
    int k = cf_params_find(&p, names[i]);
    g_assert_cmpint(k, ==, 1 + i);
    g_assert_cmpint(p.info[k].rows, ==, shapes[i][0]);
    g_assert_cmpint(p.info[k].cols, ==, shapes[i][1]);
    g_assert_cmpint(p.info[k].init, ==, i % 2 ? CF_INIT_ZERO : CF_INIT_UNIFORM_FAN_IN);
  }
  g_assert_cmpfloat(cf_mlp_flops(&m, 4), ==, 2.0 * 4 * (3 * 5 + 5 * 5 + 5 * 2));
  g_assert_cmpint(cf_params_alloc(&p), ==, CF_OK);
  CfGraph *g = cf_graph_new();
  CfNode x = cf_input(g, 4, 3, false);
  CfNode y = cf_mlp_build(g, &p, &m, x, CF_ACT_SILU);
  g_assert_cmpint(cf_graph_rows(g, y), ==, 4);
  g_assert_cmpint(cf_graph_cols(g, y), ==, 2);
  cf_graph_free(g);
  cf_params_clear(&p);
}

/* Gradient check through a small MLP, every activation, inputs and params. */
static void
test_mlp_grad(void)
{
  static const CfActivation acts[] = { CF_ACT_SILU, CF_ACT_TANH, CF_ACT_SOFTPLUS, CF_ACT_RELU, CF_ACT_LEAKY_RELU };
  static const char *act_names[] = { "silu", "tanh", "softplus", "relu", "leaky_relu" };
  for (size_t a = 0; a < G_N_ELEMENTS(acts); a++) {
    CfParams p;
    cf_params_init(&p);
    CfMlp m;
    cf_mlp_declare(&m, &p, "mlp", 3, 6, 2, 2);
    g_assert_cmpint(cf_params_alloc(&p), ==, CF_OK);
    CfRng rng;
    cf_rng_seed(&rng, 21);
    cf_params_randomize(&p, &rng);
    /* non-zero biases so their gradients are tested at a generic point */
    for (int i = 0; i <= m.depth; i++)
      fill_uniform(&rng, cf_params_value(&p, m.first_param + 2 * i + 1),
                   (size_t)p.info[m.first_param + 2 * i + 1].cols, -0.5f, 0.5f);
    CfGraph *g = cf_graph_new();
    CfNode x = cf_input(g, 4, 3, true);
    CfNode y = cf_mlp_build(g, &p, &m, x, acts[a]);
    CfNode w = cf_input(g, 4, 2, false);
    CfNode loss = cf_sum_all(g, cf_mul(g, y, w));
    g_assert_cmpint(cf_graph_finalize(g), ==, CF_OK);
    fill_uniform(&rng, cf_graph_value(g, x), 12, -1, 1);
    fill_uniform(&rng, cf_graph_value(g, w), 8, -1, 1);
    cf_graph_forward(g);
    cf_params_zero_grad(&p);
    cf_graph_backward(g, loss);
    Leaf leaves[2] = {
      { "x", cf_graph_value(g, x), g_memdup2(cf_graph_grad(g, x), 12 * sizeof(float)), 12 },
      { "params", p.value, g_memdup2(p.grad, p.total * sizeof(float)), p.total },
    };
    bool kink = acts[a] == CF_ACT_RELU || acts[a] == CF_ACT_LEAKY_RELU;
    fd_check(g, y, cf_graph_value(g, w), leaves, 2, kink ? 1e-4 : 1e-2, kink ? 1e-2 : 2e-3, act_names[a]);
    /* the unfused path (cf_linear + cf_activation) agrees with the MLP */
    CfGraph *g2 = cf_graph_new();
    CfNode x2 = cf_input(g2, 4, 3, false);
    CfNode h = x2;
    for (int i = 0; i <= m.depth; i++) {
      h = cf_linear(g2, h, cf_param(g2, &p, m.first_param + 2 * i), cf_param(g2, &p, m.first_param + 2 * i + 1));
      if (i < m.depth)
        h = cf_activation(g2, h, acts[a]);
    }
    g_assert_cmpint(cf_graph_finalize(g2), ==, CF_OK);
    memcpy(cf_graph_value(g2, x2), cf_graph_value(g, x), 12 * sizeof(float));
    cf_graph_forward(g2);
    cf_graph_forward(g);
    for (int i = 0; i < 8; i++)
      g_assert_cmpfloat(fabsf(cf_graph_value(g2, h)[i] - cf_graph_value(g, y)[i]), <=, 1e-6f);
    cf_graph_free(g2);
    g_free(leaves[0].grad);
    g_free(leaves[1].grad);
    cf_graph_free(g);
    cf_params_clear(&p);
  }
}

/* ---- replay and arena ----------------------------------------------------------- */

static void
test_replay(void)
{
  CfParams p;
  cf_params_init(&p);
  CfMlp m;
  cf_mlp_declare(&m, &p, "den", 34, 32, 3, 2);
  g_assert_cmpint(cf_params_alloc(&p), ==, CF_OK);
  CfRng rng;
  cf_rng_seed(&rng, 3);
  cf_params_randomize(&p, &rng);
  int B = 64;
  CfGraph *g = cf_graph_new();
  CfNode x = cf_input(g, B, 2, false), t = cf_input(g, B, 1, false), eps = cf_input(g, B, 2, false);
  CfNode h = cf_concat_cols(g, x, cf_time_embed(g, t, 32, 10000.0f));
  CfNode y = cf_mlp_build(g, &p, &m, h, CF_ACT_SILU);
  CfNode loss = cf_mse(g, y, eps);
  int nodes = cf_graph_node_count(g);
  g_assert_cmpint(cf_graph_finalize(g), ==, CF_OK);
  g_assert_cmpint(cf_graph_node_count(g), ==, nodes);
  size_t arena = cf_graph_arena_floats(g);
  g_assert_cmpuint(arena, >, 0);
  float *ptr_v[64], *ptr_g[64];
  g_assert_cmpint(nodes, <=, 64);
  for (int i = 0; i < nodes; i++) {
    ptr_v[i] = cf_graph_value(g, i);
    ptr_g[i] = cf_graph_grad(g, i);
    g_assert_true(((uintptr_t)ptr_v[i] & 63) == 0);
  }
  cf_rng_fill_normal(&rng, cf_graph_value(g, x), (size_t)B * 2);
  cf_rng_fill_normal(&rng, cf_graph_value(g, eps), (size_t)B * 2);
  for (int i = 0; i < B; i++)
    cf_graph_value(g, t)[i] = (float)cf_rng_below(&rng, 1000);

  float *loss1 = NULL, *grad1 = NULL, *out1 = NULL;
  for (int rep = 0; rep < 3; rep++) {
    cf_graph_forward(g);
    cf_params_zero_grad(&p);
    cf_graph_backward(g, loss);
    if (rep == 0) {
      loss1 = g_memdup2(cf_graph_value(g, loss), sizeof(float));
      out1 = g_memdup2(cf_graph_value(g, y), (size_t)B * 2 * sizeof(float));
      grad1 = g_memdup2(p.grad, p.total * sizeof(float));
    } else {
      /* bitwise identical (OPENBLAS_NUM_THREADS=1 in the test environment) */
      g_assert_cmpmem(loss1, sizeof(float), cf_graph_value(g, loss), sizeof(float));
      g_assert_cmpmem(out1, (size_t)B * 2 * sizeof(float), cf_graph_value(g, y), (size_t)B * 2 * sizeof(float));
      g_assert_cmpmem(grad1, p.total * sizeof(float), p.grad, p.total * sizeof(float));
    }
    g_assert_cmpuint(cf_graph_arena_floats(g), ==, arena);
    for (int i = 0; i < nodes; i++) {
      g_assert_true(cf_graph_value(g, i) == ptr_v[i]);
      g_assert_true(cf_graph_grad(g, i) == ptr_g[i]);
    }
  }
  /* inputs without requires_grad get no gradient */
  for (int i = 0; i < B * 2; i++)
    g_assert_cmpfloat(cf_graph_grad(g, x)[i], ==, 0.0f);
  g_free(loss1);
  g_free(out1);
  g_free(grad1);
  cf_graph_free(g);
  cf_params_clear(&p);
}

/* Backward only runs what the loss depends on; a side branch keeps zero grads
 * and a loss without trainable inputs is a no-op. */
static void
test_backward_scope(void)
{
  CfGraph *g = cf_graph_new();
  CfNode a = cf_input(g, 2, 3, true);
  CfNode b = cf_input(g, 2, 3, false);
  CfNode side = cf_exp(g, a);                 /* not part of the loss */
  CfNode l1 = cf_sum_all(g, cf_square(g, a)); /* d/da = 2a */
  CfNode l2 = cf_sum_all(g, b);               /* needs no gradient */
  g_assert_cmpint(cf_graph_finalize(g), ==, CF_OK);
  float *av = cf_graph_value(g, a);
  for (int i = 0; i < 6; i++) {
    av[i] = (float)i - 2.5f;
    cf_graph_value(g, b)[i] = 1.0f;
  }
  cf_graph_forward(g);
  g_assert_cmpfloat(cf_graph_value(g, l2)[0], ==, 6.0f);
  cf_graph_backward(g, l1);
  for (int i = 0; i < 6; i++) {
    g_assert_cmpfloat(cf_graph_grad(g, a)[i], ==, 2.0f * av[i]);
    g_assert_cmpfloat(cf_graph_grad(g, side)[i], ==, 0.0f);
  }
  cf_graph_backward(g, l2);
  for (int i = 0; i < 6; i++)
    g_assert_cmpfloat(cf_graph_grad(g, a)[i], ==, 0.0f);
  cf_graph_free(g);
}

/* A NaN step poisons values and gradients, but once the inputs are finite
 * again every fused activation recovers: scratch gradients are overwritten,
 * never scaled by zero. */
static void
test_nan_recovery(void)
{
  static const CfPointwise acts[] = { CF_PW_SILU, CF_PW_RELU, CF_PW_TANH, CF_PW_SOFTPLUS, CF_PW_LEAKY_RELU, CF_PW_SIGMOID };
  for (size_t k = 0; k < G_N_ELEMENTS(acts); k++) {
    CfGraph *g = cf_graph_new();
    CfNode x = cf_input(g, 3, 4, true), w = cf_input(g, 5, 4, true), b = cf_input(g, 1, 5, true);
    CfNode y = cf_linear_act(g, x, w, b, acts[k]);
    CfNode loss = cf_sum_all(g, y);
    g_assert_cmpint(cf_graph_finalize(g), ==, CF_OK);
    CfRng rng;
    cf_rng_seed(&rng, 99);
    fill_uniform(&rng, cf_graph_value(g, x), 12, -1, 1);
    fill_uniform(&rng, cf_graph_value(g, w), 20, -1, 1);
    fill_uniform(&rng, cf_graph_value(g, b), 5, -1, 1);
    cf_graph_forward(g);
    cf_graph_backward(g, loss);
    float *ref = g_memdup2(cf_graph_grad(g, w), 20 * sizeof(float));
    float keep = cf_graph_value(g, x)[0];
    cf_graph_value(g, x)[0] = NAN;
    cf_graph_forward(g);
    cf_graph_backward(g, loss);
    g_assert_true(isnan(cf_graph_value(g, loss)[0]));
    cf_graph_value(g, x)[0] = keep;
    cf_graph_forward(g);
    cf_graph_backward(g, loss);
    g_assert_cmpmem(cf_graph_grad(g, w), 20 * sizeof(float), ref, 20 * sizeof(float));
    g_free(ref);
    cf_graph_free(g);
  }
}

/* ---- time embedding values -------------------------------------------------------- */

static void
test_time_embed_values(void)
{
  static const float ts[] = { 0.0f, 1.0f, 7.5f, 999.0f };
  int dim = 8, half = 4;
  double maxp = 10000.0;
  CfGraph *g = cf_graph_new();
  CfNode t = cf_input(g, 4, 1, false);
  CfNode e = cf_time_embed(g, t, dim, (float)maxp);
  g_assert_cmpint(cf_graph_cols(g, e), ==, dim);
  g_assert_cmpint(cf_graph_finalize(g), ==, CF_OK);
  memcpy(cf_graph_value(g, t), ts, sizeof ts);
  cf_graph_forward(g);
  const float *v = cf_graph_value(g, e);
  for (int r = 0; r < 4; r++)
    for (int j = 0; j < half; j++) {
      double f = pow(maxp, -(double)j / half); /* 1, 0.1, 0.01, 0.001 */
      double arg = ts[r] * f;
      /* float rounding of t * f_j moves the angle by ~1 ulp of it */
      double tol = 1e-6 + 2.4e-7 * fabs(arg);
      g_assert_cmpfloat(fabs(v[r * dim + j] - sin(arg)), <=, tol);
      g_assert_cmpfloat(fabs(v[r * dim + half + j] - cos(arg)), <=, tol);
    }
  /* t = 0: sin part 0, cos part 1 */
  for (int j = 0; j < half; j++) {
    g_assert_cmpfloat(v[j], ==, 0.0f);
    g_assert_cmpfloat(v[half + j], ==, 1.0f);
  }
  cf_graph_free(g);
}

/* Integer times in [0, 1024) come from a table built at finalize: every row,
 * table or not (non-integer, negative, past the table, dim above 128), equals
 * sinf/cosf of the float product bit for bit. */
static void
test_time_embed_table(void)
{
  static const float ts[] = { 0.0f, 1.0f, 2.5f, 500.0f, 999.0f, 1023.0f, 1024.0f, 5000.0f, -3.0f, 17.25f };
  const int nt = G_N_ELEMENTS(ts);
  for (int dim = 32; dim <= 160; dim += 128) { /* 32: table; 160: none */
    int half = dim / 2;
    CfGraph *g = cf_graph_new();
    CfNode t = cf_input(g, nt, 1, false);
    CfNode e = cf_time_embed(g, t, dim, 10000.0f);
    g_assert_cmpint(cf_graph_finalize(g), ==, CF_OK);
    for (int rep = 0; rep < 2; rep++) { /* the second pass runs over the first's values */
      memcpy(cf_graph_value(g, t), ts, sizeof ts);
      cf_graph_forward(g);
      const float *v = cf_graph_value(g, e);
      for (int r = 0; r < nt; r++)
        for (int j = 0; j < half; j++) {
          float f = (float)exp(-log(10000.0) * j / half);
          float arg = ts[r] * f;
          g_assert_cmpfloat(v[r * dim + j], ==, sinf(arg));
          g_assert_cmpfloat(v[r * dim + half + j], ==, cosf(arg));
        }
    }
    cf_graph_free(g);
  }
}

/* ---- fast activations over a wide range ------------------------------------------ */

static void
test_activation_range(void)
{
  int n = 4001;
  CfGraph *g = cf_graph_new();
  CfNode x = cf_input(g, 1, n, false);
  CfNode s = cf_silu(g, x), sg = cf_sigmoid(g, x), sp = cf_softplus(g, x);
  g_assert_cmpint(cf_graph_finalize(g), ==, CF_OK);
  float *xv = cf_graph_value(g, x);
  for (int i = 0; i < n; i++)
    xv[i] = -200.0f + 0.1f * (float)i;
  cf_graph_forward(g);
  for (int i = 0; i < n; i++) {
    double xd = xv[i], sig = 1.0 / (1.0 + exp(-xd));
    g_assert_cmpfloat(fabs(cf_graph_value(g, sg)[i] - sig), <=, 1e-6 * sig + 1e-37);
    g_assert_cmpfloat(fabs(cf_graph_value(g, s)[i] - xd * sig), <=, 1e-6 * fabs(xd * sig) + 1e-35);
    double spv = xd > 0 ? xd + log1p(exp(-xd)) : log1p(exp(xd));
    g_assert_cmpfloat(fabs(cf_graph_value(g, sp)[i] - spv), <=, 1e-6 * spv + 1e-37);
  }
  /* NaN propagates */
  xv[0] = NAN;
  cf_graph_forward(g);
  g_assert_true(isnan(cf_graph_value(g, s)[0]));
  g_assert_true(isnan(cf_graph_value(g, sg)[0]));
  cf_graph_free(g);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  for (size_t i = 0; i < G_N_ELEMENTS(op_cases); i++) {
    char *path = g_strdup_printf("/graph/op/%s", op_cases[i].name);
    g_test_add_data_func(path, &op_cases[i], test_op_case);
    g_free(path);
  }
  g_test_add_func("/graph/matmul-ref", test_matmul_ref);
  g_test_add_func("/graph/params", test_params);
  g_test_add_func("/graph/linear-params", test_linear_params);
  g_test_add_func("/graph/mlp-declare", test_mlp_declare);
  g_test_add_func("/graph/mlp-grad", test_mlp_grad);
  g_test_add_func("/graph/replay", test_replay);
  g_test_add_func("/graph/backward-scope", test_backward_scope);
  g_test_add_func("/graph/nan-recovery", test_nan_recovery);
  g_test_add_func("/graph/time-embed-values", test_time_embed_values);
  g_test_add_func("/graph/time-embed-table", test_time_embed_table);
  g_test_add_func("/graph/activation-range", test_activation_range);
  return g_test_run();
}
