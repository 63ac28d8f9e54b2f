#define G_LOG_DOMAIN "conform"

#include "conform-constraint-check.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "conform-config.h"
#include "conform-io.h"

/* Largest constraint file the editor reads (the grid itself is far smaller). */
#define LOAD_MAX_BYTES ((gsize)64 << 20)
/* Explaining redundant rows costs O(m * rank * n): skip the explanation
 * (not the detection, which core does) above this. */
#define EXPLAIN_MAX_WORK 5e7
/* Cells quoted back in a message are cut to this many characters. */
#define QUOTE_MAX_CHARS 24

/* ------------------------------------------------------------------------ */
/* Issues                                                                   */

static void
issue_clear_cb(gpointer p)
{
  ConformCellIssue *issue = p;
  g_clear_pointer(&issue->message, g_free);
}

static void add_issue(ConformConstraintCheck *c, int row, int col, gboolean warning, const char *fmt, ...)
    G_GNUC_PRINTF(5, 6);

static void
add_issue(ConformConstraintCheck *c, int row, int col, gboolean warning, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  ConformCellIssue issue = {row, col, g_strdup_vprintf(fmt, ap), warning};
  va_end(ap);
  g_array_append_val(c->issues, issue);
}

void
conform_constraint_check_init(ConformConstraintCheck *c)
{
  g_return_if_fail(c != NULL);
  memset(c, 0, sizeof *c);
  c->issues = g_array_new(FALSE, TRUE, sizeof(ConformCellIssue));
  g_array_set_clear_func(c->issues, issue_clear_cb);
  cf_constraint_init(&c->constraint);
}

void
conform_constraint_check_clear(ConformConstraintCheck *c)
{
  g_return_if_fail(c != NULL);
  g_clear_pointer(&c->issues, g_array_unref);
  cf_constraint_clear(&c->constraint);
  cf_constraint_report_clear(&c->report);
  g_clear_pointer(&c->summary, g_free);
  memset(c, 0, sizeof *c);
}

static void
check_reset(ConformConstraintCheck *c)
{
  conform_constraint_check_clear(c);
  conform_constraint_check_init(c);
}

const char *
conform_constraint_check_cell_error(const ConformConstraintCheck *c, int row, int col)
{
  g_return_val_if_fail(c != NULL, NULL);
  if (!c->issues)
    return NULL;
  for (guint i = 0; i < c->issues->len; i++) {
    const ConformCellIssue *is = &g_array_index(c->issues, ConformCellIssue, i);
    if (!is->warning && is->row == row && (is->col == col || is->col < 0))
      return is->message;
  }
  return NULL;
}

const char *
conform_constraint_check_row_note(const ConformConstraintCheck *c, int row)
{
  g_return_val_if_fail(c != NULL, NULL);
  if (!c->issues)
    return NULL;
  for (guint i = 0; i < c->issues->len; i++) {
    const ConformCellIssue *is = &g_array_index(c->issues, ConformCellIssue, i);
    if (is->warning && is->row == row)
      return is->message;
  }
  return NULL;
}

/* ------------------------------------------------------------------------ */
/* Numbers                                                                  */

const char *
conform_constraint_format_value(double v, char *buf)
{
  /* Literal formats keep -Wformat-nonliteral quiet and are what g_ascii_formatd wants. */
  static const char *const formats[] = {
    "%.1g", "%.2g", "%.3g", "%.4g", "%.5g", "%.6g", "%.7g", "%.8g", "%.9g",
    "%.10g", "%.11g", "%.12g", "%.13g", "%.14g", "%.15g", "%.16g", "%.17g",
  };
  for (guint i = 0; i < G_N_ELEMENTS(formats); i++) {
    g_ascii_formatd(buf, G_ASCII_DTOSTR_BUF_SIZE, formats[i], v);
    if (!isfinite(v) || g_ascii_strtod(buf, NULL) == v)
      break;
  }
  return buf;
}

/* Short, printable quote of a cell for messages. */
static char *
quote_cell(const char *text)
{
  if (!g_utf8_validate(text, -1, NULL))
    return g_strdup("(invalid text)");
  if (g_utf8_strlen(text, -1) <= QUOTE_MAX_CHARS)
    return g_strdup(text);
  g_autofree char *head = g_utf8_substring(text, 0, QUOTE_MAX_CHARS - 1);
  return g_strconcat(head, "…", NULL);
}

