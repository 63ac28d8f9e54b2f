/* Image ops on (B, C*H*W) tensors in CHW order: convolution (im2col + sgemm),
 * upsampling, average pooling, group normalisation, per-channel add.
 *
 * Builders check the geometry against the tensor shapes; kernels are called
 * from cf_op_forward/cf_op_backward (ops.c). Backward kernels accumulate (+=)
 * into the gradients of inputs that need one. A "plane" is one channel of one
 * image: H*W contiguous floats; B*C planes follow each other in memory. */
#include <math.h>
#include <string.h>

#include "gemm.h"
#include "graph.h"
#include "graph_private.h"

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("tree-vectorize", "vect-cost-model=dynamic", "no-trapping-math", "no-math-errno")
#endif

/* Samples per conv GEMM: enough for N = samples * H_out * W_out >= CONV_MIN_COLS
 * (one 7x7 image is a poor GEMM), but no more, so a chunk's im2col matrix
 * stays near cache size; and at most CONV_WORK_BUDGET floats of workspace
 * (im2col matrix + GEMM output). Measured on the U-Net at B = 64, 1 BLAS
 * thread: chunks of 1 to 8 28x28 images ran within the noise of each other
 * (about 780 ms fwd+bwd), a whole-batch GEMM was slower (the 58 MB im2col
 * matrix of a 32-channel 28x28 layer streams from memory). */
#ifndef CONV_MIN_COLS
#define CONV_MIN_COLS 2048
#endif
#ifndef CONV_WORK_BUDGET
#define CONV_WORK_BUDGET ((size_t)1 << 21)
#endif

static CfNodeRec *
node(CfGraph *g, CfNode n)
{
  return cf_graph_node(g, n);
}

/* ---- builders ------------------------------------------------------------------ */

int
cf_conv2d_out_size(int n, int k, int stride, int pad)
{
  return (n + 2 * pad - k) / stride + 1;
}

CfNode
cf_conv2d(CfGraph *g, CfNode x, CfNode w, CfNode bias, int C_in, int H, int W, int C_out, int k,
          int stride, int pad)
{
  if (g->failed)
    return -1;
  CF_ASSERT(C_in > 0 && H > 0 && W > 0 && C_out > 0 && stride > 0 && pad >= 0);
  CF_ASSERT(k > 0 && k % 2 == 1 && H + 2 * pad >= k && W + 2 * pad >= k);
  const CfNodeRec *nx = node(g, x), *nw = node(g, w);
  CF_ASSERT(nx->cols == C_in * H * W);
  CF_ASSERT(nw->rows == C_out && nw->cols == C_in * k * k);
  if (bias >= 0) {
    const CfNodeRec *nb = node(g, bias);
    CF_ASSERT(nb->rows == 1 && nb->cols == C_out);
  }
  int Ho = cf_conv2d_out_size(H, k, stride, pad), Wo = cf_conv2d_out_size(W, k, stride, pad);
  int B = nx->rows;
  CfNode n = cf_graph_push(g, CF_OP_CONV2D, B, C_out * Ho * Wo, x, w, bias);
  if (n < 0)
    return n;
  CfNodeRec *r = &g->nodes[n];
  size_t K = (size_t)C_in * k * k, HWo = (size_t)Ho * Wo;
  /* A 1x1 conv with stride 1 and no padding needs no im2col: each image is
   * already its column matrix, so it runs one GEMM per sample. */
  bool pointwise = k == 1 && stride == 1 && pad == 0;
  size_t per_sample = HWo * (K + (size_t)C_out);
  size_t want = (CONV_MIN_COLS + HWo - 1) / HWo, cap = CONV_WORK_BUDGET / per_sample;
  int nb = pointwise ? 1 : (int)(want < cap ? want : cap);
  nb = nb < 1 ? 1 : nb > B ? B : nb;
  int args[8] = { C_in, H, W, C_out, k, stride, pad, nb };
  memcpy(r->iarg, args, sizeof args);
  /* chunk of nb samples: col (K, nb*HWo), GEMM output (C_out, nb*HWo) */
  r->work_floats = pointwise ? 0 : nb * per_sample;
  return n;
}

