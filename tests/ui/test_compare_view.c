/* The Compare tab in the real window under Xvfb: pick strategies, start,
 * watch synchronised columns fill, export, stop, close; the compare worker
 * is joined. Screenshots go to $CONFORM_SCREENSHOT_DIR. */
#include <glib/gstdio.h>
#include <gtk/gtk.h>
#include <math.h>
#include <string.h>

#include "conform-application.h"
#include "conform-compare-view.h"
#include "conform-curves.h"
#include "conform-histogram.h"
#include "conform-scatter.h"
#include "conform-window.h"

#include "window-fixture.h"

static int
column_of(ConformCompareView *v, const char *strategy)
{
  for (int i = 0; i < conform_compare_view_get_n_columns(v); i++)
    if (g_strcmp0(conform_compare_view_get_column_strategy(v, i), strategy) == 0)
      return i;
  g_assert_not_reached();
  return -1;
}

static void
test_compare_ddpm(void)
{
  ConformWindow *w = open_window("simplex-3d");
  GtkNotebook *nb = GTK_NOTEBOOK(conform_window_get_view(w, "notebook"));
  ConformCompareView *v = CONFORM_COMPARE_VIEW(conform_window_get_view(w, "compare"));
  gtk_notebook_set_current_page(nb, gtk_notebook_page_num(nb, GTK_WIDGET(v)));
  g_assert_true(gtk_widget_get_mapped(GTK_WIDGET(v)));
  /* DDPM strategies are offered; VAE-only ones are not. */
  g_assert_false(conform_compare_view_set_strategy_active(v, "constrained-layer", TRUE));
  g_assert_true(conform_compare_view_set_strategy_active(v, "none", TRUE));
  g_assert_true(conform_compare_view_set_strategy_active(v, "projection", TRUE));
  g_assert_true(conform_compare_view_set_strategy_active(v, "projected-sampling", FALSE));
  g_assert_true(conform_compare_view_set_strategy_active(v, "cgauss", TRUE));
  conform_compare_view_start(v);
  ConformCompareRun *run = g_object_ref(conform_compare_view_get_run(v));
  g_assert_nonnull(run);
  g_assert_cmpint(conform_compare_view_get_n_columns(v), ==, 3);
  WAIT_UNTIL(conform_compare_view_get_n_bundles_shown(v) >= 2, "two bundles in the view");
  g_assert_cmpint(conform_compare_run_get_n_models(run), ==, 2);
  /* Synchronised: every column at the same step. */
  long step = conform_compare_view_get_column_step(v, 0);
  g_assert_cmpint(step, >, 0);
  for (int i = 0; i < 3; i++) {
    g_assert_cmpint(conform_compare_view_get_column_step(v, i), ==, step);
    g_assert_cmpint(conform_scatter_get_n_points(CONFORM_SCATTER(conform_compare_view_get_scatter(v, i))), >, 0);
    g_assert_cmpint(conform_histogram_get_n_series(CONFORM_HISTOGRAM(conform_compare_view_get_histogram(v, i))), ==,
                    1);
  }
  ConformSampleSet *none = conform_compare_view_get_column_samples(v, column_of(v, "none"));
  ConformSampleSet *proj = conform_compare_view_get_column_samples(v, column_of(v, "projection"));
  ConformSampleSet *cg = conform_compare_view_get_column_samples(v, column_of(v, "cgauss"));
  g_assert_cmpfloat(proj->summary.viol.max, <, 1e-5);
  g_assert_cmpfloat(cg->summary.viol.max, <, 1e-5);
  g_assert_cmpfloat(none->summary.viol.max, >, proj->summary.viol.max);
  g_assert_cmpfloat(none->summary.viol.max, >, 1e-5);
  /* Shared log x range: the same bins in every column. */
  double lo0, hi0, lo, hi;
  int nb0 = conform_histogram_get_bins(CONFORM_HISTOGRAM(conform_compare_view_get_histogram(v, 0)), &lo0, &hi0, NULL);
  for (int i = 1; i < 3; i++) {
    int nbi = conform_histogram_get_bins(CONFORM_HISTOGRAM(conform_compare_view_get_histogram(v, i)), &lo, &hi, NULL);
    g_assert_cmpint(nbi, ==, nb0);
    g_assert_cmpfloat(lo, ==, lo0);
    g_assert_cmpfloat(hi, ==, hi0);
  }
  const char *status = conform_compare_view_get_status_text(v);
  g_assert_true(g_str_has_prefix(status, "step "));
  g_assert_nonnull(strstr(status, "strategies none, projection, cgauss"));
  screenshot(GTK_WIDGET(w), "window-compare.png");
  /* Export view: the compare tab as one PNG. */
  g_autofree char *xdir = g_dir_make_tmp("conform-compare-XXXXXX", NULL);
  g_autofree char *png = g_build_filename(xdir, "compare.png", NULL);
  g_autoptr(GError) err = NULL;
  g_assert_true(conform_window_export(w, "compare.png", png, 1200, 700, &err));
  g_assert_no_error(err);
  cairo_surface_t *img = cairo_image_surface_create_from_png(png);
  g_assert_cmpint(cairo_surface_status(img), ==, CAIRO_STATUS_SUCCESS);
  g_assert_cmpint(cairo_image_surface_get_width(img), ==, 1200);
  g_assert_cmpint(cairo_image_surface_get_height(img), ==, 700);
  cairo_surface_destroy(img);
  g_unlink(png);
  g_rmdir(xdir);
  /* Stop: the worker stops; the columns keep the last round. */
  conform_compare_view_stop(v);
  WAIT_UNTIL(conform_compare_run_get_state(run) == CONFORM_RUN_STOPPED && !conform_compare_run_is_running(run),
             "compare stopped and joined");
  g_assert_cmpint(conform_compare_view_get_column_step(v, 0), >=, step);
  /* Start again, then close the window while it trains: joined too. */
  conform_compare_view_start(v);
  ConformCompareRun *run2 = g_object_ref(conform_compare_view_get_run(v));
  g_assert_true(run2 != run);
  WAIT_UNTIL(conform_compare_run_get_n_bundles(run2) >= 1, "a bundle from the second comparison");
  ConformRun *main_run = g_object_ref(conform_window_get_run(w));
  gtk_window_close(GTK_WINDOW(w));
  WAIT_UNTIL(!conform_compare_run_is_running(run2) && conform_run_get_state(main_run) == CONFORM_RUN_STOPPED,
             "workers joined after close");
  wait_run_joined(main_run);
  drain();
  GObject *o1 = G_OBJECT(run), *o2 = G_OBJECT(run2);
  g_object_add_weak_pointer(o1, (gpointer *)&o1);
  g_object_add_weak_pointer(o2, (gpointer *)&o2);
  g_object_unref(run);
  g_object_unref(run2);
  drain();
  g_assert_null(o1); /* nothing else holds the compare runs */
  g_assert_null(o2);
  g_object_unref(main_run);
  drain();
}

