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

typedef struct {
  double late_p99, frame_p99, steps_per_s, seconds;
  guint ticks, frames;
} Measure;

/* Each frame, the trajectory scrubber moves one step (wrapping round). */
static gboolean
scrub_tick_cb(GtkWidget *widget, GdkFrameClock *clock, gpointer data)
{
  (void)widget;
  (void)clock;
  GtkRange *scale = data;
  GtkAdjustment *adj = gtk_range_get_adjustment(scale);
  double v = gtk_range_get_value(scale) + 1;
  gtk_range_set_value(scale, v > gtk_adjustment_get_upper(adj) ? gtk_adjustment_get_lower(adj) : v);
  return G_SOURCE_CONTINUE;
}

/* Timer lateness, frame times and training speed over `seconds` (with the
 * scrubber moving every frame when scrub is set). */
static Measure
measure(ConformWindow *w, ConformRun *run, double seconds, gboolean scrub)
{
  Probe p = {g_array_new(FALSE, FALSE, sizeof(double)), g_array_new(FALSE, FALSE, sizeof(double)), 0, 0, FALSE};
  GdkFrameClock *clock = gtk_widget_get_frame_clock(GTK_WIDGET(w));
  gulong h1 = g_signal_connect(clock, "update", G_CALLBACK(frame_update_cb), &p);
  gulong h2 = g_signal_connect(clock, "after-paint", G_CALLBACK(frame_after_paint_cb), &p);
  GtkWidget *scale = conform_window_get_view(w, "trajectory-scale");
  guint scrubber = scrub ? gtk_widget_add_tick_callback(scale, scrub_tick_cb, scale, NULL) : 0;
  long step0 = conform_run_get_step(run);
  gint64 t0 = g_get_monotonic_time();
  guint tick = g_timeout_add(10, tick_cb, &p);
  g_timeout_add((guint)(seconds * 1000), stop_cb, &p);
  while (!p.done)
    g_main_context_iteration(NULL, TRUE);
  g_source_remove(tick);
  if (scrubber)
    gtk_widget_remove_tick_callback(scale, scrubber);
  Measure m = {0};
  m.seconds = (double)(g_get_monotonic_time() - t0) / 1e6;
  m.steps_per_s = (double)(conform_run_get_step(run) - step0) / m.seconds;
  g_signal_handler_disconnect(clock, h1);
  g_signal_handler_disconnect(clock, h2);
  m.ticks = p.late_ms->len;
  m.frames = p.frame_ms->len;
  m.late_p99 = p99(p.late_ms);
  m.frame_p99 = p99(p.frame_ms);
  g_array_unref(p.late_ms);
  g_array_unref(p.frame_ms);
  return m;
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

  Measure plain = measure(w, run, seconds, FALSE);
  char note[200];
  g_snprintf(note, sizeof note, "10 ms timer, %u ticks over %.0f s (after 1 s warm-up) while training %s at %.0f steps/s",
             plain.ticks, plain.seconds, CONFORM_DEFAULT_PRESET, plain.steps_per_s);
  printf("ui-latency-p99\t%.4g\tms\t%s\n", plain.late_p99, note);
  g_snprintf(note, sizeof note, "update to end of paint, %u frames", plain.frames);
  printf("ui-frame-p99\t%.4g\tms\t%s\n", plain.frame_p99, note);
  fflush(stdout);
  /* The Sampling trajectory tab with its scrubber moved every frame: the
   * trajectory frames come from the last preview snapshot on the main
   * thread, so training should keep its speed. */
  gtk_notebook_set_current_page(GTK_NOTEBOOK(conform_window_get_view(w, "notebook")), 1);
  Measure scrub = measure(w, run, seconds, TRUE);
  g_snprintf(note, sizeof note, "steps/s while the scrubber moves every frame (%.0f) / steps/s on Explore (%.0f)",
             scrub.steps_per_s, plain.steps_per_s);
  printf("ui-scrub-train-ratio\t%.3f\tratio\t%s\n", scrub.steps_per_s / plain.steps_per_s, note);
  g_snprintf(note, sizeof note, "Sampling trajectory tab, scrubber moved every frame, %u frames", scrub.frames);
  printf("ui-scrub-frame-p99\t%.4g\tms\t%s\n", scrub.frame_p99, note);
  fflush(stdout);
  gtk_window_close(GTK_WINDOW(w));
  while (conform_run_get_state(run) != CONFORM_RUN_STOPPED)
    g_main_context_iteration(NULL, TRUE);
  return CONFORM_EXIT_OK;
}
