/* Fuzz body: constraint files (core/constraint_parse.c), text format and
 * CSV. On acceptance: sizes within the limits, every value finite, no
 * all-zero row; the file reader (cf_constraint_load) agrees with the buffer
 * parser byte for byte, message included; cf_constraint_to_text parses back
 * to the same bits; and the validation of check-constraint
 * (cf_constraint_analyze, cf_constraint_reduce) keeps its promises. On
 * refusal: a parse/numeric/rank/size status whose message names the origin,
 * and the output constraint untouched. */
#include "fuzz.h"

#include <math.h>
#include <string.h>

#include "constraint.h"

static void
check_valid(const CfConstraint *c)
{
  FUZZ_CHECK(c->m >= 1 && c->m <= CF_CONSTRAINT_MAX_ROWS, "m = %d", c->m);
  FUZZ_CHECK(c->n >= 1 && c->n <= CF_CONSTRAINT_MAX_COLS, "n = %d", c->n);
  FUZZ_CHECK(c->A && c->b, "A or b missing");
  for (int i = 0; i < c->m; i++) {
    int nonzero = 0;
    for (int j = 0; j < c->n; j++) {
      double v = c->A[(size_t)i * (size_t)c->n + (size_t)j];
      FUZZ_CHECK(isfinite(v), "A[%d][%d] = %g", i, j, v);
      nonzero += v != 0.0;
    }
    FUZZ_CHECK(nonzero > 0, "row %d is all zeros", i);
    FUZZ_CHECK(isfinite(c->b[i]), "b[%d] = %g", i, c->b[i]);
  }
}

static void
check_same(const CfConstraint *x, const CfConstraint *y, const char *what)
{
  FUZZ_CHECK(x->m == y->m && x->n == y->n, "%s: %d x %d vs %d x %d", what, x->m, x->n, y->m, y->n);
  size_t mn = (size_t)x->m * (size_t)x->n;
  FUZZ_CHECK(memcmp(x->A, y->A, mn * sizeof *x->A) == 0, "%s: A differs", what);
  FUZZ_CHECK(memcmp(x->b, y->b, (size_t)x->m * sizeof *x->b) == 0, "%s: b differs", what);
}

static void
check_analysis(const CfConstraint *c)
{
  CfConstraintReport r;
  CfError err;
  cf_error_clear(&err);
  CfStatus st = cf_constraint_analyze(c, c->n, &r, &err);
  FUZZ_CHECK(st == CF_OK || st == CF_ERR_RANK || st == CF_ERR_INCONSISTENT || st == CF_ERR_NUMERIC,
             "analyze: status %d: %s", (int)st, err.msg);
  FUZZ_CHECK(r.m == c->m && r.n == c->n, "report is %d x %d", r.m, r.n);
  if (st == CF_OK) {
    int k = c->m < c->n ? c->m : c->n;
    FUZZ_CHECK(r.rank >= 1 && r.rank <= k, "rank %d", r.rank);
    FUZZ_CHECK(r.nullity == c->n - r.rank, "nullity %d, rank %d", r.nullity, r.rank);
    FUZZ_CHECK(r.n_redundant == c->m - r.rank, "%d redundant rows, rank %d of %d rows", r.n_redundant, r.rank, c->m);
    for (int t = 0; t < r.n_redundant; t++)
      FUZZ_CHECK(r.redundant_rows[t] >= 0 && r.redundant_rows[t] < c->m &&
                     (t == 0 || r.redundant_rows[t] > r.redundant_rows[t - 1]),
                 "redundant row %d = %d", t, r.redundant_rows[t]);
    FUZZ_CHECK(r.consistent && isfinite(r.residual) && r.residual_rel <= 1e-6, "residual %g", r.residual_rel);
    FUZZ_CHECK(isfinite(r.cond) && r.cond >= 1.0 - 1e-12, "cond %g", r.cond);
    CfConstraint red;
    cf_constraint_init(&red);
    st = cf_constraint_reduce(&red, c, &r, &err);
    FUZZ_CHECK(st == CF_OK, "reduce: %s", err.msg);
    FUZZ_CHECK(red.m == r.rank && red.n == c->n, "reduced to %d x %d, rank %d", red.m, red.n, r.rank);
    check_valid(&red);
    cf_constraint_clear(&red);
  }
  cf_constraint_report_clear(&r);
}

void
cf_fuzz_one(const uint8_t *data, size_t size)
{
  const char *path = cf_fuzz_tmp_path("constraint.txt");
  /* a sentinel: a refused input must leave it as it is */
  const double one = 1.0, two = 2.0;
  CfConstraint c;
  cf_constraint_init(&c);
  CfError err;
  cf_error_clear(&err);
  FUZZ_CHECK(cf_constraint_set(&c, 1, 1, &one, &two, &err) == CF_OK, "%s", err.msg);
  CfStatus st = cf_constraint_parse(&c, (const char *)data, size, path, &err);

  cf_fuzz_write_file(path, data, size);
  CfConstraint f;
  cf_constraint_init(&f);
  CfError ferr;
  cf_error_clear(&ferr);
  CfStatus fst = cf_constraint_load(&f, path, &ferr);
  FUZZ_CHECK(fst == st, "file reader says %d (%s), buffer parser %d (%s)", (int)fst, ferr.msg, (int)st,
             st == CF_OK ? "ok" : err.msg);

  if (st != CF_OK) {
    FUZZ_CHECK(st == CF_ERR_PARSE || st == CF_ERR_NUMERIC || st == CF_ERR_RANK || st == CF_ERR_NOMEM,
               "status %d: %s", (int)st, err.msg);
    FUZZ_CHECK(err.code == st, "err.code %d, status %d", (int)err.code, (int)st);
    FUZZ_CHECK(strncmp(err.msg, path, strlen(path)) == 0 && err.msg[strlen(path)] == ':',
               "message does not name the origin: %s", err.msg);
    FUZZ_CHECK(strcmp(err.msg, ferr.msg) == 0, "messages differ: '%s' vs '%s'", err.msg, ferr.msg);
    FUZZ_CHECK(c.m == 1 && c.n == 1 && c.A[0] == 1.0 && c.b[0] == 2.0, "refused input changed the output");
    FUZZ_CHECK(f.m == 0 && f.A == NULL, "refused file changed the output");
    cf_constraint_clear(&c);
    return;
  }
  check_valid(&c);
  check_same(&c, &f, "file vs buffer");
  cf_constraint_clear(&f);

  /* the text format reproduces every bit */
  char *text = cf_constraint_to_text(&c);
  FUZZ_CHECK(text != NULL, "to_text failed");
  CfConstraint back;
  cf_constraint_init(&back);
  st = cf_constraint_parse(&back, text, strlen(text), "<round trip>", &err);
  FUZZ_CHECK(st == CF_OK, "round trip refused: %s\n%s", err.msg, text);
  check_same(&c, &back, "round trip");
  free(text);
  cf_constraint_clear(&back);

  if ((size_t)c.m * (size_t)c.n <= 4096)
    check_analysis(&c);
  cf_constraint_clear(&c);
}
