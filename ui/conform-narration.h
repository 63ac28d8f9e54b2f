/* ConformNarration: slow motion through what the current strategy does to
 * a handful of the latest samples, one sub-step at a time (Back / Next),
 * each explained in a line of text and shown on a scatter of the run's own
 * data: the reverse chain's frames, raw -> projected arrows, the
 * constrained-Gaussian steps staying on the set, the dual step's numbers,
 * or x -> g(x) -> mirror-space sample -> f back. Nothing is recomputed:
 * every picture is an array of the ConformSampleSet (and, for dual, the
 * latest training record). */
#pragma once

#include <gtk/gtk.h>

#include "conform-config.h"
#include "conform-engine.h"

G_BEGIN_DECLS

#define CONFORM_TYPE_NARRATION (conform_narration_get_type())
G_DECLARE_FINAL_TYPE(ConformNarration, conform_narration, CONFORM, NARRATION, GtkWidget)

/* Samples shown (the first ones of the set; i.i.d., so a random subset). */
#define CONFORM_NARRATION_POINTS 16

GtkWidget *conform_narration_new(void);
/* The latest samples of the run (referenced), its constraint (copied; m = 0:
 * none) and configuration (strategy, dual.* settings); the sub-steps are
 * rebuilt and the position kept when the strategy is the same. */
void conform_narration_set_samples(ConformNarration *self, ConformSampleSet *s, const CfConstraint *c,
                                   const ConformConfig *cfg);
/* Strategy dual: the latest record (multipliers and slacks). */
void conform_narration_set_record(ConformNarration *self, const ConformTrainRecord *r);
int conform_narration_get_n_steps(ConformNarration *self);
int conform_narration_get_step(ConformNarration *self); /* 0-based */
/* Clamped to the available sub-steps. */
void conform_narration_set_step(ConformNarration *self, int k);
/* The current sub-step's explanation (Pango markup) and title. */
const char *conform_narration_get_text(ConformNarration *self);
const char *conform_narration_get_title(ConformNarration *self);
/* The scatter that draws the sub-step (for tests and export). */
GtkWidget *conform_narration_get_scatter(ConformNarration *self);

G_END_DECLS
