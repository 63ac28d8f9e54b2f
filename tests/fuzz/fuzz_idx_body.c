/* Fuzz body: IDX files (core/idx.c) and their reader with gzip
 * (app/conform-images.c, conform_idx_load_gz*).
 *
 * First byte: bit 0 picks labels (set) or images; bit 1 set: the body
 * gzips the rest first (a valid gzip stream around arbitrary IDX bytes),
 * clear: the rest is the file as it is (plain IDX, or gzip as the fuzzer
 * made it); bit 2 set: the reader also goes through a temporary file
 * (conform_idx_load_images / _labels) and must agree.
 *
 * Invariants: cf_idx_parse_* accepts exactly header + n H W bytes, shapes
 * within the limits, pixel = byte / 255, label = byte; refused input leaves
 * the output untouched, with a corrupt/size status naming the input. The
 * reader returns what the stream holds (the plain bytes, or exactly what was
 * gzipped), never more than its validated header announces, and accepts
 * whatever the parser accepts; a gzip file it accepts is exactly one gzip
 * stream, nothing after it; its errors name the input. */
#include "fuzz.h"

#include <gio/gio.h>
#include <string.h>

#include "conform-config.h"
#include "conform-images.h"
#include "idx.h"

static void
setup(void)
{
  static gboolean done;
  if (done)
    return;
  done = TRUE;
  g_log_set_always_fatal(G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING);
}

static GBytes *
gzip_bytes(const guint8 *data, gsize len)
{
  g_autoptr(GZlibCompressor) zc = g_zlib_compressor_new(G_ZLIB_COMPRESSOR_FORMAT_GZIP, 1);
  g_autoptr(GOutputStream) mem = g_memory_output_stream_new_resizable();
  g_autoptr(GOutputStream) out = g_converter_output_stream_new(mem, G_CONVERTER(zc));
  gsize written = 0;
  FUZZ_CHECK(g_output_stream_write_all(out, data, len, &written, NULL, NULL) && written == len, "gzip write");
  FUZZ_CHECK(g_output_stream_close(out, NULL, NULL), "gzip close");
  return g_memory_output_stream_steal_as_bytes(G_MEMORY_OUTPUT_STREAM(mem));
}

/* A strict gunzip: one gzip member that must use up every byte of the
 * file. Returns the data, or NULL if the file is not exactly that. */
static GBytes *
gunzip_strict(const guint8 *data, gsize len)
{
  g_autoptr(GZlibDecompressor) zd = g_zlib_decompressor_new(G_ZLIB_COMPRESSOR_FORMAT_GZIP);
  g_autoptr(GByteArray) out = g_byte_array_new();
  guint8 buf[65536];
  gsize pos = 0;
  for (;;) {
    gsize nr = 0, nw = 0;
    GConverterResult r = g_converter_convert(G_CONVERTER(zd), data + pos, len - pos, buf, sizeof buf,
                                             G_CONVERTER_INPUT_AT_END, &nr, &nw, NULL);
    if (r == G_CONVERTER_ERROR)
      return NULL;
    pos += nr;
    g_byte_array_append(out, buf, (guint)nw);
    if (r == G_CONVERTER_FINISHED)
      break;
    if (out->len > ((guint)64 << 20))
      return NULL;
  }
  if (pos != len)
    return NULL;
  return g_byte_array_free_to_bytes(g_steal_pointer(&out));
}

/* The core parser on `buf`. Returns TRUE when it accepted. */
static gboolean
parse_core(gboolean labels, const guint8 *buf, gsize len)
{
  CfError err;
  cf_error_clear(&err);
  CfStatus st;
  if (labels) {
    int sentinel[1] = {7}, *lab = sentinel, n = -5;
    st = cf_idx_parse_labels(&lab, &n, buf, len, "fuzz.idx", &err);
    if (st == CF_OK) {
      FUZZ_CHECK(n >= 1 && n <= CF_IDX_MAX_N && len == 8 + (gsize)n, "%d labels in %zu bytes", n, len);
      for (int i = 0; i < n; i++)
        FUZZ_CHECK(lab[i] == buf[8 + i], "label %d = %d, byte %d", i, lab[i], buf[8 + i]);
      free(lab);
      return TRUE;
    }
    FUZZ_CHECK(lab == sentinel && n == -5, "refused labels changed the output");
  } else {
    CfImageSet s;
    cf_image_set_init(&s);
    FUZZ_CHECK(cf_image_set_alloc(&s, 1, 1, 1, 1, false, &err) == CF_OK, "%s", err.msg);
    s.pixels[0] = 0.25f;
    st = cf_idx_parse_images(&s, buf, len, "fuzz.idx", &err);
    if (st == CF_OK) {
      FUZZ_CHECK(s.n >= 1 && s.n <= CF_IDX_MAX_N && s.C == 1 && s.H >= 1 && s.H <= CF_IDX_MAX_SIDE && s.W >= 1 &&
                     s.W <= CF_IDX_MAX_SIDE,
                 "shape %d x %d x %d x %d", s.n, s.C, s.H, s.W);
      gsize nb = (gsize)s.n * (gsize)s.H * (gsize)s.W;
      FUZZ_CHECK(len == 16 + nb, "%zu pixels in %zu bytes", nb, len);
      FUZZ_CHECK(s.labels == NULL && s.n_classes == 0, "labels from an image file");
      for (gsize i = 0; i < nb; i++)
        FUZZ_CHECK(s.pixels[i] == (float)buf[16 + i] / 255.0f, "pixel %zu", i);
      if (s.H % 2 == 0 && s.W % 2 == 0 && nb <= 65536) {
        CfImageSet half;
        cf_image_set_init(&half);
        FUZZ_CHECK(cf_image_set_downsample(&half, &s, 2, &err) == CF_OK, "downsample: %s", err.msg);
        for (gsize i = 0; i < nb / 4; i++)
          FUZZ_CHECK(half.pixels[i] >= 0.0f && half.pixels[i] <= 1.0f, "downsampled pixel %zu", i);
        cf_image_set_clear(&half);
      }
      cf_image_set_clear(&s);
      return TRUE;
    }
    FUZZ_CHECK(s.n == 1 && s.H == 1 && s.pixels[0] == 0.25f, "refused images changed the output");
    cf_image_set_clear(&s);
  }
  FUZZ_CHECK(st == CF_ERR_CORRUPT || st == CF_ERR_NOMEM, "status %d: %s", (int)st, err.msg);
  FUZZ_CHECK(err.code == st && g_str_has_prefix(err.msg, "fuzz.idx: "), "message: %s", err.msg);
  return FALSE;
}

