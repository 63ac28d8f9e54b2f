/* Strategy mirror and constraint.equations in the engine: settings and
 * bad input, the distance as the violation, the Gauss-Newton projection
 * baseline, the two-phase training (maps, then the diffusion model in
 * mirror space) against none on ring, save/load of the maps, NaN in the
 * maps' training, and the infeasibility warning. */
#include <glib.h>
#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

#include "conform-engine.h"
#include "conform-mirror.h"
#include "engine-fixture.h"

static void
test_bad_input(void)
{
  /* parse errors point at line and column; ';' separates equations */
  expect_error("ring", (const char *const[]){"constraint.equations=x0^2 + x1^2 = 1; x0 + * 2 = 0", NULL},
               "constraint.equations: 2:");
  expect_error("ring", (const char *const[]){"constraint.equations=x0^2 + (x1 = 1", NULL}, "constraint.equations: 1:");
  /* a coordinate the data do not have (ring is 2-D) */
  expect_error("ring", (const char *const[]){"constraint.equations=x0^2 + x5^2 = 1", NULL}, "x5");
  /* a matrix and equations at once */
  expect_error("simplex-3d", (const char *const[]){"constraint.equations=x0^2 = 1", NULL}, "use one of them");
  /* strategies that need A x = b */
  expect_error("ring", (const char *const[]){"experiment.strategy=cgauss", NULL}, "needs a linear constraint");
  expect_error("ring", (const char *const[]){"experiment.strategy=projected-sampling", NULL},
               "needs a linear constraint");
  /* mirror: a DDPM without inputs or train.init, and a constraint */
  expect_error("ring", (const char *const[]){"experiment.strategy=mirror", "model.type=vae", NULL}, "model.type=ddpm");
  expect_error("ring", (const char *const[]){"experiment.strategy=mirror", "train.init=/nonexistent", NULL},
               "train.init");
  expect_error("gaussians", (const char *const[]){"experiment.strategy=mirror", NULL}, "needs a constraint");
  expect_error("ring", (const char *const[]){"experiment.strategy=mirror", "mirror.alpha=1.5", NULL}, "mirror.alpha");
}

/* The ring's data lie on the circle: violation ~ float round-off; a
 * constraint with no point where the data are is warned about. */
static void
test_equations_violation(void)
{
  g_autoptr(ConformEngine) e = engine_for("ring", 10, NULL);
  g_assert_null(conform_engine_warnings(e));
  g_autofree char *sum = conform_engine_constraint_summary(e);
  g_assert_nonnull(strstr(sum, "1 equation"));
  int n;
  const float *ref = conform_engine_reference(e, &n);
  ConformSummary s;
  conform_engine_evaluate(e, ref, n, &s);
  g_assert_true(s.has_constraint);
  g_test_message("ring data: distance max %.2e", s.viol.max);
  g_assert_cmpfloat(s.viol.max, <, 1e-6);

  const char *far[] = {"constraint.equations=x0^2 + x1^2 = 100", NULL};
  g_autoptr(ConformEngine) f = engine_for("ring", 10, far);
  g_assert_nonnull(conform_engine_warnings(f));
  g_assert_nonnull(strstr(conform_engine_warnings(f), "infeasible"));
  const char *none[] = {"constraint.equations=x0^2 + 1 = 0", NULL};
  g_autoptr(ConformEngine) g = engine_for("ring", 10, none);
  g_assert_nonnull(strstr(conform_engine_warnings(g), "did not converge"));
}

/* projection onto the circle by Gauss-Newton: every sample on it to float
 * round-off, and the same raw samples as none (paired). */
static void
test_projection(void)
{
  g_autoptr(ConformEngine) e = engine_for("ring", 300, NULL);
  g_autoptr(GError) err = NULL;
  g_assert_true(conform_engine_train(e, 300, NULL, NULL, NULL, &err));
  ConformSampleOptions o = {.n = 400, .eta = -1, .strategy = "projection", .sampling_steps = 20};
  float *x = NULL, *raw = NULL;
  g_assert_true(conform_engine_sample(e, &o, &x, &raw, NULL, NULL, NULL, &err));
  g_assert_no_error(err);
  double worst = 0, moved = 0;
  for (int i = 0; i < 400; i++) {
    double r = hypot(x[2 * i], x[2 * i + 1]);
    worst = fmax(worst, fabs(r * r - 1.0));
    /* radial: the direction is kept */
    double rr = hypot(raw[2 * i], raw[2 * i + 1]);
    if (rr > 0.1) {
      g_assert_cmpfloat(fabs(x[2 * i] - raw[2 * i] / rr), <, 1e-5);
      g_assert_cmpfloat(fabs(x[2 * i + 1] - raw[2 * i + 1] / rr), <, 1e-5);
    }
    moved = fmax(moved, fabs(rr - 1.0));
  }
  g_test_message("projection onto the circle: max |x0^2 + x1^2 - 1| = %.2e (raw samples off by up to %.3f)", worst,
                 moved);
  g_assert_cmpfloat(worst, <, 1e-6);
  g_assert_cmpfloat(moved, >, 1e-3);
  g_free(x);
  g_free(raw);
}

