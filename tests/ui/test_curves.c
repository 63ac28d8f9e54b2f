/* ConformCurves: bounded decimated store, exact values before decimation,
 * min/max through decimation, log y, smoothing, hover readout, drawing
 * (pixel checks on a Cairo image surface), PNG export and a realized
 * widget. Needs a display (run under xvfb-run). */
#include <glib/gstdio.h>
#include <gtk/gtk.h>
#include <math.h>
#include <string.h>

#include "conform-curves.h"
#include "pixels.h"

/* ---- helpers ------------------------------------------------------------ */

static void
draw_widget(GtkWidget *w, cairo_t *cr, int width, int height)
{
  conform_curves_draw(CONFORM_CURVES(w), cr, width, height);
}

static void
image_render(Image *img, ConformCurves *widget, int w, int h)
{
  pixels_render(img, GTK_WIDGET(widget), draw_widget, w, h);
}

static ConformCurves *
new_curves(void)
{
  return CONFORM_CURVES(g_object_ref_sink(conform_curves_new()));
}

/* ---- store -------------------------------------------------------------- */

static void
test_exact_before_decimation(void)
{
  g_autoptr(ConformCurves) c = new_curves();
  int s = conform_curves_add_series(c, "loss", 0);
  g_assert_cmpint(s, ==, 0);
  g_assert_cmpint(conform_curves_get_n_series(c), ==, 1);
  for (int i = 0; i < 1000; i++)
    conform_curves_append(c, s, i, 0.5 * i * i + 0.25);
  g_assert_cmpint(conform_curves_get_n_buckets(c, s), ==, 1000);
  g_assert_cmpint(conform_curves_get_n_points(c, s), ==, 1000);
  double x, y;
  g_assert_true(conform_curves_get_value_at(c, s, 500.2, &x, &y));
  g_assert_cmpfloat(x, ==, 500);
  g_assert_cmpfloat(y, ==, 0.5 * 500 * 500 + 0.25);
  g_assert_true(conform_curves_get_value_at(c, s, -1e9, &x, &y));
  g_assert_cmpfloat(x, ==, 0);
  g_assert_true(conform_curves_get_value_at(c, s, 1e9, &x, &y));
  g_assert_cmpfloat(x, ==, 999);
  g_assert_cmpfloat(y, ==, 0.5 * 999 * 999 + 0.25);
  /* Exactly CAP points are still exact. */
  for (int i = 1000; i < CONFORM_CURVES_MAX_BUCKETS; i++)
    conform_curves_append(c, s, i, i);
  g_assert_cmpint(conform_curves_get_n_buckets(c, s), ==, CONFORM_CURVES_MAX_BUCKETS);
  g_assert_true(conform_curves_get_value_at(c, s, 3000.4, &x, &y));
  g_assert_cmpfloat(x, ==, 3000);
  g_assert_cmpfloat(y, ==, 3000);
}

static void
test_unsorted_and_gaps(void)
{
  g_autoptr(ConformCurves) c = new_curves();
  int s = conform_curves_add_series(c, "a", -1);
  double xs[] = {10, 3, 7, 1, 20};
  double ys[] = {1, 2, NAN, 4, 5};
  conform_curves_append_many(c, s, xs, ys, 5);
  conform_curves_append(c, s, NAN, 100); /* ignored */
  g_assert_cmpint(conform_curves_get_n_points(c, s), ==, 5);
  double x, y;
  g_assert_true(conform_curves_get_value_at(c, s, 5.9, &x, &y));
  g_assert_cmpfloat(x, ==, 3); /* 7 has no finite value; 3 is nearer than 10 */
  g_assert_cmpfloat(y, ==, 2);
  g_assert_true(conform_curves_get_value_at(c, s, 1.2, &x, &y));
  g_assert_cmpfloat(x, ==, 1);
  g_assert_cmpfloat(y, ==, 4);
  /* Sorted series with a gap: the bisecting search skips it as well. */
  int t = conform_curves_add_series(c, "b", 1);
  for (int i = 0; i < 10; i++)
    conform_curves_append(c, t, i, i == 5 ? NAN : i);
  g_assert_true(conform_curves_get_value_at(c, t, 5.1, &x, &y));
  g_assert_cmpfloat(x, ==, 6);
  g_assert_true(conform_curves_get_value_at(c, t, 4.9, &x, &y));
  g_assert_cmpfloat(x, ==, 4);
  /* A series with no finite value has no nearest point. */
  int u = conform_curves_add_series(c, "c", 2);
  conform_curves_append(c, u, 1, INFINITY);
  g_assert_false(conform_curves_get_value_at(c, u, 1, &x, &y));
  g_assert_false(conform_curves_get_y_extent(c, u, NULL, NULL));
}

