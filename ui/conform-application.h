/* ConformApplication: the GtkApplication (io.github.conform.Conform). */
#pragma once

#include <gtk/gtk.h>

G_BEGIN_DECLS

#define CONFORM_APP_ID "io.github.conform.Conform"
#define CONFORM_TYPE_APPLICATION (conform_application_get_type())
G_DECLARE_FINAL_TYPE(ConformApplication, conform_application, CONFORM, APPLICATION, GtkApplication)

ConformApplication *conform_application_new(void);
/* Preferences (GSettings); NULL when the schema is not available. */
GSettings *conform_application_get_settings(ConformApplication *self);
/* Runs the GUI; returns the exit status. */
int conform_application_run_gui(int argc, char **argv);

G_END_DECLS
