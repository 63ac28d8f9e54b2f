/* The constraint editor as a user drives it, in a realized window (run
 * under Xvfb): live validation, apply, load/save, paste. */
#include <glib/gstdio.h>
#include <gtk/gtk.h>
#include <math.h>
#include <string.h>

#include "conform-constraint-editor.h"

typedef struct {
  GtkWidget *window;
  ConformConstraintEditor *editor;
  int applied;
  CfConstraint last; /* copy of the last applied constraint */
  char *dir;
} Fixture;

static void
applied_cb(ConformConstraintEditor *editor, gpointer constraint, gpointer data)
{
  Fixture *f = data;
  const CfConstraint *c = constraint;
  f->applied++;
  cf_constraint_clear(&f->last);
  g_assert_cmpint(cf_constraint_copy(&f->last, c, NULL), ==, CF_OK);
}

static gboolean
flag_cb(gpointer p)
{
  *(gboolean *)p = TRUE;
  return G_SOURCE_REMOVE;
}

static void
wait_ms(guint ms)
{
  gboolean done = FALSE;
  g_timeout_add(ms, flag_cb, &done);
  while (!done)
    g_main_context_iteration(NULL, TRUE);
}

static void
fixture_setup(Fixture *f, gconstpointer data)
{
  memset(f, 0, sizeof *f);
  cf_constraint_init(&f->last);
  f->window = gtk_window_new();
  gtk_window_set_default_size(GTK_WINDOW(f->window), 700, 400);
  GtkWidget *ed = conform_constraint_editor_new();
  f->editor = CONFORM_CONSTRAINT_EDITOR(ed);
  gtk_window_set_child(GTK_WINDOW(f->window), ed);
  const char *names[] = {"u", "v", "w"};
  conform_constraint_editor_set_dim(f->editor, 3, names);
  g_signal_connect(ed, "applied", G_CALLBACK(applied_cb), f);
  gtk_window_present(GTK_WINDOW(f->window));
  while (!gtk_widget_get_mapped(ed))
    g_main_context_iteration(NULL, TRUE);
  f->dir = g_dir_make_tmp("conform-editor-XXXXXX", NULL);
  g_assert_nonnull(f->dir);
}

static void
fixture_teardown(Fixture *f, gconstpointer data)
{
  g_object_add_weak_pointer(G_OBJECT(f->editor), (gpointer *)&f->editor);
  gtk_window_destroy(GTK_WINDOW(f->window));
  while (g_main_context_iteration(NULL, FALSE))
    ;
  g_assert_null(f->editor); /* no leaked reference (e.g. from a clipboard read) */
  cf_constraint_clear(&f->last);
  g_autoptr(GDir) d = g_dir_open(f->dir, 0, NULL);
  const char *name;
  while (d && (name = g_dir_read_name(d))) {
    g_autofree char *p = g_build_filename(f->dir, name, NULL);
    g_unlink(p);
  }
  g_rmdir(f->dir);
  g_free(f->dir);
}

/* Types text into a cell the way a user does (through the entry). */
static void
type_cell(Fixture *f, int row, int col, const char *text)
{
  GtkWidget *e = conform_constraint_editor_get_cell_widget(f->editor, row, col);
  g_assert_nonnull(e);
  gtk_widget_grab_focus(e);
  gtk_editable_set_text(GTK_EDITABLE(e), text);
}

static void
fill(Fixture *f, const char *const *rows, int m)
{
  while (conform_constraint_editor_get_n_rows(f->editor) < m)
    conform_constraint_editor_add_row(f->editor);
  for (int i = 0; i < m; i++) {
    g_auto(GStrv) cells = g_strsplit(rows[i], " ", -1);
    g_assert_cmpuint(g_strv_length(cells), ==, 4);
    for (int j = 0; j < 4; j++)
      conform_constraint_editor_set_cell(f->editor, i, j, cells[j]);
  }
}

