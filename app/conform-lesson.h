/* Lessons: a teacher's guided tour of an experiment, in a `.lesson` file
 * (GKeyFile; the format is documented in README.md, "Lessons"):
 *
 *   [lesson]    title, summary, preset, strategy, strategies, constraint or
 *               constraint_file, visible, hidden
 *   [settings]  section.key = value (any setting of the settings table)
 *   [step N]    title, text (Pango markup), action, question, choices,
 *               correct, answer
 *
 * Loading checks everything it can without training: the preset, strategy
 * and settings exist and their values parse, the constraint parses, the
 * configuration after each step's actions validates where a step resets,
 * the markup is well formed, the placeholders are known, and the controls
 * named by visible / hidden exist. Errors name the file, the line, the
 * section and the key. */
#pragma once

#include <glib.h>

#include "conform-config.h"
#include "conform-engine.h"

G_BEGIN_DECLS

typedef enum {
  CONFORM_LESSON_RESET,    /* reset: a fresh run with the sidebar settings */
  CONFORM_LESSON_TRAIN,    /* train N: N training steps, then pause */
  CONFORM_LESSON_SAMPLE,   /* sample [N]: draw samples now (N: the experiment's sample.n) */
  CONFORM_LESSON_SET,      /* set KEY=VALUE: change a sidebar setting */
  CONFORM_LESSON_STRATEGY, /* strategy NAME: switch the strategy (header) */
  CONFORM_LESSON_SHOW,     /* show VIEW: bring the view's tab to the front */
} ConformLessonActionKind;

typedef struct {
  ConformLessonActionKind kind;
  long n;      /* train: steps; sample: count (0: the experiment's) */
  char *key;   /* set: setting; strategy: name; show: view */
  char *value; /* set: value */
} ConformLessonAction;

typedef struct {
  int number;       /* N of [step N] */
  char *title;      /* NULL: none */
  char *text;       /* Pango markup with {placeholders} */
  char *action_text; /* the action as written (NULL: none) */
  ConformLessonAction *actions;
  int n_actions;
  char *question;   /* NULL: no prediction asked */
  char **choices;   /* NULL: the prediction is typed */
  int correct;      /* index of the right choice (-1: not marked) */
  char *answer;     /* markup with {placeholders}, shown on Reveal */
} ConformLessonStep;

typedef struct {
  char *path;       /* NULL when parsed from memory */
  char *title, *summary;
  char *preset, *strategy; /* strategy NULL: the preset's */
  char **strategies; /* strategies the lesson switches between (quick buttons); may be empty */
  char *constraint;  /* constraint text (file format); NULL: the preset's */
  char **setting_keys, **setting_values; /* [settings] in file order */
  char **visible, **hidden;
  ConformLessonStep *steps;
  int n_steps;
} ConformLesson;

ConformLesson *conform_lesson_parse(const char *text, gsize len, const char *origin, const char *base_dir,
                                    GError **error);
ConformLesson *conform_lesson_load(const char *path, GError **error);
void conform_lesson_free(ConformLesson *l);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ConformLesson, conform_lesson_free)

/* The lesson's starting configuration: preset, strategy, constraint and
 * settings, validated. */
gboolean conform_lesson_make_config(const ConformLesson *l, ConformConfig *cfg, GError **error);

/* Views and header controls a lesson can show or hide, and bring to the
 * front with `show` ("explore" is the tab of samples, histogram, curves). */
const char *const *conform_lesson_view_names(void);
const char *const *conform_lesson_header_names(void);
/* Whether a control (a settings key such as "train.lr", a view or a header
 * control name) is shown: `visible` restricts each kind of control it
 * names (settings, views, header) to the names it lists (globs allowed:
 * "train.*"); `hidden` hides what it lists. */
gboolean conform_lesson_control_visible(const ConformLesson *l, const char *control);

/* Values for {placeholders}: the latest samples and training record (may be
 * NULL), and the learner's prediction. */
typedef struct {
  const ConformSampleSet *samples;
  const ConformTrainRecord *record;
  long step;
  const char *prediction;
} ConformLessonValues;
/* markup with every {name} replaced by its value (escaped; "n/a" when
 * unknown); "{{" and "}}" are literal braces. */
char *conform_lesson_fill(const char *markup, const ConformLessonValues *v);

/* A lesson file for the window's state: preset, strategy, constraint (when
 * not the preset's), the settings that differ from the preset's defaults,
 * visible / hidden controls (NULL: all shown) and one step to edit. */
char *conform_lesson_export(const ConformConfig *cfg, const char *title, const char *const *visible,
                            const char *const *hidden);

/* Bundled lessons: <data dir>/lessons/ *.lesson, sorted (g_strfreev). */
char **conform_lesson_bundled(void);

G_END_DECLS
