#define G_LOG_DOMAIN "conform"

#include "conform-engine.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "checkpoint.h"
#include "conform-io.h"
#include "data.h"
#include "ddpm.h"
#include "vae.h"
#include "optim.h"

/* RNG streams, one per purpose, so extra draws in one never shift another. */
enum { STREAM_DATA = 1, STREAM_REF, STREAM_INIT, STREAM_TRAIN, STREAM_SAMPLE, STREAM_METRIC };

#define RECORD_EVERY 10
#define GOOD_EVERY 50
#define MAX_FILE_BYTES ((gsize)2 << 30)

/* A validated, reduced constraint in raw space, the same in model space
 * (x = s .* u + m: (A diag(s)) u = b - A m), and a projector for each. m == 0
 * means no constraint. The engine owns one; each sampler builds its own
 * (projectors keep scratch, so they are not shared between threads). */
typedef struct {
  CfConstraint raw, model;
  CfProjector proj_raw, proj_model;
} ConstraintSet;

static void
cset_init(ConstraintSet *cs)
{
  cf_constraint_init(&cs->raw);
  cf_constraint_init(&cs->model);
  cf_projector_init(&cs->proj_raw);
  cf_projector_init(&cs->proj_model);
}

static void
cset_clear(ConstraintSet *cs)
{
  cf_constraint_clear(&cs->raw);
  cf_constraint_clear(&cs->model);
  cf_projector_clear(&cs->proj_raw);
  cf_projector_clear(&cs->proj_model);
}

/* Builds cs (cleared first) from a full-row-rank raw constraint (NULL or
 * m == 0: none) and the normalisation; on failure cs is left empty. */
static CfStatus
cset_build(ConstraintSet *cs, const CfConstraint *raw, const CfNorm *norm, CfError *err)
{
  cset_clear(cs);
  cset_init(cs);
  if (!raw || raw->m == 0)
    return CF_OK;
  CfStatus st = cf_constraint_copy(&cs->raw, raw, err);
  if (st == CF_OK)
    st = cf_constraint_to_model_space(&cs->model, &cs->raw, norm->mean, norm->scale, err);
  if (st == CF_OK)
    st = cf_projector_setup(&cs->proj_raw, &cs->raw, err);
  if (st == CF_OK)
    st = cf_projector_setup(&cs->proj_model, &cs->model, err);
  if (st != CF_OK) {
    cset_clear(cs);
    cset_init(cs);
  }
  return st;
}

struct ConformEngine {
  ConformConfig cfg;
  int dim;
  CfDataset train;  /* model space */
  CfDataset ref;    /* raw space, held out */
  CfNorm norm;
  ConstraintSet cs;     /* validated + reduced constraint and its projectors */
  CfConstraintReport report;
  gboolean has_report;
  char *warnings;
  CfDdpm model;         /* model.type = ddpm */
  CfVae vmodel;         /* model.type = vae */
  gboolean vae;
  CfParams *params;     /* the trained model's parameter arena */
  CfAdam adam;
  float *ema;        /* EMA of the parameters (NULL when cfg.ema == 0) */
  /* Last good state, refreshed every GOOD_EVERY steps: params, ema, Adam
   * moments and step, restored when a step produces NaN/Inf. */
  float *good, *good_ema, *good_m, *good_v;
  long good_step, good_adam_t;
  CfLrSchedule sched;
  CfRng rng_train;
  float *batch;
  GArray *records;
  long step;
  double train_seconds;
  long inject_nan_step; /* test fault injection, 0 = off */
};

static gboolean
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

/* Makes e->cs (and a VAE's training copy of the model-space constraint)
 * follow `reduced`. */
