#include <glib.h>
#include <glib/gstdio.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "conform-engine.h"
#include "metrics.h"
#include "rng.h"
#include "status.h"

static ConformEngine *
engine_for(const char *preset, int steps, const char *const *sets)
{
  ConformConfig c;
  conform_config_init(&c);
  g_assert_true(conform_config_apply_preset(&c, preset, NULL));
  g_autofree char *s = g_strdup_printf("%d", steps);
  g_assert_true(conform_config_set(&c, "train.steps", s, NULL));
  for (; sets && *sets; sets++)
    g_assert_true(conform_config_set_assignment(&c, *sets, NULL));
  g_autoptr(GError) e = NULL;
  ConformEngine *eng = conform_engine_new(&c, &e);
  g_assert_no_error(e);
  conform_config_clear(&c);
  return eng;
}

/* Draws n samples from the Gaussian with the data's mean and covariance. */
static float *
moment_matched(const float *x, int n, int d, int n_out, CfRng *rng)
{
  double mu[2] = {0}, C[4] = {0};
  g_assert_cmpint(d, ==, 2);
  for (int i = 0; i < n; i++)
    for (int j = 0; j < 2; j++)
      mu[j] += x[i * 2 + j] / n;
  for (int i = 0; i < n; i++)
    for (int j = 0; j < 2; j++)
      for (int k = 0; k < 2; k++)
        C[j * 2 + k] += (x[i * 2 + j] - mu[j]) * (x[i * 2 + k] - mu[k]) / (n - 1);
  double l00 = sqrt(C[0]), l10 = C[2] / l00, l11 = sqrt(C[3] - l10 * l10);
  float *out = g_new(float, (gsize)n_out * 2);
  for (int i = 0; i < n_out; i++) {
    double z0 = cf_rng_normal(rng), z1 = cf_rng_normal(rng);
    out[i * 2] = (float)(mu[0] + l00 * z0);
    out[i * 2 + 1] = (float)(mu[1] + l10 * z0 + l11 * z1);
  }
  return out;
}

/* A trained model on `gaussians` beats a moment-matched Gaussian by a wide
 * margin in energy distance to held-out data. */
static void
test_quality_beats_gaussian(void)
{
  const int steps = 3000;
  g_autoptr(ConformEngine) e = engine_for("gaussians", steps, NULL);
  g_assert_true(conform_engine_train(e, steps, NULL, NULL, NULL, NULL));
  ConformSampleOptions so = {.n = 1000, .eta = -1};
  float *x = NULL;
  g_assert_true(conform_engine_sample(e, &so, &x, NULL, NULL, NULL, NULL, NULL));
  ConformSummary s;
  conform_engine_evaluate(e, x, so.n, &s);
  int nref;
  const float *ref = conform_engine_reference(e, &nref);
  CfRng rng;
  cf_rng_seed(&rng, 99);
  float *g = moment_matched(ref, nref, 2, 1000, &rng);
  double ed_gauss = cf_energy_distance(g, 1000, ref, nref, 2, 2000, &rng);
  g_test_message("energy distance: model %.4f, moment-matched Gaussian %.4f (mmd model %.4g)", s.energy_distance,
                 ed_gauss, s.mmd);
  g_assert_cmpfloat(s.energy_distance, <, 0.25 * ed_gauss);
  g_free(g);
  cf_free_aligned(x);
}

static bool
abort_after(void *user)
{
  int *left = user;
  return (*left)-- <= 0;
}

static void
test_cancel(void)
{
  g_autoptr(ConformEngine) e = engine_for("moons", 100, NULL);
  int left = 25;
  g_autoptr(GError) err = NULL;
  g_assert_false(conform_engine_train(e, 100, abort_after, NULL, &left, &err));
  g_assert_error(err, CONFORM_ERROR, CONFORM_ERROR_CANCELLED);
  g_assert_cmpint(conform_engine_step(e), ==, 25);
  /* It can continue afterwards. */
  g_assert_true(conform_engine_train(e, 5, NULL, NULL, NULL, NULL));
  g_assert_cmpint(conform_engine_step(e), ==, 30);
}

