/* ConformMirrorView: pixel checks on a Cairo image surface (warped grid in
 * its two colours, g of held-out data, samples; mode f differs from mode g;
 * empty states for NULL, grid-less and 3-D sample sets), the g / f toggle
 * and its caption, PNG export, the maps of a tiny real ring mirror engine,
 * and the Mirror maps tab of the real window (shown for strategy mirror
 * only, filled by the run's samples, mirror.png). Runs under Xvfb. */
#include <glib/gstdio.h>
#include <gtk/gtk.h>
#include <math.h>
#include <string.h>

#include "conform-mirror-view.h"
#include "pixels.h"
#include "window-fixture.h"

#include "../app/engine-fixture.h"

/* ---- helpers ------------------------------------------------------------ */

static void
draw_widget(GtkWidget *w, cairo_t *cr, int width, int height)
{
  conform_mirror_view_draw(CONFORM_MIRROR_VIEW(w), cr, width, height);
}

static ConformMirrorView *
new_view(void)
{
  return CONFORM_MIRROR_VIEW(g_object_ref_sink(conform_mirror_view_new()));
}

/* MIRROR_TEST_DUMP=dir writes the named rendering there (for debugging). */
static void
dump(const Image *img, const char *name)
{
  const char *dir = g_getenv("MIRROR_TEST_DUMP");
  if (!dir)
    return;
  g_autofree char *file = g_strdup_printf("%s.png", name);
  g_autofree char *path = g_build_filename(dir, file, NULL);
  cairo_surface_write_to_png(img->s, path);
}

/* Colour classes that survive anti-aliasing and alpha on light or dark. */
static gboolean
is_orange(const Image *img, int x, int y) /* grid rows: Okabe-Ito orange (230, 159, 0) */
{
  int r, g, b;
  image_rgb(img, x, y, &r, &g, &b);
  return r - b > 90 && g - b > 50 && r - g > 25;
}

static gboolean
is_purple(const Image *img, int x, int y) /* grid columns: reddish purple (204, 121, 167) */
{
  int r, g, b;
  image_rgb(img, x, y, &r, &g, &b);
  return r - g > 40 && b - g > 20 && r > b;
}

static gboolean
is_blue(const Image *img, int x, int y) /* samples: blue (light) or sky blue (dark) */
{
  int r, g, b;
  image_rgb(img, x, y, &r, &g, &b);
  return b - r > 60 && b - g > 15;
}

static int
count_where(const Image *img, int x0, int y0, int x1, int y1, gboolean (*pred)(const Image *, int, int))
{
  int n = 0;
  for (int y = MAX(y0, 0); y <= MIN(y1, img->h - 1); y++)
    for (int x = MAX(x0, 0); x <= MIN(x1, img->w - 1); x++)
      n += pred(img, x, y);
  return n;
}

/* The regular grid over box (rows first), as sampler_mirror_views lays it out. */
static void
grid_over(const float *box, float *out)
{
  const int L = CONFORM_MIRROR_GRID_LINES, P = CONFORM_MIRROR_GRID_POINTS;
  for (int dir = 0; dir < 2; dir++)
    for (int l = 0; l < L; l++)
      for (int p = 0; p < P; p++) {
        float a = (float)l / (L - 1), t = (float)p / (P - 1);
        float *o = out + ((gsize)(dir * L + l) * P + p) * 2;
        float u = dir == 0 ? t : a, v = dir == 0 ? a : t;
        o[0] = box[0] + u * (box[1] - box[0]);
        o[1] = box[2] + v * (box[3] - box[2]);
      }
}

/* g: a shear and scale into mirror space; f: radial collapse onto the unit circle. */
static void
map_g(float *x, int n)
{
  for (int i = 0; i < n; i++) {
    float a = x[2 * i], b = x[2 * i + 1];
    x[2 * i] = 2.0f * a + 0.5f * b;
    x[2 * i + 1] = 2.0f * b + 0.3f * a * a;
  }
}

