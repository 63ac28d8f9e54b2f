#define G_LOG_DOMAIN "conform"

#include "conform-compare.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "conform-cli.h"
#include "conform-config.h"
#include "conform-engine.h"
#include "conform-figure.h"
#include "conform-image-data.h"
#include "conform-io.h"
#include "conform-presets.h"

/* Strategies that act only at sampling time share the model trained with
 * `none`: for a DDPM none, projection (post-hoc) and projected-sampling
 * (inside the reverse chain); for a VAE none and projection (its other
 * strategies change the loss). Everything else (VAE constrained-layer and
 * cgauss, DDPM cgauss, later dual, mirror, ...) trains its own model from
 * the same seed; a strategy not listed here falls into that case, which is
 * always correct, only slower. Which strategies exist and apply to which
 * model is the config's and the engine's business, not this function's. */
const char *
conform_compare_training_strategy(const char *model_type, const char *strategy)
{
  static const char *const ddpm_sampling_only[] = {"none", "projection", "projected-sampling", NULL};
  static const char *const vae_sampling_only[] = {"none", "projection", NULL};
  gboolean vae = g_strcmp0(model_type, "vae") == 0;
  return g_strv_contains(vae ? vae_sampling_only : ddpm_sampling_only, strategy) ? "none" : strategy;
}

static int
fail(GError *error)
{
  int code = error->code == CONFORM_ERROR_USAGE ? CONFORM_EXIT_USAGE : CONFORM_EXIT_RUNTIME;
  fprintf(stderr, "conform: %s\n", error->message);
  g_error_free(error);
  return code;
}

static int
usage_error(const char *fmt, ...) G_GNUC_PRINTF(1, 2);
static int
usage_error(const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  g_autofree char *msg = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  fprintf(stderr, "conform: compare: %s (see conform compare --help)\n", msg);
  return CONFORM_EXIT_USAGE;
}

/* ---- progress: one line per trained model ------------------------------------------ */

typedef struct {
  const char *what;
  gboolean tty;
  gint64 t0;
  ConformEngine *engine;
} Progress;

static float
last_loss(ConformEngine *e)
{
  const GArray *rec = conform_engine_records(e);
  return rec && rec->len ? g_array_index(rec, ConformTrainRecord, rec->len - 1).loss : NAN;
}

/* On a terminal a bar redrawn in place; otherwise nothing until the end
 * (report_trained prints the line). */
static void
progress_cb(void *user, long done, long total)
{
  Progress *p = user;
  if (!p->tty)
    return;
  double frac = total > 0 ? (double)done / (double)total : 1.0;
  double secs = (double)(g_get_monotonic_time() - p->t0) / 1e6;
  char bar[31];
  int filled = (int)(frac * 30);
  for (int i = 0; i < 30; i++)
    bar[i] = i < filled ? '#' : '.';
  bar[30] = '\0';
  fprintf(stderr, "\r%s [%s] %3.0f%% %ld/%ld", p->what, bar, frac * 100, done, total);
  float loss = last_loss(p->engine);
  if (!isnan(loss))
    fprintf(stderr, " loss %.4f", loss);
  fprintf(stderr, " %.0f/s ", secs > 0 ? (double)done / secs : 0);
  fflush(stderr);
}

static void
report_trained(Progress *p, long steps)
{
  double secs = (double)(g_get_monotonic_time() - p->t0) / 1e6;
  if (p->tty)
    fputc('\r', stderr);
  fprintf(stderr, "%s: %ld steps in %.1f s", p->what, steps, secs);
  float loss = last_loss(p->engine);
  if (!isnan(loss))
    fprintf(stderr, ", loss %.4f", loss);
  fprintf(stderr, "%s\n", p->tty ? "                    " : "");
  fflush(stderr);
}

/* ---- options ----------------------------------------------------------------------- */

/* Splits "a,b,c" (blanks around names ignored); empty names and names
 * given twice are usage errors. */
