/* ConformRun: one experiment and its training worker thread.
 *
 * The worker exclusively owns the ConformEngine. The main thread sends
 * commands through a queue (drained between training chunks) and receives
 * progress through a mutex-guarded buffer flushed by at most one pending idle
 * callback, which emits the signals below on the main thread. Sampling runs
 * on its own thread from an immutable parameter snapshot, beside training. */
#pragma once

#include <gio/gio.h>

#include "conform-config.h"
#include "conform-engine.h"

G_BEGIN_DECLS

typedef enum {
  CONFORM_RUN_STARTING, /* worker is building data and model */
  CONFORM_RUN_PAUSED,
  CONFORM_RUN_TRAINING,
  CONFORM_RUN_STOPPED,  /* worker has exited (stopped, cancelled or failed) */
} ConformRunState;

#define CONFORM_TYPE_RUN (conform_run_get_type())
G_DECLARE_FINAL_TYPE(ConformRun, conform_run, CONFORM, RUN, GObject)

/* load_dir: an experiment directory to resume (NULL: fresh from cfg).
 * Fault injection for tests: when the environment variable
 * CONFORM_DEBUG_NAN_STEP is set at this call, the run's engine gets a NaN
 * just before that training step (conform_engine_debug_inject_nan), as
 * `conform train` does. */
ConformRun *conform_run_new(const ConformConfig *cfg, const char *load_dir);
/* Starts the worker; the callback runs on the calling thread's main context
 * when the worker exits. _finish returns FALSE with the error that ended
 * the run (building failed, NaN, ...); a plain stop is success. */
void conform_run_start_async(ConformRun *self, GCancellable *cancellable, GAsyncReadyCallback callback,
                             gpointer user_data);
gboolean conform_run_start_finish(ConformRun *self, GAsyncResult *result, GError **error);

/* Commands (main thread; applied by the worker between steps). */
void conform_run_train(ConformRun *self);
void conform_run_pause(ConformRun *self);
void conform_run_step(ConformRun *self, int n_steps);
void conform_run_stop(ConformRun *self);
/* Live setting (ConformKey.live); errors arrive as a "message" signal. */
void conform_run_set(ConformRun *self, const char *key, const char *value);
/* Replaces the constraint (validated by the worker; error -> "message",
 * the previous constraint stays). Takes a copy. */
void conform_run_set_constraint(ConformRun *self, const CfConstraint *c);
/* Draws samples from the latest parameters (coalesced: at most one job in
 * flight, the newest request wins). */
void conform_run_request_samples(ConformRun *self, int n, int traj_n);
/* Draws samples with explicit options (n, sampler, steps, eta, seed,
 * use_condition / condition_row; opts->strategy unless strategies, a
 * NULL-terminated list, names several: one set each, in that order, all
 * with the same options and seed) from the latest parameters, on the
 * sampling thread: after a sampling job in flight, before the next preview.
 * The sets do not replace the run's samples. A condition row out of range
 * is refused by the worker (conform_engine_check_condition's message)
 * before any sampling. _finish returns a GPtrArray of ConformSampleSet
 * (free with g_ptr_array_unref) or the first error; CONFORM_ERROR_CANCELLED
 * when the run stops first. */
void conform_run_sample_async(ConformRun *self, const ConformSampleOptions *opts, const char *const *strategies,
                              int traj_n, GCancellable *cancellable, GAsyncReadyCallback callback,
                              gpointer user_data);
GPtrArray *conform_run_sample_finish(ConformRun *self, GAsyncResult *result, GError **error);
/* OpenBLAS threads the worker sets when it starts (default 1: training and
 * sampling each get a core). Call before conform_run_start_async. */
void conform_run_set_blas_threads(ConformRun *self, int threads);
/* Seconds between automatic sample previews while training (0 = off). */
void conform_run_set_preview_interval(ConformRun *self, double seconds);
void conform_run_save_async(ConformRun *self, const char *dir, GCancellable *cancellable,
                            GAsyncReadyCallback callback, gpointer user_data);
gboolean conform_run_save_finish(ConformRun *self, GAsyncResult *result, GError **error);

/* Main-thread views of the last flushed state. */
ConformRunState conform_run_get_state(ConformRun *self);
long conform_run_get_step(ConformRun *self);
double conform_run_get_steps_per_second(ConformRun *self);
double conform_run_get_train_seconds(ConformRun *self);
int conform_run_get_dim(ConformRun *self);
/* The configuration as the worker applied it (live settings included). */
const ConformConfig *conform_run_get_config(ConformRun *self);
/* Validated constraint in raw space (m == 0 without one) and its report line. */
const CfConstraint *conform_run_get_constraint(ConformRun *self);
const char *conform_run_get_constraint_summary(ConformRun *self);
/* Training data in raw space (for the faint background), n x dim. */
const float *conform_run_get_train_data(ConformRun *self, int *n);
/* Principal plane of the training data (2 x dim basis, dim centre) for
 * dim > 3; FALSE otherwise. */
gboolean conform_run_get_projection(ConformRun *self, const double **basis, const double **center);
/* Held-out reference rows in raw space (n x dim) when the experiment has
 * inputs (data.inputs > 0: the rows samples can be conditioned on; for
 * fashion-superres test image i is row i, [thumbnail | image]); NULL and
 * *n = 0 otherwise. */
const float *conform_run_get_reference(ConformRun *self, int *n);
/* All training records so far (ConformTrainRecord). */
const GArray *conform_run_get_records(ConformRun *self);
ConformSampleSet *conform_run_get_samples(ConformRun *self); /* borrowed, may be NULL */
/* TRUE while an explicit sample set (Sample now, the end of training, an
 * opened experiment; not the previews) is being drawn: n samples, the
 * fraction of the denoising steps done, seconds so far. Main thread;
 * "sampling-progress" says when it changes. */
gboolean conform_run_get_sampling(ConformRun *self, int *n, double *fraction, double *seconds);

/* Signals (main thread):
 *   "ready"          worker built the engine (dim, data, constraint known)
 *   "progress"       (guint first_new_record) new training records appended;
 *                    after a NaN rollback the records past the restored step
 *                    are dropped and first_new_record is 0 (redraw them all)
 *   "samples"        (gpointer ConformSampleSet*) a new sample set
 *   "state-changed"
 *   "message"        (const char *text, gboolean is_error)
 *   "sampling-progress" an explicit sample set started, advanced or ended
 *                    (conform_run_get_sampling) */

G_END_DECLS
