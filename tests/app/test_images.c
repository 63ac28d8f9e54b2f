/* Tests of app/conform-images.c: Fashion-MNIST (when the Debian package is
 * installed), gzip IDX files good and bad (truncated at many points,
 * garbage, trailing data, lying headers), PNG folder import with files of
 * every colour type made here with libpng, and the grid PNG writer. */
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <math.h>
#include <png.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "checkpoint.h"
#include "conform-config.h"
#include "conform-images.h"

/* ------------------------------------------------------------------------ */
/* Helpers                                                                  */

static void
assert_contains(const char *haystack, const char *needle)
{
  if (!strstr(haystack, needle))
    g_error("expected \"%s\" in message \"%s\"", needle, haystack);
}

static char *
make_tmpdir(void)
{
  g_autoptr(GError) e = NULL;
  char *d = g_dir_make_tmp("conform-images-XXXXXX", &e);
  g_assert_no_error(e);
  return d;
}

static void
rm_rf(const char *dir)
{
  GDir *d = g_dir_open(dir, 0, NULL);
  if (!d)
    return;
  const char *n;
  while ((n = g_dir_read_name(d)) != NULL) {
    g_autofree char *p = g_build_filename(dir, n, NULL);
    if (g_file_test(p, G_FILE_TEST_IS_DIR) && !g_file_test(p, G_FILE_TEST_IS_SYMLINK)) {
      g_chmod(p, 0755);
      rm_rf(p);
    } else {
      g_unlink(p);
    }
  }
  g_dir_close(d);
  g_rmdir(dir);
}

static int
count_entries(const char *dir)
{
  GDir *d = g_dir_open(dir, 0, NULL);
  g_assert_nonnull(d);
  int k = 0;
  while (g_dir_read_name(d))
    k++;
  g_dir_close(d);
  return k;
}

static GBytes *
gzip_bytes(const guint8 *data, gsize len)
{
  g_autoptr(GError) e = NULL;
  g_autoptr(GOutputStream) mem = g_memory_output_stream_new_resizable();
  g_autoptr(GZlibCompressor) comp = g_zlib_compressor_new(G_ZLIB_COMPRESSOR_FORMAT_GZIP, 6);
  g_autoptr(GOutputStream) out = g_converter_output_stream_new(mem, G_CONVERTER(comp));
  gsize written = 0;
  g_assert_true(g_output_stream_write_all(out, data, len, &written, NULL, &e));
  g_assert_no_error(e);
  g_assert_true(g_output_stream_close(out, NULL, &e));
  g_assert_no_error(e);
  return g_memory_output_stream_steal_as_bytes(G_MEMORY_OUTPUT_STREAM(mem));
}

static void
put_be32(GByteArray *b, guint32 v)
{
  guint8 p[4] = {(guint8)(v >> 24), (guint8)(v >> 16), (guint8)(v >> 8), (guint8)v};
  g_byte_array_append(b, p, 4);
}

/* IDX images n x h x w with pixel value (i * 7) % 256, plus `extra` bytes. */
static GByteArray *
idx_images(guint32 n, guint32 h, guint32 w, gsize payload)
{
  GByteArray *b = g_byte_array_new();
  put_be32(b, CF_IDX_MAGIC_IMAGES);
  put_be32(b, n);
  put_be32(b, h);
  put_be32(b, w);
  for (gsize i = 0; i < payload; i++) {
    guint8 v = (guint8)((i * 7) % 256);
    g_byte_array_append(b, &v, 1);
  }
  return b;
}

static GByteArray *
idx_labels(guint32 n, int mod)
{
  GByteArray *b = g_byte_array_new();
  put_be32(b, CF_IDX_MAGIC_LABELS);
  put_be32(b, n);
  for (guint32 i = 0; i < n; i++) {
    guint8 v = (guint8)(i % (guint32)mod);
    g_byte_array_append(b, &v, 1);
  }
  return b;
}

static void
write_file(const char *path, const void *data, gsize len)
{
  g_autoptr(GError) e = NULL;
  g_assert_true(g_file_set_contents(path, data, (gssize)len, &e));
  g_assert_no_error(e);
}

/* ------------------------------------------------------------------------ */
/* Fashion-MNIST                                                            */

