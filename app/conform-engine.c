#define G_LOG_DOMAIN "conform"

#include "conform-engine-private.h"

#include <cblas.h>
#include <glib/gstdio.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "checkpoint.h"
#include "conform-image-data.h"
#include "conform-images.h"
#include "conform-io.h"
#include "conform-presets.h"
#include "idx.h"

#define RECORD_EVERY 10
#define GOOD_EVERY 50
#define MAX_FILE_BYTES ((gsize)2 << 30)

void
cset_init(ConstraintSet *cs)
{
  cf_constraint_init(&cs->raw);
  cf_constraint_init(&cs->model);
  cf_projector_init(&cs->proj_raw);
  cf_projector_init(&cs->proj_model);
  cs->nx = 0;
  cf_cgauss_init(&cs->out_raw);
  cf_cgauss_init(&cs->out_model);
  cs->ax_raw = cs->ax_model = NULL;
  cs->has_eq = FALSE;
  cf_expr_set_init(&cs->eq_raw);
  cf_expr_set_init(&cs->eq_model);
}

void
cset_clear(ConstraintSet *cs)
{
  cf_constraint_clear(&cs->raw);
  cf_constraint_clear(&cs->model);
  cf_projector_clear(&cs->proj_raw);
  cf_projector_clear(&cs->proj_model);
  cf_cgauss_clear(&cs->out_raw);
  cf_cgauss_clear(&cs->out_model);
  g_free(cs->ax_raw);
  g_free(cs->ax_model);
  cs->ax_raw = cs->ax_model = NULL;
  cf_expr_set_clear(&cs->eq_raw);
  cf_expr_set_clear(&cs->eq_model);
  cs->has_eq = FALSE;
}

/* Splits c = [A_x | B] at column nx: the layer on [B | b] and A_x. */
static CfStatus
out_setup(CfCgauss *g, double **ax, const CfConstraint *c, int nx, CfError *err)
{
  const int m = c->m, ny = c->n - nx;
  double *B = g_new(double, (gsize)m * ny);
  *ax = g_new(double, (gsize)m * MAX(nx, 1));
  for (int i = 0; i < m; i++) {
    memcpy(B + (gsize)i * ny, c->A + (gsize)i * c->n + nx, sizeof(double) * ny);
    memcpy(*ax + (gsize)i * nx, c->A + (gsize)i * c->n, sizeof(double) * nx);
  }
  CfConstraint out;
  cf_constraint_init(&out);
  CfStatus st = cf_constraint_set(&out, m, ny, B, c->b, err);
  g_free(B);
  if (st == CF_OK)
    st = cf_cgauss_setup(g, &out, err);
  if (st != CF_OK && nx > 0)
    cf_error_prefix(err, "the outputs' block of the constraint (columns %d-%d, after %d input%s)", nx + 1, c->n, nx,
                    nx == 1 ? "" : "s");
  cf_constraint_clear(&out);
  return st;
}

CfStatus
cset_build(ConstraintSet *cs, const CfConstraint *raw, const CfNorm *norm, int nx, CfError *err)
{
  cset_clear(cs);
  cset_init(cs);
  cs->nx = nx;
  if (!raw || raw->m == 0)
    return CF_OK;
  CfStatus st = cf_constraint_copy(&cs->raw, raw, err);
  if (st == CF_OK)
    st = cf_constraint_to_model_space(&cs->model, &cs->raw, norm->mean, norm->scale, err);
  if (st == CF_OK)
    st = cf_projector_setup(&cs->proj_raw, &cs->raw, err);
  if (st == CF_OK)
    st = cf_projector_setup(&cs->proj_model, &cs->model, err);
  if (st == CF_OK)
    st = out_setup(&cs->out_raw, &cs->ax_raw, &cs->raw, nx, err);
  if (st == CF_OK)
    st = out_setup(&cs->out_model, &cs->ax_model, &cs->model, nx, err);
  if (st != CF_OK) {
    cset_clear(cs);
    cset_init(cs);
  }
  return st;
}

void
cset_out_k(const ConstraintSet *cs, gboolean model, const float *rows, int stride, int n, float *k)
{
  const CfConstraint *c = model ? &cs->model : &cs->raw;
  const double *ax = model ? cs->ax_model : cs->ax_raw;
  for (int i = 0; i < n; i++)
    for (int r = 0; r < c->m; r++) {
      double v = c->b[r];
      for (int j = 0; j < cs->nx; j++)
        v -= ax[(gsize)r * cs->nx + j] * rows[(gsize)i * stride + j];
      k[(gsize)i * c->m + r] = (float)v;
    }
}

CfStatus
cset_out_project(ConstraintSet *cs, gboolean model, float *y, int n, const float *k, CfError *err)
{
  CfCgauss *g = model ? &cs->out_model : &cs->out_raw;
  return cf_cgauss_project(g, n, y, k, k ? n : 0, k ? g->m_full : 0, 1.0, err);
}

gboolean
core_error(GError **error, int code, const CfError *err)
{
  g_set_error_literal(error, CONFORM_ERROR, code, err->msg);
  return FALSE;
}

static gboolean
load_data(ConformEngine *e, GError **error)
{
  const ConformConfig *cfg = &e->cfg;
  CfError err;
  CfRng rng;
  if (conform_image_source_is(cfg->data)) /* a PNG folder's skipped files become warnings */
    return conform_image_source_load(cfg, &e->train, &e->ref, &e->warnings, error);
  if (cf_data_generator_find(cfg->data)) {
    cf_rng_seed_stream(&rng, cfg->seed, STREAM_DATA);
    if (cf_data_generate(&e->train, cfg->data, cfg->n_train, &rng, &err) != CF_OK)
      return core_error(error, CONFORM_ERROR_INPUT, &err);
    cf_rng_seed_stream(&rng, cfg->seed, STREAM_REF);
    if (cf_data_generate(&e->ref, cfg->data, cfg->n_ref, &rng, &err) != CF_OK)
      return core_error(error, CONFORM_ERROR_INPUT, &err);
    return TRUE;
  }
  if (!g_file_test(cfg->data, G_FILE_TEST_EXISTS)) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_USAGE,
                "data source '%s' is neither a built-in generator nor an existing CSV file", cfg->data);
    return FALSE;
  }
  CfDataset all;
  cf_dataset_init(&all);
  if (cf_data_load_csv(&all, cfg->data, CF_DATA_MAX_ROWS, &err) != CF_OK)
    return core_error(error, CONFORM_ERROR_INPUT, &err);
  if (all.n < 20) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_INPUT, "%s: only %d rows; at least 20 are needed", cfg->data, all.n);
    cf_dataset_clear(&all);
    return FALSE;
  }
  /* Deterministic shuffle, then hold out 10% (at most n_ref) as reference. */
  int *perm = g_new(int, all.n);
  for (int i = 0; i < all.n; i++)
    perm[i] = i;
  cf_rng_seed_stream(&rng, cfg->seed, STREAM_REF);
  for (int i = all.n - 1; i > 0; i--) {
    int j = (int)cf_rng_below(&rng, (uint64_t)i + 1);
    int t = perm[i];
    perm[i] = perm[j];
    perm[j] = t;
  }
  int n_ref = MIN(cfg->n_ref, all.n / 10);
  int n_train = all.n - n_ref;
  gboolean ok = cf_dataset_alloc(&e->train, n_train, all.dim, FALSE, &err) == CF_OK &&
                cf_dataset_alloc(&e->ref, n_ref, all.dim, FALSE, &err) == CF_OK;
  if (ok) {
    for (int i = 0; i < all.n; i++) {
      float *dst = i < n_train ? e->train.x + (gsize)i * all.dim : e->ref.x + (gsize)(i - n_train) * all.dim;
      memcpy(dst, all.x + (gsize)perm[i] * all.dim, sizeof(float) * all.dim);
    }
  }
  g_free(perm);
  cf_dataset_clear(&all);
  if (!ok)
    return core_error(error, CONFORM_ERROR_INPUT, &err);
  return TRUE;
}

