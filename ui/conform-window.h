/* ConformWindow: one experiment per window: header bar controls, settings
 * sidebar, live views (samples, violation histogram, training curves,
 * sampling trajectory, constraint editor) and a status bar. */
#pragma once

#include <gtk/gtk.h>

#include "conform-config.h"
#include "conform-run.h"

G_BEGIN_DECLS

#define CONFORM_TYPE_WINDOW (conform_window_get_type())
G_DECLARE_FINAL_TYPE(ConformWindow, conform_window, CONFORM, WINDOW, GtkApplicationWindow)

ConformWindow *conform_window_new(GtkApplication *app, const char *preset);
/* Opens an experiment directory; the current experiment stays if it fails. */
void conform_window_open_dir(ConformWindow *self, const char *dir);
/* Starts a fresh run from a configuration (replacing the current one when
 * the new run is ready). */
void conform_window_reset_with(ConformWindow *self, const ConformConfig *cfg);

/* For tests: the live run, the views and the last status/error text. */
ConformRun *conform_window_get_run(ConformWindow *self);
GtkWidget *conform_window_get_view(ConformWindow *self, const char *name); /* "samples", "histogram", "loss", "violation", "lr", "vae-curves", "dual-curves", "namm-curves", "trajectory", "editor", "notebook", "compare", "shares" (ConformBars), "shares-pane", "shares-info", "equations" (ConformEquationEditor), "mirror-view" (ConformMirrorView), "mirror-page" (its tab, visible for strategy mirror), "images" (ConformImageGrid of the Samples pane), "trajectory-images" (image data: the trajectory's ConformImageGrid), "trajectory-stack", "superres" (ConformSuperresPanel), "superres-page" (its tab, visible for fashion-superres rows), "thumbnails", "pretrained", "pretrained-note", "choose-folder", "message" (the GtkLabel of messages to the user, CSS class "error" for errors), or a setting's key (its sidebar widget) */
const char *conform_window_get_status_text(ConformWindow *self);
const char *conform_window_get_last_error(ConformWindow *self);
gboolean conform_window_is_dirty(ConformWindow *self);
/* What the Export dialog does, by the dialog's default file name
 * ("samples.png", "violations.png", "loss.png", "violation-curve.png",
 * "learning-rate.png", "trajectory.png", "samples.csv", "vae-curves.png", "compare.png", "shares.png",
 * "mirror.png": the Mirror maps tab in the mode shown). */
gboolean conform_window_export(ConformWindow *self, const char *file_name, const char *path, int width, int height,
                               GError **error);
/* Saves synchronously-from-the-caller's-view (iterates until done). */
gboolean conform_window_save_to(ConformWindow *self, const char *dir, GError **error);

G_END_DECLS
