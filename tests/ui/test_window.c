/* The real window, driven through its actions and widgets under Xvfb:
 * train, watch the views fill, edit the constraint, save and reopen,
 * cancel and close. Screenshots go to $CONFORM_SCREENSHOT_DIR. */
#include <glib/gstdio.h>
#include <gtk/gtk.h>
#include <math.h>
#include <string.h>

#include "conform-application.h"
#include "conform-bars.h"
#include "conform-constraint-editor.h"
#include "conform-curves.h"
#include "conform-histogram.h"
#include "conform-images.h"
#include "conform-scatter.h"
#include "conform-window.h"

#include "window-fixture.h"

static void
test_train_through_actions(void)
{
  ConformWindow *w = open_window("gaussians-line");
  ConformRun *run = conform_window_get_run(w);
  g_assert_cmpint(conform_run_get_dim(run), ==, 2);
  g_assert_cmpstr(conform_run_get_config(run)->preset, ==, "gaussians-line");
  conform_run_set_preview_interval(run, 0.3);
  gtk_widget_activate_action(GTK_WIDGET(w), "win.train-toggle", NULL);
  WAIT_UNTIL(conform_run_get_step(run) >= 600, "600 training steps");
  /* the step counter can run ahead of the records the window has drawn */
  ConformCurves *loss = CONFORM_CURVES(conform_window_get_view(w, "loss"));
  WAIT_UNTIL(conform_curves_get_n_points(loss, 0) > 10, "loss curve points");
  WAIT_UNTIL(conform_run_get_samples(run) != NULL, "samples");
  g_assert_cmpint(conform_scatter_get_n_points(CONFORM_SCATTER(conform_window_get_view(w, "samples"))), >, 0);
  g_assert_cmpint(conform_histogram_get_n_series(CONFORM_HISTOGRAM(conform_window_get_view(w, "histogram"))), >=, 1);
  g_assert_nonnull(strstr(conform_window_get_status_text(w), "step"));
  g_assert_nonnull(strstr(conform_window_get_status_text(w), "steps/s"));
  /* Pause, then Step a chosen number of steps exactly. */
  gtk_widget_activate_action(GTK_WIDGET(w), "win.train-toggle", NULL);
  WAIT_UNTIL(conform_run_get_state(run) == CONFORM_RUN_PAUSED, "pause");
  drain();
  g_usleep(100000);
  drain();
  long at = conform_run_get_step(run);
  gtk_widget_activate_action(GTK_WIDGET(w), "win.step", NULL);
  WAIT_UNTIL(conform_run_get_step(run) == at + 1, "one step");
  /* Switch the strategy through the header drop-down: projection samples
   * satisfy x0 + x1 = 0. */
  gtk_drop_down_set_selected(GTK_DROP_DOWN(conform_window_get_view(w, "strategy")), 1);
  WAIT_UNTIL(conform_run_get_samples(run) && g_strcmp0(conform_run_get_samples(run)->strategy, "projection") == 0,
             "projection samples");
  ConformSampleSet *s = conform_run_get_samples(run);
  g_assert_cmpfloat(s->summary.viol.frac_satisfied, ==, 1.0);
  g_assert_cmpint(conform_histogram_get_n_series(CONFORM_HISTOGRAM(conform_window_get_view(w, "histogram"))), >=, 2);
  screenshot(GTK_WIDGET(w), "window-explore.png");
  g_assert_true(conform_window_is_dirty(w));
  /* Export every view at a chosen size, and the samples as CSV. */
  g_autofree char *xdir = g_dir_make_tmp("conform-export-XXXXXX", NULL);
  const char *pngs[] = {"samples.png", "violations.png", "loss.png", "violation-curve.png", "learning-rate.png",
                        "trajectory.png"};
  for (guint i = 0; i < G_N_ELEMENTS(pngs); i++) {
    g_autofree char *path = g_build_filename(xdir, pngs[i], NULL);
    g_autoptr(GError) err = NULL;
    g_assert_true(conform_window_export(w, pngs[i], path, 640, 400, &err));
    cairo_surface_t *img = cairo_image_surface_create_from_png(path);
    g_assert_cmpint(cairo_surface_status(img), ==, CAIRO_STATUS_SUCCESS);
    g_assert_cmpint(cairo_image_surface_get_width(img), ==, 640);
    g_assert_cmpint(cairo_image_surface_get_height(img), ==, 400);
    cairo_surface_destroy(img);
  }
  g_autofree char *csv_path = g_build_filename(xdir, "samples.csv", NULL);
  g_assert_true(conform_window_export(w, "samples.csv", csv_path, 0, 0, NULL));
  g_autofree char *csv = NULL;
  g_assert_true(g_file_get_contents(csv_path, &csv, NULL, NULL));
  g_assert_true(g_str_has_prefix(csv, "x0,x1,violation_l2,violation_before_strategy\n"));
  g_auto(GStrv) lines = g_strsplit(csv, "\n", -1);
  g_assert_cmpuint(g_strv_length(lines), ==, (guint)conform_run_get_samples(run)->n + 2);
  g_autoptr(GError) bad = NULL;
  g_assert_false(conform_window_export(w, "samples.png", "/nonexistent-dir/x.png", 640, 400, &bad));
  g_assert_nonnull(bad);
  g_autofree char *rm = g_strdup_printf("rm -rf '%s'", xdir);
  (void)!system(rm);
  close_window(w);
}

