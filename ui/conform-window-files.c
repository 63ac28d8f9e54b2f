/* ConformWindow: opening, saving, exporting and closing (the file side of
 * the window; the views and the run are in conform-window.c). */
#define G_LOG_DOMAIN "conform"

#include <string.h>

#include "conform-bars.h"
#include "conform-compare-view.h"
#include "conform-curves.h"
#include "conform-histogram.h"
#include "conform-image-grid.h"
#include "conform-io.h"
#include "conform-mirror-view.h"
#include "conform-scatter.h"
#include "conform-window-private.h"
#include "conform-window-teach.h"

/* ---- files ------------------------------------------------------------------- */

static void
save_done_cb(GObject *src, GAsyncResult *res, gpointer data)
{
  ConformWindow *self = data;
  g_autoptr(GError) error = NULL;
  if (!conform_run_save_finish(CONFORM_RUN(src), res, &error)) {
    conform_window_error_dialog_(self, "Cannot save the experiment", error->message);
    self->closing_after_save = FALSE;
  } else {
    conform_window_teach_saved_(self, self->experiment_dir);
    conform_window_set_dirty_(self, FALSE);
    g_autofree char *msg = g_strdup_printf("saved to %s", self->experiment_dir);
    conform_window_show_message_(self, msg, FALSE);
    g_autofree char *uri = g_filename_to_uri(self->experiment_dir, NULL, NULL);
    if (uri)
      gtk_recent_manager_add_item(gtk_recent_manager_get_default(), uri);
    if (self->closing_after_save) {
      self->close_confirmed = TRUE;
      gtk_window_close(GTK_WINDOW(self));
    }
  }
  g_object_unref(self);
}

static void
save_to_dir(ConformWindow *self, const char *dir)
{
  if (!self->run)
    return;
  if (self->experiment_dir != dir) {
    g_free(self->experiment_dir);
    self->experiment_dir = g_strdup(dir);
  }
  conform_window_update_title_(self);
  conform_run_save_async(self->run, dir, NULL, save_done_cb, g_object_ref(self));
}

static void
save_as_response_cb(GtkNativeDialog *d, int response, ConformWindow *self)
{
  if (response == GTK_RESPONSE_ACCEPT) {
    g_autoptr(GFile) f = gtk_file_chooser_get_file(GTK_FILE_CHOOSER(d));
    g_autofree char *path = g_file_get_path(f);
    save_to_dir(self, path);
  } else {
    self->closing_after_save = FALSE;
  }
  g_object_unref(d);
}

void
conform_window_save_as_action(GSimpleAction *a, GVariant *p, gpointer data)
{
  ConformWindow *self = data;
  GtkFileChooserNative *d = gtk_file_chooser_native_new("Save Experiment As", GTK_WINDOW(self),
                                                        GTK_FILE_CHOOSER_ACTION_SAVE, "_Save", "_Cancel");
  gtk_file_chooser_set_current_name(GTK_FILE_CHOOSER(d), self->pending.preset[0] ? self->pending.preset : "experiment");
  g_signal_connect(d, "response", G_CALLBACK(save_as_response_cb), self);
  gtk_native_dialog_show(GTK_NATIVE_DIALOG(d));
}

void
conform_window_save_action(GSimpleAction *a, GVariant *p, gpointer data)
{
  ConformWindow *self = data;
  if (self->experiment_dir)
    save_to_dir(self, self->experiment_dir);
  else
    conform_window_save_as_action(a, p, data);
}

static void
open_response_cb(GtkNativeDialog *d, int response, ConformWindow *self)
{
  if (response == GTK_RESPONSE_ACCEPT) {
    g_autoptr(GFile) f = gtk_file_chooser_get_file(GTK_FILE_CHOOSER(d));
    g_autofree char *path = g_file_get_path(f);
    conform_window_open_dir(self, path);
  }
  g_object_unref(d);
}

void
conform_window_open_action(GSimpleAction *a, GVariant *p, gpointer data)
{
  ConformWindow *self = data;
  GtkFileChooserNative *d = gtk_file_chooser_native_new("Open Experiment", GTK_WINDOW(self),
                                                        GTK_FILE_CHOOSER_ACTION_SELECT_FOLDER, "_Open", "_Cancel");
  g_signal_connect(d, "response", G_CALLBACK(open_response_cb), self);
  gtk_native_dialog_show(GTK_NATIVE_DIALOG(d));
}

/* Export: PNG of a view at a chosen size, or CSV of samples + violations. */
typedef struct {
  ConformWindow *self;
  GtkWidget *dialog, *what, *width, *height;
} ExportDialog;