static void
test_fashion_mnist(void)
{
  if (!g_file_test(CONFORM_FASHION_MNIST_DIR, G_FILE_TEST_IS_DIR)) {
    g_test_skip("Fashion-MNIST not installed (Debian package dataset-fashion-mnist)");
    return;
  }
  CfImageSet s, s14;
  cf_image_set_init(&s);
  cf_image_set_init(&s14);
  g_autoptr(GError) e = NULL;
  gint64 t0 = g_get_monotonic_time();
  g_assert_true(conform_fashion_mnist_load(NULL, FALSE, 1, &s, &e));
  g_assert_no_error(e);
  g_test_message("t10k (10000 x 28 x 28) loaded in %.1f ms", (g_get_monotonic_time() - t0) / 1000.0);
  g_assert_cmpint(s.n, ==, 10000);
  g_assert_cmpint(s.C, ==, 1);
  g_assert_cmpint(s.H, ==, 28);
  g_assert_cmpint(s.W, ==, 28);
  g_assert_cmpint(s.n_classes, ==, 10);
  int counts[10];
  cf_image_set_class_counts(&s, counts);
  for (int c = 0; c < 10; c++)
    g_assert_cmpint(counts[c], ==, 1000);
  float mn = 1.0f, mx = 0.0f;
  double mean = 0.0;
  for (gsize i = 0; i < (gsize)s.n * 784; i++) {
    mn = MIN(mn, s.pixels[i]);
    mx = MAX(mx, s.pixels[i]);
    mean += s.pixels[i];
  }
  mean /= (double)s.n * 784;
  g_assert_cmpfloat(mn, ==, 0.0f);
  g_assert_cmpfloat(mx, ==, 1.0f);
  g_assert_cmpfloat(mean, >, 0.2); /* Fashion-MNIST test mean is about 0.286 */
  g_assert_cmpfloat(mean, <, 0.4);
  const char *const *names = conform_fashion_mnist_class_names();
  g_assert_cmpstr(names[0], ==, "T-shirt/top");
  g_assert_cmpstr(names[9], ==, "Ankle boot");
  g_assert_null(names[10]);

  g_assert_true(conform_fashion_mnist_load(NULL, FALSE, 2, &s14, &e));
  g_assert_no_error(e);
  g_assert_cmpint(s14.n, ==, 10000);
  g_assert_cmpint(s14.H, ==, 14);
  g_assert_cmpint(s14.W, ==, 14);
  g_assert_cmpint(s14.n_classes, ==, 10);
  for (int i = 0; i < s.n; i += 997) {
    g_assert_cmpint(s14.labels[i], ==, s.labels[i]);
    for (int y = 0; y < 14; y++)
      for (int x = 0; x < 14; x++) {
        const float *p = s.pixels + (gsize)i * 784;
        double want = (p[(2 * y) * 28 + 2 * x] + p[(2 * y) * 28 + 2 * x + 1] + p[(2 * y + 1) * 28 + 2 * x] +
                       p[(2 * y + 1) * 28 + 2 * x + 1]) / 4.0;
        g_assert_cmpfloat_with_epsilon(s14.pixels[(gsize)i * 196 + y * 14 + x], want, 1e-6);
      }
  }
  g_assert_false(conform_fashion_mnist_load(NULL, FALSE, 3, &s14, &e));
  g_assert_error(e, CONFORM_ERROR, CONFORM_ERROR_USAGE);
  g_clear_error(&e);
  g_assert_cmpint(s14.H, ==, 14); /* unchanged */

  /* The train split, timed. */
  t0 = g_get_monotonic_time();
  g_assert_true(conform_fashion_mnist_load(NULL, TRUE, 1, &s, &e));
  g_assert_no_error(e);
  g_test_message("train (60000 x 28 x 28) loaded in %.1f ms", (g_get_monotonic_time() - t0) / 1000.0);
  g_assert_cmpint(s.n, ==, 60000);
  cf_image_set_class_counts(&s, counts);
  for (int c = 0; c < 10; c++)
    g_assert_cmpint(counts[c], ==, 6000);
  cf_image_set_clear(&s);
  cf_image_set_clear(&s14);
}

static void
test_fashion_missing_and_mismatch(void)
{
  g_autofree char *dir = make_tmpdir();
  CfImageSet s;
  cf_image_set_init(&s);
  g_autoptr(GError) e = NULL;
  g_autofree char *missing = g_build_filename(dir, "nope", NULL);
  g_assert_false(conform_fashion_mnist_load(missing, FALSE, 1, &s, &e));
  g_assert_nonnull(e);
  assert_contains(e->message, "install the Debian package dataset-fashion-mnist");
  assert_contains(e->message, missing);
  g_clear_error(&e);

  /* 3 images of 28 x 28 but 4 labels (plain, uncompressed files) */
  g_autoptr(GByteArray) img = idx_images(3, 28, 28, 3 * 784);
  g_autoptr(GByteArray) lab = idx_labels(4, 10);
  g_autofree char *ip = g_build_filename(dir, "t10k-images-idx3-ubyte", NULL);
  g_autofree char *lp = g_build_filename(dir, "t10k-labels-idx1-ubyte.gz", NULL);
  write_file(ip, img->data, img->len);
  g_autoptr(GBytes) lgz = gzip_bytes(lab->data, lab->len);
  write_file(lp, g_bytes_get_data(lgz, NULL), g_bytes_get_size(lgz));
  g_assert_false(conform_fashion_mnist_load(dir, FALSE, 1, &s, &e));
  g_assert_error(e, CONFORM_ERROR, CONFORM_ERROR_INPUT);
  assert_contains(e->message, lp);
  assert_contains(e->message, "4 labels for 3 images");
  g_clear_error(&e);
  g_assert_null(s.pixels);

  /* 3 labels: loads, with 10 classes even though only 0..2 occur */
  g_autoptr(GByteArray) lab3 = idx_labels(3, 10);
  g_autoptr(GBytes) l3gz = gzip_bytes(lab3->data, lab3->len);
  write_file(lp, g_bytes_get_data(l3gz, NULL), g_bytes_get_size(l3gz));
  g_assert_true(conform_fashion_mnist_load(dir, FALSE, 4, &s, &e));
  g_assert_no_error(e);
  g_assert_cmpint(s.n, ==, 3);
  g_assert_cmpint(s.H, ==, 7);
  g_assert_cmpint(s.n_classes, ==, 10);
  cf_image_set_clear(&s);
  rm_rf(dir);
}

/* ------------------------------------------------------------------------ */
/* gzip IDX                                                                 */

static void
expect_load_error(const char *path, const char *needle)
{
  CfImageSet s;
  cf_image_set_init(&s);
  g_autoptr(GError) e = NULL;
  if (conform_idx_load_images(path, &s, &e))
    g_error("%s: loaded although an error (\"%s\") was expected", path, needle ? needle : "any");
  g_assert_nonnull(e);
  g_assert_true(e->domain == CONFORM_ERROR);
  assert_contains(e->message, path);
  if (needle)
    assert_contains(e->message, needle);
  g_assert_null(s.pixels);
}