static void
test_bounded_million(void)
{
  g_autoptr(ConformCurves) c = new_curves();
  int s = conform_curves_add_series(c, "flat", 0);
  int t = conform_curves_add_series(c, "dip", 1);
  const int N = 1000000;
  for (int i = 0; i < N; i++)
    conform_curves_append(c, s, i, i == 123457 ? 1e6 : 1.0);
  /* The same through append_many, in chunks, with a single dip. */
  double xs[1000], ys[1000];
  for (int k = 0; k < N / 1000; k++) {
    for (int i = 0; i < 1000; i++) {
      xs[i] = k * 1000 + i;
      ys[i] = (k * 1000 + i == 765432) ? -5.0 : 2.0;
    }
    conform_curves_append_many(c, t, xs, ys, 1000);
  }
  for (int id = 0; id < 2; id++) {
    g_assert_cmpint(conform_curves_get_n_points(c, id), ==, N);
    int nb = conform_curves_get_n_buckets(c, id);
    g_assert_cmpint(nb, <=, CONFORM_CURVES_MAX_BUCKETS);
    g_assert_cmpint(nb, >=, CONFORM_CURVES_MAX_BUCKETS / 4);
  }
  double mn, mx;
  g_assert_true(conform_curves_get_y_extent(c, s, &mn, &mx));
  g_assert_cmpfloat(mx, ==, 1e6); /* the spike survives decimation */
  g_assert_cmpfloat(mn, ==, 1.0);
  g_assert_true(conform_curves_get_y_extent(c, t, &mn, &mx));
  g_assert_cmpfloat(mn, ==, -5.0);
  g_assert_cmpfloat(mx, ==, 2.0);
  /* x range is kept: the nearest point to the end is near the end. */
  double x, y;
  g_assert_true(conform_curves_get_value_at(c, s, N, &x, &y));
  g_assert_cmpfloat(x, >, N - 1000);
  g_assert_true(conform_curves_get_value_at(c, s, 0, &x, &y));
  g_assert_cmpfloat(x, <, 1000);
  /* Means of a flat stretch stay exact. */
  g_assert_true(conform_curves_get_value_at(c, s, 900000, &x, &y));
  g_assert_cmpfloat(y, ==, 1.0);

  /* The spike is drawn: the flat series' min-max band runs to the top of
   * the plot at the spike's x, not elsewhere. */
  int W = 800, H = 400;
  ConformPlotArea a;
  g_assert_true(conform_curves_get_plot_area(c, W, H, &a));
  Image img;
  image_render(&img, c, W, H);
  int px = (int)conform_plot_x(&a, 123457), pref = (int)conform_plot_x(&a, 700000);
  int top = (int)a.y0 + 3;
  int ink = count_ink(&img, px - 3, top, px + 3, top + 10, 8);
  int ref = count_ink(&img, pref - 3, top, pref + 3, top + 10, 8);
  g_assert_cmpint(ink, >, ref + 10);
  image_clear(&img);
}

static void
test_clear_keeps_series(void)
{
  g_autoptr(ConformCurves) c = new_curves();
  int s = conform_curves_add_series(c, "a", 0);
  for (int i = 0; i < 10000; i++)
    conform_curves_append(c, s, i, i);
  conform_curves_set_hover_x(c, 5);
  conform_curves_clear(c);
  g_assert_cmpint(conform_curves_get_n_series(c), ==, 1);
  g_assert_cmpint(conform_curves_get_n_points(c, s), ==, 0);
  g_assert_cmpint(conform_curves_get_n_buckets(c, s), ==, 0);
  g_assert_true(isnan(conform_curves_get_hover_x(c)));
  ConformPlotArea a;
  g_assert_false(conform_curves_get_plot_area(c, 300, 200, &a));
  /* Fresh store: exact points again. */
  conform_curves_append(c, s, 3, 4.5);
  double x, y;
  g_assert_true(conform_curves_get_value_at(c, s, 0, &x, &y));
  g_assert_cmpfloat(x, ==, 3);
  g_assert_cmpfloat(y, ==, 4.5);
}

