/* Explicit-state random number generator: xoshiro256** seeded by splitmix64.
 * No hidden state anywhere in core: every random draw takes a CfRng. */
#ifndef CF_RNG_H
#define CF_RNG_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
  uint64_t s[4];
} CfRng;

void cf_rng_seed(CfRng *rng, uint64_t seed);
/* Independent stream: seeds `child` from `seed` and a stream id (e.g. one for
 * data, one for the model init, one for sampling) so streams never overlap in
 * practice and adding draws to one does not shift the others. */
void cf_rng_seed_stream(CfRng *rng, uint64_t seed, uint64_t stream);
uint64_t cf_rng_u64(CfRng *rng);
/* Uniform in [0, 1) with 53 random bits. */
double cf_rng_uniform(CfRng *rng);
/* Uniform integer in [0, n), unbiased (Lemire). n > 0. */
uint64_t cf_rng_below(CfRng *rng, uint64_t n);
/* Standard normal (Box-Muller on two uniforms; no cached spare, so the state
 * is exactly the four words). */
double cf_rng_normal(CfRng *rng);
void cf_rng_fill_normal(CfRng *rng, float *out, size_t n);
/* Gamma(shape, 1) by Marsaglia-Tsang (shape > 0). */
double cf_rng_gamma(CfRng *rng, double shape);

#endif
