/* Sample-quality and constraint-violation statistics. */
#include "metrics.h"

#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Up to this dimension pairwise distances are computed directly; above it
 * through a dgemm Gram block (|x|^2 + |y|^2 - 2 x.y on centred data). */
#define DIRECT_MAX_D 16
/* Rows per block of the pairwise distance computation. */
#define PAIR_BLOCK 64
#define HIST_MAX_BINS (1 << 20)

/* ------------------------------------------------------------------------ */
/* Violation statistics                                                     */

double
cf_violation_tolerance(double rel_tol, const double *b, int m)
{
  double s = 0.0;
  if (b)
    for (int i = 0; i < m; i++)
      s += b[i] * b[i];
  return rel_tol * (1.0 + sqrt(s));
}

/* Ascending, NaN last. */
static int
cmp_double(const void *pa, const void *pb)
{
  double a = *(const double *)pa, b = *(const double *)pb;
  bool na = isnan(a), nb = isnan(b);
  if (na || nb)
    return (int)na - (int)nb;
  return (a > b) - (a < b);
}

double
cf_percentile_sorted(const double *sorted, int n, double q)
{
  if (!sorted || n <= 0 || isnan(q))
    return NAN;
  if (q < 0.0)
    q = 0.0;
  if (q > 1.0)
    q = 1.0;
  double p = q * (double)(n - 1);
  int lo = (int)floor(p);
  if (lo < 0)
    lo = 0;
  if (lo > n - 1)
    lo = n - 1;
  int hi = lo + 1 < n ? lo + 1 : n - 1;
  double f = p - (double)lo;
  double a = sorted[lo], b = sorted[hi];
  if (f == 0.0 || a == b)
    return a;
  return a + f * (b - a);
}

void
cf_violation_stats(CfViolationStats *out, const double *v, int count, double tol)
{
  memset(out, 0, sizeof *out);
  out->tol = tol;
  if (!v || count <= 0) {
    out->mean = out->median = out->p99 = out->max = NAN;
    out->frac_satisfied = NAN;
    return;
  }
  out->count = count;
  double sum = 0.0, mx = -INFINITY;
  bool any_nan = false;
  int nsat = 0;
  for (int i = 0; i < count; i++) {
    double x = v[i];
    sum += x;
    if (isnan(x))
      any_nan = true;
    else if (x > mx)
      mx = x;
    if (x <= tol)
      nsat++;
  }
  out->mean = sum / (double)count;
  out->max = any_nan ? NAN : mx;
  out->n_satisfied = nsat;
  out->frac_satisfied = (double)nsat / (double)count;
  double *s = cf_alloc_array((size_t)count, sizeof *s);
  if (!s) {
    out->median = out->p99 = NAN;
    return;
  }
  memcpy(s, v, (size_t)count * sizeof *s);
  qsort(s, (size_t)count, sizeof *s, cmp_double);
  out->median = cf_percentile_sorted(s, count, 0.5);
  out->p99 = cf_percentile_sorted(s, count, 0.99);
  free(s);
}

/* ------------------------------------------------------------------------ */
/* Log histogram                                                            */

CfStatus
cf_log_histogram_init(CfLogHistogram *h, int n_bins, double lo, double hi)
{
  memset(h, 0, sizeof *h);
  if (n_bins < 1 || n_bins > HIST_MAX_BINS || !isfinite(lo) || !isfinite(hi) || !(lo > 0.0) || !(hi > lo))
    return CF_ERR_INVALID;
  h->edges = cf_alloc_array((size_t)n_bins + 1, sizeof *h->edges);
  h->counts = cf_calloc_array((size_t)n_bins, sizeof *h->counts);
  if (!h->edges || !h->counts) {
    free(h->edges);
    free(h->counts);
    memset(h, 0, sizeof *h);
    return CF_ERR_NOMEM;
  }
  h->n_bins = n_bins;
  h->lo = lo;
  h->hi = hi;
  double llo = log(lo), step = (log(hi) - llo) / (double)n_bins;
  h->edges[0] = lo;
  for (int k = 1; k < n_bins; k++)
    h->edges[k] = exp(llo + step * (double)k);
  h->edges[n_bins] = hi;
  return CF_OK;
}

