#define G_LOG_DOMAIN "conform"

#include "conform-history.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "conform-io.h"
#include "conform-manifest.h"

#define HISTORY_VERSION 1
#define THUMB_MAX_BYTES (8u << 20)
#define SMALL_FILE_MAX (16u << 20)

/* ---- metrics ------------------------------------------------------------------- */

#define M_OFF(f) offsetof(ConformHistoryMetrics, f)

static const ConformHistoryMetric metric_table[] = {
  {"step", "training steps", M_OFF(step), TRUE},
  {"loss", "loss (latest step)", M_OFF(loss), FALSE},
  {"train_seconds", "training time (s)", M_OFF(train_seconds), FALSE},
  {"sample_step", "samples at step", M_OFF(sample_step), TRUE},
  {"n_samples", "samples", M_OFF(n_samples), TRUE},
  {"violation_median", "violation median", M_OFF(violation_median), FALSE},
  {"violation_p99", "violation p99", M_OFF(violation_p99), FALSE},
  {"violation_max", "violation max", M_OFF(violation_max), FALSE},
  {"frac_satisfied", "fraction within tolerance", M_OFF(frac_satisfied), FALSE},
  {"quality_step", "quality measured at step", M_OFF(quality_step), TRUE},
  {"energy_distance", "energy distance", M_OFF(energy_distance), FALSE},
  {"mmd", "MMD²", M_OFF(mmd), FALSE},
  {"fd_classifier", "FD (classifier features)", M_OFF(fd_classifier), FALSE},
  {"test_ll", "test log-likelihood", M_OFF(test_ll), FALSE},
  {"class_tv_target", "class TV to target", M_OFF(class_tv_target), FALSE},
  {"cond_rmse", "conditional RMSE", M_OFF(cond_rmse), FALSE},
};

const ConformHistoryMetric *
conform_history_metrics(guint *n)
{
  *n = G_N_ELEMENTS(metric_table);
  return metric_table;
}

double
conform_history_metric_value(const ConformHistoryMetrics *m, const ConformHistoryMetric *d)
{
  const char *p = (const char *)m + d->offset;
  if (d->is_long) {
    long v = *(const long *)p;
    return v < 0 ? NAN : (double)v;
  }
  return *(const double *)p;
}

char *
conform_history_metric_text(const ConformHistoryMetrics *m, const ConformHistoryMetric *d)
{
  double v = conform_history_metric_value(m, d);
  if (!isfinite(v))
    return g_strdup("–");
  if (d->is_long)
    return g_strdup_printf("%.0f", v);
  char buf[G_ASCII_DTOSTR_BUF_SIZE];
  return g_strdup(g_ascii_formatd(buf, sizeof buf, "%.3g", v));
}

void
conform_history_metrics_init(ConformHistoryMetrics *m)
{
  for (guint i = 0; i < G_N_ELEMENTS(metric_table); i++) {
    char *p = (char *)m + metric_table[i].offset;
    if (metric_table[i].is_long)
      *(long *)p = -1;
    else
      *(double *)p = NAN;
  }
  m->step = 0;
}

void
conform_history_metrics_update(ConformHistoryMetrics *m, const ConformSampleSet *s)
{
  const ConformSummary *su = &s->summary;
  m->sample_step = s->step;
  m->n_samples = s->n;
  gboolean c = su->has_constraint;
  m->violation_median = c ? su->viol.median : NAN;
  m->violation_p99 = c ? su->viol.p99 : NAN;
  m->violation_max = c ? su->viol.max : NAN;
  m->frac_satisfied = c ? su->viol.frac_satisfied : NAN;
  /* previews leave the quality metrics NaN: keep the latest measured ones */
  gboolean quality = FALSE;
  const struct {
    double *dst;
    double v;
  } q[] = {
    {&m->energy_distance, su->energy_distance}, {&m->mmd, su->mmd},
    {&m->fd_classifier, su->has_classes ? su->fd_classifier : NAN},
    {&m->test_ll, su->has_vae ? su->test_ll : NAN},
    {&m->class_tv_target, su->n_classes > 0 ? su->class_tv_target : NAN},
    {&m->cond_rmse, su->cond_rmse},
  };
  for (guint i = 0; i < G_N_ELEMENTS(q); i++)
    quality = quality || isfinite(q[i].v);
  if (quality) {
    for (guint i = 0; i < G_N_ELEMENTS(q); i++)
      *q[i].dst = q[i].v;
    m->quality_step = s->step;
  }
}

