/* ConformHistogram: binning, tolerance counts, drawing (pixel checks on a
 * Cairo image surface), PNG export and a realized widget. Needs a display
 * (run under xvfb-run). */
#include <glib/gstdio.h>
#include <gtk/gtk.h>
#include <math.h>
#include <string.h>

#include "conform-histogram.h"
#include "pixels.h"

/* ---- helpers ------------------------------------------------------------ */

static void
draw_widget(GtkWidget *w, cairo_t *cr, int width, int height)
{
  conform_histogram_draw(CONFORM_HISTOGRAM(w), cr, width, height);
}

static void
image_render(Image *img, ConformHistogram *widget, int w, int h)
{
  pixels_render(img, GTK_WIDGET(widget), draw_widget, w, h);
}

static ConformHistogram *
new_hist(void)
{
  return CONFORM_HISTOGRAM(g_object_ref_sink(conform_histogram_new()));
}

/* ---- binning ------------------------------------------------------------ */

/* 10 values at 1e-3, 5 at 1e-6, 3 zeros, 2 NaN. */
static int
known_values(double *v)
{
  int n = 0;
  for (int i = 0; i < 10; i++)
    v[n++] = 1e-3;
  for (int i = 0; i < 5; i++)
    v[n++] = 1e-6;
  for (int i = 0; i < 3; i++)
    v[n++] = 0.0;
  v[n++] = NAN;
  v[n++] = NAN;
  return n;
}

static void
test_bins_known_values(void)
{
  g_autoptr(ConformHistogram) h = new_hist();
  double v[32];
  int n = known_values(v);
  conform_histogram_set_tolerance(h, 1e-4);
  conform_histogram_set_series(h, 0, "none", v, n);
  g_assert_cmpint(conform_histogram_get_n_series(h), ==, 1);

  double lo, hi;
  int bpd;
  int nb = conform_histogram_get_bins(h, &lo, &hi, &bpd);
  /* Decade aligned: [1e-6, 1e-2) holds 1e-3 strictly inside, 8 per decade. */
  g_assert_cmpfloat_with_epsilon(log10(lo), -6, 1e-12);
  g_assert_cmpfloat_with_epsilon(log10(hi), -2, 1e-12);
  g_assert_cmpint(bpd, ==, 8);
  g_assert_cmpint(nb, ==, 32);

  long counts[64], n_sat = -1, n_zero = -1;
  g_assert_cmpint(conform_histogram_get_counts(h, 0, NULL, NULL, NULL), ==, nb);
  g_assert_cmpint(conform_histogram_get_counts(h, 0, counts, &n_sat, &n_zero), ==, nb);
  for (int j = 0; j < nb; j++) {
    long expect = j == 0 ? 5 : j == 24 ? 10 : 0; /* 1e-6 starts bin 0, 1e-3 starts bin 3 * 8 */
    g_assert_cmpint(counts[j], ==, expect);
  }
  g_assert_cmpint(n_zero, ==, 3);
  g_assert_cmpint(n_sat, ==, 5 + 3); /* 1e-6 and the zeros; NaN never satisfies */

  long tot, n_low, n_nan, n_inf;
  g_assert_true(conform_histogram_get_series_info(h, 0, &tot, &n_low, &n_nan, &n_inf));
  g_assert_cmpint(tot, ==, 20);
  g_assert_cmpint(n_low, ==, 3);
  g_assert_cmpint(n_nan, ==, 2);
  g_assert_cmpint(n_inf, ==, 0);
}

static void
test_bins_edges_and_inf(void)
{
  g_autoptr(ConformHistogram) h = new_hist();
  /* Values just below and at a bin edge 10^(1/8), an Inf and a negative. */
  double edge = pow(10, 1.0 / 8);
  double v[] = {edge * (1 - 1e-6), edge * (1 + 1e-6), 1.0, INFINITY, -1.0};
  conform_histogram_set_series(h, 2, "x", v, G_N_ELEMENTS(v));
  double lo;
  int nb = conform_histogram_get_bins(h, &lo, NULL, NULL);
  g_assert_cmpint(nb, ==, 3 * 8); /* one decade [1, 10) widened to [0.1, 100) */
  g_assert_cmpfloat_with_epsilon(log10(lo), -1, 1e-12);
  long counts[64], n_zero;
  conform_histogram_get_counts(h, 2, counts, NULL, &n_zero);
  int j1 = 8; /* the bin starting at 1 */
  g_assert_cmpint(counts[j1], ==, 2);
  g_assert_cmpint(counts[j1 + 1], ==, 1);
  g_assert_cmpint(n_zero, ==, 1); /* negative counted as exact */
  long n_inf;
  conform_histogram_get_series_info(h, 2, NULL, NULL, NULL, &n_inf);
  g_assert_cmpint(n_inf, ==, 1);
}

