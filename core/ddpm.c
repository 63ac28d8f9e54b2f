/* Denoising diffusion on vector data: noise schedules, the ancestral (DDPM)
 * and DDIM samplers over any epsilon predictor, and the MLP denoiser with its
 * training graph and an inference copy.
 *
 * Conventions and choices made here (the header is the contract):
 *
 * Schedules (arrays indexed by t = 0..T, index 0 = no noise):
 *   linear: beta_t = b0 + (b1 - b0) (t - 1) / (T - 1) with b0 = 1e-4 * 1000/T,
 *           b1 = 0.02 * 1000/T (Ho et al. 2020, scaled so that any T gives
 *           about the same total noise as T = 1000). For T = 1 the single
 *           beta is b1. Betas are clipped at 0.999, which only matters for
 *           T < 21 where b1 would reach 1.
 *   cosine: abar(t) = f(t) / f(0), f(t) = cos^2(((t/T + s) / (1 + s)) pi/2),
 *           s = 0.008; beta_t = min(1 - abar(t)/abar(t-1), 0.999) (Nichol &
 *           Dhariwal 2021). alpha_bar is then the cumulative product of
 *           (1 - beta), so it equals the closed form wherever beta was not
 *           clipped (in practice every t < T) and stays > 0 at t = T.
 *
 * Samplers: x_T ~ N(0, I), then n_steps reverse steps along the times
 * t_n = T > t_{n-1} > ... > t_0 = 0 (cf_sampler_time):
 *   DDPM (n = T, t_i = i): x_{t-1} = 1/sqrt(alpha_t) (x_t - beta_t /
 *     sqrt(1 - abar_t) eps) + sigma_t z, sigma_t^2 = beta_tilde_t =
 *     beta_t (1 - abar_{t-1}) / (1 - abar_t) (= 0 at t = 1: no noise at the
 *     last step). With clip > 0 the same posterior mean is computed in its
 *     x0 form from the clipped prediction
 *       x0 = clamp((x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t), -clip, clip),
 *       mean = sqrt(abar_{t-1}) beta_t / (1 - abar_t) x0
 *            + sqrt(alpha_t) (1 - abar_{t-1}) / (1 - abar_t) x_t,
 *     which is identical to the first form when nothing is clipped.
 *   DDIM (n = steps, t_i = round(i T / steps), rounding half up): from t to
 *     s = previous time, with x0 as above (clipped if clip > 0) and
 *     eps' = (x_t - sqrt(abar_t) x0) / sqrt(1 - abar_t) (= eps if unclipped),
 *       sigma = eta sqrt((1 - abar_s) / (1 - abar_t)) sqrt(1 - abar_t / abar_s)
 *       x_s = sqrt(abar_s) x0 + sqrt(1 - abar_s - sigma^2) eps' + sigma z
 *     (Song et al. 2021). The final step to s = 0 has abar_0 = 1, sigma = 0,
 *     so it returns the x0 prediction. With steps = T and eta = 1 this is the
 *     DDPM chain (in its x0 form).
 *   Noise z is only drawn when the step has sigma > 0, so a deterministic
 *   DDIM run (eta = 0) consumes exactly B * dim normals (for x_T).
 *   The per-element update is computed in double; x lives in `out`, so after
 *   an abort `out` holds the partially denoised state.
 *   Per step, in order: abort check (before the step; CF_ERR_ABORTED with
 *   "sampling cancelled at step k of n", k = 1-based index of the step that
 *   was not run), eps_fn, update, hook(x, t_next), finiteness check
 *   (CF_ERR_NUMERIC), trajectory row, progress(k, n).
 *
 * Denoiser: input [x_t | temb(t)] with temb the sinusoidal embedding
 * (cf_time_embed, max_period 10000) of the raw integer time t in 1..T as a
 * float, as in Ho et al.; the MLP (SiLU, "denoiser.<i>.w/b") maps it to eps.
 * Raw t keeps CfDdpmEval independent of T. (For T far above 10^4 the lowest
 * embedding frequencies wrap around; the other frequencies still separate
 * the times.)
 *
 * Training FLOPs: 3 x the forward FLOPs of the MLP (backward ~ 2 x forward);
 * the embedding, concatenation and loss are ignored. */
#include "ddpm.h"

#include <lapacke.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CF_DDPM_T_MAX 100000
#define CF_DDPM_BETA_MAX 0.999
#define CF_DDPM_COSINE_S 0.008
#define CF_DDPM_TEMB_MAX_PERIOD 10000.0f
#define CF_DDPM_PARAM_PREFIX "denoiser"

/* ---- schedules ------------------------------------------------------------- */

static double
cosine_f(double t, double T)
{
  double c = cos(((t / T + CF_DDPM_COSINE_S) / (1.0 + CF_DDPM_COSINE_S)) * (M_PI / 2.0));
  return c * c;
}

