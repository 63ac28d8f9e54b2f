/* Op builders (shape checks) and their forward/backward kernels.
 *
 * Every kernel works on packed row-major buffers; n = rows * cols for
 * elementwise kernels. Backward kernels accumulate (+=) into the gradients of
 * inputs that need one (needs_grad) and never touch the others. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "gemm.h"
#include "graph.h"
#include "graph_private.h"

/* gcc's -O2 cost model ("very cheap") vectorises almost no loop whose trip
 * count is unknown, and -ftrapping-math stops it if-converting the float
 * selects in relu/abs/clamps. The kernels below are simple loops written to be
 * vectorised; nothing here inspects FP exception flags or errno. clang
 * vectorises them at -O2 as they are. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("tree-vectorize", "vect-cost-model=dynamic", "no-trapping-math", "no-math-errno")
#endif

/* Hot elementwise kernels get an AVX2 clone next to the baseline SSE2 one,
 * picked at load time (GNU ifunc). Both clones do the same IEEE operations per
 * element (no FMA contraction in ISO C mode), so results are identical. */
/* Not under ThreadSanitizer: the ifunc resolver would be instrumented and
 * run during relocation, before the TSan runtime exists (a crash at load). */
#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define CF_NO_IFUNC 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define CF_NO_IFUNC 1
#endif
#if defined(__x86_64__) && defined(__linux__) && defined(__GNUC__) && \
    (!defined(__clang__) || __clang_major__ >= 14) && !defined(CF_NO_IFUNC)
#define CF_HOT __attribute__((target_clones("avx2", "default")))
#else
#define CF_HOT
#endif

/* ---- helpers ------------------------------------------------------------------- */

/* exp(x) in float without calls or branches, so loops using it vectorise
 * (glibc's expf is a scalar call: ~3.5 ns per element, too slow for SiLU on
 * every hidden unit). Cephes expf: x = n ln2 + r with |r| <= ln2/2 (ln2 split in
 * two parts for an exact reduction), exp(r) = 1 + r + r^2 P(r), times 2^n built
 * in the exponent bits. Relative error <= 1.2e-7 (about 1 ulp) on [-87, 88.3];
 * below -87 it returns 0 (flushes the subnormal range), above 88.3 +inf (a few
 * values below FLT_MAX are lost: fine inside sigmoid-type functions; cf_exp
 * uses libm). NaN propagates.
 * The range is handled by selecting the result afterwards, not by clamping x
 * first: with clamped inputs gcc duplicates the computation for the constant
 * clamp values and the duplicated divisions produce subnormals, which cost a
 * microcode assist each (measured 5x slower SiLU). */
static inline float
fast_expf(float x)
{
  /* Adding 1.5 * 2^23 rounds x log2(e) to the nearest integer n, which then
   * sits in the low mantissa bits of t (valid for |x log2 e| < 2^22). */
  float t = x * 1.44269504088896341f + 12582912.0f;
  float n = t - 12582912.0f;
  float r = x - n * 0.693359375f;
  r = r + n * 2.12194440e-4f;
  float z = r * r;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * z + r + 1.0f;
  uint32_t u;
  memcpy(&u, &t, sizeof u);
  u = (u - 0x4B400000u + 127u) << 23; /* biased exponent n + 127 */
  float s;
  memcpy(&s, &u, sizeof s);
  float e = p * s;
  e = x < -87.0f ? 0.0f : e;
  e = x > 88.3f ? HUGE_VALF : e;
  return e;
}

/* 1 / (1 + exp(-x)). */
static inline float
sigmoidf_(float x)
{
  return 1.0f / (1.0f + fast_expf(-x));
}

/* Sum in double with four independent accumulators (no add latency chain). */
double
cf_sum_f64(const float *a, size_t n)
{
  double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    s0 += a[i];
    s1 += a[i + 1];
    s2 += a[i + 2];
    s3 += a[i + 3];
  }
  for (; i < n; i++)
    s0 += a[i];
  return (s0 + s1) + (s2 + s3);
}

/* Products with a dimension of at most GEMM_THIN (a 2-D model's output
 * layer: (256,128) x (128,2) and its gradients) are done here: OpenBLAS packs
 * both operands on every call, which there costs more than the arithmetic
 * (measured 15-25 % of the sgemm peak for these shapes). */
#define GEMM_THIN 4

/* sum_k x_k y_k with eight independent partial sums (vectorised). */
CF_HOT static float
dot_thin(const float *restrict x, const float *restrict y, int n)
{
  float acc[8] = {0};
  int k = 0;
  for (; k + 8 <= n; k += 8)
    for (int l = 0; l < 8; l++)
      acc[l] += x[k + l] * y[k + l];
  float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  for (; k < n; k++)
    s += x[k] * y[k];
  return s;
}

/* c (M,N) = op(a) b + beta c as rows: c_i += sum_k op(a)_ik b_k (b not
 * transposed), for M or K thin. */
CF_HOT static void
gemm_rows(float *restrict c, const float *restrict a, const float *restrict b, int M, int N, int K, bool ta,
          float beta)
{
  for (int i = 0; i < M; i++) {
    float *restrict ci = c + (size_t)i * N;
    if (beta == 0.0f)
      memset(ci, 0, (size_t)N * sizeof *ci);
    else if (beta != 1.0f)
      for (int j = 0; j < N; j++)
        ci[j] *= beta;
    for (int k = 0; k < K; k++) {
      const float aik = ta ? a[(size_t)k * M + i] : a[(size_t)i * K + k];
      const float *restrict bk = b + (size_t)k * N;
      for (int j = 0; j < N; j++)
        ci[j] += aik * bk[j];
    }
  }
}

