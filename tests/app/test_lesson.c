/* Lessons: the bundled ones load and validate; the format's parts (steps in
 * order, actions, predictions, visibility rules, placeholders); malformed
 * lessons are refused naming the file, line, section and key; an exported
 * lesson gives back the configuration it was exported from. */
#include <glib.h>
#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

#include "conform-lesson.h"
#include "conform-manifest.h"
#include "conform-presets.h"

static ConformLesson *
parse(const char *text, GError **error)
{
  return conform_lesson_parse(text, strlen(text), "t.lesson", ".", error);
}

static void
test_bundled(void)
{
  g_auto(GStrv) paths = conform_lesson_bundled();
  g_assert_cmpuint(g_strv_length(paths), >=, 5);
  const char *expect[] = {"simplex-3d", "mixture-minority", "fashion-superres"};
  gboolean seen[G_N_ELEMENTS(expect)] = {FALSE};
  for (int i = 0; paths[i]; i++) {
    g_autoptr(GError) error = NULL;
    g_autoptr(ConformLesson) l = conform_lesson_load(paths[i], &error);
    g_assert_no_error(error);
    g_assert_nonnull(l);
    g_test_message("%s: %s (%d steps)", paths[i], l->title, l->n_steps);
    g_assert_nonnull(conform_preset_find(l->preset));
    g_assert_cmpint(l->n_steps, >=, 3);
    ConformConfig cfg;
    conform_config_init(&cfg);
    g_assert_true(conform_lesson_make_config(l, &cfg, &error));
    g_assert_no_error(error);
    g_assert_cmpstr(cfg.preset, ==, l->preset);
    /* every step that asks a question has an answer, and a marked choice is one of them */
    gboolean asks = FALSE;
    for (int s = 0; s < l->n_steps; s++) {
      const ConformLessonStep *st = &l->steps[s];
      if (st->question) {
        asks = TRUE;
        g_assert_nonnull(st->answer);
        if (st->choices)
          g_assert_cmpint(st->correct, <, (int)g_strv_length(st->choices));
      }
      for (int a = 0; a < st->n_actions; a++)
        if (st->actions[a].kind == CONFORM_LESSON_SET)
          g_assert_nonnull(conform_config_find_key(st->actions[a].key));
    }
    g_assert_true(asks); /* "predict first" in every bundled lesson */
    for (guint k = 0; k < G_N_ELEMENTS(expect); k++)
      seen[k] = seen[k] || g_str_equal(l->preset, expect[k]);
    conform_config_clear(&cfg);
  }
  for (guint k = 0; k < G_N_ELEMENTS(expect); k++)
    g_assert_true(seen[k]);
}

static const char good[] = "# a comment\n"
                           "[lesson]\n"
                           "title=Test lesson\n"
                           "preset=gaussians-line\n"
                           "strategy=projection\n"
                           "strategies=none; projection\n"
                           "visible=samples;histogram;train.*;sample.n\n"
                           "hidden=train.clip;strategy\n"
                           "\n"
                           "[settings]\n"
                           "train.steps=300\n"
                           "sample.n=500\n"
                           "\n"
                           "[step 2]\n"
                           "text=Second, after <b>{step}</b> steps: {{literal}}\n"
                           "question=How many?\n"
                           "choices=few;many;all\n"
                           "correct=all\n"
                           "action=train 300; sample; strategy none; set train.lr=0.001; show trajectory\n"
                           "answer=Measured {frac_satisfied}; you said {prediction}.\n"
                           "\n"
                           "[step 1]\n"
                           "title=First\n"
                           "text=First step.\n";

