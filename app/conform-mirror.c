/* Non-linear constraints and strategy mirror in the engine (see
 * conform-mirror.h and core/namm.h).
 *
 * Equations are typed over raw coordinates x. The engine keeps them in raw
 * space (metrics, the projection baseline) and rewritten for model space
 * u = (x - mean) / scale (x = scale .* u + mean: cf_expr_set_affine), where
 * the mirror maps train, so both measure the same distance sum_j |r_j|.
 *
 * Strategy mirror runs in two phases on one step counter:
 *   steps 1 .. mirror.steps: the maps g (ICNN gradient) and f (residual MLP)
 *     on minibatches of the model-space training data;
 *   then, once: mtrain = g_EMA(train) (the mirror-space training data), and
 *   steps mirror.steps + 1 .. + train.steps: the diffusion model on mtrain.
 * Sampling draws in mirror space and maps back with f_EMA. */
#define G_LOG_DOMAIN "conform"

#include "conform-mirror.h"

#include <math.h>
#include <string.h>

#include "conform-engine-private.h"
#include "conform-image-data.h"

#define NAMM_GOOD_EVERY 50
#define EQ_PROJECT_TOL 1e-9
#define EQ_PROJECT_ITERS 60

gboolean
conform_equations_parse(const char *text, int dim, CfExprSet *s, GError **error)
{
  cf_expr_set_init(s);
  g_autofree char *t = g_strdup(text ? text : "");
  for (char *p = t; *p; p++)
    if (*p == ';')
      *p = '\n';
  CfError err;
  if (cf_expr_parse(s, t, strlen(t), dim, &err) != CF_OK) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_USAGE, "constraint.equations: %s", err.msg);
    return FALSE;
  }
  return TRUE;
}

/* ---- equations in a ConstraintSet ----------------------------------------------- */

gboolean
cset_set_equations(ConstraintSet *cs, const char *text, int dim, const CfNorm *norm, GError **error)
{
  if (cs->has_eq) {
    cf_expr_set_clear(&cs->eq_raw);
    cf_expr_set_clear(&cs->eq_model);
    cs->has_eq = FALSE;
  }
  if (!text || !text[0])
    return TRUE;
  if (!conform_equations_parse(text, dim, &cs->eq_raw, error))
    return FALSE;
  CfError err;
  if (!conform_equations_parse(text, dim, &cs->eq_model, error) ||
      cf_expr_set_affine(&cs->eq_model, norm->scale, norm->mean, &err) != CF_OK) {
    if (cs->eq_model.n_eq > 0)
      g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_INPUT, "constraint.equations: %s", err.msg);
    cf_expr_set_clear(&cs->eq_raw);
    cf_expr_set_clear(&cs->eq_model);
    return FALSE;
  }
  cs->has_eq = TRUE;
  return TRUE;
}

gboolean
cset_active(const ConstraintSet *cs)
{
  return cs->raw.m > 0 || cs->has_eq;
}

void
cset_violation(const ConstraintSet *cs, const float *x, int n, double *l2, double *linf)
{
  if (!cs->has_eq) {
    cf_constraint_violation(&cs->raw, x, n, l2, linf);
    return;
  }
  /* equations: the distance sum_j |r_j| and max_j |r_j|; a point outside
   * an operation's domain (NaN) counts as infinitely far */
  const CfExprSet *s = &cs->eq_raw;
  double *work = g_new(double, cf_expr_work_doubles(s) + (gsize)s->dim + (gsize)s->n_eq);
  double *xd = work + cf_expr_work_doubles(s), *r = xd + s->dim;
  for (int i = 0; i < n; i++) {
    for (int c = 0; c < s->dim; c++)
      xd[c] = x[(gsize)i * s->dim + c];
    cf_expr_eval(s, xd, r, NULL, work);
    double sum = 0.0, mx = 0.0;
    for (int j = 0; j < s->n_eq; j++) {
      double a = isnan(r[j]) ? INFINITY : fabs(r[j]);
      sum += a;
      mx = fmax(mx, a);
    }
    if (l2)
      l2[i] = sum;
    if (linf)
      linf[i] = mx;
  }
  g_free(work);
}

double
cset_tolerance(const ConstraintSet *cs, double tol_rel)
{
  return cs->has_eq ? tol_rel : cf_violation_tolerance(tol_rel, cs->raw.b, cs->raw.m);
}