static bool
gemm_thin(float *c, const float *a, const float *b, int M, int N, int K, bool ta, bool tb, float beta)
{
  if (!tb && (M <= GEMM_THIN || K <= GEMM_THIN)) {
    gemm_rows(c, a, b, M, N, K, ta, beta);
    return true;
  }
  if (tb && !ta && N <= GEMM_THIN) { /* c_ij = a_i . b_j, rows of both contiguous */
    for (int i = 0; i < M; i++)
      for (int j = 0; j < N; j++) {
        float *cij = c + (size_t)i * N + j;
        float d = dot_thin(a + (size_t)i * K, b + (size_t)j * K, K);
        *cij = beta == 0.0f ? d : beta * *cij + d;
      }
    return true;
  }
  return false;
}

/* c (M,N) = op(a) op(b) + beta c, op(a) (M,K), op(b) (K,N); packed row-major. */
static void
gemm(float *c, const float *a, const float *b, int M, int N, int K, bool ta, bool tb, float beta)
{
  if (gemm_thin(c, a, b, M, N, K, ta, tb, beta))
    return;
  cf_gemm(c, N, a, ta ? M : K, b, tb ? K : N, M, N, K, ta, tb, beta);
}

void
cf_ref_matmul(float *c, const float *a, const float *b, int M, int N, int K, bool ta, bool tb)
{
  /* C (M,N) = op(A) (M,K) op(B) (K,N); A stored (M,K) or (K,M), B (K,N) or (N,K). */
  for (int i = 0; i < M; i++)
    for (int j = 0; j < N; j++) {
      double s = 0.0;
      for (int k = 0; k < K; k++) {
        double x = ta ? a[(size_t)k * M + i] : a[(size_t)i * K + k];
        double y = tb ? b[(size_t)j * K + k] : b[(size_t)k * N + j];
        s += x * y;
      }
      c[(size_t)i * N + j] = (float)s;
    }
}

/* ---- builders ------------------------------------------------------------------ */

static CfNodeRec *
node(CfGraph *g, CfNode n)
{
  return cf_graph_node(g, n);
}

static CfNode
unary(CfGraph *g, CfOpKind op, CfNode a)
{
  if (g->failed)
    return -1;
  const CfNodeRec *na = node(g, a);
  return cf_graph_push(g, op, na->rows, na->cols, a, -1, -1);
}

static CfNode
binary_same(CfGraph *g, CfOpKind op, CfNode a, CfNode b, int rows, int cols)
{
  if (g->failed)
    return -1;
  const CfNodeRec *na = node(g, a), *nb = node(g, b);
  CF_ASSERT(na->rows == nb->rows && na->cols == nb->cols);
  return cf_graph_push(g, op, rows ? rows : na->rows, cols ? cols : na->cols, a, b, -1);
}

CfNode
cf_matmul(CfGraph *g, CfNode a, CfNode b, bool ta, bool tb)
{
  if (g->failed)
    return -1;
  const CfNodeRec *na = node(g, a), *nb = node(g, b);
  int r = ta ? na->cols : na->rows, k = ta ? na->rows : na->cols;
  int kb = tb ? nb->cols : nb->rows, c = tb ? nb->rows : nb->cols;
  CF_ASSERT(k == kb);
  CfNode n = cf_graph_push(g, CF_OP_MATMUL, r, c, a, b, -1);
  if (n >= 0) {
    g->nodes[n].iarg[0] = ta;
    g->nodes[n].iarg[1] = tb;
  }
  return n;
}

static CfNode
linear_node(CfGraph *g, CfOpKind op, CfNode x, CfNode w, CfNode bias)
{
  if (g->failed)
    return -1;
  const CfNodeRec *nx = node(g, x), *nw = node(g, w);
  CF_ASSERT(nx->cols == nw->cols);
  if (bias >= 0) {
    const CfNodeRec *nb = node(g, bias);
    CF_ASSERT(nb->rows == 1 && nb->cols == nw->rows);
  }
  return cf_graph_push(g, op, nx->rows, nw->rows, x, w, bias);
}

CfNode
cf_linear(CfGraph *g, CfNode x, CfNode w, CfNode bias)
{
  return linear_node(g, CF_OP_LINEAR, x, w, bias);
}

/* Scratch of a fused linear + activation node: three (B,out) buffers, each
 * 64-byte aligned: z = x W^T + bias, aux = sigmoid(z) (kept by SiLU and
 * softplus for backward), dz = dL/dz. */
static size_t
fused_stride(const CfNodeRec *n)
{
  return ((size_t)n->rows * (size_t)n->cols + 15) & ~(size_t)15;
}

CfNode
cf_linear_act(CfGraph *g, CfNode x, CfNode w, CfNode bias, CfPointwise act)
{
  if (act == CF_PW_IDENTITY)
    return cf_linear(g, x, w, bias);
  CfNode n = linear_node(g, CF_OP_LINEAR_ACT, x, w, bias);
  if (n >= 0) {
    CfNodeRec *r = &g->nodes[n];
    r->iarg[0] = (int)act;
    r->scratch_floats = 3 * fused_stride(r);
  }
  return n;
}

CfNode cf_add(CfGraph *g, CfNode a, CfNode b) { return binary_same(g, CF_OP_ADD, a, b, 0, 0); }
CfNode cf_sub(CfGraph *g, CfNode a, CfNode b) { return binary_same(g, CF_OP_SUB, a, b, 0, 0); }
CfNode cf_mul(CfGraph *g, CfNode a, CfNode b) { return binary_same(g, CF_OP_MUL, a, b, 0, 0); }
CfNode cf_mse(CfGraph *g, CfNode a, CfNode b) { return binary_same(g, CF_OP_MSE, a, b, 1, 1); }
CfNode cf_l1(CfGraph *g, CfNode a, CfNode b) { return binary_same(g, CF_OP_L1, a, b, 1, 1); }

static CfNode
unary_f(CfGraph *g, CfOpKind op, CfNode a, float f)
{
  CfNode n = unary(g, op, a);
  if (n >= 0)
    g->nodes[n].farg[0] = f;
  return n;
}

