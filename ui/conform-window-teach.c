/* ConformWindow: the run history (History tab) and lessons (a panel beside
 * the views): their actions, menu entries, visibility of controls, and the
 * hooks conform-window.c and conform-window-files.c call. */
#define G_LOG_DOMAIN "conform"

#include "conform-window-teach.h"

#include <string.h>

#include "conform-classifier.h"
#include "conform-history-panel.h"
#include "conform-image-grid.h"
#include "conform-io.h"
#include "conform-lesson-panel.h"
#include "conform-palette.h"
#include "conform-scatter.h"
#include "conform-window-private.h"

#define THUMB_W 320
#define THUMB_H 240

/* ---- thumbnails ------------------------------------------------------------------------ */

static cairo_status_t
png_write_cb(void *closure, const unsigned char *data, unsigned int len)
{
  g_byte_array_append(closure, data, len);
  return CAIRO_STATUS_SUCCESS;
}

/* The samples view drawn at one size for every run (so thumbnails compare
 * side by side), scaled down. */
static GBytes *
thumbnail_cb(gpointer user)
{
  ConformWindow *self = user;
  if (!self->run || !conform_run_get_samples(self->run))
    return NULL;
  gboolean images = self->image_size > 0 && conform_image_grid_get_n_images(CONFORM_IMAGE_GRID(self->image_grid)) > 0;
  GtkWidget *view = images ? self->image_grid : self->scatter;
  const int w = 2 * THUMB_W, h = 2 * THUMB_H;
  gboolean dark = conform_palette_is_dark(view);
  cairo_surface_t *full = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, w, h);
  cairo_t *cr = cairo_create(full);
  if (dark)
    cairo_set_source_rgb(cr, 0.14, 0.14, 0.14);
  else
    cairo_set_source_rgb(cr, 1, 1, 1);
  cairo_paint(cr);
  if (images)
    conform_image_grid_draw(CONFORM_IMAGE_GRID(view), cr, w, h);
  else
    conform_scatter_draw(CONFORM_SCATTER(view), cr, w, h);
  cairo_destroy(cr);
  double k = MIN(1.0, MIN((double)THUMB_W / w, (double)THUMB_H / h));
  int tw = MAX(1, (int)(w * k)), th = MAX(1, (int)(h * k));
  cairo_surface_t *thumb = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, tw, th);
  cr = cairo_create(thumb);
  cairo_scale(cr, k, k);
  cairo_set_source_surface(cr, full, 0, 0);
  cairo_pattern_set_filter(cairo_get_source(cr), CAIRO_FILTER_GOOD);
  cairo_paint(cr);
  cairo_destroy(cr);
  cairo_surface_destroy(full);
  GByteArray *png = g_byte_array_new();
  cairo_status_t st = cairo_surface_write_to_png_stream(thumb, png_write_cb, png);
  cairo_surface_destroy(thumb);
  if (st != CAIRO_STATUS_SUCCESS) {
    g_byte_array_unref(png);
    return NULL;
  }
  return g_byte_array_free_to_bytes(png);
}

/* ---- history hooks ----------------------------------------------------------------------- */

static void
rerun_cb(ConformHistoryPanel *panel, gpointer cfg, ConformWindow *self)
{
  conform_window_reset_with(self, cfg);
}

static gboolean
deferred_error_cb(gpointer data)
{
  ConformWindow *self = g_object_get_data(G_OBJECT(data), "window");
  conform_window_show_message_(self, g_object_get_data(G_OBJECT(data), "text"), TRUE);
  return G_SOURCE_REMOVE;
}

/* After attach_run has said "experiment opened". */
static void
show_error_later(ConformWindow *self, const char *text)
{
  GObject *holder = g_object_new(G_TYPE_OBJECT, NULL);
  g_object_set_data_full(holder, "window", g_object_ref(self), g_object_unref);
  g_object_set_data_full(holder, "text", g_strdup(text), g_free);
  g_idle_add_full(G_PRIORITY_DEFAULT_IDLE, deferred_error_cb, holder, g_object_unref);
}

