/* Tests for core/optim: Adam/AdamW, clipping, EMA, finiteness, LR schedule. */
#include <glib.h>
#include <math.h>
#include <string.h>

#include "optim.h"
#include "rng.h"

static void
test_default_config(void)
{
  CfAdamConfig c = cf_adam_default_config();
  g_assert_cmpfloat(c.beta1, ==, 0.9f);
  g_assert_cmpfloat(c.beta2, ==, 0.999f);
  g_assert_cmpfloat(c.eps, ==, 1e-8f);
  g_assert_cmpfloat(c.weight_decay, ==, 0.0f);
}

/* With bias correction the first step is lr * g / (|g| + eps) = lr sign(g). */
static void
test_adam_first_step(void)
{
  enum { N = 37 };
  CfRng rng;
  cf_rng_seed(&rng, 9);
  float p[N], p0[N], g[N];
  for (int i = 0; i < N; i++) {
    p[i] = p0[i] = (float)cf_rng_normal(&rng);
    g[i] = (float)cf_rng_normal(&rng) * 10.0f;
    if (fabsf(g[i]) < 1e-3f)
      g[i] = 1e-3f;
  }
  CfAdam opt;
  g_assert_cmpint(cf_adam_init(&opt, N, NULL), ==, CF_OK);
  float lr = 0.01f;
  cf_adam_step(&opt, p, g, lr);
  g_assert_cmpint(opt.t, ==, 1);
  for (int i = 0; i < N; i++) {
    double expect = p0[i] - lr * (g[i] > 0 ? 1.0 : -1.0);
    g_assert_cmpfloat(fabs(p[i] - expect), <=, 1e-6 * (1.0 + fabs(expect)));
  }
  /* reset: moments and t back to zero, so the next step is again lr sign(g) */
  cf_adam_reset(&opt);
  g_assert_cmpint(opt.t, ==, 0);
  for (int i = 0; i < N; i++)
    g_assert_cmpfloat(opt.m[i], ==, 0.0f);
  memcpy(p, p0, sizeof p);
  cf_adam_step(&opt, p, g, lr);
  for (int i = 0; i < N; i++)
    g_assert_cmpfloat(fabs(p[i] - (p0[i] - lr * (g[i] > 0 ? 1.0 : -1.0))), <=, 1e-6 * (1.0 + fabs(p0[i])));
  cf_adam_clear(&opt);
}

/* Two steps by hand: b1 0.9, b2 0.999, lr 0.1, p0 = 1, g = 0.5 then -1.
 * t=1: m = 0.05, v = 0.00025, m^ = 0.5, v^ = 0.25 -> p = 1 - 0.1 * 0.5/0.5 = 0.9
 * t=2: m = 0.045 - 0.1 = -0.055, v = 0.00024975 + 0.001 = 0.00124975,
 *      m^ = -0.055/0.19 = -0.28947368, v^ = 0.00124975/0.001999 = 0.62518759,
 *      p = 0.9 + 0.1 * 0.28947368/0.79068805 = 0.93661035 */
static void
test_adam_two_steps(void)
{
  CfAdam opt;
  g_assert_cmpint(cf_adam_init(&opt, 1, NULL), ==, CF_OK);
  float p = 1.0f, g = 0.5f;
  /* the moments carry the float betas (0.999f = 0.99900001287), the bias
   * corrections cancel them in the update */
  const double b1 = 0.9f, b2 = 0.999f;
  cf_adam_step(&opt, &p, &g, 0.1f);
  g_assert_cmpfloat(fabs(opt.m[0] - (1 - b1) * 0.5), <=, 1e-9);
  g_assert_cmpfloat(fabs(opt.v[0] - (1 - b2) * 0.25), <=, 1e-11);
  g_assert_cmpfloat(fabs(opt.v[0] - 0.00025), <=, 1e-8);
  g_assert_cmpfloat(fabs(p - 0.9), <=, 1e-6);
  g = -1.0f;
  cf_adam_step(&opt, &p, &g, 0.1f);
  g_assert_cmpfloat(fabs(opt.m[0] - (b1 * (1 - b1) * 0.5 - (1 - b1))), <=, 1e-8);
  g_assert_cmpfloat(fabs(opt.m[0] + 0.055), <=, 1e-7);
  g_assert_cmpfloat(fabs(opt.v[0] - (b2 * (1 - b2) * 0.25 + (1 - b2))), <=, 1e-10);
  g_assert_cmpfloat(fabs(opt.v[0] - 0.00124975), <=, 1e-7);
  g_assert_cmpfloat(fabs(p - 0.93661035), <=, 1e-6);
  cf_adam_clear(&opt);
}

