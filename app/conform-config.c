#define G_LOG_DOMAIN "conform"

#include "conform-config.h"
#include "conform-image-data.h"

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "conform-dual.h"
#include "conform-mirror.h"
#include "conform-presets.h"
#include "data.h"

G_DEFINE_QUARK(conform-error-quark, conform_error)

#define OFF(field) offsetof(ConformConfig, field)

static const ConformKey keys[] = {
  {"experiment.preset", CONFORM_KEY_STRING, OFF(preset), 0, 0, NULL, FALSE, "preset the experiment started from"},
  {"experiment.strategy", CONFORM_KEY_CHOICE, OFF(strategy), 0, 0,
   "none|projection|projected-sampling|constrained-layer|cgauss|dual|mirror", TRUE,
   "constraint strategy: none, projection (post-hoc), projected-sampling (DDPM: project after every reverse step), "
   "constrained-layer (VAE: projected decoder mean trained with L1), cgauss (exactly conditioned Gaussian: the "
   "VAE's likelihood, every reverse step of a DDPM), dual (DDPM: primal-dual training with Lagrange multipliers on "
   "the dual.constraints), mirror (DDPM: a diffusion model in a learned mirror space, mapped back by the learned inverse map; the mirror.* settings)"},
  {"experiment.seed", CONFORM_KEY_UINT64, OFF(seed), 0, 0, NULL, FALSE, "random seed (data, initialisation, training, sampling)"},
  {"data.source", CONFORM_KEY_STRING, OFF(data), 0, 0, NULL, FALSE, "built-in generator name, path of a CSV file, or a folder of PNG images (training data for image models)"},
  {"data.n_train", CONFORM_KEY_INT, OFF(n_train), 16, 10000000, NULL, FALSE, "training samples drawn from a generator"},
  {"data.n_ref", CONFORM_KEY_INT, OFF(n_ref), 16, 1000000, NULL, FALSE, "held-out reference samples for the quality metrics"},
  {"data.image_size", CONFORM_KEY_INT, OFF(image_size), 14, 28, NULL, FALSE,
   "image sources: 28 (full Fashion-MNIST) or 14 (2 x 2 box average, about 4x faster)"},
  {"data.classes", CONFORM_KEY_STRING, OFF(classes), 0, 0, NULL, FALSE,
   "labelled data: keep only these classes, e.g. 0-6,8 (empty: all); applies to training and reference data"},
  {"data.thin_classes", CONFORM_KEY_STRING, OFF(thin_classes), 0, 0, NULL, FALSE,
   "labelled data: classes made rare in the training set (minority classes), e.g. 1,4,6; the reference stays balanced"},
  {"data.thin_keep", CONFORM_KEY_DOUBLE, OFF(thin_keep), 0.001, 1, NULL, FALSE,
   "fraction of each thinned class kept in the training set"},
  {"data.inputs", CONFORM_KEY_INT, OFF(inputs), 0, 65535, NULL, FALSE,
   "leading data columns that are given inputs x: the model generates the other columns y conditioned on x, and a "
   "constraint A_x x + B y = b acts on y with the per-sample right-hand side k = b - A_x x (0: unconditional)"},
  {"model.type", CONFORM_KEY_CHOICE, OFF(model_type), 0, 0, "ddpm|vae", FALSE,
   "generative model: ddpm (diffusion) or vae (variational autoencoder, heteroscedastic Gaussian decoder)"},
  {"model.latent", CONFORM_KEY_INT, OFF(latent), 1, 512, NULL, FALSE, "VAE latent size"},
  {"model.arch", CONFORM_KEY_CHOICE, OFF(arch), 0, 0, "mlp|unet", FALSE,
   "diffusion denoiser: mlp (vector data) or unet (image data: convolutional U-Net)"},
  {"model.unet_base", CONFORM_KEY_INT, OFF(unet_base), 4, 256, NULL, FALSE,
   "U-Net channels at full resolution (x1, x2, x2 at the coarser levels)"},
  {"model.unet_levels", CONFORM_KEY_INT, OFF(unet_levels), 1, 3, NULL, FALSE, "U-Net resolution levels"},
  {"model.width", CONFORM_KEY_INT, OFF(width), 4, 8192, NULL, FALSE, "hidden width of the denoiser MLP"},
  {"model.depth", CONFORM_KEY_INT, OFF(depth), 1, 16, NULL, FALSE, "hidden layers of the denoiser MLP"},
  {"model.temb_dim", CONFORM_KEY_INT, OFF(temb_dim), 2, 1024, NULL, FALSE, "size of the sinusoidal time embedding (even)"},
  {"model.T", CONFORM_KEY_INT, OFF(T), 2, 100000, NULL, FALSE, "diffusion steps T"},
  {"model.schedule", CONFORM_KEY_CHOICE, OFF(schedule), 0, 0, "linear|cosine", FALSE, "noise schedule"},
  {"train.steps", CONFORM_KEY_INT, OFF(steps), 0, 100000000, NULL, TRUE,
   "training steps (the learning-rate schedule ends here; changing it mid-run stretches the schedule)"},
  {"train.batch", CONFORM_KEY_INT, OFF(batch), 1, 65536, NULL, FALSE, "batch size"},
  {"train.lr", CONFORM_KEY_DOUBLE, OFF(lr), 1e-8, 1e3, NULL, TRUE, "peak learning rate (Adam)"},
  {"train.lr_min", CONFORM_KEY_DOUBLE, OFF(lr_min), 0, 1e3, NULL, TRUE, "final learning rate of the cosine decay"},
  {"train.warmup", CONFORM_KEY_INT, OFF(warmup), 0, 100000000, NULL, FALSE, "linear warm-up steps"},
  {"train.weight_decay", CONFORM_KEY_DOUBLE, OFF(weight_decay), 0, 1, NULL, TRUE, "AdamW decoupled weight decay (0 = Adam)"},
  {"train.clip", CONFORM_KEY_DOUBLE, OFF(clip), 0, 1e6, NULL, TRUE, "gradient clipping by global norm (0 = off)"},
  {"train.ema", CONFORM_KEY_DOUBLE, OFF(ema), 0, 0.99999, NULL, FALSE, "EMA rate of the weights used for sampling (0 = no EMA)"},
  {"train.init", CONFORM_KEY_STRING, OFF(init), 0, 0, NULL, FALSE,
   "experiment directory whose weights (EMA if saved) and normalisation a run starts from: fine-tuning, and the "
   "frozen teacher of dual.constraints=teacher (empty: random initialisation)"},
  {"dual.constraints", CONFORM_KEY_STRING, OFF(dual_constraints), 0, 0, NULL, FALSE,
   "strategy dual: comma-separated constraints: class:K (the loss on class K's samples), teacher (KL to the frozen "
   "train.init model: fine-tuning without forgetting), violation (expected violation of A x = b by the denoised "
   "prediction); empty: violation"},
  {"dual.thresholds", CONFORM_KEY_STRING, OFF(dual_thresholds), 0, 0, NULL, FALSE,
   "strategy dual: threshold b_i of each constraint's loss (one value for all, or one per constraint)"},
  {"dual.gamma", CONFORM_KEY_DOUBLE, OFF(dual_gamma), 0, 1e6, NULL, FALSE,
   "strategy dual: resilience gamma (0: plain dual ascent; > 0: lambda settles near loss / (2 gamma))"},
  {"dual.every", CONFORM_KEY_INT, OFF(dual_every), 1, 10000, NULL, FALSE, "strategy dual: primal steps per dual step (N)"},
  {"dual.lr", CONFORM_KEY_DOUBLE, OFF(dual_lr), 1e-8, 1e3, NULL, FALSE, "strategy dual: dual learning rate (eta)"},
  {"dual.batch_ratio", CONFORM_KEY_DOUBLE, OFF(dual_batch_ratio), 1, 1e4, NULL, FALSE,
   "strategy dual: main batch size / each constraint's batch size (keep it near |D| : |D_i|)"},
  {"dual.cap", CONFORM_KEY_DOUBLE, OFF(dual_cap), 1e-6, 1e9, NULL, FALSE,
   "strategy dual: multipliers are capped here; one that sits at the cap marks an unreachable threshold"},
  {"constraint.equations", CONFORM_KEY_STRING, OFF(equations), 0, 0, NULL, FALSE,
   "non-linear constraint: equations over the raw coordinates x0, x1, ..., one per line or separated by ';', e.g. "
   "x0^2 + x1^2 = 1 (+ - * / ^, sqrt exp log sin cos abs, pi); the distance to the set is sum |lhs - rhs|; "
   "replaces a matrix constraint (empty: none)"},
  {"mirror.steps", CONFORM_KEY_INT, OFF(mirror_steps), 1, 100000000, NULL, FALSE,
   "strategy mirror: training steps of the mirror maps g and f, before the diffusion model's train.steps"},
  {"mirror.finetune_steps", CONFORM_KEY_INT, OFF(mirror_finetune_steps), 0, 100000000, NULL, FALSE,
   "strategy mirror: after the diffusion model, steps finetuning the inverse map f alone (g frozen) on its "
   "mirror-space samples (0: none)"},
  {"mirror.finetune_samples", CONFORM_KEY_INT, OFF(mirror_finetune_samples), 16, 1000000, NULL, FALSE,
   "strategy mirror: mirror-space samples (DDIM 50) drawn once for the finetuning"},
  {"mirror.batch", CONFORM_KEY_INT, OFF(mirror_batch), 1, 65536, NULL, FALSE, "strategy mirror: batch size of the maps (paper: 16)"},
  {"mirror.lr", CONFORM_KEY_DOUBLE, OFF(mirror_lr), 1e-8, 1, NULL, FALSE, "strategy mirror: Adam learning rate of the maps (paper: 2e-4)"},
  {"mirror.alpha", CONFORM_KEY_DOUBLE, OFF(mirror_alpha), 0, 0.999, NULL, FALSE,
   "strategy mirror: g(x) = alpha x + (1 - alpha) grad R(x), R input-convex (paper: 0.9)"},
  {"mirror.lambda_cyc", CONFORM_KEY_DOUBLE, OFF(mirror_lambda_cyc), 0, 1e6, NULL, FALSE,
   "strategy mirror: weight of the cycle-consistency terms |f(g(x)) - x| and |g(f(y)) - y| (paper: 1)"},
  {"mirror.lambda_constr", CONFORM_KEY_DOUBLE, OFF(mirror_lambda_constr), 0, 1e6, NULL, FALSE,
   "strategy mirror: weight of the constraint distance of f(g(x) + sigma eps) (paper: 1)"},
  {"mirror.lambda_reg", CONFORM_KEY_DOUBLE, OFF(mirror_lambda_reg), 0, 1e6, NULL, FALSE,
   "strategy mirror: weight of the regulariser |grad R(x)| (paper: 1e-3)"},
  {"mirror.sigma_max", CONFORM_KEY_DOUBLE, OFF(mirror_sigma_max), 0, 100, NULL, FALSE,
   "strategy mirror: noise sigma ~ U(0, sigma_max) added in mirror space (model units; paper: 0.1)"},
  {"mirror.width", CONFORM_KEY_INT, OFF(mirror_width), 1, 4096, NULL, FALSE, "strategy mirror: width of the input-convex network R"},
  {"mirror.depth", CONFORM_KEY_INT, OFF(mirror_depth), 1, 8, NULL, FALSE, "strategy mirror: hidden layers of R"},
  {"mirror.inv_width", CONFORM_KEY_INT, OFF(mirror_inv_width), 1, 4096, NULL, FALSE, "strategy mirror: width of the inverse map's MLP"},
  {"mirror.inv_depth", CONFORM_KEY_INT, OFF(mirror_inv_depth), 1, 16, NULL, FALSE, "strategy mirror: hidden layers of the inverse map"},
  {"mirror.ema", CONFORM_KEY_DOUBLE, OFF(mirror_ema), 0, 0.99999, NULL, FALSE,
   "strategy mirror: EMA rate of the maps' weights (the averaged maps are used)"},
  {"sample.n", CONFORM_KEY_INT, OFF(n_samples), 1, 10000000, NULL, TRUE, "samples drawn after training"},
  {"sample.sampler", CONFORM_KEY_CHOICE, OFF(sampler), 0, 0, "ddpm|ddim", TRUE, "reverse sampler: ddpm (ancestral, T steps) or ddim"},
  {"sample.steps", CONFORM_KEY_INT, OFF(sampling_steps), 1, 100000, NULL, TRUE, "DDIM sampling steps (<= T)"},
  {"sample.eta", CONFORM_KEY_DOUBLE, OFF(eta), 0, 10, NULL, TRUE, "DDIM eta (0 = deterministic)"},
  {"sample.annotate", CONFORM_KEY_INT, OFF(annotate), 0, 1, NULL, TRUE,
   "image sample grids (samples.png): 1 frames each image green (constraint satisfied) or red (violated)"},
  {"sample.x0_clip", CONFORM_KEY_DOUBLE, OFF(x0_clip), 0, 1e6, NULL, TRUE, "clip the x0 prediction to [-c, c] in model space (0 = off)"},
  {"eval.tolerance", CONFORM_KEY_DOUBLE, OFF(tol_rel), 1e-12, 1e6, NULL, TRUE, "violation tolerance, relative to 1 + ||b||"},
  {"eval.max_n", CONFORM_KEY_INT, OFF(metric_max_n), 16, 100000, NULL, TRUE, "subsample size for energy distance and MMD"},
};