void
conform_window_teach_run_attached_(ConformWindow *self, ConformRun *run)
{
  ConformHistoryPanel *hp = CONFORM_HISTORY_PANEL(self->history_panel);
  if (!(self->incoming_is_open && self->experiment_dir)) {
    conform_history_panel_track_run(hp, run);
    return;
  }
  g_autofree char *warnings = NULL;
  g_autoptr(GError) error = NULL;
  if (!conform_history_panel_load(hp, self->experiment_dir, run, &warnings, &error)) {
    g_autofree char *msg = g_strdup_printf("%s; the experiment opened without its earlier runs", error->message);
    show_error_later(self, msg);
  } else if (warnings) {
    g_autofree char *msg = g_strdup_printf("run history: %s", warnings);
    show_error_later(self, msg);
  }
}

void
conform_window_teach_saved_(ConformWindow *self, const char *dir)
{
  g_autoptr(GError) error = NULL;
  if (!conform_history_panel_save(CONFORM_HISTORY_PANEL(self->history_panel), dir, &error))
    conform_window_error_dialog_(self, "The experiment was saved, but not its run history", error->message);
}

/* ---- visibility -------------------------------------------------------------------------- */

/* The containers a lesson shows or hides, by view name. */
static GtkWidget *
view_widget(ConformWindow *self, const char *name)
{
  GtkNotebook *nb = GTK_NOTEBOOK(self->notebook);
  if (g_str_equal(name, "samples")) /* the samples column (with the class shares) */
    return gtk_widget_get_parent(gtk_widget_get_parent(self->samples_stack));
  if (g_str_equal(name, "histogram"))
    return gtk_widget_get_parent(self->histogram);
  if (g_str_equal(name, "curves"))
    return gtk_widget_get_parent(gtk_widget_get_parent(self->loss));
  if (g_str_equal(name, "trajectory"))
    return gtk_notebook_get_nth_page(nb, 1);
  if (g_str_equal(name, "constraint"))
    return gtk_notebook_get_nth_page(nb, 2);
  if (g_str_equal(name, "compare"))
    return gtk_notebook_get_nth_page(nb, self->compare_page);
  if (g_str_equal(name, "history"))
    return gtk_notebook_get_nth_page(nb, self->history_page);
  if (g_str_equal(name, "preset"))
    return self->preset_dropdown;
  if (g_str_equal(name, "strategy"))
    return self->strategy_dropdown;
  return NULL;
}

/* The label beside a sidebar setting's widget. */
static GtkWidget *
setting_label(GtkWidget *w)
{
  GtkWidget *grid = gtk_widget_get_parent(w);
  if (!GTK_IS_GRID(grid))
    return NULL;
  int col, row;
  gtk_grid_query_child(GTK_GRID(grid), w, &col, &row, NULL, NULL);
  return gtk_grid_get_child_at(GTK_GRID(grid), 0, row);
}

/* During a lesson the sidebar is wider and the lesson takes most of its
 * height; closing it gives the settings their space back. */
#define LESSON_SIDEBAR_WIDTH 370

/* once the split has its height: three quarters for the lesson (set from an
 * idle: changing the position while the paned allocates leaves the
 * settings unmapped) */
static gboolean
sidebar_split_idle(gpointer data)
{
  GtkPaned *split = data;
  int max = 0;
  g_object_get(split, "max-position", &max, NULL);
  /* (max-position is G_MAXINT until the paned has a size) */
  if (gtk_widget_get_mapped(GTK_WIDGET(split)) && max > 100 && max < 100000) {
    gtk_paned_set_position(split, max / 4 * 3);
    g_signal_handlers_disconnect_matched(split, G_SIGNAL_MATCH_DATA, 0, 0, NULL, NULL, sidebar_split_idle);
  }
  g_object_unref(split);
  return G_SOURCE_REMOVE;
}

static void
sidebar_split_cb(GtkPaned *split, GParamSpec *ps, gpointer data)
{
  g_idle_add(sidebar_split_idle, g_object_ref(split));
}

