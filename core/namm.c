/* Neural approximate mirror maps: the ICNN forward map with its explicit
 * gradient graph, the residual inverse MLP, the training loss and step, and
 * batch inference. See namm.h. */
#include "namm.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- configuration ------------------------------------------------------------------ */

CfNammConfig
cf_namm_default_config(int dim)
{
  CfNammConfig c = {
    .dim = dim,
    .icnn_width = 64,
    .icnn_depth = 3,
    .alpha = 0.9f,
    .nonneg_init = 1e-3f,
    .inv_width = 128,
    .inv_depth = 3,
    .lambda_cyc = 1.0f,
    .lambda_constr = 1.0f,
    .lambda_reg = 1e-3f,
    .sigma_max = 0.1f,
    .lr = 2e-4f,
    .beta1 = 0.5f,
    .clip = 1.0f,
    .ema_rate = 0.999f,
    .batch = 16,
  };
  return c;
}

CfNammConfig
cf_namm_bench_config(void)
{
  CfNammConfig c = cf_namm_default_config(2);
  c.batch = 256;
  return c;
}

CfStatus
cf_namm_config_check(const CfNammConfig *c, CfError *err)
{
#define BAD(...) return cf_error_set(err, CF_ERR_INVALID, __VA_ARGS__)
  if (c->dim < 1 || c->dim > CF_EXPR_MAX_DIM)
    BAD("mirror map: dimension %d is outside 1..%d", c->dim, CF_EXPR_MAX_DIM);
  if (c->icnn_width < 1 || c->icnn_width > 65536)
    BAD("mirror map: ICNN width %d is outside 1..65536", c->icnn_width);
  if (c->icnn_depth < 1 || c->icnn_depth > CF_NAMM_MAX_DEPTH)
    BAD("mirror map: ICNN depth %d is outside 1..%d", c->icnn_depth, CF_NAMM_MAX_DEPTH);
  if (c->inv_width < 1 || c->inv_width > 65536 || c->inv_depth < 1 || c->inv_depth > 64)
    BAD("mirror map: inverse network %d x %d is outside 1..65536 x 1..64", c->inv_depth, c->inv_width);
  if (c->img_h < 0 || c->img_w < 0 || (c->img_h > 0 && ((long)c->img_h * c->img_w != c->dim || c->inv_depth + 1 >
                                                         CF_NAMM_MAX_DEPTH + 2)))
    BAD("mirror map: image %d x %d does not match dimension %d (or more than %d convolutions)", c->img_h, c->img_w,
        c->dim, CF_NAMM_MAX_DEPTH + 2);
  if (!(c->alpha >= 0.0f && c->alpha < 1.0f))
    BAD("mirror map: alpha %g is outside [0, 1)", (double)c->alpha);
  if (!(c->nonneg_init >= 0.0f && c->nonneg_init <= 1.0f))
    BAD("mirror map: non-negative init scale %g is outside [0, 1]", (double)c->nonneg_init);
  if (!(c->lambda_cyc >= 0.0f && c->lambda_constr >= 0.0f && c->lambda_reg >= 0.0f) ||
      !isfinite(c->lambda_cyc) || !isfinite(c->lambda_constr) || !isfinite(c->lambda_reg))
    BAD("mirror map: loss weights must be finite and >= 0 (cyc %g, constr %g, reg %g)", (double)c->lambda_cyc,
        (double)c->lambda_constr, (double)c->lambda_reg);
  if (!(c->sigma_max >= 0.0f && isfinite(c->sigma_max)))
    BAD("mirror map: sigma_max %g must be finite and >= 0", (double)c->sigma_max);
  if (!(c->lr > 0.0f && isfinite(c->lr)))
    BAD("mirror map: learning rate %g must be > 0", (double)c->lr);
  if (!(c->beta1 >= 0.0f && c->beta1 < 1.0f))
    BAD("mirror map: Adam beta1 %g is outside [0, 1)", (double)c->beta1);
  if (!(c->clip >= 0.0f && isfinite(c->clip)))
    BAD("mirror map: clipping norm %g must be finite and >= 0", (double)c->clip);
  if (!(c->ema_rate >= 0.0f && c->ema_rate < 1.0f))
    BAD("mirror map: EMA rate %g is outside [0, 1)", (double)c->ema_rate);
  if (c->batch < 1)
    BAD("mirror map: batch %d must be >= 1", c->batch);
#undef BAD
  return CF_OK;
}

