/* Tests for core/cgauss: the constrained-Gaussian layer.
 *
 * A double-precision reference (explicit S = A diag(s) A^T, LAPACK dposv per
 * sample) provides the closed forms; gradients of the layer (float outputs,
 * double internals) are compared with central differences of the reference
 * in double. Error measure: ||g_layer - g_fd|| / ||g_fd||. */
#include <glib.h>

#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cgauss.h"
#include "constraint.h"
#include "rng.h"

#define LOG_2PI 1.8378770664093454836

/* ---- helpers ------------------------------------------------------------------ */

static void
setup_ok(CfCgauss *g, int m, int n, const double *A, const double *b, bool force_dense)
{
  CfConstraint c;
  cf_constraint_init(&c);
  CfError err = {0};
  if (cf_constraint_set(&c, m, n, A, b, &err) != CF_OK)
    g_error("constraint_set: %s", err.msg);
  cf_cgauss_init(g);
  g->force_dense = force_dense;
  if (cf_cgauss_setup(g, &c, &err) != CF_OK)
    g_error("setup: %s", err.msg);
  cf_constraint_clear(&c);
}

static CfStatus
setup_status(CfCgauss *g, int m, int n, const double *A, const double *b, CfError *err)
{
  CfConstraint c;
  cf_constraint_init(&c);
  if (cf_constraint_set(&c, m, n, A, b, err) != CF_OK)
    g_error("constraint_set: %s", err->msg);
  cf_cgauss_init(g);
  CfStatus st = cf_cgauss_setup(g, &c, err);
  cf_constraint_clear(&c);
  return st;
}

static void
forward_ok(CfCgauss *g, int B, const float *mu, const float *var, CfCgaussVarMode mode, const float *k, int kr,
           int kc)
{
  CfError err = {0};
  if (cf_cgauss_forward(g, B, mu, var, mode, k, kr, kc, &err) != CF_OK)
    g_error("forward: %s", err.msg);
}

static void
fill_normal_d(CfRng *rng, double *x, size_t n)
{
  for (size_t i = 0; i < n; i++)
    x[i] = cf_rng_normal(rng);
}

static void
fill_normal_f(CfRng *rng, float *x, size_t n, float scale)
{
  for (size_t i = 0; i < n; i++)
    x[i] = scale * (float)cf_rng_normal(rng);
}

/* log-uniform in [lo, hi] */
static void
fill_var(CfRng *rng, float *x, size_t n, double lo, double hi)
{
  for (size_t i = 0; i < n; i++)
    x[i] = (float)exp(log(lo) + (log(hi) - log(lo)) * cf_rng_uniform(rng));
}

static double
rel_err(const double *a, const double *b, size_t n)
{
  double num = 0.0, den = 0.0;
  for (size_t i = 0; i < n; i++) {
    num += (a[i] - b[i]) * (a[i] - b[i]);
    den += b[i] * b[i];
  }
  /* gradients here are O(1): an exactly-zero reference gradient (e.g. mu_bar
   * does not depend on an isotropic variance) is compared absolutely */
  return sqrt(num) / fmax(sqrt(den), 1e-4);
}

static double
max_rel_f(const float *a, const float *b, size_t n)
{
  double num = 0.0, den = 0.0;
  for (size_t i = 0; i < n; i++) {
    num = fmax(num, fabs((double)a[i] - b[i]));
    den = fmax(den, fabs((double)b[i]));
  }
  return num / (den + 1e-300);
}

/* ---- double reference --------------------------------------------------------- */

typedef struct {
  int n, m;
  const double *A; /* m x n */
} Ref;

/* One sample: mu_bar, var_bar, z (eps may be NULL), logp at zp (may be NULL). */
static void
ref_one(const Ref *R, const double *mu, const double *s, const double *k, const double *eps, double *mu_bar,
        double *var_bar, double *z, const double *zp, double *logp, bool drop_aat)
{
  int n = R->n, m = R->m;
  double *S = calloc((size_t)m * m, sizeof *S), *L = calloc((size_t)m * m, sizeof *L);
  double *AS = calloc((size_t)m * n, sizeof *AS);
  double *r = malloc((size_t)m * sizeof *r), *x = malloc((size_t)n * sizeof *x);
  for (int a = 0; a < m; a++)
    for (int i = 0; i < n; i++)
      AS[(size_t)a * n + i] = R->A[(size_t)a * n + i] * s[i];
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, m, n, 1.0, AS, n, R->A, n, 0.0, S, m);
  memcpy(L, S, (size_t)m * m * sizeof *L);
  g_assert_cmpint(LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'L', m, L, m), ==, 0);
  double ldS = 0.0;
  for (int a = 0; a < m; a++)
    ldS += 2.0 * log(L[(size_t)a * m + a]);
  /* mu_bar */
  for (int pass = 0; pass < 2; pass++) {
    const double *src = mu;
    if (pass == 1) {
      if (!eps)
        break;
      for (int i = 0; i < n; i++)
        x[i] = mu[i] + sqrt(s[i]) * eps[i];
      src = x;
    }
    for (int a = 0; a < m; a++)
      r[a] = k[a] - cblas_ddot(n, R->A + (size_t)a * n, 1, src, 1);
    double *lam = malloc((size_t)m * sizeof *lam);
    memcpy(lam, r, (size_t)m * sizeof *lam);
    LAPACKE_dpotrs(LAPACK_ROW_MAJOR, 'L', m, 1, L, m, lam, 1);
    double *out = pass == 0 ? mu_bar : z;
    double rl = cblas_ddot(m, r, 1, lam, 1);
    for (int i = 0; i < n; i++) {
      double c = 0.0;
      for (int a = 0; a < m; a++)
        c += R->A[(size_t)a * n + i] * lam[a];
      if (out)
        out[i] = src[i] + s[i] * c;
    }
    if (pass == 0 && zp && logp) {
      double lds = 0.0, quad = 0.0;
      for (int i = 0; i < n; i++) {
        lds += log(s[i]);
        quad += (zp[i] - mu[i]) * (zp[i] - mu[i]) / s[i];
      }
      double logN = -0.5 * n * LOG_2PI - 0.5 * lds - 0.5 * quad;
      double logk = -0.5 * m * LOG_2PI - 0.5 * ldS - 0.5 * rl;
      double AA = 0.0;
      double *AAt = malloc((size_t)m * m * sizeof *AAt);
      cblas_dsyrk(CblasRowMajor, CblasLower, CblasNoTrans, m, n, 1.0, R->A, n, 0.0, AAt, m);
      LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'L', m, AAt, m);
      for (int a = 0; a < m; a++)
        AA += 2.0 * log(AAt[(size_t)a * m + a]);
      free(AAt);
      *logp = logN - logk - (drop_aat ? 0.0 : 0.5 * AA);
    }
    free(lam);
  }
  if (var_bar) {
    /* q_i = a_i^T S^{-1} a_i */
    double *col = malloc((size_t)m * sizeof *col);
    for (int i = 0; i < n; i++) {
      for (int a = 0; a < m; a++)
        col[a] = R->A[(size_t)a * n + i];
      double *y = malloc((size_t)m * sizeof *y);
      memcpy(y, col, (size_t)m * sizeof *y);
      LAPACKE_dpotrs(LAPACK_ROW_MAJOR, 'L', m, 1, L, m, y, 1);
      double q = cblas_ddot(m, col, 1, y, 1);
      var_bar[i] = s[i] - s[i] * s[i] * q;
      free(y);
    }
    free(col);
  }
  free(S);
  free(L);
  free(AS);
  free(r);
  free(x);
}

