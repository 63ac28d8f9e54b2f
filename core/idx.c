/* IDX parsing and image set helpers (see idx.h). */
#include "idx.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void
cf_image_set_init(CfImageSet *s)
{
  CF_ASSERT(s != NULL);
  s->n = s->C = s->H = s->W = 0;
  s->pixels = NULL;
  s->labels = NULL;
  s->n_classes = 0;
}

void
cf_image_set_clear(CfImageSet *s)
{
  if (!s)
    return;
  cf_free_aligned(s->pixels);
  free(s->labels);
  cf_image_set_init(s);
}

size_t
cf_image_set_dim(const CfImageSet *s)
{
  CF_ASSERT(s != NULL);
  return (size_t)s->C * (size_t)s->H * (size_t)s->W;
}

/* a * b into *out unless it overflows size_t or exceeds limit. */
static bool
mul_bounded(size_t a, size_t b, size_t limit, size_t *out)
{
  if (a != 0 && b > SIZE_MAX / a)
    return false;
  size_t p = a * b;
  if (p > limit)
    return false;
  *out = p;
  return true;
}

CfStatus
cf_image_set_alloc(CfImageSet *s, int n, int C, int H, int W, bool labels, CfError *err)
{
  CF_ASSERT(s != NULL);
  if (n <= 0 || n > CF_IDX_MAX_N)
    return cf_error_set(err, CF_ERR_INVALID, "image count %d out of range (1..%d)", n, CF_IDX_MAX_N);
  if (C <= 0 || C > 4 || H <= 0 || H > CF_IDX_MAX_SIDE || W <= 0 || W > CF_IDX_MAX_SIDE)
    return cf_error_set(err, CF_ERR_INVALID, "image shape %d x %d x %d out of range (C 1..4, H and W 1..%d)", C, H,
                        W, CF_IDX_MAX_SIDE);
  size_t dim, total;
  if (!mul_bounded((size_t)C * (size_t)H, (size_t)W, SIZE_MAX, &dim) ||
      !mul_bounded(dim, (size_t)n, (size_t)CF_IDX_MAX_ELEMENTS, &total))
    return cf_error_set(err, CF_ERR_NOMEM, "%d images of %d x %d x %d exceed the limit of %llu values", n, C, H, W,
                        (unsigned long long)CF_IDX_MAX_ELEMENTS);
  CfImageSet tmp;
  cf_image_set_init(&tmp);
  tmp.pixels = cf_alloc_floats(total);
  if (labels)
    tmp.labels = cf_calloc_array((size_t)n, sizeof(int));
  if (!tmp.pixels || (labels && !tmp.labels)) {
    cf_image_set_clear(&tmp);
    return cf_error_set(err, CF_ERR_NOMEM, "out of memory for %d images of %d x %d x %d", n, C, H, W);
  }
  tmp.n = n;
  tmp.C = C;
  tmp.H = H;
  tmp.W = W;
  cf_image_set_clear(s);
  *s = tmp;
  return CF_OK;
}

/* ------------------------------------------------------------------------ */
/* IDX                                                                      */

