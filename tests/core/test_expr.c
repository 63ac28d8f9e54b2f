/* Tests for core/expr: parsing (values, precedence, comments), error
 * messages with line:column, residuals and Jacobians against central
 * differences in double, the compiled graph against the double evaluation
 * (values and gradients), and the linear constraint distance graph. */
#include <glib.h>
#include <math.h>
#include <string.h>

#include "constraint.h"
#include "expr.h"

static void
parse_ok(CfExprSet *s, const char *text, int dim)
{
  CfError err;
  cf_error_clear(&err);
  CfStatus st = cf_expr_parse(s, text, strlen(text), dim, &err);
  if (st != CF_OK)
    g_error("parsing \"%s\": %s", text, err.msg);
}

/* Residual of the single equation of `text` at x. */
static double
residual1(const char *text, int dim, const double *x)
{
  CfExprSet s;
  parse_ok(&s, text, dim);
  g_assert_cmpint(s.n_eq, ==, 1);
  double *work = g_new(double, cf_expr_work_doubles(&s));
  double r;
  cf_expr_eval(&s, x, &r, NULL, work);
  g_free(work);
  cf_expr_set_clear(&s);
  return r;
}

static void
test_values(void)
{
  const double x[3] = { 3.0, -2.0, 0.5 };
  const struct { /* automatic: libm calls in the initialisers */
    const char *text;
    double want;
  } cases[] = {
    { "x0^2 + x1^2 = 1", 9 + 4 - 1 },
    { "-x0^2 = 0", -9 },                  /* unary minus binds looser than ^ */
    { "x0 = 2^3^2", 3 - 512 },            /* right-associative */
    { "x0 = 2^-1", 3 - 0.5 },
    { "x0**2 = 0", 9 },
    { "x1^3 = 0", -8 },                   /* integer power of a negative base */
    { "x1^-2 = 0", 0.25 },
    { "x0 - x1 - x2 = 0", 3 + 2 - 0.5 },  /* left-associative */
    { "x0 / x1 / x2 = 0", 3.0 / -2.0 / 0.5 },
    { "x0 + x1 * x2 = 0", 3 - 1 },
    { "(x0 + x1) * x2 = 0", 0.5 },
    { "x2 = 1e-3", 0.5 - 1e-3 },
    { "x2 = .5", 0 },
    { "x2 = 2.5E+1", 0.5 - 25 },
    { "x2 = 0.000125e3", 0.5 - 0.125 },
    { "sqrt(x0 + 1) = 0", 2 },
    { "exp(x2) + log(x0) = 0", exp(0.5) + log(3.0) },
    { "ln(x0) = 0", log(3.0) },
    { "sin(x0) * cos(x1) = 0", sin(3.0) * cos(-2.0) },
    { "abs(x1) = 0", 2 },
    { "pi * x2 = 0", M_PI * 0.5 },
    { "0 = x0", -3 },
    { "x0 = --x0", 0 },
    { "+x0 = -(-x0)", 0 },
    { "x0^(1/2) = 0", sqrt(3.0) },
    { "2 * 3 + x0 = 10 / 4", 6 + 3 - 2.5 },
    { "  x0   =   1   # trailing comment", 2 },
  };
  for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
    double r = residual1(cases[i].text, 3, x);
    if (!(fabs(r - cases[i].want) <= 1e-12 * (1 + fabs(cases[i].want))))
      g_error("\"%s\": residual %.17g, want %.17g", cases[i].text, r, cases[i].want);
  }
}