static gboolean
apply_constraint(ConformEngine *e, const CfConstraint *reduced, GError **error)
{
  CfError err;
  ConstraintSet cs;
  cset_init(&cs);
  if (cset_build(&cs, reduced, &e->norm, &err) != CF_OK)
    return core_error(error, CONFORM_ERROR_INPUT, &err);
  if (e->vae && e->params &&
      cf_vae_set_constraint(&e->vmodel, cs.model.m > 0 ? &cs.model : NULL, &err) != CF_OK) {
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

/* The VAE's strategy is part of its training objective. */
static CfVaeStrategy
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

  if (!load_data(e, error))
    return NULL;
  e->dim = e->train.dim;
  if (cf_norm_fit(&e->norm, &e->train, &err) != CF_OK)
    return core_error(error, CONFORM_ERROR_INPUT, &err), NULL;
  cf_norm_apply(&e->norm, e->train.x, e->train.n);
  if (!setup_constraint(e, error))
    return NULL;

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
    CfDenoiserConfig dc = {.dim = e->dim, .width = cfg->width, .depth = cfg->depth, .temb_dim = cfg->temb_dim};
    CfScheduleKind sk = g_strcmp0(cfg->schedule, "cosine") == 0 ? CF_SCHEDULE_COSINE : CF_SCHEDULE_LINEAR;
    if (cf_ddpm_init(&e->model, &dc, sk, cfg->T, &err) != CF_OK)
      return core_error(error, CONFORM_ERROR_USAGE, &err), NULL;
    e->params = &e->model.params;
    cf_ddpm_randomize(&e->model, &rng);
    if (cf_ddpm_prepare_train(&e->model, cfg->batch, &err) != CF_OK)
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
  if (cfg->ema > 0) {
    e->ema = cf_alloc_floats(np);
    e->good_ema = cf_alloc_floats(np);
  }
  if (!e->good || !e->good_m || !e->good_v || !e->batch || (cfg->ema > 0 && (!e->ema || !e->good_ema)))
    return g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_INPUT, "out of memory for the model"), NULL;
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
const char *conform_engine_warnings(const ConformEngine *e) { return e->warnings; }

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
    /* Minibatch drawn with replacement. */
    for (int i = 0; i < B; i++) {
      uint64_t r = cf_rng_below(&e->rng_train, (uint64_t)e->train.n);
      memcpy(e->batch + (size_t)i * dim, e->train.x + (size_t)r * dim, sizeof(float) * dim);
    }
    if (e->inject_nan_step == e->step + 1)
      params[0] = NAN;
    float lr = cf_lr_at(&e->sched, e->step);
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
      loss = cf_ddpm_train_step(&e->model, e->batch, &e->rng_train);
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
      ConformTrainRecord r = {e->step, loss, lr, (float)gn,
                              e->train_seconds + (double)(g_get_monotonic_time() - t0) / 1e6};
      g_array_append_val(e->records, r);
    }
    if (progress_fn && (k % 50 == 0 || k == n_steps - 1))
      progress_fn(cb_user, k + 1, n_steps);
  }
  e->train_seconds += (double)(g_get_monotonic_time() - t0) / 1e6;
  return ok;
}

static void sampler_evaluate(ConformSampler *s, const float *x, int n, const double *viol, gboolean with_quality,
                             ConformSummary *out);

struct ConformSampler {
  ConformConfig cfg;
  int dim;
  CfSchedule sched;
  CfNorm norm;
  ConstraintSet cs;
  CfDdpmEval eval;  /* ddpm */
  gboolean vae;
  CfVae vmodel;     /* vae: an own copy (graphs and scratch are per model) */
  CfDataset ref; /* raw held-out reference, for the summary metrics */
  long step;
  double train_seconds;
};

void
conform_sampler_free(ConformSampler *s)
{
  if (!s)
    return;
  conform_config_clear(&s->cfg);
  cf_schedule_clear(&s->sched);
  cf_norm_clear(&s->norm);
  cset_clear(&s->cs);
  if (s->vae)
    cf_vae_clear(&s->vmodel);
  else
    cf_ddpm_eval_clear(&s->eval);
  cf_dataset_clear(&s->ref);
  g_free(s);
}

ConformSampler *
conform_engine_make_sampler(ConformEngine *e, GError **error)
{
  g_autoptr(ConformSampler) s = g_new0(ConformSampler, 1);
  conform_config_copy(&s->cfg, &e->cfg);
  s->dim = e->dim;
  cf_norm_init(&s->norm);
  cset_init(&s->cs);
  cf_dataset_init(&s->ref);
  CfError err;
  s->vae = e->vae;
  if (cf_norm_set(&s->norm, e->dim, e->norm.mean, e->norm.scale, &err) != CF_OK ||
      cf_dataset_alloc(&s->ref, e->ref.n, e->ref.dim, FALSE, &err) != CF_OK)
    return core_error(error, CONFORM_ERROR_INPUT, &err), NULL;
  if (s->vae) {
    if (cf_vae_init(&s->vmodel, &e->vmodel.cfg, &err) != CF_OK ||
        (e->cs.model.m > 0 && cf_vae_set_constraint(&s->vmodel, &e->cs.model, &err) != CF_OK))
      return core_error(error, CONFORM_ERROR_INPUT, &err), NULL;
  } else if (cf_schedule_init(&s->sched, e->model.sched.kind, e->model.sched.T, &err) != CF_OK ||
             cf_ddpm_eval_init(&s->eval, &e->model, 512, &err) != CF_OK) {
    return core_error(error, CONFORM_ERROR_INPUT, &err), NULL;
  }
  memcpy(s->ref.x, e->ref.x, sizeof(float) * (size_t)e->ref.n * e->ref.dim);
  if (cset_build(&s->cs, &e->cs.raw, &s->norm, &err) != CF_OK)
    return core_error(error, CONFORM_ERROR_INPUT, &err), NULL;
  conform_sampler_load(s, e->ema ? e->ema : e->params->value, e->step);
  s->train_seconds = e->train_seconds;
  return g_steal_pointer(&s);
}

