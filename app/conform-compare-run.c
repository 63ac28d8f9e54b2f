#define G_LOG_DOMAIN "conform"

#include "conform-compare-run.h"
#include "conform-compare.h"

#include <cblas.h>
#include <math.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "metrics.h"

#define PAUSED_WAIT_US 100000 /* paused worker wakes this often to notice cancellation */
#define PREVIEW_STEPS 50      /* DDIM steps of the per-round samples, as the main window's previews */
#define ED_MAX_N 1000         /* subsample size of the per-round energy distance */
#define DEFAULT_CHUNK 100
#define DEFAULT_SAMPLES 1000

static const char *const ddpm_strategies[] = {"none", "projection", "projected-sampling", "cgauss", NULL};
static const char *const vae_strategies[] = {"none", "projection", "constrained-layer", "cgauss", NULL};

typedef enum {
  CMD_PAUSE = 1,
  CMD_RESUME,
  CMD_STOP,
} CmdKind;

/* What the worker hands to the main thread (guarded by lock). */
typedef struct {
  ConformCompareBundle *bundle; /* newest round (older unflushed ones are dropped) */
  guint n_new_bundles;
  GPtrArray *messages;          /* char* ("E:" prefix for errors) */
  gboolean have_state;
  ConformRunState state;
  gboolean ready;
  int n_models;
} Outbox;

struct _ConformCompareRun {
  GObject parent_instance;

  /* immutable after start */
  ConformConfig cfg;
  int n;
  char *strategies[CONFORM_COMPARE_MAX];
  long chunk;
  int sample_n;
  guint64 sample_seed;
  int blas_threads;
  GMainContext *main_ctx;

  /* worker side */
  GThread *thread;
  GAsyncQueue *commands; /* GINT_TO_POINTER(CmdKind) */
  GCancellable *cancellable;
  GTask *task; /* start_async; returned from the worker */

  /* shared */
  GMutex lock;
  Outbox out;
  gboolean idle_pending;

  /* main-thread state */
  ConformRunState state;
  ConformCompareBundle *bundle;
  guint n_bundles;
  int n_models;
};

G_DEFINE_FINAL_TYPE(ConformCompareRun, conform_compare_run, G_TYPE_OBJECT)

enum { SIG_READY, SIG_BUNDLE, SIG_STATE_CHANGED, SIG_MESSAGE, N_SIGNALS };
static guint signals[N_SIGNALS];

/* ---- bundles ------------------------------------------------------------------ */

static void
bundle_free_contents(ConformCompareBundle *b)
{
  for (int i = 0; i < CONFORM_COMPARE_MAX; i++) {
    g_free(b->strategies[i]);
    if (b->sets[i])
      conform_sample_set_unref(b->sets[i]);
  }
}

ConformCompareBundle *
conform_compare_bundle_ref(ConformCompareBundle *b)
{
  return g_atomic_rc_box_acquire(b);
}

void
conform_compare_bundle_unref(ConformCompareBundle *b)
{
  if (b)
    g_atomic_rc_box_release_full(b, (GDestroyNotify)bundle_free_contents);
}

/* ---- strategies ---------------------------------------------------------------- */

static gboolean
is_vae(const char *model_type)
{
  return g_strcmp0(model_type, "vae") == 0;
}

const char *const *
conform_compare_strategies_for(const char *model_type)
{
  return is_vae(model_type) ? vae_strategies : ddpm_strategies;
}

/* ---- main thread: flushing the outbox --------------------------------------- */

static gboolean
flush_cb(gpointer data)
{
  ConformCompareRun *self = data;
  Outbox o;
  g_mutex_lock(&self->lock);
  o = self->out;
  memset(&self->out, 0, sizeof self->out);
  self->idle_pending = FALSE;
  g_mutex_unlock(&self->lock);

  gboolean state_changed = FALSE;
  if (o.have_state) {
    state_changed = self->state != o.state;
    self->state = o.state;
  }
  if (o.ready) {
    self->n_models = o.n_models;
    g_signal_emit(self, signals[SIG_READY], 0);
  }
  if (state_changed)
    g_signal_emit(self, signals[SIG_STATE_CHANGED], 0);
  if (o.bundle) {
    conform_compare_bundle_unref(self->bundle);
    self->bundle = o.bundle;
    self->n_bundles += o.n_new_bundles;
    g_signal_emit(self, signals[SIG_BUNDLE], 0, self->bundle);
  }
  if (o.messages) {
    for (guint i = 0; i < o.messages->len; i++) {
      const char *m = g_ptr_array_index(o.messages, i);
      g_signal_emit(self, signals[SIG_MESSAGE], 0, m + 2, g_str_has_prefix(m, "E:"));
    }
    g_ptr_array_unref(o.messages);
  }
  return G_SOURCE_REMOVE;
}

