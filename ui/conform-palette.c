#define G_LOG_DOMAIN "conform"

#include "conform-palette.h"

#include <math.h>
#include <errno.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <unistd.h>

#include "conform-config.h"

static const guint32 okabe_ito[CONFORM_PALETTE_SIZE] = {
  0xE69F00, 0x56B4E9, 0x009E73, 0xF0E442, 0x0072B2, 0xD55E00, 0xCC79A7,
};

void
conform_palette_series(int index, GdkRGBA *out)
{
  guint32 c = okabe_ito[((index % CONFORM_PALETTE_SIZE) + CONFORM_PALETTE_SIZE) % CONFORM_PALETTE_SIZE];
  out->red = ((c >> 16) & 0xff) / 255.0f;
  out->green = ((c >> 8) & 0xff) / 255.0f;
  out->blue = (c & 0xff) / 255.0f;
  out->alpha = 1.0f;
}

void
conform_palette_fg(GtkWidget *widget, GdkRGBA *out)
{
  if (!widget) {
    *out = (GdkRGBA){0.1f, 0.1f, 0.1f, 1.0f};
    return;
  }
  G_GNUC_BEGIN_IGNORE_DEPRECATIONS
  gtk_style_context_get_color(gtk_widget_get_style_context(widget), out);
  G_GNUC_END_IGNORE_DEPRECATIONS
}

gboolean
conform_palette_is_dark(GtkWidget *widget)
{
  GdkRGBA fg;
  conform_palette_fg(widget, &fg);
  return 0.299 * fg.red + 0.587 * fg.green + 0.114 * fg.blue > 0.5;
}

void
conform_cairo_set_rgba(cairo_t *cr, const GdkRGBA *c, double alpha_scale)
{
  cairo_set_source_rgba(cr, c->red, c->green, c->blue, c->alpha * alpha_scale);
}

