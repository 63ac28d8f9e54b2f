/* Tests for core/constraint: parser, analysis, reduction, model/raw space
 * mapping, projection and violations. */
#include <glib.h>

#include <cblas.h>
#include <float.h>
#include <lapacke.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "constraint.h"
#include "rng.h"

/* ------------------------------------------------------------------------ */
/* helpers                                                                  */

static void
parse_ok(CfConstraint *c, const char *text)
{
  CfError err = {0};
  cf_constraint_init(c);
  CfStatus st = cf_constraint_parse(c, text, strlen(text), "ok.txt", &err);
  if (st != CF_OK)
    g_error("unexpected parse failure: %s", err.msg);
}

/* Parses text (length len) as `origin`, expects status `want` and every
 * NULL-terminated substring in the message. */
static void
expect_parse_error_len(const char *text, size_t len, const char *origin, CfStatus want, ...)
{
  CfConstraint c;
  cf_constraint_init(&c);
  CfError err = {0};
  CfStatus st = cf_constraint_parse(&c, text, len, origin, &err);
  if (st != want)
    g_error("input %.60s: status %s (%s), expected %s", text, cf_status_to_string(st), err.msg,
            cf_status_to_string(want));
  g_assert_cmpint(err.code, ==, want);
  g_assert_null(c.A); /* untouched on failure */
  va_list ap;
  va_start(ap, want);
  for (const char *sub = va_arg(ap, const char *); sub; sub = va_arg(ap, const char *)) {
    if (!strstr(err.msg, sub))
      g_error("message \"%s\" does not contain \"%s\"", err.msg, sub);
  }
  va_end(ap);
  cf_constraint_clear(&c);
}

#define expect_parse_error(text, want, ...) \
  expect_parse_error_len(text, strlen(text), "constraints.txt", want, __VA_ARGS__, NULL)

static void
fill_normal(CfRng *rng, double *x, size_t n)
{
  for (size_t i = 0; i < n; i++)
    x[i] = cf_rng_normal(rng);
}

static double
norm2(const double *x, int n)
{
  double s = 0.0;
  for (int i = 0; i < n; i++)
    s += x[i] * x[i];
  return sqrt(s);
}

static double
sigma_max(const double *A, int m, int n)
{
  int k = m < n ? m : n;
  double *W = g_new(double, (size_t)m * n);
  double *s = g_new(double, k);
  memcpy(W, A, sizeof(double) * (size_t)m * n);
  g_assert_cmpint(LAPACKE_dgesdd(LAPACK_ROW_MAJOR, 'N', m, n, W, n, s, NULL, m, NULL, n), ==, 0);
  double r = s[0];
  g_free(W);
  g_free(s);
  return r;
}

/* ------------------------------------------------------------------------ */
/* parser: good input                                                       */

static void
test_parse_text(void)
{
  CfConstraint c;
  parse_ok(&c,
           "# a comment line\n"
           "\n"
           "1 1 1 | 1\n"
           "   # indented comment\n"
           "1, -2.5e0 ,3|  4   # trailing comment\n"
           "\t+1\t0\t.5e+1 | -0.5\r\n"
           "1.e2,2E-3,0 |0\n");
  g_assert_cmpint(c.m, ==, 4);
  g_assert_cmpint(c.n, ==, 3);
  const double A[] = {1, 1, 1, 1, -2.5, 3, 1, 0, 5, 100, 0.002, 0};
  const double b[] = {1, 4, -0.5, 0};
  for (int t = 0; t < 12; t++)
    g_assert_cmpfloat(c.A[t], ==, A[t]);
  for (int t = 0; t < 4; t++)
    g_assert_cmpfloat(c.b[t], ==, b[t]);
  cf_constraint_clear(&c);
  g_assert_null(c.A);

  /* many digits are rounded correctly, leading/trailing zeros kept right */
  parse_ok(&c, "0.1000000000000000055511151231257827 0.000123 1234567890123456789012 | 1e-310\n");
  g_assert_cmpfloat(c.A[0], ==, 0.1);
  g_assert_cmpfloat(c.A[1], ==, 0.000123);
  g_assert_cmpfloat(c.A[2], ==, 1234567890123456789012.0);
  g_assert_cmpfloat(c.b[0], ==, 1e-310);
  cf_constraint_clear(&c);
}

static void
test_parse_csv(void)
{
  CfConstraint c;
  /* no header */
  parse_ok(&c, "1,2,3\n4,5,6\n");
  g_assert_cmpint(c.m, ==, 2);
  g_assert_cmpint(c.n, ==, 2);
  g_assert_cmpfloat(c.A[3], ==, 5.0);
  g_assert_cmpfloat(c.b[0], ==, 3.0);
  g_assert_cmpfloat(c.b[1], ==, 6.0);
  cf_constraint_clear(&c);

  /* header, BOM, CRLF, spaces after commas, comments */
  parse_ok(&c, "\xEF\xBB\xBFx1, x2, x3, b\r\n# note\r\n1, 0, 0, 0.25\r\n0, 1, 1, -1\r\n");
  g_assert_cmpint(c.m, ==, 2);
  g_assert_cmpint(c.n, ==, 3);
  g_assert_cmpfloat(c.A[4], ==, 1.0);
  g_assert_cmpfloat(c.b[0], ==, 0.25);
  g_assert_cmpfloat(c.b[1], ==, -1.0);
  cf_constraint_clear(&c);

  /* whitespace-separated without '|' is CSV-like too */
  parse_ok(&c, "1 1 1 1\n");
  g_assert_cmpint(c.m, ==, 1);
  g_assert_cmpint(c.n, ==, 3);
  cf_constraint_clear(&c);
}

