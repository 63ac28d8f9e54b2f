/* Non-linear equality constraints typed as equations over the data's
 * coordinates, one per line:
 *
 *     # points on the unit circle
 *     x0^2 + x1^2 = 1
 *     x2 = sin(x0) / 2        # a second equation
 *
 * Grammar (per line; '#' starts a comment, blank lines are skipped):
 *     equation := sum '=' sum
 *     sum      := product (('+' | '-') product)*
 *     product  := unary (('*' | '/') unary)*
 *     unary    := ('-' | '+') unary | power
 *     power    := primary (('^' | '**') unary)?      right-associative
 *     primary  := number | x<k> | pi | func '(' sum ')' | '(' sum ')'
 *     func     := sqrt | exp | log | sin | cos | abs
 * Numbers: 12, 1.5, .5, 1e-3, 2.5E+4 (read independently of the locale).
 * -x0^2 is -(x0^2); 2^-1 is 0.5. Exponents must be constant (a number or a
 * constant expression such as (1/3)); integer exponents accept negative bases.
 * Sub-expressions without coordinates are folded to numbers while parsing.
 *
 * Each equation j becomes a residual r_j(x) = lhs - rhs; the set is
 * satisfied where every r_j = 0. The distance to the set used for training
 * and metrics is d(x) = sum_j |r_j(x)|.
 *
 * Residuals and gradients are evaluated in double on a tape (no recursion);
 * the same equations compile into an autodiff graph (float) so that d can be
 * part of a training loss. Parsing is bounded (text length, nesting depth,
 * node count), so arbitrary input cannot exhaust the stack or memory. */
#ifndef CF_EXPR_H
#define CF_EXPR_H

#include <stdbool.h>
#include <stddef.h>

#include "constraint.h"
#include "graph.h"
#include "status.h"

#define CF_EXPR_MAX_TEXT ((size_t)1 << 20) /* bytes of input text */
#define CF_EXPR_MAX_DEPTH 64               /* nesting of parentheses, signs, powers, calls */
#define CF_EXPR_MAX_NODES 100000           /* AST nodes over all equations */
#define CF_EXPR_MAX_EQUATIONS 4096
#define CF_EXPR_MAX_DIM 65536

typedef enum {
  CF_EXPR_NUM,  /* value */
  CF_EXPR_VAR,  /* coordinate x<var> */
  CF_EXPR_NEG,  /* -a */
  CF_EXPR_ADD,  /* a + b */
  CF_EXPR_SUB,  /* a - b */
  CF_EXPR_MUL,  /* a * b */
  CF_EXPR_DIV,  /* a / b */
  CF_EXPR_POW,  /* a ^ value (constant exponent) */
  CF_EXPR_SQRT, /* functions of a */
  CF_EXPR_EXP,
  CF_EXPR_LOG,
  CF_EXPR_SIN,
  CF_EXPR_COS,
  CF_EXPR_ABS,
} CfExprKind;

typedef struct {
  CfExprKind kind;
  int a, b;     /* operands (indices of earlier nodes) or -1 */
  int var;      /* CF_EXPR_VAR */
  double value; /* CF_EXPR_NUM: the number; CF_EXPR_POW: the exponent */
  int line, col; /* where the node starts in the text (1-based) */
} CfExprNode;

/* The parsed equations. Nodes are stored children first; equation j owns the
 * contiguous range first[j] .. root[j], and root[j] is its residual node
 * (lhs - rhs). */
typedef struct {
  int dim;  /* data coordinates x0 .. x<dim-1> */
  int n_eq;
  int n_nodes;
  CfExprNode *nodes;
  int *first, *root, *line; /* n_eq each; line: source line of the equation */
} CfExprSet;

