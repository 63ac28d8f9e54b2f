/* Tests of core/data.c: built-in generators (shape, determinism, statistics,
 * exact constraints), the CSV loader (good and bad inputs, limits, random
 * bytes) and the normalisation record. */
#include <errno.h>
#include <float.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <locale.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "data.h"

/* ------------------------------------------------------------------------ */
/* Helpers                                                                  */

static void
generate(CfDataset *d, const char *name, int n, uint64_t seed)
{
  CfRng rng;
  CfError err;
  cf_error_clear(&err);
  cf_rng_seed(&rng, seed);
  CfStatus st = cf_data_generate(d, name, n, &rng, &err);
  if (st != CF_OK)
    g_error("generate %s: %s", name, err.msg);
  g_assert_cmpint(d->n, ==, n);
}

static void
assert_contains(const char *haystack, const char *needle)
{
  if (!strstr(haystack, needle))
    g_error("expected \"%s\" in message \"%s\"", needle, haystack);
}

/* max over samples and rows of |A_i x - b_i| / (1 + |b_i|), in double on the
 * float data; also the unscaled maximum. */
static double
max_residual(const CfConstraint *c, const CfDataset *d, double *abs_max)
{
  double worst = 0.0, worst_abs = 0.0;
  for (int s = 0; s < d->n; s++) {
    const float *x = d->x + (size_t)s * (size_t)d->dim;
    for (int i = 0; i < c->m; i++) {
      double r = -c->b[i];
      for (int j = 0; j < c->n; j++)
        r += c->A[(size_t)i * (size_t)c->n + (size_t)j] * (double)x[j];
      worst_abs = fmax(worst_abs, fabs(r));
      worst = fmax(worst, fabs(r) / (1.0 + fabs(c->b[i])));
    }
  }
  if (abs_max)
    *abs_max = worst_abs;
  return worst;
}

/* Rank of an m x n matrix by Gaussian elimination with partial pivoting. */
static int
matrix_rank(const double *A, int m, int n)
{
  double *M = g_memdup2(A, sizeof(double) * (size_t)m * (size_t)n);
  int rank = 0;
  for (int col = 0; col < n && rank < m; col++) {
    int piv = rank;
    for (int i = rank + 1; i < m; i++)
      if (fabs(M[i * n + col]) > fabs(M[piv * n + col]))
        piv = i;
    if (fabs(M[piv * n + col]) < 1e-9)
      continue;
    for (int j = 0; j < n; j++) {
      double t = M[piv * n + j];
      M[piv * n + j] = M[rank * n + j];
      M[rank * n + j] = t;
    }
    for (int i = rank + 1; i < m; i++) {
      double f = M[i * n + col] / M[rank * n + col];
      for (int j = col; j < n; j++)
        M[i * n + j] -= f * M[rank * n + j];
    }
    rank++;
  }
  g_free(M);
  return rank;
}

static double
column_mean(const CfDataset *d, int j, int label)
{
  double s = 0.0;
  int k = 0;
  for (int i = 0; i < d->n; i++) {
    if (label >= 0 && d->labels[i] != label)
      continue;
    s += d->x[(size_t)i * (size_t)d->dim + (size_t)j];
    k++;
  }
  return k ? s / k : 0.0;
}

static double
column_var(const CfDataset *d, int j)
{
  double m = column_mean(d, j, -1), s = 0.0;
  for (int i = 0; i < d->n; i++) {
    double t = d->x[(size_t)i * (size_t)d->dim + (size_t)j] - m;
    s += t * t;
  }
  return s / d->n;
}

static void
label_counts(const CfDataset *d, int *counts)
{
  g_assert_nonnull(d->labels);
  for (int k = 0; k < d->n_classes; k++)
    counts[k] = 0;
  for (int i = 0; i < d->n; i++) {
    g_assert_cmpint(d->labels[i], >=, 0);
    g_assert_cmpint(d->labels[i], <, d->n_classes);
    counts[d->labels[i]]++;
  }
}

/* ------------------------------------------------------------------------ */
/* Generators                                                               */

static const char *const all_names[] = {
  "gaussians", "moons", "checkerboard", "spiral", "simplex-3d", "charge-neutral", "flow-network", "portfolio",
  "cstr", "plant", "ring", "sphere-shell",
};

static void
test_generator_table(void)
{
  const CfGeneratorInfo *g = cf_data_generators();
  int count = 0;
  for (; g[count].name; count++) {
    g_assert_cmpstr(g[count].name, ==, all_names[count]);
    g_assert_cmpint(g[count].dim, >, 0);
    g_assert_nonnull(g[count].description);
    g_assert_true(cf_data_generator_find(g[count].name) == &g[count]);
    g_assert_true(g[count].constrained == (count >= 4 && count <= 9)); /* ring, sphere-shell: equations only */
    g_assert_cmpint(g[count].inputs, ==, count == 8 ? 3 : count == 9 ? 4 : 0);
  }
  g_assert_cmpint(count, ==, (int)G_N_ELEMENTS(all_names));
  g_assert_cmpint(cf_data_generator_find("gaussians")->dim, ==, 2);
  g_assert_cmpint(cf_data_generator_find("simplex-3d")->dim, ==, 3);
  g_assert_cmpint(cf_data_generator_find("charge-neutral")->dim, ==, 12);
  g_assert_cmpint(cf_data_generator_find("portfolio")->dim, ==, 10);
  g_assert_cmpint(cf_data_generator_find("flow-network")->dim, >=, 12);
  g_assert_null(cf_data_generator_find("nope"));
  g_assert_null(cf_data_generator_find(""));
  g_assert_null(cf_data_generator_find(NULL));
}

static void
test_generator_shape_determinism(void)
{
  for (size_t t = 0; t < G_N_ELEMENTS(all_names); t++) {
    const char *name = all_names[t];
    const CfGeneratorInfo *info = cf_data_generator_find(name);
    const int n = 2000;
    CfDataset a, b, c;
    cf_dataset_init(&a);
    cf_dataset_init(&b);
    cf_dataset_init(&c);
    generate(&a, name, n, 1);
    generate(&b, name, n, 1);
    generate(&c, name, n, 2);
    g_assert_cmpint(a.dim, ==, info->dim);
    g_assert_true(((uintptr_t)a.x & 63u) == 0);
    size_t cnt = (size_t)n * (size_t)a.dim;
    g_assert_cmpmem(a.x, cnt * sizeof(float), b.x, cnt * sizeof(float));
    size_t differ = 0;
    for (size_t i = 0; i < cnt; i++) {
      g_assert_true(isfinite(a.x[i]));
      differ += a.x[i] != c.x[i];
    }
    /* Different seeds: almost every value differs (flow-network edge flows
     * and portfolio weights are continuous, so coincidences are rare). */
    g_test_message("%s: %zu of %zu values differ between seeds 1 and 2", name, differ, cnt);
    g_assert_cmpuint(differ, >, cnt * 9 / 10);
    if (a.labels) {
      g_assert_cmpint(a.n_classes, >, 0);
      g_assert_cmpmem(a.labels, (size_t)n * sizeof(int), b.labels, (size_t)n * sizeof(int));
      for (int i = 0; i < n; i++) {
        g_assert_cmpint(a.labels[i], >=, 0);
        g_assert_cmpint(a.labels[i], <, a.n_classes);
      }
    } else {
      g_assert_cmpint(a.n_classes, ==, 0);
    }
    /* A prefix of a longer run equals the shorter run only if the draws per
     * sample are fixed; do not assume it. But n = 1 must work. */
    generate(&c, name, 1, 3);
    g_assert_cmpint(c.dim, ==, info->dim);
    cf_dataset_clear(&a);
    cf_dataset_clear(&b);
    cf_dataset_clear(&c);
    g_assert_null(a.x);
    g_assert_cmpint(a.n, ==, 0);
  }
}

