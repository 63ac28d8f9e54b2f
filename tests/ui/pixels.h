/* Pixel helpers for the plot widgets' tests: render a widget's draw
 * function onto the background its PNG export uses, then count pixels by
 * colour, by difference from the background, or between two renderings. */
#pragma once

#include <gtk/gtk.h>
#include <math.h>

#include "conform-palette.h"

typedef struct {
  cairo_surface_t *s;
  int w, h;
  int bg[3]; /* background the picture was drawn on */
} Image;

typedef void (*PixelsDrawFn)(GtkWidget *widget, cairo_t *cr, int w, int h);

/* Renders on the background conform_export_png would use: an unparented
 * widget takes GTK's initial (white) foreground, so it is drawn on dark. */
static G_GNUC_UNUSED void
pixels_render(Image *img, GtkWidget *widget, PixelsDrawFn draw, int w, int h)
{
  gboolean dark = conform_palette_is_dark(widget);
  img->w = w;
  img->h = h;
  img->s = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, w, h);
  cairo_t *cr = cairo_create(img->s);
  double bg = dark ? 0.14 : 1.0;
  cairo_set_source_rgb(cr, bg, bg, bg);
  cairo_paint(cr);
  draw(widget, cr, w, h);
  cairo_destroy(cr);
  cairo_surface_flush(img->s);
  img->bg[0] = img->bg[1] = img->bg[2] = (int)lround(bg * 255);
}

static G_GNUC_UNUSED void
image_clear(Image *img)
{
  cairo_surface_destroy(img->s);
}

static G_GNUC_UNUSED void
image_rgb(const Image *img, int x, int y, int *r, int *g, int *b)
{
  x = CLAMP(x, 0, img->w - 1);
  y = CLAMP(y, 0, img->h - 1);
  const guint8 *row = cairo_image_surface_get_data(img->s) + y * cairo_image_surface_get_stride(img->s);
  guint32 p = ((const guint32 *)row)[x];
  *r = (p >> 16) & 0xff;
  *g = (p >> 8) & 0xff;
  *b = p & 0xff;
}

/* Pixel (x, y) within `tol` (max channel difference) of c. */
static G_GNUC_UNUSED gboolean
is_colour(const Image *img, int x, int y, const GdkRGBA *c, int tol)
{
  int r, g, b;
  image_rgb(img, x, y, &r, &g, &b);
  return ABS(r - (int)lround(c->red * 255)) <= tol && ABS(g - (int)lround(c->green * 255)) <= tol &&
         ABS(b - (int)lround(c->blue * 255)) <= tol;
}

/* Pixels in the rectangle within `tol` of c. */
static G_GNUC_UNUSED int
count_colour(const Image *img, int x0, int y0, int x1, int y1, const GdkRGBA *c, int tol)
{
  int n = 0;
  for (int y = MAX(y0, 0); y <= MIN(y1, img->h - 1); y++)
    for (int x = MAX(x0, 0); x <= MIN(x1, img->w - 1); x++)
      n += is_colour(img, x, y, c, tol);
  return n;
}

/* Pixels differing from the background by more than `min_diff` in some
 * channel: ink in the foreground colour, whatever the theme. */
static G_GNUC_UNUSED int
count_ink(const Image *img, int x0, int y0, int x1, int y1, int min_diff)
{
  int n = 0;
  for (int y = MAX(y0, 0); y <= MIN(y1, img->h - 1); y++)
    for (int x = MAX(x0, 0); x <= MIN(x1, img->w - 1); x++) {
      int r, g, b;
      image_rgb(img, x, y, &r, &g, &b);
      if (ABS(r - img->bg[0]) > min_diff || ABS(g - img->bg[1]) > min_diff || ABS(b - img->bg[2]) > min_diff)
        n++;
    }
  return n;
}

/* Pixels that differ between two renderings of the same size. */
static G_GNUC_UNUSED int
count_diff(const Image *a, const Image *b, int x0, int y0, int x1, int y1)
{
  int n = 0;
  for (int y = MAX(y0, 0); y <= MIN(y1, a->h - 1); y++)
    for (int x = MAX(x0, 0); x <= MIN(x1, a->w - 1); x++) {
      int r1, g1, b1, r2, g2, b2;
      image_rgb(a, x, y, &r1, &g1, &b1);
      image_rgb(b, x, y, &r2, &g2, &b2);
      if (r1 != r2 || g1 != g2 || b1 != b2)
        n++;
    }
  return n;
}