CfStatus
cf_schedule_init(CfSchedule *s, CfScheduleKind kind, int T, CfError *err)
{
  CF_ASSERT(s != NULL);
  memset(s, 0, sizeof *s);
  if (kind != CF_SCHEDULE_LINEAR && kind != CF_SCHEDULE_COSINE)
    return cf_error_set(err, CF_ERR_INVALID, "unknown noise schedule kind %d", (int)kind);
  if (T < 1 || T > CF_DDPM_T_MAX)
    return cf_error_set(err, CF_ERR_INVALID,
                        "number of diffusion steps T must be in [1, %d] (got %d)", CF_DDPM_T_MAX, T);

  double *beta = cf_alloc_array((size_t)T + 1, sizeof(double));
  double *abar = cf_alloc_array((size_t)T + 1, sizeof(double));
  if (!beta || !abar) {
    free(beta);
    free(abar);
    return cf_error_set(err, CF_ERR_NOMEM, "cannot allocate a noise schedule with T = %d", T);
  }
  beta[0] = 0.0;
  abar[0] = 1.0;
  if (kind == CF_SCHEDULE_LINEAR) {
    double scale = 1000.0 / T;
    double b0 = 1e-4 * scale, b1 = 0.02 * scale;
    for (int t = 1; t <= T; t++) {
      double frac = T == 1 ? 1.0 : (double)(t - 1) / (double)(T - 1);
      double b = b0 + (b1 - b0) * frac;
      beta[t] = b < CF_DDPM_BETA_MAX ? b : CF_DDPM_BETA_MAX;
    }
  } else {
    double f0 = cosine_f(0.0, T);
    double prev = 1.0;
    for (int t = 1; t <= T; t++) {
      double cur = cosine_f(t, T) / f0;
      double b = 1.0 - cur / prev;
      beta[t] = b < CF_DDPM_BETA_MAX ? b : CF_DDPM_BETA_MAX;
      prev = cur;
    }
  }
  for (int t = 1; t <= T; t++)
    abar[t] = abar[t - 1] * (1.0 - beta[t]);

  s->kind = kind;
  s->T = T;
  s->beta = beta;
  s->alpha_bar = abar;
  return CF_OK;
}

void
cf_schedule_clear(CfSchedule *s)
{
  if (!s)
    return;
  free(s->beta);
  free(s->alpha_bar);
  memset(s, 0, sizeof *s);
}

/* ---- samplers -------------------------------------------------------------- */

int
cf_sampler_n_steps(const CfSchedule *s, const CfSamplerConfig *cfg)
{
  if (!s || !cfg || s->T < 1)
    return -1;
  if (cfg->kind == CF_SAMPLER_DDPM)
    return s->T;
  if (cfg->kind == CF_SAMPLER_DDIM)
    return (cfg->steps >= 1 && cfg->steps <= s->T) ? cfg->steps : -1;
  return -1;
}

int
cf_sampler_time(const CfSchedule *s, const CfSamplerConfig *cfg, int i)
{
  int n = cf_sampler_n_steps(s, cfg);
  if (n < 0 || i < 0 || i > n)
    return -1;
  if (cfg->kind == CF_SAMPLER_DDPM)
    return i;
  /* round(i T / n), half up, in 64-bit integers. */
  int64_t num = 2 * (int64_t)i * s->T + n;
  return (int)(num / (2 * (int64_t)n));
}

static CfStatus
sampler_validate(const CfSchedule *s, const CfSamplerConfig *cfg, int dim, int B, CfEpsFn eps_fn,
                 const float *out, CfError *err)
{
  if (!s || !s->beta || !s->alpha_bar || s->T < 1)
    return cf_error_set(err, CF_ERR_INVALID, "sampler: the noise schedule is not initialised");
  if (!cfg)
    return cf_error_set(err, CF_ERR_INVALID, "sampler: no sampler configuration given");
  if (cfg->kind != CF_SAMPLER_DDPM && cfg->kind != CF_SAMPLER_DDIM)
    return cf_error_set(err, CF_ERR_INVALID, "sampler: unknown sampler kind %d", (int)cfg->kind);
  if (cfg->kind == CF_SAMPLER_DDIM && (cfg->steps < 1 || cfg->steps > s->T))
    return cf_error_set(err, CF_ERR_INVALID, "DDIM sampler: steps must be in [1, T = %d] (got %d)",
                        s->T, cfg->steps);
  if (!isfinite(cfg->eta) || cfg->eta < 0.0f)
    return cf_error_set(err, CF_ERR_INVALID, "sampler: eta must be finite and >= 0 (got %g)",
                        (double)cfg->eta);
  if (!isfinite(cfg->clip) || cfg->clip < 0.0f)
    return cf_error_set(err, CF_ERR_INVALID,
                        "sampler: clip must be finite and >= 0 (0 = off) (got %g)", (double)cfg->clip);
  if (dim < 1)
    return cf_error_set(err, CF_ERR_INVALID, "sampler: data dimension must be >= 1 (got %d)", dim);
  if (B < 1)
    return cf_error_set(err, CF_ERR_INVALID, "sampler: number of samples must be >= 1 (got %d)", B);
  if ((size_t)B > SIZE_MAX / sizeof(float) / (size_t)dim / 2)
    return cf_error_set(err, CF_ERR_NOMEM, "sampler: %d samples of dimension %d are too many", B, dim);
  if (!eps_fn)
    return cf_error_set(err, CF_ERR_INVALID, "sampler: no epsilon predictor given");
  if (!out)
    return cf_error_set(err, CF_ERR_INVALID, "sampler: no output buffer given");
  return CF_OK;
}

static inline double
clampd(double v, double c)
{
  return v < -c ? -c : (v > c ? c : v);
}

/* The constraint of a cgauss chain: the layer, the target k (k_rows x
 * k_cols, 1 or B rows) and scratch. */
typedef struct {
  CfCgauss *cg;
  const float *k;
  int k_rows, k_cols;
  float *kt;    /* k_rows x k_cols: scale * k */
  float *noise; /* B x dim */
} ChainConstraint;

/* x <- a sample of N(x, var I) conditioned exactly on A x = scale k, with
 * the standard normals `noise` (B x dim); var = 0 gives the conditioned
 * mean, the Euclidean projection onto the affine set (scale 0: onto the
 * null space). */
static CfStatus
chain_condition(ChainConstraint *c, float *x, int B, double var, double scale, const float *noise, CfError *err)
{
  if (var <= 0.0)
    return cf_cgauss_project(c->cg, B, x, c->k, c->k_rows, c->k_cols, scale, err);
  const size_t nk = (size_t)c->k_rows * c->k_cols;
  for (size_t i = 0; i < nk; i++)
    c->kt[i] = (float)(scale * c->k[i]);
  const float v = (float)var;
  CfStatus st = cf_cgauss_forward(c->cg, B, x, &v, CF_CGAUSS_VAR_ISO, c->kt, c->k_rows, c->k_cols, err);
  if (st != CF_OK)
    return st;
  cf_cgauss_sample(c->cg, noise, NULL);
  memcpy(x, c->cg->z, sizeof(float) * (size_t)B * c->cg->n);
  return CF_OK;
}

