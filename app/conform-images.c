#define G_LOG_DOMAIN "conform"

#include "conform-images.h"

#include <gio/gio.h>
#include <math.h>
#include <png.h>
#include <setjmp.h>
#include <string.h>

#include "conform-config.h"
#include "conform-io.h"

/* ------------------------------------------------------------------------ */
/* IDX files                                                                */

#define IDX_CHUNK ((gsize)1 << 20)
/* How far past the expected end we keep counting trailing bytes (decompressed,
 * discarded as they are read) before saying "more than". */
#define IDX_TRAILING_COUNT_MAX ((gsize)16 << 20)

/* The IDX bytes of a file: plain, or gunzipped with `conv` by hand (not
 * through a GConverterInputStream, which drops what follows the end of the
 * gzip stream unseen), so that bytes after the gzip stream are an error. */
typedef struct {
  GInputStream *in;
  GConverter *conv; /* NULL: plain */
  guint8 *z;        /* compressed bytes read, not yet converted: z[zpos, zlen) */
  gsize zpos, zlen;
  gboolean zeof;    /* `in` is at its end */
  gboolean done;    /* the gzip stream ended */
} IdxIn;

#define IDX_ZCHUNK ((gsize)64 << 10)

/* Reads up to count bytes (fewer only at end of stream). */
static gboolean
read_up_to(IdxIn *r, guint8 *buf, gsize count, gsize *got, GError **error)
{
  if (!r->conv)
    return g_input_stream_read_all(r->in, buf, count, got, NULL, error);
  *got = 0;
  while (*got < count && !r->done) {
    if (r->zpos == r->zlen && !r->zeof) {
      gssize k = g_input_stream_read(r->in, r->z, IDX_ZCHUNK, NULL, error);
      if (k < 0)
        return FALSE;
      r->zpos = 0;
      r->zlen = (gsize)k;
      r->zeof = k == 0;
    }
    gsize nr = 0, nw = 0;
    /* with input left (or at its end) and room for output, zlib makes
     * progress or fails: a truncated stream is G_IO_ERROR_PARTIAL_INPUT */
    GConverterResult res = g_converter_convert(r->conv, r->z + r->zpos, r->zlen - r->zpos, buf + *got, count - *got,
                                               r->zeof ? G_CONVERTER_INPUT_AT_END : G_CONVERTER_NO_FLAGS, &nr, &nw,
                                               error);
    if (res == G_CONVERTER_ERROR)
      return FALSE;
    r->zpos += nr;
    *got += nw;
    r->done = res == G_CONVERTER_FINISHED;
  }
  return TRUE;
}

/* After the gzip stream: compressed bytes left in the file (counting at
 * most `max`). */
static gboolean
gzip_leftover(IdxIn *r, gsize max, gsize *left, GError **error)
{
  *left = r->zlen - r->zpos;
  while (!r->zeof && *left <= max) {
    gssize k = g_input_stream_read(r->in, r->z, IDX_ZCHUNK, NULL, error);
    if (k < 0)
      return FALSE;
    r->zeof = k == 0;
    *left += (gsize)k;
  }
  return TRUE;
}

static void
set_read_error(GError **error, const char *path, gboolean gz, GError *e)
{
  if (gz && e->domain == G_IO_ERROR &&
      (e->code == G_IO_ERROR_INVALID_DATA || e->code == G_IO_ERROR_PARTIAL_INPUT ||
       e->code == G_IO_ERROR_FAILED))
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_INPUT, "%s: corrupt or truncated gzip data: %s", path,
                e->message);
  else
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_IO, "cannot read %s: %s", path, e->message);
}

