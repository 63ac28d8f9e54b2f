/* Adam/AdamW, gradient clipping, EMA and the learning-rate schedule, all flat
 * loops over the parameter arenas. */
#include "optim.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define ADAM_AVX 1
#endif

/* See ops.c: let gcc -O2 vectorise these loops (sqrtf inline, no errno). */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("tree-vectorize", "vect-cost-model=dynamic", "no-trapping-math", "no-math-errno")
#endif

CfAdamConfig
cf_adam_default_config(void)
{
  return (CfAdamConfig){ .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.0f };
}

CfStatus
cf_adam_init(CfAdam *opt, size_t n, const CfAdamConfig *cfg)
{
  memset(opt, 0, sizeof *opt);
  opt->cfg = cfg ? *cfg : cf_adam_default_config();
  opt->n = n;
  opt->m = cf_alloc_floats(n);
  opt->v = cf_alloc_floats(n);
  if (!opt->m || !opt->v) {
    cf_adam_clear(opt);
    return CF_ERR_NOMEM;
  }
  return CF_OK;
}

void
cf_adam_clear(CfAdam *opt)
{
  cf_free_aligned(opt->m);
  cf_free_aligned(opt->v);
  opt->m = opt->v = NULL;
  opt->n = 0;
  opt->t = 0;
}

void
cf_adam_reset(CfAdam *opt)
{
  if (opt->m)
    memset(opt->m, 0, opt->n * sizeof *opt->m);
  if (opt->v)
    memset(opt->v, 0, opt->n * sizeof *opt->v);
  opt->t = 0;
}

typedef struct {
  float b1, b2, eps, step, inv_sqrt_bc2, decay, gscale;
  float *restrict param, *restrict m, *restrict v;
  const float *restrict grad;
  size_t n;
} AdamPass;

#if ADAM_AVX
/* The SSE loop of adam_range 8 wide (AVX, no FMA: the same roundings, so
 * the results are identical); returns where it stopped. */
__attribute__((target("avx"))) static size_t
adam_range_avx(const AdamPass *a, size_t lo, size_t hi)
{
  const __m256 vb1 = _mm256_set1_ps(a->b1), vc1 = _mm256_set1_ps(1.0f - a->b1);
  const __m256 vb2 = _mm256_set1_ps(a->b2), vc2 = _mm256_set1_ps(1.0f - a->b2);
  const __m256 vstep = _mm256_set1_ps(a->step), vinv = _mm256_set1_ps(a->inv_sqrt_bc2);
  const __m256 veps = _mm256_set1_ps(a->eps), vdecay = _mm256_set1_ps(a->decay), vgs = _mm256_set1_ps(a->gscale);
  float *restrict param = a->param, *restrict m = a->m, *restrict v = a->v;
  const float *restrict grad = a->grad;
  size_t i = lo;
  for (; i + 8 <= hi; i += 8) {
    __m256 g = _mm256_mul_ps(_mm256_loadu_ps(grad + i), vgs);
    __m256 mi = _mm256_add_ps(_mm256_mul_ps(vb1, _mm256_loadu_ps(m + i)), _mm256_mul_ps(vc1, g));
    __m256 vi = _mm256_add_ps(_mm256_mul_ps(vb2, _mm256_loadu_ps(v + i)), _mm256_mul_ps(_mm256_mul_ps(vc2, g), g));
    _mm256_storeu_ps(m + i, mi);
    _mm256_storeu_ps(v + i, vi);
    __m256 den = _mm256_add_ps(_mm256_mul_ps(_mm256_sqrt_ps(vi), vinv), veps);
    __m256 p = _mm256_mul_ps(vdecay, _mm256_loadu_ps(param + i));
    _mm256_storeu_ps(param + i, _mm256_sub_ps(p, _mm256_div_ps(_mm256_mul_ps(vstep, mi), den)));
  }
  return i;
}
#endif

/* One Adam update over [lo, hi). */
static void
adam_range(const AdamPass *a, size_t lo, size_t hi)
{
  const float b1 = a->b1, b2 = a->b2, eps = a->eps, step = a->step, inv_sqrt_bc2 = a->inv_sqrt_bc2;
  const float decay = a->decay, gs = a->gscale;
  float *restrict param = a->param, *restrict m = a->m, *restrict v = a->v;
  const float *restrict grad = a->grad;
  size_t i = lo;
#if ADAM_AVX
  if (__builtin_cpu_supports("avx")) /* a load from libgcc's CPU table */
    i = adam_range_avx(a, lo, hi);
#endif
#if defined(__SSE2__)
  /* gcc vectorises sqrtf only with -fno-math-errno, which cannot be set per
   * file (the optimize pragma does not reach builtins), and a scalar sqrt plus
   * division per parameter costs more than the rest of the step. Same
   * operations in the same order as the scalar loop below, so the results are
   * identical; sqrt and division are exact IEEE in both. */
  const __m128 vb1 = _mm_set1_ps(b1), vc1 = _mm_set1_ps(1.0f - b1);
  const __m128 vb2 = _mm_set1_ps(b2), vc2 = _mm_set1_ps(1.0f - b2);
  const __m128 vstep = _mm_set1_ps(step), vinv = _mm_set1_ps(inv_sqrt_bc2);
  const __m128 veps = _mm_set1_ps(eps), vdecay = _mm_set1_ps(decay), vgs = _mm_set1_ps(gs);
  for (; i + 4 <= hi; i += 4) {
    __m128 g = _mm_mul_ps(_mm_loadu_ps(grad + i), vgs);
    __m128 mi = _mm_add_ps(_mm_mul_ps(vb1, _mm_loadu_ps(m + i)), _mm_mul_ps(vc1, g));
    __m128 vi = _mm_add_ps(_mm_mul_ps(vb2, _mm_loadu_ps(v + i)), _mm_mul_ps(_mm_mul_ps(vc2, g), g));
    _mm_storeu_ps(m + i, mi);
    _mm_storeu_ps(v + i, vi);
    __m128 den = _mm_add_ps(_mm_mul_ps(_mm_sqrt_ps(vi), vinv), veps);
    __m128 p = _mm_mul_ps(vdecay, _mm_loadu_ps(param + i));
    _mm_storeu_ps(param + i, _mm_sub_ps(p, _mm_div_ps(_mm_mul_ps(vstep, mi), den)));
  }
#endif
  for (; i < hi; i++) {
    float g = grad[i] * gs;
    m[i] = b1 * m[i] + (1.0f - b1) * g;
    v[i] = b2 * v[i] + (1.0f - b2) * g * g;
    param[i] = decay * param[i] - step * m[i] / (sqrtf(v[i]) * inv_sqrt_bc2 + eps);
  }
}

