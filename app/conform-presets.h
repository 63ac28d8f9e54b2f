/* Bundled presets: a data source, its constraint and tuned defaults. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct {
  const char *name;
  const char *data;            /* built-in generator */
  const char *constraint_text; /* NULL: the generator's own constraint (if any) */
  const char *description;
  const char *const *overrides; /* "key=value", NULL-terminated */
} ConformPreset;

#define CONFORM_DEFAULT_PRESET "simplex-3d"

const ConformPreset *conform_presets(guint *n);
const ConformPreset *conform_preset_find(const char *name);
/* "a, b, c" list of names (for error messages). */
char *conform_preset_names(void);

G_END_DECLS
