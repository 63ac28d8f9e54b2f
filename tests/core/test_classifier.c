/* Tests for the CNN classifier (core/classifier.c). */
#include <glib.h>
#include <math.h>
#include <string.h>

#include "classifier.h"
#include "optim.h"

static void
test_xent(void)
{
  /* cf_softmax_xent's gradient against central differences in double */
  enum { B = 3, K = 4 };
  float z[B * K] = {0.5f, -1.0f, 2.0f, 0.1f, 30.0f, -30.0f, 0.0f, 1.0f, -0.2f, -0.3f, -0.4f, 0.9f};
  int y[B] = {2, 1, 0};
  float G[B * K];
  double prob[K];
  double L = cf_softmax_xent(z, y, B, K, G, prob);
  g_assert_true(isfinite(L) && L > 0);
  for (int i = 0; i < B * K; i++) {
    float v = z[i];
    float h = 1e-2f;
    z[i] = v + h;
    double lp = cf_softmax_xent(z, y, B, K, NULL, prob);
    z[i] = v - h;
    double lm = cf_softmax_xent(z, y, B, K, NULL, prob);
    z[i] = v;
    double num = (lp - lm) / (2.0 * h);
    g_assert_cmpfloat(fabs(num - G[i]), <, 1e-4);
  }
  /* a confident right answer has a small loss, a confident wrong one ~ the margin */
  float z2[2] = {40.0f, 0.0f};
  int y0 = 0, y1 = 1;
  g_assert_cmpfloat(cf_softmax_xent(z2, &y0, 1, 2, NULL, prob), <, 1e-12);
  g_assert_cmpfloat(fabs(cf_softmax_xent(z2, &y1, 1, 2, NULL, prob) - 40.0), <, 1e-9);
  g_assert_cmpint(cf_argmax(z, K), ==, 2);
}

/* side 8: both poolings (8 -> 4 -> 2); side 6: one (6 -> 3, as 14 -> 7) */
static CfClassifierConfig
tiny_config(int side)
{
  CfClassifierConfig c = cf_classifier_default_config(2, side, side, 3);
  c.c1 = 3;
  c.c2 = 4;
  c.features = 5;
  c.act = CF_ACT_SILU; /* smooth: central differences are valid everywhere */
  return c;
}

/* Finite-difference check of dLoss/dparams through the whole net: the loss
 * is the mean cross-entropy of the training graph's logits (recomputed in
 * double for each perturbation). */
static void
check_gradient(int side)
{
  enum { B = 3 };
  CfClassifierConfig cfg = tiny_config(side);
  g_assert_cmpint(cf_classifier_second_pool(&cfg), ==, side == 8);
  CfClassifier m;
  CfError err;
  g_assert_cmpint(cf_classifier_init(&m, &cfg, &err), ==, CF_OK);
  CfRng rng;
  cf_rng_seed_stream(&rng, 11, 0);
  cf_classifier_randomize(&m, &rng);
  /* non-zero biases so their gradients are exercised in a generic point */
  for (size_t i = 0; i < m.params.total; i++)
    m.params.value[i] += 0.1f * (float)cf_rng_normal(&rng);
  g_assert_cmpint(cf_classifier_prepare_train(&m, B, &err), ==, CF_OK);
  const int D = cfg.C * cfg.H * cfg.W;
  float *x = g_new(float, B * D);
  for (int i = 0; i < B * D; i++)
    x[i] = (float)cf_rng_uniform(&rng);
  int y[B] = {0, 2, 1};
  cf_classifier_train_step(&m, x, y, NULL);
  size_t P = m.params.total;
  float *grad = g_memdup2(m.params.grad, P * sizeof(float));
  double *num = g_new(double, P);
  double prob[3];
  double d2 = 0, n2 = 0;
  for (size_t i = 0; i < P; i++) {
    float v = m.params.value[i], h = 1e-2f;
    double L[2];
    for (int s = 0; s < 2; s++) {
      m.params.value[i] = s ? v - h : v + h;
      cf_graph_forward(m.train);
      L[s] = cf_softmax_xent(cf_graph_value(m.train, m.logits), y, B, cfg.n_classes, NULL, prob);
    }
    m.params.value[i] = v;
    num[i] = (L[0] - L[1]) / ((double)(float)(v + h) - (double)(float)(v - h));
    d2 += (grad[i] - num[i]) * (grad[i] - num[i]);
    n2 += num[i] * num[i];
  }
  double rel = sqrt(d2 / n2);
  g_test_message("classifier gradient (%d x %d): %zu parameters, relative error %.3g", side, side, P, rel);
  g_assert_cmpfloat(rel, <, 2e-3);
  g_free(grad);
  g_free(num);
  g_free(x);
  cf_classifier_clear(&m);
}

