#define G_LOG_DOMAIN "conform"

#include "conform-image-grid.h"

#include <math.h>
#include <string.h>

#include "conform-palette.h"

#define CAPTION_H 22.0
#define GAP 6.0
#define LABEL_H 13.0

struct _ConformImageGrid {
  GtkWidget parent_instance;
  float *x;
  double *viol;
  int n, H, W;
  double tol, lo, hi;
  char *caption;
  cairo_surface_t *cache; /* n images side by side at 1 px per pixel, ARGB */
};

G_DEFINE_FINAL_TYPE(ConformImageGrid, conform_image_grid, GTK_TYPE_WIDGET)

/* Pixels of every image once into a surface (redrawn on new data only);
 * drawing then scales it with nearest-neighbour filtering. */
static void
build_cache(ConformImageGrid *self)
{
  g_clear_pointer(&self->cache, cairo_surface_destroy);
  if (self->n == 0)
    return;
  self->cache = cairo_image_surface_create(CAIRO_FORMAT_RGB24, self->W * self->n, self->H);
  cairo_surface_flush(self->cache);
  unsigned char *data = cairo_image_surface_get_data(self->cache);
  int stride = cairo_image_surface_get_stride(self->cache);
  double span = self->hi > self->lo ? self->hi - self->lo : 1.0;
  for (int i = 0; i < self->n; i++)
    for (int y = 0; y < self->H; y++)
      for (int xx = 0; xx < self->W; xx++) {
        double v = self->x[(gsize)i * self->H * self->W + (gsize)y * self->W + xx];
        v = isfinite(v) ? (v - self->lo) / span : 0.0;
        guint8 g = (guint8)lround(CLAMP(v, 0.0, 1.0) * 255.0);
        guint32 *px = (guint32 *)(data + (gsize)y * stride) + (gsize)i * self->W + xx;
        *px = ((guint32)g << 16) | ((guint32)g << 8) | g;
      }
  cairo_surface_mark_dirty(self->cache);
}

void
conform_image_grid_get_layout(ConformImageGrid *self, int width, int height, int *cols, double *cell)
{
  g_return_if_fail(CONFORM_IS_IMAGE_GRID(self));
  *cols = 1;
  *cell = 0;
  if (self->n == 0)
    return;
  double avail_h = height - CAPTION_H - GAP;
  double aspect = (double)self->H / self->W;
  double best = 0;
  for (int c = 1; c <= self->n; c++) { /* the column count giving the largest cells */
    int rows = (self->n + c - 1) / c;
    double side = fmin((width - GAP) / c - GAP, (avail_h / rows - GAP - (self->viol ? LABEL_H : 0)) / aspect);
    if (side > best) {
      best = side;
      *cols = c;
    }
  }
  *cell = fmax(best, 1.0);
}

void
conform_image_grid_draw(ConformImageGrid *self, cairo_t *cr, int width, int height)
{
  GdkRGBA fg;
  conform_palette_fg(GTK_WIDGET(self), &fg);
  conform_cairo_font(cr, 12, TRUE);
  conform_cairo_set_rgba(cr, &fg, 1.0);
  cairo_move_to(cr, GAP, 15);
  cairo_show_text(cr, self->caption ? self->caption : (self->n ? "" : "no samples yet"));
  if (self->n == 0 || !self->cache)
    return;
  int cols;
  double side;
  conform_image_grid_get_layout(self, width, height, &cols, &side);
  double cw = side, ch = side * self->H / self->W;
  double label = self->viol ? LABEL_H : 0;
  GdkRGBA ok, bad;
  conform_palette_series(2, &ok);  /* bluish green */
  conform_palette_series(5, &bad); /* vermillion */
  conform_cairo_font(cr, 10, FALSE);
  for (int i = 0; i < self->n; i++) {
    double x0 = GAP + (i % cols) * (cw + GAP), y0 = CAPTION_H + GAP + (i / cols) * (ch + GAP + label);
    cairo_save(cr);
    cairo_rectangle(cr, x0, y0, cw, ch);
    cairo_clip(cr);
    cairo_translate(cr, x0, y0);
    cairo_scale(cr, cw / self->W, ch / self->H);
    cairo_set_source_surface(cr, self->cache, -(double)i * self->W, 0);
    cairo_pattern_set_filter(cairo_get_source(cr), CAIRO_FILTER_NEAREST);
    cairo_paint(cr);
    cairo_restore(cr);
    if (self->viol) {
      gboolean sat = self->viol[i] <= self->tol;
      conform_cairo_set_rgba(cr, sat ? &ok : &bad, 1.0);
      cairo_set_line_width(cr, 2.0);
      cairo_rectangle(cr, x0 - 1, y0 - 1, cw + 2, ch + 2);
      cairo_stroke(cr);
      if (cw >= 34) {
        char buf[32];
        if (self->viol[i] == 0)
          g_strlcpy(buf, "0", sizeof buf);
        else
          g_snprintf(buf, sizeof buf, "%.0e", self->viol[i]);
        conform_cairo_set_rgba(cr, &fg, 0.8);
        cairo_move_to(cr, x0, y0 + ch + 10);
        cairo_show_text(cr, buf);
      }
    }
  }
}

