/* Linear equality constraints A x = b: parsing, validation, projection.
 *
 * Parsing is strict and bounded: every loop advances through the input,
 * sizes are checked against CF_CONSTRAINT_MAX_ROWS/COLS while reading, and
 * numbers go through a small scanner that does not depend on the locale.
 * Analysis runs in double through LAPACK; projection runs in float with a
 * factorisation computed once in double. */
#include "constraint.h"

#include <cblas.h>
#include <errno.h>
#include <float.h>
#include <lapacke.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Longest cell (in bytes) the parser accepts; longer cells are an error. */
#define CELL_MAX_LEN 256
/* Largest file cf_constraint_load reads. */
#define FILE_MAX_BYTES ((size_t)1 << 30)
/* Rows per block in cf_project and cf_constraint_violation. */
#ifndef PROJECT_CHUNK
#define PROJECT_CHUNK 2048
#endif
#define VIOLATION_CHUNK 256

/* ------------------------------------------------------------------------ */
/* Basic object management                                                   */

void
cf_constraint_init(CfConstraint *c)
{
  c->m = 0;
  c->n = 0;
  c->A = NULL;
  c->b = NULL;
}

void
cf_constraint_clear(CfConstraint *c)
{
  if (!c)
    return;
  free(c->A);
  free(c->b);
  cf_constraint_init(c);
}

/* Replaces the contents of c with already allocated A and b (takes them). */
static void
constraint_take(CfConstraint *c, int m, int n, double *A, double *b)
{
  free(c->A);
  free(c->b);
  c->m = m;
  c->n = n;
  c->A = A;
  c->b = b;
}

static CfStatus
check_sizes(int m, int n, CfError *err)
{
  if (m < 1 || n < 1)
    return cf_error_set(err, CF_ERR_INVALID, "constraint must have at least one row and one column (got %d x %d)", m, n);
  if (m > CF_CONSTRAINT_MAX_ROWS)
    return cf_error_set(err, CF_ERR_NOMEM, "constraint has %d rows, more than the limit of %d", m, CF_CONSTRAINT_MAX_ROWS);
  if (n > CF_CONSTRAINT_MAX_COLS)
    return cf_error_set(err, CF_ERR_NOMEM, "constraint has %d columns, more than the limit of %d", n, CF_CONSTRAINT_MAX_COLS);
  return CF_OK;
}

static CfStatus
check_finite(int m, int n, const double *A, const double *b, CfError *err)
{
  for (int i = 0; i < m; i++) {
    for (int j = 0; j < n; j++) {
      double v = A[(size_t)i * (size_t)n + (size_t)j];
      if (!isfinite(v))
        return cf_error_set(err, CF_ERR_NUMERIC, "row %d, column %d: coefficient is not finite (%g)", i, j, v);
    }
    if (!isfinite(b[i]))
      return cf_error_set(err, CF_ERR_NUMERIC, "row %d: right-hand side is not finite (%g)", i, b[i]);
  }
  return CF_OK;
}

CfStatus
cf_constraint_set(CfConstraint *c, int m, int n, const double *A, const double *b, CfError *err)
{
  CfStatus st = check_sizes(m, n, err);
  if (st != CF_OK)
    return st;
  if (!A || !b)
    return cf_error_set(err, CF_ERR_INVALID, "constraint: A or b is NULL");
  st = check_finite(m, n, A, b, err);
  if (st != CF_OK)
    return st;
  size_t mn = (size_t)m * (size_t)n;
  double *nA = cf_alloc_array(mn, sizeof *nA);
  double *nb = cf_alloc_array((size_t)m, sizeof *nb);
  if (!nA || !nb) {
    free(nA);
    free(nb);
    return cf_error_set(err, CF_ERR_NOMEM, "out of memory for a %d x %d constraint", m, n);
  }
  memcpy(nA, A, mn * sizeof *nA);
  memcpy(nb, b, (size_t)m * sizeof *nb);
  constraint_take(c, m, n, nA, nb);
  return CF_OK;
}

CfStatus
cf_constraint_copy(CfConstraint *dst, const CfConstraint *src, CfError *err)
{
  if (dst == src)
    return CF_OK;
  return cf_constraint_set(dst, src->m, src->n, src->A, src->b, err);
}

/* ------------------------------------------------------------------------ */
/* Strict, locale-independent number scanner                                 */

typedef enum {
  NUM_OK,
  NUM_BAD,       /* not a number at all */
  NUM_NONFINITE, /* nan / inf literal */
  NUM_RANGE,     /* overflows a double */
  NUM_LONG,      /* cell longer than CELL_MAX_LEN */
} NumKind;

static bool
ascii_ieq(const char *s, size_t len, const char *word)
{
  size_t wl = strlen(word);
  if (len != wl)
    return false;
  for (size_t i = 0; i < len; i++) {
    char ch = s[i];
    if (ch >= 'A' && ch <= 'Z')
      ch = (char)(ch - 'A' + 'a');
    if (ch != word[i])
      return false;
  }
  return true;
}

static bool
is_digit(char ch)
{
  return ch >= '0' && ch <= '9';
}

/* Accepts [+-] digits [. digits] [(e|E) [+-] digits] with at least one
 * mantissa digit. The digits are rewritten as an integer mantissa with a
 * decimal exponent ("12345e-4"), which strtod converts with correct rounding
 * and without needing the locale's decimal point. */
