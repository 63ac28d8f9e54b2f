/* Tests for core/unet: shapes and zero output at initialisation, a
 * finite-difference gradient check of the whole net on a tiny config (with
 * and without conditioning inputs), a short denoising training run that
 * must beat the trivial predictor, and one where a thumbnail given as
 * conditioning must beat the same net without it. */
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
  static const int cfgs[][5] = { { 28, 28, 3, 8, 0 }, { 14, 14, 2, 8, 49 }, { 12, 20, 3, 4, 0 }, { 7, 9, 1, 4, 3 } };
  for (size_t k = 0; k < G_N_ELEMENTS(cfgs); k++) {
    CfUnetConfig c = cf_unet_default_config(1, cfgs[k][0], cfgs[k][1]);
    c.levels = cfgs[k][2];
    c.base = cfgs[k][3];
    c.groups = 4;
    c.temb_dim = 16;
    c.cond_dim = cfgs[k][4];
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
    CfNode cond = c.cond_dim > 0 ? cf_input(g, B, c.cond_dim, false) : -1;
    CfNode y = cf_unet_build(g, &p, &u, x, t, cond);
    g_assert_cmpint(cf_graph_rows(g, y), ==, B);
    g_assert_cmpint(cf_graph_cols(g, y), ==, n);
    g_assert_cmpint(cf_graph_finalize(g), ==, CF_OK);
    fill_uniform(&rng, cf_graph_value(g, x), node_size(g, x), -1, 1);
    fill_uniform(&rng, cf_graph_value(g, t), node_size(g, t), -1, 1);
    if (cond >= 0)
      fill_uniform(&rng, cf_graph_value(g, cond), node_size(g, cond), -1, 1);
    /* conditioning adds exactly its three parameters (and one input channel) */
    g_assert_cmpint(cf_params_find(&p, "unet.cond.time.w") >= 0, ==, c.cond_dim > 0);
    g_assert_cmpint(p.info[u.in_w].cols, ==, (c.C + (c.cond_dim > 0)) * 9);
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
check_unet_grad(int cond_dim)
{
  CfUnetConfig c = tiny_config();
  c.cond_dim = cond_dim;
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
  CfNode cond = cond_dim > 0 ? cf_input(g, B, cond_dim, true) : -1;
  CfNode y = cf_unet_build(g, &p, &u, x, t, cond);
  CfNode r = cf_input(g, B, n, false);
  CfNode loss = cf_sum_all(g, cf_mul(g, y, r));
  g_assert_cmpint(cf_graph_finalize(g), ==, CF_OK);
  fill_uniform(&rng, cf_graph_value(g, x), node_size(g, x), -1, 1);
  fill_uniform(&rng, cf_graph_value(g, t), node_size(g, t), -1, 1);
  if (cond >= 0)
    fill_uniform(&rng, cf_graph_value(g, cond), node_size(g, cond), -1, 1);
  fill_uniform(&rng, cf_graph_value(g, r), node_size(g, r), -1, 1);
  cf_graph_forward(g);
  cf_params_zero_grad(&p);
  cf_graph_backward(g, loss);
  float *gx = g_memdup2(cf_graph_grad(g, x), node_size(g, x) * sizeof(float));
  float *gt = g_memdup2(cf_graph_grad(g, t), node_size(g, t) * sizeof(float));
  float *gc = cond >= 0 ? g_memdup2(cf_graph_grad(g, cond), node_size(g, cond) * sizeof(float)) : NULL;
  float *gp = g_memdup2(p.grad, p.total * sizeof(float));
  const float *rv = cf_graph_value(g, r);
  fd_check(g, y, rv, cf_graph_value(g, x), gx, node_size(g, x), 128, "x");
  fd_check(g, y, rv, cf_graph_value(g, t), gt, node_size(g, t), 16, "temb");
  if (cond >= 0)
    fd_check(g, y, rv, cf_graph_value(g, cond), gc, node_size(g, cond), 16, "cond");
  static const char *names[] = {
    "u.time.1.w", "u.in.conv.w", "u.in.conv.b", "u.down0.gn1.g", "u.down0.conv1.w", "u.down0.temb.w",
    "u.down1.skip.w", "u.down1.gn2.b", "u.mid.conv2.w", "u.up1.conv1.w", "u.up1.upconv.w", "u.up0.skip.w",
    "u.out.gn.g", "u.out.conv.w", "u.out.conv.b", "u.cond.time.w", "u.cond.plane.w", "u.cond.plane.b",
  };
  for (size_t k = 0; k < G_N_ELEMENTS(names); k++) {
    if (cond_dim == 0 && strstr(names[k], ".cond.")) { /* not declared without conditioning */
      g_assert_cmpint(cf_params_find(&p, names[k]), ==, -1);
      continue;
    }
    int idx = cf_params_find(&p, names[k]);
    g_assert_cmpint(idx, >=, 0);
    size_t sz = (size_t)p.info[idx].rows * p.info[idx].cols;
    fd_check(g, y, rv, cf_params_value(&p, idx), gp + p.info[idx].offset, sz, 24, names[k]);
  }
  g_free(gx);
  g_free(gt);
  g_free(gc);
  g_free(gp);
  cf_graph_free(g);
  cf_params_clear(&p);
}

static void
test_unet_grad(void)
{
  check_unet_grad(0);
}

/* The conditioning path: input, Wc, the plane map P, p, and the wider input conv. */
static void
test_unet_grad_cond(void)
{
  check_unet_grad(5);
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

/* x = sqrt(ab) x0 + sqrt(1 - ab) eps with ab = cos^2(pi tau / 2), tau ~ U(tau_lo, 0.98);
 * the net sees t = 1000 tau through a sinusoidal embedding. cond (B x 16, or
 * NULL) receives the 4 x 4 thumbnail of x0 (2 x 2 block means): it locates
 * the bar to within two positions. */
static void
make_batch(CfRng *rng, float *x, float *eps, float *t, float *cond, double tau_lo, int B)
{
  float x0[64 * 64];
  g_assert_cmpint(B, <=, 64);
  make_bars(rng, x0, B);
  cf_rng_fill_normal(rng, eps, (size_t)B * 64);
  for (int b = 0; b < B; b++) {
    double tau = tau_lo + (0.98 - tau_lo) * cf_rng_uniform(rng);
    double ab = cos(G_PI * tau / 2) * cos(G_PI * tau / 2);
    t[b] = (float)(1000.0 * tau);
    for (int i = 0; i < 64; i++)
      x[b * 64 + i] = (float)(sqrt(ab) * x0[b * 64 + i] + sqrt(1 - ab) * eps[b * 64 + i]);
    if (cond)
      for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) {
          const float *q = x0 + b * 64 + 2 * i * 8 + 2 * j;
          cond[b * 16 + i * 4 + j] = 0.25f * (q[0] + q[1] + q[8] + q[9]);
        }
  }
}

/* Trains the base-8 net (conditioned on the thumbnail when cond_dim = 16)
 * for `steps` Adam steps on bars at tau >= tau_lo; eval_loss gets the mean
 * squared epsilon error on a fixed set before and after. */
static void
train_toy(int cond_dim, double tau_lo, int steps, double eval_loss[2])
{
  CfUnetConfig c = tiny_config();
  c.base = 8;
  c.groups = 4;
  c.temb_dim = 16;
  c.cond_dim = cond_dim;
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
  CfNode cond = cond_dim > 0 ? cf_input(g, B, cond_dim, false) : -1;
  CfNode temb = cf_time_embed(g, t, c.temb_dim, 10000.0f);
  CfNode pred = cf_unet_build(g, &p, &u, x, temb, cond);
  CfNode loss = cf_mse(g, pred, eps);
  g_assert_cmpint(cf_graph_finalize(g), ==, CF_OK);

  /* fixed evaluation set: 4 batches (the same draws with or without cond) */
  enum { NEVAL = 4 };
  float *ex = g_new(float, NEVAL * B * 64), *ee = g_new(float, NEVAL * B * 64), *et = g_new(float, NEVAL * B);
  float *ec = g_new(float, NEVAL * B * 16), *tc = g_new(float, B * 16);
  for (int k = 0; k < NEVAL; k++)
    make_batch(&eval, ex + k * B * 64, ee + k * B * 64, et + k * B, ec + k * B * 16, tau_lo, B);
  CfAdam opt;
  CfAdamConfig acfg = cf_adam_default_config();
  g_assert_cmpint(cf_adam_init(&opt, p.total, &acfg), ==, CF_OK);
  for (int phase = 0; phase < 2; phase++) {
    if (phase == 1)
      for (int s = 0; s < steps; s++) {
        make_batch(&data, cf_graph_value(g, x), cf_graph_value(g, eps), cf_graph_value(g, t),
                   cond >= 0 ? cf_graph_value(g, cond) : tc, tau_lo, B);
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
      if (cond >= 0)
        memcpy(cf_graph_value(g, cond), ec + k * B * 16, B * 16 * sizeof(float));
      cf_graph_forward(g);
      sum += cf_graph_value(g, loss)[0];
    }
    eval_loss[phase] = sum / NEVAL;
  }
  g_free(ex);
  g_free(ee);
  g_free(et);
  g_free(ec);
  g_free(tc);
  cf_adam_clear(&opt);
  cf_graph_free(g);
  cf_params_clear(&p);
}

static void
test_unet_train(void)
{
  double eval_loss[2];
  const int steps = 400;
  train_toy(0, 0.02, steps, eval_loss);
  g_test_message("toy denoising: eval loss %.4f before, %.4f after %d steps", eval_loss[0], eval_loss[1],
                 steps);
  /* the untrained net predicts 0: loss = mean eps^2, about 1 */
  g_assert_cmpfloat(fabs(eval_loss[0] - 1.0), <, 0.1);
  g_assert_cmpfloat(eval_loss[1], <, 0.2); /* measured 0.045 */
}

/* At heavy noise (tau >= 0.6) the bar is hard to find in x_t alone; the
 * thumbnail given as conditioning locates it, so the conditioned net must
 * reach a clearly lower loss than the same net without it. */
static void
test_unet_train_cond(void)
{
  double plain[2], cond[2];
  const int steps = 300;
  train_toy(0, 0.6, steps, plain);
  train_toy(16, 0.6, steps, cond);
  g_test_message("heavy-noise denoising after %d steps: eval loss %.4f without, %.4f with the thumbnail", steps,
                 plain[1], cond[1]);
  g_assert_cmpfloat(fabs(cond[0] - 1.0), <, 0.1); /* still exactly 0 at initialisation */
  g_assert_cmpfloat(cond[1], <, 0.8 * plain[1]);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/unet/shapes", test_unet_shapes);
  g_test_add_func("/unet/grad", test_unet_grad);
  g_test_add_func("/unet/grad-cond", test_unet_grad_cond);
  g_test_add_func("/unet/train", test_unet_train);
  g_test_add_func("/unet/train-cond", test_unet_train_cond);
  return g_test_run();
}
