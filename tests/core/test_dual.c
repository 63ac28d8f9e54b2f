/* Tests for core/dual (projected, resilient dual ascent; predicted shares)
 * and the denoiser's weighted terms used by dual training (violation of the
 * denoised prediction, teacher-student distillation, accumulation). */
#include <glib.h>
#include <math.h>
#include <string.h>

#include "ddpm.h"
#include "dual.h"
#include "optim.h"

static void
assert_invalid(CfStatus st, const CfError *err, const char *needle)
{
  g_assert_cmpint(st, ==, CF_ERR_INVALID);
  if (!strstr(err->msg, needle))
    g_error("error message \"%s\" does not mention \"%s\"", err->msg, needle);
}

static void
test_dual_invalid(void)
{
  CfDual d;
  CfError err = {0};
  double b[2] = {0.1, 0.2}, bad[2] = {0.1, -1.0};
  assert_invalid(cf_dual_init(&d, 0, b, 0.1, 0.0, 2, 100, &err), &err, "constraints");
  assert_invalid(cf_dual_init(&d, 2, b, -0.1, 0.0, 2, 100, &err), &err, "learning rate");
  assert_invalid(cf_dual_init(&d, 2, b, 0.1, -1.0, 2, 100, &err), &err, "gamma");
  assert_invalid(cf_dual_init(&d, 2, b, 0.1, 0.0, 0, 100, &err), &err, "primal steps");
  assert_invalid(cf_dual_init(&d, 2, b, 0.1, 0.0, 2, 0, &err), &err, "cap");
  assert_invalid(cf_dual_init(&d, 2, bad, 0.1, 0.0, 2, 100, &err), &err, "threshold 2");
  double nan_b[1] = {NAN};
  assert_invalid(cf_dual_init(&d, 1, nan_b, 0.1, 0.0, 2, 100, &err), &err, "threshold 1");
  cf_dual_clear(&d); /* cleared by the failed init: safe */
}

/* Plain ascent: lambda follows [lambda + eta (mean of N losses - b)]_+. */
static void
test_dual_plain(void)
{
  CfDual d;
  CfError err = {0};
  double b[2] = {0.5, 0.5};
  g_assert_cmpint(cf_dual_init(&d, 2, b, 0.25, 0.0, 2, 100, &err), ==, CF_OK);
  g_assert_cmpfloat(d.lambda[0], ==, 0.0);
  g_assert_true(isnan(cf_dual_slack(&d, 0)));
  bool stepped = true;
  double l1[2] = {1.0, 0.1}, l2[2] = {2.0, 0.3};
  g_assert_cmpint(cf_dual_observe(&d, l1, &stepped, &err), ==, CF_OK);
  g_assert_false(stepped);
  g_assert_cmpfloat(d.lambda[0], ==, 0.0);
  g_assert_cmpint(cf_dual_observe(&d, l2, &stepped, &err), ==, CF_OK);
  g_assert_true(stepped);
  /* means 1.5 and 0.2: lambda_0 = 0.25 * 1.0, lambda_1 = [0.25 * -0.3]_+ = 0 */
  g_assert_cmpfloat(fabs(d.lambda[0] - 0.25), <, 1e-15);
  g_assert_cmpfloat(d.lambda[1], ==, 0.0);
  g_assert_cmpfloat(fabs(cf_dual_slack(&d, 0) - 1.0), <, 1e-15);
  g_assert_cmpfloat(fabs(cf_dual_slack(&d, 1) + 0.3), <, 1e-15);
  g_assert_cmpint(d.dual_steps, ==, 1);
  /* A non-finite loss is refused and records nothing. */
  double lnan[2] = {NAN, 0.0};
  g_assert_cmpint(cf_dual_observe(&d, lnan, &stepped, &err), ==, CF_ERR_NUMERIC);
  g_assert_nonnull(strstr(err.msg, "constraint 1"));
  g_assert_cmpint(d.acc_n, ==, 0);
  cf_dual_reset(&d);
  g_assert_cmpfloat(d.lambda[0], ==, 0.0);
  g_assert_cmpint(d.dual_steps, ==, 0);
  cf_dual_clear(&d);
}

