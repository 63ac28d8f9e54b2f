#define G_LOG_DOMAIN "conform"

#include "conform-cli.h"

#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "conform-classifier.h"
#include "conform-compare.h"
#include "conform-config.h"
#include "conform-engine.h"
#include "conform-image-data.h"
#include "conform-io.h"
#include "conform-presets.h"
#include "constraint.h"
#include "data.h"

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
  fprintf(stderr, "conform: %s\n", msg);
  return CONFORM_EXIT_USAGE;
}

/* Parses options; on error prints the message and the valid options. */
static gboolean
parse_options(const char *command, const char *args_help, const char *summary, GOptionEntry *entries, int *argc,
              char ***argv, int *exit_code)
{
  g_autofree char *param = g_strdup_printf("%s%s%s", command, args_help ? " " : "", args_help ? args_help : "");
  g_autoptr(GOptionContext) ctx = g_option_context_new(param);
  g_option_context_set_summary(ctx, summary);
  g_option_context_add_main_entries(ctx, entries, NULL);
  g_option_context_set_help_enabled(ctx, TRUE);
  g_autoptr(GError) error = NULL;
  if (!g_option_context_parse(ctx, argc, argv, &error)) {
    GString *valid = g_string_new(NULL);
    for (GOptionEntry *e = entries; e->long_name; e++)
      g_string_append_printf(valid, "%s--%s", valid->len ? ", " : "", e->long_name);
    fprintf(stderr, "conform %s: %s\nvalid options: %s (see conform %s --help)\n", command, error->message,
            valid->str, command);
    g_string_free(valid, TRUE);
    *exit_code = CONFORM_EXIT_USAGE;
    return FALSE;
  }
  for (int i = 2; i < *argc; i++)
    if ((*argv)[i][0] == '-' && (*argv)[i][1] != '\0') {
      *exit_code = usage_error("%s: unknown option '%s' (see conform %s --help)", command, (*argv)[i], command);
      return FALSE;
    }
  return TRUE;
}

/* ---- progress ---------------------------------------------------------------- */

typedef struct {
  const char *what;
  gboolean tty;
  int last_decile;
  gint64 t0;
  ConformEngine *engine;
} Progress;

static void
progress_cb(void *user, long done, long total)
{
  Progress *p = user;
  double frac = total > 0 ? (double)done / (double)total : 1.0;
  double secs = (double)(g_get_monotonic_time() - p->t0) / 1e6;
  double rate = secs > 0 ? (double)done / secs : 0;
  const GArray *rec = p->engine ? conform_engine_records(p->engine) : NULL;
  float loss = rec && rec->len ? g_array_index(rec, ConformTrainRecord, rec->len - 1).loss : NAN;
  if (p->tty) {
    char bar[31];
    int filled = (int)(frac * 30);
    for (int i = 0; i < 30; i++)
      bar[i] = i < filled ? '#' : '.';
    bar[30] = '\0';
    fprintf(stderr, "\r%s [%s] %3.0f%% %ld/%ld", p->what, bar, frac * 100, done, total);
    if (!isnan(loss))
      fprintf(stderr, " loss %.4f", loss);
    fprintf(stderr, " %.0f/s ", rate);
    if (done == total)
      fputc('\n', stderr);
  } else {
    int decile = (int)(frac * 10);
    if (decile > p->last_decile || done == total) {
      p->last_decile = decile;
      fprintf(stderr, "%s: %ld/%ld (%.0f%%)", p->what, done, total, frac * 100);
      if (!isnan(loss))
        fprintf(stderr, " loss %.4f", loss);
      fprintf(stderr, " %.0f/s\n", rate);
    }
  }
  fflush(stderr);
}

static Progress
progress_new(const char *what, ConformEngine *engine)
{
  return (Progress){what, isatty(STDERR_FILENO), -1, g_get_monotonic_time(), engine};
}

/* ---- shared pieces --------------------------------------------------------------- */

static void
print_warnings(ConformEngine *e)
{
  if (conform_engine_warnings(e))
    fprintf(stderr, "conform: warning: %s\n", conform_engine_warnings(e));
}