static void
map_f(float *y, int n)
{
  for (int i = 0; i < n; i++) {
    float a = y[2 * i], b = y[2 * i + 1], r = sqrtf(a * a + b * b) + 1e-6f;
    float k = (1.0f + 0.05f * (r - 2.0f)) / r;
    y[2 * i] = a * k;
    y[2 * i + 1] = b * k;
  }
}

/* A 2-D sample set as strategy mirror produces it, in the sampler's layout. */
static ConformSampleSet *
synthetic_set(int n, gboolean with_grids)
{
  const int G = 2 * CONFORM_MIRROR_GRID_LINES * CONFORM_MIRROR_GRID_POINTS;
  ConformSampleSet *s = g_atomic_rc_box_new0(ConformSampleSet);
  s->n = n;
  s->dim = 2;
  s->step = 400;
  s->strategy = g_strdup(with_grids ? "mirror" : "none");
  s->sampler = g_strdup("ddim 50");
  s->x = cf_alloc_floats((gsize)2 * n);
  for (int i = 0; i < n; i++) {
    double t = 2 * G_PI * i / n;
    s->x[2 * i] = (float)cos(t);
    s->x[2 * i + 1] = (float)sin(t);
  }
  if (!with_grids)
    return s;
  s->mirror = g_memdup2(s->x, sizeof(float) * 2 * (gsize)n);
  map_g(s->mirror, n);
  s->n_mirror_ref = n;
  s->mirror_ref = g_memdup2(s->mirror, sizeof(float) * 2 * (gsize)n);
  const float box_data[4] = {-1.2f, 1.2f, -1.2f, 1.2f}, box_mirror[4] = {-3.0f, 3.0f, -2.5f, 2.9f};
  memcpy(s->box_data, box_data, sizeof box_data);
  memcpy(s->box_mirror, box_mirror, sizeof box_mirror);
  s->grid_g = g_new(float, 2 * (gsize)G);
  grid_over(box_data, s->grid_g);
  map_g(s->grid_g, G);
  s->grid_f = g_new(float, 2 * (gsize)G);
  grid_over(box_mirror, s->grid_f);
  map_f(s->grid_f, G);
  return s;
}

/* ---- tests -------------------------------------------------------------- */

static void
test_empty_states(void)
{
  ConformMirrorView *v = new_view();
  g_assert_false(conform_mirror_view_has_maps(v));
  g_assert_nonnull(strstr(conform_mirror_view_get_empty_text(v), "No mirror maps yet"));
  Image img;
  pixels_render(&img, GTK_WIDGET(v), draw_widget, 700, 420);
  g_assert_cmpint(count_ink(&img, 0, 0, 699, 419, 40), >, 50); /* the explanation is drawn */
  g_assert_cmpint(count_where(&img, 0, 0, 699, 419, is_orange), ==, 0);
  image_clear(&img);

  /* another strategy: no grids */
  g_autoptr(ConformSampleSet) none = synthetic_set(100, FALSE);
  conform_mirror_view_set_samples(v, none);
  g_assert_false(conform_mirror_view_has_maps(v));
  g_assert_nonnull(strstr(conform_mirror_view_get_empty_text(v), "strategy none"));
  pixels_render(&img, GTK_WIDGET(v), draw_widget, 700, 420);
  g_assert_cmpint(count_where(&img, 0, 0, 699, 419, is_blue), ==, 0);
  image_clear(&img);

  /* 3-D samples of strategy mirror (no grids for dim != 2) */
  g_autoptr(ConformSampleSet) s3 = g_atomic_rc_box_new0(ConformSampleSet);
  s3->n = 10;
  s3->dim = 3;
  s3->strategy = g_strdup("mirror");
  s3->x = cf_alloc_floats(30);
  for (int i = 0; i < 30; i++)
    s3->x[i] = (float)i;
  conform_mirror_view_set_samples(v, s3);
  g_assert_nonnull(strstr(conform_mirror_view_get_empty_text(v), "3 coordinates"));
  /* the window's note wins over the default */
  conform_mirror_view_set_empty_text(v, "custom note");
  g_assert_cmpstr(conform_mirror_view_get_empty_text(v), ==, "custom note");
  conform_mirror_view_set_empty_text(v, NULL);
  conform_mirror_view_set_samples(v, NULL);
  g_assert_nonnull(strstr(conform_mirror_view_get_empty_text(v), "No mirror maps yet"));
  /* tiny and zero sizes */
  for (int k = 0; k < 2; k++) {
    pixels_render(&img, GTK_WIDGET(v), draw_widget, 16, 16);
    image_clear(&img);
    g_autoptr(ConformSampleSet) s = synthetic_set(50, TRUE);
    conform_mirror_view_set_samples(v, s);
  }
  cairo_surface_t *surf = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, 4, 4);
  cairo_t *cr = cairo_create(surf);
  conform_mirror_view_draw(v, cr, 0, 0);
  cairo_destroy(cr);
  cairo_surface_destroy(surf);
  g_object_unref(v);
}

