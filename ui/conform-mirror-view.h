/* ConformMirrorView: the learned mirror maps of strategy mirror on 2-D data.
 *
 * Mode g (default): the main panel is mirror space. It shows a regular
 * grid over the data's box warped by g (data -> mirror), g of held-out
 * data, and the samples in mirror space before f. A side panel shows the
 * regular grid itself over the data, with the training data.
 * Mode f: the main panel is data space. It shows a regular grid over
 * mirror space mapped back by f (mirror -> data), the training data and
 * the final samples x. A side panel shows that grid in mirror space with
 * g of held-out data.
 * A header holds the g / f toggle and a caption that explains the mode.
 *
 * Every setter copies main-thread data; the widget computes no numerics.
 * Screen and PNG export both draw through conform_mirror_view_draw(). */
#pragma once

#include <cairo.h>
#include <gtk/gtk.h>

#include "conform-engine.h"

G_BEGIN_DECLS

#define CONFORM_TYPE_MIRROR_VIEW (conform_mirror_view_get_type())
G_DECLARE_FINAL_TYPE(ConformMirrorView, conform_mirror_view, CONFORM, MIRROR_VIEW, GtkWidget)

typedef enum {
  CONFORM_MIRROR_MODE_G, /* data -> mirror space */
  CONFORM_MIRROR_MODE_F, /* mirror -> data space */
} ConformMirrorMode;

GtkWidget *conform_mirror_view_new(void);

/* Copies what the view needs from a sample set: the maps' grids, g of
 * held-out data, the samples in mirror space and in data space. NULL, a
 * set without grids (another strategy) or one that is not 2-D clears the
 * maps, and the view explains why. */
void conform_mirror_view_set_samples(ConformMirrorView *self, const ConformSampleSet *s);
/* Training data (raw space, faint, under the data-space panels); copied.
 * Ignored unless dim == 2. */
void conform_mirror_view_set_background(ConformMirrorView *self, const float *x, int n, int dim);
/* Text of the empty state (NULL: the default, "No mirror maps yet ..."). */
void conform_mirror_view_set_empty_text(ConformMirrorView *self, const char *text);
void conform_mirror_view_set_mode(ConformMirrorView *self, ConformMirrorMode mode);
ConformMirrorMode conform_mirror_view_get_mode(ConformMirrorView *self);
/* The header's toggle button of a mode (for tests and keyboard focus). */
GtkWidget *conform_mirror_view_get_mode_button(ConformMirrorView *self, ConformMirrorMode mode);
/* The one-line explanation of the current mode shown in the header. */
const char *conform_mirror_view_get_caption(ConformMirrorView *self);
/* The maps are shown (a 2-D sample set with grids was set). */
gboolean conform_mirror_view_has_maps(ConformMirrorView *self);
/* Samples the main panel left out at the last draw (outside its limits,
 * which follow the grid and g(held-out data), or non-finite); a note in
 * the panel gives the count. */
int conform_mirror_view_get_n_outside(ConformMirrorView *self);
/* The text the empty state draws now ("" when the maps are shown). */
const char *conform_mirror_view_get_empty_text(ConformMirrorView *self);

/* Draw into any cairo context (no background painted). */
void conform_mirror_view_draw(ConformMirrorView *self, cairo_t *cr, int width, int height);
gboolean conform_mirror_view_export_png(ConformMirrorView *self, const char *path, int width, int height,
                                        GError **error);

G_END_DECLS
