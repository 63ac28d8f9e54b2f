/* Tests for core/ddpm: schedules, samplers against the exact epsilon of a
 * Gaussian, sampler plumbing (trajectory, hook, abort, validation), and the
 * MLP denoiser (training step, determinism, evaluator, sample quality). */
#include <glib.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "ddpm.h"
#include "optim.h"

/* ---- helpers --------------------------------------------------------------- */

static void
assert_error(CfStatus st, const CfError *err, CfStatus want, const char *needle)
{
  g_assert_cmpint(st, ==, want);
  g_assert_cmpint(err->code, ==, want);
  g_assert_cmpuint(strlen(err->msg), >, 0);
  if (needle && !strstr(err->msg, needle))
    g_error("error message \"%s\" does not mention \"%s\"", err->msg, needle);
}

/* ---- schedules ------------------------------------------------------------- */

static void
check_abar_monotone(const CfSchedule *s)
{
  g_assert_cmpfloat(s->beta[0], ==, 0.0);
  g_assert_cmpfloat(s->alpha_bar[0], ==, 1.0);
  for (int t = 1; t <= s->T; t++) {
    g_assert_cmpfloat(s->beta[t], >, 0.0);
    g_assert_cmpfloat(s->beta[t], <=, 0.999);
    g_assert_cmpfloat(s->alpha_bar[t], >, 0.0);
    g_assert_cmpfloat(s->alpha_bar[t], <, s->alpha_bar[t - 1]);
    g_assert_cmpfloat(fabs(s->alpha_bar[t] - s->alpha_bar[t - 1] * (1.0 - s->beta[t])), <=,
                      1e-15);
  }
}

static void
test_schedule_linear(void)
{
  CfSchedule s;
  CfError err = {0};
  g_assert_cmpint(cf_schedule_init(&s, CF_SCHEDULE_LINEAR, 1000, &err), ==, CF_OK);
  g_assert_cmpint(s.T, ==, 1000);
  g_assert_cmpint(s.kind, ==, CF_SCHEDULE_LINEAR);
  g_assert_cmpfloat(fabs(s.beta[1] - 1e-4), <, 1e-15);
  g_assert_cmpfloat(fabs(s.beta[1000] - 0.02), <, 1e-15);
  /* Evenly spaced. */
  double step = (0.02 - 1e-4) / 999.0;
  for (int t = 2; t <= 1000; t++)
    g_assert_cmpfloat(fabs(s.beta[t] - s.beta[t - 1] - step), <, 1e-13);
  check_abar_monotone(&s);
  /* Known value: abar_T for Ho et al.'s schedule is about 4.04e-5. */
  g_assert_cmpfloat(s.alpha_bar[1000], >, 3.9e-5);
  g_assert_cmpfloat(s.alpha_bar[1000], <, 4.2e-5);
  cf_schedule_clear(&s);
  g_assert_null(s.beta);

  /* Scaled by 1000/T. */
  g_assert_cmpint(cf_schedule_init(&s, CF_SCHEDULE_LINEAR, 250, &err), ==, CF_OK);
  g_assert_cmpfloat(fabs(s.beta[1] - 4e-4), <, 1e-15);
  g_assert_cmpfloat(fabs(s.beta[250] - 0.08), <, 1e-15);
  check_abar_monotone(&s);
  cf_schedule_clear(&s);

  /* Extremes: T = 1 (beta clipped at 0.999) and T = 100000. */
  g_assert_cmpint(cf_schedule_init(&s, CF_SCHEDULE_LINEAR, 1, &err), ==, CF_OK);
  g_assert_cmpfloat(s.beta[1], ==, 0.999);
  check_abar_monotone(&s);
  cf_schedule_clear(&s);
  g_assert_cmpint(cf_schedule_init(&s, CF_SCHEDULE_LINEAR, 100000, &err), ==, CF_OK);
  g_assert_cmpfloat(fabs(s.beta[1] - 1e-6), <, 1e-18);
  g_assert_cmpfloat(fabs(s.beta[100000] - 2e-4), <, 1e-16);
  check_abar_monotone(&s);
  cf_schedule_clear(&s);
}

static void
test_schedule_cosine(void)
{
  const int Ts[] = {1, 10, 1000, 4000};
  for (size_t k = 0; k < G_N_ELEMENTS(Ts); k++) {
    int T = Ts[k];
    CfSchedule s;
    CfError err = {0};
    g_assert_cmpint(cf_schedule_init(&s, CF_SCHEDULE_COSINE, T, &err), ==, CF_OK);
    check_abar_monotone(&s);
    double sc = 0.008;
    double f0 = cos(sc / (1 + sc) * M_PI / 2);
    f0 *= f0;
    for (int t = 0; t < T; t++) {
      double c = cos(((double)t / T + sc) / (1 + sc) * M_PI / 2);
      double closed = c * c / f0;
      g_assert_cmpfloat(s.beta[t], <, 0.999);
      g_assert_cmpfloat(fabs(s.alpha_bar[t] - closed), <=, 1e-12 * closed + 1e-15);
    }
    /* The closed form reaches 0 at T; beta is clipped there. */
    g_assert_cmpfloat(s.beta[T], ==, 0.999);
    g_assert_cmpfloat(s.alpha_bar[T], <=, 1e-3 * s.alpha_bar[T - 1] + 1e-15);
    cf_schedule_clear(&s);
  }
}

static void
test_schedule_invalid(void)
{
  CfSchedule s;
  CfError err = {0};
  assert_error(cf_schedule_init(&s, CF_SCHEDULE_LINEAR, 0, &err), &err, CF_ERR_INVALID, "T");
  g_assert_null(s.beta);
  assert_error(cf_schedule_init(&s, CF_SCHEDULE_COSINE, 100001, &err), &err, CF_ERR_INVALID,
               "100001");
  assert_error(cf_schedule_init(&s, CF_SCHEDULE_LINEAR, -5, &err), &err, CF_ERR_INVALID, "-5");
  assert_error(cf_schedule_init(&s, (CfScheduleKind)7, 100, &err), &err, CF_ERR_INVALID,
               "schedule");
  /* NULL err is allowed. */
  g_assert_cmpint(cf_schedule_init(&s, CF_SCHEDULE_LINEAR, 0, NULL), ==, CF_ERR_INVALID);
  cf_schedule_clear(&s);
}

/* q(x_t | x_0) by Monte Carlo: run the Markov chain
 * x_t = sqrt(1 - beta_t) x_{t-1} + sqrt(beta_t) z step by step and compare
 * the moments with the closed form N(sqrt(abar_t) x0, (1 - abar_t) I). */