/* Validates constraint c (from `source`) against the data dimension and
 * returns it without redundant rows in *reduced, with the analysis report
 * and a warning naming the dropped rows (NULL if none). */
static gboolean
validate_constraint(const CfConstraint *c, int dim, const char *source, CfConstraint *reduced,
                    CfConstraintReport *report, gboolean *has_report, char **warning, GError **error)
{
  CfError err;
  *has_report = FALSE;
  *warning = NULL;
  cf_constraint_init(reduced);
  if (!c || c->m == 0)
    return TRUE;
  CfStatus st = cf_constraint_analyze(c, dim, report, &err);
  *has_report = st == CF_OK || st == CF_ERR_INCONSISTENT || st == CF_ERR_RANK;
  if (st != CF_OK) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_INPUT, "constraint %s: %s", source, err.msg);
    return FALSE;
  }
  if (report->n_redundant > 0) {
    GString *w = g_string_new(NULL);
    g_string_append_printf(w, "constraint %s: dropped %d redundant row%s (", source, report->n_redundant,
                           report->n_redundant == 1 ? "" : "s");
    for (int i = 0; i < report->n_redundant; i++)
      g_string_append_printf(w, "%srow %d", i ? ", " : "", report->redundant_rows[i] + 1);
    g_string_append(w, ": linear combinations of earlier rows)");
    *warning = g_string_free(w, FALSE);
  }
  if (cf_constraint_reduce(reduced, c, report, &err) != CF_OK)
    return core_error(error, CONFORM_ERROR_INPUT, &err);
  return TRUE;
}

gboolean
ddpm_cgauss(const ConformConfig *cfg)
{
  return g_strcmp0(cfg->model_type, "vae") != 0 && g_strcmp0(cfg->strategy, "cgauss") == 0;
}

/* A cgauss DDPM trains in the null space of the model-space constraint:
 * sets its projector P_N and rebuilds the training graph. */
static CfStatus
ddpm_training_constraint(ConformEngine *e, ConstraintSet *cs, CfError *err)
{
  if (!ddpm_cgauss(&e->cfg) || !e->params)
    return CF_OK;
  CF_ASSERT(cs->model.m > 0);
  /* the null space of B (kept rows) in model space; B = A without inputs */
  const CfCgauss *g = &cs->out_model;
  float *P = cf_alloc_floats((size_t)e->ny * e->ny);
  if (!P)
    return cf_error_set(err, CF_ERR_NOMEM, "out of memory for the null-space projector");
  CfConstraint kept;
  cf_constraint_init(&kept);
  double *zero = g_new0(double, g->m);
  CfStatus st = cf_constraint_set(&kept, g->m, g->n, g->A, zero, err);
  g_free(zero);
  if (st == CF_OK)
    st = cf_nullspace_projector(&kept, P, err);
  cf_constraint_clear(&kept);
  if (st == CF_OK)
    st = cf_ddpm_set_nullspace(&e->model, P, err);
  cf_free_aligned(P);
  if (st == CF_OK)
    st = cf_ddpm_prepare_train(&e->model, e->cfg.batch, err);
  if (st == CF_OK)
    st = cf_projector_reserve(&cs->proj_model, e->cfg.batch);
  if (st == CF_OK) {
    g_free(e->kbuf);
    e->kbuf = g_new(float, (gsize)e->cfg.batch * cs->model.m);
  }
  return st;
}

/* Makes e->cs (and a VAE's or a cgauss DDPM's training copy of the
 * model-space constraint) follow `reduced`. */
static gboolean
apply_constraint(ConformEngine *e, const CfConstraint *reduced, GError **error)
{
  CfError err;
  ConstraintSet cs;
  cset_init(&cs);
  if (cset_build(&cs, reduced, &e->norm, e->nx, &err) != CF_OK)
    return core_error(error, CONFORM_ERROR_INPUT, &err);
  if (!cset_set_equations(&cs, e->cfg.equations, e->dim, &e->norm, error)) {
    cset_clear(&cs);
    return FALSE;
  }
  if (engine_mirror_constraint(e, &cs, &err) != CF_OK) {
    cset_clear(&cs);
    return core_error(error, CONFORM_ERROR_INPUT, &err);
  }
  if ((e->vae && e->params && cf_vae_set_constraint(&e->vmodel, cs.model.m > 0 ? &cs.model : NULL, &err) != CF_OK) ||
      ddpm_training_constraint(e, &cs, &err) != CF_OK || engine_dual_constraint(e, &cs, &err) != CF_OK) {
    cset_clear(&cs);
    return core_error(error, CONFORM_ERROR_INPUT, &err);
  }
  cset_clear(&e->cs);
  e->cs = cs;
  return TRUE;
}

static gboolean
setup_constraint(ConformEngine *e, GError **error)
{
  CfConstraint reduced;
  gboolean ok = validate_constraint(&e->cfg.constraint, e->dim, e->cfg.constraint_source, &reduced, &e->report,
                                    &e->has_report, &e->warnings, error) &&
                apply_constraint(e, &reduced, error);
  cf_constraint_clear(&reduced);
  return ok;
}

CfVaeStrategy
vae_strategy(const char *strategy)
{
  if (g_strcmp0(strategy, "cgauss") == 0)
    return CF_VAE_CGAUSS;
  if (g_strcmp0(strategy, "constrained-layer") == 0)
    return CF_VAE_CONSTRAINED_LAYER;
  if (g_strcmp0(strategy, "projection") == 0)
    return CF_VAE_PROJECTION;
  return CF_VAE_NONE;
}

static CfVaeConfig
vae_config(const ConformConfig *cfg, int dim)
{
  CfVaeConfig vc = cf_vae_default_config(dim);
  vc.latent = cfg->latent;
  vc.width = cfg->width;
  vc.depth = cfg->depth;
  vc.strategy = vae_strategy(cfg->strategy);
  return vc;
}

/* The state to return to if a later step blows up. */
static void
remember_good(ConformEngine *e)
{
  size_t bytes = e->params->total * sizeof(float);
  memcpy(e->good, e->params->value, bytes);
  memcpy(e->good_m, e->adam.m, bytes);
  memcpy(e->good_v, e->adam.v, bytes);
  if (e->ema)
    memcpy(e->good_ema, e->ema, bytes);
  e->good_step = e->step;
  e->good_adam_t = e->adam.t;
}

static void
restore_good(ConformEngine *e)
{
  size_t bytes = e->params->total * sizeof(float);
  memcpy(e->params->value, e->good, bytes);
  memcpy(e->adam.m, e->good_m, bytes);
  memcpy(e->adam.v, e->good_v, bytes);
  if (e->ema)
    memcpy(e->ema, e->good_ema, bytes);
  e->step = e->good_step;
  e->adam.t = e->good_adam_t;
  guint keep = e->records->len;
  while (keep > 0 && g_array_index(e->records, ConformTrainRecord, keep - 1).step > e->step)
    keep--;
  g_array_set_size(e->records, keep);
}

