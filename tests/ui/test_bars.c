/* ConformBars: the data model, drawing (pixel checks on a Cairo image
 * surface: bar heights, legend colours, references, missing bars), hover
 * readout and hit testing, crowded labels, tiny sizes, PNG export and a
 * realized widget. Needs a display (run under xvfb-run). */
#include <glib/gstdio.h>
#include <gtk/gtk.h>
#include <math.h>
#include <string.h>

#include "conform-bars.h"
#include "pixels.h"

/* ---- helpers ------------------------------------------------------------ */

static void
draw_widget(GtkWidget *w, cairo_t *cr, int width, int height)
{
  conform_bars_draw(CONFORM_BARS(w), cr, width, height);
}

static void
image_render(Image *img, ConformBars *widget, int w, int h)
{
  pixels_render(img, GTK_WIDGET(widget), draw_widget, w, h);
}

static int
column_height(const Image *img, int x0, int x1, int y0, int y1, const GdkRGBA *c)
{
  int best = 0;
  for (int x = MAX(x0, 0); x <= MIN(x1, img->w - 1); x++) {
    int run = 0;
    for (int y = MAX(y0, 0); y <= MIN(y1, img->h - 1); y++) {
      run = is_colour(img, x, y, c, 2) ? run + 1 : 0;
      best = MAX(best, run);
    }
  }
  return best;
}

static ConformBars *
new_bars(void)
{
  return CONFORM_BARS(g_object_ref_sink(conform_bars_new()));
}

static const char *const fashion[] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                      "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
static const double samples_v[10] = {0.05, 0.10, 0.15, 0.20, 0.02, 0.12, 0.08, 0.11, 0.09, 0.08};
static const double train_v[10] = {0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1};

/* Fashion-MNIST classes with "samples" (orange) and "training" (blue). */
static ConformBars *
fashion_bars(void)
{
  ConformBars *b = new_bars();
  conform_bars_set_categories(b, fashion, 10);
  g_assert_cmpint(conform_bars_add_series(b, "samples", 0), ==, 0);
  g_assert_cmpint(conform_bars_add_series(b, "training", 4), ==, 1);
  conform_bars_set_values(b, 0, samples_v, 10);
  conform_bars_set_values(b, 1, train_v, 10);
  return b;
}

/* ---- model -------------------------------------------------------------- */

static void
test_model(void)
{
  g_autoptr(ConformBars) b = new_bars();
  g_assert_cmpint(conform_bars_get_n_categories(b), ==, 0);
  g_assert_cmpint(conform_bars_get_n_series(b), ==, 0);
  const char *cats[] = {"a", "b", "c"};
  conform_bars_set_categories(b, cats, 3);
  g_assert_cmpint(conform_bars_get_n_categories(b), ==, 3);
  g_assert_cmpstr(conform_bars_get_category(b, 2), ==, "c");
  for (int i = 0; i < CONFORM_BARS_MAX_SERIES; i++) {
    g_autofree char *l = g_strdup_printf("s%d", i);
    g_assert_cmpint(conform_bars_add_series(b, l, i == 1 ? 6 : -1), ==, i);
  }
  g_assert_cmpint(conform_bars_add_series(b, "too many", 0), ==, -1);
  g_assert_cmpint(conform_bars_get_n_series(b), ==, CONFORM_BARS_MAX_SERIES);
  g_assert_cmpint(conform_bars_get_series_color(b, 1), ==, 6);
  g_assert_cmpint(conform_bars_get_series_color(b, 2), ==, 2); /* < 0: the id */
  g_assert_cmpstr(conform_bars_get_series_label(b, 3), ==, "s3");
  /* New series start missing. */
  g_assert_true(isnan(conform_bars_get_value(b, 0, 0)));
  /* Fewer values than categories: the rest are missing; extra ignored. */
  double v[] = {0.5, 0.25};
  conform_bars_set_values(b, 0, v, 2);
  g_assert_cmpfloat(conform_bars_get_value(b, 0, 1), ==, 0.25);
  g_assert_true(isnan(conform_bars_get_value(b, 0, 2)));
  double w[] = {1, 2, 3, 4, 5};
  conform_bars_set_values(b, 1, w, 5);
  g_assert_cmpfloat(conform_bars_get_value(b, 1, 2), ==, 3);
  g_assert_true(isnan(conform_bars_get_value(b, 1, 3))); /* out of range */
  g_assert_true(isnan(conform_bars_get_value(b, 7, 0)));
  /* Growing the categories keeps the first values. */
  const char *more[] = {"a", "b", "c", "d"};
  conform_bars_set_categories(b, more, 4);
  g_assert_cmpfloat(conform_bars_get_value(b, 0, 0), ==, 0.5);
  g_assert_cmpfloat(conform_bars_get_value(b, 1, 2), ==, 3);
  g_assert_true(isnan(conform_bars_get_value(b, 1, 3)));
  /* Shrinking, clearing, NULL values. */
  conform_bars_set_categories(b, more, 1);
  g_assert_cmpfloat(conform_bars_get_value(b, 1, 0), ==, 1);
  conform_bars_set_values(b, 1, NULL, 0);
  g_assert_true(isnan(conform_bars_get_value(b, 1, 0)));
  conform_bars_set_values(b, 0, v, 2);
  conform_bars_clear_values(b);
  g_assert_true(isnan(conform_bars_get_value(b, 0, 0)));
  conform_bars_remove_all_series(b);
  g_assert_cmpint(conform_bars_get_n_series(b), ==, 0);
  g_assert_cmpint(conform_bars_get_n_categories(b), ==, 1);
  conform_bars_set_categories(b, NULL, 0);
  g_assert_cmpint(conform_bars_get_n_categories(b), ==, 0);
}