static void
test_roundtrip_text(void)
{
  CfRng rng;
  cf_rng_seed(&rng, 11);
  int m = 5, n = 7;
  double A[35], b[5];
  for (int t = 0; t < 35; t++)
    A[t] = cf_rng_normal(&rng) * pow(10.0, (double)(t % 9) - 4.0);
  for (int i = 0; i < 5; i++)
    b[i] = cf_rng_normal(&rng) * 1e-7;
  A[3] = -0.0;
  A[4] = 5e-324;
  CfConstraint c, d;
  cf_constraint_init(&c);
  cf_constraint_init(&d);
  CfError err = {0};
  g_assert_cmpint(cf_constraint_set(&c, m, n, A, b, &err), ==, CF_OK);
  char *text = cf_constraint_to_text(&c);
  g_assert_nonnull(text);
  g_assert_cmpint(cf_constraint_parse(&d, text, strlen(text), "<rt>", &err), ==, CF_OK);
  g_assert_cmpint(d.m, ==, m);
  g_assert_cmpint(d.n, ==, n);
  g_assert_cmpmem(d.A + 4, sizeof(double) * 31, c.A + 4, sizeof(double) * 31);
  g_assert_cmpfloat(d.A[4], ==, 5e-324);
  g_assert_cmpmem(d.b, sizeof b, c.b, sizeof b);
  free(text);

  /* copy */
  CfConstraint e;
  cf_constraint_init(&e);
  g_assert_cmpint(cf_constraint_copy(&e, &c, &err), ==, CF_OK);
  g_assert_cmpmem(e.A, sizeof A, c.A, sizeof A);
  cf_constraint_clear(&e);

  /* set rejects non-finite values and bad sizes */
  A[7] = NAN;
  g_assert_cmpint(cf_constraint_set(&e, m, n, A, b, &err), ==, CF_ERR_NUMERIC);
  g_assert_nonnull(strstr(err.msg, "row 1, column 0"));
  g_assert_cmpint(cf_constraint_set(&e, 0, n, A, b, &err), ==, CF_ERR_INVALID);
  g_assert_cmpint(cf_constraint_set(&e, CF_CONSTRAINT_MAX_ROWS + 1, 1, A, b, &err), ==, CF_ERR_NOMEM);
  g_assert_null(e.A);
  cf_constraint_clear(&c);
  cf_constraint_clear(&d);
}

/* ------------------------------------------------------------------------ */
/* parser: bad input                                                        */

static void
test_parse_errors(void)
{
  expect_parse_error("1 1 1 | 1\n1 abc 1 | 2\n", CF_ERR_PARSE, "constraints.txt:2:3: 'abc' is not a number");
  expect_parse_error("1 1 1 | 1\n1 2 3 | x\n", CF_ERR_PARSE, "constraints.txt:2:9: 'x' is not a number");
  expect_parse_error("0x10 1 | 1\n", CF_ERR_PARSE, "constraints.txt:1:1: '0x10' is not a number");
  expect_parse_error("1 1e | 1\n", CF_ERR_PARSE, ":1:3: '1e' is not a number");
  expect_parse_error("1 - | 1\n", CF_ERR_PARSE, ":1:3: '-' is not a number");
  expect_parse_error("1 1.2.3 | 1\n", CF_ERR_PARSE, "'1.2.3' is not a number");

  /* ragged rows */
  expect_parse_error("1 1 1 | 1\n\n# c\n1 1 | 2\n", CF_ERR_PARSE,
                     "constraints.txt:4: row has 2 coefficients, expected 3 (as in line 1)");
  expect_parse_error("# head\n1 1 | 1\n1 1 1 1 | 2\n", CF_ERR_PARSE,
                     "constraints.txt:3: row has 4 coefficients, expected 2 (as in line 2)");
  expect_parse_error("1,2,3\n1,2\n", CF_ERR_PARSE, "constraints.txt:2: row has 2 columns, expected 3 (as in line 1)");
  expect_parse_error("a,b,c\n1,2\n", CF_ERR_PARSE,
                     "constraints.txt:2: row has 2 columns, expected 3 (as in the header on line 1)");
  expect_parse_error("a,b,c\n1,2,3\n1,2,3,4\n", CF_ERR_PARSE,
                     "constraints.txt:3: row has 4 columns, expected 3 (as in line 2)");

  /* non-finite */
  expect_parse_error("1 nan 1 | 1\n", CF_ERR_NUMERIC, "constraints.txt:1:3: 'nan' is not a finite number");
  expect_parse_error("1 1 | -Infinity\n", CF_ERR_NUMERIC, "constraints.txt:1:7: '-Infinity' is not a finite number");
  expect_parse_error("INF,1\n", CF_ERR_NUMERIC, "constraints.txt:1:1: 'INF' is not a finite number");
  expect_parse_error("1 1e999 | 1\n", CF_ERR_NUMERIC, "constraints.txt:1:3: '1e999' is too large for a double");
  expect_parse_error("1 1e99999999999999999999 | 1\n", CF_ERR_NUMERIC, "too large");

  /* structure */
  expect_parse_error("1 1 | \n", CF_ERR_PARSE, "constraints.txt:1:5: missing right-hand side after '|'");
  expect_parse_error("1 1 | 1\n1 1 1\n", CF_ERR_PARSE, "constraints.txt:2: missing '|'");
  expect_parse_error("1 1 | 1 | 2\n", CF_ERR_PARSE, "constraints.txt:1:9: more than one '|'");
  expect_parse_error("1 1 | 1 2\n", CF_ERR_PARSE, "constraints.txt:1:9: more than one value after '|'");
  expect_parse_error("  | 2\n", CF_ERR_PARSE, "constraints.txt:1:3: no coefficients before '|'");
  expect_parse_error("1,,2 | 3\n", CF_ERR_PARSE, "constraints.txt:1:3: empty cell");
  expect_parse_error(",1,2 | 3\n", CF_ERR_PARSE, "constraints.txt:1:1: empty cell");
  expect_parse_error("1,2, | 3\n", CF_ERR_PARSE, "constraints.txt:1:4: empty cell");
  expect_parse_error("1\n2\n", CF_ERR_PARSE, "constraints.txt:1: row has 1 column", "at least 2");

  /* empty input */
  expect_parse_error("", CF_ERR_PARSE, "constraints.txt: no constraint rows");
  expect_parse_error("# only a comment\n\n   \t\n", CF_ERR_PARSE, "constraints.txt: no constraint rows");
  expect_parse_error("x,y,b\n", CF_ERR_PARSE, "no constraint rows");

  /* all-zero row */
  expect_parse_error("1 1 | 1\n0 0.0 | 0\n", CF_ERR_RANK, "constraints.txt:2: all coefficients on this row are zero");
  expect_parse_error("1,1,1\n-0,0e5,3\n", CF_ERR_RANK, "constraints.txt:2: all coefficients");

  /* NUL byte */
  static const char nul[] = "1 1 | 1\n1 \0 1 | 1\n";
  expect_parse_error_len(nul, sizeof nul - 1, "constraints.txt", CF_ERR_PARSE, "constraints.txt:2:3: NUL byte", NULL);

  /* default origin */
  expect_parse_error_len("1 x | 1", 7, NULL, CF_ERR_PARSE, "<text>:1:3: 'x' is not a number", NULL);

  /* a very long cell */
  GString *s = g_string_new("1 ");
  for (int i = 0; i < 300; i++)
    g_string_append_c(s, '1');
  g_string_append(s, " | 1\n");
  expect_parse_error(s->str, CF_ERR_PARSE, "constraints.txt:1:3: cell is too long");
  g_string_free(s, TRUE);
}

