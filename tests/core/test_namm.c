/* Tests for core/namm (neural approximate mirror maps): the explicit ICNN
 * gradient against finite differences of R, the full loss gradient against
 * finite differences, non-negativity after steps, monotonicity of g, the EMA
 * recurrence, NaN handling, inference in chunks, and a short training run on
 * the unit circle (constraint from core/expr). */
#include <glib.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "expr.h"
#include "namm.h"

static CfNammConfig
small_config(int dim)
{
  CfNammConfig c = cf_namm_default_config(dim);
  c.icnn_width = 8;
  c.icnn_depth = 3;
  c.inv_width = 16;
  c.inv_depth = 2;
  return c;
}

static void
init_model(CfNamm *m, const CfNammConfig *c, uint64_t seed)
{
  CfError err;
  if (cf_namm_init(m, c, &err) != CF_OK)
    g_error("cf_namm_init: %s", err.msg);
  CfRng rng;
  cf_rng_seed(&rng, seed);
  cf_namm_randomize(m, &rng);
}

/* Fills every parameter with U(lo, hi) scaled values except that the
 * non-negative ones get U(0, nn): a generic point for gradient checks
 * (biases and the inverse map's last layer are non-zero). */
static void
perturb_params(CfNamm *m, CfRng *rng, float scale, float nn)
{
  for (int k = 0; k < m->params.count; k++) {
    const CfParamInfo *pi = &m->params.info[k];
    float *v = cf_params_value(&m->params, k);
    bool nonneg = false;
    for (int j = 0; j < m->n_nonneg; j++)
      nonneg = nonneg || m->nonneg[j] == k;
    for (int i = 0; i < pi->rows * pi->cols; i++)
      v[i] = nonneg ? nn * (float)cf_rng_uniform(rng) : scale * (float)(2.0 * cf_rng_uniform(rng) - 1.0);
  }
}

static float *
ring_points(CfRng *rng, int n)
{
  float *x = g_new(float, 2 * n);
  for (int i = 0; i < n; i++) {
    double t = 2.0 * M_PI * cf_rng_uniform(rng);
    x[2 * i] = (float)cos(t);
    x[2 * i + 1] = (float)sin(t);
  }
  return x;
}

static void
parse_ring(CfExprSet *s)
{
  CfError err;
  const char *t = "x0^2 + x1^2 = 1";
  g_assert_cmpint(cf_expr_parse(s, t, strlen(t), 2, &err), ==, CF_OK);
}

/* ---- gradient checks --------------------------------------------------------------- */

/* grad_x R built as forward ops against central differences of R. */
static void
test_potential_grad_fd(void)
{
  for (int depth = 1; depth <= 3; depth++) {
    CfNammConfig c = small_config(3);
    c.icnn_depth = depth;
    CfNamm m;
    init_model(&m, &c, 10 + depth);
    CfRng rng;
    cf_rng_seed(&rng, 20);
    perturb_params(&m, &rng, 0.8f, 0.6f);
    enum { B = 5 };
    CfGraph *g = cf_graph_new();
    CfNode x = cf_input(g, B, 3, false), R = -1;
    CfNode gr = cf_namm_build_potential_grad(g, &m.params, &m.net, x, &R);
    g_assert_cmpint(cf_graph_finalize(g), ==, CF_OK);
    float *xv = cf_graph_value(g, x);
    for (int i = 0; i < B * 3; i++)
      xv[i] = (float)(3.0 * cf_rng_uniform(&rng) - 1.5);
    cf_graph_forward(g);
    float an[B * 3];
    memcpy(an, cf_graph_value(g, gr), sizeof an);
    double d2 = 0, s2 = 0;
    for (int i = 0; i < B * 3; i++) {
      const double h = 1e-2;
      float v = xv[i];
      xv[i] = (float)(v + h);
      cf_graph_forward(g);
      double rp = cf_graph_value(g, R)[i / 3];
      xv[i] = (float)(v - h);
      cf_graph_forward(g);
      double rm = cf_graph_value(g, R)[i / 3];
      xv[i] = v;
      double num = (rp - rm) / ((double)(float)(v + h) - (double)(float)(v - h));
      d2 += (an[i] - num) * (an[i] - num);
      s2 += num * num;
    }
    double err = sqrt(d2 / s2);
    if (g_test_verbose())
      g_test_message("depth %d: grad R relative error %.3g (|grad| %.3g)", depth, err, sqrt(s2));
    g_assert_cmpfloat(s2, >, 1e-2); /* a non-trivial gradient */
    g_assert_cmpfloat(err, <, 2e-3);
    cf_graph_free(g);
    cf_namm_clear(&m);
  }
}