static void
test_forward_moments(void)
{
  const int N = 20000, T = 1000;
  const double x0 = 1.5;
  const int checks[] = {1, 10, 100, 500, 1000};
  for (int kind = 0; kind < 2; kind++) {
    CfSchedule s;
    g_assert_cmpint(cf_schedule_init(&s, (CfScheduleKind)kind, T, NULL), ==, CF_OK);
    CfRng rng;
    cf_rng_seed(&rng, 11 + kind);
    double *x = g_new(double, N);
    for (int i = 0; i < N; i++)
      x[i] = x0;
    size_t c = 0;
    for (int t = 1; t <= T; t++) {
      double a = sqrt(1 - s.beta[t]), b = sqrt(s.beta[t]);
      for (int i = 0; i < N; i++)
        x[i] = a * x[i] + b * cf_rng_normal(&rng);
      if (c < G_N_ELEMENTS(checks) && t == checks[c]) {
        double m = 0, v = 0;
        for (int i = 0; i < N; i++)
          m += x[i];
        m /= N;
        for (int i = 0; i < N; i++)
          v += (x[i] - m) * (x[i] - m);
        v /= N - 1;
        double mt = sqrt(s.alpha_bar[t]) * x0, vt = 1 - s.alpha_bar[t];
        double se_m = sqrt(vt / N), se_v = vt * sqrt(2.0 / (N - 1));
        g_test_message("%s t=%d: mean %.5f (exact %.5f, se %.1e), var %.6f (exact %.6f, se %.1e)",
                       kind ? "cosine" : "linear", t, m, mt, se_m, v, vt, se_v);
        g_assert_cmpfloat(fabs(m - mt), <, 5 * se_m);
        g_assert_cmpfloat(fabs(v - vt), <, 5 * se_v);
        c++;
      }
    }
    g_assert_cmpuint(c, ==, G_N_ELEMENTS(checks));
    g_free(x);
    cf_schedule_clear(&s);
  }
}

/* ---- the exact epsilon of a Gaussian ------------------------------------- */

typedef struct {
  int dim;
  double m[3];
  double C[3][3];
  const CfSchedule *s;
  int cached_t;
  double M[3][3]; /* sqrt(1-a) (a C + (1-a) I)^{-1} */
  long calls;
} Gauss;

/* Inverse of a small SPD matrix by Gauss-Jordan with partial pivoting. */
static void
small_inverse(int n, double A[3][3], double inv[3][3])
{
  double a[3][6];
  for (int i = 0; i < n; i++)
    for (int j = 0; j < 2 * n; j++)
      a[i][j] = j < n ? A[i][j] : (j - n == i ? 1.0 : 0.0);
  for (int c = 0; c < n; c++) {
    int p = c;
    for (int r = c + 1; r < n; r++)
      if (fabs(a[r][c]) > fabs(a[p][c]))
        p = r;
    for (int j = 0; j < 2 * n; j++) {
      double tmp = a[c][j];
      a[c][j] = a[p][j];
      a[p][j] = tmp;
    }
    double d = a[c][c];
    g_assert_cmpfloat(fabs(d), >, 1e-300);
    for (int j = 0; j < 2 * n; j++)
      a[c][j] /= d;
    for (int r = 0; r < n; r++) {
      if (r == c)
        continue;
      double f = a[r][c];
      for (int j = 0; j < 2 * n; j++)
        a[r][j] -= f * a[c][j];
    }
  }
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++)
      inv[i][j] = a[i][n + j];
}

/* M_t = sqrt(1-a) (a C + (1-a) I)^{-1}: eps*(x, t) = M_t (x - sqrt(a) m). */
static void
gauss_eps_matrix(const Gauss *g, int t, double M[3][3])
{
  const int n = g->dim;
  double a = g->s->alpha_bar[t];
  double A[3][3], inv[3][3];
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++)
      A[i][j] = a * g->C[i][j] + (i == j ? 1.0 - a : 0.0);
  small_inverse(n, A, inv);
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++)
      M[i][j] = sqrt(1.0 - a) * inv[i][j];
}

static void
gauss_eps(void *user, const float *x_t, const int *t, int B, float *eps_out)
{
  Gauss *g = user;
  const int n = g->dim;
  g->calls++;
  for (int b = 0; b < B; b++) {
    if (t[b] != g->cached_t) {
      g_assert_cmpint(t[b], >=, 1);
      g_assert_cmpint(t[b], <=, g->s->T);
      gauss_eps_matrix(g, t[b], g->M);
      g->cached_t = t[b];
    }
    double sa = sqrt(g->s->alpha_bar[t[b]]);
    const float *x = x_t + (size_t)b * n;
    for (int i = 0; i < n; i++) {
      double v = 0;
      for (int j = 0; j < n; j++)
        v += g->M[i][j] * (x[j] - sa * g->m[j]);
      eps_out[(size_t)b * n + i] = (float)v;
    }
  }
}

static void
gauss_setup(Gauss *g, int dim, const CfSchedule *s)
{
  memset(g, 0, sizeof *g);
  g->dim = dim;
  g->s = s;
  g->cached_t = -1;
  if (dim == 2) {
    const double m[2] = {1.0, -0.5};
    const double C[2][2] = {{1.0, 0.6}, {0.6, 0.5}};
    for (int i = 0; i < 2; i++) {
      g->m[i] = m[i];
      for (int j = 0; j < 2; j++)
        g->C[i][j] = C[i][j];
    }
  } else {
    const double m[3] = {0.5, -1.0, 0.25};
    const double C[3][3] = {{0.8, 0.3, -0.2}, {0.3, 0.5, 0.1}, {-0.2, 0.1, 0.3}};
    for (int i = 0; i < 3; i++) {
      g->m[i] = m[i];
      for (int j = 0; j < 3; j++)
        g->C[i][j] = C[i][j];
    }
  }
}

/* With the exact (affine) epsilon every reverse step is affine plus Gaussian
 * noise, so the sampler's output law is exactly Gaussian. This propagates
 * its mean and covariance through the steps written out from the formulas
 * (Ho et al. for DDPM, Song et al. for DDIM), starting from N(0, I). */
static void
sampler_law(const Gauss *g, const CfSamplerConfig *cfg, double mu[3], double S[3][3])
{
  const int n = g->dim, T = g->s->T;
  const double *ab = g->s->alpha_bar, *beta = g->s->beta;
  const bool ddim = cfg->kind == CF_SAMPLER_DDIM;
  const int steps = ddim ? cfg->steps : T;
  for (int i = 0; i < n; i++) {
    mu[i] = 0;
    for (int j = 0; j < n; j++)
      S[i][j] = i == j;
  }
  for (int k = steps; k >= 1; k--) {
    int t = ddim ? (int)floor((double)k * T / steps + 0.5) : k;
    int s = ddim ? (int)floor((double)(k - 1) * T / steps + 0.5) : k - 1;
    double M[3][3];
    gauss_eps_matrix(g, t, M);
    double at = ab[t], as = ab[s], p, q, var;
    if (!ddim) {
      p = 1 / sqrt(1 - beta[t]);
      q = -p * beta[t] / sqrt(1 - at);
      var = t > 1 ? beta[t] * (1 - as) / (1 - at) : 0;
    } else {
      var = s > 0 ? (double)cfg->eta * cfg->eta * (1 - as) / (1 - at) * (1 - at / as) : 0;
      double dirc = sqrt(fmax(0, 1 - as - var));
      p = sqrt(as) / sqrt(at);
      q = dirc - sqrt(as) * sqrt(1 - at) / sqrt(at);
    }
    /* x_s = (p I + q M) x - q sqrt(at) M m + sqrt(var) z */
    double A[3][3], nm[3], AS[3][3], NS[3][3];
    for (int i = 0; i < n; i++)
      for (int j = 0; j < n; j++)
        A[i][j] = (i == j ? p : 0) + q * M[i][j];
    for (int i = 0; i < n; i++) {
      nm[i] = 0;
      for (int j = 0; j < n; j++)
        nm[i] += A[i][j] * mu[j] - q * sqrt(at) * M[i][j] * g->m[j];
    }
    for (int i = 0; i < n; i++)
      for (int j = 0; j < n; j++) {
        AS[i][j] = 0;
        for (int l = 0; l < n; l++)
          AS[i][j] += A[i][l] * S[l][j];
      }
    for (int i = 0; i < n; i++)
      for (int j = 0; j < n; j++) {
        NS[i][j] = i == j ? var : 0;
        for (int l = 0; l < n; l++)
          NS[i][j] += AS[i][l] * A[j][l];
      }
    memcpy(mu, nm, sizeof nm);
    memcpy(S, NS, sizeof NS);
  }
}

