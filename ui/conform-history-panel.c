#define G_LOG_DOMAIN "conform"

#include "conform-history-panel.h"

#include <math.h>
#include <string.h>

#include "conform-manifest.h"

#define REFRESH_MS 500
#define THUMB_EVERY_US (3 * G_USEC_PER_SEC)
#define ROW_THUMB_W 96
#define ROW_THUMB_H 72
#define TABLE_THUMB_W 200
#define TABLE_THUMB_H 150

struct _ConformHistoryPanel {
  GtkBox parent_instance;

  ConformHistory *history;
  ConformRun *run; /* the live run (ref) */
  int live_id;
  gboolean thumb_stale;
  gint64 last_thumb;
  ConformThumbnailFunc thumb_func;
  gpointer thumb_user;
  guint refresh_source, poll_source;
  gboolean syncing_selection;

  GtkWidget *list, *rerun_button, *remove_button, *copy_cmd_button, *copy_manifest_button, *diff_check;
  GtkWidget *table, *table_hint, *command_label, *status_label;
};

G_DEFINE_FINAL_TYPE(ConformHistoryPanel, conform_history_panel, GTK_TYPE_BOX)

enum { SIG_RERUN, N_SIGNALS };
static guint signals[N_SIGNALS];

static void rebuild_list(ConformHistoryPanel *self);
static void rebuild_table(ConformHistoryPanel *self);

/* ---- helpers -------------------------------------------------------------------------- */

static GtkWidget *
thumb_picture(const ConformHistoryEntry *e, int w, int h)
{
  GtkWidget *pic = gtk_picture_new();
  gtk_picture_set_can_shrink(GTK_PICTURE(pic), TRUE);
  gtk_widget_set_size_request(pic, w, h);
  gtk_widget_add_css_class(pic, "history-thumb");
  if (e && e->thumb_png) {
    g_autoptr(GdkTexture) t = gdk_texture_new_from_bytes(e->thumb_png, NULL);
    if (t)
      gtk_picture_set_paintable(GTK_PICTURE(pic), GDK_PAINTABLE(t));
  }
  return pic;
}

static char *
metric_short(const ConformHistoryMetrics *m, const char *name)
{
  guint n;
  const ConformHistoryMetric *d = conform_history_metrics(&n);
  for (guint i = 0; i < n; i++)
    if (g_str_equal(d[i].name, name))
      return conform_history_metric_text(m, &d[i]);
  return g_strdup("–");
}

static char *
entry_summary(const ConformHistoryEntry *e)
{
  const ConformHistoryMetrics *m = &e->metrics;
  g_autofree char *loss = metric_short(m, "loss"), *vmax = metric_short(m, "violation_max"),
                  *ed = metric_short(m, "energy_distance");
  return g_strdup_printf("step %ld of %d · loss %s\nviolation max %s · energy distance %s", m->step, e->config.steps,
                         loss, vmax, ed);
}

static int *
selected_ids(ConformHistoryPanel *self, int *n)
{
  /* in history order (oldest first), whatever the list shows */
  GList *rows = gtk_list_box_get_selected_rows(GTK_LIST_BOX(self->list));
  GArray *ids = g_array_new(FALSE, FALSE, sizeof(int));
  for (guint i = 0; i < conform_history_get_n(self->history); i++) {
    int id = conform_history_get(self->history, i)->id;
    for (GList *l = rows; l; l = l->next)
      if (GPOINTER_TO_INT(g_object_get_data(l->data, "entry-id")) == id)
        g_array_append_val(ids, id);
  }
  g_list_free(rows);
  *n = (int)ids->len;
  return (int *)(void *)g_array_free(ids, FALSE);
}

static ConformHistoryEntry *
single_selected(ConformHistoryPanel *self)
{
  int n;
  g_autofree int *ids = selected_ids(self, &n);
  return n == 1 ? conform_history_find(self->history, ids[0]) : NULL;
}

static void
say(ConformHistoryPanel *self, const char *text)
{
  gtk_label_set_text(GTK_LABEL(self->status_label), text);
}

/* ---- the live run ----------------------------------------------------------------------- */

static void
take_thumbnail(ConformHistoryPanel *self, ConformHistoryEntry *e)
{
  if (!self->thumb_func || !e)
    return;
  g_autoptr(GBytes) png = self->thumb_func(self->thumb_user);
  if (png)
    conform_history_entry_set_thumbnail(e, png);
  self->thumb_stale = FALSE;
  self->last_thumb = g_get_monotonic_time();
}

void
conform_history_panel_flush_thumbnail(ConformHistoryPanel *self)
{
  g_return_if_fail(CONFORM_IS_HISTORY_PANEL(self));
  if (self->thumb_stale)
    take_thumbnail(self, conform_history_find(self->history, self->live_id));
}

