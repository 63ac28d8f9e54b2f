/* Small CNN image classifier (see classifier.h). */
#include "classifier.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SIDE 1024
#define MAX_WIDTH 4096
/* Largest tensor of one image (values per image and layer: C H W, c1 H W,
 * c1 H/2 W/2, c2 H/2 W/2) and largest parameter count: with the side and
 * width limits alone a configuration could ask for 2^32 values per image
 * (int shapes overflow) or 10^12 parameters. The bundled 28 x 28 classifier
 * uses 12544 values per image and 207 k parameters. */
#define MAX_IMAGE_VALUES ((size_t)1 << 22)
#define MAX_PARAMS ((size_t)1 << 26)

CfClassifierConfig
cf_classifier_default_config(int C, int H, int W, int n_classes)
{
  CfClassifierConfig c;
  memset(&c, 0, sizeof c);
  c.C = C;
  c.H = H;
  c.W = W;
  c.n_classes = n_classes;
  c.c1 = 16;
  c.c2 = 32;
  c.features = 128;
  c.act = CF_ACT_RELU;
  return c;
}

static bool declare(CfClassifierNet *n, CfParams *p, const CfClassifierConfig *c);

/* The parameter arena's size (with the padding cf_params_add puts between
 * parameters), declared without allocating it; SIZE_MAX when the
 * declaration fails. Sizes must be range checked (flat < 2^31). */
static size_t
cf_classifier_param_count_(const CfClassifierConfig *c)
{
  CfParams p;
  CfClassifierNet net;
  cf_params_init(&p);
  size_t total = declare(&net, &p, c) ? p.total : SIZE_MAX;
  cf_params_clear(&p);
  return total;
}

CfStatus
cf_classifier_config_check(const CfClassifierConfig *c, CfError *err)
{
  if (c->C < 1 || c->C > 16)
    return cf_error_set(err, CF_ERR_INVALID, "classifier: C = %d is out of range [1, 16]", c->C);
  if (c->H < 2 || c->W < 2 || c->H > MAX_SIDE || c->W > MAX_SIDE || c->H % 2 || c->W % 2)
    return cf_error_set(err, CF_ERR_INVALID, "classifier: image size %d x %d must be even numbers in [2, %d]", c->H,
                        c->W, MAX_SIDE);
  if (c->n_classes < 2 || c->n_classes > CF_CLASSIFIER_MAX_CLASSES)
    return cf_error_set(err, CF_ERR_INVALID, "classifier: n_classes = %d is out of range [2, %d]", c->n_classes,
                        CF_CLASSIFIER_MAX_CLASSES);
  if (c->c1 < 1 || c->c2 < 1 || c->features < 1 || c->c1 > MAX_WIDTH || c->c2 > MAX_WIDTH ||
      c->features > MAX_WIDTH)
    return cf_error_set(err, CF_ERR_INVALID, "classifier: widths c1 %d, c2 %d, features %d must be in [1, %d]",
                        c->c1, c->c2, c->features, MAX_WIDTH);
  if (c->act != CF_ACT_RELU && c->act != CF_ACT_SILU)
    return cf_error_set(err, CF_ERR_INVALID, "classifier: the activation must be ReLU or SiLU");
  /* every term below is at most 4096 * 1024 * 1024 * 9 < 2^46: no overflow */
  const size_t HW = (size_t)c->H * (size_t)c->W, hw = HW / 4;
  const size_t widest = (size_t)(c->C > c->c1 ? c->C : c->c1) * HW, second = (size_t)c->c2 * hw;
  if (widest > MAX_IMAGE_VALUES || second > MAX_IMAGE_VALUES)
    return cf_error_set(err, CF_ERR_INVALID,
                        "classifier: %d x %d images with C %d, c1 %d, c2 %d need %zu values per image in a layer, "
                        "more than the limit of %zu",
                        c->H, c->W, c->C, c->c1, c->c2, widest > second ? widest : second, MAX_IMAGE_VALUES);
  const size_t np = cf_classifier_param_count_(c);
  if (np > MAX_PARAMS)
    return cf_error_set(err, CF_ERR_INVALID, "classifier: %zu parameters, more than the limit of %zu", np,
                        MAX_PARAMS);
  return CF_OK;
}

