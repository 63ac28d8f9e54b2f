/* Internal representation of CfGraph, shared by graph.c (building, arenas,
 * forward/backward drivers) and ops.c (the kernels). Not installed, not part
 * of the API. */
#ifndef CF_GRAPH_PRIVATE_H
#define CF_GRAPH_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>

#include "graph.h"

typedef enum {
  CF_OP_INPUT,
  CF_OP_PARAM,
  CF_OP_MATMUL,      /* iarg[0] = ta, iarg[1] = tb */
  CF_OP_LINEAR,      /* in[2] = bias or -1 */
  CF_OP_LINEAR_ACT,  /* iarg[0] = CfPointwise; scratch: pre-activation, its gradient */
  CF_OP_ADD,
  CF_OP_SUB,
  CF_OP_MUL,
  CF_OP_SCALE,       /* farg[0] = s */
  CF_OP_ADD_SCALAR,  /* farg[0] = s */
  CF_OP_BIAS_ADD,
  CF_OP_CONCAT_COLS,
  CF_OP_SLICE_COLS,  /* iarg[0] = start */
  CF_OP_SILU,
  CF_OP_SOFTPLUS,
  CF_OP_SIGMOID,
  CF_OP_TANH,
  CF_OP_RELU,
  CF_OP_LEAKY_RELU,  /* farg[0] = slope */
  CF_OP_EXP,
  CF_OP_LOG,
  CF_OP_SQUARE,
  CF_OP_ABS,
  CF_OP_SQRT,
  CF_OP_SUM_ROWS,    /* farg[0] = 1 (sum) or 1/cols (mean) */
  CF_OP_SUM_COLS,    /* farg[0] = 1 or 1/rows */
  CF_OP_SUM_ALL,     /* farg[0] = 1 or 1/(rows*cols) */
  CF_OP_MSE,
  CF_OP_L1,
  CF_OP_TIME_EMBED,  /* farg[0] = max_period; scratch: dim/2 frequencies */
  /* Image ops (ops_image.c); rows are images in CHW order. */
  CF_OP_CONV2D,      /* iarg: C_in, H, W, C_out, k, stride, pad, samples per GEMM chunk; work */
  CF_OP_UPSAMPLE_NEAREST, /* iarg: C, H, W, factor */
  CF_OP_UPSAMPLE_BILINEAR2X, /* iarg: C, H, W */
  CF_OP_AVGPOOL,     /* iarg: C, H, W, k */
  CF_OP_GROUP_NORM,  /* iarg: C, HW, groups; farg[0] = eps; scratch: mean, rstd per (sample, group) */
  CF_OP_ADD_CHANNEL, /* iarg: C, HW */
  /* Expression ops (ops_math.c). */
  CF_OP_DIV,
  CF_OP_SIN,
  CF_OP_COS,
  CF_OP_POW,         /* farg[0] = exponent p */
  CF_OP_MUL_COL,     /* a (B,n) .* c (B,1) */
  CF_OP_MUL_ROW,     /* a (B,n) .* v (1,n) */
} CfOpKind;

typedef struct {
  CfOpKind op;
  int rows, cols;
  CfNode in[3]; /* -1 when unused */
  int iarg[8];
  float farg[2];
  bool needs_grad; /* some requires_grad input or parameter is upstream */
  bool live;       /* upstream of the loss of the current backward pass */
  bool grad_pending; /* this backward pass has not written grad yet: it is zero, its memory stale */
  size_t scratch_floats;
  /* Transient workspace: shared by all nodes of the graph (one buffer of the
   * largest request), valid only inside one forward or backward kernel. */
  size_t work_floats;
  /* Set by cf_graph_finalize (params: views into CfParams arenas). */
  float *value, *grad, *scratch;
  CfParams *params;
  int param_index;
} CfNodeRec;

struct CfGraph {
  CfNodeRec *nodes;
  int count, capacity;
  bool finalized;
  bool failed; /* an allocation failed while building; finalize reports it */
  float *value_arena, *grad_arena;
  size_t value_floats, grad_floats;
  float *work; /* shared transient workspace (max of the nodes' work_floats) */
  size_t work_floats;
};

/* Appends a node whose needs_grad is the OR of its inputs'; returns -1 (and
 * marks the graph failed) when the node array cannot grow. */
CfNode cf_graph_push(CfGraph *g, CfOpKind op, int rows, int cols, CfNode a, CfNode b, CfNode c);
CfNodeRec *cf_graph_node(CfGraph *g, CfNode n);

/* Backward kernels of the ops in cf_op_stores_grads write each input's
 * gradient after asking cf_grad_first: true when this pass has not written
 * it yet, so the kernel stores (=, GEMM beta 0) instead of adding, which
 * saves clearing every activation gradient before each pass (most are
 * written by one consumer). The gradient counts as written afterwards.
 * cf_grad_touch zeroes a pending gradient for code that only adds. Kernels
 * of the other ops only add: the graph touches their inputs first. */
static inline bool
cf_grad_first(CfNodeRec *x)
{
  bool first = x->grad_pending;
  x->grad_pending = false;
  return first;
}
void cf_grad_touch(CfNodeRec *x);
bool cf_op_stores_grads(CfOpKind op);

/* Kernels (ops.c). prepare runs once after the arenas exist. */
void cf_op_prepare(CfGraph *g, CfNodeRec *n);
/* sum of n floats in double, four independent accumulators (ops.c; also
 * the image ops' channel and group sums) */
double cf_sum_f64(const float *a, size_t n);
void cf_op_forward(CfGraph *g, CfNodeRec *n);
void cf_op_backward(CfGraph *g, CfNodeRec *n);

/* Image kernels (ops_image.c), called from cf_op_forward/backward for the
 * CF_OP_CONV2D .. CF_OP_ADD_CHANNEL kinds. */
void cf_image_forward(CfGraph *g, CfNodeRec *n);
void cf_image_backward(CfGraph *g, CfNodeRec *n);

/* Expression kernels (ops_math.c), called from cf_op_forward/backward for the
 * CF_OP_DIV .. CF_OP_MUL_ROW kinds. */
void cf_math_forward(CfGraph *g, CfNodeRec *n);
void cf_math_backward(CfGraph *g, CfNodeRec *n);

#endif
