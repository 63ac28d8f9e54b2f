/* The constraint editor's validation service: cell errors, system analysis,
 * summaries and splitting pasted text. */
#include <glib.h>
#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

#include "conform-constraint-check.h"

/* Checks an m x (n + 1) grid given as a flat string array. */
static void
check(ConformConstraintCheck *c, const char *const *cells, int m, int n, int dim)
{
  conform_constraint_check_cells(c, cells, m, n, dim);
  g_assert_nonnull(c->summary);
  g_test_message("summary: %s", c->summary);
}

static const ConformCellIssue *
first_error(const ConformConstraintCheck *c)
{
  for (guint i = 0; i < c->issues->len; i++) {
    const ConformCellIssue *is = &g_array_index(c->issues, ConformCellIssue, i);
    if (!is->warning)
      return is;
  }
  return NULL;
}

static void
test_good(void)
{
  const char *cells[] = {
    "1", " 1 ", "1", "1",      /* x0 + x1 + x2 = 1 (spaces trimmed) */
    "1", "-1", "0", "0.25e1",  /* x0 - x1 = 2.5 */
  };
  ConformConstraintCheck c;
  conform_constraint_check_init(&c);
  check(&c, cells, 2, 3, 3);
  g_assert_true(c.parsed);
  g_assert_true(c.savable);
  g_assert_true(c.usable);
  g_assert_false(c.warning);
  g_assert_true(c.has_report);
  g_assert_cmpint(c.report.rank, ==, 2);
  g_assert_cmpint(c.report.nullity, ==, 1);
  g_assert_cmpint(c.report.n_redundant, ==, 0);
  g_assert_cmpuint(c.issues->len, ==, 0);
  g_assert_cmpint(c.constraint.m, ==, 2);
  g_assert_cmpint(c.constraint.n, ==, 3);
  g_assert_cmpfloat(c.constraint.A[4], ==, -1.0);
  g_assert_cmpfloat(c.constraint.b[1], ==, 2.5);
  g_assert_nonnull(strstr(c.summary, "rank 2 of 2 rows"));
  g_assert_nonnull(strstr(c.summary, "consistent"));
  g_assert_nonnull(strstr(c.summary, "cond "));
  g_assert_nonnull(strstr(c.summary, "null space 1"));
  g_assert_null(conform_constraint_check_cell_error(&c, 0, 0));
  conform_constraint_check_clear(&c);
}

static void
test_not_a_number(void)
{
  const char *cells[] = {
    "1", "abc", "1", "1",
    "1", "2", "0,5", "0",
  };
  ConformConstraintCheck c;
  conform_constraint_check_init(&c);
  check(&c, cells, 2, 3, 3);
  g_assert_false(c.parsed);
  g_assert_false(c.usable);
  g_assert_false(c.has_report);
  g_assert_cmpuint(c.issues->len, ==, 2);
  const ConformCellIssue *is = first_error(&c);
  g_assert_cmpint(is->row, ==, 0);
  g_assert_cmpint(is->col, ==, 1);
  g_assert_cmpstr(is->message, ==, "'abc' is not a number");
  g_assert_cmpstr(conform_constraint_check_cell_error(&c, 0, 1), ==, "'abc' is not a number");
  g_assert_null(conform_constraint_check_cell_error(&c, 0, 0));
  g_assert_nonnull(strstr(conform_constraint_check_cell_error(&c, 1, 2), "use '.'"));
  g_assert_nonnull(strstr(c.summary, "2 cells to fix · row 1: 'abc' is not a number"));
  g_assert_nonnull(strstr(c.summary, "'abc' is not a number"));
  /* Trailing garbage and long cells are quoted (shortened). */
  const char *more[] = {"1x", "12345678901234567890123456789012345abc"};
  check(&c, more, 1, 1, 1);
  g_assert_cmpstr(conform_constraint_check_cell_error(&c, 0, 0), ==, "'1x' is not a number");
  g_assert_nonnull(strstr(conform_constraint_check_cell_error(&c, 0, 1), "…"));
  conform_constraint_check_clear(&c);
}

static void
test_empty_cell(void)
{
  const char *cells[] = {"1", "  ", "1"};
  ConformConstraintCheck c;
  conform_constraint_check_init(&c);
  check(&c, cells, 1, 2, 2);
  g_assert_false(c.parsed);
  g_assert_false(c.usable);
  g_assert_nonnull(strstr(conform_constraint_check_cell_error(&c, 0, 1), "empty"));
  /* A wholly empty row is one issue on the row; an all-empty grid is "blank". */
  const char *rows[] = {"1", "2", "3", "", " ", ""};
  check(&c, rows, 2, 2, 2);
  g_assert_false(c.parsed);
  g_assert_false(c.blank);
  g_assert_cmpuint(c.issues->len, ==, 1);
  g_assert_cmpstr(conform_constraint_check_cell_error(&c, 1, 0), ==, "row 2 is empty: fill it in or remove it");
  g_assert_cmpstr(c.summary, ==, "row 2 is empty: fill it in or remove it");
  check(&c, rows + 3, 1, 2, 2);
  g_assert_true(c.blank);
  g_assert_false(c.usable);
  g_assert_nonnull(strstr(c.summary, "empty"));
  /* No rows at all. */
  check(&c, NULL, 0, 2, 2);
  g_assert_false(c.usable);
  g_assert_nonnull(strstr(c.summary, "no constraint rows"));
  conform_constraint_check_clear(&c);
}

