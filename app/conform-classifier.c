#define G_LOG_DOMAIN "conform"

#include "conform-classifier.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "checkpoint.h"
#include "conform-cli.h"
#include "conform-config.h"
#include "conform-images.h"
#include "conform-io.h"
#include "metrics.h"
#include "optim.h"

#define EVAL_CHUNK 256
/* The evaluator's graph (values and gradients of every layer) grows with its
 * rows per chunk: at most this many floats (256 MiB), so big images are
 * evaluated in smaller chunks (the bundled 28 x 28 classifier keeps 256). */
#define EVAL_MAX_FLOATS ((size_t)1 << 26)
#define MAX_CKPT_BYTES ((gsize)256 << 20)

struct _ConformClassifier {
  CfClassifierConfig cfg;
  CfClassifierEval eval;
  GMutex lock; /* guards eval */
  char *path;
  long steps;
  guint64 seed;
  double accuracy;
};

static gboolean
core_error(GError **error, const CfError *err)
{
  g_set_error_literal(error, CONFORM_ERROR, CONFORM_ERROR_INPUT, err->msg);
  return FALSE;
}

/* ---- data directory ------------------------------------------------------------- */

const char *
conform_data_dir(void)
{
  const char *env = g_getenv("CONFORM_DATA_DIR");
  if (env && *env)
    return env;
  if (g_file_test(CONFORM_INSTALLED_DATADIR "/models", G_FILE_TEST_IS_DIR))
    return CONFORM_INSTALLED_DATADIR;
  return CONFORM_SOURCE_DATADIR;
}

char *
conform_classifier_bundled_path(int side)
{
  g_autofree char *name = g_strdup_printf("classifier-fashion%d.ckpt", side);
  return g_build_filename(conform_data_dir(), "models", name, NULL);
}

char *
conform_pretrained_dir(int image_size)
{
  g_autofree char *name = g_strdup_printf("fashion%d", image_size);
  g_autofree char *dir = g_build_filename(conform_data_dir(), "pretrained", name, NULL);
  g_autofree char *weights = g_build_filename(dir, "weights.ckpt", NULL);
  if (image_size <= 0 || !g_file_test(dir, G_FILE_TEST_IS_DIR) || !g_file_test(weights, G_FILE_TEST_IS_REGULAR))
    return NULL;
  return g_steal_pointer(&dir);
}

/* ---- construction, loading, saving ------------------------------------------------ */

static ConformClassifier *
classifier_new(const CfClassifierConfig *cfg, GError **error)
{
  CfError err;
  /* the graph's floats for one row give the chunk that fits EVAL_MAX_FLOATS */
  CfClassifierEval probe;
  if (cf_classifier_eval_init(&probe, cfg, 1, &err) != CF_OK) {
    core_error(error, &err);
    return NULL;
  }
  const size_t per_row = cf_graph_arena_floats(probe.g);
  cf_classifier_eval_clear(&probe);
  if (per_row > EVAL_MAX_FLOATS) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_INPUT,
                "classifier: evaluating one %d x %d image needs %zu MiB, more than the limit of %zu MiB", cfg->H,
                cfg->W, per_row * sizeof(float) >> 20, EVAL_MAX_FLOATS * sizeof(float) >> 20);
    return NULL;
  }
  const int chunk = (int)MIN((size_t)EVAL_CHUNK, EVAL_MAX_FLOATS / MAX(per_row, 1));
  ConformClassifier *clf = g_new0(ConformClassifier, 1);
  if (cf_classifier_eval_init(&clf->eval, cfg, chunk, &err) != CF_OK) {
    core_error(error, &err);
    g_free(clf);
    return NULL;
  }
  clf->cfg = *cfg;
  g_mutex_init(&clf->lock);
  clf->steps = -1;
  clf->accuracy = NAN;
  return clf;
}

