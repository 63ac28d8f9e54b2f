/* Tests of core/idx.c: IDX images and labels from memory (valid round trips
 * and every malformed header or length), downsampling against a direct
 * computation, subsets and class filtering, and the [0,1] <-> [-1,1]
 * normalisation record. */
#include <glib.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "idx.h"

/* ------------------------------------------------------------------------ */
/* Helpers                                                                  */

static void
assert_contains(const char *haystack, const char *needle)
{
  if (!strstr(haystack, needle))
    g_error("expected \"%s\" in message \"%s\"", needle, haystack);
}

static void
put_be32(GByteArray *b, uint32_t v)
{
  guint8 p[4] = {(guint8)(v >> 24), (guint8)(v >> 16), (guint8)(v >> 8), (guint8)v};
  g_byte_array_append(b, p, 4);
}

/* An IDX image file: header for (n, h, w) then `payload` bytes of pixel data
 * (value (i * 37 + 11) % 256 for element i). */
static GByteArray *
make_images(uint32_t magic, uint32_t n, uint32_t h, uint32_t w, size_t payload)
{
  GByteArray *b = g_byte_array_new();
  put_be32(b, magic);
  put_be32(b, n);
  put_be32(b, h);
  put_be32(b, w);
  for (size_t i = 0; i < payload; i++) {
    guint8 v = (guint8)((i * 37 + 11) % 256);
    g_byte_array_append(b, &v, 1);
  }
  return b;
}

static GByteArray *
make_labels(uint32_t n, size_t payload)
{
  GByteArray *b = g_byte_array_new();
  put_be32(b, CF_IDX_MAGIC_LABELS);
  put_be32(b, n);
  for (size_t i = 0; i < payload; i++) {
    guint8 v = (guint8)(i % 3);
    g_byte_array_append(b, &v, 1);
  }
  return b;
}

/* Parses buf as images and expects an error naming the file and containing each needle. */
static void
expect_image_error(const guint8 *buf, size_t len, const char *const *needles)
{
  CfImageSet s;
  cf_image_set_init(&s);
  CfError err;
  cf_error_clear(&err);
  CfStatus st = cf_idx_parse_images(&s, buf, len, "bad-images.idx", &err);
  if (st == CF_OK)
    g_error("expected an error containing \"%s\"", needles[0]);
  g_assert_cmpint(err.code, ==, st);
  assert_contains(err.msg, "bad-images.idx");
  for (int i = 0; needles[i]; i++)
    assert_contains(err.msg, needles[i]);
  g_assert_null(s.pixels);
  g_assert_cmpint(s.n, ==, 0);
}

/* ------------------------------------------------------------------------ */
/* Valid files                                                              */