static void
test_nan_inf(void)
{
  const char *cells[] = {"nan", "inf", "-Infinity", "1e999"};
  ConformConstraintCheck c;
  conform_constraint_check_init(&c);
  check(&c, cells, 1, 3, 3);
  g_assert_false(c.parsed);
  g_assert_cmpstr(conform_constraint_check_cell_error(&c, 0, 0), ==, "NaN is not allowed");
  g_assert_cmpstr(conform_constraint_check_cell_error(&c, 0, 1), ==, "infinity is not allowed");
  g_assert_cmpstr(conform_constraint_check_cell_error(&c, 0, 2), ==, "infinity is not allowed");
  g_assert_nonnull(strstr(conform_constraint_check_cell_error(&c, 0, 3), "too large"));
  /* Underflow is not an error: it reads as (almost) zero. */
  const char *tiny[] = {"1", "1e-400", "0"};
  check(&c, tiny, 1, 2, 2);
  g_assert_true(c.usable);
  conform_constraint_check_clear(&c);
}

static void
test_dim_mismatch(void)
{
  const char *cells[] = {"1", "1", "1"};
  ConformConstraintCheck c;
  conform_constraint_check_init(&c);
  check(&c, cells, 1, 2, 3);
  g_assert_true(c.parsed);
  g_assert_false(c.usable);
  g_assert_nonnull(strstr(c.summary, "2 columns"));
  g_assert_nonnull(strstr(c.summary, "dimension 3"));
  const ConformCellIssue *is = first_error(&c);
  g_assert_cmpint(is->row, ==, -1);
  /* dim <= 0 skips the check. */
  check(&c, cells, 1, 2, 0);
  g_assert_true(c.usable);
  conform_constraint_check_clear(&c);
}

static void
test_zero_row(void)
{
  const char *cells[] = {
    "1", "1", "1",
    "0", "0", "0",
    "0", "-0", "2",
  };
  ConformConstraintCheck c;
  conform_constraint_check_init(&c);
  check(&c, cells, 3, 2, 2);
  g_assert_true(c.parsed);
  g_assert_false(c.savable);
  g_assert_false(c.usable);
  const ConformCellIssue *is = first_error(&c);
  g_assert_cmpint(is->row, ==, 1);
  g_assert_cmpint(is->col, ==, -1);
  g_assert_nonnull(strstr(is->message, "row 2 is all zeros"));
  /* A whole-row error applies to every cell of the row. */
  g_assert_cmpstr(conform_constraint_check_cell_error(&c, 1, 0), ==, is->message);
  g_assert_nonnull(strstr(conform_constraint_check_cell_error(&c, 2, 2), "row 3 is all zeros but b = 2"));
  g_assert_nonnull(strstr(c.summary, "row 2 is all zeros"));
  g_assert_nonnull(strstr(c.summary, "2 all-zero rows"));
  conform_constraint_check_clear(&c);
}

static void
test_inconsistent(void)
{
  /* data/constraints/inconsistent-4d.txt: row 3 = row 1 + row 2 but 4 != 1 + 2. */
  const char *cells[] = {
    "1", "1", "0", "0", "1",
    "0", "0", "1", "1", "2",
    "1", "1", "1", "1", "4",
  };
  ConformConstraintCheck c;
  conform_constraint_check_init(&c);
  check(&c, cells, 3, 4, 4);
  g_assert_true(c.parsed);
  g_assert_true(c.savable);
  g_assert_false(c.usable);
  g_assert_true(c.has_report);
  g_assert_false(c.report.consistent);
  g_assert_nonnull(strstr(c.summary, "inconsistent"));
  g_assert_nonnull(strstr(c.summary, "residual 0.577"));
  g_assert_nonnull(strstr(c.summary, "row 3 = row 1 + row 2 on the left, so b should be 3, but it is 4"));
  /* The b cell of the contradicting row carries the explanation. */
  const char *msg = conform_constraint_check_cell_error(&c, 2, 4);
  g_assert_nonnull(msg);
  g_assert_nonnull(strstr(msg, "row 3 = row 1 + row 2"));
  g_assert_nonnull(strstr(msg, "b should be 3, but it is 4"));
  g_assert_null(conform_constraint_check_cell_error(&c, 2, 0));
  /* Two parallel rows with different right-hand sides. */
  const char *par[] = {"1", "2", "1", "2", "4", "3"};
  check(&c, par, 2, 2, 2);
  g_assert_false(c.usable);
  g_assert_nonnull(strstr(conform_constraint_check_cell_error(&c, 1, 2), "row 2 = 2×row 1"));
  conform_constraint_check_clear(&c);
}