static gboolean init_from(ConformEngine *e, const char *dir, GError **error);

ConformEngine *
conform_engine_new(const ConformConfig *cfg, GError **error)
{
  g_return_val_if_fail(cfg != NULL, NULL);
  if (!conform_config_validate(cfg, error))
    return NULL;
  g_autoptr(ConformEngine) e = g_new0(ConformEngine, 1);
  conform_config_copy(&e->cfg, cfg);
  cf_dataset_init(&e->train);
  cf_dataset_init(&e->ref);
  cf_norm_init(&e->norm);
  cset_init(&e->cs);
  e->records = g_array_new(FALSE, FALSE, sizeof(ConformTrainRecord));
  CfError err;

  e->dual_on = g_strcmp0(cfg->strategy, "dual") == 0 && g_strcmp0(cfg->model_type, "vae") != 0;
  if (!load_data(e, error) || !engine_classes_apply(e, error))
    return NULL;
  e->dim = e->train.dim;
  e->nx = cfg->inputs;
  e->ny = e->dim - e->nx;
  if (e->nx >= e->dim) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_USAGE,
                "data.inputs (%d) must be smaller than the data dimension (%d): something must be generated", e->nx,
                e->dim);
    return NULL;
  }
  if (e->nx > 0 && g_strcmp0(cfg->model_type, "vae") == 0) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_USAGE,
                "data.inputs needs model.type=ddpm: the VAE does not take conditioning inputs yet");
    return NULL;
  }
  /* Images: the fixed map 2 x - 1 (a per-pixel fit would divide by the
   * zero spread of always-black border pixels). */
  gboolean images = conform_image_source_is(cfg->data);
  if ((images ? cf_image_norm(&e->norm, e->dim, &err) : cf_norm_fit(&e->norm, &e->train, &err)) != CF_OK)
    return core_error(error, CONFORM_ERROR_INPUT, &err), NULL;
  /* A preset's own image constraint follows data.image_size (that of the
   * preset's source: the data may be a PNG folder now). */
  const ConformPreset *pre = conform_preset_find(e->cfg.preset);
  if (images && pre && e->cfg.constraint.m > 0 && e->cfg.constraint.n != e->dim &&
      g_strcmp0(e->cfg.constraint_source, e->cfg.preset) == 0) {
    CfConstraint c;
    cf_constraint_init(&c);
    g_autoptr(GError) cerr = NULL;
    if (conform_image_source_constraint(pre->data, e->cfg.image_size, &c, &cerr)) {
      cf_constraint_clear(&e->cfg.constraint);
      e->cfg.constraint = c;
    } else if (cerr) {
      g_propagate_error(error, g_steal_pointer(&cerr));
      return NULL;
    }
  }
  cf_norm_apply(&e->norm, e->train.x, e->train.n);
  g_autofree char *data_warnings = g_steal_pointer(&e->warnings);
  if (!setup_constraint(e, error))
    return NULL;
  char *feas = engine_equations_feasibility(e);
  if (feas) {
    char *w = e->warnings ? g_strdup_printf("%s\n%s", e->warnings, feas) : g_strdup(feas);
    g_free(e->warnings);
    g_free(feas);
    e->warnings = w;
  }
  if (data_warnings) { /* the data's warnings first, then the constraint's */
    char *w = e->warnings ? g_strdup_printf("%s\n%s", data_warnings, e->warnings) : g_steal_pointer(&data_warnings);
    g_free(e->warnings);
    e->warnings = w;
  }

  CfRng rng;
  cf_rng_seed_stream(&rng, cfg->seed, STREAM_INIT);
  e->vae = g_strcmp0(cfg->model_type, "vae") == 0;
  if (e->vae) {
    CfVaeConfig vc = vae_config(cfg, e->dim);
    if (cf_vae_init(&e->vmodel, &vc, &err) != CF_OK)
      return core_error(error, CONFORM_ERROR_USAGE, &err), NULL;
    e->params = &e->vmodel.params;
    cf_vae_randomize(&e->vmodel, &rng);
    if ((e->cs.model.m > 0 && cf_vae_set_constraint(&e->vmodel, &e->cs.model, &err) != CF_OK) ||
        cf_vae_prepare_train(&e->vmodel, cfg->batch, &err) != CF_OK)
      return core_error(error, CONFORM_ERROR_INPUT, &err), NULL;
  } else {
    CfDenoiserConfig dc = {
      .dim = e->ny, .width = cfg->width, .depth = cfg->depth, .temb_dim = cfg->temb_dim, .cond_dim = e->nx};
    if (g_strcmp0(cfg->arch, "unet") == 0) {
      dc.arch = CF_ARCH_UNET;
      dc.img_c = 1;
      dc.img_h = dc.img_w = cfg->image_size;
      dc.unet_base = cfg->unet_base;
      dc.unet_levels = cfg->unet_levels;
    }
    CfScheduleKind sk = g_strcmp0(cfg->schedule, "cosine") == 0 ? CF_SCHEDULE_COSINE : CF_SCHEDULE_LINEAR;
    if (cf_ddpm_init(&e->model, &dc, sk, cfg->T, &err) != CF_OK)
      return core_error(error, CONFORM_ERROR_USAGE, &err), NULL;
    e->params = &e->model.params;
    cf_ddpm_randomize(&e->model, &rng);
    if (cf_ddpm_prepare_train(&e->model, cfg->batch, &err) != CF_OK ||
        ddpm_training_constraint(e, &e->cs, &err) != CF_OK)
      return core_error(error, CONFORM_ERROR_INPUT, &err), NULL;
  }
  CfAdamConfig ac = cf_adam_default_config();
  ac.weight_decay = (float)cfg->weight_decay;
  size_t np = e->params->total;
  if (cf_adam_init(&e->adam, np, &ac) != CF_OK)
    return g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_INPUT, "out of memory for the optimiser"), NULL;
  e->good = cf_alloc_floats(np);
  e->good_m = cf_alloc_floats(np);
  e->good_v = cf_alloc_floats(np);
  e->batch = cf_alloc_floats((size_t)cfg->batch * (size_t)e->dim);
  if (e->nx > 0)
    e->cond = g_new(float, (gsize)cfg->batch * e->nx);
  if (cfg->ema > 0) {
    e->ema = cf_alloc_floats(np);
    e->good_ema = cf_alloc_floats(np);
  }
  if (!e->good || !e->good_m || !e->good_v || !e->batch || (cfg->ema > 0 && (!e->ema || !e->good_ema)))
    return g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_INPUT, "out of memory for the model"), NULL;
  if (cfg->init && cfg->init[0] && !init_from(e, cfg->init, error))
    return NULL;
  if (!engine_dual_setup(e, error) || !engine_mirror_setup(e, error))
    return NULL;
  if (e->ema)
    memcpy(e->ema, e->params->value, np * sizeof(float));
  remember_good(e);
  e->sched = (CfLrSchedule){(float)cfg->lr, (float)cfg->lr_min, cfg->warmup, MAX(cfg->steps, 1)};
  cf_rng_seed_stream(&e->rng_train, cfg->seed, STREAM_TRAIN);
  return g_steal_pointer(&e);
}

