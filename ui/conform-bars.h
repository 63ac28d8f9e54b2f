/* ConformBars: a grouped bar chart of non-negative values (shares) per
 * category, e.g. the predicted class shares of samples and of training
 * images, or the share of samples in each mode of a mixture.
 *
 * Categories run along x, one group per category with one bar per series
 * (up to CONFORM_BARS_MAX_SERIES, each in a palette colour). The y axis
 * starts at 0 and ends at a nice tick above the largest value (or at a fixed
 * maximum). Optional references: a dashed tick per category (e.g. a target
 * share) and/or one dashed horizontal line (e.g. the uniform share 1/K).
 * NaN or Inf is a missing bar; a negative value is drawn as 0. Category
 * labels are horizontal when they fit, else rotated, and abbreviated with
 * "…" when even that is too crowded. Hovering a group shows a readout of
 * its values. Drawing is O(categories x series). */
#pragma once

#include <gtk/gtk.h>

#include "conform-palette.h"

G_BEGIN_DECLS

#define CONFORM_BARS_MAX_SERIES 4

#define CONFORM_TYPE_BARS (conform_bars_get_type())
G_DECLARE_FINAL_TYPE(ConformBars, conform_bars, CONFORM, BARS, GtkWidget)

GtkWidget *conform_bars_new(void);

/* Category labels (copied; n >= 0; labels may be NULL when n == 0). Series
 * keep their values for the first min(old, new) categories, the others are
 * missing; a per-category reference is dropped when n changes. */
void conform_bars_set_categories(ConformBars *self, const char *const *labels, int n);
int conform_bars_get_n_categories(ConformBars *self);
const char *conform_bars_get_category(ConformBars *self, int category);

/* Adds a series drawn in palette colour color_index (< 0: the series id);
 * returns its id (0, 1, ...) or -1 when CONFORM_BARS_MAX_SERIES are set.
 * Its values start missing. */
int conform_bars_add_series(ConformBars *self, const char *label, int color_index);
int conform_bars_get_n_series(ConformBars *self);
const char *conform_bars_get_series_label(ConformBars *self, int series);
int conform_bars_get_series_color(ConformBars *self, int series);
/* Removes every series (categories stay). */
void conform_bars_remove_all_series(ConformBars *self);

/* values[0 .. n) for the first n categories (copied; n may be less than
 * the number of categories: the rest become missing; extra values are
 * ignored). values == NULL (or n == 0) makes every bar of the series missing. */
void conform_bars_set_values(ConformBars *self, int series, const double *values, int n);
/* The stored value (NaN when missing or out of range). */
double conform_bars_get_value(ConformBars *self, int series, int category);
/* Every bar of every series missing; series and categories stay. */
void conform_bars_clear_values(ConformBars *self);

/* A dashed tick across each category's group at values[c] (NaN: none for
 * that category), named `label` in the legend and readout. values == NULL
 * removes it. */
void conform_bars_set_reference(ConformBars *self, const char *label, const double *values, int n);
/* One dashed horizontal line at y across the plot (NaN removes it). */
void conform_bars_set_reference_line(ConformBars *self, const char *label, double y);

void conform_bars_set_title(ConformBars *self, const char *title);
void conform_bars_set_y_label(ConformBars *self, const char *label);
/* Text shown while there is nothing to plot (no categories or no series,
 * or every value missing). */
void conform_bars_set_empty_text(ConformBars *self, const char *text);
/* A fixed top of the y axis (> 0); NaN (the default) chooses it from the
 * data and references. Bars above it are clipped. */
void conform_bars_set_y_max(ConformBars *self, double y_max);

/* Hover: highlights a category and shows its readout; -1 hides it. The
 * motion controller calls this. */
void conform_bars_set_hover_category(ConformBars *self, int category);
int conform_bars_get_hover_category(ConformBars *self);
/* "Sandal: samples 0.12, training 0.1, uniform 0.1" (missing values are
 * "n/a"); NULL when no category is hovered. */
char *conform_bars_get_readout(ConformBars *self, int category);

/* Layout for a widget size (for tests and hit testing). The data area has
 * x in [0, n_categories] (category c covers [c, c + 1]) and y from 0 to the
 * axis maximum. FALSE in the empty state. */
gboolean conform_bars_get_plot_area(ConformBars *self, int width, int height, ConformPlotArea *out);
/* The pixel rectangle of a bar (its full height at the value, at least one
 * pixel for a present value). FALSE when the bar is missing or there is no
 * layout. Any pointer may be NULL. */
gboolean conform_bars_get_bar_rect(ConformBars *self, int width, int height, int series, int category, double *x,
                                   double *y, double *w, double *h);
/* The category under a point (the group's column, including its label
 * below the plot), -1 elsewhere. */
int conform_bars_category_at(ConformBars *self, int width, int height, double x, double y);
/* How category labels are drawn at a size: 0 horizontal, 45 or 90 degrees
 * rotated; *abbreviated (may be NULL) says whether some were shortened,
 * *every (may be NULL) is 1 or every how many categories one is labelled. */
int conform_bars_get_label_angle(ConformBars *self, int width, int height, gboolean *abbreviated, int *every);

/* Draws the chart (with the hover readout when one is shown). */
void conform_bars_draw(ConformBars *self, cairo_t *cr, int width, int height);
/* Exports without the hover readout. */
gboolean conform_bars_export_png(ConformBars *self, const char *path, int width, int height, GError **error);

G_END_DECLS
