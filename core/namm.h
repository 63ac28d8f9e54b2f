/* Neural approximate mirror maps (NAMM; Feng, Baptista, Bouman, ICLR 2025;
 * method notes in shared/research/mirror-maps.md) for vector data.
 *
 * Forward map (data -> mirror space), the gradient of a strongly convex
 * potential and therefore monotone and invertible:
 *     g(x) = alpha x + (1 - alpha) grad_x R(x)
 * with R an input-convex network (ICNN) of L hidden layers of width H:
 *     z_1     = s(U_0 x + b_0)
 *     z_{l+1} = s(W_l z_l + U_l x + b_l),   l = 1 .. L-1,   W_l >= 0
 *     R(x)    = w_out . z_L + u_out . x,    w_out >= 0
 * s = softplus (convex, non-decreasing), so R is convex in x. grad_x R is
 * built explicitly as forward graph ops (the hand-written backward chain,
 * s' = sigmoid), so the training loss needs only first-order autodiff:
 *     d_{L-1} = sigmoid(p_{L-1}) .* w_out,  d_{l-1} = (d_l W_l) .* sigmoid(p_{l-1}),
 *     grad_x R = sum_l d_l U_l + u_out      (p_l the pre-activations).
 * Non-negativity of W_l and w_out is kept by projection (clamping at 0)
 * after every optimiser step.
 *
 * Inverse map (mirror space -> data): f(y) = y + MLP(y) (SiLU; the last
 * layer starts at zero, so f starts as the identity); for images the MLP is
 * a stack of 3 x 3 convolutions (1 -> C -> ... -> C -> 1 channels, SiLU).
 *
 * Training loss per batch, sigma_i ~ U(0, sigma_max) per sample, eps ~ N(0, I):
 *     y~  = g(x) + sigma eps
 *     L   = lambda_cyc   * (1/2 mean|f(g(x)) - x| + 1/2 mean|g(f(y~)) - y~|)
 *         + lambda_constr * mean_i d(f(y~_i))
 *         + lambda_reg    * mean|grad_x R(x)|
 * (means over all elements; y~ is not detached, as in the paper's formula),
 * with d the constraint distance: sum_j |r_j| of equations (expr.h), or
 * ||A x - b|| (smoothed, see cf_lin_distance_build) of a linear constraint.
 * The data, the constraint and the maps all live in the same (model) space. */
#ifndef CF_NAMM_H
#define CF_NAMM_H

#include <stdbool.h>

#include "constraint.h"
#include "expr.h"
#include "graph.h"
#include "nn.h"
#include "optim.h"
#include "rng.h"
#include "status.h"

#define CF_NAMM_MAX_DEPTH 8

typedef struct {
  int dim;
  /* forward map */
  int icnn_width, icnn_depth; /* H, L (1 .. CF_NAMM_MAX_DEPTH) */
  float alpha;                /* weight of the identity in g, in [0, 1) */
  float nonneg_init;          /* W_l, w_out start U[0, nonneg_init] */
  /* inverse map: an MLP of inv_depth x inv_width, or for images (img_h > 0,
   * dim = img_h * img_w, one channel) a residual stack of inv_depth + 1
   * convolutions 3 x 3 with inv_width channels */
  int inv_width, inv_depth;
  int img_h, img_w;
  /* loss */
  float lambda_cyc, lambda_constr, lambda_reg, sigma_max;
  /* optimiser: Adam (beta2 0.999, eps 1e-8), global-norm clipping at clip
   * (0 = off), EMA of the weights at ema_rate */
  float lr, beta1, clip, ema_rate;
  int batch;
} CfNammConfig;

/* The paper's defaults: alpha 0.9, lambda_cyc 1, lambda_constr 1,
 * lambda_reg 1e-3, sigma_max 0.1, Adam lr 2e-4 with beta1 0.5, batch 16,
 * non-negative weights from U[0, 1e-3]; and the vector preset sizes: ICNN
 * 3 x 64, inverse MLP 3 x 128; clip 1, EMA rate 0.999. */
