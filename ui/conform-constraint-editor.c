#define G_LOG_DOMAIN "conform"

#include "conform-constraint-editor.h"

#include "conform-constraint-check.h"

/* Typing validates this long after the last keystroke. */
#define VALIDATE_DELAY_MS 150

struct _ConformConstraintEditor {
  GtkWidget parent_instance;

  /* Model: m rows x (dim + 1) strings, row-major, b last. The grid's
   * entries mirror it when it is small enough to show. */
  int dim;
  char **names;      /* dim column names */
  GPtrArray *cells;  /* char *, owned */
  int m;

  ConformConstraintCheck check;
  guint validate_id; /* pending debounced validation */
  gboolean syncing;  /* setting entry texts from the model: ignore "changed" */
  int current_row;   /* row of the last focused cell, -1 if none */
  char *message;     /* last load/save/paste message */
  gboolean message_is_error;

  gboolean grid_mode;
  GPtrArray *entries;    /* GtkEntry *, m * (dim + 1), in grid mode */
  GPtrArray *row_labels; /* GtkLabel *, m, in grid mode */

  GtkWidget *toolbar;
  GtkWidget *add_button, *remove_button, *load_button, *save_button, *paste_button, *apply_button;
  GtkWidget *scroller, *grid, *notice;
  GtkWidget *summary_icon, *summary_label, *message_label;

  GtkFileChooserNative *chooser;
  GCancellable *cancellable; /* clipboard reads */
};

G_DEFINE_FINAL_TYPE(ConformConstraintEditor, conform_constraint_editor, GTK_TYPE_WIDGET)

enum { SIGNAL_APPLIED, N_SIGNALS };
static guint signals[N_SIGNALS];

/* ------------------------------------------------------------------------ */
/* Model helpers                                                            */

static int
n_cols(ConformConstraintEditor *self)
{
  return self->dim + 1;
}

static char *
cell_at(ConformConstraintEditor *self, int row, int col)
{
  return g_ptr_array_index(self->cells, (guint)(row * n_cols(self) + col));
}

static void
model_set(ConformConstraintEditor *self, int row, int col, const char *text)
{
  char **slot = (char **)&g_ptr_array_index(self->cells, (guint)(row * n_cols(self) + col));
  g_free(*slot);
  *slot = g_strdup(text ? text : "");
}

static void
model_append_row(ConformConstraintEditor *self)
{
  for (int j = 0; j < n_cols(self); j++)
    g_ptr_array_add(self->cells, g_strdup(""));
  self->m++;
}

static void
model_reset(ConformConstraintEditor *self, int rows)
{
  g_ptr_array_set_size(self->cells, 0);
  self->m = 0;
  for (int i = 0; i < rows; i++)
    model_append_row(self);
}

static gboolean
row_is_blank(ConformConstraintEditor *self, int row)
{
  for (int j = 0; j < n_cols(self); j++)
    for (const char *p = cell_at(self, row, j); *p; p++)
      if (!g_ascii_isspace(*p))
        return FALSE;
  return TRUE;
}

static const char *
column_name(ConformConstraintEditor *self, int col)
{
  return col < self->dim ? self->names[col] : "b";
}

/* ------------------------------------------------------------------------ */
/* Messages and validation                                                  */

static void
set_message(ConformConstraintEditor *self, const char *text, gboolean is_error)
{
  g_free(self->message);
  self->message = g_strdup(text);
  self->message_is_error = is_error;
  gtk_label_set_text(GTK_LABEL(self->message_label), text ? text : "");
  gtk_widget_set_visible(self->message_label, text != NULL);
  if (is_error) {
    gtk_widget_add_css_class(self->message_label, "error");
    gtk_widget_remove_css_class(self->message_label, "dim-label");
  } else {
    gtk_widget_remove_css_class(self->message_label, "error");
    gtk_widget_add_css_class(self->message_label, "dim-label");
  }
}

static void
set_classes(GtkWidget *w, gboolean error, gboolean redundant)
{
  if (error)
    gtk_widget_add_css_class(w, "cell-error");
  else
    gtk_widget_remove_css_class(w, "cell-error");
  if (redundant)
    gtk_widget_add_css_class(w, "cell-redundant");
  else
    gtk_widget_remove_css_class(w, "cell-redundant");
}

/* Marks cells and row numbers from self->check. */
static void
update_grid_marks(ConformConstraintEditor *self)
{
  if (!self->grid_mode)
    return;
  const ConformConstraintCheck *c = &self->check;
  for (int i = 0; i < self->m; i++) {
    /* A brand-new empty row is named in the summary (and by a red row
     * number), not painted red; an all-empty grid is not an error at all. */
    gboolean blank = row_is_blank(self, i);
    const char *note = conform_constraint_check_row_note(c, i);
    const char *row_error = c->blank ? NULL : conform_constraint_check_cell_error(c, i, -1);
    for (int j = 0; j < n_cols(self); j++) {
      GtkWidget *e = g_ptr_array_index(self->entries, (guint)(i * n_cols(self) + j));
      const char *msg = conform_constraint_check_cell_error(c, i, j);
      set_classes(e, msg != NULL && !blank, note != NULL && msg == NULL);
      gtk_widget_set_tooltip_text(e, msg ? msg : note);
    }
    GtkWidget *label = g_ptr_array_index(self->row_labels, (guint)i);
    const char *const kinds[] = {"error", "warning"};
    gboolean on[] = {row_error != NULL, note != NULL};
    for (int k = 0; k < 2; k++) {
      if (on[k])
        gtk_widget_add_css_class(label, kinds[k]);
      else
        gtk_widget_remove_css_class(label, kinds[k]);
    }
    gtk_widget_set_tooltip_text(label, row_error ? row_error : note);
  }
}