/* conform_idx_load_gz on an open stream; `path` names it in messages. */
static gboolean
idx_load_stream(GInputStream *raw, const char *path, unsigned expected_magic, guint8 **data, gsize *len,
                GError **error)
{
  g_autoptr(GError) e = NULL;
  g_autoptr(GInputStream) bin = g_buffered_input_stream_new(raw);
  /* Peek at the first two bytes: gzip or plain. */
  gsize avail = 0;
  while ((avail = g_buffered_input_stream_get_available(G_BUFFERED_INPUT_STREAM(bin))) < 2) {
    gssize k = g_buffered_input_stream_fill(G_BUFFERED_INPUT_STREAM(bin), 2 - (gssize)avail, NULL, &e);
    if (k < 0) {
      g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_IO, "cannot read %s: %s", path, e->message);
      return FALSE;
    }
    if (k == 0)
      break;
  }
  const guint8 *peek = g_buffered_input_stream_peek_buffer(G_BUFFERED_INPUT_STREAM(bin), &avail);
  const gboolean gz = avail >= 2 && peek[0] == 0x1f && peek[1] == 0x8b;
  g_autoptr(GZlibDecompressor) dec = gz ? g_zlib_decompressor_new(G_ZLIB_COMPRESSOR_FORMAT_GZIP) : NULL;
  g_autofree guint8 *zbuf = gz ? g_malloc(IDX_ZCHUNK) : NULL;
  IdxIn rd = {.in = bin, .conv = gz ? G_CONVERTER(dec) : NULL, .z = zbuf};
  IdxIn *in = &rd;

  /* The header first: 4 bytes, then 4 per dimension (bounded by the type). */
  guint8 hdr[CF_IDX_MAX_HEADER];
  const gsize want_header = 4 + 4 * (gsize)(expected_magic & 0xffu);
  gsize hlen = 0;
  if (!read_up_to(in, hdr, 4, &hlen, &e)) {
    set_read_error(error, path, gz, e);
    return FALSE;
  }
  if (hlen == 4 && hdr[0] == 0 && hdr[1] == 0 && hdr[3] == (expected_magic & 0xffu)) {
    gsize more = 0;
    if (!read_up_to(in, hdr + 4, want_header - 4, &more, &e)) {
      set_read_error(error, path, gz, e);
      return FALSE;
    }
    hlen += more;
  }
  CfIdxHeader h;
  CfError cerr;
  cf_error_clear(&cerr);
  if (cf_idx_read_header(&h, expected_magic, hdr, hlen, path, &cerr) != CF_OK) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_INPUT, "%s", cerr.msg);
    return FALSE;
  }
  const gsize total = h.header_bytes + h.data_bytes; /* bounded by cf_idx_read_header */

  /* The data, in chunks: memory grows with what the file really holds. */
  g_autoptr(GByteArray) buf = g_byte_array_sized_new((guint)MIN(total, IDX_CHUNK));
  g_byte_array_append(buf, hdr, (guint)hlen);
  while (buf->len < total) {
    const gsize old = buf->len, chunk = MIN(total - old, IDX_CHUNK);
    g_byte_array_set_size(buf, (guint)(old + chunk));
    gsize got = 0;
    if (!read_up_to(in, buf->data + old, chunk, &got, &e)) {
      set_read_error(error, path, gz, e);
      return FALSE;
    }
    g_byte_array_set_size(buf, (guint)(old + got));
    if (got < chunk)
      break; /* end of stream: cf_idx_parse_* reports the truncation */
  }
  if (buf->len == total) {
    /* Anything after the end? Read on to EOF (discarding) so that a gzip
     * trailer is checked too, counting at most IDX_TRAILING_COUNT_MAX. */
    g_autofree guint8 *scratch = g_malloc(64 * 1024);
    gsize trailing = 0, got = 0;
    do {
      if (!read_up_to(in, scratch, 64 * 1024, &got, &e)) {
        set_read_error(error, path, gz, e);
        return FALSE;
      }
      trailing += got;
    } while (got > 0 && trailing <= IDX_TRAILING_COUNT_MAX);
    if (trailing > IDX_TRAILING_COUNT_MAX) {
      g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_INPUT, "%s: more than %" G_GSIZE_FORMAT
                  " trailing bytes after %" G_GSIZE_FORMAT " bytes of IDX data", path, IDX_TRAILING_COUNT_MAX, total);
      return FALSE;
    }
    if (trailing > 0) {
      g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_INPUT,
                  "%s: %" G_GSIZE_FORMAT " trailing bytes after %" G_GSIZE_FORMAT " bytes of IDX data", path,
                  trailing, total);
      return FALSE;
    }
  }
  /* Nothing may follow the gzip stream (trailing garbage, a second member). */
  if (gz) {
    gsize left = 0;
    if (!rd.done || !gzip_leftover(&rd, IDX_TRAILING_COUNT_MAX, &left, &e)) {
      if (e)
        set_read_error(error, path, gz, e);
      else
        g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_INPUT, "%s: corrupt or truncated gzip data", path);
      return FALSE;
    }
    if (left > 0) {
      g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_INPUT, "%s: %s%" G_GSIZE_FORMAT " bytes after the end of the gzip data",
                  path, left > IDX_TRAILING_COUNT_MAX ? "more than " : "", MIN(left, IDX_TRAILING_COUNT_MAX));
      return FALSE;
    }
  }
  /* A short buffer (the stream ended early, gzip trailer intact) is returned
   * as it is: cf_idx_parse_* says how much is missing. */
  *len = buf->len;
  *data = g_byte_array_steal(buf, NULL);
  return TRUE;
}