void
conform_classifier_free(ConformClassifier *clf)
{
  if (!clf)
    return;
  cf_classifier_eval_clear(&clf->eval);
  g_mutex_clear(&clf->lock);
  g_free(clf->path);
  g_free(clf);
}

static gboolean
header_long(const CfCheckpoint *ck, const char *path, const char *key, long lo, long hi, long *out, GError **error)
{
  g_autofree char *v = cf_checkpoint_header_get(ck, key);
  if (!v) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_INPUT, "%s: not a usable classifier checkpoint: header lacks '%s'",
                path, key);
    return FALSE;
  }
  char *end;
  long x = strtol(v, &end, 10);
  if (end == v || *end != '\0' || x < lo || x > hi) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_INPUT, "%s: header value %s=%s is not an integer in [%ld, %ld]",
                path, key, v, lo, hi);
    return FALSE;
  }
  *out = x;
  return TRUE;
}

ConformClassifier *
conform_classifier_load(const char *path, GError **error)
{
  g_autofree char *bundled = NULL;
  if (!path)
    path = bundled = conform_classifier_bundled_path(28);
  char *buf = NULL;
  gsize len = 0;
  if (!conform_read_file(path, MAX_CKPT_BYTES, &buf, &len, error))
    return NULL;
  CfCheckpoint ck;
  CfError err;
  CfStatus st = cf_checkpoint_decode(&ck, (const unsigned char *)buf, len, path, &err);
  g_free(buf);
  if (st != CF_OK) {
    core_error(error, &err);
    return NULL;
  }
  ConformClassifier *clf = conform_classifier_new_from_checkpoint(&ck, path, error);
  cf_checkpoint_clear(&ck);
  return clf;
}

ConformClassifier *
conform_classifier_new_from_checkpoint(const CfCheckpoint *ck, const char *origin, GError **error)
{
  g_return_val_if_fail(ck != NULL, NULL);
  const char *path = origin ? origin : "(checkpoint)";
  CfError err;
  ConformClassifier *clf = NULL;
  g_autofree char *model = cf_checkpoint_header_get(ck, "model");
  g_autofree char *arch = cf_checkpoint_header_get(ck, "arch");
  g_autofree char *act = cf_checkpoint_header_get(ck, "act");
  g_autofree char *acc = NULL;
  if (g_strcmp0(model, "classifier") != 0) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_INPUT, "%s: not a classifier checkpoint (model=%s)", path,
                model ? model : "(none)");
    goto out;
  }
  if (g_strcmp0(arch, CF_CLASSIFIER_ARCH) != 0) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_INPUT, "%s: unknown classifier architecture '%s' (this build has %s)",
                path, arch ? arch : "(none)", CF_CLASSIFIER_ARCH);
    goto out;
  }
  long C, H, W, K, c1, c2, F, steps = -1, seed = 0;
  if (!header_long(ck, path, "C", 1, 16, &C, error) || !header_long(ck, path, "H", 2, 1024, &H, error) ||
      !header_long(ck, path, "W", 2, 1024, &W, error) ||
      !header_long(ck, path, "n_classes", 2, CF_CLASSIFIER_MAX_CLASSES, &K, error) ||
      !header_long(ck, path, "c1", 1, 4096, &c1, error) || !header_long(ck, path, "c2", 1, 4096, &c2, error) ||
      !header_long(ck, path, "features", 1, 4096, &F, error))
    goto out;
  {
    g_autofree char *s = cf_checkpoint_header_get(ck, "steps");
    if (s)
      steps = strtol(s, NULL, 10);
    g_autofree char *sd = cf_checkpoint_header_get(ck, "seed");
    if (sd)
      seed = strtol(sd, NULL, 10);
  }
  CfClassifierConfig cfg = cf_classifier_default_config((int)C, (int)H, (int)W, (int)K);
  cfg.c1 = (int)c1;
  cfg.c2 = (int)c2;
  cfg.features = (int)F;
  if (g_strcmp0(act, "silu") == 0)
    cfg.act = CF_ACT_SILU;
  else if (g_strcmp0(act, "relu") != 0) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_INPUT, "%s: unknown activation '%s'", path, act ? act : "(none)");
    goto out;
  }
  if (cf_classifier_config_check(&cfg, &err) != CF_OK) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_INPUT, "%s: %s", path, err.msg);
    goto out;
  }
  /* the weights must be there before anything is allocated for the sizes
   * the header claims */
  const CfCkptArena *a = cf_checkpoint_find(ck, "params");
  size_t need = cf_classifier_param_count(&cfg);
  if (!a || a->count != need) {
    if (a)
      g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_INPUT,
                  "%s: classifier checkpoint is inconsistent: arena 'params' has %zu values, the header's sizes need %zu",
                  path, a->count, need);
    else
      g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_INPUT, "%s: arena 'params' is missing", path);
    goto out;
  }
  if (!cf_all_finite(a->data, need)) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_INPUT, "%s: arena 'params' contains NaN or Inf", path);
    goto out;
  }
  GError *lerr = NULL;
  clf = classifier_new(&cfg, &lerr);
  if (!clf) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_INPUT, "%s: %s", path, lerr->message);
    g_error_free(lerr);
    goto out;
  }
  CF_ASSERT(clf->eval.params.total == need);
  cf_classifier_eval_load(&clf->eval, a->data);
  clf->path = g_strdup(origin);
  clf->steps = steps;
  clf->seed = (guint64)seed;
  acc = cf_checkpoint_header_get(ck, "accuracy");
  if (acc)
    clf->accuracy = g_ascii_strtod(acc, NULL);