static void
update_summary(ConformConstraintEditor *self)
{
  const ConformConstraintCheck *c = &self->check;
  GtkWidget *l = self->summary_label;
  const char *icon;
  gtk_widget_remove_css_class(l, "error");
  gtk_widget_remove_css_class(l, "warning");
  gtk_widget_remove_css_class(l, "dim-label");
  gtk_widget_remove_css_class(self->summary_icon, "error");
  gtk_widget_remove_css_class(self->summary_icon, "warning");
  if (self->dim < 1) {
    icon = "document-edit-symbolic";
    gtk_widget_add_css_class(l, "dim-label");
    gtk_image_set_from_icon_name(GTK_IMAGE(self->summary_icon), icon);
    gtk_label_set_text(GTK_LABEL(l), "No data yet: the editor needs the data's dimension.");
    gtk_widget_set_sensitive(self->apply_button, FALSE);
    gtk_widget_set_sensitive(self->save_button, FALSE);
    return;
  }
  if (c->blank) {
    icon = "document-edit-symbolic";
    gtk_widget_add_css_class(l, "dim-label");
  } else if (!c->usable) {
    icon = "dialog-error-symbolic";
    gtk_widget_add_css_class(l, "error");
    gtk_widget_add_css_class(self->summary_icon, "error");
  } else if (c->warning) {
    icon = "dialog-warning-symbolic";
    gtk_widget_add_css_class(l, "warning");
    gtk_widget_add_css_class(self->summary_icon, "warning");
  } else {
    icon = "emblem-ok-symbolic";
  }
  gtk_image_set_from_icon_name(GTK_IMAGE(self->summary_icon), icon);
  gtk_label_set_text(GTK_LABEL(l), c->summary ? c->summary : "");

  gtk_widget_set_sensitive(self->apply_button, c->usable);
  if (c->usable) {
    gtk_widget_set_tooltip_text(self->apply_button, c->report.n_redundant > 0
                                                        ? "Use this constraint (redundant rows are dropped)"
                                                        : "Use this constraint");
  } else {
    g_autofree char *why = g_strdup_printf("Cannot apply: %s", c->summary ? c->summary : "not checked");
    gtk_widget_set_tooltip_text(self->apply_button, why);
  }
  gtk_widget_set_sensitive(self->save_button, c->savable);
  gtk_widget_set_tooltip_text(self->save_button, c->savable ? "Save the constraint as a text file"
                                                            : "Fix the cells before saving");
}

void
conform_constraint_editor_validate_now(ConformConstraintEditor *self)
{
  g_return_if_fail(CONFORM_IS_CONSTRAINT_EDITOR(self));
  g_clear_handle_id(&self->validate_id, g_source_remove);
  conform_constraint_check_cells(&self->check, (const char *const *)self->cells->pdata, self->m, self->dim,
                                 self->dim);
  update_grid_marks(self);
  update_summary(self);
}

static gboolean
validate_timeout_cb(gpointer data)
{
  ConformConstraintEditor *self = data;
  self->validate_id = 0;
  conform_constraint_editor_validate_now(self);
  return G_SOURCE_REMOVE;
}

static void
schedule_validation(ConformConstraintEditor *self)
{
  g_clear_handle_id(&self->validate_id, g_source_remove);
  self->validate_id = g_timeout_add(VALIDATE_DELAY_MS, validate_timeout_cb, self);
}

static void
flush(ConformConstraintEditor *self)
{
  if (self->validate_id)
    conform_constraint_editor_validate_now(self);
}

/* ------------------------------------------------------------------------ */
/* Grid                                                                     */

static void
cell_changed_cb(GtkEditable *editable, ConformConstraintEditor *self)
{
  if (self->syncing)
    return;
  int row = GPOINTER_TO_INT(g_object_get_data(G_OBJECT(editable), "cell-row"));
  int col = GPOINTER_TO_INT(g_object_get_data(G_OBJECT(editable), "cell-col"));
  model_set(self, row, col, gtk_editable_get_text(editable));
  if (self->message)
    set_message(self, NULL, FALSE);
  schedule_validation(self);
}

static void
focus_cell(ConformConstraintEditor *self, int row, int col)
{
  GtkWidget *e = conform_constraint_editor_get_cell_widget(self, row, col);
  if (e)
    gtk_widget_grab_focus(e);
}