const ConformKey *
conform_config_keys(guint *n_keys)
{
  *n_keys = G_N_ELEMENTS(keys);
  return keys;
}

const ConformKey *
conform_config_find_key(const char *key)
{
  for (guint i = 0; i < G_N_ELEMENTS(keys); i++)
    if (g_strcmp0(keys[i].key, key) == 0)
      return &keys[i];
  return NULL;
}

#define FIELD(cfg, k, type) ((type *)((char *)(cfg) + (k)->offset))
#define CFIELD(cfg, k, type) ((const type *)((const char *)(cfg) + (k)->offset))

void
conform_config_init(ConformConfig *cfg)
{
  memset(cfg, 0, sizeof *cfg);
  cfg->preset = g_strdup("");
  cfg->strategy = g_strdup("none");
  cfg->seed = 1;
  cfg->data = g_strdup("gaussians");
  cfg->n_train = 20000;
  cfg->n_ref = 2000;
  cfg->model_type = g_strdup("ddpm");
  cfg->latent = 8;
  cfg->arch = g_strdup("mlp");
  cfg->unet_base = 32;
  cfg->unet_levels = 2;
  cfg->image_size = 14;
  cfg->classes = g_strdup("");
  cfg->thin_classes = g_strdup("");
  cfg->thin_keep = 0.05;
  cfg->init = g_strdup("");
  cfg->dual_constraints = g_strdup("");
  cfg->dual_thresholds = g_strdup("0");
  cfg->dual_gamma = 0.0;
  cfg->dual_every = 2;
  cfg->dual_lr = 0.5;
  cfg->dual_batch_ratio = 4.0;
  cfg->dual_cap = 100.0;
  cfg->mirror_steps = 3000;
  cfg->mirror_finetune_steps = 0;
  cfg->mirror_finetune_samples = 4096;
  cfg->mirror_batch = 64;
  cfg->mirror_lr = 1e-3;
  cfg->mirror_alpha = 0.9;
  cfg->mirror_lambda_cyc = 1.0;
  cfg->mirror_lambda_constr = 1.0;
  cfg->mirror_lambda_reg = 1e-3;
  cfg->mirror_sigma_max = 0.1;
  cfg->mirror_width = 64;
  cfg->mirror_depth = 3;
  cfg->mirror_inv_width = 128;
  cfg->mirror_inv_depth = 3;
  cfg->mirror_ema = 0.995;
  cfg->width = 128;
  cfg->depth = 3;
  cfg->temb_dim = 32;
  cfg->T = 1000;
  cfg->schedule = g_strdup("linear");
  cfg->steps = 5000;
  cfg->batch = 256;
  cfg->warmup = 200;
  cfg->lr = 2e-3;
  cfg->lr_min = 1e-4;
  cfg->weight_decay = 0.0;
  cfg->clip = 1.0;
  cfg->ema = 0.995;
  cfg->n_samples = 2000;
  cfg->sampler = g_strdup("ddpm");
  cfg->sampling_steps = 100;
  cfg->eta = 0.0;
  cfg->x0_clip = 0.0;
  cfg->tol_rel = 1e-4;
  cfg->metric_max_n = 2000;
  cf_constraint_init(&cfg->constraint);
  cfg->constraint_source = g_strdup("");
  cfg->command = g_strdup("");
  cfg->equations = g_strdup("");
}