static void
lesson_layout(ConformWindow *self, gboolean lesson)
{
  GtkWidget *split = gtk_widget_get_parent(self->lesson_panel), *main = gtk_widget_get_parent(split);
  if (lesson && !g_object_get_data(G_OBJECT(main), "width-before")) {
    g_object_set_data(G_OBJECT(main), "width-before", GINT_TO_POINTER(gtk_paned_get_position(GTK_PANED(main))));
    gtk_paned_set_position(GTK_PANED(main), MAX(gtk_paned_get_position(GTK_PANED(main)), LESSON_SIDEBAR_WIDTH));
    g_signal_connect(split, "notify::max-position", G_CALLBACK(sidebar_split_cb), sidebar_split_idle);
    sidebar_split_cb(GTK_PANED(split), NULL, NULL);
  } else if (!lesson && g_object_get_data(G_OBJECT(main), "width-before")) {
    gtk_paned_set_position(GTK_PANED(main), GPOINTER_TO_INT(g_object_get_data(G_OBJECT(main), "width-before")));
    g_object_set_data(G_OBJECT(main), "width-before", NULL);
    g_signal_handlers_disconnect_matched(split, G_SIGNAL_MATCH_DATA, 0, 0, NULL, NULL, sidebar_split_idle);
  }
}

void
conform_window_teach_apply_visibility_(ConformWindow *self, const ConformLesson *lesson)
{
  lesson_layout(self, lesson != NULL);
  /* settings rows, and a section's heading when none of its rows is shown */
  GHashTable *grids = g_hash_table_new(NULL, NULL);
  GHashTableIter it;
  gpointer key, value;
  g_hash_table_iter_init(&it, self->setting_widgets);
  while (g_hash_table_iter_next(&it, &key, &value)) {
    gboolean show = !lesson || conform_lesson_control_visible(lesson, key);
    GtkWidget *label = setting_label(value);
    gtk_widget_set_visible(value, show);
    if (label)
      gtk_widget_set_visible(label, show);
    GtkWidget *grid = gtk_widget_get_parent(value);
    g_hash_table_insert(grids, grid, GINT_TO_POINTER(GPOINTER_TO_INT(g_hash_table_lookup(grids, grid)) | show));
  }
  g_hash_table_iter_init(&it, grids);
  while (g_hash_table_iter_next(&it, &key, &value)) {
    gtk_widget_set_visible(key, GPOINTER_TO_INT(value));
    GtkWidget *head = gtk_widget_get_prev_sibling(key);
    if (GTK_IS_LABEL(head))
      gtk_widget_set_visible(head, GPOINTER_TO_INT(value));
  }
  g_hash_table_unref(grids);
  /* views and header controls */
  const char *const *kinds[] = {conform_lesson_view_names(), conform_lesson_header_names()};
  for (int k = 0; k < 2; k++)
    for (int i = 0; kinds[k][i]; i++) {
      GtkWidget *w = view_widget(self, kinds[k][i]);
      if (w)
        gtk_widget_set_visible(w, !lesson || conform_lesson_control_visible(lesson, kinds[k][i]));
    }
  /* an empty column or tab goes too */
  GtkWidget *hist = view_widget(self, "histogram"), *curves = view_widget(self, "curves");
  GtkWidget *right = gtk_widget_get_parent(hist);
  gtk_widget_set_visible(right, gtk_widget_get_visible(hist) || gtk_widget_get_visible(curves));
  gtk_widget_set_visible(gtk_notebook_get_nth_page(GTK_NOTEBOOK(self->notebook), 0),
                         gtk_widget_get_visible(right) || gtk_widget_get_visible(view_widget(self, "samples")));
}

gboolean
conform_window_control_visible(ConformWindow *self, const char *control)
{
  g_return_val_if_fail(CONFORM_IS_WINDOW(self), FALSE);
  GtkWidget *w = view_widget(self, control);
  if (!w)
    w = g_hash_table_lookup(self->setting_widgets, control);
  return w && gtk_widget_get_visible(w);
}

