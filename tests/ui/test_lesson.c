/* Lessons in the real window: every bundled lesson starts and applies its
 * visibility; a lesson steps forward and back, hides controls, asks for a
 * prediction and keeps the answer hidden until Reveal has run the step's
 * action; a lesson exported from a window reopens to the same state; a
 * malformed lesson is refused and the window stays as it was. */
#include <glib/gstdio.h>
#include <gtk/gtk.h>
#include <math.h>
#include <string.h>

#include "conform-constraint-editor.h"
#include "conform-images.h"
#include "conform-lesson-panel.h"
#include "conform-manifest.h"
#include "conform-window-teach.h"

#include "window-fixture.h"

static char *tmpdir;

static char *
write_lesson(const char *name, const char *text)
{
  char *path = g_build_filename(tmpdir, name, NULL);
  g_assert_true(g_file_set_contents(path, text, -1, NULL));
  return path;
}

static ConformLessonPanel *
panel_of(ConformWindow *w)
{
  return CONFORM_LESSON_PANEL(conform_window_get_lesson_panel(w));
}

/* A lesson's start resets the window: wait for that run. */
static ConformRun *
open_lesson(ConformWindow *w, const char *path)
{
  ConformRun *before = conform_window_get_run(w);
  g_autoptr(GError) error = NULL;
  if (!conform_window_open_lesson(w, path, &error))
    g_error("%s: %s", path, error->message);
  WAIT_UNTIL(conform_window_get_run(w) != before &&
                 conform_run_get_state(conform_window_get_run(w)) == CONFORM_RUN_PAUSED,
             "the lesson's run");
  return conform_window_get_run(w);
}

/* Every control of the window is shown exactly when the lesson says. */
static void
check_visibility(ConformWindow *w, const ConformLesson *l)
{
  for (const char *const *v = conform_lesson_view_names(); *v; v++)
    if (conform_window_control_visible(w, *v) != conform_lesson_control_visible(l, *v))
      g_error("view %s: shown %d, the lesson says %d", *v, conform_window_control_visible(w, *v),
              conform_lesson_control_visible(l, *v));
  for (const char *const *v = conform_lesson_header_names(); *v; v++)
    g_assert_true(conform_window_control_visible(w, *v) == conform_lesson_control_visible(l, *v));
  guint nk;
  const ConformKey *keys = conform_config_keys(&nk);
  for (guint i = 0; i < nk; i++)
    if (conform_window_get_view(w, keys[i].key) &&
        conform_window_control_visible(w, keys[i].key) != conform_lesson_control_visible(l, keys[i].key))
      g_error("setting %s: shown %d, the lesson says %d", keys[i].key,
              conform_window_control_visible(w, keys[i].key), conform_lesson_control_visible(l, keys[i].key));
}

