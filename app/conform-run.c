#define G_LOG_DOMAIN "conform"

#include "conform-run.h"

#include <cblas.h>
#include <math.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "metrics.h"

#define CHUNK_SECONDS 0.03   /* training chunk between command checks */
#define PAUSED_WAIT_US 100000 /* paused worker wakes this often to notice cancellation */
#define BACKGROUND_MAX 5000

typedef enum {
  CMD_TRAIN,
  CMD_PAUSE,
  CMD_STEP,
  CMD_STOP,
  CMD_SET,
  CMD_CONSTRAINT,
  CMD_SAMPLE,
  CMD_SAVE,
  CMD_SAMPLE_TASK,
} CmdKind;

typedef struct {
  CmdKind kind;
  int n, traj_n;
  char *key, *value;
  CfConstraint constraint;
  GTask *task; /* CMD_SAVE, CMD_SAMPLE_TASK: completed by the worker */
  ConformSampleOptions opts; /* CMD_SAMPLE_TASK (strategy and sampler owned) */
  char **strategies;         /* CMD_SAMPLE_TASK: one set each (NULL: opts.strategy) */
} Cmd;

static void
cmd_free(Cmd *c)
{
  g_free(c->key);
  g_free(c->value);
  cf_constraint_clear(&c->constraint);
  if (c->task && c->kind == CMD_SAMPLE_TASK) /* never started: the run stopped first */
    g_task_return_new_error(c->task, CONFORM_ERROR, CONFORM_ERROR_CANCELLED, "the run stopped before sampling");
  g_clear_object(&c->task);
  g_free((char *)c->opts.strategy);
  g_free((char *)c->opts.sampler);
  g_strfreev(c->strategies);
  g_free(c);
}

/* An explicit sample set being drawn: denoising step done of total. */
typedef struct {
  gboolean active;
  int n;
  long done, total;
  double seconds;
} SamplingProgress;

/* What the worker hands to the main thread (guarded by ConformRun.lock). */
typedef struct {
  GArray *records;            /* new ConformTrainRecord */
  gboolean records_reset;     /* records is the whole history (the engine rolled back after NaN) */
  ConformSampleSet *samples;  /* newest sample set (older ones are dropped) */
  GPtrArray *messages;        /* char* ("E:" prefix for errors) */
  gboolean have_sampling;
  SamplingProgress sampling;
  gboolean have_state;
  ConformRunState state;
  long step;
  double steps_per_second, train_seconds;
  ConformConfig *config;      /* new config after a live change */
  CfConstraint *constraint;   /* new validated constraint */
  char *constraint_summary;
  gboolean ready;
  float *train_raw;
  int train_raw_n, dim;
  double *pca_basis, *pca_mean; /* 2 x dim and dim, dim > 3 only */
  float *ref;                   /* held-out rows (raw space), data.inputs > 0 only */
  int ref_n;
} Outbox;

struct _ConformRun {
  GObject parent_instance;

  /* immutable after construction */
  ConformConfig initial;
  char *load_dir;
  GMainContext *main_ctx;

  /* worker side */
  GThread *thread;
  GAsyncQueue *commands;
  GCancellable *cancellable;
  GTask *task; /* start_async; returned from the worker */

  /* shared: progress buffer */
  GMutex lock;
  Outbox out;
  gboolean idle_pending;

  /* shared: sampling (one job in flight, newest request waiting) */
  gboolean sampling;
  GThread *sample_thread; /* worker-owned: the latest job's thread, joined before the next and at the end */
  ConformSampleSet *latest; /* newest sample set, for saving from the worker */

  /* main-thread state */
  ConformRunState state;
  long step;
  double steps_per_second, train_seconds;
  int dim;
  ConformConfig config;
  CfConstraint constraint;
  char *constraint_summary;
  GArray *records;
  ConformSampleSet *samples;
  float *train_raw;
  int train_raw_n;
  double *pca_basis, *pca_mean;
  float *ref;
  int ref_n;
  int blas_threads;
  long inject_nan_step; /* CONFORM_DEBUG_NAN_STEP when the run was created (0 = off) */
  double preview_interval; /* set on the main thread, read by the worker: guarded by lock */
  SamplingProgress sampling_progress;
};

G_DEFINE_FINAL_TYPE(ConformRun, conform_run, G_TYPE_OBJECT)

enum { SIG_READY, SIG_PROGRESS, SIG_SAMPLES, SIG_STATE_CHANGED, SIG_MESSAGE, SIG_SAMPLING, N_SIGNALS };
static guint signals[N_SIGNALS];

/* ---- main thread: flushing the outbox --------------------------------------- */