static NumKind
scan_number(const char *s, size_t len, double *out)
{
  if (len > CELL_MAX_LEN)
    return NUM_LONG;
  size_t i = 0;
  bool neg = false;
  if (i < len && (s[i] == '+' || s[i] == '-')) {
    neg = s[i] == '-';
    i++;
  }
  if (ascii_ieq(s + i, len - i, "nan") || ascii_ieq(s + i, len - i, "inf") ||
      ascii_ieq(s + i, len - i, "infinity"))
    return NUM_NONFINITE;

  char buf[CELL_MAX_LEN + 32];
  size_t nb = 0;
  size_t nsig = 0;
  long dexp = 0;
  bool any_digit = false;
  if (neg)
    buf[nb++] = '-';
  while (i < len && is_digit(s[i])) {
    any_digit = true;
    if (nsig > 0 || s[i] != '0') {
      buf[nb++] = s[i];
      nsig++;
    }
    i++;
  }
  if (i < len && s[i] == '.') {
    i++;
    while (i < len && is_digit(s[i])) {
      any_digit = true;
      if (nsig > 0 || s[i] != '0') {
        buf[nb++] = s[i];
        nsig++;
      }
      dexp--;
      i++;
    }
  }
  if (!any_digit)
    return NUM_BAD;
  if (i < len && (s[i] == 'e' || s[i] == 'E')) {
    i++;
    bool eneg = false;
    if (i < len && (s[i] == '+' || s[i] == '-')) {
      eneg = s[i] == '-';
      i++;
    }
    if (i >= len || !is_digit(s[i]))
      return NUM_BAD;
    long e = 0;
    while (i < len && is_digit(s[i])) {
      if (e < 100000000L)
        e = e * 10 + (s[i] - '0');
      i++;
    }
    dexp += eneg ? -e : e;
  }
  if (i != len)
    return NUM_BAD;
  if (nsig == 0) {
    *out = neg ? -0.0 : 0.0;
    return NUM_OK;
  }
  int k = snprintf(buf + nb, sizeof buf - nb, "e%ld", dexp);
  if (k < 0 || (size_t)k >= sizeof buf - nb)
    return NUM_BAD;
  char *end = NULL;
  double v = strtod(buf, &end);
  if (end != buf + nb + (size_t)k)
    return NUM_BAD;
  if (!isfinite(v))
    return NUM_RANGE;
  *out = v;
  return NUM_OK;
}

/* Copies a cell into dst for an error message: at most 40 bytes, with
 * non-printable bytes shown as '?'. */
static void
quote_cell(char *dst, size_t cap, const char *s, size_t len)
{
  size_t lim = len;
  bool cut = false;
  if (lim > 40) {
    lim = 40;
    cut = true;
  }
  if (cap < lim + 4)
    lim = cap > 4 ? cap - 4 : 0;
  size_t o = 0;
  for (size_t i = 0; i < lim; i++) {
    unsigned char ch = (unsigned char)s[i];
    dst[o++] = (ch < 0x20 || ch >= 0x7f) ? '?' : (char)ch;
  }
  if (cut) {
    dst[o++] = '.';
    dst[o++] = '.';
    dst[o++] = '.';
  }
  dst[o] = '\0';
}

/* ------------------------------------------------------------------------ */
/* Parser                                                                   */

typedef struct {
  const char *text;
  size_t len;
  const char *origin;
  CfError *err;
  double *A;
  size_t a_len, a_cap;
  double *b;
  size_t b_len, b_cap;
  size_t *spans; /* (start, length) pairs of the current line's cells */
  size_t sp_cap; /* capacity in pairs */
  size_t n_cells;
} Parser;

static bool
is_space(char ch)
{
  return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\v' || ch == '\f';
}

static bool
grow_doubles(double **buf, size_t *cap, size_t need)
{
  if (need <= *cap)
    return true;
  size_t nc = *cap ? *cap : 64;
  while (nc < need) {
    if (nc > SIZE_MAX / 2 / sizeof(double))
      return false;
    nc *= 2;
  }
  double *nbuf = realloc(*buf, nc * sizeof **buf);
  if (!nbuf)
    return false;
  *buf = nbuf;
  *cap = nc;
  return true;
}

/* Splits text[beg, end) into cells separated by whitespace and/or single
 * commas. Stores at most `cap` + 1 cells but keeps counting beyond that, so
 * the caller can report the real count. */
static CfStatus
split_cells(Parser *p, size_t line, size_t ls, size_t beg, size_t end, size_t cap)
{
  p->n_cells = 0;
  bool have_cell = false;  /* a cell since the start or the last comma */
  bool need_cell = false;  /* a comma was seen and no cell after it yet */
  size_t comma_at = 0;
  size_t pos = beg;
  while (pos < end) {
    char ch = p->text[pos];
    if (is_space(ch)) {
      pos++;
      continue;
    }
    if (ch == ',') {
      if (!have_cell)
        return cf_error_set(p->err, CF_ERR_PARSE, "%s:%zu:%zu: empty cell before ','",
                            p->origin, line, pos - ls + 1);
      have_cell = false;
      need_cell = true;
      comma_at = pos;
      pos++;
      continue;
    }
    size_t start = pos;
    while (pos < end && !is_space(p->text[pos]) && p->text[pos] != ',')
      pos++;
    if (p->n_cells <= cap) {
      if (p->n_cells >= p->sp_cap) {
        size_t nc = p->sp_cap ? p->sp_cap * 2 : 64;
        if (nc > cap + 1)
          nc = cap + 1;
        size_t *ns = cf_alloc_array(nc, 2 * sizeof *ns);
        if (!ns)
          return cf_error_set(p->err, CF_ERR_NOMEM, "%s:%zu: out of memory", p->origin, line);
        if (p->spans)
          memcpy(ns, p->spans, p->sp_cap * 2 * sizeof *ns);
        free(p->spans);
        p->spans = ns;
        p->sp_cap = nc;
      }
      p->spans[2 * p->n_cells] = start;
      p->spans[2 * p->n_cells + 1] = pos - start;
    }
    p->n_cells++;
    have_cell = true;
    need_cell = false;
  }
  if (need_cell)
    return cf_error_set(p->err, CF_ERR_PARSE, "%s:%zu:%zu: empty cell after ',' at the end",
                        p->origin, line, comma_at - ls + 1);
  return CF_OK;
}

static CfStatus
cell_error(Parser *p, NumKind kind, size_t line, size_t ls, size_t start, size_t clen)
{
  char q[64];
  quote_cell(q, sizeof q, p->text + start, clen);
  size_t col = start - ls + 1;
  switch (kind) {
  case NUM_NONFINITE:
    return cf_error_set(p->err, CF_ERR_NUMERIC, "%s:%zu:%zu: '%s' is not a finite number",
                        p->origin, line, col, q);
  case NUM_RANGE:
    return cf_error_set(p->err, CF_ERR_NUMERIC, "%s:%zu:%zu: '%s' is too large for a double",
                        p->origin, line, col, q);
  case NUM_LONG:
    return cf_error_set(p->err, CF_ERR_PARSE, "%s:%zu:%zu: cell is too long (%zu characters, at most %d)",
                        p->origin, line, col, clen, CELL_MAX_LEN);
  case NUM_OK:
  case NUM_BAD:
    break;
  }
  return cf_error_set(p->err, CF_ERR_PARSE, "%s:%zu:%zu: '%s' is not a number", p->origin, line, col, q);
}

