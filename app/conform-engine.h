/* The experiment engine: data, normalisation, constraint, model, optimiser
 * and strategy of one experiment, driven step by step. It is plain (not a
 * GObject) and not thread-safe: the CLI drives it directly; the desktop app's
 * worker thread owns one exclusively. */
#pragma once

#include <glib.h>

#include "conform-config.h"
#include "constraint.h"
#include "metrics.h"

G_BEGIN_DECLS

typedef struct ConformEngine ConformEngine;

#define CONFORM_RECORD_DUAL_MAX 8

typedef struct {
  long step;
  float loss;
  float lr;
  float grad_norm;
  double seconds; /* wall time spent training so far */
  /* strategy dual: per constraint (dual.constraints order) the multiplier,
   * the slack (mean constraint loss of the latest dual step minus its
   * threshold) and that mean loss; n_dual = 0 otherwise */
  int n_dual;
  float lambda[CONFORM_RECORD_DUAL_MAX], slack[CONFORM_RECORD_DUAL_MAX], closs[CONFORM_RECORD_DUAL_MAX];
  /* strategy mirror: namm = 1 for a step of the mirror maps (loss, lr and
   * grad_norm are theirs) with the loss terms: mean |cycle errors| / 2 each
   * way, mean constraint distance of f(g(x) + sigma eps), mean |grad R| */
  int namm;
  float namm_cyc, namm_constr, namm_reg;
} ConformTrainRecord;

typedef struct {
  int n;
  gboolean has_constraint;
  CfViolationStats viol;   /* per-sample ||A x - b||_2, raw space */
  double viol_linf_max;    /* max over samples of ||A x - b||_inf */
  double energy_distance;  /* vs held-out reference data, raw space */
  gboolean has_vae;        /* VAE metrics below are set (model space, per sample) */
  double test_ll;          /* importance-weighted log-likelihood, iw_k samples */
  double test_ll_sub;      /* the same on the constraint's subspace (cgauss convention; for none and
                            * projection the decoder Gaussian conditioned post hoc), NaN otherwise */
  double elbo, recon;      /* ELBO and its reconstruction term */
  int iw_k;
  double mmd;              /* unbiased RBF-MMD^2, median heuristic */
  /* Image data (bundled Fashion-MNIST classifier; NaN / has_classes FALSE
   * otherwise): Frechet distance of its penultimate features between the
   * samples and the held-out images, the same between training images
   * and the held-out images (the floor, same count as the samples), and
   * the predicted class shares of the samples and of those training images. */
  gboolean has_classes;
  double fd_classifier, fd_floor;
  double class_share[10], train_share[10];
  /* Labelled data (also vector data: nearest class centroid): number of
   * classes (0: unlabelled), total-variation distance of class_share to the
   * uniform share over the classes present, and (strategy dual) the shares
   * the multipliers predict, (pi_k + lambda_k) / (1 + sum lambda) */
  int n_classes;
  double class_tv_target;
  gboolean has_predicted;
  double predicted_share[10];
  double cond_rmse;        /* with data.inputs: RMS error of the outputs against the held-out
                            * rows whose inputs they were generated for, in units of each
                            * output's standard deviation (images: of all pixels pooled;
                            * NaN without inputs) */
  double mirror_cycle;     /* strategy mirror: inverse accuracy, mean |f(g(x)) - x| over held-out rows and
                            * coordinates, raw units (NaN otherwise) */
  double train_seconds;
  double sample_seconds;
} ConformSummary;

typedef struct {
  int n;
  const char *strategy; /* NULL: the experiment's */
  const char *sampler;  /* NULL: the experiment's */
  int sampling_steps;   /* <= 0: the experiment's */
  double eta;           /* < 0: the experiment's */
  guint64 seed;
  gboolean use_seed;    /* FALSE: derive from the experiment seed */
  gboolean preview;     /* skip the O(n^2) quality metrics (NaN in the summary) */
  gboolean preview_vae; /* with preview, VAE only: cheap VAE metrics (CONFORM_VAE_PREVIEW_N held-out
                         * rows, CONFORM_VAE_PREVIEW_K importance samples) instead of none */
  gboolean use_condition; /* with data.inputs: every sample takes the inputs (and k) of held-out row
                           * condition_row (image sources: test image condition_row, e.g. its
                           * superres thumbnail) instead of row i mod n_ref */
  int condition_row;
} ConformSampleOptions;

