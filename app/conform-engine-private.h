/* Private to the engine's two files: conform-engine.c (data, model,
 * training, files) and conform-sampler.c (samplers, sample sets, metrics). */
#pragma once

#include "conform-engine.h"
#include "cgauss.h"
#include "checkpoint.h"
#include "conform-dual.h"
#include "data.h"
#include "ddpm.h"
#include "dual.h"
#include "expr.h"
#include "namm.h"
#include "optim.h"
#include "vae.h"

/* RNG streams, one per purpose, so extra draws in one never shift another. */
enum { STREAM_DATA = 1, STREAM_REF, STREAM_INIT, STREAM_TRAIN, STREAM_SAMPLE, STREAM_METRIC, STREAM_MIRROR };




/* A validated, reduced constraint in raw space, the same in model space
 * (x = s .* u + m: (A diag(s)) u = b - A m), and a projector for each. m == 0
 * means no constraint. The engine owns one; each sampler builds its own
 * (projectors and layers keep scratch, so they are not shared between
 * threads).
 * With nx > 0 leading input columns, rows are [x | y] and the generated
 * outputs y obey B y = k with the per-sample k = b - A_x x: out_raw and
 * out_model are constrained-Gaussian layers on [B | b] (kept rows) in each
 * space, ax_raw / ax_model the input blocks (m x nx). With nx = 0 the layers
 * hold the whole constraint (k = b for every sample). */
typedef struct {
  CfConstraint raw, model;
  CfProjector proj_raw, proj_model;
  int nx;
  CfCgauss out_raw, out_model;
  double *ax_raw, *ax_model;
  /* constraint.equations instead of A x = b (m == 0 then): the equations
   * over raw coordinates and rewritten for model space */
  gboolean has_eq;
  CfExprSet eq_raw, eq_model;
} ConstraintSet;

void cset_init(ConstraintSet *cs);
void cset_clear(ConstraintSet *cs);
/* Builds cs (cleared first) from a full-row-rank raw constraint (NULL or
 * m == 0: none), the normalisation and the number of input columns; on
 * failure cs is left empty. */
CfStatus cset_build(ConstraintSet *cs, const CfConstraint *raw, const CfNorm *norm, int nx, CfError *err);
/* k (n x m) = b - A_x x for rows whose leading nx columns are the inputs
 * (row stride `stride`), in model or raw space. */
void cset_out_k(const ConstraintSet *cs, gboolean model, const float *rows, int stride, int n, float *k);
/* conform-mirror.c: equations in a ConstraintSet ("" or NULL: none). */
gboolean cset_set_equations(ConstraintSet *cs, const char *text, int dim, const CfNorm *norm, GError **error);
/* A matrix or equations. */
gboolean cset_active(const ConstraintSet *cs);
/* Per-sample violation of raw rows: ||A x - b||_2 and _inf, or for
 * equations sum_j |r_j| and max_j |r_j| (either output may be NULL). */
void cset_violation(const ConstraintSet *cs, const float *x, int n, double *l2, double *linf);
/* eval.tolerance in absolute terms: relative to 1 + ||b||, or as is for equations. */
double cset_tolerance(const ConstraintSet *cs, double tol_rel);
/* Raw rows onto the equations (Gauss-Newton); returns rows that did not converge. */
int cset_project_equations(ConstraintSet *cs, float *x, int n);
/* y (n x ny) <- its Euclidean projection onto B y = k_i (k: n x m, or NULL
 * for b), in model or raw space. */
CfStatus cset_out_project(ConstraintSet *cs, gboolean model, float *y, int n, const float *k, CfError *err);


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
  int nx, ny;       /* input columns (data.inputs) and generated columns */
  float *batch;     /* B x ny: generated columns of the minibatch */
  float *cond;      /* B x nx: its inputs (NULL without inputs) */
  float *kbuf;      /* B x m: per-sample right-hand sides (cgauss with inputs) */
  GArray *records;
  long step;
  double train_seconds;
  long inject_nan_step; /* test fault injection, 0 = off */
  /* Labelled data (after data.classes / data.thin_classes; conform-dual.c):
   * classes 0..n_classes-1, those present in `class_mask`, training
   * shares class_pi, and raw-space class centroids (vector data: samples
   * are assigned to the nearest one) */
  int n_classes;
  guint class_mask;
  double class_pi[CONFORM_MAX_CLASSES];
  float *class_centroid; /* n_classes x dim or NULL */
  /* Dual training (strategy dual; conform-dual.c). The training graph holds
   * batch_total = batch + dual_bc x (class and teacher constraints) rows:
   * main rows, then each class constraint's rows, then teacher rows. */
  gboolean dual_on;
  ConformDualConstraint dual_c[CONFORM_DUAL_MAX];
  int n_dual;
  CfDual dual;
  int *dual_rows[CONFORM_DUAL_MAX]; /* class constraints: their training rows */
  int dual_nrows[CONFORM_DUAL_MAX];
  int dual_bc, batch_total;
  float *dual_w, *dual_wv, *row_err, *row_viol;
  CfDdpmEval teacher;
  gboolean has_teacher;
  char *dual_warning;   /* the latest cap warning, or NULL */
  /* Strategy mirror (conform-mirror.c): the maps train during steps
   * 1 .. cfg.mirror_steps; then mtrain = g(train) (model space, train.n x
   * dim) is what the diffusion model learns. */
  CfNamm *namm;
  CfRng rng_mirror;
  float *namm_batch;
  float *namm_good; /* params, EMA, Adam m, v of the maps at namm_good_step */
  long namm_good_step, namm_good_t;
  float *mtrain;
  float *ft_samples; /* finetuning: mirror_finetune_samples x dim mirror-space samples, model units */
};