/* Enter: the next cell (spreadsheet order); in the very last cell, a new row. */
static void
cell_activate_cb(GtkEntry *entry, ConformConstraintEditor *self)
{
  int row = GPOINTER_TO_INT(g_object_get_data(G_OBJECT(entry), "cell-row"));
  int col = GPOINTER_TO_INT(g_object_get_data(G_OBJECT(entry), "cell-col"));
  conform_constraint_editor_validate_now(self);
  if (col + 1 < n_cols(self)) {
    focus_cell(self, row, col + 1);
  } else if (row + 1 < self->m) {
    focus_cell(self, row + 1, 0);
  } else {
    conform_constraint_editor_add_row(self);
    focus_cell(self, self->m - 1, 0);
  }
}

static void
cell_focus_enter_cb(GtkEventControllerFocus *ctl, ConformConstraintEditor *self)
{
  GtkWidget *w = gtk_event_controller_get_widget(GTK_EVENT_CONTROLLER(ctl));
  self->current_row = GPOINTER_TO_INT(g_object_get_data(G_OBJECT(w), "cell-row"));
}

static GtkWidget *
make_header(const char *text, const char *tooltip)
{
  GtkWidget *l = gtk_label_new(text);
  gtk_label_set_ellipsize(GTK_LABEL(l), PANGO_ELLIPSIZE_END);
  gtk_label_set_max_width_chars(GTK_LABEL(l), 10);
  gtk_widget_add_css_class(l, "constraint-header");
  gtk_widget_set_tooltip_text(l, tooltip);
  return l;
}

static GtkWidget *
make_entry(ConformConstraintEditor *self, int row, int col)
{
  GtkWidget *e = gtk_entry_new();
  gtk_editable_set_width_chars(GTK_EDITABLE(e), 6);
  gtk_editable_set_max_width_chars(GTK_EDITABLE(e), 9);
  gtk_editable_set_alignment(GTK_EDITABLE(e), 1.0f);
  gtk_entry_set_input_purpose(GTK_ENTRY(e), GTK_INPUT_PURPOSE_NUMBER);
  gtk_widget_add_css_class(e, "numeric");
  g_object_set_data(G_OBJECT(e), "cell-row", GINT_TO_POINTER(row));
  g_object_set_data(G_OBJECT(e), "cell-col", GINT_TO_POINTER(col));
  g_autofree char *label = g_strdup_printf("Row %d, %s", row + 1, column_name(self, col));
  gtk_accessible_update_property(GTK_ACCESSIBLE(e), GTK_ACCESSIBLE_PROPERTY_LABEL, label, -1);
  g_signal_connect(e, "changed", G_CALLBACK(cell_changed_cb), self);
  g_signal_connect(e, "activate", G_CALLBACK(cell_activate_cb), self);
  GtkEventController *focus = gtk_event_controller_focus_new();
  g_signal_connect(focus, "enter", G_CALLBACK(cell_focus_enter_cb), self);
  gtk_widget_add_controller(e, focus);
  return e;
}

/* Grid columns: 0 row number, 1..dim coefficients, dim + 1 "=", dim + 2 b. */
static int
grid_column(ConformConstraintEditor *self, int col)
{
  return col < self->dim ? col + 1 : self->dim + 2;
}

static void
grid_append_row(ConformConstraintEditor *self)
{
  int i = (int)self->row_labels->len;
  char num[16];
  g_snprintf(num, sizeof num, "%d", i + 1);
  GtkWidget *label = gtk_label_new(num);
  gtk_widget_add_css_class(label, "dim-label");
  gtk_widget_add_css_class(label, "constraint-row-number");
  gtk_label_set_xalign(GTK_LABEL(label), 1.0f);
  gtk_grid_attach(GTK_GRID(self->grid), label, 0, i + 1, 1, 1);
  g_ptr_array_add(self->row_labels, label);
  for (int j = 0; j < n_cols(self); j++) {
    GtkWidget *e = make_entry(self, i, j);
    self->syncing = TRUE;
    gtk_editable_set_text(GTK_EDITABLE(e), cell_at(self, i, j));
    self->syncing = FALSE;
    gtk_grid_attach(GTK_GRID(self->grid), e, grid_column(self, j), i + 1, 1, 1);
    g_ptr_array_add(self->entries, e);
  }
  GtkWidget *eq = gtk_label_new("=");
  gtk_widget_add_css_class(eq, "constraint-equals");
  gtk_grid_attach(GTK_GRID(self->grid), eq, self->dim + 1, i + 1, 1, 1);
}