static void
test_modes(void)
{
  ConformMirrorView *v = new_view();
  g_autoptr(ConformSampleSet) s = synthetic_set(400, TRUE);
  /* non-finite points in a grid line break it, they do not break the view */
  s->grid_g[10] = NAN;
  s->grid_f[21] = INFINITY;
  conform_mirror_view_set_samples(v, s);
  g_assert_true(conform_mirror_view_has_maps(v));
  g_assert_cmpstr(conform_mirror_view_get_empty_text(v), ==, "");
  /* the view keeps copies */
  s->grid_g[0] = 1e30f;
  g_assert_cmpint(conform_mirror_view_get_mode(v), ==, CONFORM_MIRROR_MODE_G);
  g_assert_true(g_str_has_prefix(conform_mirror_view_get_caption(v), "g: data → mirror space"));

  const int W = 1000, H = 560, main_w = (int)round(W * 0.63);
  Image g, f;
  pixels_render(&g, GTK_WIDGET(v), draw_widget, W, H);
  dump(&g, "mode-g");
  /* main panel (mirror space): both grid families and the samples */
  int go = count_where(&g, 0, 30, main_w - 1, H - 1, is_orange);
  int gp = count_where(&g, 0, 30, main_w - 1, H - 1, is_purple);
  int gb = count_where(&g, 0, 30, main_w - 1, H - 1, is_blue);
  g_test_message("mode g main panel: orange %d, purple %d, blue %d", go, gp, gb);
  g_assert_cmpint(go, >, 800);
  g_assert_cmpint(gp, >, 800);
  g_assert_cmpint(gb, >, 300);
  g_assert_cmpint(conform_mirror_view_get_n_outside(v), ==, 0);
  /* side panel (data space): the regular grid */
  g_assert_cmpint(count_where(&g, main_w, 30, W - 1, H - 1, is_orange), >, 300);
  g_assert_cmpint(count_where(&g, main_w, 30, W - 1, H - 1, is_purple), >, 300);
  /* legend in the caption band */
  g_assert_cmpint(count_where(&g, W / 2, 0, W - 1, 24, is_orange), >, 5);
  g_assert_cmpint(count_where(&g, W / 2, 0, W - 1, 24, is_blue), >, 5);

  /* the toggle switches to f and the caption follows */
  GtkWidget *fb = conform_mirror_view_get_mode_button(v, CONFORM_MIRROR_MODE_F);
  GtkToggleButton *gbutton = GTK_TOGGLE_BUTTON(conform_mirror_view_get_mode_button(v, CONFORM_MIRROR_MODE_G));
  gtk_toggle_button_set_active(GTK_TOGGLE_BUTTON(fb), TRUE);
  g_assert_cmpint(conform_mirror_view_get_mode(v), ==, CONFORM_MIRROR_MODE_F);
  g_assert_false(gtk_toggle_button_get_active(gbutton));
  g_assert_true(g_str_has_prefix(conform_mirror_view_get_caption(v), "f: mirror → data"));
  pixels_render(&f, GTK_WIDGET(v), draw_widget, W, H);
  dump(&f, "mode-f");
  int fo = count_where(&f, 0, 30, main_w - 1, H - 1, is_orange);
  g_test_message("mode f main panel: orange %d, differing pixels %d", fo, count_diff(&g, &f, 0, 0, W - 1, H - 1));
  g_assert_cmpint(fo, >, 300);
  g_assert_cmpint(count_where(&f, 0, 30, main_w - 1, H - 1, is_blue), >, 100);
  g_assert_cmpint(count_diff(&g, &f, 0, 30, main_w - 1, H - 1), >, W * H / 20);
  /* f pulls the grid onto the circle: its rows cover far fewer pixels
   * than g's sheared copy of the regular grid */
  g_assert_cmpint(fo, <, go);
  image_clear(&f);

  /* back to g: the same picture as before */
  conform_mirror_view_set_mode(v, CONFORM_MIRROR_MODE_G);
  g_assert_true(gtk_toggle_button_get_active(gbutton));
  Image g2;
  pixels_render(&g2, GTK_WIDGET(v), draw_widget, W, H);
  g_assert_cmpint(count_diff(&g, &g2, 0, 0, W - 1, H - 1), ==, 0);
  image_clear(&g2);

  /* tall: the side panel goes under the main one */
  Image t;
  pixels_render(&t, GTK_WIDGET(v), draw_widget, 420, 800);
  dump(&t, "tall");
  int split = 24 + (int)round((800 - 24) * 0.63);
  g_assert_cmpint(count_where(&t, 0, 24, 419, split - 1, is_blue), >, 100);
  g_assert_cmpint(count_where(&t, 0, split, 419, 799, is_orange), >, 100);
  image_clear(&t);
  image_clear(&g);

  /* far or non-finite samples are counted, not drawn, and do not move the limits */
  g_autoptr(ConformSampleSet) far = synthetic_set(100, TRUE);
  far->mirror[0] = 1e6f;
  far->mirror[7] = NAN;
  conform_mirror_view_set_samples(v, far);
  Image fi;
  pixels_render(&fi, GTK_WIDGET(v), draw_widget, W, H);
  g_assert_cmpint(conform_mirror_view_get_n_outside(v), ==, 2);
  g_assert_cmpint(count_where(&fi, 0, 30, main_w - 1, H - 1, is_orange), >, 800); /* the grid still fills the panel */
  image_clear(&fi);

  /* PNG export at a chosen size */
  g_autofree char *dir = g_dir_make_tmp("conform-mirror-view-XXXXXX", NULL);
  g_autofree char *path = g_build_filename(dir, "mirror.png", NULL);
  g_autoptr(GError) err = NULL;
  g_assert_true(conform_mirror_view_export_png(v, path, 640, 400, &err));
  g_assert_no_error(err);
  cairo_surface_t *png = cairo_image_surface_create_from_png(path);
  g_assert_cmpint(cairo_surface_status(png), ==, CAIRO_STATUS_SUCCESS);
  g_assert_cmpint(cairo_image_surface_get_width(png), ==, 640);
  g_assert_cmpint(cairo_image_surface_get_height(png), ==, 400);
  cairo_surface_destroy(png);
  g_unlink(path);
  g_rmdir(dir);
  g_object_unref(v);
}