/* Converts cells [first, first + count) of the current line and appends them
 * to dst (A or b). Returns whether all were zero through *all_zero. */
static CfStatus
store_cells(Parser *p, size_t line, size_t ls, size_t first, size_t count, double **dst, size_t *dlen,
            size_t *dcap, bool *all_zero)
{
  if (!grow_doubles(dst, dcap, *dlen + count))
    return cf_error_set(p->err, CF_ERR_NOMEM, "%s:%zu: out of memory", p->origin, line);
  bool zero = true;
  for (size_t k = 0; k < count; k++) {
    size_t start = p->spans[2 * (first + k)];
    size_t clen = p->spans[2 * (first + k) + 1];
    double v = 0.0;
    NumKind kind = scan_number(p->text + start, clen, &v);
    if (kind != NUM_OK)
      return cell_error(p, kind, line, ls, start, clen);
    if (v != 0.0)
      zero = false;
    (*dst)[*dlen + k] = v;
  }
  *dlen += count;
  if (all_zero)
    *all_zero = zero;
  return CF_OK;
}

static CfStatus
row_count_check(Parser *p, size_t line, int m)
{
  if (m >= CF_CONSTRAINT_MAX_ROWS)
    return cf_error_set(p->err, CF_ERR_NOMEM, "%s:%zu: more than %d rows (the limit)", p->origin, line,
                        CF_CONSTRAINT_MAX_ROWS);
  return CF_OK;
}

/* Iterates over lines; for each, [ls, le) is the line without '\n' and
 * ce is where the content ends (at '#' or le). */
static size_t
next_line(const char *text, size_t len, size_t pos, size_t *le, size_t *ce)
{
  const char *nl = memchr(text + pos, '\n', len - pos);
  size_t e = nl ? (size_t)(nl - text) : len;
  const char *hash = memchr(text + pos, '#', e - pos);
  *le = e;
  *ce = hash ? (size_t)(hash - text) : e;
  return nl ? e + 1 : len;
}

static bool
blank(const char *text, size_t beg, size_t end)
{
  for (size_t i = beg; i < end; i++)
    if (!is_space(text[i]))
      return false;
  return true;
}

static CfStatus
parse_text_format(Parser *p, size_t start, int *m_out, int *n_out)
{
  int m = 0;
  size_t n = 0;
  size_t n_line = 0;
  size_t line = 0;
  size_t pos = start;
  while (pos < p->len) {
    size_t le, ce;
    size_t ls = pos;
    pos = next_line(p->text, p->len, pos, &le, &ce);
    line++;
    if (blank(p->text, ls, ce))
      continue;
    const char *bar = memchr(p->text + ls, '|', ce - ls);
    if (!bar)
      return cf_error_set(p->err, CF_ERR_PARSE,
                          "%s:%zu: missing '|' and right-hand side (expected: coefficients | rhs)",
                          p->origin, line);
    size_t barpos = (size_t)(bar - p->text);
    const char *bar2 = memchr(bar + 1, '|', ce - barpos - 1);
    if (bar2)
      return cf_error_set(p->err, CF_ERR_PARSE, "%s:%zu:%zu: more than one '|' on a line", p->origin, line,
                          (size_t)(bar2 - p->text) - ls + 1);
    CfStatus st = row_count_check(p, line, m);
    if (st != CF_OK)
      return st;

    /* coefficients */
    st = split_cells(p, line, ls, ls, barpos, CF_CONSTRAINT_MAX_COLS);
    if (st != CF_OK)
      return st;
    size_t cnt = p->n_cells;
    if (cnt == 0)
      return cf_error_set(p->err, CF_ERR_PARSE, "%s:%zu:%zu: no coefficients before '|'", p->origin, line,
                          barpos - ls + 1);
    if (cnt > CF_CONSTRAINT_MAX_COLS)
      return cf_error_set(p->err, CF_ERR_NOMEM, "%s:%zu: row has %zu coefficients, more than the limit of %d",
                          p->origin, line, cnt, CF_CONSTRAINT_MAX_COLS);
    if (m == 0) {
      n = cnt;
      n_line = line;
    } else if (cnt != n) {
      return cf_error_set(p->err, CF_ERR_PARSE, "%s:%zu: row has %zu coefficients, expected %zu (as in line %zu)",
                          p->origin, line, cnt, n, n_line);
    }
    bool zero = false;
    st = store_cells(p, line, ls, 0, cnt, &p->A, &p->a_len, &p->a_cap, &zero);
    if (st != CF_OK)
      return st;

    /* right-hand side: exactly one cell */
    st = split_cells(p, line, ls, barpos + 1, ce, 1);
    if (st != CF_OK)
      return st;
    if (p->n_cells == 0)
      return cf_error_set(p->err, CF_ERR_PARSE, "%s:%zu:%zu: missing right-hand side after '|'", p->origin,
                          line, barpos - ls + 1);
    if (p->n_cells > 1)
      return cf_error_set(p->err, CF_ERR_PARSE,
                          "%s:%zu:%zu: more than one value after '|' (the right-hand side is one number)",
                          p->origin, line, p->spans[2] - ls + 1);
    st = store_cells(p, line, ls, 0, 1, &p->b, &p->b_len, &p->b_cap, NULL);
    if (st != CF_OK)
      return st;
    if (zero)
      return cf_error_set(p->err, CF_ERR_RANK, "%s:%zu: all coefficients on this row are zero", p->origin, line);
    m++;
  }
  *m_out = m;
  *n_out = (int)n;
  return CF_OK;
}