static double
median_violation(ConformEngine *e, int n)
{
  ConformSampleOptions o = {.n = n, .eta = -1, .sampler = "ddim", .sampling_steps = 50};
  float *x = NULL;
  g_autoptr(GError) err = NULL;
  g_assert_true(conform_engine_sample(e, &o, &x, NULL, NULL, NULL, NULL, &err));
  g_assert_no_error(err);
  ConformSummary s;
  conform_engine_evaluate(e, x, n, &s);
  g_free(x);
  return s.viol.median;
}

/* Two phases on one step counter; the mirror model's samples are much
 * closer to the circle than none's with the same diffusion training. */
static void
test_ring_mirror(void)
{
  const char *mset[] = {"experiment.strategy=mirror", "mirror.steps=3000", NULL};
  g_autoptr(ConformEngine) m = engine_for("ring", 1500, mset);
  g_autoptr(ConformEngine) n = engine_for("ring", 1500, NULL);
  g_assert_cmpint(conform_config_total_steps(conform_engine_config(m)), ==, 4500);
  g_autoptr(GError) err = NULL;
  g_assert_true(conform_engine_train(m, 3000, NULL, NULL, NULL, &err));
  g_assert_true(conform_engine_mirror_phase(m) == FALSE);
  const GArray *rec = conform_engine_records(m);
  const ConformTrainRecord *last = &g_array_index(rec, ConformTrainRecord, rec->len - 1);
  g_assert_cmpint(last->namm, ==, 1);
  g_assert_cmpint(last->step, ==, 3000);
  g_assert_true(isfinite(last->namm_cyc) && isfinite(last->namm_constr) && isfinite(last->namm_reg));
  const ConformTrainRecord *first = &g_array_index(rec, ConformTrainRecord, 0);
  g_test_message("maps: loss %.4f -> %.4f (constraint term %.4f -> %.4f)", first->loss, last->loss, first->namm_constr,
                 last->namm_constr);
  g_assert_cmpfloat(last->namm_constr, <, first->namm_constr);
  g_assert_true(conform_engine_train(m, 1500, NULL, NULL, NULL, &err));
  g_assert_true(conform_engine_train(n, 1500, NULL, NULL, NULL, &err));
  g_assert_no_error(err);
  last = &g_array_index(rec, ConformTrainRecord, rec->len - 1);
  g_assert_cmpint(last->namm, ==, 0);
  g_assert_cmpint(last->step, ==, 4500);
  double dm = median_violation(m, 1000), dn = median_violation(n, 1000);
  g_test_message("ring, 3000 + 1500 steps: median distance mirror %.4f, none %.4f (ratio %.1f)", dm, dn, dn / dm);
  g_assert_cmpfloat(dm, <, dn / 3.0);

  /* other strategies cannot sample a mirror model, and the reverse */
  ConformSampleOptions o = {.n = 10, .eta = -1, .strategy = "none"};
  float *x = NULL;
  g_assert_false(conform_engine_sample(m, &o, &x, NULL, NULL, NULL, NULL, &err));
  g_assert_nonnull(strstr(err->message, "mirror only"));
  g_clear_error(&err);
  o.strategy = "mirror";
  g_assert_false(conform_engine_sample(n, &o, &x, NULL, NULL, NULL, NULL, &err));
  g_assert_nonnull(strstr(err->message, "--strategy mirror"));
  g_clear_error(&err);
  g_assert_false(conform_engine_set_live(m, "experiment.strategy", "none", &err));
  g_assert_nonnull(strstr(err->message, "Reset"));
}

/* Saving in the middle of the maps' phase and after it: the loaded engine
 * samples exactly what the saved one does and continues the phases. */
