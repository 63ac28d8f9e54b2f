/* Private to the engine's two files: conform-engine.c (data, model,
 * training, files) and conform-sampler.c (samplers, sample sets, metrics). */
#pragma once

#include "conform-engine.h"
#include "cgauss.h"
#include "data.h"
#include "ddpm.h"
#include "optim.h"
#include "vae.h"

/* RNG streams, one per purpose, so extra draws in one never shift another. */
enum { STREAM_DATA = 1, STREAM_REF, STREAM_INIT, STREAM_TRAIN, STREAM_SAMPLE, STREAM_METRIC };




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
};

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
  gboolean vae;
  CfVae vmodel;     /* vae: an own copy (graphs and scratch are per model) */
  CfDataset ref; /* raw held-out reference, for the summary metrics */
  long step;
  double train_seconds;
};

gboolean core_error(GError **error, int code, const CfError *err);
/* A DDPM trained with cgauss (null-space training, constrained sampling). */
gboolean ddpm_cgauss(const ConformConfig *cfg);
/* The VAE's strategy is part of its training objective. */
CfVaeStrategy vae_strategy(const char *strategy);
