/* ConformWindow: run history and lessons (ui/conform-window-teach.c). The
 * History tab and the lesson panel, their menu entries and the hooks the
 * window calls when a run is attached and when the experiment is saved. */
#pragma once

#include <gtk/gtk.h>

#include "conform-lesson.h"
#include "conform-window.h"

G_BEGIN_DECLS

/* Opens a lesson file in the window (resets it to the lesson's start). */
gboolean conform_window_open_lesson(ConformWindow *self, const char *path, GError **error);
/* Writes a .lesson that reproduces the window: preset, strategy, constraint,
 * changed settings, the controls shown. */
gboolean conform_window_export_lesson(ConformWindow *self, const char *path, const char *title, GError **error);
/* Whether a control (settings key, view or header name of a lesson) is
 * shown. */
gboolean conform_window_control_visible(ConformWindow *self, const char *control);
GtkWidget *conform_window_get_history_panel(ConformWindow *self);
GtkWidget *conform_window_get_lesson_panel(ConformWindow *self);

/* ---- internal: the window and the lesson panel ---- */

/* conform_window_init: the sidebar with the (hidden) lesson panel above the
 * settings; then, once the views exist, the History tab and the actions
 * (win.lessons, win.lesson-open, win.lesson-export). */
GtkWidget *conform_window_teach_sidebar_(ConformWindow *self, GtkWidget *settings);
void conform_window_teach_init_(ConformWindow *self);
/* The primary menu's lessons section. */
GMenuModel *conform_window_teach_menu_(void);
/* attach_run, before the views change: the history follows the new run
 * (an opened experiment brings its saved history). */
void conform_window_teach_run_attached_(ConformWindow *self, ConformRun *run);
/* After a successful save into dir: the history is written beside it. */
void conform_window_teach_saved_(ConformWindow *self, const char *dir);

/* For the lesson panel. */
void conform_window_teach_apply_visibility_(ConformWindow *self, const ConformLesson *lesson); /* NULL: show all */
gboolean conform_window_teach_building_(ConformWindow *self); /* a new run is being built */
gboolean conform_window_teach_set_setting_(ConformWindow *self, const char *key, const char *value, GError **error);
void conform_window_teach_set_strategy_(ConformWindow *self, const char *strategy);
const char *conform_window_teach_pending_strategy_(ConformWindow *self); /* chosen for the next samples / Reset */
void conform_window_teach_show_view_(ConformWindow *self, const char *view);
void conform_window_teach_values_(ConformWindow *self, ConformLessonValues *v);

G_END_DECLS