/* One reverse step from t to t_next on x (B x dim) given the model's eps.
 * Unconstrained: the formulas of the header comment, elementwise in double.
 * Constrained (con != NULL): eps is first projected onto the null space and
 * x0 onto {A x = k}, then the step's Gaussian is conditioned on
 * A x_next = sqrt(abar_next) k. */
static CfStatus
reverse_step(const CfSchedule *s, const CfSamplerConfig *cfg, ChainConstraint *con, float *x, float *eps, int B,
             int dim, int t, int t_next, CfRng *rng, CfError *err)
{
  const size_t N = (size_t)B * (size_t)dim;
  const bool ddim = cfg->kind == CF_SAMPLER_DDIM;
  const double clip = cfg->clip;
  const double at = s->alpha_bar[t], an = s->alpha_bar[t_next];
  const double sa = sqrt(at), s1 = sqrt(1.0 - at), sn = sqrt(an);

  /* The step's Gaussian: mean = c0 x0 + ct x_t (DDPM) or sn x0 + dirc e
   * (DDIM), standard deviation sigma. */
  double sigma = 0.0, c0 = 0.0, ct = 0.0, dirc = 0.0;
  if (!ddim) {
    const double beta = s->beta[t], alpha = 1.0 - beta; /* t_next = t - 1 */
    const double var = t > 1 ? beta * (1.0 - an) / (1.0 - at) : 0.0;
    sigma = var > 0.0 ? sqrt(var) : 0.0;
    c0 = sn * beta / (1.0 - at);
    ct = sqrt(alpha) * (1.0 - an) / (1.0 - at);
  } else {
    if (cfg->eta > 0.0f && t_next > 0) {
      double r = (1.0 - an) / (1.0 - at) * (1.0 - at / an);
      sigma = r > 0.0 ? cfg->eta * sqrt(r) : 0.0;
    }
    double dv = 1.0 - an - sigma * sigma;
    dirc = dv > 0.0 ? sqrt(dv) : 0.0;
  }

  if (!con) {
    if (!ddim && clip <= 0.0) { /* the eps form, identical when nothing is clipped */
      const double c1 = 1.0 / sqrt(1.0 - s->beta[t]), c2 = s->beta[t] / s1;
      for (size_t i = 0; i < N; i++) {
        double v = c1 * (x[i] - c2 * eps[i]);
        if (sigma > 0.0)
          v += sigma * cf_rng_normal(rng);
        x[i] = (float)v;
      }
      return CF_OK;
    }
    for (size_t i = 0; i < N; i++) {
      double x0 = (x[i] - s1 * eps[i]) / sa;
      double e = eps[i];
      if (clip > 0.0) {
        x0 = clampd(x0, clip);
        e = (x[i] - sa * x0) / s1;
      }
      double v = ddim ? sn * x0 + dirc * e : c0 * x0 + ct * x[i];
      if (sigma > 0.0)
        v += sigma * cf_rng_normal(rng);
      x[i] = (float)v;
    }
    return CF_OK;
  }

  /* eps_c = P_N eps; x0_bar = Proj(clip(x0_hat)) (kept in eps). */
  CfStatus st = chain_condition(con, eps, B, 0.0, 0.0, NULL, err);
  if (st != CF_OK)
    return st;
  for (size_t i = 0; i < N; i++) {
    double x0 = (x[i] - s1 * eps[i]) / sa;
    eps[i] = (float)(clip > 0.0 ? clampd(x0, clip) : x0);
  }
  if ((st = chain_condition(con, eps, B, 0.0, 1.0, NULL, err)) != CF_OK)
    return st;
  for (size_t i = 0; i < N; i++) {
    double x0 = eps[i];
    double v = ddim ? sn * x0 + dirc * ((x[i] - sa * x0) / s1) : c0 * x0 + ct * x[i];
    x[i] = (float)v;
  }
  if (sigma > 0.0)
    cf_rng_fill_normal(rng, con->noise, N);
  return chain_condition(con, x, B, sigma * sigma, sn, con->noise, err);
}

static CfStatus
sample_impl(const CfSchedule *s, const CfSamplerConfig *cfg, int dim, int B, CfEpsFn eps_fn, void *eps_user,
            ChainConstraint *con, CfStepHook hook, void *hook_user, CfRng *rng, float *out, float *traj,
            CfAbortFn abort_fn, CfProgressFn progress_fn, void *cb_user, CfError *err)
{
  CfStatus st = sampler_validate(s, cfg, dim, B, eps_fn, out, err);
  if (st != CF_OK)
    return st;
  CF_ASSERT(rng != NULL);

  const int n = cf_sampler_n_steps(s, cfg);
  const size_t N = (size_t)B * (size_t)dim;
  float *eps = cf_alloc_array(N, sizeof(float));
  int *tb = cf_alloc_array((size_t)B, sizeof(int));
  if (!eps || !tb) {
    free(eps);
    free(tb);
    return cf_error_set(err, CF_ERR_NOMEM, "sampler: cannot allocate scratch for %d samples", B);
  }

  float *x = out;
  cf_rng_fill_normal(rng, x, N);
  if (con && (st = chain_condition(con, x, B, 0.0, sqrt(s->alpha_bar[s->T]), NULL, err)) != CF_OK)
    goto done;
  if (traj)
    memcpy(traj, x, N * sizeof(float));

  for (int k = 1; k <= n; k++) {
    if (abort_fn && abort_fn(cb_user)) {
      st = cf_error_set(err, CF_ERR_ABORTED, "sampling cancelled at step %d of %d", k, n);
      goto done;
    }
    const int t = cf_sampler_time(s, cfg, n - k + 1);
    const int t_next = cf_sampler_time(s, cfg, n - k);
    for (int b = 0; b < B; b++)
      tb[b] = t;
    eps_fn(eps_user, x, tb, B, eps);
    if ((st = reverse_step(s, cfg, con, x, eps, B, dim, t, t_next, rng, err)) != CF_OK)
      goto done;
    if (hook)
      hook(hook_user, x, B, t_next);
    for (size_t i = 0; i < N; i++) {
      if (!isfinite(x[i])) {
        st = cf_error_set(err, CF_ERR_NUMERIC,
                          "sampling: non-finite value at step %d of %d (t = %d -> %d), sample %zu",
                          k, n, t, t_next, i / (size_t)dim);
        goto done;
      }
    }
    if (traj)
      memcpy(traj + (size_t)k * N, x, N * sizeof(float));
    if (progress_fn)
      progress_fn(cb_user, k, n);
  }
  st = CF_OK;

done:
  free(eps);
  free(tb);
  return st;
}

