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

#endif