static void
test_constraint_editor_in_window(void)
{
  ConformWindow *w = open_window("simplex-3d");
  ConformRun *run = conform_window_get_run(w);
  gtk_notebook_set_current_page(GTK_NOTEBOOK(conform_window_get_view(w, "notebook")), 2);
  ConformConstraintEditor *ed = CONFORM_CONSTRAINT_EDITOR(conform_window_get_view(w, "editor"));
  g_assert_cmpint(conform_constraint_editor_get_n_rows(ed), ==, 1);
  /* An invalid cell: marked, explained, cannot be applied. */
  conform_constraint_editor_set_cell(ed, 0, 1, "abc");
  conform_constraint_editor_validate_now(ed);
  g_assert_nonnull(conform_constraint_editor_get_cell_error(ed, 0, 1));
  GtkWidget *cell = conform_constraint_editor_get_cell_widget(ed, 0, 1);
  g_assert_true(gtk_widget_has_css_class(cell, "cell-error"));
  g_assert_false(conform_constraint_editor_can_apply(ed));
  g_assert_false(conform_constraint_editor_apply(ed));
  screenshot(GTK_WIDGET(w), "window-editor-error.png");
  /* Fix it, add an inconsistent row: still not applicable, says why. */
  conform_constraint_editor_set_cell(ed, 0, 1, "1");
  conform_constraint_editor_add_row(ed);
  const char *row[] = {"2", "2", "2", "3"};
  for (int j = 0; j < 4; j++)
    conform_constraint_editor_set_cell(ed, 1, j, row[j]);
  conform_constraint_editor_validate_now(ed);
  g_assert_false(conform_constraint_editor_can_apply(ed));
  g_assert_nonnull(strstr(conform_constraint_editor_get_summary(ed), "inconsistent"));
  g_assert_false(conform_constraint_editor_apply(ed));
  g_assert_cmpint(conform_run_get_constraint(run)->m, ==, 1); /* not applied */
  /* A consistent second row: x0 - x1 = 0. Apply, and projected samples
   * satisfy the new system. */
  const char *row2[] = {"1", "-1", "0", "0"};
  for (int j = 0; j < 4; j++)
    conform_constraint_editor_set_cell(ed, 1, j, row2[j]);
  conform_constraint_editor_validate_now(ed);
  g_assert_true(conform_constraint_editor_can_apply(ed));
  g_assert_true(conform_constraint_editor_apply(ed));
  WAIT_UNTIL(conform_run_get_constraint(run)->m == 2, "constraint applied");
  gtk_drop_down_set_selected(GTK_DROP_DOWN(conform_window_get_view(w, "strategy")), 1);
  conform_run_step(run, 50);
  WAIT_UNTIL(conform_run_get_step(run) >= 50, "50 steps");
  conform_run_request_samples(run, 200, 0);
  WAIT_UNTIL(conform_run_get_samples(run) && g_strcmp0(conform_run_get_samples(run)->strategy, "projection") == 0 &&
               conform_run_get_samples(run)->step >= 50,
             "projected samples under the new constraint");
  ConformSampleSet *s = conform_run_get_samples(run);
  for (int i = 0; i < s->n; i++) {
    /* exact to float round-off relative to the sample's size */
    const float *x = s->x + i * 3;
    double scale = 1 + sqrt((double)x[0] * x[0] + (double)x[1] * x[1] + (double)x[2] * x[2]);
    g_assert_cmpfloat(fabs(x[0] + x[1] + x[2] - 1), <, 1e-6 * scale);
    g_assert_cmpfloat(fabs(x[0] - x[1]), <, 1e-6 * scale);
  }
  close_window(w);
}