static gboolean
flush_cb(gpointer data)
{
  ConformRun *self = data;
  Outbox o;
  g_mutex_lock(&self->lock);
  o = self->out;
  memset(&self->out, 0, sizeof self->out);
  self->idle_pending = FALSE;
  g_mutex_unlock(&self->lock);

  if (o.ready) {
    self->dim = o.dim;
    g_free(self->train_raw);
    self->train_raw = g_steal_pointer(&o.train_raw);
    self->train_raw_n = o.train_raw_n;
    g_free(self->pca_basis);
    g_free(self->pca_mean);
    self->pca_basis = g_steal_pointer(&o.pca_basis);
    self->pca_mean = g_steal_pointer(&o.pca_mean);
    g_free(self->ref);
    self->ref = g_steal_pointer(&o.ref);
    self->ref_n = o.ref_n;
  }
  if (o.config) {
    conform_config_clear(&self->config);
    self->config = *o.config;
    g_free(o.config);
  }
  if (o.constraint) {
    cf_constraint_clear(&self->constraint);
    self->constraint = *o.constraint;
    g_free(o.constraint);
  }
  if (o.constraint_summary) {
    g_free(self->constraint_summary);
    self->constraint_summary = g_steal_pointer(&o.constraint_summary);
  }
  /* State first, so "ready" handlers see the state that came with it. */
  gboolean state_changed = FALSE;
  if (o.have_state) {
    state_changed = self->state != o.state;
    self->state = o.state;
    self->step = o.step;
    self->steps_per_second = o.steps_per_second;
    self->train_seconds = o.train_seconds;
  }
  if (o.ready)
    g_signal_emit(self, signals[SIG_READY], 0);
  if (state_changed)
    g_signal_emit(self, signals[SIG_STATE_CHANGED], 0);
  if (o.records_reset) {
    /* Rolled back: the records past the restored step are gone. */
    g_array_set_size(self->records, 0);
    g_array_append_vals(self->records, o.records->data, o.records->len);
    g_signal_emit(self, signals[SIG_PROGRESS], 0, 0u);
  } else if (o.records && o.records->len > 0) {
    guint first = self->records->len;
    g_array_append_vals(self->records, o.records->data, o.records->len);
    g_signal_emit(self, signals[SIG_PROGRESS], 0, first);
  }
  if (o.records)
    g_array_unref(o.records);
  if (o.have_sampling) {
    self->sampling_progress = o.sampling;
    g_signal_emit(self, signals[SIG_SAMPLING], 0);
  }
  if (o.samples) {
    if (self->samples)
      conform_sample_set_unref(self->samples);
    self->samples = o.samples;
    g_signal_emit(self, signals[SIG_SAMPLES], 0, self->samples);
  }
  if (o.messages) {
    for (guint i = 0; i < o.messages->len; i++) {
      const char *m = g_ptr_array_index(o.messages, i);
      gboolean err = g_str_has_prefix(m, "E:");
      g_signal_emit(self, signals[SIG_MESSAGE], 0, m + 2, err);
    }
    g_ptr_array_unref(o.messages);
  }
  return G_SOURCE_REMOVE;
}

/* Called with the lock held: makes sure one idle flush is pending. */
static void
schedule_flush_locked(ConformRun *self)
{
  if (self->idle_pending)
    return;
  self->idle_pending = TRUE;
  GSource *src = g_idle_source_new();
  g_source_set_priority(src, G_PRIORITY_DEFAULT);
  g_source_set_callback(src, flush_cb, g_object_ref(self), g_object_unref);
  g_source_set_static_name(src, "[conform] run flush");
  g_source_attach(src, self->main_ctx);
  g_source_unref(src);
}

static void
post_message(ConformRun *self, gboolean is_error, const char *text)
{
  g_mutex_lock(&self->lock);
  if (!self->out.messages)
    self->out.messages = g_ptr_array_new_with_free_func(g_free);
  g_ptr_array_add(self->out.messages, g_strconcat(is_error ? "E:" : "I:", text, NULL));
  schedule_flush_locked(self);
  g_mutex_unlock(&self->lock);
}

static void
post_state(ConformRun *self, ConformEngine *e, ConformRunState state, double sps)
{
  g_mutex_lock(&self->lock);
  self->out.have_state = TRUE;
  self->out.state = state;
  self->out.step = e ? conform_engine_step(e) : 0;
  self->out.steps_per_second = sps;
  const GArray *rec = e ? conform_engine_records(e) : NULL;
  self->out.train_seconds = rec && rec->len ? g_array_index(rec, ConformTrainRecord, rec->len - 1).seconds : 0;
  schedule_flush_locked(self);
  g_mutex_unlock(&self->lock);
}

static void
post_records(ConformRun *self, ConformEngine *e, guint *sent)
{
  const GArray *rec = conform_engine_records(e);
  if (rec->len < *sent) {
    /* Rolled back after NaN: records already sent are gone, so the main
     * thread gets the whole history in place of its own (and of anything
     * still pending). */
    g_mutex_lock(&self->lock);
    if (self->out.records)
      g_array_unref(self->out.records);
    self->out.records = g_array_sized_new(FALSE, FALSE, sizeof(ConformTrainRecord), rec->len);
    g_array_append_vals(self->out.records, rec->data, rec->len);
    self->out.records_reset = TRUE;
    schedule_flush_locked(self);
    g_mutex_unlock(&self->lock);
    *sent = rec->len;
    return;
  }
  if (rec->len == *sent)
    return;
  g_mutex_lock(&self->lock);
  if (!self->out.records)
    self->out.records = g_array_new(FALSE, FALSE, sizeof(ConformTrainRecord));
  g_array_append_vals(self->out.records, &g_array_index(rec, ConformTrainRecord, *sent), rec->len - *sent);
  schedule_flush_locked(self);
  g_mutex_unlock(&self->lock);
  *sent = rec->len;
}