CfNode cf_scale(CfGraph *g, CfNode a, float s) { return unary_f(g, CF_OP_SCALE, a, s); }
CfNode cf_add_scalar(CfGraph *g, CfNode a, float s) { return unary_f(g, CF_OP_ADD_SCALAR, a, s); }
CfNode cf_leaky_relu(CfGraph *g, CfNode a, float slope) { return unary_f(g, CF_OP_LEAKY_RELU, a, slope); }
CfNode cf_silu(CfGraph *g, CfNode a) { return unary(g, CF_OP_SILU, a); }
CfNode cf_softplus(CfGraph *g, CfNode a) { return unary(g, CF_OP_SOFTPLUS, a); }
CfNode cf_sigmoid(CfGraph *g, CfNode a) { return unary(g, CF_OP_SIGMOID, a); }
CfNode cf_tanh(CfGraph *g, CfNode a) { return unary(g, CF_OP_TANH, a); }
CfNode cf_relu(CfGraph *g, CfNode a) { return unary(g, CF_OP_RELU, a); }
CfNode cf_exp(CfGraph *g, CfNode a) { return unary(g, CF_OP_EXP, a); }
CfNode cf_log(CfGraph *g, CfNode a) { return unary(g, CF_OP_LOG, a); }
CfNode cf_square(CfGraph *g, CfNode a) { return unary(g, CF_OP_SQUARE, a); }
CfNode cf_abs(CfGraph *g, CfNode a) { return unary(g, CF_OP_ABS, a); }
CfNode cf_sqrt(CfGraph *g, CfNode a) { return unary(g, CF_OP_SQRT, a); }

CfNode
cf_bias_add(CfGraph *g, CfNode a, CfNode bias)
{
  if (g->failed)
    return -1;
  const CfNodeRec *na = node(g, a), *nb = node(g, bias);
  CF_ASSERT(nb->rows == 1 && nb->cols == na->cols);
  return cf_graph_push(g, CF_OP_BIAS_ADD, na->rows, na->cols, a, bias, -1);
}

CfNode
cf_concat_cols(CfGraph *g, CfNode a, CfNode b)
{
  if (g->failed)
    return -1;
  const CfNodeRec *na = node(g, a), *nb = node(g, b);
  CF_ASSERT(na->rows == nb->rows);
  return cf_graph_push(g, CF_OP_CONCAT_COLS, na->rows, na->cols + nb->cols, a, b, -1);
}

CfNode
cf_slice_cols(CfGraph *g, CfNode a, int start, int len)
{
  if (g->failed)
    return -1;
  const CfNodeRec *na = node(g, a);
  CF_ASSERT(start >= 0 && len > 0 && start + len <= na->cols);
  CfNode n = cf_graph_push(g, CF_OP_SLICE_COLS, na->rows, len, a, -1, -1);
  if (n >= 0)
    g->nodes[n].iarg[0] = start;
  return n;
}

static CfNode
reduce(CfGraph *g, CfOpKind op, CfNode a, bool mean)
{
  if (g->failed)
    return -1;
  const CfNodeRec *na = node(g, a);
  int rows = op == CF_OP_SUM_COLS || op == CF_OP_SUM_ALL ? 1 : na->rows;
  int cols = op == CF_OP_SUM_ROWS || op == CF_OP_SUM_ALL ? 1 : na->cols;
  /* the mean divides by the number of elements summed into each output */
  double count = (double)na->rows * na->cols / ((double)rows * cols);
  CfNode n = cf_graph_push(g, op, rows, cols, a, -1, -1);
  if (n >= 0)
    g->nodes[n].farg[0] = mean ? (float)(1.0 / count) : 1.0f;
  return n;
}

CfNode cf_sum_rows(CfGraph *g, CfNode a) { return reduce(g, CF_OP_SUM_ROWS, a, false); }
CfNode cf_sum_cols(CfGraph *g, CfNode a) { return reduce(g, CF_OP_SUM_COLS, a, false); }
CfNode cf_sum_all(CfGraph *g, CfNode a) { return reduce(g, CF_OP_SUM_ALL, a, false); }
CfNode cf_mean_rows(CfGraph *g, CfNode a) { return reduce(g, CF_OP_SUM_ROWS, a, true); }
CfNode cf_mean_cols(CfGraph *g, CfNode a) { return reduce(g, CF_OP_SUM_COLS, a, true); }
CfNode cf_mean_all(CfGraph *g, CfNode a) { return reduce(g, CF_OP_SUM_ALL, a, true); }

/* Integer times below TEMB_TABLE_T are looked up in a table of
 * TEMB_TABLE_T x dim floats (at most 512 KiB) built when the graph is
 * allocated; sinf and cosf cost ~3 % of a toy training step otherwise. */
#define TEMB_TABLE_T 1024
#define TEMB_TABLE_MAX_DIM 128

CfNode
cf_time_embed(CfGraph *g, CfNode t, int dim, float max_period)
{
  if (g->failed)
    return -1;
  const CfNodeRec *nt = node(g, t);
  CF_ASSERT(nt->cols == 1 && dim >= 2 && dim % 2 == 0 && max_period > 0.0f);
  CfNode n = cf_graph_push(g, CF_OP_TIME_EMBED, nt->rows, dim, t, -1, -1);
  if (n >= 0) {
    g->nodes[n].farg[0] = max_period;
    /* f_j, then the rows for t = 0 .. TEMB_TABLE_T - 1 (see cf_op_prepare) */
    g->nodes[n].scratch_floats = (size_t)dim / 2 + (dim <= TEMB_TABLE_MAX_DIM ? (size_t)TEMB_TABLE_T * dim : 0);
  }
  return n;
}

/* ---- pointwise activations (shared by the plain and the fused ops) ---------- */