void
conform_engine_free(ConformEngine *e)
{
  if (!e)
    return;
  conform_config_clear(&e->cfg);
  cf_dataset_clear(&e->train);
  cf_dataset_clear(&e->ref);
  cf_norm_clear(&e->norm);
  cset_clear(&e->cs);
  if (e->has_report)
    cf_constraint_report_clear(&e->report);
  g_free(e->warnings);
  if (e->vae)
    cf_vae_clear(&e->vmodel);
  else if (e->params)
    cf_ddpm_clear(&e->model);
  cf_adam_clear(&e->adam);
  cf_free_aligned(e->ema);
  cf_free_aligned(e->good);
  cf_free_aligned(e->good_ema);
  cf_free_aligned(e->good_m);
  cf_free_aligned(e->good_v);
  cf_free_aligned(e->batch);
  g_free(e->cond);
  g_free(e->kbuf);
  engine_dual_clear(e);
  engine_mirror_clear(e);
  if (e->records)
    g_array_unref(e->records);
  g_free(e);
}

void
conform_engine_debug_inject_nan(ConformEngine *e, long step)
{
  e->inject_nan_step = step;
}

float *
conform_engine_params_copy(const ConformEngine *e, gsize *n)
{
  *n = e->params->total;
  return g_memdup2(e->params->value, *n * sizeof(float));
}

const ConformConfig *conform_engine_config(const ConformEngine *e) { return &e->cfg; }
int conform_engine_dim(const ConformEngine *e) { return e->dim; }
long conform_engine_step(const ConformEngine *e) { return e->step; }
const CfConstraint *conform_engine_constraint(const ConformEngine *e) { return &e->cs.raw; }
const GArray *conform_engine_records(const ConformEngine *e) { return e->records; }
gboolean conform_engine_mirror_phase(const ConformEngine *e) { return engine_mirror_phase(e); }
const char *conform_engine_warnings(const ConformEngine *e) { return e->warnings; }

/* Called before every training chunk of a window run: free once, then a no-op. */
void
conform_engine_forget_command(ConformEngine *e)
{
  if (e->cfg.command && !e->cfg.command[0])
    return;
  g_free(e->cfg.command);
  e->cfg.command = g_strdup("");
}

const CfConstraintReport *
conform_engine_constraint_report(const ConformEngine *e)
{
  return e->has_report ? &e->report : NULL;
}

const float *
conform_engine_reference(const ConformEngine *e, int *n)
{
  *n = e->ref.n;
  return e->ref.x;
}

gboolean
conform_engine_train(ConformEngine *e, long n_steps, CfAbortFn abort_fn, CfProgressFn progress_fn, void *cb_user,
                     GError **error)
{
  const int B = e->cfg.batch, dim = e->dim;
  const size_t np = e->params->total;
  float *params = e->params->value, *grad = e->params->grad;
  gint64 t0 = g_get_monotonic_time();
  gboolean ok = TRUE;
  for (long k = 0; k < n_steps; k++) {
    if (abort_fn && abort_fn(cb_user)) {
      g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_CANCELLED, "training cancelled at step %ld", e->step);
      ok = FALSE;
      break;
    }
    if (engine_mirror_phase(e)) { /* strategy mirror: the maps first */
      ConformTrainRecord r;
      if (!engine_mirror_step(e, &r, error)) {
        ok = FALSE;
        break;
      }
      if (!engine_mirror_phase(e)) /* the diffusion model's last good state starts here */
        remember_good(e);
      if (e->step % RECORD_EVERY == 0 || k == n_steps - 1 || !engine_mirror_phase(e)) {
        r.seconds = e->train_seconds + (double)(g_get_monotonic_time() - t0) / 1e6;
        g_array_append_val(e->records, r);
      }
      if (progress_fn && (k % 50 == 0 || k == n_steps - 1))
        progress_fn(cb_user, k + 1, n_steps);
      continue;
    }
    /* Minibatch drawn with replacement: inputs to cond, the rest to batch
     * (strategy mirror: from the mirror-space data). */
    const int nx = e->nx, ny = e->ny;
    const float *src = e->mtrain ? e->mtrain : e->train.x;
    for (int i = 0; i < B; i++) {
      uint64_t r = cf_rng_below(&e->rng_train, (uint64_t)e->train.n);
      const float *row = src + (size_t)r * dim;
      memcpy(e->batch + (size_t)i * ny, row + nx, sizeof(float) * ny);
      if (nx > 0)
        memcpy(e->cond + (size_t)i * nx, row, sizeof(float) * nx);
    }
    if (e->inject_nan_step == e->step + 1) { /* one blow-up, as a real one */
      params[0] = NAN;
      e->inject_nan_step = 0;
    }
    float lr = cf_lr_at(&e->sched, engine_model_step(e));
    float loss;
    if (e->vae) {
      double l;
      CfError verr;
      CfStatus vst = cf_vae_train_step(&e->vmodel, e->batch, &e->rng_train, &l, &verr);
      if (vst != CF_OK && vst != CF_ERR_NUMERIC) {
        /* e.g. cgauss data off a constraint applied mid-run: say so, apply nothing */
        g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_INPUT, "training stopped at step %ld: %s", e->step + 1,
                    verr.msg);
        ok = FALSE;
        break;
      }
      loss = vst == CF_OK ? (float)l : NAN;
    } else {
      /* cgauss learns the distribution on the constraint set: data off it
       * (e.g. a constraint the data do not satisfy) enter projected. */
      CfError perr;
      if (e->model.null_proj && nx == 0) {
        cf_project(&e->cs.proj_model, e->batch, B);
      } else if (e->model.null_proj) { /* onto B y = b - A_x x per sample */
        cset_out_k(&e->cs, TRUE, e->cond, nx, B, e->kbuf);
        if (cset_out_project(&e->cs, TRUE, e->batch, B, e->kbuf, &perr) != CF_OK) {
          g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_INPUT, "training stopped at step %ld: %s", e->step + 1,
                      perr.msg);
          ok = FALSE;
          break;
        }
      }
      loss = e->dual_on ? engine_dual_step(e) : cf_ddpm_train_step_cond(&e->model, e->batch, e->cond, &e->rng_train);
    }
    /* Global norm once (NaN check and clipping); the clip scale is applied
     * inside the Adam pass. */
    double gn = cf_grad_norm(grad, np);
    if (!isfinite(loss) || !isfinite(gn)) {
      long bad = e->step + 1;
      restore_good(e);
      g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_NUMERIC,
                  "training produced a non-finite %s (%g) at step %ld; stopped and restored the state of step %ld "
                  "(try a smaller train.lr or train.clip > 0)",
                  isfinite(loss) ? "gradient" : "loss", isfinite(loss) ? gn : (double)loss, bad, e->step);
      ok = FALSE;
      break;
    }
    cf_adam_step_scaled(&e->adam, params, grad, lr, cf_clip_scale(gn, e->cfg.clip));
    if (e->ema)
      cf_ema_update(e->ema, params, np, (float)e->cfg.ema);
    e->step++;
    if (e->step % GOOD_EVERY == 0)
      remember_good(e);
    if (e->step % RECORD_EVERY == 0 || k == n_steps - 1) {
      ConformTrainRecord r = {.step = e->step, .loss = loss, .lr = lr, .grad_norm = (float)gn,
                              .seconds = e->train_seconds + (double)(g_get_monotonic_time() - t0) / 1e6};
      engine_dual_fill_record(e, &r);
      g_array_append_val(e->records, r);
    }
    if (progress_fn && (k % 50 == 0 || k == n_steps - 1))
      progress_fn(cb_user, k + 1, n_steps);
  }
  e->train_seconds += (double)(g_get_monotonic_time() - t0) / 1e6;
  return ok;
}