/* In a window the theme foreground applies (light by default): the
 * samples are Okabe-Ito blue on white. */
static void
test_in_window(void)
{
  GtkWidget *win = gtk_window_new();
  ConformMirrorView *v = CONFORM_MIRROR_VIEW(conform_mirror_view_new());
  gtk_window_set_child(GTK_WINDOW(win), GTK_WIDGET(v));
  gtk_window_set_default_size(GTK_WINDOW(win), 900, 560);
  gtk_window_present(GTK_WINDOW(win));
  g_autoptr(ConformSampleSet) s = synthetic_set(300, TRUE);
  conform_mirror_view_set_samples(v, s);
  drain();
  Image img;
  pixels_render(&img, GTK_WIDGET(v), draw_widget, 900, 520);
  GdkRGBA blue;
  conform_palette_series(conform_palette_is_dark(GTK_WIDGET(v)) ? 1 : 4, &blue);
  g_assert_cmpint(count_colour(&img, 0, 30, 560, 519, &blue, 40), >, 20); /* overlapping discs reach the colour */
  image_clear(&img);
  gtk_window_destroy(GTK_WINDOW(win));
  drain();
}

/* The maps of a real (tiny) ring mirror engine reach the view. */
static void
test_real_engine(void)
{
  const char *sets[] = {"experiment.strategy=mirror", "mirror.steps=200", NULL};
  g_autoptr(ConformEngine) e = engine_for("ring", 200, sets);
  g_autoptr(GError) err = NULL;
  g_assert_true(conform_engine_train(e, 400, NULL, NULL, NULL, &err));
  g_assert_no_error(err);
  g_autoptr(ConformSampler) sm = conform_engine_make_sampler(e, &err);
  g_assert_no_error(err);
  gsize na;
  g_autofree float *arena = conform_engine_snapshot(e, &na);
  conform_sampler_load(sm, arena, conform_engine_step(e));
  ConformSampleOptions o = {.n = 300, .eta = -1, .sampler = "ddim", .sampling_steps = 20, .preview = TRUE};
  g_autoptr(ConformSampleSet) s = conform_sampler_run(sm, &o, 0, NULL, NULL, NULL, &err);
  g_assert_no_error(err);
  g_assert_nonnull(s->grid_g);
  ConformMirrorView *v = new_view();
  conform_mirror_view_set_samples(v, s);
  g_assert_true(conform_mirror_view_has_maps(v));
  Image img;
  pixels_render(&img, GTK_WIDGET(v), draw_widget, 900, 520);
  dump(&img, "real-engine");
  g_assert_cmpint(count_where(&img, 0, 30, 560, 519, is_orange), >, 300);
  g_assert_cmpint(count_ink(&img, 0, 30, 560, 519, 150), >, 300); /* g(held-out data), light on dark */
  /* after 200 steps the diffusion model's samples are still spread far:
   * those outside the panel are counted, the others drawn */
  int outside = conform_mirror_view_get_n_outside(v);
  g_test_message("real engine: %d of 300 samples outside the mirror-space panel", outside);
  g_assert_cmpint(outside, <, 300);
  g_assert_true(outside > 0 || count_where(&img, 0, 30, 560, 519, is_blue) > 20);
  image_clear(&img);
  g_object_unref(v);
}