void
conform_cairo_font(cairo_t *cr, double size, gboolean bold)
{
  cairo_select_font_face(cr, "Sans", CAIRO_FONT_SLANT_NORMAL, bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size(cr, size);
}

double
conform_cairo_text_width(cairo_t *cr, const char *s)
{
  cairo_text_extents_t e;
  cairo_text_extents(cr, s, &e);
  return e.x_advance;
}

void
conform_cairo_rounded_rect(cairo_t *cr, double x, double y, double w, double h, double r)
{
  cairo_new_sub_path(cr);
  cairo_arc(cr, x + w - r, y + r, r, -G_PI / 2, 0);
  cairo_arc(cr, x + w - r, y + h - r, r, 0, G_PI / 2);
  cairo_arc(cr, x + r, y + h - r, r, G_PI / 2, G_PI);
  cairo_arc(cr, x + r, y + r, r, G_PI, 1.5 * G_PI);
  cairo_close_path(cr);
}

int
conform_ticks_linear(double lo, double hi, int max_ticks, double *ticks)
{
  if (!(hi > lo) || max_ticks < 2 || !isfinite(lo) || !isfinite(hi))
    return 0;
  double raw = (hi - lo) / (max_ticks - 1);
  double mag = pow(10, floor(log10(raw)));
  double step = mag;
  const double mult[] = {1, 2, 2.5, 5, 10};
  for (guint i = 0; i < G_N_ELEMENTS(mult); i++)
    if (mag * mult[i] >= raw) {
      step = mag * mult[i];
      break;
    }
  int n = 0;
  for (double t = ceil(lo / step) * step; t <= hi + step * 1e-9 && n < max_ticks; t += step)
    ticks[n++] = fabs(t) < step * 1e-9 ? 0.0 : t;
  return n;
}

int
conform_ticks_log(double lo, double hi, int max_ticks, double *ticks)
{
  if (!(lo > 0) || !(hi > lo) || max_ticks < 1)
    return 0;
  int k0 = (int)ceil(log10(lo) - 1e-9), k1 = (int)floor(log10(hi) + 1e-9);
  int span = k1 - k0 + 1, every = 1;
  while (span / every > max_ticks)
    every++;
  int n = 0;
  for (int k = k0; k <= k1 && n < max_ticks; k += every)
    ticks[n++] = pow(10, k);
  return n;
}

void
conform_format_tick(double v, char *buf, gsize len)
{
  if (v != 0 && (fabs(v) < 1e-3 || fabs(v) >= 1e5))
    g_snprintf(buf, len, "%.0e", v);
  else
    g_snprintf(buf, len, "%.4g", v);
}

void
conform_plot_area_init(ConformPlotArea *a, double width, double height, double left, double right, double top,
                       double bottom)
{
  a->x0 = left;
  a->y0 = top;
  a->w = MAX(width - left - right, 1);
  a->h = MAX(height - top - bottom, 1);
  a->xmin = 0;
  a->xmax = 1;
  a->ymin = 0;
  a->ymax = 1;
  a->xlog = a->ylog = FALSE;
}

static double
frac(double v, double lo, double hi, gboolean lg)
{
  if (lg) {
    v = log10(MAX(v, 1e-300));
    lo = log10(MAX(lo, 1e-300));
    hi = log10(MAX(hi, 1e-300));
  }
  return hi > lo ? (v - lo) / (hi - lo) : 0.5;
}

double
conform_plot_x(const ConformPlotArea *a, double x)
{
  return a->x0 + frac(x, a->xmin, a->xmax, a->xlog) * a->w;
}

double
conform_plot_y(const ConformPlotArea *a, double y)
{
  return a->y0 + a->h - frac(y, a->ymin, a->ymax, a->ylog) * a->h;
}

double
conform_plot_inv_x(const ConformPlotArea *a, double px)
{
  double f = (px - a->x0) / a->w;
  if (a->xlog) {
    double lo = log10(MAX(a->xmin, 1e-300)), hi = log10(MAX(a->xmax, 1e-300));
    return pow(10, lo + f * (hi - lo));
  }
  return a->xmin + f * (a->xmax - a->xmin);
}

void
conform_plot_draw_axes(cairo_t *cr, const ConformPlotArea *a, const GdkRGBA *fg, const char *xlabel,
                       const char *ylabel)
{
  double ticks[16];
  char buf[32];
  cairo_save(cr);
  cairo_set_line_width(cr, 1);
  conform_cairo_set_rgba(cr, fg, 0.12);
  int nx = a->xlog ? conform_ticks_log(a->xmin, a->xmax, 8, ticks) : conform_ticks_linear(a->xmin, a->xmax, 7, ticks);
  for (int i = 0; i < nx; i++) {
    double px = round(conform_plot_x(a, ticks[i])) + 0.5;
    cairo_move_to(cr, px, a->y0);
    cairo_line_to(cr, px, a->y0 + a->h);
  }
  double yt[16];
  int ny = a->ylog ? conform_ticks_log(a->ymin, a->ymax, 8, yt) : conform_ticks_linear(a->ymin, a->ymax, 6, yt);
  for (int i = 0; i < ny; i++) {
    double py = round(conform_plot_y(a, yt[i])) + 0.5;
    cairo_move_to(cr, a->x0, py);
    cairo_line_to(cr, a->x0 + a->w, py);
  }
  cairo_stroke(cr);
  conform_cairo_set_rgba(cr, fg, 0.6);
  cairo_rectangle(cr, round(a->x0) + 0.5, round(a->y0) + 0.5, round(a->w), round(a->h));
  cairo_stroke(cr);
  cairo_select_font_face(cr, "Sans", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size(cr, 10);
  conform_cairo_set_rgba(cr, fg, 0.85);
  cairo_text_extents_t ext;
  for (int i = 0; i < nx; i++) {
    conform_format_tick(ticks[i], buf, sizeof buf);
    cairo_text_extents(cr, buf, &ext);
    cairo_move_to(cr, conform_plot_x(a, ticks[i]) - ext.width / 2 - ext.x_bearing, a->y0 + a->h + 13);
    cairo_show_text(cr, buf);
  }
  for (int i = 0; i < ny; i++) {
    conform_format_tick(yt[i], buf, sizeof buf);
    cairo_text_extents(cr, buf, &ext);
    cairo_move_to(cr, a->x0 - ext.width - ext.x_bearing - 5, conform_plot_y(a, yt[i]) + ext.height / 2);
    cairo_show_text(cr, buf);
  }
  if (xlabel) {
    cairo_text_extents(cr, xlabel, &ext);
    cairo_move_to(cr, a->x0 + a->w / 2 - ext.width / 2, a->y0 + a->h + 27);
    cairo_show_text(cr, xlabel);
  }
  if (ylabel) {
    cairo_text_extents(cr, ylabel, &ext);
    cairo_move_to(cr, a->x0 + 4, a->y0 - 6);
    cairo_show_text(cr, ylabel);
  }
  cairo_restore(cr);
}

gboolean
conform_export_png(ConformDrawFunc draw, gpointer self, int width, int height, gboolean dark, const char *path,
                   GError **error)
{
  if (width < 16 || height < 16 || width > 16384 || height > 16384) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_USAGE, "image size %dx%d is out of range [16, 16384]", width,
                height);
    return FALSE;
  }
  cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, width, height);
  cairo_t *cr = cairo_create(s);
  if (dark)
    cairo_set_source_rgb(cr, 0.14, 0.14, 0.14);
  else
    cairo_set_source_rgb(cr, 1, 1, 1);
  cairo_paint(cr);
  draw(self, cr, width, height);
  cairo_destroy(cr);
  g_autofree char *tmp = g_strdup_printf("%s.tmp-XXXXXX", path);
  int fd = g_mkstemp(tmp);
  gboolean ok = FALSE;
  if (fd < 0) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_IO, "cannot write %s: %s", path, g_strerror(errno));
  } else {
    close(fd);
    cairo_status_t st = cairo_surface_write_to_png(s, tmp);
    if (st != CAIRO_STATUS_SUCCESS) {
      g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_IO, "cannot write %s: %s", path, cairo_status_to_string(st));
      g_unlink(tmp);
    } else if (g_rename(tmp, path) != 0) {
      g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_IO, "cannot write %s: %s", path, g_strerror(errno));
      g_unlink(tmp);
    } else {
      ok = TRUE;
    }
  }
  cairo_surface_destroy(s);
  return ok;
}
