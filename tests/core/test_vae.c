/* Tests for core/vae: gradients of the training loss (all strategies) by
 * central differences, KL closed form vs Monte Carlo, short training runs on
 * 3-D data on x0 + x1 + x2 = 1 (loss decreases, constrained samples satisfy
 * the constraint to round-off), importance-weighted log-likelihood vs ELBO,
 * and bad input. */
#include <glib.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "optim.h"
#include "vae.h"

static const CfVaeStrategy all_strategies[] = {CF_VAE_NONE, CF_VAE_PROJECTION, CF_VAE_CONSTRAINED_LAYER,
                                                CF_VAE_CGAUSS};

static void
assert_error(CfStatus st, const CfError *err, CfStatus want, const char *needle)
{
  g_assert_cmpint(st, ==, want);
  g_assert_cmpint(err->code, ==, want);
  g_assert_cmpuint(strlen(err->msg), >, 0);
  if (needle && !strstr(err->msg, needle))
    g_error("error message \"%s\" does not mention \"%s\"", err->msg, needle);
}

/* x0 + x1 + x2 = 1 */
static void
sum_constraint(CfConstraint *c)
{
  const double A[3] = {1, 1, 1}, b[1] = {1};
  CfError err;
  cf_constraint_init(c);
  g_assert_cmpint(cf_constraint_set(c, 1, 3, A, b, &err), ==, CF_OK);
}

/* Mixture of three blobs (centres at the unit vectors) on the plane
 * x0 + x1 + x2 = 1, isotropic in-plane noise sd 0.1. */
static void
make_data(float *x, int B, CfRng *rng)
{
  const double u1[3] = {1 / sqrt(2.0), -1 / sqrt(2.0), 0};
  const double u2[3] = {1 / sqrt(6.0), 1 / sqrt(6.0), -2 / sqrt(6.0)};
  for (int b = 0; b < B; b++) {
    int j = (int)cf_rng_below(rng, 3);
    double a = 0.1 * cf_rng_normal(rng), c = 0.1 * cf_rng_normal(rng);
    for (int i = 0; i < 3; i++)
      x[b * 3 + i] = (float)((i == j ? 1.0 : 0.0) + a * u1[i] + c * u2[i]);
  }
}

static double
max_residual(const float *x, int B)
{
  double r = 0.0;
  for (int b = 0; b < B; b++)
    r = fmax(r, fabs((double)x[b * 3] + x[b * 3 + 1] + x[b * 3 + 2] - 1.0));
  return r;
}

static void
make_vae(CfVae *v, CfVaeStrategy s, int latent, int width, int depth, uint64_t seed)
{
  CfVaeConfig cfg = cf_vae_default_config(3);
  cfg.latent = latent;
  cfg.width = width;
  cfg.depth = depth;
  cfg.strategy = s;
  CfError err;
  g_assert_cmpint(cf_vae_init(v, &cfg, &err), ==, CF_OK);
  CfRng rng;
  cf_rng_seed(&rng, seed);
  cf_vae_randomize(v, &rng);
  CfConstraint c;
  sum_constraint(&c);
  g_assert_cmpint(cf_vae_set_constraint(v, &c, &err), ==, CF_OK);
  cf_constraint_clear(&c);
}

/* ---- gradient check ------------------------------------------------------- */