/* ---- drawing ------------------------------------------------------------ */

/* Measured column heights are proportional to the values, and match the
 * y axis: height = value / ymax * plot height (to a pixel). */
static void
test_heights_proportional(void)
{
  g_autoptr(ConformBars) b = fashion_bars();
  const int W = 900, H = 420;
  ConformPlotArea a;
  g_assert_true(conform_bars_get_plot_area(b, W, H, &a));
  g_assert_cmpfloat(a.ymin, ==, 0);
  g_assert_cmpfloat(a.ymax, >=, 0.20);
  g_assert_cmpfloat(a.ymax, <=, 0.30); /* a nice top just above the largest value */
  g_assert_cmpfloat(a.xmin, ==, 0);
  g_assert_cmpfloat(a.xmax, ==, 10);
  Image img;
  image_render(&img, b, W, H);
  GdkRGBA cs, ct;
  conform_palette_series(0, &cs);
  conform_palette_series(4, &ct);
  double slot = a.w / 10;
  int y0 = (int)floor(a.y0) - 1, y1 = (int)ceil(a.y0 + a.h) + 1;
  double ratio_lo = INFINITY, ratio_hi = -INFINITY;
  for (int c = 0; c < 10; c++) {
    int x0 = (int)ceil(a.x0 + c * slot), x1 = (int)floor(a.x0 + (c + 1) * slot) - 1;
    int hs = column_height(&img, x0, x1, y0, y1, &cs);
    int ht = column_height(&img, x0, x1, y0, y1, &ct);
    g_assert_cmpfloat(fabs(hs - samples_v[c] / a.ymax * a.h), <=, 1.5);
    g_assert_cmpfloat(fabs(ht - train_v[c] / a.ymax * a.h), <=, 1.5);
    ratio_lo = MIN(ratio_lo, hs / samples_v[c]);
    ratio_hi = MAX(ratio_hi, hs / samples_v[c]);
    /* Samples left of training within the group. */
    double sx, tx;
    g_assert_true(conform_bars_get_bar_rect(b, W, H, 0, c, &sx, NULL, NULL, NULL));
    g_assert_true(conform_bars_get_bar_rect(b, W, H, 1, c, &tx, NULL, NULL, NULL));
    g_assert_cmpfloat(sx, <, tx);
    g_assert_true(is_colour(&img, (int)sx + 1, (int)(a.y0 + a.h) - 1, &cs, 2));
  }
  /* value 0.02 .. 0.20: the same pixels per unit within rounding */
  g_assert_cmpfloat(ratio_hi / ratio_lo, <, 1.15);
  /* Doubling every value with a fixed axis doubles every height. */
  conform_bars_set_y_max(b, 0.5);
  g_assert_true(conform_bars_get_plot_area(b, W, H, &a));
  g_assert_cmpfloat(a.ymax, ==, 0.5);
  double dbl[10];
  for (int c = 0; c < 10; c++)
    dbl[c] = 2 * samples_v[c];
  Image one, two;
  image_render(&one, b, W, H);
  conform_bars_set_values(b, 0, dbl, 10);
  image_render(&two, b, W, H);
  for (int c = 0; c < 10; c++) {
    int x0 = (int)ceil(a.x0 + c * slot), x1 = (int)floor(a.x0 + (c + 1) * slot) - 1;
    int h1 = column_height(&one, x0, x1, y0, y1, &cs), h2 = column_height(&two, x0, x1, y0, y1, &cs);
    g_assert_cmpint(ABS(h2 - 2 * h1), <=, 2);
  }
  image_clear(&one);
  image_clear(&two);
  image_clear(&img);
}

