/* Tests of core/rng.c: determinism, streams, and the distributions by Monte
 * Carlo with fixed seeds. Tolerances are several standard errors wide, so a
 * correct generator passes with overwhelming probability and the fixed seeds
 * make the outcome reproducible anyway. */
#include <glib.h>
#include <math.h>
#include <stdint.h>

#include "rng.h"

static void
test_determinism(void)
{
  CfRng a, b;
  cf_rng_seed(&a, 12345);
  cf_rng_seed(&b, 12345);
  for (int i = 0; i < 10000; i++)
    g_assert_cmpuint(cf_rng_u64(&a), ==, cf_rng_u64(&b));
  /* Doubles, normals and gammas are deterministic too. */
  cf_rng_seed(&a, 99);
  cf_rng_seed(&b, 99);
  for (int i = 0; i < 1000; i++) {
    g_assert_true(cf_rng_uniform(&a) == cf_rng_uniform(&b));
    g_assert_true(cf_rng_normal(&a) == cf_rng_normal(&b));
    g_assert_true(cf_rng_gamma(&a, 0.7) == cf_rng_gamma(&b, 0.7));
  }
  /* The state is exactly the four words: copying it copies the future. */
  CfRng c = a;
  for (int i = 0; i < 100; i++)
    g_assert_cmpuint(cf_rng_u64(&a), ==, cf_rng_u64(&c));
}

static int
count_equal(CfRng *a, CfRng *b, int n)
{
  int same = 0;
  for (int i = 0; i < n; i++)
    same += cf_rng_u64(a) == cf_rng_u64(b);
  return same;
}

static void
test_seeds_and_streams_differ(void)
{
  CfRng a, b;
  cf_rng_seed(&a, 1);
  cf_rng_seed(&b, 2);
  g_assert_cmpint(count_equal(&a, &b, 1000), ==, 0);

  cf_rng_seed(&a, 0); /* seed 0 must not give a degenerate state */
  uint64_t first = cf_rng_u64(&a);
  int distinct = 0;
  for (int i = 0; i < 100; i++)
    distinct += cf_rng_u64(&a) != first;
  g_assert_cmpint(distinct, >=, 99);

  /* Streams: same seed, different stream ids; and same stream id, different
   * seeds; and a stream differs from the plain seed. */
  for (uint64_t s = 0; s < 4; s++) {
    for (uint64_t t = s + 1; t < 5; t++) {
      cf_rng_seed_stream(&a, 42, s);
      cf_rng_seed_stream(&b, 42, t);
      g_assert_cmpint(count_equal(&a, &b, 1000), ==, 0);
    }
  }
  cf_rng_seed_stream(&a, 42, 1);
  cf_rng_seed_stream(&b, 43, 1);
  g_assert_cmpint(count_equal(&a, &b, 1000), ==, 0);
  cf_rng_seed_stream(&a, 42, 0);
  cf_rng_seed(&b, 42);
  g_assert_cmpint(count_equal(&a, &b, 1000), ==, 0);

  /* Stream seeding is deterministic. */
  cf_rng_seed_stream(&a, 7, 3);
  cf_rng_seed_stream(&b, 7, 3);
  g_assert_cmpint(count_equal(&a, &b, 1000), ==, 1000);
}

static void
test_uniform(void)
{
  CfRng r;
  cf_rng_seed(&r, 2024);
  const int n = 1000000;
  double mn = 1.0, mx = 0.0, s = 0.0, s2 = 0.0;
  int bins[10] = { 0 };
  for (int i = 0; i < n; i++) {
    double u = cf_rng_uniform(&r);
    g_assert_true(u >= 0.0 && u < 1.0);
    mn = fmin(mn, u);
    mx = fmax(mx, u);
    s += u;
    s2 += u * u;
    bins[(int)(u * 10)]++;
  }
  double mean = s / n, var = s2 / n - mean * mean;
  g_test_message("uniform: min %.3g max %.9f mean %.6f var %.6f", mn, mx, mean, var);
  g_assert_cmpfloat(fabs(mean - 0.5), <, 5.0 * sqrt(1.0 / 12.0 / n));
  g_assert_cmpfloat(fabs(var - 1.0 / 12.0), <, 5.0 * sqrt(1.0 / 180.0 / n));
  g_assert_cmpfloat(mn, <, 1e-5);
  g_assert_cmpfloat(mx, >, 1.0 - 1e-5);
  /* Chi-square over 10 bins, 9 degrees of freedom: 99.99 % quantile ~ 33.7. */
  double chi2 = 0.0;
  for (int k = 0; k < 10; k++) {
    double e = n / 10.0;
    chi2 += (bins[k] - e) * (bins[k] - e) / e;
  }
  g_test_message("uniform: chi2(9) = %.2f", chi2);
  g_assert_cmpfloat(chi2, <, 33.7);

  /* 53 random bits: the low bits of the mantissa vary. */
  int odd = 0;
  for (int i = 0; i < 10000; i++)
    odd += (uint64_t)(cf_rng_uniform(&r) * 0x1.0p53) & 1u;
  g_assert_cmpint(odd, >, 4500);
  g_assert_cmpint(odd, <, 5500);
}