static CfStatus
parse_csv_format(Parser *p, size_t start, int *m_out, int *n_out)
{
  int m = 0;
  size_t ncol = 0;       /* columns including b */
  size_t ncol_line = 0;
  bool first = true;
  bool header = false;
  size_t line = 0;
  size_t pos = start;
  while (pos < p->len) {
    size_t le, ce;
    size_t ls = pos;
    pos = next_line(p->text, p->len, pos, &le, &ce);
    line++;
    if (blank(p->text, ls, ce))
      continue;
    CfStatus st = split_cells(p, line, ls, ls, ce, (size_t)CF_CONSTRAINT_MAX_COLS + 1);
    if (st != CF_OK)
      return st;
    size_t cnt = p->n_cells;
    if (cnt > (size_t)CF_CONSTRAINT_MAX_COLS + 1)
      return cf_error_set(p->err, CF_ERR_NOMEM, "%s:%zu: row has %zu columns, more than the limit of %d",
                          p->origin, line, cnt, CF_CONSTRAINT_MAX_COLS + 1);
    if (cnt < 2)
      return cf_error_set(p->err, CF_ERR_PARSE,
                          "%s:%zu: row has 1 column; CSV needs at least 2 (coefficients, then b last) "
                          "or the text format 'coefficients | rhs'",
                          p->origin, line);
    if (first) {
      first = false;
      ncol = cnt;
      ncol_line = line;
      /* A first line with nothing number-like is a header of names. */
      bool names = true;
      for (size_t k = 0; k < cnt && names; k++) {
        double v;
        NumKind kind = scan_number(p->text + p->spans[2 * k], p->spans[2 * k + 1], &v);
        if (kind == NUM_OK || kind == NUM_NONFINITE || kind == NUM_RANGE)
          names = false;
      }
      if (names) {
        header = true;
        continue;
      }
    } else if (cnt != ncol) {
      return cf_error_set(p->err, CF_ERR_PARSE, "%s:%zu: row has %zu columns, expected %zu (as in %s %zu)",
                          p->origin, line, cnt, ncol, header && m == 0 ? "the header on line" : "line",
                          ncol_line);
    }
    if (header && m == 0)
      ncol_line = line;
    st = row_count_check(p, line, m);
    if (st != CF_OK)
      return st;
    bool zero = false;
    st = store_cells(p, line, ls, 0, cnt - 1, &p->A, &p->a_len, &p->a_cap, &zero);
    if (st != CF_OK)
      return st;
    st = store_cells(p, line, ls, cnt - 1, 1, &p->b, &p->b_len, &p->b_cap, NULL);
    if (st != CF_OK)
      return st;
    if (zero)
      return cf_error_set(p->err, CF_ERR_RANK, "%s:%zu: all coefficients on this row are zero", p->origin, line);
    m++;
  }
  *m_out = m;
  *n_out = ncol > 0 ? (int)(ncol - 1) : 0;
  return CF_OK;
}

CfStatus
cf_constraint_parse(CfConstraint *c, const char *text, size_t len, const char *origin, CfError *err)
{
  if (!origin)
    origin = "<text>";
  if (!text && len > 0)
    return cf_error_set(err, CF_ERR_INVALID, "%s: no text given", origin);
  if (!text)
    text = "";

  /* Embedded NUL bytes: binary data, not a constraint file. */
  const char *nul = memchr(text, '\0', len);
  if (nul) {
    size_t off = (size_t)(nul - text);
    size_t line = 1, ls = 0;
    for (size_t i = 0; i < off; i++)
      if (text[i] == '\n') {
        line++;
        ls = i + 1;
      }
    return cf_error_set(err, CF_ERR_PARSE, "%s:%zu:%zu: NUL byte in the input (binary file?)", origin, line,
                        off - ls + 1);
  }

  size_t start = 0;
  if (len >= 3 && (unsigned char)text[0] == 0xEF && (unsigned char)text[1] == 0xBB &&
      (unsigned char)text[2] == 0xBF)
    start = 3; /* UTF-8 byte order mark */

  /* Text format if any line has a '|' outside comments, else CSV. */
  bool text_format = false;
  for (size_t pos = start; pos < len && !text_format;) {
    size_t le, ce;
    size_t ls = pos;
    pos = next_line(text, len, pos, &le, &ce);
    if (memchr(text + ls, '|', ce - ls))
      text_format = true;
  }

  Parser p = {.text = text, .len = len, .origin = origin, .err = err};
  int m = 0, n = 0;
  CfStatus st = text_format ? parse_text_format(&p, start, &m, &n) : parse_csv_format(&p, start, &m, &n);
  free(p.spans);
  if (st == CF_OK && m == 0)
    st = cf_error_set(err, CF_ERR_PARSE, "%s: no constraint rows (the input is empty or only comments)", origin);
  if (st != CF_OK) {
    free(p.A);
    free(p.b);
    return st;
  }
  constraint_take(c, m, n, p.A, p.b);
  return CF_OK;
}

