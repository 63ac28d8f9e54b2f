/* The worker-thread run: commands in, progress out, sampling beside
 * training, cancellation, saving; all through a real main loop. */
#include <glib.h>
#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

#include "conform-run.h"

typedef struct {
  GMainLoop *loop;
  gboolean ready, finished, finish_ok;
  int samples, progress;
  GPtrArray *errors, *infos;
  GError *finish_error;
} Ctx;

static gboolean
timeout_cb(gpointer data)
{
  g_error("timed out waiting");
  return G_SOURCE_REMOVE;
}

/* Iterates the main loop until cond(ctx, run) holds (or 60 s pass). */
static void
wait_for(ConformRun *run, Ctx *ctx, gboolean (*cond)(ConformRun *, Ctx *))
{
  guint t = g_timeout_add_seconds(60, timeout_cb, NULL);
  while (!cond(run, ctx))
    g_main_context_iteration(NULL, TRUE);
  g_source_remove(t);
}

static void ready_cb(ConformRun *r, Ctx *c) { c->ready = TRUE; }
static void samples_cb(ConformRun *r, gpointer set, Ctx *c) { c->samples++; }
static void progress_cb(ConformRun *r, guint first, Ctx *c) { c->progress++; }
static void
message_cb(ConformRun *r, const char *text, gboolean is_error, Ctx *c)
{
  g_ptr_array_add(is_error ? c->errors : c->infos, g_strdup(text));
}

static void
finished_cb(GObject *src, GAsyncResult *res, gpointer data)
{
  Ctx *c = data;
  c->finish_ok = conform_run_start_finish(CONFORM_RUN(src), res, &c->finish_error);
  c->finished = TRUE;
}

static gboolean is_ready(ConformRun *r, Ctx *c) { return c->ready; }
static gboolean is_finished(ConformRun *r, Ctx *c) { return c->finished; }
static gboolean past_100(ConformRun *r, Ctx *c) { return conform_run_get_step(r) >= 100; }
static gboolean is_paused(ConformRun *r, Ctx *c) { return conform_run_get_state(r) == CONFORM_RUN_PAUSED; }
static gboolean has_samples(ConformRun *r, Ctx *c) { return c->samples > 0; }
static gboolean has_error(ConformRun *r, Ctx *c) { return c->errors->len > 0; }

static ConformRun *
start(const char *preset, int steps, Ctx *ctx)
{
  memset(ctx, 0, sizeof *ctx);
  ctx->errors = g_ptr_array_new_with_free_func(g_free);
  ctx->infos = g_ptr_array_new_with_free_func(g_free);
  ConformConfig cfg;
  conform_config_init(&cfg);
  g_assert_true(conform_config_apply_preset(&cfg, preset, NULL));
  g_autofree char *s = g_strdup_printf("%d", steps);
  g_assert_true(conform_config_set(&cfg, "train.steps", s, NULL));
  g_assert_true(conform_config_set(&cfg, "sample.n", "300", NULL));
  g_assert_true(conform_config_set(&cfg, "sample.sampler", "ddim", NULL));
  g_assert_true(conform_config_set(&cfg, "sample.steps", "20", NULL));
  ConformRun *run = conform_run_new(&cfg, NULL);
  conform_config_clear(&cfg);
  g_signal_connect(run, "ready", G_CALLBACK(ready_cb), ctx);
  g_signal_connect(run, "samples", G_CALLBACK(samples_cb), ctx);
  g_signal_connect(run, "progress", G_CALLBACK(progress_cb), ctx);
  g_signal_connect(run, "message", G_CALLBACK(message_cb), ctx);
  conform_run_start_async(run, NULL, finished_cb, ctx);
  wait_for(run, ctx, is_ready);
  return run;
}

static void
finish(ConformRun *run, Ctx *ctx)
{
  conform_run_stop(run);
  wait_for(run, ctx, is_finished);
  g_assert_true(ctx->finish_ok);
  g_assert_cmpint(conform_run_get_state(run), ==, CONFORM_RUN_STOPPED);
  g_object_unref(run);
  g_ptr_array_unref(ctx->errors);
  g_ptr_array_unref(ctx->infos);
}

