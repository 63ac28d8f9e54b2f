/* End-to-end tests of the `conform` command line: the contract other tools
 * and users rely on (outputs, exit codes, messages, files). */
#include <glib.h>
#include <glib/gstdio.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "checkpoint.h"

#include "cli-run.h"
#include "conform-config.h"

static char *
write_tmp(const char *name, const char *contents)
{
  char *p = tmp_path(name);
  g_assert_true(g_file_set_contents(p, contents, -1, NULL));
  return p;
}

static double
summary_value(const char *tsv, const char *key)
{
  g_auto(GStrv) lines = g_strsplit(tsv, "\n", -1);
  for (char **l = lines; *l; l++) {
    g_auto(GStrv) f = g_strsplit(*l, "\t", 2);
    if (f[0] && f[1] && strcmp(f[0], key) == 0)
      return g_ascii_strtod(f[1], NULL);
  }
  g_error("summary has no %s:\n%s", key, tsv);
  return NAN;
}

static char *
read_text(const char *dir, const char *name)
{
  g_autofree char *p = g_build_filename(dir, name, NULL);
  char *s = NULL;
  g_assert_true(g_file_get_contents(p, &s, NULL, NULL));
  return s;
}

/* A short simplex-3d training run shared by several tests. */
static const char *
trained_dir(void)
{
  static char *dir;
  if (!dir) {
    dir = tmp_path("simplex");
    Run r = run("train", "--preset", "simplex-3d", "--steps", "300", "--seed", "7", "--out", dir, "--set", "sample.n=400",
                NULL);
    if (r.status != 0)
      g_error("train failed: %s", r.err);
    run_clear(&r);
  }
  return dir;
}

static void
test_presets(void)
{
  Run r = run("presets", NULL);
  g_assert_cmpint(r.status, ==, 0);
  const char *names[] = {"gaussians", "moons", "checkerboard", "spiral", "simplex-3d", "charge-neutral",
                         "flow-network", "portfolio"};
  for (guint i = 0; i < G_N_ELEMENTS(names); i++)
    g_assert_nonnull(strstr(r.out, names[i]));
  g_assert_true(g_str_has_prefix(r.out, "name\tdim\tconstraint\tdescription\n"));
  g_assert_nonnull(strstr(r.out, "simplex-3d\t3\t"));
  run_clear(&r);
}

static void
test_data(void)
{
  g_autofree char *out = tmp_path("data.csv");
  Run r = run("data", "--preset", "charge-neutral", "--n", "50", "--seed", "3", "--out", out, NULL);
  g_assert_cmpint(r.status, ==, 0);
  g_autofree char *csv = NULL;
  g_assert_true(g_file_get_contents(out, &csv, NULL, NULL));
  g_auto(GStrv) lines = g_strsplit(csv, "\n", -1);
  g_assert_cmpstr(lines[0], ==, "x0,x1,x2,x3,x4,x5,x6,x7,x8,x9,x10,x11");
  g_assert_cmpuint(g_strv_length(lines), ==, 52); /* header + 50 + trailing "" */
  /* Raw space: each row sums to 0. */
  for (int i = 1; i <= 50; i++) {
    g_auto(GStrv) f = g_strsplit(lines[i], ",", -1);
    double s = 0;
    for (char **c = f; *c; c++)
      s += g_ascii_strtod(*c, NULL);
    g_assert_cmpfloat(fabs(s), <, 1e-5);
  }
  run_clear(&r);
}