/* Called with the lock held: makes sure one idle flush is pending. */
static void
schedule_flush_locked(ConformCompareRun *self)
{
  if (self->idle_pending)
    return;
  self->idle_pending = TRUE;
  GSource *src = g_idle_source_new();
  g_source_set_priority(src, G_PRIORITY_DEFAULT);
  g_source_set_callback(src, flush_cb, g_object_ref(self), g_object_unref);
  g_source_set_static_name(src, "[conform] compare flush");
  g_source_attach(src, self->main_ctx);
  g_source_unref(src);
}

static void
post_message(ConformCompareRun *self, gboolean is_error, const char *text)
{
  g_mutex_lock(&self->lock);
  if (!self->out.messages)
    self->out.messages = g_ptr_array_new_with_free_func(g_free);
  g_ptr_array_add(self->out.messages, g_strconcat(is_error ? "E:" : "I:", text, NULL));
  schedule_flush_locked(self);
  g_mutex_unlock(&self->lock);
}

static void
post_state(ConformCompareRun *self, ConformRunState state)
{
  g_mutex_lock(&self->lock);
  self->out.have_state = TRUE;
  self->out.state = state;
  schedule_flush_locked(self);
  g_mutex_unlock(&self->lock);
}

static void
post_ready(ConformCompareRun *self, int n_models)
{
  g_mutex_lock(&self->lock);
  self->out.ready = TRUE;
  self->out.n_models = n_models;
  schedule_flush_locked(self);
  g_mutex_unlock(&self->lock);
}

/* Takes the bundle reference. */
static void
post_bundle(ConformCompareRun *self, ConformCompareBundle *b)
{
  g_mutex_lock(&self->lock);
  conform_compare_bundle_unref(self->out.bundle);
  self->out.bundle = b;
  self->out.n_new_bundles++;
  schedule_flush_locked(self);
  g_mutex_unlock(&self->lock);
}

/* ---- worker thread ------------------------------------------------------------ */

static void
lower_thread_priority(void)
{
#ifdef __linux__
  (void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 10);
#endif
}

static bool
abort_cb(void *user)
{
  return g_cancellable_is_cancelled(G_CANCELLABLE(user));
}

typedef struct {
  ConformEngine *engine;
  ConformSampler *sampler;
  const char *trained; /* the strategy it trains with */
} Model;

static gboolean
build_models(ConformCompareRun *self, Model *models, int *n_models, int *model_of, GError **error)
{
  const char *type = self->cfg.model_type;
  const char *const *valid = conform_compare_strategies_for(type);
  if (self->n < 2 || self->n > CONFORM_COMPARE_MAX) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_USAGE, "compare needs 2 to %d strategies, not %d",
                CONFORM_COMPARE_MAX, self->n);
    return FALSE;
  }
  for (int i = 0; i < self->n; i++) {
    if (!g_strv_contains(valid, self->strategies[i])) {
      g_autofree char *list = g_strjoinv(", ", (char **)valid);
      g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_USAGE, "strategy '%s' is not available for model.type=%s; "
                  "valid: %s", self->strategies[i], type, list);
      return FALSE;
    }
    for (int j = 0; j < i; j++)
      if (g_strcmp0(self->strategies[i], self->strategies[j]) == 0) {
        g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_USAGE, "strategy '%s' is listed twice", self->strategies[i]);
        return FALSE;
      }
  }
  for (int i = 0; i < self->n; i++) {
    const char *train = conform_compare_training_strategy(type, self->strategies[i]);
    int k = 0;
    while (k < *n_models && g_strcmp0(models[k].trained, train) != 0)
      k++;
    model_of[i] = k;
    if (k < *n_models)
      continue;
    if (g_cancellable_set_error_if_cancelled(self->cancellable, error))
      return FALSE;
    /* Same configuration and seed: the same data, initialisation,
     * minibatches and noise streams; only the training strategy differs. */
    ConformConfig c;
    conform_config_init(&c);
    conform_config_clear(&c);
    conform_config_copy(&c, &self->cfg);
    gboolean ok = conform_config_set(&c, "experiment.strategy", train, error);
    ConformEngine *e = ok ? conform_engine_new(&c, error) : NULL;
    conform_config_clear(&c);
    if (!e)
      return FALSE;
    ConformSampler *s = conform_engine_make_sampler(e, error);
    if (!s) {
      conform_engine_free(e);
      return FALSE;
    }
    models[k] = (Model){e, s, train};
    (*n_models)++;
  }
  return TRUE;
}

