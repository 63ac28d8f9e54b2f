/* Variational auto-encoder with constraint strategies (see vae.h). */
#include "vae.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define LOG_2PI 1.8378770664093454835606594728112
#define VAE_CHUNK 256
#define LN2 0.69314718055994530941723212145818

const char *
cf_vae_strategy_name(CfVaeStrategy s)
{
  switch (s) {
  case CF_VAE_NONE: return "none";
  case CF_VAE_PROJECTION: return "projection";
  case CF_VAE_CONSTRAINED_LAYER: return "constrained-layer";
  case CF_VAE_CGAUSS: return "cgauss";
  }
  return "unknown";
}

CfVaeConfig
cf_vae_default_config(int n)
{
  CfVaeConfig c;
  memset(&c, 0, sizeof c);
  c.n = n;
  c.latent = 8;
  c.width = 64;
  c.depth = 2;
  c.strategy = CF_VAE_NONE;
  c.var_floor = 1e-3f;
  c.act = CF_ACT_SILU;
  c.cgauss_estimator = CF_CGAUSS_ME;
  c.cgauss_drop_logdet_aat = false;
  return c;
}

static void
free_scratch(CfVae *v)
{
  cf_free_aligned(v->gmu);
  cf_free_aligned(v->gs);
  cf_free_aligned(v->tmp);
  free(v->dlogp);
  free(v->logp);
  v->gmu = v->gs = v->tmp = NULL;
  v->dlogp = v->logp = NULL;
  v->scratch_rows = 0;
}

static CfStatus
reserve_scratch(CfVae *v, int rows)
{
  if (rows <= v->scratch_rows)
    return CF_OK;
  free_scratch(v);
  size_t nn = (size_t)rows * (size_t)v->cfg.n;
  v->gmu = cf_alloc_floats(nn);
  v->gs = cf_alloc_floats(nn);
  v->tmp = cf_alloc_floats(nn);
  v->dlogp = cf_calloc_array((size_t)rows, sizeof(double));
  v->logp = cf_calloc_array((size_t)rows, sizeof(double));
  if (!v->gmu || !v->gs || !v->tmp || !v->dlogp || !v->logp) {
    free_scratch(v);
    return CF_ERR_NOMEM;
  }
  v->scratch_rows = rows;
  return CF_OK;
}

CfStatus
cf_vae_init(CfVae *v, const CfVaeConfig *cfg, CfError *err)
{
  CF_ASSERT(v != NULL && cfg != NULL);
  memset(v, 0, sizeof *v);
  cf_params_init(&v->params);
  cf_constraint_init(&v->c);
  cf_projector_init(&v->proj);
  cf_cgauss_init(&v->cg);
  v->t_loss = v->e_out = v->d_mux = -1;
  if (cfg->n < 1 || cfg->latent < 1 || cfg->width < 1 || cfg->depth < 1)
    return cf_error_set(err, CF_ERR_INVALID,
                        "vae: n, latent, width and depth must be >= 1 (got n=%d latent=%d width=%d depth=%d)",
                        cfg->n, cfg->latent, cfg->width, cfg->depth);
  if (cfg->strategy < CF_VAE_NONE || cfg->strategy > CF_VAE_CGAUSS)
    return cf_error_set(err, CF_ERR_INVALID, "vae: unknown strategy %d", (int)cfg->strategy);
  if (!(cfg->var_floor > 0.0f) || !isfinite(cfg->var_floor))
    return cf_error_set(err, CF_ERR_INVALID, "vae: var_floor must be a positive number (got %g)",
                        (double)cfg->var_floor);
  v->cfg = *cfg;
  cf_mlp_declare(&v->enc, &v->params, "enc", cfg->n, cfg->width, cfg->depth, 2 * cfg->latent);
  cf_mlp_declare(&v->dec, &v->params, "dec", cfg->latent, cfg->width, cfg->depth, 2 * cfg->n);
  if (cf_params_alloc(&v->params) != CF_OK)
    return cf_error_set(err, CF_ERR_NOMEM, "vae: cannot allocate %zu parameters", v->params.total);
  v->cg.estimator = cfg->cgauss_estimator;
  v->cg.drop_logdet_aat = cfg->cgauss_drop_logdet_aat;
  return CF_OK;
}

