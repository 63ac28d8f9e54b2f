#define G_LOG_DOMAIN "conform"

#include "conform-manifest.h"

#include <string.h>

#include "conform-image-data.h"
#include "conform-presets.h"

void
conform_config_preset_base(const ConformConfig *cfg, ConformConfig *base)
{
  conform_config_init(base);
  if (cfg->preset && conform_preset_find(cfg->preset))
    conform_config_apply_preset(base, cfg->preset, NULL);
}

static gboolean
constraints_equal(const CfConstraint *a, const CfConstraint *b)
{
  if (a->m != b->m)
    return FALSE;
  if (a->m == 0)
    return TRUE;
  return a->n == b->n && memcmp(a->A, b->A, sizeof(double) * (gsize)a->m * (gsize)a->n) == 0 &&
         memcmp(a->b, b->b, sizeof(double) * (gsize)a->m) == 0;
}

gboolean
conform_config_constraint_is_preset(const ConformConfig *cfg)
{
  /* The engine rebuilds a preset's image constraint for data.image_size
   * and keeps the preset's name as its source. */
  if (cfg->constraint.m > 0 && conform_image_source_is(cfg->data) && cfg->preset && cfg->preset[0] &&
      g_strcmp0(cfg->constraint_source, cfg->preset) == 0)
    return TRUE;
  ConformConfig base;
  conform_config_preset_base(cfg, &base);
  gboolean same = constraints_equal(&cfg->constraint, &base.constraint);
  conform_config_clear(&base);
  return same;
}

static gboolean
key_differs(const ConformConfig *a, const ConformConfig *b, const char *key)
{
  g_autofree char *va = conform_config_get_string(a, key);
  g_autofree char *vb = conform_config_get_string(b, key);
  return g_strcmp0(va, vb) != 0;
}

GPtrArray *
conform_config_changed_keys(const ConformConfig *cfg)
{
  GPtrArray *out = g_ptr_array_new();
  ConformConfig base;
  conform_config_preset_base(cfg, &base);
  guint nk;
  const ConformKey *keys = conform_config_keys(&nk);
  for (guint i = 0; i < nk; i++)
    if (!g_str_equal(keys[i].key, "experiment.preset") && key_differs(cfg, &base, keys[i].key))
      g_ptr_array_add(out, (gpointer)keys[i].key);
  conform_config_clear(&base);
  if (!conform_config_constraint_is_preset(cfg))
    g_ptr_array_add(out, (gpointer)CONFORM_MANIFEST_CONSTRAINT);
  return out;
}

GPtrArray *
conform_config_differing_keys(const ConformConfig *const *cfgs, int n, gboolean all)
{
  GPtrArray *out = g_ptr_array_new();
  guint nk;
  const ConformKey *keys = conform_config_keys(&nk);
  for (guint i = 0; i < nk; i++) {
    gboolean differs = FALSE;
    for (int j = 1; j < n && !differs; j++)
      differs = key_differs(cfgs[0], cfgs[j], keys[i].key);
    if (all || differs)
      g_ptr_array_add(out, (gpointer)keys[i].key);
  }
  gboolean differs = FALSE;
  for (int j = 1; j < n && !differs; j++)
    differs = !constraints_equal(&cfgs[0]->constraint, &cfgs[j]->constraint);
  if (all || differs)
    g_ptr_array_add(out, (gpointer)CONFORM_MANIFEST_CONSTRAINT);
  return out;
}

/* The shortest decimal that reads back as the same double. */
static char *
shortest_double(const char *text)
{
  double v = g_ascii_strtod(text, NULL);
  char buf[G_ASCII_DTOSTR_BUF_SIZE];
  for (int digits = 1; digits <= 17; digits++) {
    char fmt[8];
    g_snprintf(fmt, sizeof fmt, "%%.%dg", digits);
    g_ascii_formatd(buf, sizeof buf, fmt, v);
    if (g_ascii_strtod(buf, NULL) == v)
      return g_strdup(buf);
  }
  return g_strdup(text);
}