static void
test_images_roundtrip(void)
{
  g_autoptr(GByteArray) b = make_images(CF_IDX_MAGIC_IMAGES, 3, 4, 5, 60);
  CfImageSet s;
  cf_image_set_init(&s);
  CfError err;
  cf_error_clear(&err);
  g_assert_cmpint(cf_idx_parse_images(&s, b->data, b->len, "ok.idx", &err), ==, CF_OK);
  g_assert_cmpint(s.n, ==, 3);
  g_assert_cmpint(s.C, ==, 1);
  g_assert_cmpint(s.H, ==, 4);
  g_assert_cmpint(s.W, ==, 5);
  g_assert_cmpuint(cf_image_set_dim(&s), ==, 20);
  g_assert_null(s.labels);
  g_assert_cmpint(s.n_classes, ==, 0);
  for (size_t i = 0; i < 60; i++) {
    float want = (float)((i * 37 + 11) % 256) / 255.0f;
    g_assert_cmpfloat(s.pixels[i], ==, want);
    g_assert_cmpfloat(s.pixels[i], >=, 0.0f);
    g_assert_cmpfloat(s.pixels[i], <=, 1.0f);
  }
  /* byte 0 and 255 map to exactly 0 and 1 */
  b->data[16] = 0;
  b->data[17] = 255;
  g_assert_cmpint(cf_idx_parse_images(&s, b->data, b->len, "ok.idx", &err), ==, CF_OK);
  g_assert_cmpfloat(s.pixels[0], ==, 0.0f);
  g_assert_cmpfloat(s.pixels[1], ==, 1.0f);

  /* labels */
  g_autoptr(GByteArray) lb = make_labels(3, 3);
  int *labels = NULL, n = 0;
  g_assert_cmpint(cf_idx_parse_labels(&labels, &n, lb->data, lb->len, "ok-labels.idx", &err), ==, CF_OK);
  g_assert_cmpint(n, ==, 3);
  g_assert_cmpint(labels[0], ==, 0);
  g_assert_cmpint(labels[1], ==, 1);
  g_assert_cmpint(labels[2], ==, 2);
  g_assert_cmpint(cf_image_set_set_labels(&s, labels, n, "ok-labels.idx", &err), ==, CF_OK);
  g_assert_cmpint(s.n_classes, ==, 3);
  int counts[3];
  cf_image_set_class_counts(&s, counts);
  g_assert_cmpint(counts[0] + counts[1] + counts[2], ==, 3);
  g_assert_cmpint(counts[1], ==, 1);
  free(labels);

  /* a byte label of 255 is valid and gives 256 classes */
  lb->data[8] = 255;
  g_assert_cmpint(cf_idx_parse_labels(&labels, &n, lb->data, lb->len, "ok-labels.idx", &err), ==, CF_OK);
  g_assert_cmpint(labels[0], ==, 255);
  g_assert_cmpint(cf_image_set_set_labels(&s, labels, n, "ok-labels.idx", &err), ==, CF_OK);
  g_assert_cmpint(s.n_classes, ==, 256);
  free(labels);
  cf_image_set_clear(&s);
  cf_image_set_clear(&s); /* idempotent */
}

/* ------------------------------------------------------------------------ */
/* Malformed files                                                          */

