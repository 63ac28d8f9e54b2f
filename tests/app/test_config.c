#include <glib.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "conform-config.h"
#include "conform-cli.h"
#include "conform-presets.h"

static void
test_keyfile_roundtrip(void)
{
  ConformConfig a, b;
  conform_config_init(&a);
  conform_config_init(&b);
  g_assert_true(conform_config_apply_preset(&a, "flow-network", NULL));
  g_assert_true(conform_config_set(&a, "train.lr", "0.000123456789", NULL));
  g_assert_true(conform_config_set(&a, "experiment.seed", "18446744073709551615", NULL));
  g_assert_true(conform_config_set(&a, "sample.sampler", "ddim", NULL));
  g_autoptr(GKeyFile) kf = conform_config_to_keyfile(&a);
  g_autoptr(GError) error = NULL;
  g_assert_true(conform_config_from_keyfile(&b, kf, "x.ini", &error));
  g_assert_no_error(error);
  guint n;
  const ConformKey *keys = conform_config_keys(&n);
  for (guint i = 0; i < n; i++) {
    g_autofree char *va = conform_config_get_string(&a, keys[i].key);
    g_autofree char *vb = conform_config_get_string(&b, keys[i].key);
    g_assert_cmpstr(va, ==, vb);
  }
  g_assert_cmpint(a.constraint.m, ==, b.constraint.m);
  g_assert_cmpint(a.constraint.n, ==, b.constraint.n);
  for (int i = 0; i < a.constraint.m * a.constraint.n; i++)
    g_assert_cmpfloat(a.constraint.A[i], ==, b.constraint.A[i]); /* full precision */
  for (int i = 0; i < a.constraint.m; i++)
    g_assert_cmpfloat(a.constraint.b[i], ==, b.constraint.b[i]);
  conform_config_clear(&a);
  conform_config_clear(&b);
}

static void
test_set_validation(void)
{
  ConformConfig c;
  conform_config_init(&c);
  struct {
    const char *k, *v;
    gboolean ok;
  } cases[] = {
    {"train.lr", "1e-3", TRUE},     {"train.lr", "0", FALSE},        {"train.lr", "nan", FALSE},
    {"train.lr", "inf", FALSE},     {"train.lr", "1e-3x", FALSE},    {"train.batch", "1.5", FALSE},
    {"train.batch", "-4", FALSE},   {"train.batch", "99999999999", FALSE}, {"model.schedule", "cosine", TRUE},
    {"model.schedule", "cubic", FALSE}, {"experiment.seed", "-1", FALSE}, {"sample.n", "", FALSE},
  };
  for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
    g_autoptr(GError) e = NULL;
    gboolean ok = conform_config_set(&c, cases[i].k, cases[i].v, &e);
    if (ok != cases[i].ok)
      g_error("%s=%s: expected %s", cases[i].k, cases[i].v, cases[i].ok ? "ok" : "an error");
    if (!ok) {
      g_assert_error(e, CONFORM_ERROR, CONFORM_ERROR_USAGE);
      g_assert_nonnull(strstr(e->message, cases[i].k));
    }
  }
  conform_config_clear(&c);
}

static void
test_validate(void)
{
  ConformConfig c;
  conform_config_init(&c);
  g_assert_true(conform_config_apply_preset(&c, "gaussians", NULL));
  g_assert_true(conform_config_validate(&c, NULL));
  g_assert_true(conform_config_set(&c, "experiment.strategy", "projection", NULL));
  g_autoptr(GError) e = NULL;
  g_assert_false(conform_config_validate(&c, &e));
  g_assert_nonnull(strstr(e->message, "needs a constraint"));
  g_clear_error(&e);
  g_assert_true(conform_config_apply_preset(&c, "simplex-3d", NULL));
  g_assert_true(conform_config_set(&c, "sample.sampler", "ddim", NULL));
  g_assert_true(conform_config_set(&c, "sample.steps", "5000", NULL));
  g_assert_false(conform_config_validate(&c, &e));
  g_assert_nonnull(strstr(e->message, "sample.steps"));
  g_clear_error(&e);
  g_assert_true(conform_config_set(&c, "sample.steps", "50", NULL));
  g_assert_true(conform_config_set(&c, "model.temb_dim", "33", NULL));
  g_assert_false(conform_config_validate(&c, &e));
  conform_config_clear(&c);
}

static void
test_presets_apply(void)
{
  guint n;
  const ConformPreset *p = conform_presets(&n);
  g_assert_cmpuint(n, >=, 8);
  for (guint i = 0; i < n; i++) {
    ConformConfig c;
    conform_config_init(&c);
    g_autoptr(GError) e = NULL;
    g_assert_true(conform_config_apply_preset(&c, p[i].name, &e));
    g_assert_no_error(e);
    g_assert_cmpstr(c.preset, ==, p[i].name);
    g_assert_true(conform_config_validate(&c, NULL));
    conform_config_clear(&c);
  }
  ConformConfig c;
  conform_config_init(&c);
  g_autoptr(GError) e = NULL;
  g_assert_false(conform_config_apply_preset(&c, "nope", &e));
  g_assert_nonnull(strstr(e->message, "valid presets"));
  g_assert_nonnull(conform_preset_find(CONFORM_DEFAULT_PRESET));
  conform_config_clear(&c);
}