/* Strictly parses one cell; on failure returns a message (free it). */
static char *
parse_cell(const char *cell, double *value)
{
  g_autofree char *t = g_strstrip(g_strdup(cell ? cell : ""));
  if (t[0] == '\0')
    return g_strdup("empty cell: enter a number");
  char *end = NULL;
  errno = 0;
  double v = g_ascii_strtod(t, &end);
  int errsv = errno;
  if (end == t || *end != '\0') {
    g_autofree char *q = quote_cell(t);
    /* "0,5": a decimal comma from a locale that uses one. */
    const char *comma = strchr(t, ',');
    if (comma && comma > t && g_ascii_isdigit(comma[-1]) && g_ascii_isdigit(comma[1]))
      return g_strdup_printf("'%s' is not a number (use '.' for decimals)", q);
    return g_strdup_printf("'%s' is not a number", q);
  }
  if (isnan(v))
    return g_strdup("NaN is not allowed");
  if (isinf(v)) {
    if (errsv == ERANGE) {
      g_autofree char *q = quote_cell(t);
      return g_strdup_printf("'%s' is too large for a double", q);
    }
    return g_strdup("infinity is not allowed");
  }
  *value = v; /* underflow to a subnormal or zero is fine */
  return NULL;
}

/* ------------------------------------------------------------------------ */
/* Explaining redundant rows                                                */

/* "row 3 = row 1 + row 2", "row 4 = 2×row 1 − 0.5×row 3"; NULL when the
 * coefficients are not short decimals or there are too many terms. */
static char *
format_combination(int row, const int *rows, const double *coef, int k)
{
  double cmax = 0.0;
  for (int j = 0; j < k; j++)
    cmax = fmax(cmax, fabs(coef[j]));
  if (cmax == 0.0)
    return NULL;
  GString *s = g_string_new(NULL);
  g_string_append_printf(s, "row %d =", row + 1);
  int terms = 0;
  for (int j = 0; j < k; j++) {
    double c = coef[j];
    if (fabs(c) <= 1e-9 * cmax)
      continue;
    double r = round(c * 1000.0) / 1000.0;
    if (++terms > 4 || fabs(c - r) > 1e-8 * fmax(1.0, fabs(c)) || r == 0.0) {
      g_string_free(s, TRUE);
      return NULL;
    }
    const char *sign = r < 0 ? "−" : "+";
    if (terms == 1)
      g_string_append(s, r < 0 ? " −" : "");
    else
      g_string_append_printf(s, " %s", sign);
    if (fabs(r) == 1.0) {
      g_string_append_printf(s, " row %d", rows[j] + 1);
    } else {
      char buf[G_ASCII_DTOSTR_BUF_SIZE];
      g_string_append_printf(s, " %s×row %d", g_ascii_formatd(buf, sizeof buf, "%g", fabs(r)), rows[j] + 1);
    }
  }
  return g_string_free(s, FALSE);
}

/* "rows 1, 2 and 4" / "row 2" (1-based) for the rows with a non-zero coefficient. */
static char *
format_row_list(const int *rows, const double *coef, int k)
{
  double cmax = 0.0;
  for (int j = 0; j < k; j++)
    cmax = fmax(cmax, fabs(coef[j]));
  int used[8];
  int n_used = 0, total = 0;
  for (int j = 0; j < k; j++) {
    if (fabs(coef[j]) <= 1e-9 * cmax)
      continue;
    if (n_used < (int)G_N_ELEMENTS(used))
      used[n_used++] = rows[j];
    total++;
  }
  if (total == 0)
    return g_strdup("no earlier row");
  GString *s = g_string_new(total == 1 ? "row " : "rows ");
  for (int j = 0; j < n_used; j++) {
    if (j > 0)
      g_string_append(s, j == total - 1 ? " and " : ", ");
    g_string_append_printf(s, "%d", used[j] + 1);
  }
  if (total > n_used)
    g_string_append_printf(s, " and %d more", total - n_used);
  return g_string_free(s, FALSE);
}

/* For every redundant row (as listed in the report), finds the combination
 * of earlier kept rows it repeats (modified Gram-Schmidt on the kept rows,
 * then R c = Q a), and what right-hand side those rows imply. Adds a
 * warning issue per consistent redundant row and an error issue on the b
 * cell of each contradicting one; the first one's explanation goes to
 * *conflict_text. */