static void
test_train_outputs(void)
{
  const char *dir = trained_dir();
  g_autofree char *ini = read_text(dir, "experiment.ini");
  g_assert_nonnull(strstr(ini, "app_version="));
  g_assert_nonnull(strstr(ini, "seed=7"));
  g_assert_nonnull(strstr(ini, "strategy=none"));
  g_assert_nonnull(strstr(ini, "A=1 1 1"));
  g_assert_nonnull(strstr(ini, "b=1"));
  /* the command that made it, and it survives loading and saving again */
  g_autofree char *want = g_strdup_printf("command=conform train --preset simplex-3d --steps 300 --seed 7 --out %s "
                                          "--set sample.n=400\n", dir);
  g_assert_nonnull(strstr(ini, want));
  {
    g_autoptr(GKeyFile) kf = g_key_file_new();
    g_autofree char *path = g_build_filename(dir, "experiment.ini", NULL);
    g_assert_true(g_key_file_load_from_file(kf, path, G_KEY_FILE_NONE, NULL));
    ConformConfig cfg;
    g_autoptr(GError) error = NULL;
    conform_config_init(&cfg);
    g_assert_true(conform_config_from_keyfile(&cfg, kf, path, &error));
    g_assert_true(g_str_has_prefix(cfg.command, "conform train --preset simplex-3d"));
    g_autoptr(GKeyFile) again = conform_config_to_keyfile(&cfg);
    g_autofree char *cmd = g_key_file_get_string(again, "experiment", "command", NULL);
    g_assert_cmpstr(cmd, ==, cfg.command);
    conform_config_clear(&cfg);
  }
  g_autofree char *metrics = read_text(dir, "metrics.csv");
  g_assert_true(g_str_has_prefix(metrics, "step,loss,"));
  g_autofree char *samples = read_text(dir, "samples.csv");
  g_assert_true(g_str_has_prefix(samples, "x0,x1,x2\n"));
  g_autofree char *summary = read_text(dir, "summary.tsv");
  const char *keys[] = {"violation_mean", "violation_median", "violation_p99", "violation_max", "frac_satisfied",
                        "energy_distance", "mmd", "train_seconds"};
  for (guint i = 0; i < G_N_ELEMENTS(keys); i++)
    g_assert_true(isfinite(summary_value(summary, keys[i])));
  /* An unconstrained model almost surely violates A x = b. */
  g_assert_cmpfloat(summary_value(summary, "frac_satisfied"), <, 0.05);
}

static void
test_projection_exact(void)
{
  const char *dir = trained_dir();
  Run r = run("evaluate", dir, "--strategy", "projection", "--n", "300", NULL);
  g_assert_cmpint(r.status, ==, 0);
  g_assert_cmpfloat(summary_value(r.out, "frac_satisfied"), ==, 1.0);
  g_assert_cmpfloat(summary_value(r.out, "violation_max"), <, 1e-5);
  g_test_message("projection: max violation %.3g", summary_value(r.out, "violation_max"));
  run_clear(&r);
  r = run("evaluate", dir, "--strategy", "projected-sampling", "--n", "300", NULL);
  g_assert_cmpint(r.status, ==, 0);
  g_assert_cmpfloat(summary_value(r.out, "frac_satisfied"), ==, 1.0);
  g_test_message("projected-sampling: max violation %.3g", summary_value(r.out, "violation_max"));
  run_clear(&r);
}

static void
test_sample_deterministic(void)
{
  const char *dir = trained_dir();
  g_autofree char *a = tmp_path("s1.csv"), *b = tmp_path("s2.csv");
  Run r1 = run("sample", dir, "--n", "64", "--seed", "5", "--sampler", "ddim", "--sampling-steps", "20", "--out", a, NULL);
  Run r2 = run("sample", dir, "--n", "64", "--seed", "5", "--sampler", "ddim", "--sampling-steps", "20", "--out", b, NULL);
  g_assert_cmpint(r1.status, ==, 0);
  g_assert_cmpint(r2.status, ==, 0);
  g_autofree char *ca = NULL, *cb = NULL;
  g_assert_true(g_file_get_contents(a, &ca, NULL, NULL));
  g_assert_true(g_file_get_contents(b, &cb, NULL, NULL));
  g_assert_cmpstr(ca, ==, cb);
  g_auto(GStrv) lines = g_strsplit(ca, "\n", -1);
  g_assert_cmpuint(g_strv_length(lines), ==, 66);
  run_clear(&r1);
  run_clear(&r2);
}