gboolean
conform_idx_load_gz(const char *path, unsigned expected_magic, guint8 **data, gsize *len, GError **error)
{
  g_return_val_if_fail(path != NULL && data != NULL && len != NULL, FALSE);
  g_return_val_if_fail(expected_magic == CF_IDX_MAGIC_IMAGES || expected_magic == CF_IDX_MAGIC_LABELS, FALSE);
  g_autoptr(GError) e = NULL;
  g_autoptr(GFile) file = g_file_new_for_path(path);
  g_autoptr(GFileInputStream) fin = g_file_read(file, NULL, &e);
  if (!fin) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_IO, "cannot read %s: %s", path, e->message);
    return FALSE;
  }
  return idx_load_stream(G_INPUT_STREAM(fin), path, expected_magic, data, len, error);
}

gboolean
conform_idx_load_gz_from_data(const guint8 *bytes, gsize n, const char *name, unsigned expected_magic,
                              guint8 **data, gsize *len, GError **error)
{
  g_return_val_if_fail((bytes != NULL || n == 0) && data != NULL && len != NULL, FALSE);
  g_return_val_if_fail(expected_magic == CF_IDX_MAGIC_IMAGES || expected_magic == CF_IDX_MAGIC_LABELS, FALSE);
  g_autoptr(GInputStream) in = g_memory_input_stream_new_from_data(bytes ? bytes : (const guint8 *)"", (gssize)n, NULL);
  return idx_load_stream(in, name ? name : "(IDX data)", expected_magic, data, len, error);
}

gboolean
conform_idx_load_images(const char *path, CfImageSet *out, GError **error)
{
  g_return_val_if_fail(path != NULL && out != NULL, FALSE);
  g_autofree guint8 *data = NULL;
  gsize len = 0;
  if (!conform_idx_load_gz(path, CF_IDX_MAGIC_IMAGES, &data, &len, error))
    return FALSE;
  CfError cerr;
  cf_error_clear(&cerr);
  if (cf_idx_parse_images(out, data, len, path, &cerr) != CF_OK) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_INPUT, "%s", cerr.msg);
    return FALSE;
  }
  return TRUE;
}

gboolean
conform_idx_load_labels(const char *path, int **labels, int *n, GError **error)
{
  g_return_val_if_fail(path != NULL && labels != NULL && n != NULL, FALSE);
  g_autofree guint8 *data = NULL;
  gsize len = 0;
  if (!conform_idx_load_gz(path, CF_IDX_MAGIC_LABELS, &data, &len, error))
    return FALSE;
  CfError cerr;
  cf_error_clear(&cerr);
  if (cf_idx_parse_labels(labels, n, data, len, path, &cerr) != CF_OK) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_INPUT, "%s", cerr.msg);
    return FALSE;
  }
  return TRUE;
}

/* ------------------------------------------------------------------------ */
/* Fashion-MNIST                                                            */

static const char *const fashion_names[CONFORM_FASHION_MNIST_CLASSES + 1] = {
  "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot", NULL,
};

const char *const *
conform_fashion_mnist_class_names(void)
{
  return fashion_names;
}

/* dir/base.gz, or dir/base if only the uncompressed file exists; NULL if neither. */
static char *
find_idx_file(const char *dir, const char *base)
{
  g_autofree char *gz_name = g_strconcat(base, ".gz", NULL);
  char *p = g_build_filename(dir, gz_name, NULL);
  if (g_file_test(p, G_FILE_TEST_EXISTS))
    return p;
  g_free(p);
  p = g_build_filename(dir, base, NULL);
  if (g_file_test(p, G_FILE_TEST_EXISTS))
    return p;
  g_free(p);
  return NULL;
}