static void
test_generator_errors(void)
{
  CfDataset d;
  CfRng rng;
  CfError err;
  cf_dataset_init(&d);
  cf_rng_seed(&rng, 1);
  generate(&d, "moons", 10, 5);
  float first = d.x[0];

  cf_error_clear(&err);
  g_assert_cmpint(cf_data_generate(&d, "mooons", 10, &rng, &err), ==, CF_ERR_INVALID);
  g_assert_cmpint(err.code, ==, CF_ERR_INVALID);
  assert_contains(err.msg, "mooons");
  for (size_t t = 0; t < G_N_ELEMENTS(all_names); t++)
    assert_contains(err.msg, all_names[t]);
  g_test_message("unknown generator: %s", err.msg);

  g_assert_cmpint(cf_data_generate(&d, NULL, 10, &rng, &err), ==, CF_ERR_INVALID);
  g_assert_cmpint(cf_data_generate(&d, "moons", 0, &rng, &err), ==, CF_ERR_INVALID);
  assert_contains(err.msg, "n = 0");
  g_assert_cmpint(cf_data_generate(&d, "moons", -5, &rng, &err), ==, CF_ERR_INVALID);
  g_assert_cmpint(cf_data_generate(&d, "moons", CF_DATA_MAX_ROWS + 1, &rng, &err), ==, CF_ERR_INVALID);
  g_assert_cmpint(cf_data_generate(&d, "moons", 10, &rng, NULL), ==, CF_OK);
  /* Failed calls left the earlier dataset alone. */
  CfDataset e;
  cf_dataset_init(&e);
  generate(&e, "moons", 10, 5);
  g_assert_true(first == e.x[0]);
  g_assert_cmpint(cf_data_generate(&e, "bogus", 10, &rng, NULL), ==, CF_ERR_INVALID);
  g_assert_cmpint(e.n, ==, 10);
  g_assert_true(first == e.x[0]);
  cf_dataset_clear(&e);

  /* Constraints of unconstrained or unknown generators. */
  CfConstraint c;
  cf_constraint_init(&c);
  for (int t = 0; t < 4; t++) {
    g_assert_cmpint(cf_data_builtin_constraint(&c, all_names[t], &err), ==, CF_ERR_INVALID);
    assert_contains(err.msg, all_names[t]);
  }
  g_assert_cmpint(cf_data_builtin_constraint(&c, "xyz", &err), ==, CF_ERR_INVALID);
  assert_contains(err.msg, "xyz");
  assert_contains(err.msg, "flow-network");
  g_assert_cmpint(c.m, ==, 0);
  cf_constraint_clear(&c);

  /* dataset_alloc bounds */
  g_assert_cmpint(cf_dataset_alloc(&d, 0, 3, false, &err), ==, CF_ERR_INVALID);
  g_assert_cmpint(cf_dataset_alloc(&d, 3, CF_DATA_MAX_DIM + 1, false, &err), ==, CF_ERR_NOMEM);
  g_assert_cmpint(cf_dataset_alloc(&d, 3, 4, true, &err), ==, CF_OK);
  g_assert_cmpint(d.n, ==, 3);
  g_assert_cmpint(d.dim, ==, 4);
  g_assert_nonnull(d.labels);
  for (int i = 0; i < 12; i++)
    g_assert_true(d.x[i] == 0.0f);
  cf_dataset_clear(&d);
  cf_dataset_clear(&d); /* idempotent */
}

static void
test_gaussians_stats(void)
{
  CfDataset d;
  cf_dataset_init(&d);
  const int n = 16000;
  generate(&d, "gaussians", n, 11);
  g_assert_cmpint(d.n_classes, ==, 8);
  int counts[8];
  label_counts(&d, counts);
  double rsum = 0.0;
  for (int i = 0; i < n; i++) {
    double x = d.x[2 * i], y = d.x[2 * i + 1];
    rsum += sqrt(x * x + y * y);
    /* nearest ring centre is the labelled mode (modes are 1.53 apart, std 0.15) */
    int k = d.labels[i];
    double cx = 2.0 * cos(2 * M_PI * k / 8), cy = 2.0 * sin(2 * M_PI * k / 8);
    g_assert_cmpfloat(hypot(x - cx, y - cy), <, 1.0);
  }
  for (int k = 0; k < 8; k++) {
    g_test_message("gaussians: mode %d has %d samples", k, counts[k]);
    g_assert_cmpint(abs(counts[k] - n / 8), <, n / 8 / 8);
    double sx = 0.0;
    double mx = column_mean(&d, 0, k), my = column_mean(&d, 1, k);
    for (int i = 0; i < n; i++)
      if (d.labels[i] == k)
        sx += (d.x[2 * i] - mx) * (d.x[2 * i] - mx);
    double sd = sqrt(sx / counts[k]);
    g_assert_cmpfloat(fabs(sd - 0.15), <, 0.02);
    g_assert_cmpfloat(fabs(hypot(mx, my) - 2.0), <, 0.03);
  }
  double r = rsum / n;
  g_test_message("gaussians: mean radius %.4f", r);
  g_assert_cmpfloat(fabs(r - 2.0), <, 0.05);
  cf_dataset_clear(&d);
}

static void
test_moons_stats(void)
{
  CfDataset d;
  cf_dataset_init(&d);
  const int n = 10000;
  generate(&d, "moons", n, 12);
  g_assert_cmpint(d.n_classes, ==, 2);
  int counts[2];
  label_counts(&d, counts);
  g_assert_cmpint(abs(counts[0] - counts[1]), <, n / 20);
  /* the upper moon (0) lies higher than the lower moon (1) and to the left */
  g_assert_cmpfloat(column_mean(&d, 1, 0), >, column_mean(&d, 1, 1) + 0.5);
  g_assert_cmpfloat(column_mean(&d, 0, 0), <, column_mean(&d, 0, 1) - 0.5);
  for (int i = 0; i < 2 * n; i++)
    g_assert_cmpfloat(fabs(d.x[i]), <, 2.5);
  /* roughly centred */
  g_assert_cmpfloat(fabs(column_mean(&d, 0, -1)), <, 0.1);
  g_assert_cmpfloat(fabs(column_mean(&d, 1, -1)), <, 0.1);
  cf_dataset_clear(&d);
}