void
conform_config_clear(ConformConfig *cfg)
{
  for (guint i = 0; i < G_N_ELEMENTS(keys); i++)
    if (keys[i].type == CONFORM_KEY_STRING || keys[i].type == CONFORM_KEY_CHOICE)
      g_clear_pointer(FIELD(cfg, &keys[i], char *), g_free);
  cf_constraint_clear(&cfg->constraint);
  g_clear_pointer(&cfg->constraint_source, g_free);
  g_clear_pointer(&cfg->command, g_free);
}

void
conform_config_copy(ConformConfig *dst, const ConformConfig *src)
{
  *dst = *src;
  for (guint i = 0; i < G_N_ELEMENTS(keys); i++)
    if (keys[i].type == CONFORM_KEY_STRING || keys[i].type == CONFORM_KEY_CHOICE)
      *FIELD(dst, &keys[i], char *) = g_strdup(*CFIELD(src, &keys[i], char *));
  cf_constraint_init(&dst->constraint);
  if (src->constraint.m > 0)
    CF_ASSERT(cf_constraint_copy(&dst->constraint, &src->constraint, NULL) == CF_OK);
  dst->constraint_source = g_strdup(src->constraint_source);
  dst->command = g_strdup(src->command);
}

static gboolean
choice_ok(const char *choices, const char *value)
{
  g_auto(GStrv) opts = g_strsplit(choices, "|", -1);
  return g_strv_contains((const char *const *)opts, value);
}

