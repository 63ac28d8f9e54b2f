/* ConformWindow: the Mirror maps tab (strategy mirror) and the equation
 * editor of the Constraint tab (constraint.equations). The window calls
 * these hooks from build_views, attach_run and run_samples_cb. */
#define G_LOG_DOMAIN "conform"

#include "conform-window-private.h"

#include "conform-equation-editor.h"
#include "conform-mirror-view.h"

/* ---- Mirror maps tab ------------------------------------------------------------ */

GtkWidget *
conform_window_mirror_page_new_(ConformWindow *self)
{
  self->mirror_view = conform_mirror_view_new();
  GtkWidget *page = gtk_box_new(GTK_ORIENTATION_VERTICAL, 0);
  gtk_widget_set_margin_top(self->mirror_view, 6);
  gtk_widget_set_margin_bottom(self->mirror_view, 6);
  gtk_box_append(GTK_BOX(page), self->mirror_view);
  /* hidden by conform_window_mirror_attach_ unless the run uses strategy mirror */
  self->mirror_page = page;
  return page;
}

/* ---- equations -------------------------------------------------------------------- */

/* Apply & Reset: the sidebar's pending configuration with these equations
 * (and without the matrix constraint: they are exclusive) starts a fresh run. */
static void
equations_apply_cb(ConformEquationEditor *ed, const char *text, ConformWindow *self)
{
  ConformConfig cfg;
  conform_config_copy(&cfg, &self->pending);
  g_autoptr(GError) error = NULL;
  gboolean ok = conform_config_set(&cfg, "constraint.equations", text, &error);
  if (ok && text && text[0]) {
    cf_constraint_clear(&cfg.constraint);
    g_free(cfg.constraint_source);
    cfg.constraint_source = g_strdup("");
  }
  ok = ok && conform_config_validate(&cfg, &error);
  if (!ok) {
    conform_equation_editor_set_message(ed, error->message, TRUE);
    conform_window_show_message_(self, error->message, TRUE);
  } else {
    conform_equation_editor_set_message(ed, text && text[0] ? "Applied: a fresh run with these equations is starting"
                                                            : "Applied: a fresh run without equations is starting",
                                        FALSE);
    conform_window_reset_with(self, &cfg);
  }
  conform_config_clear(&cfg);
}

GtkWidget *
conform_window_equations_new_(ConformWindow *self)
{
  self->equations = conform_equation_editor_new();
  gtk_widget_set_margin_top(self->equations, 4);
  g_signal_connect(self->equations, "apply", G_CALLBACK(equations_apply_cb), self);
  return self->equations;
}

/* ---- hooks ------------------------------------------------------------------------- */

void
conform_window_mirror_attach_(ConformWindow *self, ConformRun *run)
{
  const ConformConfig *cfg = conform_run_get_config(run);
  int dim = conform_run_get_dim(run);
  gboolean mirror = g_strcmp0(cfg->strategy, "mirror") == 0;
  ConformMirrorView *mv = CONFORM_MIRROR_VIEW(self->mirror_view);
  gtk_widget_set_visible(self->mirror_page, mirror);
  int n = 0;
  const float *bg = conform_run_get_train_data(run, &n);
  conform_mirror_view_set_background(mv, bg, n, dim);
  if (mirror && dim != 2) {
    g_autofree char *note = g_strdup_printf("The mirror-space view draws 2-D data; this experiment has %d "
                                            "coordinates. The maps still train and sample: see Explore.",
                                            dim);
    conform_mirror_view_set_empty_text(mv, note);
  } else {
    conform_mirror_view_set_empty_text(mv, NULL);
  }
  ConformSampleSet *s = conform_run_get_samples(run);
  conform_mirror_view_set_samples(mv, mirror ? s : NULL);

  ConformEquationEditor *ed = CONFORM_EQUATION_EDITOR(self->equations);
  conform_equation_editor_set_dim(ed, dim);
  conform_equation_editor_set_matrix_rows(ed, conform_run_get_constraint(run)->m);
  conform_equation_editor_set_text(ed, cfg->equations);
}

void
conform_window_mirror_samples_(ConformWindow *self, const ConformSampleSet *s)
{
  if (gtk_widget_get_visible(self->mirror_page))
    conform_mirror_view_set_samples(CONFORM_MIRROR_VIEW(self->mirror_view), s);
}
