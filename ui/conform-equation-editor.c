#define G_LOG_DOMAIN "conform-equation-editor"

#include "conform-equation-editor.h"

#include <stdio.h>
#include <string.h>

#include "conform-config.h"
#include "conform-mirror.h"

struct _ConformEquationEditor {
  GtkWidget parent_instance;

  GtkWidget *head, *hint, *scroller, *view, *status_label, *message_label, *matrix_note;
  GtkWidget *buttons, *clear_button, *apply_button;
  GtkTextBuffer *buffer;
  GtkTextTag *error_tag;

  int dim, matrix_rows;
  char *current; /* the run's equations */
  char *text;    /* the buffer's text at the last validation */
  guint validate_id;
  gboolean pending, loading;

  /* result of the last validation */
  char *status;
  gboolean is_error, is_empty;
  int n_eq, err_line, err_col;
  char *message;
};

enum { SIGNAL_APPLY, N_SIGNALS };
static guint signals[N_SIGNALS];

G_DEFINE_FINAL_TYPE(ConformEquationEditor, conform_equation_editor, GTK_TYPE_WIDGET)

/* ------------------------------------------------------------------------ */
/* Validation                                                               */

static gboolean
blank(const char *s)
{
  for (; s && *s; s++)
    if (!g_ascii_isspace(*s))
      return FALSE;
  return TRUE;
}

/* Buffer iterator of (line, col) as the parser counts them: ';' and '\n'
 * end a line, columns are bytes from 1. */
static void
iter_at(ConformEquationEditor *self, int line, int col, GtkTextIter *it)
{
  const char *t = self->text, *p = t;
  for (int l = 1; l < line && *p; p++)
    if (*p == '\n' || *p == ';')
      l++;
  for (int c = 1; c < col && *p && *p != '\n' && *p != ';'; c++)
    p++;
  glong off = g_utf8_pointer_to_offset(t, p);
  gtk_text_buffer_get_iter_at_offset(self->buffer, it, (int)off);
}

static void
mark_error(ConformEquationEditor *self)
{
  GtkTextIter a, b;
  gtk_text_buffer_get_bounds(self->buffer, &a, &b);
  gtk_text_buffer_remove_tag(self->buffer, self->error_tag, &a, &b);
  if (!self->is_error || self->err_line <= 0)
    return;
  iter_at(self, self->err_line, MAX(self->err_col, 1), &a);
  b = a;
  /* the token there: a name or number, else one character; at the end of a
   * line the character before */
  gunichar c = gtk_text_iter_get_char(&b);
  if (g_unichar_isalnum(c) || c == '_' || c == '.') {
    while (!gtk_text_iter_is_end(&b) &&
           (g_unichar_isalnum(gtk_text_iter_get_char(&b)) || gtk_text_iter_get_char(&b) == '_' ||
            gtk_text_iter_get_char(&b) == '.'))
      gtk_text_iter_forward_char(&b);
  } else if (c == 0 || c == '\n' || c == ';') {
    if (!gtk_text_iter_starts_line(&a))
      gtk_text_iter_backward_char(&a);
    else
      gtk_text_iter_forward_char(&b);
  } else {
    gtk_text_iter_forward_char(&b);
  }
  gtk_text_buffer_apply_tag(self->buffer, self->error_tag, &a, &b);
}

static void
set_message_label(ConformEquationEditor *self)
{
  gtk_widget_set_visible(self->message_label, self->message != NULL);
  gtk_label_set_text(GTK_LABEL(self->message_label), self->message ? self->message : "");
}

static void
update_status(ConformEquationEditor *self)
{
  /* (no status icon: an icon beside a wrapping label gives GTK 4.8 a
   * one-pixel height-for-width inconsistency, a critical warning) */
  GtkWidget *l = self->status_label;
  gtk_widget_remove_css_class(l, "error");
  gtk_widget_remove_css_class(l, "dim-label");
  if (self->is_error || self->is_empty)
    gtk_widget_add_css_class(l, self->is_error ? "error" : "dim-label");
  gtk_label_set_text(GTK_LABEL(l), self->status);
  gboolean ok = conform_equation_editor_can_apply(self);
  gtk_widget_set_sensitive(self->apply_button, ok);
  if (ok)
    gtk_widget_set_tooltip_text(self->apply_button,
                                self->is_empty ? "Remove the equations and start a fresh run (Reset)"
                                               : "Set constraint.equations for the next run and start it now (Reset); "
                                                 "training starts over");
  else {
    g_autofree char *why = g_strdup_printf("Cannot apply: %s", self->status);
    gtk_widget_set_tooltip_text(self->apply_button, why);
  }
  gtk_widget_set_sensitive(self->clear_button, !blank(self->text));
  mark_error(self);
}

