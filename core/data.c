/* Vector data sets: built-in generators, CSV loading, normalisation.
 *
 * Ownership: every function that fills a CfDataset / CfNorm / CfConstraint
 * builds the result in a local and swaps it in only on success, so on error
 * the caller's object is left exactly as it was (it must have been
 * initialised with the matching _init, or hold an earlier result that is then
 * freed). */
#include "data.h"
#include "data_private.h"

#include <errno.h>
#include <float.h>
#include <limits.h>
#include <locale.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* Datasets                                                                 */

void
cf_dataset_init(CfDataset *d)
{
  CF_ASSERT(d != NULL);
  d->n = 0;
  d->dim = 0;
  d->x = NULL;
  d->labels = NULL;
  d->n_classes = 0;
}

void
cf_dataset_clear(CfDataset *d)
{
  if (!d)
    return;
  cf_free_aligned(d->x);
  free(d->labels);
  cf_dataset_init(d);
}

CfStatus
cf_dataset_alloc(CfDataset *d, int n, int dim, bool labels, CfError *err)
{
  CF_ASSERT(d != NULL);
  cf_dataset_clear(d);
  if (n <= 0 || dim <= 0)
    return cf_error_set(err, CF_ERR_INVALID, "dataset size %d x %d: both must be positive", n, dim);
  if (n > CF_DATA_MAX_ROWS || dim > CF_DATA_MAX_DIM)
    return cf_error_set(err, CF_ERR_NOMEM, "dataset size %d x %d exceeds the limits (%d rows, %d columns)",
                        n, dim, CF_DATA_MAX_ROWS, CF_DATA_MAX_DIM);
  if ((size_t)n > SIZE_MAX / (size_t)dim)
    return cf_error_set(err, CF_ERR_NOMEM, "dataset size %d x %d overflows", n, dim);
  float *x = cf_alloc_floats((size_t)n * (size_t)dim);
  int *lab = NULL;
  if (labels)
    lab = cf_calloc_array((size_t)n, sizeof *lab);
  if (!x || (labels && !lab)) {
    cf_free_aligned(x);
    free(lab);
    return cf_error_set(err, CF_ERR_NOMEM, "out of memory for a %d x %d dataset", n, dim);
  }
  d->n = n;
  d->dim = dim;
  d->x = x;
  d->labels = lab;
  d->n_classes = 0;
  return CF_OK;
}

/* Replaces *dst by *src (taking ownership); src is left empty. */
static void
dataset_move(CfDataset *dst, CfDataset *src)
{
  cf_dataset_clear(dst);
  *dst = *src;
  cf_dataset_init(src);
}

/* ------------------------------------------------------------------------ */
/* Generator helpers                                                        */

/* Index drawn from a discrete distribution given by cumulative weights
 * (cum[k-1] == 1). */
static int
pick_component(CfRng *rng, const double *cum, int k)
{
  double u = cf_rng_uniform(rng);
  for (int i = 0; i < k - 1; i++)
    if (u < cum[i])
      return i;
  return k - 1;
}

/* Rounds one sample x (double, n coords) of the constraint sum(x) = b to
 * float so the constraint survives rounding as well as it can: first the
 * orthogonal projection onto sum(x) = b in double; then every coordinate but
 * one, k, is rounded, and x_k takes b - sum(others), computed in double from
 * the rounded values, rounded once. The residual |sum(out) - b| is then a
 * single float rounding of x_k, <= 2^-24 |x_k|, instead of a sum of n
 * roundings. k is the smallest coordinate in magnitude among those with
 * |x_k| >= 1e-3 max|x|: small, so the residual is small, but large enough
 * that absorbing the others' rounding errors (<= n 2^-24 max|x|) changes it
 * by less than 1e-3 relative and can never flip its sign. x is modified. */
static void
round_sum_constrained(float *out, double *x, int n, double b)
{
  double s = 0.0;
  for (int j = 0; j < n; j++)
    s += x[j];
  double corr = (s - b) / n, amax = 0.0;
  for (int j = 0; j < n; j++) {
    x[j] -= corr;
    amax = fmax(amax, fabs(x[j]));
  }
  int k = -1;
  for (int j = 0; j < n; j++)
    if (fabs(x[j]) >= 1e-3 * amax && (k < 0 || fabs(x[j]) < fabs(x[k])))
      k = j;
  CF_ASSERT(k >= 0);
  double rest = b;
  for (int j = 0; j < n; j++) {
    if (j == k)
      continue;
    out[j] = (float)x[j];
    rest -= (double)out[j];
  }
  out[k] = (float)rest;
}

/* ring: points exactly on the unit circle x0^2 + x1^2 = 1 (a non-convex
 * set) with an uneven angular mixture: angles N(mu_k, 0.25^2) at mu_k =
 * 0, 2.2, 4.0 rad with weights 0.5, 0.3, 0.2; label = k, 3 classes. */
static void
gen_ring(CfDataset *d, CfRng *rng)
{
  static const double mu[3] = {0.0, 2.2, 4.0}, cum[3] = {0.5, 0.8, 1.0};
  for (int i = 0; i < d->n; i++) {
    int k = pick_component(rng, cum, 3);
    double a = mu[k] + 0.25 * cf_rng_normal(rng);
    d->x[2 * i] = (float)cos(a);
    d->x[2 * i + 1] = (float)sin(a);
    d->labels[i] = k;
  }
  d->n_classes = 3;
}

/* sphere-shell: points exactly on the unit sphere |x| = 1 in 3-D, a mixture
 * of 4 caps: directions c_k + 0.3 N(0, I), normalised, with weights 0.4,
 * 0.3, 0.2, 0.1 and c_k the vertices of a regular tetrahedron; label = k. */
static void
gen_sphere_shell(CfDataset *d, CfRng *rng)
{
  static const double c[4][3] = {{1, 1, 1}, {1, -1, -1}, {-1, 1, -1}, {-1, -1, 1}}, cum[4] = {0.4, 0.7, 0.9, 1.0};
  for (int i = 0; i < d->n; i++) {
    int k = pick_component(rng, cum, 4);
    double v[3], nn = 0.0;
    for (int j = 0; j < 3; j++) {
      v[j] = c[k][j] / sqrt(3.0) + 0.3 * cf_rng_normal(rng);
      nn += v[j] * v[j];
    }
    nn = sqrt(nn);
    if (nn < 1e-9) { /* practically never: fall back to the cap's centre */
      for (int j = 0; j < 3; j++)
        v[j] = c[k][j] / sqrt(3.0);
      nn = 1.0;
    }
    for (int j = 0; j < 3; j++)
      d->x[3 * i + j] = (float)(v[j] / nn);
    d->labels[i] = k;
  }
  d->n_classes = 4;
}