void
cf_vae_clear(CfVae *v)
{
  if (!v)
    return;
  cf_graph_free(v->train);
  cf_graph_free(v->enc_g);
  cf_graph_free(v->dec_g);
  v->train = v->enc_g = v->dec_g = NULL;
  free_scratch(v);
  cf_free_aligned(v->ev_eps);
  cf_free_aligned(v->ev_z);
  cf_free_aligned(v->ev_x);
  free(v->ev_logp);
  v->ev_eps = v->ev_z = v->ev_x = NULL;
  v->ev_logp = NULL;
  cf_params_clear(&v->params);
  cf_constraint_clear(&v->c);
  cf_projector_clear(&v->proj);
  cf_cgauss_clear(&v->cg);
  v->have_constraint = false;
}

void
cf_vae_randomize(CfVae *v, CfRng *rng)
{
  cf_params_randomize(&v->params, rng);
}

CfStatus
cf_vae_set_constraint(CfVae *v, const CfConstraint *c, CfError *err)
{
  CF_ASSERT(v != NULL);
  cf_constraint_clear(&v->c);
  cf_projector_clear(&v->proj);
  cf_cgauss_clear(&v->cg);
  cf_cgauss_init(&v->cg);
  v->cg.estimator = v->cfg.cgauss_estimator;
  v->cg.drop_logdet_aat = v->cfg.cgauss_drop_logdet_aat;
  v->have_constraint = false;
  if (!c)
    return CF_OK;
  if (c->n != v->cfg.n)
    return cf_error_set(err, CF_ERR_SHAPE,
                        "vae: the constraint has %d columns but the data dimension is %d", c->n, v->cfg.n);
  CfConstraintReport rep;
  memset(&rep, 0, sizeof rep);
  CfStatus st = cf_constraint_analyze(c, v->cfg.n, &rep, err);
  if (st == CF_OK && !rep.consistent)
    st = cf_error_set(err, CF_ERR_INCONSISTENT, "vae: the constraint A x = b has no solution (residual %g)",
                      rep.residual);
  if (st == CF_OK)
    st = cf_constraint_reduce(&v->c, c, &rep, err);
  cf_constraint_report_clear(&rep);
  if (st == CF_OK)
    st = cf_projector_setup(&v->proj, &v->c, err);
  if (st == CF_OK)
    st = cf_projector_reserve(&v->proj, VAE_CHUNK) == CF_OK
             ? CF_OK
             : cf_error_set(err, CF_ERR_NOMEM, "vae: cannot allocate the projector");
  /* The layer is also set up for the other strategies when it can be, so
   * their decoder can be evaluated on the subspace (cf_vae_iw_loglik with
   * the strategy switched to CGAUSS: a post-hoc conditioned likelihood). */
  if (st == CF_OK) {
    CfError cerr;
    CfStatus cst = cf_cgauss_setup(&v->cg, &v->c, &cerr);
    if (v->cfg.strategy == CF_VAE_CGAUSS) {
      st = cst;
      if (st != CF_OK && err)
        *err = cerr;
    } else if (cst != CF_OK) {
      cf_cgauss_clear(&v->cg);
      cf_cgauss_init(&v->cg);
    }
  }
  if (st != CF_OK) {
    cf_error_prefix(err, "vae");
    cf_constraint_clear(&v->c);
    cf_projector_clear(&v->proj);
    return st;
  }
  if (v->train_B > 0 && cf_projector_reserve(&v->proj, v->train_B) != CF_OK)
    return cf_error_set(err, CF_ERR_NOMEM, "vae: cannot allocate the projector");
  v->have_constraint = true;
  return CF_OK;
}

/* Decoder head: s = softplus(h) + floor. */
static void
build_decoder(CfVae *v, CfGraph *g, CfNode z, CfNode *mux, CfNode *sx)
{
  const int n = v->cfg.n;
  CfNode o = cf_mlp_build(g, &v->params, &v->dec, z, v->cfg.act);
  *mux = cf_slice_cols(g, o, 0, n);
  *sx = cf_add_scalar(g, cf_softplus(g, cf_slice_cols(g, o, n, n)), v->cfg.var_floor);
}

