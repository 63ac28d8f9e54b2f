/* Tests for the cgauss strategy of core/ddpm: the null-space projector,
 * null-space training, the constrained sampler (every reverse step
 * conditioned with the constrained-Gaussian layer) against the exact
 * epsilon of a Gaussian on a plane, per-sample right-hand sides, and
 * conditioning inputs of the denoiser. */
#include <glib.h>
#include <math.h>
#include <string.h>

#include "cgauss.h"
#include "ddpm.h"
#include "optim.h"

/* The plane x0 + x1 + x2 = k in R^3 with the orthonormal null-space basis
 * u1 = (1,-1,0)/sqrt2, u2 = (1,1,-2)/sqrt6. Data: x0 = A^+ k + U c with
 * c ~ N(cm, C0) (2-D). */
static const double U[3][2] = {{0.70710678118654752, 0.40824829046386302},
                               {-0.70710678118654752, 0.40824829046386302},
                               {0.0, -0.81649658092772603}};
static const double CM[2] = {0.8, -0.3};
static const double C0[2][2] = {{0.25, 0.1}, {0.1, 0.5}};

typedef struct {
  const CfSchedule *s;
  double junk; /* row-space component added to the returned eps (must be ignored) */
  int calls;
} PlaneGauss;

/* Exact E[P_N eps | x_t] for the null-space forward process: in null
 * coordinates c_t = U^T x_t ~ N(sqrt(a) cm, a C0 + (1 - a) I), so
 * eps = U sqrt(1 - a) (a C0 + (1 - a) I)^{-1} (c_t - sqrt(a) cm). */
static void
plane_eps(void *user, const float *x_t, const int *t, int B, float *eps_out)
{
  PlaneGauss *g = user;
  g->calls++;
  for (int b = 0; b < B; b++) {
    double a = g->s->alpha_bar[t[b]];
    double S[2][2] = {{a * C0[0][0] + 1 - a, a * C0[0][1]}, {a * C0[1][0], a * C0[1][1] + 1 - a}};
    double det = S[0][0] * S[1][1] - S[0][1] * S[1][0];
    double inv[2][2] = {{S[1][1] / det, -S[0][1] / det}, {-S[1][0] / det, S[0][0] / det}};
    const float *x = x_t + (size_t)b * 3;
    double c[2] = {0, 0};
    for (int j = 0; j < 2; j++) {
      for (int i = 0; i < 3; i++)
        c[j] += U[i][j] * x[i];
      c[j] -= sqrt(a) * CM[j];
    }
    double e[2];
    for (int j = 0; j < 2; j++)
      e[j] = sqrt(1 - a) * (inv[j][0] * c[0] + inv[j][1] * c[1]);
    for (int i = 0; i < 3; i++)
      eps_out[(size_t)b * 3 + i] = (float)(U[i][0] * e[0] + U[i][1] * e[1] + g->junk);
  }
}

static void
plane_setup(CfCgauss *cg)
{
  double A[3] = {1, 1, 1}, bb[1] = {1.0};
  CfConstraint c;
  cf_constraint_init(&c);
  g_assert_cmpint(cf_constraint_set(&c, 1, 3, A, bb, NULL), ==, CF_OK);
  cf_cgauss_init(cg);
  cg->force_dense = true; /* the dense isotropic path (a sum would take the O(n) one) */
  CfError err = {0};
  if (cf_cgauss_setup(cg, &c, &err) != CF_OK)
    g_error("%s", err.msg);
  cf_constraint_clear(&c);
}