static void
test_training_bit_identical(void)
{
  /* Same seed and BLAS thread count (the test env sets 1) => same bytes. */
  g_autofree char *d1 = tmp_path("rep1"), *d2 = tmp_path("rep2");
  for (int k = 0; k < 2; k++) {
    Run r = run("train", "--preset", "gaussians", "--steps", "150", "--seed", "11", "--out", k ? d2 : d1, "--set",
                "sample.n=100", NULL);
    g_assert_cmpint(r.status, ==, 0);
    run_clear(&r);
  }
  const char *files[] = {"weights.ckpt", "samples.csv", "metrics.csv"};
  for (guint i = 0; i < G_N_ELEMENTS(files); i++) {
    g_autofree char *p1 = g_build_filename(d1, files[i], NULL), *p2 = g_build_filename(d2, files[i], NULL);
    g_autofree char *c1 = NULL, *c2 = NULL;
    gsize l1, l2;
    g_assert_true(g_file_get_contents(p1, &c1, &l1, NULL));
    g_assert_true(g_file_get_contents(p2, &c2, &l2, NULL));
    if (strcmp(files[i], "metrics.csv") == 0) {
      /* the seconds column is wall time: compare the other columns */
      g_auto(GStrv) a = g_strsplit(c1, "\n", -1), b = g_strsplit(c2, "\n", -1);
      g_assert_cmpuint(g_strv_length(a), ==, g_strv_length(b));
      for (guint k = 0; a[k]; k++) {
        char *ca = strrchr(a[k], ','), *cb = strrchr(b[k], ',');
        if (ca) *ca = 0;
        if (cb) *cb = 0;
        g_assert_cmpstr(a[k], ==, b[k]);
      }
    } else if (strcmp(files[i], "weights.ckpt") == 0) {
      /* the header holds wall time too: compare every arena bit for bit */
      CfCheckpoint k1, k2;
      g_assert_cmpint(cf_checkpoint_decode(&k1, (unsigned char *)c1, l1, p1, NULL), ==, CF_OK);
      g_assert_cmpint(cf_checkpoint_decode(&k2, (unsigned char *)c2, l2, p2, NULL), ==, CF_OK);
      g_assert_cmpint(k1.n_arenas, ==, k2.n_arenas);
      g_assert_cmpint(k1.n_arenas, >=, 4);
      for (int a = 0; a < k1.n_arenas; a++) {
        g_assert_cmpstr(k1.arenas[a].name, ==, k2.arenas[a].name);
        g_assert_cmpmem(k1.arenas[a].data, k1.arenas[a].count * 4, k2.arenas[a].data, k2.arenas[a].count * 4);
      }
      cf_checkpoint_clear(&k1);
      cf_checkpoint_clear(&k2);
    } else {
      g_assert_cmpstr(c1, ==, c2);
    }
  }
}

static void
test_check_constraint(void)
{
  g_autofree char *good = write_tmp("good.txt", "# plane\n1 1 1 | 1\n1 -1 0 | 0\n");
  Run r = run("check-constraint", good, "--dim", "3", NULL);
  g_assert_cmpint(r.status, ==, 0);
  g_assert_nonnull(strstr(r.out, "rank\t2\n"));
  g_assert_nonnull(strstr(r.out, "nullspace_dim\t1\n"));
  g_assert_nonnull(strstr(r.out, "consistent\tyes\n"));
  g_assert_nonnull(strstr(r.out, "condition_number\t"));
  run_clear(&r);

  g_autofree char *red = write_tmp("red.txt", "1 0 0 | 1\n0 1 0 | 2\n1 1 0 | 3\n");
  r = run("check-constraint", red, "--dim", "3", NULL);
  g_assert_cmpint(r.status, ==, 0);
  g_assert_nonnull(strstr(r.out, "redundant_rows\t3\n"));
  g_assert_nonnull(strstr(r.err, "redundant"));
  run_clear(&r);

  g_autofree char *inc = write_tmp("inc.txt", "1 0 0 | 1\n0 1 0 | 2\n1 1 0 | 4\n");
  r = run("check-constraint", inc, "--dim", "3", NULL);
  g_assert_cmpint(r.status, ==, 1);
  g_assert_nonnull(strstr(r.out, "consistent\tno\n"));
  g_assert_nonnull(strstr(r.err, "residual"));
  run_clear(&r);

  r = run("check-constraint", good, "--dim", "4", NULL);
  g_assert_cmpint(r.status, ==, 1);
  g_assert_nonnull(strstr(r.err, "good.txt"));
  run_clear(&r);

  r = run("check-constraint", good, NULL);
  g_assert_cmpint(r.status, ==, 2);
  run_clear(&r);
}