CfStatus
cf_ddpm_sample(const CfSchedule *s, const CfSamplerConfig *cfg, int dim, int B, CfEpsFn eps_fn,
               void *eps_user, CfStepHook hook, void *hook_user, CfRng *rng, float *out, float *traj,
               CfAbortFn abort_fn, CfProgressFn progress_fn, void *cb_user, CfError *err)
{
  return sample_impl(s, cfg, dim, B, eps_fn, eps_user, NULL, hook, hook_user, rng, out, traj, abort_fn,
                     progress_fn, cb_user, err);
}

CfStatus
cf_ddpm_sample_constrained(const CfSchedule *s, const CfSamplerConfig *cfg, int dim, int B, CfEpsFn eps_fn,
                           void *eps_user, CfCgauss *cg, const float *k, int k_rows, int k_cols,
                           CfStepHook hook, void *hook_user, CfRng *rng, float *out, float *traj,
                           CfAbortFn abort_fn, CfProgressFn progress_fn, void *cb_user, CfError *err)
{
  CF_ASSERT(cg != NULL);
  if (cg->n != dim)
    return cf_error_set(err, CF_ERR_MISMATCH, "constrained sampler: the constraint has %d columns, the data %d",
                        cg->n, dim);
  float *own_k = NULL;
  if (!k) { /* the constraint's own right-hand side */
    own_k = cf_alloc_array((size_t)cg->m_full, sizeof(float));
    if (!own_k)
      return cf_error_set(err, CF_ERR_NOMEM, "constrained sampler: out of memory");
    for (int i = 0; i < cg->m_full; i++)
      own_k[i] = (float)cg->b[i];
    k = own_k;
    k_rows = 1;
    k_cols = cg->m_full;
  }
  if ((k_rows != 1 && k_rows != B) || k_cols < 1) {
    free(own_k);
    return cf_error_set(err, CF_ERR_MISMATCH,
                        "constrained sampler: k must have 1 or %d rows (got %d x %d)", B, k_rows, k_cols);
  }
  const size_t nk = (size_t)k_rows * k_cols;
  ChainConstraint con = {cg, k, k_rows, k_cols, cf_alloc_array(nk, sizeof(float)),
                         cf_alloc_array((size_t)B * dim, sizeof(float))};
  CfStatus st;
  if (!con.kt || !con.noise) {
    st = cf_error_set(err, CF_ERR_NOMEM, "constrained sampler: cannot allocate scratch for %d samples", B);
  } else {
    st = sample_impl(s, cfg, dim, B, eps_fn, eps_user, &con, hook, hook_user, rng, out, traj, abort_fn,
                     progress_fn, cb_user, err);
  }
  free(con.kt);
  free(con.noise);
  free(own_k);
  return st;
}

/* ---- the MLP denoiser ------------------------------------------------------ */

static CfStatus
denoiser_validate(const CfDenoiserConfig *cfg, CfError *err)
{
  if (!cfg)
    return cf_error_set(err, CF_ERR_INVALID, "denoiser: no configuration given");
  if (cfg->dim < 1)
    return cf_error_set(err, CF_ERR_INVALID, "denoiser: data dimension must be >= 1 (got %d)", cfg->dim);
  if (cfg->arch == CF_ARCH_MLP && cfg->width < 1)
    return cf_error_set(err, CF_ERR_INVALID, "denoiser: hidden width must be >= 1 (got %d)", cfg->width);
  if (cfg->arch == CF_ARCH_MLP && cfg->depth < 1)
    return cf_error_set(err, CF_ERR_INVALID, "denoiser: depth (hidden layers) must be >= 1 (got %d)",
                        cfg->depth);
  if (cfg->temb_dim < 2 || cfg->temb_dim % 2 != 0)
    return cf_error_set(err, CF_ERR_INVALID,
                        "denoiser: time-embedding size must be even and >= 2 (got %d)", cfg->temb_dim);
  if (cfg->arch == CF_ARCH_UNET) {
    const int L = cfg->unet_levels, f = 1 << (L > 0 ? L - 1 : 0);
    if (cfg->img_c < 1 || cfg->img_h < 1 || cfg->img_w < 1 ||
        (long)cfg->img_c * cfg->img_h * cfg->img_w != cfg->dim)
      return cf_error_set(err, CF_ERR_INVALID, "denoiser: U-Net image %d x %d x %d does not match dimension %d",
                          cfg->img_c, cfg->img_h, cfg->img_w, cfg->dim);
    if (L < 1 || L > 3)
      return cf_error_set(err, CF_ERR_INVALID, "denoiser: U-Net levels must be in [1, 3] (got %d)", L);
    if (cfg->img_h % f != 0 || cfg->img_w % f != 0)
      return cf_error_set(err, CF_ERR_INVALID,
                          "denoiser: a %d-level U-Net needs image sizes divisible by %d (got %d x %d)", L, f,
                          cfg->img_h, cfg->img_w);
    if (cfg->unet_base < 1 || cfg->unet_base > 512)
      return cf_error_set(err, CF_ERR_INVALID, "denoiser: U-Net base channels must be in [1, 512] (got %d)",
                          cfg->unet_base);
  } else if (cfg->arch != CF_ARCH_MLP) {
    return cf_error_set(err, CF_ERR_INVALID, "denoiser: unknown architecture %d", (int)cfg->arch);
  }
  if (cfg->cond_dim < 0 || cfg->cond_dim > INT32_MAX / 4)
    return cf_error_set(err, CF_ERR_INVALID, "denoiser: conditioning size must be >= 0 (got %d)", cfg->cond_dim);
  if (cfg->dim > INT32_MAX / 4 - cfg->temb_dim)
    return cf_error_set(err, CF_ERR_INVALID, "denoiser: data dimension %d is too large", cfg->dim);
  return CF_OK;
}

