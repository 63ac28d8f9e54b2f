/* A numerical blow-up in the middle of training, in the real window: the
 * run's engine gets a NaN parameter just before a chosen step
 * (CONFORM_DEBUG_NAN_STEP, read when a run is created). The window must say
 * so (non-finite, NaN, the step), keep the last good state (step, records,
 * curves, finite samples) and stay usable: training on in the same run and,
 * after Reset, in a fresh one goes past that step. */
#include <glib/gstdio.h>
#include <gtk/gtk.h>
#include <math.h>
#include <string.h>

#include "conform-curves.h"
#include "conform-window.h"

#include "window-fixture.h"

#define NAN_STEP 130 /* the engine keeps a good state every 50 steps: back to 100 */
#define GOOD_STEP 100

static const char *
message_text(ConformWindow *w)
{
  return gtk_label_get_text(GTK_LABEL(conform_window_get_view(w, "message")));
}

/* Records strictly increasing in step, none past the run's step, and the
 * loss curve holding exactly one point per record. */
static void
check_records(ConformWindow *w)
{
  ConformRun *run = conform_window_get_run(w);
  const GArray *rec = conform_run_get_records(run);
  g_assert_cmpuint(rec->len, >, 0);
  for (guint i = 1; i < rec->len; i++)
    if (g_array_index(rec, ConformTrainRecord, i).step <= g_array_index(rec, ConformTrainRecord, i - 1).step)
      g_error("records out of order at %u: step %ld after step %ld", i, g_array_index(rec, ConformTrainRecord, i).step,
              g_array_index(rec, ConformTrainRecord, i - 1).step);
  g_assert_cmpint(g_array_index(rec, ConformTrainRecord, rec->len - 1).step, <=, conform_run_get_step(run));
  ConformCurves *loss = CONFORM_CURVES(conform_window_get_view(w, "loss"));
  g_assert_cmpint(conform_curves_get_n_points(loss, 0), ==, (gint64)rec->len);
}

