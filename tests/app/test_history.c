/* Run history and manifests: the reproduction command rebuilds exactly the
 * configuration it was made from (run through a shell into the real
 * `conform train --dry-run`), differing keys, the history's files (save,
 * load, stale entries, corrupt or missing parts). */
#include <glib.h>
#include <glib/gstdio.h>
#include <math.h>
#include <string.h>
#include <sys/wait.h>

#include "conform-history.h"
#include "conform-manifest.h"

static char *conform_bin;

/* Runs the command exactly as a user pastes it into a shell, with `conform`
 * on PATH, asking `conform train` to print its configuration instead of
 * training; returns that configuration. */
static void
run_command(const char *command, ConformConfig *out)
{
  g_assert_true(g_str_has_prefix(command, "conform train "));
  g_autofree char *dry = g_strdup_printf("conform train --dry-run %s", command + strlen("conform train "));
  g_autofree char *bindir = g_path_get_dirname(conform_bin);
  g_autofree char *path = g_strdup_printf("PATH=%s:%s", bindir, g_getenv("PATH"));
  char **env = g_environ_setenv(g_get_environ(), "PATH", path + 5, TRUE);
  const char *argv[] = {"/bin/sh", "-c", dry, NULL};
  g_autofree char *sout = NULL, *serr = NULL;
  int status = 0;
  g_autoptr(GError) error = NULL;
  g_assert_true(g_spawn_sync(NULL, (char **)argv, env, G_SPAWN_DEFAULT, NULL, NULL, &sout, &serr, &status, &error));
  g_strfreev(env);
  g_assert_no_error(error);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    g_error("command failed (%d): %s\nstderr: %s", status, dry, serr);
  g_autoptr(GKeyFile) kf = g_key_file_new();
  g_assert_true(g_key_file_load_from_data(kf, sout, (gsize)-1, G_KEY_FILE_NONE, &error));
  g_assert_true(conform_config_from_keyfile(out, kf, "dry run", &error));
  g_assert_no_error(error);
}

static void
check_round_trip(const ConformConfig *cfg)
{
  g_autofree char *cmd = conform_reproduction_command(cfg);
  g_test_message("%s", cmd);
  ConformConfig back;
  conform_config_init(&back);
  run_command(cmd, &back);
  const char *diff = NULL;
  if (!conform_config_equal(cfg, &back, &diff)) {
    g_autofree char *a = conform_config_value_text(cfg, diff, 200), *b = conform_config_value_text(&back, diff, 200);
    g_error("the command gives %s = %s, the run had %s", diff, b, a);
  }
  conform_config_clear(&back);
}

static void
preset(ConformConfig *cfg, const char *name)
{
  conform_config_clear(cfg);
  conform_config_init(cfg);
  g_assert_true(conform_config_apply_preset(cfg, name, NULL));
}

static void
set(ConformConfig *cfg, const char *key, const char *value)
{
  g_autoptr(GError) error = NULL;
  g_assert_true(conform_config_set(cfg, key, value, &error));
}