gboolean
conform_fashion_mnist_load(const char *dir, gboolean train, int downsample, CfImageSet *out, GError **error)
{
  g_return_val_if_fail(out != NULL, FALSE);
  if (!dir)
    dir = CONFORM_FASHION_MNIST_DIR;
  const char *split = train ? "train" : "t10k";
  g_autofree char *img_base = g_strdup_printf("%s-images-idx3-ubyte", split);
  g_autofree char *lab_base = g_strdup_printf("%s-labels-idx1-ubyte", split);
  g_autofree char *img_path = find_idx_file(dir, img_base);
  g_autofree char *lab_path = find_idx_file(dir, lab_base);
  if (!img_path || !lab_path) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_IO,
                "Fashion-MNIST is not installed: %s/%s.gz not found (install the Debian package "
                "dataset-fashion-mnist)",
                dir, img_path ? lab_base : img_base);
    return FALSE;
  }
  if (downsample < 1)
    downsample = 1;
  if (28 % downsample != 0) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_USAGE,
                "Fashion-MNIST downsampling factor %d must divide 28 (1, 2, 4, 7, 14 or 28)", downsample);
    return FALSE;
  }
  CfImageSet set;
  cf_image_set_init(&set);
  if (!conform_idx_load_images(img_path, &set, error))
    return FALSE;
  int *labels = NULL, n = 0;
  if (!conform_idx_load_labels(lab_path, &labels, &n, error)) {
    cf_image_set_clear(&set);
    return FALSE;
  }
  CfError cerr;
  cf_error_clear(&cerr);
  gboolean ok = TRUE;
  if (set.H != 28 || set.W != 28) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_INPUT, "%s: Fashion-MNIST images are 28 x 28, found %d x %d",
                img_path, set.H, set.W);
    ok = FALSE;
  } else if (cf_image_set_set_labels(&set, labels, n, lab_path, &cerr) != CF_OK) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_INPUT, "%s (images: %s)", cerr.msg, img_path);
    ok = FALSE;
  } else if (set.n_classes > CONFORM_FASHION_MNIST_CLASSES) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_INPUT, "%s: label %d out of range for Fashion-MNIST's %d classes",
                lab_path, set.n_classes - 1, CONFORM_FASHION_MNIST_CLASSES);
    ok = FALSE;
  }
  free(labels);
  if (ok) {
    set.n_classes = CONFORM_FASHION_MNIST_CLASSES;
    if (downsample > 1) {
      CfImageSet small;
      cf_image_set_init(&small);
      if (cf_image_set_downsample(&small, &set, downsample, &cerr) != CF_OK) {
        g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_INPUT, "%s: %s", img_path, cerr.msg);
        ok = FALSE;
      }
      cf_image_set_clear(&set);
      set = small;
    }
  }
  if (!ok) {
    cf_image_set_clear(&set);
    return FALSE;
  }
  cf_image_set_clear(out);
  *out = set;
  return TRUE;
}

/* ------------------------------------------------------------------------ */
/* PNG decoding                                                             */

typedef struct {
  const guint8 *data;
  gsize len, pos;
  char msg[256];
  /* Owned buffers live here (not in locals of the function that calls
   * setjmp), so they are still known after a longjmp. */
  guint8 *pixels;
  png_bytep *rows;
} PngReadCtx;

static void
png_error_cb(png_structp png, png_const_charp msg)
{
  PngReadCtx *ctx = png_get_error_ptr(png);
  g_strlcpy(ctx->msg, msg, sizeof ctx->msg);
  png_longjmp(png, 1);
}

static void
png_warning_cb(png_structp png, png_const_charp msg)
{
  (void)png;
  (void)msg; /* e.g. a bad ancillary chunk: libpng skips it, so do we */
}

static void
png_read_cb(png_structp png, png_bytep out, size_t count)
{
  PngReadCtx *ctx = png_get_io_ptr(png);
  if (count > ctx->len - ctx->pos)
    png_error(png, "file truncated");
  memcpy(out, ctx->data + ctx->pos, count);
  ctx->pos += count;
}

static void
png_ctx_free(PngReadCtx *ctx)
{
  g_free(ctx->pixels);
  g_free(ctx->rows);
  ctx->pixels = NULL;
  ctx->rows = NULL;
}

/* Decodes ctx->data to *gray (w x h floats in [0, 1]); on failure ctx->msg
 * says why. Nothing but png/info (set before setjmp, never changed after)
 * is a local that the error path needs. */
