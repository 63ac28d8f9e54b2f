/* Tests of app/conform-image-data.c and what the engine and CLI make of it:
 * the fashion-superres source (thumbnail rows, its 49-row constraint),
 * samples that match their thumbnail to round-off under projection and
 * cgauss with the conditioned U-Net, the samples.png layout with
 * thumbnails, --condition-image through the real binary, and a folder of
 * PNG files as training data (a corrupt file skipped and warned about,
 * too few or no images refused). Fashion-MNIST parts skip when the Debian
 * package is not installed. */
#include <glib.h>
#include <glib/gstdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli-run.h"
#include "conform-config.h"
#include "conform-engine.h"
#include "conform-image-data.h"
#include "conform-images.h"
#include "rng.h"

#define FASHION_TEST CONFORM_FASHION_MNIST_DIR "/t10k-images-idx3-ubyte.gz"

static gboolean
have_fashion(void)
{
  if (g_file_test(FASHION_TEST, G_FILE_TEST_EXISTS))
    return TRUE;
  g_test_skip("dataset-fashion-mnist is not installed");
  return FALSE;
}

static void
assert_contains(const char *haystack, const char *needle)
{
  if (!haystack || !strstr(haystack, needle))
    g_error("expected \"%s\" in \"%s\"", needle, haystack ? haystack : "(null)");
}

/* max_r |mean of block r of image y (size x size) - t_r| over the 7 x 7
 * blocks, in double: the superres constraint's residual for one row. */
static double
thumb_residual(const float *t, const float *y, int size)
{
  const int T = CONFORM_SUPERRES_THUMB, f = size / T;
  double worst = 0;
  for (int r = 0; r < T; r++)
    for (int c = 0; c < T; c++) {
      double s = 0;
      for (int a = 0; a < f; a++)
        for (int b = 0; b < f; b++)
          s += y[(r * f + a) * size + c * f + b];
      worst = fmax(worst, fabs(s / (f * f) - t[r * T + c]));
    }
  return worst;
}

/* The constraint: 49 x (49 + size^2), A = [-I | block means], b = 0; a
 * random image with its own thumbnail satisfies it, a changed pixel in a
 * block breaks exactly that block's row. */
static void
test_superres_constraint(void)
{
  g_assert_cmpint(conform_image_source_inputs("fashion-superres"), ==, 49);
  g_assert_cmpint(conform_image_source_inputs("fashion-mnist"), ==, 0);
  g_assert_true(conform_image_source_is("fashion-superres"));
  g_assert_cmpint(conform_image_row_offset(49 + 196, 14), ==, 49);
  CfRng rng;
  cf_rng_seed(&rng, 3);
  for (int size = 14; size <= 28; size += 14) {
    const int d = size * size, n = 49 + d, f = size / 7;
    CfConstraint c;
    cf_constraint_init(&c);
    g_autoptr(GError) err = NULL;
    g_assert_true(conform_image_source_constraint("fashion-superres", size, &c, &err));
    g_assert_cmpint(c.m, ==, 49);
    g_assert_cmpint(c.n, ==, n);
    CfConstraintReport rep;
    CfError cerr;
    g_assert_cmpint(cf_constraint_analyze(&c, n, &rep, &cerr), ==, CF_OK);
    g_assert_cmpint(rep.rank, ==, 49);
    cf_constraint_report_clear(&rep);
    float *row = g_new(float, n);
    for (int j = 0; j < d; j++)
      row[49 + j] = (float)cf_rng_uniform(&rng);
    for (int r = 0; r < 7; r++)
      for (int q = 0; q < 7; q++) {
        double s = 0;
        for (int a = 0; a < f; a++)
          for (int b = 0; b < f; b++)
            s += row[49 + (r * f + a) * size + q * f + b];
        row[r * 7 + q] = (float)(s / (f * f));
      }
    double v;
    cf_constraint_violation(&c, row, 1, &v, NULL);
    g_assert_cmpfloat(v, <, 1e-6); /* 49 rows of float rounding */
    row[49 + (3 * f) * size + 2 * f] += 0.5f; /* a pixel of block (3, 2) */
    double lin;
    cf_constraint_violation(&c, row, 1, &v, &lin);
    g_assert_cmpfloat(fabs(v - 0.5 / (f * f)), <, 1e-6);
    g_assert_cmpfloat(fabs(lin - 0.5 / (f * f)), <, 1e-6);
    g_free(row);
    cf_constraint_clear(&c);
  }
}