static void
test_gradcheck(void)
{
  for (size_t si = 0; si < G_N_ELEMENTS(all_strategies); si++) {
    CfVaeStrategy s = all_strategies[si];
    CfVae v;
    make_vae(&v, s, 2, 8, 1, 11);
    const int B = 4;
    CfError err;
    g_assert_cmpint(cf_vae_prepare_train(&v, B, &err), ==, CF_OK);
    float x[4 * 3];
    CfRng drng;
    cf_rng_seed(&drng, 5);
    make_data(x, B, &drng);
    CfRng rng0;
    cf_rng_seed(&rng0, 77);
    CfRng rng = rng0;
    double loss0;
    g_assert_cmpint(cf_vae_train_step(&v, x, &rng, &loss0, &err), ==, CF_OK);
    size_t P = v.params.total;
    float *grad = g_new(float, P);
    memcpy(grad, v.params.grad, P * sizeof(float));
    int checked = 0, bad = 0;
    double worst = 0.0;
    for (size_t k = 0; k < 24; k++) {
      size_t idx = (k * 7919 + 13) % P;
      /* Skip the unused variance head under CL (gradient exactly 0). */
      float keep = v.params.value[idx];
      const float h = 2e-3f;
      double lp, lm;
      v.params.value[idx] = keep + h;
      rng = rng0;
      g_assert_cmpint(cf_vae_train_step(&v, x, &rng, &lp, &err), ==, CF_OK);
      v.params.value[idx] = keep - h;
      rng = rng0;
      g_assert_cmpint(cf_vae_train_step(&v, x, &rng, &lm, &err), ==, CF_OK);
      v.params.value[idx] = keep;
      double fd = (lp - lm) / (2.0 * h);
      double an = grad[idx];
      double e = fabs(fd - an) / (fabs(fd) + fabs(an) + 1e-2);
      worst = fmax(worst, e);
      if (e > 3e-2)
        bad++;
      checked++;
    }
    g_test_message("gradcheck %s: loss %.4f, %d params, worst rel. error %.2e, %d above 3e-2",
                   cf_vae_strategy_name(s), loss0, checked, worst, bad);
    /* CL's L1 has kinks: allow one parameter to straddle one. */
    g_assert_cmpint(bad, <=, s == CF_VAE_CONSTRAINED_LAYER ? 1 : 0);
    g_free(grad);
    cf_vae_clear(&v);
  }
}

/* ---- KL ------------------------------------------------------------------- */

static void
test_kl_monte_carlo(void)
{
  const int d = 4;
  const float mu[4] = {0.5f, -1.0f, 0.0f, 2.0f};
  const float lv[4] = {-1.0f, 0.3f, 0.0f, -2.0f};
  double kl = cf_vae_kl_std_normal(mu, lv, d);
  CfRng rng;
  cf_rng_seed(&rng, 3);
  const int N = 200000;
  double s = 0.0, s2 = 0.0;
  for (int i = 0; i < N; i++) {
    double lr = 0.0;
    for (int j = 0; j < d; j++) {
      double e = cf_rng_normal(&rng);
      double z = mu[j] + exp(0.5 * lv[j]) * e;
      lr += -0.5 * (e * e + lv[j]) + 0.5 * z * z;
    }
    s += lr;
    s2 += lr * lr;
  }
  double m = s / N, se = sqrt((s2 / N - m * m) / N);
  g_test_message("KL closed form %.5f, Monte Carlo %.5f +- %.5f", kl, m, se);
  g_assert_cmpfloat(fabs(kl - m), <, 4.0 * se);
  const float z0[2] = {0, 0};
  g_assert_cmpfloat(fabs(cf_vae_kl_std_normal(z0, z0, 2)), <, 1e-15);
}

/* ---- training ------------------------------------------------------------- */

typedef struct {
  double first, last, resid, mean_viol;
} TrainResult;