static gboolean
png_decode_gray(PngReadCtx *ctx, int *out_w, int *out_h, float **gray)
{
  *gray = NULL;
  if (ctx->len < 8 || png_sig_cmp(ctx->data, 0, 8) != 0) {
    g_strlcpy(ctx->msg, "not a PNG file (no PNG signature)", sizeof ctx->msg);
    return FALSE;
  }
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, ctx, png_error_cb, png_warning_cb);
  if (!png) {
    g_strlcpy(ctx->msg, "out of memory", sizeof ctx->msg);
    return FALSE;
  }
  png_infop info = png_create_info_struct(png);
  if (!info) {
    png_destroy_read_struct(&png, NULL, NULL);
    g_strlcpy(ctx->msg, "out of memory", sizeof ctx->msg);
    return FALSE;
  }
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_read_struct(&png, &info, NULL);
    png_ctx_free(ctx);
    return FALSE;
  }
  png_set_user_limits(png, CF_IDX_MAX_SIDE, CF_IDX_MAX_SIDE);
  /* Only IHDR, PLTE, tRNS, IDAT and IEND matter here: every other chunk is
   * skipped unread. libpng would otherwise allocate an ancillary chunk's
   * length (e.g. a zTXt claiming 2 GB in an 84-byte file) before finding the
   * file too short. */
  static const png_byte keep[] = {'t', 'R', 'N', 'S', '\0'};
  png_set_keep_unknown_chunks(png, PNG_HANDLE_CHUNK_NEVER, NULL, -1);
  png_set_keep_unknown_chunks(png, PNG_HANDLE_CHUNK_AS_DEFAULT, keep, 1);
  png_set_read_fn(png, ctx, png_read_cb);
  png_read_info(png, info);
  png_uint_32 w = 0, h = 0;
  int depth = 0, ctype = 0;
  png_get_IHDR(png, info, &w, &h, &depth, &ctype, NULL, NULL, NULL);
  if (ctype == PNG_COLOR_TYPE_PALETTE)
    png_set_palette_to_rgb(png);
  if (ctype == PNG_COLOR_TYPE_GRAY && depth < 8)
    png_set_expand_gray_1_2_4_to_8(png);
  if (png_get_valid(png, info, PNG_INFO_tRNS))
    png_set_tRNS_to_alpha(png);
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  const int channels = png_get_channels(png, info);
  const int bits = png_get_bit_depth(png, info);
  const size_t bytes_per = bits == 16 ? 2 : 1;
  if ((bits != 8 && bits != 16) || channels < 1 || channels > 4)
    png_error(png, "unsupported pixel format after conversion");
  const size_t rowbytes = png_get_rowbytes(png, info);
  if (rowbytes != (size_t)w * (size_t)channels * bytes_per)
    png_error(png, "unexpected row size");
  /* w, h <= CF_IDX_MAX_SIDE (user limits): no overflow below. */
  ctx->pixels = g_try_malloc(rowbytes * h);
  ctx->rows = g_try_new(png_bytep, h);
  if (!ctx->pixels || !ctx->rows)
    png_error(png, "out of memory");
  for (png_uint_32 y = 0; y < h; y++)
    ctx->rows[y] = ctx->pixels + (size_t)y * rowbytes;
  png_read_image(png, ctx->rows);
  png_read_end(png, NULL);
  png_destroy_read_struct(&png, &info, NULL);

  float *g = g_try_new(float, (gsize)w * h);
  if (!g) {
    png_ctx_free(ctx);
    g_strlcpy(ctx->msg, "out of memory", sizeof ctx->msg);
    return FALSE;
  }
  const float maxv = bits == 16 ? 65535.0f : 255.0f;
  for (size_t i = 0; i < (size_t)w * h; i++) {
    float v[4];
    const guint8 *p = ctx->pixels + i * (size_t)channels * bytes_per;
    for (int c = 0; c < channels; c++)
      v[c] = (bits == 16 ? (float)((p[2 * c] << 8) | p[2 * c + 1]) : (float)p[c]) / maxv;
    float y, a = 1.0f;
    switch (channels) {
    case 1: y = v[0]; break;
    case 2: y = v[0]; a = v[1]; break;
    case 3: y = 0.2126f * v[0] + 0.7152f * v[1] + 0.0722f * v[2]; break;
    default: y = 0.2126f * v[0] + 0.7152f * v[1] + 0.0722f * v[2]; a = v[3]; break;
    }
    /* alpha over black */
    g[i] = CLAMP(y * a, 0.0f, 1.0f);
  }
  png_ctx_free(ctx);
  *out_w = (int)w;
  *out_h = (int)h;
  *gray = g;
  return TRUE;
}

/* One axis of a resampling: output j = sum_k w[k] * in[first + k], for
 * k < count[j], weights stored at off[j]. */
typedef struct {
  int *first, *count, *off;
  float *w;
} Resample1D;

static void
resample_free(Resample1D *r)
{
  g_free(r->first);
  g_free(r->count);
  g_free(r->off);
  g_free(r->w);
}

/* in -> out samples: area averaging when shrinking, bilinear when growing
 * (identity when equal). */
