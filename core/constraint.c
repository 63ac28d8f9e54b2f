/* Linear equality constraints A x = b: validation, mapping between spaces,
 * projection and violations (parsing is in constraint_parse.c).
 *
 * Analysis runs in double through LAPACK; projection runs in float with a
 * factorisation computed once in double. */
#include "constraint.h"
#include "gemm.h"
#include "constraint_private.h"

#include <cblas.h>
#include <errno.h>
#include <float.h>
#include <lapacke.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Rows per block in cf_project and cf_constraint_violation. */
#ifndef PROJECT_CHUNK
#define PROJECT_CHUNK 2048
#endif
#define VIOLATION_CHUNK 256

/* ------------------------------------------------------------------------ */
/* Basic object management                                                   */

void
cf_constraint_init(CfConstraint *c)
{
  c->m = 0;
  c->n = 0;
  c->A = NULL;
  c->b = NULL;
}

void
cf_constraint_clear(CfConstraint *c)
{
  if (!c)
    return;
  free(c->A);
  free(c->b);
  cf_constraint_init(c);
}

/* Replaces the contents of c with already allocated A and b (takes them). */
void
cf_constraint_take_(CfConstraint *c, int m, int n, double *A, double *b)
{
  free(c->A);
  free(c->b);
  c->m = m;
  c->n = n;
  c->A = A;
  c->b = b;
}

CfStatus
cf_constraint_check_sizes_(int m, int n, CfError *err)
{
  if (m < 1 || n < 1)
    return cf_error_set(err, CF_ERR_INVALID, "constraint must have at least one row and one column (got %d x %d)", m, n);
  if (m > CF_CONSTRAINT_MAX_ROWS)
    return cf_error_set(err, CF_ERR_NOMEM, "constraint has %d rows, more than the limit of %d", m, CF_CONSTRAINT_MAX_ROWS);
  if (n > CF_CONSTRAINT_MAX_COLS)
    return cf_error_set(err, CF_ERR_NOMEM, "constraint has %d columns, more than the limit of %d", n, CF_CONSTRAINT_MAX_COLS);
  return CF_OK;
}

CfStatus
cf_constraint_check_finite_(int m, int n, const double *A, const double *b, CfError *err)
{
  for (int i = 0; i < m; i++) {
    for (int j = 0; j < n; j++) {
      double v = A[(size_t)i * (size_t)n + (size_t)j];
      if (!isfinite(v))
        return cf_error_set(err, CF_ERR_NUMERIC, "row %d, column %d: coefficient is not finite (%g)", i, j, v);
    }
    if (!isfinite(b[i]))
      return cf_error_set(err, CF_ERR_NUMERIC, "row %d: right-hand side is not finite (%g)", i, b[i]);
  }
  return CF_OK;
}

CfStatus
cf_constraint_set(CfConstraint *c, int m, int n, const double *A, const double *b, CfError *err)
{
  CfStatus st = cf_constraint_check_sizes_(m, n, err);
  if (st != CF_OK)
    return st;
  if (!A || !b)
    return cf_error_set(err, CF_ERR_INVALID, "constraint: A or b is NULL");
  st = cf_constraint_check_finite_(m, n, A, b, err);
  if (st != CF_OK)
    return st;
  size_t mn = (size_t)m * (size_t)n;
  double *nA = cf_alloc_array(mn, sizeof *nA);
  double *nb = cf_alloc_array((size_t)m, sizeof *nb);
  if (!nA || !nb) {
    free(nA);
    free(nb);
    return cf_error_set(err, CF_ERR_NOMEM, "out of memory for a %d x %d constraint", m, n);
  }
  memcpy(nA, A, mn * sizeof *nA);
  memcpy(nb, b, (size_t)m * sizeof *nb);
  cf_constraint_take_(c, m, n, nA, nb);
  return CF_OK;
}

CfStatus
cf_constraint_copy(CfConstraint *dst, const CfConstraint *src, CfError *err)
{
  if (dst == src)
    return CF_OK;
  return cf_constraint_set(dst, src->m, src->n, src->A, src->b, err);
}

/* ------------------------------------------------------------------------ */
/* Analysis                                                                 */