/* Resilient ascent with b = 0 and a constant loss L converges to L / (2 gamma). */
static void
test_dual_resilient_fixed_point(void)
{
  CfDual d;
  CfError err = {0};
  double b[1] = {0.0};
  const double gamma = 0.5, L = 0.3;
  g_assert_cmpint(cf_dual_init(&d, 1, b, 0.2, gamma, 1, 100, &err), ==, CF_OK);
  for (int i = 0; i < 500; i++)
    g_assert_cmpint(cf_dual_observe(&d, &L, NULL, &err), ==, CF_OK);
  g_assert_cmpfloat(fabs(d.lambda[0] - L / (2 * gamma)), <, 1e-9);
  cf_dual_clear(&d);
}

/* An unreachable threshold drives lambda to the cap, which is reported. */
static void
test_dual_cap(void)
{
  CfDual d;
  CfError err = {0};
  double b[1] = {0.5};
  const double L = 1.0; /* +0.5 per dual step */
  g_assert_cmpint(cf_dual_init(&d, 1, b, 1.0, 0.0, 1, 5.0, &err), ==, CF_OK);
  for (int i = 0; i < 4; i++)
    cf_dual_observe(&d, &L, NULL, &err);
  g_assert_false(cf_dual_capped(&d, 0, 1));
  for (int i = 0; i < 12; i++) /* from 2 to the cap 5 in 6 steps, then 6 more there */
    cf_dual_observe(&d, &L, NULL, &err);
  g_assert_cmpfloat(d.lambda[0], ==, 5.0);
  g_assert_true(cf_dual_capped(&d, 0, 7));
  g_assert_false(cf_dual_capped(&d, 0, 8));
  const double low = 0.0; /* satisfied again: the multiplier falls, the flag clears */
  cf_dual_observe(&d, &low, NULL, &err);
  g_assert_cmpfloat(d.lambda[0], ==, 4.5);
  g_assert_false(cf_dual_capped(&d, 0, 1));
  cf_dual_clear(&d);
}

static void
test_predicted_shares(void)
{
  const double pi[4] = {0.4, 0.4, 0.1, 0.1};
  const int cls[3] = {2, 3, -1};
  const double lambda[3] = {0.3, 0.1, 7.0};
  double s[4];
  cf_dual_predicted_shares(pi, 4, cls, lambda, 3, s);
  const double den = 1.4;
  g_assert_cmpfloat(fabs(s[0] - 0.4 / den), <, 1e-15);
  g_assert_cmpfloat(fabs(s[2] - 0.4 / den), <, 1e-15);
  g_assert_cmpfloat(fabs(s[3] - 0.2 / den), <, 1e-15);
  g_assert_cmpfloat(fabs(s[0] + s[1] + s[2] + s[3] - 1.0), <, 1e-15);
  cf_dual_predicted_shares(pi, 4, cls, lambda, 0, s); /* no constraint: the training shares */
  g_assert_cmpfloat(s[2], ==, 0.1);
  const double u[4] = {0.25, 0.25, 0.25, 0.25};
  g_assert_cmpfloat(fabs(cf_tv_distance(pi, u, 4) - 0.3), <, 1e-15);
}

/* ---- denoiser terms -------------------------------------------------------- */

static void
model_init(CfDdpm *m, int dim, int B, const CfConstraint *viol, CfRng *rng)
{
  CfDenoiserConfig cfg = {dim, 24, 2, 8};
  CfError err = {0};
  g_assert_cmpint(cf_ddpm_init(m, &cfg, CF_SCHEDULE_LINEAR, 100, &err), ==, CF_OK);
  cf_ddpm_randomize(m, rng);
  if (viol)
    g_assert_cmpint(cf_ddpm_set_violation(m, viol, &err), ==, CF_OK);
  g_assert_cmpint(cf_ddpm_prepare_train(m, B, &err), ==, CF_OK);
}

static void
fill_data(float *x, int n, int dim, CfRng *rng)
{
  cf_rng_fill_normal(rng, x, (size_t)n * dim);
}

static void
fill_w(float *w, int n, float v)
{
  for (int i = 0; i < n; i++)
    w[i] = v;
}

/* Weights 1/B on every data row = the plain training step (same draws, same
 * loss and gradient up to summation order); gradients are linear in the
 * weights. */