/* Finds a toolbar button by the start of its tooltip. */
static GtkWidget *
find_button(GtkWidget *root, const char *tooltip_prefix)
{
  for (GtkWidget *c = gtk_widget_get_first_child(root); c; c = gtk_widget_get_next_sibling(c)) {
    const char *tip = gtk_widget_get_tooltip_text(c);
    if (GTK_IS_BUTTON(c) && tip && g_str_has_prefix(tip, tooltip_prefix))
      return c;
    GtkWidget *found = find_button(c, tooltip_prefix);
    if (found)
      return found;
  }
  return NULL;
}

static void
test_invalid_cell(Fixture *f, gconstpointer data)
{
  const char *rows[] = {"1 1 1 1"};
  fill(f, rows, 1);
  g_assert_true(conform_constraint_editor_can_apply(f->editor));
  type_cell(f, 0, 1, "abc");
  GtkWidget *e = conform_constraint_editor_get_cell_widget(f->editor, 0, 1);
  /* Validation is debounced: nothing yet, then the mark after ~150 ms. */
  g_assert_false(gtk_widget_has_css_class(e, "cell-error"));
  wait_ms(400);
  g_assert_true(gtk_widget_has_css_class(e, "cell-error"));
  g_assert_cmpstr(gtk_widget_get_tooltip_text(e), ==, "'abc' is not a number");
  g_assert_cmpstr(conform_constraint_editor_get_cell_error(f->editor, 0, 1), ==, "'abc' is not a number");
  g_assert_null(conform_constraint_editor_get_cell_error(f->editor, 0, 0));
  g_assert_false(gtk_widget_has_css_class(conform_constraint_editor_get_cell_widget(f->editor, 0, 0), "cell-error"));
  g_assert_false(conform_constraint_editor_can_apply(f->editor));
  g_assert_nonnull(strstr(conform_constraint_editor_get_summary(f->editor), "'abc' is not a number"));
  GtkWidget *apply = find_button(GTK_WIDGET(f->editor), "Cannot apply:");
  g_assert_nonnull(apply);
  g_assert_false(gtk_widget_get_sensitive(apply));
  g_assert_false(conform_constraint_editor_apply(f->editor));
  g_assert_cmpint(f->applied, ==, 0);

  /* NaN and an empty cell. */
  type_cell(f, 0, 0, "NaN");
  type_cell(f, 0, 3, "");
  g_assert_cmpstr(conform_constraint_editor_get_cell_error(f->editor, 0, 0), ==, "NaN is not allowed");
  g_assert_nonnull(strstr(conform_constraint_editor_get_cell_error(f->editor, 0, 3), "empty"));
  g_assert_true(gtk_widget_has_css_class(conform_constraint_editor_get_cell_widget(f->editor, 0, 3), "cell-error"));

  /* Fixing the cells clears the marks and enables Apply. */
  type_cell(f, 0, 0, "1");
  type_cell(f, 0, 1, " 2 ");
  type_cell(f, 0, 3, "3");
  wait_ms(400);
  g_assert_false(gtk_widget_has_css_class(e, "cell-error"));
  g_assert_null(gtk_widget_get_tooltip_text(e));
  g_assert_true(gtk_widget_get_sensitive(apply));
  g_assert_true(conform_constraint_editor_apply(f->editor));
  g_assert_cmpint(f->applied, ==, 1);
  g_assert_cmpfloat(f->last.A[1], ==, 2.0);
}