#define CONFORM_MIRROR_GRID_LINES 17
#define CONFORM_MIRROR_GRID_POINTS 64

/* The cheap held-out VAE metrics of previews (explicit samples: 500 rows, K = 50). */
#define CONFORM_VAE_PREVIEW_N 200
#define CONFORM_VAE_PREVIEW_K 10

/* One batch of samples with everything the views need. Immutable once
 * built; reference-counted so the worker, a sampler thread and the UI can
 * share it. */
typedef struct {
  int n, dim;
  long step;           /* training step of the parameters sampled */
  char *strategy;
  char *sampler;       /* e.g. "ddim 50" */
  float *x;            /* n x dim, raw space, after the strategy */
  float *raw;          /* n x dim, raw space, before post-hoc projection */
  double *viol;        /* n, ||A x - b||_2 of x (NULL without a constraint) */
  double *viol_raw;    /* n, of raw */
  float *mirror;       /* strategy mirror: n x dim, the samples in mirror space before f (raw units: the
                        * mirror coordinates through the data's normalisation, so g = identity would
                        * leave points where they are) */
  /* Strategy mirror on 2-D data: the maps for the mirror-space view, raw
   * units as above. mirror_ref: n_mirror_ref x 2, g of held-out data.
   * A grid of CONFORM_MIRROR_GRID_LINES lines per direction, each sampled at
   * CONFORM_MIRROR_GRID_POINTS points (horizontal lines first, then vertical,
   * each line's points in order), over box_data = {x0 min, x0 max, x1 min,
   * x1 max} (the held-out data's box, widened 10%) and mapped by g:
   * grid_g; the same over box_mirror (the box of mirror_ref) mapped by f
   * back to data space: grid_f. NULL otherwise. */
  int n_mirror_ref;
  float *mirror_ref, *grid_g, *grid_f;
  float box_data[4], box_mirror[4];
  ConformSummary summary;
  /* Reverse trajectory of the first traj_n samples: (traj_steps + 1) x
   * traj_n x dim raw-space floats, x_T first; traj_t[k] is the time after
   * k steps; traj_viol_p50/max per step and traj_viol, (traj_steps + 1) x
   * traj_n, each sample's violation at each step (NULL without a
   * constraint). */
  int traj_steps, traj_n;
  float *traj;
  int *traj_t;
  double *traj_viol_p50, *traj_viol_max, *traj_viol;
} ConformSampleSet;

ConformSampleSet *conform_sample_set_ref(ConformSampleSet *s);
void conform_sample_set_unref(ConformSampleSet *s);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ConformSampleSet, conform_sample_set_unref)

/* A sampler independent of the engine: its own copies of the schedule,
 * normalisation, constraint projectors and denoiser, loaded from a parameter
 * snapshot, so it can run on another thread while the engine trains. */
typedef struct ConformSampler ConformSampler;
ConformSampler *conform_engine_make_sampler(ConformEngine *e, GError **error);
void conform_sampler_free(ConformSampler *s);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ConformSampler, conform_sampler_free)
/* Parameters to sample with: the EMA arena when the run keeps one. */
float *conform_engine_snapshot(const ConformEngine *e, gsize *n);
void conform_sampler_load(ConformSampler *s, const float *arena, long step);
/* traj_n > 0 records the trajectory of the first traj_n samples. */
ConformSampleSet *conform_sampler_run(ConformSampler *s, const ConformSampleOptions *opts, int traj_n,
                                      CfAbortFn abort_fn, CfProgressFn progress_fn, void *cb_user, GError **error);
/* The same raw samples under the engine's current constraint, at once: for
 * `projection` they are re-projected, for `none` only the violations change;
 * NULL for projected-sampling (its chain must be rerun) or without raw
 * samples. Quality metrics are not recomputed (NaN), no trajectory. */
ConformSampleSet *conform_engine_reproject(ConformEngine *e, const ConformSampleSet *old);
/* Changes a live setting (ConformKey.live) of a running engine; others give
 * a USAGE error saying a restart is needed. */
gboolean conform_engine_set_live(ConformEngine *e, const char *key, const char *value, GError **error);

ConformEngine *conform_engine_new(const ConformConfig *cfg, GError **error);
void conform_engine_free(ConformEngine *e);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ConformEngine, conform_engine_free)

const ConformConfig *conform_engine_config(const ConformEngine *e);
/* Drops [experiment] command: the experiment no longer is what that command
 * makes (the window trained it further or with other settings). */
