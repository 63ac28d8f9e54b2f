/* Parameters, graph building, arenas and the forward/backward drivers.
 * The op builders and kernels live in ops.c. */
#include "graph.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph_private.h"

/* Offsets are rounded up to 16 floats so every tensor starts 64-byte aligned. */
static size_t
round_up16(size_t n)
{
  return (n + 15) & ~(size_t)15;
}

/* ---- parameters ---------------------------------------------------------- */

void
cf_params_init(CfParams *p)
{
  memset(p, 0, sizeof *p);
}

void
cf_params_clear(CfParams *p)
{
  free(p->info);
  cf_free_aligned(p->value);
  cf_free_aligned(p->grad);
  memset(p, 0, sizeof *p);
}

int
cf_params_add(CfParams *p, const char *name, int rows, int cols, CfInit init, float scale)
{
  CF_ASSERT(p && name);
  CF_ASSERT(p->value == NULL); /* declare everything before cf_params_alloc */
  CF_ASSERT(rows > 0 && cols > 0);
  CF_ASSERT(strlen(name) < sizeof p->info[0].name);
  if (p->count == p->capacity) {
    int cap = p->capacity ? 2 * p->capacity : 16;
    CfParamInfo *info = realloc(p->info, (size_t)cap * sizeof *info);
    if (!info)
      return -1;
    p->info = info;
    p->capacity = cap;
  }
  CfParamInfo *pi = &p->info[p->count];
  memset(pi, 0, sizeof *pi);
  memcpy(pi->name, name, strlen(name) + 1);
  pi->rows = rows;
  pi->cols = cols;
  pi->offset = p->total;
  pi->init = init;
  pi->scale = scale;
  /* Padding between parameters stays zero in values, grads and moments, so
   * flat loops over the arenas (Adam, clipping, EMA) are unaffected by it. */
  p->total = round_up16(p->total + (size_t)rows * (size_t)cols);
  return p->count++;
}

CfStatus
cf_params_alloc(CfParams *p)
{
  CF_ASSERT(p->value == NULL);
  p->value = cf_alloc_floats(p->total);
  p->grad = cf_alloc_floats(p->total);
  if (!p->value || !p->grad) {
    cf_free_aligned(p->value);
    cf_free_aligned(p->grad);
    p->value = p->grad = NULL;
    return CF_ERR_NOMEM;
  }
  return CF_OK;
}

void
cf_params_randomize(CfParams *p, CfRng *rng)
{
  CF_ASSERT(p->value != NULL);
  for (int k = 0; k < p->count; k++) {
    const CfParamInfo *pi = &p->info[k];
    float *v = p->value + pi->offset;
    size_t n = (size_t)pi->rows * (size_t)pi->cols;
    switch (pi->init) {
    case CF_INIT_ZERO:
      memset(v, 0, n * sizeof *v);
      break;
    case CF_INIT_ONE:
      for (size_t i = 0; i < n; i++)
        v[i] = 1.0f;
      break;
    case CF_INIT_UNIFORM_FAN_IN: {
      double bound = 1.0 / sqrt((double)pi->cols);
      for (size_t i = 0; i < n; i++)
        v[i] = (float)((2.0 * cf_rng_uniform(rng) - 1.0) * bound);
      break;
    }
    case CF_INIT_NORMAL:
      cf_rng_fill_normal(rng, v, n);
      for (size_t i = 0; i < n; i++)
        v[i] *= pi->scale;
      break;
    }
  }
}

void
cf_params_zero_grad(CfParams *p)
{
  if (p->grad)
    memset(p->grad, 0, p->total * sizeof *p->grad);
}

float *
cf_params_value(CfParams *p, int index)
{
  CF_ASSERT(index >= 0 && index < p->count && p->value);
  return p->value + p->info[index].offset;
}

float *
cf_params_grad(CfParams *p, int index)
{
  CF_ASSERT(index >= 0 && index < p->count && p->grad);
  return p->grad + p->info[index].offset;
}

int
cf_params_find(const CfParams *p, const char *name)
{
  for (int k = 0; k < p->count; k++)
    if (strcmp(p->info[k].name, name) == 0)
      return k;
  return -1;
}

/* ---- graph building ---------------------------------------------------------- */

CfGraph *
cf_graph_new(void)
{
  return calloc(1, sizeof(CfGraph));
}