static void
test_checkerboard_stats(void)
{
  CfDataset d;
  cf_dataset_init(&d);
  const int n = 16000;
  generate(&d, "checkerboard", n, 13);
  g_assert_null(d.labels);
  int counts[16] = { 0 };
  for (int i = 0; i < n; i++) {
    double x = d.x[2 * i], y = d.x[2 * i + 1];
    g_assert_cmpfloat(x, >=, -2.0);
    g_assert_cmpfloat(x, <=, 2.0);
    g_assert_cmpfloat(y, >=, -2.0);
    g_assert_cmpfloat(y, <=, 2.0);
    int col = (int)floor(x + 2.0), row = (int)floor(y + 2.0);
    if (col > 3)
      col = 3;
    if (row > 3)
      row = 3;
    g_assert_cmpint((col + row) % 2, ==, 0);
    counts[row * 4 + col]++;
  }
  int dark = 0;
  for (int k = 0; k < 16; k++) {
    if (counts[k] == 0)
      continue;
    dark++;
    g_assert_cmpint(abs(counts[k] - n / 8), <, n / 8 / 8);
  }
  g_assert_cmpint(dark, ==, 8);
  cf_dataset_clear(&d);
}

static void
test_spiral_stats(void)
{
  CfDataset d;
  cf_dataset_init(&d);
  const int n = 10000;
  generate(&d, "spiral", n, 14);
  g_assert_cmpint(d.n_classes, ==, 2);
  int counts[2];
  label_counts(&d, counts);
  g_assert_cmpint(abs(counts[0] - counts[1]), <, n / 20);
  double rmax = 0.0;
  for (int i = 0; i < n; i++)
    rmax = fmax(rmax, hypot(d.x[2 * i], d.x[2 * i + 1]));
  g_assert_cmpfloat(rmax, <, 2.5);
  g_assert_cmpfloat(rmax, >, 1.8);
  /* The arms are point reflections of each other: class means are opposite. */
  for (int j = 0; j < 2; j++)
    g_assert_cmpfloat(fabs(column_mean(&d, j, 0) + column_mean(&d, j, 1)), <, 0.1);
  cf_dataset_clear(&d);
}

static void
check_constraint_holds(const char *name, int expect_m)
{
  CfDataset d;
  CfConstraint c;
  CfError err;
  cf_dataset_init(&d);
  cf_constraint_init(&c);
  generate(&d, name, 10000, 21);
  g_assert_cmpint(cf_data_builtin_constraint(&c, name, &err), ==, CF_OK);
  g_assert_cmpint(c.n, ==, d.dim);
  g_assert_cmpint(c.m, ==, expect_m);
  double abs_max;
  double rel = max_residual(&c, &d, &abs_max);
  g_test_message("%s: max |A x - b| = %.3g, max |A x - b| / (1 + |b|) = %.3g over %d samples", name, abs_max,
                 rel, d.n);
  g_assert_cmpfloat(rel, <=, 1e-6);
  /* The constraint module agrees: usable, full row rank, consistent, and its
   * own violation measure is at round-off level. */
  CfConstraintReport rep;
  memset(&rep, 0, sizeof rep);
  if (cf_constraint_analyze(&c, d.dim, &rep, &err) != CF_OK)
    g_error("%s: analyze: %s", name, err.msg);
  g_assert_cmpint(rep.rank, ==, c.m);
  g_assert_cmpint(rep.n_redundant, ==, 0);
  g_assert_true(rep.consistent);
  cf_constraint_report_clear(&rep);
  double *linf = g_new(double, (gsize)d.n);
  cf_constraint_violation(&c, d.x, d.n, NULL, linf);
  for (int i = 0; i < d.n; i++)
    g_assert_cmpfloat(linf[i], <=, 1e-6 * (1.0 + 10.0));
  g_free(linf);
  /* also for other seeds and tiny n */
  generate(&d, name, 3, 99);
  g_assert_cmpfloat(max_residual(&c, &d, NULL), <=, 1e-6);
  cf_constraint_clear(&c);
  cf_dataset_clear(&d);
}

static void
test_constraints_hold(void)
{
  check_constraint_holds("simplex-3d", 1);
  check_constraint_holds("charge-neutral", 1);
  check_constraint_holds("flow-network", 9);
  check_constraint_holds("portfolio", 1);
  check_constraint_holds("cstr", 2);
  check_constraint_holds("plant", 1);
}

/* Process units: the outputs' constraint B y = -A_x x has full row rank in
 * B (so every input admits outputs), flows are non-negative, and the
 * outputs depend on the inputs (conversion rises with temperature). */
static void
test_process_units(void)
{
  const char *names[] = {"cstr", "plant"};
  for (int u = 0; u < 2; u++) {
    CfDataset d;
    CfConstraint c;
    cf_dataset_init(&d);
    cf_constraint_init(&c);
    generate(&d, names[u], 4000, 5);
    g_assert_cmpint(cf_data_builtin_constraint(&c, names[u], NULL), ==, CF_OK);
    int nx = cf_data_generator_find(names[u])->inputs, ny = d.dim - nx;
    /* B = A[:, nx:] has rank m: its Gram matrix is non-singular */
    double G[4] = {0};
    for (int i = 0; i < c.m; i++)
      for (int j = 0; j < c.m; j++)
        for (int q = nx; q < d.dim; q++)
          G[i * c.m + j] += c.A[i * d.dim + q] * c.A[j * d.dim + q];
    double det = c.m == 1 ? G[0] : G[0] * G[3] - G[1] * G[2];
    g_assert_cmpfloat(det, >, 0.5);
    g_assert_cmpint(ny, >, c.m);
    for (int i = 0; i < d.n; i++)
      for (int j = 0; j < d.dim; j++) {
        gboolean flow = u == 0 ? TRUE : (j < 4 || j == 4 || j == 6 || j == 8);
        if (flow)
          g_assert_cmpfloat(d.x[(size_t)i * d.dim + j], >=, 0.0f);
      }
    if (u == 0) { /* conversion y1 / x1 correlates with temperature x0 */
      double sx = 0, sy = 0, sxy = 0, sxx = 0, syy = 0;
      for (int i = 0; i < d.n; i++) {
        double x = d.x[i * 6], y = d.x[i * 6 + 4] / d.x[i * 6 + 1];
        sx += x, sy += y, sxy += x * y, sxx += x * x, syy += y * y;
      }
      double n = d.n, r = (sxy - sx * sy / n) / sqrt((sxx - sx * sx / n) * (syy - sy * sy / n));
      g_test_message("cstr: corr(temperature, conversion) = %.3f", r);
      g_assert_cmpfloat(r, >, 0.8);
    }
    cf_constraint_clear(&c);
    cf_dataset_clear(&d);
  }
}

static void
test_simplex3d(void)
{
  CfDataset d;
  CfConstraint c;
  cf_dataset_init(&d);
  cf_constraint_init(&c);
  generate(&d, "simplex-3d", 8000, 22);
  g_assert_cmpint(cf_data_builtin_constraint(&c, "simplex-3d", NULL), ==, CF_OK);
  g_assert_cmpint(c.m, ==, 1);
  g_assert_cmpint(c.n, ==, 3);
  for (int j = 0; j < 3; j++)
    g_assert_true(c.A[j] == 1.0);
  g_assert_true(c.b[0] == 1.0);
  g_assert_cmpint(d.n_classes, ==, 4);
  int counts[4];
  label_counts(&d, counts);
  for (int k = 0; k < 4; k++)
    g_assert_cmpint(abs(counts[k] - 2000), <, 250);
  /* components 0..2 sit near the vertices: x_k largest on average */
  for (int k = 0; k < 3; k++)
    g_assert_cmpfloat(column_mean(&d, k, k), >, 0.6);
  /* The data spans the plane (2-D), not a line: both in-plane variances. */
  g_assert_cmpfloat(column_var(&d, 0), >, 0.01);
  g_assert_cmpfloat(column_var(&d, 2), >, 0.01);
  cf_constraint_clear(&c);
  cf_dataset_clear(&d);
}