/* Declares the denoiser's parameters into an initialised, empty CfParams
 * (identical calls for the model and every evaluator, so layouts match). */
static CfUnetConfig
unet_config(const CfDenoiserConfig *cfg)
{
  CfUnetConfig uc = cf_unet_default_config(cfg->img_c, cfg->img_h, cfg->img_w);
  uc.base = cfg->unet_base;
  uc.levels = cfg->unet_levels;
  for (int l = 0; l < CF_UNET_MAX_LEVELS; l++)
    uc.mult[l] = l == 0 ? 1 : 2;
  uc.temb_dim = cfg->temb_dim;
  uc.cond_dim = cfg->cond_dim;
  uc.groups = 8; /* the largest power of two <= 8 dividing the base (then every width) */
  while (cfg->unet_base % uc.groups != 0)
    uc.groups /= 2;
  return uc;
}

static CfStatus
denoiser_declare(CfParams *p, CfDenoiserNet *net, const CfDenoiserConfig *cfg, CfError *err)
{
  if (cfg->arch == CF_ARCH_UNET) {
    CfUnetConfig uc = unet_config(cfg);
    cf_unet_declare(&net->unet, p, CF_DDPM_PARAM_PREFIX, &uc);
    if (!net->unet.ok)
      return cf_error_set(err, CF_ERR_NOMEM, "denoiser: cannot declare the U-Net's parameters");
  } else {
    cf_mlp_declare(&net->mlp, p, CF_DDPM_PARAM_PREFIX, cfg->dim + cfg->cond_dim + cfg->temb_dim, cfg->width,
                   cfg->depth, cfg->dim);
  }
  if (cf_params_alloc(p) != CF_OK)
    return cf_error_set(err, CF_ERR_NOMEM, "denoiser: cannot allocate %zu parameters", p->total);
  return CF_OK;
}

/* x (B,dim), cond (B,cond_dim) or -1, t (B,1) -> eps (B,dim). */
static CfNode
denoiser_build(CfGraph *g, CfParams *p, const CfDenoiserNet *net, const CfDenoiserConfig *cfg, CfNode x,
               CfNode cond, CfNode t)
{
  CfNode emb = cf_time_embed(g, t, cfg->temb_dim, CF_DDPM_TEMB_MAX_PERIOD);
  if (cfg->arch == CF_ARCH_UNET)
    return cf_unet_build(g, p, &net->unet, x, emb, cond);
  CfNode h = cf_concat_cols(g, cond >= 0 ? cf_concat_cols(g, x, cond) : x, emb);
  return cf_mlp_build(g, p, &net->mlp, h, CF_ACT_SILU);
}

static void
ddpm_reset_nodes(CfDdpm *m)
{
  m->in_x = m->in_t = m->in_eps = m->out_eps = m->loss = -1;
  m->in_cond = m->in_proj = -1;
  m->row_err = m->in_w = m->total = -1;
  m->in_vA = m->in_vtgt = m->row_viol = m->in_wv = -1;
}

CfStatus
cf_ddpm_init(CfDdpm *m, const CfDenoiserConfig *cfg, CfScheduleKind sched, int T, CfError *err)
{
  CF_ASSERT(m != NULL);
  memset(m, 0, sizeof *m);
  cf_params_init(&m->params);
  ddpm_reset_nodes(m);
  CfStatus st = denoiser_validate(cfg, err);
  if (st != CF_OK)
    return st;
  m->cfg = *cfg;
  st = cf_schedule_init(&m->sched, sched, T, err);
  if (st == CF_OK)
    st = denoiser_declare(&m->params, &m->net, cfg, err);
  if (st != CF_OK)
    cf_ddpm_clear(m);
  return st;
}

void
cf_ddpm_clear(CfDdpm *m)
{
  if (!m)
    return;
  if (m->train)
    cf_graph_free(m->train);
  cf_params_clear(&m->params);
  cf_schedule_clear(&m->sched);
  free(m->null_proj);
  free(m->viol_A);
  free(m->viol_b);
  free(m->t_scratch);
  memset(m, 0, sizeof *m);
  ddpm_reset_nodes(m);
}

CfStatus
cf_ddpm_set_nullspace(CfDdpm *m, const float *P, CfError *err)
{
  CF_ASSERT(m != NULL);
  free(m->null_proj);
  m->null_proj = NULL;
  if (!P)
    return CF_OK;
  const size_t nn = (size_t)m->cfg.dim * m->cfg.dim;
  m->null_proj = cf_alloc_array(nn + (size_t)m->cfg.dim, sizeof(float));
  if (!m->null_proj)
    return cf_error_set(err, CF_ERR_NOMEM, "denoiser: cannot allocate the %d x %d null-space projector",
                        m->cfg.dim, m->cfg.dim);
  memcpy(m->null_proj, P, nn * sizeof(float));
  return CF_OK;
}