void
cf_log_histogram_clear(CfLogHistogram *h)
{
  if (!h)
    return;
  free(h->edges);
  free(h->counts);
  memset(h, 0, sizeof *h);
}

void
cf_log_histogram_reset(CfLogHistogram *h)
{
  if (!h)
    return;
  if (h->counts)
    memset(h->counts, 0, (size_t)h->n_bins * sizeof *h->counts);
  h->underflow = h->overflow = h->zeros = 0;
}

void
cf_log_histogram_add(CfLogHistogram *h, const double *v, int count)
{
  if (!h || !h->counts || !h->edges || h->n_bins < 1 || !v)
    return;
  int nb = h->n_bins;
  double llo = log(h->lo);
  double scale = (double)nb / (log(h->hi) - llo);
  for (int i = 0; i < count; i++) {
    double x = v[i];
    if (isnan(x)) {
      h->overflow++;
    } else if (x == 0.0) {
      h->zeros++;
      h->underflow++;
    } else if (x < h->lo) {
      h->underflow++;
    } else if (x > h->hi) {
      h->overflow++;
    } else {
      double t = floor((log(x) - llo) * scale);
      int k = t < 0.0 ? 0 : (t > (double)(nb - 1) ? nb - 1 : (int)t);
      /* Make the bin agree with the stored edges despite rounding in log. */
      if (k > 0 && x < h->edges[k])
        k--;
      else if (k < nb - 1 && x >= h->edges[k + 1])
        k++;
      h->counts[k]++;
    }
  }
}

/* ------------------------------------------------------------------------ */
/* Pairwise distances                                                       */

/* Pooled sample in double: rows 0..nx-1 from X, then ny rows from Y, centred
 * at the pooled mean (distances are translation invariant, and centring
 * keeps the Gram-matrix formula accurate). */
typedef struct {
  int nx, ny, d;
  double *Z;  /* (nx + ny) x d */
  double *zn; /* squared norms */
} Pooled;

static void
pooled_free(Pooled *p)
{
  free(p->Z);
  free(p->zn);
  memset(p, 0, sizeof *p);
}

/* Chooses k of n row indices (partial Fisher-Yates with rng, or the first
 * k without rng), ascending. */
static int *
choose_rows(int n, int k, CfRng *rng)
{
  int *idx = cf_alloc_array((size_t)n, sizeof *idx);
  if (!idx)
    return NULL;
  for (int i = 0; i < n; i++)
    idx[i] = i;
  if (rng && k < n) {
    for (int i = 0; i < k; i++) {
      int j = i + (int)cf_rng_below(rng, (uint64_t)(n - i));
      int t = idx[i];
      idx[i] = idx[j];
      idx[j] = t;
    }
  }
  /* ascending order of the chosen rows (counting sort via a mark array) */
  if (k < n) {
    unsigned char *mark = cf_calloc_array((size_t)n, 1);
    if (!mark) {
      free(idx);
      return NULL;
    }
    for (int i = 0; i < k; i++)
      mark[idx[i]] = 1;
    int o = 0;
    for (int i = 0; i < n; i++)
      if (mark[i])
        idx[o++] = i;
    free(mark);
  }
  return idx;
}