CfStatus
cf_vae_prepare_train(CfVae *v, int B, CfError *err)
{
  CF_ASSERT(v != NULL && v->params.value != NULL);
  if (B < 1)
    return cf_error_set(err, CF_ERR_INVALID, "vae: training batch size must be >= 1 (got %d)", B);
  cf_graph_free(v->train);
  v->train = NULL;
  v->train_B = 0;
  const int n = v->cfg.n, d = v->cfg.latent;
  CfGraph *g = cf_graph_new();
  if (!g)
    return cf_error_set(err, CF_ERR_NOMEM, "vae: cannot allocate the training graph");
  v->t_x = cf_input(g, B, n, false);
  v->t_eps = cf_input(g, B, d, false);
  v->t_gmu = cf_input(g, B, n, false);
  v->t_gs = cf_input(g, B, n, false);
  CfNode h = cf_mlp_build(g, &v->params, &v->enc, v->t_x, v->cfg.act);
  v->t_muz = cf_slice_cols(g, h, 0, d);
  v->t_lvz = cf_slice_cols(g, h, d, d);
  CfNode sd = cf_exp(g, cf_scale(g, v->t_lvz, 0.5f));
  CfNode z = cf_add(g, v->t_muz, cf_mul(g, sd, v->t_eps));
  build_decoder(v, g, z, &v->t_mux, &v->t_sx);
  /* KL / B without the constant -d/2 (it has no gradient). */
  CfNode kl = cf_scale(g, cf_sum_all(g, cf_sub(g, cf_add(g, cf_exp(g, v->t_lvz), cf_square(g, v->t_muz)), v->t_lvz)),
                       0.5f / (float)B);
  CfNode vjp = cf_add(g, cf_sum_all(g, cf_mul(g, v->t_mux, v->t_gmu)), cf_sum_all(g, cf_mul(g, v->t_sx, v->t_gs)));
  v->t_loss = cf_add(g, vjp, kl);
  if (cf_graph_finalize(g) != CF_OK || reserve_scratch(v, B) != CF_OK) {
    cf_graph_free(g);
    return cf_error_set(err, CF_ERR_NOMEM, "vae: cannot allocate the training graph for batch size %d", B);
  }
  if (v->have_constraint && cf_projector_reserve(&v->proj, B) != CF_OK) {
    cf_graph_free(g);
    return cf_error_set(err, CF_ERR_NOMEM, "vae: cannot allocate the projector");
  }
  v->train = g;
  v->train_B = B;
  return CF_OK;
}

static CfStatus
prepare_eval(CfVae *v, CfError *err)
{
  if (v->enc_g)
    return CF_OK;
  const int n = v->cfg.n, d = v->cfg.latent, R = VAE_CHUNK;
  CfGraph *ge = cf_graph_new(), *gd = cf_graph_new();
  if (!ge || !gd) {
    cf_graph_free(ge);
    cf_graph_free(gd);
    return cf_error_set(err, CF_ERR_NOMEM, "vae: cannot allocate the evaluation graphs");
  }
  v->e_x = cf_input(ge, R, n, false);
  v->e_out = cf_mlp_build(ge, &v->params, &v->enc, v->e_x, v->cfg.act);
  v->d_z = cf_input(gd, R, d, false);
  build_decoder(v, gd, v->d_z, &v->d_mux, &v->d_sx);
  v->ev_eps = cf_alloc_floats((size_t)R * (size_t)(d > n ? d : n));
  v->ev_z = cf_alloc_floats((size_t)R * (size_t)d);
  v->ev_x = cf_alloc_floats((size_t)R * (size_t)n);
  v->ev_logp = cf_calloc_array(R, sizeof(double));
  if (cf_graph_finalize(ge) != CF_OK || cf_graph_finalize(gd) != CF_OK || reserve_scratch(v, R) != CF_OK ||
      !v->ev_eps || !v->ev_z || !v->ev_x || !v->ev_logp) {
    cf_graph_free(ge);
    cf_graph_free(gd);
    return cf_error_set(err, CF_ERR_NOMEM, "vae: cannot allocate the evaluation graphs");
  }
  v->enc_g = ge;
  v->dec_g = gd;
  v->chunk = R;
  return CF_OK;
}

