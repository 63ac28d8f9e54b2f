/* `conform bench`: speed figures printed as name<TAB>value<TAB>unit<TAB>note.
 * Matrix-bound workloads also print NAME-gflops, NAME-peak-fraction
 * (achieved / OpenBLAS's sgemm peak measured in the same process) and
 * NAME-gemm-fraction (achieved / the peak of the engine's own cf_gemm, which
 * on AVX-512 CPUs is the faster of the two), and every workload its peak
 * resident memory NAME-peak-rss. */
#define G_LOG_DOMAIN "conform"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "conform-cli.h"
#include "cgauss.h"
#include "constraint.h"
#include "ddpm.h"
#include "expr.h"
#include "gemm.h"
#include "namm.h"
#include "optim.h"
#include "rng.h"

typedef struct {
  gboolean quick;
  double peak_gflops;      /* cblas_sgemm */
  double gemm_peak_gflops; /* cf_gemm */
} Bench;

static double
now_s(void)
{
  return (double)g_get_monotonic_time() / 1e6;
}

static void
emit(const char *name, double value, const char *unit, const char *note)
{
  printf("%s\t%.4g\t%s\t%s\n", name, value, unit, note ? note : "");
  fflush(stdout);
}

/* Peak RSS since the last reset (Linux: VmHWM, reset through clear_refs). */
static void
rss_reset(void)
{
  FILE *f = fopen("/proc/self/clear_refs", "w");
  if (f) {
    fputs("5", f);
    fclose(f);
  }
}

static double
rss_peak_mib(void)
{
  FILE *f = fopen("/proc/self/status", "r");
  if (!f)
    return NAN;
  char line[256];
  double kib = NAN;
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "VmHWM: %lf kB", &kib) == 1)
      break;
  fclose(f);
  return kib / 1024.0;
}

static void
emit_matrix(const Bench *b, const char *name, double gflops)
{
  g_autofree char *n1 = g_strdup_printf("%s-gflops", name);
  g_autofree char *n2 = g_strdup_printf("%s-peak-fraction", name);
  g_autofree char *n3 = g_strdup_printf("%s-gemm-fraction", name);
  emit(n1, gflops, "GFLOP/s", NULL);
  emit(n2, gflops / b->peak_gflops, "ratio", "achieved / sgemm-peak");
  emit(n3, gflops / b->gemm_peak_gflops, "ratio", "achieved / gemm-peak");
}

static void
emit_rss(const char *name)
{
  g_autofree char *n = g_strdup_printf("%s-peak-rss", name);
  emit(n, rss_peak_mib(), "MiB", NULL);
}

static void
bench_sgemm(Bench *b)
{
  const int N = 1536;
  float *A = cf_alloc_floats((size_t)N * N), *B = cf_alloc_floats((size_t)N * N), *C = cf_alloc_floats((size_t)N * N);
  CfRng rng;
  cf_rng_seed(&rng, 1);
  cf_rng_fill_normal(&rng, A, (size_t)N * N);
  cf_rng_fill_normal(&rng, B, (size_t)N * N);
  double best = 0;
  int reps = b->quick ? 3 : 8;
  for (int r = 0; r < reps; r++) {
    double t0 = now_s();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, N, N, 1.0f, A, N, B, N, 0.0f, C, N);
    double dt = now_s() - t0;
    best = MAX(best, 2.0 * N * N * (double)N / dt / 1e9);
  }
  b->peak_gflops = best;
  g_autofree char *note = g_strdup_printf("%dx%dx%d, best of %d, %d BLAS threads", N, N, N, reps,
                                          openblas_get_num_threads());
  emit("sgemm-peak", best, "GFLOP/s", note);
  /* The engine's own products (ops, projection): best over two squares, the
   * larger one out of L2. */
  double gbest = 0;
  for (int s = 0; s < 2; s++) {
    const int n = s == 0 ? 512 : N;
    for (int r = 0; r < reps; r++) {
      double t0 = now_s();
      int inner = s == 0 ? 8 : 1;
      for (int q = 0; q < inner; q++)
        cf_gemm(C, n, A, n, B, n, n, n, n, false, false, 0.0f);
      double dt = (now_s() - t0) / inner;
      gbest = MAX(gbest, 2.0 * n * n * (double)n / dt / 1e9);
    }
  }
  b->gemm_peak_gflops = gbest;
  g_autofree char *gnote = g_strdup_printf("cf_gemm (%s), best of 512^3 and %d^3, one thread",
                                           cf_gemm_native_active() ? "AVX-512 kernel" : "cblas_sgemm", N);
  emit("gemm-peak", gbest, "GFLOP/s", gnote);
  cf_free_aligned(A);
  cf_free_aligned(B);
  cf_free_aligned(C);
}