/* ---- driving the window (lesson actions) ------------------------------------------------- */

gboolean
conform_window_teach_building_(ConformWindow *self)
{
  return self->incoming != NULL;
}

gboolean
conform_window_teach_set_setting_(ConformWindow *self, const char *key, const char *value, GError **error)
{
  GtkWidget *w = g_hash_table_lookup(self->setting_widgets, key);
  const ConformKey *k = conform_config_find_key(key);
  if (!w || !k) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_USAGE, "%s is not a setting of the sidebar", key);
    return FALSE;
  }
  /* checked first, then set through the sidebar as the user would */
  ConformConfig scratch;
  conform_config_init(&scratch);
  gboolean ok = conform_config_set(&scratch, key, value, error);
  conform_config_clear(&scratch);
  if (!ok)
    return FALSE;
  if (GTK_IS_SPIN_BUTTON(w)) {
    gtk_spin_button_set_value(GTK_SPIN_BUTTON(w), g_ascii_strtod(value, NULL));
  } else if (GTK_IS_DROP_DOWN(w)) {
    g_auto(GStrv) opts = g_strsplit(k->choices, "|", -1);
    for (guint i = 0; opts[i]; i++)
      if (g_str_equal(opts[i], value))
        gtk_drop_down_set_selected(GTK_DROP_DOWN(w), i);
  } else if (GTK_IS_EDITABLE(w)) {
    gtk_editable_set_text(GTK_EDITABLE(w), value);
    g_signal_emit_by_name(w, "activate");
  }
  return TRUE;
}

void
conform_window_teach_set_strategy_(ConformWindow *self, const char *strategy)
{
  GListModel *m = gtk_drop_down_get_model(GTK_DROP_DOWN(self->strategy_dropdown));
  for (guint i = 0; i < g_list_model_get_n_items(m); i++)
    if (g_strcmp0(gtk_string_list_get_string(GTK_STRING_LIST(m), i), strategy) == 0) {
      gtk_drop_down_set_selected(GTK_DROP_DOWN(self->strategy_dropdown), i);
      return;
    }
  g_autofree char *msg = g_strdup_printf("strategy %s is not offered by this window", strategy);
  conform_window_show_message_(self, msg, TRUE);
}

const char *
conform_window_teach_pending_strategy_(ConformWindow *self)
{
  return self->pending.strategy;
}

void
conform_window_teach_show_view_(ConformWindow *self, const char *view)
{
  int page = 0;
  if (g_str_equal(view, "trajectory"))
    page = 1;
  else if (g_str_equal(view, "constraint"))
    page = 2;
  else if (g_str_equal(view, "compare"))
    page = self->compare_page;
  else if (g_str_equal(view, "history"))
    page = self->history_page;
  gtk_notebook_set_current_page(GTK_NOTEBOOK(self->notebook), page);
}

void
conform_window_teach_values_(ConformWindow *self, ConformLessonValues *v)
{
  memset(v, 0, sizeof *v);
  if (!self->run)
    return;
  v->samples = conform_run_get_samples(self->run);
  v->step = conform_run_get_step(self->run);
  const GArray *rec = conform_run_get_records(self->run);
  if (rec->len > 0)
    v->record = &g_array_index(rec, ConformTrainRecord, rec->len - 1);
}

/* ---- lessons: open, export --------------------------------------------------------------- */

gboolean
conform_window_open_lesson(ConformWindow *self, const char *path, GError **error)
{
  g_return_val_if_fail(CONFORM_IS_WINDOW(self), FALSE);
  ConformLesson *l = conform_lesson_load(path, error);
  if (!l)
    return FALSE;
  g_autofree char *name = g_path_get_basename(path);
  if (!conform_lesson_panel_start(CONFORM_LESSON_PANEL(self->lesson_panel), l, error))
    return FALSE;
  g_autofree char *msg = g_strdup_printf("lesson %s", name);
  conform_window_show_message_(self, msg, FALSE);
  return TRUE;
}

