/* Image data sources of experiments (data.source): Fashion-MNIST as it is
 * and with the transforms the image constraint presets need, at
 * data.image_size 28 or 14. Rows are raw pixels in [0, 1] (CHW, C = 1);
 * the model space is 2 x - 1 (cf_image_norm). */
#pragma once

#include <glib.h>

#include "conform-config.h"
#include "data.h"

G_BEGIN_DECLS

/* fashion-mnist (as is), fashion-brightness (every image rescaled to the
 * total intensity 0.25 H W), fashion-symmetric (every image averaged with
 * its left-right mirror). */
gboolean conform_image_source_is(const char *name);
/* Training rows: the first n_train of a fixed shuffle (seed) of the train
 * split; reference rows: the first n_ref test images (so test image i is
 * reference row i). Labels are kept. */
gboolean conform_image_source_load(const ConformConfig *cfg, CfDataset *train, CfDataset *ref, GError **error);
/* The constraint the source's data satisfy exactly (FALSE with no error for
 * fashion-mnist, which has none): 1^T x = 0.25 H W (brightness) or
 * x[i][j] - x[i][W-1-j] = 0, j < W/2 (symmetric: H W / 2 rows). */
gboolean conform_image_source_constraint(const char *name, int size, CfConstraint *c, GError **error);

G_END_DECLS