static ConformEngine *
superres_engine(const char *strategy, GError **error)
{
  ConformConfig c;
  conform_config_init(&c);
  g_assert_true(conform_config_apply_preset(&c, "fashion-superres", NULL));
  const char *sets[] = {"data.n_train=300", "data.n_ref=40", "model.unet_base=8", "train.steps=3", NULL};
  for (const char *const *s = sets; *s; s++)
    g_assert_true(conform_config_set_assignment(&c, *s, NULL));
  g_assert_true(conform_config_set(&c, "experiment.strategy", strategy, NULL));
  ConformEngine *e = conform_engine_new(&c, error);
  conform_config_clear(&c);
  return e;
}

/* Width and height of a PNG file from its IHDR chunk. */
static void
png_size(const char *path, int *w, int *h)
{
  g_autofree char *buf = NULL;
  gsize len = 0;
  g_assert_true(g_file_get_contents(path, &buf, &len, NULL));
  g_assert_cmpuint(len, >, 24);
  const guint8 *b = (const guint8 *)buf;
  *w = (b[16] << 24) | (b[17] << 16) | (b[18] << 8) | b[19];
  *h = (b[20] << 24) | (b[21] << 16) | (b[22] << 8) | b[23];
}

/* Engine level: rows are [thumbnail | image] with the thumbnail of the
 * image; projection and cgauss samples (a briefly trained conditioned
 * U-Net) keep the held-out thumbnails they were generated for and match
 * them to round-off; with a condition row every sample takes that row's;
 * samples.png lays out thumbnail + sample pairs, or rows of thumbnail + 7
 * candidates for one shared thumbnail. */
static void
test_superres_engine(void)
{
  if (!have_fashion())
    return;
  const char *strategies[] = {"projection", "cgauss"};
  for (int k = 0; k < 2; k++) {
    g_autoptr(GError) err = NULL;
    g_autoptr(ConformEngine) e = superres_engine(strategies[k], &err);
    g_assert_no_error(err);
    g_assert_cmpint(conform_engine_dim(e), ==, 49 + 196);
    g_assert_cmpint(conform_engine_constraint(e)->m, ==, 49);
    int n_ref;
    const float *ref = conform_engine_reference(e, &n_ref);
    g_assert_cmpint(n_ref, ==, 40);
    double worst = 0;
    for (int i = 0; i < n_ref; i++)
      worst = fmax(worst, thumb_residual(ref + (gsize)i * 245, ref + (gsize)i * 245 + 49, 14));
    g_assert_cmpfloat(worst, <, 1e-7); /* the data meet the constraint */
    g_assert_true(conform_engine_train(e, 3, NULL, NULL, NULL, &err));

    for (int cond = 0; cond < 2; cond++) {
      const int n = 16, row = 7;
      ConformSampleOptions so = {.n = n, .eta = -1, .sampler = "ddim", .sampling_steps = 10, .use_condition = cond,
                                 .condition_row = row};
      float *x = NULL;
      g_assert_true(conform_engine_sample(e, &so, &x, NULL, NULL, NULL, NULL, &err));
      g_assert_no_error(err);
      worst = 0;
      for (int i = 0; i < n; i++) {
        const float *want = ref + (gsize)(cond ? row : i % n_ref) * 245;
        g_assert_cmpmem(x + (gsize)i * 245, 49 * sizeof(float), want, 49 * sizeof(float));
        worst = fmax(worst, thumb_residual(x + (gsize)i * 245, x + (gsize)i * 245 + 49, 14));
      }
      g_test_message("superres %s%s: max |block mean - thumbnail| %.2e", strategies[k],
                     cond ? " (one condition row)" : "", worst);
      g_assert_cmpfloat(worst, <, 1e-6);
      ConformSummary sum;
      conform_engine_evaluate_for(e, x, n, &so, &sum);
      g_assert_true(sum.has_constraint);
      g_assert_cmpfloat(sum.viol.max, <, 1e-6);
      g_assert_true(isfinite(sum.cond_rmse) && sum.cond_rmse > 0 && sum.cond_rmse < 10);
      g_autofree char *dir = g_dir_make_tmp("conform-sr-XXXXXX", NULL);
      g_assert_true(conform_engine_save(e, dir, x, n, &sum, &err));
      g_autofree char *png = g_build_filename(dir, "samples.png", NULL);
      int w, h;
      png_size(png, &w, &h);
      /* cells of 2 x 14 + 2 x 2 frame = 32 px, 2 px gaps, 8 per grid row:
       * 16 pairs = 32 cells = 4 rows; one thumbnail: T+7, T+7, T+2 = 3 rows */
      g_assert_cmpint(w, ==, 8 * 32 + 9 * 2);
      g_assert_cmpint(h, ==, cond ? 3 * 32 + 4 * 2 : 4 * 32 + 5 * 2);
      cf_free_aligned(x);
      g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", dir);
      g_assert_cmpint(system(cmd), ==, 0);
    }
    g_assert_false(conform_engine_check_condition(e, 40, &err));
    assert_contains(err->message, "out of range");
    g_clear_error(&err);
    g_assert_true(conform_engine_check_condition(e, 39, &err));
  }
  /* image rows carry exactly the source's inputs */
  ConformConfig c;
  conform_config_init(&c);
  g_assert_true(conform_config_apply_preset(&c, "fashion-superres", NULL));
  g_assert_true(conform_config_set(&c, "data.inputs", "0", NULL));
  g_autoptr(GError) err = NULL;
  g_assert_false(conform_config_validate(&c, &err));
  assert_contains(err->message, "data.inputs must be 49");
  conform_config_clear(&c);
}