static void
post_engine_info(ConformRun *self, ConformEngine *e, gboolean ready)
{
  ConformConfig *cfg = g_new0(ConformConfig, 1);
  conform_config_copy(cfg, conform_engine_config(e));
  CfConstraint *c = g_new0(CfConstraint, 1);
  cf_constraint_init(c);
  if (conform_engine_constraint(e)->m > 0)
    cf_constraint_copy(c, conform_engine_constraint(e), NULL);
  char *summary = conform_engine_constraint_summary(e);
  float *train = NULL, *ref = NULL;
  double *basis = NULL, *mean = NULL;
  int n = 0, ref_n = 0, dim = conform_engine_dim(e);
  if (ready) {
    train = conform_engine_copy_train_raw(e, BACKGROUND_MAX, &n);
    if (conform_engine_config(e)->inputs > 0) { /* the rows samples can be conditioned on */
      const float *r = conform_engine_reference(e, &ref_n);
      ref = r && ref_n > 0 ? g_memdup2(r, sizeof(float) * (gsize)ref_n * dim) : NULL;
      if (!ref)
        ref_n = 0;
    }
    if (dim > 3) {
      /* The plane of the two principal axes of the training data. */
      basis = g_new(double, 2 * dim);
      mean = g_new(double, dim);
      if (cf_pca(train, n, dim, 2, mean, basis, NULL) != CF_OK) {
        g_clear_pointer(&basis, g_free);
        g_clear_pointer(&mean, g_free);
      }
    }
  }
  g_mutex_lock(&self->lock);
  if (self->out.config) {
    conform_config_clear(self->out.config);
    g_free(self->out.config);
  }
  self->out.config = cfg;
  if (self->out.constraint) {
    cf_constraint_clear(self->out.constraint);
    g_free(self->out.constraint);
  }
  self->out.constraint = c;
  g_free(self->out.constraint_summary);
  self->out.constraint_summary = summary;
  if (ready) {
    self->out.ready = TRUE;
    self->out.train_raw = train;
    self->out.train_raw_n = n;
    self->out.dim = dim;
    g_free(self->out.pca_basis);
    g_free(self->out.pca_mean);
    self->out.pca_basis = basis;
    self->out.pca_mean = mean;
    g_free(self->out.ref);
    self->out.ref = ref;
    self->out.ref_n = ref_n;
  }
  schedule_flush_locked(self);
  g_mutex_unlock(&self->lock);
}

/* Background threads run at a lower scheduling priority (Linux: per-thread
 * nice), so on a 2-core machine the main loop is never starved by training
 * and sampling. Failure is harmless: they then run at normal priority. */
static void
lower_thread_priority(void)
{
#ifdef __linux__
  (void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 10);
#endif
}

/* ---- sampling thread ---------------------------------------------------------- */

/* Hands a sample set (reference taken over) to the main thread and keeps it
 * as the newest for saving. Any thread. */
static void
publish_samples(ConformRun *self, ConformSampleSet *set)
{
  g_mutex_lock(&self->lock);
  if (self->out.samples)
    conform_sample_set_unref(self->out.samples);
  self->out.samples = set;
  if (self->latest)
    conform_sample_set_unref(self->latest);
  self->latest = conform_sample_set_ref(set);
  schedule_flush_locked(self);
  g_mutex_unlock(&self->lock);
}

typedef struct {
  ConformRun *self;
  ConformSampler *sampler;
  ConformSampleOptions opts;
  int traj_n;
  GTask *task;       /* conform_run_sample_async: the sets go to the task, not to the views */
  char **strategies; /* with task: one set per strategy (NULL: opts.strategy) */
  gint64 t0, last_report; /* explicit samples: progress (sample_progress_cb) */
} SampleJob;

/* Explicit sample sets (Sample now, the end of training, an opened
 * experiment) of images take a minute or more: the window shows how far
 * they are ("sampling-progress"), updated at most four times a second.
 * Previews during training are not reported. */
#define SAMPLE_REPORT_US 250000

static void
post_sampling(ConformRun *self, gboolean active, int n, long done, long total, double seconds)
{
  g_mutex_lock(&self->lock);
  self->out.have_sampling = TRUE;
  self->out.sampling = (SamplingProgress){active, n, done, total, seconds};
  schedule_flush_locked(self);
  g_mutex_unlock(&self->lock);
}

static bool
sample_abort_cb(void *user)
{
  SampleJob *job = user;
  return g_cancellable_is_cancelled(job->self->cancellable);
}

static void
sample_progress_cb(void *user, long done, long total)
{
  SampleJob *job = user;
  gint64 now = g_get_monotonic_time();
  if (done < total && now - job->last_report < SAMPLE_REPORT_US)
    return;
  job->last_report = now;
  post_sampling(job->self, TRUE, job->opts.n, done, total, (double)(now - job->t0) / 1e6);
}

static bool
abort_cb(void *user)
{
  return g_cancellable_is_cancelled(G_CANCELLABLE(user));
}

static bool
task_abort_cb(void *user)
{
  SampleJob *job = user;
  GCancellable *c = g_task_get_cancellable(job->task);
  return g_cancellable_is_cancelled(job->self->cancellable) || (c && g_cancellable_is_cancelled(c));
}

/* A conform_run_sample_async job: every strategy in turn with the same
 * options (and seed), on this sampling thread. */
static void
run_task_job(SampleJob *job)
{
  GPtrArray *sets = g_ptr_array_new_with_free_func((GDestroyNotify)conform_sample_set_unref);
  GError *error = NULL;
  int n_runs = job->strategies ? (int)g_strv_length(job->strategies) : 1;
  for (int i = 0; i < n_runs && !error; i++) {
    ConformSampleOptions o = job->opts;
    if (job->strategies)
      o.strategy = job->strategies[i];
    ConformSampleSet *set = conform_sampler_run(job->sampler, &o, job->traj_n, task_abort_cb, NULL, job, &error);
    if (set)
      g_ptr_array_add(sets, set);
  }
  if (error)
    g_task_return_error(job->task, error);
  else
    g_task_return_pointer(job->task, g_ptr_array_ref(sets), (GDestroyNotify)g_ptr_array_unref);
  g_ptr_array_unref(sets);
}