static GStrv
split_strategies(const char *list, int *code)
{
  g_auto(GStrv) parts = g_strsplit(list, ",", -1);
  g_autoptr(GStrvBuilder) b = g_strv_builder_new();
  g_autoptr(GPtrArray) seen = g_ptr_array_new();
  if (!parts[0]) {
    *code = usage_error("--strategies is empty; give a comma-separated list such as none,projection");
    return NULL;
  }
  for (char **p = parts; *p; p++) {
    g_strstrip(*p);
    if (**p == '\0') {
      *code = usage_error("--strategies '%s' has an empty name; give a comma-separated list such as none,projection",
                          list);
      return NULL;
    }
    for (guint i = 0; i < seen->len; i++)
      if (strcmp(seen->pdata[i], *p) == 0) {
        *code = usage_error("strategy '%s' is listed twice in --strategies", *p);
        return NULL;
      }
    g_ptr_array_add(seen, *p);
    g_strv_builder_add(b, *p);
  }
  return g_strv_builder_end(b);
}

typedef struct {
  char *preset, *model, *strategies, *out, *constraint, *data;
  GStrv sets;
  int steps, samples;
  gint64 seed;
} Options;

static void
options_clear(Options *o)
{
  g_free(o->preset);
  g_free(o->model);
  g_free(o->strategies);
  g_free(o->out);
  g_free(o->constraint);
  g_free(o->data);
  g_strfreev(o->sets);
}

static gboolean
parse_options(Options *o, int *argc, char ***argv, int *code)
{
  GOptionEntry entries[] = {
    {"preset", 'p', 0, G_OPTION_ARG_STRING, &o->preset, "Preset (see conform presets; default " CONFORM_DEFAULT_PRESET ")", "P"},
    {"model", 'm', 0, G_OPTION_ARG_STRING, &o->model, "ddpm or vae (model.type; default: the preset's)", "KIND"},
    {"strategies", 0, 0, G_OPTION_ARG_STRING, &o->strategies, "Comma-separated strategies, e.g. none,projection", "A,B,..."},
    {"steps", 0, 0, G_OPTION_ARG_INT, &o->steps, "Training steps (default: the preset's)", "N"},
    {"seed", 's', 0, G_OPTION_ARG_INT64, &o->seed, "Random seed of every run and of sampling", "S"},
    {"samples", 'n', 0, G_OPTION_ARG_INT, &o->samples, "Samples per strategy (default: sample.n)", "N"},
    {"set", 0, 0, G_OPTION_ARG_STRING_ARRAY, &o->sets, "Any setting, e.g. train.lr=0.001 (repeatable)", "KEY=VALUE"},
    {"constraint", 'c', 0, G_OPTION_ARG_FILENAME, &o->constraint, "Constraint file (A x = b) replacing the preset's", "FILE"},
    {"data", 'd', 0, G_OPTION_ARG_FILENAME, &o->data, "CSV file of training data replacing the preset's", "FILE.csv"},
    {"out", 'o', 0, G_OPTION_ARG_FILENAME, &o->out, "Directory for comparison.tsv and comparison.png", "DIR"},
    {NULL},
  };
  g_autoptr(GOptionContext) ctx = g_option_context_new("compare");
  g_option_context_set_summary(ctx, "Train every strategy from the same seed with paired noise; write DIR/comparison.tsv "
                                    "and DIR/comparison.png.\nStrategies that act only at sampling time share one "
                                    "trained model.");
  g_option_context_add_main_entries(ctx, entries, NULL);
  g_autoptr(GError) error = NULL;
  if (!g_option_context_parse(ctx, argc, argv, &error)) {
    GString *valid = g_string_new(NULL);
    for (GOptionEntry *e = entries; e->long_name; e++)
      g_string_append_printf(valid, "%s--%s", valid->len ? ", " : "", e->long_name);
    fprintf(stderr, "conform compare: %s\nvalid options: %s (see conform compare --help)\n", error->message,
            valid->str);
    g_string_free(valid, TRUE);
    *code = CONFORM_EXIT_USAGE;
    return FALSE;
  }
  for (int i = 2; i < *argc; i++) {
    if ((*argv)[i][0] == '-' && (*argv)[i][1] != '\0')
      *code = usage_error("unknown option '%s'", (*argv)[i]);
    else
      *code = usage_error("unexpected argument '%s'", (*argv)[i]);
    return FALSE;
  }
  return TRUE;
}

static gboolean
set_int(ConformConfig *cfg, const char *key, gint64 v, GError **error)
{
  g_autofree char *s = g_strdup_printf("%" G_GINT64_FORMAT, v);
  return conform_config_set(cfg, key, s, error);
}

