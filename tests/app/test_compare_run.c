/* The compare worker on its own (no window): strategies trained in
 * lock-step, bundles through a real main loop, cancellation and joining. */
#include <glib.h>
#include <math.h>
#include <string.h>

#include "conform-compare-run.h"

typedef struct {
  gboolean ready, finished, finish_ok;
  int bundles;
  GPtrArray *errors;
  GError *finish_error;
} Ctx;

static gboolean
timeout_cb(gpointer data)
{
  g_error("timed out waiting for %s", (const char *)data);
  return G_SOURCE_REMOVE;
}

#define WAIT_UNTIL(cond, what)                                         \
  do {                                                                 \
    guint _t = g_timeout_add_seconds(120, timeout_cb, (gpointer)what); \
    while (!(cond))                                                    \
      g_main_context_iteration(NULL, TRUE);                            \
    g_source_remove(_t);                                               \
  } while (0)

static void ready_cb(ConformCompareRun *r, Ctx *c) { c->ready = TRUE; }
static void bundle_cb(ConformCompareRun *r, gpointer b, Ctx *c) { c->bundles++; }
static void
message_cb(ConformCompareRun *r, const char *text, gboolean is_error, Ctx *c)
{
  if (is_error)
    g_ptr_array_add(c->errors, g_strdup(text));
}

static void
finished_cb(GObject *src, GAsyncResult *res, gpointer data)
{
  Ctx *c = data;
  c->finish_ok = conform_compare_run_start_finish(CONFORM_COMPARE_RUN(src), res, &c->finish_error);
  c->finished = TRUE;
}

static ConformCompareRun *
start(const char *preset, const char *const *strategies, const char *model_type, Ctx *ctx)
{
  memset(ctx, 0, sizeof *ctx);
  ctx->errors = g_ptr_array_new_with_free_func(g_free);
  ConformConfig cfg;
  conform_config_init(&cfg);
  g_assert_true(conform_config_apply_preset(&cfg, preset, NULL));
  g_assert_true(conform_config_set(&cfg, "train.steps", "100000", NULL));
  if (model_type)
    g_assert_true(conform_config_set(&cfg, "model.type", model_type, NULL));
  ConformCompareRun *run = conform_compare_run_new(&cfg, strategies);
  conform_config_clear(&cfg);
  conform_compare_run_set_chunk_steps(run, 50);
  conform_compare_run_set_sample_n(run, 300);
  g_signal_connect(run, "ready", G_CALLBACK(ready_cb), ctx);
  g_signal_connect(run, "bundle", G_CALLBACK(bundle_cb), ctx);
  g_signal_connect(run, "message", G_CALLBACK(message_cb), ctx);
  conform_compare_run_start_async(run, NULL, finished_cb, ctx);
  return run;
}

static void
finish(ConformCompareRun *run, Ctx *ctx)
{
  WAIT_UNTIL(ctx->finished, "the worker to finish");
  g_assert_false(conform_compare_run_is_running(run)); /* joined */
  /* dispose/finalize with the thread joined: nothing left behind */
  GObject *obj = G_OBJECT(run);
  g_object_add_weak_pointer(obj, (gpointer *)&obj);
  g_object_unref(run);
  while (g_main_context_iteration(NULL, FALSE)) /* pending flushes hold references */
    ;
  g_assert_null(obj);
  g_ptr_array_unref(ctx->errors);
  g_clear_error(&ctx->finish_error);
}

static int
index_of(ConformCompareBundle *b, const char *s)
{
  for (int i = 0; i < b->n; i++)
    if (g_strcmp0(b->strategies[i], s) == 0)
      return i;
  g_assert_not_reached();
  return -1;
}

static void
test_lock_step_bundles(void)
{
  const char *strategies[] = {"none", "projection", "cgauss", NULL};
  Ctx ctx;
  ConformCompareRun *run = start("simplex-3d", strategies, NULL, &ctx);
  WAIT_UNTIL(ctx.ready, "ready");
  /* none and projection share one model; cgauss trains its own */
  g_assert_cmpint(conform_compare_run_get_n_models(run), ==, 2);
  WAIT_UNTIL(ctx.bundles >= 2 && conform_compare_run_get_n_bundles(run) >= 2, "two bundles");
  ConformCompareBundle *b = conform_compare_run_get_bundle(run);
  g_assert_cmpint(b->n, ==, 3);
  g_assert_cmpint(b->step % 50, ==, 0);
  g_assert_cmpint(b->step, >=, 100);
  for (int i = 0; i < b->n; i++) {
    g_assert_nonnull(b->sets[i]);
    g_assert_cmpint(b->sets[i]->step, ==, b->step);
    g_assert_cmpint(b->sets[i]->n, ==, 300);
    g_assert_cmpstr(b->sets[i]->strategy, ==, b->strategies[i]);
    g_assert_true(isfinite(b->energy_distance[i]));
  }
  ConformSampleSet *none = b->sets[index_of(b, "none")], *proj = b->sets[index_of(b, "projection")],
                   *cg = b->sets[index_of(b, "cgauss")];
  g_assert_cmpfloat(proj->summary.viol.max, <, 1e-5);
  g_assert_cmpfloat(cg->summary.viol.max, <, 1e-5);
  g_assert_cmpfloat(none->summary.viol.max, >, 1e-5);
  /* Paired: same model, same sample seed, so projection's raw samples are
   * exactly the samples of none. */
  g_assert_cmpmem(proj->raw, sizeof(float) * 300 * 3, none->x, sizeof(float) * 300 * 3);
  conform_compare_run_stop(run);
  finish(run, &ctx);
  g_assert_true(ctx.finish_ok);
}