static void
test_keyfile_errors(void)
{
  const char *bad[] = {
    "[train]\nlr=banana\n",
    "[constraint]\nrows=1\ncols=3\nA=1 1\nb=1\n",
    "[constraint]\nrows=1\ncols=3\nA=1 1 1 1\nb=1\n",
    "[constraint]\nrows=1\ncols=3\nA=1 nan 1\nb=1\n",
    "[constraint]\nrows=-5\ncols=3\n",
    "[constraint]\nrows=1\ncols=3\nA=1 1 1\n",
  };
  for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
    g_autoptr(GKeyFile) kf = g_key_file_new();
    g_assert_true(g_key_file_load_from_data(kf, bad[i], -1, G_KEY_FILE_NONE, NULL));
    ConformConfig c;
    conform_config_init(&c);
    g_assert_true(conform_config_set(&c, "train.lr", "0.5", NULL));
    g_autoptr(GError) e = NULL;
    g_assert_false(conform_config_from_keyfile(&c, kf, "exp.ini", &e));
    g_assert_nonnull(strstr(e->message, "exp.ini"));
    g_assert_cmpfloat(c.lr, ==, 0.5); /* previous state survives */
    conform_config_clear(&c);
  }
}

/* Found by review while fuzzing (tests/fuzz, target config; the fuzz-config
 * target reproduces it as "out-of-memory (malloc(2147483648))" with
 * -malloc_limit_mb=1024): a one-line A under rows=4096, cols=65536 made
 * reading the file allocate rows x cols doubles (2 GiB) before counting the
 * values. The subprocess runs with 1 GiB of address space (under ASan:
 * allocations above 512 MiB fail), so the old reader aborted. */
static void
test_keyfile_constraint_size(void)
{
  if (g_test_subprocess()) {
#ifndef __SANITIZE_ADDRESS__
    long pages = 0;
    g_autofree char *statm = NULL;
    g_assert_true(g_file_get_contents("/proc/self/statm", &statm, NULL, NULL));
    pages = strtol(statm, NULL, 10);
    struct rlimit rl;
    rl.rlim_cur = rl.rlim_max = (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + ((rlim_t)1 << 30);
    g_assert_cmpint(setrlimit(RLIMIT_AS, &rl), ==, 0);
#endif
    const char *ini = "[constraint]\nrows=4096\ncols=65536\nA=1 2\nb=1\n";
    g_autoptr(GKeyFile) kf = g_key_file_new();
    g_assert_true(g_key_file_load_from_data(kf, ini, -1, G_KEY_FILE_NONE, NULL));
    ConformConfig c;
    conform_config_init(&c);
    g_autoptr(GError) e = NULL;
    g_assert_false(conform_config_from_keyfile(&c, kf, "big.ini", &e));
    g_assert_cmpstr(e->message, ==, "big.ini: [constraint] A has 2 values, expected 268435456");
    conform_config_clear(&c);
    return;
  }
  const char *asan = g_getenv("ASAN_OPTIONS");
  g_autofree char *opts = g_strdup_printf("%s%smax_allocation_size_mb=512:allocator_may_return_null=1", asan ? asan : "",
                                          asan && *asan ? ":" : "");
  g_autofree char *old = g_strdup(asan);
  g_setenv("ASAN_OPTIONS", opts, TRUE);
  g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
  if (old)
    g_setenv("ASAN_OPTIONS", old, TRUE);
  else
    g_unsetenv("ASAN_OPTIONS");
  g_test_trap_assert_passed();
}

/* Which arguments go to the CLI and which open the window. */
static void
test_cli_routing(void)
{
  g_assert_true(conform_cli_is_command("train"));
  g_assert_true(conform_cli_is_command("--help"));
  g_assert_true(conform_cli_is_command("tran")); /* a typo gets "unknown command" */
  g_assert_false(conform_cli_is_command("/")); /* an existing directory opens in the window */
  g_assert_false(conform_cli_is_command("--gapplication-service"));
  g_assert_false(conform_cli_is_command(NULL));
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/config/keyfile-roundtrip", test_keyfile_roundtrip);
  g_test_add_func("/config/set-validation", test_set_validation);
  g_test_add_func("/config/validate", test_validate);
  g_test_add_func("/config/presets", test_presets_apply);
  g_test_add_func("/config/keyfile-errors", test_keyfile_errors);
  g_test_add_func("/config/keyfile-constraint-size", test_keyfile_constraint_size);
  g_test_add_func("/config/cli-routing", test_cli_routing);
  return g_test_run();
}