static gboolean
sample_and_evaluate(ConformEngine *e, const ConformSampleOptions *o, float **samples, ConformSummary *summary,
                    GError **error)
{
  Progress sp = progress_new("sampling", NULL);
  gint64 t0 = g_get_monotonic_time();
  if (!conform_engine_sample(e, o, samples, NULL, NULL, progress_cb, &sp, error))
    return FALSE;
  double secs = (double)(g_get_monotonic_time() - t0) / 1e6;
  conform_engine_evaluate_for(e, *samples, o->n, o, summary);
  summary->sample_seconds = secs;
  return TRUE;
}

/* --condition-image: unset */
#define NO_CONDITION G_MININT

/* condition: a held-out row (test image) whose inputs every sample takes, or NO_CONDITION. */
static int
train_and_save(ConformConfig *cfg, const char *out_dir, int condition)
{
  GError *error = NULL;
  if (!conform_ensure_dir(out_dir, &error))
    return fail(error);
  g_autoptr(ConformEngine) e = conform_engine_new(cfg, &error);
  if (!e)
    return fail(error);
  /* checked before training, so a bad index costs no training time */
  if (condition != NO_CONDITION && !conform_engine_check_condition(e, condition, &error))
    return fail(error);
  print_warnings(e);
  const char *inject = g_getenv("CONFORM_DEBUG_NAN_STEP");
  if (inject)
    conform_engine_debug_inject_nan(e, g_ascii_strtoll(inject, NULL, 10));
  fprintf(stderr, "conform: training preset '%s' (data %s, dim %d, strategy %s, %ld steps, seed %" G_GUINT64_FORMAT ")\n",
          cfg->preset, cfg->data, conform_engine_dim(e), cfg->strategy, conform_config_total_steps(cfg), cfg->seed);
  Progress tp = progress_new("training", e);
  GError *train_error = NULL;
  gboolean trained = conform_engine_train(e, conform_config_total_steps(cfg), NULL, progress_cb, &tp, &train_error);
  if (!trained && tp.tty)
    fputc('\n', stderr);
  if (conform_engine_dual_warning(e))
    fprintf(stderr, "conform: warning: %s\n", conform_engine_dual_warning(e));
  float *samples = NULL;
  ConformSummary summary;
  ConformSampleOptions so = {.n = cfg->n_samples, .eta = -1, .use_condition = condition != NO_CONDITION,
                             .condition_row = condition};
  if (trained && !sample_and_evaluate(e, &so, &samples, &summary, &error))
    return fail(error);
  /* A failed run still saves its last good state. */
  if (!conform_engine_save(e, out_dir, samples, trained ? so.n : 0, trained ? &summary : NULL, &error)) {
    cf_free_aligned(samples);
    if (train_error)
      g_error_free(train_error);
    return fail(error);
  }
  cf_free_aligned(samples);
  if (!trained) {
    fprintf(stderr, "conform: the last good state was saved in %s\n", out_dir);
    return fail(train_error);
  }
  g_autoptr(GString) tsv = conform_summary_to_tsv(&summary);
  fputs(tsv->str, stdout);
  fprintf(stderr, "conform: results in %s (experiment.ini, weights.ckpt, metrics.csv, samples.csv, summary.tsv)\n",
          out_dir);
  return CONFORM_EXIT_OK;
}

/* ---- commands ------------------------------------------------------------------ */