void
cf_fuzz_one(const uint8_t *data, size_t size)
{
  setup();
  if (size == 0)
    return;
  const gboolean labels = data[0] & 1, compress = (data[0] & 2) != 0, via_file = (data[0] & 4) != 0;
  const unsigned magic = labels ? CF_IDX_MAGIC_LABELS : CF_IDX_MAGIC_IMAGES;
  const guint8 *payload = data + 1;
  const gsize plen = size - 1;
  g_autoptr(GBytes) gz = compress ? gzip_bytes(payload, plen) : NULL;
  gsize flen = plen;
  const guint8 *file = gz ? g_bytes_get_data(gz, &flen) : payload;
  const gboolean is_gz = flen >= 2 && file[0] == 0x1f && file[1] == 0x8b;

  /* core on the IDX bytes themselves (for a fuzzer-made gzip, on those bytes) */
  gboolean core_ok = parse_core(labels, payload, plen);

  /* the app reader */
  g_autoptr(GError) e = NULL;
  g_autofree guint8 *out = NULL;
  gsize olen = 0;
  gboolean ok = conform_idx_load_gz_from_data(file, flen, "fuzz.idx", magic, &out, &olen, &e);
  if (!ok) {
    FUZZ_CHECK(e && e->domain == CONFORM_ERROR && (e->code == CONFORM_ERROR_INPUT || e->code == CONFORM_ERROR_IO),
               "reader error %s", e ? e->message : "(none)");
    FUZZ_CHECK(strstr(e->message, "fuzz.idx") != NULL, "reader message does not name the input: %s", e->message);
    FUZZ_CHECK(!core_ok || (!compress && is_gz), "the reader refuses what the parser accepts: %s", e->message);
  } else {
    CfIdxHeader h;
    CfError err;
    FUZZ_CHECK(cf_idx_read_header(&h, magic, out, olen, "out", &err) == CF_OK, "reader returned a bad header: %s",
               err.msg);
    FUZZ_CHECK(olen <= h.header_bytes + h.data_bytes, "reader returned %zu bytes, header says %zu", olen,
               h.header_bytes + h.data_bytes);
    if (compress)
      FUZZ_CHECK(olen == plen && memcmp(out, payload, plen) == 0, "gunzip(gzip(x)) != x");
    else if (!is_gz)
      FUZZ_CHECK(olen == plen && memcmp(out, payload, plen) == 0, "plain file changed by the reader");
    if (is_gz) {
      /* what it accepts is one whole gzip stream, and returns all of it */
      g_autoptr(GBytes) strict = gunzip_strict(file, flen);
      FUZZ_CHECK(strict != NULL, "accepted a gzip file that is not exactly one gzip stream (%zu bytes)", flen);
      FUZZ_CHECK(g_bytes_get_size(strict) == olen && memcmp(g_bytes_get_data(strict, NULL), out, olen) == 0,
                 "reader returned %zu bytes, the gzip stream holds %zu", olen, g_bytes_get_size(strict));
    }
    gboolean out_ok = parse_core(labels, out, olen);
    if (compress || !is_gz)
      FUZZ_CHECK(out_ok == core_ok, "parser disagrees on the reader's output");
  }

  if (via_file) {
    const char *path = cf_fuzz_tmp_path("data.idx");
    cf_fuzz_write_file(path, file, flen);
    g_autoptr(GError) fe = NULL;
    gboolean fok;
    if (labels) {
      int *lab = NULL, n = 0;
      fok = conform_idx_load_labels(path, &lab, &n, &fe);
      free(lab);
    } else {
      CfImageSet s;
      cf_image_set_init(&s);
      fok = conform_idx_load_images(path, &s, &fe);
      cf_image_set_clear(&s);
    }
    FUZZ_CHECK(fok == (ok && parse_core(labels, out, olen)), "file reader says %s", fok ? "ok" : fe->message);
    FUZZ_CHECK(fok || strstr(fe->message, path) != NULL, "file reader message does not name the file: %s",
               fe->message);
  }
}