/* y = f(x), n elements. */
CF_HOT static void
act_forward(CfPointwise act, float *restrict y, const float *restrict x, size_t n, float slope)
{
  switch (act) {
  case CF_PW_IDENTITY:
    memcpy(y, x, n * sizeof *y);
    break;
  case CF_PW_SILU: /* x sigmoid(x) */
    for (size_t i = 0; i < n; i++)
      y[i] = x[i] / (1.0f + fast_expf(-x[i]));
    break;
  case CF_PW_SIGMOID:
    for (size_t i = 0; i < n; i++)
      y[i] = sigmoidf_(x[i]);
    break;
  case CF_PW_SOFTPLUS: /* log(1 + e^x) = max(x, 0) + log1p(e^-|x|), stable */
    for (size_t i = 0; i < n; i++)
      y[i] = (x[i] > 0.0f ? x[i] : 0.0f) + log1pf(fast_expf(-fabsf(x[i])));
    break;
  case CF_PW_TANH:
    for (size_t i = 0; i < n; i++)
      y[i] = tanhf(x[i]);
    break;
  case CF_PW_RELU:
    for (size_t i = 0; i < n; i++)
      y[i] = x[i] < 0.0f ? 0.0f : x[i]; /* NaN propagates */
    break;
  case CF_PW_LEAKY_RELU:
    for (size_t i = 0; i < n; i++)
      y[i] = x[i] > 0.0f ? x[i] : slope * x[i];
    break;
  }
}

/* dx = dy f'(x) (assigned when acc is false, else +=), from input x and output
 * y; all (n). Assigning overwrites whatever dx held (NaN from an earlier step
 * included), which is why the two cases are separate loops. */
#define ACT_LOOP(expr)                  \
  do {                                  \
    if (acc)                            \
      for (size_t i = 0; i < n; i++)    \
        dx[i] += (expr);                \
    else                                \
      for (size_t i = 0; i < n; i++)    \
        dx[i] = (expr);                 \
  } while (0)

CF_HOT static void
act_backward(CfPointwise act, float *restrict dx, const float *restrict dy, const float *restrict x,
             const float *restrict y, size_t n, float slope, bool acc)
{
  switch (act) {
  case CF_PW_IDENTITY:
    ACT_LOOP(dy[i]);
    break;
  case CF_PW_SILU: /* d/dx x s(x) = s (1 + x (1 - s)), s = sigmoid(x) recomputed */
    ACT_LOOP(dy[i] * sigmoidf_(x[i]) * (1.0f + x[i] * (1.0f - sigmoidf_(x[i]))));
    break;
  case CF_PW_SIGMOID: /* s (1 - s) from the output */
    ACT_LOOP(dy[i] * y[i] * (1.0f - y[i]));
    break;
  case CF_PW_SOFTPLUS: /* sigmoid(x) */
    ACT_LOOP(dy[i] * sigmoidf_(x[i]));
    break;
  case CF_PW_TANH: /* 1 - tanh^2 from the output */
    ACT_LOOP(dy[i] * (1.0f - y[i] * y[i]));
    break;
  case CF_PW_RELU: /* 1 for x > 0, else 0 (also at 0) */
    ACT_LOOP(x[i] > 0.0f ? dy[i] : 0.0f);
    break;
  case CF_PW_LEAKY_RELU: /* 1 for x > 0, else slope */
    ACT_LOOP(x[i] > 0.0f ? dy[i] : slope * dy[i]);
    break;
  }
}
#undef ACT_LOOP

/* ---- fused linear + activation ---------------------------------------------- */

/* Forward tail of the fused op, row by row: z (B,n) += bias (1,n) (bias may be
 * NULL), y = f(z), and aux = sigmoid(z) where backward needs it. Adding the
 * bias here saves a separate pass that copies it into z before sgemm. */
CF_HOT static void
fused_act_forward(CfPointwise act, float *restrict y, float *restrict z, float *restrict aux,
                  const float *restrict bias, int B, int n)
{
  for (int r = 0; r < B; r++) {
    float *restrict zr = z + (size_t)r * n;
    float *restrict yr = y + (size_t)r * n;
    float *restrict ar = aux + (size_t)r * n;
    if (bias)
      for (int j = 0; j < n; j++)
        zr[j] += bias[j];
    switch (act) {
    case CF_PW_SILU: /* y = z s, s = sigmoid(z) */
      for (int j = 0; j < n; j++) {
        float sg = sigmoidf_(zr[j]);
        ar[j] = sg;
        yr[j] = zr[j] * sg;
      }
      break;
    case CF_PW_SOFTPLUS:
      for (int j = 0; j < n; j++)
        ar[j] = sigmoidf_(zr[j]);
      act_forward(act, yr, zr, (size_t)n, 0.01f);
      break;
    default:
      act_forward(act, yr, zr, (size_t)n, 0.01f);
      break;
    }
  }
}

/* Backward head of the fused op: dz (B,n) = dy f'(z) (assigned, so dz needs
 * no clearing) and db (1,n) += column sums of dz (db may be NULL). */
CF_HOT static void
fused_act_backward(CfPointwise act, float *restrict dz, float *restrict db, const float *restrict dy,
                   const float *restrict z, const float *restrict y, const float *restrict aux,
                   int B, int n)
{
  for (int r = 0; r < B; r++) {
    size_t o = (size_t)r * n;
    float *restrict dzr = dz + o;
    const float *restrict dyr = dy + o, *restrict zr = z + o, *restrict ar = aux + o;
    switch (act) {
    case CF_PW_SILU: /* d(z s)/dz = s (1 + z (1 - s)) */
      for (int j = 0; j < n; j++)
        dzr[j] = dyr[j] * ar[j] * (1.0f + zr[j] * (1.0f - ar[j]));
      break;
    case CF_PW_SOFTPLUS: /* sigmoid(z) */
      for (int j = 0; j < n; j++)
        dzr[j] = dyr[j] * ar[j];
      break;
    default:
      act_backward(act, dzr, dyr, zr, y + o, (size_t)n, 0.01f, false);
      break;
    }
    if (db)
      for (int j = 0; j < n; j++)
        db[j] += dzr[j];
  }
}

/* ---- kernels ------------------------------------------------------------------- */

/* y (B,out) = x (B,in) W^T + bias; W (out,in), bias (1,out) or NULL.
 * The bias is copied into every row first, then sgemm adds x W^T (beta = 1). */
