/* A small U-Net epsilon-predictor for images on the autodiff graph.
 *
 * Images are (B, C*H*W) rows in CHW order (see graph.h). Levels l = 0..L-1 run
 * at H/2^l x W/2^l with ch[l] = base * mult[l] channels:
 *
 *   conv3x3 in (C -> ch[0])
 *   down:  for each level, a residual block (ch -> ch[l]), its output kept as
 *          a skip; 2x2 average pooling between levels
 *   mid:   a residual block at the lowest resolution
 *   up:    for each level from the bottom, concatenate the skip (channels),
 *          a residual block (-> ch[l]); then nearest 2x upsampling + conv3x3
 *          towards the next finer level
 *   out:   GroupNorm -> SiLU -> conv3x3 (ch[0] -> C), initialised to zero so
 *          the untrained net predicts 0.
 *
 * Residual block (cin -> cout): h = conv3x3(SiLU(GN(x))); h += Linear(t) per
 * channel; h = conv3x3(SiLU(GN(h))); out = h + (cin == cout ? x : conv1x1(x)).
 * t = SiLU(Linear(SiLU(Linear(temb)))) is shared by all blocks, temb (B,
 * temb_dim) is the caller's time embedding (e.g. cf_time_embed).
 *
 * Conditioning (cond_dim > 0): a vector c (B, cond_dim) of given inputs
 * (e.g. a low-resolution thumbnail of the image) enters twice, both linear:
 *   global:  t = SiLU(W2 SiLU(W1 temb + Wc c + b1) + b2), so every block's
 *            per-channel shift depends on c;
 *   spatial: a plane P c + p (H*W values) is concatenated to x as one more
 *            input channel of the first conv (C + 1 -> ch[0]), so the
 *            net can learn where c matters (for a thumbnail, an upsampling).
 * Without conditioning these parameters do not exist (same layout as before). */
#ifndef CF_UNET_H
#define CF_UNET_H

#include "graph.h"

#define CF_UNET_MAX_LEVELS 4

typedef struct {
  int C, H, W;      /* image channels and size; H, W divisible by 2^(levels-1) */
  int base;         /* channels of level l: base * mult[l] */
  int levels;       /* 1 .. CF_UNET_MAX_LEVELS (2 or 3 in practice) */
  int mult[CF_UNET_MAX_LEVELS];
  int temb_dim;     /* columns of the time embedding input */
  int groups;       /* group norm groups; must divide every block's channels */
  int cond_dim;     /* conditioning inputs c (0: unconditional) */
} CfUnetConfig;

/* Parameter indices of one residual block; skip_w/skip_b are -1 when cin == cout. */
typedef struct {
  int cin, cout;
  int gn1_g, gn1_b, conv1_w, conv1_b, temb_w, temb_b, gn2_g, gn2_b, conv2_w, conv2_b;
  int skip_w, skip_b;
} CfUnetBlock;

typedef struct {
  CfUnetConfig cfg;
  int ch[CF_UNET_MAX_LEVELS], h[CF_UNET_MAX_LEVELS], w[CF_UNET_MAX_LEVELS];
  int tdim; /* width of the shared time features t */
  int t1_w, t1_b, t2_w, t2_b;
  int in_w, in_b;
  int cond_w;              /* (tdim, cond_dim): c into the first time layer; -1 without */
  int cplane_w, cplane_b;  /* (H*W, cond_dim), (1, H*W): c to the extra input plane; -1 without */
  CfUnetBlock down[CF_UNET_MAX_LEVELS], mid, up[CF_UNET_MAX_LEVELS];
  int upconv_w[CF_UNET_MAX_LEVELS], upconv_b[CF_UNET_MAX_LEVELS]; /* level l > 0: after upsampling */
  int out_gn_g, out_gn_b, out_w, out_b;
  bool ok; /* false if a parameter could not be declared (out of memory) */
} CfUnet;

/* A config with defaults: base 32, levels 2 (mult 1, 2), temb_dim 64, groups 8,
 * no conditioning. */
CfUnetConfig cf_unet_default_config(int C, int H, int W);
/* Declares the parameters "<prefix>.<part>..." in p (before cf_params_alloc).
 * Checks the config (sizes divisible, groups dividing every block's channels). */
void cf_unet_declare(CfUnet *u, CfParams *p, const char *prefix, const CfUnetConfig *cfg);
/* Builds the forward pass: x (B, C*H*W), temb (B, temb_dim), cond (B,
 * cond_dim) or -1 when cond_dim is 0 -> eps (B, C*H*W). */
CfNode cf_unet_build(CfGraph *g, CfParams *p, const CfUnet *u, CfNode x, CfNode temb, CfNode cond);
/* Forward FLOPs for a batch of B (2 per multiply-add of the convolutions and
 * linear layers; normalisation and elementwise ops not counted). */
double cf_unet_flops(const CfUnet *u, int B);

#endif