static void
test_parse_limits(void)
{
  /* more rows than allowed */
  GString *s = g_string_new(NULL);
  for (int i = 0; i <= CF_CONSTRAINT_MAX_ROWS; i++)
    g_string_append(s, "1 | 1\n");
  expect_parse_error(s->str, CF_ERR_NOMEM, "constraints.txt:4097: more than 4096 rows");
  g_string_truncate(s, 0);
  /* exactly the limit is fine (and redundant, but parsing does not care) */
  for (int i = 0; i < CF_CONSTRAINT_MAX_ROWS; i++)
    g_string_append(s, "1 | 1\n");
  CfConstraint c;
  parse_ok(&c, s->str);
  g_assert_cmpint(c.m, ==, CF_CONSTRAINT_MAX_ROWS);
  cf_constraint_clear(&c);

  /* more columns than allowed, text and CSV */
  g_string_truncate(s, 0);
  for (int j = 0; j <= CF_CONSTRAINT_MAX_COLS; j++)
    g_string_append(s, "1 ");
  g_string_append(s, "| 1\n");
  expect_parse_error(s->str, CF_ERR_NOMEM, "constraints.txt:1: row has 65537 coefficients, more than the limit");
  g_string_truncate(s, 0);
  for (int j = 0; j <= CF_CONSTRAINT_MAX_COLS + 1; j++)
    g_string_append(s, "1,");
  g_string_append(s, "1\n");
  expect_parse_error(s->str, CF_ERR_NOMEM, "constraints.txt:1: row has 65539 columns, more than the limit");
  g_string_free(s, TRUE);
}

/* Random bytes and mutations of valid files must never crash. */
static void
test_parse_garbage(void)
{
  CfRng rng;
  cf_rng_seed(&rng, 99);
  static const char alphabet[] = "0123456789.,+-eE|# \t\r\nnaifx\0";
  static const char *seeds[] = {"1 1 1 | 1\n", "x,y,b\n1,2,3\n", "1.5e-3, 2 | -4 # c\n2 2 2 | 2\n"};
  char buf[256];
  int ok = 0;
  for (int it = 0; it < 30000; it++) {
    size_t len = (size_t)cf_rng_below(&rng, sizeof buf);
    if (it % 3 == 0) {
      for (size_t i = 0; i < len; i++)
        buf[i] = (char)cf_rng_below(&rng, 256);
    } else if (it % 3 == 1) {
      for (size_t i = 0; i < len; i++)
        buf[i] = alphabet[cf_rng_below(&rng, sizeof alphabet - 1)];
    } else {
      const char *sd = seeds[cf_rng_below(&rng, 3)];
      len = strlen(sd);
      memcpy(buf, sd, len);
      int flips = 1 + (int)cf_rng_below(&rng, 4);
      for (int f = 0; f < flips; f++)
        buf[cf_rng_below(&rng, len)] = alphabet[cf_rng_below(&rng, sizeof alphabet - 1)];
    }
    CfConstraint c;
    cf_constraint_init(&c);
    CfError err = {0};
    CfStatus st = cf_constraint_parse(&c, buf, len, "fuzz", &err);
    if (st == CF_OK) {
      ok++;
      g_assert_cmpint(c.m, >=, 1);
      g_assert_cmpint(c.n, >=, 1);
      for (int t = 0; t < c.m * c.n; t++)
        g_assert_true(isfinite(c.A[t]));
    } else {
      g_assert_true(strncmp(err.msg, "fuzz", 4) == 0);
    }
    cf_constraint_clear(&c);
  }
  g_test_message("garbage inputs parsed successfully: %d of 30000", ok);
}

static char *
data_path(const char *name)
{
  const char *src = g_getenv("CONFORM_SOURCE_DIR");
  return g_build_filename(src ? src : ".", "data", "constraints", name, NULL);
}

static void
test_load(void)
{
  CfConstraint c;
  cf_constraint_init(&c);
  CfError err = {0};
  g_assert_cmpint(cf_constraint_load(&c, "/nonexistent/dir/constraints.txt", &err), ==, CF_ERR_IO);
  g_assert_nonnull(strstr(err.msg, "/nonexistent/dir/constraints.txt: cannot open"));

  char *tmp = NULL;
  int fd = g_file_open_tmp("cf-constraint-XXXXXX.txt", &tmp, NULL);
  g_assert_cmpint(fd, >=, 0);
  close(fd);
  g_assert_true(g_file_set_contents(tmp, "1 1 | 2\n1 -1 | q\n", -1, NULL));
  g_assert_cmpint(cf_constraint_load(&c, tmp, &err), ==, CF_ERR_PARSE);
  char *want = g_strdup_printf("%s:2:8: 'q' is not a number", tmp);
  g_assert_cmpstr(err.msg, ==, want);
  g_free(want);
  g_assert_true(g_file_set_contents(tmp, "1 1 | 2\n1 -1 | 0\n", -1, NULL));
  g_assert_cmpint(cf_constraint_load(&c, tmp, &err), ==, CF_OK);
  g_assert_cmpint(c.m, ==, 2);
  remove(tmp);
  g_free(tmp);

  /* the bundled examples */
  char *p = data_path("simplex-3d.txt");
  g_assert_cmpint(cf_constraint_load(&c, p, &err), ==, CF_OK);
  g_assert_cmpint(c.m, ==, 1);
  g_assert_cmpint(c.n, ==, 3);
  CfConstraintReport r;
  g_assert_cmpint(cf_constraint_analyze(&c, 3, &r, &err), ==, CF_OK);
  g_assert_cmpint(r.rank, ==, 1);
  g_assert_cmpint(r.nullity, ==, 2);
  cf_constraint_report_clear(&r);
  g_free(p);

  p = data_path("redundant-4d.txt");
  g_assert_cmpint(cf_constraint_load(&c, p, &err), ==, CF_OK);
  g_assert_cmpint(cf_constraint_analyze(&c, 4, &r, &err), ==, CF_OK);
  g_assert_cmpint(r.n_redundant, ==, 1);
  g_assert_cmpint(r.redundant_rows[0], ==, 2);
  cf_constraint_report_clear(&r);
  g_free(p);

  p = data_path("inconsistent-4d.txt");
  g_assert_cmpint(cf_constraint_load(&c, p, &err), ==, CF_OK);
  g_assert_cmpint(cf_constraint_analyze(&c, 4, &r, &err), ==, CF_ERR_INCONSISTENT);
  g_assert_nonnull(strstr(err.msg, "inconsistent system"));
  g_assert_false(r.consistent);
  cf_constraint_report_clear(&r);
  g_free(p);

  p = data_path("sum-zero-8d-csv.txt");
  g_assert_cmpint(cf_constraint_load(&c, p, &err), ==, CF_OK);
  g_assert_cmpint(c.n, ==, 8);
  g_assert_cmpint(cf_constraint_analyze(&c, 8, &r, &err), ==, CF_OK);
  cf_constraint_report_clear(&r);
  g_free(p);
  cf_constraint_clear(&c);
}