static void
resample_init(Resample1D *r, int in, int out)
{
  r->first = g_new(int, out);
  r->count = g_new(int, out);
  r->off = g_new(int, out);
  if (out < in) {
    const double s = (double)in / out;
    const int maxc = (int)ceil(s) + 1;
    r->w = g_new0(float, (gsize)out * maxc);
    for (int j = 0; j < out; j++) {
      const double a = j * s, b = (j + 1) * s;
      int k0 = (int)floor(a), k1 = MIN((int)ceil(b), in);
      r->first[j] = k0;
      r->count[j] = k1 - k0;
      r->off[j] = j * maxc;
      g_assert(k1 - k0 <= maxc);
      for (int k = k0; k < k1; k++) {
        double lo = MAX(a, (double)k), hi = MIN(b, (double)(k + 1));
        r->w[j * maxc + (k - k0)] = (float)(MAX(hi - lo, 0.0) / s);
      }
    }
  } else {
    r->w = g_new0(float, (gsize)out * 2);
    for (int j = 0; j < out; j++) {
      double x = (j + 0.5) * in / out - 0.5;
      x = CLAMP(x, 0.0, (double)(in - 1));
      int k0 = MIN((int)floor(x), in - 1);
      double t = x - k0;
      r->first[j] = k0;
      r->off[j] = 2 * j;
      if (k0 + 1 < in && t > 0.0) {
        r->count[j] = 2;
        r->w[2 * j] = (float)(1.0 - t);
        r->w[2 * j + 1] = (float)t;
      } else {
        r->count[j] = 1;
        r->w[2 * j] = 1.0f;
      }
    }
  }
}

/* src (h x w) -> dst (size x size), separable. */
static void
resize_gray(float *dst, int size, const float *src, int w, int h)
{
  Resample1D rx, ry;
  resample_init(&rx, w, size);
  resample_init(&ry, h, size);
  float *tmp = g_new(float, (gsize)h * size); /* h x size */
  for (int y = 0; y < h; y++)
    for (int j = 0; j < size; j++) {
      float s = 0.0f;
      for (int k = 0; k < rx.count[j]; k++)
        s += rx.w[rx.off[j] + k] * src[(gsize)y * w + rx.first[j] + k];
      tmp[(gsize)y * size + j] = s;
    }
  for (int i = 0; i < size; i++)
    for (int j = 0; j < size; j++) {
      float s = 0.0f;
      for (int k = 0; k < ry.count[i]; k++)
        s += ry.w[ry.off[i] + k] * tmp[(gsize)(ry.first[i] + k) * size + j];
      dst[(gsize)i * size + j] = CLAMP(s, 0.0f, 1.0f);
    }
  g_free(tmp);
  resample_free(&rx);
  resample_free(&ry);
}

/* Decodes file contents; on failure *reason (g_free) says why. */
static gboolean
png_bytes_to_gray(const guint8 *data, gsize len, int size, float *out, char **reason)
{
  PngReadCtx ctx = {.data = data, .len = len};
  int w = 0, h = 0;
  float *gray = NULL;
  if (!png_decode_gray(&ctx, &w, &h, &gray)) {
    *reason = g_strdup(ctx.msg[0] ? ctx.msg : "invalid PNG");
    return FALSE;
  }
  resize_gray(out, size, gray, w, h);
  g_free(gray);
  return TRUE;
}

static gboolean
check_size(int size, GError **error)
{
  if (size < 1 || size > CF_IDX_MAX_SIDE) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_USAGE, "image size %d out of range (1..%d)", size,
                CF_IDX_MAX_SIDE);
    return FALSE;
  }
  return TRUE;
}

gboolean
conform_png_decode_gray(const guint8 *data, gsize len, const char *name, int size, float *out, GError **error)
{
  g_return_val_if_fail((data != NULL || len == 0) && out != NULL, FALSE);
  if (!check_size(size, error))
    return FALSE;
  g_autofree char *reason = NULL;
  if (!png_bytes_to_gray(data, len, size, out, &reason)) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_INPUT, "%s: %s", name ? name : "(PNG data)", reason);
    return FALSE;
  }
  return TRUE;
}

gboolean
conform_png_load_gray(const char *path, int size, float *out, GError **error)
{
  g_return_val_if_fail(path != NULL && out != NULL, FALSE);
  if (!check_size(size, error))
    return FALSE;
  g_autofree char *data = NULL;
  gsize len = 0;
  if (!conform_read_file(path, CONFORM_PNG_MAX_FILE_BYTES, &data, &len, error))
    return FALSE;
  return conform_png_decode_gray((const guint8 *)data, len, path, size, out, error);
}