gboolean
conform_window_export_lesson(ConformWindow *self, const char *path, const char *title, GError **error)
{
  g_return_val_if_fail(CONFORM_IS_WINDOW(self), FALSE);
  /* the sidebar's settings and the constraint the run uses (the editor's) */
  ConformConfig cfg;
  conform_config_copy(&cfg, &self->pending);
  if (self->run) {
    const ConformConfig *rc = conform_run_get_config(self->run);
    cf_constraint_clear(&cfg.constraint);
    if (rc->constraint.m > 0)
      cf_constraint_copy(&cfg.constraint, &rc->constraint, NULL);
    g_free(cfg.constraint_source);
    cfg.constraint_source = g_strdup(rc->constraint_source);
  }
  /* controls: list what is shown where something of its kind is hidden */
  GPtrArray *visible = g_ptr_array_new_with_free_func(g_free), *hidden = g_ptr_array_new_with_free_func(g_free);
  GPtrArray *vis_views = g_ptr_array_new();
  gboolean views_hidden = FALSE;
  for (const char *const *v = conform_lesson_view_names(); *v; v++) {
    if (conform_window_control_visible(self, *v))
      g_ptr_array_add(vis_views, (gpointer)*v);
    else
      views_hidden = TRUE;
  }
  if (views_hidden)
    for (guint i = 0; i < vis_views->len; i++)
      g_ptr_array_add(visible, g_strdup(vis_views->pdata[i]));
  g_ptr_array_unref(vis_views);
  for (const char *const *h = conform_lesson_header_names(); *h; h++)
    if (!conform_window_control_visible(self, *h))
      g_ptr_array_add(hidden, g_strdup(*h));
  GPtrArray *shown = g_ptr_array_new(), *gone = g_ptr_array_new();
  guint nk;
  const ConformKey *keys = conform_config_keys(&nk);
  for (guint i = 0; i < nk; i++)
    if (g_hash_table_contains(self->setting_widgets, keys[i].key))
      g_ptr_array_add(conform_window_control_visible(self, keys[i].key) ? shown : gone, (gpointer)keys[i].key);
  if (gone->len > 0) {
    GPtrArray *which = shown->len < gone->len ? shown : gone;
    for (guint i = 0; i < which->len; i++)
      g_ptr_array_add(which == shown ? visible : hidden, g_strdup(which->pdata[i]));
  }
  g_ptr_array_unref(shown);
  g_ptr_array_unref(gone);
  g_ptr_array_add(visible, NULL);
  g_ptr_array_add(hidden, NULL);
  const ConformLesson *cur = conform_lesson_panel_get_lesson(CONFORM_LESSON_PANEL(self->lesson_panel));
  g_autofree char *default_title = g_strdup_printf("%s with %s", cfg.preset, cfg.strategy);
  g_autofree char *text = conform_lesson_export(&cfg, title ? title : cur ? cur->title : default_title,
                                                (const char *const *)visible->pdata,
                                                (const char *const *)hidden->pdata);
  g_ptr_array_unref(visible);
  g_ptr_array_unref(hidden);
  conform_config_clear(&cfg);
  return conform_write_atomic(path, text, strlen(text), error);
}

static void
lesson_file_cb(GtkNativeDialog *d, int response, ConformWindow *self)
{
  if (response == GTK_RESPONSE_ACCEPT) {
    g_autoptr(GFile) f = gtk_file_chooser_get_file(GTK_FILE_CHOOSER(d));
    g_autofree char *path = g_file_get_path(f);
    g_autoptr(GError) error = NULL;
    if (!conform_window_open_lesson(self, path, &error))
      conform_window_error_dialog_(self, "Cannot open the lesson", error->message);
  }
  g_object_unref(d);
}

