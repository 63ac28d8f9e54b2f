/* Strategy dual in the engine: settings validation, class filters, the
 * minority-class and fine-tuning experiments (direction of the paper),
 * the violation constraint beside the exact strategies, metrics.csv
 * columns and multipliers surviving save/load, and bad input. */
#include <glib.h>
#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

#include "conform-dual.h"
#include "conform-engine.h"
#include "engine-fixture.h"

static void
test_parse(void)
{
  ConformConfig c;
  ConformDualConstraint d[CONFORM_DUAL_MAX];
  int n;
  g_autoptr(GError) err = NULL;
  conform_config_init(&c);
  g_assert_true(conform_dual_parse(&c, d, &n, &err)); /* default: violation, threshold 0 */
  g_assert_cmpint(n, ==, 1);
  g_assert_cmpint(d[0].kind, ==, CONFORM_DUAL_VIOLATION);
  g_assert_true(conform_config_set(&c, "dual.constraints", "class:3, teacher,class:0", NULL));
  g_assert_true(conform_config_set(&c, "dual.thresholds", "0.1,0.2,0.3", NULL));
  g_assert_true(conform_dual_parse(&c, d, &n, &err));
  g_assert_cmpint(n, ==, 3);
  g_assert_cmpint(d[0].cls, ==, 3);
  g_assert_cmpint(d[1].kind, ==, CONFORM_DUAL_TEACHER);
  g_assert_cmpfloat(d[2].threshold, ==, 0.3);
  const char *bad[][3] = {
      {"class:x", "0", "not a class number"},       {"class:12", "0", "not a class number"},
      {"class:1,class:1", "0", "listed twice"},     {"teacher,teacher", "0", "listed twice"},
      {"bogus", "0", "unknown constraint 'bogus'"}, {"class:1,class:2", "1,2,3", "3 values for 2 constraints"},
      {"class:1", "-1", "not a number >= 0"},       {"class:1", "abc", "not a number >= 0"},
  };
  for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
    g_assert_true(conform_config_set(&c, "dual.constraints", bad[i][0], NULL));
    g_assert_true(conform_config_set(&c, "dual.thresholds", bad[i][1], NULL));
    g_clear_error(&err);
    g_assert_false(conform_dual_parse(&c, d, &n, &err));
    if (!strstr(err->message, bad[i][2]))
      g_error("'%s' / '%s': \"%s\" lacks \"%s\"", bad[i][0], bad[i][1], err->message, bad[i][2]);
  }
  conform_config_clear(&c);
  guint mask;
  g_clear_error(&err);
  g_assert_true(conform_class_list_parse("0-2, 5,9", "k", &mask, &err));
  g_assert_cmpuint(mask, ==, 0x7u | (1u << 5) | (1u << 9));
  g_assert_true(conform_class_list_parse("", "k", &mask, &err));
  g_assert_cmpuint(mask, ==, 0);
  g_assert_false(conform_class_list_parse("3-1", "data.classes", &mask, &err));
  g_assert_nonnull(strstr(err->message, "runs backwards"));
  g_clear_error(&err);
  g_assert_false(conform_class_list_parse("1,,2", "data.classes", &mask, &err));
  g_assert_nonnull(strstr(err->message, "empty item"));
}

static void
test_bad_input(void)
{
  const char *vae[] = {"experiment.strategy=dual", "model.type=vae", NULL};
  expect_error("simplex-3d", vae, "needs model.type=ddpm");
  const char *teacher[] = {"experiment.strategy=dual", "dual.constraints=teacher", NULL};
  expect_error("gaussians", teacher, "set train.init");
  const char *viol[] = {"experiment.strategy=dual", NULL};
  expect_error("gaussians", viol, "needs a constraint");
  const char *unlabelled[] = {"experiment.strategy=dual", "dual.constraints=class:1", NULL};
  expect_error("checkerboard", unlabelled, "no class labels");
  const char *missing[] = {"experiment.strategy=dual", "dual.constraints=class:3", "data.classes=0-2", NULL};
  expect_error("gaussians", missing, "class 3 has no training rows");
  const char *range[] = {"data.classes=0-9", NULL};
  expect_error("gaussians", range, "the data have classes 0-7");
  const char *init[] = {"train.init=/nonexistent/run", NULL};
  expect_error("gaussians", init, "train.init");
  const char *bad_gamma[] = {"dual.gamma=-1", NULL};
  expect_error("gaussians", bad_gamma, "dual.gamma");
  const char *bad_lr[] = {"dual.lr=0", NULL};
  expect_error("gaussians", bad_lr, "dual.lr");
}

