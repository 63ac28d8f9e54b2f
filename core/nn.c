/* MLP and activation helpers on top of the graph. */
#include "nn.h"

#include <stdio.h>

static CfPointwise
pointwise_of(CfActivation act)
{
  switch (act) {
  case CF_ACT_SILU: return CF_PW_SILU;
  case CF_ACT_RELU: return CF_PW_RELU;
  case CF_ACT_TANH: return CF_PW_TANH;
  case CF_ACT_SOFTPLUS: return CF_PW_SOFTPLUS;
  case CF_ACT_LEAKY_RELU: return CF_PW_LEAKY_RELU;
  }
  CF_ASSERT(!"unknown activation");
  return CF_PW_IDENTITY;
}

CfNode
cf_activation(CfGraph *g, CfNode x, CfActivation act)
{
  switch (act) {
  case CF_ACT_SILU: return cf_silu(g, x);
  case CF_ACT_RELU: return cf_relu(g, x);
  case CF_ACT_TANH: return cf_tanh(g, x);
  case CF_ACT_SOFTPLUS: return cf_softplus(g, x);
  case CF_ACT_LEAKY_RELU: return cf_leaky_relu(g, x, 0.01f);
  }
  CF_ASSERT(!"unknown activation");
  return -1;
}

/* Layer i maps layer_in(i) -> layer_out(i); depth + 1 layers in all. */
static int
layer_in(const CfMlp *m, int i)
{
  return i == 0 ? m->in : m->width;
}

static int
layer_out(const CfMlp *m, int i)
{
  return i == m->depth ? m->out : m->width;
}

void
cf_mlp_declare(CfMlp *mlp, CfParams *p, const char *prefix, int in, int width, int depth, int out)
{
  CF_ASSERT(mlp && p && prefix && in > 0 && width > 0 && depth >= 1 && out > 0);
  mlp->in = in;
  mlp->width = width;
  mlp->depth = depth;
  mlp->out = out;
  mlp->first_param = -1;
  char name[64];
  for (int i = 0; i <= depth; i++) {
    int k = snprintf(name, sizeof name, "%s.%d.w", prefix, i);
    CF_ASSERT(k > 0 && (size_t)k < sizeof name);
    int w = cf_params_add(p, name, layer_out(mlp, i), layer_in(mlp, i), CF_INIT_UNIFORM_FAN_IN, 1.0f);
    snprintf(name, sizeof name, "%s.%d.b", prefix, i);
    int b = cf_params_add(p, name, 1, layer_out(mlp, i), CF_INIT_ZERO, 0.0f);
    if (w < 0 || b < 0) { /* out of memory: cf_mlp_build will refuse */
      mlp->first_param = -1;
      return;
    }
    if (i == 0)
      mlp->first_param = w;
  }
}

CfNode
cf_mlp_build(CfGraph *g, CfParams *p, const CfMlp *mlp, CfNode x, CfActivation act)
{
  CF_ASSERT(mlp->first_param >= 0);
  CF_ASSERT(cf_graph_cols(g, x) == mlp->in);
  CfPointwise pw = pointwise_of(act);
  CfNode h = x;
  for (int i = 0; i <= mlp->depth; i++) {
    CfNode w = cf_param(g, p, mlp->first_param + 2 * i);
    CfNode b = cf_param(g, p, mlp->first_param + 2 * i + 1);
    /* hidden layers fuse the activation; the last layer is affine */
    h = cf_linear_act(g, h, w, b, i < mlp->depth ? pw : CF_PW_IDENTITY);
    if (h < 0)
      return -1;
  }
  return h;
}

double
cf_mlp_flops(const CfMlp *mlp, int B)
{
  double f = 0.0;
  for (int i = 0; i <= mlp->depth; i++)
    f += 2.0 * B * (double)layer_in(mlp, i) * (double)layer_out(mlp, i);
  return f;
}