static bool
pooled_make(Pooled *p, const float *X, int nx, const float *Y, int ny, int d, int max_n, CfRng *rng)
{
  memset(p, 0, sizeof *p);
  if (d < 1 || nx < 0 || ny < 0 || (nx > 0 && !X) || (ny > 0 && !Y))
    return false;
  int kx = (max_n > 0 && nx > max_n) ? max_n : nx;
  int ky = (max_n > 0 && ny > max_n) ? max_n : ny;
  int *ix = choose_rows(nx, kx, rng);
  int *iy = choose_rows(ny, ky, rng);
  size_t N = (size_t)kx + (size_t)ky;
  p->Z = cf_alloc_array(N * (size_t)d, sizeof *p->Z);
  p->zn = cf_alloc_array(N, sizeof *p->zn);
  double *mean = cf_calloc_array((size_t)d, sizeof *mean);
  bool ok = ix && iy && p->Z && p->zn && mean;
  if (ok) {
    for (size_t r = 0; r < N && ok; r++) {
      const float *src = r < (size_t)kx ? X + (size_t)ix[r] * (size_t)d : Y + (size_t)iy[r - (size_t)kx] * (size_t)d;
      double *dst = p->Z + r * (size_t)d;
      for (int j = 0; j < d; j++) {
        if (!isfinite(src[j]))
          ok = false;
        dst[j] = (double)src[j];
        mean[j] += dst[j];
      }
    }
  }
  if (ok && N > 0) {
    for (int j = 0; j < d; j++)
      mean[j] /= (double)N;
    for (size_t r = 0; r < N; r++) {
      double *z = p->Z + r * (size_t)d;
      double s = 0.0;
      for (int j = 0; j < d; j++) {
        z[j] -= mean[j];
        s += z[j] * z[j];
      }
      p->zn[r] = s;
    }
  }
  free(ix);
  free(iy);
  free(mean);
  if (!ok) {
    pooled_free(p);
    return false;
  }
  p->nx = kx;
  p->ny = ky;
  p->d = d;
  return true;
}

/* out[r * cols + t] = |P_r - Q_t|^2 for rows x cols pairs, where P and Q
 * point into the pooled matrix (row-major, d columns) and pn, qn are their
 * squared norms. */
static void
d2_block(double *out, const double *P, const double *pn, int rows, const double *Q, const double *qn, int cols,
         int d)
{
  if (d <= DIRECT_MAX_D) {
    for (int r = 0; r < rows; r++) {
      const double *a = P + (size_t)r * (size_t)d;
      for (int t = 0; t < cols; t++) {
        const double *b = Q + (size_t)t * (size_t)d;
        double s = 0.0;
        for (int j = 0; j < d; j++) {
          double df = a[j] - b[j];
          s += df * df;
        }
        out[(size_t)r * (size_t)cols + (size_t)t] = s;
      }
    }
    return;
  }
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, cols, d, -2.0, P, d, Q, d, 0.0, out, cols);
  for (int r = 0; r < rows; r++) {
    double *o = out + (size_t)r * (size_t)cols;
    for (int t = 0; t < cols; t++) {
      double v = o[t] + pn[r] + qn[t];
      o[t] = v > 0.0 ? v : 0.0;
    }
  }
}

typedef enum { PAIR_SQRT, PAIR_RBF } PairFn;

/* Sum of f(|p_i - q_j|^2) over pairs. If same (P == Q, np == nq), only
 * i < j is summed. inv2s2 = 1 / (2 sigma^2) for PAIR_RBF. Returns NaN if out
 * of memory. */
static double
pair_sum(const Pooled *pool, int p0, int np, int q0, int nq, bool same, PairFn fn, double inv2s2)
{
  int d = pool->d;
  double *buf = cf_alloc_array((size_t)PAIR_BLOCK * (size_t)(nq > 0 ? nq : 1), sizeof *buf);
  if (!buf)
    return NAN;
  double total = 0.0;
  for (int i0 = 0; i0 < np; i0 += PAIR_BLOCK) {
    int rows = np - i0 < PAIR_BLOCK ? np - i0 : PAIR_BLOCK;
    int j0 = same ? i0 : 0;
    int cols = nq - j0;
    if (cols <= 0)
      break;
    const double *P = pool->Z + (size_t)(p0 + i0) * (size_t)d;
    const double *Q = pool->Z + (size_t)(q0 + j0) * (size_t)d;
    d2_block(buf, P, pool->zn + p0 + i0, rows, Q, pool->zn + q0 + j0, cols, d);
    double block = 0.0;
    for (int r = 0; r < rows; r++) {
      const double *o = buf + (size_t)r * (size_t)cols;
      int t0 = same ? r + 1 : 0; /* column t is pair (i0 + r, j0 + t) */
      double s = 0.0;
      if (fn == PAIR_SQRT)
        for (int t = t0; t < cols; t++)
          s += sqrt(o[t]);
      else
        for (int t = t0; t < cols; t++)
          s += exp(-o[t] * inv2s2);
      block += s;
    }
    total += block;
  }
  free(buf);
  return total;
}