static gpointer
sample_thread(gpointer data)
{
  SampleJob *job = data;
  ConformRun *self = job->self;
  g_autoptr(GError) error = NULL;
  lower_thread_priority();
  if (job->task) {
    run_task_job(job);
  } else {
    gboolean report = !job->opts.preview;
    job->t0 = g_get_monotonic_time();
    if (report)
      post_sampling(self, TRUE, job->opts.n, 0, 0, 0.0);
    ConformSampleSet *set = conform_sampler_run(job->sampler, &job->opts, job->traj_n, sample_abort_cb,
                                                report ? sample_progress_cb : NULL, job, &error);
    if (report) /* done, failed or cancelled: no longer sampling */
      post_sampling(self, FALSE, job->opts.n, 0, 0, (double)(g_get_monotonic_time() - job->t0) / 1e6);
    if (set)
      publish_samples(self, set);
    else if (!g_error_matches(error, CONFORM_ERROR, CONFORM_ERROR_CANCELLED)) {
      post_message(self, TRUE, error->message);
    }
  }
  conform_sampler_free(job->sampler);
  g_clear_object(&job->task);
  g_strfreev(job->strategies);
  g_free((char *)job->opts.strategy);
  g_free((char *)job->opts.sampler);
  g_mutex_lock(&self->lock);
  self->sampling = FALSE;
  g_mutex_unlock(&self->lock);
  g_object_unref(self);
  g_free(job);
  return NULL;
}

/* Starts a sampling job from a snapshot of the current parameters unless one
 * is already running. Returns FALSE when busy (the caller retries later). */
/* Automatic previews while training use DDIM with at most PREVIEW_STEPS
 * steps so they keep up with training; explicit requests and the end of
 * training use the experiment's own sampler settings. */
#define PREVIEW_STEPS 50

static gboolean
start_sampling(ConformRun *self, ConformEngine *e, int n, int traj_n, gboolean preview)
{
  g_mutex_lock(&self->lock);
  gboolean busy = self->sampling;
  if (!busy)
    self->sampling = TRUE;
  g_mutex_unlock(&self->lock);
  if (busy)
    return FALSE;
  g_autoptr(GError) error = NULL;
  ConformSampler *s = conform_engine_make_sampler(e, &error);
  if (!s) {
    post_message(self, TRUE, error->message);
    g_mutex_lock(&self->lock);
    self->sampling = FALSE;
    g_mutex_unlock(&self->lock);
    return TRUE;
  }
  const ConformConfig *cfg = conform_engine_config(e);
  SampleJob *job = g_new0(SampleJob, 1);
  job->self = g_object_ref(self);
  job->sampler = s;
  job->traj_n = traj_n;
  gboolean ddim = g_strcmp0(cfg->sampler, "ddim") == 0;
  job->opts = (ConformSampleOptions){
    .n = n > 0 ? n : cfg->n_samples,
    .strategy = g_strdup(cfg->strategy),
    .sampler = g_strdup(preview ? "ddim" : cfg->sampler),
    .sampling_steps = preview ? MIN(PREVIEW_STEPS, ddim ? cfg->sampling_steps : PREVIEW_STEPS) : cfg->sampling_steps,
    .eta = cfg->eta,
    .preview = preview,
    .preview_vae = preview, /* VAE: cheap held-out ELBO / log-likelihood for the live curves */
  };
  if (self->sample_thread) /* finished (sampling was FALSE): reap it */
    g_thread_join(self->sample_thread);
  self->sample_thread = g_thread_new("conform-sample", sample_thread, job);
  return TRUE;
}

/* Starts a conform_run_sample_async request (its command, whose task and
 * options it takes) on the sampling thread unless a job is running.
 * Returns FALSE when busy. */
static gboolean
start_task_sampling(ConformRun *self, ConformEngine *e, Cmd *c)
{
  g_mutex_lock(&self->lock);
  gboolean busy = self->sampling;
  if (!busy)
    self->sampling = TRUE;
  g_mutex_unlock(&self->lock);
  if (busy)
    return FALSE;
  GError *error = NULL;
  ConformSampler *s = conform_engine_make_sampler(e, &error);
  if (!s) {
    g_task_return_error(g_steal_pointer(&c->task), error);
    g_mutex_lock(&self->lock);
    self->sampling = FALSE;
    g_mutex_unlock(&self->lock);
    return TRUE;
  }
  SampleJob *job = g_new0(SampleJob, 1);
  job->self = g_object_ref(self);
  job->sampler = s;
  job->traj_n = c->n;
  job->opts = c->opts;
  memset(&c->opts, 0, sizeof c->opts); /* the job owns its strings now */
  job->task = g_steal_pointer(&c->task);
  job->strategies = g_steal_pointer(&c->strategies);
  if (self->sample_thread)
    g_thread_join(self->sample_thread);
  self->sample_thread = g_thread_new("conform-sample", sample_thread, job);
  return TRUE;
}

/* ---- worker thread ------------------------------------------------------------ */

typedef struct {
  ConformRun *self;
  ConformEngine *engine;
  gboolean training;
  long steps_pending;
  int sample_n, sample_traj; /* pending sample request, sample_n < 0 = none */
  gboolean sample_preview;   /* the pending request is an automatic preview */
  GQueue tasks;              /* pending CMD_SAMPLE_TASK commands, oldest first */
  guint records_sent;
  double sps;
  gint64 last_preview;
} Worker;