size_t
cf_classifier_param_count(const CfClassifierConfig *c)
{
  return cf_classifier_config_check(c, NULL) == CF_OK ? cf_classifier_param_count_(c) : 0;
}

bool
cf_classifier_second_pool(const CfClassifierConfig *c)
{
  return (c->H / 2) % 2 == 0 && (c->W / 2) % 2 == 0;
}

int
cf_classifier_flat_dim(const CfClassifierConfig *c)
{
  int f = cf_classifier_second_pool(c) ? 4 : 2;
  return c->c2 * (c->H / f) * (c->W / f);
}

/* Declares the parameters; false if one could not be added. */
static bool
declare(CfClassifierNet *n, CfParams *p, const CfClassifierConfig *c)
{
  int flat = cf_classifier_flat_dim(c);
  n->conv1_w = cf_params_add(p, "clf.conv1.w", c->c1, c->C * 9, CF_INIT_UNIFORM_FAN_IN, 1.0f);
  n->conv1_b = cf_params_add(p, "clf.conv1.b", 1, c->c1, CF_INIT_ZERO, 0.0f);
  n->conv2_w = cf_params_add(p, "clf.conv2.w", c->c2, c->c1 * 9, CF_INIT_UNIFORM_FAN_IN, 1.0f);
  n->conv2_b = cf_params_add(p, "clf.conv2.b", 1, c->c2, CF_INIT_ZERO, 0.0f);
  n->fc_w = cf_params_add(p, "clf.fc.w", c->features, flat, CF_INIT_UNIFORM_FAN_IN, 1.0f);
  n->fc_b = cf_params_add(p, "clf.fc.b", 1, c->features, CF_INIT_ZERO, 0.0f);
  n->out_w = cf_params_add(p, "clf.out.w", c->n_classes, c->features, CF_INIT_UNIFORM_FAN_IN, 1.0f);
  n->out_b = cf_params_add(p, "clf.out.b", 1, c->n_classes, CF_INIT_ZERO, 0.0f);
  return n->conv1_w >= 0 && n->conv1_b >= 0 && n->conv2_w >= 0 && n->conv2_b >= 0 && n->fc_w >= 0 &&
         n->fc_b >= 0 && n->out_w >= 0 && n->out_b >= 0;
}

static CfPointwise
pointwise(CfActivation a)
{
  return a == CF_ACT_SILU ? CF_PW_SILU : CF_PW_RELU;
}

/* x (B, C*H*W) -> features (B, F) and logits (B, n_classes). */
static void
build(CfGraph *g, CfParams *p, const CfClassifierNet *n, const CfClassifierConfig *c, CfNode x, CfNode *feats,
      CfNode *logits)
{
  int H = c->H, W = c->W;
  CfNode h = cf_conv2d(g, x, cf_param(g, p, n->conv1_w), cf_param(g, p, n->conv1_b), c->C, H, W, c->c1, 3, 1, 1);
  h = cf_activation(g, h, c->act);
  h = cf_avgpool(g, h, c->c1, H, W, 2);
  h = cf_conv2d(g, h, cf_param(g, p, n->conv2_w), cf_param(g, p, n->conv2_b), c->c1, H / 2, W / 2, c->c2, 3, 1,
                1);
  h = cf_activation(g, h, c->act);
  if (cf_classifier_second_pool(c))
    h = cf_avgpool(g, h, c->c2, H / 2, W / 2, 2);
  *feats = cf_linear_act(g, h, cf_param(g, p, n->fc_w), cf_param(g, p, n->fc_b), pointwise(c->act));
  *logits = cf_linear(g, *feats, cf_param(g, p, n->out_w), cf_param(g, p, n->out_b));
}