/* Settings as applied (live changes logged), step, loss and time. */
static void
sync_live(ConformHistoryPanel *self)
{
  ConformHistoryEntry *e = conform_history_find(self->history, self->live_id);
  if (!e || !self->run || conform_run_get_state(self->run) == CONFORM_RUN_STARTING)
    return;
  long step = conform_run_get_step(self->run);
  conform_history_entry_set_config(e, conform_run_get_config(self->run), step);
  e->metrics.step = step;
  e->metrics.train_seconds = conform_run_get_train_seconds(self->run);
  const GArray *rec = conform_run_get_records(self->run);
  if (rec->len > 0)
    e->metrics.loss = g_array_index(rec, ConformTrainRecord, rec->len - 1).loss;
}

static void
update_row(ConformHistoryPanel *self, const ConformHistoryEntry *e)
{
  for (GtkWidget *row = gtk_widget_get_first_child(self->list); row; row = gtk_widget_get_next_sibling(row)) {
    if (GPOINTER_TO_INT(g_object_get_data(G_OBJECT(row), "entry-id")) != e->id)
      continue;
    g_autofree char *sum = entry_summary(e);
    gtk_label_set_text(GTK_LABEL(g_object_get_data(G_OBJECT(row), "summary")), sum);
    GtkWidget *pic = g_object_get_data(G_OBJECT(row), "picture");
    if (e->thumb_png && g_object_get_data(G_OBJECT(row), "thumb") != (gpointer)e->thumb_png) {
      g_autoptr(GdkTexture) t = gdk_texture_new_from_bytes(e->thumb_png, NULL);
      gtk_picture_set_paintable(GTK_PICTURE(pic), t ? GDK_PAINTABLE(t) : NULL);
      g_object_set_data(G_OBJECT(row), "thumb", (gpointer)e->thumb_png);
    }
  }
}

static gboolean
refresh_cb(gpointer data)
{
  ConformHistoryPanel *self = data;
  self->refresh_source = 0;
  sync_live(self);
  ConformHistoryEntry *e = conform_history_find(self->history, self->live_id);
  if (!e)
    return G_SOURCE_REMOVE;
  update_row(self, e);
  int n;
  g_autofree int *ids = selected_ids(self, &n);
  for (int i = 0; i < n; i++)
    if (ids[i] == self->live_id && gtk_widget_get_mapped(GTK_WIDGET(self)))
      rebuild_table(self);
  return G_SOURCE_REMOVE;
}

static void
schedule_refresh(ConformHistoryPanel *self)
{
  if (!self->refresh_source)
    self->refresh_source = g_timeout_add(REFRESH_MS, refresh_cb, self);
}

/* Settings are compared at every progress and state change and twice a
 * second, so a live change is logged by the step it was made at (later by
 * at most one flush of records when training starts right after it). */
static gboolean
poll_cb(gpointer data)
{
  sync_live(data);
  return G_SOURCE_CONTINUE;
}

static void
run_progress_cb(ConformRun *run, guint first, ConformHistoryPanel *self)
{
  sync_live(self);
  schedule_refresh(self);
}

static void
run_state_cb(ConformRun *run, ConformHistoryPanel *self)
{
  sync_live(self);
  schedule_refresh(self);
}

static void
run_samples_cb(ConformRun *run, gpointer data, ConformHistoryPanel *self)
{
  ConformHistoryEntry *e = conform_history_find(self->history, self->live_id);
  if (!e)
    return;
  const ConformSampleSet *s = data;
  conform_history_metrics_update(&e->metrics, s);
  g_free(e->sampled_strategy);
  e->sampled_strategy = g_strdup(s->strategy ? s->strategy : "");
  /* a thumbnail every few seconds while previews stream in, and of every
   * full sample set (the quality metrics come with those) */
  self->thumb_stale = TRUE;
  if (isfinite(s->summary.energy_distance) || g_get_monotonic_time() - self->last_thumb >= THUMB_EVERY_US)
    take_thumbnail(self, e);
  schedule_refresh(self);
}

static void
stop_tracking(ConformHistoryPanel *self)
{
  if (self->poll_source) {
    g_source_remove(self->poll_source);
    self->poll_source = 0;
  }
  if (self->run) {
    sync_live(self);
    g_signal_handlers_disconnect_by_data(self->run, self);
    g_clear_object(&self->run);
  }
}

static void
follow(ConformHistoryPanel *self, ConformRun *run, int id)
{
  self->run = g_object_ref(run);
  self->live_id = id;
  self->thumb_stale = FALSE;
  self->last_thumb = 0;
  g_signal_connect_object(run, "progress", G_CALLBACK(run_progress_cb), self, 0);
  g_signal_connect_object(run, "samples", G_CALLBACK(run_samples_cb), self, 0);
  g_signal_connect_object(run, "state-changed", G_CALLBACK(run_state_cb), self, 0);
  self->poll_source = g_timeout_add(REFRESH_MS, poll_cb, self);
  ConformHistoryEntry *e = conform_history_find(self->history, id);
  if (e) {
    conform_history_entry_set_config(e, conform_run_get_config(run), 0);
    e->metrics.step = conform_run_get_step(run);
  }
}