static void
test_inconsistent_then_fixed(Fixture *f, gconstpointer data)
{
  const char *rows[] = {
    "1 1 1 1",
    "1 -1 0 0",
    "2 0 1 5", /* row 3 = row 1 + row 2, so b should be 1 */
  };
  fill(f, rows, 3);
  const char *summary = conform_constraint_editor_get_summary(f->editor);
  g_test_message("summary: %s", summary);
  g_assert_nonnull(strstr(summary, "inconsistent"));
  g_assert_nonnull(strstr(summary, "residual"));
  g_assert_nonnull(strstr(summary, "row 3 = row 1 + row 2"));
  g_assert_nonnull(conform_constraint_editor_get_cell_error(f->editor, 2, 3));
  g_assert_true(gtk_widget_has_css_class(conform_constraint_editor_get_cell_widget(f->editor, 2, 3), "cell-error"));
  g_assert_false(conform_constraint_editor_can_apply(f->editor));
  g_assert_false(conform_constraint_editor_apply(f->editor));
  g_assert_cmpint(f->applied, ==, 0);

  /* Fixed: the redundant row is named, kept in the grid and in the applied
   * constraint (the consumer drops it). */
  type_cell(f, 2, 3, "1");
  wait_ms(400);
  summary = conform_constraint_editor_get_summary(f->editor);
  g_test_message("summary: %s", summary);
  g_assert_nonnull(strstr(summary, "rank 2 of 3 rows"));
  g_assert_nonnull(strstr(summary, "row 3 = row 1 + row 2: redundant"));
  g_assert_nonnull(strstr(summary, "null space 1"));
  GtkWidget *e = conform_constraint_editor_get_cell_widget(f->editor, 2, 0);
  g_assert_true(gtk_widget_has_css_class(e, "cell-redundant"));
  g_assert_false(gtk_widget_has_css_class(e, "cell-error"));
  g_assert_nonnull(strstr(gtk_widget_get_tooltip_text(e), "dropped on apply"));
  g_assert_true(conform_constraint_editor_can_apply(f->editor));
  g_assert_true(conform_constraint_editor_apply(f->editor));
  g_assert_cmpint(f->applied, ==, 1);
  g_assert_cmpint(f->last.m, ==, 3);
  g_assert_cmpint(f->last.n, ==, 3);
  const double A[] = {1, 1, 1, 1, -1, 0, 2, 0, 1};
  const double b[] = {1, 0, 1};
  for (int i = 0; i < 9; i++)
    g_assert_cmpfloat(f->last.A[i], ==, A[i]);
  for (int i = 0; i < 3; i++)
    g_assert_cmpfloat(f->last.b[i], ==, b[i]);

  /* Clicking Apply does the same. */
  GtkWidget *apply = find_button(GTK_WIDGET(f->editor), "Use this constraint");
  g_assert_nonnull(apply);
  g_signal_emit_by_name(apply, "clicked");
  g_assert_cmpint(f->applied, ==, 2);
}

static void
test_load_malformed(Fixture *f, gconstpointer data)
{
  const char *rows[] = {"1 2 3 4", "5 6 7 8"};
  fill(f, rows, 2);
  g_autofree char *bad = g_build_filename(f->dir, "bad.txt", NULL);
  g_assert_true(g_file_set_contents(bad, "# a comment\n1 1 1 | 1\n1 2 x | 3\n", -1, NULL));
  g_autoptr(GError) error = NULL;
  g_assert_false(conform_constraint_editor_load_file(f->editor, bad, &error));
  g_assert_nonnull(error);
  g_test_message("load error: %s", error->message);
  g_assert_nonnull(strstr(error->message, "bad.txt:3:5"));
  const char *msg = conform_constraint_editor_get_message(f->editor);
  g_assert_nonnull(msg);
  g_assert_nonnull(strstr(msg, "bad.txt:3:5"));
  /* Previous cells intact, in the model and on screen. */
  g_assert_cmpint(conform_constraint_editor_get_n_rows(f->editor), ==, 2);
  g_assert_cmpstr(conform_constraint_editor_get_cell(f->editor, 1, 2), ==, "7");
  g_assert_cmpstr(gtk_editable_get_text(GTK_EDITABLE(conform_constraint_editor_get_cell_widget(f->editor, 0, 3))),
                  ==, "4");
  /* Wrong number of columns: refused too. */
  g_autofree char *wide = g_build_filename(f->dir, "wide.txt", NULL);
  g_assert_true(g_file_set_contents(wide, "1 1 1 1 | 1\n", -1, NULL));
  g_clear_error(&error);
  g_assert_false(conform_constraint_editor_load_file(f->editor, wide, &error));
  g_assert_nonnull(strstr(error->message, "4 columns"));
  g_assert_cmpstr(conform_constraint_editor_get_cell(f->editor, 0, 0), ==, "1");
  /* The next edit clears the message. */
  type_cell(f, 0, 0, "2");
  g_assert_null(conform_constraint_editor_get_message(f->editor));
}