static void
test_nan_rollback(void)
{
  g_autoptr(ConformEngine) e = engine_for("gaussians", 100, NULL);
  g_assert_true(conform_engine_train(e, 50, NULL, NULL, NULL, NULL));
  gsize n;
  g_autofree float *before = conform_engine_params_copy(e, &n);
  /* Step 71 sees a NaN parameter: training stops and the whole state of
   * step 50 (the last snapshot; snapshots every 50 steps) comes back. */
  conform_engine_debug_inject_nan(e, 71);
  g_autoptr(GError) err = NULL;
  g_assert_false(conform_engine_train(e, 60, NULL, NULL, NULL, &err));
  g_assert_error(err, CONFORM_ERROR, CONFORM_ERROR_NUMERIC);
  g_assert_nonnull(strstr(err->message, "at step 71"));
  g_assert_nonnull(strstr(err->message, "state of step 50"));
  g_test_message("%s", err->message);
  g_assert_cmpint(conform_engine_step(e), ==, 50);
  g_assert_cmpint(g_array_index(conform_engine_records(e), ConformTrainRecord,
                                conform_engine_records(e)->len - 1).step, ==, 50);
  g_autofree float *after = conform_engine_params_copy(e, &n);
  g_assert_cmpmem(before, n * sizeof(float), after, n * sizeof(float));
  /* Sampling from the kept state works and gives finite numbers. */
  ConformSampleOptions so = {.n = 64, .eta = -1};
  float *x = NULL;
  g_assert_true(conform_engine_sample(e, &so, &x, NULL, NULL, NULL, NULL, NULL));
  for (int i = 0; i < 128; i++)
    g_assert_true(isfinite(x[i]));
  cf_free_aligned(x);
}

static void
test_save_load_roundtrip(void)
{
  g_autoptr(ConformEngine) e = engine_for("portfolio", 60, NULL);
  g_assert_true(conform_engine_train(e, 60, NULL, NULL, NULL, NULL));
  g_autofree char *dir = g_dir_make_tmp("conform-engine-XXXXXX", NULL);
  g_assert_true(conform_engine_save(e, dir, NULL, 0, NULL, NULL));
  g_autoptr(GError) err = NULL;
  g_autoptr(ConformEngine) l = conform_engine_load(dir, &err);
  g_assert_no_error(err);
  g_assert_cmpint(conform_engine_step(l), ==, 60);
  ConformSampleOptions so = {.n = 50, .eta = -1, .seed = 3, .use_seed = TRUE, .strategy = "projection"};
  float *a = NULL, *b = NULL;
  g_assert_true(conform_engine_sample(e, &so, &a, NULL, NULL, NULL, NULL, NULL));
  g_assert_true(conform_engine_sample(l, &so, &b, NULL, NULL, NULL, NULL, NULL));
  g_assert_cmpmem(a, 50 * 10 * sizeof(float), b, 50 * 10 * sizeof(float));
  /* Training continues identically from the restored state. */
  g_assert_true(conform_engine_train(l, 1, NULL, NULL, NULL, NULL));
  g_assert_cmpint(conform_engine_step(l), ==, 61);
  cf_free_aligned(a);
  cf_free_aligned(b);
  g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", dir);
  (void)!system(cmd);
}

static void
test_raw_space_reporting(void)
{
  /* charge-neutral: heteroscedastic coordinates, so model space differs
   * from raw space; projected outputs must satisfy the RAW constraint. */
  g_autoptr(ConformEngine) e = engine_for("charge-neutral", 300, NULL);
  g_assert_true(conform_engine_train(e, 300, NULL, NULL, NULL, NULL));
  const char *strategies[] = {"projection", "projected-sampling"};
  for (int k = 0; k < 2; k++) {
    ConformSampleOptions so = {.n = 200, .eta = -1, .strategy = strategies[k]};
    float *x = NULL, *raw = NULL;
    g_assert_true(conform_engine_sample(e, &so, &x, &raw, NULL, NULL, NULL, NULL));
    /* Residual relative to the sample's size: float round-off. */
    double worst = 0, before = 0;
    for (int i = 0; i < 200; i++) {
      double s = 0, r = 0, nx = 0;
      for (int j = 0; j < 12; j++) {
        s += x[i * 12 + j];
        r += raw[i * 12 + j];
        nx += (double)x[i * 12 + j] * x[i * 12 + j];
      }
      worst = MAX(worst, fabs(s) / (1 + sqrt(nx)));
      before = MAX(before, fabs(r) / (1 + sqrt(nx)));
    }
    g_test_message("%s: max |sum x| / (1 + |x|) = %.3g (unprojected samples: %.3g)", strategies[k], worst, before);
    g_assert_cmpfloat(worst, <, 1e-6);
    cf_free_aligned(x);
    cf_free_aligned(raw);
  }
}