static void
test_usage_errors(void)
{
  struct {
    const char *args[8];
    const char *expect;
  } cases[] = {
    {{"train", "--preset", "nope"}, "valid presets: gaussians"},
    {{"train", "--strategy", "magic"}, "valid values: none, projection, projected-sampling"},
    {{"train", "--frobnicate"}, "valid options:"},
    {{"train", "--set", "train.lr=abc"}, "train.lr: 'abc' is not a finite number"},
    {{"train", "--set", "train.batch=0"}, "out of range"},
    {{"train", "--set", "model.bogus=1"}, "unknown setting 'model.bogus'; valid settings:"},
    {{"train", "--set", "nokey"}, "key=value"},
    {{"train", "--preset", "gaussians", "--strategy", "projection"}, "needs a constraint"},
    {{"frobnicate"}, "unknown command"},
    {{"sample"}, "exactly one experiment directory"},
    {{"bench", "nothing"}, "valid workloads"},
    {{"data", "--preset", "moons"}, "--out are required"},
    {{"train", "--strategy", "constrained-layer"}, "needs model.type=vae"},
    {{"train", "--preset", "moons", "--strategy", "cgauss"}, "needs a constraint"},
    {{"train", "--set", "model.type=vae", "--strategy", "projected-sampling"}, "needs model.type=ddpm"},
    {{"train", "--set", "model.type=gan"}, "valid values: ddpm, vae"},
    {{"train", "--model", "gan"}, "valid values: ddpm, vae"},
  };
  for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
    const char *const *a = cases[i].args;
    Run r = run(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]);
    if (r.status != 2 || !strstr(r.err, cases[i].expect))
      g_error("case %u (%s %s %s): status %d, stderr: %s", i, a[0], a[1] ? a[1] : "", a[2] ? a[2] : "", r.status,
              r.err);
    run_clear(&r);
  }
}

static void
test_bad_constraint_files(void)
{
  struct {
    const char *name, *text, *expect;
  } cases[] = {
    {"ragged.txt", "1 1 1 | 1\n1 1 | 0\n", "ragged.txt:2"},
    {"cell.txt", "1 abc 1 | 1\n", "ragged.txt"},
    {"nan.txt", "1 nan 1 | 1\n", "nan.txt:1"},
    {"zero.txt", "0 0 0 | 0\n", "zero.txt"},
    {"dim.txt", "1 1 | 1\n", "dimension"},
    {"inconsistent.txt", "1 1 1 | 1\n2 2 2 | 3\n", "residual"},
  };
  cases[1].expect = "cell.txt:1:3";
  for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
    g_autofree char *f = write_tmp(cases[i].name, cases[i].text);
    g_autofree char *out = tmp_path("badrun");
    Run r = run("train", "--preset", "simplex-3d", "--constraint", f, "--steps", "1", "--out", out, NULL);
    if (r.status != 1 || !strstr(r.err, cases[i].expect))
      g_error("%s: status %d, stderr: %s", cases[i].name, r.status, r.err);
    run_clear(&r);
    /* Nothing half-written. */
    g_autofree char *ckpt = g_build_filename(out, "weights.ckpt", NULL);
    g_assert_false(g_file_test(ckpt, G_FILE_TEST_EXISTS));
  }
}

static void
test_redundant_rows_warning(void)
{
  g_autofree char *f = write_tmp("redundant.txt", "1 1 1 | 1\n2 2 2 | 2\n");
  g_autofree char *out = tmp_path("redrun");
  Run r = run("train", "--preset", "simplex-3d", "--constraint", f, "--steps", "20", "--strategy", "projection",
              "--out", out, "--set", "sample.n=50", NULL);
  g_assert_cmpint(r.status, ==, 0);
  g_assert_nonnull(strstr(r.err, "dropped 1 redundant row (row 2"));
  g_assert_cmpfloat(summary_value(r.out, "frac_satisfied"), ==, 1.0);
  run_clear(&r);
}

static void
test_unwritable_output(void)
{
  if (getuid() == 0)
    g_test_message("running as root: using a path under a regular file instead of permissions");
  g_autofree char *file = write_tmp("plainfile", "x");
  g_autofree char *out = g_build_filename(file, "sub", NULL);
  Run r = run("train", "--preset", "gaussians", "--steps", "1", "--out", out, NULL);
  g_assert_cmpint(r.status, ==, 1);
  g_assert_nonnull(strstr(r.err, "cannot create directory"));
  run_clear(&r);
  r = run("data", "--preset", "moons", "--out", "/nonexistent-dir/x.csv", NULL);
  g_assert_cmpint(r.status, ==, 1);
  g_assert_nonnull(strstr(r.err, "/nonexistent-dir/x.csv"));
  run_clear(&r);
}