static void
explain_redundant(ConformConstraintCheck *out, char **conflict_text)
{
  const CfConstraint *c = &out->constraint;
  const CfConstraintReport *r = &out->report;
  int m = c->m, n = c->n;
  *conflict_text = NULL;
  if (r->n_redundant == 0)
    return;
  double bnorm = 0.0;
  for (int i = 0; i < m; i++)
    bnorm = hypot(bnorm, c->b[i]);
  double btol = 1e-6 * (1.0 + bnorm);
  int k_max = m - r->n_redundant;
  gboolean explain = k_max > 0 && (double)m * (double)k_max * (double)n <= EXPLAIN_MAX_WORK;

  g_autofree double *Q = explain ? g_new0(double, (gsize)k_max * (gsize)n) : NULL;
  g_autofree double *R = explain ? g_new0(double, (gsize)k_max * (gsize)k_max) : NULL;
  g_autofree double *t = explain ? g_new0(double, (gsize)k_max) : NULL;
  g_autofree double *coef = explain ? g_new0(double, (gsize)k_max) : NULL;
  g_autofree double *v = explain ? g_new0(double, (gsize)n) : NULL;
  g_autofree int *kept_rows = g_new0(int, (gsize)(k_max > 0 ? k_max : 1));
  g_autofree double *disc = g_new0(double, (gsize)r->n_redundant);
  g_autofree char **combo = g_new0(char *, (gsize)r->n_redundant + 1);
  g_autofree char **from = g_new0(char *, (gsize)r->n_redundant + 1);
  g_autofree double *implied = g_new0(double, (gsize)r->n_redundant);

  int k = 0, ri = 0;
  for (int i = 0; i < m; i++) {
    const double *a = c->A + (size_t)i * (size_t)n;
    gboolean redundant = ri < r->n_redundant && r->redundant_rows[ri] == i;
    if (!explain) {
      if (redundant)
        ri++;
      else if (k < k_max)
        kept_rows[k++] = i;
      continue;
    }
    /* Project a onto the current basis twice (re-orthogonalisation). */
    memcpy(v, a, (size_t)n * sizeof *v);
    memset(t, 0, (size_t)k_max * sizeof *t);
    for (int pass = 0; pass < 2; pass++)
      for (int l = 0; l < k; l++) {
        const double *q = Q + (size_t)l * (size_t)n;
        double d = 0.0;
        for (int j = 0; j < n; j++)
          d += q[j] * v[j];
        for (int j = 0; j < n; j++)
          v[j] -= d * q[j];
        t[l] += d;
      }
    if (redundant) {
      /* a = sum_l t_l q_l and kept_j = sum_l R[l][j] q_l: solve R coef = t. */
      for (int l = k - 1; l >= 0; l--) {
        double s = t[l];
        for (int j = l + 1; j < k; j++)
          s -= R[(size_t)l * (size_t)k_max + (size_t)j] * coef[j];
        double d = R[(size_t)l * (size_t)k_max + (size_t)l];
        coef[l] = d != 0.0 ? s / d : 0.0;
      }
      double bi = 0.0;
      for (int l = 0; l < k; l++)
        bi += coef[l] * c->b[kept_rows[l]];
      implied[ri] = bi;
      disc[ri] = c->b[i] - bi;
      combo[ri] = format_combination(i, kept_rows, coef, k);
      from[ri] = format_row_list(kept_rows, coef, k);
      ri++;
    } else if (k < k_max) {
      double d = 0.0;
      for (int j = 0; j < n; j++)
        d = hypot(d, v[j]);
      double *q = Q + (size_t)k * (size_t)n;
      for (int j = 0; j < n; j++)
        q[j] = d > 0.0 ? v[j] / d : 0.0;
      for (int l = 0; l < k; l++)
        R[(size_t)l * (size_t)k_max + (size_t)k] = t[l];
      R[(size_t)k * (size_t)k_max + (size_t)k] = d;
      kept_rows[k++] = i;
    }
  }

  /* Which redundant rows contradict the earlier ones? If the system is
   * inconsistent but no discrepancy passes the tolerance (borderline),
   * blame the largest one. */
  int worst = -1;
  if (!r->consistent) {
    for (int t2 = 0; t2 < r->n_redundant; t2++)
      if (worst < 0 || fabs(disc[t2]) > fabs(disc[worst]))
        worst = t2;
  }
  char vb[G_ASCII_DTOSTR_BUF_SIZE], ib[G_ASCII_DTOSTR_BUF_SIZE];
  for (int t2 = 0; t2 < r->n_redundant; t2++) {
    int i = r->redundant_rows[t2];
    gboolean conflict = !r->consistent && explain && (fabs(disc[t2]) > btol || t2 == worst);
    if (conflict) {
      g_ascii_formatd(vb, sizeof vb, "%.6g", c->b[i]);
      g_ascii_formatd(ib, sizeof ib, "%.6g", implied[t2]);
      g_autofree char *why = NULL;
      if (combo[t2])
        why = g_strdup_printf("%s on the left, so b should be %s, but it is %s", combo[t2], ib, vb);
      else
        why = g_strdup_printf("row %d combines %s on the left, so b should be %s, but it is %s", i + 1,
                              from[t2], ib, vb);
      add_issue(out, i, n, FALSE, "%s", why);
      if (!*conflict_text)
        *conflict_text = g_steal_pointer(&why);
    } else if (combo[t2]) {
      add_issue(out, i, -1, TRUE, "%s: redundant, dropped on apply", combo[t2]);
    } else if (from[t2]) {
      add_issue(out, i, -1, TRUE, "row %d combines %s: redundant, dropped on apply", i + 1, from[t2]);
    } else {
      add_issue(out, i, -1, TRUE, "row %d redundant, dropped on apply", i + 1);
    }
  }
  for (int t2 = 0; t2 < r->n_redundant; t2++) {
    g_free(combo[t2]);
    g_free(from[t2]);
  }
}

