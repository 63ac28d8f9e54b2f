#include "rng.h"

#include <math.h>

static uint64_t
splitmix64(uint64_t *x)
{
  uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

void
cf_rng_seed(CfRng *rng, uint64_t seed)
{
  uint64_t x = seed;
  for (int i = 0; i < 4; i++)
    rng->s[i] = splitmix64(&x);
}

void
cf_rng_seed_stream(CfRng *rng, uint64_t seed, uint64_t stream)
{
  uint64_t x = stream * 0xd1342543de82ef95ULL + 0x2545f4914f6cdd1dULL;
  cf_rng_seed(rng, seed ^ splitmix64(&x));
}

static inline uint64_t
rotl(uint64_t x, int k)
{
  return (x << k) | (x >> (64 - k));
}

uint64_t
cf_rng_u64(CfRng *rng)
{
  uint64_t *s = rng->s;
  uint64_t result = rotl(s[1] * 5, 7) * 9;
  uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return result;
}

double
cf_rng_uniform(CfRng *rng)
{
  return (double)(cf_rng_u64(rng) >> 11) * 0x1.0p-53;
}

uint64_t
cf_rng_below(CfRng *rng, uint64_t n)
{
  /* Lemire's multiply-shift with rejection of the biased low range. */
  __uint128_t m = (__uint128_t)cf_rng_u64(rng) * n;
  uint64_t lo = (uint64_t)m;
  if (lo < n) {
    uint64_t thresh = -n % n;
    while (lo < thresh) {
      m = (__uint128_t)cf_rng_u64(rng) * n;
      lo = (uint64_t)m;
    }
  }
  return (uint64_t)(m >> 64);
}

double
cf_rng_normal(CfRng *rng)
{
  /* Box-Muller: u1 in (0, 1] so log is finite. */
  double u1 = 1.0 - cf_rng_uniform(rng);
  double u2 = cf_rng_uniform(rng);
  return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

void
cf_rng_fill_normal(CfRng *rng, float *out, size_t n)
{
  /* Both Box-Muller outputs are used in pairs for speed. */
  size_t i = 0;
  for (; i + 1 < n; i += 2) {
    double u1 = 1.0 - cf_rng_uniform(rng);
    double u2 = cf_rng_uniform(rng);
    double r = sqrt(-2.0 * log(u1));
    out[i] = (float)(r * cos(2.0 * M_PI * u2));
    out[i + 1] = (float)(r * sin(2.0 * M_PI * u2));
  }
  if (i < n)
    out[i] = (float)cf_rng_normal(rng);
}

double
cf_rng_gamma(CfRng *rng, double shape)
{
  if (shape < 1.0) {
    /* Boost: Gamma(a) = Gamma(a + 1) * U^(1/a). */
    double u = 1.0 - cf_rng_uniform(rng);
    return cf_rng_gamma(rng, shape + 1.0) * pow(u, 1.0 / shape);
  }
  double d = shape - 1.0 / 3.0;
  double c = 1.0 / sqrt(9.0 * d);
  for (;;) {
    double x, v;
    do {
      x = cf_rng_normal(rng);
      v = 1.0 + c * x;
    } while (v <= 0.0);
    v = v * v * v;
    double u = 1.0 - cf_rng_uniform(rng);
    if (log(u) < 0.5 * x * x + d - d * v + d * log(v))
      return d * v;
  }
}