int
cset_project_equations(ConstraintSet *cs, float *x, int n)
{
  int failed = 0;
  if (cs->has_eq)
    (void)cf_expr_project(&cs->eq_raw, x, n, EQ_PROJECT_TOL, EQ_PROJECT_ITERS, &failed, NULL);
  return failed;
}

/* "Feasible in the data's range": the Gauss-Newton projections of up to 256
 * training rows land inside the data's bounding box widened by half its
 * extent. If none does, the equations have no point where the data are
 * (e.g. x0^2 + x1^2 = 100 for data within [-3, 3]^2). */
char *
engine_equations_feasibility(ConformEngine *e)
{
  if (!e->cs.has_eq || e->train.n < 1)
    return NULL;
  const int dim = e->dim, n = MIN(e->train.n, 256), stride = MAX(1, e->train.n / n);
  float *x = g_new(float, (gsize)n * dim);
  for (int i = 0; i < n; i++)
    memcpy(x + (gsize)i * dim, e->train.x + (gsize)i * stride * dim, sizeof(float) * dim);
  cf_norm_invert(&e->norm, x, n);
  double *lo = g_new(double, dim), *hi = g_new(double, dim);
  for (int c = 0; c < dim; c++) {
    lo[c] = INFINITY;
    hi[c] = -INFINITY;
    for (int i = 0; i < n; i++) {
      lo[c] = fmin(lo[c], x[(gsize)i * dim + c]);
      hi[c] = fmax(hi[c], x[(gsize)i * dim + c]);
    }
  }
  double *before = g_new(double, n);
  cset_violation(&e->cs, x, n, before, NULL);
  float *p = g_memdup2(x, sizeof(float) * (gsize)n * dim);
  int failed = cset_project_equations(&e->cs, p, n);
  int inside = 0;
  for (int i = 0; i < n; i++) {
    gboolean moved = FALSE, in = TRUE;
    for (int c = 0; c < dim; c++) {
      double w = 0.5 * (hi[c] - lo[c]) + 1e-6;
      float v = p[(gsize)i * dim + c];
      moved |= v != x[(gsize)i * dim + c];
      in &= v >= lo[c] - w && v <= hi[c] + w;
    }
    inside += (moved || before[i] <= EQ_PROJECT_TOL) && in;
  }
  char *msg = NULL;
  if (inside == 0) {
    GString *box = g_string_new(NULL);
    for (int c = 0; c < MIN(dim, 4); c++)
      g_string_append_printf(box, "%sx%d in [%.3g, %.3g]", c ? ", " : "", c, lo[c], hi[c]);
    if (dim > 4)
      g_string_append(box, ", ...");
    msg = g_strdup_printf("constraint.equations: no point of the set was found where the data are (%s): %d of %d "
                          "projections did not converge, the rest landed far outside; the constraint may be "
                          "infeasible for these data",
                          box->str, failed, n);
    g_string_free(box, TRUE);
  }
  g_free(lo);
  g_free(hi);
  g_free(before);
  g_free(p);
  g_free(x);
  return msg;
}

/* ---- strategy mirror ------------------------------------------------------------------ */

static CfNammConfig
namm_config(const ConformConfig *cfg, int dim)
{
  CfNammConfig c = cf_namm_default_config(dim);
  c.batch = cfg->mirror_batch;
  c.lr = (float)cfg->mirror_lr;
  c.alpha = (float)cfg->mirror_alpha;
  c.lambda_cyc = (float)cfg->mirror_lambda_cyc;
  c.lambda_constr = (float)cfg->mirror_lambda_constr;
  c.lambda_reg = (float)cfg->mirror_lambda_reg;
  c.sigma_max = (float)cfg->mirror_sigma_max;
  c.icnn_width = cfg->mirror_width;
  c.icnn_depth = cfg->mirror_depth;
  c.inv_width = cfg->mirror_inv_width;
  c.inv_depth = cfg->mirror_inv_depth;
  c.ema_rate = (float)cfg->mirror_ema;
  if (conform_image_source_is(cfg->data)) /* images: a convolutional inverse map */
    c.img_h = c.img_w = cfg->image_size;
  return c;
}

static void
namm_remember(ConformEngine *e)
{
  const size_t bytes = e->namm->params.total * sizeof(float);
  memcpy(e->namm_good, e->namm->params.value, bytes);
  memcpy(e->namm_good + e->namm->params.total, e->namm->ema, bytes);
  memcpy(e->namm_good + 2 * e->namm->params.total, e->namm->adam.m, bytes);
  memcpy(e->namm_good + 3 * e->namm->params.total, e->namm->adam.v, bytes);
  e->namm_good_step = e->step;
  e->namm_good_t = e->namm->adam.t;
}