/* ------------------------------------------------------------------------ */
/* analysis                                                                 */

static void
test_analyze_full_rank(void)
{
  CfRng rng;
  cf_rng_seed(&rng, 1);
  int m = 20, n = 50;
  double *A = g_new(double, m * n), *b = g_new(double, m);
  fill_normal(&rng, A, (size_t)m * n);
  fill_normal(&rng, b, m);
  CfConstraint c;
  cf_constraint_init(&c);
  CfError err = {0};
  g_assert_cmpint(cf_constraint_set(&c, m, n, A, b, &err), ==, CF_OK);
  CfConstraintReport r;
  g_assert_cmpint(cf_constraint_analyze(&c, n, &r, &err), ==, CF_OK);
  g_assert_cmpint(r.m, ==, m);
  g_assert_cmpint(r.n, ==, n);
  g_assert_cmpint(r.rank, ==, m);
  g_assert_cmpint(r.nullity, ==, n - m);
  g_assert_cmpint(r.n_redundant, ==, 0);
  g_assert_null(r.redundant_rows);
  g_assert_true(r.consistent);
  g_assert_cmpfloat(r.residual_rel, <, 1e-12);

  /* cond from the eigenvalues of A A^T (symmetric eigensolver) */
  double *M = g_new0(double, m * m), *w = g_new(double, m);
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, m, n, 1.0, A, n, A, n, 0.0, M, m);
  g_assert_cmpint(LAPACKE_dsyev(LAPACK_ROW_MAJOR, 'N', 'U', m, M, m, w), ==, 0);
  double cond_eig = sqrt(w[m - 1] / w[0]);
  g_assert_cmpfloat(fabs(r.cond - cond_eig), <, 1e-9 * cond_eig);
  g_assert_cmpfloat(fabs(r.rank_tol - (double)n * DBL_EPSILON * sqrt(w[m - 1])), <, 1e-9 * r.rank_tol);
  g_test_message("full rank 20x50: cond %.6f (eig %.6f)", r.cond, cond_eig);

  /* wrong dimension: report not filled, message names both sizes */
  cf_constraint_report_clear(&r);
  g_assert_cmpint(cf_constraint_analyze(&c, 49, &r, &err), ==, CF_ERR_SHAPE);
  g_assert_cmpstr(err.msg, ==, "constraint has 50 columns but the data has dimension 49");
  g_assert_cmpint(r.rank, ==, 0);
  /* dim <= 0 skips the check */
  g_assert_cmpint(cf_constraint_analyze(&c, 0, &r, &err), ==, CF_OK);
  cf_constraint_report_clear(&r);

  /* overdetermined but consistent: 5 rows in 3-D through one point */
  double A5[15], b5[5], x0[3] = {0.3, -1.2, 2.0};
  fill_normal(&rng, A5, 15);
  for (int i = 0; i < 5; i++)
    b5[i] = A5[3 * i] * x0[0] + A5[3 * i + 1] * x0[1] + A5[3 * i + 2] * x0[2];
  g_assert_cmpint(cf_constraint_set(&c, 5, 3, A5, b5, &err), ==, CF_OK);
  g_assert_cmpint(cf_constraint_analyze(&c, 3, &r, &err), ==, CF_OK);
  g_assert_cmpint(r.rank, ==, 3);
  g_assert_cmpint(r.nullity, ==, 0);
  g_assert_cmpint(r.n_redundant, ==, 2);
  g_assert_cmpint(r.redundant_rows[0], ==, 3);
  g_assert_cmpint(r.redundant_rows[1], ==, 4);
  cf_constraint_report_clear(&r);

  g_free(M);
  g_free(w);
  g_free(A);
  g_free(b);
  cf_constraint_clear(&c);
}

/* rows: r0, r1, r2 = r0 + r1, r3, r4 = 2 r3 - r0 (n = 6) */
static void
make_redundant(CfRng *rng, double *A, double *b, int n)
{
  fill_normal(rng, A, (size_t)2 * n);
  fill_normal(rng, A + 3 * n, n);
  for (int j = 0; j < n; j++) {
    A[2 * n + j] = A[j] + A[n + j];
    A[4 * n + j] = 2.0 * A[3 * n + j] - A[j];
  }
  double x[16];
  fill_normal(rng, x, n);
  for (int i = 0; i < 5; i++) {
    b[i] = 0.0;
    for (int j = 0; j < n; j++)
      b[i] += A[i * n + j] * x[j];
  }
}

