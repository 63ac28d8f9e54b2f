/* Tests for the expression ops (core/ops_math.c): forward values against a
 * double reference, and analytic gradients against central differences of
 * loss = sum(op(inputs) .* W) with fixed random W. Error measure:
 * ||g_analytic - g_numeric|| / ||g_numeric|| over each input's gradient. */
#include <glib.h>
#include <math.h>
#include <string.h>

#include "graph.h"

typedef struct {
  const char *name;
  int nin;
  int shape[2][2];
  float lo, hi, min_abs; /* inputs uniform in [lo, hi] with |x| >= min_abs */
  unsigned nograd;       /* bit k: input k built with requires_grad = false */
  int kind;              /* which op */
  float p;               /* exponent of pow */
  double h, tol;
} Case;

enum { K_DIV, K_SIN, K_COS, K_POW, K_MUL_COL, K_MUL_ROW };

static CfNode
build(CfGraph *g, const CfNode *x, const Case *c)
{
  switch (c->kind) {
  case K_DIV: return cf_div(g, x[0], x[1]);
  case K_SIN: return cf_sin(g, x[0]);
  case K_COS: return cf_cos(g, x[0]);
  case K_POW: return cf_pow_const(g, x[0], c->p);
  case K_MUL_COL: return cf_mul_col(g, x[0], x[1]);
  case K_MUL_ROW: return cf_mul_row(g, x[0], x[1]);
  }
  g_assert_not_reached();
}

/* Reference output element (r, j) in double. */
static double
reference(const Case *c, float *const *in, int r, int j)
{
  int C = c->shape[0][1];
  double a = in[0][r * C + j];
  switch (c->kind) {
  case K_DIV: return a / in[1][r * C + j];
  case K_SIN: return sin(a);
  case K_COS: return cos(a);
  case K_POW: return pow(a, c->p);
  case K_MUL_COL: return a * in[1][r];
  case K_MUL_ROW: return a * in[1][j];
  }
  g_assert_not_reached();
}

static double
weighted_loss(CfGraph *g, CfNode out, const float *w, size_t n)
{
  cf_graph_forward(g);
  const float *y = cf_graph_value(g, out);
  double s = 0.0;
  for (size_t i = 0; i < n; i++)
    s += (double)y[i] * w[i];
  return s;
}

static const Case cases[] = {
  { "div", 2, { { 3, 4 }, { 3, 4 } }, -2, 2, 0.5f, 0, K_DIV, 0, 1e-3, 5e-4 },
  { "div_a_nograd", 2, { { 3, 4 }, { 3, 4 } }, -2, 2, 0.5f, 1u, K_DIV, 0, 1e-3, 5e-4 },
  { "div_b_nograd", 2, { { 3, 4 }, { 3, 4 } }, -2, 2, 0.5f, 2u, K_DIV, 0, 1e-3, 5e-4 },
  { "sin", 1, { { 3, 4 } }, -3, 3, 0, 0, K_SIN, 0, 1e-3, 5e-4 },
  { "cos", 1, { { 3, 4 } }, -3, 3, 0, 0, K_COS, 0, 1e-3, 5e-4 },
  /* integer exponents on negative bases */
  { "pow_3", 1, { { 3, 4 } }, -2, 2, 0.2f, 0, K_POW, 3.0f, 1e-3, 5e-4 },
  { "pow_2", 1, { { 3, 4 } }, -2, 2, 0.2f, 0, K_POW, 2.0f, 1e-3, 5e-4 },
  { "pow_m2", 1, { { 3, 4 } }, -2, 2, 0.5f, 0, K_POW, -2.0f, 1e-4, 5e-4 },
  { "pow_m1", 1, { { 3, 4 } }, -2, 2, 0.5f, 0, K_POW, -1.0f, 1e-4, 5e-4 },
  { "pow_1", 1, { { 3, 4 } }, -2, 2, 0, 0, K_POW, 1.0f, 1e-3, 5e-4 },
  /* fractional exponents need a > 0 */
  { "pow_half", 1, { { 3, 4 } }, 0.3f, 3, 0, 0, K_POW, 0.5f, 1e-4, 5e-4 },
  { "pow_2.5", 1, { { 3, 4 } }, 0.3f, 3, 0, 0, K_POW, 2.5f, 1e-4, 5e-4 },
  { "pow_m1.5", 1, { { 3, 4 } }, 0.5f, 3, 0, 0, K_POW, -1.5f, 1e-4, 5e-4 },
  { "mul_col", 2, { { 3, 4 }, { 3, 1 } }, -2, 2, 0, 0, K_MUL_COL, 0, 1e-3, 5e-4 },
  { "mul_col_c_nograd", 2, { { 3, 4 }, { 3, 1 } }, -2, 2, 0, 2u, K_MUL_COL, 0, 1e-3, 5e-4 },
  { "mul_col_a_nograd", 2, { { 3, 4 }, { 3, 1 } }, -2, 2, 0, 1u, K_MUL_COL, 0, 1e-3, 5e-4 },
  { "mul_row", 2, { { 3, 4 }, { 1, 4 } }, -2, 2, 0, 0, K_MUL_ROW, 0, 1e-3, 5e-4 },
  { "mul_row_v_nograd", 2, { { 3, 4 }, { 1, 4 } }, -2, 2, 0, 2u, K_MUL_ROW, 0, 1e-3, 5e-4 },
};

