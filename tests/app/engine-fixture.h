/* Engines for app tests: a preset with a step count and extra settings,
 * expected construction errors, and train-then-sample with the summary. */
#pragma once

#include <glib.h>
#include <string.h>

#include "conform-engine.h"

G_GNUC_UNUSED static gboolean
make_config(ConformConfig *c, const char *preset, int steps, const char *const *sets, GError **error)
{
  conform_config_init(c);
  g_assert_true(conform_config_apply_preset(c, preset, NULL));
  g_autofree char *s = g_strdup_printf("%d", steps);
  g_assert_true(conform_config_set(c, "train.steps", s, NULL));
  for (; sets && *sets; sets++)
    if (!conform_config_set_assignment(c, *sets, error))
      return FALSE;
  return TRUE;
}

/* The engine, or NULL with the error of config validation / construction. */
G_GNUC_UNUSED static ConformEngine *
try_engine(const char *preset, int steps, const char *const *sets, GError **error)
{
  ConformConfig c;
  ConformEngine *e = make_config(&c, preset, steps, sets, error) ? conform_engine_new(&c, error) : NULL;
  conform_config_clear(&c);
  return e;
}

G_GNUC_UNUSED static ConformEngine *
engine_for(const char *preset, int steps, const char *const *sets)
{
  g_autoptr(GError) err = NULL;
  ConformEngine *e = try_engine(preset, steps, sets, &err);
  g_assert_no_error(err);
  return e;
}

G_GNUC_UNUSED static void
expect_error(const char *preset, const char *const *sets, const char *needle)
{
  g_autoptr(GError) err = NULL;
  ConformEngine *e = try_engine(preset, 10, sets, &err);
  if (e)
    g_error("%s with %s: no error (expected \"%s\")", preset, sets[0], needle);
  g_assert_nonnull(err);
  if (!strstr(err->message, needle))
    g_error("error \"%s\" does not mention \"%s\"", err->message, needle);
}

G_GNUC_UNUSED static void
train_sample(ConformEngine *e, long steps, int n, ConformSummary *s)
{
  g_autoptr(GError) err = NULL;
  g_assert_true(conform_engine_train(e, steps, NULL, NULL, NULL, &err));
  g_assert_no_error(err);
  ConformSampleOptions o = {.n = n, .eta = -1};
  float *x = NULL;
  g_assert_true(conform_engine_sample(e, &o, &x, NULL, NULL, NULL, NULL, &err));
  conform_engine_evaluate(e, x, n, s);
  g_free(x);
}