/* Rebuilds the whole grid (and the notice) from the model. */
static void
rebuild_grid(ConformConstraintEditor *self)
{
  GtkWidget *child;
  while ((child = gtk_widget_get_first_child(self->grid)))
    gtk_grid_remove(GTK_GRID(self->grid), child);
  g_ptr_array_set_size(self->entries, 0);
  g_ptr_array_set_size(self->row_labels, 0);
  self->current_row = -1;

  self->grid_mode = self->dim >= 1 && self->dim <= CONFORM_CONSTRAINT_EDITOR_MAX_COLUMNS &&
                    self->m * n_cols(self) <= CONFORM_CONSTRAINT_EDITOR_MAX_CELLS;
  gtk_widget_set_visible(self->scroller, self->grid_mode);
  gtk_widget_set_visible(self->notice, !self->grid_mode);
  gtk_widget_set_sensitive(self->add_button, self->grid_mode);
  gtk_widget_set_sensitive(self->remove_button, self->grid_mode);
  if (!self->grid_mode) {
    g_autofree char *text = NULL;
    if (self->dim < 1)
      text = g_strdup("No data dimension yet: choose a data set first.");
    else if (self->dim > CONFORM_CONSTRAINT_EDITOR_MAX_COLUMNS)
      text = g_strdup_printf("%d columns are too many to edit as a grid: load a file "
                             "(one row per constraint: %d coefficients, '|', then b). "
                             "Save, Paste and Apply still work.",
                             self->dim, self->dim);
    else
      text = g_strdup_printf("%d rows are too many to edit as a grid: edit the file and load it again. "
                             "Save, Paste and Apply still work.",
                             self->m);
    gtk_label_set_text(GTK_LABEL(self->notice), text);
    return;
  }

  for (int j = 0; j < n_cols(self); j++) {
    const char *name = column_name(self, j);
    g_autofree char *tip = j < self->dim ? g_strdup_printf("Coefficient of %s", name)
                                         : g_strdup("Right-hand side b");
    gtk_grid_attach(GTK_GRID(self->grid), make_header(name, tip), grid_column(self, j), 0, 1, 1);
  }
  for (int i = 0; i < self->m; i++)
    grid_append_row(self);
}

/* ------------------------------------------------------------------------ */
/* Toolbar actions                                                          */

static void
add_clicked_cb(GtkButton *b, ConformConstraintEditor *self)
{
  conform_constraint_editor_add_row(self);
  focus_cell(self, self->m - 1, 0);
}

static void
remove_clicked_cb(GtkButton *b, ConformConstraintEditor *self)
{
  conform_constraint_editor_remove_row(self, -1);
}

static void
apply_clicked_cb(GtkButton *b, ConformConstraintEditor *self)
{
  conform_constraint_editor_apply(self);
}

static GtkWindow *
parent_window(ConformConstraintEditor *self)
{
  GtkRoot *root = gtk_widget_get_root(GTK_WIDGET(self));
  return GTK_IS_WINDOW(root) ? GTK_WINDOW(root) : NULL;
}

static void
chooser_response_cb(GtkNativeDialog *dialog, int response, ConformConstraintEditor *self)
{
  gboolean save = gtk_file_chooser_get_action(GTK_FILE_CHOOSER(dialog)) == GTK_FILE_CHOOSER_ACTION_SAVE;
  g_autoptr(GFile) file = response == GTK_RESPONSE_ACCEPT ? gtk_file_chooser_get_file(GTK_FILE_CHOOSER(dialog))
                                                          : NULL;
  g_autofree char *path = file ? g_file_get_path(file) : NULL;
  if (file && !path)
    set_message(self, "Only local files can be used.", TRUE);
  else if (path && save)
    conform_constraint_editor_save_file(self, path, NULL);
  else if (path)
    conform_constraint_editor_load_file(self, path, NULL);
  gtk_native_dialog_destroy(dialog);
  g_clear_object(&self->chooser);
}

static void
run_chooser(ConformConstraintEditor *self, gboolean save)
{
  if (self->chooser)
    return;
  self->chooser = gtk_file_chooser_native_new(save ? "Save Constraint" : "Load Constraint", parent_window(self),
                                              save ? GTK_FILE_CHOOSER_ACTION_SAVE : GTK_FILE_CHOOSER_ACTION_OPEN,
                                              save ? "_Save" : "_Open", "_Cancel");
  gtk_native_dialog_set_modal(GTK_NATIVE_DIALOG(self->chooser), TRUE);
  GtkFileFilter *filter = gtk_file_filter_new();
  gtk_file_filter_set_name(filter, "Constraint files (A x = b)");
  gtk_file_filter_add_pattern(filter, "*.txt");
  gtk_file_filter_add_pattern(filter, "*.csv");
  gtk_file_filter_add_pattern(filter, "*.constraint");
  gtk_file_chooser_add_filter(GTK_FILE_CHOOSER(self->chooser), filter);
  g_object_unref(filter);
  GtkFileFilter *all = gtk_file_filter_new();
  gtk_file_filter_set_name(all, "All files");
  gtk_file_filter_add_pattern(all, "*");
  gtk_file_chooser_add_filter(GTK_FILE_CHOOSER(self->chooser), all);
  g_object_unref(all);
  if (save)
    gtk_file_chooser_set_current_name(GTK_FILE_CHOOSER(self->chooser), "constraint.txt");
  g_signal_connect(self->chooser, "response", G_CALLBACK(chooser_response_cb), self);
  gtk_native_dialog_show(GTK_NATIVE_DIALOG(self->chooser));
}

static void
load_clicked_cb(GtkButton *b, ConformConstraintEditor *self)
{
  run_chooser(self, FALSE);
}

static void
save_clicked_cb(GtkButton *b, ConformConstraintEditor *self)
{
  run_chooser(self, TRUE);
}

static void
paste_ready_cb(GObject *source, GAsyncResult *result, gpointer data)
{
  g_autoptr(ConformConstraintEditor) self = data;
  g_autoptr(GError) error = NULL;
  g_autofree char *text = gdk_clipboard_read_text_finish(GDK_CLIPBOARD(source), result, &error);
  if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;
  if (!text) {
    g_autofree char *msg = g_strdup_printf("Nothing to paste: %s",
                                           error ? error->message : "the clipboard holds no text");
    set_message(self, msg, TRUE);
    return;
  }
  conform_constraint_editor_paste_text(self, text, NULL);
}