/* ---- constraint distance -------------------------------------------------------------- */

static CfStatus
check_constraint(const CfNammConstraint *c, int dim, CfError *err)
{
  if (!c || (!c->expr) == (!c->lin))
    return cf_error_set(err, CF_ERR_INVALID, "mirror map: give exactly one constraint (equations or A x = b)");
  if (c->expr && c->expr->dim != dim)
    return cf_error_set(err, CF_ERR_SHAPE, "mirror map: the equations are over %d coordinates, the data have %d",
                        c->expr->dim, dim);
  if (c->lin && c->lin->n != dim)
    return cf_error_set(err, CF_ERR_SHAPE, "mirror map: the constraint has %d columns, the data have %d",
                        c->lin->n, dim);
  return CF_OK;
}

CfStatus
cf_namm_constraint_distance(const CfNammConstraint *c, int dim, const float *x, int B, double *d, CfError *err)
{
  CfStatus st = check_constraint(c, dim, err);
  if (st != CF_OK)
    return st;
  if (c->expr)
    return cf_expr_distance(c->expr, x, B, d, err);
  cf_constraint_violation(c->lin, x, B, d, NULL);
  return CF_OK;
}

/* ---- networks ------------------------------------------------------------------------ */

/* Declares the ICNN and the inverse MLP in p; false when out of memory. */
static bool
net_declare(CfNammNet *net, CfParams *p, const CfNammConfig *c)
{
  memset(net, 0, sizeof *net);
  net->dim = c->dim;
  net->width = c->icnn_width;
  net->depth = c->icnn_depth;
  char name[64];
  bool ok = true;
  for (int l = 0; l < c->icnn_depth; l++) {
    if (l >= 1) {
      snprintf(name, sizeof name, "icnn.W%d", l);
      net->W[l] = cf_params_add(p, name, c->icnn_width, c->icnn_width, CF_INIT_ZERO, 0.0f);
    } else {
      net->W[l] = -1;
    }
    snprintf(name, sizeof name, "icnn.U%d", l);
    net->U[l] = cf_params_add(p, name, c->icnn_width, c->dim, CF_INIT_UNIFORM_FAN_IN, 1.0f);
    snprintf(name, sizeof name, "icnn.b%d", l);
    net->b[l] = cf_params_add(p, name, 1, c->icnn_width, CF_INIT_ZERO, 0.0f);
    ok = ok && net->U[l] >= 0 && net->b[l] >= 0 && (l == 0 || net->W[l] >= 0);
  }
  net->w_out = cf_params_add(p, "icnn.w_out", 1, c->icnn_width, CF_INIT_ZERO, 0.0f);
  net->u_out = cf_params_add(p, "icnn.u_out", 1, c->dim, CF_INIT_ZERO, 0.0f);
  net->img_h = c->img_h;
  net->img_w = c->img_w;
  if (c->img_h > 0) { /* 3 x 3 convolutions 1 -> C -> ... -> C -> 1 */
    net->conv_c = c->inv_width;
    net->n_conv = c->inv_depth + 1;
    for (int l = 0; l < net->n_conv; l++) {
      int cin = l == 0 ? 1 : c->inv_width, cout = l == net->n_conv - 1 ? 1 : c->inv_width;
      snprintf(name, sizeof name, "inv.conv%d.w", l);
      net->conv_w[l] = cf_params_add(p, name, cout, cin * 9, CF_INIT_UNIFORM_FAN_IN, 1.0f);
      snprintf(name, sizeof name, "inv.conv%d.b", l);
      net->conv_b[l] = cf_params_add(p, name, 1, cout, CF_INIT_ZERO, 0.0f);
      ok = ok && net->conv_w[l] >= 0 && net->conv_b[l] >= 0;
    }
    net->inv_first = net->conv_w[0];
    net->inv_last = net->conv_w[net->n_conv - 1];
  } else {
    cf_mlp_declare(&net->inv, p, "inv", c->dim, c->inv_width, c->inv_depth, c->dim);
    net->inv_first = net->inv.first_param;
    net->inv_last = net->inv.first_param + 2 * net->inv.depth;
  }
  return ok && net->w_out >= 0 && net->u_out >= 0 && net->inv_first >= 0;
}

