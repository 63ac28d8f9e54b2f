/* Shared plotting helpers: colour-blind-safe palette (Okabe-Ito), theme
 * foreground, axis ticks and frames, PNG export of a Cairo draw function.
 * Every plot widget draws through one `draw(self, cr, width, height)`
 * function so the screen and PNG export render the same picture. */
#pragma once

#include <cairo.h>
#include <gtk/gtk.h>

G_BEGIN_DECLS

/* Okabe-Ito: orange, sky blue, bluish green, yellow, blue, vermillion,
 * reddish purple (black/grey are left to the theme foreground). */
#define CONFORM_PALETTE_SIZE 7
void conform_palette_series(int index, GdkRGBA *out);
/* Theme foreground colour of a widget (follows light/dark). */
void conform_palette_fg(GtkWidget *widget, GdkRGBA *out);
gboolean conform_palette_is_dark(GtkWidget *widget);
void conform_cairo_set_rgba(cairo_t *cr, const GdkRGBA *c, double alpha_scale);
/* Sans at `size` px, bold or normal; advance width of a string in it; a
 * rounded-rectangle path (for legends and readout boxes). */
void conform_cairo_font(cairo_t *cr, double size, gboolean bold);
double conform_cairo_text_width(cairo_t *cr, const char *s);
void conform_cairo_rounded_rect(cairo_t *cr, double x, double y, double w, double h, double r);

/* Up to max_ticks "nice" linear ticks in [lo, hi]; returns the count. */
int conform_ticks_linear(double lo, double hi, int max_ticks, double *ticks);
/* Decade ticks 10^k in [lo, hi] (lo > 0); returns the count (<= max). */
int conform_ticks_log(double lo, double hi, int max_ticks, double *ticks);
/* Formats a tick value compactly (%g with sensible precision). */
void conform_format_tick(double v, char *buf, gsize len);

/* Plot area inside a widget: margins leave room for tick labels. */
typedef struct {
  double x0, y0, w, h;       /* pixel rectangle of the data area */
  double xmin, xmax, ymin, ymax;
  gboolean xlog, ylog;
} ConformPlotArea;

void conform_plot_area_init(ConformPlotArea *a, double width, double height, double left, double right, double top,
                            double bottom);
double conform_plot_x(const ConformPlotArea *a, double x); /* data -> pixel */
double conform_plot_y(const ConformPlotArea *a, double y);
double conform_plot_inv_x(const ConformPlotArea *a, double px); /* pixel -> data */
/* Frame, ticks, tick labels and optional axis titles in the foreground colour. */
void conform_plot_draw_axes(cairo_t *cr, const ConformPlotArea *a, const GdkRGBA *fg, const char *xlabel,
                            const char *ylabel);

typedef void (*ConformDrawFunc)(gpointer self, cairo_t *cr, int width, int height);
/* Renders draw() on a white-or-dark background into a PNG file. */
gboolean conform_export_png(ConformDrawFunc draw, gpointer self, int width, int height, gboolean dark,
                            const char *path, GError **error);

G_END_DECLS