/* gaussians: 8 isotropic Gaussian modes with centres 2 (cos, sin)(2 pi k/8),
 * k = 0..7 (ring of radius 2), std 0.15 per coordinate, equal weights;
 * label = k, 8 classes. */
static void
gen_gaussians(CfDataset *d, CfRng *rng)
{
  const double radius = 2.0, sd = 0.15;
  for (int i = 0; i < d->n; i++) {
    int k = (int)cf_rng_below(rng, 8);
    double a = 2.0 * M_PI * k / 8.0;
    double e0 = cf_rng_normal(rng), e1 = cf_rng_normal(rng);
    d->x[2 * i] = (float)(radius * cos(a) + sd * e0);
    d->x[2 * i + 1] = (float)(radius * sin(a) + sd * e1);
    d->labels[i] = k;
  }
  d->n_classes = 8;
}

/* moons: the two interleaving half circles of scikit-learn, shifted to be
 * centred: class 0 = (cos t, sin t) - (0.5, 0.25), class 1 = (1 - cos t,
 * 0.5 - sin t) - (0.5, 0.25), t ~ U[0, pi], plus isotropic Gaussian noise std
 * 0.08; classes equally likely; label = class, 2 classes. Range about
 * [-1.6, 1.6] x [-1, 1]. */
static void
gen_moons(CfDataset *d, CfRng *rng)
{
  const double sd = 0.08;
  for (int i = 0; i < d->n; i++) {
    int c = (int)cf_rng_below(rng, 2);
    double t = M_PI * cf_rng_uniform(rng);
    double px, py;
    if (c == 0) {
      px = cos(t);
      py = sin(t);
    } else {
      px = 1.0 - cos(t);
      py = 0.5 - sin(t);
    }
    double e0 = cf_rng_normal(rng), e1 = cf_rng_normal(rng);
    d->x[2 * i] = (float)(px - 0.5 + sd * e0);
    d->x[2 * i + 1] = (float)(py - 0.25 + sd * e1);
    d->labels[i] = c;
  }
  d->n_classes = 2;
}

/* checkerboard: uniform on the 8 dark squares of a 4 x 4 board of unit
 * squares covering [-2, 2]^2; square (column i, row j), i, j = 0..3 from the
 * lower left corner, is dark when i + j is even. Unlabelled. */
static void
gen_checkerboard(CfDataset *d, CfRng *rng)
{
  for (int i = 0; i < d->n; i++) {
    int k = (int)cf_rng_below(rng, 8); /* dark square index */
    int row = k / 2;
    int col = 2 * (k % 2) + (row % 2); /* (col + row) even */
    double u = cf_rng_uniform(rng), v = cf_rng_uniform(rng);
    d->x[2 * i] = (float)(-2.0 + col + u);
    d->x[2 * i + 1] = (float)(-2.0 + row + v);
  }
}

/* spiral: two-arm Archimedean spiral. s = sqrt(U), U ~ U[0, 1] (denser along
 * the longer outer turns), angle theta = 3 pi s (1.5 turns), radius r = 2 s;
 * arm a in {0, 1} equally likely, rotated by a pi; point r (cos, sin)(theta +
 * a pi) plus isotropic Gaussian noise std 0.07 (the arms are 2/3 apart
 * radially). Label = arm, 2 classes. */
static void
gen_spiral(CfDataset *d, CfRng *rng)
{
  const double sd = 0.07, turns = 1.5, rmax = 2.0;
  for (int i = 0; i < d->n; i++) {
    int arm = (int)cf_rng_below(rng, 2);
    double s = sqrt(cf_rng_uniform(rng));
    double th = 2.0 * M_PI * turns * s + M_PI * arm;
    double r = rmax * s;
    double e0 = cf_rng_normal(rng), e1 = cf_rng_normal(rng);
    d->x[2 * i] = (float)(r * cos(th) + sd * e0);
    d->x[2 * i + 1] = (float)(r * sin(th) + sd * e1);
    d->labels[i] = arm;
  }
  d->n_classes = 2;
}

/* simplex-3d: mixture of 4 Gaussians living in the plane x0 + x1 + x2 = 1.
 * Plane coordinates (u, v) in the orthonormal basis e1 = (1, -1, 0)/sqrt 2,
 * e2 = (1, 1, -2)/sqrt 6 about each component's centre:
 *   k = 0..2: centre 0.7 e_k + 0.15 (other two), isotropic std 0.08,
 *             weight 0.25 each;
 *   k = 3:    centre (1/3, 1/3, 1/3), std 0.25 along e1 and 0.04 along e2,
 *             weight 0.25.
 * Label = component, 4 classes. A = [1 1 1], b = 1. */
static void
gen_simplex3d(CfDataset *d, CfRng *rng)
{
  static const double centre[4][3] = {
    { 0.70, 0.15, 0.15 },
    { 0.15, 0.70, 0.15 },
    { 0.15, 0.15, 0.70 },
    { 1.0 / 3.0, 1.0 / 3.0, 1.0 / 3.0 },
  };
  static const double sd[4][2] = { { 0.08, 0.08 }, { 0.08, 0.08 }, { 0.08, 0.08 }, { 0.25, 0.04 } };
  static const double cum[4] = { 0.25, 0.5, 0.75, 1.0 };
  const double r2 = 1.0 / sqrt(2.0), r6 = 1.0 / sqrt(6.0);
  const double e1[3] = { r2, -r2, 0.0 };
  const double e2[3] = { r6, r6, -2.0 * r6 };
  for (int i = 0; i < d->n; i++) {
    int k = pick_component(rng, cum, 4);
    double u = sd[k][0] * cf_rng_normal(rng);
    double v = sd[k][1] * cf_rng_normal(rng);
    double x[3];
    for (int j = 0; j < 3; j++)
      x[j] = centre[k][j] + u * e1[j] + v * e2[j];
    round_sum_constrained(d->x + 3 * i, x, 3, 1.0);
    d->labels[i] = k;
  }
  d->n_classes = 4;
}

/* charge-neutral: n = 12 partial charges summing to exactly 0.
 * Two "conformations" c (label, P(c = 1) = 0.4) with mean charges
 *   mu0_j = -0.8 if j % 3 == 0 else 0.4   (sums to 0),
 *   mu1 = mu0 + 0.6 (e1 - e4) + 0.4 (e7 - e10).
 * Fluctuations: a 3-factor model z_j = mu_j + a_j (sum_k W_jk f_k + 0.5 eps_j)
 * with f, eps standard normal, a_j = 0.15 * 1.25^j (so coordinate stds grow
 * from 0.15 to 1.75: strongly heteroscedastic), and the deterministic loadings
 * W_jk = cos(0.9 (j+1)(k+1) + 0.5 k), each row rescaled to norm sqrt(0.75)
 * (so sum_k W_jk^2 + 0.5^2 = 1). The sample is z projected onto sum = 0
 * (z - mean(z)). A = 1^T, b = 0. */