static void
test_sampler_trajectory(void)
{
  g_autoptr(ConformEngine) e = engine_for("simplex-3d", 200, NULL);
  g_assert_true(conform_engine_train(e, 200, NULL, NULL, NULL, NULL));
  g_autoptr(ConformSampler) s = conform_engine_make_sampler(e, NULL);
  g_assert_nonnull(s);
  ConformSampleOptions so = {.n = 100, .eta = -1, .sampler = "ddim", .sampling_steps = 20, .strategy = "none"};
  g_autoptr(ConformSampleSet) a = conform_sampler_run(s, &so, 100, NULL, NULL, NULL, NULL);
  g_assert_nonnull(a);
  g_assert_cmpint(a->traj_steps, ==, 20);
  g_assert_cmpint(a->traj_t[0], ==, 1000);
  g_assert_cmpint(a->traj_t[20], ==, 0);
  /* The last frame is the returned sample (raw space). */
  g_assert_cmpmem(a->traj + (gsize)20 * 100 * 3, 100 * 3 * sizeof(float), a->x, 100 * 3 * sizeof(float));
  /* The first frame is x_T: the same draws as the sampler's full trajectory
   * with the same seed would give, so a second run with traj_n = 10 agrees. */
  g_autoptr(ConformSampleSet) b = conform_sampler_run(s, &so, 10, NULL, NULL, NULL, NULL);
  for (int k = 0; k <= 20; k++)
    g_assert_cmpmem(a->traj + (gsize)k * 100 * 3, 10 * 3 * sizeof(float), b->traj + (gsize)k * 10 * 3,
                    10 * 3 * sizeof(float));
  g_assert_cmpfloat(a->traj_viol_max[20], >, 1e-4); /* unconstrained */
  /* Projected sampling: every frame after the first satisfies A x = b. */
  so.strategy = "projected-sampling";
  g_autoptr(ConformSampleSet) c = conform_sampler_run(s, &so, 50, NULL, NULL, NULL, NULL);
  g_assert_cmpfloat(c->traj_viol_max[0], >, 1e-2);
  for (int k = 1; k <= 20; k++)
    g_assert_cmpfloat(c->traj_viol_max[k], <, 1e-5);
  /* Snapshots: loading the same arena reproduces the samples. */
  gsize np;
  g_autofree float *snap = conform_engine_snapshot(e, &np);
  conform_sampler_load(s, snap, 200);
  so.strategy = "none";
  g_autoptr(ConformSampleSet) d = conform_sampler_run(s, &so, 0, NULL, NULL, NULL, NULL);
  g_assert_cmpmem(a->x, 300 * sizeof(float), d->x, 300 * sizeof(float));
  g_assert_cmpint(d->step, ==, 200);
}

static void
test_set_live(void)
{
  g_autoptr(ConformEngine) e = engine_for("moons", 10, NULL);
  g_autoptr(GError) err = NULL;
  g_assert_true(conform_engine_set_live(e, "train.lr", "0.0005", &err));
  g_assert_cmpfloat(conform_engine_config(e)->lr, ==, 0.0005);
  g_assert_false(conform_engine_set_live(e, "model.width", "64", &err));
  g_assert_nonnull(strstr(err->message, "after Reset"));
  g_clear_error(&err);
  g_assert_false(conform_engine_set_live(e, "train.lr", "-1", &err));
  g_assert_cmpfloat(conform_engine_config(e)->lr, ==, 0.0005); /* unchanged */
  g_clear_error(&err);
  g_assert_false(conform_engine_set_live(e, "experiment.strategy", "projection", &err)); /* moons has no constraint */
  g_assert_cmpstr(conform_engine_config(e)->strategy, ==, "none");
}

/* A VAE with the constrained-Gaussian likelihood: exact samples in raw
 * space, VAE metrics in the summary, checkpoints that remember the model. */