static void
lesson_open_action(GSimpleAction *a, GVariant *p, gpointer data)
{
  ConformWindow *self = data;
  GtkFileChooserNative *d = gtk_file_chooser_native_new("Open Lesson", GTK_WINDOW(self), GTK_FILE_CHOOSER_ACTION_OPEN,
                                                        "_Open", "_Cancel");
  GtkFileFilter *f = gtk_file_filter_new();
  gtk_file_filter_set_name(f, "Conform lessons (*.lesson)");
  gtk_file_filter_add_pattern(f, "*.lesson");
  gtk_file_chooser_add_filter(GTK_FILE_CHOOSER(d), f);
  g_object_unref(f);
  g_signal_connect(d, "response", G_CALLBACK(lesson_file_cb), self);
  gtk_native_dialog_show(GTK_NATIVE_DIALOG(d));
}

static void
lesson_export_cb(GtkNativeDialog *d, int response, ConformWindow *self)
{
  if (response == GTK_RESPONSE_ACCEPT) {
    g_autoptr(GFile) f = gtk_file_chooser_get_file(GTK_FILE_CHOOSER(d));
    g_autofree char *path = g_file_get_path(f);
    g_autoptr(GError) error = NULL;
    if (!conform_window_export_lesson(self, path, NULL, &error)) {
      conform_window_error_dialog_(self, "Cannot export the lesson", error->message);
    } else {
      g_autofree char *msg = g_strdup_printf("lesson written to %s: edit its steps in a text editor", path);
      conform_window_show_message_(self, msg, FALSE);
    }
  }
  g_object_unref(d);
}

static void
lesson_export_action(GSimpleAction *a, GVariant *p, gpointer data)
{
  ConformWindow *self = data;
  GtkFileChooserNative *d = gtk_file_chooser_native_new("Export Lesson", GTK_WINDOW(self), GTK_FILE_CHOOSER_ACTION_SAVE,
                                                        "_Export", "_Cancel");
  g_autofree char *name = g_strdup_printf("%s.lesson", self->pending.preset[0] ? self->pending.preset : "lesson");
  gtk_file_chooser_set_current_name(GTK_FILE_CHOOSER(d), name);
  g_signal_connect(d, "response", G_CALLBACK(lesson_export_cb), self);
  gtk_native_dialog_show(GTK_NATIVE_DIALOG(d));
}

/* "Lessons…": the bundled lessons with their titles and summaries. */
static void
lessons_dialog_open(ConformWindow *self, GtkWidget *dialog, GtkListBoxRow *row)
{
  const char *path = row ? g_object_get_data(G_OBJECT(row), "path") : NULL;
  if (!path)
    return;
  g_autoptr(GError) error = NULL;
  if (!conform_window_open_lesson(self, path, &error))
    conform_window_error_dialog_(self, "Cannot open the lesson", error->message);
  gtk_window_destroy(GTK_WINDOW(dialog));
}

static void
lessons_row_activated_cb(GtkListBox *list, GtkListBoxRow *row, GtkWidget *dialog)
{
  lessons_dialog_open(g_object_get_data(G_OBJECT(dialog), "window"), dialog, row);
}

static void
lessons_open_clicked_cb(GtkButton *b, GtkWidget *dialog)
{
  GtkListBox *list = g_object_get_data(G_OBJECT(dialog), "list");
  lessons_dialog_open(g_object_get_data(G_OBJECT(dialog), "window"), dialog, gtk_list_box_get_selected_row(list));
}

static void
lessons_file_clicked_cb(GtkButton *b, GtkWidget *dialog)
{
  ConformWindow *self = g_object_get_data(G_OBJECT(dialog), "window");
  gtk_window_destroy(GTK_WINDOW(dialog));
  gtk_widget_activate_action(GTK_WIDGET(self), "win.lesson-open", NULL);
}