static GString *
metrics_to_tsv(const ConformHistoryMetrics *m)
{
  GString *s = g_string_new("metric\tvalue\n");
  char buf[G_ASCII_DTOSTR_BUF_SIZE];
  for (guint i = 0; i < G_N_ELEMENTS(metric_table); i++) {
    const ConformHistoryMetric *d = &metric_table[i];
    const char *p = (const char *)m + d->offset;
    if (d->is_long)
      g_string_append_printf(s, "%s\t%ld\n", d->name, *(const long *)p);
    else
      g_string_append_printf(s, "%s\t%s\n", d->name,
                             isfinite(*(const double *)p) ? g_ascii_dtostr(buf, sizeof buf, *(const double *)p)
                                                          : "nan");
  }
  return s;
}

static gboolean
metrics_from_tsv(ConformHistoryMetrics *m, const char *text, const char *origin, GError **error)
{
  conform_history_metrics_init(m);
  g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
  for (int i = 0; lines[i]; i++) {
    char *line = g_strstrip(lines[i]);
    if (line[0] == '\0' || (i == 0 && g_str_has_prefix(line, "metric\t")))
      continue;
    char *tab = strchr(line, '\t');
    if (!tab) {
      g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_INPUT, "%s:%d: expected metric<TAB>value", origin, i + 1);
      return FALSE;
    }
    *tab = '\0';
    const char *name = line, *value = tab + 1;
    for (guint k = 0; k < G_N_ELEMENTS(metric_table); k++) {
      if (!g_str_equal(metric_table[k].name, name))
        continue;
      char *end = NULL;
      double v = g_ascii_strtod(value, &end);
      if (end == value || *end != '\0') {
        g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_INPUT, "%s:%d: %s: '%s' is not a number", origin, i + 1,
                    name, value);
        return FALSE;
      }
      char *p = (char *)m + metric_table[k].offset;
      if (metric_table[k].is_long)
        *(long *)p = isfinite(v) ? (long)v : -1;
      else
        *(double *)p = v;
    }
    /* unknown names: written by a newer version, ignored */
  }
  return TRUE;
}

/* ---- entries --------------------------------------------------------------------- */

static void
entry_free(gpointer data)
{
  ConformHistoryEntry *e = data;
  g_free(e->created);
  conform_config_clear(&e->config);
  g_free(e->sampled_strategy);
  g_free(e->changes);
  if (e->thumb_png)
    g_bytes_unref(e->thumb_png);
  g_free(e);
}

static ConformHistoryEntry *
entry_new(int id, const ConformConfig *cfg)
{
  ConformHistoryEntry *e = g_new0(ConformHistoryEntry, 1);
  e->id = id;
  g_autoptr(GDateTime) now = g_date_time_new_now_local();
  e->created = g_date_time_format(now, "%Y-%m-%dT%H:%M:%S");
  if (cfg)
    conform_config_copy(&e->config, cfg);
  else
    conform_config_init(&e->config);
  conform_history_metrics_init(&e->metrics);
  e->sampled_strategy = g_strdup("");
  e->changes = g_strdup("");
  return e;
}

gboolean
conform_history_entry_set_config(ConformHistoryEntry *e, const ConformConfig *cfg, long step)
{
  const char *diff = NULL;
  if (conform_config_equal(&e->config, cfg, &diff))
    return FALSE;
  if (step > 0) {
    GString *log = g_string_new(e->changes);
    const ConformConfig *pair[2] = {&e->config, cfg};
    g_autoptr(GPtrArray) keys = conform_config_differing_keys(pair, 2, FALSE);
    for (guint i = 0; i < keys->len; i++) {
      g_autofree char *a = conform_config_value_text(&e->config, keys->pdata[i], 40);
      g_autofree char *b = conform_config_value_text(cfg, keys->pdata[i], 40);
      g_string_append_printf(log, "by step %ld: %s %s → %s\n", step, (const char *)keys->pdata[i], a, b);
    }
    g_free(e->changes);
    e->changes = g_string_free(log, FALSE);
  }
  conform_config_clear(&e->config);
  conform_config_copy(&e->config, cfg);
  return TRUE;
}