static void
test_lines_and_folding(void)
{
  CfExprSet s;
  parse_ok(&s, "# circle\n\n  x0^2 + x1^2 = 1  # unit\r\n\t\n# plane\nx2 = 2 * 3 - 1\n", 3);
  g_assert_cmpint(s.n_eq, ==, 2);
  g_assert_cmpint(s.line[0], ==, 3);
  g_assert_cmpint(s.line[1], ==, 6);
  g_assert_cmpint(s.dim, ==, 3);
  /* "2 * 3 - 1" folds to one number: the second equation is x2, 5, x2 - 5 */
  g_assert_cmpint(s.root[1] - s.first[1] + 1, ==, 3);
  const CfExprNode *five = &s.nodes[s.first[1] + 1];
  g_assert_cmpint(five->kind, ==, CF_EXPR_NUM);
  g_assert_cmpfloat(five->value, ==, 5.0);
  g_assert_cmpint(five->line, ==, 6);
  g_assert_cmpint(five->col, ==, 6);
  const double x[3] = { 0.6, 0.8, 5.0 };
  double r[2], *work = g_new(double, cf_expr_work_doubles(&s));
  cf_expr_eval(&s, x, r, NULL, work);
  g_assert_cmpfloat(fabs(r[0]), <, 1e-15);
  g_assert_cmpfloat(r[1], ==, 0.0);
  g_free(work);
  cf_expr_set_clear(&s);
  /* text without a final newline and with an explicit length */
  CfError err;
  g_assert_cmpint(cf_expr_parse(&s, "x0 = 1XXXX", 6, 1, &err), ==, CF_OK);
  g_assert_cmpint(s.n_eq, ==, 1);
  cf_expr_set_clear(&s);
}

static void
test_errors(void)
{
  static const struct {
    const char *text;
    int dim;
    CfStatus st;
    const char *msg; /* expected substring */
  } cases[] = {
    { "x0^2 + x1^2", 2, CF_ERR_PARSE, "1:12: expected '=' (each line is an equation lhs = rhs) but found the end of the line" },
    { "x0 = 1 = 2", 2, CF_ERR_PARSE, "1:8: a second '='" },
    { "y = 1", 2, CF_ERR_PARSE, "1:1: 'y': unknown name; the coordinates are x0..x1" },
    { "x0 + x7 = 1", 3, CF_ERR_PARSE, "1:6: x7: the data have 3 coordinates x0..x2" },
    { "x1 = 1", 1, CF_ERR_PARSE, "1:1: x1: the data have 1 coordinate x0" },
    { "x0 = (1 + x1", 2, CF_ERR_PARSE, "1:13: expected ')' to close the '(' at column 6 but found the end of the line" },
    { "x0 = 2x1", 2, CF_ERR_PARSE, "1:7: expected an operator (+ - * / ^) or the end of the line but found 'x1' (write * for a product" },
    { "2 x0 = 1", 2, CF_ERR_PARSE, "1:3: expected an operator (+ - * / ^) or '=' but found 'x0'" },
    { "x0 ^ x1 = 1", 2, CF_ERR_PARSE, "1:6: the exponent must be a constant" },
    { "x0 ^ -1e7 = 1", 2, CF_ERR_PARSE, "1:6: the exponent -1e+07 is too large" },
    { "1 + 2 = 3", 2, CF_ERR_PARSE, "1:1: the equation uses no coordinate x0..x1" },
    { "x0 = 1 / 0", 2, CF_ERR_PARSE, "1:8: this constant part evaluates to infinity" },
    { "x0 = sqrt(-1)", 2, CF_ERR_PARSE, "1:6: this constant part evaluates to NaN" },
    { "sqrt x0 = 1", 2, CF_ERR_PARSE, "1:6: expected '(' after the function sqrt but found 'x0'" },
    { "x0 = 1e", 2, CF_ERR_PARSE, "1:7: expected the digits of the exponent after 'e'" },
    { "x0 = 1e999", 2, CF_ERR_PARSE, "1:6: number too large" },
    { "x0 = 1 $ 2", 2, CF_ERR_PARSE, "1:8: unexpected character '$'" },
    { "x0 = \xc3\xa9", 2, CF_ERR_PARSE, "1:6: unexpected byte 0xc3 (only ASCII is allowed)" },
    { "x0 = 1\n\n  x1 = = 2", 2, CF_ERR_PARSE, "3:8: expected a number, a coordinate x0..x1, a function or '(' but found '='" },
    { "x0 + = 1", 2, CF_ERR_PARSE, "1:6: expected a number" },
    { "x0 = 1 # ok\nx1 = (x0 # comment", 2, CF_ERR_PARSE, "2:10: expected ')' to close the '(' at column 6 but found a comment" },
    { "", 2, CF_ERR_PARSE, "1:1: no equation" },
    { "# nothing\n\n", 2, CF_ERR_PARSE, "1:1: no equation" },
    { "x0 = 1", 0, CF_ERR_INVALID, "data dimension 0" },
  };
  for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
    CfExprSet s;
    CfError err;
    cf_error_clear(&err);
    CfStatus st = cf_expr_parse(&s, cases[i].text, strlen(cases[i].text), cases[i].dim, &err);
    if (st != cases[i].st || !strstr(err.msg, cases[i].msg))
      g_error("\"%s\": status %d, message \"%s\"; want %d, \"%s\"", cases[i].text, st, err.msg, cases[i].st,
              cases[i].msg);
    g_assert_cmpint(s.n_eq, ==, 0);
    g_assert_null(s.nodes);
  }
}