/* mixture-minority: dual's class shares are far closer to uniform, the
 * measured shares follow the predicted ones, and lambda > 0. */
static void
test_minority(void)
{
  const int steps = 2500, n = 2000;
  ConformSummary s_none, s_dual;
  g_autoptr(ConformEngine) en = engine_for("mixture-minority", steps, NULL);
  train_sample(en, steps, n, &s_none);
  const char *dual[] = {"experiment.strategy=dual", NULL};
  g_autoptr(ConformEngine) ed = engine_for("mixture-minority", steps, dual);
  train_sample(ed, steps, n, &s_dual);
  g_assert_true(s_none.has_classes && s_dual.has_classes && s_dual.has_predicted);
  g_assert_false(s_none.has_predicted);
  g_assert_cmpint(s_dual.n_classes, ==, 8);
  g_test_message("class_tv_target none %.3f dual %.3f; shares of mode 1: train %.3f none %.3f dual %.3f (predicted "
                 "%.3f)",
                 s_none.class_tv_target, s_dual.class_tv_target, s_dual.train_share[1], s_none.class_share[1],
                 s_dual.class_share[1], s_dual.predicted_share[1]);
  g_assert_cmpfloat(s_dual.class_tv_target, <=, 0.5 * s_none.class_tv_target);
  double sum = 0;
  for (int c = 0; c < 8; c++) {
    sum += s_dual.predicted_share[c];
    g_assert_cmpfloat(fabs(s_dual.class_share[c] - s_dual.predicted_share[c]), <, 0.05);
  }
  g_assert_cmpfloat(fabs(sum - 1.0), <, 1e-9);
  const GArray *rec = conform_engine_records(ed);
  const ConformTrainRecord *last = &g_array_index(rec, ConformTrainRecord, rec->len - 1);
  g_assert_cmpint(last->n_dual, ==, 3);
  for (int i = 0; i < 3; i++) {
    g_assert_cmpfloat(last->lambda[i], >, 0.05);
    g_assert_true(isfinite(last->closs[i]));
  }
}

static char *
read_text(const char *dir, const char *name)
{
  g_autofree char *p = g_build_filename(dir, name, NULL);
  char *t = NULL;
  g_assert_true(g_file_get_contents(p, &t, NULL, NULL));
  return t;
}

/* Fine-tuning on one new class: without the teacher constraint the model
 * collapses onto it, with it the old classes stay. Also: metrics.csv
 * columns, and the multipliers survive save and load. */