static void
train_and_sample(CfVae *v, int steps, TrainResult *res)
{
  const int B = 64;
  CfError err;
  g_assert_cmpint(cf_vae_prepare_train(v, B, &err), ==, CF_OK);
  CfAdam opt;
  CfAdamConfig acfg = cf_adam_default_config();
  g_assert_cmpint(cf_adam_init(&opt, v->params.total, &acfg), ==, CF_OK);
  CfRng drng, rng;
  cf_rng_seed_stream(&drng, 2024, 1);
  cf_rng_seed_stream(&rng, 2024, 2);
  float *x = g_new(float, B * 3);
  double first = 0.0, last = 0.0;
  const int win = 30;
  for (int t = 0; t < steps; t++) {
    make_data(x, B, &drng);
    double loss;
    CfStatus st = cf_vae_train_step(v, x, &rng, &loss, &err);
    if (st != CF_OK)
      g_error("step %d: %s", t, err.msg);
    float sc = cf_clip_scale(cf_grad_norm(v->params.grad, v->params.total), 10.0);
    cf_adam_step_scaled(&opt, v->params.value, v->params.grad, 3e-3f, sc);
    if (t < win)
      first += loss / win;
    if (t >= steps - win)
      last += loss / win;
  }
  const int S = 500;
  float *smp = g_new(float, S * 3);
  g_assert_cmpint(cf_vae_sample(v, S, &rng, smp, NULL, &err), ==, CF_OK);
  g_assert_true(cf_all_finite(smp, S * 3));
  res->first = first;
  res->last = last;
  res->resid = max_residual(smp, S);
  double mv = 0.0;
  for (int b = 0; b < S; b++)
    mv += fabs((double)smp[b * 3] + smp[b * 3 + 1] + smp[b * 3 + 2] - 1.0) / S;
  res->mean_viol = mv;
  g_free(smp);
  g_free(x);
  cf_adam_clear(&opt);
}

static void
check_iw(CfVae *v)
{
  const int B = 256;
  float *x = g_new(float, B * 3);
  CfRng drng, rng;
  cf_rng_seed_stream(&drng, 99, 1);
  cf_rng_seed_stream(&rng, 99, 2);
  make_data(x, B, &drng);
  double *elbo = g_new(double, B), *rec = g_new(double, B), *iw = g_new(double, B);
  CfError err;
  /* average the single-sample ELBO over 20 draws */
  double me = 0.0, mr = 0.0;
  for (int r = 0; r < 20; r++) {
    g_assert_cmpint(cf_vae_elbo(v, x, B, &rng, elbo, rec, &err), ==, CF_OK);
    for (int b = 0; b < B; b++) {
      me += elbo[b] / (20.0 * B);
      mr += rec[b] / (20.0 * B);
    }
  }
  const int Ks[3] = {1, 10, 200};
  double miw[3];
  for (int i = 0; i < 3; i++) {
    g_assert_cmpint(cf_vae_iw_loglik(v, x, B, Ks[i], &rng, iw, &err), ==, CF_OK);
    miw[i] = 0.0;
    for (int b = 0; b < B; b++)
      miw[i] += iw[b] / B;
  }
  g_test_message("%s: ELBO %.4f (recon %.4f), IW-LL K=1 %.4f, K=10 %.4f, K=200 %.4f",
                 cf_vae_strategy_name(v->cfg.strategy), me, mr, miw[0], miw[1], miw[2]);
  /* K = 1 is an ELBO estimate: same mean up to Monte Carlo noise */
  g_assert_cmpfloat(fabs(miw[0] - me), <, 0.1 * (1.0 + fabs(me)));
  g_assert_cmpfloat(miw[2], >=, me);
  g_assert_cmpfloat(miw[1], >=, miw[0] - 0.02);
  g_assert_cmpfloat(miw[2], >=, miw[1] - 0.02);
  g_free(x);
  g_free(elbo);
  g_free(rec);
  g_free(iw);
}

static void
test_train(gconstpointer data)
{
  CfVaeStrategy s = (CfVaeStrategy)GPOINTER_TO_INT(data);
  CfVae v;
  make_vae(&v, s, 2, 32, 2, 7);
  TrainResult r;
  train_and_sample(&v, 1500, &r);
  g_test_message("%s: loss first %.4f -> last %.4f; samples: max |A x - k| %.3e, mean %.3e",
                 cf_vae_strategy_name(s), r.first, r.last, r.resid, r.mean_viol);
  /* CL (L1 with unit scale + KL) mostly collapses to the mean: a smaller drop */
  g_assert_cmpfloat(r.last, <, r.first - 0.1 * fabs(r.first));
  if (s == CF_VAE_NONE)
    g_assert_cmpfloat(r.mean_viol, >, 1e-3);
  else
    g_assert_cmpfloat(r.resid, <, 2e-6);
  if (s == CF_VAE_NONE || s == CF_VAE_CGAUSS)
    check_iw(&v);
  cf_vae_clear(&v);
}