static void
test_case(gconstpointer data)
{
  const Case *c = data;
  CfRng rng;
  cf_rng_seed(&rng, 99);
  CfGraph *g = cf_graph_new();
  CfNode x[2];
  for (int k = 0; k < c->nin; k++)
    x[k] = cf_input(g, c->shape[k][0], c->shape[k][1], !(c->nograd & (1u << k)));
  CfNode out = build(g, x, c);
  int R = cf_graph_rows(g, out), C = cf_graph_cols(g, out);
  g_assert_cmpint(R, ==, c->shape[0][0]);
  g_assert_cmpint(C, ==, c->shape[0][1]);
  CfNode w = cf_input(g, R, C, false);
  CfNode loss = cf_sum_all(g, cf_mul(g, out, w));
  g_assert_cmpint(cf_graph_finalize(g), ==, CF_OK);

  float *in[2] = { NULL, NULL };
  size_t nin[2] = { 0, 0 };
  for (int k = 0; k < c->nin; k++) {
    in[k] = cf_graph_value(g, x[k]);
    nin[k] = (size_t)c->shape[k][0] * (size_t)c->shape[k][1];
    for (size_t i = 0; i < nin[k]; i++)
      do
        in[k][i] = c->lo + (c->hi - c->lo) * (float)cf_rng_uniform(&rng);
      while (fabsf(in[k][i]) < c->min_abs);
  }
  size_t nout = (size_t)R * C;
  float *wv = cf_graph_value(g, w);
  for (size_t i = 0; i < nout; i++)
    wv[i] = (float)(2.0 * cf_rng_uniform(&rng) - 1.0);

  cf_graph_forward(g);
  const float *y = cf_graph_value(g, out);
  for (int r = 0; r < R; r++)
    for (int j = 0; j < C; j++) {
      double ref = reference(c, in, r, j);
      if (!(fabs(y[r * C + j] - ref) <= 4e-7 * (1.0 + fabs(ref))))
        g_error("%s: forward[%d,%d] = %.9g, reference %.9g", c->name, r, j, y[r * C + j], ref);
    }

  cf_graph_backward(g, loss);
  for (int k = 0; k < c->nin; k++) {
    const float *gr = cf_graph_grad(g, x[k]);
    if (c->nograd & (1u << k)) {
      for (size_t i = 0; i < nin[k]; i++)
        g_assert_cmpfloat(gr[i], ==, 0.0f);
      continue;
    }
    float *ga = g_memdup2(gr, nin[k] * sizeof(float));
    double d2 = 0.0, s2 = 0.0;
    for (size_t i = 0; i < nin[k]; i++) {
      float v = in[k][i];
      in[k][i] = (float)(v + c->h);
      double lp = weighted_loss(g, out, wv, nout);
      in[k][i] = (float)(v - c->h);
      double lm = weighted_loss(g, out, wv, nout);
      in[k][i] = v;
      double num = (lp - lm) / ((double)(float)(v + c->h) - (double)(float)(v - c->h));
      d2 += (ga[i] - num) * (ga[i] - num);
      s2 += num * num;
    }
    double err = s2 > 0 ? sqrt(d2 / s2) : sqrt(d2);
    if (g_test_verbose())
      g_test_message("%s: d/din%d relative error %.3g", c->name, k, err);
    g_assert_cmpfloat(err, <, c->tol);
    g_free(ga);
  }
  cf_graph_free(g);
}