double
cf_vae_kl_std_normal(const float *mu, const float *logvar, int d)
{
  double kl = 0.0;
  for (int j = 0; j < d; j++) {
    double m = mu[j], lv = logvar[j];
    kl += exp(lv) + m * m - 1.0 - lv;
  }
  return 0.5 * kl;
}

static CfStatus
check_data(const CfVae *v, const float *x, int B, CfError *err)
{
  const int n = v->cfg.n;
  for (int b = 0; b < B; b++)
    for (int i = 0; i < n; i++)
      if (!isfinite(x[(size_t)b * n + i]))
        return cf_error_set(err, CF_ERR_NUMERIC, "vae: data row %d, coordinate %d is %s", b, i,
                            isnan(x[(size_t)b * n + i]) ? "NaN" : "infinite");
  if (v->cfg.strategy != CF_VAE_NONE && !v->have_constraint)
    return cf_error_set(err, CF_ERR_INVALID, "vae: strategy '%s' needs a constraint (cf_vae_set_constraint)",
                        cf_vae_strategy_name(v->cfg.strategy));
  if (v->cfg.strategy == CF_VAE_CGAUSS) {
    /* The constrained density lives on the subspace: data must lie on it. */
    const CfConstraint *c = &v->c;
    for (int b = 0; b < B; b++) {
      const float *xb = x + (size_t)b * n;
      double xmax = 0.0;
      for (int i = 0; i < n; i++)
        xmax = fmax(xmax, fabs(xb[i]));
      for (int r = 0; r < c->m; r++) {
        double s = 0.0, an = 0.0;
        for (int i = 0; i < n; i++) {
          s += c->A[(size_t)r * n + i] * xb[i];
          an += fabs(c->A[(size_t)r * n + i]);
        }
        double res = fabs(s - c->b[r]);
        if (res > 1e-4 * (an * xmax + fabs(c->b[r]) + 1.0))
          return cf_error_set(err, CF_ERR_INVALID,
                              "vae: data row %d violates constraint row %d by %g: the cgauss likelihood needs "
                              "data on A x = b (model space)",
                              b, r, res);
      }
    }
  }
  return CF_OK;
}

/* g <- g - Q Q^T g for each of R rows (the linear part of the projection). */
static void
project_linear(const CfProjector *p, float *gr, int R)
{
  const int n = p->n, m = p->m;
  for (int b = 0; b < R; b++) {
    float *g = gr + (size_t)b * n;
    for (int j = 0; j < m; j++) {
      double t = 0.0;
      for (int i = 0; i < n; i++)
        t += (double)p->Q[(size_t)i * m + j] * g[i];
      for (int i = 0; i < n; i++)
        g[i] -= (float)(t * p->Q[(size_t)i * m + j]);
    }
  }
}

/* log p(x|z) for R rows given the decoder outputs; if gmu/gs are non-NULL
 * they receive (=) d(-scale * sum logp)/d(mu, s). `tmp` R x n scratch. */
static CfStatus
decoder_logp(CfVae *v, int R, const float *x, const float *mux, const float *sx, double *logp, float *gmu,
             float *gs, double scale, float *tmp, double *dlogp, CfError *err)
{
  const int n = v->cfg.n;
  const size_t nn = (size_t)R * (size_t)n;
  switch (v->cfg.strategy) {
  case CF_VAE_NONE:
  case CF_VAE_PROJECTION:
    for (int b = 0; b < R; b++) {
      double lp = 0.0;
      for (int i = 0; i < n; i++) {
        size_t o = (size_t)b * n + i;
        double s = sx[o], r = (double)x[o] - mux[o];
        lp += -0.5 * (r * r / s + log(s) + LOG_2PI);
        if (gmu) {
          gmu[o] = (float)(-scale * r / s);
          gs[o] = (float)(scale * 0.5 * (1.0 / s - r * r / (s * s)));
        }
      }
      logp[b] = lp;
    }
    return CF_OK;
  case CF_VAE_CONSTRAINED_LAYER:
    memcpy(tmp, mux, nn * sizeof(float));
    cf_project(&v->proj, tmp, R);
    for (int b = 0; b < R; b++) {
      double lp = 0.0;
      for (int i = 0; i < n; i++) {
        size_t o = (size_t)b * n + i;
        double r = (double)tmp[o] - x[o];
        lp -= fabs(r);
        if (gmu)
          gmu[o] = (float)(scale * (r > 0.0 ? 1.0 : (r < 0.0 ? -1.0 : 0.0)));
      }
      logp[b] = lp - n * LN2;
    }
    if (gmu) {
      project_linear(&v->proj, gmu, R);
      memset(gs, 0, nn * sizeof(float));
    }
    return CF_OK;
  case CF_VAE_CGAUSS: {
    CfStatus st = cf_cgauss_forward(&v->cg, R, mux, sx, CF_CGAUSS_VAR_DIAG, NULL, 0, 0, err);
    if (st != CF_OK) {
      cf_error_prefix(err, "vae");
      return st;
    }
    cf_cgauss_log_density(&v->cg, x, logp);
    if (gmu) {
      memset(gmu, 0, nn * sizeof(float));
      memset(gs, 0, nn * sizeof(float));
      for (int b = 0; b < R; b++)
        dlogp[b] = -scale;
      cf_cgauss_backward_log_density(&v->cg, dlogp, gmu, gs);
    }
    return CF_OK;
  }
  }
  return cf_error_set(err, CF_ERR_INVALID, "vae: unknown strategy");
}

