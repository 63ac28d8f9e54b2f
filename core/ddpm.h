/* Denoising diffusion (DDPM) on vector data: schedules, the epsilon-prediction
 * MLP denoiser, its training loss graph, and the ancestral and DDIM samplers.
 *
 * Forward process: x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps, t = 1..T,
 * abar_t = prod_{s<=t} (1 - beta_s). Arrays are indexed by t with index 0
 * meaning "no noise" (abar_0 = 1). */
#ifndef CF_DDPM_H
#define CF_DDPM_H

#include <stdbool.h>

#include "cgauss.h"
#include "graph.h"
#include "nn.h"
#include "rng.h"
#include "status.h"
#include "unet.h"

typedef enum { CF_SCHEDULE_LINEAR, CF_SCHEDULE_COSINE } CfScheduleKind;

typedef struct {
  CfScheduleKind kind;
  int T;
  double *beta;      /* T + 1, beta[0] = 0 */
  double *alpha_bar; /* T + 1, alpha_bar[0] = 1 */
} CfSchedule;

/* Linear: beta from 1e-4 to 0.02 (scaled by 1000/T); cosine: Nichol & Dhariwal
 * with s = 0.008, beta clipped at 0.999. */
CfStatus cf_schedule_init(CfSchedule *s, CfScheduleKind kind, int T, CfError *err);
void cf_schedule_clear(CfSchedule *s);

/* Anything that predicts epsilon: x_t (B x dim) at integer times t (B), out
 * (B x dim). The trained MLP is one; tests use the analytic epsilon of a
 * Gaussian. */
typedef void (*CfEpsFn)(void *user, const float *x_t, const int *t, int B, float *eps_out);

/* Called after each reverse step with the new x (B x dim) at time t_next
 * (0 after the last step): projected-sampling projects here. */
typedef void (*CfStepHook)(void *user, float *x, int B, int t_next);

typedef enum { CF_SAMPLER_DDPM, CF_SAMPLER_DDIM } CfSamplerKind;

typedef struct {
  CfSamplerKind kind;
  int steps;  /* DDIM: number of steps (<= T), evenly spaced; DDPM: ignored (T) */
  float eta;  /* DDIM stochasticity, 0 = deterministic */
  float clip; /* > 0: clip the x0 prediction to [-clip, clip] (model space); 0 = off */
} CfSamplerConfig;

/* Draws B samples: x_T ~ N(0, I) (the first B x dim draws of
 * cf_rng_fill_normal on rng, so a caller can reproduce x_T from a copy of
 * rng), then the reverse chain. If traj is non-NULL
 * it receives (n_steps + 1) x B x dim floats: x_T first, x_0 last, where
 * n_steps = cf_sampler_n_steps(). Scratch is allocated per call (sampling is
 * not in the step loop). Returns CF_ERR_ABORTED if abort returns true. */
int cf_sampler_n_steps(const CfSchedule *s, const CfSamplerConfig *cfg);
/* Time t_i of trajectory row n_steps - i, i in [0, n_steps]: t_0 = 0 and
 * t_{n_steps} = T. DDPM: t_i = i; DDIM: t_i = round(i T / steps) (half up).
 * Returns -1 for an invalid configuration or i out of range. */
int cf_sampler_time(const CfSchedule *s, const CfSamplerConfig *cfg, int i);
CfStatus cf_ddpm_sample(const CfSchedule *s, const CfSamplerConfig *cfg, int dim, int B,
                        CfEpsFn eps_fn, void *eps_user, CfStepHook hook, void *hook_user,
                        CfRng *rng, float *out, float *traj,
                        CfAbortFn abort_fn, CfProgressFn progress_fn, void *cb_user, CfError *err);

/* Constrained-Gaussian sampling (strategy cgauss) for a model trained in the
 * null space (cf_ddpm_set_nullspace): the data lie on {A x = k} and the
 * forward process only adds noise inside the null space of A, so
 *   x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) P_N eps,  A x_t = sqrt(abar_t) k,
 * P_N = I - A^T (A A^T)^{-1} A. Every reverse step is the model's Gaussian
 * N(mean, sigma^2 I) conditioned exactly on A x_s = sqrt(abar_s) k with the
 * constrained-Gaussian layer `cg` (isotropic variance: the mean is projected,
 * the noise only moves inside the null space), where
 *   eps_c  = P_N eps_theta(x_t, t)                 (A eps_c = 0)
 *   x0_bar = Proj_{A x = k}(clip((x_t - sqrt(1 - abar_t) eps_c) / sqrt(abar_t)))
 * and mean / sigma are the DDPM or DDIM formulas above with x0_bar. x_T is
 * the projection of the first B x dim normals onto {A x = sqrt(abar_T) k}
 * (their null-space part equals the unconstrained sampler's x_T: paired
 * noise). The last step lands on A x_0 = k at round-off. Noise is drawn as
 * in cf_ddpm_sample (B x dim normals per step with sigma > 0).
 * cg: set up on the model-space constraint (its A); k: NULL for the
 * constraint's own b, else (k_rows, k_cols) as cf_cgauss_forward (1 or B
 * rows; m_full or m columns). The hook sees x after the conditioning. */