static void
test_nullspace_projector(void)
{
  const int m = 3, n = 7;
  double A[3 * 7], b[3] = {0};
  CfRng rng;
  cf_rng_seed(&rng, 4);
  for (int i = 0; i < m * n; i++)
    A[i] = cf_rng_normal(&rng);
  CfConstraint c;
  cf_constraint_init(&c);
  g_assert_cmpint(cf_constraint_set(&c, m, n, A, b, NULL), ==, CF_OK);
  float P[49];
  g_assert_cmpint(cf_nullspace_projector(&c, P, NULL), ==, CF_OK);
  double tr = 0, worst_sym = 0, worst_idem = 0, worst_ap = 0;
  for (int i = 0; i < n; i++) {
    tr += P[i * n + i];
    for (int j = 0; j < n; j++) {
      worst_sym = fmax(worst_sym, fabs(P[i * n + j] - P[j * n + i]));
      double pp = 0;
      for (int k = 0; k < n; k++)
        pp += (double)P[i * n + k] * P[k * n + j];
      worst_idem = fmax(worst_idem, fabs(pp - P[i * n + j]));
    }
  }
  for (int r = 0; r < m; r++)
    for (int j = 0; j < n; j++) {
      double ap = 0;
      for (int k = 0; k < n; k++)
        ap += A[r * n + k] * P[k * n + j];
      worst_ap = fmax(worst_ap, fabs(ap));
    }
  g_test_message("P_N: trace %.7f (want %d), |P - P^T| %.1e, |P^2 - P| %.1e, |A P| %.1e", tr, n - m, worst_sym,
                 worst_idem, worst_ap);
  g_assert_cmpfloat(fabs(tr - (n - m)), <, 1e-5);
  g_assert_cmpfloat(worst_sym, <, 1e-6);
  g_assert_cmpfloat(worst_idem, <, 1e-6);
  g_assert_cmpfloat(worst_ap, <, 1e-5);
  /* a rank-deficient A is refused */
  double Ad[6] = {1, 2, 3, 2, 4, 6}, bd[2] = {0, 0};
  CfConstraint d;
  cf_constraint_init(&d);
  g_assert_cmpint(cf_constraint_set(&d, 2, 3, Ad, bd, NULL), ==, CF_OK);
  CfError err = {0};
  g_assert_cmpint(cf_nullspace_projector(&d, P, &err), ==, CF_ERR_RANK);
  g_assert_nonnull(strstr(err.msg, "full row rank"));
  cf_constraint_clear(&c);
  cf_constraint_clear(&d);
}

/* Null coordinates, their moments, and the worst relative residual. */
static void
plane_stats(const float *x, int N, const float *k, int k_rows, double mean[2], double cov[2][2], double *resid)
{
  double s[2] = {0, 0}, ss[2][2] = {{0, 0}, {0, 0}};
  *resid = 0;
  for (int b = 0; b < N; b++) {
    const float *r = x + (size_t)b * 3;
    double kk = k[k_rows == 1 ? 0 : b];
    double ax = (double)r[0] + r[1] + r[2];
    double scale = fabs(r[0]) + fabs(r[1]) + fabs(r[2]) + fabs(kk);
    *resid = fmax(*resid, fabs(ax - kk) / scale);
    double c[2];
    for (int j = 0; j < 2; j++)
      c[j] = U[0][j] * r[0] + U[1][j] * r[1] + U[2][j] * r[2];
    for (int j = 0; j < 2; j++) {
      s[j] += c[j];
      for (int l = 0; l < 2; l++)
        ss[j][l] += c[j] * c[l];
    }
  }
  for (int j = 0; j < 2; j++)
    mean[j] = s[j] / N;
  for (int j = 0; j < 2; j++)
    for (int l = 0; l < 2; l++)
      cov[j][l] = (ss[j][l] - N * mean[j] * mean[l]) / (N - 1);
}

/* DDPM (T = 1000) with the exact null-space epsilon reproduces the data law
 * in the null space (5 standard errors) while every sample lies on its own
 * plane at round-off, for a shared and for a per-sample k; DDIM (50 steps)
 * is exact on the constraint too. The eps returned carries a large
 * row-space component that the sampler must project out. */
