/* The constrained-Gaussian layer (see cgauss.h for the formulas).
 *
 * Internally the batch data path (mu, s, k, lambda, A^T lambda, gradients)
 * is double; the heavy m^2 n work (SYRK, triangular solves with m x n right
 * sides) is float; factorisations are double. Solves that decide whether a
 * sample satisfies A z = k are refined in double against the exact
 * S = A diag(s) A^T, applied as A (s .* (A^T v)). */
#include "cgauss.h"
#include "gemm.h"

#include <cblas.h>
#include <float.h>
#include <lapacke.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOG_2PI 1.8378770664093454836
/* Refinement stops when the update is below this (relative, max norm). */
#define REFINE_TOL 1e-14
#define REFINE_MAX 6
/* Per-sample right-hand sides on redundant rows may differ from what the
 * kept rows imply by this much (relative to 1 + |k|_inf). */
#define DEP_TOL 1e-6

/* ------------------------------------------------------------------------ */
/* init / clear                                                              */

void
cf_cgauss_init(CfCgauss *g)
{
  memset(g, 0, sizeof *g);
  g->estimator = CF_CGAUSS_ME;
  g->var_floor = CF_CGAUSS_VAR_FLOOR;
}

static void
free_batch(CfCgauss *g)
{
  free(g->s);
  free(g->floored);
  free(g->mu);
  free(g->k);
  free(g->lam);
  free(g->lamx);
  free(g->c);
  free(g->q);
  free(g->logdet_s);
  free(g->sdiag);
  cf_free_aligned(g->Lp);
  free(g->eps);
  free(g->cx);
  free(g->d);
  cf_free_aligned(g->mu_bar);
  cf_free_aligned(g->var_bar);
  cf_free_aligned(g->z);
  free(g->xm1);
  free(g->xm2);
  free(g->xn1);
  free(g->xn2);
  free(g->xn3);
  free(g->gs);
  g->s = g->mu = g->k = g->lam = g->lamx = g->c = g->q = g->logdet_s = g->sdiag = NULL;
  g->eps = g->cx = g->d = g->xm1 = g->xm2 = g->xn1 = g->xn2 = g->xn3 = g->gs = NULL;
  g->floored = NULL;
  g->Lp = g->mu_bar = g->var_bar = g->z = NULL;
  g->B_cap = 0;
}

void
cf_cgauss_clear(CfCgauss *g)
{
  if (!g)
    return;
  free_batch(g);
  free(g->dropped);
  free(g->kept);
  free(g->dep);
  free(g->A);
  cf_free_aligned(g->Af);
  free(g->b);
  free(g->block_of);
  free(g->blk_ptr);
  free(g->blk_col);
  free(g->block_coef);
  free(g->block_size);
  free(g->L0);
  cf_free_aligned(g->W0);
  cf_free_aligned(g->ws_mn);
  cf_free_aligned(g->ws_mn2);
  cf_free_aligned(g->ws_mm);
  free(g->ws_mmd);
  CfCgaussEstimator est = g->estimator;
  bool drop = g->drop_logdet_aat, force = g->force_dense;
  float floor_ = g->var_floor;
  cf_cgauss_init(g);
  g->estimator = est;
  g->drop_logdet_aat = drop;
  g->force_dense = force;
  g->var_floor = floor_;
}

/* ------------------------------------------------------------------------ */
/* setup                                                                     */

/* Blocks path: every column has at most one non-zero, each row's non-zeros
 * share one value. */
static bool
detect_blocks(CfCgauss *g)
{
  int m = g->m, n = g->n;
  int *of = cf_alloc_array((size_t)n, sizeof *of);
  double *coef = cf_calloc_array((size_t)m, sizeof *coef);
  double *size = cf_calloc_array((size_t)m, sizeof *size);
  if (!of || !coef || !size)
    goto no;
  for (int i = 0; i < n; i++)
    of[i] = -1;
  for (int r = 0; r < m; r++) {
    for (int i = 0; i < n; i++) {
      double a = g->A[(size_t)r * n + i];
      if (a == 0.0)
        continue;
      if (of[i] >= 0)
        goto no;
      if (coef[r] == 0.0)
        coef[r] = a;
      else if (a != coef[r])
        goto no;
      of[i] = r;
      size[r] += 1.0;
    }
  }
  /* each row's columns, for sums without a loop-carried scatter */
  g->blk_ptr = cf_alloc_array((size_t)m + 1, sizeof(int));
  g->blk_col = cf_alloc_array((size_t)n, sizeof(int));
  if (!g->blk_ptr || !g->blk_col) {
    free(g->blk_ptr);
    free(g->blk_col);
    g->blk_ptr = g->blk_col = NULL;
    goto no;
  }
  g->blk_ptr[0] = 0;
  for (int r = 0; r < m; r++) {
    int k = g->blk_ptr[r];
    for (int i = 0; i < n; i++)
      if (of[i] == r)
        g->blk_col[k++] = i;
    g->blk_ptr[r + 1] = k;
  }
  g->block_of = of;
  g->block_coef = coef;
  g->block_size = size;
  return true;
no:
  free(of);
  free(coef);
  free(size);
  return false;
}