void
conform_history_entry_set_thumbnail(ConformHistoryEntry *e, GBytes *png)
{
  if (e->thumb_png)
    g_bytes_unref(e->thumb_png);
  e->thumb_png = png ? g_bytes_ref(png) : NULL;
}

char *
conform_history_entry_title(const ConformHistoryEntry *e)
{
  return g_strdup_printf("#%d %s · %s", e->id, e->config.preset && e->config.preset[0] ? e->config.preset : "custom",
                         e->config.strategy);
}

/* ---- the history ------------------------------------------------------------------ */

struct _ConformHistory {
  GObject parent_instance;
  GPtrArray *entries; /* ConformHistoryEntry */
  int next_id;
};

G_DEFINE_FINAL_TYPE(ConformHistory, conform_history, G_TYPE_OBJECT)

static void
conform_history_finalize(GObject *o)
{
  ConformHistory *self = CONFORM_HISTORY(o);
  g_ptr_array_unref(self->entries);
  G_OBJECT_CLASS(conform_history_parent_class)->finalize(o);
}

static void
conform_history_class_init(ConformHistoryClass *klass)
{
  G_OBJECT_CLASS(klass)->finalize = conform_history_finalize;
}

static void
conform_history_init(ConformHistory *self)
{
  self->entries = g_ptr_array_new_with_free_func(entry_free);
  self->next_id = 1;
}

ConformHistory *
conform_history_new(void)
{
  return g_object_new(CONFORM_TYPE_HISTORY, NULL);
}

guint
conform_history_get_n(ConformHistory *self)
{
  g_return_val_if_fail(CONFORM_IS_HISTORY(self), 0);
  return self->entries->len;
}

ConformHistoryEntry *
conform_history_get(ConformHistory *self, guint index)
{
  g_return_val_if_fail(CONFORM_IS_HISTORY(self), NULL);
  return index < self->entries->len ? self->entries->pdata[index] : NULL;
}

int
conform_history_index_of(ConformHistory *self, int id)
{
  for (guint i = 0; i < self->entries->len; i++)
    if (((ConformHistoryEntry *)self->entries->pdata[i])->id == id)
      return (int)i;
  return -1;
}

ConformHistoryEntry *
conform_history_find(ConformHistory *self, int id)
{
  int i = conform_history_index_of(self, id);
  return i < 0 ? NULL : self->entries->pdata[i];
}

ConformHistoryEntry *
conform_history_add(ConformHistory *self, const ConformConfig *cfg)
{
  g_return_val_if_fail(CONFORM_IS_HISTORY(self), NULL);
  ConformHistoryEntry *e = entry_new(self->next_id++, cfg);
  g_ptr_array_add(self->entries, e);
  return e;
}

void
conform_history_remove(ConformHistory *self, int id)
{
  int i = conform_history_index_of(self, id);
  if (i >= 0)
    g_ptr_array_remove_index(self->entries, (guint)i);
}

void
conform_history_clear(ConformHistory *self)
{
  g_ptr_array_set_size(self->entries, 0);
  self->next_id = 1;
}

/* ---- files ------------------------------------------------------------------------ */

static char *
entry_dir_name(int id)
{
  return g_strdup_printf("%03d", id);
}

/* Removes a directory of plain files (an old history entry). */
static void
remove_flat_dir(const char *path)
{
  GDir *d = g_dir_open(path, 0, NULL);
  if (d) {
    const char *name;
    while ((name = g_dir_read_name(d))) {
      g_autofree char *f = g_build_filename(path, name, NULL);
      g_unlink(f);
    }
    g_dir_close(d);
  }
  g_rmdir(path);
}