void
cf_constraint_report_clear(CfConstraintReport *r)
{
  if (!r)
    return;
  free(r->redundant_rows);
  memset(r, 0, sizeof *r);
}

static double
dnrm2_safe(int n, const double *x)
{
  return n > 0 ? cblas_dnrm2(n, x, 1) : 0.0;
}

CfStatus
cf_constraint_analyze(const CfConstraint *c, int dim, CfConstraintReport *report, CfError *err)
{
  CfConstraintReport dummy;
  CfConstraintReport *r = report ? report : &dummy;
  memset(r, 0, sizeof *r);
  if (!c || !c->A || !c->b)
    return cf_error_set(err, CF_ERR_INVALID, "constraint is empty");
  int m = c->m, n = c->n;
  CfStatus st = cf_constraint_check_sizes_(m, n, err);
  if (st != CF_OK)
    return st;
  if (dim > 0 && n != dim)
    return cf_error_set(err, CF_ERR_SHAPE, "constraint has %d columns but the data has dimension %d", n, dim);
  r->m = m;
  r->n = n;
  st = cf_constraint_check_finite_(m, n, c->A, c->b, err);
  if (st != CF_OK)
    return st;

  size_t mn = (size_t)m * (size_t)n;
  int k = m < n ? m : n;
  int mx = m > n ? m : n;
  double *W = cf_alloc_array(mn, sizeof *W);
  double *x = cf_alloc_array((size_t)mx, sizeof *x);
  double *sv = cf_alloc_array((size_t)k, sizeof *sv);
  double *res = cf_alloc_array((size_t)m, sizeof *res);
  double *basis = cf_alloc_array((size_t)k * (size_t)n, sizeof *basis);
  double *beta = cf_alloc_array((size_t)k, sizeof *beta);
  double *coef = cf_alloc_array((size_t)k, sizeof *coef);
  double *coef2 = cf_alloc_array((size_t)k, sizeof *coef2);
  double *v = cf_alloc_array((size_t)n, sizeof *v);
  int *red = cf_alloc_array((size_t)m, sizeof *red);
  double *disc = cf_alloc_array((size_t)m, sizeof *disc);
  double *K = NULL;
  if (!W || !x || !sv || !res || !basis || !beta || !coef || !coef2 || !v || !red || !disc) {
    st = cf_error_set(err, CF_ERR_NOMEM, "out of memory analysing a %d x %d constraint", m, n);
    goto out;
  }

  /* Minimum-norm least squares + singular values (divide and conquer SVD). */
  memcpy(W, c->A, mn * sizeof *W);
  memset(x, 0, (size_t)mx * sizeof *x);
  memcpy(x, c->b, (size_t)m * sizeof *x);
  double rcond = (double)mx * DBL_EPSILON;
  lapack_int lrank = 0;
  lapack_int info = LAPACKE_dgelsd(LAPACK_ROW_MAJOR, m, n, 1, W, n, x, 1, sv, rcond, &lrank);
  if (info != 0) {
    st = cf_error_set(err, CF_ERR_NUMERIC, "singular value decomposition failed (LAPACK dgelsd info %d)",
                      (int)info);
    goto out;
  }
  double smax = sv[0];
  double tol = (double)mx * DBL_EPSILON * smax;
  int rank = 0;
  for (int i = 0; i < k; i++)
    if (sv[i] > tol)
      rank++;
  r->rank = rank;
  r->rank_tol = tol;
  r->nullity = n - rank;

  double bnorm = dnrm2_safe(m, c->b);
  memcpy(res, c->b, (size_t)m * sizeof *res);
  cblas_dgemv(CblasRowMajor, CblasNoTrans, m, n, 1.0, c->A, n, x, 1, -1.0, res, 1);
  r->residual = dnrm2_safe(m, res);
  r->residual_rel = r->residual / (1.0 + bnorm);
  r->consistent = r->residual_rel <= 1e-6;

  /* Greedy redundancy in row order: classical Gram-Schmidt with one
   * re-orthogonalisation. beta tracks what A x = b implies for q . x, so
   * for a redundant row we also know which right-hand side the earlier rows
   * imply (disc = b_i - implied). */
  int kept = 0, nred = 0;
  for (int i = 0; i < m; i++) {
    const double *a = c->A + (size_t)i * (size_t)n;
    memcpy(v, a, (size_t)n * sizeof *v);
    double implied = 0.0;
    if (kept > 0) {
      cblas_dgemv(CblasRowMajor, CblasNoTrans, kept, n, 1.0, basis, n, v, 1, 0.0, coef, 1);
      cblas_dgemv(CblasRowMajor, CblasTrans, kept, n, -1.0, basis, n, coef, 1, 1.0, v, 1);
      cblas_dgemv(CblasRowMajor, CblasNoTrans, kept, n, 1.0, basis, n, v, 1, 0.0, coef2, 1);
      cblas_dgemv(CblasRowMajor, CblasTrans, kept, n, -1.0, basis, n, coef2, 1, 1.0, v, 1);
      cblas_daxpy(kept, 1.0, coef2, 1, coef, 1);
      implied = cblas_ddot(kept, coef, 1, beta, 1);
    }
    double d = dnrm2_safe(n, v);
    if (d <= tol || kept >= k) {
      disc[nred] = c->b[i] - implied;
      red[nred++] = i;
    } else {
      double inv = 1.0 / d;
      for (int j = 0; j < n; j++)
        basis[(size_t)kept * (size_t)n + (size_t)j] = v[j] * inv;
      beta[kept] = (c->b[i] - implied) * inv;
      kept++;
    }
  }
  r->n_redundant = nred;
  if (nred > 0) {
    r->redundant_rows = cf_alloc_array((size_t)nred, sizeof *r->redundant_rows);
    if (!r->redundant_rows) {
      r->n_redundant = 0;
      st = cf_error_set(err, CF_ERR_NOMEM, "out of memory");
      goto out;
    }
    memcpy(r->redundant_rows, red, (size_t)nred * sizeof *red);
  }

  /* Condition number of the kept rows. */
  double kmin = 0.0, kmax = 0.0;
  if (nred == 0) {
    kmax = smax;
    kmin = sv[k - 1];
  } else if (kept > 0) {
    K = cf_alloc_array((size_t)kept * (size_t)n, sizeof *K);
    if (!K) {
      st = cf_error_set(err, CF_ERR_NOMEM, "out of memory");
      goto out;
    }
    int row = 0, ri = 0;
    for (int i = 0; i < m; i++) {
      if (ri < nred && red[ri] == i) {
        ri++;
        continue;
      }
      memcpy(K + (size_t)row * (size_t)n, c->A + (size_t)i * (size_t)n, (size_t)n * sizeof *K);
      row++;
    }
    info = LAPACKE_dgesdd(LAPACK_ROW_MAJOR, 'N', kept, n, K, n, coef, NULL, kept, NULL, n);
    if (info != 0) {
      st = cf_error_set(err, CF_ERR_NUMERIC, "singular value decomposition failed (LAPACK dgesdd info %d)",
                        (int)info);
      goto out;
    }
    kmax = coef[0];
    kmin = coef[kept - 1];
  }
  r->cond = kmin > 0.0 ? kmax / kmin : INFINITY;

  if (rank == 0) {
    st = cf_error_set(err, CF_ERR_RANK, "all coefficients are zero (rank 0): the constraint says nothing");
    goto out;
  }
  if (!r->consistent) {
    char detail[256] = "";
    for (int t = 0; t < nred; t++) {
      if (fabs(disc[t]) > 1e-6 * (1.0 + bnorm)) {
        int i = red[t];
        if (dnrm2_safe(n, c->A + (size_t)i * (size_t)n) <= tol)
          snprintf(detail, sizeof detail, "; row %d is all zeros but its right-hand side is %.6g", i, c->b[i]);
        else
          snprintf(detail, sizeof detail,
                   "; row %d is a combination of earlier rows that implies a right-hand side of %.6g, "
                   "but it is %.6g",
                   i, c->b[i] - disc[t], c->b[i]);
        break;
      }
    }
    st = cf_error_set(err, CF_ERR_INCONSISTENT, "inconsistent system: least-squares residual %.6g (relative %.6g)%s",
                      r->residual, r->residual_rel, detail);
    goto out;
  }
  if (kept != rank || kmin <= tol) {
    st = cf_error_set(err, CF_ERR_RANK,
                      "rank is numerically ambiguous: rank %d at tolerance %.3g, but the row-by-row test keeps "
                      "%d rows whose smallest singular value is %.3g (condition number %.3g)",
                      rank, tol, kept, kmin, r->cond);
    goto out;
  }
  st = CF_OK;

out:
  free(W);
  free(x);
  free(sv);
  free(res);
  free(basis);
  free(beta);
  free(coef);
  free(coef2);
  free(v);
  free(red);
  free(disc);
  free(K);
  return st;
}