/* ------------------------------------------------------------------------ */
/* Analysis                                                                 */

static void
append_part(GString *s, const char *part)
{
  if (s->len > 0)
    g_string_append(s, " · ");
  g_string_append(s, part);
}

/* "rank 2 of 3 rows · row 3 = row 1 + row 2: redundant, dropped on apply
 * · consistent · cond 4.24 · null space 1" */
static char *
usable_summary(const ConformConstraintCheck *c)
{
  const CfConstraintReport *r = &c->report;
  GString *s = g_string_new(NULL);
  g_string_append_printf(s, "rank %d of %d row%s", r->rank, r->m, r->m == 1 ? "" : "s");
  if (r->n_redundant == 1) {
    const char *note = conform_constraint_check_row_note(c, r->redundant_rows[0]);
    if (note)
      append_part(s, note);
  } else if (r->n_redundant > 1) {
    GString *rows = g_string_new(NULL);
    int shown = MIN(r->n_redundant, 8);
    for (int j = 0; j < shown; j++)
      g_string_append_printf(rows, "%s%d", j ? ", " : "", r->redundant_rows[j] + 1);
    if (r->n_redundant > shown)
      g_string_append_printf(rows, " and %d more", r->n_redundant - shown);
    g_autofree char *list = g_string_free(rows, FALSE);
    g_autofree char *part = g_strdup_printf("rows %s redundant, dropped on apply", list);
    append_part(s, part);
  }
  append_part(s, "consistent");
  char buf[64];
  if (r->cond > CONFORM_CONSTRAINT_COND_WARN)
    g_snprintf(buf, sizeof buf, "ill-conditioned: cond %.3g", r->cond);
  else
    g_snprintf(buf, sizeof buf, "cond %.3g", r->cond);
  append_part(s, buf);
  g_snprintf(buf, sizeof buf, "null space %d", r->nullity);
  append_part(s, buf);
  return g_string_free(s, FALSE);
}

static gint
issue_compare(gconstpointer a, gconstpointer b)
{
  const ConformCellIssue *x = a, *y = b;
  if (x->row != y->row)
    return x->row < y->row ? -1 : 1;
  return (x->col > y->col) - (x->col < y->col);
}