static char *
choices_pretty(const char *choices)
{
  g_auto(GStrv) opts = g_strsplit(choices, "|", -1);
  return g_strjoinv(", ", opts);
}

gboolean
conform_config_set(ConformConfig *cfg, const char *key, const char *value, GError **error)
{
  const ConformKey *k = conform_config_find_key(key);
  if (!k) {
    GString *valid = g_string_new(NULL);
    for (guint i = 0; i < G_N_ELEMENTS(keys); i++)
      g_string_append_printf(valid, "%s%s", i ? ", " : "", keys[i].key);
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_USAGE, "unknown setting '%s'; valid settings: %s", key, valid->str);
    g_string_free(valid, TRUE);
    return FALSE;
  }
  const char *v = value ? value : "";
  switch (k->type) {
  case CONFORM_KEY_INT:
  case CONFORM_KEY_UINT64: {
    char *end = NULL;
    errno = 0;
    if (k->type == CONFORM_KEY_UINT64) {
      guint64 u = g_ascii_strtoull(v, &end, 10);
      if (*v == '\0' || *end != '\0' || errno != 0 || strchr(v, '-')) {
        g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_USAGE, "%s: must be a non-negative integer below 2^64, got '%s'",
                    key, v);
        return FALSE;
      }
      *FIELD(cfg, k, guint64) = u;
      return TRUE;
    }
    gint64 x = g_ascii_strtoll(v, &end, 10);
    if (*v == '\0' || *end != '\0' || errno != 0) {
      g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_USAGE, "%s: '%s' is not an integer", key, v);
      return FALSE;
    }
    {
      if ((double)x < k->min || (double)x > k->max) {
        g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_USAGE, "%s: %s is out of range [%.0f, %.0f]", key, v, k->min, k->max);
        return FALSE;
      }
      *FIELD(cfg, k, int) = (int)x;
    }
    return TRUE;
  }
  case CONFORM_KEY_DOUBLE: {
    char *end = NULL;
    errno = 0;
    double x = g_ascii_strtod(v, &end);
    if (*v == '\0' || *end != '\0' || errno != 0 || !isfinite(x)) {
      g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_USAGE, "%s: '%s' is not a finite number", key, v);
      return FALSE;
    }
    if (x < k->min || x > k->max) {
      g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_USAGE, "%s: %s is out of range [%g, %g]", key, v, k->min, k->max);
      return FALSE;
    }
    *FIELD(cfg, k, double) = x;
    return TRUE;
  }
  case CONFORM_KEY_CHOICE:
    if (!choice_ok(k->choices, v)) {
      g_autofree char *pretty = choices_pretty(k->choices);
      g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_USAGE, "%s: unknown value '%s'; valid values: %s", key, v, pretty);
      return FALSE;
    }
    G_GNUC_FALLTHROUGH;
  case CONFORM_KEY_STRING:
    g_free(*FIELD(cfg, k, char *));
    *FIELD(cfg, k, char *) = g_strdup(v);
    return TRUE;
  }
  g_assert_not_reached();
}

