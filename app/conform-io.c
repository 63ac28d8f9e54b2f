#define G_LOG_DOMAIN "conform"

#include "conform-io.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#include "conform-config.h"

gboolean
conform_write_atomic(const char *path, const void *data, gsize len, GError **error)
{
  g_autoptr(GError) e = NULL;
  /* CONSISTENT: temp file + rename; DURABLE: fsync before the rename. */
  if (!g_file_set_contents_full(path, data, (gssize)len,
                                G_FILE_SET_CONTENTS_CONSISTENT | G_FILE_SET_CONTENTS_DURABLE, 0644, &e)) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_IO, "cannot write %s: %s", path, e->message);
    return FALSE;
  }
  return TRUE;
}

gboolean
conform_read_file(const char *path, gsize max_bytes, char **data, gsize *len, GError **error)
{
  GStatBuf st;
  if (g_stat(path, &st) != 0) {
    int errsv = errno;
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_IO, "cannot read %s: %s", path, g_strerror(errsv));
    return FALSE;
  }
  if (!S_ISREG(st.st_mode)) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_IO, "cannot read %s: not a regular file", path);
    return FALSE;
  }
  if ((guint64)st.st_size > max_bytes) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_INPUT, "%s is too large (%" G_GUINT64_FORMAT " bytes, limit %" G_GSIZE_FORMAT ")",
                path, (guint64)st.st_size, max_bytes);
    return FALSE;
  }
  g_autoptr(GError) e = NULL;
  if (!g_file_get_contents(path, data, len, &e)) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_IO, "cannot read %s: %s", path, e->message);
    return FALSE;
  }
  return TRUE;
}

gboolean
conform_ensure_dir(const char *dir, GError **error)
{
  if (g_mkdir_with_parents(dir, 0755) != 0) {
    int errsv = errno;
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_IO, "cannot create directory %s: %s", dir, g_strerror(errsv));
    return FALSE;
  }
  if (!g_file_test(dir, G_FILE_TEST_IS_DIR)) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_IO, "%s exists and is not a directory", dir);
    return FALSE;
  }
  if (g_access(dir, W_OK) != 0) {
    int errsv = errno;
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_IO, "cannot write to directory %s: %s", dir, g_strerror(errsv));
    return FALSE;
  }
  return TRUE;
}

GString *
conform_csv_floats(const float *x, int n, int dim, const char *prefix)
{
  GString *s = g_string_sized_new((gsize)n * (gsize)dim * 12 + 64);
  for (int j = 0; j < dim; j++)
    g_string_append_printf(s, "%s%s%d", j ? "," : "", prefix, j);
  g_string_append_c(s, '\n');
  char buf[G_ASCII_DTOSTR_BUF_SIZE];
  for (int i = 0; i < n; i++) {
    for (int j = 0; j < dim; j++) {
      if (j)
        g_string_append_c(s, ',');
      g_string_append(s, g_ascii_formatd(buf, sizeof buf, "%.9g", x[(gsize)i * dim + j]));
    }
    g_string_append_c(s, '\n');
  }
  return s;
}