CfStatus
cf_constraint_reduce(CfConstraint *out, const CfConstraint *c, const CfConstraintReport *report, CfError *err)
{
  if (!c || !c->A || !c->b || !report)
    return cf_error_set(err, CF_ERR_INVALID, "reduce: missing constraint or report");
  if (report->m != c->m || report->n != c->n)
    return cf_error_set(err, CF_ERR_SHAPE, "reduce: the report is for a %d x %d constraint, not %d x %d",
                        report->m, report->n, c->m, c->n);
  int m = c->m, n = c->n;
  bool *drop = cf_calloc_array((size_t)m, sizeof *drop);
  if (!drop)
    return cf_error_set(err, CF_ERR_NOMEM, "out of memory");
  int nd = 0;
  for (int t = 0; t < report->n_redundant; t++) {
    int i = report->redundant_rows ? report->redundant_rows[t] : -1;
    if (i < 0 || i >= m) {
      free(drop);
      return cf_error_set(err, CF_ERR_INVALID, "reduce: redundant row index %d is out of range", i);
    }
    if (!drop[i])
      nd++;
    drop[i] = true;
  }
  int mk = m - nd;
  if (mk < 1) {
    free(drop);
    return cf_error_set(err, CF_ERR_RANK, "reduce: every row is redundant");
  }
  double *A = cf_alloc_array((size_t)mk * (size_t)n, sizeof *A);
  double *b = cf_alloc_array((size_t)mk, sizeof *b);
  if (!A || !b) {
    free(A);
    free(b);
    free(drop);
    return cf_error_set(err, CF_ERR_NOMEM, "out of memory");
  }
  int row = 0;
  for (int i = 0; i < m; i++) {
    if (drop[i])
      continue;
    memcpy(A + (size_t)row * (size_t)n, c->A + (size_t)i * (size_t)n, (size_t)n * sizeof *A);
    b[row] = c->b[i];
    row++;
  }
  free(drop);
  cf_constraint_take_(out, mk, n, A, b);
  return CF_OK;
}