/* Analyses out->constraint (already set) after the cell checks. */
static void
analyse(ConformConstraintCheck *out, int dim)
{
  const CfConstraint *c = &out->constraint;
  int m = c->m, n = c->n;

  /* All-zero rows: the file format refuses them, so they block saving too. */
  int first_zero = -1, n_zero = 0;
  for (int i = 0; i < m; i++) {
    const double *a = c->A + (size_t)i * (size_t)n;
    gboolean zero = TRUE;
    for (int j = 0; j < n && zero; j++)
      zero = a[j] == 0.0;
    if (!zero)
      continue;
    char vb[G_ASCII_DTOSTR_BUF_SIZE];
    if (c->b[i] == 0.0)
      add_issue(out, i, -1, FALSE, "row %d is all zeros: 0 = 0 says nothing, remove the row", i + 1);
    else
      add_issue(out, i, -1, FALSE, "row %d is all zeros but b = %s: 0 = %s has no solution", i + 1,
                conform_constraint_format_value(c->b[i], vb), vb);
    if (first_zero < 0)
      first_zero = i;
    n_zero++;
  }
  out->savable = n_zero == 0;

  gboolean dim_ok = dim <= 0 || n == dim;
  if (!dim_ok)
    add_issue(out, -1, -1, FALSE, "the constraint has %d column%s but the data has dimension %d", n,
              n == 1 ? "" : "s", dim);

  CfError err;
  cf_error_clear(&err);
  CfStatus st = cf_constraint_analyze(c, 0, &out->report, &err);
  out->has_report = st == CF_OK || st == CF_ERR_INCONSISTENT || st == CF_ERR_RANK;
  g_autofree char *conflict = NULL;
  if (out->has_report && n_zero == 0)
    explain_redundant(out, &conflict);
  /* Issues in row order (whole-system ones first), so the first one is the first to fix. */
  g_array_sort(out->issues, issue_compare);

  const CfConstraintReport *r = &out->report;
  if (n_zero > 0) {
    const char *msg = conform_constraint_check_cell_error(out, first_zero, -1);
    out->summary = n_zero == 1 ? g_strdup(msg) : g_strdup_printf("%s (%d all-zero rows)", msg, n_zero);
  } else if (!dim_ok) {
    out->summary = g_strdup_printf("the constraint has %d column%s but the data has dimension %d", n,
                                   n == 1 ? "" : "s", dim);
  } else if (st == CF_ERR_INCONSISTENT) {
    char rb[G_ASCII_DTOSTR_BUF_SIZE], rr[G_ASCII_DTOSTR_BUF_SIZE];
    g_ascii_formatd(rb, sizeof rb, "%.3g", r->residual);
    g_ascii_formatd(rr, sizeof rr, "%.3g", r->residual_rel);
    out->summary = g_strdup_printf("inconsistent, no x satisfies every row (least-squares residual %s, relative "
                                   "%s)%s%s",
                                   rb, rr, conflict ? " · " : "", conflict ? conflict : "");
  } else if (st == CF_ERR_RANK && r->rank > 0) {
    out->summary = g_strdup_printf("rank is numerically ambiguous (cond %.3g): some rows are nearly, but not "
                                   "exactly, combinations of others",
                                   r->cond);
  } else if (st != CF_OK) {
    out->summary = g_strdup(err.msg);
  } else {
    out->usable = TRUE;
    out->warning = r->n_redundant > 0 || r->cond > CONFORM_CONSTRAINT_COND_WARN;
    out->summary = usable_summary(out);
  }
}