static void
worker_apply(Worker *w, Cmd *c)
{
  ConformRun *self = w->self;
  g_autoptr(GError) error = NULL;
  switch (c->kind) {
  case CMD_TRAIN:
    w->training = TRUE;
    break;
  case CMD_PAUSE:
    w->training = FALSE;
    w->steps_pending = 0;
    break;
  case CMD_STEP:
    w->training = FALSE;
    w->steps_pending += c->n;
    break;
  case CMD_STOP:
    break;
  case CMD_SET:
    if (conform_engine_set_live(w->engine, c->key, c->value, &error))
      post_engine_info(self, w->engine, FALSE);
    else
      post_message(self, TRUE, error->message);
    break;
  case CMD_CONSTRAINT:
    if (conform_engine_set_constraint(w->engine, &c->constraint, "editor", &error)) {
      post_engine_info(self, w->engine, FALSE);
      if (conform_engine_warnings(w->engine))
        post_message(self, FALSE, conform_engine_warnings(w->engine));
      /* At once: the current samples under the new constraint; then fresh
       * ones (projected-sampling has to rerun its chain anyway). */
      g_mutex_lock(&self->lock);
      ConformSampleSet *latest = self->latest ? conform_sample_set_ref(self->latest) : NULL;
      g_mutex_unlock(&self->lock);
      ConformSampleSet *now = latest ? conform_engine_reproject(w->engine, latest) : NULL;
      if (latest)
        conform_sample_set_unref(latest);
      if (now)
        publish_samples(self, now);
      w->sample_n = MAX(w->sample_n, 0);
    } else {
      post_message(self, TRUE, error->message);
    }
    break;
  case CMD_SAMPLE:
    w->sample_n = c->n;
    w->sample_traj = c->traj_n;
    w->sample_preview = FALSE;
    break;
  case CMD_SAMPLE_TASK: {
    /* refused at once when the condition row is out of range; otherwise
     * queued for the sampling thread (the command is kept: see the loop) */
    if (c->opts.use_condition && !conform_engine_check_condition(w->engine, c->opts.condition_row, &error)) {
      g_task_return_error(g_steal_pointer(&c->task), g_steal_pointer(&error));
      break;
    }
    Cmd *keep = g_new0(Cmd, 1);
    *keep = *c;
    memset(c, 0, sizeof *c);
    c->kind = CMD_SAMPLE_TASK;
    cf_constraint_init(&c->constraint);
    g_queue_push_tail(&w->tasks, keep);
    break;
  }
  case CMD_SAVE: {
    const char *dir = c->key;
    /* the newest sample set, if any, goes into samples.csv/summary.tsv */
    g_mutex_lock(&self->lock);
    ConformSampleSet *set = self->latest ? conform_sample_set_ref(self->latest) : NULL;
    g_mutex_unlock(&self->lock);
    gboolean ok = conform_engine_save(w->engine, dir, set ? set->x : NULL, set ? set->n : 0,
                                      set ? &set->summary : NULL, &error);
    if (set)
      conform_sample_set_unref(set);
    if (ok)
      g_task_return_boolean(c->task, TRUE);
    else
      g_task_return_error(c->task, g_steal_pointer(&error));
    break;
  }
  }
}

