/* Constraint equations: a bounded recursive-descent parser into a flat AST
 * (children before parents), evaluation and reverse-mode gradients in double
 * on that tape, and compilation into an autodiff graph. See expr.h. */
#include "expr.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- set ------------------------------------------------------------------------ */

void
cf_expr_set_init(CfExprSet *s)
{
  memset(s, 0, sizeof *s);
}

void
cf_expr_set_clear(CfExprSet *s)
{
  free(s->nodes);
  free(s->first);
  free(s->root);
  free(s->line);
  memset(s, 0, sizeof *s);
}

/* ---- the operations, shared by constant folding and the tape ----------------- */

/* Value of node kind k with operand values a, b (v: the exponent of POW). */
static double
apply(CfExprKind k, double a, double b, double v)
{
  switch (k) {
  case CF_EXPR_NUM: return v;
  case CF_EXPR_VAR: return a;
  case CF_EXPR_NEG: return -a;
  case CF_EXPR_ADD: return a + b;
  case CF_EXPR_SUB: return a - b;
  case CF_EXPR_MUL: return a * b;
  case CF_EXPR_DIV: return a / b;
  case CF_EXPR_POW: return pow(a, v); /* exact sign for integer v and a < 0 */
  case CF_EXPR_SQRT: return sqrt(a);
  case CF_EXPR_EXP: return exp(a);
  case CF_EXPR_LOG: return log(a);
  case CF_EXPR_SIN: return sin(a);
  case CF_EXPR_COS: return cos(a);
  case CF_EXPR_ABS: return fabs(a);
  }
  return NAN;
}

/* ---- lexer ---------------------------------------------------------------------- */

typedef enum {
  T_END, /* end of line or start of a comment */
  T_NUM,
  T_IDENT,
  T_PLUS,
  T_MINUS,
  T_STAR,
  T_SLASH,
  T_POW, /* ^ or ** */
  T_LP,
  T_RP,
  T_EQ,
  T_BAD, /* a character that starts no token */
} TokKind;

typedef struct {
  TokKind kind;
  size_t start, len; /* byte range in the text */
  double num;
} Tok;

typedef struct {
  const char *text;
  size_t len;
  size_t pos;        /* next unread byte */
  size_t line_start; /* first byte of the current line */
  size_t line_end;   /* the '\n' ending it, or len */
  int line;
  int depth;
  int dim;
  Tok tok; /* lookahead */
  CfExprSet *s;
  int cap_nodes, cap_eq;
  CfError *err;
  CfStatus st; /* first error; parsing stops at it */
} Parser;

static int
col_of(const Parser *p, size_t at)
{
  return (int)(at - p->line_start) + 1;
}

static bool
is_digit(char c)
{
  return c >= '0' && c <= '9';
}