/* One round's samples: every strategy from the same parameters step and the
 * same explicit seed. NULL when cancelled. */
static ConformCompareBundle *
sample_round(ConformCompareRun *self, Model *models, int n_models, const int *model_of, gint64 t0)
{
  for (int k = 0; k < n_models; k++) {
    gsize len;
    g_autofree float *arena = conform_engine_snapshot(models[k].engine, &len);
    conform_sampler_load(models[k].sampler, arena, conform_engine_step(models[k].engine));
  }
  const ConformConfig *cfg = &self->cfg;
  gboolean ddim = g_strcmp0(cfg->sampler, "ddim") == 0;
  ConformCompareBundle *b = g_atomic_rc_box_new0(ConformCompareBundle);
  b->step = conform_engine_step(models[0].engine);
  b->n = self->n;
  for (int i = 0; i < self->n; i++) {
    Model *m = &models[model_of[i]];
    b->strategies[i] = g_strdup(self->strategies[i]);
    b->energy_distance[i] = NAN;
    ConformSampleOptions o = {
      .n = self->sample_n,
      .strategy = self->strategies[i],
      .sampler = "ddim",
      .sampling_steps = MIN(PREVIEW_STEPS, ddim ? cfg->sampling_steps : PREVIEW_STEPS),
      .eta = cfg->eta,
      .seed = self->sample_seed,
      .use_seed = TRUE,
      .preview = TRUE,
    };
    g_autoptr(GError) error = NULL;
    ConformSampleSet *set = conform_sampler_run(m->sampler, &o, 0, abort_cb, NULL, self->cancellable, &error);
    if (!set) {
      if (g_error_matches(error, CONFORM_ERROR, CONFORM_ERROR_CANCELLED) ||
          g_cancellable_is_cancelled(self->cancellable)) {
        conform_compare_bundle_unref(b);
        return NULL;
      }
      g_autofree char *msg = g_strdup_printf("%s: %s", self->strategies[i], error->message);
      post_message(self, TRUE, msg);
      continue;
    }
    /* Energy distance to the held-out data on a fixed subsample stream, the
     * same for every strategy (paired). */
    int n_ref = 0;
    const float *ref = conform_engine_reference(m->engine, &n_ref);
    CfRng rng;
    cf_rng_seed(&rng, self->sample_seed ^ G_GUINT64_CONSTANT(0x9e3779b97f4a7c15));
    b->energy_distance[i] = cf_energy_distance(set->x, set->n, ref, n_ref, set->dim, MIN(cfg->metric_max_n, ED_MAX_N),
                                               &rng);
    b->sets[i] = set;
  }
  b->seconds = (double)(g_get_monotonic_time() - t0) / 1e6;
  return b;
}

