/* Tests for core/metrics: violation statistics, log histograms, energy
 * distance and RBF-MMD. */
#include <glib.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "rng.h"

#define assert_close(a, b, tol) g_assert_cmpfloat(fabs((a) - (b)), <=, (tol))

/* ------------------------------------------------------------------------ */
/* violation statistics                                                     */

static void
test_tolerance(void)
{
  const double b[] = {3.0, 4.0};
  assert_close(cf_violation_tolerance(1e-4, b, 2), 6e-4, 1e-18);
  assert_close(cf_violation_tolerance(1e-4, NULL, 0), 1e-4, 1e-18);
}

static void
test_stats(void)
{
  CfViolationStats s;
  const double v[] = {5, 1, 3, 2, 4};
  cf_violation_stats(&s, v, 5, 3.0);
  g_assert_cmpint(s.count, ==, 5);
  assert_close(s.mean, 3.0, 1e-15);
  assert_close(s.median, 3.0, 0);
  /* p99: position 0.99 * 4 = 3.96 between 4 and 5 */
  assert_close(s.p99, 4.96, 1e-13);
  assert_close(s.max, 5.0, 0);
  g_assert_cmpfloat(s.tol, ==, 3.0);
  g_assert_cmpint(s.n_satisfied, ==, 3); /* 1, 2 and the tie 3 */
  assert_close(s.frac_satisfied, 0.6, 1e-15);

  /* even count: median interpolates */
  const double w[] = {4, 1, 3, 2};
  cf_violation_stats(&s, w, 4, 0.5);
  assert_close(s.median, 2.5, 0);
  assert_close(s.p99, 3.97, 1e-13); /* 0.99 * 3 = 2.97: 3 + 0.97 * 1 */
  g_assert_cmpint(s.n_satisfied, ==, 0);
  g_assert_cmpfloat(s.frac_satisfied, ==, 0.0);

  /* single value, all ties at tol */
  const double one[] = {0.25};
  cf_violation_stats(&s, one, 1, 0.25);
  g_assert_cmpfloat(s.median, ==, 0.25);
  g_assert_cmpfloat(s.p99, ==, 0.25);
  g_assert_cmpfloat(s.frac_satisfied, ==, 1.0);

  /* 1..1000: p99 at position 989.01 -> 990.01 */
  double *big = g_new(double, 1000);
  for (int i = 0; i < 1000; i++)
    big[i] = (double)(1000 - i);
  cf_violation_stats(&s, big, 1000, 100.0);
  assert_close(s.median, 500.5, 1e-12);
  assert_close(s.p99, 990.01, 1e-9);
  assert_close(s.mean, 500.5, 1e-12);
  g_assert_cmpint(s.n_satisfied, ==, 100);
  g_free(big);

  /* empty input */
  cf_violation_stats(&s, NULL, 0, 1.0);
  g_assert_cmpint(s.count, ==, 0);
  g_assert_true(isnan(s.mean) && isnan(s.median) && isnan(s.p99) && isnan(s.max) && isnan(s.frac_satisfied));

  /* NaN violation: sorted last, never satisfied, max is NaN */
  const double withnan[] = {1, NAN, 0};
  cf_violation_stats(&s, withnan, 3, 10.0);
  g_assert_cmpint(s.n_satisfied, ==, 2);
  g_assert_true(isnan(s.max));
  g_assert_true(isnan(s.mean));
  assert_close(s.median, 1.0, 0);

  /* infinity */
  const double withinf[] = {1, INFINITY, 0, 2};
  cf_violation_stats(&s, withinf, 4, 10.0);
  g_assert_true(isinf(s.max));
  assert_close(s.median, 1.5, 0);
  g_assert_true(isinf(s.p99));

  /* percentile helper */
  const double sorted[] = {0, 10, 20};
  assert_close(cf_percentile_sorted(sorted, 3, 0.25), 5.0, 1e-15);
  assert_close(cf_percentile_sorted(sorted, 3, 1.0), 20.0, 0);
  assert_close(cf_percentile_sorted(sorted, 3, 0.0), 0.0, 0);
  assert_close(cf_percentile_sorted(sorted, 3, 7.0), 20.0, 0);
  g_assert_true(isnan(cf_percentile_sorted(sorted, 0, 0.5)));
}

/* ------------------------------------------------------------------------ */
/* log histogram                                                            */