/* One step as the engine does it: loss + backward, global norm, Adam with
 * clipping at norm 1 fused in. */
static void
train_step(CfDdpm *m, CfAdam *adam, const float *x0, CfRng *rng)
{
  cf_ddpm_train_step(m, x0, rng);
  double gn = cf_grad_norm(m->params.grad, m->params.total);
  cf_adam_step_scaled(adam, m->params.value, m->params.grad, 1e-4f, cf_clip_scale(gn, 1.0));
}

/* An MLP denoiser of dim -> width x depth -> dim with a time embedding of temb. */
static CfDenoiserConfig
mlp_config(int dim, int width, int depth, int temb)
{
  return (CfDenoiserConfig){.dim = dim, .width = width, .depth = depth, .temb_dim = temb};
}

/* The image presets' U-Net on size x size images (base 32, 2 levels, temb 64). */
static CfDenoiserConfig
unet_config(int size)
{
  return (CfDenoiserConfig){.dim = size * size, .temb_dim = 64, .arch = CF_ARCH_UNET, .img_c = 1, .img_h = size,
                            .img_w = size, .unet_base = 32, .unet_levels = 2};
}

/* "MLP [dim+temb] -> width x depth -> dim" or "U-Net HxW, base b, L levels". */
static char *
denoiser_desc(const CfDenoiserConfig *dc)
{
  if (dc->arch == CF_ARCH_UNET)
    return g_strdup_printf("U-Net %dx%d, base %d, %d levels", dc->img_h, dc->img_w, dc->unet_base, dc->unet_levels);
  return g_strdup_printf("MLP [%d+%d] -> %dx%d -> %d", dc->dim, dc->temb_dim, dc->width, dc->depth, dc->dim);
}

/* Forward FLOPs of the denoiser for a batch of B. */
static double
forward_flops(const CfDdpm *m, int B)
{
  return m->cfg.arch == CF_ARCH_UNET ? cf_unet_flops(&m->net.unet, B) : cf_mlp_flops(&m->net.mlp, B);
}

/* Trains a denoiser (MLP or U-Net) on random data for a fixed wall time
 * (after warm-up). */
