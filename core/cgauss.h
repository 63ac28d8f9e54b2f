/* The constrained-Gaussian layer: a Gaussian N(mu, diag(s)) conditioned
 * exactly on A z = k (research note hard-linear-constraints.md).
 *
 * Per sample b (rows of the batch), with Sigma = diag(s_b):
 *   S      = A Sigma A^T                       (m x m, SPD)
 *   lambda = S^{-1} (k - A mu),  c = A^T lambda
 *   mu_bar = mu + s .* c                        (A mu_bar = k)
 *   var_bar_i = s_i - s_i^2 q_i,  q_i = (A^T S^{-1} A)_ii   (marginal variances)
 *   z      = x + s .* A^T S^{-1} (k - A x),  x = mu + sqrt(s) .* eps
 *            (an exact sample: the noise only moves z inside the null space)
 *   log p(z | A z = k) = log N(z; mu, Sigma) - log N(k; A mu, S)
 *                        - 1/2 log det(A A^T)
 * The log-density is w.r.t. the Lebesgue measure of the affine subspace
 * {A z = k} itself (orthonormal coordinates on the subspace). The authors'
 * code works in reduced coordinates and drops the -1/2 log det(A A^T) term
 * (1/2 log n for one sum): set `drop_logdet_aat` to use their convention and
 * never compare NLLs across conventions.
 *
 * Closed-form expected losses under the constrained Gaussian:
 *   E||z - y||^2 = ||mu_bar - y||^2 + sum_i var_bar_i
 *   E|z_i - y_i| = sqrt(2 v/pi) exp(-d^2/(2v)) + d erf(d / sqrt(2v)),
 *                  d = mu_bar_i - y_i, v = var_bar_i.
 *
 * Gradient estimators for the sample (cf_cgauss_backward_sample):
 *   CF_CGAUSS_ME (Marginal Expectation, the default): forward gives the exact
 *     sample, backward differentiates mu_bar: d/dmu = P^T g with
 *     P = I - Sigma A^T S^{-1} A, d/ds = c .* P^T g (no noise path).
 *   CF_CGAUSS_CR (Constrained Reparametrisation): pathwise through
 *     z = x + Sigma A^T S^{-1}(k - A x): d/dmu = P^T g,
 *     d/ds = P^T g .* (c_x + eps / (2 sqrt s)), c_x = A^T S^{-1}(k - A x).
 *
 * Variances: per-sample diagonal (B x n, CF_CGAUSS_VAR_DIAG) or one shared
 * isotropic value (CF_CGAUSS_VAR_ISO: var points to one float). Zero,
 * negative and non-finite variances are errors (the message names the
 * sample and coordinate); positive values below `var_floor` (default
 * CF_CGAUSS_VAR_FLOOR = 1e-6, absolute) are raised to it and receive no
 * gradient.
 *
 * Cost paths, chosen at setup:
 *   - blocks: every column of A has at most one non-zero and each row's
 *     non-zeros are equal (one sum constraint, disjoint block sums, scaled
 *     sums): O(n) per sample, S is diagonal.
 *   - dense, isotropic: S = s A A^T; the Cholesky factor of A A^T (double)
 *     and L^{-1} A are computed once and cached.
 *   - dense, per-sample: S_b = A diag(s_b) A^T by one float SYRK per sample,
 *     Cholesky in double (LAPACK dpotrf), factor kept packed in float
 *     (B m(m+1)/2 floats). Solves used for mu_bar and z are refined in double
 *     against the exact S (A (s .* A^T lambda) in double), so A z - k sits
 *     at round-off. q (marginal variances, log-density) costs one more
 *     m^2 n triangular solve per sample; the variance backward three.
 *
 * Usage per batch: cf_cgauss_forward (mu_bar), then as needed
 * cf_cgauss_marginal_var, cf_cgauss_sample, cf_cgauss_log_density, the loss
 * helpers, and the backward functions. Backward functions accumulate (+=)
 * into dmu (B x n) and dvar (B x n for DIAG, 1 float for ISO); either may be
 * NULL. Outputs live in the struct (float, B x n) until the next forward.
 * Everything is in the space in which A and k are given (map raw-space
 * constraints with cf_constraint_to_model_space first). */