CfStatus cf_ddpm_sample_constrained(const CfSchedule *s, const CfSamplerConfig *cfg, int dim, int B,
                                    CfEpsFn eps_fn, void *eps_user, CfCgauss *cg, const float *k, int k_rows,
                                    int k_cols, CfStepHook hook, void *hook_user, CfRng *rng, float *out,
                                    float *traj, CfAbortFn abort_fn, CfProgressFn progress_fn, void *cb_user,
                                    CfError *err);

/* ---- the MLP denoiser ------------------------------------------------------ */

typedef enum { CF_ARCH_MLP = 0, CF_ARCH_UNET = 1 } CfDenoiserArch;

typedef struct {
  int dim;       /* data dimension */
  int width;     /* hidden width (MLP) */
  int depth;     /* hidden layers (linear layers = depth + 1) (MLP) */
  int temb_dim;  /* sinusoidal time-embedding size (even) */
  int cond_dim;  /* conditioning inputs (0: unconditional); MLP input [x_t | cond | temb] */
  CfDenoiserArch arch;
  /* U-Net (arch CF_ARCH_UNET): images of img_c x img_h x img_w = dim
   * (CHW rows), unet_base channels at the finest of unet_levels levels
   * (multipliers 1, 2, 2, 2), group norm with 8 groups (or fewer when the
   * base is smaller). The time embedding enters every block; conditioning
   * inputs (cond_dim > 0) enter the time features and an extra input
   * channel (unet.h). */
  int img_c, img_h, img_w;
  int unet_base, unet_levels;
} CfDenoiserConfig;

/* The network behind a denoiser: one of the two, per cfg.arch. */
typedef struct {
  CfMlp mlp;
  CfUnet unet;
} CfDenoiserNet;

/* Model: parameters + schedule + the training graph. */
typedef struct {
  CfDenoiserConfig cfg;
  CfSchedule sched;
  CfParams params;
  CfDenoiserNet net;
  CfGraph *train; /* built for batch train_B by cf_ddpm_prepare_train */
  int train_B;
  CfNode in_x, in_t, in_eps, out_eps, loss;
  CfNode in_cond;  /* (B, cond_dim) or -1 */
  float *null_proj; /* dim x dim P_N (cf_ddpm_set_nullspace), then dim floats of scratch; or NULL */
  CfNode in_proj;   /* its graph input or -1 */
  /* Per-row weighted objective (cf_ddpm_accumulate): row errors, weights
   * and total; the violation term (cf_ddpm_set_violation) with A
   * (viol_m x dim) and b in model space. */
  CfNode row_err, in_w, total;
  int viol_m;
  float *viol_A, *viol_b;
  CfNode in_vA, in_vtgt, row_viol, in_wv;
  int *t_scratch; /* train_B times (teacher rows) */
} CfDdpm;

CfStatus cf_ddpm_init(CfDdpm *m, const CfDenoiserConfig *cfg, CfScheduleKind sched, int T, CfError *err);
void cf_ddpm_clear(CfDdpm *m);
/* cf_ddpm_init leaves the parameters zero (it takes no rng); this fills them
 * by their declared CfInit: cf_params_randomize(&m->params, rng). */
void cf_ddpm_randomize(CfDdpm *m, CfRng *rng);
/* Null-space training (strategy cgauss): the noise of the forward process
 * is P_N eps and the loss is the mean squared error of P_N eps_theta
 * against it, i.e. mean ||P_N (eps_theta - eps)||^2 / dim. For data on
 * {A x = k} this is, up to the weight abar_t / (1 - abar_t), the squared
 * error of the constrained x0 prediction Proj_{A x = k}(x0_hat) - x_0: the
 * model is trained through the constrained x0 prediction (only the
 * null-space part of its eps matters). P (dim x dim) is copied; NULL turns
 * it off. Call before cf_ddpm_prepare_train. */
CfStatus cf_ddpm_set_nullspace(CfDdpm *m, const float *P, CfError *err);
/* P_N = I - A^T (A A^T)^{-1} A (dim x dim, row-major) of a full-row-rank
 * constraint, computed in double. */