/* Each series' colour appears in the legend row and in the bars; a series
 * with another palette index uses that colour. */
static void
test_legend_colours(void)
{
  g_autoptr(ConformBars) b = fashion_bars();
  conform_bars_set_title(b, "Class shares");
  double pred[10];
  for (int c = 0; c < 10; c++)
    pred[c] = 0.1 + 0.005 * c;
  g_assert_cmpint(conform_bars_add_series(b, "predicted", 2), ==, 2);
  conform_bars_set_values(b, 2, pred, 10);
  const int W = 900, H = 400;
  ConformPlotArea a;
  g_assert_true(conform_bars_get_plot_area(b, W, H, &a));
  Image img;
  image_render(&img, b, W, H);
  int colours[] = {0, 4, 2};
  for (int s = 0; s < 3; s++) {
    GdkRGBA c;
    conform_palette_series(colours[s], &c);
    /* legend swatch above the plot (12 x 10) */
    g_assert_cmpint(count_colour(&img, 0, 0, W - 1, (int)a.y0 - 2, &c, 2), >=, 100);
    /* bars in the plot */
    g_assert_cmpint(count_colour(&img, (int)a.x0, (int)a.y0, (int)(a.x0 + a.w), (int)(a.y0 + a.h), &c, 2), >, 500);
  }
  /* A colour no series uses is absent. */
  GdkRGBA unused;
  conform_palette_series(5, &unused);
  g_assert_cmpint(count_colour(&img, 0, 0, W - 1, H - 1, &unused, 2), ==, 0);
  /* The three bars of a group sit side by side without overlapping. */
  double x[3], w[3];
  for (int s = 0; s < 3; s++)
    g_assert_true(conform_bars_get_bar_rect(b, W, H, s, 4, &x[s], NULL, &w[s], NULL));
  g_assert_cmpfloat(x[0] + w[0], <=, x[1]);
  g_assert_cmpfloat(x[1] + w[1], <=, x[2]);
  g_assert_cmpfloat(x[0], >=, a.x0 + 4 * a.w / 10);
  g_assert_cmpfloat(x[2] + w[2], <=, a.x0 + 5 * a.w / 10);
  image_clear(&img);
}

