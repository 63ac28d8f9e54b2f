/* Tests for core/unet: shapes and zero output at initialisation, a
 * finite-difference gradient check of the whole net on a tiny config, and a
 * short denoising training run that must beat the trivial predictor. */
#include <glib.h>
#include <math.h>
#include <string.h>

#include "graph.h"
#include "optim.h"
#include "unet.h"

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

static CfUnetConfig
tiny_config(void)
{
  CfUnetConfig c = cf_unet_default_config(1, 8, 8);
  c.base = 4;
  c.levels = 2;
  c.mult[0] = 1;
  c.mult[1] = 2;
  c.temb_dim = 8;
  c.groups = 2;
  return c;
}

/* 28 x 28 with three levels (28 -> 14 -> 7), 14 x 14 with two, odd 7 x 7 at
 * the bottom; output has x's shape and is exactly 0 before training. */
static void
test_unet_shapes(void)
{
  static const int cfgs[][4] = { { 28, 28, 3, 8 }, { 14, 14, 2, 8 }, { 12, 20, 3, 4 }, { 7, 9, 1, 4 } };
  for (size_t k = 0; k < G_N_ELEMENTS(cfgs); k++) {
    CfUnetConfig c = cf_unet_default_config(1, cfgs[k][0], cfgs[k][1]);
    c.levels = cfgs[k][2];
    c.base = cfgs[k][3];
    c.groups = 4;
    c.temb_dim = 16;
    CfParams p;
    cf_params_init(&p);
    CfUnet u;
    cf_unet_declare(&u, &p, "unet", &c);
    g_assert_true(u.ok);
    g_assert_cmpint(cf_params_alloc(&p), ==, CF_OK);
    CfRng rng;
    cf_rng_seed(&rng, 11);
    cf_params_randomize(&p, &rng);
    int B = 3, n = c.C * c.H * c.W;
    CfGraph *g = cf_graph_new();
    CfNode x = cf_input(g, B, n, false), t = cf_input(g, B, c.temb_dim, false);
    CfNode y = cf_unet_build(g, &p, &u, x, t);
    g_assert_cmpint(cf_graph_rows(g, y), ==, B);
    g_assert_cmpint(cf_graph_cols(g, y), ==, n);
    g_assert_cmpint(cf_graph_finalize(g), ==, CF_OK);
    fill_uniform(&rng, cf_graph_value(g, x), node_size(g, x), -1, 1);
    fill_uniform(&rng, cf_graph_value(g, t), node_size(g, t), -1, 1);
    cf_graph_forward(g);
    for (int i = 0; i < B * n; i++)
      g_assert_cmpfloat(cf_graph_value(g, y)[i], ==, 0.0f);
    g_assert_cmpfloat(cf_unet_flops(&u, B), >, 0.0);
    g_assert_cmpfloat(fabs(cf_unet_flops(&u, 2 * B) - 2 * cf_unet_flops(&u, B)), <, 1.0);
    cf_graph_free(g);
    cf_params_clear(&p);
  }
}

/* sum(y .* r) in double after a forward pass. */
static double
weighted_loss(CfGraph *g, CfNode y, const float *r)
{
  cf_graph_forward(g);
  const float *v = cf_graph_value(g, y);
  double s = 0;
  for (size_t i = 0; i < node_size(g, y); i++)
    s += (double)v[i] * r[i];
  return s;
}

/* Central differences on up to `max` entries (evenly spread) of value. */
static void
fd_check(CfGraph *g, CfNode y, const float *r, float *value, const float *grad, size_t n, size_t max,
         const char *what)
{
  size_t step = n > max ? n / max : 1;
  /* The float forward pass through ~40 ops limits the differences: measured
   * errors fall as 1/h down to h = 1e-2 (<= 3e-3 there) and rise again from
   * truncation beyond 2e-2; a wrong gradient gives errors of order 1. */
  const double h = 1e-2;
  double d2 = 0, s2 = 0;
  for (size_t i = 0; i < n; i += step) {
    float v = value[i];
    value[i] = (float)(v + h);
    double lp = weighted_loss(g, y, r);
    value[i] = (float)(v - h);
    double lm = weighted_loss(g, y, r);
    value[i] = v;
    double num = (lp - lm) / ((double)(float)(v + h) - (double)(float)(v - h));
    d2 += (grad[i] - num) * (grad[i] - num);
    s2 += num * num;
  }
  double err = sqrt(d2 / (s2 > 0 ? s2 : 1));
  if (g_test_verbose() || !(err < 1e-2))
    g_test_message("unet d/d%s: relative error %.3g (|g| %.3g)", what, err, sqrt(s2));
  g_assert_cmpfloat(s2, >, 0.0);
  g_assert_cmpfloat(err, <, 1e-2);
}