static void
test_depth_limit(void)
{
  GString *t = g_string_new("x0 = ");
  for (int i = 0; i < CF_EXPR_MAX_DEPTH - 2; i++)
    g_string_append_c(t, '(');
  g_string_append(t, "x1");
  for (int i = 0; i < CF_EXPR_MAX_DEPTH - 2; i++)
    g_string_append_c(t, ')');
  CfExprSet s;
  CfError err;
  g_assert_cmpint(cf_expr_parse(&s, t->str, t->len, 2, &err), ==, CF_OK);
  cf_expr_set_clear(&s);
  g_string_assign(t, "x0 = ");
  for (int i = 0; i < 1000; i++)
    g_string_append(t, "sin(");
  g_assert_cmpint(cf_expr_parse(&s, t->str, t->len, 2, &err), ==, CF_ERR_PARSE);
  g_assert_nonnull(strstr(err.msg, "nested too deeply"));
  g_string_free(t, TRUE);
}

/* Every function and operator, two equations, in 3-D. */
static const char *const grad_text =
  "x0^2 + x1^2 = 1 + sin(x2) * cos(x0) / (2 + x1^2)\n"
  "sqrt(x0^2 + 1) * exp(-x1 / 3) - log(2 + x2^2) + abs(x2 - 0.1) = x0^-2 + (x1 + 3)^1.5 - x0^3\n";

static void
test_jacobian_fd(void)
{
  CfExprSet s;
  parse_ok(&s, grad_text, 3);
  g_assert_cmpint(s.n_eq, ==, 2);
  CfRng rng;
  cf_rng_seed(&rng, 5);
  double *work = g_new(double, cf_expr_work_doubles(&s));
  for (int t = 0; t < 20; t++) {
    double x[3], r[2], J[6], rp[2], rm[2];
    for (int k = 0; k < 3; k++)
      x[k] = 2.0 * cf_rng_uniform(&rng) - 1.0;
    if (fabs(x[0]) < 0.2 || fabs(x[2] - 0.1) < 0.05)
      continue; /* away from x0^-2's pole and abs's kink */
    cf_expr_eval(&s, x, r, J, work);
    for (int k = 0; k < 3; k++) {
      const double h = 1e-6;
      double xp[3] = { x[0], x[1], x[2] }, xm[3] = { x[0], x[1], x[2] };
      xp[k] += h;
      xm[k] -= h;
      cf_expr_eval(&s, xp, rp, NULL, work);
      cf_expr_eval(&s, xm, rm, NULL, work);
      for (int j = 0; j < 2; j++) {
        double num = (rp[j] - rm[j]) / (2 * h);
        if (!(fabs(J[j * 3 + k] - num) <= 1e-6 * (1 + fabs(num))))
          g_error("dr%d/dx%d at (%g, %g, %g): %.12g, central difference %.12g", j, k, x[0], x[1], x[2],
                  J[j * 3 + k], num);
      }
    }
  }
  g_free(work);
  cf_expr_set_clear(&s);
}

/* Batch residuals/Jacobian/distance agree with the point evaluation; the
 * compiled graph agrees with both (float), and its backward pass gives the
 * Jacobian-vector product w^T J per row. */