#define CHARGE_N 12
#define CHARGE_K 3
static void
gen_charge_neutral(CfDataset *d, CfRng *rng)
{
  double W[CHARGE_N][CHARGE_K], a[CHARGE_N], mu[2][CHARGE_N];
  for (int j = 0; j < CHARGE_N; j++) {
    double norm2 = 0.0;
    for (int k = 0; k < CHARGE_K; k++) {
      W[j][k] = cos(0.9 * (j + 1) * (k + 1) + 0.5 * k);
      norm2 += W[j][k] * W[j][k];
    }
    double s = sqrt(0.75 / norm2);
    for (int k = 0; k < CHARGE_K; k++)
      W[j][k] *= s;
    a[j] = 0.15 * pow(1.25, j);
    mu[0][j] = (j % 3 == 0) ? -0.8 : 0.4;
    mu[1][j] = mu[0][j];
  }
  mu[1][1] += 0.6;
  mu[1][4] -= 0.6;
  mu[1][7] += 0.4;
  mu[1][10] -= 0.4;
  static const double cum[2] = { 0.6, 1.0 };
  for (int i = 0; i < d->n; i++) {
    int c = pick_component(rng, cum, 2);
    double f[CHARGE_K], z[CHARGE_N];
    for (int k = 0; k < CHARGE_K; k++)
      f[k] = cf_rng_normal(rng);
    for (int j = 0; j < CHARGE_N; j++) {
      double t = 0.5 * cf_rng_normal(rng);
      for (int k = 0; k < CHARGE_K; k++)
        t += W[j][k] * f[k];
      z[j] = mu[c][j] + a[j] * t;
    }
    round_sum_constrained(d->x + (size_t)CHARGE_N * i, z, CHARGE_N, 0.0);
    d->labels[i] = c;
  }
  d->n_classes = 2;
}

/* flow-network: a layered DAG with 10 nodes and 16 directed edges.
 *   node 0 = source, layer 1 = {1, 2, 3}, layer 2 = {4, 5, 6},
 *   layer 3 = {7, 8}, node 9 = sink.
 * Edge e = (tail -> head), in the order of flow_edges below; x_e >= 0 is the
 * flow on edge e. Sign convention: row v of A is +1 on edges leaving v and -1
 * on edges entering v, so (A x)_v = outflow - inflow = supply of v. A has the
 * rows of nodes 0..8 (the sink row, which is minus the sum of the others, is
 * dropped, so A (9 x 16) has full row rank); b = (10, 0, ..., 0): the source
 * supplies 10 and every interior node conserves flow.
 * Samples are path-flow decompositions over the 10 source-sink paths: path
 * weights w_p ~ Gamma(alpha_p) normalised to the supply, from a 2-component
 * mixture (label, equal weights): component 0 has alpha_p = 4 on paths
 * through node 7 and 1 elsewhere, component 1 alpha_p = 4 on paths through
 * node 8 and 1 elsewhere. Path flows are quantised to integer multiples of
 * 2^-16 that sum exactly to 10 * 2^16 units, so every edge flow is an exact
 * float (< 2^24 units) and A x = b holds exactly, also in float. No
 * circulation is added: the DAG has no directed cycle, and the path flows
 * already span the whole 7-dimensional affine hull of the flow polytope. */
#define FLOW_NODES 10
#define FLOW_EDGES 16
#define FLOW_SUPPLY 10.0
#define FLOW_UNIT_BITS 16
#define FLOW_MAX_PATHS 32
static const int flow_edges[FLOW_EDGES][2] = {
  { 0, 1 }, { 0, 2 }, { 0, 3 },
  { 1, 4 }, { 1, 5 }, { 2, 4 }, { 2, 5 }, { 2, 6 }, { 3, 5 }, { 3, 6 },
  { 4, 7 }, { 5, 7 }, { 5, 8 }, { 6, 8 },
  { 7, 9 }, { 8, 9 },
};

typedef struct {
  int n_paths;
  int len[FLOW_MAX_PATHS];
  int edge[FLOW_MAX_PATHS][FLOW_EDGES]; /* edge indices along the path */
} FlowPaths;

static void
flow_paths_dfs(FlowPaths *fp, int node, int *stack, int depth)
{
  if (node == FLOW_NODES - 1) {
    CF_ASSERT(fp->n_paths < FLOW_MAX_PATHS);
    fp->len[fp->n_paths] = depth;
    memcpy(fp->edge[fp->n_paths], stack, (size_t)depth * sizeof *stack);
    fp->n_paths++;
    return;
  }
  for (int e = 0; e < FLOW_EDGES; e++) {
    if (flow_edges[e][0] != node)
      continue;
    CF_ASSERT(depth < FLOW_EDGES);
    stack[depth] = e;
    flow_paths_dfs(fp, flow_edges[e][1], stack, depth + 1);
  }
}

static bool
flow_path_visits(const FlowPaths *fp, int p, int node)
{
  for (int i = 0; i < fp->len[p]; i++)
    if (flow_edges[fp->edge[p][i]][1] == node)
      return true;
  return false;
}

static void
gen_flow_network(CfDataset *d, CfRng *rng)
{
  FlowPaths fp;
  int stack[FLOW_EDGES];
  fp.n_paths = 0;
  flow_paths_dfs(&fp, 0, stack, 0);
  double alpha[2][FLOW_MAX_PATHS];
  for (int p = 0; p < fp.n_paths; p++) {
    alpha[0][p] = flow_path_visits(&fp, p, 7) ? 4.0 : 1.0;
    alpha[1][p] = flow_path_visits(&fp, p, 8) ? 4.0 : 1.0;
  }
  const int64_t total = (int64_t)FLOW_SUPPLY << FLOW_UNIT_BITS;
  const double unit = ldexp(1.0, -FLOW_UNIT_BITS);
  for (int i = 0; i < d->n; i++) {
    int c = (int)cf_rng_below(rng, 2);
    double w[FLOW_MAX_PATHS] = { 0 }, sum = 0.0;
    for (int p = 0; p < fp.n_paths; p++) {
      w[p] = cf_rng_gamma(rng, alpha[c][p]);
      sum += w[p];
    }
    int64_t units[FLOW_MAX_PATHS] = { 0 }, used = 0;
    int pmax = 0;
    for (int p = 0; p < fp.n_paths; p++) {
      units[p] = (int64_t)floor(w[p] / sum * (double)total);
      if (units[p] < 0)
        units[p] = 0;
      if (units[p] > total)
        units[p] = total;
      used += units[p];
      if (w[p] > w[pmax])
        pmax = p;
    }
    units[pmax] += total - used; /* remainder: 0 <= . < n_paths units */
    CF_ASSERT(units[pmax] >= 0);
    int64_t edge_units[FLOW_EDGES] = { 0 };
    for (int p = 0; p < fp.n_paths; p++)
      for (int k = 0; k < fp.len[p]; k++)
        edge_units[fp.edge[p][k]] += units[p];
    for (int e = 0; e < FLOW_EDGES; e++)
      d->x[(size_t)FLOW_EDGES * i + e] = (float)((double)edge_units[e] * unit);
    d->labels[i] = c;
  }
  d->n_classes = 2;
}