CfNode
cf_namm_build_potential_grad(CfGraph *g, CfParams *p, const CfNammNet *net, CfNode x, CfNode *R_out)
{
  CF_ASSERT(cf_graph_cols(g, x) == net->dim);
  const int L = net->depth;
  CfNode pre[CF_NAMM_MAX_DEPTH];
  CfNode U[CF_NAMM_MAX_DEPTH], W[CF_NAMM_MAX_DEPTH];
  /* forward: p_0 = x U_0^T + b_0; p_l = z_l W_l^T + x U_l^T + b_l; z_{l+1} = softplus(p_l) */
  CfNode z = -1;
  for (int l = 0; l < L; l++) {
    U[l] = cf_param(g, p, net->U[l]);
    CfNode lin = cf_linear(g, x, U[l], cf_param(g, p, net->b[l]));
    if (l == 0) {
      W[l] = -1;
      pre[l] = lin;
    } else {
      W[l] = cf_param(g, p, net->W[l]);
      pre[l] = cf_add(g, cf_matmul(g, z, W[l], false, true), lin);
    }
    if (pre[l] < 0)
      return -1;
    if (l + 1 < L || R_out)
      z = cf_softplus(g, pre[l]);
  }
  CfNode w_out = cf_param(g, p, net->w_out), u_out = cf_param(g, p, net->u_out);
  if (R_out) /* R = z_L w_out^T + x u_out^T, (B,1) */
    *R_out = cf_add(g, cf_matmul(g, z, w_out, false, true), cf_matmul(g, x, u_out, false, true));
  /* backward chain as forward ops: dR/dp_{L-1} = sigmoid(p_{L-1}) .* w_out,
   * dR/dz_l = dR/dp_l W_l, dR/dp_{l-1} = dR/dz_l .* sigmoid(p_{l-1}),
   * grad_x R = sum_l dR/dp_l U_l + u_out. */
  CfNode d = cf_mul_row(g, cf_sigmoid(g, pre[L - 1]), w_out);
  CfNode gx = cf_matmul(g, d, U[L - 1], false, false);
  for (int l = L - 1; l >= 1; l--) {
    CfNode dz = cf_matmul(g, d, W[l], false, false);
    d = cf_mul(g, dz, cf_sigmoid(g, pre[l - 1]));
    gx = cf_add(g, gx, cf_matmul(g, d, U[l - 1], false, false));
  }
  return cf_bias_add(g, gx, u_out);
}

CfNode
cf_namm_build_forward(CfGraph *g, CfParams *p, const CfNammNet *net, float alpha, CfNode x, CfNode *gradR_out)
{
  CfNode gr = cf_namm_build_potential_grad(g, p, net, x, NULL);
  if (gr < 0)
    return -1;
  if (gradR_out)
    *gradR_out = gr;
  return cf_add(g, cf_scale(g, x, alpha), cf_scale(g, gr, 1.0f - alpha));
}

CfNode
cf_namm_build_inverse(CfGraph *g, CfParams *p, const CfNammNet *net, CfNode y)
{
  CfNode h = y;
  if (net->img_h > 0) {
    for (int l = 0; l < net->n_conv && h >= 0; l++) {
      int cin = l == 0 ? 1 : net->conv_c, cout = l == net->n_conv - 1 ? 1 : net->conv_c;
      h = cf_conv2d(g, h, cf_param(g, p, net->conv_w[l]), cf_param(g, p, net->conv_b[l]), cin, net->img_h, net->img_w,
                    cout, 3, 1, 1);
      if (l < net->n_conv - 1 && h >= 0)
        h = cf_silu(g, h);
    }
  } else {
    h = cf_mlp_build(g, p, &net->inv, y, CF_ACT_SILU);
  }
  return h < 0 ? -1 : cf_add(g, y, h);
}

/* ---- model ---------------------------------------------------------------------------- */