void cf_expr_set_init(CfExprSet *s);
void cf_expr_set_clear(CfExprSet *s);
/* Parses text (len bytes; it need not be NUL-terminated) for data of `dim`
 * coordinates. On error returns CF_ERR_PARSE (CF_ERR_INVALID for dim out of
 * range, CF_ERR_NOMEM) with a message "line:column: what was expected / what
 * is wrong", and leaves s empty. At least one equation is required, and each
 * must use a coordinate. */
CfStatus cf_expr_parse(CfExprSet *s, const char *text, size_t len, int dim, CfError *err);

/* ---- evaluation in double ---------------------------------------------------- */

/* Scratch doubles needed by cf_expr_eval. */
size_t cf_expr_work_doubles(const CfExprSet *s);
/* One point x (dim): residuals r (n_eq) and, if J is non-NULL, the Jacobian
 * J (n_eq x dim, row-major, dr_j/dx_k) by reverse mode over each equation's
 * tape. work: cf_expr_work_doubles() doubles. Non-differentiable points take
 * the subgradient 0 (abs at 0); outside a function's domain the values are
 * NaN or inf as in libm. */
void cf_expr_eval(const CfExprSet *s, const double *x, double *r, double *J, double *work);
/* Batch versions over B rows of float data x (B x dim):
 * r (B x n_eq); J (B x n_eq x dim) may be NULL; d (B) = sum_j |r_j|.
 * They allocate their scratch (CF_ERR_NOMEM). */
CfStatus cf_expr_residuals(const CfExprSet *s, const float *x, int B, double *r, double *J, CfError *err);
CfStatus cf_expr_distance(const CfExprSet *s, const float *x, int B, double *d, CfError *err);

/* ---- change of coordinates and projection ------------------------------------ */

/* Rewrites the equations for coordinates u with x_k = scale_k u_k + shift_k
 * (e.g. raw equations onto normalised model space): every x<k> becomes
 * (scale_k * x<k>) + shift_k, so r(u) equals the old r(x). In place; on
 * CF_ERR_NOMEM s is unchanged. */
CfStatus cf_expr_set_affine(CfExprSet *s, const float *scale, const float *shift, CfError *err);

/* Projects B rows of x (B x dim) onto {r(x) = 0} by damped minimum-norm
 * Gauss-Newton steps dx = -J^T (J J^T)^{-1} r in double until max_j |r_j| <= tol
 * (at most max_iter steps). From a point near the set this converges to
 * the nearest point to first order (exactly the radial projection for a
 * sphere). Rows that do not converge are left unchanged and counted in
 * *n_failed (may be NULL). */
CfStatus cf_expr_project(const CfExprSet *s, float *x, int B, double tol, int max_iter, int *n_failed,
                         CfError *err);

/* ---- autodiff graph builders -------------------------------------------------- */

/* Residual node (B, n_eq) of the equations on x (B, dim). */
CfNode cf_expr_build(CfGraph *g, const CfExprSet *s, CfNode x);
/* Distance node (B, 1): d(x) = sum_j |r_j(x)| (subgradient 0 where r_j = 0). */
CfNode cf_expr_build_distance(CfGraph *g, const CfExprSet *s, CfNode x);

/* Distance to a linear constraint {A x = b} (A m x n) as a graph:
 *   d(x) = sqrt(||A x - b||^2 + delta^2) - delta,   delta = CF_LIN_DISTANCE_DELTA,
 * which is within delta of ||A x - b|| and differentiable also on the set.
 * A^T and b enter as constant graph inputs that cf_lin_distance_load fills
 * after cf_graph_finalize. x (B, n) -> (B, 1). */
#define CF_LIN_DISTANCE_DELTA 1e-6f
typedef struct {
  int m, n;
  CfNode At;   /* (n, m) input */
  CfNode negb; /* (1, m) input: -b */
} CfLinDistance;

CfNode cf_lin_distance_build(CfGraph *g, CfNode x, int m, int n, CfLinDistance *out);
/* c must be m x n as built. */
void cf_lin_distance_load(CfGraph *g, const CfLinDistance *ld, const CfConstraint *c);

#endif