static char *
copy_experiment(const char *name)
{
  const char *src = trained_dir();
  char *dst = tmp_path(name);
  g_mkdir_with_parents(dst, 0755);
  const char *files[] = {"experiment.ini", "weights.ckpt"};
  for (guint i = 0; i < G_N_ELEMENTS(files); i++) {
    g_autofree char *a = g_build_filename(src, files[i], NULL), *b = g_build_filename(dst, files[i], NULL);
    g_autofree char *c = NULL;
    gsize l;
    g_assert_true(g_file_get_contents(a, &c, &l, NULL));
    g_assert_true(g_file_set_contents(b, c, (gssize)l, NULL));
  }
  return dst;
}

static void
test_bad_checkpoints(void)
{
  g_autofree char *out = tmp_path("x.csv");
  /* truncated */
  g_autofree char *d1 = copy_experiment("trunc");
  g_autofree char *c1 = g_build_filename(d1, "weights.ckpt", NULL);
  g_assert_cmpint(truncate(c1, 1000), ==, 0);
  Run r = run("sample", d1, "--out", out, NULL);
  g_assert_cmpint(r.status, ==, 1);
  g_assert_nonnull(strstr(r.err, "weights.ckpt"));
  g_assert_true(strstr(r.err, "truncated") != NULL || strstr(r.err, "checksum") != NULL);
  run_clear(&r);
  /* corrupted */
  g_autofree char *d2 = copy_experiment("corrupt");
  g_autofree char *c2 = g_build_filename(d2, "weights.ckpt", NULL);
  g_autofree char *bytes = NULL;
  gsize len;
  g_assert_true(g_file_get_contents(c2, &bytes, &len, NULL));
  bytes[len / 2] ^= 0x55;
  g_assert_true(g_file_set_contents(c2, bytes, (gssize)len, NULL));
  r = run("evaluate", d2, NULL);
  g_assert_cmpint(r.status, ==, 1);
  g_assert_nonnull(strstr(r.err, "checksum"));
  run_clear(&r);
  /* a different model shape */
  g_autofree char *d3 = copy_experiment("mismatch");
  g_autofree char *ini = g_build_filename(d3, "experiment.ini", NULL);
  g_autofree char *text = NULL;
  g_assert_true(g_file_get_contents(ini, &text, NULL, NULL));
  GString *s = g_string_new(text);
  g_string_replace(s, "width=128", "width=64", 1);
  g_assert_true(g_file_set_contents(ini, s->str, -1, NULL));
  g_string_free(s, TRUE);
  r = run("sample", d3, "--out", out, NULL);
  g_assert_cmpint(r.status, ==, 1);
  g_assert_nonnull(strstr(r.err, "different model"));
  run_clear(&r);
  /* not an experiment */
  r = run("sample", "/nonexistent", "--out", out, NULL);
  g_assert_cmpint(r.status, ==, 1);
  run_clear(&r);
}

static void
test_nan_training(void)
{
  /* A NaN injected at step 30 (as a blow-up would produce it). */
  g_autofree char *dir = tmp_path("nan");
  g_setenv("CONFORM_DEBUG_NAN_STEP", "30", TRUE);
  Run r = run("train", "--preset", "gaussians", "--steps", "100", "--out", dir, NULL);
  g_unsetenv("CONFORM_DEBUG_NAN_STEP");
  g_assert_cmpint(r.status, ==, 1);
  g_assert_nonnull(strstr(r.err, "non-finite loss"));
  g_assert_nonnull(strstr(r.err, "at step 30"));
  g_assert_nonnull(strstr(r.err, "last good state was saved"));
  run_clear(&r);
  /* The saved state loads (the loader rejects non-finite arenas) and samples. */
  g_autofree char *out = tmp_path("nan.csv");
  r = run("sample", dir, "--n", "10", "--out", out, NULL);
  g_assert_cmpint(r.status, ==, 0);
  run_clear(&r);
}