static void
test_analyze_redundant(void)
{
  CfRng rng;
  cf_rng_seed(&rng, 2);
  int n = 6;
  double A[30], b[5];
  make_redundant(&rng, A, b, n);
  CfConstraint c, red;
  cf_constraint_init(&c);
  cf_constraint_init(&red);
  CfError err = {0};
  g_assert_cmpint(cf_constraint_set(&c, 5, n, A, b, &err), ==, CF_OK);
  CfConstraintReport r;
  g_assert_cmpint(cf_constraint_analyze(&c, n, &r, &err), ==, CF_OK);
  g_assert_cmpint(r.rank, ==, 3);
  g_assert_cmpint(r.nullity, ==, 3);
  g_assert_cmpint(r.n_redundant, ==, 2);
  g_assert_cmpint(r.redundant_rows[0], ==, 2);
  g_assert_cmpint(r.redundant_rows[1], ==, 4);
  g_assert_true(r.consistent);
  g_assert_cmpfloat(r.residual_rel, <, 1e-12);
  g_assert_true(isfinite(r.cond) && r.cond >= 1.0);

  /* cond is over the kept rows 0, 1, 3 */
  double K[18];
  memcpy(K, A, sizeof(double) * 12);
  memcpy(K + 12, A + 18, sizeof(double) * 6);
  double M[9], w[3];
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, 3, 3, n, 1.0, K, n, K, n, 0.0, M, 3);
  g_assert_cmpint(LAPACKE_dsyev(LAPACK_ROW_MAJOR, 'N', 'U', 3, M, 3, w), ==, 0);
  g_assert_cmpfloat(fabs(r.cond - sqrt(w[2] / w[0])), <, 1e-8 * r.cond);

  /* reduce keeps rows 0, 1, 3 in order */
  g_assert_cmpint(cf_constraint_reduce(&red, &c, &r, &err), ==, CF_OK);
  g_assert_cmpint(red.m, ==, 3);
  g_assert_cmpint(red.n, ==, n);
  g_assert_cmpmem(red.A, sizeof K, K, sizeof K);
  g_assert_cmpfloat(red.b[0], ==, b[0]);
  g_assert_cmpfloat(red.b[1], ==, b[1]);
  g_assert_cmpfloat(red.b[2], ==, b[3]);
  CfConstraintReport r2;
  g_assert_cmpint(cf_constraint_analyze(&red, n, &r2, &err), ==, CF_OK);
  g_assert_cmpint(r2.n_redundant, ==, 0);
  g_assert_cmpint(r2.rank, ==, 3);
  cf_constraint_report_clear(&r2);

  /* reduce in place, and a report for another shape is refused */
  g_assert_cmpint(cf_constraint_reduce(&c, &c, &r, &err), ==, CF_OK);
  g_assert_cmpint(c.m, ==, 3);
  g_assert_cmpint(cf_constraint_reduce(&red, &c, &r, &err), ==, CF_ERR_SHAPE);

  /* duplicate row */
  double D[] = {1, 2, 3, 1, 2, 3}, db[] = {1, 1};
  g_assert_cmpint(cf_constraint_set(&c, 2, 3, D, db, &err), ==, CF_OK);
  cf_constraint_report_clear(&r);
  g_assert_cmpint(cf_constraint_analyze(&c, 3, &r, &err), ==, CF_OK);
  g_assert_cmpint(r.n_redundant, ==, 1);
  g_assert_cmpint(r.redundant_rows[0], ==, 1);
  g_assert_cmpfloat(fabs(r.cond - 1.0), <, 1e-12);

  cf_constraint_report_clear(&r);
  cf_constraint_clear(&c);
  cf_constraint_clear(&red);
}

static void
test_analyze_inconsistent(void)
{
  CfRng rng;
  cf_rng_seed(&rng, 3);
  int n = 6;
  double A[30], b[5];
  make_redundant(&rng, A, b, n);
  b[2] += 0.5; /* r2 = r0 + r1 but b2 != b0 + b1 */
  CfConstraint c;
  cf_constraint_init(&c);
  CfError err = {0};
  g_assert_cmpint(cf_constraint_set(&c, 5, n, A, b, &err), ==, CF_OK);
  CfConstraintReport r;
  g_assert_cmpint(cf_constraint_analyze(&c, n, &r, &err), ==, CF_ERR_INCONSISTENT);
  g_assert_false(r.consistent);
  /* range(A) = {(u, v, u + v, w, 2w - u)}; its complement is spanned by
   * c1 = (1, 1, -1, 0, 0) and c2 = (1, 0, 0, -2, 1) with Gram matrix
   * [[3, 1], [1, 6]]. The residual is the projection of 0.5 e_2 onto it:
   * |r|^2 = g^T G^-1 g with g = (-0.5, 0), i.e. 0.25 * 6 / 17. */
  double want = 0.5 * sqrt(6.0 / 17.0);
  g_assert_cmpfloat(fabs(r.residual - want), <, 1e-12);
  g_assert_cmpfloat(fabs(r.residual_rel - want / (1.0 + norm2(b, 5))), <, 1e-12);
  char num[64];
  snprintf(num, sizeof num, "least-squares residual %.6g", want);
  g_test_message("%s", err.msg);
  g_assert_nonnull(strstr(err.msg, "inconsistent system: "));
  g_assert_nonnull(strstr(err.msg, num));
  g_assert_nonnull(strstr(err.msg, "row 2 is a combination of earlier rows"));
  g_assert_cmpint(r.n_redundant, ==, 2);
  cf_constraint_report_clear(&r);

  /* a zero row with a non-zero right-hand side (only possible through set) */
  double Z[] = {1, 0, 0, 1, 0, 0, 0, 0}, zb[] = {1, 2, 0.5, 0};
  g_assert_cmpint(cf_constraint_set(&c, 4, 2, Z, zb, &err), ==, CF_OK);
  g_assert_cmpint(cf_constraint_analyze(&c, 2, &r, &err), ==, CF_ERR_INCONSISTENT);
  g_assert_nonnull(strstr(err.msg, "row 2 is all zeros but its right-hand side is 0.5"));
  g_assert_cmpfloat(fabs(r.residual - 0.5), <, 1e-14);
  cf_constraint_report_clear(&r);

  /* tiny inconsistency below the threshold is accepted */
  make_redundant(&rng, A, b, n);
  b[2] += 1e-9;
  g_assert_cmpint(cf_constraint_set(&c, 5, n, A, b, &err), ==, CF_OK);
  g_assert_cmpint(cf_constraint_analyze(&c, n, &r, &err), ==, CF_OK);
  g_assert_true(r.consistent);
  g_assert_cmpfloat(r.residual, >, 0.0);
  cf_constraint_report_clear(&r);

  /* rank 0 */
  double zeros[6] = {0}, zr[2] = {0, 0};
  g_assert_cmpint(cf_constraint_set(&c, 2, 3, zeros, zr, &err), ==, CF_OK);
  g_assert_cmpint(cf_constraint_analyze(&c, 3, &r, &err), ==, CF_ERR_RANK);
  g_assert_nonnull(strstr(err.msg, "rank 0"));
  g_assert_cmpint(r.rank, ==, 0);
  cf_constraint_report_clear(&r);

  /* numerically ambiguous rank: a row at distance 1e-13 from the others */
  double E[] = {1, 0, 0, 0, 1, 0, 1, 1, 1e-13}, eb[] = {1, 1, 2};
  g_assert_cmpint(cf_constraint_set(&c, 3, 3, E, eb, &err), ==, CF_OK);
  CfStatus st = cf_constraint_analyze(&c, 3, &r, &err);
  g_test_message("near-dependent row: status %s, rank %d, redundant %d, cond %.3g", cf_status_to_string(st), r.rank,
                 r.n_redundant, r.cond);
  /* still independent in double (tolerance ~ 7e-16), but flagged by cond */
  g_assert_cmpint(st, ==, CF_OK);
  g_assert_cmpint(r.rank, ==, 3);
  g_assert_cmpfloat(r.cond, >, 1e12);
  cf_constraint_report_clear(&r);
  /* below the tolerance the row counts as redundant */
  E[8] = 1e-17;
  g_assert_cmpint(cf_constraint_set(&c, 3, 3, E, eb, &err), ==, CF_OK);
  g_assert_cmpint(cf_constraint_analyze(&c, 3, &r, &err), ==, CF_OK);
  g_assert_cmpint(r.rank, ==, 2);
  g_assert_cmpint(r.n_redundant, ==, 1);
  g_assert_cmpint(r.redundant_rows[0], ==, 2);
  g_assert_cmpfloat(fabs(r.cond - 1.0), <, 1e-12);
  cf_constraint_report_clear(&r);
  cf_constraint_clear(&c);
}

