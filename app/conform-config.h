/* Experiment configuration: every setting of a run, described by one table
 * (key, type, range, help) that drives `--set key=value`, experiment.ini and
 * the settings UI, so a setting cannot be known to one and missing in another. */
#pragma once

#include <glib.h>

#include "constraint.h"

G_BEGIN_DECLS

#define CONFORM_ERROR (conform_error_quark())
GQuark conform_error_quark(void);

typedef enum {
  CONFORM_ERROR_USAGE,    /* bad option or value: exit code 2 */
  CONFORM_ERROR_INPUT,    /* bad file or data: exit code 1 */
  CONFORM_ERROR_NUMERIC,  /* NaN/Inf during training */
  CONFORM_ERROR_IO,
  CONFORM_ERROR_CANCELLED,
} ConformErrorCode;

typedef struct {
  /* [experiment] */
  char *preset;
  char *strategy;      /* none | projection | projected-sampling (ddpm) | constrained-layer (vae) | cgauss | dual (ddpm) | mirror (ddpm) */
  guint64 seed;
  /* [data] */
  char *data;          /* built-in generator name, or a CSV path */
  int n_train;
  int n_ref;           /* held-out reference samples for the metrics */
  int inputs;          /* leading columns given as inputs (conditioning); the model generates the rest */
  int image_size;      /* image sources: 28 or 14 (2 x 2 box average) */
  char *classes;       /* labelled data: classes kept ("" = all; e.g. "0-6,8") */
  char *thin_classes;  /* labelled data: classes thinned in the training set ("" = none) */
  double thin_keep;    /* fraction of each thinned class kept */
  /* [model] */
  char *model_type;    /* ddpm | vae */
  char *arch;          /* ddpm denoiser: mlp | unet (images) */
  int unet_base, unet_levels;
  int latent;          /* VAE latent size */
  int width, depth, temb_dim, T;
  char *schedule;      /* linear | cosine */
  /* [train] */
  int steps, batch, warmup;
  double lr, lr_min, weight_decay, clip, ema;
  char *init;          /* experiment directory whose weights a run starts from ("" = random) */
  /* [dual] primal-dual training (strategy dual) */
  char *dual_constraints; /* class:K, teacher, violation; comma-separated ("" = violation) */
  char *dual_thresholds;  /* one value for all, or one per constraint */
  double dual_gamma;      /* resilience (0 = plain Algorithm 2) */
  int dual_every;         /* primal steps per dual step */
  double dual_lr;         /* dual learning rate */
  double dual_batch_ratio; /* main batch / constraint batch */
  double dual_cap;        /* multipliers are capped here */
  /* [mirror] neural approximate mirror maps (strategy mirror): NAMM training
   * steps before the diffusion model's train.steps, and its settings */
  int mirror_steps, mirror_finetune_steps, mirror_finetune_samples, mirror_batch, mirror_width, mirror_depth, mirror_inv_width, mirror_inv_depth;
  double mirror_alpha, mirror_lambda_cyc, mirror_lambda_constr, mirror_lambda_reg, mirror_sigma_max, mirror_lr,
      mirror_ema;
  /* [sample] */
  int n_samples;
  char *sampler;       /* ddpm | ddim */
  int sampling_steps;
  double eta;
  double x0_clip;      /* model space; 0 = off */
  int annotate;        /* image grids: frame each sample by its violation */
  /* [eval] */
  double tol_rel;      /* violation tolerance relative to 1 + ||b|| */
  int metric_max_n;    /* subsample size for energy distance / MMD */
  /* [constraint] raw data space; m == 0 means none */
  CfConstraint constraint;
  char *constraint_source; /* where it came from (preset name or file path) */
  char *command;           /* the conform command line that made the experiment ("" from the window);
                            * [experiment] command, a record, not a setting */
  char *equations;     /* non-linear constraint: equations over the raw coordinates x0.., one per line
                        * or ';'-separated ("" = none; excludes a matrix constraint) */
} ConformConfig;

typedef enum { CONFORM_KEY_INT, CONFORM_KEY_UINT64, CONFORM_KEY_DOUBLE, CONFORM_KEY_STRING, CONFORM_KEY_CHOICE } ConformKeyType;

typedef struct {
  const char *key;      /* "section.name" */
  ConformKeyType type;
  gsize offset;
  double min, max;      /* numeric range (inclusive) */
  const char *choices;  /* CHOICE: '|'-separated */
  gboolean live;        /* may change while a run is in progress */
  const char *help;
} ConformKey;

const ConformKey *conform_config_keys(guint *n_keys);
const ConformKey *conform_config_find_key(const char *key);

void conform_config_init(ConformConfig *cfg);   /* built-in defaults */
void conform_config_clear(ConformConfig *cfg);
void conform_config_copy(ConformConfig *dst, const ConformConfig *src);
/* Applies a preset's data source, constraint and tuned defaults. */
gboolean conform_config_apply_preset(ConformConfig *cfg, const char *preset, GError **error);
/* Sets "section.name" from text, with type and range checks (USAGE error). */
gboolean conform_config_set(ConformConfig *cfg, const char *key, const char *value, GError **error);
/* "key=value" form of conform_config_set. */
gboolean conform_config_set_assignment(ConformConfig *cfg, const char *assignment, GError **error);
char *conform_config_get_string(const ConformConfig *cfg, const char *key);
/* Loads a constraint file (validated later, against the data dimension). */
gboolean conform_config_load_constraint(ConformConfig *cfg, const char *path, GError **error);
/* Training steps of a run: train.steps, plus mirror.steps (the mirror maps
 * first) for strategy mirror. */
long conform_config_total_steps(const ConformConfig *cfg);
/* The constraint acts (a matrix or equations). */
gboolean conform_config_has_constraint(const ConformConfig *cfg);
/* Cross-field checks (e.g. sampling steps <= T, strategy needs a constraint). */
gboolean conform_config_validate(const ConformConfig *cfg, GError **error);

/* experiment.ini */
GKeyFile *conform_config_to_keyfile(const ConformConfig *cfg);
gboolean conform_config_from_keyfile(ConformConfig *cfg, GKeyFile *kf, const char *origin, GError **error);

G_END_DECLS
