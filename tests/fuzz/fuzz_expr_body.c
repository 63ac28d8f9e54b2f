/* See fuzz_expr_body.h. */
#include "fuzz_expr_body.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "expr.h"

/* Every node refers only to earlier nodes of its own equation, and
 * equations tile the node array in order. */
static void
check_ast(const CfExprSet *s)
{
  CF_ASSERT(s->n_eq >= 1 && s->n_eq <= CF_EXPR_MAX_EQUATIONS);
  CF_ASSERT(s->n_nodes >= 1 && s->n_nodes <= CF_EXPR_MAX_NODES);
  int next = 0;
  for (int j = 0; j < s->n_eq; j++) {
    CF_ASSERT(s->first[j] == next && s->root[j] >= s->first[j] && s->root[j] < s->n_nodes);
    CF_ASSERT(s->nodes[s->root[j]].kind == CF_EXPR_SUB);
    for (int i = s->first[j]; i <= s->root[j]; i++) {
      const CfExprNode *n = &s->nodes[i];
      CF_ASSERT(n->a < i && n->b < i);
      CF_ASSERT(n->a < 0 || n->a >= s->first[j]);
      CF_ASSERT(n->b < 0 || n->b >= s->first[j]);
      CF_ASSERT(n->kind != CF_EXPR_VAR || (n->var >= 0 && n->var < s->dim));
      CF_ASSERT(n->kind != CF_EXPR_NUM || isfinite(n->value));
      CF_ASSERT(n->line >= 1 && n->col >= 1);
      /* folding: no operation has only numbers as operands */
      if (n->a >= 0 && s->nodes[n->a].kind == CF_EXPR_NUM && i != s->root[j])
        CF_ASSERT(n->b >= 0 && s->nodes[n->b].kind != CF_EXPR_NUM);
    }
    next = s->root[j] + 1;
  }
  CF_ASSERT(next == s->n_nodes);
}

void
cf_fuzz_expr_one(const uint8_t *data, size_t size)
{
  int dim = size > 0 ? 1 + data[0] % 4 : 3;
  const char *text = size > 0 ? (const char *)data + 1 : "";
  size_t len = size > 0 ? size - 1 : 0;
  CfExprSet s;
  CfError err;
  cf_error_clear(&err);
  CfStatus st = cf_expr_parse(&s, text, len, dim, &err);
  if (st != CF_OK) {
    CF_ASSERT(st == CF_ERR_PARSE || st == CF_ERR_NOMEM);
    CF_ASSERT(err.code == st && err.msg[0] >= '1' && err.msg[0] <= '9'); /* "line:col: ..." */
    CF_ASSERT(strchr(err.msg, ':') != NULL);
    CF_ASSERT(s.n_eq == 0 && s.nodes == NULL);
    return;
  }
  check_ast(&s);

  enum { B = 3 };
  float x[B * 4];
  for (int i = 0; i < B * dim; i++)
    x[i] = 0.5f + 0.25f * (float)i - (float)(i % 3);
  double *r = malloc((size_t)B * s.n_eq * sizeof *r);
  double *J = malloc((size_t)B * s.n_eq * dim * sizeof *J);
  double d[B];
  CF_ASSERT(r && J);
  CF_ASSERT(cf_expr_residuals(&s, x, B, r, J, &err) == CF_OK);
  CF_ASSERT(cf_expr_distance(&s, x, B, d, &err) == CF_OK);
  for (int i = 0; i < B; i++) {
    double sum = 0.0;
    for (int j = 0; j < s.n_eq; j++)
      sum += fabs(r[i * s.n_eq + j]);
    CF_ASSERT(isnan(sum) ? isnan(d[i]) : d[i] == sum);
  }

  /* the compiled graph: forward and backward must run on any parsed input */
  CfGraph *g = cf_graph_new();
  CF_ASSERT(g);
  CfNode in = cf_input(g, B, dim, true);
  CfNode res = cf_expr_build(g, &s, in);
  CF_ASSERT(res >= 0 && cf_graph_rows(g, res) == B && cf_graph_cols(g, res) == s.n_eq);
  CfNode dist = cf_sum_rows(g, cf_abs(g, res));
  CfNode loss = cf_sum_all(g, dist);
  CF_ASSERT(cf_graph_finalize(g) == CF_OK);
  memcpy(cf_graph_value(g, in), x, (size_t)B * dim * sizeof(float));
  cf_graph_forward(g);
  cf_graph_backward(g, loss);
  free(r);
  free(J);
  cf_graph_free(g);
  cf_expr_set_clear(&s);
}