/* k-th smallest (0-based) of a[0..n), partially reordering a: afterwards
 * a[0..k) <= a[k] <= a[k+1..n). Quickselect with median-of-three pivots,
 * falling back to qsort of the remaining range if it degenerates. */
static double
select_kth(double *a, size_t n, size_t k)
{
  ptrdiff_t lo = 0, hi = (ptrdiff_t)n - 1, kk = (ptrdiff_t)k;
  int budget = 64;
  while (lo < hi) {
    if (budget-- <= 0) {
      qsort(a + lo, (size_t)(hi - lo + 1), sizeof *a, cmp_double);
      return a[kk];
    }
    ptrdiff_t mid = lo + (hi - lo) / 2;
    double x = a[lo], y = a[mid], z = a[hi];
    double pivot = x < y ? (y < z ? y : (x < z ? z : x)) : (x < z ? x : (y < z ? z : y));
    ptrdiff_t i = lo, j = hi;
    while (i <= j) {
      while (a[i] < pivot)
        i++;
      while (a[j] > pivot)
        j--;
      if (i <= j) {
        double t = a[i];
        a[i] = a[j];
        a[j] = t;
        i++;
        j--;
      }
    }
    if (kk <= j)
      hi = j;
    else if (kk >= i)
      lo = i;
    else
      return a[kk];
  }
  return a[kk];
}

static double
median_sigma2(const Pooled *pool)
{
  size_t N = (size_t)pool->nx + (size_t)pool->ny;
  if (N < 2)
    return NAN;
  size_t P = N * (N - 1) / 2;
  double *all = cf_alloc_array(P, sizeof *all);
  double *buf = cf_alloc_array((size_t)PAIR_BLOCK * N, sizeof *buf);
  if (!all || !buf) {
    free(all);
    free(buf);
    return NAN;
  }
  int d = pool->d;
  size_t o = 0;
  for (size_t i0 = 0; i0 < N; i0 += PAIR_BLOCK) {
    size_t rows = N - i0 < PAIR_BLOCK ? N - i0 : PAIR_BLOCK;
    size_t cols = N - i0;
    d2_block(buf, pool->Z + i0 * (size_t)d, pool->zn + i0, (int)rows, pool->Z + i0 * (size_t)d, pool->zn + i0,
             (int)cols, d);
    for (size_t r = 0; r < rows; r++)
      for (size_t t = r + 1; t < cols; t++)
        all[o++] = buf[r * cols + t];
  }
  free(buf);
  double med;
  size_t k = P / 2;
  double upper = select_kth(all, P, k);
  if (P % 2 == 1) {
    med = upper;
  } else {
    double lower = all[0];
    for (size_t t = 1; t < k; t++)
      if (all[t] > lower)
        lower = all[t];
    med = 0.5 * (lower + upper);
  }
  double sigma2 = 0.5 * med;
  if (!(med > 0.0)) {
    double s = 0.0;
    size_t cnt = 0;
    for (size_t t = 0; t < P; t++)
      if (all[t] > 0.0) {
        s += all[t];
        cnt++;
      }
    sigma2 = cnt > 0 ? 0.5 * s / (double)cnt : 1.0;
  }
  free(all);
  return sigma2;
}

double
cf_median_heuristic_sigma2(const float *X, int nx, const float *Y, int ny, int d)
{
  Pooled pool;
  if (!pooled_make(&pool, X, nx, Y, ny, d, 0, NULL))
    return NAN;
  double s2 = median_sigma2(&pool);
  pooled_free(&pool);
  return s2;
}

