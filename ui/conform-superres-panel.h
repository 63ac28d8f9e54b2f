/* ConformSuperresPanel: the super-resolution demo of fashion-superres runs
 * (the window's Super-resolution tab). Pick a held-out test image (index
 * or Random); the panel shows its 7 x 7 thumbnail, the constraint every
 * candidate must match (block means = thumbnail), beside the image itself.
 * Generate asks the run for candidates conditioned on that thumbnail
 * (conform_run_sample_async with use_condition: on the sampling thread) for
 * the run's strategy or, with "All strategies", each strategy the model
 * samples with (cgauss models: cgauss only; otherwise none, projection and
 * projected-sampling), all from the same seed, and shows each strategy's
 * candidates in a grid framed by their violation, with violation max,
 * the count within tolerance and cond_rmse (RMS pixel error against the
 * test image, in units of the pooled pixel spread). An index the run
 * cannot condition on is refused with the engine's message. */
#pragma once

#include <gtk/gtk.h>

#include "conform-run.h"

G_BEGIN_DECLS

#define CONFORM_TYPE_SUPERRES_PANEL (conform_superres_panel_get_type())
G_DECLARE_FINAL_TYPE(ConformSuperresPanel, conform_superres_panel, CONFORM, SUPERRES_PANEL, GtkBox)

GtkWidget *conform_superres_panel_new(void);
/* The run to sample from (NULL: none); clears the candidates and cancels a
 * Generate in flight. The run must have been "ready". */
void conform_superres_panel_set_run(ConformSuperresPanel *self, ConformRun *run);
/* The test image (held-out row) index, as the spin button sets it. */
void conform_superres_panel_set_index(ConformSuperresPanel *self, int index);
int conform_superres_panel_get_index(ConformSuperresPanel *self);
/* What the buttons do. */
void conform_superres_panel_random(ConformSuperresPanel *self);
void conform_superres_panel_generate(ConformSuperresPanel *self);
void conform_superres_panel_set_all_strategies(ConformSuperresPanel *self, gboolean all);
void conform_superres_panel_set_n_candidates(ConformSuperresPanel *self, int n);

/* For tests: the status line (errors in the error style), whether a
 * Generate is in flight, the grids (the test image: its thumbnail and the
 * image; then one per strategy of the last Generate) and their sets. */
const char *conform_superres_panel_get_message(ConformSuperresPanel *self);
gboolean conform_superres_panel_is_error(ConformSuperresPanel *self);
gboolean conform_superres_panel_is_busy(ConformSuperresPanel *self);
GtkWidget *conform_superres_panel_get_target_grid(ConformSuperresPanel *self);
int conform_superres_panel_get_n_results(ConformSuperresPanel *self);
GtkWidget *conform_superres_panel_get_result_grid(ConformSuperresPanel *self, int i);
ConformSampleSet *conform_superres_panel_get_result(ConformSuperresPanel *self, int i); /* borrowed */
const char *conform_superres_panel_get_result_title(ConformSuperresPanel *self, int i);

G_END_DECLS
