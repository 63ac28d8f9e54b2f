/* The window's image views, driven in the real window under Xvfb with tiny
 * image experiments (500 training images, a U-Net of base 8, DDIM 5): the
 * trajectory grid follows the scrubber, hover readouts, fashion-superres
 * rows in the Samples pane, the Super-resolution demo (an out-of-range
 * test image refused with the engine's message; Generate with every
 * strategy from one seed), "Start from pretrained" (a tiny pretrained
 * model in a temporary CONFORM_DATA_DIR) and choosing a PNG folder as
 * data.source. Screenshots go to $CONFORM_SCREENSHOT_DIR. */
#include <glib/gstdio.h>
#include <gtk/gtk.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conform-classifier.h"
#include "conform-engine.h"
#include "conform-image-grid.h"
#include "conform-images.h"
#include "conform-superres-panel.h"
#include "conform-window-private.h"

#include "window-fixture.h"

static void
set(ConformConfig *cfg, const char *key, const char *value)
{
  g_autoptr(GError) error = NULL;
  g_assert_true(conform_config_set(cfg, key, value, &error));
  g_assert_no_error(error);
}

/* A preset at a size that trains and samples in about a second. */
static void
tiny_config(ConformConfig *cfg, const char *preset)
{
  conform_config_init(cfg);
  g_assert_true(conform_config_apply_preset(cfg, preset, NULL));
  set(cfg, "data.n_train", "500");
  set(cfg, "data.n_ref", "100");
  set(cfg, "model.unet_base", "8");
  set(cfg, "train.batch", "16");
  set(cfg, "train.warmup", "1");
  set(cfg, "train.steps", "20");
  set(cfg, "sample.n", "8");
  set(cfg, "sample.sampler", "ddim");
  set(cfg, "sample.steps", "5");
}

/* Waits until the window shows a run other than `old`, built and paused. */
static ConformRun *
wait_new_run(ConformWindow *w, ConformRun *old)
{
  WAIT_UNTIL(conform_window_get_run(w) != old && conform_run_get_state(conform_window_get_run(w)) == CONFORM_RUN_PAUSED,
             "the new run is ready");
  return conform_window_get_run(w);
}

static ConformRun *
reset_tiny(ConformWindow *w, const char *preset)
{
  ConformConfig cfg;
  tiny_config(&cfg, preset);
  ConformRun *old = conform_window_get_run(w);
  conform_window_reset_with(w, &cfg);
  conform_config_clear(&cfg);
  return wait_new_run(w, old);
}

static ConformSampleSet *
sample_now(ConformWindow *w)
{
  ConformRun *run = conform_window_get_run(w);
  ConformSampleSet *before = conform_run_get_samples(run);
  gtk_widget_activate_action(GTK_WIDGET(w), "win.sample", NULL);
  WAIT_UNTIL(conform_run_get_samples(run) && conform_run_get_samples(run) != before, "samples");
  drain();
  return conform_run_get_samples(run);
}

/* The readout of image i, through the pointer's path: the cell centre
 * found by the layout, then hover. */
static char *
hover_readout(ConformImageGrid *g, int i)
{
  /* a page just shown is laid out at the next frame */
  WAIT_UNTIL(gtk_widget_get_mapped(GTK_WIDGET(g)) && gtk_widget_get_width(GTK_WIDGET(g)) > 0, "grid laid out");
  int width = gtk_widget_get_width(GTK_WIDGET(g)), height = gtk_widget_get_height(GTK_WIDGET(g));
  double x, y;
  g_assert_true(conform_image_grid_get_cell_center(g, width, height, i, &x, &y));
  g_assert_cmpint(conform_image_grid_index_at(g, width, height, x, y), ==, i);
  conform_image_grid_set_hover(g, i);
  g_assert_cmpint(conform_image_grid_get_hover(g), ==, i);
  return conform_image_grid_get_readout(g, i);
}