/* A long arena (vectorised body) and one-element arenas (scalar tail) give
 * bit-identical updates. */
static void
test_adam_paths_agree(void)
{
  enum { N = 23 }; /* AVX (16), SSE (4) and scalar (3) elements against one-element runs */
  CfAdamConfig c = cf_adam_default_config();
  c.weight_decay = 0.01f;
  CfRng rng;
  cf_rng_seed(&rng, 31);
  float p[N], q[N], g[N];
  cf_rng_fill_normal(&rng, p, N);
  memcpy(q, p, sizeof p);
  CfAdam all, one[N];
  g_assert_cmpint(cf_adam_init(&all, N, &c), ==, CF_OK);
  for (int i = 0; i < N; i++)
    g_assert_cmpint(cf_adam_init(&one[i], 1, &c), ==, CF_OK);
  for (int step = 0; step < 5; step++) {
    cf_rng_fill_normal(&rng, g, N);
    cf_adam_step(&all, p, g, 0.01f);
    for (int i = 0; i < N; i++)
      cf_adam_step(&one[i], &q[i], &g[i], 0.01f);
  }
  g_assert_cmpmem(p, sizeof p, q, sizeof q);
  cf_adam_clear(&all);
  for (int i = 0; i < N; i++)
    cf_adam_clear(&one[i]);
}

/* AdamW: p <- (1 - lr wd) p - lr m^/(sqrt(v^) + eps). */
static void
test_adamw_decay(void)
{
  CfAdamConfig c = cf_adam_default_config();
  c.weight_decay = 0.1f;
  CfAdam opt;
  g_assert_cmpint(cf_adam_init(&opt, 3, &c), ==, CF_OK);
  float p[3] = { 2.0f, -1.0f, 0.5f };
  float g[3] = { 0.0f, 0.0f, 3.0f };
  float lr = 0.01f;
  /* zero gradients: pure decay, repeated */
  for (int k = 1; k <= 3; k++) {
    cf_adam_step(&opt, p, g, lr);
    double f = pow(1.0 - 0.01 * 0.1, k);
    g_assert_cmpfloat(fabs(p[0] - 2.0 * f), <=, 1e-6);
    g_assert_cmpfloat(fabs(p[1] + 1.0 * f), <=, 1e-6);
  }
  /* non-zero gradient on the first step: decay plus lr sign(g) */
  CfAdam opt2;
  g_assert_cmpint(cf_adam_init(&opt2, 3, &c), ==, CF_OK);
  float q[3] = { 2.0f, -1.0f, 0.5f };
  cf_adam_step(&opt2, q, g, lr);
  g_assert_cmpfloat(fabs(q[2] - (0.5 * (1.0 - 0.001) - 0.01)), <=, 1e-6);
  g_assert_cmpfloat(fabs(q[0] - 2.0 * (1.0 - 0.001)), <=, 1e-6);
  cf_adam_clear(&opt);
  cf_adam_clear(&opt2);
}

static void
test_clip(void)
{
  /* norm 5 ((3,4) padded with zeros), computed in double */
  float g[5] = { 3.0f, 0.0f, -4.0f, 0.0f, 0.0f };
  g_assert_cmpfloat(cf_grad_norm(g, 5), ==, 5.0);
  double before = cf_clip_grad_norm(g, 5, 1.0);
  g_assert_cmpfloat(before, ==, 5.0);
  g_assert_cmpfloat(fabs(cf_grad_norm(g, 5) - 1.0), <=, 1e-6);
  g_assert_cmpfloat(fabsf(g[0] - 0.6f), <=, 1e-7f); /* direction kept */
  g_assert_cmpfloat(fabsf(g[2] + 0.8f), <=, 1e-7f);
  /* below the limit: unchanged bit for bit */
  CfRng rng;
  cf_rng_seed(&rng, 4);
  float h[1001], h0[1001];
  cf_rng_fill_normal(&rng, h, 1001);
  memcpy(h0, h, sizeof h);
  double n = 0;
  for (int i = 0; i < 1001; i++)
    n += (double)h[i] * h[i];
  n = sqrt(n);
  g_assert_cmpfloat(fabs(cf_grad_norm(h, 1001) - n), <=, 1e-12 * n);
  g_assert_cmpfloat(cf_clip_grad_norm(h, 1001, n * 1.01), ==, cf_grad_norm(h0, 1001));
  g_assert_cmpmem(h, sizeof h, h0, sizeof h0);
  /* above: norm becomes max_norm */
  g_assert_cmpfloat(fabs(cf_clip_grad_norm(h, 1001, 2.5) - n), <=, 1e-12 * n);
  g_assert_cmpfloat(fabs(cf_grad_norm(h, 1001) - 2.5), <=, 1e-5);
  g_assert_cmpfloat(cf_grad_norm(h, 0), ==, 0.0);
}