CfStatus
cf_constraint_load(CfConstraint *c, const char *path, CfError *err)
{
  if (!path)
    return cf_error_set(err, CF_ERR_INVALID, "no file name given");
  FILE *f = fopen(path, "rb");
  if (!f)
    return cf_error_set(err, CF_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
  size_t cap = 4096, len = 0;
  char *buf = malloc(cap);
  if (!buf) {
    fclose(f);
    return cf_error_set(err, CF_ERR_NOMEM, "%s: out of memory", path);
  }
  for (;;) {
    if (len == cap) {
      if (cap >= FILE_MAX_BYTES) {
        free(buf);
        fclose(f);
        return cf_error_set(err, CF_ERR_NOMEM, "%s: file is larger than the limit of %zu MiB", path,
                            FILE_MAX_BYTES >> 20);
      }
      size_t nc = cap * 2;
      char *nbuf = realloc(buf, nc);
      if (!nbuf) {
        free(buf);
        fclose(f);
        return cf_error_set(err, CF_ERR_NOMEM, "%s: out of memory", path);
      }
      buf = nbuf;
      cap = nc;
    }
    size_t got = fread(buf + len, 1, cap - len, f);
    len += got;
    if (got == 0)
      break;
  }
  if (ferror(f)) {
    int e = errno;
    free(buf);
    fclose(f);
    return cf_error_set(err, CF_ERR_IO, "%s: cannot read: %s", path, strerror(e));
  }
  fclose(f);
  CfStatus st = cf_constraint_parse(c, buf, len, path, err);
  free(buf);
  return st;
}

/* Formats v with %.17g and replaces whatever the locale used as decimal
 * point with '.', so the output parses back anywhere. */
static size_t
format_double(char *dst, size_t cap, double v)
{
  char tmp[64];
  int k = snprintf(tmp, sizeof tmp, "%.17g", v);
  if (k < 0 || (size_t)k >= sizeof tmp)
    return 0;
  size_t o = 0;
  bool in_point = false;
  for (int i = 0; i < k && o + 1 < cap; i++) {
    char ch = tmp[i];
    bool plain = is_digit(ch) || ch == '-' || ch == '+' || ch == 'e' || ch == 'E';
    if (plain) {
      dst[o++] = ch;
      in_point = false;
    } else if (!in_point) {
      dst[o++] = '.';
      in_point = true;
    }
  }
  dst[o] = '\0';
  return o;
}

char *
cf_constraint_to_text(const CfConstraint *c)
{
  if (!c || !c->A || !c->b || c->m < 1 || c->n < 1)
    return NULL;
  size_t cells = (size_t)c->m * ((size_t)c->n + 1);
  size_t cap = cells * 28 + (size_t)c->m * 4 + 128;
  char *s = malloc(cap);
  if (!s)
    return NULL;
  int k = snprintf(s, cap, "# A x = b: %d rows, %d columns (coefficients | right-hand side)\n", c->m, c->n);
  size_t o = k > 0 ? (size_t)k : 0;
  for (int i = 0; i < c->m; i++) {
    for (int j = 0; j < c->n; j++) {
      o += format_double(s + o, cap - o, c->A[(size_t)i * (size_t)c->n + (size_t)j]);
      s[o++] = ' ';
    }
    s[o++] = '|';
    s[o++] = ' ';
    o += format_double(s + o, cap - o, c->b[i]);
    s[o++] = '\n';
  }
  s[o] = '\0';
  return s;
}

/* ------------------------------------------------------------------------ */
/* Analysis                                                                 */

void
cf_constraint_report_clear(CfConstraintReport *r)
{
  if (!r)
    return;
  free(r->redundant_rows);
  memset(r, 0, sizeof *r);
}

static double
dnrm2_safe(int n, const double *x)
{
  return n > 0 ? cblas_dnrm2(n, x, 1) : 0.0;
}

CfStatus
cf_constraint_analyze(const CfConstraint *c, int dim, CfConstraintReport *report, CfError *err)
{
  CfConstraintReport dummy;
  CfConstraintReport *r = report ? report : &dummy;
  memset(r, 0, sizeof *r);
  if (!c || !c->A || !c->b)
    return cf_error_set(err, CF_ERR_INVALID, "constraint is empty");
  int m = c->m, n = c->n;
  CfStatus st = check_sizes(m, n, err);
  if (st != CF_OK)
    return st;
  if (dim > 0 && n != dim)
    return cf_error_set(err, CF_ERR_SHAPE, "constraint has %d columns but the data has dimension %d", n, dim);
  r->m = m;
  r->n = n;
  st = check_finite(m, n, c->A, c->b, err);
  if (st != CF_OK)
    return st;

  size_t mn = (size_t)m * (size_t)n;
  int k = m < n ? m : n;
  int mx = m > n ? m : n;
  double *W = cf_alloc_array(mn, sizeof *W);
  double *x = cf_alloc_array((size_t)mx, sizeof *x);
  double *sv = cf_alloc_array((size_t)k, sizeof *sv);
  double *res = cf_alloc_array((size_t)m, sizeof *res);
  double *basis = cf_alloc_array((size_t)k * (size_t)n, sizeof *basis);
  double *beta = cf_alloc_array((size_t)k, sizeof *beta);
  double *coef = cf_alloc_array((size_t)k, sizeof *coef);
  double *coef2 = cf_alloc_array((size_t)k, sizeof *coef2);
  double *v = cf_alloc_array((size_t)n, sizeof *v);
  int *red = cf_alloc_array((size_t)m, sizeof *red);
  double *disc = cf_alloc_array((size_t)m, sizeof *disc);
  double *K = NULL;
  if (!W || !x || !sv || !res || !basis || !beta || !coef || !coef2 || !v || !red || !disc) {
    st = cf_error_set(err, CF_ERR_NOMEM, "out of memory analysing a %d x %d constraint", m, n);
    goto out;
  }

  /* Minimum-norm least squares + singular values (divide and conquer SVD). */
  memcpy(W, c->A, mn * sizeof *W);
  memset(x, 0, (size_t)mx * sizeof *x);
  memcpy(x, c->b, (size_t)m * sizeof *x);
  double rcond = (double)mx * DBL_EPSILON;
  lapack_int lrank = 0;
  lapack_int info = LAPACKE_dgelsd(LAPACK_ROW_MAJOR, m, n, 1, W, n, x, 1, sv, rcond, &lrank);
  if (info != 0) {
    st = cf_error_set(err, CF_ERR_NUMERIC, "singular value decomposition failed (LAPACK dgelsd info %d)",
                      (int)info);
    goto out;
  }
  double smax = sv[0];
  double tol = (double)mx * DBL_EPSILON * smax;
  int rank = 0;
  for (int i = 0; i < k; i++)
    if (sv[i] > tol)
      rank++;
  r->rank = rank;
  r->rank_tol = tol;
  r->nullity = n - rank;

  double bnorm = dnrm2_safe(m, c->b);
  memcpy(res, c->b, (size_t)m * sizeof *res);
  cblas_dgemv(CblasRowMajor, CblasNoTrans, m, n, 1.0, c->A, n, x, 1, -1.0, res, 1);
  r->residual = dnrm2_safe(m, res);
  r->residual_rel = r->residual / (1.0 + bnorm);
  r->consistent = r->residual_rel <= 1e-6;

  /* Greedy redundancy in row order: classical Gram-Schmidt with one
   * re-orthogonalisation. beta tracks what A x = b implies for q . x, so
   * for a redundant row we also know which right-hand side the earlier rows
   * imply (disc = b_i - implied). */
  int kept = 0, nred = 0;
  for (int i = 0; i < m; i++) {
    const double *a = c->A + (size_t)i * (size_t)n;
    memcpy(v, a, (size_t)n * sizeof *v);
    double implied = 0.0;
    if (kept > 0) {
      cblas_dgemv(CblasRowMajor, CblasNoTrans, kept, n, 1.0, basis, n, v, 1, 0.0, coef, 1);
      cblas_dgemv(CblasRowMajor, CblasTrans, kept, n, -1.0, basis, n, coef, 1, 1.0, v, 1);
      cblas_dgemv(CblasRowMajor, CblasNoTrans, kept, n, 1.0, basis, n, v, 1, 0.0, coef2, 1);
      cblas_dgemv(CblasRowMajor, CblasTrans, kept, n, -1.0, basis, n, coef2, 1, 1.0, v, 1);
      cblas_daxpy(kept, 1.0, coef2, 1, coef, 1);
      implied = cblas_ddot(kept, coef, 1, beta, 1);
    }
    double d = dnrm2_safe(n, v);
    if (d <= tol || kept >= k) {
      disc[nred] = c->b[i] - implied;
      red[nred++] = i;
    } else {
      double inv = 1.0 / d;
      for (int j = 0; j < n; j++)
        basis[(size_t)kept * (size_t)n + (size_t)j] = v[j] * inv;
      beta[kept] = (c->b[i] - implied) * inv;
      kept++;
    }
  }
  r->n_redundant = nred;
  if (nred > 0) {
    r->redundant_rows = cf_alloc_array((size_t)nred, sizeof *r->redundant_rows);
    if (!r->redundant_rows) {
      r->n_redundant = 0;
      st = cf_error_set(err, CF_ERR_NOMEM, "out of memory");
      goto out;
    }
    memcpy(r->redundant_rows, red, (size_t)nred * sizeof *red);
  }

  /* Condition number of the kept rows. */
  double kmin = 0.0, kmax = 0.0;
  if (nred == 0) {
    kmax = smax;
    kmin = sv[k - 1];
  } else if (kept > 0) {
    K = cf_alloc_array((size_t)kept * (size_t)n, sizeof *K);
    if (!K) {
      st = cf_error_set(err, CF_ERR_NOMEM, "out of memory");
      goto out;
    }
    int row = 0, ri = 0;
    for (int i = 0; i < m; i++) {
      if (ri < nred && red[ri] == i) {
        ri++;
        continue;
      }
      memcpy(K + (size_t)row * (size_t)n, c->A + (size_t)i * (size_t)n, (size_t)n * sizeof *K);
      row++;
    }
    info = LAPACKE_dgesdd(LAPACK_ROW_MAJOR, 'N', kept, n, K, n, coef, NULL, kept, NULL, n);
    if (info != 0) {
      st = cf_error_set(err, CF_ERR_NUMERIC, "singular value decomposition failed (LAPACK dgesdd info %d)",
                        (int)info);
      goto out;
    }
    kmax = coef[0];
    kmin = coef[kept - 1];
  }
  r->cond = kmin > 0.0 ? kmax / kmin : INFINITY;

  if (rank == 0) {
    st = cf_error_set(err, CF_ERR_RANK, "all coefficients are zero (rank 0): the constraint says nothing");
    goto out;
  }
  if (!r->consistent) {
    char detail[256] = "";
    for (int t = 0; t < nred; t++) {
      if (fabs(disc[t]) > 1e-6 * (1.0 + bnorm)) {
        int i = red[t];
        if (dnrm2_safe(n, c->A + (size_t)i * (size_t)n) <= tol)
          snprintf(detail, sizeof detail, "; row %d is all zeros but its right-hand side is %.6g", i, c->b[i]);
        else
          snprintf(detail, sizeof detail,
                   "; row %d is a combination of earlier rows that implies a right-hand side of %.6g, "
                   "but it is %.6g",
                   i, c->b[i] - disc[t], c->b[i]);
        break;
      }
    }
    st = cf_error_set(err, CF_ERR_INCONSISTENT, "inconsistent system: least-squares residual %.6g (relative %.6g)%s",
                      r->residual, r->residual_rel, detail);
    goto out;
  }
  if (kept != rank || kmin <= tol) {
    st = cf_error_set(err, CF_ERR_RANK,
                      "rank is numerically ambiguous: rank %d at tolerance %.3g, but the row-by-row test keeps "
                      "%d rows whose smallest singular value is %.3g (condition number %.3g)",
                      rank, tol, kept, kmin, r->cond);
    goto out;
  }
  st = CF_OK;

out:
  free(W);
  free(x);
  free(sv);
  free(res);
  free(basis);
  free(beta);
  free(coef);
  free(coef2);
  free(v);
  free(red);
  free(disc);
  free(K);
  return st;
}

CfStatus
cf_constraint_reduce(CfConstraint *out, const CfConstraint *c, const CfConstraintReport *report, CfError *err)
{
  if (!c || !c->A || !c->b || !report)
    return cf_error_set(err, CF_ERR_INVALID, "reduce: missing constraint or report");
  if (report->m != c->m || report->n != c->n)
    return cf_error_set(err, CF_ERR_SHAPE, "reduce: the report is for a %d x %d constraint, not %d x %d",
                        report->m, report->n, c->m, c->n);
  int m = c->m, n = c->n;
  bool *drop = cf_calloc_array((size_t)m, sizeof *drop);
  if (!drop)
    return cf_error_set(err, CF_ERR_NOMEM, "out of memory");
  int nd = 0;
  for (int t = 0; t < report->n_redundant; t++) {
    int i = report->redundant_rows ? report->redundant_rows[t] : -1;
    if (i < 0 || i >= m) {
      free(drop);
      return cf_error_set(err, CF_ERR_INVALID, "reduce: redundant row index %d is out of range", i);
    }
    if (!drop[i])
      nd++;
    drop[i] = true;
  }
  int mk = m - nd;
  if (mk < 1) {
    free(drop);
    return cf_error_set(err, CF_ERR_RANK, "reduce: every row is redundant");
  }
  double *A = cf_alloc_array((size_t)mk * (size_t)n, sizeof *A);
  double *b = cf_alloc_array((size_t)mk, sizeof *b);
  if (!A || !b) {
    free(A);
    free(b);
    free(drop);
    return cf_error_set(err, CF_ERR_NOMEM, "out of memory");
  }
  int row = 0;
  for (int i = 0; i < m; i++) {
    if (drop[i])
      continue;
    memcpy(A + (size_t)row * (size_t)n, c->A + (size_t)i * (size_t)n, (size_t)n * sizeof *A);
    b[row] = c->b[i];
    row++;
  }
  free(drop);
  constraint_take(out, mk, n, A, b);
  return CF_OK;
}

/* ------------------------------------------------------------------------ */
/* Raw space <-> model space                                                */

static CfStatus
check_affine(const CfConstraint *c, const float *mu, const float *s, CfError *err)
{
  if (!c || !c->A || !c->b || c->m < 1 || c->n < 1)
    return cf_error_set(err, CF_ERR_INVALID, "constraint is empty");
  if (!mu || !s)
    return cf_error_set(err, CF_ERR_INVALID, "normalisation: mu or s is NULL");
  for (int j = 0; j < c->n; j++) {
    if (!isfinite(mu[j]))
      return cf_error_set(err, CF_ERR_NUMERIC, "normalisation: mean of coordinate %d is not finite", j);
    if (!isfinite(s[j]) || s[j] == 0.0f)
      return cf_error_set(err, CF_ERR_INVALID, "normalisation: scale of coordinate %d is %g (must be finite, non-zero)",
                          j, (double)s[j]);
  }
  return CF_OK;
}

static CfStatus
map_space(CfConstraint *out, const CfConstraint *in, const float *mu, const float *s, bool to_model, CfError *err)
{
  CfStatus st = check_affine(in, mu, s, err);
  if (st != CF_OK)
    return st;
  int m = in->m, n = in->n;
  double *A = cf_alloc_array((size_t)m * (size_t)n, sizeof *A);
  double *b = cf_alloc_array((size_t)m, sizeof *b);
  if (!A || !b) {
    free(A);
    free(b);
    return cf_error_set(err, CF_ERR_NOMEM, "out of memory");
  }
  for (int i = 0; i < m; i++) {
    const double *ai = in->A + (size_t)i * (size_t)n;
    double *oi = A + (size_t)i * (size_t)n;
    /* A mu uses the raw-space A: the input on the way in, the output on the way back. */
    double amu = 0.0;
    for (int j = 0; j < n; j++) {
      double raw_aij = to_model ? ai[j] : ai[j] / (double)s[j];
      oi[j] = to_model ? ai[j] * (double)s[j] : raw_aij;
      amu += raw_aij * (double)mu[j];
    }
    b[i] = to_model ? in->b[i] - amu : in->b[i] + amu;
    if (!isfinite(b[i])) {
      free(A);
      free(b);
      return cf_error_set(err, CF_ERR_NUMERIC, "row %d: right-hand side overflows after mapping", i);
    }
  }
  for (size_t t = 0; t < (size_t)m * (size_t)n; t++) {
    if (!isfinite(A[t])) {
      free(A);
      free(b);
      return cf_error_set(err, CF_ERR_NUMERIC, "row %zu: coefficient overflows after mapping", t / (size_t)n);
    }
  }
  constraint_take(out, m, n, A, b);
  return CF_OK;
}

CfStatus
cf_constraint_to_model_space(CfConstraint *out, const CfConstraint *raw, const float *mu, const float *s, CfError *err)
{
  return map_space(out, raw, mu, s, true, err);
}

CfStatus
cf_constraint_to_raw_space(CfConstraint *out, const CfConstraint *model, const float *mu, const float *s, CfError *err)
{
  return map_space(out, model, mu, s, false, err);
}

/* ------------------------------------------------------------------------ */
/* Projection                                                               */

/* Q is allocated with n + 1 rows: rows 0..n-1 are Q (n x m), row n holds the
 * constant c = Q^T x* (the coordinates of x* in that basis). */

void
cf_projector_init(CfProjector *p)
{
  memset(p, 0, sizeof *p);
}

void
cf_projector_clear(CfProjector *p)
{
  if (!p)
    return;
  cf_free_aligned(p->Q);
  cf_free_aligned(p->xstar);
  cf_free_aligned(p->scratch);
  cf_projector_init(p);
}

CfStatus
cf_projector_setup(CfProjector *p, const CfConstraint *c, CfError *err)
{
  if (!c || !c->A || !c->b)
    return cf_error_set(err, CF_ERR_INVALID, "projector: constraint is empty");
  int m = c->m, n = c->n;
  CfStatus st = check_sizes(m, n, err);
  if (st != CF_OK)
    return st;
  st = check_finite(m, n, c->A, c->b, err);
  if (st != CF_OK)
    return st;
  if (m > n)
    return cf_error_set(err, CF_ERR_RANK,
                        "projector: %d rows but only %d columns, so the rows cannot be independent "
                        "(drop redundant rows with cf_constraint_reduce first)",
                        m, n);
  size_t mn = (size_t)m * (size_t)n;
  double *F = cf_alloc_array(mn, sizeof *F);
  double *tau = cf_alloc_array((size_t)m, sizeof *tau);
  double *R = cf_alloc_array((size_t)m * (size_t)m, sizeof *R);
  double *y = cf_alloc_array((size_t)m, sizeof *y);
  double *dy = cf_alloc_array((size_t)m, sizeof *dy);
  double *xs = cf_alloc_array((size_t)n, sizeof *xs);
  float *Qf = cf_alloc_floats(((size_t)n + 1) * (size_t)m);
  float *xf = cf_alloc_floats((size_t)n);
  if (!F || !tau || !R || !y || !dy || !xs || !Qf || !xf) {
    st = cf_error_set(err, CF_ERR_NOMEM, "projector: out of memory for a %d x %d constraint", m, n);
    goto fail;
  }
  /* A (m x n row-major) is A^T (n x m) in column-major: QR of A^T directly. */
  memcpy(F, c->A, mn * sizeof *F);
  lapack_int info = LAPACKE_dgeqrf(LAPACK_COL_MAJOR, n, m, F, n, tau);
  if (info != 0) {
    st = cf_error_set(err, CF_ERR_NUMERIC, "projector: QR failed (LAPACK dgeqrf info %d)", (int)info);
    goto fail;
  }
  double fro = 0.0;
  for (size_t t = 0; t < mn; t++)
    fro += c->A[t] * c->A[t];
  fro = sqrt(fro);
  double tol = (double)n * DBL_EPSILON * fro;
  for (int i = 0; i < m; i++) {
    double rii = F[(size_t)i * (size_t)n + (size_t)i];
    if (!(fabs(rii) > tol)) {
      st = cf_error_set(err, CF_ERR_RANK,
                        "projector: row %d lies in the span of the earlier rows (distance %.3g); "
                        "run cf_constraint_analyze and cf_constraint_reduce first",
                        i, fabs(rii));
      goto fail;
    }
  }
  /* R (m x m, upper, column-major, leading dimension m). */
  memset(R, 0, (size_t)m * (size_t)m * sizeof *R);
  for (int j = 0; j < m; j++)
    for (int i = 0; i <= j; i++)
      R[(size_t)j * (size_t)m + (size_t)i] = F[(size_t)j * (size_t)n + (size_t)i];
  info = LAPACKE_dorgqr(LAPACK_COL_MAJOR, n, m, m, F, n, tau);
  if (info != 0) {
    st = cf_error_set(err, CF_ERR_NUMERIC, "projector: forming Q failed (LAPACK dorgqr info %d)", (int)info);
    goto fail;
  }
  /* A = R^T Q^T, so A x = b  <=>  Q^T x = y with R^T y = b; x* = Q y.
   * One step of iterative refinement in double. */
  memcpy(y, c->b, (size_t)m * sizeof *y);
  cblas_dtrsv(CblasColMajor, CblasUpper, CblasTrans, CblasNonUnit, m, R, m, y, 1);
  cblas_dgemv(CblasColMajor, CblasNoTrans, n, m, 1.0, F, n, y, 1, 0.0, xs, 1);
  memcpy(dy, c->b, (size_t)m * sizeof *dy);
  cblas_dgemv(CblasRowMajor, CblasNoTrans, m, n, -1.0, c->A, n, xs, 1, 1.0, dy, 1);
  cblas_dtrsv(CblasColMajor, CblasUpper, CblasTrans, CblasNonUnit, m, R, m, dy, 1);
  cblas_daxpy(m, 1.0, dy, 1, y, 1);
  cblas_dgemv(CblasColMajor, CblasNoTrans, n, m, 1.0, F, n, dy, 1, 1.0, xs, 1);

  for (int i = 0; i < n; i++)
    for (int j = 0; j < m; j++)
      Qf[(size_t)i * (size_t)m + (size_t)j] = (float)F[(size_t)j * (size_t)n + (size_t)i];
  for (int j = 0; j < m; j++)
    Qf[(size_t)n * (size_t)m + (size_t)j] = (float)y[j];
  for (int i = 0; i < n; i++)
    xf[i] = (float)xs[i];

  cf_projector_clear(p);
  p->m = m;
  p->n = n;
  p->Q = Qf;
  p->xstar = xf;
  st = CF_OK;
  Qf = NULL;
  xf = NULL;
fail:
  free(F);
  free(tau);
  free(R);
  free(y);
  free(dy);
  free(xs);
  cf_free_aligned(Qf);
  cf_free_aligned(xf);
  return st;
}

CfStatus
cf_projector_reserve(CfProjector *p, int B)
{
  if (B <= p->scratch_rows)
    return CF_OK;
  int rows = B < PROJECT_CHUNK ? B : PROJECT_CHUNK;
  if (rows <= p->scratch_rows)
    return CF_OK;
  float *s = cf_alloc_floats((size_t)rows * (size_t)(p->m > 0 ? p->m : 1));
  if (!s)
    return CF_ERR_NOMEM;
  cf_free_aligned(p->scratch);
  p->scratch = s;
  p->scratch_rows = rows;
  return CF_OK;
}

/* x is (B x n); Q is (n x m); scratch is (rows x m). Blocks of at most
 * scratch_rows rows: R = X Q - 1 c^T, then X -= R Q^T. */
void
cf_project(CfProjector *p, float *x, int B)
{
  CF_ASSERT(p && p->Q);
  if (B <= 0)
    return;
  CF_ASSERT(x);
  int m = p->m, n = p->n;
  const float *Q = p->Q;
  const float *cvec = p->Q + (size_t)n * (size_t)m;
  cf_projector_reserve(p, B);
  float row_buf[CF_CONSTRAINT_MAX_ROWS];
  float *R = p->scratch;
  int chunk = p->scratch_rows;
  if (!R || chunk < 1) {
    /* Could not allocate: one row at a time through a stack buffer. */
    R = row_buf;
    chunk = 1;
  }
  for (int r0 = 0; r0 < B; r0 += chunk) {
    int rows = B - r0 < chunk ? B - r0 : chunk;
    float *xb = x + (size_t)r0 * (size_t)n;
    for (int i = 0; i < rows; i++)
      memcpy(R + (size_t)i * (size_t)m, cvec, (size_t)m * sizeof *R);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, m, n, 1.0f, xb, n, Q, m, -1.0f, R, m);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, n, m, -1.0f, R, m, Q, m, 1.0f, xb, n);
  }
}