CfStatus
cf_namm_init(CfNamm *m, const CfNammConfig *cfg, CfError *err)
{
  memset(m, 0, sizeof *m);
  CfStatus st = cf_namm_config_check(cfg, err);
  if (st != CF_OK)
    return st;
  m->cfg = *cfg;
  cf_params_init(&m->params);
  if (!net_declare(&m->net, &m->params, cfg) || cf_params_alloc(&m->params) != CF_OK) {
    cf_namm_clear(m);
    return cf_error_set(err, CF_ERR_NOMEM, "mirror map: out of memory for the parameters");
  }
  for (int l = 1; l < cfg->icnn_depth; l++)
    m->nonneg[m->n_nonneg++] = m->net.W[l];
  m->nonneg[m->n_nonneg++] = m->net.w_out;
  CfAdamConfig ac = cf_adam_default_config();
  ac.beta1 = cfg->beta1;
  m->ema = cf_alloc_floats(m->params.total);
  m->backup = cf_alloc_floats(m->params.total);
  if (!m->ema || !m->backup || cf_adam_init(&m->adam, m->params.total, &ac) != CF_OK) {
    cf_namm_clear(m);
    return cf_error_set(err, CF_ERR_NOMEM, "mirror map: out of memory for the optimiser state");
  }
  memset(m->ema, 0, m->params.total * sizeof *m->ema);
  return CF_OK;
}

void
cf_namm_clear(CfNamm *m)
{
  cf_graph_free(m->train);
  cf_adam_clear(&m->adam);
  cf_free_aligned(m->ema);
  cf_free_aligned(m->backup);
  cf_params_clear(&m->params);
  memset(m, 0, sizeof *m);
}

void
cf_namm_randomize(CfNamm *m, CfRng *rng)
{
  cf_params_randomize(&m->params, rng);
  for (int k = 0; k < m->n_nonneg; k++) {
    const CfParamInfo *pi = &m->params.info[m->nonneg[k]];
    float *v = cf_params_value(&m->params, m->nonneg[k]);
    for (int i = 0; i < pi->rows * pi->cols; i++)
      v[i] = m->cfg.nonneg_init * (float)cf_rng_uniform(rng);
  }
  /* last inverse layer at zero: f starts as the identity */
  int wl = m->net.inv_last;
  const CfParamInfo *pi = &m->params.info[wl];
  memset(cf_params_value(&m->params, wl), 0, (size_t)pi->rows * pi->cols * sizeof(float));
  memcpy(m->ema, m->params.value, m->params.total * sizeof *m->ema);
  cf_adam_reset(&m->adam);
  m->step = 0;
}

void
cf_namm_project(const CfNamm *m, float *arena)
{
  for (int k = 0; k < m->n_nonneg; k++) {
    const CfParamInfo *pi = &m->params.info[m->nonneg[k]];
    float *v = arena + pi->offset;
    for (int i = 0; i < pi->rows * pi->cols; i++)
      v[i] = v[i] > 0.0f ? v[i] : 0.0f; /* also maps -0 to +0 */
  }
}

CfStatus
cf_namm_prepare_train(CfNamm *m, int B, const CfNammConstraint *c, CfError *err)
{
  CF_ASSERT(m->params.value);
  CfStatus st = check_constraint(c, m->cfg.dim, err);
  if (st != CF_OK)
    return st;
  if (B < 1)
    return cf_error_set(err, CF_ERR_INVALID, "mirror map: batch %d must be >= 1", B);
  cf_graph_free(m->train);
  m->train = NULL;
  m->finetune = false;
  CfGraph *g = cf_graph_new();
  if (!g)
    return cf_error_set(err, CF_ERR_NOMEM, "mirror map: out of memory for the training graph");
  const CfNammConfig *cfg = &m->cfg;
  CfParams *p = &m->params;
  int d = cfg->dim;
  CfNode x = cf_input(g, B, d, false), noise = cf_input(g, B, d, false);
  CfNode gradR = -1;
  CfNode gx = cf_namm_build_forward(g, p, &m->net, cfg->alpha, x, &gradR);
  CfNode fgx = gx >= 0 ? cf_namm_build_inverse(g, p, &m->net, gx) : -1;
  CfNode ytil = fgx >= 0 ? cf_add(g, gx, noise) : -1;
  CfNode fy = ytil >= 0 ? cf_namm_build_inverse(g, p, &m->net, ytil) : -1;
  CfNode gfy = fy >= 0 ? cf_namm_build_forward(g, p, &m->net, cfg->alpha, fy, NULL) : -1;
  CfLinDistance lind = { 0 };
  CfNode dist = -1;
  if (gfy >= 0)
    dist = c->expr ? cf_expr_build_distance(g, c->expr, fy) : cf_lin_distance_build(g, fy, c->lin->m, d, &lind);
  if (dist < 0) {
    cf_graph_free(g);
    return cf_error_set(err, CF_ERR_NOMEM, "mirror map: out of memory building the training graph");
  }
  m->l_cyc_fwd = cf_l1(g, fgx, x);
  m->l_cyc_inv = cf_l1(g, gfy, ytil);
  m->l_cyc = cf_scale(g, cf_add(g, m->l_cyc_fwd, m->l_cyc_inv), 0.5f);
  m->l_constr = cf_mean_all(g, dist);
  m->l_reg = cf_mean_all(g, cf_abs(g, gradR));
  m->loss = cf_add(g, cf_add(g, cf_scale(g, m->l_cyc, cfg->lambda_cyc), cf_scale(g, m->l_constr, cfg->lambda_constr)),
                   cf_scale(g, m->l_reg, cfg->lambda_reg));
  if (m->loss < 0 || cf_graph_finalize(g) != CF_OK) {
    cf_graph_free(g);
    return cf_error_set(err, CF_ERR_NOMEM, "mirror map: out of memory for the training graph (batch %d)", B);
  }
  if (c->lin)
    cf_lin_distance_load(g, &lind, c->lin);
  m->train = g;
  m->train_B = B;
  m->in_x = x;
  m->in_noise = noise;
  return CF_OK;
}