static int
cmd_presets(int argc, char **argv)
{
  int code = 0;
  GOptionEntry entries[] = {{NULL}};
  if (!parse_options("presets", NULL, "List the bundled presets.", entries, &argc, &argv, &code))
    return code;
  guint n;
  const ConformPreset *p = conform_presets(&n);
  printf("name\tdim\tconstraint\tdescription\n");
  for (guint i = 0; i < n; i++) {
    ConformConfig cfg;
    conform_config_init(&cfg);
    GError *error = NULL;
    if (!conform_config_apply_preset(&cfg, p[i].name, &error))
      return fail(error);
    const CfGeneratorInfo *gi = cf_data_generator_find(p[i].data);
    g_autofree char *con = NULL;
    if (cfg.constraint.m == 0) {
      con = g_strdup("none");
    } else {
      char *txt = cf_constraint_to_text(&cfg.constraint);
      g_strdelimit(txt, "\n", ';');
      g_strchomp(g_strdelimit(txt, ";", ' '));
      if (strlen(txt) > 48)
        con = g_strdup_printf("%d row%s (A x = b)", cfg.constraint.m, cfg.constraint.m == 1 ? "" : "s");
      else
        con = g_strdup(txt);
      free(txt);
    }
    /* image presets: inputs (the superres thumbnail) + the image at the preset's size */
    int dim = gi ? gi->dim : conform_image_source_is(p[i].data) ? cfg.inputs + cfg.image_size * cfg.image_size : 0;
    printf("%s\t%d\t%s\t%s%s\n", p[i].name, dim, con, p[i].description,
           g_strcmp0(p[i].name, CONFORM_DEFAULT_PRESET) == 0 ? " [default]" : "");
    conform_config_clear(&cfg);
  }
  return CONFORM_EXIT_OK;
}

static int
cmd_data(int argc, char **argv)
{
  g_autofree char *preset = NULL, *out = NULL;
  int n = 1000;
  gint64 seed = 1;
  GOptionEntry entries[] = {
    {"preset", 'p', 0, G_OPTION_ARG_STRING, &preset, "Preset whose data to dump", "P"},
    {"n", 'n', 0, G_OPTION_ARG_INT, &n, "Number of samples (default 1000)", "N"},
    {"seed", 's', 0, G_OPTION_ARG_INT64, &seed, "Random seed (default 1)", "S"},
    {"out", 'o', 0, G_OPTION_ARG_FILENAME, &out, "Output CSV file", "FILE.csv"},
    {NULL},
  };
  int code = 0;
  if (!parse_options("data", NULL, "Dump samples of a preset's data (raw space) as CSV.", entries, &argc, &argv, &code))
    return code;
  if (!preset || !out)
    return usage_error("data: --preset and --out are required");
  if (n < 1 || n > CF_DATA_MAX_ROWS)
    return usage_error("data: --n %d is out of range [1, %d]", n, CF_DATA_MAX_ROWS);
  if (seed < 0)
    return usage_error("data: --seed must be non-negative");
  const ConformPreset *p = conform_preset_find(preset);
  if (!p) {
    g_autofree char *names = conform_preset_names();
    return usage_error("unknown preset '%s'; valid presets: %s", preset, names);
  }
  CfDataset d;
  cf_dataset_init(&d);
  CfRng rng;
  cf_rng_seed_stream(&rng, (guint64)seed, 1);
  CfError err;
  if (cf_data_generate(&d, p->data, n, &rng, &err) != CF_OK) {
    fprintf(stderr, "conform: %s\n", err.msg);
    return CONFORM_EXIT_RUNTIME;
  }
  g_autoptr(GString) csv = conform_csv_floats(d.x, d.n, d.dim, "x");
  cf_dataset_clear(&d);
  GError *error = NULL;
  if (!conform_write_atomic(out, csv->str, csv->len, &error))
    return fail(error);
  return CONFORM_EXIT_OK;
}

/* "conform ARG..." with each argument shell-quoted where it needs it. */
static char *
command_line(int argc, char **argv)
{
  GString *s = g_string_new("conform");
  for (int i = 1; i < argc; i++) {
    gboolean plain = argv[i][0] != '\0';
    for (const char *p = argv[i]; *p && plain; p++)
      plain = g_ascii_isalnum(*p) || strchr("-_=.,/:+@%", *p);
    g_autofree char *q = plain ? g_strdup(argv[i]) : g_shell_quote(argv[i]);
    g_string_append_printf(s, " %s", q);
  }
  return g_string_free(s, FALSE);
}

