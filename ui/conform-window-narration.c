/* ConformWindow: the Slow motion tab (ConformNarration), fed with every
 * sample set and the latest training record. The window calls these hooks
 * from build_views, attach_run and run_samples_cb. */
#define G_LOG_DOMAIN "conform"

#include "conform-window-private.h"

#include "conform-narration.h"
#include "conform-scatter.h"

GtkWidget *
conform_window_narration_page_new_(ConformWindow *self)
{
  self->narration = conform_narration_new();
  gtk_widget_set_margin_top(self->narration, 6);
  gtk_widget_set_margin_start(self->narration, 6);
  gtk_widget_set_margin_end(self->narration, 6);
  gtk_widget_set_tooltip_text(self->narration,
                              "Slow motion: what the current strategy does, one sub-step at a time, on the first "
                              "samples of the latest batch. Back and Next step through it.");
  return self->narration;
}

void
conform_window_narration_attach_(ConformWindow *self, ConformRun *run)
{
  int n = 0, dim = conform_run_get_dim(run);
  const float *bg = conform_run_get_train_data(run, &n);
  ConformScatter *sc = CONFORM_SCATTER(conform_narration_get_scatter(CONFORM_NARRATION(self->narration)));
  conform_scatter_set_background(sc, bg, n, dim);
  const double *basis = NULL, *center = NULL;
  gboolean have_plane = conform_run_get_projection(run, &basis, &center);
  conform_scatter_set_projection(sc, have_plane ? basis : NULL, center, dim);
  conform_narration_set_samples(CONFORM_NARRATION(self->narration), NULL, NULL, NULL);
}

void
conform_window_narration_samples_(ConformWindow *self, ConformSampleSet *s)
{
  const GArray *rec = conform_run_get_records(self->run);
  ConformNarration *nr = CONFORM_NARRATION(self->narration);
  conform_narration_set_record(nr, rec && rec->len ? &g_array_index(rec, ConformTrainRecord, rec->len - 1) : NULL);
  conform_narration_set_samples(nr, s, conform_run_get_constraint(self->run), conform_run_get_config(self->run));
}