/* ---- drawing ------------------------------------------------------------ */

static void
test_log_y_skips_non_positive(void)
{
  g_autoptr(ConformCurves) c = new_curves();
  int s = conform_curves_add_series(c, "loss", 0);
  double ys[] = {1.0, 0.0, -3.0, 0.1, NAN, INFINITY, -INFINITY, 0.01, 1e-300, 5e-324};
  for (int i = 0; i < (int)G_N_ELEMENTS(ys); i++)
    conform_curves_append(c, s, i, ys[i]);
  conform_curves_set_log_y(c, TRUE);
  ConformPlotArea a;
  g_assert_true(conform_curves_get_plot_area(c, 400, 300, &a));
  g_assert_true(a.ylog);
  g_assert_cmpfloat(a.ymin, >, 0);
  g_assert_true(isfinite(a.ymax) && a.ymax > a.ymin);
  Image img;
  image_render(&img, c, 400, 300);
  image_clear(&img);
  conform_curves_set_smoothing(c, 0.9);
  conform_curves_set_hover_x(c, 2);
  image_render(&img, c, 400, 300);
  image_clear(&img);
  g_autofree char *r = conform_curves_get_readout(c);
  g_assert_nonnull(r);

  /* Only non-positive values: log axis has nothing to show, still draws. */
  g_autoptr(ConformCurves) d = new_curves();
  int t = conform_curves_add_series(d, "zero", 0);
  for (int i = 0; i < 50; i++)
    conform_curves_append(d, t, i, i % 2 ? 0.0 : -1.0);
  conform_curves_set_log_y(d, TRUE);
  conform_curves_set_smoothing(d, 0.5);
  g_assert_true(conform_curves_get_plot_area(d, 400, 300, &a));
  image_render(&img, d, 400, 300);
  image_clear(&img);
  /* Back to linear. */
  conform_curves_set_log_y(d, FALSE);
  g_assert_true(conform_curves_get_plot_area(d, 400, 300, &a));
  g_assert_cmpfloat(a.ymin, <=, -1.0);
  g_assert_cmpfloat(a.ymax, >=, 0.0);
}

static void
test_log_y_ticks_narrow_range(void)
{
  /* Less than a decade on a log axis still gets labelled ticks (ink left of
   * the plot). */
  g_autoptr(ConformCurves) c = new_curves();
  int s = conform_curves_add_series(c, "loss", 0);
  for (int i = 0; i < 100; i++)
    conform_curves_append(c, s, i, 0.3 + 0.4 * i / 99.0);
  conform_curves_set_log_y(c, TRUE);
  ConformPlotArea a;
  g_assert_true(conform_curves_get_plot_area(c, 400, 300, &a));
  Image img;
  image_render(&img, c, 400, 300);
  g_assert_cmpint(count_ink(&img, 0, (int)a.y0, (int)a.x0 - 3, (int)(a.y0 + a.h), 60), >, 30);
  image_clear(&img);
}