CfNode
cf_upsample_nearest(CfGraph *g, CfNode x, int C, int H, int W, int factor)
{
  if (g->failed)
    return -1;
  const CfNodeRec *nx = node(g, x);
  CF_ASSERT(C > 0 && H > 0 && W > 0 && factor >= 1 && nx->cols == C * H * W);
  CfNode n = cf_graph_push(g, CF_OP_UPSAMPLE_NEAREST, nx->rows, C * H * W * factor * factor, x, -1, -1);
  if (n >= 0) {
    int args[4] = { C, H, W, factor };
    memcpy(g->nodes[n].iarg, args, sizeof args);
  }
  return n;
}

CfNode
cf_upsample_bilinear2x(CfGraph *g, CfNode x, int C, int H, int W)
{
  if (g->failed)
    return -1;
  const CfNodeRec *nx = node(g, x);
  CF_ASSERT(C > 0 && H > 0 && W > 0 && nx->cols == C * H * W);
  CfNode n = cf_graph_push(g, CF_OP_UPSAMPLE_BILINEAR2X, nx->rows, C * H * W * 4, x, -1, -1);
  if (n >= 0) {
    int args[3] = { C, H, W };
    memcpy(g->nodes[n].iarg, args, sizeof args);
  }
  return n;
}

CfNode
cf_avgpool(CfGraph *g, CfNode x, int C, int H, int W, int k)
{
  if (g->failed)
    return -1;
  const CfNodeRec *nx = node(g, x);
  CF_ASSERT(C > 0 && H > 0 && W > 0 && k >= 1 && nx->cols == C * H * W);
  CF_ASSERT(H % k == 0 && W % k == 0);
  CfNode n = cf_graph_push(g, CF_OP_AVGPOOL, nx->rows, C * (H / k) * (W / k), x, -1, -1);
  if (n >= 0) {
    int args[4] = { C, H, W, k };
    memcpy(g->nodes[n].iarg, args, sizeof args);
  }
  return n;
}

CfNode
cf_group_norm(CfGraph *g, CfNode x, CfNode gamma, CfNode beta, int C, int H, int W, int groups,
              float eps)
{
  if (g->failed)
    return -1;
  const CfNodeRec *nx = node(g, x), *ng = node(g, gamma), *nbeta = node(g, beta);
  CF_ASSERT(C > 0 && H > 0 && W > 0 && nx->cols == C * H * W);
  CF_ASSERT(groups >= 1 && C % groups == 0 && eps >= 0.0f);
  CF_ASSERT(ng->rows == 1 && ng->cols == C && nbeta->rows == 1 && nbeta->cols == C);
  const int B = nx->rows; /* read before the push: it may move the node array */
  CfNode n = cf_graph_push(g, CF_OP_GROUP_NORM, B, nx->cols, x, gamma, beta);
  if (n >= 0) {
    CfNodeRec *r = &g->nodes[n];
    int args[3] = { C, H * W, groups };
    memcpy(r->iarg, args, sizeof args);
    r->farg[0] = eps;
    r->scratch_floats = 2 * (size_t)B * (size_t)groups; /* mean, rstd */
  }
  return n;
}

CfNode
cf_add_channel(CfGraph *g, CfNode x, CfNode v, int C, int HW)
{
  if (g->failed)
    return -1;
  const CfNodeRec *nx = node(g, x), *nv = node(g, v);
  CF_ASSERT(C > 0 && HW > 0 && nx->cols == C * HW);
  CF_ASSERT(nv->rows == nx->rows && nv->cols == C);
  CfNode n = cf_graph_push(g, CF_OP_ADD_CHANNEL, nx->rows, nx->cols, x, v, -1);
  if (n >= 0) {
    int args[2] = { C, HW };
    memcpy(g->nodes[n].iarg, args, sizeof args);
  }
  return n;
}

/* ---- convolution ----------------------------------------------------------------- */

/* Geometry of one conv node. */
typedef struct {
  int C_in, H, W, C_out, k, stride, pad, nb;
  int Ho, Wo;
  int K;   /* C_in k k: rows of the column matrix */
  int HWo; /* Ho Wo */
} ConvGeom;

static ConvGeom
conv_geom(const CfNodeRec *n)
{
  ConvGeom c;
  c.C_in = n->iarg[0];
  c.H = n->iarg[1];
  c.W = n->iarg[2];
  c.C_out = n->iarg[3];
  c.k = n->iarg[4];
  c.stride = n->iarg[5];
  c.pad = n->iarg[6];
  c.nb = n->iarg[7];
  c.Ho = cf_conv2d_out_size(c.H, c.k, c.stride, c.pad);
  c.Wo = cf_conv2d_out_size(c.W, c.k, c.stride, c.pad);
  c.K = c.C_in * c.k * c.k;
  c.HWo = c.Ho * c.Wo;
  return c;
}

