/* End-to-end tests of `conform compare`, running the real binary like
 * test_cli.c: outputs, the shared model of sampling-time strategies, the
 * figure's size, and the usage and runtime errors. */
#include <cairo.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "conform-figure.h"
#include "conform-images.h"

#include "cli-run.h"

/* comparison.tsv without its '#' lines: header fields and rows of fields. */
typedef struct {
  GStrv header;
  GPtrArray *rows; /* GStrv */
} Table;

static void
table_clear(Table *t)
{
  g_strfreev(t->header);
  g_ptr_array_unref(t->rows);
}

static Table
read_table(const char *dir)
{
  g_autofree char *path = g_build_filename(dir, "comparison.tsv", NULL);
  g_autofree char *text = NULL;
  g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
  g_assert_true(g_str_has_prefix(text, "# ")); /* settings stated first */
  Table t = {NULL, g_ptr_array_new_with_free_func((GDestroyNotify)g_strfreev)};
  g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
  for (char **l = lines; *l; l++) {
    if (**l == '#' || **l == '\0')
      continue;
    if (!t.header)
      t.header = g_strsplit(*l, "\t", -1);
    else
      g_ptr_array_add(t.rows, g_strsplit(*l, "\t", -1));
  }
  g_assert_nonnull(t.header);
  g_assert_cmpstr(t.header[0], ==, "strategy");
  for (guint i = 0; i < t.rows->len; i++)
    g_assert_cmpuint(g_strv_length(t.rows->pdata[i]), ==, g_strv_length(t.header));
  return t;
}

static const char *
cell(const Table *t, int row, const char *column)
{
  for (int j = 0; t->header[j]; j++)
    if (strcmp(t->header[j], column) == 0)
      return ((char **)t->rows->pdata[row])[j];
  g_error("comparison.tsv has no column %s", column);
  return NULL;
}

static double
value(const Table *t, int row, const char *column)
{
  return g_ascii_strtod(cell(t, row, column), NULL);
}

static void
assert_png(const char *dir, int n_columns)
{
  g_autofree char *path = g_build_filename(dir, "comparison.png", NULL);
  cairo_surface_t *s = cairo_image_surface_create_from_png(path);
  g_assert_cmpint(cairo_surface_status(s), ==, CAIRO_STATUS_SUCCESS);
  g_assert_cmpint(cairo_image_surface_get_width(s), ==, n_columns * CONFORM_FIGURE_COLUMN_WIDTH);
  g_assert_cmpint(cairo_image_surface_get_height(s), ==, CONFORM_FIGURE_HEIGHT);
  cairo_surface_destroy(s);
}

static int
count(const char *haystack, const char *needle)
{
  int n = 0;
  for (const char *p = strstr(haystack, needle); p; p = strstr(p + 1, needle))
    n++;
  return n;
}