typedef enum { F_MEAN, F_VAR, F_Z, F_LOGP, F_L2, F_L1 } Fn;

/* Scalar objective of the whole batch in double: sum W .* output (or the
 * losses). s is per-sample (B x n) or, if iso, one value. */
static double
ref_obj(const Ref *R, Fn fn, int B, const double *mu, const double *s, bool iso, const double *k, int krows,
        const double *eps, const double *W, const double *zfix, const double *y)
{
  int n = R->n, m = R->m;
  double *sb = malloc((size_t)n * sizeof *sb), *o1 = malloc((size_t)n * sizeof *o1);
  double *o2 = malloc((size_t)n * sizeof *o2), *o3 = malloc((size_t)n * sizeof *o3);
  double total = 0.0;
  for (int b = 0; b < B; b++) {
    for (int i = 0; i < n; i++)
      sb[i] = iso ? s[0] : s[(size_t)b * n + i];
    const double *kb = k + (size_t)(krows == 1 ? 0 : b) * m;
    double lp = 0.0;
    ref_one(R, mu + (size_t)b * n, sb, kb, fn == F_Z ? eps + (size_t)b * n : NULL, o1, o2, o3,
            fn == F_LOGP ? zfix + (size_t)b * n : NULL, &lp, false);
    const double *wb = W + (size_t)b * n;
    switch (fn) {
    case F_MEAN:
      for (int i = 0; i < n; i++)
        total += wb[i] * o1[i];
      break;
    case F_VAR:
      for (int i = 0; i < n; i++)
        total += wb[i] * o2[i];
      break;
    case F_Z:
      for (int i = 0; i < n; i++)
        total += wb[i] * o3[i];
      break;
    case F_LOGP:
      total += W[b] * lp;
      break;
    case F_L2:
      for (int i = 0; i < n; i++) {
        double d = o1[i] - y[(size_t)b * n + i];
        total += d * d + o2[i];
      }
      break;
    case F_L1:
      for (int i = 0; i < n; i++) {
        double d = o1[i] - y[(size_t)b * n + i], v = o2[i];
        total += sqrt(2.0 * v / M_PI) * exp(-d * d / (2.0 * v)) + d * erf(d / sqrt(2.0 * v));
      }
      break;
    }
  }
  free(sb);
  free(o1);
  free(o2);
  free(o3);
  return total;
}

/* ---- tests -------------------------------------------------------------------- */

static void
random_problem(CfRng *rng, int m, int n, double **A, double **b)
{
  *A = malloc((size_t)m * n * sizeof **A);
  *b = malloc((size_t)m * sizeof **b);
  fill_normal_d(rng, *A, (size_t)m * n);
  fill_normal_d(rng, *b, (size_t)m);
}

/* |A z - k| at round-off for random full-rank A, per-sample s and k; the
 * forward outputs match the double reference. */