/* Sample moments of x (N x n). */
static void
sample_moments(int n, const float *x, int N, double mean[3], double cov[3][3])
{
  for (int i = 0; i < n; i++) {
    mean[i] = 0;
    for (int j = 0; j < n; j++)
      cov[i][j] = 0;
  }
  for (int b = 0; b < N; b++)
    for (int i = 0; i < n; i++)
      mean[i] += x[(size_t)b * n + i];
  for (int i = 0; i < n; i++)
    mean[i] /= N;
  for (int b = 0; b < N; b++)
    for (int i = 0; i < n; i++)
      for (int j = 0; j < n; j++)
        cov[i][j] += (x[(size_t)b * n + i] - mean[i]) * (x[(size_t)b * n + j] - mean[j]);
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++)
      cov[i][j] /= N - 1;
}

/* Largest deviation of (mean, cov) from the Gaussian (m, C) in standard
 * errors of an N-sample estimate: sqrt(C_ii / N) for means,
 * sqrt((C_ii C_jj + C_ij^2) / N) for covariance entries. Appends the values
 * ("estimate(target)") to msg. */
static double
moment_z(int n, const double mean[3], double cov[3][3], const double m[3], double C[3][3], int N,
         GString *msg)
{
  double worst = 0;
  g_string_append(msg, "mean");
  for (int i = 0; i < n; i++) {
    worst = fmax(worst, fabs(mean[i] - m[i]) / sqrt(C[i][i] / N));
    g_string_append_printf(msg, " %.4f(%.4f)", mean[i], m[i]);
  }
  g_string_append(msg, " cov");
  for (int i = 0; i < n; i++)
    for (int j = i; j < n; j++) {
      double se = sqrt((C[i][i] * C[j][j] + C[i][j] * C[i][j]) / N);
      worst = fmax(worst, fabs(cov[i][j] - C[i][j]) / se);
      g_string_append_printf(msg, " %.4f(%.4f)", cov[i][j], C[i][j]);
    }
  g_string_append_printf(msg, ": max %.2f se", worst);
  return worst;
}

typedef struct {
  CfScheduleKind sched;
  CfSamplerKind kind;
  int steps;
  float eta;
} SamplerCase;

/* Samplers driven by the exact epsilon of N(m, C), N = 20000 samples.
 *  - Every run: the sample mean/covariance match the sampler's own exact law
 *    (sampler_law) within 5 standard errors (this checks the implementation).
 *  - DDPM with T = 1000: the samples also match the data N(m, C) within 5
 *    standard errors (its discretisation bias is far below the MC error).
 *  - DDIM with 50 steps is biased even with the exact epsilon (discretisation
 *    error, not Monte-Carlo error): its exact law has covariance 5-8% (eta 0)
 *    and 8-15% (eta 1) below the data's in relative Frobenius norm, up to
 *    ~15% resp. ~26% in the smallest eigen-direction of the 2-D case (linear
 *    schedule). So for DDIM the samples are checked against the law, and the
 *    law against the data: means within 0.01, covariance within 30%, and with
 *    1000 DDIM steps within 3% (measured: 0.3-1%). */
static void
test_sampler_gaussian(void)
{
  const SamplerCase cases[] = {
      {CF_SCHEDULE_LINEAR, CF_SAMPLER_DDPM, 0, 0.0f},
      {CF_SCHEDULE_COSINE, CF_SAMPLER_DDPM, 0, 0.0f},
      {CF_SCHEDULE_LINEAR, CF_SAMPLER_DDIM, 50, 0.0f},
      {CF_SCHEDULE_LINEAR, CF_SAMPLER_DDIM, 50, 1.0f},
      {CF_SCHEDULE_COSINE, CF_SAMPLER_DDIM, 50, 0.0f},
      {CF_SCHEDULE_COSINE, CF_SAMPLER_DDIM, 50, 1.0f},
  };
  const int N = 20000;
  for (int dim = 2; dim <= 3; dim++) {
    for (size_t c = 0; c < G_N_ELEMENTS(cases); c++) {
      CfSchedule s;
      g_assert_cmpint(cf_schedule_init(&s, cases[c].sched, 1000, NULL), ==, CF_OK);
      Gauss g;
      gauss_setup(&g, dim, &s);
      CfSamplerConfig cfg = {cases[c].kind, cases[c].steps, cases[c].eta, 0.0f};
      CfRng rng;
      cf_rng_seed(&rng, 1000 + 10 * dim + c);
      float *out = g_new(float, (size_t)N * dim);
      CfError err = {0};
      CfStatus st = cf_ddpm_sample(&s, &cfg, dim, N, gauss_eps, &g, NULL, NULL, &rng, out, NULL,
                                   NULL, NULL, NULL, &err);
      if (st != CF_OK)
        g_error("sampler failed: %s", err.msg);
      g_assert_cmpint(g.calls, ==, cf_sampler_n_steps(&s, &cfg));

      double mean[3], cov[3][3], lm[3], lS[3][3];
      sample_moments(dim, out, N, mean, cov);
      sampler_law(&g, &cfg, lm, lS);
      GString *msg = g_string_new(NULL);
      g_string_append_printf(msg, "dim %d, %s, %s, eta %.0f: vs exact sampler law: ", dim,
                             cases[c].sched == CF_SCHEDULE_LINEAR ? "linear" : "cosine",
                             cases[c].kind == CF_SAMPLER_DDPM ? "DDPM T=1000" : "DDIM 50 steps",
                             (double)cases[c].eta);
      double z_law = moment_z(dim, mean, cov, lm, lS, N, msg);
      g_string_append(msg, "; vs data: ");
      double z_data = moment_z(dim, mean, cov, g.m, g.C, N, msg);
      /* Law vs data, relative Frobenius error of the covariance. */
      double num = 0, den = 0, mdev = 0;
      for (int i = 0; i < dim; i++) {
        mdev = fmax(mdev, fabs(lm[i] - g.m[i]));
        for (int j = 0; j < dim; j++) {
          num += (lS[i][j] - g.C[i][j]) * (lS[i][j] - g.C[i][j]);
          den += g.C[i][j] * g.C[i][j];
        }
      }
      double rel = sqrt(num / den);
      g_string_append_printf(msg, "; law vs data: mean %.1e, cov %.2f%% (Frobenius)", mdev,
                             100 * rel);
      g_test_message("%s", msg->str);
      if (z_law >= 5.0)
        g_error("samples do not follow the sampler's law: %s", msg->str);
      g_assert_cmpfloat(mdev, <, 0.01);
      if (cfg.kind == CF_SAMPLER_DDPM) {
        if (z_data >= 5.0)
          g_error("samples do not follow the data distribution: %s", msg->str);
        g_assert_cmpfloat(rel, <, 0.02);
      } else {
        g_assert_cmpfloat(rel, <, 0.30);
        /* Discretisation bias vanishes with more steps. */
        CfSamplerConfig fine = cfg;
        fine.steps = 1000;
        sampler_law(&g, &fine, lm, lS);
        double num2 = 0;
        for (int i = 0; i < dim; i++)
          for (int j = 0; j < dim; j++)
            num2 += (lS[i][j] - g.C[i][j]) * (lS[i][j] - g.C[i][j]);
        g_test_message("  same with 1000 DDIM steps: law vs data cov %.2f%%", 100 * sqrt(num2 / den));
        g_assert_cmpfloat(sqrt(num2 / den), <, 0.03);
      }
      g_string_free(msg, TRUE);
      g_free(out);
      cf_schedule_clear(&s);
    }
  }
}