static void
test_graph_matches(void)
{
  CfExprSet s;
  parse_ok(&s, grad_text, 3);
  enum { B = 16 };
  CfRng rng;
  cf_rng_seed(&rng, 6);
  float x[B * 3];
  for (int i = 0; i < B; i++)
    do
      for (int k = 0; k < 3; k++)
        x[i * 3 + k] = (float)(2.0 * cf_rng_uniform(&rng) - 1.0);
    while (fabsf(x[i * 3]) < 0.2f || fabsf(x[i * 3 + 2] - 0.1f) < 0.05f);
  double r[B * 2], J[B * 2 * 3], d[B];
  CfError err;
  g_assert_cmpint(cf_expr_residuals(&s, x, B, r, J, &err), ==, CF_OK);
  g_assert_cmpint(cf_expr_distance(&s, x, B, d, &err), ==, CF_OK);
  for (int i = 0; i < B; i++)
    g_assert_cmpfloat(fabs(d[i] - (fabs(r[2 * i]) + fabs(r[2 * i + 1]))), <, 1e-12);

  CfGraph *g = cf_graph_new();
  CfNode in = cf_input(g, B, 3, true);
  CfNode res = cf_expr_build(g, &s, in);
  g_assert_cmpint(res, >=, 0);
  g_assert_cmpint(cf_graph_rows(g, res), ==, B);
  g_assert_cmpint(cf_graph_cols(g, res), ==, 2);
  CfNode dist = cf_expr_build_distance(g, &s, in);
  CfNode w = cf_input(g, B, 2, false);
  CfNode loss = cf_sum_all(g, cf_mul(g, res, w));
  g_assert_cmpint(cf_graph_finalize(g), ==, CF_OK);
  memcpy(cf_graph_value(g, in), x, sizeof x);
  float *wv = cf_graph_value(g, w);
  for (int i = 0; i < B * 2; i++)
    wv[i] = (float)(2.0 * cf_rng_uniform(&rng) - 1.0);
  cf_graph_forward(g);
  const float *rv = cf_graph_value(g, res), *dv = cf_graph_value(g, dist);
  for (int i = 0; i < B * 2; i++)
    g_assert_cmpfloat(fabs(rv[i] - r[i]), <=, 1e-5 * (1 + fabs(r[i])));
  for (int i = 0; i < B; i++)
    g_assert_cmpfloat(fabs(dv[i] - d[i]), <=, 1e-5 * (1 + d[i]));
  cf_graph_backward(g, loss);
  const float *gx = cf_graph_grad(g, in);
  for (int i = 0; i < B; i++)
    for (int k = 0; k < 3; k++) {
      double want = wv[2 * i] * J[(i * 2) * 3 + k] + wv[2 * i + 1] * J[(i * 2 + 1) * 3 + k];
      if (!(fabs(gx[i * 3 + k] - want) <= 1e-4 * (1 + fabs(want))))
        g_error("graph gradient row %d, x%d: %.9g, double Jacobian gives %.9g", i, k, gx[i * 3 + k], want);
    }
  cf_graph_free(g);
  cf_expr_set_clear(&s);
}

/* Constants on either side of each operator compile to scalar ops. */
static void
test_graph_constant_operands(void)
{
  static const char *const texts[] = {
    "2 + x0 = x0 + 2 - 3", "2 - x0 = x0 - 2", "3 * x0 = x0 * 3", "3 / x0 = x0 / 4", "x0^1 = x0^0 + 2^2^0 + x1^2",
    "-(x0) = 1", "5 = x0",
  };
  for (size_t t = 0; t < G_N_ELEMENTS(texts); t++) {
    CfExprSet s;
    parse_ok(&s, texts[t], 2);
    CfGraph *g = cf_graph_new();
    CfNode in = cf_input(g, 3, 2, false);
    CfNode res = cf_expr_build(g, &s, in);
    g_assert_cmpint(cf_graph_finalize(g), ==, CF_OK);
    float x[6] = { 0.7f, -1.3f, 2.0f, 0.5f, -0.4f, 3.0f };
    memcpy(cf_graph_value(g, in), x, sizeof x);
    cf_graph_forward(g);
    double r[3];
    CfError err;
    g_assert_cmpint(cf_expr_residuals(&s, x, 3, r, NULL, &err), ==, CF_OK);
    for (int i = 0; i < 3; i++)
      if (!(fabs(cf_graph_value(g, res)[i] - r[i]) <= 1e-5 * (1 + fabs(r[i]))))
        g_error("\"%s\" row %d: graph %.9g, double %.9g", texts[t], i, cf_graph_value(g, res)[i], r[i]);
    cf_graph_free(g);
    cf_expr_set_clear(&s);
  }
}