/* ---- PNG folders ---------------------------------------------------------------- */

/* n random gray 12 x 12 PNGs img00.png.. in dir (the grid writer with one
 * cell: 16 x 16 with its 2 px grey margin, resized on import). */
static void
write_pngs(const char *dir, int n, guint64 seed)
{
  CfRng rng;
  cf_rng_seed(&rng, seed);
  float px[144];
  for (int i = 0; i < n; i++) {
    for (int j = 0; j < 144; j++)
      px[j] = (float)cf_rng_uniform(&rng);
    g_autofree char *name = g_strdup_printf("img%02d.png", i);
    g_autofree char *path = g_build_filename(dir, name, NULL);
    g_autoptr(GError) err = NULL;
    g_assert_true(conform_image_grid_write_png(path, px, 1, 12, 12, 1, 0.0f, 1.0f, NULL, 1, &err));
  }
}

static void
write_file(const char *dir, const char *name, const char *text)
{
  g_autofree char *path = g_build_filename(dir, name, NULL);
  g_assert_true(g_file_set_contents(path, text, -1, NULL));
}

static ConformEngine *
folder_engine(const char *preset, const char *dir, GError **error)
{
  ConformConfig c;
  conform_config_init(&c);
  g_assert_true(conform_config_apply_preset(&c, preset, NULL));
  g_assert_true(conform_config_set(&c, "data.source", dir, NULL));
  g_assert_true(conform_config_set(&c, "model.unet_base", "8", NULL));
  ConformEngine *e = conform_engine_new(&c, error);
  conform_config_clear(&c);
  return e;
}

/* A folder of 24 PNGs, one corrupt *.png and a text file: the corrupt one is
 * skipped and named in the warnings, 2 images (10%) are held out, the U-Net
 * trains, samples.png is written. Too few, none, or only broken files: an
 * error naming the folder; superres settings on a folder are refused. */