static void
test_histogram(void)
{
  CfLogHistogram h;
  g_assert_cmpint(cf_log_histogram_init(&h, 3, 1e-3, 1.0), ==, CF_OK);
  g_assert_cmpint(h.n_bins, ==, 3);
  g_assert_cmpfloat(h.edges[0], ==, 1e-3);
  g_assert_cmpfloat(h.edges[3], ==, 1.0);
  assert_close(h.edges[1], 1e-2, 1e-15);
  assert_close(h.edges[2], 1e-1, 1e-15);

  const double v[] = {0, 0, -0.0, 5e-4, -1, 1e-3, 5e-3, 0.05, 0.5, 1.0, 2, NAN, INFINITY};
  cf_log_histogram_add(&h, v, 13);
  g_assert_cmpint(h.zeros, ==, 3);
  g_assert_cmpint(h.underflow, ==, 5); /* three zeros, 5e-4, -1 */
  g_assert_cmpint(h.overflow, ==, 3);  /* 2, NaN, inf */
  g_assert_cmpint(h.counts[0], ==, 2); /* 1e-3 (lower edge), 5e-3 */
  g_assert_cmpint(h.counts[1], ==, 1); /* 0.05 */
  g_assert_cmpint(h.counts[2], ==, 2); /* 0.5, 1.0 (last bin closed) */

  /* interior edges go to the bin they start */
  cf_log_histogram_reset(&h);
  g_assert_cmpint(h.counts[0] + h.counts[1] + h.counts[2] + h.underflow + h.overflow + h.zeros, ==, 0);
  cf_log_histogram_add(&h, h.edges + 1, 2);
  g_assert_cmpint(h.counts[1], ==, 1);
  g_assert_cmpint(h.counts[2], ==, 1);
  cf_log_histogram_clear(&h);
  g_assert_null(h.edges);

  /* many bins: every value lands where the edges say */
  g_assert_cmpint(cf_log_histogram_init(&h, 97, 1e-9, 1e3), ==, CF_OK);
  CfRng rng;
  cf_rng_seed(&rng, 3);
  long want[97] = {0};
  int nv = 20000;
  double *x = g_new(double, nv);
  for (int i = 0; i < nv; i++) {
    x[i] = pow(10.0, -10.0 + 14.0 * cf_rng_uniform(&rng));
    if (i % 50 == 0)
      x[i] = h.edges[cf_rng_below(&rng, 98)];
    if (x[i] >= h.lo && x[i] <= h.hi) {
      int k = 0;
      while (k < 96 && x[i] >= h.edges[k + 1])
        k++;
      want[k]++;
    }
  }
  cf_log_histogram_add(&h, x, nv);
  long total = h.underflow + h.overflow;
  for (int k = 0; k < 97; k++) {
    g_assert_cmpint(h.counts[k], ==, want[k]);
    total += h.counts[k];
  }
  g_assert_cmpint(total, ==, nv);
  g_free(x);
  cf_log_histogram_clear(&h);

  /* invalid arguments */
  g_assert_cmpint(cf_log_histogram_init(&h, 10, 0.0, 1.0), ==, CF_ERR_INVALID);
  g_assert_cmpint(cf_log_histogram_init(&h, 10, 1.0, 1.0), ==, CF_ERR_INVALID);
  g_assert_cmpint(cf_log_histogram_init(&h, 0, 1e-3, 1.0), ==, CF_ERR_INVALID);
  g_assert_cmpint(cf_log_histogram_init(&h, 10, 1e-3, INFINITY), ==, CF_ERR_INVALID);
  g_assert_null(h.counts);
  cf_log_histogram_add(&h, v, 3); /* harmless on an empty histogram */
  cf_log_histogram_clear(&h);
}

/* ------------------------------------------------------------------------ */
/* distances between sample sets                                            */

static double
dist2(const float *a, const float *b, int d)
{
  double s = 0.0;
  for (int j = 0; j < d; j++) {
    double df = (double)a[j] - (double)b[j];
    s += df * df;
  }
  return s;
}

static double
naive_energy(const float *X, int nx, const float *Y, int ny, int d)
{
  double xy = 0, xx = 0, yy = 0;
  for (int i = 0; i < nx; i++)
    for (int j = 0; j < ny; j++)
      xy += sqrt(dist2(X + i * d, Y + j * d, d));
  for (int i = 0; i < nx; i++)
    for (int j = 0; j < nx; j++)
      if (i != j)
        xx += sqrt(dist2(X + i * d, X + j * d, d));
  for (int i = 0; i < ny; i++)
    for (int j = 0; j < ny; j++)
      if (i != j)
        yy += sqrt(dist2(Y + i * d, Y + j * d, d));
  return 2.0 * xy / (nx * ny) - xx / (nx * (nx - 1.0)) - yy / (ny * (ny - 1.0));
}