static void
test_parse(void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(ConformLesson) l = parse(good, &error);
  g_assert_no_error(error);
  g_assert_cmpstr(l->title, ==, "Test lesson");
  g_assert_cmpstr(l->strategy, ==, "projection");
  g_assert_cmpuint(g_strv_length(l->strategies), ==, 2);
  g_assert_cmpstr(l->strategies[0], ==, "none");
  g_assert_cmpint(l->n_steps, ==, 2);
  g_assert_cmpint(l->steps[0].number, ==, 1); /* sorted by number, not file order */
  g_assert_cmpstr(l->steps[0].title, ==, "First");
  g_assert_null(l->steps[0].question);
  const ConformLessonStep *s = &l->steps[1];
  g_assert_cmpint(s->n_actions, ==, 5);
  g_assert_cmpint(s->actions[0].kind, ==, CONFORM_LESSON_TRAIN);
  g_assert_cmpint(s->actions[0].n, ==, 300);
  g_assert_cmpint(s->actions[1].kind, ==, CONFORM_LESSON_SAMPLE);
  g_assert_cmpint(s->actions[1].n, ==, 0);
  g_assert_cmpint(s->actions[2].kind, ==, CONFORM_LESSON_STRATEGY);
  g_assert_cmpstr(s->actions[2].key, ==, "none");
  g_assert_cmpint(s->actions[3].kind, ==, CONFORM_LESSON_SET);
  g_assert_cmpstr(s->actions[3].key, ==, "train.lr");
  g_assert_cmpstr(s->actions[3].value, ==, "0.001");
  g_assert_cmpint(s->actions[4].kind, ==, CONFORM_LESSON_SHOW);
  g_assert_cmpuint(g_strv_length(s->choices), ==, 3);
  g_assert_cmpint(s->correct, ==, 2);

  ConformConfig cfg;
  conform_config_init(&cfg);
  g_assert_true(conform_lesson_make_config(l, &cfg, &error));
  g_assert_cmpstr(cfg.preset, ==, "gaussians-line");
  g_assert_cmpstr(cfg.strategy, ==, "projection");
  g_assert_cmpint(cfg.steps, ==, 300);
  g_assert_cmpint(cfg.n_samples, ==, 500);
  g_assert_cmpint(cfg.constraint.m, ==, 1); /* the preset's */
  conform_config_clear(&cfg);

  /* visibility: `visible` restricts each kind it names, `hidden` hides */
  g_assert_true(conform_lesson_control_visible(l, "samples"));
  g_assert_true(conform_lesson_control_visible(l, "histogram"));
  g_assert_false(conform_lesson_control_visible(l, "curves"));
  g_assert_false(conform_lesson_control_visible(l, "compare"));
  g_assert_true(conform_lesson_control_visible(l, "train.lr"));  /* train.* */
  g_assert_false(conform_lesson_control_visible(l, "train.clip")); /* hidden */
  g_assert_true(conform_lesson_control_visible(l, "sample.n"));
  g_assert_false(conform_lesson_control_visible(l, "sample.steps"));
  g_assert_false(conform_lesson_control_visible(l, "model.width"));
  g_assert_false(conform_lesson_control_visible(l, "strategy")); /* hidden */
  g_assert_true(conform_lesson_control_visible(l, "preset"));    /* header not restricted by visible */
}

static void
test_fill(void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(ConformLesson) l = parse(good, &error);
  g_assert_no_error(error);
  ConformLessonValues v = {.step = 42, .prediction = "<all>"};
  g_autofree char *t = conform_lesson_fill(l->steps[1].text, &v);
  g_assert_cmpstr(t, ==, "Second, after <b>42</b> steps: {literal}");
  g_autofree char *a = conform_lesson_fill(l->steps[1].answer, &v);
  g_assert_cmpstr(a, ==, "Measured n/a; you said &lt;all&gt;.");
  ConformSampleSet s = {0};
  s.n = 100;
  s.strategy = "projection";
  s.summary.has_constraint = TRUE;
  s.summary.viol.frac_satisfied = 0.25;
  s.summary.viol.max = 1.2345e-7;
  s.summary.energy_distance = NAN;
  ConformTrainRecord r = {.step = 42, .loss = 0.5f, .n_dual = 2, .lambda = {1.5f, 2.5f}};
  v.samples = &s;
  v.record = &r;
  g_autofree char *b = conform_lesson_fill("{frac_satisfied} {violation_max} {n_samples} {strategy} {loss} "
                                          "{lambda_1} {lambda_5} {energy_distance}",
                                          &v);
  g_assert_cmpstr(b, ==, "0.25 1.23e-07 100 projection 0.5 2.5 n/a n/a");
}

typedef struct {
  const char *text;
  const char *expect[3]; /* substrings of the error message */
} Bad;

#define HEAD "[lesson]\ntitle=T\npreset=gaussians\n"
#define STEP "[step 1]\ntext=x\n"