static int
cmp_names(gconstpointer a, gconstpointer b)
{
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

gboolean
conform_png_folder_import(const char *dir, int size, CfImageSet *out, GPtrArray **skipped, GError **error)
{
  g_return_val_if_fail(dir != NULL && out != NULL, FALSE);
  if (skipped)
    *skipped = NULL;
  if (!check_size(size, error))
    return FALSE;
  g_autoptr(GError) e = NULL;
  g_autoptr(GDir) d = g_dir_open(dir, 0, &e);
  if (!d) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_IO, "cannot open folder %s: %s", dir, e->message);
    return FALSE;
  }
  g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
  const char *name;
  while ((name = g_dir_read_name(d)) != NULL) {
    g_autofree char *lower = g_ascii_strdown(name, -1);
    if (g_str_has_suffix(lower, ".png"))
      g_ptr_array_add(names, g_strdup(name));
  }
  g_ptr_array_sort(names, cmp_names);

  g_autoptr(GPtrArray) skip = g_ptr_array_new_with_free_func(g_free);
  const gsize plane = (gsize)size * size;
  g_autoptr(GArray) pixels = g_array_new(FALSE, FALSE, sizeof(float));
  int good = 0;
  for (guint i = 0; i < names->len; i++) {
    const char *nm = g_ptr_array_index(names, i);
    g_autofree char *path = g_build_filename(dir, nm, NULL);
    if (!g_file_test(path, G_FILE_TEST_IS_REGULAR)) {
      g_ptr_array_add(skip, g_strdup_printf("%s: not a regular file", nm));
      continue;
    }
    if ((gsize)(good + 1) * plane > CF_IDX_MAX_ELEMENTS || good + 1 > CF_IDX_MAX_N) {
      g_ptr_array_add(skip, g_strdup_printf("%s: too many images (limit reached)", nm));
      continue;
    }
    g_autofree char *data = NULL;
    gsize len = 0;
    g_autoptr(GError) re = NULL;
    if (!conform_read_file(path, CONFORM_PNG_MAX_FILE_BYTES, &data, &len, &re)) {
      g_ptr_array_add(skip, g_strdup_printf("%s: %s", nm, re->message));
      continue;
    }
    g_array_set_size(pixels, (guint)((gsize)(good + 1) * plane));
    g_autofree char *reason = NULL;
    if (!png_bytes_to_gray((const guint8 *)data, len, size, &g_array_index(pixels, float, (gsize)good * plane),
                           &reason)) {
      g_array_set_size(pixels, (guint)((gsize)good * plane));
      g_ptr_array_add(skip, g_strdup_printf("%s: %s", nm, reason));
      continue;
    }
    good++;
  }
  if (good == 0) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_INPUT, "no usable PNG image in folder %s (%u *.png file%s%s%s)",
                dir, names->len, names->len == 1 ? "" : "s", skip->len ? ", first problem: " : "",
                skip->len ? (const char *)g_ptr_array_index(skip, 0) : "");
    if (skipped)
      *skipped = g_steal_pointer(&skip);
    return FALSE;
  }
  CfImageSet set;
  cf_image_set_init(&set);
  CfError cerr;
  if (cf_image_set_alloc(&set, good, 1, size, size, false, &cerr) != CF_OK) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_INPUT, "%s: %s", dir, cerr.msg);
    return FALSE;
  }
  memcpy(set.pixels, pixels->data, (gsize)good * plane * sizeof(float));
  cf_image_set_clear(out);
  *out = set;
  if (skipped)
    *skipped = g_steal_pointer(&skip);
  return TRUE;
}

/* ------------------------------------------------------------------------ */
/* Grid PNG                                                                 */

#define GRID_GAP 2
#define GRID_FRAME 2
#define GRID_SEPARATOR 128
#define GRID_MAX_PIXELS ((gsize)1 << 28)

typedef struct {
  GByteArray *out;
  char msg[256];
} PngWriteCtx;

static void
png_write_error_cb(png_structp png, png_const_charp msg)
{
  PngWriteCtx *ctx = png_get_error_ptr(png);
  g_strlcpy(ctx->msg, msg, sizeof ctx->msg);
  png_longjmp(png, 1);
}

static void
png_write_cb(png_structp png, png_bytep data, size_t count)
{
  PngWriteCtx *ctx = png_get_io_ptr(png);
  g_byte_array_append(ctx->out, data, (guint)count);
}

static void
png_flush_cb(png_structp png)
{
  (void)png;
}

/* Encodes rows of an 8-bit gray (channels 1) or RGB (3) image. */
static gboolean
png_encode(PngWriteCtx *ctx, const guint8 *img, int width, int height, int channels)
{
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, ctx, png_write_error_cb, png_warning_cb);
  if (!png) {
    g_strlcpy(ctx->msg, "out of memory", sizeof ctx->msg);
    return FALSE;
  }
  png_infop info = png_create_info_struct(png);
  if (!info) {
    png_destroy_write_struct(&png, NULL);
    g_strlcpy(ctx->msg, "out of memory", sizeof ctx->msg);
    return FALSE;
  }
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    return FALSE;
  }
  png_set_write_fn(png, ctx, png_write_cb, png_flush_cb);
  png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, 8,
               channels == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  const size_t stride = (size_t)width * (size_t)channels;
  for (int y = 0; y < height; y++)
    png_write_row(png, img + (size_t)y * stride);
  png_write_end(png, NULL);
  png_destroy_write_struct(&png, &info);
  return TRUE;
}