out:
  return clf;
}

ConformClassifier *
conform_classifier_load_bundled(int side, GError **error)
{
  if (side != 28 && side != 14) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_INPUT,
                "no bundled classifier for %d x %d images (there are 28 x 28 and 14 x 14 ones)", side, side);
    return NULL;
  }
  g_autofree char *path = conform_classifier_bundled_path(side);
  return conform_classifier_load(path, error);
}

gboolean
conform_classifier_save(const ConformClassifier *clf, const char *path, GError **error)
{
  g_return_val_if_fail(clf && path, FALSE);
  const CfClassifierConfig *c = &clf->cfg;
  char acc[G_ASCII_DTOSTR_BUF_SIZE];
  g_ascii_formatd(acc, sizeof acc, "%.4f", clf->accuracy);
  g_autofree char *header = g_strdup_printf(
      "model=classifier\narch=%s\nC=%d\nH=%d\nW=%d\nn_classes=%d\nc1=%d\nc2=%d\nfeatures=%d\nact=%s\n"
      "steps=%ld\nseed=%" G_GUINT64_FORMAT "\naccuracy=%s\n",
      CF_CLASSIFIER_ARCH, c->C, c->H, c->W, c->n_classes, c->c1, c->c2, c->features,
      c->act == CF_ACT_SILU ? "silu" : "relu", clf->steps, clf->seed, acc);
  CfCkptArena arena;
  memset(&arena, 0, sizeof arena);
  g_strlcpy(arena.name, "params", sizeof arena.name);
  arena.count = clf->eval.params.total;
  arena.data = clf->eval.params.value;
  unsigned char *buf = NULL;
  size_t len = 0;
  CfError err;
  if (cf_checkpoint_encode(header, &arena, 1, &buf, &len, &err) != CF_OK) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_IO, "%s: %s", path, err.msg);
    return FALSE;
  }
  gboolean ok = conform_write_atomic(path, buf, len, error);
  free(buf);
  return ok;
}

const CfClassifierConfig *
conform_classifier_config(const ConformClassifier *clf)
{
  return &clf->cfg;
}

const char *
conform_classifier_path(const ConformClassifier *clf)
{
  return clf->path;
}