static void
linear_fwd(float *y, const float *x, const float *w, const float *bias, int B, int in, int out)
{
  if (bias)
    for (int r = 0; r < B; r++)
      memcpy(y + (size_t)r * out, bias, (size_t)out * sizeof *y);
  gemm(y, x, w, B, out, in, false, true, bias ? 1.0f : 0.0f);
}

/* dy (B,out): dx (B,in) += dy W (= when set_dx); dW (out,in) += dy^T x; db
 * (1,out) += column sums of dy. Any of dx, dw, db may be NULL (not needed). */
static void
linear_bwd(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w, int B,
           int in, int out, bool set_dx)
{
  if (dx)
    gemm(dx, dy, w, B, in, out, false, false, set_dx ? 0.0f : 1.0f);
  if (dw)
    gemm(dw, dy, x, out, in, B, true, false, 1.0f);
  if (db)
    for (int r = 0; r < B; r++) {
      const float *row = dy + (size_t)r * out;
      for (int j = 0; j < out; j++)
        db[j] += row[j];
    }
}

/* One embedding row [sin(t f_j) | cos(t f_j)]. */
static void
time_embed_row(float *restrict yr, float t, const float *restrict f, int half)
{
  for (int j = 0; j < half; j++) {
    float arg = t * f[j];
    yr[j] = sinf(arg);
    yr[half + j] = cosf(arg);
  }
}

void
cf_op_prepare(CfGraph *g, CfNodeRec *n)
{
  (void)g;
  if (n->op == CF_OP_TIME_EMBED) {
    /* f_j = max_period^(-j/half) = exp(-ln(max_period) j / half) */
    int half = n->cols / 2;
    for (int j = 0; j < half; j++)
      n->scratch[j] = (float)exp(-log((double)n->farg[0]) * j / half);
    /* Diffusion times are integers: their rows are computed once here, with
     * the same float operations as time_embed_row, so a lookup is exact. */
    if (n->cols <= TEMB_TABLE_MAX_DIM)
      for (int t = 0; t < TEMB_TABLE_T; t++)
        time_embed_row(n->scratch + half + (size_t)t * n->cols, (float)t, n->scratch, half);
  }
}

/* Input pointers of node n. */
#define IN(k) (g->nodes[n->in[k]])

/* The ops whose backward kernels below store first gradients (cf_grad_first). */
bool
cf_op_stores_grads(CfOpKind op)
{
  switch (op) {
  case CF_OP_MATMUL:
  case CF_OP_LINEAR:
  case CF_OP_LINEAR_ACT:
  case CF_OP_ADD:
  case CF_OP_SUB:
  case CF_OP_MUL:
  case CF_OP_BIAS_ADD:
  case CF_OP_CONCAT_COLS:
  case CF_OP_SILU:
  case CF_OP_SOFTPLUS:
  case CF_OP_SIGMOID:
  case CF_OP_TANH:
  case CF_OP_RELU:
  case CF_OP_LEAKY_RELU:
  case CF_OP_CONV2D:
  case CF_OP_UPSAMPLE_NEAREST:
  case CF_OP_AVGPOOL:
  case CF_OP_GROUP_NORM:
  case CF_OP_ADD_CHANNEL:
    return true;
  default:
    return false;
  }
}

/* dst[i] = expr for a gradient's first write in this pass (first: from
 * cf_grad_first), dst[i] += expr after it; two loops, since storing must
 * not read the stale memory. */
#define GRAD_LOOP(first, dst, len, expr)    \
  do {                                      \
    if (first)                              \
      for (size_t i = 0; i < (len); i++)    \
        (dst)[i] = (expr);                  \
    else                                    \
      for (size_t i = 0; i < (len); i++)    \
        (dst)[i] += (expr);                 \
  } while (0)

/* A gradient a kernel only adds to (parameters, small vectors). */
static float *
grad_acc(CfNodeRec *x)
{
  cf_grad_touch(x);
  return x->grad;
}

/* Forward kernel of node n. Shapes: elementwise ops have a, b and y all (r,c)
 * with len = r * c elements; the others are noted per case. */