/* ------------------------------------------------------------------------ */
/* Raw space <-> model space                                                */

static CfStatus
check_affine(const CfConstraint *c, const float *mu, const float *s, CfError *err)
{
  if (!c || !c->A || !c->b || c->m < 1 || c->n < 1)
    return cf_error_set(err, CF_ERR_INVALID, "constraint is empty");
  if (!mu || !s)
    return cf_error_set(err, CF_ERR_INVALID, "normalisation: mu or s is NULL");
  for (int j = 0; j < c->n; j++) {
    if (!isfinite(mu[j]))
      return cf_error_set(err, CF_ERR_NUMERIC, "normalisation: mean of coordinate %d is not finite", j);
    if (!isfinite(s[j]) || s[j] == 0.0f)
      return cf_error_set(err, CF_ERR_INVALID, "normalisation: scale of coordinate %d is %g (must be finite, non-zero)",
                          j, (double)s[j]);
  }
  return CF_OK;
}

static CfStatus
map_space(CfConstraint *out, const CfConstraint *in, const float *mu, const float *s, bool to_model, CfError *err)
{
  CfStatus st = check_affine(in, mu, s, err);
  if (st != CF_OK)
    return st;
  int m = in->m, n = in->n;
  double *A = cf_alloc_array((size_t)m * (size_t)n, sizeof *A);
  double *b = cf_alloc_array((size_t)m, sizeof *b);
  if (!A || !b) {
    free(A);
    free(b);
    return cf_error_set(err, CF_ERR_NOMEM, "out of memory");
  }
  for (int i = 0; i < m; i++) {
    const double *ai = in->A + (size_t)i * (size_t)n;
    double *oi = A + (size_t)i * (size_t)n;
    /* A mu uses the raw-space A: the input on the way in, the output on the way back. */
    double amu = 0.0;
    for (int j = 0; j < n; j++) {
      double raw_aij = to_model ? ai[j] : ai[j] / (double)s[j];
      oi[j] = to_model ? ai[j] * (double)s[j] : raw_aij;
      amu += raw_aij * (double)mu[j];
    }
    b[i] = to_model ? in->b[i] - amu : in->b[i] + amu;
    if (!isfinite(b[i])) {
      free(A);
      free(b);
      return cf_error_set(err, CF_ERR_NUMERIC, "row %d: right-hand side overflows after mapping", i);
    }
  }
  for (size_t t = 0; t < (size_t)m * (size_t)n; t++) {
    if (!isfinite(A[t])) {
      free(A);
      free(b);
      return cf_error_set(err, CF_ERR_NUMERIC, "row %zu: coefficient overflows after mapping", t / (size_t)n);
    }
  }
  cf_constraint_take_(out, m, n, A, b);
  return CF_OK;
}