void
conform_history_panel_track_run(ConformHistoryPanel *self, ConformRun *run)
{
  g_return_if_fail(CONFORM_IS_HISTORY_PANEL(self));
  g_return_if_fail(CONFORM_IS_RUN(run));
  conform_history_panel_flush_thumbnail(self);
  stop_tracking(self);
  /* a run replaced before it trained or sampled leaves nothing to keep */
  ConformHistoryEntry *old = conform_history_find(self->history, self->live_id);
  if (old && old->metrics.step == 0 && old->metrics.sample_step < 0)
    conform_history_remove(self->history, old->id);
  ConformHistoryEntry *e = conform_history_add(self->history, conform_run_get_config(run));
  follow(self, run, e->id);
  rebuild_list(self);
}

gboolean
conform_history_panel_load(ConformHistoryPanel *self, const char *dir, ConformRun *run, char **warnings,
                           GError **error)
{
  g_return_val_if_fail(CONFORM_IS_HISTORY_PANEL(self), FALSE);
  *warnings = NULL;
  conform_history_panel_flush_thumbnail(self);
  stop_tracking(self);
  int current = 0;
  ConformHistory *h = conform_history_load(dir, &current, warnings, error);
  gboolean ok = h != NULL;
  g_clear_object(&self->history);
  self->history = h ? h : conform_history_new();
  if (!current)
    current = conform_history_add(self->history, conform_run_get_config(run))->id;
  follow(self, run, current);
  rebuild_list(self);
  return ok;
}

gboolean
conform_history_panel_save(ConformHistoryPanel *self, const char *dir, GError **error)
{
  g_return_val_if_fail(CONFORM_IS_HISTORY_PANEL(self), FALSE);
  sync_live(self);
  conform_history_panel_flush_thumbnail(self);
  return conform_history_save(self->history, dir, self->live_id, error);
}

/* ---- list ------------------------------------------------------------------------------------ */

static void
row_check_cb(GtkCheckButton *b, GtkListBoxRow *row)
{
  ConformHistoryPanel *self = g_object_get_data(G_OBJECT(row), "panel");
  if (self->syncing_selection)
    return;
  GtkListBox *list = GTK_LIST_BOX(self->list);
  if (gtk_check_button_get_active(b))
    gtk_list_box_select_row(list, row);
  else
    gtk_list_box_unselect_row(list, row);
}

static GtkWidget *
make_row(ConformHistoryPanel *self, const ConformHistoryEntry *e)
{
  GtkWidget *row = gtk_list_box_row_new();
  GtkWidget *box = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 8);
  gtk_widget_set_margin_top(box, 4);
  gtk_widget_set_margin_bottom(box, 4);
  gtk_widget_set_margin_start(box, 4);
  gtk_widget_set_margin_end(box, 4);
  GtkWidget *check = gtk_check_button_new();
  gtk_widget_set_valign(check, GTK_ALIGN_CENTER);
  gtk_widget_set_tooltip_text(check, "Select to compare (Ctrl+click a row does the same)");
  g_signal_connect(check, "toggled", G_CALLBACK(row_check_cb), row);
  GtkWidget *pic = thumb_picture(e, ROW_THUMB_W, ROW_THUMB_H);
  GtkWidget *text = gtk_box_new(GTK_ORIENTATION_VERTICAL, 2);
  gtk_widget_set_hexpand(text, TRUE);
  GtkWidget *title = gtk_label_new(NULL);
  g_autofree char *t = conform_history_entry_title(e);
  g_autofree char *tm = g_markup_printf_escaped("<b>%s</b>", t);
  if (e->id == self->live_id) {
    char *live = g_strconcat(tm, "  <small>● live</small>", NULL);
    g_free(tm);
    tm = live;
  }
  gtk_label_set_markup(GTK_LABEL(title), tm);
  gtk_label_set_xalign(GTK_LABEL(title), 0);
  GtkWidget *sum = gtk_label_new(NULL);
  g_autofree char *s = entry_summary(e);
  gtk_label_set_text(GTK_LABEL(sum), s);
  gtk_label_set_xalign(GTK_LABEL(sum), 0);
  gtk_widget_add_css_class(sum, "numeric");
  gtk_widget_add_css_class(sum, "caption");
  GtkWidget *when = gtk_label_new(e->created);
  gtk_label_set_xalign(GTK_LABEL(when), 0);
  gtk_widget_add_css_class(when, "dim-label");
  gtk_widget_add_css_class(when, "caption");
  gtk_box_append(GTK_BOX(text), title);
  gtk_box_append(GTK_BOX(text), sum);
  gtk_box_append(GTK_BOX(text), when);
  gtk_box_append(GTK_BOX(box), check);
  gtk_box_append(GTK_BOX(box), pic);
  gtk_box_append(GTK_BOX(box), text);
  gtk_list_box_row_set_child(GTK_LIST_BOX_ROW(row), box);
  g_object_set_data(G_OBJECT(row), "panel", self);
  g_object_set_data(G_OBJECT(row), "entry-id", GINT_TO_POINTER(e->id));
  g_object_set_data(G_OBJECT(row), "check", check);
  g_object_set_data(G_OBJECT(row), "picture", pic);
  g_object_set_data(G_OBJECT(row), "summary", sum);
  g_object_set_data(G_OBJECT(row), "thumb", (gpointer)e->thumb_png);
  return row;
}