static void
test_save_roundtrip(Fixture *f, gconstpointer data)
{
  const char *rows[] = {"0.1 0.3333333333333333 -2 1e-300", "1 0 0 3.141592653589793"};
  fill(f, rows, 2);
  g_autofree char *path = g_build_filename(f->dir, "c.txt", NULL);
  g_autoptr(GError) error = NULL;
  g_assert_true(conform_constraint_editor_save_file(f->editor, path, &error));
  g_assert_no_error(error);
  CfConstraint c;
  cf_constraint_init(&c);
  CfError err;
  g_assert_cmpint(cf_constraint_load(&c, path, &err), ==, CF_OK);
  g_assert_cmpint(c.m, ==, 2);
  g_assert_cmpint(c.n, ==, 3);
  for (int i = 0; i < 2; i++) {
    g_auto(GStrv) cells = g_strsplit(rows[i], " ", -1);
    for (int j = 0; j < 3; j++)
      g_assert_cmpfloat(c.A[i * 3 + j], ==, g_ascii_strtod(cells[j], NULL));
    g_assert_cmpfloat(c.b[i], ==, g_ascii_strtod(cells[3], NULL));
  }
  cf_constraint_clear(&c);
  /* And back into a fresh grid: the same texts (shortest exact form). */
  conform_constraint_editor_set_dim(f->editor, 2, NULL);
  conform_constraint_editor_set_dim(f->editor, 3, NULL);
  g_assert_cmpstr(conform_constraint_editor_get_cell(f->editor, 0, 0), ==, "");
  g_assert_true(conform_constraint_editor_load_file(f->editor, path, &error));
  g_assert_cmpstr(conform_constraint_editor_get_cell(f->editor, 0, 0), ==, "0.1");
  g_assert_cmpstr(conform_constraint_editor_get_cell(f->editor, 0, 1), ==, "0.3333333333333333");
  g_assert_cmpstr(conform_constraint_editor_get_cell(f->editor, 1, 3), ==, "3.141592653589793");
  /* Not savable while a cell is not a number; the old file survives. */
  conform_constraint_editor_set_cell(f->editor, 0, 0, "x");
  g_assert_false(conform_constraint_editor_save_file(f->editor, path, &error));
  g_assert_nonnull(error);
  g_assert_true(conform_constraint_editor_load_file(f->editor, path, NULL));
  g_assert_cmpstr(conform_constraint_editor_get_cell(f->editor, 0, 0), ==, "0.1");
}

static void
test_paste(Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_assert_true(conform_constraint_editor_paste_text(f->editor, "1\t2\t3\t4\r\n5\t6\t7\t8\r\n", &error));
  g_assert_no_error(error);
  g_assert_cmpint(conform_constraint_editor_get_n_rows(f->editor), ==, 2);
  g_assert_cmpstr(conform_constraint_editor_get_cell(f->editor, 1, 0), ==, "5");
  g_assert_cmpstr(gtk_editable_get_text(GTK_EDITABLE(conform_constraint_editor_get_cell_widget(f->editor, 1, 3))),
                  ==, "8");
  g_assert_true(conform_constraint_editor_can_apply(f->editor));
  /* Ragged or wrongly shaped text changes nothing. */
  g_assert_false(conform_constraint_editor_paste_text(f->editor, "1\t2\t3\t4\n5\t6\n", &error));
  g_assert_nonnull(strstr(error->message, "line 2 has 2 cells"));
  g_clear_error(&error);
  g_assert_false(conform_constraint_editor_paste_text(f->editor, "1,2,3\n", &error));
  g_assert_nonnull(strstr(error->message, "expected 4"));
  g_assert_nonnull(strstr(conform_constraint_editor_get_message(f->editor), "expected 4"));
  g_assert_cmpint(conform_constraint_editor_get_n_rows(f->editor), ==, 2);
  g_assert_cmpstr(conform_constraint_editor_get_cell(f->editor, 0, 0), ==, "1");

  /* Through the real clipboard and the Paste button. */
  GdkClipboard *cb = gtk_widget_get_clipboard(GTK_WIDGET(f->editor));
  gdk_clipboard_set_text(cb, "x\ty\tz\tb\n9\t8\t7\t6\n1\t0\t0\t2\n0\t1\t0\t3\n");
  GtkWidget *paste = find_button(GTK_WIDGET(f->editor), "Replace the rows");
  g_assert_nonnull(paste);
  g_signal_emit_by_name(paste, "clicked");
  for (int k = 0; k < 100 && conform_constraint_editor_get_n_rows(f->editor) != 3; k++)
    wait_ms(20);
  g_assert_cmpint(conform_constraint_editor_get_n_rows(f->editor), ==, 3);
  g_assert_cmpstr(conform_constraint_editor_get_cell(f->editor, 0, 0), ==, "9");
  g_assert_cmpstr(conform_constraint_editor_get_cell(f->editor, 2, 3), ==, "3");
}