CfStatus
cf_vae_train_step(CfVae *v, const float *x, CfRng *rng, double *out_loss, CfError *err)
{
  CF_ASSERT(v != NULL && x != NULL && rng != NULL);
  if (!v->train)
    return cf_error_set(err, CF_ERR_INVALID, "vae: cf_vae_prepare_train was not called");
  const int B = v->train_B, n = v->cfg.n, d = v->cfg.latent;
  CfStatus st = check_data(v, x, B, err);
  if (st != CF_OK)
    return st;
  CfGraph *g = v->train;
  memcpy(cf_graph_value(g, v->t_x), x, (size_t)B * n * sizeof(float));
  cf_rng_fill_normal(rng, cf_graph_value(g, v->t_eps), (size_t)B * d);
  cf_graph_forward(g);
  const float *muz = cf_graph_value(g, v->t_muz), *lvz = cf_graph_value(g, v->t_lvz);
  const float *mux = cf_graph_value(g, v->t_mux), *sx = cf_graph_value(g, v->t_sx);
  /* muz / lvz are column slices of a (B, 2d) node but stored as their own
   * (B, d) tensors. */
  double kl = 0.0;
  for (int b = 0; b < B; b++)
    kl += cf_vae_kl_std_normal(muz + (size_t)b * d, lvz + (size_t)b * d, d);
  st = decoder_logp(v, B, x, mux, sx, v->logp, v->gmu, v->gs, 1.0 / B, v->tmp, v->dlogp, err);
  if (st != CF_OK)
    return st;
  double rec = 0.0;
  for (int b = 0; b < B; b++)
    rec -= v->logp[b];
  if (v->cfg.strategy == CF_VAE_CONSTRAINED_LAYER)
    rec -= B * n * LN2; /* report the plain L1 loss */
  double loss = (rec + kl) / B;
  if (!isfinite(loss))
    return cf_error_set(err, CF_ERR_NUMERIC, "vae: the loss is not finite (reconstruction %g, KL %g)", rec / B,
                        kl / B);
  memcpy(cf_graph_value(g, v->t_gmu), v->gmu, (size_t)B * n * sizeof(float));
  memcpy(cf_graph_value(g, v->t_gs), v->gs, (size_t)B * n * sizeof(float));
  cf_params_zero_grad(&v->params);
  cf_graph_backward(g, v->t_loss);
  if (out_loss)
    *out_loss = loss;
  return CF_OK;
}

/* Encodes R <= chunk rows of x: muz, lvz (R x d each) copied out. */
static void
encode_chunk(CfVae *v, const float *x, int R, float *muz, float *lvz)
{
  const int n = v->cfg.n, d = v->cfg.latent;
  float *in = cf_graph_value(v->enc_g, v->e_x);
  memcpy(in, x, (size_t)R * n * sizeof(float));
  memset(in + (size_t)R * n, 0, (size_t)(v->chunk - R) * n * sizeof(float));
  cf_graph_forward(v->enc_g);
  const float *o = cf_graph_value(v->enc_g, v->e_out);
  for (int b = 0; b < R; b++) {
    memcpy(muz + (size_t)b * d, o + (size_t)b * 2 * d, (size_t)d * sizeof(float));
    memcpy(lvz + (size_t)b * d, o + (size_t)b * 2 * d + d, (size_t)d * sizeof(float));
  }
}