static void
rebuild_list(ConformHistoryPanel *self)
{
  int n;
  g_autofree int *keep = selected_ids(self, &n);
  self->syncing_selection = TRUE;
  GtkWidget *child;
  while ((child = gtk_widget_get_first_child(self->list)))
    gtk_list_box_remove(GTK_LIST_BOX(self->list), child);
  /* newest first */
  for (guint i = conform_history_get_n(self->history); i-- > 0;)
    gtk_list_box_append(GTK_LIST_BOX(self->list), make_row(self, conform_history_get(self->history, i)));
  self->syncing_selection = FALSE;
  if (n > 0)
    conform_history_panel_select(self, keep, n);
  else
    rebuild_table(self);
}

static void
selection_changed_cb(GtkListBox *list, ConformHistoryPanel *self)
{
  self->syncing_selection = TRUE;
  for (GtkWidget *row = gtk_widget_get_first_child(self->list); row; row = gtk_widget_get_next_sibling(row))
    gtk_check_button_set_active(g_object_get_data(G_OBJECT(row), "check"),
                                gtk_list_box_row_is_selected(GTK_LIST_BOX_ROW(row)));
  self->syncing_selection = FALSE;
  rebuild_table(self);
}

/* ---- comparison ------------------------------------------------------------------------------- */

/* A table cell: names (dim) stay on one line, values wrap when long. */
static GtkWidget *
cell(const char *text, gboolean bold, gboolean dim)
{
  GtkWidget *l = gtk_label_new(NULL);
  g_autofree char *m = g_markup_printf_escaped(bold ? "<b>%s</b>" : "%s", text);
  gtk_label_set_markup(GTK_LABEL(l), m);
  gtk_label_set_xalign(GTK_LABEL(l), 0);
  gtk_label_set_selectable(GTK_LABEL(l), TRUE);
  if (!dim) {
    gtk_label_set_wrap(GTK_LABEL(l), TRUE);
    gtk_label_set_wrap_mode(GTK_LABEL(l), PANGO_WRAP_WORD_CHAR);
    gtk_label_set_max_width_chars(GTK_LABEL(l), 36);
  }
  gtk_widget_set_valign(l, GTK_ALIGN_START);
  gtk_widget_add_css_class(l, "numeric");
  if (dim)
    gtk_widget_add_css_class(l, "dim-label");
  return l;
}

static GtkWidget *
heading(const char *text)
{
  GtkWidget *l = gtk_label_new(NULL);
  g_autofree char *m = g_markup_printf_escaped("<b>%s</b>", text);
  gtk_label_set_markup(GTK_LABEL(l), m);
  gtk_label_set_xalign(GTK_LABEL(l), 0);
  gtk_widget_set_margin_top(l, 10);
  gtk_widget_add_css_class(l, "history-heading");
  return l;
}

/* The keys of the settings table for the selected entries. */
static GPtrArray *
compared_keys(ConformHistoryPanel *self, ConformHistoryEntry **es, int n)
{
  gboolean all = !gtk_check_button_get_active(GTK_CHECK_BUTTON(self->diff_check));
  if (n == 1 && !all)
    return conform_config_changed_keys(&es[0]->config);
  const ConformConfig **cfgs = g_new(const ConformConfig *, MAX(n, 1));
  for (int i = 0; i < n; i++)
    cfgs[i] = &es[i]->config;
  GPtrArray *keys = conform_config_differing_keys(cfgs, n, all);
  g_free(cfgs);
  return keys;
}