static void
test_bundled(void)
{
  g_autofree char *idx = g_build_filename(CONFORM_FASHION_MNIST_DIR, "t10k-images-idx3-ubyte.gz", NULL);
  gboolean fashion = g_file_test(idx, G_FILE_TEST_EXISTS);
  g_auto(GStrv) paths = conform_lesson_bundled();
  g_assert_cmpuint(g_strv_length(paths), >=, 5);
  ConformWindow *w = open_window("moons");
  for (int i = 0; paths[i]; i++) {
    g_autoptr(GError) error = NULL;
    g_autoptr(ConformLesson) l = conform_lesson_load(paths[i], &error);
    g_assert_no_error(error);
    if (g_str_has_prefix(l->preset, "fashion") && !fashion) {
      g_test_message("%s: skipped (Fashion-MNIST is not installed)", paths[i]);
      continue;
    }
    ConformRun *run = open_lesson(w, paths[i]);
    ConformLessonPanel *p = panel_of(w);
    g_assert_true(gtk_widget_get_visible(GTK_WIDGET(p)));
    g_assert_cmpstr(conform_lesson_panel_get_lesson(p)->title, ==, l->title);
    g_assert_cmpstr(conform_run_get_config(run)->preset, ==, l->preset);
    if (l->strategy)
      g_assert_cmpstr(conform_run_get_config(run)->strategy, ==, l->strategy);
    check_visibility(w, l);
    /* walk the steps without running them: no answer is shown */
    for (int s = 0; s < l->n_steps; s++) {
      g_assert_cmpint(conform_lesson_panel_get_step(p), ==, s);
      g_assert_false(conform_lesson_panel_answer_shown(p));
      g_assert_cmpstr(conform_lesson_panel_get_answer(p), ==, "");
      g_assert_cmpuint(strlen(conform_lesson_panel_get_text(p)), >, 0);
      if (i == 0 && s == 1)
        screenshot(GTK_WIDGET(w), "lesson-question.png");
      if (s + 1 < l->n_steps)
        conform_lesson_panel_next(p);
    }
    g_assert_cmpint(conform_run_get_step(run), ==, 0); /* nothing ran */
  }
  conform_lesson_panel_close(panel_of(w));
  g_assert_false(gtk_widget_get_visible(conform_window_get_lesson_panel(w)));
  for (const char *const *v = conform_lesson_view_names(); *v; v++)
    g_assert_true(conform_window_control_visible(w, *v));
  g_assert_true(conform_window_control_visible(w, "model.width"));
  /* the Lessons… dialog lists them */
  gtk_widget_activate_action(GTK_WIDGET(w), "win.lessons", NULL);
  drain();
  GList *tops = gtk_window_list_toplevels();
  gboolean found = FALSE;
  for (GList *t = tops; t; t = t->next)
    if (g_strcmp0(gtk_window_get_title(t->data), "Lessons") == 0) {
      found = TRUE;
      GtkListBox *list = g_object_get_data(G_OBJECT(t->data), "list");
      g_assert_nonnull(gtk_list_box_get_row_at_index(list, 3));
      screenshot(GTK_WIDGET(t->data), "lessons-dialog.png");
      gtk_window_destroy(GTK_WINDOW(t->data));
    }
  g_list_free(tops);
  g_assert_true(found);
  close_window(w);
}

static const char flow_lesson[] =
  "[lesson]\n"
  "title=Flow\n"
  "preset=gaussians-line\n"
  "strategy=none\n"
  "strategies=none;projection\n"
  "visible=samples;histogram;history;train.lr;train.steps;sample.n\n"
  "hidden=strategy\n"
  "[settings]\n"
  "train.steps=300\n"
  "sample.n=500\n"
  "[step 1]\n"
  "text=Intro\n"
  "[step 2]\n"
  "text=Train.\n"
  "question=How many samples will satisfy the line?\n"
  "choices=none;half;all\n"
  "correct=none\n"
  "action=train 300; sample\n"
  "answer=Measured {frac_satisfied} at step {step}; you said {prediction}.\n"
  "[step 3]\n"
  "text=Typed prediction, projection.\n"
  "question=Largest violation after projection?\n"
  "action=strategy projection; sample\n"
  "answer=max {violation_max}\n"
  "[step 4]\n"
  "text=Settings and views.\n"
  "action=set train.lr=0.0005; show history\n";