static void
test_images_malformed(void)
{
  /* empty buffer and short headers */
  {
    const char *needles[] = {"empty", NULL};
    expect_image_error(NULL, 0, needles);
    guint8 z = 0;
    expect_image_error(&z, 0, needles);
  }
  {
    g_autoptr(GByteArray) b = make_images(CF_IDX_MAGIC_IMAGES, 1, 2, 2, 4);
    const char *short4[] = {"too short", "3 bytes", NULL};
    expect_image_error(b->data, 3, short4);
    const char *short8[] = {"truncated header", "expected 16 bytes, found 8", NULL};
    expect_image_error(b->data, 8, short8);
    const char *short15[] = {"truncated header", "expected 16 bytes, found 15", NULL};
    expect_image_error(b->data, 15, short15);
    /* exactly the header: no pixel data at all */
    const char *hdr_only[] = {"truncated: expected 4 bytes of pixel data, found 0", NULL};
    expect_image_error(b->data, 16, hdr_only);
  }
  /* wrong magic: says what was found and what was expected */
  {
    g_autoptr(GByteArray) b = make_images(0x89504e47u, 1, 2, 2, 4); /* PNG signature */
    const char *needles[] = {"not an IDX file", "0x89504e47", "expected 0x00000803", NULL};
    expect_image_error(b->data, b->len, needles);
  }
  {
    /* a labels file given as images: right type, wrong dimension count */
    g_autoptr(GByteArray) b = make_labels(4, 4);
    const char *needles[] = {"wrong number of IDX dimensions 1", "0x00000801", "expected 3", "0x00000803", NULL};
    expect_image_error(b->data, b->len, needles);
  }
  /* wrong type byte */
  {
    g_autoptr(GByteArray) b = make_images(0x00000D03u, 1, 2, 2, 16);
    const char *needles[] = {"element type 0x0d", "float", "0x00000d03", "expected 0x08", NULL};
    expect_image_error(b->data, b->len, needles);
  }
  /* wrong dim count */
  {
    g_autoptr(GByteArray) b = make_images(0x00000804u, 1, 2, 2, 4);
    const char *needles[] = {"dimensions 4", "expected 3", NULL};
    expect_image_error(b->data, b->len, needles);
  }
  /* zero and huge dimensions */
  struct {
    uint32_t n, h, w;
    const char *what;
  } dims[] = {
    {0, 2, 2, "image count 0"},
    {1, 0, 2, "height 0"},
    {1, 2, 0, "width 0"},
    {10000001, 2, 2, "image count 10000001"},
    {1, 4097, 2, "height 4097"},
    {1, 2, 4097, "width 4097"},
    {0xFFFFFFFFu, 2, 2, "image count 4294967295"},
    {1, 0x80000000u, 2, "height 2147483648"},
    /* each in range, product overflow-prone: 10^7 * 4096 * 4096 */
    {10000000, 4096, 4096, "too large"},
    {200000, 4096, 4096, "too large"},
  };
  for (size_t i = 0; i < G_N_ELEMENTS(dims); i++) {
    g_autoptr(GByteArray) b = make_images(CF_IDX_MAGIC_IMAGES, dims[i].n, dims[i].h, dims[i].w, 64);
    const char *needles[] = {dims[i].what, NULL};
    expect_image_error(b->data, b->len, needles);
  }
  /* truncated pixel data and trailing bytes */
  {
    g_autoptr(GByteArray) b = make_images(CF_IDX_MAGIC_IMAGES, 2, 3, 3, 17);
    const char *needles[] = {"truncated: expected 18 bytes of pixel data, found 17", NULL};
    expect_image_error(b->data, b->len, needles);
  }
  {
    g_autoptr(GByteArray) b = make_images(CF_IDX_MAGIC_IMAGES, 2, 3, 3, 21);
    const char *needles[] = {"3 trailing bytes", NULL};
    expect_image_error(b->data, b->len, needles);
  }
  /* a failed parse leaves a previously loaded set untouched */
  {
    g_autoptr(GByteArray) good = make_images(CF_IDX_MAGIC_IMAGES, 1, 2, 2, 4);
    g_autoptr(GByteArray) bad = make_images(CF_IDX_MAGIC_IMAGES, 1, 2, 2, 3);
    CfImageSet s;
    cf_image_set_init(&s);
    g_assert_cmpint(cf_idx_parse_images(&s, good->data, good->len, "good", NULL), ==, CF_OK);
    g_assert_cmpint(cf_idx_parse_images(&s, bad->data, bad->len, "bad", NULL), ==, CF_ERR_CORRUPT);
    g_assert_cmpint(s.n, ==, 1);
    g_assert_nonnull(s.pixels);
    cf_image_set_clear(&s);
  }
}