static int
cmd_train(int argc, char **argv)
{
  g_autofree char *command = command_line(argc, argv); /* before option parsing consumes argv */
  g_autofree char *preset = NULL, *strategy = NULL, *out = NULL, *constraint = NULL, *data = NULL, *model = NULL;
  g_auto(GStrv) sets = NULL;
  int steps = -1, condition = NO_CONDITION;
  gint64 seed = -1;
  gboolean dry_run = FALSE;
  GOptionEntry entries[] = {
    {"preset", 'p', 0, G_OPTION_ARG_STRING, &preset, "Preset (see conform presets; default " CONFORM_DEFAULT_PRESET ")", "P"},
    {"model", 'm', 0, G_OPTION_ARG_STRING, &model, "ddpm (diffusion, default) or vae (same as --set model.type=M)", "M"},
    {"strategy", 0, 0, G_OPTION_ARG_STRING, &strategy, "none, projection, projected-sampling, constrained-layer (VAE), cgauss, dual or mirror (DDPM)", "S"},
    {"steps", 0, 0, G_OPTION_ARG_INT, &steps, "Training steps (default: the preset's)", "N"},
    {"seed", 's', 0, G_OPTION_ARG_INT64, &seed, "Random seed", "S"},
    {"out", 'o', 0, G_OPTION_ARG_FILENAME, &out, "Experiment directory to write (default runs/PRESET-SEED)", "DIR"},
    {"constraint", 'c', 0, G_OPTION_ARG_FILENAME, &constraint, "Constraint file (A x = b) replacing the preset's", "FILE"},
    {"data", 'd', 0, G_OPTION_ARG_FILENAME, &data, "CSV file or folder of PNG images replacing the preset's data",
     "FILE.csv|DIR"},
    {"set", 0, 0, G_OPTION_ARG_STRING_ARRAY, &sets, "Any setting, e.g. train.lr=0.001 (repeatable)", "KEY=VALUE"},
    {"condition-image", 0, 0, G_OPTION_ARG_INT, &condition,
     "Every sample takes test image INDEX's inputs (fashion-superres: its thumbnail; any preset with inputs: "
     "held-out row INDEX)", "INDEX"},
    {"dry-run", 0, 0, G_OPTION_ARG_NONE, &dry_run,
     "Print the experiment.ini these options give (every setting, seed, A and b) and exit: nothing is trained or "
     "written", NULL},
    {NULL},
  };
  int code = 0;
  if (!parse_options("train", NULL, "Train a diffusion model or a VAE, sample, evaluate and save an experiment directory.",
                     entries, &argc, &argv, &code))
    return code;
  if (argc > 2)
    return usage_error("train: unexpected argument '%s'", argv[2]);
  ConformConfig cfg;
  conform_config_init(&cfg);
  GError *error = NULL;
  int rc;
  /* a folder of images is recorded with its absolute path, so the experiment loads from anywhere */
  if (data && g_file_test(data, G_FILE_TEST_IS_DIR)) {
    char *abs = g_canonicalize_filename(data, NULL);
    g_free(data);
    data = abs;
  }
  if (!conform_config_apply_preset(&cfg, preset ? preset : CONFORM_DEFAULT_PRESET, &error) ||
      (data && !conform_config_set(&cfg, "data.source", data, &error)) ||
      (constraint && !conform_config_load_constraint(&cfg, constraint, &error)) ||
      (model && !conform_config_set(&cfg, "model.type", model, &error)) ||
      (strategy && !conform_config_set(&cfg, "experiment.strategy", strategy, &error))) {
    rc = fail(error);
    goto out;
  }
  if (steps != -1) {
    g_autofree char *v = g_strdup_printf("%d", steps);
    if (!conform_config_set(&cfg, "train.steps", v, &error)) {
      rc = fail(error);
      goto out;
    }
  }
  if (seed != -1) {
    g_autofree char *v = g_strdup_printf("%" G_GINT64_FORMAT, seed);
    if (!conform_config_set(&cfg, "experiment.seed", v, &error)) {
      rc = fail(error);
      goto out;
    }
  }
  for (char **s = sets; s && *s; s++)
    if (!conform_config_set_assignment(&cfg, *s, &error)) {
      rc = fail(error);
      goto out;
    }
  if (dry_run) {
    g_autoptr(GKeyFile) kf = conform_config_to_keyfile(&cfg);
    g_autofree char *ini = g_key_file_to_data(kf, NULL, NULL);
    rc = conform_config_validate(&cfg, &error) ? (fputs(ini, stdout), CONFORM_EXIT_OK) : fail(error);
    goto out;
  }
  {
    g_free(cfg.command);
    cfg.command = g_steal_pointer(&command);
    g_autofree char *dir = out ? g_strdup(out)
                               : g_strdup_printf("runs/%s-%" G_GUINT64_FORMAT, cfg.preset, cfg.seed);
    rc = train_and_save(&cfg, dir, condition);
  }
out:
  conform_config_clear(&cfg);
  return rc;
}

