/* Image data in the app layer: IDX files (gzip or plain) read through GIO,
 * Fashion-MNIST from the Debian package dataset-fashion-mnist, a folder of
 * PNG files imported as grayscale images, and image grids written as PNG.
 * Pixel values are raw [0, 1] floats in a CfImageSet (core/idx.h); map them
 * to the model's [-1, 1] with cf_image_norm(). Errors are GErrors in
 * CONFORM_ERROR (conform-config.h) whose messages name the file or folder. */
#pragma once

#include <glib.h>

#include "idx.h"

G_BEGIN_DECLS

#define CONFORM_FASHION_MNIST_DIR "/usr/share/datasets/fashion-mnist"
#define CONFORM_FASHION_MNIST_CLASSES 10
/* Largest PNG file (compressed bytes) the folder import reads. */
#define CONFORM_PNG_MAX_FILE_BYTES ((gsize)64 << 20)

/* Reads a whole IDX file, gunzipping it when it starts with the gzip magic
 * (1f 8b), otherwise as plain bytes. The header is read and validated first
 * (cf_idx_read_header with expected_magic); the rest is read in bounded
 * chunks and never beyond header + data size from that validated header, so
 * a lying size field or a gzip bomb cannot make it allocate more than the
 * file really holds (nor more than CF_IDX_MAX_ELEMENTS). Data after the
 * expected end is an error ("N trailing bytes"), and so are bytes after the
 * end of the gzip stream (garbage, a second member). A short file is returned as
 * it is, so cf_idx_parse_* can report the truncation. *data is g_free'd. */
gboolean conform_idx_load_gz(const char *path, unsigned expected_magic, guint8 **data, gsize *len,
                             GError **error);
/* The same from file contents in memory (bytes are borrowed); `name`
 * (may be NULL) names them in messages. */
gboolean conform_idx_load_gz_from_data(const guint8 *bytes, gsize n, const char *name, unsigned expected_magic,
                                       guint8 **data, gsize *len, GError **error);
/* conform_idx_load_gz + cf_idx_parse_images / cf_idx_parse_labels. */
gboolean conform_idx_load_images(const char *path, CfImageSet *out, GError **error);
gboolean conform_idx_load_labels(const char *path, int **labels, int *n, GError **error);

/* The ten class names, index = label ("T-shirt/top", ..., "Ankle boot"). */
const char *const *conform_fashion_mnist_class_names(void);
/* Loads the train (60000) or test ("t10k", 10000) split with labels and
 * n_classes = 10, from dir (NULL: CONFORM_FASHION_MNIST_DIR; files
 * {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]). downsample <= 1 keeps
 * 28 x 28; 2 gives 14 x 14, 4 gives 7 x 7 (box average). *out is replaced
 * only on success. */
gboolean conform_fashion_mnist_load(const char *dir, gboolean train, int downsample, CfImageSet *out,
                                    GError **error);

/* Decodes one PNG (any libpng colour type: gray, gray+alpha, RGB, RGBA,
 * palette, with or without tRNS, 1-16 bits, interlaced or not) to
 * grayscale: Rec. 709 luma Y' = 0.2126 R' + 0.7152 G' + 0.0722 B' on the
 * stored (gamma-encoded) values, alpha composited on BLACK (Y' * alpha: the
 * background of MNIST-style data is 0). The result is resized to
 * size x size (each axis independently, aspect ratio not kept): area
 * averaging along an axis that shrinks, bilinear along one that grows.
 * out holds size * size floats in [0, 1]. */
gboolean conform_png_load_gray(const char *path, int size, float *out, GError **error);
/* The same from PNG file contents in memory; `name` (may be NULL) starts
 * the error message. */
gboolean conform_png_decode_gray(const guint8 *data, gsize len, const char *name, int size, float *out,
                                 GError **error);
/* Every *.png / *.PNG regular file directly in dir (not recursive), sorted
 * by name (byte order), decoded as above into out (C = 1, H = W = size,
 * unlabelled). Unreadable or invalid files are skipped and, if skipped is
 * non-NULL, listed in the new array *skipped as "name: reason". No usable
 * image at all is an error naming the folder. */
gboolean conform_png_folder_import(const char *dir, int size, CfImageSet *out, GPtrArray **skipped,
                                   GError **error);

/* Writes n images (each H x W floats, row-major, consecutive) as a grid PNG
 * with `cols` columns (clamped to n), values mapped linearly from [lo, hi]
 * to black..white (clamped; NaN shows as black), each image upscaled by
 * the integer `scale` (nearest neighbour, 1..32), separated by 2 px of mid
 * gray (128) lines, also around the outside. Captions are not drawn (no
 * text rendering below the UI): instead border_rgb, if non-NULL, gives each
 * image a 2 px frame of colour 0xRRGGBB (e.g. 0xd62728 for a violated
 * constraint, 0x2ca02c for a satisfied one) and the PNG is RGB; without it
 * the PNG is 8-bit grayscale. Written atomically (conform_write_atomic):
 * on failure no partial file is left behind. */
gboolean conform_image_grid_write_png(const char *path, const float *images, int n, int H, int W, int cols,
                                      float lo, float hi, const guint32 *border_rgb, int scale, GError **error);
/* The same grid encoded in memory (e.g. for a clipboard or a preview). */
GBytes *conform_image_grid_encode_png(const float *images, int n, int H, int W, int cols, float lo, float hi,
                                      const guint32 *border_rgb, int scale, GError **error);

G_END_DECLS