static void
validate(ConformEquationEditor *self)
{
  g_clear_handle_id(&self->validate_id, g_source_remove);
  self->pending = FALSE;
  GtkTextIter a, b;
  gtk_text_buffer_get_bounds(self->buffer, &a, &b);
  g_free(self->text);
  self->text = gtk_text_buffer_get_text(self->buffer, &a, &b, FALSE);
  g_free(self->status);
  self->is_error = FALSE;
  self->is_empty = blank(self->text);
  self->n_eq = 0;
  self->err_line = self->err_col = 0;
  if (self->is_empty) {
    if (!blank(self->current))
      self->status = g_strdup("No equations: Apply & Reset removes the run's equations");
    else
      self->status = g_strdup("No equations: type one per line (or separate them with ';'), e.g. x0^2 + x1^2 = 1");
  } else {
    CfExprSet es;
    g_autoptr(GError) error = NULL;
    if (conform_equations_parse(self->text, self->dim > 0 ? self->dim : CF_EXPR_MAX_DIM, &es, &error)) {
      self->n_eq = es.n_eq;
      cf_expr_set_clear(&es);
      gboolean one = self->n_eq == 1;
      self->status = g_strdup_printf("%d equation%s · distance %s|lhs − rhs|%s", self->n_eq, one ? "" : "s",
                                     one ? "" : "sum ", self->dim > 0 ? "" : " · dimension not known yet");
    } else {
      self->is_error = TRUE;
      const char *msg = error->message;
      if (g_str_has_prefix(msg, "constraint.equations: "))
        msg += strlen("constraint.equations: ");
      int line = 0, col = 0, used = 0;
      if (sscanf(msg, "%d:%d: %n", &line, &col, &used) == 2 && used > 0) {
        self->err_line = line;
        self->err_col = col;
        self->status = g_strdup_printf("line %d, column %d: %s", line, col, msg + used);
      } else {
        self->status = g_strdup(msg);
      }
    }
  }
  update_status(self);
}

static gboolean
validate_timeout_cb(gpointer data)
{
  ConformEquationEditor *self = data;
  self->validate_id = 0;
  validate(self);
  return G_SOURCE_REMOVE;
}

static void
buffer_changed_cb(GtkTextBuffer *buffer, ConformEquationEditor *self)
{
  if (self->loading)
    return;
  g_clear_pointer(&self->message, g_free);
  set_message_label(self);
  self->pending = TRUE;
  g_clear_handle_id(&self->validate_id, g_source_remove);
  self->validate_id = g_timeout_add(CONFORM_EQUATION_EDITOR_DELAY_MS, validate_timeout_cb, self);
}

static void
apply_clicked_cb(GtkButton *b, ConformEquationEditor *self)
{
  conform_equation_editor_apply(self);
}

static void
clear_clicked_cb(GtkButton *b, ConformEquationEditor *self)
{
  conform_equation_editor_clear(self);
}

static void
update_matrix_note(ConformEquationEditor *self)
{
  if (self->matrix_rows > 0) {
    g_autofree char *t = g_strdup_printf("This experiment uses the matrix constraint A x = b (%d row%s): applying "
                                         "equations replaces it.",
                                         self->matrix_rows, self->matrix_rows == 1 ? "" : "s");
    gtk_label_set_text(GTK_LABEL(self->matrix_note), t);
  }
  gtk_widget_set_visible(self->matrix_note, self->matrix_rows > 0);
}

static void
update_hint(ConformEquationEditor *self)
{
  g_autofree char *range = self->dim == 1 ? g_strdup("x0")
                           : self->dim > 1 ? g_strdup_printf("x0..x%d", self->dim - 1)
                                           : g_strdup("x0, x1, …");
  g_autofree char *t = g_strdup_printf("over %s in raw data space · one per line or ';'-separated · + − * / ^, "
                                       "sqrt exp log sin cos abs, pi · '#' starts a comment",
                                       range);
  gtk_label_set_text(GTK_LABEL(self->hint), t);
}