static void
test_accumulate_matches_step(void)
{
  const int dim = 3, B = 16;
  CfDdpm m;
  CfRng rng, r1, r2;
  cf_rng_seed(&rng, 5);
  model_init(&m, dim, B, NULL, &rng);
  float x0[16 * 3], w[16], row[16];
  fill_data(x0, B, dim, &rng);
  const size_t np = m.params.total;
  float *g_step = g_new(float, np), *g_a = g_new(float, np), *g_b = g_new(float, np);
  cf_rng_seed(&r1, 9);
  r2 = r1;
  float l_step = cf_ddpm_train_step(&m, x0, &r1);
  memcpy(g_step, m.params.grad, sizeof(float) * np);
  fill_w(w, B, 1.0f / B);
  CfDdpmTerms terms = {.x0 = x0, .n_data = B, .w = w};
  float total = cf_ddpm_accumulate(&m, &terms, &r2, true, row, NULL);
  g_assert_cmpfloat(fabs(total - l_step), <=, 1e-6 * l_step);
  double mean = 0;
  for (int i = 0; i < B; i++)
    mean += row[i] / (double)B;
  g_assert_cmpfloat(fabs(mean - l_step), <=, 1e-6 * l_step);
  double maxd = 0, maxg = 0;
  for (size_t i = 0; i < np; i++) {
    maxd = fmax(maxd, fabs(m.params.grad[i] - g_step[i]));
    maxg = fmax(maxg, fabs(g_step[i]));
  }
  g_assert_cmpfloat(maxd, <=, 1e-5 * maxg);
  /* weights a (first half) and b (second half) accumulated in two passes
   * = one pass with both */
  float wa[16], wb[16];
  for (int i = 0; i < B; i++) {
    wa[i] = i < B / 2 ? 0.3f : 0.0f;
    wb[i] = i < B / 2 ? 0.0f : 1.7f;
    w[i] = wa[i] + wb[i];
  }
  CfRng r = r1;
  terms.w = wa;
  cf_ddpm_accumulate(&m, &terms, &r, true, NULL, NULL);
  memcpy(g_a, m.params.grad, sizeof(float) * np);
  r = r1;
  terms.w = wb;
  cf_ddpm_accumulate(&m, &terms, &r, true, NULL, NULL);
  memcpy(g_b, m.params.grad, sizeof(float) * np);
  r = r1;
  terms.w = wa;
  cf_ddpm_accumulate(&m, &terms, &r, true, NULL, NULL);
  r = r1;
  terms.w = wb;
  cf_ddpm_accumulate(&m, &terms, &r, false, NULL, NULL); /* accumulates */
  float *acc = g_memdup2(m.params.grad, sizeof(float) * np);
  r = r1;
  terms.w = w;
  cf_ddpm_accumulate(&m, &terms, &r, true, NULL, NULL);
  maxd = maxg = 0;
  for (size_t i = 0; i < np; i++) {
    maxd = fmax(maxd, fabs(acc[i] - (g_a[i] + g_b[i])) + fabs(m.params.grad[i] - (g_a[i] + g_b[i])));
    maxg = fmax(maxg, fabs(g_a[i] + g_b[i]));
  }
  g_assert_cmpfloat(maxd, <=, 1e-5 * maxg);
  g_free(acc);
  g_free(g_step);
  g_free(g_a);
  g_free(g_b);
  cf_ddpm_clear(&m);
}

/* v_r equals abar/(1-abar) ||A x0_hat - k||^2 computed directly from the
 * network's epsilon, for data off the constraint and per-sample k; the
 * weighted total's gradient matches finite differences. */