static void
test_rows_and_keys(Fixture *f, gconstpointer data)
{
  /* A fresh grid is one empty row: nothing to shout about, nothing to apply. */
  g_assert_cmpint(conform_constraint_editor_get_n_rows(f->editor), ==, 1);
  g_assert_false(conform_constraint_editor_can_apply(f->editor));
  g_assert_nonnull(strstr(conform_constraint_editor_get_summary(f->editor), "empty"));
  g_assert_false(gtk_widget_has_css_class(conform_constraint_editor_get_cell_widget(f->editor, 0, 0), "cell-error"));

  const char *rows[] = {"1 1 1 1"};
  fill(f, rows, 1);
  /* Enter in the last cell of the last row adds a row and moves there. */
  GtkWidget *last = conform_constraint_editor_get_cell_widget(f->editor, 0, 3);
  gtk_widget_grab_focus(last);
  g_signal_emit_by_name(last, "activate");
  g_assert_cmpint(conform_constraint_editor_get_n_rows(f->editor), ==, 2);
  GtkWidget *first = conform_constraint_editor_get_cell_widget(f->editor, 1, 0);
  GtkWidget *focus = gtk_root_get_focus(GTK_ROOT(f->window));
  g_assert_true(focus == first || gtk_widget_is_ancestor(focus, first));
  /* The empty new row blocks Apply, named in the summary, but is not painted red. */
  g_assert_false(conform_constraint_editor_can_apply(f->editor));
  g_assert_nonnull(strstr(conform_constraint_editor_get_summary(f->editor), "row 2 is empty"));
  g_assert_false(gtk_widget_has_css_class(first, "cell-error"));
  /* Enter elsewhere moves to the next cell without adding rows. */
  GtkWidget *c00 = conform_constraint_editor_get_cell_widget(f->editor, 0, 0);
  g_signal_emit_by_name(c00, "activate");
  g_assert_cmpint(conform_constraint_editor_get_n_rows(f->editor), ==, 2);
  /* Remove the row of the focused cell (row 2 after typing in it). */
  type_cell(f, 1, 0, "5");
  conform_constraint_editor_remove_row(f->editor, -1);
  g_assert_cmpint(conform_constraint_editor_get_n_rows(f->editor), ==, 1);
  g_assert_cmpstr(conform_constraint_editor_get_cell(f->editor, 0, 0), ==, "1");
  g_assert_true(conform_constraint_editor_can_apply(f->editor));
  /* Removing the last row empties it instead. */
  conform_constraint_editor_remove_row(f->editor, 0);
  g_assert_cmpint(conform_constraint_editor_get_n_rows(f->editor), ==, 1);
  g_assert_cmpstr(conform_constraint_editor_get_cell(f->editor, 0, 0), ==, "");
}