static void
test_bad_input(void)
{
  static const Bad bad[] = {
    {"title=T\n", {"t.lesson:1:", "key outside a section"}},
    {STEP, {"no [lesson] section"}},
    {"[lesson]\npreset=gaussians\n" STEP, {"[lesson] title", "needs a title"}},
    {"[lesson]\ntitle=T\n" STEP, {"[lesson] preset", "needs a preset"}},
    {HEAD STEP "[steps 2]\n", {"t.lesson:6:", "unknown section [steps 2]"}},
    {HEAD STEP "quesiton=Why?\n", {"t.lesson:6:", "[step 1] unknown key 'quesiton'", "valid keys"}},
    {HEAD "title=U\n" STEP, {"t.lesson:4:", "[lesson] title is set twice (first on line 2)"}},
    {HEAD STEP STEP, {"t.lesson:6:", "section [step 1] appears twice (first on line 4)"}},
    {HEAD STEP "this is not a key\n", {"t.lesson:6:", "expected key = value"}},
    {"[lesson]\ntitle=T\npreset=gausians\n" STEP, {"t.lesson:3:", "[lesson] preset", "unknown preset 'gausians'"}},
    {HEAD "strategy=projektion\n" STEP, {"t.lesson:4:", "[lesson] strategy", "unknown value 'projektion'"}},
    {HEAD "[settings]\ntrain.lrr=0.1\n" STEP, {"t.lesson:5:", "[settings] train.lrr", "unknown setting"}},
    {HEAD "[settings]\ntrain.lr=fast\n" STEP, {"t.lesson:5:", "[settings] train.lr", "not a finite number"}},
    {HEAD "[settings]\nexperiment.strategy=none\n" STEP, {"[settings] experiment.strategy", "set this in [lesson]"}},
    {HEAD "visible=samples;histogramm\n" STEP, {"t.lesson:4:", "[lesson] visible", "unknown control 'histogramm'"}},
    {HEAD "hidden=nosuch.*\n" STEP, {"[lesson] hidden", "unknown control 'nosuch.*'"}},
    {HEAD "constraint=1 x | 0\n" STEP, {"t.lesson:4:", "[lesson] constraint"}},
    {HEAD "constraint=1 1 1 | 0\n" STEP, {"[lesson] constraint", "3 columns", "have 2"}},
    {HEAD "strategy=projection\n" STEP, {"[lesson] preset", "needs a constraint"}},
    {HEAD, {"at least one [step 1]"}},
    {HEAD "[step 1]\ntitle=x\n", {"[step 1] text", "needs a text"}},
    {HEAD STEP "action=trian 100\n", {"t.lesson:6:", "[step 1] action", "unknown command 'trian 100'"}},
    {HEAD STEP "action=train\n", {"[step 1] action", "train N needs"}},
    {HEAD STEP "action=train -5\n", {"[step 1] action", "train N needs"}},
    {HEAD STEP "action=set train.lr\n", {"[step 1] action", "set needs KEY=VALUE"}},
    {HEAD STEP "action=set train.lr=-1\n", {"[step 1] action", "out of range"}},
    {HEAD STEP "action=show everything\n", {"[step 1] action", "unknown view 'everything'"}},
    {HEAD STEP "action=strategy projection; reset\n", {"[step 1] action", "reset would fail", "needs a constraint"}},
    {HEAD "[step 1]\ntext=<bold>x</bold>\n", {"t.lesson:5:", "[step 1] text", "unknown markup element <bold>"}},
    {HEAD "[step 1]\ntext=<b>x\n", {"t.lesson:5:", "[step 1] text"}},
    {HEAD "[step 1]\ntext=x {fracc}\n", {"[step 1] text", "unknown placeholder {fracc}"}},
    {HEAD "[step 1]\ntext=x {frac\n", {"[step 1] text", "without a closing"}},
    {HEAD STEP "question=Why?\n", {"t.lesson:6:", "[step 1] question", "needs an answer"}},
    {HEAD STEP "answer=Because.\n", {"[step 1] answer", "needs a question"}},
    {HEAD STEP "question=Q\nanswer=A\nchoices=one\n", {"[step 1] choices", "at least two"}},
    {HEAD STEP "question=Q\nanswer=A\nchoices=a;b\ncorrect=c\n", {"t.lesson:9:", "[step 1] correct", "'c' is not one"}},
    {HEAD STEP "question=Q\nanswer=A\ncorrect=c\n", {"[step 1] correct", "there are none"}},
  };
  for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
    g_autoptr(GError) error = NULL;
    g_autoptr(ConformLesson) l = parse(bad[i].text, &error);
    if (l || !error)
      g_error("case %u was accepted:\n%s", i, bad[i].text);
    g_test_message("case %u: %s", i, error->message);
    for (int k = 0; k < 3 && bad[i].expect[k]; k++)
      if (!strstr(error->message, bad[i].expect[k]))
        g_error("case %u: '%s' does not contain '%s'", i, error->message, bad[i].expect[k]);
  }
  /* files: not found, not UTF-8, a constraint file relative to the lesson */
  g_autoptr(GError) error = NULL;
  g_assert_null(conform_lesson_load("/nonexistent/x.lesson", &error));
  g_assert_nonnull(strstr(error->message, "/nonexistent/x.lesson"));
  g_clear_error(&error);
  g_autoptr(ConformLesson) l = conform_lesson_parse("[lesson]\ntitle=\xff\n", 17, "u.lesson", ".", &error);
  g_assert_null(l);
  g_assert_nonnull(strstr(error->message, "not UTF-8"));
}

