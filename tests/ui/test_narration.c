/* The Slow motion tab (ConformNarration): sub-steps per strategy built from
 * a sample set's own arrays, Back / Next through them, the arrows of the
 * projection and mirror steps, the dual step's numbers; and in the real
 * window after training and sampling. */
#include <gtk/gtk.h>
#include <math.h>
#include <string.h>

#include "conform-narration.h"
#include "conform-scatter.h"
#include "optim.h"
#include "window-fixture.h"

/* n 2-D samples: raw around the line x0 + x1 = 0 and x their projection. */
static ConformSampleSet *
projection_set(int n, const char *strategy)
{
  ConformSampleSet *s = g_atomic_rc_box_new0(ConformSampleSet);
  s->n = n;
  s->dim = 2;
  s->step = 100;
  s->strategy = g_strdup(strategy);
  s->sampler = g_strdup("ddim 50");
  s->x = cf_alloc_floats((gsize)2 * n);
  s->raw = cf_alloc_floats((gsize)2 * n);
  s->viol = g_new(double, n);
  s->viol_raw = g_new(double, n);
  for (int i = 0; i < n; i++) {
    float a = (float)i / n * 4 - 2, off = 0.3f * (float)sin(i);
    s->raw[2 * i] = a + off;
    s->raw[2 * i + 1] = -a + off;
    s->x[2 * i] = a;
    s->x[2 * i + 1] = -a;
    s->viol_raw[i] = fabs(2 * off) / sqrt(2);
    s->viol[i] = 0;
  }
  return s;
}

static GtkWidget *
find_button(GtkWidget *w, const char *icon)
{
  for (GtkWidget *c = gtk_widget_get_first_child(w); c; c = gtk_widget_get_next_sibling(c)) {
    if (GTK_IS_BUTTON(c) && g_strcmp0(gtk_button_get_icon_name(GTK_BUTTON(c)), icon) == 0)
      return c;
    GtkWidget *r = find_button(c, icon);
    if (r)
      return r;
  }
  return NULL;
}

static void
test_projection_steps(void)
{
  GtkWidget *win = gtk_window_new();
  GtkWidget *nw = conform_narration_new();
  ConformNarration *nr = CONFORM_NARRATION(nw);
  gtk_window_set_child(GTK_WINDOW(win), nw);
  gtk_window_set_default_size(GTK_WINDOW(win), 900, 600);
  gtk_window_present(GTK_WINDOW(win));
  g_assert_cmpint(conform_narration_get_n_steps(nr), ==, 0);
  GtkWidget *next = find_button(nw, "go-next-symbolic"), *back = find_button(nw, "go-previous-symbolic");
  g_assert_nonnull(next);
  g_assert_false(gtk_widget_get_sensitive(next));

  g_autoptr(ConformSampleSet) s = projection_set(40, "projection");
  CfConstraint c;
  cf_constraint_init(&c);
  const double A[2] = {1, 1}, b[1] = {0};
  g_assert_cmpint(cf_constraint_set(&c, 1, 2, A, b, NULL), ==, CF_OK);
  conform_narration_set_samples(nr, s, &c, NULL);
  g_assert_cmpint(conform_narration_get_n_steps(nr), ==, 4);
  g_assert_cmpint(conform_narration_get_step(nr), ==, 0);
  g_assert_false(gtk_widget_get_sensitive(back));
  g_assert_true(strstr(conform_narration_get_text(nr), "raw samples") != NULL);
  /* the raw samples of the first step: 16 points, no arrows yet */
  ConformScatter *sc = CONFORM_SCATTER(conform_narration_get_scatter(nr));
  g_assert_cmpint(conform_scatter_get_n_points(sc), ==, CONFORM_NARRATION_POINTS);
  g_signal_emit_by_name(next, "clicked");
  g_signal_emit_by_name(next, "clicked");
  g_assert_cmpint(conform_narration_get_step(nr), ==, 2);
  g_assert_true(strstr(conform_narration_get_text(nr), "(A Aᵀ)⁻¹") != NULL);
  g_signal_emit_by_name(next, "clicked");
  g_assert_false(gtk_widget_get_sensitive(next));
  g_assert_true(strstr(conform_narration_get_text(nr), "float round-off") != NULL);
  g_signal_emit_by_name(back, "clicked");
  g_assert_cmpint(conform_narration_get_step(nr), ==, 2);
  /* the same strategy again keeps the position; another resets it */
  g_autoptr(ConformSampleSet) s2 = projection_set(40, "projection");
  conform_narration_set_samples(nr, s2, &c, NULL);
  g_assert_cmpint(conform_narration_get_step(nr), ==, 2);
  g_autoptr(ConformSampleSet) s3 = projection_set(40, "none");
  conform_narration_set_samples(nr, s3, &c, NULL);
  g_assert_cmpint(conform_narration_get_step(nr), ==, 0);
  g_assert_cmpint(conform_narration_get_n_steps(nr), ==, 1); /* no trajectory: the samples only */

  /* dual: the dual step quotes the multipliers of the latest record */
  g_autoptr(ConformSampleSet) sd = projection_set(40, "dual");
  ConformConfig cfg;
  conform_config_init(&cfg);
  ConformTrainRecord r = {.step = 500, .n_dual = 2, .lambda = {0.25f, 1.5f}, .slack = {-0.01f, 0.02f}};
  conform_narration_set_record(nr, &r);
  conform_narration_set_samples(nr, sd, &c, &cfg);
  g_assert_cmpint(conform_narration_get_n_steps(nr), ==, 3);
  conform_narration_set_step(nr, 1);
  g_test_message("%s", conform_narration_get_text(nr));
  g_assert_true(strstr(conform_narration_get_text(nr), "λ<sub>1</sub> = 1.5") != NULL);
  g_assert_true(strstr(conform_narration_get_text(nr), "step 500") != NULL);
  conform_config_clear(&cfg);
  cf_constraint_clear(&c);
  gtk_window_destroy(GTK_WINDOW(win));
  drain();
}

