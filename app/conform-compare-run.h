/* ConformCompareRun: 2-4 strategies trained from the same configuration and
 * seed in lock-step on one dedicated worker thread.
 *
 * Strategies that only act at sampling time share one trained model (DDPM:
 * none, projection, projected-sampling; VAE: none, projection); the others
 * (DDPM cgauss; VAE constrained-layer, cgauss) each train their own model
 * from the same configuration and seed, so initialisation, minibatches and
 * noise streams are paired. The worker trains every distinct model K steps
 * in turn, then draws one preview sample set per strategy with the same
 * explicit sample seed, and publishes a ConformCompareBundle.
 *
 * Same pattern as ConformRun: commands through a GAsyncQueue, progress
 * through a mutex-guarded outbox flushed by at most one idle callback that
 * emits the signals on the main thread; the worker never touches a widget.
 * Cancellation through a GCancellable; _start_finish (or dispose) joins. */
#pragma once

#include "conform-compare.h" /* conform_compare_training_strategy */

#include <gio/gio.h>

#include "conform-config.h"
#include "conform-engine.h"
#include "conform-run.h"

G_BEGIN_DECLS

#define CONFORM_COMPARE_MAX 4

/* One synchronised round: every strategy's samples at the same step. */
typedef struct {
  long step;
  int n;                                  /* strategies */
  char *strategies[CONFORM_COMPARE_MAX];
  ConformSampleSet *sets[CONFORM_COMPARE_MAX]; /* NULL where sampling failed */
  double energy_distance[CONFORM_COMPARE_MAX]; /* vs held-out data, raw space (NaN if unknown) */
  double seconds;                         /* wall time of the round (training + sampling) */
} ConformCompareBundle;

ConformCompareBundle *conform_compare_bundle_ref(ConformCompareBundle *b);
void conform_compare_bundle_unref(ConformCompareBundle *b);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ConformCompareBundle, conform_compare_bundle_unref)

#define CONFORM_TYPE_COMPARE_RUN (conform_compare_run_get_type())
G_DECLARE_FINAL_TYPE(ConformCompareRun, conform_compare_run, CONFORM, COMPARE_RUN, GObject)

/* Strategies valid for a model type ("ddpm" or "vae"), NULL-terminated, static. */
const char *const *conform_compare_strategies_for(const char *model_type);

/* 2..CONFORM_COMPARE_MAX distinct strategies valid for cfg's model type
 * (checked by the worker: an invalid set ends the run with an error). */
ConformCompareRun *conform_compare_run_new(const ConformConfig *cfg, const char *const *strategies);
/* Before start: steps per model per round (default 100), samples per
 * strategy (default min(sample.n, 1000)), the shared sample seed (default
 * the experiment seed), BLAS threads (default 1). */
void conform_compare_run_set_chunk_steps(ConformCompareRun *self, long steps);
void conform_compare_run_set_sample_n(ConformCompareRun *self, int n);
void conform_compare_run_set_sample_seed(ConformCompareRun *self, guint64 seed);
void conform_compare_run_set_blas_threads(ConformCompareRun *self, int threads);

/* Starts the worker, which builds the models and trains at once. The
 * callback runs on the calling thread's main context when the worker has
 * exited; _finish joins the thread. A stop or cancel is success. */
void conform_compare_run_start_async(ConformCompareRun *self, GCancellable *cancellable,
                                     GAsyncReadyCallback callback, gpointer user_data);
gboolean conform_compare_run_start_finish(ConformCompareRun *self, GAsyncResult *result, GError **error);

/* Commands (main thread). */
void conform_compare_run_pause(ConformCompareRun *self);
void conform_compare_run_resume(ConformCompareRun *self);
void conform_compare_run_stop(ConformCompareRun *self);

/* Main-thread views of the last flushed state. */
ConformRunState conform_compare_run_get_state(ConformCompareRun *self);
ConformCompareBundle *conform_compare_run_get_bundle(ConformCompareRun *self); /* borrowed, may be NULL */
guint conform_compare_run_get_n_bundles(ConformCompareRun *self);
int conform_compare_run_get_n_models(ConformCompareRun *self); /* distinct trained models (0 before ready) */
const ConformConfig *conform_compare_run_get_config(ConformCompareRun *self);
int conform_compare_run_get_n_strategies(ConformCompareRun *self);
const char *conform_compare_run_get_strategy(ConformCompareRun *self, int i);
/* TRUE from start until the worker thread has been joined. */
gboolean conform_compare_run_is_running(ConformCompareRun *self);

/* Signals (main thread):
 *   "ready"          worker built every model (n_models known)
 *   "bundle"         (gpointer ConformCompareBundle*) a new round
 *   "state-changed"
 *   "message"        (const char *text, gboolean is_error) */

G_END_DECLS