static void
test_save_and_reopen(void)
{
  ConformWindow *w = open_window("portfolio");
  ConformRun *run = conform_window_get_run(w);
  GtkSpinButton *lr = GTK_SPIN_BUTTON(conform_window_get_view(w, "train.lr"));
  gtk_spin_button_set_value(lr, 0.0007); /* a live setting */
  conform_run_step(run, 40);
  WAIT_UNTIL(conform_run_get_step(run) == 40 && conform_run_get_config(run)->lr == 0.0007, "40 steps, new lr");
  g_autofree char *dir = g_dir_make_tmp("conform-ui-XXXXXX", NULL);
  g_autoptr(GError) error = NULL;
  g_assert_true(conform_window_save_to(w, dir, &error));
  g_assert_no_error(error);
  g_assert_false(conform_window_is_dirty(w));
  close_window(w);

  ConformWindow *w2 = conform_window_new(GTK_APPLICATION(app), "gaussians");
  gtk_window_present(GTK_WINDOW(w2));
  conform_window_open_dir(w2, dir);
  WAIT_UNTIL(conform_window_get_run(w2) && conform_run_get_step(conform_window_get_run(w2)) == 40 &&
               g_strcmp0(conform_run_get_config(conform_window_get_run(w2))->preset, "portfolio") == 0,
             "reopened experiment");
  ConformRun *r2 = conform_window_get_run(w2);
  g_assert_cmpfloat(conform_run_get_config(r2)->lr, ==, 0.0007);
  g_assert_cmpint(conform_run_get_dim(r2), ==, 10);
  g_assert_cmpint(conform_run_get_constraint(r2)->m, ==, 1);
  g_assert_cmpuint(conform_run_get_records(r2)->len, >, 0);
  g_assert_cmpfloat(gtk_spin_button_get_value(GTK_SPIN_BUTTON(conform_window_get_view(w2, "train.lr"))), ==, 0.0007);
  close_window(w2);

  /* Opening a broken experiment keeps the current one and says why. */
  ConformWindow *w3 = open_window("moons");
  ConformRun *before = conform_window_get_run(w3);
  g_autofree char *ckpt = g_build_filename(dir, "weights.ckpt", NULL);
  g_assert_cmpint(truncate(ckpt, 100), ==, 0);
  conform_window_open_dir(w3, dir);
  WAIT_UNTIL(conform_window_get_last_error(w3) != NULL, "open error");
  g_assert_nonnull(strstr(conform_window_get_last_error(w3), "weights.ckpt"));
  g_assert_true(conform_window_get_run(w3) == before);
  g_assert_cmpint(conform_run_get_state(before), ==, CONFORM_RUN_PAUSED);
  /* close the error dialog */
  GList *tops = gtk_window_list_toplevels();
  for (GList *l = tops; l; l = l->next)
    if (GTK_IS_MESSAGE_DIALOG(l->data))
      gtk_window_destroy(GTK_WINDOW(l->data));
  g_list_free(tops);
  close_window(w3);
  g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", dir);
  (void)!system(cmd);
}

static void
test_cancel_mid_run_and_close(void)
{
  for (int i = 0; i < 3; i++) {
    ConformWindow *w = open_window("checkerboard");
    conform_run_set_preview_interval(conform_window_get_run(w), 0.05);
    gtk_widget_activate_action(GTK_WIDGET(w), "win.train-toggle", NULL);
    WAIT_UNTIL(conform_run_get_step(conform_window_get_run(w)) > 50, "training");
    close_window(w); /* cancels and joins the worker */
  }
}

/* The capture-phase wheel controller of a sidebar spin button. */
static GtkEventController *
spin_wheel(GtkWidget *spin)
{
  GListModel *list = gtk_widget_observe_controllers(spin);
  GtkEventController *found = NULL;
  for (guint i = 0; i < g_list_model_get_n_items(list) && !found; i++) {
    GtkEventController *c = g_list_model_get_item(list, i);
    if (GTK_IS_EVENT_CONTROLLER_SCROLL(c) && gtk_event_controller_get_propagation_phase(c) == GTK_PHASE_CAPTURE)
      found = c;
    g_object_unref(c);
  }
  g_object_unref(list);
  return found;
}