void
cf_graph_free(CfGraph *g)
{
  if (!g)
    return;
  free(g->nodes);
  cf_free_aligned(g->value_arena);
  cf_free_aligned(g->grad_arena);
  cf_free_aligned(g->work);
  free(g);
}

CfNodeRec *
cf_graph_node(CfGraph *g, CfNode n)
{
  CF_ASSERT(g && n >= 0 && n < g->count);
  return &g->nodes[n];
}

CfNode
cf_graph_push(CfGraph *g, CfOpKind op, int rows, int cols, CfNode a, CfNode b, CfNode c)
{
  CF_ASSERT(g && !g->finalized);
  CF_ASSERT(rows > 0 && cols > 0);
  if (g->failed)
    return -1;
  if (g->count == g->capacity) {
    int cap = g->capacity ? 2 * g->capacity : 64;
    CfNodeRec *nodes = realloc(g->nodes, (size_t)cap * sizeof *nodes);
    if (!nodes) {
      g->failed = true;
      return -1;
    }
    g->nodes = nodes;
    g->capacity = cap;
  }
  CfNodeRec *n = &g->nodes[g->count];
  memset(n, 0, sizeof *n);
  n->op = op;
  n->rows = rows;
  n->cols = cols;
  n->in[0] = a;
  n->in[1] = b;
  n->in[2] = c;
  n->param_index = -1;
  for (int k = 0; k < 3; k++) {
    CF_ASSERT(n->in[k] < g->count); /* inputs precede the node: topological order */
    if (n->in[k] >= 0 && g->nodes[n->in[k]].needs_grad)
      n->needs_grad = true;
  }
  return g->count++;
}

CfNode
cf_input(CfGraph *g, int rows, int cols, bool requires_grad)
{
  CfNode n = cf_graph_push(g, CF_OP_INPUT, rows, cols, -1, -1, -1);
  if (n >= 0)
    g->nodes[n].needs_grad = requires_grad;
  return n;
}

CfNode
cf_param(CfGraph *g, CfParams *p, int index)
{
  CF_ASSERT(p && index >= 0 && index < p->count);
  CfNode n = cf_graph_push(g, CF_OP_PARAM, p->info[index].rows, p->info[index].cols, -1, -1, -1);
  if (n >= 0) {
    g->nodes[n].needs_grad = true;
    g->nodes[n].params = p;
    g->nodes[n].param_index = index;
  }
  return n;
}

/* Value arena: every non-parameter value, then op scratch. Grad arena: the
 * gradients of nodes that need one (cleared lazily by each backward), then the rest
 * (never written, so they stay zero and cost no clearing). */
CfStatus
cf_graph_finalize(CfGraph *g)
{
  CF_ASSERT(g && !g->finalized);
  if (g->failed)
    return CF_ERR_NOMEM;
  size_t nv = 0, ng = 0, ng_rest = 0, nw = 0;
  for (int i = 0; i < g->count; i++) {
    const CfNodeRec *n = &g->nodes[i];
    if (n->work_floats > nw)
      nw = n->work_floats;
    if (n->op == CF_OP_PARAM)
      continue;
    size_t sz = round_up16((size_t)n->rows * (size_t)n->cols);
    nv += sz + round_up16(n->scratch_floats);
    if (n->needs_grad)
      ng += sz;
    else
      ng_rest += sz;
  }
  float *va = cf_alloc_floats(nv);
  float *ga = cf_alloc_floats(ng + ng_rest);
  float *wa = nw ? cf_alloc_floats(nw) : NULL;
  if (!va || !ga || (nw && !wa)) {
    cf_free_aligned(va);
    cf_free_aligned(ga);
    cf_free_aligned(wa);
    return CF_ERR_NOMEM;
  }
  size_t ov = 0, og = 0, og_rest = ng;
  for (int i = 0; i < g->count; i++) {
    CfNodeRec *n = &g->nodes[i];
    if (n->op == CF_OP_PARAM) {
      CF_ASSERT(n->params->value != NULL); /* cf_params_alloc before finalize */
      n->value = cf_params_value(n->params, n->param_index);
      n->grad = cf_params_grad(n->params, n->param_index);
      continue;
    }
    size_t sz = round_up16((size_t)n->rows * (size_t)n->cols);
    n->value = va + ov;
    ov += sz;
    if (n->scratch_floats) {
      n->scratch = va + ov;
      ov += round_up16(n->scratch_floats);
    }
    if (n->needs_grad) {
      n->grad = ga + og;
      og += sz;
    } else {
      n->grad = ga + og_rest;
      og_rest += sz;
    }
  }
  g->value_arena = va;
  g->grad_arena = ga;
  g->value_floats = nv;
  g->grad_floats = ng + ng_rest;
  g->work = wa;
  g->work_floats = nw;
  g->finalized = true;
  for (int i = 0; i < g->count; i++)
    cf_op_prepare(g, &g->nodes[i]);
  return CF_OK;
}