void
cf_adam_step_scaled(CfAdam *opt, float *restrict param, const float *restrict grad, float lr, float grad_scale)
{
  opt->t++;
  const float b1 = opt->cfg.beta1, b2 = opt->cfg.beta2;
  /* Bias corrections 1 - beta^t (in double: beta^t underflows slowly).
   * m_hat / (sqrt(v_hat) + eps) = (m / bc1) / (sqrt(v) / sqrt(bc2) + eps). */
  const double bc1 = 1.0 - pow(b1, (double)opt->t);
  const double bc2 = 1.0 - pow(b2, (double)opt->t);
  AdamPass a = {
    .b1 = b1, .b2 = b2, .eps = opt->cfg.eps, .step = (float)(lr / bc1), .inv_sqrt_bc2 = (float)(1.0 / sqrt(bc2)),
    /* AdamW: decoupled decay p -= lr wd p, applied before the Adam update. */
    .decay = 1.0f - lr * opt->cfg.weight_decay, .gscale = grad_scale,
    .param = param, .m = opt->m, .v = opt->v, .grad = grad, .n = opt->n,
  };
  adam_range(&a, 0, opt->n);
}

void
cf_adam_step(CfAdam *opt, float *restrict param, const float *restrict grad, float lr)
{
  /* g * 1.0f == g exactly: identical to the unscaled update. */
  cf_adam_step_scaled(opt, param, grad, lr, 1.0f);
}

static double
sumsq(const float *grad, size_t lo, size_t hi)
{
  double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  size_t i = lo;
  for (; i + 4 <= hi; i += 4) {
    s0 += (double)grad[i] * grad[i];
    s1 += (double)grad[i + 1] * grad[i + 1];
    s2 += (double)grad[i + 2] * grad[i + 2];
    s3 += (double)grad[i + 3] * grad[i + 3];
  }
  for (; i < hi; i++)
    s0 += (double)grad[i] * grad[i];
  return (s0 + s1) + (s2 + s3);
}

double
cf_grad_norm(const float *grad, size_t n)
{
  return sqrt(sumsq(grad, 0, n));
}

float
cf_clip_scale(double norm, double max_norm)
{
  if (max_norm > 0 && isfinite(norm) && norm > max_norm)
    return (float)(max_norm / norm);
  return 1.0f;
}

double
cf_clip_grad_norm(float *grad, size_t n, double max_norm)
{
  double norm = cf_grad_norm(grad, n);
  /* A non-finite norm is left for the caller (cf_all_finite) to catch. */
  if (isfinite(norm) && norm > max_norm) {
    float s = (float)(max_norm / norm);
    for (size_t i = 0; i < n; i++)
      grad[i] *= s;
  }
  return norm;
}

void
cf_ema_update(float *restrict ema, const float *restrict param, size_t n, float rate)
{
  const float q = 1.0f - rate;
  for (size_t i = 0; i < n; i++)
    ema[i] = rate * ema[i] + q * param[i];
}

bool
cf_all_finite(const float *x, size_t n)
{
  /* A float is Inf or NaN iff its exponent bits are all ones; OR-reduce a flag
   * over integer views so the loop vectorises and has no early exit. */
  uint32_t bad = 0;
  for (size_t i = 0; i < n; i++) {
    uint32_t u;
    memcpy(&u, &x[i], sizeof u);
    bad |= (u & 0x7f800000u) == 0x7f800000u;
  }
  return bad == 0;
}

float
cf_lr_at(const CfLrSchedule *s, long step)
{
  if (step < 0)
    step = 0;
  if (step >= s->total)
    return s->lr_min;
  if (step < s->warmup)
    return (float)((double)s->lr_max * (double)step / (double)s->warmup);
  /* cosine from lr_max at the end of warm-up to lr_min at `total` */
  double progress = (double)(step - s->warmup) / (double)(s->total - s->warmup);
  return (float)(s->lr_min + 0.5 * (s->lr_max - s->lr_min) * (1.0 + cos(M_PI * progress)));
}