static void
test_gradient(void)
{
  check_gradient(8);
  check_gradient(6);
}

/* Horizontal (class 0) or vertical (class 1) bar of width 2 at a random
 * position, plus Gaussian noise of sd 0.3, on 12 x 12 images. */
static void
bars(CfRng *rng, int n, float *x, int *y)
{
  const int H = 12, W = 12;
  for (int b = 0; b < n; b++) {
    int cls = (int)cf_rng_below(rng, 2), pos = (int)cf_rng_below(rng, H - 1);
    y[b] = cls;
    float *img = x + (size_t)b * H * W;
    for (int i = 0; i < H; i++)
      for (int j = 0; j < W; j++) {
        int on = cls == 0 ? (i == pos || i == pos + 1) : (j == pos || j == pos + 1);
        img[i * W + j] = (float)(on + 0.3 * cf_rng_normal(rng));
      }
  }
}

static void
test_train_bars(void)
{
  enum { B = 32, N_TEST = 1000, D = 144 };
  CfClassifierConfig cfg = cf_classifier_default_config(1, 12, 12, 2);
  cfg.c1 = 4;
  cfg.c2 = 8;
  cfg.features = 16;
  CfClassifier m;
  CfError err;
  g_assert_cmpint(cf_classifier_init(&m, &cfg, &err), ==, CF_OK);
  CfRng rng;
  cf_rng_seed_stream(&rng, 5, 0);
  cf_classifier_randomize(&m, &rng);
  g_assert_cmpint(cf_classifier_prepare_train(&m, B, &err), ==, CF_OK);
  CfAdam opt;
  CfAdamConfig ac = cf_adam_default_config();
  g_assert_cmpint(cf_adam_init(&opt, m.params.total, &ac), ==, CF_OK);
  float x[B * D];
  int y[B];
  double loss = 0, acc = 0;
  for (int step = 0; step < 300; step++) {
    bars(&rng, B, x, y);
    loss = cf_classifier_train_step(&m, x, y, &acc);
    cf_adam_step(&opt, m.params.value, m.params.grad, 3e-3f);
  }
  g_test_message("bars: last batch loss %.4f, accuracy %.3f", loss, acc);

  /* held-out accuracy through the evaluator (chunk 7: a partial last chunk) */
  CfClassifierEval e;
  g_assert_cmpint(cf_classifier_eval_init(&e, &cfg, 7, &err), ==, CF_OK);
  cf_classifier_eval_load(&e, m.params.value);
  float *xt = g_new(float, N_TEST * D);
  int *yt = g_new(int, N_TEST), *pred = g_new(int, N_TEST);
  bars(&rng, N_TEST, xt, yt);
  cf_classifier_eval_run(&e, xt, N_TEST, NULL, pred, NULL);
  int hit = 0;
  for (int i = 0; i < N_TEST; i++)
    hit += pred[i] == yt[i];
  g_test_message("bars: held-out accuracy %.3f", (double)hit / N_TEST);
  g_assert_cmpfloat((double)hit / N_TEST, >, 0.95);

  /* evaluator outputs equal the training graph's for the same images */
  bars(&rng, B, x, y);
  cf_classifier_train_step(&m, x, y, NULL);
  const float *zt = cf_graph_value(m.train, m.logits), *ft = cf_graph_value(m.train, m.feats);
  float z[B * 2], f[B * 16];
  int cls[B];
  cf_classifier_eval_run(&e, x, B, z, cls, f);
  for (int i = 0; i < B * 2; i++)
    g_assert_cmpfloat(fabsf(z[i] - zt[i]), <=, 1e-5f * (1 + fabsf(zt[i])));
  for (int i = 0; i < B * 16; i++)
    g_assert_cmpfloat(fabsf(f[i] - ft[i]), <=, 1e-5f * (1 + fabsf(ft[i])));
  for (int b = 0; b < B; b++)
    g_assert_cmpint(cls[b], ==, cf_argmax(zt + 2 * b, 2));
  /* only some outputs requested */
  float z1[3 * 2];
  cf_classifier_eval_run(&e, x, 3, z1, NULL, NULL);
  g_assert_cmpmem(z1, sizeof z1, z, sizeof z1);

  g_free(xt);
  g_free(yt);
  g_free(pred);
  cf_adam_clear(&opt);
  cf_classifier_eval_clear(&e);
  cf_classifier_clear(&m);
}