/* DDIM with steps = T and eta = 1 is the DDPM chain: same noise draws, same
 * result up to float rounding. Also: a clip far outside the data range
 * changes nothing. */
static void
test_sampler_ddim_equals_ddpm(void)
{
  const int N = 500, dim = 2;
  CfSchedule s;
  g_assert_cmpint(cf_schedule_init(&s, CF_SCHEDULE_LINEAR, 200, NULL), ==, CF_OK);
  Gauss g;
  gauss_setup(&g, dim, &s);
  float *a = g_new(float, N * dim), *b = g_new(float, N * dim), *c = g_new(float, N * dim);
  CfSamplerConfig ddpm = {CF_SAMPLER_DDPM, 0, 0.0f, 0.0f};
  CfSamplerConfig ddim = {CF_SAMPLER_DDIM, 200, 1.0f, 0.0f};
  CfSamplerConfig ddpm_clip = {CF_SAMPLER_DDPM, 0, 0.0f, 100.0f};
  CfRng rng;
  cf_rng_seed(&rng, 5);
  g_assert_cmpint(cf_ddpm_sample(&s, &ddpm, dim, N, gauss_eps, &g, NULL, NULL, &rng, a, NULL, NULL,
                                 NULL, NULL, NULL), ==, CF_OK);
  uint64_t after_a = cf_rng_u64(&rng);
  cf_rng_seed(&rng, 5);
  g_assert_cmpint(cf_ddpm_sample(&s, &ddim, dim, N, gauss_eps, &g, NULL, NULL, &rng, b, NULL, NULL,
                                 NULL, NULL, NULL), ==, CF_OK);
  g_assert_cmpuint(cf_rng_u64(&rng), ==, after_a); /* same number of draws */
  cf_rng_seed(&rng, 5);
  g_assert_cmpint(cf_ddpm_sample(&s, &ddpm_clip, dim, N, gauss_eps, &g, NULL, NULL, &rng, c, NULL,
                                 NULL, NULL, NULL, NULL), ==, CF_OK);
  double dmax = 0, cmax = 0;
  for (int i = 0; i < N * dim; i++) {
    dmax = fmax(dmax, fabs(a[i] - b[i]));
    cmax = fmax(cmax, fabs(a[i] - c[i]));
  }
  g_test_message("DDIM(T, eta 1) vs DDPM: max diff %.2e; DDPM clip 100 vs off: %.2e", dmax, cmax);
  g_assert_cmpfloat(dmax, <, 1e-3);
  g_assert_cmpfloat(cmax, <, 1e-3);

  /* Deterministic DDIM: same x_T, same output, whatever the seed of later draws. */
  CfSamplerConfig det = {CF_SAMPLER_DDIM, 20, 0.0f, 0.0f};
  cf_rng_seed(&rng, 9);
  g_assert_cmpint(cf_ddpm_sample(&s, &det, dim, N, gauss_eps, &g, NULL, NULL, &rng, a, NULL, NULL,
                                 NULL, NULL, NULL), ==, CF_OK);
  /* exactly N * dim normals were consumed */
  CfRng ref;
  cf_rng_seed(&ref, 9);
  float *tmp = g_new(float, N * dim);
  cf_rng_fill_normal(&ref, tmp, (size_t)N * dim);
  g_assert_cmpuint(cf_rng_u64(&ref), ==, cf_rng_u64(&rng));
  g_free(tmp);
  g_free(a);
  g_free(b);
  g_free(c);
  cf_schedule_clear(&s);
}

static void
test_sampler_clip(void)
{
  /* Data far wider than the clip: every output lies in [-clip, clip]. */
  const int N = 1000, dim = 2;
  CfSchedule s;
  g_assert_cmpint(cf_schedule_init(&s, CF_SCHEDULE_COSINE, 100, NULL), ==, CF_OK);
  Gauss g;
  gauss_setup(&g, dim, &s);
  for (int i = 0; i < 2; i++)
    for (int j = 0; j < 2; j++)
      g.C[i][j] *= 9.0;
  for (int k = 0; k < 2; k++) {
    CfSamplerConfig cfg = {k ? CF_SAMPLER_DDIM : CF_SAMPLER_DDPM, 10, 0.5f, 0.75f};
    CfRng rng;
    cf_rng_seed(&rng, 77);
    float *out = g_new(float, N * dim);
    g_assert_cmpint(cf_ddpm_sample(&s, &cfg, dim, N, gauss_eps, &g, NULL, NULL, &rng, out, NULL,
                                   NULL, NULL, NULL, NULL), ==, CF_OK);
    int at_bound = 0;
    for (int i = 0; i < N * dim; i++) {
      g_assert_cmpfloat(fabsf(out[i]), <=, 0.75f);
      at_bound += fabsf(out[i]) == 0.75f;
    }
    g_assert_cmpint(at_bound, >, N / 4);
    g_free(out);
  }
  cf_schedule_clear(&s);
}

/* ---- sampler plumbing ------------------------------------------------------ */

typedef struct {
  int calls;
  int t_next[256];
  int progress_calls;
  long last_done, last_total;
  int abort_after; /* abort returns true on call number abort_after + 1 */
  int abort_calls;
  bool zero_at_end;
} Recorder;

static void
record_hook(void *user, float *x, int B, int t_next)
{
  Recorder *r = user;
  g_assert_cmpint(B, ==, 3);
  if (r->calls < 256)
    r->t_next[r->calls] = t_next;
  r->calls++;
  if (r->zero_at_end && t_next == 0)
    for (int i = 0; i < B * 2; i++)
      x[i] = 0.0f;
}

static void
record_progress(void *user, long done, long total)
{
  Recorder *r = user;
  g_assert_cmpint(done, ==, r->last_done + 1);
  r->progress_calls++;
  r->last_done = done;
  r->last_total = total;
}

static bool
record_abort(void *user)
{
  Recorder *r = user;
  return r->abort_calls++ >= r->abort_after;
}

