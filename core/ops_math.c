/* Expression ops: division, sine, cosine, constant powers and broadcast
 * products, with their forward and backward kernels. Registered like the
 * image ops: the kinds CF_OP_DIV .. CF_OP_MUL_ROW in graph_private.h,
 * dispatched from cf_op_forward/backward (ops.c) to the two functions below.
 * Backward kernels accumulate (+=) into the gradients of inputs that need
 * one and leave the others alone. */
#include <math.h>
#include <string.h>

#include "graph.h"
#include "graph_private.h"

#define IN(k) (g->nodes[n->in[k]])

/* ---- builders ------------------------------------------------------------------ */

static CfNode
math_unary(CfGraph *g, CfOpKind op, CfNode a)
{
  if (g->failed)
    return -1;
  const CfNodeRec *na = cf_graph_node(g, a);
  return cf_graph_push(g, op, na->rows, na->cols, a, -1, -1);
}

CfNode
cf_div(CfGraph *g, CfNode a, CfNode b)
{
  if (g->failed)
    return -1;
  const CfNodeRec *na = cf_graph_node(g, a), *nb = cf_graph_node(g, b);
  CF_ASSERT(na->rows == nb->rows && na->cols == nb->cols);
  return cf_graph_push(g, CF_OP_DIV, na->rows, na->cols, a, b, -1);
}

CfNode cf_sin(CfGraph *g, CfNode a) { return math_unary(g, CF_OP_SIN, a); }
CfNode cf_cos(CfGraph *g, CfNode a) { return math_unary(g, CF_OP_COS, a); }

CfNode
cf_pow_const(CfGraph *g, CfNode a, float p)
{
  CF_ASSERT(isfinite(p));
  CfNode n = math_unary(g, CF_OP_POW, a);
  if (n >= 0)
    g->nodes[n].farg[0] = p;
  return n;
}

CfNode
cf_mul_col(CfGraph *g, CfNode a, CfNode c)
{
  if (g->failed)
    return -1;
  const CfNodeRec *na = cf_graph_node(g, a), *nc = cf_graph_node(g, c);
  CF_ASSERT(nc->rows == na->rows && nc->cols == 1);
  return cf_graph_push(g, CF_OP_MUL_COL, na->rows, na->cols, a, c, -1);
}

CfNode
cf_mul_row(CfGraph *g, CfNode a, CfNode v)
{
  if (g->failed)
    return -1;
  const CfNodeRec *na = cf_graph_node(g, a), *nv = cf_graph_node(g, v);
  CF_ASSERT(nv->rows == 1 && nv->cols == na->cols);
  return cf_graph_push(g, CF_OP_MUL_ROW, na->rows, na->cols, a, v, -1);
}

/* ---- kernels ------------------------------------------------------------------- */

void
cf_math_forward(CfGraph *g, CfNodeRec *n)
{
  float *restrict y = n->value;
  const float *a = IN(0).value;
  const float *b = n->in[1] >= 0 ? IN(1).value : NULL;
  const size_t len = (size_t)n->rows * (size_t)n->cols;
  const int R = n->rows, C = n->cols;
  switch (n->op) {
  case CF_OP_DIV: /* y = a / b, all (r,c) */
    for (size_t i = 0; i < len; i++)
      y[i] = a[i] / b[i];
    break;
  case CF_OP_SIN:
    for (size_t i = 0; i < len; i++)
      y[i] = sinf(a[i]);
    break;
  case CF_OP_COS:
    for (size_t i = 0; i < len; i++)
      y[i] = cosf(a[i]);
    break;
  case CF_OP_POW: { /* y = a^p; powf is exact in sign for integer p and negative a */
    float p = n->farg[0];
    if (p == 2.0f)
      for (size_t i = 0; i < len; i++)
        y[i] = a[i] * a[i];
    else
      for (size_t i = 0; i < len; i++)
        y[i] = powf(a[i], p);
    break;
  }
  case CF_OP_MUL_COL: /* y (B,n) = a (B,n) * c (B,1), row r scaled by c[r] */
    for (int r = 0; r < R; r++) {
      const float *ar = a + (size_t)r * C;
      float *yr = y + (size_t)r * C, s = b[r];
      for (int j = 0; j < C; j++)
        yr[j] = ar[j] * s;
    }
    break;
  case CF_OP_MUL_ROW: /* y (B,n) = a (B,n) * v (1,n), column j scaled by v[j] */
    for (int r = 0; r < R; r++) {
      const float *ar = a + (size_t)r * C;
      float *yr = y + (size_t)r * C;
      for (int j = 0; j < C; j++)
        yr[j] = ar[j] * b[j];
    }
    break;
  default:
    CF_ASSERT(!"not an expression op");
  }
}