CfStatus
cf_cgauss_setup(CfCgauss *g, const CfConstraint *c, CfError *err)
{
  cf_cgauss_clear(g);
  CfConstraintReport rep;
  CfStatus st = cf_constraint_analyze(c, 0, &rep, err);
  if (st != CF_OK) {
    cf_constraint_report_clear(&rep);
    return st;
  }
  int n = c->n, mf = c->m;
  if (rep.rank >= n) {
    st = cf_error_set(err, CF_ERR_RANK,
                      "the constraint has rank %d = n: it fixes every coordinate, no distribution is left "
                      "to condition",
                      rep.rank);
    cf_constraint_report_clear(&rep);
    return st;
  }
  int nd = rep.n_redundant, m = mf - nd;
  g->n = n;
  g->m = m;
  g->m_full = mf;
  g->n_dropped = nd;
  g->A = cf_alloc_array((size_t)m * n, sizeof *g->A);
  g->Af = cf_alloc_floats((size_t)m * n);
  g->b = cf_alloc_array((size_t)mf, sizeof *g->b);
  g->kept = cf_alloc_array((size_t)m, sizeof *g->kept);
  if (nd > 0) {
    g->dropped = cf_alloc_array((size_t)nd, sizeof *g->dropped);
    g->dep = cf_alloc_array((size_t)nd * m, sizeof *g->dep);
  }
  if (!g->A || !g->Af || !g->b || !g->kept || (nd > 0 && (!g->dropped || !g->dep))) {
    cf_constraint_report_clear(&rep);
    cf_cgauss_clear(g);
    return cf_error_set(err, CF_ERR_NOMEM, "out of memory setting up a %d x %d constrained Gaussian", mf, n);
  }
  memcpy(g->b, c->b, (size_t)mf * sizeof *g->b);
  int row = 0, t = 0;
  for (int i = 0; i < mf; i++) {
    if (t < nd && rep.redundant_rows[t] == i) {
      g->dropped[t++] = i;
      continue;
    }
    g->kept[row] = i;
    memcpy(g->A + (size_t)row * n, c->A + (size_t)i * n, (size_t)n * sizeof *g->A);
    row++;
  }
  cf_constraint_report_clear(&rep);
  for (size_t i = 0; i < (size_t)m * n; i++)
    g->Af[i] = (float)g->A[i];

  if (nd > 0) {
    /* dropped row = dep . kept rows: least squares A_kept^T X = a_dropped^T. */
    double *Ak = cf_alloc_array((size_t)m * n, sizeof *Ak);
    double *X = cf_alloc_array((size_t)n * nd, sizeof *X);
    if (!Ak || !X) {
      free(Ak);
      free(X);
      cf_cgauss_clear(g);
      return cf_error_set(err, CF_ERR_NOMEM, "out of memory");
    }
    memcpy(Ak, g->A, (size_t)m * n * sizeof *Ak);
    for (int j = 0; j < nd; j++)
      for (int i = 0; i < n; i++)
        X[(size_t)i * nd + j] = c->A[(size_t)g->dropped[j] * n + i];
    lapack_int info = LAPACKE_dgels(LAPACK_ROW_MAJOR, 'T', m, n, nd, Ak, n, X, nd);
    if (info == 0)
      for (int j = 0; j < nd; j++)
        for (int r = 0; r < m; r++)
          g->dep[(size_t)j * m + r] = X[(size_t)r * nd + j];
    free(Ak);
    free(X);
    if (info != 0) {
      cf_cgauss_clear(g);
      return cf_error_set(err, CF_ERR_NUMERIC, "least squares for the redundant rows failed (LAPACK dgels info %d)",
                          (int)info);
    }
  }

  if (!g->force_dense && detect_blocks(g)) {
    g->path = CF_CGAUSS_BLOCKS;
    g->logdet_aat = 0.0;
    for (int r = 0; r < m; r++)
      g->logdet_aat += log(g->block_coef[r] * g->block_coef[r] * g->block_size[r]);
    return CF_OK;
  }
  g->path = CF_CGAUSS_DENSE;
  g->L0 = cf_alloc_array((size_t)m * m, sizeof *g->L0);
  g->ws_mn = cf_alloc_floats((size_t)m * n);
  g->ws_mn2 = cf_alloc_floats((size_t)m * n);
  g->ws_mm = cf_alloc_floats((size_t)m * m);
  g->ws_mmd = cf_alloc_array((size_t)m * m, sizeof *g->ws_mmd);
  if (!g->L0 || !g->ws_mn || !g->ws_mn2 || !g->ws_mm || !g->ws_mmd) {
    cf_cgauss_clear(g);
    return cf_error_set(err, CF_ERR_NOMEM, "out of memory setting up a %d x %d constrained Gaussian", m, n);
  }
  cblas_dsyrk(CblasRowMajor, CblasLower, CblasNoTrans, m, n, 1.0, g->A, n, 0.0, g->L0, m);
  /* Row-major lower == column-major upper: no transposed copy. */
  lapack_int info = LAPACKE_dpotrf(LAPACK_COL_MAJOR, 'U', m, g->L0, m);
  if (info != 0) {
    cf_cgauss_clear(g);
    return cf_error_set(err, CF_ERR_RANK, "A A^T is not positive definite (LAPACK dpotrf info %d)", (int)info);
  }
  g->logdet_aat = 0.0;
  for (int r = 0; r < m; r++)
    g->logdet_aat += 2.0 * log(g->L0[(size_t)r * m + r]);
  return CF_OK;
}

/* ------------------------------------------------------------------------ */
/* batch buffers                                                             */