static void
test_below(void)
{
  CfRng r;
  cf_rng_seed(&r, 77);
  for (int i = 0; i < 1000; i++)
    g_assert_cmpuint(cf_rng_below(&r, 1), ==, 0);

  /* Small n: every value in range, chi-square for uniformity. */
  const uint64_t ns[] = { 2, 3, 7, 10, 1000 };
  for (size_t t = 0; t < G_N_ELEMENTS(ns); t++) {
    uint64_t m = ns[t];
    const int draws = 200000;
    int *cnt = g_new0(int, m);
    for (int i = 0; i < draws; i++) {
      uint64_t v = cf_rng_below(&r, m);
      g_assert_cmpuint(v, <, m);
      cnt[v]++;
    }
    double e = (double)draws / (double)m, chi2 = 0.0;
    for (uint64_t k = 0; k < m; k++)
      chi2 += (cnt[k] - e) * (cnt[k] - e) / e;
    /* chi2 with df = m - 1: mean df, sd sqrt(2 df); allow 6 sd. */
    double df = (double)(m - 1);
    g_test_message("below(%" G_GUINT64_FORMAT "): chi2 = %.1f (df %.0f)", m, chi2, df);
    g_assert_cmpfloat(chi2, <, df + 6.0 * sqrt(2.0 * df) + 10.0);
    g_free(cnt);
  }

  /* Large n where plain modulo reduction would be visibly biased:
   * n = 3 * 2^62. Unbiased: P(v >= 2^63) = 1/3 exactly; (u64 % n) would give
   * 1/2 (values below 2^64 - n = 2^62 are doubled). */
  const uint64_t big = 3ull << 62;
  const int draws = 300000;
  int high = 0;
  for (int i = 0; i < draws; i++) {
    uint64_t v = cf_rng_below(&r, big);
    g_assert_cmpuint(v, <, big);
    high += v >= (1ull << 63);
  }
  double frac = (double)high / draws;
  g_test_message("below(3*2^62): P(v >= 2^63) = %.4f (expect 1/3)", frac);
  g_assert_cmpfloat(fabs(frac - 1.0 / 3.0), <, 5.0 * sqrt(2.0 / 9.0 / draws));
  /* and the low third [0, 2^62) also gets 1/3 */
  int low = 0;
  for (int i = 0; i < draws; i++)
    low += cf_rng_below(&r, big) < (1ull << 62);
  frac = (double)low / draws;
  g_assert_cmpfloat(fabs(frac - 1.0 / 3.0), <, 5.0 * sqrt(2.0 / 9.0 / draws));

  /* Maximal n. */
  for (int i = 0; i < 1000; i++)
    g_assert_cmpuint(cf_rng_below(&r, UINT64_MAX), <, UINT64_MAX);
}

typedef struct {
  double m1, m2, m3, m4; /* mean, variance, skewness, kurtosis */
} Moments;

static Moments
moments(const double *x, int n)
{
  double s = 0.0;
  for (int i = 0; i < n; i++)
    s += x[i];
  double mean = s / n, c2 = 0.0, c3 = 0.0, c4 = 0.0;
  for (int i = 0; i < n; i++) {
    double d = x[i] - mean, d2 = d * d;
    c2 += d2;
    c3 += d2 * d;
    c4 += d2 * d2;
  }
  c2 /= n;
  c3 /= n;
  c4 /= n;
  Moments m = { mean, c2, c3 / pow(c2, 1.5), c4 / (c2 * c2) };
  return m;
}