/* ---- experiment directories ------------------------------------------------ */

static char *
checkpoint_header(const ConformEngine *e, const char *save_id)
{
  g_autofree char *mirror = engine_mirror_header(e);
  return g_strdup_printf("model=%s\nlatent=%d\ndim=%d\nwidth=%d\ndepth=%d\ntemb_dim=%d\nT=%d\nschedule=%s\n"
                         "step=%ld\nadam_t=%ld\ntrain_seconds=%.17g\nparams=%zu\nsave_id=%s\n%s",
                         e->vae ? "vae" : "ddpm", e->cfg.latent, e->dim, e->cfg.width, e->cfg.depth, e->cfg.temb_dim,
                         e->cfg.T, e->cfg.schedule, e->step,
                         e->adam.t, e->train_seconds, e->params->total, save_id, mirror);
}

/* Crash safety of an experiment directory. Each file is replaced
 * atomically, but a save writes several: experiment.ini, metrics.csv, then
 * weights.ckpt, which carry the same save_id. Before a save replaces them,
 * the complete previous save is kept as *.prev (hard links, each renamed
 * into place atomically). A process killed between the files leaves an ini
 * whose save_id the weights do not have; loading then takes the .prev ini
 * and history that belong to the weights (prev_consistent) and says so. */
static const char *const saved_files[] = {"experiment.ini", "metrics.csv", "weights.ckpt", NULL};

/* The save_id in a checkpoint file's header (read without the arenas), or NULL. */
static char *
ckpt_save_id(const char *path)
{
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  unsigned char head[16];
  char *id = NULL;
  if (fread(head, 1, 16, f) == 16 && memcmp(head, "CONFCKPT", 8) == 0) {
    guint32 h = (guint32)head[12] | (guint32)head[13] << 8 | (guint32)head[14] << 16 | (guint32)head[15] << 24;
    if (h <= CF_CKPT_MAX_HEADER) {
      char *text = g_malloc(h + 1);
      if (fread(text, 1, h, f) == h) {
        text[h] = '\0';
        const char *p = strstr(text, "\nsave_id=");
        if (p) {
          p += strlen("\nsave_id=");
          id = g_strndup(p, strcspn(p, "\n"));
        }
      }
      g_free(text);
    }
  }
  fclose(f);
  return id;
}

static void
keep_previous_save(const char *dir)
{
  /* only a complete save: after an interrupted one the .prev files are the
   * save that belongs to the weights, and they stay */
  g_autofree char *ini = g_build_filename(dir, "experiment.ini", NULL);
  g_autofree char *ckpt = g_build_filename(dir, "weights.ckpt", NULL);
  g_autoptr(GKeyFile) kf = g_key_file_new();
  g_autofree char *ini_id = g_key_file_load_from_file(kf, ini, G_KEY_FILE_NONE, NULL)
                              ? g_key_file_get_string(kf, "experiment", "save_id", NULL)
                              : NULL;
  g_autofree char *ck_id = ckpt_save_id(ckpt);
  if (!ini_id || g_strcmp0(ini_id, ck_id) != 0)
    return;
  for (int i = 0; saved_files[i]; i++) {
    g_autofree char *cur = g_build_filename(dir, saved_files[i], NULL);
    g_autofree char *tmp = g_strdup_printf("%s.prev.tmp", cur), *prev = g_strdup_printf("%s.prev", cur);
    if (!g_file_test(cur, G_FILE_TEST_IS_REGULAR))
      continue;
    (void)g_unlink(tmp);
    if (link(cur, tmp) == 0 && g_rename(tmp, prev) != 0)
      (void)g_unlink(tmp);
  }
}

static char *
new_save_id(void)
{
  return g_strdup_printf("%08x%08x-%" G_GINT64_FORMAT, g_random_int(), g_random_int(), g_get_real_time());
}

/* samples.png (conform_image_samples_write_png): the image samples in a grid, 8 per row, 2x; with
 * sample.annotate a green (satisfied) or red (violated, relative to the
 * eval tolerance) frame per image. */
static gboolean
write_sample_grid(ConformEngine *e, const char *dir, const float *samples, int n, GError **error)
{
  const int size = e->cfg.image_size;
  g_autofree guint32 *border = NULL;
  if (e->cfg.annotate && cset_active(&e->cs)) {
    border = g_new(guint32, n);
    double *v = g_new(double, n);
    cset_violation(&e->cs, samples, n, v, NULL);
    double tol = cset_tolerance(&e->cs, e->cfg.tol_rel);
    for (int i = 0; i < n; i++)
      border[i] = v[i] <= tol ? 0x009E73 : 0xD55E00; /* Okabe-Ito green / vermillion */
    g_free(v);
  }
  g_autofree char *path = g_build_filename(dir, "samples.png", NULL);
  /* only the image part of each row; superres thumbnails beside their samples */
  return conform_image_samples_write_png(path, samples, n, e->dim, size, e->nx, border, error);
}

static GString *
records_csv(const ConformEngine *e)
{
  /* strategy dual: lambda_i, slack_i, constraint_loss_i per constraint i
   * (dual.constraints order) */
  const int nd = e->dual_on ? e->n_dual : 0;
  GString *s = g_string_new("step,loss,lr,grad_norm,seconds");
  for (int i = 0; i < nd; i++)
    g_string_append_printf(s, ",lambda_%d,slack_%d,constraint_loss_%d", i, i, i);
  /* strategy mirror: 1 for the maps' steps, and their loss terms */
  if (e->namm)
    g_string_append(s, ",namm,namm_cycle,namm_constraint,namm_reg");
  g_string_append_c(s, '\n');
  for (guint i = 0; i < e->records->len; i++) {
    const ConformTrainRecord *r = &g_array_index(e->records, ConformTrainRecord, i);
    g_string_append_printf(s, "%ld,%.9g,%.9g,%.9g,%.6f", r->step, r->loss, r->lr, r->grad_norm, r->seconds);
    for (int k = 0; k < nd; k++)
      g_string_append_printf(s, ",%.9g,%.9g,%.9g", k < r->n_dual ? r->lambda[k] : NAN, k < r->n_dual ? r->slack[k] : NAN,
                             k < r->n_dual ? r->closs[k] : NAN);
    if (e->namm)
      g_string_append_printf(s, ",%d,%.9g,%.9g,%.9g", r->namm, r->namm ? r->namm_cyc : NAN, r->namm ? r->namm_constr : NAN,
                             r->namm ? r->namm_reg : NAN);
    g_string_append_c(s, '\n');
  }
  return s;
}

