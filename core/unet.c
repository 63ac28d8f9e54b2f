/* Small U-Net epsilon-predictor (see unet.h for the architecture). */
#include "unet.h"

#include <stdio.h>
#include <string.h>

#define GN_EPS 1e-5f

CfUnetConfig
cf_unet_default_config(int C, int H, int W)
{
  CfUnetConfig c;
  memset(&c, 0, sizeof c);
  c.C = C;
  c.H = H;
  c.W = W;
  c.base = 32;
  c.levels = 2;
  c.mult[0] = 1;
  c.mult[1] = 2;
  c.mult[2] = 2;
  c.mult[3] = 2;
  c.temb_dim = 64;
  c.groups = 8;
  return c;
}

/* Declaration state: the prefix and whether every add succeeded. */
typedef struct {
  CfParams *p;
  const char *prefix;
  bool ok;
} Decl;

static int
add(Decl *d, const char *part, const char *name, int rows, int cols, CfInit init, float scale)
{
  char full[64];
  int k = snprintf(full, sizeof full, "%s.%s.%s", d->prefix, part, name);
  CF_ASSERT(k > 0 && (size_t)k < sizeof full);
  int idx = cf_params_add(d->p, full, rows, cols, init, scale);
  if (idx < 0)
    d->ok = false;
  return idx;
}

/* conv weight (cout, cin k k) with fan-in init and a zero bias (1, cout) */
static void
add_conv(Decl *d, const char *part, const char *name, int cin, int cout, int k, int *w, int *b)
{
  char nm[32];
  snprintf(nm, sizeof nm, "%s.w", name);
  *w = add(d, part, nm, cout, cin * k * k, CF_INIT_UNIFORM_FAN_IN, 1.0f);
  snprintf(nm, sizeof nm, "%s.b", name);
  *b = add(d, part, nm, 1, cout, CF_INIT_ZERO, 0.0f);
}

static void
declare_block(Decl *d, CfUnetBlock *blk, const char *part, int cin, int cout, int tdim, int groups)
{
  CF_ASSERT(cin % groups == 0 && cout % groups == 0); /* group norm on both widths */
  blk->cin = cin;
  blk->cout = cout;
  blk->gn1_g = add(d, part, "gn1.g", 1, cin, CF_INIT_ONE, 0.0f);
  blk->gn1_b = add(d, part, "gn1.b", 1, cin, CF_INIT_ZERO, 0.0f);
  add_conv(d, part, "conv1", cin, cout, 3, &blk->conv1_w, &blk->conv1_b);
  blk->temb_w = add(d, part, "temb.w", cout, tdim, CF_INIT_UNIFORM_FAN_IN, 1.0f);
  blk->temb_b = add(d, part, "temb.b", 1, cout, CF_INIT_ZERO, 0.0f);
  blk->gn2_g = add(d, part, "gn2.g", 1, cout, CF_INIT_ONE, 0.0f);
  blk->gn2_b = add(d, part, "gn2.b", 1, cout, CF_INIT_ZERO, 0.0f);
  add_conv(d, part, "conv2", cout, cout, 3, &blk->conv2_w, &blk->conv2_b);
  blk->skip_w = blk->skip_b = -1;
  if (cin != cout)
    add_conv(d, part, "skip", cin, cout, 1, &blk->skip_w, &blk->skip_b);
}