CfStatus
cf_nullspace_projector(const CfConstraint *c, float *P, CfError *err)
{
  CF_ASSERT(c != NULL && P != NULL && c->m >= 1);
  const int m = c->m, n = c->n;
  /* P = I - A^T (A A^T)^{-1} A = I - W^T W with W = L^{-1} A, L L^T = A A^T. */
  double *W = cf_alloc_array((size_t)m * n, sizeof(double));
  double *G = cf_alloc_array((size_t)m * m, sizeof(double));
  if (!W || !G) {
    free(W);
    free(G);
    return cf_error_set(err, CF_ERR_NOMEM, "null-space projector: out of memory (%d x %d)", m, n);
  }
  memcpy(W, c->A, sizeof(double) * (size_t)m * n);
  for (int i = 0; i < m; i++)
    for (int j = 0; j <= i; j++) {
      double acc = 0.0;
      for (int q = 0; q < n; q++)
        acc += c->A[(size_t)i * n + q] * c->A[(size_t)j * n + q];
      G[(size_t)i * m + j] = G[(size_t)j * m + i] = acc;
    }
  CfStatus st = CF_OK;
  if (LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'L', m, G, m) != 0 ||
      LAPACKE_dtrtrs(LAPACK_ROW_MAJOR, 'L', 'N', 'N', m, n, G, m, W, n) != 0) {
    st = cf_error_set(err, CF_ERR_RANK, "null-space projector: A A^T is not positive definite (A is not of full "
                                        "row rank)");
  } else {
    for (int i = 0; i < n; i++)
      for (int j = 0; j < n; j++) {
        double acc = i == j ? 1.0 : 0.0;
        for (int r = 0; r < m; r++)
          acc -= W[(size_t)r * n + i] * W[(size_t)r * n + j];
        P[(size_t)i * n + j] = (float)acc;
      }
  }
  free(W);
  free(G);
  return st;
}

void
cf_ddpm_randomize(CfDdpm *m, CfRng *rng)
{
  CF_ASSERT(m != NULL && rng != NULL);
  cf_params_randomize(&m->params, rng);
}

CfStatus
cf_ddpm_prepare_train(CfDdpm *m, int B, CfError *err)
{
  CF_ASSERT(m != NULL && m->params.value != NULL);
  if (B < 1)
    return cf_error_set(err, CF_ERR_INVALID, "denoiser: training batch size must be >= 1 (got %d)", B);
  if (m->train) {
    cf_graph_free(m->train);
    m->train = NULL;
    m->train_B = 0;
  }
  free(m->t_scratch);
  m->t_scratch = cf_alloc_array((size_t)B, sizeof(int));
  CfGraph *g = m->t_scratch ? cf_graph_new() : NULL;
  if (!g)
    return cf_error_set(err, CF_ERR_NOMEM, "denoiser: cannot allocate the training graph");
  const int dim = m->cfg.dim;
  m->in_x = cf_input(g, B, dim, false);
  m->in_t = cf_input(g, B, 1, false);
  m->in_eps = cf_input(g, B, dim, false);
  m->in_cond = m->cfg.cond_dim > 0 ? cf_input(g, B, m->cfg.cond_dim, false) : -1;
  m->out_eps = denoiser_build(g, &m->params, &m->net, &m->cfg, m->in_x, m->in_cond, m->in_t);
  CfNode pred = m->out_eps;
  m->in_proj = -1;
  if (m->null_proj) { /* rows of eps_theta P_N (P_N symmetric) */
    m->in_proj = cf_input(g, dim, dim, false);
    pred = cf_matmul(g, m->out_eps, m->in_proj, false, false);
  }
  m->loss = cf_mse(g, pred, m->in_eps);
  /* total = sum_r w_r e_r (+ sum_r wv_r v_r): e_r = ||pred - eps||^2 / dim,
   * v_r = ||A eps_theta - c_r||^2 (cf_ddpm_accumulate) */
  m->row_err = cf_scale(g, cf_sum_rows(g, cf_square(g, cf_sub(g, pred, m->in_eps))), 1.0f / (float)dim);
  m->in_w = cf_input(g, B, 1, false);
  m->total = cf_sum_all(g, cf_mul(g, m->row_err, m->in_w));
  if (m->viol_m > 0) {
    m->in_vA = cf_input(g, m->viol_m, dim, false);
    m->in_vtgt = cf_input(g, B, m->viol_m, false);
    CfNode u = cf_matmul(g, m->out_eps, m->in_vA, false, true);
    m->row_viol = cf_sum_rows(g, cf_square(g, cf_sub(g, u, m->in_vtgt)));
    m->in_wv = cf_input(g, B, 1, false);
    m->total = cf_add(g, m->total, cf_sum_all(g, cf_mul(g, m->row_viol, m->in_wv)));
  }
  if (cf_graph_finalize(g) != CF_OK) {
    cf_graph_free(g);
    ddpm_reset_nodes(m);
    return cf_error_set(err, CF_ERR_NOMEM,
                        "denoiser: cannot allocate the training graph for batch size %d", B);
  }
  m->train = g;
  m->train_B = B;
  if (m->null_proj)
    memcpy(cf_graph_value(g, m->in_proj), m->null_proj, sizeof(float) * (size_t)dim * dim);
  if (m->viol_m > 0)
    memcpy(cf_graph_value(g, m->in_vA), m->viol_A, sizeof(float) * (size_t)m->viol_m * dim);
  return CF_OK;
}

float
cf_ddpm_train_step(CfDdpm *m, const float *x0, CfRng *rng)
{
  return cf_ddpm_train_step_cond(m, x0, NULL, rng);
}

/* Writes the inputs of rows [0, n_data): t ~ U{1..T}, eps ~ N(0, I) (P_N eps
 * under null-space training) and x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps;
 * then of the teacher rows [n_data, train_B): t ~ U{1..T}, x_t ~ N(0, I). */
