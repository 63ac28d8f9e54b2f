/* Image data sources of experiments (data.source): Fashion-MNIST as it is
 * and with the transforms the image constraint presets need, and a folder
 * of the user's PNG files, at data.image_size 28 or 14. Rows are raw pixels
 * in [0, 1] (CHW, C = 1); the model space is 2 x - 1 (cf_image_norm).
 * fashion-superres rows are [thumbnail (49) | image]: the image is always
 * the last size * size columns of a row (conform_image_row_offset). */
#pragma once

#include <glib.h>

#include "conform-config.h"
#include "data.h"

G_BEGIN_DECLS

/* Side of the fashion-superres thumbnail (7 x 7 = 49 inputs). */
#define CONFORM_SUPERRES_THUMB 7

/* fashion-mnist (as is), fashion-brightness (every image rescaled to the
 * total intensity 0.25 H W), fashion-symmetric (every image averaged with
 * its left-right mirror), fashion-superres (each image preceded by its 7 x 7
 * thumbnail, the average over 4 x 4 blocks at 28 x 28, 2 x 2 at 14 x 14),
 * or an existing directory: a folder of PNG files (any colour type,
 * converted to gray and resized; conform_png_folder_import). */
gboolean conform_image_source_is(const char *name);
gboolean conform_image_source_is_folder(const char *name);
/* Leading input columns a source's rows carry (data.inputs must equal
 * it): 49 for fashion-superres, 0 otherwise. */
int conform_image_source_inputs(const char *name);
/* Column of a row where its image starts: dim - size * size. */
int conform_image_row_offset(int dim, int size);
/* Fashion-MNIST: training rows are the first n_train of a fixed shuffle
 * (seed) of the train split; reference rows the first n_ref test images (so
 * test image i is reference row i). Labels are kept.
 * A folder: every usable image, shuffled by the seed; 10% (at least 1, at
 * most n_ref) are held out as the reference; fewer than 20 usable images is
 * an error. Files that cannot be read are skipped and named in *warnings
 * (NULL when none; g_free). */
gboolean conform_image_source_load(const ConformConfig *cfg, CfDataset *train, CfDataset *ref, char **warnings,
                                   GError **error);
/* The constraint the source's data satisfy exactly (FALSE with no error for
 * fashion-mnist and folders, which have none): 1^T x = 0.25 H W
 * (brightness), x[i][j] - x[i][W-1-j] = 0, j < W/2 (symmetric: H W / 2
 * rows), or -t_r + (block mean r of the image) = 0 for the 49 thumbnail
 * values t (superres: A = [-I | P], b = 0, so with the thumbnail as input
 * x the images obey P y = k with the per-sample k = t). */
gboolean conform_image_source_constraint(const char *name, int size, CfConstraint *c, GError **error);

/* The 7 x 7 superres thumbnail (the first 49 values of a fashion-superres
 * row) upscaled to size x size by nearest neighbour (size a multiple of 7),
 * as samples.png and the window show it beside its images. */
void conform_image_thumbnail_upscale(const float *thumb, int size, float *out);

/* samples.png of image rows (n x dim, raw [0, 1]; the image is the last
 * size * size columns), 2x, 8 cells per grid row. Without inputs: the
 * images, framed by frame_rgb[i] when it is non-NULL. With the superres
 * thumbnail (inputs = 49): samples sharing a thumbnail form a group shown
 * as the thumbnail (upscaled to size x size, nearest, framed blue) followed
 * by its samples; a group that does not fit the rest of a grid row goes on
 * in the next one, starting with its thumbnail again; so one shared
 * thumbnail (--condition-image) gives rows of thumbnail + 7 candidates,
 * distinct thumbnails pairs of thumbnail and sample. Samples are framed by
 * frame_rgb (or not visibly when it is NULL). */
gboolean conform_image_samples_write_png(const char *path, const float *rows, int n, int dim, int size, int inputs,
                                         const guint32 *frame_rgb, GError **error);

G_END_DECLS