gboolean
conform_config_set_assignment(ConformConfig *cfg, const char *assignment, GError **error)
{
  const char *eq = strchr(assignment, '=');
  if (!eq || eq == assignment) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_USAGE, "--set expects key=value, got '%s'", assignment);
    return FALSE;
  }
  g_autofree char *key = g_strndup(assignment, (gsize)(eq - assignment));
  return conform_config_set(cfg, g_strstrip(key), eq + 1, error);
}

char *
conform_config_get_string(const ConformConfig *cfg, const char *key)
{
  const ConformKey *k = conform_config_find_key(key);
  g_return_val_if_fail(k != NULL, NULL);
  switch (k->type) {
  case CONFORM_KEY_INT: return g_strdup_printf("%d", *CFIELD(cfg, k, int));
  case CONFORM_KEY_UINT64: return g_strdup_printf("%" G_GUINT64_FORMAT, *CFIELD(cfg, k, guint64));
  case CONFORM_KEY_DOUBLE: {
    char buf[G_ASCII_DTOSTR_BUF_SIZE];
    return g_strdup(g_ascii_dtostr(buf, sizeof buf, *CFIELD(cfg, k, double)));
  }
  case CONFORM_KEY_STRING:
  case CONFORM_KEY_CHOICE: return g_strdup(*CFIELD(cfg, k, char *));
  }
  g_assert_not_reached();
}

static gboolean
set_constraint_from_text(ConformConfig *cfg, const char *text, const char *origin, GError **error)
{
  CfConstraint c;
  CfError err;
  cf_constraint_init(&c);
  if (cf_constraint_parse(&c, text, strlen(text), origin, &err) != CF_OK) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_INPUT, "%s", err.msg);
    return FALSE;
  }
  cf_constraint_clear(&cfg->constraint);
  cfg->constraint = c;
  g_free(cfg->constraint_source);
  cfg->constraint_source = g_strdup(origin);
  return TRUE;
}

gboolean
conform_config_load_constraint(ConformConfig *cfg, const char *path, GError **error)
{
  CfConstraint c;
  CfError err;
  cf_constraint_init(&c);
  if (cf_constraint_load(&c, path, &err) != CF_OK) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_INPUT, "%s", err.msg);
    return FALSE;
  }
  cf_constraint_clear(&cfg->constraint);
  cfg->constraint = c;
  g_free(cfg->constraint_source);
  cfg->constraint_source = g_strdup(path);
  return TRUE;
}