static void
namm_restore(ConformEngine *e)
{
  const size_t np = e->namm->params.total, bytes = np * sizeof(float);
  memcpy(e->namm->params.value, e->namm_good, bytes);
  memcpy(e->namm->ema, e->namm_good + np, bytes);
  memcpy(e->namm->adam.m, e->namm_good + 2 * np, bytes);
  memcpy(e->namm->adam.v, e->namm_good + 3 * np, bytes);
  e->namm->adam.t = e->namm_good_t;
  e->namm->step = e->namm_good_step;
  e->step = e->namm_good_step;
  guint keep = e->records->len;
  while (keep > 0 && g_array_index(e->records, ConformTrainRecord, keep - 1).step > e->step)
    keep--;
  g_array_set_size(e->records, keep);
}

gboolean
engine_mirror_setup(ConformEngine *e, GError **error)
{
  if (g_strcmp0(e->cfg.strategy, "mirror") != 0)
    return TRUE;
  CfError err;
  CfNammConfig c = namm_config(&e->cfg, e->dim);
  e->namm = g_new0(CfNamm, 1);
  if (cf_namm_init(e->namm, &c, &err) != CF_OK) {
    g_clear_pointer(&e->namm, g_free);
    return core_error(error, CONFORM_ERROR_USAGE, &err);
  }
  CfRng rng;
  cf_rng_seed_stream(&rng, e->cfg.seed, STREAM_MIRROR);
  cf_namm_randomize(e->namm, &rng);
  cf_rng_seed_stream(&e->rng_mirror, e->cfg.seed, STREAM_MIRROR + 1);
  CfNammConstraint con = {.expr = e->cs.has_eq ? &e->cs.eq_model : NULL, .lin = e->cs.has_eq ? NULL : &e->cs.model};
  if (cf_namm_prepare_train(e->namm, c.batch, &con, &err) != CF_OK)
    return core_error(error, CONFORM_ERROR_INPUT, &err);
  e->namm_batch = g_new(float, (gsize)c.batch * e->dim);
  e->namm_good = cf_alloc_floats(4 * e->namm->params.total);
  if (!e->namm_good) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_INPUT, "out of memory for the mirror maps");
    return FALSE;
  }
  namm_remember(e);
  return TRUE;
}

/* The constraint changed (editor): the maps' loss follows it. The maps
 * trained so far stay; the mirror-space data are not recomputed. */
CfStatus
engine_mirror_constraint(ConformEngine *e, const ConstraintSet *cs, CfError *err)
{
  if (!e->namm)
    return CF_OK;
  if (!cset_active(cs))
    return cf_error_set(err, CF_ERR_INVALID, "strategy mirror needs a constraint; Reset with strategy none to drop it");
  CfNammConstraint con = {.expr = cs->has_eq ? &cs->eq_model : NULL, .lin = cs->has_eq ? NULL : &cs->model};
  return cf_namm_prepare_train(e->namm, e->namm->cfg.batch, &con, err);
}

void
engine_mirror_clear(ConformEngine *e)
{
  if (e->namm) {
    cf_namm_clear(e->namm);
    g_free(e->namm);
    e->namm = NULL;
  }
  g_clear_pointer(&e->namm_batch, g_free);
  g_clear_pointer(&e->namm_good, cf_free_aligned);
  g_clear_pointer(&e->mtrain, g_free);
  g_clear_pointer(&e->ft_samples, g_free);
}

int
engine_mirror_phase(const ConformEngine *e)
{
  if (!e->namm)
    return 0;
  if (e->step < e->cfg.mirror_steps)
    return 1;
  return e->step >= (long)e->cfg.mirror_steps + e->cfg.steps && e->cfg.mirror_finetune_steps > 0 ? 2 : 0;
}

long
engine_model_step(const ConformEngine *e)
{
  return e->namm ? CLAMP(e->step - e->cfg.mirror_steps, 0, (long)e->cfg.steps) : e->step;
}

/* Finetuning: mirror_finetune_samples mirror-space samples of the
 * diffusion model (EMA weights, DDIM 50, own RNG stream) and f's graph. */