static void
test_residual_and_reference(void)
{
  CfRng rng;
  cf_rng_seed(&rng, 11);
  const int sizes[][3] = {{3, 10, 16}, {40, 100, 8}, {128, 256, 4}};
  for (int t = 0; t < 3; t++) {
    int m = sizes[t][0], n = sizes[t][1], B = sizes[t][2];
    double *A, *b;
    random_problem(&rng, m, n, &A, &b);
    CfCgauss g;
    setup_ok(&g, m, n, A, b, false);
    g_assert_cmpint(g.path, ==, CF_CGAUSS_DENSE);
    float *mu = malloc((size_t)B * n * sizeof *mu), *var = malloc((size_t)B * n * sizeof *var);
    float *k = malloc((size_t)B * m * sizeof *k);
    fill_normal_f(&rng, mu, (size_t)B * n, 2.0f);
    fill_var(&rng, var, (size_t)B * n, 0.01, 10.0);
    fill_normal_f(&rng, k, (size_t)B * m, 3.0f);
    forward_ok(&g, B, mu, var, CF_CGAUSS_VAR_DIAG, k, B, m);
    double res_mean = cf_cgauss_residual(&g, g.mu_bar);
    int steps_mean = g.refine_steps;
    cf_cgauss_marginal_var(&g);
    cf_cgauss_sample(&g, NULL, &rng);
    double res = cf_cgauss_residual(&g, g.z);
    g_test_message("m=%d n=%d B=%d (var 0.01..10): max relative residual |Az-k|/(|A||z|+|k|) sample %.2e, "
                   "mean %.2e; refinement steps %d/%d",
                   m, n, B, res, res_mean, steps_mean, g.refine_steps);
    g_assert_cmpfloat(res, <, 4e-7);
    g_assert_cmpfloat(res_mean, <, 4e-7);
    /* reference */
    Ref R = {n, m, A};
    double *mb = malloc((size_t)n * sizeof *mb), *vb = malloc((size_t)n * sizeof *vb);
    double *md = malloc((size_t)n * sizeof *md), *sd = malloc((size_t)n * sizeof *sd);
    double *kd = malloc((size_t)m * sizeof *kd);
    double emu = 0.0, evar = 0.0;
    for (int bb = 0; bb < B; bb++) {
      for (int i = 0; i < n; i++) {
        md[i] = mu[(size_t)bb * n + i];
        sd[i] = var[(size_t)bb * n + i];
      }
      for (int a = 0; a < m; a++)
        kd[a] = k[(size_t)bb * m + a];
      ref_one(&R, md, sd, kd, NULL, mb, vb, NULL, NULL, NULL, false);
      float *mbf = malloc((size_t)n * sizeof *mbf), *vbf = malloc((size_t)n * sizeof *vbf);
      for (int i = 0; i < n; i++) {
        mbf[i] = (float)mb[i];
        vbf[i] = (float)vb[i];
      }
      emu = fmax(emu, max_rel_f(g.mu_bar + (size_t)bb * n, mbf, (size_t)n));
      evar = fmax(evar, max_rel_f(g.var_bar + (size_t)bb * n, vbf, (size_t)n));
      free(mbf);
      free(vbf);
    }
    g_test_message("  vs double reference: mu_bar max rel %.2e, var_bar max rel %.2e", emu, evar);
    g_assert_cmpfloat(emu, <, 1e-5);
    g_assert_cmpfloat(evar, <, 1e-3);
    free(mb);
    free(vb);
    free(md);
    free(sd);
    free(kd);
    free(mu);
    free(var);
    free(k);
    free(A);
    free(b);
    cf_cgauss_clear(&g);
  }
}

/* Monte Carlo: mean and covariance of samples match mu_bar and Sigma_bar. */
static void
test_monte_carlo(void)
{
  CfRng rng;
  cf_rng_seed(&rng, 5);
  int m = 2, n = 5, N = 40000;
  double *A, *b;
  random_problem(&rng, m, n, &A, &b);
  CfCgauss g;
  setup_ok(&g, m, n, A, b, false);
  float mu1[5] = {0.5f, -1.0f, 2.0f, 0.0f, 1.0f}, var1[5] = {0.2f, 1.0f, 3.0f, 0.5f, 2.0f};
  float *mu = malloc((size_t)N * n * sizeof *mu), *var = malloc((size_t)N * n * sizeof *var);
  for (int i = 0; i < N; i++) {
    memcpy(mu + (size_t)i * n, mu1, sizeof mu1);
    memcpy(var + (size_t)i * n, var1, sizeof var1);
  }
  forward_ok(&g, N, mu, var, CF_CGAUSS_VAR_DIAG, NULL, 0, 0);
  cf_cgauss_sample(&g, NULL, &rng);
  /* Sigma_bar in double: Sigma - Sigma A^T S^{-1} A Sigma */
  double Sb[25], S[4], AS[10];
  for (int a = 0; a < m; a++)
    for (int i = 0; i < n; i++)
      AS[a * n + i] = A[a * n + i] * var1[i];
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, m, n, 1.0, AS, n, A, n, 0.0, S, m);
  double det = S[0] * S[3] - S[1] * S[2];
  double Si[4] = {S[3] / det, -S[1] / det, -S[2] / det, S[0] / det};
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++) {
      double v = 0.0;
      for (int a = 0; a < m; a++)
        for (int c = 0; c < m; c++)
          v += AS[a * n + i] * Si[a * m + c] * AS[c * n + j];
      Sb[i * n + j] = (i == j ? var1[i] : 0.0) - v;
    }
  double mean[5] = {0}, cov[25] = {0};
  for (int s = 0; s < N; s++)
    for (int i = 0; i < n; i++)
      mean[i] += g.z[(size_t)s * n + i] / (double)N;
  for (int s = 0; s < N; s++)
    for (int i = 0; i < n; i++)
      for (int j = 0; j < n; j++)
        cov[i * n + j] += (g.z[(size_t)s * n + i] - mean[i]) * (g.z[(size_t)s * n + j] - mean[j]) / (N - 1.0);
  double zm = 0.0, zc = 0.0;
  for (int i = 0; i < n; i++) {
    double se = sqrt(fmax(Sb[i * n + i], 1e-30) / N);
    zm = fmax(zm, fabs(mean[i] - g.mu_bar[i]) / se);
    for (int j = 0; j < n; j++) {
      double sec = sqrt((Sb[i * n + i] * Sb[j * n + j] + Sb[i * n + j] * Sb[i * n + j]) / N);
      zc = fmax(zc, fabs(cov[i * n + j] - Sb[i * n + j]) / sec);
    }
  }
  g_test_message("Monte Carlo N=%d, n=%d, m=%d: max |mean - mu_bar| = %.2f SE, max |cov - Sigma_bar| = %.2f SE", N,
                 n, m, zm, zc);
  g_assert_cmpfloat(zm, <, 4.5);
  g_assert_cmpfloat(zc, <, 4.5);
  free(mu);
  free(var);
  free(A);
  free(b);
  cf_cgauss_clear(&g);
}

/* log-density equals a Gaussian on null-space coordinates: w = N^T (z - mu_bar),
 * w ~ N(0, N^T Sigma_bar N), N orthonormal basis of null(A). */