long
conform_classifier_steps(const ConformClassifier *clf)
{
  return clf->steps;
}

double
conform_classifier_recorded_accuracy(const ConformClassifier *clf)
{
  return clf->accuracy;
}

void
conform_classifier_set_accuracy(ConformClassifier *clf, double accuracy)
{
  clf->accuracy = accuracy;
}

/* ---- inference ------------------------------------------------------------------- */

static gboolean
check_images(const ConformClassifier *clf, const float *images, int n, int min_n, GError **error)
{
  if (n < min_n || (n > 0 && !images)) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_INPUT, "classifier: needs at least %d image%s (got %d)", min_n,
                min_n == 1 ? "" : "s", n);
    return FALSE;
  }
  size_t D = (size_t)clf->cfg.C * clf->cfg.H * clf->cfg.W;
  for (size_t i = 0; i < (size_t)n * D; i++)
    if (!isfinite(images[i])) {
      g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_INPUT, "classifier: image %zu, pixel %zu is not finite", i / D,
                  i % D);
      return FALSE;
    }
  return TRUE;
}

static void
run_locked(ConformClassifier *clf, const float *images, int n, float *logits, int *classes, float *features)
{
  g_mutex_lock(&clf->lock);
  cf_classifier_eval_run(&clf->eval, images, n, logits, classes, features);
  g_mutex_unlock(&clf->lock);
}

gboolean
conform_classifier_features(ConformClassifier *clf, const float *images, int n, float *features, GError **error)
{
  g_return_val_if_fail(clf && features, FALSE);
  if (!check_images(clf, images, n, 0, error))
    return FALSE;
  run_locked(clf, images, n, NULL, NULL, features);
  return TRUE;
}

gboolean
conform_classifier_predict(ConformClassifier *clf, const float *images, int n, int *classes, float *logits,
                           GError **error)
{
  g_return_val_if_fail(clf, FALSE);
  if (!check_images(clf, images, n, 0, error))
    return FALSE;
  run_locked(clf, images, n, logits, classes, NULL);
  return TRUE;
}

gboolean
conform_class_shares(ConformClassifier *clf, const float *images, int n, double *shares, GError **error)
{
  g_return_val_if_fail(clf && shares, FALSE);
  if (!check_images(clf, images, n, 1, error))
    return FALSE;
  int *cls = g_new(int, n);
  run_locked(clf, images, n, NULL, cls, NULL);
  const int K = clf->cfg.n_classes;
  for (int k = 0; k < K; k++)
    shares[k] = 0.0;
  for (int i = 0; i < n; i++)
    shares[cls[i]] += 1.0;
  for (int k = 0; k < K; k++)
    shares[k] /= n;
  g_free(cls);
  return TRUE;
}

double
conform_fd_classifier(ConformClassifier *clf, const float *images_a, int n_a, const float *images_b, int n_b,
                      GError **error)
{
  g_return_val_if_fail(clf, NAN);
  if (!check_images(clf, images_a, n_a, 2, error) || !check_images(clf, images_b, n_b, 2, error))
    return NAN;
  const int F = clf->cfg.features;
  float *fa = g_try_new(float, (size_t)n_a * F), *fb = g_try_new(float, (size_t)n_b * F);
  double fd = NAN;
  if (!fa || !fb) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_INPUT, "classifier: out of memory for the features");
  } else {
    run_locked(clf, images_a, n_a, NULL, NULL, fa);
    run_locked(clf, images_b, n_b, NULL, NULL, fb);
    CfError err;
    if (cf_frechet_distance(fa, n_a, fb, n_b, F, &fd, &err) != CF_OK) {
      core_error(error, &err);
      fd = NAN;
    }
  }
  g_free(fa);
  g_free(fb);
  return fd;
}