static void
test_ddpm(void)
{
  g_autofree char *dir = tmp_path("ddpm");
  Run r = run("compare", "--preset", "simplex-3d", "--strategies", "projection,none,projected-sampling", "--steps",
              "300", "--samples", "400", "--seed", "3", "--out", dir, NULL);
  if (r.status != 0)
    g_error("compare failed: %s", r.err);
  /* one trained model for the three sampling-time strategies */
  g_assert_cmpint(count(r.err, "training ddpm"), ==, 1);
  g_assert_cmpint(count(r.err, "sampling "), ==, 3);
  g_assert_nonnull(strstr(r.out, "projected-sampling"));
  Table t = read_table(dir);
  const char *columns[] = {"violation_mean", "violation_median", "violation_max", "frac_satisfied", "energy_distance",
                           "mmd", "train_seconds", "sample_ms"};
  for (guint i = 0; i < G_N_ELEMENTS(columns); i++)
    g_assert_true(g_strv_contains((const char *const *)t.header, columns[i]));
  g_assert_false(g_strv_contains((const char *const *)t.header, "test_ll"));
  g_assert_cmpuint(t.rows->len, ==, 3);
  const char *order[] = {"projection", "none", "projected-sampling"};
  for (int i = 0; i < 3; i++) {
    g_assert_cmpstr(cell(&t, i, "strategy"), ==, order[i]);
    g_assert_cmpstr(cell(&t, i, "trained_with"), ==, "none");
    g_assert_cmpfloat(value(&t, i, "n_samples"), ==, 400);
    g_assert_cmpstr(cell(&t, i, "train_seconds"), ==, cell(&t, 0, "train_seconds"));
    g_assert_true(isfinite(value(&t, i, "energy_distance")));
    g_assert_cmpfloat(value(&t, i, "sample_ms"), >, 0);
  }
  g_assert_cmpfloat(value(&t, 0, "violation_max"), <, 1e-5);
  g_assert_cmpfloat(value(&t, 2, "violation_max"), <, 1e-5);
  g_assert_cmpfloat(value(&t, 1, "violation_max"), >, 1e-2);
  g_assert_cmpfloat(value(&t, 0, "frac_satisfied"), ==, 1);
  g_assert_cmpfloat(value(&t, 1, "frac_satisfied"), <, 0.5);
  table_clear(&t);
  assert_png(dir, 3);
  run_clear(&r);
}

static void
test_vae(void)
{
  g_autofree char *dir = tmp_path("vae");
  Run r = run("compare", "--preset", "simplex-3d", "--model", "vae", "--strategies", "none,projection,cgauss",
              "--steps", "300", "--samples", "300", "--out", dir, NULL);
  if (r.status != 0)
    g_error("compare failed: %s", r.err);
  g_assert_cmpint(count(r.err, "training vae"), ==, 2); /* none + projection share one */
  Table t = read_table(dir);
  const char *columns[] = {"test_ll", "elbo", "recon", "iw_k"};
  for (guint i = 0; i < G_N_ELEMENTS(columns); i++)
    g_assert_true(g_strv_contains((const char *const *)t.header, columns[i]));
  g_assert_cmpuint(t.rows->len, ==, 3);
  g_assert_cmpstr(cell(&t, 0, "strategy"), ==, "none");
  g_assert_cmpstr(cell(&t, 1, "strategy"), ==, "projection");
  g_assert_cmpstr(cell(&t, 2, "strategy"), ==, "cgauss");
  g_assert_cmpstr(cell(&t, 1, "trained_with"), ==, "none");
  g_assert_cmpstr(cell(&t, 2, "trained_with"), ==, "cgauss");
  /* the same model: same training time and likelihoods */
  g_assert_cmpstr(cell(&t, 0, "train_seconds"), ==, cell(&t, 1, "train_seconds"));
  g_assert_cmpstr(cell(&t, 0, "test_ll"), ==, cell(&t, 1, "test_ll"));
  g_assert_cmpfloat(value(&t, 0, "iw_k"), >, 1);
  g_assert_cmpfloat(value(&t, 0, "violation_max"), >, 1e-3);
  g_assert_cmpfloat(value(&t, 1, "violation_max"), <, 1e-5);
  g_assert_cmpfloat(value(&t, 2, "violation_max"), <, 1e-5);
  g_assert_true(isfinite(value(&t, 2, "test_ll")));
  table_clear(&t);
  assert_png(dir, 3);
  run_clear(&r);
}

static guint32
pixel_at(cairo_surface_t *s, int x, int y)
{
  const unsigned char *d = cairo_image_surface_get_data(s);
  return *(const guint32 *)(d + (gsize)y * cairo_image_surface_get_stride(s) + 4 * (gsize)x) & 0xffffff;
}

/* Image data: comparison.png shows each strategy's images as a grid, framed
 * by violation with sample.annotate (none violates, projection does not). */