/* ------------------------------------------------------------------------ */
/* raw <-> model space                                                      */

static void
test_model_space(void)
{
  CfRng rng;
  cf_rng_seed(&rng, 4);
  int m = 4, n = 9;
  double A[36], b[4];
  fill_normal(&rng, A, 36);
  fill_normal(&rng, b, 4);
  float mu[9], s[9];
  for (int j = 0; j < n; j++) {
    mu[j] = (float)(3.0 * cf_rng_normal(&rng));
    s[j] = (float)(0.1 + 5.0 * cf_rng_uniform(&rng));
    if (j == 2)
      s[j] = -s[j];
  }
  CfConstraint raw, model, back;
  cf_constraint_init(&raw);
  cf_constraint_init(&model);
  cf_constraint_init(&back);
  CfError err = {0};
  g_assert_cmpint(cf_constraint_set(&raw, m, n, A, b, &err), ==, CF_OK);
  g_assert_cmpint(cf_constraint_to_model_space(&model, &raw, mu, s, &err), ==, CF_OK);
  g_assert_cmpint(cf_constraint_to_raw_space(&back, &model, mu, s, &err), ==, CF_OK);
  for (int t = 0; t < m * n; t++) {
    g_assert_cmpfloat(fabs(model.A[t] - A[t] * (double)s[t % n]), <=, 1e-15 * fabs(model.A[t]));
    g_assert_cmpfloat(fabs(back.A[t] - A[t]), <, 1e-14 * (1.0 + fabs(A[t])));
  }
  for (int i = 0; i < m; i++)
    g_assert_cmpfloat(fabs(back.b[i] - b[i]), <, 1e-12 * (1.0 + fabs(b[i])));

  /* A x - b == A' u - b' for x = s .* u + mu, for any u (affine identity) */
  for (int trial = 0; trial < 20; trial++) {
    double u[9], x[9];
    for (int j = 0; j < n; j++) {
      u[j] = cf_rng_normal(&rng);
      x[j] = (double)s[j] * u[j] + (double)mu[j];
    }
    for (int i = 0; i < m; i++) {
      double rr = -b[i], rm = -model.b[i], scale = fabs(b[i]);
      for (int j = 0; j < n; j++) {
        rr += A[i * n + j] * x[j];
        rm += model.A[i * n + j] * u[j];
        scale += fabs(A[i * n + j] * x[j]) + fabs(A[i * n + j] * (double)mu[j]);
      }
      g_assert_cmpfloat(fabs(rr - rm), <, 1e-13 * scale);
    }
  }
  /* and a feasible x maps to a feasible u */
  CfProjector p;
  cf_projector_init(&p);
  g_assert_cmpint(cf_projector_setup(&p, &raw, &err), ==, CF_OK);
  float xf[9], uf[9];
  double viol;
  for (int j = 0; j < n; j++)
    xf[j] = (float)cf_rng_normal(&rng) * 2.0f;
  cf_project(&p, xf, 1);
  for (int j = 0; j < n; j++)
    uf[j] = (xf[j] - mu[j]) / s[j];
  cf_constraint_violation(&model, uf, 1, &viol, NULL);
  g_assert_cmpfloat(viol, <, 1e-4);
  cf_projector_clear(&p);

  /* in place */
  g_assert_cmpint(cf_constraint_to_model_space(&raw, &raw, mu, s, &err), ==, CF_OK);
  g_assert_cmpmem(raw.A, sizeof A, model.A, sizeof A);

  s[4] = 0.0f;
  g_assert_cmpint(cf_constraint_to_model_space(&model, &back, mu, s, &err), ==, CF_ERR_INVALID);
  g_assert_nonnull(strstr(err.msg, "coordinate 4"));

  cf_constraint_clear(&raw);
  cf_constraint_clear(&model);
  cf_constraint_clear(&back);
}

/* ------------------------------------------------------------------------ */
/* projection                                                               */

/* Reference projection in double through the normal equations:
 * p = x - A^T (A A^T)^{-1} (A x - b). X is (B x n) float, P (B x n) double. */
static void
project_normal_equations(const double *A, const double *b, int m, int n, const float *X, int B, double *P)
{
  double *M = g_new(double, (size_t)m * m);
  double *L = g_new(double, (size_t)B * m);
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, m, n, 1.0, A, n, A, n, 0.0, M, m);
  for (size_t t = 0; t < (size_t)B * n; t++)
    P[t] = (double)X[t];
  for (int s = 0; s < B; s++)
    for (int i = 0; i < m; i++)
      L[(size_t)s * m + i] = -b[i];
  /* L = X A^T - 1 b^T  (B x m) */
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, m, n, 1.0, P, n, A, n, 1.0, L, m);
  /* solve M Lambda^T = L^T: columns are samples; use row-major with nrhs = B */
  double *LT = g_new(double, (size_t)m * B);
  for (int s = 0; s < B; s++)
    for (int i = 0; i < m; i++)
      LT[(size_t)i * B + s] = L[(size_t)s * m + i];
  g_assert_cmpint(LAPACKE_dposv(LAPACK_ROW_MAJOR, 'U', m, B, M, m, LT, B), ==, 0);
  /* P -= Lambda A */
  cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, B, n, m, -1.0, LT, B, A, n, 1.0, P, n);
  g_free(M);
  g_free(L);
  g_free(LT);
}