static void
test_train_pause_step(void)
{
  Ctx ctx;
  ConformRun *run = start("simplex-3d", 100000, &ctx);
  g_assert_cmpint(conform_run_get_dim(run), ==, 3);
  int n;
  g_assert_nonnull(conform_run_get_train_data(run, &n));
  g_assert_cmpint(n, >, 1000);
  g_assert_nonnull(strstr(conform_run_get_constraint_summary(run), "rank 1"));
  conform_run_train(run);
  wait_for(run, &ctx, past_100);
  g_assert_cmpint(conform_run_get_state(run), ==, CONFORM_RUN_TRAINING);
  conform_run_pause(run);
  wait_for(run, &ctx, is_paused);
  /* Drain whatever the worker flushed around the pause. */
  while (g_main_context_iteration(NULL, FALSE))
    ;
  long at = conform_run_get_step(run);
  conform_run_step(run, 7);
  guint t0 = g_get_monotonic_time() / 1000;
  while (conform_run_get_step(run) < at + 7 && g_get_monotonic_time() / 1000 - t0 < 20000)
    g_main_context_iteration(NULL, TRUE);
  g_usleep(200000); /* it must not run past the requested steps */
  while (g_main_context_iteration(NULL, FALSE))
    ;
  g_assert_cmpint(conform_run_get_step(run), ==, at + 7);
  const GArray *rec = conform_run_get_records(run);
  g_assert_cmpuint(rec->len, >, 5);
  g_assert_cmpint(ctx.progress, >, 0);
  g_assert_cmpfloat(conform_run_get_steps_per_second(run), >, 0);
  finish(run, &ctx);
}

static void
test_samples_beside_training(void)
{
  Ctx ctx;
  ConformRun *run = start("simplex-3d", 100000, &ctx);
  conform_run_set_preview_interval(run, 0.2);
  conform_run_train(run);
  wait_for(run, &ctx, has_samples);
  ConformSampleSet *s = conform_run_get_samples(run);
  g_assert_nonnull(s);
  g_assert_cmpint(s->n, ==, 300);
  g_assert_cmpint(s->dim, ==, 3);
  g_assert_nonnull(s->viol);
  g_assert_cmpint(s->traj_n, >, 0);
  /* Training kept going while sampling. */
  g_assert_cmpint(conform_run_get_state(run), ==, CONFORM_RUN_TRAINING);
  /* Strategy switch applies to the next samples. */
  conform_run_set(run, "experiment.strategy", "projection");
  int before = ctx.samples;
  conform_run_request_samples(run, 200, 0);
  while (ctx.samples == before || g_strcmp0(conform_run_get_samples(run)->strategy, "projection") != 0)
    g_main_context_iteration(NULL, TRUE);
  s = conform_run_get_samples(run);
  g_assert_cmpfloat(s->summary.viol.frac_satisfied, ==, 1.0);
  g_assert_cmpstr(conform_run_get_config(run)->strategy, ==, "projection");
  finish(run, &ctx);
}

static void
test_bad_commands_keep_state(void)
{
  Ctx ctx;
  ConformRun *run = start("simplex-3d", 1000, &ctx);
  conform_run_set(run, "model.width", "64");
  wait_for(run, &ctx, has_error);
  g_assert_nonnull(strstr(g_ptr_array_index(ctx.errors, 0), "after Reset"));
  /* Inconsistent constraint: rejected, previous one stays. */
  CfConstraint bad;
  cf_constraint_init(&bad);
  double A[6] = {1, 1, 1, 2, 2, 2}, b[2] = {1, 3};
  g_assert_cmpint(cf_constraint_set(&bad, 2, 3, A, b, NULL), ==, CF_OK);
  conform_run_set_constraint(run, &bad);
  cf_constraint_clear(&bad);
  while (ctx.errors->len < 2)
    g_main_context_iteration(NULL, TRUE);
  g_assert_nonnull(strstr(g_ptr_array_index(ctx.errors, 1), "residual"));
  g_assert_cmpint(conform_run_get_constraint(run)->m, ==, 1);
  /* A good one replaces it. */
  CfConstraint good;
  cf_constraint_init(&good);
  double A2[6] = {1, 1, 1, 1, -1, 0}, b2[2] = {1, 0};
  g_assert_cmpint(cf_constraint_set(&good, 2, 3, A2, b2, NULL), ==, CF_OK);
  conform_run_set_constraint(run, &good);
  cf_constraint_clear(&good);
  while (conform_run_get_constraint(run)->m != 2)
    g_main_context_iteration(NULL, TRUE);
  g_assert_nonnull(strstr(conform_run_get_constraint_summary(run), "rank 2"));
  finish(run, &ctx);
}

/* Applying a constraint re-projects the samples on screen at once (same
 * raw samples, same step), before fresh samples arrive. */
