/* Tests for the Frechet distance (core/metrics_fd.c). */
#include <glib.h>
#include <math.h>
#include <string.h>

#include "metrics.h"
#include "rng.h"

/* X = mu + L z, z ~ N(0, I): n rows of dimension d (L lower-triangular d x d). */
static float *
gaussian_sample(CfRng *rng, int n, int d, const double *mu, const double *L)
{
  float *X = g_new(float, (size_t)n * d);
  double z[8];
  g_assert_cmpint(d, <=, 8);
  for (int i = 0; i < n; i++) {
    for (int j = 0; j < d; j++)
      z[j] = cf_rng_normal(rng);
    for (int j = 0; j < d; j++) {
      double v = mu[j];
      for (int k = 0; k <= j; k++)
        v += L[j * d + k] * z[k];
      X[(size_t)i * d + j] = (float)v;
    }
  }
  return X;
}

/* S = L L^T */
static void
cov_from_chol(const double *L, int d, double *S)
{
  for (int i = 0; i < d; i++)
    for (int j = 0; j < d; j++) {
      double s = 0.0;
      for (int k = 0; k < d; k++)
        s += L[i * d + k] * L[j * d + k];
      S[i * d + j] = s;
    }
}

/* 2 x 2 closed form: the eigenvalues of S1 S2 are real and >= 0, so
 * tr((S1 S2)^{1/2}) = sqrt(l1) + sqrt(l2) = sqrt(tr(S1 S2) + 2 sqrt(det S1 det S2)). */
static double
fd_2x2(const double *m1, const double *S1, const double *m2, const double *S2)
{
  double tr12 = S1[0] * S2[0] + S1[1] * S2[2] + S1[2] * S2[1] + S1[3] * S2[3];
  double det1 = S1[0] * S1[3] - S1[1] * S1[2], det2 = S2[0] * S2[3] - S2[1] * S2[2];
  double trs = sqrt(tr12 + 2.0 * sqrt(det1 * det2));
  double dm = (m1[0] - m2[0]) * (m1[0] - m2[0]) + (m1[1] - m2[1]) * (m1[1] - m2[1]);
  return dm + S1[0] + S1[3] + S2[0] + S2[3] - 2.0 * trs;
}

/* The population function against independent closed forms. */
static void
test_gaussian_closed_form(void)
{
  CfError err;
  /* non-commuting 2 x 2 */
  double m1[2] = {0.5, -1.0}, m2[2] = {-0.25, 0.75};
  double S1[4] = {2.0, 0.6, 0.6, 0.5}, S2[4] = {0.7, -0.3, -0.3, 1.8};
  double fd;
  g_assert_cmpint(cf_frechet_gaussian(m1, S1, m2, S2, 2, &fd, &err), ==, CF_OK);
  double want = fd_2x2(m1, S1, m2, S2);
  g_test_message("2x2 closed form %.12g, computed %.12g", want, fd);
  g_assert_cmpfloat(fabs(fd - want), <, 1e-12 * (1 + want));
  /* diagonal d = 5: sum (sqrt a - sqrt b)^2 + ||mu1 - mu2||^2 */
  double a[5] = {1, 4, 0.25, 9, 2}, b[5] = {4, 1, 1, 9, 0.5};
  double D1[25] = {0}, D2[25] = {0}, z1[5] = {1, 2, 3, 4, 5}, z2[5] = {1, 2, 3, 4, 3};
  want = 4.0;
  for (int i = 0; i < 5; i++) {
    D1[i * 5 + i] = a[i];
    D2[i * 5 + i] = b[i];
    want += (sqrt(a[i]) - sqrt(b[i])) * (sqrt(a[i]) - sqrt(b[i]));
  }
  g_assert_cmpint(cf_frechet_gaussian(z1, D1, z2, D2, 5, &fd, &err), ==, CF_OK);
  g_assert_cmpfloat(fabs(fd - want), <, 1e-12 * want);
  /* a singular S1 (rank 1): clamped eigenvalues, still the 2 x 2 closed form */
  double Sr[4] = {1.0, 2.0, 2.0, 4.0};
  g_assert_cmpint(cf_frechet_gaussian(m1, Sr, m2, S2, 2, &fd, &err), ==, CF_OK);
  want = fd_2x2(m1, Sr, m2, S2);
  g_assert_cmpfloat(fabs(fd - want), <, 1e-9 * (1 + want));
}

/* Monte Carlo: the plug-in FD of two samples against the closed form of
 * their populations. K independent replicates of n rows per set; the mean
 * estimate must be within 4 standard errors (from the replicates' spread,
 * i.e. from the sample size) plus the plug-in bias bound of the closed
 * form. The mean term alone has bias tr(S1)/n + tr(S2)/n; the covariance
 * term's bias is of the same order, so 3 (tr S1 + tr S2)/n bounds both. */