void
cf_op_forward(CfGraph *g, CfNodeRec *n)
{
  float *restrict y = n->value;
  const size_t len = (size_t)n->rows * (size_t)n->cols;
  const float *a = n->in[0] >= 0 ? IN(0).value : NULL;
  const float *b = n->in[1] >= 0 ? IN(1).value : NULL;
  const size_t na = n->in[0] >= 0 ? (size_t)IN(0).rows * (size_t)IN(0).cols : 0;
  switch (n->op) {
  case CF_OP_INPUT:
  case CF_OP_PARAM:
    break;
  case CF_OP_MATMUL: { /* y (r,c) = op(a) (r,k) op(b) (k,c) */
    bool ta = n->iarg[0], tb = n->iarg[1];
    int k = ta ? IN(0).rows : IN(0).cols;
    gemm(y, a, b, n->rows, n->cols, k, ta, tb, 0.0f);
    break;
  }
  case CF_OP_LINEAR: /* y (B,out) = x (B,in) W^T (W (out,in)) + bias (1,out) */
    linear_fwd(y, a, b, n->in[2] >= 0 ? IN(2).value : NULL, n->rows, IN(0).cols, n->cols);
    break;
  case CF_OP_LINEAR_ACT: { /* z = x W^T + bias, y = f(z); z, y (B,out), W (out,in) */
    float *z = n->scratch, *aux = n->scratch + fused_stride(n);
    gemm(z, a, b, n->rows, n->cols, IN(0).cols, false, true, 0.0f);
    fused_act_forward((CfPointwise)n->iarg[0], y, z, aux, n->in[2] >= 0 ? IN(2).value : NULL,
                      n->rows, n->cols);
    break;
  }
  case CF_OP_ADD: /* y = a + b, all (r,c) */
    for (size_t i = 0; i < len; i++)
      y[i] = a[i] + b[i];
    break;
  case CF_OP_SUB: /* y = a - b */
    for (size_t i = 0; i < len; i++)
      y[i] = a[i] - b[i];
    break;
  case CF_OP_MUL: /* y = a .* b */
    for (size_t i = 0; i < len; i++)
      y[i] = a[i] * b[i];
    break;
  case CF_OP_SCALE: { /* y = s a */
    float s = n->farg[0];
    for (size_t i = 0; i < len; i++)
      y[i] = s * a[i];
    break;
  }
  case CF_OP_ADD_SCALAR: { /* y = a + s */
    float s = n->farg[0];
    for (size_t i = 0; i < len; i++)
      y[i] = a[i] + s;
    break;
  }
  case CF_OP_BIAS_ADD: /* y (B,c) = a (B,c) + bias (1,c) per row */
    for (int r = 0; r < n->rows; r++) {
      const float *ar = a + (size_t)r * n->cols;
      float *yr = y + (size_t)r * n->cols;
      for (int j = 0; j < n->cols; j++)
        yr[j] = ar[j] + b[j];
    }
    break;
  case CF_OP_CONCAT_COLS: { /* y (B,p+q) = [a (B,p) | b (B,q)] */
    int p = IN(0).cols, q = IN(1).cols;
    for (int r = 0; r < n->rows; r++) {
      memcpy(y + (size_t)r * n->cols, a + (size_t)r * p, (size_t)p * sizeof *y);
      memcpy(y + (size_t)r * n->cols + p, b + (size_t)r * q, (size_t)q * sizeof *y);
    }
    break;
  }
  case CF_OP_SLICE_COLS: /* y (B,len) = a (B,m)[:, start:start+len] */
    for (int r = 0; r < n->rows; r++)
      memcpy(y + (size_t)r * n->cols, a + (size_t)r * IN(0).cols + n->iarg[0],
             (size_t)n->cols * sizeof *y);
    break;
  case CF_OP_SILU: /* activations: y = f(a), elementwise */
    act_forward(CF_PW_SILU, y, a, len, 0.0f);
    break;
  case CF_OP_SOFTPLUS:
    act_forward(CF_PW_SOFTPLUS, y, a, len, 0.0f);
    break;
  case CF_OP_SIGMOID:
    act_forward(CF_PW_SIGMOID, y, a, len, 0.0f);
    break;
  case CF_OP_TANH:
    act_forward(CF_PW_TANH, y, a, len, 0.0f);
    break;
  case CF_OP_RELU:
    act_forward(CF_PW_RELU, y, a, len, 0.0f);
    break;
  case CF_OP_LEAKY_RELU:
    act_forward(CF_PW_LEAKY_RELU, y, a, len, n->farg[0]);
    break;
  case CF_OP_EXP: /* libm expf: exact range up to FLT_MAX */
    for (size_t i = 0; i < len; i++)
      y[i] = expf(a[i]);
    break;
  case CF_OP_LOG: /* x > 0; log(0) = -inf, negative -> NaN */
    for (size_t i = 0; i < len; i++)
      y[i] = logf(a[i]);
    break;
  case CF_OP_SQUARE: /* y = a^2 */
    for (size_t i = 0; i < len; i++)
      y[i] = a[i] * a[i];
    break;
  case CF_OP_ABS: /* y = |a| */
    for (size_t i = 0; i < len; i++)
      y[i] = fabsf(a[i]);
    break;
  case CF_OP_SQRT: /* x >= 0; negative -> NaN */
    for (size_t i = 0; i < len; i++)
      y[i] = sqrtf(a[i]);
    break;
  case CF_OP_SUM_ROWS: { /* y (B,1) = s * sum_j a (B,c) */
    int c = IN(0).cols;
    for (int r = 0; r < n->rows; r++)
      y[r] = (float)(n->farg[0] * cf_sum_f64(a + (size_t)r * c, (size_t)c));
    break;
  }
  case CF_OP_SUM_COLS: { /* y (1,c) = s * sum_r a (B,c) */
    int B = IN(0).rows;
    memset(y, 0, len * sizeof *y);
    for (int r = 0; r < B; r++) {
      const float *ar = a + (size_t)r * n->cols;
      for (int j = 0; j < n->cols; j++)
        y[j] += ar[j];
    }
    for (int j = 0; j < n->cols; j++)
      y[j] *= n->farg[0];
    break;
  }
  case CF_OP_SUM_ALL: /* y (1,1) = s * sum a */
    y[0] = (float)(n->farg[0] * cf_sum_f64(a, na));
    break;
  case CF_OP_MSE: { /* y (1,1) = mean (a - b)^2 over (r,c) */
    double s0 = 0, s1 = 0;
    size_t i = 0;
    for (; i + 2 <= na; i += 2) {
      double d0 = (double)a[i] - b[i], d1 = (double)a[i + 1] - b[i + 1];
      s0 += d0 * d0;
      s1 += d1 * d1;
    }
    for (; i < na; i++) {
      double d = (double)a[i] - b[i];
      s0 += d * d;
    }
    y[0] = (float)((s0 + s1) / (double)na);
    break;
  }
  case CF_OP_L1: { /* y (1,1) = mean |a - b| */
    double s = 0;
    for (size_t i = 0; i < na; i++)
      s += fabs((double)a[i] - b[i]);
    y[0] = (float)(s / (double)na);
    break;
  }
  case CF_OP_TIME_EMBED: { /* t (B,1) -> y (B,dim): [sin(t f_j) | cos(t f_j)] */
    int half = n->cols / 2;
    const float *f = n->scratch, *table = n->cols <= TEMB_TABLE_MAX_DIM ? n->scratch + half : NULL;
    for (int r = 0; r < n->rows; r++) {
      float *yr = y + (size_t)r * n->cols;
      float t = a[r];
      if (table && t >= 0.0f && t < (float)TEMB_TABLE_T && t == floorf(t))
        memcpy(yr, table + (size_t)t * n->cols, (size_t)n->cols * sizeof *yr);
      else
        time_embed_row(yr, t, f, half);
    }
    break;
  }
  case CF_OP_CONV2D: /* image ops: ops_image.c */
  case CF_OP_UPSAMPLE_NEAREST:
  case CF_OP_UPSAMPLE_BILINEAR2X:
  case CF_OP_AVGPOOL:
  case CF_OP_GROUP_NORM:
  case CF_OP_ADD_CHANNEL:
    cf_image_forward(g, n);
    break;  case CF_OP_DIV: /* expression ops: ops_math.c */
  case CF_OP_SIN:
  case CF_OP_COS:
  case CF_OP_POW:
  case CF_OP_MUL_COL:
  case CF_OP_MUL_ROW:
    cf_math_forward(g, n);
    break;
  }
}