static double
nullspace_logp(int m, int n, const double *A, const double *mu_bar, const double *s, const double *z)
{
  double *U = malloc((size_t)m * n * sizeof *U), *Vt = malloc((size_t)n * n * sizeof *Vt);
  double *sv = malloc((size_t)m * sizeof *sv), *Ac = malloc((size_t)m * n * sizeof *Ac);
  memcpy(Ac, A, (size_t)m * n * sizeof *Ac);
  g_assert_cmpint(LAPACKE_dgesdd(LAPACK_ROW_MAJOR, 'A', m, n, Ac, n, sv, U, m, Vt, n), ==, 0);
  int p = n - m;
  const double *N = Vt + (size_t)m * n; /* rows m..n-1 of V^T: p x n */
  /* Sigma_bar restricted: on null space, N Sigma_bar N^T = (N Sigma^{-1} N^T)^{-1}
   * -- compute directly from Sigma_bar instead (independent path). */
  double *Sb = malloc((size_t)n * n * sizeof *Sb);
  double *S = calloc((size_t)m * m, sizeof *S), *AS = calloc((size_t)m * n, sizeof *AS);
  for (int a = 0; a < m; a++)
    for (int i = 0; i < n; i++)
      AS[(size_t)a * n + i] = A[(size_t)a * n + i] * s[i];
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, m, n, 1.0, AS, n, A, n, 0.0, S, m);
  double *X = malloc((size_t)m * n * sizeof *X);
  memcpy(X, AS, (size_t)m * n * sizeof *X);
  g_assert_cmpint(LAPACKE_dposv(LAPACK_ROW_MAJOR, 'L', m, n, S, m, X, n), ==, 0);
  cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, n, m, -1.0, AS, n, X, n, 0.0, Sb, n);
  for (int i = 0; i < n; i++)
    Sb[(size_t)i * n + i] += s[i];
  double *T = malloc((size_t)p * n * sizeof *T), *C = malloc((size_t)p * p * sizeof *C);
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, p, n, n, 1.0, N, n, Sb, n, 0.0, T, n);
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, p, p, n, 1.0, T, n, N, n, 0.0, C, p);
  double *w = malloc((size_t)p * sizeof *w), *d = malloc((size_t)n * sizeof *d);
  for (int i = 0; i < n; i++)
    d[i] = z[i] - mu_bar[i];
  cblas_dgemv(CblasRowMajor, CblasNoTrans, p, n, 1.0, N, n, d, 1, 0.0, w, 1);
  g_assert_cmpint(LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'L', p, C, p), ==, 0);
  double ld = 0.0;
  for (int i = 0; i < p; i++)
    ld += 2.0 * log(C[(size_t)i * p + i]);
  cblas_dtrsv(CblasRowMajor, CblasLower, CblasNoTrans, CblasNonUnit, p, C, p, w, 1);
  double quad = cblas_ddot(p, w, 1, w, 1);
  double lp = -0.5 * p * LOG_2PI - 0.5 * ld - 0.5 * quad;
  free(U);
  free(Vt);
  free(sv);
  free(Ac);
  free(Sb);
  free(S);
  free(AS);
  free(X);
  free(T);
  free(C);
  free(w);
  free(d);
  return lp;
}

static void
check_logp_case(const char *name, int m, int n, double *A, double *b, bool iso, CfRng *rng)
{
  int B = 3;
  CfCgauss g;
  setup_ok(&g, m, n, A, b, false);
  float *mu = malloc((size_t)B * n * sizeof *mu), *var = malloc((size_t)B * n * sizeof *var);
  fill_normal_f(rng, mu, (size_t)B * n, 1.0f);
  fill_var(rng, var, (size_t)B * n, 0.1, 4.0);
  forward_ok(&g, B, mu, var, iso ? CF_CGAUSS_VAR_ISO : CF_CGAUSS_VAR_DIAG, NULL, 0, 0);
  cf_cgauss_sample(&g, NULL, rng);
  double lp[3], lpd[3];
  cf_cgauss_log_density(&g, g.z, lp);
  g.drop_logdet_aat = true;
  cf_cgauss_log_density(&g, g.z, lpd);
  double worst = 0.0;
  for (int bb = 0; bb < B; bb++) {
    double *mb = malloc((size_t)n * sizeof *mb), *s = malloc((size_t)n * sizeof *s), *z = malloc((size_t)n * sizeof *z);
    for (int i = 0; i < n; i++) {
      mb[i] = g.mu[(size_t)bb * n + i] + g.s[(size_t)bb * n + i] * g.c[(size_t)bb * n + i];
      s[i] = iso ? var[0] : var[(size_t)bb * n + i];
      z[i] = g.z[(size_t)bb * n + i];
    }
    double direct = nullspace_logp(m, n, A, mb, s, z);
    worst = fmax(worst, fabs(lp[bb] - direct) / (1.0 + fabs(direct)));
    g_assert_cmpfloat(fabs((lpd[bb] - lp[bb]) - 0.5 * g.logdet_aat), <, 1e-9 * (1.0 + fabs(lp[bb])));
    free(mb);
    free(s);
    free(z);
  }
  g_test_message("log-density %s (m=%d n=%d, path %s): max |layer - null-space direct| / (1+|direct|) = %.2e; "
                 "1/2 log det(AA^T) = %.4f",
                 name, m, n, g.path == CF_CGAUSS_BLOCKS ? "blocks" : "dense", worst, 0.5 * g.logdet_aat);
  g_assert_cmpfloat(worst, <, 1e-6);
  free(mu);
  free(var);
  cf_cgauss_clear(&g);
}

static void
test_log_density(void)
{
  CfRng rng;
  cf_rng_seed(&rng, 21);
  double *A, *b;
  random_problem(&rng, 4, 12, &A, &b);
  check_logp_case("dense diag", 4, 12, A, b, false, &rng);
  check_logp_case("dense iso", 4, 12, A, b, true, &rng);
  free(A);
  free(b);
  /* one sum: 1/2 log det(AA^T) = 1/2 log n */
  int n = 7;
  double ones[7] = {1, 1, 1, 1, 1, 1, 1}, k0 = 2.0;
  check_logp_case("sum", 1, n, ones, &k0, false, &rng);
  double blk[2 * 7] = {2, 2, 2, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 0}, kb[2] = {1.0, -1.0};
  check_logp_case("block sums", 2, n, blk, kb, false, &rng);
}

/* ---- gradient checks ---------------------------------------------------------- */

typedef struct {
  const char *name;
  Fn fn;
  CfCgaussEstimator est;
} GradCase;