static void
test_png_folder_source(void)
{
  g_autofree char *dir = g_dir_make_tmp("conform-pngs-XXXXXX", NULL);
  write_pngs(dir, 24, 5);
  write_file(dir, "broken.png", "this is not a PNG");
  write_file(dir, "notes.txt", "ignored: not *.png");
  g_assert_true(conform_image_source_is(dir));
  g_assert_true(conform_image_source_is_folder(dir));
  g_autoptr(GError) err = NULL;
  g_autoptr(ConformEngine) e = folder_engine("fashion", dir, &err);
  g_assert_no_error(err);
  g_assert_cmpint(conform_engine_dim(e), ==, 196);
  const char *w = conform_engine_warnings(e);
  g_test_message("warnings: %s", w);
  assert_contains(w, "broken.png");
  assert_contains(w, "skipped 1 file");
  int n_ref;
  const float *ref = conform_engine_reference(e, &n_ref);
  g_assert_cmpint(n_ref, ==, 2);
  for (int i = 0; i < n_ref * 196; i++)
    g_assert_true(ref[i] >= 0.0f && ref[i] <= 1.0f);
  g_assert_true(conform_engine_train(e, 2, NULL, NULL, NULL, &err));
  ConformSampleOptions so = {.n = 4, .eta = -1, .sampler = "ddim", .sampling_steps = 5};
  float *x = NULL;
  g_assert_true(conform_engine_sample(e, &so, &x, NULL, NULL, NULL, NULL, &err));
  g_autofree char *out = g_dir_make_tmp("conform-pngrun-XXXXXX", NULL);
  ConformSummary sum;
  conform_engine_evaluate(e, x, so.n, &sum);
  g_assert_true(conform_engine_save(e, out, x, so.n, &sum, &err));
  g_autofree char *png = g_build_filename(out, "samples.png", NULL);
  g_assert_true(g_file_test(png, G_FILE_TEST_IS_REGULAR));
  cf_free_aligned(x);
  /* the saved experiment names the folder and loads again */
  g_autoptr(ConformEngine) back = conform_engine_load(out, &err);
  g_assert_no_error(err);
  g_assert_cmpint(conform_engine_dim(back), ==, 196);
  g_assert_false(conform_engine_check_condition(back, 0, &err));
  assert_contains(err->message, "no inputs");
  g_clear_error(&err);

  /* superres on a folder: the thumbnail inputs do not exist there */
  g_assert_null(folder_engine("fashion-superres", dir, &err));
  assert_contains(err->message, "data.inputs must be 0");
  g_clear_error(&err);

  g_autofree char *few = g_dir_make_tmp("conform-few-XXXXXX", NULL);
  write_pngs(few, 5, 6);
  write_file(few, "bad.png", "");
  g_assert_null(folder_engine("fashion", few, &err));
  g_test_message("%s", err->message);
  assert_contains(err->message, few);
  assert_contains(err->message, "at least 20");
  assert_contains(err->message, "bad.png");
  g_clear_error(&err);

  g_autofree char *empty = g_dir_make_tmp("conform-empty-XXXXXX", NULL);
  g_assert_null(folder_engine("fashion", empty, &err));
  g_test_message("%s", err->message);
  assert_contains(err->message, empty);
  g_clear_error(&err);
  write_file(empty, "only.png", "garbage");
  g_assert_null(folder_engine("fashion", empty, &err));
  assert_contains(err->message, "no usable PNG");
  g_clear_error(&err);

  g_autofree char *cmd = g_strdup_printf("rm -rf '%s' '%s' '%s' '%s'", dir, out, few, empty);
  g_assert_cmpint(system(cmd), ==, 0);
}

/* ---- the CLI ----------------------------------------------------------------------- */

/* n rows of samples.csv-style text (header, dim columns). */
static float *
read_csv(const char *path, int dim, int *n)
{
  g_autofree char *text = NULL;
  g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
  g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
  GArray *v = g_array_new(FALSE, FALSE, sizeof(float));
  int rows = 0;
  for (int i = 1; lines[i]; i++) {
    if (!lines[i][0])
      continue;
    g_auto(GStrv) f = g_strsplit(lines[i], ",", -1);
    g_assert_cmpuint(g_strv_length(f), ==, (guint)dim);
    for (int j = 0; j < dim; j++) {
      float x = (float)g_ascii_strtod(f[j], NULL);
      g_array_append_val(v, x);
    }
    rows++;
  }
  *n = rows;
  return (float *)g_array_free(v, FALSE);
}

/* Test image `index` at 14 x 14 and its thumbnail (the block means). */
static void
test_image_thumb(int index, float *img, float *thumb)
{
  CfImageSet te;
  cf_image_set_init(&te);
  g_autoptr(GError) err = NULL;
  g_assert_true(conform_fashion_mnist_load(NULL, FALSE, 2, &te, &err));
  memcpy(img, te.pixels + (gsize)index * 196, 196 * sizeof(float));
  for (int r = 0; r < 7; r++)
    for (int c = 0; c < 7; c++)
      thumb[r * 7 + c] = (float)((img[2 * r * 14 + 2 * c] + (double)img[2 * r * 14 + 2 * c + 1] +
                                  img[(2 * r + 1) * 14 + 2 * c] + img[(2 * r + 1) * 14 + 2 * c + 1]) / 4);
  cf_image_set_clear(&te);
}