static void
paste_clicked_cb(GtkButton *b, ConformConstraintEditor *self)
{
  GdkClipboard *clipboard = gtk_widget_get_clipboard(GTK_WIDGET(self));
  gdk_clipboard_read_text_async(clipboard, self->cancellable, paste_ready_cb, g_object_ref(self));
}

static GtkWidget *
tool_button(const char *icon, const char *label, const char *tooltip, GCallback cb, gpointer self)
{
  GtkWidget *b = gtk_button_new();
  GtkWidget *box = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 4);
  gtk_box_append(GTK_BOX(box), gtk_image_new_from_icon_name(icon));
  GtkWidget *l = gtk_label_new_with_mnemonic(label);
  gtk_label_set_mnemonic_widget(GTK_LABEL(l), b);
  gtk_box_append(GTK_BOX(box), l);
  gtk_button_set_child(GTK_BUTTON(b), box);
  gtk_widget_set_tooltip_text(b, tooltip);
  g_signal_connect(b, "clicked", cb, self);
  return b;
}

/* ------------------------------------------------------------------------ */
/* GObject                                                                  */

static void
conform_constraint_editor_dispose(GObject *object)
{
  ConformConstraintEditor *self = CONFORM_CONSTRAINT_EDITOR(object);
  g_clear_handle_id(&self->validate_id, g_source_remove);
  g_cancellable_cancel(self->cancellable);
  if (self->chooser) {
    g_signal_handlers_disconnect_by_data(self->chooser, self);
    gtk_native_dialog_destroy(GTK_NATIVE_DIALOG(self->chooser));
    g_clear_object(&self->chooser);
  }
  GtkWidget *child;
  while ((child = gtk_widget_get_first_child(GTK_WIDGET(self))))
    gtk_widget_unparent(child);
  G_OBJECT_CLASS(conform_constraint_editor_parent_class)->dispose(object);
}

static void
conform_constraint_editor_finalize(GObject *object)
{
  ConformConstraintEditor *self = CONFORM_CONSTRAINT_EDITOR(object);
  g_strfreev(self->names);
  g_ptr_array_unref(self->cells);
  g_ptr_array_unref(self->entries);
  g_ptr_array_unref(self->row_labels);
  conform_constraint_check_clear(&self->check);
  g_free(self->message);
  g_clear_object(&self->cancellable);
  G_OBJECT_CLASS(conform_constraint_editor_parent_class)->finalize(object);
}

static void
conform_constraint_editor_class_init(ConformConstraintEditorClass *klass)
{
  GObjectClass *oc = G_OBJECT_CLASS(klass);
  GtkWidgetClass *wc = GTK_WIDGET_CLASS(klass);
  oc->dispose = conform_constraint_editor_dispose;
  oc->finalize = conform_constraint_editor_finalize;
  gtk_widget_class_set_layout_manager_type(wc, GTK_TYPE_BOX_LAYOUT);
  gtk_widget_class_set_css_name(wc, "constraint-editor");
  /* void handler(ConformConstraintEditor *, gpointer constraint (const CfConstraint *), gpointer user) */
  signals[SIGNAL_APPLIED] = g_signal_new("applied", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                                         NULL, G_TYPE_NONE, 1, G_TYPE_POINTER);
}