static void
test_flow(void)
{
  g_autofree char *path = write_lesson("flow.lesson", flow_lesson);
  ConformWindow *w = open_window("moons");
  ConformRun *run = open_lesson(w, path);
  ConformLessonPanel *p = panel_of(w);
  g_assert_cmpint(conform_run_get_config(run)->steps, ==, 300);

  /* hidden controls: settings outside `visible`, their empty sections, views, the strategy */
  g_assert_true(conform_window_control_visible(w, "train.lr"));
  g_assert_false(conform_window_control_visible(w, "train.batch"));
  g_assert_false(conform_window_control_visible(w, "model.width"));
  GtkWidget *width = conform_window_get_view(w, "model.width");
  g_assert_false(gtk_widget_get_visible(gtk_widget_get_parent(width))); /* the Model section */
  g_assert_false(conform_window_control_visible(w, "curves"));
  g_assert_false(conform_window_control_visible(w, "compare"));
  g_assert_false(conform_window_control_visible(w, "trajectory"));
  g_assert_true(conform_window_control_visible(w, "samples"));
  g_assert_true(conform_window_control_visible(w, "history"));
  g_assert_false(conform_window_control_visible(w, "strategy"));
  g_assert_true(conform_window_control_visible(w, "preset"));

  /* forward and back */
  g_assert_cmpint(conform_lesson_panel_get_step(p), ==, 0);
  g_assert_false(conform_lesson_panel_reveal(p)); /* nothing to reveal */
  conform_lesson_panel_back(p);
  g_assert_cmpint(conform_lesson_panel_get_step(p), ==, 0);
  conform_lesson_panel_next(p);
  g_assert_cmpint(conform_lesson_panel_get_step(p), ==, 1);

  /* predict first: no Reveal without a prediction, no action, no answer */
  g_assert_false(conform_lesson_panel_reveal(p));
  g_assert_false(conform_lesson_panel_is_busy(p));
  g_assert_false(conform_lesson_panel_answer_shown(p));
  g_assert_cmpint(conform_run_get_step(run), ==, 0);
  conform_lesson_panel_choose(p, 0);
  screenshot(GTK_WIDGET(w), "lesson-flow-predict.png");
  g_assert_true(conform_lesson_panel_reveal(p));
  /* the action runs first; the answer stays hidden until it is done */
  g_assert_true(conform_lesson_panel_is_busy(p));
  g_assert_false(conform_lesson_panel_answer_shown(p));
  g_assert_cmpstr(conform_lesson_panel_get_answer(p), ==, "");
  WAIT_UNTIL(!conform_lesson_panel_is_busy(p), "step 2's action");
  g_assert_cmpint(conform_run_get_step(run), ==, 300);
  ConformSampleSet *s = conform_run_get_samples(run);
  g_assert_nonnull(s);
  g_assert_cmpint(s->step, ==, 300);
  g_assert_cmpint(s->n, ==, 500);
  g_assert_true(conform_lesson_panel_answer_shown(p));
  g_autofree char *expect = g_strdup_printf("at step 300; you said none.");
  g_assert_nonnull(strstr(conform_lesson_panel_get_answer(p), expect));
  g_assert_null(strstr(conform_lesson_panel_get_answer(p), "n/a"));
  screenshot(GTK_WIDGET(w), "lesson-flow-answer.png");
  /* back and forth keeps the revealed step as it was, and it is not run again */
  conform_lesson_panel_back(p);
  g_assert_false(conform_lesson_panel_answer_shown(p));
  conform_lesson_panel_next(p);
  g_assert_true(conform_lesson_panel_answer_shown(p));
  g_assert_false(conform_lesson_panel_reveal(p));
  g_assert_cmpint(conform_run_get_step(run), ==, 300);

  /* a typed prediction; the action switches the strategy and samples */
  conform_lesson_panel_next(p);
  g_assert_false(conform_lesson_panel_answer_shown(p));
  g_assert_false(conform_lesson_panel_reveal(p));
  conform_lesson_panel_set_prediction(p, "1e-7");
  g_assert_true(conform_lesson_panel_reveal(p));
  WAIT_UNTIL(!conform_lesson_panel_is_busy(p), "step 3's action");
  s = conform_run_get_samples(run);
  g_assert_cmpstr(s->strategy, ==, "projection");
  g_assert_cmpfloat(s->summary.viol.max, <, 1e-5);
  g_assert_true(g_str_has_prefix(conform_lesson_panel_get_answer(p), "max "));

  /* a step without a question: Run sets a setting and shows a view */
  conform_lesson_panel_next(p);
  g_assert_true(conform_lesson_panel_reveal(p));
  WAIT_UNTIL(!conform_lesson_panel_is_busy(p), "step 4's action");
  GtkNotebook *nb = GTK_NOTEBOOK(conform_window_get_view(w, "notebook"));
  g_assert_true(gtk_notebook_get_nth_page(nb, gtk_notebook_get_current_page(nb)) ==
                conform_window_get_history_panel(w));
  g_assert_cmpfloat(gtk_spin_button_get_value(GTK_SPIN_BUTTON(conform_window_get_view(w, "train.lr"))), ==, 0.0005);
  WAIT_UNTIL(conform_run_get_config(run)->lr == 0.0005, "live lr from the lesson");
  /* Finish closes the lesson and shows everything again */
  conform_lesson_panel_next(p);
  g_assert_null(conform_lesson_panel_get_lesson(p));
  g_assert_true(conform_window_control_visible(w, "curves"));
  g_assert_true(conform_window_control_visible(w, "model.width"));
  g_assert_true(conform_window_control_visible(w, "strategy"));
  close_window(w);
  g_unlink(path);
}