static void
test_gzip_idx(void)
{
  g_autofree char *dir = make_tmpdir();
  g_autoptr(GByteArray) raw = idx_images(50, 8, 8, 50 * 64);
  g_autoptr(GBytes) gz = gzip_bytes(raw->data, raw->len);
  gsize gzlen = 0;
  const guint8 *gzdata = g_bytes_get_data(gz, &gzlen);
  g_autofree char *path = g_build_filename(dir, "imgs-idx3-ubyte.gz", NULL);
  g_autofree char *plain = g_build_filename(dir, "imgs-idx3-ubyte", NULL);

  /* good: gzip and plain give the same images */
  write_file(path, gzdata, gzlen);
  write_file(plain, raw->data, raw->len);
  CfImageSet a, b;
  cf_image_set_init(&a);
  cf_image_set_init(&b);
  g_autoptr(GError) e = NULL;
  g_assert_true(conform_idx_load_images(path, &a, &e));
  g_assert_no_error(e);
  g_assert_true(conform_idx_load_images(plain, &b, &e));
  g_assert_no_error(e);
  g_assert_cmpint(a.n, ==, 50);
  g_assert_cmpint(a.H, ==, 8);
  g_assert_cmpmem(a.pixels, 50 * 64 * sizeof(float), b.pixels, 50 * 64 * sizeof(float));
  g_assert_cmpfloat(a.pixels[37], ==, (float)((37 * 7) % 256) / 255.0f);
  cf_image_set_clear(&a);
  cf_image_set_clear(&b);

  /* from memory: the same bytes, errors name the given name */
  {
    g_autofree guint8 *m = NULL;
    gsize mlen = 0;
    g_assert_true(conform_idx_load_gz_from_data(gzdata, gzlen, "mem.gz", CF_IDX_MAGIC_IMAGES, &m, &mlen, &e));
    g_assert_no_error(e);
    g_assert_cmpmem(m, mlen, raw->data, raw->len);
    g_clear_pointer(&m, g_free);
    g_assert_false(conform_idx_load_gz_from_data(gzdata, gzlen / 2, "mem.gz", CF_IDX_MAGIC_IMAGES, &m, &mlen, &e));
    assert_contains(e->message, "mem.gz");
    g_clear_error(&e);
    g_assert_false(conform_idx_load_gz_from_data(raw->data, raw->len, "mem", CF_IDX_MAGIC_LABELS, &m, &mlen, &e));
    assert_contains(e->message, "mem: ");
    g_clear_error(&e);
  }

  /* truncated gzip at many points: every one an error naming the file */
  const gsize cuts[] = {0, 1, 2, 5, 10, 11, 15, 20, gzlen / 4, gzlen / 2, gzlen - 9, gzlen - 8, gzlen - 4,
                        gzlen - 1};
  for (gsize i = 0; i < G_N_ELEMENTS(cuts); i++) {
    write_file(path, gzdata, cuts[i]);
    expect_load_error(path, NULL);
  }
  write_file(path, gzdata, 0);
  expect_load_error(path, "empty");
  /* plain file truncated in the header and in the pixels */
  write_file(plain, raw->data, 10);
  expect_load_error(plain, "truncated header");
  write_file(plain, raw->data, raw->len - 5);
  expect_load_error(plain, "truncated: expected 3200 bytes of pixel data, found 3195");

  /* gzip of garbage (valid gzip, wrong contents) and garbage after a gzip magic */
  GRand *r = g_rand_new_with_seed(3);
  guint8 junk[4096];
  for (gsize i = 0; i < sizeof junk; i++)
    junk[i] = (guint8)g_rand_int(r);
  g_autoptr(GBytes) gzjunk = gzip_bytes(junk, sizeof junk);
  write_file(path, g_bytes_get_data(gzjunk, NULL), g_bytes_get_size(gzjunk));
  expect_load_error(path, "not an IDX file");
  junk[0] = 0x1f;
  junk[1] = 0x8b;
  write_file(path, junk, sizeof junk);
  expect_load_error(path, "gzip");
  /* random flips inside a valid gzip stream: never crash */
  for (int it = 0; it < 200; it++) {
    g_autofree guint8 *copy = g_memdup2(gzdata, gzlen);
    for (int k = 0; k < 3; k++)
      copy[g_rand_int_range(r, 10, (gint32)gzlen)] ^= (guint8)(1 + g_rand_int_range(r, 0, 255));
    write_file(path, copy, gzlen);
    CfImageSet s;
    cf_image_set_init(&s);
    g_autoptr(GError) fe = NULL;
    if (!conform_idx_load_images(path, &s, &fe))
      assert_contains(fe->message, path);
    cf_image_set_clear(&s);
  }
  g_rand_free(r);

  /* trailing data inside the gzip stream */
  g_autoptr(GByteArray) longer = idx_images(50, 8, 8, 50 * 64 + 7);
  g_autoptr(GBytes) gzlong = gzip_bytes(longer->data, longer->len);
  write_file(path, g_bytes_get_data(gzlong, NULL), g_bytes_get_size(gzlong));
  expect_load_error(path, "7 trailing bytes");

  /* a header that claims 10^7 images of 4096 x 20 (too large) and one that
   * claims 10^6 images of 28 x 28 over 100 bytes: the second must report
   * the truncation (reading only what is there), not allocate 784 MB */
  g_autoptr(GByteArray) huge = idx_images(10000000, 4096, 4096, 100);
  g_autoptr(GBytes) gzhuge = gzip_bytes(huge->data, huge->len);
  write_file(path, g_bytes_get_data(gzhuge, NULL), g_bytes_get_size(gzhuge));
  expect_load_error(path, "too large");
  g_autoptr(GByteArray) liar = idx_images(1000000, 28, 28, 100);
  g_autoptr(GBytes) gzliar = gzip_bytes(liar->data, liar->len);
  write_file(path, g_bytes_get_data(gzliar, NULL), g_bytes_get_size(gzliar));
  expect_load_error(path, "truncated: expected 784000000 bytes of pixel data, found 100");

  /* labels given where images are expected, and a missing file */
  g_autoptr(GByteArray) lab = idx_labels(5, 3);
  g_autoptr(GBytes) gzlab = gzip_bytes(lab->data, lab->len);
  write_file(path, g_bytes_get_data(gzlab, NULL), g_bytes_get_size(gzlab));
  expect_load_error(path, "expected 3");
  int *labels = NULL, n = 0;
  g_assert_true(conform_idx_load_labels(path, &labels, &n, &e));
  g_assert_no_error(e);
  g_assert_cmpint(n, ==, 5);
  g_assert_cmpint(labels[4], ==, 1);
  free(labels);
  g_autofree char *nofile = g_build_filename(dir, "missing.gz", NULL);
  expect_load_error(nofile, "cannot read");
  rm_rf(dir);
}