/* d(loss)/d(parameters) from the training graph against central differences
 * of the loss, on a sample of entries of every parameter tensor. */
static void
test_loss_grad_fd(void)
{
  /* the ring's equation, a line, and 4 x 4 images (convolutional inverse
   * map) with the sum of pixels fixed */
  static const char *const texts[] = { "x0^2 + x1^2 = 1", NULL, NULL };
  for (int t = 0; t < 3; t++) {
    const int dim = t == 2 ? 16 : 2;
    CfNammConfig c = small_config(dim);
    if (t == 2) {
      c.img_h = c.img_w = 4;
      c.inv_width = 3;
      c.inv_depth = 1;
    }
    c.lambda_reg = 0.3f; /* make every term matter */
    c.lambda_constr = 0.7f;
    CfNamm m;
    init_model(&m, &c, 30 + t);
    CfRng rng;
    cf_rng_seed(&rng, 31);
    perturb_params(&m, &rng, 0.5f, 0.5f);
    CfExprSet s;
    cf_expr_set_init(&s);
    CfConstraint lin;
    cf_constraint_init(&lin);
    CfNammConstraint con = { 0 };
    CfError err;
    if (texts[t]) {
      g_assert_cmpint(cf_expr_parse(&s, texts[t], strlen(texts[t]), 2, &err), ==, CF_OK);
      con.expr = &s;
    } else {
      double A[16] = { 1.0, -0.5 }, b[1] = { 0.3 };
      for (int k = 2; t == 2 && k < 16; k++)
        A[k] = A[0] = 1.0;
      g_assert_cmpint(cf_constraint_set(&lin, 1, dim, A, b, &err), ==, CF_OK);
      con.lin = &lin;
    }
    enum { B = 6 };
    g_assert_cmpint(cf_namm_prepare_train(&m, B, &con, &err), ==, CF_OK);
    CfGraph *g = m.train;
    float *xv = cf_graph_value(g, m.in_x), *nv = cf_graph_value(g, m.in_noise);
    for (int i = 0; i < B * dim; i++) {
      xv[i] = (float)(2.0 * cf_rng_uniform(&rng) - 1.0);
      nv[i] = (float)(0.1 * cf_rng_normal(&rng));
    }
    cf_params_zero_grad(&m.params);
    cf_graph_forward(g);
    cf_graph_backward(g, m.loss);
    float *grad = g_memdup2(m.params.grad, m.params.total * sizeof(float));
    double d2 = 0, s2 = 0;
    int checked = 0;
    for (int k = 0; k < m.params.count; k++) {
      const CfParamInfo *pi = &m.params.info[k];
      int n = pi->rows * pi->cols;
      for (int r = 0; r < 6 && r < n; r++) {
        size_t i = pi->offset + cf_rng_below(&rng, (uint64_t)n);
        float v = m.params.value[i];
        const double h = 2e-3;
        m.params.value[i] = (float)(v + h);
        cf_graph_forward(g);
        double lp = cf_graph_value(g, m.loss)[0];
        m.params.value[i] = (float)(v - h);
        cf_graph_forward(g);
        double lm = cf_graph_value(g, m.loss)[0];
        m.params.value[i] = v;
        double num = (lp - lm) / ((double)(float)(v + h) - (double)(float)(v - h));
        d2 += (grad[i] - num) * (grad[i] - num);
        s2 += num * num;
        checked++;
      }
    }
    double rel = sqrt(d2 / s2);
    if (g_test_verbose())
      g_test_message("%s: %d entries, loss gradient relative error %.3g",
                     texts[t] ? "equation" : t == 2 ? "images, convolutional inverse" : "linear", checked, rel);
    g_assert_cmpfloat(rel, <, 1e-2);
    g_free(grad);
    cf_namm_clear(&m);
    cf_expr_set_clear(&s);
    cf_constraint_clear(&lin);
  }
}

/* ---- structure ----------------------------------------------------------------------- */

static bool
is_nonneg_param(const CfNamm *m, int k)
{
  for (int j = 0; j < m->n_nonneg; j++)
    if (m->nonneg[j] == k)
      return true;
  return false;
}

/* With a large learning rate the updates push weights below zero; the
 * projection keeps W_l and w_out >= 0 (some end exactly at 0), the EMA too. */