static const char *const export_items[] = {"Samples plot (PNG)",     "Violation histogram (PNG)",
                                           "Loss curve (PNG)",       "Violation curve (PNG)",
                                           "Learning rate (PNG)",    "Sampling trajectory frame (PNG)",
                                           "Samples and violations (CSV)",
                                           "Held-out ELBO / log-likelihood, VAE (PNG)",
                                           "Compare view (PNG)", "Class shares (PNG)",
                                           "Mirror maps, strategy mirror (PNG)", NULL};
static const char *const export_names[] = {"samples.png", "violations.png", "loss.png", "violation-curve.png",
                                           "learning-rate.png", "trajectory.png", "samples.csv", "vae-curves.png",
                                           "compare.png", "shares.png", "mirror.png"};
enum { EXPORT_CSV = 6, EXPORT_VAE = 7, EXPORT_COMPARE = 8, EXPORT_SHARES = 9, EXPORT_MIRROR = 10 };

static gboolean
export_to(ConformWindow *self, guint what, const char *path, int w, int h, GError **error)
{
  switch (what) {
  case 0:
    if (self->image_size > 0) /* image data: the grid the Samples pane shows */
      return conform_image_grid_export_png(CONFORM_IMAGE_GRID(self->image_grid), path, w, h, error);
    return conform_scatter_export_png(CONFORM_SCATTER(self->scatter), path, w, h, error);
  case 1: return conform_histogram_export_png(CONFORM_HISTOGRAM(self->histogram), path, w, h, error);
  case 2: return conform_curves_export_png(CONFORM_CURVES(self->loss), path, w, h, error);
  case 3: return conform_curves_export_png(CONFORM_CURVES(self->violation), path, w, h, error);
  case 4: return conform_curves_export_png(CONFORM_CURVES(self->lr), path, w, h, error);
  case 5:
    if (self->image_size > 0) /* image data: the trajectory's image grid */
      return conform_image_grid_export_png(CONFORM_IMAGE_GRID(conform_window_images_view_(self, "trajectory-images")),
                                           path, w, h, error);
    return conform_scatter_export_png(CONFORM_SCATTER(self->traj_scatter), path, w, h, error);
  case EXPORT_VAE: return conform_curves_export_png(CONFORM_CURVES(self->vae_curves), path, w, h, error);
  case EXPORT_COMPARE:
    return conform_compare_view_export_png(CONFORM_COMPARE_VIEW(self->compare), path, w, h, error);
  case EXPORT_SHARES: {
    /* the pane's title and info line become the picture's title */
    ConformBars *b = CONFORM_BARS(self->shares);
    const char *info = gtk_label_get_text(GTK_LABEL(self->shares_info));
    g_autofree char *title = g_strdup_printf("%s%s%s", gtk_label_get_text(GTK_LABEL(self->shares_title)),
                                             *info ? " · " : "", info);
    conform_bars_set_title(b, title);
    gboolean ok = conform_bars_export_png(b, path, w, h, error);
    conform_bars_set_title(b, NULL);
    return ok;
  }
  case EXPORT_MIRROR: /* the mode shown (g or f) */
    return conform_mirror_view_export_png(CONFORM_MIRROR_VIEW(self->mirror_view), path, w, h, error);
  case EXPORT_CSV:
  default: {
    ConformSampleSet *s = self->run ? conform_run_get_samples(self->run) : NULL;
    if (!s) {
      g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_USAGE, "no samples to export yet");
      return FALSE;
    }
    GString *csv = g_string_new(NULL);
    for (int j = 0; j < s->dim; j++)
      g_string_append_printf(csv, "x%d,", j);
    g_string_append(csv, s->viol ? "violation_l2,violation_before_strategy\n" : "\n");
    char buf[G_ASCII_DTOSTR_BUF_SIZE];
    for (int i = 0; i < s->n; i++) {
      for (int j = 0; j < s->dim; j++) {
        g_string_append(csv, g_ascii_formatd(buf, sizeof buf, "%.9g", s->x[(gsize)i * s->dim + j]));
        g_string_append_c(csv, j + 1 < s->dim || s->viol ? ',' : '\n');
      }
      if (s->viol)
        g_string_append_printf(csv, "%s,%s\n", g_ascii_formatd(buf, sizeof buf, "%.9g", s->viol[i]),
                               g_ascii_formatd((char[G_ASCII_DTOSTR_BUF_SIZE]){0}, G_ASCII_DTOSTR_BUF_SIZE, "%.9g",
                                               s->viol_raw[i]));
    }
    gboolean ok = conform_write_atomic(path, csv->str, csv->len, error);
    g_string_free(csv, TRUE);
    return ok;
  }
  }
}