CfStatus
cf_constraint_to_model_space(CfConstraint *out, const CfConstraint *raw, const float *mu, const float *s, CfError *err)
{
  return map_space(out, raw, mu, s, true, err);
}

CfStatus
cf_constraint_to_raw_space(CfConstraint *out, const CfConstraint *model, const float *mu, const float *s, CfError *err)
{
  return map_space(out, model, mu, s, false, err);
}

/* ------------------------------------------------------------------------ */
/* Projection                                                               */

/* Q is allocated with n + 1 rows: rows 0..n-1 are Q (n x m), row n holds the
 * constant c = Q^T x* (the coordinates of x* in that basis). */

void
cf_projector_init(CfProjector *p)
{
  memset(p, 0, sizeof *p);
}

void
cf_projector_clear(CfProjector *p)
{
  if (!p)
    return;
  cf_free_aligned(p->Q);
  cf_free_aligned(p->xstar);
  cf_free_aligned(p->scratch);
  cf_projector_init(p);
}

CfStatus
cf_projector_setup(CfProjector *p, const CfConstraint *c, CfError *err)
{
  if (!c || !c->A || !c->b)
    return cf_error_set(err, CF_ERR_INVALID, "projector: constraint is empty");
  int m = c->m, n = c->n;
  CfStatus st = cf_constraint_check_sizes_(m, n, err);
  if (st != CF_OK)
    return st;
  st = cf_constraint_check_finite_(m, n, c->A, c->b, err);
  if (st != CF_OK)
    return st;
  if (m > n)
    return cf_error_set(err, CF_ERR_RANK,
                        "projector: %d rows but only %d columns, so the rows cannot be independent "
                        "(drop redundant rows with cf_constraint_reduce first)",
                        m, n);
  size_t mn = (size_t)m * (size_t)n;
  double *F = cf_alloc_array(mn, sizeof *F);
  double *tau = cf_alloc_array((size_t)m, sizeof *tau);
  double *R = cf_alloc_array((size_t)m * (size_t)m, sizeof *R);
  double *y = cf_alloc_array((size_t)m, sizeof *y);
  double *dy = cf_alloc_array((size_t)m, sizeof *dy);
  double *xs = cf_alloc_array((size_t)n, sizeof *xs);
  float *Qf = cf_alloc_floats(((size_t)n + 1) * (size_t)m);
  float *xf = cf_alloc_floats((size_t)n);
  if (!F || !tau || !R || !y || !dy || !xs || !Qf || !xf) {
    st = cf_error_set(err, CF_ERR_NOMEM, "projector: out of memory for a %d x %d constraint", m, n);
    goto fail;
  }
  /* A (m x n row-major) is A^T (n x m) in column-major: QR of A^T directly. */
  memcpy(F, c->A, mn * sizeof *F);
  lapack_int info = LAPACKE_dgeqrf(LAPACK_COL_MAJOR, n, m, F, n, tau);
  if (info != 0) {
    st = cf_error_set(err, CF_ERR_NUMERIC, "projector: QR failed (LAPACK dgeqrf info %d)", (int)info);
    goto fail;
  }
  double fro = 0.0;
  for (size_t t = 0; t < mn; t++)
    fro += c->A[t] * c->A[t];
  fro = sqrt(fro);
  double tol = (double)n * DBL_EPSILON * fro;
  for (int i = 0; i < m; i++) {
    double rii = F[(size_t)i * (size_t)n + (size_t)i];
    if (!(fabs(rii) > tol)) {
      st = cf_error_set(err, CF_ERR_RANK,
                        "projector: row %d lies in the span of the earlier rows (distance %.3g); "
                        "run cf_constraint_analyze and cf_constraint_reduce first",
                        i, fabs(rii));
      goto fail;
    }
  }
  /* R (m x m, upper, column-major, leading dimension m). */
  memset(R, 0, (size_t)m * (size_t)m * sizeof *R);
  for (int j = 0; j < m; j++)
    for (int i = 0; i <= j; i++)
      R[(size_t)j * (size_t)m + (size_t)i] = F[(size_t)j * (size_t)n + (size_t)i];
  info = LAPACKE_dorgqr(LAPACK_COL_MAJOR, n, m, m, F, n, tau);
  if (info != 0) {
    st = cf_error_set(err, CF_ERR_NUMERIC, "projector: forming Q failed (LAPACK dorgqr info %d)", (int)info);
    goto fail;
  }
  /* A = R^T Q^T, so A x = b  <=>  Q^T x = y with R^T y = b; x* = Q y.
   * One step of iterative refinement in double. */
  memcpy(y, c->b, (size_t)m * sizeof *y);
  cblas_dtrsv(CblasColMajor, CblasUpper, CblasTrans, CblasNonUnit, m, R, m, y, 1);
  cblas_dgemv(CblasColMajor, CblasNoTrans, n, m, 1.0, F, n, y, 1, 0.0, xs, 1);
  memcpy(dy, c->b, (size_t)m * sizeof *dy);
  cblas_dgemv(CblasRowMajor, CblasNoTrans, m, n, -1.0, c->A, n, xs, 1, 1.0, dy, 1);
  cblas_dtrsv(CblasColMajor, CblasUpper, CblasTrans, CblasNonUnit, m, R, m, dy, 1);
  cblas_daxpy(m, 1.0, dy, 1, y, 1);
  cblas_dgemv(CblasColMajor, CblasNoTrans, n, m, 1.0, F, n, dy, 1, 1.0, xs, 1);

  for (int i = 0; i < n; i++)
    for (int j = 0; j < m; j++)
      Qf[(size_t)i * (size_t)m + (size_t)j] = (float)F[(size_t)j * (size_t)n + (size_t)i];
  for (int j = 0; j < m; j++)
    Qf[(size_t)n * (size_t)m + (size_t)j] = (float)y[j];
  for (int i = 0; i < n; i++)
    xf[i] = (float)xs[i];

  cf_projector_clear(p);
  p->m = m;
  p->n = n;
  p->Q = Qf;
  p->xstar = xf;
  st = CF_OK;
  Qf = NULL;
  xf = NULL;
fail:
  free(F);
  free(tau);
  free(R);
  free(y);
  free(dy);
  free(xs);
  cf_free_aligned(Qf);
  cf_free_aligned(xf);
  return st;
}

