/* Linear equality constraints A x = b: parsing, validation, projection.
 *
 * A is m x n, row-major, double precision. All analysis uses LAPACK (SVD /
 * QR); projection runs in float with a cached factorisation. */
#ifndef CF_CONSTRAINT_H
#define CF_CONSTRAINT_H

#include <stdbool.h>
#include <stddef.h>

#include "status.h"

/* Upper bounds that keep a hostile file from driving allocations. */
#define CF_CONSTRAINT_MAX_ROWS 4096
#define CF_CONSTRAINT_MAX_COLS 65536

typedef struct {
  int m, n;
  double *A; /* m x n row-major */
  double *b; /* m */
} CfConstraint;

void cf_constraint_init(CfConstraint *c);
void cf_constraint_clear(CfConstraint *c);
/* Takes copies of A and b. */
CfStatus cf_constraint_set(CfConstraint *c, int m, int n, const double *A, const double *b, CfError *err);
CfStatus cf_constraint_copy(CfConstraint *dst, const CfConstraint *src, CfError *err);

/* Parses the text format (see README): '#' starts a comment; one row per
 * non-empty line: coefficients separated by spaces/tabs/commas, then '|', then
 * the right-hand side. If no line contains '|', the text is read as CSV with
 * b as the last column (an optional header line of non-numeric names is
 * skipped). Errors name `origin`:line:column (origin is a file name or
 * "<text>"). Ragged rows, non-numeric cells, NaN/Inf, empty input, all-zero
 * rows and sizes above the limits are errors. */
CfStatus cf_constraint_parse(CfConstraint *c, const char *text, size_t len, const char *origin, CfError *err);
CfStatus cf_constraint_load(CfConstraint *c, const char *path, CfError *err);
/* Writes the text format (full precision, %.17g) into a malloc'ed string. */
char *cf_constraint_to_text(const CfConstraint *c);

/* Result of cf_constraint_analyze. */
typedef struct {
  int m, n;
  int rank;
  double rank_tol;       /* singular values <= rank_tol count as zero */
  double cond;           /* sigma_max / sigma_min over the kept rows (full rank part) */
  int nullity;           /* n - rank */
  int n_redundant;
  int *redundant_rows;   /* 0-based indices of rows that are linear combinations of earlier rows */
  bool consistent;       /* b in range(A) */
  double residual;       /* || A x_ls - b ||_2 for the least-squares solution */
  double residual_rel;   /* residual / (1 + ||b||) */
} CfConstraintReport;

void cf_constraint_report_clear(CfConstraintReport *r);
/* Validates against an expected data dimension (dim <= 0: skip that check):
 * finiteness, dimension, rank (tolerance max(m,n) * eps * sigma_max),
 * redundant rows (greedy, in row order), consistency (relative residual
 * above 1e-6 is inconsistent), condition number, nullity. Returns CF_OK when
 * the constraint is usable (possibly after dropping redundant rows),
 * CF_ERR_SHAPE for a wrong dimension, CF_ERR_INCONSISTENT (message gives the
 * least-squares residual), CF_ERR_RANK when rank is 0. The report is filled
 * whenever the dimension is right. */
CfStatus cf_constraint_analyze(const CfConstraint *c, int dim, CfConstraintReport *report, CfError *err);
/* New constraint without the redundant rows listed in `report`. */
CfStatus cf_constraint_reduce(CfConstraint *out, const CfConstraint *c, const CfConstraintReport *report, CfError *err);

/* Maps a raw-space constraint into model space where x = s .* u + mu:
 * A x = b  <=>  (A diag(s)) u = b - A mu. And back. */
CfStatus cf_constraint_to_model_space(CfConstraint *out, const CfConstraint *raw, const float *mu, const float *s, CfError *err);
CfStatus cf_constraint_to_raw_space(CfConstraint *out, const CfConstraint *model, const float *mu, const float *s, CfError *err);

/* Orthogonal projection onto {x : A x = b} for full-row-rank A:
 *   P(x) = x - A^T (A A^T)^{-1} (A x - b).
 * Cached as Q (n x m, orthonormal basis of range(A^T), from QR of A^T in
 * double) and the minimum-norm solution x* = A^+ b, so for a batch X (B x n):
 *   X <- X - ((X - 1 x*^T) Q) Q^T, two sgemm calls. */
typedef struct {
  int m, n;
  float *Q;      /* n x m row-major */
  float *xstar;  /* n */
  float *scratch;/* B_cap x m */
  int scratch_rows;
} CfProjector;

void cf_projector_init(CfProjector *p);
/* c must have full row rank (run analyze/reduce first). */
CfStatus cf_projector_setup(CfProjector *p, const CfConstraint *c, CfError *err);
void cf_projector_clear(CfProjector *p);
/* Projects B rows of x (B x n) in place. Grows scratch if needed (the only
 * allocation; reserve first to avoid it in a loop). */
CfStatus cf_projector_reserve(CfProjector *p, int B);
void cf_project(CfProjector *p, float *x, int B);

/* Per-sample violations in double: l2[i] = ||A x_i - b||_2, linf[i] = max abs.
 * Either output may be NULL. x is (B x n) float. */
void cf_constraint_violation(const CfConstraint *c, const float *x, int B, double *l2, double *linf);

#endif