static void
test_reproduction_command(void)
{
  ConformConfig cfg;
  conform_config_init(&cfg);
  /* a preset as it is: no --set at all */
  preset(&cfg, "simplex-3d");
  g_autofree char *plain = conform_reproduction_command(&cfg);
  g_assert_cmpstr(plain, ==, "conform train --preset simplex-3d --strategy none --seed 1 --steps 5000\n");
  check_round_trip(&cfg);

  /* strategy, seed, steps, live and reset settings, values that need quoting */
  preset(&cfg, "gaussians-line");
  set(&cfg, "experiment.strategy", "projection");
  set(&cfg, "experiment.seed", "18446744073709551615");
  set(&cfg, "train.steps", "1234");
  set(&cfg, "train.lr", "0.00071234567890123");
  set(&cfg, "sample.n", "777");
  set(&cfg, "data.source", "/tmp/my data's folder/x.csv");
  set(&cfg, "data.classes", "0-3,5");
  set(&cfg, "model.schedule", "cosine");
  check_round_trip(&cfg);
  g_autofree char *quoted = conform_reproduction_command(&cfg);
  g_assert_nonnull(strstr(quoted, "--set train.lr=0.00071234567890123"));
  g_assert_nonnull(strstr(quoted, "--set data.classes=0-3,5"));
  g_assert_null(strstr(quoted, "--constraint")); /* the preset's own */

  /* a constraint of the user's, with values that need every digit */
  preset(&cfg, "gaussians");
  set(&cfg, "experiment.strategy", "projection");
  double A[4] = {1.0 / 3.0, -2.0 / 7.0, 1e-300, 5};
  double b[2] = {0.1, -1e10 / 3};
  cf_constraint_clear(&cfg.constraint);
  g_assert_cmpint(cf_constraint_set(&cfg.constraint, 2, 2, A, b, NULL), ==, CF_OK);
  g_free(cfg.constraint_source);
  cfg.constraint_source = g_strdup("editor");
  g_autofree char *with_c = conform_reproduction_command(&cfg);
  g_assert_nonnull(strstr(with_c, "--constraint /dev/stdin <<'EOF'\n"));
  check_round_trip(&cfg);

  /* a VAE with its own strategy; dual training with changed dual settings */
  preset(&cfg, "portfolio");
  set(&cfg, "model.type", "vae");
  set(&cfg, "experiment.strategy", "cgauss");
  set(&cfg, "model.latent", "5");
  check_round_trip(&cfg);
  preset(&cfg, "mixture-minority");
  set(&cfg, "experiment.strategy", "dual");
  set(&cfg, "dual.thresholds", "0.01,0.02,0.03");
  set(&cfg, "dual.gamma", "0.25");
  check_round_trip(&cfg);
  conform_config_clear(&cfg);
}

static void
test_keys(void)
{
  ConformConfig a, b, c;
  conform_config_init(&a);
  conform_config_init(&b);
  conform_config_init(&c);
  preset(&a, "simplex-3d");
  preset(&b, "simplex-3d");
  preset(&c, "simplex-3d");
  set(&b, "train.lr", "0.001");
  set(&b, "experiment.seed", "3");
  set(&c, "train.lr", "0.001");
  const ConformConfig *two[] = {&a, &b};
  g_autoptr(GPtrArray) d = conform_config_differing_keys(two, 2, FALSE);
  g_assert_cmpuint(d->len, ==, 2);
  g_assert_cmpstr(d->pdata[0], ==, "experiment.seed");
  g_assert_cmpstr(d->pdata[1], ==, "train.lr");
  const ConformConfig *three[] = {&b, &c, &c};
  g_autoptr(GPtrArray) d3 = conform_config_differing_keys(three, 3, FALSE);
  g_assert_cmpuint(d3->len, ==, 1);
  g_assert_cmpstr(d3->pdata[0], ==, "experiment.seed");
  guint nk;
  conform_config_keys(&nk);
  g_autoptr(GPtrArray) all = conform_config_differing_keys(two, 2, TRUE);
  g_assert_cmpuint(all->len, ==, nk + 1); /* every key and the constraint */
  /* a different constraint is a difference too */
  double A[3] = {1, -1, 0}, bb[1] = {0};
  cf_constraint_clear(&c.constraint);
  cf_constraint_set(&c.constraint, 1, 3, A, bb, NULL);
  const ConformConfig *ac[] = {&a, &c};
  g_autoptr(GPtrArray) dc = conform_config_differing_keys(ac, 2, FALSE);
  g_assert_cmpuint(dc->len, ==, 2);
  g_assert_cmpstr(dc->pdata[1], ==, CONFORM_MANIFEST_CONSTRAINT);
  /* against the preset's defaults */
  g_autoptr(GPtrArray) ch = conform_config_changed_keys(&c);
  g_assert_cmpuint(ch->len, ==, 2);
  g_assert_cmpstr(ch->pdata[0], ==, "train.lr");
  g_assert_cmpstr(ch->pdata[1], ==, CONFORM_MANIFEST_CONSTRAINT);
  g_autofree char *ct = conform_config_value_text(&c, CONFORM_MANIFEST_CONSTRAINT, 0);
  g_assert_cmpstr(ct, ==, "1 -1 0 | 0 (1 × 3)");
  conform_config_clear(&a);
  conform_config_clear(&b);
  conform_config_clear(&c);
}