static void
test_set_constraint(Fixture *f, gconstpointer data)
{
  CfConstraint c;
  cf_constraint_init(&c);
  const double A[] = {0.1, 0, -0.30000000000000004, 1, 1, 1};
  const double b[] = {1e-7, 2};
  g_assert_cmpint(cf_constraint_set(&c, 2, 3, A, b, NULL), ==, CF_OK);
  conform_constraint_editor_set_constraint(f->editor, &c);
  g_assert_cmpint(conform_constraint_editor_get_n_rows(f->editor), ==, 2);
  g_assert_cmpstr(conform_constraint_editor_get_cell(f->editor, 0, 0), ==, "0.1");
  g_assert_cmpstr(conform_constraint_editor_get_cell(f->editor, 0, 2), ==, "-0.30000000000000004");
  g_assert_cmpstr(conform_constraint_editor_get_cell(f->editor, 0, 3), ==, "1e-07");
  g_assert_true(conform_constraint_editor_apply(f->editor));
  g_assert_cmpmem(f->last.A, sizeof A, A, sizeof A);
  /* Same dimension keeps the rows; another one starts over. */
  const char *names[] = {"p", "q", "r"};
  conform_constraint_editor_set_dim(f->editor, 3, names);
  g_assert_cmpint(conform_constraint_editor_get_n_rows(f->editor), ==, 2);
  conform_constraint_editor_set_constraint(f->editor, NULL);
  g_assert_cmpint(conform_constraint_editor_get_n_rows(f->editor), ==, 1);
  g_assert_false(conform_constraint_editor_can_apply(f->editor));
  cf_constraint_clear(&c);
}

static void
test_too_many_columns(Fixture *f, gconstpointer data)
{
  const int dim = 784;
  conform_constraint_editor_set_dim(f->editor, dim, NULL);
  g_assert_false(conform_constraint_editor_get_grid_editable(f->editor));
  g_assert_null(conform_constraint_editor_get_cell_widget(f->editor, 0, 0));
  /* Load, Apply and Save still work. */
  GString *s = g_string_new("# mean pixel is 0.5\n");
  for (int j = 0; j < dim; j++)
    g_string_append(s, "1 ");
  g_string_append(s, "| 392\n");
  g_autofree char *path = g_build_filename(f->dir, "img.txt", NULL);
  g_assert_true(g_file_set_contents(path, s->str, -1, NULL));
  g_string_free(s, TRUE);
  g_autoptr(GError) error = NULL;
  g_assert_true(conform_constraint_editor_load_file(f->editor, path, &error));
  g_assert_no_error(error);
  g_assert_nonnull(strstr(conform_constraint_editor_get_summary(f->editor), "null space 783"));
  g_assert_true(conform_constraint_editor_apply(f->editor));
  g_assert_cmpint(f->last.n, ==, dim);
  g_assert_cmpfloat(f->last.b[0], ==, 392.0);
  g_autofree char *out = g_build_filename(f->dir, "img-out.txt", NULL);
  g_assert_true(conform_constraint_editor_save_file(f->editor, out, &error));
  /* 64 columns is still a grid (scrolls horizontally). */
  conform_constraint_editor_set_dim(f->editor, 64, NULL);
  g_assert_true(conform_constraint_editor_get_grid_editable(f->editor));
  g_assert_nonnull(conform_constraint_editor_get_cell_widget(f->editor, 0, 64));
}

int
main(int argc, char **argv)
{
  /* No session bus under plain Xvfb: without this the accessibility bridge
   * warns, and warnings are fatal in tests. */
  g_setenv("GTK_A11Y", "none", FALSE);
  gtk_test_init(&argc, &argv, NULL);
#define ADD(path, fn) g_test_add("/constraint-editor/" path, Fixture, NULL, fixture_setup, fn, fixture_teardown)
  ADD("invalid-cell", test_invalid_cell);
  ADD("inconsistent-then-fixed", test_inconsistent_then_fixed);
  ADD("load-malformed", test_load_malformed);
  ADD("save-roundtrip", test_save_roundtrip);
  ADD("paste", test_paste);
  ADD("rows-and-keys", test_rows_and_keys);
  ADD("set-constraint", test_set_constraint);
  ADD("too-many-columns", test_too_many_columns);
#undef ADD
  return g_test_run();
}