/* Every sample of run `dir` (samples.csv or `csv`) carries test image
 * index's thumbnail and matches it to round-off; returns the worst residual. */
static double
check_condition_samples(const char *csv, int index, int expect_n)
{
  float img[196], thumb[49];
  test_image_thumb(index, img, thumb);
  int n;
  g_autofree float *x = read_csv(csv, 245, &n);
  g_assert_cmpint(n, ==, expect_n);
  double worst = 0;
  for (int i = 0; i < n; i++) {
    for (int j = 0; j < 49; j++) /* %.9g round-trips floats */
      g_assert_cmpfloat(x[i * 245 + j], ==, thumb[j]);
    worst = fmax(worst, thumb_residual(thumb, x + i * 245 + 49, 14));
  }
  return worst;
}

/* --condition-image through the real binary: train (projection, cgauss) and
 * sample give candidates for one thumbnail, exact to round-off; a bad index
 * or a preset without inputs is a usage error before any training; a PNG
 * folder trains with the corrupt file named on stderr. */
static void
test_cli(void)
{
  Run p = run("presets", NULL);
  g_assert_cmpint(p.status, ==, 0);
  assert_contains(p.out, "\nfashion-superres\t245\t49 rows"); /* thumbnail + 14 x 14 image */
  run_clear(&p);
  if (!have_fashion())
    return;
  const char *strategies[] = {"projection", "cgauss"};
  for (int k = 0; k < 2; k++) {
    g_autofree char *out = g_strdup_printf("sr-%s", strategies[k]);
    Run r = run("train", "--preset", "fashion-superres", "--strategy", strategies[k], "--steps", "3", "--set",
                "data.n_train=200", "--set", "data.n_ref=20", "--set", "model.unet_base=8", "--set", "sample.n=9",
                "--set", "sample.steps=10", "--condition-image", "5", "--out", out, NULL);
    if (r.status != 0)
      g_test_message("stderr: %s", r.err);
    g_assert_cmpint(r.status, ==, 0);
    assert_contains(r.out, "violation_max");
    assert_contains(r.out, "cond_rmse");
    g_autofree char *csv = g_build_filename(tmpdir, out, "samples.csv", NULL);
    double worst = check_condition_samples(csv, 5, 9);
    g_test_message("train --strategy %s --condition-image 5: max |block mean - thumbnail| %.2e", strategies[k],
                   worst);
    g_assert_cmpfloat(worst, <, 1e-6);
    g_autofree char *png = g_build_filename(tmpdir, out, "samples.png", NULL);
    int w, h;
    png_size(png, &w, &h);
    g_assert_cmpint(h, ==, 2 * 32 + 3 * 2); /* T+7, T+2 */
    run_clear(&r);

    g_autofree char *csv2 = g_strdup_printf("%s-7.csv", out);
    r = run("sample", out, "--condition-image", "7", "--n", "4", "--out", csv2, NULL);
    g_assert_cmpint(r.status, ==, 0);
    run_clear(&r);
    g_autofree char *csv2p = g_build_filename(tmpdir, csv2, NULL);
    worst = check_condition_samples(csv2p, 7, 4);
    g_test_message("sample --condition-image 7 (%s): %.2e", strategies[k], worst);
    g_assert_cmpfloat(worst, <, 1e-6);

    r = run("sample", out, "--condition-image", "20", "--out", "x.csv", NULL);
    g_assert_cmpint(r.status, ==, 2);
    assert_contains(r.err, "out of range");
    run_clear(&r);
  }
  /* refused before training: a long --steps would time the test out */
  Run r = run("train", "--preset", "fashion-superres", "--steps", "100000000", "--set", "data.n_train=100", "--set",
              "data.n_ref=20", "--condition-image", "-1", "--out", "bad", NULL);
  g_assert_cmpint(r.status, ==, 2);
  assert_contains(r.err, "out of range");
  run_clear(&r);
  r = run("train", "--preset", "simplex-3d", "--steps", "100000000", "--condition-image", "0", "--out", "bad", NULL);
  g_assert_cmpint(r.status, ==, 2);
  assert_contains(r.err, "no inputs");
  run_clear(&r);

  g_autofree char *pngs = tmp_path("pngs");
  g_assert_cmpint(g_mkdir(pngs, 0755), ==, 0);
  write_pngs(pngs, 22, 9);
  write_file(pngs, "zz-corrupt.png", "\x89PNG\r\n\x1a\n truncated");
  r = run("train", "--preset", "fashion", "--data", pngs, "--steps", "2", "--set", "model.unet_base=8", "--set",
          "sample.n=4", "--set", "sample.steps=5", "--out", "own", NULL);
  if (r.status != 0)
    g_test_message("stderr: %s", r.err);
  g_assert_cmpint(r.status, ==, 0);
  assert_contains(r.err, "warning");
  assert_contains(r.err, "zz-corrupt.png");
  run_clear(&r);
  g_autofree char *own_png = g_build_filename(tmpdir, "own", "samples.png", NULL);
  g_assert_true(g_file_test(own_png, G_FILE_TEST_IS_REGULAR));
  g_autofree char *empty = tmp_path("no-pngs");
  g_assert_cmpint(g_mkdir(empty, 0755), ==, 0);
  r = run("train", "--preset", "fashion", "--data", empty, "--steps", "2", "--out", "own2", NULL);
  g_assert_cmpint(r.status, ==, 1);
  assert_contains(r.err, "no-pngs");
  run_clear(&r);
}