float *
conform_engine_snapshot(const ConformEngine *e, gsize *n)
{
  *n = e->params->total;
  return g_memdup2(e->ema ? e->ema : e->params->value, *n * sizeof(float));
}

void
conform_sampler_load(ConformSampler *s, const float *arena, long step)
{
  if (s->vae)
    memcpy(s->vmodel.params.value, arena, s->vmodel.params.total * sizeof(float));
  else
    cf_ddpm_eval_load(&s->eval, arena);
  s->step = step;
}

ConformSampleSet *
conform_sample_set_ref(ConformSampleSet *s)
{
  return g_atomic_rc_box_acquire(s);
}

static void
sample_set_free_contents(ConformSampleSet *s)
{
  g_free(s->strategy);
  g_free(s->sampler);
  cf_free_aligned(s->x);
  cf_free_aligned(s->raw);
  g_free(s->viol);
  g_free(s->viol_raw);
  g_free(s->traj);
  g_free(s->traj_t);
  g_free(s->traj_viol_p50);
  g_free(s->traj_viol_max);
}

void
conform_sample_set_unref(ConformSampleSet *s)
{
  if (s)
    g_atomic_rc_box_release_full(s, (GDestroyNotify)sample_set_free_contents);
}

/* A sample set with x and raw allocated (n x dim each); NULL when out of
 * memory. Takes `sampler`. */
static ConformSampleSet *
sample_set_new(int n, int dim, long step, const char *strategy, char *sampler)
{
  ConformSampleSet *r = g_atomic_rc_box_new0(ConformSampleSet);
  r->n = n;
  r->dim = dim;
  r->step = step;
  r->strategy = g_strdup(strategy);
  r->sampler = sampler;
  r->x = cf_alloc_floats((size_t)n * dim);
  r->raw = cf_alloc_floats((size_t)n * dim);
  if (!r->x || !r->raw) {
    conform_sample_set_unref(r);
    return NULL;
  }
  return r;
}

/* Per-sample ||A x - b|| of x and of raw (nothing without a constraint). */
static void
sample_set_violations(ConformSampleSet *r, const CfConstraint *c)
{
  if (c->m == 0)
    return;
  r->viol = g_new(double, r->n);
  r->viol_raw = g_new(double, r->n);
  cf_constraint_violation(c, r->x, r->n, r->viol, NULL);
  cf_constraint_violation(c, r->raw, r->n, r->viol_raw, NULL);
}

/* Orthogonal projection in raw space, twice: the second pass removes the
 * first's float error (cancellation when |x| >> |b|), leaving only the
 * round-off of storing x. */
static void
project_raw_exact(CfProjector *p, float *x, int n)
{
  cf_projector_reserve(p, n);
  cf_project(p, x, n);
  cf_project(p, x, n);
}

typedef struct {
  ConformSampler *s;
  gboolean project;   /* projected-sampling */
  int traj_n;
  float *traj;        /* model space during sampling, raw at the end */
  int k;
} HookData;

static void
sample_hook(void *user, float *x, int B, int t_next)
{
  HookData *h = user;
  if (h->project)
    cf_project(&h->s->cs.proj_model, x, B);
  if (h->traj) {
    h->k++;
    memcpy(h->traj + (size_t)h->k * h->traj_n * h->s->dim, x, sizeof(float) * (size_t)h->traj_n * h->s->dim);
  }
}

