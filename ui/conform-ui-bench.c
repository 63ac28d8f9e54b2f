#define G_LOG_DOMAIN "conform"

#include "conform-ui-bench.h"

#include <gtk/gtk.h>
#include <stdio.h>
#include <stdlib.h>

#include "conform-application.h"
#include "conform-cli.h"
#include "conform-presets.h"
#include "conform-window.h"

typedef struct {
  GArray *late_ms;  /* double */
  GArray *frame_ms; /* double */
  gint64 last_tick, frame_start;
  gboolean done;
} Probe;

static gboolean
tick_cb(gpointer data)
{
  Probe *p = data;
  gint64 now = g_get_monotonic_time();
  if (p->last_tick) {
    double late = (double)(now - p->last_tick) / 1000.0 - 10.0;
    g_array_append_val(p->late_ms, late);
  }
  p->last_tick = now;
  return G_SOURCE_CONTINUE;
}

static void
frame_update_cb(GdkFrameClock *clock, Probe *p)
{
  p->frame_start = g_get_monotonic_time();
}

static void
frame_after_paint_cb(GdkFrameClock *clock, Probe *p)
{
  if (!p->frame_start)
    return;
  double ms = (double)(g_get_monotonic_time() - p->frame_start) / 1000.0;
  g_array_append_val(p->frame_ms, ms);
  p->frame_start = 0;
}

static int
cmp_double(gconstpointer a, gconstpointer b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double
p99(GArray *a)
{
  if (a->len == 0)
    return NAN;
  g_array_sort(a, cmp_double);
  guint k = (guint)((a->len - 1) * 0.99);
  return g_array_index(a, double, k);
}

static gboolean
stop_cb(gpointer data)
{
  ((Probe *)data)->done = TRUE;
  return G_SOURCE_REMOVE;
}

int
conform_ui_bench_latency(double seconds)
{
  g_setenv("GSK_RENDERER", "cairo", FALSE); /* as the app does */
  if (!gtk_init_check()) {
    fprintf(stderr, "conform bench: ui-latency needs a display (run it under xvfb-run)\n");
    return CONFORM_EXIT_RUNTIME;
  }
  g_setenv("CONFORM_NO_CLOSE_PROMPT", "1", TRUE);
  g_autoptr(ConformApplication) app = conform_application_new();
  if (!g_application_register(G_APPLICATION(app), NULL, NULL)) {
    fprintf(stderr, "conform bench: cannot start the application\n");
    return CONFORM_EXIT_RUNTIME;
  }
  ConformWindow *w = conform_window_new(GTK_APPLICATION(app), CONFORM_DEFAULT_PRESET);
  gtk_window_set_default_size(GTK_WINDOW(w), 1400, 860);
  gtk_window_present(GTK_WINDOW(w));
  while (!conform_window_get_run(w) || conform_run_get_state(conform_window_get_run(w)) != CONFORM_RUN_PAUSED)
    g_main_context_iteration(NULL, TRUE);
  ConformRun *run = conform_window_get_run(w);
  /* Full speed, far past the preset's steps, previews every second. */
  conform_run_set(run, "train.steps", "100000000");
  gtk_widget_activate_action(GTK_WIDGET(w), "win.train-toggle", NULL);
  /* Steady state: the first second (first layout of the filled views, first
   * samples) is not measured. */
  gint64 warm = g_get_monotonic_time() + G_USEC_PER_SEC;
  while (g_get_monotonic_time() < warm)
    if (!g_main_context_iteration(NULL, FALSE))
      g_usleep(1000);

  Probe p = {g_array_new(FALSE, FALSE, sizeof(double)), g_array_new(FALSE, FALSE, sizeof(double)), 0, 0, FALSE};
  GdkFrameClock *clock = gtk_widget_get_frame_clock(GTK_WIDGET(w));
  gulong h1 = g_signal_connect(clock, "update", G_CALLBACK(frame_update_cb), &p);
  gulong h2 = g_signal_connect(clock, "after-paint", G_CALLBACK(frame_after_paint_cb), &p);
  long step0 = conform_run_get_step(run);
  gint64 t0 = g_get_monotonic_time();
  guint tick = g_timeout_add(10, tick_cb, &p);
  g_timeout_add((guint)(seconds * 1000), stop_cb, &p);
  while (!p.done)
    g_main_context_iteration(NULL, TRUE);
  g_source_remove(tick);
  double dt = (double)(g_get_monotonic_time() - t0) / 1e6;
  long steps = conform_run_get_step(run) - step0;
  g_signal_handler_disconnect(clock, h1);
  g_signal_handler_disconnect(clock, h2);

  char note[160];
  g_snprintf(note, sizeof note, "10 ms timer, %u ticks over %.0f s (after 1 s warm-up) while training %s at %.0f steps/s",
             p.late_ms->len, dt, CONFORM_DEFAULT_PRESET, steps / dt);
  printf("ui-latency-p99\t%.4g\tms\t%s\n", p99(p.late_ms), note);
  g_snprintf(note, sizeof note, "update to end of paint, %u frames", p.frame_ms->len);
  printf("ui-frame-p99\t%.4g\tms\t%s\n", p99(p.frame_ms), note);
  fflush(stdout);
  gtk_window_close(GTK_WINDOW(w));
  while (conform_run_get_state(run) != CONFORM_RUN_STOPPED)
    g_main_context_iteration(NULL, TRUE);
  g_array_unref(p.late_ms);
  g_array_unref(p.frame_ms);
  return CONFORM_EXIT_OK;
}