static gboolean
finetune_prepare(ConformEngine *e, GError **error)
{
  CfError err;
  const int n = e->cfg.mirror_finetune_samples, dim = e->dim;
  CfDdpmEval ev;
  if (cf_ddpm_eval_init(&ev, &e->model, 512, &err) != CF_OK)
    return core_error(error, CONFORM_ERROR_INPUT, &err);
  cf_ddpm_eval_load(&ev, e->ema ? e->ema : e->params->value);
  g_free(e->ft_samples);
  e->ft_samples = g_try_new(float, (gsize)n * dim);
  CfSamplerConfig sc = {.kind = CF_SAMPLER_DDIM, .steps = MIN(50, e->model.sched.T), .eta = 0.0f,
                        .clip = (float)e->cfg.x0_clip};
  CfRng rng;
  cf_rng_seed_stream(&rng, e->cfg.seed, STREAM_MIRROR + 2);
  CfStatus st = e->ft_samples ? cf_ddpm_sample(&e->model.sched, &sc, dim, n, cf_ddpm_eval_eps, &ev, NULL, NULL, &rng,
                                               e->ft_samples, NULL, NULL, NULL, NULL, &err)
                              : cf_error_set(&err, CF_ERR_NOMEM, "out of memory for %d finetuning samples", n);
  cf_ddpm_eval_clear(&ev);
  if (st != CF_OK) {
    g_clear_pointer(&e->ft_samples, g_free);
    return core_error(error, CONFORM_ERROR_INPUT, &err);
  }
  CfNammConstraint con = {.expr = e->cs.has_eq ? &e->cs.eq_model : NULL, .lin = e->cs.has_eq ? NULL : &e->cs.model};
  if (cf_namm_prepare_finetune(e->namm, e->namm->cfg.batch, &con, &err) != CF_OK)
    return core_error(error, CONFORM_ERROR_INPUT, &err);
  return TRUE;
}

gboolean
engine_mirror_map_data(ConformEngine *e, GError **error)
{
  CfError err;
  CfNammEval ev;
  if (cf_namm_eval_init(&ev, e->namm, 512, &err) != CF_OK)
    return core_error(error, CONFORM_ERROR_INPUT, &err);
  cf_namm_eval_load(&ev, e->namm->ema);
  g_free(e->mtrain);
  e->mtrain = g_try_new(float, (gsize)e->train.n * e->dim);
  if (e->mtrain)
    cf_namm_eval_forward(&ev, e->train.x, e->train.n, e->mtrain);
  cf_namm_eval_clear(&ev);
  if (!e->mtrain) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_INPUT, "out of memory for the mirror-space training data");
    return FALSE;
  }
  if (!cf_all_finite(e->mtrain, (size_t)e->train.n * e->dim)) {
    g_clear_pointer(&e->mtrain, g_free);
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_NUMERIC,
                "the mirror map g gives non-finite values on the training data; train the maps again with a smaller "
                "mirror.lr");
    return FALSE;
  }
  return TRUE;
}

gboolean
engine_mirror_step(ConformEngine *e, ConformTrainRecord *r, GError **error)
{
  CfNamm *m = e->namm;
  const int B = m->cfg.batch, dim = e->dim, phase = engine_mirror_phase(e);
  if (phase == 2 && !m->finetune) { /* entering the finetuning: samples, f's graph, a fresh optimiser */
    if (!finetune_prepare(e, error))
      return FALSE;
    cf_adam_reset(&m->adam);
    namm_remember(e);
  }
  const float *src = phase == 2 ? e->ft_samples : e->train.x;
  const int n_src = phase == 2 ? e->cfg.mirror_finetune_samples : e->train.n;
  for (int i = 0; i < B; i++) {
    uint64_t k = cf_rng_below(&e->rng_mirror, (uint64_t)n_src);
    memcpy(e->namm_batch + (size_t)i * dim, src + (size_t)k * dim, sizeof(float) * dim);
  }
  if (e->inject_nan_step == e->step + 1) {
    m->params.value[0] = NAN;
    e->inject_nan_step = 0;
  }
  CfNammLosses l;
  CfError err;
  CfStatus st = cf_namm_train_step(m, e->namm_batch, &e->rng_mirror, &l, &err);
  if (st != CF_OK) {
    long bad = e->step + 1;
    namm_restore(e);
    g_set_error(error, CONFORM_ERROR, st == CF_ERR_NUMERIC ? CONFORM_ERROR_NUMERIC : CONFORM_ERROR_INPUT,
                "mirror-map training stopped at step %ld (%s); the maps are back at step %ld (try a smaller mirror.lr)",
                bad, err.msg, e->step);
    return FALSE;
  }
  e->step++;
  if (e->step % NAMM_GOOD_EVERY == 0)
    namm_remember(e);
  *r = (ConformTrainRecord){.step = e->step, .loss = l.total, .lr = m->cfg.lr, .grad_norm = (float)l.grad_norm};
  r->namm = phase;
  r->namm_cyc = l.cyc;
  r->namm_constr = l.constr;
  r->namm_reg = l.reg;
  if (e->step == e->cfg.mirror_steps && !engine_mirror_map_data(e, error))
    return FALSE;
  return TRUE;
}