/* ------------------------------------------------------------------------ */
/* Widget                                                                   */

static void
conform_equation_editor_dispose(GObject *object)
{
  ConformEquationEditor *self = CONFORM_EQUATION_EDITOR(object);
  g_clear_handle_id(&self->validate_id, g_source_remove);
  GtkWidget *child;
  while ((child = gtk_widget_get_first_child(GTK_WIDGET(self))))
    gtk_widget_unparent(child);
  G_OBJECT_CLASS(conform_equation_editor_parent_class)->dispose(object);
}

static void
conform_equation_editor_finalize(GObject *object)
{
  ConformEquationEditor *self = CONFORM_EQUATION_EDITOR(object);
  g_free(self->current);
  g_free(self->text);
  g_free(self->status);
  g_free(self->message);
  G_OBJECT_CLASS(conform_equation_editor_parent_class)->finalize(object);
}

static void
conform_equation_editor_class_init(ConformEquationEditorClass *klass)
{
  GObjectClass *oc = G_OBJECT_CLASS(klass);
  GtkWidgetClass *wc = GTK_WIDGET_CLASS(klass);
  oc->dispose = conform_equation_editor_dispose;
  oc->finalize = conform_equation_editor_finalize;
  gtk_widget_class_set_layout_manager_type(wc, GTK_TYPE_BOX_LAYOUT);
  gtk_widget_class_set_css_name(wc, "equation-editor");
  /* void handler(ConformEquationEditor *, const char *text, gpointer user) */
  signals[SIGNAL_APPLY] = g_signal_new("apply", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                                       G_TYPE_NONE, 1, G_TYPE_STRING);
}

