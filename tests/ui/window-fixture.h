/* Shared by the GUI tests that drive the real window (test_window.c,
 * test_compare_view.c): the application, bounded waits on the main loop,
 * screenshots into $CONFORM_SCREENSHOT_DIR, and opening / closing a window
 * with its run. Header-only; each test's main() creates `app`. */
#pragma once

#include <glib/gstdio.h>
#include <gtk/gtk.h>

#include "conform-application.h"
#include "conform-run.h"
#include "conform-window.h"

static ConformApplication *app;

static G_GNUC_UNUSED gboolean
timeout_cb(gpointer data)
{
  g_error("timed out: %s", (const char *)data);
  return G_SOURCE_REMOVE;
}

#define WAIT_UNTIL(cond, what)                                   \
  do {                                                           \
    guint _t = g_timeout_add_seconds(120, timeout_cb, (gpointer)what); \
    while (!(cond))                                              \
      g_main_context_iteration(NULL, TRUE);                      \
    g_source_remove(_t);                                         \
  } while (0)

static G_GNUC_UNUSED void
drain(void)
{
  for (int i = 0; i < 50 && g_main_context_iteration(NULL, FALSE); i++)
    ;
}

/* Renders the window as the compositor would and saves a PNG. */
static G_GNUC_UNUSED void
screenshot(GtkWidget *w, const char *name)
{
  const char *dir = g_getenv("CONFORM_SCREENSHOT_DIR");
  if (!dir)
    return;
  g_mkdir_with_parents(dir, 0755);
  for (int i = 0; i < 5; i++) {
    drain();
    g_usleep(20000);
  }
  GdkPaintable *p = gtk_widget_paintable_new(w);
  int width = gtk_widget_get_width(w), height = gtk_widget_get_height(w);
  GtkSnapshot *s = gtk_snapshot_new();
  gdk_paintable_snapshot(p, s, width, height);
  GskRenderNode *node = gtk_snapshot_free_to_node(s);
  if (node) {
    GskRenderer *r = gtk_native_get_renderer(gtk_widget_get_native(w));
    GdkTexture *tex = gsk_renderer_render_texture(r, node, &GRAPHENE_RECT_INIT(0, 0, width, height));
    g_autofree char *path = g_build_filename(dir, name, NULL);
    g_assert_true(gdk_texture_save_to_png(tex, path));
    g_test_message("screenshot %s", path);
    g_object_unref(tex);
    gsk_render_node_unref(node);
  }
  g_object_unref(p);
}

static G_GNUC_UNUSED ConformWindow *
open_window(const char *preset)
{
  ConformWindow *w = conform_window_new(GTK_APPLICATION(app), preset);
  gtk_window_set_default_size(GTK_WINDOW(w), 1400, 860);
  gtk_window_present(GTK_WINDOW(w));
  WAIT_UNTIL(conform_window_get_run(w) && conform_run_get_state(conform_window_get_run(w)) == CONFORM_RUN_PAUSED,
             "window ready");
  return w;
}

/* A window's run is STOPPED just before its worker returns: this waits for
 * the window's finish callback too, which joins the thread and lets go of the
 * application (a test that ends before it leaves a finished, unjoined
 * thread: a ThreadSanitizer "thread leak"). */
static G_GNUC_UNUSED void
wait_run_joined(ConformRun *run)
{
  WAIT_UNTIL(conform_run_get_state(run) == CONFORM_RUN_STOPPED, "run stopped");
  WAIT_UNTIL(!g_object_get_data(G_OBJECT(run), "conform-held-app"), "run joined");
}

static G_GNUC_UNUSED void
close_window(ConformWindow *w)
{
  ConformRun *run = g_object_ref(conform_window_get_run(w));
  gtk_window_close(GTK_WINDOW(w)); /* as the user closes it: close-request cancels the run */
  wait_run_joined(run);
  g_object_unref(run);
  drain();
}