int
engine_mirror_arenas(const ConformEngine *e, CfCkptArena *out)
{
  if (!e->namm)
    return 0;
  const size_t np = e->namm->params.total;
  out[0] = (CfCkptArena){"namm.params", np, e->namm->params.value};
  out[1] = (CfCkptArena){"namm.ema", np, e->namm->ema};
  out[2] = (CfCkptArena){"namm.adam.m", np, e->namm->adam.m};
  out[3] = (CfCkptArena){"namm.adam.v", np, e->namm->adam.v};
  return 4;
}

char *
engine_mirror_header(const ConformEngine *e)
{
  if (!e->namm)
    return g_strdup("");
  return g_strdup_printf("namm_params=%zu\nnamm_step=%ld\nnamm_adam_t=%ld\n", e->namm->params.total, e->namm->step,
                         e->namm->adam.t);
}

gboolean
engine_mirror_load(ConformEngine *e, const CfCheckpoint *ck, const char *path, GError **error)
{
  if (!e->namm)
    return TRUE;
  const char *names[4] = {"namm.params", "namm.ema", "namm.adam.m", "namm.adam.v"};
  float *dst[4] = {e->namm->params.value, e->namm->ema, e->namm->adam.m, e->namm->adam.v};
  const size_t np = e->namm->params.total;
  for (int i = 0; i < 4; i++) {
    const CfCkptArena *a = cf_checkpoint_find(ck, names[i]);
    if (!a || a->count != np || !cf_all_finite(a->data, np)) {
      g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_INPUT,
                  "%s: the mirror maps' arena '%s' is %s (this experiment's maps need %zu values)", path, names[i],
                  !a ? "missing" : a->count != np ? "of another size" : "not finite", np);
      return FALSE;
    }
    memcpy(dst[i], a->data, np * sizeof(float));
  }
  g_autofree char *step = cf_checkpoint_header_get(ck, "namm_step");
  g_autofree char *t = cf_checkpoint_header_get(ck, "namm_adam_t");
  e->namm->step = step ? strtol(step, NULL, 10) : MIN(e->step, e->cfg.mirror_steps);
  e->namm->adam.t = t ? strtol(t, NULL, 10) : e->namm->step;
  if (e->step >= e->cfg.mirror_steps && !engine_mirror_map_data(e, error))
    return FALSE;
  /* inside the finetuning: the same samples again (same stream), Adam as saved */
  if (e->step > (long)e->cfg.mirror_steps + e->cfg.steps && e->cfg.mirror_finetune_steps > 0 &&
      !finetune_prepare(e, error))
    return FALSE;
  namm_remember(e);
  return TRUE;
}

/* ---- sampling ------------------------------------------------------------------------ */

gboolean
sampler_mirror_init(ConformSampler *s, const ConformEngine *e, GError **error)
{
  if (!e->namm)
    return TRUE;
  CfError err;
  s->namm = g_new0(CfNammEval, 1);
  if (cf_namm_eval_init(s->namm, e->namm, 512, &err) != CF_OK) {
    g_clear_pointer(&s->namm, g_free);
    return core_error(error, CONFORM_ERROR_INPUT, &err);
  }
  cf_namm_eval_load(s->namm, e->namm->ema);
  return TRUE;
}

void
sampler_mirror_clear(ConformSampler *s)
{
  if (s->namm) {
    cf_namm_eval_clear(s->namm);
    g_free(s->namm);
    s->namm = NULL;
  }
}

/* The regular grid over box {x0 lo, hi, x1 lo, hi}: GRID_LINES horizontal
 * lines, then GRID_LINES vertical ones, GRID_POINTS points each. */
static void
grid_lines(const float *box, float *out)
{
  const int L = CONFORM_MIRROR_GRID_LINES, P = CONFORM_MIRROR_GRID_POINTS;
  for (int dir = 0; dir < 2; dir++)
    for (int l = 0; l < L; l++)
      for (int p = 0; p < P; p++) {
        float a = (float)l / (L - 1), t = (float)p / (P - 1);
        float *o = out + ((size_t)(dir * L + l) * P + p) * 2;
        /* dir 0: x1 fixed (horizontal), x0 runs; dir 1: x0 fixed */
        float u = dir == 0 ? t : a, v = dir == 0 ? a : t;
        o[0] = box[0] + u * (box[1] - box[0]);
        o[1] = box[2] + v * (box[3] - box[2]);
      }
}