gboolean
conform_classifier_accuracy(ConformClassifier *clf, const CfImageSet *set, double *accuracy, double *per_class,
                            GError **error)
{
  g_return_val_if_fail(clf && set && accuracy, FALSE);
  const CfClassifierConfig *c = &clf->cfg;
  if (set->C != c->C || set->H != c->H || set->W != c->W || !set->labels || set->n < 1) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_INPUT,
                "classifier for %d x %d x %d images cannot evaluate a %s set of %d x %d x %d images", c->C, c->H, c->W,
                set->labels ? "labelled" : "unlabelled", set->C, set->H, set->W);
    return FALSE;
  }
  int *cls = g_new(int, set->n);
  if (!conform_classifier_predict(clf, set->pixels, set->n, cls, NULL, error)) {
    g_free(cls);
    return FALSE;
  }
  const int K = c->n_classes;
  long *hit = g_new0(long, K), *count = g_new0(long, K);
  long total = 0;
  for (int i = 0; i < set->n; i++) {
    int y = set->labels[i];
    gboolean ok = cls[i] == y;
    total += ok;
    if (y >= 0 && y < K) {
      count[y]++;
      hit[y] += ok;
    }
  }
  *accuracy = (double)total / set->n;
  if (per_class)
    for (int k = 0; k < K; k++)
      per_class[k] = count[k] ? (double)hit[k] / count[k] : NAN;
  g_free(hit);
  g_free(count);
  g_free(cls);
  return TRUE;
}

/* ---- training --------------------------------------------------------------------- */

void
conform_classifier_train_options_init(ConformClassifierTrainOptions *o)
{
  CfClassifierConfig d = cf_classifier_default_config(1, 28, 28, 10);
  memset(o, 0, sizeof *o);
  o->steps = 3000;
  o->batch = 64;
  o->seed = 1;
  o->lr = 2e-3;
  o->c1 = d.c1;
  o->c2 = d.c2;
  o->features = d.features;
}

ConformClassifier *
conform_classifier_train(const CfImageSet *train, const ConformClassifierTrainOptions *o,
                         ConformClassifierProgressFn progress, void *user, GCancellable *cancellable, GError **error)
{
  g_return_val_if_fail(train && o, NULL);
  if (!train->labels || train->n_classes < 2 || train->n < o->batch || o->batch < 1 || o->steps < 1 || o->lr <= 0) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_INPUT,
                "classifier training needs a labelled set of at least %d images with >= 2 classes, steps >= 1 and a "
                "positive learning rate",
                o->batch);
    return NULL;
  }
  CfClassifierConfig cfg = cf_classifier_default_config(train->C, train->H, train->W, train->n_classes);
  cfg.c1 = o->c1;
  cfg.c2 = o->c2;
  cfg.features = o->features;
  CfClassifier m;
  CfError err;
  if (cf_classifier_init(&m, &cfg, &err) != CF_OK) {
    core_error(error, &err);
    return NULL;
  }
  ConformClassifier *clf = NULL;
  CfAdam opt;
  memset(&opt, 0, sizeof opt);
  CfAdamConfig ac = cf_adam_default_config();
  const size_t D = cf_image_set_dim(train);
  const int B = o->batch;
  float *x = g_new(float, (size_t)B * D);
  int *y = g_new(int, B), *perm = g_new(int, train->n);
  CfRng rng;
  cf_rng_seed_stream(&rng, o->seed, 7);
  cf_classifier_randomize(&m, &rng);
  if (cf_classifier_prepare_train(&m, B, &err) != CF_OK || cf_adam_init(&opt, m.params.total, &ac) != CF_OK) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_INPUT, "classifier: %s", err.msg);
    goto out;
  }
  for (int i = 0; i < train->n; i++)
    perm[i] = i;
  CfLrSchedule sched = {(float)o->lr, (float)(o->lr / 20), o->steps > 1000 ? 100 : o->steps / 10, o->steps};
  int pos = train->n; /* reshuffle at the start */
  double sum_loss = 0, sum_acc = 0;
  long since = 0, every = o->steps >= 100 ? o->steps / 100 : 1;
  for (long step = 0; step < o->steps; step++) {
    if (g_cancellable_set_error_if_cancelled(cancellable, error))
      goto out;
    for (int b = 0; b < B; b++) {
      if (pos >= train->n) {
        for (int i = train->n - 1; i > 0; i--) {
          int j = (int)cf_rng_below(&rng, (uint64_t)i + 1);
          int t = perm[i];
          perm[i] = perm[j];
          perm[j] = t;
        }
        pos = 0;
      }
      int r = perm[pos++];
      memcpy(x + (size_t)b * D, train->pixels + (size_t)r * D, D * sizeof(float));
      y[b] = train->labels[r];
    }
    double acc;
    double loss = cf_classifier_train_step(&m, x, y, &acc);
    if (!isfinite(loss) || !cf_all_finite(m.params.grad, m.params.total)) {
      g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_NUMERIC, "classifier training diverged at step %ld (loss %g)",
                  step + 1, loss);
      goto out;
    }
    cf_adam_step(&opt, m.params.value, m.params.grad, cf_lr_at(&sched, step));
    sum_loss += loss;
    sum_acc += acc;
    since++;
    gboolean report = (step + 1) % every == 0 || step + 1 == o->steps;
    if (progress)
      progress(user, step + 1, o->steps, sum_loss / since, sum_acc / since, report);
    if (report)
      sum_loss = sum_acc = 0, since = 0;
  }
  clf = classifier_new(&cfg, error);
  if (clf) {
    cf_classifier_eval_load(&clf->eval, m.params.value);
    clf->steps = o->steps;
    clf->seed = o->seed;
  }