static void
conform_constraint_editor_init(ConformConstraintEditor *self)
{
  GtkWidget *w = GTK_WIDGET(self);
  GtkLayoutManager *layout = gtk_widget_get_layout_manager(w);
  gtk_orientable_set_orientation(GTK_ORIENTABLE(layout), GTK_ORIENTATION_VERTICAL);
  gtk_box_layout_set_spacing(GTK_BOX_LAYOUT(layout), 6);

  self->cells = g_ptr_array_new_with_free_func(g_free);
  self->entries = g_ptr_array_new();
  self->row_labels = g_ptr_array_new();
  self->names = g_new0(char *, 1);
  self->current_row = -1;
  self->cancellable = g_cancellable_new();
  conform_constraint_check_init(&self->check);

  self->toolbar = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 6);
  self->add_button = tool_button("list-add-symbolic", "_Add Row", "Add an empty constraint row (Enter in the last "
                                 "cell does the same)", G_CALLBACK(add_clicked_cb), self);
  self->remove_button = tool_button("list-remove-symbolic", "_Remove Row",
                                    "Remove the row of the focused cell, or the last row",
                                    G_CALLBACK(remove_clicked_cb), self);
  self->load_button = tool_button("document-open-symbolic", "_Load…", "Load a constraint file (A | b per line)",
                                  G_CALLBACK(load_clicked_cb), self);
  self->save_button = tool_button("document-save-symbolic", "_Save…", "Save the constraint as a text file",
                                  G_CALLBACK(save_clicked_cb), self);
  self->paste_button = tool_button("edit-paste-symbolic", "_Paste",
                                   "Replace the rows with cells copied from a spreadsheet (tab separated, b last)",
                                   G_CALLBACK(paste_clicked_cb), self);
  self->apply_button = gtk_button_new_with_mnemonic("A_pply");
  gtk_widget_add_css_class(self->apply_button, "suggested-action");
  g_signal_connect(self->apply_button, "clicked", G_CALLBACK(apply_clicked_cb), self);
  GtkWidget *sep = gtk_separator_new(GTK_ORIENTATION_VERTICAL);
  GtkWidget *spacer = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 0);
  gtk_widget_set_hexpand(spacer, TRUE);
  gtk_box_append(GTK_BOX(self->toolbar), self->add_button);
  gtk_box_append(GTK_BOX(self->toolbar), self->remove_button);
  gtk_box_append(GTK_BOX(self->toolbar), sep);
  gtk_box_append(GTK_BOX(self->toolbar), self->load_button);
  gtk_box_append(GTK_BOX(self->toolbar), self->save_button);
  gtk_box_append(GTK_BOX(self->toolbar), self->paste_button);
  gtk_box_append(GTK_BOX(self->toolbar), spacer);
  gtk_box_append(GTK_BOX(self->toolbar), self->apply_button);
  gtk_widget_set_parent(self->toolbar, w);

  self->grid = gtk_grid_new();
  gtk_grid_set_row_spacing(GTK_GRID(self->grid), 4);
  gtk_grid_set_column_spacing(GTK_GRID(self->grid), 4);
  gtk_widget_add_css_class(self->grid, "constraint-grid");
  gtk_widget_set_halign(self->grid, GTK_ALIGN_START);
  gtk_widget_set_valign(self->grid, GTK_ALIGN_START);
  /* Room for the overlay scrollbars, so they never cover a cell. (Classic
   * scrollbars are not counted in the propagated natural height with the
   * AUTOMATIC policy and would clip the last row.) */
  gtk_widget_set_margin_bottom(self->grid, 10);
  gtk_widget_set_margin_end(self->grid, 10);
  self->scroller = gtk_scrolled_window_new();
  gtk_scrolled_window_set_policy(GTK_SCROLLED_WINDOW(self->scroller), GTK_POLICY_AUTOMATIC, GTK_POLICY_AUTOMATIC);
  gtk_scrolled_window_set_propagate_natural_height(GTK_SCROLLED_WINDOW(self->scroller), TRUE);
  gtk_scrolled_window_set_max_content_height(GTK_SCROLLED_WINDOW(self->scroller), 360);
  gtk_scrolled_window_set_min_content_width(GTK_SCROLLED_WINDOW(self->scroller), 240);
  gtk_scrolled_window_set_child(GTK_SCROLLED_WINDOW(self->scroller), self->grid);
  gtk_widget_set_parent(self->scroller, w);

  self->notice = gtk_label_new(NULL);
  gtk_label_set_wrap(GTK_LABEL(self->notice), TRUE);
  gtk_label_set_xalign(GTK_LABEL(self->notice), 0.0f);
  gtk_widget_add_css_class(self->notice, "constraint-notice");
  gtk_widget_set_visible(self->notice, FALSE);
  gtk_widget_set_parent(self->notice, w);

  GtkWidget *summary_box = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 6);
  self->summary_icon = gtk_image_new();
  gtk_widget_set_valign(self->summary_icon, GTK_ALIGN_START);
  self->summary_label = gtk_label_new(NULL);
  gtk_label_set_wrap(GTK_LABEL(self->summary_label), TRUE);
  gtk_label_set_wrap_mode(GTK_LABEL(self->summary_label), PANGO_WRAP_WORD_CHAR);
  gtk_label_set_xalign(GTK_LABEL(self->summary_label), 0.0f);
  gtk_widget_set_hexpand(self->summary_label, TRUE);
  gtk_widget_add_css_class(self->summary_label, "constraint-summary");
  gtk_box_append(GTK_BOX(summary_box), self->summary_icon);
  gtk_box_append(GTK_BOX(summary_box), self->summary_label);
  gtk_widget_set_parent(summary_box, w);

  self->message_label = gtk_label_new(NULL);
  gtk_label_set_wrap(GTK_LABEL(self->message_label), TRUE);
  gtk_label_set_wrap_mode(GTK_LABEL(self->message_label), PANGO_WRAP_WORD_CHAR);
  gtk_label_set_xalign(GTK_LABEL(self->message_label), 0.0f);
  gtk_label_set_selectable(GTK_LABEL(self->message_label), TRUE);
  gtk_widget_add_css_class(self->message_label, "constraint-message");
  gtk_widget_set_visible(self->message_label, FALSE);
  gtk_widget_set_parent(self->message_label, w);

  model_reset(self, 1);
  rebuild_grid(self);
  conform_constraint_editor_validate_now(self);
}

/* ------------------------------------------------------------------------ */
/* Public API                                                               */

GtkWidget *
conform_constraint_editor_new(void)
{
  return g_object_new(CONFORM_TYPE_CONSTRAINT_EDITOR, NULL);
}