static void
test_vae_cgauss(void)
{
  const char *sets[] = {"model.type=vae", "experiment.strategy=cgauss", NULL};
  g_autoptr(ConformEngine) e = engine_for("charge-neutral", 400, sets);
  g_assert_true(conform_engine_train(e, 400, NULL, NULL, NULL, NULL));
  ConformSampleOptions so = {.n = 300, .eta = -1};
  float *x = NULL;
  g_assert_true(conform_engine_sample(e, &so, &x, NULL, NULL, NULL, NULL, NULL));
  ConformSummary s;
  conform_engine_evaluate(e, x, so.n, &s);
  g_test_message("vae cgauss: violation max %.3g, test_ll %.4f, elbo %.4f, recon %.4f", s.viol.max, s.test_ll, s.elbo,
                 s.recon);
  g_assert_cmpfloat(s.viol.frac_satisfied, ==, 1.0);
  g_assert_true(s.has_vae && isfinite(s.test_ll) && isfinite(s.elbo) && isfinite(s.recon));
  g_assert_cmpfloat(s.test_ll, >=, s.elbo - 0.05); /* IW bound is tighter than the ELBO (up to MC noise) */
  /* none from the same decoder violates; diffusion strategies are refused */
  so.strategy = "none";
  float *y = NULL;
  g_assert_true(conform_engine_sample(e, &so, &y, NULL, NULL, NULL, NULL, NULL));
  ConformSummary s2;
  conform_engine_evaluate(e, y, so.n, &s2);
  g_assert_cmpfloat(s2.viol.frac_satisfied, <, 0.5);
  so.strategy = "projected-sampling";
  g_autoptr(GError) err = NULL;
  float *z = NULL;
  g_assert_false(conform_engine_sample(e, &so, &z, NULL, NULL, NULL, NULL, &err));
  g_assert_nonnull(strstr(err->message, "not available for a VAE"));
  g_clear_error(&err);
  so.strategy = "constrained-layer";
  g_assert_false(conform_engine_sample(e, &so, &z, NULL, NULL, NULL, NULL, &err));
  g_assert_nonnull(strstr(err->message, "trained with 'cgauss'"));
  g_clear_error(&err);
  /* switching the training strategy waits for Reset; the sampled one does not */
  g_assert_false(conform_engine_set_live(e, "experiment.strategy", "constrained-layer", &err));
  g_assert_nonnull(strstr(err->message, "after Reset"));
  /* save, reload, same samples; a DDPM config cannot load it */
  g_autofree char *dir = g_dir_make_tmp("conform-vae-XXXXXX", NULL);
  g_assert_true(conform_engine_save(e, dir, NULL, 0, NULL, NULL));
  g_autoptr(GError) lerr = NULL;
  g_autoptr(ConformEngine) l = conform_engine_load(dir, &lerr);
  g_assert_no_error(lerr);
  ConformSampleOptions so2 = {.n = 50, .eta = -1, .seed = 4, .use_seed = TRUE};
  float *a = NULL, *b = NULL;
  g_assert_true(conform_engine_sample(e, &so2, &a, NULL, NULL, NULL, NULL, NULL));
  g_assert_true(conform_engine_sample(l, &so2, &b, NULL, NULL, NULL, NULL, NULL));
  g_assert_cmpmem(a, 50 * 12 * sizeof(float), b, 50 * 12 * sizeof(float));
  g_autofree char *ini = g_build_filename(dir, "experiment.ini", NULL);
  g_autofree char *text = NULL;
  g_assert_true(g_file_get_contents(ini, &text, NULL, NULL));
  GString *t = g_string_new(text);
  g_string_replace(t, "type=vae", "type=ddpm", 1);
  g_string_replace(t, "strategy=cgauss", "strategy=none", 1);
  g_assert_true(g_file_set_contents(ini, t->str, -1, NULL));
  g_string_free(t, TRUE);
  g_autoptr(GError) merr = NULL;
  g_autoptr(ConformEngine) m = conform_engine_load(dir, &merr);
  g_assert_null(m);
  g_assert_nonnull(strstr(merr->message, "different model"));
  cf_free_aligned(x);
  cf_free_aligned(y);
  cf_free_aligned(a);
  cf_free_aligned(b);
  g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", dir);
  (void)!system(cmd);
}

/* A constraint applied to a running VAE reaches its training loss too: an
 * equivalent system keeps training exact, one the data breaks stops training
 * with the reason, and cgauss cannot lose its constraint. */
