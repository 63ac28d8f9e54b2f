/* Reverse-mode automatic differentiation over 2-D float tensors.
 *
 * Usage: a model declares its parameters once in a CfParams (one contiguous
 * arena for values, one for gradients). For each batch shape it builds a
 * CfGraph: inputs, parameter views and ops are added, then cf_graph_finalize()
 * allocates one arena for all intermediate values and one for their
 * gradients. Every training step then only writes the inputs, calls
 * cf_graph_forward() and cf_graph_backward(): no allocation in the step loop.
 *
 * Conventions: tensors are row-major (rows, cols); a batch is rows. Backward
 * kernels accumulate (+=) into input gradients. Parameter gradients go to the
 * CfParams gradient arena, which the caller zeroes (cf_params_zero_grad)
 * before each backward pass. Shape errors while building are programming
 * errors and trip CF_ASSERT. */
#ifndef CF_GRAPH_H
#define CF_GRAPH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rng.h"
#include "status.h"

/* ---- parameters ---------------------------------------------------------- */

typedef enum {
  CF_INIT_ZERO,
  CF_INIT_ONE,
  CF_INIT_UNIFORM_FAN_IN, /* U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = cols */
  CF_INIT_NORMAL,         /* N(0, scale^2) */
} CfInit;

typedef struct {
  char name[64];
  int rows, cols;
  size_t offset; /* into the arenas, in floats */
  CfInit init;
  float scale;
} CfParamInfo;

typedef struct {
  int count, capacity;
  CfParamInfo *info;
  size_t total; /* floats in each arena */
  float *value; /* total floats, 64-byte aligned; NULL until allocated */
  float *grad;  /* total floats */
} CfParams;

void cf_params_init(CfParams *p);
void cf_params_clear(CfParams *p);
/* Declares a parameter (before cf_params_alloc); returns its index. */
int cf_params_add(CfParams *p, const char *name, int rows, int cols, CfInit init, float scale);
/* Allocates both arenas (zeroed). Returns CF_ERR_NOMEM on failure. */
CfStatus cf_params_alloc(CfParams *p);
/* Fills every parameter according to its CfInit. */
void cf_params_randomize(CfParams *p, CfRng *rng);
void cf_params_zero_grad(CfParams *p);
float *cf_params_value(CfParams *p, int index);
float *cf_params_grad(CfParams *p, int index);
/* Index by name or -1. */
int cf_params_find(const CfParams *p, const char *name);

/* ---- graph ----------------------------------------------------------------- */

typedef struct CfGraph CfGraph;
typedef int CfNode; /* index into the graph; -1 is invalid */

CfGraph *cf_graph_new(void);
void cf_graph_free(CfGraph *g);

/* Input tensor the caller fills before forward (buffer owned by the graph).
 * requires_grad: whether backward should compute its gradient (for tests
 * and for inputs that feed a trainable upstream). */
CfNode cf_input(CfGraph *g, int rows, int cols, bool requires_grad);
/* A view of parameter `index` of `p` (value and gradient live in p's arenas). */
/* The view is resolved by cf_graph_finalize: p must be allocated by then and
 * keep its arenas for as long as the graph is used. */
CfNode cf_param(CfGraph *g, CfParams *p, int index);

/* Allocates value/grad arenas. After this, no more nodes can be added. */
CfStatus cf_graph_finalize(CfGraph *g);
void cf_graph_forward(CfGraph *g);
/* Zeroes the non-parameter gradients, seeds d(loss)/d(loss) = 1 and runs the
 * backward kernels in reverse order. `loss` must be 1 x 1. */
void cf_graph_backward(CfGraph *g, CfNode loss);

float *cf_graph_value(CfGraph *g, CfNode n);
float *cf_graph_grad(CfGraph *g, CfNode n);
int cf_graph_rows(const CfGraph *g, CfNode n);
int cf_graph_cols(const CfGraph *g, CfNode n);
int cf_graph_node_count(const CfGraph *g);
/* Floats held by the graph's own arenas (values + grads + the shared
 * transient workspace of the image ops). */
size_t cf_graph_arena_floats(const CfGraph *g);

/* ---- ops (shape comments: a is (r, c)) ------------------------------------- */

/* C = op(a) op(b); op = transpose when ta/tb. a (r,k) or (k,r); b (k,c) or (c,k). */
CfNode cf_matmul(CfGraph *g, CfNode a, CfNode b, bool ta, bool tb);
/* Fused affine layer: y = x W^T + bias; x (B,in), W (out,in), bias (1,out) -> (B,out).
 * bias may be -1 (no bias). */
