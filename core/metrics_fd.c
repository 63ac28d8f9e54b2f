/* Frechet distance between Gaussian fits of two feature sets (see metrics.h). */
#include "metrics.h"

#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define FD_CHUNK 512 /* rows centred at a time for the covariance update */
#define FD_MAX_DIM 8192

CfStatus
cf_mean_cov(const float *X, int n, int d, double *mu, double *S, CfError *err)
{
  if (n < 2 || d < 1 || d > FD_MAX_DIM)
    return cf_error_set(err, CF_ERR_INVALID, "covariance: needs n >= 2 rows and 1 <= d <= %d (got n %d, d %d)",
                        FD_MAX_DIM, n, d);
  memset(mu, 0, (size_t)d * sizeof(double));
  for (int i = 0; i < n; i++) {
    const float *x = X + (size_t)i * d;
    for (int j = 0; j < d; j++) {
      if (!isfinite(x[j]))
        return cf_error_set(err, CF_ERR_INVALID, "covariance: row %d, column %d is not finite", i, j);
      mu[j] += x[j];
    }
  }
  for (int j = 0; j < d; j++)
    mu[j] /= n;
  double *buf = cf_alloc_array((size_t)FD_CHUNK * (size_t)d, sizeof(double));
  if (!buf)
    return cf_error_set(err, CF_ERR_NOMEM, "covariance: out of memory");
  memset(S, 0, (size_t)d * (size_t)d * sizeof(double));
  for (int s = 0; s < n; s += FD_CHUNK) {
    int r = n - s < FD_CHUNK ? n - s : FD_CHUNK;
    for (int i = 0; i < r; i++)
      for (int j = 0; j < d; j++)
        buf[(size_t)i * d + j] = (double)X[(size_t)(s + i) * d + j] - mu[j];
    /* S += C^T C (upper triangle) */
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, d, r, 1.0, buf, d, 1.0, S, d);
  }
  free(buf);
  for (int i = 0; i < d; i++)
    for (int j = i; j < d; j++) {
      double v = S[(size_t)i * d + j] / (n - 1);
      S[(size_t)i * d + j] = v;
      S[(size_t)j * d + i] = v;
    }
  return CF_OK;
}

CfStatus
cf_frechet_gaussian(const double *mu1, const double *S1, const double *mu2, const double *S2, int d, double *fd,
                    CfError *err)
{
  if (d < 1 || d > FD_MAX_DIM)
    return cf_error_set(err, CF_ERR_INVALID, "frechet distance: dimension %d out of range [1, %d]", d, FD_MAX_DIM);
  size_t dd = (size_t)d * (size_t)d;
  double *V = cf_alloc_array(dd, sizeof(double));
  double *R = cf_alloc_array(dd, sizeof(double));
  double *T = cf_alloc_array(dd, sizeof(double));
  double *w = cf_alloc_array((size_t)d, sizeof(double));
  CfStatus st = CF_OK;
  if (!V || !R || !T || !w) {
    st = cf_error_set(err, CF_ERR_NOMEM, "frechet distance: out of memory (d = %d)", d);
    goto out;
  }
  double mean_term = 0.0, tr = 0.0;
  for (int j = 0; j < d; j++) {
    double dm = mu1[j] - mu2[j];
    mean_term += dm * dm;
    tr += S1[(size_t)j * d + j] + S2[(size_t)j * d + j];
  }
  /* S1 = V diag(l) V^T -> R = S1^{1/2} = V diag(sqrt(max(l, 0))) V^T */
  memcpy(V, S1, dd * sizeof(double));
  int info = LAPACKE_dsyevd(LAPACK_ROW_MAJOR, 'V', 'U', d, V, d, w);
  if (info != 0) {
    st = cf_error_set(err, CF_ERR_NUMERIC, "frechet distance: eigen-decomposition of S1 failed (info %d)", info);
    goto out;
  }
  for (int i = 0; i < d; i++)
    for (int k = 0; k < d; k++)
      T[(size_t)i * d + k] = V[(size_t)i * d + k] * sqrt(fmax(w[k], 0.0)); /* V diag(sqrt l) */
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, d, d, d, 1.0, T, d, V, d, 0.0, R, d);
  /* M = R S2 R, symmetrised against round-off */
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, d, d, d, 1.0, R, d, S2, d, 0.0, T, d);
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, d, d, d, 1.0, T, d, R, d, 0.0, V, d);
  for (int i = 0; i < d; i++)
    for (int j = i + 1; j < d; j++) {
      double a = 0.5 * (V[(size_t)i * d + j] + V[(size_t)j * d + i]);
      V[(size_t)i * d + j] = V[(size_t)j * d + i] = a;
    }
  info = LAPACKE_dsyevd(LAPACK_ROW_MAJOR, 'N', 'U', d, V, d, w);
  if (info != 0) {
    st = cf_error_set(err, CF_ERR_NUMERIC, "frechet distance: eigen-decomposition of S1^1/2 S2 S1^1/2 failed (info %d)",
                      info);
    goto out;
  }
  double trsqrt = 0.0;
  for (int k = 0; k < d; k++)
    trsqrt += sqrt(fmax(w[k], 0.0));
  double v = mean_term + tr - 2.0 * trsqrt;
  if (!isfinite(v)) {
    st = cf_error_set(err, CF_ERR_NUMERIC, "frechet distance: the result is not finite");
    goto out;
  }
  *fd = v > 0.0 ? v : 0.0;
out:
  free(V);
  free(R);
  free(T);
  free(w);
  return st;
}

CfStatus
cf_frechet_distance(const float *X, int nx, const float *Y, int ny, int d, double *fd, CfError *err)
{
  if (nx < 2 || ny < 2 || d < 1 || d > FD_MAX_DIM)
    return cf_error_set(err, CF_ERR_INVALID,
                        "frechet distance: needs at least 2 rows per set and 1 <= d <= %d (got %d, %d rows, d %d)",
                        FD_MAX_DIM, nx, ny, d);
  size_t dd = (size_t)d * (size_t)d;
  double *mu1 = cf_alloc_array((size_t)d, sizeof(double)), *mu2 = cf_alloc_array((size_t)d, sizeof(double));
  double *S1 = cf_alloc_array(dd, sizeof(double)), *S2 = cf_alloc_array(dd, sizeof(double));
  CfStatus st;
  if (!mu1 || !mu2 || !S1 || !S2)
    st = cf_error_set(err, CF_ERR_NOMEM, "frechet distance: out of memory (d = %d)", d);
  else if ((st = cf_mean_cov(X, nx, d, mu1, S1, err)) != CF_OK)
    cf_error_prefix(err, "frechet distance: first set");
  else if ((st = cf_mean_cov(Y, ny, d, mu2, S2, err)) != CF_OK)
    cf_error_prefix(err, "frechet distance: second set");
  else
    st = cf_frechet_gaussian(mu1, S1, mu2, S2, d, fd, err);
  free(mu1);
  free(mu2);
  free(S1);
  free(S2);
  return st;
}