char *
conform_config_value_text(const ConformConfig *cfg, const char *key, int max_chars)
{
  if (g_strcmp0(key, CONFORM_MANIFEST_CONSTRAINT) != 0) {
    char *v = conform_config_get_string(cfg, key);
    const ConformKey *k = conform_config_find_key(key);
    if (k && k->type == CONFORM_KEY_DOUBLE) {
      char *s = shortest_double(v);
      g_free(v);
      return s;
    }
    return v;
  }
  const CfConstraint *c = &cfg->constraint;
  if (c->m == 0)
    return g_strdup("none");
  GString *s = g_string_new(NULL);
  char buf[G_ASCII_DTOSTR_BUF_SIZE];
  for (int i = 0; i < c->m; i++) {
    if (i)
      g_string_append(s, "; ");
    for (int j = 0; j < c->n; j++)
      g_string_append_printf(s, "%s ", g_ascii_formatd(buf, sizeof buf, "%g", c->A[(gsize)i * c->n + j]));
    g_string_append_printf(s, "| %s", g_ascii_formatd(buf, sizeof buf, "%g", c->b[i]));
    if (max_chars > 0 && (int)s->len > max_chars)
      break;
  }
  if (max_chars > 0 && (int)s->len > max_chars) {
    g_string_truncate(s, (gsize)MAX(max_chars - 1, 0));
    g_string_append(s, "…");
  }
  g_string_append_printf(s, " (%d × %d)", c->m, c->n);
  return g_string_free(s, FALSE);
}

gboolean
conform_config_equal(const ConformConfig *a, const ConformConfig *b, const char **first_diff)
{
  guint nk;
  const ConformKey *keys = conform_config_keys(&nk);
  for (guint i = 0; i < nk; i++)
    if (key_differs(a, b, keys[i].key)) {
      if (first_diff)
        *first_diff = keys[i].key;
      return FALSE;
    }
  if (!constraints_equal(&a->constraint, &b->constraint)) {
    if (first_diff)
      *first_diff = CONFORM_MANIFEST_CONSTRAINT;
    return FALSE;
  }
  return TRUE;
}

/* Quotes a shell word only when it needs it. */
static void
append_word(GString *s, const char *word)
{
  gboolean plain = word[0] != '\0';
  for (const char *p = word; *p && plain; p++)
    plain = g_ascii_isalnum(*p) || strchr("_-.,:/+=@%^", *p) != NULL;
  g_string_append_c(s, ' ');
  if (plain) {
    g_string_append(s, word);
  } else {
    g_autofree char *q = g_shell_quote(word);
    g_string_append(s, q);
  }
}

char *
conform_reproduction_command(const ConformConfig *cfg)
{
  GString *s = g_string_new("conform train");
  if (cfg->preset && conform_preset_find(cfg->preset)) {
    g_string_append(s, " --preset");
    append_word(s, cfg->preset);
  }
  g_string_append(s, " --strategy");
  append_word(s, cfg->strategy);
  /* --seed takes a signed 64-bit number; larger seeds go through --set */
  gboolean seed_option = cfg->seed <= (guint64)G_MAXINT64;
  if (seed_option)
    g_string_append_printf(s, " --seed %" G_GUINT64_FORMAT, cfg->seed);
  g_string_append_printf(s, " --steps %d", cfg->steps);
  /* `conform train` applies the preset, --constraint, --strategy, --steps
   * and --seed, then every --set in order. */
  g_autoptr(GPtrArray) changed = conform_config_changed_keys(cfg);
  gboolean constraint = FALSE;
  for (guint i = 0; i < changed->len; i++) {
    const char *key = changed->pdata[i];
    if (g_str_equal(key, CONFORM_MANIFEST_CONSTRAINT)) {
      constraint = TRUE;
      continue;
    }
    if (g_str_equal(key, "experiment.strategy") || (seed_option && g_str_equal(key, "experiment.seed")) ||
        g_str_equal(key, "train.steps"))
      continue;
    g_autofree char *v = conform_config_value_text(cfg, key, 0);
    g_autofree char *assignment = g_strdup_printf("%s=%s", key, v);
    g_string_append(s, " --set");
    append_word(s, assignment);
  }
  if (constraint) {
    if (cfg->constraint.m == 0) {
      /* A preset's constraint removed: there is no option for "none"; the
       * closest command keeps the preset's (says so on its own line). */
      g_string_append(s, "\n# note: this run had no constraint; `conform train` keeps the preset's");
    } else {
      char *text = cf_constraint_to_text(&cfg->constraint);
      g_string_append_printf(s, " --constraint /dev/stdin <<'EOF'\n%sEOF", text);
      free(text);
    }
  }
  g_string_append_c(s, '\n');
  return g_string_free(s, FALSE);
}

char *
conform_manifest_text(const ConformConfig *cfg)
{
  g_autoptr(GKeyFile) kf = conform_config_to_keyfile(cfg);
  return g_key_file_to_data(kf, NULL, NULL);
}