static void
test_sampler_trajectory_hook(void)
{
  const int B = 3, dim = 2, T = 100;
  CfSchedule s;
  g_assert_cmpint(cf_schedule_init(&s, CF_SCHEDULE_LINEAR, T, NULL), ==, CF_OK);
  Gauss g;
  gauss_setup(&g, dim, &s);
  const CfSamplerConfig cfgs[] = {
      {CF_SAMPLER_DDIM, 7, 0.3f, 0.0f},
      {CF_SAMPLER_DDIM, 1, 0.0f, 0.0f},
      {CF_SAMPLER_DDIM, 100, 0.0f, 0.0f},
      {CF_SAMPLER_DDPM, 3 /* ignored */, 0.0f, 0.0f},
  };
  for (size_t c = 0; c < G_N_ELEMENTS(cfgs); c++) {
    const CfSamplerConfig *cfg = &cfgs[c];
    int n = cf_sampler_n_steps(&s, cfg);
    g_assert_cmpint(n, ==, cfg->kind == CF_SAMPLER_DDPM ? T : cfg->steps);
    /* Times: t_0 = 0, t_n = T, t_i = round(i T / n), strictly increasing. */
    g_assert_cmpint(cf_sampler_time(&s, cfg, 0), ==, 0);
    g_assert_cmpint(cf_sampler_time(&s, cfg, n), ==, T);
    g_assert_cmpint(cf_sampler_time(&s, cfg, n + 1), ==, -1);
    g_assert_cmpint(cf_sampler_time(&s, cfg, -1), ==, -1);
    for (int i = 0; i <= n; i++) {
      int want = (int)floor((double)i * T / n + 0.5);
      g_assert_cmpint(cf_sampler_time(&s, cfg, i), ==, want);
      if (i > 0)
        g_assert_cmpint(cf_sampler_time(&s, cfg, i), >, cf_sampler_time(&s, cfg, i - 1));
    }

    Recorder r = {0};
    float *traj = g_new(float, (size_t)(n + 1) * B * dim);
    float out[6];
    CfRng rng;
    cf_rng_seed(&rng, 3);
    CfError err = {0};
    g_assert_cmpint(cf_ddpm_sample(&s, cfg, dim, B, gauss_eps, &g, record_hook, &r, &rng, out,
                                   traj, NULL, record_progress, &r, &err), ==, CF_OK);
    g_assert_cmpint(r.calls, ==, n);
    g_assert_cmpint(r.progress_calls, ==, n);
    g_assert_cmpint(r.last_done, ==, n);
    g_assert_cmpint(r.last_total, ==, n);
    for (int k = 0; k < n && k < 256; k++)
      g_assert_cmpint(r.t_next[k], ==, cf_sampler_time(&s, cfg, n - 1 - k));
    g_assert_cmpint(r.t_next[(n < 256 ? n : 256) - 1], ==, n <= 256 ? 0 : r.t_next[255]);
    /* First row: x_T = the first B*dim normals of the rng; last row = out. */
    CfRng ref;
    cf_rng_seed(&ref, 3);
    float xT[6];
    cf_rng_fill_normal(&ref, xT, 6);
    g_assert_cmpmem(traj, sizeof xT, xT, sizeof xT);
    g_assert_cmpmem(traj + (size_t)n * B * dim, sizeof out, out, sizeof out);
    /* Rows differ from each other (the chain moves). */
    for (int k = 1; k <= n; k++)
      g_assert_true(memcmp(traj + (size_t)k * B * dim, traj + (size_t)(k - 1) * B * dim,
                           sizeof out) != 0);
    /* traj = NULL gives the same out. */
    float out2[6];
    cf_rng_seed(&rng, 3);
    Recorder r2 = {0};
    g_assert_cmpint(cf_ddpm_sample(&s, cfg, dim, B, gauss_eps, &g, record_hook, &r2, &rng, out2,
                                   NULL, NULL, NULL, NULL, &err), ==, CF_OK);
    g_assert_cmpmem(out, sizeof out, out2, sizeof out2);
    g_free(traj);
  }

  /* The hook's changes are kept (projected sampling relies on it). */
  Recorder r = {.zero_at_end = true};
  float out[6], traj[2 * 6];
  CfRng rng;
  cf_rng_seed(&rng, 4);
  CfSamplerConfig one = {CF_SAMPLER_DDIM, 1, 0.0f, 0.0f};
  g_assert_cmpint(cf_ddpm_sample(&s, &one, dim, B, gauss_eps, &g, record_hook, &r, &rng, out, traj,
                                 NULL, NULL, NULL, NULL), ==, CF_OK);
  for (int i = 0; i < 6; i++) {
    g_assert_cmpfloat(out[i], ==, 0.0f);
    g_assert_cmpfloat(traj[6 + i], ==, 0.0f);
  }
  cf_schedule_clear(&s);
}

static void
test_sampler_abort(void)
{
  const int B = 3, dim = 2;
  CfSchedule s;
  g_assert_cmpint(cf_schedule_init(&s, CF_SCHEDULE_LINEAR, 50, NULL), ==, CF_OK);
  Gauss g;
  gauss_setup(&g, dim, &s);
  CfSamplerConfig cfg = {CF_SAMPLER_DDPM, 0, 0.0f, 0.0f};
  Recorder r = {.abort_after = 4};
  float out[6];
  CfRng rng;
  cf_rng_seed(&rng, 8);
  CfError err = {0};
  CfStatus st = cf_ddpm_sample(&s, &cfg, dim, B, gauss_eps, &g, record_hook, &r, &rng, out, NULL,
                               record_abort, record_progress, &r, &err);
  assert_error(st, &err, CF_ERR_ABORTED, "sampling cancelled at step 5");
  g_assert_cmpint(r.calls, ==, 4);
  g_assert_cmpint(r.progress_calls, ==, 4);
  g_assert_cmpint(g.calls, ==, 4);
  g_assert_cmpint(r.abort_calls, ==, 5);

  /* Abort before the first step. */
  Recorder r0 = {.abort_after = 0};
  g.calls = 0;
  st = cf_ddpm_sample(&s, &cfg, dim, B, gauss_eps, &g, NULL, NULL, &rng, out, NULL, record_abort,
                      NULL, &r0, &err);
  assert_error(st, &err, CF_ERR_ABORTED, "sampling cancelled at step 1");
  g_assert_cmpint(g.calls, ==, 0);
  cf_schedule_clear(&s);
}

static void
nan_eps(void *user, const float *x_t, const int *t, int B, float *eps_out)
{
  (void)user;
  (void)x_t;
  for (int i = 0; i < B * 2; i++)
    eps_out[i] = t[0] == 3 ? NAN : 0.0f;
}

static void
test_sampler_invalid(void)
{
  CfSchedule s;
  g_assert_cmpint(cf_schedule_init(&s, CF_SCHEDULE_LINEAR, 100, NULL), ==, CF_OK);
  Gauss g;
  gauss_setup(&g, 2, &s);
  float out[8];
  CfRng rng;
  cf_rng_seed(&rng, 1);
  CfError err = {0};
  struct {
    CfSamplerConfig cfg;
    int dim, B;
    const char *needle;
  } bad[] = {
      {{CF_SAMPLER_DDIM, 0, 0.0f, 0.0f}, 2, 4, "steps"},
      {{CF_SAMPLER_DDIM, 101, 0.0f, 0.0f}, 2, 4, "101"},
      {{CF_SAMPLER_DDIM, -3, 0.0f, 0.0f}, 2, 4, "steps"},
      {{CF_SAMPLER_DDIM, 10, -0.5f, 0.0f}, 2, 4, "eta"},
      {{CF_SAMPLER_DDIM, 10, NAN, 0.0f}, 2, 4, "eta"},
      {{CF_SAMPLER_DDPM, 0, -1.0f, 0.0f}, 2, 4, "eta"},
      {{CF_SAMPLER_DDPM, 0, 0.0f, -1.0f}, 2, 4, "clip"},
      {{CF_SAMPLER_DDPM, 0, 0.0f, INFINITY}, 2, 4, "clip"},
      {{(CfSamplerKind)9, 0, 0.0f, 0.0f}, 2, 4, "kind"},
      {{CF_SAMPLER_DDPM, 0, 0.0f, 0.0f}, 0, 4, "dimension"},
      {{CF_SAMPLER_DDPM, 0, 0.0f, 0.0f}, 2, 0, "samples"},
      {{CF_SAMPLER_DDIM, 10, 0.0f, 0.0f}, 2, -1, "samples"},
  };
  for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
    cf_error_clear(&err);
    g.calls = 0;
    CfStatus st = cf_ddpm_sample(&s, &bad[i].cfg, bad[i].dim, bad[i].B, gauss_eps, &g, NULL, NULL,
                                 &rng, out, NULL, NULL, NULL, NULL, &err);
    assert_error(st, &err, CF_ERR_INVALID, bad[i].needle);
    g_assert_cmpint(g.calls, ==, 0);
    g_assert_cmpint(cf_sampler_n_steps(&s, &bad[i].cfg), ==,
                    bad[i].cfg.kind == CF_SAMPLER_DDPM ? 100
                    : bad[i].cfg.kind == CF_SAMPLER_DDIM && bad[i].cfg.steps >= 1 &&
                            bad[i].cfg.steps <= 100
                        ? bad[i].cfg.steps
                        : -1);
  }
  CfSamplerConfig ok = {CF_SAMPLER_DDPM, 0, 0.0f, 0.0f};
  assert_error(cf_ddpm_sample(&s, &ok, 2, 4, NULL, NULL, NULL, NULL, &rng, out, NULL, NULL, NULL,
                              NULL, &err), &err, CF_ERR_INVALID, "epsilon");
  assert_error(cf_ddpm_sample(&s, &ok, 2, 4, gauss_eps, &g, NULL, NULL, &rng, NULL, NULL, NULL,
                              NULL, NULL, &err), &err, CF_ERR_INVALID, "output");
  CfSchedule empty = {0};
  assert_error(cf_ddpm_sample(&empty, &ok, 2, 4, gauss_eps, &g, NULL, NULL, &rng, out, NULL, NULL,
                              NULL, NULL, &err), &err, CF_ERR_INVALID, "schedule");
  /* A predictor producing NaN is reported with the step. */
  assert_error(cf_ddpm_sample(&s, &ok, 2, 4, nan_eps, NULL, NULL, NULL, &rng, out, NULL, NULL,
                              NULL, NULL, &err), &err, CF_ERR_NUMERIC, "t = 3");
  cf_schedule_clear(&s);
}