static CfStatus
ensure_batch(CfCgauss *g, int B, CfError *err)
{
  if (B <= g->B_cap)
    return CF_OK;
  free_batch(g);
  size_t bn = (size_t)B * g->n, bm = (size_t)B * g->m;
  g->s = cf_alloc_array(bn, sizeof(double));
  g->floored = cf_calloc_array(bn, 1);
  g->mu = cf_alloc_array(bn, sizeof(double));
  g->k = cf_alloc_array(bm, sizeof(double));
  g->lam = cf_alloc_array(bm, sizeof(double));
  g->lamx = cf_alloc_array(bm, sizeof(double));
  g->c = cf_alloc_array(bn, sizeof(double));
  g->q = cf_alloc_array(bn, sizeof(double));
  g->logdet_s = cf_alloc_array((size_t)B, sizeof(double));
  g->sdiag = cf_alloc_array(bm, sizeof(double));
  g->eps = cf_alloc_array(bn, sizeof(double));
  g->cx = cf_alloc_array(bn, sizeof(double));
  g->d = cf_alloc_array(bn, sizeof(double));
  g->mu_bar = cf_alloc_floats(bn);
  g->var_bar = cf_alloc_floats(bn);
  g->z = cf_alloc_floats(bn);
  g->xm1 = cf_alloc_array(bm, sizeof(double));
  g->xm2 = cf_alloc_array(bm, sizeof(double));
  g->xn1 = cf_alloc_array(bn, sizeof(double));
  g->xn2 = cf_alloc_array(bn, sizeof(double));
  g->xn3 = cf_alloc_array(bn, sizeof(double));
  g->gs = cf_alloc_array(bn, sizeof(double));
  bool ok = g->s && g->floored && g->mu && g->k && g->lam && g->lamx && g->c && g->q && g->logdet_s && g->sdiag && g->eps &&
            g->cx && g->d && g->mu_bar && g->var_bar && g->z && g->xm1 && g->xm2 && g->xn1 && g->xn2 && g->xn3 &&
            g->gs;
  if (ok && g->path == CF_CGAUSS_DENSE) {
    size_t tri = (size_t)g->m * ((size_t)g->m + 1) / 2;
    g->Lp = cf_alloc_floats((size_t)B * tri);
    ok = g->Lp != NULL;
  }
  if (!ok) {
    free_batch(g);
    return cf_error_set(err, CF_ERR_NOMEM, "out of memory for a batch of %d samples (n = %d, m = %d)", B, g->n, g->m);
  }
  g->B_cap = B;
  return CF_OK;
}

/* ------------------------------------------------------------------------ */
/* primitives                                                                */

/* out[r] = sum over row r's columns i of x[i] (w1[i] w2[i] when given), for
 * one sample; four accumulators break the add latency chain. */
static void
block_sums(const CfCgauss *g, const double *x, const double *w1, const double *w2, double *out)
{
  for (int r = 0; r < g->m; r++) {
    const int *col = g->blk_col + g->blk_ptr[r];
    const int len = g->blk_ptr[r + 1] - g->blk_ptr[r];
    double a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    int k = 0;
    if (!w1) {
      for (; k + 4 <= len; k += 4) {
        a0 += x[col[k]];
        a1 += x[col[k + 1]];
        a2 += x[col[k + 2]];
        a3 += x[col[k + 3]];
      }
      for (; k < len; k++)
        a0 += x[col[k]];
    } else {
      for (; k + 4 <= len; k += 4) {
        a0 += x[col[k]] * w1[col[k]] * w2[col[k]];
        a1 += x[col[k + 1]] * w1[col[k + 1]] * w2[col[k + 1]];
        a2 += x[col[k + 2]] * w1[col[k + 2]] * w2[col[k + 2]];
        a3 += x[col[k + 3]] * w1[col[k + 3]] * w2[col[k + 3]];
      }
      for (; k < len; k++)
        a0 += x[col[k]] * w1[col[k]] * w2[col[k]];
    }
    out[r] = (a0 + a1) + (a2 + a3);
  }
}

/* out (B, m) = in (B, n) A^T */
static void
apply_a(const CfCgauss *g, double *out, const double *in)
{
  int B = g->B, n = g->n, m = g->m;
  if (g->path == CF_CGAUSS_DENSE) {
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, m, n, 1.0, in, n, g->A, n, 0.0, out, m);
    return;
  }
  for (int b = 0; b < B; b++) {
    block_sums(g, in + (size_t)b * n, NULL, NULL, out + (size_t)b * m);
    for (int r = 0; r < m; r++)
      out[(size_t)b * m + r] *= g->block_coef[r];
  }
}

/* out (B, n) = in (B, m) A */
static void
apply_at(const CfCgauss *g, double *out, const double *in)
{
  int B = g->B, n = g->n, m = g->m;
  if (g->path == CF_CGAUSS_DENSE) {
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, n, m, 1.0, in, m, g->A, n, 0.0, out, n);
    return;
  }
  for (int b = 0; b < B; b++)
    for (int i = 0; i < n; i++) {
      int r = g->block_of[i];
      out[(size_t)b * n + i] = r >= 0 ? g->block_coef[r] * in[(size_t)b * m + r] : 0.0;
    }
}

static size_t
tri_size(int m)
{
  return (size_t)m * ((size_t)m + 1) / 2;
}

/* Solves L L^T x = x in place; L packed row-major lower (row i at i(i+1)/2),
 * float factor, double vector and accumulation. */
static void
solve_packed(const float *Lp, int m, double *x)
{
  for (int i = 0; i < m; i++) {
    const float *row = Lp + (size_t)i * (i + 1) / 2;
    double a0 = 0.0, a1 = 0.0, a2 = 0.0, a3 = 0.0;
    int j = 0;
    for (; j + 4 <= i; j += 4) {
      a0 += (double)row[j] * x[j];
      a1 += (double)row[j + 1] * x[j + 1];
      a2 += (double)row[j + 2] * x[j + 2];
      a3 += (double)row[j + 3] * x[j + 3];
    }
    for (; j < i; j++)
      a0 += (double)row[j] * x[j];
    x[i] = (x[i] - ((a0 + a1) + (a2 + a3))) / (double)row[i];
  }
  for (int i = m - 1; i >= 0; i--) {
    const float *row = Lp + (size_t)i * (i + 1) / 2;
    double xi = x[i] / (double)row[i];
    x[i] = xi;
    for (int j = 0; j < i; j++)
      x[j] -= (double)row[j] * xi;
  }
}