static void
test_projection(void)
{
  CfRng rng;
  cf_rng_seed(&rng, 5);
  const int m = 196, n = 784, B = 600;
  double *A = g_new(double, (size_t)m * n), *b = g_new(double, m);
  fill_normal(&rng, A, (size_t)m * n);
  for (int i = 0; i < m; i++) { /* unit rows: well conditioned */
    double s = norm2(A + (size_t)i * n, n);
    for (int j = 0; j < n; j++)
      A[(size_t)i * n + j] /= s;
  }
  fill_normal(&rng, b, m);
  CfConstraint c;
  cf_constraint_init(&c);
  CfError err = {0};
  g_assert_cmpint(cf_constraint_set(&c, m, n, A, b, &err), ==, CF_OK);
  CfConstraintReport r;
  g_assert_cmpint(cf_constraint_analyze(&c, n, &r, &err), ==, CF_OK);
  g_test_message("projection test: A %dx%d, cond %.3f", m, n, r.cond);
  cf_constraint_report_clear(&r);
  double smax = sigma_max(A, m, n);

  CfProjector p;
  cf_projector_init(&p);
  g_assert_cmpint(cf_projector_setup(&p, &c, &err), ==, CF_OK);
  g_assert_cmpint(p.m, ==, m);
  g_assert_cmpint(p.n, ==, n);

  /* x* is feasible and minimum-norm (in range(A^T)): compare to A^T (AA^T)^-1 b */
  {
    float zero[784] = {0};
    double ref[784];
    project_normal_equations(A, b, m, n, zero, 1, ref);
    double dmax = 0.0;
    for (int j = 0; j < n; j++)
      dmax = fmax(dmax, fabs((double)p.xstar[j] - ref[j]));
    g_assert_cmpfloat(dmax, <, 1e-6 * (1.0 + norm2(ref, n)));
  }

  float *X = g_new(float, (size_t)B * n);
  float *X0 = g_new(float, (size_t)B * n);
  for (size_t t = 0; t < (size_t)B * n; t++)
    X0[t] = (float)(3.0 * cf_rng_normal(&rng) + 1.0);
  memcpy(X, X0, sizeof(float) * (size_t)B * n);
  g_assert_cmpint(cf_projector_reserve(&p, B), ==, CF_OK);
  cf_project(&p, X, B);

  /* residual at float round-off */
  double *l2 = g_new(double, B);
  cf_constraint_violation(&c, X, B, l2, NULL);
  double worst = 0.0, mean = 0.0;
  for (int s = 0; s < B; s++) {
    double xn = 0.0;
    for (int j = 0; j < n; j++)
      xn += (double)X[(size_t)s * n + j] * X[(size_t)s * n + j];
    double rel = l2[s] / (smax * sqrt(xn) + norm2(b, m));
    worst = fmax(worst, rel);
    mean += rel / B;
  }
  g_test_message("projected residual |Ax-b| / (|A| |x| + |b|): max %.3e, mean %.3e (float eps %.3e)", worst, mean,
                 (double)FLT_EPSILON);
  g_assert_cmpfloat(worst, <, 1e-5);

  /* closest feasible point: against the normal equations in double */
  double *P = g_new(double, (size_t)B * n);
  project_normal_equations(A, b, m, n, X0, B, P);
  double dworst = 0.0;
  for (int s = 0; s < B; s++) {
    double dd = 0.0, xn = 0.0;
    for (int j = 0; j < n; j++) {
      double df = (double)X[(size_t)s * n + j] - P[(size_t)s * n + j];
      dd += df * df;
      xn += (double)X0[(size_t)s * n + j] * X0[(size_t)s * n + j];
    }
    dworst = fmax(dworst, sqrt(dd / xn));
  }
  g_test_message("projection vs double normal equations: max |p - p_ref| / |x| = %.3e", dworst);
  g_assert_cmpfloat(dworst, <, 1e-5);

  /* Pythagoras against random feasible points z: |x - z|^2 = |x - p|^2 + |p - z|^2 */
  float *Z = g_new(float, (size_t)n);
  for (int trial = 0; trial < 5; trial++) {
    for (int j = 0; j < n; j++)
      Z[j] = (float)(2.0 * cf_rng_normal(&rng));
    cf_project(&p, Z, 1);
    const float *x0 = X0 + (size_t)trial * n, *px = X + (size_t)trial * n;
    double a2 = 0, b2 = 0, c2 = 0;
    for (int j = 0; j < n; j++) {
      a2 += ((double)x0[j] - Z[j]) * ((double)x0[j] - Z[j]);
      b2 += ((double)x0[j] - px[j]) * ((double)x0[j] - px[j]);
      c2 += ((double)px[j] - Z[j]) * ((double)px[j] - Z[j]);
    }
    g_assert_cmpfloat(fabs(a2 - b2 - c2), <, 1e-5 * a2);
    g_assert_cmpfloat(b2, <=, a2);
  }
  g_free(Z);

  /* idempotence */
  float *Y = g_new(float, (size_t)B * n);
  memcpy(Y, X, sizeof(float) * (size_t)B * n);
  cf_project(&p, Y, B);
  double iworst = 0.0;
  for (int s = 0; s < B; s++) {
    double dd = 0.0, xn = 0.0;
    for (int j = 0; j < n; j++) {
      double df = (double)Y[(size_t)s * n + j] - X[(size_t)s * n + j];
      dd += df * df;
      xn += (double)X[(size_t)s * n + j] * X[(size_t)s * n + j];
    }
    iworst = fmax(iworst, sqrt(dd / xn));
  }
  g_test_message("idempotence: max |P(P(x)) - P(x)| / |x| = %.3e", iworst);
  g_assert_cmpfloat(iworst, <, 1e-5);

  /* blocking: project without reserve, in pieces of odd sizes, same result */
  CfProjector p2;
  cf_projector_init(&p2);
  g_assert_cmpint(cf_projector_setup(&p2, &c, &err), ==, CF_OK);
  memcpy(Y, X0, sizeof(float) * (size_t)B * n);
  cf_project(&p2, Y, 1);
  cf_project(&p2, Y + n, 7);
  cf_project(&p2, Y + 8 * n, B - 8);
  cf_project(&p2, Y, 0);
  double bworst = 0.0;
  for (size_t t = 0; t < (size_t)B * n; t++)
    bworst = fmax(bworst, fabs((double)Y[t] - X[t]));
  g_assert_cmpfloat(bworst, <, 1e-4);
  cf_projector_clear(&p2);

  cf_projector_clear(&p);
  cf_projector_clear(&p); /* clearing twice is fine */
  g_free(A);
  g_free(b);
  g_free(X);
  g_free(X0);
  g_free(Y);
  g_free(P);
  g_free(l2);
  cf_constraint_clear(&c);
}