/* portfolio: n = 10 weights summing to 1, from a mixture of 3 Dirichlet
 * distributions (weights 0.4, 0.3, 0.3; label = component):
 *   0 "balanced":  alpha_j = 8 for all j;
 *   1 "equities":  alpha = (6, 5, 4, 3, 1.5, 1, 1, 1, 1, 1);
 *   2 "bonds":     alpha = (1, 1, 1, 1, 1, 1.5, 3, 4, 5, 6).
 * Dirichlet draws are normalised Gamma(alpha_j) variates (cf_rng_gamma); all
 * concentrations are >= 1 so weights are positive and not pressed against
 * the simplex boundary. A = 1^T, b = 1. */
#define PORTFOLIO_N 10
static void
gen_portfolio(CfDataset *d, CfRng *rng)
{
  static const double alpha[3][PORTFOLIO_N] = {
    { 8, 8, 8, 8, 8, 8, 8, 8, 8, 8 },
    { 6, 5, 4, 3, 1.5, 1, 1, 1, 1, 1 },
    { 1, 1, 1, 1, 1, 1.5, 3, 4, 5, 6 },
  };
  static const double cum[3] = { 0.4, 0.7, 1.0 };
  for (int i = 0; i < d->n; i++) {
    int c = pick_component(rng, cum, 3);
    double g[PORTFOLIO_N], sum = 0.0;
    for (int j = 0; j < PORTFOLIO_N; j++) {
      g[j] = cf_rng_gamma(rng, alpha[c][j]);
      sum += g[j];
    }
    for (int j = 0; j < PORTFOLIO_N; j++)
      g[j] /= sum;
    round_sum_constrained(d->x + (size_t)PORTFOLIO_N * i, g, PORTFOLIO_N, 1.0);
    d->labels[i] = c;
  }
  d->n_classes = 3;
}

/* ------------------------------------------------------------------------ */
/* Generator table                                                          */

typedef void (*GenFn)(CfDataset *d, CfRng *rng);

static const CfGeneratorInfo generator_info[] = {
  { "gaussians", 2, "8 Gaussian modes (std 0.15) on a ring of radius 2; labels = mode", false },
  { "moons", 2, "two interleaving half circles with noise; labels = moon", false },
  { "checkerboard", 2, "uniform on the dark squares of a 4x4 board on [-2,2]^2", false },
  { "spiral", 2, "two-arm spiral (1.5 turns, radius 2) with noise; labels = arm", false },
  { "simplex-3d", 3, "mixture of 4 Gaussians in the plane x0 + x1 + x2 = 1", true },
  { "charge-neutral", CHARGE_N, "12 correlated, heteroscedastic partial charges summing to 0", true },
  { "flow-network", FLOW_EDGES, "edge flows on a 10-node, 16-edge DAG, supply 10, conserved at every node", true },
  { "portfolio", PORTFOLIO_N, "10 portfolio weights from a 3-component Dirichlet mixture, summing to 1", true },
  { "cstr", 6, "stirred-tank reactor: 3 inputs (temperature, feeds), 3 outputs; 2 mass balances", true, 3 },
  { "plant", 9, "plant with 3 feeds and a recycle (4 inputs), 5 outputs; overall mass balance", true, 4 },
  { "ring", 2, "points on the unit circle, uneven mixture of 3 angular bumps; labels = bump", false },
  { "sphere-shell", 3, "points on the unit sphere in 3-D, uneven mixture of 4 caps; labels = cap", false },
  { NULL, 0, NULL, false },
};

static const GenFn generator_fn[] = {
  gen_gaussians, gen_moons, gen_checkerboard, gen_spiral,
  gen_simplex3d, gen_charge_neutral, gen_flow_network, gen_portfolio,
  cf_gen_cstr, cf_gen_plant, gen_ring, gen_sphere_shell,
};

static const bool generator_labelled[] = {
  true, true, false, true, true, true, true, true, false, false, true, true,
};

#define N_GENERATORS ((int)(sizeof generator_fn / sizeof generator_fn[0]))

const CfGeneratorInfo *
cf_data_generators(void)
{
  return generator_info;
}

static int
generator_index(const char *name)
{
  if (!name)
    return -1;
  for (int i = 0; i < N_GENERATORS; i++)
    if (strcmp(generator_info[i].name, name) == 0)
      return i;
  return -1;
}

const CfGeneratorInfo *
cf_data_generator_find(const char *name)
{
  int i = generator_index(name);
  return i < 0 ? NULL : &generator_info[i];
}

static CfStatus
unknown_generator(CfError *err, const char *name)
{
  char names[512];
  size_t used = 0;
  names[0] = '\0';
  for (int i = 0; i < N_GENERATORS; i++) {
    int k = snprintf(names + used, sizeof names - used, "%s%s", i ? ", " : "", generator_info[i].name);
    if (k < 0 || (size_t)k >= sizeof names - used)
      break;
    used += (size_t)k;
  }
  return cf_error_set(err, CF_ERR_INVALID, "unknown generator '%.100s' (valid names: %s)",
                      name ? name : "(null)", names);
}

CfStatus
cf_data_generate(CfDataset *d, const char *name, int n, CfRng *rng, CfError *err)
{
  CF_ASSERT(d != NULL);
  CF_ASSERT(rng != NULL);
  int g = generator_index(name);
  if (g < 0)
    return unknown_generator(err, name);
  if (n <= 0 || n > CF_DATA_MAX_ROWS)
    return cf_error_set(err, CF_ERR_INVALID, "generator '%s': n = %d is out of range (1..%d)", name, n,
                        CF_DATA_MAX_ROWS);
  CfDataset tmp;
  cf_dataset_init(&tmp);
  CfStatus st = cf_dataset_alloc(&tmp, n, generator_info[g].dim, generator_labelled[g], err);
  if (st != CF_OK) {
    cf_error_prefix(err, "generator '%s'", name);
    return st;
  }
  generator_fn[g](&tmp, rng);
  dataset_move(d, &tmp);
  return CF_OK;
}