/* ---- running --------------------------------------------------------------- */

void
cf_graph_forward(CfGraph *g)
{
  CF_ASSERT(g->finalized);
  for (int i = 0; i < g->count; i++) {
    CfNodeRec *n = &g->nodes[i];
    if (n->op != CF_OP_INPUT && n->op != CF_OP_PARAM)
      cf_op_forward(g, n);
  }
}

void
cf_graph_backward(CfGraph *g, CfNode loss)
{
  CF_ASSERT(g->finalized);
  CfNodeRec *l = cf_graph_node(g, loss);
  CF_ASSERT(l->rows == 1 && l->cols == 1);
  /* Gradients are cleared lazily (cf_grad_first): each pending one is
   * either stored by its first consumer, zeroed before an adding kernel
   * reads or adds to it, or zeroed at the end. */
  for (int i = 0; i < g->count; i++)
    g->nodes[i].grad_pending = g->nodes[i].needs_grad && g->nodes[i].op != CF_OP_PARAM;
  if (!l->needs_grad) { /* nothing upstream wants a gradient: all read as zero */
    for (int i = 0; i < g->count; i++)
      cf_grad_touch(&g->nodes[i]);
    return;
  }
  if (cf_grad_first(l))
    l->grad[0] = 1.0f;
  else
    l->grad[0] += 1.0f; /* a parameter used directly as the loss */
  /* Mark the nodes the loss depends on, then run their backward kernels in
   * reverse insertion order (insertion order is topological). */
  for (int i = 0; i <= loss; i++)
    g->nodes[i].live = false;
  l->live = true;
  for (int i = loss; i >= 0; i--) {
    CfNodeRec *n = &g->nodes[i];
    if (!n->live || !n->needs_grad)
      continue;
    for (int k = 0; k < 3; k++)
      if (n->in[k] >= 0)
        g->nodes[n->in[k]].live = true;
    if (n->op == CF_OP_INPUT || n->op == CF_OP_PARAM || n->grad_pending)
      continue; /* a pending gradient is zero: nothing flows upstream */
    if (!cf_op_stores_grads(n->op))
      for (int k = 0; k < 3; k++)
        if (n->in[k] >= 0)
          cf_grad_touch(&g->nodes[n->in[k]]);
    cf_op_backward(g, n);
  }
  for (int i = 0; i < g->count; i++) /* unreached gradients read as zero */
    cf_grad_touch(&g->nodes[i]);
}

void
cf_grad_touch(CfNodeRec *x)
{
  if (x->grad_pending) {
    memset(x->grad, 0, (size_t)x->rows * (size_t)x->cols * sizeof *x->grad);
    x->grad_pending = false;
  }
}

float *
cf_graph_value(CfGraph *g, CfNode n)
{
  CF_ASSERT(g->finalized);
  return cf_graph_node(g, n)->value;
}

float *
cf_graph_grad(CfGraph *g, CfNode n)
{
  CF_ASSERT(g->finalized);
  return cf_graph_node(g, n)->grad;
}

int
cf_graph_rows(const CfGraph *g, CfNode n)
{
  CF_ASSERT(g && n >= 0 && n < g->count);
  return g->nodes[n].rows;
}

int
cf_graph_cols(const CfGraph *g, CfNode n)
{
  CF_ASSERT(g && n >= 0 && n < g->count);
  return g->nodes[n].cols;
}

int
cf_graph_node_count(const CfGraph *g)
{
  return g->count;
}

size_t
cf_graph_arena_floats(const CfGraph *g)
{
  return g->value_floats + g->grad_floats + g->work_floats;
}