CfNammConfig cf_namm_default_config(int dim);
/* Checks ranges, with a message naming the field. */
CfStatus cf_namm_config_check(const CfNammConfig *cfg, CfError *err);

/* The constraint of the loss: exactly one of the two, in model space. The
 * objects must stay alive while cf_namm_prepare_train and
 * cf_namm_constraint_distance use them (the graph copies what it needs). */
typedef struct {
  const CfExprSet *expr;   /* non-linear equations over x0..x<dim-1> */
  const CfConstraint *lin; /* linear A x = b (full row rank not required) */
} CfNammConstraint;

/* Per-sample distance in double: sum_j |r_j(x)| or ||A x - b||_2. */
CfStatus cf_namm_constraint_distance(const CfNammConstraint *c, int dim, const float *x, int B, double *d,
                                     CfError *err);

/* Parameter indices of both networks inside one CfParams. */
typedef struct {
  int dim, width, depth;
  int U[CF_NAMM_MAX_DEPTH], b[CF_NAMM_MAX_DEPTH]; /* U_l (H, dim), b_l (1, H) */
  int W[CF_NAMM_MAX_DEPTH];                       /* W_l (H, H) for l >= 1; W[0] = -1 */
  int w_out, u_out;                               /* (1, H), (1, dim) */
  CfMlp inv;     /* vector data */
  int img_h, img_w, conv_c, n_conv;
  int conv_w[CF_NAMM_MAX_DEPTH + 2], conv_b[CF_NAMM_MAX_DEPTH + 2]; /* images: layer l's kernel and bias */
  int inv_first, inv_last; /* parameter indices: the inverse map's first, and its last layer's weight */
} CfNammNet;

/* Graph builders on x (B, dim) with the parameters of `p` in `net`'s layout.
 * grad_x R (B, dim); R (B, 1) too when R_out is non-NULL. */
CfNode cf_namm_build_potential_grad(CfGraph *g, CfParams *p, const CfNammNet *net, CfNode x, CfNode *R_out);
/* g(x) (B, dim); grad_x R into gradR_out when non-NULL. */
CfNode cf_namm_build_forward(CfGraph *g, CfParams *p, const CfNammNet *net, float alpha, CfNode x,
                             CfNode *gradR_out);
/* f(y) (B, dim). */
CfNode cf_namm_build_inverse(CfGraph *g, CfParams *p, const CfNammNet *net, CfNode y);

/* Loss terms of one step (before the update). */
typedef struct {
  float total;
  float cyc;               /* (cyc_fwd + cyc_inv) / 2 */
  float cyc_fwd, cyc_inv;  /* mean|f(g(x)) - x|, mean|g(f(y~)) - y~| */
  float constr;            /* mean d(f(y~)) */
  float reg;               /* mean|grad_x R(x)| */
  double grad_norm;        /* before clipping */
} CfNammLosses;

typedef struct {
  CfNammConfig cfg;
  CfParams params;
  CfNammNet net;
  int nonneg[CF_NAMM_MAX_DEPTH + 1]; /* parameters clamped at 0 after each step */
  int n_nonneg;
  CfAdam adam;
  float *ema;    /* params.total: EMA of the (projected) weights */
  float *backup; /* params.total: the weights before the current step */
  long step;     /* successful steps */
  /* training graph (cf_namm_prepare_train) */
  CfGraph *train;
  int train_B;
  CfNode in_x, in_noise, loss, l_cyc, l_cyc_fwd, l_cyc_inv, l_constr, l_reg;
  bool finetune; /* the graph is cf_namm_prepare_finetune's */
} CfNamm;

/* Declares both networks and allocates parameters, Adam moments and the EMA
 * (all zero; call cf_namm_randomize). */
CfStatus cf_namm_init(CfNamm *m, const CfNammConfig *cfg, CfError *err);
void cf_namm_clear(CfNamm *m);
/* Fan-in uniform init for U, the inverse MLP's hidden layers; U[0, nonneg_init]
 * for W_l and w_out; zero biases, u_out and last inverse layer. Resets the
 * EMA to the new weights, Adam and the step count. */
