/* Stress of the worker-thread run: 1,000 cycles, each a fresh ConformRun on
 * a tiny simplex-3d model through start, a live strategy switch, train,
 * pause, an exact step count, sampling now and then, and an end by
 * conform_run_stop or by cancelling the GCancellable given to
 * start_async. After every cycle the run must be in the expected state
 * (step counts exact, strategy applied, refused switches refused with their
 * message and nothing else), stopped, and finalized once unreferenced (no
 * reference left behind by the worker, the sampler or a pending flush).
 * Resident memory after a warm-up and at the end must stay within a few
 * MiB; leaks as such are for the ASan/LSan build (tests/run-all). */
#include <glib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conform-run.h"

#define CYCLES 1000
#define WARMUP 100
#define RSS_GROWTH_MAX_MIB 4.0

typedef struct {
  gboolean ready, finished, finish_ok;
  int samples, progress;
  GPtrArray *errors;
  GError *finish_error;
} Ctx;

static gboolean
timeout_cb(gpointer data)
{
  g_error("stress: timed out waiting for %s", (const char *)data);
  return G_SOURCE_REMOVE;
}

#define WAIT_UNTIL(cond, what)                                        \
  do {                                                                \
    guint _t = g_timeout_add_seconds(60, timeout_cb, (gpointer)what); \
    while (!(cond))                                                   \
      g_main_context_iteration(NULL, TRUE);                           \
    g_source_remove(_t);                                              \
  } while (0)

static void ready_cb(ConformRun *r, Ctx *c) { c->ready = TRUE; }
static void samples_cb(ConformRun *r, gpointer set, Ctx *c) { c->samples++; }
static void progress_cb(ConformRun *r, guint first, Ctx *c) { c->progress++; }

static void
message_cb(ConformRun *r, const char *text, gboolean is_error, Ctx *c)
{
  if (is_error)
    g_ptr_array_add(c->errors, g_strdup(text));
}

static void
finished_cb(GObject *src, GAsyncResult *res, gpointer data)
{
  Ctx *c = data;
  c->finish_ok = conform_run_start_finish(CONFORM_RUN(src), res, &c->finish_error);
  c->finished = TRUE;
}

/* Resident set size in bytes (/proc/self/statm, second field). */
static double
rss_mib(void)
{
  FILE *f = fopen("/proc/self/statm", "r");
  g_assert_nonnull(f);
  unsigned long size = 0, resident = 0;
  g_assert_cmpint(fscanf(f, "%lu %lu", &size, &resident), ==, 2);
  fclose(f);
  return (double)resident * (double)sysconf(_SC_PAGESIZE) / (1024.0 * 1024.0);
}

static void
drain(void)
{
  while (g_main_context_iteration(NULL, FALSE))
    ;
}

static const char *const strategies[] = {"none", "projection", "projected-sampling"};