/* X (B, m) <- rows of X times S_b^{-1}. */
static void
solve_s(const CfCgauss *g, double *X)
{
  int B = g->B, m = g->m;
  if (g->path == CF_CGAUSS_BLOCKS) {
    for (size_t i = 0; i < (size_t)B * m; i++)
      X[i] /= g->sdiag[i];
    return;
  }
  if (g->mode == CF_CGAUSS_VAR_ISO) {
    /* X S^{-1} = X L^{-T} L^{-1} / s */
    cblas_dtrsm(CblasRowMajor, CblasRight, CblasLower, CblasTrans, CblasNonUnit, B, m, 1.0 / g->s_iso, g->L0, m, X,
                m);
    cblas_dtrsm(CblasRowMajor, CblasRight, CblasLower, CblasNoTrans, CblasNonUnit, B, m, 1.0, g->L0, m, X, m);
    return;
  }
  size_t tri = tri_size(m);
  for (int b = 0; b < B; b++)
    solve_packed(g->Lp + (size_t)b * tri, m, X + (size_t)b * m);
}

/* out (B, n) = s .* (in A) ; helper for S v = A (s .* A^T v) */
static void
s_times_at(const CfCgauss *g, double *out, const double *in)
{
  apply_at(g, out, in);
  for (size_t i = 0; i < (size_t)g->B * g->n; i++)
    out[i] *= g->s[i];
}

/* LAM = S^{-1} R, refined in double against the exact S. Uses xm2, xn3. */
static void
solve_refined(CfCgauss *g, const double *R, double *LAM)
{
  size_t bm = (size_t)g->B * g->m;
  memcpy(LAM, R, bm * sizeof *LAM);
  solve_s(g, LAM);
  g->refine_steps = 0;
  g->max_refine_update = 0.0;
  if (g->path == CF_CGAUSS_BLOCKS)
    return;
  for (int it = 0; it < REFINE_MAX; it++) {
    s_times_at(g, g->xn3, LAM);
    apply_a(g, g->xm2, g->xn3);
    for (size_t i = 0; i < bm; i++)
      g->xm2[i] = R[i] - g->xm2[i];
    solve_s(g, g->xm2);
    double un = 0.0, ln = 0.0;
    for (size_t i = 0; i < bm; i++) {
      LAM[i] += g->xm2[i];
      un = fmax(un, fabs(g->xm2[i]));
      ln = fmax(ln, fabs(LAM[i]));
    }
    g->refine_steps = it + 1;
    g->max_refine_update = ln > 0.0 ? un / ln : 0.0;
    if (un <= REFINE_TOL * ln)
      break;
  }
}

/* Factors S for every sample. */
static CfStatus
factor(CfCgauss *g, CfError *err)
{
  int B = g->B, n = g->n, m = g->m;
  if (g->path == CF_CGAUSS_BLOCKS) {
    for (int b = 0; b < B; b++) {
      double *sd = g->sdiag + (size_t)b * m;
      block_sums(g, g->s + (size_t)b * n, NULL, NULL, sd);
      double ld = 0.0;
      for (int r = 0; r < m; r++) {
        sd[r] *= g->block_coef[r] * g->block_coef[r];
        ld += log(sd[r]);
      }
      g->logdet_s[b] = ld;
    }
    return CF_OK;
  }
  if (g->mode == CF_CGAUSS_VAR_ISO) {
    for (int b = 0; b < B; b++)
      g->logdet_s[b] = m * log(g->s_iso) + g->logdet_aat;
    return CF_OK;
  }
  size_t tri = tri_size(m);
  float *sq = cf_alloc_floats((size_t)n);
  if (!sq)
    return cf_error_set(err, CF_ERR_NOMEM, "out of memory");
  for (int b = 0; b < B; b++) {
    const double *s = g->s + (size_t)b * n;
    for (int i = 0; i < n; i++)
      sq[i] = (float)sqrt(s[i]);
    for (int r = 0; r < m; r++) {
      const float *a = g->Af + (size_t)r * n;
      float *w = g->ws_mn + (size_t)r * n;
      for (int i = 0; i < n; i++)
        w[i] = a[i] * sq[i];
    }
    cf_syrk_lower(g->ws_mm, m, g->ws_mn, n, m, n); /* lower triangle of W W^T */
    for (int r = 0; r < m; r++)
      for (int j = 0; j <= r; j++)
        g->ws_mmd[(size_t)r * m + j] = g->ws_mm[(size_t)r * m + j];
    lapack_int info = LAPACKE_dpotrf(LAPACK_COL_MAJOR, 'U', m, g->ws_mmd, m);
    if (info != 0) {
      cf_free_aligned(sq);
      return cf_error_set(err, CF_ERR_NUMERIC,
                          "sample %d: A diag(s) A^T is not positive definite (pivot %d); the variances span too "
                          "many orders of magnitude for this A",
                          b, (int)info);
    }
    double ld = 0.0;
    float *Lp = g->Lp + (size_t)b * tri;
    for (int r = 0; r < m; r++) {
      const double *src = g->ws_mmd + (size_t)r * m;
      float *dst = Lp + (size_t)r * (r + 1) / 2;
      for (int j = 0; j <= r; j++)
        dst[j] = (float)src[j];
      ld += 2.0 * log(src[r]);
    }
    g->logdet_s[b] = ld;
  }
  cf_free_aligned(sq);
  return CF_OK;
}

