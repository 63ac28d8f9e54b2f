#define G_LOG_DOMAIN "conform"

#include "conform-image-data.h"

#include <string.h>

#include "conform-images.h"
#include "rng.h"

#define BRIGHTNESS_PER_PIXEL 0.25

gboolean
conform_image_source_is(const char *name)
{
  return g_strcmp0(name, "fashion-mnist") == 0 || g_strcmp0(name, "fashion-brightness") == 0 ||
         g_strcmp0(name, "fashion-symmetric") == 0;
}

/* The source's transform, in place on n images of size x size. */
static void
transform(const char *name, float *x, int n, int size)
{
  const int d = size * size;
  if (g_strcmp0(name, "fashion-brightness") == 0) {
    const double c = BRIGHTNESS_PER_PIXEL * d;
    for (int i = 0; i < n; i++) {
      float *r = x + (gsize)i * d;
      double s = 0;
      for (int j = 0; j < d; j++)
        s += r[j];
      if (s <= 0) { /* a black image: spread the intensity evenly */
        for (int j = 0; j < d; j++)
          r[j] = (float)(c / d);
        continue;
      }
      /* scale, then put the float rounding of the sum on the largest pixel */
      double t = 0;
      int jmax = 0;
      for (int j = 0; j < d; j++) {
        r[j] = (float)(r[j] * (c / s));
        t += r[j];
        if (r[j] > r[jmax])
          jmax = j;
      }
      r[jmax] = (float)(r[jmax] + (c - t));
    }
  } else if (g_strcmp0(name, "fashion-symmetric") == 0) {
    for (int i = 0; i < n; i++)
      for (int y = 0; y < size; y++) {
        float *row = x + (gsize)i * d + (gsize)y * size;
        for (int j = 0; j < size / 2; j++) {
          float v = 0.5f * (row[j] + row[size - 1 - j]);
          row[j] = row[size - 1 - j] = v;
        }
      }
  }
}

/* rows of set (in the order idx) into d, with labels */
static gboolean
take_rows(CfDataset *d, const CfImageSet *s, const int *idx, int n, GError **error)
{
  CfError err;
  const int dim = s->C * s->H * s->W;
  if (cf_dataset_alloc(d, n, dim, s->labels != NULL, &err) != CF_OK) {
    g_set_error_literal(error, CONFORM_ERROR, CONFORM_ERROR_INPUT, err.msg);
    return FALSE;
  }
  for (int i = 0; i < n; i++) {
    int k = idx ? idx[i] : i;
    memcpy(d->x + (gsize)i * dim, s->pixels + (gsize)k * dim, sizeof(float) * dim);
    if (s->labels)
      d->labels[i] = s->labels[k];
  }
  d->n_classes = s->n_classes;
  return TRUE;
}

gboolean
conform_image_source_load(const ConformConfig *cfg, CfDataset *train, CfDataset *ref, GError **error)
{
  const int size = cfg->image_size, down = 28 / size;
  CfImageSet tr, te;
  cf_image_set_init(&tr);
  cf_image_set_init(&te);
  gboolean ok = conform_fashion_mnist_load(NULL, TRUE, down, &tr, error) &&
                conform_fashion_mnist_load(NULL, FALSE, down, &te, error);
  if (ok) {
    int n_train = MIN(cfg->n_train, tr.n), n_ref = MIN(cfg->n_ref, te.n);
    int *perm = g_new(int, tr.n);
    for (int i = 0; i < tr.n; i++)
      perm[i] = i;
    CfRng rng;
    cf_rng_seed_stream(&rng, cfg->seed, 1);
    for (int i = tr.n - 1; i > 0; i--) {
      int j = (int)cf_rng_below(&rng, (uint64_t)i + 1), t = perm[i];
      perm[i] = perm[j];
      perm[j] = t;
    }
    ok = take_rows(train, &tr, perm, n_train, error) && take_rows(ref, &te, NULL, n_ref, error);
    g_free(perm);
    if (ok) {
      transform(cfg->data, train->x, train->n, size);
      transform(cfg->data, ref->x, ref->n, size);
    }
  }
  cf_image_set_clear(&tr);
  cf_image_set_clear(&te);
  return ok;
}

gboolean
conform_image_source_constraint(const char *name, int size, CfConstraint *c, GError **error)
{
  const int d = size * size;
  int m;
  double *A, *b;
  if (g_strcmp0(name, "fashion-brightness") == 0) {
    m = 1;
    A = g_new(double, d);
    b = g_new(double, 1);
    for (int j = 0; j < d; j++)
      A[j] = 1.0;
    b[0] = BRIGHTNESS_PER_PIXEL * d;
  } else if (g_strcmp0(name, "fashion-symmetric") == 0) {
    m = size * (size / 2);
    A = g_new0(double, (gsize)m * d);
    b = g_new0(double, m);
    int r = 0;
    for (int y = 0; y < size; y++)
      for (int j = 0; j < size / 2; j++, r++) {
        A[(gsize)r * d + y * size + j] = 1.0;
        A[(gsize)r * d + y * size + size - 1 - j] = -1.0;
      }
  } else {
    return FALSE;
  }
  CfError err;
  gboolean ok = cf_constraint_set(c, m, d, A, b, &err) == CF_OK;
  if (!ok)
    g_set_error_literal(error, CONFORM_ERROR, CONFORM_ERROR_INPUT, err.msg);
  g_free(A);
  g_free(b);
  return ok;
}