/* ||A x - b|| as a graph: values against cf_constraint_violation, gradient
 * (A^T r / ||r||) against central differences. */
static void
test_lin_distance(void)
{
  const double A[2 * 3] = { 1, 1, 1, 1, -2, 0.5 };
  const double b[2] = { 1, -0.5 };
  CfConstraint c;
  cf_constraint_init(&c);
  CfError err;
  g_assert_cmpint(cf_constraint_set(&c, 2, 3, A, b, &err), ==, CF_OK);
  enum { B = 5 };
  CfGraph *g = cf_graph_new();
  CfNode in = cf_input(g, B, 3, true);
  CfLinDistance ld;
  CfNode d = cf_lin_distance_build(g, in, 2, 3, &ld);
  CfNode loss = cf_sum_all(g, d);
  g_assert_cmpint(cf_graph_finalize(g), ==, CF_OK);
  cf_lin_distance_load(g, &ld, &c);
  CfRng rng;
  cf_rng_seed(&rng, 8);
  float *x = cf_graph_value(g, in);
  for (int i = 0; i < B * 3; i++)
    x[i] = (float)(2.0 * cf_rng_uniform(&rng) - 1.0);
  /* the last row lies on the set */
  x[(B - 1) * 3 + 0] = 0.5f, x[(B - 1) * 3 + 1] = 0.5f, x[(B - 1) * 3 + 2] = 0.0f;
  double l2[B];
  cf_constraint_violation(&c, x, B, l2, NULL);
  g_assert_cmpfloat(l2[B - 1], <, 1e-7);
  cf_graph_forward(g);
  for (int i = 0; i < B; i++)
    g_assert_cmpfloat(fabs(cf_graph_value(g, d)[i] - l2[i]), <=, 2e-6 * (1 + l2[i]));
  cf_graph_backward(g, loss);
  float *gx = g_memdup2(cf_graph_grad(g, in), sizeof(float) * B * 3);
  for (int i = 0; i < B - 1; i++) /* not differentiable in the usual sense on the set */
    for (int k = 0; k < 3; k++) {
      float v = x[i * 3 + k];
      const double h = 1e-3;
      x[i * 3 + k] = (float)(v + h);
      cf_graph_forward(g);
      double lp = cf_graph_value(g, loss)[0];
      x[i * 3 + k] = (float)(v - h);
      cf_graph_forward(g);
      double lm = cf_graph_value(g, loss)[0];
      x[i * 3 + k] = v;
      double num = (lp - lm) / ((double)(float)(v + h) - (double)(float)(v - h));
      g_assert_cmpfloat(fabs(gx[i * 3 + k] - num), <=, 2e-3 * (1 + fabs(num)));
    }
  /* on the set the smoothed norm has a finite (zero) gradient */
  for (int k = 0; k < 3; k++)
    g_assert_true(isfinite(gx[(B - 1) * 3 + k]) && fabsf(gx[(B - 1) * 3 + k]) < 1.0f);
  g_free(gx);
  cf_graph_free(g);
  cf_constraint_clear(&c);
}

/* r(u) of the rewritten equations equals r(x) at x = scale .* u + shift, and
 * so does the Jacobian chain rule dr/du = dr/dx .* scale. */
static void
test_affine(void)
{
  const char *text = "x0^2 + x1^2 = 1\nsin(x2) * x0 = x1 / 3 + exp(x2)";
  CfExprSet s, t;
  parse_ok(&s, text, 3);
  parse_ok(&t, text, 3);
  const float scale[3] = { 2.0f, 1.0f, 0.5f }, shift[3] = { 0.0f, -1.5f, 0.25f };
  CfError err;
  g_assert_cmpint(cf_expr_set_affine(&t, scale, shift, &err), ==, CF_OK);
  g_assert_cmpint(t.n_eq, ==, 2);
  g_assert_cmpint(t.n_nodes, >, s.n_nodes);
  double *ws = g_new(double, cf_expr_work_doubles(&s)), *wt = g_new(double, cf_expr_work_doubles(&t));
  const double u[3] = { 0.3, -0.7, 1.1 };
  double x[3], rs[2], rt[2], Js[6], Jt[6];
  for (int k = 0; k < 3; k++)
    x[k] = scale[k] * u[k] + shift[k];
  cf_expr_eval(&s, x, rs, Js, ws);
  cf_expr_eval(&t, u, rt, Jt, wt);
  for (int j = 0; j < 2; j++) {
    g_assert_cmpfloat(fabs(rs[j] - rt[j]), <, 1e-12);
    for (int k = 0; k < 3; k++)
      g_assert_cmpfloat(fabs(Js[j * 3 + k] * scale[k] - Jt[j * 3 + k]), <, 1e-12);
  }
  g_free(ws);
  g_free(wt);
  cf_expr_set_clear(&s);
  cf_expr_set_clear(&t);
}