/* The configuration shared by every strategy. */
static gboolean
base_config(ConformConfig *cfg, const Options *o, GError **error)
{
  if (!conform_config_apply_preset(cfg, o->preset ? o->preset : CONFORM_DEFAULT_PRESET, error) ||
      (o->data && !conform_config_set(cfg, "data.source", o->data, error)) ||
      (o->constraint && !conform_config_load_constraint(cfg, o->constraint, error)) ||
      (o->model && !conform_config_set(cfg, "model.type", o->model, error)) ||
      (o->steps != -1 && !set_int(cfg, "train.steps", o->steps, error)) ||
      (o->seed != -1 && !set_int(cfg, "experiment.seed", o->seed, error)) ||
      (o->samples != -1 && !set_int(cfg, "sample.n", o->samples, error)))
    return FALSE;
  for (char **s = o->sets; s && *s; s++)
    if (!conform_config_set_assignment(cfg, *s, error))
      return FALSE;
  return TRUE;
}

/* cfg with experiment.strategy = strategy, validated (the config's own
 * checks: known strategy, applicable to the model, constraint present). */
static gboolean
strategy_config(ConformConfig *dst, const ConformConfig *base, const char *strategy, GError **error)
{
  conform_config_copy(dst, base);
  return conform_config_set(dst, "experiment.strategy", strategy, error) && conform_config_validate(dst, error);
}

/* The strategies the config accepts for base's model and constraint, "a, b"
 * (asked of the config itself, so the list cannot go stale). */
static char *
valid_strategies(const ConformConfig *base)
{
  const ConformKey *key = conform_config_find_key("experiment.strategy");
  g_auto(GStrv) all = g_strsplit(key ? key->choices : "", "|", -1);
  GString *s = g_string_new(NULL);
  for (char **a = all; *a; a++) {
    ConformConfig c;
    gboolean ok = strategy_config(&c, base, *a, NULL);
    conform_config_clear(&c);
    if (ok)
      g_string_append_printf(s, "%s%s", s->len ? ", " : "", *a);
  }
  return g_string_free(s, FALSE);
}

/* ---- the runs ---------------------------------------------------------------------- */

typedef struct {
  const char *strategy;
  const char *trained_with;
  ConformSampleSet *set; /* samples and per-sample violations */
  ConformSummary summary;
} Entry;

typedef struct {
  Entry *entries;
  int n;
  float *ref; /* held-out reference data, raw space (the same for every run: same seed) */
  int n_ref, dim;
  double tol;
  int image_size;   /* image data: the side of its images (0: vectors) */
  gboolean annotate; /* sample.annotate: frame each image by its violation */
} Comparison;

static void
comparison_clear(Comparison *c)
{
  for (int i = 0; i < c->n; i++)
    if (c->entries[i].set)
      conform_sample_set_unref(c->entries[i].set);
  g_free(c->entries);
  g_free(c->ref);
}

/* Trains the model for training strategy `train` and samples every entry
 * that shares it, all with the same explicit sample seed. */