static void
one_cycle(const ConformConfig *cfg, int i)
{
  Ctx ctx = {0};
  ctx.errors = g_ptr_array_new_with_free_func(g_free);
  ConformRun *run = conform_run_new(cfg, NULL);
  gpointer weak = run;
  g_object_add_weak_pointer(G_OBJECT(run), &weak);
  g_signal_connect(run, "ready", G_CALLBACK(ready_cb), &ctx);
  g_signal_connect(run, "samples", G_CALLBACK(samples_cb), &ctx);
  g_signal_connect(run, "progress", G_CALLBACK(progress_cb), &ctx);
  g_signal_connect(run, "message", G_CALLBACK(message_cb), &ctx);
  conform_run_set_preview_interval(run, i % 4 == 0 ? 0.01 : 0); /* previews beside training in some cycles */
  gboolean by_cancellable = i % 2 == 1;
  GCancellable *cancel = by_cancellable ? g_cancellable_new() : NULL;
  conform_run_start_async(run, cancel, finished_cb, &ctx);
  WAIT_UNTIL(ctx.ready && conform_run_get_state(run) == CONFORM_RUN_PAUSED, "ready");
  g_assert_cmpint(conform_run_get_step(run), ==, 0);
  g_assert_cmpint(conform_run_get_dim(run), ==, 3);

  /* A live strategy switch, and in every tenth cycle a refused one (cgauss
   * trains a different model: it needs Reset). */
  const char *strategy = strategies[i % G_N_ELEMENTS(strategies)];
  conform_run_set(run, "experiment.strategy", strategy);
  guint expected_errors = 0;
  if (i % 10 == 0) {
    conform_run_set(run, "experiment.strategy", "cgauss");
    expected_errors = 1;
  }

  /* Train until some steps are done, then pause. */
  conform_run_train(run);
  WAIT_UNTIL(conform_run_get_step(run) >= 5, "training");
  conform_run_pause(run);
  WAIT_UNTIL(conform_run_get_state(run) == CONFORM_RUN_PAUSED && ctx.errors->len >= expected_errors, "paused");
  drain();
  g_assert_cmpint(conform_run_get_state(run), ==, CONFORM_RUN_PAUSED);
  g_assert_cmpstr(conform_run_get_config(run)->strategy, ==, strategy);
  g_assert_cmpuint(ctx.errors->len, ==, expected_errors);
  if (expected_errors)
    g_assert_nonnull(strstr(g_ptr_array_index(ctx.errors, 0), "after Reset"));
  long at = conform_run_get_step(run);
  g_assert_cmpint(at, >=, 5);

  /* An exact number of steps. */
  int k = 1 + i % 7;
  conform_run_step(run, k);
  WAIT_UNTIL(conform_run_get_step(run) >= at + k && conform_run_get_state(run) == CONFORM_RUN_PAUSED, "steps");
  drain();
  g_assert_cmpint(conform_run_get_step(run), ==, at + k);
  const GArray *rec = conform_run_get_records(run);
  g_assert_cmpuint(rec->len, >, 0);
  g_assert_cmpint(g_array_index(rec, ConformTrainRecord, rec->len - 1).step, ==, at + k);
  g_assert_true(isfinite(g_array_index(rec, ConformTrainRecord, rec->len - 1).loss));

  /* Samples in some cycles: waited for in every third of those, otherwise
   * left in flight for the stop to cancel. */
  if (i % 3 == 0) {
    int before = ctx.samples;
    conform_run_request_samples(run, 64, 4);
    if (i % 9 == 0) {
      WAIT_UNTIL(ctx.samples > before && conform_run_get_samples(run)->step == at + k, "samples");
      ConformSampleSet *s = conform_run_get_samples(run);
      g_assert_cmpint(s->n, ==, 64);
      g_assert_cmpstr(s->strategy, ==, strategy);
      for (int j = 0; j < s->n * s->dim; j++)
        g_assert_true(isfinite(s->x[j]));
    }
  }

  /* Train again briefly in some cycles, so the stop lands mid-chunk. */
  if (i % 2 == 0)
    conform_run_train(run);

  if (by_cancellable)
    g_cancellable_cancel(cancel);
  else
    conform_run_stop(run);
  WAIT_UNTIL(ctx.finished, "the worker to finish");
  WAIT_UNTIL(conform_run_get_state(run) == CONFORM_RUN_STOPPED, "STOPPED");
  if (by_cancellable) {
    /* a cancelled start_async reports the cancellation (or plain success) */
    if (!ctx.finish_ok)
      g_assert_error(ctx.finish_error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  } else {
    g_assert_no_error(ctx.finish_error);
    g_assert_true(ctx.finish_ok);
  }
  g_clear_error(&ctx.finish_error);
  g_assert_cmpuint(ctx.errors->len, ==, expected_errors); /* nothing went wrong on the way */
  g_assert_cmpint(ctx.progress, >, 0);

  /* Unreferenced, the run is finalized once pending flushes ran. */
  g_object_unref(run);
  WAIT_UNTIL(weak == NULL, "the run to be finalized");
  g_clear_object(&cancel);
  g_ptr_array_unref(ctx.errors);
}

static void
test_cycles(void)
{
  ConformConfig cfg;
  conform_config_init(&cfg);
  g_assert_true(conform_config_apply_preset(&cfg, "simplex-3d", NULL));
  const char *sets[] = {"model.width=16", "model.depth=1", "model.T=50", "train.batch=32", "train.steps=100000",
                        "data.n_train=512", "data.n_ref=64", "sample.n=64", "sample.sampler=ddim",
                        "sample.steps=5"};
  for (guint j = 0; j < G_N_ELEMENTS(sets); j++) {
    g_autoptr(GError) err = NULL;
    g_assert_true(conform_config_set_assignment(&cfg, sets[j], &err));
    g_assert_no_error(err);
  }
  int cycles = CYCLES;
  const char *env = g_getenv("CONFORM_STRESS_CYCLES");
  if (env)
    cycles = MAX(atoi(env), WARMUP + 1);
  gint64 t0 = g_get_monotonic_time();
  double rss_warm = 0;
  for (int i = 0; i < cycles; i++) {
    one_cycle(&cfg, i);
    if (i + 1 == WARMUP)
      rss_warm = rss_mib();
  }
  double rss_end = rss_mib();
  double secs = (double)(g_get_monotonic_time() - t0) / 1e6;
  g_test_message("%d cycles in %.1f s (%.1f ms per cycle)", cycles, secs, 1000 * secs / cycles);
  g_test_message("RSS after %d cycles: %.1f MiB; after %d: %.1f MiB; growth %.2f MiB (bound %.1f)", WARMUP, rss_warm,
                 cycles, rss_end, rss_end - rss_warm, RSS_GROWTH_MAX_MIB);
  /* Under ASan freed memory stays in its quarantine (256 MiB by default),
   * so RSS grows by design there; LeakSanitizer checks leaks instead. */
  if (g_getenv("CONFORM_SANITIZED"))
    g_test_message("sanitized build: RSS bound not applied (ASan quarantine)");
  else
    g_assert_cmpfloat(rss_end - rss_warm, <, RSS_GROWTH_MAX_MIB);
  conform_config_clear(&cfg);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/stress/run-cycles", test_cycles);
  return g_test_run();
}