/* Output columns ow whose input column iw = ow*stride - pad + kj lies in
 * [0, W): the range [*lo, *hi). */
static void
valid_range(int W, int Wo, int stride, int pad, int kj, int *lo, int *hi)
{
  int off = pad - kj; /* iw = ow*stride - off */
  int l = off > 0 ? (off + stride - 1) / stride : 0;
  int h = W - 1 + off < 0 ? 0 : (W - 1 + off) / stride + 1;
  h = h > Wo ? Wo : h;
  l = l > h ? h : l;
  *lo = l;
  *hi = h;
}

/* Group statistics with independent partial sums (cf_sum_f64 and the two
 * below): one running sum waits on the previous addition (4 cycles) per
 * element, which made group norm a visible part of a U-Net step. */
/* sum (x - mu)^2 in double, eight partial sums */
static double
sumsq_dev8_f64(const float *restrict x, size_t n, double mu)
{
  double acc[8] = {0};
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int l = 0; l < 8; l++) {
      double d = (double)x[i + l] - mu;
      acc[l] += d * d;
    }
  double s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  for (; i < n; i++)
    s += ((double)x[i] - mu) * ((double)x[i] - mu);
  return s;
}

/* *sd = sum dy, *sdx = sum dy (x - mu) rstd over n positions, eight partial sums each */
static void
dy_sums8(const float *restrict dc, const float *restrict xc, int n, float mu, float rstd, float *sd, float *sdx)
{
  float a[8] = {0}, b[8] = {0};
  int p = 0;
  for (; p + 8 <= n; p += 8)
    for (int l = 0; l < 8; l++) {
      float xh = (xc[p + l] - mu) * rstd;
      a[l] += dc[p + l];
      b[l] += dc[p + l] * xh;
    }
  float s1 = ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
  float s2 = ((b[0] + b[1]) + (b[2] + b[3])) + ((b[4] + b[5]) + (b[6] + b[7]));
  for (; p < n; p++) {
    float xh = (xc[p] - mu) * rstd;
    s1 += dc[p];
    s2 += dc[p] * xh;
  }
  *sd = s1;
  *sdx = s2;
}

/* col (K, ns*HWo) from ns images x (ns, C_in*H*W): row (c*k + ki)*k + kj,
 * column s*HWo + oh*Wo + ow holds x[s, c, oh*stride-pad+ki, ow*stride-pad+kj]
 * (0 outside the image). */
static void
im2col(float *restrict col, const float *restrict x, int ns, const ConvGeom *c)
{
  const size_t N = (size_t)ns * c->HWo, HW = (size_t)c->H * c->W;
  for (int ch = 0; ch < c->C_in; ch++)
    for (int ki = 0; ki < c->k; ki++)
      for (int kj = 0; kj < c->k; kj++) {
        float *row = col + ((size_t)(ch * c->k + ki) * c->k + kj) * N;
        int lo, hi;
        valid_range(c->W, c->Wo, c->stride, c->pad, kj, &lo, &hi);
        for (int s = 0; s < ns; s++) {
          const float *plane = x + (size_t)s * c->C_in * HW + (size_t)ch * HW;
          for (int oh = 0; oh < c->Ho; oh++) {
            float *dst = row + (size_t)s * c->HWo + (size_t)oh * c->Wo;
            int ih = oh * c->stride - c->pad + ki;
            if (ih < 0 || ih >= c->H) {
              memset(dst, 0, (size_t)c->Wo * sizeof *dst);
              continue;
            }
            const float *src = plane + (size_t)ih * c->W - c->pad + kj; /* src[ow*stride] */
            for (int ow = 0; ow < lo; ow++)
              dst[ow] = 0.0f;
            if (c->stride == 1)
              memcpy(dst + lo, src + lo, (size_t)(hi - lo) * sizeof *dst);
            else
              for (int ow = lo; ow < hi; ow++)
                dst[ow] = src[ow * c->stride];
            for (int ow = hi; ow < c->Wo; ow++)
              dst[ow] = 0.0f;
          }
        }
      }
}

/* Adjoint of im2col: dx (ns, C_in*H*W) += the entries of dcol (K, ns*HWo)
 * at the positions im2col read them from. */