CfNode cf_linear(CfGraph *g, CfNode x, CfNode w, CfNode bias);
/* Pointwise activations that cf_linear_act can fuse into the affine layer. */
typedef enum {
  CF_PW_IDENTITY,
  CF_PW_SILU,
  CF_PW_RELU,
  CF_PW_TANH,
  CF_PW_SOFTPLUS,
  CF_PW_LEAKY_RELU, /* slope 0.01 */
  CF_PW_SIGMOID,
} CfPointwise;
/* y = act(x W^T + bias), shapes as cf_linear (bias may be -1: none). One node
 * (the pre-activation lives in op scratch): saves a pass over memory and the
 * clearing of one gradient buffer per layer compared to cf_linear + cf_silu. */
CfNode cf_linear_act(CfGraph *g, CfNode x, CfNode w, CfNode bias, CfPointwise act);
CfNode cf_add(CfGraph *g, CfNode a, CfNode b);       /* same shape */
CfNode cf_sub(CfGraph *g, CfNode a, CfNode b);       /* same shape */
CfNode cf_mul(CfGraph *g, CfNode a, CfNode b);       /* same shape, elementwise */
CfNode cf_scale(CfGraph *g, CfNode a, float s);      /* s * a */
CfNode cf_add_scalar(CfGraph *g, CfNode a, float s); /* a + s */
CfNode cf_bias_add(CfGraph *g, CfNode a, CfNode bias); /* a (B,n) + bias (1,n) */
/* (B,n) | (B,m) -> (B,n+m). On images in CHW order, (B, C1*H*W) | (B, C2*H*W)
 * is the channel concatenation (B, (C1+C2)*H*W): a's channels come first. */
CfNode cf_concat_cols(CfGraph *g, CfNode a, CfNode b);
CfNode cf_slice_cols(CfGraph *g, CfNode a, int start, int len); /* (B,n) -> (B,len) */
CfNode cf_silu(CfGraph *g, CfNode a);
CfNode cf_softplus(CfGraph *g, CfNode a);
CfNode cf_sigmoid(CfGraph *g, CfNode a);
CfNode cf_tanh(CfGraph *g, CfNode a);
CfNode cf_relu(CfGraph *g, CfNode a);
CfNode cf_leaky_relu(CfGraph *g, CfNode a, float slope);
/* Domains: cf_log needs a > 0 (log 0 = -inf, a < 0 gives NaN; gradient 1/a).
 * cf_sqrt needs a >= 0 (a < 0 gives NaN); its gradient 1/(2 sqrt a) is +inf
 * at 0, so keep a > 0 (e.g. add an epsilon) where it is differentiated.
 * SiLU, sigmoid and softplus use an inline float exp (about 1 ulp; exp(x) is
 * taken as 0 below x = -87), cf_exp uses libm expf. */
CfNode cf_exp(CfGraph *g, CfNode a);
CfNode cf_log(CfGraph *g, CfNode a);   /* natural log; input must be > 0 */
CfNode cf_square(CfGraph *g, CfNode a);
CfNode cf_abs(CfGraph *g, CfNode a);   /* subgradient 0 at 0 */
CfNode cf_sqrt(CfGraph *g, CfNode a);  /* input must be >= 0 */
CfNode cf_sum_rows(CfGraph *g, CfNode a);  /* (B,n) -> (B,1): sum over each row */
CfNode cf_sum_cols(CfGraph *g, CfNode a);  /* (B,n) -> (1,n): sum over each column */
CfNode cf_sum_all(CfGraph *g, CfNode a);   /* -> (1,1) */
CfNode cf_mean_rows(CfGraph *g, CfNode a); /* (B,n) -> (B,1) */
CfNode cf_mean_cols(CfGraph *g, CfNode a); /* (B,n) -> (1,n) */
CfNode cf_mean_all(CfGraph *g, CfNode a);  /* -> (1,1) */
/* Mean over all elements of (a - b)^2, resp. |a - b| -> (1,1). */
CfNode cf_mse(CfGraph *g, CfNode a, CfNode b);
CfNode cf_l1(CfGraph *g, CfNode a, CfNode b);
/* Sinusoidal embedding of t (B,1) -> (B,dim), dim even:
 * e[j] = sin(t * f_j), e[dim/2 + j] = cos(t * f_j), f_j = max_period^(-j/(dim/2)). */
CfNode cf_time_embed(CfGraph *g, CfNode t, int dim, float max_period);

/* ---- image ops ---------------------------------------------------------------
 * A batch of images is a (B, C*H*W) tensor, each row one image in CHW order
 * (channel-major: element (c, i, j) at column (c*H + i)*W + j). The geometry is
 * given when the op is built and checked against the tensor shapes. */

