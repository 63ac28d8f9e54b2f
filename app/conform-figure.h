/* Static figures rendered with Cairo image surfaces into PNG bytes (no GTK):
 * the small multiples of `conform compare`. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Pixel size of a comparison figure: one column per strategy. */
#define CONFORM_FIGURE_COLUMN_WIDTH 320
#define CONFORM_FIGURE_HEIGHT 620

/* Violations at or below this (raw space, ||A x - b||_2) share the floor
 * bar of the histogram: the float round-off of exactly constrained samples
 * (storing a raw-space sample of magnitude ~1 in float32 alone gives ~1e-7). */
#define CONFORM_FIGURE_VIOLATION_FLOOR 1e-6

typedef struct {
  const char *title;     /* strategy name */
  const char *subtitle;  /* one line of key figures (may be NULL) */
  const char *subtitle2; /* a second line (may be NULL) */
  const float *x;        /* n x dim samples, raw space */
  int n;
  const double *viol;    /* n per-sample violations, NULL without a constraint */
} ConformFigureColumn;

typedef struct {
  int dim;
  const float *ref;      /* n_ref x dim held-out reference data, raw space */
  int n_ref;
  const ConformFigureColumn *cols;
  int n_cols;
  double tolerance;      /* "satisfied" tolerance marked on the histograms (<= 0: none) */
  int image_size;        /* > 0: rows end in image_size^2 pixels in [0, 1]; the top row shows them */
  gboolean annotate;     /* images framed green (violation <= tolerance) or red (sample.annotate) */
} ConformFigureCompare;

/* Top row: for images (image_size > 0) the first 64 samples of each
 * column as an 8 x 8 grid of 28 px cells (only the image part of a row);
 * otherwise samples over the reference data in light grey (dim 2: x0 and
 * x1; dim >= 3: the first two principal axes of the reference data; dim 1:
 * x0 against the sample index), the same axes in every column. Bottom row:
 * per-sample violation histograms on a log10 axis with the same bins in
 * every column. Returns the PNG file's bytes. */
GBytes *conform_figure_compare_png(const ConformFigureCompare *fig, GError **error);

G_END_DECLS