#ifndef CF_CGAUSS_H
#define CF_CGAUSS_H

#include <stdbool.h>
#include <stddef.h>

#include "constraint.h"
#include "rng.h"
#include "status.h"

#define CF_CGAUSS_VAR_FLOOR 1e-6f

typedef enum {
  CF_CGAUSS_ME = 0, /* Marginal Expectation */
  CF_CGAUSS_CR = 1, /* Constrained Reparametrisation */
} CfCgaussEstimator;

typedef enum {
  CF_CGAUSS_VAR_DIAG = 0, /* var is (B, n): per-sample diagonal */
  CF_CGAUSS_VAR_ISO = 1,  /* var is (1): one shared isotropic variance */
} CfCgaussVarMode;

typedef enum {
  CF_CGAUSS_DENSE = 0,
  CF_CGAUSS_BLOCKS = 1, /* disjoint (scaled) sums: the O(n) path */
} CfCgaussPath;

typedef struct {
  /* ---- options (set after cf_cgauss_init; force_dense before setup) ---- */
  CfCgaussEstimator estimator;
  bool drop_logdet_aat; /* authors' convention: no -1/2 log det(A A^T) */
  float var_floor;      /* default CF_CGAUSS_VAR_FLOOR */
  bool force_dense;     /* tests: use the dense path even for sums */

  /* ---- constraint (set up once) ---- */
  int n, m;            /* m: rows kept after dropping redundant ones */
  int m_full;          /* rows of the constraint as given */
  int n_dropped;
  int *dropped;        /* indices (into the given rows) of redundant rows */
  int *kept;           /* m indices of the kept rows */
  double *dep;         /* n_dropped x m: dropped row = dep . kept rows */
  double *A;           /* m x n double */
  float *Af;           /* m x n float */
  double *b;           /* m_full: the constraint's own right-hand side */
  CfCgaussPath path;
  int *block_of;       /* n: row of the column's non-zero or -1 (blocks path) */
  double *block_coef;  /* m: the common coefficient of each row */
  double *block_size;  /* m: number of columns in each row */
  int *blk_ptr, *blk_col; /* rows' columns, CSR (m + 1 offsets; blocks path) */
  double logdet_aat;   /* log det(A A^T) */
  double *L0;          /* m x m Cholesky of A A^T (dense path) */
  float *W0;           /* m x n, L0^{-1} A (lazily, isotropic dense path) */

  /* ---- batch state (from the last forward) ---- */
  int B, B_cap;
  CfCgaussVarMode mode;
  double *s;        /* B x n floored variances */
  unsigned char *floored; /* B x n: 1 where the floor applied (no gradient) */
  double *mu;       /* B x n */
  double *k;        /* B x m */
  double *lam;      /* B x m: S^{-1}(k - A mu) */
  double *lamx;     /* B x m: S^{-1}(k - A x) of the last sample */
  double *c;        /* B x n: A^T lam */
  double *q;        /* B x n: diag(A^T S^{-1} A) (after marginal_var) */
  double *logdet_s; /* B */
  double *sdiag;    /* B x m: S on the blocks path */
  float *Lp;        /* B x m(m+1)/2: packed float Cholesky (dense DIAG) */
  double s_iso;
  bool have_q, have_sample, have_logp;
  double *eps;      /* B x n: the noise of the last sample */
  double *cx;       /* B x n: A^T S^{-1}(k - A x) of the last sample */
  double *d;        /* B x n: z - mu of the last log-density */
  double max_refine_update; /* relative size of the last refinement step */
  int refine_steps;         /* refinement steps taken by the last solve */

  /* outputs (float, B x n) */
  float *mu_bar, *var_bar, *z;

  /* scratch */
  double *xm1, *xm2;      /* B x m */
  double *xn1, *xn2, *xn3;/* B x n */
  double *gs;             /* B x n: per-coordinate variance gradient */
  float *ws_mn, *ws_mn2, *ws_mm; /* dense path: m x n, m x n, m x m */
  double *ws_mmd;         /* m x m */
} CfCgauss;