CfStatus
cf_projector_reserve(CfProjector *p, int B)
{
  if (B <= p->scratch_rows)
    return CF_OK;
  int rows = B < PROJECT_CHUNK ? B : PROJECT_CHUNK;
  if (rows <= p->scratch_rows)
    return CF_OK;
  float *s = cf_alloc_floats((size_t)rows * (size_t)(p->m > 0 ? p->m : 1));
  if (!s)
    return CF_ERR_NOMEM;
  cf_free_aligned(p->scratch);
  p->scratch = s;
  p->scratch_rows = rows;
  return CF_OK;
}

/* x is (B x n); Q is (n x m); scratch is (rows x m). Blocks of at most
 * scratch_rows rows: R = X Q - 1 c^T, then X -= R Q^T. */
void
cf_project(CfProjector *p, float *x, int B)
{
  CF_ASSERT(p && p->Q);
  if (B <= 0)
    return;
  CF_ASSERT(x);
  int m = p->m, n = p->n;
  const float *Q = p->Q;
  const float *cvec = p->Q + (size_t)n * (size_t)m;
  cf_projector_reserve(p, B);
  float row_buf[CF_CONSTRAINT_MAX_ROWS];
  float *R = p->scratch;
  int chunk = p->scratch_rows;
  if (!R || chunk < 1) {
    /* Could not allocate: one row at a time through a stack buffer. */
    R = row_buf;
    chunk = 1;
  }
  for (int r0 = 0; r0 < B; r0 += chunk) {
    int rows = B - r0 < chunk ? B - r0 : chunk;
    float *xb = x + (size_t)r0 * (size_t)n;
    for (int i = 0; i < rows; i++)
      memcpy(R + (size_t)i * (size_t)m, cvec, (size_t)m * sizeof *R);
    cf_gemm(R, m, xb, n, Q, m, rows, m, n, false, false, -1.0f); /* R = X Q - c */
    for (size_t i = 0; i < (size_t)rows * (size_t)m; i++)
      R[i] = -R[i];
    cf_gemm(xb, n, R, m, Q, m, rows, n, m, false, true, 1.0f); /* X += (c - X Q) Q^T */
  }
}