static void
test_tolerance_ties(void)
{
  g_autoptr(ConformHistogram) h = new_hist();
  double v[] = {1e-4, 1e-4 * (1 + 1e-12), 0.5e-4, 2e-4, 0.0};
  conform_histogram_set_series(h, 0, "a", v, G_N_ELEMENTS(v));
  long n_sat;
  conform_histogram_get_counts(h, 0, NULL, &n_sat, NULL);
  g_assert_cmpint(n_sat, ==, 0); /* no tolerance yet */
  conform_histogram_set_tolerance(h, 1e-4);
  g_assert_cmpfloat(conform_histogram_get_tolerance(h), ==, 1e-4);
  conform_histogram_get_counts(h, 0, NULL, &n_sat, NULL);
  g_assert_cmpint(n_sat, ==, 3); /* the tie, 0.5e-4 and 0 */
  conform_histogram_set_tolerance(h, 3e-4);
  conform_histogram_get_counts(h, 0, NULL, &n_sat, NULL);
  g_assert_cmpint(n_sat, ==, 5);
  conform_histogram_set_tolerance(h, 0);
  conform_histogram_get_counts(h, 0, NULL, &n_sat, NULL);
  g_assert_cmpint(n_sat, ==, 1);
  conform_histogram_set_tolerance(h, NAN);
  g_assert_true(isnan(conform_histogram_get_tolerance(h)));
  conform_histogram_get_counts(h, 0, NULL, &n_sat, NULL);
  g_assert_cmpint(n_sat, ==, 0);
}

static void
test_range_includes_tolerance(void)
{
  g_autoptr(ConformHistogram) h = new_hist();
  double v[] = {0.01, 0.02, 0.05};
  conform_histogram_set_series(h, 0, "a", v, 3);
  conform_histogram_set_tolerance(h, 1e-8);
  double lo, hi;
  conform_histogram_get_bins(h, &lo, &hi, NULL);
  g_assert_cmpfloat(lo, <=, 1e-8);
  g_assert_cmpfloat(hi, >, 0.05);
  conform_histogram_set_tolerance(h, 10);
  conform_histogram_get_bins(h, &lo, &hi, NULL);
  g_assert_cmpfloat(hi, >, 10);
}

static void
test_low_bar_below_range(void)
{
  g_autoptr(ConformHistogram) h = new_hist();
  /* 61 decades apart: the range keeps the top 40, the tiny value goes to the
   * left bar with the zero; bins get coarser, never more than ~200. */
  double v[] = {1e-60, 1.0, 0.0};
  conform_histogram_set_series(h, 0, "a", v, 3);
  double lo;
  int bpd;
  int nb = conform_histogram_get_bins(h, &lo, NULL, &bpd);
  g_assert_cmpfloat(lo, >, 1e-60);
  g_assert_cmpint(nb, <=, 200);
  g_assert_cmpint(bpd, <, 8);
  long n_low, n_zero, counts[512], sum = 0;
  conform_histogram_get_series_info(h, 0, NULL, &n_low, NULL, NULL);
  conform_histogram_get_counts(h, 0, counts, NULL, &n_zero);
  for (int j = 0; j < nb; j++)
    sum += counts[j];
  g_assert_cmpint(n_low, ==, 2);
  g_assert_cmpint(n_zero, ==, 1);
  g_assert_cmpint(sum, ==, 1);
}

static void
test_extreme_values(void)
{
  /* Subnormals, the largest double and a huge spread: finite edges, every
   * sample accounted for, drawing does not crash. */
  g_autoptr(ConformHistogram) h = new_hist();
  double v[] = {5e-324, 1e-310, 1e-300, 1.0, 1.7976931348623157e308, 0.0};
  conform_histogram_set_series(h, 0, "x", v, G_N_ELEMENTS(v));
  conform_histogram_set_tolerance(h, 1e-320);
  double lo, hi;
  int nb = conform_histogram_get_bins(h, &lo, &hi, NULL);
  g_assert_true(isfinite(lo) && lo > 0);
  g_assert_true(isfinite(hi) && hi > lo);
  long counts[1024], n_low, sum = 0;
  g_assert_cmpint(nb, <=, 1024);
  conform_histogram_get_counts(h, 0, counts, NULL, NULL);
  conform_histogram_get_series_info(h, 0, NULL, &n_low, NULL, NULL);
  for (int j = 0; j < nb; j++)
    sum += counts[j];
  g_assert_cmpint(sum + n_low, ==, G_N_ELEMENTS(v));
  Image img;
  image_render(&img, h, 400, 300);
  image_clear(&img);
  /* Only subnormals. */
  double w[] = {5e-324, 4e-320};
  conform_histogram_set_series(h, 0, "y", w, 2);
  conform_histogram_set_tolerance(h, NAN);
  nb = conform_histogram_get_bins(h, &lo, &hi, NULL);
  g_assert_true(isfinite(lo) && lo > 0 && nb > 0);
  image_render(&img, h, 400, 300);
  image_clear(&img);
}