static void
draw_noisy_batch(CfDdpm *m, const float *x0, const float *cond, int n_data, CfRng *rng)
{
  CF_ASSERT(m != NULL && m->train != NULL && rng != NULL && (x0 != NULL || n_data == 0));
  CF_ASSERT((m->cfg.cond_dim > 0) == (cond != NULL));
  CfGraph *g = m->train;
  const int B = m->train_B, dim = m->cfg.dim, T = m->sched.T;
  float *xt = cf_graph_value(g, m->in_x);
  float *tt = cf_graph_value(g, m->in_t);
  float *ep = cf_graph_value(g, m->in_eps);
  if (cond)
    memcpy(cf_graph_value(g, m->in_cond), cond, sizeof(float) * (size_t)B * m->cfg.cond_dim);
  const float *P = m->null_proj;
  float *pe = P ? m->null_proj + (size_t)dim * dim : NULL; /* scratch row */
  for (int b = 0; b < B; b++) {
    int t = 1 + (int)cf_rng_below(rng, (uint64_t)T);
    tt[b] = (float)t;
    m->t_scratch[b] = t;
    float *xr = xt + (size_t)b * dim;
    if (b >= n_data) {
      cf_rng_fill_normal(rng, xr, (size_t)dim);
      continue;
    }
    const double ab = m->sched.alpha_bar[t];
    const double sa = sqrt(ab), s1 = sqrt(1.0 - ab);
    float *e = ep + (size_t)b * dim;
    const float *x0r = x0 + (size_t)b * dim;
    cf_rng_fill_normal(rng, e, (size_t)dim);
    if (P) {
      for (int i = 0; i < dim; i++) {
        double acc = 0.0;
        for (int j = 0; j < dim; j++)
          acc += (double)P[(size_t)i * dim + j] * e[j];
        pe[i] = (float)acc;
      }
      memcpy(e, pe, sizeof(float) * dim);
    }
    for (int j = 0; j < dim; j++)
      xr[j] = (float)(sa * x0r[j] + s1 * e[j]);
  }
}

float
cf_ddpm_train_step_cond(CfDdpm *m, const float *x0, const float *cond, CfRng *rng)
{
  draw_noisy_batch(m, x0, cond, m->train_B, rng);
  CfGraph *g = m->train;
  cf_graph_forward(g);
  cf_params_zero_grad(&m->params);
  cf_graph_backward(g, m->loss);
  return cf_graph_value(g, m->loss)[0];
}

CfStatus
cf_ddpm_set_violation(CfDdpm *m, const CfConstraint *c, CfError *err)
{
  CF_ASSERT(m != NULL);
  free(m->viol_A);
  free(m->viol_b);
  m->viol_A = m->viol_b = NULL;
  m->viol_m = 0;
  if (!c)
    return CF_OK;
  if (c->n != m->cfg.dim || c->m < 1)
    return cf_error_set(err, CF_ERR_SHAPE, "denoiser: the violation term needs a constraint on %d columns (got %d x %d)",
                        m->cfg.dim, c->m, c->n);
  m->viol_A = cf_alloc_array((size_t)c->m * c->n, sizeof(float));
  m->viol_b = cf_alloc_array((size_t)c->m, sizeof(float));
  if (!m->viol_A || !m->viol_b) {
    free(m->viol_A);
    free(m->viol_b);
    m->viol_A = m->viol_b = NULL;
    return cf_error_set(err, CF_ERR_NOMEM, "denoiser: cannot allocate the %d x %d violation term", c->m, c->n);
  }
  for (size_t i = 0; i < (size_t)c->m * c->n; i++)
    m->viol_A[i] = (float)c->A[i];
  for (int i = 0; i < c->m; i++)
    m->viol_b[i] = (float)c->b[i];
  m->viol_m = c->m;
  return CF_OK;
}

/* c_r = A eps_r + sqrt(abar / (1 - abar)) (A x0_r - k_r) on data rows, in
 * double; 0 on teacher rows (their weight must be 0). */
static void
violation_targets(CfDdpm *m, const float *x0, const float *k, int n_data)
{
  CfGraph *g = m->train;
  const int B = m->train_B, dim = m->cfg.dim, vm = m->viol_m;
  const float *ep = cf_graph_value(g, m->in_eps);
  float *c = cf_graph_value(g, m->in_vtgt);
  memset(c, 0, sizeof(float) * (size_t)B * vm);
  for (int b = 0; b < n_data; b++) {
    const double ab = m->sched.alpha_bar[m->t_scratch[b]];
    const double snr = sqrt(ab / (1.0 - ab));
    const float *e = ep + (size_t)b * dim, *x = x0 + (size_t)b * dim;
    const float *kb = k ? k + (size_t)b * vm : m->viol_b;
    for (int i = 0; i < vm; i++) {
      const float *a = m->viol_A + (size_t)i * dim;
      double ae = 0.0, ax = 0.0;
      for (int j = 0; j < dim; j++) {
        ae += (double)a[j] * e[j];
        ax += (double)a[j] * x[j];
      }
      c[(size_t)b * vm + i] = (float)(ae + snr * (ax - kb[i]));
    }
  }
}