static void
test_violation_term(void)
{
  const int dim = 3, B = 8;
  double A[6] = {1, 1, 1, 0.5, -1, 0.25}, b[2] = {0.7, -0.2};
  CfConstraint c;
  cf_constraint_init(&c);
  CfError err = {0};
  g_assert_cmpint(cf_constraint_set(&c, 2, 3, A, b, &err), ==, CF_OK);
  CfDdpm m;
  CfRng rng;
  cf_rng_seed(&rng, 17);
  model_init(&m, dim, B, &c, &rng);
  float x0[8 * 3], k[8 * 2], w[8], wv[8], rv[8];
  fill_data(x0, B, dim, &rng);
  fill_data(k, B, 2, &rng);
  fill_w(w, B, 0.0f);
  for (int i = 0; i < B; i++)
    wv[i] = 0.1f * (float)(i + 1);
  CfRng r0 = rng;
  CfDdpmTerms terms = {.x0 = x0, .n_data = B, .w = w, .w_viol = wv, .k = k};
  float total = cf_ddpm_accumulate(&m, &terms, &rng, true, NULL, rv);
  const float *xt = cf_graph_value(m.train, m.in_x), *tt = cf_graph_value(m.train, m.in_t);
  const float *eps = cf_graph_value(m.train, m.out_eps);
  double want_total = 0;
  for (int r = 0; r < B; r++) {
    double ab = m.sched.alpha_bar[(int)tt[r]], direct = 0;
    for (int i = 0; i < 2; i++) {
      double ax = 0;
      for (int j = 0; j < dim; j++) {
        double x0h = (xt[r * dim + j] - sqrt(1 - ab) * eps[r * dim + j]) / sqrt(ab);
        ax += A[i * dim + j] * x0h;
      }
      direct += ab / (1 - ab) * (ax - k[r * 2 + i]) * (ax - k[r * 2 + i]);
    }
    g_assert_cmpfloat(fabs(rv[r] - direct), <=, 2e-3 * direct + 1e-5);
    want_total += wv[r] * direct;
  }
  g_assert_cmpfloat(fabs(total - want_total), <=, 2e-3 * want_total);

  /* d total / d theta against central differences (same draws each time) */
  const size_t np = m.params.total;
  float *grad = g_new(float, np);
  memcpy(grad, m.params.grad, sizeof(float) * np);
  const size_t probe[4] = {0, np / 3, np / 2, np - 1};
  for (int q = 0; q < 4; q++) {
    size_t i = probe[q];
    float keep = m.params.value[i];
    const float h = 1e-2f;
    CfRng rr = r0;
    m.params.value[i] = keep + h;
    float vp = cf_ddpm_accumulate(&m, &terms, &rr, true, NULL, NULL);
    rr = r0;
    m.params.value[i] = keep - h;
    float vm = cf_ddpm_accumulate(&m, &terms, &rr, true, NULL, NULL);
    m.params.value[i] = keep;
    double fd = ((double)vp - vm) / (2.0 * h);
    g_assert_cmpfloat(fabs(fd - grad[i]), <=, 2e-2 * (fabs(fd) + fabs(grad[i])) + 1e-3 * (1 + want_total));
  }
  g_free(grad);
  cf_ddpm_clear(&m);
  cf_constraint_clear(&c);
}

/* Teacher rows: a student identical to its teacher has zero error on them; a
 * perturbed student has a positive one that training on them lowers. */
static void
test_distill(void)
{
  const int dim = 2, B = 32, nd = 8;
  CfDdpm m;
  CfRng rng;
  cf_rng_seed(&rng, 23);
  model_init(&m, dim, B, NULL, &rng);
  CfDdpmEval teacher;
  CfError err = {0};
  g_assert_cmpint(cf_ddpm_eval_init(&teacher, &m, 64, &err), ==, CF_OK);
  float x0[32 * 2], w[32], row[32];
  fill_data(x0, B, dim, &rng);
  for (int i = 0; i < B; i++)
    w[i] = i < nd ? 0.0f : 1.0f / (B - nd); /* only the teacher rows count */
  CfDdpmTerms terms = {.x0 = x0, .n_data = nd, .teacher = cf_ddpm_eval_eps, .teacher_user = &teacher, .w = w};
  float loss = cf_ddpm_accumulate(&m, &terms, &rng, true, row, NULL);
  g_assert_cmpfloat(loss, <=, 1e-10);
  for (int i = nd; i < B; i++)
    g_assert_cmpfloat(row[i], <=, 1e-10);
  g_assert_cmpfloat(row[0], >, 0.0); /* data rows are ordinary denoising rows */
  g_assert_cmpfloat(cf_grad_norm(m.params.grad, m.params.total), <=, 1e-5);
  for (size_t i = 0; i < m.params.total; i += 7)
    m.params.value[i] += 0.05f;
  CfAdam opt;
  CfAdamConfig ac = cf_adam_default_config();
  g_assert_cmpint(cf_adam_init(&opt, m.params.total, &ac), ==, CF_OK);
  CfRng fixed = rng, r = fixed;
  float before = cf_ddpm_accumulate(&m, &terms, &r, true, NULL, NULL);
  g_assert_cmpfloat(before, >, 1e-6);
  for (int s = 0; s < 200; s++) {
    cf_ddpm_accumulate(&m, &terms, &rng, true, NULL, NULL);
    cf_adam_step(&opt, m.params.value, m.params.grad, 1e-3f);
  }
  r = fixed;
  float after = cf_ddpm_accumulate(&m, &terms, &r, true, NULL, NULL);
  g_test_message("distillation loss %.3g -> %.3g", before, after);
  g_assert_cmpfloat(after, <, 0.5f * before);
  cf_adam_clear(&opt);
  cf_ddpm_eval_clear(&teacher);
  cf_ddpm_clear(&m);
}

