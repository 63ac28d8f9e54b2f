/* The run history in the real window: every Reset a new entry whose
 * metrics follow the run; differences-only comparison; the reproduction
 * command of a run rebuilds its configuration through `conform train
 * --dry-run` (CONFORM_BIN, run by a shell); save and reopen with the
 * experiment; corrupt history files; re-run. */
#include <glib/gstdio.h>
#include <gtk/gtk.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include "conform-history-panel.h"
#include "conform-manifest.h"
#include "conform-window-teach.h"

#include "window-fixture.h"

static ConformHistoryPanel *
panel_of(ConformWindow *w)
{
  return CONFORM_HISTORY_PANEL(conform_window_get_history_panel(w));
}

static ConformRun *
reset_and_wait(ConformWindow *w)
{
  ConformRun *before = conform_window_get_run(w);
  gtk_widget_activate_action(GTK_WIDGET(w), "win.reset", NULL);
  WAIT_UNTIL(conform_window_get_run(w) != before &&
                 conform_run_get_state(conform_window_get_run(w)) == CONFORM_RUN_PAUSED,
             "new run after Reset");
  return conform_window_get_run(w);
}

static void
train_and_sample(ConformRun *run, int steps)
{
  long target = conform_run_get_step(run) + steps;
  conform_run_step(run, steps);
  WAIT_UNTIL(conform_run_get_step(run) >= target && conform_run_get_state(run) == CONFORM_RUN_PAUSED, "steps");
  conform_run_request_samples(run, 400, 0);
  WAIT_UNTIL(conform_run_get_samples(run) && conform_run_get_samples(run)->step >= target &&
                 isfinite(conform_run_get_samples(run)->summary.energy_distance),
             "samples");
  drain();
}

/* The command as pasted into a shell, with --dry-run: the configuration it gives. */
static void
command_config(const char *command, ConformConfig *out)
{
  const char *bin = g_getenv("CONFORM_BIN");
  g_assert_nonnull(bin);
  g_assert_true(g_str_has_prefix(command, "conform train "));
  g_autofree char *dry = g_strdup_printf("conform train --dry-run %s", command + strlen("conform train "));
  g_autofree char *bindir = g_path_get_dirname(bin);
  g_autofree char *path = g_strdup_printf("%s:%s", bindir, g_getenv("PATH"));
  char **env = g_environ_setenv(g_get_environ(), "PATH", path, TRUE);
  const char *argv[] = {"/bin/sh", "-c", dry, NULL};
  g_autofree char *sout = NULL, *serr = NULL;
  int status = 0;
  g_autoptr(GError) error = NULL;
  g_assert_true(g_spawn_sync(NULL, (char **)argv, env, G_SPAWN_DEFAULT, NULL, NULL, &sout, &serr, &status, &error));
  g_strfreev(env);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    g_error("%s failed: %s", dry, serr);
  g_autoptr(GKeyFile) kf = g_key_file_new();
  g_assert_true(g_key_file_load_from_data(kf, sout, (gsize)-1, G_KEY_FILE_NONE, &error));
  g_assert_true(conform_config_from_keyfile(out, kf, "dry run", &error));
}

static void
read_text_cb(GObject *src, GAsyncResult *res, gpointer data)
{
  *(char **)data = gdk_clipboard_read_text_finish(GDK_CLIPBOARD(src), res, NULL);
  if (!*(char **)data)
    *(char **)data = g_strdup("");
}

static char *
clipboard_text(GtkWidget *w)
{
  char *text = NULL;
  gdk_clipboard_read_text_async(gtk_widget_get_clipboard(w), NULL, read_text_cb, &text);
  WAIT_UNTIL(text != NULL, "clipboard");
  return text;
}

static void
close_dialogs(void)
{
  GList *tops = gtk_window_list_toplevels();
  for (GList *l = tops; l; l = l->next)
    if (GTK_IS_MESSAGE_DIALOG(l->data))
      gtk_window_destroy(GTK_WINDOW(l->data));
  g_list_free(tops);
}