static void
test_smoothing_changes_line_not_data(void)
{
  g_autoptr(ConformCurves) c = new_curves();
  int s = conform_curves_add_series(c, "noisy", 0);
  GRand *r = g_rand_new_with_seed(3);
  for (int i = 0; i < 2000; i++)
    conform_curves_append(c, s, i, 1.0 + g_rand_double_range(r, -0.5, 0.5));
  g_rand_free(r);
  double x0, y0;
  conform_curves_get_value_at(c, s, 1234, &x0, &y0);
  int nb = conform_curves_get_n_buckets(c, s);
  ConformPlotArea a0, a1;
  conform_curves_get_plot_area(c, 500, 300, &a0);
  Image raw, smooth;
  image_render(&raw, c, 500, 300);
  conform_curves_set_smoothing(c, 0.95);
  image_render(&smooth, c, 500, 300);
  conform_curves_get_plot_area(c, 500, 300, &a1);
  /* Same axes; different line. */
  g_assert_cmpfloat(a0.ymin, ==, a1.ymin);
  g_assert_cmpfloat(a0.ymax, ==, a1.ymax);
  g_assert_cmpint(count_diff(&raw, &smooth, (int)a0.x0, (int)a0.y0, (int)(a0.x0 + a0.w), (int)(a0.y0 + a0.h)), >,
                  500);
  /* The smoothed line hugs the mean 1.0: full-colour pixels near y(1.0) in
   * the right half, none near the noise extremes there. */
  GdkRGBA col;
  conform_palette_series(0, &col);
  int yc = (int)conform_plot_y(&a1, 1.0), ytop = (int)conform_plot_y(&a1, 1.45);
  int xl = (int)(a1.x0 + a1.w * 0.5), xr = (int)(a1.x0 + a1.w - 4);
  g_assert_cmpint(count_colour(&smooth, xl, yc - 8, xr, yc + 8, &col, 30), >, 50);
  g_assert_cmpint(count_colour(&smooth, xl, ytop - 3, xr, ytop + 3, &col, 30), ==, 0);
  g_assert_cmpint(count_colour(&raw, xl, ytop - 3, xr, ytop + 3, &col, 30), >, 0);
  double x1, y1;
  conform_curves_get_value_at(c, s, 1234, &x1, &y1);
  g_assert_cmpfloat(x0, ==, x1);
  g_assert_cmpfloat(y0, ==, y1);
  g_assert_cmpint(conform_curves_get_n_buckets(c, s), ==, nb);
  /* Clamped. */
  conform_curves_set_smoothing(c, 5);
  conform_curves_set_smoothing(c, NAN);
  image_clear(&raw);
  image_clear(&smooth);
}

static void
test_rising_line_pixels(void)
{
  g_autoptr(ConformCurves) c = new_curves();
  conform_curves_set_title(c, "rising");
  int s = conform_curves_add_series(c, "y = x", 2);
  for (int i = 0; i <= 100; i++)
    conform_curves_append(c, s, i, i);
  int W = 480, H = 320;
  ConformPlotArea a;
  g_assert_true(conform_curves_get_plot_area(c, W, H, &a));
  g_assert_cmpfloat(a.xmin, ==, 0);
  g_assert_cmpfloat(a.xmax, ==, 100);
  Image img;
  image_render(&img, c, W, H);
  GdkRGBA col;
  conform_palette_series(2, &col);
  int left = (int)(a.x0 + 0.1 * a.w), right = (int)(a.x0 + 0.9 * a.w);
  int bottom = (int)(a.y0 + 0.75 * a.h), topq = (int)(a.y0 + 0.25 * a.h);
  /* Bottom-left and top-right quadrants have the line, the others not. */
  g_assert_cmpint(count_colour(&img, (int)a.x0, bottom, left, (int)(a.y0 + a.h), &col, 30), >, 5);
  g_assert_cmpint(count_colour(&img, right, (int)a.y0, (int)(a.x0 + a.w), topq, &col, 30), >, 5);
  g_assert_cmpint(count_colour(&img, (int)a.x0, (int)a.y0, left, topq, &col, 30), ==, 0);
  g_assert_cmpint(count_colour(&img, right, bottom, (int)(a.x0 + a.w), (int)(a.y0 + a.h), &col, 30), ==, 0);
  /* The line passes through the mapped middle point. */
  int mx = (int)conform_plot_x(&a, 50), my = (int)conform_plot_y(&a, 50);
  g_assert_cmpint(count_colour(&img, mx - 2, my - 2, mx + 2, my + 2, &col, 30), >, 0);
  /* The legend swatch is drawn in the series colour above the plot. */
  g_assert_cmpint(count_colour(&img, 0, 0, W - 1, (int)a.y0 - 2, &col, 30), >, 5);
  image_clear(&img);
}

