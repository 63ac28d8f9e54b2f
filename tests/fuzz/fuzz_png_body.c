/* Fuzz body: PNG import (app/conform-images.c: the libpng reader, the
 * conversion to gray and the resize behind conform_png_load_gray and the
 * PNG folder source).
 *
 * First byte: bits 0-4 give the output size - 1 (1..32); bit 5: also read
 * the PNG from a temporary file (conform_png_load_gray) and compare; bit 6:
 * also import a folder holding it (conform_png_folder_import) and compare;
 * bit 7 clear: the body first writes the right CRC into every chunk (so
 * mutations get past libpng's CRC check to the chunk contents), set: the
 * file as it is. The rest is the PNG file.
 *
 * On acceptance: every output value finite and in [0, 1]; the file and
 * folder paths give the same bits (the folder: one 1 x size x size image).
 * On refusal: an input error naming the input, and the folder import
 * refuses too, naming the folder and the file. */
#include "fuzz.h"

#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

#include "checkpoint.h" /* cf_crc32: the CRC-32 of PNG chunks too */
#include "conform-config.h"
#include "conform-images.h"

static void
setup(void)
{
  static gboolean done;
  if (done)
    return;
  done = TRUE;
  g_log_set_always_fatal(G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING);
}

static guint32
be32(const guint8 *p)
{
  return (guint32)p[0] << 24 | (guint32)p[1] << 16 | (guint32)p[2] << 8 | p[3];
}

/* Chunks after the signature: length, type, data, CRC over type and data. */
static void
fix_crcs(guint8 *png, gsize len)
{
  gsize pos = 8;
  while (pos + 12 <= len) {
    guint32 n = be32(png + pos);
    if (n > len - pos - 12)
      break;
    guint32 crc = cf_crc32(0, png + pos + 4, 4 + (gsize)n);
    guint8 *c = png + pos + 8 + n;
    c[0] = (guint8)(crc >> 24);
    c[1] = (guint8)(crc >> 16);
    c[2] = (guint8)(crc >> 8);
    c[3] = (guint8)crc;
    pos += 12 + (gsize)n;
  }
}

void
cf_fuzz_one(const uint8_t *data, size_t size)
{
  setup();
  if (size == 0)
    return;
  const int side = 1 + (data[0] & 31);
  const gboolean via_file = (data[0] & 32) != 0, via_folder = (data[0] & 64) != 0;
  const gsize len = size - 1;
  g_autofree guint8 *png = g_malloc(len ? len : 1);
  if (len)
    memcpy(png, data + 1, len);
  if (!(data[0] & 128))
    fix_crcs(png, len);
  const gsize plane = (gsize)side * side;
  float *out = g_new(float, plane);
  for (gsize i = 0; i < plane; i++)
    out[i] = -1.0f;
  g_autoptr(GError) e = NULL;
  gboolean ok = conform_png_decode_gray(png, len, "fuzz.png", side, out, &e);
  if (ok) {
    for (gsize i = 0; i < plane; i++)
      FUZZ_CHECK(isfinite(out[i]) && out[i] >= 0.0f && out[i] <= 1.0f, "pixel %zu = %g", i, (double)out[i]);
  } else {
    FUZZ_CHECK(e && e->domain == CONFORM_ERROR && e->code == CONFORM_ERROR_INPUT, "error %s",
               e ? e->message : "(none)");
    FUZZ_CHECK(g_str_has_prefix(e->message, "fuzz.png: ") && e->message[10] != '\0', "message: %s", e->message);
  }

  if (via_file) {
    const char *path = cf_fuzz_tmp_path("image.png");
    cf_fuzz_write_file(path, png, len);
    float *again = g_new(float, plane);
    g_autoptr(GError) fe = NULL;
    gboolean fok = conform_png_load_gray(path, side, again, &fe);
    FUZZ_CHECK(fok == ok, "file path says %s", fok ? "ok" : fe->message);
    if (ok)
      FUZZ_CHECK(memcmp(again, out, plane * sizeof(float)) == 0, "file path decodes other values");
    else
      FUZZ_CHECK(g_str_has_prefix(fe->message, path), "file message: %s", fe->message);
    g_free(again);
  }

  if (via_folder) {
    const char *dir = cf_fuzz_tmp_path("png-folder");
    const char *path = cf_fuzz_tmp_path("png-folder/a.png");
    FUZZ_CHECK(g_mkdir_with_parents(dir, 0700) == 0, "cannot create %s", dir);
    cf_fuzz_write_file(path, png, len);
    CfImageSet set;
    cf_image_set_init(&set);
    GPtrArray *skipped = NULL;
    g_autoptr(GError) de = NULL;
    gboolean dok = conform_png_folder_import(dir, side, &set, &skipped, &de);
    FUZZ_CHECK(dok == ok, "folder import says %s", dok ? "ok" : de->message);
    if (ok) {
      FUZZ_CHECK(set.n == 1 && set.C == 1 && set.H == side && set.W == side && !set.labels, "folder set shape");
      FUZZ_CHECK(memcmp(set.pixels, out, plane * sizeof(float)) == 0, "folder import decodes other values");
      FUZZ_CHECK(skipped && skipped->len == 0, "skipped files");
    } else {
      FUZZ_CHECK(strstr(de->message, dir) && strstr(de->message, "a.png"), "folder message: %s", de->message);
      FUZZ_CHECK(skipped && skipped->len == 1, "skipped list");
    }
    if (skipped)
      g_ptr_array_unref(skipped);
    cf_image_set_clear(&set);
  }
  g_free(out);
}