static void
rebuild_table(ConformHistoryPanel *self)
{
  GtkWidget *child;
  while ((child = gtk_widget_get_first_child(self->table)))
    gtk_grid_remove(GTK_GRID(self->table), child);
  int n;
  g_autofree int *ids = selected_ids(self, &n);
  gboolean one = n == 1;
  gtk_widget_set_sensitive(self->rerun_button, one);
  gtk_widget_set_sensitive(self->copy_cmd_button, one);
  gtk_widget_set_sensitive(self->copy_manifest_button, one);
  gboolean live_selected = FALSE;
  for (int i = 0; i < n; i++)
    live_selected = live_selected || ids[i] == self->live_id;
  gtk_widget_set_sensitive(self->remove_button, n > 0 && !live_selected);
  if (n == 0) {
    gtk_label_set_text(GTK_LABEL(self->table_hint),
                       "Select a run on the left to see its settings and metrics; select two or more (check boxes "
                       "or Ctrl+click) to compare them side by side.");
    gtk_label_set_text(GTK_LABEL(self->command_label), "");
    return;
  }
  ConformHistoryEntry **es = g_new(ConformHistoryEntry *, MAX(n, 1));
  for (int i = 0; i < n; i++)
    es[i] = conform_history_find(self->history, ids[i]);
  GPtrArray *keys = compared_keys(self, es, n);
  gboolean all = !gtk_check_button_get_active(GTK_CHECK_BUTTON(self->diff_check));
  guint total;
  conform_config_keys(&total);
  g_autofree char *hint = NULL;
  if (one && !all)
    hint = g_strdup_printf("Settings that differ from the defaults of preset %s: %u.", es[0]->config.preset,
                           keys->len);
  else if (!all)
    hint = g_strdup_printf("Settings that differ between the %d runs: %u (of %u settings and the constraint).", n,
                           keys->len, total);
  else
    hint = g_strdup_printf("All %u settings and the constraint; values that differ are bold.", total);
  gtk_label_set_text(GTK_LABEL(self->table_hint), hint);

  GtkGrid *g = GTK_GRID(self->table);
  int row = 0;
  gtk_grid_attach(g, cell("", FALSE, FALSE), 0, row, 1, 1);
  for (int j = 0; j < n; j++) {
    GtkWidget *col = gtk_box_new(GTK_ORIENTATION_VERTICAL, 4);
    gtk_box_append(GTK_BOX(col), thumb_picture(es[j], TABLE_THUMB_W, TABLE_THUMB_H));
    g_autofree char *t = conform_history_entry_title(es[j]);
    gtk_box_append(GTK_BOX(col), cell(t, TRUE, FALSE));
    gtk_grid_attach(g, col, j + 1, row, 1, 1);
  }
  row++;
  gtk_grid_attach(g, heading("Metrics (latest)"), 0, row++, n + 1, 1);
  guint nm;
  const ConformHistoryMetric *md = conform_history_metrics(&nm);
  for (guint k = 0; k < nm; k++) {
    gboolean any = FALSE;
    for (int j = 0; j < n; j++)
      any = any || isfinite(conform_history_metric_value(&es[j]->metrics, &md[k]));
    if (!any)
      continue;
    gtk_grid_attach(g, cell(md[k].label, FALSE, TRUE), 0, row, 1, 1);
    for (int j = 0; j < n; j++) {
      g_autofree char *v = conform_history_metric_text(&es[j]->metrics, &md[k]);
      gtk_grid_attach(g, cell(v, FALSE, FALSE), j + 1, row, 1, 1);
    }
    row++;
  }
  gtk_grid_attach(g, heading(one && !all ? "Settings changed from the preset" : "Settings"), 0, row++, n + 1, 1);
  if (keys->len == 0)
    gtk_grid_attach(g, cell(one ? "none: the preset's defaults" : "none: the same settings", FALSE, TRUE), 0, row++,
                    n + 1, 1);
  for (guint k = 0; k < keys->len; k++) {
    const char *key = keys->pdata[k];
    gtk_grid_attach(g, cell(key, FALSE, TRUE), 0, row, 1, 1);
    g_autofree char *first = conform_config_value_text(&es[0]->config, key, 60);
    gboolean differs = FALSE;
    for (int j = 1; j < n && !differs; j++) {
      g_autofree char *v = conform_config_value_text(&es[j]->config, key, 60);
      differs = g_strcmp0(v, first) != 0;
    }
    for (int j = 0; j < n; j++) {
      g_autofree char *v = conform_config_value_text(&es[j]->config, key, 60);
      gtk_grid_attach(g, cell(v, differs, FALSE), j + 1, row, 1, 1);
    }
    row++;
  }
  gboolean changes = FALSE;
  for (int j = 0; j < n; j++)
    changes = changes || es[j]->changes[0];
  if (changes) {
    gtk_grid_attach(g, heading("Changed during the run"), 0, row++, n + 1, 1);
    gtk_grid_attach(g, cell("live settings", FALSE, TRUE), 0, row, 1, 1);
    for (int j = 0; j < n; j++) {
      g_autofree char *c = g_strchomp(g_strdup(es[j]->changes[0] ? es[j]->changes : "–"));
      gtk_grid_attach(g, cell(c, FALSE, FALSE), j + 1, row, 1, 1);
    }
    row++;
  }
  g_ptr_array_unref(keys);
  if (one) {
    g_autofree char *cmd = conform_reproduction_command(&es[0]->config);
    gtk_label_set_text(GTK_LABEL(self->command_label), g_strchomp(cmd));
  } else {
    gtk_label_set_text(GTK_LABEL(self->command_label), "Select one run to see and copy its reproduction command.");
  }
  g_free(es);
}