void
conform_constraint_editor_set_dim(ConformConstraintEditor *self, int dim, const char *const *names)
{
  g_return_if_fail(CONFORM_IS_CONSTRAINT_EDITOR(self));
  g_return_if_fail(dim >= 0 && dim <= CF_CONSTRAINT_MAX_COLS);
  gboolean same = dim == self->dim;
  g_strfreev(self->names);
  self->names = g_new0(char *, (gsize)dim + 1);
  for (int j = 0; j < dim; j++)
    self->names[j] = names && names[j] ? g_strdup(names[j]) : g_strdup_printf("x%d", j);
  self->dim = dim;
  if (!same)
    model_reset(self, 1);
  rebuild_grid(self);
  conform_constraint_editor_validate_now(self);
}

int
conform_constraint_editor_get_dim(ConformConstraintEditor *self)
{
  g_return_val_if_fail(CONFORM_IS_CONSTRAINT_EDITOR(self), 0);
  return self->dim;
}

void
conform_constraint_editor_set_constraint(ConformConstraintEditor *self, const CfConstraint *c)
{
  g_return_if_fail(CONFORM_IS_CONSTRAINT_EDITOR(self));
  int m = c ? c->m : 0;
  g_return_if_fail(m == 0 || (c->A && c->b && c->n >= 1));
  if (m > 0 && c->n != self->dim) {
    if (self->dim > 0) {
      g_critical("conform_constraint_editor_set_constraint: %d columns, but the dimension is %d", c->n, self->dim);
      return;
    }
    conform_constraint_editor_set_dim(self, c->n, NULL);
  }
  model_reset(self, m > 0 ? m : 1);
  char buf[G_ASCII_DTOSTR_BUF_SIZE];
  for (int i = 0; i < m; i++) {
    for (int j = 0; j < c->n; j++)
      model_set(self, i, j, conform_constraint_format_value(c->A[(gsize)i * (gsize)c->n + (gsize)j], buf));
    model_set(self, i, c->n, conform_constraint_format_value(c->b[i], buf));
  }
  rebuild_grid(self);
  conform_constraint_editor_validate_now(self);
}

int
conform_constraint_editor_get_n_rows(ConformConstraintEditor *self)
{
  g_return_val_if_fail(CONFORM_IS_CONSTRAINT_EDITOR(self), 0);
  return self->m;
}

void
conform_constraint_editor_add_row(ConformConstraintEditor *self)
{
  g_return_if_fail(CONFORM_IS_CONSTRAINT_EDITOR(self));
  if (self->m >= CF_CONSTRAINT_MAX_ROWS)
    return;
  model_append_row(self);
  if (self->grid_mode && self->m * n_cols(self) <= CONFORM_CONSTRAINT_EDITOR_MAX_CELLS)
    grid_append_row(self);
  else
    rebuild_grid(self);
  conform_constraint_editor_validate_now(self);
}

void
conform_constraint_editor_remove_row(ConformConstraintEditor *self, int row)
{
  g_return_if_fail(CONFORM_IS_CONSTRAINT_EDITOR(self));
  g_return_if_fail(row < self->m);
  if (row < 0)
    row = self->current_row >= 0 && self->current_row < self->m ? self->current_row : self->m - 1;
  if (self->m <= 1) {
    model_reset(self, 1);
  } else {
    g_ptr_array_remove_range(self->cells, (guint)(row * n_cols(self)), (guint)n_cols(self));
    self->m--;
  }
  rebuild_grid(self);
  conform_constraint_editor_validate_now(self);
  focus_cell(self, MIN(row, self->m - 1), 0);
}

void
conform_constraint_editor_set_cell(ConformConstraintEditor *self, int row, int col, const char *text)
{
  g_return_if_fail(CONFORM_IS_CONSTRAINT_EDITOR(self));
  g_return_if_fail(row >= 0 && row < self->m && col >= 0 && col < n_cols(self));
  model_set(self, row, col, text);
  if (self->message)
    set_message(self, NULL, FALSE);
  GtkWidget *e = conform_constraint_editor_get_cell_widget(self, row, col);
  if (e) {
    self->syncing = TRUE;
    gtk_editable_set_text(GTK_EDITABLE(e), text ? text : "");
    self->syncing = FALSE;
  }
  conform_constraint_editor_validate_now(self);
}

const char *
conform_constraint_editor_get_cell(ConformConstraintEditor *self, int row, int col)
{
  g_return_val_if_fail(CONFORM_IS_CONSTRAINT_EDITOR(self), NULL);
  g_return_val_if_fail(row >= 0 && row < self->m && col >= 0 && col < n_cols(self), NULL);
  return cell_at(self, row, col);
}

GtkWidget *
conform_constraint_editor_get_cell_widget(ConformConstraintEditor *self, int row, int col)
{
  g_return_val_if_fail(CONFORM_IS_CONSTRAINT_EDITOR(self), NULL);
  if (!self->grid_mode || row < 0 || row >= self->m || col < 0 || col >= n_cols(self))
    return NULL;
  return g_ptr_array_index(self->entries, (guint)(row * n_cols(self) + col));
}

gboolean
conform_constraint_editor_get_grid_editable(ConformConstraintEditor *self)
{
  g_return_val_if_fail(CONFORM_IS_CONSTRAINT_EDITOR(self), FALSE);
  return self->grid_mode;
}

const char *
conform_constraint_editor_get_cell_error(ConformConstraintEditor *self, int row, int col)
{
  g_return_val_if_fail(CONFORM_IS_CONSTRAINT_EDITOR(self), NULL);
  flush(self);
  return conform_constraint_check_cell_error(&self->check, row, col);
}