/* Powers with negative bases and edge cases, value and gradient exactly. */
static void
test_pow_edges(void)
{
  CfGraph *g = cf_graph_new();
  CfNode a = cf_input(g, 1, 6, true);
  CfNode y3 = cf_pow_const(g, a, 3.0f), ym2 = cf_pow_const(g, a, -2.0f), yh = cf_pow_const(g, a, 0.5f);
  CfNode y0 = cf_pow_const(g, a, 0.0f);
  CfNode loss = cf_sum_all(g, y0);
  g_assert_cmpint(cf_graph_finalize(g), ==, CF_OK);
  float *av = cf_graph_value(g, a);
  const float vals[6] = { -2.0f, -1.0f, 0.0f, 0.5f, 2.0f, -0.5f };
  memcpy(av, vals, sizeof vals);
  cf_graph_forward(g);
  const float *v3 = cf_graph_value(g, y3), *vm2 = cf_graph_value(g, ym2), *vh = cf_graph_value(g, yh);
  const float *v0 = cf_graph_value(g, y0);
  g_assert_cmpfloat(v3[0], ==, -8.0f);
  g_assert_cmpfloat(v3[1], ==, -1.0f);
  g_assert_cmpfloat(v3[5], ==, -0.125f);
  g_assert_cmpfloat(vm2[0], ==, 0.25f);
  g_assert_cmpfloat(vm2[5], ==, 4.0f);
  g_assert_true(isinf(vm2[2]));
  g_assert_true(isnan(vh[0])); /* fractional power of a negative base */
  g_assert_cmpfloat(vh[4], ==, sqrtf(2.0f));
  for (int i = 0; i < 6; i++)
    g_assert_cmpfloat(v0[i], ==, 1.0f); /* 0^0 = 1 as powf */
  /* p = 0: zero gradient everywhere, also at a = 0 (no 0 * inf) */
  cf_graph_backward(g, loss);
  const float *ga = cf_graph_grad(g, a);
  for (int i = 0; i < 6; i++)
    g_assert_cmpfloat(ga[i], ==, 0.0f);
  cf_graph_free(g);
}

/* Division by zero follows IEEE: +-inf, and 0/0 is NaN. */
static void
test_div_by_zero(void)
{
  CfGraph *g = cf_graph_new();
  CfNode a = cf_input(g, 1, 3, false), b = cf_input(g, 1, 3, false);
  CfNode y = cf_div(g, a, b);
  g_assert_cmpint(cf_graph_finalize(g), ==, CF_OK);
  float *av = cf_graph_value(g, a), *bv = cf_graph_value(g, b);
  av[0] = 1.0f, av[1] = -1.0f, av[2] = 0.0f;
  bv[0] = bv[1] = bv[2] = 0.0f;
  cf_graph_forward(g);
  const float *yv = cf_graph_value(g, y);
  g_assert_true(isinf(yv[0]) && yv[0] > 0);
  g_assert_true(isinf(yv[1]) && yv[1] < 0);
  g_assert_true(isnan(yv[2]));
  cf_graph_free(g);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
    char *path = g_strdup_printf("/ops_math/grad/%s", cases[i].name);
    g_test_add_data_func(path, &cases[i], test_case);
    g_free(path);
  }
  g_test_add_func("/ops_math/pow_edges", test_pow_edges);
  g_test_add_func("/ops_math/div_by_zero", test_div_by_zero);
  return g_test_run();
}
