/* Variational auto-encoder on vector data (model space, dimension n) with
 * four ways to handle a linear equality constraint A x = k.
 *
 * Model: MLP encoder x (B,n) -> [mu_z | logvar_z] (B,2d); z = mu_z +
 * exp(logvar_z / 2) .* eps; MLP decoder z (B,d) -> [mu_x | h] (B,2n);
 * heteroscedastic diagonal Gaussian with s_x = softplus(h) + var_floor.
 * Prior p(z) = N(0, I).
 *
 * Strategies (CfVaeStrategy):
 *   NONE        loss = -E_q[log N(x; mu_x, diag s_x)] + KL(q(z|x) || N(0,I))
 *               (one reparametrised z per sample). Samples mu_x + sqrt(s_x) eps.
 *   PROJECTION  trained as NONE; samples are projected orthogonally onto
 *               A x = k afterwards (post hoc).
 *   CONSTRAINED_LAYER (the paper's CL baseline): xhat = P(mu_x), the orthogonal
 *               projection of the decoder mean onto A x = k; loss =
 *               sum_i |xhat_i - x_i| + KL (the variance head is unused).
 *               Samples are the projected means. Its "log-likelihood" (ELBO,
 *               IW) uses the Laplace(scale 1) density that the L1 loss implies,
 *               log p(x|z) = -sum_i |x_i - xhat_i| - n log 2 (ambient space).
 *   CGAUSS      loss = -E_q[log p(x | z, A x = k)] + KL with the exactly
 *               conditioned Gaussian of core/cgauss.h: the density on the
 *               affine subspace {A x = k} (orthonormal coordinates, with the
 *               -1/2 log det(A A^T) term unless cgauss_drop_logdet_aat).
 *               Gradients from cf_cgauss_backward_log_density. Samples are
 *               exact constrained samples (A x = k to round-off).
 *
 * Log-likelihoods under different conventions (ambient Gaussian density,
 * density on the subspace, Laplace for CL) are NOT comparable with one
 * another; compare NLLs only between runs of the same strategy.
 *
 * Training: cf_vae_train_step computes the loss and the parameter gradients
 * (zeroed first) in vae->params.grad; the caller runs the optimiser
 * (core/optim.h) on vae->params.value. The decoder likelihood and its
 * gradients with respect to (mu_x, s_x) are computed outside the graph (in
 * double); the graph's scalar is sum(mu_x .* G_mu) + sum(s_x .* G_s) + KL/B
 * with G_* inputs holding those upstream gradients, so its backward pass is
 * exactly the vector-Jacobian product through decoder and encoder.
 * Losses are averages over the batch (per sample). */
#ifndef CF_VAE_H
#define CF_VAE_H

#include <stdbool.h>

#include "cgauss.h"
#include "constraint.h"
#include "graph.h"
#include "nn.h"
#include "rng.h"
#include "status.h"

typedef enum {
  CF_VAE_NONE = 0,
  CF_VAE_PROJECTION = 1,
  CF_VAE_CONSTRAINED_LAYER = 2,
  CF_VAE_CGAUSS = 3,
} CfVaeStrategy;

const char *cf_vae_strategy_name(CfVaeStrategy s);

typedef struct {
  int n;          /* data dimension */
  int latent;     /* d (default 8) */
  int width;      /* hidden width of both MLPs */
  int depth;      /* hidden layers of both MLPs (>= 1) */
  CfVaeStrategy strategy;
  float var_floor; /* added to softplus(h) (default 1e-3) */
  CfActivation act; /* default SiLU */
  CfCgaussEstimator cgauss_estimator; /* only for sampling gradients; unused by the ELBO */
  bool cgauss_drop_logdet_aat;        /* authors' density convention */
} CfVaeConfig;

/* latent 8, width 64, depth 2, NONE, floor 1e-3, SiLU, ME, keep logdet. */
CfVaeConfig cf_vae_default_config(int n);