/* Lazily: W0 = L0^{-1} A (float), for the isotropic dense path. */
static bool
ensure_w0(CfCgauss *g)
{
  if (g->W0)
    return true;
  int m = g->m, n = g->n;
  double *W = cf_alloc_array((size_t)m * n, sizeof *W);
  float *Wf = cf_alloc_floats((size_t)m * n);
  if (!W || !Wf) {
    free(W);
    cf_free_aligned(Wf);
    return false;
  }
  memcpy(W, g->A, (size_t)m * n * sizeof *W);
  cblas_dtrsm(CblasRowMajor, CblasLeft, CblasLower, CblasNoTrans, CblasNonUnit, m, n, 1.0, g->L0, m, W, n);
  for (size_t i = 0; i < (size_t)m * n; i++)
    Wf[i] = (float)W[i];
  free(W);
  g->W0 = Wf;
  return true;
}

/* Dense path: ws_mn <- W_b with W_b^T W_b = A^T S_b^{-1} A (m x n float). */
static void
dense_w(CfCgauss *g, int b)
{
  int m = g->m, n = g->n;
  if (g->mode == CF_CGAUSS_VAR_ISO) {
    float sc = (float)(1.0 / sqrt(g->s_iso));
    for (size_t i = 0; i < (size_t)m * n; i++)
      g->ws_mn[i] = g->W0[i] * sc;
    return;
  }
  const float *Lp = g->Lp + (size_t)b * tri_size(m);
  for (int r = 0; r < m; r++) {
    memcpy(g->ws_mm + (size_t)r * m, Lp + (size_t)r * (r + 1) / 2, (size_t)(r + 1) * sizeof(float));
    memset(g->ws_mm + (size_t)r * m + r + 1, 0, (size_t)(m - r - 1) * sizeof(float));
  }
  memcpy(g->ws_mn, g->Af, (size_t)m * n * sizeof(float));
  cblas_strsm(CblasRowMajor, CblasLeft, CblasLower, CblasNoTrans, CblasNonUnit, m, n, 1.0f, g->ws_mm, m, g->ws_mn,
              n);
}

/* g->q = diag(A^T S^{-1} A) per sample. */
static void
compute_q(CfCgauss *g)
{
  if (g->have_q)
    return;
  int B = g->B, n = g->n, m = g->m;
  if (g->path == CF_CGAUSS_BLOCKS) {
    for (int b = 0; b < B; b++)
      for (int i = 0; i < n; i++) {
        int r = g->block_of[i];
        g->q[(size_t)b * n + i] = r >= 0 ? g->block_coef[r] * g->block_coef[r] / g->sdiag[(size_t)b * m + r] : 0.0;
      }
    g->have_q = true;
    return;
  }
  if (g->mode == CF_CGAUSS_VAR_ISO)
    CF_ASSERT(ensure_w0(g));
  int nb = g->mode == CF_CGAUSS_VAR_ISO ? 1 : B;
  for (int b = 0; b < nb; b++) {
    dense_w(g, b);
    double *q = g->q + (size_t)b * n;
    memset(q, 0, (size_t)n * sizeof *q);
    for (int r = 0; r < m; r++) {
      const float *w = g->ws_mn + (size_t)r * n;
      for (int i = 0; i < n; i++)
        q[i] += (double)w[i] * w[i];
    }
  }
  for (int b = nb; b < B; b++)
    memcpy(g->q + (size_t)b * n, g->q, (size_t)n * sizeof(double));
  g->have_q = true;
}

/* t_i = sum_j h_j s_j^2 (a_i^T S^{-1} a_j)^2 per sample: the part of the
 * variance backward that couples coordinates. */
static void
colquad(CfCgauss *g, const double *h, double *t)
{
  int B = g->B, n = g->n, m = g->m;
  if (g->path == CF_CGAUSS_BLOCKS) {
    for (int b = 0; b < B; b++) {
      double *acc = g->xm1 + (size_t)b * m;
      const double *s = g->s + (size_t)b * n, *hb = h + (size_t)b * n;
      block_sums(g, hb, s, s, acc);
      for (int i = 0; i < n; i++) {
        int r = g->block_of[i];
        double u = r >= 0 ? g->block_coef[r] * g->block_coef[r] / g->sdiag[(size_t)b * m + r] : 0.0;
        t[(size_t)b * n + i] = r >= 0 ? u * u * acc[r] : 0.0;
      }
    }
    return;
  }
  if (g->mode == CF_CGAUSS_VAR_ISO)
    CF_ASSERT(ensure_w0(g));
  for (int b = 0; b < B; b++) {
    dense_w(g, b); /* ws_mn = W */
    const double *s = g->s + (size_t)b * n, *hb = h + (size_t)b * n;
    for (int r = 0; r < m; r++) {
      const float *w = g->ws_mn + (size_t)r * n;
      float *y = g->ws_mn2 + (size_t)r * n;
      for (int i = 0; i < n; i++)
        y[i] = w[i] * (float)(hb[i] * s[i] * s[i]);
    }
    /* T = Y W^T (m x m), U = T W (m x n) */
    cf_gemm(g->ws_mm, m, g->ws_mn2, n, g->ws_mn, n, m, m, n, false, true, 0.0f);
    cf_gemm(g->ws_mn2, n, g->ws_mm, m, g->ws_mn, n, m, n, m, false, false, 0.0f);
    double *tb = t + (size_t)b * n;
    memset(tb, 0, (size_t)n * sizeof *tb);
    for (int r = 0; r < m; r++) {
      const float *u = g->ws_mn2 + (size_t)r * n, *w = g->ws_mn + (size_t)r * n;
      for (int i = 0; i < n; i++)
        tb[i] += (double)u[i] * w[i];
    }
  }
}

/* out = P^T G = G - A^T S^{-1} A (s .* G), G and out (B, n); out may be G.
 * Uses xn1, xm1. */