/* ---- the window ----------------------------------------------------------- */

static gboolean
tab_shown(ConformWindow *w)
{
  GtkNotebook *nb = GTK_NOTEBOOK(conform_window_get_view(w, "notebook"));
  GtkWidget *page = conform_window_get_view(w, "mirror-page");
  GtkWidget *tab = gtk_notebook_get_tab_label(nb, page);
  return gtk_widget_get_visible(page) && tab && gtk_widget_get_mapped(tab);
}

static void
reset_to(ConformWindow *w, const char *preset, const char *const *sets)
{
  ConformConfig cfg;
  conform_config_init(&cfg);
  g_assert_true(conform_config_apply_preset(&cfg, preset, NULL));
  for (; sets && *sets; sets++)
    g_assert_true(conform_config_set_assignment(&cfg, *sets, NULL));
  ConformRun *before = conform_window_get_run(w);
  conform_window_reset_with(w, &cfg);
  conform_config_clear(&cfg);
  WAIT_UNTIL(conform_window_get_run(w) != before &&
               conform_run_get_state(conform_window_get_run(w)) == CONFORM_RUN_PAUSED,
             "reset");
  drain();
}

static void
test_window_tab(void)
{
  ConformWindow *w = open_window("gaussians-line");
  GtkWidget *page = conform_window_get_view(w, "mirror-page");
  ConformMirrorView *v = CONFORM_MIRROR_VIEW(conform_window_get_view(w, "mirror-view"));
  g_assert_nonnull(v);
  g_assert_false(gtk_widget_get_visible(page)); /* strategy none */

  const char *sets[] = {"experiment.strategy=mirror", "mirror.steps=200", "train.steps=200", NULL};
  reset_to(w, "ring", sets);
  ConformRun *run = conform_window_get_run(w);
  g_assert_cmpstr(conform_run_get_config(run)->strategy, ==, "mirror");
  g_assert_true(tab_shown(w));
  g_assert_false(conform_mirror_view_has_maps(v));
  conform_run_step(run, 400);
  WAIT_UNTIL(conform_run_get_step(run) >= 400, "400 steps");
  conform_run_request_samples(run, 500, 0);
  WAIT_UNTIL(conform_run_get_samples(run) && conform_run_get_samples(run)->step >= 400, "mirror samples");
  drain();
  g_assert_true(conform_mirror_view_has_maps(v));
  GtkNotebook *nb = GTK_NOTEBOOK(conform_window_get_view(w, "notebook"));
  gtk_notebook_set_current_page(nb, gtk_notebook_page_num(nb, page));
  screenshot(GTK_WIDGET(w), "window-mirror-g.png");
  /* as a click or the keyboard does (a button's activation ends after a short delay) */
  gtk_widget_activate(conform_mirror_view_get_mode_button(v, CONFORM_MIRROR_MODE_F));
  WAIT_UNTIL(conform_mirror_view_get_mode(v) == CONFORM_MIRROR_MODE_F, "mode f");
  screenshot(GTK_WIDGET(w), "window-mirror-f.png");
  g_autofree char *dir = g_dir_make_tmp("conform-mirror-tab-XXXXXX", NULL);
  g_autofree char *path = g_build_filename(dir, "mirror.png", NULL);
  g_autoptr(GError) err = NULL;
  g_assert_true(conform_window_export(w, "mirror.png", path, 800, 500, &err));
  g_assert_no_error(err);
  g_assert_true(g_file_test(path, G_FILE_TEST_IS_REGULAR));
  g_unlink(path);
  g_rmdir(dir);

  /* 3-D data with strategy mirror: the tab stays and says why it is empty */
  const char *sets3[] = {"experiment.strategy=mirror", NULL};
  reset_to(w, "sphere-shell", sets3);
  g_assert_true(tab_shown(w));
  g_assert_false(conform_mirror_view_has_maps(v));
  g_assert_nonnull(strstr(conform_mirror_view_get_empty_text(v), "3 coordinates"));

  /* another strategy: hidden */
  reset_to(w, "gaussians", NULL);
  g_assert_false(gtk_widget_get_visible(page));
  close_window(w);
}

int
main(int argc, char **argv)
{
  gtk_test_init(&argc, &argv, NULL);
  g_setenv("CONFORM_NO_CLOSE_PROMPT", "1", TRUE);
  app = conform_application_new();
  g_assert_true(g_application_register(G_APPLICATION(app), NULL, NULL));
  g_test_add_func("/mirror-view/empty-states", test_empty_states);
  g_test_add_func("/mirror-view/modes", test_modes);
  g_test_add_func("/mirror-view/in-window", test_in_window);
  g_test_add_func("/mirror-view/real-engine", test_real_engine);
  g_test_add_func("/mirror-view/window-tab", test_window_tab);
  int rc = g_test_run();
  g_object_unref(app);
  return rc;
}