static void
test_series_management(void)
{
  g_autoptr(ConformHistogram) h = new_hist();
  double a[] = {1e-3, 2e-3};
  double b[] = {1e-5};
  conform_histogram_set_series(h, 0, "a", a, 2);
  conform_histogram_set_series(h, 0, "a2", b, 1); /* replaces */
  g_assert_cmpint(conform_histogram_get_n_series(h), ==, 1);
  long n;
  conform_histogram_get_series_info(h, 0, &n, NULL, NULL, NULL);
  g_assert_cmpint(n, ==, 1);
  conform_histogram_set_series(h, 6, "last", a, 2);
  g_assert_cmpint(conform_histogram_get_n_series(h), ==, 2);
  conform_histogram_remove_series(h, 0);
  g_assert_cmpint(conform_histogram_get_n_series(h), ==, 1);
  g_assert_cmpint(conform_histogram_get_counts(h, 0, NULL, NULL, NULL), ==, -1);
  g_assert_false(conform_histogram_get_series_info(h, 0, NULL, NULL, NULL, NULL));
  conform_histogram_set_series(h, 1, "empty", NULL, 0);
  g_assert_cmpint(conform_histogram_get_n_series(h), ==, 2);
  conform_histogram_clear(h);
  g_assert_cmpint(conform_histogram_get_n_series(h), ==, 0);
  g_assert_cmpint(conform_histogram_get_bins(h, NULL, NULL, NULL), ==, 0);
}

static void
test_large_series_linear(void)
{
  /* A million samples bin in one pass; drawing stays O(bins). */
  g_autoptr(ConformHistogram) h = new_hist();
  int n = 1000000;
  double *v = g_new(double, n);
  GRand *r = g_rand_new_with_seed(7);
  for (int i = 0; i < n; i++)
    v[i] = pow(10, g_rand_double_range(r, -9, -1));
  conform_histogram_set_series(h, 0, "big", v, n);
  conform_histogram_set_tolerance(h, 1e-5);
  long n_sat;
  conform_histogram_get_counts(h, 0, NULL, &n_sat, NULL);
  long expect = 0;
  for (int i = 0; i < n; i++)
    expect += v[i] <= 1e-5;
  g_assert_cmpint(n_sat, ==, expect);
  Image img;
  image_render(&img, h, 400, 300);
  image_clear(&img);
  g_rand_free(r);
  g_free(v);
}

/* ---- drawing ------------------------------------------------------------ */

static void
test_overlay_pixels(void)
{
  g_autoptr(ConformHistogram) h = new_hist();
  double a[200], b[200];
  for (int i = 0; i < 200; i++) {
    a[i] = 1e-2 * (1 + 0.5 * (i % 7) / 7.0);
    b[i] = 1e-6 * (1 + 0.5 * (i % 5) / 5.0);
  }
  conform_histogram_set_series(h, 0, "none", a, 200);
  conform_histogram_set_series(h, 1, "projection", b, 200);
  int W = 640, H = 400;
  ConformPlotArea area;
  g_assert_true(conform_histogram_get_plot_area(h, W, H, &area));
  g_assert_true(area.xlog);
  Image img;
  image_render(&img, h, W, H);
  GdkRGBA c0, c1;
  conform_palette_series(0, &c0);
  conform_palette_series(1, &c1);
  /* Each colour's outline sits above its own data, not the other's. */
  int x_a = (int)conform_plot_x(&area, 1.2e-2), x_b = (int)conform_plot_x(&area, 1.2e-6);
  int y0 = (int)area.y0, y1 = (int)(area.y0 + area.h);
  int a_near_a = count_colour(&img, x_a - 12, y0, x_a + 12, y1, &c0, 40);
  int b_near_b = count_colour(&img, x_b - 12, y0, x_b + 12, y1, &c1, 40);
  int a_near_b = count_colour(&img, x_b - 12, y0, x_b + 12, y1 - 3, &c0, 40);
  int b_near_a = count_colour(&img, x_a - 12, y0, x_a + 12, y1 - 3, &c1, 40);
  g_assert_cmpint(a_near_a, >, 20);
  g_assert_cmpint(b_near_b, >, 20);
  g_assert_cmpint(a_near_b, ==, 0);
  g_assert_cmpint(b_near_a, ==, 0);
  /* Both colours appear in the legend row above the plot too. */
  g_assert_cmpint(count_colour(&img, 0, 0, W - 1, y0 - 2, &c0, 40), >, 4);
  g_assert_cmpint(count_colour(&img, 0, 0, W - 1, y0 - 2, &c1, 40), >, 4);
  image_clear(&img);
}