static void
test_nonneg(void)
{
  CfNammConfig c = small_config(2);
  c.lr = 2e-2f;
  c.batch = 16;
  c.lambda_reg = 1.0f; /* pushes grad R, hence w_out and W, towards 0 */
  CfNamm m;
  init_model(&m, &c, 40);
  CfExprSet s;
  parse_ring(&s);
  CfNammConstraint con = { .expr = &s };
  CfError err;
  g_assert_cmpint(cf_namm_prepare_train(&m, c.batch, &con, &err), ==, CF_OK);
  CfRng rng;
  cf_rng_seed(&rng, 41);
  int zeros = 0;
  for (int step = 0; step < 100; step++) {
    float *x = ring_points(&rng, c.batch);
    g_assert_cmpint(cf_namm_train_step(&m, x, &rng, NULL, &err), ==, CF_OK);
    g_free(x);
    for (int k = 0; k < m.params.count; k++) {
      if (!is_nonneg_param(&m, k))
        continue;
      const CfParamInfo *pi = &m.params.info[k];
      const float *v = cf_params_value(&m.params, k), *e = m.ema + pi->offset;
      for (int i = 0; i < pi->rows * pi->cols; i++) {
        g_assert_true(v[i] >= 0.0f && !signbit(v[i]));
        g_assert_true(e[i] >= 0.0f);
        zeros += v[i] == 0.0f;
      }
    }
  }
  g_assert_cmpint(m.n_nonneg, ==, c.icnn_depth); /* W_1, W_2 and w_out */
  if (g_test_verbose())
    g_test_message("%d clamped entries over 100 steps", zeros);
  g_assert_cmpint(zeros, >, 0); /* the projection was active */
  cf_namm_clear(&m);
  cf_expr_set_clear(&s);
}

/* Counts pairs with (g(x) - g(y)) . (x - y) < -tol |x - y|^2. */
static int
monotone_violations(CfNamm *m, CfRng *rng, int pairs, double *min_ratio)
{
  CfNammEval e;
  CfError err;
  g_assert_cmpint(cf_namm_eval_init(&e, m, 64, &err), ==, CF_OK);
  const int d = m->cfg.dim;
  float *x = g_new(float, 2 * pairs * d), *gx = g_new(float, 2 * pairs * d);
  for (int i = 0; i < 2 * pairs * d; i++)
    x[i] = (float)(4.0 * cf_rng_uniform(rng) - 2.0);
  cf_namm_eval_forward(&e, x, 2 * pairs, gx);
  int bad = 0;
  *min_ratio = INFINITY;
  for (int p = 0; p < pairs; p++) {
    const float *a = x + (size_t)(2 * p) * d, *b = a + d, *ga = gx + (size_t)(2 * p) * d, *gb = ga + d;
    double dot = 0, n2 = 0;
    for (int k = 0; k < d; k++) {
      dot += ((double)ga[k] - gb[k]) * ((double)a[k] - b[k]);
      n2 += ((double)a[k] - b[k]) * ((double)a[k] - b[k]);
    }
    double ratio = dot / n2;
    if (ratio < *min_ratio)
      *min_ratio = ratio;
    bad += ratio < -1e-4;
  }
  g_free(x);
  g_free(gx);
  cf_namm_eval_clear(&e);
  return bad;
}

/* g is the gradient of a convex function: monotone for every alpha in
 * [0, 1), and alpha-strongly monotone. A non-convex R (negative W) is caught. */
static void
test_monotone(void)
{
  static const float alphas[] = { 0.0f, 0.5f, 0.9f };
  CfRng rng;
  cf_rng_seed(&rng, 50);
  for (size_t a = 0; a < G_N_ELEMENTS(alphas); a++) {
    CfNammConfig c = small_config(3);
    c.alpha = alphas[a];
    CfNamm m;
    init_model(&m, &c, 51 + a);
    perturb_params(&m, &rng, 1.5f, 1.5f);
    double min_ratio;
    int bad = monotone_violations(&m, &rng, 3000, &min_ratio);
    if (g_test_verbose())
      g_test_message("alpha %.1f: min (g(x)-g(y)).(x-y)/|x-y|^2 = %.4g", (double)alphas[a], min_ratio);
    g_assert_cmpint(bad, ==, 0);
    g_assert_cmpfloat(min_ratio, >=, alphas[a] - 1e-3); /* strong monotonicity */
    cf_namm_clear(&m);
  }
  /* control: without the sign constraint (w_out < 0: R concave) the check
   * finds violations */
  CfNammConfig c = small_config(3);
  c.alpha = 0.0f;
  CfNamm m;
  init_model(&m, &c, 59);
  perturb_params(&m, &rng, 1.5f, 1.5f);
  float *w = cf_params_value(&m.params, m.net.w_out);
  for (int i = 0; i < c.icnn_width; i++)
    w[i] = -w[i] - 0.5f;
  double min_ratio;
  int bad = monotone_violations(&m, &rng, 3000, &min_ratio);
  if (g_test_verbose())
    g_test_message("negative w_out: %d violations, min ratio %.4g", bad, min_ratio);
  g_assert_cmpint(bad, >, 0);
  cf_namm_clear(&m);
}