static void
test_reproject_at_once(void)
{
  Ctx ctx;
  ConformRun *run = start("simplex-3d", 100000, &ctx);
  conform_run_set(run, "experiment.strategy", "projection");
  conform_run_step(run, 30);
  while (conform_run_get_step(run) < 30)
    g_main_context_iteration(NULL, TRUE);
  conform_run_request_samples(run, 150, 0);
  while (!conform_run_get_samples(run) || g_strcmp0(conform_run_get_samples(run)->strategy, "projection") != 0)
    g_main_context_iteration(NULL, TRUE);
  ConformSampleSet *old = conform_sample_set_ref(conform_run_get_samples(run));
  int before = ctx.samples;
  CfConstraint c;
  cf_constraint_init(&c);
  double A[6] = {1, 1, 1, 1, -1, 0}, b[2] = {1, 0};
  g_assert_cmpint(cf_constraint_set(&c, 2, 3, A, b, NULL), ==, CF_OK);
  conform_run_set_constraint(run, &c);
  cf_constraint_clear(&c);
  while (ctx.samples == before)
    g_main_context_iteration(NULL, TRUE);
  ConformSampleSet *now = conform_run_get_samples(run);
  g_assert_cmpint(now->n, ==, old->n);
  g_assert_cmpint(now->step, ==, old->step);
  g_assert_cmpmem(now->raw, sizeof(float) * 450, old->raw, sizeof(float) * 450);
  g_assert_cmpfloat(now->summary.viol.frac_satisfied, ==, 1.0);
  for (int i = 0; i < now->n; i++)
    g_assert_cmpfloat(fabs(now->x[3 * i] - now->x[3 * i + 1]), <, 1e-5 * (1 + fabs(now->x[3 * i])));
  conform_sample_set_unref(old);
  finish(run, &ctx);
}

static void
saved_cb(GObject *src, GAsyncResult *res, gpointer data)
{
  GError **err = data;
  if (!conform_run_save_finish(CONFORM_RUN(src), res, err) && !*err)
    g_error("save failed without an error");
  if (!*err)
    *err = g_error_new_literal(G_IO_ERROR, 0, "ok");
}

typedef struct {
  int active, inactive;
  double max_fraction;
  gboolean last_active;
} SamplingSeen;

static void
sampling_cb(ConformRun *r, SamplingSeen *seen)
{
  int n;
  double f, sec;
  gboolean active = conform_run_get_sampling(r, &n, &f, &sec);
  g_assert_cmpint(n, ==, 300);
  g_assert_cmpfloat(f, >=, 0.0);
  g_assert_cmpfloat(f, <=, 1.0);
  g_assert_cmpfloat(sec, >=, 0.0);
  if (active) {
    seen->active++;
    seen->max_fraction = MAX(seen->max_fraction, f);
  } else {
    seen->inactive++;
  }
  seen->last_active = active;
}

/* An explicit sample set reports its progress (the window's status bar),
 * ending inactive; previews while training report nothing. */
static void
test_sampling_progress(void)
{
  Ctx ctx;
  ConformRun *run = start("moons", 100000, &ctx);
  SamplingSeen seen = {0};
  g_assert_false(conform_run_get_sampling(run, NULL, NULL, NULL));
  g_signal_connect(run, "sampling-progress", G_CALLBACK(sampling_cb), &seen);
  conform_run_request_samples(run, 300, 0);
  wait_for(run, &ctx, has_samples);
  guint t = g_timeout_add_seconds(60, timeout_cb, NULL);
  while (seen.inactive == 0) /* the end may come in a later flush than the set */
    g_main_context_iteration(NULL, TRUE);
  g_source_remove(t);
  g_assert_cmpint(seen.active, >=, 1);
  g_assert_cmpint(seen.inactive, ==, 1);
  g_assert_false(seen.last_active);
  g_assert_false(conform_run_get_sampling(run, NULL, NULL, NULL));
  g_assert_cmpfloat(seen.max_fraction, <=, 1.0);
  finish(run, &ctx);
}

/* The [experiment] command of a saved experiment, or NULL. */
static char *
saved_command(const char *dir)
{
  g_autofree char *ini = g_build_filename(dir, "experiment.ini", NULL);
  g_autoptr(GKeyFile) kf = g_key_file_new();
  g_assert_true(g_key_file_load_from_file(kf, ini, G_KEY_FILE_NONE, NULL));
  return g_key_file_get_string(kf, "experiment", "command", NULL);
}

static void
save_and_wait(ConformRun *run, const char *dir)
{
  GError *err = NULL;
  conform_run_save_async(run, dir, NULL, saved_cb, &err);
  while (!err)
    g_main_context_iteration(NULL, TRUE);
  g_assert_cmpstr(err->message, ==, "ok");
  g_clear_error(&err);
}

/* An experiment made by `conform train` keeps its command when the window
 * only opens and saves it, and drops it once the window trains it. */