static void
test_save_load(void)
{
  const char *mset[] = {"experiment.strategy=mirror", "mirror.steps=200", NULL};
  g_autoptr(ConformEngine) e = engine_for("ring", 200, mset);
  g_autoptr(GError) err = NULL;
  g_autofree char *dir = g_dir_make_tmp("conform-mirror-XXXXXX", NULL);
  g_assert_true(conform_engine_train(e, 120, NULL, NULL, NULL, &err));
  g_assert_true(conform_engine_save(e, dir, NULL, 0, NULL, &err));
  g_autoptr(ConformEngine) l = conform_engine_load(dir, &err);
  g_assert_no_error(err);
  g_assert_true(conform_engine_mirror_phase(l));
  g_assert_cmpint(conform_engine_step(l), ==, 120);
  /* both continue identically? the maps' weights are equal */
  gsize na, nb;
  g_autofree float *a = conform_engine_snapshot(e, &na), *b = conform_engine_snapshot(l, &nb);
  g_assert_cmpuint(na, ==, nb);
  g_assert_cmpint(memcmp(a, b, na * sizeof(float)), ==, 0);
  g_assert_true(conform_engine_train(e, 180, NULL, NULL, NULL, &err));
  g_assert_true(conform_engine_train(l, 180, NULL, NULL, NULL, &err));
  g_assert_no_error(err);
  g_assert_false(conform_engine_mirror_phase(l));
  g_assert_true(conform_engine_save(l, dir, NULL, 0, NULL, &err));
  g_autoptr(ConformEngine) l2 = conform_engine_load(dir, &err);
  g_assert_no_error(err);
  ConformSampleOptions o = {.n = 64, .eta = -1, .sampler = "ddim", .sampling_steps = 20};
  float *x1 = NULL, *x2 = NULL;
  g_assert_true(conform_engine_sample(l, &o, &x1, NULL, NULL, NULL, NULL, &err));
  g_assert_true(conform_engine_sample(l2, &o, &x2, NULL, NULL, NULL, NULL, &err));
  g_assert_cmpint(memcmp(x1, x2, sizeof(float) * 128), ==, 0);
  /* the history keeps the maps' rows */
  const GArray *rec = conform_engine_records(l2);
  g_assert_cmpint(g_array_index(rec, ConformTrainRecord, 0).namm, ==, 1);
  g_assert_cmpint(g_array_index(rec, ConformTrainRecord, rec->len - 1).namm, ==, 0);
  g_free(x1);
  g_free(x2);

  /* a checkpoint whose maps are damaged is refused with the arena's name */
  g_autofree char *ini = g_build_filename(dir, "experiment.ini", NULL);
  g_autofree char *text = NULL;
  g_assert_true(g_file_get_contents(ini, &text, NULL, NULL));
  g_autofree char *changed = g_strdup(text);
  char *w = strstr(changed, "width=64");
  g_assert_nonnull(w);
  memcpy(w, "width=32", 8);
  g_assert_true(g_file_set_contents(ini, changed, -1, NULL));
  g_autoptr(ConformEngine) bad = conform_engine_load(dir, &err);
  g_assert_null(bad);
  g_test_message("%s", err->message);
  g_assert_nonnull(strstr(err->message, "namm.params"));
  g_clear_error(&err);
  g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", dir);
  g_assert_cmpint(system(cmd), ==, 0);
}

/* NaN in the maps' phase: the run stops, the maps return to their last
 * good state (finite), and training can go on. */
static void
test_nan(void)
{
  const char *mset[] = {"experiment.strategy=mirror", "mirror.steps=300", NULL};
  g_autoptr(ConformEngine) e = engine_for("ring", 100, mset);
  conform_engine_debug_inject_nan(e, 130);
  g_autoptr(GError) err = NULL;
  g_assert_false(conform_engine_train(e, 300, NULL, NULL, NULL, &err));
  g_assert_error(err, CONFORM_ERROR, CONFORM_ERROR_NUMERIC);
  g_test_message("%s", err->message);
  g_assert_nonnull(strstr(err->message, "step 130"));
  g_assert_cmpint(conform_engine_step(e), ==, 100);
  gsize n;
  g_autofree float *snap = conform_engine_snapshot(e, &n);
  for (gsize i = 0; i < n; i++)
    g_assert_true(isfinite(snap[i]));
  g_clear_error(&err);
  g_assert_true(conform_engine_train(e, 300, NULL, NULL, NULL, &err));
  g_assert_no_error(err);
  g_assert_cmpint(conform_engine_step(e), ==, 400);
}