static void
test_hover_readout(void)
{
  g_autoptr(ConformCurves) c = new_curves();
  conform_curves_set_x_label(c, "step");
  int s = conform_curves_add_series(c, "loss", 0);
  int v = conform_curves_add_series(c, "violation", 5);
  int e = conform_curves_add_series(c, "empty", 3);
  (void)e;
  for (int i = 0; i <= 100; i++) {
    conform_curves_append(c, s, i, 1.0 / (1 + i));
    if (i % 10 == 0)
      conform_curves_append(c, v, i, 1e-3 * i);
  }
  g_assert_null(conform_curves_get_readout(c));
  int W = 500, H = 300;
  Image before;
  image_render(&before, c, W, H);
  conform_curves_set_hover_x(c, 42.3);
  g_assert_cmpfloat(conform_curves_get_hover_x(c), ==, 42.3);
  g_autofree char *text = conform_curves_get_readout(c);
  g_assert_nonnull(text);
  g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
  g_assert_cmpint(g_strv_length(lines), ==, 4);
  g_assert_cmpstr(lines[0], ==, "step 42");
  g_autofree char *expect = g_strdup_printf("loss: %.4g", 1.0 / 43);
  g_assert_cmpstr(lines[1], ==, expect);
  g_assert_cmpstr(lines[2], ==, "violation: 0.04 (step 40)");
  g_assert_cmpstr(lines[3], ==, "empty: –");

  ConformPlotArea a;
  conform_curves_get_plot_area(c, W, H, &a);
  Image after;
  image_render(&after, c, W, H);
  int px = (int)round(conform_plot_x(&a, 42.3));
  /* The guide line: ink down the column; and a readout box beside it. */
  int col_diff = count_diff(&before, &after, px - 1, (int)(a.y0 + a.h * 0.6), px + 1, (int)(a.y0 + a.h - 2));
  g_assert_cmpint(col_diff, >, 10);
  g_assert_cmpint(count_diff(&before, &after, px + 8, (int)a.y0, px + 120, (int)(a.y0 + 60)), >, 200);
  /* Export leaves the hover out. */
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp("conform-curves-XXXXXX", &error);
  g_autofree char *path = g_build_filename(dir, "c.png", NULL);
  g_assert_true(conform_curves_export_png(c, path, W, H, &error));
  cairo_surface_t *png = cairo_image_surface_create_from_png(path);
  Image exported = {png, W, H, {before.bg[0], before.bg[1], before.bg[2]}};
  g_assert_cmpint(count_diff(&before, &exported, 0, 0, W - 1, H - 1), ==, 0);
  cairo_surface_destroy(png);
  g_unlink(path);
  g_rmdir(dir);

  /* Leaving hides it. */
  conform_curves_set_hover_x(c, NAN);
  g_assert_null(conform_curves_get_readout(c));
  Image gone;
  image_render(&gone, c, W, H);
  g_assert_cmpint(count_diff(&before, &gone, 0, 0, W - 1, H - 1), ==, 0);
  image_clear(&before);
  image_clear(&after);
  image_clear(&gone);

  /* Decimated: the readout says which steps the value summarises. */
  g_autoptr(ConformCurves) d = new_curves();
  int t = conform_curves_add_series(d, "loss", 0);
  for (int i = 0; i < 3 * CONFORM_CURVES_MAX_BUCKETS; i++)
    conform_curves_append(d, t, i, 2.0);
  conform_curves_set_hover_x(d, 5000);
  g_autofree char *dtext = conform_curves_get_readout(d);
  g_assert_nonnull(strstr(dtext, "mean of 4"));
  g_assert_nonnull(strstr(dtext, "loss: 2"));
}

static void
test_empty_state(void)
{
  g_autoptr(ConformCurves) c = new_curves();
  ConformPlotArea a;
  g_assert_false(conform_curves_get_plot_area(c, 300, 200, &a));
  Image img;
  image_render(&img, c, 300, 200);
  g_assert_cmpint(count_ink(&img, 60, 85, 240, 115, 60), >, 20); /* "No training yet" */
  image_clear(&img);
  conform_curves_set_title(c, "loss");
  conform_curves_add_series(c, "train", 0);
  conform_curves_set_hover_x(c, 3);
  g_assert_null(conform_curves_get_readout(c));
  image_render(&img, c, 300, 200);
  image_clear(&img);
  /* One point, tiny sizes. */
  conform_curves_append(c, 0, 5, 1);
  g_assert_true(conform_curves_get_plot_area(c, 300, 200, &a));
  g_assert_cmpfloat(a.xmax, >, a.xmin);
  g_assert_cmpfloat(a.ymax, >, a.ymin);
  image_render(&img, c, 1, 1);
  image_clear(&img);
  image_render(&img, c, 30, 20);
  image_clear(&img);
}