static void
test_pause_resume(void)
{
  const char *strategies[] = {"none", "projected-sampling", NULL};
  Ctx ctx;
  ConformCompareRun *run = start("gaussians-line", strategies, NULL, &ctx);
  WAIT_UNTIL(ctx.bundles >= 1, "a bundle");
  g_assert_cmpint(conform_compare_run_get_n_models(run), ==, 1);
  conform_compare_run_pause(run);
  WAIT_UNTIL(conform_compare_run_get_state(run) == CONFORM_RUN_PAUSED, "paused");
  g_usleep(300000);
  while (g_main_context_iteration(NULL, FALSE))
    ;
  int at = ctx.bundles;
  long step = conform_compare_run_get_bundle(run)->step;
  g_usleep(300000);
  while (g_main_context_iteration(NULL, FALSE))
    ;
  g_assert_cmpint(ctx.bundles, ==, at);
  conform_compare_run_resume(run);
  WAIT_UNTIL(conform_compare_run_get_bundle(run)->step > step, "training again");
  conform_compare_run_stop(run);
  finish(run, &ctx);
  g_assert_true(ctx.finish_ok);
}

static void
test_cancel_mid_run(void)
{
  const char *strategies[] = {"none", "projection", "cgauss", NULL};
  for (int i = 0; i < 3; i++) {
    Ctx ctx;
    ConformCompareRun *run = start("simplex-3d", strategies, NULL, &ctx);
    if (i > 0)
      WAIT_UNTIL(ctx.ready, "ready");
    if (i > 1)
      WAIT_UNTIL(ctx.bundles >= 1, "a bundle");
    conform_compare_run_stop(run); /* while building, training or sampling */
    finish(run, &ctx);
    g_assert_true(ctx.finish_ok);
    g_assert_cmpint(ctx.errors->len, ==, 0);
  }
  /* Through the GCancellable passed to start_async as well. */
  Ctx ctx;
  memset(&ctx, 0, sizeof ctx);
  ctx.errors = g_ptr_array_new_with_free_func(g_free);
  ConformConfig cfg;
  conform_config_init(&cfg);
  g_assert_true(conform_config_apply_preset(&cfg, "simplex-3d", NULL));
  ConformCompareRun *run = conform_compare_run_new(&cfg, strategies);
  conform_config_clear(&cfg);
  g_signal_connect(run, "ready", G_CALLBACK(ready_cb), &ctx);
  GCancellable *cancel = g_cancellable_new();
  conform_compare_run_start_async(run, cancel, finished_cb, &ctx);
  WAIT_UNTIL(ctx.ready, "ready");
  g_cancellable_cancel(cancel);
  finish(run, &ctx);
  g_object_unref(cancel);
}

static void
test_invalid_strategies(void)
{
  const char *vae_bad[] = {"none", "projected-sampling", NULL};
  Ctx ctx;
  ConformCompareRun *run = start("simplex-3d", vae_bad, "vae", &ctx);
  WAIT_UNTIL(ctx.finished, "the worker to refuse");
  g_assert_false(ctx.finish_ok);
  g_assert_error(ctx.finish_error, CONFORM_ERROR, CONFORM_ERROR_USAGE);
  g_assert_nonnull(strstr(ctx.finish_error->message, "constrained-layer"));
  finish(run, &ctx);
  const char *one[] = {"none", NULL};
  run = start("simplex-3d", one, NULL, &ctx);
  WAIT_UNTIL(ctx.finished, "the worker to refuse");
  g_assert_false(ctx.finish_ok);
  finish(run, &ctx);
  g_assert_cmpstr(conform_compare_training_strategy("ddpm", "projected-sampling"), ==, "none");
  g_assert_cmpstr(conform_compare_training_strategy("vae", "constrained-layer"), ==, "constrained-layer");
  g_assert_cmpstr(conform_compare_training_strategy("ddpm", "cgauss"), ==, "cgauss");
}

static void
test_vae_bundles(void)
{
  const char *strategies[] = {"none", "cgauss", NULL};
  Ctx ctx;
  ConformCompareRun *run = start("simplex-3d", strategies, "vae", &ctx);
  WAIT_UNTIL(ctx.bundles >= 1, "a VAE bundle");
  ConformCompareBundle *b = conform_compare_run_get_bundle(run);
  g_assert_nonnull(b->sets[0]);
  g_assert_nonnull(b->sets[1]);
  g_assert_cmpint(b->sets[0]->step, ==, b->sets[1]->step);
  g_assert_cmpfloat(b->sets[1]->summary.viol.max, <, 1e-5);
  conform_compare_run_stop(run);
  finish(run, &ctx);
  g_assert_true(ctx.finish_ok);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/compare-run/lock-step-bundles", test_lock_step_bundles);
  g_test_add_func("/compare-run/pause-resume", test_pause_resume);
  g_test_add_func("/compare-run/cancel-mid-run", test_cancel_mid_run);
  g_test_add_func("/compare-run/invalid-strategies", test_invalid_strategies);
  g_test_add_func("/compare-run/vae", test_vae_bundles);
  return g_test_run();
}