/* A lesson exported from a window's state reopens to the same state. */
static void
test_export_reopen(void)
{
  g_autofree char *path = write_lesson("flow.lesson", flow_lesson);
  ConformWindow *w = open_window("moons");
  ConformRun *run = open_lesson(w, path);
  /* change what a teacher would: a setting, the strategy, the constraint */
  gtk_spin_button_set_value(GTK_SPIN_BUTTON(conform_window_get_view(w, "train.lr")), 0.00125);
  GtkDropDown *dd = GTK_DROP_DOWN(conform_window_get_view(w, "strategy"));
  gtk_drop_down_set_selected(dd, 1); /* projection */
  ConformConstraintEditor *ed = CONFORM_CONSTRAINT_EDITOR(conform_window_get_view(w, "editor"));
  const char *row[] = {"1", "-0.5", "0.25"};
  for (int j = 0; j < 3; j++)
    conform_constraint_editor_set_cell(ed, 0, j, row[j]);
  conform_constraint_editor_validate_now(ed);
  g_assert_true(conform_constraint_editor_apply(ed));
  WAIT_UNTIL(conform_run_get_config(run)->lr == 0.00125 && g_strcmp0(conform_run_get_config(run)->strategy, "projection") == 0 &&
                 conform_run_get_config(run)->constraint.A[1] == -0.5,
             "changes applied");
  g_autofree char *out = g_build_filename(tmpdir, "exported.lesson", NULL);
  g_autoptr(GError) error = NULL;
  g_assert_true(conform_window_export_lesson(w, out, "Exported", &error));
  g_assert_no_error(error);
  g_autofree char *text = NULL;
  g_assert_true(g_file_get_contents(out, &text, NULL, NULL));
  g_test_message("%s", text);
  ConformConfig want;
  conform_config_copy(&want, conform_run_get_config(run));
  gboolean shown[64];
  const char *const *views = conform_lesson_view_names();
  int nv = 0;
  for (; views[nv]; nv++)
    shown[nv] = conform_window_control_visible(w, views[nv]);
  gboolean lr_shown = conform_window_control_visible(w, "train.lr"), batch_shown =
                                                                        conform_window_control_visible(w, "train.batch");
  close_window(w);

  ConformWindow *w2 = open_window("checkerboard");
  ConformRun *r2 = open_lesson(w2, out);
  const char *diff = NULL;
  if (!conform_config_equal(conform_run_get_config(r2), &want, &diff))
    g_error("the reopened lesson differs in %s", diff);
  for (int i = 0; i < nv; i++)
    g_assert_true(conform_window_control_visible(w2, views[i]) == shown[i]);
  g_assert_true(conform_window_control_visible(w2, "train.lr") == lr_shown);
  g_assert_true(conform_window_control_visible(w2, "train.batch") == batch_shown);
  g_assert_false(conform_window_control_visible(w2, "strategy"));
  g_assert_cmpstr(conform_lesson_panel_get_lesson(panel_of(w2))->title, ==, "Exported");
  conform_config_clear(&want);
  close_window(w2);
  g_unlink(out);
  g_unlink(path);
}

static void
test_bad_lesson(void)
{
  g_autofree char *path = write_lesson("bad.lesson", "[lesson]\ntitle=Bad\npreset=moons\n[step 1]\ntext=x\naction=train\n");
  ConformWindow *w = open_window("gaussians");
  ConformRun *before = conform_window_get_run(w);
  g_autoptr(GError) error = NULL;
  g_assert_false(conform_window_open_lesson(w, path, &error));
  g_assert_nonnull(strstr(error->message, "bad.lesson:6: [step 1] action"));
  g_assert_true(conform_window_get_run(w) == before);
  g_assert_null(conform_lesson_panel_get_lesson(panel_of(w)));
  g_assert_false(gtk_widget_get_visible(conform_window_get_lesson_panel(w)));
  close_window(w);
  g_unlink(path);
}

int
main(int argc, char **argv)
{
  gtk_test_init(&argc, &argv, NULL);
  g_setenv("CONFORM_NO_CLOSE_PROMPT", "1", TRUE);
  tmpdir = g_dir_make_tmp("conform-lesson-ui-XXXXXX", NULL);
  app = conform_application_new();
  g_assert_true(g_application_register(G_APPLICATION(app), NULL, NULL));
  g_test_add_func("/lesson/bundled", test_bundled);
  g_test_add_func("/lesson/flow", test_flow);
  g_test_add_func("/lesson/export-reopen", test_export_reopen);
  g_test_add_func("/lesson/bad", test_bad_lesson);
  int rc = g_test_run();
  g_object_unref(app);
  g_rmdir(tmpdir);
  g_free(tmpdir);
  return rc;
}