static void
test_csv_data(void)
{
  GString *csv = g_string_new("a,b\n");
  for (int i = 0; i < 200; i++)
    g_string_append_printf(csv, "%g,%g\n", sin(i * 0.1), cos(i * 0.1));
  g_autofree char *f = write_tmp("mydata.csv", csv->str);
  g_string_free(csv, TRUE);
  g_autofree char *dir = tmp_path("csvrun");
  Run r = run("train", "--preset", "gaussians", "--data", f, "--steps", "50", "--out", dir, "--set", "sample.n=50",
              NULL);
  g_assert_cmpint(r.status, ==, 0);
  run_clear(&r);
  g_autofree char *bad = write_tmp("bad.csv", "1,2\n3,x\n");
  r = run("train", "--data", bad, "--steps", "5", "--out", dir, NULL);
  g_assert_cmpint(r.status, ==, 1);
  g_assert_nonnull(strstr(r.err, "bad.csv:2:3"));
  run_clear(&r);
}

/* The bench's output contract (not its speed): sgemm-peak then gemm-peak
 * first, one name<TAB>value<TAB>unit<TAB>note line per figure, fractions of
 * the engine's own GEMM peak in (0, 1] (those of OpenBLAS's sgemm peak can
 * pass 1 where the engine's kernel is the faster). */
static void
test_bench_format(void)
{
  Run r = run("bench", "--quick", "toy-ddpm-train", "cgauss-sum", NULL);
  g_assert_cmpint(r.status, ==, 0);
  g_auto(GStrv) lines = g_strsplit(r.out, "\n", -1);
  g_assert_true(g_str_has_prefix(lines[0], "sgemm-peak\t"));
  g_assert_true(g_str_has_prefix(lines[1], "gemm-peak\t"));
  const char *expect[] = {"toy-ddpm-train",          "toy-ddpm-train-gflops", "toy-ddpm-train-peak-fraction",
                          "toy-ddpm-train-gemm-fraction", "toy-ddpm-train-peak-rss", "cgauss-sum",
                          "cgauss-sum-peak-rss"};
  for (guint i = 0; i < G_N_ELEMENTS(expect); i++) {
    gboolean found = FALSE;
    for (char **l = lines; *l && **l; l++) {
      g_auto(GStrv) f = g_strsplit(*l, "\t", -1);
      g_assert_cmpuint(g_strv_length(f), ==, 4);
      double v = g_ascii_strtod(f[1], NULL);
      g_assert_true(isfinite(v) && v > 0);
      if (g_str_has_suffix(f[0], "-gemm-fraction"))
        g_assert_cmpfloat(v, <=, 1.0);
      found |= strcmp(f[0], expect[i]) == 0;
    }
    if (!found)
      g_error("bench printed no %s line:\n%s", expect[i], r.out);
  }
  run_clear(&r);
  r = run("bench", "--threads", "0", NULL);
  g_assert_cmpint(r.status, ==, 2);
  run_clear(&r);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  conform_bin = g_strdup(g_getenv("CONFORM_BIN"));
  g_assert_nonnull(conform_bin);
  tmpdir = g_dir_make_tmp("conform-cli-XXXXXX", NULL);
  g_assert_nonnull(tmpdir);
  g_test_add_func("/cli/presets", test_presets);
  g_test_add_func("/cli/data", test_data);
  g_test_add_func("/cli/train-outputs", test_train_outputs);
  g_test_add_func("/cli/projection-exact", test_projection_exact);
  g_test_add_func("/cli/sample-deterministic", test_sample_deterministic);
  g_test_add_func("/cli/training-bit-identical", test_training_bit_identical);
  g_test_add_func("/cli/check-constraint", test_check_constraint);
  g_test_add_func("/cli/usage-errors", test_usage_errors);
  g_test_add_func("/cli/bad-constraint-files", test_bad_constraint_files);
  g_test_add_func("/cli/redundant-rows", test_redundant_rows_warning);
  g_test_add_func("/cli/unwritable-output", test_unwritable_output);
  g_test_add_func("/cli/bad-checkpoints", test_bad_checkpoints);
  g_test_add_func("/cli/nan-training", test_nan_training);
  g_test_add_func("/cli/csv-data", test_csv_data);
  g_test_add_func("/cli/bench-format", test_bench_format);
  int rc = g_test_run();
  if (rc == 0) {
    g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", tmpdir);
    (void)!system(cmd);
  }
  return rc;
}