static void
conform_equation_editor_init(ConformEquationEditor *self)
{
  GtkWidget *w = GTK_WIDGET(self);
  GtkLayoutManager *layout = gtk_widget_get_layout_manager(w);
  gtk_orientable_set_orientation(GTK_ORIENTABLE(layout), GTK_ORIENTATION_VERTICAL);
  gtk_box_layout_set_spacing(GTK_BOX_LAYOUT(layout), 4);
  self->text = g_strdup("");
  self->current = g_strdup("");

  GtkWidget *top = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 8);
  self->head = gtk_label_new(NULL);
  gtk_label_set_markup(GTK_LABEL(self->head), "<b>Non-linear constraint: equations</b>");
  gtk_label_set_xalign(GTK_LABEL(self->head), 0);
  self->hint = gtk_label_new(NULL);
  gtk_label_set_xalign(GTK_LABEL(self->hint), 0);
  gtk_label_set_ellipsize(GTK_LABEL(self->hint), PANGO_ELLIPSIZE_END);
  gtk_widget_set_hexpand(self->hint, TRUE);
  gtk_widget_add_css_class(self->hint, "dim-label");
  gtk_box_append(GTK_BOX(top), self->head);
  gtk_box_append(GTK_BOX(top), self->hint);
  gtk_widget_set_parent(top, w);
  update_hint(self);

  self->view = gtk_text_view_new();
  gtk_text_view_set_monospace(GTK_TEXT_VIEW(self->view), TRUE);
  gtk_text_view_set_wrap_mode(GTK_TEXT_VIEW(self->view), GTK_WRAP_WORD_CHAR);
  gtk_text_view_set_top_margin(GTK_TEXT_VIEW(self->view), 4);
  gtk_text_view_set_bottom_margin(GTK_TEXT_VIEW(self->view), 4);
  gtk_text_view_set_left_margin(GTK_TEXT_VIEW(self->view), 6);
  gtk_text_view_set_right_margin(GTK_TEXT_VIEW(self->view), 6);
  gtk_text_view_set_accepts_tab(GTK_TEXT_VIEW(self->view), FALSE);
  gtk_widget_set_tooltip_text(self->hint,
                              "Equations over the raw coordinates, e.g.\n  x0^2 + x1^2 = 1\n  x2 = sin(x0) / 2   # a "
                              "comment\nThe distance to the set is the sum over equations of |lhs − rhs|.");
  self->buffer = gtk_text_view_get_buffer(GTK_TEXT_VIEW(self->view));
  self->error_tag = gtk_text_buffer_create_tag(self->buffer, "parse-error", "underline", PANGO_UNDERLINE_ERROR,
                                               "background-rgba", &(GdkRGBA){0.835f, 0.369f, 0.0f, 0.25f}, NULL);
  g_signal_connect(self->buffer, "changed", G_CALLBACK(buffer_changed_cb), self);
  self->scroller = gtk_scrolled_window_new();
  gtk_scrolled_window_set_policy(GTK_SCROLLED_WINDOW(self->scroller), GTK_POLICY_AUTOMATIC, GTK_POLICY_AUTOMATIC);
  gtk_scrolled_window_set_min_content_height(GTK_SCROLLED_WINDOW(self->scroller), 96);
  gtk_scrolled_window_set_has_frame(GTK_SCROLLED_WINDOW(self->scroller), TRUE);
  gtk_scrolled_window_set_child(GTK_SCROLLED_WINDOW(self->scroller), self->view);
  gtk_widget_set_parent(self->scroller, w);

  self->status_label = gtk_label_new(NULL);
  gtk_label_set_wrap(GTK_LABEL(self->status_label), TRUE);
  gtk_label_set_wrap_mode(GTK_LABEL(self->status_label), PANGO_WRAP_WORD_CHAR);
  gtk_label_set_xalign(GTK_LABEL(self->status_label), 0);
  gtk_label_set_selectable(GTK_LABEL(self->status_label), TRUE);
  gtk_widget_set_hexpand(self->status_label, TRUE);
  gtk_widget_add_css_class(self->status_label, "equation-status");
  gtk_widget_set_parent(self->status_label, w);

  self->message_label = gtk_label_new(NULL);
  gtk_label_set_wrap(GTK_LABEL(self->message_label), TRUE);
  gtk_label_set_wrap_mode(GTK_LABEL(self->message_label), PANGO_WRAP_WORD_CHAR);
  gtk_label_set_xalign(GTK_LABEL(self->message_label), 0);
  gtk_label_set_selectable(GTK_LABEL(self->message_label), TRUE);
  gtk_widget_set_visible(self->message_label, FALSE);
  gtk_widget_set_parent(self->message_label, w);

  self->matrix_note = gtk_label_new(NULL);
  gtk_label_set_xalign(GTK_LABEL(self->matrix_note), 0);
  gtk_label_set_wrap(GTK_LABEL(self->matrix_note), TRUE);
  gtk_widget_set_hexpand(self->matrix_note, TRUE);
  gtk_widget_add_css_class(self->matrix_note, "warning");
  gtk_widget_set_visible(self->matrix_note, FALSE);
  gtk_widget_set_parent(self->matrix_note, w);
  self->buttons = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 6);
  GtkWidget *spacer = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 0);
  gtk_widget_set_hexpand(spacer, TRUE);
  self->clear_button = gtk_button_new_with_mnemonic("C_lear");
  gtk_widget_set_tooltip_text(self->clear_button, "Empty the text (Apply & Reset then removes the equations)");
  g_signal_connect(self->clear_button, "clicked", G_CALLBACK(clear_clicked_cb), self);
  self->apply_button = gtk_button_new_with_mnemonic("Apply & _Reset");
  gtk_widget_add_css_class(self->apply_button, "suggested-action");
  g_signal_connect(self->apply_button, "clicked", G_CALLBACK(apply_clicked_cb), self);
  gtk_box_append(GTK_BOX(self->buttons), spacer);
  gtk_box_append(GTK_BOX(self->buttons), self->clear_button);
  gtk_box_append(GTK_BOX(self->buttons), self->apply_button);
  gtk_widget_set_parent(self->buttons, w);

  validate(self);
}

/* ------------------------------------------------------------------------ */
/* Public API                                                               */

GtkWidget *
conform_equation_editor_new(void)
{
  return g_object_new(CONFORM_TYPE_EQUATION_EDITOR, NULL);
}

void
conform_equation_editor_set_dim(ConformEquationEditor *self, int dim)
{
  g_return_if_fail(CONFORM_IS_EQUATION_EDITOR(self));
  self->dim = MAX(dim, 0);
  update_hint(self);
  validate(self);
}

int
conform_equation_editor_get_dim(ConformEquationEditor *self)
{
  g_return_val_if_fail(CONFORM_IS_EQUATION_EDITOR(self), 0);
  return self->dim;
}

void
conform_equation_editor_set_text(ConformEquationEditor *self, const char *text)
{
  g_return_if_fail(CONFORM_IS_EQUATION_EDITOR(self));
  g_free(self->current);
  self->current = g_strdup(text ? text : "");
  self->loading = TRUE;
  gtk_text_buffer_set_text(self->buffer, self->current, -1);
  self->loading = FALSE;
  g_clear_pointer(&self->message, g_free);
  set_message_label(self);
  validate(self);
}