static void
test_projection_small(void)
{
  CfError err = {0};
  CfConstraint c;
  cf_constraint_init(&c);
  CfProjector p;
  cf_projector_init(&p);

  /* simplex: x1 + x2 + x3 = 1 -> p = x - (sum - 1)/3 */
  double A[] = {1, 1, 1}, b[] = {1};
  g_assert_cmpint(cf_constraint_set(&c, 1, 3, A, b, &err), ==, CF_OK);
  g_assert_cmpint(cf_projector_setup(&p, &c, &err), ==, CF_OK);
  float x[6] = {1, 2, 3, -1, 0, 0.5f};
  cf_project(&p, x, 2);
  const float want[6] = {1 - 5.0f / 3, 2 - 5.0f / 3, 3 - 5.0f / 3, -1 + 1.5f / 3, 1.5f / 3, 0.5f + 1.5f / 3};
  for (int t = 0; t < 6; t++)
    g_assert_cmpfloat(fabs(x[t] - want[t]), <, 1e-6);
  for (int j = 0; j < 3; j++)
    g_assert_cmpfloat(fabs(p.xstar[j] - 1.0f / 3), <, 1e-7);

  /* many rows through the blocked path (B above the block size) */
  CfRng rng;
  cf_rng_seed(&rng, 6);
  int B = 10000;
  float *X = g_new(float, 3 * B);
  cf_rng_fill_normal(&rng, X, 3 * (size_t)B);
  cf_project(&p, X, B);
  double *l2 = g_new(double, B), *li = g_new(double, B);
  cf_constraint_violation(&c, X, B, l2, li);
  for (int s = 0; s < B; s++) {
    g_assert_cmpfloat(l2[s], <, 1e-6 * (1 + fabs(X[3 * s]) + fabs(X[3 * s + 1]) + fabs(X[3 * s + 2])));
    g_assert_cmpfloat(li[s], ==, l2[s]); /* one row: same */
  }
  g_free(X);
  g_free(l2);
  g_free(li);

  /* square full rank: everything maps to the solution */
  double S[] = {2, 1, 1, 3}, sb[] = {3, 5};
  g_assert_cmpint(cf_constraint_set(&c, 2, 2, S, sb, &err), ==, CF_OK);
  g_assert_cmpint(cf_projector_setup(&p, &c, &err), ==, CF_OK);
  float y[4] = {10, -3, 0, 0};
  cf_project(&p, y, 2);
  for (int s = 0; s < 2; s++) {
    g_assert_cmpfloat(fabs(y[2 * s] - 0.8f), <, 1e-5);
    g_assert_cmpfloat(fabs(y[2 * s + 1] - 1.4f), <, 1e-5);
  }

  /* redundant rows and too many rows are refused */
  double R[] = {1, 2, 3, 2, 4, 6}, rb[] = {1, 2};
  g_assert_cmpint(cf_constraint_set(&c, 2, 3, R, rb, &err), ==, CF_OK);
  g_assert_cmpint(cf_projector_setup(&p, &c, &err), ==, CF_ERR_RANK);
  g_assert_nonnull(strstr(err.msg, "row 1 lies in the span"));
  double T[] = {1, 0, 0, 1, 1, 1}, tb[] = {1, 1, 2};
  g_assert_cmpint(cf_constraint_set(&c, 3, 2, T, tb, &err), ==, CF_OK);
  g_assert_cmpint(cf_projector_setup(&p, &c, &err), ==, CF_ERR_RANK);
  /* the previous factorisation survives a failed setup */
  g_assert_cmpint(p.m, ==, 2);

  cf_projector_clear(&p);
  cf_constraint_clear(&c);
}

/* ------------------------------------------------------------------------ */
/* violations                                                               */

static void
test_violation(void)
{
  CfRng rng;
  cf_rng_seed(&rng, 8);
  int m = 7, n = 13, B = 700; /* B above the internal block size */
  double A[91], b[7];
  fill_normal(&rng, A, 91);
  fill_normal(&rng, b, 7);
  CfConstraint c;
  cf_constraint_init(&c);
  CfError err = {0};
  g_assert_cmpint(cf_constraint_set(&c, m, n, A, b, &err), ==, CF_OK);
  float *X = g_new(float, (size_t)B * n);
  cf_rng_fill_normal(&rng, X, (size_t)B * n);
  X[5 * n + 3] = NAN;
  double *l2 = g_new(double, B), *li = g_new(double, B), *l2b = g_new(double, B);
  cf_constraint_violation(&c, X, B, l2, li);
  cf_constraint_violation(&c, X, B, l2b, NULL);
  cf_constraint_violation(&c, X, B, NULL, NULL);
  for (int s = 0; s < B; s++) {
    double ss = 0.0, mx = 0.0;
    for (int i = 0; i < m; i++) {
      long double acc = -b[i];
      for (int j = 0; j < n; j++)
        acc += (long double)A[i * n + j] * X[(size_t)s * n + j];
      ss += (double)(acc * acc);
      mx = fmax(mx, fabs((double)acc));
    }
    if (s == 5) {
      g_assert_true(isnan(l2[s]));
      g_assert_true(isnan(li[s]));
      continue;
    }
    g_assert_cmpfloat(fabs(l2[s] - sqrt(ss)), <, 1e-13 * (1 + sqrt(ss)));
    g_assert_cmpfloat(fabs(li[s] - mx), <, 1e-13 * (1 + mx));
    g_assert_cmpfloat(l2b[s], ==, l2[s]);
  }
  g_free(X);
  g_free(l2);
  g_free(l2b);
  g_free(li);
  cf_constraint_clear(&c);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/constraint/parse/text", test_parse_text);
  g_test_add_func("/constraint/parse/csv", test_parse_csv);
  g_test_add_func("/constraint/parse/roundtrip", test_roundtrip_text);
  g_test_add_func("/constraint/parse/errors", test_parse_errors);
  g_test_add_func("/constraint/parse/limits", test_parse_limits);
  g_test_add_func("/constraint/parse/garbage", test_parse_garbage);
  g_test_add_func("/constraint/load", test_load);
  g_test_add_func("/constraint/analyze/full-rank", test_analyze_full_rank);
  g_test_add_func("/constraint/analyze/redundant", test_analyze_redundant);
  g_test_add_func("/constraint/analyze/inconsistent", test_analyze_inconsistent);
  g_test_add_func("/constraint/model-space", test_model_space);
  g_test_add_func("/constraint/project/large", test_projection);
  g_test_add_func("/constraint/project/small", test_projection_small);
  g_test_add_func("/constraint/violation", test_violation);
  return g_test_run();
}