static gboolean
run_group(Comparison *c, const ConformConfig *base, const char *train, guint64 sample_seed, GError **error)
{
  ConformConfig cfg;
  if (!strategy_config(&cfg, base, train, error)) {
    conform_config_clear(&cfg);
    return FALSE;
  }
  g_autoptr(ConformEngine) e = conform_engine_new(&cfg, error);
  conform_config_clear(&cfg);
  if (!e)
    return FALSE;
  if (!c->ref) {
    if (conform_engine_warnings(e))
      fprintf(stderr, "conform: warning: %s\n", conform_engine_warnings(e));
    const float *ref = conform_engine_reference(e, &c->n_ref);
    c->dim = conform_engine_dim(e);
    c->ref = g_memdup2(ref, sizeof(float) * (gsize)c->n_ref * c->dim);
  }
  const ConformConfig *ec = conform_engine_config(e);
  g_autoptr(GString) users = g_string_new(NULL);
  for (int i = 0; i < c->n; i++)
    if (strcmp(c->entries[i].trained_with, train) == 0)
      g_string_append_printf(users, "%s%s", users->len ? ", " : "", c->entries[i].strategy);
  g_autofree char *what = g_strdup_printf("training %s with strategy %s (for %s)", ec->model_type, train, users->str);
  Progress p = {what, isatty(STDERR_FILENO), g_get_monotonic_time(), e};
  if (!conform_engine_train(e, conform_config_total_steps(ec), NULL, progress_cb, &p, error)) {
    if (p.tty)
      fputc('\n', stderr);
    return FALSE;
  }
  report_trained(&p, conform_engine_step(e));
  g_autoptr(ConformSampler) sampler = conform_engine_make_sampler(e, error);
  if (!sampler)
    return FALSE;
  for (int i = 0; i < c->n; i++) {
    Entry *en = &c->entries[i];
    if (strcmp(en->trained_with, train) != 0)
      continue;
    /* preview: the sampler skips the quality metrics, computed below by
     * the engine (with the VAE's likelihoods) */
    ConformSampleOptions so = {
      .n = ec->n_samples, .strategy = en->strategy, .eta = -1, .seed = sample_seed, .use_seed = TRUE, .preview = TRUE,
    };
    en->set = conform_sampler_run(sampler, &so, 0, NULL, NULL, NULL, error);
    if (!en->set)
      return FALSE;
    conform_engine_evaluate(e, en->set->x, en->set->n, &en->summary);
    en->summary.sample_seconds = en->set->summary.sample_seconds;
    if (c->tol == 0 && en->summary.has_constraint)
      c->tol = en->summary.viol.tol;
    fprintf(stderr, "sampling %s: %d samples in %.0f ms", en->strategy, en->set->n, en->summary.sample_seconds * 1e3);
    if (en->summary.has_constraint)
      fprintf(stderr, ", violation max %.3g", en->summary.viol.max);
    fputc('\n', stderr);
  }
  return TRUE;
}

/* ---- outputs ------------------------------------------------------------------------- */

static GString *
comparison_tsv(const Comparison *c, const ConformConfig *base, guint64 sample_seed)
{
  gboolean vae = c->n > 0 && c->entries[0].summary.has_vae;
  GString *o = g_string_new(NULL);
  g_string_append_printf(o,
                         "# conform compare: preset %s, model %s, train.steps %d, experiment.seed %" G_GUINT64_FORMAT
                         ", sample seed %" G_GUINT64_FORMAT ", %d samples per strategy\n",
                         base->preset, base->model_type, base->steps, base->seed, sample_seed, base->n_samples);
  g_string_append_printf(o, "# violation: ||A x - b||_2 per sample, raw space; frac_satisfied: violation <= %.6g "
                            "(eval.tolerance %.6g * (1 + ||b||_2)); train_seconds: of the model the strategy samples "
                            "from (trained_with)%s\n",
                         c->tol, base->tol_rel, vae ? "; test_ll, elbo, recon: per sample, model space, test_ll "
                                                      "importance-weighted with iw_k samples" : "");
  g_string_append(o, "strategy\ttrained_with\tn_samples\tviolation_mean\tviolation_median\tviolation_p99\t"
                     "violation_max\tviolation_linf_max\tfrac_satisfied\tenergy_distance\tmmd");
  if (vae)
    g_string_append(o, "\ttest_ll\ttest_ll_subspace\telbo\trecon\tiw_k");
  /* optional columns, present when the first row has them */
  const ConformSummary *s0 = &c->entries[0].summary;
  gboolean cond = !isnan(s0->cond_rmse), img = s0->has_classes;
  if (cond)
    g_string_append(o, "\tcond_rmse");
  if (img)
    g_string_append(o, "\tfd_classifier\tfd_floor");
  g_string_append(o, "\ttrain_seconds\tsample_ms\tviolation_median_normalised\n");
  /* the mirror-maps paper's normalised distance: each median over the
   * largest median of the strategies compared */
  double med_max = 0.0;
  for (int i = 0; i < c->n; i++)
    if (c->entries[i].summary.has_constraint && isfinite(c->entries[i].summary.viol.median))
      med_max = MAX(med_max, c->entries[i].summary.viol.median);
  for (int i = 0; i < c->n; i++) {
    const ConformSummary *s = &c->entries[i].summary;
    gboolean hc = s->has_constraint;
    /* the formats of summary.tsv (conform_summary_to_tsv); nan without a constraint */
    g_string_append_printf(o, "%s\t%s\t%d\t%.6g\t%.6g\t%.6g\t%.6g\t%.6g\t%.6g\t%.6g\t%.6g", c->entries[i].strategy,
                           c->entries[i].trained_with, s->n, hc ? s->viol.mean : NAN, hc ? s->viol.median : NAN,
                           hc ? s->viol.p99 : NAN, hc ? s->viol.max : NAN, hc ? s->viol_linf_max : NAN,
                           hc ? s->viol.frac_satisfied : NAN, s->energy_distance, s->mmd);
    if (vae)
      g_string_append_printf(o, "\t%.6g\t%.6g\t%.6g\t%.6g\t%d", s->test_ll, s->test_ll_sub, s->elbo, s->recon,
                             s->iw_k);
    if (cond)
      g_string_append_printf(o, "\t%.6g", s->cond_rmse);
    if (img)
      g_string_append_printf(o, "\t%.6g\t%.6g", s->fd_classifier, s->fd_floor);
    g_string_append_printf(o, "\t%.3f\t%.3f\t%.6g\n", s->train_seconds, s->sample_seconds * 1e3,
                           hc && med_max > 0 ? s->viol.median / med_max : NAN);
  }
  return o;
}