static void
test_constrained_sampler_gaussian(void)
{
  CfSchedule s;
  g_assert_cmpint(cf_schedule_init(&s, CF_SCHEDULE_LINEAR, 1000, NULL), ==, CF_OK);
  CfCgauss cg;
  plane_setup(&cg);
  const int N = 20000;
  float *out = g_new(float, (size_t)N * 3);
  float *kb = g_new(float, N);
  CfRng krng;
  cf_rng_seed(&krng, 77);
  for (int b = 0; b < N; b++)
    kb[b] = (float)(4.0 * cf_rng_uniform(&krng) - 2.0);
  const float k1 = 1.0f;
  struct {
    CfSamplerKind kind;
    int steps;
    float eta;
    bool per_sample;
  } cases[] = {{CF_SAMPLER_DDPM, 0, 0, false}, {CF_SAMPLER_DDPM, 0, 0, true}, {CF_SAMPLER_DDIM, 50, 0, true},
               {CF_SAMPLER_DDIM, 50, 1, false}};
  for (size_t c = 0; c < G_N_ELEMENTS(cases); c++) {
    CfSamplerConfig cfg = {cases[c].kind, cases[c].steps, cases[c].eta, 0.0f};
    PlaneGauss g = {&s, 3.0, 0};
    CfRng rng;
    cf_rng_seed(&rng, 500 + c);
    const float *k = cases[c].per_sample ? kb : &k1;
    int k_rows = cases[c].per_sample ? N : 1;
    CfError err = {0};
    CfStatus st = cf_ddpm_sample_constrained(&s, &cfg, 3, N, plane_eps, &g, &cg, k, k_rows, 1, NULL, NULL, &rng,
                                             out, NULL, NULL, NULL, NULL, &err);
    if (st != CF_OK)
      g_error("constrained sampler failed: %s", err.msg);
    g_assert_cmpint(g.calls, ==, cf_sampler_n_steps(&s, &cfg));
    double mean[2], cov[2][2], resid;
    plane_stats(out, N, k, k_rows, mean, cov, &resid);
    double z = 0;
    for (int j = 0; j < 2; j++) {
      z = fmax(z, fabs(mean[j] - CM[j]) / sqrt(C0[j][j] / N));
      for (int l = j; l < 2; l++)
        z = fmax(z, fabs(cov[j][l] - C0[j][l]) / sqrt((C0[j][j] * C0[l][l] + C0[j][l] * C0[j][l]) / N));
    }
    g_test_message("%s %d%s: null-space mean %.4f %.4f (%.2f %.2f) cov %.4f %.4f %.4f (%.2f %.2f %.2f); max %.2f "
                   "se; max relative residual %.2e",
                   cfg.kind == CF_SAMPLER_DDPM ? "DDPM" : "DDIM", cf_sampler_n_steps(&s, &cfg),
                   cases[c].per_sample ? " per-sample k" : "", mean[0], mean[1], CM[0], CM[1], cov[0][0], cov[0][1],
                   cov[1][1], C0[0][0], C0[0][1], C0[1][1], z, resid);
    g_assert_cmpfloat(resid, <, 1e-6);
    if (cfg.kind == CF_SAMPLER_DDPM) {
      g_assert_cmpfloat(z, <, 5.0);
    } else { /* DDIM 50: discretisation bias, loose moments */
      for (int j = 0; j < 2; j++) {
        g_assert_cmpfloat(fabs(mean[j] - CM[j]), <, 0.03);
        g_assert_cmpfloat(fabs(cov[j][j] - C0[j][j]), <, 0.3 * C0[j][j]);
      }
    }
  }
  g_free(out);
  g_free(kb);
  cf_cgauss_clear(&cg);
  cf_schedule_clear(&s);
}

/* x_T and the noise are paired with the unconstrained sampler: the
 * null-space part of the first x is the same draw. Checked through the
 * trajectory's first frame. Also: the hook sees x on A x = sqrt(abar) k. */
typedef struct {
  const CfSchedule *s;
  double worst;
} HookCheck;

static void
check_hook(void *user, float *x, int B, int t_next)
{
  HookCheck *h = user;
  double target = sqrt(h->s->alpha_bar[t_next]) * 1.0;
  for (int b = 0; b < B; b++) {
    double ax = (double)x[3 * b] + x[3 * b + 1] + x[3 * b + 2];
    h->worst = fmax(h->worst, fabs(ax - target) / (1 + fabs(x[3 * b]) + fabs(x[3 * b + 1]) + fabs(x[3 * b + 2])));
  }
}