/* ---- the MLP denoiser ------------------------------------------------------ */

static void
test_denoiser_invalid(void)
{
  CfDdpm m;
  CfError err = {0};
  struct {
    CfDenoiserConfig cfg;
    int T;
    const char *needle;
  } bad[] = {
      {{0, 16, 2, 8}, 100, "dimension"},
      {{2, 0, 2, 8}, 100, "width"},
      {{2, 16, 0, 8}, 100, "depth"},
      {{2, 16, 2, 7}, 100, "embedding"},
      {{2, 16, 2, 0}, 100, "embedding"},
      {{2, 16, 2, 8}, 0, "T"},
  };
  for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
    cf_error_clear(&err);
    assert_error(cf_ddpm_init(&m, &bad[i].cfg, CF_SCHEDULE_LINEAR, bad[i].T, &err), &err,
                 CF_ERR_INVALID, bad[i].needle);
    cf_ddpm_clear(&m); /* safe after a failed init */
  }
  CfDenoiserConfig ok = {2, 16, 2, 8};
  g_assert_cmpint(cf_ddpm_init(&m, &ok, CF_SCHEDULE_COSINE, 100, &err), ==, CF_OK);
  /* 3 linear layers (2+8 -> 16 -> 16 -> 2), named denoiser.<i>.w/b. */
  g_assert_cmpint(m.params.count, ==, 6);
  size_t declared = 0;
  for (int i = 0; i < m.params.count; i++)
    declared += (size_t)m.params.info[i].rows * m.params.info[i].cols;
  g_assert_cmpuint(declared, ==, (2 + 8) * 16 + 16 + 16 * 16 + 16 + 16 * 2 + 2);
  g_assert_cmpint(cf_params_find(&m.params, "denoiser.0.w"), ==, m.net.mlp.first_param);
  g_assert_cmpint(m.net.mlp.in, ==, 10);
  g_assert_cmpint(m.net.mlp.out, ==, 2);
  for (size_t i = 0; i < m.params.total; i++)
    g_assert_cmpfloat(m.params.value[i], ==, 0.0f);
  assert_error(cf_ddpm_prepare_train(&m, 0, &err), &err, CF_ERR_INVALID, "batch");
  CfDdpmEval e;
  assert_error(cf_ddpm_eval_init(&e, &m, 0, &err), &err, CF_ERR_INVALID, "chunk");
  cf_ddpm_eval_clear(&e);
  g_assert_cmpfloat(cf_ddpm_train_flops(&m, 10), ==, 3.0 * cf_mlp_flops(&m.net.mlp, 10));
  cf_ddpm_clear(&m);
  cf_ddpm_clear(&m); /* idempotent */
}

/* Four 2-D Gaussian blobs, generated inline. */
static void
make_blobs(float *x, int n, CfRng *rng)
{
  for (int i = 0; i < n; i++) {
    int k = (int)cf_rng_below(rng, 4);
    x[2 * i] = (float)((k & 1 ? 1.0 : -1.0) + 0.3 * cf_rng_normal(rng));
    x[2 * i + 1] = (float)((k & 2 ? 1.0 : -1.0) + 0.3 * cf_rng_normal(rng));
  }
}

static void
test_denoiser_train_step(void)
{
  CfDenoiserConfig cfg = {2, 32, 2, 16};
  CfDdpm m;
  CfError err = {0};
  g_assert_cmpint(cf_ddpm_init(&m, &cfg, CF_SCHEDULE_LINEAR, 1000, &err), ==, CF_OK);
  CfRng rng;
  cf_rng_seed(&rng, 21);
  cf_ddpm_randomize(&m, &rng);
  const int B = 64;
  g_assert_cmpint(cf_ddpm_prepare_train(&m, B, &err), ==, CF_OK);
  g_assert_cmpint(m.train_B, ==, B);
  float x0[64 * 2];
  make_blobs(x0, B, &rng);
  float loss = cf_ddpm_train_step(&m, x0, &rng);
  /* The graph inputs hold t in 1..T, eps, and x_t = sqrt(abar) x0 + sqrt(1-abar) eps. */
  const float *xt = cf_graph_value(m.train, m.in_x);
  const float *tt = cf_graph_value(m.train, m.in_t);
  const float *ep = cf_graph_value(m.train, m.in_eps);
  const float *pred = cf_graph_value(m.train, m.out_eps);
  double mse = 0;
  for (int b = 0; b < B; b++) {
    int t = (int)tt[b];
    g_assert_cmpfloat(tt[b], ==, (float)t);
    g_assert_cmpint(t, >=, 1);
    g_assert_cmpint(t, <=, 1000);
    double a = m.sched.alpha_bar[t];
    for (int j = 0; j < 2; j++) {
      double want = sqrt(a) * x0[2 * b + j] + sqrt(1 - a) * ep[2 * b + j];
      g_assert_cmpfloat(fabs(xt[2 * b + j] - want), <=, 1e-6 * (1 + fabs(want)));
      double d = pred[2 * b + j] - ep[2 * b + j];
      mse += d * d;
    }
  }
  mse /= 2 * B;
  g_assert_cmpfloat(fabs(loss - mse), <=, 1e-5 * (1 + mse));
  /* Gradients are non-zero after the step and re-zeroed before the next. */
  double gn = cf_grad_norm(m.params.grad, m.params.total);
  g_assert_cmpfloat(gn, >, 0.0);

  /* Rebuild for another batch size. */
  g_assert_cmpint(cf_ddpm_prepare_train(&m, 16, &err), ==, CF_OK);
  g_assert_cmpint(m.train_B, ==, 16);
  (void)cf_ddpm_train_step(&m, x0, &rng);
  cf_ddpm_clear(&m);
}