static void
test_nan_mid_training(void)
{
  g_autofree char *nan_step = g_strdup_printf("%d", NAN_STEP);
  g_setenv("CONFORM_DEBUG_NAN_STEP", nan_step, TRUE);
  ConformWindow *w = open_window("simplex-3d");
  g_unsetenv("CONFORM_DEBUG_NAN_STEP"); /* runs created from now on train normally */
  ConformRun *run = conform_window_get_run(w);
  g_assert_null(conform_window_get_last_error(w));
  conform_run_set_preview_interval(run, 0.02); /* samples from before the blow-up, too */
  /* First up to step 120, and let the curves show it: records past the
   * state the blow-up will return to are on screen. */
  conform_run_step(run, NAN_STEP - 10);
  WAIT_UNTIL(conform_run_get_step(run) == NAN_STEP - 10 && conform_run_get_state(run) == CONFORM_RUN_PAUSED,
             "the first steps");
  ConformCurves *loss = CONFORM_CURVES(conform_window_get_view(w, "loss"));
  WAIT_UNTIL(conform_curves_get_n_points(loss, 0) == (gint64)conform_run_get_records(run)->len, "the loss curve");
  g_assert_cmpint(g_array_index(conform_run_get_records(run), ConformTrainRecord,
                                conform_run_get_records(run)->len - 1).step, ==, NAN_STEP - 10);
  gint64 shown = conform_curves_get_n_points(loss, 0);
  /* Then train: the NaN comes at NAN_STEP. */
  gtk_widget_activate_action(GTK_WIDGET(w), "win.train-toggle", NULL);
  WAIT_UNTIL(conform_window_get_last_error(w) != NULL, "the message about the blow-up");
  WAIT_UNTIL(conform_run_get_state(run) == CONFORM_RUN_PAUSED, "the run pauses");
  drain();

  /* The message says what happened and where, as an error. */
  const char *msg = message_text(w);
  g_test_message("message shown: %s", msg);
  g_autofree char *lower = g_ascii_strdown(msg, -1);
  g_assert_nonnull(strstr(lower, "non-finite"));
  g_assert_nonnull(strstr(lower, "nan"));
  g_autofree char *at = g_strdup_printf("at step %d", NAN_STEP);
  g_autofree char *back = g_strdup_printf("state of step %d", GOOD_STEP);
  g_assert_nonnull(strstr(msg, at));
  g_assert_nonnull(strstr(msg, back));
  g_assert_true(gtk_widget_has_css_class(conform_window_get_view(w, "message"), "error"));
  g_assert_cmpstr(conform_window_get_last_error(w), ==, msg);

  /* The last good state: its step in the run and the status line, its
   * records and curves only. */
  g_assert_cmpint(conform_run_get_step(run), ==, GOOD_STEP);
  g_autofree char *status = g_strdup_printf("paused · step %d of ", GOOD_STEP);
  g_assert_true(g_str_has_prefix(conform_window_get_status_text(w), status));
  check_records(w);
  g_assert_cmpint(conform_curves_get_n_points(loss, 0), <, shown); /* the points past step 100 are gone */

  /* Samples of the restored parameters (the worker samples after a
   * blow-up), all finite. */
  WAIT_UNTIL(conform_run_get_samples(run) && conform_run_get_samples(run)->step == GOOD_STEP,
             "samples of the restored state");
  ConformSampleSet *s = conform_run_get_samples(run);
  g_assert_cmpint(s->n, >, 0);
  for (int i = 0; i < s->n * s->dim; i++)
    g_assert_true(isfinite(s->x[i]));
  screenshot(GTK_WIDGET(w), "window-nan.png");

  /* Still usable: Train continues in the same run past the bad step (the
   * injected fault happens once, as a real blow-up might not). */
  g_assert_true(g_action_group_get_action_enabled(G_ACTION_GROUP(w), "train-toggle"));
  gtk_widget_activate_action(GTK_WIDGET(w), "win.train-toggle", NULL);
  WAIT_UNTIL(conform_run_get_step(run) >= NAN_STEP + 50, "training past the bad step");
  g_assert_cmpint(conform_run_get_state(run), ==, CONFORM_RUN_TRAINING);
  g_assert_false(gtk_widget_has_css_class(conform_window_get_view(w, "message"), "error"));
  gtk_widget_activate_action(GTK_WIDGET(w), "win.train-toggle", NULL);
  WAIT_UNTIL(conform_run_get_state(run) == CONFORM_RUN_PAUSED, "pause");
  drain();
  g_usleep(100000);
  drain();
  check_records(w);

  /* Reset: a fresh run, which trains past that step without a message. */
  gtk_widget_activate_action(GTK_WIDGET(w), "win.reset", NULL);
  WAIT_UNTIL(conform_window_get_run(w) != run && conform_run_get_state(conform_window_get_run(w)) == CONFORM_RUN_PAUSED,
             "the new run");
  run = conform_window_get_run(w);
  g_assert_cmpint(conform_run_get_step(run), ==, 0);
  gtk_widget_activate_action(GTK_WIDGET(w), "win.train-toggle", NULL);
  WAIT_UNTIL(conform_run_get_step(run) >= NAN_STEP + 100, "the new run trains past the step");
  g_assert_cmpint(conform_run_get_state(run), ==, CONFORM_RUN_TRAINING);
  g_assert_null(strstr(message_text(w), "non-finite"));
  gtk_widget_activate_action(GTK_WIDGET(w), "win.train-toggle", NULL);
  WAIT_UNTIL(conform_run_get_state(run) == CONFORM_RUN_PAUSED, "pause");
  drain();
  g_usleep(100000);
  drain();
  check_records(w);
  close_window(w);
}

int
main(int argc, char **argv)
{
  gtk_test_init(&argc, &argv, NULL);
  g_setenv("CONFORM_NO_CLOSE_PROMPT", "1", TRUE);
  app = conform_application_new();
  g_assert_true(g_application_register(G_APPLICATION(app), NULL, NULL));
  g_test_add_func("/nan-window/nan-mid-training", test_nan_mid_training);
  int rc = g_test_run();
  g_object_unref(app);
  return rc;
}