static int
cmd_sample(int argc, char **argv)
{
  g_autofree char *strategy = NULL, *sampler = NULL, *out = NULL;
  int n = -1, steps = -1, condition = NO_CONDITION;
  gint64 seed = -1;
  double eta = -1;
  GOptionEntry entries[] = {
    {"n", 'n', 0, G_OPTION_ARG_INT, &n, "Number of samples (default: the experiment's)", "N"},
    {"strategy", 0, 0, G_OPTION_ARG_STRING, &strategy, "none, projection, projected-sampling or cgauss (cgauss models only)", "S"},
    {"sampler", 0, 0, G_OPTION_ARG_STRING, &sampler, "ddpm or ddim", "KIND"},
    {"sampling-steps", 0, 0, G_OPTION_ARG_INT, &steps, "DDIM steps", "K"},
    {"eta", 0, 0, G_OPTION_ARG_DOUBLE, &eta, "DDIM eta (>= 0)", "ETA"},
    {"seed", 's', 0, G_OPTION_ARG_INT64, &seed, "Sampling seed", "S"},
    {"out", 'o', 0, G_OPTION_ARG_FILENAME, &out, "Output CSV file (raw space)", "FILE.csv"},
    {"condition-image", 0, 0, G_OPTION_ARG_INT, &condition,
     "Every sample takes test image INDEX's inputs (fashion-superres: its thumbnail; any preset with inputs: "
     "held-out row INDEX)", "INDEX"},
    {NULL},
  };
  int code = 0;
  if (!parse_options("sample", "DIR", "Sample from a trained experiment.", entries, &argc, &argv, &code))
    return code;
  if (argc != 3)
    return usage_error("sample: expected exactly one experiment directory");
  if (!out)
    return usage_error("sample: --out FILE.csv is required");
  if (steps != -1 && steps < 1)
    return usage_error("sample: --sampling-steps must be >= 1");
  if (eta != -1 && (eta < 0 || !isfinite(eta)))
    return usage_error("sample: --eta must be >= 0");
  if (n != -1 && (n < 1 || n > 10000000))
    return usage_error("sample: --n %d is out of range [1, 10000000]", n);
  if (seed < -1)
    return usage_error("sample: --seed must be non-negative");
  GError *error = NULL;
  g_autoptr(ConformEngine) e = conform_engine_load(argv[2], &error);
  if (!e)
    return fail(error);
  const ConformConfig *cfg = conform_engine_config(e);
  if (steps > cfg->T)
    return usage_error("sample: --sampling-steps %d exceeds T = %d", steps, cfg->T);
  if (condition != NO_CONDITION && !conform_engine_check_condition(e, condition, &error))
    return fail(error);
  ConformSampleOptions so = {
    .n = n > 0 ? n : cfg->n_samples, .strategy = strategy, .sampler = sampler, .sampling_steps = steps,
    .eta = eta, .seed = (guint64)seed, .use_seed = seed >= 0, .use_condition = condition != NO_CONDITION,
    .condition_row = condition,
  };
  float *x = NULL;
  Progress sp = progress_new("sampling", NULL);
  if (!conform_engine_sample(e, &so, &x, NULL, NULL, progress_cb, &sp, &error))
    return fail(error);
  g_autoptr(GString) csv = conform_csv_floats(x, so.n, conform_engine_dim(e), "x");
  cf_free_aligned(x);
  if (!conform_write_atomic(out, csv->str, csv->len, &error))
    return fail(error);
  return CONFORM_EXIT_OK;
}