static void
test_labels_malformed(void)
{
  CfError err;
  int *labels = NULL, n = -1;
  struct {
    GByteArray *b;
    size_t len; /* 0: whole */
    const char *needle;
  } cases[] = {
    {make_labels(5, 5), 0, NULL}, /* valid, checked below */
    {make_labels(5, 4), 0, "truncated: expected 5 bytes of label data, found 4"},
    {make_labels(5, 7), 0, "2 trailing bytes"},
    {make_labels(0, 0), 0, "label count 0"},
    {make_labels(20000000, 3), 0, "label count 20000000"},
    {make_labels(5, 5), 7, "truncated header: expected 8 bytes, found 7"},
    {make_labels(5, 5), 2, "too short"},
    {make_images(CF_IDX_MAGIC_IMAGES, 1, 2, 2, 4), 0, "expected 1 for labels"},
  };
  for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
    size_t len = cases[i].len ? cases[i].len : cases[i].b->len;
    cf_error_clear(&err);
    CfStatus st = cf_idx_parse_labels(&labels, &n, cases[i].b->data, len, "labels.idx", &err);
    if (!cases[i].needle) {
      g_assert_cmpint(st, ==, CF_OK);
      g_assert_cmpint(n, ==, 5);
      /* count mismatch when attaching to 4 images */
      CfImageSet s;
      cf_image_set_init(&s);
      g_assert_cmpint(cf_image_set_alloc(&s, 4, 1, 2, 2, false, &err), ==, CF_OK);
      g_assert_cmpint(cf_image_set_set_labels(&s, labels, n, "labels.idx", &err), ==, CF_ERR_SHAPE);
      assert_contains(err.msg, "labels.idx");
      assert_contains(err.msg, "5 labels for 4 images");
      g_assert_null(s.labels);
      /* out-of-range labels given directly */
      int bad[4] = {0, 1, 256, 2};
      g_assert_cmpint(cf_image_set_set_labels(&s, bad, 4, "mine", &err), ==, CF_ERR_INVALID);
      assert_contains(err.msg, "mine: label 256 of image 3 out of range");
      bad[2] = -1;
      g_assert_cmpint(cf_image_set_set_labels(&s, bad, 4, "mine", &err), ==, CF_ERR_INVALID);
      g_assert_null(s.labels);
      cf_image_set_clear(&s);
      free(labels);
      labels = NULL;
    } else {
      g_assert_cmpint(st, !=, CF_OK);
      assert_contains(err.msg, "labels.idx");
      assert_contains(err.msg, cases[i].needle);
      g_assert_null(labels);
    }
    g_byte_array_unref(cases[i].b);
  }
}

/* ------------------------------------------------------------------------ */
/* Helpers on image sets                                                    */

static void
test_downsample(void)
{
  CfImageSet s, d;
  cf_image_set_init(&s);
  cf_image_set_init(&d);
  CfError err;
  g_assert_cmpint(cf_image_set_alloc(&s, 3, 2, 12, 8, true, &err), ==, CF_OK);
  GRand *r = g_rand_new_with_seed(7);
  for (size_t i = 0; i < 3 * cf_image_set_dim(&s); i++)
    s.pixels[i] = (float)g_rand_double(r);
  for (int i = 0; i < 3; i++)
    s.labels[i] = i;
  s.n_classes = 3;
  g_rand_free(r);
  for (int f = 1; f <= 4; f *= 2) {
    g_assert_cmpint(cf_image_set_downsample(&d, &s, f, &err), ==, CF_OK);
    g_assert_cmpint(d.n, ==, 3);
    g_assert_cmpint(d.C, ==, 2);
    g_assert_cmpint(d.H, ==, 12 / f);
    g_assert_cmpint(d.W, ==, 8 / f);
    g_assert_cmpint(d.n_classes, ==, 3);
    g_assert_cmpint(d.labels[2], ==, 2);
    for (int i = 0; i < 3; i++)
      for (int c = 0; c < 2; c++)
        for (int y = 0; y < d.H; y++)
          for (int x = 0; x < d.W; x++) {
            double sum = 0;
            for (int yy = y * f; yy < (y + 1) * f; yy++)
              for (int xx = x * f; xx < (x + 1) * f; xx++)
                sum += s.pixels[(size_t)i * 192 + (size_t)c * 96 + (size_t)yy * 8 + (size_t)xx];
            double got = d.pixels[(size_t)i * cf_image_set_dim(&d) + ((size_t)c * d.H + y) * d.W + x];
            g_assert_cmpfloat_with_epsilon(got, sum / (f * f), 1e-6);
          }
  }
  /* 28 -> 14 shape */
  CfImageSet m;
  cf_image_set_init(&m);
  g_assert_cmpint(cf_image_set_alloc(&m, 1, 1, 28, 28, false, &err), ==, CF_OK);
  for (int i = 0; i < 28 * 28; i++)
    m.pixels[i] = (float)(i % 28) / 27.0f; /* horizontal ramp */
  g_assert_cmpint(cf_image_set_downsample(&d, &m, 2, &err), ==, CF_OK);
  g_assert_cmpint(d.H, ==, 14);
  g_assert_null(d.labels);
  g_assert_cmpfloat_with_epsilon(d.pixels[0], (0.0 + 1.0) / 2 / 27.0, 1e-6);
  g_assert_cmpfloat_with_epsilon(d.pixels[13], (26.0 + 27.0) / 2 / 27.0, 1e-6);
  /* factors that do not divide */
  g_assert_cmpint(cf_image_set_downsample(&d, &m, 3, &err), ==, CF_ERR_INVALID);
  assert_contains(err.msg, "factor 3");
  g_assert_cmpint(cf_image_set_downsample(&d, &m, 0, &err), ==, CF_ERR_INVALID);
  g_assert_cmpint(d.H, ==, 14); /* unchanged on error */
  cf_image_set_clear(&m);
  cf_image_set_clear(&s);
  cf_image_set_clear(&d);
}