static void
bench_ddpm_train(Bench *b, const char *name, const CfDenoiserConfig *dc, int B)
{
  rss_reset();
  CfDdpm m;
  CfError err;
  const int dim = dc->dim;
  if (cf_ddpm_init(&m, dc, CF_SCHEDULE_LINEAR, 1000, &err) != CF_OK || cf_ddpm_prepare_train(&m, B, &err) != CF_OK) {
    fprintf(stderr, "conform bench: %s\n", err.msg);
    return;
  }
  CfRng rng;
  cf_rng_seed(&rng, 2);
  cf_ddpm_randomize(&m, &rng);
  CfAdam adam;
  CfAdamConfig ac = cf_adam_default_config();
  CF_ASSERT(cf_adam_init(&adam, m.params.total, &ac) == CF_OK);
  float *x0 = cf_alloc_floats((size_t)B * dim);
  cf_rng_fill_normal(&rng, x0, (size_t)B * dim);
  double budget = b->quick ? 0.5 : 3.0;
  long steps = 0;
  for (int w = 0; w < 3; w++) { /* warm-up: page in arenas, start BLAS threads */
    train_step(&m, &adam, x0, &rng);
  }
  /* a U-Net step takes a second: check the clock after every step, and
   * take at least 5 (quick: 1) */
  const int chunk = dc->arch == CF_ARCH_UNET ? 1 : 10;
  const long min_steps = b->quick ? 1 : 5;
  double t0 = now_s(), dt;
  do {
    for (int k = 0; k < chunk; k++)
      train_step(&m, &adam, x0, &rng);
    steps += chunk;
    dt = now_s() - t0;
  } while (dt < budget || steps < min_steps);
  double sps = (double)steps / dt;
  g_autofree char *desc = denoiser_desc(dc);
  g_autofree char *note = g_strdup_printf("dim %d, %s, batch %d, Adam + clipping; %ld steps", dim, desc, B, steps);
  emit(name, sps, "steps/s", note);
  emit_matrix(b, name, sps * cf_ddpm_train_flops(&m, B) / 1e9);
  emit_rss(name);
  cf_free_aligned(x0);
  cf_adam_clear(&adam);
  cf_ddpm_clear(&m);
}

/* DDIM with 50 steps from an untrained denoiser (the cost does not depend
 * on the weights), n samples evaluated in chunks of `chunk` as the app's
 * sampler does. */
static void
bench_ddim_sample(Bench *b, const char *name, const CfDenoiserConfig *dc, int n, int chunk, const char *unit)
{
  rss_reset();
  CfDdpm m;
  CfError err;
  const int dim = dc->dim;
  CF_ASSERT(cf_ddpm_init(&m, dc, CF_SCHEDULE_LINEAR, 1000, &err) == CF_OK);
  CfRng rng;
  cf_rng_seed(&rng, 3);
  cf_ddpm_randomize(&m, &rng);
  CfDdpmEval ev;
  CF_ASSERT(cf_ddpm_eval_init(&ev, &m, chunk, &err) == CF_OK);
  cf_ddpm_eval_load(&ev, m.params.value);
  float *out = cf_alloc_floats((size_t)n * dim);
  CfSamplerConfig sc = {CF_SAMPLER_DDIM, 50, 0.0f, 0.0f};
  double t0 = now_s();
  CfStatus st = cf_ddpm_sample(&m.sched, &sc, dim, n, cf_ddpm_eval_eps, &ev, NULL, NULL, &rng, out, NULL, NULL, NULL,
                               NULL, &err);
  double dt = now_s() - t0;
  CF_ASSERT(st == CF_OK);
  g_autofree char *desc = denoiser_desc(dc);
  g_autofree char *note = g_strdup_printf("DDIM 50 steps, %d samples of dim %d in chunks of %d, %s", n, dim, chunk,
                                          desc);
  emit(name, n / dt, unit, note);
  /* Forward FLOPs only: 50 passes of the denoiser (over whole chunks) */
  emit_matrix(b, name, 50.0 * forward_flops(&m, (n + chunk - 1) / chunk * chunk) / dt / 1e9);
  emit_rss(name);
  cf_free_aligned(out);
  cf_ddpm_eval_clear(&ev);
  cf_ddpm_clear(&m);
}

