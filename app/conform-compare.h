/* `conform compare`: trains every requested strategy from the same seed with
 * paired noise and writes comparison.tsv and comparison.png. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

int conform_compare_main(int argc, char **argv);

/* The strategy the model a `strategy` samples from is trained with: "none"
 * for strategies that act only at sampling time (they share one model),
 * `strategy` itself for those that are part of training. */
const char *conform_compare_training_strategy(const char *model_type, const char *strategy);

G_END_DECLS