static void
col2im(float *restrict dx, const float *restrict dcol, int ns, const ConvGeom *c)
{
  const size_t N = (size_t)ns * c->HWo, HW = (size_t)c->H * c->W;
  for (int ch = 0; ch < c->C_in; ch++)
    for (int ki = 0; ki < c->k; ki++)
      for (int kj = 0; kj < c->k; kj++) {
        const float *row = dcol + ((size_t)(ch * c->k + ki) * c->k + kj) * N;
        int lo, hi;
        valid_range(c->W, c->Wo, c->stride, c->pad, kj, &lo, &hi);
        for (int s = 0; s < ns; s++) {
          float *plane = dx + (size_t)s * c->C_in * HW + (size_t)ch * HW;
          for (int oh = 0; oh < c->Ho; oh++) {
            int ih = oh * c->stride - c->pad + ki;
            if (ih < 0 || ih >= c->H)
              continue;
            const float *src = row + (size_t)s * c->HWo + (size_t)oh * c->Wo;
            float *dst = plane + (size_t)ih * c->W - c->pad + kj; /* dst[ow*stride] */
            if (c->stride == 1)
              for (int ow = lo; ow < hi; ow++)
                dst[ow] += src[ow];
            else
              for (int ow = lo; ow < hi; ow++)
                dst[ow * c->stride] += src[ow];
          }
        }
      }
}

/* y (B, C_out*HWo) = conv(x (B, C_in*H*W), w (C_out, K)) + bias (1, C_out).
 * Per chunk of ns samples: col (K, ns*HWo) = im2col(x), t (C_out, ns*HWo) =
 * w col, then t's column blocks are scattered into the samples' rows of y.
 * A single-sample chunk writes y directly. */
static void
conv_forward(float *y, const float *x, const float *w, const float *bias, int B, const ConvGeom *c,
             float *work)
{
  const size_t in_sz = (size_t)c->C_in * c->H * c->W, out_sz = (size_t)c->C_out * c->HWo;
  const bool pointwise = c->k == 1 && c->stride == 1 && c->pad == 0;
  for (int b0 = 0; b0 < B; b0 += c->nb) {
    int ns = B - b0 < c->nb ? B - b0 : c->nb;
    int N = ns * c->HWo;
    const float *col = x + (size_t)b0 * in_sz;
    if (!pointwise) {
      im2col(work, x + (size_t)b0 * in_sz, ns, c);
      col = work;
    }
    float *t = ns == 1 ? y + (size_t)b0 * out_sz : work + (size_t)c->K * c->nb * c->HWo;
    cf_gemm(t, N, w, c->K, col, N, c->C_out, N, c->K, false, false, 0.0f);
    for (int s = 0; s < ns; s++)
      for (int o = 0; o < c->C_out; o++) {
        const float *src = t + (size_t)o * N + (size_t)s * c->HWo;
        float *dst = y + (size_t)(b0 + s) * out_sz + (size_t)o * c->HWo;
        float bo = bias ? bias[o] : 0.0f;
        for (int p = 0; p < c->HWo; p++)
          dst[p] = src[p] + bo;
      }
  }
}

/* dy (B, C_out*HWo): per chunk, dt (C_out, ns*HWo) gathered from dy;
 * dbias += row sums of dt; dw (C_out, K) += dt col^T (col recomputed);
 * dcol (K, ns*HWo) = w^T dt, dx += col2im(dcol). dx, dw, dbias may be NULL. */