static void
test_vae_constraint_live(void)
{
  const char *sets[] = {"model.type=vae", "experiment.strategy=cgauss", NULL};
  g_autoptr(ConformEngine) e = engine_for("simplex-3d", 200, sets);
  g_assert_true(conform_engine_train(e, 50, NULL, NULL, NULL, NULL));
  CfConstraint c;
  cf_constraint_init(&c);
  double A2[3] = {2, 2, 2}, b2[1] = {2}; /* the same plane, scaled */
  g_assert_cmpint(cf_constraint_set(&c, 1, 3, A2, b2, NULL), ==, CF_OK);
  g_autoptr(GError) err = NULL;
  g_assert_true(conform_engine_set_constraint(e, &c, "test", &err));
  g_assert_cmpfloat(conform_engine_constraint(e)->A[0], ==, 2.0);
  g_assert_true(conform_engine_train(e, 50, NULL, NULL, NULL, &err));
  ConformSampleOptions so = {.n = 100, .eta = -1};
  float *x = NULL;
  g_assert_true(conform_engine_sample(e, &so, &x, NULL, NULL, NULL, NULL, NULL));
  for (int i = 0; i < 100; i++)
    g_assert_cmpfloat(fabs(2.0 * (x[3 * i] + x[3 * i + 1] + x[3 * i + 2]) - 2.0), <, 1e-5);
  cf_free_aligned(x);
  /* x0 = x1 is not satisfied by the data: cgauss training stops and says why */
  cf_constraint_clear(&c);
  double A3[6] = {1, 1, 1, 1, -1, 0}, b3[2] = {1, 0};
  g_assert_cmpint(cf_constraint_set(&c, 2, 3, A3, b3, NULL), ==, CF_OK);
  g_assert_true(conform_engine_set_constraint(e, &c, "test", &err));
  long at = conform_engine_step(e);
  g_assert_false(conform_engine_train(e, 10, NULL, NULL, NULL, &err));
  g_assert_error(err, CONFORM_ERROR, CONFORM_ERROR_INPUT);
  g_assert_nonnull(strstr(err->message, "training stopped at step"));
  g_test_message("%s", err->message);
  g_assert_cmpint(conform_engine_step(e), ==, at);
  g_clear_error(&err);
  /* removing the constraint is refused, the current one stays */
  g_assert_false(conform_engine_set_constraint(e, NULL, "test", &err));
  g_assert_nonnull(strstr(err->message, "needs a constraint"));
  g_assert_cmpint(conform_engine_constraint(e)->m, ==, 2);
  cf_constraint_clear(&c);
}

/* A cgauss diffusion model: exact samples (relative residual at float
 * round-off), quality comparable to none on simplex-3d, strategy rules
 * (cgauss is its training), a live constraint change (new null space,
 * projected data), removal refused, and a save/load round trip. */