static gpointer
worker_main(gpointer data)
{
  ConformRun *self = data;
  GTask *task = self->task;
  Worker w = {self, NULL, FALSE, 0, -1, 0, 0, G_QUEUE_INIT, 0, 0, 0};
  g_autoptr(GError) error = NULL;
  lower_thread_priority();
  /* BLAS threads, set explicitly: by default 1, since training and sampling
   * run side by side on their own threads. */
  openblas_set_num_threads(self->blas_threads);

  w.engine = self->load_dir ? conform_engine_load(self->load_dir, &error) : conform_engine_new(&self->initial, &error);
  if (!w.engine) {
    post_state(self, NULL, CONFORM_RUN_STOPPED, 0);
    g_task_return_error(task, g_steal_pointer(&error));
    g_object_unref(task);
    return NULL;
  }
  if (self->inject_nan_step > 0) /* fault injection for tests, as the CLI does */
    conform_engine_debug_inject_nan(w.engine, self->inject_nan_step);
  post_engine_info(self, w.engine, TRUE);
  if (conform_engine_warnings(w.engine))
    post_message(self, FALSE, conform_engine_warnings(w.engine));
  post_records(self, w.engine, &w.records_sent);
  post_state(self, w.engine, CONFORM_RUN_PAUSED, 0);
  if (conform_engine_step(w.engine) > 0)
    w.sample_n = 0; /* a loaded run shows its samples at once */

  gboolean stop = FALSE;
  ConformRunState last_state = CONFORM_RUN_PAUSED;
  while (!stop && !g_cancellable_is_cancelled(self->cancellable)) {
    gboolean busy = w.training || w.steps_pending > 0;
    if (!busy && last_state != CONFORM_RUN_PAUSED) {
      /* Done (Step's count, the configured steps): say so before waiting
       * for the next command, not after. */
      post_state(self, w.engine, CONFORM_RUN_PAUSED, w.sps);
      last_state = CONFORM_RUN_PAUSED;
    }
    Cmd *c = busy ? g_async_queue_try_pop(self->commands) : g_async_queue_timeout_pop(self->commands, PAUSED_WAIT_US);
    for (; c; c = g_async_queue_try_pop(self->commands)) {
      if (c->kind == CMD_STOP)
        stop = TRUE;
      worker_apply(&w, c);
      cmd_free(c);
    }
    if (stop)
      break;
    busy = w.training || w.steps_pending > 0;
    ConformRunState st = busy ? CONFORM_RUN_TRAINING : CONFORM_RUN_PAUSED;
    if (st != last_state) {
      post_state(self, w.engine, st, w.sps);
      last_state = st;
    }
    if (busy) {
      /* A chunk of about CHUNK_SECONDS, sized from the measured speed. */
      long n = CLAMP((long)(w.sps * CHUNK_SECONDS), 1, 5000);
      long target = conform_config_total_steps(conform_engine_config(w.engine)), at = conform_engine_step(w.engine);
      if (!w.training)
        n = MIN(n, w.steps_pending);
      else if (at < target)
        n = MIN(n, target - at); /* stop exactly at the configured step count */
      conform_engine_forget_command(w.engine); /* `conform train` made it; the window trains on */
      gint64 t0 = g_get_monotonic_time();
      gboolean ok = conform_engine_train(w.engine, n, abort_cb, NULL, self->cancellable, &error);
      double dt = (double)(g_get_monotonic_time() - t0) / 1e6;
      if (ok) {
        double inst = (double)n / MAX(dt, 1e-6);
        w.sps = w.sps > 0 ? 0.7 * w.sps + 0.3 * inst : inst;
        if (!w.training)
          w.steps_pending -= n;
      }
      post_records(self, w.engine, &w.records_sent);
      post_state(self, w.engine, st, w.sps);
      if (!ok) {
        if (g_error_matches(error, CONFORM_ERROR, CONFORM_ERROR_CANCELLED))
          break;
        /* NaN: the engine restored its last good state; pause and say so. */
        post_message(self, TRUE, error->message);
        g_clear_error(&error);
        w.training = FALSE;
        w.steps_pending = 0;
        post_state(self, w.engine, CONFORM_RUN_PAUSED, w.sps);
        last_state = CONFORM_RUN_PAUSED;
        w.sample_n = MAX(w.sample_n, 0);
      }
      gint64 now = g_get_monotonic_time();
      g_mutex_lock(&self->lock);
      double interval = self->preview_interval;
      g_mutex_unlock(&self->lock);
      if (w.training && interval > 0 && (double)(now - w.last_preview) / 1e6 >= interval && w.sample_n < 0) {
        w.sample_n = 0;
        w.sample_preview = TRUE;
      }
      /* Reached the configured number of steps: pause and sample. */
      if (w.training && conform_engine_step(w.engine) >= conform_config_total_steps(conform_engine_config(w.engine))) {
        w.training = FALSE;
        w.sample_n = MAX(w.sample_n, 0);
        w.sample_preview = FALSE;
        post_message(self, FALSE, "reached the configured number of training steps; paused");
      }
    }
    /* requests with their own options first: the user is waiting for them */
    if (!g_queue_is_empty(&w.tasks) && start_task_sampling(self, w.engine, g_queue_peek_head(&w.tasks)))
      cmd_free(g_queue_pop_head(&w.tasks));
    if (w.sample_n >= 0 &&
        start_sampling(self, w.engine, w.sample_n, w.sample_traj > 0 ? w.sample_traj : 200, w.sample_preview)) {
      w.sample_n = -1;
      w.sample_traj = 0;
      w.sample_preview = FALSE;
      w.last_preview = g_get_monotonic_time();
    }
  }
  /* Drain: complete pending saves so their callers are not left waiting
   * (sample requests not started are cancelled by cmd_free). */
  for (Cmd *c; (c = g_async_queue_try_pop(self->commands));) {
    if (c->kind == CMD_SAVE)
      worker_apply(&w, c);
    cmd_free(c);
  }
  for (Cmd *c; (c = g_queue_pop_head(&w.tasks));)
    cmd_free(c);
  /* Join an in-flight sampling job (cancelled with us) before saying
   * STOPPED, so no thread outlives the run's work: a program that quits once
   * its runs stopped must not exit under a sampler still inside BLAS. */
  if (self->sample_thread) {
    g_thread_join(self->sample_thread);
    self->sample_thread = NULL;
  }
  post_state(self, w.engine, CONFORM_RUN_STOPPED, w.sps);
  conform_engine_free(w.engine);
  g_task_return_boolean(task, TRUE);
  g_object_unref(task);
  return NULL;
}

/* ---- GObject ----------------------------------------------------------------- */

static void
conform_run_dispose(GObject *object)
{
  ConformRun *self = CONFORM_RUN(object);
  if (self->thread) {
    /* Never reached with the worker alive: it holds a reference via the task. */
    g_thread_join(self->thread);
    self->thread = NULL;
  }
  G_OBJECT_CLASS(conform_run_parent_class)->dispose(object);
}

static void
conform_run_finalize(GObject *object)
{
  ConformRun *self = CONFORM_RUN(object);
  conform_config_clear(&self->initial);
  conform_config_clear(&self->config);
  cf_constraint_clear(&self->constraint);
  g_free(self->load_dir);
  g_free(self->constraint_summary);
  g_free(self->train_raw);
  g_free(self->pca_basis);
  g_free(self->pca_mean);
  g_free(self->ref);
  g_free(self->out.ref);
  g_free(self->out.pca_basis);
  g_free(self->out.pca_mean);
  g_array_unref(self->records);
  if (self->samples)
    conform_sample_set_unref(self->samples);
  if (self->latest)
    conform_sample_set_unref(self->latest);
  g_async_queue_unref(self->commands);
  g_clear_object(&self->cancellable);
  g_main_context_unref(self->main_ctx);
  g_mutex_clear(&self->lock);
  /* Anything the worker posted after the last flush. */
  if (self->out.records)
    g_array_unref(self->out.records);
  if (self->out.samples)
    conform_sample_set_unref(self->out.samples);
  if (self->out.messages)
    g_ptr_array_unref(self->out.messages);
  if (self->out.config) {
    conform_config_clear(self->out.config);
    g_free(self->out.config);
  }
  if (self->out.constraint) {
    cf_constraint_clear(self->out.constraint);
    g_free(self->out.constraint);
  }
  g_free(self->out.constraint_summary);
  g_free(self->out.train_raw);
  G_OBJECT_CLASS(conform_run_parent_class)->finalize(object);
}

