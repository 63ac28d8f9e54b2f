/* cf_gemm, both paths (the AVX-512 kernel and cblas_sgemm), against a direct
 * double-precision sum: every transpose combination, shapes at and around
 * the kernel's tile edges (8 rows, 32 columns) and K blocks (256), padded
 * leading dimensions, each beta case, and C's padding left untouched; the
 * lower-triangle Gram product cf_syrk_lower the same way. */
#include <glib.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gemm.h"
#include "rng.h"

typedef struct {
  int M, N, K;
} Shape;

static const Shape shapes[] = {
  {1, 1, 1},    {7, 5, 3},     {8, 32, 1},    {9, 33, 17},   {16, 64, 256}, {17, 31, 257},
  {256, 128, 128}, {128, 128, 256}, {256, 128, 34}, {64, 45, 600}, {3, 100, 513}, {40, 16, 15},
  /* few rows, many columns: A B^T computed as its transpose */
  {33, 200, 70},  {40, 300, 1500},
};

static void
fill(CfRng *rng, float *x, size_t n)
{
  for (size_t i = 0; i < n; i++)
    x[i] = 2.0f * cf_rng_uniform(rng) - 1.0f;
}

/* sum_k op(A)_ik op(B)_kj in double (A, B stored with leading dimensions
 * lda, ldb); *mag = sum_k |term|, the scale of its rounding. */
static double
direct_sum(const float *a, int lda, bool ta, const float *b, int ldb, bool tb, int i, int j, int K, double *mag)
{
  double s = 0;
  *mag = 0;
  for (int k = 0; k < K; k++) {
    double x = ta ? a[(size_t)k * lda + i] : a[(size_t)i * lda + k];
    double y = tb ? b[(size_t)j * ldb + k] : b[(size_t)k * ldb + j];
    s += x * y;
    *mag += fabs(x * y);
  }
  return s;
}

/* One product with padded leading dimensions; C's pad columns hold a
 * sentinel that must survive. beta 0 starts C as NaN (must be ignored). */
static void
check_one(CfRng *rng, Shape s, bool ta, bool tb, float beta)
{
  const int M = s.M, N = s.N, K = s.K;
  const int ar = ta ? K : M, ac = ta ? M : K, br = tb ? N : K, bc = tb ? K : N;
  const int lda = ac + 3, ldb = bc + 5, ldc = N + 2;
  float *a = g_new(float, (size_t)ar * lda), *b = g_new(float, (size_t)br * ldb);
  float *c = g_new(float, (size_t)M * ldc), *c0 = g_new(float, (size_t)M * ldc);
  fill(rng, a, (size_t)ar * lda);
  fill(rng, b, (size_t)br * ldb);
  fill(rng, c0, (size_t)M * ldc);
  for (int i = 0; i < M; i++)
    for (int j = 0; j < ldc; j++)
      if (j >= N)
        c0[(size_t)i * ldc + j] = 12345.0f;
      else if (beta == 0.0f)
        c0[(size_t)i * ldc + j] = NAN;
  memcpy(c, c0, sizeof *c * (size_t)M * ldc);
  cf_gemm(c, ldc, a, lda, b, ldb, M, N, K, ta, tb, beta);
  for (int i = 0; i < M; i++)
    for (int j = 0; j < ldc; j++) {
      float got = c[(size_t)i * ldc + j];
      if (j >= N) {
        g_assert_cmpfloat(got, ==, 12345.0f);
        continue;
      }
      double old = beta == 0.0f ? 0.0 : (double)beta * c0[(size_t)i * ldc + j], mag;
      double ref = old + direct_sum(a, lda, ta, b, ldb, tb, i, j, K, &mag);
      mag += fabs(old);
      if (!(fabs(got - ref) <= 1e-6 * (4.0 + mag)))
        g_error("%dx%dx%d ta %d tb %d beta %g: C[%d,%d] = %.9g, direct sum %.9g", M, N, K, ta, tb, beta, i, j,
                got, ref);
    }
  g_free(a);
  g_free(b);
  g_free(c);
  g_free(c0);
}

static void
check_all(void)
{
  static const float betas[] = {0.0f, 1.0f, 0.5f, -2.0f};
  CfRng rng;
  cf_rng_seed(&rng, 5);
  for (size_t s = 0; s < G_N_ELEMENTS(shapes); s++)
    for (int t = 0; t < 4; t++)
      for (size_t q = 0; q < G_N_ELEMENTS(betas); q++)
        check_one(&rng, shapes[s], t & 1, t & 2, betas[q]);
}

static void
test_native(void)
{
  if (!cf_gemm_native_available()) {
    g_test_skip("this CPU has no AVX-512F: cf_gemm always uses cblas_sgemm here");
    return;
  }
  bool prev = cf_gemm_set_native(true);
  g_assert_true(cf_gemm_native_active());
  check_all();
  cf_gemm_set_native(prev);
}