static void
test_ddpm_cgauss(void)
{
  const char *sets[] = {"experiment.strategy=cgauss", NULL};
  g_autoptr(ConformEngine) e = engine_for("simplex-3d", 1500, sets);
  g_autoptr(GError) err = NULL;
  g_assert_true(conform_engine_train(e, 1500, NULL, NULL, NULL, &err));
  g_assert_no_error(err);
  ConformSampleOptions so = {.n = 1000, .eta = -1, .sampler = "ddim", .sampling_steps = 50};
  float *x = NULL;
  g_assert_true(conform_engine_sample(e, &so, &x, NULL, NULL, NULL, NULL, &err));
  g_assert_no_error(err);
  double worst = 0;
  for (int i = 0; i < 1000; i++)
    worst = fmax(worst, fabs((double)x[3 * i] + x[3 * i + 1] + x[3 * i + 2] - 1.0));
  ConformSummary sum;
  conform_engine_evaluate(e, x, 1000, &sum);
  g_test_message("cgauss ddpm: max |sum - 1| %.2e, energy distance %.4g", worst, sum.energy_distance);
  g_assert_cmpfloat(worst, <, 1e-6);
  g_assert_cmpfloat(sum.energy_distance, <, 0.02);
  cf_free_aligned(x);
  /* only cgauss samples it; a none model cannot sample with cgauss */
  so.strategy = "projection";
  g_assert_false(conform_engine_sample(e, &so, &x, NULL, NULL, NULL, NULL, &err));
  g_assert_error(err, CONFORM_ERROR, CONFORM_ERROR_USAGE);
  g_assert_nonnull(strstr(err->message, "samples with cgauss only"));
  g_clear_error(&err);
  g_assert_false(conform_engine_set_live(e, "experiment.strategy", "none", &err));
  g_assert_nonnull(strstr(err->message, "after Reset"));
  g_clear_error(&err);
  {
    g_autoptr(ConformEngine) plain = engine_for("simplex-3d", 10, NULL);
    so.strategy = "cgauss";
    g_assert_false(conform_engine_sample(plain, &so, &x, NULL, NULL, NULL, NULL, &err));
    g_assert_nonnull(strstr(err->message, "part of the diffusion model's training"));
    g_clear_error(&err);
    g_assert_false(conform_engine_set_live(plain, "experiment.strategy", "cgauss", &err));
    g_clear_error(&err);
  }
  /* a new constraint mid-run: x0 = x1 on top of the plane (the data do not
   * satisfy it; cgauss trains on their projection) */
  CfConstraint c;
  cf_constraint_init(&c);
  double A3[6] = {1, 1, 1, 1, -1, 0}, b3[2] = {1, 0};
  g_assert_cmpint(cf_constraint_set(&c, 2, 3, A3, b3, NULL), ==, CF_OK);
  g_assert_true(conform_engine_set_constraint(e, &c, "test", &err));
  g_assert_true(conform_engine_train(e, 200, NULL, NULL, NULL, &err));
  so.strategy = NULL;
  so.n = 200;
  g_assert_true(conform_engine_sample(e, &so, &x, NULL, NULL, NULL, NULL, &err));
  for (int i = 0; i < 200; i++) {
    g_assert_cmpfloat(fabs((double)x[3 * i] + x[3 * i + 1] + x[3 * i + 2] - 1.0), <, 1e-6);
    g_assert_cmpfloat(fabs((double)x[3 * i] - x[3 * i + 1]), <, 1e-6);
  }
  cf_free_aligned(x);
  g_assert_false(conform_engine_set_constraint(e, NULL, "test", &err));
  g_assert_nonnull(strstr(err->message, "needs a constraint"));
  g_clear_error(&err);
  /* save and load: same samples */
  g_autofree char *dir = g_dir_make_tmp("conform-cgauss-XXXXXX", NULL);
  g_assert_true(conform_engine_save(e, dir, NULL, 0, NULL, &err));
  g_autoptr(ConformEngine) back = conform_engine_load(dir, &err);
  g_assert_no_error(err);
  so.use_seed = TRUE;
  so.seed = 5;
  float *x1 = NULL, *x2 = NULL;
  g_assert_true(conform_engine_sample(e, &so, &x1, NULL, NULL, NULL, NULL, &err));
  g_assert_true(conform_engine_sample(back, &so, &x2, NULL, NULL, NULL, NULL, &err));
  g_assert_cmpmem(x1, sizeof(float) * 600, x2, sizeof(float) * 600);
  cf_free_aligned(x1);
  cf_free_aligned(x2);
  cf_constraint_clear(&c);
  g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", dir);
  g_assert_cmpint(system(cmd), ==, 0);
}

/* Inputs (data.inputs): on cstr the outputs are generated for the
 * held-out inputs with the per-sample k = -A_x x; cgauss and projection are
 * exact per sample, none is not; the outputs track the inputs (cond_rmse
 * well below the ~1.4 of unrelated rows). Bad settings are refused. */