/* ---- dense constraint (two rows, the cgauss dense path) -------------------- */

static void
test_cgauss_dense(void)
{
  const int n = 4, B = 8;
  const double A[8] = {1, 2, 0, 1, 0, 1, 1, -1}, bb[2] = {1, 0.5};
  CfError err;
  CfConstraint c;
  cf_constraint_init(&c);
  g_assert_cmpint(cf_constraint_set(&c, 2, n, A, bb, &err), ==, CF_OK);
  CfProjector pj;
  cf_projector_init(&pj);
  g_assert_cmpint(cf_projector_setup(&pj, &c, &err), ==, CF_OK);
  CfRng rng;
  cf_rng_seed(&rng, 8);
  float x[8 * 4];
  cf_rng_fill_normal(&rng, x, (size_t)B * n);
  cf_project(&pj, x, B);
  CfVaeConfig cfg = cf_vae_default_config(n);
  cfg.latent = 2;
  cfg.width = 8;
  cfg.depth = 1;
  cfg.strategy = CF_VAE_CGAUSS;
  CfVae v;
  g_assert_cmpint(cf_vae_init(&v, &cfg, &err), ==, CF_OK);
  cf_vae_randomize(&v, &rng);
  g_assert_cmpint(cf_vae_set_constraint(&v, &c, &err), ==, CF_OK);
  g_assert_cmpint(v.cg.path, ==, CF_CGAUSS_DENSE);
  g_assert_cmpint(cf_vae_prepare_train(&v, B, &err), ==, CF_OK);
  CfRng rng0 = rng, r;
  double loss0;
  r = rng0;
  g_assert_cmpint(cf_vae_train_step(&v, x, &r, &loss0, &err), ==, CF_OK);
  size_t P = v.params.total;
  float *grad = g_new(float, P);
  memcpy(grad, v.params.grad, P * sizeof(float));
  double worst = 0.0;
  for (size_t k = 0; k < 16; k++) {
    size_t idx = (k * 104729 + 5) % P;
    float keep = v.params.value[idx];
    const float h = 2e-3f;
    double lp, lm;
    v.params.value[idx] = keep + h;
    r = rng0;
    g_assert_cmpint(cf_vae_train_step(&v, x, &r, &lp, &err), ==, CF_OK);
    v.params.value[idx] = keep - h;
    r = rng0;
    g_assert_cmpint(cf_vae_train_step(&v, x, &r, &lm, &err), ==, CF_OK);
    v.params.value[idx] = keep;
    double fd = (lp - lm) / (2.0 * h);
    worst = fmax(worst, fabs(fd - grad[idx]) / (fabs(fd) + fabs(grad[idx]) + 1e-2));
  }
  float smp[64 * 4];
  g_assert_cmpint(cf_vae_sample(&v, 64, &rng, smp, NULL, &err), ==, CF_OK);
  double res = 0.0;
  g_assert_cmpint(cf_vae_elbo(&v, x, B, &rng, NULL, NULL, &err), ==, CF_OK);
  double linf[64];
  cf_constraint_violation(&c, smp, 64, NULL, linf);
  for (int b = 0; b < 64; b++)
    res = fmax(res, linf[b]);
  g_test_message("cgauss dense (m=2, n=4): loss %.4f, gradcheck worst rel. error %.2e, sample max |A x - k| %.3e",
                 loss0, worst, res);
  g_assert_cmpfloat(worst, <, 3e-2);
  g_assert_cmpfloat(res, <, 1e-5);
  g_free(grad);
  cf_vae_clear(&v);
  cf_projector_clear(&pj);
  cf_constraint_clear(&c);
}