static GBytes *
fake_png(void)
{
  static const guchar png[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 1, 2, 3, 4};
  return g_bytes_new_static(png, sizeof png);
}

static void
write_file(const char *dir, const char *rel, const char *text)
{
  g_autofree char *p = g_build_filename(dir, rel, NULL);
  g_assert_true(g_file_set_contents(p, text, -1, NULL));
}

static void
test_save_load(void)
{
  g_autofree char *dir = g_dir_make_tmp("conform-history-XXXXXX", NULL);
  g_autoptr(ConformHistory) h = conform_history_new();
  ConformConfig cfg;
  conform_config_init(&cfg);
  preset(&cfg, "moons");
  ConformHistoryEntry *e1 = conform_history_add(h, &cfg);
  e1->metrics.step = 500;
  e1->metrics.loss = 0.25;
  e1->metrics.energy_distance = 1.5e-4;
  e1->metrics.quality_step = 500;
  g_autoptr(GBytes) png = fake_png();
  conform_history_entry_set_thumbnail(e1, png);
  set(&cfg, "train.lr", "0.0005");
  ConformHistoryEntry *e2 = conform_history_add(h, &cfg);
  ConformConfig live;
  conform_config_copy(&live, &cfg);
  set(&live, "train.lr", "0.0001");
  g_assert_true(conform_history_entry_set_config(e2, &live, 250));
  g_assert_nonnull(strstr(e2->changes, "by step 250: train.lr 0.0005 → 0.0001"));
  g_assert_false(conform_history_entry_set_config(e2, &live, 300));
  ConformHistoryEntry *e3 = conform_history_add(h, &cfg);
  g_assert_cmpint(e3->id, ==, 3);
  g_autoptr(GError) error = NULL;
  g_assert_true(conform_history_save(h, dir, 2, &error));
  g_assert_no_error(error);
  /* a removed entry's directory goes at the next save */
  conform_history_remove(h, 3);
  g_assert_true(conform_history_save(h, dir, 2, &error));
  g_autofree char *gone = g_build_filename(dir, "history", "003", NULL);
  g_assert_false(g_file_test(gone, G_FILE_TEST_EXISTS));

  int current = 0;
  g_autofree char *warnings = NULL;
  g_autoptr(ConformHistory) back = conform_history_load(dir, &current, &warnings, &error);
  g_assert_no_error(error);
  g_assert_null(warnings);
  g_assert_cmpint(current, ==, 2);
  g_assert_cmpuint(conform_history_get_n(back), ==, 2);
  ConformHistoryEntry *b1 = conform_history_get(back, 0), *b2 = conform_history_get(back, 1);
  g_assert_cmpint(b1->id, ==, 1);
  g_assert_cmpint(b1->metrics.step, ==, 500);
  g_assert_cmpfloat(b1->metrics.loss, ==, 0.25);
  g_assert_cmpfloat(b1->metrics.energy_distance, ==, 1.5e-4);
  g_assert_true(isnan(b1->metrics.violation_max));
  g_assert_cmpint(b1->metrics.sample_step, ==, -1);
  g_assert_true(g_bytes_equal(b1->thumb_png, png));
  g_assert_null(b2->thumb_png);
  g_assert_cmpstr(b1->created, ==, e1->created);
  g_assert_true(conform_config_equal(&b2->config, &live, NULL));
  g_assert_cmpstr(b2->changes, ==, e2->changes);
  /* new entries continue the numbering */
  g_assert_cmpint(conform_history_add(back, &cfg)->id, ==, 3);

  /* a corrupt entry is skipped with a warning naming its file; a bad
   * thumbnail or metrics file loses only that part */
  write_file(dir, "history/001/experiment.ini", "[train]\nlr=fast\n");
  write_file(dir, "history/002/thumb.png", "not a png");
  write_file(dir, "history/002/metrics.tsv", "metric\tvalue\nstep\tmany\n");
  g_clear_pointer(&warnings, g_free);
  g_autoptr(ConformHistory) partial = conform_history_load(dir, &current, &warnings, &error);
  g_assert_no_error(error);
  g_assert_cmpuint(conform_history_get_n(partial), ==, 1);
  g_test_message("%s", warnings);
  g_assert_nonnull(strstr(warnings, "history/001/experiment.ini"));
  g_assert_nonnull(strstr(warnings, "run #1 skipped"));
  g_assert_nonnull(strstr(warnings, "history/002/thumb.png"));
  g_assert_nonnull(strstr(warnings, "history/002/metrics.tsv"));
  g_assert_null(conform_history_get(partial, 0)->thumb_png);

  /* a corrupt or missing index: an error naming it */
  g_clear_pointer(&warnings, g_free);
  write_file(dir, "history/index.ini", "[history\nversion=1\n");
  g_assert_null(conform_history_load(dir, &current, &warnings, &error));
  g_assert_nonnull(strstr(error->message, "history/index.ini"));
  g_clear_error(&error);
  write_file(dir, "history/index.ini", "[history]\nversion=7\nentries=1\n");
  g_assert_null(conform_history_load(dir, &current, &warnings, &error));
  g_assert_nonnull(strstr(error->message, "version 7"));
  g_clear_error(&error);
  g_autofree char *index = g_build_filename(dir, "history", "index.ini", NULL);
  g_unlink(index);
  g_assert_null(conform_history_load(dir, &current, &warnings, &error));
  g_assert_nonnull(strstr(error->message, "index.ini"));
  g_clear_error(&error);
  /* no history at all (a CLI experiment): empty, no error */
  g_autofree char *rm = g_strdup_printf("rm -rf '%s/history'", dir);
  g_assert_cmpint(system(rm), ==, 0);
  g_autoptr(ConformHistory) none = conform_history_load(dir, &current, &warnings, &error);
  g_assert_no_error(error);
  g_assert_cmpuint(conform_history_get_n(none), ==, 0);
  g_assert_cmpint(current, ==, 0);

  /* a history directory that cannot be written */
  g_autofree char *blocker = g_build_filename(dir, "history", NULL);
  g_assert_true(g_file_set_contents(blocker, "a file", -1, NULL));
  g_assert_false(conform_history_save(h, dir, 2, &error));
  g_assert_nonnull(error);
  g_clear_error(&error);
  g_unlink(blocker);
  conform_config_clear(&cfg);
  conform_config_clear(&live);
  g_autofree char *rmall = g_strdup_printf("rm -rf '%s'", dir);
  g_assert_cmpint(system(rmall), ==, 0);
}