static void
conv_backward(float *dx, float *dw, float *dbias, const float *dy, const float *x, const float *w,
              int B, const ConvGeom *c, float *work, bool set_dx)
{
  const size_t in_sz = (size_t)c->C_in * c->H * c->W, out_sz = (size_t)c->C_out * c->HWo;
  const bool pointwise = c->k == 1 && c->stride == 1 && c->pad == 0;
  for (int b0 = 0; b0 < B; b0 += c->nb) {
    int ns = B - b0 < c->nb ? B - b0 : c->nb;
    int N = ns * c->HWo;
    const float *dt = dy + (size_t)b0 * out_sz;
    if (ns > 1) {
      float *t = work + (size_t)c->K * c->nb * c->HWo;
      for (int s = 0; s < ns; s++)
        for (int o = 0; o < c->C_out; o++)
          memcpy(t + (size_t)o * N + (size_t)s * c->HWo,
                 dy + (size_t)(b0 + s) * out_sz + (size_t)o * c->HWo, (size_t)c->HWo * sizeof *t);
      dt = t;
    }
    if (dbias)
      for (int o = 0; o < c->C_out; o++) {
        dbias[o] += (float)cf_sum_f64(dt + (size_t)o * N, (size_t)N);
      }
    if (dw) {
      const float *col = x + (size_t)b0 * in_sz;
      if (!pointwise) {
        im2col(work, x + (size_t)b0 * in_sz, ns, c);
        col = work;
      }
      cf_gemm(dw, c->K, dt, N, col, N, c->C_out, c->K, N, false, true, 1.0f);
    }
    if (dx) {
      if (pointwise) { /* dx_b (C_in, HW) += w^T dt (= when set_dx) */
        cf_gemm(dx + (size_t)b0 * in_sz, N, w, c->K, dt, N, c->K, N, c->C_out, true, false, set_dx ? 0.0f : 1.0f);
      } else {
        cf_gemm(work, N, w, c->K, dt, N, c->K, N, c->C_out, true, false, 0.0f);
        col2im(dx + (size_t)b0 * in_sz, work, ns, c);
      }
    }
  }
}

void
cf_ref_conv2d(float *y, const float *x, const float *w, const float *bias, int B, int C_in, int H,
              int W, int C_out, int k, int stride, int pad)
{
  int Ho = cf_conv2d_out_size(H, k, stride, pad), Wo = cf_conv2d_out_size(W, k, stride, pad);
  for (int b = 0; b < B; b++)
    for (int o = 0; o < C_out; o++)
      for (int i = 0; i < Ho; i++)
        for (int j = 0; j < Wo; j++) {
          double s = bias ? bias[o] : 0.0;
          for (int c = 0; c < C_in; c++)
            for (int ki = 0; ki < k; ki++)
              for (int kj = 0; kj < k; kj++) {
                int ih = i * stride - pad + ki, iw = j * stride - pad + kj;
                if (ih < 0 || ih >= H || iw < 0 || iw >= W)
                  continue;
                s += (double)w[(size_t)o * C_in * k * k + (size_t)(c * k + ki) * k + kj] *
                     x[(size_t)b * C_in * H * W + (size_t)(c * H + ih) * W + iw];
              }
          y[(size_t)b * C_out * Ho * Wo + (size_t)(o * Ho + i) * Wo + j] = (float)s;
        }
}

/* ---- resampling ------------------------------------------------------------------ */

/* y planes (fH, fW) from x planes (H, W): y[i, j] = x[i/f, j/f]; np planes. */
static void
upsample_nearest_fwd(float *restrict y, const float *restrict x, int np, int H, int W, int f)
{
  int Wf = W * f;
  for (int p = 0; p < np; p++)
    for (int i = 0; i < H; i++) {
      const float *src = x + ((size_t)p * H + i) * W;
      float *dst = y + ((size_t)p * H * f + (size_t)i * f) * Wf;
      for (int j = 0; j < W; j++)
        for (int t = 0; t < f; t++)
          dst[j * f + t] = src[j];
      for (int r = 1; r < f; r++) /* the other f - 1 output rows repeat the first */
        memcpy(dst + (size_t)r * Wf, dst, (size_t)Wf * sizeof *dst);
    }
}

/* dx[i, j] += sum of dy over the f x f block it was copied to (= when set). */
static void
upsample_nearest_bwd(float *restrict dx, const float *restrict dy, int np, int H, int W, int f, bool set)
{
  int Wf = W * f;
  for (int p = 0; p < np; p++)
    for (int i = 0; i < H; i++) {
      float *dst = dx + ((size_t)p * H + i) * W;
      const float *src = dy + ((size_t)p * H * f + (size_t)i * f) * Wf;
      for (int j = 0; j < W; j++) {
        float s = 0.0f;
        for (int r = 0; r < f; r++)
          for (int t = 0; t < f; t++)
            s += src[(size_t)r * Wf + j * f + t];
        dst[j] = set ? s : dst[j] + s;
      }
    }
}

/* Bilinear 2x taps along one axis of length n for output index o: the near
 * input index (weight 0.75) and the far one (weight 0.25), clamped. */
