#define G_LOG_DOMAIN "conform"

#include "conform-image-data.h"

#include <string.h>

#include "conform-images.h"
#include "rng.h"

#define BRIGHTNESS_PER_PIXEL 0.25

#define SUPERRES "fashion-superres"
#define FOLDER_MIN_IMAGES 20
#define FOLDER_MAX_WARNED 10

gboolean
conform_image_source_is_folder(const char *name)
{
  /* a built-in name wins over a directory of that name in the working directory */
  return name && name[0] != '\0' && !cf_data_generator_find(name) && conform_image_source_inputs(name) == 0 &&
         g_strcmp0(name, "fashion-mnist") != 0 && g_strcmp0(name, "fashion-brightness") != 0 &&
         g_strcmp0(name, "fashion-symmetric") != 0 && g_file_test(name, G_FILE_TEST_IS_DIR);
}

gboolean
conform_image_source_is(const char *name)
{
  return g_strcmp0(name, "fashion-mnist") == 0 || g_strcmp0(name, "fashion-brightness") == 0 ||
         g_strcmp0(name, "fashion-symmetric") == 0 || g_strcmp0(name, SUPERRES) == 0 ||
         conform_image_source_is_folder(name);
}

int
conform_image_source_inputs(const char *name)
{
  return g_strcmp0(name, SUPERRES) == 0 ? CONFORM_SUPERRES_THUMB * CONFORM_SUPERRES_THUMB : 0;
}

int
conform_image_row_offset(int dim, int size)
{
  return dim - size * size;
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

/* Rows [t | y] of d: each image y (size x size) preceded by its 7 x 7
 * thumbnail t, the means over (size / 7)^2 blocks (in double, stored as
 * float, so the data meet the superres constraint to float round-off). */
static gboolean
with_thumbnails(CfDataset *d, int size, GError **error)
{
  const int T = CONFORM_SUPERRES_THUMB, nt = T * T, f = size / T, dim = size * size;
  CF_ASSERT(size % T == 0 && d->dim == dim);
  CfDataset out;
  CfError err;
  cf_dataset_init(&out);
  if (cf_dataset_alloc(&out, d->n, nt + dim, d->labels != NULL, &err) != CF_OK) {
    g_set_error_literal(error, CONFORM_ERROR, CONFORM_ERROR_INPUT, err.msg);
    return FALSE;
  }
  for (int i = 0; i < d->n; i++) {
    const float *y = d->x + (gsize)i * dim;
    float *row = out.x + (gsize)i * (nt + dim);
    for (int r = 0; r < T; r++)
      for (int c = 0; c < T; c++) {
        double s = 0;
        for (int a = 0; a < f; a++)
          for (int b = 0; b < f; b++)
            s += y[(r * f + a) * size + c * f + b];
        row[r * T + c] = (float)(s / (f * f));
      }
    memcpy(row + nt, y, sizeof(float) * dim);
    if (d->labels)
      out.labels[i] = d->labels[i];
  }
  out.n_classes = d->n_classes;
  cf_dataset_clear(d);
  *d = out;
  return TRUE;
}

/* "DIR: skipped N unreadable files: a: reason; b: reason; ..." (at most
 * FOLDER_MAX_WARNED named), or NULL. */
static char *
skipped_warning(const char *dir, GPtrArray *skipped)
{
  if (!skipped || skipped->len == 0)
    return NULL;
  GString *w = g_string_new(NULL);
  g_string_append_printf(w, "%s: skipped %u file%s that could not be read as images: ", dir, skipped->len,
                         skipped->len == 1 ? "" : "s");
  for (guint i = 0; i < skipped->len && i < FOLDER_MAX_WARNED; i++)
    g_string_append_printf(w, "%s%s", i ? "; " : "", (const char *)g_ptr_array_index(skipped, i));
  if (skipped->len > FOLDER_MAX_WARNED)
    g_string_append_printf(w, "; and %u more", skipped->len - FOLDER_MAX_WARNED);
  return g_string_free(w, FALSE);
}

/* A folder of PNGs: shuffled by the seed, 10% (1 .. n_ref) held out. */
static gboolean
folder_load(const ConformConfig *cfg, CfDataset *train, CfDataset *ref, char **warnings, GError **error)
{
  CfImageSet all;
  cf_image_set_init(&all);
  g_autoptr(GPtrArray) skipped = NULL;
  if (!conform_png_folder_import(cfg->data, cfg->image_size, &all, &skipped, error))
    return FALSE;
  *warnings = skipped_warning(cfg->data, skipped);
  if (all.n < FOLDER_MIN_IMAGES) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_INPUT,
                "%s: only %d usable PNG image%s; at least %d are needed (one in ten is held out for the metrics)%s%s",
                cfg->data, all.n, all.n == 1 ? "" : "s", FOLDER_MIN_IMAGES, *warnings ? "; " : "",
                *warnings ? *warnings : "");
    g_clear_pointer(warnings, g_free);
    cf_image_set_clear(&all);
    return FALSE;
  }
  int *perm = g_new(int, all.n);
  for (int i = 0; i < all.n; i++)
    perm[i] = i;
  CfRng rng;
  cf_rng_seed_stream(&rng, cfg->seed, 1);
  for (int i = all.n - 1; i > 0; i--) {
    int j = (int)cf_rng_below(&rng, (uint64_t)i + 1), t = perm[i];
    perm[i] = perm[j];
    perm[j] = t;
  }
  int n_ref = CLAMP(all.n / 10, 1, cfg->n_ref), n_train = all.n - n_ref;
  gboolean ok = take_rows(train, &all, perm + n_ref, n_train, error) && take_rows(ref, &all, perm, n_ref, error);
  g_free(perm);
  cf_image_set_clear(&all);
  if (!ok)
    g_clear_pointer(warnings, g_free);
  return ok;
}