static void
export_file_cb(GtkNativeDialog *d, int response, ExportDialog *ed)
{
  if (response == GTK_RESPONSE_ACCEPT) {
    g_autoptr(GFile) f = gtk_file_chooser_get_file(GTK_FILE_CHOOSER(d));
    g_autofree char *path = g_file_get_path(f);
    g_autoptr(GError) error = NULL;
    guint what = gtk_drop_down_get_selected(GTK_DROP_DOWN(ed->what));
    if (!export_to(ed->self, what, path, gtk_spin_button_get_value_as_int(GTK_SPIN_BUTTON(ed->width)),
                   gtk_spin_button_get_value_as_int(GTK_SPIN_BUTTON(ed->height)), &error)) {
      conform_window_error_dialog_(ed->self, "Export failed", error->message);
    } else {
      g_autofree char *msg = g_strdup_printf("exported %s", path);
      conform_window_show_message_(ed->self, msg, FALSE);
      gtk_window_destroy(GTK_WINDOW(ed->dialog));
    }
  }
  g_object_unref(d);
}

static void
export_choose_cb(GtkButton *b, ExportDialog *ed)
{
  guint what = gtk_drop_down_get_selected(GTK_DROP_DOWN(ed->what));
  GtkFileChooserNative *d = gtk_file_chooser_native_new("Export", GTK_WINDOW(ed->dialog),
                                                        GTK_FILE_CHOOSER_ACTION_SAVE, "_Export", "_Cancel");
  gtk_file_chooser_set_current_name(GTK_FILE_CHOOSER(d), export_names[MIN(what, G_N_ELEMENTS(export_names) - 1)]);
  g_signal_connect(d, "response", G_CALLBACK(export_file_cb), ed);
  gtk_native_dialog_show(GTK_NATIVE_DIALOG(d));
}

void
conform_window_export_action(GSimpleAction *a, GVariant *p, gpointer data)
{
  ConformWindow *self = data;
  ExportDialog *ed = g_new0(ExportDialog, 1);
  ed->self = self;
  ed->dialog = gtk_window_new();
  gtk_window_set_title(GTK_WINDOW(ed->dialog), "Export");
  gtk_window_set_transient_for(GTK_WINDOW(ed->dialog), GTK_WINDOW(self));
  gtk_window_set_modal(GTK_WINDOW(ed->dialog), TRUE);
  g_object_set_data_full(G_OBJECT(ed->dialog), "export", ed, g_free);
  GtkWidget *grid = gtk_grid_new();
  gtk_grid_set_row_spacing(GTK_GRID(grid), 6);
  gtk_grid_set_column_spacing(GTK_GRID(grid), 8);
  gtk_widget_set_margin_start(grid, 12);
  gtk_widget_set_margin_end(grid, 12);
  gtk_widget_set_margin_top(grid, 12);
  gtk_widget_set_margin_bottom(grid, 12);
  ed->what = gtk_drop_down_new_from_strings(export_items);
  /* "Export view": the Compare tab exports itself when it is the one shown. */
  if (gtk_notebook_get_current_page(GTK_NOTEBOOK(self->notebook)) == self->compare_page)
    gtk_drop_down_set_selected(GTK_DROP_DOWN(ed->what), EXPORT_COMPARE);
  else if (self->mirror_page && gtk_notebook_get_current_page(GTK_NOTEBOOK(self->notebook)) ==
                                    gtk_notebook_page_num(GTK_NOTEBOOK(self->notebook), self->mirror_page))
    gtk_drop_down_set_selected(GTK_DROP_DOWN(ed->what), EXPORT_MIRROR);
  ed->width = gtk_spin_button_new_with_range(16, 16384, 1);
  ed->height = gtk_spin_button_new_with_range(16, 16384, 1);
  gtk_spin_button_set_value(GTK_SPIN_BUTTON(ed->width), 1600);
  gtk_spin_button_set_value(GTK_SPIN_BUTTON(ed->height), 1000);
  gtk_grid_attach(GTK_GRID(grid), gtk_label_new("What"), 0, 0, 1, 1);
  gtk_grid_attach(GTK_GRID(grid), ed->what, 1, 0, 1, 1);
  gtk_grid_attach(GTK_GRID(grid), gtk_label_new("Width (px)"), 0, 1, 1, 1);
  gtk_grid_attach(GTK_GRID(grid), ed->width, 1, 1, 1, 1);
  gtk_grid_attach(GTK_GRID(grid), gtk_label_new("Height (px)"), 0, 2, 1, 1);
  gtk_grid_attach(GTK_GRID(grid), ed->height, 1, 2, 1, 1);
  GtkWidget *go = gtk_button_new_with_mnemonic("_Choose File…");
  gtk_widget_add_css_class(go, "suggested-action");
  g_signal_connect(go, "clicked", G_CALLBACK(export_choose_cb), ed);
  gtk_grid_attach(GTK_GRID(grid), go, 1, 3, 1, 1);
  gtk_window_set_child(GTK_WINDOW(ed->dialog), grid);
  gtk_window_present(GTK_WINDOW(ed->dialog));
}