static void
test_charge_neutral(void)
{
  CfDataset d;
  CfConstraint c;
  cf_dataset_init(&d);
  cf_constraint_init(&c);
  generate(&d, "charge-neutral", 20000, 23);
  g_assert_cmpint(cf_data_builtin_constraint(&c, "charge-neutral", NULL), ==, CF_OK);
  g_assert_cmpint(c.m, ==, 1);
  g_assert_cmpint(c.n, ==, 12);
  g_assert_true(c.b[0] == 0.0);
  double vmin = INFINITY, vmax = 0.0;
  for (int j = 0; j < 12; j++) {
    double v = column_var(&d, j);
    vmin = fmin(vmin, v);
    vmax = fmax(vmax, v);
  }
  g_test_message("charge-neutral: coordinate variances from %.4f to %.4f (ratio %.1f)", vmin, vmax, vmax / vmin);
  g_assert_cmpfloat(vmax / vmin, >, 4.0);
  /* Correlated: some pair of coordinates has |corr| > 0.3. */
  double best = 0.0;
  for (int a = 0; a < 12; a++) {
    for (int b = a + 1; b < 12; b++) {
      double ma = column_mean(&d, a, -1), mb = column_mean(&d, b, -1), s = 0.0;
      for (int i = 0; i < d.n; i++)
        s += (d.x[i * 12 + a] - ma) * (d.x[i * 12 + b] - mb);
      double corr = s / d.n / sqrt(column_var(&d, a) * column_var(&d, b));
      best = fmax(best, fabs(corr));
    }
  }
  g_test_message("charge-neutral: largest |correlation| %.3f", best);
  g_assert_cmpfloat(best, >, 0.3);
  int counts[2];
  label_counts(&d, counts);
  g_assert_cmpint(counts[0], >, counts[1]);
  g_assert_cmpint(counts[1], >, d.n / 4);
  cf_constraint_clear(&c);
  cf_dataset_clear(&d);
}

static void
test_flow_network(void)
{
  CfDataset d;
  CfConstraint c;
  cf_dataset_init(&d);
  cf_constraint_init(&c);
  generate(&d, "flow-network", 10000, 24);
  g_assert_cmpint(cf_data_builtin_constraint(&c, "flow-network", NULL), ==, CF_OK);
  int nodes = c.m + 1, edges = c.n;
  g_test_message("flow-network: %d nodes, %d edges", nodes, edges);
  g_assert_cmpint(nodes, >=, 8);
  g_assert_cmpint(edges, >=, 12);
  g_assert_cmpint(matrix_rank(c.A, c.m, c.n), ==, c.m);
  /* Incidence structure: every column has at most one +1 and one -1, and
   * b is the supply vector: one positive source entry, zeros elsewhere. */
  for (int e = 0; e < c.n; e++) {
    int plus = 0, minus = 0;
    for (int v = 0; v < c.m; v++) {
      double a = c.A[v * c.n + e];
      g_assert_true(a == 0.0 || a == 1.0 || a == -1.0);
      plus += a == 1.0;
      minus += a == -1.0;
    }
    g_assert_cmpint(plus, <=, 1);
    g_assert_cmpint(minus, <=, 1);
    g_assert_cmpint(plus + minus, >=, 1);
  }
  int sources = 0;
  for (int v = 0; v < c.m; v++) {
    g_assert_cmpfloat(c.b[v], >=, 0.0);
    sources += c.b[v] > 0.0;
  }
  g_assert_cmpint(sources, ==, 1);
  g_assert_true(c.b[0] == 10.0);
  for (size_t i = 0; i < (size_t)d.n * (size_t)d.dim; i++)
    g_assert_cmpfloat(d.x[i], >=, 0.0f);
  /* Every edge carries flow in some samples and varies. */
  for (int e = 0; e < d.dim; e++) {
    double v = column_var(&d, e);
    g_assert_cmpfloat(v, >, 1e-3);
  }
  /* exact: the construction makes A x = b hold exactly in float */
  double abs_max;
  max_residual(&c, &d, &abs_max);
  g_assert_cmpfloat(abs_max, ==, 0.0);
  cf_constraint_clear(&c);
  cf_dataset_clear(&d);
}

static void
test_portfolio(void)
{
  CfDataset d;
  CfConstraint c;
  cf_dataset_init(&d);
  cf_constraint_init(&c);
  generate(&d, "portfolio", 10000, 25);
  g_assert_cmpint(cf_data_builtin_constraint(&c, "portfolio", NULL), ==, CF_OK);
  g_assert_cmpint(c.n, ==, 10);
  g_assert_true(c.b[0] == 1.0);
  for (size_t i = 0; i < (size_t)d.n * 10; i++) {
    g_assert_cmpfloat(d.x[i], >, 0.0f);
    g_assert_cmpfloat(d.x[i], <, 1.0f);
  }
  g_assert_cmpint(d.n_classes, ==, 3);
  int counts[3];
  label_counts(&d, counts);
  for (int k = 0; k < 3; k++)
    g_assert_cmpint(counts[k], >, d.n / 5);
  /* component 1 (equities) puts more weight on asset 0 than component 2 */
  g_assert_cmpfloat(column_mean(&d, 0, 1), >, column_mean(&d, 0, 2) + 0.1);
  /* mean weights ~ 1/10 over the balanced component */
  for (int j = 0; j < 10; j++)
    g_assert_cmpfloat(fabs(column_mean(&d, j, 0) - 0.1), <, 0.01);
  cf_constraint_clear(&c);
  cf_dataset_clear(&d);
}

/* ------------------------------------------------------------------------ */
/* CSV                                                                      */

typedef struct {
  const char *what;
  const char *text;
  size_t len; /* 0: strlen */
  int n, dim;
  float first, last;
} GoodCsv;