gboolean
conform_config_apply_preset(ConformConfig *cfg, const char *preset, GError **error)
{
  const ConformPreset *p = conform_preset_find(preset);
  if (!p) {
    g_autofree char *names = conform_preset_names();
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_USAGE, "unknown preset '%s'; valid presets: %s", preset, names);
    return FALSE;
  }
  ConformConfig fresh;
  conform_config_init(&fresh);
  g_free(fresh.preset);
  fresh.preset = g_strdup(p->name);
  g_free(fresh.data);
  fresh.data = g_strdup(p->data);
  for (const char *const *o = p->overrides; o && *o; o++)
    if (!conform_config_set_assignment(&fresh, *o, error)) {
      conform_config_clear(&fresh);
      return FALSE;
    }
  gboolean ok = TRUE;
  if (p->constraint_text) {
    ok = set_constraint_from_text(&fresh, p->constraint_text, p->name, error);
  } else if (conform_image_source_is(p->data)) {
    g_autoptr(GError) e = NULL;
    if (conform_image_source_constraint(p->data, fresh.image_size, &fresh.constraint, &e)) {
      g_free(fresh.constraint_source);
      fresh.constraint_source = g_strdup(p->name);
    } else if (e) {
      g_propagate_error(error, g_steal_pointer(&e));
      ok = FALSE;
    }
  } else {
    const CfGeneratorInfo *gi = cf_data_generator_find(p->data);
    if (gi && gi->constrained) {
      CfError err;
      if (cf_data_builtin_constraint(&fresh.constraint, p->data, &err) != CF_OK) {
        g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_INPUT, "%s", err.msg);
        ok = FALSE;
      } else {
        g_free(fresh.constraint_source);
        fresh.constraint_source = g_strdup(p->name);
      }
    }
  }
  if (!ok) {
    conform_config_clear(&fresh);
    return FALSE;
  }
  conform_config_clear(cfg);
  *cfg = fresh;
  return TRUE;
}

long
conform_config_total_steps(const ConformConfig *cfg)
{
  gboolean mirror = g_strcmp0(cfg->strategy, "mirror") == 0;
  return (long)cfg->steps + (mirror ? (long)cfg->mirror_steps + cfg->mirror_finetune_steps : 0);
}

gboolean
conform_config_has_constraint(const ConformConfig *cfg)
{
  return cfg->constraint.m > 0 || (cfg->equations && cfg->equations[0]);
}