/* Decodes v->ev_z (R rows, rest zero-padded); returns mux, sx pointers. */
static void
decode_chunk(CfVae *v, int R, const float **mux, const float **sx)
{
  const int d = v->cfg.latent;
  float *in = cf_graph_value(v->dec_g, v->d_z);
  memcpy(in, v->ev_z, (size_t)R * d * sizeof(float));
  memset(in + (size_t)R * d, 0, (size_t)(v->chunk - R) * d * sizeof(float));
  cf_graph_forward(v->dec_g);
  *mux = cf_graph_value(v->dec_g, v->d_mux);
  *sx = cf_graph_value(v->dec_g, v->d_sx);
}

CfStatus
cf_vae_elbo(CfVae *v, const float *x, int B, CfRng *rng, double *out_elbo, double *out_recon, CfError *err)
{
  CF_ASSERT(v != NULL && x != NULL && rng != NULL);
  if (B < 1)
    return cf_error_set(err, CF_ERR_INVALID, "vae: batch size must be >= 1 (got %d)", B);
  CfStatus st = check_data(v, x, B, err);
  if (st == CF_OK)
    st = prepare_eval(v, err);
  if (st != CF_OK)
    return st;
  const int n = v->cfg.n, d = v->cfg.latent, C = v->chunk;
  float *muz = cf_alloc_floats((size_t)C * d), *lvz = cf_alloc_floats((size_t)C * d);
  if (!muz || !lvz) {
    cf_free_aligned(muz);
    cf_free_aligned(lvz);
    return cf_error_set(err, CF_ERR_NOMEM, "vae: out of memory");
  }
  for (int b0 = 0; b0 < B && st == CF_OK; b0 += C) {
    int R = B - b0 < C ? B - b0 : C;
    const float *xr = x + (size_t)b0 * n;
    encode_chunk(v, xr, R, muz, lvz);
    cf_rng_fill_normal(rng, v->ev_eps, (size_t)R * d);
    for (size_t j = 0; j < (size_t)R * d; j++)
      v->ev_z[j] = muz[j] + expf(0.5f * lvz[j]) * v->ev_eps[j];
    const float *mux, *sx;
    decode_chunk(v, R, &mux, &sx);
    st = decoder_logp(v, R, xr, mux, sx, v->ev_logp, NULL, NULL, 0.0, v->tmp, NULL, err);
    for (int b = 0; b < R && st == CF_OK; b++) {
      double kl = cf_vae_kl_std_normal(muz + (size_t)b * d, lvz + (size_t)b * d, d);
      if (out_elbo)
        out_elbo[b0 + b] = v->ev_logp[b] - kl;
      if (out_recon)
        out_recon[b0 + b] = -v->ev_logp[b] - (v->cfg.strategy == CF_VAE_CONSTRAINED_LAYER ? n * LN2 : 0.0);
    }
  }
  cf_free_aligned(muz);
  cf_free_aligned(lvz);
  return st;
}