static void
bench_projection(Bench *b)
{
  rss_reset();
  const int n = 784, m = 196;
  const int B = b->quick ? 20000 : 100000;
  CfRng rng;
  cf_rng_seed(&rng, 4);
  double *A = g_new(double, (gsize)m * n), *bb = g_new(double, m);
  for (int i = 0; i < m * n; i++)
    A[i] = cf_rng_normal(&rng);
  for (int i = 0; i < m; i++)
    bb[i] = cf_rng_normal(&rng);
  CfConstraint c;
  cf_constraint_init(&c);
  CfError err;
  CF_ASSERT(cf_constraint_set(&c, m, n, A, bb, &err) == CF_OK);
  CfProjector p;
  cf_projector_init(&p);
  CF_ASSERT(cf_projector_setup(&p, &c, &err) == CF_OK);
  float *x = cf_alloc_floats((size_t)B * n);
  cf_rng_fill_normal(&rng, x, (size_t)B * n);
  CF_ASSERT(cf_projector_reserve(&p, B) == CF_OK);
  cf_project(&p, x, 1000); /* warm-up */
  double t0 = now_s();
  cf_project(&p, x, B);
  double dt = now_s() - t0;
  double *l2 = g_new(double, 1000);
  cf_constraint_violation(&c, x, 1000, l2, NULL);
  double worst = 0;
  for (int i = 0; i < 1000; i++)
    worst = MAX(worst, l2[i]);
  g_autofree char *note = g_strdup_printf("%d samples, n = %d, m = %d, 2 sgemms; max residual %.2g", B, n, m, worst);
  emit("projection", B / dt, "samples/s", note);
  emit_matrix(b, "projection", 4.0 * B * (double)n * m / dt / 1e9);
  emit_rss("projection");
  g_free(l2);
  g_free(A);
  g_free(bb);
  cf_free_aligned(x);
  cf_projector_clear(&p);
  cf_constraint_clear(&c);
}

/* The constrained-Gaussian layer on a dense random A: forward (per-sample
 * S = A diag(s) A^T by SYRK, Cholesky), exact sample, backward through the
 * Marginal Expectation estimator. FLOPs counted: SYRK m^2 n and Cholesky
 * m^3 / 3 per sample (the solves are lower order). */
static void
bench_cgauss(Bench *b, const char *name, int n, int m, int B, gboolean sum)
{
  rss_reset();
  CfRng rng;
  cf_rng_seed(&rng, 6);
  double *A = g_new(double, (gsize)m * n), *bb = g_new0(double, m);
  for (gsize i = 0; i < (gsize)m * n; i++)
    A[i] = sum ? 1.0 : cf_rng_normal(&rng);
  CfConstraint c;
  cf_constraint_init(&c);
  CfError err;
  CfCgauss g;
  cf_cgauss_init(&g);
  CF_ASSERT(cf_constraint_set(&c, m, n, A, bb, &err) == CF_OK);
  if (cf_cgauss_setup(&g, &c, &err) != CF_OK) {
    fprintf(stderr, "conform bench: %s\n", err.msg);
    return;
  }
  float *mu = cf_alloc_floats((size_t)B * n), *var = cf_alloc_floats((size_t)B * n), *eps = cf_alloc_floats((size_t)B * n);
  float *dz = cf_alloc_floats((size_t)B * n), *dmu = cf_alloc_floats((size_t)B * n), *dvar = cf_alloc_floats((size_t)B * n);
  cf_rng_fill_normal(&rng, mu, (size_t)B * n);
  cf_rng_fill_normal(&rng, dz, (size_t)B * n);
  for (size_t i = 0; i < (size_t)B * n; i++)
    var[i] = 0.1f + (float)cf_rng_uniform(&rng);
  int reps = sum ? (b->quick ? 200 : 2000) : 1;
  double best = INFINITY;
  for (int round = 0; round < (sum ? 3 : 2); round++) { /* the first round warms up */
    cf_rng_fill_normal(&rng, eps, (size_t)B * n);
    double t0 = now_s();
    for (int r = 0; r < reps; r++) {
      CF_ASSERT(cf_cgauss_forward(&g, B, mu, var, CF_CGAUSS_VAR_DIAG, NULL, 0, 0, &err) == CF_OK);
      cf_cgauss_sample(&g, eps, NULL);
      cf_cgauss_backward_sample(&g, dz, dmu, dvar);
    }
    best = MIN(best, (now_s() - t0) / reps);
  }
  double resid = cf_cgauss_residual(&g, g.z);
  if (sum) {
    g_autofree char *note = g_strdup_printf("n = %d, one sum constraint, batch %d, forward + exact sample + ME backward "
                                            "(O(n) path); max relative residual %.2g", n, B, resid);
    emit(name, best * 1e6, "us/batch", note);
  } else {
    double flops = (double)B * ((double)m * m * n + (double)m * m * m / 3.0);
    g_autofree char *note = g_strdup_printf("n = %d, m = %d, batch %d, per-sample diagonal variances, forward + exact "
                                            "sample + ME backward; max relative residual %.2g", n, m, B, resid);
    emit(name, best, "s/batch", note);
    emit_matrix(b, name, flops / best / 1e9);
  }
  emit_rss(name);
  cf_free_aligned(mu);
  cf_free_aligned(var);
  cf_free_aligned(eps);
  cf_free_aligned(dz);
  cf_free_aligned(dmu);
  cf_free_aligned(dvar);
  cf_cgauss_clear(&g);
  cf_constraint_clear(&c);
  g_free(A);
  g_free(bb);
}