static void
grad_check(const char *label, int m, int n, const double *A, bool iso, bool force_dense, CfRng *rng)
{
  int B = 3;
  double *bvec = calloc((size_t)m, sizeof *bvec);
  CfCgauss g;
  setup_ok(&g, m, n, A, bvec, force_dense);
  size_t bn = (size_t)B * n;
  float *mu = malloc(bn * sizeof *mu), *var = malloc(bn * sizeof *var), *k = malloc((size_t)B * m * sizeof *k);
  float *eps = malloc(bn * sizeof *eps), *y = malloc(bn * sizeof *y);
  fill_normal_f(rng, mu, bn, 1.0f);
  fill_var(rng, var, bn, 0.3, 3.0);
  if (iso)
    var[0] = 0.7f;
  fill_normal_f(rng, k, (size_t)B * m, 1.0f);
  fill_normal_f(rng, eps, bn, 1.0f);
  fill_normal_f(rng, y, bn, 1.0f);
  double *W = malloc(bn * sizeof *W);
  fill_normal_d(rng, W, bn);
  /* double copies of the (float) inputs for the reference */
  double *md = malloc(bn * sizeof *md), *sd = malloc(bn * sizeof *sd), *kd = malloc((size_t)B * m * sizeof *kd);
  double *ed = malloc(bn * sizeof *ed), *yd = malloc(bn * sizeof *yd), *zfix = malloc(bn * sizeof *zfix);
  for (size_t i = 0; i < bn; i++) {
    md[i] = mu[i];
    sd[i] = var[i];
    ed[i] = eps[i];
    yd[i] = y[i];
  }
  for (size_t i = 0; i < (size_t)B * m; i++)
    kd[i] = k[i];
  Ref R = {n, m, A};

  const GradCase cases[] = {
      {"mean", F_MEAN, CF_CGAUSS_ME}, {"var_bar", F_VAR, CF_CGAUSS_ME}, {"sample ME", F_MEAN, CF_CGAUSS_ME},
      {"sample CR", F_Z, CF_CGAUSS_CR}, {"log-density", F_LOGP, CF_CGAUSS_ME}, {"expected L2", F_L2, CF_CGAUSS_ME},
      {"expected L1", F_L1, CF_CGAUSS_ME},
  };
  int nv = iso ? 1 : (int)bn;
  float *dmu = malloc(bn * sizeof *dmu), *dvar = malloc(bn * sizeof *dvar);
  double *gmu = malloc(bn * sizeof *gmu), *gvar = malloc(bn * sizeof *gvar);
  double *nmu = malloc(bn * sizeof *nmu), *nvar = malloc(bn * sizeof *nvar);
  double *up = malloc(bn * sizeof *up), *up2 = malloc(bn * sizeof *up2);
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    const GradCase *gc = &cases[c];
    g.estimator = gc->est;
    forward_ok(&g, B, mu, var, iso ? CF_CGAUSS_VAR_ISO : CF_CGAUSS_VAR_DIAG, k, B, m);
    cf_cgauss_marginal_var(&g);
    memset(dmu, 0, bn * sizeof *dmu);
    memset(dvar, 0, bn * sizeof *dvar);
    bool sample = strncmp(gc->name, "sample", 6) == 0;
    if (sample) {
      cf_cgauss_sample(&g, eps, NULL);
      float *dz = malloc(bn * sizeof *dz);
      for (size_t i = 0; i < bn; i++)
        dz[i] = (float)W[i];
      cf_cgauss_backward_sample(&g, dz, dmu, dvar);
      free(dz);
    } else if (gc->fn == F_MEAN) {
      cf_cgauss_backward_mean(&g, W, dmu, dvar);
    } else if (gc->fn == F_VAR) {
      cf_cgauss_backward_var(&g, W, dvar);
    } else if (gc->fn == F_LOGP) {
      /* a fixed constrained point per sample: the exact sample */
      cf_cgauss_sample(&g, eps, NULL);
      for (size_t i = 0; i < bn; i++)
        zfix[i] = g.z[i];
      double lp[3];
      cf_cgauss_log_density(&g, g.z, lp);
      cf_cgauss_backward_log_density(&g, W, dmu, dvar);
    } else {
      if (gc->fn == F_L2)
        cf_cgauss_expected_l2(&g, y, NULL, up, up2);
      else
        cf_cgauss_expected_l1(&g, y, NULL, up, up2);
      cf_cgauss_backward_mean(&g, up, dmu, dvar);
      cf_cgauss_backward_var(&g, up2, dvar);
    }
    for (size_t i = 0; i < bn; i++)
      gmu[i] = dmu[i];
    for (int i = 0; i < nv; i++)
      gvar[i] = dvar[i];
    /* central differences of the reference in double */
    for (size_t i = 0; i < bn; i++) {
      double h = 1e-6 * fmax(1.0, fabs(md[i])), old = md[i];
      md[i] = old + h;
      double fp = ref_obj(&R, gc->fn, B, md, sd, iso, kd, B, ed, W, zfix, yd);
      md[i] = old - h;
      double fm = ref_obj(&R, gc->fn, B, md, sd, iso, kd, B, ed, W, zfix, yd);
      md[i] = old;
      nmu[i] = (fp - fm) / (2.0 * h);
    }
    for (int i = 0; i < nv; i++) {
      double h = 1e-6 * sd[i], old = sd[i];
      sd[i] = old + h;
      double fp = ref_obj(&R, gc->fn, B, md, sd, iso, kd, B, ed, W, zfix, yd);
      sd[i] = old - h;
      double fm = ref_obj(&R, gc->fn, B, md, sd, iso, kd, B, ed, W, zfix, yd);
      sd[i] = old;
      nvar[i] = (fp - fm) / (2.0 * h);
    }
    double emu = gc->fn == F_VAR ? 0.0 : rel_err(gmu, nmu, bn);
    double evar = rel_err(gvar, nvar, (size_t)nv);
    g_test_message("gradient %s %-12s: d/dmu rel err %.2e, d/dvar rel err %.2e", label, gc->name, emu, evar);
    g_assert_cmpfloat(emu, <, 2e-4);
    g_assert_cmpfloat(evar, <, 2e-4);
  }
  free(dmu);
  free(dvar);
  free(gmu);
  free(gvar);
  free(nmu);
  free(nvar);
  free(up);
  free(up2);
  free(mu);
  free(var);
  free(k);
  free(eps);
  free(y);
  free(W);
  free(md);
  free(sd);
  free(kd);
  free(ed);
  free(yd);
  free(zfix);
  free(bvec);
  cf_cgauss_clear(&g);
}