static uint32_t
be32(const unsigned char *p)
{
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

static const char *
idx_type_name(unsigned t)
{
  switch (t) {
  case 0x08: return "unsigned byte";
  case 0x09: return "signed byte";
  case 0x0B: return "short";
  case 0x0C: return "int";
  case 0x0D: return "float";
  case 0x0E: return "double";
  default: return "unknown type";
  }
}

static const char *
idx_kind(unsigned magic)
{
  return magic == CF_IDX_MAGIC_IMAGES ? "images" : magic == CF_IDX_MAGIC_LABELS ? "labels" : "data";
}

CfStatus
cf_idx_read_header(CfIdxHeader *h, unsigned expected_magic, const unsigned char *buf, size_t len,
                   const char *name, CfError *err)
{
  CF_ASSERT(h != NULL);
  CF_ASSERT(expected_magic == CF_IDX_MAGIC_IMAGES || expected_magic == CF_IDX_MAGIC_LABELS);
  if (!name)
    name = "(buffer)";
  const int want_dims = (int)(expected_magic & 0xffu);
  const size_t want_header = 4 + 4 * (size_t)want_dims;
  memset(h, 0, sizeof *h);
  if (!buf || len < 4)
    return cf_error_set(err, CF_ERR_CORRUPT,
                        "%s: %s (%zu bytes); an IDX %s file starts with a %zu-byte header, magic 0x%08x",
                        name, len ? "too short for an IDX header" : "empty file", len, idx_kind(expected_magic),
                        want_header, expected_magic);
  const unsigned magic = be32(buf);
  if (buf[0] != 0 || buf[1] != 0)
    return cf_error_set(err, CF_ERR_CORRUPT,
                        "%s: not an IDX file: magic 0x%08x, expected 0x%08x (IDX %s: unsigned byte, %d dimension%s)",
                        name, magic, expected_magic, idx_kind(expected_magic), want_dims, want_dims == 1 ? "" : "s");
  if (buf[2] != CF_IDX_TYPE_U8)
    return cf_error_set(err, CF_ERR_CORRUPT,
                        "%s: wrong IDX element type 0x%02x (%s) in magic 0x%08x, expected 0x%02x (unsigned byte), "
                        "magic 0x%08x",
                        name, buf[2], idx_type_name(buf[2]), magic, CF_IDX_TYPE_U8, expected_magic);
  if (buf[3] != want_dims)
    return cf_error_set(err, CF_ERR_CORRUPT,
                        "%s: wrong number of IDX dimensions %d (magic 0x%08x), expected %d for %s (magic 0x%08x)",
                        name, buf[3], magic, want_dims, idx_kind(expected_magic), expected_magic);
  if (len < want_header)
    return cf_error_set(err, CF_ERR_CORRUPT, "%s: truncated header: expected %zu bytes, found %zu", name,
                        want_header, len);
  /* Bounds on each dimension first, then the product with overflow checks. */
  static const char *const img_names[3] = {"image count", "height", "width"};
  size_t product = 1;
  for (int i = 0; i < want_dims; i++) {
    const uint32_t d = be32(buf + 4 + 4 * (size_t)i);
    const uint32_t max = i == 0 ? CF_IDX_MAX_N : CF_IDX_MAX_SIDE;
    const char *what = expected_magic == CF_IDX_MAGIC_LABELS ? "label count" : img_names[i];
    if (d == 0 || d > max)
      return cf_error_set(err, CF_ERR_CORRUPT, "%s: %s %lu (dimension %d) out of range (1..%lu)", name, what,
                          (unsigned long)d, i + 1, (unsigned long)max);
    if (!mul_bounded(product, (size_t)d, (size_t)CF_IDX_MAX_ELEMENTS, &product))
      return cf_error_set(err, CF_ERR_CORRUPT, "%s: dimensions too large: more than %llu elements", name,
                          (unsigned long long)CF_IDX_MAX_ELEMENTS);
    h->dims[i] = (int)d;
  }
  h->magic = magic;
  h->ndims = want_dims;
  h->header_bytes = want_header;
  h->data_bytes = product;
  return CF_OK;
}

/* The exact-length check shared by images and labels. */
static CfStatus
idx_check_length(const CfIdxHeader *h, size_t len, const char *name, const char *what, CfError *err)
{
  const size_t have = len - h->header_bytes;
  if (have < h->data_bytes)
    return cf_error_set(err, CF_ERR_CORRUPT, "%s: truncated: expected %zu bytes of %s data, found %zu", name,
                        h->data_bytes, what, have);
  if (have > h->data_bytes)
    return cf_error_set(err, CF_ERR_CORRUPT, "%s: %zu trailing bytes after %zu bytes of %s data", name,
                        have - h->data_bytes, h->data_bytes, what);
  return CF_OK;
}

CfStatus
cf_idx_parse_images(CfImageSet *s, const unsigned char *buf, size_t len, const char *name, CfError *err)
{
  CF_ASSERT(s != NULL);
  if (!name)
    name = "(buffer)";
  CfIdxHeader h;
  CfStatus st = cf_idx_read_header(&h, CF_IDX_MAGIC_IMAGES, buf, len, name, err);
  if (st != CF_OK)
    return st;
  st = idx_check_length(&h, len, name, "pixel", err);
  if (st != CF_OK)
    return st;
  CfImageSet tmp;
  cf_image_set_init(&tmp);
  st = cf_image_set_alloc(&tmp, h.dims[0], 1, h.dims[1], h.dims[2], false, err);
  if (st != CF_OK) {
    cf_error_prefix(err, "%s", name);
    return st;
  }
  const unsigned char *src = buf + h.header_bytes;
  float lut[256];
  for (int v = 0; v < 256; v++)
    lut[v] = (float)v / 255.0f;
  for (size_t i = 0; i < h.data_bytes; i++)
    tmp.pixels[i] = lut[src[i]];
  cf_image_set_clear(s);
  *s = tmp;
  return CF_OK;
}

CfStatus
cf_idx_parse_labels(int **labels, int *n, const unsigned char *buf, size_t len, const char *name, CfError *err)
{
  CF_ASSERT(labels != NULL && n != NULL);
  if (!name)
    name = "(buffer)";
  CfIdxHeader h;
  CfStatus st = cf_idx_read_header(&h, CF_IDX_MAGIC_LABELS, buf, len, name, err);
  if (st != CF_OK)
    return st;
  st = idx_check_length(&h, len, name, "label", err);
  if (st != CF_OK)
    return st;
  int *out = cf_alloc_array(h.data_bytes, sizeof(int));
  if (!out)
    return cf_error_set(err, CF_ERR_NOMEM, "%s: out of memory for %zu labels", name, h.data_bytes);
  const unsigned char *src = buf + h.header_bytes;
  for (size_t i = 0; i < h.data_bytes; i++)
    out[i] = src[i];
  *labels = out;
  *n = h.dims[0];
  return CF_OK;
}

CfStatus
cf_image_set_set_labels(CfImageSet *s, const int *labels, int n, const char *name, CfError *err)
{
  CF_ASSERT(s != NULL);
  if (!name)
    name = "(labels)";
  if (!labels || n != s->n)
    return cf_error_set(err, CF_ERR_SHAPE, "%s: %d labels for %d images", name, labels ? n : 0, s->n);
  int max = -1;
  for (int i = 0; i < n; i++) {
    if (labels[i] < 0 || labels[i] >= CF_IMAGE_MAX_CLASSES)
      return cf_error_set(err, CF_ERR_INVALID, "%s: label %d of image %d out of range (0..%d)", name, labels[i],
                          i + 1, CF_IMAGE_MAX_CLASSES - 1);
    if (labels[i] > max)
      max = labels[i];
  }
  int *copy = cf_alloc_array((size_t)n, sizeof(int));
  if (!copy)
    return cf_error_set(err, CF_ERR_NOMEM, "%s: out of memory for %d labels", name, n);
  memcpy(copy, labels, (size_t)n * sizeof(int));
  free(s->labels);
  s->labels = copy;
  s->n_classes = max + 1;
  return CF_OK;
}

/* ------------------------------------------------------------------------ */
/* Image set helpers                                                        */

static void
copy_labels_meta(CfImageSet *dst, const CfImageSet *src)
{
  dst->n_classes = src->labels ? src->n_classes : 0;
}

CfStatus
cf_image_set_downsample(CfImageSet *dst, const CfImageSet *src, int factor, CfError *err)
{
  CF_ASSERT(dst != NULL && src != NULL && dst != src);
  if (src->n <= 0 || !src->pixels)
    return cf_error_set(err, CF_ERR_INVALID, "cannot downsample an empty image set");
  if (factor < 1 || src->H % factor != 0 || src->W % factor != 0)
    return cf_error_set(err, CF_ERR_INVALID, "downsampling factor %d must be >= 1 and divide the image size %d x %d",
                        factor, src->H, src->W);
  const int C = src->C, H = src->H, W = src->W, h = H / factor, w = W / factor;
  CfImageSet tmp;
  cf_image_set_init(&tmp);
  CfStatus st = cf_image_set_alloc(&tmp, src->n, C, h, w, src->labels != NULL, err);
  if (st != CF_OK)
    return st;
  const float inv = 1.0f / (float)(factor * factor);
  const size_t in_dim = cf_image_set_dim(src), out_dim = cf_image_set_dim(&tmp);
  for (int i = 0; i < src->n; i++) {
    const float *in = src->pixels + (size_t)i * in_dim;
    float *out = tmp.pixels + (size_t)i * out_dim;
    for (int c = 0; c < C; c++)
      for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
          float sum = 0.0f;
          for (int dy = 0; dy < factor; dy++) {
            const float *row = in + ((size_t)c * H + (size_t)(y * factor + dy)) * W + (size_t)x * factor;
            for (int dx = 0; dx < factor; dx++)
              sum += row[dx];
          }
          out[((size_t)c * h + y) * w + x] = sum * inv;
        }
  }
  if (src->labels)
    memcpy(tmp.labels, src->labels, (size_t)src->n * sizeof(int));
  copy_labels_meta(&tmp, src);
  cf_image_set_clear(dst);
  *dst = tmp;
  return CF_OK;
}