/* The wheel over a sidebar spin button scrolls the sidebar and leaves the
 * value alone (it used to edit every setting the pointer passed); once the
 * user focuses the spin button, the wheel is its own. Focus starts on Train. */
static void
test_sidebar_wheel(void)
{
  ConformWindow *w = open_window("simplex-3d");
  drain();
  GtkWidget *spin = conform_window_get_view(w, "model.width");
  g_assert_true(GTK_IS_SPIN_BUTTON(spin));
  g_assert_false(gtk_widget_has_focus(spin));
  GtkWidget *focus = gtk_root_get_focus(GTK_ROOT(w));
  g_assert_nonnull(focus);
  g_assert_true(GTK_IS_BUTTON(focus)); /* Train, not the first setting */
  GtkEventController *c = spin_wheel(spin);
  g_assert_nonnull(c);
  GtkScrolledWindow *sw = GTK_SCROLLED_WINDOW(gtk_widget_get_ancestor(spin, GTK_TYPE_SCROLLED_WINDOW));
  GtkAdjustment *adj = gtk_scrolled_window_get_vadjustment(sw);
  g_assert_cmpfloat(gtk_adjustment_get_upper(adj) - gtk_adjustment_get_page_size(adj), >, 100);
  double before = gtk_spin_button_get_value(GTK_SPIN_BUTTON(spin)), top = gtk_adjustment_get_value(adj);
  gboolean handled = FALSE;
  g_signal_emit_by_name(c, "scroll", 0.0, 1.0, &handled);
  g_assert_true(handled);
  g_assert_cmpfloat(gtk_adjustment_get_value(adj), >, top);
  g_assert_cmpfloat(gtk_spin_button_get_value(GTK_SPIN_BUTTON(spin)), ==, before);
  gtk_widget_grab_focus(spin);
  handled = TRUE;
  g_signal_emit_by_name(c, "scroll", 0.0, 1.0, &handled);
  g_assert_false(handled); /* passed on to the spin button */
  close_window(w);
}

static void
test_views_other_dims(void)
{
  /* 12-D: PCA plane + per-coordinate histograms; trajectory tab. */
  ConformWindow *w = open_window("charge-neutral");
  ConformRun *run = conform_window_get_run(w);
  conform_run_step(run, 200);
  WAIT_UNTIL(conform_run_get_step(run) == 200, "200 steps");
  conform_run_request_samples(run, 300, 100);
  WAIT_UNTIL(conform_run_get_samples(run) && conform_run_get_samples(run)->step >= 200, "12-D samples");
  screenshot(GTK_WIDGET(w), "window-12d.png");
  gtk_notebook_set_current_page(GTK_NOTEBOOK(conform_window_get_view(w, "notebook")), 1);
  GtkRange *scale = GTK_RANGE(conform_window_get_view(w, "trajectory-scale"));
  gtk_range_set_value(scale, 25);
  g_assert_cmpint(conform_scatter_get_n_points(CONFORM_SCATTER(conform_window_get_view(w, "trajectory"))), ==, 100);
  screenshot(GTK_WIDGET(w), "window-trajectory.png");
  close_window(w);
}

/* Image data: explicit samples fill the class-share chart (10 Fashion-MNIST
 * classes, samples and training shares, each summing to 1) and its FD line;
 * vector data hide it. */