static void
test_constraint_file(void)
{
  g_autofree char *dir = g_dir_make_tmp("conform-lesson-XXXXXX", NULL);
  g_autofree char *cpath = g_build_filename(dir, "line.txt", NULL);
  g_autofree char *lpath = g_build_filename(dir, "l.lesson", NULL);
  g_assert_true(g_file_set_contents(cpath, "# x0 = x1\n1 -1 | 0\n", -1, NULL));
  g_assert_true(g_file_set_contents(lpath,
                                    "[lesson]\ntitle=T\npreset=gaussians\nstrategy=projection\n"
                                    "constraint_file=line.txt\n[step 1]\ntext=x\n",
                                    -1, NULL));
  g_autoptr(GError) error = NULL;
  g_autoptr(ConformLesson) l = conform_lesson_load(lpath, &error);
  g_assert_no_error(error);
  ConformConfig cfg;
  conform_config_init(&cfg);
  g_assert_true(conform_lesson_make_config(l, &cfg, &error));
  g_assert_cmpint(cfg.constraint.m, ==, 1);
  g_assert_cmpfloat(cfg.constraint.A[1], ==, -1);
  conform_config_clear(&cfg);
  g_unlink(cpath);
  g_assert_null(conform_lesson_load(lpath, &error));
  g_assert_nonnull(strstr(error->message, "[lesson] constraint_file"));
  g_unlink(lpath);
  g_rmdir(dir);
}

/* export(cfg) -> parse -> the same configuration */
static void
test_export_round_trip(void)
{
  ConformConfig cfg;
  conform_config_init(&cfg);
  g_assert_true(conform_config_apply_preset(&cfg, "gaussians", NULL));
  g_assert_true(conform_config_set(&cfg, "experiment.strategy", "projection", NULL));
  g_assert_true(conform_config_set(&cfg, "experiment.seed", "17", NULL));
  g_assert_true(conform_config_set(&cfg, "train.lr", "0.00071", NULL));
  g_assert_true(conform_config_set(&cfg, "data.classes", "0-3,5", NULL));
  double A[4] = {1.0 / 3.0, -2.5, 0.1, 7};
  double b[2] = {0.2, 1e-3};
  cf_constraint_clear(&cfg.constraint);
  g_assert_cmpint(cf_constraint_set(&cfg.constraint, 2, 2, A, b, NULL), ==, CF_OK);
  const char *visible[] = {"samples", "history", NULL}, *hidden[] = {"train.clip", "preset", NULL};
  g_autofree char *text = conform_lesson_export(&cfg, "Round trip", visible, hidden);
  g_test_message("%s", text);
  g_autoptr(GError) error = NULL;
  g_autoptr(ConformLesson) l = parse(text, &error);
  g_assert_no_error(error);
  g_assert_cmpstr(l->title, ==, "Round trip");
  ConformConfig back;
  conform_config_init(&back);
  g_assert_true(conform_lesson_make_config(l, &back, &error));
  const char *diff = NULL;
  if (!conform_config_equal(&cfg, &back, &diff))
    g_error("exported lesson differs in %s", diff);
  g_assert_false(conform_lesson_control_visible(l, "histogram"));
  g_assert_true(conform_lesson_control_visible(l, "history"));
  g_assert_false(conform_lesson_control_visible(l, "train.clip"));
  g_assert_true(conform_lesson_control_visible(l, "train.lr"));
  g_assert_false(conform_lesson_control_visible(l, "preset"));
  conform_config_clear(&back);
  /* the preset's own constraint is not written out */
  g_assert_true(conform_config_apply_preset(&cfg, "simplex-3d", NULL));
  g_autofree char *plain = conform_lesson_export(&cfg, NULL, NULL, NULL);
  g_assert_null(strstr(plain, "constraint="));
  g_assert_null(strstr(plain, "\n[settings]"));
  conform_config_clear(&cfg);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/lesson/bundled", test_bundled);
  g_test_add_func("/lesson/parse", test_parse);
  g_test_add_func("/lesson/fill", test_fill);
  g_test_add_func("/lesson/bad-input", test_bad_input);
  g_test_add_func("/lesson/constraint-file", test_constraint_file);
  g_test_add_func("/lesson/export-round-trip", test_export_round_trip);
  return g_test_run();
}