/* The image part of row i of a sample set equals grid image j. */
static void
assert_image_is_row(ConformImageGrid *g, int j, const float *rows, int i, int dim, int size)
{
  const float *img = conform_image_grid_get_image(g, j);
  g_assert_nonnull(img);
  const float *row = rows + (gsize)i * dim + (dim - size * size);
  g_assert_cmpint(memcmp(img, row, sizeof(float) * size * size), ==, 0);
}

static void
test_trajectory_and_hover(void)
{
  ConformWindow *w = open_window("gaussians");
  ConformRun *run = reset_tiny(w, "fashion-brightness");
  g_assert_cmpint(conform_run_get_dim(run), ==, 196);
  conform_run_step(run, 5);
  WAIT_UNTIL(conform_run_get_step(run) >= 5, "5 steps");
  ConformSampleSet *s = sample_now(w);
  g_assert_nonnull(s->traj);
  g_assert_nonnull(s->traj_viol);
  g_assert_cmpint(s->traj_n, ==, 8);

  /* The trajectory tab shows images, following the scrubber. */
  GtkNotebook *nb = GTK_NOTEBOOK(conform_window_get_view(w, "notebook"));
  gtk_notebook_set_current_page(nb, 1);
  GtkStack *stack = GTK_STACK(conform_window_get_view(w, "trajectory-stack"));
  g_assert_cmpstr(gtk_stack_get_visible_child_name(stack), ==, "images");
  ConformImageGrid *tg = CONFORM_IMAGE_GRID(conform_window_get_view(w, "trajectory-images"));
  GtkRange *scale = GTK_RANGE(conform_window_get_view(w, "trajectory-scale"));
  for (int k = 0; k <= s->traj_steps; k += s->traj_steps) {
    gtk_range_set_value(scale, k);
    drain();
    g_assert_cmpint(conform_image_grid_get_n_images(tg), ==, s->traj_n);
    const float *frame = s->traj + (gsize)k * s->traj_n * s->dim;
    for (int i = 0; i < s->traj_n; i++)
      assert_image_is_row(tg, i, frame, i, s->dim, 14);
    g_autofree char *r = hover_readout(tg, 3);
    g_autofree char *want = g_strdup_printf("sample 3 at t = %d · violation ", s->traj_t[k]);
    g_test_message("trajectory readout at step %d: %s", k, r);
    g_assert_true(g_str_has_prefix(r, want));
    g_assert_nonnull(strstr(r, "tolerance"));
  }
  screenshot(GTK_WIDGET(w), "images-trajectory.png");
  /* a scatter again for vector data is covered by test_window; the grid
   * ignores frames outside the trajectory */
  gtk_range_set_value(scale, s->traj_steps / 2.0);
  drain();
  g_assert_cmpint(conform_image_grid_get_n_images(tg), ==, s->traj_n);

  /* Samples pane: hover readout with the per-image violation. */
  gtk_notebook_set_current_page(nb, 0);
  drain();
  ConformImageGrid *sg = CONFORM_IMAGE_GRID(conform_window_get_view(w, "images"));
  g_assert_cmpint(conform_image_grid_get_n_images(sg), ==, s->n);
  assert_image_is_row(sg, 2, s->x, 2, s->dim, 14);
  g_autofree char *r0 = hover_readout(sg, 2);
  g_test_message("samples readout (none): %s", r0);
  g_assert_true(g_str_has_prefix(r0, "sample 2 · violation "));
  g_assert_nonnull(strstr(r0, "(above tolerance 5e-3)")); /* 1e-4 (1 + 49): not yet trained to the constraint */
  /* projection satisfies the brightness constraint */
  gtk_drop_down_set_selected(GTK_DROP_DOWN(conform_window_get_view(w, "strategy")), 1);
  WAIT_UNTIL(conform_run_get_samples(run) && g_strcmp0(conform_run_get_samples(run)->strategy, "projection") == 0,
             "projection samples");
  drain();
  g_autofree char *r1 = hover_readout(sg, 2);
  g_test_message("samples readout (projection): %s", r1);
  g_assert_true(g_str_has_prefix(r1, "sample 2 · violation "));
  g_assert_nonnull(strstr(r1, "(within tolerance 5e-3)"));
  screenshot(GTK_WIDGET(w), "images-hover.png");
  conform_image_grid_set_hover(sg, -1);
  g_assert_null(conform_image_grid_get_readout(sg, 1000));
  /* The Super-resolution tab is for superres rows only. */
  g_assert_false(gtk_widget_get_visible(conform_window_get_view(w, "superres-page")));
  g_assert_false(gtk_widget_get_visible(conform_window_get_view(w, "thumbnails")));
  close_window(w);
}