static void
test_tolerance_marker_pixels(void)
{
  g_autoptr(ConformHistogram) h = new_hist();
  double v[50];
  for (int i = 0; i < 50; i++)
    v[i] = 1e-2 * (1 + i / 50.0);
  conform_histogram_set_series(h, 0, "a", v, 50);
  int W = 600, H = 360;
  Image before;
  image_render(&before, h, W, H);
  conform_histogram_set_tolerance(h, 3e-5);
  ConformPlotArea area;
  g_assert_true(conform_histogram_get_plot_area(h, W, H, &area));
  int px = (int)round(conform_plot_x(&area, 3e-5));
  g_assert_cmpfloat(px, >, area.x0 + 2);
  g_assert_cmpfloat(px, <, area.x0 + area.w - 2);
  Image after;
  image_render(&after, h, W, H);
  /* Dashes along the lower part of the line (below its label). */
  int y0 = (int)(area.y0 + area.h * 0.3), y1 = (int)(area.y0 + area.h - 2);
  int dark_after = count_ink(&after, px - 1, y0, px + 1, y1, 100);
  int dark_before = count_ink(&before, px - 1, y0, px + 1, y1, 100);
  g_assert_cmpint(dark_before, ==, 0);
  g_assert_cmpint(dark_after, >, (y1 - y0) / 3);
  /* Nothing similar well away from the marker (outside the data). */
  int away = (int)round(conform_plot_x(&area, 3e-3));
  g_assert_cmpint(count_ink(&after, away - 1, y0, away + 1, y1, 100), ==, 0);
  image_clear(&before);
  image_clear(&after);
}

static void
test_empty_state(void)
{
  g_autoptr(ConformHistogram) h = new_hist();
  ConformPlotArea area;
  g_assert_false(conform_histogram_get_plot_area(h, 300, 200, &area));
  Image img;
  image_render(&img, h, 300, 200);
  g_assert_cmpint(count_ink(&img, 0, 0, 299, 199, 3), >, 50); /* the hint and its frame */
  /* The hint is centred: ink in the middle band. */
  g_assert_cmpint(count_ink(&img, 60, 85, 240, 115, 60), >, 20);
  image_clear(&img);
  /* A set series with no samples is still "empty". */
  conform_histogram_set_series(h, 0, "none", NULL, 0);
  g_assert_false(conform_histogram_get_plot_area(h, 300, 200, &area));
  image_render(&img, h, 300, 200);
  image_clear(&img);
  /* Tiny sizes do not crash. */
  double v[] = {1e-3};
  conform_histogram_set_series(h, 0, "a", v, 1);
  image_render(&img, h, 1, 1);
  image_clear(&img);
  image_render(&img, h, 40, 20);
  image_clear(&img);
}