static void
test_csv_good(void)
{
  static const char bom_text[] = "\xEF\xBB\xBFx,y\n1,2\n3,4\n";
  static const char nul_free_tail[] = "1 2\n3 4"; /* no final newline */
  const GoodCsv cases[] = {
    { "plain", "1,2,3\n4,5,6\n", 0, 2, 3, 1, 6 },
    { "header", "a,b,c\n1,2,3\n4,5,6\n", 0, 2, 3, 1, 6 },
    { "header with spaces in names", "x value, y value\n1, 2\n", 0, 1, 2, 1, 2 },
    { "comments and blanks", "# a comment\n\n  \nx y # trailing\n1 2 # note\n\n# more\n3 4\n", 0, 2, 2, 1, 4 },
    { "CRLF", "x,y\r\n1,2\r\n3,4\r\n", 0, 2, 2, 1, 4 },
    { "CR only", "1,2\r3,4\r", 0, 2, 2, 1, 4 },
    { "BOM", bom_text, 0, 2, 2, 1, 4 },
    { "no final newline", nul_free_tail, 0, 2, 2, 1, 4 },
    { "whitespace separated", "  1\t2   3\n\t4 5 6  \n", 0, 2, 3, 1, 6 },
    { "semicolons", "1;2\n3;4\n", 0, 2, 2, 1, 4 },
    { "number forms", "+1.5,-.5,2.,1e3,-2.5E-2,0007\n", 0, 1, 6, 1.5f, 7 },
    { "single value", "42", 0, 1, 1, 42, 42 },
    { "comment after header", "a b\n# c\n1 2\n", 0, 1, 2, 1, 2 },
    { "trailing blank lines", "1 2\n\n\n\r\n", 0, 1, 2, 1, 2 },
  };
  for (size_t t = 0; t < G_N_ELEMENTS(cases); t++) {
    const GoodCsv *c = &cases[t];
    CfDataset d;
    CfError err;
    cf_dataset_init(&d);
    cf_error_clear(&err);
    size_t len = c->len ? c->len : strlen(c->text);
    CfStatus st = cf_data_parse_csv(&d, c->text, len, "good.csv", 0, &err);
    if (st != CF_OK)
      g_error("CSV case '%s': %s", c->what, err.msg);
    g_assert_cmpint(d.n, ==, c->n);
    g_assert_cmpint(d.dim, ==, c->dim);
    g_assert_null(d.labels);
    g_assert_cmpint(d.n_classes, ==, 0);
    g_assert_cmpfloat(d.x[0], ==, c->first);
    g_assert_cmpfloat(d.x[d.n * d.dim - 1], ==, c->last);
    cf_dataset_clear(&d);
  }

  /* Values are read exactly as strtod in the C locale would. */
  CfDataset d;
  cf_dataset_init(&d);
  const char *txt = "0.1,3.14159265358979,1e-30,-123456.789\n";
  g_assert_cmpint(cf_data_parse_csv(&d, txt, strlen(txt), NULL, 0, NULL), ==, CF_OK);
  g_assert_true(d.x[0] == 0.1f);
  g_assert_true(d.x[1] == (float)3.14159265358979);
  g_assert_true(d.x[2] == 1e-30f);
  g_assert_true(d.x[3] == -123456.789f);
  /* Embedded length: the text need not be NUL-terminated. */
  const char buf[] = { '7', ',', '8', '\n', '9', ',', '1', '0' };
  g_assert_cmpint(cf_data_parse_csv(&d, buf, sizeof buf, NULL, 0, NULL), ==, CF_OK);
  g_assert_cmpint(d.n, ==, 2);
  g_assert_true(d.x[3] == 10.0f);
  /* A long number token (longer than the internal small buffer). */
  GString *s = g_string_new("0.");
  for (int i = 0; i < 400; i++)
    g_string_append_c(s, '5');
  g_string_append(s, ",1\n");
  g_assert_cmpint(cf_data_parse_csv(&d, s->str, s->len, NULL, 0, NULL), ==, CF_OK);
  g_assert_true(d.x[0] == 0.5555555555f);
  g_string_free(s, TRUE);
  cf_dataset_clear(&d);
}

/* Found by fuzzing (tests/fuzz, target data): FLT_MAX written with %.9g
 * ("3.40282347e+38", as conform's own CSV output writes it) is a little
 * above FLT_MAX as a double and was refused as out of range for single
 * precision. Values that round to a finite float are accepted now; from
 * FLT_MAX + half an ulp on (they round to infinity) they are refused. */
static void
test_csv_float_max(void)
{
  CfDataset d;
  CfError err;
  cf_dataset_init(&d);
  cf_error_clear(&err);
  char buf[64];
  g_snprintf(buf, sizeof buf, "%.9g,%.9g\n3.4028235e38,1\n", (double)FLT_MAX, (double)-FLT_MAX);
  g_assert_cmpstr(buf, ==, "3.40282347e+38,-3.40282347e+38\n3.4028235e38,1\n");
  if (cf_data_parse_csv(&d, buf, strlen(buf), "max.csv", 0, &err) != CF_OK)
    g_error("%s", err.msg);
  g_assert_cmpint(d.n, ==, 2);
  g_assert_true(d.x[0] == FLT_MAX && d.x[1] == -FLT_MAX && d.x[2] == FLT_MAX);
  cf_dataset_clear(&d);
  /* the midpoint to 2^128 and beyond: infinity as a float */
  static const char *const over[] = { "1,3.40282356779733661637539395458142568448e38\n", "1,-3.4028236e38\n" };
  for (size_t i = 0; i < G_N_ELEMENTS(over); i++) {
    g_assert_cmpint(cf_data_parse_csv(&d, over[i], strlen(over[i]), "max.csv", 0, &err), ==, CF_ERR_PARSE);
    g_assert_nonnull(strstr(err.msg, "max.csv:1:3:"));
    g_assert_nonnull(strstr(err.msg, "single precision"));
  }
}

typedef struct {
  const char *what;
  const char *text;
  CfStatus status;
  const char *sub1, *sub2;
} BadCsv;