static void
test_constrained_sampler_pairing_and_hook(void)
{
  CfSchedule s;
  g_assert_cmpint(cf_schedule_init(&s, CF_SCHEDULE_COSINE, 200, NULL), ==, CF_OK);
  CfCgauss cg;
  plane_setup(&cg);
  const int N = 16;
  CfSamplerConfig cfg = {CF_SAMPLER_DDIM, 20, 0.5f, 0.0f};
  int n_steps = cf_sampler_n_steps(&s, &cfg);
  float *traj = g_new(float, (size_t)(n_steps + 1) * N * 3);
  float out[16 * 3], xT[16 * 3];
  PlaneGauss g = {&s, 0.0, 0};
  CfRng rng, copy;
  cf_rng_seed(&rng, 9);
  copy = rng;
  cf_rng_fill_normal(&copy, xT, (size_t)N * 3);
  HookCheck h = {&s, 0};
  const float k1 = 1.0f;
  CfError err = {0};
  g_assert_cmpint(cf_ddpm_sample_constrained(&s, &cfg, 3, N, plane_eps, &g, &cg, &k1, 1, 1, check_hook, &h, &rng,
                                             out, traj, NULL, NULL, NULL, &err), ==, CF_OK);
  double worst = 0;
  for (int b = 0; b < N; b++)
    for (int j = 0; j < 2; j++) {
      double c0 = 0, c1 = 0;
      for (int i = 0; i < 3; i++) {
        c0 += U[i][j] * xT[b * 3 + i];
        c1 += U[i][j] * traj[b * 3 + i];
      }
      worst = fmax(worst, fabs(c0 - c1));
    }
  g_assert_cmpfloat(worst, <, 1e-5);
  g_assert_cmpfloat(h.worst, <, 1e-6);
  g_assert_cmpmem(out, sizeof out, traj + (size_t)n_steps * N * 3, sizeof out);
  g_free(traj);
  cf_cgauss_clear(&cg);
  cf_schedule_clear(&s);
}

static void
test_constrained_sampler_invalid(void)
{
  CfSchedule s;
  g_assert_cmpint(cf_schedule_init(&s, CF_SCHEDULE_LINEAR, 100, NULL), ==, CF_OK);
  CfCgauss cg;
  plane_setup(&cg);
  CfSamplerConfig cfg = {CF_SAMPLER_DDIM, 10, 0.0f, 0.0f};
  PlaneGauss g = {&s, 0.0, 0};
  float out[4 * 4], k[3] = {1, 1, 1};
  CfRng rng;
  cf_rng_seed(&rng, 1);
  CfError err = {0};
  /* dimension mismatch */
  g_assert_cmpint(cf_ddpm_sample_constrained(&s, &cfg, 4, 4, plane_eps, &g, &cg, NULL, 0, 0, NULL, NULL, &rng, out,
                                             NULL, NULL, NULL, NULL, &err), ==, CF_ERR_MISMATCH);
  g_assert_nonnull(strstr(err.msg, "3 columns"));
  /* k with 3 rows for 4 samples */
  memset(&err, 0, sizeof err);
  g_assert_cmpint(cf_ddpm_sample_constrained(&s, &cfg, 3, 4, plane_eps, &g, &cg, k, 3, 1, NULL, NULL, &rng, out,
                                             NULL, NULL, NULL, NULL, &err), ==, CF_ERR_MISMATCH);
  g_assert_nonnull(strstr(err.msg, "1 or 4 rows"));
  /* k of the wrong length (2 columns for a 1-row constraint): the layer says so */
  memset(&err, 0, sizeof err);
  g_assert_cmpint(cf_ddpm_sample_constrained(&s, &cfg, 3, 4, plane_eps, &g, &cg, k, 1, 2, NULL, NULL, &rng, out,
                                             NULL, NULL, NULL, NULL, &err), ==, CF_ERR_SHAPE);
  g_assert_nonnull(strstr(err.msg, "k has 2 entries"));
  /* non-finite k names the sample */
  float kn[4] = {1, 1, NAN, 1};
  memset(&err, 0, sizeof err);
  CfStatus st = cf_ddpm_sample_constrained(&s, &cfg, 3, 4, plane_eps, &g, &cg, kn, 4, 1, NULL, NULL, &rng, out,
                                           NULL, NULL, NULL, NULL, &err);
  g_assert_cmpint(st, !=, CF_OK);
  g_test_message("NaN k: %s", err.msg);
  g_assert_nonnull(strstr(err.msg, "sample 2"));
  cf_cgauss_clear(&cg);
  cf_schedule_clear(&s);
}