/* Backward kernel of node n: accumulates dL/d(input) from dy = dL/dy into the
 * inputs that need a gradient (da, db are NULL otherwise). Shapes as in
 * cf_op_forward; dx always has the shape of x. */
void
cf_op_backward(CfGraph *g, CfNodeRec *n)
{
  const float *restrict dy = n->grad;
  const float *y = n->value;
  const size_t len = (size_t)n->rows * (size_t)n->cols;
  CfNodeRec *A = n->in[0] >= 0 ? &IN(0) : NULL;
  CfNodeRec *Bn = n->in[1] >= 0 ? &IN(1) : NULL;
  const float *a = A ? A->value : NULL;
  const float *b = Bn ? Bn->value : NULL;
  /* gradients of the inputs, NULL when not needed */
  float *restrict da = A && A->needs_grad ? A->grad : NULL;
  float *restrict db = Bn && Bn->needs_grad ? Bn->grad : NULL;
  const size_t na = A ? (size_t)A->rows * (size_t)A->cols : 0;
  switch (n->op) {
  case CF_OP_INPUT:
  case CF_OP_PARAM:
    break;
  case CF_OP_MATMUL: {
    /* C = op(A) op(B), dC (r,c), op(A) (r,k), op(B) (k,c):
     * d op(A) = dC op(B)^T, d op(B) = op(A)^T dC; transposed storage swaps
     * the operands of each product. */
    bool ta = n->iarg[0], tb = n->iarg[1];
    int r = n->rows, c = n->cols, k = ta ? A->rows : A->cols;
    if (da) {
      float beta = cf_grad_first(A) ? 0.0f : 1.0f;
      if (!ta)
        gemm(da, dy, b, r, k, c, false, !tb, beta); /* dA (r,k) += dC op(B)^T */
      else
        gemm(da, b, dy, k, r, c, tb, true, beta); /* dA (k,r) += op(B) dC^T */
    }
    if (db) {
      float beta = cf_grad_first(Bn) ? 0.0f : 1.0f;
      if (!tb)
        gemm(db, a, dy, k, c, r, !ta, false, beta); /* dB (k,c) += op(A)^T dC */
      else
        gemm(db, dy, a, c, k, r, true, ta, beta); /* dB (c,k) += dC^T op(A) */
    }
    break;
  }
  case CF_OP_LINEAR: {
    CfNodeRec *bias = n->in[2] >= 0 ? &IN(2) : NULL;
    bool set_da = da && cf_grad_first(A);
    linear_bwd(da, db ? grad_acc(Bn) : NULL, bias && bias->needs_grad ? grad_acc(bias) : NULL, dy, a, b, n->rows,
               A->cols, n->cols, set_da);
    break;
  }
  case CF_OP_LINEAR_ACT: { /* dz = dy f'(z), db += colsum dz, then dx, dW as linear */
    CfNodeRec *bias = n->in[2] >= 0 ? &IN(2) : NULL;
    size_t st = fused_stride(n);
    float *z = n->scratch, *aux = n->scratch + st, *dz = n->scratch + 2 * st;
    fused_act_backward((CfPointwise)n->iarg[0], dz, bias && bias->needs_grad ? grad_acc(bias) : NULL, dy,
                       z, y, aux, n->rows, n->cols);
    bool set_da = da && cf_grad_first(A);
    linear_bwd(da, db ? grad_acc(Bn) : NULL, NULL, dz, a, b, n->rows, A->cols, n->cols, set_da);
    break;
  }
  case CF_OP_ADD: /* da += dy, db += dy */
    if (da)
      GRAD_LOOP(cf_grad_first(A), da, len, dy[i]);
    if (db)
      GRAD_LOOP(cf_grad_first(Bn), db, len, dy[i]);
    break;
  case CF_OP_SUB: /* da += dy, db -= dy */
    if (da)
      GRAD_LOOP(cf_grad_first(A), da, len, dy[i]);
    if (db)
      GRAD_LOOP(cf_grad_first(Bn), db, len, -dy[i]);
    break;
  case CF_OP_MUL: /* da += dy b, db += dy a */
    if (da)
      GRAD_LOOP(cf_grad_first(A), da, len, dy[i] * b[i]);
    if (db)
      GRAD_LOOP(cf_grad_first(Bn), db, len, dy[i] * a[i]);
    break;
  case CF_OP_SCALE: { /* da += s dy */
    float s = n->farg[0];
    for (size_t i = 0; i < len; i++)
      da[i] += s * dy[i];
    break;
  }
  case CF_OP_ADD_SCALAR: /* da += dy */
    for (size_t i = 0; i < len; i++)
      da[i] += dy[i];
    break;
  case CF_OP_BIAS_ADD: /* da (B,c) += dy; dbias (1,c) += column sums of dy */
    if (da)
      GRAD_LOOP(cf_grad_first(A), da, len, dy[i]);
    if (db && (db = grad_acc(Bn)))
      for (int r = 0; r < n->rows; r++) {
        const float *dr = dy + (size_t)r * n->cols;
        for (int j = 0; j < n->cols; j++)
          db[j] += dr[j];
      }
    break;
  case CF_OP_CONCAT_COLS: { /* dy (B,p+q) splits into da (B,p) and db (B,q) */
    size_t p = (size_t)A->cols, q = (size_t)Bn->cols;
    bool set_a = da && cf_grad_first(A), set_b = db && cf_grad_first(Bn);
    for (int r = 0; r < n->rows; r++) {
      const float *dr = dy + (size_t)r * n->cols;
      if (da)
        GRAD_LOOP(set_a, da + (size_t)r * p, p, dr[i]);
      if (db)
        GRAD_LOOP(set_b, db + (size_t)r * q, q, dr[p + i]);
    }
    break;
  }
  case CF_OP_SLICE_COLS: /* da (B,m)[:, start:start+len] += dy (B,len) */
    for (int r = 0; r < n->rows; r++) {
      float *dr = da + (size_t)r * A->cols + n->iarg[0];
      const float *gr = dy + (size_t)r * n->cols;
      for (int j = 0; j < n->cols; j++)
        dr[j] += gr[j];
    }
    break;
  case CF_OP_SILU: /* activations: da += dy f'(a) */
    act_backward(CF_PW_SILU, da, dy, a, y, len, 0.0f, !cf_grad_first(A));
    break;
  case CF_OP_SOFTPLUS:
    act_backward(CF_PW_SOFTPLUS, da, dy, a, y, len, 0.0f, !cf_grad_first(A));
    break;
  case CF_OP_SIGMOID:
    act_backward(CF_PW_SIGMOID, da, dy, a, y, len, 0.0f, !cf_grad_first(A));
    break;
  case CF_OP_TANH:
    act_backward(CF_PW_TANH, da, dy, a, y, len, 0.0f, !cf_grad_first(A));
    break;
  case CF_OP_RELU:
    act_backward(CF_PW_RELU, da, dy, a, y, len, 0.0f, !cf_grad_first(A));
    break;
  case CF_OP_LEAKY_RELU:
    act_backward(CF_PW_LEAKY_RELU, da, dy, a, y, len, n->farg[0], !cf_grad_first(A));
    break;
  case CF_OP_EXP: /* d e^x = e^x */
    for (size_t i = 0; i < len; i++)
      da[i] += dy[i] * y[i];
    break;
  case CF_OP_LOG: /* 1/x (infinite at 0) */
    for (size_t i = 0; i < len; i++)
      da[i] += dy[i] / a[i];
    break;
  case CF_OP_SQUARE: /* 2x */
    for (size_t i = 0; i < len; i++)
      da[i] += 2.0f * a[i] * dy[i];
    break;
  case CF_OP_ABS: /* sign(x), 0 at 0 */
    for (size_t i = 0; i < len; i++)
      da[i] += a[i] > 0.0f ? dy[i] : (a[i] < 0.0f ? -dy[i] : 0.0f);
    break;
  case CF_OP_SQRT: /* 1 / (2 sqrt x): infinite at 0, as in other frameworks */
    for (size_t i = 0; i < len; i++)
      da[i] += 0.5f * dy[i] / y[i];
    break;
  case CF_OP_SUM_ROWS: { /* dy (B,1): da (B,c) += s dy[r] */
    int c = A->cols;
    for (int r = 0; r < n->rows; r++) {
      float v = n->farg[0] * dy[r];
      float *dr = da + (size_t)r * c;
      for (int j = 0; j < c; j++)
        dr[j] += v;
    }
    break;
  }
  case CF_OP_SUM_COLS: /* dy (1,c): da (B,c) += s dy[j] */
    for (int r = 0; r < A->rows; r++) {
      float *dr = da + (size_t)r * n->cols;
      for (int j = 0; j < n->cols; j++)
        dr[j] += n->farg[0] * dy[j];
    }
    break;
  case CF_OP_SUM_ALL: { /* dy (1,1): da += s dy */
    float v = n->farg[0] * dy[0];
    for (size_t i = 0; i < na; i++)
      da[i] += v;
    break;
  }
  case CF_OP_MSE: { /* d/da mean (a-b)^2 = 2 (a - b) / N; d/db = -that */
    float v = 2.0f * dy[0] / (float)na;
    if (da)
      for (size_t i = 0; i < na; i++)
        da[i] += v * (a[i] - b[i]);
    if (db)
      for (size_t i = 0; i < na; i++)
        db[i] -= v * (a[i] - b[i]);
    break;
  }
  case CF_OP_L1: { /* d/da mean |a-b| = sign(a - b) / N (0 where equal); d/db = -that */
    float v = dy[0] / (float)na;
    if (da)
      for (size_t i = 0; i < na; i++)
        da[i] += a[i] > b[i] ? v : (a[i] < b[i] ? -v : 0.0f);
    if (db)
      for (size_t i = 0; i < na; i++)
        db[i] -= a[i] > b[i] ? v : (a[i] < b[i] ? -v : 0.0f);
    break;
  }
  case CF_OP_TIME_EMBED: {
    /* d sin(t f)/dt = f cos(t f) = f y[half+j]; d cos(t f)/dt = -f y[j]:
     * dt[r] += sum_j f_j (dy[j] y[half+j] - dy[half+j] y[j]). */
    int half = n->cols / 2;
    const float *f = n->scratch;
    for (int r = 0; r < n->rows; r++) {
      const float *yr = y + (size_t)r * n->cols, *dr = dy + (size_t)r * n->cols;
      float s = 0.0f;
      for (int j = 0; j < half; j++)
        s += f[j] * (dr[j] * yr[half + j] - dr[half + j] * yr[j]);
      da[r] += s;
    }
    break;
  }
  case CF_OP_CONV2D: /* image ops: ops_image.c */
  case CF_OP_UPSAMPLE_NEAREST:
  case CF_OP_UPSAMPLE_BILINEAR2X:
  case CF_OP_AVGPOOL:
  case CF_OP_GROUP_NORM:
  case CF_OP_ADD_CHANNEL:
    cf_image_backward(g, n);
    break;  case CF_OP_DIV: /* expression ops: ops_math.c */
  case CF_OP_SIN:
  case CF_OP_COS:
  case CF_OP_POW:
  case CF_OP_MUL_COL:
  case CF_OP_MUL_ROW:
    cf_math_backward(g, n);
    break;
  }
}