double
cf_energy_distance(const float *X, int nx, const float *Y, int ny, int d, int max_n, CfRng *rng)
{
  Pooled pool;
  if (!pooled_make(&pool, X, nx, Y, ny, d, max_n, rng))
    return NAN;
  double res = NAN;
  int a = pool.nx, b = pool.ny;
  if (a >= 2 && b >= 2) {
    double sxy = pair_sum(&pool, 0, a, a, b, false, PAIR_SQRT, 0.0);
    double sxx = pair_sum(&pool, 0, a, 0, a, true, PAIR_SQRT, 0.0);
    double syy = pair_sum(&pool, a, b, a, b, true, PAIR_SQRT, 0.0);
    double exy = sxy / ((double)a * (double)b);
    double exx = 2.0 * sxx / ((double)a * (double)(a - 1));
    double eyy = 2.0 * syy / ((double)b * (double)(b - 1));
    res = 2.0 * exy - exx - eyy;
  }
  pooled_free(&pool);
  return res;
}

double
cf_mmd_rbf(const float *X, int nx, const float *Y, int ny, int d, int max_n, CfRng *rng)
{
  Pooled pool;
  if (!pooled_make(&pool, X, nx, Y, ny, d, max_n, rng))
    return NAN;
  double res = NAN;
  int a = pool.nx, b = pool.ny;
  if (a >= 2 && b >= 2) {
    double s2 = median_sigma2(&pool);
    if (isfinite(s2) && s2 > 0.0) {
      double inv = 1.0 / (2.0 * s2);
      double kxy = pair_sum(&pool, 0, a, a, b, false, PAIR_RBF, inv);
      double kxx = pair_sum(&pool, 0, a, 0, a, true, PAIR_RBF, inv);
      double kyy = pair_sum(&pool, a, b, a, b, true, PAIR_RBF, inv);
      res = 2.0 * kxx / ((double)a * (double)(a - 1)) + 2.0 * kyy / ((double)b * (double)(b - 1)) -
            2.0 * kxy / ((double)a * (double)b);
    }
  }
  pooled_free(&pool);
  return res;
}

CfStatus
cf_pca(const float *X, int n, int d, int k, double *mean, double *basis, CfError *err)
{
  if (n < 2 || d < 1 || k < 1 || k > d)
    return cf_error_set(err, CF_ERR_INVALID, "PCA needs at least 2 rows and 1 <= k <= d (n %d, d %d, k %d)", n, d, k);
  double *C = calloc((size_t)d * d, sizeof(double));
  double *w = malloc(sizeof(double) * (size_t)d);
  double *row = malloc(sizeof(double) * (size_t)d);
  if (!C || !w || !row) {
    free(C);
    free(w);
    free(row);
    return cf_error_set(err, CF_ERR_NOMEM, "out of memory for PCA (d = %d)", d);
  }
  for (int j = 0; j < d; j++)
    mean[j] = 0;
  for (int i = 0; i < n; i++)
    for (int j = 0; j < d; j++)
      mean[j] += X[(size_t)i * d + j];
  for (int j = 0; j < d; j++)
    mean[j] /= n;
  /* C = sum (x - mean)(x - mean)^T / (n - 1), upper triangle by rank-1 updates. */
  for (int i = 0; i < n; i++) {
    for (int j = 0; j < d; j++)
      row[j] = X[(size_t)i * d + j] - mean[j];
    cblas_dsyr(CblasRowMajor, CblasUpper, d, 1.0 / (n - 1), row, 1, C, d);
  }
  /* Eigenvalues ascending; eigenvectors in the columns of C (row-major). */
  int info = LAPACKE_dsyev(LAPACK_ROW_MAJOR, 'V', 'U', d, C, d, w);
  if (info != 0) {
    free(C);
    free(w);
    free(row);
    return cf_error_set(err, CF_ERR_NUMERIC, "PCA eigen-decomposition failed (info %d)", info);
  }
  for (int r = 0; r < k; r++) {
    int col = d - 1 - r;
    for (int j = 0; j < d; j++)
      basis[(size_t)r * d + j] = C[(size_t)j * d + col];
  }
  free(C);
  free(w);
  free(row);
  return CF_OK;
}