/* conform-mirror.c */
gboolean engine_mirror_setup(ConformEngine *e, GError **error);
CfStatus engine_mirror_constraint(ConformEngine *e, const ConstraintSet *cs, CfError *err);
void engine_mirror_clear(ConformEngine *e);
/* Which step comes next: 1 the maps (steps 1 .. mirror.steps), 2 finetuning
 * f (after the diffusion model's train.steps), 0 the diffusion model (or
 * not mirror). */
int engine_mirror_phase(const ConformEngine *e);
/* Steps of the diffusion model (the step count past the maps' steps). */
long engine_model_step(const ConformEngine *e);
/* One step of the maps (records it in *r); after the last, mtrain. On NaN
 * the maps return to their last good state and a NUMERIC error says so. */
gboolean engine_mirror_step(ConformEngine *e, ConformTrainRecord *r, GError **error);
gboolean engine_mirror_map_data(ConformEngine *e, GError **error);
/* Checkpoint arenas (4; 0 without mirror), header lines and loading. */
int engine_mirror_arenas(const ConformEngine *e, CfCkptArena *out);
char *engine_mirror_header(const ConformEngine *e);
gboolean engine_mirror_load(ConformEngine *e, const CfCheckpoint *ck, const char *path, GError **error);
/* A warning when the equations have no point where the data are, else NULL. */
char *engine_equations_feasibility(ConformEngine *e);

/* conform-dual.c: labelled-data filters (before normalisation) and the
 * primal-dual step. */
gboolean engine_classes_apply(ConformEngine *e, GError **error);
gboolean engine_dual_setup(ConformEngine *e, GError **error);
/* Follows a new model-space constraint (violation constraint). */
CfStatus engine_dual_constraint(ConformEngine *e, const ConstraintSet *cs, CfError *err);
void engine_dual_clear(ConformEngine *e);
/* One composite pass on the main rows already in e->batch / e->cond
 * (rows [0, batch)): fills the constraint rows, accumulates the Lagrangian's
 * gradient and records the constraint losses for the dual step. Returns the
 * main loss; NaN when a loss is not finite (the caller restores). */
float engine_dual_step(ConformEngine *e);
/* Class metrics of raw samples x (n x dim) into s: vector data by nearest
 * centroid (train_share = pi), images through class_share already set;
 * then class_tv_target. */
void class_metrics(int n_classes, guint mask, const double *pi, const float *centroid, const float *x, int n,
                   int dim, ConformSummary *s);
/* The class shares the current multipliers predict (FALSE: not dual, no
 * labels or no class constraint). */
gboolean engine_dual_predicted_shares(const ConformEngine *e, double *out);
/* Fills r's dual fields from the current multipliers. */
void engine_dual_fill_record(const ConformEngine *e, ConformTrainRecord *r);

struct ConformSampler {
  ConformConfig cfg;
  int dim;
  CfSchedule sched;
  CfNorm norm;
  ConstraintSet cs;
  CfDdpmEval eval;  /* ddpm */
  int nx;           /* input columns */
  /* image data: training images (raw) for the floor and class shares, and
   * the bundled classifier (loaded on first use; NULL if unavailable) */
  float *train_img;
  int n_train_img;
  struct _ConformClassifier *clf;
  gboolean clf_tried;
  /* labelled data: copies of the engine's class information */
  int n_classes;
  guint class_mask;
  double class_pi[CONFORM_MAX_CLASSES];
  float *class_centroid;
  gboolean vae;
  CfVae vmodel;     /* vae: an own copy (graphs and scratch are per model) */
  CfNammEval *namm; /* strategy mirror: the inverse map f (EMA weights) */
  CfDataset ref; /* raw held-out reference, for the summary metrics */
  long step;
  double train_seconds;
};

gboolean core_error(GError **error, int code, const CfError *err);
gboolean sampler_mirror_init(ConformSampler *s, const ConformEngine *e, GError **error);
void sampler_mirror_clear(ConformSampler *s);
/* Strategy mirror: r->mirror to raw units and, for 2-D data, the
 * mirror-space view's data (ConformSampleSet). */
void sampler_mirror_views(ConformSampler *s, ConformSampleSet *r);
/* While the maps train (no diffusion model yet): x (n x dim, model space) =
 * f(g(x_ref) + sigma eps) of held-out rows, sigma ~ U(0, mirror.sigma_max),
 * what the maps' constraint term measures. */
/* Strategy mirror: mean |f(g(x)) - x| over (up to 2000) held-out rows and
 * their coordinates, raw units; NaN otherwise. */
double sampler_mirror_cycle_error(ConformSampler *s);
void sampler_mirror_noisy_cycle(ConformSampler *s, float *x, int n, CfRng *rng);
/* A DDPM trained with cgauss (null-space training, constrained sampling). */
gboolean ddpm_cgauss(const ConformConfig *cfg);
/* The VAE's strategy is part of its training objective. */
CfVaeStrategy vae_strategy(const char *strategy);