out:
  g_free(x);
  g_free(y);
  g_free(perm);
  cf_adam_clear(&opt);
  cf_classifier_clear(&m);
  return clf;
}

/* ---- CLI ------------------------------------------------------------------------ */

static int
cli_fail(GError *error)
{
  int code = error->code == CONFORM_ERROR_USAGE ? CONFORM_EXIT_USAGE : CONFORM_EXIT_RUNTIME;
  fprintf(stderr, "conform: %s\n", error->message);
  g_error_free(error);
  return code;
}

static gboolean
cli_parse(const char *command, const char *args_help, const char *summary, GOptionEntry *entries, int *argc,
          char ***argv)
{
  g_autofree char *param = g_strdup_printf("%s%s%s", command, args_help ? " " : "", args_help ? args_help : "");
  g_autoptr(GOptionContext) ctx = g_option_context_new(param);
  g_option_context_set_summary(ctx, summary);
  g_option_context_add_main_entries(ctx, entries, NULL);
  g_autoptr(GError) error = NULL;
  if (!g_option_context_parse(ctx, argc, argv, &error)) {
    fprintf(stderr, "conform %s: %s (see conform %s --help)\n", command, error->message, command);
    return FALSE;
  }
  for (int i = 2; i < *argc; i++)
    if ((*argv)[i][0] == '-' && (*argv)[i][1] != '\0') {
      fprintf(stderr, "conform: %s: unknown option '%s' (see conform %s --help)\n", command, (*argv)[i], command);
      return FALSE;
    }
  return TRUE;
}

typedef struct {
  gboolean tty;
  gint64 t0;
} TrainProgress;

static void
train_progress_cb(void *user, long step, long total, double loss, double acc, gboolean report)
{
  TrainProgress *p = user;
  if (!report || (!p->tty && step % (total >= 10 ? total / 10 : 1) != 0 && step != total))
    return;
  double secs = (double)(g_get_monotonic_time() - p->t0) / 1e6;
  double rate = secs > 0 ? step / secs : 0;
  fprintf(stderr, "%straining: %ld/%ld (%.0f%%) loss %.4f accuracy %.3f %.0f/s%s", p->tty ? "\r" : "", step, total,
          100.0 * step / total, loss, acc, rate, p->tty && step != total ? " " : "\n");
  fflush(stderr);
}

