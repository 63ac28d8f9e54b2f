/* Fuzz body: data CSV (core/data.c). The first byte picks the row limit
 * (0: none, else 1..7), the rest is the file. On acceptance: 1 <= n <= the
 * limit, 1 <= dim <= CF_DATA_MAX_DIM, every value finite and a float, no
 * labels, and no more values than bytes; the file reader (cf_data_load_csv,
 * compiled here with a tiny read chunk, so lines and "\r\n" split across
 * reads) agrees with the buffer parser bit for bit, message included; the
 * values printed with %.9g parse back to the same bits. On refusal: a
 * parse/size status whose message names the file, and the output untouched. */
#include "fuzz.h"

#include <float.h>
#include <math.h>
#include <string.h>

#include "data.h"

static void
check_same(const CfDataset *x, const CfDataset *y, const char *what)
{
  FUZZ_CHECK(x->n == y->n && x->dim == y->dim, "%s: %d x %d vs %d x %d", what, x->n, x->dim, y->n, y->dim);
  FUZZ_CHECK(memcmp(x->x, y->x, (size_t)x->n * (size_t)x->dim * sizeof(float)) == 0, "%s: values differ", what);
}

void
cf_fuzz_one(const uint8_t *data, size_t size)
{
  int max_rows = size > 0 ? data[0] % 8 : 0;
  const char *text = size > 0 ? (const char *)data + 1 : "";
  size_t len = size > 0 ? size - 1 : 0;
  const char *path = cf_fuzz_tmp_path("data.csv");

  CfDataset d, f;
  cf_dataset_init(&d);
  cf_dataset_init(&f);
  CfError err, ferr;
  cf_error_clear(&err);
  cf_error_clear(&ferr);
  CfStatus st = cf_data_parse_csv(&d, text, len, path, max_rows, &err);
  cf_fuzz_write_file(path, text, len);
  CfStatus fst = cf_data_load_csv(&f, path, max_rows, &ferr);
  FUZZ_CHECK(st == fst, "buffer parser %d (%s), file reader %d (%s)", (int)st, st ? err.msg : "ok", (int)fst,
             fst ? ferr.msg : "ok");
  if (st != CF_OK) {
    FUZZ_CHECK(st == CF_ERR_PARSE || st == CF_ERR_NOMEM, "status %d: %s", (int)st, err.msg);
    FUZZ_CHECK(err.code == st, "code %d vs status %d", (int)err.code, (int)st);
    FUZZ_CHECK(strncmp(err.msg, path, strlen(path)) == 0 && err.msg[strlen(path)] == ':',
               "message does not name the file: %s", err.msg);
    FUZZ_CHECK(strcmp(err.msg, ferr.msg) == 0, "messages differ:\n  buffer: %s\n  file:   %s", err.msg, ferr.msg);
    FUZZ_CHECK(d.x == NULL && d.n == 0 && f.x == NULL && f.n == 0, "refused input changed the output");
    return;
  }
  FUZZ_CHECK(d.n >= 1 && (max_rows == 0 || d.n <= max_rows), "n = %d, limit %d", d.n, max_rows);
  FUZZ_CHECK(d.dim >= 1 && d.dim <= CF_DATA_MAX_DIM, "dim = %d", d.dim);
  FUZZ_CHECK((size_t)d.n * (size_t)d.dim <= len, "%d x %d values from %zu bytes", d.n, d.dim, len);
  FUZZ_CHECK(d.labels == NULL && d.n_classes == 0, "labels from a CSV");
  for (size_t i = 0; i < (size_t)d.n * (size_t)d.dim; i++)
    FUZZ_CHECK(isfinite(d.x[i]) && fabsf(d.x[i]) <= FLT_MAX, "value %zu = %g", i, (double)d.x[i]);
  check_same(&d, &f, "file vs buffer");

  /* %.9g round trip, comma separated */
  size_t cap = (size_t)d.n * (size_t)d.dim * 20 + 16;
  char *out = malloc(cap);
  FUZZ_CHECK(out != NULL, "out of memory");
  size_t o = 0;
  for (int i = 0; i < d.n; i++)
    for (int j = 0; j < d.dim; j++)
      o += (size_t)snprintf(out + o, cap - o, "%.9g%c", (double)d.x[(size_t)i * d.dim + j], j + 1 < d.dim ? ',' : '\n');
  CfDataset back;
  cf_dataset_init(&back);
  st = cf_data_parse_csv(&back, out, o, "<round trip>", 0, &err);
  FUZZ_CHECK(st == CF_OK, "round trip refused: %s", err.msg);
  check_same(&d, &back, "round trip");
  free(out);
  cf_dataset_clear(&back);
  cf_dataset_clear(&d);
  cf_dataset_clear(&f);
}