static int
cmp_double(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* ELBO, reconstruction term and importance-weighted log-likelihood of the
 * held-out data under the VAE, per sample, in model (standardised) space
 * (the constrained likelihood for cgauss: density on the affine subspace,
 * core/vae.h states the conventions; values across conventions are not
 * comparable). */
#define VAE_EVAL_MAX 500
#define VAE_IW_K 50

static void
vae_metrics(CfVae *v, const CfDataset *ref, const CfNorm *norm, guint64 seed, ConformSummary *out)
{
  int n = MIN(ref->n, VAE_EVAL_MAX);
  float *u = g_new(float, (gsize)n * ref->dim);
  memcpy(u, ref->x, sizeof(float) * (gsize)n * ref->dim);
  cf_norm_apply(norm, u, n);
  double *elbo = g_new(double, n), *recon = g_new(double, n), *ll = g_new(double, n);
  CfRng rng;
  cf_rng_seed_stream(&rng, seed, STREAM_METRIC);
  CfError err;
  out->has_vae = TRUE;
  out->elbo = out->recon = out->test_ll = NAN;
  if (cf_vae_elbo(v, u, n, &rng, elbo, recon, &err) == CF_OK) {
    double se = 0, sr = 0;
    for (int i = 0; i < n; i++) {
      se += elbo[i];
      sr += recon[i];
    }
    out->elbo = se / n;
    out->recon = sr / n;
  }
  if (cf_vae_iw_loglik(v, u, n, VAE_IW_K, &rng, ll, &err) == CF_OK) {
    double sl = 0;
    for (int i = 0; i < n; i++)
      sl += ll[i];
    out->test_ll = sl / n;
  }
  out->iw_k = VAE_IW_K;
  g_free(u);
  g_free(elbo);
  g_free(recon);
  g_free(ll);
}

/* VAE sampling: decoder samples under the trained strategy (cgauss: exact
 * constrained Gaussian; constrained-layer: projected means), or unconstrained
 * decoder samples for `none`, projected afterwards for `projection`. */
static ConformSampleSet *
vae_sampler_run(ConformSampler *s, const ConformSampleOptions *o, const char *strategy, GError **error)
{
  CfVaeStrategy trained = vae_strategy(s->cfg.strategy), want;
  if (g_strcmp0(strategy, "none") == 0 || g_strcmp0(strategy, "projection") == 0) {
    want = CF_VAE_NONE;
  } else if (g_strcmp0(strategy, "constrained-layer") == 0 || g_strcmp0(strategy, "cgauss") == 0) {
    want = vae_strategy(strategy);
    if (want != trained) {
      g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_USAGE,
                  "strategy '%s' is part of the VAE's training; this one was trained with '%s' (train again with "
                  "--strategy %s)", strategy, s->cfg.strategy, strategy);
      return NULL;
    }
  } else {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_USAGE,
                "strategy '%s' is not available for a VAE; valid: none, projection, constrained-layer, cgauss",
                strategy);
    return NULL;
  }
  gboolean constrained = g_strcmp0(strategy, "none") != 0;
  if (constrained && s->cs.raw.m == 0) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_USAGE, "strategy '%s' needs a constraint; this experiment has none",
                strategy);
    return NULL;
  }
  if (o->n < 1 || o->n > 10000000) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_USAGE, "sample count %d is out of range [1, 10000000]", o->n);
    return NULL;
  }
  const int n = o->n, dim = s->dim;
  ConformSampleSet *r = sample_set_new(n, dim, s->step, strategy, g_strdup("vae"));
  if (!r) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_INPUT, "out of memory for %d samples", n);
    return NULL;
  }
  CfRng rng;
  if (o->use_seed)
    cf_rng_seed(&rng, o->seed);
  else
    cf_rng_seed_stream(&rng, s->cfg.seed, STREAM_SAMPLE);
  gint64 t0 = g_get_monotonic_time();
  s->vmodel.cfg.strategy = want; /* the sampler's own copy */
  CfError err;
  CfStatus st = cf_vae_sample(&s->vmodel, n, &rng, r->x, &err);
  s->vmodel.cfg.strategy = trained;
  if (st != CF_OK) {
    conform_sample_set_unref(r);
    core_error(error, CONFORM_ERROR_INPUT, &err);
    return NULL;
  }
  cf_norm_invert(&s->norm, r->x, n);
  memcpy(r->raw, r->x, sizeof(float) * (size_t)n * dim);
  /* projection: the post-hoc step itself; constrained-layer and cgauss are
   * exact in model space already, this only removes the round-off of mapping
   * back to raw space. */
  if (constrained)
    project_raw_exact(&s->cs.proj_raw, r->x, n);
  double secs = (double)(g_get_monotonic_time() - t0) / 1e6;
  sample_set_violations(r, &s->cs.raw);
  sampler_evaluate(s, r->x, n, r->viol, !o->preview, &r->summary);
  if (!o->preview)
    vae_metrics(&s->vmodel, &s->ref, &s->norm, s->cfg.seed, &r->summary);
  r->summary.sample_seconds = secs;
  return r;
}

