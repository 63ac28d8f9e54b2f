/* A small convolutional image classifier on the autodiff graph (used for
 * classifier-based image metrics: accuracy, class shares, Frechet distance
 * of its penultimate features).
 *
 * Images are (B, C*H*W) rows in CHW order (graph.h), fed as they are (the
 * app uses raw pixels in [0, 1]). H and W must be even.
 *
 *   conv3x3 (C -> c1) + act          at H x W
 *   avgpool 2                        -> H/2 x W/2
 *   conv3x3 (c1 -> c2) + act
 *   avgpool 2, only if H/2 and W/2   -> Hf x Wf = H/4 x W/4 (28 x 28 -> 7 x 7),
 *   are both even                       else H/2 x W/2 (14 x 14 -> 7 x 7)
 *   flatten (c2 * Hf * Wf)
 *   linear -> F + act                 the "penultimate features" (B, F)
 *   linear F -> n_classes             logits (B, n_classes)
 *
 * Loss: mean softmax cross-entropy over the batch. It is computed outside
 * the graph, in double, from the logits; its gradient with respect to the
 * logits, G = (softmax(z) - onehot(y)) / B, is written into an input node
 * and the graph's scalar is sum(logits .* G), whose backward pass gives
 * exactly dLoss/dparams (G is constant). So the graph needs no
 * cross-entropy op. */
#ifndef CF_CLASSIFIER_H
#define CF_CLASSIFIER_H

#include <stdbool.h>

#include "graph.h"
#include "nn.h"
#include "rng.h"
#include "status.h"

#define CF_CLASSIFIER_ARCH "cnn2" /* the architecture above; checkpoints record it */
#define CF_CLASSIFIER_MAX_CLASSES 256

typedef struct {
  int C, H, W;     /* image geometry; H, W even */
  int n_classes;   /* >= 2 */
  int c1, c2;      /* channels of the two conv layers */
  int features;    /* F: width of the penultimate layer */
  CfActivation act; /* CF_ACT_RELU or CF_ACT_SILU */
} CfClassifierConfig;

/* Defaults: c1 16, c2 32, F 128, ReLU. */
CfClassifierConfig cf_classifier_default_config(int C, int H, int W, int n_classes);
/* Validates a configuration (sizes positive and bounded, H, W even,
 * activation ReLU or SiLU, at most 2^22 values per image in a layer and
 * 2^26 parameters). */
CfStatus cf_classifier_config_check(const CfClassifierConfig *cfg, CfError *err);
/* The number of parameters of the network, computed without allocating (0
 * for a configuration cf_classifier_config_check refuses). */
size_t cf_classifier_param_count(const CfClassifierConfig *cfg);
/* Whether the second pooling applies, and the flattened width c2 * Hf * Wf. */
bool cf_classifier_second_pool(const CfClassifierConfig *cfg);
int cf_classifier_flat_dim(const CfClassifierConfig *cfg);

/* Parameter indices (into a CfParams) of the network. */
typedef struct {
  int conv1_w, conv1_b, conv2_w, conv2_b, fc_w, fc_b, out_w, out_b;
} CfClassifierNet;

typedef struct {
  CfClassifierConfig cfg;
  CfParams params;
  CfClassifierNet net;
  CfGraph *train; /* built by cf_classifier_prepare_train */
  int train_B;
  CfNode in_x, in_g, logits, feats, loss;
  double *prob; /* n_classes scratch */
} CfClassifier;

/* Declares and allocates the parameters (zeroed; see randomize). */
CfStatus cf_classifier_init(CfClassifier *m, const CfClassifierConfig *cfg, CfError *err);
void cf_classifier_clear(CfClassifier *m);
/* Fills the parameters by their declared initialisation (fan-in uniform
 * weights, zero biases). */
void cf_classifier_randomize(CfClassifier *m, CfRng *rng);
/* Builds (or rebuilds) the training graph for batch size B >= 1. */
CfStatus cf_classifier_prepare_train(CfClassifier *m, int B, CfError *err);
/* Forward + backward on a batch (train_B images, labels in
 * [0, n_classes)); parameter gradients are zeroed first and hold
 * dLoss/dparams afterwards. Returns the mean cross-entropy; *accuracy (may
 * be NULL) gets the fraction of the batch whose argmax logit is the label.
 * No allocation. */
double cf_classifier_train_step(CfClassifier *m, const float *images, const int *labels, double *accuracy);

/* Mean softmax cross-entropy of logits z (B x K) against labels, in double
 * (log-sum-exp with the maximum subtracted). If G is non-NULL it receives
 * dLoss/dz = (softmax(z) - onehot) / B (B x K). prob: K doubles of scratch. */
double cf_softmax_xent(const float *z, const int *labels, int B, int K, float *G, double *prob);
/* Index of the largest of z[0..K) (the first one on ties). */
int cf_argmax(const float *z, int K);

/* An inference copy: its own parameter arena (memcpy from the model or a
 * checkpoint) and its own graph for `chunk` rows, so it can run beside
 * training. Any number of images is processed in chunks (the last one
 * zero-padded). */
typedef struct {
  CfClassifierConfig cfg;
  CfParams params;
  CfClassifierNet net;
  CfGraph *g;
  int chunk;
  CfNode in_x, logits, feats;
} CfClassifierEval;

/* Builds the evaluator for cfg (parameters zero until loaded). */
CfStatus cf_classifier_eval_init(CfClassifierEval *e, const CfClassifierConfig *cfg, int chunk, CfError *err);
void cf_classifier_eval_clear(CfClassifierEval *e);
/* arena: e->params.total floats in the model's layout. */
void cf_classifier_eval_load(CfClassifierEval *e, const float *arena);
/* For n images (n x C*H*W): any of logits (n x n_classes), classes (n) and
 * features (n x F) may be NULL. */
void cf_classifier_eval_run(CfClassifierEval *e, const float *images, int n, float *logits, int *classes,
                            float *features);

#endif