void
cf_unet_declare(CfUnet *u, CfParams *p, const char *prefix, const CfUnetConfig *cfg)
{
  CF_ASSERT(u && p && prefix && cfg);
  CF_ASSERT(cfg->C > 0 && cfg->base > 0 && cfg->temb_dim > 0 && cfg->groups > 0 && cfg->cond_dim >= 0);
  CF_ASSERT(cfg->levels >= 1 && cfg->levels <= CF_UNET_MAX_LEVELS);
  memset(u, 0, sizeof *u);
  u->cfg = *cfg;
  int L = cfg->levels;
  for (int l = 0; l < L; l++) {
    CF_ASSERT(cfg->mult[l] > 0);
    u->ch[l] = cfg->base * cfg->mult[l];
    u->h[l] = l == 0 ? cfg->H : u->h[l - 1] / 2;
    u->w[l] = l == 0 ? cfg->W : u->w[l - 1] / 2;
    if (l > 0) /* 2x2 pooling needs even sizes at every finer level (28 -> 14 -> 7) */
      CF_ASSERT(u->h[l - 1] % 2 == 0 && u->w[l - 1] % 2 == 0);
    CF_ASSERT(u->h[l] > 0 && u->w[l] > 0);
  }
  u->tdim = 4 * cfg->base;
  Decl d = { p, prefix, true };
  char part[16];
  u->t1_w = add(&d, "time", "1.w", u->tdim, cfg->temb_dim, CF_INIT_UNIFORM_FAN_IN, 1.0f);
  u->t1_b = add(&d, "time", "1.b", 1, u->tdim, CF_INIT_ZERO, 0.0f);
  u->t2_w = add(&d, "time", "2.w", u->tdim, u->tdim, CF_INIT_UNIFORM_FAN_IN, 1.0f);
  u->t2_b = add(&d, "time", "2.b", 1, u->tdim, CF_INIT_ZERO, 0.0f);
  u->cond_w = u->cplane_w = u->cplane_b = -1;
  if (cfg->cond_dim > 0) {
    u->cond_w = add(&d, "cond", "time.w", u->tdim, cfg->cond_dim, CF_INIT_UNIFORM_FAN_IN, 1.0f);
    u->cplane_w = add(&d, "cond", "plane.w", cfg->H * cfg->W, cfg->cond_dim, CF_INIT_UNIFORM_FAN_IN, 1.0f);
    u->cplane_b = add(&d, "cond", "plane.b", 1, cfg->H * cfg->W, CF_INIT_ZERO, 0.0f);
  }
  /* the conditioning plane is one more input channel */
  add_conv(&d, "in", "conv", cfg->C + (cfg->cond_dim > 0), u->ch[0], 3, &u->in_w, &u->in_b);
  int ch = u->ch[0];
  for (int l = 0; l < L; l++) {
    snprintf(part, sizeof part, "down%d", l);
    declare_block(&d, &u->down[l], part, ch, u->ch[l], u->tdim, cfg->groups);
    ch = u->ch[l];
  }
  declare_block(&d, &u->mid, "mid", ch, ch, u->tdim, cfg->groups);
  for (int l = L - 1; l >= 0; l--) {
    snprintf(part, sizeof part, "up%d", l);
    declare_block(&d, &u->up[l], part, ch + u->ch[l], u->ch[l], u->tdim, cfg->groups);
    ch = u->ch[l];
    u->upconv_w[l] = u->upconv_b[l] = -1;
    if (l > 0)
      add_conv(&d, part, "upconv", ch, ch, 3, &u->upconv_w[l], &u->upconv_b[l]);
  }
  u->out_gn_g = add(&d, "out", "gn.g", 1, ch, CF_INIT_ONE, 0.0f);
  u->out_gn_b = add(&d, "out", "gn.b", 1, ch, CF_INIT_ZERO, 0.0f);
  /* zero weights: the untrained net predicts eps = 0 */
  u->out_w = add(&d, "out", "conv.w", cfg->C, ch * 9, CF_INIT_ZERO, 0.0f);
  u->out_b = add(&d, "out", "conv.b", 1, cfg->C, CF_INIT_ZERO, 0.0f);
  u->ok = d.ok;
}

/* 3x3 conv, stride 1, pad 1 (same size). */
static CfNode
conv3(CfGraph *g, CfParams *p, CfNode x, int w, int b, int cin, int cout, int H, int W)
{
  return cf_conv2d(g, x, cf_param(g, p, w), cf_param(g, p, b), cin, H, W, cout, 3, 1, 1);
}

static CfNode
gn_silu(CfGraph *g, CfParams *p, CfNode x, int gam, int bet, int C, int H, int W, int groups)
{
  CfNode h = cf_group_norm(g, x, cf_param(g, p, gam), cf_param(g, p, bet), C, H, W, groups, GN_EPS);
  return cf_silu(g, h);
}

static CfNode
build_block(CfGraph *g, CfParams *p, const CfUnet *u, const CfUnetBlock *blk, CfNode x, CfNode t, int H,
            int W)
{
  int G = u->cfg.groups;
  CfNode h = gn_silu(g, p, x, blk->gn1_g, blk->gn1_b, blk->cin, H, W, G);
  h = conv3(g, p, h, blk->conv1_w, blk->conv1_b, blk->cin, blk->cout, H, W);
  CfNode tv = cf_linear(g, t, cf_param(g, p, blk->temb_w), cf_param(g, p, blk->temb_b)); /* (B, cout) */
  h = cf_add_channel(g, h, tv, blk->cout, H * W);
  h = gn_silu(g, p, h, blk->gn2_g, blk->gn2_b, blk->cout, H, W, G);
  h = conv3(g, p, h, blk->conv2_w, blk->conv2_b, blk->cout, blk->cout, H, W);
  CfNode s = x;
  if (blk->skip_w >= 0)
    s = cf_conv2d(g, x, cf_param(g, p, blk->skip_w), cf_param(g, p, blk->skip_b), blk->cin, H, W,
                  blk->cout, 1, 1, 0);
  return cf_add(g, h, s);
}