/* namm-train: cf_namm_bench_config() (2-D, batch 256) with the ring
 * constraint x0^2 + x1^2 = 1 on points of the unit circle. */
static void
bench_namm_train(Bench *b)
{
  rss_reset();
  CfNammConfig c = cf_namm_bench_config();
  CfNamm m;
  CfExprSet s;
  CfError err;
  const char *ring = "x0^2 + x1^2 = 1";
  if (cf_expr_parse(&s, ring, strlen(ring), 2, &err) != CF_OK || cf_namm_init(&m, &c, &err) != CF_OK) {
    fprintf(stderr, "conform bench: %s\n", err.msg);
    return;
  }
  CfRng rng;
  cf_rng_seed(&rng, 4);
  cf_namm_randomize(&m, &rng);
  CfNammConstraint con = {.expr = &s};
  CF_ASSERT(cf_namm_prepare_train(&m, c.batch, &con, &err) == CF_OK);
  float *x = g_new(float, 2 * (gsize)c.batch);
  for (int i = 0; i < c.batch; i++) {
    double t = 2.0 * M_PI * cf_rng_uniform(&rng);
    x[2 * i] = (float)cos(t);
    x[2 * i + 1] = (float)sin(t);
  }
  CfNammLosses l;
  for (int w = 0; w < 3; w++)
    (void)cf_namm_train_step(&m, x, &rng, &l, &err);
  double budget = b->quick ? 0.5 : 3.0, t0 = now_s(), dt;
  long steps = 0;
  do {
    for (int k = 0; k < 10; k++)
      (void)cf_namm_train_step(&m, x, &rng, &l, &err);
    steps += 10;
    dt = now_s() - t0;
  } while (dt < budget);
  double sps = (double)steps / dt;
  g_autofree char *note = g_strdup_printf("2-D ring, ICNN %d x %d, inverse MLP %d x %d, batch %d; %ld steps",
                                          c.icnn_depth, c.icnn_width, c.inv_depth, c.inv_width, c.batch, steps);
  emit("namm-train", sps, "steps/s", note);
  emit_matrix(b, "namm-train", sps * cf_namm_train_flops(&c, c.batch) / 1e9);
  emit_rss("namm-train");
  g_free(x);
  cf_namm_clear(&m);
  cf_expr_set_clear(&s);
}

static const char *const workloads[] = {"toy-ddpm-train", "image-ddpm-train", "unet-train", "projection",
                                        "toy-ddim-sample", "image-sample", "cgauss-dense", "cgauss-sum",
                                        "namm-train", "ui-latency", NULL};

static ConformBenchUiFn ui_hook; /* set once by main() before anything runs */