static void
test_config_errors(void)
{
  CfClassifierConfig c = cf_classifier_default_config(1, 15, 14, 10);
  CfError err;
  g_assert_cmpint(cf_classifier_config_check(&c, &err), ==, CF_ERR_INVALID);
  g_assert_nonnull(strstr(err.msg, "even"));
  c = cf_classifier_default_config(1, 14, 14, 10);
  g_assert_cmpint(cf_classifier_config_check(&c, &err), ==, CF_OK);
  g_assert_cmpint(cf_classifier_flat_dim(&c), ==, c.c2 * 49);
  c.H = c.W = 28;
  g_assert_cmpint(cf_classifier_flat_dim(&c), ==, c.c2 * 49);
  c = cf_classifier_default_config(1, 28, 28, 1);
  g_assert_cmpint(cf_classifier_config_check(&c, &err), ==, CF_ERR_INVALID);
  c = cf_classifier_default_config(1, 28, 28, 10);
  g_assert_cmpint(cf_classifier_config_check(&c, &err), ==, CF_OK);
  CfClassifier m;
  g_assert_cmpint(cf_classifier_init(&m, &c, &err), ==, CF_OK);
  g_assert_cmpint(cf_classifier_prepare_train(&m, 0, &err), ==, CF_ERR_INVALID);
  cf_classifier_clear(&m);
}

/* Found by review while fuzzing (tests/fuzz, target checkpoint): the side
 * and width limits alone let a 146-byte classifier checkpoint ask for
 * 1024 x 1024 images with 64 channels, a 156 GB evaluation graph (and int
 * shapes that overflow from 4096 channels on). Sizes per image and the
 * parameter count are bounded now; cf_classifier_param_count gives the
 * parameter arena without allocating it. */
static void
test_config_limits(void)
{
  CfError err;
  CfClassifierConfig c = cf_classifier_default_config(1, 1024, 1024, 2);
  c.c1 = 64;
  g_assert_cmpint(cf_classifier_config_check(&c, &err), ==, CF_ERR_INVALID);
  g_assert_nonnull(strstr(err.msg, "67108864 values per image in a layer, more than the limit of 4194304"));
  g_assert_cmpuint(cf_classifier_param_count(&c), ==, 0);
  c.c1 = 4; /* 4 x 1024 x 1024: at the limit */
  c.c2 = 4;
  c.features = 8;
  g_assert_cmpint(cf_classifier_config_check(&c, &err), ==, CF_OK);
  c = cf_classifier_default_config(1, 512, 512, 2);
  c.c1 = 1;
  c.c2 = 64;
  c.features = 4096; /* fc: 4096 x (64 x 128 x 128) = 4.3e9 parameters */
  g_assert_cmpint(cf_classifier_config_check(&c, &err), ==, CF_ERR_INVALID);
  g_assert_nonnull(strstr(err.msg, "parameters, more than the limit of 67108864"));
  /* the count matches what the model allocates, padding included */
  const int sides[] = {28, 14, 6};
  for (size_t i = 0; i < G_N_ELEMENTS(sides); i++) {
    c = cf_classifier_default_config(2, sides[i], sides[i], 10);
    CfClassifierEval e;
    g_assert_cmpint(cf_classifier_eval_init(&e, &c, 1, &err), ==, CF_OK);
    g_assert_cmpuint(cf_classifier_param_count(&c), ==, e.params.total);
    cf_classifier_eval_clear(&e);
  }
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/classifier/xent", test_xent);
  g_test_add_func("/classifier/gradient", test_gradient);
  g_test_add_func("/classifier/train-bars", test_train_bars);
  g_test_add_func("/classifier/config-errors", test_config_errors);
  g_test_add_func("/classifier/config-limits", test_config_limits);
  return g_test_run();
}
