/* File helpers: atomic writes and bounded reads. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Writes via a temporary file in the same directory, fsync, then rename:
 * a crash leaves either the old file or the new one, never half a file. */
gboolean conform_write_atomic(const char *path, const void *data, gsize len, GError **error);
/* Reads a whole file, refusing files larger than max_bytes. */
gboolean conform_read_file(const char *path, gsize max_bytes, char **data, gsize *len, GError **error);
/* Creates dir (and parents); error if it exists as a non-directory or is not writable. */
gboolean conform_ensure_dir(const char *dir, GError **error);
/* Rows of floats as CSV with header x0,x1,... (%.9g: float round-trips). */
GString *conform_csv_floats(const float *x, int n, int dim, const char *prefix);

G_END_DECLS