static void
apply_pt(CfCgauss *g, double *out, const double *G)
{
  size_t bn = (size_t)g->B * g->n;
  for (size_t i = 0; i < bn; i++)
    g->xn1[i] = G[i] * g->s[i];
  apply_a(g, g->xm1, g->xn1);
  solve_s(g, g->xm1);
  apply_at(g, g->xn1, g->xm1);
  for (size_t i = 0; i < bn; i++)
    out[i] = G[i] - g->xn1[i];
}

/* Adds the per-coordinate variance gradient gs to dvar (per mode). */
static void
flush_ds(const CfCgauss *g, const double *gs, float *dvar)
{
  if (!dvar)
    return;
  size_t bn = (size_t)g->B * g->n;
  if (g->mode == CF_CGAUSS_VAR_ISO) {
    if (g->floored[0])
      return;
    double sum = 0.0;
    for (size_t i = 0; i < bn; i++)
      sum += gs[i];
    dvar[0] += (float)sum;
    return;
  }
  for (size_t i = 0; i < bn; i++)
    if (!g->floored[i])
      dvar[i] += (float)gs[i];
}

/* ------------------------------------------------------------------------ */
/* forward                                                                   */

static CfStatus
load_k(CfCgauss *g, const float *k, int k_rows, int k_cols, CfError *err)
{
  int B = g->B, m = g->m, mf = g->m_full;
  if (k && k_rows != 1 && k_rows != B)
    return cf_error_set(err, CF_ERR_SHAPE, "k has %d rows; expected 1 (shared) or %d (one per sample)", k_rows, B);
  if (k && k_cols != mf && k_cols != m) {
    if (m != mf)
      return cf_error_set(err, CF_ERR_SHAPE,
                          "k has %d entries per sample; expected %d (one per constraint row) or %d (the rows left "
                          "after dropping %d redundant ones)",
                          k_cols, mf, m, mf - m);
    return cf_error_set(err, CF_ERR_SHAPE, "k has %d entries per sample; expected %d (one per constraint row)",
                        k_cols, mf);
  }
  int cols = k ? k_cols : mf;
  bool full = cols == mf;
  for (int b = 0; b < B; b++) {
    int src = (k && k_rows == B) ? b : 0;
    double kmax = 0.0;
    for (int j = 0; j < cols; j++) {
      double v = k ? (double)k[(size_t)src * cols + j] : g->b[j];
      if (!isfinite(v))
        return cf_error_set(err, CF_ERR_NUMERIC, "k is not finite at sample %d, row %d (%g)", b, j, v);
      kmax = fmax(kmax, fabs(v));
    }
    double *kb = g->k + (size_t)b * m;
    for (int r = 0; r < m; r++) {
      int j = full ? g->kept[r] : r;
      kb[r] = k ? (double)k[(size_t)src * cols + j] : g->b[j];
    }
    if (!full || g->n_dropped == 0)
      continue;
    for (int t = 0; t < g->n_dropped; t++) {
      int j = g->dropped[t];
      double implied = 0.0;
      for (int r = 0; r < m; r++)
        implied += g->dep[(size_t)t * m + r] * kb[r];
      double given = k ? (double)k[(size_t)src * cols + j] : g->b[j];
      if (fabs(given - implied) > DEP_TOL * (1.0 + kmax))
        return cf_error_set(err, CF_ERR_INCONSISTENT,
                            "sample %d is infeasible: constraint row %d is a combination of other rows that "
                            "implies k = %.6g there, but k gives %.6g",
                            b, j, implied, given);
    }
  }
  return CF_OK;
}

CfStatus
cf_cgauss_forward(CfCgauss *g, int B, const float *mu, const float *var, CfCgaussVarMode mode, const float *k,
                  int k_rows, int k_cols, CfError *err)
{
  if (!g->A)
    return cf_error_set(err, CF_ERR_INVALID, "constrained Gaussian is not set up");
  if (B < 1 || !mu || !var)
    return cf_error_set(err, CF_ERR_INVALID, "forward needs a batch of at least one sample, mu and variances");
  if (k && (k_rows < 1 || k_cols < 1))
    return cf_error_set(err, CF_ERR_SHAPE, "k has shape %d x %d", k_rows, k_cols);
  CfStatus st = ensure_batch(g, B, err);
  if (st != CF_OK)
    return st;
  int n = g->n;
  size_t bn = (size_t)B * n;
  g->B = B;
  g->mode = mode;
  g->have_q = g->have_sample = g->have_logp = false;
  double fl = g->var_floor > 0.0f ? (double)g->var_floor : (double)CF_CGAUSS_VAR_FLOOR;
  for (size_t i = 0; i < bn; i++) {
    if (!isfinite(mu[i]))
      return cf_error_set(err, CF_ERR_NUMERIC, "mean is not finite at sample %d, coordinate %d (%g)",
                          (int)(i / (size_t)n), (int)(i % (size_t)n), (double)mu[i]);
    g->mu[i] = mu[i];
  }
  if (mode == CF_CGAUSS_VAR_ISO) {
    double v = var[0];
    if (!isfinite(v))
      return cf_error_set(err, CF_ERR_NUMERIC, "the shared variance is not finite (%g)", v);
    if (v <= 0.0)
      return cf_error_set(err, CF_ERR_INVALID, "the shared variance is %g; variances must be positive", v);
    g->floored[0] = v < fl;
    g->s_iso = v < fl ? fl : v;
    for (size_t i = 0; i < bn; i++)
      g->s[i] = g->s_iso;
  } else {
    for (size_t i = 0; i < bn; i++) {
      double v = var[i];
      if (isfinite(v) && v >= fl) {
        g->floored[i] = 0;
        g->s[i] = v;
        continue;
      }
      int b = (int)(i / (size_t)n), j = (int)(i % (size_t)n);
      if (!isfinite(v))
        return cf_error_set(err, CF_ERR_NUMERIC, "variance is not finite at sample %d, coordinate %d (%g)", b, j,
                            v);
      if (v <= 0.0)
        return cf_error_set(err, CF_ERR_INVALID,
                            "variance at sample %d, coordinate %d is %g; variances must be positive (positive "
                            "values below %g are raised to it)",
                            b, j, v, fl);
      g->floored[i] = v < fl;
      g->s[i] = v < fl ? fl : v;
    }
  }
  st = load_k(g, k, k_rows, k_cols, err);
  if (st != CF_OK)
    return st;
  st = factor(g, err);
  if (st != CF_OK)
    return st;
  /* lambda = S^{-1}(k - A mu), c = A^T lambda, mu_bar = mu + s .* c */
  size_t bm = (size_t)B * g->m;
  apply_a(g, g->xm1, g->mu);
  for (size_t i = 0; i < bm; i++)
    g->xm1[i] = g->k[i] - g->xm1[i];
  solve_refined(g, g->xm1, g->lam);
  apply_at(g, g->c, g->lam);
  for (size_t i = 0; i < bn; i++)
    g->mu_bar[i] = (float)(g->mu[i] + g->s[i] * g->c[i]);
  return CF_OK;
}