typedef struct {
  CfVaeConfig cfg;
  CfParams params;
  CfMlp enc, dec;

  /* training graph for batch train_B (cf_vae_prepare_train) */
  CfGraph *train;
  int train_B;
  CfNode t_x, t_eps, t_gmu, t_gs, t_muz, t_lvz, t_mux, t_sx, t_loss;

  /* evaluation graphs for `chunk` rows (built lazily) */
  int chunk;
  CfGraph *enc_g, *dec_g;
  CfNode e_x, e_out, d_z, d_mux, d_sx;

  /* constraint (cf_vae_set_constraint) */
  bool have_constraint;
  CfConstraint c;         /* reduced (full row rank) copy */
  CfProjector proj;
  CfCgauss cg;

  /* scratch for the step (train_B rows) and evaluation (chunk rows) */
  float *gmu, *gs;        /* B x n */
  double *dlogp;          /* B */
  double *logp;           /* B */
  float *tmp;             /* B x n */
  float *ev_eps;          /* chunk x d */
  float *ev_z;            /* chunk x d */
  float *ev_x;            /* chunk x n */
  double *ev_logp;        /* chunk */
  int scratch_rows;
} CfVae;

/* Declares and allocates the parameters (zero; call cf_vae_randomize). */
CfStatus cf_vae_init(CfVae *v, const CfVaeConfig *cfg, CfError *err);
void cf_vae_clear(CfVae *v);
void cf_vae_randomize(CfVae *v, CfRng *rng);

/* The model-space constraint (map raw-space constraints with
 * cf_constraint_to_model_space first). Validated (dimension n, rank,
 * consistency; redundant rows dropped). Required by PROJECTION (sampling),
 * CONSTRAINED_LAYER and CGAUSS; optional for NONE. c = NULL removes it. */
CfStatus cf_vae_set_constraint(CfVae *v, const CfConstraint *c, CfError *err);

/* Builds (or rebuilds) the training graph for batch size B. */
CfStatus cf_vae_prepare_train(CfVae *v, int B, CfError *err);

/* One loss evaluation + backward on x (train_B x n, model space): draws the
 * latent noise from rng (train_B x d normals, one cf_rng_fill_normal call),
 * zeroes the parameter gradients, fills them. *out_loss: negative ELBO per
 * sample (L1 + KL for CONSTRAINED_LAYER). Errors: NaN/Inf in x
 * (CF_ERR_NUMERIC), missing constraint (CF_ERR_INVALID), CGAUSS data off the
 * constraint (CF_ERR_INVALID; tolerance 1e-4 relative), non-finite loss
 * (CF_ERR_NUMERIC). No allocation. */
CfStatus cf_vae_train_step(CfVae *v, const float *x, CfRng *rng, double *out_loss, CfError *err);

/* Single-sample ELBO estimate per row: out_elbo[b] = log p(x_b|z) - KL_b,
 * out_recon[b] = -log p(x_b|z) (either may be NULL). Any B >= 1. */
CfStatus cf_vae_elbo(CfVae *v, const float *x, int B, CfRng *rng, double *out_elbo, double *out_recon,
                     CfError *err);

/* Importance-weighted log-likelihood with K >= 1 samples per row:
 * out[b] = log (1/K) sum_k exp(log p(x_b|z_k) + log p(z_k) - log q(z_k|x_b)).
 * p(x|z): constrained density (CGAUSS), Laplace (CONSTRAINED_LAYER),
 * ambient Gaussian otherwise. */
CfStatus cf_vae_iw_loglik(CfVae *v, const float *x, int B, int K, CfRng *rng, double *out, CfError *err);

/* n_samples rows into out (n_samples x n) from the prior, per strategy.
 * mean_out (n_samples x n, may be NULL) receives each row's unconstrained
 * decoder mean mu_x: the point the constrained sample (CGAUSS) or the
 * projected mean (CONSTRAINED_LAYER) corrects. */
CfStatus cf_vae_sample(CfVae *v, int n_samples, CfRng *rng, float *out, float *mean_out, CfError *err);

/* KL(N(mu, diag exp(logvar)) || N(0, I)) for one row of d values, in double. */
double cf_vae_kl_std_normal(const float *mu, const float *logvar, int d);

#endif
