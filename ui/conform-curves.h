/* ConformCurves: training curves (loss, violation, ...) over steps,
 * appended live while training runs.
 *
 * Each series keeps a bounded, decimated store of at most
 * CONFORM_CURVES_MAX_BUCKETS buckets. Every bucket summarises the same
 * number of consecutive points (x range, min, max, mean, last); when the
 * store is full, adjacent pairs merge and the points per bucket double. So
 * appending is amortised O(1), memory and drawing are O(buckets) whatever the
 * number of steps, and the minimum and maximum of every point survive. The
 * plot draws each bucket's min-max as a faint band and the (optionally
 * EMA-smoothed) mean as a line, the raw mean faintly behind it. */
#pragma once

#include <gtk/gtk.h>

#include "conform-palette.h"

G_BEGIN_DECLS

#define CONFORM_CURVES_MAX_BUCKETS 4096

#define CONFORM_TYPE_CURVES (conform_curves_get_type())
G_DECLARE_FINAL_TYPE(ConformCurves, conform_curves, CONFORM, CURVES, GtkWidget)

GtkWidget *conform_curves_new(void);

/* Adds a series drawn in palette colour color_index (< 0: the series id);
 * returns its id (0, 1, ...). */
int conform_curves_add_series(ConformCurves *self, const char *label, int color_index);
int conform_curves_get_n_series(ConformCurves *self);

/* Amortised O(1). Points with non-finite x are ignored; non-finite y are
 * counted but leave a gap. */
void conform_curves_append(ConformCurves *self, int series, double x, double y);
void conform_curves_append_many(ConformCurves *self, int series, const double *x, const double *y, int n);
/* Keeps the series, drops their data. */
void conform_curves_clear(ConformCurves *self);

void conform_curves_set_log_y(ConformCurves *self, gboolean log_y);
/* s in [0, 0.999]: EMA weight per point of the displayed line (a bucket of
 * c points weighs s^c, so the time constant in steps does not depend on the
 * decimation level); O(buckets) per frame, stored data never change. */
void conform_curves_set_smoothing(ConformCurves *self, double s);
void conform_curves_set_title(ConformCurves *self, const char *title);
void conform_curves_set_x_label(ConformCurves *self, const char *label);

/* Nearest stored point to x (a bucket's mean x and mean y; the exact point
 * while the series has fewer than CONFORM_CURVES_MAX_BUCKETS points).
 * FALSE when the series holds no finite value. */
gboolean conform_curves_get_value_at(ConformCurves *self, int series, double x, double *x_out, double *y_out);

/* Introspection, mainly for tests. */
int conform_curves_get_n_buckets(ConformCurves *self, int series);
gint64 conform_curves_get_n_points(ConformCurves *self, int series);
/* Smallest and largest finite y ever appended (kept through decimation). */
gboolean conform_curves_get_y_extent(ConformCurves *self, int series, double *ymin, double *ymax);

/* Hover: a vertical guide at data x and a readout of every series' value at
 * its nearest point; NAN hides it. The motion controller calls this. */
void conform_curves_set_hover_x(ConformCurves *self, double x);
double conform_curves_get_hover_x(ConformCurves *self);
/* The readout text (lines separated by '\n'), NULL when hidden. */
char *conform_curves_get_readout(ConformCurves *self);

/* Data area for a given size (for tests and hit testing); FALSE when there
 * is no data. */
gboolean conform_curves_get_plot_area(ConformCurves *self, int width, int height, ConformPlotArea *out);

/* Draws the plot (with the hover readout when one is shown). */
void conform_curves_draw(ConformCurves *self, cairo_t *cr, int width, int height);
/* Exports without the hover readout. */
gboolean conform_curves_export_png(ConformCurves *self, const char *path, int width, int height, GError **error);

G_END_DECLS