static void
test_ema(void)
{
  enum { N = 19, STEPS = 6 };
  CfRng rng;
  cf_rng_seed(&rng, 8);
  float ema[N], p[N];
  double ref[N];
  cf_rng_fill_normal(&rng, ema, N);
  for (int i = 0; i < N; i++)
    ref[i] = ema[i];
  float rate = 0.9f;
  for (int s = 0; s < STEPS; s++) {
    cf_rng_fill_normal(&rng, p, N);
    cf_ema_update(ema, p, N, rate);
    for (int i = 0; i < N; i++)
      ref[i] = (double)rate * ref[i] + (1.0 - (double)rate) * p[i];
  }
  for (int i = 0; i < N; i++)
    g_assert_cmpfloat(fabs(ema[i] - ref[i]), <=, 1e-6);
  /* rate 0 copies, rate 1 keeps */
  cf_ema_update(ema, p, N, 0.0f);
  g_assert_cmpmem(ema, sizeof ema, p, sizeof p);
  float keep[N];
  memcpy(keep, ema, sizeof keep);
  cf_rng_fill_normal(&rng, p, N);
  cf_ema_update(ema, p, N, 1.0f);
  g_assert_cmpmem(ema, sizeof ema, keep, sizeof keep);
}

static void
test_all_finite(void)
{
  float x[67];
  for (int i = 0; i < 67; i++)
    x[i] = (float)i - 30.0f;
  x[5] = 3.4e38f;
  x[6] = 1e-42f; /* subnormal is finite */
  g_assert_true(cf_all_finite(x, 67));
  g_assert_true(cf_all_finite(x, 0));
  static const int pos[] = { 0, 31, 66 };
  const float bad[] = { NAN, INFINITY, -INFINITY };
  for (int b = 0; b < 3; b++)
    for (int k = 0; k < 3; k++) {
      float v = x[pos[k]];
      x[pos[k]] = bad[b];
      g_assert_false(cf_all_finite(x, 67));
      x[pos[k]] = v;
    }
  g_assert_true(cf_all_finite(x, 67));
}

static void
test_schedule(void)
{
  CfLrSchedule s = { .lr_max = 1e-3f, .lr_min = 1e-5f, .warmup = 100, .total = 1100 };
  g_assert_cmpfloat(cf_lr_at(&s, 0), ==, 0.0f);
  g_assert_cmpfloat(fabsf(cf_lr_at(&s, 50) - 0.5e-3f), <=, 1e-10f);
  g_assert_cmpfloat(fabsf(cf_lr_at(&s, 100) - 1e-3f), <=, 1e-10f); /* warm-up end */
  g_assert_cmpfloat(fabsf(cf_lr_at(&s, 600) - 0.5f * (1e-3f + 1e-5f)), <=, 1e-10f); /* midpoint */
  double q = 0.5 * (1e-3 - 1e-5) * (1.0 + cos(M_PI * 0.25)) + 1e-5;
  g_assert_cmpfloat(fabs(cf_lr_at(&s, 350) - q), <=, 1e-9);
  g_assert_cmpfloat(cf_lr_at(&s, 1100), ==, 1e-5f); /* total */
  g_assert_cmpfloat(cf_lr_at(&s, 5000), ==, 1e-5f); /* held after */
  /* monotone decay after the warm-up */
  for (long t = 100; t < 1100; t++)
    g_assert_cmpfloat(cf_lr_at(&s, t + 1), <=, cf_lr_at(&s, t));
  /* no warm-up: starts at lr_max */
  CfLrSchedule s0 = { .lr_max = 2e-3f, .lr_min = 0.0f, .warmup = 0, .total = 10 };
  g_assert_cmpfloat(cf_lr_at(&s0, 0), ==, 2e-3f);
  g_assert_cmpfloat(cf_lr_at(&s0, 10), ==, 0.0f);
}

/* Adam with a cosine-decayed learning rate on an ill-conditioned quadratic
 * f(p) = 1/2 sum a_i (p_i - c_i)^2 reaches the minimum c. */