static void
test_process_inputs(void)
{
  const char *sets[] = {"experiment.strategy=cgauss", NULL};
  g_autoptr(ConformEngine) e = engine_for("cstr", 1500, sets);
  g_autoptr(GError) err = NULL;
  g_assert_true(conform_engine_train(e, 1500, NULL, NULL, NULL, &err));
  g_assert_no_error(err);
  ConformSampleOptions so = {.n = 500, .eta = -1, .sampler = "ddim", .sampling_steps = 50};
  float *x = NULL;
  g_assert_true(conform_engine_sample(e, &so, &x, NULL, NULL, NULL, NULL, &err));
  int n_ref;
  const float *ref = conform_engine_reference(e, &n_ref);
  double worst = 0;
  for (int i = 0; i < 500; i++) {
    const float *r = x + 6 * i;
    for (int j = 0; j < 3; j++) /* the inputs are the held-out row's */
      g_assert_cmpfloat(fabs(r[j] - ref[(i % n_ref) * 6 + j]), <=, 1e-5 * (1 + fabs(r[j])));
    double r1 = (double)r[1] - r[2] - r[4] + r[5], r2 = (double)r[1] - r[3] - r[4];
    worst = fmax(worst, fmax(fabs(r1), fabs(r2)) / (1 + fabs(r[1]) + fabs(r[2])));
  }
  ConformSummary sum;
  conform_engine_evaluate(e, x, 500, &sum);
  g_test_message("cstr cgauss: max relative residual %.2e, cond_rmse %.3f", worst, sum.cond_rmse);
  g_assert_cmpfloat(worst, <, 1e-6);
  g_assert_cmpfloat(sum.cond_rmse, <, 0.8);
  cf_free_aligned(x);
  g_autoptr(GString) tsv = conform_summary_to_tsv(&sum);
  g_assert_nonnull(strstr(tsv->str, "cond_rmse\t"));

  /* none vs projection on a none model */
  g_autoptr(ConformEngine) p = engine_for("cstr", 600, NULL);
  g_assert_true(conform_engine_train(p, 600, NULL, NULL, NULL, &err));
  float *raw = NULL;
  so.strategy = "projection";
  g_assert_true(conform_engine_sample(p, &so, &x, &raw, NULL, NULL, NULL, &err));
  double w_proj = 0, w_raw = 0;
  for (int i = 0; i < 500; i++) {
    const float *r = x + 6 * i, *q = raw + 6 * i;
    w_proj = fmax(w_proj, fabs((double)r[1] - r[3] - r[4]));
    w_raw = fmax(w_raw, fabs((double)q[1] - q[3] - q[4]));
    for (int j = 0; j < 3; j++) /* projection leaves the inputs alone */
      g_assert_cmpfloat(r[j], ==, q[j]);
  }
  g_test_message("cstr none: max |x1 - y0 - y1| %.2e, projected %.2e", w_raw, w_proj);
  g_assert_cmpfloat(w_raw, >, 1e-3);
  g_assert_cmpfloat(w_proj, <, 1e-5);
  cf_free_aligned(x);
  cf_free_aligned(raw);

  /* bad settings */
  ConformConfig c;
  conform_config_init(&c);
  g_assert_true(conform_config_apply_preset(&c, "cstr", NULL));
  g_assert_true(conform_config_set(&c, "data.inputs", "6", NULL));
  g_assert_null(conform_engine_new(&c, &err));
  g_assert_nonnull(strstr(err->message, "must be smaller than the data dimension"));
  g_clear_error(&err);
  g_assert_true(conform_config_set(&c, "data.inputs", "3", NULL));
  g_assert_true(conform_config_set(&c, "model.type", "vae", NULL));
  g_assert_null(conform_engine_new(&c, &err));
  g_assert_nonnull(strstr(err->message, "model.type=ddpm"));
  g_clear_error(&err);
  g_assert_true(conform_config_set(&c, "model.type", "ddpm", NULL));
  /* a row on the inputs only: the outputs' block is rank deficient */
  double A[12] = {1, 0, 0, 0, 0, 0, 0, 1, 0, -1, -1, 0}, b[2] = {1, 0};
  cf_constraint_clear(&c.constraint);
  g_assert_cmpint(cf_constraint_set(&c.constraint, 2, 6, A, b, NULL), ==, CF_OK);
  g_assert_null(conform_engine_new(&c, &err));
  g_test_message("%s", err->message);
  g_assert_nonnull(strstr(err->message, "outputs' block of the constraint (columns 4-6"));
  conform_config_clear(&c);
}

/* Image sources: fashion-symmetric and fashion-brightness with the U-Net
 * (a few steps, tiny data): cgauss samples are exactly symmetric / have
 * exactly the total intensity, the preset constraint follows
 * data.image_size, samples.png is written; bad settings are refused. */