CfStatus
cf_classifier_init(CfClassifier *m, const CfClassifierConfig *cfg, CfError *err)
{
  CF_ASSERT(m && cfg);
  memset(m, 0, sizeof *m);
  cf_params_init(&m->params);
  CfStatus st = cf_classifier_config_check(cfg, err);
  if (st != CF_OK)
    return st;
  m->cfg = *cfg;
  m->prob = cf_calloc_array((size_t)cfg->n_classes, sizeof(double));
  if (!m->prob || !declare(&m->net, &m->params, cfg) || cf_params_alloc(&m->params) != CF_OK) {
    cf_classifier_clear(m);
    return cf_error_set(err, CF_ERR_NOMEM, "classifier: cannot allocate the parameters");
  }
  return CF_OK;
}

void
cf_classifier_clear(CfClassifier *m)
{
  if (!m)
    return;
  cf_graph_free(m->train);
  m->train = NULL;
  m->train_B = 0;
  cf_params_clear(&m->params);
  free(m->prob);
  m->prob = NULL;
}

void
cf_classifier_randomize(CfClassifier *m, CfRng *rng)
{
  cf_params_randomize(&m->params, rng);
}

CfStatus
cf_classifier_prepare_train(CfClassifier *m, int B, CfError *err)
{
  CF_ASSERT(m && m->params.value);
  if (B < 1)
    return cf_error_set(err, CF_ERR_INVALID, "classifier: training batch size must be >= 1 (got %d)", B);
  cf_graph_free(m->train);
  m->train = NULL;
  m->train_B = 0;
  const CfClassifierConfig *c = &m->cfg;
  CfGraph *g = cf_graph_new();
  if (!g)
    return cf_error_set(err, CF_ERR_NOMEM, "classifier: cannot allocate the training graph");
  m->in_x = cf_input(g, B, c->C * c->H * c->W, false);
  m->in_g = cf_input(g, B, c->n_classes, false);
  build(g, &m->params, &m->net, c, m->in_x, &m->feats, &m->logits);
  /* sum(logits .* G): its gradient w.r.t. the logits is G = dLoss/dlogits */
  m->loss = cf_sum_all(g, cf_mul(g, m->logits, m->in_g));
  if (cf_graph_finalize(g) != CF_OK) {
    cf_graph_free(g);
    return cf_error_set(err, CF_ERR_NOMEM, "classifier: cannot allocate the training graph for batch size %d", B);
  }
  m->train = g;
  m->train_B = B;
  return CF_OK;
}

int
cf_argmax(const float *z, int K)
{
  int best = 0;
  for (int k = 1; k < K; k++)
    if (z[k] > z[best])
      best = k;
  return best;
}

double
cf_softmax_xent(const float *z, const int *labels, int B, int K, float *G, double *prob)
{
  double total = 0.0;
  for (int b = 0; b < B; b++) {
    const float *zb = z + (size_t)b * K;
    int y = labels[b];
    CF_ASSERT(y >= 0 && y < K);
    double mx = zb[0];
    for (int k = 1; k < K; k++)
      mx = fmax(mx, (double)zb[k]);
    double s = 0.0;
    for (int k = 0; k < K; k++) {
      prob[k] = exp((double)zb[k] - mx);
      s += prob[k];
    }
    total += log(s) + mx - (double)zb[y]; /* -log softmax_y = logsumexp - z_y */
    if (G) {
      float *gb = G + (size_t)b * K;
      for (int k = 0; k < K; k++)
        gb[k] = (float)((prob[k] / s - (k == y ? 1.0 : 0.0)) / B);
    }
  }
  return total / B;
}