gboolean
conform_engine_save(ConformEngine *e, const char *dir, const float *samples, int n_samples,
                    const ConformSummary *summary, GError **error)
{
  if (!conform_ensure_dir(dir, error))
    return FALSE;
  size_t np = e->params->total;
  CfCkptArena arenas[11];
  int na = 0;
  arenas[na++] = (CfCkptArena){"params", np, e->params->value};
  if (e->ema)
    arenas[na++] = (CfCkptArena){"ema", np, e->ema};
  arenas[na++] = (CfCkptArena){"adam.m", np, e->adam.m};
  arenas[na++] = (CfCkptArena){"adam.v", np, e->adam.v};
  arenas[na++] = (CfCkptArena){"norm.mean", (size_t)e->dim, e->norm.mean};
  arenas[na++] = (CfCkptArena){"norm.scale", (size_t)e->dim, e->norm.scale};
  na += engine_mirror_arenas(e, arenas + na);
  g_autofree char *save_id = new_save_id();
  g_autofree char *header = checkpoint_header(e, save_id);
  unsigned char *buf = NULL;
  size_t len = 0;
  CfError err;
  if (cf_checkpoint_encode(header, arenas, na, &buf, &len, &err) != CF_OK)
    return core_error(error, CONFORM_ERROR_IO, &err);
  keep_previous_save(dir);

  g_autoptr(GKeyFile) kf = conform_config_to_keyfile(&e->cfg);
  g_key_file_set_string(kf, "experiment", "save_id", save_id);
  g_key_file_set_comment(kf, "experiment", "save_id", "the weights.ckpt saved with this file carries the same id",
                         NULL);
  gsize ilen;
  g_autofree char *ini = g_key_file_to_data(kf, &ilen, NULL);
  g_autofree char *ini_path = g_build_filename(dir, "experiment.ini", NULL);
  g_autoptr(GString) m = records_csv(e);
  g_autofree char *mpath = g_build_filename(dir, "metrics.csv", NULL);
  g_autofree char *ckpt = g_build_filename(dir, "weights.ckpt", NULL);
  gboolean ok = conform_write_atomic(ini_path, ini, ilen, error) &&
                conform_write_atomic(mpath, m->str, m->len, error) && conform_write_atomic(ckpt, buf, len, error);
  free(buf);
  if (!ok)
    return FALSE;

  if (samples) {
    g_autoptr(GString) sc = conform_csv_floats(samples, n_samples, e->dim, "x");
    g_autofree char *spath = g_build_filename(dir, "samples.csv", NULL);
    if (!conform_write_atomic(spath, sc->str, sc->len, error))
      return FALSE;
    if (conform_image_source_is(e->cfg.data) && !write_sample_grid(e, dir, samples, n_samples, error))
      return FALSE;
  }
  if (summary) {
    g_autoptr(GString) st = conform_summary_to_tsv(summary);
    g_autofree char *tpath = g_build_filename(dir, "summary.tsv", NULL);
    if (!conform_write_atomic(tpath, st->str, st->len, error))
      return FALSE;
  }
  return TRUE;
}

static gboolean
header_int(const CfCheckpoint *ck, const char *path, const char *key, long expect, GError **error)
{
  g_autofree char *v = cf_checkpoint_header_get(ck, key);
  if (!v) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_INPUT, "%s: header lacks '%s'", path, key);
    return FALSE;
  }
  char *end;
  long x = strtol(v, &end, 10);
  if (*end != '\0' || (expect >= 0 && x != expect)) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_INPUT,
                "%s: checkpoint is for a different model: %s=%s, but experiment.ini gives %ld", path, key, v, expect);
    return FALSE;
  }
  return TRUE;
}

static gboolean
load_arena(const CfCheckpoint *ck, const char *path, const char *name, float *dst, size_t count, gboolean required,
           GError **error)
{
  const CfCkptArena *a = cf_checkpoint_find(ck, name);
  if (!a) {
    if (!required)
      return TRUE;
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_INPUT, "%s: arena '%s' is missing", path, name);
    return FALSE;
  }
  if (a->count != count) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_INPUT,
                "%s: checkpoint is for a different model: arena '%s' has %zu values, this model needs %zu", path, name,
                a->count, count);
    return FALSE;
  }
  if (!cf_all_finite(a->data, count)) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_INPUT, "%s: arena '%s' contains NaN or Inf", path, name);
    return FALSE;
  }
  if (dst)
    memcpy(dst, a->data, count * sizeof(float));
  return TRUE;
}

/* Restores the training history from metrics.csv. A missing or damaged
 * file is not fatal (the weights are what matter): the history then starts
 * empty or stops at the damaged line, and a warning says so. */
static void
load_records(ConformEngine *e, const char *path)
{
  g_autofree char *text = NULL;
  g_autoptr(GError) err = NULL;
  if (!conform_read_file(path, MAX_FILE_BYTES, &text, NULL, &err)) {
    g_free(e->warnings);
    e->warnings = g_strdup_printf("training history not restored: %s", err->message);
    return;
  }
  g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
  for (guint i = 1; lines[i]; i++) {
    if (lines[i][0] == '\0')
      continue;
    ConformTrainRecord r = {0};
    int used = 0;
    gboolean bad = sscanf(lines[i], "%ld,%f,%f,%f,%lf%n", &r.step, &r.loss, &r.lr, &r.grad_norm, &r.seconds, &used) != 5 ||
                   r.step < 0 || r.step > e->step;
    /* dual columns: three per constraint */
    const char *p = lines[i] + (bad ? 0 : used);
    const int nd = e->dual_on ? e->n_dual : 0;
    for (int k = 0; !bad && k < nd; k++) {
      int u = 0;
      bad = sscanf(p, ",%f,%f,%f%n", &r.lambda[k], &r.slack[k], &r.closs[k], &u) != 3;
      p += u;
    }
    r.n_dual = nd;
    if (!bad && e->namm) {
      int u = 0;
      bad = sscanf(p, ",%d,%f,%f,%f%n", &r.namm, &r.namm_cyc, &r.namm_constr, &r.namm_reg, &u) != 4 || r.namm < 0 ||
            r.namm > 2;
      p += u;
    }
    if (!bad && *p != '\0')
      bad = TRUE;
    if (bad) {
      g_free(e->warnings);
      e->warnings = g_strdup_printf("%s:%u: unreadable line; training history restored up to there", path, i + 1);
      return;
    }
    g_array_append_val(e->records, r);
  }
}

/* The checkpoint's model shape (type, sizes, schedule) is e's. */
static gboolean
same_model(const ConformEngine *e, const CfCheckpoint *ck, const char *path, GError **error)
{
  if (!header_int(ck, path, "dim", e->dim, error) || !header_int(ck, path, "width", e->cfg.width, error) ||
      !header_int(ck, path, "depth", e->cfg.depth, error) || !header_int(ck, path, "temb_dim", e->cfg.temb_dim, error) ||
      !header_int(ck, path, "T", e->cfg.T, error) || !header_int(ck, path, "step", -1, error))
    return FALSE;
  /* Files from before the VAE have no model line: they are diffusion models. */
  g_autofree char *model = cf_checkpoint_header_get(ck, "model");
  const char *want = e->vae ? "vae" : "ddpm";
  if (g_strcmp0(model ? model : "ddpm", want) != 0) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_INPUT,
                "%s: checkpoint is for a different model: model=%s, but this experiment is a %s", path, model, want);
    return FALSE;
  }
  if (e->vae && !header_int(ck, path, "latent", e->cfg.latent, error))
    return FALSE;
  g_autofree char *sched = cf_checkpoint_header_get(ck, "schedule");
  if (g_strcmp0(sched, e->cfg.schedule) != 0) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_INPUT,
                "%s: checkpoint is for a different model: schedule=%s, but this experiment uses %s", path,
                sched ? sched : "(none)", e->cfg.schedule);
    return FALSE;
  }
  return TRUE;
}

/* The normalisation is part of the model: use the checkpoint's (it equals
 * a refit on regenerated data, but a CSV may have changed since, and a
 * model fine-tuned from another run must keep that run's model space), and
 * rebuild the model-space constraint under it. */