CfStatus cf_nullspace_projector(const CfConstraint *c, float *P, CfError *err);
/* Builds (or rebuilds) the training graph for batch size B. */
CfStatus cf_ddpm_prepare_train(CfDdpm *m, int B, CfError *err);
/* One loss evaluation + backward on a batch x0 (train_B x dim, model space):
 * draws t ~ U{1..T} and eps ~ N(0, I) from rng, sets x_t, forward, backward
 * (parameter gradients are zeroed first). Returns the loss (mean squared
 * epsilon error). No allocation. */
float cf_ddpm_train_step(CfDdpm *m, const float *x0, CfRng *rng);
/* The same with conditioning inputs cond (train_B x cond_dim; NULL when
 * cond_dim is 0). */
float cf_ddpm_train_step_cond(CfDdpm *m, const float *x0, const float *cond, CfRng *rng);

/* Violation of a linear constraint A x = k by the denoised prediction
 * x0_hat = (x_t - sqrt(1 - abar_t) eps_theta) / sqrt(abar_t), the quantity
 * dual training constrains (dual-training.md, "What this means for us"):
 *   abar_t / (1 - abar_t) ||A x0_hat - k||^2 = ||A eps_theta - c||^2,
 *   c = A eps + sqrt(abar_t / (1 - abar_t)) (A x_0 - k),
 * with the SNR weight abar_t / (1 - abar_t) dropped like the time weights of
 * the main loss (without it the term explodes at large t). c reduces to
 * A eps for data on the constraint. c (model space, n == dim) is copied;
 * NULL turns it off. Call before cf_ddpm_prepare_train. */
CfStatus cf_ddpm_set_violation(CfDdpm *m, const CfConstraint *c, CfError *err);

/* One weighted pass over a composite batch (dual training): the main
 * batch, the constraint sets' batches and teacher rows share one forward and
 * one backward pass. Rows [0, n_data) are data rows (x_t drawn from x0 as in
 * cf_ddpm_train_step_cond, the same draws); rows [n_data, train_B) are
 * teacher rows for fine-tuning without forgetting: x_t ~ N(0, I) pure noise
 * at t ~ U{1..T}, target eps_teacher(x_t, t) (KL(p_teacher || p_theta) is
 * bounded by this epsilon MSE along the teacher's chain; pure noise is the
 * cheap estimate of dual-training.md). With the per-row errors
 *   e_r = ||eps_theta - target||^2 / dim,   v_r = ||A eps_theta - c_r||^2,
 * the pass ADDS d/dtheta (sum_r w_r e_r + sum_r w_viol_r v_r) to the gradient
 * arena (zeroed first when zero_grad) and returns that total. A group's
 * mean loss is then a weight 1/n_group on its rows. */
typedef struct {
  const float *x0;     /* train_B x dim model-space rows (only [0, n_data) read) */
  const float *cond;   /* train_B x cond_dim, or NULL when cond_dim is 0 */
  int n_data;
  CfEpsFn teacher;     /* required when n_data < train_B */
  void *teacher_user;
  const float *w;      /* train_B weights of e_r */
  const float *w_viol; /* train_B weights of v_r, or NULL (0; needs a violation term otherwise) */
  const float *k;      /* train_B x viol_m right-hand sides, or NULL for the constraint's b */
} CfDdpmTerms;
float cf_ddpm_accumulate(CfDdpm *m, const CfDdpmTerms *terms, CfRng *rng, bool zero_grad, float *row_err,
                         float *row_viol);

/* An inference copy of the denoiser: its own parameter arena (loaded by one
 * memcpy from the model, an EMA arena or a snapshot) and its own graph, so it
 * can run on another thread while the model trains. Batches of any size are
 * processed in chunks of `chunk` rows (the last chunk is zero-padded). */
typedef struct {
  CfDenoiserConfig cfg;
  CfParams params;
  CfDenoiserNet net;
  CfGraph *g;
  int chunk;
  CfNode in_x, in_t, in_cond, out;
  /* Conditioning inputs of the batch being sampled (B x cond_dim, row b for
   * sample b), set by the caller before sampling when cond_dim > 0. */
  const float *cond;
} CfDdpmEval;

/* Declares the same parameter layout as m, builds the graph for `chunk` rows
 * (>= 1) and copies m's current parameter values. */
CfStatus cf_ddpm_eval_init(CfDdpmEval *e, const CfDdpm *m, int chunk, CfError *err);
void cf_ddpm_eval_clear(CfDdpmEval *e);
/* arena holds m->params.total floats in the model's layout. */
void cf_ddpm_eval_load(CfDdpmEval *e, const float *arena);
/* CfEpsFn over the evaluator (user = CfDdpmEval *). */
void cf_ddpm_eval_eps(void *user, const float *x_t, const int *t, int B, float *eps_out);

/* FLOPs of one training step (forward + backward) at batch B. */
double cf_ddpm_train_flops(const CfDdpm *m, int B);

#endif