static void
print_accuracy(ConformClassifier *clf, const CfImageSet *test, double acc, const double *per_class)
{
  printf("accuracy\t%.4f\n", acc);
  for (int k = 0; k < clf->cfg.n_classes; k++)
    printf("accuracy_%d\t%.4f\n", k, per_class[k]);
}

int
conform_train_classifier_main(int argc, char **argv)
{
  ConformClassifierTrainOptions o;
  conform_classifier_train_options_init(&o);
  int downsample = 1, steps = o.steps, batch = o.batch, c1 = o.c1, c2 = o.c2, features = o.features;
  gint64 seed = (gint64)o.seed;
  double lr = o.lr;
  g_autofree char *out = NULL, *data_dir = NULL;
  GOptionEntry entries[] = {
    {"downsample", 0, 0, G_OPTION_ARG_INT, &downsample, "1 (28 x 28, default) or 2 (14 x 14)", "1|2"},
    {"steps", 0, 0, G_OPTION_ARG_INT, &steps, "Adam steps (default 3000)", "N"},
    {"seed", 's', 0, G_OPTION_ARG_INT64, &seed, "Random seed (default 1)", "S"},
    {"batch", 0, 0, G_OPTION_ARG_INT, &batch, "Minibatch size (default 64)", "B"},
    {"lr", 0, 0, G_OPTION_ARG_DOUBLE, &lr, "Peak learning rate (default 0.002)", "LR"},
    {"c1", 0, 0, G_OPTION_ARG_INT, &c1, "Channels of the first conv layer", "N"},
    {"c2", 0, 0, G_OPTION_ARG_INT, &c2, "Channels of the second conv layer", "N"},
    {"features", 0, 0, G_OPTION_ARG_INT, &features, "Width of the penultimate (feature) layer", "N"},
    {"data-dir", 0, 0, G_OPTION_ARG_FILENAME, &data_dir, "Fashion-MNIST directory (default " CONFORM_FASHION_MNIST_DIR ")", "DIR"},
    {"out", 'o', 0, G_OPTION_ARG_FILENAME, &out, "Checkpoint to write", "FILE.ckpt"},
    {NULL},
  };
  if (!cli_parse("train-classifier", NULL,
                 "Train the image classifier on Fashion-MNIST, print its test accuracy and save a checkpoint.", entries,
                 &argc, &argv))
    return CONFORM_EXIT_USAGE;
  if (argc > 2) {
    fprintf(stderr, "conform: train-classifier: unexpected argument '%s'\n", argv[2]);
    return CONFORM_EXIT_USAGE;
  }
  if (!out) {
    fprintf(stderr, "conform: train-classifier: --out FILE.ckpt is required\n");
    return CONFORM_EXIT_USAGE;
  }
  if ((downsample != 1 && downsample != 2) || steps < 1 || steps > 10000000 || batch < 1 || batch > 4096 || seed < 0 ||
      !(lr > 0 && lr < 1) || c1 < 1 || c1 > 512 || c2 < 1 || c2 > 512 || features < 1 || features > 4096) {
    fprintf(stderr, "conform: train-classifier: --downsample must be 1 or 2, --steps in [1, 10000000], --batch in "
                    "[1, 4096], --seed >= 0, --lr in (0, 1), widths in [1, 512] (features [1, 4096])\n");
    return CONFORM_EXIT_USAGE;
  }
  o.steps = steps;
  o.batch = batch;
  o.seed = (guint64)seed;
  o.lr = lr;
  o.c1 = c1;
  o.c2 = c2;
  o.features = features;
  GError *error = NULL;
  CfImageSet train, test;
  cf_image_set_init(&train);
  cf_image_set_init(&test);
  if (!conform_fashion_mnist_load(data_dir, TRUE, downsample, &train, &error) ||
      !conform_fashion_mnist_load(data_dir, FALSE, downsample, &test, &error)) {
    cf_image_set_clear(&train);
    return cli_fail(error);
  }
  fprintf(stderr,
          "conform: training the classifier on Fashion-MNIST %d x %d (%d images; c1 %d, c2 %d, features %d; %d steps "
          "of %d, seed %" G_GINT64_FORMAT ")\n",
          train.H, train.W, train.n, c1, c2, features, steps, batch, seed);
  TrainProgress tp = {isatty(STDERR_FILENO), g_get_monotonic_time()};
  g_autoptr(ConformClassifier) clf = conform_classifier_train(&train, &o, train_progress_cb, &tp, NULL, &error);
  double secs = (double)(g_get_monotonic_time() - tp.t0) / 1e6;
  cf_image_set_clear(&train);
  if (!clf) {
    cf_image_set_clear(&test);
    return cli_fail(error);
  }
  double acc, per_class[CF_CLASSIFIER_MAX_CLASSES];
  gboolean ok = conform_classifier_accuracy(clf, &test, &acc, per_class, &error);
  if (ok) {
    conform_classifier_set_accuracy(clf, acc);
    print_accuracy(clf, &test, acc, per_class);
    fprintf(stderr, "conform: trained in %.1f s; test accuracy %.4f\n", secs, acc);
    ok = conform_classifier_save(clf, out, &error);
  }
  cf_image_set_clear(&test);
  if (!ok)
    return cli_fail(error);
  fprintf(stderr, "conform: wrote %s\n", out);
  return CONFORM_EXIT_OK;
}