typedef struct {
  gboolean done;
  GPtrArray *sets;
  GError *error;
} SampleResult;

static void
sample_done_cb(GObject *src, GAsyncResult *res, gpointer data)
{
  SampleResult *r = data;
  r->sets = conform_run_sample_finish(CONFORM_RUN(src), res, &r->error);
  r->done = TRUE;
}

static void
test_superres(void)
{
  ConformWindow *w = open_window("gaussians");
  ConformRun *run = reset_tiny(w, "fashion-superres");
  g_assert_cmpint(conform_run_get_dim(run), ==, 49 + 196);
  int n_ref = 0;
  const float *ref = conform_run_get_reference(run, &n_ref);
  g_assert_nonnull(ref);
  g_assert_cmpint(n_ref, ==, 100);
  conform_run_step(run, 5);
  WAIT_UNTIL(conform_run_get_step(run) >= 5, "5 steps");
  ConformSampleSet *s = sample_now(w);

  /* Samples pane: (thumbnail, image) pairs, the image part of each row. */
  ConformImageGrid *sg = CONFORM_IMAGE_GRID(conform_window_get_view(w, "images"));
  GtkWidget *thumbs = conform_window_get_view(w, "thumbnails");
  g_assert_true(gtk_widget_get_visible(thumbs));
  g_assert_cmpint(conform_image_grid_get_n_images(sg), ==, 2 * s->n);
  for (int i = 0; i < s->n; i++)
    assert_image_is_row(sg, 2 * i + 1, s->x, i, s->dim, 14);
  /* the thumbnail cell: 2 x 2 blocks of the row's first 49 values */
  const float *t0 = conform_image_grid_get_image(sg, 2);
  g_assert_cmpfloat(t0[0], ==, s->x[(gsize)1 * s->dim + 0]);
  g_assert_cmpfloat(t0[1], ==, s->x[(gsize)1 * s->dim + 0]);
  g_assert_cmpfloat(t0[2], ==, s->x[(gsize)1 * s->dim + 1]);
  g_assert_cmpfloat(t0[14 * 2], ==, s->x[(gsize)1 * s->dim + 7]);
  g_autofree char *rt = hover_readout(sg, 2);
  g_assert_cmpstr(rt, ==, "thumbnail of sample 1 (test image 1's): its constraint");
  g_autofree char *rs = hover_readout(sg, 3);
  g_assert_true(g_str_has_prefix(rs, "sample 1 · violation "));
  screenshot(GTK_WIDGET(w), "images-superres-samples.png");
  gtk_check_button_set_active(GTK_CHECK_BUTTON(thumbs), FALSE);
  g_assert_cmpint(conform_image_grid_get_n_images(sg), ==, s->n);
  for (int i = 0; i < s->n; i++)
    assert_image_is_row(sg, i, s->x, i, s->dim, 14);
  gtk_check_button_set_active(GTK_CHECK_BUTTON(thumbs), TRUE);

  /* The run refuses a condition row out of range with the engine's words. */
  g_autoptr(GError) want = NULL;
  g_assert_false(conform_check_condition(conform_run_get_config(run), 49, n_ref, 150, &want));
  g_test_message("expected refusal: %s", want->message);
  g_assert_true(g_str_has_prefix(want->message, "condition 150 is out of range: the experiment holds out 100 rows (0..99)"));
  ConformSampleOptions o = {.n = 2, .eta = -1, .use_condition = TRUE, .condition_row = 150};
  SampleResult res = {0};
  conform_run_sample_async(run, &o, NULL, 0, NULL, sample_done_cb, &res);
  WAIT_UNTIL(res.done, "refusal");
  g_assert_null(res.sets);
  g_assert_error(res.error, CONFORM_ERROR, CONFORM_ERROR_USAGE);
  g_assert_cmpstr(res.error->message, ==, want->message);
  g_clear_error(&res.error);

  /* The Super-resolution tab. */
  GtkWidget *page = conform_window_get_view(w, "superres-page");
  g_assert_true(gtk_widget_get_visible(page));
  GtkNotebook *nb = GTK_NOTEBOOK(conform_window_get_view(w, "notebook"));
  gtk_notebook_set_current_page(nb, gtk_notebook_page_num(nb, page));
  ConformSuperresPanel *p = CONFORM_SUPERRES_PANEL(conform_window_get_view(w, "superres"));
  conform_superres_panel_set_index(p, 150);
  g_assert_true(conform_superres_panel_is_error(p));
  g_assert_cmpstr(conform_superres_panel_get_message(p), ==, want->message);
  g_assert_cmpint(conform_image_grid_get_n_images(CONFORM_IMAGE_GRID(conform_superres_panel_get_target_grid(p))), ==, 0);
  conform_superres_panel_generate(p);
  g_assert_false(conform_superres_panel_is_busy(p)); /* refused before asking the run */
  g_assert_cmpstr(conform_superres_panel_get_message(p), ==, want->message);
  screenshot(GTK_WIDGET(w), "images-superres-refused.png");

  /* Test image 3: its thumbnail and image, then candidates of every strategy. */
  conform_superres_panel_set_index(p, 3);
  g_assert_false(conform_superres_panel_is_error(p));
  ConformImageGrid *tg = CONFORM_IMAGE_GRID(conform_superres_panel_get_target_grid(p));
  g_assert_cmpint(conform_image_grid_get_n_images(tg), ==, 2);
  assert_image_is_row(tg, 1, ref, 3, s->dim, 14);
  g_assert_cmpfloat(conform_image_grid_get_image(tg, 0)[0], ==, ref[(gsize)3 * s->dim]);
  conform_superres_panel_set_n_candidates(p, 4);
  conform_superres_panel_set_all_strategies(p, TRUE);
  conform_superres_panel_generate(p);
  g_assert_true(conform_superres_panel_is_busy(p));
  WAIT_UNTIL(!conform_superres_panel_is_busy(p), "candidates");
  g_test_message("demo: %s", conform_superres_panel_get_message(p));
  g_assert_false(conform_superres_panel_is_error(p));
  g_assert_cmpint(conform_superres_panel_get_n_results(p), ==, 3);
  const char *names[] = {"none", "projection", "projected-sampling"};
  for (int k = 0; k < 3; k++) {
    ConformSampleSet *c = conform_superres_panel_get_result(p, k);
    g_assert_cmpstr(c->strategy, ==, names[k]);
    g_assert_cmpint(c->n, ==, 4);
    for (int i = 0; i < c->n; i++) /* every candidate answers test image 3's thumbnail */
      g_assert_cmpint(memcmp(c->x + (gsize)i * c->dim, ref + (gsize)3 * c->dim, sizeof(float) * 49), ==, 0);
    g_assert_true(isfinite(c->summary.cond_rmse));
    const char *title = conform_superres_panel_get_result_title(p, k);
    g_test_message("%s", title);
    g_assert_nonnull(strstr(title, "cond_rmse"));
    g_assert_nonnull(strstr(title, "within tolerance"));
    if (k > 0)
      g_assert_cmpfloat(c->summary.viol.frac_satisfied, ==, 1.0);
    ConformImageGrid *rg = CONFORM_IMAGE_GRID(conform_superres_panel_get_result_grid(p, k));
    g_assert_cmpint(conform_image_grid_get_n_images(rg), ==, 4);
    assert_image_is_row(rg, 0, c->x, 0, c->dim, 14);
  }
  /* one seed: none's samples are projection's before its projection */
  ConformSampleSet *none = conform_superres_panel_get_result(p, 0), *proj = conform_superres_panel_get_result(p, 1);
  g_assert_cmpint(memcmp(none->x, proj->raw, sizeof(float) * (gsize)none->n * none->dim), ==, 0);
  drain();
  ConformImageGrid *pg = CONFORM_IMAGE_GRID(conform_superres_panel_get_result_grid(p, 1));
  g_autofree char *rp = hover_readout(pg, 1);
  g_test_message("candidate readout: %s", rp);
  g_assert_true(g_str_has_prefix(rp, "projection candidate 1 for test image 3 · violation "));
  g_assert_nonnull(strstr(rp, "(within tolerance"));
  screenshot(GTK_WIDGET(w), "images-superres-demo.png");
  /* the run's own samples were not replaced by the demo's */
  g_assert_true(conform_run_get_samples(run) == s);
  /* the trajectory grid shows the image part of superres rows */
  ConformImageGrid *trg = CONFORM_IMAGE_GRID(conform_window_get_view(w, "trajectory-images"));
  g_assert_cmpint(conform_image_grid_get_n_images(trg), ==, s->traj_n);
  /* the pretrained (unconditional) model does not fit superres */
  g_assert_false(gtk_widget_get_sensitive(conform_window_get_view(w, "pretrained")));
  close_window(w);
}