static void
test_history(void)
{
  ConformWindow *w = open_window("gaussians-line");
  ConformHistoryPanel *hp = panel_of(w);
  ConformHistory *h = conform_history_panel_get_history(hp);
  g_assert_cmpuint(conform_history_get_n(h), ==, 1);
  int first = conform_history_panel_get_live_id(hp);
  ConformRun *run = conform_window_get_run(w);

  /* run 1: 200 steps, a live change of the learning rate, samples */
  train_and_sample(run, 200);
  gtk_spin_button_set_value(GTK_SPIN_BUTTON(conform_window_get_view(w, "train.lr")), 0.0007);
  WAIT_UNTIL(conform_run_get_config(run)->lr == 0.0007, "live lr");
  train_and_sample(run, 50);
  ConformHistoryEntry *e1 = conform_history_find(h, first);
  WAIT_UNTIL(e1->config.lr == 0.0007, "the entry follows the run's settings");
  g_assert_cmpint(e1->metrics.step, ==, 250);
  g_assert_cmpint(e1->metrics.sample_step, ==, 250);
  g_assert_true(isfinite(e1->metrics.violation_max));
  g_assert_true(isfinite(e1->metrics.energy_distance));
  g_assert_nonnull(e1->thumb_png);
  /* logged by the step it was made at (200), at most one flush of records later */
  long by = -1;
  g_assert_cmpint(sscanf(e1->changes, "by step %ld: ", &by), ==, 1);
  g_assert_cmpint(by, >=, 200);
  g_assert_cmpint(by, <=, 250);
  g_assert_nonnull(strstr(e1->changes, ": train.lr 0.002 → 0.0007\n"));

  /* run 2: another seed and width, by Reset */
  gtk_spin_button_set_value(GTK_SPIN_BUTTON(conform_window_get_view(w, "experiment.seed")), 5);
  gtk_spin_button_set_value(GTK_SPIN_BUTTON(conform_window_get_view(w, "model.width")), 64);
  run = reset_and_wait(w);
  g_assert_cmpuint(conform_history_get_n(h), ==, 2);
  int second = conform_history_panel_get_live_id(hp);
  g_assert_cmpint(second, !=, first);
  train_and_sample(run, 100);

  /* side by side: differences only, then all */
  gtk_notebook_set_current_page(GTK_NOTEBOOK(conform_window_get_view(w, "notebook")),
                                gtk_notebook_page_num(GTK_NOTEBOOK(conform_window_get_view(w, "notebook")),
                                                      GTK_WIDGET(hp)));
  int both[] = {first, second};
  conform_history_panel_select(hp, both, 2);
  g_auto(GStrv) keys = conform_history_panel_get_compared_keys(hp);
  g_assert_cmpuint(g_strv_length(keys), ==, 2);
  g_assert_cmpstr(keys[0], ==, "experiment.seed");
  g_assert_cmpstr(keys[1], ==, "model.width");
  g_assert_null(conform_history_panel_get_command(hp)); /* one run only */
  screenshot(GTK_WIDGET(w), "history-compare.png");
  conform_history_panel_set_show_all(hp, TRUE);
  g_auto(GStrv) all = conform_history_panel_get_compared_keys(hp);
  guint nk;
  conform_config_keys(&nk);
  g_assert_cmpuint(g_strv_length(all), ==, nk + 1);
  conform_history_panel_set_show_all(hp, FALSE);

  /* the reproduction command of run 2 rebuilds its configuration exactly */
  conform_history_panel_select(hp, &second, 1);
  g_autofree char *cmd = conform_history_panel_get_command(hp);
  g_assert_nonnull(cmd);
  g_test_message("%s", cmd);
  ConformConfig back;
  conform_config_init(&back);
  command_config(cmd, &back);
  const char *diff = NULL;
  if (!conform_config_equal(&back, conform_run_get_config(run), &diff))
    g_error("the reproduction command differs in %s", diff);
  conform_config_clear(&back);
  conform_history_panel_copy_command(hp);
  g_autofree char *clip = clipboard_text(GTK_WIDGET(hp));
  g_assert_cmpstr(clip, ==, cmd);
  conform_history_panel_copy_manifest(hp);
  g_autofree char *manifest = clipboard_text(GTK_WIDGET(hp));
  g_assert_true(g_str_has_prefix(manifest, "[experiment]"));
  g_assert_nonnull(strstr(manifest, "seed=5"));

  /* saved with the experiment, restored when it is opened */
  g_autofree char *dir = g_dir_make_tmp("conform-history-ui-XXXXXX", NULL);
  g_autoptr(GError) error = NULL;
  g_assert_true(conform_window_save_to(w, dir, &error));
  g_assert_no_error(error);
  const char *files[] = {"history/index.ini", "history/001/experiment.ini", "history/001/metrics.tsv",
                         "history/001/thumb.png", "history/002/experiment.ini", "history/002/thumb.png"};
  for (guint i = 0; i < G_N_ELEMENTS(files); i++) {
    g_autofree char *p = g_build_filename(dir, files[i], NULL);
    if (!g_file_test(p, G_FILE_TEST_IS_REGULAR))
      g_error("%s was not written", files[i]);
  }
  ConformConfig c1, c2;
  conform_config_copy(&c1, &conform_history_find(h, first)->config);
  conform_config_copy(&c2, &conform_history_find(h, second)->config);
  close_window(w);

  ConformWindow *w2 = open_window("moons");
  conform_window_open_dir(w2, dir);
  WAIT_UNTIL(g_strcmp0(conform_run_get_config(conform_window_get_run(w2))->preset, "gaussians-line") == 0,
             "reopened experiment");
  ConformHistoryPanel *hp2 = panel_of(w2);
  ConformHistory *h2 = conform_history_panel_get_history(hp2);
  g_assert_cmpuint(conform_history_get_n(h2), ==, 2); /* the untrained moons run is not kept */
  g_assert_cmpint(conform_history_panel_get_live_id(hp2), ==, second);
  g_assert_true(conform_config_equal(&conform_history_find(h2, first)->config, &c1, NULL));
  g_assert_true(conform_config_equal(&conform_history_find(h2, second)->config, &c2, NULL));
  g_assert_cmpint(conform_history_find(h2, first)->metrics.step, ==, 250);
  g_assert_nonnull(conform_history_find(h2, first)->thumb_png);
  /* re-run the first: a fresh run with its settings, a third entry */
  conform_history_panel_select(hp2, &first, 1);
  ConformRun *before = conform_window_get_run(w2);
  conform_history_panel_rerun(hp2);
  WAIT_UNTIL(conform_window_get_run(w2) != before &&
                 conform_run_get_state(conform_window_get_run(w2)) == CONFORM_RUN_PAUSED,
             "re-run");
  g_assert_true(conform_config_equal(conform_run_get_config(conform_window_get_run(w2)), &c1, NULL));
  g_assert_cmpint(conform_run_get_step(conform_window_get_run(w2)), ==, 0);
  g_assert_cmpuint(conform_history_get_n(h2), ==, 3);
  close_window(w2);

  /* a broken entry: skipped, said so, the rest and the experiment open */
  g_autofree char *ini1 = g_build_filename(dir, "history", "001", "experiment.ini", NULL);
  g_assert_true(g_file_set_contents(ini1, "[model]\nwidth=wide\n", -1, NULL));
  ConformWindow *w3 = open_window("moons");
  conform_window_open_dir(w3, dir);
  WAIT_UNTIL(conform_window_get_last_error(w3) != NULL, "history warning");
  g_assert_nonnull(strstr(conform_window_get_last_error(w3), "history/001/experiment.ini"));
  g_assert_cmpuint(conform_history_get_n(conform_history_panel_get_history(panel_of(w3))), ==, 1);
  g_assert_cmpint(conform_run_get_step(conform_window_get_run(w3)), ==, 100);
  close_window(w3);

  /* a corrupt index: the experiment opens without its earlier runs */
  g_autofree char *index = g_build_filename(dir, "history", "index.ini", NULL);
  g_assert_true(g_file_set_contents(index, "[history\nentries=1;2\n", -1, NULL));
  ConformWindow *w4 = open_window("moons");
  conform_window_open_dir(w4, dir);
  WAIT_UNTIL(conform_window_get_last_error(w4) != NULL, "history error");
  g_assert_nonnull(strstr(conform_window_get_last_error(w4), "history/index.ini"));
  g_assert_nonnull(strstr(conform_window_get_last_error(w4), "opened without its earlier runs"));
  ConformRun *r4 = conform_window_get_run(w4);
  g_assert_cmpstr(conform_run_get_config(r4)->preset, ==, "gaussians-line");
  g_assert_cmpint(conform_run_get_step(r4), ==, 100);
  g_assert_cmpuint(conform_history_get_n(conform_history_panel_get_history(panel_of(w4))), ==, 1);
  close_dialogs();
  close_window(w4);
  conform_config_clear(&c1);
  conform_config_clear(&c2);
  g_autofree char *rm = g_strdup_printf("rm -rf '%s'", dir);
  g_assert_cmpint(system(rm), ==, 0);
}

int
main(int argc, char **argv)
{
  gtk_test_init(&argc, &argv, NULL);
  g_setenv("CONFORM_NO_CLOSE_PROMPT", "1", TRUE);
  app = conform_application_new();
  g_assert_true(g_application_register(G_APPLICATION(app), NULL, NULL));
  g_test_add_func("/history/window", test_history);
  int rc = g_test_run();
  g_object_unref(app);
  return rc;
}
