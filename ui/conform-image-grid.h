/* ConformImageGrid: generated images in a grid, as the user sees them
 * (grayscale, raw pixel values mapped from [lo, hi] to black..white), each
 * optionally framed by its constraint violation (bluish green: satisfied,
 * vermillion: violated) with the violation printed under it. Used instead
 * of the scatter plot when the experiment's data are images. */
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
void conform_image_grid_set_range(ConformImageGrid *self, double lo, double hi);
void conform_image_grid_set_caption(ConformImageGrid *self, const char *text);
int conform_image_grid_get_n_images(ConformImageGrid *self);
/* Layout for a widget size: columns and the side of one cell in pixels. */
void conform_image_grid_get_layout(ConformImageGrid *self, int width, int height, int *cols, double *cell);
void conform_image_grid_draw(ConformImageGrid *self, cairo_t *cr, int width, int height);
gboolean conform_image_grid_export_png(ConformImageGrid *self, const char *path, int width, int height,
                                       GError **error);

G_END_DECLS