/* ------------------------------------------------------------------------ */
/* Violations                                                               */

static void
violation_naive(const CfConstraint *c, const float *x, int B, double *l2, double *linf)
{
  int m = c->m, n = c->n;
  for (int s = 0; s < B; s++) {
    const float *xs = x + (size_t)s * (size_t)n;
    double ss = 0.0, mx = 0.0;
    for (int i = 0; i < m; i++) {
      const double *a = c->A + (size_t)i * (size_t)n;
      double acc = -c->b[i];
      for (int j = 0; j < n; j++)
        acc += a[j] * (double)xs[j];
      ss += acc * acc;
      if (fabs(acc) > mx || isnan(acc))
        mx = isnan(acc) ? acc : fabs(acc);
    }
    if (l2)
      l2[s] = sqrt(ss);
    if (linf)
      linf[s] = mx;
  }
}

void
cf_constraint_violation(const CfConstraint *c, const float *x, int B, double *l2, double *linf)
{
  CF_ASSERT(c && c->A && c->b);
  if (B <= 0 || (!l2 && !linf))
    return;
  CF_ASSERT(x);
  int m = c->m, n = c->n;
  int chunk = B < VIOLATION_CHUNK ? B : VIOLATION_CHUNK;
  double *Xd = cf_alloc_array((size_t)chunk * (size_t)n, sizeof *Xd);
  double *Rd = cf_alloc_array((size_t)chunk * (size_t)m, sizeof *Rd);
  if (!Xd || !Rd) {
    free(Xd);
    free(Rd);
    violation_naive(c, x, B, l2, linf);
    return;
  }
  for (int r0 = 0; r0 < B; r0 += chunk) {
    int rows = B - r0 < chunk ? B - r0 : chunk;
    const float *xb = x + (size_t)r0 * (size_t)n;
    for (size_t t = 0; t < (size_t)rows * (size_t)n; t++)
      Xd[t] = (double)xb[t];
    for (int s = 0; s < rows; s++)
      memcpy(Rd + (size_t)s * (size_t)m, c->b, (size_t)m * sizeof *Rd);
    /* R = X A^T - 1 b^T: (rows x n) (n x m) */
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, m, n, 1.0, Xd, n, c->A, n, -1.0, Rd, m);
    for (int s = 0; s < rows; s++) {
      const double *rr = Rd + (size_t)s * (size_t)m;
      double mx = 0.0;
      for (int i = 0; i < m; i++) {
        double a = fabs(rr[i]);
        if (a > mx || isnan(a))
          mx = a;
        if (isnan(mx))
          break;
      }
      if (l2)
        l2[r0 + s] = dnrm2_safe(m, rr);
      if (linf)
        linf[r0 + s] = mx;
    }
  }
  free(Xd);
  free(Rd);
}