static void
test_redundant(void)
{
  /* data/constraints/redundant-4d.txt */
  const char *cells[] = {
    "1", "1", "0", "0", "1",
    "0", "0", "1", "1", "2",
    "1", "1", "1", "1", "3",
  };
  ConformConstraintCheck c;
  conform_constraint_check_init(&c);
  check(&c, cells, 3, 4, 4);
  g_assert_true(c.usable);
  g_assert_true(c.warning);
  g_assert_cmpint(c.report.rank, ==, 2);
  g_assert_cmpint(c.report.nullity, ==, 2);
  g_assert_cmpint(c.report.n_redundant, ==, 1);
  g_assert_cmpint(c.report.redundant_rows[0], ==, 2);
  g_assert_nonnull(strstr(c.summary, "rank 2 of 3 rows"));
  g_assert_nonnull(strstr(c.summary, "row 3 = row 1 + row 2: redundant, dropped on apply"));
  g_assert_nonnull(strstr(c.summary, "consistent"));
  g_assert_nonnull(strstr(c.summary, "null space 2"));
  /* A note, not an error: full rows are kept in the constraint. */
  g_assert_null(conform_constraint_check_cell_error(&c, 2, 0));
  g_assert_nonnull(conform_constraint_check_row_note(&c, 2));
  g_assert_null(conform_constraint_check_row_note(&c, 1));
  g_assert_cmpint(c.constraint.m, ==, 3);

  /* Non-integer combination with a negative coefficient. */
  const char *neg[] = {
    "1", "0", "0", "1",
    "0", "1", "0", "2",
    "2", "-0.5", "0", "1",
  };
  check(&c, neg, 3, 3, 3);
  g_assert_true(c.usable);
  g_assert_nonnull(strstr(c.summary, "row 3 = 2×row 1 − 0.5×row 2"));

  /* Several redundant rows are listed. */
  const char *many[] = {
    "1", "0", "1",
    "2", "0", "2",
    "3", "0", "3",
  };
  check(&c, many, 3, 2, 2);
  g_assert_true(c.usable);
  g_assert_nonnull(strstr(c.summary, "rows 2, 3 redundant"));
  g_assert_nonnull(strstr(c.summary, "rank 1 of 3 rows"));
  conform_constraint_check_clear(&c);
}

static void
test_from_constraint(void)
{
  CfConstraint k;
  cf_constraint_init(&k);
  const double A[] = {1, 1, 1};
  const double b[] = {1};
  g_assert_cmpint(cf_constraint_set(&k, 1, 3, A, b, NULL), ==, CF_OK);
  ConformConstraintCheck c;
  conform_constraint_check_init(&c);
  conform_constraint_check_constraint(&c, &k, 3);
  g_assert_true(c.usable);
  g_assert_nonnull(strstr(c.summary, "rank 1 of 1 row "));
  conform_constraint_check_constraint(&c, &k, 784);
  g_assert_false(c.usable);
  conform_constraint_check_clear(&c);
  cf_constraint_clear(&k);
}

static void
test_format_value(void)
{
  char buf[G_ASCII_DTOSTR_BUF_SIZE];
  g_assert_cmpstr(conform_constraint_format_value(0.1, buf), ==, "0.1");
  g_assert_cmpstr(conform_constraint_format_value(1.0, buf), ==, "1");
  g_assert_cmpstr(conform_constraint_format_value(-2.5e-7, buf), ==, "-2.5e-07");
  const double vals[] = {1.0 / 3.0, M_PI, 1e300, 5e-324, -0.30000000000000004};
  for (guint i = 0; i < G_N_ELEMENTS(vals); i++)
    g_assert_cmpfloat(g_ascii_strtod(conform_constraint_format_value(vals[i], buf), NULL), ==, vals[i]);
}

static void
expect_split(const char *text, int m, int ncols, const char *const *want)
{
  char **cells = NULL;
  int mm = -1, nc = -1;
  g_autoptr(GError) error = NULL;
  g_assert_true(conform_constraint_split_text(text, &cells, &mm, &nc, &error));
  g_assert_no_error(error);
  g_assert_cmpint(mm, ==, m);
  g_assert_cmpint(nc, ==, ncols);
  g_assert_cmpuint(g_strv_length(cells), ==, (guint)(m * ncols));
  for (int i = 0; i < m * ncols; i++)
    g_assert_cmpstr(cells[i], ==, want[i]);
  g_strfreev(cells);
}