/* ---- buttons -------------------------------------------------------------------------------------- */

char *
conform_history_panel_get_command(ConformHistoryPanel *self)
{
  g_return_val_if_fail(CONFORM_IS_HISTORY_PANEL(self), NULL);
  ConformHistoryEntry *e = single_selected(self);
  return e ? conform_reproduction_command(&e->config) : NULL;
}

char *
conform_history_panel_get_manifest(ConformHistoryPanel *self)
{
  g_return_val_if_fail(CONFORM_IS_HISTORY_PANEL(self), NULL);
  ConformHistoryEntry *e = single_selected(self);
  return e ? conform_manifest_text(&e->config) : NULL;
}

void
conform_history_panel_copy_command(ConformHistoryPanel *self)
{
  g_autofree char *cmd = conform_history_panel_get_command(self);
  if (!cmd)
    return;
  gdk_clipboard_set_text(gtk_widget_get_clipboard(GTK_WIDGET(self)), cmd);
  say(self, "Reproduction command copied: paste it into a terminal");
}

void
conform_history_panel_copy_manifest(ConformHistoryPanel *self)
{
  g_autofree char *ini = conform_history_panel_get_manifest(self);
  if (!ini)
    return;
  gdk_clipboard_set_text(gtk_widget_get_clipboard(GTK_WIDGET(self)), ini);
  say(self, "Manifest (experiment.ini) copied");
}

void
conform_history_panel_rerun(ConformHistoryPanel *self)
{
  ConformHistoryEntry *e = single_selected(self);
  if (!e)
    return;
  g_autofree char *msg = g_strdup_printf("Re-running #%d as a new run", e->id);
  say(self, msg);
  g_signal_emit(self, signals[SIG_RERUN], 0, &e->config);
}

static void
remove_cb(GtkButton *b, ConformHistoryPanel *self)
{
  int n;
  g_autofree int *ids = selected_ids(self, &n);
  for (int i = 0; i < n; i++)
    if (ids[i] != self->live_id)
      conform_history_remove(self->history, ids[i]);
  gtk_list_box_unselect_all(GTK_LIST_BOX(self->list));
  rebuild_list(self);
}

/* ---- public ---------------------------------------------------------------------------------------- */

ConformHistory *
conform_history_panel_get_history(ConformHistoryPanel *self)
{
  g_return_val_if_fail(CONFORM_IS_HISTORY_PANEL(self), NULL);
  return self->history;
}

int
conform_history_panel_get_live_id(ConformHistoryPanel *self)
{
  return self->live_id;
}

void
conform_history_panel_select(ConformHistoryPanel *self, const int *ids, int n)
{
  g_return_if_fail(CONFORM_IS_HISTORY_PANEL(self));
  GtkListBox *list = GTK_LIST_BOX(self->list);
  self->syncing_selection = TRUE;
  gtk_list_box_unselect_all(list);
  for (GtkWidget *row = gtk_widget_get_first_child(self->list); row; row = gtk_widget_get_next_sibling(row)) {
    int id = GPOINTER_TO_INT(g_object_get_data(G_OBJECT(row), "entry-id"));
    for (int i = 0; i < n; i++)
      if (ids[i] == id)
        gtk_list_box_select_row(list, GTK_LIST_BOX_ROW(row));
  }
  self->syncing_selection = FALSE;
  selection_changed_cb(list, self);
}

int *
conform_history_panel_get_selected(ConformHistoryPanel *self, int *n)
{
  g_return_val_if_fail(CONFORM_IS_HISTORY_PANEL(self), NULL);
  return selected_ids(self, n);
}

void
conform_history_panel_set_show_all(ConformHistoryPanel *self, gboolean all)
{
  g_return_if_fail(CONFORM_IS_HISTORY_PANEL(self));
  gtk_check_button_set_active(GTK_CHECK_BUTTON(self->diff_check), !all);
}

char **
conform_history_panel_get_compared_keys(ConformHistoryPanel *self)
{
  g_return_val_if_fail(CONFORM_IS_HISTORY_PANEL(self), NULL);
  int n;
  g_autofree int *ids = selected_ids(self, &n);
  GPtrArray *out = g_ptr_array_new();
  if (n > 0) {
    ConformHistoryEntry **es = g_new(ConformHistoryEntry *, MAX(n, 1));
    for (int i = 0; i < n; i++)
      es[i] = conform_history_find(self->history, ids[i]);
    GPtrArray *keys = compared_keys(self, es, n);
    for (guint i = 0; i < keys->len; i++)
      g_ptr_array_add(out, g_strdup(keys->pdata[i]));
    g_ptr_array_unref(keys);
    g_free(es);
  }
  g_ptr_array_add(out, NULL);
  return (char **)g_ptr_array_free(out, FALSE);
}