/* ---- bad input ------------------------------------------------------------ */

static void
test_bad_input(void)
{
  CfError err;
  CfVae v;
  CfVaeConfig cfg = cf_vae_default_config(3);
  cfg.strategy = CF_VAE_CGAUSS;
  g_assert_cmpint(cf_vae_init(&v, &cfg, &err), ==, CF_OK);
  CfRng rng;
  cf_rng_seed(&rng, 1);
  cf_vae_randomize(&v, &rng);
  g_assert_cmpint(cf_vae_prepare_train(&v, 2, &err), ==, CF_OK);
  float x[6] = {1, 0, 0, 0, 0.5f, 0.5f};
  double loss;
  /* no constraint */
  assert_error(cf_vae_train_step(&v, x, &rng, &loss, &err), &err, CF_ERR_INVALID, "constraint");
  /* wrong dimension */
  CfConstraint c4;
  cf_constraint_init(&c4);
  const double A4[4] = {1, 1, 1, 1}, b4[1] = {1};
  g_assert_cmpint(cf_constraint_set(&c4, 1, 4, A4, b4, &err), ==, CF_OK);
  assert_error(cf_vae_set_constraint(&v, &c4, &err), &err, CF_ERR_SHAPE, "dimension");
  cf_constraint_clear(&c4);
  CfConstraint c;
  sum_constraint(&c);
  g_assert_cmpint(cf_vae_set_constraint(&v, &c, &err), ==, CF_OK);
  g_assert_cmpint(cf_vae_train_step(&v, x, &rng, &loss, &err), ==, CF_OK);
  g_assert_true(isfinite(loss));
  /* NaN in data */
  x[4] = NAN;
  assert_error(cf_vae_train_step(&v, x, &rng, &loss, &err), &err, CF_ERR_NUMERIC, "row 1, coordinate 1");
  double out[2];
  assert_error(cf_vae_elbo(&v, x, 2, &rng, out, NULL, &err), &err, CF_ERR_NUMERIC, "NaN");
  assert_error(cf_vae_iw_loglik(&v, x, 2, 4, &rng, out, &err), &err, CF_ERR_NUMERIC, "NaN");
  /* data off the constraint (cgauss density lives on the subspace) */
  x[4] = 0.9f;
  assert_error(cf_vae_train_step(&v, x, &rng, &loss, &err), &err, CF_ERR_INVALID, "violates");
  /* invalid config / arguments */
  CfVae w;
  CfVaeConfig bad = cf_vae_default_config(0);
  assert_error(cf_vae_init(&w, &bad, &err), &err, CF_ERR_INVALID, "n, latent");
  cf_vae_clear(&w);
  assert_error(cf_vae_iw_loglik(&v, x, 2, 0, &rng, out, &err), &err, CF_ERR_INVALID, "K");
  float smp[3];
  assert_error(cf_vae_sample(&v, 0, &rng, smp, NULL, &err), &err, CF_ERR_INVALID, "samples");
  cf_constraint_clear(&c);
  cf_vae_clear(&v);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/vae/gradcheck", test_gradcheck);
  g_test_add_func("/vae/kl-monte-carlo", test_kl_monte_carlo);
  for (size_t i = 0; i < G_N_ELEMENTS(all_strategies); i++) {
    char path[64];
    snprintf(path, sizeof path, "/vae/train/%s", cf_vae_strategy_name(all_strategies[i]));
    g_test_add_data_func(path, GINT_TO_POINTER((int)all_strategies[i]), test_train);
  }
  g_test_add_func("/vae/cgauss-dense", test_cgauss_dense);
  g_test_add_func("/vae/bad-input", test_bad_input);
  return g_test_run();
}