static void
test_images(void)
{
  g_autofree char *probe = g_build_filename(CONFORM_FASHION_MNIST_DIR, "t10k-images-idx3-ubyte.gz", NULL);
  if (!g_file_test(probe, G_FILE_TEST_EXISTS)) {
    g_test_skip("Fashion-MNIST is not installed (package dataset-fashion-mnist)");
    return;
  }
  g_autofree char *dir = tmp_path("images");
  Run r = run("compare", "--preset", "fashion-brightness", "--model", "vae", "--strategies", "none,projection,cgauss",
              "--steps", "20", "--samples", "16", "--set", "data.n_train=500", "--set", "data.n_ref=100", "--set",
              "eval.max_n=100", "--set", "sample.annotate=1", "--out", dir, NULL);
  if (r.status != 0)
    g_error("compare failed: %s", r.err);
  assert_png(dir, 3);
  /* the image VAE's exactly conditioned decoder: exact samples, a finite
   * subspace likelihood and the classifier's metrics */
  Table t = read_table(dir);
  g_assert_cmpstr(cell(&t, 2, "strategy"), ==, "cgauss");
  g_assert_cmpfloat(value(&t, 0, "violation_max"), >, 1.0);
  g_assert_cmpfloat(value(&t, 2, "violation_max"), <, 1e-4);
  g_assert_true(isfinite(value(&t, 2, "test_ll_subspace")));
  g_assert_true(isfinite(value(&t, 2, "fd_classifier")));
  table_clear(&t);
  g_autofree char *path = g_build_filename(dir, "comparison.png", NULL);
  cairo_surface_t *s = cairo_image_surface_create_from_png(path);
  cairo_surface_flush(s);
  /* the first cell of each column: 14 x 14 images at 2x in 28 px cells,
   * the 8-wide grid centred in the column, 2 px gaps, from y = 76 */
  const int grid_left = (CONFORM_FIGURE_COLUMN_WIDTH - 8 * 30 - 2) / 2, cx = grid_left + 2, cy = 76 + 2;
  g_assert_cmphex(pixel_at(s, cx - 1, cy + 10), ==, 0xD55E00);                               /* none: violated */
  g_assert_cmphex(pixel_at(s, CONFORM_FIGURE_COLUMN_WIDTH + cx - 1, cy + 10), ==, 0x009E73); /* projection */
  /* inside the cells: gray pixels, not all one value (an image, not a fill) */
  g_assert_cmphex(pixel_at(s, 2 * CONFORM_FIGURE_COLUMN_WIDTH + cx - 1, cy + 10), ==, 0x009E73); /* cgauss */
  for (int c = 0; c < 3; c++) {
    guint32 first = pixel_at(s, c * CONFORM_FIGURE_COLUMN_WIDTH + cx, cy);
    gboolean varies = FALSE;
    for (int y = 0; y < 28; y++)
      for (int x = 0; x < 28; x++) {
        guint32 p = pixel_at(s, c * CONFORM_FIGURE_COLUMN_WIDTH + cx + x, cy + y);
        g_assert_cmphex(p & 0xff, ==, (p >> 8) & 0xff);
        g_assert_cmphex(p & 0xff, ==, (p >> 16) & 0xff);
        varies = varies || p != first;
      }
    g_assert_true(varies);
  }
  cairo_surface_destroy(s);
  run_clear(&r);
}

/* Usage errors exit 2 before anything is trained or created. */
static void
expect_usage(const char *needle, const char *const *args)
{
  g_autofree char *dir = tmp_path("never");
  GPtrArray *argv = g_ptr_array_new();
  g_ptr_array_add(argv, conform_bin);
  g_ptr_array_add(argv, "compare");
  for (const char *const *a = args; *a; a++)
    g_ptr_array_add(argv, (gpointer)*a);
  g_ptr_array_add(argv, NULL);
  g_autofree char *out = NULL, *err = NULL;
  int ws = 0;
  g_assert_true(g_spawn_sync(tmpdir, (char **)argv->pdata, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, &err, &ws, NULL));
  g_ptr_array_free(argv, TRUE);
  g_assert_true(WIFEXITED(ws));
  if (WEXITSTATUS(ws) != 2 || !strstr(err, needle))
    g_error("expected exit 2 and '%s', got %d: %s", needle, WEXITSTATUS(ws), err);
  g_assert_cmpstr(out, ==, "");
  g_assert_false(g_file_test(dir, G_FILE_TEST_EXISTS));
}