static void
lessons_action(GSimpleAction *a, GVariant *p, gpointer data)
{
  ConformWindow *self = data;
  GtkWidget *dialog = gtk_window_new();
  gtk_window_set_title(GTK_WINDOW(dialog), "Lessons");
  gtk_window_set_transient_for(GTK_WINDOW(dialog), GTK_WINDOW(self));
  gtk_window_set_modal(GTK_WINDOW(dialog), TRUE);
  gtk_window_set_default_size(GTK_WINDOW(dialog), 560, 520);
  g_object_set_data(G_OBJECT(dialog), "window", self);
  GtkWidget *box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 8);
  gtk_widget_set_margin_start(box, 12);
  gtk_widget_set_margin_end(box, 12);
  gtk_widget_set_margin_top(box, 12);
  gtk_widget_set_margin_bottom(box, 12);
  GtkWidget *intro = gtk_label_new("Each lesson sets up the window, hides the controls it does not need and walks "
                                   "through steps; predict before each result is revealed.");
  gtk_label_set_wrap(GTK_LABEL(intro), TRUE);
  gtk_label_set_xalign(GTK_LABEL(intro), 0);
  GtkWidget *list = gtk_list_box_new();
  gtk_widget_add_css_class(list, "boxed-list");
  g_object_set_data(G_OBJECT(dialog), "list", list);
  g_auto(GStrv) paths = conform_lesson_bundled();
  for (int i = 0; paths[i]; i++) {
    g_autoptr(GError) error = NULL;
    g_autoptr(ConformLesson) l = conform_lesson_load(paths[i], &error);
    GtkWidget *row = gtk_list_box_row_new();
    GtkWidget *rbox = gtk_box_new(GTK_ORIENTATION_VERTICAL, 2);
    gtk_widget_set_margin_start(rbox, 8);
    gtk_widget_set_margin_end(rbox, 8);
    gtk_widget_set_margin_top(rbox, 6);
    gtk_widget_set_margin_bottom(rbox, 6);
    GtkWidget *title = gtk_label_new(NULL), *detail = gtk_label_new(NULL);
    gtk_label_set_xalign(GTK_LABEL(title), 0);
    gtk_label_set_xalign(GTK_LABEL(detail), 0);
    gtk_label_set_wrap(GTK_LABEL(detail), TRUE);
    gtk_label_set_wrap(GTK_LABEL(title), TRUE);
    if (l) {
      g_autofree char *t = g_markup_printf_escaped("<b>%s</b>", l->title);
      gtk_label_set_markup(GTK_LABEL(title), t);
      g_autofree char *meta = g_markup_printf_escaped("%s · %s · %d steps", l->preset,
                                                      l->strategy ? l->strategy : "none", l->n_steps);
      g_autofree char *d = g_strdup_printf("%s\n<span alpha='60%%'>%s</span>", l->summary ? l->summary : "", meta);
      gtk_label_set_markup(GTK_LABEL(detail), d);
      g_object_set_data_full(G_OBJECT(row), "path", g_strdup(paths[i]), g_free);
    } else {
      g_autofree char *base = g_path_get_basename(paths[i]);
      gtk_label_set_text(GTK_LABEL(title), base);
      gtk_label_set_text(GTK_LABEL(detail), error->message);
      gtk_widget_add_css_class(detail, "error");
      gtk_list_box_row_set_activatable(GTK_LIST_BOX_ROW(row), FALSE);
      gtk_list_box_row_set_selectable(GTK_LIST_BOX_ROW(row), FALSE);
    }
    gtk_box_append(GTK_BOX(rbox), title);
    gtk_box_append(GTK_BOX(rbox), detail);
    gtk_list_box_row_set_child(GTK_LIST_BOX_ROW(row), rbox);
    gtk_list_box_append(GTK_LIST_BOX(list), row);
  }
  if (!paths[0]) {
    g_autofree char *dir = g_build_filename(conform_data_dir(), "lessons", NULL);
    g_autofree char *msg = g_strdup_printf("No bundled lessons found in %s.", dir);
    gtk_list_box_append(GTK_LIST_BOX(list), gtk_label_new(msg));
  }
  g_signal_connect(list, "row-activated", G_CALLBACK(lessons_row_activated_cb), dialog);
  GtkWidget *scroll = gtk_scrolled_window_new();
  gtk_scrolled_window_set_child(GTK_SCROLLED_WINDOW(scroll), list);
  gtk_scrolled_window_set_policy(GTK_SCROLLED_WINDOW(scroll), GTK_POLICY_NEVER, GTK_POLICY_AUTOMATIC);
  gtk_widget_set_vexpand(scroll, TRUE);
  GtkWidget *buttons = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 6);
  GtkWidget *file = gtk_button_new_with_mnemonic("Open _File…");
  gtk_widget_set_tooltip_text(file, "Open a .lesson file of your own");
  g_signal_connect(file, "clicked", G_CALLBACK(lessons_file_clicked_cb), dialog);
  GtkWidget *spacer = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 0);
  gtk_widget_set_hexpand(spacer, TRUE);
  GtkWidget *cancel = gtk_button_new_with_mnemonic("_Cancel");
  g_signal_connect_swapped(cancel, "clicked", G_CALLBACK(gtk_window_destroy), dialog);
  GtkWidget *open = gtk_button_new_with_mnemonic("_Start Lesson");
  gtk_widget_add_css_class(open, "suggested-action");
  g_signal_connect(open, "clicked", G_CALLBACK(lessons_open_clicked_cb), dialog);
  gtk_box_append(GTK_BOX(buttons), file);
  gtk_box_append(GTK_BOX(buttons), spacer);
  gtk_box_append(GTK_BOX(buttons), cancel);
  gtk_box_append(GTK_BOX(buttons), open);
  gtk_box_append(GTK_BOX(box), intro);
  gtk_box_append(GTK_BOX(box), scroll);
  gtk_box_append(GTK_BOX(box), buttons);
  gtk_window_set_child(GTK_WINDOW(dialog), box);
  GtkListBoxRow *first = gtk_list_box_get_row_at_index(GTK_LIST_BOX(list), 0);
  if (first && gtk_list_box_row_get_selectable(first))
    gtk_list_box_select_row(GTK_LIST_BOX(list), first);
  gtk_window_present(GTK_WINDOW(dialog));
}