static gpointer
worker_main(gpointer data)
{
  ConformCompareRun *self = data;
  GTask *task = self->task;
  g_autoptr(GError) error = NULL;
  lower_thread_priority();
  openblas_set_num_threads(self->blas_threads);

  Model models[CONFORM_COMPARE_MAX] = {{0}};
  int n_models = 0, model_of[CONFORM_COMPARE_MAX] = {0};
  gboolean ok = build_models(self, models, &n_models, model_of, &error);
  if (ok) {
    post_ready(self, n_models);
    post_state(self, CONFORM_RUN_TRAINING);
  }
  gboolean training = TRUE, stop = !ok;
  long target = self->cfg.steps;
  ConformRunState last_state = CONFORM_RUN_TRAINING;
  while (!stop && !g_cancellable_is_cancelled(self->cancellable)) {
    gpointer c = training ? g_async_queue_try_pop(self->commands)
                          : g_async_queue_timeout_pop(self->commands, PAUSED_WAIT_US);
    for (; c; c = g_async_queue_try_pop(self->commands)) {
      switch ((CmdKind)GPOINTER_TO_INT(c)) {
      case CMD_PAUSE: training = FALSE; break;
      case CMD_RESUME:
        training = TRUE;
        if (conform_engine_step(models[0].engine) >= target)
          target = G_MAXLONG; /* continuing past the configured steps */
        break;
      case CMD_STOP: stop = TRUE; break;
      }
    }
    if (stop)
      break;
    ConformRunState st = training ? CONFORM_RUN_TRAINING : CONFORM_RUN_PAUSED;
    if (st != last_state) {
      post_state(self, st);
      last_state = st;
    }
    if (!training)
      continue;
    /* Lock-step: every distinct model trains the same K steps in turn. */
    gint64 t0 = g_get_monotonic_time();
    long at = conform_engine_step(models[0].engine);
    long k = CLAMP(target - at, 1, self->chunk);
    for (int m = 0; m < n_models && ok; m++)
      ok = conform_engine_train(models[m].engine, k, abort_cb, NULL, self->cancellable, &error);
    if (!ok) {
      if (g_error_matches(error, CONFORM_ERROR, CONFORM_ERROR_CANCELLED))
        g_clear_error(&error);
      break; /* a NaN in one model would break the pairing: end the comparison with the error */
    }
    ConformCompareBundle *b = sample_round(self, models, n_models, model_of, t0);
    if (!b)
      break;
    long step = b->step;
    post_bundle(self, b);
    if (step >= target) {
      training = FALSE;
      g_autofree char *msg = g_strdup_printf("compare reached the configured %ld steps; paused", target);
      post_message(self, FALSE, msg);
    }
  }
  post_state(self, CONFORM_RUN_STOPPED);
  for (int m = 0; m < n_models; m++) {
    conform_sampler_free(models[m].sampler);
    conform_engine_free(models[m].engine);
  }
  if (error && g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    g_clear_error(&error); /* cancelled while building: a plain stop */
  if (error)
    g_task_return_error(task, g_steal_pointer(&error));
  else
    g_task_return_boolean(task, TRUE);
  g_object_unref(task);
  return NULL;
}

/* ---- GObject ----------------------------------------------------------------- */

static void
conform_compare_run_dispose(GObject *object)
{
  ConformCompareRun *self = CONFORM_COMPARE_RUN(object);
  if (self->thread) {
    /* Never reached with the worker alive: it holds a reference via the task. */
    g_thread_join(self->thread);
    self->thread = NULL;
  }
  G_OBJECT_CLASS(conform_compare_run_parent_class)->dispose(object);
}

static void
conform_compare_run_finalize(GObject *object)
{
  ConformCompareRun *self = CONFORM_COMPARE_RUN(object);
  conform_config_clear(&self->cfg);
  for (int i = 0; i < CONFORM_COMPARE_MAX; i++)
    g_free(self->strategies[i]);
  conform_compare_bundle_unref(self->bundle);
  conform_compare_bundle_unref(self->out.bundle);
  if (self->out.messages)
    g_ptr_array_unref(self->out.messages);
  g_async_queue_unref(self->commands);
  g_clear_object(&self->cancellable);
  g_main_context_unref(self->main_ctx);
  g_mutex_clear(&self->lock);
  G_OBJECT_CLASS(conform_compare_run_parent_class)->finalize(object);
}

static void
conform_compare_run_class_init(ConformCompareRunClass *klass)
{
  GObjectClass *oc = G_OBJECT_CLASS(klass);
  oc->dispose = conform_compare_run_dispose;
  oc->finalize = conform_compare_run_finalize;
  signals[SIG_READY] = g_signal_new("ready", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                                    G_TYPE_NONE, 0);
  signals[SIG_BUNDLE] = g_signal_new("bundle", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                                     G_TYPE_NONE, 1, G_TYPE_POINTER);
  signals[SIG_STATE_CHANGED] = g_signal_new("state-changed", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL,
                                            NULL, NULL, G_TYPE_NONE, 0);
  signals[SIG_MESSAGE] = g_signal_new("message", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                                      G_TYPE_NONE, 2, G_TYPE_STRING, G_TYPE_BOOLEAN);
}

static void
conform_compare_run_init(ConformCompareRun *self)
{
  g_mutex_init(&self->lock);
  self->commands = g_async_queue_new();
  self->cancellable = g_cancellable_new();
  self->main_ctx = g_main_context_ref_thread_default();
  self->state = CONFORM_RUN_STARTING;
  self->chunk = DEFAULT_CHUNK;
  self->blas_threads = 1;
  conform_config_init(&self->cfg);
}

static void
send(ConformCompareRun *self, CmdKind kind)
{
  g_async_queue_push(self->commands, GINT_TO_POINTER(kind));
}

/* ---- public API ---------------------------------------------------------------- */

ConformCompareRun *
conform_compare_run_new(const ConformConfig *cfg, const char *const *strategies)
{
  g_return_val_if_fail(cfg != NULL && strategies != NULL, NULL);
  ConformCompareRun *self = g_object_new(CONFORM_TYPE_COMPARE_RUN, NULL);
  conform_config_clear(&self->cfg);
  conform_config_copy(&self->cfg, cfg);
  for (int i = 0; strategies[i]; i++) {
    if (self->n == CONFORM_COMPARE_MAX) {
      self->n++; /* too many: the worker reports it */
      break;
    }
    self->strategies[self->n++] = g_strdup(strategies[i]);
  }
  self->sample_n = MIN(MAX(cfg->n_samples, 2), DEFAULT_SAMPLES);
  self->sample_seed = cfg->seed;
  return self;
}

void
conform_compare_run_set_chunk_steps(ConformCompareRun *self, long steps)
{
  g_return_if_fail(CONFORM_IS_COMPARE_RUN(self) && self->thread == NULL);
  self->chunk = MAX(steps, 1);
}

void
conform_compare_run_set_sample_n(ConformCompareRun *self, int n)
{
  g_return_if_fail(CONFORM_IS_COMPARE_RUN(self) && self->thread == NULL);
  self->sample_n = CLAMP(n, 2, 100000);
}

void
conform_compare_run_set_sample_seed(ConformCompareRun *self, guint64 seed)
{
  g_return_if_fail(CONFORM_IS_COMPARE_RUN(self) && self->thread == NULL);
  self->sample_seed = seed;
}

void
conform_compare_run_set_blas_threads(ConformCompareRun *self, int threads)
{
  g_return_if_fail(CONFORM_IS_COMPARE_RUN(self) && self->thread == NULL);
  self->blas_threads = CLAMP(threads, 1, 64);
}

/* The caller's cancellable fired: cancel ours (the worker polls it). */
static void
outer_cancelled_cb(GCancellable *outer, gpointer data)
{
  g_cancellable_cancel(G_CANCELLABLE(data));
}

void
conform_compare_run_start_async(ConformCompareRun *self, GCancellable *cancellable, GAsyncReadyCallback callback,
                                gpointer user_data)
{
  g_return_if_fail(CONFORM_IS_COMPARE_RUN(self));
  g_return_if_fail(self->thread == NULL && self->task == NULL);
  self->task = g_task_new(self, cancellable, callback, user_data);
  g_task_set_source_tag(self->task, conform_compare_run_start_async);
  if (cancellable)
    g_cancellable_connect(cancellable, G_CALLBACK(outer_cancelled_cb), g_object_ref(self->cancellable),
                          g_object_unref);
  /* The task (holding a reference to self) is returned by the worker. */
  self->thread = g_thread_new("conform-compare", worker_main, self);
}

gboolean
conform_compare_run_start_finish(ConformCompareRun *self, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail(g_task_is_valid(result, self), FALSE);
  if (self->thread) {
    g_thread_join(self->thread);
    self->thread = NULL;
  }
  return g_task_propagate_boolean(G_TASK(result), error);
}

void
conform_compare_run_pause(ConformCompareRun *self)
{
  g_return_if_fail(CONFORM_IS_COMPARE_RUN(self));
  send(self, CMD_PAUSE);
}

void
conform_compare_run_resume(ConformCompareRun *self)
{
  g_return_if_fail(CONFORM_IS_COMPARE_RUN(self));
  send(self, CMD_RESUME);
}

void
conform_compare_run_stop(ConformCompareRun *self)
{
  g_return_if_fail(CONFORM_IS_COMPARE_RUN(self));
  send(self, CMD_STOP);
  g_cancellable_cancel(self->cancellable);
}

ConformRunState conform_compare_run_get_state(ConformCompareRun *self) { return self->state; }
ConformCompareBundle *conform_compare_run_get_bundle(ConformCompareRun *self) { return self->bundle; }
guint conform_compare_run_get_n_bundles(ConformCompareRun *self) { return self->n_bundles; }
int conform_compare_run_get_n_models(ConformCompareRun *self) { return self->n_models; }
const ConformConfig *conform_compare_run_get_config(ConformCompareRun *self) { return &self->cfg; }
int conform_compare_run_get_n_strategies(ConformCompareRun *self) { return MIN(self->n, CONFORM_COMPARE_MAX); }
gboolean conform_compare_run_is_running(ConformCompareRun *self) { return self->thread != NULL; }

const char *
conform_compare_run_get_strategy(ConformCompareRun *self, int i)
{
  g_return_val_if_fail(i >= 0 && i < conform_compare_run_get_n_strategies(self), NULL);
  return self->strategies[i];
}