static void
test_adam_quadratic(void)
{
  enum { N = 8 };
  float a[N], c[N], p[N], g[N];
  CfRng rng;
  cf_rng_seed(&rng, 12);
  for (int i = 0; i < N; i++) {
    a[i] = powf(10.0f, (float)i / 2.0f - 1.0f); /* 0.1 .. 316 */
    c[i] = (float)cf_rng_normal(&rng);
    p[i] = 0.0f;
  }
  CfAdam opt;
  g_assert_cmpint(cf_adam_init(&opt, N, NULL), ==, CF_OK);
  CfLrSchedule s = { .lr_max = 0.05f, .lr_min = 1e-5f, .warmup = 10, .total = 3000 };
  double f0 = 0;
  for (int i = 0; i < N; i++)
    f0 += 0.5 * a[i] * c[i] * c[i];
  for (long t = 0; t < 3000; t++) {
    for (int i = 0; i < N; i++)
      g[i] = a[i] * (p[i] - c[i]);
    cf_adam_step(&opt, p, g, cf_lr_at(&s, t));
  }
  double f = 0;
  for (int i = 0; i < N; i++) {
    f += 0.5 * a[i] * (p[i] - c[i]) * (p[i] - c[i]);
    g_assert_cmpfloat(fabsf(p[i] - c[i]), <=, 1e-3f);
  }
  g_assert_cmpfloat(f, <, 1e-6 * f0);
  cf_adam_clear(&opt);
}

/* The fused clip equals clipping the gradient first, bit for bit. */
static void
test_fused_clip(void)
{
  const size_t n = 100003;
  float *p1 = cf_alloc_floats(n), *p3 = cf_alloc_floats(n), *g = cf_alloc_floats(n), *gc = cf_alloc_floats(n);
  CfRng rng;
  cf_rng_seed(&rng, 5);
  cf_rng_fill_normal(&rng, p1, n);
  memcpy(p3, p1, n * sizeof(float));
  CfAdam a1, a3;
  CfAdamConfig cfg = cf_adam_default_config();
  cfg.weight_decay = 0.01f;
  g_assert_cmpint(cf_adam_init(&a1, n, &cfg), ==, CF_OK);
  g_assert_cmpint(cf_adam_init(&a3, n, &cfg), ==, CF_OK);
  for (int step = 0; step < 3; step++) {
    cf_rng_fill_normal(&rng, g, n);
    double norm = cf_grad_norm(g, n);
    float s = cf_clip_scale(norm, 100.0);
    g_assert_cmpfloat(s, <, 1.0f);
    cf_adam_step_scaled(&a1, p1, g, 1e-3f, s);
    memcpy(gc, g, n * sizeof(float));
    cf_clip_grad_norm(gc, n, 100.0);
    cf_adam_step(&a3, p3, gc, 1e-3f);
  }
  g_assert_cmpmem(p1, n * sizeof(float), p3, n * sizeof(float));
  g_assert_cmpmem(a1.v, n * sizeof(float), a3.v, n * sizeof(float));
  g_assert_cmpfloat(cf_clip_scale(NAN, 1.0), ==, 1.0f);
  g_assert_cmpfloat(cf_clip_scale(0.5, 1.0), ==, 1.0f);
  g_assert_cmpfloat(cf_clip_scale(4.0, 0.0), ==, 1.0f);
  g_assert_cmpfloat(cf_clip_scale(4.0, 1.0), ==, 0.25f);
  cf_adam_clear(&a1);
  cf_adam_clear(&a3);
  cf_free_aligned(p1);
  cf_free_aligned(p3);
  cf_free_aligned(g);
  cf_free_aligned(gc);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/optim/default-config", test_default_config);
  g_test_add_func("/optim/adam-first-step", test_adam_first_step);
  g_test_add_func("/optim/adam-two-steps", test_adam_two_steps);
  g_test_add_func("/optim/adam-paths-agree", test_adam_paths_agree);
  g_test_add_func("/optim/adamw-decay", test_adamw_decay);
  g_test_add_func("/optim/clip", test_clip);
  g_test_add_func("/optim/ema", test_ema);
  g_test_add_func("/optim/all-finite", test_all_finite);
  g_test_add_func("/optim/schedule", test_schedule);
  g_test_add_func("/optim/adam-quadratic", test_adam_quadratic);
  g_test_add_func("/optim/fused-clip", test_fused_clip);
  return g_test_run();
}