/* Mirror: x -> g(x) -> mirror-space samples -> f back, the last with arrows
 * from the mirror-space points. */
static void
test_mirror_steps(void)
{
  GtkWidget *nw = g_object_ref_sink(conform_narration_new());
  ConformNarration *nr = CONFORM_NARRATION(nw);
  g_autoptr(ConformSampleSet) s = projection_set(30, "mirror");
  s->mirror = g_new(float, 60);
  s->n_mirror_ref = 30;
  s->mirror_ref = g_new(float, 60);
  for (int i = 0; i < 60; i++)
    s->mirror[i] = s->mirror_ref[i] = 2.0f * s->raw[i];
  conform_narration_set_samples(nr, s, NULL, NULL);
  g_assert_cmpint(conform_narration_get_n_steps(nr), ==, 4);
  conform_narration_set_step(nr, 99); /* clamped */
  g_assert_cmpint(conform_narration_get_step(nr), ==, 3);
  g_assert_true(strstr(conform_narration_get_title(nr), "Inverse map f") != NULL);
  conform_narration_set_step(nr, 1);
  g_assert_true(strstr(conform_narration_get_title(nr), "Forward map g") != NULL);
  g_object_unref(nw);
}

/* In the window: train simplex-3d a little, sample with projection and
 * step through the tab; the reverse chain's frames appear for none. */
static void
test_in_window(void)
{
  ConformWindow *w = open_window("simplex-3d");
  ConformRun *run = conform_window_get_run(w);
  ConformNarration *nr = CONFORM_NARRATION(conform_window_get_view(w, "narration"));
  g_assert_nonnull(nr);
  conform_run_step(run, 200);
  WAIT_UNTIL(conform_run_get_step(run) >= 200 && conform_run_get_state(run) == CONFORM_RUN_PAUSED, "200 steps");
  conform_run_request_samples(run, 300, 0);
  WAIT_UNTIL(conform_run_get_samples(run) && conform_run_get_samples(run)->step >= 200, "samples");
  drain();
  g_assert_cmpint(conform_narration_get_n_steps(nr), >=, 1);
  g_test_message("%d sub-steps for %s: %s", conform_narration_get_n_steps(nr),
                 conform_run_get_samples(run)->strategy, conform_narration_get_title(nr));
  GtkNotebook *nb = GTK_NOTEBOOK(conform_window_get_view(w, "notebook"));
  gtk_notebook_set_current_page(nb, gtk_notebook_page_num(nb, GTK_WIDGET(nr)));
  conform_narration_set_step(nr, conform_narration_get_n_steps(nr) - 1);
  screenshot(GTK_WIDGET(w), "window-slow-motion.png");
  close_window(w);
}

int
main(int argc, char **argv)
{
  gtk_test_init(&argc, &argv, NULL);
  g_setenv("CONFORM_NO_CLOSE_PROMPT", "1", TRUE);
  app = conform_application_new();
  g_assert_true(g_application_register(G_APPLICATION(app), NULL, NULL));
  g_test_add_func("/narration/projection-steps", test_projection_steps);
  g_test_add_func("/narration/mirror-steps", test_mirror_steps);
  g_test_add_func("/narration/in-window", test_in_window);
  int rc = g_test_run();
  g_object_unref(app);
  return rc;
}
