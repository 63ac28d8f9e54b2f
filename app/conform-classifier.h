/* The in-app image classifier (core/classifier.h) and the image metrics
 * built on it: accuracy, class shares and the Frechet distance of its
 * penultimate features ("FD", the FID idea with our own small CNN).
 *
 * Checkpoints are CONFCKPT files (core/checkpoint.h) with the header keys
 * model=classifier, arch, C, H, W, n_classes, c1, c2, features, act, steps,
 * seed, accuracy (test split) and one arena "params". Pretrained Fashion-MNIST
 * classifiers for 28 x 28 and 14 x 14 images are bundled under
 * <data dir>/models/classifier-fashion{28,14}.ckpt (conform_data_dir()).
 *
 * Images are float arrays of n rows of C*H*W raw pixels in [0, 1] (CHW), the
 * classifier's geometry. A ConformClassifier is safe to use from several
 * threads (its evaluator is guarded by a mutex). */
#pragma once

#include <gio/gio.h>

#include "checkpoint.h"
#include "classifier.h"
#include "idx.h"

G_BEGIN_DECLS

typedef struct _ConformClassifier ConformClassifier;

/* The directory of bundled data: $CONFORM_DATA_DIR if set, else the
 * installed <datadir>/conform if it has a models/ folder, else the source
 * tree's data/ (uninstalled runs). */
const char *conform_data_dir(void);
/* <data dir>/models/classifier-fashion<side>.ckpt (newly allocated). */
char *conform_classifier_bundled_path(int side);
/* The bundled pretrained Fashion-MNIST diffusion model for image_size x
 * image_size images, <data dir>/pretrained/fashion<image_size> (an
 * experiment directory, for train.init), newly allocated; NULL when that
 * directory or its weights.ckpt is missing. */
char *conform_pretrained_dir(int image_size);

/* Loads a classifier checkpoint; path NULL loads the bundled 28 x 28 one.
 * Errors (unreadable, corrupt, truncated, not a classifier, inconsistent
 * sizes, NaN weights) name the file. */
ConformClassifier *conform_classifier_load(const char *path, GError **error);
/* The same from a decoded checkpoint (borrowed); path (may be NULL) names
 * it in messages. */
ConformClassifier *conform_classifier_new_from_checkpoint(const CfCheckpoint *ck, const char *path, GError **error);
/* The bundled classifier for side x side Fashion-MNIST (28 or 14). */
ConformClassifier *conform_classifier_load_bundled(int side, GError **error);
void conform_classifier_free(ConformClassifier *clf);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ConformClassifier, conform_classifier_free)

/* Writes the checkpoint atomically. */
gboolean conform_classifier_save(const ConformClassifier *clf, const char *path, GError **error);

const CfClassifierConfig *conform_classifier_config(const ConformClassifier *clf);
/* Where it was loaded from (NULL for a freshly trained one). */
const char *conform_classifier_path(const ConformClassifier *clf);
/* The training steps and test accuracy recorded in its checkpoint (or by
 * training; NaN if unknown). */
long conform_classifier_steps(const ConformClassifier *clf);
double conform_classifier_recorded_accuracy(const ConformClassifier *clf);

/* features: n x F floats (F = config->features), the penultimate layer. */
gboolean conform_classifier_features(ConformClassifier *clf, const float *images, int n, float *features,
                                     GError **error);
/* classes: n predicted classes (may be NULL); logits: n x n_classes (may be NULL). */
gboolean conform_classifier_predict(ConformClassifier *clf, const float *images, int n, int *classes,
                                    float *logits, GError **error);
/* shares[c] = fraction of the n images predicted as class c (n_classes values). */
gboolean conform_class_shares(ConformClassifier *clf, const float *images, int n, double *shares,
                              GError **error);
/* Frechet distance (cf_frechet_distance) between the penultimate features
 * of two image sets (each >= 2 images). NaN and *error set on failure. */
double conform_fd_classifier(ConformClassifier *clf, const float *images_a, int n_a, const float *images_b,
                             int n_b, GError **error);
/* Accuracy on a labelled image set of the classifier's geometry; per_class
 * (n_classes values, may be NULL) gets the accuracy within each true class
 * (NaN for a class without images). */
gboolean conform_classifier_accuracy(ConformClassifier *clf, const CfImageSet *set, double *accuracy,
                                     double *per_class, GError **error);

/* ---- training ----------------------------------------------------------------- */

typedef struct {
  int steps;       /* Adam steps (default 3000) */
  int batch;       /* minibatch size (default 64) */
  guint64 seed;    /* initialisation and minibatch order (default 1) */
  double lr;       /* peak learning rate (default 2e-3): 100 warm-up steps, cosine decay to lr/20 */
  int c1, c2, features; /* widths (defaults of cf_classifier_default_config) */
} ConformClassifierTrainOptions;

void conform_classifier_train_options_init(ConformClassifierTrainOptions *o);
/* Called every step with the mean loss and accuracy over the steps since the
 * previous call at which report is TRUE (every 1% and the last step). */
typedef void (*ConformClassifierProgressFn)(void *user, long step, long total, double loss, double accuracy,
                                            gboolean report);
/* Trains a fresh classifier on a labelled set (minibatches drawn by
 * reshuffling the set every epoch). cancellable may be NULL. */
ConformClassifier *conform_classifier_train(const CfImageSet *train, const ConformClassifierTrainOptions *o,
                                            ConformClassifierProgressFn progress, void *user,
                                            GCancellable *cancellable, GError **error);
/* Records the test accuracy (written into the checkpoint header). */
void conform_classifier_set_accuracy(ConformClassifier *clf, double accuracy);

/* ---- CLI commands (dispatched by conform-cli.c) ----------------------------------- */

/* conform train-classifier [--downsample 1|2] [--steps N] [--seed S] [--batch B] [--lr LR] --out FILE.ckpt */
int conform_train_classifier_main(int argc, char **argv);
/* conform evaluate-classifier [CKPT] */
int conform_evaluate_classifier_main(int argc, char **argv);

G_END_DECLS