static bool
is_ident_start(char c)
{
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool
is_ident_char(char c)
{
  return is_ident_start(c) || is_digit(c);
}

/* Quotes the token (at most 24 bytes, non-printable bytes as '?') into buf. */
static const char *
tok_text(const Parser *p, const Tok *t, char *buf, size_t cap)
{
  if (t->kind == T_END) {
    bool comment = t->start < p->line_end && p->text[t->start] == '#';
    snprintf(buf, cap, "%s", comment ? "a comment" : "the end of the line");
    return buf;
  }
  size_t n = t->len > 24 ? 24 : t->len;
  size_t k = 0;
  buf[k++] = '\'';
  for (size_t i = 0; i < n && k + 5 < cap; i++) {
    unsigned char c = (unsigned char)p->text[t->start + i];
    buf[k++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
  }
  if (n < t->len && k + 5 < cap) {
    memcpy(buf + k, "...", 3);
    k += 3;
  }
  buf[k++] = '\'';
  buf[k] = '\0';
  return buf;
}

static bool
fail(Parser *p, size_t at, CfStatus st, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Records the first error as "line:col: message"; returns false. */
static bool
fail(Parser *p, size_t at, CfStatus st, const char *fmt, ...)
{
  if (p->st != CF_OK)
    return false;
  char msg[CF_ERROR_MSG_LEN];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  p->st = cf_error_set(p->err, st, "%d:%d: %s", p->line, col_of(p, at), msg);
  return false;
}

/* Number: digits [. digits] [(e|E) [+-] digits], or . digits. The significant
 * digits and the decimal exponent are rewritten as "<digits>e<exp>" for strtod,
 * which then rounds correctly and never sees the locale's decimal point. */
static bool
lex_number(Parser *p, Tok *t)
{
  const char *s = p->text;
  size_t i = t->start, end = p->line_end;
  char buf[64];
  size_t nb = 0;
  long dexp = 0;
  bool any = false;
  while (i < end && is_digit(s[i])) {
    any = true;
    if (nb < 40 && (nb > 0 || s[i] != '0'))
      buf[nb++] = s[i];
    else if (nb >= 40)
      dexp++; /* digits beyond 40 only shift the exponent */
    i++;
  }
  if (i < end && s[i] == '.') {
    i++;
    while (i < end && is_digit(s[i])) {
      any = true;
      if (nb < 40 && (nb > 0 || s[i] != '0')) {
        buf[nb++] = s[i];
        dexp--;
      } else if (nb == 0) {
        dexp--; /* leading zeros after the point */
      }
      i++;
    }
  }
  if (!any)
    return fail(p, t->start, CF_ERR_PARSE, "expected digits in the number");
  if (i < end && (s[i] == 'e' || s[i] == 'E')) {
    size_t e_at = i++;
    bool neg = false;
    if (i < end && (s[i] == '+' || s[i] == '-'))
      neg = s[i++] == '-';
    if (i >= end || !is_digit(s[i]))
      return fail(p, e_at, CF_ERR_PARSE, "expected the digits of the exponent after '%c'", s[e_at]);
    long e = 0;
    while (i < end && is_digit(s[i])) {
      if (e < 100000000L)
        e = e * 10 + (s[i] - '0');
      i++;
    }
    dexp += neg ? -e : e;
  }
  t->len = i - t->start;
  if (nb == 0) {
    t->num = 0.0;
    return true;
  }
  int k = snprintf(buf + nb, sizeof buf - nb, "e%ld", dexp);
  CF_ASSERT(k > 0 && (size_t)k < sizeof buf - nb);
  double v = strtod(buf, NULL);
  if (!isfinite(v))
    return fail(p, t->start, CF_ERR_PARSE, "number too large for a double");
  t->num = v;
  return true;
}

/* Reads the next token into p->tok. */
static bool
advance(Parser *p)
{
  const char *s = p->text;
  while (p->pos < p->line_end && (s[p->pos] == ' ' || s[p->pos] == '\t' || s[p->pos] == '\r'))
    p->pos++;
  Tok *t = &p->tok;
  t->start = p->pos;
  t->len = 1;
  t->num = 0.0;
  if (p->pos >= p->line_end || s[p->pos] == '#') {
    t->kind = T_END;
    t->len = 0;
    return true;
  }
  char c = s[p->pos];
  if (is_digit(c) || (c == '.' && p->pos + 1 < p->line_end && is_digit(s[p->pos + 1]))) {
    t->kind = T_NUM;
    if (!lex_number(p, t))
      return false;
  } else if (is_ident_start(c)) {
    t->kind = T_IDENT;
    size_t i = p->pos;
    while (i < p->line_end && is_ident_char(s[i]))
      i++;
    t->len = i - p->pos;
  } else {
    switch (c) {
    case '+': t->kind = T_PLUS; break;
    case '-': t->kind = T_MINUS; break;
    case '/': t->kind = T_SLASH; break;
    case '^': t->kind = T_POW; break;
    case '(': t->kind = T_LP; break;
    case ')': t->kind = T_RP; break;
    case '=': t->kind = T_EQ; break;
    case '*':
      t->kind = T_STAR;
      if (p->pos + 1 < p->line_end && s[p->pos + 1] == '*') {
        t->kind = T_POW;
        t->len = 2;
      }
      break;
    default: {
      t->kind = T_BAD;
      unsigned char u = (unsigned char)c;
      if (u >= 0x20 && u < 0x7f)
        return fail(p, p->pos, CF_ERR_PARSE, "unexpected character '%c'", c);
      return fail(p, p->pos, CF_ERR_PARSE, "unexpected byte 0x%02x (only ASCII is allowed)", u);
    }
    }
  }
  p->pos = t->start + t->len;
  return true;
}

/* ---- AST building with constant folding ----------------------------------------- */

static bool
is_num(const Parser *p, int i)
{
  return p->s->nodes[i].kind == CF_EXPR_NUM;
}

static int
push_node(Parser *p, CfExprKind k, int a, int b, double v, size_t at)
{
  CfExprSet *s = p->s;
  if (s->n_nodes >= CF_EXPR_MAX_NODES) {
    fail(p, at, CF_ERR_PARSE, "the equations are too long (more than %d terms in all)", CF_EXPR_MAX_NODES);
    return -1;
  }
  if (s->n_nodes == p->cap_nodes) {
    int cap = p->cap_nodes ? 2 * p->cap_nodes : 64;
    if (cap > CF_EXPR_MAX_NODES)
      cap = CF_EXPR_MAX_NODES;
    CfExprNode *nodes = realloc(s->nodes, (size_t)cap * sizeof *nodes);
    if (!nodes) {
      fail(p, at, CF_ERR_NOMEM, "out of memory");
      return -1;
    }
    s->nodes = nodes;
    p->cap_nodes = cap;
  }
  CfExprNode *n = &s->nodes[s->n_nodes];
  n->kind = k;
  n->a = a;
  n->b = b;
  n->var = -1;
  n->value = v;
  n->line = p->line;
  n->col = col_of(p, at);
  return s->n_nodes++;
}

/* Node k(a, b) (b = -1 for unary kinds; v = exponent of POW). When every
 * operand is a number the node is folded: constant subtrees are a single NUM
 * node, the last ones pushed, so folding pops them and pushes the result. */
static int
make(Parser *p, CfExprKind k, int a, int b, double v, size_t at)
{
  if (a < 0 || (b < 0 && (k == CF_EXPR_ADD || k == CF_EXPR_SUB || k == CF_EXPR_MUL || k == CF_EXPR_DIV)))
    return -1;
  bool fold = is_num(p, a) && (b < 0 || is_num(p, b));
  if (!fold)
    return push_node(p, k, a, b, v, at);
  CfExprSet *s = p->s;
  double va = s->nodes[a].value, vb = b >= 0 ? s->nodes[b].value : 0.0;
  double r = apply(k, va, vb, v);
  if (!isfinite(r)) {
    fail(p, at, CF_ERR_PARSE, "this constant part evaluates to %s (division by zero, log or sqrt of a negative "
         "number, or overflow)", isnan(r) ? "NaN" : "infinity");
    return -1;
  }
  CF_ASSERT(b < 0 ? a == s->n_nodes - 1 : (a == s->n_nodes - 2 && b == s->n_nodes - 1));
  /* the folded node keeps the position of its leftmost operand */
  int line = s->nodes[a].line, col = s->nodes[a].col;
  s->n_nodes = a;
  int n = push_node(p, CF_EXPR_NUM, -1, -1, r, at);
  if (n >= 0) {
    s->nodes[n].line = line;
    s->nodes[n].col = col;
  }
  return n;
}

/* ---- recursive descent -------------------------------------------------------------- */

static int parse_sum(Parser *p);
static int parse_unary(Parser *p);

static const struct {
  const char *name;
  CfExprKind kind;
} functions[] = {
  { "sqrt", CF_EXPR_SQRT }, { "exp", CF_EXPR_EXP }, { "log", CF_EXPR_LOG }, { "ln", CF_EXPR_LOG },
  { "sin", CF_EXPR_SIN },   { "cos", CF_EXPR_COS }, { "abs", CF_EXPR_ABS },
};

static bool
tok_is(const Parser *p, const char *word)
{
  size_t n = strlen(word);
  return p->tok.len == n && memcmp(p->text + p->tok.start, word, n) == 0;
}

/* "x0..x2" or "x0" for the message about coordinates. */
static void
coord_range(const Parser *p, char *buf, size_t cap)
{
  if (p->dim == 1)
    snprintf(buf, cap, "x0");
  else
    snprintf(buf, cap, "x0..x%d", p->dim - 1);
}

/* Closing parenthesis of a '(' at open_at. */
static bool
expect_rp(Parser *p, size_t open_at)
{
  if (p->tok.kind == T_RP)
    return advance(p);
  char q[40];
  return fail(p, p->tok.start, CF_ERR_PARSE, "expected ')' to close the '(' at column %d but found %s",
              col_of(p, open_at), tok_text(p, &p->tok, q, sizeof q));
}

static int
parse_primary(Parser *p)
{
  Tok t = p->tok;
  char q[40], range[32];
  coord_range(p, range, sizeof range);
  switch (t.kind) {
  case T_NUM: {
    int n = push_node(p, CF_EXPR_NUM, -1, -1, t.num, t.start);
    return n >= 0 && advance(p) ? n : -1;
  }
  case T_LP: {
    if (!advance(p))
      return -1;
    int n = parse_sum(p);
    return n >= 0 && expect_rp(p, t.start) ? n : -1;
  }
  case T_IDENT: {
    const char *id = p->text + t.start;
    int idlen = (int)t.len;
    if (id[0] == 'x' && t.len >= 2) {
      bool digits = true;
      for (size_t i = 1; i < t.len; i++)
        digits = digits && is_digit(id[i]);
      if (digits) {
        long k = 0;
        for (size_t i = 1; i < t.len && k <= CF_EXPR_MAX_DIM; i++)
          k = k * 10 + (id[i] - '0');
        if (k >= p->dim) {
          fail(p, t.start, CF_ERR_PARSE, "%.*s: the data have %d coordinate%s %s", idlen > 24 ? 24 : idlen, id,
               p->dim, p->dim == 1 ? "" : "s", range);
          return -1;
        }
        int n = push_node(p, CF_EXPR_VAR, -1, -1, 0.0, t.start);
        if (n < 0)
          return -1;
        p->s->nodes[n].var = (int)k;
        return advance(p) ? n : -1;
      }
    }
    if (tok_is(p, "pi")) {
      int n = push_node(p, CF_EXPR_NUM, -1, -1, M_PI, t.start);
      return n >= 0 && advance(p) ? n : -1;
    }
    for (size_t f = 0; f < sizeof functions / sizeof functions[0]; f++) {
      if (!tok_is(p, functions[f].name))
        continue;
      if (!advance(p))
        return -1;
      if (p->tok.kind != T_LP) {
        fail(p, p->tok.start, CF_ERR_PARSE, "expected '(' after the function %s but found %s", functions[f].name,
             tok_text(p, &p->tok, q, sizeof q));
        return -1;
      }
      size_t open_at = p->tok.start;
      if (!advance(p))
        return -1;
      int a = parse_sum(p);
      if (a < 0 || !expect_rp(p, open_at))
        return -1;
      return make(p, functions[f].kind, a, -1, 0.0, t.start);
    }
    fail(p, t.start, CF_ERR_PARSE, "%s: unknown name; the coordinates are %s, the functions sqrt exp log sin cos "
         "abs, and pi is a constant", tok_text(p, &t, q, sizeof q), range);
    return -1;
  }
  default:
    fail(p, t.start, CF_ERR_PARSE, "expected a number, a coordinate %s, a function or '(' but found %s", range,
         tok_text(p, &t, q, sizeof q));
    return -1;
  }
}

/* power := primary (('^' | '**') unary)?; the exponent must fold to a number. */
static int
parse_power(Parser *p)
{
  int a = parse_primary(p);
  if (a < 0 || p->tok.kind != T_POW)
    return a;
  size_t at = p->tok.start;
  if (!advance(p))
    return -1;
  size_t e_at = p->tok.start;
  int e = parse_unary(p);
  if (e < 0)
    return -1;
  if (!is_num(p, e)) {
    fail(p, e_at, CF_ERR_PARSE, "the exponent must be a constant (a number or a constant expression such as "
         "(1/3)), not an expression of the coordinates");
    return -1;
  }
  double v = p->s->nodes[e].value;
  if (!(fabs(v) <= 1e6)) { /* the graph takes it as a float */
    fail(p, e_at, CF_ERR_PARSE, "the exponent %g is too large (at most 1e6 in magnitude)", v);
    return -1;
  }
  p->s->n_nodes = e; /* the exponent lives in the POW node */
  return make(p, CF_EXPR_POW, a, -1, v, at);
}

static int
parse_unary(Parser *p)
{
  if (++p->depth > CF_EXPR_MAX_DEPTH) {
    fail(p, p->tok.start, CF_ERR_PARSE, "expression nested too deeply (more than %d levels of parentheses, "
         "signs, powers or function calls)", CF_EXPR_MAX_DEPTH);
    return -1;
  }
  int n;
  if (p->tok.kind == T_MINUS || p->tok.kind == T_PLUS) {
    Tok t = p->tok;
    if (!advance(p))
      return -1;
    n = parse_unary(p);
    if (n >= 0 && t.kind == T_MINUS)
      n = make(p, CF_EXPR_NEG, n, -1, 0.0, t.start);
  } else {
    n = parse_power(p);
  }
  p->depth--;
  return n;
}

static int
parse_product(Parser *p)
{
  int a = parse_unary(p);
  while (a >= 0 && (p->tok.kind == T_STAR || p->tok.kind == T_SLASH)) {
    Tok t = p->tok;
    if (!advance(p))
      return -1;
    int b = parse_unary(p);
    a = make(p, t.kind == T_STAR ? CF_EXPR_MUL : CF_EXPR_DIV, a, b, 0.0, t.start);
  }
  return a;
}

static int
parse_sum(Parser *p)
{
  int a = parse_product(p);
  while (a >= 0 && (p->tok.kind == T_PLUS || p->tok.kind == T_MINUS)) {
    Tok t = p->tok;
    if (!advance(p))
      return -1;
    int b = parse_product(p);
    a = make(p, t.kind == T_PLUS ? CF_EXPR_ADD : CF_EXPR_SUB, a, b, 0.0, t.start);
  }
  return a;
}

/* After a complete operand: what may follow, and a hint for "2x0" or "2(x0)". */
static bool
fail_after_operand(Parser *p, const char *allowed)
{
  char q[40];
  const char *hint = (p->tok.kind == T_IDENT || p->tok.kind == T_NUM || p->tok.kind == T_LP)
                         ? " (write * for a product, e.g. 2*x0)"
                         : "";
  return fail(p, p->tok.start, CF_ERR_PARSE, "expected an operator (+ - * / ^)%s but found %s%s", allowed,
              tok_text(p, &p->tok, q, sizeof q), hint);
}

static bool
push_equation(Parser *p, int first, int root)
{
  CfExprSet *s = p->s;
  if (s->n_eq == CF_EXPR_MAX_EQUATIONS)
    return fail(p, p->line_start, CF_ERR_PARSE, "too many equations (at most %d)", CF_EXPR_MAX_EQUATIONS);
  if (s->n_eq == p->cap_eq) {
    int cap = p->cap_eq ? 2 * p->cap_eq : 8;
    int *f = realloc(s->first, (size_t)cap * sizeof *f);
    if (f)
      s->first = f;
    int *r = realloc(s->root, (size_t)cap * sizeof *r);
    if (r)
      s->root = r;
    int *l = realloc(s->line, (size_t)cap * sizeof *l);
    if (l)
      s->line = l;
    if (!f || !r || !l)
      return fail(p, p->line_start, CF_ERR_NOMEM, "out of memory");
    p->cap_eq = cap;
  }
  s->first[s->n_eq] = first;
  s->root[s->n_eq] = root;
  s->line[s->n_eq] = p->line;
  s->n_eq++;
  return true;
}

/* One line: nothing (blank or comment) or lhs '=' rhs. */
static bool
parse_line(Parser *p)
{
  if (!advance(p))
    return false;
  if (p->tok.kind == T_END)
    return true;
  char q[40];
  int first = p->s->n_nodes;
  p->depth = 0;
  int lhs = parse_sum(p);
  if (lhs < 0)
    return false;
  if (p->tok.kind != T_EQ) {
    if (p->tok.kind == T_END)
      return fail(p, p->tok.start, CF_ERR_PARSE, "expected '=' (each line is an equation lhs = rhs) but found %s",
                  tok_text(p, &p->tok, q, sizeof q));
    return fail_after_operand(p, " or '='");
  }
  size_t eq_at = p->tok.start;
  if (!advance(p))
    return false;
  int rhs = parse_sum(p);
  if (rhs < 0)
    return false;
  if (p->tok.kind == T_EQ)
    return fail(p, p->tok.start, CF_ERR_PARSE, "a second '=' (write one equation per line)");
  if (p->tok.kind != T_END)
    return fail_after_operand(p, " or the end of the line");
  if (is_num(p, lhs) && is_num(p, rhs)) {
    char range[32];
    coord_range(p, range, sizeof range);
    return fail(p, p->line_start, CF_ERR_PARSE, "the equation uses no coordinate %s", range);
  }
  int root = push_node(p, CF_EXPR_SUB, lhs, rhs, 0.0, eq_at);
  return root >= 0 && push_equation(p, first, root);
}

CfStatus
cf_expr_parse(CfExprSet *s, const char *text, size_t len, int dim, CfError *err)
{
  CF_ASSERT(s);
  cf_expr_set_init(s);
  if (dim < 1 || dim > CF_EXPR_MAX_DIM)
    return cf_error_set(err, CF_ERR_INVALID, "data dimension %d is outside 1..%d", dim, CF_EXPR_MAX_DIM);
  if (!text && len > 0)
    return cf_error_set(err, CF_ERR_INVALID, "no text");
  if (len > CF_EXPR_MAX_TEXT)
    return cf_error_set(err, CF_ERR_PARSE, "the equations are too long (%zu bytes; at most %zu)", len,
                        CF_EXPR_MAX_TEXT);
  Parser p = { .text = text, .len = len, .dim = dim, .s = s, .err = err, .st = CF_OK };
  s->dim = dim;
  size_t at = 0;
  for (int line = 1; at <= len && p.st == CF_OK; line++) {
    const char *nl = at < len ? memchr(text + at, '\n', len - at) : NULL;
    p.line = line;
    p.line_start = p.pos = at;
    p.line_end = nl ? (size_t)(nl - text) : len;
    if (!parse_line(&p))
      break;
    if (!nl)
      break;
    at = p.line_end + 1;
  }
  if (p.st == CF_OK && s->n_eq == 0)
    p.st = cf_error_set(err, CF_ERR_PARSE, "1:1: no equation (write one per line, e.g. x0^2 + x1^2 = 1)");
  if (p.st != CF_OK) {
    cf_expr_set_clear(s);
    return p.st;
  }
  return CF_OK;
}

/* ---- evaluation in double ---------------------------------------------------------- */

size_t
cf_expr_work_doubles(const CfExprSet *s)
{
  return 2 * (size_t)s->n_nodes;
}

void
cf_expr_eval(const CfExprSet *s, const double *x, double *r, double *J, double *work)
{
  double *val = work, *adj = work + s->n_nodes;
  for (int i = 0; i < s->n_nodes; i++) {
    const CfExprNode *n = &s->nodes[i];
    double a = n->kind == CF_EXPR_VAR ? x[n->var] : (n->a >= 0 ? val[n->a] : 0.0);
    double b = n->b >= 0 ? val[n->b] : 0.0;
    val[i] = apply(n->kind, a, b, n->value);
  }
  for (int j = 0; j < s->n_eq; j++)
    r[j] = val[s->root[j]];
  if (!J)
    return;
  /* reverse mode per equation over its own node range: adj[i] = dr_j/d(node i) */
  memset(J, 0, (size_t)s->n_eq * (size_t)s->dim * sizeof *J);
  for (int j = 0; j < s->n_eq; j++) {
    double *Jj = J + (size_t)j * s->dim;
    int lo = s->first[j], hi = s->root[j];
    memset(adj + lo, 0, (size_t)(hi - lo + 1) * sizeof *adj);
    adj[hi] = 1.0;
    for (int i = hi; i >= lo; i--) {
      const CfExprNode *n = &s->nodes[i];
      double g = adj[i];
      if (g == 0.0 && n->kind != CF_EXPR_VAR)
        continue;
      double va = n->a >= 0 ? val[n->a] : 0.0, vb = n->b >= 0 ? val[n->b] : 0.0, v = val[i];
      switch (n->kind) {
      case CF_EXPR_NUM: break;
      case CF_EXPR_VAR: Jj[n->var] += g; break;
      case CF_EXPR_NEG: adj[n->a] -= g; break;
      case CF_EXPR_ADD: adj[n->a] += g; adj[n->b] += g; break;
      case CF_EXPR_SUB: adj[n->a] += g; adj[n->b] -= g; break;
      case CF_EXPR_MUL: adj[n->a] += g * vb; adj[n->b] += g * va; break;
      case CF_EXPR_DIV: adj[n->a] += g / vb; adj[n->b] -= g * v / vb; break; /* d(a/b)/db = -(a/b)/b */
      case CF_EXPR_POW: /* p a^(p-1); p = 0 is a constant */
        if (n->value != 0.0)
          adj[n->a] += g * n->value * pow(va, n->value - 1.0);
        break;
      case CF_EXPR_SQRT: adj[n->a] += g * 0.5 / v; break;
      case CF_EXPR_EXP: adj[n->a] += g * v; break;
      case CF_EXPR_LOG: adj[n->a] += g / va; break;
      case CF_EXPR_SIN: adj[n->a] += g * cos(va); break;
      case CF_EXPR_COS: adj[n->a] -= g * sin(va); break;
      case CF_EXPR_ABS: adj[n->a] += va > 0 ? g : (va < 0 ? -g : 0.0); break;
      }
    }
  }
}

CfStatus
cf_expr_residuals(const CfExprSet *s, const float *x, int B, double *r, double *J, CfError *err)
{
  CF_ASSERT(s && s->n_eq > 0 && B >= 0);
  double *work = cf_alloc_array(cf_expr_work_doubles(s) + (size_t)s->dim, sizeof(double));
  if (!work)
    return cf_error_set(err, CF_ERR_NOMEM, "out of memory evaluating %d equations", s->n_eq);
  double *xd = work + cf_expr_work_doubles(s);
  for (int i = 0; i < B; i++) {
    for (int k = 0; k < s->dim; k++)
      xd[k] = x[(size_t)i * s->dim + k];
    cf_expr_eval(s, xd, r + (size_t)i * s->n_eq, J ? J + (size_t)i * s->n_eq * s->dim : NULL, work);
  }
  free(work);
  return CF_OK;
}

CfStatus
cf_expr_distance(const CfExprSet *s, const float *x, int B, double *d, CfError *err)
{
  CF_ASSERT(s && s->n_eq > 0 && B >= 0);
  double *r = cf_alloc_array((size_t)s->n_eq, sizeof(double));
  double *work = cf_alloc_array(cf_expr_work_doubles(s) + (size_t)s->dim, sizeof(double));
  if (!r || !work) {
    free(r);
    free(work);
    return cf_error_set(err, CF_ERR_NOMEM, "out of memory evaluating %d equations", s->n_eq);
  }
  double *xd = work + cf_expr_work_doubles(s);
  for (int i = 0; i < B; i++) {
    for (int k = 0; k < s->dim; k++)
      xd[k] = x[(size_t)i * s->dim + k];
    cf_expr_eval(s, xd, r, NULL, work);
    double sum = 0.0;
    for (int j = 0; j < s->n_eq; j++)
      sum += fabs(r[j]);
    d[i] = sum;
  }
  free(r);
  free(work);
  return CF_OK;
}

/* ---- graph compilation -------------------------------------------------------------- */

/* A compiled AST node: a graph node, or a number (NUM operands become scalar
 * ops of their partner; folding guarantees that every other node depends on a
 * coordinate). */
typedef struct {
  CfNode node;
  double num;
} Compiled;

static CfNode
compile_node(CfGraph *g, const CfExprNode *n, const Compiled *c, CfNode *slices, CfNode x)
{
  switch (n->kind) {
  case CF_EXPR_NUM:
    return -1; /* not a graph node */
  case CF_EXPR_VAR:
    if (slices[n->var] < 0)
      slices[n->var] = cf_slice_cols(g, x, n->var, 1);
    return slices[n->var];
  default:
    break;
  }
  CfNode a = c[n->a].node;
  CfNode b = n->b >= 0 ? c[n->b].node : -1;
  float ca = (float)c[n->a].num, cb = n->b >= 0 ? (float)c[n->b].num : 0.0f;
  switch (n->kind) {
  case CF_EXPR_NEG: return cf_scale(g, a, -1.0f);
  case CF_EXPR_ADD:
    if (a >= 0 && b >= 0)
      return cf_add(g, a, b);
    return a >= 0 ? cf_add_scalar(g, a, cb) : cf_add_scalar(g, b, ca);
  case CF_EXPR_SUB:
    if (a >= 0 && b >= 0)
      return cf_sub(g, a, b);
    return a >= 0 ? cf_add_scalar(g, a, -cb) : cf_add_scalar(g, cf_scale(g, b, -1.0f), ca);
  case CF_EXPR_MUL:
    if (a >= 0 && b >= 0)
      return cf_mul(g, a, b);
    return a >= 0 ? cf_scale(g, a, cb) : cf_scale(g, b, ca);
  case CF_EXPR_DIV:
    if (a >= 0 && b >= 0)
      return cf_div(g, a, b);
    if (a >= 0)
      return cf_scale(g, a, (float)(1.0 / c[n->b].num));
    return cf_scale(g, cf_pow_const(g, b, -1.0f), ca); /* c / b = c b^-1 */
  case CF_EXPR_POW:
    return n->value == 1.0 ? a : cf_pow_const(g, a, (float)n->value);
  case CF_EXPR_SQRT: return cf_sqrt(g, a);
  case CF_EXPR_EXP: return cf_exp(g, a);
  case CF_EXPR_LOG: return cf_log(g, a);
  case CF_EXPR_SIN: return cf_sin(g, a);
  case CF_EXPR_COS: return cf_cos(g, a);
  case CF_EXPR_ABS: return cf_abs(g, a);
  default: return -1;
  }
}

CfNode
cf_expr_build(CfGraph *g, const CfExprSet *s, CfNode x)
{
  CF_ASSERT(g && s && s->n_eq > 0);
  CF_ASSERT(cf_graph_cols(g, x) == s->dim);
  Compiled *c = cf_alloc_array((size_t)s->n_nodes, sizeof *c);
  CfNode *slices = cf_alloc_array((size_t)s->dim, sizeof *slices);
  CfNode out = -1;
  if (!c || !slices)
    goto done;
  for (int k = 0; k < s->dim; k++)
    slices[k] = -1;
  for (int j = 0; j < s->n_eq; j++) {
    for (int i = s->first[j]; i <= s->root[j]; i++) {
      const CfExprNode *n = &s->nodes[i];
      c[i].num = n->kind == CF_EXPR_NUM ? n->value : 0.0;
      c[i].node = compile_node(g, n, c, slices, x);
      if (n->kind != CF_EXPR_NUM && c[i].node < 0) {
        out = -1;
        goto done;
      }
    }
    CfNode r = c[s->root[j]].node;
    out = j == 0 ? r : cf_concat_cols(g, out, r);
    if (out < 0)
      goto done;
  }
done:
  free(c);
  free(slices);
  return out;
}

CfNode
cf_expr_build_distance(CfGraph *g, const CfExprSet *s, CfNode x)
{
  CfNode r = cf_expr_build(g, s, x);
  if (r < 0)
    return -1;
  return cf_sum_rows(g, cf_abs(g, r));
}

CfNode
cf_lin_distance_build(CfGraph *g, CfNode x, int m, int n, CfLinDistance *out)
{
  CF_ASSERT(g && out && m > 0 && n > 0 && cf_graph_cols(g, x) == n);
  out->m = m;
  out->n = n;
  out->At = cf_input(g, n, m, false);
  out->negb = cf_input(g, 1, m, false);
  if (out->At < 0 || out->negb < 0)
    return -1;
  CfNode r = cf_bias_add(g, cf_matmul(g, x, out->At, false, false), out->negb); /* (B,m) = x A^T - b */
  const float delta = CF_LIN_DISTANCE_DELTA;
  CfNode s = cf_add_scalar(g, cf_sum_rows(g, cf_square(g, r)), delta * delta);
  return cf_add_scalar(g, cf_sqrt(g, s), -delta);
}

void
cf_lin_distance_load(CfGraph *g, const CfLinDistance *ld, const CfConstraint *c)
{
  CF_ASSERT(c->m == ld->m && c->n == ld->n);
  float *At = cf_graph_value(g, ld->At), *nb = cf_graph_value(g, ld->negb);
  for (int i = 0; i < c->m; i++) {
    for (int k = 0; k < c->n; k++)
      At[(size_t)k * c->m + i] = (float)c->A[(size_t)i * c->n + k];
    nb[i] = (float)-c->b[i];
  }
}

/* ---- change of coordinates and projection ------------------------------------------ */

CfStatus
cf_expr_set_affine(CfExprSet *s, const float *scale, const float *shift, CfError *err)
{
  CF_ASSERT(s && scale && shift);
  /* each coordinate node becomes (scale_k * u_k) + shift_k: up to 4 more nodes */
  size_t cap = (size_t)s->n_nodes * 5;
  CfExprNode *nodes = cf_alloc_array(cap, sizeof *nodes);
  int *map = cf_alloc_array((size_t)s->n_nodes, sizeof *map);
  if (!nodes || !map) {
    free(nodes);
    free(map);
    return cf_error_set(err, CF_ERR_NOMEM, "out of memory rewriting %d equations", s->n_eq);
  }
  int n = 0;
  for (int j = 0; j < s->n_eq; j++) {
    int first = n;
    for (int i = s->first[j]; i <= s->root[j]; i++) {
      CfExprNode v = s->nodes[i];
      v.a = v.a >= 0 ? map[v.a] : -1;
      v.b = v.b >= 0 ? map[v.b] : -1;
      if (v.kind != CF_EXPR_VAR) {
        nodes[n] = v;
        map[i] = n++;
        continue;
      }
      double sc = scale[v.var], sh = shift[v.var];
      nodes[n] = v;
      int at = n++;
      if (sc != 1.0) {
        nodes[n] = (CfExprNode){CF_EXPR_NUM, -1, -1, 0, sc, v.line, v.col};
        nodes[n + 1] = (CfExprNode){CF_EXPR_MUL, n, at, 0, 0.0, v.line, v.col};
        at = n + 1;
        n += 2;
      }
      if (sh != 0.0) {
        nodes[n] = (CfExprNode){CF_EXPR_NUM, -1, -1, 0, sh, v.line, v.col};
        nodes[n + 1] = (CfExprNode){CF_EXPR_ADD, at, n, 0, 0.0, v.line, v.col};
        at = n + 1;
        n += 2;
      }
      map[i] = at;
    }
    s->first[j] = first;
    s->root[j] = map[s->root[j]];
  }
  free(map);
  free(s->nodes);
  s->nodes = nodes;
  s->n_nodes = n;
  return CF_OK;
}

/* Solves the SPD system M d = r (k x k, row-major, overwritten) by Cholesky;
 * FALSE if M is not numerically positive definite. */
static bool
small_cholesky_solve(double *M, double *r, int k)
{
  for (int j = 0; j < k; j++) {
    double d = M[j * k + j];
    for (int p = 0; p < j; p++)
      d -= M[j * k + p] * M[j * k + p];
    if (!(d > 0.0))
      return false;
    d = sqrt(d);
    M[j * k + j] = d;
    for (int i = j + 1; i < k; i++) {
      double v = M[i * k + j];
      for (int p = 0; p < j; p++)
        v -= M[i * k + p] * M[j * k + p];
      M[i * k + j] = v / d;
    }
  }
  for (int i = 0; i < k; i++) { /* L y = r */
    for (int p = 0; p < i; p++)
      r[i] -= M[i * k + p] * r[p];
    r[i] /= M[i * k + i];
  }
  for (int i = k - 1; i >= 0; i--) { /* L^T d = y */
    for (int p = i + 1; p < k; p++)
      r[i] -= M[p * k + i] * r[p];
    r[i] /= M[i * k + i];
  }
  return true;
}

CfStatus
cf_expr_project(const CfExprSet *s, float *x, int B, double tol, int max_iter, int *n_failed, CfError *err)
{
  CF_ASSERT(s && s->n_eq > 0 && B >= 0 && max_iter >= 1);
  const int k = s->n_eq, d = s->dim;
  size_t nw = cf_expr_work_doubles(s) + 2 * (size_t)d + (size_t)k * d + (size_t)k * k + 2 * (size_t)k;
  double *w = cf_alloc_array(nw, sizeof(double));
  if (!w)
    return cf_error_set(err, CF_ERR_NOMEM, "out of memory projecting onto %d equations", k);
  double *work = w, *xd = w + cf_expr_work_doubles(s), *xt = xd + d, *J = xt + d, *M = J + (size_t)k * d,
         *r = M + (size_t)k * k, *dl = r + k;
  int failed = 0;
  for (int i = 0; i < B; i++) {
    float *row = x + (size_t)i * d;
    for (int c = 0; c < d; c++)
      xd[c] = row[c];
    bool ok = false;
    for (int it = 0; it < max_iter; it++) {
      cf_expr_eval(s, xd, r, J, work);
      double rmax = 0.0;
      for (int j = 0; j < k; j++)
        rmax = fmax(rmax, fabs(r[j]));
      if (!(rmax == rmax) || isinf(rmax))
        break;
      if (rmax <= tol) {
        ok = true;
        break;
      }
      /* minimum-norm Gauss-Newton step: dx = J^T (J J^T + mu I)^{-1} r,
       * mu a tiny relative ridge for rank-deficient J (e.g. a circle's centre) */
      double tr = 0.0;
      for (int a = 0; a < k; a++)
        for (int b = 0; b <= a; b++) {
          double v = 0.0;
          for (int c = 0; c < d; c++)
            v += J[(size_t)a * d + c] * J[(size_t)b * d + c];
          M[a * k + b] = M[b * k + a] = v;
          if (a == b)
            tr += v;
        }
      double mu = 1e-12 * (tr > 0.0 ? tr : 1.0);
      for (int a = 0; a < k; a++) {
        M[a * k + a] += mu;
        dl[a] = r[a];
      }
      if (!small_cholesky_solve(M, dl, k))
        break;
      /* halve the step until the residual does not grow (damped Newton) */
      double r0 = 0.0;
      for (int j = 0; j < k; j++)
        r0 += r[j] * r[j];
      double t = 1.0;
      for (int h = 0; h < 30; h++, t *= 0.5) {
        for (int c = 0; c < d; c++) {
          double v = 0.0;
          for (int a = 0; a < k; a++)
            v += J[(size_t)a * d + c] * dl[a];
          xt[c] = xd[c] - t * v;
        }
        cf_expr_eval(s, xt, r, NULL, work);
        double r1 = 0.0;
        for (int j = 0; j < k; j++)
          r1 += r[j] * r[j];
        if (r1 <= r0 || h == 29)
          break;
      }
      memcpy(xd, xt, sizeof(double) * d);
    }
    if (!ok) {
      cf_expr_eval(s, xd, r, NULL, work);
      double rmax = 0.0;
      for (int j = 0; j < k; j++)
        rmax = fmax(rmax, fabs(r[j]));
      ok = rmax <= tol;
    }
    if (ok)
      for (int c = 0; c < d; c++)
        row[c] = (float)xd[c];
    else
      failed++;
  }
  free(w);
  if (n_failed)
    *n_failed = failed;
  return CF_OK;
}