static void
test_monte_carlo(void)
{
  enum { d = 2, K = 10, n = 4000 };
  double m1[2] = {0.5, -1.0}, m2[2] = {-0.25, 0.75};
  double L1[4] = {1.2, 0, 0.4, 0.6}, L2[4] = {0.8, 0, -0.5, 1.1};
  double S1[4], S2[4];
  cov_from_chol(L1, d, S1);
  cov_from_chol(L2, d, S2);
  double want = fd_2x2(m1, S1, m2, S2);
  CfRng rng;
  cf_rng_seed_stream(&rng, 2024, 3);
  double est[K], sum = 0.0;
  for (int r = 0; r < K; r++) {
    float *X = gaussian_sample(&rng, n, d, m1, L1), *Y = gaussian_sample(&rng, n, d, m2, L2);
    CfError err;
    g_assert_cmpint(cf_frechet_distance(X, n, Y, n, d, &est[r], &err), ==, CF_OK);
    sum += est[r];
    g_free(X);
    g_free(Y);
  }
  double mean = sum / K, var = 0.0;
  for (int r = 0; r < K; r++)
    var += (est[r] - mean) * (est[r] - mean);
  double se = sqrt(var / (K - 1) / K);
  double bias = 3.0 * (S1[0] + S1[3] + S2[0] + S2[3]) / n;
  double tol = 4.0 * se + bias;
  g_test_message("Monte Carlo FD %.5f (se %.2g over %d x %d rows), closed form %.5f, tol %.3g", mean, se, K, n, want,
                 tol);
  g_assert_cmpfloat(fabs(mean - want), <, tol);
  g_assert_cmpfloat(tol, <, 0.05 * want); /* the test has teeth */
}

static float *
random_features(CfRng *rng, int n, int d)
{
  float *X = g_new(float, (size_t)n * d);
  for (int i = 0; i < n; i++)
    for (int j = 0; j < d; j++) /* correlated, non-Gaussian columns */
      X[(size_t)i * d + j] = (float)(cf_rng_normal(rng) * (1 + j % 3) + (j ? X[(size_t)i * d + j - 1] : 0) +
                                     cf_rng_uniform(rng));
  return X;
}

static void
test_identity_symmetry_translation(void)
{
  enum { n = 3000, d = 16 };
  CfRng rng;
  cf_rng_seed_stream(&rng, 7, 1);
  float *X = random_features(&rng, n, d), *Y = random_features(&rng, n + 500, d);
  CfError err;
  double fxx, fxy, fyx;
  g_assert_cmpint(cf_frechet_distance(X, n, X, n, d, &fxx, &err), ==, CF_OK);
  double scale = 0.0;
  for (int j = 0; j < d; j++)
    scale += (1 + j % 3) * (1 + j % 3) * (double)(j + 1);
  g_test_message("FD(X, X) = %.3g (trace scale %.3g)", fxx, scale);
  g_assert_cmpfloat(fxx, <, 1e-9 * scale);
  g_assert_cmpint(cf_frechet_distance(X, n, Y, n + 500, d, &fxy, &err), ==, CF_OK);
  g_assert_cmpint(cf_frechet_distance(Y, n + 500, X, n, d, &fyx, &err), ==, CF_OK);
  g_test_message("FD(X, Y) = %.9g, FD(Y, X) = %.9g", fxy, fyx);
  g_assert_cmpfloat(fxy, >, 0.0);
  g_assert_cmpfloat(fabs(fxy - fyx), <, 1e-9 * (scale + fxy));
  /* translation: FD(X, X + t) = ||t||^2 (same covariance) */
  float *Z = g_new(float, (size_t)n * d);
  double t2 = 0.0;
  float t[d];
  for (int j = 0; j < d; j++) {
    t[j] = (float)(0.25 * (j - 7));
    t2 += (double)t[j] * t[j];
  }
  for (int i = 0; i < n; i++)
    for (int j = 0; j < d; j++)
      Z[(size_t)i * d + j] = X[(size_t)i * d + j] + t[j];
  double fxz;
  g_assert_cmpint(cf_frechet_distance(X, n, Z, n, d, &fxz, &err), ==, CF_OK);
  g_test_message("FD(X, X + t) = %.9g, ||t||^2 = %.9g", fxz, t2);
  /* Z is rounded to float: its covariance differs from X's by ~1e-7 relative */
  g_assert_cmpfloat(fabs(fxz - t2), <, 1e-5 * (t2 + scale));
  g_free(X);
  g_free(Y);
  g_free(Z);
}

static void
test_errors(void)
{
  float X[6] = {0, 1, 2, 3, 4, 5};
  double fd = -1;
  CfError err;
  g_assert_cmpint(cf_frechet_distance(X, 1, X, 3, 2, &fd, &err), ==, CF_ERR_INVALID);
  X[3] = NAN;
  g_assert_cmpint(cf_frechet_distance(X, 3, X, 3, 2, &fd, &err), ==, CF_ERR_INVALID);
  g_assert_nonnull(strstr(err.msg, "not finite"));
  g_assert_cmpfloat(fd, ==, -1);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/metrics_fd/gaussian-closed-form", test_gaussian_closed_form);
  g_test_add_func("/metrics_fd/monte-carlo", test_monte_carlo);
  g_test_add_func("/metrics_fd/identity-symmetry-translation", test_identity_symmetry_translation);
  g_test_add_func("/metrics_fd/errors", test_errors);
  return g_test_run();
}