static inline void
bilinear_taps(int o, int n, int *near, int *far)
{
  int i = o >> 1;
  int f = (o & 1) ? i + 1 : i - 1;
  *near = i;
  *far = f < 0 ? 0 : f >= n ? n - 1 : f;
}

/* y planes (2H, 2W) = bilinear 2x of x planes (H, W). */
static void
upsample_bilinear_fwd(float *restrict y, const float *restrict x, int np, int H, int W)
{
  for (int p = 0; p < np; p++) {
    const float *xp = x + (size_t)p * H * W;
    float *yp = y + (size_t)p * 4 * H * W;
    for (int oi = 0; oi < 2 * H; oi++) {
      int in_, if_;
      bilinear_taps(oi, H, &in_, &if_);
      const float *rn = xp + (size_t)in_ * W, *rf = xp + (size_t)if_ * W;
      float *dst = yp + (size_t)oi * 2 * W;
      for (int oj = 0; oj < 2 * W; oj++) {
        int jn, jf;
        bilinear_taps(oj, W, &jn, &jf);
        dst[oj] = 0.75f * (0.75f * rn[jn] + 0.25f * rn[jf]) + 0.25f * (0.75f * rf[jn] + 0.25f * rf[jf]);
      }
    }
  }
}

/* Adjoint: each output's gradient goes back to its four taps with the same weights. */
static void
upsample_bilinear_bwd(float *restrict dx, const float *restrict dy, int np, int H, int W)
{
  for (int p = 0; p < np; p++) {
    float *dp = dx + (size_t)p * H * W;
    const float *gp = dy + (size_t)p * 4 * H * W;
    for (int oi = 0; oi < 2 * H; oi++) {
      int in_, if_;
      bilinear_taps(oi, H, &in_, &if_);
      float *rn = dp + (size_t)in_ * W, *rf = dp + (size_t)if_ * W;
      const float *src = gp + (size_t)oi * 2 * W;
      for (int oj = 0; oj < 2 * W; oj++) {
        int jn, jf;
        bilinear_taps(oj, W, &jn, &jf);
        float gv = src[oj];
        rn[jn] += 0.5625f * gv;
        rn[jf] += 0.1875f * gv;
        rf[jn] += 0.1875f * gv;
        rf[jf] += 0.0625f * gv;
      }
    }
  }
}

/* y planes (H/k, W/k): mean of each k x k block of x planes (H, W). */
static void
avgpool_fwd(float *restrict y, const float *restrict x, int np, int H, int W, int k)
{
  int Ho = H / k, Wo = W / k;
  float inv = 1.0f / (float)(k * k);
  for (int p = 0; p < np; p++)
    for (int i = 0; i < Ho; i++) {
      float *dst = y + ((size_t)p * Ho + i) * Wo;
      for (int j = 0; j < Wo; j++)
        dst[j] = 0.0f;
      for (int r = 0; r < k; r++) {
        const float *src = x + ((size_t)p * H + (size_t)i * k + r) * W;
        for (int j = 0; j < Wo; j++)
          for (int t = 0; t < k; t++)
            dst[j] += src[j * k + t];
      }
      for (int j = 0; j < Wo; j++)
        dst[j] *= inv;
    }
}

/* dx += dy / k^2 spread over each block (= when set: H and W are multiples
 * of k, so the blocks cover dx). */
static void
avgpool_bwd(float *restrict dx, const float *restrict dy, int np, int H, int W, int k, bool set)
{
  int Ho = H / k, Wo = W / k;
  float inv = 1.0f / (float)(k * k);
  for (int p = 0; p < np; p++)
    for (int i = 0; i < Ho; i++) {
      const float *src = dy + ((size_t)p * Ho + i) * Wo;
      for (int r = 0; r < k; r++) {
        float *dst = dx + ((size_t)p * H + (size_t)i * k + r) * W;
        for (int j = 0; j < Wo; j++)
          for (int t = 0; t < k; t++)
            dst[j * k + t] = inv * src[j] + (set ? 0.0f : dst[j * k + t]);
      }
    }
}

/* ---- group norm ------------------------------------------------------------------ */

/* x, y (B, C*HW); each (sample, group) is a contiguous block of N = (C/G) HW
 * values: mu = mean, var = mean (x - mu)^2 (two passes, double), rstd =
 * 1/sqrt(var + eps), y = gamma[c] (x - mu) rstd + beta[c]. stats (B*G, 2) =
 * (mu, rstd) kept for backward. */