static void
test_hover_readout(void)
{
  g_autoptr(ConformBars) b = fashion_bars();
  g_assert_cmpint(conform_bars_get_hover_category(b), ==, -1);
  g_autofree char *r5 = conform_bars_get_readout(b, 5);
  g_assert_cmpstr(r5, ==, "Sandal: samples 0.12, training 0.1");
  g_assert_null(conform_bars_get_readout(b, 10));
  g_assert_null(conform_bars_get_readout(b, -1));
  /* Missing values say so; references are appended. */
  double v[10];
  memcpy(v, samples_v, sizeof v);
  v[5] = NAN;
  conform_bars_set_values(b, 0, v, 10);
  conform_bars_set_reference_line(b, "uniform", 0.1);
  g_autofree char *r5b = conform_bars_get_readout(b, 5);
  g_assert_cmpstr(r5b, ==, "Sandal: samples n/a, training 0.1, uniform 0.1");
  double target[10] = {0.2, NAN, 0, 0, 0, 0.15, 0, 0, 0, 0};
  conform_bars_set_reference(b, "target", target, 10);
  g_autofree char *r0 = conform_bars_get_readout(b, 0);
  g_assert_cmpstr(r0, ==, "T-shirt/top: samples 0.05, training 0.1, target 0.2, uniform 0.1");
  g_autofree char *r1 = conform_bars_get_readout(b, 1);
  g_assert_cmpstr(r1, ==, "Trouser: samples 0.1, training 0.1, uniform 0.1");

  /* Hit testing: the centre of a bar and its label area are its category;
   * the margins are none. */
  const int W = 800, H = 400;
  ConformPlotArea a;
  g_assert_true(conform_bars_get_plot_area(b, W, H, &a));
  for (int c = 0; c < 10; c++) {
    double x, y, w, h;
    g_assert_true(conform_bars_get_bar_rect(b, W, H, 1, c, &x, &y, &w, &h));
    g_assert_cmpint(conform_bars_category_at(b, W, H, x + w / 2, y + h / 2), ==, c);
    g_assert_cmpint(conform_bars_category_at(b, W, H, a.x0 + (c + 0.5) * a.w / 10, a.y0 + a.h + 10), ==, c);
  }
  g_assert_cmpint(conform_bars_category_at(b, W, H, a.x0 - 5, a.y0 + 10), ==, -1);
  g_assert_cmpint(conform_bars_category_at(b, W, H, a.x0 + 10, 2), ==, -1);
  g_assert_cmpint(conform_bars_category_at(b, W, H, W - 1, a.y0 + 10), ==, -1);

  /* The readout box is drawn beside the hovered group; export leaves it out. */
  Image before, after;
  image_render(&before, b, W, H);
  conform_bars_set_hover_category(b, 2);
  g_assert_cmpint(conform_bars_get_hover_category(b), ==, 2);
  image_render(&after, b, W, H);
  double gx1 = a.x0 + 3 * a.w / 10;
  int x0 = (int)gx1 + 6, x1 = (int)gx1 + 120, y0 = (int)a.y0 + 4, y1 = (int)a.y0 + 40;
  int changed = 0;
  for (int y = y0; y <= y1; y++)
    for (int x = x0; x <= x1; x++) {
      int r1_, g1, b1, r2, g2, b2;
      image_rgb(&before, x, y, &r1_, &g1, &b1);
      image_rgb(&after, x, y, &r2, &g2, &b2);
      changed += r1_ != r2 || g1 != g2 || b1 != b2;
    }
  g_assert_cmpint(changed, >, 300);
  conform_bars_set_hover_category(b, 99); /* out of range hides */
  g_assert_cmpint(conform_bars_get_hover_category(b), ==, -1);
  image_clear(&before);
  image_clear(&after);
}

/* References: the per-category ticks at their values and the horizontal
 * line, both inside the y range. */