ConformSampleSet *
conform_sampler_run(ConformSampler *s, const ConformSampleOptions *o, int traj_n, CfAbortFn abort_fn,
                    CfProgressFn progress_fn, void *cb_user, GError **error)
{
  const ConformConfig *cfg = &s->cfg;
  const char *strategy = o->strategy ? o->strategy : cfg->strategy;
  const char *sampler = o->sampler ? o->sampler : cfg->sampler;
  if (s->vae)
    return vae_sampler_run(s, o, strategy, error);
  gboolean project_after = g_strcmp0(strategy, "projection") == 0;
  gboolean project_steps = g_strcmp0(strategy, "projected-sampling") == 0;
  if (!project_after && !project_steps && g_strcmp0(strategy, "none") != 0) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_USAGE,
                "unknown strategy '%s'; valid strategies: none, projection, projected-sampling", strategy);
    return NULL;
  }
  if ((project_after || project_steps) && s->cs.raw.m == 0) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_USAGE, "strategy '%s' needs a constraint; this experiment has none",
                strategy);
    return NULL;
  }
  if (g_strcmp0(sampler, "ddpm") != 0 && g_strcmp0(sampler, "ddim") != 0) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_USAGE, "unknown sampler '%s'; valid samplers: ddpm, ddim", sampler);
    return NULL;
  }
  if (o->n < 1 || o->n > 10000000) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_USAGE, "sample count %d is out of range [1, 10000000]", o->n);
    return NULL;
  }
  CfSamplerConfig sc = {
    .kind = g_strcmp0(sampler, "ddim") == 0 ? CF_SAMPLER_DDIM : CF_SAMPLER_DDPM,
    .steps = o->sampling_steps > 0 ? o->sampling_steps : cfg->sampling_steps,
    .eta = (float)(o->eta >= 0 ? o->eta : cfg->eta),
    .clip = (float)cfg->x0_clip,
  };
  int n_steps = cf_sampler_n_steps(&s->sched, &sc);
  if (n_steps < 1) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_USAGE, "invalid sampler settings (%s, %d steps, T = %d)", sampler,
                sc.steps, s->sched.T);
    return NULL;
  }
  const int n = o->n, dim = s->dim;
  traj_n = CLAMP(traj_n, 0, n);
  ConformSampleSet *r = sample_set_new(n, dim, s->step, strategy,
                                       g_strdup_printf("%s %d", sc.kind == CF_SAMPLER_DDIM ? "ddim" : "ddpm", n_steps));
  if (r && traj_n > 0) {
    r->traj_n = traj_n;
    r->traj_steps = n_steps;
    r->traj = g_try_new(float, (gsize)(n_steps + 1) * traj_n * dim);
    r->traj_t = g_new(int, n_steps + 1);
  }
  if (!r || (traj_n > 0 && !r->traj)) {
    if (r)
      conform_sample_set_unref(r);
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_INPUT, "out of memory for %d samples", n);
    return NULL;
  }
  CfRng rng;
  if (o->use_seed)
    cf_rng_seed(&rng, o->seed);
  else
    cf_rng_seed_stream(&rng, cfg->seed, STREAM_SAMPLE);
  /* The hook records frames 1..n_steps of the first traj_n samples; x_T is
   * the sampler's first n x dim normal draws (ddpm.h), reproduced here from
   * a copy of the generator. */
  if (r->traj) {
    CfRng copy = rng;
    cf_rng_fill_normal(&copy, r->traj, (size_t)traj_n * dim);
  }
  HookData hd = {s, project_steps, traj_n, r->traj, 0};
  if (project_steps)
    cf_projector_reserve(&s->cs.proj_model, n);
  CfError err;
  gint64 t0 = g_get_monotonic_time();
  CfStatus st = cf_ddpm_sample(&s->sched, &sc, dim, n, cf_ddpm_eval_eps, &s->eval,
                               (project_steps || r->traj) ? sample_hook : NULL, &hd, &rng, r->x,
                               NULL, abort_fn, progress_fn, cb_user, &err);
  if (st != CF_OK) {
    conform_sample_set_unref(r);
    core_error(error, st == CF_ERR_ABORTED ? CONFORM_ERROR_CANCELLED : CONFORM_ERROR_INPUT, &err);
    return NULL;
  }
  cf_norm_invert(&s->norm, r->x, n);
  memcpy(r->raw, r->x, sizeof(float) * (size_t)n * dim);
  /* For projected-sampling this removes the round-off of mapping back from
   * model space. */
  if (project_after || project_steps)
    project_raw_exact(&s->cs.proj_raw, r->x, n);
  double secs = (double)(g_get_monotonic_time() - t0) / 1e6;
  if (r->traj) {
    for (int k = 0; k <= n_steps; k++)
      r->traj_t[k] = cf_sampler_time(&s->sched, &sc, n_steps - k);
    cf_norm_invert(&s->norm, r->traj, (n_steps + 1) * traj_n);
    if (project_after) /* the last frame shows what the user gets */
      memcpy(r->traj + (size_t)n_steps * traj_n * dim, r->x, sizeof(float) * (size_t)traj_n * dim);
  }
  sample_set_violations(r, &s->cs.raw);
  if (s->cs.raw.m > 0) {
    if (r->traj) {
      r->traj_viol_p50 = g_new(double, n_steps + 1);
      r->traj_viol_max = g_new(double, n_steps + 1);
      double *v = g_new(double, traj_n);
      for (int k = 0; k <= n_steps; k++) {
        cf_constraint_violation(&s->cs.raw, r->traj + (size_t)k * traj_n * dim, traj_n, v, NULL);
        qsort(v, (size_t)traj_n, sizeof(double), cmp_double);
        r->traj_viol_p50[k] = v[traj_n / 2];
        r->traj_viol_max[k] = v[traj_n - 1];
      }
      g_free(v);
    }
  }
  sampler_evaluate(s, r->x, n, r->viol, !o->preview, &r->summary);
  r->summary.sample_seconds = secs;
  return r;
}