static void
conform_run_class_init(ConformRunClass *klass)
{
  GObjectClass *oc = G_OBJECT_CLASS(klass);
  oc->dispose = conform_run_dispose;
  oc->finalize = conform_run_finalize;
  signals[SIG_READY] = g_signal_new("ready", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                                    G_TYPE_NONE, 0);
  signals[SIG_PROGRESS] = g_signal_new("progress", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                                       G_TYPE_NONE, 1, G_TYPE_UINT);
  signals[SIG_SAMPLES] = g_signal_new("samples", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                                      G_TYPE_NONE, 1, G_TYPE_POINTER);
  signals[SIG_STATE_CHANGED] = g_signal_new("state-changed", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL,
                                            NULL, NULL, G_TYPE_NONE, 0);
  signals[SIG_MESSAGE] = g_signal_new("message", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                                      G_TYPE_NONE, 2, G_TYPE_STRING, G_TYPE_BOOLEAN);
  /* an explicit sample set started, advanced or ended: conform_run_get_sampling() */
  signals[SIG_SAMPLING] = g_signal_new("sampling-progress", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL,
                                       NULL, NULL, G_TYPE_NONE, 0);
}

static void
conform_run_init(ConformRun *self)
{
  g_mutex_init(&self->lock);
  self->commands = g_async_queue_new_full((GDestroyNotify)cmd_free);
  self->cancellable = g_cancellable_new();
  self->records = g_array_new(FALSE, FALSE, sizeof(ConformTrainRecord));
  self->main_ctx = g_main_context_ref_thread_default();
  self->state = CONFORM_RUN_STARTING;
  self->preview_interval = 1.0;
  self->blas_threads = 1;
  conform_config_init(&self->config);
  cf_constraint_init(&self->constraint);
}

static void
send(ConformRun *self, Cmd *c)
{
  g_async_queue_push(self->commands, c);
}

/* ---- public API ---------------------------------------------------------------- */

ConformRun *
conform_run_new(const ConformConfig *cfg, const char *load_dir)
{
  g_return_val_if_fail(cfg != NULL || load_dir != NULL, NULL);
  ConformRun *self = g_object_new(CONFORM_TYPE_RUN, NULL);
  conform_config_init(&self->initial);
  if (cfg) {
    conform_config_clear(&self->initial);
    conform_config_copy(&self->initial, cfg);
    conform_config_clear(&self->config);
    conform_config_copy(&self->config, cfg);
  }
  self->load_dir = g_strdup(load_dir);
  /* Read here, on the creating thread (the worker must not call getenv
   * while the main thread may setenv). */
  const char *inject = g_getenv("CONFORM_DEBUG_NAN_STEP");
  if (inject)
    self->inject_nan_step = MAX(g_ascii_strtoll(inject, NULL, 10), 0);
  return self;
}

/* What the caller's cancellable needs to stop the worker (references). */
typedef struct {
  GCancellable *inner;
  GAsyncQueue *commands;
} OuterCancel;

static void
outer_cancel_free(gpointer data)
{
  OuterCancel *oc = data;
  g_object_unref(oc->inner);
  g_async_queue_unref(oc->commands);
  g_free(oc);
}

static Cmd *cmd_new(CmdKind kind);

/* The caller's cancellable fired: cancel ours (the worker polls it) and wake
 * a paused worker at once (it would otherwise notice within PAUSED_WAIT_US). */
static void
outer_cancelled_cb(GCancellable *outer, gpointer data)
{
  OuterCancel *oc = data;
  g_cancellable_cancel(oc->inner);
  g_async_queue_push(oc->commands, cmd_new(CMD_STOP));
}

void
conform_run_start_async(ConformRun *self, GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data)
{
  g_return_if_fail(CONFORM_IS_RUN(self));
  g_return_if_fail(self->thread == NULL);
  self->task = g_task_new(self, cancellable, callback, user_data);
  g_task_set_source_tag(self->task, conform_run_start_async);
  if (cancellable) { /* ("cancelled" passes the emitting cancellable first: cancel ours in a callback) */
    OuterCancel *oc = g_new0(OuterCancel, 1);
    oc->inner = g_object_ref(self->cancellable);
    oc->commands = g_async_queue_ref(self->commands);
    g_cancellable_connect(cancellable, G_CALLBACK(outer_cancelled_cb), oc, outer_cancel_free);
  }
  /* The task (holding a reference to self) is returned by the worker. */
  self->thread = g_thread_new("conform-worker", worker_main, self);
}

gboolean
conform_run_start_finish(ConformRun *self, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail(g_task_is_valid(result, self), FALSE);
  if (self->thread) {
    g_thread_join(self->thread);
    self->thread = NULL;
  }
  return g_task_propagate_boolean(G_TASK(result), error);
}

static Cmd *
cmd_new(CmdKind kind)
{
  Cmd *c = g_new0(Cmd, 1);
  c->kind = kind;
  cf_constraint_init(&c->constraint);
  return c;
}

void
conform_run_train(ConformRun *self)
{
  g_return_if_fail(CONFORM_IS_RUN(self));
  send(self, cmd_new(CMD_TRAIN));
}

void
conform_run_pause(ConformRun *self)
{
  g_return_if_fail(CONFORM_IS_RUN(self));
  send(self, cmd_new(CMD_PAUSE));
}

void
conform_run_step(ConformRun *self, int n_steps)
{
  g_return_if_fail(CONFORM_IS_RUN(self));
  g_return_if_fail(n_steps > 0);
  Cmd *c = cmd_new(CMD_STEP);
  c->n = n_steps;
  send(self, c);
}