static int
cmd_evaluate(int argc, char **argv)
{
  int n = -1;
  g_autofree char *strategy = NULL;
  GOptionEntry entries[] = {
    {"n", 'n', 0, G_OPTION_ARG_INT, &n, "Number of samples (default: the experiment's)", "N"},
    {"strategy", 0, 0, G_OPTION_ARG_STRING, &strategy, "none, projection, projected-sampling or cgauss (cgauss models only)", "S"},
    {NULL},
  };
  int code = 0;
  if (!parse_options("evaluate", "DIR", "Sample from a trained experiment and print the summary metrics.", entries,
                     &argc, &argv, &code))
    return code;
  if (argc != 3)
    return usage_error("evaluate: expected exactly one experiment directory");
  if (n != -1 && (n < 2 || n > 10000000))
    return usage_error("evaluate: --n %d is out of range [2, 10000000]", n);
  GError *error = NULL;
  g_autoptr(ConformEngine) e = conform_engine_load(argv[2], &error);
  if (!e)
    return fail(error);
  ConformSampleOptions so = {.n = n > 0 ? n : conform_engine_config(e)->n_samples, .strategy = strategy, .eta = -1};
  float *x = NULL;
  ConformSummary s;
  if (!sample_and_evaluate(e, &so, &x, &s, &error))
    return fail(error);
  cf_free_aligned(x);
  g_autoptr(GString) tsv = conform_summary_to_tsv(&s);
  fputs(tsv->str, stdout);
  return CONFORM_EXIT_OK;
}

static int
cmd_check_constraint(int argc, char **argv)
{
  int dim = 0;
  GOptionEntry entries[] = {
    {"dim", 0, 0, G_OPTION_ARG_INT, &dim, "Data dimension the constraint must match", "N"},
    {NULL},
  };
  int code = 0;
  if (!parse_options("check-constraint", "FILE", "Validate a constraint file A x = b.", entries, &argc, &argv, &code))
    return code;
  if (argc != 3)
    return usage_error("check-constraint: expected exactly one constraint file");
  if (dim < 1 || dim > CF_CONSTRAINT_MAX_COLS)
    return usage_error("check-constraint: --dim N is required (1..%d)", CF_CONSTRAINT_MAX_COLS);
  CfConstraint c;
  cf_constraint_init(&c);
  CfError err;
  if (cf_constraint_load(&c, argv[2], &err) != CF_OK) {
    fprintf(stderr, "conform: %s\n", err.msg);
    return CONFORM_EXIT_RUNTIME;
  }
  CfConstraintReport r;
  memset(&r, 0, sizeof r);
  CfStatus st = cf_constraint_analyze(&c, dim, &r, &err);
  if (st == CF_ERR_SHAPE) {
    fprintf(stderr, "conform: %s: %s\n", argv[2], err.msg);
    cf_constraint_clear(&c);
    return CONFORM_EXIT_RUNTIME;
  }
  printf("rows\t%d\ncols\t%d\nrank\t%d\nrank_tolerance\t%.3g\nredundant_rows\t", r.m, r.n, r.rank, r.rank_tol);
  if (r.n_redundant == 0)
    printf("none");
  for (int i = 0; i < r.n_redundant; i++)
    printf("%s%d", i ? "," : "", r.redundant_rows[i] + 1);
  printf("\nconsistent\t%s\nresidual\t%.6g\nresidual_relative\t%.6g\ncondition_number\t%.6g\nnullspace_dim\t%d\n",
         r.consistent ? "yes" : "no", r.residual, r.residual_rel, r.cond, r.nullity);
  int rc = CONFORM_EXIT_OK;
  if (st != CF_OK) {
    fprintf(stderr, "conform: %s: %s\n", argv[2], err.msg);
    rc = CONFORM_EXIT_RUNTIME;
  } else {
    printf("usable\tyes\n");
    if (r.n_redundant > 0)
      fprintf(stderr, "conform: warning: %d redundant row(s) will be dropped (row numbers are 1-based)\n",
              r.n_redundant);
  }
  cf_constraint_report_clear(&r);
  cf_constraint_clear(&c);
  return rc;
}