CfStatus
cf_image_set_subset(CfImageSet *dst, const CfImageSet *src, const int *idx, int k, CfError *err)
{
  CF_ASSERT(dst != NULL && src != NULL && dst != src);
  if (k <= 0 || !idx)
    return cf_error_set(err, CF_ERR_INVALID, "a subset needs at least one image (got %d)", k);
  for (int j = 0; j < k; j++)
    if (idx[j] < 0 || idx[j] >= src->n)
      return cf_error_set(err, CF_ERR_INVALID, "subset index %d (entry %d) out of range (0..%d)", idx[j], j,
                          src->n - 1);
  CfImageSet tmp;
  cf_image_set_init(&tmp);
  CfStatus st = cf_image_set_alloc(&tmp, k, src->C, src->H, src->W, src->labels != NULL, err);
  if (st != CF_OK)
    return st;
  const size_t dim = cf_image_set_dim(src);
  for (int j = 0; j < k; j++) {
    memcpy(tmp.pixels + (size_t)j * dim, src->pixels + (size_t)idx[j] * dim, dim * sizeof(float));
    if (src->labels)
      tmp.labels[j] = src->labels[idx[j]];
  }
  copy_labels_meta(&tmp, src);
  cf_image_set_clear(dst);
  *dst = tmp;
  return CF_OK;
}