void cf_namm_randomize(CfNamm *m, CfRng *rng);
/* Clamps W_l and w_out at 0 (arena in m's layout: params or EMA). */
void cf_namm_project(const CfNamm *m, float *arena);
/* Builds the training graph for batch B (usually cfg.batch). */
CfStatus cf_namm_prepare_train(CfNamm *m, int B, const CfNammConstraint *c, CfError *err);
/* One step on x (train_B x dim): draws sigma and eps from rng, loss, backward,
 * Adam (clipped), projection, EMA. If the loss or the gradient is not finite
 * it returns CF_ERR_NUMERIC before touching the weights, Adam or the EMA;
 * if the update itself overflows, the weights are restored from a copy taken
 * before it (Adam keeps that step's finite moments). out is filled with what
 * was computed either way. No allocation. The learning rate is m->cfg.lr (may
 * be changed between steps). */
CfStatus cf_namm_train_step(CfNamm *m, const float *x, CfRng *rng, CfNammLosses *out, CfError *err);

/* Finetuning of the inverse map alone on mirror-space samples y (e.g. drawn
 * from the mirror diffusion model), g frozen:
 *     y~ = y + sigma eps,   L = lambda_cyc mean|g(f(y~)) - y~| + lambda_constr mean d(f(y~))
 * Replaces the training graph (cf_namm_train_step then takes y in place of
 * x; its losses report cyc = cyc_inv, cyc_fwd NaN, reg 0) and sets g's
 * weights to their EMA, which later steps keep (the step restores them
 * after Adam, so the EMA of g stays too). Adam is not reset. */
CfStatus cf_namm_prepare_finetune(CfNamm *m, int B, const CfNammConstraint *c, CfError *err);

/* ---- inference ---------------------------------------------------------------------- */

/* An inference copy (own parameter arena and graphs of `chunk` rows), so it can
 * run on another thread while the model trains. Batches of any size are
 * processed in chunks. */
typedef struct {
  CfNammConfig cfg;
  CfParams params;
  CfNammNet net;
  int chunk;
  CfGraph *gg, *gf;
  CfNode g_in, g_out, f_in, f_out;
} CfNammEval;

/* Same layout as m; copies m's current weights. */
CfStatus cf_namm_eval_init(CfNammEval *e, const CfNamm *m, int chunk, CfError *err);
void cf_namm_eval_clear(CfNammEval *e);
/* arena: params.total floats in the model's layout (m->params.value, m->ema
 * or a snapshot). */
void cf_namm_eval_load(CfNammEval *e, const float *arena);
/* y = g(x) (data -> mirror space), resp. x = f(y) (mirror -> data, e.g. DDPM
 * samples back onto the constraint). B rows of dim; in and out may alias. */
void cf_namm_eval_forward(CfNammEval *e, const float *x, int B, float *y);
void cf_namm_eval_inverse(CfNammEval *e, const float *y, int B, float *x);
/* Inverse accuracy on (held-out) data: per-row mean |f(g(x)) - x| over the
 * coordinates into per_row (B, may be NULL); returns the mean over rows.
 * Allocates a B x dim scratch (NAN when that fails). */
double cf_namm_eval_cycle_error(CfNammEval *e, const float *x, int B, double *per_row);

/* ---- speed ---------------------------------------------------------------------------
 * `conform bench` workload "namm-train": cf_namm_bench_config() (2-D vector
 * preset, batch 256), the ring constraint "x0^2 + x1^2 = 1", points on the
 * unit circle, timed over cf_namm_train_step calls (steps/s); FLOPs per step
 * from cf_namm_train_flops. tests/core/test_namm.c (/namm/speed) runs the
 * same loop. */
CfNammConfig cf_namm_bench_config(void);
/* Multiply-add FLOPs (2 per multiply-add) of one training step, forward and
 * backward (backward counted as twice the forward), dense layers only. */
double cf_namm_train_flops(const CfNammConfig *cfg, int B);

#endif
