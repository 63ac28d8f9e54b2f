/* ConformCompareView: the Compare tab. The user picks 2-4 strategies valid
 * for the experiment's model and presses Start; a ConformCompareRun trains
 * them in lock-step from the same configuration and seed on its own worker
 * thread, and the view shows small multiples synchronised by step: one
 * column per strategy, samples on top (same axes and projection in every
 * column), per-sample violations below (shared log x range), each column
 * titled with its violation max, fraction satisfied and energy distance. */
#pragma once

#include <cairo.h>
#include <gtk/gtk.h>

#include "conform-compare-run.h"

G_BEGIN_DECLS

#define CONFORM_TYPE_COMPARE_VIEW (conform_compare_view_get_type())
G_DECLARE_FINAL_TYPE(ConformCompareView, conform_compare_view, CONFORM, COMPARE_VIEW, GtkBox)

GtkWidget *conform_compare_view_new(void);

/* The experiment to compare on (copied): its configuration and constraint
 * (raw space), the training data for the background and, for dim > 3, the
 * main window's projection plane (basis NULL: first two coordinates).
 * Rebuilds the strategy list for the model type; a running comparison of
 * another experiment is stopped. */
void conform_compare_view_set_experiment(ConformCompareView *self, const ConformConfig *cfg, const CfConstraint *c,
                                         int dim, const float *train, int n_train, const double *basis,
                                         const double *center);
/* Whether the main run is training (the view says that both compete for the CPU). */
void conform_compare_view_set_main_training(ConformCompareView *self, gboolean training);

/* The strategy check buttons (by name; FALSE when not offered). */
gboolean conform_compare_view_set_strategy_active(ConformCompareView *self, const char *strategy, gboolean active);
/* Start / Stop buttons (Start resumes a comparison paused at the configured
 * steps). Start with fewer than 2 strategies only says so. */
void conform_compare_view_start(ConformCompareView *self);
void conform_compare_view_stop(ConformCompareView *self);

/* For tests and export. */
ConformCompareRun *conform_compare_view_get_run(ConformCompareView *self); /* NULL before Start */
int conform_compare_view_get_n_columns(ConformCompareView *self);
GtkWidget *conform_compare_view_get_scatter(ConformCompareView *self, int column);
GtkWidget *conform_compare_view_get_histogram(ConformCompareView *self, int column);
const char *conform_compare_view_get_column_strategy(ConformCompareView *self, int column);
long conform_compare_view_get_column_step(ConformCompareView *self, int column); /* -1: nothing shown */
/* The sample set a column shows (borrowed, may be NULL). */
ConformSampleSet *conform_compare_view_get_column_samples(ConformCompareView *self, int column);
guint conform_compare_view_get_n_bundles_shown(ConformCompareView *self);
const char *conform_compare_view_get_status_text(ConformCompareView *self);

/* The small multiples as one picture (screen-independent layout). */
void conform_compare_view_draw(ConformCompareView *self, cairo_t *cr, int width, int height);
gboolean conform_compare_view_export_png(ConformCompareView *self, const char *path, int width, int height,
                                         GError **error);

G_END_DECLS