static void
test_csv_bad(void)
{
  const BadCsv cases[] = {
    { "not a number", "1,2,3\n4,abc,6\n", CF_ERR_PARSE, "bad.csv:2:3: 'abc' is not a number", NULL },
    { "not a number after spaces", "1 2\n3   4x\n", CF_ERR_PARSE, "bad.csv:2:5: '4x' is not a number", NULL },
    { "ragged short", "1,2,3\n4,5\n", CF_ERR_PARSE, "bad.csv:2: row has 2 values, expected 3", NULL },
    { "ragged long", "a,b\n1,2\n3,4,5\n", CF_ERR_PARSE, "bad.csv:3: row has 3 values, expected 2", "header" },
    { "header width", "a,b,c\n1,2\n", CF_ERR_PARSE, "bad.csv:2: row has 2 values, expected 3", NULL },
    { "nan", "1,2\n3,nan\n", CF_ERR_PARSE, "bad.csv:2:3:", "NaN" },
    { "inf first line", "-Inf,2\n", CF_ERR_PARSE, "bad.csv:1:1:", "finite" },
    { "infinity", "1 2\n2 +infinity\n", CF_ERR_PARSE, "bad.csv:2:3:", "finite" },
    { "overflow double", "1e999,2\n", CF_ERR_PARSE, "bad.csv:1:1:", "range" },
    { "overflow float", "1,1e39\n", CF_ERR_PARSE, "bad.csv:1:3:", "single precision" },
    { "empty", "", CF_ERR_PARSE, "bad.csv", "no data" },
    { "only comments", "# nothing\n\n   \n", CF_ERR_PARSE, "bad.csv", "no data" },
    { "header only", "x,y\n", CF_ERR_PARSE, "bad.csv", "no data rows" },
    { "header only with comments", "# c\nx y\n# d\n", CF_ERR_PARSE, "line 2", "no data rows" },
    { "empty cell", "1,,3\n", CF_ERR_PARSE, "bad.csv:1:3: empty value", NULL },
    { "trailing comma", "1,2,\n", CF_ERR_PARSE, "bad.csv:1:4: empty value", NULL },
    { "second header", "x,y\nu,v\n", CF_ERR_PARSE, "bad.csv:2:1: 'u' is not a number", NULL },
    { "hex", "0x10,1\n", CF_ERR_PARSE, NULL, NULL }, /* header: not numeric; then no rows */
    { "hex in data", "1,2\n0x10,1\n", CF_ERR_PARSE, "bad.csv:2:1: '0x10' is not a number", NULL },
    { "comma decimal", "1 2\n1,5 2\n", CF_ERR_PARSE, "bad.csv:2:", "not a number" },
    { "binary", "1,2\n\x01\xff,3\n", CF_ERR_PARSE, "bad.csv:2:1: '\\x01\\xff' is not a number", NULL },
    { "lone sign", "1,2\n-,3\n", CF_ERR_PARSE, "bad.csv:2:1: '-' is not a number", NULL },
    { "lone dot", "1,2\n.,3\n", CF_ERR_PARSE, "bad.csv:2:1:", "not a number" },
    { "exponent without digits", "1,2\n1e,3\n", CF_ERR_PARSE, "bad.csv:2:1: '1e' is not a number", NULL },
    { "CRLF line numbers", "1,2\r\n3,4\r\n5,x\r\n", CF_ERR_PARSE, "bad.csv:3:3: 'x' is not a number", NULL },
    { "BOM column", "\xEF\xBB\xBF" "1,2\n3,y\n", CF_ERR_PARSE, "bad.csv:2:3:", NULL },
  };
  for (size_t t = 0; t < G_N_ELEMENTS(cases); t++) {
    const BadCsv *c = &cases[t];
    CfDataset d;
    CfError err;
    cf_dataset_init(&d);
    cf_error_clear(&err);
    CfStatus st = cf_data_parse_csv(&d, c->text, strlen(c->text), "bad.csv", 0, &err);
    g_test_message("bad CSV '%s': %s", c->what, err.msg);
    if (st != c->status)
      g_error("bad CSV '%s': status %d, expected %d (%s)", c->what, st, c->status, err.msg);
    g_assert_cmpint(err.code, ==, c->status);
    if (c->sub1)
      assert_contains(err.msg, c->sub1);
    if (c->sub2)
      assert_contains(err.msg, c->sub2);
    g_assert_null(d.x);
    g_assert_cmpint(d.n, ==, 0);
  }

  /* A failed parse leaves an existing dataset untouched. */
  CfDataset d;
  cf_dataset_init(&d);
  g_assert_cmpint(cf_data_parse_csv(&d, "5,6\n", 4, NULL, 0, NULL), ==, CF_OK);
  g_assert_cmpint(cf_data_parse_csv(&d, "5,x\n", 4, NULL, 0, NULL), ==, CF_ERR_PARSE);
  g_assert_cmpint(d.n, ==, 1);
  g_assert_true(d.x[1] == 6.0f);
  /* NULL text with length 0 is an empty file. */
  g_assert_cmpint(cf_data_parse_csv(&d, NULL, 0, NULL, 0, NULL), ==, CF_ERR_PARSE);
  cf_dataset_clear(&d);
}

static void
test_csv_limits(void)
{
  CfDataset d;
  CfError err;
  cf_dataset_init(&d);
  const char *three = "x\n1\n2\n3\n";
  g_assert_cmpint(cf_data_parse_csv(&d, three, strlen(three), "lim.csv", 3, &err), ==, CF_OK);
  g_assert_cmpint(d.n, ==, 3);
  g_assert_cmpint(cf_data_parse_csv(&d, three, strlen(three), "lim.csv", 2, &err), ==, CF_ERR_NOMEM);
  assert_contains(err.msg, "lim.csv:4:");
  assert_contains(err.msg, "more than 2");
  g_assert_cmpint(d.n, ==, 3);

  /* dim above CF_DATA_MAX_DIM */
  GString *s = g_string_new(NULL);
  for (int j = 0; j <= CF_DATA_MAX_DIM; j++)
    g_string_append(s, "1 ");
  g_string_append_c(s, '\n');
  g_assert_cmpint(cf_data_parse_csv(&d, s->str, s->len, "wide.csv", 0, &err), ==, CF_ERR_NOMEM);
  assert_contains(err.msg, "wide.csv:1:");
  assert_contains(err.msg, "65536");
  /* exactly the limit is fine */
  g_string_truncate(s, 0);
  for (int j = 0; j < CF_DATA_MAX_DIM; j++)
    g_string_append(s, j ? ",1" : "1");
  g_assert_cmpint(cf_data_parse_csv(&d, s->str, s->len, "wide.csv", 0, &err), ==, CF_OK);
  g_assert_cmpint(d.dim, ==, CF_DATA_MAX_DIM);
  g_string_free(s, TRUE);
  cf_dataset_clear(&d);
}

static char *
write_temp(const char *contents, gssize len)
{
  GError *gerr = NULL;
  char *path = NULL;
  int fd = g_file_open_tmp("conform-test-XXXXXX.csv", &path, &gerr);
  g_assert_no_error(gerr);
  close(fd);
  g_file_set_contents(path, contents, len, &gerr);
  g_assert_no_error(gerr);
  return path;
}

static void
test_csv_files(void)
{
  CfDataset d;
  CfError err;
  cf_dataset_init(&d);

  char *path = write_temp("\xEF\xBB\xBFx;y\r\n# c\r\n1;2\r\n3;4", -1);
  g_assert_cmpint(cf_data_load_csv(&d, path, 0, &err), ==, CF_OK);
  g_assert_cmpint(d.n, ==, 2);
  g_assert_cmpint(d.dim, ==, 2);
  g_assert_true(d.x[3] == 4.0f);
  g_unlink(path);
  g_free(path);

  /* Bad content names the path. */
  path = write_temp("1 2\n3\n", -1);
  g_assert_cmpint(cf_data_load_csv(&d, path, 0, &err), ==, CF_ERR_PARSE);
  char *want = g_strdup_printf("%s:2: row has 1 values, expected 2", path);
  assert_contains(err.msg, want);
  g_free(want);
  g_unlink(path);
  g_free(path);

  /* Missing file and a directory: CF_ERR_IO with path and strerror. */
  const char *missing = "/nonexistent-dir-conform/data.csv";
  g_assert_cmpint(cf_data_load_csv(&d, missing, 0, &err), ==, CF_ERR_IO);
  assert_contains(err.msg, missing);
  assert_contains(err.msg, strerror(ENOENT));
  char *dir = g_dir_make_tmp("conform-test-XXXXXX", NULL);
  g_assert_nonnull(dir);
  g_assert_cmpint(cf_data_load_csv(&d, dir, 0, &err), ==, CF_ERR_IO);
  assert_contains(err.msg, dir);
  g_test_message("directory: %s", err.msg);
  g_rmdir(dir);
  g_free(dir);
  g_assert_cmpint(d.n, ==, 2); /* untouched by the failures */

  /* A large file read in several chunks, with lines split across chunk
   * boundaries and CRLF pairs split between chunks: compare with the
   * in-memory parser on the same bytes, and check values. */
  const int rows = 30000;
  GString *s = g_string_new("# big\r\nidx,value,neg\r\n");
  for (int i = 0; i < rows; i++)
    g_string_append_printf(s, "%d,%.6g,%d%s", i, i * 0.25, -i, (i % 3 == 0) ? "\r\n" : (i % 3 == 1 ? "\n" : "\r"));
  path = write_temp(s->str, (gssize)s->len);
  g_assert_cmpint(cf_data_load_csv(&d, path, 0, &err), ==, CF_OK);
  g_assert_cmpint(d.n, ==, rows);
  g_assert_cmpint(d.dim, ==, 3);
  for (int i = 0; i < rows; i++) {
    g_assert_true(d.x[3 * i] == (float)i);
    g_assert_true(d.x[3 * i + 1] == (float)(i * 0.25)); /* %.6g is exact for these */
    g_assert_true(d.x[3 * i + 2] == (float)-i);
  }
  CfDataset m;
  cf_dataset_init(&m);
  g_assert_cmpint(cf_data_parse_csv(&m, s->str, s->len, path, 0, &err), ==, CF_OK);
  g_assert_cmpint(m.n, ==, d.n);
  g_assert_cmpmem(m.x, (size_t)m.n * 3 * sizeof(float), d.x, (size_t)d.n * 3 * sizeof(float));
  /* max_rows bound with a file */
  g_assert_cmpint(cf_data_load_csv(&m, path, 1000, &err), ==, CF_ERR_NOMEM);
  assert_contains(err.msg, "more than 1000");
  g_unlink(path);
  g_free(path);
  g_string_free(s, TRUE);
  cf_dataset_clear(&m);
  cf_dataset_clear(&d);
}