CfNode
cf_unet_build(CfGraph *g, CfParams *p, const CfUnet *u, CfNode x, CfNode temb, CfNode cond)
{
  const CfUnetConfig *c = &u->cfg;
  CF_ASSERT(u->ok);
  CF_ASSERT(cf_graph_cols(g, x) == c->C * c->H * c->W);
  CF_ASSERT(cf_graph_cols(g, temb) == c->temb_dim && cf_graph_rows(g, temb) == cf_graph_rows(g, x));
  CF_ASSERT((c->cond_dim > 0) == (cond >= 0));
  if (cond >= 0)
    CF_ASSERT(cf_graph_cols(g, cond) == c->cond_dim && cf_graph_rows(g, cond) == cf_graph_rows(g, x));
  int L = c->levels;
  /* shared time features t = SiLU(W2 SiLU(W1 temb [+ Wc c] + b1) + b2) */
  CfNode t;
  if (cond >= 0) {
    CfNode pre = cf_add(g, cf_linear(g, temb, cf_param(g, p, u->t1_w), cf_param(g, p, u->t1_b)),
                        cf_linear(g, cond, cf_param(g, p, u->cond_w), -1));
    t = cf_silu(g, pre);
  } else {
    t = cf_linear_act(g, temb, cf_param(g, p, u->t1_w), cf_param(g, p, u->t1_b), CF_PW_SILU);
  }
  t = cf_linear_act(g, t, cf_param(g, p, u->t2_w), cf_param(g, p, u->t2_b), CF_PW_SILU);

  /* input: x, or [x | P c + p] (the conditioning plane as channel C) */
  CfNode in = x;
  if (cond >= 0)
    in = cf_concat_cols(g, x, cf_linear(g, cond, cf_param(g, p, u->cplane_w), cf_param(g, p, u->cplane_b)));
  CfNode h = conv3(g, p, in, u->in_w, u->in_b, c->C + (cond >= 0), u->ch[0], c->H, c->W);
  CfNode skip[CF_UNET_MAX_LEVELS];
  for (int l = 0; l < L; l++) {
    h = build_block(g, p, u, &u->down[l], h, t, u->h[l], u->w[l]);
    skip[l] = h;
    if (l + 1 < L)
      h = cf_avgpool(g, h, u->ch[l], u->h[l], u->w[l], 2);
  }
  h = build_block(g, p, u, &u->mid, h, t, u->h[L - 1], u->w[L - 1]);
  for (int l = L - 1; l >= 0; l--) {
    h = cf_concat_cols(g, h, skip[l]); /* channel concatenation (CHW rows) */
    h = build_block(g, p, u, &u->up[l], h, t, u->h[l], u->w[l]);
    if (l > 0) {
      h = cf_upsample_nearest(g, h, u->ch[l], u->h[l], u->w[l], 2);
      h = conv3(g, p, h, u->upconv_w[l], u->upconv_b[l], u->ch[l], u->ch[l], u->h[l - 1], u->w[l - 1]);
    }
  }
  h = gn_silu(g, p, h, u->out_gn_g, u->out_gn_b, u->ch[0], c->H, c->W, c->groups);
  return conv3(g, p, h, u->out_w, u->out_b, u->ch[0], c->C, c->H, c->W);
}

/* 2 B cout (cin k k) H W for a same-size conv. */
static double
conv_flops(int B, int cin, int cout, int k, int H, int W)
{
  return 2.0 * B * (double)cout * cin * k * k * H * W;
}

static double
block_flops(const CfUnet *u, const CfUnetBlock *blk, int B, int H, int W)
{
  double f = conv_flops(B, blk->cin, blk->cout, 3, H, W) + conv_flops(B, blk->cout, blk->cout, 3, H, W);
  f += 2.0 * B * (double)u->tdim * blk->cout;
  if (blk->skip_w >= 0)
    f += conv_flops(B, blk->cin, blk->cout, 1, H, W);
  return f;
}

double
cf_unet_flops(const CfUnet *u, int B)
{
  const CfUnetConfig *c = &u->cfg;
  int L = c->levels;
  double f = 2.0 * B * ((double)c->temb_dim * u->tdim + (double)u->tdim * u->tdim);
  /* conditioning: Wc c, P c and the extra input channel */
  f += 2.0 * B * (double)c->cond_dim * (u->tdim + (double)c->H * c->W);
  f += conv_flops(B, c->C + (c->cond_dim > 0), u->ch[0], 3, c->H, c->W);
  for (int l = 0; l < L; l++)
    f += block_flops(u, &u->down[l], B, u->h[l], u->w[l]);
  f += block_flops(u, &u->mid, B, u->h[L - 1], u->w[L - 1]);
  for (int l = L - 1; l >= 0; l--) {
    f += block_flops(u, &u->up[l], B, u->h[l], u->w[l]);
    if (l > 0)
      f += conv_flops(B, u->ch[l], u->ch[l], 3, u->h[l - 1], u->w[l - 1]);
  }
  f += conv_flops(B, u->ch[0], c->C, 3, c->H, c->W);
  return f;
}