const char *
conform_constraint_editor_get_summary(ConformConstraintEditor *self)
{
  g_return_val_if_fail(CONFORM_IS_CONSTRAINT_EDITOR(self), NULL);
  flush(self);
  return self->check.summary;
}

const char *
conform_constraint_editor_get_message(ConformConstraintEditor *self)
{
  g_return_val_if_fail(CONFORM_IS_CONSTRAINT_EDITOR(self), NULL);
  return self->message;
}

gboolean
conform_constraint_editor_can_apply(ConformConstraintEditor *self)
{
  g_return_val_if_fail(CONFORM_IS_CONSTRAINT_EDITOR(self), FALSE);
  flush(self);
  return self->check.usable;
}

gboolean
conform_constraint_editor_apply(ConformConstraintEditor *self)
{
  g_return_val_if_fail(CONFORM_IS_CONSTRAINT_EDITOR(self), FALSE);
  conform_constraint_editor_validate_now(self);
  if (!self->check.usable)
    return FALSE;
  g_signal_emit(self, signals[SIGNAL_APPLIED], 0, (gpointer)&self->check.constraint);
  return TRUE;
}

gboolean
conform_constraint_editor_load_file(ConformConstraintEditor *self, const char *path, GError **error)
{
  g_return_val_if_fail(CONFORM_IS_CONSTRAINT_EDITOR(self), FALSE);
  g_return_val_if_fail(path != NULL, FALSE);
  g_autoptr(GError) local = NULL;
  g_autofree char *base = g_filename_display_basename(path);
  CfConstraint c;
  cf_constraint_init(&c);
  if (!conform_constraint_load_file(path, &c, &local)) {
    g_autofree char *msg = g_strdup_printf("Could not load: %s (the rows above are unchanged)", local->message);
    set_message(self, msg, TRUE);
    g_propagate_error(error, g_steal_pointer(&local));
    return FALSE;
  }
  if (self->dim > 0 && c.n != self->dim) {
    g_set_error(&local, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "%s has %d column%s, but the data has dimension %d",
                base, c.n, c.n == 1 ? "" : "s", self->dim);
    g_autofree char *msg = g_strdup_printf("Could not load: %s (the rows above are unchanged)", local->message);
    set_message(self, msg, TRUE);
    g_propagate_error(error, g_steal_pointer(&local));
    cf_constraint_clear(&c);
    return FALSE;
  }
  conform_constraint_editor_set_constraint(self, &c);
  g_autofree char *msg = g_strdup_printf("Loaded %s: %d row%s.", base, c.m, c.m == 1 ? "" : "s");
  set_message(self, msg, FALSE);
  cf_constraint_clear(&c);
  return TRUE;
}

gboolean
conform_constraint_editor_save_file(ConformConstraintEditor *self, const char *path, GError **error)
{
  g_return_val_if_fail(CONFORM_IS_CONSTRAINT_EDITOR(self), FALSE);
  g_return_val_if_fail(path != NULL, FALSE);
  conform_constraint_editor_validate_now(self);
  g_autoptr(GError) local = NULL;
  if (!self->check.savable)
    g_set_error(&local, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "cannot save yet: %s", self->check.summary);
  else
    conform_constraint_save_file(path, &self->check.constraint, &local);
  if (local) {
    g_autofree char *msg = g_strdup_printf("Could not save: %s", local->message);
    set_message(self, msg, TRUE);
    g_propagate_error(error, g_steal_pointer(&local));
    return FALSE;
  }
  g_autofree char *base = g_filename_display_basename(path);
  g_autofree char *msg = g_strdup_printf("Saved %s.", base);
  set_message(self, msg, FALSE);
  return TRUE;
}

gboolean
conform_constraint_editor_paste_text(ConformConstraintEditor *self, const char *text, GError **error)
{
  g_return_val_if_fail(CONFORM_IS_CONSTRAINT_EDITOR(self), FALSE);
  g_return_val_if_fail(text != NULL, FALSE);
  g_autoptr(GError) local = NULL;
  g_auto(GStrv) cells = NULL;
  int m = 0, ncols = 0;
  if (conform_constraint_split_text(text, &cells, &m, &ncols, &local) && ncols != n_cols(self))
    g_set_error(&local, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                "the pasted rows have %d column%s; expected %d (%d coefficient%s, then b)", ncols,
                ncols == 1 ? "" : "s", n_cols(self), self->dim, self->dim == 1 ? "" : "s");
  if (local) {
    g_autofree char *msg = g_strdup_printf("Could not paste: %s (the rows above are unchanged)", local->message);
    set_message(self, msg, TRUE);
    g_propagate_error(error, g_steal_pointer(&local));
    return FALSE;
  }
  model_reset(self, m);
  for (int i = 0; i < m; i++)
    for (int j = 0; j < ncols; j++)
      model_set(self, i, j, cells[i * ncols + j]);
  rebuild_grid(self);
  conform_constraint_editor_validate_now(self);
  g_autofree char *msg = g_strdup_printf("Pasted %d row%s.", m, m == 1 ? "" : "s");
  set_message(self, msg, FALSE);
  return TRUE;
}