static void
test_csv_locale(void)
{
  /* The loader must not depend on LC_NUMERIC. Only testable where a locale
   * with a decimal comma is installed. */
  const char *names[] = { "de_DE.UTF-8", "de_DE.utf8", "fr_FR.UTF-8", "fr_FR.utf8" };
  char *old = g_strdup(setlocale(LC_NUMERIC, NULL));
  const char *got = NULL;
  for (size_t i = 0; i < G_N_ELEMENTS(names) && !got; i++)
    got = setlocale(LC_NUMERIC, names[i]);
  if (!got) {
    g_free(old);
    g_test_skip("no locale with a decimal comma installed");
    return;
  }
  CfDataset d;
  cf_dataset_init(&d);
  const char *txt = "1.5 2.25\n";
  CfStatus st = cf_data_parse_csv(&d, txt, strlen(txt), NULL, 0, NULL);
  setlocale(LC_NUMERIC, old);
  g_free(old);
  g_assert_cmpint(st, ==, CF_OK);
  g_assert_true(d.x[0] == 1.5f && d.x[1] == 2.25f);
  cf_dataset_clear(&d);
}

/* Random byte strings, biased towards CSV-like characters, and random
 * mutations of a valid file: the parser must return a status (never crash,
 * never read out of bounds: the input is an exact-size heap copy, so ASan or
 * valgrind catch any overrun; NULL when empty) and, on success, a consistent dataset. */
static void
test_csv_random_bytes(void)
{
  static const char alphabet[] = "0123456789.,;eE+-# \t\r\nnaixyINF\xEF\xBB\xBF\x00\xff";
  CfRng rng;
  cf_rng_seed(&rng, 777);
  const char *valid = "a,b,c\n1.5,2,-3e2\n4,5,6\r\n# c\n7 , 8 , 9\n";
  int ok = 0;
  for (int iter = 0; iter < 20000; iter++) {
    size_t len = (size_t)cf_rng_below(&rng, 64);
    char *buf = g_malloc(len ? len : 1);
    if (iter % 2 == 0) {
      for (size_t i = 0; i < len; i++) {
        if (cf_rng_below(&rng, 8) == 0)
          buf[i] = (char)cf_rng_below(&rng, 256);
        else
          buf[i] = alphabet[cf_rng_below(&rng, sizeof alphabet - 1)];
      }
    } else {
      len = strlen(valid);
      buf = g_realloc(buf, len);
      memcpy(buf, valid, len);
      int flips = 1 + (int)cf_rng_below(&rng, 3);
      for (int f = 0; f < flips; f++)
        buf[cf_rng_below(&rng, len)] = alphabet[cf_rng_below(&rng, sizeof alphabet - 1)];
      len = (size_t)cf_rng_below(&rng, len + 1); /* random truncation */
    }
    CfDataset d;
    CfError err;
    cf_dataset_init(&d);
    cf_error_clear(&err);
    char *exact = g_memdup2(buf, len); /* exact size: overruns are caught */
    CfStatus st = cf_data_parse_csv(&d, exact, len, "fuzz", (int)cf_rng_below(&rng, 4), &err);
    g_free(exact);
    if (st == CF_OK) {
      ok++;
      g_assert_cmpint(d.n, >, 0);
      g_assert_cmpint(d.dim, >, 0);
      for (int i = 0; i < d.n * d.dim; i++)
        g_assert_true(isfinite(d.x[i]));
    } else {
      g_assert_true(st == CF_ERR_PARSE || st == CF_ERR_NOMEM);
      g_assert_cmpuint(strlen(err.msg), >, 0);
      g_assert_true(g_utf8_validate(err.msg, -1, NULL));
      g_assert_null(d.x);
    }
    cf_dataset_clear(&d);
    g_free(buf);
  }
  g_test_message("random CSV inputs: %d of 20000 parsed", ok);
  g_assert_cmpint(ok, >, 0);
}

/* ------------------------------------------------------------------------ */
/* Normalisation                                                            */

