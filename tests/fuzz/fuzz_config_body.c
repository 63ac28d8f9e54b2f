/* Fuzz body: experiment.ini and --set (app/conform-config.c).
 *
 * The input is loaded with g_key_file_load_from_data and, when GLib takes
 * it, read by conform_config_from_keyfile. On acceptance: every setting in
 * its range or among its choices, the constraint consistent and finite;
 * writing the configuration out (conform_config_to_keyfile) and reading it
 * back gives the same configuration; conform_config_validate either accepts
 * or gives a usage error. On refusal: an input error that starts with the
 * file name, and the output configuration untouched.
 *
 * Then every line of the input (up to 16) is a `--set key=value`
 * assignment (conform_config_set_assignment) on a fresh configuration: on
 * acceptance the key exists, the value is in range, and setting the value
 * read back changes nothing; on refusal a usage error and nothing changed. */
#include "fuzz.h"

#include <math.h>
#include <string.h>

#include "conform-config.h"

static void
setup(void)
{
  static gboolean done;
  if (done)
    return;
  done = TRUE;
  g_log_set_always_fatal(G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING);
}

#define FIELD(cfg, k, type) ((const type *)((const char *)(cfg) + (k)->offset))

static void
check_config(const ConformConfig *cfg)
{
  guint n_keys;
  const ConformKey *keys = conform_config_keys(&n_keys);
  for (guint i = 0; i < n_keys; i++) {
    const ConformKey *k = &keys[i];
    switch (k->type) {
    case CONFORM_KEY_INT: {
      int v = *FIELD(cfg, k, int);
      FUZZ_CHECK(v >= k->min && v <= k->max, "%s = %d outside [%g, %g]", k->key, v, k->min, k->max);
      break;
    }
    case CONFORM_KEY_DOUBLE: {
      double v = *FIELD(cfg, k, double);
      FUZZ_CHECK(isfinite(v) && v >= k->min && v <= k->max, "%s = %g outside [%g, %g]", k->key, v, k->min, k->max);
      break;
    }
    case CONFORM_KEY_UINT64:
      break;
    case CONFORM_KEY_CHOICE: {
      const char *v = *FIELD(cfg, k, char *);
      FUZZ_CHECK(v != NULL, "%s is NULL", k->key);
      g_auto(GStrv) opts = g_strsplit(k->choices, "|", -1);
      FUZZ_CHECK(g_strv_contains((const char *const *)opts, v), "%s = '%s' is not a choice", k->key, v);
      break;
    }
    case CONFORM_KEY_STRING:
      FUZZ_CHECK(*FIELD(cfg, k, char *) != NULL, "%s is NULL", k->key);
      break;
    }
  }
  const CfConstraint *c = &cfg->constraint;
  FUZZ_CHECK(cfg->constraint_source != NULL, "constraint_source is NULL");
  if (c->m == 0) {
    FUZZ_CHECK(c->A == NULL && c->b == NULL, "no rows but A or b set");
    return;
  }
  FUZZ_CHECK(c->m >= 1 && c->m <= CF_CONSTRAINT_MAX_ROWS && c->n >= 1 && c->n <= CF_CONSTRAINT_MAX_COLS,
             "constraint %d x %d", c->m, c->n);
  for (size_t i = 0; i < (size_t)c->m * (size_t)c->n; i++)
    FUZZ_CHECK(isfinite(c->A[i]), "A[%zu] = %g", i, c->A[i]);
  for (int i = 0; i < c->m; i++)
    FUZZ_CHECK(isfinite(c->b[i]), "b[%d] = %g", i, c->b[i]);
}

/* Field by field, without formatting (this runs for every input line). */
static void
check_same(const ConformConfig *x, const ConformConfig *y, const char *what)
{
  guint n_keys;
  const ConformKey *keys = conform_config_keys(&n_keys);
  for (guint i = 0; i < n_keys; i++) {
    const ConformKey *k = &keys[i];
    gboolean same;
    switch (k->type) {
    case CONFORM_KEY_INT: same = *FIELD(x, k, int) == *FIELD(y, k, int); break;
    case CONFORM_KEY_UINT64: same = *FIELD(x, k, guint64) == *FIELD(y, k, guint64); break;
    case CONFORM_KEY_DOUBLE: same = memcmp(FIELD(x, k, double), FIELD(y, k, double), sizeof(double)) == 0; break;
    default: same = g_strcmp0(*FIELD(x, k, char *), *FIELD(y, k, char *)) == 0; break;
    }
    if (!same) {
      g_autofree char *a = conform_config_get_string(x, k->key);
      g_autofree char *b = conform_config_get_string(y, k->key);
      FUZZ_CHECK(same, "%s: %s is '%s' vs '%s'", what, k->key, a, b);
    }
  }
  const CfConstraint *c = &x->constraint, *d = &y->constraint;
  FUZZ_CHECK(c->m == d->m && c->n == d->n, "%s: constraint %d x %d vs %d x %d", what, c->m, c->n, d->m, d->n);
  if (c->m > 0) {
    FUZZ_CHECK(memcmp(c->A, d->A, (size_t)c->m * (size_t)c->n * sizeof(double)) == 0, "%s: A differs", what);
    FUZZ_CHECK(memcmp(c->b, d->b, (size_t)c->m * sizeof(double)) == 0, "%s: b differs", what);
  }
  FUZZ_CHECK(g_strcmp0(x->constraint_source, y->constraint_source) == 0, "%s: constraint source '%s' vs '%s'", what,
             x->constraint_source, y->constraint_source);
}

