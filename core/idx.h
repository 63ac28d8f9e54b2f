/* Image data sets: IDX parsing (the MNIST / Fashion-MNIST container format)
 * from a memory buffer, and helpers on image sets (downsampling, subsets,
 * class filtering and counts, the [0,1] <-> [-1,1] normalisation record).
 *
 * IDX layout (big-endian): 2 zero bytes, a type byte (0x08 = unsigned byte),
 * the number of dimensions, then one u32 per dimension, then the elements.
 * Images: magic 0x00000803 (n, H, W). Labels: magic 0x00000801 (n).
 * Reading files (and gunzip) is the app layer's job; core sees bytes only. */
#ifndef CF_IDX_H
#define CF_IDX_H

#include <stdbool.h>
#include <stddef.h>

#include "data.h"
#include "status.h"

#define CF_IDX_MAGIC_IMAGES 0x00000803u
#define CF_IDX_MAGIC_LABELS 0x00000801u
#define CF_IDX_TYPE_U8 0x08
#define CF_IDX_MAX_DIMS 4          /* largest header this module reads: 4 + 4 * 4 bytes */
#define CF_IDX_MAX_HEADER (4 + 4 * CF_IDX_MAX_DIMS)
#define CF_IDX_MAX_N 10000000      /* images or labels per file */
#define CF_IDX_MAX_SIDE 4096       /* H and W */
#define CF_IDX_MAX_ELEMENTS (1ull << 31) /* n * H * W: 2 GiB of u8, 8 GiB of floats */
#define CF_IMAGE_MAX_CLASSES 256

typedef struct {
  int n, C, H, W;
  float *pixels; /* n x (C*H*W), each row CHW; raw values in [0, 1] (u8 / 255);
                    64-byte aligned (cf_alloc_floats) */
  int *labels;   /* n, or NULL */
  int n_classes; /* 0 when unlabelled; otherwise every label is in [0, n_classes) */
} CfImageSet;

void cf_image_set_init(CfImageSet *s);
void cf_image_set_clear(CfImageSet *s);
/* Allocates zeroed pixels (and labels when `labels`); bounds as for IDX. */
CfStatus cf_image_set_alloc(CfImageSet *s, int n, int C, int H, int W, bool labels, CfError *err);
/* C * H * W: the length of one row. */
size_t cf_image_set_dim(const CfImageSet *s);

/* A validated IDX header. */
typedef struct {
  unsigned magic;        /* e.g. 0x00000803 */
  int ndims;
  int dims[CF_IDX_MAX_DIMS];
  size_t header_bytes;   /* 4 + 4 * ndims */
  size_t data_bytes;     /* product of dims (u8 elements) */
} CfIdxHeader;

/* Validates the header at the start of buf (only the header bytes are
 * needed, so a reader can bound how much it reads before it reads it):
 * magic == expected_magic (CF_IDX_MAGIC_IMAGES or CF_IDX_MAGIC_LABELS), every
 * dimension in range, size arithmetic without overflow. Messages start with
 * `name`. */
CfStatus cf_idx_read_header(CfIdxHeader *h, unsigned expected_magic, const unsigned char *buf, size_t len,
                            const char *name, CfError *err);

/* Parses a whole IDX image file (magic 0x00000803, n x H x W u8) into s
 * (C = 1, pixels = u8 / 255, no labels). len must be exactly header + n*H*W
 * ("truncated: ..." or "... trailing bytes" otherwise). Everything is
 * validated before anything is allocated; s is replaced only on success. */
CfStatus cf_idx_parse_images(CfImageSet *s, const unsigned char *buf, size_t len, const char *name,
                             CfError *err);
/* Parses a whole IDX label file (magic 0x00000801, n u8). On success
 * *labels is a malloc'd array of *n ints (free with free()). */
CfStatus cf_idx_parse_labels(int **labels, int *n, const unsigned char *buf, size_t len, const char *name,
                             CfError *err);

/* Attaches labels (n of them, each in [0, 256)) to s: n must equal s->n.
 * Copies them; sets n_classes = max label + 1. `name` names the label
 * source in messages. */
CfStatus cf_image_set_set_labels(CfImageSet *s, const int *labels, int n, const char *name, CfError *err);

/* dst = factor x factor box average of src (H and W must be multiples of
 * factor; e.g. 28 -> 14 with factor 2). Labels are copied. dst != src. */
CfStatus cf_image_set_downsample(CfImageSet *dst, const CfImageSet *src, int factor, CfError *err);
/* dst = rows idx[0..k) of src (indices checked), labels copied. */
CfStatus cf_image_set_subset(CfImageSet *dst, const CfImageSet *src, const int *idx, int k, CfError *err);
/* dst = the images of src whose label is one of classes[0..n_keep); labels
 * are kept as they are (n_classes unchanged) unless `relabel`, which maps
 * classes[i] -> i and sets n_classes = n_keep. src must be labelled. */
CfStatus cf_image_set_filter_classes(CfImageSet *dst, const CfImageSet *src, const int *classes, int n_keep,
                                     bool relabel, CfError *err);
/* counts[c] = number of images with label c, for c in [0, n_classes). */
void cf_image_set_class_counts(const CfImageSet *s, int *counts);

/* The normalisation record of image data: raw pixel x in [0,1], model value
 * u = 2 x - 1 in [-1,1], i.e. mean 0.5 and scale 0.5 on every coordinate,
 * so cf_norm_apply / cf_norm_invert map raw <-> model exactly as for vector
 * data. dim = C*H*W (at most CF_DATA_MAX_DIM). */
CfStatus cf_image_norm(CfNorm *nm, int dim, CfError *err);
/* A vector data set view of the images (copies: d->x = pixels, labels). */
CfStatus cf_image_set_to_dataset(CfDataset *d, const CfImageSet *s, CfError *err);

#endif