static void
test_references(void)
{
  g_autoptr(ConformBars) b = new_bars();
  const char *cats[] = {"mode 0", "mode 1", "mode 2", "mode 3"};
  conform_bars_set_categories(b, cats, 4);
  conform_bars_add_series(b, "samples", 0);
  double v[] = {0.1, 0.1, 0.1, 0.1};
  conform_bars_set_values(b, 0, v, 4);
  double target[] = {0.4, NAN, 0.2, 0.3};
  conform_bars_set_reference(b, "target", target, 4);
  const int W = 600, H = 360;
  ConformPlotArea a;
  g_assert_true(conform_bars_get_plot_area(b, W, H, &a));
  g_assert_cmpfloat(a.ymax, >=, 0.4); /* the axis covers the references */
  Image img;
  image_render(&img, b, W, H);
  double slot = a.w / 4;
  for (int c = 0; c < 4; c++) {
    int x0 = (int)(a.x0 + c * slot + 4), x1 = (int)(a.x0 + (c + 1) * slot - 4);
    if (isnan(target[c])) {
      /* no tick: nothing between the bar top and the plot top but grid lines */
      int py = (int)round(a.y0 + a.h * (1 - 0.3 / a.ymax));
      g_assert_cmpint(count_ink(&img, x0, py - 2, x1, py + 2, 120), ==, 0);
      continue;
    }
    int py = (int)round(a.y0 + a.h * (1 - target[c] / a.ymax));
    g_assert_cmpint(count_ink(&img, x0, py - 1, x1, py + 1, 120), >, (x1 - x0) / 3);
  }
  image_clear(&img);
  /* The horizontal line: ink along its row across the plot, also between groups. */
  conform_bars_set_reference(b, NULL, NULL, 0);
  conform_bars_set_reference_line(b, "uniform 1/4", 0.25);
  g_assert_true(conform_bars_get_plot_area(b, W, H, &a));
  g_assert_cmpfloat(a.ymax, >=, 0.25);
  image_render(&img, b, W, H);
  int py = (int)round(a.y0 + a.h * (1 - 0.25 / a.ymax));
  g_assert_cmpint(count_ink(&img, (int)a.x0 + 2, py - 1, (int)(a.x0 + a.w) - 2, py + 1, 60), >, a.w / 3);
  image_clear(&img);
  conform_bars_set_reference_line(b, NULL, NAN);
  g_assert_true(conform_bars_get_plot_area(b, W, H, &a));
  g_assert_cmpfloat(a.ymax, <, 0.25);
}

/* Missing, zero, negative and Inf values; empty states. */
static void
test_nan_and_empty(void)
{
  g_autoptr(ConformBars) b = new_bars();
  ConformPlotArea a;
  /* No categories, no series: the hint, no layout. */
  g_assert_false(conform_bars_get_plot_area(b, 300, 200, &a));
  conform_bars_set_empty_text(b, "Class shares appear with explicit samples");
  Image img;
  image_render(&img, b, 300, 200);
  g_assert_cmpint(count_ink(&img, 60, 85, 240, 115, 60), >, 20); /* centred hint */
  image_clear(&img);
  g_assert_false(conform_bars_get_bar_rect(b, 300, 200, 0, 0, NULL, NULL, NULL, NULL));
  g_assert_cmpint(conform_bars_category_at(b, 300, 200, 150, 100), ==, -1);
  /* Categories without series: still empty. */
  conform_bars_set_categories(b, fashion, 10);
  g_assert_false(conform_bars_get_plot_area(b, 300, 200, &a));
  /* A series with every value missing: axes (unit range), no bars. */
  conform_bars_add_series(b, "samples", 0);
  g_assert_true(conform_bars_get_plot_area(b, 600, 300, &a));
  g_assert_cmpfloat(a.ymax, ==, 1);
  GdkRGBA cs;
  conform_palette_series(0, &cs);
  image_render(&img, b, 600, 300);
  g_assert_cmpint(count_colour(&img, (int)a.x0, (int)a.y0, (int)(a.x0 + a.w), (int)(a.y0 + a.h), &cs, 2), ==, 0);
  g_assert_cmpint(count_ink(&img, (int)a.x0 + 5, (int)a.y0 + 5, (int)(a.x0 + a.w) - 5, (int)(a.y0 + a.h) - 5, 60),
                  >, 20); /* "no values yet" */
  image_clear(&img);
  /* All zero: present bars one pixel tall on a unit axis. */
  double zero[10] = {0};
  conform_bars_set_values(b, 0, zero, 10);
  g_assert_true(conform_bars_get_plot_area(b, 600, 300, &a));
  g_assert_cmpfloat(a.ymax, ==, 1);
  double h;
  g_assert_true(conform_bars_get_bar_rect(b, 600, 300, 0, 3, NULL, NULL, NULL, &h));
  g_assert_cmpfloat(h, ==, 1);
  /* NaN and Inf bars are missing, a negative one drawn as 0. */
  double v[10];
  memcpy(v, samples_v, sizeof v);
  v[2] = NAN;
  v[3] = INFINITY;
  v[4] = -0.3;
  conform_bars_set_values(b, 0, v, 10);
  g_assert_true(conform_bars_get_plot_area(b, 600, 300, &a));
  g_assert_cmpfloat(a.ymax, <=, 0.2); /* Inf does not blow up the axis */
  g_assert_false(conform_bars_get_bar_rect(b, 600, 300, 0, 2, NULL, NULL, NULL, NULL));
  g_assert_false(conform_bars_get_bar_rect(b, 600, 300, 0, 3, NULL, NULL, NULL, NULL));
  g_assert_true(conform_bars_get_bar_rect(b, 600, 300, 0, 4, NULL, NULL, NULL, &h));
  g_assert_cmpfloat(h, ==, 1);
  image_render(&img, b, 600, 300);
  double slot = a.w / 10;
  for (int c = 2; c <= 3; c++)
    g_assert_cmpint(count_colour(&img, (int)(a.x0 + c * slot), (int)a.y0, (int)(a.x0 + (c + 1) * slot) - 1,
                                 (int)(a.y0 + a.h), &cs, 2), ==, 0);
  g_assert_cmpint(count_colour(&img, (int)(a.x0 + 5 * slot), (int)a.y0, (int)(a.x0 + 6 * slot) - 1,
                               (int)(a.y0 + a.h), &cs, 2), >, 50);
  image_clear(&img);
  /* Back to no categories with series set: empty again, no crash. */
  conform_bars_set_categories(b, NULL, 0);
  g_assert_false(conform_bars_get_plot_area(b, 600, 300, &a));
  image_render(&img, b, 600, 300);
  image_clear(&img);
}