/* Trains `steps` Adam steps on blob data; returns the losses. */
static void
train_blobs(CfDdpm *m, uint64_t seed, int steps, float *losses)
{
  CfDenoiserConfig cfg = {2, 32, 2, 16};
  CfError err = {0};
  g_assert_cmpint(cf_ddpm_init(m, &cfg, CF_SCHEDULE_LINEAR, 1000, &err), ==, CF_OK);
  CfRng init_rng, data_rng, step_rng;
  cf_rng_seed_stream(&init_rng, seed, 0);
  cf_rng_seed_stream(&data_rng, seed, 1);
  cf_rng_seed_stream(&step_rng, seed, 2);
  cf_ddpm_randomize(m, &init_rng);
  const int B = 128;
  g_assert_cmpint(cf_ddpm_prepare_train(m, B, &err), ==, CF_OK);
  CfAdam opt;
  CfAdamConfig acfg = cf_adam_default_config();
  g_assert_cmpint(cf_adam_init(&opt, m->params.total, &acfg), ==, CF_OK);
  float *x0 = g_new(float, B * 2);
  for (int s = 0; s < steps; s++) {
    make_blobs(x0, B, &data_rng);
    losses[s] = cf_ddpm_train_step(m, x0, &step_rng);
    cf_adam_step(&opt, m->params.value, m->params.grad, 2e-3f);
  }
  g_free(x0);
  cf_adam_clear(&opt);
}

static void
test_denoiser_learns_and_is_deterministic(void)
{
  const int steps = 400;
  float *l1 = g_new(float, steps), *l2 = g_new(float, steps);
  CfDdpm a, b;
  train_blobs(&a, 42, steps, l1);
  train_blobs(&b, 42, steps, l2);
  g_assert_cmpmem(l1, steps * sizeof(float), l2, steps * sizeof(float));
  g_assert_cmpuint(a.params.total, ==, b.params.total);
  g_assert_cmpmem(a.params.value, a.params.total * sizeof(float), b.params.value,
                  b.params.total * sizeof(float));
  double first = 0, last = 0;
  for (int s = 0; s < 50; s++) {
    first += l1[s] / 50.0;
    last += l1[steps - 50 + s] / 50.0;
  }
  g_test_message("blob training: mean loss of the first 50 steps %.4f, last 50 steps %.4f", first,
                 last);
  g_assert_cmpfloat(last, <, 0.8 * first);
  g_assert_cmpfloat(last, <, 0.6);
  cf_ddpm_clear(&a);
  cf_ddpm_clear(&b);
  g_free(l1);
  g_free(l2);
}

typedef struct {
  CfDdpmEval *e;
  const float *x;
  const int *t;
  int B;
  const float *want;
  int mismatches;
} EvalThread;

static gpointer
eval_thread_fn(gpointer data)
{
  EvalThread *et = data;
  float *buf = g_new(float, (size_t)et->B * et->e->cfg.dim);
  for (int k = 0; k < 100; k++) {
    cf_ddpm_eval_eps(et->e, et->x, et->t, et->B, buf);
    if (memcmp(buf, et->want, (size_t)et->B * et->e->cfg.dim * sizeof(float)) != 0)
      et->mismatches++;
  }
  g_free(buf);
  return NULL;
}

static void
test_denoiser_eval(void)
{
  const int steps = 50;
  float losses[50];
  CfDdpm m;
  train_blobs(&m, 7, steps, losses);
  const int B = m.train_B, dim = 2;
  /* Training-graph prediction for chosen inputs. */
  CfRng rng;
  cf_rng_seed(&rng, 99);
  float *x = g_new(float, B * dim);
  int *t = g_new(int, B);
  for (int i = 0; i < B * dim; i++)
    x[i] = (float)cf_rng_normal(&rng);
  for (int b = 0; b < B; b++)
    t[b] = 1 + (int)cf_rng_below(&rng, 1000);
  memcpy(cf_graph_value(m.train, m.in_x), x, (size_t)B * dim * sizeof(float));
  for (int b = 0; b < B; b++)
    cf_graph_value(m.train, m.in_t)[b] = (float)t[b];
  cf_graph_forward(m.train);
  float *want = g_new(float, B * dim);
  memcpy(want, cf_graph_value(m.train, m.out_eps), (size_t)B * dim * sizeof(float));

  /* Evaluator with the same batch shape, loaded from a copy of the arena. */
  float *arena = g_new(float, m.params.total);
  memcpy(arena, m.params.value, m.params.total * sizeof(float));
  CfDdpmEval e;
  CfError err = {0};
  g_assert_cmpint(cf_ddpm_eval_init(&e, &m, B, &err), ==, CF_OK);
  memset(e.params.value, 0, e.params.total * sizeof(float));
  cf_ddpm_eval_load(&e, arena);
  float *got = g_new(float, B * dim);
  cf_ddpm_eval_eps(&e, x, t, B, got);
  double dmax = 0;
  for (int i = 0; i < B * dim; i++)
    dmax = fmax(dmax, fabs(got[i] - want[i]));
  g_test_message("eval (chunk %d) vs training graph: max diff %.3g", B, dmax);
  g_assert_cmpfloat(dmax, <=, 1e-5);

  /* Chunked (B not a multiple of chunk) equals unchunked. */
  const int chunks[] = {1, 7, 50, 200};
  for (size_t c = 0; c < G_N_ELEMENTS(chunks); c++) {
    CfDdpmEval e2;
    g_assert_cmpint(cf_ddpm_eval_init(&e2, &m, chunks[c], &err), ==, CF_OK);
    cf_ddpm_eval_load(&e2, arena);
    float *got2 = g_new(float, B * dim);
    cf_ddpm_eval_eps(&e2, x, t, B, got2);
    double d2 = 0;
    for (int i = 0; i < B * dim; i++)
      d2 = fmax(d2, fabs(got2[i] - got[i]));
    g_test_message("eval chunk %d vs chunk %d: max diff %.3g", chunks[c], B, d2);
    g_assert_cmpfloat(d2, <=, 1e-5);
    /* A batch smaller than the chunk. */
    cf_ddpm_eval_eps(&e2, x, t, 3, got2);
    for (int i = 0; i < 3 * dim; i++)
      g_assert_cmpfloat(fabs(got2[i] - got[i]), <=, 1e-5);
    g_free(got2);
    cf_ddpm_eval_clear(&e2);
  }

  /* The evaluator runs on another thread while the model keeps training. */
  EvalThread et = {&e, x, t, B, got, 0};
  GThread *th = g_thread_new("eval", eval_thread_fn, &et);
  {
    CfRng data_rng, step_rng;
    cf_rng_seed(&data_rng, 123);
    cf_rng_seed(&step_rng, 456);
    float *x0 = g_new(float, B * dim);
    for (int k = 0; k < 100; k++) {
      make_blobs(x0, B, &data_rng);
      (void)cf_ddpm_train_step(&m, x0, &step_rng);
      for (size_t i = 0; i < m.params.total; i++)
        m.params.value[i] -= 1e-3f * m.params.grad[i];
    }
    g_free(x0);
  }
  g_thread_join(th);
  g_assert_cmpint(et.mismatches, ==, 0);

  /* The evaluator is independent of later changes to the model. */
  for (size_t i = 0; i < m.params.total; i++)
    m.params.value[i] = 0.0f;
  cf_ddpm_eval_eps(&e, x, t, B, got);
  for (int i = 0; i < B * dim; i++)
    g_assert_cmpfloat(fabs(got[i] - want[i]), <=, 1e-5);

  cf_ddpm_eval_clear(&e);
  cf_ddpm_clear(&m);
  g_free(arena);
  g_free(x);
  g_free(t);
  g_free(want);
  g_free(got);
}