CfStatus
cf_data_builtin_constraint(CfConstraint *c, const char *name, CfError *err)
{
  CF_ASSERT(c != NULL);
  int g = generator_index(name);
  if (g < 0)
    return unknown_generator(err, name);
  if (!generator_info[g].constrained)
    return cf_error_set(err, CF_ERR_INVALID, "generator '%s' has no built-in constraint", name);
  const int n = generator_info[g].dim;
  double A[(FLOW_NODES - 1) * FLOW_EDGES];
  double b[FLOW_NODES - 1];
  int m;
  if (strcmp(name, "flow-network") == 0) {
    m = FLOW_NODES - 1;
    memset(A, 0, sizeof A);
    for (int e = 0; e < FLOW_EDGES; e++) {
      int tail = flow_edges[e][0], head = flow_edges[e][1];
      if (tail < m)
        A[tail * FLOW_EDGES + e] += 1.0;
      if (head < m)
        A[head * FLOW_EDGES + e] -= 1.0;
    }
    for (int v = 0; v < m; v++)
      b[v] = v == 0 ? FLOW_SUPPLY : 0.0;
  } else if (strcmp(name, "cstr") == 0) { /* [A_x | B], b = 0 (data_process.c) */
    static const double cstr[12] = {0, 1, -1, 0, -1, 1, 0, 1, 0, -1, -1, 0};
    m = 2;
    memcpy(A, cstr, sizeof cstr);
    b[0] = b[1] = 0.0;
  } else if (strcmp(name, "plant") == 0) {
    static const double plant[9] = {1, 1, 1, -1, -1, 0, -1, 0, -1};
    m = 1;
    memcpy(A, plant, sizeof plant);
    b[0] = 0.0;
  } else {
    /* simplex-3d, charge-neutral, portfolio: one sum constraint. */
    m = 1;
    CF_ASSERT(n <= (int)(sizeof A / sizeof A[0]));
    for (int j = 0; j < n; j++)
      A[j] = 1.0;
    b[0] = strcmp(name, "charge-neutral") == 0 ? 0.0 : 1.0;
  }
  CfConstraint tmp;
  cf_constraint_init(&tmp);
  CfStatus st = cf_constraint_set(&tmp, m, n, A, b, err);
  if (st != CF_OK) {
    cf_constraint_clear(&tmp);
    return st;
  }
  cf_constraint_clear(c);
  *c = tmp;
  return CF_OK;
}

/* ------------------------------------------------------------------------ */
/* CSV                                                                      */

#define CSV_MAX_LINE ((size_t)64 << 20) /* bytes in one line (file reader) */
/* Read size of cf_data_load_csv. The fuzz targets compile data.c with a
 * tiny chunk so that lines (and "\r\n") split across reads are exercised. */
#ifndef CSV_CHUNK
#define CSV_CHUNK ((size_t)1 << 16)
#endif
#define CSV_NUM_BUF 128
/* FLT_MAX plus half an ulp: doubles below it round to a finite float (at
 * most FLT_MAX), so "3.40282347e+38", the %.9g form of FLT_MAX, is read back;
 * from here on they round to infinity. */
#define CSV_FLOAT_OVERFLOW 0x1.ffffffp+127

typedef struct {
  size_t start, len; /* byte offsets within the line content */
} CsvCell;

typedef struct {
  const char *origin;
  CfError *err;
  size_t line;       /* number of the current line, 1-based */
  size_t max_rows;
  int dim;           /* 0 until the header or first row sets it */
  size_t header_line;/* 0: no header */
  bool seen_content;
  size_t rows;
  float *vals;
  size_t vals_cap;   /* floats */
  CsvCell *cells;
  size_t cells_cap;
  char *lb;          /* partial line carried across chunks (file reader) */
  size_t lb_len, lb_cap;
  bool skip_lf;      /* last chunk ended in '\r': drop a leading '\n' */
} Csv;

static bool
csv_is_space(char ch)
{
  return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\v' || ch == '\f';
}

static bool
csv_is_digit(char ch)
{
  return ch >= '0' && ch <= '9';
}

static char
ascii_lower(char ch)
{
  return (ch >= 'A' && ch <= 'Z') ? (char)(ch - 'A' + 'a') : ch;
}

static bool
ascii_ieq(const char *s, size_t n, const char *word)
{
  size_t k = strlen(word);
  if (n != k)
    return false;
  for (size_t i = 0; i < n; i++)
    if (ascii_lower(s[i]) != word[i])
      return false;
  return true;
}

/* Strict syntax of a decimal number: [+-] (digits [. digits] | . digits)
 * [(e|E) [+-] digits]. Returns 1 for a finite-looking number, 2 for
 * nan/inf/infinity (any case, optional sign), 0 otherwise. */
static int
csv_number_syntax(const char *s, size_t n)
{
  size_t i = 0;
  if (i < n && (s[i] == '+' || s[i] == '-'))
    i++;
  if (ascii_ieq(s + i, n - i, "nan") || ascii_ieq(s + i, n - i, "inf") || ascii_ieq(s + i, n - i, "infinity"))
    return 2;
  size_t digits = 0;
  while (i < n && csv_is_digit(s[i])) {
    i++;
    digits++;
  }
  if (i < n && s[i] == '.') {
    i++;
    while (i < n && csv_is_digit(s[i])) {
      i++;
      digits++;
    }
  }
  if (digits == 0)
    return 0;
  if (i < n && (s[i] == 'e' || s[i] == 'E')) {
    i++;
    if (i < n && (s[i] == '+' || s[i] == '-'))
      i++;
    size_t ed = 0;
    while (i < n && csv_is_digit(s[i])) {
      i++;
      ed++;
    }
    if (ed == 0)
      return 0;
  }
  return i == n ? 1 : 0;
}

/* Printable, bounded rendering of a cell for error messages: at most 40
 * bytes, bytes outside printable ASCII as \xNN. */
static void
csv_quote(char *out, size_t cap, const char *s, size_t n)
{
  size_t o = 0;
  size_t lim = n < 40 ? n : 40;
  for (size_t i = 0; i < lim && o + 5 < cap; i++) {
    unsigned char ch = (unsigned char)s[i];
    if (ch >= 0x20 && ch < 0x7f && ch != '\\') {
      out[o++] = (char)ch;
    } else {
      int k = snprintf(out + o, cap - o, "\\x%02x", ch);
      if (k < 0)
        break;
      o += (size_t)k;
    }
  }
  if (lim < n && o + 4 < cap) {
    memcpy(out + o, "...", 3);
    o += 3;
  }
  out[o < cap ? o : cap - 1] = '\0';
}

/* Converts a syntactically valid finite-looking token with strtod. The
 * syntax check above admits only digits, sign, '.', 'e'; strtod is called on
 * a NUL-terminated copy. The app runs with LC_NUMERIC=C; if the current
 * locale nevertheless uses another decimal separator, the '.' is replaced by
 * it before a second attempt, so the result never depends on the locale. */