/* Crowding: wide -> horizontal labels; narrower -> rotated, abbreviated;
 * many categories -> every k-th label; tiny sizes never crash. */
static void
test_resize_and_labels(void)
{
  g_autoptr(ConformBars) b = fashion_bars();
  gboolean abbr;
  int every;
  g_assert_cmpint(conform_bars_get_label_angle(b, 1500, 400, &abbr, &every), ==, 0);
  g_assert_false(abbr);
  g_assert_cmpint(every, ==, 1);
  int ang = conform_bars_get_label_angle(b, 500, 300, &abbr, &every);
  g_assert_cmpint(ang, ==, 45);
  g_assert_cmpint(every, ==, 1);
  /* Rotated labels stay inside the widget and under the plot. */
  ConformPlotArea a;
  g_assert_true(conform_bars_get_plot_area(b, 500, 300, &a));
  g_assert_cmpfloat(a.y0 + a.h, <, 300 - 30);
  Image img;
  image_render(&img, b, 500, 300);
  g_assert_cmpint(count_ink(&img, 0, (int)(a.y0 + a.h) + 3, 499, 299, 100), >, 200);
  image_clear(&img);
  /* Short: labels abbreviated. */
  ang = conform_bars_get_label_angle(b, 500, 120, &abbr, NULL);
  g_assert_cmpint(ang, !=, 0);
  g_assert_true(abbr);
  /* Narrow: 90 degrees. */
  g_assert_cmpint(conform_bars_get_label_angle(b, 200, 300, NULL, NULL), ==, 90);
  /* Many categories in little room: one label every few. */
  g_autoptr(ConformBars) many = new_bars();
  const char *names[60];
  char buf[60][16];
  for (int i = 0; i < 60; i++) {
    g_snprintf(buf[i], sizeof buf[i], "mode %d", i);
    names[i] = buf[i];
  }
  conform_bars_set_categories(many, names, 60);
  conform_bars_add_series(many, "samples", 0);
  double v[60];
  for (int i = 0; i < 60; i++)
    v[i] = 1.0 / 60;
  conform_bars_set_values(many, 0, v, 60);
  conform_bars_get_label_angle(many, 400, 300, NULL, &every);
  g_assert_cmpint(every, >, 1);
  g_assert_true(conform_bars_get_plot_area(many, 400, 300, &a));
  /* Every bar still gets at least one pixel column. */
  for (int c = 0; c < 60; c++) {
    double w;
    g_assert_true(conform_bars_get_bar_rect(many, 400, 300, 0, c, NULL, NULL, &w, NULL));
    g_assert_cmpfloat(w, >=, 1);
  }
  /* Tiny and degenerate sizes. */
  const int sizes[][2] = {{1, 1}, {2, 50}, {16, 16}, {40, 20}, {60, 40}, {120, 30}, {3000, 60}};
  for (guint i = 0; i < G_N_ELEMENTS(sizes); i++) {
    image_render(&img, b, sizes[i][0], sizes[i][1]);
    image_clear(&img);
    image_render(&img, many, sizes[i][0], sizes[i][1]);
    image_clear(&img);
    conform_bars_category_at(b, sizes[i][0], sizes[i][1], 5, 5);
  }
}