void
conform_window_close_action(GSimpleAction *a, GVariant *p, gpointer data)
{
  gtk_window_close(GTK_WINDOW(data));
}

static void
confirm_close_cb(GtkDialog *d, int response, ConformWindow *self)
{
  gtk_window_destroy(GTK_WINDOW(d));
  if (response == GTK_RESPONSE_ACCEPT) {
    self->closing_after_save = TRUE;
    conform_window_save_action(NULL, NULL, self);
  } else if (response == GTK_RESPONSE_REJECT) {
    self->close_confirmed = TRUE;
    gtk_window_close(GTK_WINDOW(self));
  }
}

gboolean
conform_window_close_request_cb(GtkWindow *win, gpointer data)
{
  ConformWindow *self = CONFORM_WINDOW(win);
  if (self->dirty && !self->close_confirmed && g_getenv("CONFORM_NO_CLOSE_PROMPT") == NULL) {
    GtkWidget *d = gtk_message_dialog_new(win, GTK_DIALOG_MODAL | GTK_DIALOG_DESTROY_WITH_PARENT,
                                          GTK_MESSAGE_QUESTION, GTK_BUTTONS_NONE, "Save the experiment before closing?");
    gtk_message_dialog_format_secondary_text(GTK_MESSAGE_DIALOG(d),
                                             "Training progress since the last save will be lost otherwise.");
    gtk_dialog_add_buttons(GTK_DIALOG(d), "_Cancel", GTK_RESPONSE_CANCEL, "_Discard", GTK_RESPONSE_REJECT, "_Save",
                           GTK_RESPONSE_ACCEPT, NULL);
    gtk_dialog_set_default_response(GTK_DIALOG(d), GTK_RESPONSE_ACCEPT);
    g_signal_connect(d, "response", G_CALLBACK(confirm_close_cb), self);
    gtk_window_present(GTK_WINDOW(d));
    return TRUE;
  }
  /* Closing cancels the run; the application holds itself until the worker
   * has been joined (run_finished_cb holds a reference to the window). */
  GSettings *gs = conform_window_settings_(self);
  if (gs) {
    int w, h;
    gtk_window_get_default_size(win, &w, &h);
    g_settings_set_int(gs, "window-width", w);
    g_settings_set_int(gs, "window-height", h);
  }
  if (self->run)
    conform_run_stop(self->run);
  if (self->incoming)
    conform_run_stop(self->incoming);
  /* and the Compare tab's worker (joined by its own finish callback) */
  conform_compare_view_stop(CONFORM_COMPARE_VIEW(self->compare));
  return FALSE;
}

gboolean
conform_window_save_to(ConformWindow *self, const char *dir, GError **error)
{
  g_return_val_if_fail(CONFORM_IS_WINDOW(self), FALSE);
  g_free(self->last_error);
  self->last_error = NULL;
  gboolean was_dirty = TRUE;
  save_to_dir(self, dir);
  while (self->dirty == was_dirty && !self->last_error)
    g_main_context_iteration(NULL, TRUE);
  if (self->last_error) {
    g_set_error_literal(error, CONFORM_ERROR, CONFORM_ERROR_IO, self->last_error);
    return FALSE;
  }
  return TRUE;
}

gboolean
conform_window_export(ConformWindow *self, const char *file_name, const char *path, int width, int height,
                      GError **error)
{
  g_return_val_if_fail(CONFORM_IS_WINDOW(self), FALSE);
  for (guint i = 0; i < G_N_ELEMENTS(export_names); i++)
    if (g_strcmp0(export_names[i], file_name) == 0)
      return export_to(self, i, path, width, height, error);
  g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_USAGE, "nothing to export as '%s'", file_name);
  return FALSE;
}