float
cf_ddpm_accumulate(CfDdpm *m, const CfDdpmTerms *terms, CfRng *rng, bool zero_grad, float *row_err, float *row_viol)
{
  CF_ASSERT(m != NULL && m->train != NULL && terms != NULL && terms->w != NULL);
  const int B = m->train_B, dim = m->cfg.dim;
  const int n_data = terms->n_data;
  CF_ASSERT(n_data >= 0 && n_data <= B && (n_data == B || terms->teacher != NULL));
  CF_ASSERT(terms->w_viol == NULL || m->viol_m > 0);
  CfGraph *g = m->train;
  draw_noisy_batch(m, terms->x0, terms->cond, n_data, rng);
  if (n_data < B) { /* teacher targets for the noise rows */
    const float *xt = cf_graph_value(g, m->in_x);
    terms->teacher(terms->teacher_user, xt + (size_t)n_data * dim, m->t_scratch + n_data, B - n_data,
                   cf_graph_value(g, m->in_eps) + (size_t)n_data * dim);
  }
  memcpy(cf_graph_value(g, m->in_w), terms->w, sizeof(float) * (size_t)B);
  if (m->viol_m > 0) {
    float *wv = cf_graph_value(g, m->in_wv);
    if (terms->w_viol) {
      violation_targets(m, terms->x0, terms->k, n_data);
      memcpy(wv, terms->w_viol, sizeof(float) * (size_t)B);
    } else {
      memset(wv, 0, sizeof(float) * (size_t)B);
      memset(cf_graph_value(g, m->in_vtgt), 0, sizeof(float) * (size_t)B * m->viol_m);
    }
  }
  cf_graph_forward(g);
  if (zero_grad)
    cf_params_zero_grad(&m->params);
  cf_graph_backward(g, m->total);
  if (row_err)
    memcpy(row_err, cf_graph_value(g, m->row_err), sizeof(float) * (size_t)B);
  if (row_viol) {
    if (m->viol_m > 0 && terms->w_viol)
      memcpy(row_viol, cf_graph_value(g, m->row_viol), sizeof(float) * (size_t)B);
    else
      for (int b = 0; b < B; b++)
        row_viol[b] = NAN;
  }
  return cf_graph_value(g, m->total)[0];
}

/* ---- inference copy -------------------------------------------------------- */

CfStatus
cf_ddpm_eval_init(CfDdpmEval *e, const CfDdpm *m, int chunk, CfError *err)
{
  CF_ASSERT(e != NULL && m != NULL);
  memset(e, 0, sizeof *e);
  cf_params_init(&e->params);
  e->in_x = e->in_t = e->out = e->in_cond = -1;
  CfStatus st = denoiser_validate(&m->cfg, err);
  if (st != CF_OK)
    return st;
  if (chunk < 1)
    return cf_error_set(err, CF_ERR_INVALID, "denoiser evaluator: chunk size must be >= 1 (got %d)",
                        chunk);
  e->cfg = m->cfg;
  e->chunk = chunk;
  st = denoiser_declare(&e->params, &e->net, &e->cfg, err);
  if (st != CF_OK)
    goto fail;
  if (e->params.total != m->params.total) {
    st = cf_error_set(err, CF_ERR_MISMATCH,
                      "denoiser evaluator: parameter layout differs from the model (%zu vs %zu floats)",
                      e->params.total, m->params.total);
    goto fail;
  }
  e->g = cf_graph_new();
  if (!e->g) {
    st = cf_error_set(err, CF_ERR_NOMEM, "denoiser evaluator: cannot allocate its graph");
    goto fail;
  }
  e->in_x = cf_input(e->g, chunk, e->cfg.dim, false);
  e->in_t = cf_input(e->g, chunk, 1, false);
  e->in_cond = e->cfg.cond_dim > 0 ? cf_input(e->g, chunk, e->cfg.cond_dim, false) : -1;
  e->out = denoiser_build(e->g, &e->params, &e->net, &e->cfg, e->in_x, e->in_cond, e->in_t);
  if (cf_graph_finalize(e->g) != CF_OK) {
    st = cf_error_set(err, CF_ERR_NOMEM, "denoiser evaluator: cannot allocate its graph for %d rows",
                      chunk);
    goto fail;
  }
  if (m->params.value)
    memcpy(e->params.value, m->params.value, e->params.total * sizeof(float));
  return CF_OK;

fail:
  cf_ddpm_eval_clear(e);
  return st;
}

void
cf_ddpm_eval_clear(CfDdpmEval *e)
{
  if (!e)
    return;
  if (e->g)
    cf_graph_free(e->g);
  cf_params_clear(&e->params);
  memset(e, 0, sizeof *e);
  e->in_x = e->in_t = e->out = e->in_cond = -1;
}

void
cf_ddpm_eval_load(CfDdpmEval *e, const float *arena)
{
  CF_ASSERT(e != NULL && e->params.value != NULL && arena != NULL);
  memcpy(e->params.value, arena, e->params.total * sizeof(float));
}

void
cf_ddpm_eval_eps(void *user, const float *x_t, const int *t, int B, float *eps_out)
{
  CfDdpmEval *e = user;
  CF_ASSERT(e != NULL && e->g != NULL && B >= 0 && (B == 0 || (x_t && t && eps_out)));
  const int dim = e->cfg.dim, C = e->chunk, nc = e->cfg.cond_dim;
  CF_ASSERT(nc == 0 || e->cond != NULL);
  float *xin = cf_graph_value(e->g, e->in_x);
  float *tin = cf_graph_value(e->g, e->in_t);
  float *cin = nc > 0 ? cf_graph_value(e->g, e->in_cond) : NULL;
  const float *out = cf_graph_value(e->g, e->out);
  for (int start = 0; start < B; start += C) {
    const int rows = B - start < C ? B - start : C;
    memcpy(xin, x_t + (size_t)start * dim, (size_t)rows * dim * sizeof(float));
    if (cin)
      memcpy(cin, e->cond + (size_t)start * nc, (size_t)rows * nc * sizeof(float));
    for (int r = 0; r < rows; r++)
      tin[r] = (float)t[start + r];
    if (rows < C) {
      memset(xin + (size_t)rows * dim, 0, (size_t)(C - rows) * dim * sizeof(float));
      memset(tin + rows, 0, (size_t)(C - rows) * sizeof(float));
      if (cin)
        memset(cin + (size_t)rows * nc, 0, (size_t)(C - rows) * nc * sizeof(float));
    }
    cf_graph_forward(e->g);
    memcpy(eps_out + (size_t)start * dim, out, (size_t)rows * dim * sizeof(float));
  }
}

double
cf_ddpm_train_flops(const CfDdpm *m, int B)
{
  CF_ASSERT(m != NULL);
  return 3.0 * (m->cfg.arch == CF_ARCH_UNET ? cf_unet_flops(&m->net.unet, B) : cf_mlp_flops(&m->net.mlp, B));
}