void
conform_history_panel_set_thumbnail_func(ConformHistoryPanel *self, ConformThumbnailFunc func, gpointer user)
{
  g_return_if_fail(CONFORM_IS_HISTORY_PANEL(self));
  self->thumb_func = func;
  self->thumb_user = user;
}

/* ---- construction ------------------------------------------------------------------------------------ */

static void
diff_toggled_cb(GtkCheckButton *b, ConformHistoryPanel *self)
{
  rebuild_table(self);
}

static void
map_cb(GtkWidget *w, ConformHistoryPanel *self)
{
  /* the live entry's table cells are only refreshed while shown */
  sync_live(self);
  ConformHistoryEntry *e = conform_history_find(self->history, self->live_id);
  if (e)
    update_row(self, e);
  rebuild_table(self);
}

static void
conform_history_panel_dispose(GObject *o)
{
  ConformHistoryPanel *self = CONFORM_HISTORY_PANEL(o);
  if (self->refresh_source) {
    g_source_remove(self->refresh_source);
    self->refresh_source = 0;
  }
  if (self->poll_source) {
    g_source_remove(self->poll_source);
    self->poll_source = 0;
  }
  if (self->run) {
    g_signal_handlers_disconnect_by_data(self->run, self);
    g_clear_object(&self->run);
  }
  /* the list's rows go with the children: no table to rebuild then */
  if (self->list)
    g_signal_handlers_disconnect_by_data(self->list, self);
  G_OBJECT_CLASS(conform_history_panel_parent_class)->dispose(o);
}

static void
conform_history_panel_finalize(GObject *o)
{
  g_clear_object(&CONFORM_HISTORY_PANEL(o)->history);
  G_OBJECT_CLASS(conform_history_panel_parent_class)->finalize(o);
}

static void
conform_history_panel_class_init(ConformHistoryPanelClass *klass)
{
  G_OBJECT_CLASS(klass)->dispose = conform_history_panel_dispose;
  G_OBJECT_CLASS(klass)->finalize = conform_history_panel_finalize;
  signals[SIG_RERUN] = g_signal_new("rerun", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                                    G_TYPE_NONE, 1, G_TYPE_POINTER);
}

static GtkWidget *
button(const char *label, const char *tooltip, GCallback cb, gpointer data)
{
  GtkWidget *b = gtk_button_new_with_mnemonic(label);
  gtk_widget_set_tooltip_text(b, tooltip);
  g_signal_connect_swapped(b, "clicked", cb, data);
  return b;
}