static char *
make_data_dir(void)
{
  char *dir = g_dir_make_tmp("conform-data-XXXXXX", NULL);
  g_autofree char *models = g_build_filename(dir, "models", NULL);
  g_autofree char *real = g_build_filename(g_getenv("CONFORM_SOURCE_DIR"), "data", "models", NULL);
  g_assert_cmpint(symlink(real, models), ==, 0); /* the bundled classifiers stay available */
  return dir;
}

static void
rm_rf(const char *dir)
{
  g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", dir);
  g_assert_cmpint(system(cmd), ==, 0);
}

/* Scrolls the sidebar so that widget is in view (for screenshots). */
static void
scroll_sidebar_to(GtkWidget *widget)
{
  GtkWidget *sw = gtk_widget_get_ancestor(widget, GTK_TYPE_SCROLLED_WINDOW);
  g_assert_nonnull(sw);
  GtkWidget *child = gtk_scrolled_window_get_child(GTK_SCROLLED_WINDOW(sw));
  graphene_point_t p;
  g_assert_true(gtk_widget_compute_point(widget, child, &GRAPHENE_POINT_INIT(0, 0), &p));
  GtkAdjustment *adj = gtk_scrolled_window_get_vadjustment(GTK_SCROLLED_WINDOW(sw));
  gtk_adjustment_set_value(adj, p.y - gtk_adjustment_get_page_size(adj) / 2);
  drain();
}