void
conform_run_stop(ConformRun *self)
{
  g_return_if_fail(CONFORM_IS_RUN(self));
  send(self, cmd_new(CMD_STOP));
  g_cancellable_cancel(self->cancellable);
}

void
conform_run_set(ConformRun *self, const char *key, const char *value)
{
  g_return_if_fail(CONFORM_IS_RUN(self));
  Cmd *c = cmd_new(CMD_SET);
  c->key = g_strdup(key);
  c->value = g_strdup(value);
  send(self, c);
}

void
conform_run_set_constraint(ConformRun *self, const CfConstraint *con)
{
  g_return_if_fail(CONFORM_IS_RUN(self));
  Cmd *c = cmd_new(CMD_CONSTRAINT);
  if (con && con->m > 0)
    cf_constraint_copy(&c->constraint, con, NULL);
  send(self, c);
}

void
conform_run_request_samples(ConformRun *self, int n, int traj_n)
{
  g_return_if_fail(CONFORM_IS_RUN(self));
  Cmd *c = cmd_new(CMD_SAMPLE);
  c->n = n;
  c->traj_n = traj_n;
  send(self, c);
}

void
conform_run_sample_async(ConformRun *self, const ConformSampleOptions *opts, const char *const *strategies,
                         int traj_n, GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data)
{
  g_return_if_fail(CONFORM_IS_RUN(self));
  g_return_if_fail(opts != NULL);
  GTask *task = g_task_new(self, cancellable, callback, user_data);
  g_task_set_source_tag(task, conform_run_sample_async);
  if (self->state == CONFORM_RUN_STOPPED || !self->thread) {
    g_task_return_new_error(task, CONFORM_ERROR, CONFORM_ERROR_CANCELLED, "the run has stopped; nothing to sample");
    g_object_unref(task);
    return;
  }
  Cmd *c = cmd_new(CMD_SAMPLE_TASK);
  c->opts = *opts;
  c->opts.strategy = g_strdup(opts->strategy);
  c->opts.sampler = g_strdup(opts->sampler);
  c->strategies = strategies && strategies[0] ? g_strdupv((char **)strategies) : NULL;
  c->n = MAX(traj_n, 0);
  c->task = task;
  send(self, c);
}

GPtrArray *
conform_run_sample_finish(ConformRun *self, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail(g_task_is_valid(result, self), NULL);
  return g_task_propagate_pointer(G_TASK(result), error);
}

const float *
conform_run_get_reference(ConformRun *self, int *n)
{
  g_return_val_if_fail(CONFORM_IS_RUN(self), NULL);
  if (n)
    *n = self->ref_n;
  return self->ref;
}

void
conform_run_set_blas_threads(ConformRun *self, int threads)
{
  g_return_if_fail(CONFORM_IS_RUN(self));
  g_return_if_fail(self->thread == NULL);
  self->blas_threads = CLAMP(threads, 1, 64);
}

void
conform_run_set_preview_interval(ConformRun *self, double seconds)
{
  g_return_if_fail(CONFORM_IS_RUN(self));
  g_mutex_lock(&self->lock);
  self->preview_interval = seconds;
  g_mutex_unlock(&self->lock);
}

void
conform_run_save_async(ConformRun *self, const char *dir, GCancellable *cancellable, GAsyncReadyCallback callback,
                       gpointer user_data)
{
  g_return_if_fail(CONFORM_IS_RUN(self));
  GTask *task = g_task_new(self, cancellable, callback, user_data);
  g_task_set_source_tag(task, conform_run_save_async);
  if (self->state == CONFORM_RUN_STOPPED || !self->thread) {
    g_task_return_new_error(task, CONFORM_ERROR, CONFORM_ERROR_IO, "the run has stopped; nothing to save");
    g_object_unref(task);
    return;
  }
  Cmd *c = cmd_new(CMD_SAVE);
  c->key = g_strdup(dir);
  c->task = task;
  send(self, c);
}

gboolean
conform_run_save_finish(ConformRun *self, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail(g_task_is_valid(result, self), FALSE);
  return g_task_propagate_boolean(G_TASK(result), error);
}

ConformRunState conform_run_get_state(ConformRun *self) { return self->state; }
long conform_run_get_step(ConformRun *self) { return self->step; }
double conform_run_get_steps_per_second(ConformRun *self) { return self->steps_per_second; }
double conform_run_get_train_seconds(ConformRun *self) { return self->train_seconds; }
int conform_run_get_dim(ConformRun *self) { return self->dim; }
const ConformConfig *conform_run_get_config(ConformRun *self) { return &self->config; }

gboolean
conform_run_get_sampling(ConformRun *self, int *n, double *fraction, double *seconds)
{
  const SamplingProgress *p = &self->sampling_progress;
  if (n)
    *n = p->n;
  if (fraction)
    *fraction = p->total > 0 ? (double)p->done / (double)p->total : 0.0;
  if (seconds)
    *seconds = p->seconds;
  return p->active;
}
const CfConstraint *conform_run_get_constraint(ConformRun *self) { return &self->constraint; }
const GArray *conform_run_get_records(ConformRun *self) { return self->records; }
ConformSampleSet *conform_run_get_samples(ConformRun *self) { return self->samples; }

const char *
conform_run_get_constraint_summary(ConformRun *self)
{
  return self->constraint_summary ? self->constraint_summary : "";
}

const float *
conform_run_get_train_data(ConformRun *self, int *n)
{
  *n = self->train_raw_n;
  return self->train_raw;
}

gboolean
conform_run_get_projection(ConformRun *self, const double **basis, const double **center)
{
  *basis = self->pca_basis;
  *center = self->pca_mean;
  return self->pca_basis != NULL;
}