static void
test_compare_vae_strategies(void)
{
  ConformWindow *w = open_window("simplex-3d");
  ConformConfig cfg;
  conform_config_init(&cfg);
  conform_config_clear(&cfg);
  conform_config_copy(&cfg, conform_run_get_config(conform_window_get_run(w)));
  g_assert_true(conform_config_set(&cfg, "model.type", "vae", NULL));
  g_assert_true(conform_config_set(&cfg, "experiment.strategy", "cgauss", NULL));
  ConformRun *before = conform_window_get_run(w);
  conform_window_reset_with(w, &cfg);
  conform_config_clear(&cfg);
  WAIT_UNTIL(conform_window_get_run(w) != before && conform_run_get_state(conform_window_get_run(w)) == CONFORM_RUN_PAUSED,
             "VAE run ready");
  ConformCompareView *v = CONFORM_COMPARE_VIEW(conform_window_get_view(w, "compare"));
  /* VAE strategies: constrained-layer instead of projected-sampling. */
  g_assert_true(conform_compare_view_set_strategy_active(v, "constrained-layer", TRUE));
  g_assert_false(conform_compare_view_set_strategy_active(v, "projected-sampling", TRUE));
  /* The VAE curves are shown for a VAE and get points from previews. */
  GtkWidget *vc = conform_window_get_view(w, "vae-curves");
  g_assert_true(gtk_widget_get_visible(vc));
  ConformRun *run = conform_window_get_run(w);
  conform_run_set_preview_interval(run, 0.2);
  conform_run_train(run);
  WAIT_UNTIL(conform_curves_get_n_points(CONFORM_CURVES(vc), 1) >= 2, "two preview log-likelihood points");
  double lo, hi;
  g_assert_true(conform_curves_get_y_extent(CONFORM_CURVES(vc), 1, &lo, &hi));
  g_assert_true(isfinite(lo) && isfinite(hi));
  conform_run_pause(run);
  ConformRun *main_run = g_object_ref(run);
  gtk_window_close(GTK_WINDOW(w));
  wait_run_joined(main_run);
  g_object_unref(main_run);
  drain();
}

int
main(int argc, char **argv)
{
  gtk_test_init(&argc, &argv, NULL);
  g_setenv("CONFORM_NO_CLOSE_PROMPT", "1", TRUE);
  app = conform_application_new();
  g_assert_true(g_application_register(G_APPLICATION(app), NULL, NULL));
  g_test_add_func("/compare-view/ddpm-none-projection-cgauss", test_compare_ddpm);
  g_test_add_func("/compare-view/vae", test_compare_vae_strategies);
  int rc = g_test_run();
  g_object_unref(app);
  return rc;
}
