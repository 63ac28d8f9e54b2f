/* What an experiment's settings are, as text people can keep and rerun:
 * the reproduction command (`conform train ...` that rebuilds exactly a
 * configuration), the manifest (its experiment.ini), and which settings
 * differ from a preset's defaults or between configurations. Used by the
 * run history and by lessons. */
#pragma once

#include <glib.h>

#include "conform-config.h"

G_BEGIN_DECLS

/* Pseudo-key for the constraint A x = b in key lists below. */
#define CONFORM_MANIFEST_CONSTRAINT "constraint"

/* cfg's preset with its defaults (the built-in defaults when the preset is
 * unknown or empty). */
void conform_config_preset_base(const ConformConfig *cfg, ConformConfig *base);
/* TRUE when cfg's constraint is its preset's own (so `--preset` alone gives
 * it): the same A and b bit for bit, or the preset's image constraint that
 * follows data.image_size. */
gboolean conform_config_constraint_is_preset(const ConformConfig *cfg);
/* Keys (static strings of the settings table, plus
 * CONFORM_MANIFEST_CONSTRAINT) whose values differ from the preset's
 * defaults; experiment.preset is never listed. Free with g_ptr_array_unref. */
GPtrArray *conform_config_changed_keys(const ConformConfig *cfg);
/* Keys whose values are not the same in all n configurations (all keys of
 * the table and the constraint when all is TRUE). */
GPtrArray *conform_config_differing_keys(const ConformConfig *const *cfgs, int n, gboolean all);
/* A key's value as text; for CONFORM_MANIFEST_CONSTRAINT a one-line summary
 * ("none", or the rows "1 1 1 | 1; ..." shortened to about max_chars). */
char *conform_config_value_text(const ConformConfig *cfg, const char *key, int max_chars);
/* TRUE when every setting and A, b (bit for bit) are equal; constraint
 * sources (provenance only) are not compared. On FALSE, *first_diff (may be
 * NULL) names the first differing key. */
gboolean conform_config_equal(const ConformConfig *a, const ConformConfig *b, const char **first_diff);

/* The `conform train` command line that rebuilds cfg: --preset, --strategy,
 * --seed, --steps, a --set for every other setting that differs from the
 * preset's defaults, and, when the constraint is not the preset's, the
 * constraint in full precision as a here-document read by
 * `--constraint /dev/stdin`. Values are shell-quoted where needed. */
char *conform_reproduction_command(const ConformConfig *cfg);
/* experiment.ini text of cfg (every setting, seed, A and b, app version). */
char *conform_manifest_text(const ConformConfig *cfg);

G_END_DECLS
