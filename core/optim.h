/* Optimisers and training utilities over flat parameter arenas. */
#ifndef CF_OPTIM_H
#define CF_OPTIM_H

#include <stdbool.h>
#include <stddef.h>

#include "status.h"

typedef struct {
  float beta1, beta2, eps;
  float weight_decay; /* AdamW: decoupled, p -= lr * wd * p; 0 = plain Adam */
} CfAdamConfig;

/* Adam with bias correction; moments in two contiguous arenas. */
typedef struct {
  CfAdamConfig cfg;
  size_t n;
  long t; /* steps taken */
  float *m, *v;
} CfAdam;

CfAdamConfig cf_adam_default_config(void); /* 0.9, 0.999, 1e-8, 0 */
CfStatus cf_adam_init(CfAdam *opt, size_t n, const CfAdamConfig *cfg);
void cf_adam_clear(CfAdam *opt);
void cf_adam_reset(CfAdam *opt); /* zero moments and t */
/* One update: t += 1; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
 * p -= lr * (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps) (+ decoupled decay). */
void cf_adam_step(CfAdam *opt, float *param, const float *grad, float lr);
/* The same update with the gradient scaled by grad_scale (> 0) on the fly:
 * clipping fused into the Adam pass (no separate pass rewriting grad).
 * Bitwise identical to scaling grad first. */
void cf_adam_step_scaled(CfAdam *opt, float *param, const float *grad, float lr, float grad_scale);

/* Global L2 norm of a gradient arena (accumulated in double). */
double cf_grad_norm(const float *grad, size_t n);
/* Scale that clips a gradient of norm `norm` to max_norm (1 when below,
 * when max_norm <= 0 or when norm is not finite). */
float cf_clip_scale(double norm, double max_norm);
/* Scales grad so its global norm is at most max_norm (> 0); returns the norm
 * before clipping. */
double cf_clip_grad_norm(float *grad, size_t n, double max_norm);
/* ema = rate * ema + (1 - rate) * param. */
void cf_ema_update(float *ema, const float *param, size_t n, float rate);
/* True if every value is finite. */
bool cf_all_finite(const float *x, size_t n);

/* Linear warm-up from 0 to lr_max over `warmup` steps, then cosine decay to
 * lr_min at step `total` (held afterwards). */
typedef struct {
  float lr_max, lr_min;
  long warmup, total;
} CfLrSchedule;
float cf_lr_at(const CfLrSchedule *s, long step);

#endif