CfStatus
cf_cgauss_project(CfCgauss *g, int B, float *x, const float *k, int k_rows, int k_cols, double scale, CfError *err)
{
  CF_ASSERT(g != NULL && x != NULL);
  float *ks = NULL;
  if (scale != 1.0) {
    if (!k) { /* the constraint's own b */
      k_rows = 1;
      k_cols = g->m_full;
    }
    size_t nk = (size_t)(k_rows > 0 ? k_rows : 1) * (size_t)(k_cols > 0 ? k_cols : 0);
    ks = cf_alloc_array(nk ? nk : 1, sizeof(float));
    if (!ks)
      return cf_error_set(err, CF_ERR_NOMEM, "cgauss: out of memory for a scaled right-hand side");
    for (size_t i = 0; i < nk; i++)
      ks[i] = (float)(scale * (k ? k[i] : g->b[i]));
    k = ks;
  }
  const float one = 1.0f;
  CfStatus st = cf_cgauss_forward(g, B, x, &one, CF_CGAUSS_VAR_ISO, k, k ? k_rows : 0, k ? k_cols : 0, err);
  if (st == CF_OK)
    memcpy(x, g->mu_bar, sizeof(float) * (size_t)B * g->n);
  free(ks);
  return st;
}

/* ------------------------------------------------------------------------ */
/* outputs                                                                   */

void
cf_cgauss_marginal_var(CfCgauss *g)
{
  compute_q(g);
  for (size_t i = 0; i < (size_t)g->B * g->n; i++) {
    double v = g->s[i] - g->s[i] * g->s[i] * g->q[i];
    g->var_bar[i] = (float)(v > 0.0 ? v : 0.0);
  }
}

void
cf_cgauss_sample(CfCgauss *g, const float *eps, CfRng *rng)
{
  CF_ASSERT(eps || rng);
  size_t bn = (size_t)g->B * g->n, bm = (size_t)g->B * g->m;
  for (size_t i = 0; i < bn; i++) {
    g->eps[i] = eps ? (double)eps[i] : cf_rng_normal(rng);
    g->xn2[i] = g->mu[i] + sqrt(g->s[i]) * g->eps[i];
  }
  /* lambda_x = S^{-1}(k - A x), z = x + s .* A^T lambda_x */
  apply_a(g, g->xm1, g->xn2);
  for (size_t i = 0; i < bm; i++)
    g->xm1[i] = g->k[i] - g->xm1[i];
  solve_refined(g, g->xm1, g->lamx);
  apply_at(g, g->cx, g->lamx);
  for (size_t i = 0; i < bn; i++)
    g->z[i] = (float)(g->xn2[i] + g->s[i] * g->cx[i]);
  g->have_sample = true;
}

void
cf_cgauss_log_density(CfCgauss *g, const float *z, double *logp)
{
  int B = g->B, n = g->n, m = g->m;
  for (int b = 0; b < B; b++) {
    const double *s = g->s + (size_t)b * n, *mu = g->mu + (size_t)b * n, *c = g->c + (size_t)b * n;
    double *d = g->d + (size_t)b * n;
    double lds = 0.0, quad = 0.0, rl = 0.0;
    for (int i = 0; i < n; i++) {
      d[i] = (double)z[(size_t)b * n + i] - mu[i];
      lds += log(s[i]);
      quad += d[i] * d[i] / s[i];
      rl += s[i] * c[i] * c[i]; /* r . lambda = lambda^T S lambda = c^T Sigma c */
    }
    double lp = -0.5 * (n - m) * LOG_2PI - 0.5 * lds + 0.5 * g->logdet_s[b] - 0.5 * quad + 0.5 * rl;
    if (!g->drop_logdet_aat)
      lp -= 0.5 * g->logdet_aat;
    logp[b] = lp;
  }
  g->have_logp = true;
}

double
cf_cgauss_expected_l2(CfCgauss *g, const float *y, double *per_sample, double *dmu_bar, double *dvar_bar)
{
  compute_q(g);
  int B = g->B, n = g->n;
  double total = 0.0;
  for (int b = 0; b < B; b++) {
    double acc = 0.0;
    for (int i = 0; i < n; i++) {
      size_t j = (size_t)b * n + i;
      double dl = g->mu[j] + g->s[j] * g->c[j] - (double)y[j];
      double v = g->s[j] - g->s[j] * g->s[j] * g->q[j];
      acc += dl * dl + v;
      if (dmu_bar)
        dmu_bar[j] = 2.0 * dl;
      if (dvar_bar)
        dvar_bar[j] = 1.0;
    }
    if (per_sample)
      per_sample[b] = acc;
    total += acc;
  }
  return total;
}