const char *
conform_equation_editor_get_text(ConformEquationEditor *self)
{
  g_return_val_if_fail(CONFORM_IS_EQUATION_EDITOR(self), "");
  conform_equation_editor_validate_now(self);
  return self->text;
}

void
conform_equation_editor_set_matrix_rows(ConformEquationEditor *self, int m)
{
  g_return_if_fail(CONFORM_IS_EQUATION_EDITOR(self));
  self->matrix_rows = MAX(m, 0);
  update_matrix_note(self);
}

const char *
conform_equation_editor_get_matrix_note(ConformEquationEditor *self)
{
  g_return_val_if_fail(CONFORM_IS_EQUATION_EDITOR(self), NULL);
  return self->matrix_rows > 0 ? gtk_label_get_text(GTK_LABEL(self->matrix_note)) : NULL;
}

void
conform_equation_editor_validate_now(ConformEquationEditor *self)
{
  g_return_if_fail(CONFORM_IS_EQUATION_EDITOR(self));
  if (self->pending)
    validate(self);
}

const char *
conform_equation_editor_get_status(ConformEquationEditor *self)
{
  g_return_val_if_fail(CONFORM_IS_EQUATION_EDITOR(self), "");
  conform_equation_editor_validate_now(self);
  return gtk_label_get_text(GTK_LABEL(self->status_label));
}

gboolean
conform_equation_editor_get_status_is_error(ConformEquationEditor *self)
{
  g_return_val_if_fail(CONFORM_IS_EQUATION_EDITOR(self), FALSE);
  conform_equation_editor_validate_now(self);
  return self->is_error;
}

int
conform_equation_editor_get_n_equations(ConformEquationEditor *self)
{
  g_return_val_if_fail(CONFORM_IS_EQUATION_EDITOR(self), 0);
  conform_equation_editor_validate_now(self);
  return self->n_eq;
}

gboolean
conform_equation_editor_get_error_position(ConformEquationEditor *self, int *line, int *col)
{
  g_return_val_if_fail(CONFORM_IS_EQUATION_EDITOR(self), FALSE);
  conform_equation_editor_validate_now(self);
  if (line)
    *line = self->err_line;
  if (col)
    *col = self->err_col;
  return self->is_error && self->err_line > 0;
}

gboolean
conform_equation_editor_can_apply(ConformEquationEditor *self)
{
  g_return_val_if_fail(CONFORM_IS_EQUATION_EDITOR(self), FALSE);
  conform_equation_editor_validate_now(self);
  if (self->is_error)
    return FALSE;
  return self->is_empty ? !blank(self->current) : self->n_eq > 0;
}

gboolean
conform_equation_editor_apply(ConformEquationEditor *self)
{
  g_return_val_if_fail(CONFORM_IS_EQUATION_EDITOR(self), FALSE);
  if (!conform_equation_editor_can_apply(self))
    return FALSE;
  g_signal_emit(self, signals[SIGNAL_APPLY], 0, self->is_empty ? "" : self->text);
  return TRUE;
}

void
conform_equation_editor_clear(ConformEquationEditor *self)
{
  g_return_if_fail(CONFORM_IS_EQUATION_EDITOR(self));
  gtk_text_buffer_set_text(self->buffer, "", -1);
  validate(self);
  gtk_widget_grab_focus(self->view);
}

void
conform_equation_editor_set_message(ConformEquationEditor *self, const char *text, gboolean is_error)
{
  g_return_if_fail(CONFORM_IS_EQUATION_EDITOR(self));
  g_free(self->message);
  self->message = g_strdup(text);
  if (is_error)
    gtk_widget_add_css_class(self->message_label, "error");
  else
    gtk_widget_remove_css_class(self->message_label, "error");
  set_message_label(self);
}

const char *
conform_equation_editor_get_message(ConformEquationEditor *self)
{
  g_return_val_if_fail(CONFORM_IS_EQUATION_EDITOR(self), NULL);
  return self->message;
}

GtkWidget *
conform_equation_editor_get_text_view(ConformEquationEditor *self)
{
  g_return_val_if_fail(CONFORM_IS_EQUATION_EDITOR(self), NULL);
  return self->view;
}