/* Offset of the inverse map's first parameter: the forward map's (ICNN)
 * parameters are declared first and occupy [0, offset). */
static size_t
forward_extent(const CfNamm *m)
{
  return m->params.info[m->net.inv_first].offset;
}

CfStatus
cf_namm_prepare_finetune(CfNamm *m, int B, const CfNammConstraint *c, CfError *err)
{
  CF_ASSERT(m->params.value);
  CfStatus st = check_constraint(c, m->cfg.dim, err);
  if (st != CF_OK)
    return st;
  if (B < 1)
    return cf_error_set(err, CF_ERR_INVALID, "mirror map: batch %d must be >= 1", B);
  CfGraph *g = cf_graph_new();
  if (!g)
    return cf_error_set(err, CF_ERR_NOMEM, "mirror map: out of memory for the finetuning graph");
  const CfNammConfig *cfg = &m->cfg;
  CfParams *p = &m->params;
  int d = cfg->dim;
  CfNode y = cf_input(g, B, d, false), noise = cf_input(g, B, d, false);
  CfNode ytil = cf_add(g, y, noise);
  CfNode fy = ytil >= 0 ? cf_namm_build_inverse(g, p, &m->net, ytil) : -1;
  CfNode gfy = fy >= 0 ? cf_namm_build_forward(g, p, &m->net, cfg->alpha, fy, NULL) : -1;
  CfLinDistance lind = { 0 };
  CfNode dist = -1;
  if (gfy >= 0)
    dist = c->expr ? cf_expr_build_distance(g, c->expr, fy) : cf_lin_distance_build(g, fy, c->lin->m, d, &lind);
  CfNode l_inv = dist >= 0 ? cf_l1(g, gfy, ytil) : -1;
  CfNode l_constr = l_inv >= 0 ? cf_mean_all(g, dist) : -1;
  CfNode loss = l_constr >= 0 ? cf_add(g, cf_scale(g, l_inv, cfg->lambda_cyc), cf_scale(g, l_constr, cfg->lambda_constr))
                              : -1;
  if (loss < 0 || cf_graph_finalize(g) != CF_OK) {
    cf_graph_free(g);
    return cf_error_set(err, CF_ERR_NOMEM, "mirror map: out of memory for the finetuning graph (batch %d)", B);
  }
  if (c->lin)
    cf_lin_distance_load(g, &lind, c->lin);
  cf_graph_free(m->train);
  m->train = g;
  m->train_B = B;
  m->in_x = y;
  m->in_noise = noise;
  m->l_cyc_fwd = m->l_reg = -1;
  m->l_cyc_inv = m->l_cyc = l_inv;
  m->l_constr = l_constr;
  m->loss = loss;
  m->finetune = true;
  /* g frozen at its averaged weights, the ones the diffusion data came from */
  memcpy(m->params.value, m->ema, forward_extent(m) * sizeof(float));
  return CF_OK;
}