static bool
csv_strtod(const char *s, size_t n, double *out)
{
  char small[CSV_NUM_BUF];
  char *buf = small;
  size_t cap = sizeof small;
  bool ok = false;
  if (n + 8 > cap) {
    cap = n + 8;
    buf = malloc(cap);
    if (!buf)
      return false;
  }
  memcpy(buf, s, n);
  buf[n] = '\0';
  char *end = NULL;
  errno = 0;
  double v = strtod(buf, &end);
  if (end == buf + n) {
    ok = true;
  } else {
    const char *dp = localeconv()->decimal_point;
    size_t dl = dp ? strlen(dp) : 0;
    char *dot = memchr(buf, '.', n);
    if (dot && dl > 0 && dl < 8 && !(dl == 1 && dp[0] == '.')) {
      size_t pos = (size_t)(dot - buf);
      memmove(dot + dl, dot + 1, n - pos); /* includes the NUL */
      memcpy(dot, dp, dl);
      errno = 0;
      v = strtod(buf, &end);
      ok = end == buf + n - 1 + dl;
    }
  }
  if (buf != small)
    free(buf);
  *out = v;
  return ok;
}

/* Splits the line content into cells. If the content holds ',' or ';' those
 * separate cells (surrounding whitespace trimmed, empty cells are kept, with
 * len 0); otherwise runs of whitespace separate cells. Stops with
 * CF_ERR_NOMEM beyond CF_DATA_MAX_DIM cells. */
static CfStatus
csv_split(Csv *c, const char *s, size_t n, size_t *count)
{
  bool delim = memchr(s, ',', n) != NULL || memchr(s, ';', n) != NULL;
  size_t k = 0, i = 0;
  *count = 0;
  if (!delim) {
    for (;;) {
      while (i < n && csv_is_space(s[i]))
        i++;
      if (i >= n)
        break;
      size_t st = i;
      while (i < n && !csv_is_space(s[i]))
        i++;
      if (k >= (size_t)CF_DATA_MAX_DIM)
        return cf_error_set(c->err, CF_ERR_NOMEM, "%s:%zu: row has more than %d values (limit)", c->origin,
                            c->line, CF_DATA_MAX_DIM);
      if (k >= c->cells_cap) {
        size_t nc = c->cells_cap ? 2 * c->cells_cap : 64;
        CsvCell *p = cf_alloc_array(nc, sizeof *p);
        if (!p)
          return cf_error_set(c->err, CF_ERR_NOMEM, "%s:%zu: out of memory", c->origin, c->line);
        if (c->cells)
          memcpy(p, c->cells, k * sizeof *p);
        free(c->cells);
        c->cells = p;
        c->cells_cap = nc;
      }
      c->cells[k].start = st;
      c->cells[k].len = i - st;
      k++;
    }
  } else {
    /* Blank content (only whitespace) has no ','; here there is at least one
     * separator, hence at least two cells. */
    for (;;) {
      size_t st = i;
      while (i < n && s[i] != ',' && s[i] != ';')
        i++;
      size_t en = i;
      while (st < en && csv_is_space(s[st]))
        st++;
      while (en > st && csv_is_space(s[en - 1]))
        en--;
      if (k >= (size_t)CF_DATA_MAX_DIM)
        return cf_error_set(c->err, CF_ERR_NOMEM, "%s:%zu: row has more than %d values (limit)", c->origin,
                            c->line, CF_DATA_MAX_DIM);
      if (k >= c->cells_cap) {
        size_t nc = c->cells_cap ? 2 * c->cells_cap : 64;
        CsvCell *p = cf_alloc_array(nc, sizeof *p);
        if (!p)
          return cf_error_set(c->err, CF_ERR_NOMEM, "%s:%zu: out of memory", c->origin, c->line);
        if (c->cells)
          memcpy(p, c->cells, k * sizeof *p);
        free(c->cells);
        c->cells = p;
        c->cells_cap = nc;
      }
      /* An empty cell is reported at its separator position. */
      c->cells[k].start = en > st ? st : (i < n ? i : (i > 0 ? i - 1 : 0));
      c->cells[k].len = en - st;
      k++;
      if (i >= n)
        break;
      i++; /* skip the separator */
    }
  }
  *count = k;
  return CF_OK;
}

static CfStatus
csv_reserve(Csv *c, size_t need)
{
  if (need <= c->vals_cap)
    return CF_OK;
  size_t cap = c->vals_cap ? c->vals_cap : 4096;
  while (cap < need) {
    if (cap > SIZE_MAX / 2 / sizeof(float))
      return cf_error_set(c->err, CF_ERR_NOMEM, "%s:%zu: data too large", c->origin, c->line);
    cap *= 2;
  }
  float *p = realloc(c->vals, cap * sizeof(float));
  if (!p)
    return cf_error_set(c->err, CF_ERR_NOMEM, "%s:%zu: out of memory after %zu rows", c->origin, c->line,
                        c->rows);
  c->vals = p;
  c->vals_cap = cap;
  return CF_OK;
}

/* One line without its terminator. */
static CfStatus
csv_line(Csv *c, const char *s, size_t n)
{
  c->line++;
  if (c->line == 1 && n >= 3 && (unsigned char)s[0] == 0xEF && (unsigned char)s[1] == 0xBB &&
      (unsigned char)s[2] == 0xBF) {
    s += 3;
    n -= 3;
  }
  const char *hash = memchr(s, '#', n);
  if (hash)
    n = (size_t)(hash - s);
  size_t count = 0;
  CfStatus st = csv_split(c, s, n, &count);
  if (st != CF_OK)
    return st;
  if (count == 0)
    return CF_OK; /* blank or comment line */
  char q[200];

  if (!c->seen_content) {
    c->seen_content = true;
    bool header = false;
    for (size_t j = 0; j < count && !header; j++)
      if (c->cells[j].len > 0 && csv_number_syntax(s + c->cells[j].start, c->cells[j].len) == 0)
        header = true;
    if (header) {
      c->header_line = c->line;
      c->dim = (int)count;
      return CF_OK;
    }
  }

  if (c->dim == 0) {
    c->dim = (int)count;
  } else if (count != (size_t)c->dim) {
    if (c->header_line)
      return cf_error_set(c->err, CF_ERR_PARSE, "%s:%zu: row has %zu values, expected %d (the header on line %zu has %d names)",
                          c->origin, c->line, count, c->dim, c->header_line, c->dim);
    return cf_error_set(c->err, CF_ERR_PARSE, "%s:%zu: row has %zu values, expected %d", c->origin, c->line,
                        count, c->dim);
  }
  if (c->rows >= c->max_rows)
    return cf_error_set(c->err, CF_ERR_NOMEM, "%s:%zu: more than %zu data rows (limit)", c->origin, c->line,
                        c->max_rows);
  st = csv_reserve(c, (c->rows + 1) * (size_t)c->dim);
  if (st != CF_OK)
    return st;
  float *row = c->vals + c->rows * (size_t)c->dim;
  for (size_t j = 0; j < count; j++) {
    const char *cs = s + c->cells[j].start;
    size_t cl = c->cells[j].len;
    size_t col = c->cells[j].start + 1;
    if (cl == 0)
      return cf_error_set(c->err, CF_ERR_PARSE, "%s:%zu:%zu: empty value", c->origin, c->line, col);
    int kind = csv_number_syntax(cs, cl);
    csv_quote(q, sizeof q, cs, cl);
    if (kind == 0)
      return cf_error_set(c->err, CF_ERR_PARSE, "%s:%zu:%zu: '%s' is not a number", c->origin, c->line, col, q);
    if (kind == 2)
      return cf_error_set(c->err, CF_ERR_PARSE, "%s:%zu:%zu: '%s' is not a finite number (NaN and Inf are not allowed)",
                          c->origin, c->line, col, q);
    double v;
    if (!csv_strtod(cs, cl, &v))
      return cf_error_set(c->err, CF_ERR_PARSE, "%s:%zu:%zu: '%s' cannot be converted", c->origin, c->line, col, q);
    if (!isfinite(v) || fabs(v) >= CSV_FLOAT_OVERFLOW)
      return cf_error_set(c->err, CF_ERR_PARSE, "%s:%zu:%zu: '%s' is out of range for single precision",
                          c->origin, c->line, col, q);
    row[j] = (float)v;
  }
  c->rows++;
  return CF_OK;
}