/* Null-space training: the noise is P_N eps, x_t stays on A x = sqrt(abar) k
 * for data on A x = k, the loss is mean ||P_N eps_theta - P_N eps||^2 / dim,
 * and training on a Gaussian on the plane lowers it well below the loss of
 * predicting zero (about (dim - m) / dim = 2/3). */
static void
test_nullspace_training(void)
{
  CfDenoiserConfig dc = {3, 64, 2, 16, 0};
  CfDdpm m;
  CfError err = {0};
  g_assert_cmpint(cf_ddpm_init(&m, &dc, CF_SCHEDULE_LINEAR, 200, &err), ==, CF_OK);
  CfRng rng;
  cf_rng_seed(&rng, 5);
  cf_ddpm_randomize(&m, &rng);
  double A[3] = {1, 1, 1}, bb[1] = {1.0};
  CfConstraint c;
  cf_constraint_init(&c);
  g_assert_cmpint(cf_constraint_set(&c, 1, 3, A, bb, NULL), ==, CF_OK);
  float P[9];
  g_assert_cmpint(cf_nullspace_projector(&c, P, &err), ==, CF_OK);
  g_assert_cmpint(cf_ddpm_set_nullspace(&m, P, &err), ==, CF_OK);
  const int B = 128;
  g_assert_cmpint(cf_ddpm_prepare_train(&m, B, &err), ==, CF_OK);
  float *x0 = g_new(float, B * 3);
  CfAdam opt;
  CfAdamConfig ac = cf_adam_default_config();
  g_assert_cmpint(cf_adam_init(&opt, m.params.total, &ac), ==, CF_OK);
  double first = 0, last = 0;
  const int steps = 1500;
  for (int it = 0; it < steps; it++) {
    for (int b = 0; b < B; b++) { /* A^+ k + U c, c ~ N(CM, C0) (Cholesky of C0) */
      double z0 = cf_rng_normal(&rng), z1 = cf_rng_normal(&rng);
      double l00 = sqrt(C0[0][0]), l10 = C0[1][0] / l00, l11 = sqrt(C0[1][1] - l10 * l10);
      double cc[2] = {CM[0] + l00 * z0, CM[1] + l10 * z0 + l11 * z1};
      for (int i = 0; i < 3; i++)
        x0[b * 3 + i] = (float)(1.0 / 3.0 + U[i][0] * cc[0] + U[i][1] * cc[1]);
    }
    float loss = cf_ddpm_train_step(&m, x0, &rng);
    if (it == 0) {
      const float *xt = cf_graph_value(m.train, m.in_x), *tt = cf_graph_value(m.train, m.in_t);
      const float *ep = cf_graph_value(m.train, m.in_eps), *pred = cf_graph_value(m.train, m.out_eps);
      double mse = 0;
      for (int b = 0; b < B; b++) {
        double a = m.sched.alpha_bar[(int)tt[b]];
        double se = (double)ep[b * 3] + ep[b * 3 + 1] + ep[b * 3 + 2];
        double sx = (double)xt[b * 3] + xt[b * 3 + 1] + xt[b * 3 + 2];
        g_assert_cmpfloat(fabs(se), <, 1e-5);
        g_assert_cmpfloat(fabs(sx - sqrt(a)), <, 1e-5);
        double mp = ((double)pred[b * 3] + pred[b * 3 + 1] + pred[b * 3 + 2]) / 3;
        for (int i = 0; i < 3; i++) {
          double d = pred[b * 3 + i] - mp - ep[b * 3 + i];
          mse += d * d;
        }
      }
      mse /= 3 * B;
      g_assert_cmpfloat(fabs(loss - mse), <, 1e-5 * (1 + mse));
    }
    if (it < 50)
      first += loss / 50;
    if (it >= steps - 100)
      last += loss / 100;
    cf_adam_step(&opt, m.params.value, m.params.grad, 2e-3f);
  }
  g_test_message("null-space training loss: first 50 steps %.4f, last 100 %.4f", first, last);
  /* For a Gaussian the best eps predictor leaves the loss at
   * E_t[(1 - a) tr((aC0 + (1-a)I)^{-1} a C0)] / 3, well below 2/3 only where
   * signal exists; require a clear improvement over the start. */
  g_assert_cmpfloat(last, <, 0.8 * first);
  g_free(x0);
  cf_adam_clear(&opt);
  cf_constraint_clear(&c);
  cf_ddpm_clear(&m);
}