void cf_cgauss_init(CfCgauss *g);
void cf_cgauss_clear(CfCgauss *g);

/* Validates c (cf_constraint_analyze: rank, redundant rows, consistency of
 * c->b), drops redundant rows (remembering how they depend on the kept ones),
 * picks the cost path and factors A A^T. A constraint that fixes every
 * coordinate (rank n) is refused: there is no distribution left. */
CfStatus cf_cgauss_setup(CfCgauss *g, const CfConstraint *c, CfError *err);

/* mu (B, n); var per `mode`; k: NULL for the constraint's b, else
 * (k_rows, k_cols) with k_rows 1 (shared) or B (per sample) and k_cols the
 * constraint's row count as given (m_full; redundant rows are checked for
 * each sample and dropped) or the kept row count m. Validates everything
 * (messages name the sample, the coordinate or the row), factors S and
 * computes mu_bar. Allocates only when B grows. */
CfStatus cf_cgauss_forward(CfCgauss *g, int B, const float *mu, const float *var, CfCgaussVarMode mode,
                           const float *k, int k_rows, int k_cols, CfError *err);

/* x (B, n) <- its Euclidean projection onto {A x = scale k_b}: the mean of
 * the layer with an isotropic variance (refined in double, so A x - k sits
 * at round-off). k as in cf_cgauss_forward (NULL: the constraint's b);
 * scale != 1 (e.g. sqrt(abar_t) in a diffusion chain) allocates a scaled
 * copy of k. Overwrites the batch state like a forward. */
CfStatus cf_cgauss_project(CfCgauss *g, int B, float *x, const float *k, int k_rows, int k_cols, double scale,
                           CfError *err);

/* var_bar (B, n): marginal variances of the constrained Gaussian. */
void cf_cgauss_marginal_var(CfCgauss *g);

/* Exact sample into g->z (B, n). eps (B, n) standard normals supplied by the
 * caller, or NULL to draw them from rng. */
void cf_cgauss_sample(CfCgauss *g, const float *eps, CfRng *rng);

/* logp[b] = log p(z_b | A z = k_b) (see the convention above). z (B, n) must
 * satisfy the constraint (e.g. g->z or constrained data). */
void cf_cgauss_log_density(CfCgauss *g, const float *z, double *logp);

/* Expected losses summed over the batch (per_sample[b] if non-NULL). If
 * dmu_bar / dvar_bar (B, n) are non-NULL they receive (=, not +=) the
 * gradient of the sum with respect to mu_bar and var_bar; feed them to
 * cf_cgauss_backward_mean / _var. Both need cf_cgauss_marginal_var first. */
double cf_cgauss_expected_l2(CfCgauss *g, const float *y, double *per_sample, double *dmu_bar, double *dvar_bar);
double cf_cgauss_expected_l1(CfCgauss *g, const float *y, double *per_sample, double *dmu_bar, double *dvar_bar);

/* Backward kernels: accumulate into dmu (B, n) and dvar (per mode).
 * dmu_bar / dvar_bar are upstream gradients (B, n) in double (var_bar does
 * not depend on mu). */
void cf_cgauss_backward_mean(CfCgauss *g, const double *dmu_bar, float *dmu, float *dvar);
void cf_cgauss_backward_var(CfCgauss *g, const double *dvar_bar, float *dvar);
/* Through the last sample with g->estimator. */
void cf_cgauss_backward_sample(CfCgauss *g, const float *dz, float *dmu, float *dvar);
/* Through the last cf_cgauss_log_density (z held fixed). */
void cf_cgauss_backward_log_density(CfCgauss *g, const double *dlogp, float *dmu, float *dvar);

/* max_b |A z_b - k_b|_inf / (|A|_inf |z_b|_inf + |k_b|_inf), in double. */
double cf_cgauss_residual(const CfCgauss *g, const float *z);

#endif
