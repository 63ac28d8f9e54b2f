/* Constraint files: the text format (rows "a1 a2 ... | b", '#' comments)
 * and CSV with b last, parsed strictly and within bounds: every loop
 * advances through the input, sizes are checked against
 * CF_CONSTRAINT_MAX_ROWS/COLS while reading, and numbers go through a small
 * scanner that does not depend on the locale. */
#include "constraint.h"
#include "constraint_private.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Longest cell (in bytes) the parser accepts; longer cells are an error. */
#define CELL_MAX_LEN 256
/* Largest file cf_constraint_load reads. */
#define FILE_MAX_BYTES ((size_t)1 << 30)

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
  cf_constraint_take_(c, m, n, p.A, p.b);
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
  /* A file whose size is known (seekable) is refused before reading it; the
   * limit in the loop below covers the rest (pipes). */
  if (fseek(f, 0, SEEK_END) == 0) {
    long size = ftell(f);
    if (size > 0 && (unsigned long)size > FILE_MAX_BYTES) {
      fclose(f);
      return cf_error_set(err, CF_ERR_NOMEM, "%s: file is larger than the limit of %zu MiB", path,
                          FILE_MAX_BYTES >> 20);
    }
  }
  rewind(f);
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
