/* Editor for linear equality constraints A x = b: a grid of cells (one row
 * per constraint, one column per data coordinate, then b), validated live
 * through app/conform-constraint-check (cell errors, rank, redundant rows,
 * consistency, conditioning, null space), with Load/Save/Paste and Apply.
 *
 * Rows are shown and named from 1; the API's row and col are 0-based
 * (col == dim is the b column). Above CONFORM_CONSTRAINT_EDITOR_MAX_COLUMNS
 * columns (images) the grid is replaced by a notice; Load, Save, Paste and
 * Apply keep working on the constraint held in memory. */
#pragma once

#include <gtk/gtk.h>

#include "constraint.h"

G_BEGIN_DECLS

#define CONFORM_CONSTRAINT_EDITOR_MAX_COLUMNS 64
#define CONFORM_CONSTRAINT_EDITOR_MAX_CELLS (64 * 65)

#define CONFORM_TYPE_CONSTRAINT_EDITOR (conform_constraint_editor_get_type())
G_DECLARE_FINAL_TYPE(ConformConstraintEditor, conform_constraint_editor, CONFORM, CONSTRAINT_EDITOR, GtkWidget)

GtkWidget *conform_constraint_editor_new(void);
/* Sets the data dimension and column names (NULL: x0..x{dim-1}). Keeps the
 * rows when dim is unchanged, otherwise starts over with one empty row. */
void conform_constraint_editor_set_dim(ConformConstraintEditor *self, int dim, const char *const *names);
int conform_constraint_editor_get_dim(ConformConstraintEditor *self);
/* Fills the cells with the shortest text that reads back exactly; m == 0
 * (or NULL) gives one empty row. c->n must equal the dimension (when set). */
void conform_constraint_editor_set_constraint(ConformConstraintEditor *self, const CfConstraint *c);
int conform_constraint_editor_get_n_rows(ConformConstraintEditor *self);
void conform_constraint_editor_add_row(ConformConstraintEditor *self);
/* Removes a row (-1: the row of the focused cell, else the last). The last
 * remaining row is emptied instead. */
void conform_constraint_editor_remove_row(ConformConstraintEditor *self, int row);
/* Sets a cell and validates at once (typing validates after ~150 ms). */
void conform_constraint_editor_set_cell(ConformConstraintEditor *self, int row, int col, const char *text);
const char *conform_constraint_editor_get_cell(ConformConstraintEditor *self, int row, int col);
/* The GtkEntry of a cell, or NULL when the grid is not shown. */
GtkWidget *conform_constraint_editor_get_cell_widget(ConformConstraintEditor *self, int row, int col);
/* Whether the cells are shown as an editable grid (FALSE above the size limits). */
gboolean conform_constraint_editor_get_grid_editable(ConformConstraintEditor *self);
/* Runs a pending validation now. Every getter below does this first. */
void conform_constraint_editor_validate_now(ConformConstraintEditor *self);
const char *conform_constraint_editor_get_cell_error(ConformConstraintEditor *self, int row, int col); /* NULL if fine */
const char *conform_constraint_editor_get_summary(ConformConstraintEditor *self);
/* The last load/save/paste message (errors name file:line:column), or NULL;
 * cleared by the next edit. */
const char *conform_constraint_editor_get_message(ConformConstraintEditor *self);
gboolean conform_constraint_editor_can_apply(ConformConstraintEditor *self);
/* Same as clicking Apply: emits "applied" when usable; returns whether it did. */
gboolean conform_constraint_editor_apply(ConformConstraintEditor *self);
/* Load keeps the current cells when the file is malformed or has the wrong
 * number of columns. Save writes the text format atomically (refused while
 * a cell is not a number or a row is all zeros). */
gboolean conform_constraint_editor_load_file(ConformConstraintEditor *self, const char *path, GError **error);
gboolean conform_constraint_editor_save_file(ConformConstraintEditor *self, const char *path, GError **error);
/* Replaces the rows with tab/comma/space separated text of dim + 1 columns. */
gboolean conform_constraint_editor_paste_text(ConformConstraintEditor *self, const char *text, GError **error);

/* Signal "applied": void handler(ConformConstraintEditor *editor, gpointer constraint, gpointer user);
 * constraint is a const CfConstraint * valid during the emission, with
 * every row (redundant rows are not yet dropped). */

G_END_DECLS