static void
test_export_png(void)
{
  g_autoptr(ConformBars) b = fashion_bars();
  conform_bars_set_title(b, "Class shares");
  conform_bars_set_reference_line(b, "uniform 1/10", 0.1);
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp("conform-bars-XXXXXX", &error);
  g_assert_no_error(error);
  g_autofree char *path = g_build_filename(dir, "bars.png", NULL);
  g_assert_true(conform_bars_export_png(b, path, 640, 360, &error));
  g_assert_no_error(error);
  cairo_surface_t *s = cairo_image_surface_create_from_png(path);
  g_assert_cmpint(cairo_surface_status(s), ==, CAIRO_STATUS_SUCCESS);
  g_assert_cmpint(cairo_image_surface_get_width(s), ==, 640);
  g_assert_cmpint(cairo_image_surface_get_height(s), ==, 360);
  /* The same picture as draw() without hover, also while one is shown. */
  conform_bars_set_hover_category(b, 3);
  g_autofree char *path2 = g_build_filename(dir, "bars2.png", NULL);
  g_assert_true(conform_bars_export_png(b, path2, 640, 360, &error));
  conform_bars_set_hover_category(b, -1);
  Image img;
  image_render(&img, b, 640, 360);
  cairo_surface_t *s2 = cairo_image_surface_create_from_png(path2);
  cairo_surface_flush(s);
  cairo_surface_flush(s2);
  int diff = 0;
  for (int y = 0; y < 360; y++) {
    const guint8 *pa = cairo_image_surface_get_data(s) + y * cairo_image_surface_get_stride(s);
    const guint8 *pb = cairo_image_surface_get_data(img.s) + y * cairo_image_surface_get_stride(img.s);
    const guint8 *pc = cairo_image_surface_get_data(s2) + y * cairo_image_surface_get_stride(s2);
    diff += memcmp(pa, pb, 640 * 4) != 0 || memcmp(pa, pc, 640 * 4) != 0;
  }
  g_assert_cmpint(diff, ==, 0);
  image_clear(&img);
  cairo_surface_destroy(s);
  cairo_surface_destroy(s2);
  g_autofree char *bad = g_build_filename(dir, "bad.png", NULL);
  g_assert_false(conform_bars_export_png(b, bad, 4, 4, &error));
  g_assert_nonnull(error);
  g_assert_false(g_file_test(bad, G_FILE_TEST_EXISTS));
  g_unlink(path);
  g_unlink(path2);
  g_rmdir(dir);
}

