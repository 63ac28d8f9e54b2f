#define G_LOG_DOMAIN "conform"

/* The sampling side of the engine: samplers that run beside training on
 * their own copies, sample sets, and the summary metrics. */
#include "conform-engine-private.h"
#include "conform-classifier.h"
#include "conform-image-data.h"

#include <math.h>
#include <string.h>

static void sampler_evaluate(ConformSampler *s, const float *x, int n, const double *viol, gboolean with_quality,
                             int cond_row, ConformSummary *out);

/* -1 (sample i answers held-out row i mod n_ref) or the options' condition row. */
static int
cond_row_of(const ConformSampleOptions *o)
{
  return o && o->use_condition ? o->condition_row : -1;
}

gboolean
conform_check_condition(const ConformConfig *cfg, int nx, int n_ref, int row, GError **error)
{
  if (nx == 0) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_USAGE,
                "preset '%s' has no inputs to condition on (data.inputs = 0); use a conditional preset such as "
                "fashion-superres (a thumbnail per image) or cstr", cfg->preset);
    return FALSE;
  }
  if (row < 0 || row >= n_ref) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_USAGE,
                "condition %d is out of range: the experiment holds out %d row%s (0..%d)%s", row, n_ref,
                n_ref == 1 ? "" : "s", n_ref - 1,
                conform_image_source_is(cfg->data) && !conform_image_source_is_folder(cfg->data)
                  ? "; for test images beyond that raise data.n_ref (at most 10000)"
                  : "");
    return FALSE;
  }
  return TRUE;
}

gboolean
conform_engine_check_condition(const ConformEngine *e, int row, GError **error)
{
  return conform_check_condition(&e->cfg, e->nx, e->ref.n, row, error);
}


void
conform_sampler_free(ConformSampler *s)
{
  if (!s)
    return;
  conform_config_clear(&s->cfg);
  cf_schedule_clear(&s->sched);
  cf_norm_clear(&s->norm);
  cset_clear(&s->cs);
  if (s->vae) {
    cf_vae_clear(&s->vmodel);
  } else {
    cf_ddpm_eval_clear(&s->eval);
  }
  sampler_mirror_clear(s);
  cf_dataset_clear(&s->ref);
  g_free(s->train_img);
  g_free(s->class_centroid);
  if (s->clf)
    conform_classifier_free(s->clf);
  g_free(s);
}

/* The images (n x size^2) of image rows (n x dim): their last size^2 columns. */
static float *
image_part(const float *rows, int n, int dim, int size)
{
  const int d = size * size, off = conform_image_row_offset(dim, size);
  float *img = g_new(float, (gsize)n * d);
  for (int i = 0; i < n; i++)
    memcpy(img + (gsize)i * d, rows + (gsize)i * dim + off, sizeof(float) * d);
  return img;
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
  s->nx = e->nx;
  if (cf_norm_set(&s->norm, e->dim, e->norm.mean, e->norm.scale, &err) != CF_OK ||
      cf_dataset_alloc(&s->ref, e->ref.n, e->ref.dim, FALSE, &err) != CF_OK)
    return core_error(error, CONFORM_ERROR_INPUT, &err), NULL;
  if (s->vae) {
    if (cf_vae_init(&s->vmodel, &e->vmodel.cfg, &err) != CF_OK ||
        (e->cs.model.m > 0 && cf_vae_set_constraint(&s->vmodel, &e->cs.model, &err) != CF_OK))
      return core_error(error, CONFORM_ERROR_INPUT, &err), NULL;
  } else if (cf_schedule_init(&s->sched, e->model.sched.kind, e->model.sched.T, &err) != CF_OK ||
             cf_ddpm_eval_init(&s->eval, &e->model, e->model.cfg.arch == CF_ARCH_UNET ? 32 : 512, &err) != CF_OK) {
    return core_error(error, CONFORM_ERROR_INPUT, &err), NULL;
  }
  memcpy(s->ref.x, e->ref.x, sizeof(float) * (size_t)e->ref.n * e->ref.dim);
  if (conform_image_source_is(e->cfg.data)) { /* up to 1000 training images, raw, without inputs */
    s->n_train_img = MIN(e->train.n, 1000);
    float *rows = g_memdup2(e->train.x, sizeof(float) * (gsize)s->n_train_img * e->dim);
    cf_norm_invert(&e->norm, rows, s->n_train_img);
    s->train_img = image_part(rows, s->n_train_img, e->dim, e->cfg.image_size);
    g_free(rows);
  }
  if (cset_build(&s->cs, &e->cs.raw, &s->norm, e->nx, &err) != CF_OK)
    return core_error(error, CONFORM_ERROR_INPUT, &err), NULL;
  if (!cset_set_equations(&s->cs, e->cfg.equations, e->dim, &s->norm, error) || !sampler_mirror_init(s, e, error))
    return NULL;
  s->n_classes = e->n_classes;
  s->class_mask = e->class_mask;
  memcpy(s->class_pi, e->class_pi, sizeof s->class_pi);
  if (e->class_centroid)
    s->class_centroid = g_memdup2(e->class_centroid, sizeof(float) * (gsize)e->n_classes * e->dim);
  g_autofree float *snap = conform_engine_snapshot(e, &(gsize){0});
  conform_sampler_load(s, snap, e->step);
  s->train_seconds = e->train_seconds;
  return g_steal_pointer(&s);
}