/* The third phase: finetuning f on the diffusion model's mirror-space
 * samples; it survives save/load mid-phase (the samples are drawn again
 * from the same stream). */
static void
test_finetune(void)
{
  const char *mset[] = {"experiment.strategy=mirror", "mirror.steps=200", "mirror.finetune_steps=200",
                        "mirror.finetune_samples=512", NULL};
  g_autoptr(ConformEngine) e = engine_for("ring", 200, mset);
  g_assert_cmpint(conform_config_total_steps(conform_engine_config(e)), ==, 600);
  g_autoptr(GError) err = NULL;
  g_assert_true(conform_engine_train(e, 500, NULL, NULL, NULL, &err));
  g_assert_no_error(err);
  const GArray *rec = conform_engine_records(e);
  const ConformTrainRecord *last = &g_array_index(rec, ConformTrainRecord, rec->len - 1);
  g_assert_cmpint(last->namm, ==, 2);
  g_assert_true(isfinite(last->namm_constr));
  g_autofree char *dir = g_dir_make_tmp("conform-mirror-ft-XXXXXX", NULL);
  g_assert_true(conform_engine_save(e, dir, NULL, 0, NULL, &err));
  g_autoptr(ConformEngine) l = conform_engine_load(dir, &err);
  g_assert_no_error(err);
  gsize na, nb;
  g_autofree float *a = conform_engine_snapshot(e, &na), *b = conform_engine_snapshot(l, &nb);
  g_assert_cmpuint(na, ==, nb);
  g_assert_cmpint(memcmp(a, b, na * sizeof(float)), ==, 0);
  /* the loaded run goes on finetuning (the RNG streams restart, so not
   * bit-identically, as for every resumed run) */
  g_assert_true(conform_engine_train(l, 100, NULL, NULL, NULL, &err));
  g_assert_no_error(err);
  rec = conform_engine_records(l);
  g_assert_cmpint(g_array_index(rec, ConformTrainRecord, rec->len - 1).namm, ==, 2);
  g_assert_cmpint(g_array_index(rec, ConformTrainRecord, rec->len - 1).step, ==, 600);
  g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", dir);
  g_assert_cmpint(system(cmd), ==, 0);
}

/* Images: the maps with a convolutional inverse on Fashion-MNIST at 14 x 14
 * (fashion-brightness's sum constraint), then the U-Net in mirror space; a
 * smoke test of the whole path (a few steps: the maps train, samples come
 * back as finite images, the inverse map's accuracy is reported). */
static void
test_images(void)
{
  const char *mset[] = {"experiment.strategy=mirror", "mirror.steps=6", "mirror.inv_width=8", "mirror.batch=8",
                        "train.batch=8", "data.n_train=500", "data.n_ref=100", "sample.steps=5", NULL};
  g_autoptr(GError) err = NULL;
  g_autoptr(ConformEngine) e = try_engine("fashion-brightness", 3, mset, &err);
  if (!e && g_error_matches(err, CONFORM_ERROR, CONFORM_ERROR_INPUT) && strstr(err->message, "fashion")) {
    g_test_skip(err->message); /* the dataset package is not installed */
    return;
  }
  g_assert_no_error(err);
  g_assert_true(conform_engine_train(e, 9, NULL, NULL, NULL, &err));
  g_assert_no_error(err);
  ConformSampleOptions o = {.n = 4, .eta = -1};
  float *x = NULL;
  g_assert_true(conform_engine_sample(e, &o, &x, NULL, NULL, NULL, NULL, &err));
  g_assert_no_error(err);
  for (int i = 0; i < 4 * conform_engine_dim(e); i++)
    g_assert_true(isfinite(x[i]));
  ConformSummary s;
  conform_engine_evaluate(e, x, 4, &s);
  g_assert_true(isfinite(s.mirror_cycle));
  g_free(x);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/mirror/bad_input", test_bad_input);
  g_test_add_func("/mirror/equations_violation", test_equations_violation);
  g_test_add_func("/mirror/projection", test_projection);
  g_test_add_func("/mirror/ring", test_ring_mirror);
  g_test_add_func("/mirror/save_load", test_save_load);
  g_test_add_func("/mirror/nan", test_nan);
  g_test_add_func("/mirror/finetune", test_finetune);
  g_test_add_func("/mirror/images", test_images);
  return g_test_run();
}