static int
cmp_d(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double
naive_sigma2(const float *X, int nx, const float *Y, int ny, int d)
{
  int N = nx + ny;
  double *all = g_new(double, (size_t)N * (N - 1) / 2);
  int o = 0;
  for (int i = 0; i < N; i++)
    for (int j = i + 1; j < N; j++) {
      const float *a = i < nx ? X + i * d : Y + (i - nx) * d;
      const float *b = j < nx ? X + j * d : Y + (j - nx) * d;
      all[o++] = dist2(a, b, d);
    }
  qsort(all, o, sizeof *all, cmp_d);
  double med = o % 2 ? all[o / 2] : 0.5 * (all[o / 2 - 1] + all[o / 2]);
  g_free(all);
  return med / 2.0;
}

static double
naive_mmd(const float *X, int nx, const float *Y, int ny, int d)
{
  double s2 = naive_sigma2(X, nx, Y, ny, d);
  double xy = 0, xx = 0, yy = 0;
  for (int i = 0; i < nx; i++)
    for (int j = 0; j < ny; j++)
      xy += exp(-dist2(X + i * d, Y + j * d, d) / (2 * s2));
  for (int i = 0; i < nx; i++)
    for (int j = 0; j < nx; j++)
      if (i != j)
        xx += exp(-dist2(X + i * d, X + j * d, d) / (2 * s2));
  for (int i = 0; i < ny; i++)
    for (int j = 0; j < ny; j++)
      if (i != j)
        yy += exp(-dist2(Y + i * d, Y + j * d, d) / (2 * s2));
  return xx / (nx * (nx - 1.0)) + yy / (ny * (ny - 1.0)) - 2.0 * xy / (nx * ny);
}

static float *
gaussian(CfRng *rng, int n, int d, float shift, float scale)
{
  float *x = g_new(float, (size_t)n * d);
  cf_rng_fill_normal(rng, x, (size_t)n * d);
  for (size_t t = 0; t < (size_t)n * d; t++)
    x[t] = x[t] * scale + shift;
  return x;
}

static void
test_energy_naive(void)
{
  CfRng rng;
  cf_rng_seed(&rng, 21);
  /* d = 3 takes the direct path, d = 40 the dgemm path; sizes not multiples
   * of the internal block */
  const int dims[] = {1, 3, 40};
  for (int k = 0; k < 3; k++) {
    int d = dims[k], nx = 77, ny = 131;
    float *X = gaussian(&rng, nx, d, 0.0f, 1.0f);
    float *Y = gaussian(&rng, ny, d, 0.3f, 1.5f);
    double e = cf_energy_distance(X, nx, Y, ny, d, 0, NULL);
    double en = naive_energy(X, nx, Y, ny, d);
    g_test_message("energy d=%d: %.12f (naive %.12f)", d, e, en);
    assert_close(e, en, 1e-9 * (1 + fabs(en)));
    assert_close(cf_energy_distance(Y, ny, X, nx, d, 0, NULL), e, 1e-10);
    /* max_n at or above the sizes does not subsample */
    g_assert_cmpfloat(cf_energy_distance(X, nx, Y, ny, d, 1000, &rng), ==, e);
    g_free(X);
    g_free(Y);
  }
}

static void
test_energy_separation(void)
{
  CfRng rng;
  cf_rng_seed(&rng, 22);
  int n = 600, d = 5;
  float *X = gaussian(&rng, n, d, 0.0f, 1.0f);
  float *Y = gaussian(&rng, n, d, 0.0f, 1.0f);
  float *Z = gaussian(&rng, n, d, 1.0f, 1.0f);
  double same = cf_energy_distance(X, n, Y, n, d, 0, NULL);
  double shifted = cf_energy_distance(X, n, Z, n, d, 0, NULL);
  g_test_message("energy: same distribution %.5f, shifted by 1 per coordinate %.5f", same, shifted);
  g_assert_cmpfloat(fabs(same), <, 0.02);
  g_assert_cmpfloat(shifted, >, 0.5);
  /* identical sets: the cross term includes i = j (zero distances) while the
   * within terms exclude it, so the estimate is slightly negative:
   * -(2 / n) mean_{i != j} |x_i - x_j| */
  double self = cf_energy_distance(X, n, X, n, d, 0, NULL);
  g_assert_cmpfloat(self, <, 0.0);
  assert_close(cf_energy_distance(X, 50, X, 50, d, 0, NULL), naive_energy(X, 50, X, 50, d), 1e-12);

  /* degenerate inputs */
  g_assert_true(isnan(cf_energy_distance(X, 1, Y, n, d, 0, NULL)));
  g_assert_true(isnan(cf_energy_distance(X, n, Y, n, 0, 0, NULL)));
  X[7] = NAN;
  g_assert_true(isnan(cf_energy_distance(X, n, Y, n, d, 0, NULL)));
  g_free(X);
  g_free(Y);
  g_free(Z);
}

static void
test_median_heuristic(void)
{
  /* 1-D: X = {0, 1}, Y = {3}: squared distances 1, 9, 4 -> median 4 -> 2 */
  const float X[] = {0, 1}, Y[] = {3};
  assert_close(cf_median_heuristic_sigma2(X, 2, Y, 1, 1), 2.0, 1e-15);
  /* X = {0, 1}, Y = {3, 6}: 1, 9, 36, 4, 25, 9 -> median (9 + 9) / 2 -> 4.5 */
  const float Y2[] = {3, 6};
  assert_close(cf_median_heuristic_sigma2(X, 2, Y2, 2, 1), 4.5, 1e-15);
  /* 2-D unit square corners: four sides (1) and two diagonals (2) -> 1 -> 0.5 */
  const float sq[] = {0, 0, 1, 0, 0, 1, 1, 1};
  assert_close(cf_median_heuristic_sigma2(sq, 2, sq + 4, 2, 2), 0.5, 1e-15);
  /* mostly coincident points: median 0, mean of the non-zero ones (1) / 2 */
  const float z[] = {0, 0, 0, 0}, o[] = {1};
  assert_close(cf_median_heuristic_sigma2(z, 4, o, 1, 1), 0.5, 1e-15);
  assert_close(cf_median_heuristic_sigma2(z, 2, z, 2, 1), 1.0, 0);
  g_assert_true(isnan(cf_median_heuristic_sigma2(z, 1, NULL, 0, 1)));

  /* random, odd and even pair counts, both code paths */
  CfRng rng;
  cf_rng_seed(&rng, 23);
  const int dims[] = {2, 33};
  for (int k = 0; k < 2; k++) {
    for (int nx = 40; nx <= 41; nx++) {
      int d = dims[k], ny = 57;
      float *A = gaussian(&rng, nx, d, 0.0f, 1.0f);
      float *B = gaussian(&rng, ny, d, 0.5f, 2.0f);
      double s2 = cf_median_heuristic_sigma2(A, nx, B, ny, d);
      assert_close(s2, naive_sigma2(A, nx, B, ny, d), 1e-10 * s2);
      g_free(A);
      g_free(B);
    }
  }
}

static void
test_mmd(void)
{
  CfRng rng;
  cf_rng_seed(&rng, 24);
  const int dims[] = {2, 40};
  for (int k = 0; k < 2; k++) {
    int d = dims[k], nx = 90, ny = 70;
    float *X = gaussian(&rng, nx, d, 0.0f, 1.0f);
    float *Y = gaussian(&rng, ny, d, 0.2f, 1.2f);
    double m = cf_mmd_rbf(X, nx, Y, ny, d, 0, NULL);
    double mn = naive_mmd(X, nx, Y, ny, d);
    g_test_message("mmd d=%d: %.12f (naive %.12f)", d, m, mn);
    assert_close(m, mn, 1e-10);
    g_free(X);
    g_free(Y);
  }
  /* hand-checkable: X = {0, 1}, Y = {3, 6}, sigma^2 = 4.5 -> k = exp(-d2 / 9) */
  const float X[] = {0, 1}, Y[] = {3, 6};
  double kxx = exp(-1.0 / 9), kyy = exp(-9.0 / 9);
  double kxy = (exp(-9.0 / 9) + exp(-36.0 / 9) + exp(-4.0 / 9) + exp(-25.0 / 9)) / 4;
  assert_close(cf_mmd_rbf(X, 2, Y, 2, 1, 0, NULL), kxx + kyy - 2 * kxy, 1e-14);

  int n = 500, d = 4;
  float *A = gaussian(&rng, n, d, 0.0f, 1.0f);
  float *B = gaussian(&rng, n, d, 0.0f, 1.0f);
  float *C = gaussian(&rng, n, d, 1.0f, 1.0f);
  double same = cf_mmd_rbf(A, n, B, n, d, 0, NULL);
  double shifted = cf_mmd_rbf(A, n, C, n, d, 0, NULL);
  g_test_message("mmd^2: same distribution %.6f, shifted by 1 per coordinate %.6f", same, shifted);
  g_assert_cmpfloat(fabs(same), <, 0.01);
  g_assert_cmpfloat(shifted, >, 0.1);
  g_assert_cmpfloat(shifted, >, 20 * fabs(same));
  g_free(A);
  g_free(B);
  g_free(C);
}

static void
test_subsampling(void)
{
  CfRng rng;
  cf_rng_seed(&rng, 25);
  int nx = 3000, ny = 2500, d = 4, max_n = 400;
  float *X = gaussian(&rng, nx, d, 0.0f, 1.0f);
  float *Y = gaussian(&rng, ny, d, 0.5f, 1.0f);
  CfRng r1, r2, r3;
  cf_rng_seed(&r1, 7);
  cf_rng_seed(&r2, 7);
  cf_rng_seed(&r3, 8);
  double e1 = cf_energy_distance(X, nx, Y, ny, d, max_n, &r1);
  double e2 = cf_energy_distance(X, nx, Y, ny, d, max_n, &r2);
  double e3 = cf_energy_distance(X, nx, Y, ny, d, max_n, &r3);
  g_assert_cmpfloat(e1, ==, e2);
  g_assert_cmpfloat(e1, !=, e3);
  /* the rng advanced identically */
  g_assert_cmpuint(cf_rng_u64(&r1), ==, cf_rng_u64(&r2));
  double m1 = cf_mmd_rbf(X, nx, Y, ny, d, max_n, &r1);
  double m2 = cf_mmd_rbf(X, nx, Y, ny, d, max_n, &r2);
  g_assert_cmpfloat(m1, ==, m2);
  /* subsampled estimates are close to the full ones (shift 0.5 per coordinate) */
  double efull = cf_energy_distance(X, 1000, Y, 1000, d, 0, NULL);
  g_test_message("energy: subsampled %.4f / %.4f, first 1000 rows %.4f", e1, e3, efull);
  g_assert_cmpfloat(fabs(e1 - efull), <, 0.1);
  /* without rng: the first max_n rows */
  double ef = cf_energy_distance(X, nx, Y, ny, d, max_n, NULL);
  double eh = cf_energy_distance(X, max_n, Y, max_n, d, 0, NULL);
  g_assert_cmpfloat(ef, ==, eh);
  g_free(X);
  g_free(Y);
}

/* PCA on data stretched along a known direction: the first axis matches it
 * (up to sign), the basis is orthonormal, the mean is exact. */
static void
test_pca(void)
{
  const int n = 4000, d = 4;
  float *X = g_new(float, n * d);
  CfRng rng;
  cf_rng_seed(&rng, 21);
  double u[4] = {0.5, 0.5, 0.5, 0.5}, v[4] = {0.5, -0.5, 0.5, -0.5};
  for (int i = 0; i < n; i++) {
    double a = 5 * cf_rng_normal(&rng), b = 2 * cf_rng_normal(&rng);
    for (int j = 0; j < d; j++)
      X[i * d + j] = (float)(1.0 + j + a * u[j] + b * v[j] + 0.1 * cf_rng_normal(&rng));
  }
  double mean[4], basis[8];
  g_assert_cmpint(cf_pca(X, n, d, 2, mean, basis, NULL), ==, CF_OK);
  double dot_u = 0, dot_v = 0, n0 = 0, n1 = 0, cross = 0;
  for (int j = 0; j < d; j++) {
    dot_u += basis[j] * u[j];
    dot_v += basis[d + j] * v[j];
    n0 += basis[j] * basis[j];
    n1 += basis[d + j] * basis[d + j];
    cross += basis[j] * basis[d + j];
    g_assert_cmpfloat(fabs(mean[j] - (1.0 + j)), <, 0.3);
  }
  g_assert_cmpfloat(fabs(fabs(dot_u) - 1), <, 1e-3);
  g_assert_cmpfloat(fabs(fabs(dot_v) - 1), <, 1e-3);
  g_assert_cmpfloat(fabs(n0 - 1), <, 1e-12);
  g_assert_cmpfloat(fabs(n1 - 1), <, 1e-12);
  g_assert_cmpfloat(fabs(cross), <, 1e-12);
  g_assert_cmpint(cf_pca(X, 1, d, 2, mean, basis, NULL), ==, CF_ERR_INVALID);
  g_free(X);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/metrics/tolerance", test_tolerance);
  g_test_add_func("/metrics/stats", test_stats);
  g_test_add_func("/metrics/histogram", test_histogram);
  g_test_add_func("/metrics/energy/naive", test_energy_naive);
  g_test_add_func("/metrics/energy/separation", test_energy_separation);
  g_test_add_func("/metrics/mmd/median-heuristic", test_median_heuristic);
  g_test_add_func("/metrics/mmd/value", test_mmd);
  g_test_add_func("/metrics/subsampling", test_subsampling);
  g_test_add_func("/metrics/pca", test_pca);
  return g_test_run();
}
