/* ConformHistory: the runs of one experiment window, kept as a list of
 * entries: the settings each run used (as applied, live changes included),
 * its latest metrics and a small PNG thumbnail of its samples. Saved with
 * the experiment directory:
 *
 *   history/index.ini       [history] version, entries (ids in order),
 *                           current (the run saved beside it); per entry
 *                           [entry N] created, sampled_strategy, changes
 *   history/NNN/experiment.ini   the entry's settings (its manifest)
 *   history/NNN/metrics.tsv      metric<TAB>value
 *   history/NNN/thumb.png        thumbnail (optional)
 *
 * Every file is written atomically; entries that are no longer in the
 * history are removed after the new index is in place. */
#pragma once

#include <glib-object.h>

#include "conform-config.h"
#include "conform-engine.h"

G_BEGIN_DECLS

/* Latest measurements of a run; NaN (or -1 for counts) when unknown. */
typedef struct {
  long step;              /* training steps done */
  double loss;            /* loss of the latest step */
  double train_seconds;
  long sample_step;       /* step of the latest samples (-1: none yet) */
  long n_samples;
  double violation_median, violation_p99, violation_max, frac_satisfied;
  /* quality metrics come with explicit samples only (previews skip them):
   * the latest finite values and the step they were measured at */
  long quality_step;
  double energy_distance, mmd, fd_classifier, test_ll, class_tv_target, cond_rmse;
} ConformHistoryMetrics;

typedef struct {
  int id;                /* 1, 2, ...: unique within the history; its directory is %03d */
  char *created;         /* ISO 8601 local time the run started */
  ConformConfig config;
  ConformHistoryMetrics metrics;
  char *sampled_strategy; /* strategy of the latest samples ("" before any) */
  char *changes;          /* live changes after step 0, one per line ("" if none) */
  GBytes *thumb_png;      /* NULL: none */
} ConformHistoryEntry;

/* Metric names of metrics.tsv and of the comparison table, in order. */
typedef struct {
  const char *name;   /* metrics.tsv key */
  const char *label;  /* for people */
  gsize offset;       /* into ConformHistoryMetrics; a long when is_long */
  gboolean is_long;
} ConformHistoryMetric;
const ConformHistoryMetric *conform_history_metrics(guint *n);
/* A metric's value as a double (NaN when unknown) and as short text. */
double conform_history_metric_value(const ConformHistoryMetrics *m, const ConformHistoryMetric *d);
char *conform_history_metric_text(const ConformHistoryMetrics *m, const ConformHistoryMetric *d);

void conform_history_metrics_init(ConformHistoryMetrics *m);
/* Updates m from a sample set (violations; quality metrics when finite). */
void conform_history_metrics_update(ConformHistoryMetrics *m, const ConformSampleSet *s);

#define CONFORM_TYPE_HISTORY (conform_history_get_type())
G_DECLARE_FINAL_TYPE(ConformHistory, conform_history, CONFORM, HISTORY, GObject)

ConformHistory *conform_history_new(void);
guint conform_history_get_n(ConformHistory *self);
ConformHistoryEntry *conform_history_get(ConformHistory *self, guint index);
ConformHistoryEntry *conform_history_find(ConformHistory *self, int id);
int conform_history_index_of(ConformHistory *self, int id);
/* A new entry (copy of cfg, created now) at the end. */
ConformHistoryEntry *conform_history_add(ConformHistory *self, const ConformConfig *cfg);
void conform_history_remove(ConformHistory *self, int id);
void conform_history_clear(ConformHistory *self);
/* Replaces the entry's settings, logging the keys that changed as
 * "by step S: key old -> new" lines when step > 0 (S: the step the change
 * was noticed at). Returns TRUE on a change. */
gboolean conform_history_entry_set_config(ConformHistoryEntry *e, const ConformConfig *cfg, long step);
void conform_history_entry_set_thumbnail(ConformHistoryEntry *e, GBytes *png);
/* "#3 simplex-3d · cgauss" */
char *conform_history_entry_title(const ConformHistoryEntry *e);

/* Writes DIR/history (see above); current_id is the entry of the run saved
 * in DIR (0: none). */
gboolean conform_history_save(ConformHistory *self, const char *dir, int current_id, GError **error);
/* Reads DIR/history into a new history. No history directory: an empty
 * history and no error. An unreadable index: NULL and an error naming the
 * file. Unreadable entries are skipped and described in *warnings (NULL
 * when none). *current_id receives the index's current entry (0: none). */
ConformHistory *conform_history_load(const char *dir, int *current_id, char **warnings, GError **error);

G_END_DECLS