static gboolean
adopt_norm(ConformEngine *e, const CfCheckpoint *ck, GError **error)
{
  CfError err;
  const CfCkptArena *mu = cf_checkpoint_find(ck, "norm.mean"), *sc = cf_checkpoint_find(ck, "norm.scale");
  cf_norm_invert(&e->norm, e->train.x, e->train.n);
  gboolean ok = cf_norm_set(&e->norm, e->dim, mu->data, sc->data, &err) == CF_OK || core_error(error, CONFORM_ERROR_INPUT, &err);
  cf_norm_apply(&e->norm, e->train.x, e->train.n);
  if (!ok)
    return FALSE;
  CfConstraint raw;
  cf_constraint_init(&raw);
  ok = (e->cs.raw.m == 0 || cf_constraint_copy(&raw, &e->cs.raw, &err) == CF_OK ||
        core_error(error, CONFORM_ERROR_INPUT, &err)) &&
       apply_constraint(e, &raw, error);
  cf_constraint_clear(&raw);
  return ok;
}

static gboolean
read_checkpoint(const char *path, CfCheckpoint *ck, GError **error)
{
  char *buf = NULL;
  gsize len = 0;
  if (!conform_read_file(path, MAX_FILE_BYTES, &buf, &len, error))
    return FALSE;
  CfError err;
  CfStatus st = cf_checkpoint_decode(ck, (const unsigned char *)buf, len, path, &err);
  g_free(buf);
  return st == CF_OK || core_error(error, CONFORM_ERROR_INPUT, &err);
}

/* train.init: start from another run's weights (its EMA when it kept one)
 * and normalisation; the optimiser and step start fresh. */
static gboolean
init_from(ConformEngine *e, const char *dir, GError **error)
{
  g_autofree char *path = g_str_has_suffix(dir, ".ckpt") ? g_strdup(dir) : g_build_filename(dir, "weights.ckpt", NULL);
  CfCheckpoint ck;
  if (!read_checkpoint(path, &ck, error)) {
    g_prefix_error(error, "train.init: ");
    return FALSE;
  }
  size_t np = e->params->total;
  gboolean has_ema = cf_checkpoint_find(&ck, "ema") != NULL;
  gboolean ok = same_model(e, &ck, path, error) &&
                load_arena(&ck, path, has_ema ? "ema" : "params", e->params->value, np, TRUE, error) &&
                load_arena(&ck, path, "norm.mean", NULL, (size_t)e->dim, TRUE, error) &&
                load_arena(&ck, path, "norm.scale", NULL, (size_t)e->dim, TRUE, error) && adopt_norm(e, &ck, error);
  cf_checkpoint_clear(&ck);
  if (!ok)
    g_prefix_error(error, "train.init: ");
  return ok;
}

ConformEngine *
conform_engine_load(const char *dir, GError **error)
{
  g_autofree char *ini_path = g_build_filename(dir, "experiment.ini", NULL);
  g_autofree char *ckpt_path = g_build_filename(dir, "weights.ckpt", NULL);
  if (!g_file_test(dir, G_FILE_TEST_IS_DIR)) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_IO, "%s is not an experiment directory", dir);
    return NULL;
  }
  g_autoptr(GKeyFile) kf = g_key_file_new();
  g_autoptr(GError) e1 = NULL;
  if (!g_key_file_load_from_file(kf, ini_path, G_KEY_FILE_NONE, &e1)) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_INPUT, "%s: %s", ini_path, e1->message);
    return NULL;
  }
  CfCheckpoint ck;
  if (!read_checkpoint(ckpt_path, &ck, error))
    return NULL;
  /* an interrupted save: the ini is newer than the weights; the previous
   * save's ini and history belong to them (keep_previous_save) */
  g_autofree char *metrics_path = g_build_filename(dir, "metrics.csv", NULL);
  g_autofree char *recovered = NULL;
  g_autofree char *ini_id = g_key_file_get_string(kf, "experiment", "save_id", NULL);
  g_autofree char *ck_id = cf_checkpoint_header_get(&ck, "save_id");
  if (ini_id && ck_id && strcmp(ini_id, ck_id) != 0) {
    g_autofree char *prev_path = g_strdup_printf("%s.prev", ini_path);
    g_autoptr(GKeyFile) prev = g_key_file_new();
    g_autofree char *prev_id = NULL;
    if (g_key_file_load_from_file(prev, prev_path, G_KEY_FILE_NONE, NULL))
      prev_id = g_key_file_get_string(prev, "experiment", "save_id", NULL);
    if (g_strcmp0(prev_id, ck_id) != 0) {
      g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_INPUT,
                  "%s: experiment.ini (save %s) and weights.ckpt (save %s) come from different saves, and no "
                  "experiment.ini.prev matches the weights",
                  dir, ini_id, ck_id);
      cf_checkpoint_clear(&ck);
      return NULL;
    }
    g_key_file_free(kf);
    kf = g_steal_pointer(&prev);
    g_free(metrics_path);
    metrics_path = g_build_filename(dir, "metrics.csv.prev", NULL);
    recovered = g_strdup_printf("%s: the last save was interrupted before its weights were written; opened the "
                                "save before it (experiment.ini.prev, metrics.csv.prev and the weights)",
                                dir);
  }
  ConformConfig cfg;
  conform_config_init(&cfg);
  if (!conform_config_from_keyfile(&cfg, kf, ini_path, error)) {
    conform_config_clear(&cfg);
    cf_checkpoint_clear(&ck);
    return NULL;
  }
  /* The shape settings first, before building (and allocating) a model of
   * the ini's size: an ini edited to width 8192, depth 16 beside a small
   * checkpoint must not allocate gigabytes to find out. */
  if (!header_int(&ck, ckpt_path, "width", cfg.width, error) || !header_int(&ck, ckpt_path, "depth", cfg.depth, error) ||
      !header_int(&ck, ckpt_path, "temb_dim", cfg.temb_dim, error) || !header_int(&ck, ckpt_path, "T", cfg.T, error) ||
      (g_strcmp0(cfg.model_type, "vae") == 0 && !header_int(&ck, ckpt_path, "latent", cfg.latent, error))) {
    conform_config_clear(&cfg);
    cf_checkpoint_clear(&ck);
    return NULL;
  }
  ConformEngine *e = conform_engine_new(&cfg, error);
  conform_config_clear(&cfg);
  if (!e) {
    cf_checkpoint_clear(&ck);
    return NULL;
  }
  size_t np = e->params->total;
  gboolean ok = same_model(e, &ck, ckpt_path, error) &&
                load_arena(&ck, ckpt_path, "params", e->params->value, np, TRUE, error) &&
                load_arena(&ck, ckpt_path, "ema", e->ema, np, e->ema != NULL, error) &&
                load_arena(&ck, ckpt_path, "adam.m", e->adam.m, np, TRUE, error) &&
                load_arena(&ck, ckpt_path, "adam.v", e->adam.v, np, TRUE, error) &&
                load_arena(&ck, ckpt_path, "norm.mean", NULL, (size_t)e->dim, TRUE, error) &&
                load_arena(&ck, ckpt_path, "norm.scale", NULL, (size_t)e->dim, TRUE, error);
  if (ok) {
    ok = adopt_norm(e, &ck, error);
    g_autofree char *step = cf_checkpoint_header_get(&ck, "step");
    g_autofree char *adam_t = cf_checkpoint_header_get(&ck, "adam_t");
    g_autofree char *secs = cf_checkpoint_header_get(&ck, "train_seconds");
    e->step = step ? strtol(step, NULL, 10) : 0;
    e->adam.t = adam_t ? strtol(adam_t, NULL, 10) : e->step;
    e->train_seconds = secs ? g_ascii_strtod(secs, NULL) : 0;
    remember_good(e);
    ok = ok && engine_mirror_load(e, &ck, ckpt_path, error);
    load_records(e, metrics_path);
    if (recovered) {
      char *w = e->warnings ? g_strdup_printf("%s\n%s", recovered, e->warnings) : g_strdup(recovered);
      g_free(e->warnings);
      e->warnings = w;
    }
    if (e->dual_on && e->records->len > 0) { /* the multipliers continue */
      const ConformTrainRecord *r = &g_array_index(e->records, ConformTrainRecord, e->records->len - 1);
      for (int i = 0; i < MIN(r->n_dual, e->n_dual); i++)
        e->dual.lambda[i] = r->lambda[i];
    }
  }
  cf_checkpoint_clear(&ck);
  if (!ok) {
    conform_engine_free(e);
    return NULL;
  }
  return e;
}