gboolean
conform_history_save(ConformHistory *self, const char *dir, int current_id, GError **error)
{
  g_return_val_if_fail(CONFORM_IS_HISTORY(self), FALSE);
  g_autofree char *hdir = g_build_filename(dir, "history", NULL);
  if (!conform_ensure_dir(hdir, error))
    return FALSE;
  g_autoptr(GKeyFile) index = g_key_file_new();
  g_key_file_set_integer(index, "history", "version", HISTORY_VERSION);
  g_key_file_set_comment(index, "history", NULL,
                         " Conform run history: one directory per entry (experiment.ini, metrics.tsv, thumb.png)",
                         NULL);
  g_autoptr(GArray) ids = g_array_new(FALSE, FALSE, sizeof(int));
  for (guint i = 0; i < self->entries->len; i++) {
    ConformHistoryEntry *e = self->entries->pdata[i];
    g_autofree char *name = entry_dir_name(e->id);
    g_autofree char *edir = g_build_filename(hdir, name, NULL);
    if (!conform_ensure_dir(edir, error))
      return FALSE;
    g_autofree char *ini = conform_manifest_text(&e->config);
    g_autofree char *ini_path = g_build_filename(edir, "experiment.ini", NULL);
    g_autoptr(GString) tsv = metrics_to_tsv(&e->metrics);
    g_autofree char *tsv_path = g_build_filename(edir, "metrics.tsv", NULL);
    g_autofree char *png_path = g_build_filename(edir, "thumb.png", NULL);
    if (!conform_write_atomic(ini_path, ini, strlen(ini), error) ||
        !conform_write_atomic(tsv_path, tsv->str, tsv->len, error))
      return FALSE;
    if (e->thumb_png) {
      gsize n;
      const void *png = g_bytes_get_data(e->thumb_png, &n);
      if (!conform_write_atomic(png_path, png, n, error))
        return FALSE;
    } else {
      g_unlink(png_path);
    }
    g_autofree char *group = g_strdup_printf("entry %d", e->id);
    g_key_file_set_string(index, group, "created", e->created);
    g_key_file_set_string(index, group, "sampled_strategy", e->sampled_strategy);
    g_key_file_set_string(index, group, "changes", e->changes);
    g_array_append_val(ids, e->id);
  }
  g_key_file_set_integer_list(index, "history", "entries", (gint *)(void *)ids->data, ids->len);
  g_key_file_set_integer(index, "history", "current", current_id);
  g_autofree char *text = g_key_file_to_data(index, NULL, NULL);
  g_autofree char *index_path = g_build_filename(hdir, "index.ini", NULL);
  if (!conform_write_atomic(index_path, text, strlen(text), error))
    return FALSE;
  /* entries no longer in the history (after the new index is in place) */
  GDir *d = g_dir_open(hdir, 0, NULL);
  if (d) {
    const char *name;
    while ((name = g_dir_read_name(d))) {
      if (strlen(name) < 3 || strspn(name, "0123456789") != strlen(name))
        continue;
      int id = atoi(name);
      gboolean keep = FALSE;
      for (guint i = 0; i < ids->len && !keep; i++)
        keep = g_array_index(ids, int, i) == id;
      if (!keep) {
        g_autofree char *path = g_build_filename(hdir, name, NULL);
        remove_flat_dir(path);
      }
    }
    g_dir_close(d);
  }
  return TRUE;
}