static void
test_pretrained(void)
{
  /* No pretrained model: the toggle is insensitive and says why. */
  g_autofree char *saved = g_strdup(g_getenv("CONFORM_DATA_DIR"));
  g_autofree char *empty = make_data_dir();
  g_setenv("CONFORM_DATA_DIR", empty, TRUE);
  g_assert_null(conform_pretrained_dir(14));
  ConformWindow *w = open_window("gaussians");
  GtkWidget *toggle = conform_window_get_view(w, "pretrained");
  GtkWidget *note = conform_window_get_view(w, "pretrained-note");
  g_assert_nonnull(toggle);
  g_assert_false(gtk_widget_get_visible(toggle)); /* vector data */
  reset_tiny(w, "fashion-brightness");
  g_assert_true(gtk_widget_get_visible(toggle));
  g_assert_false(gtk_widget_get_sensitive(toggle));
  g_test_message("tooltip: %s", gtk_widget_get_tooltip_text(toggle));
  g_assert_nonnull(strstr(gtk_widget_get_tooltip_text(toggle), "No bundled pretrained model for 14 x 14 images"));
  g_assert_true(gtk_widget_get_visible(note));
  g_assert_cmpstr(gtk_label_get_text(GTK_LABEL(note)), ==, "No bundled pretrained model for 14 x 14 images");
  scroll_sidebar_to(toggle);
  screenshot(GTK_WIDGET(w), "images-pretrained-missing.png");
  close_window(w); /* the environment changes below with no run thread alive */

  /* A tiny pretrained model, trained here in-process like the bundled one
   * (same model settings as the window's run). */
  g_autofree char *data = make_data_dir();
  g_autofree char *pre = g_build_filename(data, "pretrained", "fashion14", NULL);
  {
    ConformConfig pc;
    tiny_config(&pc, "fashion");
    g_autoptr(GError) error = NULL;
    g_autoptr(ConformEngine) e = conform_engine_new(&pc, &error);
    g_assert_no_error(error);
    g_assert_true(conform_engine_train(e, 3, NULL, NULL, NULL, &error));
    g_assert_true(conform_engine_save(e, pre, NULL, 0, NULL, &error));
    g_assert_no_error(error);
    conform_config_clear(&pc);
  }
  g_setenv("CONFORM_DATA_DIR", data, TRUE);
  g_autofree char *found = conform_pretrained_dir(14);
  g_assert_cmpstr(found, ==, pre);
  g_assert_null(conform_pretrained_dir(28));
  w = open_window("gaussians");
  toggle = conform_window_get_view(w, "pretrained");
  note = conform_window_get_view(w, "pretrained-note");
  ConformRun *run = reset_tiny(w, "fashion-brightness");
  g_assert_true(gtk_widget_get_sensitive(toggle));
  g_assert_false(gtk_widget_get_visible(note));
  g_assert_false(gtk_check_button_get_active(GTK_CHECK_BUTTON(toggle)));
  gtk_check_button_set_active(GTK_CHECK_BUTTON(toggle), TRUE);
  g_assert_cmpstr(gtk_editable_get_text(GTK_EDITABLE(conform_window_get_view(w, "train.init"))), ==, pre);
  g_assert_cmpstr(conform_run_get_config(run)->init, ==, ""); /* not before Reset */
  scroll_sidebar_to(toggle);
  screenshot(GTK_WIDGET(w), "images-pretrained.png");
  gtk_widget_activate_action(GTK_WIDGET(w), "win.reset", NULL);
  run = wait_new_run(w, run);
  g_assert_cmpstr(conform_run_get_config(run)->init, ==, pre);
  g_assert_null(conform_window_get_last_error(w));
  g_assert_true(gtk_check_button_get_active(GTK_CHECK_BUTTON(toggle))); /* it started from it */
  /* off: the next Reset starts from random weights again */
  gtk_check_button_set_active(GTK_CHECK_BUTTON(toggle), FALSE);
  gtk_widget_activate_action(GTK_WIDGET(w), "win.reset", NULL);
  run = wait_new_run(w, run);
  g_assert_cmpstr(conform_run_get_config(run)->init, ==, "");
  /* superres: the bundled model is unconditional */
  reset_tiny(w, "fashion-superres");
  g_assert_false(gtk_widget_get_sensitive(toggle));
  g_assert_true(gtk_widget_get_visible(note));
  close_window(w);
  if (saved)
    g_setenv("CONFORM_DATA_DIR", saved, TRUE);
  else
    g_unsetenv("CONFORM_DATA_DIR");
  rm_rf(data);
  rm_rf(empty);
}