CfStatus
cf_vae_iw_loglik(CfVae *v, const float *x, int B, int K, CfRng *rng, double *out, CfError *err)
{
  CF_ASSERT(v != NULL && x != NULL && rng != NULL && out != NULL);
  if (B < 1 || K < 1)
    return cf_error_set(err, CF_ERR_INVALID, "vae: batch size and K must be >= 1 (got %d, %d)", B, K);
  CfStatus st = check_data(v, x, B, err);
  if (st == CF_OK)
    st = prepare_eval(v, err);
  if (st != CF_OK)
    return st;
  const int n = v->cfg.n, d = v->cfg.latent, C = v->chunk;
  float *muz = cf_alloc_floats((size_t)d), *lvz = cf_alloc_floats((size_t)d);
  double *lw = cf_alloc_array((size_t)K, sizeof(double));
  if (!muz || !lvz || !lw) {
    cf_free_aligned(muz);
    cf_free_aligned(lvz);
    free(lw);
    return cf_error_set(err, CF_ERR_NOMEM, "vae: out of memory");
  }
  for (int b = 0; b < B && st == CF_OK; b++) {
    const float *xb = x + (size_t)b * n;
    encode_chunk(v, xb, 1, muz, lvz);
    for (int k0 = 0; k0 < K && st == CF_OK; k0 += C) {
      int R = K - k0 < C ? K - k0 : C;
      cf_rng_fill_normal(rng, v->ev_eps, (size_t)R * d);
      for (int r = 0; r < R; r++) {
        double lq = 0.0, lpz = 0.0;
        for (int j = 0; j < d; j++) {
          float e = v->ev_eps[(size_t)r * d + j];
          float z = muz[j] + expf(0.5f * lvz[j]) * e;
          v->ev_z[(size_t)r * d + j] = z;
          lq += -0.5 * ((double)e * e + lvz[j] + LOG_2PI);
          lpz += -0.5 * ((double)z * z + LOG_2PI);
        }
        lw[k0 + r] = lpz - lq;
        memcpy(v->ev_x + (size_t)r * n, xb, (size_t)n * sizeof(float));
      }
      const float *mux, *sx;
      decode_chunk(v, R, &mux, &sx);
      st = decoder_logp(v, R, v->ev_x, mux, sx, v->ev_logp, NULL, NULL, 0.0, v->tmp, NULL, err);
      for (int r = 0; r < R && st == CF_OK; r++)
        lw[k0 + r] += v->ev_logp[r];
    }
    if (st != CF_OK)
      break;
    double mx = -INFINITY;
    for (int k = 0; k < K; k++)
      mx = fmax(mx, lw[k]);
    double s = 0.0;
    for (int k = 0; k < K; k++)
      s += exp(lw[k] - mx);
    out[b] = mx + log(s / K);
  }
  cf_free_aligned(muz);
  cf_free_aligned(lvz);
  free(lw);
  return st;
}

CfStatus
cf_vae_sample(CfVae *v, int n_samples, CfRng *rng, float *out, float *mean_out, CfError *err)
{
  CF_ASSERT(v != NULL && rng != NULL && out != NULL);
  if (n_samples < 1)
    return cf_error_set(err, CF_ERR_INVALID, "vae: number of samples must be >= 1 (got %d)", n_samples);
  if (v->cfg.strategy != CF_VAE_NONE && !v->have_constraint)
    return cf_error_set(err, CF_ERR_INVALID, "vae: strategy '%s' needs a constraint (cf_vae_set_constraint)",
                        cf_vae_strategy_name(v->cfg.strategy));
  CfStatus st = prepare_eval(v, err);
  if (st != CF_OK)
    return st;
  const int n = v->cfg.n, d = v->cfg.latent, C = v->chunk;
  for (int b0 = 0; b0 < n_samples; b0 += C) {
    int R = n_samples - b0 < C ? n_samples - b0 : C;
    float *o = out + (size_t)b0 * n;
    cf_rng_fill_normal(rng, v->ev_z, (size_t)R * d);
    const float *mux, *sx;
    decode_chunk(v, R, &mux, &sx);
    size_t nn = (size_t)R * n;
    if (mean_out)
      memcpy(mean_out + (size_t)b0 * n, mux, nn * sizeof(float));
    switch (v->cfg.strategy) {
    case CF_VAE_NONE:
    case CF_VAE_PROJECTION:
      cf_rng_fill_normal(rng, v->ev_eps, nn);
      for (size_t j = 0; j < nn; j++)
        o[j] = mux[j] + sqrtf(sx[j]) * v->ev_eps[j];
      if (v->cfg.strategy == CF_VAE_PROJECTION)
        cf_project(&v->proj, o, R);
      break;
    case CF_VAE_CONSTRAINED_LAYER:
      memcpy(o, mux, nn * sizeof(float));
      cf_project(&v->proj, o, R);
      break;
    case CF_VAE_CGAUSS:
      st = cf_cgauss_forward(&v->cg, R, mux, sx, CF_CGAUSS_VAR_DIAG, NULL, 0, 0, err);
      if (st != CF_OK) {
        cf_error_prefix(err, "vae");
        return st;
      }
      cf_cgauss_sample(&v->cg, NULL, rng);
      memcpy(o, v->cg.z, nn * sizeof(float));
      break;
    }
  }
  return CF_OK;
}