/* Conditioning inputs: the training graph and the evaluator agree for the
 * same (x_t, cond, t), in chunks, and the output depends on cond; for the
 * MLP ([x_t | cond | temb]) and the U-Net (cond into the time features and
 * an extra input plane). */
static void
check_conditioning(const CfDenoiserConfig *dc)
{
  const int B = 10, d = dc->dim, nc = dc->cond_dim;
  CfDdpm m;
  CfError err = {0};
  g_assert_cmpint(cf_ddpm_init(&m, dc, CF_SCHEDULE_LINEAR, 100, &err), ==, CF_OK);
  CfRng rng;
  cf_rng_seed(&rng, 12);
  cf_ddpm_randomize(&m, &rng);
  /* the U-Net's output conv starts at zero: perturb so eps depends on its inputs */
  for (size_t i = 0; i < m.params.total; i++)
    m.params.value[i] += 0.01f * (float)cf_rng_normal(&rng);
  g_assert_cmpint(cf_ddpm_prepare_train(&m, B, &err), ==, CF_OK);
  float *x0 = g_new(float, B * d), *cond = g_new(float, B * nc), *cond2 = g_new(float, B * nc);
  float *eps = g_new(float, B * d), *eps2 = g_new(float, B * d);
  cf_rng_fill_normal(&rng, x0, (size_t)B * d);
  cf_rng_fill_normal(&rng, cond, (size_t)B * nc);
  (void)cf_ddpm_train_step_cond(&m, x0, cond, &rng);
  g_assert_cmpmem(cf_graph_value(m.train, m.in_cond), sizeof(float) * B * nc, cond, sizeof(float) * B * nc);
  const float *xt = cf_graph_value(m.train, m.in_x), *tt = cf_graph_value(m.train, m.in_t);
  int t[10];
  for (int b = 0; b < B; b++)
    t[b] = (int)tt[b];
  CfDdpmEval ev;
  g_assert_cmpint(cf_ddpm_eval_init(&ev, &m, 4, &err), ==, CF_OK);
  ev.cond = cond;
  cf_ddpm_eval_eps(&ev, xt, t, B, eps);
  const float *pred = cf_graph_value(m.train, m.out_eps);
  for (int i = 0; i < B * d; i++)
    g_assert_cmpfloat(fabs(eps[i] - pred[i]), <=, 1e-5 * (1 + fabs(pred[i])));
  for (int i = 0; i < B * nc; i++)
    cond2[i] = cond[i] + 1.0f;
  ev.cond = cond2;
  cf_ddpm_eval_eps(&ev, xt, t, B, eps2);
  double diff = 0;
  for (int i = 0; i < B * d; i++)
    diff += fabs(eps2[i] - eps[i]);
  g_assert_cmpfloat(diff, >, 1e-3);
  g_free(x0);
  g_free(cond);
  g_free(cond2);
  g_free(eps);
  g_free(eps2);
  cf_ddpm_eval_clear(&ev);
  cf_ddpm_clear(&m);
}

static void
test_conditioning(void)
{
  CfDenoiserConfig mlp = {2, 16, 2, 8, 3};
  check_conditioning(&mlp);
  CfDenoiserConfig unet = {.dim = 64, .temb_dim = 16, .cond_dim = 4, .arch = CF_ARCH_UNET, .img_c = 1, .img_h = 8,
                           .img_w = 8, .unet_base = 8, .unet_levels = 2};
  check_conditioning(&unet);
}


/* The U-Net denoiser (arch CF_ARCH_UNET): bad geometry is refused; the
 * training step runs with a null-space projector (a sum constraint on
 * the pixels); the evaluator agrees with the training graph. */