static void
test_gradients(void)
{
  CfRng rng;
  cf_rng_seed(&rng, 33);
  int m = 3, n = 8;
  double *A, *b;
  random_problem(&rng, m, n, &A, &b);
  grad_check("dense diag", m, n, A, false, false, &rng);
  grad_check("dense iso ", m, n, A, true, false, &rng);
  double blk[2 * 8] = {1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0.5, 0.5, 0.5, 0.5, 0};
  grad_check("blocks diag", 2, 8, blk, false, false, &rng);
  grad_check("blocks iso ", 2, 8, blk, true, false, &rng);
  free(A);
  free(b);
}

/* The O(n) path equals the dense path (same inputs, same eps). */
static void
test_blocks_equal_dense(void)
{
  CfRng rng;
  cf_rng_seed(&rng, 44);
  int n = 30, m = 3, B = 5;
  double *A = calloc((size_t)m * n, sizeof *A), bv[3] = {1.0, -2.0, 0.5};
  for (int i = 0; i < 10; i++)
    A[i] = 1.0;
  for (int i = 10; i < 22; i++)
    A[n + i] = 1.0;
  for (int i = 22; i < 27; i++)
    A[2 * n + i] = -3.0; /* columns 27..29 are free */
  CfCgauss gb, gd;
  setup_ok(&gb, m, n, A, bv, false);
  setup_ok(&gd, m, n, A, bv, true);
  g_assert_cmpint(gb.path, ==, CF_CGAUSS_BLOCKS);
  g_assert_cmpint(gd.path, ==, CF_CGAUSS_DENSE);
  size_t bn = (size_t)B * n;
  float *mu = malloc(bn * 4), *var = malloc(bn * 4), *eps = malloc(bn * 4), *y = malloc(bn * 4);
  fill_normal_f(&rng, mu, bn, 1.0f);
  fill_var(&rng, var, bn, 0.05, 5.0);
  fill_normal_f(&rng, eps, bn, 1.0f);
  fill_normal_f(&rng, y, bn, 1.0f);
  for (int mode = 0; mode < 2; mode++) {
    CfCgauss *gs[2] = {&gb, &gd};
    float *out[2][3];
    double lp[2][5], l1[2], l2[2];
    float *dmu[2], *dvar[2];
    for (int t = 0; t < 2; t++) {
      CfCgauss *g = gs[t];
      g->estimator = CF_CGAUSS_CR;
      forward_ok(g, B, mu, var, (CfCgaussVarMode)mode, NULL, 0, 0);
      cf_cgauss_marginal_var(g);
      cf_cgauss_sample(g, eps, NULL);
      cf_cgauss_log_density(g, g->z, lp[t]);
      double *a = malloc(bn * 8), *c = malloc(bn * 8);
      dmu[t] = calloc(bn, 4);
      dvar[t] = calloc(bn, 4);
      l2[t] = cf_cgauss_expected_l2(g, y, NULL, NULL, NULL);
      l1[t] = cf_cgauss_expected_l1(g, y, NULL, a, c);
      cf_cgauss_backward_mean(g, a, dmu[t], dvar[t]);
      cf_cgauss_backward_var(g, c, dvar[t]);
      cf_cgauss_backward_sample(g, eps, dmu[t], dvar[t]);
      double w[5] = {1, -1, 0.5, 2, 0.3};
      cf_cgauss_backward_log_density(g, w, dmu[t], dvar[t]);
      free(a);
      free(c);
      out[t][0] = g->mu_bar;
      out[t][1] = g->var_bar;
      out[t][2] = g->z;
    }
    double e0 = max_rel_f(out[0][0], out[1][0], bn), e1 = max_rel_f(out[0][1], out[1][1], bn);
    double e2 = max_rel_f(out[0][2], out[1][2], bn);
    double elp = 0.0;
    for (int bb = 0; bb < B; bb++)
      elp = fmax(elp, fabs(lp[0][bb] - lp[1][bb]) / (1.0 + fabs(lp[1][bb])));
    size_t nv = mode == 0 ? bn : 1;
    double egm = max_rel_f(dmu[0], dmu[1], bn), egv = max_rel_f(dvar[0], dvar[1], nv);
    g_test_message("blocks vs dense (%s): mu_bar %.1e, var_bar %.1e, z %.1e, logp %.1e, L1 %.1e, L2 %.1e, "
                   "dmu %.1e, dvar %.1e",
                   mode == 0 ? "diag" : "iso", e0, e1, e2, elp, fabs(l1[0] - l1[1]) / l1[1],
                   fabs(l2[0] - l2[1]) / l2[1], egm, egv);
    g_assert_cmpfloat(e0, <, 1e-5);
    g_assert_cmpfloat(e1, <, 1e-4);
    g_assert_cmpfloat(e2, <, 1e-5);
    g_assert_cmpfloat(elp, <, 1e-6);
    g_assert_cmpfloat(fabs(l1[0] - l1[1]) / l1[1], <, 1e-5);
    g_assert_cmpfloat(egm, <, 1e-4);
    g_assert_cmpfloat(egv, <, 1e-3);
    for (int t = 0; t < 2; t++) {
      free(dmu[t]);
      free(dvar[t]);
    }
  }
  free(mu);
  free(var);
  free(eps);
  free(y);
  free(A);
  cf_cgauss_clear(&gb);
  cf_cgauss_clear(&gd);
}