double
cf_classifier_train_step(CfClassifier *m, const float *images, const int *labels, double *accuracy)
{
  CF_ASSERT(m->train);
  CfGraph *g = m->train;
  const CfClassifierConfig *c = &m->cfg;
  const int B = m->train_B, K = c->n_classes;
  memcpy(cf_graph_value(g, m->in_x), images, (size_t)B * (size_t)(c->C * c->H * c->W) * sizeof(float));
  cf_graph_forward(g);
  const float *z = cf_graph_value(g, m->logits);
  double loss = cf_softmax_xent(z, labels, B, K, cf_graph_value(g, m->in_g), m->prob);
  if (accuracy) {
    int hit = 0;
    for (int b = 0; b < B; b++)
      hit += cf_argmax(z + (size_t)b * K, K) == labels[b];
    *accuracy = (double)hit / B;
  }
  cf_params_zero_grad(&m->params);
  cf_graph_backward(g, m->loss);
  return loss;
}

/* ---- evaluator ---------------------------------------------------------------- */

CfStatus
cf_classifier_eval_init(CfClassifierEval *e, const CfClassifierConfig *cfg, int chunk, CfError *err)
{
  CF_ASSERT(e && cfg);
  memset(e, 0, sizeof *e);
  cf_params_init(&e->params);
  CfStatus st = cf_classifier_config_check(cfg, err);
  if (st != CF_OK)
    return st;
  if (chunk < 1)
    return cf_error_set(err, CF_ERR_INVALID, "classifier: evaluation chunk must be >= 1 (got %d)", chunk);
  e->cfg = *cfg;
  e->chunk = chunk;
  if (!declare(&e->net, &e->params, cfg) || cf_params_alloc(&e->params) != CF_OK) {
    cf_classifier_eval_clear(e);
    return cf_error_set(err, CF_ERR_NOMEM, "classifier: cannot allocate the evaluator's parameters");
  }
  CfGraph *g = cf_graph_new();
  if (!g) {
    cf_classifier_eval_clear(e);
    return cf_error_set(err, CF_ERR_NOMEM, "classifier: cannot allocate the evaluation graph");
  }
  e->in_x = cf_input(g, chunk, cfg->C * cfg->H * cfg->W, false);
  build(g, &e->params, &e->net, cfg, e->in_x, &e->feats, &e->logits);
  if (cf_graph_finalize(g) != CF_OK) {
    cf_graph_free(g);
    cf_classifier_eval_clear(e);
    return cf_error_set(err, CF_ERR_NOMEM, "classifier: cannot allocate the evaluation graph for %d rows", chunk);
  }
  e->g = g;
  return CF_OK;
}

void
cf_classifier_eval_clear(CfClassifierEval *e)
{
  if (!e)
    return;
  cf_graph_free(e->g);
  e->g = NULL;
  cf_params_clear(&e->params);
}

void
cf_classifier_eval_load(CfClassifierEval *e, const float *arena)
{
  memcpy(e->params.value, arena, e->params.total * sizeof(float));
}

void
cf_classifier_eval_run(CfClassifierEval *e, const float *images, int n, float *logits, int *classes,
                       float *features)
{
  CF_ASSERT(e->g && n >= 0);
  const size_t D = (size_t)e->cfg.C * e->cfg.H * e->cfg.W;
  const int K = e->cfg.n_classes, F = e->cfg.features;
  float *x = cf_graph_value(e->g, e->in_x);
  for (int start = 0; start < n; start += e->chunk) {
    int r = n - start < e->chunk ? n - start : e->chunk;
    memcpy(x, images + (size_t)start * D, (size_t)r * D * sizeof(float));
    if (r < e->chunk)
      memset(x + (size_t)r * D, 0, (size_t)(e->chunk - r) * D * sizeof(float));
    cf_graph_forward(e->g);
    const float *z = cf_graph_value(e->g, e->logits);
    if (logits)
      memcpy(logits + (size_t)start * K, z, (size_t)r * K * sizeof(float));
    if (classes)
      for (int b = 0; b < r; b++)
        classes[start + b] = cf_argmax(z + (size_t)b * K, K);
    if (features)
      memcpy(features + (size_t)start * F, cf_graph_value(e->g, e->feats), (size_t)r * F * sizeof(float));
  }
}