static void
conform_image_grid_snapshot(GtkWidget *widget, GtkSnapshot *snapshot)
{
  int w = gtk_widget_get_width(widget), h = gtk_widget_get_height(widget);
  cairo_t *cr = gtk_snapshot_append_cairo(snapshot, &GRAPHENE_RECT_INIT(0, 0, w, h));
  conform_image_grid_draw(CONFORM_IMAGE_GRID(widget), cr, w, h);
  cairo_destroy(cr);
}

static void
conform_image_grid_finalize(GObject *object)
{
  ConformImageGrid *self = CONFORM_IMAGE_GRID(object);
  g_free(self->x);
  g_free(self->viol);
  g_free(self->caption);
  g_clear_pointer(&self->cache, cairo_surface_destroy);
  G_OBJECT_CLASS(conform_image_grid_parent_class)->finalize(object);
}

static void
conform_image_grid_class_init(ConformImageGridClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS(klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS(klass);
  object_class->finalize = conform_image_grid_finalize;
  widget_class->snapshot = conform_image_grid_snapshot;
  gtk_widget_class_set_css_name(widget_class, "conform-image-grid");
  gtk_widget_class_set_accessible_role(widget_class, GTK_ACCESSIBLE_ROLE_IMG);
}

static void
conform_image_grid_init(ConformImageGrid *self)
{
  self->lo = 0.0;
  self->hi = 1.0;
  self->tol = NAN;
  gtk_widget_set_hexpand(GTK_WIDGET(self), TRUE);
  gtk_widget_set_vexpand(GTK_WIDGET(self), TRUE);
}

GtkWidget *
conform_image_grid_new(void)
{
  return g_object_new(CONFORM_TYPE_IMAGE_GRID, NULL);
}

void
conform_image_grid_set_images(ConformImageGrid *self, const float *x, int n, int H, int W, const double *viol,
                              double tol)
{
  g_return_if_fail(CONFORM_IS_IMAGE_GRID(self));
  g_return_if_fail(n >= 0 && (n == 0 || (x && H > 0 && W > 0)));
  n = MIN(n, CONFORM_IMAGE_GRID_MAX);
  g_clear_pointer(&self->x, g_free);
  g_clear_pointer(&self->viol, g_free);
  self->n = n;
  self->H = H;
  self->W = W;
  self->tol = tol;
  if (n > 0) {
    self->x = g_memdup2(x, sizeof(float) * (gsize)n * H * W);
    if (viol)
      self->viol = g_memdup2(viol, sizeof(double) * n);
  }
  build_cache(self);
  gtk_widget_queue_draw(GTK_WIDGET(self));
}

void
conform_image_grid_set_range(ConformImageGrid *self, double lo, double hi)
{
  g_return_if_fail(CONFORM_IS_IMAGE_GRID(self));
  self->lo = lo;
  self->hi = hi;
  build_cache(self);
  gtk_widget_queue_draw(GTK_WIDGET(self));
}

void
conform_image_grid_set_caption(ConformImageGrid *self, const char *text)
{
  g_return_if_fail(CONFORM_IS_IMAGE_GRID(self));
  g_free(self->caption);
  self->caption = g_strdup(text);
  gtk_widget_queue_draw(GTK_WIDGET(self));
}

int
conform_image_grid_get_n_images(ConformImageGrid *self)
{
  g_return_val_if_fail(CONFORM_IS_IMAGE_GRID(self), 0);
  return self->n;
}

static void
draw_func(gpointer self, cairo_t *cr, int width, int height)
{
  conform_image_grid_draw(self, cr, width, height);
}

gboolean
conform_image_grid_export_png(ConformImageGrid *self, const char *path, int width, int height, GError **error)
{
  g_return_val_if_fail(CONFORM_IS_IMAGE_GRID(self), FALSE);
  return conform_export_png(draw_func, self, width, height, conform_palette_is_dark(GTK_WIDGET(self)), path, error);
}
