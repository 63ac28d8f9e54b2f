/* ConformHistoryPanel: the History tab. Every run of the window is an entry
 * (ConformHistory): its settings, latest metrics and a thumbnail of its
 * samples; the entry of the live run follows it as it trains. Select
 * entries (check boxes, Ctrl+click) to compare them side by side: a metrics
 * table and their settings, differences only or all. One selected entry
 * can be re-run (the "rerun" signal), and its reproduction command
 * (`conform train ...`) or manifest (experiment.ini) copied to the
 * clipboard. */
#pragma once

#include <gtk/gtk.h>

#include "conform-history.h"
#include "conform-run.h"

G_BEGIN_DECLS

#define CONFORM_TYPE_HISTORY_PANEL (conform_history_panel_get_type())
G_DECLARE_FINAL_TYPE(ConformHistoryPanel, conform_history_panel, CONFORM, HISTORY_PANEL, GtkBox)

/* A PNG of what the samples view shows now (NULL: nothing to show). */
typedef GBytes *(*ConformThumbnailFunc)(gpointer user);

GtkWidget *conform_history_panel_new(void);
void conform_history_panel_set_thumbnail_func(ConformHistoryPanel *self, ConformThumbnailFunc func, gpointer user);
/* Takes a thumbnail for the live entry now if its samples changed since
 * the last one (before the samples view moves on to another run). */
void conform_history_panel_flush_thumbnail(ConformHistoryPanel *self);
/* A new entry that follows run (settings, metrics, thumbnails) until the
 * next call. */
void conform_history_panel_track_run(ConformHistoryPanel *self, ConformRun *run);
/* Replaces the history with the one saved in dir, the run saved there
 * following its entry (a new entry when there is none). FALSE with an error
 * when the history could not be read (the history then holds just the run);
 * *warnings lists entries that were skipped (NULL: none). */
gboolean conform_history_panel_load(ConformHistoryPanel *self, const char *dir, ConformRun *run, char **warnings,
                                    GError **error);
gboolean conform_history_panel_save(ConformHistoryPanel *self, const char *dir, GError **error);

ConformHistory *conform_history_panel_get_history(ConformHistoryPanel *self);
int conform_history_panel_get_live_id(ConformHistoryPanel *self);
/* Selection by entry id (ids not in the history are ignored). */
void conform_history_panel_select(ConformHistoryPanel *self, const int *ids, int n);
int *conform_history_panel_get_selected(ConformHistoryPanel *self, int *n); /* g_free */
/* "Differences only" off: every setting in the comparison. */
void conform_history_panel_set_show_all(ConformHistoryPanel *self, gboolean all);
/* Setting keys (and "constraint") in the comparison table, in order. */
char **conform_history_panel_get_compared_keys(ConformHistoryPanel *self);
/* Of the one selected entry (NULL otherwise). */
char *conform_history_panel_get_command(ConformHistoryPanel *self);
char *conform_history_panel_get_manifest(ConformHistoryPanel *self);
void conform_history_panel_copy_command(ConformHistoryPanel *self);
void conform_history_panel_copy_manifest(ConformHistoryPanel *self);
/* Emits "rerun" (gpointer: the entry's const ConformConfig *) for the one
 * selected entry. */
void conform_history_panel_rerun(ConformHistoryPanel *self);

G_END_DECLS
