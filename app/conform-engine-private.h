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
 * (projectors keep scratch, so they are not shared between threads). */
typedef struct {
  CfConstraint raw, model;
  CfProjector proj_raw, proj_model;
} ConstraintSet;

void cset_init(ConstraintSet *cs);
void cset_clear(ConstraintSet *cs);
/* Builds cs (cleared first) from a full-row-rank raw constraint (NULL or
 * m == 0: none) and the normalisation; on failure cs is left empty. */
CfStatus cset_build(ConstraintSet *cs, const CfConstraint *raw, const CfNorm *norm, CfError *err);


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

struct ConformSampler {
  ConformConfig cfg;
  int dim;
  CfSchedule sched;
  CfNorm norm;
  ConstraintSet cs;
  CfDdpmEval eval;  /* ddpm */
  CfCgauss cg;      /* ddpm trained with cgauss: the layer on cs.model */
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