static void
check_standard_normal(const double *x, int n, const char *what)
{
  Moments m = moments(x, n);
  g_test_message("%s: mean %.5f var %.5f skew %.5f kurtosis %.5f (n = %d)", what, m.m1, m.m2, m.m3, m.m4, n);
  double se = 1.0 / sqrt((double)n);
  g_assert_cmpfloat(fabs(m.m1), <, 5.0 * se);
  g_assert_cmpfloat(fabs(m.m2 - 1.0), <, 5.0 * sqrt(2.0) * se);
  g_assert_cmpfloat(fabs(m.m3), <, 5.0 * sqrt(6.0) * se);
  g_assert_cmpfloat(fabs(m.m4 - 3.0), <, 5.0 * sqrt(24.0) * se);
  /* Tail: P(|z| > 3) = 0.0026998. */
  int tail = 0;
  for (int i = 0; i < n; i++)
    tail += fabs(x[i]) > 3.0;
  double p = 0.0026998, f = (double)tail / n;
  g_assert_cmpfloat(fabs(f - p), <, 5.0 * sqrt(p * (1 - p) / n));
}

static void
test_normal(void)
{
  CfRng r;
  cf_rng_seed(&r, 31337);
  const int n = 1000000;
  double *x = g_new(double, n);
  for (int i = 0; i < n; i++) {
    x[i] = cf_rng_normal(&r);
    g_assert_true(isfinite(x[i]));
  }
  check_standard_normal(x, n, "cf_rng_normal");

  /* fill_normal, odd length so the unpaired tail is exercised. */
  const int nf = 999999;
  float *f = g_new(float, nf);
  cf_rng_fill_normal(&r, f, (size_t)nf);
  for (int i = 0; i < nf; i++) {
    g_assert_true(isfinite(f[i]));
    x[i] = f[i];
  }
  check_standard_normal(x, nf, "cf_rng_fill_normal");

  /* Pairs from fill_normal are uncorrelated. */
  double c = 0.0;
  for (int i = 0; i + 1 < nf; i += 2)
    c += (double)f[i] * f[i + 1];
  c /= nf / 2;
  g_assert_cmpfloat(fabs(c), <, 5.0 / sqrt(nf / 2.0));

  /* fill_normal is deterministic and n = 0, 1 are fine. */
  CfRng a, b;
  cf_rng_seed(&a, 5);
  cf_rng_seed(&b, 5);
  float fa[7], fb[7];
  cf_rng_fill_normal(&a, fa, 7);
  cf_rng_fill_normal(&b, fb, 7);
  g_assert_cmpmem(fa, sizeof fa, fb, sizeof fb);
  cf_rng_fill_normal(&a, fa, 0);
  cf_rng_fill_normal(&a, fa, 1);
  g_assert_true(isfinite(fa[0]));
  g_free(f);
  g_free(x);
}

static void
test_gamma(void)
{
  const double shapes[] = { 0.5, 1.0, 3.7 };
  CfRng r;
  cf_rng_seed(&r, 4242);
  const int n = 400000;
  double *x = g_new(double, n);
  for (size_t t = 0; t < G_N_ELEMENTS(shapes); t++) {
    double k = shapes[t];
    for (int i = 0; i < n; i++) {
      x[i] = cf_rng_gamma(&r, k);
      g_assert_true(isfinite(x[i]));
      g_assert_cmpfloat(x[i], >=, 0.0);
    }
    Moments m = moments(x, n);
    /* Gamma(k, 1): mean k, variance k; Var(sample variance) ~ (mu4 - k^2)/n
     * with central mu4 = 3k^2 + 6k; skewness 2/sqrt(k). */
    double se_mean = sqrt(k / n);
    double se_var = sqrt((2.0 * k * k + 6.0 * k) / n);
    g_test_message("gamma(%.1f): mean %.5f (expect %.1f, se %.5f) var %.5f (se %.5f) skew %.3f (expect %.3f)", k,
                   m.m1, k, se_mean, m.m2, se_var, m.m3, 2.0 / sqrt(k));
    g_assert_cmpfloat(fabs(m.m1 - k), <, 5.0 * se_mean);
    g_assert_cmpfloat(fabs(m.m2 - k), <, 5.0 * se_var);
    g_assert_cmpfloat(fabs(m.m3 - 2.0 / sqrt(k)), <, 0.15 * 2.0 / sqrt(k));
    if (k == 1.0) {
      /* Exponential: P(X > 1) = e^-1. */
      int above = 0;
      for (int i = 0; i < n; i++)
        above += x[i] > 1.0;
      double p = exp(-1.0), f = (double)above / n;
      g_assert_cmpfloat(fabs(f - p), <, 5.0 * sqrt(p * (1 - p) / n));
    }
  }
  g_free(x);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/rng/determinism", test_determinism);
  g_test_add_func("/rng/seeds-and-streams-differ", test_seeds_and_streams_differ);
  g_test_add_func("/rng/uniform", test_uniform);
  g_test_add_func("/rng/below", test_below);
  g_test_add_func("/rng/normal", test_normal);
  g_test_add_func("/rng/gamma", test_gamma);
  return g_test_run();
}