/* 2-D cross-correlation (as in other frameworks' "conv2d"):
 * x (B, C_in*H*W), w (C_out, C_in*k*k) with row o holding kernel (c, ki, kj) at
 * column (c*k + ki)*k + kj, bias (1, C_out) or -1 -> (B, C_out*H_out*W_out),
 * H_out = (H + 2 pad - k)/stride + 1 (likewise W_out), zero padding:
 * y[b,o,i,j] = bias[o] + sum_{c,ki,kj} w[o,c,ki,kj] x[b,c,i*stride-pad+ki, j*stride-pad+kj].
 * k odd. Computed as im2col + one sgemm per chunk of samples (the workspace
 * is shared by the graph); backward with sgemm + col2im. */
CfNode cf_conv2d(CfGraph *g, CfNode x, CfNode w, CfNode bias, int C_in, int H, int W, int C_out,
                 int k, int stride, int pad);
/* Output size of cf_conv2d along one axis: (n + 2 pad - k)/stride + 1. */
int cf_conv2d_out_size(int n, int k, int stride, int pad);
/* Nearest-neighbour upsampling by an integer factor:
 * x (B, C*H*W) -> (B, C*(fH)*(fW)), y[c, i, j] = x[c, i/f, j/f]. */
CfNode cf_upsample_nearest(CfGraph *g, CfNode x, int C, int H, int W, int factor);
/* Bilinear 2x upsampling, align_corners = false convention: output pixel i
 * samples the input at (i + 0.5)/2 - 0.5, clamped to [0, H-1] at the borders.
 * Along one axis: y[2i] = 0.75 x[i] + 0.25 x[max(i-1, 0)],
 * y[2i+1] = 0.75 x[i] + 0.25 x[min(i+1, H-1)]; separable in the two axes.
 * x (B, C*H*W) -> (B, C*2H*2W). */
CfNode cf_upsample_bilinear2x(CfGraph *g, CfNode x, int C, int H, int W);
/* Average pooling over k x k windows with stride k (H, W divisible by k):
 * x (B, C*H*W) -> (B, C*(H/k)*(W/k)). */
CfNode cf_avgpool(CfGraph *g, CfNode x, int C, int H, int W, int k);
/* Group normalisation: the C channels form `groups` groups of C/groups
 * consecutive channels; each sample's group (its (C/groups)*H*W values) is
 * normalised to zero mean and unit variance (biased variance, + eps), then
 * y[c, p] = gamma[c] xhat[c, p] + beta[c]. x (B, C*H*W), gamma, beta (1, C). */
CfNode cf_group_norm(CfGraph *g, CfNode x, CfNode gamma, CfNode beta, int C, int H, int W, int groups,
                     float eps);
/* Per-channel broadcast add: x (B, C*HW) + v (B, C), y[b, c, p] = x[b, c, p] + v[b, c]
 * (e.g. a projected time embedding added to every position of each channel). */
CfNode cf_add_channel(CfGraph *g, CfNode x, CfNode v, int C, int HW);

/* Naive direct convolution (loops, double accumulation) with cf_conv2d's
 * layout and semantics; bias may be NULL. For tests and benchmarks. */
void cf_ref_conv2d(float *y, const float *x, const float *w, const float *bias, int B, int C_in, int H,
                   int W, int C_out, int k, int stride, int pad);

/* ---- expression ops (ops_math.c) ----------------------------------------------
 * Used by compiled constraint expressions (expr.h) and the explicit gradient
 * of an input-convex network (namm.h). Domains follow IEEE float: x / 0 is
 * +-inf (0 / 0 NaN) and so are the gradients there. */

CfNode cf_div(CfGraph *g, CfNode a, CfNode b); /* a ./ b, same shape */
CfNode cf_sin(CfGraph *g, CfNode a);
CfNode cf_cos(CfGraph *g, CfNode a);
/* a^p elementwise for a constant p (powf semantics): any base when p is an
 * integer (-2^3 = -8, (-2)^-2 = 0.25), a >= 0 otherwise (a < 0 gives NaN);
 * d/da = p a^(p-1), which is inf at a = 0 for p < 1 (p = 0: gradient 0). */
CfNode cf_pow_const(CfGraph *g, CfNode a, float p);
/* Broadcast products: a (B,n) .* c (B,1) (each row scaled by its own value),
 * resp. a (B,n) .* v (1,n) (each column scaled by its own value). */
CfNode cf_mul_col(CfGraph *g, CfNode a, CfNode c);
CfNode cf_mul_row(CfGraph *g, CfNode a, CfNode v);

/* ---- reference kernels (tests and benchmarks) ------------------------------ */

/* Naive triple loop C = op(A) op(B) in double accumulation. C (M,N). */
void cf_ref_matmul(float *c, const float *a, const float *b, int M, int N, int K, bool ta, bool tb);

#endif