/* ---- construction -------------------------------------------------------------------------- */

static const GActionEntry teach_actions[] = {
  {"lessons", lessons_action, NULL, NULL, NULL, {0}},
  {"lesson-open", lesson_open_action, NULL, NULL, NULL, {0}},
  {"lesson-export", lesson_export_action, NULL, NULL, NULL, {0}},
};

GMenuModel *
conform_window_teach_menu_(void)
{
  GMenu *s = g_menu_new();
  g_menu_append(s, "_Lessons…", "win.lessons");
  g_menu_append(s, "Open Lesson _File…", "win.lesson-open");
  g_menu_append(s, "Export Lesson…", "win.lesson-export");
  return G_MENU_MODEL(s);
}

void
conform_window_teach_init_(ConformWindow *self)
{
  g_action_map_add_action_entries(G_ACTION_MAP(self), teach_actions, G_N_ELEMENTS(teach_actions), self);
  self->history_panel = conform_history_panel_new();
  conform_history_panel_set_thumbnail_func(CONFORM_HISTORY_PANEL(self->history_panel), thumbnail_cb, self);
  g_signal_connect(self->history_panel, "rerun", G_CALLBACK(rerun_cb), self);
  self->history_page =
    gtk_notebook_append_page(GTK_NOTEBOOK(self->notebook), self->history_panel, gtk_label_new("History"));
}

GtkWidget *
conform_window_teach_sidebar_(ConformWindow *self, GtkWidget *settings)
{
  self->lesson_panel = conform_lesson_panel_new(self);
  GtkWidget *split = gtk_paned_new(GTK_ORIENTATION_VERTICAL);
  gtk_paned_set_start_child(GTK_PANED(split), self->lesson_panel);
  gtk_paned_set_end_child(GTK_PANED(split), settings);
  gtk_paned_set_shrink_start_child(GTK_PANED(split), FALSE);
  return split;
}

GtkWidget *
conform_window_get_history_panel(ConformWindow *self)
{
  return self->history_panel;
}

GtkWidget *
conform_window_get_lesson_panel(ConformWindow *self)
{
  return self->lesson_panel;
}