static void
test_usage_errors(void)
{
  g_autofree char *dir = tmp_path("never");
#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})
  expect_usage("valid strategies for this model (ddpm) and preset: none, projection, projected-sampling",
               ARGS("--strategies", "none,nonsense", "--out", dir));
  expect_usage("preset: none\n", ARGS("--preset", "gaussians", "--strategies", "none,projection", "--out", dir));
  expect_usage("empty", ARGS("--strategies", "", "--out", dir));
  expect_usage("empty name", ARGS("--strategies", "none,,projection", "--out", dir));
  expect_usage("listed twice", ARGS("--strategies", "none,projection,none", "--out", dir));
  expect_usage("--out DIR is required", ARGS("--strategies", "none,projection"));
  expect_usage("--strategies", ARGS("--out", dir));
  expect_usage("needs a constraint", ARGS("--preset", "gaussians", "--strategies", "none,projection", "--out", dir));
  expect_usage("needs model.type=ddpm", ARGS("--model", "vae", "--strategies", "none,projected-sampling", "--out", dir));
  expect_usage("model.type", ARGS("--model", "gan", "--strategies", "none", "--out", dir));
  expect_usage("unknown preset", ARGS("--preset", "nope", "--strategies", "none", "--out", dir));
  expect_usage("Unknown option", ARGS("--strategies", "none", "--out", dir, "--bogus"));
#undef ARGS
}

static void
test_unwritable_output(void)
{
  /* a path below a regular file cannot be created (even as root) */
  g_autofree char *file = tmp_path("plain-file");
  g_assert_true(g_file_set_contents(file, "x", -1, NULL));
  g_autofree char *dir = g_build_filename(file, "out", NULL);
  Run r = run("compare", "--strategies", "none,projection", "--steps", "20", "--samples", "20", "--out", dir, NULL);
  g_assert_cmpint(r.status, ==, 1);
  g_assert_nonnull(strstr(r.err, "cannot create directory"));
  g_assert_cmpint(count(r.err, "training"), ==, 0); /* checked before training */
  run_clear(&r);

  /* comparison.tsv cannot replace a directory: the PNG written before it is
   * removed again, nothing partial is left */
  g_autofree char *dir2 = tmp_path("blocked");
  g_autofree char *blocker = g_build_filename(dir2, "comparison.tsv", NULL);
  g_assert_cmpint(g_mkdir_with_parents(blocker, 0755), ==, 0);
  r = run("compare", "--strategies", "none,projection", "--steps", "20", "--samples", "20", "--out", dir2, NULL);
  g_assert_cmpint(r.status, ==, 1);
  g_autofree char *png = g_build_filename(dir2, "comparison.png", NULL);
  g_assert_false(g_file_test(png, G_FILE_TEST_EXISTS));
  g_autoptr(GDir) d = g_dir_open(dir2, 0, NULL);
  g_assert_cmpstr(g_dir_read_name(d), ==, "comparison.tsv");
  g_assert_null(g_dir_read_name(d)); /* no temporary files either */
  g_assert_cmpstr(r.out, ==, "");
  run_clear(&r);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  conform_bin = g_strdup(g_getenv("CONFORM_BIN"));
  g_assert_nonnull(conform_bin);
  tmpdir = g_dir_make_tmp("conform-compare-XXXXXX", NULL);
  g_assert_nonnull(tmpdir);
  g_test_add_func("/compare/ddpm", test_ddpm);
  g_test_add_func("/compare/vae", test_vae);
  g_test_add_func("/compare/images", test_images);
  g_test_add_func("/compare/usage-errors", test_usage_errors);
  g_test_add_func("/compare/unwritable-output", test_unwritable_output);
  int rc = g_test_run();
  if (rc == 0) {
    g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", tmpdir);
    (void)!system(cmd);
  }
  return rc;
}
