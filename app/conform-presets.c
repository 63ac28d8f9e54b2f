#define G_LOG_DOMAIN "conform"

#include "conform-presets.h"

/* Defaults tuned so each preset trains to good samples in well under a
 * minute on a 2-core laptop (see README for measured times). */
static const char *const toy2d[] = {
  "train.steps=5000", "train.batch=256", "train.lr=0.002", "model.width=128", "model.depth=3", NULL,
};
static const char *const simplex[] = {
  "train.steps=5000", "train.batch=256", "train.lr=0.002", "model.width=128", "model.depth=3", NULL,
};
static const char *const highdim[] = {
  "train.steps=6000", "train.batch=256", "train.lr=0.001", "model.width=256", "model.depth=3", NULL,
};

static const char *const cstr[] = {
  "data.inputs=3", "train.steps=6000", "train.batch=256", "train.lr=0.002", "model.width=128", "model.depth=3", NULL,
};
static const char *const plant[] = {
  "data.inputs=4", "train.steps=6000", "train.batch=256", "train.lr=0.002", "model.width=128", "model.depth=3", NULL,
};

static const char *const images[] = {
  "model.arch=unet", "data.image_size=14", "data.n_train=60000", "data.n_ref=1000", "model.unet_base=32",
  "model.unet_levels=2", "model.temb_dim=64", "train.steps=3000", "train.batch=64", "train.lr=0.001",
  "train.warmup=100", "sample.n=64", "sample.sampler=ddim", "sample.steps=50", "sample.x0_clip=1", "eval.max_n=1000",
  NULL,
};

/* Dual training: 3 of 8 modes thinned to 5% of their share (the
 * resilient multipliers settle near loss / (2 gamma)). */
static const char *const minority2d[] = {
  "data.thin_classes=1,4,6", "data.thin_keep=0.05", "dual.constraints=class:1,class:4,class:6", "dual.gamma=0.5",
  "dual.lr=0.05", "dual.every=2", "dual.batch_ratio=4", "train.steps=5000", "train.batch=256", "train.lr=0.002",
  "model.width=128", "model.depth=3", "sample.n=4000", NULL,
};
static const char *const minority_images[] = {
  "model.arch=unet", "data.image_size=14", "data.n_train=60000", "data.n_ref=1000", "model.unet_base=32",
  "model.unet_levels=2", "model.temb_dim=64", "train.steps=3000", "train.batch=64", "train.lr=0.001",
  "train.warmup=100", "sample.n=256", "sample.sampler=ddim", "sample.steps=50", "sample.x0_clip=1", "eval.max_n=1000",
  "data.thin_classes=1,5,8", "data.thin_keep=0.05", "dual.constraints=class:1,class:5,class:8", "dual.gamma=0.15",
  "dual.lr=0.05", "dual.every=2", "dual.batch_ratio=4", NULL,
};
static const char *const finetune_images[] = {
  "model.arch=unet", "data.image_size=14", "data.n_train=60000", "data.n_ref=1000", "model.unet_base=32",
  "model.unet_levels=2", "model.temb_dim=64", "train.steps=500", "train.batch=64", "train.lr=0.0005",
  "train.warmup=20", "sample.n=256", "sample.sampler=ddim", "sample.steps=50", "sample.x0_clip=1", "eval.max_n=1000",
  "data.classes=9", "dual.constraints=teacher", "dual.thresholds=0.002", "dual.lr=20", "dual.every=2",
  "dual.batch_ratio=1", NULL,
};
/* the image settings plus the thumbnail's 49 values as inputs */
static const char *const superres[] = {
  "data.inputs=49", "model.arch=unet", "data.image_size=14", "data.n_train=60000", "data.n_ref=1000",
  "model.unet_base=32", "model.unet_levels=2", "model.temb_dim=64", "train.steps=3000", "train.batch=64",
  "train.lr=0.001", "train.warmup=100", "sample.n=64", "sample.sampler=ddim", "sample.steps=50", "sample.x0_clip=1",
  "eval.max_n=1000", NULL,
};