int
conform_evaluate_classifier_main(int argc, char **argv)
{
  g_autofree char *data_dir = NULL;
  GOptionEntry entries[] = {
    {"data-dir", 0, 0, G_OPTION_ARG_FILENAME, &data_dir, "Fashion-MNIST directory (default " CONFORM_FASHION_MNIST_DIR ")", "DIR"},
    {NULL},
  };
  if (!cli_parse("evaluate-classifier", "[CKPT]",
                 "Print a classifier's accuracy on the Fashion-MNIST test split (default: the bundled 28 x 28 one).",
                 entries, &argc, &argv))
    return CONFORM_EXIT_USAGE;
  if (argc > 3) {
    fprintf(stderr, "conform: evaluate-classifier: expected at most one checkpoint\n");
    return CONFORM_EXIT_USAGE;
  }
  GError *error = NULL;
  g_autoptr(ConformClassifier) clf = conform_classifier_load(argc == 3 ? argv[2] : NULL, &error);
  if (!clf)
    return cli_fail(error);
  const CfClassifierConfig *c = conform_classifier_config(clf);
  if (c->C != 1 || c->n_classes != CONFORM_FASHION_MNIST_CLASSES || c->H != c->W || (c->H != 28 && c->H != 14)) {
    fprintf(stderr, "conform: %s: a %d x %d x %d classifier with %d classes does not fit Fashion-MNIST\n",
            conform_classifier_path(clf), c->C, c->H, c->W, c->n_classes);
    return CONFORM_EXIT_RUNTIME;
  }
  CfImageSet test;
  cf_image_set_init(&test);
  if (!conform_fashion_mnist_load(data_dir, FALSE, c->H == 28 ? 1 : 2, &test, &error))
    return cli_fail(error);
  double acc, per_class[CF_CLASSIFIER_MAX_CLASSES];
  int n_test = test.n;
  gboolean ok = conform_classifier_accuracy(clf, &test, &acc, per_class, &error);
  if (ok)
    print_accuracy(clf, &test, acc, per_class);
  cf_image_set_clear(&test);
  if (!ok)
    return cli_fail(error);
  fprintf(stderr, "conform: %s (%d x %d, %d test images)\n", conform_classifier_path(clf), c->H, c->W, n_test);
  return CONFORM_EXIT_OK;
}