static CfStatus
csv_lb_append(Csv *c, const char *p, size_t n)
{
  if (n == 0)
    return CF_OK;
  if (n > CSV_MAX_LINE || c->lb_len > CSV_MAX_LINE - n)
    return cf_error_set(c->err, CF_ERR_NOMEM, "%s:%zu: line is longer than %zu bytes", c->origin, c->line + 1,
                        CSV_MAX_LINE);
  size_t need = c->lb_len + n;
  if (need > c->lb_cap) {
    size_t cap = c->lb_cap ? c->lb_cap : 4096;
    while (cap < need)
      cap *= 2; /* need <= CSV_MAX_LINE, no overflow */
    char *q = realloc(c->lb, cap);
    if (!q)
      return cf_error_set(c->err, CF_ERR_NOMEM, "%s:%zu: out of memory", c->origin, c->line + 1);
    c->lb = q;
    c->lb_cap = cap;
  }
  memcpy(c->lb + c->lb_len, p, n);
  c->lb_len += n;
  return CF_OK;
}

/* Feeds bytes; lines end at "\n", "\r\n" or "\r". With final, the end of p
 * also ends the last line. Lines lying inside p are parsed in place; only a
 * line split across calls is copied into the line buffer. */
static CfStatus
csv_feed(Csv *c, const char *p, size_t n, bool final)
{
  size_t i = 0;
  CfStatus st;
  if (c->skip_lf && n > 0) {
    if (p[0] == '\n')
      i = 1;
    c->skip_lf = false;
  }
  while (i < n) {
    size_t j = i;
    while (j < n && p[j] != '\n' && p[j] != '\r')
      j++;
    if (j == n) {
      if (!final)
        return csv_lb_append(c, p + i, n - i);
      if (c->lb_len > 0) {
        if ((st = csv_lb_append(c, p + i, n - i)) != CF_OK)
          return st;
        st = csv_line(c, c->lb, c->lb_len);
        c->lb_len = 0;
        return st;
      }
      return csv_line(c, p + i, n - i);
    }
    if (c->lb_len > 0) {
      if ((st = csv_lb_append(c, p + i, j - i)) != CF_OK)
        return st;
      st = csv_line(c, c->lb, c->lb_len);
      c->lb_len = 0;
    } else {
      st = csv_line(c, p + i, j - i);
    }
    if (st != CF_OK)
      return st;
    if (p[j] == '\r') {
      if (j + 1 < n) {
        if (p[j + 1] == '\n')
          j++;
      } else if (!final) {
        c->skip_lf = true;
      }
    }
    i = j + 1;
  }
  if (final && c->lb_len > 0) {
    st = csv_line(c, c->lb, c->lb_len);
    c->lb_len = 0;
    return st;
  }
  return CF_OK;
}

static void
csv_init(Csv *c, const char *origin, int max_rows, CfError *err)
{
  memset(c, 0, sizeof *c);
  c->origin = origin;
  c->err = err;
  c->max_rows = (max_rows > 0 && max_rows < CF_DATA_MAX_ROWS) ? (size_t)max_rows : (size_t)CF_DATA_MAX_ROWS;
}

static void
csv_free(Csv *c)
{
  free(c->vals);
  free(c->cells);
  free(c->lb);
  c->vals = NULL;
  c->cells = NULL;
  c->lb = NULL;
}

static CfStatus
csv_finish(Csv *c, CfDataset *d)
{
  if (c->rows == 0) {
    if (c->header_line)
      return cf_error_set(c->err, CF_ERR_PARSE, "%s: header on line %zu but no data rows", c->origin,
                          c->header_line);
    return cf_error_set(c->err, CF_ERR_PARSE, "%s: no data (the file is empty or holds only comments)", c->origin);
  }
  CfDataset tmp;
  cf_dataset_init(&tmp);
  CfStatus st = cf_dataset_alloc(&tmp, (int)c->rows, c->dim, false, c->err);
  if (st != CF_OK) {
    cf_error_prefix(c->err, "%s", c->origin);
    return st;
  }
  memcpy(tmp.x, c->vals, c->rows * (size_t)c->dim * sizeof(float));
  dataset_move(d, &tmp);
  return CF_OK;
}

CfStatus
cf_data_parse_csv(CfDataset *d, const char *text, size_t len, const char *origin, int max_rows, CfError *err)
{
  CF_ASSERT(d != NULL);
  CF_ASSERT(text != NULL || len == 0);
  Csv c;
  csv_init(&c, origin ? origin : "<text>", max_rows, err);
  CfStatus st = len > 0 ? csv_feed(&c, text, len, true) : CF_OK;
  if (st == CF_OK)
    st = csv_finish(&c, d);
  csv_free(&c);
  return st;
}