GBytes *
conform_image_grid_encode_png(const float *images, int n, int H, int W, int cols, float lo, float hi,
                              const guint32 *border_rgb, int scale, GError **error)
{
  g_return_val_if_fail(images != NULL, NULL);
  if (n < 1 || H < 1 || W < 1 || H > CF_IDX_MAX_SIDE || W > CF_IDX_MAX_SIDE || cols < 1 || scale < 1 ||
      scale > 32) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_USAGE,
                "image grid: invalid layout (n %d, %d x %d, %d columns, scale %d)", n, H, W, cols, scale);
    return NULL;
  }
  if (!isfinite(lo) || !isfinite(hi) || !(hi > lo)) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_USAGE, "image grid: value range [%g, %g] is not valid",
                (double)lo, (double)hi);
    return NULL;
  }
  cols = MIN(cols, n);
  const int rows = (n + cols - 1) / cols;
  const int frame = border_rgb ? GRID_FRAME : 0;
  const int channels = border_rgb ? 3 : 1;
  const gint64 cell_w = (gint64)W * scale + 2 * frame, cell_h = (gint64)H * scale + 2 * frame;
  const gint64 width = cols * cell_w + (gint64)(cols + 1) * GRID_GAP;
  const gint64 height = rows * cell_h + (gint64)(rows + 1) * GRID_GAP;
  if (width > 65535 || height > 65535 || (guint64)width * (guint64)height > GRID_MAX_PIXELS) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_USAGE,
                "image grid of %" G_GINT64_FORMAT " x %" G_GINT64_FORMAT " pixels is too large", width, height);
    return NULL;
  }
  const size_t stride = (size_t)width * (size_t)channels;
  g_autofree guint8 *img = g_try_malloc((size_t)height * stride);
  if (!img) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_IO, "out of memory for a %" G_GINT64_FORMAT " x %" G_GINT64_FORMAT
                " image grid", width, height);
    return NULL;
  }
  memset(img, GRID_SEPARATOR, (size_t)height * stride);
  const float inv = 1.0f / (hi - lo);
  for (int i = 0; i < n; i++) {
    const int r = i / cols, c = i % cols;
    const size_t x0 = (size_t)(GRID_GAP + c * (cell_w + GRID_GAP));
    const size_t y0 = (size_t)(GRID_GAP + r * (cell_h + GRID_GAP));
    if (frame) {
      const guint8 rgb[3] = {(guint8)(border_rgb[i] >> 16), (guint8)(border_rgb[i] >> 8), (guint8)border_rgb[i]};
      for (size_t y = y0; y < y0 + (size_t)cell_h; y++)
        for (size_t x = x0; x < x0 + (size_t)cell_w; x++)
          memcpy(img + y * stride + x * 3, rgb, 3);
    }
    const float *src = images + (size_t)i * (size_t)H * (size_t)W;
    for (int y = 0; y < H * scale; y++)
      for (int x = 0; x < W * scale; x++) {
        float v = (src[(size_t)(y / scale) * W + (size_t)(x / scale)] - lo) * inv;
        v = isnan(v) ? 0.0f : CLAMP(v, 0.0f, 1.0f);
        const guint8 b = (guint8)lrintf(v * 255.0f);
        guint8 *p = img + (y0 + frame + (size_t)y) * stride + (x0 + frame + (size_t)x) * channels;
        for (int k = 0; k < channels; k++)
          p[k] = b;
      }
  }
  PngWriteCtx ctx = {.out = g_byte_array_new()};
  if (!png_encode(&ctx, img, (int)width, (int)height, channels)) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_IO, "cannot encode the image grid as PNG: %s", ctx.msg);
    g_byte_array_unref(ctx.out);
    return NULL;
  }
  return g_byte_array_free_to_bytes(ctx.out);
}

gboolean
conform_image_grid_write_png(const char *path, const float *images, int n, int H, int W, int cols, float lo,
                             float hi, const guint32 *border_rgb, int scale, GError **error)
{
  g_return_val_if_fail(path != NULL && images != NULL, FALSE);
  g_autoptr(GBytes) png = conform_image_grid_encode_png(images, n, H, W, cols, lo, hi, border_rgb, scale, error);
  if (!png)
    return FALSE;
  gsize len = 0;
  const void *data = g_bytes_get_data(png, &len);
  return conform_write_atomic(path, data, len, error);
}