static void
test_images(void)
{
  if (!g_file_test("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz", G_FILE_TEST_EXISTS)) {
    g_test_skip("dataset-fashion-mnist is not installed");
    return;
  }
  const char *sym[] = {"experiment.strategy=cgauss", "data.n_train=300", "data.n_ref=100", "model.unet_base=8",
                       "sample.annotate=1", NULL};
  g_autoptr(ConformEngine) e = engine_for("fashion-symmetric", 5, sym);
  g_assert_cmpint(conform_engine_dim(e), ==, 196);
  g_assert_cmpint(conform_engine_constraint(e)->m, ==, 98);
  g_autoptr(GError) err = NULL;
  g_assert_true(conform_engine_train(e, 5, NULL, NULL, NULL, &err));
  ConformSampleOptions so = {.n = 8, .eta = -1};
  float *x = NULL;
  g_assert_true(conform_engine_sample(e, &so, &x, NULL, NULL, NULL, NULL, &err));
  double worst = 0;
  for (int i = 0; i < 8; i++)
    for (int y = 0; y < 14; y++)
      for (int j = 0; j < 7; j++)
        worst = fmax(worst, fabs(x[i * 196 + y * 14 + j] - x[i * 196 + y * 14 + 13 - j]));
  g_test_message("fashion-symmetric cgauss: max |x[i][j] - x[i][W-1-j]| = %.2e", worst);
  g_assert_cmpfloat(worst, <, 1e-5);
  g_autofree char *dir = g_dir_make_tmp("conform-img-XXXXXX", NULL);
  ConformSummary sum;
  conform_engine_evaluate(e, x, 8, &sum);
  g_assert_true(conform_engine_save(e, dir, x, 8, &sum, &err));
  g_autofree char *png = g_build_filename(dir, "samples.png", NULL);
  g_assert_true(g_file_test(png, G_FILE_TEST_IS_REGULAR));
  cf_free_aligned(x);
  g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", dir);
  g_assert_cmpint(system(cmd), ==, 0);

  const char *bright[] = {"experiment.strategy=cgauss", "data.n_train=300", "data.n_ref=100", "model.unet_base=8",
                          "model.unet_levels=3", "data.image_size=28", NULL};
  g_autoptr(ConformEngine) b = engine_for("fashion-brightness", 3, bright);
  g_assert_cmpint(conform_engine_dim(b), ==, 784);
  g_assert_cmpint(conform_engine_constraint(b)->n, ==, 784); /* rebuilt for 28 x 28 */
  g_assert_true(conform_engine_train(b, 3, NULL, NULL, NULL, &err));
  so.n = 4;
  g_assert_true(conform_engine_sample(b, &so, &x, NULL, NULL, NULL, NULL, &err));
  for (int i = 0; i < 4; i++) {
    double s = 0, sa = 0;
    for (int j = 0; j < 784; j++) {
      s += x[i * 784 + j];
      sa += fabs(x[i * 784 + j]);
    }
    /* relative to the float round-off scale of the sum */
    g_assert_cmpfloat(fabs(s - 0.25 * 784) / (sa + 0.25 * 784), <, 1e-6);
  }
  cf_free_aligned(x);

  ConformConfig c;
  conform_config_init(&c);
  g_assert_true(conform_config_apply_preset(&c, "simplex-3d", NULL));
  g_assert_true(conform_config_set(&c, "model.arch", "unet", NULL));
  g_assert_null(conform_engine_new(&c, &err));
  g_assert_nonnull(strstr(err->message, "needs image data"));
  g_clear_error(&err);
  g_assert_false(conform_config_set(&c, "data.image_size", "20", &err) && conform_config_validate(&c, &err));
  g_assert_nonnull(strstr(err->message, "28 or 14"));
  conform_config_clear(&c);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/engine/quality-beats-gaussian", test_quality_beats_gaussian);
  g_test_add_func("/engine/cancel", test_cancel);
  g_test_add_func("/engine/nan-rollback", test_nan_rollback);
  g_test_add_func("/engine/save-load-roundtrip", test_save_load_roundtrip);
  g_test_add_func("/engine/raw-space", test_raw_space_reporting);
  g_test_add_func("/engine/sampler-trajectory", test_sampler_trajectory);
  g_test_add_func("/engine/set-live", test_set_live);
  g_test_add_func("/engine/vae-cgauss", test_vae_cgauss);
  g_test_add_func("/engine/vae-constraint-live", test_vae_constraint_live);
  g_test_add_func("/engine/ddpm-cgauss", test_ddpm_cgauss);
  g_test_add_func("/engine/process-inputs", test_process_inputs);
  g_test_add_func("/engine/images", test_images);
  return g_test_run();
}