CfStatus
cf_data_load_csv(CfDataset *d, const char *path, int max_rows, CfError *err)
{
  CF_ASSERT(d != NULL);
  if (!path)
    return cf_error_set(err, CF_ERR_INVALID, "no CSV path given");
  FILE *f = fopen(path, "rb");
  if (!f)
    return cf_error_set(err, CF_ERR_IO, "%s: %s", path, strerror(errno));
  char *chunk = malloc(CSV_CHUNK);
  if (!chunk) {
    fclose(f);
    return cf_error_set(err, CF_ERR_NOMEM, "%s: out of memory", path);
  }
  Csv c;
  csv_init(&c, path, max_rows, err);
  CfStatus st = CF_OK;
  for (;;) {
    size_t got = fread(chunk, 1, CSV_CHUNK, f);
    if (got > 0 && (st = csv_feed(&c, chunk, got, false)) != CF_OK)
      break;
    if (got < CSV_CHUNK) {
      if (ferror(f)) {
        int e = errno;
        st = cf_error_set(err, CF_ERR_IO, "%s: read error: %s", path, e ? strerror(e) : "unknown error");
      }
      break;
    }
  }
  if (st == CF_OK)
    st = csv_feed(&c, "", 0, true);
  if (st == CF_OK)
    st = csv_finish(&c, d);
  csv_free(&c);
  free(chunk);
  fclose(f);
  return st;
}

/* ------------------------------------------------------------------------ */
/* Normalisation                                                            */

void
cf_norm_init(CfNorm *nm)
{
  CF_ASSERT(nm != NULL);
  nm->dim = 0;
  nm->mean = NULL;
  nm->scale = NULL;
}

void
cf_norm_clear(CfNorm *nm)
{
  if (!nm)
    return;
  cf_free_aligned(nm->mean);
  cf_free_aligned(nm->scale);
  cf_norm_init(nm);
}

static CfStatus
norm_alloc(CfNorm *tmp, int dim, CfError *err)
{
  cf_norm_init(tmp);
  tmp->mean = cf_alloc_floats((size_t)dim);
  tmp->scale = cf_alloc_floats((size_t)dim);
  if (!tmp->mean || !tmp->scale) {
    cf_norm_clear(tmp);
    return cf_error_set(err, CF_ERR_NOMEM, "out of memory for a normalisation of dimension %d", dim);
  }
  tmp->dim = dim;
  return CF_OK;
}

CfStatus
cf_norm_fit(CfNorm *nm, const CfDataset *d, CfError *err)
{
  CF_ASSERT(nm != NULL && d != NULL);
  if (d->n <= 0 || d->dim <= 0 || !d->x)
    return cf_error_set(err, CF_ERR_INVALID, "cannot fit a normalisation to an empty dataset");
  if (d->dim > CF_DATA_MAX_DIM)
    return cf_error_set(err, CF_ERR_INVALID, "dataset dimension %d exceeds %d", d->dim, CF_DATA_MAX_DIM);
  const int n = d->n, dim = d->dim;
  double *sum = cf_calloc_array((size_t)dim, sizeof(double));
  double *ss = cf_calloc_array((size_t)dim, sizeof(double));
  if (!sum || !ss) {
    free(sum);
    free(ss);
    return cf_error_set(err, CF_ERR_NOMEM, "out of memory fitting a normalisation");
  }
  /* Two passes in double: mean, then centred sum of squares. */
  for (int i = 0; i < n; i++) {
    const float *row = d->x + (size_t)i * (size_t)dim;
    for (int j = 0; j < dim; j++)
      sum[j] += row[j];
  }
  for (int j = 0; j < dim; j++) {
    sum[j] /= n;
    if (!isfinite(sum[j])) {
      free(sum);
      free(ss);
      return cf_error_set(err, CF_ERR_NUMERIC, "column %d holds a non-finite value", j + 1);
    }
  }
  for (int i = 0; i < n; i++) {
    const float *row = d->x + (size_t)i * (size_t)dim;
    for (int j = 0; j < dim; j++) {
      double t = (double)row[j] - sum[j];
      ss[j] += t * t;
    }
  }
  CfNorm tmp;
  CfStatus st = norm_alloc(&tmp, dim, err);
  if (st == CF_OK) {
    for (int j = 0; j < dim; j++) {
      double sd = sqrt(ss[j] / n);
      if (!isfinite(sd)) {
        st = cf_error_set(err, CF_ERR_NUMERIC, "column %d has a non-finite spread", j + 1);
        break;
      }
      tmp.mean[j] = (float)sum[j];
      tmp.scale[j] = (sd < 1e-6 * (1.0 + fabs(sum[j])) || (float)sd <= 0.0f || !isfinite((float)sd)) ? 1.0f
                                                                                                    : (float)sd;
    }
  }
  free(sum);
  free(ss);
  if (st != CF_OK) {
    cf_norm_clear(&tmp);
    return st;
  }
  cf_norm_clear(nm);
  *nm = tmp;
  return CF_OK;
}

CfStatus
cf_norm_set(CfNorm *nm, int dim, const float *mean, const float *scale, CfError *err)
{
  CF_ASSERT(nm != NULL);
  if (dim <= 0 || dim > CF_DATA_MAX_DIM)
    return cf_error_set(err, CF_ERR_INVALID, "normalisation dimension %d out of range (1..%d)", dim,
                        CF_DATA_MAX_DIM);
  if (!mean || !scale)
    return cf_error_set(err, CF_ERR_INVALID, "normalisation needs both mean and scale");
  for (int j = 0; j < dim; j++) {
    if (!isfinite(mean[j]))
      return cf_error_set(err, CF_ERR_INVALID, "normalisation mean[%d] is not finite", j);
    if (!isfinite(scale[j]) || !(scale[j] > 0.0f))
      return cf_error_set(err, CF_ERR_INVALID, "normalisation scale[%d] = %g must be finite and > 0", j,
                          (double)scale[j]);
  }
  CfNorm tmp;
  CfStatus st = norm_alloc(&tmp, dim, err);
  if (st != CF_OK)
    return st;
  memcpy(tmp.mean, mean, (size_t)dim * sizeof(float));
  memcpy(tmp.scale, scale, (size_t)dim * sizeof(float));
  cf_norm_clear(nm);
  *nm = tmp;
  return CF_OK;
}

/* x is (n, dim): u = (x - mean) / scale. */
void
cf_norm_apply(const CfNorm *nm, float *x, int n)
{
  CF_ASSERT(nm != NULL);
  if (n <= 0)
    return;
  CF_ASSERT(x != NULL && nm->dim > 0 && nm->mean && nm->scale);
  const int dim = nm->dim;
  for (int i = 0; i < n; i++) {
    float *row = x + (size_t)i * (size_t)dim;
    for (int j = 0; j < dim; j++)
      row[j] = (row[j] - nm->mean[j]) / nm->scale[j];
  }
}

/* u is (n, dim): x = scale .* u + mean. */
void
cf_norm_invert(const CfNorm *nm, float *u, int n)
{
  CF_ASSERT(nm != NULL);
  if (n <= 0)
    return;
  CF_ASSERT(u != NULL && nm->dim > 0 && nm->mean && nm->scale);
  const int dim = nm->dim;
  for (int i = 0; i < n; i++) {
    float *row = u + (size_t)i * (size_t)dim;
    for (int j = 0; j < dim; j++)
      row[j] = nm->scale[j] * row[j] + nm->mean[j];
  }
}