void conform_engine_forget_command(ConformEngine *e);
int conform_engine_dim(const ConformEngine *e);
long conform_engine_step(const ConformEngine *e);
/* Validation report of the constraint (NULL without one) and warnings such
 * as dropped redundant rows (NULL if none). */
const CfConstraintReport *conform_engine_constraint_report(const ConformEngine *e);
const char *conform_engine_warnings(const ConformEngine *e);
/* Strategy dual: a multiplier that sat at its cap (unreachable threshold),
 * set once during training; NULL otherwise. */
const char *conform_engine_dual_warning(const ConformEngine *e);
/* The validated, reduced constraint in raw space (m == 0 without one). */
const CfConstraint *conform_engine_constraint(const ConformEngine *e);
const GArray *conform_engine_records(const ConformEngine *e); /* ConformTrainRecord */
/* Strategy mirror: the mirror maps are still training (steps 1 .. mirror.steps). */
gboolean conform_engine_mirror_phase(const ConformEngine *e);

/* Runs n_steps training steps. On a non-finite loss or gradient it stops,
 * restores the parameters of the last step with a finite loss and returns
 * CONFORM_ERROR_NUMERIC naming the step. abort (may be NULL) is polled every
 * step: CONFORM_ERROR_CANCELLED. */
gboolean conform_engine_train(ConformEngine *e, long n_steps, CfAbortFn abort_fn, CfProgressFn progress_fn,
                              void *cb_user, GError **error);

/* Replaces the constraint after validating it against the data dimension
 * (redundant rows dropped with a warning); on error the previous constraint
 * stays. c->m == 0 removes the constraint (strategy falls back to none). */
gboolean conform_engine_set_constraint(ConformEngine *e, const CfConstraint *c, const char *source, GError **error);
/* One line: "1 row · rank 1 · consistent · cond 1 · null space 2 (raw data space)". */
char *conform_engine_constraint_summary(const ConformEngine *e);
/* Training data mapped back to raw space, at most max_n rows (evenly strided). */
float *conform_engine_copy_train_raw(const ConformEngine *e, int max_n, int *n);

/* Fault injection for tests: poisons one parameter with NaN just before
 * training step `step` (1-based, once), as a numerical blow-up would. The CLI
 * honours the environment variable CONFORM_DEBUG_NAN_STEP. */
void conform_engine_debug_inject_nan(ConformEngine *e, long step);
/* Copy of the live parameter arena (for tests); *n receives its length. */
float *conform_engine_params_copy(const ConformEngine *e, gsize *n);

/* Draws samples in raw data space (malloc'ed n x dim in *out). If raw_out is
 * non-NULL it receives the samples before the projection strategy (equal to
 * *out for none / projected-sampling). */
gboolean conform_engine_sample(ConformEngine *e, const ConformSampleOptions *opts, float **out, float **raw_out,
                               CfAbortFn abort_fn, CfProgressFn progress_fn, void *cb_user, GError **error);
void conform_engine_evaluate(ConformEngine *e, const float *samples, int n, ConformSummary *out);
/* The same for samples drawn with options o (NULL: as conform_engine_evaluate):
 * with a condition row, cond_rmse compares every sample with that row. */
void conform_engine_evaluate_for(ConformEngine *e, const float *samples, int n, const ConformSampleOptions *o,
                                 ConformSummary *out);
/* USAGE error unless held-out row `row` can condition every sample: the
 * experiment has inputs (data.inputs > 0) and 0 <= row < n_ref. */
gboolean conform_engine_check_condition(const ConformEngine *e, int row, GError **error);
/* The same check without an engine, for a caller that knows the number of
 * inputs nx and of held-out rows n_ref (e.g. the window, before it asks the
 * run for conditioned samples); the same messages. */
gboolean conform_check_condition(const ConformConfig *cfg, int nx, int n_ref, int row, GError **error);
/* Held-out reference data (raw space) and training data (raw space copies). */
const float *conform_engine_reference(const ConformEngine *e, int *n);

/* Experiment directory: experiment.ini, weights.ckpt, metrics.csv and, when
 * samples is non-NULL, samples.csv and summary.tsv. Every file is written
 * atomically. */
gboolean conform_engine_save(ConformEngine *e, const char *dir, const float *samples, int n_samples,
                             const ConformSummary *summary, GError **error);
ConformEngine *conform_engine_load(const char *dir, GError **error);

GString *conform_summary_to_tsv(const ConformSummary *s);

G_END_DECLS