/* The EMA follows ema = r ema + (1 - r) params after each step (from the
 * weights at randomisation), not the last weights. */
static void
test_ema(void)
{
  CfNammConfig c = small_config(2);
  c.lr = 1e-2f;
  c.ema_rate = 0.9f;
  CfNamm m;
  init_model(&m, &c, 60);
  CfExprSet s;
  parse_ring(&s);
  CfNammConstraint con = { .expr = &s };
  CfError err;
  g_assert_cmpint(cf_namm_prepare_train(&m, c.batch, &con, &err), ==, CF_OK);
  size_t n = m.params.total;
  float *ref = g_memdup2(m.params.value, n * sizeof(float));
  g_assert_cmpint(memcmp(ref, m.ema, n * sizeof(float)), ==, 0);
  CfRng rng;
  cf_rng_seed(&rng, 61);
  for (int step = 0; step < 20; step++) {
    float *x = ring_points(&rng, c.batch);
    g_assert_cmpint(cf_namm_train_step(&m, x, &rng, NULL, &err), ==, CF_OK);
    g_free(x);
    for (size_t i = 0; i < n; i++)
      ref[i] = 0.9f * ref[i] + (1.0f - 0.9f) * m.params.value[i];
  }
  double diff = 0, lag = 0;
  for (size_t i = 0; i < n; i++) {
    diff = fmax(diff, fabs((double)ref[i] - m.ema[i]));
    lag = fmax(lag, fabs((double)m.params.value[i] - m.ema[i]));
  }
  g_assert_cmpfloat(diff, <=, 1e-6);
  g_assert_cmpfloat(lag, >, 1e-3); /* an average, not the last weights */
  g_assert_cmpint(m.step, ==, 20);
  g_free(ref);
  cf_namm_clear(&m);
  cf_expr_set_clear(&s);
}

/* A NaN in the batch: the step reports it and changes nothing; training then
 * continues normally. */
static void
test_nan(void)
{
  CfNammConfig c = small_config(2);
  CfNamm m;
  init_model(&m, &c, 70);
  CfExprSet s;
  parse_ring(&s);
  CfNammConstraint con = { .expr = &s };
  CfError err;
  g_assert_cmpint(cf_namm_prepare_train(&m, c.batch, &con, &err), ==, CF_OK);
  CfRng rng;
  cf_rng_seed(&rng, 71);
  float *x = ring_points(&rng, c.batch);
  for (int step = 0; step < 5; step++)
    g_assert_cmpint(cf_namm_train_step(&m, x, &rng, NULL, &err), ==, CF_OK);
  size_t n = m.params.total;
  float *p0 = g_memdup2(m.params.value, n * sizeof(float)), *e0 = g_memdup2(m.ema, n * sizeof(float));
  float *m0 = g_memdup2(m.adam.m, n * sizeof(float));
  long t0 = m.adam.t;
  x[3] = NAN;
  CfNammLosses l;
  g_assert_cmpint(cf_namm_train_step(&m, x, &rng, &l, &err), ==, CF_ERR_NUMERIC);
  g_assert_nonnull(strstr(err.msg, "step 6: the loss is not finite"));
  g_assert_true(isnan(l.total));
  g_assert_cmpint(memcmp(p0, m.params.value, n * sizeof(float)), ==, 0);
  g_assert_cmpint(memcmp(e0, m.ema, n * sizeof(float)), ==, 0);
  g_assert_cmpint(memcmp(m0, m.adam.m, n * sizeof(float)), ==, 0);
  g_assert_cmpint(m.adam.t, ==, t0);
  g_assert_cmpint(m.step, ==, 5);
  /* an infinite input gives inf/NaN too */
  x[3] = INFINITY;
  g_assert_cmpint(cf_namm_train_step(&m, x, &rng, &l, &err), ==, CF_ERR_NUMERIC);
  g_assert_cmpint(memcmp(p0, m.params.value, n * sizeof(float)), ==, 0);
  x[3] = 0.5f;
  g_assert_cmpint(cf_namm_train_step(&m, x, &rng, &l, &err), ==, CF_OK);
  g_assert_true(isfinite(l.total) && isfinite(l.grad_norm));
  g_assert_cmpint(m.step, ==, 6);
  g_assert_true(cf_all_finite(m.params.value, n));
  g_free(p0);
  g_free(e0);
  g_free(m0);
  g_free(x);
  cf_namm_clear(&m);
  cf_expr_set_clear(&s);
}

