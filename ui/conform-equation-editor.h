/* ConformEquationEditor: a text editor for the non-linear constraint
 * constraint.equations (one equation per line or ';'-separated, over the
 * raw coordinates x0, x1, ...), parsed live (~200 ms after typing stops)
 * with conform_equations_parse for the data's dimension: the status line
 * says "2 equations · distance sum |lhs − rhs|" or
 * "line 2, column 7: ..." in the error colour, and the error position is
 * underlined in the text. "Apply & Reset" emits "apply"; "Clear" empties
 * the text. Parsing is cheap (bounded by the parser), so it runs on the
 * main thread. */
#pragma once

#include <gtk/gtk.h>

G_BEGIN_DECLS

#define CONFORM_EQUATION_EDITOR_DELAY_MS 200

#define CONFORM_TYPE_EQUATION_EDITOR (conform_equation_editor_get_type())
G_DECLARE_FINAL_TYPE(ConformEquationEditor, conform_equation_editor, CONFORM, EQUATION_EDITOR, GtkWidget)

GtkWidget *conform_equation_editor_new(void);
/* Data dimension the equations are checked against (<= 0: not known yet,
 * coordinates are not range-checked). Revalidates. */
void conform_equation_editor_set_dim(ConformEquationEditor *self, int dim);
int conform_equation_editor_get_dim(ConformEquationEditor *self);
/* Replaces the text (the run's equations; NULL = "") and validates at once.
 * It becomes the "current" text that Apply compares against. */
void conform_equation_editor_set_text(ConformEquationEditor *self, const char *text);
/* The text as typed (owned by the editor, valid until the next edit). */
const char *conform_equation_editor_get_text(ConformEquationEditor *self);
/* Rows of the experiment's matrix constraint (0: none): when > 0 a note
 * says that applying equations replaces it. */
void conform_equation_editor_set_matrix_rows(ConformEquationEditor *self, int m);
/* That note's text, NULL when it is hidden. */
const char *conform_equation_editor_get_matrix_note(ConformEquationEditor *self);
/* Runs a pending validation now; the getters below do this first. */
void conform_equation_editor_validate_now(ConformEquationEditor *self);
const char *conform_equation_editor_get_status(ConformEquationEditor *self);
gboolean conform_equation_editor_get_status_is_error(ConformEquationEditor *self);
/* Equations parsed (0 on an error or empty text). */
int conform_equation_editor_get_n_equations(ConformEquationEditor *self);
/* Error position (1-based line and column of the text as shown: ';'
 * counts as a line break, as in the parser's messages); FALSE without an
 * error. */
gboolean conform_equation_editor_get_error_position(ConformEquationEditor *self, int *line, int *col);
/* Apply is possible: the text parses, or it is empty while the current
 * equations are not (applying removes them). */
gboolean conform_equation_editor_can_apply(ConformEquationEditor *self);
/* Same as clicking Apply & Reset: emits "apply" when possible; returns
 * whether it did. */
gboolean conform_equation_editor_apply(ConformEquationEditor *self);
/* Same as clicking Clear. */
void conform_equation_editor_clear(ConformEquationEditor *self);
/* Shows a message under the status (e.g. why the window refused the
 * configuration); NULL hides it. Cleared by the next edit. */
void conform_equation_editor_set_message(ConformEquationEditor *self, const char *text, gboolean is_error);
const char *conform_equation_editor_get_message(ConformEquationEditor *self);
GtkWidget *conform_equation_editor_get_text_view(ConformEquationEditor *self);

/* Signal "apply": void handler(ConformEquationEditor *editor, const char *text, gpointer user):
 * the equations to set (possibly "" to remove them). */

G_END_DECLS