static void
conform_history_panel_init(ConformHistoryPanel *self)
{
  self->history = conform_history_new();
  gtk_orientable_set_orientation(GTK_ORIENTABLE(self), GTK_ORIENTATION_HORIZONTAL);
  gtk_box_set_spacing(GTK_BOX(self), 0);

  /* left: the runs */
  GtkWidget *left = gtk_box_new(GTK_ORIENTATION_VERTICAL, 6);
  gtk_widget_set_size_request(left, 330, -1);
  gtk_widget_set_margin_start(left, 8);
  gtk_widget_set_margin_end(left, 8);
  gtk_widget_set_margin_top(left, 8);
  gtk_widget_set_margin_bottom(left, 8);
  GtkWidget *lhead = gtk_label_new(NULL);
  gtk_label_set_markup(GTK_LABEL(lhead), "<b>Runs in this experiment</b>");
  gtk_label_set_xalign(GTK_LABEL(lhead), 0);
  GtkWidget *lhint = gtk_label_new("Every Reset starts a new run; each keeps its settings, latest metrics and a "
                                   "thumbnail, and is saved with the experiment.");
  gtk_label_set_wrap(GTK_LABEL(lhint), TRUE);
  gtk_label_set_xalign(GTK_LABEL(lhint), 0);
  gtk_widget_add_css_class(lhint, "dim-label");
  self->list = gtk_list_box_new();
  gtk_list_box_set_selection_mode(GTK_LIST_BOX(self->list), GTK_SELECTION_MULTIPLE);
  gtk_widget_add_css_class(self->list, "boxed-list");
  g_signal_connect(self->list, "selected-rows-changed", G_CALLBACK(selection_changed_cb), self);
  GtkWidget *scroll = gtk_scrolled_window_new();
  gtk_scrolled_window_set_policy(GTK_SCROLLED_WINDOW(scroll), GTK_POLICY_NEVER, GTK_POLICY_AUTOMATIC);
  gtk_scrolled_window_set_child(GTK_SCROLLED_WINDOW(scroll), self->list);
  gtk_widget_set_vexpand(scroll, TRUE);
  GtkWidget *lbuttons = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 6);
  self->rerun_button = button("_Re-run", "Reset the window with this run's settings (a new run)",
                              G_CALLBACK(conform_history_panel_rerun), self);
  gtk_widget_add_css_class(self->rerun_button, "suggested-action");
  self->remove_button = button("Re_move", "Remove the selected runs from the history (not the live one)",
                               G_CALLBACK(remove_cb), self);
  gtk_box_append(GTK_BOX(lbuttons), self->rerun_button);
  gtk_box_append(GTK_BOX(lbuttons), self->remove_button);
  gtk_box_append(GTK_BOX(left), lhead);
  gtk_box_append(GTK_BOX(left), lhint);
  gtk_box_append(GTK_BOX(left), scroll);
  gtk_box_append(GTK_BOX(left), lbuttons);

  /* right: the comparison */
  GtkWidget *right = gtk_box_new(GTK_ORIENTATION_VERTICAL, 6);
  gtk_widget_set_hexpand(right, TRUE);
  gtk_widget_set_margin_start(right, 8);
  gtk_widget_set_margin_end(right, 8);
  gtk_widget_set_margin_top(right, 8);
  gtk_widget_set_margin_bottom(right, 8);
  GtkWidget *tools = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 6);
  GtkWidget *rhead = gtk_label_new(NULL);
  gtk_label_set_markup(GTK_LABEL(rhead), "<b>Compare</b>");
  gtk_label_set_xalign(GTK_LABEL(rhead), 0);
  gtk_widget_set_hexpand(rhead, TRUE);
  self->diff_check = gtk_check_button_new_with_mnemonic("_Differences only");
  gtk_check_button_set_active(GTK_CHECK_BUTTON(self->diff_check), TRUE);
  gtk_widget_set_tooltip_text(self->diff_check,
                              "Show only the settings whose values differ between the selected runs (one run: "
                              "those that differ from its preset's defaults); off: every setting");
  g_signal_connect(self->diff_check, "toggled", G_CALLBACK(diff_toggled_cb), self);
  self->copy_cmd_button = button("Copy _Command", "Copy the `conform train ...` command that reproduces this run",
                                 G_CALLBACK(conform_history_panel_copy_command), self);
  self->copy_manifest_button = button("Copy _Manifest", "Copy this run's experiment.ini (every setting, seed, A, b)",
                                      G_CALLBACK(conform_history_panel_copy_manifest), self);
  gtk_box_append(GTK_BOX(tools), rhead);
  gtk_box_append(GTK_BOX(tools), self->diff_check);
  gtk_box_append(GTK_BOX(tools), self->copy_cmd_button);
  gtk_box_append(GTK_BOX(tools), self->copy_manifest_button);
  self->table_hint = gtk_label_new(NULL);
  gtk_label_set_wrap(GTK_LABEL(self->table_hint), TRUE);
  gtk_label_set_xalign(GTK_LABEL(self->table_hint), 0);
  gtk_widget_add_css_class(self->table_hint, "dim-label");
  self->table = gtk_grid_new();
  gtk_grid_set_column_spacing(GTK_GRID(self->table), 18);
  gtk_grid_set_row_spacing(GTK_GRID(self->table), 3);
  GtkWidget *tscroll = gtk_scrolled_window_new();
  gtk_scrolled_window_set_child(GTK_SCROLLED_WINDOW(tscroll), self->table);
  gtk_widget_set_vexpand(tscroll, TRUE);
  GtkWidget *chead = gtk_label_new(NULL);
  gtk_label_set_markup(GTK_LABEL(chead), "<b>Reproduction command</b>");
  gtk_label_set_xalign(GTK_LABEL(chead), 0);
  self->command_label = gtk_label_new(NULL);
  gtk_label_set_selectable(GTK_LABEL(self->command_label), TRUE);
  gtk_label_set_wrap(GTK_LABEL(self->command_label), TRUE);
  gtk_label_set_wrap_mode(GTK_LABEL(self->command_label), PANGO_WRAP_WORD_CHAR);
  gtk_label_set_xalign(GTK_LABEL(self->command_label), 0);
  gtk_widget_add_css_class(self->command_label, "monospace");
  gtk_widget_add_css_class(self->command_label, "history-command");
  self->status_label = gtk_label_new("");
  gtk_label_set_xalign(GTK_LABEL(self->status_label), 0);
  gtk_widget_add_css_class(self->status_label, "dim-label");
  gtk_box_append(GTK_BOX(right), tools);
  gtk_box_append(GTK_BOX(right), self->table_hint);
  gtk_box_append(GTK_BOX(right), tscroll);
  gtk_box_append(GTK_BOX(right), chead);
  gtk_box_append(GTK_BOX(right), self->command_label);
  gtk_box_append(GTK_BOX(right), self->status_label);

  gtk_box_append(GTK_BOX(self), left);
  gtk_box_append(GTK_BOX(self), gtk_separator_new(GTK_ORIENTATION_VERTICAL));
  gtk_box_append(GTK_BOX(self), right);
  g_signal_connect(self, "map", G_CALLBACK(map_cb), self);
  rebuild_table(self);
}

GtkWidget *
conform_history_panel_new(void)
{
  return g_object_new(CONFORM_TYPE_HISTORY_PANEL, NULL);
}
