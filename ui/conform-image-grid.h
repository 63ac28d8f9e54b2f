/* ConformImageGrid: generated images in a grid, as the user sees them
 * (grayscale, raw pixel values mapped from [lo, hi] to black..white), each
 * optionally framed by its constraint violation (bluish green: satisfied,
 * vermillion: violated) with the violation printed under it; given inputs
 * (a superres thumbnail) framed blue. Hovering an image rings it and shows
 * its readout ("sample 12 · violation 3.2e-5 (within tolerance 1e-4)").
 * Used instead of the scatter plot when the experiment's data are images,
 * for the sampling trajectory and the super-resolution candidates. */
#pragma once

#include <gtk/gtk.h>

G_BEGIN_DECLS

#define CONFORM_TYPE_IMAGE_GRID (conform_image_grid_get_type())
G_DECLARE_FINAL_TYPE(ConformImageGrid, conform_image_grid, CONFORM, IMAGE_GRID, GtkWidget)

GtkWidget *conform_image_grid_new(void);
/* n images of H x W floats (copied; at most CONFORM_IMAGE_GRID_MAX shown),
 * viol (n, may be NULL) their violations and tol the tolerance. */
#define CONFORM_IMAGE_GRID_MAX 256
void conform_image_grid_set_images(ConformImageGrid *self, const float *x, int n, int H, int W, const double *viol,
                                   double tol);
/* Per-image hover labels (n strings; NULL: "sample i") and flags for
 * given inputs (n; e.g. a superres thumbnail: framed blue, no violation);
 * call after set_images, which clears both. */
void conform_image_grid_set_labels(ConformImageGrid *self, const char *const *labels, const gboolean *inputs);
/* The column count is a multiple of k (e.g. 2 for thumbnail + image pairs). */
void conform_image_grid_set_column_multiple(ConformImageGrid *self, int k);
void conform_image_grid_set_range(ConformImageGrid *self, double lo, double hi);
void conform_image_grid_set_caption(ConformImageGrid *self, const char *text);
int conform_image_grid_get_n_images(ConformImageGrid *self);
/* Image i as shown (H x W floats, borrowed; NULL out of range) and the
 * centre of its cell in a widget of that size (FALSE out of range). */
const float *conform_image_grid_get_image(ConformImageGrid *self, int i);
gboolean conform_image_grid_get_cell_center(ConformImageGrid *self, int width, int height, int i, double *x,
                                            double *y);
/* Layout for a widget size: columns and the side of one cell in pixels. */
void conform_image_grid_get_layout(ConformImageGrid *self, int width, int height, int *cols, double *cell);
/* The image at (x, y) of a widget of that size, -1 for none. */
int conform_image_grid_index_at(ConformImageGrid *self, int width, int height, double x, double y);
/* Hover (the pointer, or tests): a ring around image i and its readout
 * beside it; -1 hides it. */
void conform_image_grid_set_hover(ConformImageGrid *self, int i);
int conform_image_grid_get_hover(ConformImageGrid *self);
/* Image i's readout: "sample 12 · violation 3.2e-5 (within tolerance
 * 1e-4)" (its label instead of "sample 12"; inputs and images without
 * violations: the label alone); NULL out of range. g_free. */
char *conform_image_grid_get_readout(ConformImageGrid *self, int i);
/* Draws the grid (with the hover readout when one is shown; PNG export
 * leaves it out). */
void conform_image_grid_draw(ConformImageGrid *self, cairo_t *cr, int width, int height);
gboolean conform_image_grid_export_png(ConformImageGrid *self, const char *path, int width, int height,
                                       GError **error);

G_END_DECLS
