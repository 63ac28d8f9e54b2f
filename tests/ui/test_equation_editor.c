/* ConformEquationEditor: live parse feedback (debounced typing, the count
 * of equations, "line L, column C: ..." errors with the position
 * underlined, ';' as a line break), coordinates checked against the data
 * dimension, Apply / Clear, the matrix-constraint note; and in the real
 * window: Apply & Reset starts a run with constraint.equations set and the
 * matrix constraint cleared, x5 on 2-D data is refused, a configuration
 * the window rejects is explained. Runs under Xvfb. */
#include <glib/gstdio.h>
#include <gtk/gtk.h>
#include <string.h>

#include "conform-equation-editor.h"
#include "window-fixture.h"

static ConformEquationEditor *
new_editor(int dim)
{
  ConformEquationEditor *ed = CONFORM_EQUATION_EDITOR(g_object_ref_sink(conform_equation_editor_new()));
  conform_equation_editor_set_dim(ed, dim);
  return ed;
}

/* Replaces the buffer's text as typing does (validation is debounced). */
static void
type_text(ConformEquationEditor *ed, const char *text)
{
  GtkTextBuffer *b = gtk_text_view_get_buffer(GTK_TEXT_VIEW(conform_equation_editor_get_text_view(ed)));
  gtk_text_buffer_set_text(b, text, -1);
}

static gboolean
tagged_at(ConformEquationEditor *ed, int line0, int offset0)
{
  GtkTextBuffer *b = gtk_text_view_get_buffer(GTK_TEXT_VIEW(conform_equation_editor_get_text_view(ed)));
  GtkTextTag *tag = gtk_text_tag_table_lookup(gtk_text_buffer_get_tag_table(b), "parse-error");
  GtkTextIter it;
  gtk_text_buffer_get_iter_at_line_offset(b, &it, line0, offset0);
  return gtk_text_iter_has_tag(&it, tag);
}

static void
applied_cb(ConformEquationEditor *ed, const char *text, char **out)
{
  g_free(*out);
  *out = g_strdup(text);
}

static void
test_live_feedback(void)
{
  ConformEquationEditor *ed = new_editor(2);
  g_assert_nonnull(strstr(conform_equation_editor_get_status(ed), "No equations"));
  g_assert_false(conform_equation_editor_can_apply(ed));

  /* typing: the status follows ~200 ms later, without a validate call */
  type_text(ed, "x0^2 + x1^2 = 1\nx0 = x1   # a diagonal");
  gint64 t0 = g_get_monotonic_time();
  GtkWidget *label = NULL;
  for (GtkWidget *c = gtk_widget_get_first_child(GTK_WIDGET(ed)); c; c = gtk_widget_get_next_sibling(c))
    if (GTK_IS_LABEL(c) && gtk_widget_has_css_class(c, "equation-status"))
      label = c;
  g_assert_nonnull(label);
  WAIT_UNTIL(g_strcmp0(gtk_label_get_text(GTK_LABEL(label)), "2 equations · distance sum |lhs − rhs|") == 0,
             "debounced status");
  g_assert_cmpint(g_get_monotonic_time() - t0, >=, 150000);
  g_assert_cmpint(conform_equation_editor_get_n_equations(ed), ==, 2);
  g_assert_false(conform_equation_editor_get_status_is_error(ed));
  g_assert_true(conform_equation_editor_can_apply(ed));

  /* a syntax error: line and column, in the error colour, underlined */
  type_text(ed, "x0^2 + x1^2 = 1\nx0 * = 2");
  g_assert_cmpstr(conform_equation_editor_get_status(ed), ==,
                  "line 2, column 6: expected a number, a coordinate x0..x1, a function or '(' but found '='");
  g_assert_true(conform_equation_editor_get_status_is_error(ed));
  g_assert_true(gtk_widget_has_css_class(label, "error"));
  int line, col;
  g_assert_true(conform_equation_editor_get_error_position(ed, &line, &col));
  g_assert_cmpint(line, ==, 2);
  g_assert_cmpint(col, ==, 6);
  g_assert_true(tagged_at(ed, 1, 5));   /* the '=' */
  g_assert_false(tagged_at(ed, 1, 0));
  g_assert_false(tagged_at(ed, 0, 5));
  g_assert_false(conform_equation_editor_can_apply(ed));
  g_assert_false(conform_equation_editor_apply(ed));

  /* ';' separates equations and counts as a line break in positions */
  type_text(ed, "x0 = 1; x1 = x9 + 2");
  g_assert_true(g_str_has_prefix(conform_equation_editor_get_status(ed), "line 2, column 7: x9"));
  g_assert_true(tagged_at(ed, 0, 13) && tagged_at(ed, 0, 14)); /* x9 */
  g_assert_false(tagged_at(ed, 0, 15));
  /* fixed: the mark goes */
  type_text(ed, "x0 = 1; x1 = 2 * x0");
  g_assert_cmpstr(conform_equation_editor_get_status(ed), ==, "2 equations · distance sum |lhs − rhs|");
  g_assert_false(tagged_at(ed, 0, 13));
  g_assert_false(gtk_widget_has_css_class(label, "error"));

  /* an error at the end of a line marks its last character */
  type_text(ed, "x0 + x1 =");
  g_assert_true(conform_equation_editor_get_status_is_error(ed));
  g_assert_true(tagged_at(ed, 0, 8));

  /* coordinates beyond the data: named, refused; fine with more coordinates */
  type_text(ed, "x0 + x5 = 1");
  g_assert_true(conform_equation_editor_get_status_is_error(ed));
  g_assert_nonnull(strstr(conform_equation_editor_get_status(ed), "x5"));
  g_assert_nonnull(strstr(conform_equation_editor_get_status(ed), "2 coordinates"));
  g_assert_false(conform_equation_editor_apply(ed));
  conform_equation_editor_set_dim(ed, 6);
  g_assert_cmpstr(conform_equation_editor_get_status(ed), ==, "1 equation · distance |lhs − rhs|");
  g_object_unref(ed);
}

