/* ConformLessonPanel: a lesson beside the window's views. Starting a lesson
 * resets the window with the lesson's preset, strategy, constraint and
 * settings and shows or hides controls as it says; the panel shows one
 * step at a time (Back / Next). A step with a question asks for a
 * prediction first (typed, or one of its choices); Reveal commits it, runs
 * the step's action (reset, train N, sample, set, strategy, show) on the
 * window and only then shows the answer, filled in with what the run
 * measured. A step without a question runs its action with its Run button.
 * Closing the lesson shows every control again. */
#pragma once

#include <gtk/gtk.h>

#include "conform-lesson.h"
#include "conform-window.h"

G_BEGIN_DECLS

#define CONFORM_TYPE_LESSON_PANEL (conform_lesson_panel_get_type())
G_DECLARE_FINAL_TYPE(ConformLessonPanel, conform_lesson_panel, CONFORM, LESSON_PANEL, GtkBox)

/* The panel drives window (not referenced: the window owns the panel). */
GtkWidget *conform_lesson_panel_new(ConformWindow *window);
/* Takes the lesson; FALSE (and nothing changes) when its configuration is
 * not valid. */
gboolean conform_lesson_panel_start(ConformLessonPanel *self, ConformLesson *lesson, GError **error);
void conform_lesson_panel_close(ConformLessonPanel *self);
const ConformLesson *conform_lesson_panel_get_lesson(ConformLessonPanel *self); /* NULL: none open */

int conform_lesson_panel_get_step(ConformLessonPanel *self); /* 0-based */
void conform_lesson_panel_next(ConformLessonPanel *self);
void conform_lesson_panel_back(ConformLessonPanel *self);
/* The prediction: typed text, or a choice (0-based). */
void conform_lesson_panel_set_prediction(ConformLessonPanel *self, const char *text);
void conform_lesson_panel_choose(ConformLessonPanel *self, int choice);
/* Reveal (question) or Run (action only). FALSE when a prediction is
 * needed first or the step has nothing to do. */
gboolean conform_lesson_panel_reveal(ConformLessonPanel *self);
gboolean conform_lesson_panel_is_busy(ConformLessonPanel *self); /* the step's action is running */
gboolean conform_lesson_panel_answer_shown(ConformLessonPanel *self);
/* The answer as shown (filled in; "" while hidden) and the step's text. */
const char *conform_lesson_panel_get_answer(ConformLessonPanel *self);
const char *conform_lesson_panel_get_text(ConformLessonPanel *self);

G_END_DECLS