static void
test_class_shares(void)
{
  g_autofree char *idx = g_build_filename(CONFORM_FASHION_MNIST_DIR, "t10k-images-idx3-ubyte.gz", NULL);
  if (!g_file_test(idx, G_FILE_TEST_EXISTS)) {
    g_test_skip("Fashion-MNIST is not installed (package dataset-fashion-mnist)");
    return;
  }
  ConformWindow *w = open_window("fashion-brightness");
  ConformRun *run = conform_window_get_run(w);
  GtkWidget *pane = conform_window_get_view(w, "shares-pane");
  ConformBars *bars = CONFORM_BARS(conform_window_get_view(w, "shares"));
  g_assert_true(gtk_widget_get_visible(pane));
  g_assert_cmpint(conform_bars_get_n_categories(bars), ==, 10);
  g_assert_cmpstr(conform_bars_get_category(bars, 9), ==, "Ankle boot");
  g_assert_cmpint(conform_bars_get_n_series(bars), ==, 2);
  g_assert_true(isnan(conform_bars_get_value(bars, 0, 0))); /* nothing sampled yet */
  /* An untrained model is enough: the classifier still assigns classes. */
  conform_run_request_samples(run, 64, 8);
  WAIT_UNTIL(conform_run_get_samples(run) && conform_run_get_samples(run)->summary.has_classes, "class shares");
  drain();
  for (int s = 0; s < 2; s++) {
    double sum = 0;
    for (int c = 0; c < 10; c++) {
      double v = conform_bars_get_value(bars, s, c);
      g_assert_false(isnan(v));
      g_assert_cmpfloat(v, >=, 0);
      sum += v;
    }
    g_assert_cmpfloat(fabs(sum - 1), <, 1e-6);
  }
  g_assert_cmpstr(conform_bars_get_series_label(bars, 0), ==, "samples");
  g_assert_cmpstr(conform_bars_get_series_label(bars, 1), ==, "training");
  g_assert_nonnull(strstr(gtk_label_get_text(GTK_LABEL(conform_window_get_view(w, "shares-info"))), "FD"));
  g_autofree char *readout = conform_bars_get_readout(bars, 5);
  g_assert_true(g_str_has_prefix(readout, "Sandal: samples "));
  screenshot(GTK_WIDGET(w), "window-class-shares.png");
  g_autofree char *xdir = g_dir_make_tmp("conform-shares-XXXXXX", NULL);
  g_autofree char *path = g_build_filename(xdir, "shares.png", NULL);
  g_autoptr(GError) err = NULL;
  g_assert_true(conform_window_export(w, "shares.png", path, 800, 360, &err));
  g_assert_no_error(err);
  g_unlink(path);
  g_rmdir(xdir);
  close_window(w);

  ConformWindow *v = open_window("moons");
  g_assert_false(gtk_widget_get_visible(conform_window_get_view(v, "shares-pane")));
  close_window(v);
}

/* Chooses `strategy` in the header and applies it with Reset. */
static void
reset_with_strategy(ConformWindow *w, const char *strategy)
{
  GtkDropDown *dd = GTK_DROP_DOWN(conform_window_get_view(w, "strategy"));
  GtkStringList *model = GTK_STRING_LIST(gtk_drop_down_get_model(dd));
  guint at = G_MAXUINT;
  for (guint i = 0; i < g_list_model_get_n_items(G_LIST_MODEL(model)); i++)
    if (g_strcmp0(gtk_string_list_get_string(model, i), strategy) == 0)
      at = i;
  g_assert_cmpuint(at, !=, G_MAXUINT);
  gtk_drop_down_set_selected(dd, at);
  drain();
  gtk_widget_activate_action(GTK_WIDGET(w), "win.reset", NULL);
  WAIT_UNTIL(conform_window_get_run(w) &&
                 g_strcmp0(conform_run_get_config(conform_window_get_run(w))->strategy, strategy) == 0 &&
                 conform_run_get_state(conform_window_get_run(w)) == CONFORM_RUN_PAUSED,
             "run with the new strategy ready");
}

/* Strategy dual on mixture-minority: chosen in the header and applied by
 * Reset; while it trains, the dual-variables plot follows one multiplier
 * and one slack per class constraint, and the class-share chart shows the
 * measured, training and predicted shares of the 8 modes. */