static void
test_apply_clear(void)
{
  ConformEquationEditor *ed = new_editor(2);
  char *applied = NULL;
  g_signal_connect(ed, "apply", G_CALLBACK(applied_cb), &applied);
  conform_equation_editor_set_text(ed, "x0^2 + x1^2 = 1");
  g_assert_cmpstr(conform_equation_editor_get_text(ed), ==, "x0^2 + x1^2 = 1");
  g_assert_cmpstr(conform_equation_editor_get_status(ed), ==, "1 equation · distance |lhs − rhs|");
  g_assert_true(conform_equation_editor_apply(ed));
  g_assert_cmpstr(applied, ==, "x0^2 + x1^2 = 1");
  /* Clear, then Apply removes the run's equations */
  conform_equation_editor_clear(ed);
  g_assert_cmpstr(conform_equation_editor_get_text(ed), ==, "");
  g_assert_nonnull(strstr(conform_equation_editor_get_status(ed), "removes"));
  g_assert_true(conform_equation_editor_apply(ed));
  g_assert_cmpstr(applied, ==, "");
  /* nothing to remove: nothing to apply */
  conform_equation_editor_set_text(ed, "   \n");
  g_assert_false(conform_equation_editor_can_apply(ed));
  /* comments only: no equation */
  type_text(ed, "# nothing here");
  g_assert_true(g_str_has_prefix(conform_equation_editor_get_status(ed), "line 1, column 1: no equation"));
  /* the matrix note */
  g_assert_null(conform_equation_editor_get_matrix_note(ed));
  conform_equation_editor_set_matrix_rows(ed, 2);
  g_assert_nonnull(strstr(conform_equation_editor_get_matrix_note(ed), "replaces"));
  g_assert_nonnull(strstr(conform_equation_editor_get_matrix_note(ed), "2 rows"));
  conform_equation_editor_set_matrix_rows(ed, 0);
  g_assert_null(conform_equation_editor_get_matrix_note(ed));
  /* unknown dimension: coordinates are not range-checked */
  conform_equation_editor_set_dim(ed, 0);
  type_text(ed, "x40 = 1");
  g_assert_true(g_str_has_prefix(conform_equation_editor_get_status(ed), "1 equation"));
  g_free(applied);
  g_object_unref(ed);
}