static void
print_table(const Comparison *c)
{
  int w = 8;
  gboolean vae = c->n > 0 && c->entries[0].summary.has_vae;
  for (int i = 0; i < c->n; i++)
    w = MAX(w, (int)strlen(c->entries[i].strategy));
  printf("%-*s  %13s  %14s  %15s", w, "strategy", "violation_max", "frac_satisfied", "energy_distance");
  if (vae)
    printf("  %9s", "test_ll");
  printf("  %13s  %9s\n", "train_seconds", "sample_ms");
  for (int i = 0; i < c->n; i++) {
    const ConformSummary *s = &c->entries[i].summary;
    printf("%-*s  %13.3g  %14.4g  %15.3g", w, c->entries[i].strategy, s->has_constraint ? s->viol.max : NAN,
           s->has_constraint ? s->viol.frac_satisfied : NAN, s->energy_distance);
    if (vae)
      printf("  %9.4g", s->test_ll);
    printf("  %13.2f  %9.0f\n", s->train_seconds, s->sample_seconds * 1e3);
  }
  fflush(stdout);
}

static GBytes *
comparison_png(const Comparison *c, GError **error)
{
  ConformFigureColumn *cols = g_new0(ConformFigureColumn, c->n);
  GPtrArray *strings = g_ptr_array_new_with_free_func(g_free);
  for (int i = 0; i < c->n; i++) {
    const Entry *en = &c->entries[i];
    const ConformSummary *s = &en->summary;
    char *sub = s->has_constraint ? g_strdup_printf("max viol %.2g \u00b7 satisfied %.1f%%", s->viol.max,
                                                    100 * s->viol.frac_satisfied)
                                  : g_strdup("no constraint");
    char *sub2 = s->has_vae ? g_strdup_printf("energy %.2g \u00b7 test_ll %.3g \u00b7 train %.1f s", s->energy_distance,
                                              s->test_ll, s->train_seconds)
                            : g_strdup_printf("energy %.2g \u00b7 mmd %.2g \u00b7 train %.1f s", s->energy_distance,
                                              s->mmd, s->train_seconds);
    g_ptr_array_add(strings, sub);
    g_ptr_array_add(strings, sub2);
    cols[i] = (ConformFigureColumn){en->strategy, sub, sub2, en->set->x, en->set->n, en->set->viol};
  }
  ConformFigureCompare fig = {c->dim, c->ref, c->n_ref, cols, c->n, c->tol, c->image_size, c->annotate};
  GBytes *png = conform_figure_compare_png(&fig, error);
  g_ptr_array_unref(strings);
  g_free(cols);
  return png;
}

/* Writes both files (each atomically); if the second cannot be written the
 * first is removed again, so a failure leaves neither. */
