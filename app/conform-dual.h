/* Dual training (strategy dual) in the app: the dual.* settings, class
 * filters of labelled data, and the engine's primal-dual step. See
 * core/dual.h for the algorithm. */
#pragma once

#include <glib.h>

#include "conform-config.h"
#include "conform-engine.h"

G_BEGIN_DECLS

#define CONFORM_DUAL_MAX CONFORM_RECORD_DUAL_MAX /* constraints of one run */
#define CONFORM_MAX_CLASSES 10 /* classes of labelled data the metrics track */

typedef enum { CONFORM_DUAL_CLASS, CONFORM_DUAL_TEACHER, CONFORM_DUAL_VIOLATION } ConformDualKind;

typedef struct {
  ConformDualKind kind;
  int cls;          /* CLASS: the class; else -1 */
  double threshold; /* b_i */
  char name[24];    /* "class 3", "teacher", "violation" */
} ConformDualConstraint;

/* Parses dual.constraints and dual.thresholds ("" = one violation
 * constraint). USAGE errors name the key and the item. */
gboolean conform_dual_parse(const ConformConfig *cfg, ConformDualConstraint *out, int *n, GError **error);
/* A class list like "0-6,8" (classes 0..CONFORM_MAX_CLASSES-1) as a bit
 * mask; "" is 0. */
gboolean conform_class_list_parse(const char *text, const char *key, guint *mask, GError **error);

/* Shares the multipliers of record r predict for training shares pi (K
 * classes) under cfg's dual.constraints: (pi_k + lambda_k) / (1 + sum
 * lambda) (core/dual.h). FALSE when r carries no multipliers or cfg has no
 * class constraint. */
gboolean conform_dual_predicted_shares(const ConformConfig *cfg, const ConformTrainRecord *r, const double *pi, int K,
                                       double *out);

G_END_DECLS