/* Sum constraint at the bench size: n = 784, batch 128 (report only). */
static void
test_sum_speed(void)
{
  CfRng rng;
  cf_rng_seed(&rng, 55);
  int n = 784, B = 128;
  double *A = malloc((size_t)n * sizeof *A), k0 = 0.0;
  for (int i = 0; i < n; i++)
    A[i] = 1.0;
  CfCgauss g;
  setup_ok(&g, 1, n, A, &k0, false);
  size_t bn = (size_t)B * n;
  float *mu = malloc(bn * 4), *var = malloc(bn * 4), *dz = malloc(bn * 4), *dmu = calloc(bn, 4),
        *dvar = calloc(bn, 4);
  fill_normal_f(&rng, mu, bn, 1.0f);
  fill_var(&rng, var, bn, 0.1, 2.0);
  fill_normal_f(&rng, dz, bn, 1.0f);
  int reps = 50;
  gint64 t0 = g_get_monotonic_time();
  for (int r = 0; r < reps; r++) {
    forward_ok(&g, B, mu, var, CF_CGAUSS_VAR_DIAG, NULL, 0, 0);
    cf_cgauss_sample(&g, NULL, &rng);
    cf_cgauss_backward_sample(&g, dz, dmu, dvar);
  }
  double us = (double)(g_get_monotonic_time() - t0) / reps;
  double res = cf_cgauss_residual(&g, g.z);
  g_test_message("cgauss-sum n=%d B=%d: %.0f us per batch (forward + sample + ME backward), residual %.2e", n, B,
                 us, res);
  g_assert_cmpfloat(res, <, 1e-6);
  free(mu);
  free(var);
  free(dz);
  free(dmu);
  free(dvar);
  free(A);
  cf_cgauss_clear(&g);
}

/* ---- bad input ---------------------------------------------------------------- */

static void
expect_msg(const CfError *err, CfStatus st, CfStatus want, const char *sub1, const char *sub2)
{
  if (st != want)
    g_error("status %s (%s), expected %s", cf_status_to_string(st), err->msg, cf_status_to_string(want));
  if ((sub1 && !strstr(err->msg, sub1)) || (sub2 && !strstr(err->msg, sub2)))
    g_error("message \"%s\" lacks \"%s\" / \"%s\"", err->msg, sub1 ? sub1 : "", sub2 ? sub2 : "");
  g_test_message("  %s: %s", cf_status_to_string(st), err->msg);
}

static void
test_bad_input(void)
{
  int n = 5;
  /* row 2 = row 0 + row 1 */
  double A[3 * 5] = {1, 0, 1, 0, 0, 0, 1, 0, 1, 0, 1, 1, 1, 1, 0};
  double bcons[3] = {1, 2, 3}, bincons[3] = {1, 2, 4};
  CfCgauss g;
  CfError err = {0};

  /* inconsistent A x = b names the row */
  CfStatus st = setup_status(&g, 3, n, A, bincons, &err);
  expect_msg(&err, st, CF_ERR_INCONSISTENT, "row 2", NULL);
  cf_cgauss_clear(&g);

  /* rank-deficient but consistent: the redundant row is dropped */
  setup_ok(&g, 3, n, A, bcons, false);
  g_assert_cmpint(g.m, ==, 2);
  g_assert_cmpint(g.n_dropped, ==, 1);
  g_assert_cmpint(g.dropped[0], ==, 2);
  float mu[4 * 5] = {0}, var[4 * 5];
  for (int i = 0; i < 20; i++)
    var[i] = 1.0f;
  /* per-sample k: sample 3 violates row 2 = row 0 + row 1 */
  float k[4 * 3] = {1, 2, 3, 0, 0, 0, -1, 1, 0, 1, 1, 5};
  memset(&err, 0, sizeof err);
  st = cf_cgauss_forward(&g, 4, mu, var, CF_CGAUSS_VAR_DIAG, k, 4, 3, &err);
  expect_msg(&err, st, CF_ERR_INCONSISTENT, "sample 3", "row 2");
  k[11] = 2.0f;
  forward_ok(&g, 4, mu, var, CF_CGAUSS_VAR_DIAG, k, 4, 3);
  cf_cgauss_sample(&g, mu, NULL);
  g_assert_cmpfloat(cf_cgauss_residual(&g, g.z), <, 1e-6);
  /* k with the reduced row count is also accepted */
  float kr[2] = {1, 2};
  forward_ok(&g, 4, mu, var, CF_CGAUSS_VAR_DIAG, kr, 1, 2);
  /* wrong length */
  memset(&err, 0, sizeof err);
  st = cf_cgauss_forward(&g, 4, mu, var, CF_CGAUSS_VAR_DIAG, k, 1, 4, &err);
  expect_msg(&err, st, CF_ERR_SHAPE, "k has 4 entries", "expected 3");
  memset(&err, 0, sizeof err);
  st = cf_cgauss_forward(&g, 4, mu, var, CF_CGAUSS_VAR_DIAG, k, 2, 3, &err);
  expect_msg(&err, st, CF_ERR_SHAPE, "k has 2 rows", NULL);
  /* variances: zero, negative, NaN name sample and coordinate */
  var[1 * 5 + 4] = 0.0f;
  memset(&err, 0, sizeof err);
  st = cf_cgauss_forward(&g, 4, mu, var, CF_CGAUSS_VAR_DIAG, NULL, 0, 0, &err);
  expect_msg(&err, st, CF_ERR_INVALID, "sample 1, coordinate 4", "positive");
  var[1 * 5 + 4] = -2.0f;
  memset(&err, 0, sizeof err);
  st = cf_cgauss_forward(&g, 4, mu, var, CF_CGAUSS_VAR_DIAG, NULL, 0, 0, &err);
  expect_msg(&err, st, CF_ERR_INVALID, "sample 1, coordinate 4", NULL);
  var[1 * 5 + 4] = NAN;
  memset(&err, 0, sizeof err);
  st = cf_cgauss_forward(&g, 4, mu, var, CF_CGAUSS_VAR_DIAG, NULL, 0, 0, &err);
  expect_msg(&err, st, CF_ERR_NUMERIC, "sample 1, coordinate 4", NULL);
  float z0 = 0.0f;
  memset(&err, 0, sizeof err);
  st = cf_cgauss_forward(&g, 4, mu, &z0, CF_CGAUSS_VAR_ISO, NULL, 0, 0, &err);
  expect_msg(&err, st, CF_ERR_INVALID, "shared variance", NULL);
  var[1 * 5 + 4] = 1.0f;
  mu[2 * 5 + 1] = INFINITY;
  memset(&err, 0, sizeof err);
  st = cf_cgauss_forward(&g, 4, mu, var, CF_CGAUSS_VAR_DIAG, NULL, 0, 0, &err);
  expect_msg(&err, st, CF_ERR_NUMERIC, "sample 2, coordinate 1", NULL);
  mu[2 * 5 + 1] = 0.0f;
  /* tiny variance: floored, no gradient there, still exact */
  var[0] = 1e-12f;
  forward_ok(&g, 4, mu, var, CF_CGAUSS_VAR_DIAG, NULL, 0, 0);
  g_assert_cmpfloat(g.s[0], ==, (double)CF_CGAUSS_VAR_FLOOR);
  float dmu[20] = {0}, dvar[20] = {0}, dz[20];
  for (int i = 0; i < 20; i++)
    dz[i] = 1.0f + 0.1f * i;
  cf_cgauss_sample(&g, dz, NULL);
  cf_cgauss_backward_sample(&g, dz, dmu, dvar);
  g_assert_cmpfloat(dvar[0], ==, 0.0f);
  g_assert_cmpfloat(cf_cgauss_residual(&g, g.z), <, 1e-6);
  cf_cgauss_clear(&g);

  /* rank n: nothing left to condition */
  double I2[4] = {1, 0, 0, 1}, b2[2] = {0, 0};
  memset(&err, 0, sizeof err);
  st = setup_status(&g, 2, 2, I2, b2, &err);
  expect_msg(&err, st, CF_ERR_RANK, "rank 2", NULL);
  cf_cgauss_clear(&g);
  /* all-zero A */
  double Z[5] = {0}, b1 = 0.0;
  memset(&err, 0, sizeof err);
  st = setup_status(&g, 1, 5, Z, &b1, &err);
  expect_msg(&err, st, CF_ERR_RANK, NULL, NULL);
  cf_cgauss_clear(&g);
}