CfStatus
cf_image_set_filter_classes(CfImageSet *dst, const CfImageSet *src, const int *classes, int n_keep, bool relabel,
                            CfError *err)
{
  CF_ASSERT(dst != NULL && src != NULL && dst != src);
  if (!src->labels || src->n_classes <= 0)
    return cf_error_set(err, CF_ERR_INVALID, "class filtering needs a labelled image set");
  if (!classes || n_keep <= 0)
    return cf_error_set(err, CF_ERR_INVALID, "class filtering needs at least one class");
  int map[CF_IMAGE_MAX_CLASSES];
  for (int c = 0; c < CF_IMAGE_MAX_CLASSES; c++)
    map[c] = -1;
  for (int j = 0; j < n_keep; j++) {
    if (classes[j] < 0 || classes[j] >= src->n_classes)
      return cf_error_set(err, CF_ERR_INVALID, "class %d out of range (0..%d)", classes[j], src->n_classes - 1);
    if (map[classes[j]] >= 0)
      return cf_error_set(err, CF_ERR_INVALID, "class %d listed twice", classes[j]);
    map[classes[j]] = j;
  }
  int k = 0;
  for (int i = 0; i < src->n; i++)
    k += map[src->labels[i]] >= 0;
  if (k == 0)
    return cf_error_set(err, CF_ERR_INVALID, "no image belongs to the selected classes");
  int *idx = cf_alloc_array((size_t)k, sizeof(int));
  if (!idx)
    return cf_error_set(err, CF_ERR_NOMEM, "out of memory filtering classes");
  for (int i = 0, j = 0; i < src->n; i++)
    if (map[src->labels[i]] >= 0)
      idx[j++] = i;
  CfStatus st = cf_image_set_subset(dst, src, idx, k, err);
  free(idx);
  if (st == CF_OK && relabel) {
    for (int j = 0; j < k; j++)
      dst->labels[j] = map[dst->labels[j]];
    dst->n_classes = n_keep;
  }
  return st;
}

void
cf_image_set_class_counts(const CfImageSet *s, int *counts)
{
  CF_ASSERT(s != NULL && counts != NULL);
  for (int c = 0; c < s->n_classes; c++)
    counts[c] = 0;
  if (!s->labels)
    return;
  for (int i = 0; i < s->n; i++) {
    CF_ASSERT(s->labels[i] >= 0 && s->labels[i] < s->n_classes);
    counts[s->labels[i]]++;
  }
}

CfStatus
cf_image_norm(CfNorm *nm, int dim, CfError *err)
{
  CF_ASSERT(nm != NULL);
  if (dim <= 0 || dim > CF_DATA_MAX_DIM)
    return cf_error_set(err, CF_ERR_INVALID, "image dimension %d out of range (1..%d)", dim, CF_DATA_MAX_DIM);
  float *half = cf_alloc_floats((size_t)dim);
  if (!half)
    return cf_error_set(err, CF_ERR_NOMEM, "out of memory for a normalisation of dimension %d", dim);
  for (int j = 0; j < dim; j++)
    half[j] = 0.5f;
  /* x = 0.5 u + 0.5  <=>  u = (x - 0.5) / 0.5 = 2 x - 1 */
  CfStatus st = cf_norm_set(nm, dim, half, half, err);
  cf_free_aligned(half);
  return st;
}

CfStatus
cf_image_set_to_dataset(CfDataset *d, const CfImageSet *s, CfError *err)
{
  CF_ASSERT(d != NULL && s != NULL);
  const size_t dim = cf_image_set_dim(s);
  if (s->n <= 0 || !s->pixels)
    return cf_error_set(err, CF_ERR_INVALID, "empty image set");
  if (dim > CF_DATA_MAX_DIM)
    return cf_error_set(err, CF_ERR_INVALID, "image dimension %zu exceeds %d", dim, CF_DATA_MAX_DIM);
  CfDataset tmp;
  cf_dataset_init(&tmp);
  CfStatus st = cf_dataset_alloc(&tmp, s->n, (int)dim, s->labels != NULL, err);
  if (st != CF_OK)
    return st;
  memcpy(tmp.x, s->pixels, (size_t)s->n * dim * sizeof(float));
  if (s->labels) {
    memcpy(tmp.labels, s->labels, (size_t)s->n * sizeof(int));
    tmp.n_classes = s->n_classes;
  }
  cf_dataset_clear(d);
  *d = tmp;
  return CF_OK;
}
