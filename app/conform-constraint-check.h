/* Validation service for the constraint editor: turns a grid of strings
 * (one row per constraint, coefficients then the right-hand side b) into a
 * CfConstraint plus a report a person can act on: which cell is wrong and
 * why, and for a well-formed system its rank, redundant rows (with the
 * combination of earlier rows they repeat), consistency, conditioning and
 * null-space dimension. The ui layer calls this instead of core.
 *
 * Rows are numbered from 1 in every message (as the editor shows them);
 * indices in ConformCellIssue and CfConstraintReport are 0-based. */
#pragma once

#include <glib.h>

#include "constraint.h"

G_BEGIN_DECLS

/* Condition numbers above this are reported as a warning. */
#define CONFORM_CONSTRAINT_COND_WARN 1e8

typedef struct {
  int row, col;       /* 0-based cell (col == n for the b column); col = -1: the whole row;
                       * row = -1: the whole system */
  char *message;      /* e.g. "'abc' is not a number", "NaN is not allowed", "row 3 is all zeros" */
  gboolean warning;   /* TRUE: a note (redundant row), not a reason to refuse */
} ConformCellIssue;

typedef struct {
  gboolean parsed;    /* all cells numeric and finite, at least one row and one column */
  gboolean savable;   /* parsed and the written file loads again (no all-zero row) */
  gboolean usable;    /* can be applied: savable, consistent, rank >= 1, dim matches */
  gboolean warning;   /* usable, but with redundant rows or a large condition number */
  gboolean blank;     /* every cell is empty (nothing entered yet): not an error to shout about */
  GArray *issues;     /* ConformCellIssue, errors and warnings, in row order */
  CfConstraint constraint; /* valid when parsed (full rows, redundant ones included) */
  CfConstraintReport report;
  gboolean has_report;
  char *summary;      /* one line: what the system is, or why it cannot be applied */
} ConformConstraintCheck;

void conform_constraint_check_init(ConformConstraintCheck *c);
void conform_constraint_check_clear(ConformConstraintCheck *c);

/* cells: m rows x (n + 1) strings (last column b), row-major; dim = data
 * dimension (n must equal dim; dim <= 0 skips that check). Empty cells are
 * errors (a wholly empty row is one row-level issue; an all-empty grid sets
 * `blank`); whitespace is trimmed; numbers are parsed strictly in the C locale
 * (g_ascii_strtod, whole cell consumed, finite). Replaces the contents of out. */
void conform_constraint_check_cells(ConformConstraintCheck *out, const char *const *cells, int m, int n, int dim);
/* Same analysis for a constraint that is already numeric (e.g. loaded from a
 * file); the constraint is copied. */
void conform_constraint_check_constraint(ConformConstraintCheck *out, const CfConstraint *c, int dim);
/* The first error issue of a cell (including whole-row errors on its row),
 * or NULL. */
const char *conform_constraint_check_cell_error(const ConformConstraintCheck *c, int row, int col);
/* The warning note on a row (redundant row), or NULL. */
const char *conform_constraint_check_row_note(const ConformConstraintCheck *c, int row);

/* Tab/comma/space separated text (spreadsheet paste) -> cells grid.
 * Tabs, when present, are the only separator (empty cells are kept);
 * otherwise commas, otherwise runs of spaces; '|' (the file format's b
 * separator) counts as a separator too outside tab mode. Blank lines and
 * lines starting with '#' are skipped, as is a first line with no numeric
 * cell (column names). Returns FALSE with an error naming the line on
 * ragged or empty input. *cells_out is a NULL-terminated array of
 * m * ncols strings (free with g_strfreev). */
gboolean conform_constraint_split_text(const char *text, char ***cells_out, int *m_out, int *ncols_out,
                                       GError **error);

/* Shortest decimal text that reads back to exactly v (C locale, at most
 * %.17g). buf must hold G_ASCII_DTOSTR_BUF_SIZE bytes. */
const char *conform_constraint_format_value(double v, char *buf);

/* Reads a constraint file (text or CSV format, see README) of at most
 * 64 MiB; errors name basename:line:column. */
gboolean conform_constraint_load_file(const char *path, CfConstraint *out, GError **error);
/* Writes the text format atomically. */
gboolean conform_constraint_save_file(const char *path, const CfConstraint *c, GError **error);

G_END_DECLS