static void
box_of(const float *x, int n, float *box)
{
  box[0] = box[2] = INFINITY;
  box[1] = box[3] = -INFINITY;
  for (int i = 0; i < n; i++)
    for (int c = 0; c < 2; c++) {
      float v = x[2 * i + c];
      if (!isfinite(v))
        continue;
      box[2 * c] = fminf(box[2 * c], v);
      box[2 * c + 1] = fmaxf(box[2 * c + 1], v);
    }
  for (int c = 0; c < 2; c++) {
    if (!(box[2 * c] <= box[2 * c + 1])) {
      box[2 * c] = -1.0f;
      box[2 * c + 1] = 1.0f;
    }
    float w = 0.1f * (box[2 * c + 1] - box[2 * c]) + 1e-3f;
    box[2 * c] -= w;
    box[2 * c + 1] += w;
  }
}

void
sampler_mirror_views(ConformSampler *s, ConformSampleSet *r)
{
  if (!s->namm)
    return;
  /* samples in mirror space: model units -> raw units */
  if (r->mirror)
    cf_norm_invert(&s->norm, r->mirror, r->n);
  if (s->dim != 2)
    return;
  const int n = MIN(s->ref.n, 2000), G = 2 * CONFORM_MIRROR_GRID_LINES * CONFORM_MIRROR_GRID_POINTS;
  r->n_mirror_ref = n;
  r->mirror_ref = g_memdup2(s->ref.x, sizeof(float) * 2 * (gsize)n);
  box_of(r->mirror_ref, n, r->box_data);
  cf_norm_apply(&s->norm, r->mirror_ref, n);
  cf_namm_eval_forward(s->namm, r->mirror_ref, n, r->mirror_ref);
  cf_norm_invert(&s->norm, r->mirror_ref, n);
  box_of(r->mirror_ref, n, r->box_mirror);
  r->grid_g = g_new(float, 2 * (gsize)G);
  grid_lines(r->box_data, r->grid_g);
  cf_norm_apply(&s->norm, r->grid_g, G);
  cf_namm_eval_forward(s->namm, r->grid_g, G, r->grid_g);
  cf_norm_invert(&s->norm, r->grid_g, G);
  r->grid_f = g_new(float, 2 * (gsize)G);
  grid_lines(r->box_mirror, r->grid_f);
  cf_norm_apply(&s->norm, r->grid_f, G);
  cf_namm_eval_inverse(s->namm, r->grid_f, G, r->grid_f);
  cf_norm_invert(&s->norm, r->grid_f, G);
}

double
sampler_mirror_cycle_error(ConformSampler *s)
{
  if (!s->namm || s->ref.n < 1)
    return NAN;
  const int n = MIN(s->ref.n, 2000), dim = s->dim;
  float *x = g_memdup2(s->ref.x, sizeof(float) * (gsize)n * dim);
  cf_norm_apply(&s->norm, x, n);
  cf_namm_eval_forward(s->namm, x, n, x);
  cf_namm_eval_inverse(s->namm, x, n, x);
  cf_norm_invert(&s->norm, x, n);
  double sum = 0.0;
  for (gsize i = 0; i < (gsize)n * dim; i++)
    sum += fabs((double)x[i] - s->ref.x[i]);
  g_free(x);
  return sum / ((double)n * dim);
}

void
sampler_mirror_noisy_cycle(ConformSampler *s, float *x, int n, CfRng *rng)
{
  const int dim = s->dim;
  const float sigma_max = (float)s->cfg.mirror_sigma_max;
  for (int i = 0; i < n; i++)
    memcpy(x + (gsize)i * dim, s->ref.x + (gsize)(i % s->ref.n) * dim, sizeof(float) * dim);
  cf_norm_apply(&s->norm, x, n);
  cf_namm_eval_forward(s->namm, x, n, x);
  for (int i = 0; i < n; i++) {
    float sigma = sigma_max * (float)cf_rng_uniform(rng);
    for (int c = 0; c < dim; c++)
      x[(gsize)i * dim + c] += sigma * (float)cf_rng_normal(rng);
  }
  cf_namm_eval_inverse(s->namm, x, n, x);
}