static void
test_export_png(void)
{
  g_autoptr(ConformHistogram) h = new_hist();
  double v[20];
  int n = known_values(v);
  conform_histogram_set_series(h, 0, "none", v, n);
  conform_histogram_set_tolerance(h, 1e-4);
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp("conform-hist-XXXXXX", &error);
  g_assert_no_error(error);
  g_autofree char *path = g_build_filename(dir, "hist.png", NULL);
  g_assert_true(conform_histogram_export_png(h, path, 480, 320, &error));
  g_assert_no_error(error);
  cairo_surface_t *s = cairo_image_surface_create_from_png(path);
  g_assert_cmpint(cairo_surface_status(s), ==, CAIRO_STATUS_SUCCESS);
  g_assert_cmpint(cairo_image_surface_get_width(s), ==, 480);
  g_assert_cmpint(cairo_image_surface_get_height(s), ==, 320);
  /* The same picture as draw() on the same background. */
  {
    Image img;
    image_render(&img, h, 480, 320);
    cairo_surface_flush(s);
    const guint8 *pa = cairo_image_surface_get_data(s), *pb = cairo_image_surface_get_data(img.s);
    int diff = 0;
    for (int y = 0; y < 320; y++)
      if (memcmp(pa + y * cairo_image_surface_get_stride(s), pb + y * cairo_image_surface_get_stride(img.s),
                 480 * 4) != 0)
        diff++;
    g_assert_cmpint(diff, ==, 0);
    image_clear(&img);
  }
  cairo_surface_destroy(s);
  /* Bad size: an error, no file. */
  g_autofree char *bad = g_build_filename(dir, "bad.png", NULL);
  g_assert_false(conform_histogram_export_png(h, bad, 4, 4, &error));
  g_assert_nonnull(error);
  g_assert_false(g_file_test(bad, G_FILE_TEST_EXISTS));
  g_unlink(path);
  g_rmdir(dir);
}

/* ---- widget ------------------------------------------------------------- */

static gboolean
timeout_cb(gpointer data)
{
  *(gboolean *)data = TRUE;
  return G_SOURCE_REMOVE;
}

static void
spin(guint ms)
{
  gboolean done = FALSE;
  g_timeout_add(ms, timeout_cb, &done);
  while (!done)
    g_main_context_iteration(NULL, TRUE);
}

static void
test_realized_widget(void)
{
  GtkWidget *win = gtk_window_new();
  gtk_window_set_default_size(GTK_WINDOW(win), 500, 320);
  GtkWidget *w = conform_histogram_new();
  gtk_window_set_child(GTK_WINDOW(win), w);
  gtk_window_present(GTK_WINDOW(win));
  spin(200);
  g_assert_true(gtk_widget_get_realized(w));
  int mw, nw, mh, nh;
  gtk_widget_measure(w, GTK_ORIENTATION_HORIZONTAL, -1, &mw, &nw, NULL, NULL);
  gtk_widget_measure(w, GTK_ORIENTATION_VERTICAL, -1, &mh, &nh, NULL, NULL);
  g_assert_cmpint(mw, >=, 240);
  g_assert_cmpint(mh, >=, 160);
  g_assert_true(gtk_widget_get_hexpand(w) && gtk_widget_get_vexpand(w));

  double v[40];
  int n = known_values(v);
  conform_histogram_set_series(CONFORM_HISTOGRAM(w), 0, "none", v, n);
  conform_histogram_set_series(CONFORM_HISTOGRAM(w), 1, "projection", v, 10);
  conform_histogram_set_tolerance(CONFORM_HISTOGRAM(w), 1e-4);
  spin(100);
  g_assert_cmpint(gtk_widget_get_width(w), >, 0);
  GtkSnapshot *snap = gtk_snapshot_new();
  GTK_WIDGET_GET_CLASS(w)->snapshot(w, snap);
  GskRenderNode *node = gtk_snapshot_free_to_node(snap);
  g_assert_nonnull(node);
  gsk_render_node_unref(node);
  conform_histogram_clear(CONFORM_HISTOGRAM(w));
  spin(50);
  gtk_window_destroy(GTK_WINDOW(win));
  spin(20);
}

int
main(int argc, char **argv)
{
  g_setenv("GTK_A11Y", "none", TRUE); /* no accessibility bus under Xvfb */
  gtk_test_init(&argc, &argv, NULL);
  g_test_add_func("/histogram/bins/known-values", test_bins_known_values);
  g_test_add_func("/histogram/bins/edges-inf-negative", test_bins_edges_and_inf);
  g_test_add_func("/histogram/bins/range-includes-tolerance", test_range_includes_tolerance);
  g_test_add_func("/histogram/bins/low-bar-below-range", test_low_bar_below_range);
  g_test_add_func("/histogram/bins/large-series", test_large_series_linear);
  g_test_add_func("/histogram/bins/extreme-values", test_extreme_values);
  g_test_add_func("/histogram/tolerance/ties", test_tolerance_ties);
  g_test_add_func("/histogram/series-management", test_series_management);
  g_test_add_func("/histogram/draw/overlay-colours", test_overlay_pixels);
  g_test_add_func("/histogram/draw/tolerance-marker", test_tolerance_marker_pixels);
  g_test_add_func("/histogram/draw/empty-state", test_empty_state);
  g_test_add_func("/histogram/export-png", test_export_png);
  g_test_add_func("/histogram/widget/realized", test_realized_widget);
  return g_test_run();
}