/* Apply & Reset in the real window. */
static void
test_window_apply(void)
{
  ConformWindow *w = open_window("gaussians-line"); /* 2-D, matrix constraint x0 + x1 = 0 */
  ConformRun *run = conform_window_get_run(w);
  g_assert_cmpint(conform_run_get_constraint(run)->m, ==, 1);
  ConformEquationEditor *ed = CONFORM_EQUATION_EDITOR(conform_window_get_view(w, "equations"));
  g_assert_cmpint(conform_equation_editor_get_dim(ed), ==, 2);
  g_assert_cmpstr(conform_equation_editor_get_text(ed), ==, "");
  g_assert_nonnull(strstr(conform_equation_editor_get_matrix_note(ed), "replaces it"));
  gtk_notebook_set_current_page(GTK_NOTEBOOK(conform_window_get_view(w, "notebook")), 2);

  /* x5 on 2-D data: refused with a message naming x5; the run stays */
  type_text(ed, "x0 + x5 = 1");
  g_assert_nonnull(strstr(conform_equation_editor_get_status(ed), "x5"));
  g_assert_false(conform_equation_editor_apply(ed));
  screenshot(GTK_WIDGET(w), "window-equations-error.png");
  drain();
  g_assert_true(conform_window_get_run(w) == run);

  /* valid: a fresh run with the equations and without the matrix */
  type_text(ed, "# the ring of the 8 modes\nx0^2 + x1^2 = 4");
  g_assert_true(conform_equation_editor_apply(ed));
  WAIT_UNTIL(conform_window_get_run(w) != run && conform_run_get_state(conform_window_get_run(w)) == CONFORM_RUN_PAUSED,
             "run with equations");
  drain();
  ConformRun *r2 = conform_window_get_run(w);
  const ConformConfig *c2 = conform_run_get_config(r2);
  g_assert_cmpstr(c2->equations, ==, "# the ring of the 8 modes\nx0^2 + x1^2 = 4");
  g_assert_cmpint(c2->constraint.m, ==, 0);
  g_assert_cmpint(conform_run_get_constraint(r2)->m, ==, 0);
  g_assert_cmpstr(c2->preset, ==, "gaussians-line");
  /* the editor shows the run's equations; no matrix to replace any more */
  g_assert_cmpstr(conform_equation_editor_get_text(ed), ==, c2->equations);
  g_assert_null(conform_equation_editor_get_matrix_note(ed));
  g_assert_null(conform_equation_editor_get_message(ed));
  /* the sidebar's entry follows */
  g_assert_cmpstr(gtk_editable_get_text(GTK_EDITABLE(conform_window_get_view(w, "constraint.equations"))), ==,
                  c2->equations);
  screenshot(GTK_WIDGET(w), "window-equations.png");

  /* a configuration the window refuses (cgauss needs A x = b): explained, run kept */
  GtkDropDown *dd = GTK_DROP_DOWN(conform_window_get_view(w, "strategy"));
  GListModel *model = gtk_drop_down_get_model(dd);
  guint cgauss = G_MAXUINT;
  for (guint i = 0; i < g_list_model_get_n_items(model); i++)
    if (g_strcmp0(gtk_string_list_get_string(GTK_STRING_LIST(model), i), "cgauss") == 0)
      cgauss = i;
  g_assert_cmpuint(cgauss, !=, G_MAXUINT);
  gtk_drop_down_set_selected(dd, cgauss);
  for (int i = 0; i < 5; i++) { /* let the run's reply to the live switch arrive first */
    drain();
    g_usleep(50000);
  }
  type_text(ed, "x0^2 + x1^2 = 9");
  g_assert_true(conform_equation_editor_apply(ed));
  drain();
  g_assert_true(conform_window_get_run(w) == r2);
  g_assert_nonnull(conform_equation_editor_get_message(ed));
  g_assert_nonnull(strstr(conform_equation_editor_get_message(ed), "cgauss"));
  g_assert_nonnull(strstr(conform_window_get_last_error(w), "cgauss"));
  /* the next edit clears that message */
  type_text(ed, "x0^2 + x1^2 = 4");
  g_assert_null(conform_equation_editor_get_message(ed));
  close_window(w);
}

int
main(int argc, char **argv)
{
  gtk_test_init(&argc, &argv, NULL);
  g_setenv("CONFORM_NO_CLOSE_PROMPT", "1", TRUE);
  app = conform_application_new();
  g_assert_true(g_application_register(G_APPLICATION(app), NULL, NULL));
  g_test_add_func("/equation-editor/live-feedback", test_live_feedback);
  g_test_add_func("/equation-editor/apply-clear", test_apply_clear);
  g_test_add_func("/equation-editor/window-apply", test_window_apply);
  int rc = g_test_run();
  g_object_unref(app);
  return rc;
}