static void
test_dual(void)
{
  ConformWindow *w = open_window("mixture-minority");
  GtkWidget *dual_curves = conform_window_get_view(w, "dual-curves");
  g_assert_false(gtk_widget_get_visible(dual_curves));
  g_assert_true(gtk_widget_get_visible(conform_window_get_view(w, "lr")));
  reset_with_strategy(w, "dual");
  ConformRun *run = conform_window_get_run(w);
  dual_curves = conform_window_get_view(w, "dual-curves");
  g_assert_true(gtk_widget_get_visible(dual_curves));
  g_assert_false(gtk_widget_get_visible(conform_window_get_view(w, "lr")));
  g_assert_cmpint(conform_curves_get_n_series(CONFORM_CURVES(dual_curves)), ==, 6); /* lambda + slack, 3 classes */
  gtk_widget_activate_action(GTK_WIDGET(w), "win.train-toggle", NULL);
  WAIT_UNTIL(conform_run_get_step(run) >= 600, "600 dual steps");
  gtk_widget_activate_action(GTK_WIDGET(w), "win.train-toggle", NULL);
  WAIT_UNTIL(conform_run_get_state(run) == CONFORM_RUN_PAUSED, "paused");
  conform_run_request_samples(run, 2000, 0);
  WAIT_UNTIL(conform_run_get_samples(run) && conform_run_get_samples(run)->summary.has_classes &&
                 conform_run_get_samples(run)->step >= 600,
             "class shares of dual samples");
  drain();
  g_assert_cmpint(conform_curves_get_n_points(CONFORM_CURVES(dual_curves), 0), >, 10);
  double lo, hi;
  g_assert_true(conform_curves_get_y_extent(CONFORM_CURVES(dual_curves), 0, &lo, &hi));
  g_assert_cmpfloat(hi, >, 0.0); /* the multiplier of class 1 has grown */
  ConformBars *bars = CONFORM_BARS(conform_window_get_view(w, "shares"));
  g_assert_true(gtk_widget_get_visible(conform_window_get_view(w, "shares-pane")));
  g_assert_cmpint(conform_bars_get_n_categories(bars), ==, 8);
  g_assert_cmpint(conform_bars_get_n_series(bars), ==, 3);
  g_assert_cmpstr(conform_bars_get_series_label(bars, 2), ==, "predicted (dual)");
  /* thinned mode 1: the prediction lifts it far above its training share */
  g_assert_cmpfloat(conform_bars_get_value(bars, 2, 1), >, 3 * conform_bars_get_value(bars, 1, 1));
  g_assert_cmpfloat(conform_bars_get_value(bars, 0, 1), >, 2 * conform_bars_get_value(bars, 1, 1));
  screenshot(GTK_WIDGET(w), "window-dual.png");
  close_window(w);
}

/* Strategy mirror on ring: the maps' loss terms go to their own plot (in
 * place of the learning rate) during their phase, the diffusion model's
 * loss only after it; samples come back onto the circle. */
static void
test_mirror(void)
{
  ConformWindow *w = open_window("ring");
  g_assert_false(gtk_widget_get_visible(conform_window_get_view(w, "namm-curves")));
  reset_with_strategy(w, "mirror");
  ConformRun *run = conform_window_get_run(w);
  GtkWidget *nc = conform_window_get_view(w, "namm-curves");
  g_assert_true(gtk_widget_get_visible(nc));
  g_assert_false(gtk_widget_get_visible(conform_window_get_view(w, "lr")));
  g_assert_cmpint(conform_curves_get_n_series(CONFORM_CURVES(nc)), ==, 3);
  gtk_widget_activate_action(GTK_WIDGET(w), "win.train-toggle", NULL);
  WAIT_UNTIL(conform_run_get_step(run) >= 500, "500 steps of the maps");
  gtk_widget_activate_action(GTK_WIDGET(w), "win.train-toggle", NULL);
  WAIT_UNTIL(conform_run_get_state(run) == CONFORM_RUN_PAUSED, "paused");
  drain();
  g_assert_cmpint(conform_curves_get_n_points(CONFORM_CURVES(nc), 1), >, 10);
  /* no diffusion loss yet: every record so far belongs to the maps */
  double lo, hi;
  g_assert_false(conform_curves_get_y_extent(CONFORM_CURVES(conform_window_get_view(w, "loss")), 0, &lo, &hi));
  g_assert_true(conform_curves_get_y_extent(CONFORM_CURVES(nc), 1, &lo, &hi));
  g_assert_true(g_str_has_prefix(conform_run_get_constraint_summary(run), "1 equation"));
  screenshot(GTK_WIDGET(w), "window-mirror.png");
  close_window(w);
}

int
main(int argc, char **argv)
{
  gtk_test_init(&argc, &argv, NULL);
  g_setenv("CONFORM_NO_CLOSE_PROMPT", "1", TRUE);
  app = conform_application_new();
  g_assert_true(g_application_register(G_APPLICATION(app), NULL, NULL));
  g_test_add_func("/window/train-through-actions", test_train_through_actions);
  g_test_add_func("/window/constraint-editor", test_constraint_editor_in_window);
  g_test_add_func("/window/save-and-reopen", test_save_and_reopen);
  g_test_add_func("/window/cancel-mid-run-and-close", test_cancel_mid_run_and_close);
  g_test_add_func("/window/sidebar-wheel", test_sidebar_wheel);
  g_test_add_func("/window/views-other-dims", test_views_other_dims);
  g_test_add_func("/window/class-shares", test_class_shares);
  g_test_add_func("/window/dual", test_dual);
  g_test_add_func("/window/mirror", test_mirror);
  int rc = g_test_run();
  g_object_unref(app);
  return rc;
}