/* conform bench unet-train image-sample: each figure, its GFLOP/s, peak
 * fraction (0 < f <= 1.5: the in-process sgemm peak is a best of 3) and
 * memory, with the stated units. */
static void
test_bench_rows(void)
{
  Run r = run("bench", "--quick", "unet-train", "image-sample", NULL);
  g_assert_cmpint(r.status, ==, 0);
  static const struct {
    const char *name, *unit;
  } rows[] = {{"unet-train", "steps/s"}, {"unet-train-gflops", "GFLOP/s"}, {"unet-train-peak-fraction", "ratio"},
              {"unet-train-peak-rss", "MiB"}, {"image-sample", "images/s"}, {"image-sample-gflops", "GFLOP/s"},
              {"image-sample-peak-fraction", "ratio"}};
  g_auto(GStrv) lines = g_strsplit(r.out, "\n", -1);
  for (gsize k = 0; k < G_N_ELEMENTS(rows); k++) {
    gboolean found = FALSE;
    for (int i = 0; lines[i] && !found; i++) {
      g_auto(GStrv) f = g_strsplit(lines[i], "\t", -1);
      if (g_strv_length(f) < 3 || strcmp(f[0], rows[k].name) != 0)
        continue;
      found = TRUE;
      double v = g_ascii_strtod(f[1], NULL);
      g_assert_cmpstr(f[2], ==, rows[k].unit);
      g_assert_true(isfinite(v) && v > 0);
      if (g_str_has_suffix(rows[k].name, "peak-fraction"))
        g_assert_cmpfloat(v, <=, 1.5);
    }
    if (!found)
      g_error("bench printed no %s line:\n%s", rows[k].name, r.out);
  }
  g_test_message("%s", r.out);
  run_clear(&r);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  conform_bin = g_strdup(g_getenv("CONFORM_BIN"));
  g_assert_nonnull(conform_bin);
  tmpdir = g_dir_make_tmp("conform-imgdata-XXXXXX", NULL);
  g_assert_nonnull(tmpdir);
  g_test_add_func("/image-data/superres-constraint", test_superres_constraint);
  g_test_add_func("/image-data/superres-engine", test_superres_engine);
  g_test_add_func("/image-data/png-folder-source", test_png_folder_source);
  g_test_add_func("/image-data/cli", test_cli);
  g_test_add_func("/image-data/bench", test_bench_rows);
  int rc = g_test_run();
  if (rc == 0) {
    g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", tmpdir);
    (void)!system(cmd);
  }
  g_free(tmpdir);
  g_free(conform_bin);
  return rc;
}