static void
group_norm_fwd(float *restrict y, float *restrict stats, const float *restrict x,
               const float *restrict gamma, const float *restrict beta, int B, int C, int HW, int G,
               float eps)
{
  int Cg = C / G;
  size_t N = (size_t)Cg * HW;
  for (int b = 0; b < B; b++)
    for (int gi = 0; gi < G; gi++) {
      size_t off = (size_t)b * C * HW + (size_t)gi * N;
      const float *xs = x + off;
      double mu = cf_sum_f64(xs, N) / (double)N, v = sumsq_dev8_f64(xs, N, mu);
      float rstd = (float)(1.0 / sqrt(v / (double)N + eps));
      float muf = (float)mu;
      stats[2 * ((size_t)b * G + gi)] = muf;
      stats[2 * ((size_t)b * G + gi) + 1] = rstd;
      for (int cc = 0; cc < Cg; cc++) {
        int c = gi * Cg + cc;
        float a = gamma[c] * rstd, sh = beta[c] - muf * a; /* y = a x + sh */
        const float *xc = xs + (size_t)cc * HW;
        float *yc = y + off + (size_t)cc * HW;
        for (int p = 0; p < HW; p++)
          yc[p] = a * xc[p] + sh;
      }
    }
}

/* With xhat = (x - mu) rstd and g = dy gamma[c] over the group's N values:
 * dx = rstd (g - mean(g) - xhat mean(g xhat)); dgamma[c] += sum dy xhat,
 * dbeta[c] += sum dy over the channel's positions of every sample. */
static void
group_norm_bwd(float *dx, float *dgamma, float *dbeta, const float *restrict dy,
               const float *restrict x, const float *restrict stats, const float *restrict gamma,
               int B, int C, int HW, int G, bool set_dx)
{
  int Cg = C / G;
  size_t N = (size_t)Cg * HW;
  for (int b = 0; b < B; b++)
    for (int gi = 0; gi < G; gi++) {
      size_t off = (size_t)b * C * HW + (size_t)gi * N;
      float mu = stats[2 * ((size_t)b * G + gi)], rstd = stats[2 * ((size_t)b * G + gi) + 1];
      double m1 = 0.0, m2 = 0.0; /* sum g, sum g xhat */
      for (int cc = 0; cc < Cg; cc++) {
        int c = gi * Cg + cc;
        const float *xc = x + off + (size_t)cc * HW, *dc = dy + off + (size_t)cc * HW;
        float sd, sdx;
        dy_sums8(dc, xc, HW, mu, rstd, &sd, &sdx);
        if (dbeta)
          dbeta[c] += sd;
        if (dgamma)
          dgamma[c] += sdx;
        m1 += (double)gamma[c] * sd;
        m2 += (double)gamma[c] * sdx;
      }
      if (!dx)
        continue;
      float a1 = (float)(m1 / (double)N), a2 = (float)(m2 / (double)N);
      for (int cc = 0; cc < Cg; cc++) {
        int c = gi * Cg + cc;
        const float *xc = x + off + (size_t)cc * HW, *dc = dy + off + (size_t)cc * HW;
        float *gx = dx + off + (size_t)cc * HW;
        float gm = gamma[c];
        if (set_dx)
          for (int p = 0; p < HW; p++)
            gx[p] = rstd * (gm * dc[p] - a1 - (xc[p] - mu) * rstd * a2);
        else
          for (int p = 0; p < HW; p++)
            gx[p] += rstd * (gm * dc[p] - a1 - (xc[p] - mu) * rstd * a2);
      }
    }
}

/* ---- dispatch -------------------------------------------------------------------- */

#define IN(k) (g->nodes[n->in[k]])

