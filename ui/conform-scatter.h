/* ConformScatter: generated samples against the training data and the
 * feasible set {x : A x = b}.
 *
 * 2-D data: equal-aspect scatter with axes; 3-D: orthographic view rotated by
 * dragging; dim > 3: a 2-D projection plane (PCA basis from the caller or the
 * first two coordinates) above a strip of per-coordinate histograms.
 * The widget never computes heavy numerics: every setter copies main-thread
 * data. Screen and PNG export render through conform_scatter_draw(). */
#pragma once

#include <cairo.h>
#include <gtk/gtk.h>

G_BEGIN_DECLS

#define CONFORM_TYPE_SCATTER (conform_scatter_get_type())
G_DECLARE_FINAL_TYPE(ConformScatter, conform_scatter, CONFORM, SCATTER, GtkWidget)

/* At most this many raw -> projected arrows are drawn (the first samples;
 * samples are i.i.d., so these are a random subset). */
#define CONFORM_SCATTER_MAX_ARROWS 500
/* At most this many per-coordinate histograms in the dim > 3 strip. */
#define CONFORM_SCATTER_MAX_HISTOGRAMS 16

GtkWidget *conform_scatter_new(void);

/* All arrays are copied. x is n x dim row-major floats in raw data space.
 * Non-finite values are ignored (a point with any non-finite coordinate that
 * the view needs is not drawn and is counted in a note). */
void conform_scatter_set_background(ConformScatter *self, const float *x, int n, int dim); /* training data, faint */
void conform_scatter_set_points(ConformScatter *self, const float *x, int n, int dim); /* samples, after strategy */
/* Points the axes are fitted to instead of the samples (with the
 * background, as usual), so several scatters can share axes: give each the
 * union of all their samples. n = 0 clears (axes fit the samples again). */
void conform_scatter_set_range_points(ConformScatter *self, const float *x, int n, int dim);
/* Samples before the projection strategy, same n/dim as the points; arrows are
 * drawn from raw to point when set, the sizes match and the arrow toggle is on.
 * NULL clears. */
void conform_scatter_set_raw_points(ConformScatter *self, const float *raw, int n, int dim);
/* Feasible set {x : A x = b} (A m x dim row-major, doubles). m = 0 clears.
 * Drawn when dim matches the data: 2-D line / point, 3-D plane / line / point. */
void conform_scatter_set_constraint(ConformScatter *self, const double *A, const double *b, int m, int dim);
/* For dim > 3: a 2 x dim orthonormal basis and a centre (dim, NULL = 0);
 * basis NULL = first two coordinates. */
void conform_scatter_set_projection(ConformScatter *self, const double *basis, const double *center, int dim);
void conform_scatter_set_show_background(ConformScatter *self, gboolean show);
gboolean conform_scatter_get_show_background(ConformScatter *self);
void conform_scatter_set_show_arrows(ConformScatter *self, gboolean show);
gboolean conform_scatter_get_show_arrows(ConformScatter *self);
void conform_scatter_set_coordinate_names(ConformScatter *self, const char *const *names); /* NULL = x0, x1, ... */
void conform_scatter_set_caption(ConformScatter *self, const char *text); /* drawn top-left */
int conform_scatter_get_n_points(ConformScatter *self);

/* Draw into any cairo context (used by snapshot and by PNG export). Does not
 * paint a background. */
void conform_scatter_draw(ConformScatter *self, cairo_t *cr, int width, int height);
/* PNG via conform_export_png (light or dark background following the theme). */
gboolean conform_scatter_export_png(ConformScatter *self, const char *path, int width, int height, GError **error);

/* 3-D view rotation (radians), also changed by dragging. Pitch is clamped
 * to [-pi/2, pi/2]. */
void conform_scatter_set_rotation(ConformScatter *self, double yaw, double pitch);
void conform_scatter_get_rotation(ConformScatter *self, double *yaw, double *pitch);

/* Index of the sample drawn nearest to widget coordinates (x, y) within
 * max_dist pixels at the widget's current size, or -1 (used by hover). */
int conform_scatter_pick(ConformScatter *self, double x, double y, double max_dist);

G_END_DECLS