gboolean
conform_config_validate(const ConformConfig *cfg, GError **error)
{
  if (cfg->temb_dim % 2 != 0) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_USAGE, "model.temb_dim must be even, got %d", cfg->temb_dim);
    return FALSE;
  }
  if (cfg->image_size != 14 && cfg->image_size != 28) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_USAGE, "data.image_size must be 28 or 14, got %d", cfg->image_size);
    return FALSE;
  }
  gboolean images = conform_image_source_is(cfg->data);
  if (g_strcmp0(cfg->arch, "unet") == 0 && !images) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_USAGE,
                "model.arch=unet needs image data (data.source fashion-mnist, fashion-brightness, fashion-symmetric, "
                "fashion-superres or a folder of PNG files)");
    return FALSE;
  }
  /* image rows are [inputs | image]: the inputs are the source's (the superres thumbnail) */
  if (images && cfg->inputs != conform_image_source_inputs(cfg->data)) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_USAGE, "data.inputs must be %d for data.source %s (got %d)%s",
                conform_image_source_inputs(cfg->data), cfg->data, cfg->inputs,
                conform_image_source_inputs(cfg->data) > 0 ? ": the inputs are the 7 x 7 thumbnail" : "");
    return FALSE;
  }
  if (g_strcmp0(cfg->sampler, "ddim") == 0 && cfg->sampling_steps > cfg->T) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_USAGE, "sample.steps (%d) must not exceed model.T (%d)",
                cfg->sampling_steps, cfg->T);
    return FALSE;
  }
  if (cfg->lr_min > cfg->lr) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_USAGE, "train.lr_min (%g) must not exceed train.lr (%g)", cfg->lr_min, cfg->lr);
    return FALSE;
  }
  gboolean vae = g_strcmp0(cfg->model_type, "vae") == 0;
  if (vae && g_strcmp0(cfg->strategy, "projected-sampling") == 0) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_USAGE,
                "strategy 'projected-sampling' needs model.type=ddpm (a VAE has no reverse steps)");
    return FALSE;
  }
  if (!vae && g_strcmp0(cfg->strategy, "constrained-layer") == 0) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_USAGE,
                "strategy 'constrained-layer' needs model.type=vae (for a DDPM use projection or cgauss)");
    return FALSE;
  }
  guint mask;
  if (!conform_class_list_parse(cfg->classes, "data.classes", &mask, error) ||
      !conform_class_list_parse(cfg->thin_classes, "data.thin_classes", &mask, error))
    return FALSE;
  gboolean has_eq = cfg->equations && cfg->equations[0];
  if (has_eq) {
    CfExprSet es;
    const CfGeneratorInfo *gi = cf_data_generator_find(cfg->data); /* else the engine checks the dimension */
    if (!conform_equations_parse(cfg->equations, gi ? gi->dim : CF_EXPR_MAX_DIM, &es, error))
      return FALSE;
    cf_expr_set_clear(&es);
    if (cfg->constraint.m > 0) {
      g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_USAGE,
                  "the experiment has both a matrix constraint (%s) and constraint.equations: use one of them",
                  cfg->constraint_source && cfg->constraint_source[0] ? cfg->constraint_source : "A x = b");
      return FALSE;
    }
    static const char *const linear_only[] = {"projected-sampling", "constrained-layer", "cgauss", NULL};
    if (g_strv_contains(linear_only, cfg->strategy)) {
      g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_USAGE,
                  "strategy '%s' needs a linear constraint A x = b; with constraint.equations use none, projection "
                  "or mirror",
                  cfg->strategy);
      return FALSE;
    }
  }
  if (g_strcmp0(cfg->strategy, "mirror") == 0) {
    if (vae || cfg->inputs > 0) {
      g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_USAGE, "strategy 'mirror' needs %s",
                  vae ? "model.type=ddpm (a diffusion model trained in the learned mirror space)"
                      : "data.inputs=0 (the mirror maps act on whole rows, not on generated columns given inputs)");
      return FALSE;
    }
    if (cfg->init && cfg->init[0]) {
      g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_USAGE,
                  "strategy 'mirror' trains its diffusion model in the mirror space it learns first: it cannot start "
                  "from train.init (a model of the data space)");
      return FALSE;
    }
  }
  gboolean needs_constraint = TRUE;
  if (g_strcmp0(cfg->strategy, "dual") == 0) {
    ConformDualConstraint dc[CONFORM_DUAL_MAX];
    int nd;
    if (vae) {
      g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_USAGE,
                  "strategy 'dual' needs model.type=ddpm (primal-dual training of a diffusion model)");
      return FALSE;
    }
    if (!conform_dual_parse(cfg, dc, &nd, error))
      return FALSE;
    needs_constraint = FALSE;
    for (int i = 0; i < nd; i++) {
      if (dc[i].kind == CONFORM_DUAL_VIOLATION)
        needs_constraint = TRUE;
      if (dc[i].kind == CONFORM_DUAL_TEACHER && (!cfg->init || !cfg->init[0])) {
        g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_USAGE,
                    "dual.constraints=teacher needs a pretrained model: set train.init to its experiment directory");
        return FALSE;
      }
    }
    if (needs_constraint && has_eq) {
      g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_USAGE,
                  "dual.constraints=violation needs a linear constraint A x = b, not constraint.equations");
      return FALSE;
    }
    if (needs_constraint && cfg->constraint.m == 0) {
      g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_USAGE,
                  "dual.constraints=violation needs a constraint, and preset '%s' has none: pass --constraint FILE or "
                  "set dual.constraints (class:K, teacher)",
                  cfg->preset);
      return FALSE;
    }
  }
  if (needs_constraint && g_strcmp0(cfg->strategy, "none") != 0 && !conform_config_has_constraint(cfg)) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_USAGE,
                "strategy '%s' needs a constraint, and preset '%s' has none: pass --constraint FILE or --set "
                "constraint.equations=...",
                cfg->strategy, cfg->preset);
    return FALSE;
  }
  return TRUE;
}

static void
put_doubles(GKeyFile *kf, const char *group, const char *key, const double *v, gsize n)
{
  GString *s = g_string_new(NULL);
  char buf[G_ASCII_DTOSTR_BUF_SIZE];
  for (gsize i = 0; i < n; i++)
    g_string_append_printf(s, "%s%s", i ? " " : "", g_ascii_dtostr(buf, sizeof buf, v[i]));
  g_key_file_set_string(kf, group, key, s->str);
  g_string_free(s, TRUE);
}

GKeyFile *
conform_config_to_keyfile(const ConformConfig *cfg)
{
  GKeyFile *kf = g_key_file_new();
  g_key_file_set_string(kf, "experiment", "app_version", PACKAGE_VERSION);
  if (cfg->command && cfg->command[0]) {
    g_key_file_set_string(kf, "experiment", "command", cfg->command);
    g_key_file_set_comment(kf, "experiment", "command", "the command line that made this experiment", NULL);
  }
  for (guint i = 0; i < G_N_ELEMENTS(keys); i++) {
    g_auto(GStrv) parts = g_strsplit(keys[i].key, ".", 2);
    g_autofree char *v = conform_config_get_string(cfg, keys[i].key);
    g_key_file_set_string(kf, parts[0], parts[1], v);
    g_key_file_set_comment(kf, parts[0], parts[1], keys[i].help, NULL);
  }
  const CfConstraint *c = &cfg->constraint;
  g_key_file_set_integer(kf, "constraint", "rows", c->m);
  g_key_file_set_integer(kf, "constraint", "cols", c->n);
  g_key_file_set_string(kf, "constraint", "source", cfg->constraint_source ? cfg->constraint_source : "");
  g_key_file_set_comment(kf, "constraint", "rows", "A x = b in raw data space; A row-major, full precision", NULL);
  if (c->m > 0) {
    put_doubles(kf, "constraint", "A", c->A, (gsize)c->m * (gsize)c->n);
    put_doubles(kf, "constraint", "b", c->b, (gsize)c->m);
  }
  return kf;
}

