/* Crash safety of experiment directories: a process killed (SIGKILL) at
 * random points while it trains and saves in a loop never leaves a
 * directory that fails to open, and never loses the previous save; an
 * interrupted save (new ini, old weights) opens the save before it with a
 * warning; an unwritable directory gives an error and leaves no partial
 * file. */
#include <glib.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conform-engine.h"
#include "engine-fixture.h"

static void
rm_rf(const char *dir)
{
  g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", dir);
  g_assert_cmpint(system(cmd), ==, 0);
}

/* The child: train a few steps, save, forever (until killed). */
G_GNUC_NORETURN static void
save_forever(ConformEngine *e, const char *dir)
{
  for (;;) {
    if (!conform_engine_train(e, 3, NULL, NULL, NULL, NULL) || !conform_engine_save(e, dir, NULL, 0, NULL, NULL))
      _exit(3);
  }
}

static void
test_kill_while_saving(void)
{
  g_autofree char *dir = g_dir_make_tmp("conform-crash-XXXXXX", NULL);
  const char *sets[] = {"model.width=32", "data.n_train=2000", "data.n_ref=200", NULL};
  g_autoptr(ConformEngine) e = engine_for("gaussians", 100000, sets);
  g_autoptr(GError) err = NULL;
  g_assert_true(conform_engine_save(e, dir, NULL, 0, NULL, &err)); /* a first complete save */
  g_assert_no_error(err);
  GRand *r = g_rand_new_with_seed(5);
  const int rounds = g_test_slow() ? 300 : 60;
  long last_step = 0;
  int recovered = 0;
  ConformEngine *cur = g_steal_pointer(&e);
  for (int k = 0; k < rounds; k++) {
    pid_t pid = fork(); /* the child goes on from what is on disk now */
    g_assert_cmpint(pid, >=, 0);
    if (pid == 0)
      save_forever(cur, dir);
    g_usleep(g_rand_int_range(r, 1000, 300000));
    g_assert_cmpint(kill(pid, SIGKILL), ==, 0);
    int status;
    g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
    g_assert_true(WIFSIGNALED(status)); /* it never failed on its own */
    conform_engine_free(cur);
    cur = conform_engine_load(dir, &err);
    if (!cur)
      g_error("round %d: the directory does not open after SIGKILL: %s", k, err->message);
    /* what was on disk before this round is never lost: steps only grow */
    g_assert_cmpint(conform_engine_step(cur), >=, last_step);
    last_step = conform_engine_step(cur);
    if (conform_engine_warnings(cur) && strstr(conform_engine_warnings(cur), "interrupted"))
      recovered++;
  }
  conform_engine_free(cur);
  g_test_message("%d SIGKILLs while saving: every directory opened; %d times an interrupted save fell back to the "
                 "previous one; last step on disk %ld",
                 rounds, recovered, last_step);
  g_rand_free(r);
  rm_rf(dir);
}

/* The state a kill between the files leaves, made on purpose: the ini of a
 * newer save beside the older weights. */
static void
test_interrupted_save(void)
{
  g_autofree char *dir = g_dir_make_tmp("conform-crash-XXXXXX", NULL);
  g_autoptr(ConformEngine) e = engine_for("gaussians", 1000, (const char *const[]){"model.width=32", NULL});
  g_autoptr(GError) err = NULL;
  g_assert_true(conform_engine_train(e, 20, NULL, NULL, NULL, &err));
  g_assert_true(conform_engine_save(e, dir, NULL, 0, NULL, &err));
  g_autofree char *ckpt = g_build_filename(dir, "weights.ckpt", NULL);
  g_autofree char *old = g_build_filename(dir, "weights.ckpt.old", NULL);
  g_assert_cmpint(link(ckpt, old), ==, 0);
  g_assert_true(conform_engine_train(e, 30, NULL, NULL, NULL, &err));
  g_assert_true(conform_engine_save(e, dir, NULL, 0, NULL, &err));
  g_assert_cmpint(g_rename(old, ckpt), ==, 0); /* the weights of step 20 */
  g_autoptr(ConformEngine) l = conform_engine_load(dir, &err);
  g_assert_no_error(err);
  g_assert_cmpint(conform_engine_step(l), ==, 20);
  g_assert_nonnull(strstr(conform_engine_warnings(l), "interrupted"));
  const GArray *rec = conform_engine_records(l);
  g_assert_cmpint(g_array_index(rec, ConformTrainRecord, rec->len - 1).step, ==, 20);
  /* no matching previous save: a clear error, nothing guessed */
  g_autofree char *prev = g_build_filename(dir, "experiment.ini.prev", NULL);
  g_assert_cmpint(g_unlink(prev), ==, 0);
  g_autoptr(ConformEngine) bad = conform_engine_load(dir, &err);
  g_assert_null(bad);
  g_assert_nonnull(strstr(err->message, "different saves"));
  rm_rf(dir);
}

static void
test_unwritable(void)
{
  /* root writes anywhere, even into read-only directories: a path under a
   * regular file cannot be created by anyone */
  g_autofree char *dir = g_dir_make_tmp("conform-crash-XXXXXX", NULL);
  g_autofree char *file = g_build_filename(dir, "plain-file", NULL);
  g_assert_true(g_file_set_contents(file, "x", 1, NULL));
  g_autofree char *target = g_build_filename(file, "experiment", NULL); /* a directory inside a file */
  g_autoptr(ConformEngine) e = engine_for("gaussians", 10, (const char *const[]){"model.width=32", NULL});
  g_autoptr(GError) err = NULL;
  g_assert_false(conform_engine_save(e, target, NULL, 0, NULL, &err));
  g_assert_error(err, CONFORM_ERROR, CONFORM_ERROR_IO);
  g_test_message("%s", err->message);
  g_assert_nonnull(strstr(err->message, target));
  g_clear_error(&err);
  /* a read-only directory (not for root, who may write anyway) */
  if (geteuid() != 0) {
    g_autofree char *ro = g_build_filename(dir, "ro", NULL);
    g_assert_cmpint(g_mkdir(ro, 0555), ==, 0);
    g_assert_false(conform_engine_save(e, ro, NULL, 0, NULL, &err));
    g_assert_error(err, CONFORM_ERROR, CONFORM_ERROR_IO);
    g_autoptr(GDir) d = g_dir_open(ro, 0, NULL);
    g_assert_null(g_dir_read_name(d)); /* no partial file */
    g_chmod(ro, 0755);
  }
  rm_rf(dir);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/crash/kill-while-saving", test_kill_while_saving);
  g_test_add_func("/crash/interrupted-save", test_interrupted_save);
  g_test_add_func("/crash/unwritable", test_unwritable);
  return g_test_run();
}