static void
test_unet_denoiser(void)
{
  CfDenoiserConfig dc = {.dim = 64, .temb_dim = 16, .arch = CF_ARCH_UNET, .img_c = 1, .img_h = 8, .img_w = 8,
                         .unet_base = 8, .unet_levels = 2};
  CfDdpm m;
  CfError err = {0};
  CfDenoiserConfig bad = dc;
  bad.img_h = 7;
  g_assert_cmpint(cf_ddpm_init(&m, &bad, CF_SCHEDULE_LINEAR, 100, &err), ==, CF_ERR_INVALID);
  g_assert_nonnull(strstr(err.msg, "does not match dimension"));
  bad = dc;
  bad.img_h = 4;
  bad.img_w = 16;
  bad.unet_levels = 3;
  g_assert_cmpint(cf_ddpm_init(&m, &bad, CF_SCHEDULE_LINEAR, 100, &err), ==, CF_OK);
  cf_ddpm_clear(&m);
  bad = dc;
  bad.cond_dim = -1;
  g_assert_cmpint(cf_ddpm_init(&m, &bad, CF_SCHEDULE_LINEAR, 100, &err), ==, CF_ERR_INVALID);
  g_assert_cmpint(cf_ddpm_init(&m, &dc, CF_SCHEDULE_LINEAR, 100, &err), ==, CF_OK);
  CfRng rng;
  cf_rng_seed(&rng, 3);
  cf_ddpm_randomize(&m, &rng);
  double A[64], b[1] = {0};
  for (int i = 0; i < 64; i++)
    A[i] = 1.0;
  CfConstraint c;
  cf_constraint_init(&c);
  g_assert_cmpint(cf_constraint_set(&c, 1, 64, A, b, NULL), ==, CF_OK);
  float *P = g_new(float, 64 * 64);
  g_assert_cmpint(cf_nullspace_projector(&c, P, &err), ==, CF_OK);
  g_assert_cmpint(cf_ddpm_set_nullspace(&m, P, &err), ==, CF_OK);
  const int B = 4;
  g_assert_cmpint(cf_ddpm_prepare_train(&m, B, &err), ==, CF_OK);
  float x0[4 * 64];
  cf_rng_fill_normal(&rng, x0, 4 * 64);
  float loss = cf_ddpm_train_step(&m, x0, &rng);
  g_assert_true(isfinite(loss));
  g_assert_cmpfloat(cf_ddpm_train_flops(&m, B), >, 0.0);
  /* perturb the zero-initialised output conv so eps is not identically 0 */
  for (size_t i = 0; i < m.params.total; i++)
    m.params.value[i] += 0.01f * (float)cf_rng_normal(&rng);
  (void)cf_ddpm_train_step(&m, x0, &rng);
  const float *xt = cf_graph_value(m.train, m.in_x), *tt = cf_graph_value(m.train, m.in_t);
  const float *pred = cf_graph_value(m.train, m.out_eps);
  int t[4];
  for (int i = 0; i < B; i++)
    t[i] = (int)tt[i];
  CfDdpmEval ev;
  g_assert_cmpint(cf_ddpm_eval_init(&ev, &m, 3, &err), ==, CF_OK);
  float eps[4 * 64];
  cf_ddpm_eval_eps(&ev, xt, t, B, eps);
  double worst = 0, mag = 0;
  for (int i = 0; i < 4 * 64; i++) {
    worst = fmax(worst, fabs(eps[i] - pred[i]));
    mag = fmax(mag, fabs(pred[i]));
  }
  g_assert_cmpfloat(mag, >, 1e-4);
  g_assert_cmpfloat(worst, <=, 1e-4 * (1 + mag));
  cf_ddpm_eval_clear(&ev);
  g_free(P);
  cf_constraint_clear(&c);
  cf_ddpm_clear(&m);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/ddpm-cgauss/nullspace-projector", test_nullspace_projector);
  g_test_add_func("/ddpm-cgauss/sampler-gaussian", test_constrained_sampler_gaussian);
  g_test_add_func("/ddpm-cgauss/sampler-pairing-hook", test_constrained_sampler_pairing_and_hook);
  g_test_add_func("/ddpm-cgauss/sampler-invalid", test_constrained_sampler_invalid);
  g_test_add_func("/ddpm-cgauss/nullspace-training", test_nullspace_training);
  g_test_add_func("/ddpm-cgauss/conditioning", test_conditioning);
  g_test_add_func("/ddpm-cgauss/unet-denoiser", test_unet_denoiser);
  return g_test_run();
}