static void
test_blas(void)
{
  bool prev = cf_gemm_set_native(false);
  g_assert_false(cf_gemm_native_active());
  check_all();
  cf_gemm_set_native(prev);
}

/* cf_syrk_lower on both paths: the lower triangle against direct sums (C
 * starts as NaN: beta is 0), pad columns untouched. */
static void
test_syrk(void)
{
  static const int sizes[][2] = {{1, 1}, {7, 5}, {8, 300}, {9, 33}, {33, 17}, {100, 257}, {64, 16}};
  CfRng rng;
  cf_rng_seed(&rng, 9);
  for (int nat = 0; nat < 2; nat++) {
    if (nat && !cf_gemm_native_available())
      continue;
    bool prev = cf_gemm_set_native(nat);
    for (size_t s = 0; s < G_N_ELEMENTS(sizes); s++) {
      const int M = sizes[s][0], K = sizes[s][1], lda = K + 3, ldc = M + 2;
      float *a = g_new(float, (size_t)M * lda), *c = g_new(float, (size_t)M * ldc);
      fill(&rng, a, (size_t)M * lda);
      for (int i = 0; i < M * ldc; i++)
        c[i] = i % ldc >= M ? 777.0f : NAN;
      cf_syrk_lower(c, ldc, a, lda, M, K);
      for (int i = 0; i < M; i++)
        for (int j = 0; j < ldc; j++) {
          float got = c[(size_t)i * ldc + j];
          if (j >= M) {
            g_assert_cmpfloat(got, ==, 777.0f);
            continue;
          }
          if (j > i)
            continue; /* upper triangle: unspecified */
          double mag, ref = direct_sum(a, lda, false, a, lda, true, i, j, K, &mag);
          if (!(fabs(got - ref) <= 1e-6 * (4.0 + mag)))
            g_error("syrk %s %dx%d: C[%d,%d] = %.9g, direct sum %.9g", nat ? "native" : "blas", M, K, i, j, got,
                    ref);
        }
      g_free(a);
      g_free(c);
    }
    cf_gemm_set_native(prev);
  }
}

/* The transposed path's packing buffer belongs to the calling thread:
 * products on two threads at once, on threads that come and go, checked as
 * everywhere else. */
static gpointer
thread_products(gpointer data)
{
  CfRng rng;
  cf_rng_seed(&rng, GPOINTER_TO_UINT(data));
  check_one(&rng, (Shape){40, 300, 1500}, false, true, 0.0f);
  check_one(&rng, (Shape){3, 100, 513}, false, true, 1.0f);
  return NULL;
}

static void
test_threads(void)
{
  for (guint i = 0; i < 3; i++) {
    GThread *a = g_thread_new("gemm-a", thread_products, GUINT_TO_POINTER(10 + i));
    GThread *b = g_thread_new("gemm-b", thread_products, GUINT_TO_POINTER(20 + i));
    g_thread_join(a);
    g_thread_join(b);
  }
}

/* Degenerate sizes: M or N zero touch nothing; K zero scales C by beta. */
static void
test_empty(void)
{
  for (int nat = 0; nat < 2; nat++) {
    bool prev = cf_gemm_set_native(nat);
    float c[6] = {1, 2, 3, 4, 5, 6}, a[1] = {7}, b[1] = {8};
    cf_gemm(c, 3, a, 1, b, 3, 0, 3, 1, false, false, 0.0f);
    cf_gemm(c, 3, a, 1, b, 3, 2, 0, 1, false, false, 0.0f);
    for (int i = 0; i < 6; i++)
      g_assert_cmpfloat(c[i], ==, i + 1);
    cf_gemm(c, 3, a, 1, b, 3, 2, 3, 0, false, false, 0.5f);
    for (int i = 0; i < 6; i++)
      g_assert_cmpfloat(c[i], ==, 0.5f * (i + 1));
    cf_gemm_set_native(prev);
  }
}

/* CONFORM_GEMM=blas in the environment turns the kernel off (fresh process). */
static void
test_env(void)
{
  if (g_test_subprocess()) {
    g_assert_false(cf_gemm_native_active());
    return;
  }
  g_setenv("CONFORM_GEMM", "blas", TRUE);
  g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_INHERIT_STDERR);
  g_unsetenv("CONFORM_GEMM");
  g_test_trap_assert_passed();
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/gemm/native", test_native);
  g_test_add_func("/gemm/blas", test_blas);
  g_test_add_func("/gemm/syrk", test_syrk);
  g_test_add_func("/gemm/empty", test_empty);
  g_test_add_func("/gemm/env", test_env);
  g_test_add_func("/gemm/threads", test_threads); /* last: test_env's setenv before any thread */
  return g_test_run();
}