/* Pictures at a few sizes into $CONFORM_SCREENSHOT_DIR, for looking at. */
static void
test_screenshots(void)
{
  const char *dir = g_getenv("CONFORM_SCREENSHOT_DIR");
  if (!dir) {
    g_test_skip("CONFORM_SCREENSHOT_DIR not set");
    return;
  }
  g_mkdir_with_parents(dir, 0755);
  g_autoptr(ConformBars) b = fashion_bars();
  conform_bars_set_title(b, "Class shares");
  conform_bars_set_y_label(b, "share");
  conform_bars_set_reference_line(b, "uniform 1/10", 0.1);
  const int sizes[][2] = {{900, 320}, {560, 300}, {360, 220}};
  for (guint i = 0; i < G_N_ELEMENTS(sizes); i++) {
    conform_bars_set_hover_category(b, i == 1 ? 5 : -1);
    g_autofree char *name = g_strdup_printf("bars-%dx%d.png", sizes[i][0], sizes[i][1]);
    g_autofree char *path = g_build_filename(dir, name, NULL);
    Image img;
    image_render(&img, b, sizes[i][0], sizes[i][1]);
    g_assert_cmpint(cairo_surface_write_to_png(img.s, path), ==, CAIRO_STATUS_SUCCESS);
    image_clear(&img);
  }
  /* Narrow, nothing sampled yet: the hint wraps inside the plot. */
  conform_bars_set_hover_category(b, -1);
  conform_bars_clear_values(b);
  conform_bars_set_empty_text(b, "Class shares come with explicit samples: Sample now (Ctrl+R) or the end of training");
  g_autofree char *path = g_build_filename(dir, "bars-empty-250x260.png", NULL);
  Image img;
  image_render(&img, b, 250, 260);
  g_assert_cmpint(cairo_surface_write_to_png(img.s, path), ==, CAIRO_STATUS_SUCCESS);
  image_clear(&img);
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
snapshot_widget(GtkWidget *w)
{
  GtkSnapshot *snap = gtk_snapshot_new();
  GTK_WIDGET_GET_CLASS(w)->snapshot(w, snap);
  GskRenderNode *node = gtk_snapshot_free_to_node(snap);
  if (node)
    gsk_render_node_unref(node);
}

static void
test_realized_widget(void)
{
  GtkWidget *win = gtk_window_new();
  gtk_window_set_default_size(GTK_WINDOW(win), 600, 320);
  GtkWidget *w = conform_bars_new();
  gtk_window_set_child(GTK_WINDOW(win), w);
  gtk_window_present(GTK_WINDOW(win));
  spin(200);
  g_assert_true(gtk_widget_get_realized(w));
  int mw, mh;
  gtk_widget_measure(w, GTK_ORIENTATION_HORIZONTAL, -1, &mw, NULL, NULL, NULL);
  gtk_widget_measure(w, GTK_ORIENTATION_VERTICAL, -1, &mh, NULL, NULL, NULL);
  g_assert_cmpint(mw, >=, 240);
  g_assert_cmpint(mh, >=, 160);
  snapshot_widget(w); /* empty */
  ConformBars *b = CONFORM_BARS(w);
  conform_bars_set_categories(b, fashion, 10);
  conform_bars_add_series(b, "samples", 0);
  conform_bars_add_series(b, "training", 4);
  conform_bars_set_values(b, 0, samples_v, 10);
  conform_bars_set_values(b, 1, train_v, 10);
  conform_bars_set_hover_category(b, 9);
  spin(100);
  snapshot_widget(w);
  /* Resizing the window re-lays out the chart. */
  const int sizes[][2] = {{1200, 500}, {300, 200}, {600, 320}};
  for (guint i = 0; i < G_N_ELEMENTS(sizes); i++) {
    gtk_window_set_default_size(GTK_WINDOW(win), sizes[i][0], sizes[i][1]);
    spin(150);
    int ww = gtk_widget_get_width(w), wh = gtk_widget_get_height(w);
    g_assert_cmpint(ww, >, 0);
    ConformPlotArea a;
    g_assert_true(conform_bars_get_plot_area(b, ww, wh, &a));
    g_assert_cmpfloat(a.x0 + a.w, <=, ww);
    g_assert_cmpfloat(a.y0 + a.h, <=, wh);
    snapshot_widget(w);
  }
  conform_bars_set_categories(b, NULL, 0);
  g_assert_cmpint(conform_bars_get_hover_category(b), ==, -1);
  spin(50);
  snapshot_widget(w);
  gtk_window_destroy(GTK_WINDOW(win));
  spin(20);
}

int
main(int argc, char **argv)
{
  g_setenv("GTK_A11Y", "none", TRUE); /* no accessibility bus under Xvfb */
  gtk_test_init(&argc, &argv, NULL);
  g_test_add_func("/bars/model", test_model);
  g_test_add_func("/bars/draw/heights-proportional", test_heights_proportional);
  g_test_add_func("/bars/draw/legend-colours", test_legend_colours);
  g_test_add_func("/bars/draw/references", test_references);
  g_test_add_func("/bars/hover-readout", test_hover_readout);
  g_test_add_func("/bars/nan-and-empty", test_nan_and_empty);
  g_test_add_func("/bars/resize-and-labels", test_resize_and_labels);
  g_test_add_func("/bars/export-png", test_export_png);
  g_test_add_func("/bars/screenshots", test_screenshots);
  g_test_add_func("/bars/widget/realized", test_realized_widget);
  return g_test_run();
}