/* The `expect` numbers of [constraint] `key`. The array grows with the
 * numbers the file holds, never with the size rows x cols claims (up to
 * 4096 x 65536: 2 GiB of doubles for a one-line file). */
static gboolean
get_doubles(GKeyFile *kf, const char *origin, const char *key, gsize expect, double **out, GError **error)
{
  g_autofree char *s = g_key_file_get_string(kf, "constraint", key, NULL);
  if (!s) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_INPUT, "%s: [constraint] %s is missing", origin, key);
    return FALSE;
  }
  g_auto(GStrv) tok = g_strsplit_set(g_strstrip(s), " \t", -1);
  g_autoptr(GArray) v = g_array_new(FALSE, FALSE, sizeof(double));
  gsize n = 0;
  for (gsize i = 0; tok[i]; i++) {
    if (tok[i][0] == '\0')
      continue;
    char *end;
    double x = g_ascii_strtod(tok[i], &end);
    if (*end != '\0' || !isfinite(x)) {
      g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_INPUT, "%s: [constraint] %s: value %zu '%s' is not a finite number",
                  origin, key, n + 1, tok[i]);
      return FALSE;
    }
    if (n == expect) {
      n++;
      break;
    }
    g_array_append_val(v, x);
    n++;
  }
  if (n != expect) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_INPUT, "%s: [constraint] %s has %s%zu values, expected %zu", origin, key,
                n > expect ? "more than " : "", n > expect ? expect : n, expect);
    return FALSE;
  }
  *out = (double *)(void *)g_array_free(g_steal_pointer(&v), FALSE);
  return TRUE;
}

gboolean
conform_config_from_keyfile(ConformConfig *out, GKeyFile *kf, const char *origin, GError **error)
{
  ConformConfig cfg;
  conform_config_init(&cfg);
  for (guint i = 0; i < G_N_ELEMENTS(keys); i++) {
    g_auto(GStrv) parts = g_strsplit(keys[i].key, ".", 2);
    g_autofree char *v = g_key_file_get_string(kf, parts[0], parts[1], NULL);
    if (!v)
      continue; /* older files: keep the default */
    g_autoptr(GError) e = NULL;
    if (!conform_config_set(&cfg, keys[i].key, v, &e)) {
      g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_INPUT, "%s: %s", origin, e->message);
      conform_config_clear(&cfg);
      return FALSE;
    }
  }
  GError *e = NULL;
  int m = g_key_file_get_integer(kf, "constraint", "rows", &e);
  if (e) {
    g_clear_error(&e);
    m = 0;
  }
  int n = g_key_file_get_integer(kf, "constraint", "cols", NULL);
  if (m < 0 || m > CF_CONSTRAINT_MAX_ROWS || (m > 0 && (n <= 0 || n > CF_CONSTRAINT_MAX_COLS))) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_INPUT, "%s: [constraint] has an invalid size %d x %d", origin, m, n);
    conform_config_clear(&cfg);
    return FALSE;
  }
  if (m > 0) {
    double *A = NULL, *b = NULL;
    if (!get_doubles(kf, origin, "A", (gsize)m * (gsize)n, &A, error) || !get_doubles(kf, origin, "b", (gsize)m, &b, error)) {
      g_free(A);
      conform_config_clear(&cfg);
      return FALSE;
    }
    CfError err;
    CfStatus st = cf_constraint_set(&cfg.constraint, m, n, A, b, &err);
    g_free(A);
    g_free(b);
    if (st != CF_OK) {
      g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_INPUT, "%s: [constraint] %s", origin, err.msg);
      conform_config_clear(&cfg);
      return FALSE;
    }
  }
  g_autofree char *src = g_key_file_get_string(kf, "constraint", "source", NULL);
  g_free(cfg.constraint_source);
  cfg.constraint_source = g_strdup(src ? src : "");
  g_autofree char *command = g_key_file_get_string(kf, "experiment", "command", NULL);
  g_free(cfg.command);
  cfg.command = g_strdup(command ? command : "");
  conform_config_clear(out);
  *out = cfg;
  return TRUE;
}
