/* Sample-quality and constraint-violation statistics. */
#ifndef CF_METRICS_H
#define CF_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rng.h"
#include "status.h"

typedef struct {
  int count;
  double mean, median, p99, max;
  double tol;            /* absolute tolerance used */
  double frac_satisfied; /* fraction with violation <= tol */
  int n_satisfied;
} CfViolationStats;

/* Default tolerance: 1e-4 * (1 + ||b||_2). */
double cf_violation_tolerance(double rel_tol, const double *b, int m);
/* Statistics of per-sample violations v[0..count); percentiles by linear
 * interpolation between order statistics. */
void cf_violation_stats(CfViolationStats *out, const double *v, int count, double tol);

/* Histogram with log-spaced bins between lo and hi (lo > 0); values below lo
 * go to `underflow` (this includes exact zeros), above hi to `overflow`. */
typedef struct {
  int n_bins;
  double lo, hi;
  double *edges; /* n_bins + 1 */
  long *counts;  /* n_bins */
  long underflow, overflow, zeros;
} CfLogHistogram;

CfStatus cf_log_histogram_init(CfLogHistogram *h, int n_bins, double lo, double hi);
void cf_log_histogram_clear(CfLogHistogram *h);
void cf_log_histogram_reset(CfLogHistogram *h);
void cf_log_histogram_add(CfLogHistogram *h, const double *v, int count);

/* Energy distance between sample sets X (nx x d) and Y (ny x d):
 *   2 E|X - Y| - E|X - X'| - E|Y - Y'|   (V-statistic-free: the within-set
 * terms exclude i = j). If nx or ny exceeds max_n (> 0), a random subset of
 * max_n rows is used, drawn with rng. */
double cf_energy_distance(const float *X, int nx, const float *Y, int ny, int d, int max_n, CfRng *rng);
/* Unbiased squared RBF-MMD with bandwidth by the median heuristic
 * (sigma^2 = median of pairwise squared distances over the pooled sample / 2;
 * k(x,y) = exp(-|x-y|^2 / (2 sigma^2))). Subsampled like energy distance. */
double cf_mmd_rbf(const float *X, int nx, const float *Y, int ny, int d, int max_n, CfRng *rng);

/* Additions (implementation details exposed for callers and tests). */

/* q-quantile (0 <= q <= 1) of an ascending array by linear interpolation
 * between order statistics at position q * (n - 1). NaN if n <= 0. */
double cf_percentile_sorted(const double *sorted, int n, double q);
/* The median-heuristic bandwidth used by cf_mmd_rbf on the pooled sample
 * (no subsampling): sigma^2 = median of the pairwise squared distances / 2
 * (even count: mean of the two middle values). If that median is 0 the mean
 * of the non-zero squared distances is used instead, and 1 if all points
 * coincide. NaN on bad input (non-finite values, fewer than 2 points). */
double cf_median_heuristic_sigma2(const float *X, int nx, const float *Y, int ny, int d);
/* Notes on edge cases of the functions above:
 * - cf_violation_stats with count <= 0 sets every statistic to NaN (count 0,
 *   n_satisfied 0); NaN violations sort last and are never satisfied.
 * - cf_log_histogram_add counts NaN as overflow and negative values as
 *   underflow; bins are [edges[k], edges[k+1]) with the last one closed.
 * - cf_energy_distance and cf_mmd_rbf return NaN when a set has fewer than 2
 *   rows (after subsampling), d < 1, a value is not finite, or memory runs
 *   out. rng may be NULL, in which case subsampling takes the first max_n
 *   rows. X rows are drawn before Y rows. */

/* Principal axes of X (n x d): mean (d) and the top k orthonormal
 * directions, basis (k x d, row-major), by eigen-decomposition of the
 * sample covariance in double (LAPACK dsyev). k <= d. */
CfStatus cf_pca(const float *X, int n, int d, int k, double *mean, double *basis, CfError *err);

#endif


/* ---- Frechet distance (metrics_fd.c) ----------------------------------------
 * Frechet distance between Gaussian fits of two feature sets X (nx x d) and
 * Y (ny x d) (the FID-style "Frechet distance" when the features are a
 * classifier's penultimate activations):
 *   FD = ||mu1 - mu2||^2 + tr(S1 + S2 - 2 (S1^{1/2} S2 S1^{1/2})^{1/2}),
 * with sample means and unbiased sample covariances (divisor n - 1), all in
 * double. tr((S1 S2)^{1/2}) is taken in its symmetric form: S1^{1/2} from the
 * eigen-decomposition of S1 (LAPACKE_dsyevd), then the eigenvalues of the
 * symmetric M = S1^{1/2} S2 S1^{1/2}; eigenvalues of S1 and M that are
 * negative from round-off are clamped to 0 before their square roots, and
 * a total below 0 (round-off, e.g. FD(X, X)) is returned as 0.
 * Needs nx, ny >= 2 and finite values (CF_ERR_INVALID otherwise). */
CfStatus cf_frechet_distance(const float *X, int nx, const float *Y, int ny, int d, double *fd, CfError *err);
/* The same for given means (d) and covariances (d x d, symmetric PSD,
 * row-major), e.g. the closed form between two Gaussians. */
CfStatus cf_frechet_gaussian(const double *mu1, const double *S1, const double *mu2, const double *S2, int d,
                             double *fd, CfError *err);
/* Sample mean (d) and unbiased covariance (d x d) of X (n >= 2 rows), in double. */
CfStatus cf_mean_cov(const float *X, int n, int d, double *mu, double *S, CfError *err);