static void
test_norm(void)
{
  CfDataset d;
  CfNorm nm;
  CfError err;
  cf_dataset_init(&d);
  cf_norm_init(&nm);
  /* flow-network has large-ish values; add a constant column by hand. */
  g_assert_cmpint(cf_dataset_alloc(&d, 500, 4, false, &err), ==, CF_OK);
  CfRng rng;
  cf_rng_seed(&rng, 31);
  for (int i = 0; i < d.n; i++) {
    d.x[4 * i + 0] = (float)(3.0 + 2.0 * cf_rng_normal(&rng));
    d.x[4 * i + 1] = 10.0f; /* constant, e.g. a fixed supply */
    d.x[4 * i + 2] = (float)(-1000.0 + 0.01 * cf_rng_normal(&rng));
    d.x[4 * i + 3] = (float)(1e-3 * cf_rng_uniform(&rng));
  }
  g_assert_cmpint(cf_norm_fit(&nm, &d, &err), ==, CF_OK);
  g_assert_cmpint(nm.dim, ==, 4);
  g_assert_true(nm.scale[1] == 1.0f);
  g_assert_true(nm.mean[1] == 10.0f);
  g_assert_cmpfloat(fabs(nm.mean[0] - 3.0), <, 0.3);
  g_assert_cmpfloat(fabs(nm.scale[0] - 2.0), <, 0.2);
  /* -1000 +- 0.01: std 1e-2 > 1e-6 (1 + 1000) so it is standardised */
  g_assert_cmpfloat(nm.scale[2], <, 0.02);
  g_assert_cmpfloat(nm.scale[2], !=, 1.0f);
  g_assert_cmpfloat(nm.scale[3], <, 1e-3);
  for (int j = 0; j < 4; j++)
    g_assert_cmpfloat(nm.scale[j], >, 0.0f);

  size_t cnt = (size_t)d.n * 4;
  float *u = g_memdup2(d.x, cnt * sizeof(float));
  cf_norm_apply(&nm, u, d.n);
  /* standardised: mean ~0, var ~1 (constant column: exactly 0) */
  for (int j = 0; j < 4; j++) {
    double s = 0.0, s2 = 0.0;
    for (int i = 0; i < d.n; i++) {
      s += u[4 * i + j];
      s2 += (double)u[4 * i + j] * u[4 * i + j];
    }
    double mean = s / d.n, var = s2 / d.n - mean * mean;
    /* the mean is stored in float: at -1000 its rounding (3e-5) is 3e-3 of
     * the column's std 0.01 */
    g_assert_cmpfloat(fabs(mean), <, 5e-3);
    if (j == 1)
      g_assert_cmpfloat(s2, ==, 0.0);
    else
      g_assert_cmpfloat(fabs(var - 1.0), <, 1e-3);
  }
  cf_norm_invert(&nm, u, d.n);
  double worst = 0.0;
  for (size_t i = 0; i < cnt; i++) {
    int j = (int)(i % 4);
    double tol = 4.0 * FLT_EPSILON * (fabs(d.x[i]) + fabs(nm.mean[j]) + nm.scale[j]);
    double e = fabs((double)u[i] - d.x[i]);
    worst = fmax(worst, e / tol);
    g_assert_cmpfloat(e, <=, tol);
  }
  g_test_message("norm round trip: worst error %.3f of the tolerance", worst);
  for (int i = 0; i < d.n; i++)
    g_assert_true(u[4 * i + 1] == 10.0f); /* constant coordinate exact */
  g_free(u);

  /* set: validation and copy */
  const float mean[2] = { 1.0f, -2.0f }, scale[2] = { 2.0f, 0.5f }, bad[2] = { 1.0f, 0.0f };
  const float nanv[2] = { NAN, 0.0f };
  g_assert_cmpint(cf_norm_set(&nm, 2, mean, bad, &err), ==, CF_ERR_INVALID);
  assert_contains(err.msg, "scale[1]");
  g_assert_cmpint(nm.dim, ==, 4); /* untouched */
  g_assert_cmpint(cf_norm_set(&nm, 2, nanv, scale, &err), ==, CF_ERR_INVALID);
  g_assert_cmpint(cf_norm_set(&nm, 0, mean, scale, &err), ==, CF_ERR_INVALID);
  g_assert_cmpint(cf_norm_set(&nm, 2, mean, scale, &err), ==, CF_OK);
  g_assert_cmpint(nm.dim, ==, 2);
  float x[4] = { 3.0f, -1.0f, 1.0f, -2.0f };
  cf_norm_apply(&nm, x, 2);
  g_assert_true(x[0] == 1.0f && x[1] == 2.0f && x[2] == 0.0f && x[3] == 0.0f);
  cf_norm_invert(&nm, x, 2);
  g_assert_true(x[0] == 3.0f && x[1] == -1.0f && x[2] == 1.0f && x[3] == -2.0f);
  cf_norm_apply(&nm, x, 0); /* no rows: no-op */

  /* fit errors: empty and non-finite data */
  CfDataset e;
  cf_dataset_init(&e);
  g_assert_cmpint(cf_norm_fit(&nm, &e, &err), ==, CF_ERR_INVALID);
  g_assert_cmpint(cf_dataset_alloc(&e, 2, 1, false, &err), ==, CF_OK);
  e.x[0] = INFINITY;
  g_assert_cmpint(cf_norm_fit(&nm, &e, &err), ==, CF_ERR_NUMERIC);
  g_assert_cmpint(nm.dim, ==, 2);
  cf_dataset_clear(&e);

  /* Generated data round-trips too, and a constant column produced by a
   * generator-like source keeps scale 1. */
  generate(&d, "flow-network", 2000, 3);
  g_assert_cmpint(cf_norm_fit(&nm, &d, &err), ==, CF_OK);
  cnt = (size_t)d.n * (size_t)d.dim;
  u = g_memdup2(d.x, cnt * sizeof(float));
  cf_norm_apply(&nm, u, d.n);
  cf_norm_invert(&nm, u, d.n);
  for (size_t i = 0; i < cnt; i++) {
    int j = (int)(i % (size_t)d.dim);
    double tol = 4.0 * FLT_EPSILON * (fabs(d.x[i]) + fabs(nm.mean[j]) + nm.scale[j]);
    g_assert_cmpfloat(fabs((double)u[i] - d.x[i]), <=, tol);
  }
  g_free(u);
  cf_norm_clear(&nm);
  cf_norm_clear(&nm);
  cf_dataset_clear(&d);
}

/* ring and sphere-shell lie on the unit circle / sphere to float round-off,
 * with their mixture weights. */
static void
test_ring_sphere(void)
{
  static const struct { const char *name; int dim, K; double w[4]; } cases[] = {
    {"ring", 2, 3, {0.5, 0.3, 0.2}},
    {"sphere-shell", 3, 4, {0.4, 0.3, 0.2, 0.1}},
  };
  for (size_t c = 0; c < G_N_ELEMENTS(cases); c++) {
    CfDataset d;
    cf_dataset_init(&d);
    const int n = 20000;
    generate(&d, cases[c].name, n, 3);
    g_assert_cmpint(d.n_classes, ==, cases[c].K);
    double worst = 0;
    int counts[4] = {0};
    for (int i = 0; i < n; i++) {
      double r2 = 0;
      for (int k = 0; k < cases[c].dim; k++)
        r2 += (double)d.x[i * cases[c].dim + k] * d.x[i * cases[c].dim + k];
      worst = fmax(worst, fabs(r2 - 1.0));
      counts[d.labels[i]]++;
    }
    g_assert_cmpfloat(worst, <, 1e-6);
    for (int k = 0; k < cases[c].K; k++) /* within 5 standard errors */
      g_assert_cmpfloat(fabs((double)counts[k] / n - cases[c].w[k]), <,
                        5 * sqrt(cases[c].w[k] * (1 - cases[c].w[k]) / n));
    cf_dataset_clear(&d);
  }
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/data/generators/table", test_generator_table);
  g_test_add_func("/data/generators/ring-sphere", test_ring_sphere);
  g_test_add_func("/data/generators/shape-determinism", test_generator_shape_determinism);
  g_test_add_func("/data/generators/errors", test_generator_errors);
  g_test_add_func("/data/generators/gaussians", test_gaussians_stats);
  g_test_add_func("/data/generators/moons", test_moons_stats);
  g_test_add_func("/data/generators/checkerboard", test_checkerboard_stats);
  g_test_add_func("/data/generators/spiral", test_spiral_stats);
  g_test_add_func("/data/generators/constraints-hold", test_constraints_hold);
  g_test_add_func("/data/generators/process-units", test_process_units);
  g_test_add_func("/data/generators/simplex-3d", test_simplex3d);
  g_test_add_func("/data/generators/charge-neutral", test_charge_neutral);
  g_test_add_func("/data/generators/flow-network", test_flow_network);
  g_test_add_func("/data/generators/portfolio", test_portfolio);
  g_test_add_func("/data/csv/good", test_csv_good);
  g_test_add_func("/data/csv/bad", test_csv_bad);
  g_test_add_func("/data/csv/float-max", test_csv_float_max);
  g_test_add_func("/data/csv/limits", test_csv_limits);
  g_test_add_func("/data/csv/files", test_csv_files);
  g_test_add_func("/data/csv/locale", test_csv_locale);
  g_test_add_func("/data/csv/random-bytes", test_csv_random_bytes);
  g_test_add_func("/data/norm", test_norm);
  return g_test_run();
}