static void
test_unet_grad(void)
{
  CfUnetConfig c = tiny_config();
  CfParams p;
  cf_params_init(&p);
  CfUnet u;
  cf_unet_declare(&u, &p, "u", &c);
  g_assert_cmpint(cf_params_alloc(&p), ==, CF_OK);
  CfRng rng;
  cf_rng_seed(&rng, 21);
  cf_params_randomize(&p, &rng);
  /* non-zero output conv and norms away from the identity, so every path matters */
  fill_uniform(&rng, cf_params_value(&p, u.out_w), (size_t)c.C * u.ch[0] * 9, -0.5f, 0.5f);
  for (int k = 0; k < p.count; k++)
    if (strstr(p.info[k].name, "gn") || strstr(p.info[k].name, ".b"))
      fill_uniform(&rng, cf_params_value(&p, k), (size_t)p.info[k].rows * p.info[k].cols, 0.5f, 1.5f);
  int B = 2, n = c.C * c.H * c.W;
  CfGraph *g = cf_graph_new();
  CfNode x = cf_input(g, B, n, true), t = cf_input(g, B, c.temb_dim, true);
  CfNode y = cf_unet_build(g, &p, &u, x, t);
  CfNode r = cf_input(g, B, n, false);
  CfNode loss = cf_sum_all(g, cf_mul(g, y, r));
  g_assert_cmpint(cf_graph_finalize(g), ==, CF_OK);
  fill_uniform(&rng, cf_graph_value(g, x), node_size(g, x), -1, 1);
  fill_uniform(&rng, cf_graph_value(g, t), node_size(g, t), -1, 1);
  fill_uniform(&rng, cf_graph_value(g, r), node_size(g, r), -1, 1);
  cf_graph_forward(g);
  cf_params_zero_grad(&p);
  cf_graph_backward(g, loss);
  float *gx = g_memdup2(cf_graph_grad(g, x), node_size(g, x) * sizeof(float));
  float *gt = g_memdup2(cf_graph_grad(g, t), node_size(g, t) * sizeof(float));
  float *gp = g_memdup2(p.grad, p.total * sizeof(float));
  const float *rv = cf_graph_value(g, r);
  fd_check(g, y, rv, cf_graph_value(g, x), gx, node_size(g, x), 128, "x");
  fd_check(g, y, rv, cf_graph_value(g, t), gt, node_size(g, t), 16, "temb");
  static const char *names[] = {
    "u.time.1.w", "u.in.conv.w", "u.in.conv.b", "u.down0.gn1.g", "u.down0.conv1.w", "u.down0.temb.w",
    "u.down1.skip.w", "u.down1.gn2.b", "u.mid.conv2.w", "u.up1.conv1.w", "u.up1.upconv.w", "u.up0.skip.w",
    "u.out.gn.g", "u.out.conv.w", "u.out.conv.b",
  };
  for (size_t k = 0; k < G_N_ELEMENTS(names); k++) {
    int idx = cf_params_find(&p, names[k]);
    g_assert_cmpint(idx, >=, 0);
    size_t sz = (size_t)p.info[idx].rows * p.info[idx].cols;
    fd_check(g, y, rv, cf_params_value(&p, idx), gp + p.info[idx].offset, sz, 24, names[k]);
  }
  g_free(gx);
  g_free(gt);
  g_free(gp);
  cf_graph_free(g);
  cf_params_clear(&p);
}

/* ---- toy denoising ------------------------------------------------------------- */

/* 8 x 8 images in {-1, 1}: one horizontal or vertical bar of +1 on -1. */
static void
make_bars(CfRng *rng, float *x0, int B)
{
  for (int b = 0; b < B; b++) {
    float *im = x0 + b * 64;
    int pos = (int)cf_rng_below(rng, 8), vert = (int)cf_rng_below(rng, 2);
    for (int i = 0; i < 8; i++)
      for (int j = 0; j < 8; j++)
        im[i * 8 + j] = (vert ? j : i) == pos ? 1.0f : -1.0f;
  }
}

/* x = sqrt(ab) x0 + sqrt(1 - ab) eps with ab = cos^2(pi tau / 2), tau ~ U(0.02, 0.98);
 * the net sees t = 1000 tau through a sinusoidal embedding. */