static gboolean
load_entry(ConformHistoryEntry *e, const char *hdir, GKeyFile *index, GString *warnings)
{
  g_autofree char *name = entry_dir_name(e->id);
  g_autofree char *ini_path = g_build_filename(hdir, name, "experiment.ini", NULL);
  g_autofree char *rel = g_build_filename("history", name, NULL);
  g_autoptr(GKeyFile) kf = g_key_file_new();
  g_autoptr(GError) err = NULL;
  char *text = NULL;
  gsize len = 0;
  if (!conform_read_file(ini_path, SMALL_FILE_MAX, &text, &len, &err) ||
      !g_key_file_load_from_data(kf, text, len, G_KEY_FILE_NONE, &err) ||
      !conform_config_from_keyfile(&e->config, kf, ini_path, &err)) {
    g_string_append_printf(warnings, "%s/experiment.ini: %s; run #%d skipped\n", rel, err->message, e->id);
    g_free(text);
    return FALSE;
  }
  g_free(text);
  g_autofree char *tsv_path = g_build_filename(hdir, name, "metrics.tsv", NULL);
  char *tsv = NULL;
  if (!conform_read_file(tsv_path, SMALL_FILE_MAX, &tsv, NULL, &err) ||
      !metrics_from_tsv(&e->metrics, tsv, tsv_path, &err)) {
    g_string_append_printf(warnings, "%s/metrics.tsv: %s; run #%d has no metrics\n", rel, err->message, e->id);
    conform_history_metrics_init(&e->metrics);
    g_clear_error(&err);
  }
  g_free(tsv);
  g_autofree char *png_path = g_build_filename(hdir, name, "thumb.png", NULL);
  if (g_file_test(png_path, G_FILE_TEST_EXISTS)) {
    char *png = NULL;
    gsize n = 0;
    static const guchar sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (conform_read_file(png_path, THUMB_MAX_BYTES, &png, &n, &err) && n > 8 && memcmp(png, sig, 8) == 0) {
      e->thumb_png = g_bytes_new_take(png, n);
    } else {
      g_string_append_printf(warnings, "%s/thumb.png: %s; run #%d has no thumbnail\n", rel,
                             err ? err->message : "not a PNG file", e->id);
      g_free(png);
      g_clear_error(&err);
    }
  }
  g_autofree char *group = g_strdup_printf("entry %d", e->id);
  char *created = g_key_file_get_string(index, group, "created", NULL);
  if (created) {
    g_free(e->created);
    e->created = created;
  }
  char *strategy = g_key_file_get_string(index, group, "sampled_strategy", NULL);
  if (strategy) {
    g_free(e->sampled_strategy);
    e->sampled_strategy = strategy;
  }
  char *changes = g_key_file_get_string(index, group, "changes", NULL);
  if (changes) {
    g_free(e->changes);
    e->changes = changes;
  }
  return TRUE;
}

ConformHistory *
conform_history_load(const char *dir, int *current_id, char **warnings, GError **error)
{
  *current_id = 0;
  *warnings = NULL;
  g_autofree char *hdir = g_build_filename(dir, "history", NULL);
  ConformHistory *self = conform_history_new();
  if (!g_file_test(hdir, G_FILE_TEST_EXISTS))
    return self; /* an experiment saved without history (CLI, older versions) */
  g_autofree char *index_path = g_build_filename(hdir, "index.ini", NULL);
  g_autoptr(GKeyFile) index = g_key_file_new();
  g_autoptr(GError) err = NULL;
  char *text = NULL;
  gsize len = 0;
  gboolean ok = conform_read_file(index_path, SMALL_FILE_MAX, &text, &len, &err) &&
                g_key_file_load_from_data(index, text, len, G_KEY_FILE_NONE, &err);
  g_free(text);
  if (!ok) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_INPUT, "run history %s: %s", index_path, err->message);
    g_object_unref(self);
    return NULL;
  }
  int version = g_key_file_get_integer(index, "history", "version", &err);
  gsize n = 0;
  g_autofree gint *ids = err ? NULL : g_key_file_get_integer_list(index, "history", "entries", &n, &err);
  if (err && !g_error_matches(err, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_KEY_NOT_FOUND)) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_INPUT, "run history %s: %s", index_path, err->message);
    g_object_unref(self);
    return NULL;
  }
  g_clear_error(&err);
  if (version < 1 || version > HISTORY_VERSION) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_INPUT,
                "run history %s: version %d is not one this Conform reads (1 to %d)", index_path, version,
                HISTORY_VERSION);
    g_object_unref(self);
    return NULL;
  }
  GString *warn = g_string_new(NULL);
  int cur = g_key_file_get_integer(index, "history", "current", NULL);
  for (gsize i = 0; i < n; i++) {
    if (ids[i] < 1 || ids[i] > 999999 || conform_history_find(self, ids[i])) {
      g_string_append_printf(warn, "history/index.ini: entry id %d is invalid or repeated; skipped\n", ids[i]);
      continue;
    }
    ConformHistoryEntry *e = entry_new(ids[i], NULL);
    if (load_entry(e, hdir, index, warn)) {
      g_ptr_array_add(self->entries, e);
      self->next_id = MAX(self->next_id, e->id + 1);
    } else {
      entry_free(e);
    }
  }
  if (conform_history_find(self, cur))
    *current_id = cur;
  if (warn->len > 0) {
    g_strchomp(warn->str);
    *warnings = g_string_free(warn, FALSE);
  } else {
    g_string_free(warn, TRUE);
  }
  return self;
}