CfStatus
cf_namm_train_step(CfNamm *m, const float *x, CfRng *rng, CfNammLosses *out, CfError *err)
{
  CF_ASSERT(m->train);
  CfGraph *g = m->train;
  const int B = m->train_B, d = m->cfg.dim;
  const size_t total = m->params.total;
  memcpy(cf_graph_value(g, m->in_x), x, (size_t)B * d * sizeof(float));
  /* noise sigma_i eps_i with sigma_i ~ U(0, sigma_max) per sample */
  float *nz = cf_graph_value(g, m->in_noise);
  cf_rng_fill_normal(rng, nz, (size_t)B * d);
  for (int i = 0; i < B; i++) {
    float s = m->cfg.sigma_max * (float)cf_rng_uniform(rng);
    for (int k = 0; k < d; k++)
      nz[(size_t)i * d + k] *= s;
  }
  cf_params_zero_grad(&m->params);
  cf_graph_forward(g);
  CfNammLosses l = {
    .total = cf_graph_value(g, m->loss)[0],
    .cyc = cf_graph_value(g, m->l_cyc)[0],
    .cyc_fwd = m->l_cyc_fwd >= 0 ? cf_graph_value(g, m->l_cyc_fwd)[0] : NAN,
    .cyc_inv = cf_graph_value(g, m->l_cyc_inv)[0],
    .constr = cf_graph_value(g, m->l_constr)[0],
    .reg = m->l_reg >= 0 ? cf_graph_value(g, m->l_reg)[0] : 0.0f,
    .grad_norm = NAN,
  };
  if (out)
    *out = l;
  if (!isfinite(l.total))
    return cf_error_set(err, CF_ERR_NUMERIC,
                        "mirror map: step %ld: the loss is not finite (cycle %g, constraint %g, regulariser %g); "
                        "weights kept at their last good values",
                        m->step + 1, (double)l.cyc, (double)l.constr, (double)l.reg);
  cf_graph_backward(g, m->loss);
  l.grad_norm = cf_grad_norm(m->params.grad, total);
  if (out)
    out->grad_norm = l.grad_norm;
  if (!isfinite(l.grad_norm))
    return cf_error_set(err, CF_ERR_NUMERIC,
                        "mirror map: step %ld: the gradient is not finite; weights kept at their last good values",
                        m->step + 1);
  /* Adam, then projection onto W >= 0, then the EMA of the projected weights
   * (a convex combination of non-negative weights stays non-negative). */
  memcpy(m->backup, m->params.value, total * sizeof(float));
  cf_adam_step_scaled(&m->adam, m->params.value, m->params.grad, m->cfg.lr,
                      cf_clip_scale(l.grad_norm, m->cfg.clip));
  if (m->finetune) /* only f learns: g's weights (and so their EMA) stay */
    memcpy(m->params.value, m->backup, forward_extent(m) * sizeof(float));
  cf_namm_project(m, m->params.value);
  if (!cf_all_finite(m->params.value, total)) {
    /* Needs an overflow with finite gradients; undo the weights and the step
     * count (the moments took this finite gradient in and stay finite). */
    memcpy(m->params.value, m->backup, total * sizeof(float));
    m->adam.t--;
    return cf_error_set(err, CF_ERR_NUMERIC,
                        "mirror map: step %ld: the update overflowed; weights kept at their last good values",
                        m->step + 1);
  }
  cf_ema_update(m->ema, m->params.value, total, m->cfg.ema_rate);
  m->step++;
  return CF_OK;
}

/* ---- inference ------------------------------------------------------------------------- */