int
conform_cli_run_headless(const char *preset, const char *out_dir)
{
  ConformConfig cfg;
  conform_config_init(&cfg);
  GError *error = NULL;
  if (!conform_config_apply_preset(&cfg, preset, &error)) {
    conform_config_clear(&cfg);
    return fail(error);
  }
  g_autofree char *dir = NULL;
  if (out_dir) {
    dir = g_strdup(out_dir);
  } else {
    g_autoptr(GDateTime) now = g_date_time_new_now_local();
    g_autofree char *stamp = g_date_time_format(now, "%Y%m%d-%H%M%S");
    g_autofree char *name = g_strdup_printf("%s-%s", preset, stamp);
    dir = g_build_filename(g_get_user_data_dir(), "conform", "runs", name, NULL);
  }
  fprintf(stderr, "conform: no window yet; running the default preset '%s' headless\n", preset);
  int rc = train_and_save(&cfg, dir, NO_CONDITION);
  conform_config_clear(&cfg);
  return rc;
}

static const char *const command_names[] = {"presets", "data", "train", "sample", "evaluate", "check-constraint",
                                            "compare", "bench", "train-classifier", "evaluate-classifier", "help",
                                            "--help", "-h", "--version", NULL};

gboolean
conform_cli_is_command(const char *arg)
{
  /* Anything that is not an option goes to the CLI so that a mistyped
   * command gets a clear "unknown command" instead of opening a window;
   * an existing directory is an experiment for the window to open. */
  if (!arg)
    return FALSE;
  if (g_strv_contains(command_names, arg))
    return TRUE;
  return arg[0] != '-' && !g_file_test(arg, G_FILE_TEST_IS_DIR);
}

static void
print_usage(FILE *f)
{
  fputs("usage: conform [COMMAND] [OPTIONS]\n"
        "\n"
        "commands:\n"
        "  presets            list the bundled presets\n"
        "  data               dump a preset's data as CSV\n"
        "  train              train, sample, evaluate and save an experiment\n"
        "  sample DIR         sample from a trained experiment\n"
        "  evaluate DIR       print an experiment's summary metrics\n"
        "  compare            train strategies side by side (conform compare --help)\n"
        "  check-constraint FILE --dim N   validate a constraint file\n"
        "  bench              measure speed (conform bench --help)\n"
        "  train-classifier --out FILE.ckpt   train the Fashion-MNIST image classifier\n"
        "  evaluate-classifier [CKPT]         its test accuracy (default: the bundled one)\n"
        "\n"
        "Without a command, conform opens the window on the default preset (" CONFORM_DEFAULT_PRESET ");\n"
        "without a display it runs that preset headless.\n"
        "Each command takes --help.\n",
        f);
}

int
conform_cli_main(int argc, char **argv)
{
  setlocale(LC_ALL, "");
  setlocale(LC_NUMERIC, "C"); /* numbers in files always use '.' */
  if (argc < 2)
    return conform_cli_run_headless(CONFORM_DEFAULT_PRESET, NULL);
  const char *cmd = argv[1];
  static const struct {
    const char *name;
    int (*fn)(int, char **);
  } commands[] = {
    {"presets", cmd_presets}, {"data", cmd_data}, {"train", cmd_train}, {"sample", cmd_sample},
    {"evaluate", cmd_evaluate}, {"check-constraint", cmd_check_constraint}, {"compare", conform_compare_main},
    {"bench", conform_bench_main},
    {"train-classifier", conform_train_classifier_main}, {"evaluate-classifier", conform_evaluate_classifier_main},
  };
  for (guint i = 0; i < G_N_ELEMENTS(commands); i++)
    if (strcmp(cmd, commands[i].name) == 0)
      return commands[i].fn(argc, argv);
  if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
    print_usage(stdout);
    return CONFORM_EXIT_OK;
  }
  if (strcmp(cmd, "--version") == 0) {
    printf("conform %s\n", PACKAGE_VERSION);
    return CONFORM_EXIT_OK;
  }
  fprintf(stderr, "conform: unknown command '%s'\n", cmd);
  print_usage(stderr);
  return CONFORM_EXIT_USAGE;
}
