/* ConformHistogram: per-sample constraint violations ||A x - b||_2 of up to
 * CONFORM_PALETTE_SIZE strategies, overlaid on shared log-spaced bins.
 *
 * Bins are decade-aligned (8 per decade, fewer when the data span many
 * decades) and cover every finite positive value and the tolerance. Values
 * that are exactly 0 (or negative) or below the lowest bin go to a separate
 * "= 0" / "<= lo" bar at the left; NaN and Inf are counted and shown in the
 * legend. Values are binned once when a series is set (O(n)); drawing is
 * O(bins). The y axis shows counts when every series has the same number of
 * samples and fractions otherwise. */
#pragma once

#include <gtk/gtk.h>

#include "conform-palette.h"

G_BEGIN_DECLS

#define CONFORM_TYPE_HISTOGRAM (conform_histogram_get_type())
G_DECLARE_FINAL_TYPE(ConformHistogram, conform_histogram, CONFORM, HISTOGRAM, GtkWidget)

GtkWidget *conform_histogram_new(void);

/* Series index in [0, CONFORM_PALETTE_SIZE): label (e.g. "none",
 * "projection") and per-sample violations (copied; n >= 0, values may be
 * NULL when n == 0). Replaces that series. The series is drawn in palette
 * colour `index`. */
void conform_histogram_set_series(ConformHistogram *self, int index, const char *label, const double *values, int n);
void conform_histogram_remove_series(ConformHistogram *self, int index);
void conform_histogram_clear(ConformHistogram *self);

/* The decades covering [lo, hi] (0 < lo <= hi) stay on the x axis whatever
 * the data, so several histograms can share one range (small multiples);
 * NAN clears. */
void conform_histogram_set_x_range(ConformHistogram *self, double lo, double hi);

/* Tolerance: dashed marker labelled "tol 1e-4"; values <= tol count as
 * satisfied. NAN (the default) or a negative value removes it. */
void conform_histogram_set_tolerance(ConformHistogram *self, double tol);
/* Title of the value axis (NULL: "‖A x − b‖₂"). */
void conform_histogram_set_x_title(ConformHistogram *self, const char *title);
double conform_histogram_get_tolerance(ConformHistogram *self);

/* Number of series currently set. */
int conform_histogram_get_n_series(ConformHistogram *self);

/* Regular (log-spaced) bins of series `index`: returns the number of bins
 * (shared by all series) and fills counts[0 .. n_bins) when counts is not
 * NULL; n_satisfied = samples <= tolerance (0 without a tolerance), n_zero =
 * samples exactly 0 (negatives included). Returns -1 when the series is not
 * set. */
int conform_histogram_get_counts(ConformHistogram *self, int index, long *counts, long *n_satisfied, long *n_zero);

/* The shared bins: lowest edge, highest edge and bins per decade (any may be
 * NULL); returns the number of bins (0 when there is no data). Bin j covers
 * [lo * 10^(j / bpd), lo * 10^((j + 1) / bpd)). */
int conform_histogram_get_bins(ConformHistogram *self, double *lo, double *hi, int *bins_per_decade);

/* Per-series totals: n (all samples), n_low (the left bar: exact zeros and
 * values below the lowest bin), n_nan, n_inf. Returns FALSE when the series
 * is not set. Any pointer may be NULL. */
gboolean conform_histogram_get_series_info(ConformHistogram *self, int index, long *n, long *n_low, long *n_nan,
                                           long *n_inf);

/* Plot layout for a given size (for tests and hit testing): the log-x data
 * area of the regular bins. Returns FALSE in the empty state. */
gboolean conform_histogram_get_plot_area(ConformHistogram *self, int width, int height, ConformPlotArea *out);

void conform_histogram_draw(ConformHistogram *self, cairo_t *cr, int width, int height);
gboolean conform_histogram_export_png(ConformHistogram *self, const char *path, int width, int height,
                                      GError **error);

G_END_DECLS
