/* Primal-dual ("dual") training of constrained diffusion models
 * (Khalafi, Ding, Ribeiro 2024; ../shared/research/dual-training.md).
 *
 * Problem: minimise L_0(theta) subject to L_i(theta) <= b_i, i = 1..m, where
 * every L is a denoising loss (an upper bound on a path KL) on its own data:
 * the main set, the samples of a minority class, a frozen teacher's
 * epsilon, or the expected violation of a linear constraint. Lagrangian
 *   L(theta, lambda) = L_0 + sum_i lambda_i (L_i - b_i),   lambda >= 0.
 * The trainer takes `every` (N) primal steps on L(., lambda) and then one
 * projected dual step on lambda with the constraint losses measured by those
 * primal steps (their mean over the N steps; no extra forward passes):
 *   plain (Algorithm 2, gamma = 0):   lambda_i <- [lambda_i + eta (Lbar_i - b_i)]_+
 *   resilient (Algorithm 3, gamma > 0):
 *     lambda_i <- [lambda_i + eta (Lbar_i - b_i - 2 gamma lambda_i)]_+
 * Resilience relaxes the threshold by gamma lambda_i^2; for b_i = 0 the
 * multiplier settles near Lbar_i / (2 gamma).
 * Convention: every L_i is a mean over its batch (and, for epsilon losses,
 * over coordinates), so thresholds, eta and gamma do not depend on the batch
 * sizes. lambda starts at 0 and is capped at `cap`: a multiplier that keeps
 * growing means the threshold is below what the model can reach
 * (infeasible); cf_dual_capped() reports it and the cap keeps training
 * finite. */
#ifndef CF_DUAL_H
#define CF_DUAL_H

#include <stdbool.h>

#include "status.h"

#define CF_DUAL_MAX_CONSTRAINTS 64

typedef struct {
  int m;
  double eta, gamma, cap;
  int every;          /* primal steps per dual step (N >= 1) */
  double *threshold;  /* m: b_i */
  double *lambda;     /* m */
  double *last_mean;  /* m: Lbar_i used by the latest dual step (NaN before the first) */
  double *acc;        /* m: running sums over the current N primal steps */
  int acc_n;
  long dual_steps;
  int *at_cap;        /* m: consecutive dual steps that ended at the cap */
} CfDual;

/* Validates (1 <= m <= CF_DUAL_MAX_CONSTRAINTS, finite thresholds >= 0,
 * eta > 0, gamma >= 0, every >= 1, cap > 0) and allocates; lambda = 0. */
CfStatus cf_dual_init(CfDual *d, int m, const double *threshold, double eta, double gamma, int every, double cap,
                      CfError *err);
void cf_dual_clear(CfDual *d);
/* Back to lambda = 0, nothing accumulated (thresholds and rates kept). */
void cf_dual_reset(CfDual *d);

/* Records the m constraint losses of one primal step. After every N-th call
 * it takes the dual step and returns true. A non-finite loss is refused
 * (CF_ERR_NUMERIC, nothing recorded). */
CfStatus cf_dual_observe(CfDual *d, const double *loss, bool *stepped, CfError *err);

/* slack_i = Lbar_i - b_i of the latest dual step (> 0: violated). */
double cf_dual_slack(const CfDual *d, int i);
/* True when lambda_i has sat at the cap for at least `steps` dual steps. */
bool cf_dual_capped(const CfDual *d, int i, int steps);

/* Class shares the Lagrangian optimum predicts: minimising L_0 + sum_i
 * lambda_i L_i fits the mixture (q + sum_i lambda_i q^i) / (1 + sum lambda),
 * so with training shares pi (K classes) and constraint i on class
 * cls[i] (q^i = that class's data; cls[i] < 0 for a constraint that is not a
 * class, which adds nothing to any class but still weighs 1 + sum lambda):
 *   share_k = (pi_k + sum_{i: cls[i] = k} lambda_i) / (1 + sum_{i: cls[i] >= 0} lambda_i).
 * Constraints with cls < 0 are left out of the denominator because they do
 * not move mass between classes. */
void cf_dual_predicted_shares(const double *pi, int K, const int *cls, const double *lambda, int m, double *share);

/* Total-variation distance 0.5 sum_k |p_k - q_k|. */
double cf_tv_distance(const double *p, const double *q, int K);

#endif