/* Dual training on a linear constraint: with the violation term under a
 * multiplier the model's denoised predictions violate A x = b less than
 * without it (same seeds, same steps), and the multiplier is positive. */
static double
train_line(bool dual, double *lambda_out)
{
  const int dim = 2, B = 64;
  double A[2] = {1, 1}, b[1] = {0};
  CfConstraint c;
  cf_constraint_init(&c);
  CfError err = {0};
  g_assert_cmpint(cf_constraint_set(&c, 1, 2, A, b, &err), ==, CF_OK);
  CfDdpm m;
  CfRng rng;
  cf_rng_seed(&rng, 31);
  model_init(&m, dim, B, &c, &rng);
  CfAdam opt;
  CfAdamConfig ac = cf_adam_default_config();
  g_assert_cmpint(cf_adam_init(&opt, m.params.total, &ac), ==, CF_OK);
  CfDual d;
  double thr[1] = {0.0};
  g_assert_cmpint(cf_dual_init(&d, 1, thr, 0.5, 0.0, 2, 100, &err), ==, CF_OK);
  float x0[64 * 2], w[64], wv[64], rv[64];
  fill_w(w, B, 1.0f / B);
  double tail = 0;
  const int steps = 1500;
  for (int s = 0; s < steps; s++) {
    for (int i = 0; i < B; i++) { /* points on x0 + x1 = 0, bimodal along it */
      float u = (float)(cf_rng_uniform(&rng) < 0.5 ? -1.0 : 1.0) + 0.1f * (float)cf_rng_normal(&rng);
      x0[2 * i] = u;
      x0[2 * i + 1] = -u;
    }
    fill_w(wv, B, dual ? (float)d.lambda[0] / B : 0.0f);
    CfDdpmTerms terms = {.x0 = x0, .n_data = B, .w = w, .w_viol = wv};
    cf_ddpm_accumulate(&m, &terms, &rng, true, NULL, rv);
    double v = 0;
    for (int i = 0; i < B; i++)
      v += rv[i] / B;
    if (dual)
      cf_dual_observe(&d, &v, NULL, &err);
    cf_adam_step(&opt, m.params.value, m.params.grad, 2e-3f);
    if (s >= steps - 300)
      tail += v / 300.0;
  }
  *lambda_out = d.lambda[0];
  cf_dual_clear(&d);
  cf_adam_clear(&opt);
  cf_ddpm_clear(&m);
  cf_constraint_clear(&c);
  return tail;
}

static void
test_dual_reduces_violation(void)
{
  double l_none, l_dual;
  double v_none = train_line(false, &l_none);
  double v_dual = train_line(true, &l_dual);
  g_test_message("mean violation term over the last 300 steps: none %.4g, dual %.4g (lambda %.3g)", v_none, v_dual,
                 l_dual);
  g_assert_cmpfloat(l_none, ==, 0.0);
  g_assert_cmpfloat(l_dual, >, 0.0);
  g_assert_cmpfloat(v_dual, <, 0.7 * v_none);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/dual/invalid", test_dual_invalid);
  g_test_add_func("/dual/plain", test_dual_plain);
  g_test_add_func("/dual/resilient-fixed-point", test_dual_resilient_fixed_point);
  g_test_add_func("/dual/cap", test_dual_cap);
  g_test_add_func("/dual/predicted-shares", test_predicted_shares);
  g_test_add_func("/dual/ddpm/accumulate", test_accumulate_matches_step);
  g_test_add_func("/dual/ddpm/violation-term", test_violation_term);
  g_test_add_func("/dual/ddpm/distill", test_distill);
  g_test_add_func("/dual/ddpm/reduces-violation", test_dual_reduces_violation);
  return g_test_run();
}