static gboolean
write_outputs(const char *dir, const GString *tsv, GBytes *png, GError **error)
{
  g_autofree char *png_path = g_build_filename(dir, "comparison.png", NULL);
  g_autofree char *tsv_path = g_build_filename(dir, "comparison.tsv", NULL);
  gsize len;
  const void *data = g_bytes_get_data(png, &len);
  if (!conform_write_atomic(png_path, data, len, error))
    return FALSE;
  if (!conform_write_atomic(tsv_path, tsv->str, tsv->len, error)) {
    g_unlink(png_path);
    return FALSE;
  }
  return TRUE;
}

static int
compare(const Options *o, GStrv names)
{
  ConformConfig base;
  conform_config_init(&base);
  GError *error = NULL;
  Comparison c = {0};
  gboolean created_dir = FALSE;
  int rc = CONFORM_EXIT_OK;
  if (!base_config(&base, o, &error))
    goto failed;
  /* Every strategy and the model it trains with are checked before any
   * training starts (the engine's own rules, through the config). */
  c.n = (int)g_strv_length(names);
  c.entries = g_new0(Entry, c.n);
  for (int i = 0; i < c.n; i++) {
    ConformConfig sc;
    const char *train = conform_compare_training_strategy(base.model_type, names[i]);
    gboolean ok = strategy_config(&sc, &base, names[i], &error);
    conform_config_clear(&sc);
    if (ok && strcmp(train, names[i]) != 0) {
      ok = strategy_config(&sc, &base, train, &error);
      conform_config_clear(&sc);
    }
    if (!ok) {
      g_autofree char *valid = valid_strategies(&base);
      g_prefix_error(&error, "compare --strategies %s: ", names[i]);
      if (error->code == CONFORM_ERROR_USAGE && *valid) {
        g_autofree char *msg = g_strdup_printf("%s\nvalid strategies for this model (%s) and preset: %s", error->message,
                                               base.model_type, valid);
        g_free(error->message);
        error->message = g_steal_pointer(&msg);
      }
      goto failed;
    }
    c.entries[i] = (Entry){names[i], train, NULL, {0}};
  }
  if (conform_image_source_is(base.data))
    c.image_size = base.image_size;
  c.annotate = base.annotate;
  created_dir = !g_file_test(o->out, G_FILE_TEST_EXISTS);
  if (!conform_ensure_dir(o->out, &error))
    goto failed;
  guint64 sample_seed = base.seed;
  fprintf(stderr, "conform: comparing %d strateg%s on preset '%s' (%s, %d steps, seed %" G_GUINT64_FORMAT
                  ", sample seed %" G_GUINT64_FORMAT ")\n",
          c.n, c.n == 1 ? "y" : "ies", base.preset, base.model_type, base.steps, base.seed, sample_seed);
  for (int i = 0; i < c.n; i++) {
    gboolean done = FALSE;
    for (int j = 0; j < i; j++)
      done = done || strcmp(c.entries[j].trained_with, c.entries[i].trained_with) == 0;
    if (!done && !run_group(&c, &base, c.entries[i].trained_with, sample_seed, &error))
      goto failed;
  }
  {
    g_autoptr(GString) tsv = comparison_tsv(&c, &base, sample_seed);
    g_autoptr(GBytes) png = comparison_png(&c, &error);
    if (!png || !write_outputs(o->out, tsv, png, &error))
      goto failed;
  }
  print_table(&c);
  fprintf(stderr, "conform: results in %s (comparison.tsv, comparison.png)\n", o->out);
  goto out;
failed:
  rc = fail(error);
  if (created_dir)
    g_rmdir(o->out); /* only if still empty */
out:
  comparison_clear(&c);
  conform_config_clear(&base);
  return rc;
}

int
conform_compare_main(int argc, char **argv)
{
  Options o = {.steps = -1, .samples = -1, .seed = -1};
  int code = 0;
  if (!parse_options(&o, &argc, &argv, &code)) {
    options_clear(&o);
    return code;
  }
  g_auto(GStrv) names = NULL;
  if (!o.out)
    code = usage_error("--out DIR is required");
  else if (!o.strategies)
    code = usage_error("--strategies A,B,... is required (e.g. none,projection)");
  else if (o.seed < -1)
    code = usage_error("--seed must be non-negative");
  else if (!(names = split_strategies(o.strategies, &code)))
    ;
  else
    code = compare(&o, names);
  options_clear(&o);
  return code;
}