void
cf_math_backward(CfGraph *g, CfNodeRec *n)
{
  const float *restrict dy = n->grad;
  const float *y = n->value;
  const float *a = IN(0).value;
  const float *b = n->in[1] >= 0 ? IN(1).value : NULL;
  float *restrict da = IN(0).needs_grad ? IN(0).grad : NULL;
  float *restrict db = n->in[1] >= 0 && IN(1).needs_grad ? IN(1).grad : NULL;
  const size_t len = (size_t)n->rows * (size_t)n->cols;
  const int R = n->rows, C = n->cols;
  switch (n->op) {
  case CF_OP_DIV: /* d(a/b)/da = 1/b, d(a/b)/db = -a/b^2 = -y/b */
    if (da)
      for (size_t i = 0; i < len; i++)
        da[i] += dy[i] / b[i];
    if (db)
      for (size_t i = 0; i < len; i++)
        db[i] -= dy[i] * y[i] / b[i];
    break;
  case CF_OP_SIN: /* sin' = cos */
    for (size_t i = 0; i < len; i++)
      da[i] += dy[i] * cosf(a[i]);
    break;
  case CF_OP_COS: /* cos' = -sin */
    for (size_t i = 0; i < len; i++)
      da[i] -= dy[i] * sinf(a[i]);
    break;
  case CF_OP_POW: { /* d a^p / da = p a^(p-1); p = 0 is constant (no 0 * inf at a = 0) */
    float p = n->farg[0];
    if (p == 0.0f)
      break;
    if (p == 1.0f)
      for (size_t i = 0; i < len; i++)
        da[i] += dy[i];
    else if (p == 2.0f)
      for (size_t i = 0; i < len; i++)
        da[i] += 2.0f * a[i] * dy[i];
    else
      for (size_t i = 0; i < len; i++)
        da[i] += dy[i] * p * powf(a[i], p - 1.0f);
    break;
  }
  case CF_OP_MUL_COL: /* da += dy * c[r]; dc[r] += sum_j dy[r,j] a[r,j] */
    for (int r = 0; r < R; r++) {
      const float *ar = a + (size_t)r * C, *dr = dy + (size_t)r * C;
      if (da) {
        float *dar = da + (size_t)r * C, s = b[r];
        for (int j = 0; j < C; j++)
          dar[j] += dr[j] * s;
      }
      if (db) {
        double s = 0.0;
        for (int j = 0; j < C; j++)
          s += (double)dr[j] * ar[j];
        db[r] += (float)s;
      }
    }
    break;
  case CF_OP_MUL_ROW: /* da += dy * v[j]; dv[j] += sum_r dy[r,j] a[r,j] */
    for (int r = 0; r < R; r++) {
      const float *ar = a + (size_t)r * C, *dr = dy + (size_t)r * C;
      if (da) {
        float *dar = da + (size_t)r * C;
        for (int j = 0; j < C; j++)
          dar[j] += dr[j] * b[j];
      }
      if (db)
        for (int j = 0; j < C; j++)
          db[j] += dr[j] * ar[j];
    }
    break;
  default:
    CF_ASSERT(!"not an expression op");
  }
}
