/* Neural-network building blocks on top of the autodiff graph. */
#ifndef CF_NN_H
#define CF_NN_H

#include "graph.h"

typedef enum {
  CF_ACT_SILU,
  CF_ACT_RELU,
  CF_ACT_TANH,
  CF_ACT_SOFTPLUS,
  CF_ACT_LEAKY_RELU, /* slope 0.01 */
} CfActivation;

/* MLP in -> width (depth hidden layers) -> out; depth >= 1 means depth + 1
 * linear layers. Parameters "<prefix>.<i>.w" (out,in) and "<prefix>.<i>.b" (1,out). */
typedef struct {
  int in, width, depth, out;
  int first_param; /* index of layer 0's weight; layer i: w = first + 2i, b = first + 2i + 1 */
} CfMlp;

void cf_mlp_declare(CfMlp *mlp, CfParams *p, const char *prefix, int in, int width, int depth, int out);
/* Builds the forward pass on x (B,in) -> (B,out); activation between layers,
 * none after the last. */
CfNode cf_mlp_build(CfGraph *g, CfParams *p, const CfMlp *mlp, CfNode x, CfActivation act);
CfNode cf_activation(CfGraph *g, CfNode x, CfActivation act);
/* Forward FLOPs of one MLP pass for a batch of B rows (2 per multiply-add). */
double cf_mlp_flops(const CfMlp *mlp, int B);

#endif
