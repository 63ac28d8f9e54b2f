/* Process-unit generators with input-dependent constraints (research note
 * hard-linear-constraints.md, chemical process units): each row is
 * [inputs x | outputs y] and satisfies A_x x + B y = b with b = 0, so the
 * outputs' constraint B y = k has the per-sample right-hand side
 * k = -A_x x. Values are computed in double and every constrained output is
 * derived from the others by its balance, so rows satisfy the constraint to
 * float round-off. Stylised but physically consistent (non-negative flows,
 * conserved mass), not a plant model. */
#include "data_private.h"

#include <math.h>

/* cstr: a continuous stirred-tank reactor, A -> B.
 *   inputs  x0 = temperature (scaled, U(0.6, 1.4)), x1 = feed of A (U(1, 2)),
 *           x2 = feed of a co-reagent C (U(2.5, 3.5));
 *   outputs y1 = B produced = x1 X with conversion
 *             X = (1 - exp(-k tau)) (1 + 0.05 z) clipped to [0.02, 0.98],
 *             k = exp(3 (x0 - 1)) (Arrhenius-like), tau = 1.5;
 *           y0 = A left = x1 - y1                   (balance of A + B)
 *           y2 = C left = x2 - y0                   (C pairs with unreacted A)
 * Rows of A_x | B: [0 1 -1 | 0 -1 1] (x1 - x2 - y1 + y2 = 0) and
 * [0 1 0 | -1 -1 0] (x1 - y0 - y1 = 0), b = 0. */
void
cf_gen_cstr(CfDataset *d, CfRng *rng)
{
  for (int i = 0; i < d->n; i++) {
    double x0 = 0.6 + 0.8 * cf_rng_uniform(rng);
    double x1 = 1.0 + cf_rng_uniform(rng);
    double x2 = 2.5 + cf_rng_uniform(rng);
    double k = exp(3.0 * (x0 - 1.0));
    double X = (1.0 - exp(-k * 1.5)) * (1.0 + 0.05 * cf_rng_normal(rng));
    X = X < 0.02 ? 0.02 : (X > 0.98 ? 0.98 : X);
    /* round the inputs first, then balance the outputs against the rounded values */
    float fx[3] = {(float)x0, (float)x1, (float)x2};
    double y1 = (double)fx[1] * X;
    float fy1 = (float)y1;
    float fy0 = (float)((double)fx[1] - fy1);
    float fy2 = (float)((double)fx[2] - fy0);
    float *r = d->x + (size_t)6 * i;
    r[0] = fx[0];
    r[1] = fx[1];
    r[2] = fx[2];
    r[3] = fy0;
    r[4] = fy1;
    r[5] = fy2;
  }
}

/* plant: three feeds and a recycle, five outputs.
 *   inputs  x0, x1, x2 = feeds (U(1, 2)), x3 = recycle drawn off (U(0, 1));
 *   outputs y0, y2, y4 = product streams: the net feed
 *             F = x0 + x1 + x2 - x3 split by softmax(0.8 x0 - 0.3 x1,
 *             0.5 x2, 0.2 x3) perturbed by N(0, 0.1^2) logits;
 *           y1, y3 = unit temperatures (scaled), not constrained:
 *             y1 = 1 + 0.5 sin(x0 x1) + 0.05 z, y3 = 0.5 + 0.3 x2^2 - 0.2 x3 + 0.05 z.
 * Row of A_x | B: [1 1 1 -1 | -1 0 -1 0 -1], b = 0 (overall mass balance). */
void
cf_gen_plant(CfDataset *d, CfRng *rng)
{
  for (int i = 0; i < d->n; i++) {
    float fx[4];
    for (int j = 0; j < 3; j++)
      fx[j] = (float)(1.0 + cf_rng_uniform(rng));
    fx[3] = (float)cf_rng_uniform(rng);
    double F = (double)fx[0] + fx[1] + fx[2] - fx[3];
    double a[3] = {0.8 * fx[0] - 0.3 * fx[1], 0.5 * fx[2], 0.2 * fx[3]};
    double mx = -INFINITY, s = 0.0;
    for (int j = 0; j < 3; j++) {
      a[j] += 0.1 * cf_rng_normal(rng);
      mx = a[j] > mx ? a[j] : mx;
    }
    for (int j = 0; j < 3; j++)
      s += (a[j] = exp(a[j] - mx));
    float p0 = (float)(F * a[0] / s), p1 = (float)(F * a[1] / s);
    float p2 = (float)(F - (double)p0 - (double)p1); /* closes the balance */
    float *r = d->x + (size_t)9 * i;
    for (int j = 0; j < 4; j++)
      r[j] = fx[j];
    r[4] = p0;
    r[5] = (float)(1.0 + 0.5 * sin((double)fx[0] * fx[1]) + 0.05 * cf_rng_normal(rng));
    r[6] = p1;
    r[7] = (float)(0.5 + 0.3 * (double)fx[2] * fx[2] - 0.2 * fx[3] + 0.05 * cf_rng_normal(rng));
    r[8] = p2;
  }
}