/* ------------------------------------------------------------------------ */
/* PNG import                                                               */

typedef struct {
  int ctype, depth, w, h;
  const guint8 *data; /* rows, tightly packed, 16-bit big-endian */
  const png_color *palette;
  int n_palette;
  const guint8 *trns;
  int n_trns;
  int interlace; /* 0: none, 1: Adam7 */
} TestPng;

static void
test_png_write_cb(png_structp png, png_bytep data, size_t n)
{
  g_byte_array_append(png_get_io_ptr(png), data, (guint)n);
}

static void
test_png_flush_cb(png_structp png)
{
  (void)png;
}

static GByteArray *
make_png(const TestPng *t)
{
  GByteArray *out = g_byte_array_new();
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
  g_assert_nonnull(png);
  png_infop info = png_create_info_struct(png);
  g_assert_nonnull(info);
  if (setjmp(png_jmpbuf(png)))
    g_error("libpng failed writing a test image");
  png_set_write_fn(png, out, test_png_write_cb, test_png_flush_cb);
  png_set_IHDR(png, info, (png_uint_32)t->w, (png_uint_32)t->h, t->depth, t->ctype,
               t->interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  if (t->palette)
    png_set_PLTE(png, info, t->palette, t->n_palette);
  if (t->trns)
    png_set_tRNS(png, info, t->trns, t->n_trns, NULL);
  png_write_info(png, info);
  int ch = t->ctype == PNG_COLOR_TYPE_GRAY || t->ctype == PNG_COLOR_TYPE_PALETTE ? 1
           : t->ctype == PNG_COLOR_TYPE_GRAY_ALPHA                                ? 2
           : t->ctype == PNG_COLOR_TYPE_RGB                                       ? 3
                                                                                  : 4;
  size_t stride = ((size_t)t->w * (size_t)ch * (size_t)t->depth + 7) / 8;
  int passes = t->interlace ? png_set_interlace_handling(png) : 1;
  for (int pass = 0; pass < passes; pass++)
    for (int y = 0; y < t->h; y++)
      png_write_row(png, (png_const_bytep)(t->data + (size_t)y * stride));
  png_write_end(png, NULL);
  png_destroy_write_struct(&png, &info);
  return out;
}

static void
save_png(const char *dir, const char *name, const TestPng *t)
{
  g_autoptr(GByteArray) b = make_png(t);
  g_autofree char *p = g_build_filename(dir, name, NULL);
  write_file(p, b->data, b->len);
}

#define NEAR(a, b) g_assert_cmpfloat_with_epsilon((a), (b), 1e-5)

static void
test_png_folder(void)
{
  g_autofree char *dir = make_tmpdir();
  /* a: gray 8-bit 4x4, value 16 * i */
  guint8 g8[16];
  for (int i = 0; i < 16; i++)
    g8[i] = (guint8)(16 * i);
  save_png(dir, "a_gray8.png", &(TestPng){PNG_COLOR_TYPE_GRAY, 8, 4, 4, g8});
  /* b: RGB 4x4: red, green, blue, white, rest black */
  guint8 rgb[48] = {255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255};
  save_png(dir, "b_rgb.png", &(TestPng){PNG_COLOR_TYPE_RGB, 8, 4, 4, rgb});
  /* c: RGBA: white at alpha 128, white at alpha 0, green opaque */
  guint8 rgba[64] = {255, 255, 255, 128, 255, 255, 255, 0, 0, 255, 0, 255};
  save_png(dir, "c_rgba.png", &(TestPng){PNG_COLOR_TYPE_RGB_ALPHA, 8, 4, 4, rgba});
  /* c2: gray + alpha: 200 at alpha 51 */
  guint8 ga[32] = {200, 51, 200, 255};
  save_png(dir, "c2_gray_alpha.png", &(TestPng){PNG_COLOR_TYPE_GRAY_ALPHA, 8, 4, 4, ga});
  /* d: 16-bit gray: 0x8000, 0xffff, 0x0101 */
  guint8 g16[32] = {0x80, 0x00, 0xff, 0xff, 0x01, 0x01};
  save_png(dir, "d_gray16.png", &(TestPng){PNG_COLOR_TYPE_GRAY, 16, 4, 4, g16});
  /* d_rgba16: 16-bit RGBA: red, opaque */
  guint8 rgba16[128] = {0xff, 0xff, 0, 0, 0, 0, 0xff, 0xff};
  save_png(dir, "d_rgba16.png", &(TestPng){PNG_COLOR_TYPE_RGB_ALPHA, 16, 4, 4, rgba16});
  /* e: palette: blue, white (transparent via tRNS), gray 100 */
  png_color pal[3] = {{0, 0, 255}, {255, 255, 255}, {100, 100, 100}};
  guint8 trns[2] = {255, 0};
  guint8 idx[16] = {0, 1, 2, 2};
  save_png(dir, "e_palette.png", &(TestPng){PNG_COLOR_TYPE_PALETTE, 8, 4, 4, idx, pal, 3, trns, 2});
  /* f: 8x8 gray (shrinks to 4x4 by 2x2 area averages), pixel = x + 8 y */
  guint8 big[64];
  for (int i = 0; i < 64; i++)
    big[i] = (guint8)(i * 4);
  save_png(dir, "f_big8x8.png", &(TestPng){PNG_COLOR_TYPE_GRAY, 8, 8, 8, big});
  /* g: 2x2 gray (grows to 4x4, bilinear) */
  guint8 small[4] = {0, 255, 255, 0};
  save_png(dir, "g_small2x2.png", &(TestPng){PNG_COLOR_TYPE_GRAY, 8, 2, 2, small});
  /* g_tiny1bit: 8 x 4 1-bit gray (width shrinks by 2, height stays) */
  guint8 bits[4] = {0xAA, 0xFF, 0x00, 0xF0};
  save_png(dir, "g_tiny1bit.png", &(TestPng){PNG_COLOR_TYPE_GRAY, 1, 8, 4, bits});
  /* g_u_interlaced: 4 x 4 gray, Adam7 */
  guint8 il[16];
  for (int i = 0; i < 16; i++)
    il[i] = (guint8)(10 * i + 5);
  save_png(dir, "g_u_interlaced.png", &(TestPng){PNG_COLOR_TYPE_GRAY, 8, 4, 4, il, .interlace = 1});
  /* bad ones: truncated PNG, a text file named x.png */
  g_autoptr(GByteArray) whole = make_png(&(TestPng){PNG_COLOR_TYPE_GRAY, 8, 8, 8, big});
  g_autofree char *trunc = g_build_filename(dir, "h_truncated.png", NULL);
  write_file(trunc, whole->data, whole->len / 2);
  g_autofree char *x = g_build_filename(dir, "x.png", NULL);
  write_file(x, "this is not an image\n", 21);
  g_autofree char *txt = g_build_filename(dir, "readme.txt", NULL);
  write_file(txt, "ignored", 7);
  g_autofree char *sub = g_build_filename(dir, "sub.png", NULL);
  g_assert_cmpint(g_mkdir(sub, 0755), ==, 0);

  CfImageSet s;
  cf_image_set_init(&s);
  g_autoptr(GError) e = NULL;
  g_autoptr(GPtrArray) skipped = NULL;
  g_assert_true(conform_png_folder_import(dir, 4, &s, &skipped, &e));
  g_assert_no_error(e);
  g_assert_cmpint(s.n, ==, 11);
  g_assert_cmpint(s.C, ==, 1);
  g_assert_cmpint(s.H, ==, 4);
  g_assert_cmpint(s.W, ==, 4);
  g_assert_null(s.labels);
  g_assert_nonnull(skipped);
  g_assert_cmpuint(skipped->len, ==, 3);
  assert_contains(g_ptr_array_index(skipped, 0), "h_truncated.png: ");
  assert_contains(g_ptr_array_index(skipped, 1), "sub.png: not a regular file");
  assert_contains(g_ptr_array_index(skipped, 2), "x.png: not a PNG file");
  for (guint i = 0; i < skipped->len; i++)
    g_test_message("skipped %s", (const char *)g_ptr_array_index(skipped, i));

  const float *im = s.pixels;
  /* a */
  for (int i = 0; i < 16; i++)
    NEAR(im[i], 16 * i / 255.0);
  /* b: Rec. 709 luma */
  im += 16;
  NEAR(im[0], 0.2126);
  NEAR(im[1], 0.7152);
  NEAR(im[2], 0.0722);
  NEAR(im[3], 1.0);
  NEAR(im[4], 0.0);
  /* c2 (sorts before c_: '2' < '_') */
  im += 16;
  NEAR(im[0], 200 / 255.0 * 51 / 255.0);
  NEAR(im[1], 200 / 255.0);
  /* c: alpha over black */
  im += 16;
  NEAR(im[0], 128 / 255.0);
  NEAR(im[1], 0.0);
  NEAR(im[2], 0.7152);
  NEAR(im[3], 0.0); /* transparent black */
  /* d: 16-bit */
  im += 16;
  NEAR(im[0], 32768 / 65535.0);
  NEAR(im[1], 1.0);
  NEAR(im[2], 257 / 65535.0);
  /* d_rgba16 (after d_gray16) */
  im += 16;
  NEAR(im[0], 0.2126);
  NEAR(im[1], 0.0);
  /* e: palette with tRNS */
  im += 16;
  NEAR(im[0], 0.0722);
  NEAR(im[1], 0.0);
  NEAR(im[2], 100 / 255.0);
  /* f: 2x2 area averages of 4 (x + 8 y) */
  im += 16;
  for (int y = 0; y < 4; y++)
    for (int xx = 0; xx < 4; xx++) {
      double want = 4.0 * ((2 * xx + 0.5) + 8 * (2 * y + 0.5)) / 255.0;
      NEAR(im[y * 4 + xx], want);
    }
  /* g: bilinear from 2x2; output x = 0 samples source -0.25 (clamped: 0),
   * x = 1 samples 0.25: 0.75 * a + 0.25 * b */
  im += 16;
  NEAR(im[0], 0.0);
  NEAR(im[1], 0.25);
  NEAR(im[2], 0.75);
  NEAR(im[3], 1.0);
  NEAR(im[5], 0.75 * 0.75 * 0 + 0.75 * 0.25 * 1 + 0.25 * 0.75 * 1 + 0.25 * 0.25 * 0);
  /* g_tiny1bit */
  im += 16;
  const float want1[16] = {0.5, 0.5, 0.5, 0.5, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 0, 0};
  for (int i = 0; i < 16; i++)
    NEAR(im[i], want1[i]);
  /* g_u_interlaced */
  im += 16;
  for (int i = 0; i < 16; i++)
    NEAR(im[i], (10 * i + 5) / 255.0);
  cf_image_set_clear(&s);

  /* single file API */
  float one[64];
  g_autofree char *ap = g_build_filename(dir, "a_gray8.png", NULL);
  g_assert_true(conform_png_load_gray(ap, 8, one, &e));
  g_assert_no_error(e);
  NEAR(one[0], 0.0);
  g_assert_false(conform_png_load_gray(x, 8, one, &e));
  assert_contains(e->message, x);
  g_clear_error(&e);
  /* the same from memory */
  {
    g_autofree char *bytes = NULL;
    gsize n = 0;
    float mem[64];
    g_assert_true(g_file_get_contents(ap, &bytes, &n, NULL));
    g_assert_true(conform_png_decode_gray((const guint8 *)bytes, n, "mem.png", 8, mem, &e));
    g_assert_no_error(e);
    g_assert_cmpmem(mem, sizeof mem, one, sizeof one);
    g_assert_false(conform_png_decode_gray((const guint8 *)bytes, n / 2, "mem.png", 8, mem, &e));
    assert_contains(e->message, "mem.png: ");
    g_clear_error(&e);
  }

  /* a folder with only bad files, an empty folder, a missing folder */
  g_autofree char *bad = g_build_filename(dir, "bad", NULL);
  g_assert_cmpint(g_mkdir(bad, 0755), ==, 0);
  g_assert_false(conform_png_folder_import(bad, 4, &s, NULL, &e));
  assert_contains(e->message, bad);
  assert_contains(e->message, "no usable PNG");
  g_clear_error(&e);
  g_autofree char *bx = g_build_filename(bad, "y.png", NULL);
  write_file(bx, "\x89PNG\r\n\x1a\n", 8);
  g_clear_pointer(&skipped, g_ptr_array_unref);
  g_assert_false(conform_png_folder_import(bad, 4, &s, &skipped, &e));
  assert_contains(e->message, bad);
  assert_contains(e->message, "y.png");
  g_assert_cmpuint(skipped->len, ==, 1);
  g_clear_error(&e);
  g_autofree char *nodir = g_build_filename(dir, "nodir", NULL);
  g_assert_false(conform_png_folder_import(nodir, 4, &s, NULL, &e));
  assert_contains(e->message, nodir);
  g_clear_error(&e);
  g_assert_false(conform_png_folder_import(dir, 0, &s, NULL, &e));
  g_clear_error(&e);
  g_assert_null(s.pixels);
  rm_rf(dir);
}

/* ------------------------------------------------------------------------ */
/* Grid PNG                                                                 */

static void
read_back(const char *path, png_image *img, guint8 **pixels)
{
  memset(img, 0, sizeof *img);
  img->version = PNG_IMAGE_VERSION;
  g_assert_true(png_image_begin_read_from_file(img, path));
  *pixels = g_malloc(PNG_IMAGE_SIZE(*img));
  g_assert_true(png_image_finish_read(img, NULL, *pixels, 0, NULL));
}

static void
test_grid(void)
{
  g_autofree char *dir = make_tmpdir();
  float imgs[5 * 12];
  for (int i = 0; i < 5 * 12; i++)
    imgs[i] = (float)(i % 12) / 11.0f * 2.0f - 1.0f; /* [-1, 1] */
  imgs[13] = NAN;
  g_autofree char *path = g_build_filename(dir, "grid.png", NULL);
  g_autoptr(GError) e = NULL;
  /* 5 images of 3 x 4, 3 columns, scale 2: (3 * 8 + 4 * 2) x (2 * 6 + 3 * 2) */
  g_assert_true(conform_image_grid_write_png(path, imgs, 5, 3, 4, 3, -1.0f, 1.0f, NULL, 2, &e));
  g_assert_no_error(e);
  png_image img;
  g_autofree guint8 *px = NULL;
  read_back(path, &img, &px);
  g_assert_cmpuint(img.width, ==, 32);
  g_assert_cmpuint(img.height, ==, 18);
  g_assert_cmpuint(img.format & PNG_FORMAT_FLAG_COLOR, ==, 0);
  g_assert_cmpint(px[0], ==, 128);          /* separator */
  g_assert_cmpint(px[2 * 32 + 2], ==, 0);   /* image 0 pixel 0: -1 -> black */
  g_assert_cmpint(px[2 * 32 + 3], ==, 0);   /* upscaled */
  g_assert_cmpint(px[(2 + 5) * 32 + 2 + 7], ==, 255); /* image 0 last pixel: 1 -> white */
  g_assert_cmpint(px[2 * 32 + 12 + 2], ==, 0);        /* image 1 pixel 1 is NaN -> black */
  g_assert_cmpint(px[(2 + 6 + 2) * 32 + 2 * 10 + 2], ==, 128); /* empty 6th cell: separator gray */
  png_image_free(&img);

  /* with frames: RGB */
  guint32 border[5] = {0xd62728, 0x2ca02c, 0xd62728, 0x2ca02c, 0x000000};
  g_assert_true(conform_image_grid_write_png(path, imgs, 5, 3, 4, 3, -1.0f, 1.0f, border, 2, &e));
  g_assert_no_error(e);
  g_clear_pointer(&px, g_free);
  read_back(path, &img, &px);
  g_assert_cmpuint(img.width, ==, 3 * 12 + 4 * 2);
  g_assert_cmpuint(img.height, ==, 2 * 10 + 3 * 2);
  g_assert_cmpuint(img.format & PNG_FORMAT_FLAG_COLOR, !=, 0);
  const int ch = PNG_IMAGE_PIXEL_CHANNELS(img.format);
  const guint8 *p = px + ((size_t)2 * img.width + 2) * ch; /* frame of image 0 */
  g_assert_cmpint(p[0], ==, 0xd6);
  g_assert_cmpint(p[1], ==, 0x27);
  g_assert_cmpint(p[2], ==, 0x28);
  p = px + ((size_t)2 * img.width + 2 + 12 + 2) * ch; /* frame of image 1 */
  g_assert_cmpint(p[1], ==, 0xa0);
  png_image_free(&img);

  /* bad arguments */
  g_assert_false(conform_image_grid_write_png(path, imgs, 5, 3, 4, 3, 1.0f, 1.0f, NULL, 2, &e));
  g_clear_error(&e);
  g_assert_false(conform_image_grid_write_png(path, imgs, 0, 3, 4, 3, 0.0f, 1.0f, NULL, 2, &e));
  g_clear_error(&e);

  /* unwritable destinations: no file, no temp file left behind */
  g_autofree char *ro = g_build_filename(dir, "ro", NULL);
  g_assert_cmpint(g_mkdir(ro, 0755), ==, 0);
  g_autofree char *under_file = g_build_filename(path, "grid.png", NULL); /* parent is a file */
  g_assert_false(conform_image_grid_write_png(under_file, imgs, 5, 3, 4, 3, -1.0f, 1.0f, NULL, 2, &e));
  assert_contains(e->message, under_file);
  g_clear_error(&e);
  g_autofree char *missing = g_build_filename(ro, "no", "grid.png", NULL);
  g_assert_false(conform_image_grid_write_png(missing, imgs, 5, 3, 4, 3, -1.0f, 1.0f, NULL, 2, &e));
  assert_contains(e->message, missing);
  g_clear_error(&e);
  if (geteuid() != 0) {
    g_assert_cmpint(g_chmod(ro, 0555), ==, 0);
    g_autofree char *rop = g_build_filename(ro, "grid.png", NULL);
    g_assert_false(conform_image_grid_write_png(rop, imgs, 5, 3, 4, 3, -1.0f, 1.0f, NULL, 2, &e));
    assert_contains(e->message, rop);
    g_clear_error(&e);
    g_chmod(ro, 0755);
  } else {
    g_test_message("running as root: permissions do not stop writes; using /proc as the unwritable directory");
  }
  if (g_file_test("/proc/self", G_FILE_TEST_IS_DIR)) {
    const char *procp = "/proc/conform-grid-test.png";
    g_assert_false(conform_image_grid_write_png(procp, imgs, 5, 3, 4, 3, -1.0f, 1.0f, NULL, 2, &e));
    assert_contains(e->message, procp);
    g_clear_error(&e);
    g_assert_false(g_file_test(procp, G_FILE_TEST_EXISTS));
  }
  g_assert_cmpint(count_entries(ro), ==, 0);
  g_assert_cmpint(count_entries(dir), ==, 2); /* grid.png and ro */
  rm_rf(dir);
}

/* Found by the idx fuzz target (tests/fuzz; the gzip reader must accept
 * exactly one gzip stream): bytes after the end of the gzip stream --
 * garbage, zeros, a second member -- were dropped unseen by the converter
 * stream and the file accepted. They are an error now, from a file and from
 * memory. */
static void
test_gzip_trailing(void)
{
  g_autofree char *dir = make_tmpdir();
  g_autoptr(GByteArray) raw = idx_images(3, 4, 4, 3 * 16);
  g_autoptr(GBytes) gz = gzip_bytes(raw->data, raw->len);
  gsize gzlen = 0;
  const guint8 *gzdata = g_bytes_get_data(gz, &gzlen);
  g_autofree char *path = g_build_filename(dir, "t-idx3-ubyte.gz", NULL);
  static const guint8 zeros[40];
  const struct {
    const guint8 *tail;
    gsize n;
    const char *msg;
  } cases[] = {
    {(const guint8 *)"JUNK", 4, "4 bytes after the end of the gzip data"},
    {zeros, sizeof zeros, "40 bytes after the end of the gzip data"},
    {gzdata, gzlen, NULL}, /* a second member */
  };
  for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
    g_autoptr(GByteArray) f = g_byte_array_new();
    g_byte_array_append(f, gzdata, (guint)gzlen);
    g_byte_array_append(f, cases[i].tail, (guint)cases[i].n);
    g_autofree char *want = cases[i].msg ? g_strdup(cases[i].msg)
                                         : g_strdup_printf("%" G_GSIZE_FORMAT " bytes after the end of the gzip data", gzlen);
    write_file(path, f->data, f->len);
    CfImageSet s;
    cf_image_set_init(&s);
    g_autoptr(GError) e = NULL;
    g_assert_false(conform_idx_load_images(path, &s, &e));
    assert_contains(e->message, path);
    assert_contains(e->message, want);
    g_clear_error(&e);
    guint8 *m = NULL;
    gsize mlen = 0;
    g_assert_false(conform_idx_load_gz_from_data(f->data, f->len, "mem.gz", CF_IDX_MAGIC_IMAGES, &m, &mlen, &e));
    assert_contains(e->message, "mem.gz: ");
    assert_contains(e->message, want);
  }
  /* the stream alone still loads */
  write_file(path, gzdata, gzlen);
  CfImageSet s;
  cf_image_set_init(&s);
  g_autoptr(GError) e = NULL;
  g_assert_true(conform_idx_load_images(path, &s, &e));
  g_assert_no_error(e);
  g_assert_cmpint(s.n, ==, 3);
  cf_image_set_clear(&s);
  rm_rf(dir);
}