static void
fuzz_keyfile(const uint8_t *data, size_t size)
{
  g_autoptr(GKeyFile) kf = g_key_file_new();
  if (!g_key_file_load_from_data(kf, (const char *)data, size, G_KEY_FILE_NONE, NULL))
    return;
  ConformConfig fresh, cfg;
  conform_config_init(&fresh);
  conform_config_init(&cfg);
  g_autoptr(GError) e = NULL;
  if (!conform_config_from_keyfile(&cfg, kf, "fuzz.ini", &e)) {
    FUZZ_CHECK(e != NULL && e->domain == CONFORM_ERROR && e->code == CONFORM_ERROR_INPUT, "error %s",
               e ? e->message : "(none)");
    FUZZ_CHECK(g_str_has_prefix(e->message, "fuzz.ini: "), "message does not name the file: %s", e->message);
    check_same(&cfg, &fresh, "refused file");
    conform_config_clear(&cfg);
    conform_config_clear(&fresh);
    return;
  }
  FUZZ_CHECK(e == NULL, "error set on success");
  check_config(&cfg);

  /* experiment.ini round trip */
  g_autoptr(GKeyFile) out = conform_config_to_keyfile(&cfg);
  gsize n = 0;
  g_autofree char *text = g_key_file_to_data(out, &n, NULL);
  g_autoptr(GKeyFile) in = g_key_file_new();
  FUZZ_CHECK(g_key_file_load_from_data(in, text, n, G_KEY_FILE_NONE, &e), "written file does not load: %s\n%s",
             e->message, text);
  ConformConfig back;
  conform_config_init(&back);
  FUZZ_CHECK(conform_config_from_keyfile(&back, in, "round trip", &e), "written file refused: %s", e->message);
  check_same(&cfg, &back, "round trip");
  conform_config_clear(&back);

  if (!conform_config_validate(&cfg, &e)) {
    FUZZ_CHECK(e != NULL && e->domain == CONFORM_ERROR && e->code == CONFORM_ERROR_USAGE, "validate: %s",
               e ? e->message : "(no error)");
  } else {
    FUZZ_CHECK(cfg.temb_dim % 2 == 0 && (cfg.image_size == 14 || cfg.image_size == 28) && cfg.lr_min <= cfg.lr,
               "validate accepted temb_dim %d, image_size %d, lr_min %g > lr %g", cfg.temb_dim, cfg.image_size,
               cfg.lr_min, cfg.lr);
  }
  conform_config_clear(&cfg);
  conform_config_clear(&fresh);
}

static void
fuzz_assignment(const char *line)
{
  ConformConfig fresh, cfg;
  conform_config_init(&fresh);
  conform_config_init(&cfg);
  g_autoptr(GError) e = NULL;
  if (!conform_config_set_assignment(&cfg, line, &e)) {
    FUZZ_CHECK(e != NULL && e->domain == CONFORM_ERROR && e->code == CONFORM_ERROR_USAGE, "error %s",
               e ? e->message : "(none)");
    check_same(&cfg, &fresh, "refused assignment");
  } else {
    const char *eq = strchr(line, '=');
    FUZZ_CHECK(eq != NULL && eq != line, "accepted without '='");
    g_autofree char *key = g_strstrip(g_strndup(line, (gsize)(eq - line)));
    const ConformKey *k = conform_config_find_key(key);
    FUZZ_CHECK(k != NULL, "accepted unknown key '%s'", key);
    check_config(&cfg);
    g_autofree char *v = conform_config_get_string(&cfg, key);
    ConformConfig again;
    conform_config_copy(&again, &cfg);
    FUZZ_CHECK(conform_config_set(&again, key, v, &e), "value read back is refused: %s=%s: %s", key, v,
               e->message);
    check_same(&cfg, &again, "set again");
    conform_config_clear(&again);
  }
  conform_config_clear(&cfg);
  conform_config_clear(&fresh);
}

void
cf_fuzz_one(const uint8_t *data, size_t size)
{
  setup();
  if (!data)
    data = (const uint8_t *)"";
  fuzz_keyfile(data, size);
  int lines = 0;
  for (size_t pos = 0; pos <= size && lines < 16; lines++) {
    const uint8_t *nl = memchr(data + pos, '\n', size - pos);
    size_t end = nl ? (size_t)(nl - data) : size;
    g_autofree char *line = g_strndup((const char *)data + pos, end - pos); /* stops at a NUL */
    fuzz_assignment(line);
    pos = end + 1;
  }
}