static void
test_subset_filter(void)
{
  CfImageSet s, d;
  cf_image_set_init(&s);
  cf_image_set_init(&d);
  CfError err;
  g_assert_cmpint(cf_image_set_alloc(&s, 10, 1, 2, 2, false, &err), ==, CF_OK);
  int labels[10];
  for (int i = 0; i < 10; i++) {
    labels[i] = i % 4;
    for (int j = 0; j < 4; j++)
      s.pixels[i * 4 + j] = (float)i;
  }
  /* filtering needs labels */
  int keep[2] = {3, 1};
  g_assert_cmpint(cf_image_set_filter_classes(&d, &s, keep, 2, false, &err), ==, CF_ERR_INVALID);
  g_assert_cmpint(cf_image_set_set_labels(&s, labels, 10, "l", &err), ==, CF_OK);
  g_assert_cmpint(s.n_classes, ==, 4);
  int counts[4];
  cf_image_set_class_counts(&s, counts);
  g_assert_cmpint(counts[0], ==, 3);
  g_assert_cmpint(counts[1], ==, 3);
  g_assert_cmpint(counts[2], ==, 2);
  g_assert_cmpint(counts[3], ==, 2);

  int idx[3] = {9, 0, 4};
  g_assert_cmpint(cf_image_set_subset(&d, &s, idx, 3, &err), ==, CF_OK);
  g_assert_cmpint(d.n, ==, 3);
  g_assert_cmpfloat(d.pixels[0], ==, 9.0f);
  g_assert_cmpfloat(d.pixels[4], ==, 0.0f);
  g_assert_cmpfloat(d.pixels[11], ==, 4.0f);
  g_assert_cmpint(d.labels[0], ==, 1);
  g_assert_cmpint(d.n_classes, ==, 4);
  idx[1] = 10;
  g_assert_cmpint(cf_image_set_subset(&d, &s, idx, 3, &err), ==, CF_ERR_INVALID);
  assert_contains(err.msg, "index 10");

  g_assert_cmpint(cf_image_set_filter_classes(&d, &s, keep, 2, false, &err), ==, CF_OK);
  g_assert_cmpint(d.n, ==, 5); /* images 1, 3, 5, 7, 9 */
  g_assert_cmpint(d.n_classes, ==, 4);
  for (int j = 0; j < 5; j++) {
    g_assert_cmpfloat(d.pixels[j * 4], ==, (float)(2 * j + 1));
    g_assert_cmpint(d.labels[j], ==, (2 * j + 1) % 4);
  }
  g_assert_cmpint(cf_image_set_filter_classes(&d, &s, keep, 2, true, &err), ==, CF_OK);
  g_assert_cmpint(d.n_classes, ==, 2);
  g_assert_cmpint(d.labels[0], ==, 1); /* class 1 -> 1 */
  g_assert_cmpint(d.labels[1], ==, 0); /* class 3 -> 0 */
  int bad[2] = {1, 1};
  g_assert_cmpint(cf_image_set_filter_classes(&d, &s, bad, 2, true, &err), ==, CF_ERR_INVALID);
  assert_contains(err.msg, "twice");
  bad[1] = 4;
  g_assert_cmpint(cf_image_set_filter_classes(&d, &s, bad, 2, true, &err), ==, CF_ERR_INVALID);
  assert_contains(err.msg, "class 4 out of range");

  CfDataset ds;
  cf_dataset_init(&ds);
  g_assert_cmpint(cf_image_set_to_dataset(&ds, &s, &err), ==, CF_OK);
  g_assert_cmpint(ds.n, ==, 10);
  g_assert_cmpint(ds.dim, ==, 4);
  g_assert_cmpint(ds.n_classes, ==, 4);
  g_assert_cmpfloat(ds.x[4 * 7], ==, 7.0f);
  g_assert_cmpint(ds.labels[7], ==, 3);
  cf_dataset_clear(&ds);
  cf_image_set_clear(&s);
  cf_image_set_clear(&d);
}