/* A chunk of `len` bytes of `type` inserted after IHDR (8 + 25 bytes); its
 * length field says `claim` (the data is `len` bytes of 'x'). */
static GByteArray *
png_with_chunk(const GByteArray *png, const char *type, guint32 len, guint32 claim)
{
  GByteArray *out = g_byte_array_new();
  g_byte_array_append(out, png->data, 33);
  guint8 hdr[8] = {(guint8)(claim >> 24), (guint8)(claim >> 16), (guint8)(claim >> 8), (guint8)claim};
  memcpy(hdr + 4, type, 4);
  g_byte_array_append(out, hdr, 8);
  for (guint32 i = 0; i < len; i++)
    g_byte_array_append(out, (const guint8 *)"x", 1);
  guint32 crc = cf_crc32(0, out->data + 37, 4 + len); /* the CRC-32 of PNG too */
  guint8 c[4] = {(guint8)(crc >> 24), (guint8)(crc >> 16), (guint8)(crc >> 8), (guint8)crc};
  g_byte_array_append(out, c, 4);
  g_byte_array_append(out, png->data + 33, png->len - 33);
  return out;
}

/* Found by the png fuzz target (tests/fuzz, out-of-memory malloc(2054827312)
 * under -malloc_limit_mb=1024; corpus/png/regress-ztxt-length): libpng
 * allocated what an ancillary chunk's length field claimed (a zTXt of
 * "2 GB" in an 84-byte file) before finding the file too short. Chunks
 * other than IHDR, PLTE, tRNS, IDAT and IEND are skipped unread now. The
 * old code failed here only under ASan, where an allocation above 512 MiB
 * aborts the subprocess (elsewhere libpng survives a failed allocation); the
 * plain build runs with 1 GiB of address space to spare. */