static void
test_metrics_update(void)
{
  ConformHistoryMetrics m;
  conform_history_metrics_init(&m);
  ConformSampleSet s = {0};
  s.n = 10;
  s.step = 100;
  s.summary.has_constraint = TRUE;
  s.summary.viol.max = 0.5;
  s.summary.energy_distance = 0.01;
  s.summary.mmd = NAN;
  s.summary.cond_rmse = NAN;
  conform_history_metrics_update(&m, &s);
  g_assert_cmpfloat(m.energy_distance, ==, 0.01);
  g_assert_cmpint(m.quality_step, ==, 100);
  /* a preview (no quality metrics) keeps the last measured ones */
  s.step = 200;
  s.summary.viol.max = 0.25;
  s.summary.energy_distance = NAN;
  conform_history_metrics_update(&m, &s);
  g_assert_cmpfloat(m.violation_max, ==, 0.25);
  g_assert_cmpint(m.sample_step, ==, 200);
  g_assert_cmpfloat(m.energy_distance, ==, 0.01);
  g_assert_cmpint(m.quality_step, ==, 100);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  conform_bin = g_strdup(g_getenv("CONFORM_BIN"));
  g_assert_nonnull(conform_bin);
  g_test_add_func("/history/reproduction-command", test_reproduction_command);
  g_test_add_func("/history/keys", test_keys);
  g_test_add_func("/history/save-load", test_save_load);
  g_test_add_func("/history/metrics-update", test_metrics_update);
  int rc = g_test_run();
  g_free(conform_bin);
  return rc;
}