static void
make_batch(CfRng *rng, float *x, float *eps, float *t, int B)
{
  float x0[64 * 64];
  g_assert_cmpint(B, <=, 64);
  make_bars(rng, x0, B);
  cf_rng_fill_normal(rng, eps, (size_t)B * 64);
  for (int b = 0; b < B; b++) {
    double tau = 0.02 + 0.96 * cf_rng_uniform(rng);
    double ab = cos(G_PI * tau / 2) * cos(G_PI * tau / 2);
    t[b] = (float)(1000.0 * tau);
    for (int i = 0; i < 64; i++)
      x[b * 64 + i] = (float)(sqrt(ab) * x0[b * 64 + i] + sqrt(1 - ab) * eps[b * 64 + i]);
  }
}

static void
test_unet_train(void)
{
  CfUnetConfig c = tiny_config();
  c.base = 8;
  c.groups = 4;
  c.temb_dim = 16;
  CfParams p;
  cf_params_init(&p);
  CfUnet u;
  cf_unet_declare(&u, &p, "u", &c);
  g_assert_cmpint(cf_params_alloc(&p), ==, CF_OK);
  CfRng rng, data, eval;
  cf_rng_seed_stream(&rng, 5, 0);
  cf_rng_seed_stream(&data, 5, 1);
  cf_rng_seed_stream(&eval, 5, 2);
  cf_params_randomize(&p, &rng);
  const int B = 32;
  CfGraph *g = cf_graph_new();
  CfNode x = cf_input(g, B, 64, false), t = cf_input(g, B, 1, false), eps = cf_input(g, B, 64, false);
  CfNode temb = cf_time_embed(g, t, c.temb_dim, 10000.0f);
  CfNode pred = cf_unet_build(g, &p, &u, x, temb);
  CfNode loss = cf_mse(g, pred, eps);
  g_assert_cmpint(cf_graph_finalize(g), ==, CF_OK);

  /* fixed evaluation set: 4 batches */
  enum { NEVAL = 4 };
  float *ex = g_new(float, NEVAL * B * 64), *ee = g_new(float, NEVAL * B * 64), *et = g_new(float, NEVAL * B);
  for (int k = 0; k < NEVAL; k++)
    make_batch(&eval, ex + k * B * 64, ee + k * B * 64, et + k * B, B);
  double eval_loss[2];
  CfAdam opt;
  CfAdamConfig acfg = cf_adam_default_config();
  g_assert_cmpint(cf_adam_init(&opt, p.total, &acfg), ==, CF_OK);
  const int steps = 400;
  for (int phase = 0; phase < 2; phase++) {
    if (phase == 1)
      for (int s = 0; s < steps; s++) {
        make_batch(&data, cf_graph_value(g, x), cf_graph_value(g, eps), cf_graph_value(g, t), B);
        cf_graph_forward(g);
        cf_params_zero_grad(&p);
        cf_graph_backward(g, loss);
        float lr = s < 20 ? 2e-3f * (s + 1) / 20 : 2e-3f;
        cf_adam_step(&opt, p.value, p.grad, lr);
      }
    double sum = 0;
    for (int k = 0; k < NEVAL; k++) {
      memcpy(cf_graph_value(g, x), ex + k * B * 64, B * 64 * sizeof(float));
      memcpy(cf_graph_value(g, eps), ee + k * B * 64, B * 64 * sizeof(float));
      memcpy(cf_graph_value(g, t), et + k * B, B * sizeof(float));
      cf_graph_forward(g);
      sum += cf_graph_value(g, loss)[0];
    }
    eval_loss[phase] = sum / NEVAL;
  }
  g_test_message("toy denoising: eval loss %.4f before, %.4f after %d steps", eval_loss[0], eval_loss[1],
                 steps);
  /* the untrained net predicts 0: loss = mean eps^2, about 1 */
  g_assert_cmpfloat(fabs(eval_loss[0] - 1.0), <, 0.1);
  g_assert_cmpfloat(eval_loss[1], <, 0.2); /* measured 0.045 */
  g_free(ex);
  g_free(ee);
  g_free(et);
  cf_adam_clear(&opt);
  cf_graph_free(g);
  cf_params_clear(&p);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/unet/shapes", test_unet_shapes);
  g_test_add_func("/unet/grad", test_unet_grad);
  g_test_add_func("/unet/train", test_unet_train);
  return g_test_run();
}