/* ------------------------------------------------------------------------ */
/* Violations                                                               */

static void
violation_naive(const CfConstraint *c, const float *x, int B, double *l2, double *linf)
{
  int m = c->m, n = c->n;
  for (int s = 0; s < B; s++) {
    const float *xs = x + (size_t)s * (size_t)n;
    double ss = 0.0, mx = 0.0;
    for (int i = 0; i < m; i++) {
      const double *a = c->A + (size_t)i * (size_t)n;
      double acc = -c->b[i];
      for (int j = 0; j < n; j++)
        acc += a[j] * (double)xs[j];
      ss += acc * acc;
      if (fabs(acc) > mx || isnan(acc))
        mx = isnan(acc) ? acc : fabs(acc);
    }
    if (l2)
      l2[s] = sqrt(ss);
    if (linf)
      linf[s] = mx;
  }
}

void
cf_constraint_violation(const CfConstraint *c, const float *x, int B, double *l2, double *linf)
{
  CF_ASSERT(c && c->A && c->b);
  if (B <= 0 || (!l2 && !linf))
    return;
  CF_ASSERT(x);
  int m = c->m, n = c->n;
  int chunk = B < VIOLATION_CHUNK ? B : VIOLATION_CHUNK;
  double *Xd = cf_alloc_array((size_t)chunk * (size_t)n, sizeof *Xd);
  double *Rd = cf_alloc_array((size_t)chunk * (size_t)m, sizeof *Rd);
  if (!Xd || !Rd) {
    free(Xd);
    free(Rd);
    violation_naive(c, x, B, l2, linf);
    return;
  }
  for (int r0 = 0; r0 < B; r0 += chunk) {
    int rows = B - r0 < chunk ? B - r0 : chunk;
    const float *xb = x + (size_t)r0 * (size_t)n;
    for (size_t t = 0; t < (size_t)rows * (size_t)n; t++)
      Xd[t] = (double)xb[t];
    for (int s = 0; s < rows; s++)
      memcpy(Rd + (size_t)s * (size_t)m, c->b, (size_t)m * sizeof *Rd);
    /* R = X A^T - 1 b^T: (rows x n) (n x m) */
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, m, n, 1.0, Xd, n, c->A, n, -1.0, Rd, m);
    for (int s = 0; s < rows; s++) {
      const double *rr = Rd + (size_t)s * (size_t)m;
      double mx = 0.0;
      for (int i = 0; i < m; i++) {
        double a = fabs(rr[i]);
        if (a > mx || isnan(a))
          mx = a;
        if (isnan(mx))
          break;
      }
      if (l2)
        l2[r0 + s] = dnrm2_safe(m, rr);
      if (linf)
        linf[r0 + s] = mx;
    }
  }
  free(Xd);
  free(Rd);
}