static void
test_export_png(void)
{
  g_autoptr(ConformCurves) c = new_curves();
  conform_curves_set_title(c, "loss");
  int s = conform_curves_add_series(c, "train", 0);
  for (int i = 0; i < 500; i++)
    conform_curves_append(c, s, i, exp(-i / 100.0));
  conform_curves_set_log_y(c, TRUE);
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp("conform-curves-XXXXXX", &error);
  g_assert_no_error(error);
  g_autofree char *path = g_build_filename(dir, "curves.png", NULL);
  g_assert_true(conform_curves_export_png(c, path, 640, 360, &error));
  g_assert_no_error(error);
  cairo_surface_t *png = cairo_image_surface_create_from_png(path);
  g_assert_cmpint(cairo_surface_status(png), ==, CAIRO_STATUS_SUCCESS);
  g_assert_cmpint(cairo_image_surface_get_width(png), ==, 640);
  g_assert_cmpint(cairo_image_surface_get_height(png), ==, 360);
  Image img;
  image_render(&img, c, 640, 360);
  Image exported = {png, 640, 360, {img.bg[0], img.bg[1], img.bg[2]}};
  g_assert_cmpint(count_diff(&img, &exported, 0, 0, 639, 359), ==, 0);
  g_assert_cmpint(count_ink(&exported, 0, 0, 639, 359, 30), >, 500);
  image_clear(&img);
  cairo_surface_destroy(png);
  g_autofree char *bad = g_build_filename(dir, "nope", "x.png", NULL);
  g_assert_false(conform_curves_export_png(c, bad, 640, 360, &error));
  g_assert_nonnull(error);
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
  GtkWidget *w = conform_curves_new();
  gtk_window_set_child(GTK_WINDOW(win), w);
  gtk_window_present(GTK_WINDOW(win));
  spin(200);
  g_assert_true(gtk_widget_get_realized(w));
  int mw, mh;
  gtk_widget_measure(w, GTK_ORIENTATION_HORIZONTAL, -1, &mw, NULL, NULL, NULL);
  gtk_widget_measure(w, GTK_ORIENTATION_VERTICAL, -1, &mh, NULL, NULL, NULL);
  g_assert_cmpint(mw, >=, 240);
  g_assert_cmpint(mh, >=, 160);
  ConformCurves *c = CONFORM_CURVES(w);
  int s = conform_curves_add_series(c, "loss", 0);
  conform_curves_set_title(c, "loss");
  conform_curves_set_log_y(c, TRUE);
  conform_curves_set_smoothing(c, 0.6);
  /* Live appends between frames. */
  for (int k = 0; k < 20; k++) {
    for (int i = 0; i < 500; i++)
      conform_curves_append(c, s, k * 500 + i, exp(-(k * 500 + i) / 3000.0));
    spin(10);
  }
  conform_curves_set_hover_x(c, 4000);
  GtkSnapshot *snap = gtk_snapshot_new();
  GTK_WIDGET_GET_CLASS(w)->snapshot(w, snap);
  GskRenderNode *node = gtk_snapshot_free_to_node(snap);
  g_assert_nonnull(node);
  gsk_render_node_unref(node);
  spin(50);
  gtk_window_destroy(GTK_WINDOW(win));
  spin(20);
}

int
main(int argc, char **argv)
{
  g_setenv("GTK_A11Y", "none", TRUE); /* no accessibility bus under Xvfb */
  gtk_test_init(&argc, &argv, NULL);
  g_test_add_func("/curves/store/exact-before-decimation", test_exact_before_decimation);
  g_test_add_func("/curves/store/unsorted-and-gaps", test_unsorted_and_gaps);
  g_test_add_func("/curves/store/bounded-million", test_bounded_million);
  g_test_add_func("/curves/store/clear-keeps-series", test_clear_keeps_series);
  g_test_add_func("/curves/draw/log-y-non-positive", test_log_y_skips_non_positive);
  g_test_add_func("/curves/draw/log-y-narrow-range", test_log_y_ticks_narrow_range);
  g_test_add_func("/curves/draw/smoothing", test_smoothing_changes_line_not_data);
  g_test_add_func("/curves/draw/rising-line", test_rising_line_pixels);
  g_test_add_func("/curves/draw/empty-state", test_empty_state);
  g_test_add_func("/curves/hover-readout", test_hover_readout);
  g_test_add_func("/curves/export-png", test_export_png);
  g_test_add_func("/curves/widget/realized", test_realized_widget);
  return g_test_run();
}