static void
test_command_after_training(void)
{
  g_autofree char *dir = g_dir_make_tmp("conform-run-XXXXXX", NULL);
  {
    ConformConfig cfg;
    conform_config_init(&cfg);
    g_assert_true(conform_config_apply_preset(&cfg, "moons", NULL));
    g_assert_true(conform_config_set(&cfg, "sample.n", "50", NULL));
    g_free(cfg.command);
    cfg.command = g_strdup("conform train -p moons --steps 0");
    Ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.errors = g_ptr_array_new_with_free_func(g_free);
    ctx.infos = g_ptr_array_new_with_free_func(g_free);
    ConformRun *run = conform_run_new(&cfg, NULL);
    conform_config_clear(&cfg);
    g_signal_connect(run, "ready", G_CALLBACK(ready_cb), &ctx);
    conform_run_start_async(run, NULL, finished_cb, &ctx);
    wait_for(run, &ctx, is_ready);
    save_and_wait(run, dir);
    g_autofree char *kept = saved_command(dir);
    g_assert_cmpstr(kept, ==, "conform train -p moons --steps 0");
    conform_run_step(run, 5);
    while (conform_run_get_step(run) < 5)
      g_main_context_iteration(NULL, TRUE);
    save_and_wait(run, dir);
    g_autofree char *gone = saved_command(dir);
    g_assert_null(gone);
    finish(run, &ctx);
  }
  g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", dir);
  (void)!system(cmd);
}

static void
test_save_and_resume(void)
{
  Ctx ctx;
  ConformRun *run = start("moons", 100000, &ctx);
  conform_run_step(run, 60);
  while (conform_run_get_step(run) < 60)
    g_main_context_iteration(NULL, TRUE);
  conform_run_request_samples(run, 100, 0);
  wait_for(run, &ctx, has_samples);
  g_autofree char *dir = g_dir_make_tmp("conform-run-XXXXXX", NULL);
  save_and_wait(run, dir);
  const char *files[] = {"experiment.ini", "weights.ckpt", "metrics.csv", "samples.csv", "summary.tsv"};
  for (guint i = 0; i < G_N_ELEMENTS(files); i++) {
    g_autofree char *p = g_build_filename(dir, files[i], NULL);
    g_assert_true(g_file_test(p, G_FILE_TEST_EXISTS));
  }
  finish(run, &ctx);
  /* Resume from the directory. */
  Ctx c2;
  memset(&c2, 0, sizeof c2);
  c2.errors = g_ptr_array_new_with_free_func(g_free);
  c2.infos = g_ptr_array_new_with_free_func(g_free);
  ConformRun *r2 = conform_run_new(NULL, dir);
  g_signal_connect(r2, "ready", G_CALLBACK(ready_cb), &c2);
  g_signal_connect(r2, "samples", G_CALLBACK(samples_cb), &c2);
  g_signal_connect(r2, "message", G_CALLBACK(message_cb), &c2);
  conform_run_start_async(r2, NULL, finished_cb, &c2);
  wait_for(r2, &c2, is_ready);
  while (!is_paused(r2, &c2))
    g_main_context_iteration(NULL, TRUE);
  g_assert_cmpint(conform_run_get_step(r2), ==, 60);
  wait_for(r2, &c2, has_samples); /* a loaded run samples at once */
  finish(r2, &c2);
  g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", dir);
  (void)!system(cmd);
}

static void
test_build_failure(void)
{
  Ctx ctx;
  memset(&ctx, 0, sizeof ctx);
  ConformRun *run = conform_run_new(NULL, "/nonexistent/experiment");
  conform_run_start_async(run, NULL, finished_cb, &ctx);
  wait_for(run, &ctx, is_finished);
  g_assert_false(ctx.finish_ok);
  g_assert_nonnull(ctx.finish_error);
  g_assert_nonnull(strstr(ctx.finish_error->message, "/nonexistent/experiment"));
  g_clear_error(&ctx.finish_error);
  g_object_unref(run);
}

static void
test_cancel_cycles(void)
{
  /* Start, train, cancel through a GCancellable, many times. */
  int cycles = g_getenv("CONFORM_SANITIZED") ? 5 : 20;
  for (int i = 0; i < cycles; i++) {
    Ctx ctx;
    ConformRun *run = start("gaussians", 100000, &ctx);
    conform_run_set_preview_interval(run, 0.01);
    conform_run_train(run);
    g_usleep(g_random_int_range(0, 30000));
    conform_run_stop(run);
    wait_for(run, &ctx, is_finished);
    g_object_unref(run);
    g_ptr_array_unref(ctx.errors);
    g_ptr_array_unref(ctx.infos);
  }
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/run/train-pause-step", test_train_pause_step);
  g_test_add_func("/run/command-after-training", test_command_after_training);
  g_test_add_func("/run/sampling-progress", test_sampling_progress);
  g_test_add_func("/run/samples-beside-training", test_samples_beside_training);
  g_test_add_func("/run/bad-commands-keep-state", test_bad_commands_keep_state);
  g_test_add_func("/run/reproject-at-once", test_reproject_at_once);
  g_test_add_func("/run/save-and-resume", test_save_and_resume);
  g_test_add_func("/run/build-failure", test_build_failure);
  g_test_add_func("/run/cancel-cycles", test_cancel_cycles);
  return g_test_run();
}