void
conform_constraint_check_cells(ConformConstraintCheck *out, const char *const *cells, int m, int n, int dim)
{
  g_return_if_fail(out != NULL);
  g_return_if_fail(m >= 0 && n >= 0);
  g_return_if_fail(cells != NULL || m == 0);
  check_reset(out);
  if (m < 1 || n < 1) {
    add_issue(out, -1, -1, FALSE, m < 1 ? "no rows: add a row" : "no columns");
    out->summary = g_strdup(m < 1 ? "no constraint rows: add a row" : "the constraint has no columns");
    return;
  }
  if (m > CF_CONSTRAINT_MAX_ROWS || n > CF_CONSTRAINT_MAX_COLS) {
    add_issue(out, -1, -1, FALSE, "too large");
    out->summary = g_strdup_printf("too large: at most %d rows and %d columns", CF_CONSTRAINT_MAX_ROWS,
                                   CF_CONSTRAINT_MAX_COLS);
    return;
  }
  gsize cols = (gsize)n + 1;
  g_autofree double *A = g_new(double, (gsize)m * (gsize)n);
  g_autofree double *b = g_new(double, (gsize)m);
  int n_bad = 0, n_blank = 0;
  for (int i = 0; i < m; i++) {
    const char *const *row = cells + (gsize)i * cols;
    gboolean blank = TRUE;
    for (int j = 0; j <= n && blank; j++)
      for (const char *p = row[j] ? row[j] : ""; *p && blank; p++)
        blank = g_ascii_isspace(*p);
    if (blank) {
      add_issue(out, i, -1, FALSE, "row %d is empty: fill it in or remove it", i + 1);
      n_blank++;
      continue;
    }
    for (int j = 0; j <= n; j++) {
      double v = 0.0;
      char *msg = parse_cell(row[j], &v);
      if (msg) {
        ConformCellIssue issue = {i, j, msg, FALSE};
        g_array_append_val(out->issues, issue);
        n_bad++;
      } else if (j < n) {
        A[(gsize)i * (gsize)n + (gsize)j] = v;
      } else {
        b[i] = v;
      }
    }
  }
  if (n_blank == m) {
    out->blank = TRUE;
    out->summary = g_strdup("empty: type the coefficients of A and b, paste them, or load a file");
    return;
  }
  if (n_bad + n_blank > 0) {
    const ConformCellIssue *first = &g_array_index(out->issues, ConformCellIssue, 0);
    g_autofree char *what = first->col < 0 ? g_strdup(first->message)
                                           : g_strdup_printf("row %d: %s", first->row + 1, first->message);
    int total = n_bad + n_blank;
    if (total == 1)
      out->summary = g_steal_pointer(&what);
    else
      out->summary = g_strdup_printf("%d %s to fix · %s", total, n_blank ? "problems" : "cells", what);
    return;
  }
  CfError err;
  if (cf_constraint_set(&out->constraint, m, n, A, b, &err) != CF_OK) {
    add_issue(out, -1, -1, FALSE, "%s", err.msg);
    out->summary = g_strdup(err.msg);
    return;
  }
  out->parsed = TRUE;
  analyse(out, dim);
}

void
conform_constraint_check_constraint(ConformConstraintCheck *out, const CfConstraint *c, int dim)
{
  g_return_if_fail(out != NULL);
  g_return_if_fail(c != NULL);
  check_reset(out);
  CfError err;
  if (c->m < 1 || c->n < 1 || !c->A || !c->b) {
    add_issue(out, -1, -1, FALSE, "no constraint rows: add a row");
    out->summary = g_strdup("no constraint rows: add a row");
    return;
  }
  /* Non-finite values cannot come from the parser, but keep the promise. */
  for (int i = 0; i < c->m; i++)
    for (int j = 0; j <= c->n; j++) {
      double v = j < c->n ? c->A[(size_t)i * (size_t)c->n + (size_t)j] : c->b[i];
      if (!isfinite(v))
        add_issue(out, i, j, FALSE, isnan(v) ? "NaN is not allowed" : "infinity is not allowed");
    }
  if (out->issues->len > 0) {
    const ConformCellIssue *first = &g_array_index(out->issues, ConformCellIssue, 0);
    out->summary = g_strdup_printf("row %d: %s", first->row + 1, first->message);
    return;
  }
  if (cf_constraint_copy(&out->constraint, c, &err) != CF_OK) {
    add_issue(out, -1, -1, FALSE, "%s", err.msg);
    out->summary = g_strdup(err.msg);
    return;
  }
  out->parsed = TRUE;
  analyse(out, dim);
}

/* ------------------------------------------------------------------------ */
/* Splitting pasted text                                                    */

static gboolean
cell_is_number(const char *cell)
{
  double v;
  g_autofree char *msg = parse_cell(cell, &v);
  return msg == NULL;
}