/* Chunked inference equals one big chunk; input and output may alias. */
static void
test_eval_chunks(void)
{
  CfNammConfig c = small_config(3);
  CfNamm m;
  init_model(&m, &c, 80);
  CfRng rng;
  cf_rng_seed(&rng, 81);
  perturb_params(&m, &rng, 0.5f, 0.5f);
  enum { B = 23 };
  float x[B * 3], y1[B * 3], y2[B * 3], f1[B * 3], f2[B * 3];
  for (int i = 0; i < B * 3; i++)
    x[i] = (float)cf_rng_normal(&rng);
  CfNammEval e1, e2;
  CfError err;
  g_assert_cmpint(cf_namm_eval_init(&e1, &m, 5, &err), ==, CF_OK);
  g_assert_cmpint(cf_namm_eval_init(&e2, &m, 64, &err), ==, CF_OK);
  cf_namm_eval_forward(&e1, x, B, y1);
  cf_namm_eval_forward(&e2, x, B, y2);
  cf_namm_eval_inverse(&e1, x, B, f1);
  memcpy(f2, x, sizeof x);
  cf_namm_eval_inverse(&e2, f2, B, f2); /* in place */
  for (int i = 0; i < B * 3; i++) {
    g_assert_cmpfloat(fabsf(y1[i] - y2[i]), <=, 1e-5f * (1 + fabsf(y1[i])));
    g_assert_cmpfloat(fabsf(f1[i] - f2[i]), <=, 1e-5f * (1 + fabsf(f1[i])));
  }
  /* loading another arena changes the maps; loading the model's restores them */
  float *zero = g_new0(float, m.params.total);
  cf_namm_eval_load(&e1, zero);
  cf_namm_eval_inverse(&e1, x, B, f1);
  for (int i = 0; i < B * 3; i++)
    g_assert_cmpfloat(f1[i], ==, x[i]); /* f = identity + MLP(0 weights) = identity */
  g_free(zero);
  cf_namm_eval_clear(&e1);
  cf_namm_eval_clear(&e2);
  cf_namm_clear(&m);
}

static void
test_config_check(void)
{
  CfError err;
  CfNammConfig c = cf_namm_default_config(2);
  g_assert_cmpint(cf_namm_config_check(&c, &err), ==, CF_OK);
  g_assert_cmpfloat(c.alpha, ==, 0.9f);
  g_assert_cmpfloat(c.lambda_reg, ==, 1e-3f);
  g_assert_cmpfloat(c.sigma_max, ==, 0.1f);
  g_assert_cmpfloat(c.lr, ==, 2e-4f);
  g_assert_cmpfloat(c.beta1, ==, 0.5f);
  g_assert_cmpint(c.batch, ==, 16);
  c.alpha = 1.0f;
  g_assert_cmpint(cf_namm_config_check(&c, &err), ==, CF_ERR_INVALID);
  g_assert_nonnull(strstr(err.msg, "alpha 1 is outside [0, 1)"));
  c = cf_namm_default_config(2);
  c.icnn_depth = CF_NAMM_MAX_DEPTH + 1;
  CfNamm m;
  g_assert_cmpint(cf_namm_init(&m, &c, &err), ==, CF_ERR_INVALID);
  g_assert_nonnull(strstr(err.msg, "ICNN depth 9"));
  c = cf_namm_default_config(2);
  c.lambda_constr = NAN;
  g_assert_cmpint(cf_namm_config_check(&c, &err), ==, CF_ERR_INVALID);
  /* constraints: exactly one, of the right dimension */
  c = small_config(3);
  init_model(&m, &c, 1);
  CfExprSet s;
  parse_ring(&s);
  CfNammConstraint none = { 0 }, ring = { .expr = &s };
  g_assert_cmpint(cf_namm_prepare_train(&m, 4, &none, &err), ==, CF_ERR_INVALID);
  g_assert_cmpint(cf_namm_prepare_train(&m, 4, &ring, &err), ==, CF_ERR_SHAPE);
  g_assert_nonnull(strstr(err.msg, "equations are over 2 coordinates, the data have 3"));
  cf_namm_clear(&m);
  cf_expr_set_clear(&s);
}

/* ---- training on the unit circle ------------------------------------------------------ */