void
conform_bench_set_ui_hook(ConformBenchUiFn fn)
{
  ui_hook = fn;
}

int
conform_bench_main(int argc, char **argv)
{
  gboolean quick = FALSE;
  int threads = 1;
  GOptionEntry entries[] = {
    {"quick", 'q', 0, G_OPTION_ARG_NONE, &quick, "Short runs (seconds, for CI)", NULL},
    {"threads", 't', 0, G_OPTION_ARG_INT, &threads, "BLAS threads (default 1: the app trains on one core and samples on the other)", "N"},
    {NULL},
  };
  g_autoptr(GOptionContext) ctx = g_option_context_new("bench [WORKLOAD...]");
  g_autofree char *desc = g_strjoinv(", ", (char **)workloads);
  g_autofree char *summary =
    g_strdup_printf("Measure speed. Workloads: %s (default: all but ui-latency, which opens the window).", desc);
  g_option_context_set_summary(ctx, summary);
  g_option_context_add_main_entries(ctx, entries, NULL);
  g_autoptr(GError) error = NULL;
  if (!g_option_context_parse(ctx, &argc, &argv, &error)) {
    fprintf(stderr, "conform bench: %s\nvalid options: --quick, --threads\n", error->message);
    return CONFORM_EXIT_USAGE;
  }
  for (int i = 2; i < argc; i++)
    if (!g_strv_contains(workloads, argv[i])) {
      fprintf(stderr, "conform bench: unknown workload '%s'; valid workloads: %s\n", argv[i], desc);
      return CONFORM_EXIT_USAGE;
    }
  if (threads < 1 || threads > 256) {
    fprintf(stderr, "conform bench: --threads must be in [1, 256]\n");
    return CONFORM_EXIT_USAGE;
  }
  openblas_set_num_threads(threads);
  Bench b = {quick, 0};
  bench_sgemm(&b);
  gboolean all = argc <= 2;
#define WANT(name) (all || g_strv_contains((const char *const *)argv + 2, name))
  const CfDenoiserConfig toy = mlp_config(2, 128, 3, 32), mlp784 = mlp_config(784, 1024, 3, 128);
  const CfDenoiserConfig unet28 = unet_config(28); /* the image presets' denoiser at 28 x 28 */
  if (WANT("toy-ddpm-train"))
    bench_ddpm_train(&b, "toy-ddpm-train", &toy, 256);
  if (WANT("image-ddpm-train"))
    bench_ddpm_train(&b, "image-ddpm-train", &mlp784, 128);
  if (WANT("unet-train"))
    bench_ddpm_train(&b, "unet-train", &unet28, 64);
  if (WANT("projection"))
    bench_projection(&b);
  if (WANT("toy-ddim-sample"))
    bench_ddim_sample(&b, "toy-ddim-sample", &toy, b.quick ? 2000 : 20000, 512, "samples/s");
  if (WANT("image-sample")) /* in chunks of 32, as the app's sampler */
    bench_ddim_sample(&b, "image-sample", &unet28, b.quick ? 32 : 128, 32, "images/s");
  if (WANT("cgauss-dense"))
    bench_cgauss(&b, "cgauss-dense", 2048, 1024, b.quick ? 8 : 64, FALSE);
  if (WANT("cgauss-sum"))
    bench_cgauss(&b, "cgauss-sum", 784, 1, 128, TRUE);
  if (WANT("namm-train"))
    bench_namm_train(&b);
  /* The window needs a display: only when asked for by name. */
  if (!all && g_strv_contains((const char *const *)argv + 2, "ui-latency")) {
    if (!ui_hook) {
      fprintf(stderr, "conform bench: ui-latency needs the GUI build\n");
      return CONFORM_EXIT_RUNTIME;
    }
    return ui_hook(b.quick ? 3.0 : 10.0);
  }
#undef WANT
  return CONFORM_EXIT_OK;
}