/* cf_cgauss_project is the orthogonal projection onto A x = scale k:
 * checked against x - A^T (A A^T)^{-1} (A x - scale k) computed directly
 * (normal equations in double), for the constraint's b, a shared and a
 * per-sample k, on the dense and the blocks path. */
static void
test_project(void)
{
  const int m = 2, n = 5, B = 3;
  double A[10] = {1, 2, 0, -1, 1, 0, 1, 1, 1, -2}, b[2] = {0.5, -1.0};
  double Asum[5] = {1, 1, 1, 1, 1}, bsum[1] = {2.0};
  CfRng rng;
  cf_rng_seed(&rng, 31);
  for (int path = 0; path < 2; path++) {
    int mm = path ? 1 : m;
    const double *AA = path ? Asum : A, *bb = path ? bsum : b;
    CfCgauss g;
    setup_ok(&g, mm, n, AA, bb, false);
    g_assert_cmpint(g.path, ==, path ? CF_CGAUSS_BLOCKS : CF_CGAUSS_DENSE);
    float kb[3 * 2];
    for (int i = 0; i < B * mm; i++)
      kb[i] = (float)cf_rng_normal(&rng);
    for (int kcase = 0; kcase < 3; kcase++) {
      const double scale = kcase == 1 ? 1.0 : 0.7;
      float x[15], x0[15];
      cf_rng_fill_normal(&rng, x0, (size_t)B * n);
      memcpy(x, x0, sizeof x);
      const float *k = kcase == 0 ? NULL : kb;
      int kr = kcase == 0 ? 0 : kcase == 1 ? 1 : B;
      g_assert_cmpint(cf_cgauss_project(&g, B, x, k, kr, k ? mm : 0, scale, NULL), ==, CF_OK);
      for (int r = 0; r < B; r++) {
        /* direct: lambda = (A A^T)^{-1} (A x0 - scale k), x = x0 - A^T lambda (m <= 2) */
        double G[4] = {0}, res[2] = {0}, lam[2];
        for (int i = 0; i < mm; i++) {
          double kk = k ? k[(kcase == 1 ? 0 : r) * mm + i] : bb[i];
          for (int q = 0; q < n; q++)
            res[i] += AA[i * n + q] * x0[r * n + q];
          res[i] -= scale * kk;
          for (int j = 0; j < mm; j++)
            for (int q = 0; q < n; q++)
              G[i * mm + j] += AA[i * n + q] * AA[j * n + q];
        }
        if (mm == 1) {
          lam[0] = res[0] / G[0];
        } else {
          double det = G[0] * G[3] - G[1] * G[2];
          lam[0] = (G[3] * res[0] - G[1] * res[1]) / det;
          lam[1] = (G[0] * res[1] - G[2] * res[0]) / det;
        }
        for (int q = 0; q < n; q++) {
          double want = x0[r * n + q];
          for (int i = 0; i < mm; i++)
            want -= AA[i * n + q] * lam[i];
          g_assert_cmpfloat(fabs(x[r * n + q] - want), <=, 1e-5 * (1 + fabs(want)));
        }
      }
    }
    cf_cgauss_clear(&g);
  }
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/cgauss/residual-and-reference", test_residual_and_reference);
  g_test_add_func("/cgauss/monte-carlo", test_monte_carlo);
  g_test_add_func("/cgauss/log-density", test_log_density);
  g_test_add_func("/cgauss/gradients", test_gradients);
  g_test_add_func("/cgauss/blocks-equal-dense", test_blocks_equal_dense);
  g_test_add_func("/cgauss/sum-speed", test_sum_speed);
  g_test_add_func("/cgauss/bad-input", test_bad_input);
  g_test_add_func("/cgauss/project", test_project);
  return g_test_run();
}