/* The model's parameters, then (strategy mirror) the maps' EMA weights. */
float *
conform_engine_snapshot(const ConformEngine *e, gsize *n)
{
  const size_t np = e->params->total, nm = e->namm ? e->namm->params.total : 0;
  *n = np + nm;
  float *a = g_new(float, *n);
  memcpy(a, e->ema ? e->ema : e->params->value, np * sizeof(float));
  if (nm)
    memcpy(a + np, e->namm->ema, nm * sizeof(float));
  return a;
}

void
conform_sampler_load(ConformSampler *s, const float *arena, long step)
{
  if (s->vae) {
    memcpy(s->vmodel.params.value, arena, s->vmodel.params.total * sizeof(float));
  } else {
    cf_ddpm_eval_load(&s->eval, arena);
    if (s->namm)
      cf_namm_eval_load(s->namm, arena + s->eval.params.total);
  }
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
  g_free(s->mirror);
  g_free(s->mirror_ref);
  g_free(s->grid_g);
  g_free(s->grid_f);
  g_free(s->traj);
  g_free(s->traj_t);
  g_free(s->traj_viol_p50);
  g_free(s->traj_viol_max);
  g_free(s->traj_viol);
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
sample_set_violations(ConformSampleSet *r, const ConstraintSet *cs)
{
  if (!cset_active(cs))
    return;
  r->viol = g_new(double, r->n);
  r->viol_raw = g_new(double, r->n);
  cset_violation(cs, r->x, r->n, r->viol, NULL);
  cset_violation(cs, r->raw, r->n, r->viol_raw, NULL);
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
  const float *k;     /* per-sample k (model space) with inputs, else NULL */
  int traj_n, ny;
  float *traj;        /* generated columns, model space */
  int k_frame;
} HookData;

static void
sample_hook(void *user, float *x, int B, int t_next)
{
  HookData *h = user;
  if (h->project) {
    if (h->s->nx == 0)
      cf_project(&h->s->cs.proj_model, x, B);
    else
      (void)cset_out_project(&h->s->cs, TRUE, x, B, h->k, NULL); /* k was validated by the first call */
  }
  if (h->traj) {
    h->k_frame++;
    memcpy(h->traj + (size_t)h->k_frame * h->traj_n * h->ny, x, sizeof(float) * (size_t)h->traj_n * h->ny);
  }
}

/* Rows [x_i | y_i] of n x (nx + ny) from x (n x nx) and y (n x ny). */
static void
join_rows(float *out, const float *x, int nx, const float *y, int ny, int n)
{
  for (int i = 0; i < n; i++) {
    memcpy(out + (size_t)i * (nx + ny), x + (size_t)i * nx, sizeof(float) * nx);
    memcpy(out + (size_t)i * (nx + ny) + nx, y + (size_t)i * ny, sizeof(float) * ny);
  }
}

/* Post-hoc projection of raw rows: the whole row without inputs, else the
 * outputs onto B y = b - A_x x per sample (inputs unchanged). */
static void
project_rows_raw(ConstraintSet *cs, float *rows, int n, int dim)
{
  if (cs->has_eq) {
    (void)cset_project_equations(cs, rows, n);
    return;
  }
  if (cs->nx == 0) {
    project_raw_exact(&cs->proj_raw, rows, n);
    return;
  }
  const int nx = cs->nx, ny = dim - nx, m = cs->raw.m;
  float *y = g_new(float, (gsize)n * ny), *k = g_new(float, (gsize)n * m);
  for (int i = 0; i < n; i++)
    memcpy(y + (gsize)i * ny, rows + (gsize)i * dim + nx, sizeof(float) * ny);
  cset_out_k(cs, FALSE, rows, dim, n, k);
  if (cset_out_project(cs, FALSE, y, n, k, NULL) == CF_OK)
    for (int i = 0; i < n; i++)
      memcpy(rows + (gsize)i * dim + nx, y + (gsize)i * ny, sizeof(float) * ny);
  g_free(y);
  g_free(k);
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

/* On the first min(max_n, n_ref) held-out rows (a fixed subset) with iw_k
 * importance samples: VAE_EVAL_MAX / VAE_IW_K for explicit samples,
 * CONFORM_VAE_PREVIEW_N / CONFORM_VAE_PREVIEW_K for previews. */
static void
vae_metrics(CfVae *v, const CfDataset *ref, const CfNorm *norm, guint64 seed, int max_n, int iw_k,
            ConformSummary *out)
{
  int n = MIN(ref->n, max_n);
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
  if (cf_vae_iw_loglik(v, u, n, iw_k, &rng, ll, &err) == CF_OK) {
    double sl = 0;
    for (int i = 0; i < n; i++)
      sl += ll[i];
    out->test_ll = sl / n;
  }
  /* On the subspace (the cgauss convention): cgauss's own test_ll; for
   * none/projection the decoder Gaussian conditioned on A x = b after the
   * fact, so the two are comparable. */
  out->test_ll_sub = NAN;
  CfVaeStrategy trained = v->cfg.strategy;
  if (trained == CF_VAE_CGAUSS) {
    out->test_ll_sub = out->test_ll;
  } else if (trained <= CF_VAE_PROJECTION && v->have_constraint && v->cg.n > 0) {
    v->cfg.strategy = CF_VAE_CGAUSS;
    cf_rng_seed_stream(&rng, seed, STREAM_METRIC);
    if (cf_vae_iw_loglik(v, u, n, iw_k, &rng, ll, &err) == CF_OK) {
      double sl = 0;
      for (int i = 0; i < n; i++)
        sl += ll[i];
      out->test_ll_sub = sl / n;
    }
    v->cfg.strategy = trained;
  }
  out->iw_k = iw_k;
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
  /* raw: the unconstrained sample (none, projection) or, for the
   * strategies trained with the constraint, the unconstrained decoder mean
   * each sample corrects (arrows in the window, violation before). */
  gboolean means = want >= CF_VAE_CONSTRAINED_LAYER;
  CfStatus st = cf_vae_sample(&s->vmodel, n, &rng, r->x, means ? r->raw : NULL, &err);
  s->vmodel.cfg.strategy = trained;
  if (st != CF_OK) {
    conform_sample_set_unref(r);
    core_error(error, CONFORM_ERROR_INPUT, &err);
    return NULL;
  }
  cf_norm_invert(&s->norm, r->x, n);
  if (means)
    cf_norm_invert(&s->norm, r->raw, n);
  else
    memcpy(r->raw, r->x, sizeof(float) * (size_t)n * dim);
  /* projection: the post-hoc step itself; constrained-layer and cgauss are
   * exact in model space already, this only removes the round-off of mapping
   * back to raw space. */
  if (constrained)
    project_raw_exact(&s->cs.proj_raw, r->x, n);
  double secs = (double)(g_get_monotonic_time() - t0) / 1e6;
  sample_set_violations(r, &s->cs);
  sampler_evaluate(s, r->x, n, r->viol, !o->preview, -1, &r->summary);
  if (!o->preview)
    vae_metrics(&s->vmodel, &s->ref, &s->norm, s->cfg.seed, VAE_EVAL_MAX, VAE_IW_K, &r->summary);
  else if (o->preview_vae)
    vae_metrics(&s->vmodel, &s->ref, &s->norm, s->cfg.seed, CONFORM_VAE_PREVIEW_N, CONFORM_VAE_PREVIEW_K,
                &r->summary);
  r->summary.sample_seconds = secs;
  return r;
}

/* Strategy mirror before the diffusion model trains: what the maps do to
 * noisy mirror-space points of held-out data (labelled as such). */
static ConformSampleSet *
mirror_maps_preview(ConformSampler *s, const ConformSampleOptions *o)
{
  ConformSampleSet *r = sample_set_new(o->n, s->dim, s->step, "mirror",
                                       g_strdup_printf("maps-phase f(g(x) + σε), σ ≤ %g,",
                                                       s->cfg.mirror_sigma_max));
  if (!r)
    return NULL;
  CfRng rng;
  cf_rng_seed_stream(&rng, o->use_seed ? o->seed : s->cfg.seed, STREAM_SAMPLE);
  gint64 t0 = g_get_monotonic_time();
  sampler_mirror_noisy_cycle(s, r->x, o->n, &rng);
  cf_norm_invert(&s->norm, r->x, o->n);
  memcpy(r->raw, r->x, sizeof(float) * (size_t)o->n * s->dim);
  sampler_mirror_views(s, r);
  sample_set_violations(r, &s->cs);
  sampler_evaluate(s, r->x, o->n, r->viol, !o->preview, -1, &r->summary);
  r->summary.sample_seconds = (double)(g_get_monotonic_time() - t0) / 1e6;
  return r;
}

ConformSampleSet *
conform_sampler_run(ConformSampler *s, const ConformSampleOptions *o, int traj_n, CfAbortFn abort_fn,
                    CfProgressFn progress_fn, void *cb_user, GError **error)
{
  const ConformConfig *cfg = &s->cfg;
  const char *strategy = o->strategy ? o->strategy : cfg->strategy;
  const char *sampler = o->sampler ? o->sampler : cfg->sampler;
  if (o->use_condition && !conform_check_condition(cfg, s->nx, s->ref.n, o->condition_row, error))
    return NULL;
  if (s->vae)
    return vae_sampler_run(s, o, strategy, error);
  gboolean project_after = g_strcmp0(strategy, "projection") == 0;
  gboolean project_steps = g_strcmp0(strategy, "projected-sampling") == 0;
  gboolean cgauss = g_strcmp0(strategy, "cgauss") == 0;
  gboolean mirror = g_strcmp0(strategy, "mirror") == 0;
  /* dual acts in training: its samples are the plain reverse chain */
  if (!project_after && !project_steps && !cgauss && !mirror && g_strcmp0(strategy, "none") != 0 &&
      g_strcmp0(strategy, "dual") != 0) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_USAGE,
                "unknown strategy '%s'; valid strategies for a diffusion model: none, projection, projected-sampling, "
                "cgauss, dual, mirror", strategy);
    return NULL;
  }
  if (mirror != (s->namm != NULL)) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_USAGE,
                mirror ? "strategy 'mirror' samples a diffusion model trained in the learned mirror space; this one "
                         "was trained with '%s' (train again with --strategy mirror)"
                       : "this diffusion model was trained in a learned mirror space: it samples with mirror only, not "
                         "'%s'",
                mirror ? cfg->strategy : strategy);
    return NULL;
  }
  if ((project_steps || cgauss) && s->cs.has_eq) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_USAGE,
                "strategy '%s' needs a linear constraint A x = b; this experiment's constraint is a set of equations",
                strategy);
    return NULL;
  }
  if (cgauss != ddpm_cgauss(cfg)) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_USAGE,
                cgauss ? "strategy 'cgauss' is part of the diffusion model's training; this one was trained with '%s' "
                         "(train again with --strategy cgauss)"
                       : "this diffusion model was trained with cgauss (in the constraint's null space): it samples "
                         "with cgauss only, not '%s'",
                cgauss ? cfg->strategy : strategy);
    return NULL;
  }
  if ((project_after || project_steps || cgauss) && !cset_active(&s->cs)) {
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
  const int n = o->n, dim = s->dim, nx = s->nx, ny = dim - nx, m = s->cs.model.m;
  if (mirror && s->step < cfg->mirror_steps)
    return mirror_maps_preview(s, o);
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
  /* With inputs, sample i is generated for the inputs of held-out row
   * i mod n_ref, or of the condition row for all (model space), with
   * k_i = b - A_x x_i. */
  float *xin = NULL, *kin = NULL, *y = r->x, *ytraj = r->traj;
  if (nx > 0) {
    xin = g_new(float, (gsize)n * nx);
    float *row = g_new(float, dim);
    for (int i = 0; i < n; i++) {
      memcpy(row, s->ref.x + (gsize)(o->use_condition ? o->condition_row : i % s->ref.n) * dim, sizeof(float) * dim);
      cf_norm_apply(&s->norm, row, 1);
      memcpy(xin + (gsize)i * nx, row, sizeof(float) * nx);
    }
    g_free(row);
    if (m > 0) {
      kin = g_new(float, (gsize)n * m);
      cset_out_k(&s->cs, TRUE, xin, nx, n, kin);
    }
    s->eval.cond = xin;
    y = g_new0(float, (gsize)n * ny);
    if (r->traj)
      ytraj = g_new(float, (gsize)(n_steps + 1) * traj_n * ny);
  }
  /* The hook records frames 1..n_steps of the first traj_n samples; x_T is
   * the sampler's first n x ny normal draws (ddpm.h), reproduced here from
   * a copy of the generator. */
  if (ytraj) {
    CfRng copy = rng;
    cf_rng_fill_normal(&copy, ytraj, (size_t)traj_n * ny);
  }
  HookData hd = {s, project_steps, kin, traj_n, ny, ytraj, 0};
  if (project_steps)
    cf_projector_reserve(&s->cs.proj_model, n);
  CfError err;
  gint64 t0 = g_get_monotonic_time();
  CfStepHook hook = (project_steps || ytraj) ? sample_hook : NULL;
  CfStatus st = CF_OK;
  if (project_steps && kin) /* validates k once, so the hook cannot fail */
    st = cf_cgauss_forward(&s->cs.out_model, n, y, &(float){1.0f}, CF_CGAUSS_VAR_ISO, kin, n, m, &err);
  if (st == CF_OK)
    st = cgauss ? cf_ddpm_sample_constrained(&s->sched, &sc, ny, n, cf_ddpm_eval_eps, &s->eval, &s->cs.out_model,
                                             kin, kin ? n : 0, kin ? m : 0, hook, &hd, &rng, y, NULL, abort_fn,
                                             progress_fn, cb_user, &err)
                : cf_ddpm_sample(&s->sched, &sc, ny, n, cf_ddpm_eval_eps, &s->eval, hook, &hd, &rng, y, NULL, abort_fn,
                                 progress_fn, cb_user, &err);
  s->eval.cond = NULL;
  if (st == CF_OK && nx > 0) {
    join_rows(r->x, xin, nx, y, ny, n);
    if (ytraj) {
      if (cgauss)
        (void)cf_cgauss_project(&s->cs.out_model, traj_n, ytraj, kin, traj_n, m, sqrt(s->sched.alpha_bar[s->sched.T]),
                                NULL);
      for (int k = 0; k <= n_steps; k++)
        join_rows(r->traj + (size_t)k * traj_n * dim, xin, nx, ytraj + (size_t)k * traj_n * ny, ny, traj_n);
    }
  } else if (st == CF_OK && ytraj && cgauss) { /* the chain starts from the draws projected onto B x = sqrt(abar_T) b */
    (void)cf_cgauss_project(&s->cs.out_model, traj_n, r->traj, NULL, 0, 0, sqrt(s->sched.alpha_bar[s->sched.T]), NULL);
  }
  if (nx > 0) {
    g_free(y);
    if (ytraj)
      g_free(ytraj);
  }
  g_free(xin);
  g_free(kin);
  if (st != CF_OK) {
    conform_sample_set_unref(r);
    core_error(error, st == CF_ERR_ABORTED ? CONFORM_ERROR_CANCELLED : CONFORM_ERROR_INPUT, &err);
    return NULL;
  }
  if (mirror) { /* back from mirror space: x = f(y); the trajectory too */
    r->mirror = g_memdup2(r->x, sizeof(float) * (gsize)n * dim);
    cf_namm_eval_inverse(s->namm, r->x, n, r->x);
    if (r->traj)
      cf_namm_eval_inverse(s->namm, r->traj, (n_steps + 1) * traj_n, r->traj);
  }
  cf_norm_invert(&s->norm, r->x, n);
  if (mirror)
    sampler_mirror_views(s, r);
  /* the given inputs verbatim (not through the normalisation and back), so
   * the final projection below uses exactly the held-out row's k */
  for (int i = 0; i < n && nx > 0; i++)
    memcpy(r->x + (gsize)i * dim, s->ref.x + (gsize)(o->use_condition ? o->condition_row : i % s->ref.n) * dim,
           sizeof(float) * nx);
  memcpy(r->raw, r->x, sizeof(float) * (size_t)n * dim);
  /* For projected-sampling and cgauss this removes the round-off of mapping
   * back from model space. */
  if (project_after || project_steps || cgauss)
    project_rows_raw(&s->cs, r->x, n, dim);
  double secs = (double)(g_get_monotonic_time() - t0) / 1e6;
  if (r->traj) {
    for (int k = 0; k <= n_steps; k++)
      r->traj_t[k] = cf_sampler_time(&s->sched, &sc, n_steps - k);
    cf_norm_invert(&s->norm, r->traj, (n_steps + 1) * traj_n);
    if (project_after) /* the last frame shows what the user gets */
      memcpy(r->traj + (size_t)n_steps * traj_n * dim, r->x, sizeof(float) * (size_t)traj_n * dim);
  }
  sample_set_violations(r, &s->cs);
  if (cset_active(&s->cs)) {
    if (r->traj) {
      r->traj_viol_p50 = g_new(double, n_steps + 1);
      r->traj_viol_max = g_new(double, n_steps + 1);
      r->traj_viol = g_new(double, (size_t)(n_steps + 1) * traj_n);
      double *v = g_new(double, traj_n);
      for (int k = 0; k <= n_steps; k++) {
        double *vk = r->traj_viol + (size_t)k * traj_n;
        cset_violation(&s->cs, r->traj + (size_t)k * traj_n * dim, traj_n, vk, NULL);
        memcpy(v, vk, sizeof(double) * traj_n);
        qsort(v, (size_t)traj_n, sizeof(double), cmp_double);
        r->traj_viol_p50[k] = v[traj_n / 2];
        r->traj_viol_max[k] = v[traj_n - 1];
      }
      g_free(v);
    }
  }
  sampler_evaluate(s, r->x, n, r->viol, !o->preview, cond_row_of(o), &r->summary);
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
evaluate_samples(const ConformConfig *cfg, const ConstraintSet *cs, const CfDataset *ref, double train_seconds,
                 const float *x, int n, const double *viol, gboolean with_quality, int cond_row, ConformSummary *s)
{
  memset(s, 0, sizeof *s);
  s->n = n;
  s->train_seconds = train_seconds;
  s->cond_rmse = NAN;
  s->mirror_cycle = NAN;
  const int nx = cfg->inputs, dim = ref->dim;
  if (nx > 0 && ref->n > 1) {
    /* sample i answers the inputs of held-out row i mod n_ref (or all the
     * condition row's): RMS error of its outputs against that row's, in
     * units of each output's spread */
    /* images: one spread for all pixels, the root of their mean variance
     * (an always-black border pixel's own spread is ~0) */
    gboolean images = conform_image_source_is(cfg->data);
    double pooled = 0;
    for (int j = nx; images && j < dim; j++) {
      double mu = 0, var = 0;
      for (int i = 0; i < ref->n; i++)
        mu += ref->x[(gsize)i * dim + j] / ref->n;
      for (int i = 0; i < ref->n; i++)
        var += (ref->x[(gsize)i * dim + j] - mu) * (ref->x[(gsize)i * dim + j] - mu) / (ref->n - 1);
      pooled += var / (dim - nx);
    }
    double se = 0;
    for (int j = nx; j < dim; j++) {
      double mu = 0, var = pooled;
      for (int i = 0; !images && i < ref->n; i++)
        mu += ref->x[(gsize)i * dim + j] / ref->n;
      for (int i = 0; !images && i < ref->n; i++)
        var += (ref->x[(gsize)i * dim + j] - mu) * (ref->x[(gsize)i * dim + j] - mu) / (ref->n - 1);
      double sd = var > 0 ? sqrt(var) : 1.0;
      for (int i = 0; i < n; i++) {
        int k = cond_row >= 0 && cond_row < ref->n ? cond_row : i % ref->n;
        double d = (x[(gsize)i * dim + j] - ref->x[(gsize)k * dim + j]) / sd;
        se += d * d;
      }
    }
    s->cond_rmse = sqrt(se / ((double)n * (dim - nx)));
  }
  if (cset_active(cs)) {
    s->has_constraint = TRUE;
    double *l2 = g_new(double, n), *linf = g_new(double, n);
    cset_violation(cs, x, n, viol ? NULL : l2, linf);
    if (viol)
      memcpy(l2, viol, sizeof(double) * n);
    cf_violation_stats(&s->viol, l2, n, cset_tolerance(cs, cfg->tol_rel));
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

/* Classifier metrics of image samples (see ConformSummary). */
static void
image_metrics(ConformSampler *s, const float *x, int n, ConformSummary *out)
{
  if (!s->clf_tried) {
    s->clf_tried = TRUE;
    g_autoptr(GError) err = NULL;
    s->clf = conform_classifier_load_bundled(s->cfg.image_size, &err);
    if (!s->clf)
      g_warning("image metrics unavailable: %s", err->message);
  }
  if (!s->clf || n < 2)
    return;
  /* the classifier sees the image part of the rows (without superres thumbnails) */
  g_autofree float *img = image_part(x, n, s->dim, s->cfg.image_size);
  g_autofree float *ref = image_part(s->ref.x, s->ref.n, s->dim, s->cfg.image_size);
  out->fd_classifier = conform_fd_classifier(s->clf, img, n, ref, s->ref.n, NULL);
  int nf = MIN(n, s->n_train_img);
  out->fd_floor = conform_fd_classifier(s->clf, s->train_img, nf, ref, s->ref.n, NULL);
  out->has_classes = conform_class_shares(s->clf, img, n, out->class_share, NULL) &&
                     conform_class_shares(s->clf, s->train_img, s->n_train_img, out->train_share, NULL);
}

static void
sampler_evaluate(ConformSampler *s, const float *x, int n, const double *viol, gboolean with_quality, int cond_row,
                 ConformSummary *out)
{
  evaluate_samples(&s->cfg, &s->cs, &s->ref, s->train_seconds, x, n, viol, with_quality, cond_row, out);
  out->fd_classifier = out->fd_floor = NAN;
  if (with_quality)
    out->mirror_cycle = sampler_mirror_cycle_error(s);
  if (with_quality && s->train_img)
    image_metrics(s, x, n, out);
  class_metrics(s->n_classes, s->class_mask, s->class_pi, s->class_centroid, x, n, s->dim, out);
}

void
conform_engine_evaluate(ConformEngine *e, const float *samples, int n, ConformSummary *s)
{
  conform_engine_evaluate_for(e, samples, n, NULL, s);
}

void
conform_engine_evaluate_for(ConformEngine *e, const float *samples, int n, const ConformSampleOptions *o,
                            ConformSummary *s)
{
  evaluate_samples(&e->cfg, &e->cs, &e->ref, e->train_seconds, samples, n, NULL, TRUE, cond_row_of(o), s);
  s->fd_classifier = s->fd_floor = NAN;
  gboolean images = conform_image_source_is(e->cfg.data);
  if (e->vae || images || e->namm) {
    /* with the weights samples come from (the EMA when kept), like the window */
    g_autoptr(ConformSampler) sm = conform_engine_make_sampler(e, NULL);
    if (sm && e->vae)
      vae_metrics(&sm->vmodel, &sm->ref, &sm->norm, e->cfg.seed, VAE_EVAL_MAX, VAE_IW_K, s);
    if (sm && images)
      image_metrics(sm, samples, n, s);
    if (sm && e->namm)
      s->mirror_cycle = sampler_mirror_cycle_error(sm);
  }
  class_metrics(e->n_classes, e->class_mask, e->class_pi, e->class_centroid, samples, n, e->dim, s);
  s->has_predicted = engine_dual_predicted_shares(e, s->predicted_share);
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
  if (!isnan(s->cond_rmse))
    ROW("cond_rmse", "%.6g", s->cond_rmse);
  if (!isnan(s->mirror_cycle)) /* inverse accuracy of the mirror maps on held-out data */
    ROW("mirror_cycle_error", "%.6g", s->mirror_cycle);
  if (!isnan(s->fd_classifier) && s->fd_classifier != 0) {
    ROW("fd_classifier", "%.6g", s->fd_classifier);
    ROW("fd_floor", "%.6g", s->fd_floor);
  }
  if (s->has_classes) { /* shares of the samples and of the training data */
    const int K = s->n_classes > 0 ? s->n_classes : 10;
    if (!isnan(s->class_tv_target))
      ROW("class_tv_target", "%.6g", s->class_tv_target);
    for (int c = 0; c < K; c++) {
      g_string_append_printf(o, "class_share_%d\t%.4f\n", c, s->class_share[c]);
      g_string_append_printf(o, "train_share_%d\t%.4f\n", c, s->train_share[c]);
      if (s->has_predicted) /* from the dual multipliers */
        g_string_append_printf(o, "predicted_share_%d\t%.4f\n", c, s->predicted_share[c]);
    }
  }
  if (s->has_vae) { /* model space, per sample; see core/vae.h for conventions */
    if (!isnan(s->test_ll))
      ROW("test_ll", "%.6g", s->test_ll);
    if (!isnan(s->test_ll_sub))
      ROW("test_ll_subspace", "%.6g", s->test_ll_sub);
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

ConformSampleSet *
conform_engine_reproject(ConformEngine *e, const ConformSampleSet *old)
{
  gboolean project = g_strcmp0(old->strategy, "projection") == 0;
  if (!old->raw || old->dim != e->dim || (!project && g_strcmp0(old->strategy, "none") != 0))
    return NULL;
  if (project && !cset_active(&e->cs))
    return NULL;
  const int n = old->n, dim = old->dim;
  ConformSampleSet *r = sample_set_new(n, dim, old->step, old->strategy, g_strdup(old->sampler));
  if (!r)
    return NULL;
  memcpy(r->raw, old->raw, sizeof(float) * (size_t)n * dim);
  memcpy(r->x, old->raw, sizeof(float) * (size_t)n * dim);
  if (project)
    project_rows_raw(&e->cs, r->x, n, dim);
  sample_set_violations(r, &e->cs);
  evaluate_samples(&e->cfg, &e->cs, &e->ref, e->train_seconds, r->x, n, r->viol, FALSE, -1, &r->summary);
  return r;
}