double
cf_cgauss_expected_l1(CfCgauss *g, const float *y, double *per_sample, double *dmu_bar, double *dvar_bar)
{
  compute_q(g);
  int B = g->B, n = g->n;
  double total = 0.0;
  for (int b = 0; b < B; b++) {
    double acc = 0.0;
    for (int i = 0; i < n; i++) {
      size_t j = (size_t)b * n + i;
      double dl = g->mu[j] + g->s[j] * g->c[j] - (double)y[j];
      double v = g->s[j] - g->s[j] * g->s[j] * g->q[j];
      double f, gd, gv;
      if (v <= 1e-12 * g->s[j]) { /* pinned coordinate: no spread left */
        f = fabs(dl);
        gd = dl > 0.0 ? 1.0 : (dl < 0.0 ? -1.0 : 0.0);
        gv = 0.0;
      } else {
        double sd = sqrt(v), e = exp(-dl * dl / (2.0 * v));
        double ef = erf(dl / (M_SQRT2 * sd));
        f = sqrt(2.0 / M_PI) * sd * e + dl * ef;
        gd = ef;
        gv = e / (sqrt(2.0 * M_PI) * sd);
      }
      acc += f;
      if (dmu_bar)
        dmu_bar[j] = gd;
      if (dvar_bar)
        dvar_bar[j] = gv;
    }
    if (per_sample)
      per_sample[b] = acc;
    total += acc;
  }
  return total;
}

/* ------------------------------------------------------------------------ */
/* backward                                                                  */

void
cf_cgauss_backward_mean(CfCgauss *g, const double *dmu_bar, float *dmu, float *dvar)
{
  size_t bn = (size_t)g->B * g->n;
  apply_pt(g, g->xn2, dmu_bar);
  if (dmu)
    for (size_t i = 0; i < bn; i++)
      dmu[i] += (float)g->xn2[i];
  /* d mu_bar / ds = P diag(c) */
  for (size_t i = 0; i < bn; i++)
    g->gs[i] = g->c[i] * g->xn2[i];
  flush_ds(g, g->gs, dvar);
}

void
cf_cgauss_backward_var(CfCgauss *g, const double *dvar_bar, float *dvar)
{
  if (!dvar)
    return;
  compute_q(g);
  size_t bn = (size_t)g->B * g->n;
  colquad(g, dvar_bar, g->gs);
  for (size_t i = 0; i < bn; i++)
    g->gs[i] += dvar_bar[i] * (1.0 - 2.0 * g->s[i] * g->q[i]);
  flush_ds(g, g->gs, dvar);
}

void
cf_cgauss_backward_sample(CfCgauss *g, const float *dz, float *dmu, float *dvar)
{
  CF_ASSERT(g->have_sample);
  size_t bn = (size_t)g->B * g->n;
  for (size_t i = 0; i < bn; i++)
    g->xn2[i] = dz[i];
  apply_pt(g, g->xn2, g->xn2);
  if (dmu)
    for (size_t i = 0; i < bn; i++)
      dmu[i] += (float)g->xn2[i];
  if (!dvar)
    return;
  if (g->estimator == CF_CGAUSS_CR) {
    for (size_t i = 0; i < bn; i++)
      g->gs[i] = g->xn2[i] * (g->cx[i] + g->eps[i] / (2.0 * sqrt(g->s[i])));
  } else {
    for (size_t i = 0; i < bn; i++)
      g->gs[i] = g->xn2[i] * g->c[i];
  }
  flush_ds(g, g->gs, dvar);
}

void
cf_cgauss_backward_log_density(CfCgauss *g, const double *dlogp, float *dmu, float *dvar)
{
  CF_ASSERT(g->have_logp);
  int B = g->B, n = g->n;
  if (dvar)
    compute_q(g);
  for (int b = 0; b < B; b++) {
    double w = dlogp[b];
    for (int i = 0; i < n; i++) {
      size_t j = (size_t)b * n + i;
      double s = g->s[j], d = g->d[j], c = g->c[j];
      if (dmu)
        dmu[j] += (float)(w * (d / s - c));
      if (dvar)
        g->gs[j] = w * (-0.5 / s + 0.5 * g->q[j] + 0.5 * d * d / (s * s) - 0.5 * c * c);
    }
  }
  flush_ds(g, g->gs, dvar);
}

double
cf_cgauss_residual(const CfCgauss *g, const float *z)
{
  int n = g->n, m = g->m;
  double anorm = 0.0;
  for (int r = 0; r < m; r++) {
    double a = 0.0;
    for (int i = 0; i < n; i++)
      a += fabs(g->A[(size_t)r * n + i]);
    anorm = fmax(anorm, a);
  }
  double worst = 0.0;
  for (int b = 0; b < g->B; b++) {
    const float *zb = z + (size_t)b * n;
    double zn = 0.0, kn = 0.0, rn = 0.0;
    for (int i = 0; i < n; i++)
      zn = fmax(zn, fabs((double)zb[i]));
    for (int r = 0; r < m; r++) {
      double acc = -g->k[(size_t)b * m + r];
      const double *a = g->A + (size_t)r * n;
      for (int i = 0; i < n; i++)
        acc += a[i] * (double)zb[i];
      rn = fmax(rn, fabs(acc));
      kn = fmax(kn, fabs(g->k[(size_t)b * m + r]));
    }
    double den = anorm * zn + kn;
    worst = fmax(worst, den > 0.0 ? rn / den : rn);
  }
  return worst;
}