static void
test_finetune(void)
{
  g_autofree char *tmp = g_dir_make_tmp("conform-dual-XXXXXX", NULL);
  g_autofree char *pre = g_build_filename(tmp, "pre", NULL), *ft = g_build_filename(tmp, "ft", NULL);
  g_autoptr(GError) err = NULL;
  const char *pre_sets[] = {"data.classes=0-6", NULL};
  g_autoptr(ConformEngine) ep = engine_for("gaussians", 2500, pre_sets);
  ConformSummary sp;
  train_sample(ep, 2500, 1000, &sp);
  g_assert_true(conform_engine_save(ep, pre, NULL, 0, NULL, &err));
  g_assert_cmpfloat(sp.class_share[7], <, 0.02);

  g_autofree char *init = g_strdup_printf("train.init=%s", pre);
  const char *common[] = {"data.classes=7", init, "dual.constraints=teacher", "dual.thresholds=0.03", "dual.lr=20",
                          "train.lr=0.0005", "train.warmup=20", NULL, NULL};
  ConformSummary s_none, s_dual;
  g_autoptr(ConformEngine) en = engine_for("gaussians", 800, common);
  train_sample(en, 800, 1000, &s_none);
  common[7] = "experiment.strategy=dual";
  g_autoptr(ConformEngine) ed = engine_for("gaussians", 800, common);
  train_sample(ed, 800, 1000, &s_dual);
  g_test_message("share of the new class 7: none %.3f, dual %.3f", s_none.class_share[7], s_dual.class_share[7]);
  g_assert_cmpfloat(s_none.class_share[7], >, 0.8);
  g_assert_cmpfloat(s_dual.class_share[7], <, 0.5);
  g_assert_cmpfloat(s_dual.class_share[7], >, 0.05); /* it still learns the new class */

  g_assert_true(conform_engine_save(ed, ft, NULL, 0, NULL, &err));
  g_autofree char *csv = read_text(ft, "metrics.csv");
  g_assert_true(g_str_has_prefix(csv, "step,loss,lr,grad_norm,seconds,lambda_0,slack_0,constraint_loss_0\n"));
  const GArray *rec = conform_engine_records(ed);
  float lam = g_array_index(rec, ConformTrainRecord, rec->len - 1).lambda[0];
  g_assert_cmpfloat(lam, >, 0.0);
  g_autoptr(ConformEngine) el = conform_engine_load(ft, &err);
  g_assert_no_error(err);
  const GArray *rl = conform_engine_records(el);
  g_assert_cmpuint(rl->len, ==, rec->len);
  g_assert_cmpfloat(g_array_index(rl, ConformTrainRecord, rl->len - 1).lambda[0], ==, lam);
  g_assert_true(conform_engine_train(el, 20, NULL, NULL, NULL, &err)); /* continues */
  g_assert_no_error(err);

  /* a checkpoint of another shape is refused by name */
  const char *wide[] = {init, "model.width=64", NULL};
  expect_error("gaussians", wide, "different model");
  g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", tmp);
  g_assert_cmpint(system(cmd), ==, 0);
}

/* Violation constraint on simplex-3d: dual lowers the violation of the
 * samples compared with none (same seed), but does not make it exact. */
static void
test_violation(void)
{
  const int steps = 2000;
  ConformSummary s_none, s_dual;
  g_autoptr(ConformEngine) en = engine_for("simplex-3d", steps, NULL);
  train_sample(en, steps, 1000, &s_none);
  const char *dual[] = {"experiment.strategy=dual", "dual.lr=20", NULL};
  g_autoptr(ConformEngine) ed = engine_for("simplex-3d", steps, dual);
  train_sample(ed, steps, 1000, &s_dual);
  g_test_message("violation median: none %.3g dual %.3g", s_none.viol.median, s_dual.viol.median);
  g_assert_cmpfloat(s_dual.viol.median, <, 0.85 * s_none.viol.median);
  g_assert_cmpfloat(s_dual.viol.median, >, 1e-5); /* not an exact strategy */
  /* switching to or from dual mid-run needs Reset */
  g_autoptr(GError) err = NULL;
  g_assert_false(conform_engine_set_live(en, "experiment.strategy", "dual", &err));
  g_assert_nonnull(strstr(err->message, "after Reset"));
}

/* An unreachable threshold (plain ascent, threshold 0 on an epsilon loss
 * that cannot reach 0) drives lambda to its cap: capped, warned, finite. */
static void
test_infeasible_capped(void)
{
  const char *sets[] = {"experiment.strategy=dual", "dual.gamma=0", "dual.lr=1", "dual.cap=0.5", NULL};
  g_autoptr(ConformEngine) e = engine_for("mixture-minority", 400, sets);
  g_autoptr(GError) err = NULL;
  g_assert_true(conform_engine_train(e, 400, NULL, NULL, NULL, &err));
  const char *w = conform_engine_dual_warning(e);
  g_assert_nonnull(w);
  g_assert_nonnull(strstr(w, "cap 0.5"));
  g_assert_nonnull(strstr(w, "unreachable"));
  const GArray *rec = conform_engine_records(e);
  const ConformTrainRecord *r = &g_array_index(rec, ConformTrainRecord, rec->len - 1);
  for (int i = 0; i < r->n_dual; i++)
    g_assert_cmpfloat(r->lambda[i], ==, 0.5f);
  g_assert_true(isfinite(r->loss));
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/dual/parse", test_parse);
  g_test_add_func("/dual/bad-input", test_bad_input);
  g_test_add_func("/dual/minority", test_minority);
  g_test_add_func("/dual/finetune", test_finetune);
  g_test_add_func("/dual/violation", test_violation);
  g_test_add_func("/dual/infeasible-capped", test_infeasible_capped);
  return g_test_run();
}