static void
test_norm(void)
{
  CfNorm nm;
  cf_norm_init(&nm);
  CfError err;
  g_assert_cmpint(cf_image_norm(&nm, 784, &err), ==, CF_OK);
  g_assert_cmpint(nm.dim, ==, 784);
  float x[2 * 784], orig[2 * 784];
  for (int i = 0; i < 2 * 784; i++)
    orig[i] = x[i] = (float)(i % 256) / 255.0f;
  cf_norm_apply(&nm, x, 2);
  for (int i = 0; i < 2 * 784; i++) {
    /* model = 2 raw - 1, exactly */
    g_assert_cmpfloat(x[i], ==, 2.0f * orig[i] - 1.0f);
    g_assert_cmpfloat(x[i], >=, -1.0f);
    g_assert_cmpfloat(x[i], <=, 1.0f);
  }
  g_assert_cmpfloat(x[0], ==, -1.0f);
  g_assert_cmpfloat(x[255], ==, 1.0f);
  cf_norm_invert(&nm, x, 2);
  for (int i = 0; i < 2 * 784; i++)
    g_assert_cmpfloat_with_epsilon(x[i], orig[i], 1e-7);
  g_assert_cmpint(cf_image_norm(&nm, 0, &err), ==, CF_ERR_INVALID);
  g_assert_cmpint(cf_image_norm(&nm, CF_DATA_MAX_DIM + 1, &err), ==, CF_ERR_INVALID);
  g_assert_cmpint(nm.dim, ==, 784);
  cf_norm_clear(&nm);
}

/* Random mutations of a valid file never crash and either parse or report. */
static void
test_fuzz(void)
{
  g_autoptr(GByteArray) b = make_images(CF_IDX_MAGIC_IMAGES, 2, 3, 3, 18);
  GRand *r = g_rand_new_with_seed(42);
  guint8 buf[64];
  for (int it = 0; it < 20000; it++) {
    size_t len = (size_t)g_rand_int_range(r, 0, (gint32)b->len + 4);
    memcpy(buf, b->data, MIN(len, b->len));
    for (size_t i = b->len; i < len; i++)
      buf[i] = 7;
    int flips = g_rand_int_range(r, 0, 3);
    for (int k = 0; k < flips && len > 0; k++)
      buf[g_rand_int_range(r, 0, (gint32)MIN(len, 16))] = (guint8)g_rand_int(r);
    CfImageSet s;
    cf_image_set_init(&s);
    CfError err;
    cf_error_clear(&err);
    if (cf_idx_parse_images(&s, buf, len, "fuzz", &err) == CF_OK)
      g_assert_cmpuint(len, ==, 16 + (size_t)s.n * cf_image_set_dim(&s));
    else
      assert_contains(err.msg, "fuzz: ");
    cf_image_set_clear(&s);
  }
  g_rand_free(r);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/idx/images-roundtrip", test_images_roundtrip);
  g_test_add_func("/idx/images-malformed", test_images_malformed);
  g_test_add_func("/idx/labels-malformed", test_labels_malformed);
  g_test_add_func("/idx/downsample", test_downsample);
  g_test_add_func("/idx/subset-filter", test_subset_filter);
  g_test_add_func("/idx/norm", test_norm);
  g_test_add_func("/idx/fuzz", test_fuzz);
  return g_test_run();
}