gboolean
conform_engine_sample(ConformEngine *e, const ConformSampleOptions *o, float **out, float **raw_out,
                      CfAbortFn abort_fn, CfProgressFn progress_fn, void *cb_user, GError **error)
{
  g_autoptr(ConformSampler) s = conform_engine_make_sampler(e, error);
  if (!s)
    return FALSE;
  g_autoptr(ConformSampleSet) r = conform_sampler_run(s, o, 0, abort_fn, progress_fn, cb_user, error);
  if (!r)
    return FALSE;
  *out = g_steal_pointer(&r->x);
  if (raw_out)
    *raw_out = g_steal_pointer(&r->raw);
  return TRUE;
}

/* Summary metrics of samples x (raw space); viol (may be NULL) holds the
 * per-sample violations when they are already computed. */
static void
evaluate_samples(const ConformConfig *cfg, const CfConstraint *c, const CfDataset *ref, double train_seconds,
                 const float *x, int n, const double *viol, gboolean with_quality, ConformSummary *s)
{
  memset(s, 0, sizeof *s);
  s->n = n;
  s->train_seconds = train_seconds;
  if (c->m > 0) {
    s->has_constraint = TRUE;
    double *l2 = g_new(double, n), *linf = g_new(double, n);
    cf_constraint_violation(c, x, n, viol ? NULL : l2, linf);
    if (viol)
      memcpy(l2, viol, sizeof(double) * n);
    cf_violation_stats(&s->viol, l2, n, cf_violation_tolerance(cfg->tol_rel, c->b, c->m));
    for (int i = 0; i < n; i++)
      s->viol_linf_max = MAX(s->viol_linf_max, linf[i]);
    g_free(l2);
    g_free(linf);
  }
  if (!with_quality) {
    s->energy_distance = s->mmd = NAN;
    return;
  }
  CfRng rng;
  cf_rng_seed_stream(&rng, cfg->seed, STREAM_METRIC);
  s->energy_distance = cf_energy_distance(x, n, ref->x, ref->n, ref->dim, cfg->metric_max_n, &rng);
  cf_rng_seed_stream(&rng, cfg->seed, STREAM_METRIC);
  s->mmd = cf_mmd_rbf(x, n, ref->x, ref->n, ref->dim, cfg->metric_max_n, &rng);
}

static void
sampler_evaluate(ConformSampler *s, const float *x, int n, const double *viol, gboolean with_quality,
                 ConformSummary *out)
{
  evaluate_samples(&s->cfg, &s->cs.raw, &s->ref, s->train_seconds, x, n, viol, with_quality, out);
}

void
conform_engine_evaluate(ConformEngine *e, const float *samples, int n, ConformSummary *s)
{
  evaluate_samples(&e->cfg, &e->cs.raw, &e->ref, e->train_seconds, samples, n, NULL, TRUE, s);
  if (e->vae) {
    /* with the weights samples come from (the EMA when kept), like the window */
    g_autoptr(ConformSampler) sm = conform_engine_make_sampler(e, NULL);
    if (sm)
      vae_metrics(&sm->vmodel, &sm->ref, &sm->norm, e->cfg.seed, s);
  }
}

GString *
conform_summary_to_tsv(const ConformSummary *s)
{
  GString *o = g_string_new(NULL);
#define ROW(name, fmt, v) g_string_append_printf(o, "%s\t" fmt "\n", name, v)
  ROW("n_samples", "%d", s->n);
  if (s->has_constraint) {
    ROW("violation_mean", "%.6g", s->viol.mean);
    ROW("violation_median", "%.6g", s->viol.median);
    ROW("violation_p99", "%.6g", s->viol.p99);
    ROW("violation_max", "%.6g", s->viol.max);
    ROW("violation_linf_max", "%.6g", s->viol_linf_max);
    ROW("violation_tolerance", "%.6g", s->viol.tol);
    ROW("frac_satisfied", "%.6g", s->viol.frac_satisfied);
  }
  if (!isnan(s->energy_distance)) /* previews skip the quality metrics */
    ROW("energy_distance", "%.6g", s->energy_distance);
  if (!isnan(s->mmd))
    ROW("mmd", "%.6g", s->mmd);
  if (s->has_vae) { /* model space, per sample; see core/vae.h for conventions */
    if (!isnan(s->test_ll))
      ROW("test_ll", "%.6g", s->test_ll);
    if (!isnan(s->elbo))
      ROW("elbo", "%.6g", s->elbo);
    if (!isnan(s->recon))
      ROW("recon", "%.6g", s->recon);
    ROW("iw_samples", "%d", s->iw_k);
  }
  ROW("train_seconds", "%.3f", s->train_seconds);
  ROW("sample_seconds", "%.3f", s->sample_seconds);
#undef ROW
  return o;
}

/* ---- experiment directories ------------------------------------------------ */