CfStatus
cf_namm_eval_init(CfNammEval *e, const CfNamm *m, int chunk, CfError *err)
{
  memset(e, 0, sizeof *e);
  if (chunk < 1)
    return cf_error_set(err, CF_ERR_INVALID, "mirror map: evaluation chunk %d must be >= 1", chunk);
  e->cfg = m->cfg;
  e->chunk = chunk;
  cf_params_init(&e->params);
  CfStatus st = CF_ERR_NOMEM;
  if (!net_declare(&e->net, &e->params, &m->cfg) || cf_params_alloc(&e->params) != CF_OK)
    goto fail;
  CF_ASSERT(e->params.total == m->params.total);
  e->gg = cf_graph_new();
  e->gf = cf_graph_new();
  if (!e->gg || !e->gf)
    goto fail;
  e->g_in = cf_input(e->gg, chunk, m->cfg.dim, false);
  e->g_out = cf_namm_build_forward(e->gg, &e->params, &e->net, m->cfg.alpha, e->g_in, NULL);
  e->f_in = cf_input(e->gf, chunk, m->cfg.dim, false);
  e->f_out = cf_namm_build_inverse(e->gf, &e->params, &e->net, e->f_in);
  if (e->g_out < 0 || e->f_out < 0 || cf_graph_finalize(e->gg) != CF_OK || cf_graph_finalize(e->gf) != CF_OK)
    goto fail;
  cf_namm_eval_load(e, m->params.value);
  return CF_OK;
fail:
  cf_namm_eval_clear(e);
  return cf_error_set(err, st, "mirror map: out of memory for the evaluator (chunk %d)", chunk);
}

void
cf_namm_eval_clear(CfNammEval *e)
{
  cf_graph_free(e->gg);
  cf_graph_free(e->gf);
  cf_params_clear(&e->params);
  memset(e, 0, sizeof *e);
}

void
cf_namm_eval_load(CfNammEval *e, const float *arena)
{
  memcpy(e->params.value, arena, e->params.total * sizeof(float));
}

/* out = net(in) chunk by chunk (the last chunk zero-padded). */
static void
run_chunks(CfGraph *g, CfNode in_node, CfNode out_node, int chunk, int d, const float *in, int B, float *out)
{
  float *vin = cf_graph_value(g, in_node);
  for (int r0 = 0; r0 < B; r0 += chunk) {
    int n = B - r0 < chunk ? B - r0 : chunk;
    memcpy(vin, in + (size_t)r0 * d, (size_t)n * d * sizeof(float));
    if (n < chunk)
      memset(vin + (size_t)n * d, 0, (size_t)(chunk - n) * d * sizeof(float));
    cf_graph_forward(g);
    memcpy(out + (size_t)r0 * d, cf_graph_value(g, out_node), (size_t)n * d * sizeof(float));
  }
}

void
cf_namm_eval_forward(CfNammEval *e, const float *x, int B, float *y)
{
  run_chunks(e->gg, e->g_in, e->g_out, e->chunk, e->cfg.dim, x, B, y);
}

void
cf_namm_eval_inverse(CfNammEval *e, const float *y, int B, float *x)
{
  run_chunks(e->gf, e->f_in, e->f_out, e->chunk, e->cfg.dim, y, B, x);
}

double
cf_namm_eval_cycle_error(CfNammEval *e, const float *x, int B, double *per_row)
{
  const int d = e->cfg.dim;
  float *y = cf_alloc_array((size_t)B * d + 1, sizeof(float));
  if (!y)
    return NAN;
  cf_namm_eval_forward(e, x, B, y);
  cf_namm_eval_inverse(e, y, B, y);
  double sum = 0.0;
  for (int i = 0; i < B; i++) {
    double s = 0.0;
    for (int k = 0; k < d; k++)
      s += fabs((double)y[(size_t)i * d + k] - x[(size_t)i * d + k]);
    s /= d;
    if (per_row)
      per_row[i] = s;
    sum += s;
  }
  free(y);
  return B > 0 ? sum / B : 0.0;
}

/* ---- speed ----------------------------------------------------------------------------- */

double
cf_namm_train_flops(const CfNammConfig *c, int B)
{
  const double H = c->icnn_width, d = c->dim, L = c->icnn_depth;
  /* ICNN value + gradient chain: L input layers (x U^T and d U), L-1 hidden
   * (z W^T and d W), each twice */
  double icnn = 2.0 * B * (2.0 * L * H * d + 2.0 * (L - 1) * H * H);
  CfMlp inv = { .in = c->dim, .width = c->inv_width, .depth = c->inv_depth, .out = c->dim };
  double conv = 0.0; /* images: 9 multiply-adds per pixel and channel pair */
  for (int l = 0; l <= c->inv_depth; l++)
    conv += 2.0 * B * c->dim * 9.0 * (l == 0 ? 1 : c->inv_width) * (l == c->inv_depth ? 1 : c->inv_width);
  double fwd = 2.0 * icnn + 2.0 * (c->img_h > 0 ? conv : cf_mlp_flops(&inv, B)); /* g twice, f twice */
  return 3.0 * fwd;
}