/* mirror maps: the maps first (mirror.steps), then the diffusion model */
static const char *const ring2d[] = {
  "constraint.equations=x0^2 + x1^2 = 1", "train.steps=3000", "mirror.steps=3000", "sample.n=2000",
  "sample.sampler=ddim", "sample.steps=100", NULL,
};
static const char *const shell3d[] = {
  "constraint.equations=x0^2 + x1^2 + x2^2 = 1", "train.steps=3000", "mirror.steps=3000", "sample.n=2000",
  "sample.sampler=ddim", "sample.steps=100", NULL,
};

static const ConformPreset presets[] = {
  {"gaussians", "gaussians", NULL, "8 Gaussian modes on a ring of radius 2 (no constraint; add one with --constraint)", toy2d},
  {"moons", "moons", NULL, "two interleaving half circles (no constraint)", toy2d},
  {"checkerboard", "checkerboard", NULL, "uniform on a 4x4 checkerboard (no constraint)", toy2d},
  {"spiral", "spiral", NULL, "noisy spiral (no constraint)", toy2d},
  {"gaussians-line", "gaussians", "1 1 | 0\n", "8-mode ring with the constraint x0 + x1 = 0 the data does NOT satisfy: what projection does to a distribution", toy2d},
  {"simplex-3d", "simplex-3d", NULL, "3-D Gaussian mixture on the plane x0 + x1 + x2 = 1", simplex},
  {"charge-neutral", "charge-neutral", NULL, "12 correlated partial charges summing to 0", highdim},
  {"flow-network", "flow-network", NULL, "edge flows conserving flow at every node of a directed graph", highdim},
  {"portfolio", "portfolio", NULL, "10 portfolio weights from a Dirichlet mixture, summing to 1", highdim},
  {"cstr", "cstr", NULL,
   "stirred-tank reactor: outputs generated for given inputs under 2 mass balances, k = -A_x x per sample", cstr},
  {"plant", "plant", NULL,
   "plant with feeds and recycle: 5 outputs for 4 given inputs, overall mass balance with k = -A_x x", plant},
  {"fashion", "fashion-mnist", NULL, "Fashion-MNIST images (14 x 14 by default), U-Net denoiser, no constraint", images},
  {"fashion-brightness", "fashion-brightness", NULL,
   "Fashion-MNIST rescaled to one total intensity: the sum of the pixels is 0.25 H W", images},
  {"fashion-symmetric", "fashion-symmetric", NULL,
   "Fashion-MNIST made left-right symmetric: x[i][j] = x[i][W-1-j] (H W / 2 rows)", images},
  {"mixture-minority", "gaussians", NULL,
   "8 labelled Gaussian modes with modes 1, 4 and 6 thinned to 5%: strategy dual (class constraints) restores them",
   minority2d},
  {"fashion-minority", "fashion-mnist", NULL,
   "Fashion-MNIST with trousers, sandals and bags thinned to 5%: strategy dual restores their share", minority_images},
  {"fashion-finetune", "fashion-mnist", NULL,
   "fine-tune a model pretrained without ankle boots (train.init) on ankle boots only; strategy dual keeps the old "
   "classes (teacher constraint)",
   finetune_images},
  {"ring", "ring", NULL,
   "points on the unit circle x0^2 + x1^2 = 1 (non-convex) in an uneven angular mixture: strategy mirror learns a "
   "mirror map for it",
   ring2d},
  {"sphere-shell", "sphere-shell", NULL,
   "points on the unit sphere in 3-D (x0^2 + x1^2 + x2^2 = 1), an uneven mixture of 4 caps", shell3d},
  {"fashion-superres", "fashion-superres", NULL,
   "Fashion-MNIST generated for a given 7 x 7 thumbnail: its 49 block means equal the thumbnail, k = thumbnail "
   "per sample", superres},
};

const ConformPreset *
conform_presets(guint *n)
{
  *n = G_N_ELEMENTS(presets);
  return presets;
}

const ConformPreset *
conform_preset_find(const char *name)
{
  for (guint i = 0; i < G_N_ELEMENTS(presets); i++)
    if (g_strcmp0(presets[i].name, name) == 0)
      return &presets[i];
  return NULL;
}

char *
conform_preset_names(void)
{
  GString *s = g_string_new(NULL);
  for (guint i = 0; i < G_N_ELEMENTS(presets); i++)
    g_string_append_printf(s, "%s%s", i ? ", " : "", presets[i].name);
  return g_string_free(s, FALSE);
}