/* Eight Gaussians on a ring of radius 2, std 0.15. */
static void
make_ring(float *x, int n, CfRng *rng)
{
  for (int i = 0; i < n; i++) {
    int k = (int)cf_rng_below(rng, 8);
    double a = k * M_PI / 4;
    x[2 * i] = (float)(2.0 * cos(a) + 0.15 * cf_rng_normal(rng));
    x[2 * i + 1] = (float)(2.0 * sin(a) + 0.15 * cf_rng_normal(rng));
  }
}

/* Fraction of samples within 0.5 of a mode centre; per-mode counts. */
static double
ring_score(const float *x, int n, int per_mode[8])
{
  int near = 0;
  memset(per_mode, 0, 8 * sizeof(int));
  for (int i = 0; i < n; i++) {
    double best = 1e30;
    int bk = 0;
    for (int k = 0; k < 8; k++) {
      double dx = x[2 * i] - 2.0 * cos(k * M_PI / 4), dy = x[2 * i + 1] - 2.0 * sin(k * M_PI / 4);
      double d = sqrt(dx * dx + dy * dy);
      if (d < best) {
        best = d;
        bk = k;
      }
    }
    if (best < 0.5) {
      near++;
      per_mode[bk]++;
    }
  }
  return (double)near / n;
}

/* Train on the 8-Gaussian ring (8000 Adam steps, batch 256, width 64, depth 3,
 * linear schedule T = 1000, EMA 0.995), then sample 1000 points with DDPM
 * (and 100-step DDIM): >= 90% within 0.5 of a mode centre and every mode
 * holding at least a third of its fair share. */
static void
test_denoiser_ring_quality(void)
{
  CfDenoiserConfig cfg = {2, 64, 3, 16};
  const int T = 1000, B = 256, steps = 8000, n_samples = 1000;
  CfDdpm m;
  CfError err = {0};
  g_assert_cmpint(cf_ddpm_init(&m, &cfg, CF_SCHEDULE_LINEAR, T, &err), ==, CF_OK);
  CfRng init_rng, data_rng, step_rng, sample_rng;
  cf_rng_seed_stream(&init_rng, 2024, 0);
  cf_rng_seed_stream(&data_rng, 2024, 1);
  cf_rng_seed_stream(&step_rng, 2024, 2);
  cf_rng_seed_stream(&sample_rng, 2024, 3);
  cf_ddpm_randomize(&m, &init_rng);
  g_assert_cmpint(cf_ddpm_prepare_train(&m, B, &err), ==, CF_OK);
  CfAdam opt;
  CfAdamConfig acfg = cf_adam_default_config();
  g_assert_cmpint(cf_adam_init(&opt, m.params.total, &acfg), ==, CF_OK);
  float *ema = g_new(float, m.params.total);
  memcpy(ema, m.params.value, m.params.total * sizeof(float));
  float *x0 = g_new(float, B * 2);
  CfLrSchedule lrs = {3e-3f, 1.5e-4f, 100, steps};
  double head = 0, tail = 0;
  gint64 t0 = g_get_monotonic_time();
  for (int s = 0; s < steps; s++) {
    make_ring(x0, B, &data_rng);
    float loss = cf_ddpm_train_step(&m, x0, &step_rng);
    g_assert_true(isfinite(loss));
    cf_clip_grad_norm(m.params.grad, m.params.total, 1.0);
    cf_adam_step(&opt, m.params.value, m.params.grad, cf_lr_at(&lrs, s));
    cf_ema_update(ema, m.params.value, m.params.total, s < 100 ? 0.0f : 0.995f);
    if (s < 200)
      head += loss / 200.0;
    if (s >= steps - 200)
      tail += loss / 200.0;
  }
  gint64 t1 = g_get_monotonic_time();
  g_assert_cmpfloat(tail, <, 0.5 * head);

  CfDdpmEval e;
  g_assert_cmpint(cf_ddpm_eval_init(&e, &m, 250, &err), ==, CF_OK);
  cf_ddpm_eval_load(&e, ema);
  float *out = g_new(float, n_samples * 2);
  const CfSamplerConfig samplers[] = {
      {CF_SAMPLER_DDPM, 0, 0.0f, 0.0f},
      {CF_SAMPLER_DDIM, 100, 0.0f, 0.0f},
  };
  for (size_t k = 0; k < G_N_ELEMENTS(samplers); k++) {
    gint64 t2 = g_get_monotonic_time();
    CfStatus st = cf_ddpm_sample(&m.sched, &samplers[k], 2, n_samples, cf_ddpm_eval_eps, &e, NULL,
                                 NULL, &sample_rng, out, NULL, NULL, NULL, NULL, &err);
    if (st != CF_OK)
      g_error("sampling failed: %s", err.msg);
    gint64 t3 = g_get_monotonic_time();
    int pm[8];
    double frac = ring_score(out, n_samples, pm);
    g_test_message("ring: %d steps in %.1f s (loss %.4f -> %.4f); %d %s samples in %.1f s: "
                   "%.1f%% within 0.5 of a mode; per mode %d %d %d %d %d %d %d %d",
                   steps, (t1 - t0) / 1e6, head, tail, n_samples, k ? "DDIM-100" : "DDPM",
                   (t3 - t2) / 1e6, 100 * frac, pm[0], pm[1], pm[2], pm[3], pm[4], pm[5], pm[6],
                   pm[7]);
    g_assert_cmpfloat(frac, >=, 0.9);
    for (int j = 0; j < 8; j++)
      g_assert_cmpint(pm[j], >=, n_samples / 8 / 3);
  }
  g_free(out);
  g_free(x0);
  g_free(ema);
  cf_adam_clear(&opt);
  cf_ddpm_eval_clear(&e);
  cf_ddpm_clear(&m);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/ddpm/schedule/linear", test_schedule_linear);
  g_test_add_func("/ddpm/schedule/cosine", test_schedule_cosine);
  g_test_add_func("/ddpm/schedule/invalid", test_schedule_invalid);
  g_test_add_func("/ddpm/schedule/forward-moments", test_forward_moments);
  g_test_add_func("/ddpm/sampler/gaussian", test_sampler_gaussian);
  g_test_add_func("/ddpm/sampler/ddim-equals-ddpm", test_sampler_ddim_equals_ddpm);
  g_test_add_func("/ddpm/sampler/clip", test_sampler_clip);
  g_test_add_func("/ddpm/sampler/trajectory-hook", test_sampler_trajectory_hook);
  g_test_add_func("/ddpm/sampler/abort", test_sampler_abort);
  g_test_add_func("/ddpm/sampler/invalid", test_sampler_invalid);
  g_test_add_func("/ddpm/denoiser/invalid", test_denoiser_invalid);
  g_test_add_func("/ddpm/denoiser/train-step", test_denoiser_train_step);
  g_test_add_func("/ddpm/denoiser/learns-deterministic", test_denoiser_learns_and_is_deterministic);
  g_test_add_func("/ddpm/denoiser/eval", test_denoiser_eval);
  g_test_add_func("/ddpm/denoiser/ring-quality", test_denoiser_ring_quality);
  return g_test_run();
}