static void
write_pngs(const char *dir, int n, gboolean broken)
{
  g_assert_cmpint(g_mkdir_with_parents(dir, 0755), ==, 0);
  for (int i = 0; i < n; i++) {
    g_autofree char *name = g_strdup_printf("img%02d.png", i);
    g_autofree char *path = g_build_filename(dir, name, NULL);
    if (broken) {
      g_assert_true(g_file_set_contents(path, "not a png", -1, NULL));
      continue;
    }
    float img[8 * 8];
    for (int k = 0; k < 64; k++) /* a bright square that moves with i */
      img[k] = (k / 8 >= i % 4 && k / 8 < i % 4 + 4 && k % 8 >= 2 && k % 8 < 6) ? 1.0f : 0.0f;
    g_autoptr(GError) error = NULL;
    g_assert_true(conform_image_grid_write_png(path, img, 1, 8, 8, 1, 0.0f, 1.0f, NULL, 1, &error));
  }
}

static void
test_png_folder(void)
{
  g_autofree char *tmp = g_dir_make_tmp("conform-pngs-XXXXXX", NULL);
  g_autofree char *good = g_build_filename(tmp, "drawings", NULL);
  g_autofree char *bad = g_build_filename(tmp, "broken", NULL);
  write_pngs(good, 20, FALSE);
  write_pngs(bad, 20, TRUE);
  ConformWindow *w = open_window("gaussians");
  ConformRun *run = reset_tiny(w, "fashion-brightness");
  GtkWidget *button = conform_window_get_view(w, "choose-folder");
  g_assert_nonnull(button);
  g_assert_true(gtk_widget_is_visible(button));
  /* what the folder chooser does with the chosen folder */
  conform_window_choose_folder_(w, good);
  g_assert_cmpstr(gtk_editable_get_text(GTK_EDITABLE(conform_window_get_view(w, "data.source"))), ==, good);
  g_assert_cmpstr(conform_run_get_config(run)->data, ==, "fashion-brightness"); /* applies on Reset */
  gtk_widget_activate_action(GTK_WIDGET(w), "win.reset", NULL);
  run = wait_new_run(w, run);
  g_assert_cmpstr(conform_run_get_config(run)->data, ==, good);
  g_assert_cmpint(conform_run_get_dim(run), ==, 196);
  int n = 0;
  conform_run_get_train_data(run, &n);
  g_assert_cmpint(n, ==, 18); /* 10% of 20 held out */
  ConformSampleSet *s = sample_now(w);
  g_assert_cmpint(conform_image_grid_get_n_images(CONFORM_IMAGE_GRID(conform_window_get_view(w, "images"))), ==,
                  s->n);
  screenshot(GTK_WIDGET(w), "images-png-folder.png");
  /* a folder without one readable PNG: the engine's error, the run stays */
  conform_window_choose_folder_(w, bad);
  gtk_widget_activate_action(GTK_WIDGET(w), "win.reset", NULL);
  WAIT_UNTIL(conform_window_get_last_error(w) != NULL, "the folder's error");
  g_test_message("error: %s", conform_window_get_last_error(w));
  g_assert_nonnull(strstr(conform_window_get_last_error(w), bad));
  g_assert_true(conform_window_get_run(w) == run);
  close_window(w);
  rm_rf(tmp);
}

int
main(int argc, char **argv)
{
  gtk_test_init(&argc, &argv, NULL);
  g_setenv("CONFORM_NO_CLOSE_PROMPT", "1", TRUE);
  app = conform_application_new();
  g_assert_true(g_application_register(G_APPLICATION(app), NULL, NULL));
  g_test_add_func("/images-window/trajectory-and-hover", test_trajectory_and_hover);
  g_test_add_func("/images-window/superres", test_superres);
  g_test_add_func("/images-window/pretrained", test_pretrained);
  g_test_add_func("/images-window/png-folder", test_png_folder);
  int rc = g_test_run();
  g_object_unref(app);
  return rc;
}