gboolean
conform_constraint_split_text(const char *text, char ***cells_out, int *m_out, int *ncols_out, GError **error)
{
  g_return_val_if_fail(text != NULL, FALSE);
  g_return_val_if_fail(cells_out != NULL && m_out != NULL && ncols_out != NULL, FALSE);
  *cells_out = NULL;
  *m_out = 0;
  *ncols_out = 0;
  gboolean tabs = strchr(text, '\t') != NULL;
  gboolean commas = !tabs && strchr(text, ',') != NULL;
  g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
  g_autoptr(GPtrArray) cells = g_ptr_array_new_with_free_func(g_free);
  int m = 0, ncols = -1, first_line = 0;
  gboolean header_checked = FALSE;
  for (int li = 0; lines[li]; li++) {
    char *line = lines[li];
    gsize len = strlen(line);
    if (len > 0 && line[len - 1] == '\r')
      line[len - 1] = '\0';
    if (!tabs) {
      char *hash = strchr(line, '#');
      if (hash)
        *hash = '\0';
      for (char *p = line; *p; p++)
        if (*p == '|')
          *p = commas ? ',' : ' ';
    }
    g_autofree char *stripped = g_strstrip(g_strdup(line));
    if (stripped[0] == '\0')
      continue;
    g_auto(GStrv) parts = NULL;
    if (tabs || commas) {
      parts = g_strsplit(line, tabs ? "\t" : ",", -1);
      for (int j = 0; parts[j]; j++)
        g_strstrip(parts[j]);
    } else {
      g_auto(GStrv) raw = g_strsplit_set(stripped, " \t\v\f", -1);
      GPtrArray *kept = g_ptr_array_new();
      for (int j = 0; raw[j]; j++)
        if (raw[j][0] != '\0')
          g_ptr_array_add(kept, g_strdup(raw[j]));
      g_ptr_array_add(kept, NULL);
      parts = (GStrv)g_ptr_array_free(kept, FALSE);
    }
    int count = (int)g_strv_length(parts);
    if (!header_checked) {
      header_checked = TRUE;
      gboolean any_number = FALSE;
      for (int j = 0; parts[j] && !any_number; j++)
        any_number = cell_is_number(parts[j]);
      if (!any_number) {
        /* Column names, unless this is the only line (then it is just wrong). */
        gboolean more = FALSE;
        for (int lj = li + 1; lines[lj] && !more; lj++) {
          g_autofree char *s2 = g_strstrip(g_strdup(lines[lj]));
          more = s2[0] != '\0' && s2[0] != '#';
        }
        if (more)
          continue;
      }
    }
    if (ncols < 0) {
      ncols = count;
      first_line = li + 1;
    } else if (count != ncols) {
      g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_INPUT, "line %d has %d cell%s, but line %d has %d", li + 1,
                  count, count == 1 ? "" : "s", first_line, ncols);
      return FALSE;
    }
    if (m >= CF_CONSTRAINT_MAX_ROWS || ncols > CF_CONSTRAINT_MAX_COLS + 1) {
      g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_INPUT, "too large: at most %d rows and %d columns",
                  CF_CONSTRAINT_MAX_ROWS, CF_CONSTRAINT_MAX_COLS + 1);
      return FALSE;
    }
    for (int j = 0; j < count; j++)
      g_ptr_array_add(cells, g_strdup(parts[j]));
    m++;
  }
  if (m == 0) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_INPUT, "no rows found in the text");
    return FALSE;
  }
  g_ptr_array_add(cells, NULL);
  *cells_out = (char **)g_ptr_array_steal(cells, NULL);
  *m_out = m;
  *ncols_out = ncols;
  return TRUE;
}

/* ------------------------------------------------------------------------ */
/* Files                                                                    */

gboolean
conform_constraint_load_file(const char *path, CfConstraint *out, GError **error)
{
  g_return_val_if_fail(path != NULL && out != NULL, FALSE);
  g_autofree char *data = NULL;
  gsize len = 0;
  if (!conform_read_file(path, LOAD_MAX_BYTES, &data, &len, error))
    return FALSE;
  g_autofree char *base = g_filename_display_basename(path);
  CfConstraint c;
  cf_constraint_init(&c);
  CfError err;
  if (cf_constraint_parse(&c, data, len, base, &err) != CF_OK) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_INPUT, "%s", err.msg);
    return FALSE;
  }
  cf_constraint_clear(out);
  *out = c;
  return TRUE;
}

gboolean
conform_constraint_save_file(const char *path, const CfConstraint *c, GError **error)
{
  g_return_val_if_fail(path != NULL && c != NULL, FALSE);
  char *text = cf_constraint_to_text(c);
  if (!text) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_INPUT, "nothing to save: the constraint is empty");
    return FALSE;
  }
  gboolean ok = conform_write_atomic(path, text, strlen(text), error);
  free(text);
  return ok;
}