static double
median(double *v, int n)
{
  for (int i = 1; i < n; i++) /* insertion sort: n is small */
    for (int j = i; j > 0 && v[j - 1] > v[j]; j--) {
      double t = v[j];
      v[j] = v[j - 1];
      v[j - 1] = t;
    }
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Median distance of f(g(x) + sigma eps), sigma ~ U(0, sigma_max), over held-out x. */
static double
noisy_median_distance(CfNammEval *e, const CfNammConstraint *con, const float *x, int n, float sigma_max,
                      uint64_t seed)
{
  float *y = g_new(float, 2 * n);
  double *d = g_new(double, n);
  CfRng rng;
  cf_rng_seed(&rng, seed);
  cf_namm_eval_forward(e, x, n, y);
  for (int i = 0; i < n; i++) {
    float s = sigma_max * (float)cf_rng_uniform(&rng);
    for (int k = 0; k < 2; k++)
      y[2 * i + k] += s * (float)cf_rng_normal(&rng);
  }
  cf_namm_eval_inverse(e, y, n, y);
  CfError err;
  g_assert_cmpint(cf_namm_constraint_distance(con, 2, y, n, d, &err), ==, CF_OK);
  double med = median(d, n);
  g_free(y);
  g_free(d);
  return med;
}

static void
test_ring_training(void)
{
  CfNammConfig c = cf_namm_default_config(2);
  c.batch = 64;
  c.lr = 1e-3f;
  c.ema_rate = 0.99f; /* a short run: average over the last ~100 steps */
  const int steps = 2500; /* the constraint term drops after a plateau near 0.08 (steps 300..1500) */
  CfNamm m;
  init_model(&m, &c, 90);
  CfExprSet s;
  parse_ring(&s);
  CfNammConstraint con = { .expr = &s };
  CfError err;
  g_assert_cmpint(cf_namm_prepare_train(&m, c.batch, &con, &err), ==, CF_OK);
  CfRng rng;
  cf_rng_seed(&rng, 91);
  const int n_test = 1000;
  float *held = ring_points(&rng, n_test);
  CfNammEval e;
  g_assert_cmpint(cf_namm_eval_init(&e, &m, 256, &err), ==, CF_OK);
  double d0 = noisy_median_distance(&e, &con, held, n_test, c.sigma_max, 7);
  double cyc0 = cf_namm_eval_cycle_error(&e, held, n_test, NULL);

  float *x = g_new(float, 2 * c.batch);
  CfNammLosses first = { 0 }, l = { 0 };
  double t0 = g_get_monotonic_time() / 1e6;
  for (int step = 0; step < steps; step++) {
    for (int i = 0; i < c.batch; i++) {
      double t = 2.0 * M_PI * cf_rng_uniform(&rng);
      x[2 * i] = (float)cos(t);
      x[2 * i + 1] = (float)sin(t);
    }
    if (cf_namm_train_step(&m, x, &rng, &l, &err) != CF_OK)
      g_error("step %d: %s", step, err.msg);
    if (step == 0)
      first = l;
    if (g_test_verbose() && (step % 500 == 0 || step == steps - 1))
      g_test_message("step %5d: loss %.4f cyc %.4f (fwd %.4f inv %.4f) constr %.4f reg %.4f |grad| %.3g", step,
                     (double)l.total, (double)l.cyc, (double)l.cyc_fwd, (double)l.cyc_inv, (double)l.constr,
                     (double)l.reg, l.grad_norm);
  }
  double dt = g_get_monotonic_time() / 1e6 - t0;
  g_assert_cmpfloat(l.total, <, first.total);

  cf_namm_eval_load(&e, m.params.value);
  double d1 = noisy_median_distance(&e, &con, held, n_test, c.sigma_max, 7);
  double cyc1 = cf_namm_eval_cycle_error(&e, held, n_test, NULL);
  cf_namm_eval_load(&e, m.ema);
  double d1e = noisy_median_distance(&e, &con, held, n_test, c.sigma_max, 7);
  double cyc1e = cf_namm_eval_cycle_error(&e, held, n_test, NULL);
  g_test_message("ring, %d steps (%.0f steps/s, batch %d): median distance of f(g(x) + sigma eps) %.4f -> %.4f "
                 "(EMA %.4f), cycle error mean|f(g(x)) - x| %.4f -> %.4f (EMA %.4f)",
                 steps, steps / dt, c.batch, d0, d1, d1e, cyc0, cyc1, cyc1e);
  g_assert_cmpfloat(d1, <, d0 / 5.0);
  g_assert_cmpfloat(d1e, <, d0 / 3.0);
  g_assert_cmpfloat(cyc1, <, 0.02);
  g_assert_cmpfloat(cyc1e, <, 0.05);
  g_free(x);
  g_free(held);
  cf_namm_eval_clear(&e);
  cf_namm_clear(&m);
  cf_expr_set_clear(&s);
}

/* A linear constraint (the line x0 + x1 = 1) trains through the same loss. */
static void
test_line_training(void)
{
  CfNammConfig c = small_config(2);
  c.icnn_width = 32;
  c.inv_width = 64;
  c.batch = 64;
  c.lr = 2e-3f;
  CfNamm m;
  init_model(&m, &c, 100);
  CfConstraint lin;
  cf_constraint_init(&lin);
  CfError err;
  const double A[2] = { 1, 1 }, b[1] = { 1 };
  g_assert_cmpint(cf_constraint_set(&lin, 1, 2, A, b, &err), ==, CF_OK);
  CfNammConstraint con = { .lin = &lin };
  g_assert_cmpint(cf_namm_prepare_train(&m, c.batch, &con, &err), ==, CF_OK);
  CfRng rng;
  cf_rng_seed(&rng, 101);
  enum { N = 500 };
  float *held = g_new(float, 2 * N), *x = g_new(float, 2 * c.batch);
  for (int i = 0; i < N; i++) {
    float t = (float)(2.0 * cf_rng_uniform(&rng) - 0.5);
    held[2 * i] = t;
    held[2 * i + 1] = 1.0f - t;
  }
  CfNammEval e;
  g_assert_cmpint(cf_namm_eval_init(&e, &m, 128, &err), ==, CF_OK);
  double d0 = noisy_median_distance(&e, &con, held, N, c.sigma_max, 3);
  const int steps = 800;
  for (int step = 0; step < steps; step++) {
    for (int i = 0; i < c.batch; i++) {
      float t = (float)(2.0 * cf_rng_uniform(&rng) - 0.5);
      x[2 * i] = t;
      x[2 * i + 1] = 1.0f - t;
    }
    g_assert_cmpint(cf_namm_train_step(&m, x, &rng, NULL, &err), ==, CF_OK);
  }
  cf_namm_eval_load(&e, m.params.value);
  double d1 = noisy_median_distance(&e, &con, held, N, c.sigma_max, 3);
  g_test_message("line x0 + x1 = 1, %d steps: median ||A f(g(x) + sigma eps) - b|| %.4f -> %.4f", steps, d0, d1);
  g_assert_cmpfloat(d1, <, d0 / 3.0);
  g_free(held);
  g_free(x);
  cf_namm_eval_clear(&e);
  cf_namm_clear(&m);
  cf_constraint_clear(&lin);
}

/* The `conform bench` namm-train loop for a short time: reports steps/s. */
static void
test_speed(void)
{
  CfNammConfig c = cf_namm_bench_config();
  CfNamm m;
  init_model(&m, &c, 110);
  CfExprSet s;
  parse_ring(&s);
  CfNammConstraint con = { .expr = &s };
  CfError err;
  g_assert_cmpint(cf_namm_prepare_train(&m, c.batch, &con, &err), ==, CF_OK);
  CfRng rng;
  cf_rng_seed(&rng, 111);
  float *x = ring_points(&rng, c.batch);
  for (int w = 0; w < 3; w++)
    g_assert_cmpint(cf_namm_train_step(&m, x, &rng, NULL, &err), ==, CF_OK);
  long steps = 0;
  double t0 = g_get_monotonic_time() / 1e6, dt;
  do {
    for (int k = 0; k < 10; k++)
      g_assert_cmpint(cf_namm_train_step(&m, x, &rng, NULL, &err), ==, CF_OK);
    steps += 10;
    dt = g_get_monotonic_time() / 1e6 - t0;
  } while (dt < 0.5);
  double sps = steps / dt;
  g_test_message("namm-train: %.0f steps/s (batch %d, ICNN %dx%d, inverse %dx%d, %.2f GFLOP/s)", sps, c.batch,
                 c.icnn_depth, c.icnn_width, c.inv_depth, c.inv_width, sps * cf_namm_train_flops(&c, c.batch) / 1e9);
  g_assert_cmpfloat(sps, >, 0.0);
  g_free(x);
  cf_namm_clear(&m);
  cf_expr_set_clear(&s);
}

/* Finetuning f alone: g's weights stay bitwise (and equal their EMA), f's
 * change, and the distance of f on off-manifold mirror points (g(x) plus
 * noise larger than sigma_max, as an imperfect diffusion model draws)
 * drops. */
static void
test_finetune(void)
{
  CfNammConfig c = small_config(2);
  c.batch = 64;
  c.lr = 2e-3f;
  CfNamm m;
  init_model(&m, &c, 31);
  CfExprSet s;
  parse_ring(&s);
  CfNammConstraint con = { .expr = &s };
  CfError err;
  g_assert_cmpint(cf_namm_prepare_train(&m, c.batch, &con, &err), ==, CF_OK);
  CfRng rng;
  cf_rng_seed(&rng, 32);
  CfNammLosses l;
  for (int step = 0; step < 300; step++) {
    float *x = ring_points(&rng, c.batch);
    g_assert_cmpint(cf_namm_train_step(&m, x, &rng, &l, &err), ==, CF_OK);
    g_free(x);
  }
  /* off-manifold mirror points: g_EMA(x) + 0.3 N(0, I) */
  const int n = 512;
  CfNammEval e;
  g_assert_cmpint(cf_namm_eval_init(&e, &m, 256, &err), ==, CF_OK);
  cf_namm_eval_load(&e, m.ema);
  float *y = ring_points(&rng, n);
  cf_namm_eval_forward(&e, y, n, y);
  for (int i = 0; i < 2 * n; i++)
    y[i] += 0.3f * (float)cf_rng_normal(&rng);
  float *fx = g_new(float, 2 * n);
  double *d = g_new(double, n);
  cf_namm_eval_inverse(&e, y, n, fx);
  g_assert_cmpint(cf_namm_constraint_distance(&con, 2, fx, n, d, &err), ==, CF_OK);
  double d0 = 0;
  for (int i = 0; i < n; i++)
    d0 += d[i] / n;

  g_assert_cmpint(cf_namm_prepare_finetune(&m, c.batch, &con, &err), ==, CF_OK);
  const size_t fwd = m.params.info[m.net.inv_first].offset, total = m.params.total;
  float *g0 = g_memdup2(m.params.value, total * sizeof(float));
  g_assert_cmpint(memcmp(g0, m.ema, fwd * sizeof(float)), ==, 0); /* g at its EMA */
  float *batch = g_new(float, 2 * c.batch);
  for (int step = 0; step < 1500; step++) {
    for (int i = 0; i < c.batch; i++) {
      int k = (int)cf_rng_below(&rng, n);
      batch[2 * i] = y[2 * k];
      batch[2 * i + 1] = y[2 * k + 1];
    }
    g_assert_cmpint(cf_namm_train_step(&m, batch, &rng, &l, &err), ==, CF_OK);
    g_assert_true(isnan(l.cyc_fwd) && l.reg == 0.0f);
  }
  g_assert_cmpint(memcmp(g0, m.params.value, fwd * sizeof(float)), ==, 0);
  g_assert_cmpint(memcmp(g0, m.ema, fwd * sizeof(float)), ==, 0);
  g_assert_cmpint(memcmp(g0 + fwd, m.params.value + fwd, (total - fwd) * sizeof(float)), !=, 0);
  cf_namm_eval_load(&e, m.params.value);
  cf_namm_eval_inverse(&e, y, n, fx);
  g_assert_cmpint(cf_namm_constraint_distance(&con, 2, fx, n, d, &err), ==, CF_OK);
  double d1 = 0;
  for (int i = 0; i < n; i++)
    d1 += d[i] / n;
  g_test_message("finetuning f on off-manifold mirror points: mean distance %.4f -> %.4f", d0, d1);
  g_assert_cmpfloat(d1, <, 0.5 * d0);
  g_free(batch);
  g_free(g0);
  g_free(fx);
  g_free(d);
  g_free(y);
  cf_namm_eval_clear(&e);
  cf_namm_clear(&m);
  cf_expr_set_clear(&s);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/namm/potential_grad_fd", test_potential_grad_fd);
  g_test_add_func("/namm/loss_grad_fd", test_loss_grad_fd);
  g_test_add_func("/namm/nonneg", test_nonneg);
  g_test_add_func("/namm/monotone", test_monotone);
  g_test_add_func("/namm/ema", test_ema);
  g_test_add_func("/namm/nan", test_nan);
  g_test_add_func("/namm/eval_chunks", test_eval_chunks);
  g_test_add_func("/namm/config_check", test_config_check);
  g_test_add_func("/namm/ring_training", test_ring_training);
  g_test_add_func("/namm/line_training", test_line_training);
  g_test_add_func("/namm/finetune", test_finetune);
  g_test_add_func("/namm/speed", test_speed);
  return g_test_run();
}