gboolean
conform_image_source_load(const ConformConfig *cfg, CfDataset *train, CfDataset *ref, char **warnings,
                          GError **error)
{
  *warnings = NULL;
  if (conform_image_source_is_folder(cfg->data))
    return folder_load(cfg, train, ref, warnings, error);
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
    if (ok && g_strcmp0(cfg->data, SUPERRES) == 0)
      ok = with_thumbnails(train, size, error) && with_thumbnails(ref, size, error);
  }
  cf_image_set_clear(&tr);
  cf_image_set_clear(&te);
  return ok;
}

gboolean
conform_image_source_constraint(const char *name, int size, CfConstraint *c, GError **error)
{
  int d = size * size;
  int m;
  double *A, *b;
  if (g_strcmp0(name, SUPERRES) == 0) {
    /* row r: -t_r + mean of block r of the image = 0 */
    const int T = CONFORM_SUPERRES_THUMB, nt = T * T, f = size / T, img = d;
    m = nt;
    d = nt + img;
    A = g_new0(double, (gsize)m * d);
    b = g_new0(double, m);
    for (int r = 0; r < T; r++)
      for (int q = 0; q < T; q++) {
        double *row = A + (gsize)(r * T + q) * d;
        row[r * T + q] = -1.0;
        for (int a = 0; a < f; a++)
          for (int e = 0; e < f; e++)
            row[nt + (r * f + a) * size + q * f + e] = 1.0 / (f * f);
      }
  } else if (g_strcmp0(name, "fashion-brightness") == 0) {
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

/* ---- samples.png ----------------------------------------------------------- */

#define GRID_COLS 8
#define FRAME_THUMB 0x0072B2u /* Okabe-Ito blue: the given input */
#define FRAME_NONE 0x808080u  /* the grid's separator grey: no visible frame */
#define BLANK_VALUE (128.0f / 255.0f)

void
conform_image_thumbnail_upscale(const float *thumb, int size, float *out)
{
  const int T = CONFORM_SUPERRES_THUMB, f = MAX(size / T, 1);
  for (int y = 0; y < size; y++)
    for (int x = 0; x < size; x++)
      out[y * size + x] = thumb[MIN(y / f, T - 1) * T + MIN(x / f, T - 1)];
}

gboolean
conform_image_samples_write_png(const char *path, const float *rows, int n, int dim, int size, int inputs,
                                const guint32 *frame_rgb, GError **error)
{
  const int d = size * size, off = conform_image_row_offset(dim, size);
  g_return_val_if_fail(path && rows && n > 0 && off >= 0 && inputs <= off, FALSE);
  if (inputs != CONFORM_SUPERRES_THUMB * CONFORM_SUPERRES_THUMB || size % CONFORM_SUPERRES_THUMB != 0) {
    float *img = g_new(float, (gsize)n * d);
    for (int i = 0; i < n; i++)
      memcpy(img + (gsize)i * d, rows + (gsize)i * dim + off, sizeof(float) * d);
    gboolean ok = conform_image_grid_write_png(path, img, n, size, size, MIN(n, GRID_COLS), 0.0f, 1.0f, frame_rgb, 2,
                                               error);
    g_free(img);
    return ok;
  }
  /* groups of samples with the same thumbnail, in order of first appearance;
   * next[i]: the group's next sample after i (n at the end) */
  int *next = g_new(int, n), *first = g_new(int, n), *last = g_new(int, n), n_groups = 0;
  GHashTable *seen = g_hash_table_new_full(g_bytes_hash, g_bytes_equal, (GDestroyNotify)g_bytes_unref, NULL);
  for (int i = 0; i < n; i++) {
    GBytes *key = g_bytes_new_static(rows + (gsize)i * dim, sizeof(float) * inputs);
    gpointer gp;
    next[i] = n;
    if (g_hash_table_lookup_extended(seen, key, NULL, &gp)) {
      int g = GPOINTER_TO_INT(gp);
      next[last[g]] = i;
      last[g] = i;
      g_bytes_unref(key);
    } else {
      first[n_groups] = last[n_groups] = i;
      g_hash_table_insert(seen, key, GINT_TO_POINTER(n_groups++));
    }
  }
  g_hash_table_unref(seen);
  GArray *cells = g_array_new(FALSE, FALSE, sizeof(float) * d);
  GArray *frames = g_array_new(FALSE, FALSE, sizeof(guint32));
  float *cell = g_new(float, d);
  int col = 0;
  for (int g = 0; g < n_groups; g++) {
    const float *thumb = rows + (gsize)first[g] * dim;
    for (int i = first[g]; i < n;) {
      if (col > 0 && GRID_COLS - col < 2) { /* no room for thumbnail + sample: next grid row */
        for (int k = 0; k < d; k++)
          cell[k] = BLANK_VALUE;
        for (; col < GRID_COLS; col++) {
          g_array_append_vals(cells, cell, 1);
          g_array_append_val(frames, (guint32){FRAME_NONE});
        }
        col = 0;
      }
      conform_image_thumbnail_upscale(thumb, size, cell);
      g_array_append_vals(cells, cell, 1);
      g_array_append_val(frames, (guint32){FRAME_THUMB});
      for (col++; i < n && col < GRID_COLS; i = next[i], col++) {
        g_array_append_vals(cells, rows + (gsize)i * dim + off, 1);
        g_array_append_val(frames, (guint32){frame_rgb ? frame_rgb[i] : FRAME_NONE});
      }
      col %= GRID_COLS;
    }
  }
  gboolean ok = conform_image_grid_write_png(path, (const float *)cells->data, (int)cells->len, size, size,
                                             MIN((int)cells->len, GRID_COLS), 0.0f, 1.0f,
                                             (const guint32 *)frames->data, 2, error);
  g_free(cell);
  g_free(next);
  g_free(first);
  g_free(last);
  g_array_unref(cells);
  g_array_unref(frames);
  return ok;
}