static void
expect_split_error(const char *text, const char *fragment)
{
  char **cells = NULL;
  int m = -1, nc = -1;
  g_autoptr(GError) error = NULL;
  g_assert_false(conform_constraint_split_text(text, &cells, &m, &nc, &error));
  g_assert_nonnull(error);
  g_test_message("split error: %s", error->message);
  g_assert_nonnull(strstr(error->message, fragment));
  g_assert_null(cells);
}

static void
test_split(void)
{
  const char *w1[] = {"1", "2", "3", "4", "5", "6"};
  expect_split("1\t2\t3\r\n4\t5\t6\r\n", 2, 3, w1); /* spreadsheet TSV */
  expect_split("1,2,3\n\n4, 5 ,6\n", 2, 3, w1);     /* CSV, blank line */
  expect_split("  1 2   3\n4  5 6", 2, 3, w1);      /* runs of spaces, no final newline */
  expect_split("1 2 | 3\n# comment\n4 5 | 6  # note\n", 2, 3, w1); /* the file format */
  expect_split("x0,x1,b\n1,2,3\n4,5,6\n", 2, 3, w1); /* header skipped */
  /* Empty spreadsheet cells are kept as empty strings (then flagged by the check). */
  const char *w2[] = {"1", "", "3"};
  expect_split("1\t\t3\n", 1, 3, w2);
  expect_split_error("1,2,3\n4,5\n", "line 2 has 2 cells, but line 1 has 3");
  expect_split_error("1 2 3\n\n4 5 6 7\n", "line 3 has 4 cells");
  expect_split_error("\n  \n# nothing\n", "no rows");
  /* A lone line of words is not a header: it comes back as cells to be flagged. */
  const char *w3[] = {"a", "b"};
  expect_split("a b\n", 1, 2, w3);
}

static void
test_files(void)
{
  g_autofree char *dir = g_dir_make_tmp("conform-check-XXXXXX", NULL);
  g_assert_nonnull(dir);
  g_autofree char *path = g_build_filename(dir, "c.txt", NULL);
  CfConstraint k, back;
  cf_constraint_init(&k);
  cf_constraint_init(&back);
  const double A[] = {0.1, 1.0 / 3.0, -2, 1e-300};
  const double b[] = {M_PI, -0.0};
  g_assert_cmpint(cf_constraint_set(&k, 2, 2, A, b, NULL), ==, CF_OK);
  g_autoptr(GError) error = NULL;
  g_assert_true(conform_constraint_save_file(path, &k, &error));
  g_assert_no_error(error);
  g_assert_true(conform_constraint_load_file(path, &back, &error));
  g_assert_no_error(error);
  g_assert_cmpint(back.m, ==, 2);
  g_assert_cmpint(back.n, ==, 2);
  g_assert_cmpmem(back.A, sizeof A, A, sizeof A);
  g_assert_cmpfloat(back.b[0], ==, b[0]);

  /* A malformed file names basename:line:column and leaves out untouched. */
  g_autofree char *bad = g_build_filename(dir, "bad.txt", NULL);
  g_assert_true(g_file_set_contents(bad, "1 1 | 1\n1 x | 2\n", -1, NULL));
  g_assert_false(conform_constraint_load_file(bad, &back, &error));
  g_assert_nonnull(error);
  g_test_message("load error: %s", error->message);
  g_assert_nonnull(strstr(error->message, "bad.txt:2:"));
  g_assert_cmpint(back.m, ==, 2);
  g_clear_error(&error);
  g_autofree char *missing = g_build_filename(dir, "missing.txt", NULL);
  g_assert_false(conform_constraint_load_file(missing, &back, &error));
  g_assert_nonnull(error);
  g_clear_error(&error);

  g_unlink(path);
  g_unlink(bad);
  g_rmdir(dir);
  cf_constraint_clear(&k);
  cf_constraint_clear(&back);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/constraint-check/good", test_good);
  g_test_add_func("/constraint-check/not-a-number", test_not_a_number);
  g_test_add_func("/constraint-check/empty", test_empty_cell);
  g_test_add_func("/constraint-check/nan-inf", test_nan_inf);
  g_test_add_func("/constraint-check/dim-mismatch", test_dim_mismatch);
  g_test_add_func("/constraint-check/zero-row", test_zero_row);
  g_test_add_func("/constraint-check/inconsistent", test_inconsistent);
  g_test_add_func("/constraint-check/redundant", test_redundant);
  g_test_add_func("/constraint-check/from-constraint", test_from_constraint);
  g_test_add_func("/constraint-check/format-value", test_format_value);
  g_test_add_func("/constraint-check/split", test_split);
  g_test_add_func("/constraint-check/files", test_files);
  return g_test_run();
}