/* Gauss-Newton projection: onto the unit sphere it is the radial map
 * x / |x|; onto a plane the orthogonal projection; rows with no solution
 * stay as they were and are counted. */
static void
test_project(void)
{
  CfExprSet s;
  parse_ok(&s, "x0^2 + x1^2 + x2^2 = 1", 3);
  float x[3 * 50], want[3 * 50];
  guint32 seed = 7;
  for (int i = 0; i < 150; i++) {
    seed = seed * 1664525u + 1013904223u;
    x[i] = (float)((seed >> 8) / 16777216.0 * 4.0 - 2.0);
  }
  for (int i = 0; i < 50; i++) {
    double n = sqrt((double)x[3 * i] * x[3 * i] + (double)x[3 * i + 1] * x[3 * i + 1] + (double)x[3 * i + 2] * x[3 * i + 2]);
    for (int k = 0; k < 3; k++)
      want[3 * i + k] = (float)(x[3 * i + k] / n);
  }
  int failed = -1;
  CfError err;
  g_assert_cmpint(cf_expr_project(&s, x, 50, 1e-10, 50, &failed, &err), ==, CF_OK);
  g_assert_cmpint(failed, ==, 0);
  double worst = 0.0;
  for (int i = 0; i < 150; i++)
    worst = fmax(worst, fabs((double)x[i] - want[i]));
  g_test_message("sphere projection: max |x - x/|x|| = %.2e", worst);
  g_assert_cmpfloat(worst, <, 1e-6);
  cf_expr_set_clear(&s);

  parse_ok(&s, "x0 + 2*x1 - x2 = 3", 3);
  float p[3] = { 1.0f, 1.0f, 1.0f }; /* r = 1 + 2 - 1 - 3 = -1; a = (1,2,-1), |a|^2 = 6 */
  g_assert_cmpint(cf_expr_project(&s, p, 1, 1e-12, 20, &failed, &err), ==, CF_OK);
  g_assert_cmpint(failed, ==, 0);
  g_assert_cmpfloat(fabs(p[0] - (1.0 + 1.0 / 6)), <, 1e-6);
  g_assert_cmpfloat(fabs(p[1] - (1.0 + 2.0 / 6)), <, 1e-6);
  g_assert_cmpfloat(fabs(p[2] - (1.0 - 1.0 / 6)), <, 1e-6);
  cf_expr_set_clear(&s);

  parse_ok(&s, "x0^2 + 1 = 0", 2); /* no real solution */
  float q[4] = { 0.5f, 2.0f, -3.0f, 1.0f };
  g_assert_cmpint(cf_expr_project(&s, q, 2, 1e-8, 40, &failed, &err), ==, CF_OK);
  g_assert_cmpint(failed, ==, 2);
  g_assert_cmpfloat(q[0], ==, 0.5f);
  g_assert_cmpfloat(q[2], ==, -3.0f);
  cf_expr_set_clear(&s);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/expr/values", test_values);
  g_test_add_func("/expr/lines_and_folding", test_lines_and_folding);
  g_test_add_func("/expr/errors", test_errors);
  g_test_add_func("/expr/depth_limit", test_depth_limit);
  g_test_add_func("/expr/jacobian_fd", test_jacobian_fd);
  g_test_add_func("/expr/graph_matches", test_graph_matches);
  g_test_add_func("/expr/graph_constant_operands", test_graph_constant_operands);
  g_test_add_func("/expr/lin_distance", test_lin_distance);
  g_test_add_func("/expr/affine", test_affine);
  g_test_add_func("/expr/project", test_project);
  return g_test_run();
}