void
cf_image_forward(CfGraph *g, CfNodeRec *n)
{
  float *y = n->value;
  const float *a = IN(0).value;
  int B = n->rows;
  switch (n->op) {
  case CF_OP_CONV2D: { /* y (B, C_out*HWo) = conv(x (B, C_in*H*W), w (C_out, K)) + bias */
    ConvGeom c = conv_geom(n);
    conv_forward(y, a, IN(1).value, n->in[2] >= 0 ? IN(2).value : NULL, B, &c, g->work);
    break;
  }
  case CF_OP_UPSAMPLE_NEAREST: /* (B, C*H*W) -> (B, C*fH*fW) */
    upsample_nearest_fwd(y, a, B * n->iarg[0], n->iarg[1], n->iarg[2], n->iarg[3]);
    break;
  case CF_OP_UPSAMPLE_BILINEAR2X: /* (B, C*H*W) -> (B, C*2H*2W) */
    upsample_bilinear_fwd(y, a, B * n->iarg[0], n->iarg[1], n->iarg[2]);
    break;
  case CF_OP_AVGPOOL: /* (B, C*H*W) -> (B, C*(H/k)*(W/k)) */
    avgpool_fwd(y, a, B * n->iarg[0], n->iarg[1], n->iarg[2], n->iarg[3]);
    break;
  case CF_OP_GROUP_NORM: /* x, y (B, C*HW); gamma, beta (1, C) */
    group_norm_fwd(y, n->scratch, a, IN(1).value, IN(2).value, B, n->iarg[0], n->iarg[1], n->iarg[2],
                   n->farg[0]);
    break;
  case CF_OP_ADD_CHANNEL: { /* y (B, C*HW) = x + v (B, C) per channel */
    int C = n->iarg[0], HW = n->iarg[1];
    const float *v = IN(1).value;
    for (int bc = 0; bc < B * C; bc++) {
      const float *xs = a + (size_t)bc * HW;
      float *ys = y + (size_t)bc * HW, vv = v[bc];
      for (int p = 0; p < HW; p++)
        ys[p] = xs[p] + vv;
    }
    break;
  }
  default:
    CF_ASSERT(!"not an image op");
  }
}

void
cf_image_backward(CfGraph *g, CfNodeRec *n)
{
  const float *dy = n->grad;
  CfNodeRec *A = &IN(0);
  /* the first input's gradient may be stored (cf_op_stores_grads); the
   * others (parameters, per-channel vectors) are added to */
  float *da = A->needs_grad ? A->grad : NULL;
  bool set_a = da ? cf_grad_first(A) : false; /* false after the graph's touch for bilinear */
  float *db = n->in[1] >= 0 && IN(1).needs_grad ? (cf_grad_touch(&IN(1)), IN(1).grad) : NULL;
  float *dc = n->in[2] >= 0 && IN(2).needs_grad ? (cf_grad_touch(&IN(2)), IN(2).grad) : NULL;
  int B = n->rows;
  switch (n->op) {
  case CF_OP_CONV2D: {
    ConvGeom c = conv_geom(n);
    const bool pointwise = c.k == 1 && c.stride == 1 && c.pad == 0;
    if (set_a && !pointwise) /* col2im adds its overlapping windows */
      memset(da, 0, (size_t)B * c.C_in * c.H * c.W * sizeof *da);
    conv_backward(da, db, dc, dy, A->value, IN(1).value, B, &c, g->work, set_a && pointwise);
    break;
  }
  case CF_OP_UPSAMPLE_NEAREST:
    if (da)
      upsample_nearest_bwd(da, dy, B * n->iarg[0], n->iarg[1], n->iarg[2], n->iarg[3], set_a);
    break;
  case CF_OP_UPSAMPLE_BILINEAR2X:
    if (da)
      upsample_bilinear_bwd(da, dy, B * n->iarg[0], n->iarg[1], n->iarg[2]);
    break;
  case CF_OP_AVGPOOL:
    if (da)
      avgpool_bwd(da, dy, B * n->iarg[0], n->iarg[1], n->iarg[2], n->iarg[3], set_a);
    break;
  case CF_OP_GROUP_NORM:
    group_norm_bwd(da, db, dc, dy, A->value, n->scratch, IN(1).value, B, n->iarg[0], n->iarg[1],
                   n->iarg[2], set_a);
    break;
  case CF_OP_ADD_CHANNEL: { /* dx += dy; dv[b, c] += sum over the channel's positions */
    int C = n->iarg[0], HW = n->iarg[1];
    for (int bc = 0; bc < B * C; bc++) {
      const float *ds = dy + (size_t)bc * HW;
      if (da) {
        float *dxs = da + (size_t)bc * HW;
        if (set_a)
          memcpy(dxs, ds, (size_t)HW * sizeof *dxs);
        else
          for (int p = 0; p < HW; p++)
            dxs[p] += ds[p];
      }
      if (db) {
        float s = 0.0f;
        for (int p = 0; p < HW; p++)
          s += ds[p];
        db[bc] += s;
      }
    }
    break;
  }
  default:
    CF_ASSERT(!"not an image op");
  }
}