gboolean
conform_engine_set_live(ConformEngine *e, const char *key, const char *value, GError **error)
{
  const ConformKey *k = conform_config_find_key(key);
  /* A VAE's strategy is part of its loss: only none <-> projection (both
   * sample the same decoder) can change while it trains. */
  if (e->vae && g_strcmp0(key, "experiment.strategy") == 0 &&
      vae_strategy(value) != vae_strategy(e->cfg.strategy) &&
      !(vae_strategy(value) <= CF_VAE_PROJECTION && vae_strategy(e->cfg.strategy) <= CF_VAE_PROJECTION)) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_USAGE,
                "the VAE's strategy is part of its training: '%s' applies after Reset", value);
    return FALSE;
  }
  /* A DDPM's cgauss is its training (null-space noise): to or from it
   * needs a new model. */
  if (!e->vae && g_strcmp0(key, "experiment.strategy") == 0 &&
      (g_strcmp0(value, "cgauss") == 0) != ddpm_cgauss(&e->cfg)) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_USAGE,
                "cgauss trains the diffusion model in the constraint's null space: switching %s it applies after "
                "Reset", ddpm_cgauss(&e->cfg) ? "away from" : "to");
    return FALSE;
  }
  if (!e->vae && g_strcmp0(key, "experiment.strategy") == 0 && (g_strcmp0(value, "mirror") == 0) != (e->namm != NULL)) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_USAGE,
                "mirror trains the diffusion model in a learned mirror space: switching %s it applies after Reset",
                e->namm ? "away from" : "to");
    return FALSE;
  }
  if (!e->vae && g_strcmp0(key, "experiment.strategy") == 0 && (g_strcmp0(value, "dual") == 0) != e->dual_on) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_USAGE,
                "dual training changes the training batch and loss: switching %s it applies after Reset",
                e->dual_on ? "away from" : "to");
    return FALSE;
  }
  if (k && !k->live) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_USAGE, "%s cannot change during a run: it applies after Reset", key);
    return FALSE;
  }
  ConformConfig next;
  conform_config_copy(&next, &e->cfg);
  if (!conform_config_set(&next, key, value, error) || !conform_config_validate(&next, error)) {
    conform_config_clear(&next);
    return FALSE;
  }
  conform_config_clear(&e->cfg);
  e->cfg = next;
  /* Values read every step: the schedule and the optimiser. */
  e->sched.lr_max = (float)e->cfg.lr;
  e->sched.lr_min = (float)e->cfg.lr_min;
  e->sched.total = MAX(e->cfg.steps, 1);
  e->adam.cfg.weight_decay = (float)e->cfg.weight_decay;
  return TRUE;
}

gboolean
conform_engine_set_constraint(ConformEngine *e, const CfConstraint *c, const char *source, GError **error)
{
  /* Validate and build aside; the engine changes only when all succeeded. */
  const char *src = source ? source : "editor";
  if (c && c->m > 0 && e->cs.has_eq) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_USAGE,
                "this experiment's constraint is constraint.equations; clear them (and Reset) to use a matrix");
    return FALSE;
  }
  if ((!c || c->m == 0) && !e->cs.has_eq && e->namm) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_USAGE,
                "this diffusion model trains with 'mirror', which needs a constraint; Reset with strategy none to "
                "drop it");
    return FALSE;
  }
  if ((!c || c->m == 0) &&
      ((e->vae && vae_strategy(e->cfg.strategy) >= CF_VAE_CONSTRAINED_LAYER) || ddpm_cgauss(&e->cfg))) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_USAGE,
                "this %s trains with '%s', which needs a constraint; Reset with strategy none to drop it",
                e->vae ? "VAE" : "diffusion model", e->cfg.strategy);
    return FALSE;
  }
  CfConstraint reduced;
  CfConstraintReport report;
  gboolean has_report;
  char *warning;
  if (!validate_constraint(c, e->dim, src, &reduced, &report, &has_report, &warning, error)) {
    if (has_report)
      cf_constraint_report_clear(&report);
    return FALSE;
  }
  gboolean ok = apply_constraint(e, &reduced, error);
  cf_constraint_clear(&reduced);
  if (!ok) {
    if (has_report)
      cf_constraint_report_clear(&report);
    g_free(warning);
    return FALSE;
  }
  cf_constraint_clear(&e->cfg.constraint);
  if (c && c->m > 0)
    CF_ASSERT(cf_constraint_copy(&e->cfg.constraint, c, NULL) == CF_OK);
  g_free(e->cfg.constraint_source);
  e->cfg.constraint_source = g_strdup(src);
  if (!cset_active(&e->cs) && g_strcmp0(e->cfg.strategy, "none") != 0) {
    g_free(e->cfg.strategy);
    e->cfg.strategy = g_strdup("none");
  }
  if (e->has_report)
    cf_constraint_report_clear(&e->report);
  e->report = report;
  e->has_report = has_report;
  g_free(e->warnings);
  e->warnings = warning;
  return TRUE;
}

char *
conform_engine_constraint_summary(const ConformEngine *e)
{
  if (e->cs.has_eq)
    return g_strdup_printf("%d equation%s · non-linear · distance sum |lhs - rhs| (raw data space)", e->cs.eq_raw.n_eq,
                           e->cs.eq_raw.n_eq == 1 ? "" : "s");
  if (e->cfg.constraint.m == 0 || !e->has_report)
    return g_strdup("no constraint");
  const CfConstraintReport *r = &e->report;
  GString *s = g_string_new(NULL);
  g_string_append_printf(s, "%d row%s · rank %d · %s · cond %.3g · null space %d", r->m, r->m == 1 ? "" : "s",
                         r->rank, r->consistent ? "consistent" : "inconsistent", r->cond, r->nullity);
  if (r->n_redundant > 0)
    g_string_append_printf(s, " · %d redundant row%s dropped", r->n_redundant, r->n_redundant == 1 ? "" : "s");
  g_string_append(s, " (raw data space)");
  return g_string_free(s, FALSE);
}

float *
conform_engine_copy_train_raw(const ConformEngine *e, int max_n, int *n)
{
  int stride = MAX(1, (e->train.n + max_n - 1) / MAX(max_n, 1));
  int k = (e->train.n + stride - 1) / stride;
  float *x = g_new(float, (gsize)k * e->dim);
  for (int i = 0; i < k; i++)
    memcpy(x + (gsize)i * e->dim, e->train.x + (gsize)i * stride * e->dim, sizeof(float) * e->dim);
  cf_norm_invert(&e->norm, x, k);
  *n = k;
  return x;
}