static void
test_png_chunk_length(void)
{
  if (!g_test_subprocess()) {
    const char *asan = g_getenv("ASAN_OPTIONS");
    g_autofree char *old = g_strdup(asan);
    g_autofree char *opts = g_strdup_printf("%s%smax_allocation_size_mb=512:allocator_may_return_null=0",
                                            asan ? asan : "", asan && *asan ? ":" : "");
    g_setenv("ASAN_OPTIONS", opts, TRUE);
    g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
    if (old)
      g_setenv("ASAN_OPTIONS", old, TRUE);
    else
      g_unsetenv("ASAN_OPTIONS");
    g_test_trap_assert_passed();
    return;
  }
#ifndef __SANITIZE_ADDRESS__
  g_autofree char *statm = NULL;
  g_assert_true(g_file_get_contents("/proc/self/statm", &statm, NULL, NULL));
  struct rlimit rl;
  rl.rlim_cur = rl.rlim_max = (rlim_t)strtol(statm, NULL, 10) * (rlim_t)sysconf(_SC_PAGESIZE) + ((rlim_t)1 << 30);
  g_assert_cmpint(setrlimit(RLIMIT_AS, &rl), ==, 0);
#endif
  guint8 px[16];
  for (int i = 0; i < 16; i++)
    px[i] = (guint8)(16 * i);
  g_autoptr(GByteArray) png = make_png(&(TestPng){PNG_COLOR_TYPE_GRAY, 8, 4, 4, px});
  float want[16], got[16];
  g_autoptr(GError) e = NULL;
  g_assert_true(conform_png_decode_gray(png->data, png->len, "a.png", 4, want, &e));
  g_assert_no_error(e);
  static const char *const types[] = {"zTXt", "iCCP", "iTXt", "tEXt", "eXIf", "sPLT", "teSt"};
  for (gsize i = 0; i < G_N_ELEMENTS(types); i++) {
    /* claims 2054827312 bytes: refused as truncated, nothing that size allocated */
    g_autoptr(GByteArray) bad = png_with_chunk(png, types[i], 8, 2054827312u);
    g_assert_false(conform_png_decode_gray(bad->data, bad->len, "bad.png", 4, got, &e));
    assert_contains(e->message, "bad.png: ");
    g_clear_error(&e);
    /* a complete chunk of 100 kB is skipped: the same image */
    g_autoptr(GByteArray) ok = png_with_chunk(png, types[i], 100000, 100000);
    g_assert_true(conform_png_decode_gray(ok->data, ok->len, "ok.png", 4, got, &e));
    g_assert_no_error(e);
    g_assert_cmpmem(got, sizeof got, want, sizeof want);
  }
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/images/fashion-mnist", test_fashion_mnist);
  g_test_add_func("/images/fashion-missing-mismatch", test_fashion_missing_and_mismatch);
  g_test_add_func("/images/gzip-idx", test_gzip_idx);
  g_test_add_func("/images/gzip-trailing", test_gzip_trailing);
  g_test_add_func("/images/png-folder", test_png_folder);
  g_test_add_func("/images/png-chunk-length", test_png_chunk_length);
  g_test_add_func("/images/grid", test_grid);
  return g_test_run();
}