static char *
checkpoint_header(const ConformEngine *e)
{
  return g_strdup_printf("model=%s\nlatent=%d\ndim=%d\nwidth=%d\ndepth=%d\ntemb_dim=%d\nT=%d\nschedule=%s\n"
                         "step=%ld\nadam_t=%ld\ntrain_seconds=%.17g\nparams=%zu\n",
                         e->vae ? "vae" : "ddpm", e->cfg.latent, e->dim, e->cfg.width, e->cfg.depth, e->cfg.temb_dim,
                         e->cfg.T, e->cfg.schedule, e->step,
                         e->adam.t, e->train_seconds, e->params->total);
}

static GString *
records_csv(const ConformEngine *e)
{
  GString *s = g_string_new("step,loss,lr,grad_norm,seconds\n");
  for (guint i = 0; i < e->records->len; i++) {
    const ConformTrainRecord *r = &g_array_index(e->records, ConformTrainRecord, i);
    g_string_append_printf(s, "%ld,%.9g,%.9g,%.9g,%.6f\n", r->step, r->loss, r->lr, r->grad_norm, r->seconds);
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
  CfCkptArena arenas[7];
  int na = 0;
  arenas[na++] = (CfCkptArena){"params", np, e->params->value};
  if (e->ema)
    arenas[na++] = (CfCkptArena){"ema", np, e->ema};
  arenas[na++] = (CfCkptArena){"adam.m", np, e->adam.m};
  arenas[na++] = (CfCkptArena){"adam.v", np, e->adam.v};
  arenas[na++] = (CfCkptArena){"norm.mean", (size_t)e->dim, e->norm.mean};
  arenas[na++] = (CfCkptArena){"norm.scale", (size_t)e->dim, e->norm.scale};
  g_autofree char *header = checkpoint_header(e);
  unsigned char *buf = NULL;
  size_t len = 0;
  CfError err;
  if (cf_checkpoint_encode(header, arenas, na, &buf, &len, &err) != CF_OK)
    return core_error(error, CONFORM_ERROR_IO, &err);
  g_autofree char *ckpt = g_build_filename(dir, "weights.ckpt", NULL);
  gboolean ok = conform_write_atomic(ckpt, buf, len, error);
  free(buf);
  if (!ok)
    return FALSE;

  g_autoptr(GKeyFile) kf = conform_config_to_keyfile(&e->cfg);
  gsize ilen;
  g_autofree char *ini = g_key_file_to_data(kf, &ilen, NULL);
  g_autofree char *ini_path = g_build_filename(dir, "experiment.ini", NULL);
  if (!conform_write_atomic(ini_path, ini, ilen, error))
    return FALSE;

  g_autoptr(GString) m = records_csv(e);
  g_autofree char *mpath = g_build_filename(dir, "metrics.csv", NULL);
  if (!conform_write_atomic(mpath, m->str, m->len, error))
    return FALSE;

  if (samples) {
    g_autoptr(GString) sc = conform_csv_floats(samples, n_samples, e->dim, "x");
    g_autofree char *spath = g_build_filename(dir, "samples.csv", NULL);
    if (!conform_write_atomic(spath, sc->str, sc->len, error))
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
load_records(ConformEngine *e, const char *dir)
{
  g_autofree char *path = g_build_filename(dir, "metrics.csv", NULL);
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
    ConformTrainRecord r;
    char tail;
    if (sscanf(lines[i], "%ld,%f,%f,%f,%lf%c", &r.step, &r.loss, &r.lr, &r.grad_norm, &r.seconds, &tail) != 5 ||
        r.step < 0 || r.step > e->step) {
      g_free(e->warnings);
      e->warnings = g_strdup_printf("%s:%u: unreadable line; training history restored up to there", path, i + 1);
      return;
    }
    g_array_append_val(e->records, r);
  }
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
  ConformConfig cfg;
  conform_config_init(&cfg);
  if (!conform_config_from_keyfile(&cfg, kf, ini_path, error)) {
    conform_config_clear(&cfg);
    return NULL;
  }
  ConformEngine *e = conform_engine_new(&cfg, error);
  conform_config_clear(&cfg);
  if (!e)
    return NULL;

  char *buf = NULL;
  gsize len = 0;
  if (!conform_read_file(ckpt_path, MAX_FILE_BYTES, &buf, &len, error)) {
    conform_engine_free(e);
    return NULL;
  }
  CfCheckpoint ck;
  CfError err;
  CfStatus st = cf_checkpoint_decode(&ck, (const unsigned char *)buf, len, ckpt_path, &err);
  g_free(buf);
  if (st != CF_OK) {
    core_error(error, CONFORM_ERROR_INPUT, &err);
    conform_engine_free(e);
    return NULL;
  }
  size_t np = e->params->total;
  gboolean ok = header_int(&ck, ckpt_path, "dim", e->dim, error) &&
                header_int(&ck, ckpt_path, "width", e->cfg.width, error) &&
                header_int(&ck, ckpt_path, "depth", e->cfg.depth, error) &&
                header_int(&ck, ckpt_path, "temb_dim", e->cfg.temb_dim, error) &&
                header_int(&ck, ckpt_path, "T", e->cfg.T, error) &&
                header_int(&ck, ckpt_path, "step", -1, error) &&
                load_arena(&ck, ckpt_path, "params", e->params->value, np, TRUE, error) &&
                load_arena(&ck, ckpt_path, "ema", e->ema, np, e->ema != NULL, error) &&
                load_arena(&ck, ckpt_path, "adam.m", e->adam.m, np, TRUE, error) &&
                load_arena(&ck, ckpt_path, "adam.v", e->adam.v, np, TRUE, error) &&
                load_arena(&ck, ckpt_path, "norm.mean", NULL, (size_t)e->dim, TRUE, error) &&
                load_arena(&ck, ckpt_path, "norm.scale", NULL, (size_t)e->dim, TRUE, error);
  if (ok) {
    /* Files from before the VAE have no model line: they are diffusion models. */
    g_autofree char *model = cf_checkpoint_header_get(&ck, "model");
    const char *want = e->vae ? "vae" : "ddpm";
    if (g_strcmp0(model ? model : "ddpm", want) != 0) {
      g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_INPUT,
                  "%s: checkpoint is for a different model: model=%s, but experiment.ini gives %s", ckpt_path,
                  model, want);
      ok = FALSE;
    }
  }
  if (ok && e->vae)
    ok = header_int(&ck, ckpt_path, "latent", e->cfg.latent, error);
  if (ok) {
    g_autofree char *sched = cf_checkpoint_header_get(&ck, "schedule");
    if (g_strcmp0(sched, e->cfg.schedule) != 0) {
      g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_INPUT,
                  "%s: checkpoint is for a different model: schedule=%s, but experiment.ini gives %s", ckpt_path,
                  sched ? sched : "(none)", e->cfg.schedule);
      ok = FALSE;
    }
  }
  if (ok) {
    /* The normalisation is part of the model: use the stored one (it equals
     * a refit on regenerated data, but a CSV may have changed since). */
    const CfCkptArena *mu = cf_checkpoint_find(&ck, "norm.mean"), *sc = cf_checkpoint_find(&ck, "norm.scale");
    cf_norm_invert(&e->norm, e->train.x, e->train.n);
    if (cf_norm_set(&e->norm, e->dim, mu->data, sc->data, &err) != CF_OK)
      ok = core_error(error, CONFORM_ERROR_INPUT, &err);
    cf_norm_apply(&e->norm, e->train.x, e->train.n);
    if (ok) {
      /* model-space constraint under the stored normalisation */
      CfConstraint raw;
      cf_constraint_init(&raw);
      ok = (e->cs.raw.m == 0 || cf_constraint_copy(&raw, &e->cs.raw, &err) == CF_OK ||
            core_error(error, CONFORM_ERROR_INPUT, &err)) &&
           apply_constraint(e, &raw, error);
      cf_constraint_clear(&raw);
    }
    g_autofree char *step = cf_checkpoint_header_get(&ck, "step");
    g_autofree char *adam_t = cf_checkpoint_header_get(&ck, "adam_t");
    g_autofree char *secs = cf_checkpoint_header_get(&ck, "train_seconds");
    e->step = step ? strtol(step, NULL, 10) : 0;
    e->adam.t = adam_t ? strtol(adam_t, NULL, 10) : e->step;
    e->train_seconds = secs ? g_ascii_strtod(secs, NULL) : 0;
    remember_good(e);
    load_records(e, dir);
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
  if (e->vae && (!c || c->m == 0) && vae_strategy(e->cfg.strategy) >= CF_VAE_CONSTRAINED_LAYER) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_USAGE,
                "this VAE trains with '%s', which needs a constraint; Reset with strategy none to drop it",
                e->cfg.strategy);
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
  if (e->cs.raw.m == 0 && g_strcmp0(e->cfg.strategy, "none") != 0) {
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

ConformSampleSet *
conform_engine_reproject(ConformEngine *e, const ConformSampleSet *old)
{
  gboolean project = g_strcmp0(old->strategy, "projection") == 0;
  if (!old->raw || old->dim != e->dim || (!project && g_strcmp0(old->strategy, "none") != 0))
    return NULL;
  if (project && e->cs.raw.m == 0)
    return NULL;
  const int n = old->n, dim = old->dim;
  ConformSampleSet *r = sample_set_new(n, dim, old->step, old->strategy, g_strdup(old->sampler));
  if (!r)
    return NULL;
  memcpy(r->raw, old->raw, sizeof(float) * (size_t)n * dim);
  memcpy(r->x, old->raw, sizeof(float) * (size_t)n * dim);
  if (project)
    project_raw_exact(&e->cs.proj_raw, r->x, n);
  sample_set_violations(r, &e->cs.raw);
  evaluate_samples(&e->cfg, &e->cs.raw, &e->ref, e->train_seconds, r->x, n, r->viol, FALSE, &r->summary);
  return r;
}
